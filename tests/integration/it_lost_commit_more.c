/* Integration: the rest of the lost-COMMIT audit (it_lost_commit.c has the
 * first six). A wire-protocol proxy (tests/harness/pgproxy.c) drops both
 * connections once, at the moment a chosen transaction is durable in
 * PostgreSQL but before the daemon hears so. db_txn_run then runs the
 * transaction again on a new connection, and that second run must recognise
 * its own committed effects: same answer to the client, no second row,
 * event, audit record or provider call, no 409/404/422 for its own write.
 *
 * gatewayd (its pool through the proxy):
 *   - PUT /v1/providers/{name} (a creation), PUT /v1/fraud/rules with the
 *     version read, PUT /v1/routing, POST /v1/merchant, PUT /v1/webhooks/{id}
 *     (an update), POST /v1/events/{id}/redeliver;
 *   - void and refund (operation begin, finish, stored answer), review
 *     approve and reject;
 *   - a fraud decline finished in commit 1, the outbox recording delivery
 *     results, the recovery worker settling an unknown attempt, and the
 *     failover transition between two providers;
 * gatewayctl (its --db through the proxy): merchant create, key rotate, key
 * revoke; vaultd (its database.conninfo through the proxy): tokenize,
 * detokenize's audit record, data-key rotation.
 * Every test also asserts that the proxy really lost one COMMIT answer.
 * The setup and checks shared with it_lost_commit.c are in
 * tests/harness/lostcommit.c. */
#include "tests/harness/lostcommit.h"
#include <pthread.h>
#include <string.h>
#include <unistd.h>

/* Markers: SQL text the daemons send (gateway/db/, pci/audit.c,
 * gateway/ctl/gatewayctl.c via gateway/db/apikey.c, vault/vaultd/vdb.c). */
#define MARK_PROVIDER_UPSERT   "INSERT INTO gateway.providers (merchant_id"
#define MARK_FRAUD_RULES       "INSERT INTO gateway.fraud_rules AS r"
#define MARK_ROUTING           "INSERT INTO gateway.routing (merchant_id, doc)"
#define MARK_MERCHANT_RENAME   "UPDATE gateway.merchants SET name"
#define MARK_WEBHOOK_UPDATE    "UPDATE gateway.webhook_endpoints SET url"
#define MARK_EVENT_REDELIVER   "w.url FROM gateway.events ev "
#define MARK_OP_BEGIN          "gateway.payment_op_begin("
#define MARK_OP_FINISH         "gateway.payment_op_finish("
#define MARK_IDEM_STORE        "response_body = $4, updated_at = now() WHERE merchant_id = $1 AND key = $2"
#define MARK_CHECKOUT_FINISH   "gateway.checkout_finish("
#define MARK_OUTBOX_RESULTS    "UPDATE gateway.outbox o SET state = v.state"
#define MARK_TRANSITION        "gateway.attempt_transition("
#define MARK_MERCHANT_INSERT   "INSERT INTO gateway.merchants (id, name)"
#define MARK_APIKEY_INSERT     "INSERT INTO gateway.api_keys (id"
#define MARK_APIKEY_REVOKE     "UPDATE gateway.api_keys SET revoked_at = now()"
#define MARK_VAULT_CARD_INSERT "INSERT INTO vault.cards (token"
#define MARK_AUDIT_INSERT      "INSERT INTO audit.events (actor"
#define MARK_VAULT_KEY_INSERT  "INSERT INTO vault.data_keys (version"
#define MARK_VAULT_REWRAP      "UPDATE vault.cards SET key_version"
#define MARK_VAULT_RETIRE      "UPDATE vault.keyring SET min_decrypt_version"

/* Sum of a ledger field ("refunded", "captured") over both provider
 * sandboxes. */
static long ledger_sum(h_stack_t *st, const char *field)
{
    long sum = 0;
    h_sandbox_t *sbs[] = {st->stripe, st->adyen};
    for (size_t k = 0; k < 2; k++) {
        json_t *l = h_sandbox_charges(sbs[k]);
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(l, "charges"), i, c) sum +=
            (long)json_integer_value(json_object_get(c, field));
        json_decref(l);
    }
    return sum;
}

static const char *rules_doc =
    "{\"review_threshold\":60,\"decline_threshold\":85,"
    "\"block\":{\"emails\":[],\"email_domains\":[],\"ips\":[],"
    "\"fingerprints\":[],\"bins\":[],\"countries\":[],\"devices\":[]},"
    "\"allow\":{\"emails\":[],\"email_domains\":[],\"ips\":[],"
    "\"fingerprints\":[],\"bins\":[],\"countries\":[],\"devices\":[]},"
    "\"rules\":[{\"id\":\"review_me\",\"if\":{\"feature\":\"email_domain\",\"op\":\"eq\","
    "\"value\":\"review.example\"},\"score\":0,\"action\":\"review\",\"reason\":\"held for "
    "manual review\"},{\"id\":\"deny_domain\",\"if\":{\"feature\":\"email_domain\",\"op\":"
    "\"eq\",\"value\":\"deny.example\"},\"score\":0,\"action\":\"decline\",\"reason\":\"denied "
    "domain\"}]}";

static void put_rules(h_stack_t *st)
{
    h_resp_t r = lc_sk_send(st, "PUT", "/v1/fraud/rules", rules_doc, NULL);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    h_resp_free(&r);
}

/* ---------------------------------------------------- configuration PUTs */

/* A new provider: the re-run's upsert meets its own row (xmax <> 0) and
 * calls it an update. */
START_TEST(provider_put_whose_commit_answer_is_lost_answers_201_and_audits_one_create)
{
    h_stack_opts_t o = {.no_providers = true};
    lc_t t = lc_start(&o);
    h_stack_t *st = t.st;
    char body[1024];
    snprintf(body, sizeof body,
             "{\"type\":\"stripe\",\"base_url\":\"%s\",\"credentials\":{\"secret_key\":"
             "\"sk_test_portcullis_sandbox\"},\"priority\":1,\"connect_timeout_ms\":500,"
             "\"timeout_ms\":2000}",
             st->stripe->url);
    pgproxy_arm(t.px, MARK_PROVIDER_UPSERT);
    h_resp_t r = lc_sk_send(st, "PUT", "/v1/providers/stripe", body, NULL);
    ck_assert_int_eq(pgproxy_fired(t.px), 1);
    long creates = lc_audits(st, "provider.create"), updates = lc_audits(st, "provider.update");
    ck_assert_msg(r.status == 201,
                  "PUT of a new provider after a lost COMMIT: %ld %s (audit: %ld "
                  "provider.create, %ld provider.update)",
                  r.status, r.body, creates, updates);
    h_resp_free(&r);
    ck_assert_int_eq(lc_count(st, "SELECT count(*) FROM gateway.providers"), 1);
    ck_assert_int_eq(creates, 1);
    ck_assert_int_eq(updates, 0);
    /* the sealed credentials are the request's: a checkout pays with them */
    h_resp_t p = h_stack_pay(st, 0, "4242424242424242", "SKU-RED-MUG", 1, NULL);
    ck_assert_msg(p.status == 200, "%ld %s", p.status, p.body);
    h_resp_free(&p);
    ck_assert_int_eq(pgproxy_fired(t.px), 1);
    lc_stop(&t);
}
END_TEST

