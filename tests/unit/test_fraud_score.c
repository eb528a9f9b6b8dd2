/* Unit: fraud_score. Each default rule fires on its case and not on a clean
 * checkout (nor just below its threshold); scores map to decisions through
 * the thresholds; actions force decisions; allow lists beat rules and block
 * lists beat allow lists; reasons say what tripped them and never echo a
 * card number. */
#include "fraud/fraud.h"
#include "tests/harness/harness.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static fraud_features_t clean(void)
{
    fraud_features_t f;
    memset(&f, 0, sizeof f);
    f.amount = 2598;
    f.currency = "EUR";
    f.card_brand = "visa";
    f.bin = "424242";
    f.card_country = "US";
    f.card_funding = "credit";
    f.fingerprint = "fp_Xk3vP9qLmN2wR7tYcleanA";
    f.email = "ada@example.org";
    f.ip = "203.0.113.7";
    f.edge_country = "US";
    f.shipping_country = "US";
    f.device_id = "dev_clean";
    f.has_cvc = true;
    f.cart_total = 2598;
    f.cart_max_sku_quantity = 2;
    f.cart_distinct_skus = 1;
    for (int k = 0; k < FRAUD_NKEYS; k++) {
        f.velocity.known[k] = true;
        /* an ordinary returning customer: one earlier purchase today */
        f.velocity.c[k][FRAUD_WIN_24H].attempts = 1;
        f.velocity.c[k][FRAUD_WIN_24H].amount_sum = 1299;
        if (k != FRAUD_KEY_CARD)
            f.velocity.c[k][FRAUD_WIN_24H].distinct_cards = 1;
    }
    f.velocity.merchant_avg_amount = 3000;
    f.velocity.merchant_usual_basket = 2800;
    f.velocity.merchant_samples = 500;
    return f;
}

/* Sets one counter in a window and every longer one (counts only grow with
 * the window). */
static void vel(fraud_features_t *f, fraud_key_t k, fraud_window_t from, int metric, int64_t v)
{
    for (int w = from; w < FRAUD_NWINDOWS; w++) {
        fraud_counts_t *c = &f->velocity.c[k][w];
        int64_t *m[] = {&c->attempts, &c->declines, &c->token_failures, &c->distinct_cards,
                        &c->amount_sum};
        *m[metric] = v;
    }
}
enum { ATT, DEC, TOK, DIST, SUM };

typedef void (*mut_fn)(fraud_features_t *f);

#define MUT(name, body)                                                                            \
    static void name(fraud_features_t *f)                                                          \
    {                                                                                              \
        body;                                                                                      \
    }

MUT(card_testing_hit, vel(f, FRAUD_KEY_IP, FRAUD_WIN_10M, DIST, 10))
MUT(card_testing_miss, vel(f, FRAUD_KEY_IP, FRAUD_WIN_10M, DIST, 9))
MUT(many_cards_ip_hit, vel(f, FRAUD_KEY_IP, FRAUD_WIN_1H, DIST, 4))
MUT(many_cards_ip_miss, vel(f, FRAUD_KEY_IP, FRAUD_WIN_1H, DIST, 3))
MUT(token_fail_hit, vel(f, FRAUD_KEY_IP, FRAUD_WIN_1H, TOK, 5))
MUT(token_fail_miss, vel(f, FRAUD_KEY_IP, FRAUD_WIN_1H, TOK, 4);
    vel(f, FRAUD_KEY_IP, FRAUD_WIN_24H, TOK, 50))
