/* vaultd's listeners: the unix socket (mode 0660, peers checked with
 * SO_PEERCRED against the allow and admin lists) and, optionally, TCP with
 * mutual TLS. One thread per connection, like gatewayd: clients keep a
 * small pool of long-lived connections, so the thread count is bounded by
 * the pools, and a handler may block on PostgreSQL without a callback maze.
 *
 * A malformed frame is answered and the connection keeps going; an
 * oversized length prefix is answered and the connection closed (the
 * stream cannot be resynchronised); a peer that is not allowed gets one
 * "denied" reply and is disconnected. The daemon serves on regardless. */
#include "vault/vaultd/vaultd.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define BUF_SIZE      (PROTO_HDR + PROTO_FRAME_MAX)
#define FRAME_TIMEOUT 10000 /* ms to receive the rest of a frame once it began */
#define MAX_UIDS      64

typedef struct {
    uint8_t rx[BUF_SIZE];
    uint8_t tx[BUF_SIZE];
    vd_scratch_t scratch;
} conn_mem_t;

typedef struct {
    int fd;
    bool tls;
    char addr[64];
} accepted_t;

static struct {
    int unix_fd, tls_fd;
    int wake[2];
    vio_tls_conf_t *tls;
    uid_t allow[MAX_UIDS], admin[MAX_UIDS];
    int nallow, nadmin;
    pthread_t acceptor;
    bool acceptor_running;
    pthread_mutex_t mu;
    int *fds; /* open connection sockets, for the stop */
    atomic_bool stopping;
    uint16_t tls_port;
} srv = {.unix_fd = -1, .tls_fd = -1, .wake = {-1, -1}, .mu = PTHREAD_MUTEX_INITIALIZER};

static bool uid_in(const uid_t *list, int n, uid_t uid)
{
    for (int i = 0; i < n; i++)
        if (list[i] == uid)
            return true;
    return false;
}

static void fd_track(int fd, bool add)
{
    pthread_mutex_lock(&srv.mu);
    for (int64_t i = 0; i < vd_cfg.max_connections; i++)
        if (add ? srv.fds[i] < 0 : srv.fds[i] == fd) {
            srv.fds[i] = add ? fd : -1;
            break;
        }
    pthread_mutex_unlock(&srv.mu);
}

/* ------------------------------------------------------------ one connection */

/* Whether name is one of the comma-separated list's entries (spaces around
 * an entry ignored). */
static bool name_in(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; p && *p;) {
        p += strspn(p, " ,");
        size_t len = strcspn(p, ",");
        size_t end = len;
        while (end > 0 && p[end - 1] == ' ')
            end--;
        if (end == n && n > 0 && !memcmp(p, name, n))
            return true;
        p += len;
    }
    return false;
}

static void identify(vd_conn_t *c, const accepted_t *a)
{
    if (a->tls) {
        char cn[64];
        vio_peer_name(c->io, cn, sizeof cn);
        snprintf(c->peer, sizeof c->peer, "tls:%s", cn[0] ? cn : a->addr);
        /* the CA says who the peer is; whether that one may have cards is
         * ours to say: a CA that also certifies other services must not
         * make them card readers */
        c->allowed = cn[0] && name_in(vd_cfg.tls_allow_names, cn);
        c->admin = false; /* key administration is local only */
        if (!c->allowed)
            log_json(LOG_WARN, "TLS peer refused: name not on the allow list",
                     json_pack("{s:s, s:s}", "name", cn, "address", a->addr));
        return;
    }
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(a->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
        snprintf(c->peer, sizeof c->peer, "uid:unknown");
        return;
    }
    snprintf(c->peer, sizeof c->peer, "uid:%u", (unsigned)cred.uid);
    c->admin = uid_in(srv.admin, srv.nadmin, cred.uid);
    c->allowed = uid_in(srv.allow, srv.nallow, cred.uid);
    if (!c->allowed && !c->admin)
        log_json(LOG_WARN, "peer refused: uid not on the allow list",
                 json_pack("{s:i, s:i}", "uid", (int)cred.uid, "pid", (int)cred.pid));
}

static bool send_reply(vd_conn_t *c, size_t n)
{
    return n > 0 && vio_write_all(c->io, c->tx, n) == VIO_OK;
}

/* Reads, answers and wipes frames until the peer leaves or must be dropped. */
static void serve(vd_conn_t *c, bool connect_only)
{
    /* a refused peer gets no idle allowance: it cannot hold a thread */
    vio_set_timeout(c->io, connect_only ? FRAME_TIMEOUT : (int)vd_cfg.idle_timeout_s * 1000);
    size_t have = 0;
    for (;;) {
        size_t frame = 0;
        vio_status_t s = vio_read_frame(c->io, c->rx, BUF_SIZE, &have, &frame, FRAME_TIMEOUT);
        if (s == VIO_TOO_LARGE) {
            PC_IGNORE(send_reply(c, vd_reply_code(c->tx, PST_TOO_LARGE, "frame length invalid")));
            return;
        }
        if (s != VIO_OK)
            return;
        proto_msg_t m;
        const char *bad = proto_parse(c->rx + PROTO_HDR, frame - PROTO_HDR, &m);
        size_t n;
        if (connect_only)
            n = vd_reply_code(c->tx, VAULT_DENIED, "peer not allowed");
        else if (bad)
            n = vd_reply_code(c->tx, PST_BAD_FRAME, bad);
        else
            n = vd_handle(c, &m);
        bool sent = send_reply(c, n);
        /* a frame that arrived behind this one moves to the front */
        memmove(c->rx, c->rx + frame, have - frame);
        sodium_memzero(c->rx + (have - frame), frame);
        have -= frame;
        sodium_memzero(c->tx, n);
        sodium_memzero(c->scratch, VD_SCRATCH_WIPE);
        if (!sent || connect_only)
            return;
    }
}

