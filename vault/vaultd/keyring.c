/* The key ring: unwrapped data keys by version, the fingerprint key and the
 * secrets key, all in one sodium_malloc'd region that is read-only except
 * while a writer changes it; the KEK in its own region, inaccessible except
 * while wrapping or unwrapping.
 *
 * Locking: card operations hold the read lock while they use a key, and
 * tokenize holds it until its row is committed; rotate and retire take the
 * write lock (writer-preferring, so a steady stream of readers cannot starve
 * them). Retire therefore counts old records only when no record can be in
 * flight under an old version. Key administration is also serialised by its
 * own mutex. */
#include "vault/vaultd/vaultd.h"
#include "pci/audit.h"
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KR_MAX 1024 /* versions 1..1023 */

typedef struct {
    uint8_t data[KR_MAX][SEAL_KEY];
    uint8_t fp[SEAL_KEY];
    uint8_t secrets[SEAL_KEY];
} kr_keys_t;

static struct {
    pthread_rwlock_t lock;
    pthread_mutex_t admin;
    pthread_mutex_t kek_mu; /* the KEK's page protection is process-wide */
    kr_keys_t *k;
    uint8_t *kek;
    bool have[KR_MAX];
    bool fixed_loaded; /* fingerprint and secrets keys never change once loaded */
    int current, min;
} kr = {.admin = PTHREAD_MUTEX_INITIALIZER, .kek_mu = PTHREAD_MUTEX_INITIALIZER};

static void kek_open(void)
{
    pthread_mutex_lock(&kr.kek_mu);
    sodium_mprotect_readonly(kr.kek);
}

static void kek_close(void)
{
    sodium_mprotect_noaccess(kr.kek);
    pthread_mutex_unlock(&kr.kek_mu);
}

static void keys_writable(bool w)
{
    if (w)
        sodium_mprotect_readwrite(kr.k);
    else
        sodium_mprotect_readonly(kr.k);
}

/* Unwraps everything the database holds into `into` (a scratch ring);
 * false, with err set, at the first key that does not unwrap. */
static bool unwrap_all(const vdb_keyring_t *ring, kr_keys_t *into, bool have[KR_MAX], char *err,
                       size_t errlen)
{
    bool ok = true;
    kek_open();
    if (!kr.fixed_loaded &&
        (!seal_key_unwrap(kr.kek, "fingerprint", 0, ring->fp_wrapped, ring->fp_len, into->fp) ||
         !seal_key_unwrap(kr.kek, "secrets", 0, ring->secrets_wrapped, ring->secrets_len,
                          into->secrets))) {
        snprintf(err, errlen, "the KEK does not unwrap the vault's keys (wrong KEK file?)");
        ok = false;
    }
    for (int i = 0; ok && i < ring->nkeys; i++) {
        int v = ring->versions[i];
        if (v <= 0 || v >= KR_MAX ||
            !seal_key_unwrap(kr.kek, "data", (uint32_t)v, ring->wrapped[i], ring->wrapped_len[i],
                             into->data[v])) {
            snprintf(err, errlen, "the KEK does not unwrap data key version %d", v);
            ok = false;
        } else {
            have[v] = true;
        }
    }
    kek_close();
    if (ok && (ring->current <= 0 || ring->current >= KR_MAX || !have[ring->current])) {
        snprintf(err, errlen, "current data key version %d is missing", ring->current);
        ok = false;
    }
    return ok;
}

/* Replaces the ring with what the database holds, all or nothing: keys are
 * unwrapped into a scratch ring first, because a failed unwrap zeroes its
 * output, and a live slot zeroed that way would seal new cards under a key
 * of zeros. A ring that does not load (a damaged or foreign row) leaves the
 * keys in use as they were. Caller holds the write lock (or is alone at
 * start-up). */
