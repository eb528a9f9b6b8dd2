/* The vault client: a fixed pool of connections to vaultd (unix socket or
 * mutual TLS), one request in flight per connection, each connection's
 * frame buffer in sodium_malloc'd memory and wiped after every call.
 *
 * Retry trade-off: a call that fails on I/O (vaultd restarted, connection
 * reset) is sent once more on a fresh connection. Every operation is safe to
 * repeat except that a repeated detokenize "authorize" may find its CVC
 * already consumed by the first attempt; that costs a CVC, never a charge.
 * Timeouts are not retried: the caller's deadline is already spent. */
#include "vault/vault.h"
#include "vault/io.h"
#include "vault/proto.h"
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE (PROTO_HDR + PROTO_FRAME_MAX)

typedef struct {
    vio_t *io;
    uint8_t *buf; /* guarded: requests and replies carry card data */
    bool busy;
    int64_t last_us; /* last use: only an idle connection is probed */
    size_t used;     /* bytes of buf written since the last wipe */
} vconn_t;

struct vault_client {
    char *socket_path, *tls_host;
    int tls_port, timeout_ms, n;
    vio_tls_conf_t *tls;
    vconn_t *conns;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_bool down_logged;
};

const char *vault_status_str(vault_status_t s)
{
    static const char *names[] = {"ok",        "invalid_number", "invalid_expiry", "invalid_cvc",
                                  "not_found", "denied",         "unavailable",    "error"};
    return (unsigned)s < PC_ARRAY_LEN(names) ? names[s] : "error";
}

vault_client_t *vault_client_new(const vault_client_config_t *cfg)
{
    bool use_tls = cfg->tls_host && *cfg->tls_host;
    if (!use_tls && !(cfg->socket_path && *cfg->socket_path)) {
        log_error("vault client: neither a socket path nor a TLS host configured");
        return NULL;
    }
    if (!use_tls && strlen(cfg->socket_path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        log_error("vault client: socket path too long: %s", cfg->socket_path);
        return NULL;
    }
    vault_client_t *vc = calloc(1, sizeof *vc);
    if (!vc)
        return NULL;
    vc->n = cfg->pool_size > 0 ? cfg->pool_size : 8;
    vc->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 5000;
    pthread_mutex_init(&vc->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&vc->cv, &ca);
    pthread_condattr_destroy(&ca);
    vc->conns = calloc((size_t)vc->n, sizeof *vc->conns);
    if (!vc->conns)
        goto fail;
    if (use_tls) {
        char err[400];
        vc->tls_host = strdup(cfg->tls_host);
        vc->tls_port = cfg->tls_port;
        vc->tls = vio_tls_conf_new(false, cfg->tls_ca_file, cfg->tls_cert_file, cfg->tls_key_file,
                                   err, sizeof err);
        if (!vc->tls) {
            log_json(LOG_ERROR, "vault client: TLS configuration failed",
                     json_pack("{s:s}", "error", err));
            goto fail;
        }
    } else {
        vc->socket_path = strdup(cfg->socket_path);
    }
    for (int i = 0; i < vc->n; i++) {
        vc->conns[i].buf = sodium_malloc(BUF_SIZE);
        if (!vc->conns[i].buf)
            goto fail;
    }
    return vc;
fail:
    vault_client_free(vc);
    return NULL;
}

void vault_client_free(vault_client_t *vc)
{
    if (!vc)
        return;
    for (int i = 0; vc->conns && i < vc->n; i++) {
        vio_close(vc->conns[i].io);
        if (vc->conns[i].buf)
            sodium_free(vc->conns[i].buf);
    }
    free(vc->conns);
    vio_tls_conf_free(vc->tls);
    free(vc->socket_path);
    free(vc->tls_host);
    pthread_mutex_destroy(&vc->mu);
    pthread_cond_destroy(&vc->cv);
    free(vc);
}

/* ------------------------------------------------------------ the pool */

static vconn_t *conn_acquire(vault_client_t *vc, int64_t deadline_us)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t left = deadline_us - time_mono_us();
    ts.tv_sec += left / 1000000;
    ts.tv_nsec += (long)(left % 1000000) * 1000;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&vc->mu);
    vconn_t *c = NULL;
    for (;;) {
        /* prefer a connection that is already open */
        for (int i = 0; i < vc->n; i++)
            if (!vc->conns[i].busy && (!c || (!c->io && vc->conns[i].io)))
                c = &vc->conns[i];
        if (c)
            break;
        if (pthread_cond_timedwait(&vc->cv, &vc->mu, &ts) == ETIMEDOUT)
            break;
    }
    if (c)
        c->busy = true;
    pthread_mutex_unlock(&vc->mu);
    return c;
}

