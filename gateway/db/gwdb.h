/* gateway/db: one function per database operation, each with its prepared
 * statement beside it. Handlers call these; they never hold SQL. */
#ifndef PORTCULLIS_GWDB_H
#define PORTCULLIS_GWDB_H

#include "util/util.h"

typedef struct {
    char id[IDS_MAX];
    char name[256];
    char created[40];
} gwdb_merchant_t;

typedef struct {
    char key_id[IDS_MAX];
    char merchant_id[IDS_MAX];
    char role[4];
    bool revoked;
    int64_t expires_at; /* unix seconds, 0 = never */
} gwdb_apikey_t;

db_status_t db_merchant_get(db_conn_t *c, const char *id, gwdb_merchant_t *out) PC_WUR;
db_status_t db_merchant_insert(db_conn_t *c, const char *id, const char *name) PC_WUR;
db_status_t db_merchant_rename(db_conn_t *c, const char *id, const char *name) PC_WUR;
db_status_t db_apikey_lookup(db_conn_t *c, const unsigned char hash[32], gwdb_apikey_t *out) PC_WUR;
db_status_t db_apikey_insert(db_conn_t *c, const char *id, const char *merchant_id,
                             const char *role, const unsigned char hash[32],
                             const char *display) PC_WUR;
/* Revokes one key now. DB_NOT_FOUND if no such (unrevoked) key. */
db_status_t db_apikey_revoke(db_conn_t *c, const char *key_id) PC_WUR;
/* Sets an expiry on every live key of a role (rotation grace). Returns the
 * number of keys touched in *n. */
db_status_t db_apikey_expire_role(db_conn_t *c, const char *merchant_id, const char *role,
                                  int64_t grace_s, const char *except_id, int *n) PC_WUR;
/* Lists a merchant's keys as a JSON array (id, role, display, status...). */
db_status_t db_apikey_list(db_conn_t *c, const char *merchant_id, json_t **out) PC_WUR;
/* NOTIFY portcullis_config so every gatewayd flushes its caches. */
db_status_t db_config_notify(db_conn_t *c, const char *what) PC_WUR;
db_status_t db_ping(db_conn_t *c) PC_WUR;

/* ------------------------------------------------------------------------
 * Fraud (issue 6): each merchant's rules document (gateway.fraud_rules),
 * the cached parsed rules every checkout scores with, and the BIN table.
 * ---------------------------------------------------------------------- */
#include "fraud/fraud.h"

/* The stored document (caller json_decref()s), its version and update time
 * (RFC 3339). DB_NOT_FOUND when the merchant never stored one. */
db_status_t db_fraud_rules_get(db_conn_t *c, const char *merchant_id, json_t **doc,
                               int64_t *version, char updated[40]) PC_WUR;
/* Replaces the document when the stored version is still `expected`
 * (0 = none stored yet, -1 = whatever is stored); *version and updated =
 * the new version and its time.
 * DB_CONFLICT when someone else changed it first. */
db_status_t db_fraud_rules_put(db_conn_t *c, const char *merchant_id, const json_t *doc,
                               const char *updated_by, int64_t expected, int64_t *version,
                               char updated[40]) PC_WUR;

/* Loads the BIN table (bin_file, or the built-in one when NULL) and creates
 * the rules cache; call once at start-up. */
int gw_fraud_init(const char *bin_file, char *err, size_t errlen) PC_WUR;
void gw_fraud_shutdown(void);
/* The BIN table loaded at start-up (never NULL after gw_fraud_init). */
const fraud_bins_t *gw_fraud_bins(void);
/* The merchant's parsed rules as the checkout must apply them: from this
 * instance's cache while no change notice arrived (gw_config_generation)
 * and the cached version is at least min_version (-1: any), else read on
 * `c`. The default set when the merchant stored none. *out is a reference:
 * fraud_rules_release it. */
db_status_t gw_fraud_rules(db_conn_t *c, const char *merchant_id, int64_t min_version,
                           fraud_rules_t **out) PC_WUR;
/* Drops this instance's cached copy at once (after a PUT on this instance). */
void gw_fraud_rules_forget(const char *merchant_id);
/* Everything the checkout needs in one call, on its connection (inside or
 * outside its transaction): loads f->velocity for the features' keys (one
 * query, which also returns the merchant's current rules version), takes
 * the merchant's rules (reloaded only if that version is newer than the
 * cached one) and scores. Record the attempt afterwards with
 * fraud_velocity_record in the transaction that stores the decision. */
db_status_t gw_fraud_assess(db_conn_t *c, const char *merchant_id, fraud_features_t *f,
                            fraud_result_t *out) PC_WUR;
typedef struct {
    char *url;
    char *events_text; /* PostgreSQL array text */
    bool enabled;
    char *secret_sealed;
} gwdb_webhook_t;

/* Locks one endpoint row for update (in a transaction). */
db_status_t db_webhook_lock(db_conn_t *c, const char *merchant_id, const char *id,
                            gwdb_webhook_t *out) PC_WUR;
void gwdb_webhook_free(gwdb_webhook_t *w);
db_status_t db_webhook_insert(db_conn_t *c, const char *merchant_id, const char *id,
                              const char *url, const char *events_array, bool enabled,
                              const char *sealed) PC_WUR;
/* new_sealed NULL keeps the secret; otherwise the old one stays valid for
 * overlap_s seconds and deliveries carry both signatures meanwhile. */
db_status_t db_webhook_update(db_conn_t *c, const char *merchant_id, const char *id,
                              const char *url, const char *events_array, bool enabled,
                              const char *new_sealed, int64_t overlap_s) PC_WUR;
db_status_t db_webhook_list(db_conn_t *c, const char *merchant_id, json_t **out) PC_WUR;

typedef struct {
    char name[72];
    char *config; /* provider document without credentials (JSON text) */
    char *sealed; /* credentials sealed by the vault */
} gwdb_provider_row_t;

/* Creates or replaces a provider; sealed NULL keeps the stored credentials. */
db_status_t db_provider_upsert(db_conn_t *c, const char *merchant_id, const char *name,
                               const char *type, const char *config_json, const char *sealed,
                               bool *created) PC_WUR;
db_status_t db_providers_load(db_conn_t *c, const char *merchant_id, gwdb_provider_row_t **rows,
                              int *n) PC_WUR;
void gwdb_provider_rows_free(gwdb_provider_row_t *rows, int n);
db_status_t db_routing_put(db_conn_t *c, const char *merchant_id, const char *doc) PC_WUR;
db_status_t db_routing_get(db_conn_t *c, const char *merchant_id, char **doc) PC_WUR;

#endif