MUT(declines_ip_hit, vel(f, FRAUD_KEY_IP, FRAUD_WIN_1H, DEC, 5))
MUT(declines_ip_miss, vel(f, FRAUD_KEY_IP, FRAUD_WIN_1H, DEC, 4))
MUT(card_retries_hit, vel(f, FRAUD_KEY_CARD, FRAUD_WIN_10M, ATT, 4))
MUT(card_retries_miss, vel(f, FRAUD_KEY_CARD, FRAUD_WIN_10M, ATT, 3))
MUT(card_declines_hit, vel(f, FRAUD_KEY_CARD, FRAUD_WIN_24H, DEC, 3))
MUT(card_declines_miss, vel(f, FRAUD_KEY_CARD, FRAUD_WIN_24H, DEC, 2))
MUT(card_amount_hit, vel(f, FRAUD_KEY_CARD, FRAUD_WIN_24H, SUM, 500000))
MUT(card_amount_miss, vel(f, FRAUD_KEY_CARD, FRAUD_WIN_24H, SUM, 499999))
MUT(cards_email_hit, vel(f, FRAUD_KEY_EMAIL, FRAUD_WIN_24H, DIST, 4))
MUT(cards_email_miss, vel(f, FRAUD_KEY_EMAIL, FRAUD_WIN_24H, DIST, 3))
MUT(cards_device_hit, vel(f, FRAUD_KEY_DEVICE, FRAUD_WIN_24H, DIST, 4))
MUT(cards_device_miss, vel(f, FRAUD_KEY_DEVICE, FRAUD_WIN_24H, DIST, 3))
MUT(amount_spike_hit, f->amount = 15000; f->cart_total = 2598)
MUT(amount_spike_miss, f->amount = 14999; f->cart_total = 2598)
MUT(big_basket_hit, f->amount = 100000; f->velocity.merchant_avg_amount = 90000)
MUT(big_basket_miss, f->amount = 99999; f->velocity.merchant_avg_amount = 90000)
MUT(basket_spike_hit, f->cart_total = 11200)
MUT(basket_spike_miss, f->cart_total = 11199)
MUT(geo_hit, f->edge_country = "FR")
MUT(geo_miss, f->shipping_country = "FR")
MUT(card_ship_hit, f->shipping_country = "GB"; f->edge_country = "GB")
MUT(card_ship_miss, f->shipping_country = "us")
MUT(no_cvc_hit, f->has_cvc = false)
MUT(disposable_hit, f->email = "someone@Mailinator.com")
MUT(disposable_miss, f->email = "someone@mailinator.company")
MUT(resale_bulk_hit, f->cart_high_risk_skus = 1; f->cart_max_sku_quantity = 5)
MUT(resale_bulk_miss, f->cart_high_risk_skus = 0; f->cart_max_sku_quantity = 19)
MUT(resale_hit, f->cart_high_risk_skus = 1)
MUT(bulk_hit, f->cart_max_sku_quantity = 20)
MUT(bulk_miss, f->cart_max_sku_quantity = 19)
MUT(prepaid_hit, f->card_funding = "prepaid")
MUT(prepaid_miss, f->card_funding = "debit")

static const struct {
    const char *rule;
    mut_fn hit, miss; /* miss: a near case that must not fire it (NULL: clean only) */
} cases[] = {
    {"card_testing_ip", card_testing_hit, card_testing_miss},
    {"many_cards_ip", many_cards_ip_hit, many_cards_ip_miss},
    {"token_failures_ip", token_fail_hit, token_fail_miss},
    {"declines_ip", declines_ip_hit, declines_ip_miss},
    {"card_retries", card_retries_hit, card_retries_miss},
    {"card_declines", card_declines_hit, card_declines_miss},
    {"card_amount_24h", card_amount_hit, card_amount_miss},
    {"many_cards_email", cards_email_hit, cards_email_miss},
    {"many_cards_device", cards_device_hit, cards_device_miss},
    {"amount_spike", amount_spike_hit, amount_spike_miss},
    {"big_basket", big_basket_hit, big_basket_miss},
    {"basket_spike", basket_spike_hit, basket_spike_miss},
    {"geo_mismatch", geo_hit, geo_miss},
    {"card_shipping_mismatch", card_ship_hit, card_ship_miss},
    {"no_cvc", no_cvc_hit, NULL},
    {"disposable_email", disposable_hit, disposable_miss},
    {"resale_risk_bulk", resale_bulk_hit, resale_bulk_miss},
    {"high_resale_risk", resale_hit, NULL},
    {"bulk_quantity", bulk_hit, bulk_miss},
    {"prepaid_card", prepaid_hit, prepaid_miss},
};

static const fraud_reason_t *reason_of(const fraud_result_t *r, const char *rule)
{
    for (int i = 0; i < r->nreasons; i++)
        if (!strcmp(r->reasons[i].rule, rule))
            return &r->reasons[i];
    return NULL;
}

