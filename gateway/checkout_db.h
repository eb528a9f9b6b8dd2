/* gateway/checkout: database operations of the money path (internal). */
#ifndef PORTCULLIS_CHECKOUT_DB_H
#define PORTCULLIS_CHECKOUT_DB_H

#include "gateway/checkout.h"
#include "fraud/fraud.h"

typedef struct {
    const char *merchant_id, *idem_key;
    const unsigned char *idem_hash;
    const char *checkout_id, *currency;
    int64_t amount;
    const char *quote_json, *token, *card_json, *customer_json, *shipping_json;
    bool capture;
    const char *reservation_id;
    int reservation_ttl_s;
    const char *fraud_json;
    const char *payment_id, *provider, *attempt_key; /* NULL when nothing will be attempted */
    int lease_s;
    /* the attempt's fraud velocity event, recorded in the same statement */
    const fraud_key_hashes_t *vel;
    int64_t basket;
    bool declined;
    const char *api_key_id; /* the key that made it (a pk reads only its own) */
} gwdb_checkout_begin_t;

/* Commit 1: claims the key and records checkout, payment and attempt 1.
 * DB_CONFLICT when the idempotency key is already taken. */
db_status_t db_checkout_begin(db_conn_t *c, const gwdb_checkout_begin_t *b) PC_WUR;
db_status_t db_attempt_transition(db_conn_t *c, const char *payment_id, int done_seq,
                                  const char *done_state, const char *done_ref,
                                  const char *done_reason, int next_seq, const char *next_provider,
                                  const char *next_key, int lease_s) PC_WUR;

typedef struct {
    const char *checkout_id;
    const char *status; /* succeeded, requires_review, declined, failed, processing */
    int http;
    int attempt_seq; /* 0 = no attempt to update */
    const char *attempt_state, *attempt_ref, *attempt_reason;
    bool attempt_hard;
    const char *payment_status, *provider, *provider_ref;
    int64_t captured;
    const char *order_id;    /* NULL = no order */
    const char *reservation; /* commit, release, reserved, none, keep */
    const char *error_json;  /* NULL = no error */
    const char *event_type;  /* NULL = no event */
    const fraud_key_hashes_t *vel; /* a decline counts toward these keys; NULL = none */
} gwdb_checkout_finish_t;

typedef struct {
    char *body; /* the checkout JSON stored as the idempotent response */
    int http;
    bool changed; /* false: someone else had already finished it */
} gwdb_finish_result_t;

db_status_t db_checkout_finish(db_conn_t *c, const gwdb_checkout_finish_t *f,
                               gwdb_finish_result_t *out) PC_WUR;
/* The checkout object; with made_by (a publishable key's id), only if that
 * key made it (checkouts from before keys were recorded excepted). */
db_status_t db_checkout_json(db_conn_t *c, const char *merchant_id, const char *checkout_id,
                             const char *made_by, char **body) PC_WUR;

#endif
