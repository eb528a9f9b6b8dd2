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

int main(void)
{
    h_init("it_db_roles");
    Suite *s = suite_create("db_roles");
    TCase *tc = h_tcase("roles", 120);
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_add_test(tc, gateway_role_is_refused_on_the_vault_schema);
    tcase_add_test(tc, audit_log_is_insert_only_for_services);
    tcase_add_test(tc, migrations_are_recorded_and_idempotent);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
