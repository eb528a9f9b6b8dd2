/* The outbox dispatcher: claims due rows in batches, delivers them in
 * parallel (signed webhook events, inventory commit and release requests),
 * and records every result in one statement. Delivery is at-least-once; an
 * event keeps its id on every delivery so receivers deduplicate on it.
 *
 * Trade-off: a batch is claimed, delivered, then recorded, so the database
 * sees two commits per batch instead of two per row; a slow endpoint holds
 * its batch back by at most the delivery timeout. */
#include "gateway/outbox.h"
#include "gateway/payment_ops.h"
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static pthread_t dispatcher;
static pthread_t *workers;
static int nworkers;
static bool running;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work_cv = PTHREAD_COND_INITIALIZER; /* workers wait for items */
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER; /* dispatcher waits for a batch */
static pthread_cond_t kick_cv = PTHREAD_COND_INITIALIZER; /* dispatcher idles here */
static bool stop_flag, kicked;
static outbox_item_t *batch;
static int batch_n, batch_next, batch_done;

/* ------------------------------------------------------------ metrics */

/* Delivery attempts by kind and result, and what became of paid orders
 * whose reservation had ended before their commit: an operator alerts on
 * failed deliveries and on any order.out_of_stock. */
static atomic_uint_fast64_t attempts_by[3][3]; /* [outbox_kind_t][outbox_result_t] */
static atomic_uint_fast64_t reclaimed, stock_gone;
static pthread_once_t metrics_once = PTHREAD_ONCE_INIT;

static void metrics_writer(gw_text_t *t)
{
    static const char *const kinds[] = {"event", "inventory_commit", "inventory_release"};
    static const char *const results[] = {"retry", "delivered", "failed"};
    gw_text_printf(t, "# HELP portcullis_outbox_deliveries_total Outbox delivery attempts by "
                      "kind and result.\n"
                      "# TYPE portcullis_outbox_deliveries_total counter\n");
    for (int k = 0; k < 3; k++)
        for (int r = 0; r < 3; r++)
            gw_text_printf(
                t, "portcullis_outbox_deliveries_total{kind=\"%s\",result=\"%s\"} %llu\n", kinds[k],
                results[r], (unsigned long long)atomic_load(&attempts_by[k][r]));
    gw_text_printf(t,
                   "# HELP portcullis_inventory_reclaims_total Paid orders whose reservation ended "
                   "before the commit: stock taken again, or sold meanwhile (order.out_of_stock).\n"
                   "# TYPE portcullis_inventory_reclaims_total counter\n"
                   "portcullis_inventory_reclaims_total{result=\"taken_again\"} %llu\n"
                   "portcullis_inventory_reclaims_total{result=\"out_of_stock\"} %llu\n",
                   (unsigned long long)atomic_load(&reclaimed),
                   (unsigned long long)atomic_load(&stock_gone));
}

static void metrics_register(void)
{
    gw_metrics_add_writer(metrics_writer);
}

/* ------------------------------------------------------------ signing */

static void hmac_hex(const secret_t *key, const char *t, const char *body, size_t len,
                     char out[65])
{
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key->data, key->len);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)t, strlen(t));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2hex(out, 65, mac, sizeof mac);
    sodium_memzero(&st, sizeof st);
}

void gw_webhook_sign(const secret_t *secret, const secret_t *previous, int64_t t,
                     const char *body, size_t len, char *out, size_t outlen)
{
    char ts[24], cur[65], prev[65];
    snprintf(ts, sizeof ts, "%lld", (long long)t);
    hmac_hex(secret, ts, body, len, cur);
    if (previous) {
        hmac_hex(previous, ts, body, len, prev);
        snprintf(out, outlen, "t=%s,v1=%s,v1=%s", ts, cur, prev);
    } else {
        snprintf(out, outlen, "t=%s,v1=%s", ts, cur);
    }
}

/* Unsealed signing secrets, cached by a hash of their sealed form, so a
 * delivery costs no vault round trip; a rotated secret has a new sealed
 * form and simply misses. Two ways per set, so an endpoint's current and
 * previous secrets (both needed during a rotation) never evict each other.
 * Deliveries sign under the cache lock instead of copying secrets out (an
 * HMAC costs microseconds; a guarded copy costs system calls); a secret
 * unsealed for this delivery signs it whether or not it stays cached. */
