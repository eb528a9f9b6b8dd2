/* sandbox-pricing: the reference pricing service gatewayd asks for an
 * authoritative quote (POST /v1/quote), priced from a catalog file; a control
 * route changes a price at runtime for the checkout's price_changed tests.
 *
 * Catalog (--catalog FILE, JSON; inventory reads the same file for "stock"):
 *   {"description": "...",                                  (optional)
 *    "tax_bps":  {"GB": 0, "DE": 1900, ...},                 country -> basis points
 *    "shipping": {"EUR": {"fee": 495, "free_from": 2000,     per currency; free_from
 *                         "countries": {"US": {"fee": 1995}}}},  and countries optional
 *    "skus": {"SKU-RED-MUG": {"name": "...", "prices": {"EUR": 1299},
 *                             "stock": 1000000, "high_resale_risk": false}}}
 * Amounts are integer minor units. The currencies of "shipping" are the
 * shop's currencies: a price in any other currency is a catalog error.
 *
 * Quote arithmetic, all in int64 minor units:
 *   line amount  = unit_amount * quantity
 *   line tax     = round_half_up(amount * tax_bps / 10000) = (amount * bps + 5000) / 10000
 *   subtotal     = sum of line amounts;  tax = sum of line taxes (tax is exclusive)
 *   shipping     = the country's rule if the currency has one, else the currency's
 *                  rule: 0 when free_from is set and subtotal >= free_from, else fee
 *                  (shipping is not taxed)
 *   total        = subtotal + tax + shipping
 * Bounds (unit <= 1e10, quantity <= 1000, 100 lines, bps <= 10000) keep every
 * intermediate below 1e17, far from int64 overflow. */
#include "sandbox/sandbox.h"
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CURRENCIES  16
#define MAX_LINES       100
#define MAX_QUANTITY    1000
#define MAX_UNIT_AMOUNT INT64_C(10000000000)
#define MAX_SKU_LEN     64
#define BPS_ONE         10000
#define NCOUNTRIES      (26 * 26)

typedef struct {
    int64_t fee;       /* -1: no rule here (a country falls back to its currency's rule) */
    int64_t free_from; /* -1: never free */
} ship_rule_t;

/* Prices and the risk flag are atomics so that quotes read them without a
 * lock while the control route changes them; a quote racing a price change
 * may see either price, which is what a real pricing service gives too. */
typedef struct {
    const char *sku; /* borrowed from cat.doc */
    atomic_bool high_resale_risk;
    _Atomic int64_t price[MAX_CURRENCIES]; /* -1: not priced in that currency */
} item_t;

static struct {
    json_t *doc;   /* the catalog document, kept alive for the SKU strings */
    json_t *index; /* sku -> item index; never changed after load, so read without a lock */
    item_t *items;
    size_t nitems;
    char cur[MAX_CURRENCIES][4];
    size_t ncur;
    int32_t tax_bps[NCOUNTRIES]; /* -1: country not served */
    ship_rule_t ship[MAX_CURRENCIES];
    ship_rule_t ship_cc[MAX_CURRENCIES][NCOUNTRIES];
} cat;

static char load_err[512];

/* ------------------------------------------------------------- helpers */

static int country_index(const char *cc)
{
    if (!cc || cc[0] < 'A' || cc[0] > 'Z' || cc[1] < 'A' || cc[1] > 'Z' || cc[2])
        return -1;
    return (cc[0] - 'A') * 26 + (cc[1] - 'A');
}

static bool is_currency(const char *s)
{
    return s && strlen(s) == 3 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z' &&
           s[2] >= 'A' && s[2] <= 'Z';
}

static int currency_index(const char *code)
{
    for (size_t i = 0; i < cat.ncur; i++)
        if (!strcmp(cat.cur[i], code))
            return (int)i;
    return -1;
}

/* SKUs are also path-safe for inventory's routes and log lines. */
static bool sku_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > MAX_SKU_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

