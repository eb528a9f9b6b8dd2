/* The whole Portcullis stack for one integration test: a fresh database,
 * vaultd, the Stripe and Adyen sandboxes, the pricing, inventory and
 * webhook-receiver sandboxes, one or two gatewayd instances, and a merchant
 * with stripe (priority 1) and adyen (priority 2) configured through the API
 * and a webhook endpoint for every event at the receiver. */
#ifndef PORTCULLIS_STACK_H
#define PORTCULLIS_STACK_H

#include "tests/harness/harness.h"

typedef struct {
    int gateways;             /* 1 (default) or 2 */
    const char *gateway_json; /* merged into every gatewayd's configuration */
    bool no_providers;        /* do not configure stripe and adyen */
    bool no_webhook;          /* do not create the webhook endpoint */
} h_stack_opts_t;

typedef struct {
    char *db;
    h_vault_t *vault;
    h_sandbox_t *stripe, *adyen, *pricing, *inventory, *webhooks;
    h_gateway_t *gw[2];
    int ngw;
    h_merchant_t m;
    char *gateway_json; /* the full extra configuration the gateways run with */
} h_stack_t;

h_stack_t *h_stack_start(const h_stack_opts_t *o);
void h_stack_stop(h_stack_t *s);
/* Starts gateway i again (after it was stopped or killed). */
void h_stack_gateway_start(h_stack_t *s, int i);
/* Tokenizes a card (exp 12/2030, CVC 123) with the merchant's pk; asserts
 * 201 and returns the token id (malloc'd). */
char *h_stack_token(h_stack_t *s, const char *pan);
/* A checkout body for `qty` x `sku` shipped to GB; `extra` (may be NULL) is
 * a JSON object merged in ({"payment":{"capture":false}} ...). malloc'd. */
char *h_stack_checkout_body(const char *token, const char *sku, int qty, const char *extra);
/* The "X-Forwarded-For: <customer.ip>" header a trusted proxy in front of
 * the stack's gateways (they trust it) would add for the shopper of this
 * body, written to out; NULL when the body has no customer.ip. A pk checkout
 * is scored by the address it came from, never by the body's customer.ip. */
const char *h_stack_xff(const char *body, char *out, size_t cap);
/* POST /v1/checkouts on gateway gi with the merchant's pk and this key (and
 * the shopper's address, h_stack_xff). */
h_resp_t h_stack_checkout(h_stack_t *s, int gi, const char *key, const char *body);
/* A checkout of qty x sku paid with a fresh token of `pan`, under a new
 * Idempotency-Key, on gateway gi (extra as for h_stack_checkout_body). */
h_resp_t h_stack_pay(h_stack_t *s, int gi, const char *pan, const char *sku, int qty,
                     const char *extra);
/* Charges in both provider sandboxes' ledgers (status NULL = all). */
long h_stack_charges(h_stack_t *s, const char *status);
/* GET /_sandbox/deliveries of the webhook receiver (caller decrefs). */
json_t *h_stack_deliveries(h_stack_t *s);
/* GET /_sandbox/stock of the inventory sandbox for one SKU: field is
 * "on_hand", "reserved", "committed" or "available". */
long h_stack_stock(h_stack_t *s, const char *sku, const char *field);
/* A Luhn-valid 16-digit card number: an 8-digit prefix, then i (< 10^7) and
 * the check digit. Distinct i, distinct cards (and fingerprints). */
void h_luhn_card(const char *prefix8, int i, char out[20]);
/* Waits until cond() is true or timeout_ms passes; returns cond's value. */
bool h_wait_until(bool (*cond)(void *), void *cls, int timeout_ms);

#endif
