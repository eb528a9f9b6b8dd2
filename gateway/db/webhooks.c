/* Webhook endpoint rows. Signing secrets are stored only sealed by the vault. */
#include "gateway/checkout.h"
#include "gateway/db/gwdb.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

DB_STMT(webhook_lock, "SELECT url, events::text, enabled, secret_sealed FROM gateway.webhook_endpoints "
                      "WHERE merchant_id = $1 AND id = $2 FOR UPDATE");

db_status_t db_webhook_lock(db_conn_t *c, const char *merchant_id, const char *id,
                            gwdb_webhook_t *out)
{
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, merchant_id);
    db_param_text(&p, id);
    PGresult *r;
    db_status_t s = db_exec(c, &webhook_lock, &p, &r);
    if (s != DB_OK)
        return s;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return DB_NOT_FOUND;
    }
    out->url = strdup(db_str(r, 0, 0));
    out->events_text = strdup(db_str(r, 0, 1));
    out->enabled = db_bool(r, 0, 2);
    out->secret_sealed = strdup(db_str(r, 0, 3));
    PQclear(r);
    return DB_OK;
}

void gwdb_webhook_free(gwdb_webhook_t *w)
{
    free(w->url);
    free(w->events_text);
    free(w->secret_sealed);
    memset(w, 0, sizeof *w);
}

DB_STMT(webhook_insert, "INSERT INTO gateway.webhook_endpoints "
                        "(merchant_id, id, url, events, enabled, secret_sealed) "
                        "VALUES ($1, $2, $3, $4::text[], $5, $6)");

db_status_t db_webhook_insert(db_conn_t *c, const char *merchant_id, const char *id,
                              const char *url, const char *events_array, bool enabled,
                              const char *sealed)
{
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, merchant_id);
    db_param_text(&p, id);
    db_param_text(&p, url);
    db_param_text(&p, events_array);
    db_param_bool(&p, enabled);
    db_param_text(&p, sealed);
    PGresult *r;
    db_status_t s = db_exec(c, &webhook_insert, &p, &r);
    PQclear(r);
    return s;
}

DB_STMT(webhook_update,
        "UPDATE gateway.webhook_endpoints SET url = $3, events = $4::text[], enabled = $5, "
        " previous_sealed = CASE WHEN $6::text IS NULL THEN previous_sealed ELSE secret_sealed END, "
        " previous_expires_at = CASE WHEN $6::text IS NULL THEN previous_expires_at "
        "   ELSE now() + make_interval(secs => $7::bigint) END, "
        " secret_sealed = COALESCE($6::text, secret_sealed), updated_at = now() "
        "WHERE merchant_id = $1 AND id = $2");

db_status_t db_webhook_update(db_conn_t *c, const char *merchant_id, const char *id,
                              const char *url, const char *events_array, bool enabled,
                              const char *new_sealed, int64_t overlap_s)
{
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, merchant_id);
    db_param_text(&p, id);
    db_param_text(&p, url);
    db_param_text(&p, events_array);
    db_param_bool(&p, enabled);
    db_param_text(&p, new_sealed);
    db_param_int(&p, overlap_s);
    PGresult *r;
    db_status_t s = db_exec(c, &webhook_update, &p, &r);
    PQclear(r);
    return s;
}

DB_STMT(webhook_list, "SELECT id, url, array_to_json(events)::text, enabled, "
                      "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
                      "FROM gateway.webhook_endpoints WHERE merchant_id = $1 ORDER BY created_at, id");

db_status_t db_webhook_list(db_conn_t *c, const char *merchant_id, json_t **out)
{
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, merchant_id);
    PGresult *r;
    db_status_t s = db_exec(c, &webhook_list, &p, &r);
    if (s != DB_OK)
        return s;
    json_t *a = json_array();
    for (int i = 0; i < PQntuples(r); i++) {
        json_t *ev = json_loads(db_str(r, i, 2), 0, NULL);
        json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:o, s:b, s:s}", "object",
                                           "webhook_endpoint", "id", db_str(r, i, 0), "url",
                                           db_str(r, i, 1), "events", ev ? ev : json_array(),
                                           "enabled", db_bool(r, i, 3), "created",
                                           db_str(r, i, 4)));
    }
    PQclear(r);
    *out = a;
    return DB_OK;
}