static item_t *item_find(const char *sku)
{
    json_t *v = json_object_get(cat.index, sku);
    return v ? &cat.items[json_integer_value(v)] : NULL;
}

/* Replies 400 and returns false when the request has no JSON object body. */
static bool body_is_object(sbx_req_t *rq, enum MHD_Result *res)
{
    if (rq->body_len == 0)
        *res = sbx_reply_json(
            rq, 400, err_body(ERR_PARAMETER_MISSING, "body", "A JSON object body is required."));
    else if (!rq->json)
        *res = sbx_reply_json(rq, 400, err_body(ERR_INVALID_JSON, "body", NULL));
    else if (!json_is_object(rq->json))
        *res = sbx_reply_json(rq, 400, err_body(ERR_BODY_NOT_OBJECT, "body", NULL));
    else
        return true;
    return false;
}

/* ------------------------------------------------------------- catalog */

static bool fail(const char *fmt, ...) PC_PRINTF(1, 2);
static bool fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(load_err, sizeof load_err, fmt, ap);
    va_end(ap);
    return false;
}

static bool fail_jspec(const jspec_error_t *je)
{
    return fail("%s %s", je->param, je->reason);
}

static bool load_tax(const json_t *tax)
{
    for (int i = 0; i < NCOUNTRIES; i++)
        cat.tax_bps[i] = -1;
    const char *cc;
    const json_t *v;
    json_object_foreach((json_t *)tax, cc, v)
    {
        int ci = country_index(cc);
        if (ci < 0)
            return fail("tax_bps.%s: not an ISO 3166-1 alpha-2 country code", cc);
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > BPS_ONE)
            return fail("tax_bps.%s: must be an integer between 0 and %d", cc, BPS_ONE);
        cat.tax_bps[ci] = (int32_t)json_integer_value(v);
    }
    return true;
}

static bool load_rule(const json_t *v, const char *path, ship_rule_t *out, const json_t **countries)
{
    int64_t fee = 0, free_from = -1;
    const jspec_field_t spec[] = {
        JSPEC_I64("fee", JSPEC_REQUIRED, 0, MAX_UNIT_AMOUNT, &fee),
        JSPEC_I64("free_from", 0, 0, MAX_UNIT_AMOUNT, &free_from),
        JSPEC_OBJ("countries", 0, NULL, countries),
        JSPEC_END,
    };
    /* a country rule has no nested countries: drop the entry from its spec */
    jspec_field_t local[PC_ARRAY_LEN(spec)];
    memcpy(local, spec, sizeof spec);
    if (!countries)
        local[2] = (jspec_field_t)JSPEC_END;
    jspec_error_t je;
    if (!jspec_parse(v, local, path, &je))
        return fail_jspec(&je);
    out->fee = fee;
    out->free_from = free_from;
    return true;
}

static bool load_shipping(const json_t *ship)
{
    const char *code;
    const json_t *v;
    json_object_foreach((json_t *)ship, code, v)
    {
        if (!is_currency(code))
            return fail("shipping.%s: not an ISO 4217 currency code", code);
        if (cat.ncur == MAX_CURRENCIES)
            return fail("shipping: more than %d currencies", MAX_CURRENCIES);
        size_t k = cat.ncur++;
        memcpy(cat.cur[k], code, 4);
        char path[64];
        snprintf(path, sizeof path, "shipping.%s", code);
        const json_t *countries = NULL;
        if (!load_rule(v, path, &cat.ship[k], &countries))
            return false;
        for (int i = 0; i < NCOUNTRIES; i++)
            cat.ship_cc[k][i] = (ship_rule_t){-1, -1};
        const char *cc;
        const json_t *r;
        json_object_foreach((json_t *)countries, cc, r)
        {
            int ci = country_index(cc);
            if (ci < 0)
                return fail("%s.countries.%s: not a country code", path, cc);
            char cpath[96];
            snprintf(cpath, sizeof cpath, "%s.countries.%s", path, cc);
            if (!load_rule(r, cpath, &cat.ship_cc[k][ci], NULL))
                return false;
        }
    }
    return true;
}

