/* POST /v1/payments/{id}/refunds: refund a captured payment, fully or partly; refunds never exceed the capture. */
#include "gateway/handlers/payment_op_common.h"

enum MHD_Result handle_payments_refunds_post(gw_request_t *rq)
{
    return gw_payment_op_handle(rq, GW_OP_REFUND);
}
