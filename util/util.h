/* The ground floor shared by every Portcullis subsystem: the error table,
 * JSON-line logging, declarative JSON and config parsing, the PostgreSQL
 * pool with its retrying transaction helper, the outbound HTTP client, ids
 * and secrets. Nothing here knows about checkouts, cards or providers. */
#ifndef PORTCULLIS_UTIL_H
#define PORTCULLIS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>
#include <jansson.h>
#include <libpq-fe.h>

#define PC_WUR     __attribute__((warn_unused_result))
#define PC_NONNULL __attribute__((nonnull))
#define PC_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define PC_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
/* Deliberately ignore a warn_unused_result value (a best-effort cleanup). */
#define PC_IGNORE(x) do { if (x) { } } while (0)

/* ------------------------------------------------------------------------
 * Errors: one table (util/errors.def) with code, HTTP status, type and
 * default message, shared by the server and the tests.
 * ---------------------------------------------------------------------- */
typedef enum {
#define ERR(sym, status, type, code, msg) ERR_##sym,
#include "util/errors.def"
#undef ERR
    ERR__COUNT
} err_code_t;

unsigned err_http_status(err_code_t e);
const char *err_type(err_code_t e);
const char *err_code_str(err_code_t e);
const char *err_message(err_code_t e);
/* Look an error up by its wire code ("price_changed"); ERR__COUNT if none. */
err_code_t err_by_code(const char *code);
/* {"error":{"type","code","message"[,"param"]}}; message NULL = default. */
json_t *err_body(err_code_t e, const char *param, const char *message);

/* ------------------------------------------------------------------------
 * Logging: one JSON object per line on stderr (or a file). Digit runs that
 * look like a card number are masked before the line is written, as a last
 * line of defence; callers still never pass card data.
 * ---------------------------------------------------------------------- */
typedef enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR } log_level_t;

void log_setup(const char *service, log_level_t min_level, int fd);
bool log_level_parse(const char *s, log_level_t *out) PC_WUR;
/* Writes {"time","level","service","msg", ...fields}; steals `fields`. */
void log_json(log_level_t lvl, const char *msg, json_t *fields);
void log_msg(log_level_t lvl, const char *fmt, ...) PC_PRINTF(2, 3);
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
/* Masks in place every Luhn-valid window of 12-19 digits in a run of digits
 * (single spaces or dashes may separate them), keeping BIN and last4. */
size_t log_mask_pans(char *s, size_t len);

/* ------------------------------------------------------------------------
 * Declarative JSON parsing: a handler lists the fields it expects and one
 * parser walks the list, stopping at the first bad field with its path.
 * ---------------------------------------------------------------------- */
typedef enum {
    JSPEC_STRING,  /* dest: const char ** (borrowed from the document) */
    JSPEC_INT,     /* dest: int64_t * */
    JSPEC_BOOL,    /* dest: bool * */
    JSPEC_OBJECT,  /* dest: json_t ** (borrowed); `sub` parsed when given */
    JSPEC_ARRAY,   /* dest: json_t ** (borrowed); min/max bound the length */
    JSPEC_NUMBER,  /* dest: double * (only for non-money values, e.g. rates) */
    JSPEC_ANY,     /* dest: json_t ** (borrowed) */
} jspec_type_t;

enum {
    JSPEC_REQUIRED = 1u << 0,
    JSPEC_NULLABLE = 1u << 1, /* JSON null counts as absent */
    JSPEC_PRINTABLE = 1u << 2, /* string: printable ASCII only */
    JSPEC_ALLOW_EXTRA = 1u << 3, /* on the JSPEC_END entry: unknown keys allowed */
};

typedef struct jspec_field {
    const char *name;
    jspec_type_t type;
    unsigned flags;
    int64_t min, max; /* ints: value bounds; strings/arrays: length bounds; 0,0 = none */
    void *dest;
    bool *present;
    const struct jspec_field *sub; /* JSPEC_OBJECT: nested spec */
    /* Extra check; returns NULL when fine or a reason ("must be ISO 4217"). */
    const char *(*check)(const json_t *v);
} jspec_field_t;

typedef struct {
    char param[128];  /* "cart.items[2].quantity" */
    char reason[160]; /* "must be an integer between 1 and 1000" */
    err_code_t code;  /* ERR_PARAMETER_MISSING / _INVALID / _UNKNOWN */
} jspec_error_t;

