/* Integration: idempotency keys with Stripe's semantics, decided by the
 * database so that two gatewayd instances agree: replays return the first
 * answer byte for byte, a key in flight is 409, a key reused with another
 * body is 422 and charges nothing. */
#include "tests/harness/stack.h"
#include <pthread.h>
#include <string.h>
#include <unistd.h>

static h_stack_t *st;

static void setup(void)
{
    h_stack_opts_t o = {.gateways = 2};
    st = h_stack_start(&o);
}

static void teardown(void)
{
    h_stack_stop(st);
}

START_TEST(key_is_required_and_bounded)
{
    char *tok = h_stack_token(st, "4242424242424242");
    char *body = h_stack_checkout_body(tok, "SKU-RED-MUG", 1, NULL);
    h_resp_t r = h_post(st->gw[0], "/v1/checkouts", st->m.pk, body);
    h_assert_error(&r, 400, ERR_IDEMPOTENCY_KEY_MISSING);
    h_resp_free(&r);
    char longkey[300];
    memset(longkey, 'k', 299);
    longkey[299] = '\0';
    r = h_stack_checkout(st, 0, longkey, body);
    h_assert_error(&r, 400, ERR_IDEMPOTENCY_KEY_INVALID);
    h_resp_free(&r);
    free(body);
    free(tok);
}
END_TEST

START_TEST(replay_returns_identical_body_and_charges_once)
{
    char *tok = h_stack_token(st, "4242424242424242");
    char *body = h_stack_checkout_body(tok, "SKU-RED-MUG", 1, NULL);
    long before = h_stack_charges(st, NULL);
    h_resp_t a = h_stack_checkout(st, 0, "replay-1", body);
    ck_assert_msg(a.status == 200, "%ld %s", a.status, a.body);
    h_resp_t b = h_stack_checkout(st, 1, "replay-1", body);
    ck_assert_int_eq(b.status, 200);
    ck_assert_str_eq(a.body, b.body);
    char *rep = h_resp_header(&b, "Idempotent-Replayed");
    ck_assert_ptr_nonnull(rep);
    ck_assert_str_eq(rep, "true");
    free(rep);
    ck_assert_ptr_null(h_resp_header(&a, "Idempotent-Replayed"));
    /* the same body with keys in another order and other whitespace */
    json_t *j = json_loads(body, 0, NULL);
    char *reordered = json_dumps(j, JSON_SORT_KEYS | JSON_INDENT(3));
    h_resp_t c = h_stack_checkout(st, 0, "replay-1", reordered);
    ck_assert_int_eq(c.status, 200);
    ck_assert_str_eq(c.body, a.body);
    ck_assert_int_eq(h_stack_charges(st, NULL) - before, 1);
    /* a decline replays as a decline, status included */
    char *dtok = h_stack_token(st, "4000000000000002");
    char *dbody = h_stack_checkout_body(dtok, "SKU-RED-MUG", 1, NULL);
    h_resp_t d1 = h_stack_checkout(st, 0, "replay-decline", dbody);
    h_resp_t d2 = h_stack_checkout(st, 1, "replay-decline", dbody);
    ck_assert_int_eq(d1.status, 402);
    ck_assert_int_eq(d2.status, 402);
    ck_assert_str_eq(d1.body, d2.body);
    h_resp_free(&d1);
    h_resp_free(&d2);
    free(dbody);
    free(dtok);
    json_decref(j);
    free(reordered);
    h_resp_free(&a);
    h_resp_free(&b);
    h_resp_free(&c);
    free(body);
    free(tok);
}
END_TEST

START_TEST(same_key_other_body_is_422_and_charges_nothing)
{
    char *tok = h_stack_token(st, "4242424242424242");
    char *body = h_stack_checkout_body(tok, "SKU-RED-MUG", 1, NULL);
    char *other = h_stack_checkout_body(tok, "SKU-RED-MUG", 2, NULL);
    h_resp_t a = h_stack_checkout(st, 0, "reuse-1", body);
    ck_assert_int_eq(a.status, 200);
    long before = h_stack_charges(st, NULL);
    h_resp_t b = h_stack_checkout(st, 1, "reuse-1", other);
    h_assert_error(&b, 422, ERR_KEY_REUSED);
    ck_assert_int_eq(h_stack_charges(st, NULL), before);
    h_resp_free(&a);
    h_resp_free(&b);
    free(body);
    free(other);
    free(tok);
}
END_TEST

