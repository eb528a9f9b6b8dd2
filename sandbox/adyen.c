/* sandbox-adyen: a stand-in for Adyen's Checkout API (/v71/payments and the
 * /payments/{pspReference}/captures|cancels|refunds modifications) with
 * X-API-Key and Idempotency-Key: a repeated key returns the first answer
 * without processing again (so a replayed payment is Adyen's way to learn
 * an unknown outcome, and stays truthful under faults); a key still being
 * processed is a 422 with errorCode 704. As Adyen documents it, the key
 * alone decides (it is unique per company account and valid 31 days): a
 * retry gets the first attempt's answer even if its body differs, as a
 * replay without the CVC, which was used up by the first attempt, does. Test
 * cards answer with Adyen's resultCode, refusalReason(Code) and
 * additionalData.refusalReasonRaw. Modifications answer "received". */
#include "sandbox/sandbox.h"
#include <ctype.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *api_key, *merchant_account;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER; /* serialises ledger read-modify-write */

typedef struct {
    unsigned status;
    json_t *body; /* NULL: inject `fault` before processing */
    bool store;
    sbx_fault_t fault;
} out_t;

static out_t error(unsigned status, const char *code, const char *msg, const char *type)
{
    return (out_t){.status = status,
                   .body = json_pack("{s:i, s:s, s:s, s:s}", "status", (int)status, "errorCode",
                                     code, "message", msg, "errorType", type)};
}

/* Adyen pspReferences are 16 upper-case alphanumerics. */
static void psp_new(char out[17])
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    for (int i = 0; i < 16; i++)
        out[i] = al[randombytes_uniform(sizeof al - 1)];
    out[16] = '\0';
}

/* ------------------------------------------------------------ payments */

typedef struct {
    const char *result, *reason, *code, *raw, *ledger;
} refusal_t;

static refusal_t refusal(sbx_card_t s)
{
    switch (s) {
    case SBX_CARD_DECLINED:
        return (refusal_t){"Refused", "Refused", "2", "DECLINED", "refused"};
    case SBX_CARD_INSUFFICIENT_FUNDS:
        return (refusal_t){"Refused", "Not enough balance", "12",
                           "51 : Insufficient funds/over credit limit", "not_enough_balance"};
    case SBX_CARD_STOLEN:
        return (refusal_t){"Refused", "Blocked Card", "5", "43 : Stolen card, pick up",
                           "blocked_card"};
    case SBX_CARD_EXPIRED:
        return (refusal_t){"Refused", "Expired Card", "6", "54 : Expired card", "expired_card"};
    case SBX_CARD_INCORRECT_CVC:
        return (refusal_t){"Refused", "CVC Declined", "24", "N7 : Decline for CVV2 failure",
                           "cvc_declined"};
    default:
        return (refusal_t){"Error", "Acquirer Error", "4", "96 : System malfunction",
                           "acquirer_error"};
    }
}

static bool digits(const char *s, size_t min, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return n >= min && n <= max;
}