static bool load_prices(item_t *it, const json_t *prices, const char *path)
{
    for (size_t c = 0; c < MAX_CURRENCIES; c++)
        atomic_init(&it->price[c], -1);
    const char *code;
    const json_t *v;
    json_object_foreach((json_t *)prices, code, v)
    {
        int ci = currency_index(code);
        if (ci < 0)
            return fail("%s.prices.%s: no shipping rule for this currency (add shipping.%s)", path,
                        code, code);
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) > MAX_UNIT_AMOUNT)
            return fail("%s.prices.%s: must be an integer between 0 and %" PRId64 " (minor units)",
                        path, code, MAX_UNIT_AMOUNT);
        atomic_store(&it->price[ci], (int64_t)json_integer_value(v));
    }
    return true;
}

static bool load_skus(const json_t *skus)
{
    cat.nitems = json_object_size(skus);
    cat.items = calloc(cat.nitems ? cat.nitems : 1, sizeof *cat.items);
    cat.index = json_object();
    size_t i = 0;
    const char *sku;
    const json_t *v;
    json_object_foreach((json_t *)skus, sku, v)
    {
        char path[96];
        snprintf(path, sizeof path, "skus.%s", sku);
        if (!sku_valid(sku))
            return fail("%s: a SKU is 1 to %d characters of A-Z a-z 0-9 - _ .", path, MAX_SKU_LEN);
        const json_t *prices = NULL;
        bool risk = false;
        const jspec_field_t spec[] = {
            JSPEC_STR("name", 0, 1, 200, NULL),
            JSPEC_OBJ("prices", JSPEC_REQUIRED, NULL, &prices),
            JSPEC_I64("stock", 0, 0, INT64_C(1000000000000), NULL),
            JSPEC_BOOLEAN("high_resale_risk", 0, &risk),
            JSPEC_END,
        };
        jspec_error_t je;
        if (!jspec_parse(v, spec, path, &je))
            return fail_jspec(&je);
        item_t *it = &cat.items[i];
        it->sku = sku;
        atomic_init(&it->high_resale_risk, risk);
        if (!load_prices(it, prices, path))
            return false;
        json_object_set_new(cat.index, sku, json_integer((json_int_t)i));
        i++;
    }
    return true;
}

static bool catalog_load(const char *file)
{
    json_error_t jerr;
    cat.doc = json_load_file(file, JSON_REJECT_DUPLICATES, &jerr);
    if (!cat.doc)
        return fail("%s:%d: %s", file, jerr.line, jerr.text);
    const json_t *skus = NULL, *tax = NULL, *ship = NULL;
    const jspec_field_t spec[] = {
        JSPEC_STR("description", 0, 0, 4000, NULL),
        JSPEC_OBJ("skus", JSPEC_REQUIRED, NULL, &skus),
        JSPEC_OBJ("tax_bps", JSPEC_REQUIRED, NULL, &tax),
        JSPEC_OBJ("shipping", JSPEC_REQUIRED, NULL, &ship),
        JSPEC_END,
    };
    jspec_error_t je;
    if (!jspec_parse(cat.doc, spec, "", &je))
        return fail_jspec(&je);
    return load_tax(tax) && load_shipping(ship) && load_skus(skus);
}

/* --------------------------------------------------------------- quote */

typedef struct {
    const char *currency;
    const char *country;
    size_t n;
    struct {
        const char *sku;
        int64_t quantity;
        item_t *item; /* NULL: unknown SKU */
        int64_t unit, amount, tax;
    } line[MAX_LINES];
} quote_t;