/* With the version read (optimistic concurrency): the re-run finds the
 * version its own first run wrote and calls it a concurrent change. */
START_TEST(fraud_rules_put_with_version_whose_commit_answer_is_lost_answers_200_once)
{
    lc_t t = lc_start(NULL);
    h_stack_t *st = t.st;
    json_t *doc = json_loads(rules_doc, 0, NULL);
    json_object_set_new(doc, "version", json_integer(0)); /* the default set was read */
    char *body = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    pgproxy_arm(t.px, MARK_FRAUD_RULES);
    h_resp_t r = lc_sk_send(st, "PUT", "/v1/fraud/rules", body, NULL);
    ck_assert_int_eq(pgproxy_fired(t.px), 1);
    long stored = h_sql_long(st->db,
                             "SELECT version FROM gateway.fraud_rules WHERE "
                             "merchant_id = '%s'",
                             st->m.id);
    ck_assert_msg(r.status == 200,
                  "PUT /v1/fraud/rules {version:0} after a lost COMMIT: %ld %s (stored "
                  "version %ld)",
                  r.status, r.body, stored);
    ck_assert_int_eq(h_json_int(r.json, "version"), 1);
    h_resp_free(&r);
    ck_assert_int_eq(stored, 1);
    ck_assert_int_eq(lc_audits(st, "fraud.rules.update"), 1);
    ck_assert_int_eq(pgproxy_fired(t.px), 1);
    free(body);
    lc_stop(&t);
}
END_TEST

START_TEST(routing_put_whose_commit_answer_is_lost_answers_200_and_audits_once)
{
    lc_t t = lc_start(NULL);
    h_stack_t *st = t.st;
    const char *doc = "{\"rules\":[{\"if\":{\"currency\":\"EUR\",\"amount_gte\":100000},"
                      "\"providers\":[\"adyen\",\"stripe\"]}],\"default\":[\"stripe\",\"adyen\"]}";
    pgproxy_arm(t.px, MARK_ROUTING);
    h_resp_t r = lc_sk_send(st, "PUT", "/v1/routing", doc, NULL);
    ck_assert_int_eq(pgproxy_fired(t.px), 1);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    h_resp_free(&r);
    ck_assert_int_eq(lc_count(st, "SELECT count(*) FROM gateway.routing"), 1);
    r = h_get(st->gw[0], "/v1/routing", st->m.sk);
    ck_assert_int_eq(h_json_int(r.json, "routing.rules.0.if.amount_gte"), 100000);
    h_resp_free(&r);
    ck_assert_int_eq(lc_audits(st, "routing.update"), 1);
    lc_stop(&t);
}
END_TEST

START_TEST(merchant_post_whose_commit_answer_is_lost_answers_200_and_audits_once)
{
    lc_t t = lc_start(NULL);
    h_stack_t *st = t.st;
    pgproxy_arm(t.px, MARK_MERCHANT_RENAME);
    h_resp_t r = lc_sk_send(st, "POST", "/v1/merchant", "{\"name\":\"Renamed Shop\"}", NULL);
    ck_assert_int_eq(pgproxy_fired(t.px), 1);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_str_eq(h_json_str(r.json, "name"), "Renamed Shop");
    h_resp_free(&r);
    lc_assert_sql_str(st->db, "Renamed Shop", "SELECT name FROM gateway.merchants WHERE id = '%s'",
                      st->m.id);
    ck_assert_int_eq(lc_audits(st, "merchant.update"), 1);
    lc_stop(&t);
}
END_TEST

/* An update (no new secret): the re-run cannot tell its own write from
 * nothing and updates and audits again. */
START_TEST(webhook_update_whose_commit_answer_is_lost_answers_200_and_audits_once)
{
    lc_t t = lc_start(NULL);
    h_stack_t *st = t.st;
    pgproxy_arm(t.px, MARK_WEBHOOK_UPDATE);
    h_resp_t r =
        lc_sk_send(st, "PUT", "/v1/webhooks/platform", "{\"events\":[\"order.confirmed\"]}", NULL);
    ck_assert_int_eq(pgproxy_fired(t.px), 1);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_ptr_null(json_object_get(r.json, "secret")); /* not a creation or rotation */
    h_resp_free(&r);
    ck_assert_int_eq(h_sql_long(st->db, "SELECT count(*) FROM gateway.webhook_endpoints WHERE id = "
                                        "'platform' AND events = ARRAY['order.confirmed']"),
                     1);
    ck_assert_int_eq(lc_audits(st, "webhook.create"), 1); /* the stack's */
    ck_assert_int_eq(lc_audits(st, "webhook.update"), 1);
    lc_stop(&t);
}
END_TEST

/* --------------------------------------------------------------- events */

/* The re-run inserts the outbox rows again: the receiver gets the event
 * once more than asked. */
START_TEST(event_redeliver_whose_commit_answer_is_lost_delivers_once_more_not_twice)
{
    lc_t t = lc_start(NULL);
    h_stack_t *st = t.st;
    char *chk = lc_paid_checkout(st, "4242424242424242");
    lc_assert_delivered(st, "order.confirmed", chk, 1);
    char *evt = h_sql(st->db, "SELECT id FROM gateway.events WHERE type = 'order.confirmed'");
    ck_assert_ptr_nonnull(evt);
    char path[160];
    snprintf(path, sizeof path, "/v1/events/%s/redeliver", evt);
    pgproxy_arm(t.px, MARK_EVENT_REDELIVER);
    h_resp_t r = h_post(st->gw[0], path, st->m.sk, NULL);
    ck_assert_int_eq(pgproxy_fired(t.px), 1);
    ck_assert_msg(r.status == 202, "%ld %s", r.status, r.body);
    ck_assert_int_eq(h_json_int(r.json, "queued"), 1);
    h_resp_free(&r);
    long rows =
        h_sql_long(st->db, "SELECT count(*) FROM gateway.outbox WHERE event_id = '%s'", evt);
    long audits = lc_audits(st, "event.redeliver");
    long dl = lc_wait_deliveries(st, "order.confirmed", chk, 3, 3000);
    ck_assert_msg(rows == 2 && audits == 1 && dl == 2,
                  "one redelivery asked: %ld outbox rows for the event (want 2), %ld "
                  "event.redeliver audit records (want 1), %ld deliveries (want 2)",
                  rows, audits, dl);
    lc_assert_delivered(st, "order.confirmed", chk, 2);
    free(evt);
    free(chk);
    lc_stop(&t);
}
END_TEST

