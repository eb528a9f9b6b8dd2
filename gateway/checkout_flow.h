/* gateway/checkout: finishing checkouts from outcomes (internal). */
#ifndef PORTCULLIS_CHECKOUT_FLOW_H
#define PORTCULLIS_CHECKOUT_FLOW_H

#include "gateway/checkout_db.h"
#include "gateway/payments.h"
#include "fraud/fraud.h"

typedef struct {
    const char *checkout_id;
    int64_t amount;
    bool review;      /* fraud said review: authorize only, hold for a decision */
    int attempt_seq;  /* the attempt whose result this is */
    const char *provider;
    const fraud_key_hashes_t *velocity; /* decline counters; NULL to skip */
} gw_finish_ctx_t;

typedef struct {
    gwdb_checkout_finish_t f;
    char order_id[IDS_MAX];
    char *error;
    bool declined;
} gw_finish_plan_t;

/* Maps a provider result to the finish of a checkout. */
void gw_finish_plan(const gw_finish_ctx_t *fc, const prv_result_t *res, gw_finish_plan_t *pl);
void gw_finish_plan_free(gw_finish_plan_t *pl);
/* Runs a planned finish in one transaction (plus decline counters). */
db_status_t gw_finish_run(const gw_finish_ctx_t *fc, gw_finish_plan_t *pl,
                          gwdb_finish_result_t *out) PC_WUR;
db_status_t gw_checkout_finish_outcome(const gw_finish_ctx_t *fc, const prv_result_t *res,
                                       gwdb_finish_result_t *out) PC_WUR;
/* Ends a checkout before any provider call (out of stock, inventory down). */
db_status_t gw_checkout_finish_early(const char *checkout_id, const char *status, int http,
                                     err_code_t e, json_t *extra, const char *reservation,
                                     gwdb_finish_result_t *out) PC_WUR;

#endif
