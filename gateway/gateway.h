/* gateway: gatewayd's HTTP layer (routing, per-request context, replies,
 * authentication, metrics, configuration) shared by its handlers, by
 * gatewayctl and by the tests. The top floor: nothing else includes it. */
#ifndef PORTCULLIS_GATEWAY_H
#define PORTCULLIS_GATEWAY_H

#include "util/util.h"
#include <microhttpd.h>
#include <stdatomic.h>

#define GW_MAX_BODY       (64 * 1024)
#define GW_MAX_HEADER_BYTES (16 * 1024)
#define GW_MAX_PATH_PARAMS 4

/* ------------------------------------------------------------------------
 * Configuration (gatewayd and gatewayctl read the same items).
 * ---------------------------------------------------------------------- */
typedef struct {
    char *listen_address;
    int64_t port;
    char *port_file;
    int64_t max_connections;
    int64_t max_connections_per_ip;
    int64_t connection_timeout_s;
    char *db_conninfo;
    secret_t *db_password;
    int64_t db_pool_size;
    secret_t *api_key_pepper;
    int64_t auth_cache_ttl_s;
    char *log_level;
    char *log_file;
    int64_t shutdown_grace_s;
    char *migrate_conninfo;
    secret_t *migrate_password;
    bool trust_forwarded_for;
    bool allow_loopback_http;
    bool allow_private_networks;
    char *fraud_bin_file; /* BIN range CSV; NULL = the built-in table */
    /* checkout: platform services */
    char *pricing_url;
    char *inventory_url;
    int64_t platform_connect_timeout_ms;
    int64_t platform_timeout_ms;
    int64_t reservation_ttl_s;
    int64_t review_reservation_ttl_s;
    int64_t checkout_lease_s;
    /* outbox and recovery */
    int64_t outbox_workers;
    int64_t outbox_batch;
    int64_t outbox_poll_ms;
    int64_t outbox_retry_base_ms;
    int64_t outbox_retry_max_ms;
    int64_t outbox_max_age_s;
    int64_t outbox_timeout_ms;
    int64_t recovery_interval_ms;
    int64_t idempotency_retention_h;
} gw_config_t;

extern gw_config_t gw_cfg;
extern const cfg_item_t gw_cfg_items[];
extern const size_t gw_cfg_nitems;

/* ------------------------------------------------------------------------
 * Roles and authentication.
 * ---------------------------------------------------------------------- */
typedef enum {
    GW_ROLE_PK = 1u << 0, /* publishable */
    GW_ROLE_SK = 1u << 1, /* merchant secret */
    GW_ROLE_AK = 1u << 2, /* auditor */
} gw_role_t;

#define GW_KEY_RANDOM_CHARS 32 /* 24 random bytes, URL-safe base64: 192 bits */
#define GW_KEY_MAX 64

typedef struct {
    char merchant_id[IDS_MAX];
    char key_id[IDS_MAX];
    gw_role_t role;
} gw_auth_t;

/* Key kind from its prefix ("pk", "sk", "ak"); 0 when malformed. */
gw_role_t gw_key_role(const char *key);
const char *gw_role_name(gw_role_t r);
bool gw_role_parse(const char *s, gw_role_t *out) PC_WUR;
/* A fresh key "<role>_test_<32 chars>". */
void gw_key_generate(gw_role_t role, char out[GW_KEY_MAX]);
/* Keyed BLAKE2b-256 of the key under the pepper; only this is stored. */
void gw_key_hash(const secret_t *pepper, const char *key, unsigned char out[32]);
/* "sk_test_abcd…wxyz" for listings; never enough to use the key. */
void gw_key_display(const char *key, char out[GW_KEY_MAX]);

typedef enum {
    GW_AUTH_OK = 0,
    GW_AUTH_MISSING,
    GW_AUTH_INVALID,
    GW_AUTH_EXPIRED,
    GW_AUTH_UNAVAILABLE, /* database down */
} gw_auth_result_t;

/* Resolves a bearer key: cache first, then the database. */
gw_auth_result_t gw_auth_resolve(db_pool_t *pool, const char *key, gw_auth_t *out) PC_WUR;
void gw_auth_cache_flush(void);

/* Bumped whenever another process announces a configuration change
 * (LISTEN portcullis_config); caches compare it with what they loaded. */
extern atomic_uint_fast64_t gw_config_generation;
int gw_notify_start(void) PC_WUR;
void gw_notify_stop(void);

/* ------------------------------------------------------------------------
 * Requests, routes, replies.
 * ---------------------------------------------------------------------- */
typedef struct gw_request gw_request_t;
typedef enum MHD_Result (*gw_handler_fn)(gw_request_t *rq);

enum {
    GW_BODY_NONE = 0,     /* any body is ignored */
    GW_BODY_OPTIONAL = 1, /* JSON object if present */
    GW_BODY_REQUIRED = 2, /* JSON object required */
};

typedef struct {
    const char *method;
    const char *pattern; /* "/v1/checkouts/{id}" */
    gw_handler_fn fn;
    unsigned roles; /* 0 = no authentication */
    unsigned body;
} gw_route_t;

extern const gw_route_t gw_routes[];
extern const size_t gw_nroutes;

struct gw_request {
    struct MHD_Connection *con;
    const gw_route_t *route;
    int route_idx; /* index in gw_routes, or gw_nroutes when unmatched */
    char method[12];
    char *path;
    char *params[GW_MAX_PATH_PARAMS];
    int nparams;
    char request_id[IDS_MAX];
    char client_ip[64];
    char *body;
    size_t body_len, body_cap;
    bool body_too_large;
    bool early_reply; /* a reply was queued before the body arrived */
    json_t *json;
    gw_auth_t auth;
    bool authed;
    unsigned status;
    int64_t start_us;
    /* handler-owned context with its one cleanup path */
    void *ctx;
    void (*ctx_free)(void *ctx);
};

