/* Rules documents: validation that names the rule and the field at fault,
 * compilation into condition trees over feature ids, reference counting,
 * and the default set compiled into the binary.
 *
 * Trade-off: a document is compiled once (per merchant and version) into an
 * arena, so scoring touches no JSON and allocates nothing; the price is a
 * private deep copy of the document whose strings the compiled form
 * borrows. */
#include "fraud/internal.h"
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ARENA_CHUNK 8192

struct arena_chunk {
    arena_chunk_t *next;
    size_t used, cap;
    max_align_t data[];
};

const char *const op_names[OP_COUNT] = {"eq",          "ne",        "gt",      "gte",
                                        "lt",          "lte",       "in",      "not_in",
                                        "starts_with", "ends_with", "present", "absent"};

#define OP_LIST "eq, ne, gt, gte, lt, lte, in, not_in, starts_with, ends_with, present, absent"

void *rules_alloc(fraud_rules_t *r, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    arena_chunk_t *c = r->arena;
    if (!c || c->cap - c->used < size) {
        size_t cap = size > ARENA_CHUNK ? size : ARENA_CHUNK;
        c = malloc(sizeof *c + cap);
        if (!c)
            return NULL;
        c->next = r->arena;
        c->used = 0;
        c->cap = cap;
        r->arena = c;
    }
    void *p = (unsigned char *)c->data + c->used;
    c->used += size;
    memset(p, 0, size);
    return p;
}

/* ---------------------------------------------------------------- errors */

typedef struct {
    fraud_rules_t *r;
    fraud_rules_error_t *err;
    const char *rule_id;
    int nodes;
} pctx_t;

static bool failv(pctx_t *x, err_code_t code, const char *param, const char *fmt, va_list ap)
{
    fraud_rules_error_t *e = x->err;
    snprintf(e->param, sizeof e->param, "%s", param);
    snprintf(e->rule_id, sizeof e->rule_id, "%s", x->rule_id ? x->rule_id : "");
    vsnprintf(e->reason, sizeof e->reason, fmt, ap);
    e->code = code;
    return false;
}

static bool fail(pctx_t *x, err_code_t code, const char *param, const char *fmt, ...)
    PC_PRINTF(4, 5);
static bool fail(pctx_t *x, err_code_t code, const char *param, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    failv(x, code, param, fmt, ap);
    va_end(ap);
    return false;
}

/* A merchant's string quoted back in an error: printable ASCII only and
 * short, since it ends up in a response and a log line. */
static const char *excerpt(const char *s, char buf[48])
{
    size_t n = 0;
    for (; s && s[n] && n < 40; n++)
        buf[n] = (s[n] >= 0x20 && s[n] < 0x7f) ? s[n] : '?';
    buf[n] = '\0';
    if (s && s[n])
        snprintf(buf + n, 48 - n, "...");
    return buf;
}

static char *subpath(char *buf, size_t len, const char *base, const char *fmt, ...) PC_PRINTF(4, 5);
static char *subpath(char *buf, size_t len, const char *base, const char *fmt, ...)
{
    int n = snprintf(buf, len, "%s", base);
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < len)
        vsnprintf(buf + n, len - (size_t)n, fmt, ap);
    va_end(ap);
    return buf;
}

void fraud_rules_error_message(const fraud_rules_error_t *e, char *buf, size_t len)
{
    if (e->rule_id[0])
        snprintf(buf, len, "In rule \"%s\": %s %s.", e->rule_id, e->param, e->reason);
    else
        snprintf(buf, len, "%s %s.", e->param, e->reason);
}

/* ------------------------------------------------------------- conditions */

