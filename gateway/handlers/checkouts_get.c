/* GET /v1/checkouts/{id}: the checkout object, for the merchant that owns it;
 * a publishable key (in a shopper's browser) reads only the checkouts it made. */
#include "gateway/handlers/handlers.h"
#include "gateway/checkout_db.h"
#include <stdlib.h>
#include <string.h>

enum MHD_Result handle_checkouts_get(gw_request_t *rq)
{
    db_conn_t *c = db_pool_acquire(gw.db);
    char *body = NULL;
    const char *made_by = rq->auth.role == GW_ROLE_PK ? rq->auth.key_id : NULL;
    db_status_t s = c ? db_checkout_json(c, rq->auth.merchant_id, rq->params[0], made_by, &body)
                      : DB_UNAVAILABLE;
    db_pool_release(c);
    if (s != DB_OK)
        return gw_reply_db(rq, s);
    enum MHD_Result r = gw_reply_raw_hdr(rq, 200, body, strlen(body), NULL, NULL);
    free(body);
    return r;
}
