/* Adyen adapter: Checkout API v71 (/payments, /payments/{pspReference}/
 * captures|cancels|refunds) with X-API-Key and Idempotency-Key, raw card
 * fields in a "scheme" payment method, resultCode/refusalReasonCode mapped
 * through the tables below.
 *
 * Adyen has no read API for a payment: its documented answer to a timeout is
 * to resend the same request with the same Idempotency-Key (keys live at
 * least 31 days), which returns the first answer when the payment was
 * processed and processes it now when it was not. The lookup does exactly
 * that, so it needs the card (the engine still holds it during a run) and
 * can never say "not found": an unknown Adyen attempt either becomes known
 * or stays unknown. Modifications are asynchronous at Adyen ("received");
 * their final result arrives by webhook. */
#include "providers/internal.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const prv_cred_field_t adyen_creds[] = {
    {.name = "api_key", .required = true, .min = 8, .max = 1000},
    {.name = "merchant_account", .required = true, .min = 1, .max = 80},
    {NULL},
};

/* refusalReasonCode -> outcome (resultCode Refused or Error). */
static const prv_code_t adyen_refusals[] = {
    {"2", PRV_DECLINED, false, "card_declined"},       /* Refused */
    {"3", PRV_DECLINED, false, "card_declined"},       /* Referral */
    {"4", PRV_UNAVAILABLE, false, "processing_error"}, /* Acquirer Error */
    {"5", PRV_DECLINED, true, "card_declined"},        /* Blocked Card */
    {"6", PRV_DECLINED, true, "expired_card"},         /* Expired Card */
    {"7", PRV_DECLINED, true, "invalid_amount"},       /* Invalid Amount */
    {"8", PRV_DECLINED, true, "invalid_number"},       /* Invalid Card Number */
    {"9", PRV_UNAVAILABLE, false, "processing_error"}, /* Issuer Unavailable */
    {"10", PRV_DECLINED, true, "card_declined"},       /* Not supported */
    {"11", PRV_DECLINED, false, "authentication_required"},
    {"12", PRV_DECLINED, false, "insufficient_funds"},  /* Not enough balance */
    {"14", PRV_DECLINED, true, "card_declined"},        /* Acquirer Fraud */
    {"15", PRV_DECLINED, false, "card_declined"},       /* Cancelled */
    {"16", PRV_DECLINED, false, "card_declined"},       /* Shopper Cancelled */
    {"20", PRV_DECLINED, true, "card_declined"},        /* FRAUD */
    {"21", PRV_UNAVAILABLE, false, "processing_error"}, /* Not Submitted */
    {"22", PRV_DECLINED, true, "card_declined"},        /* FRAUD-CANCELLED */
    {"23", PRV_DECLINED, true, "card_declined"},        /* Transaction Not Permitted */
    {"24", PRV_DECLINED, false, "incorrect_cvc"},       /* CVC Declined */
    {"25", PRV_DECLINED, true, "card_declined"},        /* Restricted Card */
    {"26", PRV_DECLINED, true, "card_declined"},        /* Revocation Of Auth */
    {"27", PRV_DECLINED, false, "card_declined"},       /* Declined Non Generic */
    {"28", PRV_DECLINED, false, "insufficient_funds"},  /* Withdrawal amount exceeded */
    {"29", PRV_DECLINED, false, "card_declined"},       /* Withdrawal count exceeded */
    {"31", PRV_DECLINED, true, "card_declined"},        /* Issuer Suspected Fraud */
    {"32", PRV_DECLINED, false, "card_declined"},       /* AVS Declined */
    {"38", PRV_DECLINED, false, "authentication_required"},
    {NULL, PRV_DECLINED, false, "card_declined"},
};

/* additionalData.refusalReasonRaw starts with the issuer's ISO 8583 code
 * when the acquirer passes it on; it tells lost from stolen from a generic
 * "Blocked Card" and overrides the table above when listed here. */
static const prv_code_t adyen_raw[] = {
    {"05", PRV_DECLINED, false, "do_not_honor"},
    {"41", PRV_DECLINED, true, "lost_card"},
    {"43", PRV_DECLINED, true, "stolen_card"},
    {"51", PRV_DECLINED, false, "insufficient_funds"},
    {"54", PRV_DECLINED, true, "expired_card"},
    {"82", PRV_DECLINED, false, "incorrect_cvc"},
    {"91", PRV_UNAVAILABLE, false, "processing_error"},
    {"96", PRV_UNAVAILABLE, false, "processing_error"},
    {NULL, PRV_DECLINED, false, NULL},
};

