/* The shared body of POST /v1/payments/{id}/capture, /void and /refunds:
 * optional Idempotency-Key, admit, call, complete, reply. */
#include "gateway/handlers/payment_op_common.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *merchant_id;
    const gw_idem_t *idem;
    const char *resource;
} claim_t;

static db_status_t claim_txn(db_conn_t *c, void *cls)
{
    claim_t *t = cls;
    return db_idem_claim(c, t->merchant_id, t->idem, t->resource);
}

typedef struct {
    const char *merchant_id, *key, *body;
    int status;
} store_t;

static db_status_t store_txn(db_conn_t *c, void *cls)
{
    store_t *t = cls;
    return db_idem_complete(c, t->merchant_id, t->key, t->status, t->body);
}

enum MHD_Result gw_op_answer(gw_request_t *rq, const gw_idem_t *k, int status, char *body)
{
    if (k->present) {
        store_t t = {.merchant_id = rq->auth.merchant_id, .key = k->key, .body = body,
                     .status = status};
        if (db_txn_run(gw.db, DB_READ_COMMITTED, "idem_store", store_txn, &t) != DB_OK)
            log_warn("could not store an idempotent response");
    }
    enum MHD_Result r = gw_reply_raw_hdr(rq, (unsigned)status, body, strlen(body), NULL, NULL);
    free(body);
    return r;
}

enum MHD_Result gw_op_answer_error(gw_request_t *rq, const gw_idem_t *k, err_code_t e,
                                   const char *param, const char *msg)
{
    json_t *b = err_body(e, param, msg);
    char *text = json_dumps_compact(b);
    json_decref(b);
    return gw_op_answer(rq, k, (int)err_http_status(e), text);
}

bool gw_op_idem_claim(gw_request_t *rq, const gw_idem_t *k, const char *resource,
                      enum MHD_Result *r)
{
    if (!k->present)
        return true;
    claim_t t = {.merchant_id = rq->auth.merchant_id, .idem = k, .resource = resource};
    db_status_t s = db_txn_run(gw.db, DB_READ_COMMITTED, "idem_claim", claim_txn, &t);
    if (s == DB_CONFLICT) {
        if (!gw_idem_answer_existing(rq, k, r))
            *r = gw_reply_error(rq, ERR_REQUEST_IN_PROGRESS, "Idempotency-Key", NULL);
        return false;
    }
    if (s != DB_OK) {
        *r = gw_reply_db(rq, s);
        return false;
    }
    return true;
}

enum MHD_Result gw_payment_op_handle(gw_request_t *rq, gw_op_kind_t kind)
{
    enum MHD_Result r;
    gw_idem_t k;
    if (!gw_idem_parse(rq, false, &k, &r))
        return r;
    int64_t amount = -1;
    if (rq->json) {
        const jspec_field_t spec[] = {JSPEC_I64("amount", 0, 1, GW_MAX_AMOUNT, &amount), JSPEC_END};
        jspec_error_t je;
        if (kind == GW_OP_VOID && json_object_size(rq->json) > 0)
            return gw_reply_error(rq, ERR_PARAMETER_UNKNOWN, json_object_iter_key(
                                                                json_object_iter(rq->json)),
                                  "A void takes no parameters.");
        if (!jspec_parse(rq->json, spec, "", &je))
            return gw_reply_jspec(rq, &je);
    }
    if (gw_idem_answer_existing(rq, &k, &r))
        return r;
    gw_op_t op;
    memset(&op, 0, sizeof op);
    err_code_t err;
    ids_new(op.op_id, sizeof op.op_id, kind == GW_OP_REFUND ? "re_" : "op_");
    if (!gw_op_idem_claim(rq, &k, op.op_id, &r))
        return r;
    char actor[IDS_MAX + 8];
    snprintf(actor, sizeof actor, "key:%s", rq->auth.key_id);
    db_status_t s = gw_op_begin(rq->auth.merchant_id, rq->params[0], kind, amount, actor, NULL,
                                &op, &err);
    if (s != DB_OK)
        return gw_reply_db(rq, s);
    if (err != ERR__COUNT)
        return gw_op_answer_error(rq, &k, err, err == ERR_AMOUNT_TOO_LARGE ? "amount" : NULL, NULL);
    prv_result_t res = gw_op_call(rq->auth.merchant_id, &op);
    const char *state;
    s = gw_op_complete(rq->auth.merchant_id, &op, &res, &state);
    if (s != DB_OK)
        return gw_reply_db(rq, s);
    return gw_op_answer_rendered(rq, &k, &op, state, &res,
                                 kind == GW_OP_REFUND ? GW_OP_SHAPE_REFUND : GW_OP_SHAPE_PAYMENT);
}

enum MHD_Result gw_op_answer_rendered(gw_request_t *rq, const gw_idem_t *k, const gw_op_t *op,
                                      const char *state, const prv_result_t *res,
                                      gw_op_shape_t shape)
{
    int status = 0;
    bool failed = !strcmp(state, "failed"); /* an error needs no database */
    db_conn_t *c = failed ? NULL : db_pool_acquire(gw.db);
    char *body = failed || c ? gw_op_render(c, rq->auth.merchant_id,
                                            shape == GW_OP_SHAPE_CHECKOUT ? NULL : rq->params[0],
                                            op, state, res, shape, &status)
                             : NULL;
    db_pool_release(c);
    if (!body) /* the outcome is recorded; a replay or GET tells it */
        return gw_reply_error(rq, failed || c ? ERR_INTERNAL : ERR_DATABASE_UNAVAILABLE, NULL,
                              NULL);
    return gw_op_answer(rq, k, status, body);
}
