/* providers: the payment-provider layer. Adapters speak each provider's real
 * wire format and normalise every answer to one outcome; health keeps a
 * circuit breaker per (merchant, provider); routing turns a merchant's
 * provider configs and routing document into an ordered plan; the failover
 * engine walks the plan without ever charging twice. No gateway/ or vault
 * dependency: card data and credentials arrive from the caller. */
#ifndef PORTCULLIS_PROVIDERS_H
#define PORTCULLIS_PROVIDERS_H

#include "util/util.h"

#define PRV_NAME_MAX       64 /* a merchant's name for a provider ("stripe", "adyen-eu") */
#define PRV_MAX_PROVIDERS  16 /* per merchant, and so per plan */
#define PRV_MAX_CURRENCIES 32
#define PRV_MAX_BRANDS     12
#define PRV_MAX_RULES      64
#define PRV_KEY_MAX        128

/* ------------------------------------------------------------------------
 * Outcomes. Every adapter call returns exactly one.
 * ---------------------------------------------------------------------- */
typedef enum {
    PRV_AUTHORIZED = 0, /* funds held, not captured */
    PRV_CAPTURED,       /* captured (or capture accepted by the provider) */
    PRV_DECLINED,       /* refused; `hard` says whether retrying can ever help */
    PRV_UNAVAILABLE,    /* known NOT charged: not sent, refused before processing,
                         * a retryable provider code, or authoritatively not found */
    PRV_UNKNOWN,        /* the request may have been processed: timeout after
                         * sending, reset, 5xx, unparseable reply */
    PRV_VOIDED,         /* void / cancel accepted */
    PRV_REFUNDED,       /* refund accepted */
} prv_outcome_t;

const char *prv_outcome_str(prv_outcome_t o);

/* Card data for one authorization. The caller allocates it with
 * prv_card_new() (sodium_malloc: guard pages, locked, wiped on free). */
typedef struct {
    char pan[20];
    char cvc[5];
    bool has_cvc;
    int exp_month, exp_year; /* 1-12, four digits */
    char name[128];          /* cardholder name, may be empty */
} prv_card_t;

prv_card_t *prv_card_new(void) PC_WUR;
void prv_card_free(prv_card_t *card); /* wipes; NULL is fine */

typedef struct {
    prv_outcome_t outcome;
    bool hard;              /* declines: never retry this card anywhere */
    char reason[32];        /* normalised: card_declined, insufficient_funds, stolen_card,
                             * lost_card, expired_card, incorrect_cvc, do_not_honor,
                             * invalid_number, processing_error, timeout, not_found ... */
    char provider_ref[128]; /* pi_..., pspReference, pay_..., re_..., act_... */
    char provider_code[64]; /* the provider's own code ("insufficient_funds", "12", "20051") */
    int64_t amount;         /* authorized / captured / refunded amount when known */
    int http_status;        /* 0 when no complete HTTP response */
} prv_result_t;

/* ------------------------------------------------------------------------
 * Merchant provider configuration (PUT /v1/providers/{name}).
 * ---------------------------------------------------------------------- */
typedef struct prv_creds prv_creds_t; /* parsed credentials in guarded memory */

typedef struct {
    char merchant_id[64];
    char name[PRV_NAME_MAX];
    char type[32];      /* adapter: "stripe", "adyen", "checkout" */
    char base_url[512]; /* https://api.stripe.com; plain http only to loopback */
    int priority;       /* 1 is tried first */
    int weight;         /* split among equal priorities, 1..1000 */
    int ncurrencies;    /* 0 = every currency */
    char currencies[PRV_MAX_CURRENCIES][4];
    int nbrands; /* 0 = every brand */
    char brands[PRV_MAX_BRANDS][16];
    bool enabled;
    long connect_timeout_ms; /* default 2000 */
    long timeout_ms;         /* whole call, default 5000 */
    prv_creds_t *creds;      /* owned; prv_config_set_credentials / prv_config_clear */
} prv_config_t;

