/* POST /v1/merchant: update the calling merchant's settings (its name). */
#include "gateway/handlers/handlers.h"
#include "gateway/db/gwdb.h"
#include "pci/audit.h"
#include <stdio.h>

typedef struct {
    const char *merchant_id;
    const char *name;
    const char *key_id;
    gwdb_merchant_t out;
} rename_t;

static db_status_t rename_txn(db_conn_t *c, void *cls)
{
    rename_t *r = cls;
    db_status_t s = db_merchant_rename(c, r->merchant_id, r->name);
    if (s != DB_OK)
        return s;
    char actor[IDS_MAX + 8];
    snprintf(actor, sizeof actor, "key:%s", r->key_id);
    audit_event_t ev = {.actor = actor, .action = "merchant.update",
                        .merchant_id = r->merchant_id, .object = r->merchant_id};
    s = audit_append(c, &ev);
    return s == DB_OK ? db_merchant_get(c, r->merchant_id, &r->out) : s;
}

enum MHD_Result handle_merchant_post(gw_request_t *rq)
{
    rename_t r = {.merchant_id = rq->auth.merchant_id, .key_id = rq->auth.key_id};
    const jspec_field_t spec[] = {
        JSPEC_STR("name", JSPEC_REQUIRED, 1, 200, &r.name),
        JSPEC_END,
    };
    jspec_error_t je;
    if (!jspec_parse(rq->json, spec, "", &je))
        return gw_reply_jspec(rq, &je);
    if (!str_is_printable(r.name))
        return gw_reply_error(rq, ERR_PARAMETER_INVALID, "name",
                              "name must contain printable ASCII characters only.");
    db_status_t s = db_txn_run(gw.db, DB_READ_COMMITTED, "merchant_rename", rename_txn, &r);
    if (s != DB_OK)
        return gw_reply_db(rq, s);
    return gw_reply_json(rq, 200,
                         json_pack("{s:s, s:s, s:s, s:s}", "object", "merchant", "id", r.out.id,
                                   "name", r.out.name, "created", r.out.created));
}
