/* Unit: where a merchant's URL (webhook, provider base URL) may connect:
 * the address check on every range, and httpc refusing a loopback listener
 * after DNS (the listener sees no connection) unless loopback is allowed. */
#include "tests/harness/harness.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static bool allowed(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1)
        a4->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1)
        a6->sin6_family = AF_INET6;
    else
        ck_abort_msg("bad test address %s", ip);
    return httpc_addr_allowed((struct sockaddr *)&ss);
}

START_TEST(merchant_urls_reach_public_addresses_only_by_default)
{
    httpc_allow_loopback_http(false);
    httpc_allow_private_networks(false);
    static const char *const pub[] = {
        "8.8.8.8",       "1.1.1.1", "172.32.0.1", "100.128.0.1", "2001:4860:4860::8888",
        "::ffff:8.8.8.8"};
    static const char *const never[] = {"169.254.169.254",
                                        "169.254.0.1",
                                        "0.0.0.0",
                                        "0.1.2.3",
                                        "224.0.0.1",
                                        "240.0.0.1",
                                        "255.255.255.255",
                                        "::",
                                        "fe80::1",
                                        "ff02::1",
                                        "::ffff:169.254.169.254",
                                        "64:ff9b::a9fe:a9fe"};
    static const char *const loop[] = {"127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1",
                                       "64:ff9b::7f00:1"};
    static const char *const priv[] = {"10.0.0.1",    "172.16.0.1",     "172.31.255.254",
                                       "192.168.1.1", "100.64.0.1",     "fd00::1",
                                       "fc00::1",     "::ffff:10.1.2.3"};
    for (size_t i = 0; i < PC_ARRAY_LEN(pub); i++)
        ck_assert_msg(allowed(pub[i]), "%s refused", pub[i]);
    for (size_t i = 0; i < PC_ARRAY_LEN(never); i++)
        ck_assert_msg(!allowed(never[i]), "%s allowed", never[i]);
    for (size_t i = 0; i < PC_ARRAY_LEN(loop); i++)
        ck_assert_msg(!allowed(loop[i]), "%s allowed", loop[i]);
    for (size_t i = 0; i < PC_ARRAY_LEN(priv); i++)
        ck_assert_msg(!allowed(priv[i]), "%s allowed", priv[i]);

    /* each switch opens its own range and nothing else */
    httpc_allow_loopback_http(true);
    for (size_t i = 0; i < PC_ARRAY_LEN(loop); i++)
        ck_assert_msg(allowed(loop[i]), "%s refused", loop[i]);
    for (size_t i = 0; i < PC_ARRAY_LEN(priv); i++)
        ck_assert_msg(!allowed(priv[i]), "%s allowed", priv[i]);
    httpc_allow_private_networks(true);
    for (size_t i = 0; i < PC_ARRAY_LEN(priv); i++)
        ck_assert_msg(allowed(priv[i]), "%s refused", priv[i]);
    for (size_t i = 0; i < PC_ARRAY_LEN(never); i++)
        ck_assert_msg(!allowed(never[i]), "%s allowed", never[i]);
    httpc_allow_private_networks(false);
}
END_TEST

static int listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(fd, 8), 0);
    socklen_t len = sizeof sa;
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

static httpc_status_t post(const char *host, int port, bool untrusted, httpc_response_t *rs)
{
    char url[128];
    snprintf(url, sizeof url, "http://%s:%d/hook", host, port);
    httpc_request_t rq = {.method = "POST",
                          .url = url,
                          .body = "{}",
                          .body_len = 2,
                          .connect_timeout_ms = 500,
                          .timeout_ms = 300,
                          .untrusted_target = untrusted};
    return httpc_perform(&rq, rs);
}

/* A name that resolves to loopback ("localhost") passes any check made on
 * the URL's text; the check on the connected address still stops it. */
START_TEST(a_merchant_url_resolving_to_loopback_is_never_connected)
{
    int port, fd = listener(&port);
    httpc_allow_loopback_http(false);
    httpc_response_t rs;
    ck_assert_int_eq(post("localhost", port, true, &rs), HTTPC_NOT_SENT);
    ck_assert_str_eq(rs.errbuf, "address not allowed for outbound requests");
    httpc_response_free(&rs);
    ck_assert_int_eq(accept(fd, NULL, NULL), -1);
    ck_assert(errno == EAGAIN || errno == EWOULDBLOCK);

    /* the operator's own services are not merchant URLs */
    ck_assert_int_eq(post("127.0.0.1", port, false, &rs), HTTPC_TIMEOUT);
    httpc_response_free(&rs);
    int c = accept(fd, NULL, NULL);
    ck_assert_int_ge(c, 0);
    close(c);

    /* where loopback is allowed (sandboxes), the same merchant URL connects */
    httpc_allow_loopback_http(true);
    ck_assert_int_eq(post("127.0.0.1", port, true, &rs), HTTPC_TIMEOUT);
    httpc_response_free(&rs);
    c = accept(fd, NULL, NULL);
    ck_assert_int_ge(c, 0);
    close(c);
    close(fd);
    httpc_thread_cleanup();
}
END_TEST

int main(void)
{
    h_init("test_httpc");
    Suite *s = suite_create("httpc");
    TCase *tc = h_tcase("outbound", 30);
    tcase_add_test(tc, merchant_urls_reach_public_addresses_only_by_default);
    tcase_add_test(tc, a_merchant_url_resolving_to_loopback_is_never_connected);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
