/* Stripe adapter: PaymentIntents over form-encoded HTTPS with a Bearer
 * secret key and Idempotency-Key.
 *
 * An authorization is two calls: create the PaymentIntent without a card
 * (idempotency key "<key>.create"; nothing can be charged, so any failure
 * here is "unavailable"), then confirm it with the card (key "<key>"). The
 * point of the split is the lookup: Stripe replays a saved 500 for a
 * replayed idempotency key and its search API is eventually consistent, so
 * neither can settle an unknown outcome. Knowing the PaymentIntent id before
 * the card is sent lets a lookup GET it (strongly consistent) and, when it
 * is still unconfirmed, fence it with a cancel so that a confirmation still
 * in flight can never succeed afterwards: only then is "not charged"
 * authoritative. Without the id (a crash before it was stored) the lookup
 * replays the create with the same key and parameters, which returns the
 * same PaymentIntent. */
#include "providers/internal.h"
#include <stdio.h>
#include <string.h>

#define STRIPE_VERSION "2024-06-20"

static const prv_cred_field_t stripe_creds[] = {
    {.name = "secret_key", .required = true, .min = 8, .max = 255, .prefixes = "sk_ rk_"},
    {NULL},
};

/* Card errors: decline_code (or code when Stripe gives none) -> outcome. */
static const prv_code_t stripe_declines[] = {
    {"generic_decline", PRV_DECLINED, false, "card_declined"},
    {"card_declined", PRV_DECLINED, false, "card_declined"},
    {"insufficient_funds", PRV_DECLINED, false, "insufficient_funds"},
    {"card_velocity_exceeded", PRV_DECLINED, false, "card_declined"},
    {"do_not_honor", PRV_DECLINED, false, "do_not_honor"},
    {"incorrect_cvc", PRV_DECLINED, false, "incorrect_cvc"},
    {"invalid_cvc", PRV_DECLINED, false, "incorrect_cvc"},
    {"authentication_required", PRV_DECLINED, false, "authentication_required"},
    {"stolen_card", PRV_DECLINED, true, "stolen_card"},
    {"lost_card", PRV_DECLINED, true, "lost_card"},
    {"pickup_card", PRV_DECLINED, true, "card_declined"},
    {"fraudulent", PRV_DECLINED, true, "card_declined"},
    {"expired_card", PRV_DECLINED, true, "expired_card"},
    {"incorrect_number", PRV_DECLINED, true, "invalid_number"},
    {"invalid_number", PRV_DECLINED, true, "invalid_number"},
    {"invalid_expiry_month", PRV_DECLINED, true, "invalid_expiry"},
    {"invalid_expiry_year", PRV_DECLINED, true, "invalid_expiry"},
    {"processing_error", PRV_UNAVAILABLE, false, "processing_error"},
    {"try_again_later", PRV_UNAVAILABLE, false, "processing_error"},
    {"issuer_not_available", PRV_UNAVAILABLE, false, "processing_error"},
    {"reenter_transaction", PRV_UNAVAILABLE, false, "processing_error"},
    {NULL, PRV_DECLINED, false, "card_declined"},
};

/* Non-card 4xx on a confirmation. A request refused outright charged
 * nothing; one that clashes with an earlier request under our key might
 * have charged, and goes to a lookup. */
static const prv_code_t stripe_confirm_errors[] = {
    {"payment_intent_unexpected_state", PRV_UNKNOWN, false, "invalid_state"},
    {"idempotency_key_in_use", PRV_UNKNOWN, false, "idempotency_conflict"},
    {"idempotency_error", PRV_UNKNOWN, false, "idempotency_conflict"},
    {"resource_missing", PRV_UNKNOWN, false, "not_found"},
    {NULL, PRV_UNAVAILABLE, false, "invalid_request"},
};

/* 4xx on captures, cancels and refunds: refused, nothing happened. */
static const prv_code_t stripe_modify_errors[] = {
    {"payment_intent_unexpected_state", PRV_DECLINED, true, "invalid_state"},
    {"charge_already_captured", PRV_DECLINED, true, "invalid_state"},
    {"charge_already_refunded", PRV_DECLINED, true, "invalid_state"},
    {"amount_too_large", PRV_DECLINED, true, "amount_too_large"},
    {"resource_missing", PRV_DECLINED, true, "not_found"},
    {"idempotency_key_in_use", PRV_UNKNOWN, false, "idempotency_conflict"},
    {"idempotency_error", PRV_UNKNOWN, false, "idempotency_conflict"},
    {NULL, PRV_DECLINED, true, "invalid_request"},
};