static fraud_result_t score(const fraud_features_t *f, const fraud_rules_t *rules)
{
    fraud_result_t r;
    ck_assert_int_eq(fraud_score(f, rules, &r), 0);
    return r;
}

START_TEST(clean_checkout_fires_no_default_rule)
{
    fraud_rules_t *d = fraud_rules_default();
    fraud_features_t f = clean();
    fraud_result_t r = score(&f, d);
    ck_assert_msg(r.nreasons == 0, "clean checkout fired %s", r.nreasons ? r.reasons[0].rule : "");
    ck_assert_int_eq(r.score, 0);
    ck_assert_int_eq(r.decision, FRAUD_APPROVE);
    fraud_rules_release(d);
}
END_TEST

START_TEST(each_default_rule_fires_on_its_case)
{
    fraud_rules_t *d = fraud_rules_default();
    /* every shipped rule has a case here: adding a rule without one fails */
    for (size_t i = 0; i < fraud_rules_count(d); i++) {
        bool found = false;
        for (size_t c = 0; c < PC_ARRAY_LEN(cases); c++)
            found = found || !strcmp(cases[c].rule, fraud_rules_id(d, i));
        ck_assert_msg(found, "default rule %s has no test case", fraud_rules_id(d, i));
    }
    ck_assert_uint_eq(fraud_rules_count(d), PC_ARRAY_LEN(cases));
    for (size_t c = 0; c < PC_ARRAY_LEN(cases); c++) {
        fraud_features_t f = clean();
        cases[c].hit(&f);
        fraud_result_t r = score(&f, d);
        const fraud_reason_t *rs = reason_of(&r, cases[c].rule);
        ck_assert_msg(rs != NULL, "%s did not fire on its case", cases[c].rule);
        ck_assert_msg(rs->detail[0] && rs->reason[0], "%s fired without explanation",
                      cases[c].rule);
        if (cases[c].miss) {
            f = clean();
            cases[c].miss(&f);
            r = score(&f, d);
            ck_assert_msg(reason_of(&r, cases[c].rule) == NULL, "%s fired on its near miss: %s",
                          cases[c].rule, reason_of(&r, cases[c].rule)->detail);
        }
    }
    fraud_rules_release(d);
}
END_TEST

START_TEST(card_testing_rule_declines_and_says_why)
{
    fraud_rules_t *d = fraud_rules_default();
    fraud_features_t f = clean();
    vel(&f, FRAUD_KEY_IP, FRAUD_WIN_10M, DIST, 31);
    fraud_result_t r = score(&f, d);
    ck_assert_int_eq(r.decision, FRAUD_DECLINE);
    /* the forced decision's reason comes first */
    ck_assert_str_eq(r.reasons[0].rule, "card_testing_ip");
    ck_assert_int_eq(r.reasons[0].action, FRAUD_ACTION_DECLINE);
    ck_assert_str_eq(r.reasons[0].detail, "ip.distinct_cards.10m is 31 (gte 10)");
    ck_assert(strstr(r.reasons[0].reason, "card testing"));
    json_t *j = fraud_result_json(&r);
    ck_assert_str_eq(h_json_str(j, "decision"), "decline");
    ck_assert_str_eq(h_json_str(j, "reasons.0.rule"), "card_testing_ip");
    ck_assert_str_eq(h_json_str(j, "reasons.0.action"), "decline");
    ck_assert_int_eq(h_json_int(j, "score"), r.score);
    json_decref(j);
    fraud_rules_release(d);
}
END_TEST

START_TEST(compound_reason_names_every_part)
{
    fraud_rules_t *d = fraud_rules_default();
    fraud_features_t f = clean();
    f.edge_country = "RU";
    fraud_result_t r = score(&f, d);
    const fraud_reason_t *rs = reason_of(&r, "geo_mismatch");
    ck_assert_ptr_nonnull(rs);
    ck_assert_str_eq(rs->detail, "edge_country is RU, card_country is US (ne) and edge_country is "
                                 "RU, shipping_country is US (ne)");
    fraud_rules_release(d);
}
END_TEST