static int cmp_cs(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_ci(const void *a, const void *b)
{
    return strcasecmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static bool op_applies(op_t op, ftype_t t)
{
    switch (t) {
    case FT_INT:
        return op != OP_STARTS_WITH && op != OP_ENDS_WITH;
    case FT_STR:
        return op != OP_GT && op != OP_GTE && op != OP_LT && op != OP_LTE;
    default:
        return op == OP_EQ || op == OP_NE;
    }
}

static const char *type_word(ftype_t t)
{
    return t == FT_INT ? "an integer" : t == FT_STR ? "a string" : "a boolean";
}

static const char *type_adj(ftype_t t)
{
    return t == FT_INT ? "integer" : t == FT_STR ? "string" : "boolean";
}

/* One literal of the feature's type; strings are borrowed from the copy. */
static bool literal_parse(pctx_t *x, const json_t *v, ftype_t t, const char *path, int64_t *i,
                          const char **s, bool *b)
{
    bool ok = t == FT_INT   ? json_is_integer(v)
              : t == FT_STR ? json_is_string(v)
                            : json_is_boolean(v);
    if (!ok)
        return fail(x, ERR_PARAMETER_INVALID, path, "must be %s", type_word(t));
    if (t == FT_INT)
        *i = json_integer_value(v);
    else if (t == FT_BOOL)
        *b = json_is_true(v);
    else {
        size_t n = json_string_length(v);
        if (n < 1 || n > 254 || strlen(json_string_value(v)) != n)
            return fail(x, ERR_PARAMETER_INVALID, path, "must have between 1 and 254 characters");
        *s = json_string_value(v);
    }
    return true;
}

static bool values_parse(pctx_t *x, const json_t *v, cond_t *c, const char *path)
{
    if (!json_is_array(v) || json_array_size(v) < 1 || json_array_size(v) > FRAUD_MAX_IN_VALUES)
        return fail(x, ERR_PARAMETER_INVALID, path,
                    "must be an array of 1 to %d values for operator %s", FRAUD_MAX_IN_VALUES,
                    op_names[c->op]);
    size_t n = json_array_size(v);
    if (c->feat.type == FT_INT)
        c->ivals = rules_alloc(x->r, n * sizeof *c->ivals);
    else
        c->svals = rules_alloc(x->r, n * sizeof *c->svals);
    if (!c->ivals && !c->svals)
        return fail(x, ERR_INTERNAL, path, "could not be stored (out of memory)");
    for (size_t k = 0; k < n; k++) {
        char p[128];
        bool dummy;
        subpath(p, sizeof p, path, "[%zu]", k);
        int64_t iv = 0;
        const char *sv = NULL;
        if (!literal_parse(x, json_array_get(v, k), c->feat.type, p, &iv, &sv, &dummy))
            return false;
        if (c->ivals)
            c->ivals[k] = iv;
        else
            c->svals[k] = sv;
    }
    c->nkids = n;
    if (c->ivals)
        qsort(c->ivals, n, sizeof *c->ivals, cmp_i64);
    else
        qsort(c->svals, n, sizeof *c->svals, c->feat.ci ? cmp_ci : cmp_cs);
    return true;
}

/* {"feature": "card_country"} as a value: compare two features. */
static bool ref_parse(pctx_t *x, const json_t *v, cond_t *c, const char *path)
{
    char p[128], q[48];
    const json_t *name = json_object_get(v, "feature");
    if (json_object_size(v) != 1 || !json_is_string(name))
        return fail(x, ERR_PARAMETER_INVALID, path,
                    "must be %s or {\"feature\": name} to compare with another feature",
                    type_word(c->feat.type));
    feat_t rf;
    if (!feat_lookup(json_string_value(name), &rf))
        return fail(x, ERR_PARAMETER_INVALID, subpath(p, sizeof p, path, ".feature"),
                    "is not a known feature: \"%s\" (see docs/fraud.md)",
                    excerpt(json_string_value(name), q));
    if (rf.type != c->feat.type)
        return fail(x, ERR_PARAMETER_INVALID, subpath(p, sizeof p, path, ".feature"),
                    "names a %s feature; it must be %s like the compared one", type_adj(rf.type),
                    type_adj(c->feat.type));
    if (c->op > OP_LTE)
        return fail(x, ERR_PARAMETER_INVALID, path,
                    "may name a feature only with eq, ne, gt, gte, lt or lte");
    c->ref = rf.id;
    return true;
}

static bool value_parse(pctx_t *x, const json_t *v, cond_t *c, const char *path)
{
    char p[128];
    subpath(p, sizeof p, path, ".value");
    if (c->op == OP_PRESENT || c->op == OP_ABSENT) {
        if (v)
            return fail(x, ERR_PARAMETER_UNKNOWN, p, "must be left out with operator %s",
                        op_names[c->op]);
        return true;
    }
    if (!v)
        return fail(x, ERR_PARAMETER_MISSING, p, "is required with operator %s", op_names[c->op]);
    if (c->op == OP_IN || c->op == OP_NOT_IN)
        return values_parse(x, v, c, p);
    if (json_is_object(v))
        return ref_parse(x, v, c, p);
    return literal_parse(x, v, c->feat.type, p, &c->ival, &c->sval, &c->bval);
}

static bool cmp_parse(pctx_t *x, const json_t *j, const char *path, cond_t *c)
{
    char p[128], q[48];
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)j, key, v)
    {
        if (strcmp(key, "feature") && strcmp(key, "op") && strcmp(key, "value"))
            return fail(x, ERR_PARAMETER_UNKNOWN,
                        subpath(p, sizeof p, path, ".%s", excerpt(key, q)),
                        "is not a known parameter (a condition has feature, op and value)");
    }
    const json_t *feature = json_object_get(j, "feature");
    const json_t *op = json_object_get(j, "op");
    subpath(p, sizeof p, path, ".feature");
    if (!feature)
        return fail(x, ERR_PARAMETER_MISSING, p, "is required (or use all, any or not)");
    if (!json_is_string(feature))
        return fail(x, ERR_PARAMETER_INVALID, p, "must be a string");
    if (!feat_lookup(json_string_value(feature), &c->feat))
        return fail(x, ERR_PARAMETER_INVALID, p,
                    "is not a known feature: \"%s\" (see docs/fraud.md)",
                    excerpt(json_string_value(feature), q));
    subpath(p, sizeof p, path, ".op");
    if (!op)
        return fail(x, ERR_PARAMETER_MISSING, p, "is required");
    if (!json_is_string(op))
        return fail(x, ERR_PARAMETER_INVALID, p, "must be a string");
    int k;
    for (k = 0; k < OP_COUNT && strcmp(op_names[k], json_string_value(op)); k++)
        ;
    if (k == OP_COUNT)
        return fail(x, ERR_PARAMETER_INVALID, p,
                    "is not a known operator: \"%s\" (use one of " OP_LIST ")",
                    excerpt(json_string_value(op), q));
    c->op = (op_t)k;
    if (!op_applies(c->op, c->feat.type))
        return fail(x, ERR_PARAMETER_INVALID, p, "%s does not apply to the %s feature %s",
                    op_names[c->op], type_adj(c->feat.type), json_string_value(feature));
    c->kind = K_CMP;
    c->ref = -1;
    return value_parse(x, json_object_get(j, "value"), c, path);
}

