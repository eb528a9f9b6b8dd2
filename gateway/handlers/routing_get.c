/* GET /v1/routing: the merchant's routing document; with none, no rules and
 * no default (every enabled provider by priority), which PUT accepts back. */
#include "gateway/handlers/handlers.h"
#include "gateway/payments.h"

enum MHD_Result handle_routing_get(gw_request_t *rq)
{
    gw_providers_t *ps = NULL;
    db_status_t s = gw_providers_get(rq->auth.merchant_id, &ps);
    if (s != DB_OK)
        return gw_reply_db(rq, s);
    json_t *doc = ps->routing_doc ? json_incref(ps->routing_doc) : json_pack("{s:[]}", "rules");
    gw_providers_release(ps);
    return gw_reply_json(rq, 200, json_pack("{s:s, s:o}", "object", "routing", "routing", doc));
}