static out_t payments(sbx_req_t *rq, const char *key)
{
    json_int_t value = 0;
    const char *cur = NULL, *ref = NULL, *ma = NULL, *type = NULL, *number = NULL, *em = NULL,
               *ey = NULL, *manual = NULL;
    json_t *pm = json_object_get(rq->json, "paymentMethod");
    if (json_unpack(rq->json, "{s:{s:I, s:s}, s:s, s:s}", "amount", "value", &value, "currency",
                    &cur, "reference", &ref, "merchantAccount", &ma) != 0)
        return error(422, "702", "Required field missing: amount, reference or merchantAccount",
                     "validation");
    if (merchant_account && strcmp(ma, merchant_account) != 0)
        return error(403, "901", "Invalid Merchant Account", "security");
    if (json_unpack(pm, "{s:s, s:s, s:s, s:s}", "type", &type, "number", &number, "expiryMonth",
                    &em, "expiryYear", &ey) != 0 ||
        strcmp(type, "scheme") != 0)
        return error(422, "702", "Required field missing in paymentMethod", "validation");
    if (value < 1 || value > 99999999999 || strlen(cur) != 3 || strlen(ref) > 80)
        return error(422, "137", "Invalid amount specified", "validation");
    if (!digits(em, 1, 2) || atoi(em) < 1 || atoi(em) > 12 || !digits(ey, 4, 4))
        return error(422, "129", "Expiry Date Invalid", "validation");
    sbx_card_t sc = sbx_test_card(number);
    if (sc == SBX_CARD_INVALID_NUMBER)
        return error(422, "101", "Invalid card number", "validation");
    json_unpack(json_object_get(rq->json, "additionalData"), "{s:s}", "manualCapture", &manual);
    bool is_manual = manual && !strcmp(manual, "true");

    out_t o = {.fault = sbx_fault_draw()};
    if (o.fault.mode != SBX_NONE && !o.fault.after_processing)
        return o;
    sbx_charge_t c = {0};
    psp_new(c.id);
    snprintf(c.idempotency_key, sizeof c.idempotency_key, "%s", key ? key : c.id);
    snprintf(c.reference, sizeof c.reference, "%s", ref);
    c.amount = value;
    snprintf(c.currency, sizeof c.currency, "%s", cur);
    snprintf(c.last4, sizeof c.last4, "%s", number + strlen(number) - 4);
    json_t *body = json_pack("{s:s, s:s, s:{s:I, s:s}}", "pspReference", c.id, "merchantReference",
                             ref, "amount", "value", value, "currency", cur);
    if (sc == SBX_CARD_OK) {
        snprintf(c.status, sizeof c.status, "%s", is_manual ? "authorized" : "captured");
        c.captured = is_manual ? 0 : value;
        json_object_set_new(body, "resultCode", json_string("Authorised"));
        json_object_set_new(body, "additionalData", json_pack("{s:s}", "authCode", "083741"));
    } else {
        refusal_t r = refusal(sc);
        snprintf(c.status, sizeof c.status, "declined");
        snprintf(c.decline_code, sizeof c.decline_code, "%s", r.ledger);
        json_object_set_new(body, "resultCode", json_string(r.result));
        json_object_set_new(body, "refusalReason", json_string(r.reason));
        json_object_set_new(body, "refusalReasonCode", json_string(r.code));
        json_object_set_new(body, "additionalData", json_pack("{s:s}", "refusalReasonRaw", r.raw));
    }
    if (!sbx_ledger_add(&c))
        log_warn("ledger refused a second charge for one idempotency key");
    return (out_t){.status = 200, .body = body, .store = true, .fault = o.fault};
}

/* -------------------------------------------------------- modifications */

static out_t modify(sbx_req_t *rq, const char *psp, const char *what)
{
    json_int_t value = 0;
    const char *cur = NULL, *ma = NULL, *ref = "";
    bool is_cancel = !strcmp(what, "cancels");
    if (json_unpack(rq->json, "{s:s, s?s}", "merchantAccount", &ma, "reference", &ref) != 0)
        return error(422, "702", "Required field missing: merchantAccount", "validation");
    if (merchant_account && strcmp(ma, merchant_account) != 0)
        return error(403, "901", "Invalid Merchant Account", "security");
    if (!is_cancel &&
        json_unpack(rq->json, "{s:{s:I, s:s}}", "amount", "value", &value, "currency", &cur) != 0)
        return error(422, "702", "Required field missing: amount", "validation");
    sbx_charge_t c;
    if (!sbx_ledger_get(psp, &c))
        return error(422, "167", "Original pspReference required for this operation", "validation");
    bool state_ok =
        !strcmp(what, "refunds") ? c.captured > c.refunded : !strcmp(c.status, "authorized");
    if (!state_ok)
        return error(422, "701", "The payment is not in a state that allows this modification",
                     "validation");
    int64_t room = !strcmp(what, "refunds") ? c.captured - c.refunded : c.amount;
    if (!is_cancel && (value < 1 || value > room || strcmp(cur, c.currency) != 0))
        return error(422, "137", "Invalid amount specified", "validation");

    out_t o = {.fault = sbx_fault_draw()};
    if (o.fault.mode != SBX_NONE && !o.fault.after_processing)
        return o;
    pthread_mutex_lock(&mu);
    bool ok = sbx_ledger_get(psp, &c);
    if (ok && !strcmp(what, "captures") && !strcmp(c.status, "authorized")) {
        c.captured = value;
        snprintf(c.status, sizeof c.status, "captured");
    } else if (ok && is_cancel && !strcmp(c.status, "authorized")) {
        snprintf(c.status, sizeof c.status, "voided");
    } else if (ok && !strcmp(what, "refunds") && c.captured - c.refunded >= value) {
        c.refunded += value;
        if (c.refunded == c.captured)
            snprintf(c.status, sizeof c.status, "refunded");
    } else {
        ok = false;
    }
    if (ok)
        PC_IGNORE(sbx_ledger_update(&c));
    pthread_mutex_unlock(&mu);
    if (!ok)
        return error(422, "701", "The payment is not in a state that allows this modification",
                     "validation");
    char mod[17];
    psp_new(mod);
    json_t *body =
        json_pack("{s:s, s:s, s:s, s:s, s:s}", "merchantAccount", ma, "paymentPspReference", psp,
                  "pspReference", mod, "reference", ref, "status", "received");
    if (!is_cancel)
        json_object_set_new(body, "amount",
                            json_pack("{s:I, s:s}", "value", value, "currency", cur));
    return (out_t){.status = 201, .body = body, .store = true, .fault = o.fault};
}

