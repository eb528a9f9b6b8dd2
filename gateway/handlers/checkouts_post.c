/* POST /v1/checkouts: a token and a cart become exactly one paid order.
 *
 * Phases: parse → idempotency check → card metadata (vault, no PAN) →
 * quote (pricing; client prices are never trusted) → fraud score → route →
 * commit 1 (claim the key; record checkout, payment and attempt 1) →
 * reserve inventory → pay (providers engine; failover records each step) →
 * commit 2 (payment, order, inventory commit request, order.confirmed event
 * and the stored response). Two commits on the happy path. */
#include "gateway/handlers/handlers.h"
#include "gateway/checkout_flow.h"
#include "gateway/db/gwdb.h"
#include "vault/vault.h"
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    gw_request_t *rq;
    gw_idem_t idem;
    /* request */
    const char *currency, *token, *email, *ip, *device_id, *edge_country, *ship_country;
    json_t *cart, *items, *payment, *customer, *shipping;
    int64_t expected_total;
    bool has_expected, capture, capture_set;
    /* state */
    vault_card_meta_t card;
    gw_quote_t quote;
    fraud_bin_info_t bin;
    fraud_keys_t keys;
    fraud_key_hashes_t key_hashes;
    fraud_result_t fraud;
    gw_providers_t *providers;
    prv_plan_t plan;
    prv_payment_t pay;
    char checkout_id[IDS_MAX], payment_id[IDS_MAX], reservation_id[IDS_MAX + 8];
    char attempt_key[PRV_KEY_MAX];
    int reservation_ttl;
    int64_t lease_t0; /* time_mono_us() just before commit 1 set the lease */
    bool review;
} co_t;

static void co_free(void *p)
{
    co_t *x = p;
    gw_quote_free(&x->quote);
    gw_providers_release(x->providers);
    free(x);
}

/* ------------------------------------------------------------------ parse */

static const char *check_ip(const json_t *v)
{
    unsigned char buf[16];
    const char *s = json_string_value(v);
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1
               ? NULL
               : "must be an IPv4 or IPv6 address";
}

static const char *check_email(const json_t *v)
{
    const char *s = json_string_value(v);
    const char *at = strchr(s, '@');
    return at && at != s && at[1] && !strchr(at + 1, '@') && str_is_printable(s)
               ? NULL
               : "must be an email address";
}

/* Before anything else (a replay included): a source sending more than
 * its share gets 429 without costing a database or vault call. */
static enum MHD_Result limit(co_t *x, bool *done)
{
    int retry = 1;
    *done = !gw_rate_ok(&gw_rate_checkouts, x->rq, &retry);
    return *done ? gw_reply_rate_limited(x->rq, retry) : MHD_YES;
}

