/* Unit: provider and routing documents are validated naming the bad field;
 * plans follow rules on currency, brand, amount and country, priority,
 * filters and open circuits; equal priorities split volume by weight;
 * attempt keys are stable and bounded. */
#include "providers/internal.h"
#include "providers/providers.h"
#include "tests/harness/harness.h"
#include <string.h>

static json_t *doc(const char *text)
{
    json_t *j = json_loads(text, 0, NULL);
    ck_assert_msg(j != NULL, "test JSON invalid: %s", text);
    return j;
}

/* A config as the gateway would build it from a stored provider document. */
static void config(prv_config_t *c, const char *name, const char *type, int priority, int weight,
                   const char *extra)
{
    char text[1024];
    const char *base = !strcmp(type, "stripe")  ? "https://api.stripe.com"
                       : !strcmp(type, "adyen") ? "https://checkout-test.adyen.com/checkout"
                                                : "https://api.sandbox.checkout.com";
    snprintf(text, sizeof text,
             "{\"type\":\"%s\",\"base_url\":\"%s\",\"priority\":%d,"
             "\"weight\":%d%s%s}",
             type, base, priority, weight, extra ? "," : "", extra ? extra : "");
    json_t *j = doc(text);
    jspec_error_t err;
    ck_assert_msg(prv_provider_doc_parse(name, j, c, NULL, &err), "%s: %s %s", text, err.param,
                  err.reason);
    snprintf(c->merchant_id, sizeof c->merchant_id, "mer_unit");
    json_decref(j);
}

START_TEST(provider_doc_valid_fills_config)
{
    json_t *j = doc("{\"type\":\"stripe\",\"base_url\":\"https://api.stripe.com\","
                    "\"credentials\":{\"secret_key\":\"sk_live_abcdefgh\"},\"priority\":2,"
                    "\"weight\":70,\"currencies\":[\"EUR\",\"GBP\"],\"brands\":[\"visa\"],"
                    "\"enabled\":false,\"timeout_ms\":3000}");
    prv_config_t c;
    const json_t *creds = NULL;
    jspec_error_t err;
    ck_assert(prv_provider_doc_parse("stripe-eu", j, &c, &creds, &err));
    ck_assert_str_eq(c.name, "stripe-eu");
    ck_assert_str_eq(c.type, "stripe");
    ck_assert_int_eq(c.priority, 2);
    ck_assert_int_eq(c.weight, 70);
    ck_assert_int_eq(c.ncurrencies, 2);
    ck_assert_str_eq(c.currencies[1], "GBP");
    ck_assert_int_eq(c.nbrands, 1);
    ck_assert(!c.enabled);
    ck_assert_int_eq(c.timeout_ms, 3000);
    ck_assert_int_eq(c.connect_timeout_ms, 2000);
    ck_assert_ptr_eq(creds, json_object_get(j, "credentials"));
    ck_assert_ptr_null(c.creds);
    /* credentials land in guarded memory; the public view never shows them */
    char *blob = json_dumps(creds, JSON_COMPACT);
    ck_assert_int_eq(prv_config_set_credentials(&c, blob, strlen(blob)), 0);
    free(blob);
    ck_assert_ptr_nonnull(c.creds);
    json_t *view = prv_config_json(&c);
    char *text = json_dumps(view, 0);
    ck_assert_ptr_null(strstr(text, "sk_live_abcdefgh"));
    ck_assert_ptr_nonnull(strstr(text, "\"has_credentials\": true"));
    free(text);
    json_decref(view);
    /* a blob of the wrong shape is refused and leaves the old credentials */
    ck_assert_int_eq(prv_config_set_credentials(&c, "{\"api_key\":\"x\"}", 15), -1);
    ck_assert_ptr_nonnull(c.creds);
    prv_config_clear(&c);
    ck_assert_ptr_null(c.creds);
    json_decref(j);
}
END_TEST