static void *conn_main(void *arg)
{
    accepted_t a = *(accepted_t *)arg;
    free(arg);
    conn_mem_t *mem = sodium_malloc(sizeof *mem);
    vd_conn_t c = {0};
    char err[400] = "";
    if (!mem) {
        close(a.fd);
        goto out;
    }
    c.rx = mem->rx;
    c.tx = mem->tx;
    c.scratch = &mem->scratch;
    c.io = vio_open(a.fd, a.tls ? srv.tls : NULL, NULL, FRAME_TIMEOUT, err, sizeof err);
    if (!c.io) {
        log_json(LOG_WARN, "TLS client refused",
                 json_pack("{s:s, s:s}", "address", a.addr, "error", err));
        goto out;
    }
    fd_track(a.fd, true);
    identify(&c, &a);
    serve(&c, !c.allowed && !c.admin);
    fd_track(a.fd, false);
    vio_close(c.io);
out:
    if (mem)
        sodium_free(mem);
    atomic_fetch_sub(&vd_connections, 1);
    return NULL;
}

/* ------------------------------------------------------------ accepting */

static void refuse_busy(int fd)
{
    uint8_t buf[64];
    size_t n = vd_reply_code(buf, PST_BUSY, NULL);
    PC_IGNORE(send(fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0);
    close(fd);
}

static void accept_one(int lfd, bool tls)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
    if (fd < 0)
        return;
    if (atomic_fetch_add(&vd_connections, 1) >= vd_cfg.max_connections) {
        atomic_fetch_sub(&vd_connections, 1);
        log_warn("connection limit (%d) reached; refusing a client", (int)vd_cfg.max_connections);
        refuse_busy(fd);
        return;
    }
    accepted_t *a = calloc(1, sizeof *a);
    pthread_attr_t attr;
    pthread_t t;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    if (a) {
        a->fd = fd;
        a->tls = tls;
        snprintf(a->addr, sizeof a->addr, "unix");
        if (tls) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            if (ss.ss_family == AF_INET)
                inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, a->addr, sizeof a->addr);
            else if (ss.ss_family == AF_INET6)
                inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, a->addr,
                          sizeof a->addr);
        }
    }
    if (!a || pthread_create(&t, &attr, conn_main, a) != 0) {
        free(a);
        close(fd);
        atomic_fetch_sub(&vd_connections, 1);
    }
    pthread_attr_destroy(&attr);
}

static void *acceptor_main(void *arg)
{
    (void)arg;
    struct pollfd p[3] = {{.fd = srv.wake[0], .events = POLLIN},
                          {.fd = srv.unix_fd, .events = POLLIN},
                          {.fd = srv.tls_fd, .events = POLLIN}};
    int np = srv.tls_fd >= 0 ? 3 : 2;
    while (!atomic_load(&srv.stopping)) {
        if (poll(p, (nfds_t)np, -1) < 0) {
            if (errno != EINTR)
                usleep(10000);
            continue;
        }
        if (p[0].revents)
            break;
        if (p[1].revents & POLLIN)
            accept_one(srv.unix_fd, false);
        if (np == 3 && (p[2].revents & POLLIN))
            accept_one(srv.tls_fd, true);
    }
    return NULL;
}

/* ------------------------------------------------------------ binding */

static int bind_unix(char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(vd_cfg.socket_path) >= sizeof sa.sun_path) {
        snprintf(err, errlen, "socket.path: longer than %zu bytes", sizeof sa.sun_path - 1);
        return -1;
    }
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", vd_cfg.socket_path);
    struct stat st;
    if (lstat(vd_cfg.socket_path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, errlen, "socket.path: %s exists and is not a socket", vd_cfg.socket_path);
            return -1;
        }
        unlink(vd_cfg.socket_path); /* left by a previous run */
    }
    gid_t gid = (gid_t)-1;
    if (vd_cfg.socket_group) {
        struct group *g = getgrnam(vd_cfg.socket_group);
        if (!g) {
            snprintf(err, errlen, "socket.group: no such group: %s", vd_cfg.socket_group);
            return -1;
        }
        gid = g->gr_gid;
    }
    srv.unix_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    mode_t old = umask(0117); /* created 0660: no moment at a wider mode */
    int rc = srv.unix_fd < 0 ? -1 : bind(srv.unix_fd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (rc != 0 || chmod(vd_cfg.socket_path, 0660) != 0 ||
        (gid != (gid_t)-1 && chown(vd_cfg.socket_path, (uid_t)-1, gid) != 0) ||
        listen(srv.unix_fd, 1024) != 0) {
        snprintf(err, errlen, "socket.path: cannot listen on %s: %s", vd_cfg.socket_path,
                 strerror(errno));
        return -1;
    }
    return 0;
}

