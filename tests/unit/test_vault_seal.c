/* Unit: the vault's sealing. Flipping one byte of a card record's
 * ciphertext, nonce, or any associated-data field (token, merchant, key
 * version) fails decryption in 10,000 of 10,000 tries each; wrapped keys and
 * sealed secrets are bound the same way; fingerprints are keyed per
 * merchant. */
#include "tests/harness/harness.h"
#include "vault/seal.h"
#include <sodium.h>
#include <string.h>

#define TRIES 10000

typedef struct {
    uint8_t key[SEAL_KEY];
    char token[IDS_MAX], merchant[IDS_MAX];
    uint32_t version;
    uint8_t nonce[SEAL_NONCE], ct[SEAL_CT];
} sealed_t;

static uint8_t scratch[SEAL_RECORD];

static const seal_card_t card = {
    .pan = "4242424242424242", .exp_month = 12, .exp_year = 2030, .name = "Ada Lovelace"};

static void fresh(sealed_t *s)
{
    randombytes_buf(s->key, sizeof s->key);
    ids_new(s->token, sizeof s->token, "tok_");
    ids_new(s->merchant, sizeof s->merchant, "mer_");
    s->version = 1 + randombytes_uniform(1000);
    ck_assert(
        seal_card(s->key, s->token, s->merchant, s->version, &card, scratch, s->nonce, s->ct));
}

static bool opens(const sealed_t *s)
{
    seal_card_t out;
    bool ok = seal_card_open(s->key, s->token, s->merchant, s->version, s->nonce, s->ct, SEAL_CT,
                             scratch, &out);
    if (ok) {
        ck_assert_str_eq(out.pan, card.pan);
        ck_assert_str_eq(out.name, card.name);
        ck_assert_int_eq(out.exp_month, 12);
        ck_assert_int_eq(out.exp_year, 2030);
    } else {
        /* a failed open leaves nothing behind */
        static const seal_card_t zero;
        ck_assert(memcmp(&out, &zero, sizeof out) == 0);
    }
    return ok;
}

static void flip(uint8_t *p, size_t n)
{
    p[randombytes_uniform((uint32_t)n)] ^= (uint8_t)(1 + randombytes_uniform(255));
}

/* Flips one byte of a printable string, keeping it a C string of the same
 * length (a NUL would shorten it: that is a different test). */
static void flip_str(char *s)
{
    size_t n = strlen(s);
    size_t i = randombytes_uniform((uint32_t)n);
    uint8_t x;
    do
        x = (uint8_t)(1 + randombytes_uniform(255));
    while ((uint8_t)(s[i] ^ x) == 0);
    s[i] = (char)(s[i] ^ x);
}

START_TEST(flipped_ciphertext_byte_never_opens)
{
    int failed = 0;
    for (int i = 0; i < TRIES; i++) {
        sealed_t s;
        fresh(&s);
        ck_assert(opens(&s));
        flip(s.ct, SEAL_CT);
        failed += !opens(&s);
    }
    ck_assert_int_eq(failed, TRIES);
}
END_TEST

START_TEST(flipped_nonce_byte_never_opens)
{
    int failed = 0;
    for (int i = 0; i < TRIES; i++) {
        sealed_t s;
        fresh(&s);
        ck_assert(opens(&s));
        flip(s.nonce, SEAL_NONCE);
        failed += !opens(&s);
    }
    ck_assert_int_eq(failed, TRIES);
}
END_TEST

START_TEST(flipped_token_byte_never_opens)
{
    int failed = 0;
    for (int i = 0; i < TRIES; i++) {
        sealed_t s;
        fresh(&s);
        ck_assert(opens(&s));
        flip_str(s.token);
        failed += !opens(&s);
    }
    ck_assert_int_eq(failed, TRIES);
}
END_TEST

START_TEST(flipped_merchant_byte_never_opens)
{
    int failed = 0;
    for (int i = 0; i < TRIES; i++) {
        sealed_t s;
        fresh(&s);
        ck_assert(opens(&s));
        flip_str(s.merchant);
        failed += !opens(&s);
    }
    ck_assert_int_eq(failed, TRIES);
}
END_TEST

