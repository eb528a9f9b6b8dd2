/* fraud_score: block lists, then allow lists, then the rules; the sum of
 * the fired rules' scores mapped through the thresholds, with each fired
 * rule explained (its id, the merchant's reason and what tripped it).
 * Pure: no I/O, no allocation, safe from any number of threads. */
#include "fraud/internal.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------- evaluation */

static int str_cmp(const cond_t *c, const char *a, const char *b)
{
    return c->feat.ci ? strcasecmp(a, b) : strcmp(a, b);
}

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

static bool in_values(const cond_t *c, const fval_t *v)
{
    if (c->feat.type == FT_INT)
        return bsearch(&v->i, c->ivals, c->nkids, sizeof *c->ivals, cmp_i64) != NULL;
    return bsearch(&v->s, c->svals, c->nkids, sizeof *c->svals, c->feat.ci ? cmp_ci : cmp_cs) !=
           NULL;
}

static bool affix(const cond_t *c, const char *s)
{
    size_t n = strlen(s), m = strlen(c->sval);
    if (m > n)
        return false;
    const char *at = c->op == OP_STARTS_WITH ? s : s + n - m;
    return c->feat.ci ? !strncasecmp(at, c->sval, m) : !strncmp(at, c->sval, m);
}

/* -1, 0, 1 ordering of a feature value against the literal or the other
 * feature; false when the other feature is absent. */
static bool order(const cond_t *c, const fraud_features_t *f, const fval_t *v, int *ord)
{
    fval_t rv = {.present = true, .i = c->ival, .s = c->sval, .b = c->bval};
    if (c->ref >= 0)
        feat_value(f, c->ref, &rv);
    if (!rv.present)
        return false;
    switch (c->feat.type) {
    case FT_INT:
        *ord = (v->i > rv.i) - (v->i < rv.i);
        break;
    case FT_STR:
        *ord = str_cmp(c, v->s, rv.s);
        break;
    default:
        *ord = v->b != rv.b;
        break;
    }
    return true;
}

static bool cmp_eval(const cond_t *c, const fraud_features_t *f)
{
    fval_t v;
    feat_value(f, c->feat.id, &v);
    if (c->op == OP_PRESENT || c->op == OP_ABSENT)
        return v.present == (c->op == OP_PRESENT);
    if (!v.present)
        return false;
    if (c->op == OP_IN || c->op == OP_NOT_IN)
        return in_values(c, &v) == (c->op == OP_IN);
    if (c->op == OP_STARTS_WITH || c->op == OP_ENDS_WITH)
        return affix(c, v.s);
    int o;
    if (!order(c, f, &v, &o))
        return false;
    switch (c->op) {
    case OP_EQ:
        return o == 0;
    case OP_NE:
        return o != 0;
    case OP_GT:
        return o > 0;
    case OP_GTE:
        return o >= 0;
    case OP_LT:
        return o < 0;
    case OP_LTE:
        return o <= 0;
    default:
        return false;
    }
}

static bool eval(const cond_t *c, const fraud_features_t *f)
{
    switch (c->kind) {
    case K_ALL:
        for (size_t i = 0; i < c->nkids; i++)
            if (!eval(&c->kids[i], f))
                return false;
        return true;
    case K_ANY:
        for (size_t i = 0; i < c->nkids; i++)
            if (eval(&c->kids[i], f))
                return true;
        return false;
    case K_NOT:
        return !eval(c->kids, f);
    default:
        return cmp_eval(c, f);
    }
}

/* ------------------------------------------------------------ explanation */

typedef struct {
    char *buf;
    size_t len, used;
} sbuf_t;

static void sb_printf(sbuf_t *b, const char *fmt, ...) PC_PRINTF(2, 3);
static void sb_printf(sbuf_t *b, const char *fmt, ...)
{
    if (b->used + 1 >= b->len)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->buf + b->used, b->len - b->used, fmt, ap);
    va_end(ap);
    if (n > 0)
        b->used = b->used + (size_t)n < b->len ? b->used + (size_t)n : b->len - 1;
}

