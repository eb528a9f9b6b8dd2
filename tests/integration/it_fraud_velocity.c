/* Integration: velocity counters in PostgreSQL, through two separate pools
 * as two gatewayd instances would hold them. Counters are the same from
 * either instance, also under concurrent writes; windows slide with explicit
 * timestamps; recording is part of the caller's transaction; merchants are
 * isolated; averages, the rules version and cleanup; keys never in clear. */
#include "fraud/fraud.h"
#include "gateway/db/gwdb.h"
#include "tests/harness/harness.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *db;
static db_pool_t *inst_a, *inst_b;

#define T0       1700000000000LL /* a fixed clock: windows are tested, not waited for */
#define MINUTE   60000LL
#define HOUR     (60 * MINUTE)
#define MERCHANT "mer_velocity"

static db_pool_t *pool_open(const char *name)
{
    char *ci = h_conninfo(db, "gateway");
    char *pw = file_read_all(h_password_file("gateway"), 4096, NULL);
    ck_assert_ptr_nonnull(pw);
    pw[strcspn(pw, "\n")] = '\0';
    db_pool_config_t pc = {
        .pool_size = 4, .conninfo = ci, .password = pw, .application_name = name};
    db_pool_t *p = db_pool_create(&pc);
    free(ci);
    free(pw);
    ck_assert_ptr_nonnull(p);
    return p;
}

static void setup(void)
{
    db = h_db_create();
    free(h_sql(db, "INSERT INTO gateway.merchants (id, name) VALUES ('" MERCHANT "', 'V'), "
                   "('mer_other', 'O')"));
    inst_a = pool_open("instance-a");
    inst_b = pool_open("instance-b");
}

static void teardown(void)
{
    db_pool_destroy(inst_a);
    db_pool_destroy(inst_b);
    h_db_drop(db);
    free(db);
}

static void rec(db_pool_t *p, const fraud_event_t *ev)
{
    db_conn_t *c = db_pool_acquire(p);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(fraud_velocity_record(c, ev), DB_OK);
    db_pool_release(c);
}

static fraud_velocity_t load(db_pool_t *p, const fraud_keys_t *k, int64_t now)
{
    fraud_velocity_t v;
    db_conn_t *c = db_pool_acquire(p);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(fraud_velocity_load(c, k, now, &v), DB_OK);
    db_pool_release(c);
    return v;
}

static fraud_event_t attempt(const char *fp, const char *email, const char *ip, const char *dev,
                             const char *currency, int64_t amount, int64_t at)
{
    fraud_event_t ev = {.keys = {.merchant_id = MERCHANT,
                                 .currency = currency,
                                 .fingerprint = fp,
                                 .email = email,
                                 .ip = ip,
                                 .device_id = dev},
                        .at_ms = at,
                        .amount = amount,
                        .attempt = true};
    return ev;
}

