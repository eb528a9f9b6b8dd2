/* The failover engine and the single provider operations under it. Every
 * operation is validated before anything is sent, timed, recorded in health
 * and logged as one line (never with card data or credentials). prv_execute
 * walks a plan and never moves on while an attempt's outcome is unknown. */
#include "providers/internal.h"
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------- basics */

const char *prv_outcome_str(prv_outcome_t o)
{
    switch (o) {
    case PRV_AUTHORIZED:
        return "authorized";
    case PRV_CAPTURED:
        return "captured";
    case PRV_DECLINED:
        return "declined";
    case PRV_UNAVAILABLE:
        return "unavailable";
    case PRV_VOIDED:
        return "voided";
    case PRV_REFUNDED:
        return "refunded";
    default:
        return "unknown";
    }
}

prv_card_t *prv_card_new(void)
{
    return guarded_alloc(sizeof(prv_card_t)); /* zero-filled */
}

void prv_card_free(prv_card_t *card)
{
    guarded_free(card); /* wiped at once */
}

static bool safe_id(const char *s)
{
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-'))
            return false;
    return true;
}

void prv_attempt_key(const char *payment_id, int seq, char out[PRV_KEY_MAX])
{
    const char *id = payment_id ? payment_id : "";
    char suffix[16];
    snprintf(suffix, sizeof suffix, "-a%d", seq);
    if (*id && safe_id(id) && strlen(id) + strlen(suffix) <= 48) {
        snprintf(out, PRV_KEY_MAX, "%s%s", id, suffix);
        return;
    }
    /* too long or odd characters for a provider reference: a fixed-length
     * digest keeps the key stable and inside every provider's limits */
    unsigned char h[16];
    char hex[33];
    crypto_generichash(h, sizeof h, (const unsigned char *)id, strlen(id), NULL, 0);
    sodium_bin2hex(hex, sizeof hex, h, sizeof h);
    snprintf(out, PRV_KEY_MAX, "k%s%s", hex, suffix);
}

/* ------------------------------------------------------------ checks */

static bool card_ok(const prv_card_t *c)
{
    size_t n = c ? strnlen(c->pan, sizeof c->pan) : 0;
    bool ok = n >= 12 && n <= 19 && c->exp_month >= 1 && c->exp_month <= 12 &&
              c->exp_year >= 2000 && c->exp_year <= 2200 &&
              strnlen(c->name, sizeof c->name) < sizeof c->name;
    for (size_t i = 0; ok && i < n; i++)
        ok = c->pan[i] >= '0' && c->pan[i] <= '9';
    size_t m = ok ? strnlen(c->cvc, sizeof c->cvc) : 0;
    ok = ok && (!c->has_cvc || (m >= 3 && m <= 4));
    for (size_t i = 0; ok && c->has_cvc && i < m; i++)
        ok = c->cvc[i] >= '0' && c->cvc[i] <= '9';
    return ok;
}

static bool currency_ok(const char *c)
{
    return c && strlen(c) == 3 && c[0] >= 'A' && c[0] <= 'Z' && c[1] >= 'A' && c[1] <= 'Z' &&
           c[2] >= 'A' && c[2] <= 'Z';
}

static bool key_ok(const char *k)
{
    size_t n = k ? strlen(k) : 0;
    return n >= 1 && n < 100 && str_is_printable(k) && !strchr(k, ' ');
}

/* Common preconditions; returns NULL (with *r set) when the call must not go. */
static const prv_adapter_t *ready(const prv_config_t *cfg, const char *key, prv_result_t *r)
{
    const prv_adapter_t *a = cfg ? prv_adapter_find(cfg->type) : NULL;
    if (!a) {
        *r = prv_result_refused("unknown_provider_type");
        return NULL;
    }
    if (!cfg->creds) {
        memset(r, 0, sizeof *r);
        prv_result_set(r, PRV_UNAVAILABLE, false, "missing_credentials", NULL);
        return NULL;
    }
    if (!key_ok(key)) {
        *r = prv_result_refused("invalid_request");
        return NULL;
    }
    return a;
}

/* ------------------------------------------------------ bookkeeping */

static const char *merchant_of(const prv_config_t *cfg, const prv_payment_t *pay)
{
    if (cfg->merchant_id[0] || !pay || !pay->merchant_id)
        return cfg->merchant_id;
    return pay->merchant_id;
}

/* The provider answered properly: money outcomes, declines, and a lookup's
 * authoritative "no such payment". */
