/* vaultd's database operations on schema vault, one function per statement,
 * each a prepared statement. Only ciphertexts, wrapped keys and truncated
 * metadata pass through here. */
#include "vault/vaultd/vaultd.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

DB_STMT(card_insert,
        "INSERT INTO vault.cards (token, merchant_id, key_version, nonce, sealed, fingerprint, "
        "brand, bin, last4, exp_month, exp_year) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
        "$10, $11)");

db_status_t vdb_card_insert(db_conn_t *c, const kr_card_row_t *row, int version,
                            const uint8_t nonce[SEAL_NONCE], const uint8_t ct[SEAL_CT])
{
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, row->token);
    db_param_text(&p, row->merchant);
    db_param_int(&p, version);
    db_param_bytes(&p, nonce, SEAL_NONCE);
    db_param_bytes(&p, ct, SEAL_CT);
    db_param_bytes(&p, row->fingerprint, SEAL_FP);
    db_param_text(&p, row->brand);
    db_param_text(&p, row->bin);
    db_param_text(&p, row->last4);
    db_param_int(&p, row->exp_month);
    db_param_int(&p, row->exp_year);
    PGresult *r;
    db_status_t s = db_exec(c, &card_insert, &p, &r);
    PQclear(r);
    return s;
}

DB_STMT(cards_insert_many,
        "INSERT INTO vault.cards (token, merchant_id, key_version, nonce, sealed, fingerprint, "
        "brand, bin, last4, exp_month, exp_year) SELECT * FROM unnest($1::text[], $2::text[], "
        "$3::int[], $4::bytea[], $5::bytea[], $6::bytea[], $7::text[], $8::text[], $9::text[], "
        "$10::smallint[], $11::smallint[])");

/* Array literals in PostgreSQL's text format, grown as needed. */
typedef struct {
    char *p;
    size_t len, cap;
    bool oom;
} arr_t;

static void arr_put(arr_t *a, const char *s, size_t n)
{
    if (a->oom)
        return;
    if (a->len + n + 2 > a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 256;
        while (nc < a->len + n + 2)
            nc *= 2;
        char *np = realloc(a->p, nc);
        if (!np) {
            a->oom = true;
            return;
        }
        a->p = np;
        a->cap = nc;
    }
    memcpy(a->p + a->len, s, n);
    a->len += n;
    a->p[a->len] = '\0';
}

static void arr_sep(arr_t *a)
{
    arr_put(a, a->len == 0 ? "{" : ",", 1);
}

/* A quoted element: backslash and double quote escaped. */
static void arr_text(arr_t *a, const char *s)
{
    arr_sep(a);
    arr_put(a, "\"", 1);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            arr_put(a, "\\", 1);
        arr_put(a, s, 1);
    }
    arr_put(a, "\"", 1);
}

static void arr_int(arr_t *a, int v)
{
    char b[16];
    arr_sep(a);
    arr_put(a, b, (size_t)snprintf(b, sizeof b, "%d", v));
}

/* bytea in hex input form inside a quoted element: "\\x0a0b..." */
static void arr_bytes(arr_t *a, const uint8_t *d, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    arr_sep(a);
    arr_put(a, "\"\\\\x", 4);
    for (size_t i = 0; i < n; i++) {
        char h[2] = {hex[d[i] >> 4], hex[d[i] & 15]};
        arr_put(a, h, 2);
    }
    arr_put(a, "\"", 1);
}

db_status_t vdb_cards_insert_many(db_conn_t *c, vd_card_insert_t *const *items, int n)
{
    arr_t a[11] = {{0}};
    for (int i = 0; i < n; i++) {
        const kr_card_row_t *r = items[i]->row;
        arr_text(&a[0], r->token);
        arr_text(&a[1], r->merchant);
        arr_int(&a[2], items[i]->version);
        arr_bytes(&a[3], items[i]->nonce, SEAL_NONCE);
        arr_bytes(&a[4], items[i]->ct, SEAL_CT);
        arr_bytes(&a[5], r->fingerprint, SEAL_FP);
        arr_text(&a[6], r->brand);
        arr_text(&a[7], r->bin);
        arr_text(&a[8], r->last4);
        arr_int(&a[9], r->exp_month);
        arr_int(&a[10], r->exp_year);
    }
    db_params_t p;
    db_params_init(&p);
    bool oom = false;
    for (int k = 0; k < 11; k++) {
        arr_put(&a[k], "}", 1);
        oom = oom || a[k].oom;
        db_param_text(&p, a[k].p);
    }
    db_status_t s = DB_ERROR;
    if (!oom && n > 0) {
        PGresult *r;
        s = db_exec(c, &cards_insert_many, &p, &r);
        if (s == DB_OK && atoi(PQcmdTuples(r)) != n)
            s = DB_ERROR;
        PQclear(r);
    }
    for (int k = 0; k < 11; k++)
        free(a[k].p);
    return s;
}

