/* Integration: gatewayd killed with SIGKILL at random points during 200
 * checkouts (provider latency on), restarted each time; clients retry with
 * their idempotency keys like real storefronts. Afterwards: 0 double
 * charges, 0 lost orders, 0 checkouts left unfinished after recovery, and
 * each order.confirmed applied once at the receiver. */
#include "tests/harness/stack.h"
#include <pthread.h>
#include <sodium.h>
#include <string.h>
#include <unistd.h>

#define TOTAL 200
#define CLIENTS 8
#define CARDS 50

static h_stack_t *st;
static char *tokens[CARDS];
static pthread_mutex_t url_mu = PTHREAD_MUTEX_INITIALIZER;
static char cur_url[128];
static int kills;
static int clients_left = CLIENTS;

typedef struct {
    int first, count;
    int final_status[TOTAL];
    char chk[TOTAL][64];
} client_t;

static void *client(void *arg)
{
    client_t *c = arg;
    for (int i = c->first; i < c->first + c->count; i++) {
        char key[64], url[256], hdr[128];
        snprintf(key, sizeof key, "crash-%d", i);
        snprintf(hdr, sizeof hdr, "Idempotency-Key: %s", key);
        char *body = h_stack_checkout_body(tokens[i % CARDS], "SKU-RED-MUG", 1, NULL);
        char xff[96];
        const char *headers[] = {hdr, h_stack_xff(body, xff, sizeof xff), NULL};
        for (int tries = 0; tries < 2000; tries++) {
            pthread_mutex_lock(&url_mu);
            snprintf(url, sizeof url, "%s/v1/checkouts", cur_url);
            pthread_mutex_unlock(&url_mu);
            h_resp_t r = h_http("POST", url, st->m.pk, body, headers);
            long s = r.status;
            const char *code = h_json_str(r.json, "error.code");
            bool retry = s == 0 || s == 202 || (s == 409 && code && !strcmp(code, "request_in_progress")) ||
                         (s == 503 && code && !strcmp(code, "database_unavailable"));
            if (!retry) {
                c->final_status[i] = (int)s;
                const char *id = h_json_str(r.json, "id");
                snprintf(c->chk[i], sizeof c->chk[i], "%s", id ? id : "");
                h_resp_free(&r);
                break;
            }
            h_resp_free(&r);
            usleep(100 * 1000);
        }
        free(body);
    }
    __atomic_fetch_sub(&clients_left, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

/* Runs on the main thread: a daemon dies with the thread that started it
 * (PR_SET_PDEATHSIG), so restarts must come from a thread that outlives the
 * test. */
static void killer(void)
{
    while (__atomic_load_n(&clients_left, __ATOMIC_SEQ_CST) > 0 && kills < 12) {
        usleep((useconds_t)(400 + randombytes_uniform(1200)) * 1000);
        if (__atomic_load_n(&clients_left, __ATOMIC_SEQ_CST) == 0)
            break;
        h_gateway_stop(st->gw[0], SIGKILL);
        st->gw[0] = NULL;
        kills++;
        pthread_mutex_lock(&url_mu);
        snprintf(cur_url, sizeof cur_url, "http://127.0.0.1:1"); /* refused meanwhile */
        pthread_mutex_unlock(&url_mu);
        h_stack_gateway_start(st, 0);
        pthread_mutex_lock(&url_mu);
        snprintf(cur_url, sizeof cur_url, "%s", st->gw[0]->url);
        pthread_mutex_unlock(&url_mu);
    }
}

static long unfinished(void)
{
    return h_sql_long(st->db, "SELECT count(*) FROM gateway.checkouts WHERE status IN "
                              "('pending', 'processing')");
}

START_TEST(sigkill_during_checkouts_loses_and_doubles_nothing)
{
    h_stack_opts_t o = {.gateway_json = "{\"checkout\":{\"lease_seconds\":5},"
                                        "\"recovery\":{\"interval_ms\":200}}"};
    st = h_stack_start(&o);
    for (int i = 0; i < CARDS; i++) {
        char pan[20];
        h_luhn_card("45320000", i + 1, pan);
        tokens[i] = h_stack_token(st, pan);
    }
    h_sandbox_faults(st->stripe, "{\"mode\":\"latency\",\"latency_ms\":150}");
    snprintf(cur_url, sizeof cur_url, "%s", st->gw[0]->url);

    static client_t cl[CLIENTS];
    pthread_t ct[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        cl[i].first = i * (TOTAL / CLIENTS);
        cl[i].count = TOTAL / CLIENTS;
        pthread_create(&ct[i], NULL, client, &cl[i]);
    }
    killer();
    /* from here on nobody kills it: if it dies, that is a crash of its own */
    while (__atomic_load_n(&clients_left, __ATOMIC_SEQ_CST) > 0) {
        ck_assert_msg(h_proc_alive(st->gw[0]->proc), "gatewayd died on its own; see %s",
                      st->gw[0]->proc->log);
        usleep(100 * 1000);
    }
    for (int i = 0; i < CLIENTS; i++)
        pthread_join(ct[i], NULL);
    ck_assert_int_ge(kills, 1);

    /* recovery finishes everything the kills interrupted */
    for (int i = 0; i < 600 && unfinished() > 0; i++)
        usleep(100 * 1000);
    ck_assert_int_eq(unfinished(), 0);
    for (int i = 0; i < 600 && h_sql_long(st->db, "SELECT count(*) FROM gateway.outbox WHERE "
                                                  "state = 'pending'") > 0;
         i++)
        usleep(100 * 1000);
    ck_assert_int_eq(h_sql_long(st->db, "SELECT count(*) FROM gateway.outbox WHERE state <> 'delivered'"), 0);

    /* every client got a final answer that matches the database */
    int answered = 0;
    for (int c = 0; c < CLIENTS; c++)
        for (int i = cl[c].first; i < cl[c].first + cl[c].count; i++) {
            ck_assert_msg(cl[c].final_status[i] != 0, "checkout %d never got an answer", i);
            answered++;
            if (cl[c].final_status[i] == 200)
                ck_assert_int_eq(h_sql_long(st->db, "SELECT count(*) FROM gateway.orders o JOIN "
                                                    "gateway.checkouts c ON c.id = o.checkout_id "
                                                    "WHERE c.id = '%s' AND c.status = 'succeeded'",
                                            cl[c].chk[i]),
                                 1);
        }
    ck_assert_int_eq(answered, TOTAL);

    /* 0 double charges, 0 lost orders: every successful provider charge
     * belongs to exactly one attempt of a payment whose checkout succeeded
     * with an order, and no payment was charged twice */
    json_t *ledgers[2] = {h_sandbox_charges(st->stripe), h_sandbox_charges(st->adyen)};
    long charged = 0;
    for (int l = 0; l < 2; l++) {
        size_t i;
        json_t *ch;
        json_array_foreach(json_object_get(ledgers[l], "charges"), i, ch)
        {
            const char *status = json_string_value(json_object_get(ch, "status"));
            if (strcmp(status, "captured") && strcmp(status, "authorized"))
                continue;
            charged++;
            const char *k = json_string_value(json_object_get(ch, "idempotency_key"));
            ck_assert_int_eq(h_sql_long(st->db,
                                        "SELECT count(*) FROM gateway.payment_attempts a JOIN "
                                        "gateway.payments p ON p.id = a.payment_id JOIN "
                                        "gateway.orders o ON o.checkout_id = p.checkout_id "
                                        "WHERE a.idempotency_key = '%s' AND p.status = 'captured'",
                                        k),
                             1);
        }
        json_decref(ledgers[l]);
    }
    long paid = h_sql_long(st->db, "SELECT count(*) FROM gateway.payments WHERE status = 'captured'");
    ck_assert_int_eq(charged, paid);
    ck_assert_int_eq(h_sql_long(st->db, "SELECT count(*) FROM gateway.orders"), paid);
    ck_assert_int_gt(paid, TOTAL / 2);

    /* each order.confirmed reached the receiver under one event id */
    json_t *d = h_stack_deliveries(st);
    long confirmed = 0;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(d, "events"), i, e)
    {
        if (!strcmp(json_string_value(json_object_get(e, "type")), "order.confirmed"))
            confirmed++;
    }
    json_decref(d);
    ck_assert_int_eq(confirmed, paid);
    ck_assert_int_eq(h_sql_long(st->db, "SELECT count(*) FROM (SELECT object_id FROM gateway.events "
                                        "WHERE type = 'order.confirmed' GROUP BY object_id "
                                        "HAVING count(*) > 1) x"),
                     0);
    h_stack_stop(st);
}
END_TEST

int main(void)
{
    h_init("it_checkout_crash");
    Suite *s = suite_create("checkout_crash");
    TCase *tc = h_tcase("crash", 1200);
    tcase_add_test(tc, sigkill_during_checkouts_loses_and_doubles_nothing);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
