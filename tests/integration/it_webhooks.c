/* Integration: events out. Deliveries are signed per API.md and verified by
 * the receiver; a receiver failing the next 5 deliveries gets the event later
 * with the same id; a tampered body or an old timestamp fails verification;
 * redelivery keeps the id; a rotated secret signs with both secrets. */
#include "tests/harness/stack.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sodium.h>
#include <sys/socket.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static h_stack_t *st;

static void setup(void)
{
    st = h_stack_start(NULL);
}

static void teardown(void)
{
    h_stack_stop(st);
}

static char *paid_checkout(void)
{
    h_resp_t r = h_stack_pay(st, 0, "4242424242424242", "SKU-RED-MUG", 1, NULL);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    char *id = strdup(h_json_str(r.json, "id"));
    h_resp_free(&r);
    return id;
}

/* The receiver's entry for the order.confirmed of this checkout. */
static json_t *confirmed_event(const char *chk)
{
    json_t *d = h_stack_deliveries(st);
    json_t *found = NULL;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(d, "events"), i, e)
    {
        const char *type = json_string_value(json_object_get(e, "type"));
        const char *id = h_json_str(e, "data.id");
        if (type && !strcmp(type, "order.confirmed") && id && !strcmp(id, chk))
            found = json_incref(e);
    }
    json_decref(d);
    return found;
}

static json_t *wait_event(const char *chk, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 50) {
        json_t *e = confirmed_event(chk);
        if (e)
            return e;
        usleep(50 * 1000);
    }
    return NULL;
}

/* API.md: times are RFC 3339 UTC ("2026-11-23T19:21:29Z"), events included */
static void assert_rfc3339(const json_t *v)
{
    ck_assert_msg(json_is_string(v), "created is not a string");
    const char *s = json_string_value(v);
    int y, mo, d, h, mi, sec, n = 0;
    ck_assert_msg(sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2dZ%n", &y, &mo, &d, &h, &mi, &sec, &n) == 6 &&
                      n == 20 && s[n] == '\0' && y >= 2024 && mo >= 1 && mo <= 12,
                  "created is not RFC 3339 UTC: %s", s);
}

START_TEST(failing_receiver_gets_the_event_later_with_the_same_id)
{
    h_sandbox_faults(st->webhooks, "{\"fail_next\":5}");
    char *chk = paid_checkout();
    json_t *ev = wait_event(chk, 20000);
    ck_assert_msg(ev != NULL, "order.confirmed never arrived");
    const char *evt = json_string_value(json_object_get(ev, "id"));
    ck_assert(!strncmp(evt, "evt_", 4));
    assert_rfc3339(json_object_get(ev, "created")); /* as delivered */
    ck_assert_int_eq(json_integer_value(json_object_get(ev, "deliveries")), 1);
    json_t *d = h_stack_deliveries(st);
    ck_assert_int_ge(json_integer_value(json_object_get(d, "injected_failures")), 5);
    ck_assert_int_eq(json_integer_value(json_object_get(d, "bad_signatures")), 0);
    json_decref(d);
    /* the gateway's own record: the same event id, delivered after retries */
    long attempts = h_sql_long(st->db, "SELECT max(attempts) FROM gateway.outbox WHERE event_id = '%s'",
                               evt);
    ck_assert_int_ge(attempts, 6);
    ck_assert_int_eq(h_sql_long(st->db, "SELECT count(*) FROM gateway.events WHERE object_id = "
                                        "'%s' AND type = 'order.confirmed'",
                                chk),
                     1);
    /* the event log lists it */
    h_resp_t r = h_get(st->gw[0], "/v1/events?type=order.confirmed&limit=100", st->m.sk);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, evt));
    size_t k;
    json_t *e;
    int listed = 0;
    json_array_foreach(json_object_get(r.json, "data"), k, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "id")), evt) != 0)
            continue;
        listed++;
        ck_assert_str_eq(json_string_value(json_object_get(e, "created")),
                         json_string_value(json_object_get(ev, "created")));
    }
    ck_assert_int_eq(listed, 1);
    h_resp_free(&r);
    /* the list goes on after a cursor; an unknown one is refused, not read as
     * "from the start" */
    char q[160];
    snprintf(q, sizeof q, "/v1/events?type=order.confirmed&limit=100&after=%s", evt);
    r = h_get(st->gw[0], q, st->m.sk);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_null(strstr(r.body, evt));
    h_resp_free(&r);
    r = h_get(st->gw[0], "/v1/events?after=evt_doesnotexist", st->m.sk);
    h_assert_error(&r, 400, ERR_PARAMETER_INVALID);
    ck_assert_str_eq(h_json_str(r.json, "error.param"), "after");
    h_resp_free(&r);

    /* redelivery keeps the id: one unique event, two deliveries */
    char path[128];
    snprintf(path, sizeof path, "/v1/events/%s/redeliver", evt);
    r = h_post(st->gw[0], path, st->m.sk, NULL);
    ck_assert_int_eq(r.status, 202);
    ck_assert_int_eq(h_json_int(r.json, "queued"), 1);
    h_resp_free(&r);
    json_t *again = NULL;
    for (int i = 0; i < 200; i++) {
        json_decref(again);
        again = confirmed_event(chk);
        if (json_integer_value(json_object_get(again, "deliveries")) == 2)
            break;
        usleep(50 * 1000);
    }
    ck_assert_int_eq(json_integer_value(json_object_get(again, "deliveries")), 2);
    ck_assert_str_eq(json_string_value(json_object_get(again, "id")), evt);
    json_decref(again);
    json_decref(ev);
    free(chk);
}
END_TEST

