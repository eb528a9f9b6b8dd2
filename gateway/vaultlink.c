/* gatewayd's link to vaultd: the one process-wide vault client (created at
 * start-up from vault.*) and its /readyz check. Handlers reach the vault
 * only through gw_vault(). */
#include "gateway/gateway.h"
#include "vault/vault.h"
#include <stdio.h>

gw_vault_config_t gw_vault_cfg;
static vault_client_t *client;

vault_client_t *gw_vault(void)
{
    return client;
}

static bool vault_ready(const char **name, char *why, size_t whylen)
{
    *name = "vault";
    vault_status_t s = vault_ping(client);
    if (s == VAULT_OK)
        return true;
    snprintf(why, whylen, "%s", s == VAULT_UNAVAILABLE ? "unreachable" : vault_status_str(s));
    return false;
}

int gw_vault_start(void)
{
    if (!gw_vault_cfg.socket && !gw_vault_cfg.tls_host) {
        log_warn("no vault configured (vault.socket or vault.tls_host): POST /v1/tokens "
                 "answers 503 vault_unavailable");
        return 0;
    }
    vault_client_config_t vc = {
        .socket_path = gw_vault_cfg.socket,
        .tls_host = gw_vault_cfg.tls_host,
        .tls_port = (int)gw_vault_cfg.tls_port,
        .tls_ca_file = gw_vault_cfg.tls_ca_file,
        .tls_cert_file = gw_vault_cfg.tls_cert_file,
        .tls_key_file = gw_vault_cfg.tls_key_file,
        .pool_size = (int)gw_vault_cfg.pool_size,
        .timeout_ms = (int)gw_vault_cfg.timeout_ms,
    };
    client = vault_client_new(&vc);
    if (!client) {
        log_error("vault.*: the vault client cannot be created (see above)");
        return -1;
    }
    gw_ready_add(vault_ready);
    log_json(LOG_INFO, "vault configured",
             json_pack("{s:s, s:i}", "vault",
                       gw_vault_cfg.tls_host ? gw_vault_cfg.tls_host : gw_vault_cfg.socket,
                       "pool_size", (int)gw_vault_cfg.pool_size));
    return 0;
}

void gw_vault_stop(void)
{
    vault_client_free(client);
    client = NULL;
}