typedef struct {
    const char *key, *body;
    int gi;
    h_resp_t r;
} call_t;

static void *do_call(void *arg)
{
    call_t *c = arg;
    c->r = h_stack_checkout(st, c->gi, c->key, c->body);
    return NULL;
}

START_TEST(key_in_flight_is_409)
{
    char *tok = h_stack_token(st, "4242424242424242");
    char *body = h_stack_checkout_body(tok, "SKU-RED-MUG", 1, NULL);
    h_sandbox_faults(st->stripe, "{\"mode\":\"latency\",\"latency_ms\":1500}");
    call_t first = {.key = "inflight-1", .body = body, .gi = 0};
    pthread_t t;
    pthread_create(&t, NULL, do_call, &first);
    usleep(500 * 1000);
    h_resp_t r = h_stack_checkout(st, 1, "inflight-1", body);
    h_assert_error(&r, 409, ERR_REQUEST_IN_PROGRESS);
    h_resp_free(&r);
    pthread_join(t, NULL);
    h_sandbox_faults(st->stripe, "{\"mode\":\"none\"}");
    ck_assert_msg(first.r.status == 200, "%ld %s", first.r.status, first.r.body);
    h_resp_free(&first.r);
    free(body);
    free(tok);
}
END_TEST

#define THREADS 50
#define PER_THREAD 20

typedef struct {
    const char *body;
    int idx;
    int ok, inflight, other;
    char *first_ok;
    bool mismatch;
} storm_t;

static void *storm(void *arg)
{
    storm_t *s = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        h_resp_t r = h_stack_checkout(st, (s->idx + i) % 2, "storm-key", s->body);
        if (r.status == 200) {
            s->ok++;
            if (!s->first_ok)
                s->first_ok = strdup(r.body);
            else if (strcmp(s->first_ok, r.body) != 0)
                s->mismatch = true;
        } else if (r.status == 409 &&
                   !strcmp(h_json_str(r.json, "error.code") ? h_json_str(r.json, "error.code")
                                                            : "",
                           "request_in_progress")) {
            s->inflight++;
        } else {
            s->other++;
        }
        h_resp_free(&r);
    }
    return NULL;
}

START_TEST(thousand_replays_over_two_instances_charge_once)
{
    char *tok = h_stack_token(st, "5555555555554444");
    char *body = h_stack_checkout_body(tok, "SKU-RED-MUG", 1, NULL);
    long before = h_stack_charges(st, NULL);
    long orders = h_sql_long(st->db, "SELECT count(*) FROM gateway.orders");
    static storm_t s[THREADS];
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        s[i] = (storm_t){.body = body, .idx = i};
        pthread_create(&t[i], NULL, storm, &s[i]);
    }
    int ok = 0, inflight = 0, other = 0;
    const char *ref = NULL;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        ok += s[i].ok;
        inflight += s[i].inflight;
        other += s[i].other;
        ck_assert(!s[i].mismatch);
        if (s[i].first_ok) {
            if (!ref)
                ref = s[i].first_ok;
            else
                ck_assert_str_eq(ref, s[i].first_ok);
        }
    }
    ck_assert_int_eq(ok + inflight + other, THREADS * PER_THREAD);
    ck_assert_int_eq(other, 0);
    ck_assert_int_gt(ok, 0);
    ck_assert_int_eq(h_stack_charges(st, NULL) - before, 1);
    ck_assert_int_eq(h_sql_long(st->db, "SELECT count(*) FROM gateway.orders") - orders, 1);
    for (int i = 0; i < THREADS; i++)
        free(s[i].first_ok);
    free(body);
    free(tok);
}
END_TEST

int main(void)
{
    h_init("it_checkout_idempotency");
    Suite *s = suite_create("checkout_idempotency");
    TCase *tc = h_tcase("idempotency", 900);
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_add_test(tc, key_is_required_and_bounded);
    tcase_add_test(tc, replay_returns_identical_body_and_charges_once);
    tcase_add_test(tc, same_key_other_body_is_422_and_charges_nothing);
    tcase_add_test(tc, key_in_flight_is_409);
    tcase_add_test(tc, thousand_replays_over_two_instances_charge_once);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
