/* Integration: POST /v1/tokens through gatewayd and vaultd exactly as
 * API.md says: success with pk and sk keys, each card error naming its
 * field without echoing the card, authentication errors, the per-key and
 * per-IP rate limits, and /readyz and 503 when the vault is down. */
#include "tests/harness/harness.h"
#include <stdio.h>
#include <string.h>

static char *db;
static h_vault_t *vlt;
static h_gateway_t *gwy;
static h_merchant_t m;

static void start_gateway(const char *extra_vault_json)
{
    char *vj = h_vault_gateway_json(vlt);
    char extra[2048];
    if (extra_vault_json) {
        /* merge by hand: {"vault":{...}} + the test's own keys */
        snprintf(extra, sizeof extra, "%.*s, %s", (int)strlen(vj) - 1, vj, extra_vault_json + 1);
    } else {
        snprintf(extra, sizeof extra, "%s", vj);
    }
    free(vj);
    gwy = h_gateway_start(db, "gatewayd", extra);
}

static void setup(void)
{
    db = h_db_create();
    m = h_merchant_create(db, "Card Shop");
    vlt = h_vault_start(db, "vaultd", NULL);
}

static void teardown(void)
{
    h_gateway_stop(gwy, SIGTERM);
    h_vault_stop(vlt, SIGTERM);
    h_db_drop(db);
    free(db);
}

static h_resp_t post_card(const char *key, const char *card_json)
{
    char body[1024];
    snprintf(body, sizeof body, "{\"card\":%s}", card_json);
    return h_post(gwy, "/v1/tokens", key, body);
}

START_TEST(tokens_post_returns_the_token_and_card_metadata)
{
    start_gateway(NULL);
    h_resp_t r = post_card(m.pk, "{\"number\":\"4242424242424242\",\"exp_month\":12,"
                                 "\"exp_year\":2030,\"cvc\":\"123\",\"name\":\"Ada Lovelace\"}");
    ck_assert_msg(r.status == 201, "%ld %s", r.status, r.body);
    const char *id = h_json_str(r.json, "id");
    ck_assert(id && !strncmp(id, "tok_", 4) && strlen(id) >= 26);
    ck_assert_str_eq(h_json_str(r.json, "card.brand"), "visa");
    ck_assert_str_eq(h_json_str(r.json, "card.last4"), "4242");
    ck_assert_str_eq(h_json_str(r.json, "card.bin"), "424242");
    ck_assert_int_eq(h_json_int(r.json, "card.exp_month"), 12);
    ck_assert_int_eq(h_json_int(r.json, "card.exp_year"), 2030);
    const char *fp = h_json_str(r.json, "card.fingerprint");
    ck_assert(fp && !strncmp(fp, "fp_", 3));
    /* exactly the documented keys, and never the number or the CVC */
    ck_assert_uint_eq(json_object_size(r.json), 2);
    ck_assert_uint_eq(json_object_size(json_object_get(r.json, "card")), 6);
    ck_assert_ptr_null(strstr(r.body, "4242424242424242"));
    ck_assert_ptr_null(strstr(r.body, "\"123\""));
    ck_assert_ptr_null(strstr(r.body, "cvc"));
    char fp1[96];
    snprintf(fp1, sizeof fp1, "%s", fp);
    h_resp_free(&r);

    /* the secret key may tokenize too; same card, new token, same fingerprint */
    r = post_card(m.sk, "{\"number\":\"4242424242424242\",\"exp_month\":1,\"exp_year\":2031}");
    ck_assert_int_eq(r.status, 201);
    ck_assert_str_eq(h_json_str(r.json, "card.fingerprint"), fp1);
    h_resp_free(&r);
    r = post_card(m.pk, "{\"number\":\"3782-822463-10005\",\"exp_month\":1,\"exp_year\":2031,"
                        "\"cvc\":\"1234\",\"name\":null}");
    ck_assert_int_eq(r.status, 201);
    ck_assert_str_eq(h_json_str(r.json, "card.brand"), "amex");
    ck_assert_str_eq(h_json_str(r.json, "card.last4"), "0005");
    h_resp_free(&r);
    r = post_card(m.pk, "{\"number\":\"2223003122003222\",\"exp_month\":1,\"exp_year\":2031}");
    ck_assert_int_eq(r.status, 201);
    ck_assert_str_eq(h_json_str(r.json, "card.brand"), "mastercard");
    h_resp_free(&r);
    ck_assert_int_eq(
        h_sql_long(db, "SELECT count(*) FROM vault.cards WHERE merchant_id = '%s'", m.id), 4);
}
END_TEST

