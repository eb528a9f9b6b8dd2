/* GET /v1/events?after=<event id>&type=<type>&limit=<n>: the merchant's
 * events, oldest first, for catching up after missed deliveries. */
#include "gateway/handlers/handlers.h"
#include "gateway/checkout.h"
#include <stdlib.h>
#include <string.h>

enum MHD_Result handle_events_get(gw_request_t *rq)
{
    const char *after = MHD_lookup_connection_value(rq->con, MHD_GET_ARGUMENT_KIND, "after");
    const char *type = MHD_lookup_connection_value(rq->con, MHD_GET_ARGUMENT_KIND, "type");
    const char *lim = MHD_lookup_connection_value(rq->con, MHD_GET_ARGUMENT_KIND, "limit");
    long limit = 50;
    if (lim) {
        char *end;
        limit = strtol(lim, &end, 10);
        if (*end || limit < 1 || limit > 100)
            return gw_reply_error(rq, ERR_PARAMETER_INVALID, "limit",
                                  "limit must be an integer between 1 and 100.");
    }
    const char *const args[][2] = {{"after", after}, {"type", type}};
    for (size_t i = 0; i < PC_ARRAY_LEN(args); i++)
        if (args[i][1] && (strlen(args[i][1]) > 64 || !str_is_printable(args[i][1])))
            return gw_reply_error(rq, ERR_PARAMETER_INVALID, args[i][0], NULL);
    db_conn_t *c = db_pool_acquire(gw.db);
    json_t *data = NULL;
    bool more = false;
    db_status_t s = c ? DB_OK : DB_UNAVAILABLE;
    /* an unknown cursor (a typo, another merchant's event) must not quietly
     * start the list over from the first event */
    if (s == DB_OK && after)
        s = db_event_exists(c, rq->auth.merchant_id, after);
    if (s == DB_OK)
        s = db_events_list(c, rq->auth.merchant_id, after, type, (int)limit, &data, &more);
    db_pool_release(c);
    if (s == DB_NOT_FOUND)
        return gw_reply_error(rq, ERR_PARAMETER_INVALID, "after",
                              "after must be the id of one of your events.");
    if (s != DB_OK)
        return gw_reply_db(rq, s);
    return gw_reply_json(rq, 200, json_pack("{s:s, s:o, s:b}", "object", "list", "data", data,
                                            "has_more", more));
}
