/* Integration: PUT and GET /v1/fraud/rules through gatewayd. GET returns the
 * default set until a document is stored, then exactly what was stored; a
 * bad document is a 400 naming the rule and the field and changes nothing;
 * changes are audited; and a change made on one instance is what every
 * other instance scores with, without a restart: at once on GET, through
 * the change notice in the rules cache, and even before the notice arrives
 * through the version the velocity query returns. */
#include "fraud/fraud.h"
#include "gateway/db/gwdb.h"
#include "gateway/gateway.h"
#include "tests/harness/harness.h"
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char *db;
static h_gateway_t *ga;
static h_merchant_t m;

static void setup(void)
{
    db = h_db_create();
    ga = h_gateway_start(db, "gw_a", NULL);
    m = h_merchant_create(db, "Rules Shop");
}

static void teardown(void)
{
    h_gateway_stop(ga, SIGTERM);
    h_db_drop(db);
    free(db);
}

static h_resp_t put_rules(const h_gateway_t *g, const char *key, const char *body)
{
    char url[256];
    snprintf(url, sizeof url, "%s/v1/fraud/rules", g->url);
    return h_http("PUT", url, key, body, NULL);
}

/* The document part of a GET/PUT body (without object, version, ...). */
static json_t *doc_part(const json_t *body)
{
    json_t *d = json_deep_copy(body);
    json_object_del(d, "object");
    json_object_del(d, "version");
    json_object_del(d, "updated");
    json_object_del(d, "default");
    return d;
}

#define DOC_V1                                                                                     \
    "{\"review_threshold\":50,\"decline_threshold\":80,"                                           \
    "\"block\":{\"emails\":[\"fraudster@example.net\"],\"countries\":[\"KP\"]},"                   \
    "\"allow\":{\"ips\":[\"10.1.0.0/16\"]},"                                                       \
    "\"rules\":[{\"id\":\"big_basket\",\"if\":{\"feature\":\"amount\",\"op\":\"gte\",\"value\":"   \
    "100000},\"score\":40,\"reason\":\"order total over 1,000.00\"},"                              \
    "{\"id\":\"testing\",\"action\":\"decline\",\"if\":{\"all\":[{\"feature\":"                    \
    "\"ip.distinct_cards.10m\",\"op\":\"gte\",\"value\":5},{\"not\":{\"feature\":"                 \
    "\"card_brand\",\"op\":\"in\",\"value\":[\"amex\"]}}]},\"reason\":\"card testing\"}]}"

START_TEST(get_returns_the_default_set_until_one_is_stored)
{
    h_resp_t r = h_get(ga, "/v1/fraud/rules", m.sk);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(h_json_str(r.json, "object"), "fraud_rules");
    ck_assert_int_eq(h_json_int(r.json, "version"), 0);
    ck_assert(json_is_true(json_object_get(r.json, "default")));
    json_t *d = doc_part(r.json), *want = fraud_rules_doc_complete(fraud_rules_default_doc());
    ck_assert(json_equal(d, want));
    json_decref(want);
    ck_assert_int_eq(h_json_int(r.json, "review_threshold"), 60);
    ck_assert_int_eq(h_json_int(r.json, "decline_threshold"), 85);
    json_decref(d);
    h_resp_free(&r);
}
END_TEST

/* API.md promises at least the full shape: a document that leaves parts
 * out is answered with what applies (default thresholds, empty lists). */
START_TEST(an_empty_document_is_answered_in_full)
{
    h_merchant_t e = h_merchant_create(db, "Empty Rules Shop");
    h_resp_t r = put_rules(ga, e.sk, "{}");
    ck_assert_msg(r.status == 200, "PUT: %ld %s", r.status, r.body);
    h_resp_free(&r);
    r = h_get(ga, "/v1/fraud/rules", e.sk);
    ck_assert_int_eq(h_json_int(r.json, "review_threshold"), 60);
    ck_assert_int_eq(h_json_int(r.json, "decline_threshold"), 85);
    static const char *const parts[] = {
        "block.emails", "block.ips", "block.fingerprints", "block.bins", "block.countries",
        "allow.emails", "allow.ips", "allow.fingerprints", "allow.bins", "allow.countries"};
    for (size_t i = 0; i < PC_ARRAY_LEN(parts); i++) {
        json_t *v = json_object_get(json_object_get(r.json, i < 5 ? "block" : "allow"),
                                    strchr(parts[i], '.') + 1);
        ck_assert_msg(json_is_array(v) && json_array_size(v) == 0, "%s in %s", parts[i], r.body);
    }
    ck_assert(json_is_array(json_object_get(r.json, "rules")));
    h_resp_free(&r);
}
END_TEST