START_TEST(counters_agree_across_two_instances)
{
    fraud_event_t e1 =
        attempt("fp_one", "ada@example.org", "203.0.113.7", "dev_1", "EUR", 1000, T0 - 60000);
    rec(inst_a, &e1);
    /* same customer, other spelling of the email, second card, declined */
    fraud_event_t e2 =
        attempt("fp_two", " ADA@Example.org", "203.0.113.7", "dev_1", "EUR", 2000, T0 - 30000);
    e2.declined = true;
    rec(inst_b, &e2);
    /* a refused card number from the same IP (tokenization: no card, no email) */
    fraud_event_t e3 = {.keys = {.merchant_id = MERCHANT, .ip = "203.0.113.7"},
                        .at_ms = T0 - 10000,
                        .token_failure = true};
    rec(inst_a, &e3);
    /* the first card again, in another currency, over IPv4-mapped IPv6 */
    fraud_event_t e4 = attempt("fp_one", NULL, "::ffff:203.0.113.7", NULL, "USD", 500, T0 - 5000);
    rec(inst_b, &e4);

    fraud_keys_t k = {.merchant_id = MERCHANT,
                      .currency = "EUR",
                      .fingerprint = "fp_one",
                      .email = "ada@example.org",
                      .ip = "203.0.113.7",
                      .device_id = "dev_1"};
    fraud_velocity_t va = load(inst_a, &k, T0);
    fraud_velocity_t vb = load(inst_b, &k, T0);
    ck_assert_int_eq(memcmp(va.c, vb.c, sizeof va.c), 0);
    ck_assert_int_eq(va.now_ms, T0);
    for (int key = 0; key < FRAUD_NKEYS; key++)
        ck_assert(va.known[key]);

    const fraud_counts_t *ip = &va.c[FRAUD_KEY_IP][FRAUD_WIN_10M];
    ck_assert_int_eq(ip->attempts, 3);
    ck_assert_int_eq(ip->declines, 1);
    ck_assert_int_eq(ip->token_failures, 1);
    ck_assert_int_eq(ip->distinct_cards, 2);
    ck_assert_int_eq(ip->amount_sum, 3000); /* EUR only */
    const fraud_counts_t *card = &va.c[FRAUD_KEY_CARD][FRAUD_WIN_10M];
    ck_assert_int_eq(card->attempts, 2);
    ck_assert_int_eq(card->declines, 0);
    ck_assert_int_eq(card->amount_sum, 1000);
    const fraud_counts_t *email = &va.c[FRAUD_KEY_EMAIL][FRAUD_WIN_24H];
    ck_assert_int_eq(email->attempts, 2);
    ck_assert_int_eq(email->distinct_cards, 2);
    ck_assert_int_eq(email->declines, 1);
    const fraud_counts_t *dev = &va.c[FRAUD_KEY_DEVICE][FRAUD_WIN_1H];
    ck_assert_int_eq(dev->attempts, 2);
    ck_assert_int_eq(dev->distinct_cards, 2);

    /* keys not given are absent, not zero */
    fraud_keys_t only_ip = {.merchant_id = MERCHANT, .ip = "203.0.113.7"};
    fraud_velocity_t vi = load(inst_b, &only_ip, T0);
    ck_assert(!vi.known[FRAUD_KEY_CARD] && !vi.known[FRAUD_KEY_DEVICE] && vi.known[FRAUD_KEY_IP]);
    ck_assert_int_eq(vi.c[FRAUD_KEY_IP][FRAUD_WIN_10M].amount_sum, 0); /* no currency given */
    ck_assert_int_eq(vi.c[FRAUD_KEY_IP][FRAUD_WIN_10M].attempts, 3);
}
END_TEST

typedef struct {
    db_pool_t *pool;
    int base;
} writer_t;

static void *writer(void *arg)
{
    writer_t *w = arg;
    for (int i = 0; i < 150; i++) {
        char fp[32];
        snprintf(fp, sizeof fp, "fp_w%d_%03d", w->base, i);
        fraud_event_t ev = attempt(fp, NULL, "198.51.100.77", NULL, "EUR", 100, T0 - 1000 - i);
        db_conn_t *c = db_pool_acquire(w->pool);
        if (!c || fraud_velocity_record(c, &ev) != DB_OK) {
            db_pool_release(c);
            return (void *)1;
        }
        db_pool_release(c);
    }
    return NULL;
}

START_TEST(concurrent_writers_on_two_instances_lose_nothing)
{
    writer_t w[4] = {{inst_a, 0}, {inst_b, 1}, {inst_a, 2}, {inst_b, 3}};
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, writer, &w[i]);
    for (int i = 0; i < 4; i++) {
        void *rc;
        pthread_join(t[i], &rc);
        ck_assert_ptr_null(rc);
    }
    fraud_keys_t k = {.merchant_id = MERCHANT, .currency = "EUR", .ip = "198.51.100.77"};
    fraud_velocity_t va = load(inst_a, &k, T0), vb = load(inst_b, &k, T0);
    ck_assert_int_eq(va.c[FRAUD_KEY_IP][FRAUD_WIN_10M].attempts, 600);
    ck_assert_int_eq(va.c[FRAUD_KEY_IP][FRAUD_WIN_10M].distinct_cards, 600);
    ck_assert_int_eq(va.c[FRAUD_KEY_IP][FRAUD_WIN_10M].amount_sum, 60000);
    ck_assert_int_eq(memcmp(va.c, vb.c, sizeof va.c), 0);
    /* 600 approved attempts of 100 each: the merchant's average */
    ck_assert_int_eq(va.merchant_samples, 600);
    ck_assert_int_eq(va.merchant_avg_amount, 100);
}
END_TEST

