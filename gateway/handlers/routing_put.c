/* PUT /v1/routing: the merchant's ordered routing rules and default list.
 * Provider names must be ones the merchant has configured. */
#include "gateway/handlers/handlers.h"
#include "gateway/payments.h"
#include "gateway/db/gwdb.h"
#include "pci/audit.h"
#include <stdio.h>
#include <stdlib.h>

typedef struct {
    const char *merchant_id, *key_id;
    char *doc;
} routing_put_t;

static db_status_t put_txn(db_conn_t *c, void *cls)
{
    routing_put_t *x = cls;
    db_status_t s = db_routing_put(c, x->merchant_id, x->doc);
    if (s != DB_OK)
        return s;
    char actor[IDS_MAX + 8];
    snprintf(actor, sizeof actor, "key:%s", x->key_id);
    audit_event_t ev = {.actor = actor, .action = "routing.update", .merchant_id = x->merchant_id,
                        .object = "routing"};
    s = audit_append(c, &ev);
    return s == DB_OK ? db_config_notify(c, "routing") : s;
}

enum MHD_Result handle_routing_put(gw_request_t *rq)
{
    gw_providers_t *ps = NULL;
    db_status_t s = gw_providers_get(rq->auth.merchant_id, &ps);
    if (s != DB_OK)
        return gw_reply_db(rq, s);
    const char **names = calloc(ps->n ? ps->n : 1, sizeof *names);
    for (size_t i = 0; i < ps->n; i++)
        names[i] = ps->configs[i].name;
    jspec_error_t je;
    prv_routing_t *r = prv_routing_parse(rq->json, names, ps->n, &je);
    free(names);
    gw_providers_release(ps);
    if (!r)
        return gw_reply_jspec(rq, &je);
    prv_routing_free(r);
    routing_put_t x = {.merchant_id = rq->auth.merchant_id, .key_id = rq->auth.key_id,
                       .doc = json_dumps_compact(rq->json)};
    s = db_txn_run(gw.db, DB_READ_COMMITTED, "routing_put", put_txn, &x);
    free(x.doc);
    if (s != DB_OK)
        return gw_reply_db(rq, s);
    gw_providers_cache_clear();
    return gw_reply_json(rq, 200, json_pack("{s:s, s:O}", "object", "routing", "routing", rq->json));
}
