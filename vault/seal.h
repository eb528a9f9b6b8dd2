/* vault/seal: the vault's cryptography on libsodium, private to vault/.
 * Card records and small secrets are sealed with XChaCha20-Poly1305 (random
 * 192-bit nonces, so no nonce bookkeeping across processes); data keys are
 * wrapped by the KEK the same way; PAN fingerprints are HMAC-SHA-512-256
 * (crypto_auth) under a per-merchant key derived with crypto_kdf. */
#ifndef PORTCULLIS_VAULT_SEAL_H
#define PORTCULLIS_VAULT_SEAL_H

#include "util/util.h"

#define SEAL_KEY     32
#define SEAL_NONCE   24
#define SEAL_TAG     16
#define SEAL_AD_MAX  160
#define SEAL_RECORD  160 /* fixed plaintext size: the ciphertext never tells a PAN's length */
#define SEAL_CT      (SEAL_RECORD + SEAL_TAG)
#define SEAL_WRAPPED (SEAL_NONCE + SEAL_KEY + SEAL_TAG)
#define SEAL_FP      32
#define SEAL_FP_TEXT 80

/* The plaintext of a card record; callers keep it in sodium_malloc'd memory. */
typedef struct {
    char pan[20];
    int exp_month, exp_year;
    char name[128];
} seal_card_t;

/* Associated data of a card record: token, merchant and key version, each
 * length-prefixed so that no two distinct triples encode alike. */
size_t seal_card_ad(uint8_t ad[SEAL_AD_MAX], const char *token, const char *merchant,
                    uint32_t version);
/* Seals `card` under `key`; nonce and ct are outputs. */
bool seal_card(const uint8_t key[SEAL_KEY], const char *token, const char *merchant,
               uint32_t version, const seal_card_t *card, uint8_t *scratch /* SEAL_RECORD */,
               uint8_t nonce[SEAL_NONCE], uint8_t ct[SEAL_CT]) PC_WUR;
/* Opens a record; false when anything was altered (ct, nonce, token,
 * merchant or version) or the layout is invalid. `card` is wiped on failure. */
bool seal_card_open(const uint8_t key[SEAL_KEY], const char *token, const char *merchant,
                    uint32_t version, const uint8_t nonce[SEAL_NONCE], const uint8_t *ct,
                    size_t ctlen, uint8_t *scratch /* SEAL_RECORD */, seal_card_t *card) PC_WUR;

/* Key wrapping under the KEK; `label` ("data", "fingerprint", "secrets")
 * and `version` are bound as associated data. */
void seal_key_wrap(const uint8_t kek[SEAL_KEY], const char *label, uint32_t version,
                   const uint8_t key[SEAL_KEY], uint8_t out[SEAL_WRAPPED]);
bool seal_key_unwrap(const uint8_t kek[SEAL_KEY], const char *label, uint32_t version,
                     const uint8_t *in, size_t inlen, uint8_t key[SEAL_KEY]) PC_WUR;

/* Keyed fingerprint of a PAN for one merchant. */
void seal_fingerprint(const uint8_t fpkey[SEAL_KEY], const char *merchant, const char *pan,
                      uint8_t out[SEAL_FP]);
/* "fp_" + URL-safe base64 (no padding). */
void seal_fingerprint_text(const uint8_t fp[SEAL_FP], char out[SEAL_FP_TEXT]);

/* Small secrets: "vs1." + URL-safe base64 of nonce || ciphertext, bound to
 * merchant and context. */
#define SEAL_SECRET_PREFIX "vs1."
char *seal_secret(const uint8_t key[SEAL_KEY], const char *merchant, const char *context,
                  const uint8_t *plain, size_t len) PC_WUR;
/* Writes the plaintext to out (cap bytes, in guarded memory); false when
 * the text is malformed or does not open under this merchant and context. */
bool seal_secret_open(const uint8_t key[SEAL_KEY], const char *merchant, const char *context,
                      const char *sealed, uint8_t *out, size_t cap, size_t *outlen) PC_WUR;

#endif
