/* Fraud rules per merchant (gateway.fraud_rules) and gatewayd's glue to
 * fraud/: the per-instance cache of parsed rules keyed by the change-notice
 * generation and the rules version, the BIN table loaded at start-up, and
 * gw_fraud_assess, the one call a checkout makes before any provider. */
#include "gateway/db/gwdb.h"
#include "gateway/gateway.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- storage */

DB_STMT(fraud_rules_select,
        "SELECT doc::text, version, "
        "to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
        "FROM gateway.fraud_rules WHERE merchant_id = $1");

db_status_t db_fraud_rules_get(db_conn_t *c, const char *merchant_id, json_t **doc,
                               int64_t *version, char updated[40])
{
    *doc = NULL;
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, merchant_id);
    PGresult *r;
    db_status_t s = db_exec(c, &fraud_rules_select, &p, &r);
    if (s != DB_OK)
        return s;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return DB_NOT_FOUND;
    }
    const char *text = db_str(r, 0, 0);
    *doc = text ? json_loads_strict(text, strlen(text), NULL) : NULL;
    *version = db_i64(r, 0, 1);
    snprintf(updated, 40, "%s", db_str(r, 0, 2) ? db_str(r, 0, 2) : "");
    PQclear(r);
    return json_is_object(*doc) ? DB_OK : DB_ERROR;
}

/* One statement for the three cases of `expected`: the INSERT only runs
 * when a first version may be created or a row exists to collide with, and
 * the update only applies when the stored version is the expected one. */
DB_STMT(fraud_rules_upsert,
        "INSERT INTO gateway.fraud_rules AS r (merchant_id, doc, version, updated_by) "
        "SELECT $1, $2::jsonb, 1, $3 WHERE $4::bigint <= 0 "
        "OR EXISTS (SELECT 1 FROM gateway.fraud_rules x WHERE x.merchant_id = $1) "
        "ON CONFLICT (merchant_id) DO UPDATE SET doc = EXCLUDED.doc, version = r.version + 1, "
        "updated_at = now(), updated_by = EXCLUDED.updated_by "
        "WHERE $4::bigint < 0 OR r.version = $4::bigint "
        "RETURNING version, "
        "to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')");

db_status_t db_fraud_rules_put(db_conn_t *c, const char *merchant_id, const json_t *doc,
                               const char *updated_by, int64_t expected, int64_t *version,
                               char updated[40])
{
    char *text = json_dumps_compact(doc);
    if (!text)
        return DB_ERROR;
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, merchant_id);
    db_param_text(&p, text);
    db_param_text(&p, updated_by);
    db_param_int(&p, expected);
    PGresult *r;
    db_status_t s = db_exec(c, &fraud_rules_upsert, &p, &r);
    free(text);
    if (s != DB_OK)
        return s;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return DB_CONFLICT;
    }
    *version = db_i64(r, 0, 0);
    snprintf(updated, 40, "%s", db_str(r, 0, 1) ? db_str(r, 0, 1) : "");
    PQclear(r);
    return DB_OK;
}

/* ------------------------------------------------------------------ cache */

static fraud_rules_cache_t *rules_cache;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static fraud_bins_t *bins;

static void cache_create(void)
{
    rules_cache = fraud_rules_cache_create(4096);
}

static db_status_t rules_load(void *cls, const char *merchant_id, fraud_rules_t **out)
{
    json_t *doc;
    int64_t version;
    char updated[40];
    db_status_t s = db_fraud_rules_get(cls, merchant_id, &doc, &version, updated);
    if (s == DB_NOT_FOUND) {
        *out = fraud_rules_default();
        return *out ? DB_OK : DB_ERROR;
    }
    if (s != DB_OK)
        return s;
    fraud_rules_error_t e;
    *out = fraud_rules_parse(doc, version, &e);
    json_decref(doc);
    if (!*out) {
        /* Only possible when a document stored by an older build uses
         * something this build dropped. Scoring with the default set beats
         * not scoring; the version is kept so it is not reloaded per call. */
        char msg[512];
        fraud_rules_error_message(&e, msg, sizeof msg);
        log_json(LOG_ERROR, "stored fraud rules are invalid; scoring with the default set",
                 json_pack("{s:s, s:s}", "merchant_id", merchant_id, "error", msg));
        *out = fraud_rules_parse(fraud_rules_default_doc(), version, &e);
    }
    return *out ? DB_OK : DB_ERROR;
}

db_status_t gw_fraud_rules(db_conn_t *c, const char *merchant_id, int64_t min_version,
                           fraud_rules_t **out)
{
    pthread_once(&cache_once, cache_create);
    /* Read before the query: a notice arriving meanwhile makes the entry
     * stale at once rather than hiding the change. */
    uint64_t gen = atomic_load(&gw_config_generation);
    if (!rules_cache)
        return rules_load(c, merchant_id, out);
    return fraud_rules_cache_get(rules_cache, merchant_id, gen, min_version, rules_load, c, out);
}

void gw_fraud_rules_forget(const char *merchant_id)
{
    pthread_once(&cache_once, cache_create);
    if (rules_cache)
        fraud_rules_cache_invalidate(rules_cache, merchant_id);
}

/* ------------------------------------------------------------- BINs, init */

int gw_fraud_init(const char *bin_file, char *err, size_t errlen)
{
    pthread_once(&cache_once, cache_create);
    fraud_bins_free(bins);
    bins = bin_file ? fraud_bins_load(bin_file, err, errlen) : fraud_bins_default();
    if (!bins && !bin_file)
        snprintf(err, errlen, "the built-in BIN table is invalid");
    fraud_rules_release(fraud_rules_default()); /* a broken build fails here, not mid-checkout */
    return bins && rules_cache ? 0 : -1;
}

void gw_fraud_shutdown(void)
{
    fraud_bins_free(bins);
    bins = NULL;
    fraud_rules_cache_destroy(rules_cache);
    rules_cache = NULL;
}

const fraud_bins_t *gw_fraud_bins(void)
{
    return bins;
}

/* ----------------------------------------------------------------- assess */

db_status_t gw_fraud_assess(db_conn_t *c, const char *merchant_id, fraud_features_t *f,
                            fraud_result_t *out)
{
    fraud_keys_t k = fraud_keys_of(merchant_id, f);
    db_status_t s = fraud_velocity_load(c, &k, 0, &f->velocity);
    if (s != DB_OK)
        return s;
    fraud_rules_t *r = NULL;
    s = gw_fraud_rules(c, merchant_id, f->velocity.rules_version, &r);
    if (s != DB_OK)
        return s;
    int rc = fraud_score(f, r, out);
    fraud_rules_release(r);
    return rc == 0 ? DB_OK : DB_ERROR;
}
