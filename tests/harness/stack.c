/* The whole stack for one integration test (see stack.h). */
#include "tests/harness/stack.h"
#include <stdio.h>
#include <stdlib.h>
#include <sodium.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

static h_resp_t sk_put(h_stack_t *s, const char *path, const char *body)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", s->gw[0]->url, path);
    return h_http("PUT", url, s->m.sk, body, NULL);
}

static void configure_providers(h_stack_t *s)
{
    char body[1024];
    snprintf(body, sizeof body,
             "{\"type\":\"stripe\",\"base_url\":\"%s\",\"credentials\":{\"secret_key\":"
             "\"sk_test_portcullis_sandbox\"},\"priority\":1,\"connect_timeout_ms\":500,"
             "\"timeout_ms\":2000}",
             s->stripe->url);
    h_resp_t r = sk_put(s, "/v1/providers/stripe", body);
    ck_assert_msg(r.status == 201, "PUT stripe: %ld %s", r.status, r.body);
    h_resp_free(&r);
    snprintf(body, sizeof body,
             "{\"type\":\"adyen\",\"base_url\":\"%s\",\"credentials\":{\"api_key\":"
             "\"adyen_test_portcullis_sandbox\",\"merchant_account\":\"PortcullisTest\"},"
             "\"priority\":2,\"connect_timeout_ms\":500,\"timeout_ms\":2000}",
             s->adyen->url);
    r = sk_put(s, "/v1/providers/adyen", body);
    ck_assert_msg(r.status == 201, "PUT adyen: %ld %s", r.status, r.body);
    h_resp_free(&r);
}

static void configure_webhook(h_stack_t *s)
{
    char body[512];
    snprintf(body, sizeof body, "{\"url\":\"%s/hooks/portcullis\",\"events\":[\"*\"]}",
             s->webhooks->url);
    h_resp_t r = sk_put(s, "/v1/webhooks/platform", body);
    ck_assert_msg(r.status == 201, "PUT webhook: %ld %s", r.status, r.body);
    const char *secret = h_json_str(r.json, "secret");
    ck_assert_ptr_nonnull(secret);
    char *sec = str_printf("{\"secrets\":[\"%s\"]}", secret);
    h_resp_free(&r);
    char url[256];
    snprintf(url, sizeof url, "%s/_sandbox/secrets", s->webhooks->control_url);
    r = h_http("POST", url, NULL, sec, NULL);
    ck_assert_msg(r.status == 200, "receiver secrets: %ld %s", r.status, r.body);
    h_resp_free(&r);
    free(sec);
}

void h_stack_gateway_start(h_stack_t *s, int i)
{
    char tag[32];
    snprintf(tag, sizeof tag, "gatewayd-%d", i);
    s->gw[i] = h_gateway_start(s->db, tag, s->gateway_json);
}

/* Rate limits far above anything a test sends: a test that means to hit
 * one sets its own. */
static json_t *unlimited(void)
{
    return json_pack("{s:i, s:i, s:i, s:i}", "per_key_per_minute", 1000000, "per_key_burst", 100000,
                     "per_ip_per_minute", 1000000, "per_ip_burst", 100000);
}

