/* vaultd's operations, one function each: tokenize, detokenize, card info,
 * seal and unseal of small secrets, and the key administration. Card data
 * stays in the connection's guarded scratch; replies are built straight
 * into its guarded transmit buffer. Every detokenize, unseal and key
 * operation is in the audit log before any plaintext leaves. */
#include "vault/vaultd/vaultd.h"
#include "pci/audit.h"
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TX_CAP (PROTO_HDR + PROTO_FRAME_MAX)

db_pool_t *vd_db;
atomic_int vd_connections;
int64_t vd_started_us;

typedef uint8_t (*op_fn)(vd_conn_t *c, const proto_msg_t *m, proto_writer_t *w, const char **why);

size_t vd_reply_code(uint8_t *tx, uint8_t code, const char *message)
{
    proto_writer_t w;
    proto_begin(&w, tx, TX_CAP, code);
    if (message)
        proto_put(&w, T_MESSAGE, message, strnlen(message, 200));
    return proto_end(&w);
}

static uint8_t db_code(db_status_t s)
{
    return s == DB_UNAVAILABLE || s == DB_CONN_LOST || s == DB_RETRY ? VAULT_UNAVAILABLE
                                                                     : VAULT_ERROR;
}

static bool get_id(const proto_msg_t *m, proto_tag_t t, char *out, size_t cap)
{
    return proto_get_str(m, t, out, cap) && out[0] && str_is_printable(out);
}

static bool purpose_ok(const char *p)
{
    for (const char *q = p; *q; q++)
        if (!((*q >= 'a' && *q <= 'z') || *q == '_'))
            return false;
    return *p != '\0';
}

static void put_meta(proto_writer_t *w, const char *token, const char *brand, const char *bin,
                     const char *last4, int exp_month, int exp_year, const uint8_t fp[SEAL_FP],
                     bool has_cvc)
{
    char fptext[SEAL_FP_TEXT];
    seal_fingerprint_text(fp, fptext);
    uint8_t hc = has_cvc;
    proto_put_str(w, T_TOKEN, token);
    proto_put_str(w, T_BRAND, brand);
    proto_put_str(w, T_BIN, bin);
    proto_put_str(w, T_LAST4, last4);
    proto_put_u32(w, T_EXP_MONTH, (uint32_t)exp_month);
    proto_put_u32(w, T_EXP_YEAR, (uint32_t)exp_year);
    proto_put_str(w, T_FINGERPRINT, fptext);
    proto_put(w, T_HAS_CVC, &hc, 1);
}

static db_status_t audit_now(const char *action, const char *merchant, const char *object,
                             json_t *detail)
{
    audit_event_t ev = {.actor = "vaultd",
                        .action = action,
                        .merchant_id = merchant,
                        .object = object,
                        .detail = detail};
    db_status_t s = vd_audit(vd_db, &ev);
    json_decref(detail);
    return s;
}

/* ------------------------------------------------------------ tokenize */

/* Number, then expiry, then CVC, then name: the first bad field answers. */
static uint8_t check_card(const proto_msg_t *m, vd_scratch_t *s, const card_brand_t **brand,
                          bool *has_cvc, const char **why)
{
    if (!proto_get_str(m, T_PAN, s->raw, sizeof s->raw) || !card_normalize(s->raw, s->card.pan) ||
        !card_number_ok(s->card.pan, brand))
        return VAULT_INVALID_NUMBER;
    uint32_t mon, yr;
    int now_y, now_m;
    card_now(&now_y, &now_m);
    if (!proto_get_u32(m, T_EXP_MONTH, &mon) || !proto_get_u32(m, T_EXP_YEAR, &yr) || yr > 9999 ||
        !card_expiry_ok((int)mon, card_year_normalize((int)yr), now_y, now_m))
        return VAULT_INVALID_EXPIRY;
    s->card.exp_month = (int)mon;
    s->card.exp_year = card_year_normalize((int)yr);
    *has_cvc = m->f[T_CVC].present;
    if ((*has_cvc && !proto_get_str(m, T_CVC, s->cvc, sizeof s->cvc)) ||
        !card_cvc_ok(*brand, *has_cvc ? s->cvc : NULL))
        return VAULT_INVALID_CVC;
    s->card.name[0] = '\0';
    if (m->f[T_NAME].present && (!proto_get_str(m, T_NAME, s->card.name, sizeof s->card.name) ||
                                 !card_name_ok(s->card.name))) {
        *why = "invalid cardholder name";
        return PST_BAD_FRAME;
    }
    return VAULT_OK;
}

