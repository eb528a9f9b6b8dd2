/* PUT /v1/providers/{name}: create or replace one of the merchant's payment
 * providers. Credentials are sealed in the vault before anything is stored;
 * they are never returned and never logged. Every instance reloads the
 * merchant's providers at once (configuration notice). */
#include "gateway/handlers/handlers.h"
#include "gateway/checkout.h"
#include "gateway/payments.h"
#include "gateway/db/gwdb.h"
#include "pci/audit.h"
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *merchant_id, *name, *key_id, *type;
    char *config_json, *sealed;
    bool created;
} prov_put_t;

static db_status_t put_txn(db_conn_t *c, void *cls)
{
    prov_put_t *x = cls;
    /* without credentials only an existing provider can change (DB_NOT_FOUND
     * otherwise: a new provider needs credentials) */
    db_status_t s = db_provider_upsert(c, x->merchant_id, x->name, x->type, x->config_json,
                                       x->sealed, &x->created);
    if (s != DB_OK)
        return s;
    char actor[IDS_MAX + 8];
    snprintf(actor, sizeof actor, "key:%s", x->key_id);
    json_t *detail = json_pack("{s:s, s:b}", "type", x->type, "credentials_changed",
                               x->sealed != NULL);
    audit_event_t ev = {.actor = actor, .action = x->created ? "provider.create" : "provider.update",
                        .merchant_id = x->merchant_id, .object = x->name, .detail = detail};
    s = audit_append(c, &ev);
    json_decref(detail);
    return s == DB_OK ? db_config_notify(c, "providers") : s;
}

static enum MHD_Result reply_provider(gw_request_t *rq, const char *name, unsigned status)
{
    gw_providers_cache_clear();
    gw_providers_t *ps = NULL;
    if (gw_providers_get(rq->auth.merchant_id, &ps) != DB_OK)
        return gw_reply_json(rq, status, json_pack("{s:s, s:s}", "object", "provider", "name", name));
    const prv_config_t *cfg = gw_providers_find(ps, name);
    json_t *j = cfg ? prv_config_json(cfg) : json_pack("{s:s}", "name", name);
    if (cfg)
        json_object_set_new(j, "health", prv_health_json(rq->auth.merchant_id, name));
    gw_providers_release(ps);
    return gw_reply_json(rq, status, j);
}

enum MHD_Result handle_providers_put(gw_request_t *rq)
{
    prov_put_t x = {.merchant_id = rq->auth.merchant_id, .name = rq->params[0],
                    .key_id = rq->auth.key_id};
    prv_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    const json_t *creds = NULL;
    jspec_error_t je;
    if (!prv_provider_doc_parse(x.name, rq->json, &cfg, &creds, &je))
        return gw_reply_jspec(rq, &je);
    x.type = cfg.type;
    /* what is stored in the clear: the document minus its credentials */
    json_t *clear = json_deep_copy(rq->json);
    json_object_del(clear, "credentials");
    x.config_json = json_dumps_compact(clear);
    json_decref(clear);
    if (creds) {
        char *blob = json_dumps_compact(creds);
        char ctx[100];
        snprintf(ctx, sizeof ctx, "provider:%s", x.name);
        int rc = gw_secret_seal(x.merchant_id, ctx, blob, strlen(blob), &x.sealed);
        sodium_memzero(blob, strlen(blob));
        free(blob);
        if (rc != 0) {
            free(x.config_json);
            prv_config_clear(&cfg);
            return gw_reply_error(rq, ERR_VAULT_UNAVAILABLE, NULL, NULL);
        }
    }
    prv_config_clear(&cfg);
    db_status_t s = db_txn_run(gw.db, DB_READ_COMMITTED, "provider_put", put_txn, &x);
    free(x.config_json);
    free(x.sealed);
    if (s == DB_NOT_FOUND)
        return gw_reply_error(rq, ERR_PARAMETER_MISSING, "credentials",
                              "A new provider needs its credentials.");
    if (s != DB_OK)
        return gw_reply_db(rq, s);
    return reply_provider(rq, x.name, x.created ? 201 : 200);
}
