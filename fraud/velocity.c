/* Velocity counters in PostgreSQL: keys hashed here, one read statement
 * that computes every counter of every key and window (plus the merchant's
 * averages and rules version), one recording statement designed for the
 * caller's transaction, and the cleanup of what left the longest window. */
#include "fraud/internal.h"
#include <ctype.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define KEY_BYTES 16

/* --------------------------------------------------------------- key hashes */

static void hash_start(crypto_generichash_state *st, const char *domain)
{
    crypto_generichash_init(st, NULL, 0, KEY_BYTES);
    crypto_generichash_update(st, (const unsigned char *)domain, strlen(domain) + 1);
}

static void hash_plain(const char *domain, const char *s, unsigned char out[KEY_BYTES])
{
    crypto_generichash_state st;
    hash_start(&st, domain);
    crypto_generichash_update(&st, (const unsigned char *)s, strlen(s));
    crypto_generichash_final(&st, out, KEY_BYTES);
}

/* Emails compare case-insensitively and without surrounding blanks, so
 * "Ada@Example.org " and "ada@example.org" are one key. */
static void hash_email(const char *s, unsigned char out[KEY_BYTES])
{
    while (*s && isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    crypto_generichash_state st;
    hash_start(&st, "email");
    unsigned char chunk[64];
    for (size_t i = 0; i < n; i += sizeof chunk) {
        size_t m = n - i < sizeof chunk ? n - i : sizeof chunk;
        for (size_t j = 0; j < m; j++)
            chunk[j] = (unsigned char)tolower((unsigned char)s[i + j]);
        crypto_generichash_update(&st, chunk, m);
    }
    crypto_generichash_final(&st, out, KEY_BYTES);
}

/* An IP is hashed as its binary address, so "::ffff:203.0.113.7" and
 * "203.0.113.7" are one key; text that is no address is hashed as text. */
static void hash_ip(const char *s, unsigned char out[KEY_BYTES])
{
    int fam;
    unsigned char addr[16];
    if (!ip_parse(s, &fam, addr)) {
        hash_plain("ip-text", s, out);
        return;
    }
    crypto_generichash_state st;
    hash_start(&st, "ip");
    crypto_generichash_update(&st, addr, fam == AF_INET ? 4 : 16);
    crypto_generichash_final(&st, out, KEY_BYTES);
}

void fraud_keys_hash(const fraud_keys_t *k, fraud_key_hashes_t *out)
{
    memset(out, 0, sizeof *out);
    const char *v[FRAUD_NKEYS] = {k->fingerprint, k->email, k->ip, k->device_id};
    for (int i = 0; i < FRAUD_NKEYS; i++) {
        if (!v[i] || !*v[i])
            continue;
        out->have[i] = true;
        if (i == FRAUD_KEY_EMAIL)
            hash_email(v[i], out->h[i]);
        else if (i == FRAUD_KEY_IP)
            hash_ip(v[i], out->h[i]);
        else
            hash_plain(i == FRAUD_KEY_CARD ? "card" : "device", v[i], out->h[i]);
    }
}

fraud_keys_t fraud_keys_of(const char *merchant_id, const fraud_features_t *f)
{
    fraud_keys_t k = {.merchant_id = merchant_id,
                      .currency = f->currency,
                      .fingerprint = f->fingerprint,
                      .email = f->email,
                      .ip = f->ip,
                      .device_id = f->device_id};
    return k;
}

static void param_keys(db_params_t *p, const fraud_key_hashes_t *h)
{
    for (int i = 0; i < FRAUD_NKEYS; i++) {
        if (h->have[i])
            db_param_bytes(p, h->h[i], KEY_BYTES);
        else
            db_param_text(p, NULL);
    }
}

static void param_time(db_params_t *p, int64_t ms)
{
    if (ms > 0)
        db_param_int(p, ms);
    else
        db_param_text(p, NULL);
}

/* ---------------------------------------------------------------------- load */

/* One statement: the newest events of each given key (index-only range
 * scans, at most 1,000 per key so an attacking IP with a million events
 * costs what 1,000 cost; its counters saturate there, far above any sane
 * threshold), summed per key and card, then per key. Distinct cards are
 * the cards with at least one event in the window, which avoids a sort per
 * count(DISTINCT). The header columns (clock, rules version, merchant sums)
 * come once, with one row per key that has events. */
/* clang-format off */
#define DB_NOW_MS "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"
#define KEY_EVENTS(k, col, param)                                                                  \
    "SELECT " k " AS k, e.* FROM t, LATERAL (SELECT x.at_ms, x.card_key, x.attempts, "             \
    "x.declines, x.token_failures, x.amount, x.currency FROM gateway.fraud_events x "              \
    "WHERE " param "::bytea IS NOT NULL AND x.merchant_id = $1 AND x." col " = " param " "         \
    "AND x.at_ms > t.now - 86400000 AND x.at_ms <= t.now ORDER BY x.at_ms DESC LIMIT 1000) e"
#define PER_CARD(w, ms)                                                                            \
    "sum(attempts) FILTER (WHERE at_ms > t.now - " ms ") AS a" w ", "                              \
    "sum(declines) FILTER (WHERE at_ms > t.now - " ms ") AS d" w ", "                              \
    "sum(token_failures) FILTER (WHERE at_ms > t.now - " ms ") AS f" w ", "                        \
    "count(*) FILTER (WHERE at_ms > t.now - " ms ") AS n" w ", "                                   \
    "sum(amount) FILTER (WHERE currency = $3 AND at_ms > t.now - " ms ") AS s" w
#define PER_KEY(w)                                                                                 \
    "sum(a" w "), sum(d" w "), sum(f" w "), "                                                      \
    "count(*) FILTER (WHERE card_key IS NOT NULL AND n" w " > 0), sum(s" w ")"

DB_STMT(fraud_velocity_select,
        "WITH t AS (SELECT coalesce($2::bigint, " DB_NOW_MS ") AS now), "
        "ev AS (" KEY_EVENTS("0", "card_key", "$4") " UNION ALL "
                  KEY_EVENTS("1", "email_key", "$5") " UNION ALL "
                  KEY_EVENTS("2", "ip_key", "$6") " UNION ALL "
                  KEY_EVENTS("3", "device_key", "$7") "), "
        "g AS (SELECT ev.k, ev.card_key, " PER_CARD("0", "600000") ", "
               PER_CARD("1", "3600000") ", " PER_CARD("2", "86400000") " "
               "FROM ev, t GROUP BY ev.k, ev.card_key), "
        "c AS (SELECT k, " PER_KEY("0") ", " PER_KEY("1") ", " PER_KEY("2") " "
               "FROM g GROUP BY k) "
        "SELECT t.now, coalesce((SELECT r.version FROM gateway.fraud_rules r "
        "WHERE r.merchant_id = $1), 0), s.n, s.amount_sum, s.basket_sum, c.* FROM t "
        "CROSS JOIN LATERAL (SELECT coalesce(sum(d.n), 0) AS n, "
        "coalesce(sum(d.amount_sum), 0) AS amount_sum, "
        "coalesce(sum(d.basket_sum), 0) AS basket_sum "
        "FROM gateway.fraud_merchant_daily d WHERE d.merchant_id = $1 AND d.currency = $3 "
        "AND d.day > t.now / 86400000 - 7 AND d.day <= t.now / 86400000) s "
        "LEFT JOIN c ON true");
/* clang-format on */

#define COL_KEY    5
#define COL_NFIELD (COL_KEY + 1 + FRAUD_NWINDOWS * 5)

static void counts_read(const PGresult *r, fraud_velocity_t *out)
{
    for (int row = 0; row < PQntuples(r); row++) {
        if (db_isnull(r, row, COL_KEY))
            continue; /* no events for any key: the header row alone */
        int64_t k = db_i64(r, row, COL_KEY);
        if (k < 0 || k >= FRAUD_NKEYS)
            continue;
        int col = COL_KEY + 1;
        for (int w = 0; w < FRAUD_NWINDOWS; w++) {
            fraud_counts_t *c = &out->c[k][w];
            c->attempts = db_i64(r, row, col++);
            c->declines = db_i64(r, row, col++);
            c->token_failures = db_i64(r, row, col++);
            c->distinct_cards = db_i64(r, row, col++);
            c->amount_sum = db_i64(r, row, col++);
        }
    }
}

static void stats_read(const PGresult *r, fraud_velocity_t *out)
{
    int64_t n = db_i64(r, 0, 2);
    out->merchant_samples = n;
    if (n < FRAUD_STATS_MIN_SAMPLES)
        return;
    out->merchant_avg_amount = db_i64(r, 0, 3) / n;
    out->merchant_usual_basket = db_i64(r, 0, 4) / n;
}

db_status_t fraud_velocity_load(db_conn_t *c, const fraud_keys_t *k, int64_t now_ms,
                                fraud_velocity_t *out)
{
    memset(out, 0, sizeof *out);
    if (!k->merchant_id)
        return DB_ERROR;
    fraud_key_hashes_t h;
    fraud_keys_hash(k, &h);
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, k->merchant_id);
    param_time(&p, now_ms);
    db_param_text(&p, k->currency);
    param_keys(&p, &h);
    PGresult *r;
    db_status_t s = db_exec(c, &fraud_velocity_select, &p, &r);
    if (s != DB_OK)
        return s;
    if (PQntuples(r) < 1 || PQntuples(r) > FRAUD_NKEYS || PQnfields(r) != COL_NFIELD) {
        PQclear(r);
        return DB_ERROR;
    }
    out->now_ms = db_i64(r, 0, 0);
    out->rules_version = db_i64(r, 0, 1);
    counts_read(r, out);
    stats_read(r, out);
    for (int i = 0; i < FRAUD_NKEYS; i++)
        out->known[i] = h.have[i];
    PQclear(r);
    return DB_OK;
}

