/* GET /v1/merchant: the calling key's merchant. */
#include "gateway/handlers/handlers.h"
#include "gateway/db/gwdb.h"

enum MHD_Result handle_merchant_get(gw_request_t *rq)
{
    gwdb_merchant_t m;
    db_conn_t *c = db_pool_acquire(gw.db);
    if (!c)
        return gw_reply_db(rq, DB_UNAVAILABLE);
    db_status_t s = db_merchant_get(c, rq->auth.merchant_id, &m);
    db_pool_release(c);
    if (s != DB_OK)
        return gw_reply_db(rq, s);
    return gw_reply_json(rq, 200,
                         json_pack("{s:s, s:s, s:s, s:s}", "object", "merchant", "id", m.id,
                                   "name", m.name, "created", m.created));
}
