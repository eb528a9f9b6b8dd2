/* Integration: after the checkout (capture, partial capture, void, refunds
 * that never exceed the capture, each idempotent and each with its event),
 * and fraud in the checkout: card testing declined by velocity, block list
 * with zero provider calls, allow list beating a rule, and the review queue
 * (approve captures, reject voids and releases; replays are idempotent). */
#include "tests/harness/stack.h"
#include <string.h>
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

static h_resp_t checkout_as(const char *pan, const char *sku, int qty, const char *extra)
{
    return h_stack_pay(st, 0, pan, sku, qty, extra);
}

static h_resp_t op(const char *payment, const char *what, const char *body, const char *key)
{
    char url[256], hdr[128];
    snprintf(url, sizeof url, "%s/v1/payments/%s/%s", st->gw[0]->url, payment, what);
    snprintf(hdr, sizeof hdr, "Idempotency-Key: %s", key ? key : "");
    const char *headers[] = {key ? hdr : NULL, NULL};
    return h_http("POST", url, st->m.sk, body, headers);
}

static long events_of(const char *type)
{
    return h_sql_long(st->db, "SELECT count(*) FROM gateway.events WHERE type = '%s'", type);
}

START_TEST(capture_refund_void_rules)
{
    h_resp_t c = checkout_as("4242424242424242", "SKU-RED-MUG", 2, "{\"payment\":{\"capture\":false}}");
    ck_assert_msg(c.status == 200, "%ld %s", c.status, c.body);
    char *pay = strdup(h_json_str(c.json, "payment.id"));
    h_resp_free(&c);

    h_resp_t r = op(pay, "refunds", "{\"amount\":100}", NULL);
    h_assert_error(&r, 409, ERR_INVALID_STATE); /* nothing captured yet */
    h_resp_free(&r);
    long captured_events = events_of("payment.captured");
    r = op(pay, "capture", "{\"amount\":2000}", "cap-1");
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_int_eq(h_json_int(r.json, "captured_amount"), 2000);
    char *first = strdup(r.body);
    h_resp_free(&r);
    r = op(pay, "capture", "{\"amount\":2000}", "cap-1"); /* replay */
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, first);
    h_resp_free(&r);
    free(first);
    ck_assert_int_eq(events_of("payment.captured") - captured_events, 1);
    r = op(pay, "capture", NULL, NULL); /* already captured */
    h_assert_error(&r, 409, ERR_INVALID_STATE);
    h_resp_free(&r);
    r = op(pay, "void", NULL, NULL);
    h_assert_error(&r, 409, ERR_INVALID_STATE);
    h_resp_free(&r);

    r = op(pay, "refunds", "{\"amount\":500}", NULL);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_str_eq(h_json_str(r.json, "object"), "refund");
    ck_assert_str_eq(h_json_str(r.json, "status"), "succeeded");
    ck_assert_str_eq(h_json_str(r.json, "payment.status"), "partially_refunded");
    h_resp_free(&r);
    r = op(pay, "refunds", "{\"amount\":1501}", NULL);
    h_assert_error(&r, 400, ERR_AMOUNT_TOO_LARGE);
    h_resp_free(&r);
    r = op(pay, "refunds", NULL, NULL); /* the rest */
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(h_json_int(r.json, "amount"), 1500);
    ck_assert_str_eq(h_json_str(r.json, "payment.status"), "refunded");
    ck_assert_int_eq(h_json_int(r.json, "payment.refunded_amount"), 2000);
    h_resp_free(&r);
    r = op(pay, "refunds", "{\"amount\":1}", NULL);
    h_assert_error(&r, 409, ERR_INVALID_STATE);
    h_resp_free(&r);
    ck_assert_int_ge(events_of("payment.refunded"), 2);
    free(pay);

    /* void an authorization */
    c = checkout_as("5555555555554444", "SKU-RED-MUG", 1, "{\"payment\":{\"capture\":false}}");
    pay = strdup(h_json_str(c.json, "payment.id"));
    h_resp_free(&c);
    r = op(pay, "void", NULL, NULL);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_str_eq(h_json_str(r.json, "status"), "voided");
    h_resp_free(&r);
    r = op(pay, "capture", NULL, NULL);
    h_assert_error(&r, 409, ERR_INVALID_STATE);
    h_resp_free(&r);
    r = op("pay_doesnotexist", "capture", NULL, NULL);
    h_assert_error(&r, 404, ERR_RESOURCE_MISSING);
    h_resp_free(&r);
    /* a publishable key may not move money */
    char url[256];
    snprintf(url, sizeof url, "%s/v1/payments/%s/refunds", st->gw[0]->url, pay);
    r = h_http("POST", url, st->m.pk, NULL, NULL);
    h_assert_error(&r, 403, ERR_PERMISSION_DENIED);
    h_resp_free(&r);
    free(pay);
}
END_TEST