static fraud_rules_t *rules_of(const char *text)
{
    json_t *j = json_loads_strict(text, strlen(text), NULL);
    ck_assert_msg(j != NULL, "bad test JSON %s", text);
    fraud_rules_error_t e;
    fraud_rules_t *r = fraud_rules_parse(j, 1, &e);
    json_decref(j);
    ck_assert_msg(r != NULL, "refused: %s %s", e.param, e.reason);
    return r;
}

static fraud_decision_t decision_for(int points)
{
    char doc[256];
    snprintf(doc, sizeof doc,
             "{\"review_threshold\":60,\"decline_threshold\":85,\"rules\":[{\"id\":\"s\","
             "\"score\":%d,\"if\":{\"feature\":\"amount\",\"op\":\"gte\",\"value\":0}}]}",
             points);
    fraud_rules_t *r = rules_of(doc);
    fraud_features_t f = clean();
    fraud_result_t res = score(&f, r);
    ck_assert_int_eq(res.score, points < 0 ? 0 : points);
    fraud_rules_release(r);
    return res.decision;
}

START_TEST(thresholds_map_scores_to_decisions)
{
    ck_assert_int_eq(decision_for(-20), FRAUD_APPROVE);
    ck_assert_int_eq(decision_for(1), FRAUD_APPROVE);
    ck_assert_int_eq(decision_for(59), FRAUD_APPROVE);
    ck_assert_int_eq(decision_for(60), FRAUD_REVIEW);
    ck_assert_int_eq(decision_for(84), FRAUD_REVIEW);
    ck_assert_int_eq(decision_for(85), FRAUD_DECLINE);
    ck_assert_int_eq(decision_for(100), FRAUD_DECLINE);
    /* sums clamp to 0..100; equal thresholds leave no review band */
    fraud_rules_t *r = rules_of(
        "{\"review_threshold\":70,\"decline_threshold\":70,\"rules\":["
        "{\"id\":\"a\",\"score\":80,\"if\":{\"feature\":\"amount\",\"op\":\"gt\",\"value\":0}},"
        "{\"id\":\"b\",\"score\":90,\"if\":{\"feature\":\"has_cvc\",\"op\":\"eq\",\"value\":true}},"
        "{\"id\":\"c\",\"score\":-100,\"if\":{\"feature\":\"amount\",\"op\":\"gt\",\"value\":5000}}"
        "]}");
    fraud_features_t f = clean();
    fraud_result_t res = score(&f, r);
    ck_assert_int_eq(res.score, 100);
    ck_assert_int_eq(res.decision, FRAUD_DECLINE);
    ck_assert_int_eq(res.nfired, 2);
    f.amount = 6000;
    res = score(&f, r);
    ck_assert_int_eq(res.score, 70);
    ck_assert_int_eq(res.decision, FRAUD_DECLINE);
    f.has_cvc = false;
    res = score(&f, r);
    ck_assert_int_eq(res.score, 0);
    ck_assert_int_eq(res.decision, FRAUD_APPROVE);
    fraud_rules_release(r);
}
END_TEST

START_TEST(actions_force_decisions_whatever_the_score)
{
    fraud_rules_t *r = rules_of(
        "{\"rules\":["
        "{\"id\":\"hold\",\"action\":\"review\",\"if\":{\"feature\":\"currency\",\"op\":\"eq\","
        "\"value\":\"eur\"}},"
        "{\"id\":\"stop\",\"action\":\"decline\",\"score\":5,\"if\":{\"feature\":\"bin\",\"op\":"
        "\"starts_with\",\"value\":\"4000\"}},"
        "{\"id\":\"off\",\"action\":\"decline\",\"enabled\":false,\"if\":{\"feature\":\"amount\","
        "\"op\":\"gt\",\"value\":0}}]}");
    fraud_features_t f = clean();
    fraud_result_t res = score(&f, r);
    ck_assert_int_eq(res.score, 0);
    ck_assert_int_eq(res.decision, FRAUD_REVIEW);
    ck_assert_str_eq(res.reasons[0].rule, "hold");
    f.bin = "400000";
    res = score(&f, r);
    ck_assert_int_eq(res.score, 5);
    ck_assert_int_eq(res.decision, FRAUD_DECLINE);
    ck_assert_str_eq(res.reasons[0].rule, "stop");
    ck_assert_ptr_null(reason_of(&res, "off"));
    fraud_rules_release(r);
}
END_TEST