static void sign(const char *secret, long t, const char *body, char out[65])
{
    char ts[24];
    snprintf(ts, sizeof ts, "%ld", t);
    unsigned char mac[32];
    crypto_auth_hmacsha256_state s;
    crypto_auth_hmacsha256_init(&s, (const unsigned char *)secret, strlen(secret));
    crypto_auth_hmacsha256_update(&s, (const unsigned char *)ts, strlen(ts));
    crypto_auth_hmacsha256_update(&s, (const unsigned char *)".", 1);
    crypto_auth_hmacsha256_update(&s, (const unsigned char *)body, strlen(body));
    crypto_auth_hmacsha256_final(&s, mac);
    sodium_bin2hex(out, 65, mac, 32);
}

static long post_signed(const char *secret, long t, const char *signed_body, const char *sent_body)
{
    char mac[65], hdr[200], url[256];
    sign(secret, t, signed_body, mac);
    snprintf(hdr, sizeof hdr, "Portcullis-Signature: t=%ld,v1=%s", t, mac);
    snprintf(url, sizeof url, "%s/hooks/portcullis", st->webhooks->url);
    const char *headers[] = {hdr, NULL};
    h_resp_t r = h_http("POST", url, NULL, sent_body, headers);
    long status = r.status;
    h_resp_free(&r);
    return status;
}

START_TEST(rotated_secret_signs_with_both_and_tampering_fails)
{
    /* rotate: the new secret is returned once, the old one stays valid */
    char url[256];
    snprintf(url, sizeof url, "%s/v1/webhooks/platform", st->gw[0]->url);
    h_resp_t r = h_http("PUT", url, st->m.sk, "{\"rotate_secret\":true}", NULL);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    char *secret = strdup(h_json_str(r.json, "secret"));
    h_resp_free(&r);
    r = h_http("PUT", url, st->m.sk, "{\"enabled\":true}", NULL);
    ck_assert_ptr_null(h_json_str(r.json, "secret")); /* shown once */
    h_resp_free(&r);

    /* the receiver still only knows the old secret: both signatures are sent */
    char *chk = paid_checkout();
    json_t *ev = wait_event(chk, 20000);
    ck_assert_ptr_nonnull(ev);
    json_decref(ev);

    /* now it knows only the new one */
    char surl[256];
    snprintf(surl, sizeof surl, "%s/_sandbox/secrets", st->webhooks->control_url);
    char *body = str_printf("{\"secrets\":[\"%s\"]}", secret);
    r = h_http("POST", surl, NULL, body, NULL);
    ck_assert_int_eq(r.status, 200);
    h_resp_free(&r);
    free(body);
    char *chk2 = paid_checkout();
    ev = wait_event(chk2, 20000);
    ck_assert_ptr_nonnull(ev);
    json_decref(ev);
    json_t *d = h_stack_deliveries(st);
    long bad = (long)json_integer_value(json_object_get(d, "bad_signatures"));
    json_decref(d);
    ck_assert_int_eq(bad, 0);

    /* what the receiver refuses: a tampered body, an old timestamp */
    const char *good = "{\"id\":\"evt_probe1\",\"type\":\"order.confirmed\",\"created\":1,"
                       "\"data\":{\"id\":\"chk_probe\"}}";
    const char *tampered = "{\"id\":\"evt_probe1\",\"type\":\"order.confirmed\",\"created\":1,"
                           "\"data\":{\"id\":\"chk_other\"}}";
    long now = (long)time(NULL);
    ck_assert_int_eq(post_signed(secret, now, good, good), 200);
    ck_assert_int_eq(post_signed(secret, now, good, tampered), 400);
    ck_assert_int_eq(post_signed(secret, now - 3600, good, good), 400);
    ck_assert_int_eq(post_signed("whsec_wrong", now, good, good), 400);
    d = h_stack_deliveries(st);
    ck_assert_int_eq(json_integer_value(json_object_get(d, "bad_signatures")) - bad, 3);
    json_decref(d);
    free(chk);
    free(chk2);
    free(secret);
}
END_TEST

