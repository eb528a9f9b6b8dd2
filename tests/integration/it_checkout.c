/* Integration: POST /v1/checkouts against the real stack: the happy path with
 * API.md's exact shape, every decline card, the cart errors (price changed,
 * out of stock, unknown SKU), and pricing, inventory or every provider down,
 * each asserting what was charged and what was reserved. */
#include "tests/harness/stack.h"
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static h_stack_t *st;
static void setup(void)
{
    st = h_stack_start(NULL);
}

static void teardown(void)
{
    h_stack_stop(st);
}

static h_resp_t checkout(const char *pan, const char *sku, int qty, const char *extra)
{
    return h_stack_pay(st, 0, pan, sku, qty, extra);
}

static bool reserved_zero(void *cls)
{
    return h_stack_stock(st, cls, "reserved") == 0;
}

typedef struct {
    const char *chk;
    const char *type;
} delivered_t;

static bool delivered_once(void *cls)
{
    delivered_t *d = cls;
    json_t *j = h_stack_deliveries(st);
    size_t i;
    json_t *e;
    bool found = false;
    json_array_foreach(json_object_get(j, "events"), i, e)
    {
        if (!strcmp(json_string_value(json_object_get(e, "type")), d->type) &&
            !strcmp(h_json_str(e, "data.id") ? h_json_str(e, "data.id") : "", d->chk))
            found = true;
    }
    json_decref(j);
    return found;
}

START_TEST(happy_path_charges_once_and_confirms_the_order)
{
    long before = h_stack_charges(st, NULL);
    long committed = h_stack_stock(st, "SKU-RED-MUG", "committed");
    h_resp_t r = checkout("4242424242424242", "SKU-RED-MUG", 2, "{\"cart\":{\"expected_total\":2598}}");
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    const json_t *j = r.json;
    ck_assert(!strncmp(h_json_str(j, "id"), "chk_", 4));
    ck_assert_str_eq(h_json_str(j, "status"), "succeeded");
    ck_assert(!strncmp(h_json_str(j, "order.id"), "ord_", 4));
    ck_assert_str_eq(h_json_str(j, "order.currency"), "EUR");
    ck_assert_int_eq(h_json_int(j, "order.subtotal"), 2598);
    ck_assert_int_eq(h_json_int(j, "order.tax"), 0);
    ck_assert_int_eq(h_json_int(j, "order.shipping"), 0);
    ck_assert_int_eq(h_json_int(j, "order.total"), 2598);
    ck_assert_str_eq(h_json_str(j, "order.lines.0.sku"), "SKU-RED-MUG");
    ck_assert_int_eq(h_json_int(j, "order.lines.0.quantity"), 2);
    ck_assert_int_eq(h_json_int(j, "order.lines.0.unit_amount"), 1299);
    ck_assert_int_eq(h_json_int(j, "order.lines.0.amount"), 2598);
    ck_assert(!strncmp(h_json_str(j, "payment.id"), "pay_", 4));
    ck_assert_str_eq(h_json_str(j, "payment.status"), "captured");
    ck_assert_str_eq(h_json_str(j, "payment.provider"), "stripe");
    ck_assert_str_eq(h_json_str(j, "payment.attempts.0.provider"), "stripe");
    ck_assert_str_eq(h_json_str(j, "payment.attempts.0.outcome"), "authorized");
    ck_assert_str_eq(h_json_str(j, "payment.card.last4"), "4242");
    ck_assert_str_eq(h_json_str(j, "fraud.decision"), "approve");
    ck_assert(json_is_integer(json_object_get(json_object_get(j, "fraud"), "score")));
    ck_assert(json_is_array(json_object_get(json_object_get(j, "fraud"), "reasons")));
    ck_assert_ptr_null(strstr(r.body, "4242424242424242"));
    ck_assert_int_eq(h_stack_charges(st, NULL) - before, 1);

    /* GET returns the same object */
    char path[128];
    snprintf(path, sizeof path, "/v1/checkouts/%s", h_json_str(j, "id"));
    h_resp_t g = h_get(st->gw[0], path, st->m.sk);
    ck_assert_int_eq(g.status, 200);
    ck_assert_str_eq(g.body, r.body);
    h_resp_free(&g);

    /* the inventory commit and order.confirmed go out through the outbox */
    delivered_t d = {.chk = h_json_str(j, "id"), .type = "order.confirmed"};
    ck_assert(h_wait_until(delivered_once, &d, 10000));
    for (int i = 0; i < 200 && h_stack_stock(st, "SKU-RED-MUG", "committed") != committed + 2; i++)
        usleep(50 * 1000);
    ck_assert_int_eq(h_stack_stock(st, "SKU-RED-MUG", "committed"), committed + 2);
    ck_assert(h_wait_until(reserved_zero, "SKU-RED-MUG", 5000));
    h_resp_free(&r);
}
END_TEST

