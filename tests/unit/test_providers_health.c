/* Unit: the circuit breaker opens on consecutive failures and on an error
 * rate within its window, skips while open, lets a limited number of probes
 * through when half-open, closes after enough probe successes and re-opens
 * on a probe failure; EWMAs and p50 follow the calls; the Prometheus text
 * has the right shape; concurrent records lose nothing. */
#include "providers/providers.h"
#include "tests/harness/harness.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static int64_t fake_now = 1000000;

static int64_t fake_clock(void)
{
    return fake_now;
}

static void policy(void)
{
    prv_health_reset();
    prv_health_set_clock(fake_clock);
    prv_health_policy_t p;
    prv_health_policy_default(&p);
    p.window_ms = 10000;
    p.min_calls = 10;
    p.error_rate = 0.5;
    p.consecutive_failures = 4;
    p.cooldown_ms = 5000;
    p.half_open_probes = 1;
    p.half_open_successes = 2;
    prv_health_set_policy(&p);
}

#define M "mer_h"

START_TEST(opens_on_consecutive_failures_then_half_opens_and_closes)
{
    policy();
    ck_assert_int_eq(prv_health_state(M, "stripe"), PRV_CIRCUIT_CLOSED);
    for (int i = 0; i < 3; i++) {
        ck_assert(prv_health_acquire(M, "stripe"));
        prv_health_record(M, "stripe", false, 2000);
    }
    ck_assert_int_eq(prv_health_state(M, "stripe"), PRV_CIRCUIT_CLOSED);
    prv_health_record(M, "stripe", true, 2000); /* a success resets the run */
    for (int i = 0; i < 3; i++)
        prv_health_record(M, "stripe", false, 2000);
    ck_assert_int_eq(prv_health_state(M, "stripe"), PRV_CIRCUIT_CLOSED);
    prv_health_record(M, "stripe", false, 2000);
    ck_assert_int_eq(prv_health_state(M, "stripe"), PRV_CIRCUIT_OPEN);
    /* open: calls are refused until the cool-down has passed */
    ck_assert(!prv_health_acquire(M, "stripe"));
    fake_now += 4999;
    ck_assert(!prv_health_acquire(M, "stripe"));
    fake_now += 1;
    ck_assert_int_eq(prv_health_state(M, "stripe"), PRV_CIRCUIT_HALF_OPEN);
    /* half-open: one probe at a time */
    ck_assert(prv_health_acquire(M, "stripe"));
    ck_assert(!prv_health_acquire(M, "stripe"));
    prv_health_record(M, "stripe", true, 1000);
    ck_assert_int_eq(prv_health_state(M, "stripe"), PRV_CIRCUIT_HALF_OPEN);
    ck_assert(prv_health_acquire(M, "stripe"));
    prv_health_record(M, "stripe", true, 1000);
    ck_assert_int_eq(prv_health_state(M, "stripe"), PRV_CIRCUIT_CLOSED);
    ck_assert(prv_health_acquire(M, "stripe"));
    ck_assert(prv_health_acquire(M, "stripe"));
    prv_health_t h;
    prv_health_get(M, "stripe", &h);
    ck_assert_int_eq(h.opened, 1);
    /* other providers and merchants were never affected */
    ck_assert_int_eq(prv_health_state(M, "adyen"), PRV_CIRCUIT_CLOSED);
    ck_assert_int_eq(prv_health_state("mer_other", "stripe"), PRV_CIRCUIT_CLOSED);
}
END_TEST

START_TEST(half_open_probe_failure_reopens)
{
    policy();
    for (int i = 0; i < 4; i++)
        prv_health_record(M, "adyen", false, 1000);
    ck_assert_int_eq(prv_health_state(M, "adyen"), PRV_CIRCUIT_OPEN);
    fake_now += 5000;
    ck_assert(prv_health_acquire(M, "adyen"));
    prv_health_record(M, "adyen", false, 1000);
    ck_assert_int_eq(prv_health_state(M, "adyen"), PRV_CIRCUIT_OPEN);
    ck_assert(!prv_health_acquire(M, "adyen"));
    fake_now += 5000;
    ck_assert_int_eq(prv_health_state(M, "adyen"), PRV_CIRCUIT_HALF_OPEN);
    /* a probe whose caller never reported back is given up after a cool-down */
    ck_assert(prv_health_acquire(M, "adyen"));
    ck_assert(!prv_health_acquire(M, "adyen"));
    fake_now += 5000;
    ck_assert(prv_health_acquire(M, "adyen"));
    prv_health_t h;
    prv_health_get(M, "adyen", &h);
    ck_assert_int_eq(h.opened, 2);
}
END_TEST

START_TEST(opens_on_error_rate_within_the_window_only)
{
    policy();
    /* alternate failure/success: never 4 in a row, but half of the calls fail */
    for (int i = 0; i < 8; i++)
        prv_health_record(M, "checkout", i % 2 == 0, 1000);
    ck_assert_int_eq(prv_health_state(M, "checkout"), PRV_CIRCUIT_CLOSED); /* < min_calls */
    prv_health_record(M, "checkout", true, 1000);
    prv_health_record(M, "checkout", false, 1000); /* 10 calls, 5 failures */
    ck_assert_int_eq(prv_health_state(M, "checkout"), PRV_CIRCUIT_OPEN);

    /* the same failures spread beyond the window do not open it */
    policy();
    for (int i = 0; i < 40; i++) {
        prv_health_record(M, "checkout", i % 3 != 0, 1000); /* 1 in 3 fails */
        fake_now += 100;
    }
    ck_assert_int_eq(prv_health_state(M, "checkout"), PRV_CIRCUIT_CLOSED);
    for (int i = 0; i < 6; i++) {
        prv_health_record(M, "checkout", i % 2 == 0, 1000); /* 3 of these 6 fail */
        fake_now += 3000;
    }
    /* window 10 s: only the last few calls count and they are below min_calls */
    ck_assert_int_eq(prv_health_state(M, "checkout"), PRV_CIRCUIT_CLOSED);
}
END_TEST