static bool install(const vdb_keyring_t *ring, char *err, size_t errlen)
{
    kr_keys_t *tmp = sodium_malloc(sizeof *tmp);
    if (!tmp) {
        snprintf(err, errlen, "out of guarded memory");
        return false;
    }
    bool have[KR_MAX] = {false};
    bool ok = unwrap_all(ring, tmp, have, err, errlen);
    if (ok) {
        keys_writable(true);
        for (int v = 0; v < KR_MAX; v++)
            if (have[v])
                memcpy(kr.k->data[v], tmp->data[v], SEAL_KEY);
            else
                sodium_memzero(kr.k->data[v], SEAL_KEY);
        if (!kr.fixed_loaded) {
            memcpy(kr.k->fp, tmp->fp, SEAL_KEY);
            memcpy(kr.k->secrets, tmp->secrets, SEAL_KEY);
        }
        keys_writable(false);
        memcpy(kr.have, have, sizeof have);
        kr.current = ring->current;
        kr.min = ring->min;
        kr.fixed_loaded = true;
    }
    sodium_free(tmp); /* wipes it */
    return ok;
}

static db_status_t audit_key(db_conn_t *c, const char *action, const char *peer, json_t *detail)
{
    json_object_set_new(detail, "peer", json_string(peer));
    audit_event_t ev = {.actor = "vaultd", .action = action, .object = "vault", .detail = detail};
    db_status_t s = audit_append(c, &ev);
    json_decref(detail);
    return s;
}

typedef struct {
    uint8_t fp[SEAL_WRAPPED], sk[SEAL_WRAPPED], dk[SEAL_WRAPPED];
} create_t;

static db_status_t create_txn(db_conn_t *c, void *cls)
{
    create_t *cr = cls;
    db_status_t s = vdb_keyring_create(c, cr->fp, cr->sk, cr->dk);
    if (s != DB_OK)
        return s;
    return audit_key(c, "key.create", "vaultd", json_pack("{s:i}", "version", 1));
}

/* First start on an empty vault: three fresh keys, wrapped by the KEK. */
static db_status_t create_ring(db_pool_t *pool)
{
    uint8_t *tmp = sodium_malloc(SEAL_KEY);
    create_t cr;
    if (!tmp)
        return DB_ERROR;
    kek_open();
    randombytes_buf(tmp, SEAL_KEY);
    seal_key_wrap(kr.kek, "fingerprint", 0, tmp, cr.fp);
    randombytes_buf(tmp, SEAL_KEY);
    seal_key_wrap(kr.kek, "secrets", 0, tmp, cr.sk);
    randombytes_buf(tmp, SEAL_KEY);
    seal_key_wrap(kr.kek, "data", 1, tmp, cr.dk);
    kek_close();
    sodium_free(tmp);
    db_status_t s = db_txn_run(pool, DB_READ_COMMITTED, "vault_keyring_create", create_txn, &cr);
    return s == DB_CONFLICT ? DB_OK : s; /* another vaultd created it first */
}

static bool load(db_conn_t *c, char *err, size_t errlen, db_status_t *st)
{
    vdb_keyring_t *ring = calloc(1, sizeof *ring);
    if (!ring)
        return false;
    *st = vdb_keyring_load(c, ring);
    bool ok = *st == DB_OK && install(ring, err, errlen);
    if (*st != DB_OK && *st != DB_NOT_FOUND)
        snprintf(err, errlen, "cannot read the key ring from the database");
    vdb_keyring_clear(ring);
    free(ring);
    return ok;
}

