/* What the recovery worker claims: checkouts whose request died or whose
 * provider outcome is still unknown, and payment operations left pending.
 * Claims extend a lease under FOR UPDATE SKIP LOCKED, so several instances
 * never work on the same row. A claimed pending checkout becomes
 * 'processing' at once: its request lost its lease, and from now on it can
 * no longer record another provider attempt (gateway.attempt_transition
 * requires 'pending'); the claim reports the status it had before. */
#include "gateway/recovery_db.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void cpy(char *dst, size_t n, const PGresult *r, int i, int col)
{
    const char *s = db_str(r, i, col);
    snprintf(dst, n, "%s", s ? s : "");
}

DB_STMT(claim_checkouts,
        "UPDATE gateway.checkouts c SET lease_until = now() + make_interval(secs => $2::int), "
        " status = 'processing' "
        "FROM (SELECT id, payment_id, status FROM gateway.checkouts "
        "      WHERE status IN ('pending', 'processing') AND lease_until < now() "
        "      ORDER BY lease_until LIMIT $1 FOR UPDATE SKIP LOCKED) s "
        "LEFT JOIN LATERAL (SELECT a.seq, a.provider, a.idempotency_key, a.state, a.provider_ref, "
        "      a.created_at "
        "      FROM gateway.payment_attempts a WHERE a.payment_id = s.payment_id "
        "      ORDER BY a.seq DESC LIMIT 1) la ON true "
        "WHERE c.id = s.id "
        "RETURNING c.id, c.merchant_id, s.status, COALESCE(c.payment_id, ''), c.amount, "
        " c.currency, c.token, c.capture, COALESCE(c.fraud->>'decision', ''), "
        " COALESCE(c.card->>'brand', ''), COALESCE(c.shipping->>'country', ''), "
        " la.seq IS NOT NULL, COALESCE(la.seq, 0), COALESCE(la.provider, ''), "
        " COALESCE(la.idempotency_key, ''), COALESCE(la.state, ''), "
        " COALESCE(la.provider_ref, ''), "
        " COALESCE(extract(epoch FROM now() - la.created_at), 0)::bigint");

db_status_t db_recovery_claim_checkouts(db_conn_t *c, int limit, int lease_s,
                                        gw_stale_checkout_t **out, int *n)
{
    db_params_t p;
    db_params_init(&p);
    db_param_int(&p, limit);
    db_param_int(&p, lease_s);
    PGresult *r;
    *n = 0;
    *out = NULL;
    db_status_t s = db_exec(c, &claim_checkouts, &p, &r);
    if (s != DB_OK)
        return s;
    int rows = PQntuples(r);
    gw_stale_checkout_t *v = calloc(rows ? (size_t)rows : 1, sizeof *v);
    for (int i = 0; i < rows; i++) {
        cpy(v[i].id, sizeof v[i].id, r, i, 0);
        cpy(v[i].merchant_id, sizeof v[i].merchant_id, r, i, 1);
        cpy(v[i].status, sizeof v[i].status, r, i, 2);
        cpy(v[i].payment_id, sizeof v[i].payment_id, r, i, 3);
        v[i].amount = db_i64(r, i, 4);
        cpy(v[i].currency, sizeof v[i].currency, r, i, 5);
        cpy(v[i].token, sizeof v[i].token, r, i, 6);
        v[i].capture = db_bool(r, i, 7);
        cpy(v[i].fraud_decision, sizeof v[i].fraud_decision, r, i, 8);
        cpy(v[i].brand, sizeof v[i].brand, r, i, 9);
        cpy(v[i].country, sizeof v[i].country, r, i, 10);
        v[i].has_attempt = db_bool(r, i, 11);
        v[i].attempt_seq = (int)db_i64(r, i, 12);
        cpy(v[i].provider, sizeof v[i].provider, r, i, 13);
        cpy(v[i].attempt_key, sizeof v[i].attempt_key, r, i, 14);
        cpy(v[i].attempt_state, sizeof v[i].attempt_state, r, i, 15);
        cpy(v[i].provider_ref, sizeof v[i].provider_ref, r, i, 16);
        v[i].attempt_age_s = db_i64(r, i, 17);
    }
    PQclear(r);
    *out = v;
    *n = rows;
    return DB_OK;
}

DB_STMT(claim_ops,
        "UPDATE gateway.payment_operations o SET updated_at = now() "
        "FROM (SELECT id FROM gateway.payment_operations WHERE state IN ('pending', 'unknown') "
        "      AND updated_at < now() - make_interval(secs => $2::int) "
        "      AND created_at > now() - interval '23 hours' "
        "      ORDER BY updated_at LIMIT $1 FOR UPDATE SKIP LOCKED) s, gateway.payments p "
        "WHERE o.id = s.id AND p.id = o.payment_id "
        "RETURNING o.id, o.kind, o.amount, o.idempotency_key, p.merchant_id, "
        " COALESCE(p.provider, ''), COALESCE(p.provider_ref, ''), p.currency, p.checkout_id, "
        " p.status, p.id");

db_status_t db_recovery_claim_ops(db_conn_t *c, int limit, int age_s, gw_stale_op_t **out, int *n)
{
    db_params_t p;
    db_params_init(&p);
    db_param_int(&p, limit);
    db_param_int(&p, age_s);
    PGresult *r;
    *n = 0;
    *out = NULL;
    db_status_t s = db_exec(c, &claim_ops, &p, &r);
    if (s != DB_OK)
        return s;
    int rows = PQntuples(r);
    gw_stale_op_t *v = calloc(rows ? (size_t)rows : 1, sizeof *v);
    for (int i = 0; i < rows; i++) {
        gw_op_t *op = &v[i].op;
        cpy(op->op_id, sizeof op->op_id, r, i, 0);
        const char *k = db_str(r, i, 1);
        op->kind = !strcmp(k, "capture") ? GW_OP_CAPTURE : !strcmp(k, "void") ? GW_OP_VOID
                                                                              : GW_OP_REFUND;
        op->amount = db_i64(r, i, 2);
        cpy(op->key, sizeof op->key, r, i, 3);
        cpy(v[i].merchant_id, sizeof v[i].merchant_id, r, i, 4);
        cpy(op->provider, sizeof op->provider, r, i, 5);
        cpy(op->provider_ref, sizeof op->provider_ref, r, i, 6);
        cpy(op->currency, sizeof op->currency, r, i, 7);
        cpy(op->checkout_id, sizeof op->checkout_id, r, i, 8);
        cpy(op->payment_status, sizeof op->payment_status, r, i, 9);
        cpy(v[i].payment_id, sizeof v[i].payment_id, r, i, 10);
    }
    PQclear(r);
    *out = v;
    *n = rows;
    return DB_OK;
}
