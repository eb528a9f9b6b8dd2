/* Merchant rows: look one up, create one. */
#include "gateway/db/gwdb.h"
#include <stdio.h>
#include <stdlib.h>

DB_STMT(merchant_select,
        "SELECT id, name, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
        "FROM gateway.merchants WHERE id = $1");

db_status_t db_merchant_get(db_conn_t *c, const char *id, gwdb_merchant_t *out)
{
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, id);
    PGresult *r;
    db_status_t s = db_exec(c, &merchant_select, &p, &r);
    if (s != DB_OK)
        return s;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return DB_NOT_FOUND;
    }
    snprintf(out->id, sizeof out->id, "%s", db_str(r, 0, 0));
    snprintf(out->name, sizeof out->name, "%s", db_str(r, 0, 1));
    snprintf(out->created, sizeof out->created, "%s", db_str(r, 0, 2));
    PQclear(r);
    return DB_OK;
}

DB_STMT(merchant_insert, "INSERT INTO gateway.merchants (id, name) VALUES ($1, $2)");

db_status_t db_merchant_insert(db_conn_t *c, const char *id, const char *name)
{
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, id);
    db_param_text(&p, name);
    PGresult *r;
    db_status_t s = db_exec(c, &merchant_insert, &p, &r);
    PQclear(r);
    return s;
}

DB_STMT(merchant_rename, "UPDATE gateway.merchants SET name = $2 WHERE id = $1");

db_status_t db_merchant_rename(db_conn_t *c, const char *id, const char *name)
{
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, id);
    db_param_text(&p, name);
    PGresult *r;
    db_status_t s = db_exec(c, &merchant_rename, &p, &r);
    if (s == DB_OK && atoi(PQcmdTuples(r)) != 1)
        s = DB_NOT_FOUND;
    PQclear(r);
    return s;
}