bool kr_init(db_pool_t *pool, const uint8_t kek[SEAL_KEY], char *err, size_t errlen)
{
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&kr.lock, &a);
    pthread_rwlockattr_destroy(&a);
    kr.k = sodium_malloc(sizeof *kr.k);
    kr.kek = sodium_malloc(SEAL_KEY);
    if (!kr.k || !kr.kek) {
        snprintf(err, errlen, "out of guarded memory");
        return false;
    }
    memset(kr.k, 0, sizeof *kr.k);
    memcpy(kr.kek, kek, SEAL_KEY);
    sodium_mprotect_noaccess(kr.kek);
    keys_writable(false);
    db_conn_t *c = db_pool_acquire(pool);
    if (!c) {
        snprintf(err, errlen, "cannot connect to the database");
        return false;
    }
    db_status_t st = DB_ERROR;
    bool ok = load(c, err, errlen, &st);
    db_pool_release(c);
    if (!ok && st == DB_NOT_FOUND) {
        st = create_ring(pool);
        if (st != DB_OK) {
            snprintf(err, errlen, "cannot create the key ring in the database");
            return false;
        }
        log_info("empty vault: created data key version 1, fingerprint and secrets keys");
        c = db_pool_acquire(pool);
        ok = c && load(c, err, errlen, &st);
        db_pool_release(c);
    }
    return ok;
}

void kr_free(void)
{
    if (kr.k) {
        keys_writable(true);
        sodium_free(kr.k); /* wipes */
    }
    if (kr.kek) {
        sodium_mprotect_readwrite(kr.kek);
        sodium_free(kr.kek);
    }
    kr.k = NULL;
    kr.kek = NULL;
}

int kr_current(void)
{
    pthread_rwlock_rdlock(&kr.lock);
    int v = kr.current;
    pthread_rwlock_unlock(&kr.lock);
    return v;
}

int kr_min(void)
{
    pthread_rwlock_rdlock(&kr.lock);
    int v = kr.min;
    pthread_rwlock_unlock(&kr.lock);
    return v;
}

/* Both are set once at start-up and never change. */
const uint8_t *kr_fingerprint_key(void)
{
    return kr.k->fp;
}

const uint8_t *kr_secrets_key(void)
{
    return kr.k->secrets;
}

/* ------------------------------------------------------------ card records */

db_status_t kr_card_store(db_pool_t *pool, const kr_card_row_t *row, const seal_card_t *card,
                          uint8_t *scratch)
{
    uint8_t nonce[SEAL_NONCE], ct[SEAL_CT];
    pthread_rwlock_rdlock(&kr.lock);
    int v = kr.current;
    db_status_t s = DB_ERROR;
    if (seal_card(kr.k->data[v], row->token, row->merchant, (uint32_t)v, card, scratch, nonce,
                  ct)) {
        vd_card_insert_t item = {.row = row, .version = v, .nonce = nonce, .ct = ct};
        s = vd_batch_insert(pool, &item);
    }
    pthread_rwlock_unlock(&kr.lock);
    return s;
}

static void reload(db_conn_t *c)
{
    char err[200];
    db_status_t st;
    pthread_rwlock_wrlock(&kr.lock);
    if (!load(c, err, sizeof err, &st))
        log_json(LOG_ERROR, "key ring reload failed", json_pack("{s:s}", "error", err));
    pthread_rwlock_unlock(&kr.lock);
}

kr_result_t kr_card_open(db_conn_t *c, int version, const char *token, const char *merchant,
                         const uint8_t *nonce, size_t nonce_len, const uint8_t *ct, size_t ct_len,
                         uint8_t *scratch, seal_card_t *card)
{
    if (nonce_len != SEAL_NONCE)
        return KR_INTEGRITY;
    for (int attempt = 0; attempt < 2; attempt++) {
        pthread_rwlock_rdlock(&kr.lock);
        kr_result_t r;
        if (version <= 0 || version >= KR_MAX)
            r = KR_UNKNOWN_VERSION;
        else if (version < kr.min)
            r = KR_RETIRED;
        else if (!kr.have[version])
            r = KR_UNKNOWN_VERSION;
        else
            r = seal_card_open(kr.k->data[version], token, merchant, (uint32_t)version, nonce, ct,
                               ct_len, scratch, card)
                    ? KR_OK
                    : KR_INTEGRITY;
        bool newer = version > kr.current;
        pthread_rwlock_unlock(&kr.lock);
        if (r != KR_UNKNOWN_VERSION || !newer || attempt > 0)
            return r;
        reload(c); /* another vaultd rotated */
    }
    return KR_UNKNOWN_VERSION;
}

