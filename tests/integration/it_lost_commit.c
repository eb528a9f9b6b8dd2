/* Integration: a COMMIT that succeeds in PostgreSQL while its answer never
 * reaches gatewayd (the connection drops first). gatewayd's database
 * connections run through a wire-protocol proxy (tests/harness/pgproxy.c)
 * that drops both sides at exactly that moment, once, after a statement
 * chosen by its SQL text; no hook in gatewayd. db_txn_run re-runs the
 * transaction on a new connection, and each write must recognise its own
 * earlier, committed self:
 *   - PUT /v1/webhooks/{id}: 201 with the secret, one endpoint, one audit
 *     record, and the secret shown is the one deliveries are signed with;
 *   - POST /v1/checkouts, commit 2 (checkout_finish) lost: one final answer,
 *     one charge, one order, one order.confirmed, replays agree;
 *   - POST /v1/checkouts, commit 1 (checkout_begin) lost: the request goes
 *     on to one final answer and one charge, not a refusal of its own key;
 *   - POST /v1/payments/{id}/capture with an Idempotency-Key, the key's
 *     claim, the operation's begin or its finish lost: one capture, one
 *     operation, one payment.captured, and a replay gets the same answer.
 * Every test also asserts that the proxy really lost one COMMIT answer. */
#include "tests/harness/pgproxy.h"
#include "tests/harness/stack.h"
#include <string.h>
#include <unistd.h>

/* Markers: SQL text gatewayd sends (gateway/db/webhooks.c, checkout.c,
 * idempotency.c, payment_ops.c). */
#define MARK_WEBHOOK_INSERT  "INSERT INTO gateway.webhook_endpoints"
#define MARK_CHECKOUT_BEGIN  "gateway.checkout_begin("
#define MARK_CHECKOUT_FINISH "gateway.checkout_finish("
#define MARK_IDEM_CLAIM      "INSERT INTO gateway.idempotency_keys"
#define MARK_OP_BEGIN        "gateway.payment_op_begin("
#define MARK_OP_FINISH       "gateway.payment_op_finish("

typedef struct {
    h_stack_t *st;
    pgproxy_t *px;
} lc_t;

/* The stack, then gateway 0 restarted with its database connections (pool
 * and LISTEN) through a fresh proxy. Started inside the test (the proxy's
 * thread lives in this process). */
static lc_t lc_start(const h_stack_opts_t *o)
{
    lc_t t = {0};
    t.st = h_stack_start(o);
    /* the fixture cluster listens on its unix socket only (scripts/lib/pg.sh) */
    char *sock = str_printf("%s/sock", h_pgbase());
    t.px = pgproxy_start(sock, 5432);
    free(sock);
    ck_assert_ptr_nonnull(t.px);
    char *ci = pgproxy_conninfo(t.px, t.st->db, "gateway");
    json_t *cfg = json_loads(t.st->gateway_json, 0, NULL);
    json_t *db = json_pack("{s:{s:s}}", "database", "conninfo", ci);
    json_object_update_recursive(cfg, db);
    json_decref(db);
    free(t.st->gateway_json);
    t.st->gateway_json = json_dumps(cfg, JSON_COMPACT);
    json_decref(cfg);
    free(ci);
    ck_assert_int_eq(h_gateway_stop(t.st->gw[0], SIGTERM), 0);
    t.st->gw[0] = NULL;
    h_stack_gateway_start(t.st, 0);
    /* a request that reads the database: its answer came through the proxy */
    h_resp_t r = h_get(t.st->gw[0], "/v1/webhooks", t.st->m.sk);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    h_resp_free(&r);
    ck_assert_msg(pgproxy_connections(t.px) > 0, "gatewayd does not use the proxy");
    return t;
}

static void lc_stop(lc_t *t)
{
    h_stack_stop(t->st); /* gatewayd first: its connections close cleanly */
    pgproxy_stop(t->px);
}

static h_resp_t sk_put(h_stack_t *st, const char *path, const char *body)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", st->gw[0]->url, path);
    return h_http("PUT", url, st->m.sk, body, NULL);
}

