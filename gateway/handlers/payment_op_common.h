/* gateway/handlers: what the payment-operation handlers (capture, void,
 * refunds) and the review decision share: the optional Idempotency-Key. */
#ifndef PORTCULLIS_PAYMENT_OP_COMMON_H
#define PORTCULLIS_PAYMENT_OP_COMMON_H

#include "gateway/handlers/handlers.h"
#include "gateway/payment_ops.h"

enum MHD_Result gw_payment_op_handle(gw_request_t *rq, gw_op_kind_t kind);
/* Claims k (when present) for resource; false when the reply is already
 * made (*r: another request holds the key, or the database failed). */
bool gw_op_idem_claim(gw_request_t *rq, const gw_idem_t *k, const char *resource,
                      enum MHD_Result *r) PC_WUR;
/* Replies with body (taken) and stores it as k's answer when k is present. */
enum MHD_Result gw_op_answer(gw_request_t *rq, const gw_idem_t *k, int status, char *body);
enum MHD_Result gw_op_answer_error(gw_request_t *rq, const gw_idem_t *k, err_code_t e,
                                   const char *param, const char *msg);
/* Replies to a finished call with gw_op_render's answer, stored under k. */
enum MHD_Result gw_op_answer_rendered(gw_request_t *rq, const gw_idem_t *k, const gw_op_t *op,
                                      const char *state, const prv_result_t *res,
                                      gw_op_shape_t shape);

#endif