START_TEST(windows_slide_with_the_clock)
{
    const int64_t ages[] = {5 * MINUTE,         10 * MINUTE - 1, 10 * MINUTE, 30 * MINUTE, 5 * HOUR,
                            24 * HOUR - MINUTE, 24 * HOUR,       25 * HOUR,   -MINUTE /* future */};
    for (size_t i = 0; i < PC_ARRAY_LEN(ages); i++) {
        char fp[16];
        snprintf(fp, sizeof fp, "fp_%zu", i);
        fraud_event_t ev = attempt(fp, NULL, "192.0.2.1", NULL, "EUR", 10, T0 - ages[i]);
        rec(i % 2 ? inst_a : inst_b, &ev);
    }
    fraud_keys_t k = {.merchant_id = MERCHANT, .currency = "EUR", .ip = "192.0.2.1"};
    struct {
        int64_t at, n10m, n1h, n24h;
    } exp[] = {
        /* a window holds (now - length, now]: 10 min exactly is out */
        {T0, 2, 4, 6},
        /* the 10m-1ms event left 10m, the 24h-1min one left 24h, the
         * future one arrived */
        {T0 + MINUTE, 2, 5, 6},
        {T0 + 6 * MINUTE, 1, 5, 6},
        {T0 + 2 * HOUR, 0, 0, 6},
        {T0 + 48 * HOUR, 0, 0, 0},
    };
    for (size_t i = 0; i < PC_ARRAY_LEN(exp); i++) {
        fraud_velocity_t v = load(i % 2 ? inst_a : inst_b, &k, exp[i].at);
        const fraud_counts_t *c = v.c[FRAUD_KEY_IP];
        ck_assert_msg(c[FRAUD_WIN_10M].attempts == exp[i].n10m &&
                          c[FRAUD_WIN_1H].attempts == exp[i].n1h &&
                          c[FRAUD_WIN_24H].attempts == exp[i].n24h,
                      "at T0%+lld: %lld/%lld/%lld, expected %lld/%lld/%lld",
                      (long long)(exp[i].at - T0), (long long)c[FRAUD_WIN_10M].attempts,
                      (long long)c[FRAUD_WIN_1H].attempts, (long long)c[FRAUD_WIN_24H].attempts,
                      (long long)exp[i].n10m, (long long)exp[i].n1h, (long long)exp[i].n24h);
        ck_assert_int_eq(c[FRAUD_WIN_24H].distinct_cards, exp[i].n24h);
    }
}
END_TEST

static db_status_t record_in_txn(db_conn_t *c, void *cls)
{
    return fraud_velocity_record(c, cls);
}

static db_status_t record_then_fail(db_conn_t *c, void *cls)
{
    db_status_t s = fraud_velocity_record(c, cls);
    return s == DB_OK ? DB_CONFLICT : s; /* the checkout's own step failed: roll back */
}

START_TEST(recording_belongs_to_the_callers_transaction)
{
    fraud_event_t ev = attempt("fp_txn", NULL, "192.0.2.50", NULL, "EUR", 10, T0);
    fraud_keys_t k = {.merchant_id = MERCHANT, .ip = "192.0.2.50"};
    db_conn_t *c = db_pool_acquire(inst_a);
    ck_assert_int_eq(db_exec_simple(c, "BEGIN"), DB_OK);
    ck_assert_int_eq(fraud_velocity_record(c, &ev), DB_OK);
    fraud_velocity_t v;
    ck_assert_int_eq(fraud_velocity_load(c, &k, T0, &v), DB_OK); /* visible inside */
    ck_assert_int_eq(v.c[FRAUD_KEY_IP][FRAUD_WIN_10M].attempts, 1);
    /* not to the other instance before the commit */
    ck_assert_int_eq(load(inst_b, &k, T0).c[FRAUD_KEY_IP][FRAUD_WIN_10M].attempts, 0);
    ck_assert_int_eq(db_exec_simple(c, "ROLLBACK"), DB_OK);
    db_pool_release(c);
    ck_assert_int_eq(load(inst_b, &k, T0).c[FRAUD_KEY_IP][FRAUD_WIN_10M].attempts, 0);

    ck_assert_int_eq(db_txn_run(inst_a, DB_READ_COMMITTED, "t", record_then_fail, &ev),
                     DB_CONFLICT);
    ck_assert_int_eq(load(inst_b, &k, T0).c[FRAUD_KEY_IP][FRAUD_WIN_10M].attempts, 0);
    ck_assert_int_eq(db_txn_run(inst_a, DB_READ_COMMITTED, "t", record_in_txn, &ev), DB_OK);
    ck_assert_int_eq(load(inst_b, &k, T0).c[FRAUD_KEY_IP][FRAUD_WIN_10M].attempts, 1);
}
END_TEST

