/* sandbox: stand-ins for the outside world (provider APIs, pricing,
 * inventory, a webhook receiver). This header is the small framework they
 * share: an HTTP server on loopback with a control listener that survives a
 * simulated outage, fault injection, a charge ledger and an idempotency
 * store. Each sandbox is one file with its own main() (sandbox/<name>.c →
 * executable sandbox-<name>). */
#ifndef PORTCULLIS_SANDBOX_H
#define PORTCULLIS_SANDBOX_H

#include "util/util.h"
#include <microhttpd.h>
#include <string.h>

typedef struct {
    struct MHD_Connection *con;
    const char *method;
    const char *path;
    const char *body; /* NUL-terminated */
    size_t body_len;
    json_t *json;     /* parsed body when it is JSON, else NULL */
    bool control;     /* arrived on the control listener */
} sbx_req_t;

/* A dialect's request handler; must queue exactly one reply (or return
 * sbx_reset()). */
typedef enum MHD_Result (*sbx_handler_fn)(sbx_req_t *rq);

typedef struct {
    const char *name;          /* "stripe" */
    sbx_handler_fn handler;
    /* optional extra control routes under /_sandbox/ (return MHD_NO + *handled=false
     * to fall through to the framework's 404) */
    enum MHD_Result (*control)(sbx_req_t *rq, bool *handled);
    /* optional: extra command-line flag handling (--catalog FILE ...) */
    bool (*flag)(const char *name, const char *value);
    /* optional: a dialect flag that must be given, and the usage line shown
     * when it is not (after "usage: sandbox-<name> ") */
    const char *required_flag;
    const char *usage;
} sbx_dialect_t;

/* Common main: flags --port N (0 = any), --port-file F, --control-port N,
 * --control-port-file F, plus the dialect's own; serves until SIGTERM. */
int sbx_main(int argc, char **argv, const sbx_dialect_t *d);

/* Replies. */
enum MHD_Result sbx_reply_json(sbx_req_t *rq, unsigned status, json_t *body /* stolen */);
enum MHD_Result sbx_reply_raw(sbx_req_t *rq, unsigned status, const char *ctype, const char *body,
                              size_t len);
/* The platform services' error body (API.md): {"error": {type, code,
 * message, param}}; param may be NULL. */
json_t *sbx_error_json(const char *type, const char *code, const char *param,
                       const char *message);
/* 400 naming the field a jspec parse refused. */
enum MHD_Result sbx_reply_jspec(sbx_req_t *rq, const jspec_error_t *je);
/* Drops the connection with a TCP reset and no response. */
enum MHD_Result sbx_reset(sbx_req_t *rq);
const char *sbx_header(sbx_req_t *rq, const char *name);
const char *sbx_query(sbx_req_t *rq, const char *name);
/* Value of a form-encoded body field (application/x-www-form-urlencoded);
 * malloc'd, URL-decoded, or NULL. */
char *sbx_form_get(const sbx_req_t *rq, const char *key);
/* Path segment i (0-based) of rq->path, malloc'd, or NULL. */
char *sbx_path_segment(const sbx_req_t *rq, int i);

/* ------------------------------------------------------------------------
 * Faults (POST /_sandbox/faults). A payment operation asks what to do:
 *
 *     sbx_fault_t f = sbx_fault_draw();     // applies latency itself
 *     if (f.mode != SBX_NONE && !f.after_processing) return sbx_fault_fail(rq, &f);
 *     ...process and record the payment...
 *     if (f.mode != SBX_NONE && f.after_processing) return sbx_fault_fail(rq, &f);
 *     ...normal reply...
 *
 * Lookups must not call sbx_fault_draw(): they keep answering truthfully.
 * ---------------------------------------------------------------------- */
/* busy: 429 with Retry-After: 1, always before processing (a rate limit
 * refuses the request; after_processing does not apply). */
typedef enum {
    SBX_NONE = 0,
    SBX_DOWN,
    SBX_ERROR_500,
    SBX_RESET,
    SBX_TIMEOUT,
    SBX_LATENCY,
    SBX_BUSY
} sbx_mode_t;

typedef struct {
    sbx_mode_t mode; /* the fault to inject on this request (NONE if the rate says no) */
    bool after_processing;
} sbx_fault_t;

sbx_fault_t sbx_fault_draw(void);
/* Injects f on this request: 500 with a provider-neutral body, a TCP reset,
 * or holding the reply past any client timeout (then a reset). */
