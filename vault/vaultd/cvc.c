/* The CVC store: CVCs live only here, in one sodium_malloc'd (mlock'd,
 * guard-paged) table, never in PostgreSQL, a log or a core dump. An entry
 * is wiped at its TTL (by lookups and by a sweeper), at its first use for an
 * authorization, or when its bucket is full and it is the oldest.
 *
 * Trade-off: fixed buckets of 8 slots instead of a growing table, so the
 * memory is allocated and locked once and a flood of tokenizations evicts
 * the oldest CVCs rather than exhausting locked memory. Tokens are keyed
 * with a per-process random key before they index the table, so the table
 * holds no tokens and its layout cannot be steered from outside. */
#include "vault/vaultd/vaultd.h"
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#define BUCKET  8
#define STRIPES 64

typedef struct {
    uint8_t id[16];
    int64_t expires_us; /* 0 = empty */
    char cvc[5];
    uint8_t pad[3];
} slot_t;

static struct {
    slot_t *slots;
    uint8_t *idkey;
    size_t nbuckets;
    int64_t ttl_us;
    pthread_mutex_t mu[STRIPES];
    atomic_long count;
} cs;

bool cvc_init(size_t capacity, int ttl_s)
{
    cs.nbuckets = (capacity + BUCKET - 1) / BUCKET;
    cs.slots = sodium_allocarray(cs.nbuckets * BUCKET, sizeof(slot_t));
    cs.idkey = sodium_malloc(crypto_generichash_KEYBYTES);
    if (!cs.slots || !cs.idkey)
        return false;
    memset(cs.slots, 0, cs.nbuckets * BUCKET * sizeof(slot_t));
    randombytes_buf(cs.idkey, crypto_generichash_KEYBYTES);
    cs.ttl_us = (int64_t)ttl_s * 1000000;
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_init(&cs.mu[i], NULL);
    return true;
}

void cvc_free(void)
{
    if (cs.slots)
        sodium_free(cs.slots);
    if (cs.idkey)
        sodium_free(cs.idkey);
    cs.slots = NULL;
    cs.idkey = NULL;
}

static size_t locate(const char *token, uint8_t id[16])
{
    crypto_generichash(id, 16, (const uint8_t *)token, strlen(token), cs.idkey,
                       crypto_generichash_KEYBYTES);
    uint64_t h = 0;
    for (int i = 0; i < 8; i++)
        h = h << 8 | id[i];
    return (size_t)(h % cs.nbuckets);
}

static void wipe(slot_t *s)
{
    sodium_memzero(s, sizeof *s);
    atomic_fetch_sub(&cs.count, 1);
}

void cvc_put(const char *token, const char *cvc)
{
    uint8_t id[16];
    size_t b = locate(token, id);
    int64_t now = time_mono_us();
    pthread_mutex_lock(&cs.mu[b % STRIPES]);
    slot_t *bucket = &cs.slots[b * BUCKET], *dst = NULL;
    for (int i = 0; i < BUCKET && !dst; i++)
        if (bucket[i].expires_us && sodium_memcmp(bucket[i].id, id, 16) == 0)
            dst = &bucket[i];
    for (int i = 0; i < BUCKET && !dst; i++)
        if (!bucket[i].expires_us || bucket[i].expires_us <= now)
            dst = &bucket[i];
    if (!dst) {
        dst = &bucket[0];
        for (int i = 1; i < BUCKET; i++)
            if (bucket[i].expires_us < dst->expires_us)
                dst = &bucket[i];
    }
    if (dst->expires_us)
        wipe(dst);
    memcpy(dst->id, id, 16);
    snprintf(dst->cvc, sizeof dst->cvc, "%s", cvc);
    dst->expires_us = now + cs.ttl_us;
    atomic_fetch_add(&cs.count, 1);
    pthread_mutex_unlock(&cs.mu[b % STRIPES]);
}

bool cvc_get(const char *token, char *out, bool consume)
{
    uint8_t id[16];
    size_t b = locate(token, id);
    int64_t now = time_mono_us();
    bool found = false;
    pthread_mutex_lock(&cs.mu[b % STRIPES]);
    slot_t *bucket = &cs.slots[b * BUCKET];
    for (int i = 0; i < BUCKET; i++) {
        slot_t *s = &bucket[i];
        if (!s->expires_us || sodium_memcmp(s->id, id, 16) != 0)
            continue;
        if (s->expires_us > now) {
            if (out)
                memcpy(out, s->cvc, sizeof s->cvc);
            found = true;
            if (consume)
                wipe(s);
        } else {
            wipe(s);
        }
        break;
    }
    pthread_mutex_unlock(&cs.mu[b % STRIPES]);
    return found;
}

bool cvc_has(const char *token)
{
    return cvc_get(token, NULL, false);
}

size_t cvc_sweep(void)
{
    int64_t now = time_mono_us();
    for (size_t b = 0; b < cs.nbuckets; b++) {
        pthread_mutex_lock(&cs.mu[b % STRIPES]);
        for (int i = 0; i < BUCKET; i++) {
            slot_t *s = &cs.slots[b * BUCKET + (size_t)i];
            if (s->expires_us && s->expires_us <= now)
                wipe(s);
        }
        pthread_mutex_unlock(&cs.mu[b % STRIPES]);
    }
    return cvc_count();
}

size_t cvc_count(void)
{
    long n = atomic_load(&cs.count);
    return n > 0 ? (size_t)n : 0;
}
