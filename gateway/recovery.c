/* The recovery worker: on start and every recovery.interval_ms it finishes
 * what a crash or an unknown provider outcome left behind. A checkout whose
 * request died (its lease ran out) or whose outcome is unknown is settled by
 * looking its last attempt up at the provider: found → finished with that
 * outcome; authoritatively absent → failed and its reservation released;
 * still unknown → marked processing and tried again later. Payment
 * operations left pending are re-sent with their own idempotency key until
 * the provider answers, for 23 hours: past that a provider may have forgotten
 * the key (Stripe keeps them 24 hours) and a re-send could move the money a
 * second time, so the operation stays unknown for a person to settle. Any
 * number of instances can run it. */
#include "gateway/recovery_db.h"
#include "gateway/checkout_flow.h"
#include "vault/vault.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH 32

static pthread_t worker;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static bool stop_flag, running;

static int lookup_fetch_card(const gw_stale_checkout_t *sc, prv_card_t **out)
{
    vault_card_t *vc = NULL;
    if (vault_detokenize(gw_vault(), sc->merchant_id, sc->token, "lookup", &vc) != VAULT_OK)
        return -1;
    prv_card_t *card = prv_card_new();
    if (card) {
        memcpy(card->pan, vc->pan, sizeof card->pan);
        card->exp_month = vc->exp_month;
        card->exp_year = vc->exp_year;
        memcpy(card->name, vc->name, sizeof card->name);
        card->has_cvc = false; /* a lookup never needs the CVC */
    }
    vault_card_free(vc);
    *out = card;
    return card ? 0 : -1;
}

/* The outcome of the checkout's last attempt, asked of its provider. */
static prv_result_t settle_attempt(const gw_stale_checkout_t *sc)
{
    prv_result_t res;
    memset(&res, 0, sizeof res);
    res.outcome = PRV_UNKNOWN;
    gw_providers_t *ps = NULL;
    if (gw_providers_get(sc->merchant_id, &ps) != DB_OK)
        return res;
    const prv_config_t *cfg = gw_providers_find(ps, sc->provider);
    if (cfg && !prv_lookup_valid_at(cfg, sc->provider_ref, sc->attempt_age_s)) {
        /* a replay now would be a new payment, not a look at the old one */
        snprintf(res.reason, sizeof res.reason, "lookup_window_passed");
        log_json(LOG_ERROR, "checkout needs manual reconciliation",
                 json_pack("{s:s, s:s, s:s, s:I}", "checkout_id", sc->id, "provider", sc->provider,
                           "attempt_key", sc->attempt_key, "attempt_age_s",
                           (json_int_t)sc->attempt_age_s));
    } else if (cfg) {
        prv_payment_t pay = {.merchant_id = sc->merchant_id, .payment_id = sc->payment_id,
                             .amount = sc->amount, .currency = sc->currency,
                             .brand = sc->brand[0] ? sc->brand : NULL,
                             .country = sc->country[0] ? sc->country : NULL,
                             .capture = sc->capture && strcmp(sc->fraud_decision, "review") != 0,
                             .description = sc->id};
        prv_card_t *card = NULL;
        if (lookup_fetch_card(sc, &card) != 0)
            card = NULL;
        res = prv_lookup(cfg, &pay, sc->attempt_key, sc->provider_ref, card);
        prv_card_free(card);
        if (res.outcome == PRV_UNAVAILABLE && !strcmp(res.reason, "not_found") &&
            sc->attempt_age_s < prv_absent_after_s(cfg)) {
            res.outcome = PRV_UNKNOWN; /* too soon for a search's miss to prove anything */
            snprintf(res.reason, sizeof res.reason, "not_found_yet");
        }
    }
    gw_providers_release(ps);
    return res;
}

/* True when no provider call can have been made for this checkout: the
 * request fetches the card for its authorization (which consumes the CVC)
 * before its first provider call, and this checkout's lease, which bounds
 * when that call could start, has run out. A token that never had a CVC, or
 * whose CVC expired, says nothing and the attempt is looked up instead. */
static bool never_sent(const gw_stale_checkout_t *sc)
{
    vault_card_meta_t m;
    return vault_card_info(gw_vault(), sc->merchant_id, sc->token, &m) == VAULT_OK && m.has_cvc;
}

static void recover_checkout(const gw_stale_checkout_t *sc)
{
    prv_result_t res;
    memset(&res, 0, sizeof res);
    if (!sc->has_attempt) {
        res.outcome = PRV_UNAVAILABLE;
    } else if (!strcmp(sc->attempt_state, "pending") && never_sent(sc)) {
        /* died before its first provider call (in the reservation, say): no
         * lookup, which for Adyen would be a first authorization, made late
         * and without the CVC */
        res.outcome = PRV_UNAVAILABLE;
        snprintf(res.reason, sizeof res.reason, "never_sent");
    } else if (!strcmp(sc->attempt_state, "pending") || !strcmp(sc->attempt_state, "unknown")) {
        res = settle_attempt(sc);
    } else {
        /* the attempt's outcome was recorded but the checkout not finished */
        static const struct {
            const char *state;
            prv_outcome_t o;
        } map[] = {{"authorized", PRV_AUTHORIZED}, {"captured", PRV_CAPTURED},
                   {"declined", PRV_DECLINED},     {"unavailable", PRV_UNAVAILABLE},
                   {"skipped", PRV_UNAVAILABLE}};
        res.outcome = PRV_UNKNOWN;
        for (size_t i = 0; i < PC_ARRAY_LEN(map); i++)
            if (!strcmp(map[i].state, sc->attempt_state))
                res.outcome = map[i].o;
        snprintf(res.provider_ref, sizeof res.provider_ref, "%s", sc->provider_ref);
    }
    if (res.outcome == PRV_UNKNOWN && !strcmp(sc->status, "processing"))
        return; /* nothing new; the claim's lease brings it back later */
    gw_finish_ctx_t fc = {.checkout_id = sc->id, .amount = sc->amount,
                          .review = !strcmp(sc->fraud_decision, "review"),
                          .attempt_seq = sc->has_attempt ? sc->attempt_seq : 0,
                          .provider = sc->provider[0] ? sc->provider : NULL};
    gwdb_finish_result_t fin;
    db_status_t s = gw_checkout_finish_outcome(&fc, &res, &fin);
    if (s == DB_OK) {
        log_json(LOG_INFO, "recovery finished a checkout",
                 json_pack("{s:s, s:s, s:s}", "checkout_id", sc->id, "outcome",
                           prv_outcome_str(res.outcome), "changed", fin.changed ? "yes" : "no"));
        free(fin.body);
    }
}