static bool quote_parse(const json_t *body, quote_t *q, jspec_error_t *je)
{
    const json_t *items = NULL;
    const jspec_field_t ship_spec[] = {
        {.name = "country",
         .type = JSPEC_STRING,
         .flags = JSPEC_REQUIRED,
         .dest = &q->country,
         .check = jspec_check_country},
        JSPEC_END_EXTRA, /* address fields may come along; only the country prices */
    };
    const jspec_field_t spec[] = {
        {.name = "currency",
         .type = JSPEC_STRING,
         .flags = JSPEC_REQUIRED,
         .dest = &q->currency,
         .check = jspec_check_currency},
        JSPEC_ARR("items", JSPEC_REQUIRED, 1, MAX_LINES, &items),
        JSPEC_OBJ("shipping", JSPEC_REQUIRED, ship_spec, NULL),
        JSPEC_END,
    };
    if (!jspec_parse(body, spec, "", je))
        return false;
    q->n = json_array_size(items);
    for (size_t i = 0; i < q->n; i++) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "items[%zu]", i);
        const jspec_field_t item_spec[] = {
            JSPEC_STR("sku", JSPEC_REQUIRED | JSPEC_PRINTABLE, 1, MAX_SKU_LEN, &q->line[i].sku),
            JSPEC_I64("quantity", JSPEC_REQUIRED, 1, MAX_QUANTITY, &q->line[i].quantity),
            JSPEC_END,
        };
        if (!jspec_parse(json_array_get(items, i), item_spec, prefix, je))
            return false;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(q->line[j].sku, q->line[i].sku)) {
                snprintf(je->param, sizeof je->param, "%s.sku", prefix);
                snprintf(je->reason, sizeof je->reason, "repeats items[%zu].sku", j);
                je->code = ERR_PARAMETER_INVALID;
                return false;
            }
    }
    return true;
}

/* 422 naming every line whose SKU is unknown or not priced in the currency;
 * returns MHD_NO with *any == false when every line is priceable. */
static enum MHD_Result reply_unpriceable(sbx_req_t *rq, quote_t *q, int ci, bool *any)
{
    json_t *unknown = json_array(), *unpriced = json_array();
    int first_unknown = -1, first_unpriced = -1;
    for (size_t i = 0; i < q->n; i++) {
        q->line[i].item = item_find(q->line[i].sku);
        if (!q->line[i].item) {
            json_array_append_new(unknown, json_string(q->line[i].sku));
            first_unknown = first_unknown < 0 ? (int)i : first_unknown;
        } else if (ci < 0 || atomic_load(&q->line[i].item->price[ci]) < 0) {
            json_array_append_new(unpriced, json_string(q->line[i].sku));
            first_unpriced = first_unpriced < 0 ? (int)i : first_unpriced;
        }
    }
    *any = first_unknown >= 0 || first_unpriced >= 0;
    if (!*any) {
        json_decref(unknown);
        json_decref(unpriced);
        return MHD_NO;
    }
    bool u = first_unknown >= 0;
    int at = u ? first_unknown : first_unpriced;
    char param[32], msg[200];
    snprintf(param, sizeof param, "items[%d].sku", at);
    if (u)
        snprintf(msg, sizeof msg, "Unknown SKU %s.", q->line[at].sku);
    else
        snprintf(msg, sizeof msg, "SKU %s is not sold in %s.", q->line[at].sku, q->currency);
    json_t *body =
        sbx_error_json("cart_error", u ? "unknown_sku" : "currency_not_priced", param, msg);
    json_t *e = json_object_get(body, "error");
    json_object_set_new(e, "sku", json_string(q->line[at].sku));
    json_object_set_new(e, "skus", u ? json_incref(unknown) : json_incref(unpriced));
    if (!u)
        json_object_set_new(e, "currency", json_string(q->currency));
    json_decref(unknown);
    json_decref(unpriced);
    return sbx_reply_json(rq, 422, body);
}

static int64_t shipping_for(int ci, int cc, int64_t subtotal)
{
    ship_rule_t r = cat.ship_cc[ci][cc].fee >= 0 ? cat.ship_cc[ci][cc] : cat.ship[ci];
    return r.free_from >= 0 && subtotal >= r.free_from ? 0 : r.fee;
}

