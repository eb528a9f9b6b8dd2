/* Payment operations after the checkout (capture, void, refund), review
 * completion, and event emission with the checkout as payload. */
#include "gateway/payment_ops.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

DB_STMT(op_begin, "SELECT outcome, op_amount, provider, provider_ref, currency, checkout_id, "
                  "status FROM gateway.payment_op_begin($1, $2, $3, $4, $5, $6)");

db_status_t db_payment_op_begin(db_conn_t *c, const char *merchant_id, const char *payment_id,
                                const char *kind, int64_t amount, gw_op_t *op, char outcome[24])
{
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, merchant_id);
    db_param_text(&p, payment_id);
    db_param_text(&p, kind);
    if (amount >= 0)
        db_param_int(&p, amount);
    else
        db_param_text(&p, NULL);
    db_param_text(&p, op->op_id);
    db_param_text(&p, op->key);
    PGresult *r;
    db_status_t s = db_exec(c, &op_begin, &p, &r);
    if (s != DB_OK)
        return s;
    snprintf(outcome, 24, "%s", db_str(r, 0, 0));
    op->amount = db_i64(r, 0, 1);
    snprintf(op->provider, sizeof op->provider, "%s", db_str(r, 0, 2) ? db_str(r, 0, 2) : "");
    snprintf(op->provider_ref, sizeof op->provider_ref, "%s",
             db_str(r, 0, 3) ? db_str(r, 0, 3) : "");
    snprintf(op->currency, sizeof op->currency, "%s", db_str(r, 0, 4) ? db_str(r, 0, 4) : "");
    snprintf(op->checkout_id, sizeof op->checkout_id, "%s",
             db_str(r, 0, 5) ? db_str(r, 0, 5) : "");
    snprintf(op->payment_status, sizeof op->payment_status, "%s",
             db_str(r, 0, 6) ? db_str(r, 0, 6) : "");
    PQclear(r);
    return DB_OK;
}

DB_STMT(op_finish, "SELECT gateway.payment_op_finish($1, $2, $3, $4)");

db_status_t db_payment_op_finish(db_conn_t *c, const char *op_id, const char *state,
                                 const char *ref, const char *reason, bool *changed)
{
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, op_id);
    db_param_text(&p, state);
    db_param_text(&p, ref && *ref ? ref : NULL);
    db_param_text(&p, reason && *reason ? reason : NULL);
    PGresult *r;
    db_status_t s = db_exec(c, &op_finish, &p, &r);
    if (s == DB_OK)
        *changed = db_bool(r, 0, 0);
    PQclear(r);
    return s;
}

DB_STMT(review_complete, "SELECT gateway.review_complete($1, $2, $3)");

db_status_t db_review_complete(db_conn_t *c, const char *checkout_id, bool approve,
                               const char *order_id, bool *changed)
{
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, checkout_id);
    db_param_bool(&p, approve);
    db_param_text(&p, order_id);
    PGresult *r;
    db_status_t s = db_exec(c, &review_complete, &p, &r);
    if (s == DB_OK)
        *changed = db_bool(r, 0, 0);
    PQclear(r);
    return s;
}

DB_STMT(emit_checkout_event,
        "SELECT gateway.emit_event($1, merchant_id, $2, id, gateway.checkout_json(id)::jsonb) "
        "FROM gateway.checkouts WHERE id = $3");

db_status_t db_emit_checkout_event(db_conn_t *c, const char *checkout_id, const char *type)
{
    char ev[IDS_MAX];
    ids_new(ev, sizeof ev, "evt_");
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, ev);
    db_param_text(&p, type);
    db_param_text(&p, checkout_id);
    PGresult *r;
    db_status_t s = db_exec(c, &emit_checkout_event, &p, &r);
    PQclear(r);
    return s;
}

DB_STMT(payment_json,
        "SELECT ((gateway.checkout_json(c.id)::jsonb -> 'payment') || jsonb_build_object("
        " 'object', 'payment', 'checkout', c.id, 'currency', c.currency))::text "
        "FROM gateway.payments p JOIN gateway.checkouts c ON c.id = p.checkout_id "
        "WHERE p.id = $1 AND p.merchant_id = $2");

db_status_t db_payment_json(db_conn_t *c, const char *merchant_id, const char *payment_id,
                            char **out)
{
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, payment_id);
    db_param_text(&p, merchant_id);
    PGresult *r;
    db_status_t s = db_exec(c, &payment_json, &p, &r);
    if (s != DB_OK)
        return s;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return DB_NOT_FOUND;
    }
    *out = strdup(db_str(r, 0, 0));
    PQclear(r);
    return DB_OK;
}

