/* POST /v1/payments/{id}/capture: capture an authorized payment, fully or partly ({"amount": n}). */
#include "gateway/handlers/handlers.h"
#include "gateway/payment_ops.h"

enum MHD_Result gw_payment_op_handle(gw_request_t *rq, gw_op_kind_t kind);

enum MHD_Result handle_payments_capture_post(gw_request_t *rq)
{
    return gw_payment_op_handle(rq, GW_OP_CAPTURE);
}
