/* Idempotency-key rows: claim, complete, read, expire. */
#include "gateway/checkout.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

DB_STMT(idem_claim, "INSERT INTO gateway.idempotency_keys "
                    "(merchant_id, key, request_hash, state, resource_id) "
                    "VALUES ($1, $2, $3, 'running', $4) ON CONFLICT DO NOTHING");

db_status_t db_idem_claim(db_conn_t *c, const char *merchant_id, const gw_idem_t *k,
                          const char *resource_id)
{
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, merchant_id);
    db_param_text(&p, k->key);
    db_param_bytes(&p, k->hash, 32);
    db_param_text(&p, resource_id);
    PGresult *r;
    db_status_t s = db_exec(c, &idem_claim, &p, &r);
    if (s == DB_OK && atoi(PQcmdTuples(r)) != 1)
        s = DB_CONFLICT;
    PQclear(r);
    return s;
}

DB_STMT(idem_complete, "UPDATE gateway.idempotency_keys SET state = 'done', response_status = $3, "
                       "response_body = $4, updated_at = now() "
                       "WHERE merchant_id = $1 AND key = $2");

db_status_t db_idem_complete(db_conn_t *c, const char *merchant_id, const char *key, int status,
                             const char *body)
{
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, merchant_id);
    db_param_text(&p, key);
    db_param_int(&p, status);
    db_param_text(&p, body);
    PGresult *r;
    db_status_t s = db_exec(c, &idem_complete, &p, &r);
    PQclear(r);
    return s;
}

/* Operation keys only (op_, re_): the condition lets the planner use the
 * partial index of migration 0012. */
#define OP_RESOURCE                                                                                \
    "merchant_id = $1 AND resource_id = $2 "                                                       \
    "AND (resource_id LIKE 'op\\_%' OR resource_id LIKE 're\\_%')"

DB_STMT(idem_complete_resource,
        "UPDATE gateway.idempotency_keys SET state = 'done', response_status = $3, "
        "response_body = $4, updated_at = now() WHERE " OP_RESOURCE);

db_status_t db_idem_complete_resource(db_conn_t *c, const char *merchant_id,
                                      const char *resource_id, int status, const char *body)
{
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, merchant_id);
    db_param_text(&p, resource_id);
    db_param_int(&p, status);
    db_param_text(&p, body);
    PGresult *r;
    db_status_t s = db_exec(c, &idem_complete_resource, &p, &r);
    PQclear(r);
    return s;
}

DB_STMT(idem_resource_body,
        "SELECT COALESCE(response_body, '') FROM gateway.idempotency_keys WHERE " OP_RESOURCE);

db_status_t db_idem_resource_body(db_conn_t *c, const char *merchant_id, const char *resource_id,
                                  char **body)
{
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, merchant_id);
    db_param_text(&p, resource_id);
    PGresult *r;
    *body = NULL;
    db_status_t s = db_exec(c, &idem_resource_body, &p, &r);
    if (s != DB_OK)
        return s;
    if (PQntuples(r) == 1 && !(*body = strdup(db_str(r, 0, 0))))
        s = DB_ERROR;
    else if (PQntuples(r) != 1)
        s = DB_NOT_FOUND;
    PQclear(r);
    return s;
}

DB_STMT(idem_get, "SELECT state, request_hash, response_status, response_body, "
                  "COALESCE(resource_id, '') FROM gateway.idempotency_keys "
                  "WHERE merchant_id = $1 AND key = $2");

