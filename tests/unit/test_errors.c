/* Unit: the one error table is consistent and renders API.md's error shape. */
#include "tests/harness/harness.h"
#include <string.h>

static const char *types[] = {"invalid_request_error", "authentication_error",
                              "permission_error",      "idempotency_error",
                              "cart_error",            "card_error",
                              "fraud_error",           "rate_limit_error",
                              "provider_error",        "api_error"};

START_TEST(every_code_is_unique_and_well_typed)
{
    for (int i = 0; i < ERR__COUNT; i++) {
        bool typed = false;
        for (size_t t = 0; t < PC_ARRAY_LEN(types); t++)
            typed = typed || !strcmp(err_type((err_code_t)i), types[t]);
        ck_assert_msg(typed, "%s has an unknown type %s", err_code_str((err_code_t)i),
                      err_type((err_code_t)i));
        unsigned st = err_http_status((err_code_t)i);
        ck_assert_msg(st >= 400 && st <= 599, "%s has status %u", err_code_str((err_code_t)i), st);
        ck_assert_ptr_nonnull(err_message((err_code_t)i));
        ck_assert_int_gt(strlen(err_message((err_code_t)i)), 0);
        for (int j = i + 1; j < ERR__COUNT; j++)
            ck_assert_msg(strcmp(err_code_str((err_code_t)i), err_code_str((err_code_t)j)),
                          "code %s appears twice", err_code_str((err_code_t)i));
        ck_assert_int_eq(err_by_code(err_code_str((err_code_t)i)), i);
    }
    ck_assert_int_eq(err_by_code("no_such_code"), ERR__COUNT);
}
END_TEST

START_TEST(contract_statuses_match_api_md)
{
    ck_assert_uint_eq(err_http_status(ERR_BODY_TOO_LARGE), 413);
    ck_assert_uint_eq(err_http_status(ERR_ROUTE_NOT_FOUND), 404);
    ck_assert_uint_eq(err_http_status(ERR_METHOD_NOT_ALLOWED), 405);
    ck_assert_uint_eq(err_http_status(ERR_API_KEY_INVALID), 401);
    ck_assert_uint_eq(err_http_status(ERR_PERMISSION_DENIED), 403);
    ck_assert_uint_eq(err_http_status(ERR_KEY_REUSED), 422);
    ck_assert_uint_eq(err_http_status(ERR_REQUEST_IN_PROGRESS), 409);
    ck_assert_uint_eq(err_http_status(ERR_PRICE_CHANGED), 409);
    ck_assert_uint_eq(err_http_status(ERR_OUT_OF_STOCK), 409);
    ck_assert_uint_eq(err_http_status(ERR_CARD_DECLINED), 402);
    ck_assert_uint_eq(err_http_status(ERR_FRAUD_DECLINED), 402);
    ck_assert_uint_eq(err_http_status(ERR_RATE_LIMITED), 429);
    ck_assert_uint_eq(err_http_status(ERR_PROVIDERS_UNAVAILABLE), 503);
    ck_assert_str_eq(err_type(ERR_PROVIDERS_UNAVAILABLE), "provider_error");
    ck_assert_str_eq(err_type(ERR_FRAUD_DECLINED), "fraud_error");
}
END_TEST

START_TEST(error_body_has_api_shape)
{
    json_t *b = err_body(ERR_PARAMETER_MISSING, "cart.currency", NULL);
    ck_assert_str_eq(h_json_str(b, "error.type"), "invalid_request_error");
    ck_assert_str_eq(h_json_str(b, "error.code"), "parameter_missing");
    ck_assert_str_eq(h_json_str(b, "error.param"), "cart.currency");
    ck_assert_str_eq(h_json_str(b, "error.message"), err_message(ERR_PARAMETER_MISSING));
    json_decref(b);
    b = err_body(ERR_INTERNAL, NULL, "custom");
    ck_assert_ptr_null(json_object_get(json_object_get(b, "error"), "param"));
    ck_assert_str_eq(h_json_str(b, "error.message"), "custom");
    json_decref(b);
}
END_TEST

int main(void)
{
    h_init("test_errors");
    Suite *s = suite_create("errors");
    TCase *tc = h_tcase("table", 30);
    tcase_add_test(tc, every_code_is_unique_and_well_typed);
    tcase_add_test(tc, contract_statuses_match_api_md);
    tcase_add_test(tc, error_body_has_api_shape);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