/* -------------------------------------------------------------------- record */

DB_STMT(fraud_event_insert,
        "SELECT gateway.fraud_event_record($1, $2::bigint, $3, $4::bytea, $5::bytea, $6::bytea, "
        "$7::bytea, $8::bigint, $9::bigint, $10::boolean, $11::boolean, $12::boolean)");

db_status_t fraud_velocity_record(db_conn_t *c, const fraud_event_t *ev)
{
    if (!ev->keys.merchant_id || ev->amount < 0 || ev->basket < 0)
        return DB_ERROR;
    fraud_key_hashes_t h;
    fraud_keys_hash(&ev->keys, &h);
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, ev->keys.merchant_id);
    param_time(&p, ev->at_ms);
    db_param_text(&p, ev->keys.currency);
    param_keys(&p, &h);
    db_param_int(&p, ev->amount);
    db_param_int(&p, ev->basket);
    db_param_bool(&p, ev->attempt);
    db_param_bool(&p, ev->declined);
    db_param_bool(&p, ev->token_failure);
    PGresult *r;
    db_status_t s = db_exec(c, &fraud_event_insert, &p, &r);
    PQclear(r);
    return s;
}

/* ------------------------------------------------------------------- cleanup */

/* One instance cleans at a time (a transaction-scoped advisory lock; the
 * others skip the round instead of deleting the same rows): the events are
 * insert-only for the service role, which holds no UPDATE right for a
 * FOR UPDATE SKIP LOCKED. The key is "fraudjan" in ASCII. */
