/* Replies: every response is JSON (metrics excepted), carries the request id,
 * and is never cached. Errors come only from the error table. */
#include "gateway/gateway.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum MHD_Result queue(gw_request_t *rq, unsigned status, const char *ctype, char *buf,
                             size_t len, const char *hname, const char *hvalue)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(buf);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(resp, "Request-Id", rq->request_id);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (hname && hvalue)
        MHD_add_response_header(resp, hname, hvalue);
    if (status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (atomic_load(&gw.shutting_down))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result r = MHD_queue_response(rq->con, status, resp);
    MHD_destroy_response(resp);
    if (r == MHD_YES)
        rq->status = status;
    return r;
}

enum MHD_Result gw_reply_json_hdr(gw_request_t *rq, unsigned status, json_t *body,
                                  const char *hname, const char *hvalue)
{
    char *buf = body ? json_dumps_compact(body) : NULL;
    json_decref(body);
    if (!buf)
        buf = strdup("{}");
    if (!buf)
        return MHD_NO;
    return queue(rq, status, "application/json", buf, strlen(buf), hname, hvalue);
}

enum MHD_Result gw_reply_json(gw_request_t *rq, unsigned status, json_t *body)
{
    return gw_reply_json_hdr(rq, status, body, NULL, NULL);
}

enum MHD_Result gw_reply_text(gw_request_t *rq, unsigned status, const char *ctype,
                              const char *body, size_t len)
{
    char *buf = malloc(len ? len : 1);
    if (!buf)
        return MHD_NO;
    memcpy(buf, body, len);
    return queue(rq, status, ctype, buf, len, NULL, NULL);
}

/* param and message can quote the client (an unknown field's name is the
 * client's text): a card number typed into a key must not come back whole,
 * since proxies and WAFs in front of us may log response bodies. */
static const char *masked(const char *in, char *buf, size_t cap)
{
    if (!in)
        return NULL;
    snprintf(buf, cap, "%s", in);
    log_mask_pans(buf, strlen(buf));
    return buf;
}

/* The 503s answered here are never stored under an idempotency key (a stored
 * answer replays through gw_reply_raw_hdr), so the same request can simply be
 * sent again: say when. providers_unavailable is left out, since it means no
 * provider is configured and healthy, which a retry in a second won't change. */
static const char *retry_after(err_code_t e)
{
    return err_http_status(e) == 503 && e != ERR_PROVIDERS_UNAVAILABLE ? "1" : NULL;
}

enum MHD_Result gw_reply_error(gw_request_t *rq, err_code_t e, const char *param,
                               const char *message)
{
    char p[320], m[640];
    const char *ra = retry_after(e);
    return gw_reply_json_hdr(rq, err_http_status(e),
                             err_body(e, masked(param, p, sizeof p), masked(message, m, sizeof m)),
                             ra ? "Retry-After" : NULL, ra);
}

enum MHD_Result gw_reply_jspec(gw_request_t *rq, const jspec_error_t *je)
{
    char msg[320];
    snprintf(msg, sizeof msg, "%s %s.", je->param, je->reason);
    return gw_reply_error(rq, je->code, je->param, msg);
}

enum MHD_Result gw_reply_db(gw_request_t *rq, db_status_t s)
{
    switch (s) {
    case DB_NOT_FOUND:
        return gw_reply_error(rq, ERR_RESOURCE_MISSING, NULL, NULL);
    case DB_UNAVAILABLE:
    case DB_CONN_LOST:
    case DB_RETRY:
        return gw_reply_error(rq, ERR_DATABASE_UNAVAILABLE, NULL, NULL);
    default:
        return gw_reply_error(rq, ERR_INTERNAL, NULL, NULL);
    }
}

const char *gw_header(gw_request_t *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->con, MHD_HEADER_KIND, name);
}

enum MHD_Result gw_reply_raw_hdr(gw_request_t *rq, unsigned status, const char *json_text,
                                 size_t len, const char *hname, const char *hvalue)
{
    char *buf = malloc(len ? len : 1);
    if (!buf)
        return MHD_NO;
    memcpy(buf, json_text, len);
    return queue(rq, status, "application/json", buf, len, hname, hvalue);
}