static uint8_t op_tokenize(vd_conn_t *c, const proto_msg_t *m, proto_writer_t *w, const char **why)
{
    vd_scratch_t *s = c->scratch;
    char merchant[65], token[IDS_MAX];
    if (!get_id(m, T_MERCHANT, merchant, sizeof merchant)) {
        *why = "merchant id missing or invalid";
        return PST_BAD_FRAME;
    }
    const card_brand_t *brand = NULL;
    bool has_cvc = false;
    uint8_t code = check_card(m, s, &brand, &has_cvc, why);
    if (code != VAULT_OK)
        return code;
    ids_new(token, sizeof token, "tok_");
    kr_card_row_t row = {.token = token,
                         .merchant = merchant,
                         .brand = brand->name,
                         .exp_month = s->card.exp_month,
                         .exp_year = s->card.exp_year};
    size_t pl = strlen(s->card.pan);
    memcpy(row.bin, s->card.pan, 6);
    memcpy(row.last4, s->card.pan + pl - 4, 5);
    seal_fingerprint(kr_fingerprint_key(), merchant, s->card.pan, row.fingerprint);
    db_status_t st = kr_card_store(vd_db, &row, &s->card, s->record);
    if (st != DB_OK) {
        *why = "card could not be stored";
        return db_code(st);
    }
    if (has_cvc)
        cvc_put(token, s->cvc);
    put_meta(w, token, brand->name, row.bin, row.last4, row.exp_month, row.exp_year,
             row.fingerprint, has_cvc);
    return VAULT_OK;
}

/* ------------------------------------------------------------ detokenize */

typedef struct {
    vd_scratch_t *s;
    const char *token, *merchant, *purpose, *peer;
    vdb_card_t row;
    bool found;
    kr_result_t kr;
} detok_t;

/* The read: autocommit, so re-run harmlessly after a lost connection. */
static db_status_t detok_read(db_conn_t *dc, void *cls)
{
    detok_t *d = cls;
    d->found = false;
    d->kr = KR_INTEGRITY;
    for (int attempt = 0; attempt < 2; attempt++) {
        vdb_card_clear(&d->row);
        db_status_t s = vdb_card_get(dc, d->token, d->merchant, &d->row);
        if (s == DB_NOT_FOUND)
            break;
        if (s != DB_OK)
            return s;
        d->found = true;
        d->kr =
            kr_card_open(dc, d->row.version, d->token, d->merchant, d->row.nonce, d->row.nonce_len,
                         d->row.sealed, d->row.sealed_len, d->s->record, &d->s->card);
        /* Retired under us: a rewrap committed after our read and the old
         * key is gone. The row we read again is sealed under the new key. */
        if (d->kr != KR_RETIRED)
            break;
    }
    return DB_OK;
}

/* Read, then audit: nothing leaves before the record of it is committed
 * (with concurrent detokenizations' records, see batch.c). Whatever the
 * outcome, the attempt is recorded. */
static db_status_t detok_run(detok_t *d)
{
    db_status_t s = db_txn_run(vd_db, DB_AUTOCOMMIT, "vault_card_read", detok_read, d);
    if (s != DB_OK)
        return s;
    const char *outcome = !d->found ? "not_found" : d->kr == KR_OK ? "ok" : "error";
    audit_event_t ev = {.actor = "vaultd",
                        .action = "card.detokenize",
                        .merchant_id = d->merchant,
                        .object = d->token,
                        .detail = json_pack("{s:s, s:s, s:s, s:i}", "purpose", d->purpose, "peer",
                                            d->peer, "outcome", outcome, "key_version",
                                            d->found ? d->row.version : 0)};
    s = ev.detail ? vd_audit(vd_db, &ev) : DB_ERROR;
    json_decref(ev.detail);
    return s;
}