START_TEST(allow_list_beats_a_rule)
{
    fraud_rules_t *r = rules_of(
        "{\"allow\":{\"emails\":[\"ADA@example.org\"]},\"rules\":[{\"id\":\"testing\","
        "\"action\":\"decline\",\"score\":100,\"if\":{\"feature\":\"ip.distinct_cards.10m\","
        "\"op\":\"gte\",\"value\":10}}]}");
    fraud_features_t f = clean();
    vel(&f, FRAUD_KEY_IP, FRAUD_WIN_10M, DIST, 50);
    fraud_result_t res = score(&f, r);
    ck_assert_int_eq(res.decision, FRAUD_APPROVE);
    ck_assert_int_eq(res.score, 0);
    ck_assert_int_eq(res.nreasons, 1);
    ck_assert_str_eq(res.reasons[0].rule, "allow.emails");
    ck_assert_str_eq(res.reasons[0].detail, "email is ada@example.org");
    /* without the allow entry the rule declines */
    f.email = "eve@example.org";
    res = score(&f, r);
    ck_assert_int_eq(res.decision, FRAUD_DECLINE);
    ck_assert_str_eq(res.reasons[0].rule, "testing");
    fraud_rules_release(r);
}
END_TEST

/* One block list entry at a time: each kind declines with its reason. */
START_TEST(block_lists_decline_and_beat_allow_lists)
{
    static const struct {
        const char *list, *entry, *rule, *detail;
    } b[] = {
        {"emails", "Ada@Example.org", "block.emails", "email is ada@example.org"},
        {"email_domains", "EXAMPLE.org", "block.email_domains", "email_domain is example.org"},
        {"ips", "203.0.113.0/24", "block.ips", "ip 203.0.113.7 is in 203.0.113.0/24"},
        {"fingerprints", "fp_Xk3vP9qLmN2wR7tYcleanA", "block.fingerprints",
         "fingerprint is fp_Xk3vP9qLmN2wR7tYcleanA"},
        {"bins", "4242", "block.bins", "bin 424242 matches 4242"},
        {"countries", "US", "block.countries", "card_country is US"},
        {"devices", "dev_clean", "block.devices", "device_id is dev_clean"},
    };
    for (size_t i = 0; i < PC_ARRAY_LEN(b); i++) {
        char doc[512];
        snprintf(doc, sizeof doc,
                 "{\"block\":{\"%s\":[\"%s\"]},\"allow\":{\"emails\":[\"ada@example.org\"]}}",
                 b[i].list, b[i].entry);
        fraud_rules_t *r = rules_of(doc);
        fraud_features_t f = clean();
        fraud_result_t res = score(&f, r);
        ck_assert_msg(res.decision == FRAUD_DECLINE, "%s did not decline", b[i].list);
        ck_assert_int_eq(res.score, 100);
        ck_assert_str_eq(res.reasons[0].rule, b[i].rule);
        ck_assert_str_eq(res.reasons[0].detail, b[i].detail);
        ck_assert_int_eq(res.reasons[0].action, FRAUD_ACTION_DECLINE);
        fraud_rules_release(r);
    }
    /* IPv6 ranges and IPv4-mapped addresses */
    fraud_rules_t *r = rules_of("{\"block\":{\"ips\":[\"2001:db8::/32\",\"198.51.100.9\"]}}");
    fraud_features_t f = clean();
    f.ip = "2001:db8:1::5";
    ck_assert_int_eq(score(&f, r).decision, FRAUD_DECLINE);
    f.ip = "2001:db9::5";
    ck_assert_int_eq(score(&f, r).decision, FRAUD_APPROVE);
    f.ip = "::ffff:198.51.100.9";
    ck_assert_int_eq(score(&f, r).decision, FRAUD_DECLINE);
    fraud_rules_release(r);
}
END_TEST

