/* Checkout.com adapter: the unified Payments API (/payments, /payments/{id}/
 * captures|voids|refunds) with "Authorization: Bearer <secret key>" and
 * Cko-Idempotency-Key, raw card "source", five-digit response codes mapped
 * by the table below.
 *
 * The lookup is a read: GET /payments?reference=<attempt key> (our attempt
 * key is the payment's reference), or GET /payments/{id} when the id is
 * known; a declined payment's response code comes from its actions. An
 * empty list is "not found"; the engine only believes it when it is
 * repeated, because a request still in flight may not be listed yet. */
#include "providers/internal.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const prv_cred_field_t checkout_creds[] = {
    {.name = "secret_key", .required = true, .min = 8, .max = 255, .prefixes = "sk_"},
    {.name = "processing_channel_id", .required = false, .min = 4, .max = 64, .prefixes = "pc_"},
    {NULL},
};

/* response_code of a payment that was not approved. 20xxx soft, 30xxx hard,
 * 4xxxx risk; codes not listed fall back to their range (see code_result). */
static const prv_code_t checkout_codes[] = {
    {"20001", PRV_DECLINED, false, "card_declined"},
    {"20002", PRV_DECLINED, false, "card_declined"},
    {"20005", PRV_DECLINED, false, "do_not_honor"},
    {"20012", PRV_DECLINED, false, "card_declined"},
    {"20014", PRV_DECLINED, true, "invalid_number"},
    {"20046", PRV_DECLINED, true, "card_declined"},
    {"20051", PRV_DECLINED, false, "insufficient_funds"},
    {"20054", PRV_DECLINED, true, "expired_card"},
    {"20057", PRV_DECLINED, false, "card_declined"},
    {"20059", PRV_DECLINED, true, "card_declined"},
    {"20061", PRV_DECLINED, false, "insufficient_funds"},
    {"20062", PRV_DECLINED, true, "card_declined"},
    {"20068", PRV_UNAVAILABLE, false, "processing_error"},
    {"20082", PRV_DECLINED, false, "incorrect_cvc"},
    {"20087", PRV_DECLINED, false, "incorrect_cvc"},
    {"20091", PRV_UNAVAILABLE, false, "processing_error"},
    {"20096", PRV_UNAVAILABLE, false, "processing_error"},
    {"30004", PRV_DECLINED, true, "card_declined"},
    {"30007", PRV_DECLINED, true, "card_declined"},
    {"30041", PRV_DECLINED, true, "lost_card"},
    {"30043", PRV_DECLINED, true, "stolen_card"},
    {NULL, PRV_DECLINED, false, "card_declined"},
};

/* error_codes[0] of a 4xx on /payments: refused before processing. */
static const prv_code_t checkout_payment_errors[] = {
    {"card_number_invalid", PRV_DECLINED, true, "invalid_number"},
    {"card_expired", PRV_DECLINED, true, "expired_card"},
    {"cvv_invalid", PRV_DECLINED, false, "incorrect_cvc"},
    {NULL, PRV_UNAVAILABLE, false, "invalid_request"},
};

static void code_result(prv_result_t *r, const char *code)
{
    const prv_code_t *e = prv_code_find(checkout_codes, code);
    bool hard = e->code ? e->hard : (code && code[0] != '2');
    prv_result_set(r, e->outcome, hard, e->reason, code);
}

/* ---------------------------------------------------------------- calls */

static bool call(const prv_config_t *cfg, const char *method, const char *path, const char *key,
                 const char *body, size_t len, httpc_response_t *rs, prv_result_t *r)
{
    prv_buf_t auth;
    if (!prv_buf_init(&auth, 320)) {
        prv_result_set(r, PRV_UNAVAILABLE, false, "internal_error", NULL);
        return false;
    }
    prv_buf_printf(&auth, "Authorization: Bearer %s", prv_creds_get(cfg->creds, "secret_key"));
    char idem[PRV_KEY_MAX + 32];
    snprintf(idem, sizeof idem, "Cko-Idempotency-Key: %s", key ? key : "");
    prv_http_t h = {.method = method,
                    .path = path,
                    .auth_header = auth.p,
                    .idem_header = key ? idem : NULL,
                    .content_type = body ? "application/json" : NULL,
                    .body = body,
                    .body_len = len};
    bool ok = !auth.failed && prv_http_call(cfg, &h, rs, r);
    if (auth.failed)
        prv_result_set(r, PRV_UNAVAILABLE, false, "internal_error", NULL);
    prv_buf_free(&auth);
    return ok;
}