START_TEST(declines_are_402_with_the_normalised_reason)
{
    static const struct {
        const char *pan;
        err_code_t code;
    } cards[] = {{"4000000000000002", ERR_CARD_DECLINED},
                 {"4000000000009995", ERR_INSUFFICIENT_FUNDS},
                 {"4000000000009979", ERR_STOLEN_CARD},
                 {"4000000000000069", ERR_EXPIRED_CARD},
                 {"4000000000000127", ERR_INCORRECT_CVC}};
    for (size_t i = 0; i < PC_ARRAY_LEN(cards); i++) {
        h_resp_t r = checkout(cards[i].pan, "SKU-RED-MUG", 1, NULL);
        h_assert_error(&r, 402, cards[i].code);
        ck_assert_str_eq(h_json_str(r.json, "status"), "declined");
        ck_assert_str_eq(h_json_str(r.json, "payment.status"), "declined");
        ck_assert_str_eq(h_json_str(r.json, "payment.attempts.0.outcome"), "declined");
        /* a decline is never retried at the second provider */
        ck_assert_ptr_null(json_array_get(json_object_get(json_object_get(r.json, "payment"),
                                                          "attempts"),
                                          1));
        ck_assert_ptr_null(strstr(r.body, cards[i].pan));
        h_resp_free(&r);
    }
    /* every reservation was released */
    ck_assert(h_wait_until(reserved_zero, "SKU-RED-MUG", 10000));
}
END_TEST

START_TEST(cart_errors_charge_and_reserve_nothing)
{
    long charges = h_stack_charges(st, NULL);
    h_resp_t r = checkout("4242424242424242", "SKU-RED-MUG", 2,
                          "{\"cart\":{\"expected_total\":2500}}");
    h_assert_error(&r, 409, ERR_PRICE_CHANGED);
    ck_assert_int_eq(h_json_int(r.json, "quote.total"), 2598);
    ck_assert_str_eq(h_json_str(r.json, "error.param"), "cart.expected_total");
    h_resp_free(&r);

    r = checkout("4242424242424242", "SKU-SOLD-OUT", 1, NULL);
    h_assert_error(&r, 409, ERR_OUT_OF_STOCK);
    ck_assert_str_eq(h_json_str(r.json, "error.lines.0.sku"), "SKU-SOLD-OUT");
    ck_assert_str_eq(h_json_str(r.json, "error.lines.0.param"), "cart.items[0]");
    ck_assert_int_eq(h_json_int(r.json, "error.lines.0.requested"), 1);
    ck_assert_int_eq(h_json_int(r.json, "error.lines.0.available"), 0);
    ck_assert_str_eq(h_json_str(r.json, "status"), "failed");
    h_resp_free(&r);

    r = checkout("4242424242424242", "SKU-NOPE", 1, NULL);
    h_assert_error(&r, 409, ERR_UNKNOWN_SKU);
    ck_assert_str_eq(h_json_str(r.json, "error.param"), "cart.items[0].sku");
    h_resp_free(&r);

    r = checkout("4242424242424242", "SKU-RED-MUG", 0, NULL);
    h_assert_error(&r, 400, ERR_PARAMETER_INVALID);
    ck_assert_str_eq(h_json_str(r.json, "error.param"), "cart.items[0].quantity");
    h_resp_free(&r);

    /* the same SKU on two lines: named in the request, not blamed on pricing */
    r = checkout("4242424242424242", "SKU-RED-MUG", 1,
                 "{\"cart\":{\"items\":[{\"sku\":\"SKU-RED-MUG\",\"quantity\":1},"
                 "{\"sku\":\"SKU-RED-MUG\",\"quantity\":2}]}}");
    h_assert_error(&r, 400, ERR_PARAMETER_INVALID);
    ck_assert_str_eq(h_json_str(r.json, "error.param"), "cart.items[1].sku");
    h_resp_free(&r);

    r = checkout("4242424242424242", "SKU-RED-MUG", 1, "{\"cart\":{\"currency\":\"eur\"}}");
    h_assert_error(&r, 400, ERR_PARAMETER_INVALID);
    ck_assert_str_eq(h_json_str(r.json, "error.param"), "cart.currency");
    h_resp_free(&r);

    char *body = h_stack_checkout_body("tok_doesnotexist0000000000", "SKU-RED-MUG", 1, NULL);
    r = h_stack_checkout(st, 0, "bad-token", body);
    h_assert_error(&r, 400, ERR_TOKEN_INVALID);
    ck_assert_str_eq(h_json_str(r.json, "error.param"), "payment.token");
    h_resp_free(&r);
    free(body);

    ck_assert_int_eq(h_stack_charges(st, NULL), charges);
    ck_assert(h_wait_until(reserved_zero, "SKU-SOLD-OUT", 5000));
}
END_TEST

START_TEST(the_last_one_sells_once)
{
    h_resp_t a = checkout("4242424242424242", "SKU-LAST-ONE", 1, NULL);
    ck_assert_msg(a.status == 200, "%ld %s", a.status, a.body);
    h_resp_t b = checkout("5555555555554444", "SKU-LAST-ONE", 1, NULL);
    h_assert_error(&b, 409, ERR_OUT_OF_STOCK);
    h_resp_free(&a);
    h_resp_free(&b);
}
END_TEST

