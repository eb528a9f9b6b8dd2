/* Per-merchant cache of parsed rules. Direct-mapped slots under one mutex
 * held only to look up or swap a pointer; parsing and the database read
 * happen outside it. Entries are shared by reference count, so a request
 * keeps the rules it started with even if a newer version replaces them.
 *
 * Invalidation is by generation (the caller's cross-instance change
 * counter) and by version (the caller's authoritative "at least this
 * version", e.g. from the velocity query), never by time. */
#include "fraud/internal.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char merchant_id[IDS_MAX + 16];
    uint64_t generation;
    fraud_rules_t *rules;
} slot_t;

struct fraud_rules_cache {
    pthread_mutex_t mu;
    size_t nslots;
    slot_t *slots;
};

fraud_rules_cache_t *fraud_rules_cache_create(size_t slots)
{
    fraud_rules_cache_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->nslots = slots ? slots : 1024;
    c->slots = calloc(c->nslots, sizeof *c->slots);
    if (!c->slots) {
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

void fraud_rules_cache_destroy(fraud_rules_cache_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nslots; i++)
        fraud_rules_release(c->slots[i].rules);
    pthread_mutex_destroy(&c->mu);
    free(c->slots);
    free(c);
}

static slot_t *slot_of(fraud_rules_cache_t *c, const char *merchant_id)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a: ids are random already */
    for (const unsigned char *p = (const unsigned char *)merchant_id; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return &c->slots[h % c->nslots];
}

static bool usable(const slot_t *s, const char *merchant_id, uint64_t gen, int64_t min_version)
{
    return s->rules && s->generation == gen && !strcmp(s->merchant_id, merchant_id) &&
           (min_version < 0 || fraud_rules_version(s->rules) >= min_version);
}

db_status_t fraud_rules_cache_get(fraud_rules_cache_t *c, const char *merchant_id,
                                  uint64_t generation, int64_t min_version,
                                  fraud_rules_loader_fn load, void *cls, fraud_rules_t **out)
{
    *out = NULL;
    if (strlen(merchant_id) >= sizeof c->slots[0].merchant_id)
        return load(cls, merchant_id, out); /* not cacheable; never happens with real ids */
    pthread_mutex_lock(&c->mu);
    slot_t *s = slot_of(c, merchant_id);
    if (usable(s, merchant_id, generation, min_version))
        *out = fraud_rules_ref(s->rules);
    pthread_mutex_unlock(&c->mu);
    if (*out)
        return DB_OK;

    fraud_rules_t *fresh = NULL;
    db_status_t st = load(cls, merchant_id, &fresh);
    if (st != DB_OK)
        return st;
    pthread_mutex_lock(&c->mu);
    /* Keep whichever copy is newer: a slower loader must not put back an
     * older version that a faster one already replaced. */
    bool same = s->rules && !strcmp(s->merchant_id, merchant_id);
    if (!same || s->generation < generation ||
        (s->generation == generation &&
         fraud_rules_version(s->rules) <= fraud_rules_version(fresh))) {
        fraud_rules_release(s->rules);
        snprintf(s->merchant_id, sizeof s->merchant_id, "%s", merchant_id);
        s->generation = generation;
        s->rules = fraud_rules_ref(fresh);
    }
    pthread_mutex_unlock(&c->mu);
    *out = fresh;
    return DB_OK;
}

void fraud_rules_cache_invalidate(fraud_rules_cache_t *c, const char *merchant_id)
{
    pthread_mutex_lock(&c->mu);
    slot_t *s = slot_of(c, merchant_id);
    if (s->rules && !strcmp(s->merchant_id, merchant_id)) {
        fraud_rules_release(s->rules);
        s->rules = NULL;
        s->merchant_id[0] = '\0';
    }
    pthread_mutex_unlock(&c->mu);
}
