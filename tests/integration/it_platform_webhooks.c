/* Integration: sandbox-webhooks as the platform's receiver of Portcullis
 * events: signatures verified (and forged, tampered or stale ones refused
 * and counted), secret rotation, fail_next, and one unique event per id
 * however often it is delivered. */
#include "tests/harness/harness.h"
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SECRET_ONE "whsec_one_5f2b9c"
#define SECRET_TWO "whsec_two_a81d44"

static h_sandbox_t *wh;

static char *secret_file(const char *name, const char *text, int mode)
{
    char *path = str_printf("%s/%s", h_workdir(), name);
    ck_assert_int_eq(file_write_atomic(path, text, strlen(text), mode), 0);
    chmod(path, (mode_t)mode);
    return path;
}

static void setup(void)
{
    char *path =
        secret_file("webhook.secret", "# the demo endpoint's secret\n" SECRET_ONE "\n", 0600);
    const char *args[] = {"--secret-file", path, NULL};
    wh = h_sandbox_start("webhooks", "webhooks", args);
    free(path);
}

static void teardown(void)
{
    h_sandbox_stop(wh);
}

/* hex HMAC-SHA256 of "<t>.<body>" under key */
static void sign(const void *key, size_t keylen, long long t, const char *body, char hex[65])
{
    char ts[32];
    snprintf(ts, sizeof ts, "%lld", t);
    crypto_auth_hmacsha256_state st;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_init(&st, key, keylen);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)ts, strlen(ts));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, strlen(body));
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2hex(hex, 65, mac, sizeof mac);
}

static h_resp_t post_raw(const char *body, const char *sig_header)
{
    char url[256], hdr[1024];
    snprintf(url, sizeof url, "%s/portcullis/events", wh->url);
    snprintf(hdr, sizeof hdr, "Portcullis-Signature: %s", sig_header);
    const char *headers[] = {hdr, NULL};
    return h_http("POST", url, NULL, body, sig_header ? headers : NULL);
}

/* Delivers body signed with secret at time t. */
static h_resp_t deliver_at(const char *secret, long long t, const char *body)
{
    char hex[65], hdr[256];
    sign(secret, strlen(secret), t, body, hex);
    snprintf(hdr, sizeof hdr, "t=%lld,v1=%s", t, hex);
    return post_raw(body, hdr);
}

static h_resp_t deliver(const char *secret, const char *body)
{
    return deliver_at(secret, (long long)time(NULL), body);
}

static json_t *deliveries(void)
{
    char url[256];
    snprintf(url, sizeof url, "%s/_sandbox/deliveries", wh->control_url);
    h_resp_t r = h_http("GET", url, NULL, NULL, NULL);
    ck_assert_int_eq(r.status, 200);
    json_t *j = json_incref(r.json);
    h_resp_free(&r);
    return j;
}

static void assert_counts(json_int_t count, json_int_t unique, json_int_t bad)
{
    json_t *d = deliveries();
    if (h_json_int(d, "count") != count || h_json_int(d, "unique_events") != unique ||
        h_json_int(d, "bad_signatures") != bad) {
        char *dump = json_dumps(d, JSON_COMPACT);
        ck_abort_msg("expected count %lld unique %lld bad %lld: %s", (long long)count,
                     (long long)unique, (long long)bad, dump);
    }
    json_decref(d);
}

static const char event_a[] = "{\"id\":\"evt_A1\",\"type\":\"order.confirmed\",\"created\":"
                              "1767225600,\"data\":{\"id\":\"chk_1\",\"status\":\"succeeded\","
                              "\"order\":{\"total\":2598}}}";
static const char event_b[] = "{\"id\":\"evt_B2\",\"type\":\"payment.captured\",\"created\":"
                              "\"2026-01-01T00:00:00Z\",\"data\":{\"id\":\"chk_2\"}}";

