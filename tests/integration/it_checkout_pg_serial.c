/* Integration (runs alone: it restarts the shared PostgreSQL): PostgreSQL
 * restarted twice under checkout load. 0 committed orders are lost, every
 * answered 200 has its order, nothing is left unfinished, and gatewayd
 * serves again without being restarted. */
#include "tests/harness/stack.h"
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#define CLIENTS 4
#define MAX_PER_CLIENT 400

static h_stack_t *st;
static volatile bool stop_load;
#define CARDS 40
static char *tokens[CARDS];

typedef struct {
    int id, n;
    char chk[MAX_PER_CLIENT][64];
    int status[MAX_PER_CLIENT];
} load_t;

static void *load(void *arg)
{
    load_t *l = arg;
    while (!stop_load && l->n < MAX_PER_CLIENT) {
        char key[64];
        snprintf(key, sizeof key, "pg-%d-%d", l->id, l->n);
        char *body = h_stack_checkout_body(tokens[(l->id * 7 + l->n) % CARDS], "SKU-RED-MUG", 1, NULL);
        /* a client retries with the same key until it gets a final answer */
        for (int tries = 0; tries < 600; tries++) {
            h_resp_t r = h_stack_checkout(st, 0, key, body);
            const char *code = h_json_str(r.json, "error.code");
            bool retry = r.status == 0 || r.status == 202 ||
                         (r.status == 503 && code && (!strcmp(code, "database_unavailable") ||
                                                      !strcmp(code, "vault_unavailable"))) ||
                         (r.status == 409 && code && !strcmp(code, "request_in_progress"));
            if (!retry) {
                l->status[l->n] = (int)r.status;
                const char *id = h_json_str(r.json, "id");
                snprintf(l->chk[l->n], sizeof l->chk[0], "%s", id ? id : "");
                h_resp_free(&r);
                break;
            }
            h_resp_free(&r);
            usleep(100 * 1000);
        }
        free(body);
        l->n++;
    }
    return NULL;
}

static void pg_restart(void)
{
    char ctl[256], data[1200], logf[1200];
    FILE *f = popen("ls -d /usr/lib/postgresql/*/bin/pg_ctl | sort -V | tail -1", "r");
    ck_assert_ptr_nonnull(fgets(ctl, sizeof ctl, f));
    pclose(f);
    ctl[strcspn(ctl, "\n")] = '\0';
    snprintf(data, sizeof data, "%s/data", h_pgbase());
    snprintf(logf, sizeof logf, "%s/log/postgres.log", h_pgbase());
    char *argv_root[] = {"/usr/sbin/runuser", "-u", "postgres", "--", ctl, "-D", data, "-l", logf,
                         "-m", "fast", "-w", "-t", "60", "restart", NULL};
    char *argv_user[] = {ctl, "-D", data, "-l", logf, "-m", "fast", "-w", "-t", "60", "restart", NULL};
    int rc = h_run(NULL, getuid() == 0 ? argv_root : argv_user);
    ck_assert_int_eq(rc, 0);
}

START_TEST(two_restarts_lose_no_committed_order)
{
    st = h_stack_start(NULL);
    for (int i = 0; i < CARDS; i++) {
        char pan[20];
        h_luhn_card("55550000", i + 1, pan);
        tokens[i] = h_stack_token(st, pan);
    }
    static load_t l[CLIENTS];
    pthread_t t[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        l[i].id = i;
        pthread_create(&t[i], NULL, load, &l[i]);
    }
    sleep(2);
    pg_restart();
    sleep(2);
    pg_restart();
    sleep(2);
    stop_load = true;
    for (int i = 0; i < CLIENTS; i++)
        pthread_join(t[i], NULL);

    /* gatewayd (never restarted) serves again */
    char *body = h_stack_checkout_body(tokens[0], "SKU-RED-MUG", 1, NULL);
    h_resp_t r = h_stack_checkout(st, 0, "after-restarts", body);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    h_resp_free(&r);
    free(body);

    for (int i = 0; i < 300 && h_sql_long(st->db, "SELECT count(*) FROM gateway.checkouts "
                                                  "WHERE status IN ('pending','processing')") > 0;
         i++)
        usleep(100 * 1000);
    ck_assert_int_eq(h_sql_long(st->db, "SELECT count(*) FROM gateway.checkouts WHERE status IN "
                                        "('pending','processing')"),
                     0);
    long ok = 0;
    for (int i = 0; i < CLIENTS; i++)
        for (int k = 0; k < l[i].n; k++) {
            ck_assert_msg(l[i].status[k] != 0, "a checkout never got a final answer");
            if (l[i].status[k] != 200)
                continue;
            ok++;
            ck_assert_int_eq(h_sql_long(st->db, "SELECT count(*) FROM gateway.orders WHERE "
                                                "checkout_id = '%s'",
                                        l[i].chk[k]),
                             1);
        }
    ck_assert_int_gt(ok, 10);
    /* every order has exactly one successful charge, and every successful
     * charge an order */
    long orders = h_sql_long(st->db, "SELECT count(*) FROM gateway.orders");
    ck_assert_int_eq(h_stack_charges(st, "captured"), orders);
    for (int i = 0; i < CARDS; i++)
        free(tokens[i]);
    h_stack_stop(st);
}
END_TEST

int main(void)
{
    h_init("it_checkout_pg_serial");
    Suite *s = suite_create("checkout_pg_restart");
    TCase *tc = h_tcase("pg_restart", 900);
    tcase_add_test(tc, two_restarts_lose_no_committed_order);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
