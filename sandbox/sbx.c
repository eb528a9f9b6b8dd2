/* The sandbox framework (see sandbox.h): two listeners (the API one can be
 * taken down to simulate an outage, the control one stays up), fault
 * injection, a charge ledger and an idempotency store, all in memory. */
#include "sandbox/sandbox.h"
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SBX_MAX_BODY (1u << 20)

static const sbx_dialect_t *dialect;
static struct MHD_Daemon *api_daemon, *ctl_daemon;
static uint16_t api_port;
static atomic_bool stopping;
static pthread_mutex_t state_mu = PTHREAD_MUTEX_INITIALIZER;

/* ------------------------------------------------------------ hash maps */

typedef struct hnode {
    char *key;
    void *val;
    struct hnode *next;
} hnode_t;

typedef struct {
    hnode_t **b;
    size_t nb;
} hmap_t;

static size_t hslot(const hmap_t *m, const char *k)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *k; k++)
        h = (h ^ (unsigned char)*k) * 1099511628211ULL;
    return (size_t)(h % m->nb);
}

static void *hget(hmap_t *m, const char *k)
{
    if (!m->b || !k || !*k)
        return NULL;
    for (hnode_t *n = m->b[hslot(m, k)]; n; n = n->next)
        if (!strcmp(n->key, k))
            return n->val;
    return NULL;
}

static void hput(hmap_t *m, const char *k, void *v)
{
    if (!k || !*k)
        return;
    if (!m->b) {
        m->nb = 65536;
        m->b = calloc(m->nb, sizeof *m->b);
    }
    size_t s = hslot(m, k);
    for (hnode_t *n = m->b[s]; n; n = n->next)
        if (!strcmp(n->key, k)) {
            n->val = v;
            return;
        }
    hnode_t *n = malloc(sizeof *n);
    n->key = strdup(k);
    n->val = v;
    n->next = m->b[s];
    m->b[s] = n;
}

/* --------------------------------------------------------------- ledger */

static sbx_charge_t **charges;
static size_t ncharges, capcharges;
static hmap_t by_id, by_key, by_ref;

bool sbx_ledger_add(const sbx_charge_t *c)
{
    pthread_mutex_lock(&state_mu);
    if (hget(&by_key, c->idempotency_key)) {
        pthread_mutex_unlock(&state_mu);
        return false;
    }
    if (ncharges == capcharges) {
        capcharges = capcharges ? capcharges * 2 : 1024;
        charges = realloc(charges, capcharges * sizeof *charges);
    }
    sbx_charge_t *n = malloc(sizeof *n);
    *n = *c;
    charges[ncharges++] = n;
    hput(&by_id, n->id, n);
    hput(&by_key, n->idempotency_key, n);
    hput(&by_ref, n->reference, n);
    pthread_mutex_unlock(&state_mu);
    return true;
}

static bool ledger_copy(hmap_t *m, const char *k, sbx_charge_t *out)
{
    pthread_mutex_lock(&state_mu);
    sbx_charge_t *c = hget(m, k);
    if (c)
        *out = *c;
    pthread_mutex_unlock(&state_mu);
    return c != NULL;
}

bool sbx_ledger_get(const char *id, sbx_charge_t *out)
{
    return ledger_copy(&by_id, id, out);
}

bool sbx_ledger_by_key(const char *k, sbx_charge_t *out)
{
    return ledger_copy(&by_key, k, out);
}

bool sbx_ledger_by_reference(const char *r, sbx_charge_t *out)
{
    return ledger_copy(&by_ref, r, out);
}

bool sbx_ledger_update(const sbx_charge_t *c)
{
    pthread_mutex_lock(&state_mu);
    sbx_charge_t *old = hget(&by_id, c->id);
    if (old)
        *old = *c;
    pthread_mutex_unlock(&state_mu);
    return old != NULL;
}

size_t sbx_ledger_count(void)
{
    pthread_mutex_lock(&state_mu);
    size_t n = ncharges;
    pthread_mutex_unlock(&state_mu);
    return n;
}

static json_t *ledger_json(void)
{
    json_t *a = json_array();
    pthread_mutex_lock(&state_mu);
    for (size_t i = 0; i < ncharges; i++) {
        const sbx_charge_t *c = charges[i];
        json_array_append_new(
            a, json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:s}", "id", c->id,
                         "idempotency_key", c->idempotency_key, "reference", c->reference,
                         "amount", (json_int_t)c->amount, "captured", (json_int_t)c->captured,
                         "refunded", (json_int_t)c->refunded, "currency", c->currency, "status",
                         c->status, "last4", c->last4));
    }
    size_t n = ncharges;
    pthread_mutex_unlock(&state_mu);
    return json_pack("{s:I, s:o}", "count", (json_int_t)n, "charges", a);
}