static long op_state_is(const char *id, const char *state)
{
    return h_sql_long(st->db,
                      "SELECT count(*) FROM gateway.payment_operations WHERE id = '%s' "
                      "AND state = '%s'",
                      id, state);
}

static long op_touched(const char *id)
{
    return h_sql_long(st->db,
                      "SELECT (extract(epoch FROM updated_at) * 1000000)::bigint FROM "
                      "gateway.payment_operations WHERE id = '%s'",
                      id);
}

/* A refund whose outcome is unknown ends only on the provider's word: the
 * recovery worker's re-send that cannot even reach the provider leaves it
 * unknown (the first try may have moved the money), and the next re-send
 * that gets through settles it as the one refund it was. */
START_TEST(unknown_refund_stays_unknown_until_the_provider_answers)
{
    h_resp_t c = checkout_as("4242424242424242", "SKU-RED-MUG", 1, NULL);
    ck_assert_msg(c.status == 200, "%ld %s", c.status, c.body);
    char *pay = strdup(h_json_str(c.json, "payment.id"));
    long total = (long)h_json_int(c.json, "order.total");
    h_resp_free(&c);
    /* refunded, and the reply held past gatewayd's 2 s timeout */
    h_sandbox_faults(st->stripe,
                     "{\"mode\":\"timeout\",\"after_processing\":true,\"hold_ms\":2500}");
    h_resp_t r = op(pay, "refunds", "{\"amount\":300}", "unk-1");
    h_sandbox_faults(st->stripe, "{\"mode\":\"down\"}");
    ck_assert_msg(r.status == 202, "%ld %s", r.status, r.body);
    char *id = strdup(h_json_str(r.json, "id"));
    h_resp_free(&r);
    ck_assert_int_eq(op_state_is(id, "unknown"), 1);
    /* the worker's first re-send meets a provider that refuses connections */
    long before = op_touched(id);
    for (int i = 0; i < 400 && op_touched(id) == before; i++)
        usleep(100 * 1000);
    ck_assert_msg(op_touched(id) != before, "the recovery worker never re-sent the refund");
    usleep(1000 * 1000);
    ck_assert_int_eq(op_state_is(id, "failed"), 0);
    ck_assert_int_eq(op_state_is(id, "unknown"), 1);
    /* a second refund cannot use the amount the unknown one may have taken */
    char over[48];
    snprintf(over, sizeof over, "{\"amount\":%ld}", total - 299);
    r = op(pay, "refunds", over, NULL);
    h_assert_error(&r, 400, ERR_AMOUNT_TOO_LARGE);
    h_resp_free(&r);
    h_sandbox_faults(st->stripe, "{\"mode\":\"none\"}");
    for (int i = 0; i < 400 && !op_state_is(id, "succeeded"); i++)
        usleep(100 * 1000);
    ck_assert_int_eq(op_state_is(id, "succeeded"), 1);
    ck_assert_int_eq(h_sql_long(st->db,
                                "SELECT refunded_amount FROM gateway.payments WHERE "
                                "id = '%s'",
                                pay),
                     300);
    /* the key now replays the final answer, still a refund object: the one
     * renderer the request uses (a refusal would replay as the error) */
    r = op(pay, "refunds", "{\"amount\":300}", "unk-1");
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_str_eq(h_json_str(r.json, "object"), "refund");
    ck_assert_str_eq(h_json_str(r.json, "id"), id);
    ck_assert_str_eq(h_json_str(r.json, "status"), "succeeded");
    ck_assert_int_eq(h_json_int(r.json, "payment.refunded_amount"), 300);
    h_resp_free(&r);
    free(id);
    free(pay);
}
END_TEST

