/* Unit: the vault's card rules on a table of published test numbers of
 * every supported brand and on invalid ones: normalisation, brand by
 * prefix, length and Luhn per brand, expiry, CVC length by brand, names. */
#include "tests/harness/harness.h"
#include "vault/card.h"
#include <string.h>

typedef struct {
    const char *number, *brand;
} valid_t;

/* Networks' and acquirers' published test numbers. */
static const valid_t valid[] = {
    {"4242424242424242", "visa"},       {"4000056655665556", "visa"},
    {"4012888888881881", "visa"},       {"4222222222222", "visa"}, /* 13 digits */
    {"4012888888881", "visa"},          {"4111111111111111", "visa"},
    {"5555555555554444", "mastercard"}, {"5200828282828210", "mastercard"},
    {"5105105105105100", "mastercard"}, {"2223003122003222", "mastercard"}, /* 2-series */
    {"2221000000000009", "mastercard"}, {"2720992720992729", "mastercard"},
    {"378282246310005", "amex"},        {"371449635398431", "amex"},
    {"340000000000009", "amex"},        {"6011111111111117", "discover"},
    {"6011000990139424", "discover"},   {"6011000000000000001", "discover"}, /* 19 digits */
    {"6445644564456445", "discover"},   {"6500000000000002", "discover"},
    {"3566002020360505", "jcb"},        {"3530111333300000", "jcb"},
    {"3589510000000001", "jcb"},        {"3056930009020004", "diners"},
    {"36227206271667", "diners"},       {"38520000023237", "diners"},
    {"30569309025904", "diners"},       {"3095000000000000", "diners"},
    {"6200000000000005", "unionpay"},   {"6205500000000000004", "unionpay"},
    {"6221260000000000", "unionpay"},   {"6759649826438453", "maestro"},
    {"5018000000000009", "maestro"},    {"6304000000000000", "maestro"},
    {"5893000000000009", "maestro"},    {"6771798021000008", "maestro"},
};

typedef struct {
    const char *number, *why;
} invalid_t;

static const invalid_t invalid[] = {
    {"4242424242424241", "Luhn"},
    {"5555555555554445", "Luhn"},
    {"378282246310006", "Luhn"},
    {"6011111111111118", "Luhn"},
    {"424242424242424", "15-digit visa (Luhn-valid)"},
    {"401288888888188100", "18-digit visa"},
    {"5555555555554444000", "19-digit mastercard (Luhn-valid)"},
    {"37828224631003", "14-digit amex (Luhn-valid)"},
    {"1234567812345670", "no such brand (Luhn-valid)"},
    {"9999999999999995", "no such brand"},
    {"42424242424", "11 digits"},
    {"42424242424242424242", "20 digits"},
    {"", "empty"},
    {"4242 4242  4242 4242", "double separator"},
    {" 4242424242424242", "leading separator"},
    {"4242424242424242 ", "trailing separator"},
    {"4242x42424242424242", "letter"},
    {"４２４２424242424242", "non-ASCII digits"},
};

START_TEST(published_test_numbers_are_valid_with_their_brand)
{
    for (size_t i = 0; i < PC_ARRAY_LEN(valid); i++) {
        char pan[CARD_PAN_MAX + 1];
        const card_brand_t *b = NULL;
        ck_assert_msg(card_normalize(valid[i].number, pan), "%s does not normalise",
                      valid[i].number);
        ck_assert_msg(card_number_ok(pan, &b), "%s refused", valid[i].number);
        ck_assert_ptr_nonnull(b);
        ck_assert_msg(!strcmp(b->name, valid[i].brand), "%s: brand %s, expected %s",
                      valid[i].number, b->name, valid[i].brand);
    }
}
END_TEST

START_TEST(invalid_numbers_are_refused)
{
    for (size_t i = 0; i < PC_ARRAY_LEN(invalid); i++) {
        char pan[CARD_PAN_MAX + 1];
        const card_brand_t *b = NULL;
        bool ok = card_normalize(invalid[i].number, pan) && card_number_ok(pan, &b);
        ck_assert_msg(!ok, "%s accepted (%s)", invalid[i].number, invalid[i].why);
    }
    /* control: the same rules accept an 18-digit diners number */
    const card_brand_t *b = NULL;
    ck_assert(card_number_ok("360000000000000008", &b));
}
END_TEST

START_TEST(separators_between_groups_are_accepted)
{
    char pan[CARD_PAN_MAX + 1];
    ck_assert(card_normalize("4242 4242 4242 4242", pan));
    ck_assert_str_eq(pan, "4242424242424242");
    ck_assert(card_normalize("3782-822463-10005", pan));
    ck_assert_str_eq(pan, "378282246310005");
}
END_TEST

