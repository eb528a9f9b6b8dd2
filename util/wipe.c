/* Heap functions that wipe every block they give back, installed for jansson
 * and libcurl in gatewayd. A token request's body, the provider request that
 * carries a PAN and CVC, libcurl's copy of it and its Authorization header
 * all pass through these libraries' own buffers; wiping at free (and at the
 * realloc that moves a block) keeps card data and credentials out of freed
 * heap, where a later disclosure bug or a core file could find them. The
 * cost is one memset per freed block, small next to the work that made it. */
#include "util/util.h"
#include <curl/curl.h>
#include <malloc.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

void *wipe_malloc(size_t n)
{
    return malloc(n ? n : 1);
}

void wipe_free(void *p)
{
    if (!p)
        return;
    sodium_memzero(p, malloc_usable_size(p));
    free(p);
}

/* realloc would leave the old block's bytes behind when it moves it. */
void *wipe_realloc(void *p, size_t n)
{
    if (!p)
        return wipe_malloc(n);
    size_t have = malloc_usable_size(p);
    if (n && n <= have)
        return p; /* fits in place; the tail is ours already */
    void *q = malloc(n ? n : 1);
    if (!q)
        return NULL;
    memcpy(q, p, have < n ? have : n);
    wipe_free(p);
    return q;
}

void *wipe_calloc(size_t nmemb, size_t size)
{
    return calloc(nmemb ? nmemb : 1, size ? size : 1);
}

char *wipe_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = wipe_malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

int wipe_install(void)
{
    json_set_alloc_funcs(wipe_malloc, wipe_free);
    return curl_global_init_mem(CURL_GLOBAL_DEFAULT, wipe_malloc, wipe_free, wipe_realloc,
                                wipe_strdup, wipe_calloc) == CURLE_OK
               ? 0
               : -1;
}