db_status_t db_idem_get(db_conn_t *c, const char *merchant_id, const char *key, gwdb_idem_t *out)
{
    memset(out, 0, sizeof *out);
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, merchant_id);
    db_param_text(&p, key);
    PGresult *r;
    db_status_t s = db_exec(c, &idem_get, &p, &r);
    if (s != DB_OK)
        return s;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return DB_NOT_FOUND;
    }
    snprintf(out->state, sizeof out->state, "%s", db_str(r, 0, 0));
    size_t n = 0;
    unsigned char *h = db_bytes(r, 0, 1, &n);
    if (h && n == 32)
        memcpy(out->hash, h, 32);
    free(h);
    out->status = (int)db_i64(r, 0, 2);
    out->body = db_isnull(r, 0, 3) ? NULL : strdup(db_str(r, 0, 3));
    snprintf(out->resource_id, sizeof out->resource_id, "%s", db_str(r, 0, 4));
    PQclear(r);
    return DB_OK;
}

DB_STMT(idem_expire, "DELETE FROM gateway.idempotency_keys WHERE ctid IN ("
                     "SELECT ctid FROM gateway.idempotency_keys WHERE state = 'done' AND "
                     "created_at < now() - make_interval(hours => $1::int) LIMIT 1000)");

db_status_t db_idem_expire(db_conn_t *c, int64_t retention_h, int *deleted)
{
    db_params_t p;
    db_params_init(&p);
    db_param_int(&p, retention_h);
    PGresult *r;
    db_status_t s = db_exec(c, &idem_expire, &p, &r);
    if (s == DB_OK)
        *deleted = atoi(PQcmdTuples(r));
    PQclear(r);
    return s;
}

/* A key claimed by a capture, void or refund whose operation was never
 * recorded, or failed (no money moved), while its answer was lost (the
 * request died between commits) would answer 409 'request_in_progress' for
 * ever and push the merchant to a new key. Once such a claim is older than
 * any request can be, it is released, so a retry with the same key starts
 * afresh. Checkout keys are claimed in the same commit as their checkout,
 * so they always have one. */
DB_STMT(idem_release_orphans,
        "DELETE FROM gateway.idempotency_keys WHERE ctid IN ("
        "SELECT k.ctid FROM gateway.idempotency_keys k WHERE k.state = 'running' AND "
        "k.created_at < now() - make_interval(secs => $1::int) "
        "AND NOT EXISTS (SELECT 1 FROM gateway.checkouts c WHERE c.id = k.resource_id) "
        "AND NOT EXISTS (SELECT 1 FROM gateway.payment_operations o WHERE o.id = k.resource_id "
        "                AND o.state <> 'failed') "
        "LIMIT 1000)");

/* The other way a key can stay 'running': its operation succeeded but the
 * answer could not be stored. It gets the answer a replay would have had
 * (the payment, 200), as the recovery worker gives operations it finishes. */
DB_STMT(
    idem_complete_stale,
    "UPDATE gateway.idempotency_keys k SET state = 'done', response_status = 200, "
    " response_body = ((gateway.checkout_json(c.id)::jsonb -> 'payment') || "
    "   jsonb_build_object('object', 'payment', 'checkout', c.id, 'currency', c.currency))::text, "
    " updated_at = now() "
    "FROM gateway.payment_operations o JOIN gateway.payments p ON p.id = o.payment_id "
    "JOIN gateway.checkouts c ON c.id = p.checkout_id "
    "WHERE k.state = 'running' AND k.created_at < now() - make_interval(secs => $1::int) "
    "AND k.resource_id = o.id AND k.merchant_id = p.merchant_id AND o.state = 'succeeded'");

db_status_t db_idem_release_orphans(db_conn_t *c, int age_s, int *deleted)
{
    db_params_t p;
    db_params_init(&p);
    db_param_int(&p, age_s);
    PGresult *r;
    db_status_t s = db_exec(c, &idem_release_orphans, &p, &r);
    if (s == DB_OK)
        *deleted = atoi(PQcmdTuples(r));
    PQclear(r);
    if (s == DB_OK) {
        s = db_exec(c, &idem_complete_stale, &p, &r);
        if (s == DB_OK)
            *deleted += atoi(PQcmdTuples(r));
        PQclear(r);
    }
    return s;
}