START_TEST(valid_signature_is_accepted_and_recorded_as_sent)
{
    h_resp_t r = deliver(SECRET_ONE, event_a);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert(json_is_false(json_object_get(r.json, "duplicate")));
    h_resp_free(&r);
    json_t *d = deliveries();
    ck_assert_int_eq(h_json_int(d, "count"), 1);
    ck_assert_int_eq(h_json_int(d, "unique_events"), 1);
    ck_assert_int_eq(h_json_int(d, "bad_signatures"), 0);
    ck_assert_str_eq(h_json_str(d, "events.0.id"), "evt_A1");
    ck_assert_str_eq(h_json_str(d, "events.0.type"), "order.confirmed");
    ck_assert_int_eq(h_json_int(d, "events.0.deliveries"), 1);
    json_t *sent = json_loads(event_a, 0, NULL);
    ck_assert(json_equal(json_object_get(sent, "data"),
                         json_object_get(json_array_get(json_object_get(d, "events"), 0), "data")));
    json_decref(sent);
    json_decref(d);
}
END_TEST

START_TEST(tampered_body_fails_and_is_counted)
{
    char hex[65], hdr[256];
    long long t = (long long)time(NULL);
    sign(SECRET_ONE, strlen(SECRET_ONE), t, event_a, hex);
    snprintf(hdr, sizeof hdr, "t=%lld,v1=%s", t, hex);
    char tampered[sizeof event_a];
    snprintf(tampered, sizeof tampered, "%s", event_a);
    char *total = strstr(tampered, "2598");
    total[0] = '9'; /* the same length, another amount */
    h_resp_t r = post_raw(tampered, hdr);
    ck_assert_msg(r.status == 400, "%ld %s", r.status, r.body);
    ck_assert_str_eq(h_json_str(r.json, "error.code"), "signature_mismatch");
    h_resp_free(&r);
    /* the signature is bound to t too */
    snprintf(hdr, sizeof hdr, "t=%lld,v1=%s", t + 1, hex);
    r = post_raw(event_a, hdr);
    ck_assert_int_eq(r.status, 400);
    h_resp_free(&r);
    assert_counts(0, 0, 2);
    /* the untouched delivery still verifies */
    snprintf(hdr, sizeof hdr, "t=%lld,v1=%s", t, hex);
    r = post_raw(event_a, hdr);
    ck_assert_int_eq(r.status, 200);
    h_resp_free(&r);
    assert_counts(1, 1, 2);
}
END_TEST

START_TEST(wrong_secret_fails_and_is_counted)
{
    h_resp_t r = deliver(SECRET_TWO, event_a);
    ck_assert_msg(r.status == 400, "%ld %s", r.status, r.body);
    ck_assert_str_eq(h_json_str(r.json, "error.code"), "signature_mismatch");
    h_resp_free(&r);
    /* missing and malformed headers count as bad signatures too */
    r = post_raw(event_a, NULL);
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(h_json_str(r.json, "error.code"), "signature_missing");
    h_resp_free(&r);
    const char *malformed[] = {"v1=00", "t=abc,v1=00", "t=1700000000", "t=1,t=2,v1=zz", ""};
    for (size_t i = 0; i < PC_ARRAY_LEN(malformed); i++) {
        r = post_raw(event_a, malformed[i]);
        ck_assert_msg(r.status == 400, "'%s': %ld", malformed[i], r.status);
        h_resp_free(&r);
    }
    assert_counts(0, 0, 2 + (json_int_t)PC_ARRAY_LEN(malformed));
}
END_TEST

START_TEST(old_timestamp_fails_and_is_counted)
{
    long long now = (long long)time(NULL);
    h_resp_t r = deliver_at(SECRET_ONE, now - 301, event_a);
    ck_assert_msg(r.status == 400, "%ld %s", r.status, r.body);
    ck_assert_str_eq(h_json_str(r.json, "error.code"), "timestamp_outside_tolerance");
    h_resp_free(&r);
    r = deliver_at(SECRET_ONE, now + 400, event_a); /* from the future */
    ck_assert_int_eq(r.status, 400);
    h_resp_free(&r);
    json_t *d = deliveries();
    ck_assert_int_eq(h_json_int(d, "bad_signatures"), 2);
    ck_assert_int_eq(h_json_int(d, "stale_timestamps"), 2);
    ck_assert_int_eq(h_json_int(d, "count"), 0);
    json_decref(d);
    /* inside the default 300 s tolerance it is fine */
    r = deliver_at(SECRET_ONE, now - 200, event_a);
    ck_assert_int_eq(r.status, 200);
    h_resp_free(&r);
    assert_counts(1, 1, 2);
}
END_TEST