static bool cond_parse(pctx_t *x, const json_t *j, const char *path, int depth, cond_t *c);

static bool compound_parse(pctx_t *x, const json_t *j, const char *path, int depth, cond_t *c)
{
    char p[128], q[48];
    const char *key = NULL;
    const json_t *v = NULL;
    const char *k2;
    const json_t *v2;
    json_object_foreach((json_t *)j, k2, v2)
    {
        if (strcmp(k2, "all") && strcmp(k2, "any") && strcmp(k2, "not"))
            return fail(x, ERR_PARAMETER_UNKNOWN, subpath(p, sizeof p, path, ".%s", excerpt(k2, q)),
                        "is not a known parameter (all, any and not stand alone)");
        if (key)
            return fail(x, ERR_PARAMETER_INVALID, path,
                        "must have exactly one of all, any and not; nest them to combine");
        key = k2;
        v = v2;
    }
    if (depth >= FRAUD_MAX_DEPTH)
        return fail(x, ERR_PARAMETER_INVALID, subpath(p, sizeof p, path, ".%s", key),
                    "nests conditions deeper than %d levels", FRAUD_MAX_DEPTH);
    if (!strcmp(key, "not")) {
        c->kind = K_NOT;
        c->kids = rules_alloc(x->r, sizeof *c->kids);
        c->nkids = 1;
        return c->kids && cond_parse(x, v, subpath(p, sizeof p, path, ".not"), depth + 1, c->kids);
    }
    c->kind = strcmp(key, "all") ? K_ANY : K_ALL;
    subpath(p, sizeof p, path, ".%s", key);
    if (!json_is_array(v) || json_array_size(v) < 1 || json_array_size(v) > FRAUD_MAX_NODES)
        return fail(x, ERR_PARAMETER_INVALID, p, "must be an array of 1 to %d conditions",
                    FRAUD_MAX_NODES);
    c->nkids = json_array_size(v);
    c->kids = rules_alloc(x->r, c->nkids * sizeof *c->kids);
    if (!c->kids)
        return fail(x, ERR_INTERNAL, p, "could not be stored (out of memory)");
    for (size_t k = 0; k < c->nkids; k++) {
        char kp[128];
        if (!cond_parse(x, json_array_get(v, k), subpath(kp, sizeof kp, p, "[%zu]", k), depth + 1,
                        &c->kids[k]))
            return false;
    }
    return true;
}

