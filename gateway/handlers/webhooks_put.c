/* PUT /v1/webhooks/{id}: create or update a webhook endpoint. The signing
 * secret is generated here, returned once (on creation, or when
 * rotate_secret is set) and stored only sealed by the vault. During a
 * rotation the previous secret stays valid for a day and every delivery
 * carries both signatures. */
#include "gateway/handlers/handlers.h"
#include "gateway/checkout.h"
#include "gateway/db/gwdb.h"
#include "gateway/outbox.h"
#include "pci/audit.h"
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROTATION_OVERLAP_S (24 * 3600)

const char *const gw_event_types[] = {
    "order.confirmed",  "checkout.requires_review", "checkout.declined",
    "checkout.failed",  "payment.captured",         "payment.voided",
    "payment.refunded", "order.out_of_stock",       NULL};

typedef struct {
    const char *merchant_id, *id, *key_id;
    const char *url;
    json_t *events;
    bool enabled, enabled_set, rotate;
    char *events_array;
    char secret[64];
    char *sealed;
    bool created, returns_secret, tried_create;
    gwdb_webhook_t old;
} wh_ctx_t;

static void ctx_free(void *p)
{
    wh_ctx_t *x = p;
    free(x->events_array);
    free(x->sealed);
    gwdb_webhook_free(&x->old);
    sodium_memzero(x->secret, sizeof x->secret);
    free(x);
}

static bool id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n < 1 || n > 64)
        return false;
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '.'))
            return false;
    return true;
}

static const char *check_url(const json_t *v)
{
    if (httpc_url_outbound_ok(json_string_value(v), true))
        return NULL;
    return "must be an https:// URL with a host (plain http only to a loopback address), "
           "without spaces, control characters, user or fragment";
}

static const char *check_events(const json_t *v)
{
    size_t i;
    json_t *e;
    json_array_foreach((json_t *)v, i, e)
    {
        const char *s = json_string_value(e);
        if (!s)
            return "must be an array of event type strings";
        bool known = !strcmp(s, "*");
        for (int k = 0; gw_event_types[k] && !known; k++)
            known = !strcmp(gw_event_types[k], s);
        if (!known)
            return "contains an unknown event type";
    }
    return NULL;
}

