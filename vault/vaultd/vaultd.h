/* vaultd internals: configuration, the key ring, the CVC store, the
 * database operations, the request handlers and the listeners. Private to
 * vault/vaultd/. */
#ifndef PORTCULLIS_VAULTD_H
#define PORTCULLIS_VAULTD_H

#include "pci/audit.h"
#include "util/util.h"
#include "vault/card.h"
#include "vault/io.h"
#include "vault/proto.h"
#include "vault/seal.h"
#include "vault/vault.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/types.h>

/* ------------------------------------------------------------ config */
typedef struct {
    char *socket_path, *socket_group, *allow_uids, *admin_uids;
    char *tls_address, *tls_port_file, *tls_ca_file, *tls_cert_file, *tls_key_file;
    char *tls_allow_names;
    int64_t tls_port;
    secret_t *kek;
    char *db_conninfo;
    secret_t *db_password;
    int64_t db_pool_size;
    int64_t cvc_ttl_s, cvc_capacity;
    int64_t max_connections, idle_timeout_s, rewrap_batch_max;
    char *user, *ready_file;
    bool isolate_network;
    char *log_level, *log_file;
} vd_config_t;

extern vd_config_t vd_cfg;
extern const cfg_item_t vd_cfg_items[];
extern const size_t vd_cfg_nitems;

/* ------------------------------------------------------------ hardening */
/* A new, empty network namespace for this thread and the ones it starts
 * (call before any thread exists). False when not permitted. */
bool vd_unshare_network(void);
/* Refuses socket() for every family but AF_UNIX (seccomp), after
 * PR_SET_NO_NEW_PRIVS. */
bool vd_seccomp_unix_only(char *err, size_t errlen) PC_WUR;
/* As root with a user name: raise RLIMIT_MEMLOCK for guarded memory, then
 * switch to that user's uid, gid and groups for good. */
bool vd_drop_privileges(const char *user, char *err, size_t errlen) PC_WUR;
/* "0,65534,portcullis" → uids; false naming the bad entry. */
bool vd_parse_uids(const char *list, uid_t *out, int max, int *n, char *err, size_t errlen) PC_WUR;

/* ------------------------------------------------------------ key ring */
typedef enum {
    KR_OK = 0,
    KR_UNKNOWN_VERSION, /* not in the database at all */
    KR_RETIRED,         /* below the minimum decryption version */
    KR_INTEGRITY,       /* the record does not open: altered or wrong key */
    KR_DB,              /* database trouble (see the db_status_t) */
} kr_result_t;

/* Loads the key ring, creating the first data key, the fingerprint key and
 * the secrets key on an empty vault. Fails when the KEK unwraps nothing. */
bool kr_init(db_pool_t *pool, const uint8_t kek[SEAL_KEY], char *err, size_t errlen) PC_WUR;
void kr_free(void);
int kr_current(void);
int kr_min(void);
const uint8_t *kr_fingerprint_key(void);
const uint8_t *kr_secrets_key(void);

/* Seals the card under the current version and inserts it, holding the
 * ring's read lock until the row is committed (so retire never misses it). */
typedef struct {
    const char *token, *merchant, *brand;
    char bin[7], last4[5];
    int exp_month, exp_year;
    uint8_t fingerprint[SEAL_FP];
} kr_card_row_t;
db_status_t kr_card_store(db_pool_t *pool, const kr_card_row_t *row, const seal_card_t *card,
                          uint8_t *scratch) PC_WUR;
/* Opens a stored record; reloads the ring once for a version it does not
 * know yet (another vaultd rotated) using connection c. */
kr_result_t kr_card_open(db_conn_t *c, int version, const char *token, const char *merchant,
                         const uint8_t *nonce, size_t nonce_len, const uint8_t *ct, size_t ct_len,
                         uint8_t *scratch, seal_card_t *card) PC_WUR;

