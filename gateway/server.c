/* gatewayd's HTTP server on libmicrohttpd: request context, body collection
 * with the 64 KiB cap, routing, authentication, JSON parsing, access log and
 * metrics, and the graceful stop.
 *
 * Threading trade-off: one thread per connection. Handlers block on
 * PostgreSQL, the vault socket and outbound HTTP; a thread per connection
 * lets them do so without a callback maze, at the price of a thread stack per
 * open connection (bounded by listen.max_connections). An event loop with
 * suspend/resume would save memory at thousands of idle connections, which a
 * checkout API behind a load balancer does not have. */
#include "gateway/gateway.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

gw_state_t gw;
static struct MHD_Daemon *daemon_handle;

#define MAX_READY_CHECKS 8
static gw_ready_fn ready_checks[MAX_READY_CHECKS];
static int nready_checks;

void gw_ready_add(gw_ready_fn fn)
{
    if (nready_checks < MAX_READY_CHECKS)
        ready_checks[nready_checks++] = fn;
}

/* Runs the registered readiness checks (used by GET /readyz). */
bool gw_ready_run(json_t *checks);
bool gw_ready_run(json_t *checks)
{
    bool all = true;
    for (int i = 0; i < nready_checks; i++) {
        const char *name = "check";
        char why[160] = "";
        bool ok = ready_checks[i](&name, why, sizeof why);
        json_object_set_new(checks, name, json_string(ok ? "ok" : why));
        all = all && ok;
    }
    return all;
}

/* ---------------------------------------------------------------- routing */

/* Path parameters are ASCII without controls: anything else (invalid UTF-8
 * after percent decoding) names no resource of ours and must not reach a
 * query, where PostgreSQL refuses its encoding with a 500. Handlers check
 * the finer rules of their names and ids (a space in a provider name: 400). */
static bool id_ok(const char *u, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)u[i] < 0x20 || (unsigned char)u[i] >= 0x7f)
            return false;
    return true;
}

static bool match(const char *pattern, const char *path, gw_request_t *rq, bool capture)
{
    int np = 0;
    const char *p = pattern, *u = path;
    while (*p && *u) {
        if (*p != '/' || *u != '/')
            return false;
        p++;
        u++;
        const char *pe = strchr(p, '/');
        const char *ue = strchr(u, '/');
        size_t pl = pe ? (size_t)(pe - p) : strlen(p);
        size_t ul = ue ? (size_t)(ue - u) : strlen(u);
        if (pl > 1 && p[0] == '{') {
            if (ul == 0 || ul > 255 || np >= GW_MAX_PATH_PARAMS || !id_ok(u, ul))
                return false;
            if (capture)
                rq->params[np] = strndup(u, ul);
            np++;
        } else if (pl != ul || strncmp(p, u, pl) != 0) {
            return false;
        }
        p += pl;
        u += ul;
    }
    if (*p || *u)
        return false;
    if (capture)
        rq->nparams = np;
    return true;
}

static const char *allowed_methods(const char *path, char *buf, size_t n)
{
    buf[0] = '\0';
    for (size_t i = 0; i < gw_nroutes; i++)
        if (match(gw_routes[i].pattern, path, NULL, false)) {
            if (buf[0])
                strncat(buf, ", ", n - strlen(buf) - 1);
            strncat(buf, gw_routes[i].method, n - strlen(buf) - 1);
        }
    return buf;
}

static void route_request(gw_request_t *rq)
{
    rq->route_idx = (int)gw_nroutes;
    for (size_t i = 0; i < gw_nroutes; i++) {
        bool same = strcmp(gw_routes[i].method, rq->method) == 0 ||
                    (strcmp(rq->method, "HEAD") == 0 && strcmp(gw_routes[i].method, "GET") == 0);
        /* match first, capture after: a pattern that fails at a later
         * segment would otherwise leave the ids it copied unowned */
        if (same && match(gw_routes[i].pattern, rq->path, NULL, false)) {
            PC_IGNORE(match(gw_routes[i].pattern, rq->path, rq, true));
            rq->route = &gw_routes[i];
            rq->route_idx = (int)i;
            return;
        }
    }
}

/* ------------------------------------------------------- request context */