enum MHD_Result sbx_fault_fail(sbx_req_t *rq, const sbx_fault_t *f);
/* The common end of a payment operation in a provider dialect. body NULL:
 * the fault struck before processing (the idempotency key is released and
 * the fault injected). Otherwise the reply is stored under the key when
 * `store` (or the key released), then sent, unless the fault says to fail
 * after processing. `body` is stolen; key may be NULL. */
enum MHD_Result sbx_respond(sbx_req_t *rq, const char *key, unsigned status, json_t *body,
                            bool store, const sbx_fault_t *fault);
/* The webhook receiver's "fail_next": answers true (and counts down) while
 * deliveries should fail. */
bool sbx_fail_next_take(void);

/* ------------------------------------------------------------------------
 * The charge ledger behind GET /_sandbox/charges: one entry per idempotency
 * key, declines included; never a full PAN.
 * ---------------------------------------------------------------------- */
typedef struct {
    char id[64];
    char idempotency_key[256];
    char reference[128]; /* the merchant's reference (e.g. the attempt id) */
    int64_t amount;
    int64_t captured;
    int64_t refunded;
    char currency[4];
    char status[16]; /* authorized, captured, declined, voided, refunded */
    char last4[5];
    char decline_code[32];
} sbx_charge_t;

/* Adds a charge; returns false if the idempotency key already has one. */
bool sbx_ledger_add(const sbx_charge_t *c);
/* Copies the charge with this id / idempotency key / reference into *out. */
bool sbx_ledger_get(const char *id, sbx_charge_t *out);
bool sbx_ledger_by_key(const char *idempotency_key, sbx_charge_t *out);
bool sbx_ledger_by_reference(const char *reference, sbx_charge_t *out);
/* Replaces the stored charge with the same id. */
bool sbx_ledger_update(const sbx_charge_t *c);
size_t sbx_ledger_count(void);

/* ------------------------------------------------------------------------
 * Idempotency store: a replayable response per key, with a fingerprint of
 * the request so a reused key with other parameters can be refused.
 * ---------------------------------------------------------------------- */
typedef enum { SBX_IDEM_NEW = 0, SBX_IDEM_REPLAY, SBX_IDEM_MISMATCH, SBX_IDEM_IN_PROGRESS } sbx_idem_t;

/* Claims `key` for a request with this fingerprint. On REPLAY, *status and
 * *body (malloc'd) hold the stored response. */
sbx_idem_t sbx_idem_begin(const char *key, const char *fingerprint, unsigned *status, char **body);
/* Stores the response for a claimed key (or releases it when body is NULL). */
void sbx_idem_finish(const char *key, unsigned status, const char *body);

/* A short random id with a prefix ("pi_..."). */
void sbx_id(char *out, size_t n, const char *prefix);

/* ------------------------------------------------------------------------
 * The provider test cards of API.md, as scenarios each provider sandbox
 * expresses in its own codes. Other Luhn-valid numbers authorize.
 * ---------------------------------------------------------------------- */
typedef enum {
    SBX_CARD_OK = 0,
    SBX_CARD_DECLINED,
    SBX_CARD_INSUFFICIENT_FUNDS,
    SBX_CARD_STOLEN,
    SBX_CARD_EXPIRED,
    SBX_CARD_INCORRECT_CVC,
    SBX_CARD_PROCESSING_ERROR, /* retryable, not charged */
    SBX_CARD_INVALID_NUMBER,   /* fails Luhn or length */
} sbx_card_t;

static inline sbx_card_t sbx_test_card(const char *pan)
{
    static const struct {
        const char *pan;
        sbx_card_t card;
    } cards[] = {
        {"4000000000000002", SBX_CARD_DECLINED},
        {"4000000000009995", SBX_CARD_INSUFFICIENT_FUNDS},
        {"4000000000009979", SBX_CARD_STOLEN},
        {"4000000000000069", SBX_CARD_EXPIRED},
        {"4000000000000127", SBX_CARD_INCORRECT_CVC},
        {"4000000000000119", SBX_CARD_PROCESSING_ERROR},
    };
    size_t n = pan ? strlen(pan) : 0;
    int sum = 0;
    for (size_t i = 0; i < n; i++) {
        int d = pan[n - 1 - i] - '0';
        if (d < 0 || d > 9)
            return SBX_CARD_INVALID_NUMBER;
        if (i % 2 == 1 && (d *= 2) > 9)
            d -= 9;
        sum += d;
    }
    if (n < 12 || n > 19 || sum % 10 != 0)
        return SBX_CARD_INVALID_NUMBER;
    for (size_t i = 0; i < sizeof cards / sizeof cards[0]; i++)
        if (!strcmp(pan, cards[i].pan))
            return cards[i].card;
    return SBX_CARD_OK;
}

#endif
