/* Unit: API keys are random, role-prefixed, and stored only as keyed hashes. */
#include "gateway/gateway.h"
#include "tests/harness/harness.h"
#include <sodium.h>
#include <string.h>

START_TEST(generated_keys_have_role_prefix_and_entropy)
{
    char a[GW_KEY_MAX], b[GW_KEY_MAX];
    gw_key_generate(GW_ROLE_SK, a);
    ck_assert(!strncmp(a, "sk_test_", 8));
    ck_assert_uint_eq(strlen(a), 8 + GW_KEY_RANDOM_CHARS);
    ck_assert_int_eq(gw_key_role(a), GW_ROLE_SK);
    gw_key_generate(GW_ROLE_PK, b);
    ck_assert_int_eq(gw_key_role(b), GW_ROLE_PK);
    gw_key_generate(GW_ROLE_AK, b);
    ck_assert_int_eq(gw_key_role(b), GW_ROLE_AK);
    /* 1,000 keys, no repeats */
    static char keys[1000][GW_KEY_MAX];
    for (int i = 0; i < 1000; i++)
        gw_key_generate(GW_ROLE_SK, keys[i]);
    for (int i = 0; i < 1000; i++)
        for (int j = i + 1; j < 1000; j++)
            ck_assert(strcmp(keys[i], keys[j]));
}
END_TEST

START_TEST(malformed_keys_have_no_role)
{
    ck_assert_int_eq(gw_key_role(NULL), 0);
    ck_assert_int_eq(gw_key_role(""), 0);
    ck_assert_int_eq(gw_key_role("sk_test_short"), 0);
    ck_assert_int_eq(gw_key_role("xk_test_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), 0);
    ck_assert_int_eq(gw_key_role("sk_prod_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), 0);
    ck_assert_int_eq(gw_key_role("sk_test_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA$A"), 0);
    ck_assert_int_eq(gw_key_role("sk_test_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), GW_ROLE_SK);
}
END_TEST

START_TEST(hash_is_keyed_by_the_pepper)
{
    secret_t *p1 = secret_from_bytes("pepper-one-0123456789abcdef012345", 32);
    secret_t *p2 = secret_from_bytes("pepper-two-0123456789abcdef012345", 32);
    unsigned char h1[32], h1b[32], h2[32], h3[32];
    gw_key_hash(p1, "sk_test_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", h1);
    gw_key_hash(p1, "sk_test_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", h1b);
    gw_key_hash(p2, "sk_test_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", h2);
    gw_key_hash(p1, "sk_test_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB", h3);
    ck_assert(mem_equal_ct(h1, h1b, 32));
    ck_assert(!mem_equal_ct(h1, h2, 32));
    ck_assert(!mem_equal_ct(h1, h3, 32));
    /* an unkeyed hash of the key is not what is stored */
    unsigned char plain[32];
    crypto_generichash(plain, 32, (const unsigned char *)"sk_test_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                       40, NULL, 0);
    ck_assert(!mem_equal_ct(h1, plain, 32));
    secret_free(p1);
    secret_free(p2);
}
END_TEST

START_TEST(display_form_cannot_be_used)
{
    char k[GW_KEY_MAX], d[GW_KEY_MAX];
    gw_key_generate(GW_ROLE_SK, k);
    gw_key_display(k, d);
    ck_assert(!strncmp(d, k, 12));
    ck_assert_ptr_nonnull(strstr(d, "..."));
    ck_assert_uint_lt(strlen(d), 24);
    ck_assert_int_eq(gw_key_role(d), 0);
}
END_TEST

int main(void)
{
    h_init("test_keys");
    Suite *s = suite_create("keys");
    TCase *tc = h_tcase("keys", 60);
    tcase_add_test(tc, generated_keys_have_role_prefix_and_entropy);
    tcase_add_test(tc, malformed_keys_have_no_role);
    tcase_add_test(tc, hash_is_keyed_by_the_pepper);
    tcase_add_test(tc, display_form_cannot_be_used);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