static void conn_release(vault_client_t *vc, vconn_t *c)
{
    sodium_memzero(c->buf, c->used);
    c->used = 0;
    pthread_mutex_lock(&vc->mu);
    c->busy = false;
    pthread_cond_signal(&vc->cv);
    pthread_mutex_unlock(&vc->mu);
}

static void note_down(vault_client_t *vc, const char *why)
{
    if (!atomic_exchange(&vc->down_logged, true))
        log_json(LOG_WARN, "vault unreachable",
                 json_pack("{s:s, s:s}", "vault", vc->tls_host ? vc->tls_host : vc->socket_path,
                           "error", why));
}

/* Non-blocking: a frozen vaultd whose accept queue is full makes a blocking
 * connect(2) on a unix socket wait for ever (no timeout applies); this way
 * it fails at once (EAGAIN) and the caller answers vault_unavailable. */
static int connect_unix(vault_client_t *vc)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", vc->socket_path);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}

static int connect_tcp(vault_client_t *vc, int64_t deadline_us)
{
    char port[16];
    snprintf(port, sizeof port, "%d", vc->tls_port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(vc->tls_host, port, &hints, &res) != 0)
        return -1;
    int fd = -1;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
            close(fd);
            fd = -1;
            continue;
        }
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int64_t left = deadline_us - time_mono_us();
        int err = 0;
        socklen_t el = sizeof err;
        if (left <= 0 || poll(&p, 1, (int)(left / 1000) + 1) != 1 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    }
    return fd;
}

static bool conn_open(vault_client_t *vc, vconn_t *c, int64_t deadline_us)
{
    char err[400] = "";
    int fd = vc->tls ? connect_tcp(vc, deadline_us) : connect_unix(vc);
    if (fd < 0) {
        note_down(vc, strerror(errno));
        return false;
    }
    int left_ms = (int)((deadline_us - time_mono_us()) / 1000);
    c->io = vio_open(fd, vc->tls, vc->tls_host, left_ms > 0 ? left_ms : 1, err, sizeof err);
    if (!c->io) {
        note_down(vc, err[0] ? err : "TLS handshake failed");
        return false;
    }
    vio_set_timeout(c->io, vc->timeout_ms); /* each send and recv from now on */
    if (atomic_exchange(&vc->down_logged, false))
        log_info("vault reachable again");
    return true;
}

static vault_status_t map_code(uint8_t code)
{
    if (code <= VAULT_ERROR)
        return (vault_status_t)code;
    return code == PST_BUSY ? VAULT_UNAVAILABLE : VAULT_ERROR;
}

/* Writes the request built in c->buf and reads the reply into it. */
static vio_status_t exchange(vconn_t *c, size_t reqlen, proto_msg_t *msg)
{
    vio_status_t s = vio_write_all(c->io, c->buf, reqlen);
    if (s != VIO_OK)
        return s;
    size_t have = 0, frame = 0;
    s = vio_read_frame(c->io, c->buf, BUF_SIZE, &have, &frame, 0);
    if (have > c->used)
        c->used = have;
    if (s != VIO_OK)
        return s == VIO_TOO_LARGE ? VIO_ERROR : s;
    if (have != frame) /* vaultd never sends more than one reply */
        return VIO_ERROR;
    return proto_parse(c->buf + PROTO_HDR, frame - PROTO_HDR, msg) ? VIO_ERROR : VIO_OK;
}

typedef size_t (*build_fn)(uint8_t *buf, const void *arg);

/* One request/reply on a pooled connection. On VAULT_OK-or-status return
 * with *out set, the caller reads msg (pointing into the connection buffer)
 * and then calls conn_release. */