START_TEST(merchants_are_isolated)
{
    fraud_event_t ev = attempt("fp_iso", "iso@example.org", "192.0.2.60", "dev_iso", "EUR", 10, T0);
    rec(inst_a, &ev);
    fraud_keys_t k = {.merchant_id = "mer_other",
                      .currency = "EUR",
                      .fingerprint = "fp_iso",
                      .email = "iso@example.org",
                      .ip = "192.0.2.60",
                      .device_id = "dev_iso"};
    fraud_velocity_t v = load(inst_b, &k, T0);
    for (int key = 0; key < FRAUD_NKEYS; key++)
        ck_assert_int_eq(v.c[key][FRAUD_WIN_24H].attempts, 0);
    ck_assert_int_eq(v.merchant_samples, 0);
}
END_TEST

START_TEST(merchant_averages_need_enough_recent_approved_checkouts)
{
    fraud_keys_t k = {.merchant_id = MERCHANT, .currency = "EUR"};
    for (int i = 0; i < FRAUD_STATS_MIN_SAMPLES - 1; i++) {
        fraud_event_t ev = attempt(NULL, NULL, NULL, NULL, "EUR", 1000 + 100 * i, T0 - i * HOUR);
        ev.basket = 900;
        rec(i % 2 ? inst_a : inst_b, &ev);
    }
    fraud_velocity_t v = load(inst_a, &k, T0);
    ck_assert_int_eq(v.merchant_samples, FRAUD_STATS_MIN_SAMPLES - 1);
    ck_assert_int_eq(v.merchant_avg_amount, 0); /* not enough history yet */
    /* not counted: fraud declines, other currencies, older than 7 days */
    fraud_event_t no = attempt(NULL, NULL, NULL, NULL, "EUR", 99999, T0);
    no.declined = true;
    rec(inst_a, &no);
    no = attempt(NULL, NULL, NULL, NULL, "USD", 99999, T0);
    rec(inst_a, &no);
    no = attempt(NULL, NULL, NULL, NULL, "EUR", 99999, T0 - 8 * 24 * HOUR);
    rec(inst_a, &no);
    fraud_event_t last = attempt(NULL, NULL, NULL, NULL, "EUR", 2900, T0);
    rec(inst_b, &last); /* basket 0: the amount stands in */
    v = load(inst_a, &k, T0);
    ck_assert_int_eq(v.merchant_samples, FRAUD_STATS_MIN_SAMPLES);
    int64_t sum = 2900;
    for (int i = 0; i < FRAUD_STATS_MIN_SAMPLES - 1; i++)
        sum += 1000 + 100 * i;
    ck_assert_int_eq(v.merchant_avg_amount, sum / FRAUD_STATS_MIN_SAMPLES);
    ck_assert_int_eq(v.merchant_usual_basket,
                     (900 * (FRAUD_STATS_MIN_SAMPLES - 1) + 2900) / FRAUD_STATS_MIN_SAMPLES);
}
END_TEST

START_TEST(load_returns_the_merchants_rules_version)
{
    fraud_keys_t k = {.merchant_id = MERCHANT};
    ck_assert_int_eq(load(inst_a, &k, T0).rules_version, 0);
    db_conn_t *c = db_pool_acquire(inst_b);
    json_t *doc = json_pack("{s:i}", "review_threshold", 40);
    int64_t version = 0;
    char updated[40];
    ck_assert_int_eq(db_fraud_rules_put(c, MERCHANT, doc, "test", 0, &version, updated), DB_OK);
    ck_assert_int_eq(version, 1);
    ck_assert_int_eq(db_fraud_rules_put(c, MERCHANT, doc, "test", 0, &version, updated),
                     DB_CONFLICT);
    ck_assert_int_eq(db_fraud_rules_put(c, MERCHANT, doc, "test", 1, &version, updated), DB_OK);
    ck_assert_int_eq(db_fraud_rules_put(c, "mer_other", doc, "test", 3, &version, updated),
                     DB_CONFLICT);
    db_pool_release(c);
    json_decref(doc);
    ck_assert_int_eq(load(inst_a, &k, T0).rules_version, 2);
}
END_TEST