START_TEST(tolerance_flag_narrows_the_window)
{
    char *path = secret_file("narrow.secret", SECRET_ONE "\n", 0600);
    const char *args[] = {"--secret-file", path, "--tolerance-seconds", "5", NULL};
    h_sandbox_t *narrow = h_sandbox_start("webhooks", "webhooks-narrow", args);
    h_sandbox_t *saved = wh;
    wh = narrow;
    h_resp_t r = deliver_at(SECRET_ONE, (long long)time(NULL) - 60, event_a);
    ck_assert_int_eq(r.status, 400);
    h_resp_free(&r);
    r = deliver(SECRET_ONE, event_a);
    ck_assert_int_eq(r.status, 200);
    h_resp_free(&r);
    assert_counts(1, 1, 1);
    wh = saved;
    h_sandbox_stop(narrow);
    free(path);
}
END_TEST

START_TEST(rotation_header_with_two_signatures_is_accepted)
{
    long long t = (long long)time(NULL);
    char old_sig[65], new_sig[65], hdr[512];
    sign(SECRET_TWO, strlen(SECRET_TWO), t, event_a, old_sig);
    sign(SECRET_ONE, strlen(SECRET_ONE), t, event_a, new_sig);
    /* the receiver knows only SECRET_ONE; either position verifies */
    snprintf(hdr, sizeof hdr, "t=%lld,v1=%s,v1=%s", t, old_sig, new_sig);
    h_resp_t r = post_raw(event_a, hdr);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    h_resp_free(&r);
    snprintf(hdr, sizeof hdr, "v1=%s, t=%lld, v1=%s", new_sig, t, old_sig);
    r = post_raw(event_a, hdr);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    h_resp_free(&r);
    /* two signatures, neither under a known secret */
    char other[65];
    sign("whsec_other", 11, t, event_a, other);
    snprintf(hdr, sizeof hdr, "t=%lld,v1=%s,v1=%s", t, old_sig, other);
    r = post_raw(event_a, hdr);
    ck_assert_int_eq(r.status, 400);
    h_resp_free(&r);
    assert_counts(2, 1, 1);
}
END_TEST

START_TEST(receiver_with_two_secrets_accepts_either)
{
    char *path = secret_file("two.secret", SECRET_ONE "\r\n\n" SECRET_TWO "\n", 0600);
    const char *args[] = {"--secret-file", path, NULL};
    h_sandbox_t *two = h_sandbox_start("webhooks", "webhooks-two", args);
    h_sandbox_t *saved = wh;
    wh = two;
    h_resp_t r = deliver(SECRET_ONE, event_a);
    ck_assert_int_eq(r.status, 200);
    h_resp_free(&r);
    r = deliver(SECRET_TWO, event_b);
    ck_assert_int_eq(r.status, 200);
    h_resp_free(&r);
    r = deliver("whsec_three", event_b);
    ck_assert_int_eq(r.status, 400);
    h_resp_free(&r);
    assert_counts(2, 2, 1);
    wh = saved;
    h_sandbox_stop(two);
    free(path);
}
END_TEST

static h_resp_t set_secrets(const char *json)
{
    char url[256];
    snprintf(url, sizeof url, "%s/_sandbox/secrets", wh->control_url);
    return h_http("POST", url, NULL, json, NULL);
}