START_TEST(outages_answer_503_and_charge_nothing)
{
    long charges = h_stack_charges(st, NULL);
    long reserved = h_stack_stock(st, "SKU-RED-MUG", "reserved");
    h_sandbox_faults(st->pricing, "{\"mode\":\"down\"}");
    h_resp_t r = checkout("4242424242424242", "SKU-RED-MUG", 1, NULL);
    h_assert_error(&r, 503, ERR_PRICING_UNAVAILABLE);
    char *ra = h_resp_header(&r, "Retry-After");
    ck_assert_msg(ra && strcmp(ra, "1") == 0, "Retry-After: %s", ra ? ra : "(none)");
    free(ra);
    h_resp_free(&r);
    h_sandbox_faults(st->pricing, "{\"mode\":\"none\"}");

    h_sandbox_faults(st->inventory, "{\"mode\":\"down\"}");
    r = checkout("4242424242424242", "SKU-RED-MUG", 1, NULL);
    h_assert_error(&r, 503, ERR_INVENTORY_UNAVAILABLE);
    ck_assert_str_eq(h_json_str(r.json, "status"), "failed");
    /* stored under its key: sending it again gives the same answer, no Retry-After */
    ra = h_resp_header(&r, "Retry-After");
    ck_assert_msg(ra == NULL, "Retry-After: %s", ra);
    h_resp_free(&r);
    h_sandbox_faults(st->inventory, "{\"mode\":\"none\"}");
    ck_assert_int_eq(h_stack_charges(st, NULL), charges);
    ck_assert_int_eq(h_stack_stock(st, "SKU-RED-MUG", "reserved"), reserved);

    /* every provider down: nothing charged and the reservation released */
    h_sandbox_faults(st->stripe, "{\"mode\":\"down\"}");
    h_sandbox_faults(st->adyen, "{\"mode\":\"down\"}");
    r = checkout("4242424242424242", "SKU-RED-MUG", 1, NULL);
    h_assert_error(&r, 503, ERR_PROVIDERS_UNAVAILABLE);
    ck_assert_str_eq(h_json_str(r.json, "status"), "failed");
    h_resp_free(&r);
    h_sandbox_faults(st->stripe, "{\"mode\":\"none\"}");
    h_sandbox_faults(st->adyen, "{\"mode\":\"none\"}");
    ck_assert_int_eq(h_stack_charges(st, NULL), charges);
    ck_assert(h_wait_until(reserved_zero, "SKU-RED-MUG", 10000));
}
END_TEST

START_TEST(primary_down_fails_over_with_one_charge)
{
    long charges = h_stack_charges(st, NULL);
    h_sandbox_faults(st->stripe, "{\"mode\":\"error_500\"}");
    h_resp_t r = checkout("4242424242424242", "SKU-RED-MUG", 1, NULL);
    h_sandbox_faults(st->stripe, "{\"mode\":\"none\"}");
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_str_eq(h_json_str(r.json, "payment.provider"), "adyen");
    ck_assert_str_eq(h_json_str(r.json, "payment.attempts.0.provider"), "stripe");
    ck_assert_str_eq(h_json_str(r.json, "payment.attempts.0.outcome"), "unavailable");
    ck_assert_str_eq(h_json_str(r.json, "payment.attempts.1.provider"), "adyen");
    ck_assert_int_eq(h_stack_charges(st, NULL) - charges, 1);
    h_resp_free(&r);
}
END_TEST

static void stripe_timeout(int ms)
{
    char body[512], url[256];
    snprintf(body, sizeof body,
             "{\"type\":\"stripe\",\"base_url\":\"%s\",\"credentials\":{\"secret_key\":"
             "\"sk_test_portcullis_sandbox\"},\"priority\":1,\"connect_timeout_ms\":500,"
             "\"timeout_ms\":%d}",
             st->stripe->url, ms);
    snprintf(url, sizeof url, "%s/v1/providers/stripe", st->gw[0]->url);
    h_resp_t r = h_http("PUT", url, st->m.sk, body, NULL);
    ck_assert_msg(r.status == 200 || r.status == 201, "%ld %s", r.status, r.body);
    h_resp_free(&r);
    usleep(300 * 1000); /* the provider cache drops on NOTIFY */
}

static bool settled(void *cls)
{
    char path[160];
    snprintf(path, sizeof path, "/v1/checkouts/%s", (const char *)cls);
    h_resp_t g = h_get(st->gw[0], path, st->m.sk);
    const char *s = h_json_str(g.json, "status");
    bool done = g.status == 200 && s && strcmp(s, "processing") != 0 && strcmp(s, "pending") != 0;
    h_resp_free(&g);
    return done;
}

/* The request owns its checkout only for its lease (10 s here); after that
 * the recovery worker may take it over. A provider that may take 20 s is cut
 * off before the lease ends, the outcome stays unknown (202), no second
 * provider is tried, and recovery settles it with at most the one charge. */
START_TEST(a_provider_slower_than_the_lease_is_cut_off_before_the_lease_ends)
{
    long charges = h_stack_charges(st, NULL);
    stripe_timeout(20000);
    h_sandbox_faults(st->stripe, "{\"mode\":\"latency\",\"latency_ms\":14000}");
    int64_t t0 = time_mono_us();
    h_resp_t r = checkout("4242424242424242", "SKU-RED-MUG", 1, NULL);
    int64_t ms = (time_mono_us() - t0) / 1000;
    h_sandbox_faults(st->stripe, "{\"mode\":\"none\"}");
    stripe_timeout(2000);
    ck_assert_msg(r.status == 202, "%ld %s", r.status, r.body);
    ck_assert_msg(ms < 10000, "provider calls ran %lld ms, past the 10 s lease", (long long)ms);
    char *id = strdup(h_json_str(r.json, "id"));
    h_resp_free(&r);
    ck_assert(h_wait_until(settled, id, 60000));
    char path[160];
    snprintf(path, sizeof path, "/v1/checkouts/%s", id);
    h_resp_t g = h_get(st->gw[0], path, st->m.sk);
    ck_assert_int_eq(
        json_array_size(json_object_get(json_object_get(g.json, "payment"), "attempts")), 1);
    ck_assert_str_eq(h_json_str(g.json, "payment.attempts.0.provider"), "stripe");
    bool paid = !strcmp(h_json_str(g.json, "status"), "succeeded");
    ck_assert_int_eq(h_stack_charges(st, NULL) - charges, paid ? 1 : 0);
    h_resp_free(&g);
    free(id);
}
END_TEST