DB_STMT(card_get, "SELECT key_version, nonce, sealed, brand, bin, last4, exp_month, exp_year, "
                  "fingerprint FROM vault.cards WHERE token = $1 AND merchant_id = $2");

void vdb_card_clear(vdb_card_t *c)
{
    free(c->nonce);
    free(c->sealed);
    memset(c, 0, sizeof *c);
}

db_status_t vdb_card_get(db_conn_t *c, const char *token, const char *merchant, vdb_card_t *out)
{
    memset(out, 0, sizeof *out);
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, token);
    db_param_text(&p, merchant);
    PGresult *r;
    db_status_t s = db_exec(c, &card_get, &p, &r);
    if (s != DB_OK)
        return s;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return DB_NOT_FOUND;
    }
    out->version = (int)db_i64(r, 0, 0);
    out->nonce = db_bytes(r, 0, 1, &out->nonce_len);
    out->sealed = db_bytes(r, 0, 2, &out->sealed_len);
    copy_str(out->brand, sizeof out->brand, db_str(r, 0, 3));
    copy_str(out->bin, sizeof out->bin, db_str(r, 0, 4));
    copy_str(out->last4, sizeof out->last4, db_str(r, 0, 5));
    out->exp_month = (int)db_i64(r, 0, 6);
    out->exp_year = (int)db_i64(r, 0, 7);
    size_t fl = 0;
    uint8_t *fp = db_bytes(r, 0, 8, &fl);
    if (fp && fl == SEAL_FP)
        memcpy(out->fingerprint, fp, SEAL_FP);
    free(fp);
    PQclear(r);
    if (!out->nonce || !out->sealed) {
        vdb_card_clear(out);
        return DB_ERROR;
    }
    return DB_OK;
}

DB_STMT(count_below, "SELECT count(*) FROM vault.cards WHERE key_version < $1");

db_status_t vdb_count_below(db_conn_t *c, int version, long *n)
{
    db_params_t p;
    db_params_init(&p);
    db_param_int(&p, version);
    PGresult *r;
    db_status_t s = db_exec(c, &count_below, &p, &r);
    *n = s == DB_OK ? (long)db_i64(r, 0, 0) : -1;
    PQclear(r);
    return s;
}

DB_STMT(version_counts, "SELECT key_version, count(*) FROM vault.cards GROUP BY key_version "
                        "ORDER BY key_version");

json_t *vdb_version_counts(db_conn_t *c)
{
    PGresult *r;
    if (db_exec(c, &version_counts, NULL, &r) != DB_OK)
        return NULL;
    json_t *o = json_object();
    for (int i = 0; i < PQntuples(r); i++)
        json_object_set_new(o, db_str(r, i, 0), json_integer(db_i64(r, i, 1)));
    PQclear(r);
    return o;
}

/* ------------------------------------------------------------ key ring */

DB_STMT(ring_get, "SELECT current_version, min_decrypt_version, fingerprint_key, secrets_key "
                  "FROM vault.keyring");
DB_STMT(ring_keys, "SELECT version, wrapped FROM vault.data_keys WHERE version >= $1 AND "
                   "wrapped IS NOT NULL ORDER BY version");

void vdb_keyring_clear(vdb_keyring_t *k)
{
    free(k->fp_wrapped);
    free(k->secrets_wrapped);
    for (int i = 0; i < k->nkeys; i++)
        free(k->wrapped[i]);
    memset(k, 0, sizeof *k);
}