/* errorCode of a 4xx on /payments: refused before processing. */
static const prv_code_t adyen_payment_errors[] = {
    {"101", PRV_DECLINED, true, "invalid_number"},
    {"103", PRV_DECLINED, false, "incorrect_cvc"},
    {"129", PRV_DECLINED, true, "invalid_expiry"},
    {"704", PRV_UNKNOWN, false, "idempotency_conflict"}, /* in progress / reused */
    {NULL, PRV_UNAVAILABLE, false, "invalid_request"},
};

/* errorCode of a 4xx on a modification. */
static const prv_code_t adyen_modify_errors[] = {
    {"167", PRV_DECLINED, true, "not_found"},
    {"137", PRV_DECLINED, true, "amount_too_large"},
    {"704", PRV_UNKNOWN, false, "idempotency_conflict"},
    {NULL, PRV_DECLINED, true, "invalid_request"},
};

/* ---------------------------------------------------------------- calls */

static bool call(const prv_config_t *cfg, const char *path, const char *key, const char *body,
                 size_t len, httpc_response_t *rs, prv_result_t *r)
{
    prv_buf_t auth;
    if (!prv_buf_init(&auth, 1100)) {
        prv_result_set(r, PRV_UNAVAILABLE, false, "internal_error", NULL);
        return false;
    }
    prv_buf_printf(&auth, "X-API-Key: %s", prv_creds_get(cfg->creds, "api_key"));
    char idem[PRV_KEY_MAX + 32];
    snprintf(idem, sizeof idem, "Idempotency-Key: %s", key);
    prv_http_t h = {.method = "POST",
                    .path = path,
                    .auth_header = auth.p,
                    .idem_header = idem,
                    .content_type = "application/json",
                    .body = body,
                    .body_len = len};
    bool ok = !auth.failed && prv_http_call(cfg, &h, rs, r);
    if (auth.failed)
        prv_result_set(r, PRV_UNAVAILABLE, false, "internal_error", NULL);
    prv_buf_free(&auth);
    return ok;
}

static void error_result(const httpc_response_t *rs, const prv_code_t *table, prv_result_t *r)
{
    json_t *j = prv_json_body(rs);
    const char *code = prv_json_s(j, "errorCode");
    if (code)
        prv_result_code(r, table, code);
    else
        prv_result_set(r, PRV_UNKNOWN, false, "malformed_response", NULL);
    json_decref(j);
}

/* resultCode (+ refusal codes) -> outcome. */
static void payment_result(const json_t *j, bool capture, int64_t amount, prv_result_t *r)
{
    const char *rc = prv_json_s(j, "resultCode");
    const char *psp = prv_json_s(j, "pspReference");
    if (psp && prv_ref_ok(psp))
        prv_copy(r->provider_ref, sizeof r->provider_ref, psp);
    if (!rc) {
        prv_result_set(r, PRV_UNKNOWN, false, "malformed_response", NULL);
    } else if (!strcmp(rc, "Authorised")) {
        if (!r->provider_ref[0]) {
            prv_result_set(r, PRV_UNKNOWN, false, "malformed_response", rc);
            return;
        }
        /* with captureDelayHours 0 Adyen captures right after authorising */
        prv_result_set(r, capture ? PRV_CAPTURED : PRV_AUTHORIZED, false, "", rc);
        r->amount = amount;
    } else if (!strcmp(rc, "Refused") || !strcmp(rc, "Error")) {
        const char *code = prv_json_s(j, "refusalReasonCode");
        const char *raw = prv_json_s(json_object_get(j, "additionalData"), "refusalReasonRaw");
        char iso[3] = {0};
        if (raw && raw[0] >= '0' && raw[0] <= '9' && raw[1] >= '0' && raw[1] <= '9')
            memcpy(iso, raw, 2);
        const prv_code_t *e = prv_code_find(adyen_raw, iso[0] ? iso : NULL);
        if (e->code)
            prv_result_set(r, e->outcome, e->hard, e->reason, code);
        else if (code)
            prv_result_code(r, adyen_refusals, code);
        else if (!strcmp(rc, "Error"))
            prv_result_set(r, PRV_UNAVAILABLE, false, "processing_error", rc);
        else
            prv_result_set(r, PRV_DECLINED, false, "card_declined", rc);
    } else if (!strcmp(rc, "Cancelled")) {
        prv_result_set(r, PRV_DECLINED, false, "card_declined", rc);
    } else if (!strcmp(rc, "RedirectShopper") || !strcmp(rc, "IdentifyShopper") ||
               !strcmp(rc, "ChallengeShopper")) {
        prv_result_set(r, PRV_DECLINED, false, "authentication_required", rc);
    } else {
        /* Received, Pending, PresentToShopper...: the outcome comes later */
        prv_result_set(r, PRV_UNKNOWN, false, "processing", rc);
    }
}