static enum MHD_Result parse(co_t *x, bool *done)
{
    gw_request_t *rq = x->rq;
    enum MHD_Result r = MHD_YES;
    *done = true;
    if (!gw_idem_parse(rq, true, &x->idem, &r))
        return r;
    const char *ship_name = NULL, *line1 = NULL, *line2 = NULL, *city = NULL, *postal = NULL,
               *state = NULL;
    const jspec_field_t cart_spec[] = {
        {.name = "currency", .type = JSPEC_STRING, .flags = JSPEC_REQUIRED, .dest = &x->currency,
         .check = jspec_check_currency},
        JSPEC_ARR("items", JSPEC_REQUIRED, 1, 100, &x->items),
        {.name = "expected_total", .type = JSPEC_INT, .min = 0, .max = GW_MAX_AMOUNT,
         .dest = &x->expected_total, .present = &x->has_expected},
        JSPEC_END,
    };
    const jspec_field_t payment_spec[] = {
        JSPEC_STR("token", JSPEC_REQUIRED | JSPEC_PRINTABLE, 5, 64, &x->token),
        {.name = "capture", .type = JSPEC_BOOL, .dest = &x->capture, .present = &x->capture_set},
        JSPEC_END,
    };
    const jspec_field_t customer_spec[] = {
        {.name = "email", .type = JSPEC_STRING, .min = 3, .max = 254, .dest = &x->email,
         .check = check_email},
        {.name = "ip", .type = JSPEC_STRING, .min = 2, .max = 45, .dest = &x->ip,
         .check = check_ip},
        JSPEC_STR("device_id", JSPEC_PRINTABLE, 1, 128, &x->device_id),
        {.name = "edge_country", .type = JSPEC_STRING, .dest = &x->edge_country,
         .check = jspec_check_country},
        JSPEC_STR("name", 0, 1, 200, NULL),
        JSPEC_END,
    };
    const jspec_field_t shipping_spec[] = {
        JSPEC_STR("name", 0, 1, 200, &ship_name),
        JSPEC_STR("line1", 0, 1, 200, &line1),
        JSPEC_STR("line2", 0, 0, 200, &line2),
        JSPEC_STR("city", 0, 1, 100, &city),
        JSPEC_STR("postal_code", 0, 1, 20, &postal),
        JSPEC_STR("state", 0, 1, 100, &state),
        {.name = "country", .type = JSPEC_STRING, .flags = JSPEC_REQUIRED,
         .dest = &x->ship_country, .check = jspec_check_country},
        JSPEC_END,
    };
    const jspec_field_t spec[] = {
        JSPEC_OBJ("cart", JSPEC_REQUIRED, cart_spec, &x->cart),
        JSPEC_OBJ("payment", JSPEC_REQUIRED, payment_spec, &x->payment),
        JSPEC_OBJ("customer", 0, customer_spec, &x->customer),
        JSPEC_OBJ("shipping", JSPEC_REQUIRED, shipping_spec, &x->shipping),
        JSPEC_END,
    };
    jspec_error_t je;
    if (!jspec_parse(rq->json, spec, "", &je))
        return gw_reply_jspec(rq, &je);
    size_t i;
    json_t *it;
    json_array_foreach(x->items, i, it)
    {
        const jspec_field_t item_spec[] = {
            JSPEC_STR("sku", JSPEC_REQUIRED | JSPEC_PRINTABLE, 1, 64, NULL),
            JSPEC_I64("quantity", JSPEC_REQUIRED, 1, 1000, NULL),
            JSPEC_END,
        };
        char prefix[48];
        snprintf(prefix, sizeof prefix, "cart.items[%zu]", i);
        if (!jspec_parse(it, item_spec, prefix, &je))
            return gw_reply_jspec(rq, &je);
        /* one line per SKU: the pricing and inventory contracts refuse repeats */
        const char *sku = json_string_value(json_object_get(it, "sku"));
        for (size_t k = 0; k < i; k++)
            if (!strcmp(sku,
                        json_string_value(json_object_get(json_array_get(x->items, k), "sku")))) {
                char param[64], msg[192];
                snprintf(param, sizeof param, "%s.sku", prefix);
                snprintf(msg, sizeof msg, "%s repeats cart.items[%zu].sku; give one line per SKU.",
                         param, k);
                return gw_reply_error(rq, ERR_PARAMETER_INVALID, param, msg);
            }
    }
    if (!x->capture_set)
        x->capture = true;
    *done = false;
    return MHD_YES;
}

/* ------------------------------------------------------ card, quote, fraud */

static enum MHD_Result card_and_quote(co_t *x, bool *done)
{
    gw_request_t *rq = x->rq;
    *done = true;
    vault_status_t vs = vault_card_info(gw_vault(), rq->auth.merchant_id, x->token, &x->card);
    if (vs == VAULT_NOT_FOUND || vs == VAULT_DENIED)
        return gw_reply_error(rq, ERR_TOKEN_INVALID, "payment.token", NULL);
    if (vs != VAULT_OK)
        return gw_reply_error(rq, ERR_VAULT_UNAVAILABLE, NULL, NULL);
    char bad[64] = "";
    plat_status_t ps = gw_pricing_quote(x->currency, x->items, x->ship_country, &x->quote, bad,
                                        sizeof bad);
    if (ps == PLAT_REJECTED && !strcmp(bad, "shipping.country"))
        return gw_reply_error(rq, ERR_PARAMETER_INVALID, bad,
                              "The shop does not ship to this country.");
    if (ps == PLAT_REJECTED)
        return gw_reply_error(rq, ERR_UNKNOWN_SKU, bad,
                              "The pricing service does not sell this SKU in this currency.");
    if (ps != PLAT_OK)
        return gw_reply_error(rq, ERR_PRICING_UNAVAILABLE, NULL, NULL);
    if (x->has_expected && x->expected_total != x->quote.total) {
        char msg[160];
        snprintf(msg, sizeof msg, "The cart total is %lld, not the expected %lld.",
                 (long long)x->quote.total, (long long)x->expected_total);
        json_t *body = err_body(ERR_PRICE_CHANGED, "cart.expected_total", msg);
        json_object_set(body, "quote", x->quote.json);
        return gw_reply_json(rq, 409, body);
    }
    *done = false;
    return MHD_YES;
}