/* ---------------------------------------------------------------- calls */

/* One POST (body != NULL) or GET to Stripe. false: r holds the transport
 * outcome. */
static bool call(const prv_config_t *cfg, const char *method, const char *path,
                 const char *idem_key, const prv_buf_t *body, httpc_response_t *rs, prv_result_t *r)
{
    prv_buf_t auth;
    if (!prv_buf_init(&auth, 320)) {
        prv_result_set(r, PRV_UNAVAILABLE, false, "internal_error", NULL);
        return false;
    }
    prv_buf_printf(&auth, "Authorization: Bearer %s", prv_creds_get(cfg->creds, "secret_key"));
    char idem[PRV_KEY_MAX + 32];
    snprintf(idem, sizeof idem, "Idempotency-Key: %s", idem_key ? idem_key : "");
    prv_http_t h = {
        .method = method,
        .path = path,
        .auth_header = auth.p,
        .idem_header = idem_key ? idem : NULL,
        .extra_header = "Stripe-Version: " STRIPE_VERSION,
        .content_type = body ? "application/x-www-form-urlencoded" : NULL,
        .body = body ? body->p : NULL,
        .body_len = body ? body->len : 0,
    };
    bool ok = !auth.failed && !(body && body->failed) && prv_http_call(cfg, &h, rs, r);
    if (auth.failed || (body && body->failed))
        prv_result_set(r, PRV_UNAVAILABLE, false, "internal_error", NULL);
    prv_buf_free(&auth);
    return ok;
}

/* The error object of a 4xx: type, code and decline_code. */
static void error_codes(const json_t *body, const char **type, const char **code,
                        const char **decline)
{
    const json_t *e = json_object_get(body, "error");
    *type = prv_json_s(e, "type");
    *code = prv_json_s(e, "code");
    *decline = prv_json_s(e, "decline_code");
}

/* A 4xx answer on any call: card errors by decline code, the rest by
 * `table`. An unparseable 4xx leaves the outcome unknown. */
static void error_result(const json_t *body, const prv_code_t *table, prv_result_t *r)
{
    const char *type, *code, *decline;
    error_codes(body, &type, &code, &decline);
    if (!type) {
        prv_result_set(r, PRV_UNKNOWN, false, "malformed_response", NULL);
        return;
    }
    if (!strcmp(type, "card_error")) {
        prv_result_code(r, stripe_declines, decline ? decline : code);
        return;
    }
    if (!strcmp(type, "idempotency_error"))
        code = "idempotency_error";
    prv_result_code(r, table, code ? code : type);
}

/* A PaymentIntent -> outcome. One still waiting for a confirmation without
 * an earlier failure reads unknown/unconfirmed for the caller to decide. */
static void intent_result(const json_t *pi, prv_result_t *r)
{
    const char *status = prv_json_s(pi, "status");
    const char *id = prv_json_s(pi, "id");
    int64_t amt = 0;
    if (!status || !id || !prv_ref_ok(id)) {
        prv_result_set(r, PRV_UNKNOWN, false, "malformed_response", NULL);
        return;
    }
    prv_copy(r->provider_ref, sizeof r->provider_ref, id);
    if (!strcmp(status, "requires_capture")) {
        prv_result_set(r, PRV_AUTHORIZED, false, "", status);
        if (prv_json_i64(pi, "amount_capturable", &amt))
            r->amount = amt;
    } else if (!strcmp(status, "succeeded")) {
        prv_result_set(r, PRV_CAPTURED, false, "", status);
        if (prv_json_i64(pi, "amount_received", &amt))
            r->amount = amt;
    } else if (!strcmp(status, "requires_action")) {
        prv_result_set(r, PRV_DECLINED, false, "authentication_required", status);
    } else if (!strcmp(status, "canceled")) {
        prv_result_set(r, PRV_UNAVAILABLE, false, "not_found", status);
    } else if (!strcmp(status, "requires_payment_method") ||
               !strcmp(status, "requires_confirmation")) {
        const json_t *lpe = json_object_get(pi, "last_payment_error");
        const char *dc = prv_json_s(lpe, "decline_code"), *c = prv_json_s(lpe, "code");
        if (json_is_object(lpe) && (dc || c))
            prv_result_code(r, stripe_declines, dc ? dc : c);
        else
            prv_result_set(r, PRV_UNKNOWN, false, "unconfirmed", status);
    } else {
        prv_result_set(r, PRV_UNKNOWN, false, "processing", status);
    }
}