static bool cond_parse(pctx_t *x, const json_t *j, const char *path, int depth, cond_t *c)
{
    if (!json_is_object(j))
        return fail(x, ERR_PARAMETER_INVALID, path,
                    "must be a condition: {\"feature\", \"op\", \"value\"}, {\"all\": [...]}, "
                    "{\"any\": [...]} or {\"not\": {...}}");
    if (++x->nodes > FRAUD_MAX_NODES)
        return fail(x, ERR_PARAMETER_INVALID, path, "makes the rule longer than %d conditions",
                    FRAUD_MAX_NODES);
    bool compound =
        json_object_get(j, "all") || json_object_get(j, "any") || json_object_get(j, "not");
    if (compound && json_object_get(j, "feature"))
        return fail(x, ERR_PARAMETER_INVALID, path,
                    "must have either feature or one of all, any and not, not both");
    if (compound)
        return compound_parse(x, j, path, depth, c);
    return cmp_parse(x, j, path, c);
}

/* ------------------------------------------------------------------ rules */

static const char *check_rule_id(const json_t *v)
{
    for (const char *s = json_string_value(v); *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-' || *s == '.'))
            return "must contain only letters, digits, '_', '-' and '.'";
    return NULL;
}

static const char *check_action(const json_t *v)
{
    const char *s = json_string_value(v);
    return strcmp(s, "decline") && strcmp(s, "review") ? "must be \"decline\" or \"review\"" : NULL;
}

/* Reasons are shown to merchants and may be in any language: any UTF-8
 * (jansson guarantees validity) except control characters. */
static const char *check_text(const json_t *v)
{
    for (const unsigned char *s = (const unsigned char *)json_string_value(v); *s; s++)
        if (*s < 0x20 || *s == 0x7f)
            return "must not contain control characters";
    return NULL;
}

static bool from_jspec(pctx_t *x, const jspec_error_t *je)
{
    return fail(x, je->code, je->param, "%s", je->reason);
}

static bool rule_parse(pctx_t *x, const json_t *j, size_t idx, rule_t *out)
{
    char path[64], p[128];
    snprintf(path, sizeof path, "rules[%zu]", idx);
    const json_t *idv = json_is_object(j) ? json_object_get(j, "id") : NULL;
    x->rule_id =
        json_is_string(idv) && json_string_length(idv) <= FRAUD_ID_MAX && !check_rule_id(idv)
            ? json_string_value(idv)
            : NULL;
    x->nodes = 0;
    const char *id = NULL, *action = NULL, *reason = NULL;
    const json_t *cond = NULL;
    int64_t score = 0;
    bool enabled = true;
    const jspec_field_t spec[] = {
        {.name = "id",
         .type = JSPEC_STRING,
         .flags = JSPEC_REQUIRED,
         .min = 1,
         .max = FRAUD_ID_MAX,
         .dest = &id,
         .check = check_rule_id},
        JSPEC_OBJ("if", JSPEC_REQUIRED, NULL, &cond),
        JSPEC_I64("score", 0, -100, 100, &score),
        {.name = "action", .type = JSPEC_STRING, .dest = &action, .check = check_action},
        {.name = "reason",
         .type = JSPEC_STRING,
         .min = 1,
         .max = FRAUD_TEXT_MAX,
         .dest = &reason,
         .check = check_text},
        JSPEC_BOOLEAN("enabled", 0, &enabled),
        JSPEC_END,
    };
    jspec_error_t je;
    if (!jspec_parse(j, spec, path, &je))
        return from_jspec(x, &je);
    for (size_t k = 0; k < idx; k++)
        if (!strcmp(x->r->rules[k].id, id))
            return fail(x, ERR_PARAMETER_INVALID, subpath(p, sizeof p, path, ".id"),
                        "repeats the id of rules[%zu]; ids must be unique", k);
    if (score == 0 && !action)
        return fail(x, ERR_PARAMETER_MISSING, subpath(p, sizeof p, path, ".score"),
                    "is required: a rule needs a non-zero score or an action");
    out->id = id;
    out->reason = reason ? reason : id;
    out->score = (int)score;
    out->action = !action                      ? FRAUD_ACTION_NONE
                  : !strcmp(action, "decline") ? FRAUD_ACTION_DECLINE
                                               : FRAUD_ACTION_REVIEW;
    out->enabled = enabled;
    return cond_parse(x, cond, subpath(p, sizeof p, path, ".if"), 0, &out->cond);
}

/* --------------------------------------------------------------- document */

static bool doc_parse(pctx_t *x, const json_t *doc)
{
    fraud_rules_t *r = x->r;
    int64_t review = FRAUD_DEFAULT_REVIEW, decline = FRAUD_DEFAULT_DECLINE;
    const json_t *block = NULL, *allow = NULL, *rules = NULL;
    const jspec_field_t spec[] = {
        JSPEC_I64("review_threshold", 0, 1, 100, &review),
        JSPEC_I64("decline_threshold", 0, 1, 100, &decline),
        JSPEC_OBJ("block", 0, NULL, &block),
        JSPEC_OBJ("allow", 0, NULL, &allow),
        JSPEC_ARR("rules", 0, 0, FRAUD_MAX_RULES, &rules),
        JSPEC_END,
    };
    jspec_error_t je;
    if (!jspec_parse(doc, spec, "", &je))
        return from_jspec(x, &je);
    if (review > decline)
        return fail(x, ERR_PARAMETER_INVALID, "review_threshold",
                    "must not be greater than decline_threshold (%d)", (int)decline);
    r->review_threshold = (int)review;
    r->decline_threshold = (int)decline;
    if (block && !lists_parse(r, block, "block", &r->block, x->err))
        return false;
    if (allow && !lists_parse(r, allow, "allow", &r->allow, x->err))
        return false;
    r->nrules = rules ? json_array_size(rules) : 0;
    r->rules = rules_alloc(r, (r->nrules ? r->nrules : 1) * sizeof *r->rules);
    if (!r->rules)
        return fail(x, ERR_INTERNAL, "rules", "could not be stored (out of memory)");
    for (size_t i = 0; i < r->nrules; i++)
        if (!rule_parse(x, json_array_get(rules, i), i, &r->rules[i]))
            return false;
    return true;
}

fraud_rules_t *fraud_rules_parse(const json_t *doc, int64_t version, fraud_rules_error_t *err)
{
    memset(err, 0, sizeof *err);
    fraud_rules_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    atomic_init(&r->refs, 1);
    r->version = version;
    pctx_t x = {.r = r, .err = err};
    size_t bytes = json_is_object(doc) ? json_dumpb(doc, NULL, 0, JSON_COMPACT) : 0;
    bool ok;
    if (!json_is_object(doc))
        ok = fail(&x, ERR_PARAMETER_INVALID, "body", "must be an object");
    else if (bytes > FRAUD_MAX_DOC_BYTES)
        ok = fail(&x, ERR_PARAMETER_INVALID, "body",
                  "is %zu bytes; a rules document may have at most %d", bytes, FRAUD_MAX_DOC_BYTES);
    /* The compiled rules borrow strings from a private copy, so a caller
     * may change or free its document afterwards. */
    else if (!(r->doc = json_deep_copy(doc)))
        ok = fail(&x, ERR_INTERNAL, "body", "could not be copied (out of memory)");
    else
        ok = doc_parse(&x, r->doc);
    if (!ok) {
        fraud_rules_release(r);
        return NULL;
    }
    return r;
}

fraud_rules_t *fraud_rules_ref(fraud_rules_t *r)
{
    if (r)
        atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
    return r;
}

void fraud_rules_release(fraud_rules_t *r)
{
    if (!r || atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) != 1)
        return;
    while (r->arena) {
        arena_chunk_t *next = r->arena->next;
        free(r->arena);
        r->arena = next;
    }
    json_decref(r->doc);
    free(r);
}

