/* The feature registry: every name a rule may test, its type, and how its
 * value is read from fraud_features_t. Names are resolved once when a rules
 * document is parsed; scoring then works on integer ids. */
#include "fraud/internal.h"
#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef struct {
    const char *name;
    ftype_t type;
    bool ci;
} static_feat_t;

/* Indexed by the F_* ids of internal.h. Card fingerprints and device ids are
 * opaque tokens and compare exactly; everything else a merchant types
 * (countries, emails, brands) compares case-insensitively. */
static const static_feat_t statics[F_STATIC_COUNT] = {
    [F_AMOUNT] = {"amount", FT_INT, false},
    [F_CURRENCY] = {"currency", FT_STR, true},
    [F_AMOUNT_VS_AVERAGE] = {"amount_vs_average_pct", FT_INT, false},
    [F_CARD_BRAND] = {"card_brand", FT_STR, true},
    [F_BIN] = {"bin", FT_STR, false},
    [F_CARD_COUNTRY] = {"card_country", FT_STR, true},
    [F_CARD_FUNDING] = {"card_funding", FT_STR, true},
    [F_FINGERPRINT] = {"fingerprint", FT_STR, false},
    [F_EMAIL] = {"email", FT_STR, true},
    [F_EMAIL_DOMAIN] = {"email_domain", FT_STR, true},
    [F_IP] = {"ip", FT_STR, true},
    [F_EDGE_COUNTRY] = {"edge_country", FT_STR, true},
    [F_SHIPPING_COUNTRY] = {"shipping_country", FT_STR, true},
    [F_DEVICE_ID] = {"device_id", FT_STR, false},
    [F_HAS_CVC] = {"has_cvc", FT_BOOL, false},
    [F_CART_TOTAL] = {"cart_total", FT_INT, false},
    [F_BASKET_VS_USUAL] = {"basket_vs_usual_pct", FT_INT, false},
    [F_CART_MAX_SKU_QTY] = {"cart_max_sku_quantity", FT_INT, false},
    [F_CART_DISTINCT_SKUS] = {"cart_distinct_skus", FT_INT, false},
    [F_CART_HIGH_RISK_SKUS] = {"cart_high_risk_skus", FT_INT, false},
};

static const char *const key_names[FRAUD_NKEYS] = {"card", "email", "ip", "device"};
static const char *const metric_names[M_COUNT] = {"attempts", "declines", "token_failures",
                                                  "distinct_cards", "amount_sum"};
static const char *const window_names[FRAUD_NWINDOWS] = {"10m", "1h", "24h"};

/* A card is one card (no distinct_cards), and tokenization failures carry
 * no fingerprint; such names are refused rather than silently always 0. */
static bool metric_applies(int key, int metric)
{
    if (key == FRAUD_KEY_CARD)
        return metric != M_DISTINCT_CARDS && metric != M_TOKEN_FAILURES;
    return true;
}

static int index_of(const char *const *names, int n, const char *s, size_t len)
{
    for (int i = 0; i < n; i++)
        if (strlen(names[i]) == len && !strncmp(names[i], s, len))
            return i;
    return -1;
}

static bool velocity_lookup(const char *name, feat_t *out)
{
    const char *d1 = strchr(name, '.');
    const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (!d1 || !d2 || strchr(d2 + 1, '.'))
        return false;
    int key = index_of(key_names, FRAUD_NKEYS, name, (size_t)(d1 - name));
    int metric = index_of(metric_names, M_COUNT, d1 + 1, (size_t)(d2 - d1 - 1));
    int win = index_of(window_names, FRAUD_NWINDOWS, d2 + 1, strlen(d2 + 1));
    if (key < 0 || metric < 0 || win < 0 || !metric_applies(key, metric))
        return false;
    out->id = F_VELOCITY + (key * M_COUNT + metric) * FRAUD_NWINDOWS + win;
    out->type = FT_INT;
    out->ci = false;
    return true;
}

bool feat_lookup(const char *name, feat_t *out)
{
    for (int i = 0; i < F_STATIC_COUNT; i++)
        if (!strcmp(statics[i].name, name)) {
            out->id = i;
            out->type = statics[i].type;
            out->ci = statics[i].ci;
            return true;
        }
    return velocity_lookup(name, out);
}

feat_t feat_info(int id)
{
    feat_t f = {.id = id, .type = FT_INT, .ci = false};
    if (id < F_STATIC_COUNT) {
        f.type = statics[id].type;
        f.ci = statics[id].ci;
    }
    return f;
}