/* Parses a 200 PaymentIntent reply into r; false (r unknown) if it is not one. */
static bool intent_reply(const httpc_response_t *rs, prv_result_t *r)
{
    json_t *j = prv_json_body(rs);
    if (!j) {
        prv_result_set(r, PRV_UNKNOWN, false, "malformed_response", NULL);
        return false;
    }
    intent_result(j, r);
    json_decref(j);
    return true;
}

/* ---------------------------------------------------------- authorize */

static void create_body(prv_buf_t *b, const prv_payment_t *pay, const char *key)
{
    char cur[4];
    prv_lower3(pay->currency, cur);
    prv_buf_form_i64(b, "amount", pay->amount);
    prv_buf_form(b, "currency", cur);
    prv_buf_form(b, "capture_method", pay->capture ? "automatic" : "manual");
    prv_buf_form(b, "payment_method_types[0]", "card");
    prv_buf_form(b, "metadata[portcullis_attempt]", key);
    if (pay->description && *pay->description)
        prv_buf_form(b, "description", pay->description);
}

/* Creates (or, replayed with the same key and parameters, finds) the
 * PaymentIntent of an attempt. Any failure is "unavailable": no card went. */
static bool create_intent(const prv_config_t *cfg, const prv_payment_t *pay, const char *key,
                          char id[128], prv_result_t *r)
{
    prv_buf_t b;
    char ckey[PRV_KEY_MAX + 8];
    snprintf(ckey, sizeof ckey, "%s.create", key);
    if (!prv_buf_init(&b, 512)) {
        prv_result_set(r, PRV_UNAVAILABLE, false, "internal_error", NULL);
        return false;
    }
    create_body(&b, pay, key);
    httpc_response_t rs;
    bool sent = call(cfg, "POST", "/v1/payment_intents", ckey, &b, &rs, r);
    prv_buf_free(&b);
    if (!sent) {
        r->outcome = PRV_UNAVAILABLE;
        return false;
    }
    json_t *j = prv_json_body(&rs);
    const char *pid = prv_json_s(j, "id");
    bool ok = rs.http_status == 200 && prv_ref_ok(pid);
    if (ok) {
        prv_copy(id, 128, pid);
    } else {
        if (!prv_http_generic(rs.http_status, r))
            prv_result_set(r, PRV_UNAVAILABLE, false, "invalid_request", NULL);
        r->outcome = PRV_UNAVAILABLE; /* no card went with it: nothing charged */
        const char *t, *c, *d;
        error_codes(j, &t, &c, &d);
        prv_code_copy(r->provider_code, sizeof r->provider_code, c ? c : t);
        if (t && !strcmp(t, "idempotency_error")) {
            /* our key was used before with other parameters: an earlier
             * confirmation under it may have charged */
            prv_result_set(r, PRV_UNKNOWN, false, "idempotency_conflict", t);
        }
    }
    json_decref(j);
    httpc_response_free(&rs);
    return ok;
}

static prv_result_t stripe_authorize(const prv_config_t *cfg, const prv_payment_t *pay,
                                     const prv_card_t *card, const char *key)
{
    prv_result_t r = {0};
    char id[128];
    if (!create_intent(cfg, pay, key, id, &r))
        return r;
    prv_copy(r.provider_ref, sizeof r.provider_ref, id);

    prv_buf_t b;
    if (!prv_buf_init(&b, 1024)) {
        prv_result_set(&r, PRV_UNAVAILABLE, false, "internal_error", NULL);
        return r;
    }
    prv_buf_form(&b, "payment_method_data[type]", "card");
    prv_buf_form(&b, "payment_method_data[card][number]", card->pan);
    prv_buf_form_i64(&b, "payment_method_data[card][exp_month]", card->exp_month);
    prv_buf_form_i64(&b, "payment_method_data[card][exp_year]", card->exp_year);
    if (card->has_cvc)
        prv_buf_form(&b, "payment_method_data[card][cvc]", card->cvc);
    if (card->name[0])
        prv_buf_form(&b, "payment_method_data[billing_details][name]", card->name);
    char path[192];
    snprintf(path, sizeof path, "/v1/payment_intents/%s/confirm", id);
    httpc_response_t rs;
    bool got = call(cfg, "POST", path, key, &b, &rs, &r);
    prv_buf_free(&b);
    if (!got)
        return r;
    if (rs.http_status == 200) {
        intent_reply(&rs, &r);
        if (r.outcome == PRV_UNAVAILABLE) /* canceled under us: not charged, but odd */
            r.outcome = PRV_UNKNOWN;
    } else if (!prv_http_generic(rs.http_status, &r)) {
        json_t *j = prv_json_body(&rs);
        error_result(j, stripe_confirm_errors, &r);
        json_decref(j);
    }
    prv_copy(r.provider_ref, sizeof r.provider_ref, id);
    httpc_response_free(&rs);
    return r;
}

