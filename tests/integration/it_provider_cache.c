/* Integration: gatewayd's provider snapshot cache (64 sets of 4 ways) keeps
 * each merchant's providers apart when more merchants than ways share a set.
 * Five merchants whose ids hash to one set pay round-robin, one after the
 * other and then from five threads at once, so every checkout evicts a
 * snapshot another one may still hold: each must be routed by its own
 * merchant's configuration (stripe for some, adyen for the others), and
 * the sandboxes' ledgers must hold exactly the charges those routes imply. */
#include "tests/harness/stack.h"
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

/* gateway/provider_cache.c's layout: FNV-1a of the merchant id, 64 sets of
 * 4 ways. The test needs one more merchant in a set than it has ways. */
#define SETS       64
#define WAYS       4
#define CROWD      (WAYS + 1)
#define ROUNDS     3
#define THREADS    CROWD
#define PER_THREAD 4

static h_stack_t *st;
static h_merchant_t crowd[CROWD];

static size_t set_of(const char *m)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *m; m++)
        h = (h ^ (unsigned char)*m) * 1099511628211ULL;
    return (size_t)(h % SETS);
}

static const char *provider_of(int j)
{
    return j % 2 ? "adyen" : "stripe";
}

static void put_provider(const h_merchant_t *m, const char *name)
{
    char body[512], url[256];
    if (!strcmp(name, "stripe"))
        snprintf(body, sizeof body,
                 "{\"type\":\"stripe\",\"base_url\":\"%s\",\"credentials\":{\"secret_key\":"
                 "\"sk_test_portcullis_sandbox\"},\"priority\":1,\"enabled\":true}",
                 st->stripe->url);
    else
        snprintf(body, sizeof body,
                 "{\"type\":\"adyen\",\"base_url\":\"%s\",\"credentials\":{\"api_key\":"
                 "\"adyen_test_portcullis_sandbox\",\"merchant_account\":\"PortcullisTest\"},"
                 "\"priority\":1,\"enabled\":true}",
                 st->adyen->url);
    snprintf(url, sizeof url, "%s/v1/providers/%s", st->gw[0]->url, name);
    h_resp_t r = h_http("PUT", url, m->sk, body, NULL);
    ck_assert_msg(r.status == 201, "PUT %s: %ld %s", name, r.status, r.body);
    h_resp_free(&r);
}

/* Merchants are created until CROWD of them share a set (about 60 are
 * needed on average; the bound is far beyond any plausible draw). */
static void make_crowd(void)
{
    static h_merchant_t seen[SETS][CROWD];
    int fill[SETS] = {0};
    for (int i = 0; i < 600; i++) {
        char name[32];
        snprintf(name, sizeof name, "crowd-%d", i);
        h_merchant_t m = h_merchant_create(st->db, name);
        size_t s = set_of(m.id);
        seen[s][fill[s]++] = m;
        if (fill[s] == CROWD) {
            memcpy(crowd, seen[s], sizeof crowd);
            return;
        }
    }
    ck_abort_msg("no %d merchants hashed to one set", CROWD);
}

static void setup(void)
{
    h_stack_opts_t o = {.no_webhook = true};
    st = h_stack_start(&o);
    make_crowd();
    for (int j = 0; j < CROWD; j++)
        put_provider(&crowd[j], provider_of(j));
}

static void teardown(void)
{
    h_stack_stop(st);
}

/* One checkout as merchant j; returns the HTTP status, and the provider
 * that took it in `by` (empty when none). */