/* ---------------------------------------------------------- authorize */

/* The request body, byte for byte the same for the same attempt: a replay
 * must match the original. */
static void payment_body(prv_buf_t *b, const prv_config_t *cfg, const prv_payment_t *pay,
                         const prv_card_t *card, const char *key)
{
    prv_buf_printf(b, "{\"amount\":{\"value\":%lld,\"currency\":", (long long)pay->amount);
    prv_buf_json_str(b, pay->currency);
    prv_buf_put(b, "},\"reference\":");
    prv_buf_json_str(b, key);
    prv_buf_put(b, ",\"merchantAccount\":");
    prv_buf_json_str(b, prv_creds_get(cfg->creds, "merchant_account"));
    prv_buf_put(b, ",\"paymentMethod\":{\"type\":\"scheme\",\"number\":");
    prv_buf_json_str(b, card->pan);
    prv_buf_printf(b, ",\"expiryMonth\":\"%02d\",\"expiryYear\":\"%04d\"", card->exp_month,
                   card->exp_year);
    if (card->has_cvc) {
        prv_buf_put(b, ",\"cvc\":");
        prv_buf_json_str(b, card->cvc);
    }
    if (card->name[0]) {
        prv_buf_put(b, ",\"holderName\":");
        prv_buf_json_str(b, card->name);
    }
    prv_buf_put(b, "},\"shopperInteraction\":\"Ecommerce\"");
    if (pay->capture)
        prv_buf_put(b, ",\"captureDelayHours\":0");
    else
        prv_buf_put(b, ",\"additionalData\":{\"manualCapture\":\"true\"}");
    prv_buf_put(b, "}");
}

/* Adyen answers a repeated Idempotency-Key with the first request's answer,
 * whatever the repeat's body. The answer names its merchantReference (our
 * key) and amount: one that names others is about another payment, and must
 * not settle this one. Absent fields are not held against it. */
static bool same_payment(const json_t *j, const prv_payment_t *pay, const char *key)
{
    const char *ref = prv_json_s(j, "merchantReference");
    const json_t *amt = json_object_get(j, "amount");
    int64_t value = 0;
    const char *cur = prv_json_s(amt, "currency");
    return (!ref || !strcmp(ref, key)) &&
           (!prv_json_i64(amt, "value", &value) || value == pay->amount) &&
           (!cur || !strcmp(cur, pay->currency));
}

static prv_result_t adyen_authorize(const prv_config_t *cfg, const prv_payment_t *pay,
                                    const prv_card_t *card, const char *key)
{
    prv_result_t r = {0};
    prv_buf_t b;
    if (!prv_buf_init(&b, 1024))
        return prv_result_refused("internal_error");
    payment_body(&b, cfg, pay, card, key);
    httpc_response_t rs;
    bool got = !b.failed && call(cfg, "/v71/payments", key, b.p, b.len, &rs, &r);
    if (b.failed)
        prv_result_set(&r, PRV_UNAVAILABLE, false, "internal_error", NULL);
    prv_buf_free(&b);
    if (!got)
        return r;
    if (rs.http_status == 200) {
        json_t *j = prv_json_body(&rs);
        if (same_payment(j, pay, key))
            payment_result(j, pay->capture, pay->amount, &r);
        else /* the key's first request was another payment: ours is unknown */
            prv_result_set(&r, PRV_UNKNOWN, false, "idempotency_conflict", NULL);
        json_decref(j);
    } else if (!prv_http_generic(rs.http_status, &r)) {
        if (rs.http_status == 400 || rs.http_status == 422)
            error_result(&rs, adyen_payment_errors, &r);
        else
            prv_result_set(&r, PRV_UNKNOWN, false, "unexpected_status", NULL);
    }
    httpc_response_free(&rs);
    return r;
}

