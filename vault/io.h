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

typedef enum { VIO_OK = 0, VIO_EOF, VIO_TIMEOUT, VIO_ERROR, VIO_TOO_LARGE } vio_status_t;

/* Blocking I/O with per-call timeouts (SO_RCVTIMEO and SO_SNDTIMEO) rather
 * than a poll before every call: a request and its reply cost one send and
 * one recv on each side. vio_open sets the timeout to its timeout_ms. */
void vio_set_timeout(vio_t *v, int ms);
vio_status_t vio_write_all(vio_t *v, const void *buf, size_t len) PC_WUR;
/* Reads until buf (cap bytes, at least a maximal frame) holds one whole
 * frame: *have is how many bytes buf already holds (input that arrived
 * with the previous frame), *frame the whole frame's size once VIO_OK.
 * Once a frame has begun, the rest must come within rest_timeout_ms in all
 * (0 = no limit but the current timeout per read). VIO_TOO_LARGE: the
 * length prefix is invalid. */
vio_status_t vio_read_frame(vio_t *v, uint8_t *buf, size_t cap, size_t *have, size_t *frame,
                            int rest_timeout_ms) PC_WUR;
/* True when a read would not block: data, EOF or an error is waiting (used
 * to spot idle pooled connections that the server closed). */
bool vio_readable_now(vio_t *v);

#endif