START_TEST(cleanup_deletes_only_what_left_every_window)
{
    for (int i = 0; i < 30; i++) {
        fraud_event_t ev = attempt(NULL, NULL, "192.0.2.70", NULL, "EUR", 10,
                                   i < 25 ? T0 - 24 * HOUR - i : T0 - HOUR);
        rec(inst_a, &ev);
    }
    fraud_event_t old = attempt(NULL, NULL, NULL, NULL, "EUR", 10, T0 - 9 * 24 * HOUR);
    rec(inst_a, &old); /* an event and a daily row far too old */
#define OLD_DAYS                                                                                   \
    "SELECT count(*) FROM gateway.fraud_merchant_daily WHERE day < 1700000000000 / 86400000 - 8"
    long days = h_sql_long(db, "SELECT count(*) FROM gateway.fraud_merchant_daily");
    ck_assert_int_eq(h_sql_long(db, OLD_DAYS), 1);
    db_conn_t *c = db_pool_acquire(inst_b);
    int64_t n = 0, total = 0;
    do {
        ck_assert_int_eq(fraud_velocity_cleanup(c, T0, 10, &n), DB_OK);
        total += n;
    } while (n > 0);
    db_pool_release(c);
    ck_assert_int_eq(total, 26 + 1);
    ck_assert_int_eq(h_sql_long(db, "SELECT count(*) FROM gateway.fraud_events"), 5);
    ck_assert_int_eq(h_sql_long(db, OLD_DAYS), 0);
    ck_assert_int_eq(h_sql_long(db, "SELECT count(*) FROM gateway.fraud_merchant_daily"), days - 1);
    fraud_keys_t k = {.merchant_id = MERCHANT, .ip = "192.0.2.70"};
    ck_assert_int_eq(load(inst_a, &k, T0).c[FRAUD_KEY_IP][FRAUD_WIN_24H].attempts, 5);
}
END_TEST

START_TEST(keys_are_stored_only_as_hashes)
{
    fraud_event_t ev = attempt("fp_secretish", "grace@example.org", "203.0.113.99", "dev_grace",
                               "EUR", 10, 0 /* database clock */);
    rec(inst_a, &ev);
    char *dump = h_sql(db, "SELECT string_agg(e::text, ' ') FROM gateway.fraud_events e");
    ck_assert_ptr_nonnull(dump);
    ck_assert_ptr_null(strstr(dump, "grace"));
    ck_assert_ptr_null(strstr(dump, "203.0.113"));
    ck_assert_ptr_null(strstr(dump, "fp_secretish"));
    ck_assert_ptr_null(strstr(dump, "dev_grace"));
    free(dump);
    /* and the database clock was used for both the event and the load */
    fraud_keys_t k = {.merchant_id = MERCHANT, .email = "grace@example.org"};
    fraud_velocity_t v = load(inst_b, &k, 0);
    ck_assert_int_eq(v.c[FRAUD_KEY_EMAIL][FRAUD_WIN_10M].attempts, 1);
    ck_assert_int_lt(llabs(v.now_ms - time_now_ms()), 60000);
}
END_TEST

int main(void)
{
    h_init("it_fraud_velocity");
    Suite *s = suite_create("fraud_velocity");
    TCase *tc = h_tcase("velocity", 300);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, counters_agree_across_two_instances);
    tcase_add_test(tc, concurrent_writers_on_two_instances_lose_nothing);
    tcase_add_test(tc, windows_slide_with_the_clock);
    tcase_add_test(tc, recording_belongs_to_the_callers_transaction);
    tcase_add_test(tc, merchants_are_isolated);
    tcase_add_test(tc, merchant_averages_need_enough_recent_approved_checkouts);
    tcase_add_test(tc, load_returns_the_merchants_rules_version);
    tcase_add_test(tc, cleanup_deletes_only_what_left_every_window);
    tcase_add_test(tc, keys_are_stored_only_as_hashes);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
