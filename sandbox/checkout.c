/* sandbox-checkout: a stand-in for Checkout.com's Payments API (POST
 * /payments with a card source, /payments/{id}/captures|voids|refunds, GET
 * /payments/{id}, /payments/{id}/actions and /payments?reference=) with
 * "Authorization: Bearer sk_..." and Cko-Idempotency-Key (a repeated key
 * replays the first answer; one still running or reused with another body
 * is a 409). Test cards answer with Checkout.com's five-digit response
 * codes. Reads never see faults. */
#include "sandbox/sandbox.h"
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *api_key;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

typedef struct {
    unsigned status;
    json_t *body; /* NULL: inject `fault` before processing */
    bool store;
    sbx_fault_t fault;
} out_t;

static out_t invalid(unsigned status, const char *code)
{
    char rid[40];
    sbx_id(rid, sizeof rid, "req_");
    json_t *b = json_pack("{s:s, s:s, s:[s]}", "request_id", rid, "error_type", "request_invalid",
                          "error_codes", code);
    return (out_t){.status = status, .body = b};
}

static out_t empty(unsigned status)
{
    return (out_t){.status = status, .body = json_object()};
}

typedef struct {
    const char *code, *summary;
} resp_t;

static resp_t response(sbx_card_t s)
{
    switch (s) {
    case SBX_CARD_OK:
        return (resp_t){"10000", "Approved"};
    case SBX_CARD_DECLINED:
        return (resp_t){"20001", "Refer to card issuer"};
    case SBX_CARD_INSUFFICIENT_FUNDS:
        return (resp_t){"20051", "Insufficient Funds"};
    case SBX_CARD_STOLEN:
        return (resp_t){"30043", "Stolen card - Pick up"};
    case SBX_CARD_EXPIRED:
        return (resp_t){"20054", "Expired Card"};
    case SBX_CARD_INCORRECT_CVC:
        return (resp_t){"20087", "Bad Track Data"};
    default:
        return (resp_t){"20096", "System malfunction"};
    }
}

/* The ledger entry as Checkout.com's payment details. */
static const char *status_of(const sbx_charge_t *c)
{
    if (!strcmp(c->status, "declined"))
        return "Declined";
    if (!strcmp(c->status, "voided"))
        return "Voided";
    if (!strcmp(c->status, "refunded"))
        return "Refunded";
    if (c->refunded > 0)
        return "Partially Refunded";
    if (!strcmp(c->status, "captured"))
        return c->captured < c->amount ? "Partially Captured" : "Captured";
    return "Authorized";
}

static json_t *details(const sbx_charge_t *c)
{
    bool approved = strcmp(c->status, "declined") != 0;
    bool held = !strcmp(c->status, "authorized");
    return json_pack(
        "{s:s, s:s, s:{s:s, s:s}, s:I, s:s, s:s, s:s, s:b, s:{s:I, s:I, s:I, s:I, "
        "s:I, s:I}}",
        "id", c->id, "requested_on", "2024-01-01T00:00:00Z", "source", "type", "card", "last4",
        c->last4, "amount", (json_int_t)c->amount, "currency", c->currency, "reference",
        c->reference, "status", status_of(c), "approved", approved, "balances", "total_authorized",
        (json_int_t)(approved ? c->amount : 0), "total_captured", (json_int_t)c->captured,
        "total_refunded", (json_int_t)c->refunded, "available_to_capture",
        (json_int_t)(held ? c->amount : 0), "available_to_void", (json_int_t)(held ? c->amount : 0),
        "available_to_refund", (json_int_t)(c->captured - c->refunded));
}

/* ------------------------------------------------------------- payments */