const json_t *fraud_rules_doc(const fraud_rules_t *r)
{
    return r->doc;
}

int64_t fraud_rules_version(const fraud_rules_t *r)
{
    return r->version;
}

size_t fraud_rules_count(const fraud_rules_t *r)
{
    return r->nrules;
}

const char *fraud_rules_id(const fraud_rules_t *r, size_t i)
{
    return i < r->nrules ? r->rules[i].id : NULL;
}

/* ------------------------------------------------------------ default set */

static fraud_rules_t *default_rules;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

static void default_load(void)
{
    json_error_t je;
    json_t *doc =
        json_loads_strict(fraud_data_default_rules, strlen(fraud_data_default_rules), &je);
    fraud_rules_error_t err;
    default_rules = doc ? fraud_rules_parse(doc, 0, &err) : NULL;
    json_decref(doc);
    if (!default_rules) {
        /* A defect of the build, caught by the unit tests: never serve
         * without rules. */
        char msg[512];
        if (doc)
            fraud_rules_error_message(&err, msg, sizeof msg);
        else
            snprintf(msg, sizeof msg, "line %d: %s", je.line, je.text);
        log_json(LOG_ERROR, "the built-in default fraud rules are invalid",
                 json_pack("{s:s}", "error", msg));
        abort();
    }
}

