/* sandbox-webhooks: the reference webhook receiver. It accepts POST on any
 * path, verifies the Portcullis-Signature header (t=<unix>,v1=<hex
 * HMAC-SHA256 of "<t>.<body>">, several v1 during a secret rotation), and
 * records each event once per id with a count of its deliveries, so tests
 * can prove "exactly one order confirmation per order".
 *
 * Secrets: --secret-file FILE (mode 0600), one secret per line; blank lines
 * and lines starting with '#' are skipped. A line is used verbatim as the
 * HMAC key (its bytes, e.g. the whole "whsec_..." text) unless it starts with
 * "hex:", in which case the rest is hex-decoded and the bytes are the key.
 * POST /_sandbox/secrets {"secrets": [...]} replaces the set at runtime with
 * the same per-entry rule. A delivery is accepted when any v1 matches any
 * secret. Keys live in sodium_malloc'd memory and are wiped when replaced. */
#include "sandbox/sandbox.h"
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SECRETS    8
#define MAX_SECRET_LEN 1024
#define MAX_SIGS       8
#define MAX_SIG_HEADER 4096
#define MAC_LEN        crypto_auth_hmacsha256_BYTES

typedef struct {
    unsigned char *key; /* sodium_malloc'd */
    size_t len;
} hkey_t;

typedef struct {
    hkey_t k[MAX_SECRETS];
    size_t n;
} keyset_t;

/* Verification holds the read side for a few HMACs; a rotation takes the
 * write side only to swap the set. */
static pthread_rwlock_t keys_mu = PTHREAD_RWLOCK_INITIALIZER;
static keyset_t keys;
static int64_t tolerance_s = 300;

typedef struct {
    char *id, *type;
    json_t *created, *data; /* deep copies: never shared with a request document */
    int64_t deliveries;
    bool data_mismatch; /* a redelivery carried other data under the same id */
} event_t;

static pthread_mutex_t ev_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    json_t *by_id; /* id -> index into events */
    event_t *events;
    size_t n, cap;
    int64_t count, bad_signatures, stale, malformed, injected;
} ev;

/* ------------------------------------------------------------- helpers */

static void counter_add(int64_t *c)
{
    pthread_mutex_lock(&ev_mu);
    (*c)++;
    pthread_mutex_unlock(&ev_mu);
}

/* ------------------------------------------------------------- secrets */

static void keyset_free(keyset_t *ks)
{
    for (size_t i = 0; i < ks->n; i++)
        sodium_free(ks->k[i].key);
    ks->n = 0;
}

/* One secret as configured: verbatim bytes, or "hex:" + hex. */
static bool key_add(keyset_t *ks, const char *s, size_t len, char *err, size_t errlen)
{
    if (ks->n == MAX_SECRETS) {
        snprintf(err, errlen, "more than %d secrets", MAX_SECRETS);
        return false;
    }
    bool hex = len >= 4 && !memcmp(s, "hex:", 4);
    size_t n = hex ? (len - 4) / 2 : len;
    if (n == 0 || n > MAX_SECRET_LEN || (hex && (len - 4) % 2)) {
        snprintf(err, errlen, "secret %zu: must be 1 to %d bytes%s", ks->n + 1, MAX_SECRET_LEN,
                 hex ? " (an even number of hex digits)" : "");
        return false;
    }
    unsigned char *k = sodium_malloc(n);
    size_t got = 0;
    const char *end = NULL;
    if (!k || (hex && (sodium_hex2bin(k, n, s + 4, len - 4, NULL, &got, &end) != 0 || got != n ||
                       end != s + len))) {
        snprintf(err, errlen, "secret %zu: %s", ks->n + 1, k ? "bad hex" : "out of memory");
        if (k)
            sodium_free(k);
        return false;
    }
    if (!hex)
        memcpy(k, s, n);
    ks->k[ks->n++] = (hkey_t){k, n};
    return true;
}

static void keyset_install(keyset_t *fresh)
{
    pthread_rwlock_wrlock(&keys_mu);
    keyset_t old = keys;
    keys = *fresh;
    pthread_rwlock_unlock(&keys_mu);
    keyset_free(&old);
    fresh->n = 0;
}