DB_STMT(fraud_velocity_delete,
        "WITH t AS (SELECT coalesce($1::bigint, " DB_NOW_MS ") AS now, "
        "pg_try_advisory_xact_lock(7382069896037425518) AS mine), "
        "ev AS (DELETE FROM gateway.fraud_events e WHERE e.ctid = ANY (ARRAY("
        "  SELECT x.ctid FROM gateway.fraud_events x, t WHERE t.mine "
        "  AND x.at_ms <= t.now - 86400000 LIMIT $2)) RETURNING 1), "
        "dd AS (DELETE FROM gateway.fraud_merchant_daily d WHERE d.ctid = ANY (ARRAY("
        "  SELECT y.ctid FROM gateway.fraud_merchant_daily y, t WHERE t.mine "
        "  AND y.day < t.now / 86400000 - 8 LIMIT $2)) RETURNING 1) "
        "SELECT (SELECT count(*) FROM ev) + (SELECT count(*) FROM dd)");

db_status_t fraud_velocity_cleanup(db_conn_t *c, int64_t now_ms, int limit, int64_t *deleted)
{
    *deleted = 0;
    db_params_t p;
    db_params_init(&p);
    param_time(&p, now_ms);
    db_param_int(&p, limit > 0 ? limit : 10000);
    PGresult *r;
    db_status_t s = db_exec(c, &fraud_velocity_delete, &p, &r);
    if (s != DB_OK)
        return s;
    *deleted = db_i64(r, 0, 0);
    PQclear(r);
    return DB_OK;
}