/* ---------------------------------------------------------- idempotency */

typedef struct {
    char *fingerprint;
    unsigned status;
    char *body; /* NULL while in progress */
} idem_t;

static hmap_t idem;

/* A request body holds a card number and CVC: only its hash is kept to tell
 * a replay from a different request under the same key. */
static void fp_hash(const char *fp, char out[65])
{
    unsigned char h[32];
    crypto_generichash(h, sizeof h, (const unsigned char *)(fp ? fp : ""), fp ? strlen(fp) : 0,
                       NULL, 0);
    sodium_bin2hex(out, 65, h, sizeof h);
}

sbx_idem_t sbx_idem_begin(const char *key, const char *fp, unsigned *status, char **body)
{
    char fph[65];
    fp_hash(fp, fph);
    pthread_mutex_lock(&state_mu);
    idem_t *e = hget(&idem, key);
    sbx_idem_t r = SBX_IDEM_NEW;
    if (!e) {
        e = calloc(1, sizeof *e);
        e->fingerprint = strdup(fph);
        hput(&idem, key, e);
    } else if (strcmp(e->fingerprint, fph) != 0) {
        r = SBX_IDEM_MISMATCH;
    } else if (!e->body) {
        r = SBX_IDEM_IN_PROGRESS;
    } else {
        r = SBX_IDEM_REPLAY;
        *status = e->status;
        *body = strdup(e->body);
    }
    pthread_mutex_unlock(&state_mu);
    return r;
}

void sbx_idem_finish(const char *key, unsigned status, const char *body)
{
    pthread_mutex_lock(&state_mu);
    idem_t *e = hget(&idem, key);
    if (e && body) {
        free(e->body);
        e->body = strdup(body);
        e->status = status;
    } else if (e) {
        /* released: a later request with this key starts afresh */
        hput(&idem, key, NULL);
        free(e->fingerprint);
        free(e);
    }
    pthread_mutex_unlock(&state_mu);
}

/* --------------------------------------------------------------- faults */

static struct {
    sbx_mode_t mode;
    int64_t latency_ms;
    double rate;
    bool after_processing;
    int64_t hold_ms;
    int64_t fail_next;
} faults = {.rate = 1.0, .hold_ms = 60000};

static const char *mode_names[] = {"none",    "down",    "error_500", "reset",
                                   "timeout", "latency", "busy"};

static void nap_ms(int64_t ms)
{
    for (int64_t left = ms; left > 0 && !atomic_load(&stopping); left -= 20)
        usleep((useconds_t)(left < 20 ? left : 20) * 1000);
}

sbx_fault_t sbx_fault_draw(void)
{
    sbx_fault_t f = {SBX_NONE, false};
    pthread_mutex_lock(&state_mu);
    sbx_mode_t mode = faults.mode;
    double rate = faults.rate;
    int64_t lat = faults.latency_ms;
    bool after = faults.after_processing;
    pthread_mutex_unlock(&state_mu);
    if (mode == SBX_NONE || mode == SBX_DOWN)
        return f;
    if (rate < 1.0 && (double)randombytes_uniform(1000000) / 1e6 >= rate)
        return f;
    if (mode == SBX_LATENCY) {
        nap_ms(lat);
        return f;
    }
    f.mode = mode;
    f.after_processing = after && mode != SBX_BUSY;
    return f;
}

