/* Per-merchant provider snapshots: read from the database, credentials
 * unsealed by the vault into guarded memory, cached until another instance
 * (or this one) announces a configuration change. A snapshot is reference
 * counted so a reload never pulls configs from under a running payment; if a
 * reload fails (vault or database down) the previous snapshot keeps serving. */
#include "gateway/payments.h"
#include "gateway/checkout.h"
#include "gateway/db/gwdb.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 64 sets of 4 ways, least recently used out: with one slot per hash, two
 * busy merchants sharing it would evict each other on every checkout, each
 * reload costing a database read and a vault unseal (and an audit row) per
 * provider, and leaving no snapshot to fall back on during a vault outage. */
#define SETS  64
#define WAYS  4
#define SLOTS (SETS * WAYS)
/* A snapshot is reloaded at least this often even if no change notice came
 * (a listener that went deaf would otherwise keep old credentials for good). */
#define MAX_AGE_US (300 * 1000000LL)

static gw_providers_t *slots[SLOTS];
static uint64_t used[SLOTS], tick;
static int64_t loaded[SLOTS];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static size_t set_of(const char *m)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *m; m++)
        h = (h ^ (unsigned char)*m) * 1099511628211ULL;
    return (size_t)(h % SETS) * WAYS;
}

/* The slot holding merchant m in its set, or -1 (call with mu held). */
static int find_slot(size_t set, const char *m)
{
    for (size_t w = 0; w < WAYS; w++)
        if (slots[set + w] && !strcmp(slots[set + w]->merchant_id, m))
            return (int)(set + w);
    return -1;
}

/* Where a new snapshot for m goes: its own slot, an empty one, or the least
 * recently used (call with mu held). */
static size_t victim_slot(size_t set, const char *m)
{
    int own = find_slot(set, m);
    if (own >= 0)
        return (size_t)own;
    size_t v = set;
    for (size_t w = 0; w < WAYS; w++) {
        if (!slots[set + w])
            return set + w;
        if (used[set + w] < used[v])
            v = set + w;
    }
    return v;
}

static void snapshot_free(gw_providers_t *p)
{
    for (size_t i = 0; i < p->n; i++)
        prv_config_clear(&p->configs[i]);
    free(p->configs);
    prv_routing_free(p->routing);
    json_decref(p->routing_doc);
    free(p);
}

void gw_providers_release(gw_providers_t *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&mu);
    bool last = --p->refs == 0;
    pthread_mutex_unlock(&mu);
    if (last)
        snapshot_free(p);
}

static bool load_config(const char *merchant_id, const gwdb_provider_row_t *row,
                        prv_config_t *cfg)
{
    json_t *doc = json_loads(row->config, 0, NULL);
    const json_t *creds = NULL;
    jspec_error_t je;
    bool ok = doc && prv_provider_doc_parse(row->name, doc, cfg, &creds, &je);
    json_decref(doc);
    if (!ok) {
        log_json(LOG_ERROR, "stored provider document no longer parses",
                 json_pack("{s:s, s:s}", "merchant_id", merchant_id, "provider", row->name));
        return false;
    }
    snprintf(cfg->merchant_id, sizeof cfg->merchant_id, "%s", merchant_id);
    char ctx[100];
    snprintf(ctx, sizeof ctx, "provider:%s", row->name);
    secret_t *plain = gw_secret_unseal(merchant_id, ctx, row->sealed);
    if (!plain)
        return false;
    int rc = prv_config_set_credentials(cfg, plain->data, plain->len);
    secret_free(plain);
    if (rc != 0) {
        prv_config_clear(cfg);
        return false;
    }
    return true;
}