START_TEST(allow_countries_need_every_country_listed)
{
    fraud_rules_t *r = rules_of(
        "{\"allow\":{\"countries\":[\"US\",\"CA\"]},\"rules\":[{\"id\":\"x\",\"score\":90,\"if\":"
        "{\"feature\":\"amount\",\"op\":\"gt\",\"value\":0}}]}");
    fraud_features_t f = clean();
    ck_assert_int_eq(score(&f, r).decision, FRAUD_APPROVE);
    f.shipping_country = "CA";
    f.card_country = "CA";
    ck_assert_int_eq(score(&f, r).decision, FRAUD_APPROVE);
    f.edge_country = "NG"; /* one unlisted country: no allow */
    ck_assert_int_eq(score(&f, r).decision, FRAUD_DECLINE);
    fraud_rules_release(r);
}
END_TEST

START_TEST(absent_features_never_fire_comparisons)
{
    fraud_rules_t *d = fraud_rules_default();
    fraud_features_t f = clean();
    f.edge_country = NULL; /* optional: no geo rule on a missing signal */
    f.device_id = NULL;
    f.velocity.known[FRAUD_KEY_DEVICE] = false;
    vel(&f, FRAUD_KEY_DEVICE, FRAUD_WIN_10M, DIST, 40); /* stale numbers of an unknown key */
    f.velocity.merchant_avg_amount = 0;                 /* new merchant: no average yet */
    f.amount = 90000;
    fraud_result_t r = score(&f, d);
    ck_assert_ptr_null(reason_of(&r, "geo_mismatch"));
    ck_assert_ptr_null(reason_of(&r, "many_cards_device"));
    ck_assert_ptr_null(reason_of(&r, "amount_spike"));
    fraud_rules_release(d);
    /* present / absent test for the signal itself */
    fraud_rules_t *p = rules_of("{\"rules\":[{\"id\":\"no_device\",\"score\":15,\"if\":{"
                                "\"feature\":\"device_id\",\"op\":\"absent\"}},{\"id\":\"nd2\","
                                "\"score\":1,\"if\":{\"not\":{\"feature\":\"device_id\",\"op\":"
                                "\"present\"}}}]}");
    r = score(&f, p);
    ck_assert_int_eq(r.score, 16);
    ck_assert_str_eq(reason_of(&r, "no_device")->detail, "device_id is absent");
    f.device_id = "dev_1";
    ck_assert_int_eq(score(&f, p).score, 0);
    fraud_rules_release(p);
}
END_TEST

START_TEST(reasons_never_echo_a_card_number)
{
    fraud_rules_t *r = rules_of(
        "{\"rules\":[{\"id\":\"mail\",\"score\":10,\"if\":{\"feature\":\"email\",\"op\":"
        "\"ends_with\",\"value\":\"@x.test\"}},{\"id\":\"bin\",\"score\":10,\"if\":{\"feature\":"
        "\"bin\",\"op\":\"present\"}}],\"block\":{\"bins\":[\"4\"]}}");
    fraud_features_t f = clean();
    f.email = "4242424242424242@x.test";
    f.bin = "4242424242424242"; /* a whole number passed by mistake: never used */
    fraud_result_t res = score(&f, r);
    ck_assert_int_eq(res.decision, FRAUD_APPROVE);
    ck_assert_int_eq(res.nreasons, 1);
    ck_assert_str_eq(res.reasons[0].rule, "mail");
    ck_assert_msg(!strstr(res.reasons[0].detail, "4242424242424242"), "PAN in %s",
                  res.reasons[0].detail);
    json_t *j = fraud_result_json(&res);
    char *json = json_dumps_compact(j);
    ck_assert_ptr_null(strstr(json, "4242424242424242"));
    free(json);
    json_decref(j);
    fraud_rules_release(r);
}
END_TEST