#define JSPEC_STR(n, fl, lo, hi, d) {.name = (n), .type = JSPEC_STRING, .flags = (fl), .min = (lo), .max = (hi), .dest = (d)}
#define JSPEC_I64(n, fl, lo, hi, d) {.name = (n), .type = JSPEC_INT, .flags = (fl), .min = (lo), .max = (hi), .dest = (d)}
#define JSPEC_BOOLEAN(n, fl, d)     {.name = (n), .type = JSPEC_BOOL, .flags = (fl), .dest = (d)}
#define JSPEC_OBJ(n, fl, s, d)      {.name = (n), .type = JSPEC_OBJECT, .flags = (fl), .sub = (s), .dest = (d)}
#define JSPEC_ARR(n, fl, lo, hi, d) {.name = (n), .type = JSPEC_ARRAY, .flags = (fl), .min = (lo), .max = (hi), .dest = (d)}
#define JSPEC_END                   {.name = NULL}
#define JSPEC_END_EXTRA             {.name = NULL, .flags = JSPEC_ALLOW_EXTRA}

/* Parse `obj` against `spec`; `prefix` names the object in error paths
 * ("" for the top level). Returns true when every field is acceptable. */
bool jspec_parse(const json_t *obj, const jspec_field_t *spec, const char *prefix,
                 jspec_error_t *err) PC_WUR;
/* Common checks for jspec_field_t.check. */
const char *jspec_check_currency(const json_t *v);
const char *jspec_check_country(const json_t *v);

/* JSON helpers. */
json_t *json_loads_strict(const char *buf, size_t len, json_error_t *err) PC_WUR;
/* Compact dump; caller frees with free(). */
char *json_dumps_compact(const json_t *j) PC_WUR;

/* ------------------------------------------------------------------------
 * Configuration: a declarative list of items, each read from the JSON config
 * file, then overridden by an environment variable, then by a flag. Unknown
 * keys and literal secrets in the file stop start-up naming the key.
 * ---------------------------------------------------------------------- */
typedef enum {
    CFG_STRING, /* dest: char ** (malloc'd) */
    CFG_INT,    /* dest: int64_t * */
    CFG_BOOL,   /* dest: bool * */
    CFG_SECRET, /* dest: secret_t ** ; key "<x>_file" in the file, or
                 * $CREDENTIALS_DIRECTORY/<cred> */
} cfg_type_t;

typedef struct {
    const char *key;  /* dotted path in the JSON file: "database.pool_size" */
    cfg_type_t type;
    const char *env;  /* environment override or NULL */
    const char *flag; /* "--port" or NULL */
    const char *def;  /* default as text, NULL = none (required if CFG_REQUIRED) */
    int64_t min, max;
    void *dest;
    const char *help;
    const char *cred; /* CFG_SECRET: credential name under $CREDENTIALS_DIRECTORY */
    unsigned flags;
} cfg_item_t;

enum { CFG_REQUIRED = 1u << 0 };

typedef struct {
    char msg[512];
} cfg_error_t;

/* Loads `--config FILE` (if given) then env and flags. Returns 0 on success,
 * 1 when --help was printed, -1 on error (err->msg names the key). */
int cfg_load(const cfg_item_t *items, size_t n, int argc, char **argv, const char *usage,
             cfg_error_t *err) PC_WUR;
void cfg_free(const cfg_item_t *items, size_t n);

/* ------------------------------------------------------------------------
 * Secrets: held in sodium_malloc'd, locked memory and wiped on free.
 * ---------------------------------------------------------------------- */
typedef struct {
    unsigned char *data;
    size_t len;
} secret_t;

/* Guarded memory (guard pages, mlock'd, wiped when returned) for card data
 * and credentials on hot paths, from a per-thread cache: zero-filled,
 * free with guarded_free only. */
void *guarded_alloc(size_t n) PC_WUR;
void guarded_free(void *p);

/* Ordinary heap that is wiped when given back (util/wipe.c): for buffers
 * that may hold card data or credentials but are not worth guarded pages,
 * such as request bodies. wipe_install makes jansson, libcurl and
 * OpenSSL (libcurl's TLS) use it; call it once at start, before anything
 * else, instead of curl_global_init. */
void *wipe_malloc(size_t n) PC_WUR;
void *wipe_realloc(void *p, size_t n) PC_WUR;
void *wipe_calloc(size_t nmemb, size_t size) PC_WUR;
char *wipe_strdup(const char *s) PC_WUR;
void wipe_free(void *p);
int wipe_install(void) PC_WUR;

/* Reads a secret file; refuses files readable by group or others. */
secret_t *secret_read_file(const char *path, char *err, size_t errlen) PC_WUR;
secret_t *secret_from_bytes(const void *data, size_t len) PC_WUR;
void secret_free(secret_t *s);
/* Secret as a C string (trailing newline trimmed); valid while s lives. */
const char *secret_str(const secret_t *s);

/* ------------------------------------------------------------------------
 * Identifiers and time.
 * ---------------------------------------------------------------------- */
/* prefix + 22 characters of URL-safe base64 (128 random bits). */
void ids_new(char *out, size_t outlen, const char *prefix);
#define IDS_MAX 48
int64_t time_now_ms(void);
int64_t time_mono_us(void);
void time_rfc3339(int64_t unix_s, char out[32]);