/* Validates a provider document and fills *out (merchant_id is left for the
 * caller). The document:
 *   {"type": "stripe"|"adyen"|"checkout", "base_url": "https://...",
 *    "credentials": {...adapter fields...}, "priority": 1..1000,
 *    "weight": 1..1000 (default 100), "currencies": ["EUR", ...],
 *    "brands": ["visa", ...], "enabled": true,
 *    "connect_timeout_ms": 100..30000, "timeout_ms": 200..120000}
 * `name` comes from the URL and is checked too (param "name"). `credentials`
 * is optional (absent = keep the sealed ones); when present it is checked
 * against the adapter's fields and *credentials points at it (borrowed from
 * doc) so the caller can seal it. On failure err names the first bad field
 * ("credentials.secret_key", "currencies[2]"). */
bool prv_provider_doc_parse(const char *name, const json_t *doc, prv_config_t *out,
                            const json_t **credentials, jspec_error_t *err) PC_WUR;
bool prv_provider_name_valid(const char *name);
/* Parses the unsealed credentials blob (the JSON object of the document)
 * into guarded memory owned by cfg; the caller wipes its own copy.
 * Returns 0, or -1 when the blob does not fit cfg->type. */
int prv_config_set_credentials(prv_config_t *cfg, const void *blob, size_t len) PC_WUR;
void prv_config_clear(prv_config_t *cfg); /* frees the credentials */
/* The public view for GET /v1/providers (never the credentials). */
json_t *prv_config_json(const prv_config_t *cfg) PC_WUR;
/* True when an adapter of this type is registered. */
bool prv_type_known(const char *type);

/* ------------------------------------------------------------------------
 * Routing documents (PUT /v1/routing):
 *   {"rules": [{"if": {"currency": "EUR", "brand": "visa", "country": "GB",
 *                      "amount_gte": 100000, "amount_lt": 500000},
 *               "providers": ["adyen", "stripe"]}],
 *    "default": ["stripe", "adyen"]}
 * Every "if" key is optional (an empty "if" matches everything); rules are
 * tried in order and the first match wins.
 * ---------------------------------------------------------------------- */
typedef struct prv_routing prv_routing_t;

/* Parses and validates; `known` (may be NULL) lists the merchant's provider
 * names, and a name outside it is refused ("rules[0].providers[1]"). */
prv_routing_t *prv_routing_parse(const json_t *doc, const char *const *known, size_t nknown,
                                 jspec_error_t *err) PC_WUR;
void prv_routing_free(prv_routing_t *r);

/* ------------------------------------------------------------------------
 * One payment and its plan.
 * ---------------------------------------------------------------------- */
typedef struct {
    const char *merchant_id;
    const char *payment_id;  /* stable per checkout: attempt keys and the
                              * weighted split derive from it */
    int64_t amount;          /* minor units, > 0 */
    const char *currency;    /* ISO 4217 upper case */
    const char *brand;       /* "visa", "mastercard", "amex"...; may be NULL */
    const char *country;     /* ISO 3166 alpha-2 for routing; may be NULL */
    bool capture;            /* authorize and capture at once */
    const char *description; /* may be NULL; never card data */
} prv_payment_t;

typedef struct {
    int n;
    const prv_config_t *candidates[PRV_MAX_PROVIDERS]; /* borrowed from the configs */
    int rule; /* index of the rule that chose, -1 the default list, -2 all enabled */
} prv_plan_t;

/* Ordered candidates for one payment: the first matching rule's providers,
 * else the default list, else every enabled provider; filtered by enabled,
 * currency and brand and by open circuits; ordered by priority, and within
 * one priority by a weighted draw seeded by a hash of pay->payment_id (so the
 * same checkout always gets the same order). Reads health, calls nothing.
 * Returns out->n. */
int prv_plan(const prv_config_t *configs, size_t nconfigs, const prv_routing_t *routing,
             const prv_payment_t *pay, prv_plan_t *out);

/* The idempotency key of attempt `seq` (1-based) of a payment: stable for
 * retries of that attempt, distinct per attempt, at most 48 characters (it
 * is also the provider-side merchant reference, which Checkout.com caps at
 * 50 and Adyen's Idempotency-Key at 64). */
void prv_attempt_key(const char *payment_id, int seq, char out[PRV_KEY_MAX]);

/* ------------------------------------------------------------------------
 * The failover engine.
 * ---------------------------------------------------------------------- */
