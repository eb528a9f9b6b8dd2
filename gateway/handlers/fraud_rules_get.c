/* GET /v1/fraud/rules: the calling merchant's fraud rules document as
 * stored, or the default set when it never stored one, with its version. */
#include "gateway/handlers/handlers.h"
#include "gateway/db/gwdb.h"

json_t *fraud_rules_body(const json_t *doc, int64_t version, const char *updated, bool is_default)
{
    json_t *body = fraud_rules_doc_complete(doc); /* "{}" shows what applies */
    if (!body)
        return NULL;
    json_object_set_new(body, "object", json_string("fraud_rules"));
    json_object_set_new(body, "version", json_integer(version));
    json_object_set_new(body, "updated", updated && *updated ? json_string(updated) : json_null());
    json_object_set_new(body, "default", json_boolean(is_default));
    return body;
}

enum MHD_Result handle_fraud_rules_get(gw_request_t *rq)
{
    db_conn_t *c = db_pool_acquire(gw.db);
    if (!c)
        return gw_reply_db(rq, DB_UNAVAILABLE);
    json_t *doc = NULL;
    int64_t version = 0;
    char updated[40] = "";
    db_status_t s = db_fraud_rules_get(c, rq->auth.merchant_id, &doc, &version, updated);
    db_pool_release(c);
    if (s == DB_NOT_FOUND)
        return gw_reply_json(rq, 200, fraud_rules_body(fraud_rules_default_doc(), 0, NULL, true));
    if (s != DB_OK) {
        json_decref(doc);
        return gw_reply_db(rq, s);
    }
    json_t *body = fraud_rules_body(doc, version, updated, false);
    json_decref(doc);
    return gw_reply_json(rq, 200, body);
}