START_TEST(strongest_reasons_are_kept)
{
    char doc[16384];
    char *p = doc + sprintf(doc, "{\"rules\":[");
    for (int i = 0; i < 40; i++)
        p += sprintf(p,
                     "%s{\"id\":\"r%02d\",\"score\":%d,\"if\":{\"feature\":\"amount\",\"op\":"
                     "\"gt\",\"value\":0}}",
                     i ? "," : "", i, i == 7 ? -3 : 1 + i % 10);
    sprintf(p, ",{\"id\":\"last\",\"action\":\"review\",\"if\":{\"feature\":\"amount\",\"op\":"
               "\"gt\",\"value\":0}}]}");
    fraud_rules_t *r = rules_of(doc);
    fraud_features_t f = clean();
    fraud_result_t res = score(&f, r);
    ck_assert_int_eq(res.nfired, 41);
    ck_assert_int_eq(res.nreasons, FRAUD_MAX_REASONS);
    ck_assert_str_eq(res.reasons[0].rule, "last"); /* the action is never dropped */
    for (int i = 2; i < res.nreasons; i++)
        ck_assert_int_le(abs(res.reasons[i].score), abs(res.reasons[i - 1].score));
    ck_assert_int_eq(res.reasons[res.nreasons - 1].score, 7); /* weakest kept: the 10s..7s */
    json_t *j = fraud_result_json(&res);
    ck_assert_int_eq(h_json_int(j, "reasons_omitted"), 41 - FRAUD_MAX_REASONS);
    json_decref(j);
    fraud_rules_release(r);
}
END_TEST

START_TEST(string_and_list_operators)
{
    fraud_rules_t *r = rules_of(
        "{\"rules\":["
        "{\"id\":\"cur\",\"score\":1,\"if\":{\"feature\":\"currency\",\"op\":\"not_in\","
        "\"value\":[\"USD\",\"EUR\"]}},"
        "{\"id\":\"amt\",\"score\":2,\"if\":{\"feature\":\"amount\",\"op\":\"in\",\"value\":[5,"
        "2598,77]}},"
        "{\"id\":\"dom\",\"score\":4,\"if\":{\"feature\":\"email_domain\",\"op\":\"ends_with\","
        "\"value\":\".ORG\"}},"
        "{\"id\":\"fp\",\"score\":8,\"if\":{\"feature\":\"fingerprint\",\"op\":\"eq\",\"value\":"
        "\"FP_XK3VP9QLMN2WR7TYCLEANA\"}},"
        "{\"id\":\"lt\",\"score\":16,\"if\":{\"any\":[{\"feature\":\"cart_distinct_skus\",\"op\":"
        "\"lt\",\"value\":1},{\"feature\":\"cart_total\",\"op\":\"lte\",\"value\":{\"feature\":"
        "\"amount\"}}]}}]}");
    fraud_features_t f = clean();
    fraud_result_t res = score(&f, r);
    /* EUR is listed; 2598 is; .org matches case-insensitively; fingerprints
     * are exact (case matters); cart_total <= amount */
    ck_assert_int_eq(res.score, 2 + 4 + 16);
    ck_assert_str_eq(reason_of(&res, "lt")->detail, "cart_total is 2598, amount is 2598 (lte)");
    f.currency = "JPY";
    ck_assert_int_eq(score(&f, r).score, 1 + 2 + 4 + 16);
    fraud_rules_release(r);
}
END_TEST

int main(void)
{
    h_init("test_fraud_score");
    Suite *s = suite_create("fraud_score");
    TCase *tc = h_tcase("score", 60);
    tcase_add_test(tc, clean_checkout_fires_no_default_rule);
    tcase_add_test(tc, each_default_rule_fires_on_its_case);
    tcase_add_test(tc, card_testing_rule_declines_and_says_why);
    tcase_add_test(tc, compound_reason_names_every_part);
    tcase_add_test(tc, thresholds_map_scores_to_decisions);
    tcase_add_test(tc, actions_force_decisions_whatever_the_score);
    tcase_add_test(tc, allow_list_beats_a_rule);
    tcase_add_test(tc, block_lists_decline_and_beat_allow_lists);
    tcase_add_test(tc, allow_countries_need_every_country_listed);
    tcase_add_test(tc, absent_features_never_fire_comparisons);
    tcase_add_test(tc, reasons_never_echo_a_card_number);
    tcase_add_test(tc, strongest_reasons_are_kept);
    tcase_add_test(tc, string_and_list_operators);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
