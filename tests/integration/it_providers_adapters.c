/* Integration: each adapter (Stripe, Adyen, Checkout.com) against its
 * sandbox over the real wire format: every test card, capture, partial
 * capture, void, refund, partial refund, lookup, idempotency, and a wrong
 * key. Each test runs once per adapter (Check loop index). */
#include "it_providers_common.h"
#include <sodium.h>
#include <string.h>

static const char *const types[] = {"stripe", "adyen", "checkout"};
static h_sandbox_t *sbx;
static prv_config_t cfg;

static void start(int i)
{
    sbx = t_sandbox(types[i], types[i]);
    t_config(&cfg, types[i], types[i], sbx->url, 1, 5000);
}

static void stop(void)
{
    prv_config_clear(&cfg);
    h_sandbox_stop(sbx);
    httpc_thread_cleanup();
}

static prv_result_t authorize(const char *pan, const char *key, int64_t amount, bool capture)
{
    prv_card_t *card = t_card(pan);
    prv_payment_t pay = t_payment(key, amount, capture);
    prv_result_t r = prv_authorize(&cfg, &pay, card, key);
    prv_card_free(card);
    return r;
}

static const struct {
    const char *pan;
    prv_outcome_t outcome;
    bool hard;
    const char *reason;
} cards[] = {
    {"4242424242424242", PRV_AUTHORIZED, false, ""},
    {"5555555555554444", PRV_AUTHORIZED, false, ""},
    {"378282246310005", PRV_AUTHORIZED, false, ""},
    {"4000000000000002", PRV_DECLINED, false, "card_declined"},
    {"4000000000009995", PRV_DECLINED, false, "insufficient_funds"},
    {"4000000000009979", PRV_DECLINED, true, "stolen_card"},
    {"4000000000000069", PRV_DECLINED, true, "expired_card"},
    {"4000000000000127", PRV_DECLINED, false, "incorrect_cvc"},
    {"4000000000000119", PRV_UNAVAILABLE, false, "processing_error"},
};

START_TEST(test_cards_map_to_normalised_outcomes)
{
    start(_i);
    for (size_t c = 0; c < PC_ARRAY_LEN(cards); c++) {
        char key[64];
        snprintf(key, sizeof key, "card%zu-a1", c);
        prv_result_t r = authorize(cards[c].pan, key, 1299, false);
        ck_assert_msg(r.outcome == cards[c].outcome && r.hard == cards[c].hard &&
                          !strcmp(r.reason, cards[c].reason),
                      "%s card %s: got %s/%s hard=%d code=%s", types[_i], cards[c].pan,
                      prv_outcome_str(r.outcome), r.reason, r.hard, r.provider_code);
        ck_assert_msg(r.provider_ref[0], "%s card %s: no provider reference", types[_i],
                      cards[c].pan);
        if (r.outcome == PRV_AUTHORIZED)
            ck_assert_int_eq(r.amount, 1299);
        /* one ledger entry per key, declines included, last4 only */
        json_t *e = t_charge_by_key(sbx, key);
        ck_assert_msg(e != NULL, "%s: no ledger entry for %s", types[_i], cards[c].pan);
        const char *st = json_string_value(json_object_get(e, "status"));
        ck_assert_str_eq(st, cards[c].outcome == PRV_AUTHORIZED ? "authorized" : "declined");
        ck_assert_str_eq(json_string_value(json_object_get(e, "last4")),
                         cards[c].pan + strlen(cards[c].pan) - 4);
        ck_assert_str_eq(json_string_value(json_object_get(e, "id")), r.provider_ref);
        json_decref(e);
    }
    ck_assert_int_eq(t_charges(sbx, NULL), (int)PC_ARRAY_LEN(cards));
    json_t *all = h_sandbox_charges(sbx);
    char *dump = json_dumps(all, 0);
    for (size_t c = 0; c < PC_ARRAY_LEN(cards); c++)
        ck_assert_msg(!strstr(dump, cards[c].pan), "full PAN in the ledger");
    free(dump);
    json_decref(all);
    stop();
}
END_TEST