static void *checkout_thread(void *arg)
{
    h_resp_t r = checkout("4242424242424242", "SKU-BLUE-MUG", 1, NULL);
    *(long *)arg = r.status;
    h_resp_free(&r);
    return NULL;
}

static bool log_has(const char *path, const char *text)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    bool found = false;
    while (f && !found && fgets(line, sizeof line, f))
        found = strstr(line, text) != NULL;
    if (f)
        fclose(f);
    return found;
}

static void age_attempts(const char *checkout_id, const char *age)
{
    free(h_sql(st->db,
               "UPDATE gateway.payment_attempts SET created_at = now() - interval '%s' WHERE "
               "payment_id = (SELECT payment_id FROM gateway.checkouts WHERE id = '%s') "
               "RETURNING 1",
               age, checkout_id));
}

/* Adyen's lookup replays the authorization under its idempotency key, which
 * Adyen keeps for a month (Stripe's, without the intent's id, a day). Past
 * that a replay is a new authorization, so recovery leaves the attempt
 * unknown, for a person, and says so; younger, the same lookup settles it. */
START_TEST(a_lookup_the_provider_can_no_longer_answer_is_left_to_a_person)
{
    long charges = h_stack_charges(st, NULL);
    h_sandbox_faults(st->stripe, "{\"mode\":\"down\"}");
    h_sandbox_faults(st->adyen, "{\"mode\":\"latency\",\"latency_ms\":14000}");
    h_resp_t r = checkout("4242424242424242", "SKU-RED-MUG", 1, NULL);
    h_sandbox_faults(st->stripe, "{\"mode\":\"none\"}");
    ck_assert_msg(r.status == 202, "%ld %s", r.status, r.body);
    char *id = strdup(h_json_str(r.json, "id"));
    h_resp_free(&r);
    age_attempts(id, "31 days");
    char log[1100];
    snprintf(log, sizeof log, "%.1000s", st->gw[0]->proc->log);
    char *dot = strrchr(log, '.');
    if (dot) /* gatewayd-0.out is stdout; its JSON log is gatewayd-0.log */
        snprintf(dot, sizeof log - (size_t)(dot - log), ".log");
    for (int i = 0; i < 400 && !log_has(log, "needs manual reconciliation"); i++)
        usleep(100 * 1000);
    ck_assert_msg(log_has(log, "needs manual reconciliation"), "%s", log);
    h_sandbox_faults(st->adyen, "{\"mode\":\"none\"}");
    usleep(1500 * 1000);
    ck_assert_int_eq(h_sql_long(st->db,
                                "SELECT count(*) FROM gateway.checkouts WHERE id = '%s' AND "
                                "status = 'processing'",
                                id),
                     1);
    age_attempts(id, "1 second");
    ck_assert(h_wait_until(settled, id, 60000));
    ck_assert_int_le(h_stack_charges(st, NULL) - charges, 1);
    free(id);
}
END_TEST

static bool release_delivered(void *cls)
{
    (void)cls;
    return h_sql_long(st->db, "SELECT count(*) FROM gateway.outbox WHERE kind = "
                              "'inventory_release' AND state = 'delivered' AND created_at > "
                              "now() - interval '1 minute'") >= 1;
}

/* A reserve that times out on our side is released at once, and that release
 * can reach the inventory before the reserve does ("no such reservation").
 * It is tried again until the reserve could no longer be on its way, so the
 * stock the late reserve takes is let go, not held until its TTL. */
START_TEST(a_release_that_overtakes_its_reserve_still_releases)
{
    long reserved = h_stack_stock(st, "SKU-BLUE-MUG", "reserved"), status = -1;
    h_sandbox_faults(st->inventory, "{\"mode\":\"latency\",\"latency_ms\":4500}");
    int64_t t0 = time_mono_us();
    pthread_t t;
    pthread_create(&t, NULL, checkout_thread, &status);
    usleep(800 * 1000); /* its reserve is under way; what comes next is fast */
    h_sandbox_faults(st->inventory, "{\"mode\":\"none\"}");
    pthread_join(t, NULL);
    ck_assert_int_eq(status, 503);            /* inventory_unavailable after the 3 s timeout */
    while (time_mono_us() - t0 < 6500 * 1000) /* the late reserve has landed */
        usleep(100 * 1000);
    ck_assert(h_wait_until(release_delivered, NULL, 20000));
    ck_assert_int_eq(h_stack_stock(st, "SKU-BLUE-MUG", "reserved"), reserved);
}
END_TEST