db_status_t vdb_keyring_load(db_conn_t *c, vdb_keyring_t *out)
{
    memset(out, 0, sizeof *out);
    PGresult *r;
    db_status_t s = db_exec(c, &ring_get, NULL, &r);
    if (s != DB_OK)
        return s;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return DB_NOT_FOUND;
    }
    out->current = (int)db_i64(r, 0, 0);
    out->min = (int)db_i64(r, 0, 1);
    out->fp_wrapped = db_bytes(r, 0, 2, &out->fp_len);
    out->secrets_wrapped = db_bytes(r, 0, 3, &out->secrets_len);
    PQclear(r);
    db_params_t p;
    db_params_init(&p);
    db_param_int(&p, out->min);
    s = db_exec(c, &ring_keys, &p, &r);
    if (s != DB_OK) {
        vdb_keyring_clear(out);
        return s;
    }
    int n = PQntuples(r);
    for (int i = 0; i < n && out->nkeys < (int)PC_ARRAY_LEN(out->versions); i++) {
        out->versions[out->nkeys] = (int)db_i64(r, i, 0);
        out->wrapped[out->nkeys] = db_bytes(r, i, 1, &out->wrapped_len[out->nkeys]);
        out->nkeys++;
    }
    PQclear(r);
    return DB_OK;
}

DB_STMT(ring_create, "INSERT INTO vault.keyring (current_version, min_decrypt_version, "
                     "fingerprint_key, secrets_key) VALUES (1, 1, $1, $2) "
                     "ON CONFLICT (id) DO NOTHING");
DB_STMT(key_insert, "INSERT INTO vault.data_keys (version, wrapped) VALUES ($1, $2)");

db_status_t vdb_keyring_create(db_conn_t *c, const uint8_t fp[SEAL_WRAPPED],
                               const uint8_t sk[SEAL_WRAPPED], const uint8_t dk[SEAL_WRAPPED])
{
    db_params_t p;
    db_params_init(&p);
    db_param_bytes(&p, fp, SEAL_WRAPPED);
    db_param_bytes(&p, sk, SEAL_WRAPPED);
    PGresult *r;
    db_status_t s = db_exec(c, &ring_create, &p, &r);
    if (s != DB_OK)
        return s;
    bool won = strcmp(PQcmdTuples(r), "1") == 0;
    PQclear(r);
    if (!won)
        return DB_CONFLICT;
    db_params_init(&p);
    db_param_int(&p, 1);
    db_param_bytes(&p, dk, SEAL_WRAPPED);
    s = db_exec(c, &key_insert, &p, &r);
    PQclear(r);
    return s;
}

DB_STMT(ring_advance, "UPDATE vault.keyring SET current_version = $1 "
                      "WHERE current_version = $1 - 1");

db_status_t vdb_key_add(db_conn_t *c, int version, const uint8_t wrapped[SEAL_WRAPPED])
{
    db_params_t p;
    db_params_init(&p);
    db_param_int(&p, version);
    db_param_bytes(&p, wrapped, SEAL_WRAPPED);
    PGresult *r;
    db_status_t s = db_exec(c, &key_insert, &p, &r);
    PQclear(r);
    if (s != DB_OK)
        return s;
    db_params_init(&p);
    db_param_int(&p, version);
    s = db_exec(c, &ring_advance, &p, &r);
    if (s == DB_OK && strcmp(PQcmdTuples(r), "1") != 0)
        s = DB_CONFLICT; /* another vaultd rotated meanwhile */
    PQclear(r);
    return s;
}

DB_STMT(ring_min, "UPDATE vault.keyring SET min_decrypt_version = $1 "
                  "WHERE min_decrypt_version < $1 AND current_version >= $1");
DB_STMT(keys_destroy, "UPDATE vault.data_keys SET wrapped = NULL, retired_at = now() "
                      "WHERE version < $1 AND wrapped IS NOT NULL");

db_status_t vdb_key_retire(db_conn_t *c, int min_version)
{
    db_params_t p;
    db_params_init(&p);
    db_param_int(&p, min_version);
    PGresult *r;
    db_status_t s = db_exec(c, &ring_min, &p, &r);
    PQclear(r);
    if (s != DB_OK)
        return s;
    s = db_exec(c, &keys_destroy, &p, &r);
    PQclear(r);
    return s;
}

/* ------------------------------------------------------------ rewrap */

