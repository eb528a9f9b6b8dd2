/* Guarded memory for card data and credentials on hot paths: sodium_malloc
 * blocks (guard pages, mlock'd, never swapped) kept in a small per-thread
 * cache and wiped whenever they are given back.
 *
 * Trade-off: sodium_malloc/sodium_free cost an mmap, three mprotects, an
 * mlock, an munlock and an munmap per pair, and every unmap of a
 * multi-threaded process shoots down TLBs on all cores: at ten pairs per
 * checkout that was a quarter of gatewayd's CPU. A returned block is zeroed
 * at once and stays mapped and locked for the next use; the guard page
 * after it still catches overflows. */
#include "util/util.h"
#include <pthread.h>
#include <sodium.h>
#include <string.h>

#define HDR 16 /* keeps the returned pointer 16-byte aligned */
#define NCLASS 6
#define PER_CLASS 8

static const size_t class_size[NCLASS] = {64, 256, 1024, 4096, 16384, 65536};

typedef struct {
    void *block[NCLASS][PER_CLASS];
    int n[NCLASS];
} cache_t;

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_destroy(void *p)
{
    cache_t *c = p;
    for (int k = 0; k < NCLASS; k++)
        for (int i = 0; i < c->n[k]; i++)
            sodium_free(c->block[k][i]);
    free(c);
}

static void cache_init(void)
{
    pthread_key_create(&cache_key, cache_destroy);
}

static cache_t *cache(void)
{
    pthread_once(&cache_once, cache_init);
    cache_t *c = pthread_getspecific(cache_key);
    if (!c && (c = calloc(1, sizeof *c)) != NULL)
        pthread_setspecific(cache_key, c);
    return c;
}

static int class_of(size_t n)
{
    for (int k = 0; k < NCLASS; k++)
        if (n <= class_size[k])
            return k;
    return -1;
}

void *guarded_alloc(size_t n)
{
    int k = class_of(n);
    unsigned char *b = NULL;
    cache_t *c = k >= 0 ? cache() : NULL;
    if (c && c->n[k] > 0)
        b = c->block[k][--c->n[k]];
    else if ((b = sodium_malloc(HDR + (k >= 0 ? class_size[k] : n))) != NULL)
        sodium_memzero(b + HDR, k >= 0 ? class_size[k] : n); /* sodium fills with 0xdb */
    if (!b)
        return NULL;
    int32_t cls = k;
    memcpy(b, &cls, sizeof cls);
    return b + HDR;
}

void guarded_free(void *p)
{
    if (!p)
        return;
    unsigned char *b = (unsigned char *)p - HDR;
    int32_t k;
    memcpy(&k, b, sizeof k);
    if (k < 0 || k >= NCLASS) {
        sodium_free(b); /* wipes before unmapping */
        return;
    }
    sodium_memzero(p, class_size[k]);
    cache_t *c = cache();
    if (c && c->n[k] < PER_CLASS)
        c->block[k][c->n[k]++] = b;
    else
        sodium_free(b);
}