#define SECRET_SETS 64
static struct {
    unsigned char h[32];
    secret_t *s;
} secret_cache[SECRET_SETS][2];
static unsigned secret_victim[SECRET_SETS];
static pthread_mutex_t secret_mu = PTHREAD_MUTEX_INITIALIZER;

static size_t secret_set(const char *merchant_id, const char *sealed, unsigned char h[32])
{
    crypto_generichash(h, 32, (const unsigned char *)sealed, strlen(sealed),
                       (const unsigned char *)merchant_id, strlen(merchant_id));
    return h[0] % SECRET_SETS;
}

/* The cached secret for this sealed text (call with secret_mu held). */
static const secret_t *secret_cached(const char *merchant_id, const char *sealed)
{
    unsigned char h[32];
    if (!sealed)
        return NULL;
    size_t set = secret_set(merchant_id, sealed, h);
    for (int w = 0; w < 2; w++)
        if (secret_cache[set][w].s && sodium_memcmp(secret_cache[set][w].h, h, 32) == 0)
            return secret_cache[set][w].s;
    return NULL;
}

/* Caches s (taken) unless it already is (call with secret_mu held). */
static void secret_store(const char *merchant_id, const char *sealed, secret_t *s)
{
    if (secret_cached(merchant_id, sealed)) {
        secret_free(s);
        return;
    }
    unsigned char h[32];
    size_t set = secret_set(merchant_id, sealed, h);
    int w = !secret_cache[set][0].s   ? 0
            : !secret_cache[set][1].s ? 1
                                      : (int)(secret_victim[set]++ & 1);
    secret_free(secret_cache[set][w].s);
    memcpy(secret_cache[set][w].h, h, 32);
    secret_cache[set][w].s = s;
}

/* The secret for sealed: *own is set when it had to be unsealed (the
 * caller signs with it, then stores it). False when the vault cannot. */
static bool secret_fetch(const char *merchant_id, const char *sealed, secret_t **own)
{
    *own = NULL;
    pthread_mutex_lock(&secret_mu);
    bool have = secret_cached(merchant_id, sealed) != NULL;
    pthread_mutex_unlock(&secret_mu);
    if (have)
        return true;
    *own = gw_secret_unseal(merchant_id, "webhook", sealed);
    return *own != NULL;
}

/* Portcullis-Signature for one delivery; false when the secret is not
 * available (the vault is down): the delivery is retried later. */
static bool sign_delivery(const outbox_item_t *it, const char *body, size_t len, char *out,
                          size_t outlen)
{
    secret_t *own = NULL, *own_prev = NULL;
    if (!secret_fetch(it->merchant_id, it->secret_sealed, &own))
        return false;
    if (it->previous_sealed && !secret_fetch(it->merchant_id, it->previous_sealed, &own_prev))
        log_warn("outbox: the previous signing secret could not be unsealed; one signature sent");
    pthread_mutex_lock(&secret_mu);
    const secret_t *sec = own ? own : secret_cached(it->merchant_id, it->secret_sealed);
    const secret_t *prev =
        own_prev ? own_prev : secret_cached(it->merchant_id, it->previous_sealed);
    if (sec)
        gw_webhook_sign(sec, prev, (int64_t)time(NULL), body, len, out, outlen);
    if (own)
        secret_store(it->merchant_id, it->secret_sealed, own);
    if (own_prev)
        secret_store(it->merchant_id, it->previous_sealed, own_prev);
    pthread_mutex_unlock(&secret_mu);
    return sec != NULL; /* NULL only if evicted between fetch and sign: retried later */
}

/* ----------------------------------------------------------- delivery */

static double backoff_s(int attempts)
{
    double base = (double)gw_cfg.outbox_retry_base_ms / 1000.0;
    double cap = (double)gw_cfg.outbox_retry_max_ms / 1000.0;
    double d = base;
    for (int i = 1; i < attempts && d < cap; i++)
        d *= 2;
    if (d > cap)
        d = cap;
    /* equal jitter: half fixed, half random, so retries of many rows spread */
    return d / 2 + (d / 2) * ((double)randombytes_uniform(1000001) / 1e6);
}