static bool healthy(const prv_result_t *r)
{
    if (r->outcome == PRV_UNAVAILABLE)
        return !strcmp(r->reason, "not_found");
    return r->outcome != PRV_UNKNOWN;
}

static void finish(const prv_config_t *cfg, const char *merchant, const char *op, const char *key,
                   int64_t t0, const prv_result_t *r)
{
    int64_t us = time_mono_us() - t0;
    prv_health_record(merchant, cfg->name, healthy(r), us);
    json_t *f =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:f}", "merchant", merchant,
                  "provider", cfg->name, "type", cfg->type, "op", op, "idempotency_key", key,
                  "outcome", prv_outcome_str(r->outcome), "reason", r->reason, "provider_code",
                  r->provider_code, "http_status", r->http_status, "ms", (double)us / 1000.0);
    if (r->provider_ref[0])
        json_object_set_new(f, "provider_ref", json_string(r->provider_ref));
    log_json(r->outcome == PRV_UNKNOWN ? LOG_WARN : LOG_INFO, "provider call", f);
}

/* ------------------------------------------------------ operations */

prv_result_t prv_authorize(const prv_config_t *cfg, const prv_payment_t *pay,
                           const prv_card_t *card, const char *idempotency_key)
{
    prv_result_t r;
    const prv_adapter_t *a = ready(cfg, idempotency_key, &r);
    if (!a)
        return r;
    if (!pay || pay->amount <= 0 || !currency_ok(pay->currency))
        return prv_result_refused("invalid_request");
    if (!card_ok(card))
        return prv_result_refused("invalid_card");
    int64_t t0 = time_mono_us();
    r = a->authorize(cfg, pay, card, idempotency_key);
    finish(cfg, merchant_of(cfg, pay), "authorize", idempotency_key, t0, &r);
    return r;
}

prv_result_t prv_capture(const prv_config_t *cfg, const char *provider_ref, int64_t amount,
                         const char *currency, const char *idempotency_key)
{
    prv_result_t r;
    const prv_adapter_t *a = ready(cfg, idempotency_key, &r);
    if (!a)
        return r;
    if (!prv_ref_ok(provider_ref) || amount <= 0 || !currency_ok(currency))
        return prv_result_refused("invalid_request");
    int64_t t0 = time_mono_us();
    r = a->capture(cfg, provider_ref, amount, currency, idempotency_key);
    finish(cfg, cfg->merchant_id, "capture", idempotency_key, t0, &r);
    return r;
}

prv_result_t prv_void(const prv_config_t *cfg, const char *provider_ref,
                      const char *idempotency_key)
{
    prv_result_t r;
    const prv_adapter_t *a = ready(cfg, idempotency_key, &r);
    if (!a)
        return r;
    if (!prv_ref_ok(provider_ref))
        return prv_result_refused("invalid_request");
    int64_t t0 = time_mono_us();
    r = a->cancel(cfg, provider_ref, idempotency_key);
    finish(cfg, cfg->merchant_id, "void", idempotency_key, t0, &r);
    return r;
}

prv_result_t prv_refund(const prv_config_t *cfg, const char *provider_ref, int64_t amount,
                        const char *currency, const char *idempotency_key)
{
    prv_result_t r;
    const prv_adapter_t *a = ready(cfg, idempotency_key, &r);
    if (!a)
        return r;
    if (!prv_ref_ok(provider_ref) || amount <= 0 || !currency_ok(currency))
        return prv_result_refused("invalid_request");
    int64_t t0 = time_mono_us();
    r = a->refund(cfg, provider_ref, amount, currency, idempotency_key);
    finish(cfg, cfg->merchant_id, "refund", idempotency_key, t0, &r);
    return r;
}

int prv_absent_after_s(const prv_config_t *cfg)
{
    const prv_adapter_t *a = cfg ? prv_adapter_find(cfg->type) : NULL;
    return a ? a->absent_after_s : 0;
}

bool prv_lookup_valid_at(const prv_config_t *cfg, const char *provider_ref, int64_t age_s)
{
    const prv_adapter_t *a = cfg ? prv_adapter_find(cfg->type) : NULL;
    if (!a || !a->replay_valid_s)
        return a != NULL;
    if (a->replay_only_without_ref && provider_ref && prv_ref_ok(provider_ref))
        return true;
    return age_s < a->replay_valid_s;
}