static void receiver_secrets(h_stack_t *st, const char *secret)
{
    char *body = str_printf("{\"secrets\":[\"%s\"]}", secret);
    char url[256];
    snprintf(url, sizeof url, "%s/_sandbox/secrets", st->webhooks->control_url);
    h_resp_t r = h_http("POST", url, NULL, body, NULL);
    ck_assert_msg(r.status == 200, "receiver secrets: %ld %s", r.status, r.body);
    h_resp_free(&r);
    free(body);
}

/* The receiver's deliveries of `type` for checkout chk: how many distinct
 * events and how many deliveries in all. */
static int received(h_stack_t *st, const char *type, const char *chk, long *deliveries)
{
    json_t *d = h_stack_deliveries(st);
    int n = 0;
    long dl = 0;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(d, "events"), i, e)
    {
        const char *t = json_string_value(json_object_get(e, "type"));
        const char *id = h_json_str(e, "data.id");
        if (t && !strcmp(t, type) && id && !strcmp(id, chk)) {
            n++;
            dl += (long)json_integer_value(json_object_get(e, "deliveries"));
        }
    }
    json_decref(d);
    if (deliveries)
        *deliveries = dl;
    return n;
}

static int wait_received(h_stack_t *st, const char *type, const char *chk, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 50) {
        if (received(st, type, chk, NULL) > 0)
            break;
        usleep(50 * 1000);
    }
    return received(st, type, chk, NULL);
}

static long bad_signatures(h_stack_t *st)
{
    json_t *d = h_stack_deliveries(st);
    long n = (long)json_integer_value(json_object_get(d, "bad_signatures"));
    json_decref(d);
    return n;
}

/* Asserts that the first cell of the query is want. */
#define assert_sql_str(db, want, ...)                                                              \
    do {                                                                                           \
        char *got_ = h_sql(db, __VA_ARGS__);                                                       \
        ck_assert_msg(got_ && !strcmp(got_, want), "expected %s, got %s", want,                    \
                      got_ ? got_ : "NULL");                                                       \
        free(got_);                                                                                \
    } while (0)

/* Everything the database holds about one checkout that must exist once. */
static void assert_paid_once(h_stack_t *st, const char *chk)
{
    ck_assert_int_eq(h_stack_charges(st, NULL), 1);
    ck_assert_int_eq(
        h_sql_long(st->db, "SELECT count(*) FROM gateway.checkouts WHERE id = '%s'", chk), 1);
    ck_assert_int_eq(h_sql_long(st->db, "SELECT count(*) FROM gateway.checkouts"), 1);
    ck_assert_int_eq(
        h_sql_long(st->db, "SELECT count(*) FROM gateway.orders WHERE checkout_id = '%s'", chk), 1);
    ck_assert_int_eq(h_sql_long(st->db, "SELECT count(*) FROM gateway.orders"), 1);
    ck_assert_int_eq(h_sql_long(st->db, "SELECT count(*) FROM gateway.payments"), 1);
    ck_assert_int_eq(h_sql_long(st->db,
                                "SELECT count(*) FROM gateway.events WHERE object_id = '%s' AND "
                                "type = 'order.confirmed'",
                                chk),
                     1);
    ck_assert_int_eq(h_sql_long(st->db, "SELECT count(*) FROM gateway.events"), 1);
    /* the receiver gets that one event, once */
    ck_assert_msg(wait_received(st, "order.confirmed", chk, 20000) == 1,
                  "order.confirmed for %s never delivered", chk);
    usleep(500 * 1000); /* a second event would be on its way by now */
    long deliveries = 0;
    ck_assert_int_eq(received(st, "order.confirmed", chk, &deliveries), 1);
    ck_assert_int_eq(deliveries, 1);
    ck_assert_int_eq(bad_signatures(st), 0);
}

/* -------------------------------------------------------------- webhooks */

