/* Unit: the per-merchant rules cache. A cached copy is served until the
 * change-notice generation moves, a newer version is required, or it is
 * invalidated; references handed out stay valid after replacement; many
 * threads can use it at once (run under ASan for the reference counts). */
#include "fraud/fraud.h"
#include "tests/harness/harness.h"
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

static atomic_int loads;
static atomic_long next_version;

static db_status_t loader(void *cls, const char *merchant_id, fraud_rules_t **out)
{
    (void)cls;
    atomic_fetch_add(&loads, 1);
    json_t *doc =
        json_pack("{s:i, s:[{s:s, s:i, s:{s:s, s:s, s:i}}]}", "review_threshold", 50, "rules", "id",
                  merchant_id, "score", 10, "if", "feature", "amount", "op", "gt", "value", 0);
    fraud_rules_error_t e;
    *out = fraud_rules_parse(doc, atomic_fetch_add(&next_version, 1), &e);
    json_decref(doc);
    return *out ? DB_OK : DB_ERROR;
}

static db_status_t failing_loader(void *cls, const char *merchant_id, fraud_rules_t **out)
{
    (void)cls;
    (void)merchant_id;
    atomic_fetch_add(&loads, 1);
    *out = NULL;
    return DB_UNAVAILABLE;
}

static fraud_rules_t *get(fraud_rules_cache_t *c, const char *m, uint64_t gen, int64_t minv)
{
    fraud_rules_t *r = NULL;
    ck_assert_int_eq(fraud_rules_cache_get(c, m, gen, minv, loader, NULL, &r), DB_OK);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(fraud_rules_id(r, 0), m);
    return r;
}

START_TEST(cached_until_generation_version_or_invalidation)
{
    atomic_store(&loads, 0);
    atomic_store(&next_version, 1);
    fraud_rules_cache_t *c = fraud_rules_cache_create(64);
    fraud_rules_t *a = get(c, "mer_A", 1, -1);
    fraud_rules_t *a2 = get(c, "mer_A", 1, -1);
    ck_assert_ptr_eq(a, a2); /* the same shared copy, no second load */
    ck_assert_int_eq(atomic_load(&loads), 1);
    fraud_rules_t *b = get(c, "mer_B", 1, -1);
    ck_assert_int_eq(atomic_load(&loads), 2);

    /* a change notice (new generation) reloads */
    fraud_rules_t *a3 = get(c, "mer_A", 2, -1);
    ck_assert_int_eq(atomic_load(&loads), 3);
    ck_assert_ptr_ne(a3, a);
    /* a required version newer than the cached one reloads; an older or
     * equal one does not */
    int64_t v = fraud_rules_version(a3);
    fraud_rules_t *a4 = get(c, "mer_A", 2, v);
    ck_assert_ptr_eq(a4, a3);
    fraud_rules_t *a5 = get(c, "mer_A", 2, v + 1);
    ck_assert_int_eq(atomic_load(&loads), 4);
    ck_assert_int_ge(fraud_rules_version(a5), v + 1);
    /* invalidation reloads */
    fraud_rules_cache_invalidate(c, "mer_A");
    fraud_rules_t *a6 = get(c, "mer_A", 2, -1);
    ck_assert_int_eq(atomic_load(&loads), 5);

    /* every reference handed out is still usable after replacement */
    fraud_rules_t *all[] = {a, a2, b, a3, a4, a5, a6};
    for (size_t i = 0; i < PC_ARRAY_LEN(all); i++) {
        ck_assert_uint_eq(fraud_rules_count(all[i]), 1);
        fraud_rules_release(all[i]);
    }
    fraud_rules_cache_destroy(c);
}
END_TEST

START_TEST(failed_load_is_not_cached)
{
    atomic_store(&loads, 0);
    fraud_rules_cache_t *c = fraud_rules_cache_create(8);
    fraud_rules_t *r = (fraud_rules_t *)1;
    ck_assert_int_eq(fraud_rules_cache_get(c, "mer_X", 1, -1, failing_loader, NULL, &r),
                     DB_UNAVAILABLE);
    ck_assert_ptr_null(r);
    ck_assert_int_eq(fraud_rules_cache_get(c, "mer_X", 1, -1, failing_loader, NULL, &r),
                     DB_UNAVAILABLE);
    ck_assert_int_eq(atomic_load(&loads), 2);
    fraud_rules_release(get(c, "mer_X", 1, -1));
    fraud_rules_cache_destroy(c);
}
END_TEST

static fraud_rules_cache_t *shared;
static atomic_uint_fast64_t gen;

static void *hammer(void *arg)
{
    const char *ms[] = {"mer_1", "mer_2", "mer_3", "mer_4", "mer_5"};
    unsigned seed = (unsigned)(uintptr_t)arg;
    for (int i = 0; i < 20000; i++) {
        seed = seed * 1103515245u + 12345u;
        const char *m = ms[(seed >> 16) % 5];
        if ((seed >> 8) % 97 == 0)
            atomic_fetch_add(&gen, 1);
        if ((seed >> 8) % 89 == 0)
            fraud_rules_cache_invalidate(shared, m);
        fraud_rules_t *r = NULL;
        if (fraud_rules_cache_get(shared, m, atomic_load(&gen), -1, loader, NULL, &r) != DB_OK ||
            !r || strcmp(fraud_rules_id(r, 0), m) != 0)
            return (void *)1;
        fraud_rules_release(r);
    }
    return NULL;
}

START_TEST(threads_share_the_cache_safely)
{
    shared = fraud_rules_cache_create(3); /* fewer slots than merchants: evictions too */
    atomic_store(&gen, 1);
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        pthread_create(&t[i], NULL, hammer, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < 8; i++) {
        void *rc;
        pthread_join(t[i], &rc);
        ck_assert_msg(rc == NULL, "a thread got the wrong merchant's rules");
    }
    fraud_rules_cache_destroy(shared);
}
END_TEST

int main(void)
{
    h_init("test_fraud_cache");
    Suite *s = suite_create("fraud_cache");
    TCase *tc = h_tcase("cache", 120);
    tcase_add_test(tc, cached_until_generation_version_or_invalidation);
    tcase_add_test(tc, failed_load_is_not_cached);
    tcase_add_test(tc, threads_share_the_cache_safely);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
