/* Integration: a configuration change made through one gatewayd reaches the
 * other instance's caches at once (LISTEN/NOTIFY), also after the other's
 * LISTEN connection was killed under it: the provider snapshot has a
 * five-minute age limit, so routing that follows a change within seconds
 * shows the notice arrived. */
#include "tests/harness/stack.h"
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

/* PUT /v1/providers/stripe through gateway 1 */
static void stripe_enabled(bool enabled)
{
    char body[512], url[256];
    snprintf(body, sizeof body,
             "{\"type\":\"stripe\",\"base_url\":\"%s\",\"credentials\":{\"secret_key\":"
             "\"sk_test_portcullis_sandbox\"},\"priority\":1,\"enabled\":%s}",
             st->stripe->url, enabled ? "true" : "false");
    snprintf(url, sizeof url, "%s/v1/providers/stripe", st->gw[1]->url);
    h_resp_t r = h_http("PUT", url, st->m.sk, body, NULL);
    ck_assert_msg(r.status == 200 || r.status == 201, "%ld %s", r.status, r.body);
    h_resp_free(&r);
}

/* a checkout on gateway 0; returns the provider that took it (malloc'd) */
static char *paid_by(void)
{
    h_resp_t r = h_stack_pay(st, 0, "4242424242424242", "SKU-RED-MUG", 1, NULL);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    char *p = strdup(h_json_str(r.json, "payment.provider"));
    h_resp_free(&r);
    return p;
}

static void assert_paid_by(const char *want)
{
    /* the notice travels asynchronously: allow it a moment, not minutes */
    char *got = NULL;
    for (int i = 0; i < 20; i++) {
        free(got);
        got = paid_by();
        if (!strcmp(got, want))
            break;
        usleep(100 * 1000);
    }
    ck_assert_str_eq(got, want);
    free(got);
}

static long listeners(void)
{
    return h_sql_long(st->db, "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                              "'gatewayd-listen' AND datname = current_database() "
                              "AND wait_event = 'ClientRead'");
}

static bool both_listening(void *cls)
{
    (void)cls;
    return listeners() == 2;
}

START_TEST(a_provider_change_on_one_instance_routes_the_other_at_once)
{
    assert_paid_by("stripe"); /* gateway 0 has its snapshot cached */
    stripe_enabled(false);
    assert_paid_by("adyen");
    stripe_enabled(true);
    assert_paid_by("stripe");
}
END_TEST

START_TEST(after_its_listen_connection_is_killed_an_instance_still_hears_changes)
{
    ck_assert(h_wait_until(both_listening, NULL, 10000));
    ck_assert_int_eq(h_sql_long(st->db, "SELECT count(pg_terminate_backend(pid)) FROM "
                                        "pg_stat_activity WHERE application_name = "
                                        "'gatewayd-listen' AND datname = current_database()"),
                     2);
    ck_assert(h_wait_until(both_listening, NULL, 15000)); /* reconnected */
    assert_paid_by("stripe"); /* the snapshot reloaded after the reconnection */
    stripe_enabled(false);
    assert_paid_by("adyen"); /* only a notice could tell it */
    stripe_enabled(true);
    assert_paid_by("stripe");
}
END_TEST

int main(void)
{
    h_init("it_config_notify");
    Suite *s = suite_create("config_notify");
    TCase *tc = h_tcase("notify", 300);
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_add_test(tc, a_provider_change_on_one_instance_routes_the_other_at_once);
    tcase_add_test(tc, after_its_listen_connection_is_killed_an_instance_still_hears_changes);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
