/* sandbox-stripe: a stand-in for Stripe's PaymentIntents API (form-encoded,
 * Bearer secret key, Idempotency-Key with Stripe's semantics: same key and
 * parameters replay the saved answer, other parameters are a 400
 * idempotency_error, validation failures are not saved). Faults hit the
 * calls that move money (confirm, capture, cancel of an authorization,
 * refund); creating or cancelling an unconfirmed PaymentIntent and reading
 * one stay truthful, as the lookup of a real partial outage would. */
#include "sandbox/sandbox.h"
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct pi {
    char id[40];
    int64_t amount, capturable, received;
    char currency[4]; /* lower case, as Stripe */
    bool manual, confirmed;
    char attempt[128]; /* metadata[portcullis_attempt] */
    char status[32];
    char err_code[32], err_decline[32], err_message[96];
    char charge[40];
    int64_t created;
    struct pi *next;
} pi_t;

#define SLOTS 4096
static pi_t *table[SLOTS];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static const char *api_key; /* --api-key: the only key accepted; else any sk_test_/rk_test_ */

static size_t slot(const char *id)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 1099511628211ULL;
    return (size_t)(h % SLOTS);
}

/* Caller holds mu. */
static pi_t *pi_find(const char *id)
{
    for (pi_t *p = id ? table[slot(id)] : NULL; p; p = p->next)
        if (!strcmp(p->id, id))
            return p;
    return NULL;
}

/* ------------------------------------------------------------- replies */

typedef struct {
    unsigned status;
    json_t *body;
    bool store;        /* saved under the idempotency key */
    sbx_fault_t fault; /* to inject (before or after processing) */
} out_t;

static out_t err(unsigned status, const char *type, const char *code, const char *msg,
                 const char *param)
{
    json_t *e = json_pack("{s:s, s:s}", "type", type, "message", msg);
    if (code)
        json_object_set_new(e, "code", json_string(code));
    if (param)
        json_object_set_new(e, "param", json_string(param));
    return (out_t){.status = status, .body = json_pack("{s:o}", "error", e)};
}

static json_t *pi_json(const pi_t *p)
{
    json_t *lpe = json_null();
    if (p->err_code[0]) {
        lpe = json_pack("{s:s, s:s, s:s}", "type", "card_error", "code", p->err_code, "message",
                        p->err_message);
        if (p->err_decline[0])
            json_object_set_new(lpe, "decline_code", json_string(p->err_decline));
    }
    return json_pack("{s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:s, s:o, s:{s:s}, s:o, s:[s], s:b, "
                     "s:I}",
                     "id", p->id, "object", "payment_intent", "amount", (json_int_t)p->amount,
                     "amount_capturable", (json_int_t)p->capturable, "amount_received",
                     (json_int_t)p->received, "currency", p->currency, "status", p->status,
                     "capture_method", p->manual ? "manual" : "automatic", "latest_charge",
                     p->charge[0] ? json_string(p->charge) : json_null(), "metadata",
                     "portcullis_attempt", p->attempt, "last_payment_error", lpe,
                     "payment_method_types", "card", "livemode", 0, "created",
                     (json_int_t)p->created);
}

static out_t ok_pi(const pi_t *p)
{
    return (out_t){.status = 200, .body = pi_json(p), .store = true};
}

/* ------------------------------------------------------------- helpers */

static bool parse_i64(const char *s, int64_t *out)
{
    if (!s || !*s)
        return false;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*end)
        return false;
    *out = v;
    return true;
}

static void ledger_status(sbx_charge_t *c, const char *status)
{
    snprintf(c->status, sizeof c->status, "%s", status);
}

/* The Stripe card error of a scenario. */
static void scenario_error(sbx_card_t s, const char **code, const char **decline, const char **msg)
{
    *decline = NULL;
    switch (s) {
    case SBX_CARD_DECLINED:
        *code = "card_declined", *decline = "generic_decline", *msg = "Your card was declined.";
        break;
    case SBX_CARD_INSUFFICIENT_FUNDS:
        *code = "card_declined", *decline = "insufficient_funds",
        *msg = "Your card has insufficient funds.";
        break;
    case SBX_CARD_STOLEN:
        *code = "card_declined", *decline = "stolen_card", *msg = "Your card was declined.";
        break;
    case SBX_CARD_EXPIRED:
        *code = "expired_card", *decline = "expired_card", *msg = "Your card has expired.";
        break;
    case SBX_CARD_INCORRECT_CVC:
        *code = "incorrect_cvc", *decline = "incorrect_cvc",
        *msg = "Your card's security code is incorrect.";
        break;
    case SBX_CARD_PROCESSING_ERROR:
        *code = "processing_error", *decline = "processing_error",
        *msg = "An error occurred while processing your card. Try again in a little bit.";
        break;
    default:
        *code = "incorrect_number", *msg = "Your card number is incorrect.";
        break;
    }
}