/* Replies (each queues exactly one response). `body` is stolen. */
enum MHD_Result gw_reply_json(gw_request_t *rq, unsigned status, json_t *body);
enum MHD_Result gw_reply_json_hdr(gw_request_t *rq, unsigned status, json_t *body,
                                  const char *hname, const char *hvalue);
enum MHD_Result gw_reply_text(gw_request_t *rq, unsigned status, const char *ctype,
                              const char *body, size_t len);
/* A JSON body that is already text (a stored idempotent response). */
enum MHD_Result gw_reply_raw_hdr(gw_request_t *rq, unsigned status, const char *json_text,
                                 size_t len, const char *hname, const char *hvalue);
enum MHD_Result gw_reply_error(gw_request_t *rq, err_code_t e, const char *param,
                               const char *message);
enum MHD_Result gw_reply_jspec(gw_request_t *rq, const jspec_error_t *je);
enum MHD_Result gw_reply_db(gw_request_t *rq, db_status_t s);
const char *gw_header(gw_request_t *rq, const char *name);

/* Server lifecycle. */
typedef struct {
    db_pool_t *db;
    atomic_bool shutting_down;
    atomic_int in_flight;
} gw_state_t;
extern gw_state_t gw;

int gw_server_start(void) PC_WUR;
/* Stops accepting, waits for in-flight requests (up to the grace period),
 * then stops the daemon. */
void gw_server_stop(void);
uint16_t gw_server_port(void);

/* Readiness checks beyond the database, added by later subsystems. */
typedef bool (*gw_ready_fn)(const char **name, char *why, size_t whylen);
void gw_ready_add(gw_ready_fn fn);

/* ------------------------------------------------------------------------
 * Metrics (Prometheus text).
 * ---------------------------------------------------------------------- */
void gw_metrics_observe(int route_idx, const char *method, unsigned status, int64_t dur_us);
/* Appends the exposition text to a growing buffer. */
typedef struct {
    char *buf;
    size_t len, cap;
} gw_text_t;
void gw_text_printf(gw_text_t *t, const char *fmt, ...) PC_PRINTF(2, 3);
typedef void (*gw_metrics_writer_fn)(gw_text_t *t);
void gw_metrics_add_writer(gw_metrics_writer_fn fn);
void gw_metrics_render(gw_text_t *t);

/* ------------------------------------------------------------------------
 * Migrations (embedded SQL, applied by gatewayctl migrate).
 * ---------------------------------------------------------------------- */
typedef struct {
    int version;
    const char *name;
    const char *sql;
} gw_migration_t;
extern const gw_migration_t gw_migrations[];
extern const size_t gw_nmigrations;
/* Applies every pending migration, one transaction each; prints progress. */
int gw_migrate(PGconn *pg, bool verbose) PC_WUR;

/* ------------------------------------------------------------------------
 * The vault link (gateway/vaultlink.c): the process-wide client of vaultd
 * (vault/vault.h).
 * ---------------------------------------------------------------------- */
typedef struct {
    char *socket, *tls_host, *tls_ca_file, *tls_cert_file, *tls_key_file;
    int64_t tls_port, pool_size, timeout_ms;
} gw_vault_config_t;
extern gw_vault_config_t gw_vault_cfg;

struct vault_client;
/* The shared, thread-safe vault client; NULL when no vault is configured. */
struct vault_client *gw_vault(void);
/* Creates the client from vault.* (and registers the /readyz check); 0 when
 * no vault is configured, -1 when the configuration is unusable. */
int gw_vault_start(void) PC_WUR;
void gw_vault_stop(void);

/* Token buckets keyed by a string (an API key id, a client IP), in a fixed
 * set-associative table: a flood of new keys evicts the longest-idle. */
typedef struct gw_ratelimit gw_ratelimit_t;
gw_ratelimit_t *gw_ratelimit_new(int64_t per_minute, int64_t burst) PC_WUR;
void gw_ratelimit_free(gw_ratelimit_t *rl);
/* Takes one token; false when the bucket is empty (*retry_after_s set). */
bool gw_ratelimit_take(gw_ratelimit_t *rl, const char *key, int *retry_after_s) PC_WUR;
void gw_ratelimit_refund(gw_ratelimit_t *rl, const char *key);

/* The limits of one endpoint, per API key and per client IP, from
 * rate_limit.<endpoint>.* (gateway/ratelimit.c). */
typedef struct {
    int64_t key_per_minute, key_burst, ip_per_minute, ip_burst;
    bool ip_for_secret_keys; /* false: only publishable keys are limited by IP */
    gw_ratelimit_t *by_key, *by_ip;
} gw_rate_t;
extern gw_rate_t gw_rate_tokens, gw_rate_checkouts;
/* Creates the buckets of every endpoint's limits from the configuration. */
int gw_rate_start(void) PC_WUR;
void gw_rate_stop(void);
/* Takes one request from the caller's key bucket and client-IP bucket;
 * false = answer gw_reply_rate_limited. */
bool gw_rate_ok(gw_rate_t *r, const gw_request_t *rq, int *retry_after_s) PC_WUR;
/* 429 rate_limit_error/rate_limited with Retry-After. */
enum MHD_Result gw_reply_rate_limited(gw_request_t *rq, int retry_after_s);

#endif