START_TEST(capture_partial_capture_void_refund_partial_refund)
{
    start(_i);
    /* partial capture, then two partial refunds that add up, then one too many */
    prv_result_t a = authorize("4242424242424242", "mod1-a1", 10000, false);
    ck_assert_int_eq(a.outcome, PRV_AUTHORIZED);
    prv_result_t r = prv_capture(&cfg, a.provider_ref, 6000, "EUR", "mod1-cap");
    ck_assert_msg(r.outcome == PRV_CAPTURED, "%s capture: %s %s", types[_i],
                  prv_outcome_str(r.outcome), r.reason);
    ck_assert_int_eq(r.amount, 6000);
    r = prv_capture(&cfg, a.provider_ref, 6000, "EUR", "mod1-cap"); /* a retry: replayed */
    ck_assert_int_eq(r.outcome, PRV_CAPTURED);
    json_t *e = t_charge_by_key(sbx, "mod1-a1");
    ck_assert_str_eq(json_string_value(json_object_get(e, "status")), "captured");
    ck_assert_int_eq(json_integer_value(json_object_get(e, "captured")), 6000);
    json_decref(e);
    r = prv_refund(&cfg, a.provider_ref, 2500, "EUR", "mod1-ref1");
    ck_assert_msg(r.outcome == PRV_REFUNDED, "%s refund: %s %s", types[_i],
                  prv_outcome_str(r.outcome), r.reason);
    r = prv_refund(&cfg, a.provider_ref, 3500, "EUR", "mod1-ref2");
    ck_assert_int_eq(r.outcome, PRV_REFUNDED);
    e = t_charge_by_key(sbx, "mod1-a1");
    ck_assert_str_eq(json_string_value(json_object_get(e, "status")), "refunded");
    ck_assert_int_eq(json_integer_value(json_object_get(e, "refunded")), 6000);
    json_decref(e);
    r = prv_refund(&cfg, a.provider_ref, 1, "EUR", "mod1-ref3");
    ck_assert_msg(r.outcome == PRV_DECLINED && r.hard, "%s over-refund: %s", types[_i],
                  prv_outcome_str(r.outcome));

    /* void releases an authorization; nothing can be captured after it */
    a = authorize("4242424242424242", "mod2-a1", 5000, false);
    r = prv_void(&cfg, a.provider_ref, "mod2-void");
    ck_assert_msg(r.outcome == PRV_VOIDED, "%s void: %s %s", types[_i], prv_outcome_str(r.outcome),
                  r.reason);
    e = t_charge_by_key(sbx, "mod2-a1");
    ck_assert_str_eq(json_string_value(json_object_get(e, "status")), "voided");
    json_decref(e);
    r = prv_capture(&cfg, a.provider_ref, 5000, "EUR", "mod2-cap");
    ck_assert_int_eq(r.outcome, PRV_DECLINED);

    /* more than authorized is refused; the full amount is captured */
    a = authorize("5555555555554444", "mod3-a1", 10000, false);
    r = prv_capture(&cfg, a.provider_ref, 20000, "EUR", "mod3-cap-big");
    ck_assert_msg(r.outcome == PRV_DECLINED && !strcmp(r.reason, "amount_too_large"),
                  "%s over-capture: %s %s", types[_i], prv_outcome_str(r.outcome), r.reason);
    r = prv_capture(&cfg, a.provider_ref, 10000, "EUR", "mod3-cap");
    ck_assert_int_eq(r.outcome, PRV_CAPTURED);
    r = prv_refund(&cfg, a.provider_ref, 10000, "EUR", "mod3-ref");
    ck_assert_int_eq(r.outcome, PRV_REFUNDED);

    /* authorize-and-capture in one call */
    a = authorize("378282246310005", "mod4-a1", 777, true);
    ck_assert_int_eq(a.outcome, PRV_CAPTURED);
    e = t_charge_by_key(sbx, "mod4-a1");
    ck_assert_str_eq(json_string_value(json_object_get(e, "status")), "captured");
    ck_assert_int_eq(json_integer_value(json_object_get(e, "captured")), 777);
    json_decref(e);
    stop();
}
END_TEST

