/* Merchant provider configuration: the provider document's validator, the
 * credentials parsed into guarded memory, and the public view. */
#include "providers/internal.h"
#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#define CREDS_MAX 6

struct prv_creds {
    int n;
    struct {
        char name[32];
        char value[1024];
    } f[CREDS_MAX];
};

static const char *const known_brands[] = {"visa",     "mastercard", "amex",
                                           "discover", "diners",     "jcb",
                                           "unionpay", "maestro",    "cartes_bancaires"};

bool prv_brand_known(const char *b)
{
    for (size_t i = 0; i < PC_ARRAY_LEN(known_brands); i++)
        if (b && !strcmp(b, known_brands[i]))
            return true;
    return false;
}

bool prv_provider_name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n >= PRV_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!(c >= 'a' && c <= 'z') && !(c >= '0' && c <= '9') && c != '_' && c != '-')
            return false;
    }
    return true;
}

bool prv_type_known(const char *type)
{
    return type && prv_adapter_find(type) != NULL;
}

/* ------------------------------------------------------------- checks */

static const char *check_type(const json_t *v)
{
    return prv_type_known(json_string_value(v)) ? NULL
                                                : "must be a known provider type "
                                                  "(stripe, adyen, checkout)";
}

/* https, or plain http to loopback (sandboxes); no user-info, query or
 * fragment, so nothing secret can hide in the URL and paths append cleanly. */
static const char *check_url(const json_t *v)
{
    return httpc_url_outbound_ok(json_string_value(v), false)
               ? NULL
               : "must be an https URL (plain http only to a loopback address) without user, "
                 "query or fragment";
}

static void fail(jspec_error_t *err, err_code_t code, const char *param, const char *reason)
{
    snprintf(err->param, sizeof err->param, "%s", param);
    snprintf(err->reason, sizeof err->reason, "%s", reason);
    err->code = code;
}

static bool starts_with(const char *prefix, size_t n, const void *value)
{
    return !strncmp(value, prefix, n);
}

static bool prefix_ok(const char *value, const char *prefixes)
{
    return !prefixes || prv_words_any(prefixes, starts_with, value);
}

/* Checks one credentials object against the adapter's fields. Reasons never
 * quote the value. */
static bool creds_check(const prv_adapter_t *a, const json_t *c, jspec_error_t *err)
{
    char param[128];
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)c, key, v)
    {
        bool known = false;
        for (const prv_cred_field_t *f = a->creds; f->name; f++)
            known = known || !strcmp(f->name, key);
        if (!known) {
            snprintf(param, sizeof param, "credentials.%.100s", key);
            fail(err, ERR_PARAMETER_UNKNOWN, param, "is not a known parameter");
            return false;
        }
    }
    for (const prv_cred_field_t *f = a->creds; f->name; f++) {
        snprintf(param, sizeof param, "credentials.%s", f->name);
        v = json_object_get(c, f->name);
        if (!v) {
            if (f->required) {
                fail(err, ERR_PARAMETER_MISSING, param, "is required");
                return false;
            }
            continue;
        }
        const char *s = json_string_value(v);
        size_t n = s ? strlen(s) : 0;
        if (!s || n != json_string_length(v) || !str_is_printable(s) || n < f->min || n > f->max) {
            fail(err, ERR_PARAMETER_INVALID, param,
                 "must be a printable string of the right length");
            return false;
        }
        if (!prefix_ok(s, f->prefixes)) {
            char why[160];
            snprintf(why, sizeof why, "must start with one of: %s", f->prefixes);
            fail(err, ERR_PARAMETER_INVALID, param, why);
            return false;
        }
    }
    return true;
}

static bool codes_list(const json_t *arr, const char *field, bool currency, prv_config_t *out,
                       jspec_error_t *err)
{
    size_t i;
    const json_t *v;
    json_array_foreach(arr, i, v)
    {
        char param[64];
        snprintf(param, sizeof param, "%s[%zu]", field, i);
        const char *bad = NULL;
        if (!json_is_string(v))
            bad = "must be a string";
        else if (currency)
            bad = jspec_check_currency(v);
        else if (!prv_brand_known(json_string_value(v)))
            bad = "must be a known card brand (visa, mastercard, amex, discover, diners, jcb, "
                  "unionpay, maestro, cartes_bancaires)";
        if (bad) {
            fail(err, ERR_PARAMETER_INVALID, param, bad);
            return false;
        }
        if (currency)
            prv_copy(out->currencies[out->ncurrencies++], 4, json_string_value(v));
        else
            prv_copy(out->brands[out->nbrands++], 16, json_string_value(v));
    }
    return true;
}

