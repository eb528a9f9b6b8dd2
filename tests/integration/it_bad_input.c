/* Integration: 1,000 malformed requests (random bytes, truncated JSON, deep
 * nesting, huge numbers, invalid UTF-8, wrong types, oversized headers and
 * bodies); each gets a 4xx JSON error, and the server keeps serving. */
#include "gateway/gateway.h"
#include "tests/harness/harness.h"
#include <sodium.h>
#include <string.h>

static char *db;
static h_gateway_t *gwy;
static h_merchant_t m;

static void setup(void)
{
    db = h_db_create();
    gwy = h_gateway_start(db, "gatewayd", NULL);
    m = h_merchant_create(db, "Fuzz Target");
}

static void teardown(void)
{
    h_gateway_stop(gwy, SIGTERM);
    h_db_drop(db);
    free(db);
}

/* Builds the i-th malformed body; *hdr may be set to an extra header. */
static char *malformed(int i, const char **ctype, char **hdr)
{
    static const char *valid = "{\"name\":\"New Name\"}";
    *ctype = "Content-Type: application/json";
    *hdr = NULL;
    switch (i % 12) {
    case 0: { /* random bytes */
        size_t n = 1 + randombytes_uniform(2000);
        char *b = malloc(n + 1);
        randombytes_buf(b, n);
        for (size_t k = 0; k < n; k++)
            if (b[k] == 0)
                b[k] = '{';
        b[n] = '\0';
        return b;
    }
    case 1: /* truncated JSON */
        return strndup(valid, 1 + randombytes_uniform((uint32_t)strlen(valid) - 2));
    case 2: { /* deep nesting */
        size_t depth = 3000 + randombytes_uniform(20000);
        char *b = malloc(depth * 2 + 16);
        memset(b, '[', depth);
        memset(b + depth, ']', depth);
        b[depth * 2] = '\0';
        return b;
    }
    case 3: /* huge numbers */
        return strdup(i % 2 ? "{\"name\": 1e999999}"
                            : "{\"name\": 123456789012345678901234567890123456789}");
    case 4: /* invalid UTF-8 */
        return strdup("{\"name\": \"caf\xc3\x28 \xff\xfe\"}");
    case 5: /* wrong types */
        return strdup(i % 2 ? "{\"name\": 42}" : "{\"name\": [\"a\"]}");
    case 6: /* unknown and missing fields */
        return strdup(i % 2 ? "{\"nom\": \"x\"}" : "{}");
    case 7: /* not an object */
        return strdup(i % 2 ? "[1,2,3]" : "\"just a string\"");
    case 8: /* wrong content type */
        *ctype = i % 2 ? "Content-Type: text/plain" : "Content-Type: application/x-www-form-urlencoded";
        return strdup(valid);
    case 9: { /* oversized headers */
        size_t n = GW_MAX_HEADER_BYTES + 1 + randombytes_uniform(8000);
        char *h = malloc(n + 16);
        memcpy(h, "X-Padding: ", 11);
        memset(h + 11, 'a', n);
        h[11 + n] = '\0';
        *hdr = h;
        return strdup(valid);
    }
    case 10: { /* over 64 KiB */
        size_t n = GW_MAX_BODY + 1 + randombytes_uniform(10000);
        char *b = malloc(n + 1);
        memset(b, ' ', n);
        b[0] = '{';
        b[n - 1] = '}';
        b[n] = '\0';
        return b;
    }
    default: /* empty name, control characters, NUL escape */
        return strdup(i % 3 == 0 ? "{\"name\": \"\"}"
                                 : (i % 3 == 1 ? "{\"name\": \"a\\u0000b\"}"
                                               : "{\"name\": \"tab\\there\"}"));
    }
}

START_TEST(thousand_malformed_requests_get_4xx_json)
{
    char url[256];
    snprintf(url, sizeof url, "%s/v1/merchant", gwy->url);
    int by_status[600] = {0};
    for (int i = 0; i < 1000; i++) {
        const char *ctype;
        char *hdr;
        char *body = malformed(i, &ctype, &hdr);
        const char *headers[] = {ctype, hdr, NULL};
        h_resp_t r = h_http("POST", url, m.sk, body, headers);
        ck_assert_msg(r.status >= 400 && r.status < 500, "case %d: status %ld: %s", i % 12,
                      r.status, r.body);
        ck_assert_msg(r.json && h_json_str(r.json, "error.code") &&
                          h_json_str(r.json, "error.type") && h_json_str(r.json, "error.message"),
                      "case %d: not a JSON error: %s", i % 12, r.body);
        by_status[r.status]++;
        h_resp_free(&r);
        free(body);
        free(hdr);
    }
    ck_assert_int_gt(by_status[400], 0);
    ck_assert_int_gt(by_status[413], 0);
    ck_assert_int_gt(by_status[431], 0);
    /* still serving, and the merchant was never renamed by garbage */
    h_resp_t r = h_get(gwy, "/healthz", NULL);
    ck_assert_int_eq(r.status, 200);
    h_resp_free(&r);
    r = h_get(gwy, "/v1/merchant", m.sk);
    ck_assert_str_eq(h_json_str(r.json, "name"), "Fuzz Target");
    h_resp_free(&r);
}
END_TEST