static int bind_tls(char *err, size_t errlen)
{
    srv.tls = vio_tls_conf_new(true, vd_cfg.tls_ca_file, vd_cfg.tls_cert_file, vd_cfg.tls_key_file,
                               err, errlen);
    if (!srv.tls)
        return -1;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    socklen_t sl;
    if (inet_pton(AF_INET, vd_cfg.tls_address, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)vd_cfg.tls_port);
        sl = sizeof *s4;
    } else if (inet_pton(AF_INET6, vd_cfg.tls_address, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)vd_cfg.tls_port);
        sl = sizeof *s6;
    } else {
        snprintf(err, errlen, "tls.address: not an IP address: %s", vd_cfg.tls_address);
        return -1;
    }
    int one = 1;
    srv.tls_fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (srv.tls_fd < 0 || setsockopt(srv.tls_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        bind(srv.tls_fd, (struct sockaddr *)&ss, sl) != 0 || listen(srv.tls_fd, 1024) != 0) {
        snprintf(err, errlen, "tls: cannot listen on %s:%d: %s", vd_cfg.tls_address,
                 (int)vd_cfg.tls_port, strerror(errno));
        return -1;
    }
    sl = sizeof ss;
    getsockname(srv.tls_fd, (struct sockaddr *)&ss, &sl);
    srv.tls_port = ntohs(ss.ss_family == AF_INET ? s4->sin_port : s6->sin6_port);
    if (vd_cfg.tls_port_file) {
        char buf[16];
        int n = snprintf(buf, sizeof buf, "%u\n", srv.tls_port);
        if (file_write_atomic(vd_cfg.tls_port_file, buf, (size_t)n, 0644) != 0)
            log_warn("cannot write tls.port_file %s", vd_cfg.tls_port_file);
    }
    return 0;
}

static bool own_uid(uid_t *out)
{
    if (vd_cfg.user && geteuid() == 0) {
        struct passwd *pw = getpwnam(vd_cfg.user);
        if (!pw)
            return false;
        *out = pw->pw_uid;
        return true;
    }
    *out = geteuid();
    return true;
}

int vd_server_start(char *err, size_t errlen)
{
    if (vd_cfg.allow_uids) {
        if (!vd_parse_uids(vd_cfg.allow_uids, srv.allow, MAX_UIDS, &srv.nallow, err, errlen))
            return -1;
    } else if (own_uid(&srv.allow[0])) {
        srv.nallow = 1;
    }
    if (!vd_parse_uids(vd_cfg.admin_uids, srv.admin, MAX_UIDS, &srv.nadmin, err, errlen))
        return -1;
    srv.fds = malloc((size_t)vd_cfg.max_connections * sizeof *srv.fds);
    if (!srv.fds || pipe2(srv.wake, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "out of resources");
        return -1;
    }
    for (int64_t i = 0; i < vd_cfg.max_connections; i++)
        srv.fds[i] = -1;
    if (bind_unix(err, errlen) != 0)
        return -1;
    if (vd_cfg.tls_address && bind_tls(err, errlen) != 0)
        return -1;
    return 0;
}

int vd_server_run(void)
{
    if (pthread_create(&srv.acceptor, NULL, acceptor_main, NULL) != 0)
        return -1;
    srv.acceptor_running = true;
    return 0;
}

uint16_t vd_server_tls_port(void)
{
    return srv.tls_port;
}

void vd_server_stop(void)
{
    atomic_store(&srv.stopping, true);
    if (srv.acceptor_running) {
        PC_IGNORE(write(srv.wake[1], "x", 1) < 0);
        pthread_join(srv.acceptor, NULL);
    }
    if (srv.unix_fd >= 0) {
        close(srv.unix_fd);
        unlink(vd_cfg.socket_path);
    }
    if (srv.tls_fd >= 0)
        close(srv.tls_fd);
    /* Wake idle connections; one in the middle of a request still writes
     * its reply before it sees the end of input. */
    pthread_mutex_lock(&srv.mu);
    for (int64_t i = 0; srv.fds && i < vd_cfg.max_connections; i++)
        if (srv.fds[i] >= 0)
            shutdown(srv.fds[i], SHUT_RD);
    pthread_mutex_unlock(&srv.mu);
    for (int i = 0; i < 500 && atomic_load(&vd_connections) > 0; i++)
        usleep(10000);
    if (atomic_load(&vd_connections) > 0)
        log_warn("%d connection(s) still open at exit", atomic_load(&vd_connections));
    else
        vio_tls_conf_free(srv.tls);
    free(srv.fds);
    srv.fds = NULL;
}
