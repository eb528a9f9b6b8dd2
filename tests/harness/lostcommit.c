/* Shared helpers of the lost-COMMIT integration tests (see lostcommit.h). */
#include "tests/harness/lostcommit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

pgproxy_t *lc_proxy_start(void)
{
    /* the fixture cluster listens on its unix socket only (scripts/lib/pg.sh) */
    char *sock = str_printf("%s/sock", h_pgbase());
    pgproxy_t *p = pgproxy_start(sock, 5432);
    free(sock);
    ck_assert_ptr_nonnull(p);
    return p;
}

/* vaultd and gateway 0 are restarted rather than started through the proxy
 * in the first place: h_stack_start stays unaware of proxies, at the cost
 * of one more daemon start per test. */
lc_t lc_start_with(const h_stack_opts_t *o, bool vault)
{
    lc_t t = {0};
    t.st = h_stack_start(o);
    if (vault) {
        t.vpx = lc_proxy_start();
        char *ci = pgproxy_conninfo(t.vpx, t.st->db, "vault");
        /* vaultd isolates itself in an empty network namespace unless told
         * not to; the proxy is on loopback TCP */
        json_t *extra = json_pack("{s:{s:s}, s:{s:b}}", "database", "conninfo", ci, "run",
                                  "isolate_network", 0);
        char *ej = json_dumps(extra, JSON_COMPACT);
        json_decref(extra);
        free(ci);
        ck_assert_int_eq(h_vault_stop(t.st->vault, SIGTERM), 0);
        t.st->vault = h_vault_start(t.st->db, "vaultd", ej);
        free(ej);
        ck_assert_msg(pgproxy_connections(t.vpx) > 0, "vaultd does not use the proxy");
    }
    t.px = lc_proxy_start();
    char *ci = pgproxy_conninfo(t.px, t.st->db, "gateway");
    json_t *cfg = json_loads(t.st->gateway_json, 0, NULL);
    json_t *db = json_pack("{s:{s:s}}", "database", "conninfo", ci);
    json_object_update_recursive(cfg, db);
    json_decref(db);
    free(t.st->gateway_json);
    t.st->gateway_json = json_dumps(cfg, JSON_COMPACT);
    json_decref(cfg);
    free(ci);
    ck_assert_int_eq(h_gateway_stop(t.st->gw[0], SIGTERM), 0);
    t.st->gw[0] = NULL;
    h_stack_gateway_start(t.st, 0);
    /* a request that reads the database: its answer came through the proxy */
    h_resp_t r = h_get(t.st->gw[0], "/v1/webhooks", t.st->m.sk);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    h_resp_free(&r);
    ck_assert_msg(pgproxy_connections(t.px) > 0, "gatewayd does not use the proxy");
    return t;
}

lc_t lc_start(const h_stack_opts_t *o)
{
    return lc_start_with(o, false);
}

void lc_stop(lc_t *t)
{
    h_stack_stop(t->st); /* the daemons first: their connections close cleanly */
    pgproxy_stop(t->px);
    pgproxy_stop(t->vpx);
}

h_resp_t lc_sk_send(h_stack_t *st, const char *method, const char *path, const char *body,
                    const char *key)
{
    char url[512], hdr[160];
    snprintf(url, sizeof url, "%s%s", st->gw[0]->url, path);
    snprintf(hdr, sizeof hdr, "Idempotency-Key: %s", key ? key : "");
    const char *headers[] = {key ? hdr : NULL, NULL};
    return h_http(method, url, st->m.sk, body, headers);
}

h_resp_t lc_pay_op(h_stack_t *st, const char *pay, const char *op, const char *body,
                   const char *key)
{
    char path[200];
    snprintf(path, sizeof path, "/v1/payments/%s/%s", pay, op);
    return lc_sk_send(st, "POST", path, body, key);
}

char *lc_key(const char *what)
{
    return str_printf("lost-%s-%d", what, (int)getpid());
}

lc_checkout_t lc_checkout_new(h_stack_t *st, const char *extra, const char *what)
{
    lc_checkout_t c;
    c.tok = h_stack_token(st, "4242424242424242");
    c.body = h_stack_checkout_body(c.tok, "SKU-RED-MUG", 1, extra);
    c.key = lc_key(what);
    return c;
}

h_resp_t lc_checkout_send(h_stack_t *st, const lc_checkout_t *c)
{
    return h_stack_checkout(st, 0, c->key, c->body);
}

void lc_checkout_free(lc_checkout_t *c)
{
    free(c->key);
    free(c->body);
    free(c->tok);
}