START_TEST(errors_name_the_field)
{
    h_resp_t r = h_post(gwy, "/v1/merchant", m.sk, "{\"name\": 42}");
    h_assert_error(&r, 400, ERR_PARAMETER_INVALID);
    ck_assert_str_eq(h_json_str(r.json, "error.param"), "name");
    h_resp_free(&r);
    r = h_post(gwy, "/v1/merchant", m.sk, "{}");
    h_assert_error(&r, 400, ERR_PARAMETER_MISSING);
    ck_assert_str_eq(h_json_str(r.json, "error.param"), "name");
    h_resp_free(&r);
    r = h_post(gwy, "/v1/merchant", m.sk, "{\"name\":\"x\",\"color\":\"red\"}");
    h_assert_error(&r, 400, ERR_PARAMETER_UNKNOWN);
    ck_assert_str_eq(h_json_str(r.json, "error.param"), "color");
    h_resp_free(&r);
    r = h_post(gwy, "/v1/merchant", m.sk, "{\"name\": \"x\"");
    h_assert_error(&r, 400, ERR_INVALID_JSON);
    h_resp_free(&r);
    /* a body that quotes a card number is not echoed back */
    r = h_post(gwy, "/v1/merchant", m.sk, "{\"name\": 4242424242424242x}");
    h_assert_error(&r, 400, ERR_INVALID_JSON);
    ck_assert_ptr_null(strstr(r.body, "4242424242424242"));
    h_resp_free(&r);
    /* nor a card number typed where a field name goes (the 400 names the
     * field, masked) */
    r = h_post(gwy, "/v1/merchant", m.sk, "{\"name\":\"x\",\"4242 4242 4242 4242\":1}");
    h_assert_error(&r, 400, ERR_PARAMETER_UNKNOWN);
    ck_assert_ptr_null(strstr(r.body, "4242 4242 4242 4242"));
    ck_assert_str_eq(h_json_str(r.json, "error.param"), "4242 42** **** 4242");
    h_resp_free(&r);
    r = h_post(gwy, "/v1/merchant", m.sk, "{\"name\":\"Renamed\"}");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(h_json_str(r.json, "name"), "Renamed");
    h_resp_free(&r);
}
END_TEST

START_TEST(raw_garbage_on_the_socket_does_not_stop_the_server)
{
    for (int i = 0; i < 50; i++) {
        unsigned char junk[512];
        randombytes_buf(junk, sizeof junk);
        char *back = h_raw_tcp(gwy->port, junk, sizeof junk, 500);
        free(back);
    }
    const char *bad_line = "GARBAGE / HTTP/9.9\r\n\r\n";
    free(h_raw_tcp(gwy->port, bad_line, strlen(bad_line), 500));
    const char *no_host = "GET /healthz HTTP/1.1\r\n\r\n";
    free(h_raw_tcp(gwy->port, no_host, strlen(no_host), 500));
    h_resp_t r = h_get(gwy, "/healthz", NULL);
    ck_assert_int_eq(r.status, 200);
    h_resp_free(&r);
}
END_TEST

/* A body whose end is ambiguous is refused, not guessed (request smuggling),
 * and a path id that is not printable ASCII is no resource (not a 500). */
START_TEST(ambiguous_framing_and_odd_ids_are_4xx)
{
    char req[512];
    snprintf(req, sizeof req,
             "POST /v1/merchant HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
             "Content-Type: application/json\r\nContent-Length: 20\r\nContent-Length: 5\r\n"
             "\r\n{\"name\":\"Demo Shop\"}",
             m.sk);
    char *back = h_raw_tcp(gwy->port, req, strlen(req), 2000);
    ck_assert_ptr_nonnull(back);
    ck_assert_msg(strstr(back, " 400 ") && strstr(back, "message_framing_invalid"), "%s", back);
    free(back);
    snprintf(req, sizeof req,
             "POST /v1/merchant HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
             "Content-Type: application/json\r\nTransfer-Encoding: gzip\r\n\r\n"
             "{\"name\":\"Demo Shop\"}",
             m.sk);
    back = h_raw_tcp(gwy->port, req, strlen(req), 2000);
    ck_assert_ptr_nonnull(back);
    ck_assert_msg(strstr(back, " 400 ") && strstr(back, "Transfer-Encoding"), "%s", back);
    free(back);
    /* Content-Length and chunked together: a proxy going by the length sees
     * one request, chunked framing would see a second one smuggled behind */
    snprintf(req, sizeof req,
             "POST /v1/merchant HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
             "Content-Type: application/json\r\nContent-Length: 44\r\n"
             "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
             m.sk);
    back = h_raw_tcp(gwy->port, req, strlen(req), 2000);
    ck_assert_ptr_nonnull(back);
    ck_assert_msg(strstr(back, " 400 ") && strstr(back, "message_framing_invalid") &&
                      strstr(back, "Transfer-Encoding"),
                  "%s", back);
    ck_assert_msg(strstr(strstr(back, "HTTP/1.1") + 1, "HTTP/1.1") == NULL, "a second response: %s",
                  back);
    free(back);
    h_resp_t r = h_get(gwy, "/v1/checkouts/%FF", m.sk);
    h_assert_error(&r, 404, ERR_ROUTE_NOT_FOUND);
    h_resp_free(&r);
    r = h_get(gwy, "/v1/events?type=%FF", m.sk);
    h_assert_error(&r, 400, ERR_PARAMETER_INVALID);
    ck_assert_str_eq(h_json_str(r.json, "error.param"), "type");
    h_resp_free(&r);
    r = h_get(gwy, "/healthz", NULL);
    ck_assert_int_eq(r.status, 200);
    h_resp_free(&r);
}
END_TEST