prv_result_t prv_lookup(const prv_config_t *cfg, const prv_payment_t *pay,
                        const char *idempotency_key, const char *provider_ref,
                        const prv_card_t *card)
{
    prv_result_t r;
    const prv_adapter_t *a = ready(cfg, idempotency_key, &r);
    if (!a) {
        r.outcome = PRV_UNKNOWN; /* a lookup that cannot run settles nothing */
        return r;
    }
    if (!pay || pay->amount <= 0 || !currency_ok(pay->currency)) {
        r = prv_result_refused("invalid_request");
        r.outcome = PRV_UNKNOWN;
        return r;
    }
    if (card && !card_ok(card))
        card = NULL;
    int64_t t0 = time_mono_us();
    r = a->lookup(cfg, pay, idempotency_key, provider_ref ? provider_ref : "", card);
    /* "not charged" needs the provider's word: an authoritative absence or
     * a code it gave; a lookup that merely failed (429, 401...) settles
     * nothing */
    if (r.outcome == PRV_UNAVAILABLE && strcmp(r.reason, "not_found") != 0 && !r.provider_code[0]) {
        r.outcome = PRV_UNKNOWN;
        prv_copy(r.reason, sizeof r.reason, "lookup_failed");
    }
    finish(cfg, merchant_of(cfg, pay), "lookup", idempotency_key, t0, &r);
    return r;
}

/* ------------------------------------------------------------ engine */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* A call shorter than this is not worth starting before a deadline. */
#define MIN_CALL_MS 200

/* The milliseconds left before o's deadline after waiting wait_ms (a large
 * number when there is no deadline). */
static int64_t left_ms(const prv_options_t *o, int wait_ms)
{
    if (!o->deadline_us)
        return INT64_MAX / 2;
    return (o->deadline_us - time_mono_us()) / 1000 - wait_ms;
}

/* cfg with its timeouts cut to what is left before the deadline: a call that
 * is still in flight when the lease ends could race the recovery worker. */
static prv_config_t bounded(const prv_config_t *cfg, int64_t left)
{
    prv_config_t c = *cfg; /* shallow: the credentials stay cfg's */
    long total = c.timeout_ms > 0 ? c.timeout_ms : 5000;
    long conn = c.connect_timeout_ms > 0 ? c.connect_timeout_ms : 2000;
    if (left < total)
        total = (long)left;
    if (conn > total)
        conn = total;
    c.timeout_ms = total;
    c.connect_timeout_ms = conn;
    return c;
}

/* Settles an unknown authorization by looking it up at the same provider.
 * Returns the attempt's outcome, or the original unknown result. */
static prv_result_t resolve(const prv_config_t *cfg, const prv_payment_t *pay,
                            const prv_card_t *card, const char *key, const prv_options_t *o,
                            int64_t sent_us, prv_result_t first)
{
    /* A provider whose lookup is only a search (Checkout.com) may not list a
     * payment it is still processing: its "no such payment" proves nothing
     * until the attempt is absent_after_s old, which no request waits for.
     * Such an attempt stays unknown (202, settled by recovery) rather than
     * failing over to a second provider that would charge the card again. */
    int64_t absent_us = (int64_t)prv_absent_after_s(cfg) * 1000000;
    char ref[128];
    prv_copy(ref, sizeof ref, first.provider_ref);
    int not_found = 0, pause = o->lookup_backoff_ms;
    for (int k = 0; k < o->lookup_attempts; k++) {
        int64_t left = left_ms(o, pause);
        if (left < MIN_CALL_MS)
            break; /* the lease ends first: the recovery worker settles it */
        sleep_ms(pause);
        pause *= 2;
        prv_config_t c = bounded(cfg, left);
        prv_result_t l = prv_lookup(&c, pay, key, ref, card);
        if (l.provider_ref[0])
            prv_copy(ref, sizeof ref, l.provider_ref);
        switch (l.outcome) {
        case PRV_AUTHORIZED:
        case PRV_CAPTURED:
        case PRV_DECLINED:
            return l;
        case PRV_UNAVAILABLE:
            /* found and not charged (a retryable decline) settles it at
             * once; "no such payment" must be seen more than once, since a
             * request still in flight may not be visible yet */
            if (strcmp(l.reason, "not_found") != 0)
                return l;
            if (time_mono_us() - sent_us < absent_us)
                break; /* too soon to believe */
            if (++not_found >= o->not_found_confirmations)
                return l;
            break;
        default:
            break;
        }
    }
    prv_copy(first.provider_ref, sizeof first.provider_ref, ref);
    return first;
}

