/* Heap functions that wipe every block they give back, installed for
 * jansson, libcurl and OpenSSL in gatewayd. A token request's body, the
 * provider request that carries a PAN and CVC, libcurl's copy of it, its
 * Authorization header and, over HTTPS, OpenSSL's record buffers holding the
 * same bytes all pass through these libraries' own heap; wiping at free
 * (and at the realloc that moves a block) keeps card data and credentials
 * out of freed memory, where a later disclosure bug or a core file could
 * find them. The cost is one memset per freed block, small next to the work
 * that made it. */
#include "util/util.h"
#include <curl/curl.h>
#include <dlfcn.h>
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

/* OpenSSL's hook signatures: the same functions, with a call site. */
static void *ossl_malloc(size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    return wipe_malloc(n);
}

static void *ossl_realloc(void *p, size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    if (n == 0) { /* OpenSSL hands its realloc(p, 0) over unchanged */
        wipe_free(p);
        return NULL;
    }
    return wipe_realloc(p, n);
}

static void ossl_free(void *p, const char *file, int line)
{
    (void)file;
    (void)line;
    wipe_free(p);
}

typedef int (*ossl_set_fn)(void *(*)(size_t, const char *, int),
                           void *(*)(void *, size_t, const char *, int),
                           void (*)(void *, const char *, int));

/* OpenSSL is libcurl's TLS library, not ours, so it is found at run time
 * rather than linked: a process without it has nothing to cover. Its hooks
 * are refused once it has allocated anything, so this must run before
 * curl_global_init (which initialises it); a refusal is an error, since
 * HTTPS bodies would then leave card data in freed memory. */
static int install_openssl(void)
{
    ossl_set_fn set;
    void *sym = dlsym(RTLD_DEFAULT, "CRYPTO_set_mem_functions");
    if (!sym)
        return 0;
    memcpy(&set, &sym, sizeof set);
    return set(ossl_malloc, ossl_realloc, ossl_free) == 1 ? 0 : -1;
}

int wipe_install(void)
{
    json_set_alloc_funcs(wipe_malloc, wipe_free);
    if (install_openssl() != 0)
        return -1;
    return curl_global_init_mem(CURL_GLOBAL_DEFAULT, wipe_malloc, wipe_free, wipe_realloc,
                                wipe_strdup, wipe_calloc) == CURLE_OK
               ? 0
               : -1;
}
