/* The event log and its outbox deliveries: an event and one delivery per
 * subscribed endpoint are written in one statement, in the caller's
 * transaction, so an event exists if and only if the state it announces was
 * committed. */
#include "gateway/checkout.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

DB_STMT(event_insert,
        "WITH ev AS (INSERT INTO gateway.events (id, merchant_id, type, object_id, data) "
        "  VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT DO NOTHING "
        "  RETURNING id, merchant_id, type) "
        "INSERT INTO gateway.outbox (kind, merchant_id, event_id, endpoint_id, target) "
        "SELECT 'event', ev.merchant_id, ev.id, w.id, w.url FROM ev "
        "JOIN gateway.webhook_endpoints w ON w.merchant_id = ev.merchant_id AND w.enabled "
        " AND (ev.type = ANY (w.events) OR '*' = ANY (w.events))");

db_status_t gw_event_emit(db_conn_t *c, const char *merchant_id, const char *type,
                          const char *object_id, json_t *data, char event_id[IDS_MAX])
{
    ids_new(event_id, IDS_MAX, "evt_");
    char *text = json_dumps(data, JSON_COMPACT);
    if (!text)
        return DB_ERROR;
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, event_id);
    db_param_text(&p, merchant_id);
    db_param_text(&p, type);
    db_param_text(&p, object_id);
    db_param_text(&p, text);
    PGresult *r;
    db_status_t s = db_exec(c, &event_insert, &p, &r);
    PQclear(r);
    free(text);
    return s;
}

DB_STMT(outbox_inventory, "INSERT INTO gateway.outbox (kind, merchant_id, target) "
                          "VALUES ($1, $2, $3)");

db_status_t db_outbox_inventory(db_conn_t *c, const char *merchant_id, bool commit,
                                const char *reservation_id)
{
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, commit ? "inventory_commit" : "inventory_release");
    db_param_text(&p, merchant_id);
    db_param_text(&p, reservation_id);
    PGresult *r;
    db_status_t s = db_exec(c, &outbox_inventory, &p, &r);
    PQclear(r);
    return s;
}

DB_STMT(event_redeliver,
        "INSERT INTO gateway.outbox (kind, merchant_id, event_id, endpoint_id, target) "
        "SELECT 'event', ev.merchant_id, ev.id, w.id, w.url FROM gateway.events ev "
        "JOIN gateway.webhook_endpoints w ON w.merchant_id = ev.merchant_id AND w.enabled "
        " AND (ev.type = ANY (w.events) OR '*' = ANY (w.events)) "
        "WHERE ev.id = $1 AND ev.merchant_id = $2");

DB_STMT(event_exists, "SELECT 1 FROM gateway.events WHERE id = $1 AND merchant_id = $2");

db_status_t db_event_exists(db_conn_t *c, const char *merchant_id, const char *event_id)
{
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, event_id);
    db_param_text(&p, merchant_id);
    PGresult *r;
    db_status_t s = db_exec(c, &event_exists, &p, &r);
    if (s != DB_OK)
        return s;
    bool found = PQntuples(r) == 1;
    PQclear(r);
    return found ? DB_OK : DB_NOT_FOUND;
}

db_status_t db_event_redeliver(db_conn_t *c, const char *merchant_id, const char *event_id,
                               int *queued)
{
    db_status_t s = db_event_exists(c, merchant_id, event_id);
    if (s != DB_OK)
        return s;
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, event_id);
    db_param_text(&p, merchant_id);
    PGresult *r;
    s = db_exec(c, &event_redeliver, &p, &r);
    if (s == DB_OK)
        *queued = atoi(PQcmdTuples(r));
    PQclear(r);
    return s;
}

DB_STMT(events_list, "SELECT id, type, "
                     "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
                     "data::text, seq "
                     "FROM gateway.events WHERE merchant_id = $1 AND seq > COALESCE("
                     " (SELECT seq FROM gateway.events WHERE id = $2 AND merchant_id = $1), 0) "
                     "AND ($3::text IS NULL OR type = $3) "
                     "AND (txid IS NULL OR txid < pg_snapshot_xmin(pg_current_snapshot())) "
                     "ORDER BY seq LIMIT $4");

db_status_t db_events_list(db_conn_t *c, const char *merchant_id, const char *after,
                           const char *type, int limit, json_t **out, bool *has_more)
{
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, merchant_id);
    db_param_text(&p, after ? after : "");
    db_param_text(&p, type);
    db_param_int(&p, limit + 1);
    PGresult *r;
    db_status_t s = db_exec(c, &events_list, &p, &r);
    if (s != DB_OK)
        return s;
    json_t *a = json_array();
    int n = PQntuples(r);
    for (int i = 0; i < n && i < limit; i++) {
        json_t *data = json_loads(db_str(r, i, 3), 0, NULL);
        json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:o}", "id", db_str(r, i, 0), "type",
                                           db_str(r, i, 1), "created", db_str(r, i, 2), "data",
                                           data ? data : json_null()));
    }
    *has_more = n > limit;
    *out = a;
    PQclear(r);
    return DB_OK;
}