typedef struct {
    const gw_stale_op_t *so;
    const char *state;
    const prv_result_t *res;
} idem_done_t;

/* The route's shape, read from the answer its key got first (a review
 * decision answers with the checkout, a refund with a refund object); from
 * the kind when the request died before answering. */
static gw_op_shape_t stored_shape(const char *stored, gw_op_kind_t kind)
{
    json_t *j = json_loads(stored, 0, NULL);
    const char *o = json_string_value(json_object_get(j, "object"));
    gw_op_shape_t shape = kind == GW_OP_REFUND ? GW_OP_SHAPE_REFUND : GW_OP_SHAPE_PAYMENT;
    if (o && !strcmp(o, "checkout"))
        shape = GW_OP_SHAPE_CHECKOUT;
    json_decref(j);
    return shape;
}

/* The key that asked for the operation now replays its final answer, error
 * included: a refund the provider refused must not replay as a 200. */
static db_status_t op_idem_txn(db_conn_t *c, void *cls)
{
    idem_done_t *t = cls;
    char *stored = NULL, *body = NULL;
    db_status_t s = db_idem_resource_body(c, t->so->merchant_id, t->so->op.op_id, &stored);
    if (s == DB_NOT_FOUND)
        return DB_OK; /* asked without a key */
    int status = 0;
    if (s == DB_OK &&
        !(body = gw_op_render(c, t->so->merchant_id, t->so->payment_id, &t->so->op, t->state,
                              t->res, stored_shape(stored, t->so->op.kind), &status)))
        s = DB_ERROR;
    if (s == DB_OK)
        s = db_idem_complete_resource(c, t->so->merchant_id, t->so->op.op_id, status, body);
    free(stored);
    free(body);
    return s;
}

static void recover_op(const gw_stale_op_t *so)
{
    prv_result_t res = gw_op_call(so->merchant_id, &so->op);
    /* An earlier try may have reached the provider, so only the provider's
     * own word ends the operation: done, or refused (declined). A retry that
     * was not sent, was rate limited or refused our credentials, or could not
     * even read the settings proves nothing about the earlier try; marking
     * it failed would free the amount for a second refund of the same money. */
    if (res.outcome == PRV_UNAVAILABLE)
        res.outcome = PRV_UNKNOWN;
    const char *state;
    if (gw_op_complete(so->merchant_id, &so->op, &res, &state) != DB_OK ||
        !strcmp(state, "unknown"))
        return;
    idem_done_t t = {.so = so, .state = state, .res = &res};
    PC_IGNORE(db_txn_run(gw.db, DB_READ_COMMITTED, "op_idem_done", op_idem_txn, &t));
    log_json(LOG_INFO, "recovery finished a payment operation",
             json_pack("{s:s, s:s}", "operation", so->op.op_id, "state", state));
}

int gw_recovery_run_once(void)
{
    int handled = 0;
    db_conn_t *c = db_pool_acquire(gw.db);
    if (!c)
        return 0;
    gw_stale_checkout_t *cs = NULL;
    gw_stale_op_t *ops = NULL;
    int nc = 0, no = 0;
    int lease = (int)gw_cfg.checkout_lease_s;
    db_status_t s = db_recovery_claim_checkouts(c, BATCH, lease, &cs, &nc);
    if (s == DB_OK)
        s = db_recovery_claim_ops(c, BATCH, lease, &ops, &no);
    int expired = 0;
    PC_IGNORE(db_idem_expire(c, gw_cfg.idempotency_retention_h, &expired));
    PC_IGNORE(db_idem_release_orphans(c, 2 * lease, &expired));
    db_pool_release(c);
    for (int i = 0; i < nc; i++)
        recover_checkout(&cs[i]);
    for (int i = 0; i < no; i++)
        recover_op(&ops[i]);
    handled = nc + no;
    free(cs);
    free(ops);
    return handled;
}

static void *recovery_main(void *arg)
{
    pthread_mutex_lock(&mu);
    while (!stop_flag) {
        pthread_mutex_unlock(&mu);
        int n = gw_recovery_run_once();
        pthread_mutex_lock(&mu);
        if (stop_flag || n >= BATCH)
            continue;
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += gw_cfg.recovery_interval_ms / 1000;
        dl.tv_nsec += (long)(gw_cfg.recovery_interval_ms % 1000) * 1000000L;
        if (dl.tv_nsec >= 1000000000L) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&cv, &mu, &dl);
    }
    pthread_mutex_unlock(&mu);
    httpc_thread_cleanup();
    return NULL;
}

int gw_recovery_start(void)
{
    stop_flag = false;
    if (pthread_create(&worker, NULL, recovery_main, NULL) != 0)
        return -1;
    running = true;
    return 0;
}

void gw_recovery_stop(void)
{
    if (!running)
        return;
    pthread_mutex_lock(&mu);
    stop_flag = true;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
    pthread_join(worker, NULL);
    running = false;
}
