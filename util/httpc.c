/* Outbound HTTP over libcurl. One easy handle per thread, kept across calls
 * so connections are reused (keep-alive); a pthread key frees it when the
 * thread ends. The status says whether the request may have reached the
 * peer: a request that may have been sent is an unknown outcome. */
#include "util/util.h"
#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#define DEFAULT_MAX_RESPONSE (1u << 20)

/* Two handles per thread, so two connection caches: one for the operator's
 * own services (pricing, inventory) and one for URLs a merchant chose
 * (webhooks, provider base URLs), whose connections are opened only through
 * the address check below. One cache would let a merchant URL naming an
 * internal host ride a connection opened for the operator. */
static pthread_key_t handle_key[2];
static pthread_once_t handle_once = PTHREAD_ONCE_INIT;

static void handle_free(void *h)
{
    curl_easy_cleanup(h);
}

static void handle_key_init(void)
{
    pthread_key_create(&handle_key[0], handle_free);
    pthread_key_create(&handle_key[1], handle_free);
}

static CURL *thread_handle(bool untrusted)
{
    pthread_once(&handle_once, handle_key_init);
    CURL *h = pthread_getspecific(handle_key[untrusted]);
    if (h) {
        curl_easy_reset(h); /* options only; the connection cache survives */
        return h;
    }
    h = curl_easy_init();
    if (h)
        pthread_setspecific(handle_key[untrusted], h);
    return h;
}

void httpc_thread_cleanup(void)
{
    pthread_once(&handle_once, handle_key_init);
    for (int i = 0; i < 2; i++) {
        CURL *h = pthread_getspecific(handle_key[i]);
        if (h) {
            curl_easy_cleanup(h);
            pthread_setspecific(handle_key[i], NULL);
        }
    }
}

/* ------------------------------------------------ where merchant URLs go */

static atomic_bool loopback_http_allowed = true;
static atomic_bool private_networks_allowed = false;

void httpc_allow_private_networks(bool allowed)
{
    atomic_store(&private_networks_allowed, allowed);
}

typedef enum { ADDR_PUBLIC, ADDR_LOOPBACK, ADDR_PRIVATE, ADDR_NEVER } addr_class_t;

static addr_class_t class_v4(uint32_t a)
{
    if ((a >> 24) == 127)
        return ADDR_LOOPBACK;
    if ((a >> 24) == 0 || (a >> 16) == 0xa9fe /* 169.254/16: link-local, cloud metadata */ ||
        (a >> 28) >= 0xe /* multicast, reserved, broadcast */)
        return ADDR_NEVER;
    if ((a >> 24) == 10 || (a >> 20) == 0xac1 /* 172.16/12 */ || (a >> 16) == 0xc0a8 ||
        (a >> 22) == 0x191 /* 100.64/10, carrier-grade NAT */)
        return ADDR_PRIVATE;
    return ADDR_PUBLIC;
}

static addr_class_t class_of(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return class_v4(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr));
    if (sa->sa_family != AF_INET6)
        return ADDR_NEVER;
    const unsigned char *b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    static const unsigned char zero[15] = {0};
    /* ::ffff:a.b.c.d and 64:ff9b::a.b.c.d (NAT64) reach that IPv4 address */
    if (!memcmp(b, mapped, 12) || !memcmp(b, nat64, 12))
        return class_v4((uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 | (uint32_t)b[14] << 8 |
                        b[15]);
    if (!memcmp(b, zero, 15))
        return b[15] == 1 ? ADDR_LOOPBACK : ADDR_NEVER; /* ::1, :: and IPv4-compatible */
    if (b[0] == 0xff || (b[0] == 0xfe && (b[1] & 0xc0) == 0x80))
        return ADDR_NEVER; /* multicast, link-local */
    if ((b[0] & 0xfe) == 0xfc)
        return ADDR_PRIVATE; /* unique local fc00::/7 */
    return ADDR_PUBLIC;
}