/* A payment object (POST reply or GET details) -> outcome. `capture`: the
 * attempt asked for capture, so an approved authorization is captured as
 * far as we are concerned (Checkout.com captures it right after). */
static void payment_result(const json_t *p, bool capture, prv_result_t *r)
{
    const char *id = prv_json_s(p, "id");
    const char *status = prv_json_s(p, "status");
    const char *code = prv_json_s(p, "response_code");
    int64_t amt = 0;
    if (!id || !prv_ref_ok(id) || !status) {
        prv_result_set(r, PRV_UNKNOWN, false, "malformed_response", NULL);
        return;
    }
    prv_copy(r->provider_ref, sizeof r->provider_ref, id);
    if (prv_json_i64(p, "amount", &amt))
        r->amount = amt;
    if (!strcmp(status, "Captured") || !strcmp(status, "Partially Captured") ||
        !strcmp(status, "Refunded") || !strcmp(status, "Partially Refunded"))
        prv_result_set(r, PRV_CAPTURED, false, "", code ? code : status);
    else if (!strcmp(status, "Authorized"))
        prv_result_set(r, capture ? PRV_CAPTURED : PRV_AUTHORIZED, false, "", code ? code : status);
    else if (!strcmp(status, "Declined"))
        code_result(r, code);
    else if (!strcmp(status, "Voided") || !strcmp(status, "Canceled"))
        prv_result_set(r, PRV_UNAVAILABLE, false, "not_found", status);
    else if (!strcmp(status, "Pending"))
        prv_result_set(r, PRV_UNKNOWN, false, "processing", status);
    else
        prv_result_set(r, PRV_UNKNOWN, false, "malformed_response", status);
}

/* ---------------------------------------------------------- authorize */

static void payment_body(prv_buf_t *b, const prv_config_t *cfg, const prv_payment_t *pay,
                         const prv_card_t *card, const char *key)
{
    prv_buf_put(b, "{\"source\":{\"type\":\"card\",\"number\":");
    prv_buf_json_str(b, card->pan);
    prv_buf_printf(b, ",\"expiry_month\":%d,\"expiry_year\":%d", card->exp_month, card->exp_year);
    if (card->has_cvc) {
        prv_buf_put(b, ",\"cvv\":");
        prv_buf_json_str(b, card->cvc);
    }
    if (card->name[0]) {
        prv_buf_put(b, ",\"name\":");
        prv_buf_json_str(b, card->name);
    }
    prv_buf_printf(b, "},\"amount\":%lld,\"currency\":", (long long)pay->amount);
    prv_buf_json_str(b, pay->currency);
    prv_buf_put(b, ",\"reference\":");
    prv_buf_json_str(b, key);
    prv_buf_printf(b, ",\"capture\":%s,\"payment_type\":\"Regular\"",
                   pay->capture ? "true" : "false");
    const char *pc = prv_creds_get(cfg->creds, "processing_channel_id");
    if (*pc) {
        prv_buf_put(b, ",\"processing_channel_id\":");
        prv_buf_json_str(b, pc);
    }
    if (pay->description && *pay->description) {
        prv_buf_put(b, ",\"description\":");
        prv_buf_json_str(b, pay->description);
    }
    prv_buf_put(b, "}");
}