START_TEST(put_replaces_the_document_and_get_returns_it)
{
    h_resp_t r = put_rules(ga, m.sk, DOC_V1);
    ck_assert_msg(r.status == 200, "PUT: %ld %s", r.status, r.body);
    ck_assert_int_eq(h_json_int(r.json, "version"), 1);
    ck_assert(json_is_false(json_object_get(r.json, "default")));
    ck_assert_ptr_nonnull(h_json_str(r.json, "updated"));
    h_resp_free(&r);

    json_t *sent = json_loads(DOC_V1, 0, NULL);
    r = h_get(ga, "/v1/fraud/rules", m.sk);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(h_json_int(r.json, "version"), 1);
    json_t *got = doc_part(r.json), *want = fraud_rules_doc_complete(sent);
    ck_assert_msg(json_equal(got, want), "GET returned %s", r.body);
    json_decref(got);
    json_decref(want);

    /* a GET body (metadata included) goes back as a PUT: edit and replace */
    json_object_set_new(r.json, "review_threshold", json_integer(55));
    char *edited = json_dumps_compact(r.json);
    h_resp_free(&r);
    r = put_rules(ga, m.sk, edited);
    ck_assert_msg(r.status == 200, "PUT of a GET body: %ld %s", r.status, r.body);
    ck_assert_int_eq(h_json_int(r.json, "version"), 2);
    ck_assert_int_eq(h_json_int(r.json, "review_threshold"), 55);
    h_resp_free(&r);
    /* ...but not over someone else's newer change (it says version 1) */
    r = put_rules(ga, m.sk, edited);
    h_assert_error(&r, 409, ERR_INVALID_STATE);
    ck_assert_str_eq(h_json_str(r.json, "error.param"), "version");
    h_resp_free(&r);
    free(edited);

    /* every change is in the PCI scope log, without the document */
    ck_assert_int_eq(
        h_sql_long(db,
                   "SELECT count(*) FROM audit.events WHERE action = "
                   "'fraud.rules.update' AND merchant_id = '%s' AND actor LIKE 'key:%%'",
                   m.id),
        2);
    ck_assert_int_eq(h_sql_long(db,
                                "SELECT max((detail->>'version')::int) FROM audit.events WHERE "
                                "action = 'fraud.rules.update' AND merchant_id = '%s'",
                                m.id),
                     2);
    ck_assert_int_eq(h_sql_long(db, "SELECT count(*) FROM audit.events WHERE detail::text LIKE "
                                    "'%%fraudster%%'"),
                     0);

    /* another merchant still sees the default set */
    h_merchant_t other = h_merchant_create(db, "Other Shop");
    r = h_get(ga, "/v1/fraud/rules", other.sk);
    ck_assert_int_eq(h_json_int(r.json, "version"), 0);
    h_resp_free(&r);
    json_decref(sent);
}
END_TEST

static void expect_400(const char *body, err_code_t code, const char *param, const char *words)
{
    h_resp_t r = put_rules(ga, m.sk, body);
    h_assert_error(&r, 400, code);
    const char *p = h_json_str(r.json, "error.param");
    ck_assert_msg(param == NULL ? p == NULL : (p && !strcmp(p, param)), "param %s, expected %s: %s",
                  p ? p : "(none)", param ? param : "(none)", r.body);
    ck_assert_msg(strstr(h_json_str(r.json, "error.message"), words), "message lacks \"%s\": %s",
                  words, r.body);
    h_resp_free(&r);
}