static void expect_card_error(const char *card_json, err_code_t code, const char *param,
                              const char *secret)
{
    h_resp_t r = post_card(m.pk, card_json);
    h_assert_error(&r, 400, code);
    ck_assert_msg(param == NULL || !strcmp(h_json_str(r.json, "error.param"), param),
                  "%s: expected param %s: %s", card_json, param, r.body);
    if (secret)
        ck_assert_msg(strstr(r.body, secret) == NULL, "response echoes %s", secret);
    h_resp_free(&r);
}

START_TEST(each_card_error_names_its_field_and_never_echoes_the_card)
{
    start_gateway(NULL);
    expect_card_error("{\"number\":\"4242424242424241\",\"exp_month\":12,\"exp_year\":2030}",
                      ERR_INVALID_NUMBER, "card.number", "4242424242424241");
    expect_card_error("{\"number\":\"4242\",\"exp_month\":12,\"exp_year\":2030}",
                      ERR_INVALID_NUMBER, "card.number", NULL);
    expect_card_error("{\"number\":\"1234567812345670\",\"exp_month\":12,\"exp_year\":2030}",
                      ERR_INVALID_NUMBER, "card.number", "1234567812345670");
    expect_card_error("{\"number\":\"42424242424242424242424242424242424242\",\"exp_month\":12,"
                      "\"exp_year\":2030}",
                      ERR_INVALID_NUMBER, "card.number", NULL);
    expect_card_error("{\"number\":\"4242424242424242\",\"exp_month\":13,\"exp_year\":2030}",
                      ERR_INVALID_EXPIRY, "card.exp_month", "4242424242424242");
    expect_card_error("{\"number\":\"4242424242424242\",\"exp_month\":0,\"exp_year\":2030}",
                      ERR_INVALID_EXPIRY, "card.exp_month", NULL);
    expect_card_error("{\"number\":\"4242424242424242\",\"exp_month\":12,\"exp_year\":2019}",
                      ERR_INVALID_EXPIRY, "card.exp_year", NULL);
    expect_card_error("{\"number\":\"4242424242424242\",\"exp_month\":12,\"exp_year\":-1}",
                      ERR_INVALID_EXPIRY, "card.exp_year", NULL);
    expect_card_error("{\"number\":\"4242424242424242\",\"exp_month\":12,\"exp_year\":2030,"
                      "\"cvc\":\"98\"}",
                      ERR_INVALID_CVC, "card.cvc", "4242424242424242");
    expect_card_error("{\"number\":\"378282246310005\",\"exp_month\":12,\"exp_year\":2030,"
                      "\"cvc\":\"987\"}",
                      ERR_INVALID_CVC, "card.cvc", "\"987\"");
    expect_card_error("{\"number\":\"4242424242424242\",\"exp_month\":12,\"exp_year\":2030,"
                      "\"cvc\":\"98a\"}",
                      ERR_INVALID_CVC, "card.cvc", NULL);
    /* shape errors are invalid_request_error naming the field */
    expect_card_error("{\"exp_month\":12,\"exp_year\":2030}", ERR_PARAMETER_MISSING, "card.number",
                      NULL);
    expect_card_error("{\"number\":4242424242424242,\"exp_month\":12,\"exp_year\":2030}",
                      ERR_PARAMETER_INVALID, "card.number", "4242424242424242");
    expect_card_error("{\"number\":\"4242424242424242\",\"exp_month\":\"12\",\"exp_year\":2030}",
                      ERR_PARAMETER_INVALID, "card.exp_month", "4242424242424242");
    expect_card_error("{\"number\":\"4242424242424242\",\"exp_month\":12,\"exp_year\":2030,"
                      "\"colour\":\"red\"}",
                      ERR_PARAMETER_UNKNOWN, "card.colour", "4242424242424242");
    expect_card_error("{\"number\":\"4242424242424242\",\"exp_month\":12,\"exp_year\":2030,"
                      "\"name\":\"Ada\\nLovelace\"}",
                      ERR_PARAMETER_INVALID, "card.name", "4242424242424242");
    h_resp_t r = h_post(gwy, "/v1/tokens", m.pk, "{}");
    h_assert_error(&r, 400, ERR_PARAMETER_MISSING);
    ck_assert_str_eq(h_json_str(r.json, "error.param"), "card");
    h_resp_free(&r);
    ck_assert_int_eq(h_sql_long(db, "SELECT count(*) FROM vault.cards"), 0);
}
END_TEST