START_TEST(webhook_documents_are_validated)
{
    char url[256];
    snprintf(url, sizeof url, "%s/v1/webhooks/new-one", st->gw[0]->url);
    h_resp_t r = h_http("PUT", url, st->m.sk, "{\"url\":\"http://example.com/x\",\"events\":[\"*\"]}", NULL);
    h_assert_error(&r, 400, ERR_PARAMETER_INVALID);
    ck_assert_str_eq(h_json_str(r.json, "error.param"), "url");
    h_resp_free(&r);
    /* no host, a space in the host, a header smuggled into the URL, user info */
    static const char *const bad_urls[] = {"https://", "https://exa mple.com/",
                                           "https://example.com/\\r\\nX-Injected: 1",
                                           "https://user:pw@example.com/hook"};
    for (size_t i = 0; i < PC_ARRAY_LEN(bad_urls); i++) {
        char *doc = str_printf("{\"url\":\"%s\",\"events\":[\"*\"]}", bad_urls[i]);
        r = h_http("PUT", url, st->m.sk, doc, NULL);
        h_assert_error(&r, 400, ERR_PARAMETER_INVALID);
        ck_assert_msg(!strcmp(h_json_str(r.json, "error.param"), "url"), "%s: %s", doc, r.body);
        h_resp_free(&r);
        free(doc);
    }
    r = h_http("PUT", url, st->m.sk, "{\"url\":\"https://example.com/x\",\"events\":[\"order.eaten\"]}", NULL);
    h_assert_error(&r, 400, ERR_PARAMETER_INVALID);
    ck_assert_str_eq(h_json_str(r.json, "error.param"), "events");
    h_resp_free(&r);
    /* every event type the gateway emits can be subscribed to by name */
    r = h_http("PUT", url, st->m.sk,
               "{\"url\":\"https://example.com/x\",\"enabled\":false,\"events\":["
               "\"order.confirmed\",\"order.out_of_stock\",\"checkout.requires_review\","
               "\"checkout.declined\",\"checkout.failed\",\"payment.captured\","
               "\"payment.voided\",\"payment.refunded\"]}",
               NULL);
    ck_assert_msg(r.status == 201, "%ld %s", r.status, r.body);
    h_resp_free(&r);
    snprintf(url, sizeof url, "%s/v1/webhooks/newer-one", st->gw[0]->url);
    r = h_http("PUT", url, st->m.sk, "{\"events\":[\"*\"]}", NULL);
    h_assert_error(&r, 400, ERR_PARAMETER_MISSING);
    ck_assert_str_eq(h_json_str(r.json, "error.param"), "url");
    h_resp_free(&r);
    /* secrets are stored sealed only */
    ck_assert_int_eq(h_sql_long(st->db, "SELECT count(*) FROM gateway.webhook_endpoints "
                                        "WHERE secret_sealed LIKE 'whsec_%%'"),
                     0);
}
END_TEST

static long idle_in_transaction(void)
{
    /* this test's database only: the other tests share the cluster */
    return h_sql_long(st->db, "SELECT count(*) FROM pg_stat_activity WHERE usename = "
                              "'portcullis_gateway' AND datname = current_database() "
                              "AND state LIKE 'idle in transaction%%'");
}

/* A receiver that takes the connection and never answers holds no database
 * transaction open while its delivery waits (a batch can outlast the
 * session's idle-in-transaction limit, and the rows would then be claimed
 * again for ever, uncounted), and its failed attempt is counted. */
