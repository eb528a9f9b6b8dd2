/* gateway/checkout: the money path inside gatewayd. Platform-service clients
 * (pricing, inventory), idempotency keys, the event log and transactional
 * outbox with its dispatcher, webhook signing, the checkout state machine and
 * the recovery worker. Internal to gateway/. */
#ifndef PORTCULLIS_CHECKOUT_H
#define PORTCULLIS_CHECKOUT_H

#include "gateway/gateway.h"

/* 10^11 minor units: above any real basket, far below int64 overflow when
 * lines are summed. */
#define GW_MAX_AMOUNT 100000000000LL

/* ------------------------------------------------------------------------
 * Platform services.
 * ---------------------------------------------------------------------- */
typedef enum {
    PLAT_OK = 0,
    PLAT_REJECTED,    /* the service answered no (unknown SKU, out of stock) */
    PLAT_UNAVAILABLE, /* known not done: not sent, or refused before acting */
    PLAT_UNKNOWN,     /* may have been done: timeout or broken reply after sending */
} plat_status_t;

typedef struct {
    char sku[65];
    int64_t quantity, unit_amount, amount, tax_amount;
    bool high_resale_risk;
} gw_quote_line_t;

typedef struct {
    gw_quote_line_t *lines;
    size_t nlines;
    int64_t subtotal, tax, shipping, total;
    json_t *json; /* the service's reply, kept with the checkout */
} gw_quote_t;

/* `items` is the request's validated [{"sku","quantity"}] array. On
 * PLAT_REJECTED, bad_param names the offending line ("cart.items[1].sku"). */
plat_status_t gw_pricing_quote(const char *currency, const json_t *items, const char *country,
                               gw_quote_t *q, char *bad_param, size_t bad_len) PC_WUR;
void gw_quote_free(gw_quote_t *q);
/* On PLAT_REJECTED, *unavailable is the service's list of short lines. */
plat_status_t gw_inventory_reserve(const char *reservation_id, const json_t *items, int ttl_s,
                                   json_t **unavailable) PC_WUR;
/* Commits (commit=true) or releases a reservation. */
plat_status_t gw_inventory_finish(const char *reservation_id, bool commit,
                                  long *http_status) PC_WUR;

/* ------------------------------------------------------------------------
 * Idempotency keys (Stripe's semantics; the database decides, so several
 * gatewayd instances agree).
 * ---------------------------------------------------------------------- */
typedef struct {
    bool present;
    char key[256];
    unsigned char hash[32]; /* of route, path and canonical body */
} gw_idem_t;

/* Reads the Idempotency-Key header and hashes the request. On a bad or
 * missing (when required) key, queues the 400 and returns false. */
bool gw_idem_parse(gw_request_t *rq, bool required, gw_idem_t *k, enum MHD_Result *reply);
/* When the key was used before, answers for it (replay with
 * Idempotent-Replayed: true, 409 while in flight, 422 for another body) and
 * returns true. Returns false when the key is new (or absent). */
bool gw_idem_answer_existing(gw_request_t *rq, const gw_idem_t *k, enum MHD_Result *reply);

typedef struct {
    char state[12];
    unsigned char hash[32];
    int status;
    char *body; /* malloc'd, NULL while running */
    char resource_id[IDS_MAX];
} gwdb_idem_t;

/* Claims a key inside the caller's transaction: DB_CONFLICT when taken. */
db_status_t db_idem_claim(db_conn_t *c, const char *merchant_id, const gw_idem_t *k,
                          const char *resource_id) PC_WUR;
db_status_t db_idem_complete(db_conn_t *c, const char *merchant_id, const char *key, int status,
                             const char *body) PC_WUR;
db_status_t db_idem_complete_resource(db_conn_t *c, const char *merchant_id,
                                      const char *resource_id, int status,
                                      const char *body) PC_WUR;
/* The answer stored so far under the key that asked for operation
 * resource_id ("" while none; malloc'd); DB_NOT_FOUND if no key did. */
db_status_t db_idem_resource_body(db_conn_t *c, const char *merchant_id, const char *resource_id,
                                  char **body) PC_WUR;
db_status_t db_idem_get(db_conn_t *c, const char *merchant_id, const char *key,
                        gwdb_idem_t *out) PC_WUR;
db_status_t db_idem_expire(db_conn_t *c, int64_t retention_h, int *deleted) PC_WUR;
/* Repairs 'running' keys older than age_s whose request died between its
 * commits: released when no checkout or operation was recorded (or it
 * failed), completed with the payment when its operation succeeded. */
db_status_t db_idem_release_orphans(db_conn_t *c, int age_s, int *deleted) PC_WUR;

/* ------------------------------------------------------------------------
 * Events and the outbox.
 * ---------------------------------------------------------------------- */
/* Records an event and one outbox delivery per subscribed webhook endpoint,
 * in the caller's transaction. `data` is borrowed. */
db_status_t gw_event_emit(db_conn_t *c, const char *merchant_id, const char *type,
                          const char *object_id, json_t *data, char event_id[IDS_MAX]) PC_WUR;
/* Queues an inventory commit or release in the caller's transaction. */
db_status_t db_outbox_inventory(db_conn_t *c, const char *merchant_id, bool commit,
                                const char *reservation_id) PC_WUR;
/* Queues a fresh delivery of an existing event to its merchant's endpoints;
 * *queued counts them. DB_NOT_FOUND if the merchant has no such event. */
db_status_t db_event_redeliver(db_conn_t *c, const char *merchant_id, const char *event_id,
                               int *queued) PC_WUR;

/* DB_OK if the merchant has this event, else DB_NOT_FOUND. */
db_status_t db_event_exists(db_conn_t *c, const char *merchant_id, const char *event_id) PC_WUR;
/* Events after `after` (an event id; NULL = from the start), oldest first. */
db_status_t db_events_list(db_conn_t *c, const char *merchant_id, const char *after,
                           const char *type, int limit, json_t **out, bool *has_more) PC_WUR;

int gw_outbox_start(void) PC_WUR;
void gw_outbox_stop(void);
/* Wakes the dispatcher now (after a commit that queued work). */
void gw_outbox_kick(void);

/* Event types a webhook endpoint may subscribe to (NULL-terminated). */
extern const char *const gw_event_types[];

/* Portcullis-Signature value for one delivery: "t=<t>,v1=<hex>[,v1=<hex>]". */
void gw_webhook_sign(const secret_t *secret, const secret_t *previous, int64_t t,
                     const char *body, size_t len, char *out, size_t outlen);

/* Seals small secrets (webhook signing secrets, provider credentials) in the
 * vault; only sealed text is stored in the gateway schema. */
int gw_secret_seal(const char *merchant_id, const char *context, const void *plain, size_t len,
                   char **sealed) PC_WUR;
secret_t *gw_secret_unseal(const char *merchant_id, const char *context,
                           const char *sealed) PC_WUR;

#endif
