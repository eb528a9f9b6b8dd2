/* Vault connections: plain unix-socket I/O or mbedTLS, both behind one
 * small interface with timeouts, so client and server share the framing. */
#include "vault/io.h"
#include "vault/proto.h"
#include <errno.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct vio_tls_conf {
    mbedtls_ssl_config conf;
    mbedtls_x509_crt ca, cert;
    mbedtls_pk_context key;
};

struct vio {
    int fd;
    mbedtls_ssl_context *ssl;
    int timeout_ms;      /* current SO_RCVTIMEO / SO_SNDTIMEO */
    int64_t deadline_us; /* while set, what must arrive by then (monotonic); 0 = none */
};

/* A deadline for a whole exchange (a handshake, the rest of a frame), not
 * for each recv: SO_RCVTIMEO restarts with every byte, so a peer dripping one
 * byte at a time could hold a connection, and vaultd's thread, for hours.
 * Before each recv the socket timeout is cut to what is left; false once
 * nothing is. */
static bool deadline_arm(vio_t *v)
{
    if (!v->deadline_us)
        return true;
    int64_t left_ms = (v->deadline_us - time_mono_us()) / 1000;
    if (left_ms <= 0)
        return false;
    if (left_ms < v->timeout_ms || v->timeout_ms <= 0)
        vio_set_timeout(v, (int)left_ms);
    return true;
}

/* ECDHE + AEAD only: forward secrecy and no CBC padding oracles. */
static const int suites[] = {
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    0,
};

static int rng(void *ctx, unsigned char *out, size_t len)
{
    (void)ctx;
    randombytes_buf(out, len);
    return 0;
}

static void tls_err(char *err, size_t errlen, const char *what, int rc)
{
    char buf[160];
    mbedtls_strerror(rc, buf, sizeof buf);
    snprintf(err, errlen, "%s: %s (-0x%04x)", what, buf, (unsigned)-rc);
}

