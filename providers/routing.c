/* Routing: the routing document's validator and the planner that turns a
 * merchant's provider configs, its routing document and live health into
 * the ordered candidates of one payment.
 *
 * Order: a rule's (or the default) list gives the order the merchant wrote;
 * without a list, every enabled provider by priority. Wherever providers of
 * equal priority stand next to each other, they share that place by weight:
 * a weighted draw seeded by a hash of the payment id, so a checkout keeps
 * its order across retries and volume splits as the weights say. */
#include "providers/internal.h"
#include <sodium.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    bool has_currency, has_brand, has_country, has_gte, has_lt;
    char currency[4], brand[16], country[3];
    int64_t gte, lt;
    int n;
    char providers[PRV_MAX_PROVIDERS][PRV_NAME_MAX];
} rule_t;

struct prv_routing {
    int nrules;
    rule_t rules[PRV_MAX_RULES];
    bool has_default;
    int ndefault;
    char dflt[PRV_MAX_PROVIDERS][PRV_NAME_MAX];
};

/* ------------------------------------------------------------- parsing */

static bool fail(jspec_error_t *err, err_code_t code, const char *param, const char *reason)
{
    snprintf(err->param, sizeof err->param, "%s", param);
    snprintf(err->reason, sizeof err->reason, "%s", reason);
    err->code = code;
    return false;
}

static const char *check_brand(const json_t *v)
{
    return prv_brand_known(json_string_value(v))
               ? NULL
               : "must be a known card brand (visa, mastercard, amex, discover, diners, jcb, "
                 "unionpay, maestro, cartes_bancaires)";
}

/* A list of provider names: valid, unique, and known when `known` is given. */
static bool names(const json_t *arr, const char *path, const char *const *known, size_t nknown,
                  char out[][PRV_NAME_MAX], int *n, jspec_error_t *err)
{
    size_t i;
    const json_t *v;
    *n = 0;
    json_array_foreach(arr, i, v)
    {
        char param[128];
        snprintf(param, sizeof param, "%s[%zu]", path, i);
        const char *s = json_string_value(v);
        if (!prv_provider_name_valid(s))
            return fail(err, ERR_PARAMETER_INVALID, param,
                        "must be a provider name (a-z, 0-9, '_' and '-')");
        bool found = known == NULL;
        for (size_t k = 0; k < nknown && !found; k++)
            found = !strcmp(known[k], s);
        if (!found)
            return fail(err, ERR_PARAMETER_INVALID, param,
                        "must name a provider configured for this merchant");
        for (int k = 0; k < *n; k++)
            if (!strcmp(out[k], s))
                return fail(err, ERR_PARAMETER_INVALID, param, "is listed twice");
        prv_copy(out[(*n)++], PRV_NAME_MAX, s);
    }
    return true;
}

static bool parse_rule(const json_t *v, size_t i, const char *const *known, size_t nknown,
                       rule_t *r, jspec_error_t *err)
{
    const char *cur = NULL, *brand = NULL, *country = NULL;
    json_t *provs = NULL;
    const jspec_field_t if_spec[] = {
        {.name = "currency",
         .type = JSPEC_STRING,
         .dest = &cur,
         .present = &r->has_currency,
         .check = jspec_check_currency},
        {.name = "brand",
         .type = JSPEC_STRING,
         .dest = &brand,
         .present = &r->has_brand,
         .check = check_brand},
        {.name = "country",
         .type = JSPEC_STRING,
         .dest = &country,
         .present = &r->has_country,
         .check = jspec_check_country},
        {.name = "amount_gte",
         .type = JSPEC_INT,
         .min = 0,
         .max = 999999999999999,
         .dest = &r->gte,
         .present = &r->has_gte},
        {.name = "amount_lt",
         .type = JSPEC_INT,
         .min = 1,
         .max = 999999999999999,
         .dest = &r->lt,
         .present = &r->has_lt},
        JSPEC_END,
    };
    const jspec_field_t spec[] = {
        JSPEC_OBJ("if", JSPEC_REQUIRED, if_spec, NULL),
        JSPEC_ARR("providers", JSPEC_REQUIRED, 1, PRV_MAX_PROVIDERS, &provs),
        JSPEC_END,
    };
    char path[64];
    snprintf(path, sizeof path, "rules[%zu]", i);
    if (!json_is_object(v))
        return fail(err, ERR_PARAMETER_INVALID, path, "must be an object");
    if (!jspec_parse(v, spec, path, err))
        return false;
    if (r->has_gte && r->has_lt && r->lt <= r->gte) {
        char param[96];
        snprintf(param, sizeof param, "%s.if.amount_lt", path);
        return fail(err, ERR_PARAMETER_INVALID, param, "must be greater than amount_gte");
    }
    prv_copy(r->currency, sizeof r->currency, cur);
    prv_copy(r->brand, sizeof r->brand, brand);
    prv_copy(r->country, sizeof r->country, country);
    char ppath[96];
    snprintf(ppath, sizeof ppath, "%s.providers", path);
    return names(provs, ppath, known, nknown, r->providers, &r->n, err);
}

