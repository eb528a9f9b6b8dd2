/* Token-bucket rate limits keyed by strings (API key ids, client IPs): the
 * first defence against card testing on POST /v1/tokens and
 * POST /v1/checkouts (BRIEF step 1: per key and per client IP).
 *
 * Trade-offs: the buckets live in this process, so N gatewayd instances
 * allow N times the rate (a shared limit belongs with the fraud velocity
 * counters in PostgreSQL). The table is fixed and set-associative (4 ways):
 * memory stays bounded whatever the number of distinct IPs, and a new key
 * evicts the longest-idle entry of its set, which at worst hands a fresh
 * burst to a key that was idle anyway. Keys are hashed with a per-process
 * random key, so nobody can aim collisions at another client's bucket.
 * Amounts are integer micro-tokens: no floating point. */
#include "gateway/gateway.h"
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SETS    4096
#define WAYS    4
#define STRIPES 64
#define MICRO   1000000LL

typedef struct {
    uint64_t id;    /* 0 = empty */
    int64_t tokens; /* micro-tokens */
    int64_t last_us;
} bucket_t;

struct gw_ratelimit {
    int64_t per_minute, cap;
    uint8_t hkey[crypto_shorthash_KEYBYTES];
    pthread_mutex_t mu[STRIPES];
    bucket_t b[SETS][WAYS];
};

gw_ratelimit_t *gw_ratelimit_new(int64_t per_minute, int64_t burst)
{
    gw_ratelimit_t *rl = calloc(1, sizeof *rl);
    if (!rl)
        return NULL;
    rl->per_minute = per_minute > 0 ? per_minute : 1;
    rl->cap = (burst > 0 ? burst : 1) * MICRO;
    randombytes_buf(rl->hkey, sizeof rl->hkey);
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_init(&rl->mu[i], NULL);
    return rl;
}

void gw_ratelimit_free(gw_ratelimit_t *rl)
{
    if (!rl)
        return;
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_destroy(&rl->mu[i]);
    free(rl);
}

static uint64_t key_id(const gw_ratelimit_t *rl, const char *key)
{
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, (const uint8_t *)key, strlen(key), rl->hkey);
    uint64_t id;
    memcpy(&id, h, sizeof id);
    return id ? id : 1;
}

/* The bucket for id in its set, refilled to now; caller holds the stripe. */
static bucket_t *find(gw_ratelimit_t *rl, uint64_t id, int64_t now)
{
    bucket_t *set = rl->b[id % SETS], *victim = &set[0];
    for (int w = 0; w < WAYS; w++) {
        if (set[w].id == id) {
            int64_t dt = now - set[w].last_us;
            if (dt > 3600 * MICRO)
                dt = 3600 * MICRO;
            /* per_minute tokens per 60e6 µs = per_minute / 60 micro-tokens per µs */
            set[w].tokens += dt * rl->per_minute / 60;
            if (set[w].tokens > rl->cap)
                set[w].tokens = rl->cap;
            set[w].last_us = now;
            return &set[w];
        }
        if (set[w].last_us < victim->last_us)
            victim = &set[w];
    }
    *victim = (bucket_t){.id = id, .tokens = rl->cap, .last_us = now};
    return victim;
}

bool gw_ratelimit_take(gw_ratelimit_t *rl, const char *key, int *retry_after_s)
{
    if (!rl)
        return true;
    uint64_t id = key_id(rl, key);
    int64_t now = time_mono_us();
    pthread_mutex_t *mu = &rl->mu[(id % SETS) % STRIPES];
    pthread_mutex_lock(mu);
    bucket_t *b = find(rl, id, now);
    bool ok = b->tokens >= MICRO;
    if (ok) {
        b->tokens -= MICRO;
    } else {
        /* seconds until one whole token has accrued, rounded up */
        int64_t missing = MICRO - b->tokens;
        int64_t us = (missing * 60 + rl->per_minute - 1) / rl->per_minute;
        *retry_after_s = (int)((us + MICRO - 1) / MICRO);
        if (*retry_after_s < 1)
            *retry_after_s = 1;
    }
    pthread_mutex_unlock(mu);
    return ok;
}

void gw_ratelimit_refund(gw_ratelimit_t *rl, const char *key)
{
    if (!rl)
        return;
    uint64_t id = key_id(rl, key);
    pthread_mutex_t *mu = &rl->mu[(id % SETS) % STRIPES];
    pthread_mutex_lock(mu);
    bucket_t *b = find(rl, id, time_mono_us());
    b->tokens = b->tokens + MICRO > rl->cap ? rl->cap : b->tokens + MICRO;
    pthread_mutex_unlock(mu);
}

/* ------------------------------------------------------ endpoint limits */

/* A storefront calls with its publishable key from each shopper's browser,
 * so the client IP is the shopper's and limiting it stops one source from
 * testing cards. A secret key calls from the merchant's own servers, one
 * address for all of its shoppers: an IP limit there would throttle the
 * whole shop, so checkouts limit sk calls per key only. Tokens keep the IP
 * limit for every key (tokenizing server-side is rare and card testing
 * through a leaked sk is the worse risk). */
gw_rate_t gw_rate_tokens = {.ip_for_secret_keys = true};
gw_rate_t gw_rate_checkouts = {.ip_for_secret_keys = false};

static int rate_create(gw_rate_t *r)
{
    r->by_key = gw_ratelimit_new(r->key_per_minute, r->key_burst);
    r->by_ip = gw_ratelimit_new(r->ip_per_minute, r->ip_burst);
    return r->by_key && r->by_ip ? 0 : -1;
}

static void rate_destroy(gw_rate_t *r)
{
    gw_ratelimit_free(r->by_key);
    gw_ratelimit_free(r->by_ip);
    r->by_key = r->by_ip = NULL;
}

int gw_rate_start(void)
{
    return rate_create(&gw_rate_tokens) == 0 && rate_create(&gw_rate_checkouts) == 0 ? 0 : -1;
}

void gw_rate_stop(void)
{
    rate_destroy(&gw_rate_tokens);
    rate_destroy(&gw_rate_checkouts);
}

bool gw_rate_ok(gw_rate_t *r, const gw_request_t *rq, int *retry_after_s)
{
    if (!gw_ratelimit_take(r->by_key, rq->auth.key_id, retry_after_s))
        return false;
    if (rq->auth.role != GW_ROLE_PK && !r->ip_for_secret_keys)
        return true;
    if (!gw_ratelimit_take(r->by_ip, rq->client_ip, retry_after_s)) {
        gw_ratelimit_refund(r->by_key, rq->auth.key_id);
        return false;
    }
    return true;
}

enum MHD_Result gw_reply_rate_limited(gw_request_t *rq, int retry_after_s)
{
    char ra[16];
    snprintf(ra, sizeof ra, "%d", retry_after_s > 0 ? retry_after_s : 1);
    return gw_reply_json_hdr(rq, 429, err_body(ERR_RATE_LIMITED, NULL, NULL), "Retry-After", ra);
}