START_TEST(secrets_replaced_at_runtime)
{
    h_resp_t r = set_secrets("{\"secrets\": [\"" SECRET_TWO "\"]}");
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_int_eq(h_json_int(r.json, "secrets"), 1);
    ck_assert_ptr_null(strstr(r.body, SECRET_TWO)); /* never echoed */
    h_resp_free(&r);
    r = deliver(SECRET_ONE, event_a);
    ck_assert_int_eq(r.status, 400);
    h_resp_free(&r);
    r = deliver(SECRET_TWO, event_a);
    ck_assert_int_eq(r.status, 200);
    h_resp_free(&r);
    /* "hex:" entries are decoded: the key is the bytes 0a 0b 0c ff */
    r = set_secrets("{\"secrets\": [\"hex:0a0b0cff\"]}");
    ck_assert_int_eq(r.status, 200);
    h_resp_free(&r);
    static const unsigned char raw[] = {0x0a, 0x0b, 0x0c, 0xff};
    char hex[65], hdr[256];
    long long t = (long long)time(NULL);
    sign(raw, sizeof raw, t, event_b, hex);
    snprintf(hdr, sizeof hdr, "t=%lld,v1=%s", t, hex);
    r = post_raw(event_b, hdr);
    ck_assert_int_eq(r.status, 200);
    h_resp_free(&r);
    r = deliver("hex:0a0b0cff", event_b); /* the text itself is not the key */
    ck_assert_int_eq(r.status, 400);
    h_resp_free(&r);
    /* refused replacements keep the current set */
    const char *bad[] = {"{\"secrets\": []}", "{\"secrets\": [\"hex:zz\"]}",
                         "{\"secrets\": [\"\"]}", "{\"secrets\": [1]}", "{}"};
    for (size_t i = 0; i < PC_ARRAY_LEN(bad); i++) {
        r = set_secrets(bad[i]);
        ck_assert_msg(r.status == 400, "%s: %ld %s", bad[i], r.status, r.body);
        h_resp_free(&r);
    }
    r = post_raw(event_b, hdr);
    ck_assert_int_eq(r.status, 200);
    h_resp_free(&r);
    assert_counts(3, 2, 2);
}
END_TEST

START_TEST(fail_next_answers_500_then_deliveries_succeed)
{
    h_sandbox_faults(wh, "{\"fail_next\": 2}");
    for (int i = 0; i < 2; i++) {
        h_resp_t r = deliver(SECRET_ONE, event_a);
        ck_assert_msg(r.status == 500, "delivery %d: %ld %s", i, r.status, r.body);
        h_resp_free(&r);
    }
    for (int i = 0; i < 2; i++) {
        h_resp_t r = deliver(SECRET_ONE, event_a);
        ck_assert_msg(r.status == 200, "delivery %d after: %ld %s", i, r.status, r.body);
        h_resp_free(&r);
    }
    json_t *d = deliveries();
    ck_assert_int_eq(h_json_int(d, "injected_failures"), 2);
    ck_assert_int_eq(h_json_int(d, "count"), 2); /* failed deliveries were not accepted */
    ck_assert_int_eq(h_json_int(d, "events.0.deliveries"), 2);
    json_decref(d);
}
END_TEST

START_TEST(fault_after_processing_records_the_event_and_the_redelivery_dedups)
{
    h_sandbox_faults(wh, "{\"mode\": \"error_500\", \"after_processing\": true}");
    h_resp_t r = deliver(SECRET_ONE, event_a);
    ck_assert_int_eq(r.status, 500);
    h_resp_free(&r);
    h_sandbox_faults(wh, "{\"mode\": \"none\"}");
    r = deliver(SECRET_ONE, event_a); /* the sender's retry */
    ck_assert_int_eq(r.status, 200);
    ck_assert(json_is_true(json_object_get(r.json, "duplicate")));
    h_resp_free(&r);
    assert_counts(2, 1, 0);
}
END_TEST

START_TEST(redeliveries_of_one_event_count_as_one_unique_event)
{
    long long t = (long long)time(NULL);
    for (int i = 0; i < 3; i++) {
        h_resp_t r = deliver_at(SECRET_ONE, t - 10 + i, event_a);
        ck_assert_int_eq(r.status, 200);
        ck_assert(json_is_true(json_object_get(r.json, "duplicate")) == (i > 0));
        h_resp_free(&r);
    }
    h_resp_t r = deliver(SECRET_ONE, event_b);
    ck_assert_int_eq(r.status, 200);
    h_resp_free(&r);
    json_t *d = deliveries();
    ck_assert_int_eq(h_json_int(d, "count"), 4);
    ck_assert_int_eq(h_json_int(d, "unique_events"), 2);
    ck_assert_str_eq(h_json_str(d, "events.0.id"), "evt_A1");
    ck_assert_int_eq(h_json_int(d, "events.0.deliveries"), 3);
    ck_assert(json_is_false(
        json_object_get(json_array_get(json_object_get(d, "events"), 0), "data_mismatch")));
    ck_assert_str_eq(h_json_str(d, "events.1.id"), "evt_B2");
    ck_assert_int_eq(h_json_int(d, "events.1.deliveries"), 1);
    json_decref(d);
    /* clearing starts a new count */
    char url[256];
    snprintf(url, sizeof url, "%s/_sandbox/deliveries", wh->control_url);
    r = h_http("DELETE", url, NULL, NULL, NULL);
    ck_assert_int_eq(r.status, 200);
    h_resp_free(&r);
    assert_counts(0, 0, 0);
}
END_TEST