DB_STMT(checkout_review_state,
        "SELECT c.status, COALESCE(c.fraud->>'decision', ''), COALESCE(c.payment_id, ''), "
        "COALESCE(p.status, '') FROM gateway.checkouts c "
        "LEFT JOIN gateway.payments p ON p.id = c.payment_id "
        "WHERE c.id = $1 AND c.merchant_id = $2");

db_status_t db_checkout_review_state(db_conn_t *c, const char *merchant_id,
                                     const char *checkout_id, gw_review_state_t *out)
{
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, checkout_id);
    db_param_text(&p, merchant_id);
    PGresult *r;
    db_status_t s = db_exec(c, &checkout_review_state, &p, &r);
    if (s != DB_OK)
        return s;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return DB_NOT_FOUND;
    }
    snprintf(out->status, sizeof out->status, "%s", db_str(r, 0, 0));
    snprintf(out->fraud_decision, sizeof out->fraud_decision, "%s", db_str(r, 0, 1));
    snprintf(out->payment_id, sizeof out->payment_id, "%s", db_str(r, 0, 2));
    snprintf(out->payment_status, sizeof out->payment_status, "%s", db_str(r, 0, 3));
    PQclear(r);
    return DB_OK;
}

/* Whether the checkout's inventory hold ends within a minute (its
 * reservation_ttl counts from the checkout's creation), and its lines as the
 * inventory contract's items, to reserve them again. */
DB_STMT(checkout_hold,
        "SELECT c.created_at + make_interval(secs => c.reservation_ttl - 60) < now() "
        " AND c.reservation_state IN ('pending', 'reserved'), "
        " (SELECT json_agg(json_build_object('sku', l->>'sku', 'quantity', "
        "   (l->>'quantity')::bigint)) FROM jsonb_array_elements(c.quote->'lines') l)::text "
        "FROM gateway.checkouts c WHERE c.id = $1 AND c.merchant_id = $2");

db_status_t db_checkout_hold(db_conn_t *c, const char *merchant_id, const char *checkout_id,
                             bool *expiring, char **items)
{
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, checkout_id);
    db_param_text(&p, merchant_id);
    PGresult *r;
    *items = NULL;
    db_status_t s = db_exec(c, &checkout_hold, &p, &r);
    if (s != DB_OK)
        return s;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return DB_NOT_FOUND;
    }
    *expiring = db_bool(r, 0, 0);
    *items = db_str(r, 0, 1) ? strdup(db_str(r, 0, 1)) : NULL;
    PQclear(r);
    return DB_OK;
}

/* The checkout now holds its stock under a new reservation, for ttl_s more
 * seconds; only while it still waits for the review. */
DB_STMT(checkout_rehold,
        "UPDATE gateway.checkouts SET reservation_id = $3, reservation_state = 'reserved', "
        " reservation_ttl = (extract(epoch FROM now() - created_at))::int + $4, "
        " updated_at = now() WHERE id = $1 AND merchant_id = $2 AND status = 'requires_review'");

db_status_t db_checkout_rehold(db_conn_t *c, const char *merchant_id, const char *checkout_id,
                               const char *reservation_id, int ttl_s)
{
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, checkout_id);
    db_param_text(&p, merchant_id);
    db_param_text(&p, reservation_id);
    db_param_int(&p, ttl_s);
    PGresult *r;
    db_status_t s = db_exec(c, &checkout_rehold, &p, &r);
    if (s == DB_OK && atoi(PQcmdTuples(r)) != 1)
        s = DB_NOT_FOUND;
    PQclear(r);
    return s;
}

DB_STMT(reviews_list,
        "SELECT gateway.checkout_json(id)::text FROM gateway.checkouts "
        "WHERE merchant_id = $1 AND status = 'requires_review' ORDER BY created_at, id LIMIT $2");

db_status_t db_reviews_list(db_conn_t *c, const char *merchant_id, int limit, json_t **out)
{
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, merchant_id);
    db_param_int(&p, limit);
    PGresult *r;
    db_status_t s = db_exec(c, &reviews_list, &p, &r);
    if (s != DB_OK)
        return s;
    json_t *a = json_array();
    for (int i = 0; i < PQntuples(r); i++) {
        json_t *j = json_loads(db_str(r, i, 0), JSON_PRESERVE_ORDER, NULL);
        if (j)
            json_array_append_new(a, j);
    }
    PQclear(r);
    *out = a;
    return DB_OK;
}
