/* vault/card: the card rules vaultd applies before it stores anything:
 * number normalisation, brand by issuer prefix, length and Luhn per brand,
 * expiry, CVC length. Pure functions, private to vault/ (and its tests). */
#ifndef PORTCULLIS_VAULT_CARD_H
#define PORTCULLIS_VAULT_CARD_H

#include "util/util.h"

#define CARD_PAN_MAX 19

typedef struct {
    const char *name;  /* "visa", "mastercard", ... (the API's brand) */
    uint32_t lengths;  /* bit n set = n digits allowed */
    int cvc_len;       /* 3 or 4 */
    bool luhn;         /* false only where issuers really print non-Luhn numbers */
    bool cvc_optional; /* accepted without a CVC at all (always true today) */
} card_brand_t;

/* Copies the digits of `in` (digits, single spaces or dashes between
 * groups allowed) into out; false on anything else or a length outside
 * 12..19. */
bool card_normalize(const char *in, char out[CARD_PAN_MAX + 1]) PC_WUR;
/* Brand by issuer prefix; NULL if none of the supported brands. */
const card_brand_t *card_brand_detect(const char *digits);
bool card_luhn_ok(const char *digits);
/* Normalised number valid for its brand (prefix, length, Luhn). */
bool card_number_ok(const char *digits, const card_brand_t **brand) PC_WUR;
/* Two-digit years are 20YY. */
int card_year_normalize(int year);
/* Valid through the end of the expiry month; at most 50 years ahead. */
bool card_expiry_ok(int month, int year, int now_year, int now_month);
/* cvc NULL = absent. */
bool card_cvc_ok(const card_brand_t *b, const char *cvc);
/* Cardholder name: up to 127 bytes, no control characters (NULL = absent). */
bool card_name_ok(const char *name);
/* The UTC year and month now. */
void card_now(int *year, int *month);

#endif