static db_status_t load(const char *merchant_id, uint64_t gen, gw_providers_t **out)
{
    db_conn_t *c = db_pool_acquire(gw.db);
    if (!c)
        return DB_UNAVAILABLE;
    gwdb_provider_row_t *rows = NULL;
    int n = 0;
    char *routing = NULL;
    db_status_t s = db_providers_load(c, merchant_id, &rows, &n);
    if (s == DB_OK) {
        s = db_routing_get(c, merchant_id, &routing);
        if (s == DB_NOT_FOUND)
            s = DB_OK;
    }
    db_pool_release(c);
    if (s != DB_OK) {
        gwdb_provider_rows_free(rows, n);
        return s;
    }
    gw_providers_t *p = calloc(1, sizeof *p);
    p->refs = 1;
    p->generation = gen;
    snprintf(p->merchant_id, sizeof p->merchant_id, "%s", merchant_id);
    p->configs = calloc(n ? (size_t)n : 1, sizeof *p->configs);
    const char **names = calloc(n ? (size_t)n : 1, sizeof *names);
    for (int i = 0; i < n; i++) {
        if (!load_config(merchant_id, &rows[i], &p->configs[p->n])) {
            s = DB_UNAVAILABLE; /* most likely the vault; keep the old snapshot */
            break;
        }
        names[p->n] = p->configs[p->n].name;
        p->n++;
    }
    if (s == DB_OK && routing) {
        p->routing_doc = json_loads(routing, 0, NULL);
        jspec_error_t je;
        p->routing = p->routing_doc ? prv_routing_parse(p->routing_doc, names, p->n, &je) : NULL;
        if (!p->routing)
            log_json(LOG_ERROR, "stored routing document no longer parses; using priorities",
                     json_pack("{s:s}", "merchant_id", merchant_id));
    }
    free(names);
    free(routing);
    gwdb_provider_rows_free(rows, n);
    if (s != DB_OK) {
        snapshot_free(p);
        return s;
    }
    *out = p;
    return DB_OK;
}

db_status_t gw_providers_get(const char *merchant_id, gw_providers_t **out)
{
    uint64_t gen = atomic_load(&gw_config_generation);
    size_t set = set_of(merchant_id);
    int64_t now = time_mono_us();
    pthread_mutex_lock(&mu);
    int k = find_slot(set, merchant_id);
    if (k >= 0 && slots[k]->generation == gen && now - loaded[k] < MAX_AGE_US) {
        gw_providers_t *cur = slots[k];
        cur->refs++;
        used[k] = ++tick;
        pthread_mutex_unlock(&mu);
        *out = cur;
        return DB_OK;
    }
    pthread_mutex_unlock(&mu);

    gw_providers_t *fresh = NULL;
    db_status_t s = load(merchant_id, gen, &fresh);
    pthread_mutex_lock(&mu);
    if (s == DB_OK) {
        size_t v = victim_slot(set, merchant_id);
        if (slots[v] && --slots[v]->refs == 0)
            snapshot_free(slots[v]);
        fresh->refs++; /* one for the cache, one for the caller */
        slots[v] = fresh;
        used[v] = ++tick;
        loaded[v] = now;
        *out = fresh;
    } else if ((k = find_slot(set, merchant_id)) >= 0) {
        slots[k]->refs++; /* the previous snapshot keeps serving */
        used[k] = ++tick;
        *out = slots[k];
        s = DB_OK;
    }
    pthread_mutex_unlock(&mu);
    return s;
}

const prv_config_t *gw_providers_find(const gw_providers_t *p, const char *name)
{
    for (size_t i = 0; p && name && i < p->n; i++)
        if (!strcmp(p->configs[i].name, name))
            return &p->configs[i];
    return NULL;
}

void gw_providers_cache_clear(void)
{
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < SLOTS; i++) {
        if (slots[i] && --slots[i]->refs == 0)
            snapshot_free(slots[i]);
        slots[i] = NULL;
    }
    pthread_mutex_unlock(&mu);
}

static void emit(void *cls, const char *text)
{
    gw_text_printf(cls, "%s", text);
}

static void metrics_writer(gw_text_t *t)
{
    prv_metrics_write(emit, t);
}

void gw_providers_metrics_init(void)
{
    gw_metrics_add_writer(metrics_writer);
}