typedef struct {
    int seq;
    char provider[PRV_NAME_MAX];
    char idempotency_key[PRV_KEY_MAX];
    prv_result_t result;
} prv_attempt_t;

typedef struct {
    /* Before attempt `next` is called, after `done` ended not charged
     * (unavailable): record both durably (one transaction) and return 0;
     * non-zero aborts the run before `next` is called. Attempt 1 is recorded
     * by the caller before prv_execute (provider plan->candidates[0]->name,
     * key prv_attempt_key(payment_id, 1)); the first call needs no transition. */
    int (*transition)(void *cls, const prv_attempt_t *done, const prv_attempt_t *next);
    /* Supplies the card once per run, just before the first provider call
     * (allocated with prv_card_new); 0 = ok. */
    int (*fetch_card)(void *cls, prv_card_t **card);
    /* Called when the run ends; NULL means prv_card_free. */
    void (*free_card)(void *cls, prv_card_t *card);
    void *cls;
} prv_hooks_t;

typedef struct {
    int lookup_attempts;         /* lookups after an unknown outcome (default 4) */
    int lookup_backoff_ms;       /* first pause, doubled each time (default 100) */
    int not_found_confirmations; /* "no such payment" answers needed before it
                                  * counts as not charged (default 2) */
    /* The run's ownership of its payment ends at deadline_us (time_mono_us;
     * 0 = no deadline): no call starts later, and every call's timeouts are
     * cut so that it ends by then. A caller whose recorded lease lets a
     * recovery worker take over the payment sets it to the lease's end less
     * a margin, so the two never have calls in flight at once. After each
     * successful hooks->transition the deadline becomes (the time taken just
     * before the hook) + renew_us, matching a lease renewed by the hook. */
    int64_t deadline_us;
    int64_t renew_us;
} prv_options_t;

typedef struct {
    int nattempts;
    prv_attempt_t attempts[PRV_MAX_PROVIDERS];
    prv_result_t result; /* the final attempt's result */
} prv_run_t;

/* Attempts the plan's candidates in order:
 *  - authorized / captured: done.
 *  - declined (hard or soft): done; a decline is never retried elsewhere
 *    (a soft decline at one acquirer is usually the issuer's answer, and a
 *    second provider would only put a second authorization in front of it).
 *  - unavailable: the next candidate, after hooks->transition.
 *  - unknown: the attempt is looked up at the same provider by its
 *    idempotency key (opt->lookup_attempts with backoff). Found: that
 *    outcome. Authoritatively absent (confirmed opt->not_found_confirmations
 *    times): unavailable, fail over. Lookup failing: the run stops with
 *    unknown; no later candidate is ever called while an attempt is unknown.
 * A candidate whose circuit is open (or half-open without a free probe) is
 * not called and ends unavailable/circuit_open. Health is recorded for every
 * call and lookup. Nothing here touches a database.
 * Past opt->deadline_us no call starts: a lookup still due leaves the
 * outcome unknown, a next candidate is not tried (the last unavailable
 * result stands).
 * Returns 0 when the run ended on its own (out->result says how), -1 when a
 * hook failed (fetch_card: nothing was sent and nattempts is 0; transition:
 * stopped before the next call). opt may be NULL. */
int prv_execute(const prv_payment_t *pay, const prv_plan_t *plan, const prv_options_t *opt,
                const prv_hooks_t *hooks, prv_run_t *out) PC_WUR;

/* Single operations on one provider (they record health too). amount is
 * required and > 0 (a full capture or refund passes the whole amount). The
 * idempotency key is the caller's, stable across retries of the operation. */
prv_result_t prv_authorize(const prv_config_t *cfg, const prv_payment_t *pay,
                           const prv_card_t *card, const char *idempotency_key);
prv_result_t prv_capture(const prv_config_t *cfg, const char *provider_ref, int64_t amount,
                         const char *currency, const char *idempotency_key);
prv_result_t prv_void(const prv_config_t *cfg, const char *provider_ref,
                      const char *idempotency_key);
prv_result_t prv_refund(const prv_config_t *cfg, const char *provider_ref, int64_t amount,
                        const char *currency, const char *idempotency_key);
