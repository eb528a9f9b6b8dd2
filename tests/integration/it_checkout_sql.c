/* Integration: the checkout's stored procedures, run as the gateway role.
 * Each is compare-and-set: a second begin with the same key claims nothing,
 * a second finish changes nothing, and an order, its event and its
 * inventory commit exist exactly once. */
#include "tests/harness/harness.h"
#include <string.h>

static char *db;
static h_merchant_t m;
static PGconn *pg;

static void setup(void)
{
    db = h_db_create();
    m = h_merchant_create(db, "SQL Shop");
    pg = h_db_connect(db, "gateway");
    ck_assert_ptr_nonnull(pg);
    char q[512];
    snprintf(q, sizeof q,
             "INSERT INTO gateway.webhook_endpoints (merchant_id, id, url, events, secret_sealed) "
             "VALUES ('%s', 'all', 'http://127.0.0.1:1/hook', '{*}', 'sealed')",
             m.id);
    PQclear(PQexec(pg, q));
}

static void teardown(void)
{
    PQfinish(pg);
    h_db_drop(db);
    free(db);
}

static char *one(const char *sql, int n, const char *const *vals)
{
    PGresult *r = PQexecParams(pg, sql, n, NULL, vals, NULL, NULL, 0);
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql, PQresultErrorMessage(r));
    char *out = PQgetisnull(r, 0, 0) ? NULL : strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return out;
}

static bool begin(const char *chk, const char *key, const char *pay)
{
    char res[64];
    snprintf(res, sizeof res, "res_%s", chk);
    const char *v[] = {m.id, key, "\\x00", chk, "EUR", "2598",
                       "{\"subtotal\":2598,\"tax\":0,\"shipping\":0,\"total\":2598,\"lines\":"
                       "[{\"sku\":\"SKU-RED-MUG\",\"quantity\":2,\"unit_amount\":1299,\"amount\":2598}]}",
                       "tok_x", "{\"brand\":\"visa\",\"last4\":\"4242\"}", NULL, NULL, "t",
                       res, "900", "{\"score\":0}", pay, "stripe", chk, "60"};
    /* no velocity keys: the event is still recorded, under no key */
    char *r = one("SELECT gateway.checkout_begin($1,$2,$3::bytea,$4,$5,$6::bigint,$7::jsonb,$8,"
                  "$9::jsonb,$10::jsonb,$11::jsonb,$12::boolean,$13,$14::int,$15::jsonb,$16,$17,"
                  "$18,$19::int,NULL,NULL,NULL,NULL,2598,false)",
                  19, v);
    bool ok = r && r[0] == 't';
    free(r);
    return ok;
}

static char *finish(const char *chk, const char *status, const char *http)
{
    const char *v[] = {chk, status, http, "1", "captured", "pi_1", NULL, "f", "captured",
                       "stripe", "pi_1", "2598", "ord_1", "commit", NULL, "order.confirmed",
                       "evt_1"};
    return one("SELECT changed::text FROM gateway.checkout_finish($1,$2,$3::int,$4::int,$5,$6,$7,"
               "$8::boolean,$9,$10,$11,$12::bigint,$13,$14,$15::jsonb,$16,$17,NULL,NULL,NULL,NULL)",
               17, v);
}

static long count(const char *sql)
{
    char *s = one(sql, 0, NULL);
    long n = s ? atol(s) : -1;
    free(s);
    return n;
}

START_TEST(begin_claims_a_key_once)
{
    ck_assert(begin("chk_a", "key-a", "pay_a"));
    ck_assert(!begin("chk_b", "key-a", "pay_b"));
    ck_assert_int_eq(count("SELECT count(*) FROM gateway.checkouts WHERE id IN ('chk_a','chk_b')"), 1);
    ck_assert_int_eq(count("SELECT count(*) FROM gateway.payment_attempts WHERE payment_id = 'pay_a' "
                           "AND state = 'pending'"), 1);
}
END_TEST

START_TEST(finish_happens_once)
{
    ck_assert(begin("chk_c", "key-c", "pay_c"));
    char *c1 = finish("chk_c", "succeeded", "200");
    ck_assert_str_eq(c1, "true");
    char *c2 = finish("chk_c", "succeeded", "200");
    ck_assert_str_eq(c2, "false");
    free(c1);
    free(c2);
    ck_assert_int_eq(count("SELECT count(*) FROM gateway.orders WHERE checkout_id = 'chk_c'"), 1);
    ck_assert_int_eq(count("SELECT count(*) FROM gateway.events WHERE object_id = 'chk_c' AND "
                           "type = 'order.confirmed'"), 1);
    ck_assert_int_eq(count("SELECT count(*) FROM gateway.outbox WHERE kind = 'inventory_commit' "
                           "AND target = 'res_chk_c'"), 1);
    ck_assert_int_eq(count("SELECT count(*) FROM gateway.outbox o JOIN gateway.events e ON "
                           "e.id = o.event_id WHERE e.object_id = 'chk_c'"), 1);
    char *st = one("SELECT state || ':' || response_status FROM gateway.idempotency_keys WHERE "
                   "key = 'key-c'", 0, NULL);
    ck_assert_str_eq(st, "done:200");
    free(st);
    char *body = one("SELECT response_body FROM gateway.idempotency_keys WHERE key = 'key-c'", 0, NULL);
    json_t *j = json_loads(body, 0, NULL);
    ck_assert_str_eq(h_json_str(j, "status"), "succeeded");
    ck_assert_str_eq(h_json_str(j, "payment.status"), "captured");
    ck_assert_str_eq(h_json_str(j, "payment.attempts.0.outcome"), "captured");
    ck_assert_int_eq(h_json_int(j, "order.total"), 2598);
    ck_assert_str_eq(h_json_str(j, "order.lines.0.sku"), "SKU-RED-MUG");
    json_decref(j);
    free(body);
}
END_TEST