START_TEST(auth_errors_on_tokens)
{
    start_gateway(NULL);
    const char *card = "{\"card\":{\"number\":\"4242424242424242\",\"exp_month\":12,"
                       "\"exp_year\":2030}}";
    h_resp_t r = h_post(gwy, "/v1/tokens", NULL, card);
    h_assert_error(&r, 401, ERR_API_KEY_MISSING);
    h_resp_free(&r);
    r = h_post(gwy, "/v1/tokens", "pk_test_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", card);
    h_assert_error(&r, 401, ERR_API_KEY_INVALID);
    h_resp_free(&r);
    r = h_post(gwy, "/v1/tokens", m.ak, card);
    h_assert_error(&r, 403, ERR_PERMISSION_DENIED);
    h_resp_free(&r);
    r = h_get(gwy, "/v1/tokens", m.pk);
    ck_assert_int_eq(r.status, 405);
    h_resp_free(&r);
    ck_assert_int_eq(h_sql_long(db, "SELECT count(*) FROM vault.cards"), 0);
}
END_TEST

static long post_from(const char *key, const char *ip, char **retry_after)
{
    char url[256], xff[96];
    snprintf(url, sizeof url, "%s/v1/tokens", gwy->url);
    snprintf(xff, sizeof xff, "X-Forwarded-For: %s", ip);
    const char *hdrs[] = {xff, NULL};
    h_resp_t r = h_http("POST", url, key,
                        "{\"card\":{\"number\":\"4242424242424242\",\"exp_month\":12,"
                        "\"exp_year\":2030}}",
                        hdrs);
    long st = r.status;
    if (st == 429) {
        h_assert_error(&r, 429, ERR_RATE_LIMITED);
        ck_assert_str_eq(h_json_str(r.json, "error.type"), "rate_limit_error");
        if (retry_after)
            *retry_after = h_resp_header(&r, "Retry-After");
    }
    h_resp_free(&r);
    return st;
}