/* -------------------------------------------------------- void and refund */

/* A held authorization voided (with an Idempotency-Key) while the
 * transaction after `marker` loses its COMMIT answer. */
static void void_with_lost_commit(const char *marker, const char *what)
{
    lc_t t = lc_start(NULL);
    h_stack_t *st = t.st;
    lc_payment_t p = lc_payment_new(st, "{\"payment\":{\"capture\":false}}", NULL, what);
    pgproxy_arm(t.px, marker);
    h_resp_t r = lc_pay_op(st, p.pay, "void", NULL, p.key);
    ck_assert_int_eq(pgproxy_fired(t.px), 1);
    ck_assert_msg(r.status == 200, "void after a lost %s commit: %ld %s", what, r.status, r.body);
    ck_assert_str_eq(h_json_str(r.json, "status"), "voided");
    ck_assert_int_eq(h_stack_charges(st, NULL), 1);
    ck_assert_int_eq(h_stack_charges(st, "voided"), 1);
    ck_assert_int_eq(h_sql_long(st->db,
                                "SELECT count(*) FROM gateway.payment_operations WHERE "
                                "payment_id = '%s' AND kind = 'void' AND state = 'succeeded'",
                                p.pay),
                     1);
    ck_assert_int_eq(h_sql_long(st->db,
                                "SELECT count(*) FROM gateway.payment_operations WHERE "
                                "payment_id = '%s'",
                                p.pay),
                     1);
    lc_assert_sql_str(st->db, "voided", "SELECT status FROM gateway.payments WHERE id = '%s'",
                      p.pay);
    ck_assert_int_eq(lc_events(st, "payment.voided"), 1);
    ck_assert_int_eq(lc_audits(st, "payment.void"), 1);
    lc_assert_replay(lc_pay_op(st, p.pay, "void", NULL, p.key), &r);
    lc_assert_delivered(st, "payment.voided", p.chk, 1);
    ck_assert_int_eq(pgproxy_fired(t.px), 1);
    h_resp_free(&r);
    lc_payment_free(&p);
    lc_stop(&t);
}

START_TEST(void_whose_op_begin_commit_answer_is_lost_voids_once)
{
    void_with_lost_commit(MARK_OP_BEGIN, "void-begin");
}
END_TEST

START_TEST(void_whose_op_finish_commit_answer_is_lost_voids_once)
{
    void_with_lost_commit(MARK_OP_FINISH, "void-finish");
}
END_TEST

/* A partial refund of a captured payment (with an Idempotency-Key) while
 * the transaction after `marker` loses its COMMIT answer. */
static void refund_with_lost_commit(const char *marker, const char *what)
{
    lc_t t = lc_start(NULL);
    h_stack_t *st = t.st;
    lc_payment_t p = lc_payment_new(st, NULL, "captured", what);
    const char *amount = "{\"amount\":300}";
    pgproxy_arm(t.px, marker);
    h_resp_t r = lc_pay_op(st, p.pay, "refunds", amount, p.key);
    ck_assert_int_eq(pgproxy_fired(t.px), 1);
    ck_assert_msg(r.status == 200, "refund after a lost %s commit: %ld %s", what, r.status, r.body);
    ck_assert_str_eq(h_json_str(r.json, "object"), "refund");
    ck_assert_str_eq(h_json_str(r.json, "status"), "succeeded");
    ck_assert_int_eq(h_json_int(r.json, "amount"), 300);
    ck_assert_int_eq(h_json_int(r.json, "payment.refunded_amount"), 300);
    ck_assert_str_eq(h_json_str(r.json, "payment.status"), "partially_refunded");
    const char *re = h_json_str(r.json, "id");
    ck_assert_ptr_nonnull(re);
    /* the money moved once */
    ck_assert_int_eq(ledger_sum(st, "refunded"), 300);
    ck_assert_int_eq(h_stack_charges(st, NULL), 1);
    ck_assert_int_eq(h_sql_long(st->db,
                                "SELECT count(*) FROM gateway.payment_operations WHERE "
                                "payment_id = '%s' AND kind = 'refund'",
                                p.pay),
                     1);
    lc_assert_sql_str(st->db, "succeeded",
                      "SELECT state FROM gateway.payment_operations WHERE id = '%s'", re);
    ck_assert_int_eq(
        h_sql_long(st->db, "SELECT refunded_amount FROM gateway.payments WHERE id = '%s'", p.pay),
        300);
    ck_assert_int_eq(lc_events(st, "payment.refunded"), 1);
    ck_assert_int_eq(lc_audits(st, "payment.refund"), 1);
    /* the stored answer is the one given */
    lc_assert_stored_answer(st, p.key, 200, r.body);
    lc_assert_replay(lc_pay_op(st, p.pay, "refunds", amount, p.key), &r);
    ck_assert_int_eq(ledger_sum(st, "refunded"), 300);
    lc_assert_delivered(st, "payment.refunded", p.chk, 1);
    ck_assert_int_eq(pgproxy_fired(t.px), 1);
    h_resp_free(&r);
    lc_payment_free(&p);
    lc_stop(&t);
}

START_TEST(refund_whose_op_begin_commit_answer_is_lost_refunds_once)
{
    refund_with_lost_commit(MARK_OP_BEGIN, "refund-begin");
}
END_TEST

START_TEST(refund_whose_op_finish_commit_answer_is_lost_refunds_once)
{
    refund_with_lost_commit(MARK_OP_FINISH, "refund-finish");
}
END_TEST

START_TEST(refund_whose_stored_answer_commit_answer_is_lost_refunds_once)
{
    refund_with_lost_commit(MARK_IDEM_STORE, "refund-store");
}
END_TEST

/* ---------------------------------------------------------------- review */

static char *held_for_review(h_stack_t *st)
{
    put_rules(st);
    h_resp_t a = h_stack_pay(st, 0, "4242424242424242", "SKU-BLUE-MUG", 1,
                             "{\"customer\":{\"email\":\"held@review.example\"}}");
    ck_assert_msg(a.status == 200, "%ld %s", a.status, a.body);
    ck_assert_str_eq(h_json_str(a.json, "status"), "requires_review");
    ck_assert_str_eq(h_json_str(a.json, "payment.status"), "authorized");
    char *chk = strdup(h_json_str(a.json, "id"));
    h_resp_free(&a);
    return chk;
}