static prv_result_t checkout_authorize(const prv_config_t *cfg, const prv_payment_t *pay,
                                       const prv_card_t *card, const char *key)
{
    prv_result_t r = {0};
    prv_buf_t b;
    if (!prv_buf_init(&b, 1024))
        return prv_result_refused("internal_error");
    payment_body(&b, cfg, pay, card, key);
    httpc_response_t rs;
    bool got = !b.failed && call(cfg, "POST", "/payments", key, b.p, b.len, &rs, &r);
    if (b.failed)
        prv_result_set(&r, PRV_UNAVAILABLE, false, "internal_error", NULL);
    prv_buf_free(&b);
    if (!got)
        return r;
    json_t *j = prv_json_body(&rs);
    if (rs.http_status == 201 || rs.http_status == 202) {
        if (j)
            payment_result(j, pay->capture, &r);
        else
            prv_result_set(&r, PRV_UNKNOWN, false, "malformed_response", NULL);
        if (rs.http_status == 202 && r.outcome == PRV_UNKNOWN && r.provider_ref[0])
            prv_result_set(&r, PRV_DECLINED, false, "authentication_required", "Pending");
    } else if (!prv_http_generic(rs.http_status, &r)) {
        const json_t *codes = json_object_get(j, "error_codes");
        const char *first = json_string_value(json_array_get(codes, 0));
        if (rs.http_status == 409)
            prv_result_set(&r, PRV_UNKNOWN, false, "idempotency_conflict", NULL);
        else if ((rs.http_status == 400 || rs.http_status == 422) && j)
            prv_result_code(&r, checkout_payment_errors, first);
        else
            prv_result_set(&r, PRV_UNKNOWN, false, "unexpected_status", NULL);
    }
    json_decref(j);
    httpc_response_free(&rs);
    return r;
}

/* ------------------------------------------------------------- lookup */

/* GET path -> the parsed JSON body of a 200, or NULL with r unknown. */
static json_t *get_json(const prv_config_t *cfg, const char *path, prv_result_t *r)
{
    httpc_response_t rs;
    if (!call(cfg, "GET", path, NULL, NULL, 0, &rs, r)) {
        r->outcome = PRV_UNKNOWN;
        prv_copy(r->reason, sizeof r->reason, "lookup_failed");
        return NULL;
    }
    json_t *j = rs.http_status == 200 ? prv_json_body(&rs) : NULL;
    if (!j)
        prv_result_set(r, PRV_UNKNOWN, false, "lookup_failed", NULL);
    httpc_response_free(&rs);
    return j;
}

/* A declined payment's response code lives on its authorization action
 * (GET /payments/{id}/actions answers a JSON array). */
static void declined_code(const prv_config_t *cfg, const char *id, prv_result_t *r)
{
    char path[192];
    snprintf(path, sizeof path, "/payments/%s/actions", id);
    prv_result_t tmp = {0};
    httpc_response_t rs;
    if (!call(cfg, "GET", path, NULL, NULL, 0, &rs, &tmp))
        return;
    json_t *j =
        rs.http_status == 200 && rs.body_len ? json_loads_strict(rs.body, rs.body_len, NULL) : NULL;
    httpc_response_free(&rs);
    json_t *list = json_is_array(j) ? j : json_object_get(j, "data");
    size_t i;
    json_t *a;
    json_array_foreach(list, i, a)
    {
        const char *type = prv_json_s(a, "type");
        const char *code = prv_json_s(a, "response_code");
        if (type && code && !strcmp(type, "Authorization")) {
            code_result(r, code);
            break;
        }
    }
    json_decref(j);
}

static prv_result_t checkout_lookup(const prv_config_t *cfg, const prv_payment_t *pay,
                                    const char *key, const char *ref, const prv_card_t *card)
{
    (void)card;
    prv_result_t r = {0};
    char path[256];
    bool by_id = ref && prv_ref_ok(ref);
    if (by_id)
        snprintf(path, sizeof path, "/payments/%s", ref);
    else if (prv_ref_ok(key))
        snprintf(path, sizeof path, "/payments?reference=%s&limit=10", key);
    else
        return prv_result_refused("invalid_request");
    json_t *j = get_json(cfg, path, &r);
    if (!j)
        return r;
    const json_t *p = j;
    if (!by_id) {
        const json_t *data = json_object_get(j, "data");
        int64_t total = -1;
        prv_json_i64(j, "total_count", &total);
        if (!json_is_array(data) || total < 0) {
            prv_result_set(&r, PRV_UNKNOWN, false, "malformed_response", NULL);
            json_decref(j);
            return r;
        }
        if (json_array_size(data) == 0) {
            prv_result_set(&r, PRV_UNAVAILABLE, false, "not_found", NULL);
            json_decref(j);
            return r;
        }
        p = json_array_get(data, 0);
    }
    payment_result(p, pay ? pay->capture : false, &r);
    if (r.outcome == PRV_DECLINED && !prv_json_s(p, "response_code"))
        declined_code(cfg, r.provider_ref, &r);
    json_decref(j);
    return r;
}

