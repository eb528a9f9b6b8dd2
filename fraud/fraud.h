/* fraud: explainable fraud scoring. The one public header of the subsystem:
 * features (a plain struct the caller fills), a merchant's rules document
 * (parsed once, shared read-only), fraud_score (pure, no I/O), the velocity
 * counters in PostgreSQL, the BIN range table and a per-merchant rules cache.
 * Nothing here knows about HTTP or gatewayd. */
#ifndef PORTCULLIS_FRAUD_H
#define PORTCULLIS_FRAUD_H

#include "util/util.h"

/* ------------------------------------------------------------------------
 * Limits. A rules document is merchant input: every dimension is bounded so
 * that parsing and scoring cost stay small whatever a merchant sends.
 * ---------------------------------------------------------------------- */
#define FRAUD_MAX_DOC_BYTES (64 * 1024) /* compact JSON size of a rules document */
#define FRAUD_MAX_RULES     200
#define FRAUD_MAX_LIST      1000 /* entries per allow or block list */
#define FRAUD_MAX_IN_VALUES 500  /* values of one "in" / "not_in" condition */
#define FRAUD_MAX_DEPTH     4    /* nesting of all / any / not */
#define FRAUD_MAX_NODES     32   /* conditions in one rule, compound ones included */
#define FRAUD_ID_MAX        64   /* rule id length */
#define FRAUD_TEXT_MAX      200  /* reason text length */
#define FRAUD_DETAIL_MAX    240  /* "what tripped it" text length */
#define FRAUD_MAX_REASONS   16   /* reasons kept in a result (strongest first) */

/* ------------------------------------------------------------------------
 * Velocity counters: per key (card fingerprint, email, IP, device) and
 * sliding window, counting events recorded BEFORE the checkout being scored
 * (the checkout records its own attempt after scoring).
 * ---------------------------------------------------------------------- */
typedef enum {
    FRAUD_KEY_CARD = 0,
    FRAUD_KEY_EMAIL,
    FRAUD_KEY_IP,
    FRAUD_KEY_DEVICE,
    FRAUD_NKEYS
} fraud_key_t;
typedef enum { FRAUD_WIN_10M = 0, FRAUD_WIN_1H, FRAUD_WIN_24H, FRAUD_NWINDOWS } fraud_window_t;

typedef struct {
    int64_t attempts;       /* checkouts scored */
    int64_t declines;       /* provider declines and fraud declines */
    int64_t token_failures; /* card numbers the vault refused (Luhn, expiry, CVC) */
    int64_t distinct_cards; /* distinct card fingerprints seen with this key */
    int64_t amount_sum;     /* attempted amount, minor units, in the checkout's currency only */
} fraud_counts_t;

typedef struct {
    bool known[FRAUD_NKEYS]; /* the key was given to the load; counts of unknown keys are absent */
    fraud_counts_t c[FRAUD_NKEYS][FRAUD_NWINDOWS];
    /* Merchant averages over the last 7 days in the checkout's currency, of
     * checkouts not declined by fraud; 0 until FRAUD_STATS_MIN_SAMPLES exist. */
    int64_t merchant_avg_amount;
    int64_t merchant_usual_basket;
    int64_t merchant_samples;
    int64_t rules_version; /* the merchant's stored rules version; 0 = default rules */
    int64_t now_ms;        /* the clock the windows were measured against */
} fraud_velocity_t;

#define FRAUD_STATS_MIN_SAMPLES 20

/* ------------------------------------------------------------------------
 * Features: filled by the caller (the checkout) before scoring. Strings are
 * borrowed and may be NULL (absent). A condition on an absent feature is
 * false, so a rule never fires on a signal that was not given.
 * ---------------------------------------------------------------------- */
typedef struct {
    int64_t amount;           /* payment amount, minor units */
    const char *currency;     /* ISO 4217 */
    const char *card_brand;   /* "visa", "mastercard", ... */
    const char *bin;          /* first 6 (or 8) digits; never more */
    const char *card_country; /* from fraud_bins_lookup (ISO 3166-1 alpha-2) */
    const char *card_funding; /* "credit", "debit", "prepaid" from the BIN table */
    const char *fingerprint;  /* the vault's card fingerprint "fp_..." */
    const char *email;
    const char *email_domain; /* NULL: taken from email */
    const char *ip;
    const char *edge_country;     /* country the storefront's edge reports for the IP (optional) */
    const char *shipping_country; /* ISO 3166-1 alpha-2 */
    const char *device_id;        /* optional */
    bool has_cvc;
    /* Cart signals (from the pricing quote). */
    int64_t cart_total;            /* items subtotal, minor units; 0 = use amount */
    int64_t cart_max_sku_quantity; /* largest quantity of a single SKU */
    int64_t cart_distinct_skus;
    int64_t cart_high_risk_skus; /* lines the pricing service tags as high resale risk */
    fraud_velocity_t velocity;   /* from fraud_velocity_load */
} fraud_features_t;