/* ------------------------------------------------------------- routing */

static bool version_ok(const char *seg)
{
    return seg && seg[0] == 'v' && digits(seg + 1, 1, 3);
}

static out_t route(sbx_req_t *rq, const char *key)
{
    char *v = sbx_path_segment(rq, 0), *s1 = sbx_path_segment(rq, 1),
         *psp = sbx_path_segment(rq, 2), *what = sbx_path_segment(rq, 3),
         *extra = sbx_path_segment(rq, 4);
    out_t o;
    if (!version_ok(v) || !s1 || strcmp(s1, "payments") != 0 || extra)
        o = error(404, "000", "Not found", "validation");
    else if (!rq->json || !json_is_object(rq->json))
        o = error(400, "702", "Unable to parse the request body", "validation");
    else if (!psp)
        o = payments(rq, key);
    else if (what &&
             (!strcmp(what, "captures") || !strcmp(what, "cancels") || !strcmp(what, "refunds")))
        o = modify(rq, psp, what);
    else
        o = error(404, "000", "Not found", "validation");
    free(v);
    free(s1);
    free(psp);
    free(what);
    free(extra);
    return o;
}

static enum MHD_Result handle(sbx_req_t *rq)
{
    const char *k = sbx_header(rq, "X-API-Key");
    if (!k || !*k || (api_key && strcmp(k, api_key) != 0)) {
        out_t e = error(401, "000", "HTTP Status Response - Unauthorized", "security");
        return sbx_reply_json(rq, e.status, e.body);
    }
    if (strcmp(rq->method, "POST") != 0) {
        out_t e = error(405, "000", "Method not allowed", "validation");
        return sbx_reply_json(rq, e.status, e.body);
    }
    const char *key = sbx_header(rq, "Idempotency-Key");
    if (key) {
        if (strlen(key) > 64) {
            out_t e = error(422, "702", "Idempotency-Key longer than 64 characters", "validation");
            return sbx_reply_json(rq, e.status, e.body);
        }
        char *fp = str_printf("%s", rq->path); /* the key decides, not the body */
        unsigned st = 0;
        char *stored = NULL;
        sbx_idem_t r = sbx_idem_begin(key, fp, &st, &stored);
        free(fp);
        if (r == SBX_IDEM_REPLAY) {
            enum MHD_Result res = sbx_reply_raw(rq, st, "application/json", stored, strlen(stored));
            free(stored);
            return res;
        }
        if (r != SBX_IDEM_NEW) {
            out_t e = error(422, "704", "request already processed or in progress", "validation");
            return sbx_reply_json(rq, e.status, e.body);
        }
    }
    out_t o = route(rq, key);
    return sbx_respond(rq, key, o.status, o.body, o.store, &o.fault);
}

static bool flag(const char *name, const char *value)
{
    if (!strcmp(name, "--api-key")) {
        api_key = value;
        return true;
    }
    if (!strcmp(name, "--merchant-account")) {
        merchant_account = value;
        return true;
    }
    return false;
}

int main(int argc, char **argv)
{
    static const sbx_dialect_t d = {.name = "adyen", .handler = handle, .flag = flag};
    return sbx_main(argc, argv, &d);
}