/* ----------------------------------------------------------- confirm */

/* Charges the card of a PaymentIntent; the fault is drawn here because this
 * is where money moves. */
static out_t confirm(sbx_req_t *rq, const char *id, const char *key)
{
    char *number = sbx_form_get(rq, "payment_method_data[card][number]");
    char *em = sbx_form_get(rq, "payment_method_data[card][exp_month]");
    char *ey = sbx_form_get(rq, "payment_method_data[card][exp_year]");
    int64_t month = 0, year = 0;
    out_t o = {0};
    if (!number || !parse_i64(em, &month) || !parse_i64(ey, &year) || month < 1 || month > 12) {
        o = err(400, "invalid_request_error", "parameter_missing",
                "Missing or invalid payment_method_data[card] fields.",
                "payment_method_data[card][number]");
        goto done;
    }
    pthread_mutex_lock(&mu);
    pi_t *p = pi_find(id);
    bool open = p && !p->confirmed && !strcmp(p->status, "requires_payment_method");
    pthread_mutex_unlock(&mu);
    if (!open) {
        o = p ? err(400, "invalid_request_error", "payment_intent_unexpected_state",
                    "This PaymentIntent's status does not allow a confirmation.", NULL)
              : err(404, "invalid_request_error", "resource_missing", "No such payment_intent.",
                    "intent");
        goto done;
    }
    o.fault = sbx_fault_draw();
    if (o.fault.mode != SBX_NONE && !o.fault.after_processing)
        goto done;
    sbx_card_t sc = sbx_test_card(number);
    sbx_charge_t c = {0};
    pthread_mutex_lock(&mu);
    if (p->confirmed || strcmp(p->status, "requires_payment_method") != 0) {
        pthread_mutex_unlock(&mu);
        o = err(400, "invalid_request_error", "payment_intent_unexpected_state",
                "This PaymentIntent's status does not allow a confirmation.", NULL);
        o.fault.mode = SBX_NONE;
        goto done;
    }
    snprintf(c.id, sizeof c.id, "%s", p->id);
    snprintf(c.idempotency_key, sizeof c.idempotency_key, "%s", key ? key : p->id);
    snprintf(c.reference, sizeof c.reference, "%s", p->attempt);
    c.amount = p->amount;
    for (int i = 0; i < 3; i++)
        c.currency[i] = (char)(p->currency[i] - 'a' + 'A');
    snprintf(c.last4, sizeof c.last4, "%s", number + (strlen(number) > 4 ? strlen(number) - 4 : 0));
    p->confirmed = true;
    if (sc == SBX_CARD_OK) {
        sbx_id(p->charge, sizeof p->charge, "ch_");
        if (p->manual) {
            snprintf(p->status, sizeof p->status, "requires_capture");
            p->capturable = p->amount;
            ledger_status(&c, "authorized");
        } else {
            snprintf(p->status, sizeof p->status, "succeeded");
            p->received = c.captured = p->amount;
            ledger_status(&c, "captured");
        }
        sbx_fault_t f = o.fault;
        o = ok_pi(p);
        o.fault = f; /* after processing: the answer is lost on the way back */
    } else {
        const char *code, *decline, *msg;
        scenario_error(sc, &code, &decline, &msg);
        snprintf(p->err_code, sizeof p->err_code, "%s", code);
        snprintf(p->err_decline, sizeof p->err_decline, "%s", decline ? decline : "");
        snprintf(p->err_message, sizeof p->err_message, "%s", msg);
        ledger_status(&c, "declined");
        snprintf(c.decline_code, sizeof c.decline_code, "%s", decline ? decline : code);
        json_t *e = json_pack("{s:s, s:s, s:s, s:o}", "type", "card_error", "code", code, "message",
                              msg, "payment_intent", pi_json(p));
        if (decline)
            json_object_set_new(e, "decline_code", json_string(decline));
        o = (out_t){
            .status = 402, .body = json_pack("{s:o}", "error", e), .store = true, .fault = o.fault};
    }
    pthread_mutex_unlock(&mu);
    if (!sbx_ledger_add(&c))
        log_warn("ledger refused a second charge for one idempotency key");
done:
    free(number);
    free(em);
    free(ey);
    return o;
}

