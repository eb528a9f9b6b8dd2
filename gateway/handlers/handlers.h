/* gateway/handlers: one HTTP endpoint per file, named after route and method. */
#ifndef PORTCULLIS_HANDLERS_H
#define PORTCULLIS_HANDLERS_H

#include "gateway/gateway.h"

enum MHD_Result handle_healthz_get(gw_request_t *rq);
enum MHD_Result handle_readyz_get(gw_request_t *rq);
enum MHD_Result handle_metrics_get(gw_request_t *rq);
enum MHD_Result handle_merchant_get(gw_request_t *rq);
enum MHD_Result handle_merchant_post(gw_request_t *rq);
enum MHD_Result handle_tokens_post(gw_request_t *rq);

#endif