/* A refund's key claimed by a request that died before its operation was
 * recorded would answer 409 for ever; the recovery worker releases it once it
 * is older than any request can be (two leases), and the same key then
 * works. A key whose checkout exists is left alone. */
START_TEST(a_key_whose_request_died_before_recording_is_released)
{
    h_resp_t c = checkout_as("4242424242424242", "SKU-RED-MUG", 1, NULL);
    ck_assert_msg(c.status == 200, "%ld %s", c.status, c.body);
    char *pay = strdup(h_json_str(c.json, "payment.id"));
    char *chk = strdup(h_json_str(c.json, "id"));
    h_resp_free(&c);
    free(h_sql(st->db,
               "INSERT INTO gateway.idempotency_keys (merchant_id, key, request_hash, "
               "state, resource_id, created_at) VALUES ('%s', 'orphan-1', '\\x00', "
               "'running', 're_neverrecorded', now() - interval '1 hour'), "
               "('%s', 'orphan-2', '\\x00', 'running', '%s', now() - interval '1 hour') "
               "RETURNING 1",
               st->m.id, st->m.id, chk));
    for (int i = 0; i < 200 && h_sql_long(st->db, "SELECT count(*) FROM gateway.idempotency_keys "
                                                  "WHERE key = 'orphan-1'") > 0;
         i++)
        usleep(50 * 1000);
    ck_assert_int_eq(h_sql_long(st->db, "SELECT count(*) FROM gateway.idempotency_keys WHERE "
                                        "key = 'orphan-1'"),
                     0);
    ck_assert_int_eq(h_sql_long(st->db, "SELECT count(*) FROM gateway.idempotency_keys WHERE "
                                        "key = 'orphan-2'"),
                     1);
    h_resp_t r = op(pay, "refunds", "{\"amount\":100}", "orphan-1");
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    /* a key whose refund went through but whose answer was never stored gets
     * the answer a replay would have had */
    free(h_sql(st->db,
               "INSERT INTO gateway.idempotency_keys (merchant_id, key, request_hash, "
               "state, resource_id, created_at) VALUES ('%s', 'orphan-3', '\\x00', "
               "'running', '%s', now() - interval '1 hour') RETURNING 1",
               st->m.id, h_json_str(r.json, "id")));
    h_resp_free(&r);
    for (int i = 0; i < 200 && h_sql_long(st->db, "SELECT count(*) FROM gateway.idempotency_keys "
                                                  "WHERE key = 'orphan-3' AND state = 'done'") == 0;
         i++)
        usleep(50 * 1000);
    ck_assert_int_eq(h_sql_long(st->db, "SELECT count(*) FROM gateway.idempotency_keys WHERE key = "
                                        "'orphan-3' AND state = 'done' AND response_status = 200 "
                                        "AND response_body::jsonb->>'object' = 'payment'"),
                     1);
    free(pay);
    free(chk);
}
END_TEST

START_TEST(card_testing_from_one_ip_is_declined_by_fraud)
{
    long charges = h_stack_charges(st, NULL);
    int declined = 0, first_decline = -1;
    for (int i = 0; i < 30; i++) {
        char pan[20];
        h_luhn_card("41111100", i + 1, pan);
        char extra[200];
        snprintf(extra, sizeof extra,
                 "{\"customer\":{\"ip\":\"198.51.100.77\",\"email\":\"tester%d@example.org\"}}", i);
        h_resp_t r = checkout_as(pan, "SKU-STICKER", 1, extra);
        if (r.status == 402 && !strcmp(h_json_str(r.json, "error.code"), "fraud_declined")) {
            declined++;
            if (first_decline < 0)
                first_decline = i;
            ck_assert_ptr_nonnull(strstr(r.body, "card_testing_ip"));
            ck_assert_ptr_nonnull(strstr(r.body, "ip.distinct_cards.10m"));
            ck_assert_ptr_null(json_object_get(r.json, "payment") == json_null()
                                   ? NULL
                                   : json_object_get(json_object_get(r.json, "payment"), "provider"));
        }
        h_resp_free(&r);
    }
    ck_assert_int_ge(first_decline, 1);
    ck_assert_int_eq(declined, 30 - first_decline);
    /* declined attempts never reached a provider */
    ck_assert_int_eq(h_stack_charges(st, NULL) - charges, first_decline);
}
END_TEST

