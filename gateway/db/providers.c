/* Provider and routing rows of a merchant. */
#include "gateway/db/gwdb.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

DB_STMT(provider_upsert,
        "INSERT INTO gateway.providers (merchant_id, name, type, config, credentials_sealed) "
        "VALUES ($1, $2, $3, $4::jsonb, $5) "
        "ON CONFLICT (merchant_id, name) DO UPDATE SET type = EXCLUDED.type, "
        " config = EXCLUDED.config, credentials_sealed = EXCLUDED.credentials_sealed, "
        " updated_at = now() "
        "RETURNING (xmax = 0)");

DB_STMT(provider_update_keep, "UPDATE gateway.providers SET type = $3, config = $4::jsonb, "
                               "updated_at = now() WHERE merchant_id = $1 AND name = $2");

db_status_t db_provider_upsert(db_conn_t *c, const char *merchant_id, const char *name,
                               const char *type, const char *config_json, const char *sealed,
                               bool *created)
{
    db_params_t p;
    if (!sealed) {
        /* keep the sealed credentials: only an existing provider */
        db_params_init(&p);
        db_param_text(&p, merchant_id);
        db_param_text(&p, name);
        db_param_text(&p, type);
        db_param_text(&p, config_json);
        PGresult *r;
        db_status_t s = db_exec(c, &provider_update_keep, &p, &r);
        if (s == DB_OK && atoi(PQcmdTuples(r)) != 1)
            s = DB_NOT_FOUND;
        PQclear(r);
        *created = false;
        return s;
    }
    db_params_init(&p);
    db_param_text(&p, merchant_id);
    db_param_text(&p, name);
    db_param_text(&p, type);
    db_param_text(&p, config_json);
    db_param_text(&p, sealed);
    PGresult *r;
    db_status_t s = db_exec(c, &provider_upsert, &p, &r);
    if (s == DB_OK)
        *created = db_bool(r, 0, 0);
    PQclear(r);
    return s;
}

DB_STMT(providers_load, "SELECT name, config::text, credentials_sealed FROM gateway.providers "
                        "WHERE merchant_id = $1 ORDER BY name");

db_status_t db_providers_load(db_conn_t *c, const char *merchant_id, gwdb_provider_row_t **rows,
                              int *n)
{
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, merchant_id);
    PGresult *r;
    db_status_t s = db_exec(c, &providers_load, &p, &r);
    if (s != DB_OK)
        return s;
    *n = PQntuples(r);
    *rows = calloc(*n ? (size_t)*n : 1, sizeof **rows);
    for (int i = 0; i < *n; i++) {
        snprintf((*rows)[i].name, sizeof (*rows)[i].name, "%s", db_str(r, i, 0));
        (*rows)[i].config = strdup(db_str(r, i, 1));
        (*rows)[i].sealed = strdup(db_str(r, i, 2));
    }
    PQclear(r);
    return DB_OK;
}

void gwdb_provider_rows_free(gwdb_provider_row_t *rows, int n)
{
    for (int i = 0; i < n; i++) {
        free(rows[i].config);
        free(rows[i].sealed);
    }
    free(rows);
}

DB_STMT(routing_put, "INSERT INTO gateway.routing (merchant_id, doc) VALUES ($1, $2::jsonb) "
                     "ON CONFLICT (merchant_id) DO UPDATE SET doc = EXCLUDED.doc, "
                     "updated_at = now()");

db_status_t db_routing_put(db_conn_t *c, const char *merchant_id, const char *doc)
{
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, merchant_id);
    db_param_text(&p, doc);
    PGresult *r;
    db_status_t s = db_exec(c, &routing_put, &p, &r);
    PQclear(r);
    return s;
}

DB_STMT(routing_get, "SELECT doc::text FROM gateway.routing WHERE merchant_id = $1");

db_status_t db_routing_get(db_conn_t *c, const char *merchant_id, char **doc)
{
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, merchant_id);
    PGresult *r;
    db_status_t s = db_exec(c, &routing_get, &p, &r);
    if (s != DB_OK)
        return s;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return DB_NOT_FOUND;
    }
    *doc = strdup(db_str(r, 0, 0));
    PQclear(r);
    return DB_OK;
}
