/* PUT /v1/fraud/rules: replaces the calling merchant's fraud rules document
 * after full validation (400 naming the rule and the field), audited, and
 * announced to every gatewayd in the same transaction so the next checkout
 * on any instance scores with it. */
#include "gateway/handlers/handlers.h"
#include "gateway/db/gwdb.h"
#include "pci/audit.h"
#include <stdio.h>

typedef struct {
    const char *merchant_id;
    const char *key_id;
    json_t *doc;
    size_t nrules;
    int64_t expected;
    int64_t version;
    char updated[40];
} put_t;

static db_status_t put_txn(db_conn_t *c, void *cls)
{
    put_t *p = cls;
    char actor[IDS_MAX + 8];
    snprintf(actor, sizeof actor, "key:%s", p->key_id);
    db_status_t s =
        db_fraud_rules_put(c, p->merchant_id, p->doc, actor, p->expected, &p->version, p->updated);
    if (s != DB_OK)
        return s;
    json_t *detail =
        json_pack("{s:I, s:I}", "version", (json_int_t)p->version, "rules", (json_int_t)p->nrules);
    audit_event_t ev = {.actor = actor,
                        .action = "fraud.rules.update",
                        .merchant_id = p->merchant_id,
                        .object = "fraud_rules",
                        .detail = detail};
    s = audit_append(c, &ev);
    json_decref(detail);
    return s == DB_OK ? db_config_notify(c, "fraud_rules") : s;
}

/* The keys GET adds ("object", "version", "updated", "default") are
 * accepted back, so a GET body can be edited and PUT; "version", when
 * given, must be the stored one (optimistic concurrency). */
static bool strip_meta(gw_request_t *rq, json_t *doc, int64_t *expected, enum MHD_Result *reply)
{
    const json_t *v = json_object_get(doc, "version");
    *expected = -1;
    if (v && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
            *reply = gw_reply_error(rq, ERR_PARAMETER_INVALID, "version",
                                    "version must be the integer version the document was read "
                                    "at (0 for the default set).");
            return false;
        }
        *expected = json_integer_value(v);
    }
    json_object_del(doc, "version");
    json_object_del(doc, "object");
    json_object_del(doc, "updated");
    json_object_del(doc, "default");
    return true;
}

enum MHD_Result handle_fraud_rules_put(gw_request_t *rq)
{
    put_t p = {.merchant_id = rq->auth.merchant_id, .key_id = rq->auth.key_id};
    enum MHD_Result reply;
    p.doc = json_deep_copy(rq->json);
    if (!p.doc)
        return gw_reply_error(rq, ERR_INTERNAL, NULL, NULL);
    if (!strip_meta(rq, p.doc, &p.expected, &reply)) {
        json_decref(p.doc);
        return reply;
    }
    fraud_rules_error_t e;
    fraud_rules_t *r = fraud_rules_parse(p.doc, 0, &e);
    if (!r) {
        char msg[600];
        fraud_rules_error_message(&e, msg, sizeof msg);
        json_decref(p.doc);
        return gw_reply_error(rq, e.code, e.param, msg);
    }
    p.nrules = fraud_rules_count(r);
    fraud_rules_release(r);
    db_status_t s = db_txn_run(gw.db, DB_READ_COMMITTED, "fraud_rules_put", put_txn, &p);
    if (s == DB_CONFLICT) {
        json_decref(p.doc);
        return gw_reply_error(rq, ERR_INVALID_STATE, "version",
                              "The fraud rules changed since that version was read; GET them "
                              "again and reapply your change.");
    }
    if (s != DB_OK) {
        json_decref(p.doc);
        return gw_reply_db(rq, s);
    }
    gw_fraud_rules_forget(p.merchant_id); /* other instances: the notice */
    json_t *body = fraud_rules_body(p.doc, p.version, p.updated, false);
    json_decref(p.doc);
    return gw_reply_json(rq, 200, body);
}