char *lc_paid_checkout(h_stack_t *st, const char *pan)
{
    h_resp_t p = h_stack_pay(st, 0, pan, "SKU-RED-MUG", 1, NULL);
    ck_assert_msg(p.status == 200, "%ld %s", p.status, p.body);
    char *chk = strdup(h_json_str(p.json, "id"));
    h_resp_free(&p);
    return chk;
}

lc_payment_t lc_payment_new(h_stack_t *st, const char *extra, const char *status, const char *what)
{
    lc_payment_t p;
    h_resp_t c = h_stack_pay(st, 0, "4242424242424242", "SKU-RED-MUG", 1, extra);
    ck_assert_msg(c.status == 200, "%ld %s", c.status, c.body);
    if (status)
        ck_assert_str_eq(h_json_str(c.json, "payment.status"), status);
    p.pay = strdup(h_json_str(c.json, "payment.id"));
    p.chk = strdup(h_json_str(c.json, "id"));
    p.amount = h_json_int(c.json, "payment.amount");
    h_resp_free(&c);
    p.key = lc_key(what);
    return p;
}

void lc_payment_free(lc_payment_t *p)
{
    free(p->key);
    free(p->chk);
    free(p->pay);
}

int lc_received(h_stack_t *st, const char *type, const char *id, long *deliveries)
{
    json_t *d = h_stack_deliveries(st);
    int n = 0;
    long dl = 0;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(d, "events"), i, e)
    {
        const char *t = json_string_value(json_object_get(e, "type"));
        const char *oid = h_json_str(e, "data.id");
        if (t && !strcmp(t, type) && oid && !strcmp(oid, id)) {
            n++;
            dl += (long)json_integer_value(json_object_get(e, "deliveries"));
        }
    }
    json_decref(d);
    if (deliveries)
        *deliveries = dl;
    return n;
}

/* Polls every 50 ms: the receiver has no way to tell us of a delivery, and
 * a shorter period only loads the sandbox. */
long lc_wait_deliveries(h_stack_t *st, const char *type, const char *id, long want, int timeout_ms)
{
    long dl = 0;
    for (int waited = 0; waited < timeout_ms; waited += 50) {
        lc_received(st, type, id, &dl);
        if (dl >= want)
            break;
        usleep(50 * 1000);
    }
    return dl;
}

int lc_wait_received(h_stack_t *st, const char *type, const char *id, int timeout_ms)
{
    lc_wait_deliveries(st, type, id, 1, timeout_ms);
    return lc_received(st, type, id, NULL);
}

void lc_assert_delivered(h_stack_t *st, const char *type, const char *id, long want)
{
    ck_assert_msg(lc_wait_deliveries(st, type, id, want, 20000) >= want,
                  "%s for %s: fewer than %ld deliveries", type, id, want);
    usleep(700 * 1000); /* one more would be on its way by now */
    long dl = 0;
    ck_assert_int_eq(lc_received(st, type, id, &dl), 1);
    ck_assert_msg(dl == want, "%s for %s delivered %ld times, expected %ld", type, id, dl, want);
}

long lc_bad_signatures(h_stack_t *st)
{
    json_t *d = h_stack_deliveries(st);
    long n = (long)json_integer_value(json_object_get(d, "bad_signatures"));
    json_decref(d);
    return n;
}

long lc_count(h_stack_t *st, const char *sql)
{
    return h_sql_long(st->db, "%s", sql);
}

long lc_events(h_stack_t *st, const char *type)
{
    return h_sql_long(st->db, "SELECT count(*) FROM gateway.events WHERE type = '%s'", type);
}

long lc_audits(h_stack_t *st, const char *action)
{
    return h_sql_long(st->db, "SELECT count(*) FROM audit.events WHERE action = '%s'", action);
}

void lc_assert_stored_answer(h_stack_t *st, const char *key, long status, const char *body)
{
    char *stored = h_sql(st->db,
                         "SELECT response_body FROM gateway.idempotency_keys WHERE key = '%s' "
                         "AND state = 'done' AND response_status = %ld",
                         key, status);
    ck_assert_msg(stored != NULL, "no stored %ld answer for key %s", status, key);
    if (body)
        ck_assert_str_eq(stored, body);
    free(stored);
}

void lc_assert_replay(h_resp_t again, const h_resp_t *first)
{
    ck_assert_msg(again.status == first->status, "replay: %ld %s (first answer %ld)", again.status,
                  again.body, first->status);
    ck_assert_str_eq(again.body, first->body);
    h_resp_free(&again);
}
