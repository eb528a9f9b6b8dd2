/* Integration: hostile replies and secrets. A tiny misbehaving server in the
 * test answers each adapter with HTML, wrong JSON, a huge body, silence,
 * a truncated body, 5xx, 429, garbage, an empty reply or deep nesting: the
 * outcome is always unknown or unavailable as appropriate, never a crash
 * or a false "charged"/"declined". Then every operation, including
 * failures and a server that echoes our request headers back, leaves no
 * credential (and no full PAN) in any log line or result. */
#include "it_providers_common.h"
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

typedef enum {
    M_HTML200,
    M_JSON_WRONG,
    M_EMPTY200,
    M_HUGE,
    M_SLOW,
    M_TRUNCATED,
    M_503,
    M_429,
    M_CLOSE,
    M_GARBAGE,
    M_DEEP,
    M_BINARY,
    M_ECHO500, /* 500 whose body repeats our request headers */
    M__COUNT
} mode_t_;

static const char *const mode_names[] = {"html200",   "json_wrong", "empty200", "huge",  "slow",
                                         "truncated", "503",        "429",      "close", "garbage",
                                         "deep",      "binary",     "echo500"};

/* what an authorization must come back as */
static const prv_outcome_t expected[] = {
    PRV_UNKNOWN,     PRV_UNKNOWN, PRV_UNKNOWN, PRV_UNKNOWN, PRV_UNKNOWN, PRV_UNKNOWN, PRV_UNKNOWN,
    PRV_UNAVAILABLE, PRV_UNKNOWN, PRV_UNKNOWN, PRV_UNKNOWN, PRV_UNKNOWN, PRV_UNKNOWN};

static atomic_int mode, active;
static atomic_bool stopping;
static int listen_fd, port;
static pthread_t acceptor;

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void reply(int fd, const char *status, const char *ctype, const char *body, size_t len)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, ctype, len);
    send_all(fd, head, (size_t)n);
    send_all(fd, body, len);
}

/* Reads one request (headers and Content-Length body); malloc'd. */
static char *read_request(int fd)
{
    size_t cap = 65536, got = 0;
    char *buf = calloc(1, cap + 1);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (got < cap && poll(&p, 1, 2000) > 0) {
        ssize_t r = recv(fd, buf + got, cap - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
        buf[got] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (!end)
            continue;
        const char *cl = strcasestr(buf, "Content-Length:");
        size_t body = cl ? (size_t)atol(cl + 15) : 0;
        if (got >= (size_t)(end + 4 - buf) + body)
            break;
    }
    return buf;
}

static void *serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char *rq = read_request(fd);
    int m = atomic_load(&mode);
    /* Stripe's first call creates a PaymentIntent without a card: answer it
     * properly so the confirmation meets the misbehaviour */
    if (!strncmp(rq, "POST /v1/payment_intents HTTP", 29)) {
        const char *ok = "{\"id\":\"pi_bad123\",\"object\":\"payment_intent\","
                         "\"status\":\"requires_payment_method\"}";
        reply(fd, "200 OK", "application/json", ok, strlen(ok));
    } else if (m == M_HTML200) {
        const char *b = "<html><body>Service temporarily unavailable</body></html>";
        reply(fd, "200 OK", "text/html", b, strlen(b));
    } else if (m == M_JSON_WRONG) {
        const char *b = "{\"hello\":\"world\",\"status\":42,\"id\":[1,2]}";
        reply(fd, "200 OK", "application/json", b, strlen(b));
    } else if (m == M_EMPTY200) {
        reply(fd, "200 OK", "application/json", "", 0);
    } else if (m == M_HUGE) {
        size_t n = 3u << 20;
        char *b = malloc(n);
        memset(b, ' ', n);
        b[0] = '{';
        b[n - 1] = '}';
        reply(fd, "200 OK", "application/json", b, n);
        free(b);
    } else if (m == M_SLOW) {
        for (int i = 0; i < 40 && !atomic_load(&stopping); i++)
            usleep(25000); /* a second: past the client's timeout */
    } else if (m == M_TRUNCATED) {
        const char *h = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        "Content-Length: 1000\r\n\r\n{\"id\":\"pi_x\",\"sta";
        send_all(fd, h, strlen(h));
    } else if (m == M_503) {
        const char *b = "<html>503 Service Unavailable</html>";
        reply(fd, "503 Service Unavailable", "text/html", b, strlen(b));
    } else if (m == M_429) {
        reply(fd, "429 Too Many Requests", "application/json", "{}", 2);
    } else if (m == M_GARBAGE) {
        send_all(fd, "SPDY/9 banana\r\n\r\n", 17);
    } else if (m == M_DEEP) {
        size_t n = 200000;
        char *b = malloc(2 * n);
        memset(b, '[', n);
        memset(b + n, ']', n);
        reply(fd, "200 OK", "application/json", b, 2 * n);
        free(b);
    } else if (m == M_BINARY) {
        const char b[] = "{\"id\":\"pi_\0\xff\xfe\",\"status\":\"succeeded\"}";
        reply(fd, "201 Created", "application/json", b, sizeof b - 1);
    } else if (m == M_ECHO500) {
        reply(fd, "500 Internal Server Error", "text/plain", rq, strlen(rq));
    }
    /* M_CLOSE: read it, say nothing */
    free(rq);
    close(fd);
    atomic_fetch_sub(&active, 1);
    return NULL;
}

