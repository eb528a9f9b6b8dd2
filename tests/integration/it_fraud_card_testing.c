/* Integration: card testing is caught with the default rules and real
 * velocity data in PostgreSQL, through the calls a checkout makes
 * (gw_fraud_assess, then fraud_velocity_record in its transaction): 30
 * different cards from one IP within a minute are approved at first and
 * declined by fraud once ten were tried, with the reason; a customer on
 * another IP is unaffected; refused card numbers from one IP count too. */
#include "fraud/fraud.h"
#include "gateway/db/gwdb.h"
#include "tests/harness/harness.h"
#include <stdio.h>
#include <string.h>

static char *db;
static db_pool_t *pool;
static h_merchant_t m;

static void setup(void)
{
    db = h_db_create();
    m = h_merchant_create(db, "Card Testing Target");
    char *ci = h_conninfo(db, "gateway");
    char *pw = file_read_all(h_password_file("gateway"), 4096, NULL);
    ck_assert_ptr_nonnull(pw);
    pw[strcspn(pw, "\n")] = '\0';
    db_pool_config_t pc = {.pool_size = 2,
                           .conninfo = ci,
                           .password = pw,
                           .application_name = "it_fraud_card_testing"};
    pool = db_pool_create(&pc);
    free(ci);
    free(pw);
}

static void teardown(void)
{
    db_pool_destroy(pool);
    h_db_drop(db);
    free(db);
}

typedef struct {
    const fraud_features_t *f;
    const fraud_result_t *r;
} record_t;

/* What the checkout does in the transaction that stores its decision. */
static db_status_t record_txn(db_conn_t *c, void *cls)
{
    const record_t *x = cls;
    fraud_event_t ev = {.keys = fraud_keys_of(m.id, x->f),
                        .amount = x->f->amount,
                        .attempt = true,
                        .declined = x->r->decision == FRAUD_DECLINE};
    return fraud_velocity_record(c, &ev);
}

static fraud_result_t checkout(const char *fingerprint, const char *ip, const char *email)
{
    fraud_features_t f;
    memset(&f, 0, sizeof f);
    f.amount = 2598;
    f.currency = "EUR";
    f.card_brand = "visa";
    f.bin = "424242";
    f.card_country = "US";
    f.fingerprint = fingerprint;
    f.email = email;
    f.ip = ip;
    f.edge_country = "US";
    f.shipping_country = "US";
    f.has_cvc = true;
    f.cart_total = 2598;
    f.cart_max_sku_quantity = 1;
    f.cart_distinct_skus = 1;
    fraud_result_t r;
    db_conn_t *c = db_pool_acquire(pool);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(gw_fraud_assess(c, m.id, &f, &r), DB_OK);
    record_t x = {&f, &r};
    ck_assert_int_eq(db_txn_run_on(c, DB_READ_COMMITTED, "record", record_txn, &x), DB_OK);
    db_pool_release(c);
    return r;
}

static const fraud_reason_t *reason_of(const fraud_result_t *r, const char *rule)
{
    for (int i = 0; i < r->nreasons; i++)
        if (!strcmp(r->reasons[i].rule, rule))
            return &r->reasons[i];
    return NULL;
}

START_TEST(thirty_cards_from_one_ip_are_declined_once_ten_were_tried)
{
    int64_t start = time_now_ms();
    int declined = 0;
    for (int i = 0; i < 30; i++) {
        char fp[32], email[64];
        snprintf(fp, sizeof fp, "fp_stolen%02d", i);
        snprintf(email, sizeof email, "buyer%02d@example.net", i);
        fraud_result_t r = checkout(fp, "198.51.100.23", email);
        const fraud_reason_t *ct = reason_of(&r, "card_testing_ip");
        if (i < 10) {
            /* the counters hold the i cards tried before this one */
            ck_assert_msg(r.decision != FRAUD_DECLINE, "card %d declined early (score %d)", i,
                          r.score);
            ck_assert_ptr_null(ct);
            if (i >= 4)
                ck_assert_ptr_nonnull(reason_of(&r, "many_cards_ip"));
        } else {
            ck_assert_msg(r.decision == FRAUD_DECLINE, "card %d not declined (score %d)", i,
                          r.score);
            ck_assert_ptr_nonnull(ct);
            ck_assert_str_eq(r.reasons[0].rule, "card_testing_ip");
            char want[64];
            snprintf(want, sizeof want, "ip.distinct_cards.10m is %d (gte 10)", i);
            ck_assert_str_eq(ct->detail, want);
            declined++;
        }
        json_t *j = fraud_result_json(&r);
        char *text = json_dumps_compact(j);
        ck_assert_ptr_null(strstr(text, "4242424242424242"));
        free(text);
        json_decref(j);
    }
    ck_assert_int_eq(declined, 20);
    ck_assert_int_lt(time_now_ms() - start, 60000); /* all within one minute */
    /* what the database holds: 30 attempts, 20 of them declined */
    ck_assert_int_eq(h_sql_long(db, "SELECT sum(attempts) FROM gateway.fraud_events"), 30);
    ck_assert_int_eq(h_sql_long(db, "SELECT sum(declines) FROM gateway.fraud_events"), 20);

    /* a real customer elsewhere is not caught in it */
    fraud_result_t ok = checkout("fp_honest", "192.0.2.10", "ada@example.org");
    ck_assert_int_eq(ok.decision, FRAUD_APPROVE);
    ck_assert_int_eq(ok.nreasons, 0);
    ck_assert_int_eq(ok.score, 0);
}
END_TEST

START_TEST(refused_card_numbers_from_one_ip_count)
{
    db_conn_t *c = db_pool_acquire(pool);
    for (int i = 0; i < 5; i++) {
        /* what POST /v1/tokens records when the vault refuses a number */
        fraud_event_t ev = {.keys = {.merchant_id = m.id, .ip = "203.0.113.66"},
                            .token_failure = true};
        ck_assert_int_eq(fraud_velocity_record(c, &ev), DB_OK);
    }
    db_pool_release(c);
    fraud_result_t r = checkout("fp_after_failures", "203.0.113.66", "x@example.net");
    const fraud_reason_t *tf = reason_of(&r, "token_failures_ip");
    ck_assert_ptr_nonnull(tf);
    ck_assert_str_eq(tf->detail, "ip.token_failures.1h is 5 (gte 5)");
    ck_assert_int_eq(r.score, 40);
}
END_TEST

int main(void)
{
    h_init("it_fraud_card_testing");
    Suite *s = suite_create("fraud_card_testing");
    TCase *tc = h_tcase("card_testing", 300);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, thirty_cards_from_one_ip_are_declined_once_ten_were_tried);
    tcase_add_test(tc, refused_card_numbers_from_one_ip_count);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