static h_resp_t review(h_stack_t *st, const char *chk, const char *decision, const char *key)
{
    char path[160], body[64];
    snprintf(path, sizeof path, "/v1/checkouts/%s/review", chk);
    snprintf(body, sizeof body, "{\"decision\":\"%s\"}", decision);
    return lc_sk_send(st, "POST", path, body, key);
}

/* What one review decision must leave behind. The payment's status names
 * both the one charge's state in the ledger and its event
 * (payment.<payment_status>). */
typedef struct {
    const char *marker;         /* the transaction whose COMMIT answer is lost */
    const char *decision;       /* "approve" or "reject"; audited as review.<decision> */
    const char *status;         /* the checkout's, in the answer */
    const char *payment_status; /* "captured" or "voided" */
    long orders;                /* 1: the answer's order.id is the checkout's order */
    const char *event;          /* the checkout's own event besides the payment's */
    const char *outbox;         /* the one inventory outbox row's kind */
    const char *delivered[3];   /* events the receiver gets once each, NULL-ended */
} review_case_t;

/* A checkout held for review, decided (with an Idempotency-Key) while the
 * transaction after c->marker loses its COMMIT answer. */
static void review_with_lost_commit(const review_case_t *c)
{
    lc_t t = lc_start(NULL);
    h_stack_t *st = t.st;
    char *chk = held_for_review(st);
    char *key = lc_key(c->decision);
    pgproxy_arm(t.px, c->marker);
    h_resp_t r = review(st, chk, c->decision, key);
    ck_assert_int_eq(pgproxy_fired(t.px), 1);
    ck_assert_msg(r.status == 200, "%s after a lost commit: %ld %s", c->decision, r.status, r.body);
    ck_assert_str_eq(h_json_str(r.json, "status"), c->status);
    ck_assert_str_eq(h_json_str(r.json, "payment.status"), c->payment_status);
    if (c->orders) {
        const char *ord = h_json_str(r.json, "order.id");
        ck_assert_ptr_nonnull(ord);
        lc_assert_sql_str(st->db, ord, "SELECT id FROM gateway.orders WHERE checkout_id = '%s'",
                          chk);
    }
    ck_assert_int_eq(lc_count(st, "SELECT count(*) FROM gateway.orders"), c->orders);
    ck_assert_int_eq(h_stack_charges(st, NULL), 1);
    ck_assert_int_eq(h_stack_charges(st, c->payment_status), 1);
    ck_assert_int_eq(lc_count(st, "SELECT count(*) FROM gateway.payment_operations"), 1);
    char name[64];
    ck_assert_int_eq(lc_events(st, c->event), 1);
    snprintf(name, sizeof name, "payment.%s", c->payment_status);
    ck_assert_int_eq(lc_events(st, name), 1);
    snprintf(name, sizeof name, "review.%s", c->decision);
    ck_assert_int_eq(lc_audits(st, name), 1);
    ck_assert_int_eq(
        h_sql_long(st->db, "SELECT count(*) FROM gateway.outbox WHERE kind = '%s'", c->outbox), 1);
    lc_assert_replay(review(st, chk, c->decision, key), &r);
    for (const char *const *e = c->delivered; *e; e++)
        lc_assert_delivered(st, *e, chk, 1);
    ck_assert_int_eq(pgproxy_fired(t.px), 1);
    h_resp_free(&r);
    free(key);
    free(chk);
    lc_stop(&t);
}

START_TEST(review_approve_whose_op_finish_commit_answer_is_lost_confirms_one_order)
{
    review_with_lost_commit(&(review_case_t){
        .marker = MARK_OP_FINISH,
        .decision = "approve",
        .status = "succeeded",
        .payment_status = "captured",
        .orders = 1,
        .event = "order.confirmed",
        .outbox = "inventory_commit",
        .delivered = {"order.confirmed", "payment.captured", NULL},
    });
}
END_TEST

START_TEST(review_reject_whose_op_begin_commit_answer_is_lost_voids_once)
{
    review_with_lost_commit(&(review_case_t){
        .marker = MARK_OP_BEGIN,
        .decision = "reject",
        .status = "declined",
        .payment_status = "voided",
        .orders = 0,
        .event = "checkout.declined",
        .outbox = "inventory_release",
        .delivered = {"checkout.declined", NULL},
    });
}
END_TEST

/* ------------------------------------------------------------- checkouts */

/* A fraud decline is commit 1 and its finish in one READ COMMITTED
 * transaction; the re-run's begin recognises its key (0011) and the finish
 * returns the stored answer. */
START_TEST(fraud_decline_whose_commit_answer_is_lost_answers_402_once)
{
    lc_t t = lc_start(NULL);
    h_stack_t *st = t.st;
    put_rules(st);
    lc_checkout_t co =
        lc_checkout_new(st, "{\"customer\":{\"email\":\"someone@deny.example\"}}", "decline");
    pgproxy_arm(t.px, MARK_CHECKOUT_FINISH);
    h_resp_t r = lc_checkout_send(st, &co);
    ck_assert_int_eq(pgproxy_fired(t.px), 1);
    h_assert_error(&r, 402, ERR_FRAUD_DECLINED);
    const char *chk = h_json_str(r.json, "id");
    ck_assert_ptr_nonnull(chk);
    lc_assert_sql_str(st->db, "declined", "SELECT status FROM gateway.checkouts WHERE id = '%s'",
                      chk);
    ck_assert_int_eq(lc_count(st, "SELECT count(*) FROM gateway.checkouts"), 1);
    ck_assert_int_eq(lc_events(st, "checkout.declined"), 1);
    ck_assert_int_eq(lc_count(st, "SELECT count(*) FROM gateway.events"), 1);
    ck_assert_int_eq(h_stack_charges(st, NULL), 0);
    lc_assert_stored_answer(st, co.key, 402, NULL);
    lc_assert_replay(lc_checkout_send(st, &co), &r);
    lc_assert_delivered(st, "checkout.declined", chk, 1);
    ck_assert_int_eq(pgproxy_fired(t.px), 1);
    h_resp_free(&r);
    lc_checkout_free(&co);
    lc_stop(&t);
}
END_TEST

static bool checkout_settled(void *cls)
{
    lc_t *t = cls;
    return h_sql_long(t->st->db, "SELECT count(*) FROM gateway.checkouts WHERE status NOT IN "
                                 "('pending', 'processing')") == 1;
}

typedef struct {
    h_stack_t *st;
    const lc_checkout_t *req;
    h_resp_t r;
} co_thread_t;

static void *checkout_thread(void *arg)
{
    co_thread_t *c = arg;
    c->r = lc_checkout_send(c->st, c->req);
    return NULL;
}