/* -------------------------------------------------------- operations */

static out_t create(sbx_req_t *rq, const char *key)
{
    char *amount = sbx_form_get(rq, "amount"), *cur = sbx_form_get(rq, "currency");
    char *cm = sbx_form_get(rq, "capture_method"), *conf = sbx_form_get(rq, "confirm");
    char *att = sbx_form_get(rq, "metadata[portcullis_attempt]");
    int64_t amt = 0;
    out_t o;
    if (!parse_i64(amount, &amt) || amt < 1 || amt > 99999999) {
        o = err(400, "invalid_request_error", "parameter_invalid_integer",
                "amount must be a positive integer in the smallest currency unit.", "amount");
    } else if (!cur || strlen(cur) != 3) {
        o = err(400, "invalid_request_error", "parameter_missing", "Missing currency.", "currency");
    } else if (cm && strcmp(cm, "manual") && strcmp(cm, "automatic") &&
               strcmp(cm, "automatic_async")) {
        o = err(400, "invalid_request_error", "parameter_invalid_string", "Invalid capture_method.",
                "capture_method");
    } else {
        pi_t *p = calloc(1, sizeof *p);
        sbx_id(p->id, sizeof p->id, "pi_");
        p->amount = amt;
        for (int i = 0; i < 3; i++)
            p->currency[i] = (char)(cur[i] >= 'A' && cur[i] <= 'Z' ? cur[i] - 'A' + 'a' : cur[i]);
        p->manual = cm && !strcmp(cm, "manual");
        snprintf(p->attempt, sizeof p->attempt, "%s", att ? att : "");
        snprintf(p->status, sizeof p->status, "requires_payment_method");
        p->created = time(NULL);
        pthread_mutex_lock(&mu);
        size_t s = slot(p->id);
        p->next = table[s];
        table[s] = p;
        o = ok_pi(p);
        pthread_mutex_unlock(&mu);
        if (conf && !strcmp(conf, "true")) {
            json_decref(o.body);
            o = confirm(rq, p->id, key);
        }
    }
    free(amount);
    free(cur);
    free(cm);
    free(conf);
    free(att);
    return o;
}

static out_t capture(sbx_req_t *rq, const char *id)
{
    char *a = sbx_form_get(rq, "amount_to_capture");
    int64_t amt = -1;
    bool has = a != NULL;
    bool valid = !has || parse_i64(a, &amt);
    free(a);
    pthread_mutex_lock(&mu);
    pi_t *p = pi_find(id);
    bool open = p && !strcmp(p->status, "requires_capture");
    int64_t capturable = p ? p->capturable : 0;
    pthread_mutex_unlock(&mu);
    if (!p)
        return err(404, "invalid_request_error", "resource_missing", "No such payment_intent.",
                   "intent");
    if (!open)
        return err(400, "invalid_request_error", "payment_intent_unexpected_state",
                   "This PaymentIntent could not be captured because it has a status other than "
                   "requires_capture.",
                   NULL);
    if (!has)
        amt = capturable;
    if (!valid || amt < 1 || amt > capturable)
        return err(400, "invalid_request_error", "amount_too_large",
                   "amount_to_capture must not exceed amount_capturable.", "amount_to_capture");
    out_t o = {.fault = sbx_fault_draw()};
    if (o.fault.mode != SBX_NONE && !o.fault.after_processing)
        return o;
    sbx_charge_t c;
    pthread_mutex_lock(&mu);
    if (strcmp(p->status, "requires_capture") != 0) {
        pthread_mutex_unlock(&mu);
        return err(400, "invalid_request_error", "payment_intent_unexpected_state",
                   "This PaymentIntent's status does not allow a capture.", NULL);
    }
    snprintf(p->status, sizeof p->status, "succeeded");
    p->received = amt;
    p->capturable = 0;
    if (sbx_ledger_get(p->id, &c)) {
        c.captured = amt;
        ledger_status(&c, "captured");
        PC_IGNORE(sbx_ledger_update(&c));
    }
    out_t r = ok_pi(p);
    pthread_mutex_unlock(&mu);
    r.fault = o.fault;
    return r;
}