/* ------------------------------------------------------------- lookup */

/* Statuses in which the PaymentIntent could still be confirmed. */
static bool confirmable(const char *status)
{
    return !strcmp(status, "requires_payment_method") || !strcmp(status, "requires_confirmation") ||
           !strcmp(status, "requires_action");
}

static bool get_intent(const prv_config_t *cfg, const char *id, prv_result_t *r, bool *open)
{
    *open = false;
    char path[192];
    snprintf(path, sizeof path, "/v1/payment_intents/%s", id);
    httpc_response_t rs;
    if (!call(cfg, "GET", path, NULL, NULL, &rs, r)) {
        r->outcome = PRV_UNKNOWN;
        return false;
    }
    bool ok = false;
    json_t *j = rs.http_status == 200 ? prv_json_body(&rs) : NULL;
    if (j) {
        intent_result(j, r);
        const char *st = prv_json_s(j, "status");
        *open = st && confirmable(st);
        ok = r->provider_ref[0] != '\0';
        json_decref(j);
    } else if (rs.http_status == 200)
        prv_result_set(r, PRV_UNKNOWN, false, "malformed_response", NULL);
    else if (!prv_http_generic(rs.http_status, r))
        prv_result_set(r, PRV_UNKNOWN, false, "lookup_failed", NULL);
    r->outcome = ok ? r->outcome : PRV_UNKNOWN;
    httpc_response_free(&rs);
    return ok;
}

/* Cancels an unconfirmed PaymentIntent so nothing can confirm it later.
 * Returns the settled result: canceled (not charged, or the decline it
 * recorded), or whatever state won the race with the cancel. */
static void fence(const prv_config_t *cfg, const char *id, prv_result_t *r)
{
    char path[192];
    snprintf(path, sizeof path, "/v1/payment_intents/%s/cancel", id);
    prv_buf_t b;
    if (!prv_buf_init(&b, 64)) {
        prv_result_set(r, PRV_UNKNOWN, false, "lookup_failed", NULL);
        return;
    }
    prv_buf_form(&b, "cancellation_reason", "abandoned");
    httpc_response_t rs;
    bool got = call(cfg, "POST", path, NULL, &b, &rs, r);
    prv_buf_free(&b);
    if (!got) {
        r->outcome = PRV_UNKNOWN;
        return;
    }
    json_t *j = prv_json_body(&rs);
    if (rs.http_status == 200 && j && prv_json_s(j, "status") &&
        !strcmp(prv_json_s(j, "status"), "canceled")) {
        const json_t *lpe = json_object_get(j, "last_payment_error");
        const char *dc = prv_json_s(lpe, "decline_code"), *c = prv_json_s(lpe, "code");
        if (dc || c)
            prv_result_code(r, stripe_declines, dc ? dc : c);
        else
            prv_result_set(r, PRV_UNAVAILABLE, false, "not_found", "canceled");
    } else if (rs.http_status == 400) {
        bool open;
        get_intent(cfg, id, r, &open); /* it moved on (confirmed) before the cancel */
        if (r->outcome != PRV_AUTHORIZED && r->outcome != PRV_CAPTURED &&
            r->outcome != PRV_DECLINED)
            r->outcome = PRV_UNKNOWN;
    } else {
        prv_result_set(r, PRV_UNKNOWN, false, "lookup_failed", NULL);
    }
    json_decref(j);
    httpc_response_free(&rs);
}