vio_tls_conf_t *vio_tls_conf_new(bool server, const char *ca_file, const char *cert_file,
                                 const char *key_file, char *err, size_t errlen)
{
    if (!ca_file || !cert_file || !key_file) {
        snprintf(err, errlen, "TLS needs a CA file, a certificate file and a key file");
        return NULL;
    }
    vio_tls_conf_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    mbedtls_ssl_config_init(&c->conf);
    mbedtls_x509_crt_init(&c->ca);
    mbedtls_x509_crt_init(&c->cert);
    mbedtls_pk_init(&c->key);
    int rc;
    secret_t *key = NULL;
    if ((rc = mbedtls_x509_crt_parse_file(&c->ca, ca_file)) != 0) {
        tls_err(err, errlen, ca_file, rc);
        goto fail;
    }
    if ((rc = mbedtls_x509_crt_parse_file(&c->cert, cert_file)) != 0) {
        tls_err(err, errlen, cert_file, rc);
        goto fail;
    }
    key = secret_read_file(key_file, err, errlen);
    if (!key)
        goto fail;
    /* PEM parsing wants the terminating NUL counted in the length. */
    rc = mbedtls_pk_parse_key(&c->key, key->data, key->len + 1, NULL, 0);
    secret_free(key);
    if (rc != 0) {
        tls_err(err, errlen, key_file, rc);
        goto fail;
    }
    rc = mbedtls_ssl_config_defaults(&c->conf,
                                     server ? MBEDTLS_SSL_IS_SERVER : MBEDTLS_SSL_IS_CLIENT,
                                     MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
    if (rc == 0)
        rc = mbedtls_ssl_conf_own_cert(&c->conf, &c->cert, &c->key);
    if (rc != 0) {
        tls_err(err, errlen, "TLS configuration", rc);
        goto fail;
    }
    mbedtls_ssl_conf_rng(&c->conf, rng, NULL);
    mbedtls_ssl_conf_authmode(&c->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(&c->conf, &c->ca, NULL);
    mbedtls_ssl_conf_min_version(&c->conf, MBEDTLS_SSL_MAJOR_VERSION_3,
                                 MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_ciphersuites(&c->conf, suites);
    mbedtls_ssl_conf_renegotiation(&c->conf, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
    return c;
fail:
    vio_tls_conf_free(c);
    return NULL;
}

void vio_tls_conf_free(vio_tls_conf_t *c)
{
    if (!c)
        return;
    mbedtls_ssl_config_free(&c->conf);
    mbedtls_x509_crt_free(&c->ca);
    mbedtls_x509_crt_free(&c->cert);
    mbedtls_pk_free(&c->key);
    free(c);
}

static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
    vio_t *v = ctx;
    ssize_t n = send(v->fd, buf, len, MSG_NOSIGNAL);
    if (n >= 0)
        return (int)n;
    if (errno == EINTR)
        return MBEDTLS_ERR_SSL_WANT_WRITE;
    return errno == EAGAIN || errno == EWOULDBLOCK ? MBEDTLS_ERR_SSL_TIMEOUT
                                                   : MBEDTLS_ERR_NET_SEND_FAILED;
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len)
{
    vio_t *v = ctx;
    if (!deadline_arm(v))
        return MBEDTLS_ERR_SSL_TIMEOUT;
    ssize_t n = recv(v->fd, buf, len, 0);
    if (n > 0)
        return (int)n;
    if (n == 0)
        return MBEDTLS_ERR_NET_CONN_RESET;
    if (errno == EINTR)
        return MBEDTLS_ERR_SSL_WANT_READ;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return MBEDTLS_ERR_SSL_TIMEOUT;
    return errno == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET : MBEDTLS_ERR_NET_RECV_FAILED;
}

void vio_set_timeout(vio_t *v, int ms)
{
    if (ms <= 0 || ms == v->timeout_ms)
        return;
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    setsockopt(v->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(v->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    v->timeout_ms = ms;
}

vio_t *vio_open(int fd, vio_tls_conf_t *tls, const char *hostname, int timeout_ms, char *err,
                size_t errlen)
{
    vio_t *v = calloc(1, sizeof *v);
    if (!v) {
        close(fd);
        return NULL;
    }
    v->fd = fd;
    vio_set_timeout(v, timeout_ms);
    if (!tls)
        return v;
    v->ssl = calloc(1, sizeof *v->ssl);
    if (!v->ssl) {
        vio_close(v);
        return NULL;
    }
    mbedtls_ssl_init(v->ssl);
    int rc = mbedtls_ssl_setup(v->ssl, &tls->conf);
    if (rc == 0 && hostname)
        rc = mbedtls_ssl_set_hostname(v->ssl, hostname);
    if (rc != 0) {
        tls_err(err, errlen, "TLS setup", rc);
        vio_close(v);
        return NULL;
    }
    mbedtls_ssl_set_bio(v->ssl, v, bio_send, bio_recv, NULL);
    v->deadline_us = timeout_ms > 0 ? time_mono_us() + (int64_t)timeout_ms * 1000 : 0;
    while ((rc = mbedtls_ssl_handshake(v->ssl)) != 0) {
        if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE)
            continue;
        tls_err(err, errlen, "TLS handshake", rc);
        uint32_t flags = mbedtls_ssl_get_verify_result(v->ssl);
        if (flags != 0 && flags != (uint32_t)-1) {
            char why[256];
            mbedtls_x509_crt_verify_info(why, sizeof why, "", flags);
            why[strcspn(why, "\n")] = '\0';
            size_t used = strlen(err);
            snprintf(err + used, errlen - used, "; peer certificate: %s", why);
        }
        vio_close(v);
        return NULL;
    }
    v->deadline_us = 0;
    vio_set_timeout(v, timeout_ms);
    return v;
}

void vio_close(vio_t *v)
{
    if (!v)
        return;
    if (v->ssl) {
        vio_set_timeout(v, 100);
        (void)mbedtls_ssl_close_notify(v->ssl);
        mbedtls_ssl_free(v->ssl); /* wipes its record buffers */
        free(v->ssl);
    }
    if (v->fd >= 0)
        close(v->fd);
    free(v);
}

int vio_fd(const vio_t *v)
{
    return v->fd;
}

bool vio_is_tls(const vio_t *v)
{
    return v->ssl != NULL;
}

void vio_peer_name(const vio_t *v, char *out, size_t cap)
{
    out[0] = '\0';
    const mbedtls_x509_crt *peer = v->ssl ? mbedtls_ssl_get_peer_cert(v->ssl) : NULL;
    if (!peer)
        return;
    for (const mbedtls_x509_name *n = &peer->subject; n; n = n->next)
        if (MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) == 0) {
            size_t l = n->val.len < cap - 1 ? n->val.len : cap - 1;
            memcpy(out, n->val.p, l);
            out[l] = '\0';
            for (size_t i = 0; i < l; i++)
                if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f || out[i] == '"')
                    out[i] = '?';
            return;
        }
}

vio_status_t vio_write_all(vio_t *v, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n;
        if (v->ssl) {
            int rc = mbedtls_ssl_write(v->ssl, p, len);
            if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE)
                continue;
            if (rc == MBEDTLS_ERR_SSL_TIMEOUT)
                return VIO_TIMEOUT;
            if (rc < 0)
                return VIO_ERROR;
            n = rc;
        } else {
            n = send(v->fd, p, len, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return errno == EAGAIN || errno == EWOULDBLOCK ? VIO_TIMEOUT : VIO_ERROR;
        }
        p += n;
        len -= (size_t)n;
    }
    return VIO_OK;
}

/* One blocking read of whatever is available. */
static vio_status_t read_some(vio_t *v, uint8_t *buf, size_t cap, size_t *got)
{
    for (;;) {
        if (v->ssl) {
            int rc = mbedtls_ssl_read(v->ssl, buf, cap);
            if (rc > 0) {
                *got = (size_t)rc;
                return VIO_OK;
            }
            if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE)
                continue;
            if (rc == MBEDTLS_ERR_SSL_TIMEOUT)
                return VIO_TIMEOUT;
            if (rc == 0 || rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY ||
                rc == MBEDTLS_ERR_NET_CONN_RESET)
                return VIO_EOF;
            return VIO_ERROR;
        }
        if (!deadline_arm(v))
            return VIO_TIMEOUT;
        ssize_t n = recv(v->fd, buf, cap, 0);
        if (n > 0) {
            *got = (size_t)n;
            return VIO_OK;
        }
        if (n == 0)
            return VIO_EOF;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return VIO_TIMEOUT;
        return errno == ECONNRESET ? VIO_EOF : VIO_ERROR;
    }
}