fraud_rules_t *fraud_rules_default(void)
{
    pthread_once(&default_once, default_load);
    return fraud_rules_ref(default_rules);
}

const json_t *fraud_rules_default_doc(void)
{
    pthread_once(&default_once, default_load);
    return default_rules->doc;
}

json_t *fraud_rules_doc_complete(const json_t *doc)
{
    json_t *d = json_deep_copy(doc);
    if (!json_is_object(d)) {
        json_decref(d);
        return NULL;
    }
    if (!json_object_get(d, "review_threshold"))
        json_object_set_new(d, "review_threshold", json_integer(FRAUD_DEFAULT_REVIEW));
    if (!json_object_get(d, "decline_threshold"))
        json_object_set_new(d, "decline_threshold", json_integer(FRAUD_DEFAULT_DECLINE));
    static const char *const sides[] = {"block", "allow"};
    for (size_t i = 0; i < 2; i++) {
        json_t *side = json_object_get(d, sides[i]);
        if (!json_is_object(side)) {
            side = json_object();
            json_object_set_new(d, sides[i], side);
        }
        for (int l = 0; l < L_COUNT; l++)
            if (!json_object_get(side, list_names[l]))
                json_object_set_new(side, list_names[l], json_array());
    }
    if (!json_object_get(d, "rules"))
        json_object_set_new(d, "rules", json_array());
    return d;
}
