/* The PostgreSQL wire-protocol proxy of the integration tests (see pgproxy.h).
 *
 * One thread polls the listener and every connection pair. Bytes read are
 * cut into whole protocol messages before anything is forwarded, so a drop
 * can happen exactly between two messages. Writes are blocking: the traffic
 * is a daemon's ordinary statements on loopback, never a bulk COPY. */
#include "tests/harness/pgproxy.h"
#include "util/util.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define PX_MAX_CONNS   128
#define PX_MAX_MESSAGE (64 * 1024 * 1024)
#define PX_SSL_REQUEST 80877103
#define PX_GSS_REQUEST 80877104
#define PX_CANCEL      80877102

typedef struct {
    char *data;
    size_t len, cap;
} px_buf_t;

typedef struct {
    char *name, *text;
} px_stmt_t;

enum { PX_IDLE, PX_IN_TXN, PX_AUTOCOMMIT };

typedef struct {
    int cfd, sfd;
    bool startup_done; /* the client's startup packet went through */
    bool passthrough;  /* a cancel request: bytes are relayed blindly */
    px_buf_t cin, sin; /* read, not yet cut into messages */
    px_buf_t held;     /* server messages held back while autocommit is pending */
    px_stmt_t *stmts;  /* prepared statements of this connection */
    size_t nstmts;
    char txn;        /* status of the last ReadyForQuery: 'I', 'T' or 'E' */
    int pending;     /* PX_IN_TXN / PX_AUTOCOMMIT: a marker statement ran */
    bool held_error; /* an ErrorResponse is among the held messages */
} px_conn_t;

struct pgproxy {
    pthread_t thread;
    pthread_mutex_t mu;
    int lfd, wake[2], port;
    char target[200];
    char *marker; /* armed when non-NULL */
    int fired, accepted;
    px_conn_t *conns[PX_MAX_CONNS];
};

static uint32_t be32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

static void buf_add(px_buf_t *b, const char *d, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 8192;
        while (cap < b->len + n)
            cap *= 2;
        b->data = realloc(b->data, cap);
        if (!b->data)
            abort();
        b->cap = cap;
    }
    memcpy(b->data + b->len, d, n);
    b->len += n;
}

static void buf_consume(px_buf_t *b, size_t n)
{
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

static bool send_all(int fd, const char *d, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, d, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        d += w;
        n -= (size_t)w;
    }
    return true;
}

static void conn_free(px_conn_t *c)
{
    if (c->cfd >= 0)
        close(c->cfd);
    if (c->sfd >= 0)
        close(c->sfd);
    free(c->cin.data);
    free(c->sin.data);
    free(c->held.data);
    for (size_t i = 0; i < c->nstmts; i++) {
        free(c->stmts[i].name);
        free(c->stmts[i].text);
    }
    free(c->stmts);
    free(c);
}

/* A C string inside a message body, or NULL if it runs past the end. */
static const char *cstr(const char *body, size_t len, size_t *off)
{
    if (*off >= len)
        return NULL;
    const char *s = body + *off;
    const char *nul = memchr(s, '\0', len - *off);
    if (!nul)
        return NULL;
    *off += (size_t)(nul - s) + 1;
    return s;
}

static const char *stmt_text(px_conn_t *c, const char *name)
{
    for (size_t i = 0; i < c->nstmts; i++)
        if (!strcmp(c->stmts[i].name, name))
            return c->stmts[i].text;
    return NULL;
}

static void stmt_set(px_conn_t *c, const char *name, const char *text)
{
    for (size_t i = 0; i < c->nstmts; i++)
        if (!strcmp(c->stmts[i].name, name)) {
            free(c->stmts[i].text);
            c->stmts[i].text = strdup(text);
            return;
        }
    c->stmts = realloc(c->stmts, (c->nstmts + 1) * sizeof *c->stmts);
    if (!c->stmts)
        abort();
    c->stmts[c->nstmts].name = strdup(name);
    c->stmts[c->nstmts].text = strdup(text);
    c->nstmts++;
}

/* A statement about to run: does it carry the armed marker? */
static void statement_runs(pgproxy_t *p, px_conn_t *c, const char *text)
{
    if (!text || c->pending != PX_IDLE)
        return;
    pthread_mutex_lock(&p->mu);
    bool hit = p->marker && strstr(text, p->marker);
    pthread_mutex_unlock(&p->mu);
    if (!hit)
        return;
    c->pending = c->txn == 'I' ? PX_AUTOCOMMIT : PX_IN_TXN;
    c->held_error = false;
}

/* Takes the arming if it is still there: true means drop now. */
static bool try_fire(pgproxy_t *p)
{
    pthread_mutex_lock(&p->mu);
    bool fire = p->marker != NULL;
    if (fire) {
        free(p->marker);
        p->marker = NULL;
        p->fired++;
    }
    pthread_mutex_unlock(&p->mu);
    return fire;
}