START_TEST(lookup_by_idempotency_key_finds_the_attempt)
{
    start(_i);
    prv_card_t *card = t_card("4242424242424242");
    prv_payment_t pay = t_payment("look1", 4200, false);
    prv_result_t a = prv_authorize(&cfg, &pay, card, "look1-a1");
    ck_assert_int_eq(a.outcome, PRV_AUTHORIZED);
    /* without the provider reference: by key alone */
    prv_result_t l = prv_lookup(&cfg, &pay, "look1-a1", "", card);
    ck_assert_msg(l.outcome == PRV_AUTHORIZED, "%s lookup: %s %s", types[_i],
                  prv_outcome_str(l.outcome), l.reason);
    ck_assert_str_eq(l.provider_ref, a.provider_ref);
    l = prv_lookup(&cfg, &pay, "look1-a1", a.provider_ref, card);
    ck_assert_int_eq(l.outcome, PRV_AUTHORIZED);
    prv_result_t c = prv_capture(&cfg, a.provider_ref, 4200, "EUR", "look1-cap");
    ck_assert_int_eq(c.outcome, PRV_CAPTURED);
    l = prv_lookup(&cfg, &pay, "look1-a1", a.provider_ref, card);
    /* Adyen's replay returns the authorization's own first answer; the
     * read APIs of the others show the capture since */
    ck_assert_int_eq(l.outcome, !strcmp(types[_i], "adyen") ? PRV_AUTHORIZED : PRV_CAPTURED);
    prv_card_free(card);

    /* a declined attempt looks up as the same decline */
    card = t_card("4000000000009995");
    pay = t_payment("look2", 4200, false);
    a = prv_authorize(&cfg, &pay, card, "look2-a1");
    l = prv_lookup(&cfg, &pay, "look2-a1", "", card);
    ck_assert_msg(l.outcome == PRV_DECLINED && !strcmp(l.reason, "insufficient_funds"),
                  "%s declined lookup: %s %s", types[_i], prv_outcome_str(l.outcome), l.reason);
    prv_card_free(card);

    /* an attempt that never reached the provider */
    pay = t_payment("look3", 4200, false);
    int before = t_charges(sbx, NULL);
    l = prv_lookup(&cfg, &pay, "look3-a1", "", NULL);
    if (!strcmp(types[_i], "adyen")) {
        /* no read API: only a replay with the card can settle it */
        ck_assert_int_eq(l.outcome, PRV_UNKNOWN);
        ck_assert_str_eq(l.reason, "lookup_needs_card");
    } else {
        ck_assert_msg(l.outcome == PRV_UNAVAILABLE && !strcmp(l.reason, "not_found"),
                      "%s lookup of nothing: %s %s", types[_i], prv_outcome_str(l.outcome),
                      l.reason);
    }
    ck_assert_int_eq(t_charges(sbx, NULL), before);
    stop();
}
END_TEST

START_TEST(same_key_same_result_no_second_charge)
{
    start(_i);
    prv_result_t a = authorize("4242424242424242", "idem1-a1", 1500, false);
    prv_result_t b = authorize("4242424242424242", "idem1-a1", 1500, false);
    ck_assert_int_eq(a.outcome, PRV_AUTHORIZED);
    ck_assert_int_eq(b.outcome, PRV_AUTHORIZED);
    ck_assert_str_eq(a.provider_ref, b.provider_ref);
    ck_assert_int_eq(t_charges(sbx, NULL), 1);
    /* the same key with other parameters must never be taken as "not charged" */
    prv_result_t c = authorize("4242424242424242", "idem1-a1", 9999, false);
    ck_assert_msg(c.outcome == PRV_UNKNOWN, "%s key reuse: %s %s", types[_i],
                  prv_outcome_str(c.outcome), c.reason);
    ck_assert_int_eq(t_charges(sbx, NULL), 1);
    stop();
}
END_TEST

