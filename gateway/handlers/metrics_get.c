/* GET /metrics: Prometheus text exposition. */
#include "gateway/handlers/handlers.h"
#include <stdlib.h>

enum MHD_Result handle_metrics_get(gw_request_t *rq)
{
    gw_text_t t = {0};
    gw_metrics_render(&t);
    enum MHD_Result r =
        gw_reply_text(rq, 200, "text/plain; version=0.0.4; charset=utf-8", t.buf ? t.buf : "",
                      t.len);
    free(t.buf);
    return r;
}