START_TEST(flipped_key_version_byte_never_opens)
{
    int failed = 0;
    for (int i = 0; i < TRIES; i++) {
        sealed_t s;
        fresh(&s);
        ck_assert(opens(&s));
        uint8_t v[4];
        memcpy(v, &s.version, 4);
        flip(v, 4);
        memcpy(&s.version, v, 4);
        failed += !opens(&s);
    }
    ck_assert_int_eq(failed, TRIES);
}
END_TEST

START_TEST(truncated_or_other_key_never_opens)
{
    sealed_t s;
    fresh(&s);
    seal_card_t out;
    ck_assert(!seal_card_open(s.key, s.token, s.merchant, s.version, s.nonce, s.ct, SEAL_CT - 1,
                              scratch, &out));
    s.key[0] ^= 1;
    ck_assert(!opens(&s));
    /* merchant and token swapped: the encoding keeps fields apart */
    sealed_t t;
    fresh(&t);
    char tmp[IDS_MAX];
    memcpy(tmp, t.token, sizeof tmp);
    memcpy(t.token, t.merchant, sizeof tmp);
    memcpy(t.merchant, tmp, sizeof tmp);
    ck_assert(!opens(&t));
}
END_TEST

START_TEST(records_have_one_size_whatever_the_card)
{
    uint8_t key[SEAL_KEY], nonce[SEAL_NONCE], ct1[SEAL_CT], ct2[SEAL_CT];
    randombytes_buf(key, sizeof key);
    seal_card_t short_card = {.pan = "4222222222222", .exp_month = 1, .exp_year = 2030};
    seal_card_t long_card = {.pan = "6205500000000000004", .exp_month = 1, .exp_year = 2030};
    memset(long_card.name, 'x', 127);
    ck_assert(seal_card(key, "tok_a", "mer_a", 1, &short_card, scratch, nonce, ct1));
    ck_assert(seal_card(key, "tok_a", "mer_a", 1, &long_card, scratch, nonce, ct2));
    /* SEAL_CT is the only size there is; and nothing of the PAN is visible */
    ck_assert(memmem(ct2, SEAL_CT, "6205500000000000004", 19) == NULL);
    seal_card_t bad = {.pan = "", .exp_month = 1, .exp_year = 2030};
    ck_assert(!seal_card(key, "tok_a", "mer_a", 1, &bad, scratch, nonce, ct1));
    bad = (seal_card_t){.pan = "4242424242424242", .exp_month = 13, .exp_year = 2030};
    ck_assert(!seal_card(key, "tok_a", "mer_a", 1, &bad, scratch, nonce, ct1));
}
END_TEST

START_TEST(wrapped_keys_are_bound_to_label_and_version)
{
    uint8_t kek[SEAL_KEY], key[SEAL_KEY], out[SEAL_KEY], w[SEAL_WRAPPED];
    randombytes_buf(kek, sizeof kek);
    randombytes_buf(key, sizeof key);
    seal_key_wrap(kek, "data", 7, key, w);
    ck_assert(seal_key_unwrap(kek, "data", 7, w, sizeof w, out));
    ck_assert(memcmp(out, key, SEAL_KEY) == 0);
    ck_assert(!seal_key_unwrap(kek, "data", 8, w, sizeof w, out));
    ck_assert(!seal_key_unwrap(kek, "fingerprint", 7, w, sizeof w, out));
    ck_assert(!seal_key_unwrap(kek, "data", 7, w, sizeof w - 1, out));
    int failed = 0;
    for (int i = 0; i < TRIES; i++) {
        uint8_t t[SEAL_WRAPPED];
        memcpy(t, w, sizeof t);
        flip(t, sizeof t);
        failed += !seal_key_unwrap(kek, "data", 7, t, sizeof t, out);
    }
    ck_assert_int_eq(failed, TRIES);
    kek[5] ^= 0x40; /* a wrong KEK */
    ck_assert(!seal_key_unwrap(kek, "data", 7, w, sizeof w, out));
}
END_TEST

