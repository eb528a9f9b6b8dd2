/* gateway/recovery: rows the recovery worker claims (internal). */
#ifndef PORTCULLIS_RECOVERY_DB_H
#define PORTCULLIS_RECOVERY_DB_H

#include "gateway/payment_ops.h"

typedef struct {
    char id[IDS_MAX], merchant_id[IDS_MAX], status[16], payment_id[IDS_MAX];
    int64_t amount;
    char currency[4], token[72], fraud_decision[16], brand[16], country[3];
    bool capture, has_attempt;
    int attempt_seq;
    char provider[PRV_NAME_MAX], attempt_key[PRV_KEY_MAX], attempt_state[16], provider_ref[128];
    int64_t attempt_age_s; /* since the last attempt was recorded */
} gw_stale_checkout_t;

typedef struct {
    gw_op_t op;
    char merchant_id[IDS_MAX];
    char payment_id[IDS_MAX];
} gw_stale_op_t;

db_status_t db_recovery_claim_checkouts(db_conn_t *c, int limit, int lease_s,
                                        gw_stale_checkout_t **out, int *n) PC_WUR;
db_status_t db_recovery_claim_ops(db_conn_t *c, int limit, int age_s, gw_stale_op_t **out,
                                  int *n) PC_WUR;

#endif
