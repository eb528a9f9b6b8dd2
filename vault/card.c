/* Card rules: brand by issuer prefix (longest prefix wins), length and Luhn
 * per brand, expiry and CVC. The prefix table follows the networks'
 * published IIN ranges; a number outside every range is refused rather than
 * stored as "unknown", because no provider could route it. */
#include "vault/card.h"
#include <string.h>
#include <time.h>

#define LEN(n)       (1u << (n))
#define LENS(lo, hi) ((uint32_t)(((1ull << ((hi) + 1)) - 1) & ~((1ull << (lo)) - 1)))

static const card_brand_t VISA = {"visa", LEN(13) | LEN(16) | LEN(19), 3, true, true};
static const card_brand_t MASTERCARD = {"mastercard", LEN(16), 3, true, true};
static const card_brand_t AMEX = {"amex", LEN(15), 4, true, true};
static const card_brand_t DISCOVER = {"discover", LENS(16, 19), 3, true, true};
static const card_brand_t JCB = {"jcb", LENS(16, 19), 3, true, true};
static const card_brand_t DINERS = {"diners", LENS(14, 19), 3, true, true};
/* UnionPay issues numbers that fail Luhn (older 19-digit debit cards); the
 * network itself does not require it, so neither do we. */
static const card_brand_t UNIONPAY = {"unionpay", LENS(16, 19), 3, false, true};
static const card_brand_t MAESTRO = {"maestro", LENS(12, 19), 3, true, true};

typedef struct {
    int digits;      /* prefix length */
    unsigned lo, hi; /* inclusive range of that prefix */
    const card_brand_t *brand;
} prefix_t;

/* Longest prefixes first: the first match wins. */
static const prefix_t prefixes[] = {
    {4, 2221, 2720, &MASTERCARD},
    {4, 6011, 6011, &DISCOVER},
    {4, 3528, 3589, &JCB},
    {4, 3095, 3095, &DINERS},
    {4, 6304, 6304, &MAESTRO},
    {4, 6390, 6390, &MAESTRO},
    {3, 300, 305, &DINERS},
    {3, 644, 649, &DISCOVER},
    {2, 34, 34, &AMEX},
    {2, 37, 37, &AMEX},
    {2, 51, 55, &MASTERCARD},
    {2, 36, 36, &DINERS},
    {2, 38, 39, &DINERS},
    {2, 65, 65, &DISCOVER},
    {2, 62, 62, &UNIONPAY},
    {2, 50, 50, &MAESTRO},
    {2, 56, 58, &MAESTRO},
    {2, 67, 67, &MAESTRO},
    {1, 4, 4, &VISA},
};

bool card_normalize(const char *in, char out[CARD_PAN_MAX + 1])
{
    size_t n = 0;
    bool prev_sep = true; /* no leading separator */
    for (const char *p = in; *p; p++) {
        if (*p >= '0' && *p <= '9') {
            if (n == CARD_PAN_MAX)
                return false;
            out[n++] = *p;
            prev_sep = false;
        } else if ((*p == ' ' || *p == '-') && !prev_sep && p[1]) {
            prev_sep = true;
        } else {
            return false;
        }
    }
    out[n] = '\0';
    return n >= 12;
}

const card_brand_t *card_brand_detect(const char *digits)
{
    size_t n = strlen(digits);
    for (size_t i = 0; i < PC_ARRAY_LEN(prefixes); i++) {
        const prefix_t *p = &prefixes[i];
        if ((size_t)p->digits > n)
            continue;
        unsigned v = 0;
        for (int d = 0; d < p->digits; d++)
            v = v * 10 + (unsigned)(digits[d] - '0');
        if (v >= p->lo && v <= p->hi)
            return p->brand;
    }
    return NULL;
}

bool card_luhn_ok(const char *digits)
{
    size_t n = strlen(digits);
    int sum = 0;
    bool dbl = false;
    for (size_t i = n; i-- > 0;) {
        int v = digits[i] - '0';
        if (v < 0 || v > 9)
            return false;
        if (dbl) {
            v *= 2;
            if (v > 9)
                v -= 9;
        }
        sum += v;
        dbl = !dbl;
    }
    return n > 0 && sum % 10 == 0;
}

bool card_number_ok(const char *digits, const card_brand_t **brand)
{
    const card_brand_t *b = card_brand_detect(digits);
    *brand = b;
    size_t n = strlen(digits);
    if (!b || n > 31 || !(b->lengths & (1u << n)))
        return false;
    return !b->luhn || card_luhn_ok(digits);
}

int card_year_normalize(int year)
{
    return year >= 0 && year < 100 ? 2000 + year : year;
}

bool card_expiry_ok(int month, int year, int now_year, int now_month)
{
    if (month < 1 || month > 12)
        return false;
    if (year < now_year || year > now_year + 50)
        return false;
    return year > now_year || month >= now_month;
}

bool card_cvc_ok(const card_brand_t *b, const char *cvc)
{
    if (!cvc)
        return b->cvc_optional;
    size_t n = strlen(cvc);
    if (n != (size_t)b->cvc_len)
        return false;
    for (size_t i = 0; i < n; i++)
        if (cvc[i] < '0' || cvc[i] > '9')
            return false;
    return true;
}

bool card_name_ok(const char *name)
{
    if (!name)
        return true;
    size_t n = strlen(name);
    if (n > 127)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return false;
    return true;
}

void card_now(int *year, int *month)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    *year = tm.tm_year + 1900;
    *month = tm.tm_mon + 1;
}