/* ------------------------------------------------------------------------
 * Rules: a merchant's JSON document, validated and compiled once, then
 * shared read-only between threads (reference counted).
 * ---------------------------------------------------------------------- */
typedef struct fraud_rules fraud_rules_t;

typedef struct {
    char param[128];                /* "rules[2].if.all[0].op" */
    char rule_id[FRAUD_ID_MAX + 1]; /* the rule at fault, "" outside rules */
    char reason[200];               /* "unknown operator \"bigger\"; use one of ..." */
    err_code_t code;                /* ERR_PARAMETER_INVALID / _MISSING / _UNKNOWN */
} fraud_rules_error_t;

/* Validates and compiles a rules document (see docs/fraud.md). NULL on a bad
 * document with *err naming the rule and the field. `version` is stored
 * with the rules (0 = the default set). The document is kept (incref'd). */
fraud_rules_t *fraud_rules_parse(const json_t *doc, int64_t version,
                                 fraud_rules_error_t *err) PC_WUR;
/* The default rule set shipped in fraud/data/default_rules.json (compiled
 * into the binary). Returns a new reference; never NULL unless out of memory. */
fraud_rules_t *fraud_rules_default(void) PC_WUR;
/* The default document itself (borrowed, immutable). */
const json_t *fraud_rules_default_doc(void);
/* Thresholds of a document that names none. */
#define FRAUD_DEFAULT_REVIEW  60
#define FRAUD_DEFAULT_DECLINE 85
/* A copy of a valid document with every omitted part spelled out as it
 * applies (thresholds, each block and allow list, rules), for replies. */
json_t *fraud_rules_doc_complete(const json_t *doc) PC_WUR;
fraud_rules_t *fraud_rules_ref(fraud_rules_t *r);
void fraud_rules_release(fraud_rules_t *r);            /* NULL is fine */
const json_t *fraud_rules_doc(const fraud_rules_t *r); /* borrowed */
int64_t fraud_rules_version(const fraud_rules_t *r);
size_t fraud_rules_count(const fraud_rules_t *r);
const char *fraud_rules_id(const fraud_rules_t *r, size_t i); /* i-th rule's id */
/* "Rule \"x\" (rules[2]): if.op unknown operator ..." for a 400 message. */
void fraud_rules_error_message(const fraud_rules_error_t *e, char *buf, size_t len);

/* ------------------------------------------------------------------------
 * Scoring: pure and fast (no I/O, no allocation). Block lists decline,
 * allow lists approve unless blocked, otherwise rule scores are summed,
 * clamped to 0..100 and mapped through the thresholds; a rule's "action"
 * can force review or decline whatever the score.
 * ---------------------------------------------------------------------- */
typedef enum { FRAUD_APPROVE = 0, FRAUD_REVIEW, FRAUD_DECLINE } fraud_decision_t;
typedef enum { FRAUD_ACTION_NONE = 0, FRAUD_ACTION_REVIEW, FRAUD_ACTION_DECLINE } fraud_action_t;

typedef struct {
    char rule[FRAUD_ID_MAX + 16];    /* rule id, or "block.ips" / "allow.emails" */
    char reason[FRAUD_TEXT_MAX + 1]; /* the merchant's text for the rule */
    char detail[FRAUD_DETAIL_MAX];   /* what tripped it: "ip.distinct_cards.10m is 31 (gte 10)" */
    int score;                       /* contribution */
    fraud_action_t action;
} fraud_reason_t;

typedef struct {
    int score; /* 0..100 */
    fraud_decision_t decision;
    int nreasons;
    int nfired; /* rules that fired; > nreasons when the weakest were left out */
    fraud_reason_t reasons[FRAUD_MAX_REASONS];
} fraud_result_t;

int fraud_score(const fraud_features_t *f, const fraud_rules_t *r, fraud_result_t *out) PC_WUR;
const char *fraud_decision_str(fraud_decision_t d); /* "approve", "review", "decline" */
/* {"score": n, "decision": "...", "reasons": [{"rule","reason","detail","score"[,"action"]}]} */
json_t *fraud_result_json(const fraud_result_t *r) PC_WUR;

/* ------------------------------------------------------------------------
 * Velocity in PostgreSQL (tables gateway.fraud_events and
 * gateway.fraud_merchant_daily, migration 0004). Keys are stored only as
 * BLAKE2b-128 hashes of their normalised value, never in clear.
 * ---------------------------------------------------------------------- */
typedef struct {
    const char *merchant_id; /* required: counters are per merchant */
    const char *currency;    /* for amount sums and merchant averages; may be NULL */
    const char *fingerprint; /* any key may be NULL */
    const char *email;
    const char *ip;
    const char *device_id;
} fraud_keys_t;

/* The keys of a checkout, taken from its features. */
fraud_keys_t fraud_keys_of(const char *merchant_id, const fraud_features_t *f);

/* The stored form of the keys (BLAKE2b-128 of the normalised value: emails
 * trimmed and lower-cased, IPs as binary addresses). For a caller that
 * folds the event into its own SQL function through
 * gateway.fraud_event_record (migration 0004) to save a round trip. */