static void new_secret(wh_ctx_t *x)
{
    unsigned char rnd[32];
    char b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    randombytes_buf(rnd, sizeof rnd);
    sodium_bin2base64(b64, sizeof b64, rnd, sizeof rnd, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    snprintf(x->secret, sizeof x->secret, "whsec_%s", b64);
    sodium_memzero(rnd, sizeof rnd);
    sodium_memzero(b64, sizeof b64);
}

static char *events_literal(const json_t *events)
{
    size_t n = json_array_size(events);
    const char **v = calloc(n ? n : 1, sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = json_string_value(json_array_get(events, i));
    char *out = db_text_array(v, (int)n);
    free(v);
    return out;
}

static db_status_t upsert_txn(db_conn_t *c, void *cls)
{
    wh_ctx_t *x = cls;
    gwdb_webhook_free(&x->old);
    db_status_t s = db_webhook_lock(c, x->merchant_id, x->id, &x->old);
    if (s == DB_OK && x->old.secret_sealed && !strcmp(x->old.secret_sealed, x->sealed)) {
        /* Our own write: db_txn_run re-runs this after a COMMIT whose answer
         * was lost with the connection. The secret made for this request is
         * stored, so this is a create or rotation already done (and audited);
         * doing it again would turn the create into an update that never
         * shows the secret, or rotate the shown secret away. */
        x->created = x->tried_create;
        return DB_OK;
    }
    x->created = s == DB_NOT_FOUND;
    x->tried_create = x->tried_create || x->created;
    const char *action;
    if (x->created) {
        if (!x->url || !x->events_array)
            return DB_NOT_FOUND; /* reported as a missing parameter */
        s = db_webhook_insert(c, x->merchant_id, x->id, x->url, x->events_array,
                              x->enabled_set ? x->enabled : true, x->sealed);
        action = "webhook.create";
    } else if (s == DB_OK) {
        s = db_webhook_update(c, x->merchant_id, x->id, x->url ? x->url : x->old.url,
                              x->events_array ? x->events_array : x->old.events_text,
                              x->enabled_set ? x->enabled : x->old.enabled,
                              x->rotate ? x->sealed : NULL, ROTATION_OVERLAP_S);
        /* disabled: what was still waiting to go there is given up, not sent
         * for days more (the events stay listable and can be redelivered) */
        if (s == DB_OK && x->enabled_set && !x->enabled && x->old.enabled)
            s = db_outbox_cancel_endpoint(c, x->merchant_id, x->id);
        action = x->rotate ? "webhook.rotate_secret" : "webhook.update";
    } else {
        return s;
    }
    if (s != DB_OK)
        return s;
    char actor[IDS_MAX + 8];
    snprintf(actor, sizeof actor, "key:%s", x->key_id);
    audit_event_t ev = {.actor = actor, .action = action, .merchant_id = x->merchant_id,
                        .object = x->id};
    return audit_append(c, &ev);
}

enum MHD_Result handle_webhooks_put(gw_request_t *rq)
{
    wh_ctx_t *x = calloc(1, sizeof *x);
    rq->ctx = x;
    rq->ctx_free = ctx_free;
    x->merchant_id = rq->auth.merchant_id;
    x->key_id = rq->auth.key_id;
    x->id = rq->params[0];
    if (!id_ok(x->id))
        return gw_reply_error(rq, ERR_PARAMETER_INVALID, "id",
                              "The webhook id must be 1 to 64 letters, digits, '.', '_' or '-'.");
    const jspec_field_t spec[] = {
        {.name = "url", .type = JSPEC_STRING, .min = 8, .max = 2048, .dest = &x->url,
         .check = check_url},
        {.name = "events", .type = JSPEC_ARRAY, .min = 1, .max = 32, .dest = &x->events,
         .check = check_events},
        {.name = "enabled", .type = JSPEC_BOOL, .dest = &x->enabled, .present = &x->enabled_set},
        JSPEC_BOOLEAN("rotate_secret", 0, &x->rotate),
        JSPEC_END,
    };
    jspec_error_t je;
    if (!jspec_parse(rq->json, spec, "", &je))
        return gw_reply_jspec(rq, &je);
    if (x->events)
        x->events_array = events_literal(x->events);
    /* A secret is made up front; it is only stored if this is a creation or
     * a rotation (decided under the row lock). */
    new_secret(x);
    if (gw_secret_seal(x->merchant_id, "webhook", x->secret, strlen(x->secret), &x->sealed) != 0)
        return gw_reply_error(rq, ERR_VAULT_UNAVAILABLE, NULL, NULL);
    db_status_t s = db_txn_run(gw.db, DB_READ_COMMITTED, "webhook_put", upsert_txn, x);
    if (s == DB_NOT_FOUND)
        return gw_reply_error(rq, ERR_PARAMETER_MISSING, x->url ? "events" : "url",
                              "A new webhook endpoint needs url and events.");
    if (s != DB_OK)
        return gw_reply_db(rq, s);
    db_conn_t *c = db_pool_acquire(gw.db);
    json_t *list = NULL;
    s = c ? db_webhook_list(c, x->merchant_id, &list) : DB_UNAVAILABLE;
    db_pool_release(c);
    if (s != DB_OK)
        return gw_reply_db(rq, s);
    json_t *me = NULL;
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e) if (!strcmp(json_string_value(json_object_get(e, "id")), x->id))
        me = json_incref(e);
    json_decref(list);
    if (!me)
        return gw_reply_error(rq, ERR_INTERNAL, NULL, NULL);
    if (x->created || x->rotate)
        json_object_set_new(me, "secret", json_string(x->secret));
    return gw_reply_json(rq, x->created ? 201 : 200, me);
}