/* The recovery worker settles a checkout whose outcome was unknown (the
 * primary charged and held its answer past the timeout, then went down so
 * that no lookup could run) and its checkout_finish loses its COMMIT
 * answer: the re-run finds the checkout finished and changes nothing. */
START_TEST(recovery_finish_whose_commit_answer_is_lost_confirms_one_order)
{
    lc_t t = lc_start(NULL);
    h_stack_t *st = t.st;
    lc_checkout_t req = lc_checkout_new(st, NULL, "recovery");
    h_sandbox_faults(st->stripe,
                     "{\"mode\":\"timeout\",\"after_processing\":true,\"hold_ms\":2500}");
    co_thread_t co = {.st = st, .req = &req};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, checkout_thread, &co), 0);
    usleep(1000 * 1000); /* the authorization is in, its answer held */
    h_sandbox_faults(st->stripe, "{\"mode\":\"down\"}");
    pthread_join(th, NULL);
    h_resp_t r = co.r;
    ck_assert_msg(r.status == 202, "precondition, an unknown outcome: %ld %s", r.status, r.body);
    char *chk = strdup(h_json_str(r.json, "id"));
    h_resp_free(&r);
    ck_assert_int_eq(h_stack_charges(st, NULL), 1);
    /* recovery's lookups cannot run yet: it leaves the checkout alone */
    pgproxy_arm(t.px, MARK_CHECKOUT_FINISH);
    h_sandbox_faults(st->stripe, "{\"mode\":\"none\"}");
    ck_assert_msg(h_wait_until(checkout_settled, &t, 60000), "recovery never settled %s", chk);
    for (int i = 0; i < 100 && pgproxy_fired(t.px) == 0; i++)
        usleep(50 * 1000);
    ck_assert_int_eq(pgproxy_fired(t.px), 1);
    lc_assert_sql_str(st->db, "succeeded", "SELECT status FROM gateway.checkouts WHERE id = '%s'",
                      chk);
    ck_assert_int_eq(h_stack_charges(st, NULL), 1);
    ck_assert_int_eq(lc_count(st, "SELECT count(*) FROM gateway.orders"), 1);
    ck_assert_int_eq(lc_events(st, "order.confirmed"), 1);
    ck_assert_int_eq(lc_count(st, "SELECT count(*) FROM gateway.events"), 1);
    ck_assert_int_eq(lc_count(st, "SELECT count(*) FROM gateway.outbox WHERE kind = "
                                  "'inventory_commit'"),
                     1);
    /* the key's answer is the final one */
    h_resp_t again = lc_checkout_send(st, &req);
    ck_assert_msg(again.status == 200, "replay: %ld %s", again.status, again.body);
    ck_assert_str_eq(h_json_str(again.json, "status"), "succeeded");
    h_resp_free(&again);
    lc_assert_delivered(st, "order.confirmed", chk, 1);
    ck_assert_int_eq(pgproxy_fired(t.px), 1);
    free(chk);
    lc_checkout_free(&req);
    lc_stop(&t);
}
END_TEST

/* The failover transition (attempt 1's outcome, attempt 2 recorded) is a
 * hand-written BEGIN ... COMMIT outside db_txn_run: a lost answer makes the
 * request give up on the second provider although attempt 2 is recorded. */
START_TEST(failover_transition_whose_commit_answer_is_lost_still_pays_with_the_second_provider)
{
    lc_t t = lc_start(NULL);
    h_stack_t *st = t.st;
    h_sandbox_faults(st->stripe, "{\"mode\":\"down\"}");
    lc_checkout_t co = lc_checkout_new(st, NULL, "transition");
    pgproxy_arm(t.px, MARK_TRANSITION);
    h_resp_t r = lc_checkout_send(st, &co);
    h_sandbox_faults(st->stripe, "{\"mode\":\"none\"}");
    ck_assert_int_eq(pgproxy_fired(t.px), 1);
    char *attempts = h_sql(st->db, "SELECT string_agg(seq || ':' || provider || ':' || state, "
                                   "' ' ORDER BY seq) FROM gateway.payment_attempts");
    long charges = h_stack_charges(st, NULL);
    /* what the recovery worker makes of it, for the report */
    bool settled = h_wait_until(checkout_settled, &t, 30000);
    char *final = h_sql(st->db, "SELECT c.status || ' ' || p.status || ' ' || p.provider || ' "
                                "attempts ' || (SELECT string_agg(seq || ':' || provider || ':' "
                                "|| state, ' ' ORDER BY seq) FROM gateway.payment_attempts) FROM "
                                "gateway.checkouts c JOIN gateway.payments p ON p.id = "
                                "c.payment_id");
    ck_assert_msg(r.status == 200,
                  "checkout after a lost transition commit: %ld %s (attempts: %s, charges: "
                  "%ld; %s later: %s, charges %ld)",
                  r.status, r.body, attempts ? attempts : "none", charges,
                  settled ? "settled" : "not settled 30 s", final ? final : "?",
                  h_stack_charges(st, NULL));
    free(final);
    free(attempts);
    ck_assert_str_eq(h_json_str(r.json, "status"), "succeeded");
    ck_assert_str_eq(h_json_str(r.json, "payment.provider"), "adyen");
    const char *chk = h_json_str(r.json, "id");
    ck_assert_int_eq(h_stack_charges(st, NULL), 1);
    ck_assert_int_eq(lc_events(st, "order.confirmed"), 1);
    lc_assert_delivered(st, "order.confirmed", chk, 1);
    ck_assert_int_eq(pgproxy_fired(t.px), 1);
    h_resp_free(&r);
    lc_checkout_free(&co);
    lc_stop(&t);
}
END_TEST

/* ---------------------------------------------------------------- outbox */

static bool outbox_settled(void *cls)
{
    lc_t *t = cls;
    return h_sql_long(t->st->db, "SELECT count(*) FROM gateway.outbox WHERE state <> "
                                 "'delivered'") == 0 &&
           h_sql_long(t->st->db, "SELECT count(*) FROM gateway.checkouts WHERE "
                                 "reservation_state = 'committed'") == 1;
}

/* Recording a round's delivery results is one autocommit statement with no
 * retry; its answer lost, the results are durable all the same and nothing
 * goes out twice. */
START_TEST(outbox_results_whose_commit_answer_is_lost_deliver_once)
{
    lc_t t = lc_start(NULL);
    h_stack_t *st = t.st;
    long committed = h_stack_stock(st, "SKU-RED-MUG", "committed");
    pgproxy_arm(t.px, MARK_OUTBOX_RESULTS);
    char *chk = lc_paid_checkout(st, "4242424242424242");
    lc_assert_delivered(st, "order.confirmed", chk, 1);
    ck_assert_int_eq(pgproxy_fired(t.px), 1);
    ck_assert_msg(h_wait_until(outbox_settled, &t, 20000), "outbox rows not all delivered");
    ck_assert_int_eq(lc_count(st, "SELECT count(*) FROM gateway.outbox"), 2);
    ck_assert_int_eq(lc_count(st, "SELECT COALESCE(max(attempts), 0) FROM gateway.outbox"), 1);
    ck_assert_int_eq(h_stack_stock(st, "SKU-RED-MUG", "committed") - committed, 1);
    usleep(700 * 1000);
    lc_assert_delivered(st, "order.confirmed", chk, 1);
    free(chk);
    lc_stop(&t);
}
END_TEST