h_stack_t *h_stack_start(const h_stack_opts_t *o)
{
    h_stack_opts_t none = {0};
    if (!o)
        o = &none;
    h_stack_t *s = calloc(1, sizeof *s);
    s->db = h_db_create();
    s->vault = h_vault_start(s->db, "vaultd", NULL);
    s->stripe = h_sandbox_start("stripe", "sandbox-stripe", NULL);
    s->adyen = h_sandbox_start("adyen", "sandbox-adyen", NULL);
    char catalog[1024];
    snprintf(catalog, sizeof catalog, "%s/sandbox/data/catalog.json", SOURCE_DIR);
    const char *cat_args[] = {"--catalog", catalog, NULL};
    s->pricing = h_sandbox_start("pricing", "sandbox-pricing", cat_args);
    s->inventory = h_sandbox_start("inventory", "sandbox-inventory", cat_args);
    char *secret_file = str_printf("%s/%s.webhook-secret", h_workdir(), s->db);
    h_secret_file(secret_file);
    const char *wh_args[] = {"--secret-file", secret_file, NULL};
    s->webhooks = h_sandbox_start("webhooks", "sandbox-webhooks", wh_args);
    free(secret_file);

    char *vault_json = h_vault_gateway_json(s->vault);
    json_t *cfg = json_loads(vault_json, 0, NULL);
    free(vault_json);
    json_t *base =
        json_pack("{s:{s:s, s:s, s:i}, s:{s:i, s:i, s:i}, s:{s:i}, s:{s:i}, s:{s:o, s:o}}",
                  "platform", "pricing_url", s->pricing->url, "inventory_url", s->inventory->url,
                  "timeout_ms", 3000, "outbox", "retry_base_ms", 50, "retry_max_ms", 1000,
                  "poll_ms", 20, "recovery", "interval_ms", 200, "checkout", "lease_seconds", 10,
                  "rate_limit", "tokens", unlimited(), "checkouts", unlimited());
    /* shoppers' addresses arrive as a trusted proxy's X-Forwarded-For (h_stack_xff) */
    json_object_set_new(base, "listen", json_pack("{s:b}", "trust_forwarded_for", 1));
    json_object_update_recursive(cfg, base);
    json_decref(base);
    if (o->gateway_json) {
        json_t *extra = json_loads(o->gateway_json, 0, NULL);
        ck_assert_msg(extra != NULL, "bad gateway_json");
        json_object_update_recursive(cfg, extra);
        json_decref(extra);
    }
    s->gateway_json = json_dumps(cfg, JSON_COMPACT);
    json_decref(cfg);
    s->m = h_merchant_create(s->db, "Stack Shop");
    s->ngw = o->gateways == 2 ? 2 : 1;
    for (int i = 0; i < s->ngw; i++)
        h_stack_gateway_start(s, i);
    if (!o->no_providers)
        configure_providers(s);
    if (!o->no_webhook)
        configure_webhook(s);
    return s;
}

void h_stack_stop(h_stack_t *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->ngw; i++)
        if (s->gw[i])
            h_gateway_stop(s->gw[i], SIGTERM);
    h_sandbox_stop(s->stripe);
    h_sandbox_stop(s->adyen);
    h_sandbox_stop(s->pricing);
    h_sandbox_stop(s->inventory);
    h_sandbox_stop(s->webhooks);
    h_vault_stop(s->vault, SIGTERM);
    h_db_drop(s->db);
    free(s->db);
    free(s->gateway_json);
    free(s);
}

char *h_stack_token(h_stack_t *s, const char *pan)
{
    char body[256];
    snprintf(body, sizeof body,
             "{\"card\":{\"number\":\"%s\",\"exp_month\":12,\"exp_year\":2030,\"cvc\":\"%s\"}}",
             pan, pan[0] == '3' ? "1234" : "123");
    h_resp_t r = h_post(s->gw[0], "/v1/tokens", s->m.pk, body);
    ck_assert_msg(r.status == 201, "tokenize: %ld %s", r.status, r.body);
    char *tok = strdup(h_json_str(r.json, "id"));
    h_resp_free(&r);
    return tok;
}

char *h_stack_checkout_body(const char *token, const char *sku, int qty, const char *extra)
{
    /* a different shopper each time, so velocity rules see no pattern
     * unless a test makes one through `extra` */
    uint32_t r = randombytes_uniform(1u << 30);
    char email[64], ip[32];
    snprintf(email, sizeof email, "shopper-%u@example.org", (unsigned)r);
    snprintf(ip, sizeof ip, "10.%u.%u.%u", (unsigned)(r >> 16) & 255, (unsigned)(r >> 8) & 255,
             (unsigned)r & 255);
    json_t *b = json_pack(
        "{s:{s:s, s:[{s:s, s:i}]}, s:{s:s}, s:{s:s, s:s}, s:{s:s, s:s, s:s, s:s, s:s}}", "cart",
        "currency", "EUR", "items", "sku", sku, "quantity", qty, "payment", "token", token,
        "customer", "email", email, "ip", ip, "shipping", "name",
        "Ada Lovelace", "line1", "1 Analytical Way", "city", "London", "postal_code", "N1 1AA",
        "country", "GB");
    if (extra) {
        json_t *e = json_loads(extra, 0, NULL);
        ck_assert_msg(e != NULL, "bad extra: %s", extra);
        json_object_update_recursive(b, e);
        json_decref(e);
    }
    char *out = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    return out;
}