static void deliver_event(outbox_item_t *it)
{
    if (!it->ev_data || !it->ev_type || !it->secret_sealed || !it->target) {
        it->result = OUTBOX_FAILED;
        snprintf(it->error, sizeof it->error, "event or endpoint no longer exists");
        return;
    }
    char *body = str_printf("{\"id\":\"%s\",\"type\":\"%s\",\"created\":\"%s\",\"data\":%s}",
                            it->event_id, it->ev_type, it->ev_created, it->ev_data);
    char sig[220], sighdr[260];
    if (!sign_delivery(it, body, strlen(body), sig, sizeof sig)) {
        it->result = OUTBOX_RETRY;
        snprintf(it->error, sizeof it->error, "signing secret unavailable (vault)");
        free(body);
        return;
    }
    snprintf(sighdr, sizeof sighdr, "Portcullis-Signature: %s", sig);
    const char *headers[] = {"Content-Type: application/json", "User-Agent: Portcullis/1.0",
                             sighdr, NULL};
    httpc_request_t rq = {.method = "POST",
                          .url = it->target,
                          .headers = headers,
                          .body = body,
                          .body_len = strlen(body),
                          .connect_timeout_ms = 2000,
                          .timeout_ms = gw_cfg.outbox_timeout_ms,
                          .max_response = 64 * 1024,
                          .untrusted_target = true};
    httpc_response_t rs;
    httpc_status_t hs = httpc_perform(&rq, &rs);
    if (hs == HTTPC_OK && rs.http_status >= 200 && rs.http_status < 300) {
        it->result = OUTBOX_DELIVERED;
    } else {
        it->result = OUTBOX_RETRY;
        if (hs == HTTPC_OK)
            snprintf(it->error, sizeof it->error, "endpoint answered %ld", rs.http_status);
        else
            snprintf(it->error, sizeof it->error, "%s", httpc_status_str(hs));
    }
    httpc_response_free(&rs);
    free(body);
}

/* The order lines of the checkout holding reservation `rid` (NULL and
 * *found false when no checkout holds it); false when the database fails. */
static bool reservation_lines(const char *rid, json_t **items, char checkout_id[IDS_MAX],
                              bool *found)
{
    char merchant[IDS_MAX];
    bool expiring = false;
    char *text = NULL;
    *items = NULL;
    db_conn_t *c = db_pool_acquire(gw.db);
    db_status_t s = c ? db_outbox_reservation_owner(c, rid, checkout_id, merchant) : DB_UNAVAILABLE;
    if (s == DB_OK)
        s = db_checkout_hold(c, merchant, checkout_id, &expiring, &text);
    db_pool_release(c);
    *found = s == DB_OK && text;
    if (*found)
        *items = json_loads(text, 0, NULL);
    free(text);
    return s == DB_OK || s == DB_NOT_FOUND;
}

static void out_of_stock(outbox_item_t *it, const char *checkout_id, json_t *short_lines)
{
    db_conn_t *c = db_pool_acquire(gw.db);
    db_status_t s =
        c ? db_emit_checkout_event(c, checkout_id, "order.out_of_stock") : DB_UNAVAILABLE;
    db_pool_release(c);
    if (s != DB_OK) {
        it->result = OUTBOX_RETRY;
        snprintf(it->error, sizeof it->error, "stock gone; order.out_of_stock not recorded yet");
        return;
    }
    gw_outbox_kick();
    atomic_fetch_add(&stock_gone, 1);
    it->result = OUTBOX_FAILED;
    snprintf(it->error, sizeof it->error,
             "reservation ended before the commit and the stock is sold; order.out_of_stock sent");
    log_json(LOG_ERROR, "a paid order's stock was sold before its commit",
             json_pack("{s:s, s:s, s:O}", "checkout_id", checkout_id, "reservation_id", it->target,
                       "lines", short_lines ? short_lines : json_null()));
}

/* A paid order's commit refused because its reservation ended (inventory
 * down past the reservation's TTL, a checkout settled late by recovery):
 * the stock is taken again under a reservation derived from the first, then
 * committed. The new id must be the same on every retry, whatever the
 * attempt: a retry whose earlier reserve or commit went through but whose
 * answer was lost must find that reservation again (PUT is idempotent by
 * id, a committed one answers as such, and committing it again is a no-op),
 * or the order would take its stock twice. So the ids are tried in a fixed
 * order, <first>-c1, -c2...: one that is closed (expired or released before
 * its commit) is passed over for the next, the first live or committed one
 * is committed. When the stock is gone, the order cannot be served from
 * stock: the row fails and order.out_of_stock tells the platform, whose call
 * a refund or a backorder is. */