enum MHD_Result sbx_fault_fail(sbx_req_t *rq, const sbx_fault_t *f)
{
    switch (f->mode) {
    case SBX_ERROR_500:
        return sbx_reply_json(
            rq, 500,
            json_pack("{s:{s:s, s:s}}", "error", "type", "api_error", "message",
                      "sandbox: injected internal server error"));
    case SBX_BUSY: {
        const char *b = "{\"error\":{\"type\":\"rate_limit_error\",\"message\":"
                        "\"sandbox: injected rate limit\"}}";
        struct MHD_Response *r =
            MHD_create_response_from_buffer(strlen(b), (void *)b, MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
        enum MHD_Result res = MHD_queue_response(rq->con, 429, r);
        MHD_destroy_response(r);
        return res;
    }
    case SBX_TIMEOUT: {
        pthread_mutex_lock(&state_mu);
        int64_t hold = faults.hold_ms;
        pthread_mutex_unlock(&state_mu);
        nap_ms(hold);
        return sbx_reset(rq);
    }
    case SBX_RESET:
    default:
        return sbx_reset(rq);
    }
}

enum MHD_Result sbx_respond(sbx_req_t *rq, const char *key, unsigned status, json_t *body,
                            bool store, const sbx_fault_t *fault)
{
    if (!body) { /* a fault before processing: nothing saved, nothing done */
        if (key)
            sbx_idem_finish(key, 0, NULL);
        return sbx_fault_fail(rq, fault);
    }
    char *text = json_dumps_compact(body);
    json_decref(body);
    if (key)
        sbx_idem_finish(key, store ? status : 0, store ? text : NULL);
    enum MHD_Result res;
    if (fault->mode != SBX_NONE && fault->after_processing)
        res = sbx_fault_fail(rq, fault);
    else
        res = sbx_reply_raw(rq, status, "application/json", text ? text : "{}",
                            text ? strlen(text) : 2);
    free(text);
    return res;
}

bool sbx_fail_next_take(void)
{
    pthread_mutex_lock(&state_mu);
    bool fail = faults.fail_next > 0;
    if (fail)
        faults.fail_next--;
    pthread_mutex_unlock(&state_mu);
    return fail;
}

static enum MHD_Result faults_post(sbx_req_t *rq)
{
    const char *mode = NULL;
    int64_t latency = 0, hold = 0, fail_next = 0;
    double rate = 1.0;
    bool after = false, has_rate = false, has_fail = false, has_hold = false;
    const jspec_field_t spec[] = {
        JSPEC_STR("mode", 0, 1, 16, &mode),
        JSPEC_I64("latency_ms", 0, 0, 600000, &latency),
        {.name = "rate", .type = JSPEC_NUMBER, .dest = &rate, .present = &has_rate},
        JSPEC_BOOLEAN("after_processing", 0, &after),
        {.name = "hold_ms", .type = JSPEC_INT, .min = 0, .max = 600000, .dest = &hold,
         .present = &has_hold},
        {.name = "fail_next", .type = JSPEC_INT, .min = 0, .max = 1000000, .dest = &fail_next,
         .present = &has_fail},
        JSPEC_END,
    };
    jspec_error_t je;
    if (!rq->json || !jspec_parse(rq->json, spec, "", &je))
        return sbx_reply_json(rq, 400,
                              json_pack("{s:s, s:s}", "error", "bad faults document", "param",
                                        rq->json ? je.param : "body"));
    sbx_mode_t m = SBX_NONE;
    if (mode) {
        size_t i;
        for (i = 0; i < PC_ARRAY_LEN(mode_names); i++)
            if (!strcmp(mode, mode_names[i]))
                break;
        if (i == PC_ARRAY_LEN(mode_names))
            return sbx_reply_json(rq, 400, json_pack("{s:s, s:s}", "error", "unknown mode",
                                                     "param", "mode"));
        m = (sbx_mode_t)i;
    }
    if (has_rate && (rate < 0.0 || rate > 1.0))
        return sbx_reply_json(rq, 400, json_pack("{s:s, s:s}", "error", "rate out of range",
                                                 "param", "rate"));
    pthread_mutex_lock(&state_mu);
    if (mode || !has_fail) {
        faults.mode = m;
        faults.latency_ms = latency;
        faults.rate = has_rate ? rate : 1.0;
        faults.after_processing = after;
        faults.hold_ms = has_hold ? hold : 60000;
    }
    if (has_fail)
        faults.fail_next = fail_next;
    pthread_mutex_unlock(&state_mu);
    log_json(LOG_INFO, "faults set", json_incref(rq->json));
    return sbx_reply_json(rq, 200,
                          json_pack("{s:s, s:I, s:f, s:b, s:I}", "mode", mode_names[m],
                                    "latency_ms", (json_int_t)latency, "rate",
                                    has_rate ? rate : 1.0, "after_processing", after,
                                    "fail_next", (json_int_t)fail_next));
}

/* -------------------------------------------------------------- replies */

json_t *sbx_error_json(const char *type, const char *code, const char *param,
                       const char *message)
{
    json_t *e = json_pack("{s:s, s:s, s:s}", "type", type, "code", code, "message", message);
    if (param)
        json_object_set_new(e, "param", json_string(param));
    return json_pack("{s:o}", "error", e);
}

enum MHD_Result sbx_reply_jspec(sbx_req_t *rq, const jspec_error_t *je)
{
    char msg[320];
    snprintf(msg, sizeof msg, "%s %s", je->param, je->reason);
    return sbx_reply_json(rq, 400, err_body(je->code, je->param, msg));
}

enum MHD_Result sbx_reply_raw(sbx_req_t *rq, unsigned status, const char *ctype, const char *body,
                              size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    enum MHD_Result res = MHD_queue_response(rq->con, status, r);
    MHD_destroy_response(r);
    return res;
}

enum MHD_Result sbx_reply_json(sbx_req_t *rq, unsigned status, json_t *body)
{
    char *s = json_dumps_compact(body);
    json_decref(body);
    enum MHD_Result r = sbx_reply_raw(rq, status, "application/json", s ? s : "{}",
                                      s ? strlen(s) : 2);
    free(s);
    return r;
}

enum MHD_Result sbx_reset(sbx_req_t *rq)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(rq->con, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci) {
        struct linger l = {.l_onoff = 1, .l_linger = 0};
        setsockopt(ci->connect_fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        shutdown(ci->connect_fd, SHUT_RDWR);
    }
    return MHD_NO;
}

const char *sbx_header(sbx_req_t *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->con, MHD_HEADER_KIND, name);
}