/* ------------------------------------------------------------------------
 * PostgreSQL: a pool of connections, statements prepared lazily once per
 * connection (their SQL lives next to the function that runs them), and one
 * transaction helper that retries serialization failures and deadlocks and
 * reconnects when the server went away.
 * ---------------------------------------------------------------------- */
typedef struct db_pool db_pool_t;
typedef struct db_conn db_conn_t;

typedef enum {
    DB_OK = 0,
    DB_NOT_FOUND,   /* a query that should return a row returned none */
    DB_CONFLICT,    /* unique violation or a failed compare-and-set */
    DB_RETRY,       /* serialization failure / deadlock: run again */
    DB_CONN_LOST,   /* connection broken; pool reconnects */
    DB_UNAVAILABLE, /* no connection within the wait time */
    DB_ERROR,       /* anything else; logged */
} db_status_t;

typedef struct {
    const char *name; /* unique statement name */
    const char *sql;
    int id; /* assigned on first use, 0 = not yet */
} db_stmt_t;

#define DB_STMT(var, text) static db_stmt_t var = {.name = #var, .sql = (text), .id = 0}
#define DB_MAX_PARAMS 32

typedef struct {
    int n;
    const char *values[DB_MAX_PARAMS];
    int lengths[DB_MAX_PARAMS];
    int formats[DB_MAX_PARAMS];
    char scratch[DB_MAX_PARAMS][24]; /* integer formatting */
} db_params_t;

void db_params_init(db_params_t *p);
void db_param_text(db_params_t *p, const char *s); /* NULL = SQL NULL */
void db_param_int(db_params_t *p, int64_t v);
void db_param_bool(db_params_t *p, bool v);
void db_param_bytes(db_params_t *p, const void *data, size_t len);

typedef struct {
    int pool_size;
    int acquire_timeout_ms;
    const char *conninfo;
    const char *password; /* may be NULL */
    const char *application_name;
} db_pool_config_t;

db_pool_t *db_pool_create(const db_pool_config_t *cfg) PC_WUR;
/* One connection (password may be NULL), with TCP keepalives and a user
 * timeout; check PQstatus. */
PGconn *db_connect(const char *conninfo, const char *appname, const char *password) PC_WUR;
void db_pool_destroy(db_pool_t *p);
db_conn_t *db_pool_acquire(db_pool_t *p) PC_WUR;
void db_pool_release(db_conn_t *c);
typedef struct {
    int size, in_use, waiting;
    uint64_t acquired, timeouts, reconnects;
} db_pool_stats_t;
void db_pool_stats(db_pool_t *p, db_pool_stats_t *out);
PGconn *db_conn_pg(db_conn_t *c);

/* Runs a prepared statement. *res is set on DB_OK (caller PQclear()s), NULL
 * otherwise. A unique violation returns DB_CONFLICT. */
db_status_t db_exec(db_conn_t *c, db_stmt_t *st, const db_params_t *p, PGresult **res) PC_WUR;
/* Runs plain SQL without parameters (BEGIN, COMMIT, SET ...). */
db_status_t db_exec_simple(db_conn_t *c, const char *sql) PC_WUR;
/* The SQLSTATE of the last failed statement on this connection ("" if none). */
const char *db_last_sqlstate(db_conn_t *c);

typedef db_status_t (*db_txn_fn)(db_conn_t *c, void *cls);
typedef enum {
    DB_READ_COMMITTED = 0,
    DB_REPEATABLE_READ,
    DB_SERIALIZABLE,
    /* No BEGIN/COMMIT: the callback runs exactly one statement, which is
     * its own transaction (one round trip instead of three). */
    DB_AUTOCOMMIT,
} db_isolation_t;
/* BEGIN; fn; COMMIT with retries on DB_RETRY and DB_CONN_LOST. The callback
 * may be run more than once and must therefore only touch the database and
 * its own cls. A COMMIT whose answer is lost with the connection is settled
 * by asking PostgreSQL about the transaction's id (txid_status): committed
 * means done, without a re-run; not committed means re-run; undecidable
 * means DB_UNAVAILABLE. A DB_AUTOCOMMIT statement has no such id: re-run
 * after a lost answer, it must recognise its own committed write. Any status
 * other than DB_OK from fn rolls back and is returned. */
db_status_t db_txn_run(db_pool_t *p, db_isolation_t iso, const char *name, db_txn_fn fn,
                       void *cls) PC_WUR;
/* Same on a connection the caller already holds. */
db_status_t db_txn_run_on(db_conn_t *c, db_isolation_t iso, const char *name, db_txn_fn fn,
                          void *cls) PC_WUR;

/* A PostgreSQL array literal ('{"a","b"}') for a parameter value; NULL
 * elements become NULL. malloc'd. */