#define RECLAIM_IDS 8

static plat_status_t reserve_again(const char *target, const json_t *items, char *rid, size_t cap,
                                   json_t **short_lines)
{
    plat_status_t st = PLAT_UNAVAILABLE;
    for (int k = 1; k <= RECLAIM_IDS; k++) {
        snprintf(rid, cap, "%s-c%d", target, k);
        st = gw_inventory_reserve(rid, items, (int)gw_cfg.reservation_ttl_s, short_lines);
        if (st != PLAT_REJECTED || json_array_size(*short_lines) > 0)
            return st;             /* reserved (or replayed), unavailable, or short */
        json_decref(*short_lines); /* closed: the next id */
        *short_lines = NULL;
    }
    return st;
}

static void reclaim(outbox_item_t *it)
{
    char checkout_id[IDS_MAX] = "", rid[256];
    json_t *items = NULL, *short_lines = NULL;
    bool found = false;
    it->result = OUTBOX_RETRY;
    if (!reservation_lines(it->target, &items, checkout_id, &found)) {
        snprintf(it->error, sizeof it->error, "reservation ended; database unavailable");
        return;
    }
    if (!found || !items) {
        json_decref(items);
        it->result = OUTBOX_FAILED;
        snprintf(it->error, sizeof it->error, "inventory refused commit; no order holds it");
        return;
    }
    plat_status_t st = reserve_again(it->target, items, rid, sizeof rid, &short_lines);
    json_decref(items);
    long http = 0;
    if (st == PLAT_OK && (st = gw_inventory_finish(rid, true, &http)) == PLAT_REJECTED &&
        (http == 408 || http == 429))
        st = PLAT_UNAVAILABLE; /* "not now": the same id next time */
    if (st == PLAT_OK) {
        it->result = OUTBOX_DELIVERED;
        atomic_fetch_add(&reclaimed, 1);
        log_json(LOG_WARN, "a paid order's reservation had ended; its stock was taken again",
                 json_pack("{s:s, s:s, s:s}", "checkout_id", checkout_id, "reservation_id",
                           it->target, "new_reservation_id", rid));
    } else if (st == PLAT_REJECTED && json_array_size(short_lines) > 0) {
        out_of_stock(it, checkout_id, short_lines);
    } else if (st == PLAT_REJECTED && !short_lines) {
        /* every id closed, or the new reservation refused its commit */
        it->result = OUTBOX_FAILED;
        snprintf(it->error, sizeof it->error, "reservation ended; taking the stock again refused");
        log_json(LOG_ERROR, "a paid order's stock could not be taken again",
                 json_pack("{s:s, s:s, s:s}", "checkout_id", checkout_id, "reservation_id",
                           it->target, "last_reservation_id", rid));
    } else {
        snprintf(it->error, sizeof it->error, "reservation ended; taking the stock again: %s",
                 st == PLAT_REJECTED ? "refused" : "inventory unavailable");
    }
    json_decref(short_lines);
}

/* A release is queued at once when a reserve's outcome is unknown (it timed
 * out on our side), and so may reach the inventory before the reserve
 * itself: "no such reservation" then, and the reserve arriving after it
 * would hold the stock, with nobody left to release it, until its TTL (a
 * day for a checkout held for review). For twice the platform timeout and
 * a margin, a release's 404 is therefore "not yet", tried again; after
 * that, a reservation that is not there was never made. */
static bool reserve_may_be_on_its_way(const outbox_item_t *it)
{
    return it->age_s * 1000 < 2 * (int64_t)gw_cfg.platform_timeout_ms + 5000;
}