static bool keyset_from_file(const char *path, keyset_t *ks, char *err, size_t errlen)
{
    secret_t *s = secret_read_file(path, err, errlen);
    if (!s)
        return false;
    bool ok = true;
    char *p = (char *)s->data;
    while (ok && p && *p) {
        char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        while (len && (p[len - 1] == '\r' || p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len && p[0] != '#')
            ok = key_add(ks, p, len, err, errlen);
        p = nl ? nl + 1 : NULL;
    }
    secret_free(s);
    if (ok && ks->n == 0) {
        snprintf(err, errlen, "no secret in the file");
        ok = false;
    }
    if (!ok)
        keyset_free(ks);
    return ok;
}

/* ---------------------------------------------------------- signatures */

typedef enum { SIG_OK = 0, SIG_MISSING, SIG_MALFORMED, SIG_MISMATCH, SIG_STALE } sigcheck_t;
static const char *sig_codes[] = {"ok", "signature_missing", "signature_malformed",
                                  "signature_mismatch", "timestamp_outside_tolerance"};

typedef struct {
    char t[16]; /* the digits exactly as sent: they are what was signed */
    int64_t when;
    unsigned char v1[MAX_SIGS][MAC_LEN];
    size_t nv1;
} sighdr_t;

static bool parse_t(const char *p, size_t len, sighdr_t *h)
{
    if (h->t[0] || len == 0 || len > 12)
        return false;
    for (size_t i = 0; i < len; i++)
        if (p[i] < '0' || p[i] > '9')
            return false;
    memcpy(h->t, p, len);
    h->t[len] = '\0';
    h->when = strtoll(h->t, NULL, 10);
    return true;
}

static bool parse_v1(const char *p, size_t len, sighdr_t *h)
{
    size_t got = 0;
    const char *end = NULL;
    if (h->nv1 == MAX_SIGS || len != 2 * MAC_LEN)
        return false;
    if (sodium_hex2bin(h->v1[h->nv1], MAC_LEN, p, len, NULL, &got, &end) != 0 || got != MAC_LEN ||
        end != p + len)
        return false;
    h->nv1++;
    return true;
}

/* "t=1700000000,v1=ab..,v1=cd.." in any order; other schemes are ignored so
 * a sender may add them later. */
static bool sighdr_parse(const char *s, sighdr_t *h)
{
    memset(h, 0, sizeof *h);
    if (strlen(s) > MAX_SIG_HEADER)
        return false;
    for (const char *p = s; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len && *p == ' ')
            p++, len--;
        while (len && p[len - 1] == ' ')
            len--;
        if (len >= 2 && !strncmp(p, "t=", 2) && !parse_t(p + 2, len - 2, h))
            return false;
        if (len >= 3 && !strncmp(p, "v1=", 3) && !parse_v1(p + 3, len - 3, h))
            return false;
        p = comma ? comma + 1 : NULL;
    }
    return h->t[0] && h->nv1 > 0;
}

static void mac_compute(const hkey_t *k, const char *t, const char *body, size_t blen,
                        unsigned char out[MAC_LEN])
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, k->key, k->len);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)t, strlen(t));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, blen);
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(&st, sizeof st);
}

/* The signature is checked before the timestamp, so that a forged header is
 * reported as forged whatever time it claims. */
static sigcheck_t signature_check(const char *header, const char *body, size_t blen)
{
    sighdr_t h;
    if (!header)
        return SIG_MISSING;
    if (!sighdr_parse(header, &h))
        return SIG_MALFORMED;
    bool match = false;
    unsigned char mac[MAC_LEN];
    pthread_rwlock_rdlock(&keys_mu);
    for (size_t i = 0; i < keys.n && !match; i++) {
        mac_compute(&keys.k[i], h.t, body, blen, mac);
        for (size_t j = 0; j < h.nv1 && !match; j++)
            match = sodium_memcmp(mac, h.v1[j], MAC_LEN) == 0;
    }
    pthread_rwlock_unlock(&keys_mu);
    sodium_memzero(mac, sizeof mac);
    if (!match)
        return SIG_MISMATCH;
    int64_t now = time_now_ms() / 1000;
    if (now - h.when > tolerance_s || h.when - now > tolerance_s)
        return SIG_STALE;
    return SIG_OK;
}

/* -------------------------------------------------------------- events */

static const char *check_event_id(const json_t *v)
{
    return strncmp(json_string_value(v), "evt_", 4) ? "must start with evt_" : NULL;
}

static const char *check_created(const json_t *v)
{
    if (json_is_integer(v) && json_integer_value(v) >= 0)
        return NULL;
    if (json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) <= 64)
        return NULL;
    return "must be a unix time or an RFC 3339 string";
}

/* Records one accepted delivery; returns true when the id was seen before. */
static bool event_record(const char *id, const char *type, const json_t *created,
                         const json_t *data)
{
    json_t *copy = json_deep_copy(data);
    pthread_mutex_lock(&ev_mu);
    ev.count++;
    json_t *at = json_object_get(ev.by_id, id);
    bool dup = at != NULL;
    if (dup) {
        event_t *e = &ev.events[json_integer_value(at)];
        e->deliveries++;
        e->data_mismatch |= !json_equal(e->data, copy);
        json_decref(copy);
    } else {
        if (ev.n == ev.cap) {
            ev.cap = ev.cap ? ev.cap * 2 : 256;
            ev.events = realloc(ev.events, ev.cap * sizeof *ev.events);
        }
        ev.events[ev.n] = (event_t){.id = strdup(id),
                                    .type = strdup(type),
                                    .created = json_deep_copy(created),
                                    .data = copy,
                                    .deliveries = 1};
        json_object_set_new(ev.by_id, id, json_integer((json_int_t)ev.n));
        ev.n++;
    }
    pthread_mutex_unlock(&ev_mu);
    return dup;
}

