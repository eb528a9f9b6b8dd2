/* POST /v1/checkouts/{id}/review {"decision": "approve"|"reject"}: approve
 * captures the held authorization and confirms the order; reject voids it and
 * releases the reservation. Both are idempotent (the same decision again
 * returns the checkout; the other decision afterwards is 409), take an
 * optional Idempotency-Key like every POST after the checkout, and are
 * audited. */
#include "gateway/handlers/payment_op_common.h"
#include "gateway/checkout.h"
#include "gateway/checkout_db.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static enum MHD_Result reply_checkout(gw_request_t *rq, const gw_idem_t *k, int status)
{
    char *body = NULL;
    db_conn_t *c = db_pool_acquire(gw.db);
    db_status_t s =
        c ? db_checkout_json(c, rq->auth.merchant_id, rq->params[0], NULL, &body) : DB_UNAVAILABLE;
    db_pool_release(c);
    if (s != DB_OK)
        return gw_reply_db(rq, s);
    return gw_op_answer(rq, k, status, body);
}

/* Already decided? The same decision replays the checkout; the other one
 * is refused. */
static bool decided(gw_request_t *rq, const gw_idem_t *k, const gw_review_state_t *st, bool approve,
                    enum MHD_Result *r)
{
    if (!strcmp(st->status, "requires_review"))
        return false;
    bool was_review = !strcmp(st->fraud_decision, "review");
    bool approved = was_review && !strcmp(st->status, "succeeded");
    bool rejected = was_review && !strcmp(st->status, "declined") &&
                    !strcmp(st->payment_status, "voided");
    if ((approve && approved) || (!approve && rejected))
        *r = reply_checkout(rq, k, 200);
    else
        *r = gw_op_answer_error(rq, k, ERR_INVALID_STATE, NULL,
                                "This checkout is not waiting for a review decision.");
    return true;
}

typedef struct {
    const char *merchant_id, *checkout_id, *reservation_id;
} rehold_t;

/* Through db_txn_run: a lost connection is retried, a lost COMMIT answer
 * settled, so the approval does not answer 503 for a hold it recorded. */
static db_status_t rehold_txn(db_conn_t *c, void *cls)
{
    const rehold_t *t = cls;
    return db_checkout_rehold(c, t->merchant_id, t->checkout_id, t->reservation_id,
                              (int)gw_cfg.reservation_ttl_s);
}

/* An approval can come a day after the checkout, when the inventory hold it
 * took has ended and the stock may be sold to someone else: the hold is taken
 * again under a new reservation before anything is captured. An approval that
 * can no longer get the stock is refused (409 out_of_stock) and the review
 * stays open for a reject; nothing is captured. Trade-off: the new
 * reservation is recorded only after inventory took it, so a crash in
 * between holds stock for one reservation TTL (15 min), never money. */
static bool renew_hold(gw_request_t *rq, const gw_idem_t *k, enum MHD_Result *r)
{
    bool expiring = false;
    char *items_text = NULL;
    db_conn_t *c = db_pool_acquire(gw.db);
    db_status_t s = c ? db_checkout_hold(c, rq->auth.merchant_id, rq->params[0], &expiring,
                                         &items_text)
                      : DB_UNAVAILABLE;
    db_pool_release(c);
    if (s != DB_OK || !expiring || !items_text) {
        free(items_text);
        if (s != DB_OK)
            *r = gw_reply_db(rq, s);
        return s == DB_OK;
    }
    json_t *items = json_loads(items_text, 0, NULL);
    free(items_text);
    char rid[IDS_MAX + 32];
    snprintf(rid, sizeof rid, "res_%s-r%lld", rq->params[0], (long long)time(NULL));
    json_t *short_lines = NULL;
    plat_status_t ps = items ? gw_inventory_reserve(rid, items, (int)gw_cfg.reservation_ttl_s,
                                                    &short_lines)
                             : PLAT_UNAVAILABLE;
    json_decref(items);
    if (ps == PLAT_REJECTED) {
        json_t *b = err_body(ERR_OUT_OF_STOCK, NULL,
                             "The stock held for this checkout was let go and is no longer "
                             "available; reject the review.");
        json_object_set_new(json_object_get(b, "error"), "lines",
                            short_lines ? short_lines : json_array());
        char *text = json_dumps_compact(b);
        json_decref(b);
        *r = gw_op_answer(rq, k, (int)err_http_status(ERR_OUT_OF_STOCK), text);
        return false;
    }
    json_decref(short_lines);
    if (ps != PLAT_OK) {
        *r = gw_op_answer_error(rq, k, ERR_INVENTORY_UNAVAILABLE, NULL,
                                "The inventory service is unavailable; nothing was captured.");
        return false;
    }
    rehold_t t = {
        .merchant_id = rq->auth.merchant_id, .checkout_id = rq->params[0], .reservation_id = rid};
    s = db_txn_run(gw.db, DB_READ_COMMITTED, "checkout_rehold", rehold_txn, &t);
    if (s != DB_OK) {
        *r = gw_reply_db(rq, s);
        return false;
    }
    log_json(LOG_INFO, "review approval took the stock again",
             json_pack("{s:s, s:s}", "checkout_id", rq->params[0], "reservation_id", rid));
    return true;
}