START_TEST(invalid_documents_are_refused_naming_the_problem)
{
    expect_400("{\"review_threshold\":\"high\"}", ERR_PARAMETER_INVALID, "review_threshold",
               "integer");
    expect_400("{\"rules\":[{\"id\":\"r1\",\"score\":\"ten\",\"if\":{\"feature\":\"amount\","
               "\"op\":\"gt\",\"value\":1}}]}",
               ERR_PARAMETER_INVALID, "rules[0].score", "In rule \"r1\"");
    expect_400("{\"rules\":[{\"id\":\"ok\",\"score\":1,\"if\":{\"feature\":\"amount\",\"op\":"
               "\"gt\",\"value\":1}},{\"id\":\"sz\",\"score\":1,\"if\":{\"feature\":"
               "\"shoe_size\",\"op\":\"gt\",\"value\":44}}]}",
               ERR_PARAMETER_INVALID, "rules[1].if.feature",
               "In rule \"sz\": rules[1].if.feature is not a known feature: \"shoe_size\"");
    expect_400("{\"rules\":[{\"id\":\"big_basket\",\"score\":40,\"if\":{\"feature\":\"amount\","
               "\"op\":\"bigger\",\"value\":100000}}]}",
               ERR_PARAMETER_INVALID, "rules[0].if.op", "not a known operator: \"bigger\"");
    expect_400("{\"rules\":[{\"id\":\"r1\",\"score\":1,\"if\":{\"feature\":\"amount\",\"op\":"
               "\"gt\",\"value\":\"1\"}}]}",
               ERR_PARAMETER_INVALID, "rules[0].if.value", "must be an integer");
    expect_400("{\"rulez\":[]}", ERR_PARAMETER_UNKNOWN, "rulez", "not a known");
    expect_400("{\"block\":{\"ips\":[\"300.1.1.1\"]}}", ERR_PARAMETER_INVALID, "block.ips[0]",
               "IP address");
    expect_400("{\"version\":\"3\"}", ERR_PARAMETER_INVALID, "version", "version");

    /* huge: too many rules within the body limit, then over the body limit */
    char *doc = malloc(60 * 1024);
    char *p = doc + sprintf(doc, "{\"rules\":[");
    for (int i = 0; i <= FRAUD_MAX_RULES; i++)
        p += sprintf(p,
                     "%s{\"id\":\"r%d\",\"score\":1,\"if\":{\"feature\":\"amount\",\"op\":"
                     "\"gt\",\"value\":%d}}",
                     i ? "," : "", i, i);
    sprintf(p, "]}");
    ck_assert_uint_lt(strlen(doc), GW_MAX_BODY);
    expect_400(doc, ERR_PARAMETER_INVALID, "rules", "between 0 and 200");
    free(doc);
    size_t big = GW_MAX_BODY + 1024;
    char *huge = malloc(big + 64);
    p = huge + sprintf(huge, "{\"block\":{\"emails\":[");
    while ((size_t)(p - huge) < big)
        p += sprintf(p, "\"someone.with.a.long.name@example.org\",");
    sprintf(p - 1, "]}}");
    h_resp_t r = put_rules(ga, m.sk, huge);
    h_assert_error(&r, 413, ERR_BODY_TOO_LARGE);
    h_resp_free(&r);
    free(huge);

    r = put_rules(ga, m.sk, "{\"rules\": [");
    h_assert_error(&r, 400, ERR_INVALID_JSON);
    h_resp_free(&r);
    r = put_rules(ga, m.sk, "[]");
    h_assert_error(&r, 400, ERR_BODY_NOT_OBJECT);
    h_resp_free(&r);

    /* nothing was stored, and the server kept serving */
    r = h_get(ga, "/v1/fraud/rules", m.sk);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(h_json_int(r.json, "version"), 0);
    h_resp_free(&r);
    ck_assert_int_eq(h_sql_long(db, "SELECT count(*) FROM gateway.fraud_rules"), 0);
}
END_TEST

START_TEST(only_secret_keys_read_or_change_rules)
{
    h_resp_t r = h_get(ga, "/v1/fraud/rules", m.pk);
    h_assert_error(&r, 403, ERR_PERMISSION_DENIED);
    h_resp_free(&r);
    r = put_rules(ga, m.pk, "{}");
    h_assert_error(&r, 403, ERR_PERMISSION_DENIED);
    h_resp_free(&r);
    r = put_rules(ga, m.ak, "{}");
    h_assert_error(&r, 403, ERR_PERMISSION_DENIED);
    h_resp_free(&r);
    r = h_get(ga, "/v1/fraud/rules", NULL);
    h_assert_error(&r, 401, ERR_API_KEY_MISSING);
    h_resp_free(&r);
}
END_TEST