static enum MHD_Result reject(sbx_req_t *rq, sigcheck_t why)
{
    counter_add(&ev.bad_signatures);
    if (why == SIG_STALE)
        counter_add(&ev.stale);
    static const char *msgs[] = {"", "The Portcullis-Signature header is missing.",
                                 "The Portcullis-Signature header is malformed.",
                                 "No v1 signature matches a configured secret.",
                                 "The signature timestamp is outside the tolerance."};
    log_json(LOG_INFO, "delivery rejected", json_pack("{s:s}", "reason", sig_codes[why]));
    return sbx_reply_json(
        rq, 400,
        sbx_error_json("invalid_request_error", sig_codes[why], "Portcullis-Signature", msgs[why]));
}

static enum MHD_Result deliver(sbx_req_t *rq)
{
    if (sbx_fail_next_take()) {
        counter_add(&ev.injected);
        return sbx_reply_json(rq, 500,
                              sbx_error_json("api_error", "injected_failure", NULL,
                                         "sandbox: failing this delivery (fail_next)"));
    }
    sbx_fault_t f = sbx_fault_draw();
    if (f.mode != SBX_NONE && !f.after_processing)
        return sbx_fault_fail(rq, &f);
    sigcheck_t sc = signature_check(sbx_header(rq, "Portcullis-Signature"), rq->body, rq->body_len);
    if (sc != SIG_OK)
        return reject(rq, sc);
    const char *id = NULL, *type = NULL;
    const json_t *created = NULL, *data = NULL;
    const jspec_field_t spec[] = {
        {.name = "id",
         .type = JSPEC_STRING,
         .flags = JSPEC_REQUIRED | JSPEC_PRINTABLE,
         .min = 5,
         .max = 128,
         .dest = &id,
         .check = check_event_id},
        JSPEC_STR("type", JSPEC_REQUIRED | JSPEC_PRINTABLE, 1, 128, &type),
        {.name = "created",
         .type = JSPEC_ANY,
         .flags = JSPEC_REQUIRED,
         .dest = &created,
         .check = check_created},
        JSPEC_OBJ("data", JSPEC_REQUIRED, NULL, &data),
        JSPEC_END_EXTRA, /* an event may carry more top-level keys later */
    };
    jspec_error_t je;
    if (!rq->json || !jspec_parse(rq->json, spec, "", &je)) {
        counter_add(&ev.malformed);
        char msg[320];
        snprintf(msg, sizeof msg, "%s %s", rq->json ? je.param : "body",
                 rq->json ? je.reason : "is not JSON");
        return sbx_reply_json(
            rq, 400,
            err_body(rq->json ? je.code : ERR_INVALID_JSON, rq->json ? je.param : "body", msg));
    }
    bool dup = event_record(id, type, created, data);
    if (f.mode != SBX_NONE && f.after_processing)
        return sbx_fault_fail(rq, &f);
    return sbx_reply_json(rq, 200,
                          json_pack("{s:b, s:s, s:b}", "received", 1, "id", id, "duplicate", dup));
}

static enum MHD_Result handle(sbx_req_t *rq)
{
    if (strcmp(rq->method, "POST") != 0)
        return sbx_reply_json(rq, 405, err_body(ERR_METHOD_NOT_ALLOWED, NULL, NULL));
    return deliver(rq);
}

/* ------------------------------------------------------ control routes */

/* Dumped under the lock: the stored documents are only ever touched there. */
static char *deliveries_dump(void)
{
    pthread_mutex_lock(&ev_mu);
    json_t *a = json_array();
    for (size_t i = 0; i < ev.n; i++) {
        const event_t *e = &ev.events[i];
        json_array_append_new(a, json_pack("{s:s, s:s, s:O, s:I, s:O, s:b}", "id", e->id, "type",
                                           e->type, "created", e->created, "deliveries",
                                           (json_int_t)e->deliveries, "data", e->data,
                                           "data_mismatch", e->data_mismatch));
    }
    json_t *j = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "count", (json_int_t)ev.count,
                          "unique_events", (json_int_t)ev.n, "bad_signatures",
                          (json_int_t)ev.bad_signatures, "stale_timestamps", (json_int_t)ev.stale,
                          "malformed", (json_int_t)ev.malformed, "injected_failures",
                          (json_int_t)ev.injected, "events", a);
    char *s = json_dumps_compact(j);
    json_decref(j);
    pthread_mutex_unlock(&ev_mu);
    return s;
}

