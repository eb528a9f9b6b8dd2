/* vault/io: one connection between a vault client and vaultd, over a unix
 * socket or TCP with mutual TLS (mbedTLS), with whole-frame reads and
 * writes under a deadline. Private to vault/.
 *
 * TLS policy: TLS 1.2 or later only, ECDHE with AEAD suites only, the peer's
 * certificate required on both sides and checked against the configured CA
 * (and the server's name by the client). The RNG is libsodium's. */
#ifndef PORTCULLIS_VAULT_IO_H
#define PORTCULLIS_VAULT_IO_H

#include "util/util.h"

typedef struct vio_tls_conf vio_tls_conf_t;

/* Loads CA, certificate and private key (the key file must be private to its
 * owner, like every secret). NULL with a reason in err on failure. */
vio_tls_conf_t *vio_tls_conf_new(bool server, const char *ca_file, const char *cert_file,
                                 const char *key_file, char *err, size_t errlen) PC_WUR;
void vio_tls_conf_free(vio_tls_conf_t *c);

typedef struct vio vio_t;

/* Wraps a connected socket (the vio owns it from now on). With tls, runs
 * the handshake within timeout_ms; `hostname` is the expected server name
 * (client side) or NULL (server side). NULL on failure, fd closed. */
vio_t *vio_open(int fd, vio_tls_conf_t *tls, const char *hostname, int timeout_ms, char *err,
                size_t errlen) PC_WUR;
void vio_close(vio_t *v);
int vio_fd(const vio_t *v);
bool vio_is_tls(const vio_t *v);
/* The peer certificate's subject CN (TLS only), "" otherwise. */
void vio_peer_name(const vio_t *v, char *out, size_t cap);

typedef enum { VIO_OK = 0, VIO_EOF, VIO_TIMEOUT, VIO_ERROR } vio_status_t;

vio_status_t vio_write_all(vio_t *v, const void *buf, size_t len, int64_t deadline_us) PC_WUR;
vio_status_t vio_read_all(vio_t *v, void *buf, size_t len, int64_t deadline_us) PC_WUR;
/* True when a read would not block: data, EOF or an error is waiting (used
 * to spot pooled connections that the server closed). */
bool vio_readable_now(vio_t *v);

#endif