START_TEST(webhook_put_whose_commit_answer_is_lost_creates_one_endpoint_with_the_shown_secret)
{
    h_stack_opts_t o = {.no_webhook = true};
    lc_t t = lc_start(&o);
    h_stack_t *st = t.st;
    pgproxy_arm(t.px, MARK_WEBHOOK_INSERT);
    char body[512];
    snprintf(body, sizeof body, "{\"url\":\"%s/hooks/portcullis\",\"events\":[\"*\"]}",
             st->webhooks->url);
    h_resp_t r = sk_put(st, "/v1/webhooks/platform", body);
    ck_assert_int_eq(pgproxy_fired(t.px), 1); /* the COMMIT answer really was lost */
    /* a creation, answered as one: 201 and the secret, shown this once */
    ck_assert_msg(r.status == 201, "PUT after a lost COMMIT: %ld %s", r.status, r.body);
    const char *secret = h_json_str(r.json, "secret");
    ck_assert_msg(secret && !strncmp(secret, "whsec_", 6), "no secret: %s", r.body);
    char *shown = strdup(secret);
    ck_assert_str_eq(h_json_str(r.json, "id"), "platform");
    h_resp_free(&r);
    /* one endpoint, written once, audited once */
    ck_assert_int_eq(h_sql_long(st->db,
                                "SELECT count(*) FROM gateway.webhook_endpoints WHERE "
                                "merchant_id = '%s'",
                                st->m.id),
                     1);
    ck_assert_int_eq(h_sql_long(st->db,
                                "SELECT count(*) FROM gateway.webhook_endpoints WHERE "
                                "merchant_id = '%s' AND id = 'platform' AND previous_sealed "
                                "IS NULL AND created_at = updated_at",
                                st->m.id),
                     1);
    ck_assert_int_eq(h_sql_long(st->db,
                                "SELECT count(*) FROM audit.events WHERE merchant_id = '%s' AND "
                                "object = 'platform' AND action LIKE 'webhook.%%'",
                                st->m.id),
                     1);
    ck_assert_int_eq(h_sql_long(st->db,
                                "SELECT count(*) FROM audit.events WHERE merchant_id = '%s' AND "
                                "object = 'platform' AND action = 'webhook.create'",
                                st->m.id),
                     1);
    h_resp_t l = h_get(st->gw[0], "/v1/webhooks", st->m.sk);
    ck_assert_int_eq(l.status, 200);
    ck_assert_int_eq(json_array_size(json_object_get(l.json, "data")), 1);
    h_resp_free(&l);
    /* the secret shown is the one stored: the receiver, knowing only it,
     * accepts the signed delivery of the next order */
    receiver_secrets(st, shown);
    h_resp_t p = h_stack_pay(st, 0, "4242424242424242", "SKU-RED-MUG", 1, NULL);
    ck_assert_msg(p.status == 200, "%ld %s", p.status, p.body);
    char *chk = strdup(h_json_str(p.json, "id"));
    h_resp_free(&p);
    ck_assert_msg(wait_received(st, "order.confirmed", chk, 20000) == 1,
                  "no delivery verified with the secret the PUT returned (bad signatures: %ld)",
                  bad_signatures(st));
    ck_assert_int_eq(bad_signatures(st), 0);
    ck_assert_int_eq(pgproxy_fired(t.px), 1);
    free(chk);
    free(shown);
    lc_stop(&t);
}
END_TEST

/* ------------------------------------------------------------- checkouts */

static char *checkout_key(const char *what)
{
    return str_printf("lost-%s-%d", what, (int)getpid());
}