static const struct {
    const char *name, *doc, *param;
} bad_providers[] = {
    {"stripe", "{\"base_url\":\"https://a.b\"}", "type"},
    {"stripe", "{\"type\":\"paypal\",\"base_url\":\"https://a.b\"}", "type"},
    {"stripe", "{\"type\":\"stripe\",\"base_url\":\"http://api.stripe.com\"}", "base_url"},
    {"stripe", "{\"type\":\"stripe\",\"base_url\":\"https://u:p@api.stripe.com\"}", "base_url"},
    {"stripe", "{\"type\":\"stripe\",\"base_url\":\"https://api.stripe.com/?x=1\"}", "base_url"},
    {"stripe", "{\"type\":\"stripe\",\"base_url\":\"https://a.b\",\"credentials\":{}}",
     "credentials.secret_key"},
    {"stripe",
     "{\"type\":\"stripe\",\"base_url\":\"https://a.b\",\"credentials\":{\"secret_key\":"
     "\"pk_live_SECRETVALUE\"}}",
     "credentials.secret_key"},
    {"stripe",
     "{\"type\":\"stripe\",\"base_url\":\"https://a.b\",\"credentials\":{\"secret_key\":"
     "\"sk_live_SECRETVALUE\",\"extra\":\"x\"}}",
     "credentials.extra"},
    {"adyen",
     "{\"type\":\"adyen\",\"base_url\":\"https://a.b\",\"credentials\":{\"api_key\":"
     "\"AQESECRETVALUE\"}}",
     "credentials.merchant_account"},
    {"stripe", "{\"type\":\"stripe\",\"base_url\":\"https://a.b\",\"weight\":0}", "weight"},
    {"stripe", "{\"type\":\"stripe\",\"base_url\":\"https://a.b\",\"priority\":\"1\"}", "priority"},
    {"stripe",
     "{\"type\":\"stripe\",\"base_url\":\"https://a.b\",\"currencies\":[\"EUR\",\"eur\"]}",
     "currencies[1]"},
    {"stripe", "{\"type\":\"stripe\",\"base_url\":\"https://a.b\",\"brands\":[\"visaa\"]}",
     "brands[0]"},
    {"stripe", "{\"type\":\"stripe\",\"base_url\":\"https://a.b\",\"timeout_ms\":10}",
     "timeout_ms"},
    {"stripe", "{\"type\":\"stripe\",\"base_url\":\"https://a.b\",\"colour\":\"red\"}", "colour"},
    {"Stripe!", "{\"type\":\"stripe\",\"base_url\":\"https://a.b\"}", "name"},
    /* the card goes to base_url: only the provider's own API domains */
    {"stripe", "{\"type\":\"stripe\",\"base_url\":\"https://a.b\"}", "base_url"},
    {"stripe", "{\"type\":\"stripe\",\"base_url\":\"https://api.stripe.com.evil.example\"}",
     "base_url"},
    {"stripe", "{\"type\":\"stripe\",\"base_url\":\"https://evil-api.stripe.co\"}", "base_url"},
    {"stripe", "{\"type\":\"stripe\",\"base_url\":\"https://checkout-test.adyen.com\"}",
     "base_url"},
    {"adyen", "{\"type\":\"adyen\",\"base_url\":\"https://evil-adyen.com/checkout\"}", "base_url"},
    {"checkout", "{\"type\":\"checkout\",\"base_url\":\"https://mycheckout.com\"}", "base_url"},
    {"checkout", "{\"type\":\"checkout\",\"base_url\":\"https://10.0.0.7\"}", "base_url"},
};