START_TEST(rate_limits_per_client_ip_and_per_key)
{
    start_gateway("{\"listen\":{\"trust_forwarded_for\":true},"
                  "\"rate_limit\":{\"tokens\":{\"per_ip_burst\":3,\"per_ip_per_minute\":1,"
                  "\"per_key_burst\":5,\"per_key_per_minute\":1}}}");
    /* one IP: three, then refused, whichever key it uses */
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(post_from(m.pk, "203.0.113.1", NULL), 201);
    char *ra = NULL;
    ck_assert_int_eq(post_from(m.pk, "203.0.113.1", &ra), 429);
    ck_assert_ptr_nonnull(ra);
    ck_assert_int_ge(atoi(ra), 1);
    ck_assert_int_le(atoi(ra), 60);
    free(ra);
    ck_assert_int_eq(post_from(m.sk, "203.0.113.1", NULL), 429);
    /* the pk's own bucket (5) still has two: spent from another IP */
    ck_assert_int_eq(post_from(m.pk, "198.51.100.7", NULL), 201);
    ck_assert_int_eq(post_from(m.pk, "198.51.100.8", NULL), 201);
    ck_assert_int_eq(post_from(m.pk, "198.51.100.9", NULL), 429);
    /* the sk has its own */
    ck_assert_int_eq(post_from(m.sk, "198.51.100.9", NULL), 201);
    ck_assert_int_eq(h_sql_long(db, "SELECT count(*) FROM vault.cards"), 6);
    h_resp_t r = h_get(gwy, "/metrics", NULL);
    ck_assert_ptr_nonnull(strstr(
        r.body,
        "portcullis_http_requests_total{method=\"POST\",route=\"/v1/tokens\",status=\"429\"} 3"));
    h_resp_free(&r);
}
END_TEST

START_TEST(vault_down_means_503_and_not_ready_until_it_is_back)
{
    start_gateway(NULL);
    h_resp_t r = h_get(gwy, "/readyz", NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(h_json_str(r.json, "checks.vault"), "ok");
    h_resp_free(&r);
    const char *card = "{\"number\":\"4242424242424242\",\"exp_month\":12,\"exp_year\":2030}";
    r = post_card(m.pk, card);
    ck_assert_int_eq(r.status, 201);
    h_resp_free(&r);

    ck_assert_int_eq(h_vault_stop(vlt, SIGTERM), 0);
    vlt = NULL;
    r = post_card(m.pk, card);
    h_assert_error(&r, 503, ERR_VAULT_UNAVAILABLE);
    ck_assert_str_eq(h_json_str(r.json, "error.type"), "api_error");
    char *ra = h_resp_header(&r, "Retry-After");
    ck_assert_msg(ra && strcmp(ra, "1") == 0, "Retry-After: %s", ra ? ra : "(none)");
    free(ra);
    h_resp_free(&r);
    r = h_get(gwy, "/readyz", NULL);
    ck_assert_int_eq(r.status, 503);
    ck_assert_str_eq(h_json_str(r.json, "checks.vault"), "unreachable");
    ck_assert_str_eq(h_json_str(r.json, "checks.database"), "ok");
    h_resp_free(&r);

    vlt = h_vault_start(db, "vaultd", NULL); /* same database, same KEK file */
    r = h_get(gwy, "/readyz", NULL);
    ck_assert_int_eq(r.status, 200);
    h_resp_free(&r);
    r = post_card(m.pk, card);
    ck_assert_int_eq(r.status, 201);
    h_resp_free(&r);
}
END_TEST

START_TEST(gateway_without_a_vault_answers_503)
{
    gwy = h_gateway_start(db, "gatewayd-novault", NULL);
    h_resp_t r = post_card(m.pk, "{\"number\":\"4242424242424242\",\"exp_month\":12,"
                                 "\"exp_year\":2030}");
    h_assert_error(&r, 503, ERR_VAULT_UNAVAILABLE);
    h_resp_free(&r);
}
END_TEST

int main(void)
{
    h_init("it_tokens_api");
    Suite *s = suite_create("tokens_api");
    TCase *tc = h_tcase("tokens", 300);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, tokens_post_returns_the_token_and_card_metadata);
    tcase_add_test(tc, each_card_error_names_its_field_and_never_echoes_the_card);
    tcase_add_test(tc, auth_errors_on_tokens);
    tcase_add_test(tc, rate_limits_per_client_ip_and_per_key);
    tcase_add_test(tc, vault_down_means_503_and_not_ready_until_it_is_back);
    tcase_add_test(tc, gateway_without_a_vault_answers_503);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