/* Client to server. false: close the pair. */
static bool from_client(pgproxy_t *p, px_conn_t *c)
{
    px_buf_t *b = &c->cin;
    for (;;) {
        if (c->passthrough) {
            bool ok = send_all(c->sfd, b->data, b->len);
            b->len = 0;
            return ok;
        }
        if (!c->startup_done) {
            /* Int32 length, Int32 code, no type byte */
            if (b->len < 8)
                return true;
            uint32_t n = be32(b->data);
            if (n < 8 || n > 10000)
                return false;
            if (b->len < n)
                return true;
            uint32_t code = be32(b->data + 4);
            if (code == PX_SSL_REQUEST || code == PX_GSS_REQUEST) {
                /* no encryption on loopback: the client goes on in plain text */
                if (!send_all(c->cfd, "N", 1))
                    return false;
                buf_consume(b, n);
                continue;
            }
            if (!send_all(c->sfd, b->data, n))
                return false;
            buf_consume(b, n);
            if (code == PX_CANCEL)
                c->passthrough = true;
            else
                c->startup_done = true;
            continue;
        }
        /* Byte1 type, Int32 length (including itself), body */
        if (b->len < 5)
            return true;
        uint32_t n = be32(b->data + 1);
        if (n < 4 || n > PX_MAX_MESSAGE)
            return false;
        size_t total = (size_t)n + 1;
        if (b->len < total)
            return true;
        char type = b->data[0];
        const char *body = b->data + 5;
        size_t blen = n - 4;
        size_t off = 0;
        if (type == 'Q') {
            statement_runs(p, c, cstr(body, blen, &off));
        } else if (type == 'P') {
            const char *name = cstr(body, blen, &off);
            const char *text = name ? cstr(body, blen, &off) : NULL;
            if (text)
                stmt_set(c, name, text);
        } else if (type == 'B') {
            const char *portal = cstr(body, blen, &off);
            const char *name = portal ? cstr(body, blen, &off) : NULL;
            if (name)
                statement_runs(p, c, stmt_text(c, name));
        }
        if (!send_all(c->sfd, b->data, total))
            return false;
        buf_consume(b, total);
    }
}

/* Server to client. false: close the pair (an error, or the drop). */
static bool from_server(pgproxy_t *p, px_conn_t *c)
{
    px_buf_t *b = &c->sin;
    for (;;) {
        if (c->passthrough) {
            bool ok = send_all(c->cfd, b->data, b->len);
            b->len = 0;
            return ok;
        }
        if (b->len < 5)
            return true;
        uint32_t n = be32(b->data + 1);
        if (n < 4 || n > PX_MAX_MESSAGE)
            return false;
        size_t total = (size_t)n + 1;
        if (b->len < total)
            return true;
        char type = b->data[0];
        const char *body = b->data + 5;
        size_t blen = n - 4;
        char status = type == 'Z' && blen >= 1 ? body[0] : 0;
        if (c->pending == PX_AUTOCOMMIT) {
            if (type == 'E')
                c->held_error = true;
            buf_add(&c->held, b->data, total);
            buf_consume(b, total);
            if (type != 'Z')
                continue;
            /* ReadyForQuery after the marker statement: its implicit
             * transaction is over, committed unless an error came first */
            if (status == 'I' && !c->held_error && try_fire(p))
                return false;
            c->txn = status;
            c->pending = status == 'T' ? PX_IN_TXN : PX_IDLE;
            bool ok = send_all(c->cfd, c->held.data, c->held.len);
            c->held.len = 0;
            if (!ok)
                return false;
            continue;
        }
        if (c->pending == PX_IN_TXN && type == 'C' && blen == 7 && !memcmp(body, "COMMIT", 7) &&
            try_fire(p))
            return false;
        if (type == 'Z') {
            c->txn = status;
            if (status == 'I')
                c->pending = PX_IDLE;
        }
        if (!send_all(c->cfd, b->data, total))
            return false;
        buf_consume(b, total);
    }
}

static int connect_target(const pgproxy_t *p)
{
    if (p->target[0] == '/') {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(p->target) >= sizeof sa.sun_path)
            return -1;
        memcpy(sa.sun_path, p->target, strlen(p->target) + 1);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
            close(fd);
            fd = -1;
        }
        return fd;
    }
    char host[200];
    snprintf(host, sizeof host, "%s", p->target);
    char *colon = strrchr(host, ':');
    if (!colon)
        return -1;
    *colon = '\0';
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static void accept_one(pgproxy_t *p)
{
    int cfd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (cfd < 0)
        return;
    int slot = -1;
    for (int i = 0; i < PX_MAX_CONNS && slot < 0; i++)
        if (!p->conns[i])
            slot = i;
    int sfd = slot >= 0 ? connect_target(p) : -1;
    if (sfd < 0) {
        close(cfd);
        return;
    }
    px_conn_t *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    c->cfd = cfd;
    c->sfd = sfd;
    c->txn = 'I';
    p->conns[slot] = c;
    pthread_mutex_lock(&p->mu);
    p->accepted++;
    pthread_mutex_unlock(&p->mu);
}