static uint8_t op_detokenize(vd_conn_t *c, const proto_msg_t *m, proto_writer_t *w,
                             const char **why)
{
    char merchant[65], token[64], purpose[33];
    if (!get_id(m, T_MERCHANT, merchant, sizeof merchant) ||
        !get_id(m, T_TOKEN, token, sizeof token) ||
        !proto_get_str(m, T_PURPOSE, purpose, sizeof purpose) || !purpose_ok(purpose)) {
        *why = "merchant, token and purpose (lowercase word) are required";
        return PST_BAD_FRAME;
    }
    detok_t d = {
        .s = c->scratch, .token = token, .merchant = merchant, .purpose = purpose, .peer = c->peer};
    db_status_t st = detok_run(&d);
    vdb_card_clear(&d.row);
    if (st != DB_OK) {
        sodium_memzero(&c->scratch->card, sizeof c->scratch->card);
        *why = "audit log or database unavailable";
        return db_code(st);
    }
    if (!d.found)
        return VAULT_NOT_FOUND;
    if (d.kr != KR_OK) {
        log_json(LOG_ERROR, "card record does not open",
                 json_pack("{s:s, s:i}", "token", token, "result", (int)d.kr));
        *why = "card record cannot be decrypted";
        return VAULT_ERROR;
    }
    const seal_card_t *card = &c->scratch->card;
    const card_brand_t *brand = card_brand_detect(card->pan);
    /* Only an authorization uses the CVC, and it consumes it there; any other
     * purpose (a recovery lookup, a refund) never gets it, so no copy of it
     * exists outside the vault that the payment itself did not need. */
    bool authorize = strcmp(purpose, "authorize") == 0;
    bool has_cvc = authorize && cvc_get(token, c->scratch->cvc, true);
    uint8_t hc = has_cvc;
    proto_put_str(w, T_PAN, card->pan);
    proto_put_u32(w, T_EXP_MONTH, (uint32_t)card->exp_month);
    proto_put_u32(w, T_EXP_YEAR, (uint32_t)card->exp_year);
    proto_put_str(w, T_BRAND, brand ? brand->name : "unknown");
    if (card->name[0])
        proto_put_str(w, T_NAME, card->name);
    proto_put(w, T_HAS_CVC, &hc, 1);
    if (has_cvc)
        proto_put_str(w, T_CVC, c->scratch->cvc);
    return VAULT_OK;
}

static uint8_t op_card_info(vd_conn_t *c, const proto_msg_t *m, proto_writer_t *w, const char **why)
{
    char merchant[65], token[64];
    if (!get_id(m, T_MERCHANT, merchant, sizeof merchant) ||
        !get_id(m, T_TOKEN, token, sizeof token)) {
        *why = "merchant and token are required";
        return PST_BAD_FRAME;
    }
    db_conn_t *dc = db_pool_acquire(vd_db);
    if (!dc)
        return VAULT_UNAVAILABLE;
    vdb_card_t row;
    db_status_t st = vdb_card_get(dc, token, merchant, &row);
    db_pool_release(dc);
    if (st == DB_NOT_FOUND)
        return VAULT_NOT_FOUND;
    if (st != DB_OK)
        return db_code(st);
    put_meta(w, token, row.brand, row.bin, row.last4, row.exp_month, row.exp_year, row.fingerprint,
             cvc_has(token));
    vdb_card_clear(&row);
    return VAULT_OK;
}

/* ------------------------------------------------------------ secrets */