static void deliveries_clear(void)
{
    pthread_mutex_lock(&ev_mu);
    for (size_t i = 0; i < ev.n; i++) {
        free(ev.events[i].id);
        free(ev.events[i].type);
        json_decref(ev.events[i].created);
        json_decref(ev.events[i].data);
    }
    json_object_clear(ev.by_id);
    ev.n = 0;
    ev.count = ev.bad_signatures = ev.stale = ev.malformed = ev.injected = 0;
    pthread_mutex_unlock(&ev_mu);
}

/* Wipes a secret-bearing request once parsed: its body buffer and the
 * strings jansson decoded from it are heap memory the framework frees next. */
static void wipe_request(sbx_req_t *rq, const json_t *list)
{
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *v = json_array_get(list, i);
        if (json_is_string(v))
            sodium_memzero((char *)json_string_value(v), json_string_length(v));
    }
    if (rq->body_len)
        sodium_memzero((char *)rq->body, rq->body_len);
}

static enum MHD_Result secrets_post(sbx_req_t *rq)
{
    const json_t *list = NULL;
    const jspec_field_t spec[] = {
        JSPEC_ARR("secrets", JSPEC_REQUIRED, 1, MAX_SECRETS, &list),
        JSPEC_END,
    };
    jspec_error_t je;
    if (!rq->json || !jspec_parse(rq->json, spec, "", &je)) {
        wipe_request(rq, NULL);
        return sbx_reply_json(
            rq, 400,
            err_body(rq->json ? je.code : ERR_INVALID_JSON, rq->json ? je.param : "body", NULL));
    }
    keyset_t fresh = {0};
    char err[160] = "";
    bool ok = true;
    for (size_t i = 0; ok && i < json_array_size(list); i++) {
        const json_t *v = json_array_get(list, i);
        ok = json_is_string(v) &&
             key_add(&fresh, json_string_value(v), json_string_length(v), err, sizeof err);
        if (!ok && !err[0])
            snprintf(err, sizeof err, "secrets[%zu] must be a string", i);
    }
    wipe_request(rq, list);
    if (!ok) {
        keyset_free(&fresh);
        return sbx_reply_json(rq, 400, err_body(ERR_PARAMETER_INVALID, "secrets", err));
    }
    size_t n = fresh.n;
    keyset_install(&fresh);
    log_json(LOG_INFO, "webhook secrets replaced", json_pack("{s:I}", "count", (json_int_t)n));
    return sbx_reply_json(rq, 200, json_pack("{s:I}", "secrets", (json_int_t)n));
}

static enum MHD_Result control(sbx_req_t *rq, bool *handled)
{
    const char *p = rq->path + strlen("/_sandbox/");
    *handled = true;
    if (!strcmp(p, "deliveries") && !strcmp(rq->method, "GET")) {
        char *s = deliveries_dump();
        enum MHD_Result r =
            sbx_reply_raw(rq, 200, "application/json", s ? s : "{}", s ? strlen(s) : 2);
        free(s);
        return r;
    }
    if (!strcmp(p, "deliveries") && !strcmp(rq->method, "DELETE")) {
        deliveries_clear();
        return sbx_reply_json(rq, 200, json_pack("{s:b}", "cleared", 1));
    }
    if (!strcmp(p, "secrets") && !strcmp(rq->method, "POST"))
        return secrets_post(rq);
    *handled = false;
    return MHD_NO;
}

/* ---------------------------------------------------------------- main */

static bool flag(const char *name, const char *value)
{
    char err[512] = "";
    if (!strcmp(name, "--secret-file")) {
        keyset_t fresh = {0};
        if (!keyset_from_file(value, &fresh, err, sizeof err)) {
            fprintf(stderr, "sandbox-webhooks: --secret-file: %s\n", err);
            exit(2);
        }
        keyset_install(&fresh);
        return true;
    }
    if (!strcmp(name, "--tolerance-seconds")) {
        char *end;
        long long v = strtoll(value, &end, 10);
        if (*end || end == value || v < 1 || v > 365LL * 86400) {
            fprintf(stderr, "sandbox-webhooks: --tolerance-seconds must be 1 to 31536000\n");
            exit(2);
        }
        tolerance_s = v;
        return true;
    }
    return false;
}

int main(int argc, char **argv)
{
    bool have_secret = false;
    for (int i = 1; i + 1 < argc; i++)
        have_secret |= !strcmp(argv[i], "--secret-file");
    if (!have_secret)
        fprintf(stderr, "sandbox-webhooks: no --secret-file: every delivery fails verification "
                        "until POST /_sandbox/secrets sets one\n");
    ev.by_id = json_object();
    static const sbx_dialect_t d = {
        .name = "webhooks", .handler = handle, .control = control, .flag = flag};
    return sbx_main(argc, argv, &d);
}