const char *h_stack_xff(const char *body, char *out, size_t cap)
{
    json_t *j = json_loads(body, 0, NULL);
    const char *ip = json_string_value(json_object_get(json_object_get(j, "customer"), "ip"));
    if (ip)
        snprintf(out, cap, "X-Forwarded-For: %s", ip);
    json_decref(j);
    return ip ? out : NULL;
}

h_resp_t h_stack_checkout(h_stack_t *s, int gi, const char *key, const char *body)
{
    char url[512], hdr[320], xff[96];
    snprintf(url, sizeof url, "%s/v1/checkouts", s->gw[gi]->url);
    snprintf(hdr, sizeof hdr, "Idempotency-Key: %s", key);
    const char *headers[] = {hdr, h_stack_xff(body, xff, sizeof xff), NULL};
    return h_http("POST", url, s->m.pk, body, headers);
}

h_resp_t h_stack_pay(h_stack_t *s, int gi, const char *pan, const char *sku, int qty,
                     const char *extra)
{
    static atomic_int seq;
    char *tok = h_stack_token(s, pan);
    char *body = h_stack_checkout_body(tok, sku, qty, extra);
    char key[64];
    snprintf(key, sizeof key, "pay-%d-%d", (int)getpid(), atomic_fetch_add(&seq, 1) + 1);
    h_resp_t r = h_stack_checkout(s, gi, key, body);
    free(body);
    free(tok);
    return r;
}

static long count_ledger(h_sandbox_t *sb, const char *status)
{
    json_t *j = h_sandbox_charges(sb);
    json_t *a = json_object_get(j, "charges");
    long n = 0;
    size_t i;
    json_t *c;
    json_array_foreach(a, i, c)
    {
        const char *st = json_string_value(json_object_get(c, "status"));
        if (!status || (st && !strcmp(st, status)))
            n++;
    }
    json_decref(j);
    return n;
}

long h_stack_charges(h_stack_t *s, const char *status)
{
    return count_ledger(s->stripe, status) + count_ledger(s->adyen, status);
}

json_t *h_stack_deliveries(h_stack_t *s)
{
    char url[256];
    snprintf(url, sizeof url, "%s/_sandbox/deliveries", s->webhooks->control_url);
    h_resp_t r = h_http("GET", url, NULL, NULL, NULL);
    ck_assert_int_eq(r.status, 200);
    json_t *j = json_incref(r.json);
    h_resp_free(&r);
    return j;
}

long h_stack_stock(h_stack_t *s, const char *sku, const char *field)
{
    char url[256];
    snprintf(url, sizeof url, "%s/_sandbox/stock", s->inventory->control_url);
    h_resp_t r = h_http("GET", url, NULL, NULL, NULL);
    ck_assert_int_eq(r.status, 200);
    json_t *v = json_object_get(json_object_get(json_object_get(r.json, "skus"), sku), field);
    long n = json_is_integer(v) ? (long)json_integer_value(v) : -1;
    h_resp_free(&r);
    return n;
}

bool h_wait_until(bool (*cond)(void *), void *cls, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 50) {
        if (cond(cls))
            return true;
        usleep(50 * 1000);
    }
    return cond(cls);
}

void h_luhn_card(const char *prefix8, int i, char out[20])
{
    snprintf(out, 20, "%.8s%07d", prefix8, i);
    int sum = 0;
    for (int k = 14, alt = 1; k >= 0; k--, alt = !alt) {
        int d = out[k] - '0';
        if (alt && (d *= 2) > 9)
            d -= 9;
        sum += d;
    }
    out[15] = (char)('0' + (10 - sum % 10) % 10);
    out[16] = '\0';
}