char *db_text_array(const char *const *v, int n) PC_WUR;

/* Column helpers on a text-format result. */
const char *db_str(const PGresult *r, int row, int col); /* NULL if SQL NULL */
int64_t db_i64(const PGresult *r, int row, int col);
bool db_bool(const PGresult *r, int row, int col);
bool db_isnull(const PGresult *r, int row, int col);
/* bytea in hex output form → malloc'd bytes. */
unsigned char *db_bytes(const PGresult *r, int row, int col, size_t *len) PC_WUR;

/* ------------------------------------------------------------------------
 * Outbound HTTP over libcurl: one reused handle per thread (keep-alive),
 * strict timeouts, a response size cap, TLS verification always on. The
 * result says whether the request may have reached the server, because a
 * payment that may have been sent is an unknown outcome, not a failure.
 * ---------------------------------------------------------------------- */
typedef enum {
    HTTPC_OK = 0,        /* a complete HTTP response (any status) */
    HTTPC_NOT_SENT,      /* connection refused / DNS / connect timeout: never sent */
    HTTPC_TIMEOUT,       /* sent, no complete answer in time: unknown */
    HTTPC_BROKEN,        /* sent, connection reset or truncated reply: unknown */
    HTTPC_TOO_LARGE,     /* reply exceeded the cap: unknown */
    HTTPC_ERROR,         /* local failure before sending */
} httpc_status_t;

typedef struct {
    const char *method; /* "GET", "POST", "PUT", "DELETE" */
    const char *url;
    const char *const *headers; /* NULL-terminated "Name: value" list */
    const char *body;
    size_t body_len;
    long connect_timeout_ms;
    long timeout_ms;
    size_t max_response; /* 0 = 1 MiB */
    /* a URL a merchant chose (webhook, provider): its own connection cache,
     * and connections only to addresses httpc_addr_allowed admits */
    bool untrusted_target;
} httpc_request_t;

typedef struct {
    httpc_status_t status;
    long http_status;
    char *body; /* NUL-terminated, malloc'd */
    size_t body_len;
    char *retry_after; /* value of a Retry-After header, if any */
    double total_ms;
    char errbuf[256];
} httpc_response_t;

httpc_status_t httpc_perform(const httpc_request_t *rq, httpc_response_t *rs) PC_WUR;
void httpc_response_free(httpc_response_t *rs);
/* Releases this thread's handle (call before a thread exits). */
void httpc_thread_cleanup(void);
const char *httpc_status_str(httpc_status_t s);
/* URL-escapes a path segment or query value (malloc'd). */
char *httpc_escape(const char *s) PC_WUR;
/* Returns true when the URL is plain HTTP to a loopback address. */
bool httpc_url_is_loopback_http(const char *url);
/* A URL we may send to: https with a host (plain http only to loopback, and
 * only where allowed, see below),
 * no user info or fragment, no spaces, controls or non-ASCII bytes, and a
 * query only when allow_query. */
bool httpc_url_outbound_ok(const char *url, bool allow_query);
/* Whether httpc_url_outbound_ok admits plain http to loopback (default yes;
 * gatewayd sets it from outbound.allow_loopback_http, default no). */
void httpc_allow_loopback_http(bool allowed);
/* Whether a merchant's URL may reach private networks (10/8, 172.16/12,
 * 192.168/16, 100.64/10, fc00::/7); default no, gatewayd sets it from
 * outbound.allow_private_networks. */
void httpc_allow_private_networks(bool allowed);
struct sockaddr;
/* The address a merchant URL's connection may go to: public addresses;
 * loopback only where plain http to loopback is allowed (sandboxes); private
 * networks only where allowed; never link-local (169.254.169.254, the cloud
 * metadata service), unspecified, multicast or reserved. */
bool httpc_addr_allowed(const struct sockaddr *sa);

/* ------------------------------------------------------------------------
 * Small helpers.
 * ---------------------------------------------------------------------- */
/* Constant-time compare of two buffers of equal length (sodium_memcmp). */
bool mem_equal_ct(const void *a, const void *b, size_t n);
char *str_dup(const char *s) PC_WUR;
char *str_printf(const char *fmt, ...) PC_PRINTF(1, 2) PC_WUR;
bool str_is_printable(const char *s);
/* Writes a whole buffer to a file atomically (write + rename), mode 0600. */
int file_write_atomic(const char *path, const void *data, size_t len, int mode) PC_WUR;
/* Reads a whole (small) file; malloc'd, NUL-terminated. */
char *file_read_all(const char *path, size_t max, size_t *len) PC_WUR;
/* RLIMIT_CORE 0 and PR_SET_DUMPABLE 0: no core dumps, no ptrace by peers. */
bool proc_disable_core_dumps(void) PC_WUR;

#endif
