/* Integration: the failover engine against real sandboxes, with a recorder
 * that writes every attempt to a PostgreSQL table of the test database
 * before it is called and after it ends (one transaction per transition).
 * Proves: down / 500 / reset at the primary charge the secondary exactly
 * once; no failover on a decline; failover on the processing-error card;
 * a 500 after processing is found, not retried; no failover while an
 * outcome is unknown; a failed recording stops the run; open circuits are
 * skipped without a call. */
#include "it_providers_common.h"
#include <libpq-fe.h>

static char *db;
static PGconn *pg;

typedef struct {
    const char *pan;
    h_sandbox_t *sbx[2];
    int transitions, fetches, frees;
    bool fail_transition, fail_fetch;
} rec_t;

static void sql(const char *q, int n, const char *const *vals)
{
    PGresult *r = PQexecParams(pg, q, n, NULL, vals, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    ck_assert_msg(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "%s: %s", q,
                  PQresultErrorMessage(r));
    PQclear(r);
}

static void attempt_started(const char *payment_id, const prv_attempt_t *a)
{
    char seq[16];
    snprintf(seq, sizeof seq, "%d", a->seq);
    const char *v[] = {payment_id, seq, a->provider, a->idempotency_key};
    sql("INSERT INTO prv_test_attempts (payment_id, seq, provider, idempotency_key, state) "
        "VALUES ($1, $2, $3, $4, 'started')",
        4, v);
}

static void attempt_ended(const char *payment_id, const prv_attempt_t *a)
{
    char seq[16];
    snprintf(seq, sizeof seq, "%d", a->seq);
    const char *v[] = {payment_id, seq, prv_outcome_str(a->result.outcome), a->result.reason,
                       a->result.provider_ref};
    sql("UPDATE prv_test_attempts SET state = 'ended', outcome = $3, reason = $4, "
        "provider_ref = $5 WHERE payment_id = $1 AND seq = $2 AND state = 'started'",
        5, v);
}

static const char *current_payment;

static int on_transition(void *cls, const prv_attempt_t *done, const prv_attempt_t *next)
{
    rec_t *rec = cls;
    rec->transitions++;
    /* the next attempt has not reached any provider before it is recorded */
    for (int i = 0; i < 2; i++) {
        json_t *e = t_charge_by_key(rec->sbx[i], next->idempotency_key);
        ck_assert_msg(e == NULL, "attempt %d reached a provider before it was recorded", next->seq);
    }
    ck_assert_int_ne(done->result.outcome, PRV_UNKNOWN);
    if (rec->fail_transition)
        return -1;
    sql("BEGIN", 0, NULL);
    attempt_ended(current_payment, done);
    attempt_started(current_payment, next);
    sql("COMMIT", 0, NULL);
    return 0;
}

static int on_fetch(void *cls, prv_card_t **card)
{
    rec_t *rec = cls;
    rec->fetches++;
    if (rec->fail_fetch)
        return -1;
    *card = t_card(rec->pan);
    return 0;
}

static void on_free(void *cls, prv_card_t *card)
{
    ((rec_t *)cls)->frees++;
    prv_card_free(card);
}

static h_sandbox_t *sb[2];
static prv_config_t cfg[2];

static void setup_pair(const char *primary, const char *secondary)
{
    db = h_db_create();
    pg = h_db_connect(db, "admin");
    ck_assert_ptr_nonnull(pg);
    sql("CREATE TABLE prv_test_attempts (payment_id text NOT NULL, seq int NOT NULL, "
        "provider text NOT NULL, idempotency_key text NOT NULL UNIQUE, state text NOT NULL, "
        "outcome text, reason text, provider_ref text, PRIMARY KEY (payment_id, seq))",
        0, NULL);
    sb[0] = t_sandbox(primary, "primary");
    sb[1] = t_sandbox(secondary, "secondary");
    t_config(&cfg[0], primary, primary, sb[0]->url, 1, 1500);
    t_config(&cfg[1], secondary, secondary, sb[1]->url, 2, 1500);
    prv_health_reset();
}

static void teardown_pair(void)
{
    prv_config_clear(&cfg[0]);
    prv_config_clear(&cfg[1]);
    h_sandbox_stop(sb[0]);
    h_sandbox_stop(sb[1]);
    PQfinish(pg);
    h_db_drop(db);
    free(db);
    httpc_thread_cleanup();
}

/* Plans, records attempt 1, runs, records the final attempt. */
static int run_payment(const char *id, rec_t *rec, prv_run_t *run)
{
    prv_payment_t pay = t_payment(id, 2598, false);
    prv_plan_t plan;
    ck_assert_int_ge(prv_plan(cfg, 2, NULL, &pay, &plan), 1);
    prv_attempt_t first = {.seq = 1};
    snprintf(first.provider, sizeof first.provider, "%s", plan.candidates[0]->name);
    prv_attempt_key(id, 1, first.idempotency_key);
    current_payment = id;
    attempt_started(id, &first);
    rec->sbx[0] = sb[0];
    rec->sbx[1] = sb[1];
    prv_hooks_t hooks = {
        .transition = on_transition, .fetch_card = on_fetch, .free_card = on_free, .cls = rec};
    prv_options_t opt = {.lookup_attempts = 4, .lookup_backoff_ms = 50};
    int rc = prv_execute(&pay, &plan, &opt, &hooks, run);
    if (run->nattempts > 0)
        attempt_ended(id, &run->attempts[run->nattempts - 1]);
    return rc;
}

static long count(const char *where)
{
    return h_sql_long(db, "SELECT count(*) FROM prv_test_attempts WHERE %s", where);
}

/* ---------------------------------------------------------------- tests */

static const char *const fault_modes[] = {"{\"mode\":\"down\"}", "{\"mode\":\"error_500\"}",
                                          "{\"mode\":\"reset\"}"};
static const char *const primaries[] = {"stripe", "checkout", "adyen"};
static const char *const secondaries[] = {"adyen", "stripe", "checkout"};

/* (primary, fault) pairs whose first attempt is known not charged: refused
 * connections anywhere; a 500 or a reset only at Stripe, whose lookup fences
 * the payment with a cancel and so proves it absent at once. */
static const struct {
    int primary, mode;
} failover_cases[] = {{0, 0}, {0, 1}, {0, 2}, {1, 0}, {2, 0}};

START_TEST(primary_down_500_or_reset_fails_over_with_exactly_one_charge)
{
    int p = failover_cases[_i].primary, m = failover_cases[_i].mode;
    setup_pair(primaries[p], secondaries[p]);
    h_sandbox_faults(sb[0], fault_modes[m]);
    rec_t rec = {.pan = "4242424242424242"};
    prv_run_t run;
    ck_assert_int_eq(run_payment("pay_fo1", &rec, &run), 0);
    ck_assert_msg(run.result.outcome == PRV_AUTHORIZED, "%s %s: %s %s", primaries[p],
                  fault_modes[m], prv_outcome_str(run.result.outcome), run.result.reason);
    ck_assert_int_eq(run.nattempts, 2);
    ck_assert_int_eq(run.attempts[0].result.outcome, PRV_UNAVAILABLE);
    ck_assert_str_eq(run.attempts[1].provider, secondaries[p]);
    ck_assert_int_eq(rec.transitions, 1);
    ck_assert_int_eq(rec.fetches, 1);
    ck_assert_int_eq(rec.frees, 1);
    /* exactly one charge across both ledgers, at the secondary */
    h_sandbox_faults(sb[0], "{\"mode\":\"none\"}");
    ck_assert_int_eq(t_charges(sb[0], NULL), 0);
    ck_assert_int_eq(t_charges(sb[1], T_MONEY), 1);
    json_t *e = t_charge_by_key(sb[1], run.attempts[1].idempotency_key);
    ck_assert_ptr_nonnull(e);
    ck_assert_str_eq(json_string_value(json_object_get(e, "id")), run.result.provider_ref);
    json_decref(e);
    /* recorded: attempt 1 ended not charged, attempt 2 ended authorized */
    ck_assert_int_eq(count("true"), 2);
    ck_assert_int_eq(count("seq = 1 AND state = 'ended' AND outcome = 'unavailable'"), 1);
    char *ref = h_sql(db, "SELECT provider_ref FROM prv_test_attempts WHERE seq = 2 AND "
                          "state = 'ended' AND outcome = 'authorized'");
    ck_assert_ptr_nonnull(ref);
    ck_assert_str_eq(ref, run.result.provider_ref);
    free(ref);
    teardown_pair();
}
END_TEST

START_TEST(adyen_500_before_processing_stays_unknown_and_never_fails_over)
{
    /* Adyen's only lookup is a replay, which the outage refuses as well */
    setup_pair("adyen", "stripe");
    h_sandbox_faults(sb[0], "{\"mode\":\"error_500\"}");
    rec_t rec = {.pan = "4242424242424242"};
    prv_run_t run;
    ck_assert_int_eq(run_payment("pay_unk1", &rec, &run), 0);
    ck_assert_int_eq(run.result.outcome, PRV_UNKNOWN);
    ck_assert_int_eq(run.nattempts, 1);
    ck_assert_int_eq(rec.transitions, 0);
    ck_assert_int_eq(t_charges(sb[1], NULL), 0);
    ck_assert_int_eq(count("seq = 1 AND state = 'ended' AND outcome = 'unknown'"), 1);
    /* once Adyen answers again, a lookup (a replay) settles it without a second charge */
    h_sandbox_faults(sb[0], "{\"mode\":\"none\"}");
    prv_payment_t pay = t_payment("pay_unk1", 2598, false);
    prv_card_t *card = t_card("4242424242424242");
    prv_result_t l = prv_lookup(&cfg[0], &pay, run.attempts[0].idempotency_key, "", card);
    prv_card_free(card);
    ck_assert_int_eq(l.outcome, PRV_AUTHORIZED);
    ck_assert_int_eq(t_charges(sb[0], T_MONEY), 1);
    teardown_pair();
}
END_TEST

START_TEST(declines_are_never_retried_elsewhere)
{
    setup_pair("stripe", "adyen");
    rec_t rec = {.pan = "4000000000009979"}; /* stolen: hard */
    prv_run_t run;
    ck_assert_int_eq(run_payment("pay_hard", &rec, &run), 0);
    ck_assert_int_eq(run.result.outcome, PRV_DECLINED);
    ck_assert(run.result.hard);
    ck_assert_str_eq(run.result.reason, "stolen_card");
    ck_assert_int_eq(run.nattempts, 1);
    rec_t soft = {.pan = "4000000000009995"}; /* insufficient funds: soft, still final */
    ck_assert_int_eq(run_payment("pay_soft", &soft, &run), 0);
    ck_assert_int_eq(run.result.outcome, PRV_DECLINED);
    ck_assert(!run.result.hard);
    ck_assert_int_eq(run.nattempts, 1);
    ck_assert_int_eq(rec.transitions + soft.transitions, 0);
    ck_assert_int_eq(t_charges(sb[0], "declined"), 2);
    ck_assert_int_eq(t_charges(sb[1], NULL), 0);
    ck_assert_int_eq(count("state = 'ended' AND outcome = 'declined'"), 2);
    teardown_pair();
}
END_TEST

START_TEST(processing_error_card_fails_over)
{
    setup_pair("stripe", "checkout");
    rec_t rec = {.pan = "4000000000000119"};
    prv_run_t run;
    ck_assert_int_eq(run_payment("pay_proc", &rec, &run), 0);
    ck_assert_int_eq(run.nattempts, 2); /* the retryable code moved it on */
    ck_assert_int_eq(rec.transitions, 1);
    ck_assert_int_eq(run.attempts[0].result.outcome, PRV_UNAVAILABLE);
    ck_assert_str_eq(run.attempts[0].result.reason, "processing_error");
    /* the test card fails the same way everywhere: nothing charged anywhere */
    ck_assert_int_eq(run.result.outcome, PRV_UNAVAILABLE);
    ck_assert_int_eq(t_charges(sb[0], T_MONEY) + t_charges(sb[1], T_MONEY), 0);
    ck_assert_int_eq(t_charges(sb[0], "declined"), 1);
    ck_assert_int_eq(t_charges(sb[1], "declined"), 1);
    ck_assert_int_eq(count("state = 'ended' AND reason = 'processing_error'"), 2);
    teardown_pair();
}
END_TEST

/* A 500 or a reset at Checkout.com may come after the payment was taken,
 * and its lookup is a search that may not list a payment still in flight:
 * a miss right after the call proves nothing. The attempt stays unknown
 * (the checkout answers 202 and recovery settles it once a miss can be
 * believed) and no second provider is tried, so the card is never charged
 * twice. */
START_TEST(checkout_com_500_or_reset_stays_unknown_without_failover)
{
    setup_pair("checkout", "stripe");
    h_sandbox_faults(sb[0], fault_modes[1 + _i]);
    rec_t rec = {.pan = "4242424242424242"};
    prv_run_t run;
    ck_assert_int_eq(run_payment("pay_cko", &rec, &run), 0);
    ck_assert_msg(run.result.outcome == PRV_UNKNOWN, "%s: %s %s", fault_modes[1 + _i],
                  prv_outcome_str(run.result.outcome), run.result.reason);
    ck_assert_int_eq(run.nattempts, 1);
    ck_assert_int_eq(rec.transitions, 0);
    h_sandbox_faults(sb[0], "{\"mode\":\"none\"}");
    ck_assert_int_eq(t_charges(sb[0], T_MONEY), 0);
    ck_assert_int_eq(t_charges(sb[1], NULL), 0);
    teardown_pair();
}
END_TEST

START_TEST(error_500_after_processing_is_found_by_lookup_not_retried)
{
    setup_pair(primaries[_i], secondaries[_i]);
    h_sandbox_faults(sb[0], "{\"mode\":\"error_500\",\"after_processing\":true}");
    rec_t rec = {.pan = "4242424242424242"};
    prv_run_t run;
    ck_assert_int_eq(run_payment("pay_ap", &rec, &run), 0);
    ck_assert_msg(run.result.outcome == PRV_AUTHORIZED, "%s: %s %s", primaries[_i],
                  prv_outcome_str(run.result.outcome), run.result.reason);
    ck_assert_int_eq(run.nattempts, 1);
    ck_assert_int_eq(t_charges(sb[0], T_MONEY), 1);
    ck_assert_int_eq(t_charges(sb[1], NULL), 0);
    /* the authorization itself failed (500) and a lookup settled it */
    prv_health_t h;
    prv_health_get(T_MERCHANT, primaries[_i], &h);
    ck_assert_int_eq(h.failures, 1);
    ck_assert_uint_ge(h.calls, 2);
    teardown_pair();
}
END_TEST

START_TEST(failed_recording_stops_before_the_next_call)
{
    setup_pair("stripe", "adyen");
    h_sandbox_faults(sb[0], "{\"mode\":\"down\"}");
    rec_t rec = {.pan = "4242424242424242", .fail_transition = true};
    prv_run_t run;
    ck_assert_int_eq(run_payment("pay_rec", &rec, &run), -1);
    ck_assert_int_eq(run.nattempts, 1);
    ck_assert_int_eq(run.result.outcome, PRV_UNAVAILABLE);
    ck_assert_int_eq(rec.frees, 1);
    ck_assert_int_eq(t_charges(sb[1], NULL), 0);
    /* no card, no call */
    rec_t nocard = {.pan = "4242424242424242", .fail_fetch = true};
    h_sandbox_faults(sb[0], "{\"mode\":\"none\"}");
    ck_assert_int_eq(run_payment("pay_nocard", &nocard, &run), -1);
    ck_assert_str_eq(run.result.reason, "card_unavailable");
    ck_assert_int_eq(run.nattempts, 0); /* nothing sent: not an unknown outcome */
    ck_assert_int_eq(t_charges(sb[0], NULL) + t_charges(sb[1], NULL), 0);
    teardown_pair();
}
END_TEST

START_TEST(open_circuit_is_skipped_without_a_call)
{
    setup_pair("stripe", "adyen");
    prv_health_policy_t p;
    prv_health_policy_default(&p);
    p.consecutive_failures = 2;
    p.cooldown_ms = 600000;
    prv_health_set_policy(&p);
    h_sandbox_faults(sb[0], "{\"mode\":\"down\"}");
    rec_t rec = {.pan = "4242424242424242"};
    prv_run_t run;
    ck_assert_int_eq(run_payment("pay_cb1", &rec, &run), 0);
    ck_assert_int_eq(run_payment("pay_cb2", &rec, &run), 0);
    ck_assert_int_eq(prv_health_state(T_MERCHANT, "stripe"), PRV_CIRCUIT_OPEN);
    prv_health_t before, after;
    prv_health_get(T_MERCHANT, "stripe", &before);
    /* a plan made now leaves stripe out ... */
    prv_payment_t pay = t_payment("pay_cb3", 2598, false);
    prv_plan_t plan;
    ck_assert_int_eq(prv_plan(cfg, 2, NULL, &pay, &plan), 1);
    ck_assert_str_eq(plan.candidates[0]->name, "adyen");
    /* ... and a plan made before it opened skips it without calling */
    prv_plan_t stale = {.n = 2, .candidates = {&cfg[0], &cfg[1]}, .rule = -2};
    prv_hooks_t hooks = {
        .transition = on_transition, .fetch_card = on_fetch, .free_card = on_free, .cls = &rec};
    rec.sbx[0] = sb[0], rec.sbx[1] = sb[1];
    current_payment = "pay_cb4";
    prv_attempt_t first = {.seq = 1, .provider = "stripe"};
    prv_attempt_key("pay_cb4", 1, first.idempotency_key);
    attempt_started("pay_cb4", &first);
    prv_payment_t pay4 = t_payment("pay_cb4", 2598, false);
    ck_assert_int_eq(prv_execute(&pay4, &stale, NULL, &hooks, &run), 0);
    ck_assert_str_eq(run.attempts[0].result.reason, "circuit_open");
    ck_assert_int_eq(run.result.outcome, PRV_AUTHORIZED);
    prv_health_get(T_MERCHANT, "stripe", &after);
    ck_assert_int_eq(after.calls, before.calls);
    ck_assert_int_eq(t_charges(sb[1], T_MONEY), 3);
    teardown_pair();
}
END_TEST

int main(void)
{
    h_init("it_providers_failover");
    Suite *s = suite_create("providers_failover");
    TCase *tc = h_tcase("failover", 300);
    tcase_add_loop_test(tc, primary_down_500_or_reset_fails_over_with_exactly_one_charge, 0,
                        (int)PC_ARRAY_LEN(failover_cases));
    tcase_add_loop_test(tc, checkout_com_500_or_reset_stays_unknown_without_failover, 0, 2);
    tcase_add_loop_test(tc, error_500_after_processing_is_found_by_lookup_not_retried, 0, 3);
    tcase_add_test(tc, adyen_500_before_processing_stays_unknown_and_never_fails_over);
    tcase_add_test(tc, declines_are_never_retried_elsewhere);
    tcase_add_test(tc, processing_error_card_fails_over);
    tcase_add_test(tc, failed_recording_stops_before_the_next_call);
    tcase_add_test(tc, open_circuit_is_skipped_without_a_call);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