START_TEST(brand_prefix_boundaries)
{
    /* 2-series mastercard is 2221..2720; 2220 and 2721 are nobody's */
    ck_assert_ptr_null(card_brand_detect("2220990000000000"));
    ck_assert_ptr_null(card_brand_detect("2721000000000000"));
    ck_assert_str_eq(card_brand_detect("2221000000000000")->name, "mastercard");
    ck_assert_str_eq(card_brand_detect("2720000000000000")->name, "mastercard");
    /* 51..55 mastercard, 50 and 56..58 maestro */
    ck_assert_str_eq(card_brand_detect("5100000000000000")->name, "mastercard");
    ck_assert_str_eq(card_brand_detect("5000000000000000")->name, "maestro");
    ck_assert_str_eq(card_brand_detect("5600000000000000")->name, "maestro");
    /* jcb 3528..3589; 3527 and 3590 are not */
    ck_assert_ptr_null(card_brand_detect("3527000000000000"));
    ck_assert_ptr_null(card_brand_detect("3590000000000000"));
    /* diners 300..305 and 3095; 306 is not */
    ck_assert_str_eq(card_brand_detect("3050000000000000")->name, "diners");
    ck_assert_ptr_null(card_brand_detect("3060000000000000"));
    /* discover 644..649; 643 is not */
    ck_assert_str_eq(card_brand_detect("6440000000000000")->name, "discover");
    ck_assert_ptr_null(card_brand_detect("6430000000000000"));
}
END_TEST

START_TEST(unionpay_does_not_require_luhn)
{
    char pan[CARD_PAN_MAX + 1];
    const card_brand_t *b;
    ck_assert(card_normalize("6200000000000001", pan));
    ck_assert(!card_luhn_ok(pan));
    ck_assert(card_number_ok(pan, &b));
    ck_assert_str_eq(b->name, "unionpay");
    /* but visa does */
    ck_assert(!card_number_ok("4242424242424241", &b));
}
END_TEST

START_TEST(expiry_rules)
{
    /* now = 2026-11 */
    ck_assert(card_expiry_ok(11, 2026, 2026, 11)); /* valid through the end of the month */
    ck_assert(card_expiry_ok(12, 2026, 2026, 11));
    ck_assert(card_expiry_ok(1, 2027, 2026, 11));
    ck_assert(card_expiry_ok(12, 2076, 2026, 11));
    ck_assert(!card_expiry_ok(10, 2026, 2026, 11)); /* last month */
    ck_assert(!card_expiry_ok(12, 2025, 2026, 11));
    ck_assert(!card_expiry_ok(1, 2077, 2026, 11)); /* more than 50 years ahead */
    ck_assert(!card_expiry_ok(0, 2030, 2026, 11));
    ck_assert(!card_expiry_ok(13, 2030, 2026, 11));
    ck_assert(!card_expiry_ok(-1, 2030, 2026, 11));
    ck_assert_int_eq(card_year_normalize(30), 2030);
    ck_assert_int_eq(card_year_normalize(2030), 2030);
    ck_assert_int_eq(card_year_normalize(0), 2000);
    /* and against the real clock */
    int y, m;
    card_now(&y, &m);
    ck_assert(card_expiry_ok(m, y, y, m));
    ck_assert(!card_expiry_ok(12, y - 1, y, m));
}
END_TEST

START_TEST(cvc_length_by_brand)
{
    const card_brand_t *visa = card_brand_detect("4242424242424242");
    const card_brand_t *amex = card_brand_detect("378282246310005");
    const card_brand_t *mc = card_brand_detect("5555555555554444");
    ck_assert(card_cvc_ok(visa, "123"));
    ck_assert(card_cvc_ok(mc, "000"));
    ck_assert(card_cvc_ok(amex, "1234"));
    ck_assert(card_cvc_ok(visa, NULL)); /* absent is allowed; has_cvc is then false */
    ck_assert(!card_cvc_ok(visa, "1234"));
    ck_assert(!card_cvc_ok(visa, "12"));
    ck_assert(!card_cvc_ok(amex, "123"));
    ck_assert(!card_cvc_ok(amex, "12345"));
    ck_assert(!card_cvc_ok(visa, "12a"));
    ck_assert(!card_cvc_ok(visa, ""));
    ck_assert(!card_cvc_ok(visa, " 12"));
}
END_TEST

START_TEST(cardholder_name_rules)
{
    char name[130];
    memset(name, 'a', 127);
    name[127] = '\0';
    ck_assert(card_name_ok(name));
    ck_assert(card_name_ok(NULL));
    ck_assert(card_name_ok("Zoë Ångström"));
    name[127] = 'a';
    name[128] = '\0';
    ck_assert(!card_name_ok(name));
    ck_assert(!card_name_ok("Ada\nLovelace"));
    ck_assert(!card_name_ok("Ada\x7f"));
}
END_TEST

int main(void)
{
    h_init("test_vault_card");
    Suite *s = suite_create("vault_card");
    TCase *tc = h_tcase("card", 60);
    tcase_add_test(tc, published_test_numbers_are_valid_with_their_brand);
    tcase_add_test(tc, invalid_numbers_are_refused);
    tcase_add_test(tc, separators_between_groups_are_accepted);
    tcase_add_test(tc, brand_prefix_boundaries);
    tcase_add_test(tc, unionpay_does_not_require_luhn);
    tcase_add_test(tc, expiry_rules);
    tcase_add_test(tc, cvc_length_by_brand);
    tcase_add_test(tc, cardholder_name_rules);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