static void client_ip(gw_request_t *rq)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(rq->con, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(rq->client_ip, sizeof rq->client_ip, "unknown");
    if (gw_cfg.trust_forwarded_for) {
        const char *xff = gw_header(rq, "X-Forwarded-For");
        if (xff && *xff) {
            const char *last = strrchr(xff, ',');
            last = last ? last + 1 : xff;
            while (*last == ' ')
                last++;
            unsigned char tmp[16];
            if (inet_pton(AF_INET, last, tmp) == 1 || inet_pton(AF_INET6, last, tmp) == 1) {
                snprintf(rq->client_ip, sizeof rq->client_ip, "%s", last);
                return;
            }
        }
    }
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, rq->client_ip,
                  sizeof rq->client_ip);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, rq->client_ip,
                  sizeof rq->client_ip);
}

static enum MHD_Result sum_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    size_t *total = cls;
    *total += strlen(key) + (value ? strlen(value) : 0) + 4;
    return MHD_YES;
}

static gw_request_t *request_new(struct MHD_Connection *con, const char *url, const char *method)
{
    gw_request_t *rq = calloc(1, sizeof *rq);
    if (!rq)
        return NULL;
    rq->con = con;
    rq->start_us = time_mono_us();
    snprintf(rq->method, sizeof rq->method, "%s", method);
    rq->path = strdup(url);
    ids_new(rq->request_id, sizeof rq->request_id, "req_");
    client_ip(rq);
    atomic_fetch_add(&gw.in_flight, 1);
    return rq;
}

static void request_free(gw_request_t *rq)
{
    if (rq->ctx_free)
        rq->ctx_free(rq->ctx);
    for (int i = 0; i < rq->nparams; i++)
        free(rq->params[i]);
    json_decref(rq->json);
    wipe_free(rq->body); /* whichever handler ran, or none: a token body holds a PAN */
    free(rq->path);
    free(rq);
}

/* ------------------------------------------------------------- dispatch */

static bool is_json_type(const char *ct)
{
    if (!ct || strncasecmp(ct, "application/json", 16) != 0)
        return false;
    const char *rest = ct + 16;
    while (*rest == ' ')
        rest++;
    return *rest == '\0' || *rest == ';';
}

static enum MHD_Result authenticate(gw_request_t *rq, bool *done)
{
    *done = true;
    const char *h = gw_header(rq, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || !*h)
        return gw_reply_error(rq, ERR_API_KEY_MISSING, NULL, NULL);
    if (strncasecmp(h, "Bearer ", 7) != 0)
        return gw_reply_error(rq, ERR_API_KEY_INVALID, NULL,
                              "Use Authorization: Bearer <key>.");
    const char *key = h + 7;
    while (*key == ' ')
        key++;
    switch (gw_auth_resolve(gw.db, key, &rq->auth)) {
    case GW_AUTH_OK:
        break;
    case GW_AUTH_MISSING:
        return gw_reply_error(rq, ERR_API_KEY_MISSING, NULL, NULL);
    case GW_AUTH_EXPIRED:
        return gw_reply_error(rq, ERR_API_KEY_EXPIRED, NULL, NULL);
    case GW_AUTH_UNAVAILABLE:
        return gw_reply_error(rq, ERR_DATABASE_UNAVAILABLE, NULL, NULL);
    default:
        return gw_reply_error(rq, ERR_API_KEY_INVALID, NULL, NULL);
    }
    rq->authed = true;
    if (!(rq->route->roles & rq->auth.role)) {
        char msg[160];
        snprintf(msg, sizeof msg, "A %s key may not call %s %s.", gw_role_name(rq->auth.role),
                 rq->route->method, rq->route->pattern);
        return gw_reply_error(rq, ERR_PERMISSION_DENIED, NULL, msg);
    }
    *done = false;
    return MHD_YES;
}