START_TEST(ewma_and_p50_follow_the_calls)
{
    policy();
    prv_health_t h;
    prv_health_get(M, "never", &h);
    ck_assert_int_eq(h.circuit, PRV_CIRCUIT_CLOSED);
    ck_assert(h.success_rate == 1.0);
    ck_assert_int_eq(h.calls, 0);
    for (int i = 1; i <= 9; i++)
        prv_health_record(M, "lat", true, i * 10000); /* 10..90 ms */
    prv_health_record(M, "lat", false, 500000);
    prv_health_get(M, "lat", &h);
    ck_assert_int_eq(h.calls, 10);
    ck_assert_int_eq(h.failures, 1);
    ck_assert(h.latency_p50_ms == 50.0);
    ck_assert(h.success_rate < 1.0 && h.success_rate > 0.85); /* 0.9 after one failure */
    ck_assert(h.latency_ewma_ms > 50.0 && h.latency_ewma_ms < 500.0);
    json_t *j = prv_health_json(M, "lat");
    ck_assert_str_eq(json_string_value(json_object_get(j, "circuit")), "closed");
    ck_assert(json_real_value(json_object_get(j, "latency_p50_ms")) == 50.0);
    json_decref(j);
}
END_TEST

static void emit(void *cls, const char *text)
{
    char **buf = cls;
    size_t a = *buf ? strlen(*buf) : 0;
    *buf = realloc(*buf, a + strlen(text) + 1);
    memcpy(*buf + a, text, strlen(text) + 1);
}

START_TEST(metrics_text_has_prometheus_shape)
{
    policy();
    prv_health_record(M, "stripe", true, 12000);
    for (int i = 0; i < 4; i++)
        prv_health_record(M, "adyen", false, 1000);
    char *text = NULL;
    prv_metrics_write(emit, &text);
    ck_assert_ptr_nonnull(text);
    ck_assert_ptr_nonnull(strstr(text, "# TYPE portcullis_provider_circuit_state gauge\n"));
    ck_assert_ptr_nonnull(strstr(
        text, "portcullis_provider_circuit_state{merchant=\"mer_h\",provider=\"adyen\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(
        text, "portcullis_provider_circuit_state{merchant=\"mer_h\",provider=\"stripe\"} 0\n"));
    ck_assert_ptr_nonnull(
        strstr(text, "portcullis_provider_calls_total{merchant=\"mer_h\",provider=\"adyen\"} 4\n"));
    ck_assert_ptr_nonnull(strstr(
        text,
        "portcullis_provider_latency_p50_seconds{merchant=\"mer_h\",provider=\"stripe\"} 0.012\n"));
    ck_assert_ptr_nonnull(strstr(
        text,
        "portcullis_provider_circuit_opens_total{merchant=\"mer_h\",provider=\"adyen\"} 1\n"));
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#')
            continue;
        char *sp = strrchr(line, ' ');
        ck_assert_msg(sp && sp[1], "bad metrics line: %s", line);
        char *end;
        strtod(sp + 1, &end);
        ck_assert_msg(*end == '\0', "bad metrics value: %s", line);
    }
    free(text);
}
END_TEST

static void *hammer(void *arg)
{
    const char *name = arg;
    for (int i = 0; i < 20000; i++) {
        if (prv_health_acquire(M, name))
            prv_health_record(M, name, i % 10 != 0, 1000);
        else
            prv_health_record(M, name, true, 1000);
    }
    return NULL;
}

START_TEST(concurrent_records_lose_nothing)
{
    policy();
    prv_health_set_clock(NULL);
    pthread_t t[8];
    const char *names[] = {"p0", "p1", "p0", "p1", "p0", "p1", "p0", "p1"};
    for (int i = 0; i < 8; i++)
        pthread_create(&t[i], NULL, hammer, (void *)names[i]);
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    prv_health_t a, b;
    prv_health_get(M, "p0", &a);
    prv_health_get(M, "p1", &b);
    ck_assert_int_eq(a.calls, 80000);
    ck_assert_int_eq(b.calls, 80000);
}
END_TEST

int main(void)
{
    h_init("test_providers_health");
    Suite *s = suite_create("providers_health");
    TCase *tc = tcase_create("health");
    tcase_add_test(tc, opens_on_consecutive_failures_then_half_opens_and_closes);
    tcase_add_test(tc, half_open_probe_failure_reopens);
    tcase_add_test(tc, opens_on_error_rate_within_the_window_only);
    tcase_add_test(tc, ewma_and_p50_follow_the_calls);
    tcase_add_test(tc, metrics_text_has_prometheus_shape);
    tcase_add_test(tc, concurrent_records_lose_nothing);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
