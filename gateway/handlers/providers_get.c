/* GET /v1/providers: the merchant's providers with live health (circuit
 * state, success rate, p50 latency); never their credentials. */
#include "gateway/handlers/handlers.h"
#include "gateway/payments.h"

enum MHD_Result handle_providers_get(gw_request_t *rq)
{
    gw_providers_t *ps = NULL;
    db_status_t s = gw_providers_get(rq->auth.merchant_id, &ps);
    if (s != DB_OK)
        return gw_reply_db(rq, s);
    json_t *a = json_array();
    for (size_t i = 0; i < ps->n; i++) {
        json_t *j = prv_config_json(&ps->configs[i]);
        json_object_set_new(j, "health", prv_health_json(rq->auth.merchant_id, ps->configs[i].name));
        json_array_append_new(a, j);
    }
    gw_providers_release(ps);
    return gw_reply_json(rq, 200, json_pack("{s:s, s:o}", "object", "list", "data", a));
}