static enum MHD_Result parse_body(gw_request_t *rq, bool *done)
{
    *done = true;
    if (rq->route->body == GW_BODY_NONE) {
        *done = false;
        return MHD_YES;
    }
    if (rq->body_len == 0) {
        if (rq->route->body == GW_BODY_REQUIRED)
            return gw_reply_error(rq, ERR_INVALID_JSON, NULL, "A JSON object body is required.");
        *done = false;
        return MHD_YES;
    }
    if (!is_json_type(gw_header(rq, MHD_HTTP_HEADER_CONTENT_TYPE)))
        return gw_reply_error(rq, ERR_CONTENT_TYPE, "Content-Type", NULL);
    json_error_t je;
    rq->json = json_loads_strict(rq->body, rq->body_len, &je);
    if (!rq->json) {
        /* jansson's own text may quote the offending input (a card number,
         * say); report the position only. */
        char msg[128];
        snprintf(msg, sizeof msg, "The request body is not valid JSON (line %d, column %d).",
                 je.line, je.column);
        return gw_reply_error(rq, ERR_INVALID_JSON, NULL, msg);
    }
    if (!json_is_object(rq->json))
        return gw_reply_error(rq, ERR_BODY_NOT_OBJECT, NULL, NULL);
    *done = false;
    return MHD_YES;
}

static enum MHD_Result dispatch(gw_request_t *rq)
{
    if (rq->body_too_large)
        return gw_reply_error(rq, ERR_BODY_TOO_LARGE, NULL, NULL);
    if (!rq->route) {
        char allow[128];
        if (*allowed_methods(rq->path, allow, sizeof allow)) {
            char msg[200];
            snprintf(msg, sizeof msg, "Allowed methods: %s.", allow);
            return gw_reply_json_hdr(rq, 405, err_body(ERR_METHOD_NOT_ALLOWED, NULL, msg),
                                     MHD_HTTP_HEADER_ALLOW, allow);
        }
        return gw_reply_error(rq, ERR_ROUTE_NOT_FOUND, NULL, NULL);
    }
    bool done;
    enum MHD_Result r;
    if (rq->route->roles) {
        r = authenticate(rq, &done);
        if (done)
            return r;
    }
    r = parse_body(rq, &done);
    if (done)
        return r;
    return rq->route->fn(rq);
}

/* How the body is delimited. Two Content-Length headers, a transfer coding
 * other than chunked, two Transfer-Encoding headers, or Content-Length next to
 * Transfer-Encoding leave the body's end ambiguous (the root of request
 * smuggling behind a proxy that reads it another way; MHD would go by the
 * chunks and take what follows as the next request): refused, not guessed. */
typedef struct {
    int content_lengths;
    int codings;
    bool bad_coding;
} framing_t;

