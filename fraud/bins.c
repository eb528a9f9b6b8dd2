/* The BIN range table: CSV lines "low,high,brand,country,funding" where low
 * and high are digit prefixes of equal length (1-8). A lookup tries the
 * longest prefixes first, so a specific issuer range overrides a brand-wide
 * one. Ranges of one length must not overlap (refused at load, naming both
 * lines), which keeps a lookup to one binary search per length. */
#include "fraud/internal.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BINS_MAX_FILE (64u * 1024 * 1024)
#define BINS_MAX_LEN  8

typedef struct {
    uint32_t low, high;
    uint8_t len;
    int line;
    fraud_bin_info_t info;
} bin_range_t;

struct fraud_bins {
    bin_range_t *r;
    size_t n;
    size_t start[BINS_MAX_LEN + 2]; /* ranges of length L are r[start[L] .. start[L+1]) */
};

static bool bad(char *err, size_t errlen, int line, const char *what)
{
    snprintf(err, errlen, "line %d: %s", line, what);
    return false;
}

static bool digits(const char *s, size_t n, uint32_t *out)
{
    if (n < 1 || n > BINS_MAX_LEN)
        return false;
    uint32_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        v = v * 10 + (uint32_t)(s[i] - '0');
    }
    *out = v;
    return true;
}

static bool word(const char *s, size_t n, size_t max, bool upper, char *out)
{
    if (n >= max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = upper ? (c >= 'A' && c <= 'Z') : ((c >= 'a' && c <= 'z') || c == '_');
        if (!ok)
            return false;
        out[i] = c;
    }
    out[n] = '\0';
    return true;
}

/* Splits one line into exactly five comma-separated fields. */
static bool split(const char *line, size_t len, const char *f[5], size_t fl[5])
{
    int k = 0;
    const char *p = line, *end = line + len;
    while (k < 5) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        const char *stop = c ? c : end;
        f[k] = p;
        fl[k] = (size_t)(stop - p);
        k++;
        if (!c)
            break;
        p = c + 1;
    }
    return k == 5 && f[4] + fl[4] == end;
}

static bool line_parse(const char *line, size_t len, int lineno, bin_range_t *out, char *err,
                       size_t errlen)
{
    const char *f[5];
    size_t fl[5];
    if (!split(line, len, f, fl))
        return bad(err, errlen, lineno, "expected 5 fields: low,high,brand,country,funding");
    memset(out, 0, sizeof *out);
    out->line = lineno;
    if (fl[0] != fl[1] || !digits(f[0], fl[0], &out->low) || !digits(f[1], fl[1], &out->high))
        return bad(err, errlen, lineno, "low and high must be digit prefixes of equal length 1-8");
    if (out->low > out->high)
        return bad(err, errlen, lineno, "low is greater than high");
    out->len = (uint8_t)fl[0];
    if (fl[2] < 1 || !word(f[2], fl[2], sizeof out->info.brand, false, out->info.brand))
        return bad(err, errlen, lineno, "brand must be lower-case letters or '_'");
    if ((fl[3] != 0 && fl[3] != 2) ||
        !word(f[3], fl[3], sizeof out->info.country, true, out->info.country))
        return bad(err, errlen, lineno, "country must be empty or ISO 3166-1 alpha-2 upper case");
    if (!word(f[4], fl[4], sizeof out->info.funding, false, out->info.funding))
        return bad(err, errlen, lineno, "funding must be empty or lower-case letters");
    return true;
}

static int by_len_low(const void *a, const void *b)
{
    const bin_range_t *x = a, *y = b;
    if (x->len != y->len)
        return x->len - y->len;
    return (x->low > y->low) - (x->low < y->low);
}

static bool index_build(fraud_bins_t *b, char *err, size_t errlen)
{
    qsort(b->r, b->n, sizeof *b->r, by_len_low);
    for (size_t i = 1; i < b->n; i++)
        if (b->r[i].len == b->r[i - 1].len && b->r[i].low <= b->r[i - 1].high) {
            snprintf(err, errlen, "line %d overlaps line %d (ranges of one length must not)",
                     b->r[i].line, b->r[i - 1].line);
            return false;
        }
    size_t i = 0;
    for (int l = 0; l <= BINS_MAX_LEN + 1; l++) {
        while (i < b->n && b->r[i].len < l)
            i++;
        b->start[l] = i;
    }
    return true;
}

fraud_bins_t *fraud_bins_parse(const char *text, size_t len, char *err, size_t errlen)
{
    fraud_bins_t *b = calloc(1, sizeof *b);
    size_t cap = 0;
    int lineno = 0;
    for (const char *p = text, *end = text + len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);
        const char *line = p;
        p = nl ? nl + 1 : end;
        lineno++;
        if (ll && line[ll - 1] == '\r')
            ll--;
        if (ll == 0 || line[0] == '#' || (lineno == 1 && !strncmp(line, "low,", 4)))
            continue;
        if (b->n == cap) {
            cap = cap ? cap * 2 : 256;
            bin_range_t *nr = realloc(b->r, cap * sizeof *nr);
            if (!nr) {
                snprintf(err, errlen, "out of memory");
                fraud_bins_free(b);
                return NULL;
            }
            b->r = nr;
        }
        if (!line_parse(line, ll, lineno, &b->r[b->n], err, errlen)) {
            fraud_bins_free(b);
            return NULL;
        }
        b->n++;
    }
    if (!index_build(b, err, errlen)) {
        fraud_bins_free(b);
        return NULL;
    }
    return b;
}

fraud_bins_t *fraud_bins_load(const char *path, char *err, size_t errlen)
{
    size_t len = 0;
    char *text = file_read_all(path, BINS_MAX_FILE, &len);
    if (!text) {
        snprintf(err, errlen, "%s: cannot read (missing, unreadable or over 64 MiB)", path);
        return NULL;
    }
    char inner[200];
    fraud_bins_t *b = fraud_bins_parse(text, len, inner, sizeof inner);
    if (!b)
        snprintf(err, errlen, "%s: %s", path, inner);
    free(text);
    return b;
}

fraud_bins_t *fraud_bins_default(void)
{
    char err[200];
    fraud_bins_t *b =
        fraud_bins_parse(fraud_data_bin_ranges, strlen(fraud_data_bin_ranges), err, sizeof err);
    if (!b)
        log_json(LOG_ERROR, "the built-in BIN table is invalid", json_pack("{s:s}", "error", err));
    return b;
}

void fraud_bins_free(fraud_bins_t *b)
{
    if (!b)
        return;
    free(b->r);
    free(b);
}

size_t fraud_bins_count(const fraud_bins_t *b)
{
    return b ? b->n : 0;
}

bool fraud_bins_lookup(const fraud_bins_t *b, const char *bin, fraud_bin_info_t *out)
{
    memset(out, 0, sizeof *out);
    size_t n = bin ? strspn(bin, "0123456789") : 0;
    if (!b || n == 0 || bin[n] != '\0' || n > 19)
        return false;
    if (n > BINS_MAX_LEN)
        n = BINS_MAX_LEN;
    for (size_t l = n; l >= 1; l--) {
        uint32_t key;
        if (!digits(bin, l, &key))
            return false;
        size_t lo = b->start[l], hi = b->start[l + 1];
        /* last range of this length with low <= key */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (b->r[mid].low <= key)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo > b->start[l] && b->r[lo - 1].high >= key) {
            *out = b->r[lo - 1].info;
            return true;
        }
    }
    return false;
}