static void deliver_inventory(outbox_item_t *it)
{
    bool commit = it->kind == OUTBOX_INVENTORY_COMMIT;
    long http = 0;
    plat_status_t st = gw_inventory_finish(it->target, commit, &http);
    if (!commit && http == 404 && reserve_may_be_on_its_way(it)) {
        it->result = OUTBOX_RETRY;
        snprintf(it->error, sizeof it->error, "no such reservation yet; its reserve may be late");
    } else if (st == PLAT_OK || (!commit && http == 404)) {
        it->result = OUTBOX_DELIVERED;
    } else if (commit && http == 404 && it->maybe_done) {
        /* an earlier try may have committed it, and the inventory has since
         * forgotten the reservation: taking the stock again could sell it
         * twice, so a person decides */
        it->result = OUTBOX_FAILED;
        snprintf(it->error, sizeof it->error,
                 "no such reservation, and an earlier commit's outcome is unknown");
        log_json(LOG_ERROR, "inventory commit needs manual reconciliation",
                 json_pack("{s:s}", "reservation_id", it->target));
    } else if (commit && st == PLAT_REJECTED && (http == 404 || http == 409)) {
        reclaim(it); /* a 409: the inventory says it ended uncommitted */
    } else if (st == PLAT_REJECTED && http != 408 && http != 429) {
        /* e.g. committing a reservation that expired: retrying cannot help */
        it->result = OUTBOX_FAILED;
        snprintf(it->error, sizeof it->error, "inventory refused %s (HTTP %ld)",
                 commit ? "commit" : "release", http);
        log_json(LOG_ERROR, "inventory refused an outbox request",
                 json_pack("{s:s, s:s, s:i}", "reservation_id", it->target, "op",
                           commit ? "commit" : "release", "status", (int)http));
    } else {
        /* down, timed out, or "not now" (408, 429): a paid order's commit must
         * not be given up for a passing refusal */
        it->result = OUTBOX_RETRY;
        it->unknown_now = commit && (st == PLAT_UNKNOWN || http >= 500);
        snprintf(it->error, sizeof it->error, "inventory %s",
                 st == PLAT_UNKNOWN    ? "timeout"
                 : st == PLAT_REJECTED ? "busy"
                                       : "unavailable");
    }
}

static void deliver(outbox_item_t *it)
{
    if (it->kind == OUTBOX_EVENT)
        deliver_event(it);
    else
        deliver_inventory(it);
    if (it->result == OUTBOX_RETRY) {
        if (it->too_old) {
            it->result = OUTBOX_FAILED;
            snprintf(it->error + strlen(it->error), sizeof it->error - strlen(it->error),
                     "; gave up after max age");
        } else {
            it->retry_in_s = backoff_s(it->attempts);
        }
    }
}

static int64_t batch_handout_until; /* under mu, with the batch */

static void *worker_main(void *arg)
{
    pthread_mutex_lock(&mu);
    for (;;) {
        while (!stop_flag && batch_next >= batch_n)
            pthread_cond_wait(&work_cv, &mu);
        if (stop_flag && batch_next >= batch_n)
            break;
        outbox_item_t *it = &batch[batch_next++];
        bool late = time_mono_us() > batch_handout_until;
        pthread_mutex_unlock(&mu);
        if (late) {
            it->result = OUTBOX_RETRY; /* given back, not attempted */
            it->retry_in_s = -1;
        } else {
            deliver(it);
            atomic_fetch_add(&attempts_by[it->kind][it->result], 1);
        }
        pthread_mutex_lock(&mu);
        if (++batch_done == batch_n)
            pthread_cond_signal(&done_cv);
    }
    pthread_mutex_unlock(&mu);
    httpc_thread_cleanup();
    return NULL;
}

static void items_free(outbox_item_t *items, int n)
{
    for (int i = 0; i < n; i++) {
        free(items[i].target);
        free(items[i].ev_type);
        free(items[i].ev_data);
        free(items[i].secret_sealed);
        free(items[i].previous_sealed);
    }
    free(items);
}

/* How long a claimed batch is ours. Workers take a row only in the first
 * part of it (the hand-out window), so every delivery started ends, timeouts
 * included, before the lease does; rows not handed out by then are given
 * back uncounted and claimed again next round. A short lease matters: it is
 * also how long a crashed dispatcher's batch waits before another instance
 * delivers it. A batch that overruns anyway may be delivered twice
 * (receivers deduplicate on the event id, inventory requests are idempotent
 * by reservation), never lost. */
/* The longest one item can take: a webhook delivery (total + connect), or an
 * inventory commit that has to take its stock again (commit, reserve,
 * commit); the lease's 10 s of slack covers the reclaim's database reads. */
static int64_t call_us(void)
{
    int64_t hook = (int64_t)gw_cfg.outbox_timeout_ms + 2000;
    int64_t inventory =
        3 * ((int64_t)gw_cfg.platform_timeout_ms + (int64_t)gw_cfg.platform_connect_timeout_ms);
    return (hook > inventory ? hook : inventory) * 1000;
}

