/* gateway/payment_ops: capture, void, refund and review decisions, each an
 * external call between two recorded states (internal). */
#ifndef PORTCULLIS_PAYMENT_OPS_H
#define PORTCULLIS_PAYMENT_OPS_H

#include "gateway/checkout.h"
#include "gateway/payments.h"

typedef enum { GW_OP_CAPTURE = 0, GW_OP_VOID, GW_OP_REFUND } gw_op_kind_t;

typedef struct {
    gw_op_kind_t kind;
    char op_id[IDS_MAX];
    char key[PRV_KEY_MAX]; /* sent to the provider; stable across retries */
    int64_t amount;
    char provider[PRV_NAME_MAX];
    char provider_ref[128];
    char currency[4];
    char checkout_id[IDS_MAX];
    char payment_status[24];
} gw_op_t;

typedef struct {
    char status[24];
    char fraud_decision[16];
    char payment_id[IDS_MAX];
    char payment_status[24];
} gw_review_state_t;

const char *gw_op_kind_str(gw_op_kind_t k);

db_status_t db_payment_op_begin(db_conn_t *c, const char *merchant_id, const char *payment_id,
                                const char *kind, int64_t amount, gw_op_t *op,
                                char outcome[24]) PC_WUR;
db_status_t db_payment_op_finish(db_conn_t *c, const char *op_id, const char *state,
                                 const char *ref, const char *reason, bool *changed) PC_WUR;
db_status_t db_review_complete(db_conn_t *c, const char *checkout_id, bool approve,
                               const char *order_id, bool *changed) PC_WUR;
db_status_t db_emit_checkout_event(db_conn_t *c, const char *checkout_id, const char *type) PC_WUR;
db_status_t db_payment_json(db_conn_t *c, const char *merchant_id, const char *payment_id,
                            char **out) PC_WUR;
db_status_t db_checkout_review_state(db_conn_t *c, const char *merchant_id,
                                     const char *checkout_id, gw_review_state_t *out) PC_WUR;
db_status_t db_reviews_list(db_conn_t *c, const char *merchant_id, int limit, json_t **out) PC_WUR;
/* Whether a held checkout's inventory reservation ends within a minute, with
 * its lines as inventory items (JSON text, malloc'd; NULL if none). */
db_status_t db_checkout_hold(db_conn_t *c, const char *merchant_id, const char *checkout_id,
                             bool *expiring, char **items) PC_WUR;
/* Records a new reservation holding the checkout's stock for ttl_s seconds
 * (DB_NOT_FOUND once the checkout no longer waits for review). */
db_status_t db_checkout_rehold(db_conn_t *c, const char *merchant_id, const char *checkout_id,
                               const char *reservation_id, int ttl_s) PC_WUR;

/* Admits an operation (amount < 0: the whole authorization / what is left
 * to refund) and records it pending. op->op_id may be preset (it names the
 * operation for an idempotency key); otherwise one is made. The admission
 * is audited in the same transaction as `action` ("payment.capture" when
 * NULL) by `actor` ("key:<id>"). Replies are left to the caller:
 * *err is set when not admitted. */
db_status_t gw_op_begin(const char *merchant_id, const char *payment_id, gw_op_kind_t kind,
                        int64_t amount, const char *actor, const char *action, gw_op_t *op,
                        err_code_t *err) PC_WUR;
/* Calls the provider for a recorded operation (same idempotency key on
 * every retry). */
prv_result_t gw_op_call(const char *merchant_id, const gw_op_t *op);
/* Records the outcome; a success moves the payment, completes a pending
 * review (capture approves, void rejects) and emits the events.
 * *state_out is "succeeded", "failed" or "unknown". */
db_status_t gw_op_complete(const char *merchant_id, const gw_op_t *op, const prv_result_t *res,
                           const char **state_out) PC_WUR;

/* What an operation's route answers with: the payment (capture, void), a
 * refund object (refunds), or the checkout (review decisions). */
typedef enum { GW_OP_SHAPE_PAYMENT, GW_OP_SHAPE_REFUND, GW_OP_SHAPE_CHECKOUT } gw_op_shape_t;
/* The answer to an operation whose state is known, the same whether the
 * request itself or the recovery worker gets there: "failed" is an error
 * (503 providers_unavailable when no provider answered, else 409
 * invalid_state); otherwise 200, or 202 while "unknown", with the shape's
 * object. Returns the body (malloc'd), NULL if the database failed. c may
 * be NULL when state is "failed". */
char *gw_op_render(db_conn_t *c, const char *merchant_id, const char *payment_id, const gw_op_t *op,
                   const char *state, const prv_result_t *res, gw_op_shape_t shape,
                   int *status) PC_WUR;

/* The recovery worker (gateway/recovery.c). */
int gw_recovery_start(void) PC_WUR;
void gw_recovery_stop(void);
/* One pass (tests and start-up): finishes what it can; returns items handled. */
int gw_recovery_run_once(void);

#endif