bool httpc_addr_allowed(const struct sockaddr *sa)
{
    switch (class_of(sa)) {
    case ADDR_PUBLIC:
        return true;
    case ADDR_LOOPBACK:
        return atomic_load(&loopback_http_allowed);
    case ADDR_PRIVATE:
        return atomic_load(&private_networks_allowed);
    default:
        return false;
    }
}

/* libcurl's socket opener for merchant URLs: the check runs on the address
 * actually connected to, after DNS, so a name that resolves (or rebinds) to
 * the gateway's own loopback, the cloud metadata address or, unless allowed,
 * a private network is refused: the request counts as never sent. */
static curl_socket_t open_checked(void *cls, curlsocktype purpose, struct curl_sockaddr *a)
{
    bool *refused = cls;
    if (purpose != CURLSOCKTYPE_IPCXN || !httpc_addr_allowed(&a->addr)) {
        *refused = true;
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype, a->protocol);
}

typedef struct {
    httpc_response_t *rs;
    size_t cap, max;
    bool too_large;
} sink_t;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    sink_t *s = ud;
    size_t n = size * nmemb;
    if (s->rs->body_len + n > s->max) {
        s->too_large = true;
        return 0;
    }
    if (s->rs->body_len + n + 1 > s->cap) {
        size_t nc = s->cap ? s->cap : 1024;
        while (nc < s->rs->body_len + n + 1)
            nc *= 2;
        char *nb = wipe_realloc(s->rs->body, nc); /* a reply may echo what we sent */
        if (!nb)
            return 0;
        s->rs->body = nb;
        s->cap = nc;
    }
    memcpy(s->rs->body + s->rs->body_len, ptr, n);
    s->rs->body_len += n;
    s->rs->body[s->rs->body_len] = '\0';
    return n;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ud)
{
    httpc_response_t *rs = ud;
    size_t n = size * nitems;
    if (n > 12 && strncasecmp(buf, "Retry-After:", 12) == 0 && !rs->retry_after) {
        const char *v = buf + 12;
        while (*v == ' ')
            v++;
        size_t l = (size_t)(buf + n - v);
        while (l > 0 && (v[l - 1] == '\r' || v[l - 1] == '\n'))
            l--;
        rs->retry_after = strndup(v, l);
    }
    return n;
}

static httpc_status_t classify(CURL *h, CURLcode cc, bool too_large)
{
    curl_off_t sent = 0;
    long reqsize = 0;
    curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &reqsize);
    sent = reqsize;
    switch (cc) {
    case CURLE_OK:
        return HTTPC_OK;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
        return HTTPC_NOT_SENT;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_OUT_OF_MEMORY:
        /* libcurl also says "unsupported protocol" for a reply without a
         * status line, which arrives after the request went out */
        return sent == 0 ? HTTPC_ERROR : HTTPC_BROKEN;
    case CURLE_OPERATION_TIMEDOUT:
        return sent == 0 ? HTTPC_NOT_SENT : HTTPC_TIMEOUT;
    case CURLE_WRITE_ERROR:
        if (too_large)
            return HTTPC_TOO_LARGE;
        return HTTPC_BROKEN;
    default:
        return sent == 0 ? HTTPC_NOT_SENT : HTTPC_BROKEN;
    }
}

