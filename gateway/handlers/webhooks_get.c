/* GET /v1/webhooks: the merchant's webhook endpoints (never their secrets). */
#include "gateway/handlers/handlers.h"
#include "gateway/db/gwdb.h"

enum MHD_Result handle_webhooks_get(gw_request_t *rq)
{
    db_conn_t *c = db_pool_acquire(gw.db);
    json_t *list = NULL;
    db_status_t s = c ? db_webhook_list(c, rq->auth.merchant_id, &list) : DB_UNAVAILABLE;
    db_pool_release(c);
    if (s != DB_OK)
        return gw_reply_db(rq, s);
    return gw_reply_json(rq, 200, json_pack("{s:s, s:o}", "object", "list", "data", list));
}