bool prv_provider_doc_parse(const char *name, const json_t *doc, prv_config_t *out,
                            const json_t **credentials, jspec_error_t *err)
{
    const char *type = NULL, *base = NULL;
    int64_t priority = 1, weight = 100, cto = 2000, to = 5000;
    bool enabled = true;
    json_t *creds = NULL, *curr = NULL, *brands = NULL;
    const jspec_field_t spec[] = {
        {.name = "type",
         .type = JSPEC_STRING,
         .flags = JSPEC_REQUIRED,
         .min = 1,
         .max = 31,
         .dest = &type,
         .check = check_type},
        {.name = "base_url",
         .type = JSPEC_STRING,
         .flags = JSPEC_REQUIRED | JSPEC_PRINTABLE,
         .min = 8,
         .max = 511,
         .dest = &base,
         .check = check_url},
        JSPEC_OBJ("credentials", 0, NULL, &creds),
        JSPEC_I64("priority", 0, 1, 1000, &priority),
        JSPEC_I64("weight", 0, 1, 1000, &weight),
        JSPEC_ARR("currencies", 0, 0, PRV_MAX_CURRENCIES, &curr),
        JSPEC_ARR("brands", 0, 0, PRV_MAX_BRANDS, &brands),
        JSPEC_BOOLEAN("enabled", 0, &enabled),
        JSPEC_I64("connect_timeout_ms", 0, 100, 30000, &cto),
        JSPEC_I64("timeout_ms", 0, 200, 120000, &to),
        JSPEC_END,
    };
    if (credentials)
        *credentials = NULL;
    if (!prv_provider_name_valid(name)) {
        fail(err, ERR_PARAMETER_INVALID, "name",
             "must be 1 to 63 characters of a-z, 0-9, '_' and '-'");
        return false;
    }
    if (!jspec_parse(doc, spec, "", err))
        return false;
    const prv_adapter_t *a = prv_adapter_find(type);
    if (creds && !creds_check(a, creds, err))
        return false;
    memset(out, 0, sizeof *out);
    prv_copy(out->name, sizeof out->name, name);
    prv_copy(out->type, sizeof out->type, type);
    prv_copy(out->base_url, sizeof out->base_url, base);
    out->priority = (int)priority;
    out->weight = (int)weight;
    out->enabled = enabled;
    out->connect_timeout_ms = (long)cto;
    out->timeout_ms = (long)to;
    if (curr && !codes_list(curr, "currencies", true, out, err))
        return false;
    if (brands && !codes_list(brands, "brands", false, out, err))
        return false;
    if (!prv_base_url_allowed(a, base)) {
        char why[200];
        snprintf(why, sizeof why, "must be an https URL on %s's own API domain (%s)", type,
                 a->api_domains);
        fail(err, ERR_PARAMETER_INVALID, "base_url", why);
        return false;
    }
    if (credentials)
        *credentials = creds;
    return true;
}

/* --------------------------------------------------------- credentials */

/* jansson keeps its own copies of string values; overwrite them before the
 * tree is freed. (Its lexer's scratch buffer is freed unwiped: a residue in
 * this process's heap, which core dumps and ptrace cannot reach.) */
static void wipe_strings(json_t *o)
{
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        if (json_is_string(v))
            sodium_memzero((char *)json_string_value(v), json_string_length(v));
    }
}

int prv_config_set_credentials(prv_config_t *cfg, const void *blob, size_t len)
{
    const prv_adapter_t *a = prv_adapter_find(cfg->type);
    if (!a || !blob)
        return -1;
    json_t *j = json_loadb(blob, len, JSON_REJECT_DUPLICATES, NULL);
    jspec_error_t err;
    int rc = -1;
    prv_creds_t *c = NULL;
    if (json_is_object(j) && creds_check(a, j, &err) && (c = sodium_malloc(sizeof *c))) {
        memset(c, 0, sizeof *c);
        for (const prv_cred_field_t *f = a->creds; f->name && c->n < CREDS_MAX; f++) {
            const char *s = json_string_value(json_object_get(j, f->name));
            if (!s || strlen(s) >= sizeof c->f[0].value)
                continue;
            prv_copy(c->f[c->n].name, sizeof c->f[0].name, f->name);
            memcpy(c->f[c->n].value, s, strlen(s) + 1);
            c->n++;
        }
        rc = 0;
    }
    if (json_is_object(j))
        wipe_strings(j);
    json_decref(j);
    if (rc == 0) {
        prv_config_clear(cfg);
        cfg->creds = c;
    }
    return rc;
}

const char *prv_creds_get(const prv_creds_t *c, const char *name)
{
    for (int i = 0; c && i < c->n; i++)
        if (!strcmp(c->f[i].name, name))
            return c->f[i].value;
    return "";
}

void prv_config_clear(prv_config_t *cfg)
{
    if (cfg->creds)
        sodium_free(cfg->creds);
    cfg->creds = NULL;
}

json_t *prv_config_json(const prv_config_t *cfg)
{
    json_t *cur = json_array(), *br = json_array();
    for (int i = 0; i < cfg->ncurrencies; i++)
        json_array_append_new(cur, json_string(cfg->currencies[i]));
    for (int i = 0; i < cfg->nbrands; i++)
        json_array_append_new(br, json_string(cfg->brands[i]));
    return json_pack("{s:s, s:s, s:s, s:i, s:i, s:o, s:o, s:b, s:I, s:I, s:b}", "name", cfg->name,
                     "type", cfg->type, "base_url", cfg->base_url, "priority", cfg->priority,
                     "weight", cfg->weight, "currencies", cur, "brands", br, "enabled",
                     cfg->enabled, "connect_timeout_ms", (json_int_t)cfg->connect_timeout_ms,
                     "timeout_ms", (json_int_t)cfg->timeout_ms, "has_credentials",
                     cfg->creds != NULL);
}
