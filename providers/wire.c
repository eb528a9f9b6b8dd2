/* The wire layer every adapter uses: guarded request buffers (card data and
 * credentials never sit in ordinary heap we control), the HTTP call with the
 * base-URL policy, and the mapping of transport failures to outcomes. */
#include "providers/internal.h"
#include <ctype.h>
#include <curl/curl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A provider reply bigger than this is not a payment answer; it becomes an
 * unknown outcome rather than a memory problem. */
#define REPLY_MAX (256u * 1024u)

/* ---------------------------------------------------------- code tables */

const prv_code_t *prv_code_find(const prv_code_t *table, const char *code)
{
    const prv_code_t *e = table;
    for (; e->code; e++)
        if (code && !strcmp(e->code, code))
            return e;
    return e;
}

/* A provider's code is copied into the checkout's answer, its stored replay,
 * the checkout.declined event and the log. It comes from outside: keep it
 * only if it looks like a code (letters, digits, '_', '-', '.', ':', at most
 * 63 of them, no run of nine digits, which a card number would need);
 * anything else, such as a body echoing the request, becomes "unrecognized".
 * An empty code stays empty (no code). */
void prv_code_copy(char *dst, size_t n, const char *code)
{
    size_t len = code ? strlen(code) : 0, digits = 0;
    bool ok = len > 0 && len < n;
    for (size_t i = 0; ok && i < len; i++) {
        char c = code[i];
        digits = c >= '0' && c <= '9' ? digits + 1 : 0;
        ok = digits < 9 && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                            (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.' || c == ':');
    }
    prv_copy(dst, n, len == 0 ? "" : ok ? code : "unrecognized");
}

void prv_result_set(prv_result_t *r, prv_outcome_t o, bool hard, const char *reason,
                    const char *code)
{
    r->outcome = o;
    r->hard = hard;
    prv_copy(r->reason, sizeof r->reason, reason);
    if (code)
        prv_code_copy(r->provider_code, sizeof r->provider_code, code);
}

void prv_result_code(prv_result_t *r, const prv_code_t *table, const char *code)
{
    const prv_code_t *e = prv_code_find(table, code);
    prv_result_set(r, e->outcome, e->hard, e->reason, code);
}

prv_result_t prv_result_refused(const char *reason)
{
    prv_result_t r = {0};
    prv_result_set(&r, PRV_DECLINED, true, reason, NULL);
    return r;
}

/* --------------------------------------------------------------- buffer */

bool prv_buf_init(prv_buf_t *b, size_t cap)
{
    b->p = guarded_alloc(cap);
    b->len = 0;
    b->cap = b->p ? cap : 0;
    b->failed = b->p == NULL;
    if (b->p)
        b->p[0] = '\0';
    return !b->failed;
}

void prv_buf_free(prv_buf_t *b)
{
    guarded_free(b->p); /* wiped at once */
    b->p = NULL;
    b->len = b->cap = 0;
}

static bool buf_room(prv_buf_t *b, size_t more)
{
    if (b->failed)
        return false;
    if (b->len + more + 1 <= b->cap)
        return true;
    size_t nc = b->cap * 2;
    while (nc < b->len + more + 1)
        nc *= 2;
    char *np = guarded_alloc(nc);
    if (!np) {
        b->failed = true;
        return false;
    }
    memcpy(np, b->p, b->len + 1);
    guarded_free(b->p);
    b->p = np;
    b->cap = nc;
    return true;
}

static void buf_putn(prv_buf_t *b, const char *s, size_t n)
{
    if (!buf_room(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void prv_buf_put(prv_buf_t *b, const char *s)
{
    buf_putn(b, s, strlen(s));
}

void prv_buf_printf(prv_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !buf_room(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Percent-encoding written straight into the guarded buffer: libcurl's
 * curl_easy_escape would leave a copy of the value in ordinary heap. */
static void buf_escape(prv_buf_t *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            buf_putn(b, (const char *)&c, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            buf_putn(b, e, 3);
        }
    }
}

void prv_buf_form(prv_buf_t *b, const char *key, const char *value)
{
    if (b->len)
        buf_putn(b, "&", 1);
    buf_escape(b, key);
    buf_putn(b, "=", 1);
    buf_escape(b, value ? value : "");
}

void prv_buf_form_i64(prv_buf_t *b, const char *key, int64_t value)
{
    char num[24];
    snprintf(num, sizeof num, "%lld", (long long)value);
    prv_buf_form(b, key, num);
}

void prv_buf_json_str(prv_buf_t *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    buf_putn(b, "\"", 1);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            buf_putn(b, e, 2);
        } else if (c < 0x20) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            buf_putn(b, e, 6);
        } else {
            buf_putn(b, (const char *)&c, 1);
        }
    }
    buf_putn(b, "\"", 1);
}

/* ----------------------------------------------------------------- HTTP */

/* A URL libcurl will accept, so that a later "malformed URL" cannot be. */
static bool url_parses(const char *url)
{
    CURLU *u = curl_url();
    bool ok = u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK;
    curl_url_cleanup(u);
    return ok;
}

/* The stored URL is checked again: a row written before a rule existed, or
 * by hand, must not send a card anywhere the API would refuse. */
static bool url_allowed(const prv_config_t *cfg)
{
    return prv_base_url_allowed(prv_adapter_find(cfg->type), cfg->base_url);
}

bool prv_http_call(const prv_config_t *cfg, const prv_http_t *h, httpc_response_t *rs,
                   prv_result_t *r)
{
    memset(rs, 0, sizeof *rs);
    if (!url_allowed(cfg)) {
        prv_result_set(r, PRV_UNAVAILABLE, false, "insecure_base_url", NULL);
        return false;
    }
    char url[1024];
    size_t bl = strlen(cfg->base_url);
    while (bl > 0 && cfg->base_url[bl - 1] == '/')
        bl--;
    if (snprintf(url, sizeof url, "%.*s%s", (int)bl, cfg->base_url, h->path) >= (int)sizeof url ||
        !url_parses(url)) {
        prv_result_set(r, PRV_UNAVAILABLE, false, "invalid_request", NULL);
        return false;
    }
    char ctype[96];
    const char *headers[8];
    int n = 0;
    if (h->auth_header)
        headers[n++] = h->auth_header;
    if (h->idem_header)
        headers[n++] = h->idem_header;
    if (h->extra_header)
        headers[n++] = h->extra_header;
    if (h->content_type) {
        snprintf(ctype, sizeof ctype, "Content-Type: %s", h->content_type);
        headers[n++] = ctype;
    }
    headers[n++] = "Accept: application/json";
    headers[n++] = "User-Agent: portcullis-providers/1";
    headers[n] = NULL;
    httpc_request_t rq = {
        .method = h->method,
        .url = url,
        .headers = headers,
        .body = h->body,
        .body_len = h->body_len,
        .connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 2000,
        .timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 5000,
        .max_response = REPLY_MAX,
        .untrusted_target = true, /* the merchant's base_url */
    };
    httpc_status_t st = httpc_perform(&rq, rs);
    r->http_status = st == HTTPC_OK ? (int)rs->http_status : 0;
    switch (st) {
    case HTTPC_OK:
        return true;
    case HTTPC_NOT_SENT:
        prv_result_set(r, PRV_UNAVAILABLE, false, "provider_unreachable", NULL);
        break;
    case HTTPC_ERROR:
        /* Not trusted as "never sent": libcurl also reports a reply without
         * a status line (HTTP/0.9, refused) as an unsupported protocol,
         * after the request went out. The URL was checked above, so the
         * pre-send causes are out of the way; what is left may have been
         * sent. */
        prv_result_set(r, PRV_UNKNOWN, false, "transport_error", NULL);
        break;
    case HTTPC_TIMEOUT:
        prv_result_set(r, PRV_UNKNOWN, false, "timeout", NULL);
        break;
    case HTTPC_TOO_LARGE:
        prv_result_set(r, PRV_UNKNOWN, false, "response_too_large", NULL);
        break;
    case HTTPC_BROKEN:
    default:
        prv_result_set(r, PRV_UNKNOWN, false, "connection_reset", NULL);
        break;
    }
    httpc_response_free(rs);
    return false;
}

bool prv_http_generic(long status, prv_result_t *r)
{
    if (status >= 500) {
        /* A 5xx may come after the provider processed the request (a proxy
         * timing out in front of a working backend): only a lookup knows. */
        prv_result_set(r, PRV_UNKNOWN, false, "provider_error", NULL);
        return true;
    }
    if (status == 429) {
        prv_result_set(r, PRV_UNAVAILABLE, false, "rate_limited", NULL);
        return true;
    }
    if (status == 401 || status == 403) {
        prv_result_set(r, PRV_UNAVAILABLE, false, "authentication_failed", NULL);
        return true;
    }
    return false;
}

json_t *prv_json_body(const httpc_response_t *rs)
{
    if (!rs->body || !rs->body_len)
        return NULL;
    json_t *j = json_loads_strict(rs->body, rs->body_len, NULL);
    if (j && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

const char *prv_json_s(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

bool prv_json_i64(const json_t *o, const char *key, int64_t *out)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        return false;
    *out = json_integer_value(v);
    return true;
}

bool prv_words_any(const char *list, bool (*match)(const char *w, size_t n, const void *ctx),
                   const void *ctx)
{
    for (const char *p = list; p && *p;) {
        size_t n = strcspn(p, " ");
        if (n && match(p, n, ctx))
            return true;
        p += n + strspn(p + n, " ");
    }
    return false;
}

void prv_copy(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src ? src : "");
}

bool prv_ref_ok(const char *ref)
{
    size_t n = ref ? strlen(ref) : 0;
    if (n == 0 || n > 127)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)ref[i]) && ref[i] != '_' && ref[i] != '-')
            return false;
    return true;
}

void prv_lower3(const char *in, char out[4])
{
    bool end = in == NULL;
    for (int i = 0; i < 3; i++) {
        if (!end && in[i] == '\0')
            end = true;
        out[i] = end ? '?' : (char)tolower((unsigned char)in[i]);
    }
    out[3] = '\0';
}