DB_STMT(rewrap_claim, "SELECT token, merchant_id, key_version, nonce, sealed FROM vault.cards "
                      "WHERE key_version < $1 ORDER BY key_version LIMIT $2 "
                      "FOR UPDATE SKIP LOCKED");
DB_STMT(rewrap_update, "UPDATE vault.cards SET key_version = $3, nonce = $4, sealed = $5 "
                       "WHERE token = $1 AND key_version = $2");

void vdb_rewrap_rows_free(vdb_rewrap_row_t *rows, int count)
{
    for (int i = 0; rows && i < count; i++) {
        free(rows[i].nonce);
        free(rows[i].sealed);
    }
    free(rows);
}

db_status_t vdb_rewrap_claim(db_conn_t *c, int version, int n, vdb_rewrap_row_t **rows, int *count)
{
    *rows = NULL;
    *count = 0;
    db_params_t p;
    db_params_init(&p);
    db_param_int(&p, version);
    db_param_int(&p, n);
    PGresult *r;
    db_status_t s = db_exec(c, &rewrap_claim, &p, &r);
    if (s != DB_OK)
        return s;
    int nt = PQntuples(r);
    vdb_rewrap_row_t *out = calloc((size_t)(nt ? nt : 1), sizeof *out);
    if (!out) {
        PQclear(r);
        return DB_ERROR;
    }
    for (int i = 0; i < nt; i++) {
        copy_str(out[i].token, sizeof out[i].token, db_str(r, i, 0));
        copy_str(out[i].merchant, sizeof out[i].merchant, db_str(r, i, 1));
        out[i].version = (int)db_i64(r, i, 2);
        out[i].nonce = db_bytes(r, i, 3, &out[i].nonce_len);
        out[i].sealed = db_bytes(r, i, 4, &out[i].sealed_len);
    }
    PQclear(r);
    *rows = out;
    *count = nt;
    return DB_OK;
}

db_status_t vdb_rewrap_update(db_conn_t *c, const char *token, int from, int to,
                              const uint8_t nonce[SEAL_NONCE], const uint8_t ct[SEAL_CT])
{
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, token);
    db_param_int(&p, from);
    db_param_int(&p, to);
    db_param_bytes(&p, nonce, SEAL_NONCE);
    db_param_bytes(&p, ct, SEAL_CT);
    PGresult *r;
    db_status_t s = db_exec(c, &rewrap_update, &p, &r);
    if (s == DB_OK && strcmp(PQcmdTuples(r), "1") != 0)
        s = DB_CONFLICT;
    PQclear(r);
    return s;
}

/* ------------------------------------------------------------ instance lock */

#define INSTANCE_LOCK "7263514839201" /* any constant; advisory locks are per database */
static PGconn *lock_pg;

static bool simple_true(PGconn *pg, const char *sql)
{
    PGresult *r = PQexec(pg, sql);
    bool t =
        PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    return t;
}

vdb_lock_t vdb_instance_lock(const char *conninfo, const char *password)
{
    if (lock_pg)
        PQfinish(lock_pg);
    const char *keys[] = {"dbname", "application_name", "password", NULL};
    const char *vals[] = {conninfo, "vaultd-instance-lock", password, NULL};
    if (!password)
        keys[2] = NULL;
    lock_pg = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(lock_pg) != CONNECTION_OK) {
        PQfinish(lock_pg);
        lock_pg = NULL;
        return VDB_LOCK_ERROR;
    }
    return simple_true(lock_pg, "SELECT pg_try_advisory_lock(" INSTANCE_LOCK ")") ? VDB_LOCK_HELD
                                                                                  : VDB_LOCK_TAKEN;
}

bool vdb_instance_lock_alive(void)
{
    return lock_pg && PQstatus(lock_pg) == CONNECTION_OK &&
           simple_true(lock_pg, "SELECT count(*) = 1 FROM pg_locks WHERE locktype = 'advisory' "
                                "AND pid = pg_backend_pid() AND granted");
}

void vdb_instance_unlock(void)
{
    if (!lock_pg)
        return;
    PQclear(PQexec(lock_pg, "SELECT pg_advisory_unlock(" INSTANCE_LOCK ")"));
    PQfinish(lock_pg);
    lock_pg = NULL;
}