static fraud_features_t order(void)
{
    fraud_features_t f;
    memset(&f, 0, sizeof f);
    f.amount = 2598;
    f.currency = "EUR";
    f.fingerprint = "fp_multi";
    f.email = "ada@example.org";
    f.ip = "192.0.2.44";
    f.card_country = "US";
    f.shipping_country = "US";
    f.has_cvc = true;
    return f;
}

static int64_t cached_version(db_pool_t *pool)
{
    db_conn_t *c = db_pool_acquire(pool);
    fraud_rules_t *r = NULL;
    ck_assert_int_eq(gw_fraud_rules(c, m.id, -1, &r), DB_OK);
    db_pool_release(c);
    int64_t v = fraud_rules_version(r);
    fraud_rules_release(r);
    return v;
}

/* gatewayd B serves GET; this test process plays instance C, holding the
 * rules cache a checkout uses and listening for change notices like any
 * gatewayd. */
START_TEST(a_change_on_one_instance_applies_on_every_instance)
{
    h_gateway_t *gb = h_gateway_start(db, "gw_b", NULL);
    gw_cfg.db_conninfo = h_conninfo(db, "gateway");
    char err[200];
    gw_cfg.db_password = secret_read_file(h_password_file("gateway"), err, sizeof err);
    ck_assert_msg(gw_cfg.db_password != NULL, "%s", err);
    uint64_t g0 = atomic_load(&gw_config_generation);
    ck_assert_int_eq(gw_notify_start(), 0);
    for (int i = 0; i < 500 && atomic_load(&gw_config_generation) == g0; i++)
        usleep(10 * 1000); /* the listener bumps once it is connected */
    char *pw = file_read_all(h_password_file("gateway"), 4096, NULL);
    pw[strcspn(pw, "\n")] = '\0';
    db_pool_config_t pc = {.pool_size = 2,
                           .conninfo = gw_cfg.db_conninfo,
                           .password = pw,
                           .application_name = "instance-c"};
    db_pool_t *pool = db_pool_create(&pc);

    h_resp_t r = h_get(gb, "/v1/fraud/rules", m.sk);
    ck_assert_int_eq(h_json_int(r.json, "version"), 0);
    h_resp_free(&r);
    ck_assert_int_eq(cached_version(pool), 0); /* C caches the default set */
    fraud_features_t f = order();
    fraud_result_t res;
    db_conn_t *c = db_pool_acquire(pool);
    ck_assert_int_eq(gw_fraud_assess(c, m.id, &f, &res), DB_OK);
    db_pool_release(c);
    ck_assert_int_eq(res.decision, FRAUD_APPROVE);

    /* v1 on A: decline everything from this IP */
    r = put_rules(ga, m.sk,
                  "{\"rules\":[{\"id\":\"no_44\",\"action\":\"decline\",\"reason\":\"test\","
                  "\"if\":{\"feature\":\"ip\",\"op\":\"eq\",\"value\":\"192.0.2.44\"}}]}");
    ck_assert_int_eq(r.status, 200);
    h_resp_free(&r);
    /* B answers with it at once */
    r = h_get(gb, "/v1/fraud/rules", m.sk);
    ck_assert_int_eq(h_json_int(r.json, "version"), 1);
    ck_assert_str_eq(h_json_str(r.json, "rules.0.id"), "no_44");
    h_resp_free(&r);
    /* C's cache follows the change notice, without a restart */
    int64_t v = 0;
    for (int i = 0; i < 500 && (v = cached_version(pool)) != 1; i++)
        usleep(10 * 1000);
    ck_assert_int_eq(v, 1);
    c = db_pool_acquire(pool);
    ck_assert_int_eq(gw_fraud_assess(c, m.id, &f, &res), DB_OK);
    db_pool_release(c);
    ck_assert_int_eq(res.decision, FRAUD_DECLINE);
    ck_assert_str_eq(res.reasons[0].rule, "no_44");

    /* no notices any more (a listener that lost its connection, say): the
     * cache alone would keep v1, but the checkout's velocity query carries
     * the stored version, so the next checkout scores with v2 anyway */
    gw_notify_stop();
    uint64_t g1 = atomic_load(&gw_config_generation);
    r = put_rules(gb, m.sk,
                  "{\"rules\":[{\"id\":\"hold_44\",\"action\":\"review\",\"reason\":\"test\","
                  "\"if\":{\"feature\":\"ip\",\"op\":\"eq\",\"value\":\"192.0.2.44\"}}]}");
    ck_assert_int_eq(h_json_int(r.json, "version"), 2);
    h_resp_free(&r);
    ck_assert_int_eq(cached_version(pool), 1);
    c = db_pool_acquire(pool);
    ck_assert_int_eq(gw_fraud_assess(c, m.id, &f, &res), DB_OK);
    db_pool_release(c);
    ck_assert_uint_eq(atomic_load(&gw_config_generation), g1);
    ck_assert_int_eq(f.velocity.rules_version, 2);
    ck_assert_int_eq(res.decision, FRAUD_REVIEW);
    ck_assert_str_eq(res.reasons[0].rule, "hold_44");
    ck_assert_int_eq(cached_version(pool), 2);

    db_pool_destroy(pool);
    free(pw);
    secret_free(gw_cfg.db_password);
    gw_cfg.db_password = NULL;
    free(gw_cfg.db_conninfo);
    gw_cfg.db_conninfo = NULL;
    gw_fraud_shutdown();
    ck_assert_int_eq(h_gateway_stop(gb, SIGTERM), 0); /* a clean exit (leak-free under ASan) */
}
END_TEST

