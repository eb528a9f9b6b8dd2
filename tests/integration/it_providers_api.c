/* Integration: the merchant's provider and routing configuration over HTTP.
 * Bad documents are refused naming the field; credentials are sealed in the
 * vault and never appear in a response, a log line or the gateway schema;
 * routing rules choose the provider a checkout goes to; health is live. */
#include "tests/harness/stack.h"
#include <string.h>
#include <unistd.h>

#define SECRET "sk_test_VERYSECRETvaluethatmustneverleak42"

static h_stack_t *st;

static void setup(void)
{
    st = h_stack_start(NULL);
}

static void teardown(void)
{
    h_stack_stop(st);
}

static h_resp_t put(const char *path, const char *body)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", st->gw[0]->url, path);
    return h_http("PUT", url, st->m.sk, body, NULL);
}

START_TEST(bad_provider_documents_name_the_field)
{
    static const struct {
        const char *doc, *param;
    } bad[] = {
        {"{\"type\":\"paypal\",\"base_url\":\"https://x.example\",\"credentials\":{}}", "type"},
        {"{\"type\":\"stripe\",\"credentials\":{\"secret_key\":\"sk_test_12345678\"}}", "base_url"},
        {"{\"type\":\"stripe\",\"base_url\":\"http://api.example.com\",\"credentials\":"
         "{\"secret_key\":\"sk_test_12345678\"}}",
         "base_url"},
        {"{\"type\":\"stripe\",\"base_url\":\"https://api.stripe.com\",\"credentials\":{}}",
         "credentials.secret_key"},
        {"{\"type\":\"stripe\",\"base_url\":\"https://api.stripe.com\",\"credentials\":"
         "{\"secret_key\":\"sk_test_12345678\"},\"currencies\":[\"EUR\",\"euro\"]}",
         "currencies[1]"},
        {"{\"type\":\"stripe\",\"base_url\":\"https://api.stripe.com\",\"credentials\":"
         "{\"secret_key\":\"sk_test_12345678\"},\"priority\":0}",
         "priority"},
        /* the merchant's own server would receive every PAN and CVC */
        {"{\"type\":\"stripe\",\"base_url\":\"https://cards.evil.example\",\"credentials\":"
         "{\"secret_key\":\"sk_test_12345678\"}}",
         "base_url"},
    };
    for (size_t i = 0; i < PC_ARRAY_LEN(bad); i++) {
        h_resp_t r = put("/v1/providers/bad", bad[i].doc);
        ck_assert_msg(r.status == 400, "%s → %ld %s", bad[i].doc, r.status, r.body);
        ck_assert_msg(h_json_str(r.json, "error.param") &&
                          !strcmp(h_json_str(r.json, "error.param"), bad[i].param),
                      "%s → %s", bad[i].doc, r.body);
        ck_assert_ptr_null(strstr(r.body, "sk_test_12345678"));
        h_resp_free(&r);
    }
    /* a new provider needs credentials */
    h_resp_t r = put("/v1/providers/nocreds",
                     "{\"type\":\"stripe\",\"base_url\":\"https://api.stripe.com\"}");
    h_assert_error(&r, 400, ERR_PARAMETER_MISSING);
    ck_assert_str_eq(h_json_str(r.json, "error.param"), "credentials");
    h_resp_free(&r);
    r = put("/v1/providers/Bad%20Name", "{\"type\":\"stripe\"}");
    ck_assert_int_eq(r.status, 400);
    h_resp_free(&r);
}
END_TEST

START_TEST(credentials_never_leave_the_vault)
{
    char doc[512];
    snprintf(doc, sizeof doc,
             "{\"type\":\"stripe\",\"base_url\":\"%s\",\"credentials\":{\"secret_key\":\"" SECRET
             "\"},\"priority\":5}",
             st->stripe->url);
    h_resp_t r = put("/v1/providers/stripe-secret", doc);
    ck_assert_msg(r.status == 201, "%ld %s", r.status, r.body);
    ck_assert_ptr_null(strstr(r.body, SECRET));
    ck_assert_ptr_null(json_object_get(r.json, "credentials"));
    h_resp_free(&r);
    r = h_get(st->gw[0], "/v1/providers", st->m.sk);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_null(strstr(r.body, SECRET));
    ck_assert_ptr_nonnull(strstr(r.body, "stripe-secret"));
    ck_assert_ptr_nonnull(h_json_str(r.json, "data.0.health.circuit"));
    h_resp_free(&r);
    /* not in the gateway schema, not in the audit log */
    ck_assert_int_eq(h_sql_long(st->db, "SELECT count(*) FROM gateway.providers p WHERE p::text "
                                        "LIKE '%%VERYSECRET%%'"),
                     0);
    ck_assert_int_eq(h_sql_long(st->db, "SELECT count(*) FROM audit.events a WHERE a::text LIKE "
                                        "'%%VERYSECRET%%'"),
                     0);
    ck_assert_int_eq(h_sql_long(st->db, "SELECT count(*) FROM audit.events WHERE action = "
                                        "'provider.create' AND object = 'stripe-secret'"),
                     1);
    /* and not in gatewayd's log */
    char *log = file_read_all(st->gw[0]->proc->log, 64 << 20, NULL);
    char logf[1100];
    snprintf(logf, sizeof logf, "%s/gatewayd-0.log", h_workdir());
    char *jlog = file_read_all(logf, 64 << 20, NULL);
    ck_assert_ptr_null(log ? strstr(log, "VERYSECRET") : NULL);
    ck_assert_ptr_nonnull(jlog);
    ck_assert_ptr_null(strstr(jlog, "VERYSECRET"));
    free(log);
    free(jlog);
}
END_TEST

