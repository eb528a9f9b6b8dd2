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
enum MHD_Result handle_fraud_rules_get(gw_request_t *rq);
enum MHD_Result handle_fraud_rules_put(gw_request_t *rq);
/* A rules document as GET and PUT return it (doc + object, version, updated, default). */
json_t *fraud_rules_body(const json_t *doc, int64_t version, const char *updated, bool is_default);

enum MHD_Result handle_webhooks_put(gw_request_t *rq);
enum MHD_Result handle_webhooks_get(gw_request_t *rq);
enum MHD_Result handle_events_get(gw_request_t *rq);
enum MHD_Result handle_events_redeliver_post(gw_request_t *rq);
enum MHD_Result handle_checkouts_get(gw_request_t *rq);

enum MHD_Result handle_providers_put(gw_request_t *rq);
enum MHD_Result handle_providers_get(gw_request_t *rq);
enum MHD_Result handle_routing_put(gw_request_t *rq);
enum MHD_Result handle_routing_get(gw_request_t *rq);
enum MHD_Result handle_checkouts_post(gw_request_t *rq);
enum MHD_Result handle_payments_capture_post(gw_request_t *rq);
enum MHD_Result handle_payments_void_post(gw_request_t *rq);
enum MHD_Result handle_payments_refunds_post(gw_request_t *rq);
enum MHD_Result handle_reviews_get(gw_request_t *rq);
enum MHD_Result handle_checkouts_review_post(gw_request_t *rq);

#endif