static prv_result_t adyen_lookup(const prv_config_t *cfg, const prv_payment_t *pay, const char *key,
                                 const char *ref, const prv_card_t *card)
{
    (void)ref;
    if (!card) {
        prv_result_t r = {0};
        prv_result_set(&r, PRV_UNKNOWN, false, "lookup_needs_card", NULL);
        return r;
    }
    prv_result_t r = adyen_authorize(cfg, pay, card, key);
    /* A replay that cannot get through settles nothing. */
    if (r.outcome == PRV_UNAVAILABLE && strcmp(r.reason, "processing_error") != 0) {
        r.outcome = PRV_UNKNOWN;
        prv_copy(r.reason, sizeof r.reason, "lookup_failed");
    }
    return r;
}

/* ------------------------------------------------------- modifications */

static prv_result_t modify(const prv_config_t *cfg, const char *ref, const char *what,
                           int64_t amount, const char *currency, const char *key,
                           prv_outcome_t want)
{
    prv_result_t r = {0};
    json_t *body = json_pack("{s:s, s:s}", "merchantAccount",
                             prv_creds_get(cfg->creds, "merchant_account"), "reference", key);
    if (amount > 0)
        json_object_set_new(body, "amount",
                            json_pack("{s:I, s:s}", "value", (json_int_t)amount, "currency",
                                      currency ? currency : ""));
    char *text = json_dumps_compact(body);
    json_decref(body);
    if (!text)
        return prv_result_refused("internal_error");
    char path[256];
    snprintf(path, sizeof path, "/v71/payments/%s/%s", ref, what);
    httpc_response_t rs;
    bool got = call(cfg, path, key, text, strlen(text), &rs, &r);
    free(text);
    if (!got)
        return r;
    json_t *j = prv_json_body(&rs);
    const char *status = prv_json_s(j, "status");
    const char *psp = prv_json_s(j, "pspReference");
    if ((rs.http_status == 200 || rs.http_status == 201) && status && !strcmp(status, "received") &&
        prv_ref_ok(psp)) {
        prv_result_set(&r, want, false, "", status);
        prv_copy(r.provider_ref, sizeof r.provider_ref, psp);
        r.amount = amount;
    } else if (rs.http_status == 200 || rs.http_status == 201) {
        prv_result_set(&r, PRV_UNKNOWN, false, "malformed_response", NULL);
    } else if (!prv_http_generic(rs.http_status, &r)) {
        if (rs.http_status >= 400 && rs.http_status < 500)
            error_result(&rs, adyen_modify_errors, &r);
        else
            prv_result_set(&r, PRV_UNKNOWN, false, "unexpected_status", NULL);
    }
    json_decref(j);
    httpc_response_free(&rs);
    return r;
}

static prv_result_t adyen_capture(const prv_config_t *cfg, const char *ref, int64_t amount,
                                  const char *currency, const char *key)
{
    return modify(cfg, ref, "captures", amount, currency, key, PRV_CAPTURED);
}

static prv_result_t adyen_cancel(const prv_config_t *cfg, const char *ref, const char *key)
{
    return modify(cfg, ref, "cancels", 0, NULL, key, PRV_VOIDED);
}

static prv_result_t adyen_refund(const prv_config_t *cfg, const char *ref, int64_t amount,
                                 const char *currency, const char *key)
{
    return modify(cfg, ref, "refunds", amount, currency, key, PRV_REFUNDED);
}

const prv_adapter_t prv_adapter_adyen = {
    .type = "adyen",
    .creds = adyen_creds,
    .authorize = adyen_authorize,
    .capture = adyen_capture,
    .cancel = adyen_cancel,
    .refund = adyen_refund,
    .lookup = adyen_lookup,
    /* test: checkout-test.adyen.com; live: {prefix}-checkout-live.adyenpayments.com */
    .api_domains = "adyen.com adyenpayments.com",
    .replay_valid_s = 30 * 86400, /* keys last at least 31 days */
};