/* The shopper's address for fraud rules, lists and velocity. A secret key
 * calls from the merchant's server, which saw the shopper and may say so in
 * customer.ip. A publishable key calls from the shopper's own browser, so
 * customer.ip is whatever the shopper typed: one address per attempt would
 * walk past every per-IP card-testing rule and hit an allow-list at will.
 * Those calls are scored by the address they came from (the one the per-IP
 * rate limit counts, X-Forwarded-For where a trusted proxy sets it). */
static const char *shopper_ip(const co_t *x)
{
    return x->ip && x->rq->auth.role == GW_ROLE_SK ? x->ip : x->rq->client_ip;
}

static void features(co_t *x, fraud_features_t *f)
{
    memset(f, 0, sizeof *f);
    f->amount = x->quote.total;
    f->currency = x->currency;
    f->card_brand = x->card.brand;
    f->bin = x->card.bin;
    f->fingerprint = x->card.fingerprint;
    f->email = x->email;
    f->ip = shopper_ip(x);
    f->edge_country = x->edge_country;
    f->shipping_country = x->ship_country;
    f->device_id = x->device_id;
    f->has_cvc = x->card.has_cvc;
    f->cart_total = x->quote.subtotal;
    f->cart_distinct_skus = (int64_t)x->quote.nlines;
    for (size_t i = 0; i < x->quote.nlines; i++) {
        if (x->quote.lines[i].quantity > f->cart_max_sku_quantity)
            f->cart_max_sku_quantity = x->quote.lines[i].quantity;
        f->cart_high_risk_skus += x->quote.lines[i].high_resale_risk;
    }
    if (fraud_bins_lookup(gw_fraud_bins(), x->card.bin, &x->bin))
        fraud_features_apply_bin(f, &x->bin);
}

static enum MHD_Result score(co_t *x, bool *done)
{
    gw_request_t *rq = x->rq;
    *done = true;
    x->keys = (fraud_keys_t){.merchant_id = rq->auth.merchant_id,
                             .currency = x->currency,
                             .fingerprint = x->card.fingerprint,
                             .email = x->email,
                             .ip = shopper_ip(x),
                             .device_id = x->device_id};
    fraud_keys_hash(&x->keys, &x->key_hashes);
    fraud_features_t f;
    features(x, &f);
    db_conn_t *c = db_pool_acquire(gw.db);
    db_status_t s = c ? gw_fraud_assess(c, rq->auth.merchant_id, &f, &x->fraud) : DB_UNAVAILABLE;
    db_pool_release(c);
    if (s != DB_OK)
        return gw_reply_db(rq, s);
    x->review = x->fraud.decision == FRAUD_REVIEW;
    *done = false;
    return MHD_YES;
}

/* ------------------------------------------------------------ route, begin */

static enum MHD_Result route(co_t *x, bool *done)
{
    gw_request_t *rq = x->rq;
    *done = true;
    ids_new(x->checkout_id, sizeof x->checkout_id, "chk_");
    ids_new(x->payment_id, sizeof x->payment_id, "pay_");
    snprintf(x->reservation_id, sizeof x->reservation_id, "res_%s", x->checkout_id + 4);
    x->reservation_ttl = (int)(x->review ? gw_cfg.review_reservation_ttl_s : gw_cfg.reservation_ttl_s);
    x->pay = (prv_payment_t){.merchant_id = rq->auth.merchant_id, .payment_id = x->payment_id,
                             .amount = x->quote.total, .currency = x->currency,
                             .brand = x->card.brand,
                             .country = x->bin.country[0] ? x->bin.country : x->ship_country,
                             .capture = x->capture && !x->review,
                             .description = x->checkout_id};
    if (x->fraud.decision == FRAUD_DECLINE) {
        *done = false; /* recorded and answered in begin(), no provider needed */
        return MHD_YES;
    }
    db_status_t s = gw_providers_get(rq->auth.merchant_id, &x->providers);
    if (s != DB_OK)
        return gw_reply_db(rq, s);
    if (prv_plan(x->providers->configs, x->providers->n, x->providers->routing, &x->pay,
                 &x->plan) == 0)
        return gw_reply_error(rq, ERR_PROVIDERS_UNAVAILABLE, NULL,
                              "No payment provider is configured, enabled and healthy for this "
                              "payment; nothing was charged.");
    prv_attempt_key(x->payment_id, 1, x->attempt_key);
    *done = false;
    return MHD_YES;
}