START_TEST(fingerprints_are_keyed_per_merchant)
{
    uint8_t fk[SEAL_KEY], other[SEAL_KEY];
    randombytes_buf(fk, sizeof fk);
    randombytes_buf(other, sizeof other);
    uint8_t a1[SEAL_FP], a2[SEAL_FP], b[SEAL_FP], c[SEAL_FP], k2[SEAL_FP], plain[SEAL_FP];
    seal_fingerprint(fk, "mer_a", "4242424242424242", a1);
    seal_fingerprint(fk, "mer_a", "4242424242424242", a2);
    seal_fingerprint(fk, "mer_b", "4242424242424242", b);
    seal_fingerprint(fk, "mer_a", "4000056655665556", c);
    seal_fingerprint(other, "mer_a", "4242424242424242", k2);
    ck_assert(memcmp(a1, a2, SEAL_FP) == 0); /* stable for one merchant */
    ck_assert(memcmp(a1, b, SEAL_FP) != 0);  /* differs across merchants */
    ck_assert(memcmp(a1, c, SEAL_FP) != 0);
    ck_assert(memcmp(a1, k2, SEAL_FP) != 0); /* keyed */
    /* not HMAC under the master key itself: the per-merchant key is derived */
    crypto_auth(plain, (const uint8_t *)"4242424242424242", 16, fk);
    ck_assert(memcmp(a1, plain, SEAL_FP) != 0);
    char text[SEAL_FP_TEXT];
    seal_fingerprint_text(a1, text);
    ck_assert(!strncmp(text, "fp_", 3));
    ck_assert_uint_eq(strlen(text), 3 + 43);
    ck_assert_ptr_null(strstr(text, "4242"));
}
END_TEST

START_TEST(sealed_secrets_open_only_for_their_merchant_and_context)
{
    uint8_t key[SEAL_KEY], out[256];
    size_t n;
    randombytes_buf(key, sizeof key);
    const char *secret = "sk_live_provider_credential";
    char *s = seal_secret(key, "mer_a", "provider:stripe", (const uint8_t *)secret, strlen(secret));
    ck_assert_ptr_nonnull(s);
    ck_assert(!strncmp(s, "vs1.", 4));
    ck_assert_ptr_null(strstr(s, "sk_live"));
    ck_assert(seal_secret_open(key, "mer_a", "provider:stripe", s, out, sizeof out, &n));
    ck_assert_uint_eq(n, strlen(secret));
    ck_assert(!memcmp(out, secret, n));
    ck_assert(!seal_secret_open(key, "mer_b", "provider:stripe", s, out, sizeof out, &n));
    ck_assert(!seal_secret_open(key, "mer_a", "provider:adyen", s, out, sizeof out, &n));
    ck_assert(!seal_secret_open(key, "mer_a", "provider:stripe", s, out, 4, &n)); /* no room */
    ck_assert(!seal_secret_open(key, "mer_a", "provider:stripe", "vs1.", out, sizeof out, &n));
    ck_assert(!seal_secret_open(key, "mer_a", "provider:stripe", "vs2.AAAA", out, sizeof out, &n));
    ck_assert(!seal_secret_open(key, "mer_a", "provider:stripe", "vs1.!!!!", out, sizeof out, &n));
    int failed = 0;
    size_t len = strlen(s);
    for (int i = 0; i < TRIES; i++) {
        char *t = strdup(s);
        /* change one base64 character to another base64 character */
        size_t at = 4 + randombytes_uniform((uint32_t)(len - 4));
        static const char b64[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        char c;
        do
            c = b64[randombytes_uniform(64)];
        while (c == t[at]);
        t[at] = c;
        failed += !seal_secret_open(key, "mer_a", "provider:stripe", t, out, sizeof out, &n);
        free(t);
    }
    ck_assert_int_eq(failed, TRIES);
    free(s);
}
END_TEST

int main(void)
{
    h_init("test_vault_seal");
    Suite *s = suite_create("vault_seal");
    TCase *tc = h_tcase("tamper", 300);
    tcase_add_test(tc, flipped_ciphertext_byte_never_opens);
    tcase_add_test(tc, flipped_nonce_byte_never_opens);
    tcase_add_test(tc, flipped_token_byte_never_opens);
    tcase_add_test(tc, flipped_merchant_byte_never_opens);
    tcase_add_test(tc, flipped_key_version_byte_never_opens);
    tcase_add_test(tc, truncated_or_other_key_never_opens);
    tcase_add_test(tc, records_have_one_size_whatever_the_card);
    tcase_add_test(tc, wrapped_keys_are_bound_to_label_and_version);
    tcase_add_test(tc, fingerprints_are_keyed_per_merchant);
    tcase_add_test(tc, sealed_secrets_open_only_for_their_merchant_and_context);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