START_TEST(a_receiver_that_never_answers_holds_no_transaction)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(fd, 64), 0); /* the kernel completes connects; nobody reads */
    socklen_t al = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &al);
    char url[256], doc[256];
    snprintf(url, sizeof url, "%s/v1/webhooks/hangs", st->gw[0]->url);
    snprintf(doc, sizeof doc, "{\"url\":\"http://127.0.0.1:%d/hook\",\"events\":[\"*\"]}",
             ntohs(a.sin_port));
    h_resp_t r = h_http("PUT", url, st->m.sk, doc, NULL);
    ck_assert_msg(r.status == 201, "%ld %s", r.status, r.body);
    h_resp_free(&r);
    usleep(300 * 1000);
    char *chk = paid_checkout();
    json_t *e = wait_event(chk, 10000); /* the other endpoint is not held back */
    ck_assert_ptr_nonnull(e);
    json_decref(e);
    for (int i = 0; i < 20; i++) { /* while the hanging delivery waits */
        ck_assert_int_eq(idle_in_transaction(), 0);
        usleep(100 * 1000);
    }
    long counted = 0;
    for (int i = 0; i < 300 && counted == 0; i++) {
        counted = h_sql_long(st->db, "SELECT count(*) FROM gateway.outbox WHERE endpoint_id = "
                                     "'hangs' AND attempts >= 1");
        usleep(100 * 1000);
    }
    ck_assert_int_ge(counted, 1);
    /* disabling it gives up what still waits to go there */
    r = h_http("PUT", url, st->m.sk, "{\"enabled\":false}", NULL);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    h_resp_free(&r);
    ck_assert_int_eq(h_sql_long(st->db, "SELECT count(*) FROM gateway.outbox WHERE endpoint_id = "
                                        "'hangs' AND state = 'pending'"),
                     0);
    /* and the delivery still in flight then, once it times out, does not
     * put its row back in the queue */
    for (int i = 0; i < 120; i++) {
        ck_assert_int_eq(h_sql_long(st->db, "SELECT count(*) FROM gateway.outbox WHERE "
                                            "endpoint_id = 'hangs' AND state = 'pending'"),
                         0);
        usleep(100 * 1000);
    }
    close(fd);
    free(chk);
}
END_TEST

static PGresult *run(PGconn *pg, const char *q)
{
    PGresult *r = PQexec(pg, q);
    ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK,
                  "%s: %s", q, PQresultErrorMessage(r));
    return r;
}

static bool listed(const char *id)
{
    h_resp_t r = h_get(st->gw[0], "/v1/events?limit=100&type=test.visibility", st->m.sk);
    ck_assert_int_eq(r.status, 200);
    bool found = strstr(r.body, id) != NULL;
    h_resp_free(&r);
    return found;
}

/* An event is listed only once every transaction that could still write an
 * earlier one has ended: seq is taken at insert, not at commit, so listing
 * seq 101 before seq 100 commits would let a consumer's cursor skip 100. */
START_TEST(events_are_listed_only_once_no_earlier_one_can_appear)
{
    PGconn *a = h_db_connect(st->db, "admin"), *b = h_db_connect(st->db, "admin");
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    char q[512];
    PQclear(run(a, "BEGIN"));
    snprintf(q, sizeof q,
             "INSERT INTO gateway.events (id, merchant_id, type, data) VALUES "
             "('evt_vis_first', '%s', 'test.visibility', '{}')",
             st->m.id);
    PQclear(run(a, q)); /* takes the lower seq, not committed yet */
    snprintf(q, sizeof q,
             "INSERT INTO gateway.events (id, merchant_id, type, data) VALUES "
             "('evt_vis_second', '%s', 'test.visibility', '{}')",
             st->m.id);
    PQclear(run(b, q)); /* committed at once, with the higher seq */
    ck_assert(!listed("evt_vis_second"));
    PQclear(run(a, "COMMIT"));
    /* transaction ids are the cluster's: a transaction another test holds
     * open in its own database can delay the listing, never reorder it */
    for (int i = 0; i < 100 && !listed("evt_vis_first"); i++)
        usleep(100 * 1000);
    ck_assert(listed("evt_vis_first"));
    ck_assert(listed("evt_vis_second"));
    h_resp_t r = h_get(st->gw[0], "/v1/events?type=test.visibility", st->m.sk);
    ck_assert_str_eq(h_json_str(r.json, "data.0.id"), "evt_vis_first");
    ck_assert_str_eq(h_json_str(r.json, "data.1.id"), "evt_vis_second");
    h_resp_free(&r);
    PQfinish(a);
    PQfinish(b);
}
END_TEST

int main(void)
{
    h_init("it_webhooks");
    Suite *s = suite_create("webhooks");
    TCase *tc = h_tcase("webhooks", 600);
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_add_test(tc, failing_receiver_gets_the_event_later_with_the_same_id);
    tcase_add_test(tc, rotated_secret_signs_with_both_and_tampering_fails);
    tcase_add_test(tc, webhook_documents_are_validated);
    tcase_add_test(tc, a_receiver_that_never_answers_holds_no_transaction);
    tcase_add_test(tc, events_are_listed_only_once_no_earlier_one_can_appear);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
