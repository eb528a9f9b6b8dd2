/* Integration: unknown outcomes. The primary processes each payment and
 * then withholds the answer past the client timeout (timeout +
 * after_processing); 100 payments per primary, four at a time: every one
 * is settled by a lookup at the primary, no payment reaches the secondary,
 * and the ledgers hold exactly one charge per payment. Then the same
 * timeout before processing: Stripe (fenced) and Checkout.com (absent
 * twice) fail over with one charge; Adyen (lookup = replay, refused too)
 * stays unknown and never fails over. */
#include "it_providers_common.h"
#include <pthread.h>
#include <stdatomic.h>

#define N_PAYMENTS 100
#define N_THREADS  4

static const char *const primaries[] = {"stripe", "adyen", "checkout"};
static const char *const secondaries[] = {"checkout", "stripe", "adyen"};

static h_sandbox_t *sb[2];
static prv_config_t cfg[2];
static atomic_int transitions;

typedef struct {
    const char *prefix;
    int from, to;
    prv_run_t *runs;
    int *rcs;
} job_t;

static int on_transition(void *cls, const prv_attempt_t *done, const prv_attempt_t *next)
{
    (void)cls, (void)done, (void)next;
    atomic_fetch_add(&transitions, 1);
    return 0;
}

static int on_fetch(void *cls, prv_card_t **card)
{
    (void)cls;
    *card = prv_card_new();
    if (!*card)
        return -1;
    snprintf((*card)->pan, sizeof(*card)->pan, "4242424242424242");
    snprintf((*card)->cvc, sizeof(*card)->cvc, "123");
    (*card)->has_cvc = true;
    (*card)->exp_month = 12;
    (*card)->exp_year = 2030;
    return 0;
}

static void *worker(void *arg)
{
    job_t *j = arg;
    prv_hooks_t hooks = {.transition = on_transition, .fetch_card = on_fetch};
    prv_options_t opt = {.lookup_attempts = 4, .lookup_backoff_ms = 50};
    for (int i = j->from; i < j->to; i++) {
        char id[64];
        snprintf(id, sizeof id, "%s%03d", j->prefix, i);
        prv_payment_t pay = {.merchant_id = T_MERCHANT,
                             .payment_id = id,
                             .amount = 1000 + i,
                             .currency = "EUR",
                             .brand = "visa"};
        prv_plan_t plan;
        prv_plan(cfg, 2, NULL, &pay, &plan);
        j->rcs[i] = prv_execute(&pay, &plan, &opt, &hooks, &j->runs[i]);
    }
    httpc_thread_cleanup();
    return NULL;
}

static void run_all(const char *prefix, int n, prv_run_t *runs, int *rcs)
{
    pthread_t t[N_THREADS];
    job_t jobs[N_THREADS];
    for (int k = 0; k < N_THREADS; k++) {
        jobs[k] = (job_t){.prefix = prefix,
                          .from = n * k / N_THREADS,
                          .to = n * (k + 1) / N_THREADS,
                          .runs = runs,
                          .rcs = rcs};
        pthread_create(&t[k], NULL, worker, &jobs[k]);
    }
    for (int k = 0; k < N_THREADS; k++)
        pthread_join(t[k], NULL);
}

static void setup(int i)
{
    sb[0] = t_sandbox(primaries[i], "primary");
    sb[1] = t_sandbox(secondaries[i], "secondary");
    /* a short client timeout; the sandbox holds answers longer */
    t_config(&cfg[0], primaries[i], primaries[i], sb[0]->url, 1, 300);
    t_config(&cfg[1], secondaries[i], secondaries[i], sb[1]->url, 2, 2000);
    prv_health_reset();
    /* this test is about lookups, so the breaker must not divert traffic */
    prv_health_policy_t p;
    prv_health_policy_default(&p);
    p.error_rate = 2.0;
    p.consecutive_failures = 1000000;
    prv_health_set_policy(&p);
    atomic_store(&transitions, 0);
}

static void teardown(void)
{
    prv_config_clear(&cfg[0]);
    prv_config_clear(&cfg[1]);
    h_sandbox_stop(sb[0]);
    h_sandbox_stop(sb[1]);
    httpc_thread_cleanup();
}