START_TEST(stripe_key_reused_with_other_parameters_is_a_400_idempotency_error)
{
    h_sandbox_t *s = t_sandbox("stripe", "stripe-raw");
    char url[256];
    snprintf(url, sizeof url, "%s/v1/payment_intents", s->url);
    const char *h1[] = {"Authorization: Bearer " T_STRIPE_KEY, "Idempotency-Key: raw-1",
                        "Content-Type: application/x-www-form-urlencoded", NULL};
    h_resp_t r = h_http("POST", url, NULL, "amount=100&currency=eur", h1);
    ck_assert_int_eq(r.status, 200);
    char *id = strdup(h_json_str(r.json, "id"));
    h_resp_free(&r);
    r = h_http("POST", url, NULL, "amount=100&currency=eur", h1);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(h_json_str(r.json, "id"), id); /* same key, same result */
    h_resp_free(&r);
    r = h_http("POST", url, NULL, "amount=200&currency=eur", h1);
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(h_json_str(r.json, "error.type"), "idempotency_error");
    h_resp_free(&r);
    free(id);
    h_sandbox_stop(s);
}
END_TEST

/* Stripe's own form: curl -u sk_test_...: (HTTP Basic, the key as user name,
 * no password); a wrong key that way is still refused */
START_TEST(stripe_takes_the_key_as_basic_auth_too)
{
    h_sandbox_t *s = t_sandbox("stripe", "stripe-basic");
    char url[256], good[256], bad[256], b64[128];
    snprintf(url, sizeof url, "%s/v1/payment_intents", s->url);
    sodium_bin2base64(b64, sizeof b64, (const unsigned char *)T_STRIPE_KEY ":",
                      strlen(T_STRIPE_KEY ":"), sodium_base64_VARIANT_ORIGINAL);
    snprintf(good, sizeof good, "Authorization: Basic %s", b64);
    sodium_bin2base64(b64, sizeof b64, (const unsigned char *)"sk_test_wrong:", 14,
                      sodium_base64_VARIANT_ORIGINAL);
    snprintf(bad, sizeof bad, "Authorization: Basic %s", b64);
    const char *ct = "Content-Type: application/x-www-form-urlencoded";
    const char *h1[] = {good, ct, NULL}, *h2[] = {bad, ct, NULL};
    h_resp_t r = h_http("POST", url, NULL, "amount=100&currency=eur", h1);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert(!strncmp(h_json_str(r.json, "id"), "pi_", 3));
    h_resp_free(&r);
    r = h_http("POST", url, NULL, "amount=100&currency=eur", h2);
    ck_assert_int_eq(r.status, 401);
    h_resp_free(&r);
    h_sandbox_stop(s);
}
END_TEST

START_TEST(wrong_credentials_are_unavailable_and_charge_nothing)
{
    sbx = t_sandbox(types[_i], types[_i]);
    t_config(&cfg, types[_i], types[_i], sbx->url, 1, 5000);
    /* same type, another key */
    const char *other = !strcmp(types[_i], "adyen")
                            ? "{\"api_key\":\"AQEwrongwrongwrong\",\"merchant_account\":\"X\"}"
                            : "{\"secret_key\":\"sk_test_wrongwrongwrong\"}";
    ck_assert_int_eq(prv_config_set_credentials(&cfg, other, strlen(other)), 0);
    prv_result_t r = authorize("4242424242424242", "auth1-a1", 100, false);
    ck_assert_msg(r.outcome == PRV_UNAVAILABLE && !strcmp(r.reason, "authentication_failed"),
                  "%s: %s %s", types[_i], prv_outcome_str(r.outcome), r.reason);
    ck_assert_int_eq(t_charges(sbx, NULL), 0);
    stop();
}
END_TEST

int main(void)
{
    h_init("it_providers_adapters");
    Suite *s = suite_create("providers_adapters");
    TCase *tc = h_tcase("adapters", 120);
    tcase_add_loop_test(tc, test_cards_map_to_normalised_outcomes, 0, 3);
    tcase_add_loop_test(tc, capture_partial_capture_void_refund_partial_refund, 0, 3);
    tcase_add_loop_test(tc, lookup_by_idempotency_key_finds_the_attempt, 0, 3);
    tcase_add_loop_test(tc, same_key_same_result_no_second_charge, 0, 3);
    tcase_add_loop_test(tc, wrong_credentials_are_unavailable_and_charge_nothing, 0, 3);
    tcase_add_test(tc, stripe_key_reused_with_other_parameters_is_a_400_idempotency_error);
    tcase_add_test(tc, stripe_takes_the_key_as_basic_auth_too);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
