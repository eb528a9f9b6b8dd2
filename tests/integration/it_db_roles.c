/* Integration: schema separation. The gateway role is refused on the vault
 * schema and cannot alter the audit log; the auditor only reads it. */
#include "tests/harness/harness.h"
#include <string.h>

static char *db;

static void setup(void)
{
    db = h_db_create();
    /* a table in the vault schema, created by the schema owner as the vault
     * migrations do, so the refusal is about the schema, not a missing table */
    free(h_sql(db, "CREATE TABLE IF NOT EXISTS vault.probe (x int); INSERT INTO vault.probe VALUES (1)"));
}

static void teardown(void)
{
    h_db_drop(db);
    free(db);
}

static const char *sqlstate_of(const char *role, const char *sql)
{
    static char state[8];
    PGconn *pg = h_db_connect(db, role);
    ck_assert_ptr_nonnull(pg);
    PGresult *r = PQexec(pg, sql);
    ExecStatusType st = PQresultStatus(r);
    const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    snprintf(state, sizeof state, "%s", (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) ? "ok" : (s ? s : "?"));
    PQclear(r);
    PQfinish(pg);
    return state;
}

START_TEST(gateway_role_is_refused_on_the_vault_schema)
{
    ck_assert_str_eq(sqlstate_of("gateway", "SELECT * FROM vault.probe"), "42501");
    ck_assert_str_eq(sqlstate_of("gateway", "CREATE TABLE vault.mine (x int)"), "42501");
    ck_assert_str_eq(sqlstate_of("auditor", "SELECT * FROM vault.probe"), "42501");
    ck_assert_str_eq(sqlstate_of("vault", "SELECT * FROM vault.probe"), "ok");
    ck_assert_str_eq(sqlstate_of("vault", "SELECT * FROM gateway.api_keys"), "42501");
}
END_TEST

START_TEST(audit_log_is_insert_only_for_services)
{
    ck_assert_str_eq(sqlstate_of("gateway", "INSERT INTO audit.events (actor, action) VALUES "
                                            "('test', 'probe')"),
                     "ok");
    ck_assert_str_eq(sqlstate_of("gateway", "UPDATE audit.events SET action = 'x'"), "42501");
    ck_assert_str_eq(sqlstate_of("gateway", "DELETE FROM audit.events"), "42501");
    ck_assert_str_eq(sqlstate_of("gateway", "SELECT * FROM audit.events"), "42501");
    ck_assert_str_eq(sqlstate_of("vault", "DELETE FROM audit.events"), "42501");
    ck_assert_str_eq(sqlstate_of("auditor", "SELECT count(*) FROM audit.events"), "ok");
    ck_assert_str_eq(sqlstate_of("auditor", "INSERT INTO audit.events (actor, action) VALUES "
                                            "('x', 'y')"),
                     "42501");
    ck_assert_str_eq(sqlstate_of("auditor", "SELECT * FROM gateway.merchants"), "42501");
}
END_TEST

START_TEST(migrations_are_recorded_and_idempotent)
{
    long n = h_sql_long(db, "SELECT count(*) FROM portcullis_meta.schema_version");
    ck_assert_int_ge(n, 1);
    const char *args[] = {"migrate", NULL};
    char *out = NULL;
    ck_assert_int_eq(h_gatewayctl(db, &out, args), 0);
    ck_assert_ptr_nonnull(strstr(out, "0 migrations applied"));
    free(out);
    ck_assert_int_eq(h_sql_long(db, "SELECT count(*) FROM portcullis_meta.schema_version"), n);
}
END_TEST

/* The services' connections (the pool's, the change listener's) ask the
 * kernel to notice a server that vanished without a reset: keepalives and a
 * TCP user timeout, so a failover does not leave a worker waiting for a
 * quarter of an hour. */
START_TEST(service_connections_carry_keepalives_and_a_user_timeout)
{
    char *ci = h_conninfo(db, "gateway");
    char *pw = file_read_all(h_password_file("gateway"), 4096, NULL);
    if (pw)
        pw[strcspn(pw, "\n")] = '\0';
    PGconn *pg = db_connect(ci, "it_db_roles", pw);
    ck_assert_int_eq(PQstatus(pg), CONNECTION_OK);
    const char *want[][2] = {{"keepalives", "1"},
                             {"keepalives_idle", "10"},
                             {"keepalives_interval", "5"},
                             {"keepalives_count", "3"},
                             {"tcp_user_timeout", "20000"}};
    PQconninfoOption *opts = PQconninfo(pg);
    for (size_t i = 0; i < PC_ARRAY_LEN(want); i++) {
        const char *got = NULL;
        for (PQconninfoOption *o = opts; o && o->keyword; o++)
            if (!strcmp(o->keyword, want[i][0]))
                got = o->val;
        ck_assert_msg(got && !strcmp(got, want[i][1]), "%s = %s", want[i][0], got ? got : "?");
    }
    PQconninfoFree(opts);
    PQfinish(pg);
    free(ci);
    free(pw);
}
END_TEST

int main(void)
{
    h_init("it_db_roles");
    Suite *s = suite_create("db_roles");
    TCase *tc = h_tcase("roles", 120);
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_add_test(tc, gateway_role_is_refused_on_the_vault_schema);
    tcase_add_test(tc, audit_log_is_insert_only_for_services);
    tcase_add_test(tc, migrations_are_recorded_and_idempotent);
    tcase_add_test(tc, service_connections_carry_keepalives_and_a_user_timeout);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