static void sb_value(sbuf_t *b, ftype_t t, const fval_t *v)
{
    if (!v->present)
        sb_printf(b, "absent");
    else if (t == FT_INT)
        sb_printf(b, "%" PRId64, v->i);
    else if (t == FT_STR)
        sb_printf(b, "%.64s", v->s);
    else
        sb_printf(b, "%s", v->b ? "true" : "false");
}

static void describe_cmp(sbuf_t *b, const cond_t *c, const fraud_features_t *f)
{
    char n1[64], n2[64];
    fval_t v;
    feat_value(f, c->feat.id, &v);
    sb_printf(b, "%s is ", feat_name(c->feat.id, n1, sizeof n1));
    if (c->op == OP_PRESENT || c->op == OP_ABSENT) {
        sb_printf(b, "%s", v.present ? "present" : "absent");
        return;
    }
    sb_value(b, c->feat.type, &v);
    if (c->op == OP_IN || c->op == OP_NOT_IN) {
        sb_printf(b, " (%s a list of %zu)", c->op == OP_IN ? "in" : "not in", c->nkids);
    } else if (c->ref >= 0) {
        fval_t rv;
        feat_value(f, c->ref, &rv);
        sb_printf(b, ", %s is ", feat_name(c->ref, n2, sizeof n2));
        sb_value(b, c->feat.type, &rv);
        sb_printf(b, " (%s)", op_names[c->op]);
    } else {
        fval_t lit = {.present = true, .i = c->ival, .s = c->sval, .b = c->bval};
        sb_printf(b, " (%s ", op_names[c->op]);
        sb_value(b, c->feat.type, &lit);
        sb_printf(b, ")");
    }
}

/* Says what made a fired condition true: every part of an "all", the first
 * true part of an "any". */
static void describe(sbuf_t *b, const cond_t *c, const fraud_features_t *f)
{
    switch (c->kind) {
    case K_ALL:
        for (size_t i = 0; i < c->nkids; i++) {
            if (i)
                sb_printf(b, " and ");
            describe(b, &c->kids[i], f);
        }
        break;
    case K_ANY:
        for (size_t i = 0; i < c->nkids; i++)
            if (eval(&c->kids[i], f)) {
                describe(b, &c->kids[i], f);
                break;
            }
        break;
    case K_NOT:
        sb_printf(b, "not (");
        describe(b, c->kids, f);
        sb_printf(b, ")");
        break;
    default:
        describe_cmp(b, c, f);
        break;
    }
}

/* ---------------------------------------------------------------- results */