typedef struct {
    co_t *x;
    gwdb_checkout_begin_t b;
    gwdb_finish_result_t fin;
    bool declined;
} begin_t;

/* Commit 1: one statement (claim, checkout, payment, attempt 1, velocity). A
 * fraud decline is finished in the same transaction. */
static db_status_t begin_txn(db_conn_t *c, void *cls)
{
    begin_t *t = cls;
    db_status_t s = db_checkout_begin(c, &t->b);
    if (s != DB_OK || !t->declined)
        return s;
    /* A fraud decline ends here, in the same commit: nothing reserved,
     * nothing sent to a provider. */
    json_t *err = json_pack("{s:s, s:s, s:s}", "type", err_type(ERR_FRAUD_DECLINED), "code",
                            err_code_str(ERR_FRAUD_DECLINED), "message",
                            err_message(ERR_FRAUD_DECLINED));
    char *ej = json_dumps_compact(err);
    json_decref(err);
    gwdb_checkout_finish_t f = {.checkout_id = t->b.checkout_id, .status = "declined",
                                .http = 402, .reservation = "none", .error_json = ej,
                                .event_type = "checkout.declined"};
    free(t->fin.body);
    t->fin.body = NULL;
    s = db_checkout_finish(c, &f, &t->fin);
    free(ej);
    return s;
}

static char *dumps_or_null(const json_t *j)
{
    return j ? json_dumps_compact(j) : NULL;
}

static enum MHD_Result reply_stored(gw_request_t *rq, gwdb_finish_result_t *fin)
{
    enum MHD_Result r = gw_reply_raw_hdr(rq, (unsigned)fin->http, fin->body, strlen(fin->body),
                                         NULL, NULL);
    free(fin->body);
    fin->body = NULL;
    return r;
}

static enum MHD_Result begin(co_t *x, bool *done)
{
    gw_request_t *rq = x->rq;
    *done = true;
    json_t *card = json_pack("{s:s, s:s, s:s, s:i, s:i, s:s}", "brand", x->card.brand, "last4",
                             x->card.last4, "bin", x->card.bin, "exp_month", x->card.exp_month,
                             "exp_year", x->card.exp_year, "fingerprint", x->card.fingerprint);
    json_t *fraud = fraud_result_json(&x->fraud);
    bool declined = x->fraud.decision == FRAUD_DECLINE;
    char *quote = dumps_or_null(x->quote.json), *cardj = dumps_or_null(card),
         *cust = dumps_or_null(x->customer), *ship = dumps_or_null(x->shipping),
         *fr = dumps_or_null(fraud);
    begin_t t = {.x = x, .declined = declined};
    t.b = (gwdb_checkout_begin_t){.merchant_id = rq->auth.merchant_id,
                                  .idem_key = x->idem.key,
                                  .idem_hash = x->idem.hash,
                                  .checkout_id = x->checkout_id,
                                  .currency = x->currency,
                                  .amount = x->quote.total,
                                  .quote_json = quote,
                                  .token = x->token,
                                  .card_json = cardj,
                                  .customer_json = cust,
                                  .shipping_json = ship,
                                  .capture = x->capture,
                                  .reservation_id = x->reservation_id,
                                  .reservation_ttl_s = x->reservation_ttl,
                                  .fraud_json = fr,
                                  .payment_id = declined ? NULL : x->payment_id,
                                  .provider = declined ? NULL : x->plan.candidates[0]->name,
                                  .attempt_key = declined ? NULL : x->attempt_key,
                                  .lease_s = (int)gw_cfg.checkout_lease_s,
                                  .vel = &x->key_hashes,
                                  .basket = x->quote.subtotal,
                                  .declined = declined,
                                  .api_key_id = rq->auth.key_id};
    x->lease_t0 = time_mono_us(); /* not later than the database's now() for the lease */
    db_status_t s = db_txn_run(gw.db, declined ? DB_READ_COMMITTED : DB_AUTOCOMMIT,
                               "checkout_begin", begin_txn, &t);
    json_decref(card);
    json_decref(fraud);
    free(quote);
    free(cardj);
    free(cust);
    free(ship);
    free(fr);
    enum MHD_Result r;
    if (s == DB_CONFLICT) {
        /* Another request (on any instance) claimed the key first. */
        free(t.fin.body);
        if (!gw_idem_answer_existing(rq, &x->idem, &r))
            r = gw_reply_error(rq, ERR_REQUEST_IN_PROGRESS, "Idempotency-Key", NULL);
        return r;
    }
    if (s != DB_OK) {
        free(t.fin.body);
        return gw_reply_db(rq, s);
    }
    if (declined) {
        gw_outbox_kick();
        return reply_stored(rq, &t.fin);
    }
    *done = false;
    return MHD_YES;
}

