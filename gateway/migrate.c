/* Schema migrations: numbered SQL files embedded at build time, each applied
 * in its own transaction under an advisory lock and recorded in
 * portcullis_meta.schema_version, so concurrent or repeated runs are safe. */
#include "gateway/gateway.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIGRATE_LOCK "7275726c"

static bool exec_ok(PGconn *pg, const char *sql, const char *what)
{
    PGresult *r = PQexec(pg, sql);
    ExecStatusType s = PQresultStatus(r);
    bool ok = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "gatewayctl: migrate: %s failed: %s", what, PQresultErrorMessage(r));
    PQclear(r);
    return ok;
}

static int applied(PGconn *pg, int version)
{
    char v[16];
    snprintf(v, sizeof v, "%d", version);
    const char *vals[1] = {v};
    PGresult *r = PQexecParams(pg, "SELECT 1 FROM portcullis_meta.schema_version WHERE version = $1",
                               1, NULL, vals, NULL, NULL, 0);
    int rc = PQresultStatus(r) != PGRES_TUPLES_OK ? -1 : PQntuples(r) > 0;
    PQclear(r);
    return rc;
}

static bool record(PGconn *pg, const gw_migration_t *m)
{
    char v[16];
    snprintf(v, sizeof v, "%d", m->version);
    const char *vals[2] = {v, m->name};
    PGresult *r = PQexecParams(pg,
                               "INSERT INTO portcullis_meta.schema_version (version, name) "
                               "VALUES ($1, $2)",
                               2, NULL, vals, NULL, NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "gatewayctl: migrate: recording %s failed: %s", m->name,
                PQresultErrorMessage(r));
    PQclear(r);
    return ok;
}

static int apply_one(PGconn *pg, const gw_migration_t *m, bool verbose)
{
    if (!exec_ok(pg, "BEGIN", "BEGIN") ||
        !exec_ok(pg, "SELECT pg_advisory_xact_lock(x'" MIGRATE_LOCK "'::bigint)", "lock") ||
        !exec_ok(pg,
                 "CREATE SCHEMA IF NOT EXISTS portcullis_meta; "
                 "CREATE TABLE IF NOT EXISTS portcullis_meta.schema_version ("
                 " version integer PRIMARY KEY, name text NOT NULL,"
                 " applied_at timestamptz NOT NULL DEFAULT now())",
                 "schema_version table"))
        goto fail;
    int a = applied(pg, m->version);
    if (a < 0)
        goto fail;
    if (a == 0) {
        if (!exec_ok(pg, m->sql, m->name) || !record(pg, m))
            goto fail;
        if (verbose)
            printf("applied %s\n", m->name);
    }
    if (!exec_ok(pg, "COMMIT", "COMMIT"))
        return -1;
    return a == 0 ? 1 : 0;
fail:
    exec_ok(pg, "ROLLBACK", "ROLLBACK");
    return -1;
}

int gw_migrate(PGconn *pg, bool verbose)
{
    int n = 0;
    exec_ok(pg, "SET client_min_messages = warning", "SET");
    for (size_t i = 0; i < gw_nmigrations; i++) {
        int rc = apply_one(pg, &gw_migrations[i], verbose);
        if (rc < 0)
            return -1;
        n += rc;
    }
    if (verbose)
        printf("schema is at version %d (%d migration%s applied now)\n",
               gw_nmigrations ? gw_migrations[gw_nmigrations - 1].version : 0, n,
               n == 1 ? "" : "s");
    return 0;
}