static uint8_t op_seal(vd_conn_t *c, const proto_msg_t *m, proto_writer_t *w, const char **why)
{
    char merchant[65], context[129];
    const proto_field_t *data = &m->f[T_DATA];
    if (!get_id(m, T_MERCHANT, merchant, sizeof merchant) ||
        !get_id(m, T_CONTEXT, context, sizeof context) || !data->present) {
        *why = "merchant, context and data are required";
        return PST_BAD_FRAME;
    }
    char *sealed = seal_secret(kr_secrets_key(), merchant, context, data->p, data->len);
    if (!sealed)
        return VAULT_ERROR;
    db_status_t st = audit_now("secret.seal", merchant, context,
                               json_pack("{s:s, s:i}", "peer", c->peer, "bytes", (int)data->len));
    if (st == DB_OK)
        proto_put_str(w, T_SEALED, sealed);
    free(sealed);
    return st == DB_OK ? VAULT_OK : db_code(st);
}

static uint8_t op_unseal(vd_conn_t *c, const proto_msg_t *m, proto_writer_t *w, const char **why)
{
    char merchant[65], context[129];
    char *sealed = NULL;
    if (!get_id(m, T_MERCHANT, merchant, sizeof merchant) ||
        !get_id(m, T_CONTEXT, context, sizeof context) || !(sealed = proto_dup_str(m, T_SEALED))) {
        *why = "merchant, context and sealed text are required";
        return PST_BAD_FRAME;
    }
    size_t n = 0;
    bool ok = seal_secret_open(kr_secrets_key(), merchant, context, sealed, c->scratch->secret,
                               sizeof c->scratch->secret, &n);
    free(sealed);
    db_status_t st =
        audit_now("secret.unseal", merchant, context,
                  json_pack("{s:s, s:s}", "peer", c->peer, "outcome", ok ? "ok" : "denied"));
    if (st != DB_OK) { /* not audited, not released: the plaintext goes now */
        sodium_memzero(c->scratch->secret, sizeof c->scratch->secret);
        return db_code(st);
    }
    if (!ok) {
        *why = "sealed text does not open for this merchant and context";
        return VAULT_DENIED;
    }
    proto_put(w, T_DATA, c->scratch->secret, n);
    sodium_memzero(c->scratch->secret, n);
    return VAULT_OK;
}

/* ------------------------------------------------------------ key admin */

static uint8_t op_rotate(vd_conn_t *c, const proto_msg_t *m, proto_writer_t *w, const char **why)
{
    int v;
    if (kr_rotate(vd_db, c->peer, &v) != KR_OK) {
        *why = "rotation failed (see vaultd's log)";
        return VAULT_ERROR;
    }
    proto_put_u32(w, T_VERSION, (uint32_t)v);
    return VAULT_OK;
}

static uint8_t op_rewrap(vd_conn_t *c, const proto_msg_t *m, proto_writer_t *w, const char **why)
{
    uint32_t batch = 500;
    if (m->f[T_BATCH].present && (!proto_get_u32(m, T_BATCH, &batch) || batch == 0)) {
        *why = "batch must be a positive number";
        return PST_BAD_FRAME;
    }
    if (batch > (uint32_t)vd_cfg.rewrap_batch_max)
        batch = (uint32_t)vd_cfg.rewrap_batch_max;
    int moved;
    long remaining;
    if (kr_rewrap(vd_db, c->peer, (int)batch, &moved, &remaining) != KR_OK) {
        *why = "rewrap failed (see vaultd's log)";
        return VAULT_ERROR;
    }
    proto_put_u32(w, T_COUNT, (uint32_t)moved);
    proto_put_u32(w, T_REMAINING, remaining > 0xffffffffL ? 0xffffffffu : (uint32_t)remaining);
    return VAULT_OK;
}