START_TEST(provider_doc_refused_naming_the_field)
{
    for (size_t i = 0; i < PC_ARRAY_LEN(bad_providers); i++) {
        json_t *j = doc(bad_providers[i].doc);
        prv_config_t c;
        jspec_error_t err;
        ck_assert_msg(!prv_provider_doc_parse(bad_providers[i].name, j, &c, NULL, &err),
                      "accepted: %s", bad_providers[i].doc);
        ck_assert_msg(!strcmp(err.param, bad_providers[i].param), "%s: param %s, expected %s",
                      bad_providers[i].doc, err.param, bad_providers[i].param);
        ck_assert(err.reason[0]);
        ck_assert_msg(!strstr(err.reason, "SECRETVALUE"), "secret in reason: %s", err.reason);
        json_decref(j);
    }
    /* plain http to loopback is allowed for the sandboxes */
    json_t *j = doc("{\"type\":\"adyen\",\"base_url\":\"http://127.0.0.1:9999/checkout\"}");
    prv_config_t c;
    jspec_error_t err;
    ck_assert(prv_provider_doc_parse("adyen", j, &c, NULL, &err));
    json_decref(j);
    /* each provider's live and test hosts, any letter case */
    static const char *const good[] = {
        "{\"type\":\"stripe\",\"base_url\":\"https://API.Stripe.com/\"}",
        "{\"type\":\"adyen\",\"base_url\":\"https://checkout-test.adyen.com/checkout\"}",
        "{\"type\":\"adyen\",\"base_url\":"
        "\"https://1797a841fbb37ca7-AdyenDemo-checkout-live.adyenpayments.com/checkout\"}",
        "{\"type\":\"checkout\",\"base_url\":\"https://api.sandbox.checkout.com\"}",
        "{\"type\":\"checkout\",\"base_url\":\"https://abc123.api.checkout.com\"}",
    };
    for (size_t i = 0; i < PC_ARRAY_LEN(good); i++) {
        j = doc(good[i]);
        ck_assert_msg(prv_provider_doc_parse("p", j, &c, NULL, &err), "%s: %s %s", good[i],
                      err.param, err.reason);
        json_decref(j);
    }
}
END_TEST

static const char *const known[] = {"stripe", "adyen", "checkout"};

static const struct {
    const char *doc, *param;
} bad_routing[] = {
    {"{\"rules\":{}}", "rules"},
    {"{\"rules\":[7]}", "rules[0]"},
    {"{\"rules\":[{\"providers\":[\"stripe\"]}]}", "rules[0].if"},
    {"{\"rules\":[{\"if\":{},\"providers\":[\"stripe\"]},{\"if\":{\"currency\":\"eur\"},"
     "\"providers\":[\"stripe\"]}]}",
     "rules[1].if.currency"},
    {"{\"rules\":[{\"if\":{\"amount_gte\":500,\"amount_lt\":500},\"providers\":[\"stripe\"]}]}",
     "rules[0].if.amount_lt"},
    {"{\"rules\":[{\"if\":{\"amount_gte\":-1},\"providers\":[\"stripe\"]}]}",
     "rules[0].if.amount_gte"},
    {"{\"rules\":[{\"if\":{\"brand\":\"bitcoin\"},\"providers\":[\"stripe\"]}]}",
     "rules[0].if.brand"},
    {"{\"rules\":[{\"if\":{\"country\":\"GBR\"},\"providers\":[\"stripe\"]}]}",
     "rules[0].if.country"},
    {"{\"rules\":[{\"if\":{\"colour\":\"red\"},\"providers\":[\"stripe\"]}]}",
     "rules[0].if.colour"},
    {"{\"rules\":[{\"if\":{},\"providers\":[]}]}", "rules[0].providers"},
    {"{\"rules\":[{\"if\":{},\"providers\":[\"stripe\",\"paypal\"]}]}", "rules[0].providers[1]"},
    {"{\"rules\":[{\"if\":{},\"providers\":[\"stripe\",\"stripe\"]}]}", "rules[0].providers[1]"},
    {"{\"default\":[\"adyen\",3]}", "default[1]"},
    {"{\"default\":[]}", "default"},
    {"{\"rules\":[],\"fallback\":[\"stripe\"]}", "fallback"},
};

START_TEST(routing_doc_refused_naming_the_field)
{
    for (size_t i = 0; i < PC_ARRAY_LEN(bad_routing); i++) {
        json_t *j = doc(bad_routing[i].doc);
        jspec_error_t err;
        prv_routing_t *r = prv_routing_parse(j, known, 3, &err);
        ck_assert_msg(r == NULL, "accepted: %s", bad_routing[i].doc);
        ck_assert_msg(!strcmp(err.param, bad_routing[i].param), "%s: param %s, expected %s",
                      bad_routing[i].doc, err.param, bad_routing[i].param);
        json_decref(j);
    }
}
END_TEST

static prv_config_t cfgs[3];

