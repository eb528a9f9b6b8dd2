/* Idempotency keys with Stripe's semantics: same key and body replays the
 * first response (status included); same key while the first request runs is
 * 409; same key with another body is 422. The request hash covers the route,
 * the path and the body in canonical form (sorted keys), so whitespace or key
 * order do not make two equal requests differ. */
#include "gateway/checkout.h"
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void request_hash(gw_request_t *rq, unsigned char out[32])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    const char *route = rq->route ? rq->route->pattern : "";
    crypto_generichash_update(&st, (const unsigned char *)rq->method, strlen(rq->method) + 1);
    crypto_generichash_update(&st, (const unsigned char *)route, strlen(route) + 1);
    crypto_generichash_update(&st, (const unsigned char *)rq->path, strlen(rq->path) + 1);
    char *canon = rq->json ? json_dumps(rq->json, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    if (canon)
        crypto_generichash_update(&st, (const unsigned char *)canon, strlen(canon));
    free(canon);
    crypto_generichash_final(&st, out, 32);
}

bool gw_idem_parse(gw_request_t *rq, bool required, gw_idem_t *k, enum MHD_Result *reply)
{
    memset(k, 0, sizeof *k);
    const char *h = gw_header(rq, "Idempotency-Key");
    if (!h) {
        if (required)
            *reply = gw_reply_error(rq, ERR_IDEMPOTENCY_KEY_MISSING, "Idempotency-Key", NULL);
        return !required;
    }
    size_t n = strlen(h);
    if (n < 1 || n > 255 || !str_is_printable(h)) {
        *reply = gw_reply_error(rq, ERR_IDEMPOTENCY_KEY_INVALID, "Idempotency-Key", NULL);
        return false;
    }
    memcpy(k->key, h, n + 1);
    k->present = true;
    request_hash(rq, k->hash);
    return true;
}

bool gw_idem_answer_existing(gw_request_t *rq, const gw_idem_t *k, enum MHD_Result *reply)
{
    if (!k->present)
        return false;
    db_conn_t *c = db_pool_acquire(gw.db);
    if (!c) {
        *reply = gw_reply_db(rq, DB_UNAVAILABLE);
        return true;
    }
    gwdb_idem_t row;
    db_status_t s = db_idem_get(c, rq->auth.merchant_id, k->key, &row);
    db_pool_release(c);
    if (s == DB_NOT_FOUND)
        return false;
    if (s != DB_OK) {
        *reply = gw_reply_db(rq, s);
        return true;
    }
    if (!mem_equal_ct(row.hash, k->hash, 32))
        *reply = gw_reply_error(rq, ERR_KEY_REUSED, "Idempotency-Key", NULL);
    else if (strcmp(row.state, "done") != 0 || !row.body)
        *reply = gw_reply_error(rq, ERR_REQUEST_IN_PROGRESS, "Idempotency-Key", NULL);
    else
        *reply = gw_reply_raw_hdr(rq, (unsigned)row.status, row.body, strlen(row.body),
                                  "Idempotent-Replayed", "true");
    free(row.body);
    return true;
}