static long pay_as(int j, char by[16])
{
    static atomic_int seq;
    char body[256], url[256], key[96];
    by[0] = '\0';
    snprintf(body, sizeof body,
             "{\"card\":{\"number\":\"4242424242424242\",\"exp_month\":12,\"exp_year\":2030,"
             "\"cvc\":\"123\"}}");
    h_resp_t t = h_post(st->gw[0], "/v1/tokens", crowd[j].pk, body);
    if (t.status != 201) {
        h_resp_free(&t);
        return t.status;
    }
    char *co = h_stack_checkout_body(h_json_str(t.json, "id"), "SKU-RED-MUG", 1, NULL);
    h_resp_free(&t);
    snprintf(url, sizeof url, "%s/v1/checkouts", st->gw[0]->url);
    snprintf(key, sizeof key, "Idempotency-Key: crowd-%d-%d", (int)getpid(),
             atomic_fetch_add(&seq, 1));
    char xff[96];
    const char *headers[] = {key, h_stack_xff(co, xff, sizeof xff), NULL};
    h_resp_t r = h_http("POST", url, crowd[j].pk, co, headers);
    free(co);
    const char *p = r.json ? h_json_str(r.json, "payment.provider") : NULL;
    snprintf(by, 16, "%s", p ? p : "");
    long status = r.status;
    h_resp_free(&r);
    return status;
}

static long ledger(h_sandbox_t *sb)
{
    json_t *j = h_sandbox_charges(sb);
    long n = (long)json_array_size(json_object_get(j, "charges"));
    json_decref(j);
    return n;
}

START_TEST(each_merchant_of_a_crowded_set_is_routed_by_its_own_providers)
{
    for (int j = 0; j < CROWD; j++)
        ck_assert_uint_eq(set_of(crowd[j].id), set_of(crowd[0].id));
    long stripe0 = ledger(st->stripe), adyen0 = ledger(st->adyen);
    int want_stripe = 0, want_adyen = 0;
    /* round-robin over 5 merchants in 4 ways: every lookup misses and
     * evicts the least recently used snapshot */
    for (int round = 0; round < ROUNDS; round++) {
        for (int j = 0; j < CROWD; j++) {
            char by[16];
            long status = pay_as(j, by);
            ck_assert_msg(status == 200, "merchant %d round %d: %ld", j, round, status);
            ck_assert_str_eq(by, provider_of(j));
            *(j % 2 ? &want_adyen : &want_stripe) += 1;
        }
    }
    ck_assert_int_eq(ledger(st->stripe) - stripe0, want_stripe);
    ck_assert_int_eq(ledger(st->adyen) - adyen0, want_adyen);
}
END_TEST

typedef struct {
    int j;
    int ok, wrong;
} worker_t;

static void *worker(void *cls)
{
    worker_t *w = cls;
    for (int i = 0; i < PER_THREAD; i++) {
        char by[16];
        if (pay_as(w->j, by) == 200 && !strcmp(by, provider_of(w->j)))
            w->ok++;
        else
            w->wrong++;
    }
    return NULL;
}

START_TEST(concurrent_evictions_never_hand_a_checkout_another_merchants_snapshot)
{
    long stripe0 = ledger(st->stripe), adyen0 = ledger(st->adyen);
    pthread_t th[THREADS];
    worker_t w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker_t){.j = i};
        ck_assert_int_eq(pthread_create(&th[i], NULL, worker, &w[i]), 0);
    }
    int want_stripe = 0, want_adyen = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        ck_assert_msg(w[i].wrong == 0, "merchant %d: %d of %d checkouts failed or misrouted", i,
                      w[i].wrong, PER_THREAD);
        *(i % 2 ? &want_adyen : &want_stripe) += w[i].ok;
    }
    ck_assert_int_eq(ledger(st->stripe) - stripe0, want_stripe);
    ck_assert_int_eq(ledger(st->adyen) - adyen0, want_adyen);
}
END_TEST

int main(void)
{
    h_init("it_provider_cache");
    Suite *s = suite_create("provider_cache");
    TCase *tc = h_tcase("crowded_set", 600);
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_add_test(tc, each_merchant_of_a_crowded_set_is_routed_by_its_own_providers);
    tcase_add_test(tc, concurrent_evictions_never_hand_a_checkout_another_merchants_snapshot);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
