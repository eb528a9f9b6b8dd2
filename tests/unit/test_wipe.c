/* Unit: util/wipe.c, the wiping heap, and which libraries wipe_install puts
 * on it (OpenSSL's record buffers carry a provider request's PAN over
 * HTTPS, so its heap must be ours too). */
#include "tests/harness/harness.h"
#include <curl/curl.h>
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

typedef void *(*ossl_malloc_fn)(size_t, const char *, int);
typedef void *(*ossl_realloc_fn)(void *, size_t, const char *, int);
typedef void (*ossl_free_fn)(void *, const char *, int);
typedef void (*ossl_get_fn)(ossl_malloc_fn *, ossl_realloc_fn *, ossl_free_fn *);

static void *sym(const char *name)
{
    void *p = dlsym(RTLD_DEFAULT, name);
    ck_assert_msg(p != NULL, "%s is not in the process (libcurl's OpenSSL)", name);
    return p;
}

START_TEST(realloc_keeps_the_contents_it_moves)
{
    char *p = wipe_malloc(16);
    ck_assert_ptr_nonnull(p);
    memcpy(p, "0123456789abcde", 16);
    char *q = wipe_realloc(p, 1 << 16);
    ck_assert_ptr_nonnull(q);
    ck_assert_str_eq(q, "0123456789abcde");
    char *r = wipe_realloc(q, 8); /* shrinking stays in place */
    ck_assert_ptr_eq(r, q);
    wipe_free(r);
    wipe_free(NULL);
    char *d = wipe_strdup("4242");
    ck_assert_str_eq(d, "4242");
    wipe_free(d);
}
END_TEST

/* Set by main before h_init (whose curl_global_init makes OpenSSL allocate):
 * what OpenSSL's free hook was before wipe_install, and its result. */
static void *default_free;
static int installed = -2;

/* (no ck_assert here: main calls it before any test runs) */
static void *current_free(void)
{
    ossl_get_fn get;
    void *g = dlsym(RTLD_DEFAULT, "CRYPTO_get_mem_functions");
    if (!g)
        return NULL;
    memcpy(&get, &g, sizeof get);
    ossl_malloc_fn m;
    ossl_realloc_fn r;
    ossl_free_fn f;
    get(&m, &r, &f);
    void *fp;
    memcpy(&fp, &f, sizeof fp);
    return fp;
}

START_TEST(openssl_allocates_from_the_wiping_heap_after_install)
{
    void *deffree = sym("CRYPTO_free");
    ck_assert_ptr_eq(default_free, deffree); /* OpenSSL's own heap before */
    ck_assert_int_eq(installed, 0);
    ck_assert_ptr_ne(current_free(), deffree);

    /* and OpenSSL's own entry points work through it */
    ossl_malloc_fn cm;
    ossl_realloc_fn cr;
    ossl_free_fn cf;
    void *a = sym("CRYPTO_malloc"), *b = sym("CRYPTO_realloc");
    memcpy(&cm, &a, sizeof cm);
    memcpy(&cr, &b, sizeof cr);
    memcpy(&cf, &deffree, sizeof cf);
    char *p = cm(32, __FILE__, __LINE__);
    ck_assert_ptr_nonnull(p);
    memcpy(p, "5555555555554444", 17);
    p = cr(p, 4096, __FILE__, __LINE__);
    ck_assert_ptr_nonnull(p);
    ck_assert_str_eq(p, "5555555555554444");
    ck_assert_ptr_null(cr(p, 0, __FILE__, __LINE__)); /* realloc to 0 frees */
    cf(NULL, __FILE__, __LINE__);
}
END_TEST

/* Once OpenSSL has allocated it refuses new hooks: wipe_install must say
 * so (gatewayd then refuses to start) rather than run on a heap that
 * leaves HTTPS bodies behind. */
START_TEST(install_after_openssl_allocated_is_an_error)
{
    char *out = NULL;
    int rc = h_run(&out, (char *const[]){"/proc/self/exe", "--late", NULL});
    free(out);
    ck_assert_msg(rc == 0, "wipe_install after curl_global_init: exit %d (want 0: refused)", rc);
}
END_TEST

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "--late")) { /* for the test above */
        curl_global_init(CURL_GLOBAL_DEFAULT);
        return wipe_install() == -1 ? 0 : 1;
    }
    default_free = current_free();
    installed = wipe_install();
    h_init("test_wipe");
    Suite *s = suite_create("wipe");
    TCase *tc = h_tcase("heap", 30);
    tcase_add_test(tc, realloc_keeps_the_contents_it_moves);
    tcase_add_test(tc, openssl_allocates_from_the_wiping_heap_after_install);
    tcase_add_test(tc, install_after_openssl_allocated_is_an_error);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
