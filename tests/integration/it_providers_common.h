/* Shared by the providers integration tests: provider configs pointing at
 * sandboxes, test cards in guarded memory, payments, and ledger counting. */
#ifndef PORTCULLIS_IT_PROVIDERS_COMMON_H
#define PORTCULLIS_IT_PROVIDERS_COMMON_H

#include "providers/providers.h"
#include "tests/harness/harness.h"
#include <stdio.h>
#include <string.h>

#define T_MERCHANT      "mer_test"
#define T_STRIPE_KEY    "sk_test_SECRETstripeKEY0123456789"
#define T_ADYEN_KEY     "AQEsecretADYENkey9876543210zyxw"
#define T_ADYEN_ACCOUNT "PortcullisECOM"
#define T_CKO_KEY       "sk_sbox_SECRETcheckoutKEY55555"

/* The credentials document of each adapter type, as a merchant would PUT it. */
static inline const char *t_creds_json(const char *type)
{
    if (!strcmp(type, "stripe"))
        return "{\"secret_key\":\"" T_STRIPE_KEY "\"}";
    if (!strcmp(type, "adyen"))
        return "{\"api_key\":\"" T_ADYEN_KEY "\",\"merchant_account\":\"" T_ADYEN_ACCOUNT "\"}";
    return "{\"secret_key\":\"" T_CKO_KEY "\",\"processing_channel_id\":\"pc_sandbox01\"}";
}

/* The sandbox arguments that make it demand exactly our credentials. */
static inline const char *const *t_sandbox_args(const char *type)
{
    static const char *const stripe[] = {"--api-key", T_STRIPE_KEY, NULL};
    static const char *const adyen[] = {"--api-key", T_ADYEN_KEY, "--merchant-account",
                                        T_ADYEN_ACCOUNT, NULL};
    static const char *const cko[] = {"--api-key", T_CKO_KEY, NULL};
    return !strcmp(type, "stripe") ? stripe : !strcmp(type, "adyen") ? adyen : cko;
}

static inline h_sandbox_t *t_sandbox(const char *type, const char *tag)
{
    return h_sandbox_start(type, tag, (const char **)t_sandbox_args(type));
}

/* A config for `type` at base_url, parsed from a provider document the way
 * the gateway will, with credentials set from the unsealed blob. */
static inline void t_config(prv_config_t *cfg, const char *name, const char *type,
                            const char *base_url, int priority, long timeout_ms)
{
    char doc[1024];
    snprintf(doc, sizeof doc,
             "{\"type\":\"%s\",\"base_url\":\"%s\",\"priority\":%d,\"connect_timeout_ms\":500,"
             "\"timeout_ms\":%ld,\"credentials\":%s}",
             type, base_url, priority, timeout_ms, t_creds_json(type));
    json_t *j = json_loads(doc, 0, NULL);
    ck_assert_ptr_nonnull(j);
    const json_t *creds = NULL;
    jspec_error_t err;
    ck_assert_msg(prv_provider_doc_parse(name, j, cfg, &creds, &err), "doc refused: %s %s",
                  err.param, err.reason);
    snprintf(cfg->merchant_id, sizeof cfg->merchant_id, "%s", T_MERCHANT);
    char *blob = json_dumps(creds, JSON_COMPACT);
    ck_assert_int_eq(prv_config_set_credentials(cfg, blob, strlen(blob)), 0);
    free(blob);
    json_decref(j);
}

static inline prv_card_t *t_card(const char *pan)
{
    prv_card_t *c = prv_card_new();
    ck_assert_ptr_nonnull(c);
    snprintf(c->pan, sizeof c->pan, "%s", pan);
    snprintf(c->cvc, sizeof c->cvc, "123");
    c->has_cvc = true;
    c->exp_month = 12;
    c->exp_year = 2030;
    snprintf(c->name, sizeof c->name, "Ada Lovelace");
    return c;
}

static inline prv_payment_t t_payment(const char *id, int64_t amount, bool capture)
{
    return (prv_payment_t){.merchant_id = T_MERCHANT,
                           .payment_id = id,
                           .amount = amount,
                           .currency = "EUR",
                           .brand = "visa",
                           .country = "GB",
                           .capture = capture};
}

/* Ledger entries of a sandbox with a status in `statuses` (space-separated;
 * NULL = all). */
static inline int t_charges(const h_sandbox_t *s, const char *statuses)
{
    json_t *j = h_sandbox_charges(s);
    size_t i;
    json_t *c;
    int n = 0;
    json_array_foreach(json_object_get(j, "charges"), i, c)
    {
        const char *st = json_string_value(json_object_get(c, "status"));
        if (!statuses || (st && strstr(statuses, st)))
            n++;
    }
    json_decref(j);
    return n;
}

/* Money that moved: authorized or captured (and their later states). */
#define T_MONEY "authorized captured refunded voided"

/* The ledger entry for an idempotency key (caller json_decref()s), or NULL. */
static inline json_t *t_charge_by_key(const h_sandbox_t *s, const char *key)
{
    json_t *j = h_sandbox_charges(s);
    size_t i;
    json_t *c, *found = NULL;
    json_array_foreach(json_object_get(j, "charges"), i, c)
    {
        const char *k = json_string_value(json_object_get(c, "idempotency_key"));
        if (k && !strcmp(k, key))
            found = json_incref(c);
    }
    json_decref(j);
    return found;
}

#endif
