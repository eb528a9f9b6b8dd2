/* What the provider adapters share and nothing outside providers/ may
 * include: the adapter interface, code tables, guarded request buffers and
 * the HTTP call that turns transport failures into outcomes. */
#ifndef PORTCULLIS_PROVIDERS_INTERNAL_H
#define PORTCULLIS_PROVIDERS_INTERNAL_H

#include "providers/providers.h"

/* One credential field an adapter needs ("secret_key"). */
typedef struct {
    const char *name;
    bool required;
    size_t min, max;
    const char *prefixes; /* space-separated allowed prefixes ("sk_ rk_") or NULL */
} prv_cred_field_t;

/* An adapter: one file (providers/<type>.c) and one line in registry.c.
 * Calls never log and never put credentials in a result. */
typedef struct {
    const char *type;
    const prv_cred_field_t *creds; /* terminated by {NULL} */
    prv_result_t (*authorize)(const prv_config_t *cfg, const prv_payment_t *pay,
                              const prv_card_t *card, const char *key);
    prv_result_t (*capture)(const prv_config_t *cfg, const char *ref, int64_t amount,
                            const char *currency, const char *key);
    prv_result_t (*cancel)(const prv_config_t *cfg, const char *ref, const char *key);
    prv_result_t (*refund)(const prv_config_t *cfg, const char *ref, int64_t amount,
                           const char *currency, const char *key);
    prv_result_t (*lookup)(const prv_config_t *cfg, const prv_payment_t *pay, const char *key,
                           const char *ref, const prv_card_t *card);
    /* How old an attempt must be before the lookup's "no such payment" is
     * proof that nothing was charged, for the recovery worker; 0 = at once
     * (the lookup fences the payment or replays the request). A lookup that
     * is only a search may not list a request the provider is still
     * processing. */
    int absent_after_s;
    /* How long the provider keeps an idempotency key, where the lookup
     * replays the original request under it (0 = the lookup is a read, good
     * at any age). Past it a replay is a new request: Stripe would make a
     * fresh intent and read it as "not charged" while the lost one may be
     * paid; Adyen would authorize the card a second time. */
    int64_t replay_valid_s;
    /* ...and whether the replay happens only without the provider's own
     * reference (Stripe reads an intent whose id it has). */
    bool replay_only_without_ref;
    /* The provider's own API domains, space-separated: a base_url must be
     * https to one of them or a subdomain of one (plain http to loopback
     * passes too where outbound.allow_loopback_http allows it). The request
     * carries the PAN and CVC to base_url, so the merchant who writes it must
     * not be able to name a host of its own. */
    const char *api_domains;
} prv_adapter_t;

const prv_adapter_t *prv_adapter_find(const char *type);
/* Whether url is a base URL the adapter may send a card to (see api_domains). */
bool prv_base_url_allowed(const prv_adapter_t *a, const char *url) PC_WUR;
/* Card brands a document may name ("visa", "mastercard", "amex"...). */
bool prv_brand_known(const char *brand);

/* ------------------------------------------------------------------------
 * Code tables: provider code -> outcome. The entry with code NULL ends the
 * table and is the answer for codes the table does not list.
 * ---------------------------------------------------------------------- */
typedef struct {
    const char *code;
    prv_outcome_t outcome;
    bool hard;
    const char *reason;
} prv_code_t;

const prv_code_t *prv_code_find(const prv_code_t *table, const char *code);
/* Sets outcome, hard, reason and provider_code (code may be NULL). */
void prv_result_set(prv_result_t *r, prv_outcome_t o, bool hard, const char *reason,
                    const char *code);
void prv_result_code(prv_result_t *r, const prv_code_t *table, const char *code);
/* Whether match(word, length, ctx) holds for a word of the space-separated
 * list (the adapters' tables write short lists that way). */
bool prv_words_any(const char *list, bool (*match)(const char *w, size_t n, const void *ctx),
                   const void *ctx);
/* Copies a provider's code if it looks like one, else "unrecognized" ("" for
 * NULL or ""). */
void prv_code_copy(char *dst, size_t n, const char *code);

/* Credentials. */
const char *prv_creds_get(const prv_creds_t *c, const char *name); /* "" when absent */

/* ------------------------------------------------------------------------
 * A string builder in guarded memory (sodium_malloc), for request bodies
 * and headers that carry card data or credentials; wiped on free.
 * ---------------------------------------------------------------------- */
typedef struct {
    char *p;
    size_t len, cap;
    bool failed; /* out of memory: every later append is a no-op */
} prv_buf_t;

bool prv_buf_init(prv_buf_t *b, size_t cap) PC_WUR;
void prv_buf_free(prv_buf_t *b);
void prv_buf_put(prv_buf_t *b, const char *s);
void prv_buf_printf(prv_buf_t *b, const char *fmt, ...) PC_PRINTF(2, 3);
/* "&key=value" (no "&" first), both percent-encoded. */
void prv_buf_form(prv_buf_t *b, const char *key, const char *value);
void prv_buf_form_i64(prv_buf_t *b, const char *key, int64_t value);
/* A JSON string literal with quotes. */
void prv_buf_json_str(prv_buf_t *b, const char *s);

/* ------------------------------------------------------------------------
 * HTTP.
 * ---------------------------------------------------------------------- */
typedef struct {
    const char *method;
    const char *path;         /* appended to the base URL; built from checked parts */
    const char *auth_header;  /* "Authorization: Bearer ..." (guarded) or NULL */
    const char *idem_header;  /* "Idempotency-Key: ..." or NULL */
    const char *extra_header; /* e.g. "Stripe-Version: ..." or NULL */
    const char *content_type; /* NULL when there is no body */
    const char *body;
    size_t body_len;
} prv_http_t;

/* Performs the call under cfg's timeouts and URL policy. Returns true with
 * a complete response in rs (caller frees it); false with r set:
 * unavailable when nothing was sent, unknown when it may have been. */
bool prv_http_call(const prv_config_t *cfg, const prv_http_t *h, httpc_response_t *rs,
                   prv_result_t *r) PC_WUR;
/* Statuses every provider treats alike: 5xx unknown (may have been
 * processed), 429 unavailable/rate_limited, 401/403 unavailable/
 * authentication_failed. Returns true when it decided r. */
bool prv_http_generic(long status, prv_result_t *r);
/* The body as a JSON object, or NULL (not JSON, not an object). */
json_t *prv_json_body(const httpc_response_t *rs) PC_WUR;
const char *prv_json_s(const json_t *o, const char *key);
bool prv_json_i64(const json_t *o, const char *key, int64_t *out);
/* Copies src into dst (truncating; NULL = ""). */
void prv_copy(char *dst, size_t n, const char *src);
/* A provider reference safe to put in a URL path: [A-Za-z0-9_-], 1..127. */
bool prv_ref_ok(const char *ref);
/* A result for a call refused before sending (bad input). */
prv_result_t prv_result_refused(const char *reason);
/* Lower-cases a currency into out[4]. */
void prv_lower3(const char *in, char out[4]);

#endif