/* ------------------------------------------------------------ gatewayctl */

typedef struct {
    char *db;
    pgproxy_t *px;
    char *ci;
} ctl_t;

static ctl_t ctl_start(void)
{
    ctl_t c;
    c.db = h_db_create();
    c.px = lc_proxy_start();
    c.ci = pgproxy_conninfo(c.px, c.db, "gateway");
    return c;
}

static void ctl_stop(ctl_t *c)
{
    pgproxy_stop(c->px);
    h_db_drop(c->db);
    free(c->db);
    free(c->ci);
}

/* Runs gatewayctl while the transaction after `marker` loses its COMMIT
 * answer, and asserts that it did; returns the exit code, stdout in *out. */
static int ctl_run_lost(ctl_t *c, const char *marker, const char *const args[], char **out)
{
    pgproxy_arm(c->px, marker);
    *out = NULL;
    int rc = h_gatewayctl(c->db, out, args);
    ck_assert_int_eq(pgproxy_fired(c->px), 1);
    return rc;
}

/* The re-run inserts the same merchant id again: a unique violation, so
 * the command fails although the merchant and its keys exist (and the keys
 * were never shown). */
START_TEST(gatewayctl_merchant_create_whose_commit_answer_is_lost_succeeds_once)
{
    ctl_t c = ctl_start();
    char *out;
    const char *args[] = {"merchant", "create", "Lost Shop", "--json", "--db", c.ci, NULL};
    int rc = ctl_run_lost(&c, MARK_MERCHANT_INSERT, args, &out);
    long merchants =
        h_sql_long(c.db, "SELECT count(*) FROM gateway.merchants WHERE name = 'Lost Shop'");
    long keys = h_sql_long(c.db, "SELECT count(*) FROM gateway.api_keys k JOIN gateway.merchants "
                                 "m ON m.id = k.merchant_id WHERE m.name = 'Lost Shop'");
    ck_assert_msg(rc == 0,
                  "gatewayctl merchant create after a lost COMMIT exited %d: %s (merchants "
                  "named so: %ld, their keys: %ld)",
                  rc, out ? out : "", merchants, keys);
    json_t *j = json_loads(out, 0, NULL);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(h_json_str(j, "merchant.name"), "Lost Shop");
    json_decref(j);
    ck_assert_int_eq(merchants, 1);
    ck_assert_int_eq(keys, 3);
    ck_assert_int_eq(h_sql_long(c.db, "SELECT count(*) FROM audit.events WHERE action = "
                                      "'merchant.create'"),
                     1);
    free(out);
    ctl_stop(&c);
}
END_TEST

/* The re-run makes a second new key and revokes the first (never shown). */
START_TEST(gatewayctl_key_rotate_whose_commit_answer_is_lost_adds_one_key)
{
    ctl_t c = ctl_start();
    h_merchant_t m = h_merchant_create(c.db, "Rotating Shop");
    char *out;
    const char *args[] = {"key", "rotate", m.id,   "sk", "--grace",
                          "0",   "--json", "--db", c.ci, NULL};
    int rc = ctl_run_lost(&c, MARK_APIKEY_INSERT, args, &out);
    ck_assert_msg(rc == 0, "gatewayctl key rotate exited %d: %s", rc, out ? out : "");
    long sk = h_sql_long(c.db,
                         "SELECT count(*) FROM gateway.api_keys WHERE merchant_id = '%s' AND "
                         "role = 'sk'",
                         m.id);
    long audits = h_sql_long(c.db, "SELECT count(*) FROM audit.events WHERE action = 'key.rotate'");
    ck_assert_msg(sk == 2 && audits == 1,
                  "one rotation: %ld sk keys (want 2: the old, revoked, and the new), %ld "
                  "key.rotate audit records (want 1)",
                  sk, audits);
    json_t *j = json_loads(out, 0, NULL);
    ck_assert_ptr_nonnull(j);
    lc_assert_sql_str(c.db, "1",
                      "SELECT count(*) FROM gateway.api_keys WHERE id = '%s' AND revoked_at IS "
                      "NULL",
                      h_json_str(j, "id"));
    json_decref(j);
    free(out);
    ctl_stop(&c);
}
END_TEST

/* The re-run finds no active key to revoke and says so. */
START_TEST(gatewayctl_key_revoke_whose_commit_answer_is_lost_succeeds_once)
{
    ctl_t c = ctl_start();
    h_merchant_t m = h_merchant_create(c.db, "Revoking Shop");
    char *kid = h_sql(
        c.db, "SELECT id FROM gateway.api_keys WHERE merchant_id = '%s' AND role = 'ak'", m.id);
    ck_assert_ptr_nonnull(kid);
    char *out;
    const char *args[] = {"key", "revoke", kid, "--db", c.ci, NULL};
    int rc = ctl_run_lost(&c, MARK_APIKEY_REVOKE, args, &out);
    ck_assert_msg(rc == 0, "gatewayctl key revoke after a lost COMMIT exited %d: %s", rc,
                  out ? out : "");
    ck_assert_int_eq(h_sql_long(c.db,
                                "SELECT count(*) FROM gateway.api_keys WHERE id = '%s' AND "
                                "revoked_at IS NOT NULL",
                                kid),
                     1);
    ck_assert_int_eq(
        h_sql_long(c.db, "SELECT count(*) FROM audit.events WHERE action = 'key.revoke'"), 1);
    free(out);
    free(kid);
    ctl_stop(&c);
}
END_TEST

/* ---------------------------------------------------------------- vaultd */

/* Tokenize is an autocommit insert retried once on a lost connection; a
 * unique violation on the retry means the first went through. */