/* Key administration; `peer` names the caller in the audit log. */
kr_result_t kr_rotate(db_pool_t *pool, const char *peer, int *version) PC_WUR;
kr_result_t kr_rewrap(db_pool_t *pool, const char *peer, int batch, int *moved,
                      long *remaining) PC_WUR;
/* KR_RETIRED with *remaining > 0 means records still need a rewrap. */
kr_result_t kr_retire(db_pool_t *pool, const char *peer, int version, long *remaining) PC_WUR;

/* ------------------------------------------------------------ CVC store */
/* One sodium_malloc'd, mlock'd table; entries die at their TTL, at first
 * "authorize" use, or when evicted from a full bucket. */
bool cvc_init(size_t capacity, int ttl_s) PC_WUR;
void cvc_free(void);
void cvc_put(const char *token, const char *cvc);
/* Copies the CVC into out (≥ 5 bytes) and, when consume, wipes the entry. */
bool cvc_get(const char *token, char *out, bool consume);
bool cvc_has(const char *token);
/* Wipes expired entries; returns how many are held. */
size_t cvc_sweep(void);
size_t cvc_count(void);

/* ------------------------------------------------------------ database */
typedef struct {
    int version;
    uint8_t *nonce, *sealed; /* malloc'd (ciphertext only) */
    size_t nonce_len, sealed_len;
    char brand[16], bin[9], last4[5];
    int exp_month, exp_year;
    uint8_t fingerprint[SEAL_FP];
} vdb_card_t;

/* ------------------------------------------------------------ group commit
 * (batch.c) Concurrent callers of one group are written together: one
 * statement and one commit for many rows. A caller's item embeds
 * vd_group_item_t first; the group's run function writes items[0..n) and
 * sets each one's result. */
typedef struct vd_group_item {
    db_status_t result;
    bool done;
    void *cv; /* the waiting caller's pthread_cond_t */
    struct vd_group_item *next;
} vd_group_item_t;

typedef void (*vd_group_run_fn)(db_pool_t *pool, vd_group_item_t **items, int n);

typedef struct {
    pthread_mutex_t mu;
    vd_group_item_t *head, *tail;
    bool leading;
    vd_group_run_fn run;
    atomic_uint_fast64_t batches, rows; /* status: average batch size */
} vd_group_t;

#define VD_GROUP_INIT(fn)                                                                          \
    {                                                                                              \
        .mu = PTHREAD_MUTEX_INITIALIZER, .run = (fn)                                               \
    }

/* Queues the item and returns its result once its batch is written. */
db_status_t vd_group_commit(vd_group_t *g, db_pool_t *pool, vd_group_item_t *item) PC_WUR;

/* One tokenization waiting to be inserted. */
typedef struct {
    vd_group_item_t g;
    const kr_card_row_t *row;
    int version;
    const uint8_t *nonce, *ct; /* SEAL_NONCE, SEAL_CT bytes */
} vd_card_insert_t;

extern vd_group_t vd_card_group, vd_audit_group;

/* Inserts the card and returns once it is committed: concurrent callers
 * are committed together, in one statement and one transaction. */
db_status_t vd_batch_insert(db_pool_t *pool, vd_card_insert_t *item) PC_WUR;
/* Appends the audit record and returns once it is committed, together
 * with concurrent callers' records. */
db_status_t vd_audit(db_pool_t *pool, const audit_event_t *ev) PC_WUR PC_NONNULL;

void vdb_card_clear(vdb_card_t *c);
/* All rows in one INSERT ... SELECT FROM unnest(arrays); DB_OK only when
 * every row went in. */
db_status_t vdb_cards_insert_many(db_conn_t *c, vd_card_insert_t *const *items, int n) PC_WUR;
db_status_t vdb_card_insert(db_conn_t *c, const kr_card_row_t *row, int version,
                            const uint8_t nonce[SEAL_NONCE], const uint8_t ct[SEAL_CT]) PC_WUR;
db_status_t vdb_card_get(db_conn_t *c, const char *token, const char *merchant,
                         vdb_card_t *out) PC_WUR;