static void *accept_loop(void *arg)
{
    (void)arg;
    while (!atomic_load(&stopping)) {
        struct pollfd p = {.fd = listen_fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int fd = accept(listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        pthread_t t;
        atomic_fetch_add(&active, 1);
        if (pthread_create(&t, NULL, serve, (void *)(intptr_t)fd) == 0)
            pthread_detach(t);
        else {
            close(fd);
            atomic_fetch_sub(&active, 1);
        }
    }
    return NULL;
}

static void bad_server_start(void)
{
    listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    ck_assert_int_eq(bind(listen_fd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(listen_fd, 64), 0);
    socklen_t sl = sizeof sa;
    getsockname(listen_fd, (struct sockaddr *)&sa, &sl);
    port = ntohs(sa.sin_port);
    atomic_store(&stopping, false);
    pthread_create(&acceptor, NULL, accept_loop, NULL);
}

static void bad_server_stop(void)
{
    atomic_store(&stopping, true);
    pthread_join(acceptor, NULL);
    close(listen_fd);
    while (atomic_load(&active) > 0)
        usleep(10000);
}

static const char *const types[] = {"stripe", "adyen", "checkout"};

START_TEST(hostile_replies_are_unknown_or_unavailable_never_a_crash)
{
    bad_server_start();
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
    prv_health_reset();
    for (int t = 0; t < 3; t++) {
        prv_config_t cfg;
        t_config(&cfg, types[t], types[t], base, 1, 400);
        prv_card_t *card = t_card("4242424242424242");
        for (int m = 0; m < M__COUNT; m++) {
            atomic_store(&mode, m);
            char key[64];
            snprintf(key, sizeof key, "bad-%d-%d-a1", t, m);
            prv_payment_t pay = t_payment(key, 1000, false);
            prv_result_t r = prv_authorize(&cfg, &pay, card, key);
            ck_assert_msg(r.outcome == expected[m], "%s/%s authorize: %s (%s)", types[t],
                          mode_names[m], prv_outcome_str(r.outcome), r.reason);
            /* a lookup that gets nonsense settles nothing */
            prv_result_t l = prv_lookup(&cfg, &pay, key, "pi_bad123", card);
            ck_assert_msg(l.outcome == PRV_UNKNOWN, "%s/%s lookup: %s (%s)", types[t],
                          mode_names[m], prv_outcome_str(l.outcome), l.reason);
            /* nor do modifications: unknown (retry later) or unavailable */
            prv_result_t ops[3] = {prv_capture(&cfg, "pay_bad1", 500, "EUR", "bad-cap"),
                                   prv_void(&cfg, "pay_bad1", "bad-void"),
                                   prv_refund(&cfg, "pay_bad1", 500, "EUR", "bad-ref")};
            for (int o = 0; o < 3; o++)
                ck_assert_msg(ops[o].outcome == expected[m], "%s/%s op %d: %s (%s)", types[t],
                              mode_names[m], o, prv_outcome_str(ops[o].outcome), ops[o].reason);
        }
        prv_card_free(card);
        prv_config_clear(&cfg);
    }
    bad_server_stop();
    /* nobody listening: nothing was sent, so known not charged */
    prv_config_t cfg;
    t_config(&cfg, "stripe", "stripe", base, 1, 400);
    prv_card_t *card = t_card("4242424242424242");
    prv_payment_t pay = t_payment("refused", 1000, false);
    prv_result_t r = prv_authorize(&cfg, &pay, card, "refused-a1");
    ck_assert_int_eq(r.outcome, PRV_UNAVAILABLE);
    ck_assert_str_eq(r.reason, "provider_unreachable");
    prv_card_free(card);
    prv_config_clear(&cfg);
    httpc_thread_cleanup();
}
END_TEST

static bool file_has(const char *text, const char *needle)
{
    return text && strstr(text, needle) != NULL;
}

static void assert_clean(const prv_result_t *r)
{
    const char *secrets[] = {T_STRIPE_KEY, T_ADYEN_KEY, T_CKO_KEY, "sk_test_WRONGsecretVALUE999",
                             "SECRET"};
    for (size_t i = 0; i < PC_ARRAY_LEN(secrets); i++) {
        ck_assert(!strstr(r->reason, secrets[i]));
        ck_assert(!strstr(r->provider_code, secrets[i]));
        ck_assert(!strstr(r->provider_ref, secrets[i]));
    }
}

static int fetch_visa(void *cls, prv_card_t **card)
{
    (void)cls;
    *card = t_card("4242424242424242");
    return 0;
}

START_TEST(credentials_never_appear_in_logs_or_results)
{
    char logpath[1024];
    snprintf(logpath, sizeof logpath, "%s/secrets.log", h_workdir());
    int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    log_setup("it_providers_wire", LOG_DEBUG, fd);
    prv_health_reset();

    h_sandbox_t *s[3];
    prv_config_t cfg[3];
    for (int t = 0; t < 3; t++) {
        s[t] = t_sandbox(types[t], types[t]);
        t_config(&cfg[t], types[t], types[t], s[t]->url, t + 1, 1000);
    }
    prv_card_t *card = t_card("4242424242424242");
    prv_card_t *declined = t_card("4000000000009995");
    for (int t = 0; t < 3; t++) {
        char key[64];
        snprintf(key, sizeof key, "sec-%d-a1", t);
        prv_payment_t pay = t_payment(key, 5000, false);
        prv_result_t r[8];
        r[0] = prv_authorize(&cfg[t], &pay, card, key);
        ck_assert_int_eq(r[0].outcome, PRV_AUTHORIZED);
        r[1] = prv_capture(&cfg[t], r[0].provider_ref, 5000, "EUR", "sec-cap");
        r[2] = prv_refund(&cfg[t], r[0].provider_ref, 100, "EUR", "sec-ref");
        r[3] = prv_void(&cfg[t], r[0].provider_ref, "sec-void"); /* refused: captured */
        r[4] = prv_lookup(&cfg[t], &pay, key, "", card);
        snprintf(key, sizeof key, "sec-%d-d1", t);
        r[5] = prv_authorize(&cfg[t], &pay, declined, key);
        /* wrong credentials: the provider refuses and may echo part of them */
        prv_config_t wrong = cfg[t];
        wrong.creds = NULL;
        const char *blob = t == 1 ? "{\"api_key\":\"sk_test_WRONGsecretVALUE999\","
                                    "\"merchant_account\":\"X\"}"
                                  : "{\"secret_key\":\"sk_test_WRONGsecretVALUE999\"}";
        ck_assert_int_eq(prv_config_set_credentials(&wrong, blob, strlen(blob)), 0);
        r[6] = prv_authorize(&wrong, &pay, card, "sec-wrong-a1");
        ck_assert_int_eq(r[6].outcome, PRV_UNAVAILABLE);
        prv_config_clear(&wrong);
        r[7] = prv_lookup(&cfg[t], &pay, "sec-none-a1", "", NULL);
        for (int i = 0; i < 8; i++)
            assert_clean(&r[i]);
    }
    /* a failover run: stripe answers 500, is looked up and fenced, adyen charges */
    h_sandbox_faults(s[0], "{\"mode\":\"error_500\"}");
    prv_plan_t plan;
    prv_payment_t pay = t_payment("pay_sec_run", 700, true);
    ck_assert_int_eq(prv_plan(cfg, 3, NULL, &pay, &plan), 3);
    prv_run_t run;
    prv_hooks_t hooks = {.fetch_card = fetch_visa};
    ck_assert_int_eq(prv_execute(&pay, &plan, NULL, &hooks, &run), 0);
    ck_assert_int_eq(run.result.outcome, PRV_CAPTURED);
    ck_assert_int_eq(run.nattempts, 2);
    for (int i = 0; i < run.nattempts; i++)
        assert_clean(&run.attempts[i].result);
    /* a server that reflects our request headers in a 500 */
    bad_server_start();
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
    atomic_store(&mode, M_ECHO500);
    for (int t = 0; t < 3; t++) {
        prv_config_t echo;
        t_config(&echo, types[t], types[t], base, 1, 1000);
        prv_payment_t p = t_payment("echo", 700, false);
        prv_result_t e = prv_authorize(&echo, &p, card, "echo-a1");
        ck_assert_int_eq(e.outcome, PRV_UNKNOWN);
        assert_clean(&e);
        prv_config_clear(&echo);
    }
    bad_server_stop();

    prv_card_free(card);
    prv_card_free(declined);
    for (int t = 0; t < 3; t++) {
        prv_config_clear(&cfg[t]);
        h_sandbox_stop(s[t]);
    }
    httpc_thread_cleanup();
    log_setup("it_providers_wire", LOG_WARN, 2);
    close(fd);

    char *text = file_read_all(logpath, 16u << 20, NULL);
    ck_assert_ptr_nonnull(text);
    ck_assert_msg(file_has(text, "\"msg\":\"provider call\""), "no provider log lines: %s", text);
    ck_assert(file_has(text, "\"outcome\":\"authorized\""));
    ck_assert(file_has(text, "\"reason\":\"authentication_failed\""));
    ck_assert(file_has(text, "\"reason\":\"provider_error\""));
    const char *secrets[] = {T_STRIPE_KEY,          T_ADYEN_KEY,        T_CKO_KEY,
                             "WRONGsecretVALUE999", "SECRETstripe",     "SECRETcheckout",
                             "secretADYEN",         "4242424242424242", "4000000000009995"};
    for (size_t i = 0; i < PC_ARRAY_LEN(secrets); i++)
        ck_assert_msg(!file_has(text, secrets[i]), "%s appears in the log", secrets[i]);
    free(text);
    /* nor in what the sandboxes printed */
    for (int t = 0; t < 3; t++) {
        char path[1100];
        snprintf(path, sizeof path, "%s/%s.out", h_workdir(), types[t]);
        char *out = file_read_all(path, 16u << 20, NULL);
        ck_assert_ptr_nonnull(out);
        ck_assert(!file_has(out, "4242424242424242"));
        free(out);
    }
}
END_TEST

int main(void)
{
    h_init("it_providers_wire");
    Suite *s = suite_create("providers_wire");
    TCase *tc = h_tcase("wire", 300);
    tcase_add_test(tc, hostile_replies_are_unknown_or_unavailable_never_a_crash);
    tcase_add_test(tc, credentials_never_appear_in_logs_or_results);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