/* ------------------------------------------------------------ rotate */

typedef struct {
    int version;
    uint8_t wrapped[SEAL_WRAPPED];
    const char *peer;
} rotate_t;

static db_status_t rotate_txn(db_conn_t *c, void *cls)
{
    rotate_t *r = cls;
    db_status_t s = vdb_key_add(c, r->version, r->wrapped);
    if (s != DB_OK)
        return s;
    return audit_key(c, "key.rotate", r->peer, json_pack("{s:i}", "version", r->version));
}

kr_result_t kr_rotate(db_pool_t *pool, const char *peer, int *version)
{
    pthread_mutex_lock(&kr.admin);
    rotate_t r = {.version = kr_current() + 1, .peer = peer};
    kr_result_t res = KR_DB;
    uint8_t *key = sodium_malloc(SEAL_KEY);
    if (!key || r.version >= KR_MAX) {
        log_error("cannot rotate: %s", key ? "key version limit reached" : "out of memory");
        goto out;
    }
    randombytes_buf(key, SEAL_KEY);
    kek_open();
    seal_key_wrap(kr.kek, "data", (uint32_t)r.version, key, r.wrapped);
    kek_close();
    db_status_t s = db_txn_run(pool, DB_READ_COMMITTED, "vault_key_rotate", rotate_txn, &r);
    if (s == DB_OK) {
        pthread_rwlock_wrlock(&kr.lock);
        keys_writable(true);
        memcpy(kr.k->data[r.version], key, SEAL_KEY);
        keys_writable(false);
        kr.have[r.version] = true;
        kr.current = r.version;
        pthread_rwlock_unlock(&kr.lock);
        res = KR_OK;
    } else if (s == DB_CONFLICT) {
        db_conn_t *c = db_pool_acquire(pool); /* another vaultd rotated: catch up */
        if (c)
            reload(c);
        db_pool_release(c);
    }
out:
    if (key)
        sodium_free(key);
    *version = kr_current();
    pthread_mutex_unlock(&kr.admin);
    if (res == KR_OK)
        log_json(LOG_INFO, "data key rotated",
                 json_pack("{s:i, s:s}", "version", *version, "peer", peer));
    return res;
}

/* ------------------------------------------------------------ rewrap */

typedef struct {
    int to, batch, moved, failed;
    const char *peer;
    uint8_t *scratch;  /* guarded: SEAL_RECORD */
    seal_card_t *card; /* guarded */
} rewrap_t;

static db_status_t rewrap_one(db_conn_t *c, rewrap_t *rw, const vdb_rewrap_row_t *row)
{
    uint8_t nonce[SEAL_NONCE], ct[SEAL_CT];
    bool opened =
        row->version > 0 && row->version < KR_MAX && kr.have[row->version] &&
        row->nonce_len == SEAL_NONCE &&
        seal_card_open(kr.k->data[row->version], row->token, row->merchant, (uint32_t)row->version,
                       row->nonce, row->sealed, row->sealed_len, rw->scratch, rw->card);
    if (!opened) {
        rw->failed++;
        log_json(LOG_ERROR, "rewrap: record does not open; left in place",
                 json_pack("{s:s, s:i}", "token", row->token, "key_version", row->version));
        return DB_OK;
    }
    bool sealed = seal_card(kr.k->data[rw->to], row->token, row->merchant, (uint32_t)rw->to,
                            rw->card, rw->scratch, nonce, ct);
    sodium_memzero(rw->card, sizeof *rw->card);
    if (!sealed)
        return DB_ERROR;
    db_status_t s = vdb_rewrap_update(c, row->token, row->version, rw->to, nonce, ct);
    if (s == DB_OK)
        rw->moved++;
    return s == DB_CONFLICT ? DB_OK : s;
}