enum MHD_Result handle_checkouts_review_post(gw_request_t *rq)
{
    enum MHD_Result r;
    gw_idem_t k;
    if (!gw_idem_parse(rq, false, &k, &r))
        return r;
    const char *decision = NULL;
    const jspec_field_t spec[] = {JSPEC_STR("decision", JSPEC_REQUIRED, 1, 16, &decision),
                                  JSPEC_END};
    jspec_error_t je;
    if (!jspec_parse(rq->json, spec, "", &je))
        return gw_reply_jspec(rq, &je);
    bool approve = !strcmp(decision, "approve");
    if (!approve && strcmp(decision, "reject") != 0)
        return gw_reply_error(rq, ERR_PARAMETER_INVALID, "decision",
                              "decision must be \"approve\" or \"reject\".");
    if (gw_idem_answer_existing(rq, &k, &r))
        return r;
    gw_review_state_t st;
    db_conn_t *c = db_pool_acquire(gw.db);
    db_status_t s = c ? db_checkout_review_state(c, rq->auth.merchant_id, rq->params[0], &st)
                      : DB_UNAVAILABLE;
    db_pool_release(c);
    if (s != DB_OK)
        return gw_reply_db(rq, s); /* before the claim: no key is left running for a 404 */
    gw_op_t op;
    memset(&op, 0, sizeof op);
    ids_new(op.op_id, sizeof op.op_id, "op_");
    if (!gw_op_idem_claim(rq, &k, op.op_id, &r))
        return r;
    if (decided(rq, &k, &st, approve, &r))
        return r;
    if (approve && !renew_hold(rq, &k, &r))
        return r;
    err_code_t err;
    char actor[IDS_MAX + 8];
    snprintf(actor, sizeof actor, "key:%s", rq->auth.key_id);
    s = gw_op_begin(rq->auth.merchant_id, st.payment_id, approve ? GW_OP_CAPTURE : GW_OP_VOID, -1,
                    actor, approve ? "review.approve" : "review.reject", &op, &err);
    if (s != DB_OK)
        return gw_reply_db(rq, s);
    if (err != ERR__COUNT) {
        /* a concurrent decision got there first */
        c = db_pool_acquire(gw.db);
        s = c ? db_checkout_review_state(c, rq->auth.merchant_id, rq->params[0], &st) : DB_UNAVAILABLE;
        db_pool_release(c);
        if (s == DB_OK && decided(rq, &k, &st, approve, &r))
            return r;
        return gw_op_answer_error(rq, &k, err, NULL, NULL);
    }
    prv_result_t res = gw_op_call(rq->auth.merchant_id, &op);
    const char *state;
    s = gw_op_complete(rq->auth.merchant_id, &op, &res, &state);
    if (s != DB_OK)
        return gw_reply_db(rq, s);
    return gw_op_answer_rendered(rq, &k, &op, state, &res, GW_OP_SHAPE_CHECKOUT);
}