static prv_result_t stripe_lookup(const prv_config_t *cfg, const prv_payment_t *pay,
                                  const char *key, const char *ref, const prv_card_t *card)
{
    (void)card;
    prv_result_t r = {0};
    char id[128];
    if (ref && prv_ref_ok(ref)) {
        prv_copy(id, sizeof id, ref);
    } else if (!create_intent(cfg, pay, key, id, &r)) {
        r.outcome = PRV_UNKNOWN;
        prv_copy(r.reason, sizeof r.reason, "lookup_failed");
        return r;
    }
    bool open;
    if (!get_intent(cfg, id, &r, &open))
        return r;
    if (open)
        fence(cfg, id, &r);
    prv_copy(r.provider_ref, sizeof r.provider_ref, id);
    return r;
}

/* ------------------------------------------------------- modifications */

static prv_result_t modify(const prv_config_t *cfg, const char *path, const char *key,
                           prv_buf_t *body, prv_outcome_t want)
{
    prv_result_t r = {0};
    httpc_response_t rs;
    bool got = call(cfg, "POST", path, key, body, &rs, &r);
    prv_buf_free(body);
    if (!got)
        return r;
    json_t *j = prv_json_body(&rs);
    if (rs.http_status == 200 && j) {
        const char *status = prv_json_s(j, "status");
        const char *id = prv_json_s(j, "id");
        int64_t amt = 0;
        prv_copy(r.provider_ref, sizeof r.provider_ref, id);
        bool done = status && ((want == PRV_CAPTURED && !strcmp(status, "succeeded")) ||
                               (want == PRV_VOIDED && !strcmp(status, "canceled")) ||
                               (want == PRV_REFUNDED &&
                                (!strcmp(status, "succeeded") || !strcmp(status, "pending"))));
        if (done) {
            prv_result_set(&r, want, false, "", status);
            if (prv_json_i64(j, want == PRV_CAPTURED ? "amount_received" : "amount", &amt))
                r.amount = amt;
        } else if (status && want == PRV_REFUNDED && !strcmp(status, "failed")) {
            prv_result_set(&r, PRV_DECLINED, true, "refund_failed", status);
        } else {
            prv_result_set(&r, PRV_UNKNOWN, false, "malformed_response", status);
        }
    } else if (rs.http_status == 200) {
        prv_result_set(&r, PRV_UNKNOWN, false, "malformed_response", NULL);
    } else if (!prv_http_generic(rs.http_status, &r)) {
        error_result(j, stripe_modify_errors, &r);
    }
    json_decref(j);
    httpc_response_free(&rs);
    return r;
}

static prv_result_t stripe_capture(const prv_config_t *cfg, const char *ref, int64_t amount,
                                   const char *currency, const char *key)
{
    (void)currency;
    prv_buf_t b;
    char path[192];
    snprintf(path, sizeof path, "/v1/payment_intents/%s/capture", ref);
    if (!prv_buf_init(&b, 64))
        return prv_result_refused("internal_error");
    prv_buf_form_i64(&b, "amount_to_capture", amount);
    return modify(cfg, path, key, &b, PRV_CAPTURED);
}

static prv_result_t stripe_cancel(const prv_config_t *cfg, const char *ref, const char *key)
{
    prv_buf_t b;
    char path[192];
    snprintf(path, sizeof path, "/v1/payment_intents/%s/cancel", ref);
    if (!prv_buf_init(&b, 64))
        return prv_result_refused("internal_error");
    prv_buf_form(&b, "cancellation_reason", "requested_by_customer");
    return modify(cfg, path, key, &b, PRV_VOIDED);
}

static prv_result_t stripe_refund(const prv_config_t *cfg, const char *ref, int64_t amount,
                                  const char *currency, const char *key)
{
    (void)currency;
    prv_buf_t b;
    if (!prv_buf_init(&b, 128))
        return prv_result_refused("internal_error");
    prv_buf_form(&b, "payment_intent", ref);
    prv_buf_form_i64(&b, "amount", amount);
    return modify(cfg, "/v1/refunds", key, &b, PRV_REFUNDED);
}

const prv_adapter_t prv_adapter_stripe = {
    .type = "stripe",
    .creds = stripe_creds,
    .authorize = stripe_authorize,
    .capture = stripe_capture,
    .cancel = stripe_cancel,
    .refund = stripe_refund,
    .lookup = stripe_lookup,
    .api_domains = "api.stripe.com",
    .replay_valid_s = 23 * 3600, /* keys are pruned after 24 hours */
    .replay_only_without_ref = true,
};