static vault_status_t transact(vault_client_t *vc, build_fn build, const void *arg,
                               proto_msg_t *msg, vconn_t **out)
{
    *out = NULL;
    if (!vc)
        return VAULT_UNAVAILABLE; /* no vault configured: nothing can be asked */
    int64_t deadline = time_mono_us() + (int64_t)vc->timeout_ms * 1000;
    vconn_t *c = conn_acquire(vc, deadline);
    if (!c)
        return VAULT_UNAVAILABLE;
    for (int attempt = 0; attempt < 2; attempt++) {
        /* closed by vaultd while idle (restart, idle timeout)? A busy
         * connection is not probed: that would cost a syscall per call. */
        if (c->io && time_mono_us() - c->last_us > 1000000 && vio_readable_now(c->io)) {
            vio_close(c->io);
            c->io = NULL;
        }
        if (!c->io && !conn_open(vc, c, deadline))
            break;
        size_t reqlen = build(c->buf, arg);
        c->used = reqlen > c->used ? reqlen : c->used;
        if (reqlen == 0) {
            c->used = BUF_SIZE; /* a partial request may be in the buffer */
            conn_release(vc, c);
            return VAULT_ERROR;
        }
        vio_status_t s = exchange(c, reqlen, msg);
        if (s == VIO_OK) {
            c->last_us = time_mono_us();
            *out = c;
            return map_code(msg->code);
        }
        vio_close(c->io);
        c->io = NULL;
        if (s == VIO_TIMEOUT)
            break;
    }
    conn_release(vc, c);
    return VAULT_UNAVAILABLE;
}

/* ------------------------------------------------------------ operations */

typedef struct {
    uint8_t op;
    const char *merchant, *token, *pan, *cvc, *name, *purpose, *context, *sealed;
    const void *data;
    size_t data_len;
    int exp_month, exp_year;
    int number; /* T_VERSION or T_BATCH payload */
    bool has_number;
} req_t;

static size_t build_req(uint8_t *buf, const void *arg)
{
    const req_t *r = arg;
    proto_writer_t w;
    proto_begin(&w, buf, BUF_SIZE, r->op);
    if (r->merchant)
        proto_put_str(&w, T_MERCHANT, r->merchant);
    if (r->token)
        proto_put_str(&w, T_TOKEN, r->token);
    if (r->pan)
        proto_put_str(&w, T_PAN, r->pan);
    if (r->op == OP_TOKENIZE) {
        proto_put_u32(&w, T_EXP_MONTH, (uint32_t)r->exp_month);
        proto_put_u32(&w, T_EXP_YEAR, (uint32_t)r->exp_year);
    }
    if (r->cvc)
        proto_put_str(&w, T_CVC, r->cvc);
    if (r->name)
        proto_put_str(&w, T_NAME, r->name);
    if (r->purpose)
        proto_put_str(&w, T_PURPOSE, r->purpose);
    if (r->context)
        proto_put_str(&w, T_CONTEXT, r->context);
    if (r->sealed)
        proto_put_str(&w, T_SEALED, r->sealed);
    if (r->data)
        proto_put(&w, T_DATA, r->data, r->data_len);
    if (r->has_number)
        proto_put_u32(&w, r->op == OP_REWRAP ? T_BATCH : T_VERSION, (uint32_t)r->number);
    return proto_end(&w);
}

static bool id_ok(const char *s, size_t max)
{
    return s && *s && strlen(s) <= max && str_is_printable(s);
}

vault_status_t vault_ping(vault_client_t *vc)
{
    req_t r = {.op = OP_PING};
    proto_msg_t m;
    vconn_t *c;
    vault_status_t s = transact(vc, build_req, &r, &m, &c);
    if (c)
        conn_release(vc, c);
    return s;
}

static void read_meta(const proto_msg_t *m, vault_card_meta_t *out)
{
    uint32_t v;
    memset(out, 0, sizeof *out);
    PC_IGNORE(proto_get_str(m, T_TOKEN, out->token, sizeof out->token));
    PC_IGNORE(proto_get_str(m, T_BRAND, out->brand, sizeof out->brand));
    PC_IGNORE(proto_get_str(m, T_BIN, out->bin, sizeof out->bin));
    PC_IGNORE(proto_get_str(m, T_LAST4, out->last4, sizeof out->last4));
    PC_IGNORE(proto_get_str(m, T_FINGERPRINT, out->fingerprint, sizeof out->fingerprint));
    out->exp_month = proto_get_u32(m, T_EXP_MONTH, &v) ? (int)v : 0;
    out->exp_year = proto_get_u32(m, T_EXP_YEAR, &v) ? (int)v : 0;
    out->has_cvc = m->f[T_HAS_CVC].present && m->f[T_HAS_CVC].len == 1 && m->f[T_HAS_CVC].p[0];
}

