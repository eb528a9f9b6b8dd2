/* Integration: graceful shutdown. A request blocked in the database when
 * SIGTERM arrives still completes; new connections are refused; the process
 * exits 0 once it is done. */
#include "tests/harness/harness.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    h_gateway_t *g;
    const char *key;
    long status;
    char name[64];
} req_t;

static void *slow_request(void *arg)
{
    req_t *q = arg;
    h_resp_t r = h_get(q->g, "/v1/merchant", q->key);
    q->status = r.status;
    const char *n = h_json_str(r.json, "name");
    snprintf(q->name, sizeof q->name, "%s", n ? n : "");
    h_resp_free(&r);
    return NULL;
}

static bool can_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    bool ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

START_TEST(in_flight_request_finishes_after_sigterm)
{
    char *db = h_db_create();
    h_merchant_t m = h_merchant_create(db, "Slow Shop");
    h_gateway_t *g = h_gateway_start(db, "gatewayd", NULL);
    int port = g->port;

    /* Hold a lock that the merchant lookup must wait for. */
    PGconn *admin = h_db_connect(db, "admin");
    PQclear(PQexec(admin, "BEGIN"));
    PGresult *lr = PQexec(admin, "LOCK TABLE gateway.merchants IN ACCESS EXCLUSIVE MODE");
    ck_assert_int_eq(PQresultStatus(lr), PGRES_COMMAND_OK);
    PQclear(lr);

    req_t q = {.g = g, .key = m.sk};
    pthread_t t;
    pthread_create(&t, NULL, slow_request, &q);
    /* wait until gatewayd's query is actually blocked on the lock */
    long waiting = 0;
    for (int i = 0; i < 500 && waiting < 1; i++) {
        waiting = h_sql_long(db, "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                                 "current_database() AND application_name = 'gatewayd' AND "
                                 "wait_event_type = 'Lock'");
        usleep(10 * 1000);
    }
    ck_assert_int_eq(waiting, 1);

    kill(g->proc->pid, SIGTERM);
    /* the listening socket closes while the request is still running */
    bool refused = false;
    for (int i = 0; i < 200 && !refused; i++) {
        refused = !can_connect(port);
        usleep(10 * 1000);
    }
    ck_assert_msg(refused, "new connections still accepted during shutdown");
    ck_assert(h_proc_alive(g->proc));

    PQclear(PQexec(admin, "COMMIT"));
    pthread_join(t, NULL);
    ck_assert_int_eq(q.status, 200);
    ck_assert_str_eq(q.name, "Slow Shop");
    ck_assert_int_eq(h_proc_stop(g->proc, 0, 10000), 0); /* exits by itself, code 0 */
    PQfinish(admin);
    free(g->proc);
    free(g);
    h_db_drop(db);
    free(db);
}
END_TEST

START_TEST(bad_config_stops_startup_naming_the_key)
{
    char *path = str_printf("%s/bad.json", h_workdir());
    const char *doc = "{\"listen\": {\"port\": \"eighty\"}}";
    ck_assert_int_eq(file_write_atomic(path, doc, strlen(doc), 0644), 0);
    char *out = NULL;
    char *argv[] = {GATEWAYD_BIN, "--config", path, NULL};
    /* stderr is where the message goes; capture it through a shell-free dup */
    h_proc_t *p = h_proc_start("badcfg", argv, NULL);
    int rc = h_proc_stop(p, 0, 10000);
    ck_assert_int_eq(rc, 2);
    out = file_read_all(p->log, 1 << 16, NULL);
    ck_assert_ptr_nonnull(strstr(out, "listen.port"));
    free(out);
    free(p);
    free(path);
}
END_TEST

int main(void)
{
    h_init("it_shutdown");
    Suite *s = suite_create("shutdown");
    TCase *tc = h_tcase("shutdown", 300);
    tcase_add_test(tc, in_flight_request_finishes_after_sigterm);
    tcase_add_test(tc, bad_config_stops_startup_naming_the_key);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