static out_t pay(sbx_req_t *rq, const char *key)
{
    json_int_t amount = 0, em = 0, ey = 0;
    const char *cur = NULL, *ref = "", *type = NULL, *number = NULL;
    int capture = 1;
    json_t *src = json_object_get(rq->json, "source");
    if (json_unpack(rq->json, "{s:I, s:s, s?s, s?b}", "amount", &amount, "currency", &cur,
                    "reference", &ref, "capture", &capture) != 0 ||
        amount < 1 || strlen(cur) != 3)
        return invalid(422, "amount_invalid");
    if (json_unpack(src, "{s:s, s:s, s:I, s:I}", "type", &type, "number", &number, "expiry_month",
                    &em, "expiry_year", &ey) != 0 ||
        strcmp(type, "card") != 0)
        return invalid(422, "card_number_required");
    if (em < 1 || em > 12 || ey < 2000)
        return invalid(422, "card_expiry_month_invalid");
    if (strlen(ref) > 50)
        return invalid(422, "reference_invalid");
    sbx_card_t sc = sbx_test_card(number);
    if (sc == SBX_CARD_INVALID_NUMBER)
        return invalid(422, "card_number_invalid");

    out_t o = {.fault = sbx_fault_draw()};
    if (o.fault.mode != SBX_NONE && !o.fault.after_processing)
        return o;
    sbx_charge_t c = {0};
    sbx_id(c.id, sizeof c.id, "pay_");
    snprintf(c.idempotency_key, sizeof c.idempotency_key, "%s", key ? key : c.id);
    snprintf(c.reference, sizeof c.reference, "%s", ref);
    c.amount = amount;
    snprintf(c.currency, sizeof c.currency, "%s", cur);
    snprintf(c.last4, sizeof c.last4, "%s", number + strlen(number) - 4);
    resp_t r = response(sc);
    const char *status;
    if (sc == SBX_CARD_OK) {
        status = capture ? "Captured" : "Authorized";
        snprintf(c.status, sizeof c.status, "%s", capture ? "captured" : "authorized");
        c.captured = capture ? amount : 0;
    } else {
        status = "Declined";
        snprintf(c.status, sizeof c.status, "declined");
    }
    snprintf(c.decline_code, sizeof c.decline_code, "%s", r.code);
    if (!sbx_ledger_add(&c))
        log_warn("ledger refused a second charge for one idempotency key");
    char act[40];
    sbx_id(act, sizeof act, "act_");
    json_t *body =
        json_pack("{s:s, s:s, s:I, s:s, s:b, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s, s:I, s:I}}",
                  "id", c.id, "action_id", act, "amount", amount, "currency", cur, "approved",
                  sc == SBX_CARD_OK, "status", status, "response_code", r.code, "response_summary",
                  r.summary, "reference", ref, "processed_on", "2024-01-01T00:00:00Z", "source",
                  "type", "card", "last4", c.last4, "expiry_month", em, "expiry_year", ey);
    return (out_t){.status = 201, .body = body, .store = true, .fault = o.fault};
}

/* -------------------------------------------------------- modifications */

static out_t modify(sbx_req_t *rq, const char *id, const char *what)
{
    json_int_t amount = -1;
    const char *ref = "";
    if (rq->json && json_unpack(rq->json, "{s?I, s?s}", "amount", &amount, "reference", &ref) != 0)
        return invalid(422, "request_invalid");
    sbx_charge_t c;
    if (!sbx_ledger_get(id, &c))
        return empty(404);
    bool refund = !strcmp(what, "refunds"), cancel = !strcmp(what, "voids");
    bool allowed = refund ? c.captured > c.refunded : !strcmp(c.status, "authorized");
    if (!allowed)
        return empty(403); /* capture/void/refund not allowed in this state */
    int64_t room = refund ? c.captured - c.refunded : c.amount;
    if (!cancel && amount < 0)
        amount = room;
    if (!cancel && (amount < 1 || amount > room))
        return invalid(422, "amount_invalid");

    out_t o = {.fault = sbx_fault_draw()};
    if (o.fault.mode != SBX_NONE && !o.fault.after_processing)
        return o;
    pthread_mutex_lock(&mu);
    bool ok = sbx_ledger_get(id, &c);
    if (ok && !strcmp(what, "captures") && !strcmp(c.status, "authorized")) {
        c.captured = amount;
        snprintf(c.status, sizeof c.status, "captured");
    } else if (ok && cancel && !strcmp(c.status, "authorized")) {
        snprintf(c.status, sizeof c.status, "voided");
    } else if (ok && refund && c.captured - c.refunded >= amount) {
        c.refunded += amount;
        if (c.refunded == c.captured)
            snprintf(c.status, sizeof c.status, "refunded");
    } else {
        ok = false;
    }
    if (ok)
        PC_IGNORE(sbx_ledger_update(&c));
    pthread_mutex_unlock(&mu);
    if (!ok)
        return empty(403);
    char act[40];
    sbx_id(act, sizeof act, "act_");
    return (out_t){.status = 202,
                   .body = json_pack("{s:s, s:s}", "action_id", act, "reference", ref),
                   .store = true,
                   .fault = o.fault};
}

