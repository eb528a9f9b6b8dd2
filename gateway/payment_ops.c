/* Capture, void and refund after the checkout. Each operation is admitted
 * and recorded 'pending' under a lock on the payment (commit), sent to the
 * provider with its own idempotency key, and finished in a second commit
 * together with what it means for the payment, a pending review, and the
 * events. An unknown outcome stays 'unknown' and the recovery worker
 * retries it with the same key until the provider gives an answer. */
#include "gateway/payment_ops.h"
#include "gateway/checkout_db.h"
#include "pci/audit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *kinds[] = {"capture", "void", "refund"};

const char *gw_op_kind_str(gw_op_kind_t k)
{
    return kinds[k];
}

typedef struct {
    const char *merchant_id, *payment_id;
    int64_t amount;
    gw_op_t *op;
    char outcome[24];
    const char *actor, *action;
} begin_t;

static db_status_t begin_txn(db_conn_t *c, void *cls)
{
    begin_t *b = cls;
    db_status_t s = db_payment_op_begin(c, b->merchant_id, b->payment_id, kinds[b->op->kind],
                                        b->amount, b->op, b->outcome);
    if (s != DB_OK || strcmp(b->outcome, "ok") != 0 || !b->actor)
        return s;
    json_t *detail = json_pack("{s:s, s:s, s:I}", "operation", b->op->op_id, "payment",
                               b->payment_id, "amount", (json_int_t)b->op->amount);
    audit_event_t ev = {.actor = b->actor, .action = b->action, .merchant_id = b->merchant_id,
                        .object = b->op->checkout_id, .detail = detail};
    s = audit_append(c, &ev);
    json_decref(detail);
    return s;
}

db_status_t gw_op_begin(const char *merchant_id, const char *payment_id, gw_op_kind_t kind,
                        int64_t amount, const char *actor, const char *action, gw_op_t *op,
                        err_code_t *err)
{
    char preset[IDS_MAX];
    snprintf(preset, sizeof preset, "%s", op->op_id);
    memset(op, 0, sizeof *op);
    op->kind = kind;
    if (preset[0])
        snprintf(op->op_id, sizeof op->op_id, "%s", preset);
    else
        ids_new(op->op_id, sizeof op->op_id, kind == GW_OP_REFUND ? "re_" : "op_");
    snprintf(op->key, sizeof op->key, "%s", op->op_id);
    char act[40];
    snprintf(act, sizeof act, "payment.%s", kinds[kind]);
    begin_t b = {.merchant_id = merchant_id, .payment_id = payment_id, .amount = amount, .op = op,
                 .actor = actor, .action = action ? action : act};
    *err = ERR__COUNT;
    db_status_t s = db_txn_run(gw.db, DB_READ_COMMITTED, "payment_op_begin", begin_txn, &b);
    if (s != DB_OK)
        return s;
    if (!strcmp(b.outcome, "not_found"))
        *err = ERR_RESOURCE_MISSING;
    else if (!strcmp(b.outcome, "invalid_state"))
        *err = ERR_INVALID_STATE;
    else if (!strcmp(b.outcome, "amount_too_large"))
        *err = ERR_AMOUNT_TOO_LARGE;
    else if (!strcmp(b.outcome, "in_progress"))
        *err = ERR_REQUEST_IN_PROGRESS;
    return DB_OK;
}

prv_result_t gw_op_call(const char *merchant_id, const gw_op_t *op)
{
    prv_result_t res;
    memset(&res, 0, sizeof res);
    res.outcome = PRV_UNAVAILABLE;
    gw_providers_t *ps = NULL;
    if (gw_providers_get(merchant_id, &ps) != DB_OK)
        return res;
    const prv_config_t *cfg = gw_providers_find(ps, op->provider);
    if (!cfg) {
        snprintf(res.reason, sizeof res.reason, "provider_removed");
    } else if (op->kind == GW_OP_CAPTURE) {
        res = prv_capture(cfg, op->provider_ref, op->amount, op->currency, op->key);
    } else if (op->kind == GW_OP_VOID) {
        res = prv_void(cfg, op->provider_ref, op->key);
    } else {
        res = prv_refund(cfg, op->provider_ref, op->amount, op->currency, op->key);
    }
    gw_providers_release(ps);
    return res;
}