static out_t cancel(sbx_req_t *rq, const char *id)
{
    (void)rq;
    pthread_mutex_lock(&mu);
    pi_t *p = pi_find(id);
    bool held = p && !strcmp(p->status, "requires_capture");
    bool open =
        p && (held || !strcmp(p->status, "requires_payment_method") ||
              !strcmp(p->status, "requires_confirmation") || !strcmp(p->status, "requires_action"));
    pthread_mutex_unlock(&mu);
    if (!p)
        return err(404, "invalid_request_error", "resource_missing", "No such payment_intent.",
                   "intent");
    if (!open)
        return err(400, "invalid_request_error", "payment_intent_unexpected_state",
                   "You cannot cancel this PaymentIntent because it has a status of succeeded or "
                   "canceled.",
                   NULL);
    out_t o = {0};
    if (held) { /* releasing held funds moves money; an unconfirmed intent does not */
        o.fault = sbx_fault_draw();
        if (o.fault.mode != SBX_NONE && !o.fault.after_processing)
            return o;
    }
    pthread_mutex_lock(&mu);
    bool still = !strcmp(p->status, "requires_capture") ||
                 !strcmp(p->status, "requires_payment_method") ||
                 !strcmp(p->status, "requires_confirmation");
    if (!still) {
        pthread_mutex_unlock(&mu);
        return err(400, "invalid_request_error", "payment_intent_unexpected_state",
                   "This PaymentIntent's status does not allow a cancellation.", NULL);
    }
    sbx_charge_t c;
    if (!strcmp(p->status, "requires_capture") && sbx_ledger_get(p->id, &c)) {
        ledger_status(&c, "voided");
        PC_IGNORE(sbx_ledger_update(&c));
    }
    snprintf(p->status, sizeof p->status, "canceled");
    p->capturable = 0;
    out_t r = ok_pi(p);
    pthread_mutex_unlock(&mu);
    r.fault = o.fault;
    return r;
}

static out_t refund(sbx_req_t *rq)
{
    char *pid = sbx_form_get(rq, "payment_intent"), *a = sbx_form_get(rq, "amount");
    int64_t amt = -1;
    bool has = a != NULL, valid = !has || parse_i64(a, &amt);
    free(a);
    sbx_charge_t c;
    pthread_mutex_lock(&mu);
    pi_t *p = pi_find(pid);
    bool ok = p && !strcmp(p->status, "succeeded") && sbx_ledger_get(p->id, &c);
    pthread_mutex_unlock(&mu);
    free(pid);
    if (!p)
        return err(404, "invalid_request_error", "resource_missing", "No such payment_intent.",
                   "payment_intent");
    if (!ok)
        return err(400, "invalid_request_error", "charge_not_refundable",
                   "This PaymentIntent has no captured charge to refund.", "payment_intent");
    int64_t left = c.captured - c.refunded;
    if (!has)
        amt = left;
    if (!valid || amt < 1 || amt > left)
        return err(400, "invalid_request_error", "amount_too_large",
                   "Refund amount is greater than the unrefunded amount on the charge.", "amount");
    out_t o = {.fault = sbx_fault_draw()};
    if (o.fault.mode != SBX_NONE && !o.fault.after_processing)
        return o;
    pthread_mutex_lock(&mu);
    if (!sbx_ledger_get(p->id, &c) || c.captured - c.refunded < amt) {
        pthread_mutex_unlock(&mu);
        return err(400, "invalid_request_error", "amount_too_large",
                   "Refund amount is greater than the unrefunded amount on the charge.", "amount");
    }
    c.refunded += amt;
    if (c.refunded == c.captured)
        ledger_status(&c, "refunded");
    PC_IGNORE(sbx_ledger_update(&c));
    char rid[40];
    sbx_id(rid, sizeof rid, "re_");
    json_t *body = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:s}", "id", rid, "object", "refund",
                             "amount", (json_int_t)amt, "currency", p->currency, "payment_intent",
                             p->id, "charge", p->charge, "status", "succeeded");
    pthread_mutex_unlock(&mu);
    return (out_t){.status = 200, .body = body, .store = true, .fault = o.fault};
}

/* ----------------------------------------------------------- routing */

/* Stripe takes the secret key as a bearer token or as HTTP Basic's user
 * name with an empty password (curl -u sk_test_...:). */
static bool authorized(sbx_req_t *rq)
{
    const char *h = sbx_header(rq, "Authorization");
    char k[256];
    if (h && !strncmp(h, "Bearer ", 7)) {
        snprintf(k, sizeof k, "%s", h + 7);
    } else if (h && !strncmp(h, "Basic ", 6)) {
        size_t n = 0;
        if (sodium_base642bin((unsigned char *)k, sizeof k - 1, h + 6, strlen(h + 6), NULL, &n,
                              NULL, sodium_base64_VARIANT_ORIGINAL) != 0)
            return false;
        k[n] = '\0';
        char *colon = strchr(k, ':');
        if (!colon || strlen(k) != n) /* no user:password, or a NUL inside */
            return false;
        *colon = '\0';
    } else {
        return false;
    }
    if (api_key)
        return !strcmp(k, api_key);
    return !strncmp(k, "sk_test_", 8) || !strncmp(k, "rk_test_", 8);
}

