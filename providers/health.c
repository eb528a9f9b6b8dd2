/* Provider health per (merchant, provider): a circuit breaker (closed ->
 * open on an error rate over a sliding window or on consecutive failures ->
 * half-open probes after a cool-down -> closed after enough probe
 * successes), a success-rate EWMA, a latency EWMA and a p50 over the last
 * calls, and their Prometheus text. In-process: each gatewayd keeps its own
 * view, which is what a breaker wants (it reflects what this instance sees,
 * and it reacts in one call rather than one database round trip). */
#include "providers/internal.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NBUCKETS  10
#define LAT_RING  64
#define MAP_SLOTS 256

typedef struct entry {
    char merchant[64];
    char provider[PRV_NAME_MAX];
    pthread_mutex_t mu;
    prv_circuit_t state;
    int64_t opened_at, probe_at;
    int consecutive;
    int probes, probe_successes;
    struct {
        int64_t start;
        uint32_t calls, fails;
    } bucket[NBUCKETS];
    double success_ewma, latency_ewma;
    bool has_latency;
    double lat[LAT_RING];
    int nlat, lat_pos;
    uint64_t calls, failures, opened;
    struct entry *next;
} entry_t;

static pthread_mutex_t map_mu = PTHREAD_MUTEX_INITIALIZER;
static entry_t *map[MAP_SLOTS];
static prv_health_policy_t policy;
static bool policy_set;
static int64_t (*clock_fn)(void);

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now_ms(void)
{
    return clock_fn ? clock_fn() : mono_ms();
}

void prv_health_policy_default(prv_health_policy_t *p)
{
    *p = (prv_health_policy_t){.window_ms = 30000,
                               .min_calls = 20,
                               .error_rate = 0.5,
                               .consecutive_failures = 5,
                               .cooldown_ms = 15000,
                               .half_open_probes = 1,
                               .half_open_successes = 2,
                               .ewma_alpha = 0.1};
}

void prv_health_set_policy(const prv_health_policy_t *p)
{
    pthread_mutex_lock(&map_mu);
    if (p)
        policy = *p;
    else
        prv_health_policy_default(&policy);
    policy_set = true;
    pthread_mutex_unlock(&map_mu);
}

static prv_health_policy_t current_policy(void)
{
    pthread_mutex_lock(&map_mu);
    if (!policy_set) {
        prv_health_policy_default(&policy);
        policy_set = true;
    }
    prv_health_policy_t p = policy;
    pthread_mutex_unlock(&map_mu);
    return p;
}

void prv_health_set_clock(int64_t (*fn)(void))
{
    clock_fn = fn;
}

static size_t slot(const char *m, const char *p)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *s = m; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    h = (h ^ 0x1f) * 1099511628211ULL;
    for (const char *s = p; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (size_t)(h % MAP_SLOTS);
}

/* The entry, created on first use when `create`. */
static entry_t *find(const char *merchant, const char *provider, bool create)
{
    merchant = merchant ? merchant : "";
    provider = provider ? provider : "";
    size_t s = slot(merchant, provider);
    pthread_mutex_lock(&map_mu);
    entry_t *e = map[s];
    while (e && (strcmp(e->merchant, merchant) || strcmp(e->provider, provider)))
        e = e->next;
    if (!e && create && (e = calloc(1, sizeof *e))) {
        prv_copy(e->merchant, sizeof e->merchant, merchant);
        prv_copy(e->provider, sizeof e->provider, provider);
        pthread_mutex_init(&e->mu, NULL);
        e->success_ewma = 1.0;
        e->next = map[s];
        map[s] = e;
    }
    pthread_mutex_unlock(&map_mu);
    return e;
}

/* Open -> half-open once the cool-down has passed; a probe that never
 * reported back (its caller died) is given up after another cool-down. */
static void tick(entry_t *e, const prv_health_policy_t *p, int64_t now)
{
    if (e->state == PRV_CIRCUIT_OPEN && now - e->opened_at >= p->cooldown_ms) {
        e->state = PRV_CIRCUIT_HALF_OPEN;
        e->probes = 0;
        e->probe_successes = 0;
    }
    if (e->state == PRV_CIRCUIT_HALF_OPEN && e->probes > 0 && now - e->probe_at >= p->cooldown_ms)
        e->probes = 0;
}

static void trip(entry_t *e, int64_t now)
{
    e->state = PRV_CIRCUIT_OPEN;
    e->opened_at = now;
    e->opened++;
    e->probes = 0;
    e->probe_successes = 0;
}

