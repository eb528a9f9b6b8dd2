/* Declarative JSON parsing: walks a field list, checks types and bounds, and
 * names the first bad field with its full path ("cart.items[1].quantity"). */
#include "util/util.h"
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static bool fail(jspec_error_t *err, err_code_t code, const char *prefix, const char *name,
                 const char *reason)
{
    if (prefix && *prefix)
        snprintf(err->param, sizeof err->param, "%s.%s", prefix, name);
    else
        snprintf(err->param, sizeof err->param, "%s", name);
    snprintf(err->reason, sizeof err->reason, "%s", reason);
    err->code = code;
    return false;
}

static const char *type_name(jspec_type_t t)
{
    switch (t) {
    case JSPEC_STRING: return "a string";
    case JSPEC_INT: return "an integer";
    case JSPEC_BOOL: return "a boolean";
    case JSPEC_OBJECT: return "an object";
    case JSPEC_ARRAY: return "an array";
    case JSPEC_NUMBER: return "a number";
    default: return "a value";
    }
}

static bool type_ok(jspec_type_t t, const json_t *v)
{
    switch (t) {
    case JSPEC_STRING: return json_is_string(v);
    case JSPEC_INT: return json_is_integer(v);
    case JSPEC_BOOL: return json_is_boolean(v);
    case JSPEC_OBJECT: return json_is_object(v);
    case JSPEC_ARRAY: return json_is_array(v);
    case JSPEC_NUMBER: return json_is_number(v);
    default: return true;
    }
}

static bool bounds_ok(const jspec_field_t *f, const json_t *v, char *why, size_t whylen)
{
    if (f->min == 0 && f->max == 0)
        return true;
    int64_t n;
    const char *unit;
    switch (f->type) {
    case JSPEC_INT: n = json_integer_value(v); unit = NULL; break;
    case JSPEC_STRING: n = (int64_t)json_string_length(v); unit = "characters"; break;
    case JSPEC_ARRAY: n = (int64_t)json_array_size(v); unit = "elements"; break;
    default: return true;
    }
    if (n >= f->min && n <= f->max)
        return true;
    if (unit)
        snprintf(why, whylen, "must have between %" PRId64 " and %" PRId64 " %s", f->min, f->max,
                 unit);
    else
        snprintf(why, whylen, "must be an integer between %" PRId64 " and %" PRId64, f->min,
                 f->max);
    return false;
}

static void store(const jspec_field_t *f, const json_t *v)
{
    if (f->present)
        *f->present = true;
    if (!f->dest)
        return;
    switch (f->type) {
    case JSPEC_STRING: *(const char **)f->dest = json_string_value(v); break;
    case JSPEC_INT: *(int64_t *)f->dest = json_integer_value(v); break;
    case JSPEC_BOOL: *(bool *)f->dest = json_is_true(v); break;
    case JSPEC_NUMBER: *(double *)f->dest = json_number_value(v); break;
    default: *(const json_t **)f->dest = v; break;
    }
}

static bool known(const jspec_field_t *spec, const char *key)
{
    for (const jspec_field_t *f = spec; f->name; f++)
        if (strcmp(f->name, key) == 0)
            return true;
    return false;
}

bool jspec_parse(const json_t *obj, const jspec_field_t *spec, const char *prefix,
                 jspec_error_t *err)
{
    if (!json_is_object(obj))
        return fail(err, ERR_PARAMETER_INVALID, "", prefix && *prefix ? prefix : "body",
                    "must be an object");
    const jspec_field_t *f;
    for (f = spec; f->name; f++) {
        const json_t *v = json_object_get(obj, f->name);
        if (f->present)
            *f->present = false;
        if (v && json_is_null(v) && (f->flags & JSPEC_NULLABLE))
            v = NULL;
        if (!v) {
            if (f->flags & JSPEC_REQUIRED)
                return fail(err, ERR_PARAMETER_MISSING, prefix, f->name, "is required");
            continue;
        }
        char why[160];
        if (!type_ok(f->type, v)) {
            snprintf(why, sizeof why, "must be %s", type_name(f->type));
            return fail(err, ERR_PARAMETER_INVALID, prefix, f->name, why);
        }
        if (!bounds_ok(f, v, why, sizeof why))
            return fail(err, ERR_PARAMETER_INVALID, prefix, f->name, why);
        if (f->type == JSPEC_STRING && (f->flags & JSPEC_PRINTABLE) &&
            !str_is_printable(json_string_value(v)))
            return fail(err, ERR_PARAMETER_INVALID, prefix, f->name,
                        "must contain printable ASCII characters only");
        if (f->type == JSPEC_STRING && strlen(json_string_value(v)) != json_string_length(v))
            return fail(err, ERR_PARAMETER_INVALID, prefix, f->name, "must not contain NUL");
        if (f->check) {
            const char *bad = f->check(v);
            if (bad)
                return fail(err, ERR_PARAMETER_INVALID, prefix, f->name, bad);
        }
        if (f->type == JSPEC_OBJECT && f->sub) {
            char path[128];
            if (prefix && *prefix)
                snprintf(path, sizeof path, "%s.%s", prefix, f->name);
            else
                snprintf(path, sizeof path, "%s", f->name);
            if (!jspec_parse(v, f->sub, path, err))
                return false;
        }
        store(f, v);
    }
    if (!(f->flags & JSPEC_ALLOW_EXTRA)) {
        const char *key;
        const json_t *v;
        json_object_foreach((json_t *)obj, key, v)
        {
            if (!known(spec, key))
                return fail(err, ERR_PARAMETER_UNKNOWN, prefix, key, "is not a known parameter");
        }
    }
    return true;
}

const char *jspec_check_currency(const json_t *v)
{
    const char *s = json_string_value(v);
    if (!s || strlen(s) != 3 || !isupper((unsigned char)s[0]) || !isupper((unsigned char)s[1]) ||
        !isupper((unsigned char)s[2]))
        return "must be an ISO 4217 currency code in upper case";
    return NULL;
}

const char *jspec_check_country(const json_t *v)
{
    const char *s = json_string_value(v);
    if (!s || strlen(s) != 2 || !isupper((unsigned char)s[0]) || !isupper((unsigned char)s[1]))
        return "must be an ISO 3166-1 alpha-2 country code in upper case";
    return NULL;
}

json_t *json_loads_strict(const char *buf, size_t len, json_error_t *err)
{
    /* Duplicate keys are refused: two readers of one document must never see
     * different values for the same field. */
    return json_loadb(buf, len, JSON_REJECT_DUPLICATES, err);
}

char *json_dumps_compact(const json_t *j)
{
    return json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
}
