/* API-key rows: stored only as keyed hashes; looked up by hash. */
#include "gateway/db/gwdb.h"
#include <stdio.h>
#include <stdlib.h>

DB_STMT(apikey_select,
        "SELECT id, merchant_id, role, revoked_at IS NOT NULL, "
        "COALESCE(extract(epoch FROM expires_at)::bigint, 0) "
        "FROM gateway.api_keys WHERE key_hash = $1");

db_status_t db_apikey_lookup(db_conn_t *c, const unsigned char hash[32], gwdb_apikey_t *out)
{
    db_params_t p;
    db_params_init(&p);
    db_param_bytes(&p, hash, 32);
    PGresult *r;
    db_status_t s = db_exec(c, &apikey_select, &p, &r);
    if (s != DB_OK)
        return s;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return DB_NOT_FOUND;
    }
    snprintf(out->key_id, sizeof out->key_id, "%s", db_str(r, 0, 0));
    snprintf(out->merchant_id, sizeof out->merchant_id, "%s", db_str(r, 0, 1));
    snprintf(out->role, sizeof out->role, "%s", db_str(r, 0, 2));
    out->revoked = db_bool(r, 0, 3);
    out->expires_at = db_i64(r, 0, 4);
    PQclear(r);
    return DB_OK;
}

DB_STMT(apikey_insert, "INSERT INTO gateway.api_keys (id, merchant_id, role, key_hash, display) "
                       "VALUES ($1, $2, $3, $4, $5)");

db_status_t db_apikey_insert(db_conn_t *c, const char *id, const char *merchant_id,
                             const char *role, const unsigned char hash[32], const char *display)
{
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, id);
    db_param_text(&p, merchant_id);
    db_param_text(&p, role);
    db_param_bytes(&p, hash, 32);
    db_param_text(&p, display);
    PGresult *r;
    db_status_t s = db_exec(c, &apikey_insert, &p, &r);
    PQclear(r);
    return s;
}

DB_STMT(apikey_revoke, "UPDATE gateway.api_keys SET revoked_at = now() "
                       "WHERE id = $1 AND revoked_at IS NULL");

db_status_t db_apikey_revoke(db_conn_t *c, const char *key_id)
{
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, key_id);
    PGresult *r;
    db_status_t s = db_exec(c, &apikey_revoke, &p, &r);
    if (s == DB_OK && atoi(PQcmdTuples(r)) != 1)
        s = DB_NOT_FOUND;
    PQclear(r);
    return s;
}

DB_STMT(apikey_expire_role,
        "UPDATE gateway.api_keys SET expires_at = now() + make_interval(secs => $3::bigint), "
        "revoked_at = CASE WHEN $3::bigint = 0 THEN now() ELSE revoked_at END "
        "WHERE merchant_id = $1 AND role = $2 AND id <> $4 AND revoked_at IS NULL "
        "AND (expires_at IS NULL OR expires_at > now() + make_interval(secs => $3::bigint))");

db_status_t db_apikey_expire_role(db_conn_t *c, const char *merchant_id, const char *role,
                                  int64_t grace_s, const char *except_id, int *n)
{
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, merchant_id);
    db_param_text(&p, role);
    db_param_int(&p, grace_s);
    db_param_text(&p, except_id);
    PGresult *r;
    db_status_t s = db_exec(c, &apikey_expire_role, &p, &r);
    if (s == DB_OK)
        *n = atoi(PQcmdTuples(r));
    PQclear(r);
    return s;
}

DB_STMT(apikey_list,
        "SELECT id, role, display, "
        "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
        "CASE WHEN revoked_at IS NOT NULL THEN 'revoked' "
        "     WHEN expires_at IS NOT NULL AND expires_at <= now() THEN 'expired' "
        "     WHEN expires_at IS NOT NULL THEN 'expiring' ELSE 'active' END "
        "FROM gateway.api_keys WHERE merchant_id = $1 ORDER BY created_at, id");

db_status_t db_apikey_list(db_conn_t *c, const char *merchant_id, json_t **out)
{
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, merchant_id);
    PGresult *r;
    db_status_t s = db_exec(c, &apikey_list, &p, &r);
    if (s != DB_OK)
        return s;
    json_t *a = json_array();
    for (int i = 0; i < PQntuples(r); i++)
        json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", db_str(r, i, 0),
                                           "role", db_str(r, i, 1), "display", db_str(r, i, 2),
                                           "created", db_str(r, i, 3), "status",
                                           db_str(r, i, 4)));
    PQclear(r);
    *out = a;
    return DB_OK;
}
