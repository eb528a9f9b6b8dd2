/* The integration-test harness: a private database per test (copied from the
 * migrated template of the ctest fixture), real daemons started on free
 * loopback ports with their logs captured, an HTTP client, and assertions.
 * Tests read as scenarios on top of it. */
#ifndef PORTCULLIS_HARNESS_H
#define PORTCULLIS_HARNESS_H

#include "util/util.h"
#include <check.h>
#include <signal.h>
#include <sys/types.h>

/* Called once at the start of a test binary (name = the binary's name). */
void h_init(const char *name);
const char *h_workdir(void);  /* build/tests/<name>/ */
const char *h_pgbase(void);   /* the fixture cluster's base directory */
const char *h_secrets(void);  /* its password files */

/* Databases. */
char *h_db_create(void);       /* fresh copy of the migrated template */
void h_db_drop(const char *db);
char *h_conninfo(const char *db, const char *role); /* role: admin, gateway, vault, auditor */
const char *h_password_file(const char *role);
PGconn *h_db_connect(const char *db, const char *role);
/* Runs SQL as admin on db; returns the first cell of the first row (malloc'd) or NULL. */
char *h_sql(const char *db, const char *fmt, ...) PC_PRINTF(2, 3);
long h_sql_long(const char *db, const char *fmt, ...) PC_PRINTF(2, 3);

/* Processes. Output goes to <workdir>/<name>.log. */
typedef struct {
    pid_t pid;
    char name[64];
    char log[1024];
} h_proc_t;

h_proc_t *h_proc_start(const char *name, char *const argv[], char *const envp[]);
/* Signals the process and waits; returns its exit code, 128+signal if
 * killed, or -1 on timeout (it is then SIGKILLed). */
int h_proc_stop(h_proc_t *p, int sig, int timeout_ms);
bool h_proc_alive(h_proc_t *p);
int h_wait_port_file(const char *path, int timeout_ms);
/* Runs a command to completion; captures stdout (malloc'd) into *out. */
int h_run(char **out, char *const argv[]);

/* Writes a secret file (mode 0600) with 32 random hex bytes, once. */
void h_secret_file(const char *path);

/* gatewayd. */
typedef struct {
    h_proc_t *proc;
    char db[64];
    char url[128];
    char config[1024];
    char port_file[1024];
    int port;
} h_gateway_t;

/* Starts gatewayd on db with extra JSON config merged in (may be NULL) and
 * waits until /healthz answers. `tag` names the log and config files. */
h_gateway_t *h_gateway_start(const char *db, const char *tag, const char *extra_json);
int h_gateway_stop(h_gateway_t *g, int sig);
/* Runs gatewayctl against db; returns exit code, stdout in *out. */
int h_gatewayctl(const char *db, char **out, const char *const args[]);

typedef struct {
    char id[64];
    char pk[64], sk[64], ak[64];
} h_merchant_t;
h_merchant_t h_merchant_create(const char *db, const char *name);

/* Sandboxes (sandbox-<name> binaries). The control URL stays up when the
 * sandbox simulates an outage. */
typedef struct {
    h_proc_t *proc;
    char url[128];
    char control_url[128];
    int port, control_port;
} h_sandbox_t;

h_sandbox_t *h_sandbox_start(const char *name, const char *tag, const char *const extra_args[]);
int h_sandbox_stop(h_sandbox_t *s);
/* POST /_sandbox/faults on the control listener; asserts 200. */
void h_sandbox_faults(const h_sandbox_t *s, const char *json);
/* GET /_sandbox/charges (caller json_decref()s). */
json_t *h_sandbox_charges(const h_sandbox_t *s);

/* HTTP. */
typedef struct {
    long status;
    char *body;
    json_t *json;       /* parsed body if JSON */
    char *headers;      /* raw response headers */
    httpc_status_t net; /* transport outcome */
} h_resp_t;

h_resp_t h_http(const char *method, const char *url, const char *key, const char *body,
                const char *const *headers);
h_resp_t h_get(const h_gateway_t *g, const char *path, const char *key);
h_resp_t h_post(const h_gateway_t *g, const char *path, const char *key, const char *body);
void h_resp_free(h_resp_t *r);
/* Header value from a response (malloc'd) or NULL. */
char *h_resp_header(const h_resp_t *r, const char *name);
const char *h_json_str(const json_t *j, const char *path); /* "error.code" */
json_int_t h_json_int(const json_t *j, const char *path);

/* Asserts status, JSON error shape and code (Check assertions). */
void h_assert_error(const h_resp_t *r, long status, err_code_t code);

/* Sends raw bytes over TCP to 127.0.0.1:port and returns what came back. */
char *h_raw_tcp(int port, const void *data, size_t len, int timeout_ms);

/* A Check suite runner with long timeouts; returns the process exit code. */
int h_run_suite(Suite *s);
TCase *h_tcase(const char *name, int timeout_s);

/* vaultd, the card vault, for a test database (needs VAULTD_BIN). Its KEK
 * file (mode 0600) is <workdir>/<db>.kek, created once per database, so a
 * restart or a second instance opens the same vault (extra_json may point
 * kek_file elsewhere). extra_json is merged into vaultd's
 * configuration ({"cvc":{"ttl_seconds":2}}, {"run":{"user":"nobody"}} ...).
 * By default peers with uid 0 are allowed card and key operations. */
typedef struct {
    h_proc_t *proc;
    char db[64];
    char tag[64];
    char socket[108];
    char config[1024];
    char kek[1024];
    char ready_file[1024];
    char log[1024]; /* vaultd's JSON log */
    int tls_port;   /* when extra_json turned TLS on (tls.port 0 picks one) */
} h_vault_t;

h_vault_t *h_vault_start(const char *db, const char *tag, const char *extra_json);
/* Starts vaultd and waits for it to either serve (returns 0) or exit
 * (returns its exit code); *out is set when it serves. For refusals. */
int h_vault_try_start(const char *db, const char *tag, const char *extra_json, h_vault_t **out);
int h_vault_stop(h_vault_t *v, int sig);
/* Stops (SIGTERM) and starts the same vaultd again: same config, same KEK. */
void h_vault_restart(h_vault_t *v);
/* {"vault":{"socket":...}} to pass as h_gateway_start's extra_json (malloc'd). */
char *h_vault_gateway_json(const h_vault_t *v);
/* Runs vaultctl against v; returns its exit code, stdout in *out. */
int h_vaultctl(const h_vault_t *v, char **out, const char *const args[]);

#endif