START_TEST(refused_card_numbers_count_against_the_ip)
{
    for (int i = 0; i < 5; i++) {
        h_resp_t r = h_post(st->gw[0], "/v1/tokens", st->m.pk,
                            "{\"card\":{\"number\":\"4242424242424241\",\"exp_month\":12,"
                            "\"exp_year\":2030,\"cvc\":\"123\"}}");
        h_assert_error(&r, 400, ERR_INVALID_NUMBER);
        h_resp_free(&r);
    }
    /* a checkout from the same address (no customer.ip: the client's own) */
    char *tok = h_stack_token(st, "4242424242424242");
    char *body = h_stack_checkout_body(tok, "SKU-RED-MUG", 1, NULL);
    json_t *j = json_loads(body, 0, NULL);
    json_object_del(json_object_get(j, "customer"), "ip");
    char *b2 = json_dumps(j, JSON_COMPACT);
    h_resp_t r = h_stack_checkout(st, 0, "after-token-failures", b2);
    ck_assert_msg(strstr(r.body, "token_failures_ip") != NULL, "%s", r.body);
    ck_assert_ptr_nonnull(strstr(r.body, "ip.token_failures.1h is 5"));
    h_resp_free(&r);
    free(b2);
    json_decref(j);
    free(body);
    free(tok);
}
END_TEST

static void put_rules(void)
{
    const char *doc =
        "{\"review_threshold\":60,\"decline_threshold\":85,"
        "\"block\":{\"emails\":[\"blocked@example.org\"],\"email_domains\":[],\"ips\":[],"
        "\"fingerprints\":[],\"bins\":[],\"countries\":[],\"devices\":[]},"
        "\"allow\":{\"emails\":[\"vip@deny.example\"],\"email_domains\":[],\"ips\":[],"
        "\"fingerprints\":[],\"bins\":[],\"countries\":[],\"devices\":[]},"
        "\"rules\":[{\"id\":\"review_me\",\"if\":{\"feature\":\"email_domain\",\"op\":\"eq\","
        "\"value\":\"review.example\"},\"score\":0,\"action\":\"review\",\"reason\":\"held for "
        "manual review\"},{\"id\":\"deny_domain\",\"if\":{\"feature\":\"email_domain\",\"op\":"
        "\"eq\",\"value\":\"deny.example\"},\"score\":0,\"action\":\"decline\",\"reason\":\"denied "
        "domain\"}]}";
    char url[256];
    snprintf(url, sizeof url, "%s/v1/fraud/rules", st->gw[0]->url);
    h_resp_t r = h_http("PUT", url, st->m.sk, doc, NULL);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    h_resp_free(&r);
}

START_TEST(block_list_declines_without_calling_a_provider_and_allow_beats_rules)
{
    put_rules();
    long charges = h_stack_charges(st, NULL);
    h_resp_t r = checkout_as("4242424242424242", "SKU-RED-MUG", 1,
                             "{\"customer\":{\"email\":\"blocked@example.org\"}}");
    h_assert_error(&r, 402, ERR_FRAUD_DECLINED);
    ck_assert_str_eq(h_json_str(r.json, "fraud.decision"), "decline");
    ck_assert_ptr_nonnull(strstr(r.body, "block.emails"));
    h_resp_free(&r);
    ck_assert_int_eq(h_stack_charges(st, NULL), charges);
    r = checkout_as("4242424242424242", "SKU-RED-MUG", 1,
                    "{\"customer\":{\"email\":\"someone@deny.example\"}}");
    h_assert_error(&r, 402, ERR_FRAUD_DECLINED);
    ck_assert_ptr_nonnull(strstr(r.body, "deny_domain"));
    h_resp_free(&r);
    ck_assert_int_eq(h_stack_charges(st, NULL), charges);
    r = checkout_as("4242424242424242", "SKU-RED-MUG", 1,
                    "{\"customer\":{\"email\":\"vip@deny.example\"}}");
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_str_eq(h_json_str(r.json, "fraud.decision"), "approve");
    h_resp_free(&r);
    ck_assert_int_eq(h_stack_charges(st, NULL) - charges, 1);
}
END_TEST