static bool finished(void *cls)
{
    return h_sql_long(st->db,
                      "SELECT count(*) FROM gateway.checkouts WHERE id = '%s' AND "
                      "status = 'failed'",
                      (const char *)cls) == 1;
}

/* gatewayd killed before its first provider call (here: while inventory is
 * slow to reserve) leaves a pending checkout whose attempt no provider saw.
 * Recovery fails it and releases the stock without asking the provider: the
 * vault still holds the card's CVC, so no authorization ever fetched the
 * card. (For Adyen, whose only lookup is a replay, asking would have been a
 * first authorization, made late and without the CVC.) */
START_TEST(a_checkout_killed_before_paying_is_failed_without_a_provider_call)
{
    long charges = h_stack_charges(st, NULL), status = -1;
    long reserved = h_stack_stock(st, "SKU-BLUE-MUG", "reserved");
    h_sandbox_faults(st->inventory, "{\"mode\":\"latency\",\"latency_ms\":1500}");
    pthread_t t;
    pthread_create(&t, NULL, checkout_thread, &status);
    for (int i = 0; i < 100 && h_sql_long(st->db, "SELECT count(*) FROM gateway.checkouts "
                                                  "WHERE status = 'pending'") == 0;
         i++)
        usleep(20 * 1000);
    char *id = h_sql(st->db, "SELECT id FROM gateway.checkouts WHERE status = 'pending' "
                             "ORDER BY created_at DESC LIMIT 1");
    ck_assert_ptr_nonnull(id);
    h_gateway_stop(st->gw[0], SIGKILL);
    st->gw[0] = NULL;
    pthread_join(t, NULL);
    ck_assert_int_eq(status, 0); /* the connection died with it */
    h_sandbox_faults(st->inventory, "{\"mode\":\"none\"}");
    h_stack_gateway_start(st, 0);
    ck_assert(h_wait_until(finished, id, 30000)); /* after the 10 s lease */
    ck_assert_int_eq(h_sql_long(st->db,
                                "SELECT count(*) FROM gateway.payment_attempts a JOIN "
                                "gateway.checkouts c ON c.payment_id = a.payment_id "
                                "WHERE c.id = '%s' AND a.reason = 'never_sent'",
                                id),
                     1);
    ck_assert_int_eq(h_stack_charges(st, NULL), charges);
    for (int i = 0; i < 200 && h_stack_stock(st, "SKU-BLUE-MUG", "reserved") != reserved; i++)
        usleep(50 * 1000);
    ck_assert_int_eq(h_stack_stock(st, "SKU-BLUE-MUG", "reserved"), reserved);
    free(id);
}
END_TEST

static long get_status(const char *id, const char *key)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/checkouts/%s", id);
    h_resp_t r = h_get(st->gw[0], path, key);
    long status = r.status;
    if (status == 404)
        h_assert_error(&r, 404, ERR_RESOURCE_MISSING);
    h_resp_free(&r);
    return status;
}

/* API.md: a pk may GET "its own checkouts". A pk is public (it lives in
 * shoppers' browsers): it reads what it made, not a checkout the merchant
 * made server-side with the sk; the sk reads every checkout of its merchant. */
START_TEST(a_publishable_key_reads_only_the_checkouts_it_made)
{
    h_resp_t r = checkout("4242424242424242", "SKU-RED-MUG", 1, NULL);
    ck_assert_int_eq(r.status, 200);
    char *by_pk = strdup(h_json_str(r.json, "id"));
    h_resp_free(&r);
    char *tok = h_stack_token(st, "4242424242424242");
    char *body = h_stack_checkout_body(tok, "SKU-RED-MUG", 1, NULL);
    char url[256], key[64];
    snprintf(url, sizeof url, "%s/v1/checkouts", st->gw[0]->url);
    snprintf(key, sizeof key, "Idempotency-Key: by-sk-%d", (int)getpid());
    const char *headers[] = {key, NULL};
    r = h_http("POST", url, st->m.sk, body, headers);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    char *by_sk = strdup(h_json_str(r.json, "id"));
    h_resp_free(&r);
    ck_assert_int_eq(get_status(by_pk, st->m.pk), 200);
    ck_assert_int_eq(get_status(by_pk, st->m.sk), 200);
    ck_assert_int_eq(get_status(by_sk, st->m.sk), 200);
    ck_assert_int_eq(get_status(by_sk, st->m.pk), 404);
    free(by_pk);
    free(by_sk);
    free(body);
    free(tok);
}
END_TEST

START_TEST(authorize_only_then_capture_partially)
{
    h_resp_t r = checkout("4242424242424242", "SKU-RED-MUG", 2, "{\"payment\":{\"capture\":false}}");
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_str_eq(h_json_str(r.json, "payment.status"), "authorized");
    char path[160];
    snprintf(path, sizeof path, "/v1/payments/%s/capture", h_json_str(r.json, "payment.id"));
    h_resp_t c = h_post(st->gw[0], path, st->m.sk, "{\"amount\":2000}");
    ck_assert_msg(c.status == 200, "%ld %s", c.status, c.body);
    ck_assert_str_eq(h_json_str(c.json, "status"), "captured");
    ck_assert_int_eq(h_json_int(c.json, "captured_amount"), 2000);
    h_resp_free(&c);
    h_resp_free(&r);
}
END_TEST

