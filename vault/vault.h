/* vault: the client of vaultd, the card vault. vaultd is the only process
 * that holds the key-encrypting key and can turn a token back into a card
 * number; everything else (gatewayd, the providers engine, the checkout,
 * vaultctl) talks to it through this header, over a unix socket or TCP with
 * mutual TLS. This is the vault's one public header. */
#ifndef PORTCULLIS_VAULT_H
#define PORTCULLIS_VAULT_H

#include "util/util.h"

typedef struct vault_client vault_client_t;

typedef struct {
    const char *socket_path; /* unix socket (default mode) */
    const char *tls_host;
    int tls_port; /* or TCP + mutual TLS */
    const char *tls_ca_file, *tls_cert_file, *tls_key_file;
    int pool_size;  /* connections kept open */
    int timeout_ms; /* per operation */
} vault_client_config_t;

typedef enum {
    VAULT_OK = 0,
    VAULT_INVALID_NUMBER,
    VAULT_INVALID_EXPIRY,
    VAULT_INVALID_CVC,
    VAULT_NOT_FOUND,
    VAULT_DENIED,
    VAULT_UNAVAILABLE,
    VAULT_ERROR
} vault_status_t;

typedef struct {
    char token[64];
    char brand[16];
    char bin[9];
    char last4[5];
    int exp_month, exp_year;
    char fingerprint[80]; /* "fp_" + URL-safe base64 of HMAC-SHA-512-256 */
    bool has_cvc;
} vault_card_meta_t;

/* Card data is only ever in sodium_malloc'd memory; vault_card_free wipes it. */
typedef struct {
    char pan[20];
    char cvc[5];
    bool has_cvc;
    int exp_month, exp_year;
    char name[128];
    char brand[16];
} vault_card_t;

/* Returns NULL when the configuration is unusable (no socket and no TLS
 * host, or unreadable TLS files); vaultd need not be up yet: connections are
 * opened on first use and reopened after a vaultd restart. Thread-safe. */
vault_client_t *vault_client_new(const vault_client_config_t *cfg) PC_WUR;
void vault_client_free(vault_client_t *vc);
vault_status_t vault_ping(vault_client_t *vc) PC_WUR;
vault_status_t vault_tokenize(vault_client_t *vc, const char *merchant_id, const char *number,
                              int exp_month, int exp_year, const char *cvc /* NULL ok */,
                              const char *name /* NULL ok */, vault_card_meta_t *out) PC_WUR;
/* Metadata only (no PAN): for routing (brand) and fraud features (BIN, fingerprint, has_cvc). */
vault_status_t vault_card_info(vault_client_t *vc, const char *merchant_id, const char *token,
                               vault_card_meta_t *out) PC_WUR;
/* purpose: "authorize" gets the CVC and consumes it (wiped at first use);
 * other purposes (lowercase words such as "capture", "refund", "lookup")
 * neither get it nor consume it, so a CVC still held means no authorization
 * ever fetched the card. Every
 * call is in the audit log with its purpose. A token of another merchant is
 * VAULT_NOT_FOUND, exactly like an unknown one. */
vault_status_t vault_detokenize(vault_client_t *vc, const char *merchant_id, const char *token,
                                const char *purpose, vault_card_t **out) PC_WUR;
void vault_card_free(vault_card_t *card);
/* Small secrets (provider credentials, up to VAULT_SECRET_MAX bytes): the
 * sealed text is safe to store in the gateway schema. `context` (e.g.
 * "provider:stripe") is bound to the ciphertext: unsealing with another
 * merchant or context fails with VAULT_DENIED. */
#define VAULT_SECRET_MAX 4096
vault_status_t vault_seal(vault_client_t *vc, const char *merchant_id, const char *context,
                          const void *plain, size_t len, char **sealed /* malloc'd text */) PC_WUR;
vault_status_t vault_unseal(vault_client_t *vc, const char *merchant_id, const char *context,
                            const char *sealed, secret_t **out /* util/util.h secret_t */) PC_WUR;

const char *vault_status_str(vault_status_t s);

/* ------------------------------------------------------------------------
 * Key administration (vaultctl). vaultd accepts these only from a peer uid
 * on its admin list, over the unix socket, never over TLS.
 * ---------------------------------------------------------------------- */
/* Adds a data-key version and makes it current; *version is the new one. */
vault_status_t vault_key_rotate(vault_client_t *vc, int *version) PC_WUR;
/* Re-encrypts up to `batch` records sealed under an older version with the
 * current one; *moved is how many, *remaining how many are still older. */
vault_status_t vault_key_rewrap(vault_client_t *vc, int batch, int *moved, long *remaining) PC_WUR;
/* Sets the minimum decryption version (0 = the current version) and
 * destroys the wrapped keys below it. Refused (VAULT_DENIED, *remaining
 * set) while any record is still sealed under an older version. */
vault_status_t vault_key_retire(vault_client_t *vc, int min_version, long *remaining) PC_WUR;
/* Key versions, record counts per version, CVCs held: a JSON object
 * (caller json_decref()s). */
vault_status_t vault_status(vault_client_t *vc, json_t **out) PC_WUR;

#endif
