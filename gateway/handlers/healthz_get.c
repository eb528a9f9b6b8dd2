/* GET /healthz: the process is up and serving (no dependencies checked). */
#include "gateway/handlers/handlers.h"

enum MHD_Result handle_healthz_get(gw_request_t *rq)
{
    return gw_reply_json(rq, 200, json_pack("{s:s}", "status", "ok"));
}
