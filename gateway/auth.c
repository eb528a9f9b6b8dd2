/* Bearer-key authentication with a small in-process cache, so that a
 * request with a known key costs no query. Entries die after a TTL, and at
 * once when any instance announces a key change (gw_config_generation). */
#include "gateway/gateway.h"
#include "gateway/db/gwdb.h"
#include <pthread.h>
#include <sodium.h>
#include <string.h>
#include <time.h>

#define CACHE_SLOTS 4096

typedef struct {
    unsigned char hash[32];
    gw_auth_t auth;
    int64_t until_us;
    int64_t key_expires_s;
    uint64_t gen;
    bool used;
} slot_t;

static slot_t cache[CACHE_SLOTS];
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;

static size_t slot_of(const unsigned char h[32])
{
    uint32_t v;
    memcpy(&v, h, sizeof v);
    return v % CACHE_SLOTS;
}

void gw_auth_cache_flush(void)
{
    pthread_mutex_lock(&cache_mu);
    memset(cache, 0, sizeof cache);
    pthread_mutex_unlock(&cache_mu);
}

static bool cache_get(const unsigned char h[32], gw_auth_t *out)
{
    bool hit = false;
    int64_t now = time_mono_us();
    uint64_t gen = atomic_load(&gw_config_generation);
    pthread_mutex_lock(&cache_mu);
    slot_t *s = &cache[slot_of(h)];
    if (s->used && sodium_memcmp(s->hash, h, 32) == 0 && s->gen == gen && now < s->until_us &&
        (s->key_expires_s == 0 || time(NULL) < s->key_expires_s)) {
        *out = s->auth;
        hit = true;
    }
    pthread_mutex_unlock(&cache_mu);
    return hit;
}

static void cache_put(const unsigned char h[32], const gw_auth_t *a, int64_t key_expires_s,
                      uint64_t gen)
{
    if (gw_cfg.auth_cache_ttl_s <= 0)
        return;
    pthread_mutex_lock(&cache_mu);
    slot_t *s = &cache[slot_of(h)];
    memcpy(s->hash, h, 32);
    s->auth = *a;
    s->until_us = time_mono_us() + gw_cfg.auth_cache_ttl_s * 1000000;
    s->key_expires_s = key_expires_s;
    s->gen = gen;
    s->used = true;
    pthread_mutex_unlock(&cache_mu);
}

gw_auth_result_t gw_auth_resolve(db_pool_t *pool, const char *key, gw_auth_t *out)
{
    if (!key || !*key)
        return GW_AUTH_MISSING;
    gw_role_t role = gw_key_role(key);
    if (!role)
        return GW_AUTH_INVALID;
    unsigned char h[32];
    gw_key_hash(gw_cfg.api_key_pepper, key, h);
    if (cache_get(h, out))
        return GW_AUTH_OK;

    /* Taken before the query: a change announced meanwhile makes this
     * entry stale at once instead of living for a whole TTL. */
    uint64_t gen = atomic_load(&gw_config_generation);
    db_conn_t *c = db_pool_acquire(pool);
    if (!c)
        return GW_AUTH_UNAVAILABLE;
    gwdb_apikey_t row;
    db_status_t s = db_apikey_lookup(c, h, &row);
    db_pool_release(c);
    if (s == DB_NOT_FOUND)
        return GW_AUTH_INVALID;
    if (s != DB_OK)
        return GW_AUTH_UNAVAILABLE;
    gw_role_t stored;
    if (!gw_role_parse(row.role, &stored) || stored != role)
        return GW_AUTH_INVALID;
    if (row.revoked || (row.expires_at != 0 && row.expires_at <= time(NULL)))
        return GW_AUTH_EXPIRED;
    memset(out, 0, sizeof *out);
    memcpy(out->merchant_id, row.merchant_id, sizeof out->merchant_id);
    memcpy(out->key_id, row.key_id, sizeof out->key_id);
    out->role = role;
    cache_put(h, out, row.expires_at, gen);
    return GW_AUTH_OK;
}
