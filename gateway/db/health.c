/* Liveness of the database and cross-instance change notices. */
#include "gateway/db/gwdb.h"

DB_STMT(config_notify, "SELECT pg_notify('portcullis_config', $1)");

db_status_t db_config_notify(db_conn_t *c, const char *what)
{
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, what);
    PGresult *r;
    db_status_t s = db_exec(c, &config_notify, &p, &r);
    PQclear(r);
    return s;
}

DB_STMT(ping, "SELECT 1");

db_status_t db_ping(db_conn_t *c)
{
    PGresult *r;
    db_status_t s = db_exec(c, &ping, NULL, &r);
    PQclear(r);
    return s;
}