static uint8_t op_retire(vd_conn_t *c, const proto_msg_t *m, proto_writer_t *w, const char **why)
{
    uint32_t v = 0;
    if (m->f[T_VERSION].present && !proto_get_u32(m, T_VERSION, &v)) {
        *why = "version must be a number";
        return PST_BAD_FRAME;
    }
    long remaining = 0;
    kr_result_t r = kr_retire(vd_db, c->peer, (int)v, &remaining);
    proto_put_u32(w, T_REMAINING, remaining > 0xffffffffL ? 0xffffffffu : (uint32_t)remaining);
    proto_put_u32(w, T_VERSION, (uint32_t)kr_min());
    switch (r) {
    case KR_OK:
        return VAULT_OK;
    case KR_RETIRED:
        *why = "records are still sealed under an older version; run rewrap first";
        return VAULT_DENIED;
    case KR_UNKNOWN_VERSION:
        *why = "version is above the current data key version";
        return VAULT_DENIED;
    default:
        *why = "retire failed (see vaultd's log)";
        return VAULT_ERROR;
    }
}

static uint8_t op_status(vd_conn_t *c, const proto_msg_t *m, proto_writer_t *w, const char **why)
{
    db_conn_t *dc = db_pool_acquire(vd_db);
    json_t *counts = dc ? vdb_version_counts(dc) : NULL;
    db_pool_release(dc);
    if (!counts)
        return VAULT_UNAVAILABLE;
    json_t *st =
        json_pack("{s:i, s:i, s:o, s:i, s:i, s:I, s:I, s:I, s:I, s:I}", "current_version",
                  kr_current(), "min_decrypt_version", kr_min(), "records_by_version", counts,
                  "cvc_held", (int)cvc_count(), "connections", atomic_load(&vd_connections),
                  "uptime_seconds", (json_int_t)((time_mono_us() - vd_started_us) / 1000000),
                  "insert_batches", (json_int_t)atomic_load(&vd_card_group.batches),
                  "inserted_rows", (json_int_t)atomic_load(&vd_card_group.rows), "audit_batches",
                  (json_int_t)atomic_load(&vd_audit_group.batches), "audit_rows",
                  (json_int_t)atomic_load(&vd_audit_group.rows));
    char *text = json_dumps_compact(st);
    json_decref(st);
    if (!text)
        return VAULT_ERROR;
    proto_put_str(w, T_JSON, text);
    free(text);
    return VAULT_OK;
}

static uint8_t op_ping(vd_conn_t *c, const proto_msg_t *m, proto_writer_t *w, const char **why)
{
    return VAULT_OK;
}

static const struct {
    op_fn fn;
    bool admin;
} ops[OP__MAX] = {
    [OP_PING] = {op_ping, false},
    [OP_TOKENIZE] = {op_tokenize, false},
    [OP_DETOKENIZE] = {op_detokenize, false},
    [OP_CARD_INFO] = {op_card_info, false},
    [OP_SEAL] = {op_seal, false},
    [OP_UNSEAL] = {op_unseal, false},
    [OP_ROTATE] = {op_rotate, true},
    [OP_REWRAP] = {op_rewrap, true},
    [OP_RETIRE] = {op_retire, true},
    [OP_STATUS] = {op_status, true},
};

size_t vd_handle(vd_conn_t *c, const proto_msg_t *m)
{
    if (m->code == 0 || m->code >= OP__MAX || !ops[m->code].fn)
        return vd_reply_code(c->tx, PST_BAD_FRAME, "unknown operation");
    /* Separation of duties: key custodians (admin list) administer keys
     * but cannot read cards; card users cannot touch keys. */
    if (ops[m->code].admin && !c->admin)
        return vd_reply_code(c->tx, VAULT_DENIED, "key operations need a peer on the admin list");
    if (!ops[m->code].admin && m->code != OP_PING && !c->allowed)
        return vd_reply_code(c->tx, VAULT_DENIED, "card operations need a peer on the allow list");
    proto_writer_t w;
    proto_begin(&w, c->tx, TX_CAP, VAULT_OK);
    const char *why = NULL;
    uint8_t code = ops[m->code].fn(c, m, &w, &why);
    if (code != VAULT_OK && m->code != OP_RETIRE)
        return vd_reply_code(c->tx, code, why);
    c->tx[PROTO_HDR + 1] = code;
    if (why)
        proto_put_str(&w, T_MESSAGE, why);
    size_t n = proto_end(&w);
    return n ? n : vd_reply_code(c->tx, VAULT_ERROR, "reply too large");
}