static json_t *quote_json(quote_t *q, int ci, int cc)
{
    int64_t bps = cat.tax_bps[cc], subtotal = 0, tax = 0;
    json_t *lines = json_array();
    for (size_t i = 0; i < q->n; i++) {
        item_t *it = q->line[i].item;
        int64_t unit = atomic_load(&it->price[ci]);
        int64_t amount = unit * q->line[i].quantity;
        int64_t line_tax = (amount * bps + BPS_ONE / 2) / BPS_ONE; /* half-up */
        subtotal += amount;
        tax += line_tax;
        json_array_append_new(
            lines,
            json_pack("{s:s, s:I, s:I, s:I, s:I, s:s}", "sku", it->sku, "quantity",
                      (json_int_t)q->line[i].quantity, "unit_amount", (json_int_t)unit, "amount",
                      (json_int_t)amount, "tax_amount", (json_int_t)line_tax, "risk",
                      atomic_load(&it->high_resale_risk) ? "high_resale" : "normal"));
    }
    int64_t shipping = shipping_for(ci, cc, subtotal);
    return json_pack("{s:s, s:s, s:I, s:o, s:I, s:I, s:I, s:I}", "currency", q->currency, "country",
                     q->country, "tax_rate_bps", (json_int_t)bps, "lines", lines, "subtotal",
                     (json_int_t)subtotal, "tax", (json_int_t)tax, "shipping", (json_int_t)shipping,
                     "total", (json_int_t)(subtotal + tax + shipping));
}

static enum MHD_Result quote_post(sbx_req_t *rq)
{
    enum MHD_Result res;
    if (!body_is_object(rq, &res))
        return res;
    quote_t *q = calloc(1, sizeof *q);
    jspec_error_t je;
    if (!quote_parse(rq->json, q, &je)) {
        res = sbx_reply_jspec(rq, &je);
        free(q);
        return res;
    }
    int ci = currency_index(q->currency);
    bool unpriceable;
    res = reply_unpriceable(rq, q, ci, &unpriceable);
    if (!unpriceable) {
        int cc = country_index(q->country);
        if (cat.tax_bps[cc] < 0) {
            char msg[96];
            snprintf(msg, sizeof msg, "The shop does not ship to %s.", q->country);
            res = sbx_reply_json(rq, 422,
                                 sbx_error_json("cart_error", "country_not_served",
                                                "shipping.country", msg));
        } else {
            res = sbx_reply_json(rq, 200, quote_json(q, ci, cc));
        }
    }
    free(q);
    return res;
}

/* Injected faults (POST /_sandbox/faults) hit quotes; a quote changes
 * nothing, so after_processing only decides when the failure happens. */
static enum MHD_Result handle(sbx_req_t *rq)
{
    if (strcmp(rq->path, "/v1/quote") != 0)
        return sbx_reply_json(rq, 404, err_body(ERR_ROUTE_NOT_FOUND, NULL, NULL));
    if (strcmp(rq->method, "POST") != 0)
        return sbx_reply_json(rq, 405, err_body(ERR_METHOD_NOT_ALLOWED, NULL, NULL));
    sbx_fault_t f = sbx_fault_draw();
    if (f.mode != SBX_NONE)
        return sbx_fault_fail(rq, &f);
    return quote_post(rq);
}

/* ------------------------------------------------------ control routes */

static json_t *item_json(item_t *it)
{
    json_t *prices = json_object();
    for (size_t c = 0; c < cat.ncur; c++) {
        int64_t p = atomic_load(&it->price[c]);
        if (p >= 0)
            json_object_set_new(prices, cat.cur[c], json_integer((json_int_t)p));
    }
    return json_pack("{s:s, s:o, s:b}", "sku", it->sku, "prices", prices, "high_resale_risk",
                     atomic_load(&it->high_resale_risk));
}

static enum MHD_Result prices_get(sbx_req_t *rq)
{
    json_t *a = json_array();
    for (size_t i = 0; i < cat.nitems; i++)
        json_array_append_new(a, item_json(&cat.items[i]));
    return sbx_reply_json(rq, 200, json_pack("{s:o}", "skus", a));
}

