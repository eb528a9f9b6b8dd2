/* Integration: POST /v1/checkouts is rate limited per API key and per
 * client IP (BRIEF step 1) before any other work: a limited request gets
 * 429 rate_limit_error/rate_limited with Retry-After, creates no checkout
 * and charges nothing; a replay counts like any request; secret-key calls
 * (from the merchant's servers, one address for every shopper) are limited
 * per key only. Client IPs come from X-Forwarded-For (trusted here). */
#include "tests/harness/stack.h"
#include <stdlib.h>
#include <string.h>

static h_stack_t *st;

static void setup(void)
{
    h_stack_opts_t o = {
        .no_webhook = true,
        .gateway_json = "{\"listen\":{\"trust_forwarded_for\":true},\"rate_limit\":{\"checkouts\":"
                        "{\"per_ip_burst\":3,\"per_ip_per_minute\":1,\"per_key_burst\":6,"
                        "\"per_key_per_minute\":1}}}",
    };
    st = h_stack_start(&o);
}

static void teardown(void)
{
    h_stack_stop(st);
}

typedef struct {
    long status;
    char retry_after[16];
} outcome_t;

/* A checkout with `key` from `ip` under Idempotency-Key `idem`. */
static outcome_t checkout_from(const char *key, const char *ip, const char *idem)
{
    char *tok = h_stack_token(st, "4242424242424242");
    char *body = h_stack_checkout_body(tok, "SKU-RED-MUG", 1, NULL);
    char url[256], ih[320], xff[96];
    snprintf(url, sizeof url, "%s/v1/checkouts", st->gw[0]->url);
    snprintf(ih, sizeof ih, "Idempotency-Key: %s", idem);
    snprintf(xff, sizeof xff, "X-Forwarded-For: %s", ip);
    const char *headers[] = {ih, xff, NULL};
    h_resp_t r = h_http("POST", url, key, body, headers);
    outcome_t o = {.status = r.status};
    if (r.status == 429) {
        ck_assert_str_eq(h_json_str(r.json, "error.type"), "rate_limit_error");
        ck_assert_str_eq(h_json_str(r.json, "error.code"), "rate_limited");
        char *ra = h_resp_header(&r, "Retry-After");
        ck_assert_ptr_nonnull(ra);
        snprintf(o.retry_after, sizeof o.retry_after, "%s", ra);
        free(ra);
    }
    h_resp_free(&r);
    free(body);
    free(tok);
    return o;
}

static long checkouts(void)
{
    return h_sql_long(st->db, "SELECT count(*) FROM gateway.checkouts");
}

START_TEST(one_ip_gets_its_burst_then_429_with_nothing_created_or_charged)
{
    long c0 = checkouts(), ch0 = h_stack_charges(st, NULL);
    ck_assert_int_eq(checkout_from(st->m.pk, "203.0.113.1", "ip-a-1").status, 200);
    ck_assert_int_eq(checkout_from(st->m.pk, "203.0.113.1", "ip-a-2").status, 200);
    ck_assert_int_eq(checkout_from(st->m.pk, "203.0.113.1", "ip-a-3").status, 200);
    outcome_t o = checkout_from(st->m.pk, "203.0.113.1", "ip-a-4");
    ck_assert_int_eq(o.status, 429);
    ck_assert_int_ge(atoi(o.retry_after), 1);
    ck_assert_int_le(atoi(o.retry_after), 60);
    /* a replay of a finished checkout is a request like any other */
    ck_assert_int_eq(checkout_from(st->m.pk, "203.0.113.1", "ip-a-1").status, 429);
    ck_assert_int_eq(checkouts() - c0, 3);
    ck_assert_int_eq(h_stack_charges(st, NULL) - ch0, 3);
    /* the refused key was never claimed: it works once the source may send */
    ck_assert_int_eq(h_sql_long(st->db, "SELECT count(*) FROM gateway.idempotency_keys "
                                        "WHERE key = 'ip-a-4'"),
                     0);
}
END_TEST

START_TEST(secret_key_calls_are_not_limited_by_ip)
{
    /* 203.0.113.1 has spent its burst in the test before */
    ck_assert_int_eq(checkout_from(st->m.pk, "203.0.113.1", "sk-a-0").status, 429);
    ck_assert_int_eq(checkout_from(st->m.sk, "203.0.113.1", "sk-a-1").status, 200);
    ck_assert_int_eq(checkout_from(st->m.sk, "203.0.113.1", "sk-a-2").status, 200);
    ck_assert_int_eq(checkout_from(st->m.sk, "203.0.113.1", "sk-a-3").status, 200);
    ck_assert_int_eq(checkout_from(st->m.sk, "203.0.113.1", "sk-a-4").status, 200);
}
END_TEST

START_TEST(a_publishable_key_gets_its_burst_across_ips)
{
    /* the pk's bucket (6) paid for the three checkouts of 203.0.113.1 (the
     * refused ones were refunded); three more from other shoppers, then the
     * key itself is out */
    ck_assert_int_eq(checkout_from(st->m.pk, "198.51.100.1", "key-1").status, 200);
    ck_assert_int_eq(checkout_from(st->m.pk, "198.51.100.2", "key-2").status, 200);
    ck_assert_int_eq(checkout_from(st->m.pk, "198.51.100.3", "key-3").status, 200);
    ck_assert_int_eq(checkout_from(st->m.pk, "198.51.100.4", "key-4").status, 429);
    h_resp_t r = h_get(st->gw[0], "/metrics", NULL);
    ck_assert_ptr_nonnull(strstr(r.body, "portcullis_http_requests_total{method=\"POST\","
                                         "route=\"/v1/checkouts\",status=\"429\"} 4"));
    h_resp_free(&r);
}
END_TEST

int main(void)
{
    h_init("it_checkout_ratelimit");
    Suite *s = suite_create("checkout_ratelimit");
    TCase *tc = h_tcase("limits", 300);
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_add_test(tc, one_ip_gets_its_burst_then_429_with_nothing_created_or_charged);
    tcase_add_test(tc, secret_key_calls_are_not_limited_by_ip);
    tcase_add_test(tc, a_publishable_key_gets_its_burst_across_ips);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
