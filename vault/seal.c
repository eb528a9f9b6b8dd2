/* The vault's cryptography: card records, key wrapping, fingerprints and
 * small secrets, all AEAD with every binding field in the associated data. */
#include "vault/seal.h"
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(SEAL_NONCE == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, "nonce size");
_Static_assert(SEAL_KEY == crypto_aead_xchacha20poly1305_ietf_KEYBYTES, "key size");
_Static_assert(SEAL_TAG == crypto_aead_xchacha20poly1305_ietf_ABYTES, "tag size");
_Static_assert(SEAL_FP == crypto_auth_BYTES && SEAL_KEY == crypto_auth_KEYBYTES, "hmac sizes");

/* Record layout (fixed size, zero padded):
 * [0] format 1 | [1] pan length | [2..20] pan | [21] month | [22..23] year
 * | [24] name length | [25..151] name | zeros */
#define REC_FORMAT 1
#define REC_PAN    2
#define REC_MONTH  21
#define REC_YEAR   22
#define REC_NAMEL  24
#define REC_NAME   25

typedef struct {
    uint8_t *p;
    size_t len, cap;
} adbuf_t;

static void ad_bytes(adbuf_t *a, const void *d, size_t n)
{
    if (a->len + n <= a->cap) {
        memcpy(a->p + a->len, d, n);
        a->len += n;
    } else {
        a->len = a->cap + 1; /* poison: callers check */
    }
}

static void ad_str(adbuf_t *a, const char *s)
{
    size_t n = strlen(s);
    if (n > 255) {
        a->len = a->cap + 1; /* a truncated field would make encodings collide */
        return;
    }
    uint8_t l = (uint8_t)n;
    ad_bytes(a, &l, 1);
    ad_bytes(a, s, n);
}

static void ad_u32(adbuf_t *a, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    ad_bytes(a, b, 4);
}

size_t seal_card_ad(uint8_t ad[SEAL_AD_MAX], const char *token, const char *merchant,
                    uint32_t version)
{
    adbuf_t a = {ad, 0, SEAL_AD_MAX};
    ad_str(&a, "portcullis-vault-card-v1");
    ad_u32(&a, version);
    ad_str(&a, token);
    ad_str(&a, merchant);
    return a.len <= SEAL_AD_MAX ? a.len : 0;
}

static bool record_encode(const seal_card_t *c, uint8_t r[SEAL_RECORD])
{
    size_t pl = strlen(c->pan), nl = strlen(c->name);
    if (pl == 0 || pl > 19 || nl > 127 || c->exp_month < 1 || c->exp_month > 12 ||
        c->exp_year < 0 || c->exp_year > 0xffff)
        return false;
    memset(r, 0, SEAL_RECORD);
    r[0] = REC_FORMAT;
    r[1] = (uint8_t)pl;
    memcpy(r + REC_PAN, c->pan, pl);
    r[REC_MONTH] = (uint8_t)c->exp_month;
    r[REC_YEAR] = (uint8_t)(c->exp_year >> 8);
    r[REC_YEAR + 1] = (uint8_t)c->exp_year;
    r[REC_NAMEL] = (uint8_t)nl;
    memcpy(r + REC_NAME, c->name, nl);
    return true;
}

static bool record_decode(const uint8_t r[SEAL_RECORD], seal_card_t *c)
{
    if (r[0] != REC_FORMAT || r[1] == 0 || r[1] > 19 || r[REC_NAMEL] > 127)
        return false;
    memset(c, 0, sizeof *c);
    memcpy(c->pan, r + REC_PAN, r[1]);
    c->exp_month = r[REC_MONTH];
    c->exp_year = r[REC_YEAR] << 8 | r[REC_YEAR + 1];
    memcpy(c->name, r + REC_NAME, r[REC_NAMEL]);
    return true;
}

bool seal_card(const uint8_t key[SEAL_KEY], const char *token, const char *merchant,
               uint32_t version, const seal_card_t *card, uint8_t *scratch,
               uint8_t nonce[SEAL_NONCE], uint8_t ct[SEAL_CT])
{
    uint8_t ad[SEAL_AD_MAX];
    size_t adlen = seal_card_ad(ad, token, merchant, version);
    if (!adlen || !record_encode(card, scratch)) {
        sodium_memzero(scratch, SEAL_RECORD);
        return false;
    }
    randombytes_buf(nonce, SEAL_NONCE);
    crypto_aead_xchacha20poly1305_ietf_encrypt(ct, NULL, scratch, SEAL_RECORD, ad, adlen, NULL,
                                               nonce, key);
    sodium_memzero(scratch, SEAL_RECORD);
    return true;
}

bool seal_card_open(const uint8_t key[SEAL_KEY], const char *token, const char *merchant,
                    uint32_t version, const uint8_t nonce[SEAL_NONCE], const uint8_t *ct,
                    size_t ctlen, uint8_t *scratch, seal_card_t *card)
{
    uint8_t ad[SEAL_AD_MAX];
    size_t adlen = seal_card_ad(ad, token, merchant, version);
    bool ok = adlen && ctlen == SEAL_CT &&
              crypto_aead_xchacha20poly1305_ietf_decrypt(scratch, NULL, NULL, ct, ctlen, ad, adlen,
                                                         nonce, key) == 0 &&
              record_decode(scratch, card);
    sodium_memzero(scratch, SEAL_RECORD);
    if (!ok)
        sodium_memzero(card, sizeof *card);
    return ok;
}