/* {"sku", "currency" + "unit_amount" (together), "high_resale_risk"}: the
 * SKU must exist and the currency must be one of the shop's. */
static enum MHD_Result prices_post(sbx_req_t *rq)
{
    enum MHD_Result res;
    if (!body_is_object(rq, &res))
        return res;
    const char *sku = NULL, *currency = NULL;
    int64_t unit = 0;
    bool risk = false, has_unit = false, has_risk = false;
    const jspec_field_t spec[] = {
        JSPEC_STR("sku", JSPEC_REQUIRED | JSPEC_PRINTABLE, 1, MAX_SKU_LEN, &sku),
        {.name = "currency",
         .type = JSPEC_STRING,
         .dest = &currency,
         .check = jspec_check_currency},
        {.name = "unit_amount",
         .type = JSPEC_INT,
         .min = 0,
         .max = MAX_UNIT_AMOUNT,
         .dest = &unit,
         .present = &has_unit},
        {.name = "high_resale_risk", .type = JSPEC_BOOL, .dest = &risk, .present = &has_risk},
        JSPEC_END,
    };
    jspec_error_t je;
    if (!jspec_parse(rq->json, spec, "", &je))
        return sbx_reply_jspec(rq, &je);
    if (!currency != !has_unit)
        return sbx_reply_json(rq, 400,
                              err_body(ERR_PARAMETER_MISSING, currency ? "unit_amount" : "currency",
                                       "currency and unit_amount go together."));
    item_t *it = item_find(sku);
    if (!it)
        return sbx_reply_json(rq, 404, err_body(ERR_RESOURCE_MISSING, "sku", "No such SKU."));
    int ci = currency ? currency_index(currency) : -1;
    if (currency && ci < 0)
        return sbx_reply_json(
            rq, 400,
            err_body(ERR_PARAMETER_INVALID, "currency", "Not one of the catalog's currencies."));
    if (currency) {
        int64_t old = atomic_exchange(&it->price[ci], unit);
        log_json(LOG_INFO, "price changed",
                 json_pack("{s:s, s:s, s:I, s:I}", "sku", it->sku, "currency", currency, "from",
                           (json_int_t)old, "to", (json_int_t)unit));
    }
    if (has_risk)
        atomic_store(&it->high_resale_risk, risk);
    return sbx_reply_json(rq, 200, item_json(it));
}

static enum MHD_Result control(sbx_req_t *rq, bool *handled)
{
    *handled = !strcmp(rq->path, "/_sandbox/prices");
    if (!*handled)
        return MHD_NO;
    if (!strcmp(rq->method, "GET"))
        return prices_get(rq);
    if (!strcmp(rq->method, "POST"))
        return prices_post(rq);
    return sbx_reply_json(rq, 405, err_body(ERR_METHOD_NOT_ALLOWED, NULL, NULL));
}

/* ---------------------------------------------------------------- main */

static bool flag(const char *name, const char *value)
{
    if (strcmp(name, "--catalog") != 0)
        return false;
    if (cat.doc) {
        fprintf(stderr, "sandbox-pricing: --catalog given twice\n");
        exit(2);
    }
    if (!catalog_load(value)) {
        fprintf(stderr, "sandbox-pricing: catalog %s: %s\n", value, load_err);
        exit(2);
    }
    log_json(LOG_INFO, "catalog loaded",
             json_pack("{s:s, s:I, s:I}", "file", value, "skus", (json_int_t)cat.nitems,
                       "currencies", (json_int_t)cat.ncur));
    return true;
}

int main(int argc, char **argv)
{
    static const sbx_dialect_t d = {
        .name = "pricing",
        .handler = handle,
        .control = control,
        .flag = flag,
        .required_flag = "--catalog",
        .usage = "--catalog FILE [--port N] [--port-file F] [--control-port N] "
                 "[--control-port-file F]"};
    return sbx_main(argc, argv, &d);
}