/* ---------------------------------------- commit after the reservation ended */

static void *teapot_thread(void *arg)
{
    h_resp_t r = checkout("4242424242424242", "SKU-TEAPOT", 1, NULL);
    *(long *)arg = r.status;
    h_resp_free(&r);
    return NULL;
}

static h_resp_t inventory(const char *method, const char *id, const char *body)
{
    char url[512];
    snprintf(url, sizeof url, "%s/v1/reservations/%s", st->inventory->url, id);
    return h_http(method, url, NULL, body, NULL);
}

/* Starts a TEAPOT checkout whose provider call is slow, waits for its
 * reservation, then (end_it) ends that reservation at the inventory service,
 * as its TTL would while inventory was unreachable for the commit, and runs
 * `meanwhile`. Returns the checkout id once it answered 200. */
static char *paid_while(bool end_it, void (*meanwhile)(void))
{
    long status = -1, reserved = h_stack_stock(st, "SKU-TEAPOT", "reserved");
    h_sandbox_faults(st->stripe, "{\"mode\":\"latency\",\"latency_ms\":1500}");
    pthread_t t;
    pthread_create(&t, NULL, teapot_thread, &status);
    for (int i = 0; i < 200 && h_stack_stock(st, "SKU-TEAPOT", "reserved") != reserved + 1; i++)
        usleep(10 * 1000);
    char *id = h_sql(st->db, "SELECT id FROM gateway.checkouts WHERE status = 'pending' "
                             "ORDER BY created_at DESC LIMIT 1");
    char *rid = h_sql(st->db, "SELECT reservation_id FROM gateway.checkouts WHERE id = '%s'", id);
    ck_assert_ptr_nonnull(rid);
    if (end_it) {
        h_resp_t d = inventory("DELETE", rid, NULL);
        ck_assert_msg(d.status == 200, "%ld %s", d.status, d.body);
        h_resp_free(&d);
    }
    if (meanwhile)
        meanwhile();
    pthread_join(t, NULL);
    h_sandbox_faults(st->stripe, "{\"mode\":\"none\"}");
    ck_assert_int_eq(status, 200);
    free(rid);
    return id;
}