static prv_options_t options(const prv_options_t *opt)
{
    prv_options_t o = {
        .lookup_attempts = 4, .lookup_backoff_ms = 100, .not_found_confirmations = 2};
    if (opt && opt->lookup_attempts > 0)
        o.lookup_attempts = opt->lookup_attempts;
    if (opt && opt->lookup_backoff_ms > 0)
        o.lookup_backoff_ms = opt->lookup_backoff_ms;
    if (opt && opt->not_found_confirmations > 0)
        o.not_found_confirmations = opt->not_found_confirmations;
    if (opt && opt->deadline_us > 0) {
        o.deadline_us = opt->deadline_us;
        o.renew_us = opt->renew_us;
    }
    return o;
}

static void release_card(const prv_hooks_t *hooks, prv_card_t *card)
{
    if (!card)
        return;
    if (hooks->free_card)
        hooks->free_card(hooks->cls, card);
    else
        prv_card_free(card);
}

/* One candidate: acquire the circuit, call, settle an unknown. */
static prv_result_t attempt(const prv_config_t *cfg, const prv_payment_t *pay,
                            const prv_card_t *card, const char *key, const prv_options_t *o)
{
    prv_result_t r = {0};
    int64_t left = left_ms(o, 0);
    if (left < MIN_CALL_MS) {
        prv_result_set(&r, PRV_UNAVAILABLE, false, "deadline", NULL); /* nothing sent */
        return r;
    }
    if (!prv_health_acquire(merchant_of(cfg, pay), cfg->name)) {
        prv_result_set(&r, PRV_UNAVAILABLE, false, "circuit_open", NULL);
        return r;
    }
    prv_config_t c = bounded(cfg, left);
    int64_t sent_us = time_mono_us();
    r = prv_authorize(&c, pay, card, key);
    if (r.outcome == PRV_UNKNOWN)
        r = resolve(cfg, pay, card, key, o, sent_us, r);
    return r;
}

int prv_execute(const prv_payment_t *pay, const prv_plan_t *plan, const prv_options_t *opt,
                const prv_hooks_t *hooks, prv_run_t *out)
{
    memset(out, 0, sizeof *out);
    prv_options_t o = options(opt);
    if (!plan || plan->n <= 0 || !pay || !pay->payment_id) {
        prv_result_set(&out->result, PRV_UNAVAILABLE, false, "no_provider", NULL);
        return 0;
    }
    prv_card_t *card = NULL;
    int rc = 0;
    for (int i = 0; i < plan->n && i < PRV_MAX_PROVIDERS; i++) {
        const prv_config_t *cfg = plan->candidates[i];
        prv_attempt_t *a = &out->attempts[i];
        a->seq = i + 1;
        prv_copy(a->provider, sizeof a->provider, cfg->name);
        prv_attempt_key(pay->payment_id, a->seq, a->idempotency_key);
        if (i > 0 && left_ms(&o, 0) < MIN_CALL_MS)
            break; /* out of time: the last unavailable result stands */
        int64_t t_hook = time_mono_us();
        if (i > 0 && hooks && hooks->transition &&
            hooks->transition(hooks->cls, &out->attempts[i - 1], a) != 0) {
            rc = -1; /* the next attempt was not recorded: it must not run */
            break;
        }
        if (i > 0 && o.deadline_us && o.renew_us > 0)
            o.deadline_us = t_hook + o.renew_us;
        if (!card &&
            (!hooks || !hooks->fetch_card || hooks->fetch_card(hooks->cls, &card) != 0 || !card)) {
            /* nothing was sent for this attempt, so it is not counted: the
             * caller can tell "card unavailable" from an unknown outcome */
            card = NULL;
            prv_result_set(&out->result, PRV_UNAVAILABLE, false, "card_unavailable", NULL);
            rc = -1;
            break;
        }
        out->nattempts = i + 1;
        a->result = attempt(cfg, pay, card, a->idempotency_key, &o);
        out->result = a->result;
        if (a->result.outcome != PRV_UNAVAILABLE)
            break; /* charged, declined, or unknown: never another provider */
    }
    release_card(hooks, card);
    log_json(out->result.outcome == PRV_UNKNOWN ? LOG_WARN : LOG_INFO, "payment run",
             json_pack("{s:s, s:i, s:s, s:s}", "payment_id", pay->payment_id, "attempts",
                       out->nattempts, "outcome", prv_outcome_str(out->result.outcome), "reason",
                       out->result.reason));
    return rc;
}