typedef struct {
    const gw_op_t *op;
    const char *state;
    const prv_result_t *res;
    char order_id[IDS_MAX];
} complete_t;

static db_status_t complete_txn(db_conn_t *c, void *cls)
{
    complete_t *t = cls;
    bool changed = false, reviewed = false;
    db_status_t s = db_payment_op_finish(c, t->op->op_id, t->state, t->res->provider_ref,
                                         t->res->reason, &changed);
    if (s != DB_OK || !changed || strcmp(t->state, "succeeded") != 0)
        return s;
    bool approve = t->op->kind == GW_OP_CAPTURE;
    if (t->op->kind != GW_OP_REFUND) {
        s = db_review_complete(c, t->op->checkout_id, approve, t->order_id, &reviewed);
        if (s != DB_OK)
            return s;
    }
    static const char *events[] = {"payment.captured", "payment.voided", "payment.refunded"};
    if (reviewed)
        s = db_emit_checkout_event(c, t->op->checkout_id,
                                   approve ? "order.confirmed" : "checkout.declined");
    if (s == DB_OK)
        s = db_emit_checkout_event(c, t->op->checkout_id, events[t->op->kind]);
    return s;
}

db_status_t gw_op_complete(const char *merchant_id, const gw_op_t *op, const prv_result_t *res,
                           const char **state_out)
{
    static const prv_outcome_t success[] = {PRV_CAPTURED, PRV_VOIDED, PRV_REFUNDED};
    const char *state;
    if (res->outcome == success[op->kind])
        state = "succeeded";
    else if (res->outcome == PRV_UNKNOWN)
        state = "unknown";
    else
        state = "failed";
    complete_t t = {.op = op, .state = state, .res = res};
    ids_new(t.order_id, sizeof t.order_id, "ord_");
    db_status_t s = db_txn_run(gw.db, DB_READ_COMMITTED, "payment_op_finish", complete_txn, &t);
    if (s == DB_OK)
        gw_outbox_kick();
    *state_out = state;
    return s;
}

static char *render_error(const gw_op_t *op, const prv_result_t *res, int *status)
{
    char msg[160];
    snprintf(msg, sizeof msg, "The provider did not %s the payment (%s); nothing changed.",
             kinds[op->kind], res->reason[0] ? res->reason : prv_outcome_str(res->outcome));
    err_code_t e = res->outcome == PRV_UNAVAILABLE ? ERR_PROVIDERS_UNAVAILABLE : ERR_INVALID_STATE;
    json_t *b = err_body(e, NULL, msg);
    char *text = json_dumps_compact(b);
    json_decref(b);
    *status = (int)err_http_status(e);
    return text;
}

static char *render_refund(const char *payment_id, const gw_op_t *op, const char *state,
                           char *payment)
{
    json_t *p = json_loads(payment, JSON_PRESERVE_ORDER, NULL);
    free(payment);
    json_t *r =
        json_pack("{s:s, s:s, s:I, s:s, s:s, s:o}", "object", "refund", "id", op->op_id, "amount",
                  (json_int_t)op->amount, "status", !strcmp(state, "unknown") ? "pending" : state,
                  "payment_id", payment_id, "payment", p ? p : json_null());
    char *out = json_dumps_compact(r);
    json_decref(r);
    return out;
}

char *gw_op_render(db_conn_t *c, const char *merchant_id, const char *payment_id, const gw_op_t *op,
                   const char *state, const prv_result_t *res, gw_op_shape_t shape, int *status)
{
    if (!strcmp(state, "failed"))
        return render_error(op, res, status);
    *status = !strcmp(state, "unknown") ? 202 : 200;
    char *body = NULL;
    db_status_t s = shape == GW_OP_SHAPE_CHECKOUT
                        ? db_checkout_json(c, merchant_id, op->checkout_id, NULL, &body)
                        : db_payment_json(c, merchant_id, payment_id, &body);
    if (s != DB_OK)
        return NULL;
    return shape == GW_OP_SHAPE_REFUND ? render_refund(payment_id, op, state, body) : body;
}