static out_t route_post(sbx_req_t *rq, const char *key)
{
    char *s1 = sbx_path_segment(rq, 1), *id = sbx_path_segment(rq, 2),
         *act = sbx_path_segment(rq, 3);
    out_t o;
    if (s1 && !strcmp(s1, "payment_intents") && !id)
        o = create(rq, key);
    else if (s1 && !strcmp(s1, "payment_intents") && act && !strcmp(act, "confirm"))
        o = confirm(rq, id, key);
    else if (s1 && !strcmp(s1, "payment_intents") && act && !strcmp(act, "capture"))
        o = capture(rq, id);
    else if (s1 && !strcmp(s1, "payment_intents") && act && !strcmp(act, "cancel"))
        o = cancel(rq, id);
    else if (s1 && !strcmp(s1, "refunds") && !id)
        o = refund(rq);
    else
        o = err(404, "invalid_request_error", NULL, "Unrecognized request URL.", NULL);
    free(s1);
    free(id);
    free(act);
    return o;
}

/* Stripe's idempotency layer around every POST. */
static enum MHD_Result post(sbx_req_t *rq)
{
    const char *key = sbx_header(rq, "Idempotency-Key");
    char *fp = NULL;
    if (key) {
        fp = str_printf("%s %s %s", rq->method, rq->path, rq->body);
        unsigned st = 0;
        char *stored = NULL;
        sbx_idem_t r = sbx_idem_begin(key, fp, &st, &stored);
        free(fp);
        if (r == SBX_IDEM_REPLAY) {
            enum MHD_Result res = sbx_reply_raw(rq, st, "application/json", stored, strlen(stored));
            free(stored);
            return res;
        }
        if (r == SBX_IDEM_MISMATCH) {
            out_t e = err(400, "idempotency_error", NULL,
                          "Keys for idempotent requests can only be used with the same parameters "
                          "they were first used with.",
                          NULL);
            return sbx_reply_json(rq, e.status, e.body);
        }
        if (r == SBX_IDEM_IN_PROGRESS) {
            out_t e = err(409, "invalid_request_error", "idempotency_key_in_use",
                          "There is currently another in-progress request using this "
                          "Idempotency-Key.",
                          NULL);
            return sbx_reply_json(rq, e.status, e.body);
        }
    }
    out_t o = route_post(rq, key);
    return sbx_respond(rq, key, o.status, o.body, o.store, &o.fault);
}

static enum MHD_Result handle(sbx_req_t *rq)
{
    if (!authorized(rq)) {
        /* like Stripe, name the key redacted to its last four characters */
        const char *h = sbx_header(rq, "Authorization");
        size_t n = h ? strlen(h) : 0;
        char msg[128];
        snprintf(msg, sizeof msg, "Invalid API Key provided: sk_****%s", n > 11 ? h + n - 4 : "");
        out_t e = err(401, "invalid_request_error", NULL, msg, NULL);
        return sbx_reply_json(rq, e.status, e.body);
    }
    if (!strcmp(rq->method, "POST"))
        return post(rq);
    char *s1 = sbx_path_segment(rq, 1), *id = sbx_path_segment(rq, 2),
         *more = sbx_path_segment(rq, 3);
    out_t o;
    pthread_mutex_lock(&mu);
    pi_t *p = !strcmp(rq->method, "GET") && s1 && !strcmp(s1, "payment_intents") && !more
                  ? pi_find(id)
                  : NULL;
    if (p)
        o = ok_pi(p);
    else
        o = err(404, "invalid_request_error", "resource_missing", "No such payment_intent.",
                "intent");
    pthread_mutex_unlock(&mu);
    free(s1);
    free(id);
    free(more);
    return sbx_reply_json(rq, o.status, o.body);
}

static bool flag(const char *name, const char *value)
{
    if (!strcmp(name, "--api-key")) {
        api_key = value;
        return true;
    }
    return false;
}

int main(int argc, char **argv)
{
    static const sbx_dialect_t d = {.name = "stripe", .handler = handle, .flag = flag};
    return sbx_main(argc, argv, &d);
}
