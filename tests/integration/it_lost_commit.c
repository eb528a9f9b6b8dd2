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
 * Every test also asserts that the proxy really lost one COMMIT answer.
 * The setup and checks shared with it_lost_commit_more.c are in
 * tests/harness/lostcommit.c. */
#include "tests/harness/lostcommit.h"
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

/* Everything the database holds about one checkout that must exist once. */
static void assert_paid_once(h_stack_t *st, const char *chk)
{
    ck_assert_int_eq(h_stack_charges(st, NULL), 1);
    ck_assert_int_eq(
        h_sql_long(st->db, "SELECT count(*) FROM gateway.checkouts WHERE id = '%s'", chk), 1);
    ck_assert_int_eq(lc_count(st, "SELECT count(*) FROM gateway.checkouts"), 1);
    ck_assert_int_eq(
        h_sql_long(st->db, "SELECT count(*) FROM gateway.orders WHERE checkout_id = '%s'", chk), 1);
    ck_assert_int_eq(lc_count(st, "SELECT count(*) FROM gateway.orders"), 1);
    ck_assert_int_eq(lc_count(st, "SELECT count(*) FROM gateway.payments"), 1);
    ck_assert_int_eq(h_sql_long(st->db,
                                "SELECT count(*) FROM gateway.events WHERE object_id = '%s' AND "
                                "type = 'order.confirmed'",
                                chk),
                     1);
    ck_assert_int_eq(lc_count(st, "SELECT count(*) FROM gateway.events"), 1);
    /* the receiver gets that one event, once */
    lc_assert_delivered(st, "order.confirmed", chk, 1);
    ck_assert_int_eq(lc_bad_signatures(st), 0);
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
    h_resp_t r = lc_sk_send(st, "PUT", "/v1/webhooks/platform", body, NULL);
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
    char *chk = lc_paid_checkout(st, "4242424242424242");
    ck_assert_msg(lc_wait_received(st, "order.confirmed", chk, 20000) == 1,
                  "no delivery verified with the secret the PUT returned (bad signatures: %ld)",
                  lc_bad_signatures(st));
    ck_assert_int_eq(lc_bad_signatures(st), 0);
    ck_assert_int_eq(pgproxy_fired(t.px), 1);
    free(chk);
    free(shown);
    lc_stop(&t);
}
END_TEST

/* ------------------------------------------------------------- checkouts */

START_TEST(checkout_whose_finish_commit_answer_is_lost_answers_once_and_charges_once)
{
    lc_t t = lc_start(NULL);
    h_stack_t *st = t.st;
    lc_checkout_t co = lc_checkout_new(st, NULL, "finish");
    pgproxy_arm(t.px, MARK_CHECKOUT_FINISH);
    h_resp_t r = lc_checkout_send(st, &co);
    ck_assert_int_eq(pgproxy_fired(t.px), 1);
    ck_assert_msg(r.status == 200, "checkout after a lost commit 2: %ld %s", r.status, r.body);
    ck_assert_str_eq(h_json_str(r.json, "status"), "succeeded");
    const char *chk = h_json_str(r.json, "id");
    ck_assert_ptr_nonnull(chk);
    ck_assert_ptr_nonnull(h_json_str(r.json, "order.id"));
    lc_assert_sql_str(st->db, "succeeded", "SELECT status FROM gateway.checkouts WHERE id = '%s'",
                      chk);
    lc_assert_sql_str(st->db, h_json_str(r.json, "order.id"),
                      "SELECT id FROM gateway.orders WHERE checkout_id = '%s'", chk);
    assert_paid_once(st, chk);
    /* the stored answer is the one given; a replay gets it byte for byte */
    lc_assert_stored_answer(st, co.key, 200, r.body);
    h_resp_t again = lc_checkout_send(st, &co);
    char *rep = h_resp_header(&again, "Idempotent-Replayed");
    ck_assert_ptr_nonnull(rep);
    ck_assert_str_eq(rep, "true");
    free(rep);
    lc_assert_replay(again, &r);
    ck_assert_int_eq(h_stack_charges(st, NULL), 1);
    ck_assert_int_eq(pgproxy_fired(t.px), 1);
    h_resp_free(&r);
    lc_checkout_free(&co);
    lc_stop(&t);
}
END_TEST

START_TEST(checkout_whose_begin_commit_answer_is_lost_answers_once_and_charges_once)
{
    lc_t t = lc_start(NULL);
    h_stack_t *st = t.st;
    lc_checkout_t co = lc_checkout_new(st, NULL, "begin");
    pgproxy_arm(t.px, MARK_CHECKOUT_BEGIN);
    h_resp_t r = lc_checkout_send(st, &co);
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
        fin = lc_checkout_send(st, &co);
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
    lc_checkout_free(&co);
    lc_stop(&t);
}
END_TEST

/* ------------------------------------------------------------- captures */

/* An authorized payment, then its capture (with an Idempotency-Key) whose
 * transaction after `marker` loses its COMMIT answer: one capture at the
 * provider, one operation, one payment.captured, and the answer a replay
 * gets is the one given. */
static void capture_with_lost_commit(const char *marker, const char *what)
{
    lc_t t = lc_start(NULL);
    h_stack_t *st = t.st;
    lc_payment_t p = lc_payment_new(st, "{\"payment\":{\"capture\":false}}", "authorized", what);
    ck_assert_int_eq(h_stack_charges(st, "captured"), 0);
    pgproxy_arm(t.px, marker);
    h_resp_t r = lc_pay_op(st, p.pay, "capture", NULL, p.key);
    ck_assert_int_eq(pgproxy_fired(t.px), 1);
    ck_assert_msg(r.status == 200, "capture after a lost %s commit: %ld %s", what, r.status,
                  r.body);
    ck_assert_str_eq(h_json_str(r.json, "status"), "captured");
    ck_assert_int_eq(h_json_int(r.json, "captured_amount"), p.amount);
    ck_assert_int_eq(h_stack_charges(st, NULL), 1);
    ck_assert_int_eq(h_stack_charges(st, "captured"), 1);
    ck_assert_int_eq(h_sql_long(st->db,
                                "SELECT count(*) FROM gateway.payment_operations WHERE "
                                "payment_id = '%s'",
                                p.pay),
                     1);
    lc_assert_sql_str(st->db, "succeeded",
                      "SELECT state FROM gateway.payment_operations WHERE payment_id = '%s' AND "
                      "kind = 'capture'",
                      p.pay);
    lc_assert_sql_str(st->db, "captured", "SELECT status FROM gateway.payments WHERE id = '%s'",
                      p.pay);
    ck_assert_int_eq(lc_events(st, "payment.captured"), 1);
    lc_assert_replay(lc_pay_op(st, p.pay, "capture", NULL, p.key), &r);
    ck_assert_int_eq(h_stack_charges(st, "captured"), 1);
    ck_assert_int_eq(pgproxy_fired(t.px), 1);
    h_resp_free(&r);
    lc_payment_free(&p);
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