typedef struct {
    unsigned char h[FRAUD_NKEYS][16];
    bool have[FRAUD_NKEYS];
} fraud_key_hashes_t;
void fraud_keys_hash(const fraud_keys_t *k, fraud_key_hashes_t *out);

/* One round trip: every counter of every given key and window, the
 * merchant's averages and its rules version. now_ms <= 0 uses the
 * database clock (one clock for every instance). Read-only; may run inside
 * or outside the caller's transaction. The newest 1,000 events of a key are
 * read at most: counts saturate there (far above any useful threshold),
 * which bounds the cost for an attacking IP. */
db_status_t fraud_velocity_load(db_conn_t *c, const fraud_keys_t *k, int64_t now_ms,
                                fraud_velocity_t *out) PC_WUR PC_NONNULL;

typedef struct {
    fraud_keys_t keys;
    int64_t at_ms;  /* <= 0: database clock */
    int64_t amount; /* attempted amount (attempts only), minor units */
    int64_t basket; /* cart subtotal for the merchant's usual basket; 0 = amount */
    bool attempt;   /* a checkout was scored */
    bool declined;  /* declined (by fraud or by the provider) */
    bool token_failure;
} fraud_event_t;

/* One INSERT (and the merchant's daily average folded into the same
 * statement). Never commits: call it inside the checkout's own transaction
 * so the counters move exactly when the checkout's state does; alone it
 * runs in autocommit (tokenization failures). A fraud-declined checkout is
 * one event with attempt and declined set; a provider decline after an
 * approved attempt is a second event with only declined set. */
db_status_t fraud_velocity_record(db_conn_t *c, const fraud_event_t *ev) PC_WUR PC_NONNULL;

/* Deletes events older than the longest window and daily averages older
 * than 8 days, at most `limit` rows per table; *deleted = rows removed.
 * Safe to run from any number of instances at once: while one cleans, the
 * others delete nothing (*deleted = 0). */
db_status_t fraud_velocity_cleanup(db_conn_t *c, int64_t now_ms, int limit,
                                   int64_t *deleted) PC_WUR PC_NONNULL;

/* A background thread that runs the cleanup every interval_s seconds on
 * `pool` until fraud_janitor_stop. */
int fraud_janitor_start(db_pool_t *pool, int interval_s) PC_WUR;
void fraud_janitor_stop(void);

/* ------------------------------------------------------------------------
 * BIN ranges: CSV "low,high,brand,country,funding" (see fraud/data/). The
 * most specific range (longest prefix) containing the BIN wins.
 * ---------------------------------------------------------------------- */
typedef struct fraud_bins fraud_bins_t;

typedef struct {
    char brand[24];
    char country[3];
    char funding[12];
} fraud_bin_info_t;

/* Parses a table; NULL with err naming the line on a bad file. */
fraud_bins_t *fraud_bins_parse(const char *text, size_t len, char *err, size_t errlen) PC_WUR;
fraud_bins_t *fraud_bins_load(const char *path, char *err, size_t errlen) PC_WUR;
/* The table shipped in fraud/data/bin_ranges.csv, compiled in (a new copy). */
fraud_bins_t *fraud_bins_default(void) PC_WUR;
void fraud_bins_free(fraud_bins_t *b);
size_t fraud_bins_count(const fraud_bins_t *b);
/* `bin`: 1-19 leading digits of a card (6 or 8 in practice). */
bool fraud_bins_lookup(const fraud_bins_t *b, const char *bin, fraud_bin_info_t *out) PC_WUR;
/* Sets card_country and card_funding (and card_brand if unset) from `bi`,
 * which must outlive `f`; empty fields stay absent. */
void fraud_features_apply_bin(fraud_features_t *f, const fraud_bin_info_t *bi);

/* ------------------------------------------------------------------------
 * Per-merchant cache of parsed rules, keyed by a configuration generation
 * the caller supplies (gatewayd: gw_config_generation, bumped by LISTEN
 * portcullis_config) and by the rules version. Thread-safe.
 * ---------------------------------------------------------------------- */
typedef struct fraud_rules_cache fraud_rules_cache_t;

/* Loads a merchant's rules from wherever they live: *out = new reference. */
typedef db_status_t (*fraud_rules_loader_fn)(void *cls, const char *merchant_id,
                                             fraud_rules_t **out);

fraud_rules_cache_t *fraud_rules_cache_create(size_t slots) PC_WUR;
void fraud_rules_cache_destroy(fraud_rules_cache_t *c);
/* Returns a reference (release with fraud_rules_release). A cached entry is
 * used when it was loaded under `generation` and, if min_version >= 0, its
 * version is at least min_version; otherwise the loader runs. */
db_status_t fraud_rules_cache_get(fraud_rules_cache_t *c, const char *merchant_id,
                                  uint64_t generation, int64_t min_version,
                                  fraud_rules_loader_fn load, void *cls,
                                  fraud_rules_t **out) PC_WUR;
void fraud_rules_cache_invalidate(fraud_rules_cache_t *c, const char *merchant_id);

#endif