static void three_providers(void)
{
    config(&cfgs[0], "stripe", "stripe", 1, 100, NULL);
    config(&cfgs[1], "adyen", "adyen", 2, 100, NULL);
    config(&cfgs[2], "checkout", "checkout", 3, 100, NULL);
}

static void expect(const prv_routing_t *r, prv_payment_t pay, int rule, const char *order)
{
    prv_plan_t plan;
    prv_plan(cfgs, 3, r, &pay, &plan);
    char got[256] = "";
    for (int i = 0; i < plan.n; i++) {
        strcat(got, i ? " " : "");
        strcat(got, plan.candidates[i]->name);
    }
    ck_assert_msg(!strcmp(got, order) && plan.rule == rule,
                  "%s %lld %s %s: got [%s] rule %d, expected [%s] rule %d", pay.currency,
                  (long long)pay.amount, pay.brand ? pay.brand : "-",
                  pay.country ? pay.country : "-", got, plan.rule, order, rule);
}

START_TEST(rules_choose_by_currency_brand_amount_country)
{
    prv_health_reset();
    three_providers();
    json_t *j = doc("{\"rules\":["
                    "{\"if\":{\"currency\":\"EUR\",\"amount_gte\":100000},"
                    "\"providers\":[\"adyen\",\"stripe\"]},"
                    "{\"if\":{\"brand\":\"amex\"},\"providers\":[\"checkout\",\"stripe\"]},"
                    "{\"if\":{\"country\":\"GB\",\"amount_lt\":5000},\"providers\":[\"checkout\"]},"
                    "{\"if\":{\"currency\":\"USD\",\"amount_gte\":1000,\"amount_lt\":2000},"
                    "\"providers\":[\"adyen\"]}],"
                    "\"default\":[\"stripe\",\"adyen\"]}");
    jspec_error_t err;
    prv_routing_t *r = prv_routing_parse(j, known, 3, &err);
    ck_assert_msg(r != NULL, "%s %s", err.param, err.reason);
    prv_payment_t p = {.merchant_id = "mer_unit", .payment_id = "chk_1", .currency = "EUR"};
    p.amount = 100000, p.brand = "visa", p.country = "FR";
    expect(r, p, 0, "adyen stripe");
    p.amount = 99999; /* just under the EUR threshold: default */
    expect(r, p, -1, "stripe adyen");
    p.brand = "amex";
    expect(r, p, 1, "checkout stripe");
    p.amount = 200000; /* the first matching rule wins */
    expect(r, p, 0, "adyen stripe");
    p.brand = "visa", p.country = "GB", p.amount = 4999;
    expect(r, p, 2, "checkout");
    p.amount = 5000;
    expect(r, p, -1, "stripe adyen");
    p.currency = "USD", p.country = "US", p.amount = 1500;
    expect(r, p, 3, "adyen");
    p.amount = 2000;
    expect(r, p, -1, "stripe adyen");
    p.brand = NULL, p.country = NULL; /* unknown brand/country match no rule on them */
    expect(r, p, -1, "stripe adyen");
    /* no routing document: every enabled provider by priority */
    expect(NULL, p, -2, "stripe adyen checkout");
    prv_routing_free(r);
    json_decref(j);
}
END_TEST

START_TEST(plan_filters_enabled_currency_brand_and_orders_by_priority)
{
    prv_health_reset();
    config(&cfgs[0], "stripe", "stripe", 3, 100, "\"currencies\":[\"EUR\",\"USD\"]");
    config(&cfgs[1], "adyen", "adyen", 1, 100, "\"brands\":[\"visa\",\"mastercard\"]");
    config(&cfgs[2], "checkout", "checkout", 2, 100, "\"enabled\":false");
    prv_payment_t p = {.merchant_id = "mer_unit",
                       .payment_id = "chk_2",
                       .amount = 100,
                       .currency = "EUR",
                       .brand = "visa"};
    expect(NULL, p, -2, "adyen stripe");
    p.brand = "amex";
    expect(NULL, p, -2, "stripe");
    p.currency = "GBP";
    expect(NULL, p, -2, "");
    p.brand = "mastercard";
    expect(NULL, p, -2, "adyen");
    /* a rule naming a filtered-out provider just loses it */
    json_t *j = doc("{\"default\":[\"checkout\",\"stripe\",\"adyen\"]}");
    jspec_error_t err;
    prv_routing_t *r = prv_routing_parse(j, known, 3, &err);
    p.currency = "EUR", p.brand = "visa";
    expect(r, p, -1, "stripe adyen");
    prv_routing_free(r);
    json_decref(j);
}
END_TEST