static db_status_t rewrap_txn(db_conn_t *c, void *cls)
{
    rewrap_t *rw = cls;
    rw->moved = rw->failed = 0;
    vdb_rewrap_row_t *rows;
    int n;
    db_status_t s = vdb_rewrap_claim(c, rw->to, rw->batch, &rows, &n);
    for (int i = 0; s == DB_OK && i < n; i++)
        s = rewrap_one(c, rw, &rows[i]);
    vdb_rewrap_rows_free(rows, n);
    if (s == DB_OK && rw->moved > 0)
        s = audit_key(c, "key.rewrap", rw->peer,
                      json_pack("{s:i, s:i}", "to_version", rw->to, "records", rw->moved));
    return s;
}

kr_result_t kr_rewrap(db_pool_t *pool, const char *peer, int batch, int *moved, long *remaining)
{
    *moved = 0;
    *remaining = -1;
    rewrap_t rw = {.batch = batch, .peer = peer};
    rw.scratch = sodium_malloc(SEAL_RECORD);
    rw.card = sodium_malloc(sizeof *rw.card);
    kr_result_t res = KR_DB;
    pthread_mutex_lock(&kr.admin);
    if (rw.scratch && rw.card) {
        pthread_rwlock_rdlock(&kr.lock);
        rw.to = kr.current;
        db_status_t s = db_txn_run(pool, DB_READ_COMMITTED, "vault_rewrap", rewrap_txn, &rw);
        pthread_rwlock_unlock(&kr.lock);
        db_conn_t *c = s == DB_OK ? db_pool_acquire(pool) : NULL;
        if (c && vdb_count_below(c, rw.to, remaining) == DB_OK) {
            *moved = rw.moved;
            res = KR_OK;
        }
        db_pool_release(c);
    }
    pthread_mutex_unlock(&kr.admin);
    if (rw.scratch)
        sodium_free(rw.scratch);
    if (rw.card)
        sodium_free(rw.card);
    return res;
}

/* ------------------------------------------------------------ retire */

typedef struct {
    int version;
    const char *peer;
} retire_t;

static db_status_t retire_txn(db_conn_t *c, void *cls)
{
    retire_t *r = cls;
    db_status_t s = vdb_key_retire(c, r->version);
    if (s != DB_OK)
        return s;
    return audit_key(c, "key.retire", r->peer, json_pack("{s:i}", "min_version", r->version));
}

kr_result_t kr_retire(db_pool_t *pool, const char *peer, int version, long *remaining)
{
    *remaining = 0;
    pthread_mutex_lock(&kr.admin);
    retire_t r = {.version = version > 0 ? version : kr_current(), .peer = peer};
    kr_result_t res = KR_OK;
    if (r.version > kr_current()) {
        pthread_mutex_unlock(&kr.admin);
        return KR_UNKNOWN_VERSION;
    }
    if (r.version <= kr_min()) {
        pthread_mutex_unlock(&kr.admin);
        return KR_OK;
    }
    /* No card operation runs while we hold the write lock, so the count
     * cannot miss a record that is about to be committed under an old key. */
    pthread_rwlock_wrlock(&kr.lock);
    db_conn_t *c = db_pool_acquire(pool);
    if (!c || vdb_count_below(c, r.version, remaining) != DB_OK) {
        res = KR_DB;
    } else if (*remaining > 0) {
        res = KR_RETIRED;
    } else if (db_txn_run_on(c, DB_READ_COMMITTED, "vault_key_retire", retire_txn, &r) != DB_OK) {
        res = KR_DB;
    } else {
        keys_writable(true);
        for (int v = 0; v < r.version && v < KR_MAX; v++) {
            sodium_memzero(kr.k->data[v], SEAL_KEY);
            kr.have[v] = false;
        }
        keys_writable(false);
        kr.min = r.version;
    }
    db_pool_release(c);
    pthread_rwlock_unlock(&kr.lock);
    pthread_mutex_unlock(&kr.admin);
    if (res == KR_OK)
        log_json(LOG_INFO, "data keys retired",
                 json_pack("{s:i, s:s}", "min_version", r.version, "peer", peer));
    return res;
}
