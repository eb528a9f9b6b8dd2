/* Allow and block lists of a rules document: parsing (each entry checked
 * and named on error), and matching a checkout's features against them.
 * Exact lists are sorted once and binary-searched; IP entries may be CIDR
 * ranges; BIN entries are prefixes. */
#include "fraud/internal.h"
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *const list_names[L_COUNT] = {"emails", "email_domains", "ips",    "fingerprints",
                                         "bins",   "countries",     "devices"};

/* Singular nouns for reasons ("email is on the block list"). */
static const char *const list_nouns[L_COUNT] = {
    "email", "email domain", "IP address", "card fingerprint", "BIN", "country", "device"};

static bool list_ci(int l)
{
    return l == L_EMAILS || l == L_DOMAINS || l == L_COUNTRIES;
}

static int cmp_cs(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_ci(const void *a, const void *b)
{
    return strcasecmp(*(const char *const *)a, *(const char *const *)b);
}

bool ip_parse(const char *s, int *family, unsigned char addr[16])
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (inet_pton(AF_INET, s, addr) == 1) {
        *family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, s, addr) != 1)
        return false;
    /* ::ffff:a.b.c.d is the IPv4 address a.b.c.d to a dual-stack listener. */
    if (!memcmp(addr, mapped, sizeof mapped)) {
        memmove(addr, addr + 12, 4);
        *family = AF_INET;
    } else {
        *family = AF_INET6;
    }
    return true;
}

static const char *cidr_parse(const char *s, cidr_t *out)
{
    char buf[64];
    if (strlen(s) >= sizeof buf)
        return "must be an IP address or a CIDR range like 203.0.113.0/24";
    snprintf(buf, sizeof buf, "%s", s);
    char *slash = strchr(buf, '/');
    if (slash)
        *slash = '\0';
    if (!ip_parse(buf, &out->family, out->addr))
        return "must be an IP address or a CIDR range like 203.0.113.0/24";
    int max = out->family == AF_INET ? 32 : 128;
    out->prefix = max;
    if (slash) {
        char *end;
        long n = strtol(slash + 1, &end, 10);
        if (!isdigit((unsigned char)slash[1]) || *end || n < 0 || n > max)
            return "has a prefix length out of range for its address family";
        out->prefix = (int)n;
    }
    out->text = s;
    return NULL;
}

static bool has_space_or_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || *s == 0x7f)
            return true;
    return false;
}

static const char *entry_check(int l, const char *s, size_t n)
{
    switch (l) {
    case L_EMAILS:
        if (n < 3 || n > 254 || has_space_or_ctl(s) || !strchr(s + 1, '@') || s[n - 1] == '@')
            return "must be an email address (3 to 254 characters, no spaces)";
        return NULL;
    case L_DOMAINS:
        if (n < 1 || n > 253 || has_space_or_ctl(s) || strchr(s, '@'))
            return "must be a domain name such as example.org";
        return NULL;
    case L_BINS:
        if (n < 1 || n > 8 || strspn(s, "0123456789") != n)
            return "must be a BIN prefix of 1 to 8 digits";
        return NULL;
    case L_COUNTRIES: {
        json_t *tmp = json_string(s);
        const char *why = jspec_check_country(tmp);
        json_decref(tmp);
        return why;
    }
    default: /* fingerprints, devices: opaque tokens */
        if (n < 1 || n > 128 || has_space_or_ctl(s))
            return "must have 1 to 128 characters without spaces";
        return NULL;
    }
}

static bool entries_parse(fraud_rules_t *r, const json_t *arr, int l, const char *path,
                          lists_t *out, fraud_rules_error_t *err)
{
    size_t n = json_array_size(arr);
    out->s[l] = rules_alloc(r, (n ? n : 1) * sizeof *out->s[l]);
    if (l == L_IPS)
        out->cidrs = rules_alloc(r, (n ? n : 1) * sizeof *out->cidrs);
    if (!out->s[l] || (l == L_IPS && !out->cidrs)) {
        snprintf(err->param, sizeof err->param, "%s", path);
        snprintf(err->reason, sizeof err->reason, "could not be stored (out of memory)");
        err->code = ERR_INTERNAL;
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_array_get(arr, i);
        const char *why = !json_is_string(v) ? "must be a string" : NULL;
        if (!why && strlen(json_string_value(v)) != json_string_length(v))
            why = "must not contain NUL";
        if (!why)
            why = l == L_IPS ? cidr_parse(json_string_value(v), &out->cidrs[i])
                             : entry_check(l, json_string_value(v), json_string_length(v));
        if (why) {
            snprintf(err->param, sizeof err->param, "%s[%zu]", path, i);
            snprintf(err->reason, sizeof err->reason, "%s", why);
            err->code = ERR_PARAMETER_INVALID;
            return false;
        }
        out->s[l][i] = json_string_value(v);
    }
    out->n[l] = n;
    if (l != L_IPS)
        qsort(out->s[l], n, sizeof *out->s[l], list_ci(l) ? cmp_ci : cmp_cs);
    return true;
}

bool lists_parse(fraud_rules_t *r, const json_t *obj, const char *name, lists_t *out,
                 fraud_rules_error_t *err)
{
    json_t *arrs[L_COUNT] = {0};
    jspec_field_t spec[L_COUNT + 1];
    memset(spec, 0, sizeof spec);
    for (int l = 0; l < L_COUNT; l++)
        spec[l] = (jspec_field_t)JSPEC_ARR(list_names[l], 0, 0, FRAUD_MAX_LIST, &arrs[l]);
    jspec_error_t je;
    if (!jspec_parse(obj, spec, name, &je)) {
        snprintf(err->param, sizeof err->param, "%s", je.param);
        snprintf(err->reason, sizeof err->reason, "%s", je.reason);
        err->code = je.code;
        return false;
    }
    for (int l = 0; l < L_COUNT; l++) {
        char path[64];
        snprintf(path, sizeof path, "%s.%s", name, list_names[l]);
        if (arrs[l] && !entries_parse(r, arrs[l], l, path, out, err))
            return false;
    }
    return true;
}