START_TEST(after_processing_timeouts_resolve_by_lookup_with_no_double_charge)
{
    setup(_i);
    h_sandbox_faults(sb[0], "{\"mode\":\"timeout\",\"after_processing\":true,\"hold_ms\":700}");
    static prv_run_t runs[N_PAYMENTS];
    static int rcs[N_PAYMENTS];
    run_all("pay_ap_", N_PAYMENTS, runs, rcs);
    h_sandbox_faults(sb[0], "{\"mode\":\"none\"}");
    for (int i = 0; i < N_PAYMENTS; i++) {
        ck_assert_int_eq(rcs[i], 0);
        ck_assert_msg(runs[i].result.outcome == PRV_AUTHORIZED && runs[i].nattempts == 1,
                      "%s payment %d: %s/%s after %d attempts", primaries[_i], i,
                      prv_outcome_str(runs[i].result.outcome), runs[i].result.reason,
                      runs[i].nattempts);
        json_t *e = t_charge_by_key(sb[0], runs[i].attempts[0].idempotency_key);
        ck_assert_ptr_nonnull(e);
        ck_assert_str_eq(json_string_value(json_object_get(e, "id")), runs[i].result.provider_ref);
        ck_assert_int_eq(json_integer_value(json_object_get(e, "amount")), 1000 + i);
        json_decref(e);
    }
    /* exactly one charge per payment across all ledgers */
    ck_assert_int_eq(t_charges(sb[0], NULL), N_PAYMENTS);
    ck_assert_int_eq(t_charges(sb[0], "authorized"), N_PAYMENTS);
    ck_assert_int_eq(t_charges(sb[1], NULL), 0);
    ck_assert_int_eq(atomic_load(&transitions), 0);
    /* every authorization timed out (a failure) and was then looked up */
    prv_health_t h;
    prv_health_get(T_MERCHANT, primaries[_i], &h);
    ck_assert_msg(h.failures == N_PAYMENTS, "failures %llu calls %llu",
                  (unsigned long long)h.failures, (unsigned long long)h.calls);
    ck_assert_uint_ge(h.calls, 2 * N_PAYMENTS);
    teardown();
}
END_TEST

START_TEST(before_processing_timeouts_fail_over_only_when_absent)
{
    setup(_i);
    h_sandbox_faults(sb[0], "{\"mode\":\"timeout\",\"hold_ms\":700}");
    /* Adyen's only lookup is a replay, which needs the card; Checkout.com's
     * is a search, whose miss right after the call proves nothing (a payment
     * still in flight may not be listed). Either way the attempt stays
     * unknown and no second provider is tried. Stripe fences the payment
     * with a cancel, so its "absent" is proof and it fails over. */
    bool stays_unknown = strcmp(primaries[_i], "stripe") != 0;
    int n = stays_unknown ? 8 : 20;
    static prv_run_t runs[20];
    static int rcs[20];
    run_all("pay_bp_", n, runs, rcs);
    h_sandbox_faults(sb[0], "{\"mode\":\"none\"}");
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(rcs[i], 0);
        if (stays_unknown) {
            ck_assert_int_eq(runs[i].result.outcome, PRV_UNKNOWN);
            ck_assert_int_eq(runs[i].nattempts, 1);
        } else {
            ck_assert_msg(runs[i].result.outcome == PRV_AUTHORIZED && runs[i].nattempts == 2,
                          "%s payment %d: %s/%s", primaries[_i], i,
                          prv_outcome_str(runs[i].result.outcome), runs[i].result.reason);
            ck_assert_str_eq(runs[i].attempts[0].result.reason, "not_found");
        }
    }
    ck_assert_int_eq(t_charges(sb[0], T_MONEY), 0);
    ck_assert_int_eq(t_charges(sb[1], T_MONEY), stays_unknown ? 0 : n);
    ck_assert_int_eq(atomic_load(&transitions), stays_unknown ? 0 : n);
    teardown();
}
END_TEST

int main(void)
{
    h_init("it_providers_unknown");
    Suite *s = suite_create("providers_unknown");
    TCase *tc = h_tcase("unknown", 600);
    tcase_add_loop_test(tc, after_processing_timeouts_resolve_by_lookup_with_no_double_charge, 0,
                        3);
    tcase_add_loop_test(tc, before_processing_timeouts_fail_over_only_when_absent, 0, 3);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