/* A gatewayd started without a vault answers card requests 503, and keeps
 * serving (it used to dereference the missing vault client). */
START_TEST(no_vault_configured_is_503_not_a_crash)
{
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/checkouts", gwy->port);
    const char *headers[] = {"Idempotency-Key: no-vault-1", NULL};
    h_resp_t r = h_http("POST", url, m.pk,
                        "{\"cart\":{\"currency\":\"EUR\",\"items\":[{\"sku\":\"SKU-RED-MUG\","
                        "\"quantity\":1}]},\"payment\":{\"token\":\"tok_aaaaaaaaaaaaaaaaaaaaaa\"},"
                        "\"customer\":{\"email\":\"a@example.org\",\"ip\":\"203.0.113.7\"},"
                        "\"shipping\":{\"name\":\"A\",\"line1\":\"1 Way\",\"city\":\"London\","
                        "\"postal_code\":\"N1\",\"country\":\"GB\"}}",
                        headers);
    ck_assert_msg(r.status == 503, "%ld %s", r.status, r.body);
    h_resp_free(&r);
    r = h_get(gwy, "/healthz", NULL);
    ck_assert_int_eq(r.status, 200);
    h_resp_free(&r);
}
END_TEST

/* By default a merchant cannot point a webhook or a provider at plain http
 * on the gateway's own loopback (whatever listens there); only a gatewayd
 * configured for sandboxes (outbound.allow_loopback_http) accepts it. */
START_TEST(loopback_http_needs_the_sandbox_setting)
{
    h_gateway_t *strict =
        h_gateway_start(db, "gatewayd-strict", "{\"outbound\":{\"allow_loopback_http\":false}}");
    char url[256];
    snprintf(url, sizeof url, "%s/v1/webhooks/local", strict->url);
    h_resp_t r =
        h_http("PUT", url, m.sk, "{\"url\":\"http://127.0.0.1:9/hook\",\"events\":[\"*\"]}", NULL);
    h_assert_error(&r, 400, ERR_PARAMETER_INVALID);
    ck_assert_str_eq(h_json_str(r.json, "error.param"), "url");
    h_resp_free(&r);
    snprintf(url, sizeof url, "%s/v1/providers/local", strict->url);
    r = h_http("PUT", url, m.sk,
               "{\"type\":\"stripe\",\"base_url\":\"http://127.0.0.1:9\",\"credentials\":"
               "{\"secret_key\":\"sk_test_12345678\"},\"priority\":1}",
               NULL);
    h_assert_error(&r, 400, ERR_PARAMETER_INVALID);
    ck_assert_str_eq(h_json_str(r.json, "error.param"), "base_url");
    h_resp_free(&r);
    h_gateway_stop(strict, SIGTERM);
    /* the sandbox setting (every test gateway has it) lets it past validation
     * (this gateway has no vault to seal the new secret with: 503) */
    snprintf(url, sizeof url, "%s/v1/webhooks/local", gwy->url);
    r = h_http("PUT", url, m.sk, "{\"url\":\"http://127.0.0.1:9/hook\",\"events\":[\"*\"]}", NULL);
    h_assert_error(&r, 503, ERR_VAULT_UNAVAILABLE);
    h_resp_free(&r);
}
END_TEST

int main(void)
{
    h_init("it_bad_input");
    Suite *s = suite_create("bad_input");
    TCase *tc = h_tcase("bad_input", 600);
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_add_test(tc, thousand_malformed_requests_get_4xx_json);
    tcase_add_test(tc, errors_name_the_field);
    tcase_add_test(tc, raw_garbage_on_the_socket_does_not_stop_the_server);
    tcase_add_test(tc, ambiguous_framing_and_odd_ids_are_4xx);
    tcase_add_test(tc, no_vault_configured_is_503_not_a_crash);
    tcase_add_test(tc, loopback_http_needs_the_sandbox_setting);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