/* ---------------------------------------------------------- reserve, pay */

/* Names each short line by its place in the request ("cart.items[1]"). */
static void name_short_lines(co_t *x, json_t *short_lines)
{
    size_t i;
    json_t *u;
    json_array_foreach(short_lines, i, u)
    {
        const char *sku = json_string_value(json_object_get(u, "sku"));
        for (size_t k = 0; sku && k < json_array_size(x->items); k++) {
            const char *mine = json_string_value(json_object_get(json_array_get(x->items, k), "sku"));
            if (mine && !strcmp(sku, mine)) {
                char param[48];
                snprintf(param, sizeof param, "cart.items[%zu]", k);
                json_object_set_new(u, "param", json_string(param));
                break;
            }
        }
    }
}

static enum MHD_Result reserve(co_t *x, bool *done)
{
    gw_request_t *rq = x->rq;
    json_t *short_lines = NULL;
    plat_status_t ps = gw_inventory_reserve(x->reservation_id, x->items, x->reservation_ttl,
                                            &short_lines);
    if (ps == PLAT_OK) {
        *done = false;
        return MHD_YES;
    }
    *done = true;
    gwdb_finish_result_t fin;
    db_status_t s;
    if (ps == PLAT_REJECTED) {
        name_short_lines(x, short_lines);
        json_t *extra = json_pack("{s:o}", "lines", short_lines);
        s = gw_checkout_finish_early(x->checkout_id, "failed", 409, ERR_OUT_OF_STOCK, extra, "none",
                                     &fin);
        json_decref(extra);
    } else {
        /* A reservation that may exist is released through the outbox. */
        json_decref(short_lines);
        s = gw_checkout_finish_early(x->checkout_id, "failed", 503, ERR_INVENTORY_UNAVAILABLE,
                                     NULL, ps == PLAT_UNKNOWN ? "release" : "none", &fin);
    }
    if (s != DB_OK)
        return gw_reply_db(rq, s);
    return reply_stored(rq, &fin);
}

typedef struct {
    co_t *x;
    const prv_attempt_t *done, *next;
} transition_t;

static db_status_t transition_txn(db_conn_t *c, void *cls)
{
    const transition_t *t = cls;
    return db_attempt_transition(
        c, t->x->payment_id, t->done->seq, prv_outcome_str(t->done->result.outcome),
        t->done->result.provider_ref, t->done->result.reason, t->next->seq, t->next->provider,
        t->next->idempotency_key, (int)gw_cfg.checkout_lease_s);
}

/* Records the finished attempt and the next one before the next provider is
 * called. Through db_txn_run, so a COMMIT whose answer is lost is settled by
 * its transaction id: giving up there would leave the next attempt recorded
 * but unsent, for recovery to "look up" (for Adyen: authorize late, without
 * the CVC). */