/* ---------------------------------------------------------------- reads */

static enum MHD_Result get(sbx_req_t *rq)
{
    char *s0 = sbx_path_segment(rq, 0), *id = sbx_path_segment(rq, 1),
         *sub = sbx_path_segment(rq, 2);
    enum MHD_Result res;
    sbx_charge_t c;
    if (!s0 || strcmp(s0, "payments") != 0) {
        res = sbx_reply_raw(rq, 404, "application/json", "", 0);
    } else if (!id) {
        const char *ref = sbx_query(rq, "reference");
        json_t *data = json_array();
        if (ref && sbx_ledger_by_reference(ref, &c))
            json_array_append_new(data, details(&c));
        res =
            sbx_reply_json(rq, 200,
                           json_pack("{s:i, s:i, s:I, s:o}", "limit", 10, "skip", 0, "total_count",
                                     (json_int_t)json_array_size(data), "data", data));
    } else if (!sbx_ledger_get(id, &c)) {
        res = sbx_reply_raw(rq, 404, "application/json", "", 0);
    } else if (sub && !strcmp(sub, "actions")) {
        bool approved = strcmp(c.status, "declined") != 0;
        char act[40];
        sbx_id(act, sizeof act, "act_");
        res = sbx_reply_json(rq, 200,
                             json_pack("[{s:s, s:s, s:I, s:b, s:s, s:s}]", "id", act, "type",
                                       "Authorization", "amount", (json_int_t)c.amount, "approved",
                                       approved, "response_code", c.decline_code, "reference",
                                       c.reference));
    } else {
        res = sbx_reply_json(rq, 200, details(&c));
    }
    free(s0);
    free(id);
    free(sub);
    return res;
}

/* --------------------------------------------------------------- routing */

static out_t route(sbx_req_t *rq, const char *key)
{
    char *s0 = sbx_path_segment(rq, 0), *id = sbx_path_segment(rq, 1),
         *what = sbx_path_segment(rq, 2), *extra = sbx_path_segment(rq, 3);
    out_t o;
    if (!s0 || strcmp(s0, "payments") != 0 || extra)
        o = empty(404);
    else if (!id && (!rq->json || !json_is_object(rq->json)))
        o = invalid(422, "request_invalid");
    else if (!id)
        o = pay(rq, key);
    else if (what &&
             (!strcmp(what, "captures") || !strcmp(what, "voids") || !strcmp(what, "refunds")))
        o = modify(rq, id, what);
    else
        o = empty(404);
    free(s0);
    free(id);
    free(what);
    free(extra);
    return o;
}

static enum MHD_Result handle(sbx_req_t *rq)
{
    const char *h = sbx_header(rq, "Authorization");
    const char *k = h && !strncmp(h, "Bearer ", 7) ? h + 7 : NULL;
    if (!k || (api_key ? strcmp(k, api_key) != 0 : strncmp(k, "sk_", 3) != 0))
        return sbx_reply_raw(rq, 401, "application/json", "", 0);
    if (!strcmp(rq->method, "GET"))
        return get(rq);
    if (strcmp(rq->method, "POST") != 0)
        return sbx_reply_raw(rq, 405, "application/json", "", 0);
    const char *key = sbx_header(rq, "Cko-Idempotency-Key");
    if (key) {
        char *fp = str_printf("%s %s", rq->path, rq->body);
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
            out_t e = invalid(409, "duplicate_request");
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
    return false;
}

int main(int argc, char **argv)
{
    static const sbx_dialect_t d = {.name = "checkout", .handler = handle, .flag = flag};
    return sbx_main(argc, argv, &d);
}
