/* POST /v1/payments/{id}/void: release an authorization that was not captured. */
#include "gateway/handlers/handlers.h"
#include "gateway/payment_ops.h"

enum MHD_Result gw_payment_op_handle(gw_request_t *rq, gw_op_kind_t kind);

enum MHD_Result handle_payments_void_post(gw_request_t *rq)
{
    return gw_payment_op_handle(rq, GW_OP_VOID);
}