START_TEST(routing_rules_choose_the_provider)
{
    /* none stored yet: what GET shows can be PUT back as it is */
    h_resp_t r = h_get(st->gw[0], "/v1/routing", st->m.sk);
    ck_assert_int_eq(r.status, 200);
    char *none = json_dumps(json_object_get(r.json, "routing"), JSON_COMPACT);
    h_resp_free(&r);
    r = put("/v1/routing", none);
    ck_assert_msg(r.status == 200, "PUT %s: %ld %s", none, r.status, r.body);
    h_resp_free(&r);
    free(none);
    r = put("/v1/routing", "{\"rules\":[{\"if\":{\"currency\":\"EUR\"},\"providers\":"
                           "[\"nosuch\"]}],\"default\":[\"stripe\"]}");
    h_assert_error(&r, 400, ERR_PARAMETER_INVALID);
    ck_assert_str_eq(h_json_str(r.json, "error.param"), "rules[0].providers[0]");
    h_resp_free(&r);
    r = put("/v1/routing", "{\"rules\":[{\"if\":{\"currency\":\"EUR\",\"amount_gte\":100000},"
                           "\"providers\":[\"adyen\",\"stripe\"]}],\"default\":[\"stripe\",\"adyen\"]}");
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    h_resp_free(&r);
    r = h_get(st->gw[0], "/v1/routing", st->m.sk);
    ck_assert_int_eq(h_json_int(r.json, "routing.rules.0.if.amount_gte"), 100000);
    h_resp_free(&r);

    char *tok = h_stack_token(st, "4242424242424242");
    char *big = h_stack_checkout_body(tok, "SKU-WATCH", 1, NULL);
    char *small = h_stack_checkout_body(tok, "SKU-RED-MUG", 1, NULL);
    r = h_stack_checkout(st, 0, "route-big", big);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_str_eq(h_json_str(r.json, "payment.provider"), "adyen");
    h_resp_free(&r);
    r = h_stack_checkout(st, 0, "route-small", small);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_str_eq(h_json_str(r.json, "payment.provider"), "stripe");
    h_resp_free(&r);
    free(big);
    free(small);

    /* disabling stripe (credentials kept) sends small payments to adyen */
    char doc[256];
    snprintf(doc, sizeof doc, "{\"type\":\"stripe\",\"base_url\":\"%s\",\"enabled\":false}",
             st->stripe->url);
    r = put("/v1/providers/stripe", doc);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    h_resp_free(&r);
    small = h_stack_checkout_body(tok, "SKU-RED-MUG", 1, NULL);
    r = h_stack_checkout(st, 0, "route-small-2", small);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_str_eq(h_json_str(r.json, "payment.provider"), "adyen");
    h_resp_free(&r);
    free(small);
    free(tok);

    /* provider health is in /metrics too */
    r = h_get(st->gw[0], "/metrics", NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "portcullis_provider_circuit_state"));
    ck_assert_ptr_nonnull(strstr(r.body, "provider=\"adyen\""));
    ck_assert_ptr_nonnull(strstr(r.body, "portcullis_provider_calls_total"));
    h_resp_free(&r);
}
END_TEST

int main(void)
{
    h_init("it_providers_api");
    Suite *s = suite_create("providers_api");
    TCase *tc = h_tcase("providers_api", 600);
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_add_test(tc, bad_provider_documents_name_the_field);
    tcase_add_test(tc, credentials_never_leave_the_vault);
    tcase_add_test(tc, routing_rules_choose_the_provider);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