static bool meta_complete(const vault_card_meta_t *o)
{
    return o->token[0] && o->brand[0] && o->last4[0] && o->fingerprint[0];
}

vault_status_t vault_tokenize(vault_client_t *vc, const char *merchant_id, const char *number,
                              int exp_month, int exp_year, const char *cvc, const char *name,
                              vault_card_meta_t *out)
{
    memset(out, 0, sizeof *out);
    if (!id_ok(merchant_id, 64))
        return VAULT_ERROR;
    if (!number || strlen(number) > 32)
        return VAULT_INVALID_NUMBER;
    if (exp_month < 0 || exp_year < 0)
        return VAULT_INVALID_EXPIRY;
    if (cvc && strlen(cvc) > 8)
        return VAULT_INVALID_CVC;
    if (name && strlen(name) > 127)
        return VAULT_ERROR;
    req_t r = {.op = OP_TOKENIZE,
               .merchant = merchant_id,
               .pan = number,
               .cvc = cvc,
               .name = name,
               .exp_month = exp_month,
               .exp_year = exp_year};
    proto_msg_t m;
    vconn_t *c;
    vault_status_t s = transact(vc, build_req, &r, &m, &c);
    if (s == VAULT_OK) {
        read_meta(&m, out);
        if (!meta_complete(out))
            s = VAULT_ERROR;
    }
    if (c)
        conn_release(vc, c);
    return s;
}

vault_status_t vault_card_info(vault_client_t *vc, const char *merchant_id, const char *token,
                               vault_card_meta_t *out)
{
    memset(out, 0, sizeof *out);
    if (!id_ok(merchant_id, 64) || !id_ok(token, 63))
        return VAULT_NOT_FOUND;
    req_t r = {.op = OP_CARD_INFO, .merchant = merchant_id, .token = token};
    proto_msg_t m;
    vconn_t *c;
    vault_status_t s = transact(vc, build_req, &r, &m, &c);
    if (s == VAULT_OK) {
        read_meta(&m, out);
        if (!meta_complete(out))
            s = VAULT_ERROR;
    }
    if (c)
        conn_release(vc, c);
    return s;
}

static vault_status_t read_card(const proto_msg_t *m, vault_card_t *card)
{
    uint32_t v;
    card->has_cvc = m->f[T_HAS_CVC].present && m->f[T_HAS_CVC].len == 1 && m->f[T_HAS_CVC].p[0];
    if (!proto_get_str(m, T_PAN, card->pan, sizeof card->pan) ||
        !proto_get_str(m, T_BRAND, card->brand, sizeof card->brand) ||
        !proto_get_u32(m, T_EXP_MONTH, &v))
        return VAULT_ERROR;
    card->exp_month = (int)v;
    if (!proto_get_u32(m, T_EXP_YEAR, &v))
        return VAULT_ERROR;
    card->exp_year = (int)v;
    if (m->f[T_NAME].present && !proto_get_str(m, T_NAME, card->name, sizeof card->name))
        return VAULT_ERROR;
    if (card->has_cvc && !proto_get_str(m, T_CVC, card->cvc, sizeof card->cvc))
        return VAULT_ERROR;
    return VAULT_OK;
}

vault_status_t vault_detokenize(vault_client_t *vc, const char *merchant_id, const char *token,
                                const char *purpose, vault_card_t **out)
{
    *out = NULL;
    if (!id_ok(merchant_id, 64) || !id_ok(token, 63))
        return VAULT_NOT_FOUND;
    if (!id_ok(purpose, 32))
        return VAULT_ERROR;
    vault_card_t *card = guarded_alloc(sizeof *card); /* zero-filled */
    if (!card)
        return VAULT_ERROR;
    req_t r = {.op = OP_DETOKENIZE, .merchant = merchant_id, .token = token, .purpose = purpose};
    proto_msg_t m;
    vconn_t *c;
    vault_status_t s = transact(vc, build_req, &r, &m, &c);
    if (s == VAULT_OK)
        s = read_card(&m, card);
    if (c)
        conn_release(vc, c);
    if (s != VAULT_OK) {
        vault_card_free(card);
        return s;
    }
    *out = card;
    return VAULT_OK;
}