START_TEST(checkout_whose_finish_commit_answer_is_lost_answers_once_and_charges_once)
{
    lc_t t = lc_start(NULL);
    h_stack_t *st = t.st;
    char *tok = h_stack_token(st, "4242424242424242");
    char *body = h_stack_checkout_body(tok, "SKU-RED-MUG", 1, NULL);
    char *key = checkout_key("finish");
    pgproxy_arm(t.px, MARK_CHECKOUT_FINISH);
    h_resp_t r = h_stack_checkout(st, 0, key, body);
    ck_assert_int_eq(pgproxy_fired(t.px), 1);
    ck_assert_msg(r.status == 200, "checkout after a lost commit 2: %ld %s", r.status, r.body);
    ck_assert_str_eq(h_json_str(r.json, "status"), "succeeded");
    const char *chk = h_json_str(r.json, "id");
    ck_assert_ptr_nonnull(chk);
    ck_assert_ptr_nonnull(h_json_str(r.json, "order.id"));
    assert_sql_str(st->db, "succeeded", "SELECT status FROM gateway.checkouts WHERE id = '%s'",
                   chk);
    assert_sql_str(st->db, h_json_str(r.json, "order.id"),
                   "SELECT id FROM gateway.orders WHERE checkout_id = '%s'", chk);
    assert_paid_once(st, chk);
    /* the stored answer is the one given; a replay gets it byte for byte */
    char *stored = h_sql(st->db,
                         "SELECT response_body FROM gateway.idempotency_keys WHERE key = '%s' "
                         "AND state = 'done' AND response_status = 200",
                         key);
    ck_assert_ptr_nonnull(stored);
    ck_assert_str_eq(stored, r.body);
    h_resp_t again = h_stack_checkout(st, 0, key, body);
    ck_assert_int_eq(again.status, 200);
    ck_assert_str_eq(again.body, r.body);
    char *rep = h_resp_header(&again, "Idempotent-Replayed");
    ck_assert_ptr_nonnull(rep);
    ck_assert_str_eq(rep, "true");
    free(rep);
    h_resp_free(&again);
    ck_assert_int_eq(h_stack_charges(st, NULL), 1);
    ck_assert_int_eq(pgproxy_fired(t.px), 1);
    free(stored);
    h_resp_free(&r);
    free(key);
    free(body);
    free(tok);
    lc_stop(&t);
}
END_TEST

START_TEST(checkout_whose_begin_commit_answer_is_lost_answers_once_and_charges_once)
{
    lc_t t = lc_start(NULL);
    h_stack_t *st = t.st;
    char *tok = h_stack_token(st, "4242424242424242");
    char *body = h_stack_checkout_body(tok, "SKU-RED-MUG", 1, NULL);
    char *key = checkout_key("begin");
    pgproxy_arm(t.px, MARK_CHECKOUT_BEGIN);
    h_resp_t r = h_stack_checkout(st, 0, key, body);
    ck_assert_int_eq(pgproxy_fired(t.px), 1);
    /* commit 1 is durable: the checkout exists, and this request is the
     * one that made it. It answers with the outcome (or 202 while the
     * outcome is unknown), not with a refusal of its own key. */
    ck_assert_msg(r.status == 200 || r.status == 202,
                  "checkout after a lost commit 1: %ld %s (checkout in the database: %s, "
                  "charges: %ld)",
                  r.status, r.body,
                  h_sql(st->db, "SELECT id || ' ' || status FROM gateway.checkouts"),
                  h_stack_charges(st, NULL));
    const char *chk = h_json_str(r.json, "id");
    ck_assert_ptr_nonnull(chk);
    h_resp_t fin = {0};
    for (int i = 0; i < 600; i++) { /* 202: the replay has the outcome once known */
        h_resp_free(&fin);
        fin = h_stack_checkout(st, 0, key, body);
        if (fin.status != 202)
            break;
        usleep(100 * 1000);
    }
    ck_assert_msg(fin.status == 200, "replay: %ld %s", fin.status, fin.body);
    ck_assert_str_eq(h_json_str(fin.json, "status"), "succeeded");
    ck_assert_str_eq(h_json_str(fin.json, "id"), chk);
    assert_paid_once(st, chk);
    ck_assert_int_eq(pgproxy_fired(t.px), 1);
    h_resp_free(&fin);
    h_resp_free(&r);
    free(key);
    free(body);
    free(tok);
    lc_stop(&t);
}
END_TEST

/* ------------------------------------------------------------- captures */

static h_resp_t capture(h_stack_t *st, const char *payment, const char *key)
{
    char url[256], hdr[128];
    snprintf(url, sizeof url, "%s/v1/payments/%s/capture", st->gw[0]->url, payment);
    snprintf(hdr, sizeof hdr, "Idempotency-Key: %s", key);
    const char *headers[] = {hdr, NULL};
    return h_http("POST", url, st->m.sk, NULL, headers);
}