START_TEST(processing_then_final_answer_replaces_stored_reply)
{
    ck_assert(begin("chk_d", "key-d", "pay_d"));
    const char *v[] = {"chk_d", "processing", "202", "1", "unknown", NULL, NULL, "f", "processing",
                       "stripe", NULL, "0", NULL, "keep", NULL, NULL, "evt_x"};
    char *c = one("SELECT changed::text FROM gateway.checkout_finish($1,$2,$3::int,$4::int,$5,$6,$7,"
                  "$8::boolean,$9,$10,$11,$12::bigint,$13,$14,$15::jsonb,$16,$17,NULL,NULL,NULL,"
                  "NULL)",
                  17, v);
    ck_assert_str_eq(c, "true");
    free(c);
    char *st = one("SELECT response_status::text FROM gateway.idempotency_keys WHERE key = 'key-d'",
                   0, NULL);
    ck_assert_str_eq(st, "202");
    free(st);
    c = finish("chk_d", "succeeded", "200");
    ck_assert_str_eq(c, "true");
    free(c);
    st = one("SELECT response_status::text FROM gateway.idempotency_keys WHERE key = 'key-d'", 0,
             NULL);
    ck_assert_str_eq(st, "200");
    free(st);
}
END_TEST

START_TEST(refunds_never_exceed_the_capture)
{
    ck_assert(begin("chk_e", "key-e", "pay_e"));
    char *c = finish("chk_e", "succeeded", "200");
    free(c);
    PGresult *r = PQexec(pg, "UPDATE gateway.payments SET refunded_amount = 2599 WHERE id = 'pay_e'");
    ck_assert_int_eq(PQresultStatus(r), PGRES_FATAL_ERROR);
    ck_assert_str_eq(PQresultErrorField(r, PG_DIAG_SQLSTATE), "23514");
    PQclear(r);
}
END_TEST

static char *op_begin(const char *pay, const char *amount, const char *op)
{
    const char *v[] = {m.id, pay, "refund", amount, op, op};
    return one("SELECT outcome FROM gateway.payment_op_begin($1,$2,$3,$4::bigint,$5,$6)", 6, v);
}

/* The begin is retried when its connection dies, even after a COMMIT that
 * went through: the retry must recognise its own operation, not answer as
 * if a rival had taken the amount. */
START_TEST(a_retried_operation_begin_finds_its_own_operation)
{
    ck_assert(begin("chk_f", "key-f", "pay_f"));
    free(finish("chk_f", "succeeded", "200"));
    char *o = op_begin("pay_f", "2000", "re_f1");
    ck_assert_str_eq(o, "ok");
    free(o);
    o = op_begin("pay_f", "2000", "re_f1");
    ck_assert_str_eq(o, "exists");
    free(o);
    ck_assert_int_eq(count("SELECT count(*) FROM gateway.payment_operations WHERE "
                           "payment_id = 'pay_f'"),
                     1);
    o = op_begin("pay_f", "2000", "re_f2"); /* a second refund: only 598 left */
    ck_assert_str_eq(o, "amount_too_large");
    free(o);
}
END_TEST

/* Only the request that still owns a pending checkout records its next
 * provider attempt; once recovery has taken it over, the transition fails. */
START_TEST(attempt_transition_needs_the_checkout_still_owned)
{
    ck_assert(begin("chk_g", "key-g", "pay_g"));
    const char *v[] = {"pay_g", "2", "pay_g-a2"};
    const char *q = "SELECT gateway.attempt_transition($1, 1, 'unavailable', NULL, 'down', "
                    "$2::int, 'adyen', $3, 60)::text";
    free(one(q, 3, v));
    ck_assert_int_eq(count("SELECT count(*) FROM gateway.payment_attempts WHERE "
                           "payment_id = 'pay_g'"),
                     2);
    PQclear(PQexec(pg, "UPDATE gateway.checkouts SET status = 'processing' WHERE id = 'chk_g'"));
    const char *v3[] = {"pay_g", "3", "pay_g-a3"};
    PGresult *r = PQexecParams(pg, q, 3, NULL, v3, NULL, NULL, 0);
    ck_assert_int_eq(PQresultStatus(r), PGRES_FATAL_ERROR);
    ck_assert_str_eq(PQresultErrorField(r, PG_DIAG_SQLSTATE), "P0002");
    PQclear(r);
    ck_assert_int_eq(count("SELECT count(*) FROM gateway.payment_attempts WHERE "
                           "payment_id = 'pay_g'"),
                     2);
}
END_TEST

int main(void)
{
    h_init("it_checkout_sql");
    Suite *s = suite_create("checkout_sql");
    TCase *tc = h_tcase("sql", 120);
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_add_test(tc, begin_claims_a_key_once);
    tcase_add_test(tc, finish_happens_once);
    tcase_add_test(tc, processing_then_final_answer_replaces_stored_reply);
    tcase_add_test(tc, refunds_never_exceed_the_capture);
    tcase_add_test(tc, a_retried_operation_begin_finds_its_own_operation);
    tcase_add_test(tc, attempt_transition_needs_the_checkout_still_owned);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