/* The value of one series of gateway 0's /metrics ("name{labels}"), or -1. */
static long long metric(const char *series)
{
    h_resp_t r = h_get(st->gw[0], "/metrics", NULL);
    ck_assert_int_eq(r.status, 200);
    long long v = -1;
    size_t n = strlen(series);
    for (const char *p = r.body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (!strncmp(p, series, n) && p[n] == ' ') {
            v = strtoll(p + n + 1, NULL, 10);
            break;
        }
    h_resp_free(&r);
    return v;
}

static bool reservation_committed(const char *checkout_id)
{
    return h_sql_long(st->db,
                      "SELECT count(*) FROM gateway.checkouts WHERE id = '%s' "
                      "AND reservation_state = 'committed'",
                      checkout_id) == 1;
}

static long out_of_stock_events(const char *checkout_id)
{
    return h_sql_long(st->db,
                      "SELECT count(*) FROM gateway.events WHERE object_id = '%s' "
                      "AND type = 'order.out_of_stock'",
                      checkout_id);
}

/* The checkout's inventory commit rows that match `where` (test SQL). */
static long commit_rows(const char *checkout_id, const char *where)
{
    return h_sql_long(st->db,
                      "SELECT count(*) FROM gateway.outbox o JOIN gateway.checkouts c "
                      "ON c.reservation_id = o.target WHERE c.id = '%s' "
                      "AND o.kind = 'inventory_commit' AND %s",
                      checkout_id, where);
}

static bool outbox_commit_settled(void *cls)
{
    return commit_rows(cls, "o.state <> 'pending'") == 1;
}

/* The order is paid and its reservation is gone: the commit takes the stock
 * again under a new reservation and commits that; stock ends committed, not
 * oversold, and nothing stays reserved. */
START_TEST(a_commit_after_the_reservation_ended_takes_the_stock_again)
{
    long committed = h_stack_stock(st, "SKU-TEAPOT", "committed");
    long reserved = h_stack_stock(st, "SKU-TEAPOT", "reserved");
    long long taken = metric("portcullis_inventory_reclaims_total{result=\"taken_again\"}");
    char *id = paid_while(true, NULL);
    ck_assert(h_wait_until(outbox_commit_settled, id, 15000));
    ck_assert_int_eq(metric("portcullis_inventory_reclaims_total{result=\"taken_again\"}"),
                     taken + 1);
    ck_assert_int_eq(h_stack_stock(st, "SKU-TEAPOT", "committed"), committed + 1);
    ck_assert_int_eq(h_stack_stock(st, "SKU-TEAPOT", "reserved"), reserved);
    ck_assert(reservation_committed(id));
    ck_assert_int_eq(out_of_stock_events(id), 0);
    free(id);
}
END_TEST

/* An earlier try of the commit took the stock again under <first>-c1 and
 * committed it, but its answer was lost; then inventory went down. */
static void reclaimed_but_answer_lost(void)
{
    char *rid = h_sql(st->db, "SELECT reservation_id FROM gateway.checkouts WHERE status = "
                              "'pending' ORDER BY created_at DESC LIMIT 1");
    ck_assert_ptr_nonnull(rid);
    char again[300];
    snprintf(again, sizeof again, "%s-c1", rid);
    h_resp_t r = inventory("PUT", again,
                           "{\"items\":[{\"sku\":\"SKU-TEAPOT\",\"quantity\":1}],"
                           "\"ttl_seconds\":600}");
    ck_assert_msg(r.status == 201, "%ld %s", r.status, r.body);
    h_resp_free(&r);
    char path[320];
    snprintf(path, sizeof path, "%s/commit", again);
    r = inventory("POST", path, "{}");
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    h_resp_free(&r);
    h_sandbox_faults(st->inventory, "{\"mode\":\"down\"}");
    free(rid);
}

static bool commit_tried(void *cls)
{
    return commit_rows(cls, "o.attempts >= 1") == 1;
}

/* The stock taken again for an order is found again on every later try,
 * whatever the try's number: a retry after a lost answer commits the same
 * reservation, and the order's stock is committed once, not twice. */
START_TEST(a_commit_retried_after_a_lost_answer_takes_the_stock_once)
{
    long committed = h_stack_stock(st, "SKU-TEAPOT", "committed");
    char *id = paid_while(true, reclaimed_but_answer_lost);
    ck_assert(h_wait_until(commit_tried, id, 15000)); /* a try while inventory is down */
    h_sandbox_faults(st->inventory, "{\"mode\":\"none\"}");
    ck_assert(h_wait_until(outbox_commit_settled, id, 15000));
    ck_assert_int_eq(commit_rows(id, "o.state = 'delivered'"), 1);
    ck_assert_int_eq(h_stack_stock(st, "SKU-TEAPOT", "committed"), committed + 1);
    ck_assert(reservation_committed(id));
    free(id);
}
END_TEST

static void commit_answers_get_lost(void)
{
    h_sandbox_faults(st->inventory, "{\"mode\":\"timeout\",\"after_processing\":true}");
}

static bool commit_in_doubt(void *cls)
{
    return commit_rows(cls, "o.outcome_unknown AND o.attempts >= 1") == 1;
}

/* A commit whose answer is lost is remembered as possibly made, and the
 * next try, hearing "committed", delivers it: the stock is committed once. */
START_TEST(a_commit_whose_answer_was_lost_is_remembered_as_possibly_made)
{
    long committed = h_stack_stock(st, "SKU-TEAPOT", "committed");
    char *id = paid_while(false, commit_answers_get_lost);
    ck_assert(h_wait_until(commit_in_doubt, id, 30000));
    h_sandbox_faults(st->inventory, "{\"mode\":\"none\"}");
    ck_assert(h_wait_until(outbox_commit_settled, id, 15000));
    ck_assert_int_eq(commit_rows(id, "o.state = 'delivered'"), 1);
    ck_assert_int_eq(h_stack_stock(st, "SKU-TEAPOT", "committed"), committed + 1);
    free(id);
}
END_TEST

/* A commit whose earlier try may have gone through (its answer was lost),
 * for a reservation the inventory no longer knows (404: services forget
 * closed reservations after a while): taking the stock again could sell it
 * twice, so the row fails for a person to reconcile and nothing is taken. */
START_TEST(a_forgotten_reservation_whose_commit_may_have_gone_through_is_left_to_a_person)
{
    h_resp_t r = checkout("4242424242424242", "SKU-RED-MUG", 1, NULL);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    char *id = strdup(h_json_str(r.json, "id"));
    h_resp_free(&r);
    ck_assert(h_wait_until(outbox_commit_settled, id, 15000));
    long committed = h_stack_stock(st, "SKU-RED-MUG", "committed");
    long reserved = h_stack_stock(st, "SKU-RED-MUG", "reserved");
    free(h_sql(st->db,
               "UPDATE gateway.checkouts SET reservation_id = 'res_forgotten_' || id, "
               "reservation_state = 'reserved' WHERE id = '%s' RETURNING 1",
               id));
    free(h_sql(st->db,
               "INSERT INTO gateway.outbox (kind, merchant_id, target, outcome_unknown) "
               "SELECT 'inventory_commit', merchant_id, reservation_id, true "
               "FROM gateway.checkouts WHERE id = '%s' RETURNING 1",
               id));
    ck_assert(h_wait_until(outbox_commit_settled, id, 15000));
    ck_assert_int_eq(commit_rows(id, "o.state = 'failed' AND o.last_error LIKE '%%unknown%%'"), 1);
    ck_assert_int_eq(h_stack_stock(st, "SKU-RED-MUG", "committed"), committed);
    ck_assert_int_eq(h_stack_stock(st, "SKU-RED-MUG", "reserved"), reserved);
    free(id);
}
END_TEST

static int nblockers;

/* someone else buys every TEAPOT left while the order is being paid */
static void sell_the_rest(void)
{
    long avail;
    while ((avail = h_stack_stock(st, "SKU-TEAPOT", "on_hand") -
                    h_stack_stock(st, "SKU-TEAPOT", "reserved")) > 0) {
        char id[64], body[160];
        snprintf(id, sizeof id, "blocker-%d-%d", (int)getpid(), nblockers++);
        snprintf(body, sizeof body,
                 "{\"items\":[{\"sku\":\"SKU-TEAPOT\",\"quantity\":%ld}],\"ttl_seconds\":600}",
                 avail > 1000 ? 1000 : avail);
        h_resp_t r = inventory("PUT", id, body);
        ck_assert_msg(r.status == 201, "%ld %s", r.status, r.body);
        h_resp_free(&r);
    }
}

/* The order is paid, its reservation is gone and so is the stock: the commit
 * fails for good and the platform hears of it once, as order.out_of_stock
 * (signed like any event, the checkout as its data). Nothing is committed. */
START_TEST(a_paid_order_whose_stock_was_sold_meanwhile_is_reported_once)
{
    long committed = h_stack_stock(st, "SKU-TEAPOT", "committed");
    long long gone = metric("portcullis_inventory_reclaims_total{result=\"out_of_stock\"}");
    char *id = paid_while(true, sell_the_rest);
    delivered_t d = {.chk = id, .type = "order.out_of_stock"};
    ck_assert(h_wait_until(delivered_once, &d, 15000));
    ck_assert(h_wait_until(outbox_commit_settled, id, 15000));
    ck_assert_int_eq(commit_rows(id, "o.state = 'failed'"), 1);
    ck_assert_int_eq(metric("portcullis_inventory_reclaims_total{result=\"out_of_stock\"}"),
                     gone + 1);
    ck_assert_int_eq(out_of_stock_events(id), 1);
    ck_assert_int_eq(h_stack_stock(st, "SKU-TEAPOT", "committed"), committed);
    json_t *j = h_stack_deliveries(st);
    ck_assert_int_eq(h_json_int(j, "bad_signatures"), 0);
    json_decref(j);
    for (int i = 0; i < nblockers; i++) {
        char bid[64];
        snprintf(bid, sizeof bid, "blocker-%d-%d", (int)getpid(), i);
        h_resp_t r = inventory("DELETE", bid, NULL);
        h_resp_free(&r);
    }
    free(id);
}
END_TEST

static void inventory_busy(void)
{
    h_sandbox_faults(st->inventory, "{\"mode\":\"busy\"}");
}

static bool commit_refused_as_busy(void *cls)
{
    return commit_rows(cls, "o.state = 'pending' AND o.attempts >= 1 "
                            "AND o.last_error = 'inventory busy'") == 1;
}

/* Inventory answering 429 (a rate limit) to a paid order's commit is "not
 * now", not "no": the commit is retried with backoff and lands once the
 * service takes requests again. */
START_TEST(a_commit_refused_with_429_is_retried_until_it_lands)
{
    long committed = h_stack_stock(st, "SKU-TEAPOT", "committed");
    long long retried =
        metric("portcullis_outbox_deliveries_total{kind=\"inventory_commit\",result=\"retry\"}");
    char *id = paid_while(false, inventory_busy);
    ck_assert(h_wait_until(commit_refused_as_busy, id, 10000));
    ck_assert_int_ge(
        metric("portcullis_outbox_deliveries_total{kind=\"inventory_commit\",result=\"retry\"}"),
        retried + 1);
    ck_assert_int_eq(h_stack_stock(st, "SKU-TEAPOT", "committed"), committed);
    h_sandbox_faults(st->inventory, "{\"mode\":\"none\"}");
    ck_assert(h_wait_until(outbox_commit_settled, id, 30000));
    ck_assert_int_eq(h_stack_stock(st, "SKU-TEAPOT", "committed"), committed + 1);
    ck_assert(reservation_committed(id));
    free(id);
}
END_TEST

int main(void)
{
    h_init("it_checkout");
    Suite *s = suite_create("checkout");
    TCase *tc = h_tcase("checkout", 600);
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_add_test(tc, happy_path_charges_once_and_confirms_the_order);
    tcase_add_test(tc, declines_are_402_with_the_normalised_reason);
    tcase_add_test(tc, cart_errors_charge_and_reserve_nothing);
    tcase_add_test(tc, the_last_one_sells_once);
    tcase_add_test(tc, outages_answer_503_and_charge_nothing);
    tcase_add_test(tc, primary_down_fails_over_with_one_charge);
    tcase_add_test(tc, a_publishable_key_reads_only_the_checkouts_it_made);
    tcase_add_test(tc, authorize_only_then_capture_partially);
    tcase_add_test(tc, a_commit_after_the_reservation_ended_takes_the_stock_again);
    tcase_add_test(tc, a_commit_retried_after_a_lost_answer_takes_the_stock_once);
    tcase_add_test(tc, a_commit_whose_answer_was_lost_is_remembered_as_possibly_made);
    tcase_add_test(tc,
                   a_forgotten_reservation_whose_commit_may_have_gone_through_is_left_to_a_person);
    tcase_add_test(tc, a_paid_order_whose_stock_was_sold_meanwhile_is_reported_once);
    tcase_add_test(tc, a_commit_refused_with_429_is_retried_until_it_lands);
    tcase_add_test(tc, a_provider_slower_than_the_lease_is_cut_off_before_the_lease_ends);
    tcase_add_test(tc, a_lookup_the_provider_can_no_longer_answer_is_left_to_a_person);
    tcase_add_test(tc, a_release_that_overtakes_its_reserve_still_releases);
    /* last: it restarts the gateway in its own (forked) test process */
    tcase_add_test(tc, a_checkout_killed_before_paying_is_failed_without_a_provider_call);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