static int lease_s(void)
{
    return (int)(2 * call_us() / 1000000 + 10);
}

static int64_t handout_us(void)
{
    return (int64_t)lease_s() * 1000000 - call_us() - 5000000;
}

/* One round: claim and lease due rows, deliver them in parallel with no
 * transaction open, record the results in one statement. Returns rows
 * handled. */
static int round_once(void)
{
    db_conn_t *c = db_pool_acquire(gw.db);
    if (!c)
        return 0;
    outbox_item_t *items = NULL;
    int n = 0;
    int64_t claimed = time_mono_us();
    db_status_t s = db_outbox_claim(c, (int)gw_cfg.outbox_batch, gw_cfg.outbox_max_age_s, lease_s(),
                                    &items, &n);
    db_pool_release(c); /* not held through the deliveries */
    if (s != DB_OK || n == 0) {
        items_free(items, n);
        return 0;
    }
    pthread_mutex_lock(&mu);
    bool stopping = stop_flag; /* the workers may be gone: nothing to hand them */
    if (!stopping) {
        batch = items;
        batch_n = n;
        batch_next = 0;
        batch_done = 0;
        batch_handout_until = claimed + handout_us();
        pthread_cond_broadcast(&work_cv);
        while (batch_done < batch_n)
            pthread_cond_wait(&done_cv, &mu);
        batch = NULL;
        batch_n = batch_next = batch_done = 0;
    }
    pthread_mutex_unlock(&mu);
    if (stopping) {
        items_free(items, n); /* leased, undelivered: due again when the lease ends */
        return 0;
    }
    c = db_pool_acquire(gw.db);
    s = c ? db_outbox_results(c, items, n) : DB_UNAVAILABLE;
    db_pool_release(c);
    if (s != DB_OK)
        log_warn("outbox: recording %d delivery results failed; they will be delivered again "
                 "when their lease ends",
                 n);
    items_free(items, n);
    return n;
}

static void *dispatcher_main(void *arg)
{
    while (true) {
        int n = round_once();
        pthread_mutex_lock(&mu);
        if (stop_flag) {
            pthread_mutex_unlock(&mu);
            break;
        }
        if (n < gw_cfg.outbox_batch && !kicked) {
            struct timespec dl;
            clock_gettime(CLOCK_REALTIME, &dl);
            dl.tv_nsec += (long)(gw_cfg.outbox_poll_ms % 1000) * 1000000L;
            dl.tv_sec += gw_cfg.outbox_poll_ms / 1000 + dl.tv_nsec / 1000000000L;
            dl.tv_nsec %= 1000000000L;
            pthread_cond_timedwait(&kick_cv, &mu, &dl);
        }
        kicked = false;
        bool stop = stop_flag;
        pthread_mutex_unlock(&mu);
        if (stop)
            break;
    }
    httpc_thread_cleanup();
    return NULL;
}

void gw_outbox_kick(void)
{
    pthread_mutex_lock(&mu);
    kicked = true;
    pthread_cond_signal(&kick_cv);
    pthread_mutex_unlock(&mu);
}

int gw_outbox_start(void)
{
    if (gw_cfg.outbox_workers <= 0)
        return 0;
    pthread_once(&metrics_once, metrics_register);
    stop_flag = false;
    nworkers = (int)gw_cfg.outbox_workers;
    workers = calloc((size_t)nworkers, sizeof *workers);
    for (int i = 0; i < nworkers; i++)
        if (pthread_create(&workers[i], NULL, worker_main, NULL) != 0)
            return -1;
    if (pthread_create(&dispatcher, NULL, dispatcher_main, NULL) != 0)
        return -1;
    running = true;
    return 0;
}

void gw_outbox_stop(void)
{
    if (!running)
        return;
    pthread_mutex_lock(&mu);
    stop_flag = true;
    pthread_cond_broadcast(&kick_cv);
    pthread_cond_broadcast(&work_cv);
    pthread_mutex_unlock(&mu);
    pthread_join(dispatcher, NULL);
    for (int i = 0; i < nworkers; i++)
        pthread_join(workers[i], NULL);
    free(workers);
    running = false;
    for (int i = 0; i < SECRET_SETS; i++)
        for (int w = 0; w < 2; w++) {
            secret_free(secret_cache[i][w].s);
            secret_cache[i][w].s = NULL;
        }
}