static size_t wrap_ad(uint8_t ad[64], const char *label, uint32_t version)
{
    adbuf_t a = {ad, 0, 64};
    ad_str(&a, "portcullis-vault-key-v1");
    ad_str(&a, label);
    ad_u32(&a, version);
    return a.len <= 64 ? a.len : 0;
}

void seal_key_wrap(const uint8_t kek[SEAL_KEY], const char *label, uint32_t version,
                   const uint8_t key[SEAL_KEY], uint8_t out[SEAL_WRAPPED])
{
    uint8_t ad[64];
    size_t adlen = wrap_ad(ad, label, version);
    randombytes_buf(out, SEAL_NONCE);
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + SEAL_NONCE, NULL, key, SEAL_KEY, ad, adlen,
                                               NULL, out, kek);
}

bool seal_key_unwrap(const uint8_t kek[SEAL_KEY], const char *label, uint32_t version,
                     const uint8_t *in, size_t inlen, uint8_t key[SEAL_KEY])
{
    uint8_t ad[64];
    size_t adlen = wrap_ad(ad, label, version);
    if (inlen != SEAL_WRAPPED || !adlen)
        return false;
    return crypto_aead_xchacha20poly1305_ietf_decrypt(key, NULL, NULL, in + SEAL_NONCE,
                                                      SEAL_KEY + SEAL_TAG, ad, adlen, in, kek) == 0;
}

void seal_fingerprint(const uint8_t fpkey[SEAL_KEY], const char *merchant, const char *pan,
                      uint8_t out[SEAL_FP])
{
    /* crypto_kdf takes a 64-bit subkey id; a merchant id is a string, so the
     * id is the first 64 bits of its BLAKE2b hash (a collision would only
     * make two merchants share fingerprints, at odds of 2^-64 per pair). */
    uint8_t h[8], mk[SEAL_KEY];
    crypto_generichash(h, sizeof h, (const uint8_t *)merchant, strlen(merchant), NULL, 0);
    uint64_t id = 0;
    for (int i = 0; i < 8; i++)
        id = id << 8 | h[i];
    crypto_kdf_derive_from_key(mk, sizeof mk, id, "pcvfprnt", fpkey);
    crypto_auth(out, (const uint8_t *)pan, strlen(pan), mk);
    sodium_memzero(mk, sizeof mk);
}

void seal_fingerprint_text(const uint8_t fp[SEAL_FP], char out[SEAL_FP_TEXT])
{
    memcpy(out, "fp_", 3);
    sodium_bin2base64(out + 3, SEAL_FP_TEXT - 3, fp, SEAL_FP,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

static size_t secret_ad(uint8_t ad[SEAL_AD_MAX + 64], const char *merchant, const char *context)
{
    adbuf_t a = {ad, 0, SEAL_AD_MAX + 64};
    ad_str(&a, "portcullis-vault-secret-v1");
    ad_str(&a, merchant);
    ad_str(&a, context);
    return a.len <= SEAL_AD_MAX + 64 ? a.len : 0;
}

char *seal_secret(const uint8_t key[SEAL_KEY], const char *merchant, const char *context,
                  const uint8_t *plain, size_t len)
{
    uint8_t ad[SEAL_AD_MAX + 64];
    size_t adlen = secret_ad(ad, merchant, context);
    size_t blen = SEAL_NONCE + len + SEAL_TAG;
    uint8_t *bin = malloc(blen);
    size_t tlen = sodium_base64_ENCODED_LEN(blen, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *text = malloc(strlen(SEAL_SECRET_PREFIX) + tlen);
    if (!adlen || !bin || !text) {
        free(bin);
        free(text);
        return NULL;
    }
    randombytes_buf(bin, SEAL_NONCE);
    crypto_aead_xchacha20poly1305_ietf_encrypt(bin + SEAL_NONCE, NULL, plain, len, ad, adlen, NULL,
                                               bin, key);
    strcpy(text, SEAL_SECRET_PREFIX);
    sodium_bin2base64(text + strlen(SEAL_SECRET_PREFIX), tlen, bin, blen,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    free(bin);
    return text;
}

bool seal_secret_open(const uint8_t key[SEAL_KEY], const char *merchant, const char *context,
                      const char *sealed, uint8_t *out, size_t cap, size_t *outlen)
{
    size_t pl = strlen(SEAL_SECRET_PREFIX);
    if (strncmp(sealed, SEAL_SECRET_PREFIX, pl) != 0)
        return false;
    const char *b64 = sealed + pl;
    size_t maxbin = strlen(b64) / 4 * 3 + 3, blen = 0;
    uint8_t *bin = malloc(maxbin);
    uint8_t ad[SEAL_AD_MAX + 64];
    size_t adlen = secret_ad(ad, merchant, context);
    bool ok = bin && adlen &&
              sodium_base642bin(bin, maxbin, b64, strlen(b64), NULL, &blen, NULL,
                                sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0 &&
              blen >= SEAL_NONCE + SEAL_TAG && blen - SEAL_NONCE - SEAL_TAG <= cap;
    unsigned long long n = 0;
    ok = ok && crypto_aead_xchacha20poly1305_ietf_decrypt(
                   out, &n, NULL, bin + SEAL_NONCE, blen - SEAL_NONCE, ad, adlen, bin, key) == 0;
    free(bin);
    *outlen = ok ? (size_t)n : 0;
    return ok;
}
