/* Checkout rows through the stored procedures of 0005_checkout.sql: begin
 * (commit 1), attempt transitions (failover), finish (commit 2), render. */
#include "gateway/checkout_db.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

DB_STMT(checkout_begin,
        "SELECT gateway.checkout_begin($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9::jsonb, "
        "$10::jsonb, $11::jsonb, $12, $13, $14, $15::jsonb, $16, $17, $18, $19, $20, $21, $22, "
        "$23, $24, $25, $26)");

static void param_keys(db_params_t *p, const fraud_key_hashes_t *h)
{
    for (int i = 0; i < FRAUD_NKEYS; i++) {
        if (h && h->have[i])
            db_param_bytes(p, h->h[i], sizeof h->h[i]);
        else
            db_param_text(p, NULL);
    }
}

db_status_t db_checkout_begin(db_conn_t *c, const gwdb_checkout_begin_t *b)
{
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, b->merchant_id);
    db_param_text(&p, b->idem_key);
    db_param_bytes(&p, b->idem_hash, 32);
    db_param_text(&p, b->checkout_id);
    db_param_text(&p, b->currency);
    db_param_int(&p, b->amount);
    db_param_text(&p, b->quote_json);
    db_param_text(&p, b->token);
    db_param_text(&p, b->card_json);
    db_param_text(&p, b->customer_json);
    db_param_text(&p, b->shipping_json);
    db_param_bool(&p, b->capture);
    db_param_text(&p, b->reservation_id);
    db_param_int(&p, b->reservation_ttl_s);
    db_param_text(&p, b->fraud_json);
    db_param_text(&p, b->payment_id);
    db_param_text(&p, b->provider);
    db_param_text(&p, b->attempt_key);
    db_param_int(&p, b->lease_s);
    param_keys(&p, b->vel);
    db_param_int(&p, b->basket);
    db_param_bool(&p, b->declined);
    db_param_text(&p, b->api_key_id);
    PGresult *r;
    db_status_t s = db_exec(c, &checkout_begin, &p, &r);
    if (s == DB_OK && !db_bool(r, 0, 0))
        s = DB_CONFLICT;
    PQclear(r);
    return s;
}

DB_STMT(attempt_transition,
        "SELECT gateway.attempt_transition($1, $2, $3, $4, $5, $6, $7, $8, $9)");

db_status_t db_attempt_transition(db_conn_t *c, const char *payment_id, int done_seq,
                                  const char *done_state, const char *done_ref,
                                  const char *done_reason, int next_seq, const char *next_provider,
                                  const char *next_key, int lease_s)
{
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, payment_id);
    db_param_int(&p, done_seq);
    db_param_text(&p, done_state);
    db_param_text(&p, done_ref && *done_ref ? done_ref : NULL);
    db_param_text(&p, done_reason && *done_reason ? done_reason : NULL);
    db_param_int(&p, next_seq);
    db_param_text(&p, next_provider);
    db_param_text(&p, next_key);
    db_param_int(&p, lease_s);
    PGresult *r;
    db_status_t s = db_exec(c, &attempt_transition, &p, &r);
    PQclear(r);
    return s;
}

DB_STMT(checkout_finish,
        "SELECT body, http, changed FROM gateway.checkout_finish($1, $2, $3, $4, $5, $6, $7, $8, "
        "$9, $10, $11, $12, $13, $14, $15::jsonb, $16, $17, $18, $19, $20, $21)");

static const char *nz(const char *s)
{
    return s && *s ? s : NULL;
}

db_status_t db_checkout_finish(db_conn_t *c, const gwdb_checkout_finish_t *f,
                               gwdb_finish_result_t *out)
{
    char ev_id[IDS_MAX];
    ids_new(ev_id, sizeof ev_id, "evt_");
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, f->checkout_id);
    db_param_text(&p, f->status);
    db_param_int(&p, f->http);
    if (f->attempt_seq > 0)
        db_param_int(&p, f->attempt_seq);
    else
        db_param_text(&p, NULL);
    db_param_text(&p, nz(f->attempt_state));
    db_param_text(&p, nz(f->attempt_ref));
    db_param_text(&p, nz(f->attempt_reason));
    if (f->attempt_seq > 0)
        db_param_bool(&p, f->attempt_hard);
    else
        db_param_text(&p, NULL);
    db_param_text(&p, nz(f->payment_status));
    db_param_text(&p, nz(f->provider));
    db_param_text(&p, nz(f->provider_ref));
    db_param_int(&p, f->captured);
    db_param_text(&p, nz(f->order_id));
    db_param_text(&p, f->reservation);
    db_param_text(&p, f->error_json);
    db_param_text(&p, nz(f->event_type));
    db_param_text(&p, ev_id);
    param_keys(&p, f->vel);
    PGresult *r;
    db_status_t s = db_exec(c, &checkout_finish, &p, &r);
    if (s != DB_OK)
        return s;
    if (PQntuples(r) != 1 || db_isnull(r, 0, 0)) {
        PQclear(r);
        return DB_NOT_FOUND;
    }
    out->body = strdup(db_str(r, 0, 0));
    out->http = (int)db_i64(r, 0, 1);
    out->changed = db_bool(r, 0, 2);
    PQclear(r);
    return DB_OK;
}

DB_STMT(checkout_json, "SELECT gateway.checkout_json(id)::text FROM gateway.checkouts "
                       "WHERE id = $1 AND merchant_id = $2 "
                       "AND ($3::text IS NULL OR api_key_id IS NULL OR api_key_id = $3)");

db_status_t db_checkout_json(db_conn_t *c, const char *merchant_id, const char *checkout_id,
                             const char *made_by, char **body)
{
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, checkout_id);
    db_param_text(&p, merchant_id);
    db_param_text(&p, made_by);
    PGresult *r;
    db_status_t s = db_exec(c, &checkout_json, &p, &r);
    if (s != DB_OK)
        return s;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return DB_NOT_FOUND;
    }
    *body = strdup(db_str(r, 0, 0));
    PQclear(r);
    return DB_OK;
}