vio_status_t vio_read_frame(vio_t *v, uint8_t *buf, size_t cap, size_t *have, size_t *frame,
                            int rest_timeout_ms)
{
    int idle_ms = v->timeout_ms;
    size_t need = PROTO_HDR, len;
    vio_status_t s = VIO_OK;
    for (;;) {
        if (need == PROTO_HDR && *have >= PROTO_HDR) {
            if (!proto_frame_len(buf, &len)) {
                s = VIO_TOO_LARGE;
                break;
            }
            need = PROTO_HDR + len;
        }
        if (*have >= need)
            break;
        if (*have > 0 && rest_timeout_ms > 0 && !v->deadline_us) /* the frame has begun */
            v->deadline_us = time_mono_us() + (int64_t)rest_timeout_ms * 1000;
        size_t got = 0;
        s = read_some(v, buf + *have, cap - *have, &got);
        if (s != VIO_OK)
            break;
        *have += got;
    }
    v->deadline_us = 0;
    vio_set_timeout(v, idle_ms);
    if (s == VIO_OK)
        *frame = need;
    return s;
}

bool vio_readable_now(vio_t *v)
{
    if (v->ssl && mbedtls_ssl_get_bytes_avail(v->ssl) > 0)
        return true;
    struct pollfd p = {.fd = v->fd, .events = POLLIN};
    return poll(&p, 1, 0) != 0;
}