db_status_t vdb_count_below(db_conn_t *c, int version, long *n) PC_WUR;
json_t *vdb_version_counts(db_conn_t *c);

typedef struct {
    int current, min;
    uint8_t *fp_wrapped, *secrets_wrapped;
    size_t fp_len, secrets_len;
    int nkeys;
    int versions[1024];
    uint8_t *wrapped[1024];
    size_t wrapped_len[1024];
} vdb_keyring_t;

/* One vaultd per vault database: a session advisory lock held on a
 * connection of its own. Two instances would each seal under the key
 * version they know, and a retire in one could strand records of the other. */
typedef enum { VDB_LOCK_HELD = 0, VDB_LOCK_TAKEN, VDB_LOCK_ERROR } vdb_lock_t;
vdb_lock_t vdb_instance_lock(const char *conninfo, const char *password) PC_WUR;
bool vdb_instance_lock_alive(void);
void vdb_instance_unlock(void);

void vdb_keyring_clear(vdb_keyring_t *k);
/* DB_NOT_FOUND on an empty vault. */
db_status_t vdb_keyring_load(db_conn_t *c, vdb_keyring_t *out) PC_WUR;
/* Inserts the ring row and data key 1; DB_CONFLICT if another vaultd won. */
db_status_t vdb_keyring_create(db_conn_t *c, const uint8_t fp[SEAL_WRAPPED],
                               const uint8_t sk[SEAL_WRAPPED],
                               const uint8_t dk[SEAL_WRAPPED]) PC_WUR;
db_status_t vdb_key_add(db_conn_t *c, int version, const uint8_t wrapped[SEAL_WRAPPED]) PC_WUR;
db_status_t vdb_key_retire(db_conn_t *c, int min_version) PC_WUR;

typedef struct {
    char token[64], merchant[65];
    int version;
    uint8_t *nonce, *sealed;
    size_t nonce_len, sealed_len;
} vdb_rewrap_row_t;
/* Claims up to n records below `version` (FOR UPDATE SKIP LOCKED). */
db_status_t vdb_rewrap_claim(db_conn_t *c, int version, int n, vdb_rewrap_row_t **rows,
                             int *count) PC_WUR;
void vdb_rewrap_rows_free(vdb_rewrap_row_t *rows, int count);
db_status_t vdb_rewrap_update(db_conn_t *c, const char *token, int from, int to,
                              const uint8_t nonce[SEAL_NONCE], const uint8_t ct[SEAL_CT]) PC_WUR;

/* ------------------------------------------------------------ requests */
typedef struct {
    /* guarded per-connection scratch: everything that holds card data,
     * wiped after every request up to `secret` (op_unseal wipes that) */
    char raw[64];
    char cvc[9];
    seal_card_t card;
    uint8_t record[SEAL_RECORD];
    uint8_t secret[VAULT_SECRET_MAX];
} vd_scratch_t;
#define VD_SCRATCH_WIPE offsetof(vd_scratch_t, secret)

typedef struct {
    vio_t *io;
    bool allowed;  /* card operations (allow list, or a TLS client the CA vouched for) */
    bool admin;    /* key operations and status (admin list, unix socket only) */
    char peer[96]; /* "uid:0" or "tls:CN" for logs and the audit log */
    uint8_t *rx, *tx;
    vd_scratch_t *scratch;
} vd_conn_t;

extern db_pool_t *vd_db;
extern atomic_int vd_connections;
extern int64_t vd_started_us;

/* Handles one parsed request; writes the reply frame into c->tx and
 * returns its length. */
size_t vd_handle(vd_conn_t *c, const proto_msg_t *m);
/* A reply with only a code and a message. */
size_t vd_reply_code(uint8_t *tx, uint8_t code, const char *message);

/* ------------------------------------------------------------ listeners */
int vd_server_start(char *err, size_t errlen) PC_WUR; /* binds; before the privilege drop */
int vd_server_run(void) PC_WUR;                       /* starts accepting */
void vd_server_stop(void);
uint16_t vd_server_tls_port(void);

#endif
