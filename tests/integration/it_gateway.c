/* Integration: gatewayd against the real database: health and readiness,
 * metrics shape, authentication and roles, and every generic error case. */
#include "gateway/gateway.h"
#include "tests/harness/harness.h"
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char *db;
static h_gateway_t *gwy;
static h_merchant_t m;

static void setup(void)
{
    db = h_db_create();
    gwy = h_gateway_start(db, "gatewayd", NULL);
    m = h_merchant_create(db, "Acme Mugs");
}

static void teardown(void)
{
    h_gateway_stop(gwy, SIGTERM);
    h_db_drop(db);
    free(db);
}

START_TEST(healthz_and_readyz_answer)
{
    h_resp_t r = h_get(gwy, "/healthz", NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(h_json_str(r.json, "status"), "ok");
    char *rid = h_resp_header(&r, "Request-Id");
    ck_assert_ptr_nonnull(rid);
    ck_assert(!strncmp(rid, "req_", 4));
    free(rid);
    h_resp_free(&r);
    r = h_get(gwy, "/readyz", NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(h_json_str(r.json, "checks.database"), "ok");
    h_resp_free(&r);
}
END_TEST

START_TEST(metrics_have_prometheus_shape)
{
    h_resp_t r = h_get(gwy, "/v1/merchant", m.sk);
    h_resp_free(&r);
    r = h_get(gwy, "/nope", NULL);
    h_resp_free(&r);
    r = h_get(gwy, "/metrics", NULL);
    ck_assert_int_eq(r.status, 200);
    char *ct = h_resp_header(&r, "Content-Type");
    ck_assert_ptr_nonnull(strstr(ct, "text/plain"));
    free(ct);
    ck_assert_ptr_nonnull(strstr(r.body, "# TYPE portcullis_http_requests_total counter"));
    ck_assert_ptr_nonnull(strstr(
        r.body,
        "portcullis_http_requests_total{method=\"GET\",route=\"/v1/merchant\",status=\"200\"} "));
    ck_assert_ptr_nonnull(strstr(
        r.body, "portcullis_http_requests_total{method=\"\",route=\"unmatched\",status=\"404\"} "));
    ck_assert_ptr_nonnull(strstr(r.body, "# TYPE portcullis_http_request_duration_seconds histogram"));
    ck_assert_ptr_nonnull(strstr(r.body, "portcullis_http_request_duration_seconds_bucket{method=\"GET\",route=\"/v1/merchant\",le=\"+Inf\"} "));
    ck_assert_ptr_nonnull(strstr(r.body, "portcullis_http_requests_in_flight 1"));
    ck_assert_ptr_nonnull(strstr(r.body, "portcullis_db_pool_connections{state=\"in_use\"}"));
    ck_assert_ptr_nonnull(strstr(r.body, "portcullis_db_pool_size 16"));
    /* every non-comment line is "name{labels} value" or "name value" */
    char *save = NULL;
    for (char *line = strtok_r(r.body, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#')
            continue;
        char *sp = strrchr(line, ' ');
        ck_assert_msg(sp && sp[1], "bad metrics line: %s", line);
        char *end;
        strtod(sp + 1, &end);
        ck_assert_msg(*end == '\0', "bad metrics value: %s", line);
    }
    h_resp_free(&r);
}
END_TEST

START_TEST(merchant_get_returns_the_keys_merchant)
{
    h_resp_t r = h_get(gwy, "/v1/merchant", m.sk);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(h_json_str(r.json, "id"), m.id);
    ck_assert_str_eq(h_json_str(r.json, "name"), "Acme Mugs");
    ck_assert_ptr_nonnull(h_json_str(r.json, "created"));
    h_resp_free(&r);
    /* a second merchant's key sees only its own merchant */
    h_merchant_t other = h_merchant_create(db, "Other Shop");
    r = h_get(gwy, "/v1/merchant", other.sk);
    ck_assert_str_eq(h_json_str(r.json, "id"), other.id);
    h_resp_free(&r);
}
END_TEST

START_TEST(auth_failures_are_401_and_403)
{
    h_resp_t r = h_get(gwy, "/v1/merchant", NULL);
    h_assert_error(&r, 401, ERR_API_KEY_MISSING);
    h_resp_free(&r);
    r = h_get(gwy, "/v1/merchant", "sk_test_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    h_assert_error(&r, 401, ERR_API_KEY_INVALID);
    h_resp_free(&r);
    r = h_get(gwy, "/v1/merchant", "garbage");
    h_assert_error(&r, 401, ERR_API_KEY_INVALID);
    h_resp_free(&r);
    const char *basic[] = {"Authorization: Basic Zm9vOmJhcg==", NULL};
    char url[256];
    snprintf(url, sizeof url, "%s/v1/merchant", gwy->url);
    r = h_http("GET", url, NULL, NULL, basic);
    h_assert_error(&r, 401, ERR_API_KEY_INVALID);
    h_resp_free(&r);
    /* wrong role */
    r = h_get(gwy, "/v1/merchant", m.pk);
    h_assert_error(&r, 403, ERR_PERMISSION_DENIED);
    h_resp_free(&r);
    r = h_get(gwy, "/v1/merchant", m.ak);
    h_assert_error(&r, 403, ERR_PERMISSION_DENIED);
    h_resp_free(&r);
}
END_TEST

START_TEST(revoked_and_rotated_keys_stop_working)
{
    h_resp_t r = h_get(gwy, "/v1/merchant", m.sk); /* now cached */
    ck_assert_int_eq(r.status, 200);
    h_resp_free(&r);
    char *kid = h_sql(db, "SELECT id FROM gateway.api_keys WHERE merchant_id = '%s' AND role = 'sk'",
                      m.id);
    ck_assert_ptr_nonnull(kid);
    const char *revoke[] = {"key", "revoke", kid, NULL};
    ck_assert_int_eq(h_gatewayctl(db, NULL, revoke), 0);
    /* the revocation is announced; the cache must not keep serving the key */
    long st = 0;
    for (int i = 0; i < 200; i++) {
        r = h_get(gwy, "/v1/merchant", m.sk);
        st = r.status;
        if (st == 401) {
            h_assert_error(&r, 401, ERR_API_KEY_EXPIRED);
            h_resp_free(&r);
            break;
        }
        h_resp_free(&r);
        usleep(10 * 1000);
    }
    ck_assert_int_eq(st, 401);
    ck_assert_int_ne(h_gatewayctl(db, NULL, revoke), 0); /* already revoked */

    /* rotation issues a working key and retires the old one */
    char *out = NULL;
    const char *rotate[] = {"key", "rotate", m.id, "pk", "--json", NULL};
    ck_assert_int_eq(h_gatewayctl(db, &out, rotate), 0);
    json_t *j = json_loads(out, 0, NULL);
    ck_assert_ptr_nonnull(j);
    const char *newpk = h_json_str(j, "key");
    ck_assert(!strncmp(newpk, "pk_test_", 8));
    ck_assert_int_eq(h_json_int(j, "old_keys"), 1);
    /* the key itself is never stored */
    ck_assert_int_eq(h_sql_long(db, "SELECT count(*) FROM gateway.api_keys k "
                                    "WHERE k::text LIKE '%%%s%%'",
                                newpk + 8),
                     0);
    ck_assert_int_eq(h_sql_long(db, "SELECT count(*) FROM gateway.api_keys WHERE merchant_id = "
                                    "'%s' AND role = 'pk'",
                                m.id),
                     2);
    json_decref(j);
    free(out);
    free(kid);
}
END_TEST

START_TEST(generic_errors_are_json)
{
    h_resp_t r = h_get(gwy, "/v1/nothing-here", m.sk);
    h_assert_error(&r, 404, ERR_ROUTE_NOT_FOUND);
    h_resp_free(&r);
    char url[256];
    snprintf(url, sizeof url, "%s/v1/merchant", gwy->url);
    r = h_http("DELETE", url, m.sk, NULL, NULL);
    h_assert_error(&r, 405, ERR_METHOD_NOT_ALLOWED);
    char *allow = h_resp_header(&r, "Allow");
    ck_assert_ptr_nonnull(allow);
    ck_assert_str_eq(allow, "GET, POST");
    free(allow);
    h_resp_free(&r);
    snprintf(url, sizeof url, "%s/healthz", gwy->url);
    r = h_http("POST", url, NULL, "{}", NULL);
    h_assert_error(&r, 405, ERR_METHOD_NOT_ALLOWED);
    h_resp_free(&r);
}
END_TEST

START_TEST(body_errors_are_json)
{
    /* 64 KiB + 1 byte */
    size_t n = GW_MAX_BODY + 1;
    char *big = malloc(n + 1);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    big[n] = '\0';
    char url[256];
    snprintf(url, sizeof url, "%s/v1/merchant", gwy->url);
    h_resp_t r = h_http("GET", url, m.sk, big, NULL);
    h_assert_error(&r, 413, ERR_BODY_TOO_LARGE);
    h_resp_free(&r);
    free(big);

    /* chunked upload without Content-Length, over the cap */
    const char *chunked[] = {"Transfer-Encoding: chunked", NULL};
    big = malloc(200001);
    memset(big, 'x', 200000);
    big[200000] = '\0';
    r = h_http("POST", url, m.sk, big, chunked);
    ck_assert_int_eq(r.status, 413);
    h_resp_free(&r);
    free(big);

    /* the server keeps serving */
    r = h_get(gwy, "/healthz", NULL);
    ck_assert_int_eq(r.status, 200);
    h_resp_free(&r);
}
END_TEST

/* Pooled connections that the server closed while they were idle (a
 * restart, an administrator's kill) are found when taken from the pool,
 * not by failing the next request with a 503. */
START_TEST(server_closed_pool_connections_fail_no_request)
{
    h_merchant_t pm = h_merchant_create(db, "Pool Shop"); /* m's keys were rotated */
    for (int i = 0; i < 5; i++) {
        h_resp_t r = h_get(gwy, "/v1/merchant", pm.sk);
        ck_assert_int_eq(r.status, 200);
        h_resp_free(&r);
    }
    char *pids = h_sql(db, "SELECT string_agg(pid::text, ',') FROM pg_stat_activity WHERE "
                           "usename = 'portcullis_gateway' AND datname = current_database()");
    ck_assert_ptr_nonnull(pids);
    ck_assert_int_ge(h_sql_long(db, "SELECT count(pg_terminate_backend(pid)) FROM "
                                    "pg_stat_activity WHERE pid IN (%s)", pids),
                     1);
    for (int i = 0; i < 100 && h_sql_long(db, "SELECT count(*) FROM pg_stat_activity WHERE "
                                              "pid IN (%s)", pids) > 0;
         i++)
        usleep(20 * 1000); /* the backends are gone: their sockets are closed */
    free(pids);
    for (int i = 0; i < 10; i++) {
        h_resp_t r = h_get(gwy, "/v1/merchant", pm.sk);
        ck_assert_msg(r.status == 200, "request %d after the kill: %ld %s", i, r.status, r.body);
        h_resp_free(&r);
    }
}
END_TEST

/* SIGHUP reopens the log file (rotation): lines go to the new file. */
START_TEST(sighup_reopens_the_log_file)
{
    char logf[1100], old[1200];
    snprintf(logf, sizeof logf, "%.*s.log", (int)(strlen(gwy->config) - 5), gwy->config);
    snprintf(old, sizeof old, "%s.1", logf);
    ck_assert_int_eq(rename(logf, old), 0);
    kill(gwy->proc->pid, SIGHUP);
    bool written = false;
    for (int i = 0; i < 50 && !written; i++) {
        usleep(100 * 1000);
        h_resp_t r = h_get(gwy, "/healthz", NULL);
        h_resp_free(&r);
        FILE *f = fopen(logf, "r");
        if (f) {
            char line[2048];
            while (!written && fgets(line, sizeof line, f))
                written = strstr(line, "/healthz") != NULL;
            fclose(f);
        }
    }
    ck_assert_msg(written, "no request line in the reopened %s", logf);
}
END_TEST

int main(void)
{
    h_init("it_gateway");
    Suite *s = suite_create("gateway");
    TCase *tc = h_tcase("gateway", 300);
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_add_test(tc, healthz_and_readyz_answer);
    tcase_add_test(tc, metrics_have_prometheus_shape);
    tcase_add_test(tc, merchant_get_returns_the_keys_merchant);
    tcase_add_test(tc, auth_failures_are_401_and_403);
    tcase_add_test(tc, revoked_and_rotated_keys_stop_working);
    tcase_add_test(tc, generic_errors_are_json);
    tcase_add_test(tc, body_errors_are_json);
    tcase_add_test(tc, server_closed_pool_connections_fail_no_request);
    tcase_add_test(tc, sighup_reopens_the_log_file);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