static void window_add(entry_t *e, const prv_health_policy_t *p, int64_t now, bool ok,
                       uint32_t *calls, uint32_t *fails)
{
    int64_t width = p->window_ms / NBUCKETS > 0 ? p->window_ms / NBUCKETS : 1;
    int64_t start = now - now % width;
    int i = (int)((now / width) % NBUCKETS);
    if (e->bucket[i].start != start) {
        e->bucket[i].start = start;
        e->bucket[i].calls = e->bucket[i].fails = 0;
    }
    e->bucket[i].calls++;
    e->bucket[i].fails += ok ? 0 : 1;
    *calls = *fails = 0;
    for (int k = 0; k < NBUCKETS; k++)
        if (e->bucket[k].start > now - p->window_ms) {
            *calls += e->bucket[k].calls;
            *fails += e->bucket[k].fails;
        }
}

prv_circuit_t prv_health_state(const char *merchant, const char *provider)
{
    entry_t *e = find(merchant, provider, false);
    if (!e)
        return PRV_CIRCUIT_CLOSED;
    prv_health_policy_t p = current_policy();
    pthread_mutex_lock(&e->mu);
    tick(e, &p, now_ms());
    prv_circuit_t s = e->state;
    pthread_mutex_unlock(&e->mu);
    return s;
}

bool prv_health_acquire(const char *merchant, const char *provider)
{
    entry_t *e = find(merchant, provider, true);
    if (!e)
        return true; /* out of memory: do not let bookkeeping stop payments */
    prv_health_policy_t p = current_policy();
    int64_t now = now_ms();
    pthread_mutex_lock(&e->mu);
    tick(e, &p, now);
    bool ok = e->state == PRV_CIRCUIT_CLOSED;
    if (e->state == PRV_CIRCUIT_HALF_OPEN && e->probes < p.half_open_probes) {
        e->probes++;
        e->probe_at = now;
        ok = true;
    }
    pthread_mutex_unlock(&e->mu);
    return ok;
}

static void observe(entry_t *e, const prv_health_policy_t *p, bool ok, int64_t latency_us)
{
    double ms = (double)latency_us / 1000.0;
    e->calls++;
    e->failures += ok ? 0 : 1;
    e->success_ewma = p->ewma_alpha * (ok ? 1.0 : 0.0) + (1.0 - p->ewma_alpha) * e->success_ewma;
    e->latency_ewma =
        e->has_latency ? p->ewma_alpha * ms + (1.0 - p->ewma_alpha) * e->latency_ewma : ms;
    e->has_latency = true;
    e->lat[e->lat_pos] = ms;
    e->lat_pos = (e->lat_pos + 1) % LAT_RING;
    if (e->nlat < LAT_RING)
        e->nlat++;
}

