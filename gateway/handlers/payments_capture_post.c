/* POST /v1/payments/{id}/capture: capture an authorized payment, fully or partly ({"amount": n}). */
#include "gateway/handlers/payment_op_common.h"

enum MHD_Result handle_payments_capture_post(gw_request_t *rq)
{
    return gw_payment_op_handle(rq, GW_OP_CAPTURE);
}
