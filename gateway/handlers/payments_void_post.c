/* POST /v1/payments/{id}/void: release an authorization that was not captured. */
#include "gateway/handlers/payment_op_common.h"

enum MHD_Result handle_payments_void_post(gw_request_t *rq)
{
    return gw_payment_op_handle(rq, GW_OP_VOID);
}