static enum MHD_Result check_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    (void)kind;
    framing_t *f = cls;
    if (!strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH))
        f->content_lengths++;
    else if (!strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
        f->codings++;
        f->bad_coding = f->bad_coding || !value || strcasecmp(value, "chunked") != 0;
    }
    return MHD_YES;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *con, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_size, void **con_cls)
{
    gw_request_t *rq = *con_cls;
    if (!rq) {
        rq = request_new(con, url, method);
        if (!rq)
            return MHD_NO;
        *con_cls = rq;
        route_request(rq);
        size_t hdr = 0;
        MHD_get_connection_values(con, MHD_HEADER_KIND, sum_header, &hdr);
        const char *cl = gw_header(rq, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (hdr > GW_MAX_HEADER_BYTES) {
            rq->early_reply = true;
            return gw_reply_error(rq, ERR_HEADERS_TOO_LARGE, NULL, NULL);
        }
        framing_t fr = {0};
        MHD_get_connection_values(con, MHD_HEADER_KIND, check_framing, &fr);
        if (fr.content_lengths > 1 || fr.bad_coding || fr.codings > 1 ||
            (fr.codings && fr.content_lengths)) {
            /* and the connection closes: whatever follows is not a request */
            rq->early_reply = true;
            return gw_reply_json_hdr(
                rq, 400,
                err_body(ERR_MESSAGE_FRAMING,
                         fr.content_lengths > 1 ? "Content-Length" : "Transfer-Encoding", NULL),
                MHD_HTTP_HEADER_CONNECTION, "close");
        }
        if (cl && strtoull(cl, NULL, 10) > GW_MAX_BODY) {
            rq->early_reply = true;
            return gw_reply_error(rq, ERR_BODY_TOO_LARGE, NULL, NULL);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (rq->early_reply || rq->body_too_large)
            return MHD_YES;
        if (rq->body_len + n > GW_MAX_BODY) {
            rq->body_too_large = true;
            wipe_free(rq->body);
            rq->body = NULL;
            rq->body_len = 0;
            return MHD_YES;
        }
        if (rq->body_len + n + 1 > rq->body_cap) {
            size_t nc = rq->body_cap ? rq->body_cap * 2 : 1024;
            while (nc < rq->body_len + n + 1)
                nc *= 2;
            char *nb = wipe_realloc(rq->body, nc);
            if (!nb)
                return MHD_NO;
            rq->body = nb;
            rq->body_cap = nc;
        }
        memcpy(rq->body + rq->body_len, upload, n);
        rq->body_len += n;
        rq->body[rq->body_len] = '\0';
        return MHD_YES;
    }
    if (rq->early_reply)
        return MHD_YES;
    return dispatch(rq);
}

static void on_completed(void *cls, struct MHD_Connection *con, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    gw_request_t *rq = *con_cls;
    if (!rq)
        return;
    *con_cls = NULL;
    int64_t dur = time_mono_us() - rq->start_us;
    unsigned status = rq->status ? rq->status : 499; /* client went away first */
    gw_metrics_observe(rq->route_idx, rq->method, status, dur);
    json_t *f = json_pack("{s:s, s:s, s:s, s:i, s:f, s:s}", "request_id", rq->request_id,
                          "method", rq->method, "route",
                          rq->route ? rq->route->pattern : "unmatched", "status", (int)status,
                          "duration_ms", (double)dur / 1000.0, "client_ip", rq->client_ip);
    if (rq->authed)
        json_object_set_new(f, "merchant_id", json_string(rq->auth.merchant_id));
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
        json_object_set_new(f, "terminated", json_integer(toe));
    log_json(status >= 500 ? LOG_WARN : LOG_INFO, "request", f);
    request_free(rq);
    atomic_fetch_sub(&gw.in_flight, 1);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    log_json(LOG_DEBUG, "http server", json_pack("{s:s}", "detail", msg));
}

/* ------------------------------------------------------------- lifecycle */

int gw_server_start(void)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, gw_cfg.listen_address, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)gw_cfg.port);
    } else if (inet_pton(AF_INET6, gw_cfg.listen_address, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)gw_cfg.port);
        flags |= MHD_USE_IPv6;
    } else {
        log_error("listen.address: not an IP address: %s", gw_cfg.listen_address);
        return -1;
    }
    daemon_handle = MHD_start_daemon(
        flags, (uint16_t)gw_cfg.port, NULL, NULL, on_access, NULL, MHD_OPTION_SOCK_ADDR, &ss,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)gw_cfg.max_connections,
        /* one address holding every slot open with trickled headers (slowloris)
         * would lock everyone else out */
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)gw_cfg.max_connections_per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)gw_cfg.connection_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024), MHD_OPTION_LISTEN_BACKLOG_SIZE,
        1024u, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
        NULL, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_END);
    if (!daemon_handle) {
        log_error("cannot listen on %s:%d", gw_cfg.listen_address, (int)gw_cfg.port);
        return -1;
    }
    if (gw_cfg.port_file) {
        char buf[16];
        int n = snprintf(buf, sizeof buf, "%u\n", gw_server_port());
        if (file_write_atomic(gw_cfg.port_file, buf, (size_t)n, 0644) != 0)
            log_warn("cannot write listen.port_file %s", gw_cfg.port_file);
    }
    return 0;
}

uint16_t gw_server_port(void)
{
    const union MHD_DaemonInfo *di =
        daemon_handle ? MHD_get_daemon_info(daemon_handle, MHD_DAEMON_INFO_BIND_PORT) : NULL;
    return di ? di->port : 0;
}

void gw_server_stop(void)
{
    if (!daemon_handle)
        return;
    atomic_store(&gw.shutting_down, true);
    MHD_socket fd = MHD_quiesce_daemon(daemon_handle);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    int64_t deadline = time_mono_us() + gw_cfg.shutdown_grace_s * 1000000;
    int pending;
    while ((pending = atomic_load(&gw.in_flight)) > 0 && time_mono_us() < deadline)
        usleep(10 * 1000);
    if (pending > 0)
        log_warn("shutdown grace period over with %d request(s) still running", pending);
    MHD_stop_daemon(daemon_handle);
    daemon_handle = NULL;
}
