/* Unit: the BIN range table. The shipped table knows the sandbox test cards
 * and the brand-wide ranges, the most specific range wins, and a bad file
 * is refused naming its line. */
#include "fraud/fraud.h"
#include "tests/harness/harness.h"
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void expect(const fraud_bins_t *b, const char *bin, const char *brand, const char *country,
                   const char *funding)
{
    fraud_bin_info_t bi;
    ck_assert_msg(fraud_bins_lookup(b, bin, &bi), "%s not found", bin);
    ck_assert_msg(!strcmp(bi.brand, brand) && !strcmp(bi.country, country) &&
                      !strcmp(bi.funding, funding),
                  "%s: got %s/%s/%s, expected %s/%s/%s", bin, bi.brand, bi.country, bi.funding,
                  brand, country, funding);
}

START_TEST(shipped_table_knows_the_sandbox_cards)
{
    fraud_bins_t *b = fraud_bins_default();
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_gt(fraud_bins_count(b), 40);
    expect(b, "424242", "visa", "US", "credit");
    expect(b, "400000", "visa", "US", "credit"); /* the decline test cards */
    expect(b, "555555", "mastercard", "US", "credit");
    expect(b, "378282", "amex", "US", "credit");
    expect(b, "510510", "mastercard", "US", "prepaid");
    expect(b, "40000082", "visa", "GB", "credit");
    expect(b, "40000025", "visa", "FR", "credit");
    fraud_bins_free(b);
}
END_TEST

START_TEST(longest_prefix_wins)
{
    fraud_bins_t *b = fraud_bins_default();
    expect(b, "411111", "visa", "", "");          /* brand-wide range only */
    expect(b, "45710012", "visa", "DK", "debit"); /* 4571 beats 4 */
    expect(b, "222100", "mastercard", "", "");    /* 2-series range 2221-2720 */
    expect(b, "272099", "mastercard", "", "");
    expect(b, "622126", "discover", "", ""); /* 622126-622925 beats UnionPay's 62 */
    expect(b, "622125", "unionpay", "", "");
    expect(b, "40000099", "visa", "US", "credit");         /* no 8-digit entry: the 6-digit one */
    expect(b, "4242424242424242", "visa", "US", "credit"); /* only 8 digits are ever used */
    fraud_bin_info_t bi;
    ck_assert(!fraud_bins_lookup(b, "999999", &bi));
    ck_assert(!fraud_bins_lookup(b, "", &bi));
    ck_assert(!fraud_bins_lookup(b, NULL, &bi));
    ck_assert(!fraud_bins_lookup(b, "4242x4", &bi));
    ck_assert(!fraud_bins_lookup(NULL, "424242", &bi));
    ck_assert_str_eq(bi.brand, "");
    fraud_bins_free(b);
}
END_TEST

static void refused(const char *text, const char *words)
{
    char err[200] = "";
    fraud_bins_t *b = fraud_bins_parse(text, strlen(text), err, sizeof err);
    ck_assert_msg(b == NULL, "accepted: %s", text);
    ck_assert_msg(strstr(err, words), "error \"%s\" lacks \"%s\"", err, words);
}

START_TEST(bad_files_are_refused_naming_the_line)
{
    refused("low,high,brand,country,funding\n4,4,visa,,\n5,5,visa,,,\n", "line 3: expected 5");
    refused("4,4,visa,,\n51,5,mastercard,,\n", "line 2: low and high");
    refused("55,51,mastercard,,\n", "line 1: low is greater");
    refused("4,4,Visa,,\n", "line 1: brand");
    refused("4,4,visa,usa,\n", "line 1: country");
    refused("4,4,visa,US,Credit\n", "line 1: funding");
    refused("123456789,123456789,visa,,\n", "line 1: low and high");
    refused("# a comment\n4000,4999,visa,,\n\n4500,4500,visa,US,\n", "line 4 overlaps line 2");
}
END_TEST

START_TEST(files_load_with_comments_and_crlf)
{
    const char *text = "low,high,brand,country,funding\r\n# test table\r\n\r\n"
                       "35,35,jcb,JP,credit\r\n353011,353011,jcb,JP,debit\r\n";
    char *path = str_printf("%s/bins.csv", h_workdir());
    ck_assert_int_eq(file_write_atomic(path, text, strlen(text), 0644), 0);
    char err[300] = "";
    fraud_bins_t *b = fraud_bins_load(path, err, sizeof err);
    ck_assert_msg(b != NULL, "%s", err);
    ck_assert_uint_eq(fraud_bins_count(b), 2);
    expect(b, "353011", "jcb", "JP", "debit");
    expect(b, "350000", "jcb", "JP", "credit");
    fraud_bins_free(b);
    unlink(path);
    ck_assert_ptr_null(fraud_bins_load(path, err, sizeof err));
    ck_assert_msg(strstr(err, path) && strstr(err, "cannot read"), "%s", err);
    free(path);
}
END_TEST

START_TEST(bin_info_fills_features)
{
    fraud_bins_t *b = fraud_bins_default();
    fraud_bin_info_t bi;
    ck_assert(fraud_bins_lookup(b, "510510", &bi));
    fraud_features_t f = {.bin = "510510"};
    fraud_features_apply_bin(&f, &bi);
    ck_assert_str_eq(f.card_country, "US");
    ck_assert_str_eq(f.card_funding, "prepaid");
    ck_assert_str_eq(f.card_brand, "mastercard");
    /* a brand-wide range leaves country and funding absent, brand as given */
    fraud_features_t g = {.bin = "411111", .card_brand = "visa"};
    ck_assert(fraud_bins_lookup(b, "411111", &bi));
    fraud_features_apply_bin(&g, &bi);
    ck_assert_ptr_null(g.card_country);
    ck_assert_ptr_null(g.card_funding);
    fraud_bins_free(b);
}
END_TEST

int main(void)
{
    h_init("test_fraud_bins");
    Suite *s = suite_create("fraud_bins");
    TCase *tc = h_tcase("bins", 60);
    tcase_add_test(tc, shipped_table_knows_the_sandbox_cards);
    tcase_add_test(tc, longest_prefix_wins);
    tcase_add_test(tc, bad_files_are_refused_naming_the_line);
    tcase_add_test(tc, files_load_with_comments_and_crlf);
    tcase_add_test(tc, bin_info_fills_features);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