/* An authorized payment, then its capture (with an Idempotency-Key) whose
 * transaction after `marker` loses its COMMIT answer: one capture at the
 * provider, one operation, one payment.captured, and the answer a replay
 * gets is the one given. */
static void capture_with_lost_commit(const char *marker, const char *what)
{
    lc_t t = lc_start(NULL);
    h_stack_t *st = t.st;
    h_resp_t c = h_stack_pay(st, 0, "4242424242424242", "SKU-RED-MUG", 1,
                             "{\"payment\":{\"capture\":false}}");
    ck_assert_msg(c.status == 200, "%ld %s", c.status, c.body);
    ck_assert_str_eq(h_json_str(c.json, "payment.status"), "authorized");
    char *pay = strdup(h_json_str(c.json, "payment.id"));
    json_int_t amount = h_json_int(c.json, "payment.amount");
    h_resp_free(&c);
    ck_assert_int_eq(h_stack_charges(st, "captured"), 0);
    char *key = checkout_key(what);
    pgproxy_arm(t.px, marker);
    h_resp_t r = capture(st, pay, key);
    ck_assert_int_eq(pgproxy_fired(t.px), 1);
    ck_assert_msg(r.status == 200, "capture after a lost %s commit: %ld %s", what, r.status,
                  r.body);
    ck_assert_str_eq(h_json_str(r.json, "status"), "captured");
    ck_assert_int_eq(h_json_int(r.json, "captured_amount"), amount);
    ck_assert_int_eq(h_stack_charges(st, NULL), 1);
    ck_assert_int_eq(h_stack_charges(st, "captured"), 1);
    ck_assert_int_eq(h_sql_long(st->db,
                                "SELECT count(*) FROM gateway.payment_operations WHERE "
                                "payment_id = '%s'",
                                pay),
                     1);
    assert_sql_str(st->db, "succeeded",
                   "SELECT state FROM gateway.payment_operations WHERE payment_id = '%s' AND "
                   "kind = 'capture'",
                   pay);
    assert_sql_str(st->db, "captured", "SELECT status FROM gateway.payments WHERE id = '%s'", pay);
    ck_assert_int_eq(h_sql_long(st->db, "SELECT count(*) FROM gateway.events WHERE type = "
                                        "'payment.captured'"),
                     1);
    h_resp_t again = capture(st, pay, key);
    ck_assert_msg(again.status == 200, "replay: %ld %s", again.status, again.body);
    ck_assert_str_eq(again.body, r.body);
    h_resp_free(&again);
    ck_assert_int_eq(h_stack_charges(st, "captured"), 1);
    ck_assert_int_eq(pgproxy_fired(t.px), 1);
    h_resp_free(&r);
    free(key);
    free(pay);
    lc_stop(&t);
}

START_TEST(capture_whose_key_claim_commit_answer_is_lost_captures_once)
{
    capture_with_lost_commit(MARK_IDEM_CLAIM, "claim");
}
END_TEST

START_TEST(capture_whose_op_begin_commit_answer_is_lost_captures_once)
{
    capture_with_lost_commit(MARK_OP_BEGIN, "op-begin");
}
END_TEST

START_TEST(capture_whose_op_finish_commit_answer_is_lost_captures_once)
{
    capture_with_lost_commit(MARK_OP_FINISH, "op-finish");
}
END_TEST

int main(void)
{
    h_init("it_lost_commit");
    Suite *s = suite_create("lost_commit");
    TCase *tc = h_tcase("lost_commit", 600);
    tcase_add_test(
        tc, webhook_put_whose_commit_answer_is_lost_creates_one_endpoint_with_the_shown_secret);
    tcase_add_test(tc, checkout_whose_finish_commit_answer_is_lost_answers_once_and_charges_once);
    tcase_add_test(tc, checkout_whose_begin_commit_answer_is_lost_answers_once_and_charges_once);
    tcase_add_test(tc, capture_whose_key_claim_commit_answer_is_lost_captures_once);
    tcase_add_test(tc, capture_whose_op_begin_commit_answer_is_lost_captures_once);
    tcase_add_test(tc, capture_whose_op_finish_commit_answer_is_lost_captures_once);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