/* Reads what fd has into b; false on EOF or an error. */
static bool read_into(int fd, px_buf_t *b)
{
    char tmp[65536];
    ssize_t r;
    do
        r = recv(fd, tmp, sizeof tmp, 0);
    while (r < 0 && errno == EINTR);
    if (r <= 0)
        return false;
    buf_add(b, tmp, (size_t)r);
    return true;
}

static void *run(void *arg)
{
    pgproxy_t *p = arg;
    struct pollfd pfd[2 + 2 * PX_MAX_CONNS];
    int owner[2 + 2 * PX_MAX_CONNS];
    for (;;) {
        int n = 0;
        pfd[n++] = (struct pollfd){.fd = p->wake[0], .events = POLLIN};
        pfd[n++] = (struct pollfd){.fd = p->lfd, .events = POLLIN};
        for (int i = 0; i < PX_MAX_CONNS; i++) {
            if (!p->conns[i])
                continue;
            owner[n] = i;
            pfd[n++] = (struct pollfd){.fd = p->conns[i]->cfd, .events = POLLIN};
            owner[n] = i;
            pfd[n++] = (struct pollfd){.fd = p->conns[i]->sfd, .events = POLLIN};
        }
        if (poll(pfd, (nfds_t)n, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pfd[0].revents)
            break;
        if (pfd[1].revents & POLLIN)
            accept_one(p);
        for (int k = 2; k < n; k++) {
            if (!pfd[k].revents)
                continue;
            px_conn_t *c = p->conns[owner[k]];
            if (!c)
                continue; /* closed while handling its other side */
            bool client = pfd[k].fd == c->cfd;
            bool ok = client ? read_into(c->cfd, &c->cin) && from_client(p, c)
                             : read_into(c->sfd, &c->sin) && from_server(p, c);
            if (!ok) {
                conn_free(c);
                p->conns[owner[k]] = NULL;
            }
        }
    }
    return NULL;
}

pgproxy_t *pgproxy_start(const char *host, int port)
{
    pgproxy_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    if (host[0] == '/')
        snprintf(p->target, sizeof p->target, "%s/.s.PGSQL.%d", host, port);
    else
        snprintf(p->target, sizeof p->target, "%s:%d", host, port);
    pthread_mutex_init(&p->mu, NULL);
    p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    socklen_t sl = sizeof sa;
    if (p->lfd < 0 || bind(p->lfd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(p->lfd, 64) != 0 || getsockname(p->lfd, (struct sockaddr *)&sa, &sl) != 0 ||
        pipe2(p->wake, O_CLOEXEC) != 0) {
        if (p->lfd >= 0)
            close(p->lfd);
        pthread_mutex_destroy(&p->mu);
        free(p);
        return NULL;
    }
    p->port = ntohs(sa.sin_port);
    if (pthread_create(&p->thread, NULL, run, p) != 0) {
        close(p->lfd);
        close(p->wake[0]);
        close(p->wake[1]);
        pthread_mutex_destroy(&p->mu);
        free(p);
        return NULL;
    }
    return p;
}

int pgproxy_port(const pgproxy_t *p)
{
    return p->port;
}

void pgproxy_arm(pgproxy_t *p, const char *marker)
{
    pthread_mutex_lock(&p->mu);
    free(p->marker);
    p->marker = strdup(marker);
    pthread_mutex_unlock(&p->mu);
}

void pgproxy_disarm(pgproxy_t *p)
{
    pthread_mutex_lock(&p->mu);
    free(p->marker);
    p->marker = NULL;
    pthread_mutex_unlock(&p->mu);
}

int pgproxy_fired(pgproxy_t *p)
{
    pthread_mutex_lock(&p->mu);
    int n = p->fired;
    pthread_mutex_unlock(&p->mu);
    return n;
}

int pgproxy_connections(pgproxy_t *p)
{
    pthread_mutex_lock(&p->mu);
    int n = p->accepted;
    pthread_mutex_unlock(&p->mu);
    return n;
}

void pgproxy_stop(pgproxy_t *p)
{
    if (!p)
        return;
    PC_IGNORE(write(p->wake[1], "x", 1) != 1);
    pthread_join(p->thread, NULL);
    for (int i = 0; i < PX_MAX_CONNS; i++)
        if (p->conns[i])
            conn_free(p->conns[i]);
    close(p->lfd);
    close(p->wake[0]);
    close(p->wake[1]);
    free(p->marker);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

char *pgproxy_conninfo(const pgproxy_t *p, const char *db, const char *role)
{
    return str_printf("host=127.0.0.1 port=%d dbname=%s user=portcullis_%s", p->port, db, role);
}