/* ---------------------------------------------------------------- matching */

static bool in_sorted(const lists_t *l, int which, const char *s)
{
    if (!s || !*s || !l->n[which])
        return false;
    return bsearch(&s, l->s[which], l->n[which], sizeof *l->s[which],
                   list_ci(which) ? cmp_ci : cmp_cs) != NULL;
}

static const char *bin_match(const lists_t *l, const char *bin)
{
    size_t bl = bin ? strlen(bin) : 0;
    if (bl == 0 || bl > 8) /* never compare what may be a whole card number */
        return NULL;
    for (size_t i = 0; i < l->n[L_BINS]; i++) {
        size_t pl = strlen(l->s[L_BINS][i]);
        if (pl <= bl && !memcmp(l->s[L_BINS][i], bin, pl))
            return l->s[L_BINS][i];
    }
    return NULL;
}

static bool prefix_equal(const unsigned char *a, const unsigned char *b, int bits)
{
    int bytes = bits / 8, rest = bits % 8;
    if (memcmp(a, b, (size_t)bytes))
        return false;
    if (!rest)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[bytes] & mask) == (b[bytes] & mask);
}

static const char *ip_match(const lists_t *l, const char *ip)
{
    int fam;
    unsigned char addr[16];
    if (!l->n[L_IPS] || !ip || !ip_parse(ip, &fam, addr))
        return NULL;
    for (size_t i = 0; i < l->n[L_IPS]; i++) {
        const cidr_t *c = &l->cidrs[i];
        if (c->family == fam && prefix_equal(c->addr, addr, c->prefix))
            return c->text;
    }
    return NULL;
}

static void add(fraud_result_t *out, const char *name, bool allow, int which, const char *detail)
{
    fraud_reason_t rs = {.score = allow ? 0 : 100,
                         .action = allow ? FRAUD_ACTION_NONE : FRAUD_ACTION_DECLINE};
    snprintf(rs.rule, sizeof rs.rule, "%s.%s", name, list_names[which]);
    snprintf(rs.reason, sizeof rs.reason, "%s is on the %s list", list_nouns[which],
             allow ? "allow" : "block");
    snprintf(rs.detail, sizeof rs.detail, "%s", detail);
    detail_sanitize(rs.detail);
    result_add(out, &rs);
    out->nfired++;
}

static const char *domain_of(const fraud_features_t *f)
{
    if (f->email_domain)
        return f->email_domain;
    const char *at = f->email ? strrchr(f->email, '@') : NULL;
    return at ? at + 1 : NULL;
}

/* Block: any listed country among card, shipping and edge countries.
 * Allow: every country the checkout has must be listed (and at least one),
 * so one allowed signal cannot launder a foreign card. */
static bool countries_match(const lists_t *l, bool allow, const fraud_features_t *f, char *detail,
                            size_t len)
{
    const char *cs[3] = {f->card_country, f->shipping_country, f->edge_country};
    const char *names[3] = {"card_country", "shipping_country", "edge_country"};
    int present = 0, listed = 0;
    for (int i = 0; i < 3; i++) {
        if (!cs[i] || !*cs[i])
            continue;
        present++;
        if (in_sorted(l, L_COUNTRIES, cs[i])) {
            listed++;
            if (!allow) {
                snprintf(detail, len, "%s is %s", names[i], cs[i]);
                return true;
            }
        }
    }
    if (allow && present > 0 && listed == present) {
        snprintf(detail, len, "every country of the checkout is listed (%d)", present);
        return true;
    }
    return false;
}

int lists_match(const lists_t *l, const char *name, bool allow, const fraud_features_t *f,
                fraud_result_t *out)
{
    int hits = out->nfired;
    char d[FRAUD_DETAIL_MAX];
    const char *m;
    if (in_sorted(l, L_EMAILS, f->email)) {
        snprintf(d, sizeof d, "email is %s", f->email);
        add(out, name, allow, L_EMAILS, d);
    }
    if (in_sorted(l, L_DOMAINS, domain_of(f))) {
        snprintf(d, sizeof d, "email_domain is %s", domain_of(f));
        add(out, name, allow, L_DOMAINS, d);
    }
    if ((m = ip_match(l, f->ip)) != NULL) {
        snprintf(d, sizeof d, "ip %s is in %s", f->ip, m);
        add(out, name, allow, L_IPS, d);
    }
    if (in_sorted(l, L_FINGERPRINTS, f->fingerprint)) {
        snprintf(d, sizeof d, "fingerprint is %s", f->fingerprint);
        add(out, name, allow, L_FINGERPRINTS, d);
    }
    if ((m = bin_match(l, f->bin)) != NULL) {
        snprintf(d, sizeof d, "bin %s matches %s", f->bin, m);
        add(out, name, allow, L_BINS, d);
    }
    if (l->n[L_COUNTRIES] && countries_match(l, allow, f, d, sizeof d))
        add(out, name, allow, L_COUNTRIES, d);
    if (in_sorted(l, L_DEVICES, f->device_id)) {
        snprintf(d, sizeof d, "device_id is %s", f->device_id);
        add(out, name, allow, L_DEVICES, d);
    }
    return out->nfired - hits;
}