const char *feat_name(int id, char *buf, size_t len)
{
    if (id < F_STATIC_COUNT)
        return statics[id].name;
    int v = id - F_VELOCITY;
    int win = v % FRAUD_NWINDOWS;
    int metric = (v / FRAUD_NWINDOWS) % M_COUNT;
    int key = v / (FRAUD_NWINDOWS * M_COUNT);
    snprintf(buf, len, "%s.%s.%s", key_names[key], metric_names[metric], window_names[win]);
    return buf;
}

static void set_str(fval_t *v, const char *s)
{
    v->present = s && *s;
    v->s = s;
}

static void set_int(fval_t *v, int64_t i)
{
    v->present = true;
    v->i = i;
}

/* part * 100 / whole as an integer percentage; absent when there is no
 * reference value yet (a new merchant), so ratio rules stay quiet. */
static void set_pct(fval_t *v, int64_t part, int64_t whole)
{
    if (whole <= 0 || part < 0)
        return;
    if (part > INT64_MAX / 100)
        set_int(v, INT64_MAX / whole);
    else
        set_int(v, part * 100 / whole);
}

static const char *email_domain(const fraud_features_t *f)
{
    if (f->email_domain)
        return f->email_domain;
    const char *at = f->email ? strrchr(f->email, '@') : NULL;
    return at ? at + 1 : NULL;
}

static void velocity_value(const fraud_features_t *f, int id, fval_t *v)
{
    int x = id - F_VELOCITY;
    int win = x % FRAUD_NWINDOWS;
    int metric = (x / FRAUD_NWINDOWS) % M_COUNT;
    int key = x / (FRAUD_NWINDOWS * M_COUNT);
    if (!f->velocity.known[key])
        return;
    const fraud_counts_t *c = &f->velocity.c[key][win];
    const int64_t vals[M_COUNT] = {c->attempts, c->declines, c->token_failures, c->distinct_cards,
                                   c->amount_sum};
    set_int(v, vals[metric]);
}

void feat_value(const fraud_features_t *f, int id, fval_t *v)
{
    memset(v, 0, sizeof *v);
    const fraud_velocity_t *vel = &f->velocity;
    switch (id) {
    case F_AMOUNT:
        set_int(v, f->amount);
        break;
    case F_CURRENCY:
        set_str(v, f->currency);
        break;
    case F_AMOUNT_VS_AVERAGE:
        set_pct(v, f->amount, vel->merchant_avg_amount);
        break;
    case F_CARD_BRAND:
        set_str(v, f->card_brand);
        break;
    case F_BIN:
        /* A BIN is 6 or 8 digits; anything longer may be a whole card
         * number passed by mistake and is never compared or echoed. */
        if (f->bin && strlen(f->bin) <= 8)
            set_str(v, f->bin);
        break;
    case F_CARD_COUNTRY:
        set_str(v, f->card_country);
        break;
    case F_CARD_FUNDING:
        set_str(v, f->card_funding);
        break;
    case F_FINGERPRINT:
        set_str(v, f->fingerprint);
        break;
    case F_EMAIL:
        set_str(v, f->email);
        break;
    case F_EMAIL_DOMAIN:
        set_str(v, email_domain(f));
        break;
    case F_IP:
        set_str(v, f->ip);
        break;
    case F_EDGE_COUNTRY:
        set_str(v, f->edge_country);
        break;
    case F_SHIPPING_COUNTRY:
        set_str(v, f->shipping_country);
        break;
    case F_DEVICE_ID:
        set_str(v, f->device_id);
        break;
    case F_HAS_CVC:
        v->present = true;
        v->b = f->has_cvc;
        break;
    case F_CART_TOTAL:
        set_int(v, f->cart_total > 0 ? f->cart_total : f->amount);
        break;
    case F_BASKET_VS_USUAL:
        set_pct(v, f->cart_total > 0 ? f->cart_total : f->amount, vel->merchant_usual_basket);
        break;
    case F_CART_MAX_SKU_QTY:
        set_int(v, f->cart_max_sku_quantity);
        break;
    case F_CART_DISTINCT_SKUS:
        set_int(v, f->cart_distinct_skus);
        break;
    case F_CART_HIGH_RISK_SKUS:
        set_int(v, f->cart_high_risk_skus);
        break;
    default:
        if (id >= F_VELOCITY && id < F_COUNT)
            velocity_value(f, id, v);
        break;
    }
}

void fraud_features_apply_bin(fraud_features_t *f, const fraud_bin_info_t *bi)
{
    if (bi->country[0])
        f->card_country = bi->country;
    if (bi->funding[0])
        f->card_funding = bi->funding;
    if (!f->card_brand && bi->brand[0])
        f->card_brand = bi->brand;
}