START_TEST(open_circuit_is_skipped_by_plan)
{
    prv_health_reset();
    three_providers();
    prv_payment_t p = {
        .merchant_id = "mer_unit", .payment_id = "chk_3", .amount = 100, .currency = "EUR"};
    for (int i = 0; i < 5; i++)
        prv_health_record("mer_unit", "stripe", false, 1000);
    ck_assert_int_eq(prv_health_state("mer_unit", "stripe"), PRV_CIRCUIT_OPEN);
    expect(NULL, p, -2, "adyen checkout");
    /* another merchant's stripe is unaffected */
    prv_health_record("mer_other", "adyen", false, 1000);
    expect(NULL, p, -2, "adyen checkout");
}
END_TEST

START_TEST(equal_priorities_split_volume_by_weight_within_5_percent)
{
    prv_health_reset();
    config(&cfgs[0], "stripe", "stripe", 1, 50, NULL);
    config(&cfgs[1], "adyen", "adyen", 1, 30, NULL);
    config(&cfgs[2], "checkout", "checkout", 1, 20, NULL);
    const double want[3] = {0.50, 0.30, 0.20};
    int first[3] = {0}, second_differs = 0;
    for (int i = 0; i < 2000; i++) {
        char id[32];
        snprintf(id, sizeof id, "chk_%06d", i);
        prv_payment_t p = {
            .merchant_id = "mer_unit", .payment_id = id, .amount = 100, .currency = "EUR"};
        prv_plan_t a, b;
        ck_assert_int_eq(prv_plan(cfgs, 3, NULL, &p, &a), 3);
        prv_plan(cfgs, 3, NULL, &p, &b);
        for (int k = 0; k < 3; k++) /* deterministic per checkout id */
            ck_assert_ptr_eq(a.candidates[k], b.candidates[k]);
        first[a.candidates[0] - cfgs]++;
        second_differs += a.candidates[1] != a.candidates[0];
    }
    for (int k = 0; k < 3; k++) {
        double share = first[k] / 2000.0;
        ck_assert_msg(share > want[k] - 0.05 && share < want[k] + 0.05,
                      "%s first in %.3f of payments, weight says %.2f", cfgs[k].name, share,
                      want[k]);
    }
    ck_assert_int_eq(second_differs, 2000);
    /* an open circuit drops out and the others share its volume */
    for (int i = 0; i < 5; i++)
        prv_health_record("mer_unit", "stripe", false, 1000);
    int adyen = 0;
    for (int i = 0; i < 2000; i++) {
        char id[32];
        snprintf(id, sizeof id, "chk_%06d", i);
        prv_payment_t p = {
            .merchant_id = "mer_unit", .payment_id = id, .amount = 100, .currency = "EUR"};
        prv_plan_t a;
        ck_assert_int_eq(prv_plan(cfgs, 3, NULL, &p, &a), 2);
        adyen += a.candidates[0] == &cfgs[1];
    }
    ck_assert_msg(adyen / 2000.0 > 0.55 && adyen / 2000.0 < 0.65, "adyen share %.3f",
                  adyen / 2000.0);
}
END_TEST

START_TEST(attempt_keys_are_stable_distinct_and_bounded)
{
    char a[PRV_KEY_MAX], b[PRV_KEY_MAX], c[PRV_KEY_MAX];
    prv_attempt_key("pay_AbCdEfGhIjKlMnOpQrStUv", 1, a);
    prv_attempt_key("pay_AbCdEfGhIjKlMnOpQrStUv", 1, b);
    prv_attempt_key("pay_AbCdEfGhIjKlMnOpQrStUv", 2, c);
    ck_assert_str_eq(a, "pay_AbCdEfGhIjKlMnOpQrStUv-a1");
    ck_assert_str_eq(a, b);
    ck_assert_str_ne(a, c);
    char long_id[200];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    prv_attempt_key(long_id, 12, a);
    prv_attempt_key(long_id, 12, b);
    ck_assert_str_eq(a, b);
    ck_assert_uint_le(strlen(a), 48);
    prv_attempt_key("chk with spaces/and?odd", 3, c);
    ck_assert_uint_le(strlen(c), 48);
    ck_assert_ptr_null(strchr(c, ' '));
    ck_assert_str_ne(a, c);
}
END_TEST