/* ------------------------------------------------------- modifications */

static prv_result_t modify(const prv_config_t *cfg, const char *ref, const char *what,
                           int64_t amount, const char *key, prv_outcome_t want)
{
    prv_result_t r = {0};
    json_t *body = json_pack("{s:s}", "reference", key);
    if (amount > 0)
        json_object_set_new(body, "amount", json_integer(amount));
    char *text = json_dumps_compact(body);
    json_decref(body);
    if (!text)
        return prv_result_refused("internal_error");
    char path[256];
    snprintf(path, sizeof path, "/payments/%s/%s", ref, what);
    httpc_response_t rs;
    bool got = call(cfg, "POST", path, key, text, strlen(text), &rs, &r);
    free(text);
    if (!got)
        return r;
    json_t *j = prv_json_body(&rs);
    const char *action = prv_json_s(j, "action_id");
    if ((rs.http_status == 202 || rs.http_status == 200) && prv_ref_ok(action)) {
        prv_result_set(&r, want, false, "", NULL);
        prv_copy(r.provider_ref, sizeof r.provider_ref, action);
        r.amount = amount;
    } else if (rs.http_status == 202 || rs.http_status == 200) {
        prv_result_set(&r, PRV_UNKNOWN, false, "malformed_response", NULL);
    } else if (rs.http_status == 403) {
        /* Checkout.com's "capture/void/refund not allowed" for this state */
        prv_result_set(&r, PRV_DECLINED, true, "invalid_state", NULL);
    } else if (!prv_http_generic(rs.http_status, &r)) {
        const char *first = json_string_value(json_array_get(json_object_get(j, "error_codes"), 0));
        if (rs.http_status == 404)
            prv_result_set(&r, PRV_DECLINED, true, "not_found", first);
        else if (rs.http_status == 409)
            prv_result_set(&r, PRV_UNKNOWN, false, "idempotency_conflict", first);
        else if (rs.http_status == 422 && first && strstr(first, "amount"))
            prv_result_set(&r, PRV_DECLINED, true, "amount_too_large", first);
        else if (rs.http_status == 400 || rs.http_status == 422)
            prv_result_set(&r, PRV_DECLINED, true, "invalid_request", first);
        else
            prv_result_set(&r, PRV_UNKNOWN, false, "unexpected_status", first);
    }
    json_decref(j);
    httpc_response_free(&rs);
    return r;
}

static prv_result_t checkout_capture(const prv_config_t *cfg, const char *ref, int64_t amount,
                                     const char *currency, const char *key)
{
    (void)currency;
    return modify(cfg, ref, "captures", amount, key, PRV_CAPTURED);
}

static prv_result_t checkout_void(const prv_config_t *cfg, const char *ref, const char *key)
{
    return modify(cfg, ref, "voids", 0, key, PRV_VOIDED);
}

static prv_result_t checkout_refund(const prv_config_t *cfg, const char *ref, int64_t amount,
                                    const char *currency, const char *key)
{
    (void)currency;
    return modify(cfg, ref, "refunds", amount, key, PRV_REFUNDED);
}

const prv_adapter_t prv_adapter_checkout = {
    .type = "checkout",
    .creds = checkout_creds,
    .authorize = checkout_authorize,
    .capture = checkout_capture,
    .cancel = checkout_void,
    .refund = checkout_refund,
    .lookup = checkout_lookup,
    /* a search: an authorization still in flight may not be listed yet */
    .absent_after_s = 120,
    /* api.checkout.com, api.sandbox.checkout.com and their {prefix}. forms */
    .api_domains = "checkout.com",
};