START_TEST(vault_tokenize_whose_commit_answer_is_lost_stores_one_card)
{
    lc_t t = lc_start_with(NULL, true);
    h_stack_t *st = t.st;
    long before = lc_count(st, "SELECT count(*) FROM vault.cards");
    pgproxy_arm(t.vpx, MARK_VAULT_CARD_INSERT);
    char *tok = h_stack_token(st, "4242424242424242");
    ck_assert_int_eq(pgproxy_fired(t.vpx), 1);
    ck_assert_int_eq(lc_count(st, "SELECT count(*) FROM vault.cards") - before, 1);
    ck_assert_int_eq(h_sql_long(st->db, "SELECT count(*) FROM vault.cards WHERE token = '%s'", tok),
                     1);
    /* the card opens and its CVC is there: it pays */
    char *body = h_stack_checkout_body(tok, "SKU-RED-MUG", 1, NULL);
    char *key = lc_key("tokenize");
    h_resp_t r = h_stack_checkout(st, 0, key, body);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_str_eq(h_json_str(r.json, "status"), "succeeded");
    h_resp_free(&r);
    ck_assert_int_eq(pgproxy_fired(t.vpx), 1);
    free(key);
    free(body);
    free(tok);
    lc_stop(&t);
}
END_TEST

/* Detokenize reads the card and appends its audit record in one
 * transaction; the re-run appends a second record of the one access. */
START_TEST(vault_detokenize_whose_commit_answer_is_lost_audits_one_access)
{
    lc_t t = lc_start_with(NULL, true);
    h_stack_t *st = t.st;
    /* a first payment: the provider credentials and the webhook secret are
     * unsealed (and audited) before the arming, not after */
    char *wchk = lc_paid_checkout(st, "5555555555554444");
    lc_assert_delivered(st, "order.confirmed", wchk, 1);
    free(wchk);
    lc_checkout_t co = lc_checkout_new(st, NULL, "detokenize");
    pgproxy_arm(t.vpx, MARK_AUDIT_INSERT);
    h_resp_t r = lc_checkout_send(st, &co);
    ck_assert_int_eq(pgproxy_fired(t.vpx), 1);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_str_eq(h_json_str(r.json, "status"), "succeeded");
    h_resp_free(&r);
    ck_assert_int_eq(h_stack_charges(st, NULL), 2);
    long audits = h_sql_long(st->db,
                             "SELECT count(*) FROM audit.events WHERE action = "
                             "'card.detokenize' AND object = '%s'",
                             co.tok);
    ck_assert_msg(audits == 1, "one detokenize of %s, %ld card.detokenize audit records", co.tok,
                  audits);
    lc_checkout_free(&co);
    lc_stop(&t);
}
END_TEST

/* The re-run inserts the same key version again: a unique violation taken
 * for another vaultd's rotation, so the rotation is reported failed
 * although version 2 is committed (and, after the catch-up, in use). */
START_TEST(vault_rotate_whose_commit_answer_is_lost_reports_the_rotation)
{
    lc_t t = lc_start_with(NULL, true);
    h_stack_t *st = t.st;
    pgproxy_arm(t.vpx, MARK_VAULT_KEY_INSERT);
    char *out = NULL;
    int rc = h_vaultctl(st->vault, &out, (const char *const[]){"rotate", NULL});
    ck_assert_int_eq(pgproxy_fired(t.vpx), 1);
    long versions = lc_count(st, "SELECT count(*) FROM vault.data_keys");
    ck_assert_msg(rc == 0, "vaultctl rotate after a lost COMMIT exited %d: %s (data keys: %ld)", rc,
                  out ? out : "", versions);
    free(out);
    ck_assert_int_eq(versions, 2);
    ck_assert_int_eq(lc_audits(st, "key.rotate"), 1);
    out = NULL;
    ck_assert_int_eq(h_vaultctl(st->vault, &out, (const char *const[]){"status", NULL}), 0);
    json_t *j = json_loads(out, 0, NULL);
    ck_assert_int_eq(h_json_int(j, "current_version"), 2);
    json_decref(j);
    free(out);
    lc_stop(&t);
}
END_TEST

/* Cards sealed under data key version 1, then a rotation to version 2
 * (vaultctl rotate, nothing lost); returns the tokens (malloc'd). */
static void vault_cards_then_rotate(h_stack_t *st, char *toks[], size_t n)
{
    const char *pans[] = {"4242424242424242", "5555555555554444"};
    for (size_t i = 0; i < n; i++)
        toks[i] = h_stack_token(st, pans[i % 2]);
    char *out = NULL;
    int rc = h_vaultctl(st->vault, &out, (const char *const[]){"rotate", NULL});
    ck_assert_msg(rc == 0, "vaultctl rotate exited %d: %s", rc, out ? out : "");
    free(out);
    ck_assert_int_eq(lc_count(st, "SELECT current_version FROM vault.keyring"), 2);
}

/* A checkout paid with tok: the card opens under the key it is sealed with
 * now, and its CVC is there. */
static void vault_token_pays(h_stack_t *st, const char *tok, const char *what)
{
    char *body = h_stack_checkout_body(tok, "SKU-RED-MUG", 1, NULL);
    char *key = lc_key(what);
    h_resp_t r = h_stack_checkout(st, 0, key, body);
    ck_assert_msg(r.status == 200, "checkout with %s after %s: %ld %s", tok, what, r.status,
                  r.body);
    ck_assert_str_eq(h_json_str(r.json, "status"), "succeeded");
    h_resp_free(&r);
    free(key);
    free(body);
}

/* A rewrap batch moves its records and audits them in one transaction; its
 * COMMIT answer lost, it is settled as committed: the batch's count stands
 * and is reported, every record is under the new key, one audit record. */
START_TEST(vault_rewrap_whose_commit_answer_is_lost_moves_every_card_once)
{
    lc_t t = lc_start_with(NULL, true);
    h_stack_t *st = t.st;
    char *toks[3];
    vault_cards_then_rotate(st, toks, 3);
    long cards = lc_count(st, "SELECT count(*) FROM vault.cards");
    long old = lc_count(st, "SELECT count(*) FROM vault.cards WHERE key_version = 1");
    ck_assert_int_ge(old, 3);
    pgproxy_arm(t.vpx, MARK_VAULT_REWRAP);
    char *out = NULL;
    int rc = h_vaultctl(st->vault, &out, (const char *const[]){"rewrap", NULL});
    ck_assert_int_eq(pgproxy_fired(t.vpx), 1);
    long left = lc_count(st, "SELECT count(*) FROM vault.cards WHERE key_version = 1");
    long audits = lc_audits(st, "key.rewrap");
    ck_assert_msg(rc == 0,
                  "vaultctl rewrap after a lost COMMIT exited %d: %s (cards under version 1: "
                  "%ld of %ld before; key.rewrap audit records: %ld)",
                  rc, out ? out : "", left, old, audits);
    json_t *j = json_loads(out, 0, NULL);
    ck_assert_msg(j != NULL, "vaultctl rewrap printed %s", out);
    ck_assert_int_eq(h_json_int(j, "rewrapped"), old);
    ck_assert_int_eq(h_json_int(j, "remaining"), 0);
    json_decref(j);
    free(out);
    ck_assert_int_eq(left, 0);
    ck_assert_int_eq(lc_count(st, "SELECT count(*) FROM vault.cards WHERE key_version = 2"), cards);
    ck_assert_int_eq(lc_count(st, "SELECT count(*) FROM vault.cards"), cards);
    ck_assert_msg(audits == 1, "one rewrap batch, %ld key.rewrap audit records", audits);
    ck_assert_int_eq(h_sql_long(st->db, "SELECT COALESCE(sum((detail->>'records')::int), 0) FROM "
                                        "audit.events WHERE action = 'key.rewrap'"),
                     old);
    /* the moved cards open under version 2 */
    vault_token_pays(st, toks[0], "rewrap");
    ck_assert_int_eq(pgproxy_fired(t.vpx), 1);
    for (size_t i = 0; i < 3; i++)
        free(toks[i]);
    lc_stop(&t);
}
END_TEST

