/* POST /v1/events/{id}/redeliver: queue the event again for every endpoint
 * subscribed to it, with the same event id. */
#include "gateway/handlers/handlers.h"
#include "gateway/checkout.h"
#include "pci/audit.h"
#include <stdio.h>

typedef struct {
    const char *merchant_id, *event_id, *key_id;
    int queued;
} redeliver_t;

static db_status_t redeliver_txn(db_conn_t *c, void *cls)
{
    redeliver_t *r = cls;
    db_status_t s = db_event_redeliver(c, r->merchant_id, r->event_id, &r->queued);
    if (s != DB_OK)
        return s;
    char actor[IDS_MAX + 8];
    snprintf(actor, sizeof actor, "key:%s", r->key_id);
    audit_event_t ev = {.actor = actor, .action = "event.redeliver",
                        .merchant_id = r->merchant_id, .object = r->event_id};
    return audit_append(c, &ev);
}

enum MHD_Result handle_events_redeliver_post(gw_request_t *rq)
{
    redeliver_t r = {.merchant_id = rq->auth.merchant_id, .event_id = rq->params[0],
                     .key_id = rq->auth.key_id};
    db_status_t s = db_txn_run(gw.db, DB_READ_COMMITTED, "event_redeliver", redeliver_txn, &r);
    if (s != DB_OK)
        return gw_reply_db(rq, s);
    gw_outbox_kick();
    return gw_reply_json(rq, 202, json_pack("{s:s, s:s, s:i}", "object", "redelivery", "event",
                                            r.event_id, "queued", r.queued));
}
