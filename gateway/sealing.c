/* Small secrets (webhook signing secrets, provider credentials) sealed by
 * the vault: the gateway schema only ever holds the sealed text. */
#include "gateway/checkout.h"
#include "vault/vault.h"

int gw_secret_seal(const char *merchant_id, const char *context, const void *plain, size_t len,
                   char **sealed)
{
    vault_client_t *vc = gw_vault();
    if (!vc)
        return -1;
    vault_status_t s = vault_seal(vc, merchant_id, context, plain, len, sealed);
    if (s != VAULT_OK)
        log_json(LOG_WARN, "vault seal failed", json_pack("{s:s}", "status", vault_status_str(s)));
    return s == VAULT_OK ? 0 : -1;
}

secret_t *gw_secret_unseal(const char *merchant_id, const char *context, const char *sealed)
{
    vault_client_t *vc = gw_vault();
    secret_t *out = NULL;
    vault_status_t s = vc ? vault_unseal(vc, merchant_id, context, sealed, &out) : VAULT_ERROR;
    if (s != VAULT_OK) {
        log_json(LOG_WARN, "vault unseal failed",
                 json_pack("{s:s, s:s}", "context", context, "status", vault_status_str(s)));
        return NULL;
    }
    return out;
}