void vault_card_free(vault_card_t *card)
{
    guarded_free(card); /* wiped at once */
}

vault_status_t vault_seal(vault_client_t *vc, const char *merchant_id, const char *context,
                          const void *plain, size_t len, char **sealed)
{
    *sealed = NULL;
    if (!id_ok(merchant_id, 64) || !id_ok(context, 128) || !plain || len > VAULT_SECRET_MAX)
        return VAULT_ERROR;
    req_t r = {
        .op = OP_SEAL, .merchant = merchant_id, .context = context, .data = plain, .data_len = len};
    proto_msg_t m;
    vconn_t *c;
    vault_status_t s = transact(vc, build_req, &r, &m, &c);
    if (s == VAULT_OK) {
        *sealed = proto_dup_str(&m, T_SEALED);
        if (!*sealed)
            s = VAULT_ERROR;
    }
    if (c)
        conn_release(vc, c);
    return s;
}

vault_status_t vault_unseal(vault_client_t *vc, const char *merchant_id, const char *context,
                            const char *sealed, secret_t **out)
{
    *out = NULL;
    if (!id_ok(merchant_id, 64) || !id_ok(context, 128) || !sealed || strlen(sealed) > 8192)
        return VAULT_ERROR;
    req_t r = {.op = OP_UNSEAL, .merchant = merchant_id, .context = context, .sealed = sealed};
    proto_msg_t m;
    vconn_t *c;
    vault_status_t s = transact(vc, build_req, &r, &m, &c);
    if (s == VAULT_OK) {
        const proto_field_t *f = &m.f[T_DATA];
        *out = f->present ? secret_from_bytes(f->p, f->len) : NULL;
        if (!*out)
            s = VAULT_ERROR;
    }
    if (c)
        conn_release(vc, c);
    return s;
}

/* ------------------------------------------------------------ key admin */

vault_status_t vault_key_rotate(vault_client_t *vc, int *version)
{
    req_t r = {.op = OP_ROTATE};
    proto_msg_t m;
    vconn_t *c;
    uint32_t v = 0;
    vault_status_t s = transact(vc, build_req, &r, &m, &c);
    if (s == VAULT_OK && !proto_get_u32(&m, T_VERSION, &v))
        s = VAULT_ERROR;
    *version = (int)v;
    if (c)
        conn_release(vc, c);
    return s;
}

vault_status_t vault_key_rewrap(vault_client_t *vc, int batch, int *moved, long *remaining)
{
    req_t r = {.op = OP_REWRAP, .number = batch, .has_number = batch > 0};
    proto_msg_t m;
    vconn_t *c;
    uint32_t n = 0, left = 0;
    vault_status_t s = transact(vc, build_req, &r, &m, &c);
    if (s == VAULT_OK &&
        (!proto_get_u32(&m, T_COUNT, &n) || !proto_get_u32(&m, T_REMAINING, &left)))
        s = VAULT_ERROR;
    *moved = (int)n;
    *remaining = (long)left;
    if (c)
        conn_release(vc, c);
    return s;
}

vault_status_t vault_key_retire(vault_client_t *vc, int min_version, long *remaining)
{
    req_t r = {.op = OP_RETIRE, .number = min_version, .has_number = min_version > 0};
    proto_msg_t m;
    vconn_t *c;
    uint32_t left = 0;
    vault_status_t s = transact(vc, build_req, &r, &m, &c);
    if (c && proto_get_u32(&m, T_REMAINING, &left))
        *remaining = (long)left;
    else
        *remaining = 0;
    if (c)
        conn_release(vc, c);
    return s;
}

vault_status_t vault_status(vault_client_t *vc, json_t **out)
{
    *out = NULL;
    req_t r = {.op = OP_STATUS};
    proto_msg_t m;
    vconn_t *c;
    vault_status_t s = transact(vc, build_req, &r, &m, &c);
    if (s == VAULT_OK) {
        const proto_field_t *f = &m.f[T_JSON];
        *out = f->present ? json_loadb((const char *)f->p, f->len, 0, NULL) : NULL;
        if (!*out)
            s = VAULT_ERROR;
    }
    if (c)
        conn_release(vc, c);
    return s;
}
