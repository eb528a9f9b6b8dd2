/* Unit: declarative JSON parsing names the bad field; logging masks PANs. */
#include "tests/harness/harness.h"
#include <string.h>

static const char *s_currency;
static int64_t s_qty;
static bool s_capture, s_capture_present;
static json_t *s_items;
static const char *s_email;

static const jspec_field_t customer_spec[] = {
    JSPEC_STR("email", JSPEC_REQUIRED, 3, 254, &s_email),
    JSPEC_END,
};
static const jspec_field_t spec[] = {
    {.name = "currency", .type = JSPEC_STRING, .flags = JSPEC_REQUIRED, .dest = &s_currency,
     .check = jspec_check_currency},
    JSPEC_I64("quantity", JSPEC_REQUIRED, 1, 1000, &s_qty),
    {.name = "capture", .type = JSPEC_BOOL, .dest = &s_capture, .present = &s_capture_present},
    JSPEC_ARR("items", 0, 1, 3, &s_items),
    JSPEC_OBJ("customer", 0, customer_spec, NULL),
    JSPEC_END,
};

static bool parse(const char *text, jspec_error_t *e)
{
    json_t *j = json_loads_strict(text, strlen(text), NULL);
    ck_assert_msg(j != NULL, "test JSON invalid: %s", text);
    bool ok = jspec_parse(j, spec, "", e);
    json_decref(j);
    return ok;
}

START_TEST(valid_document_fills_destinations)
{
    jspec_error_t e;
    const char *doc = "{\"currency\":\"EUR\",\"quantity\":3,\"capture\":false,"
                      "\"items\":[1],\"customer\":{\"email\":\"a@b.c\"}}";
    json_t *j = json_loads_strict(doc, strlen(doc), NULL);
    ck_assert_ptr_nonnull(j);
    ck_assert(jspec_parse(j, spec, "", &e));
    ck_assert_str_eq(s_currency, "EUR");
    ck_assert_int_eq(s_qty, 3);
    ck_assert(s_capture_present);
    ck_assert(!s_capture);
    ck_assert_int_eq(json_array_size(s_items), 1);
    ck_assert_str_eq(s_email, "a@b.c");
    json_decref(j);
}
END_TEST

START_TEST(bad_fields_are_named)
{
    jspec_error_t e;
    ck_assert(!parse("{\"quantity\":1}", &e));
    ck_assert_str_eq(e.param, "currency");
    ck_assert_int_eq(e.code, ERR_PARAMETER_MISSING);

    ck_assert(!parse("{\"currency\":\"eur\",\"quantity\":1}", &e));
    ck_assert_str_eq(e.param, "currency");
    ck_assert_int_eq(e.code, ERR_PARAMETER_INVALID);

    ck_assert(!parse("{\"currency\":\"EUR\",\"quantity\":1.5}", &e));
    ck_assert_str_eq(e.param, "quantity");
    ck_assert(strstr(e.reason, "integer") != NULL);

    ck_assert(!parse("{\"currency\":\"EUR\",\"quantity\":1001}", &e));
    ck_assert_str_eq(e.param, "quantity");

    ck_assert(!parse("{\"currency\":\"EUR\",\"quantity\":\"2\"}", &e));
    ck_assert_str_eq(e.param, "quantity");

    ck_assert(!parse("{\"currency\":\"EUR\",\"quantity\":2,\"items\":[]}", &e));
    ck_assert_str_eq(e.param, "items");

    ck_assert(!parse("{\"currency\":\"EUR\",\"quantity\":2,\"customer\":{}}", &e));
    ck_assert_str_eq(e.param, "customer.email");

    ck_assert(!parse("{\"currency\":\"EUR\",\"quantity\":2,\"customer\":{\"email\":\"a@b.c\","
                     "\"phone\":1}}",
                     &e));
    ck_assert_str_eq(e.param, "customer.phone");
    ck_assert_int_eq(e.code, ERR_PARAMETER_UNKNOWN);

    ck_assert(!parse("{\"currency\":\"EUR\",\"quantity\":2,\"capture\":\"yes\"}", &e));
    ck_assert_str_eq(e.param, "capture");
}
END_TEST

START_TEST(duplicate_keys_and_huge_numbers_are_refused)
{
    json_error_t je;
    const char *dup = "{\"a\":1,\"a\":2}";
    ck_assert_ptr_null(json_loads_strict(dup, strlen(dup), &je));
    const char *huge = "{\"a\":123456789012345678901234567890}";
    ck_assert_ptr_null(json_loads_strict(huge, strlen(huge), &je));
}
END_TEST

START_TEST(log_masks_card_numbers)
{
    char line[] = "card 4242424242424242 and order 12345 and 4000000000000002x";
    size_t n = log_mask_pans(line, strlen(line));
    ck_assert_uint_eq(n, 2);
    ck_assert_ptr_null(strstr(line, "4242424242424242"));
    ck_assert_ptr_nonnull(strstr(line, "424242******4242"));
    ck_assert_ptr_nonnull(strstr(line, "12345"));
    /* not Luhn-valid: left alone */
    char other[] = "id 1234567890123456";
    ck_assert_uint_eq(log_mask_pans(other, strlen(other)), 0);
    /* written with spaces or dashes, 12 digits, or glued to an expiry date */
    char spaced[] = "4242 4242 4242 4242 / 4000-0000-0000-0002 / 123456789015 / "
                    "42424242424242421230";
    ck_assert_uint_eq(log_mask_pans(spaced, strlen(spaced)), 4);
    ck_assert_ptr_nonnull(strstr(spaced, "4242 42** **** 4242"));
    ck_assert_ptr_nonnull(strstr(spaced, "4000-00**-****-0002"));
    ck_assert_ptr_nonnull(strstr(spaced, "123456**9015"));
    ck_assert_ptr_null(strstr(spaced, "4242424242424242"));
    ck_assert_ptr_nonnull(strstr(spaced, "424242"));
    /* a sentence with numbers is not one run */
    char words[] = "3 items - 1299 each";
    ck_assert_uint_eq(log_mask_pans(words, strlen(words)), 0);
    /* spaces as a form or a URL encodes them */
    char encoded[] = "number=4242+4242+4242+4242&x=4000%200000%200000%200002";
    ck_assert_uint_eq(log_mask_pans(encoded, strlen(encoded)), 2);
    ck_assert_ptr_nonnull(strstr(encoded, "4242+42**+****+4242"));
    ck_assert_ptr_nonnull(strstr(encoded, "4000%2000**%20****%200002"));
    /* an IPv4 address is no card number, even when its digits pass Luhn */
    char ip[] = "client 192.168.100.209"; /* 192168100209 is Luhn-valid */
    ck_assert_uint_eq(log_mask_pans(ip, strlen(ip)), 0);
    /* a number past the first 64 digits of a long run is still found */
    char longrun[160];
    snprintf(longrun, sizeof longrun, "%s 4242424242424242",
             "1111111111111111111111111111111111111111111111111111111111111111");
    ck_assert_uint_ge(log_mask_pans(longrun, strlen(longrun)), 1);
    ck_assert_ptr_null(strstr(longrun, "4242424242424242"));
}
END_TEST

int main(void)
{
    h_init("test_json");
    Suite *s = suite_create("json");
    TCase *tc = h_tcase("jspec", 30);
    tcase_add_test(tc, valid_document_fills_destinations);
    tcase_add_test(tc, bad_fields_are_named);
    tcase_add_test(tc, duplicate_keys_and_huge_numbers_are_refused);
    tcase_add_test(tc, log_masks_card_numbers);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
