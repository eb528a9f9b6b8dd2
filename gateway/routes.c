/* The route table: every endpoint of gatewayd in one place, with the key
 * roles that may call it and whether it takes a JSON body. */
#include "gateway/gateway.h"
#include "gateway/handlers/handlers.h"

#define PK GW_ROLE_PK
#define SK GW_ROLE_SK
#define AK GW_ROLE_AK

const gw_route_t gw_routes[] = {
    {"GET", "/healthz", handle_healthz_get, 0, GW_BODY_NONE},
    {"GET", "/readyz", handle_readyz_get, 0, GW_BODY_NONE},
    {"GET", "/metrics", handle_metrics_get, 0, GW_BODY_NONE},
    {"GET", "/v1/merchant", handle_merchant_get, SK, GW_BODY_NONE},
    {"POST", "/v1/merchant", handle_merchant_post, SK, GW_BODY_REQUIRED},
    {"POST", "/v1/tokens", handle_tokens_post, PK | SK, GW_BODY_REQUIRED},
    {"GET", "/v1/fraud/rules", handle_fraud_rules_get, SK, GW_BODY_NONE},
    {"PUT", "/v1/fraud/rules", handle_fraud_rules_put, SK, GW_BODY_REQUIRED},
    {"POST", "/v1/checkouts", handle_checkouts_post, PK | SK, GW_BODY_REQUIRED},
    {"GET", "/v1/checkouts/{id}", handle_checkouts_get, PK | SK, GW_BODY_NONE},
    {"POST", "/v1/checkouts/{id}/review", handle_checkouts_review_post, SK, GW_BODY_REQUIRED},
    {"GET", "/v1/reviews", handle_reviews_get, SK, GW_BODY_NONE},
    {"POST", "/v1/payments/{id}/capture", handle_payments_capture_post, SK, GW_BODY_OPTIONAL},
    {"POST", "/v1/payments/{id}/void", handle_payments_void_post, SK, GW_BODY_OPTIONAL},
    {"POST", "/v1/payments/{id}/refunds", handle_payments_refunds_post, SK, GW_BODY_OPTIONAL},
    {"PUT", "/v1/providers/{name}", handle_providers_put, SK, GW_BODY_REQUIRED},
    {"GET", "/v1/providers", handle_providers_get, SK, GW_BODY_NONE},
    {"PUT", "/v1/routing", handle_routing_put, SK, GW_BODY_REQUIRED},
    {"GET", "/v1/routing", handle_routing_get, SK, GW_BODY_NONE},
    {"PUT", "/v1/webhooks/{id}", handle_webhooks_put, SK, GW_BODY_REQUIRED},
    {"GET", "/v1/webhooks", handle_webhooks_get, SK, GW_BODY_NONE},
    {"GET", "/v1/events", handle_events_get, SK, GW_BODY_NONE},
    {"POST", "/v1/events/{id}/redeliver", handle_events_redeliver_post, SK, GW_BODY_OPTIONAL},
};

const size_t gw_nroutes = PC_ARRAY_LEN(gw_routes);