const char *sbx_query(sbx_req_t *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->con, MHD_GET_ARGUMENT_KIND, name);
}

static char *form_decode(const char *s, size_t n)
{
    char *tmp = strndup(s, n);
    for (char *p = tmp; *p; p++)
        if (*p == '+')
            *p = ' ';
    int outlen = 0;
    char *d = curl_easy_unescape(NULL, tmp, 0, &outlen);
    free(tmp);
    if (!d)
        return NULL;
    char *out = strndup(d, (size_t)outlen);
    curl_free(d);
    return out;
}

char *sbx_form_get(const sbx_req_t *rq, const char *key)
{
    const char *p = rq->body;
    while (p && *p) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (eq) {
            char *k = form_decode(p, (size_t)(eq - p));
            bool match = k && !strcmp(k, key);
            free(k);
            if (match)
                return form_decode(eq + 1, len - (size_t)(eq - p) - 1);
        }
        p = amp ? amp + 1 : NULL;
    }
    return NULL;
}

char *sbx_path_segment(const sbx_req_t *rq, int i)
{
    const char *p = rq->path;
    for (int k = 0; p && *p; k++) {
        while (*p == '/')
            p++;
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (k == i)
            return n ? strndup(p, n) : NULL;
        p = e;
    }
    return NULL;
}

void sbx_id(char *out, size_t n, const char *prefix)
{
    unsigned char r[12];
    char hex[25];
    randombytes_buf(r, sizeof r);
    sodium_bin2hex(hex, sizeof hex, r, sizeof r);
    snprintf(out, n, "%s%s", prefix, hex);
}

/* --------------------------------------------------------------- server */

typedef struct {
    char *body;
    size_t len, cap;
    bool too_big;
} conn_t;

static enum MHD_Result dispatch(sbx_req_t *rq)
{
    if (!strncmp(rq->path, "/_sandbox/", 10)) {
        const char *what = rq->path + 10;
        if (!strcmp(what, "charges") && !strcmp(rq->method, "GET"))
            return sbx_reply_json(rq, 200, ledger_json());
        if (!strcmp(what, "faults") && !strcmp(rq->method, "POST"))
            return faults_post(rq);
        if (!strcmp(what, "faults") && !strcmp(rq->method, "GET")) {
            pthread_mutex_lock(&state_mu);
            json_t *j = json_pack("{s:s, s:I, s:f, s:b, s:I}", "mode", mode_names[faults.mode],
                                  "latency_ms", (json_int_t)faults.latency_ms, "rate",
                                  faults.rate, "after_processing", faults.after_processing,
                                  "fail_next", (json_int_t)faults.fail_next);
            pthread_mutex_unlock(&state_mu);
            return sbx_reply_json(rq, 200, j);
        }
        if (dialect->control) {
            bool handled = false;
            enum MHD_Result r = dialect->control(rq, &handled);
            if (handled)
                return r;
        }
        return sbx_reply_json(rq, 404, json_pack("{s:s}", "error", "no such control route"));
    }
    if (rq->control)
        return sbx_reply_json(rq, 404, json_pack("{s:s}", "error", "control listener"));
    return dialect->handler(rq);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *con, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_size, void **con_cls)
{
    conn_t *c = *con_cls;
    if (!c) {
        c = calloc(1, sizeof *c);
        *con_cls = c;
        return MHD_YES;
    }
    if (*upload_size) {
        if (c->len + *upload_size > SBX_MAX_BODY) {
            c->too_big = true;
        } else {
            if (c->len + *upload_size + 1 > c->cap) {
                c->cap = (c->len + *upload_size + 1) * 2;
                c->body = realloc(c->body, c->cap);
            }
            memcpy(c->body + c->len, upload, *upload_size);
            c->len += *upload_size;
            c->body[c->len] = '\0';
        }
        *upload_size = 0;
        return MHD_YES;
    }
    sbx_req_t rq = {.con = con, .method = method, .path = url, .body = c->body ? c->body : "",
                    .body_len = c->len, .control = cls != NULL};
    if (c->too_big)
        return sbx_reply_json(&rq, 413, json_pack("{s:s}", "error", "body too large"));
    if (c->len)
        rq.json = json_loadb(c->body, c->len, JSON_REJECT_DUPLICATES, NULL);
    enum MHD_Result r = dispatch(&rq);
    json_decref(rq.json);
    return r;
}