static h_resp_t review_keyed(const char *chk, const char *decision, const char *key)
{
    char url[256], body[64], hdr[320];
    snprintf(url, sizeof url, "%s/v1/checkouts/%s/review", st->gw[0]->url, chk);
    snprintf(body, sizeof body, "{\"decision\":\"%s\"}", decision);
    snprintf(hdr, sizeof hdr, "Idempotency-Key: %s", key ? key : "");
    const char *headers[] = {key ? hdr : NULL, NULL};
    return h_http("POST", url, st->m.sk, body, headers);
}

static h_resp_t review(const char *chk, const char *decision)
{
    return review_keyed(chk, decision, NULL);
}

static bool released(void *cls)
{
    return h_stack_stock(st, "SKU-BLUE-MUG", "reserved") == 0;
}

START_TEST(review_queue_approve_captures_and_reject_voids_and_releases)
{
    put_rules();
    h_resp_t a = checkout_as("4242424242424242", "SKU-BLUE-MUG", 1,
                             "{\"customer\":{\"email\":\"first@review.example\"}}");
    ck_assert_msg(a.status == 200, "%ld %s", a.status, a.body);
    ck_assert_str_eq(h_json_str(a.json, "status"), "requires_review");
    ck_assert_str_eq(h_json_str(a.json, "payment.status"), "authorized");
    ck_assert_ptr_null(json_object_get(a.json, "order")); /* no order until approved */
    h_resp_t b = checkout_as("5555555555554444", "SKU-BLUE-MUG", 1,
                             "{\"customer\":{\"email\":\"second@review.example\"}}");
    ck_assert_str_eq(h_json_str(b.json, "status"), "requires_review");
    char *ca = strdup(h_json_str(a.json, "id")), *cb = strdup(h_json_str(b.json, "id"));
    h_resp_free(&a);
    h_resp_free(&b);
    ck_assert_int_eq(h_stack_stock(st, "SKU-BLUE-MUG", "reserved"), 2);

    h_resp_t q = h_get(st->gw[0], "/v1/reviews", st->m.sk);
    ck_assert_int_eq(q.status, 200);
    ck_assert_str_eq(h_json_str(q.json, "data.0.id"), ca); /* oldest first */
    ck_assert_str_eq(h_json_str(q.json, "data.1.id"), cb);
    h_resp_free(&q);

    h_resp_t r = review(ca, "approve");
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_str_eq(h_json_str(r.json, "status"), "succeeded");
    ck_assert_str_eq(h_json_str(r.json, "payment.status"), "captured");
    ck_assert(!strncmp(h_json_str(r.json, "order.id"), "ord_", 4));
    h_resp_free(&r);
    r = review(ca, "approve"); /* replay */
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(h_json_str(r.json, "status"), "succeeded");
    h_resp_free(&r);
    r = review(ca, "reject");
    h_assert_error(&r, 409, ERR_INVALID_STATE);
    h_resp_free(&r);
    ck_assert_int_eq(h_sql_long(st->db, "SELECT count(*) FROM gateway.events WHERE object_id = "
                                        "'%s' AND type = 'order.confirmed'",
                                ca),
                     1);

    /* with an Idempotency-Key: checked, replayed as stored, bound to its body */
    char longkey[300];
    memset(longkey, 'k', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    r = review_keyed(cb, "reject", longkey);
    h_assert_error(&r, 400, ERR_IDEMPOTENCY_KEY_INVALID);
    h_resp_free(&r);
    r = review_keyed(cb, "reject", "rev-b");
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_str_eq(h_json_str(r.json, "status"), "declined");
    ck_assert_str_eq(h_json_str(r.json, "payment.status"), "voided");
    ck_assert_str_eq(h_json_str(r.json, "error.code"), "fraud_declined");
    char *first = strdup(r.body);
    h_resp_free(&r);
    r = review_keyed(cb, "reject", "rev-b"); /* replay */
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, first);
    char *rep = h_resp_header(&r, "Idempotent-Replayed");
    ck_assert_ptr_nonnull(rep);
    ck_assert_str_eq(rep, "true");
    free(rep);
    h_resp_free(&r);
    free(first);
    r = review_keyed(cb, "approve", "rev-b"); /* same key, another body */
    h_assert_error(&r, 422, ERR_KEY_REUSED);
    h_resp_free(&r);
    r = review(cb, "reject"); /* replay without a key */
    ck_assert_int_eq(r.status, 200);
    h_resp_free(&r);
    r = review(cb, "approve");
    h_assert_error(&r, 409, ERR_INVALID_STATE);
    h_resp_free(&r);
    ck_assert(h_wait_until(released, NULL, 10000));
    ck_assert_int_eq(h_stack_stock(st, "SKU-BLUE-MUG", "committed") >= 1, 1);

    q = h_get(st->gw[0], "/v1/reviews", st->m.sk);
    ck_assert_int_eq(json_array_size(json_object_get(q.json, "data")), 0);
    h_resp_free(&q);
    /* both decisions are in the PCI scope log */
    ck_assert_int_eq(h_sql_long(st->db, "SELECT count(*) FROM audit.events WHERE action IN "
                                        "('review.approve', 'review.reject')"),
                     2);
    free(ca);
    free(cb);
}
END_TEST