/* Retiring version 1 (retire 2: version 2 becomes the minimum decryption
 * version) after a full rewrap; the retire transaction's COMMIT answer is
 * lost and settled as committed. */
START_TEST(vault_retire_whose_commit_answer_is_lost_retires_the_old_key_once)
{
    lc_t t = lc_start_with(NULL, true);
    h_stack_t *st = t.st;
    char *toks[2];
    vault_cards_then_rotate(st, toks, 2);
    char *out = NULL;
    int rc = h_vaultctl(st->vault, &out, (const char *const[]){"rewrap", NULL});
    ck_assert_msg(rc == 0, "vaultctl rewrap exited %d: %s", rc, out ? out : "");
    free(out);
    ck_assert_int_eq(lc_count(st, "SELECT count(*) FROM vault.cards WHERE key_version = 1"), 0);
    pgproxy_arm(t.vpx, MARK_VAULT_RETIRE);
    out = NULL;
    rc = h_vaultctl(st->vault, &out, (const char *const[]){"retire", "2", NULL});
    ck_assert_int_eq(pgproxy_fired(t.vpx), 1);
    long min = lc_count(st, "SELECT min_decrypt_version FROM vault.keyring");
    long audits = lc_audits(st, "key.retire");
    ck_assert_msg(rc == 0,
                  "vaultctl retire 2 after a lost COMMIT exited %d: %s (min_decrypt_version: "
                  "%ld; key.retire audit records: %ld)",
                  rc, out ? out : "", min, audits);
    json_t *j = json_loads(out, 0, NULL);
    ck_assert_msg(j != NULL, "vaultctl retire printed %s", out);
    ck_assert_int_eq(h_json_int(j, "min_decrypt_version"), 2);
    json_decref(j);
    free(out);
    ck_assert_int_eq(min, 2);
    /* version 1 destroyed, version 2 kept */
    ck_assert_int_eq(lc_count(st, "SELECT count(*) FROM vault.data_keys WHERE version = 1 AND "
                                  "retired_at IS NOT NULL AND wrapped IS NULL"),
                     1);
    ck_assert_int_eq(lc_count(st, "SELECT count(*) FROM vault.data_keys WHERE version = 2 AND "
                                  "retired_at IS NULL AND wrapped IS NOT NULL"),
                     1);
    ck_assert_msg(audits == 1, "one retirement, %ld key.retire audit records", audits);
    out = NULL;
    ck_assert_int_eq(h_vaultctl(st->vault, &out, (const char *const[]){"status", NULL}), 0);
    j = json_loads(out, 0, NULL);
    ck_assert_int_eq(h_json_int(j, "min_decrypt_version"), 2);
    json_decref(j);
    free(out);
    /* the cards, under version 2, still open */
    vault_token_pays(st, toks[0], "retire");
    ck_assert_int_eq(pgproxy_fired(t.vpx), 1);
    for (size_t i = 0; i < 2; i++)
        free(toks[i]);
    lc_stop(&t);
}
END_TEST

int main(void)
{
    h_init("it_lost_commit_more");
    Suite *s = suite_create("lost_commit_more");
    TCase *tc = h_tcase("lost_commit_more", 900);
    tcase_add_test(tc, provider_put_whose_commit_answer_is_lost_answers_201_and_audits_one_create);
    tcase_add_test(tc, fraud_rules_put_with_version_whose_commit_answer_is_lost_answers_200_once);
    tcase_add_test(tc, routing_put_whose_commit_answer_is_lost_answers_200_and_audits_once);
    tcase_add_test(tc, merchant_post_whose_commit_answer_is_lost_answers_200_and_audits_once);
    tcase_add_test(tc, webhook_update_whose_commit_answer_is_lost_answers_200_and_audits_once);
    tcase_add_test(tc, event_redeliver_whose_commit_answer_is_lost_delivers_once_more_not_twice);
    tcase_add_test(tc, void_whose_op_begin_commit_answer_is_lost_voids_once);
    tcase_add_test(tc, void_whose_op_finish_commit_answer_is_lost_voids_once);
    tcase_add_test(tc, refund_whose_op_begin_commit_answer_is_lost_refunds_once);
    tcase_add_test(tc, refund_whose_op_finish_commit_answer_is_lost_refunds_once);
    tcase_add_test(tc, refund_whose_stored_answer_commit_answer_is_lost_refunds_once);
    tcase_add_test(tc, review_approve_whose_op_finish_commit_answer_is_lost_confirms_one_order);
    tcase_add_test(tc, review_reject_whose_op_begin_commit_answer_is_lost_voids_once);
    tcase_add_test(tc, fraud_decline_whose_commit_answer_is_lost_answers_402_once);
    tcase_add_test(tc, recovery_finish_whose_commit_answer_is_lost_confirms_one_order);
    tcase_add_test(
        tc, failover_transition_whose_commit_answer_is_lost_still_pays_with_the_second_provider);
    tcase_add_test(tc, outbox_results_whose_commit_answer_is_lost_deliver_once);
    tcase_add_test(tc, gatewayctl_merchant_create_whose_commit_answer_is_lost_succeeds_once);
    tcase_add_test(tc, gatewayctl_key_rotate_whose_commit_answer_is_lost_adds_one_key);
    tcase_add_test(tc, gatewayctl_key_revoke_whose_commit_answer_is_lost_succeeds_once);
    tcase_add_test(tc, vault_tokenize_whose_commit_answer_is_lost_stores_one_card);
    tcase_add_test(tc, vault_detokenize_whose_commit_answer_is_lost_audits_one_access);
    tcase_add_test(tc, vault_rotate_whose_commit_answer_is_lost_reports_the_rotation);
    tcase_add_test(tc, vault_rewrap_whose_commit_answer_is_lost_moves_every_card_once);
    tcase_add_test(tc, vault_retire_whose_commit_answer_is_lost_retires_the_old_key_once);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