static void on_done(void *cls, struct MHD_Connection *con, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
    conn_t *c = *con_cls;
    if (c) {
        free(c->body);
        free(c);
    }
    *con_cls = NULL;
}

static struct MHD_Daemon *listen_on(uint16_t port, bool control)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    return MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
            MHD_USE_ITC,
        port, NULL, NULL, on_access, control ? (void *)1 : NULL, MHD_OPTION_SOCK_ADDR, &sa,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_CONNECTION_LIMIT, 4096u,
        MHD_OPTION_CONNECTION_TIMEOUT, 120u, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
        MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL, MHD_OPTION_END);
}

static uint16_t port_of(struct MHD_Daemon *d)
{
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    return di ? di->port : 0;
}

static void write_port(const char *file, uint16_t port)
{
    if (!file)
        return;
    char buf[16];
    int n = snprintf(buf, sizeof buf, "%u\n", port);
    if (file_write_atomic(file, buf, (size_t)n, 0644) != 0)
        log_error("cannot write %s", file);
}

/* Takes the API listener down or brings it back when the fault mode asks. */
static void follow_down_mode(void)
{
    pthread_mutex_lock(&state_mu);
    bool want_down = faults.mode == SBX_DOWN;
    pthread_mutex_unlock(&state_mu);
    if (want_down && api_daemon) {
        usleep(100 * 1000); /* let the control reply that asked for it go out */
        MHD_stop_daemon(api_daemon);
        api_daemon = NULL;
        log_info("API listener down");
    } else if (!want_down && !api_daemon) {
        api_daemon = listen_on(api_port, false);
        log_info(api_daemon ? "API listener back up" : "API listener failed to come back");
    }
}

int sbx_main(int argc, char **argv, const sbx_dialect_t *d)
{
    dialect = d;
    if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
        return 1;
    json_object_seed(0);
    char svc[64];
    snprintf(svc, sizeof svc, "sandbox-%s", d->name);
    log_setup(strdup(svc), LOG_INFO, 2);
    int64_t port = 0, cport = 0;
    const char *port_file = NULL, *cport_file = NULL;
    bool have_required = !d->required_flag;
    for (int a = 1; a < argc; a++) {
        const char *n = argv[a], *v = a + 1 < argc ? argv[a + 1] : NULL;
        if (!strcmp(n, "--port") && v)
            port = strtoll(argv[++a], NULL, 10);
        else if (!strcmp(n, "--port-file") && v)
            port_file = argv[++a];
        else if (!strcmp(n, "--control-port") && v)
            cport = strtoll(argv[++a], NULL, 10);
        else if (!strcmp(n, "--control-port-file") && v)
            cport_file = argv[++a];
        else if (d->flag && v && d->flag(n, v)) {
            have_required |= d->required_flag && !strcmp(n, d->required_flag);
            a++;
        } else {
            fprintf(stderr, "%s: unknown or incomplete option %s\n", svc, n);
            return 2;
        }
    }
    if (!have_required) {
        fprintf(stderr, "usage: %s %s\n", svc, d->usage ? d->usage : d->required_flag);
        return 2;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    api_daemon = listen_on((uint16_t)port, false);
    ctl_daemon = listen_on((uint16_t)cport, true);
    if (!api_daemon || !ctl_daemon) {
        log_error("cannot listen (port %d, control port %d)", (int)port, (int)cport);
        return 1;
    }
    api_port = port_of(api_daemon);
    write_port(cport_file, port_of(ctl_daemon));
    write_port(port_file, api_port);
    log_json(LOG_INFO, "sandbox listening",
             json_pack("{s:i, s:i}", "port", api_port, "control_port", port_of(ctl_daemon)));

    struct timespec tick = {0, 20 * 1000 * 1000};
    for (;;) {
        int sig = sigtimedwait(&set, NULL, &tick);
        if (sig == SIGINT || sig == SIGTERM)
            break;
        follow_down_mode();
    }
    atomic_store(&stopping, true);
    if (api_daemon)
        MHD_stop_daemon(api_daemon);
    MHD_stop_daemon(ctl_daemon);
    return 0;
}