START_TEST(provider_codes_are_kept_only_when_they_look_like_codes)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"insufficient_funds", "insufficient_funds"},
        {"20051", "20051"},
        {"card_declined:do_not_honor", "card_declined:do_not_honor"},
        {"4242424242424242", "unrecognized"},
        {"card 4242 4242 4242 4242", "unrecognized"},
        {"{\"number\":\"4000000000000002\"}", "unrecognized"},
        {"cvc=123", "unrecognized"},
        {"x", "x"},
        {"", ""},
    };
    for (size_t i = 0; i < PC_ARRAY_LEN(cases); i++) {
        prv_result_t r = {0};
        prv_result_set(&r, PRV_DECLINED, true, "card_declined", cases[i].in);
        ck_assert_msg(!strcmp(r.provider_code, cases[i].out), "%s -> %s", cases[i].in,
                      r.provider_code);
    }
    char big[200];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    prv_result_t r = {0};
    prv_result_set(&r, PRV_DECLINED, true, "card_declined", big);
    ck_assert_str_eq(r.provider_code, "unrecognized");
    prv_result_set(&r, PRV_DECLINED, true, "card_declined", NULL);
    ck_assert_str_eq(r.provider_code, "unrecognized"); /* NULL leaves it as it was */
    prv_code_copy(r.provider_code, sizeof r.provider_code, NULL);
    ck_assert_str_eq(r.provider_code, "");
}
END_TEST

START_TEST(lookups_that_replay_expire_with_the_providers_keys)
{
    prv_config_t stripe, adyen, cko;
    config(&stripe, "s", "stripe", 1, 100, NULL);
    config(&adyen, "a", "adyen", 1, 100, NULL);
    config(&cko, "c", "checkout", 1, 100, NULL);
    const int64_t h = 3600, d = 86400;
    /* Stripe: without the intent's id the lookup replays the create */
    ck_assert(prv_lookup_valid_at(&stripe, "", 22 * h));
    ck_assert(!prv_lookup_valid_at(&stripe, "", 23 * h));
    ck_assert(!prv_lookup_valid_at(&stripe, NULL, 30 * d));
    ck_assert(prv_lookup_valid_at(&stripe, "pi_123", 30 * d)); /* a read */
    /* Adyen's lookup is always a replay of the authorization */
    ck_assert(prv_lookup_valid_at(&adyen, "", 29 * d));
    ck_assert(!prv_lookup_valid_at(&adyen, "8535296650153317", 31 * d));
    /* Checkout.com's is a search */
    ck_assert(prv_lookup_valid_at(&cko, "", 365 * d));
}
END_TEST

int main(void)
{
    h_init("test_providers_routing");
    Suite *s = suite_create("providers_routing");
    TCase *tc = tcase_create("routing");
    tcase_add_test(tc, provider_doc_valid_fills_config);
    tcase_add_test(tc, provider_doc_refused_naming_the_field);
    tcase_add_test(tc, routing_doc_refused_naming_the_field);
    tcase_add_test(tc, rules_choose_by_currency_brand_amount_country);
    tcase_add_test(tc, plan_filters_enabled_currency_brand_and_orders_by_priority);
    tcase_add_test(tc, open_circuit_is_skipped_by_plan);
    tcase_add_test(tc, equal_priorities_split_volume_by_weight_within_5_percent);
    tcase_add_test(tc, attempt_keys_are_stable_distinct_and_bounded);
    tcase_add_test(tc, provider_codes_are_kept_only_when_they_look_like_codes);
    tcase_add_test(tc, lookups_that_replay_expire_with_the_providers_keys);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