void detail_sanitize(char *s)
{
    /* Values are cut at fixed widths, which may split a UTF-8 sequence;
     * the detail is a diagnostic, so it is kept to ASCII. */
    for (char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            *p = '?';
    /* Last line of defence: no feature holds a card number, but a hostile
     * email or device id might look like one. */
    log_mask_pans(s, strlen(s));
}

static int strength(const fraud_reason_t *r)
{
    int s = abs(r->score);
    return r->action == FRAUD_ACTION_DECLINE  ? 2000 + s
           : r->action == FRAUD_ACTION_REVIEW ? 1000 + s
                                              : s;
}

void result_add(fraud_result_t *out, const fraud_reason_t *cand)
{
    if (out->nreasons < FRAUD_MAX_REASONS) {
        out->reasons[out->nreasons++] = *cand;
        return;
    }
    int weakest = 0;
    for (int i = 1; i < out->nreasons; i++)
        if (strength(&out->reasons[i]) < strength(&out->reasons[weakest]))
            weakest = i;
    if (strength(cand) > strength(&out->reasons[weakest]))
        out->reasons[weakest] = *cand;
}

/* Strongest first; insertion sort keeps rule order among equals. */
void result_sort(fraud_result_t *out)
{
    for (int i = 1; i < out->nreasons; i++) {
        fraud_reason_t tmp = out->reasons[i];
        int j = i - 1;
        while (j >= 0 && strength(&out->reasons[j]) < strength(&tmp)) {
            out->reasons[j + 1] = out->reasons[j];
            j--;
        }
        out->reasons[j + 1] = tmp;
    }
}

static void rule_fired(const rule_t *rule, const fraud_features_t *f, fraud_result_t *out)
{
    fraud_reason_t rs = {.score = rule->score, .action = rule->action};
    snprintf(rs.rule, sizeof rs.rule, "%s", rule->id);
    snprintf(rs.reason, sizeof rs.reason, "%s", rule->reason);
    sbuf_t b = {.buf = rs.detail, .len = sizeof rs.detail};
    describe(&b, &rule->cond, f);
    if (b.used == b.len - 1 && b.len > 4)
        memcpy(rs.detail + b.len - 4, "...", 4);
    detail_sanitize(rs.detail);
    out->nfired++;
    result_add(out, &rs);
}

int fraud_score(const fraud_features_t *f, const fraud_rules_t *r, fraud_result_t *out)
{
    memset(out, 0, sizeof *out);
    if (!f || !r)
        return -1;
    if (lists_match(&r->block, "block", false, f, out) > 0) {
        out->score = 100;
        out->decision = FRAUD_DECLINE;
        result_sort(out);
        return 0;
    }
    if (lists_match(&r->allow, "allow", true, f, out) > 0) {
        out->score = 0;
        out->decision = FRAUD_APPROVE;
        result_sort(out);
        return 0;
    }
    int64_t total = 0;
    fraud_action_t action = FRAUD_ACTION_NONE;
    for (size_t i = 0; i < r->nrules; i++) {
        const rule_t *rule = &r->rules[i];
        if (!rule->enabled || !eval(&rule->cond, f))
            continue;
        total += rule->score;
        if (rule->action > action)
            action = rule->action;
        rule_fired(rule, f, out);
    }
    out->score = total < 0 ? 0 : total > 100 ? 100 : (int)total;
    out->decision = out->score >= r->decline_threshold  ? FRAUD_DECLINE
                    : out->score >= r->review_threshold ? FRAUD_REVIEW
                                                        : FRAUD_APPROVE;
    if (action == FRAUD_ACTION_DECLINE)
        out->decision = FRAUD_DECLINE;
    else if (action == FRAUD_ACTION_REVIEW && out->decision == FRAUD_APPROVE)
        out->decision = FRAUD_REVIEW;
    result_sort(out);
    return 0;
}

const char *fraud_decision_str(fraud_decision_t d)
{
    switch (d) {
    case FRAUD_REVIEW:
        return "review";
    case FRAUD_DECLINE:
        return "decline";
    default:
        return "approve";
    }
}

json_t *fraud_result_json(const fraud_result_t *r)
{
    json_t *reasons = json_array();
    for (int i = 0; i < r->nreasons; i++) {
        const fraud_reason_t *rs = &r->reasons[i];
        json_t *o = json_pack("{s:s, s:s, s:s, s:i}", "rule", rs->rule, "reason", rs->reason,
                              "detail", rs->detail, "score", rs->score);
        if (o && rs->action != FRAUD_ACTION_NONE)
            json_object_set_new(
                o, "action",
                json_string(rs->action == FRAUD_ACTION_DECLINE ? "decline" : "review"));
        json_array_append_new(reasons, o);
    }
    json_t *j = json_pack("{s:i, s:s, s:o}", "score", r->score, "decision",
                          fraud_decision_str(r->decision), "reasons", reasons);
    if (j && r->nfired > r->nreasons)
        json_object_set_new(j, "reasons_omitted", json_integer(r->nfired - r->nreasons));
    return j;
}