/* fraud.bin_file: a bad table stops start-up naming the key, the file and
 * the line; a valid one is accepted (its lookups are unit-tested; no
 * endpoint exposes them until the checkout). */
START_TEST(bin_file_is_loaded_at_start_up_or_refused)
{
    char *bad = str_printf("%s/bad_bins.csv", h_workdir());
    const char *text = "low,high,brand,country,funding\n4,4,visa,,\n5,5,visa,USA,\n";
    ck_assert_int_eq(file_write_atomic(bad, text, strlen(text), 0644), 0);
    char *ci = h_conninfo(db, "gateway");
    char *pep = str_printf("%s/%s.pepper", h_workdir(), db);
    char *argv[] = {GATEWAYD_BIN,
                    "--db",
                    ci,
                    "--db-password-file",
                    (char *)h_password_file("gateway"),
                    "--api-key-pepper-file",
                    pep,
                    "--port",
                    "0",
                    "--fraud-bin-file",
                    bad,
                    NULL};
    h_proc_t *p = h_proc_start("gw_badbins", argv, NULL);
    int rc = h_proc_stop(p, 0, 10000); /* signal 0: just wait for it to exit */
    ck_assert_int_eq(rc, 2);
    char *out = file_read_all(p->log, 65536, NULL);
    ck_assert_ptr_nonnull(out);
    ck_assert_msg(strstr(out, "fraud.bin_file") && strstr(out, "line 3") &&
                      strstr(out, "bad_bins.csv"),
                  "start-up error: %s", out);
    free(out);
    free(p);

    char *good = str_printf("%s/good_bins.csv", h_workdir());
    text = "# custom\n4,4,visa,,\n424242,424242,visa,NZ,debit\n";
    ck_assert_int_eq(file_write_atomic(good, text, strlen(text), 0644), 0);
    char *extra = str_printf("{\"fraud\": {\"bin_file\": \"%s\"}}", good);
    h_gateway_t *g = h_gateway_start(db, "gw_goodbins", extra);
    h_resp_t r = h_get(g, "/readyz", NULL);
    ck_assert_int_eq(r.status, 200);
    h_resp_free(&r);
    ck_assert_int_eq(h_gateway_stop(g, SIGTERM), 0);
    free(extra);
    free(good);
    free(pep);
    free(ci);
    free(bad);
}
END_TEST

int main(void)
{
    h_init("it_fraud_rules");
    Suite *s = suite_create("fraud_rules_api");
    TCase *tc = h_tcase("rules_api", 300);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, get_returns_the_default_set_until_one_is_stored);
    tcase_add_test(tc, put_replaces_the_document_and_get_returns_it);
    tcase_add_test(tc, an_empty_document_is_answered_in_full);
    tcase_add_test(tc, invalid_documents_are_refused_naming_the_problem);
    tcase_add_test(tc, only_secret_keys_read_or_change_rules);
    tcase_add_test(tc, a_change_on_one_instance_applies_on_every_instance);
    tcase_add_test(tc, bin_file_is_loaded_at_start_up_or_refused);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