static char *held_checkout(const char *sku)
{
    h_resp_t a = checkout_as("4242424242424242", sku, 1,
                             "{\"customer\":{\"email\":\"late@review.example\"}}");
    ck_assert_msg(a.status == 200, "%ld %s", a.status, a.body);
    ck_assert_str_eq(h_json_str(a.json, "status"), "requires_review");
    char *id = strdup(h_json_str(a.json, "id"));
    h_resp_free(&a);
    /* two days later: its inventory hold (24 h) has ended */
    free(h_sql(st->db, "UPDATE gateway.checkouts SET created_at = now() - interval '2 days' "
                       "WHERE id = '%s' RETURNING 1", id));
    return id;
}

static bool hold_committed(void *cls)
{
    return h_sql_long(st->db, "SELECT count(*) FROM gateway.checkouts WHERE id = '%s' AND "
                              "reservation_state = 'committed'", (const char *)cls) == 1;
}

/* An approval after the checkout's inventory hold ended takes the stock again
 * under a new reservation and commits that; when the stock is gone by then,
 * the approval is refused (409 out_of_stock), nothing is captured, and the
 * review can still be rejected. */
START_TEST(approving_after_the_hold_ended_takes_the_stock_again_or_refuses)
{
    put_rules();
    char *a = held_checkout("SKU-RED-MUG");
    char *old = h_sql(st->db, "SELECT reservation_id FROM gateway.checkouts WHERE id = '%s'", a);
    h_resp_t r = review(a, "approve");
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_str_eq(h_json_str(r.json, "status"), "succeeded");
    h_resp_free(&r);
    char *now_id = h_sql(st->db, "SELECT reservation_id FROM gateway.checkouts WHERE id = '%s'", a);
    ck_assert_str_ne(now_id, old);
    ck_assert(h_wait_until(hold_committed, a, 10000));

    /* the last print: its old hold still stands at inventory, so a new one
     * finds none left, as when someone else bought it after the hold ended */
    long charges = h_stack_charges(st, "captured");
    char *b = held_checkout("SKU-LAST-ONE");
    r = review(b, "approve");
    h_assert_error(&r, 409, ERR_OUT_OF_STOCK);
    ck_assert_str_eq(h_json_str(r.json, "error.lines.0.sku"), "SKU-LAST-ONE");
    h_resp_free(&r);
    ck_assert_int_eq(h_stack_charges(st, "captured"), charges);
    ck_assert_int_eq(h_sql_long(st->db, "SELECT count(*) FROM gateway.checkouts WHERE id = '%s' "
                                        "AND status = 'requires_review'", b),
                     1);
    r = review(b, "reject");
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_str_eq(h_json_str(r.json, "payment.status"), "voided");
    h_resp_free(&r);
    free(a);
    free(b);
    free(old);
    free(now_id);
}
END_TEST