void prv_health_record(const char *merchant, const char *provider, bool ok, int64_t latency_us)
{
    entry_t *e = find(merchant, provider, true);
    if (!e)
        return;
    prv_health_policy_t p = current_policy();
    int64_t now = now_ms();
    pthread_mutex_lock(&e->mu);
    tick(e, &p, now);
    observe(e, &p, ok, latency_us);
    uint32_t calls, fails;
    window_add(e, &p, now, ok, &calls, &fails);
    e->consecutive = ok ? 0 : e->consecutive + 1;
    if (e->state == PRV_CIRCUIT_HALF_OPEN) {
        if (e->probes > 0)
            e->probes--;
        if (!ok) {
            trip(e, now);
        } else if (++e->probe_successes >= p.half_open_successes) {
            e->state = PRV_CIRCUIT_CLOSED;
            e->consecutive = 0;
            memset(e->bucket, 0, sizeof e->bucket); /* judge it afresh */
        }
    } else if (e->state == PRV_CIRCUIT_CLOSED && !ok) {
        bool rate = calls >= (uint32_t)p.min_calls && (double)fails >= p.error_rate * calls;
        if (rate || e->consecutive >= p.consecutive_failures)
            trip(e, now);
    }
    pthread_mutex_unlock(&e->mu);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void snapshot(entry_t *e, const prv_health_policy_t *p, prv_health_t *out)
{
    double tmp[LAT_RING];
    pthread_mutex_lock(&e->mu);
    tick(e, p, now_ms());
    out->circuit = e->state;
    out->success_rate = e->success_ewma;
    out->latency_ewma_ms = e->latency_ewma;
    out->calls = e->calls;
    out->failures = e->failures;
    out->opened = e->opened;
    int n = e->nlat;
    memcpy(tmp, e->lat, sizeof tmp);
    pthread_mutex_unlock(&e->mu);
    qsort(tmp, (size_t)n, sizeof tmp[0], cmp_double);
    out->latency_p50_ms = n ? tmp[(n - 1) / 2] : 0.0;
}

void prv_health_get(const char *merchant, const char *provider, prv_health_t *out)
{
    memset(out, 0, sizeof *out);
    out->success_rate = 1.0;
    entry_t *e = find(merchant, provider, false);
    if (!e)
        return;
    prv_health_policy_t p = current_policy();
    snapshot(e, &p, out);
}

const char *prv_circuit_str(prv_circuit_t c)
{
    switch (c) {
    case PRV_CIRCUIT_OPEN:
        return "open";
    case PRV_CIRCUIT_HALF_OPEN:
        return "half_open";
    default:
        return "closed";
    }
}

json_t *prv_health_json(const char *merchant, const char *provider)
{
    prv_health_t h;
    prv_health_get(merchant, provider, &h);
    return json_pack("{s:s, s:f, s:f, s:f, s:I, s:I}", "circuit", prv_circuit_str(h.circuit),
                     "success_rate", h.success_rate, "latency_p50_ms", h.latency_p50_ms,
                     "latency_ewma_ms", h.latency_ewma_ms, "calls", (json_int_t)h.calls, "failures",
                     (json_int_t)h.failures);
}

/* ------------------------------------------------------------- metrics */

static void label(char *out, size_t n, const char *s)
{
    size_t o = 0;
    for (; *s && o + 3 < n; s++) {
        if (*s == '\\' || *s == '"') {
            out[o++] = '\\';
            out[o++] = *s;
        } else if (*s == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *s;
        }
    }
    out[o] = '\0';
}

typedef struct {
    char labels[320];
    prv_health_t h;
} row_t;

static const struct {
    const char *name, *type, *help;
} families[] = {
    {"portcullis_provider_circuit_state", "gauge",
     "Circuit breaker per merchant provider: 0 closed, 1 half-open, 2 open."},
    {"portcullis_provider_success_rate", "gauge", "Success-rate EWMA of provider calls."},
    {"portcullis_provider_latency_ewma_seconds", "gauge", "Latency EWMA of provider calls."},
    {"portcullis_provider_latency_p50_seconds", "gauge", "Median latency of the last 64 calls."},
    {"portcullis_provider_calls_total", "counter", "Provider calls, lookups included."},
    {"portcullis_provider_failures_total", "counter",
     "Provider calls that ended unavailable or unknown."},
    {"portcullis_provider_circuit_opens_total", "counter", "Times the circuit opened."},
};

static double family_value(size_t f, const prv_health_t *h)
{
    switch (f) {
    case 0:
        return (double)h->circuit;
    case 1:
        return h->success_rate;
    case 2:
        return h->latency_ewma_ms / 1000.0;
    case 3:
        return h->latency_p50_ms / 1000.0;
    case 4:
        return (double)h->calls;
    case 5:
        return (double)h->failures;
    default:
        return (double)h->opened;
    }
}

void prv_metrics_write(prv_emit_fn emit, void *cls)
{
    prv_health_policy_t p = current_policy();
    size_t n = 0, cap = 16;
    row_t *rows = malloc(cap * sizeof *rows);
    pthread_mutex_lock(&map_mu);
    for (size_t s = 0; rows && s < MAP_SLOTS; s++)
        for (entry_t *e = map[s]; e && rows; e = e->next) {
            if (n == cap) {
                row_t *nr = realloc(rows, (cap *= 2) * sizeof *rows);
                if (!nr)
                    break;
                rows = nr;
            }
            char m[140], pr[140];
            label(m, sizeof m, e->merchant);
            label(pr, sizeof pr, e->provider);
            snprintf(rows[n].labels, sizeof rows[n].labels, "merchant=\"%s\",provider=\"%s\"", m,
                     pr);
            snapshot(e, &p, &rows[n].h);
            n++;
        }
    pthread_mutex_unlock(&map_mu);
    char line[512];
    for (size_t f = 0; rows && f < PC_ARRAY_LEN(families); f++) {
        snprintf(line, sizeof line, "# HELP %s %s\n# TYPE %s %s\n", families[f].name,
                 families[f].help, families[f].name, families[f].type);
        emit(cls, line);
        for (size_t i = 0; i < n; i++) {
            snprintf(line, sizeof line, "%s{%s} %.6g\n", families[f].name, rows[i].labels,
                     family_value(f, &rows[i].h));
            emit(cls, line);
        }
    }
    free(rows);
}

void prv_health_reset(void)
{
    pthread_mutex_lock(&map_mu);
    for (size_t s = 0; s < MAP_SLOTS; s++) {
        entry_t *e = map[s];
        while (e) {
            entry_t *nx = e->next;
            pthread_mutex_destroy(&e->mu);
            free(e);
            e = nx;
        }
        map[s] = NULL;
    }
    pthread_mutex_unlock(&map_mu);
}