START_TEST(malformed_event_body_is_refused_but_not_as_a_bad_signature)
{
    const char *bodies[] = {
        "not json at all",
        "{\"type\":\"order.confirmed\",\"created\":1,\"data\":{}}",
        "{\"id\":\"chk_1\",\"type\":\"order.confirmed\",\"created\":1,\"data\":{}}",
        "{\"id\":\"evt_1\",\"type\":\"order.confirmed\",\"created\":1,\"data\":[]}",
        "{\"id\":\"evt_1\",\"type\":\"order.confirmed\",\"data\":{}}",
    };
    const char *params[] = {"body", "id", "id", "data", "created"};
    for (size_t i = 0; i < PC_ARRAY_LEN(bodies); i++) {
        h_resp_t r = deliver(SECRET_ONE, bodies[i]);
        ck_assert_msg(r.status == 400, "%s: %ld %s", bodies[i], r.status, r.body);
        ck_assert_msg(h_json_str(r.json, "error.param") &&
                          !strcmp(h_json_str(r.json, "error.param"), params[i]),
                      "%s: expected param %s: %s", bodies[i], params[i], r.body);
        h_resp_free(&r);
    }
    json_t *d = deliveries();
    ck_assert_int_eq(h_json_int(d, "malformed"), (json_int_t)PC_ARRAY_LEN(bodies));
    ck_assert_int_eq(h_json_int(d, "bad_signatures"), 0);
    ck_assert_int_eq(h_json_int(d, "count"), 0);
    json_decref(d);
    char url[256];
    snprintf(url, sizeof url, "%s/anything", wh->url);
    h_resp_t r = h_http("GET", url, NULL, NULL, NULL);
    ck_assert_int_eq(r.status, 405);
    h_resp_free(&r);
}
END_TEST

START_TEST(secret_file_readable_by_others_stops_start_up)
{
    char *path = secret_file("open.secret", SECRET_ONE "\n", 0644);
    char bin[1024];
    snprintf(bin, sizeof bin, "%s/sandbox-webhooks", SANDBOX_BIN_DIR);
    char *argv[] = {bin, "--port", "0", "--secret-file", path, NULL};
    h_proc_t *p = h_proc_start("webhooks-open", argv, NULL);
    ck_assert_int_eq(h_proc_stop(p, 0, 5000), 2);
    free(p);
    free(path);
}
END_TEST

int main(void)
{
    h_init("it_platform_webhooks");
    Suite *s = suite_create("platform_webhooks");
    TCase *tc = h_tcase("webhooks", 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, valid_signature_is_accepted_and_recorded_as_sent);
    tcase_add_test(tc, tampered_body_fails_and_is_counted);
    tcase_add_test(tc, wrong_secret_fails_and_is_counted);
    tcase_add_test(tc, old_timestamp_fails_and_is_counted);
    tcase_add_test(tc, tolerance_flag_narrows_the_window);
    tcase_add_test(tc, rotation_header_with_two_signatures_is_accepted);
    tcase_add_test(tc, receiver_with_two_secrets_accepts_either);
    tcase_add_test(tc, secrets_replaced_at_runtime);
    tcase_add_test(tc, fail_next_answers_500_then_deliveries_succeed);
    tcase_add_test(tc, fault_after_processing_records_the_event_and_the_redelivery_dedups);
    tcase_add_test(tc, redeliveries_of_one_event_count_as_one_unique_event);
    tcase_add_test(tc, malformed_event_body_is_refused_but_not_as_a_bad_signature);
    tcase_add_test(tc, secret_file_readable_by_others_stops_start_up);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