/* A checkout with customer.ip `body_ip`, by `key`, arriving through the
 * (trusted) proxy as from `from_ip`. */
static h_resp_t checkout_from(const char *key, const char *body_ip, const char *from_ip)
{
    char *tok = h_stack_token(st, "4242424242424242");
    char extra[96], url[256], idem[96], xff[64];
    snprintf(extra, sizeof extra, "{\"customer\":{\"ip\":\"%s\"}}", body_ip);
    char *body = h_stack_checkout_body(tok, "SKU-RED-MUG", 1, extra);
    static int n;
    snprintf(url, sizeof url, "%s/v1/checkouts", st->gw[0]->url);
    snprintf(idem, sizeof idem, "Idempotency-Key: from-%d-%d", (int)getpid(), ++n);
    snprintf(xff, sizeof xff, "X-Forwarded-For: %s", from_ip);
    const char *headers[] = {idem, xff, NULL};
    h_resp_t r = h_http("POST", url, key, body, headers);
    free(body);
    free(tok);
    return r;
}

/* That checkout is declined by the list `declined_by`, or (NULL) approved. */
static void scored_as(const char *key, const char *body_ip, const char *from_ip,
                      const char *declined_by)
{
    h_resp_t r = checkout_from(key, body_ip, from_ip);
    if (declined_by) {
        h_assert_error(&r, 402, ERR_FRAUD_DECLINED);
        ck_assert_msg(strstr(r.body, declined_by) != NULL, "%s", r.body);
    } else {
        ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
        ck_assert_str_eq(h_json_str(r.json, "fraud.decision"), "approve");
    }
    h_resp_free(&r);
}

START_TEST(a_publishable_key_cannot_choose_the_address_it_is_scored_by)
{
    char url[256];
    snprintf(url, sizeof url, "%s/v1/fraud/rules", st->gw[0]->url);
    h_resp_t r = h_http("PUT", url, st->m.sk,
                        "{\"block\":{\"ips\":[\"192.0.2.44\"]},"
                        "\"allow\":{\"ips\":[\"198.51.100.9\"]},\"rules\":[]}",
                        NULL);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    h_resp_free(&r);
    long charges = h_stack_charges(st, NULL);
    /* the browser claims an allow-listed address from a blocked one */
    scored_as(st->m.pk, "198.51.100.9", "192.0.2.44", "block.ips");
    /* nor does a blocked address in the body stop a shopper elsewhere */
    scored_as(st->m.pk, "192.0.2.44", "203.0.113.50", NULL);
    ck_assert_int_eq(h_stack_charges(st, NULL) - charges, 1);
    /* the merchant's server vouches for the shopper's address */
    scored_as(st->m.sk, "192.0.2.44", "203.0.113.50", "block.ips");
    scored_as(st->m.sk, "198.51.100.9", "192.0.2.44", NULL);
    ck_assert_int_eq(h_stack_charges(st, NULL) - charges, 2);
}
END_TEST

int main(void)
{
    h_init("it_payments");
    Suite *s = suite_create("payments");
    TCase *tc = h_tcase("payments", 900);
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_add_test(tc, capture_refund_void_rules);
    tcase_add_test(tc, unknown_refund_stays_unknown_until_the_provider_answers);
    tcase_add_test(tc, a_key_whose_request_died_before_recording_is_released);
    tcase_add_test(tc, card_testing_from_one_ip_is_declined_by_fraud);
    tcase_add_test(tc, refused_card_numbers_count_against_the_ip);
    tcase_add_test(tc, block_list_declines_without_calling_a_provider_and_allow_beats_rules);
    tcase_add_test(tc, review_queue_approve_captures_and_reject_voids_and_releases);
    tcase_add_test(tc, approving_after_the_hold_ended_takes_the_stock_again_or_refuses);
    tcase_add_test(tc, a_publishable_key_cannot_choose_the_address_it_is_scored_by);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