/* Looks an authorization attempt up by its idempotency key. provider_ref
 * ("" if unknown) speeds Stripe up; pay must be the attempt's payment;
 * card may be NULL, but Adyen (no read API) can only settle an attempt by
 * replaying it and answers unknown without the card. Returns the attempt's
 * outcome, unavailable/not_found when the provider authoritatively has no
 * such payment (Stripe: after fencing it with a cancel), or unknown.
 * Stripe and Checkout.com report the payment's current state (captured
 * after a capture); Adyen's replay reports the authorization's own answer. */
/* How many seconds after an attempt a lookup's unavailable/not_found proves
 * it was not charged (0 = at once); see prv_adapter_t.absent_after_s. */
int prv_absent_after_s(const prv_config_t *cfg);
/* Whether a lookup of an attempt made age_s seconds ago can still tell the
 * truth. Some lookups replay the original request under its idempotency
 * key, which the provider keeps only so long (Stripe a day, Adyen a month);
 * after that the replay is a new request. false: leave the attempt unknown,
 * for a person to reconcile. */
bool prv_lookup_valid_at(const prv_config_t *cfg, const char *provider_ref, int64_t age_s);
prv_result_t prv_lookup(const prv_config_t *cfg, const prv_payment_t *pay,
                        const char *idempotency_key, const char *provider_ref,
                        const prv_card_t *card);

/* ------------------------------------------------------------------------
 * Health: a circuit breaker plus success-rate and latency EWMAs per
 * (merchant, provider name). Thread-safe; process-wide.
 * ---------------------------------------------------------------------- */
typedef enum {
    PRV_CIRCUIT_CLOSED = 0,
    PRV_CIRCUIT_HALF_OPEN = 1,
    PRV_CIRCUIT_OPEN = 2
} prv_circuit_t;

const char *prv_circuit_str(prv_circuit_t c);

typedef struct {
    int window_ms;            /* error-rate window (default 30000) */
    int min_calls;            /* calls in the window before the rate counts (20) */
    double error_rate;        /* open at failures/calls >= this (0.5) */
    int consecutive_failures; /* or after this many failures in a row (5) */
    int cooldown_ms;          /* open -> half-open after (15000) */
    int half_open_probes;     /* calls let through at once while half-open (1) */
    int half_open_successes;  /* probe successes that close it (2) */
    double ewma_alpha;        /* weight of the newest sample (0.1) */
} prv_health_policy_t;

void prv_health_policy_default(prv_health_policy_t *p);
void prv_health_set_policy(const prv_health_policy_t *p); /* NULL = defaults */
/* State now (an open circuit whose cool-down has passed reads half-open). */
prv_circuit_t prv_health_state(const char *merchant, const char *provider);
/* May a call go now? Closed: yes. Half-open: yes while a probe slot is free
 * (the slot is taken until prv_health_record). Open: no. */
bool prv_health_acquire(const char *merchant, const char *provider) PC_WUR;
/* ok = the provider answered properly (a decline is ok; unavailable and
 * unknown are failures). */
void prv_health_record(const char *merchant, const char *provider, bool ok, int64_t latency_us);

typedef struct {
    prv_circuit_t circuit;
    double success_rate; /* EWMA, 1.0 when never called */
    double latency_ewma_ms;
    double latency_p50_ms; /* over the last 64 calls */
    uint64_t calls, failures;
    uint64_t opened; /* times the circuit opened */
} prv_health_t;

void prv_health_get(const char *merchant, const char *provider, prv_health_t *out);
/* {"circuit", "success_rate", "latency_p50_ms", "latency_ewma_ms", "calls", "failures"} */
json_t *prv_health_json(const char *merchant, const char *provider) PC_WUR;

/* Appends Prometheus text for every (merchant, provider) seen: circuit
 * state, success rate, latency, call and failure counters. `emit` receives
 * whole lines (gatewayd adapts it to its own text buffer). */
typedef void (*prv_emit_fn)(void *cls, const char *text);
void prv_metrics_write(prv_emit_fn emit, void *cls);

/* Tests: forget every entry; replace the millisecond clock (NULL = monotonic). */
void prv_health_reset(void);
void prv_health_set_clock(int64_t (*now_ms)(void));

#endif