httpc_status_t httpc_perform(const httpc_request_t *rq, httpc_response_t *rs)
{
    memset(rs, 0, sizeof *rs);
    CURL *h = thread_handle(rq->untrusted_target);
    bool refused = false;
    if (!h) {
        rs->status = HTTPC_ERROR;
        return rs->status;
    }
    struct curl_slist *hdrs = NULL;
    for (const char *const *p = rq->headers; p && *p; p++)
        hdrs = curl_slist_append(hdrs, *p);
    hdrs = curl_slist_append(hdrs, "Expect:");
    sink_t sink = {.rs = rs, .max = rq->max_response ? rq->max_response : DEFAULT_MAX_RESPONSE};

    curl_easy_setopt(h, CURLOPT_URL, rq->url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    /* HTTP/1.1 only: over HTTP/2 libcurl hands the body (a provider request's
     * PAN and CVC) to nghttp2, whose frame buffers come from plain malloc,
     * outside the wiping heap (util/wipe.c) that covers curl and OpenSSL. */
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_MAXCONNECTS, 16L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     rq->connect_timeout_ms > 0 ? rq->connect_timeout_ms : 2000L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, rq->timeout_ms > 0 ? rq->timeout_ms : 10000L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, rs);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, rs->errbuf);
    if (rq->untrusted_target) {
        curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_checked);
        curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, &refused);
    }

    const char *m = rq->method ? rq->method : "GET";
    if (strcmp(m, "GET") != 0)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
    if (rq->body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
    } else if (!strcmp(m, "POST") || !strcmp(m, "PUT")) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    }

    CURLcode cc = curl_easy_perform(h);
    curl_slist_free_all(hdrs);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    rs->status = classify(h, cc, sink.too_large);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &rs->http_status);
    double t = 0;
    curl_easy_getinfo(h, CURLINFO_TOTAL_TIME, &t);
    rs->total_ms = t * 1000.0;
    if (refused && rs->status == HTTPC_NOT_SENT)
        snprintf(rs->errbuf, sizeof rs->errbuf, "address not allowed for outbound requests");
    if (rs->status != HTTPC_OK && !rs->errbuf[0])
        snprintf(rs->errbuf, sizeof rs->errbuf, "%s", curl_easy_strerror(cc));
    if (!rs->body) {
        rs->body = wipe_calloc(1, 1);
        rs->body_len = 0;
    }
    return rs->status;
}

void httpc_response_free(httpc_response_t *rs)
{
    wipe_free(rs->body);
    free(rs->retry_after);
    rs->body = NULL;
    rs->retry_after = NULL;
}

const char *httpc_status_str(httpc_status_t s)
{
    switch (s) {
    case HTTPC_OK: return "ok";
    case HTTPC_NOT_SENT: return "not_sent";
    case HTTPC_TIMEOUT: return "timeout";
    case HTTPC_BROKEN: return "broken";
    case HTTPC_TOO_LARGE: return "too_large";
    default: return "error";
    }
}

bool httpc_url_is_loopback_http(const char *url)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    bool ok = false;
    if (u && url && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && !strcmp(scheme, "http")) {
        struct in_addr a4;
        if (!strcmp(host, "localhost") || !strcmp(host, "[::1]"))
            ok = true;
        else if (inet_pton(AF_INET, host, &a4) == 1)
            ok = (ntohl(a4.s_addr) >> 24) == 127;
    }
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return ok;
}

/* Plain http to loopback is for sandboxes on a developer's machine. On a
 * production host it would let a merchant's webhook or provider URL reach
 * whatever listens on the gateway's own loopback; gatewayd turns it off
 * unless its configuration says otherwise (outbound.allow_loopback_http). */
void httpc_allow_loopback_http(bool allowed)
{
    atomic_store(&loopback_http_allowed, allowed);
}

bool httpc_url_outbound_ok(const char *url, bool allow_query)
{
    for (const char *p = url; p && *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return false; /* no spaces, controls (header injection) or raw UTF-8 */
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *user = NULL, *query = NULL, *frag = NULL;
    bool ok = u && url && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host[0];
    if (ok) {
        ok = curl_url_get(u, CURLUPART_USER, &user, 0) != CURLUE_OK &&
             curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0) != CURLUE_OK &&
             (allow_query || curl_url_get(u, CURLUPART_QUERY, &query, 0) != CURLUE_OK);
        ok = ok && (!strcmp(scheme, "https") ||
                    (atomic_load(&loopback_http_allowed) && httpc_url_is_loopback_http(url)));
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(user);
    curl_free(query);
    curl_free(frag);
    curl_url_cleanup(u);
    return ok;
}

char *httpc_escape(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    char *out = e ? strdup(e) : NULL;
    curl_free(e);
    return out;
}
