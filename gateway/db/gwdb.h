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

#endif