static int hook_transition(void *cls, const prv_attempt_t *done, const prv_attempt_t *next)
{
    transition_t t = {.x = cls, .done = done, .next = next};
    return db_txn_run(gw.db, DB_READ_COMMITTED, "attempt_transition", transition_txn, &t) == DB_OK
               ? 0
               : -1;
}

/* The PAN leaves the vault only here, for this one run, in guarded memory. */
static int hook_fetch_card(void *cls, prv_card_t **out)
{
    co_t *x = cls;
    vault_card_t *vc = NULL;
    if (vault_detokenize(gw_vault(), x->rq->auth.merchant_id, x->token, "authorize", &vc) !=
        VAULT_OK)
        return -1;
    prv_card_t *card = prv_card_new();
    if (!card) {
        vault_card_free(vc);
        return -1;
    }
    memcpy(card->pan, vc->pan, sizeof card->pan);
    memcpy(card->cvc, vc->cvc, sizeof card->cvc);
    card->has_cvc = vc->has_cvc;
    card->exp_month = vc->exp_month;
    card->exp_year = vc->exp_year;
    memcpy(card->name, vc->name, sizeof card->name);
    vault_card_free(vc);
    *out = card;
    return 0;
}

/* How long this request may keep calling providers after it (re)set its
 * lease: the lease less a margin for timer slack and clock rates, so no call
 * of ours is in flight once the recovery worker may take the checkout over. */
static int64_t provider_budget_us(void)
{
    int64_t lease = (int64_t)gw_cfg.checkout_lease_s * 1000000;
    int64_t margin = lease / 10;
    if (margin < 2000000)
        margin = 2000000;
    if (margin > 10000000)
        margin = 10000000;
    return lease - margin;
}

static enum MHD_Result pay(co_t *x)
{
    gw_request_t *rq = x->rq;
    prv_hooks_t hooks = {.transition = hook_transition, .fetch_card = hook_fetch_card, .cls = x};
    prv_options_t opt = {.deadline_us = x->lease_t0 + provider_budget_us(),
                         .renew_us = provider_budget_us()};
    prv_run_t run;
    memset(&run, 0, sizeof run);
    int rc = prv_execute(&x->pay, &x->plan, &opt, &hooks, &run);
    gw_finish_ctx_t fc = {.checkout_id = x->checkout_id, .amount = x->quote.total,
                          .review = x->review, .velocity = &x->key_hashes};
    prv_result_t res = run.result;
    if (run.nattempts > 0) {
        fc.attempt_seq = run.attempts[run.nattempts - 1].seq;
        fc.provider = run.attempts[run.nattempts - 1].provider;
    } else {
        fc.attempt_seq = 1;
        fc.provider = x->plan.candidates[0]->name;
    }
    if (rc != 0 && run.nattempts == 0) {
        /* the card could not be fetched: nothing was sent */
        memset(&res, 0, sizeof res);
        res.outcome = PRV_UNAVAILABLE;
        snprintf(res.reason, sizeof res.reason, "vault_unavailable");
    } else if (rc != 0) {
        /* a transition could not be recorded: the next provider was not
         * called; the last attempt's outcome stands as recorded by recovery */
        res.outcome = PRV_UNKNOWN;
    }
    gwdb_finish_result_t fin;
    db_status_t s = gw_checkout_finish_outcome(&fc, &res, &fin);
    if (s != DB_OK)
        return gw_reply_db(rq, s); /* recovery finishes it; a replay gets the answer */
    return reply_stored(rq, &fin);
}

enum MHD_Result handle_checkouts_post(gw_request_t *rq)
{
    co_t *x = calloc(1, sizeof *x);
    if (!x)
        return MHD_NO;
    x->rq = rq;
    rq->ctx = x;
    rq->ctx_free = co_free;
    enum MHD_Result (*phases[])(co_t *, bool *) = {limit, parse, NULL,  card_and_quote,
                                                   score, route, begin, reserve};
    for (size_t i = 0; i < PC_ARRAY_LEN(phases); i++) {
        bool done = false;
        enum MHD_Result r;
        if (!phases[i]) {
            /* the idempotency check, once the key and body are known */
            if (gw_idem_answer_existing(rq, &x->idem, &r))
                return r;
            continue;
        }
        r = phases[i](x, &done);
        if (done)
            return r;
    }
    return pay(x);
}