prv_routing_t *prv_routing_parse(const json_t *doc, const char *const *known, size_t nknown,
                                 jspec_error_t *err)
{
    json_t *rules = NULL, *dflt = NULL;
    const jspec_field_t spec[] = {
        JSPEC_ARR("rules", 0, 0, PRV_MAX_RULES, &rules),
        JSPEC_ARR("default", 0, 1, PRV_MAX_PROVIDERS, &dflt),
        JSPEC_END,
    };
    if (!jspec_parse(doc, spec, "", err))
        return NULL;
    prv_routing_t *r = calloc(1, sizeof *r);
    if (!r) {
        fail(err, ERR_INTERNAL, "body", "out of memory");
        return NULL;
    }
    size_t i;
    const json_t *v;
    bool ok = true;
    json_array_foreach(rules, i, v)
    {
        if (!(ok = parse_rule(v, i, known, nknown, &r->rules[i], err)))
            break;
        r->nrules++;
    }
    if (ok && dflt) {
        r->has_default = true;
        ok = names(dflt, "default", known, nknown, r->dflt, &r->ndefault, err);
    }
    if (!ok) {
        free(r);
        return NULL;
    }
    return r;
}

void prv_routing_free(prv_routing_t *r)
{
    free(r);
}

/* ------------------------------------------------------------ planning */

static bool rule_matches(const rule_t *r, const prv_payment_t *pay)
{
    if (r->has_currency && (!pay->currency || strcmp(r->currency, pay->currency)))
        return false;
    if (r->has_brand && (!pay->brand || strcmp(r->brand, pay->brand)))
        return false;
    if (r->has_country && (!pay->country || strcmp(r->country, pay->country)))
        return false;
    if (r->has_gte && pay->amount < r->gte)
        return false;
    if (r->has_lt && pay->amount >= r->lt)
        return false;
    return true;
}

static bool config_fits(const prv_config_t *c, const prv_payment_t *pay)
{
    if (!c->enabled)
        return false;
    bool ok = c->ncurrencies == 0;
    for (int i = 0; i < c->ncurrencies && !ok; i++)
        ok = pay->currency && !strcmp(c->currencies[i], pay->currency);
    if (!ok)
        return false;
    /* an unknown brand is not held against a brand list: the caller could
     * not tell, and refusing would fail the payment for a missing label */
    ok = c->nbrands == 0 || !pay->brand || !*pay->brand;
    for (int i = 0; i < c->nbrands && !ok; i++)
        ok = !strcmp(c->brands[i], pay->brand);
    if (!ok)
        return false;
    return prv_health_state(c->merchant_id[0] ? c->merchant_id : pay->merchant_id, c->name) !=
           PRV_CIRCUIT_OPEN;
}

static uint64_t draw(const char *payment_id, int round)
{
    unsigned char h[8];
    unsigned char salt = (unsigned char)round;
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof h);
    crypto_generichash_update(&st, (const unsigned char *)payment_id, strlen(payment_id));
    crypto_generichash_update(&st, &salt, 1);
    crypto_generichash_final(&st, h, sizeof h);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | h[i];
    return v;
}

/* Reorders c[from..to) (equal priority) by successive weighted draws. */
static void weighted(const prv_config_t **c, int from, int to, const char *payment_id, int *round)
{
    for (int pos = from; pos < to - 1; pos++) {
        uint64_t total = 0;
        for (int k = pos; k < to; k++)
            total += (uint64_t)(c[k]->weight > 0 ? c[k]->weight : 1);
        uint64_t x = draw(payment_id, (*round)++) % total;
        int pick = pos;
        for (int k = pos; k < to; k++) {
            uint64_t w = (uint64_t)(c[k]->weight > 0 ? c[k]->weight : 1);
            if (x < w) {
                pick = k;
                break;
            }
            x -= w;
        }
        const prv_config_t *t = c[pick];
        memmove(&c[pos + 1], &c[pos], (size_t)(pick - pos) * sizeof *c);
        c[pos] = t;
    }
}

static const prv_config_t *by_name(const prv_config_t *configs, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(configs[i].name, name))
            return &configs[i];
    return NULL;
}

static void add(prv_plan_t *out, const prv_config_t *c, const prv_payment_t *pay)
{
    if (!c || out->n >= PRV_MAX_PROVIDERS || !config_fits(c, pay))
        return;
    for (int i = 0; i < out->n; i++)
        if (out->candidates[i] == c)
            return;
    out->candidates[out->n++] = c;
}

int prv_plan(const prv_config_t *configs, size_t nconfigs, const prv_routing_t *routing,
             const prv_payment_t *pay, prv_plan_t *out)
{
    memset(out, 0, sizeof *out);
    out->rule = -2;
    const char(*list)[PRV_NAME_MAX] = NULL;
    int nlist = 0;
    for (int i = 0; routing && i < routing->nrules && !list; i++)
        if (rule_matches(&routing->rules[i], pay)) {
            list = routing->rules[i].providers;
            nlist = routing->rules[i].n;
            out->rule = i;
        }
    if (!list && routing && routing->has_default) {
        list = routing->dflt;
        nlist = routing->ndefault;
        out->rule = -1;
    }
    if (list) {
        for (int i = 0; i < nlist; i++)
            add(out, by_name(configs, nconfigs, list[i]), pay);
    } else {
        /* every enabled provider, stable by priority */
        for (int prio = 1; prio <= 1000 && out->n < PRV_MAX_PROVIDERS; prio++)
            for (size_t i = 0; i < nconfigs; i++)
                if (configs[i].priority == prio)
                    add(out, &configs[i], pay);
    }
    int round = 0;
    const char *seed = pay->payment_id ? pay->payment_id : "";
    for (int a = 0; a < out->n;) {
        int b = a + 1;
        while (b < out->n && out->candidates[b]->priority == out->candidates[a]->priority)
            b++;
        if (b - a > 1)
            weighted(out->candidates, a, b, seed, &round);
        a = b;
    }
    return out->n;
}
