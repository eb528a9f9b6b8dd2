/* Integration: the vault's isolation. The gateway's database role is denied
 * the vault schema; a peer whose uid is not on the allow list is refused
 * (and key custodians cannot read cards); over TCP, a client without a
 * certificate from the configured CA is refused, and so is a server the
 * client cannot verify. vaultd keeps serving through every refusal. */
#include "tests/harness/harness.h"
#include "vault/vault.h"
#include <grp.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static char *db;

static void setup(void)
{
    db = h_db_create();
}

static void teardown(void)
{
    h_db_drop(db);
    free(db);
}

static vault_client_t *unix_client(const h_vault_t *v)
{
    vault_client_config_t c = {.socket_path = v->socket, .pool_size = 2, .timeout_ms = 5000};
    vault_client_t *cl = vault_client_new(&c);
    ck_assert_ptr_nonnull(cl);
    return cl;
}

static const char *sqlstate_of(const char *role, const char *sql)
{
    static char state[8];
    PGconn *pg = h_db_connect(db, role);
    ck_assert_ptr_nonnull(pg);
    PGresult *r = PQexec(pg, sql);
    ExecStatusType st = PQresultStatus(r);
    const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    snprintf(state, sizeof state, "%s",
             (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) ? "ok" : (s ? s : "?"));
    PQclear(r);
    PQfinish(pg);
    return state;
}

START_TEST(gateway_role_is_denied_the_vault_schema)
{
    h_vault_t *v = h_vault_start(db, "vaultd", NULL);
    vault_client_t *vc = unix_client(v);
    vault_card_meta_t m;
    ck_assert_int_eq(vault_tokenize(vc, "mer_a", "4242424242424242", 12, 2030, NULL, NULL, &m),
                     VAULT_OK);
    vault_client_free(vc);
    ck_assert_int_eq(h_vault_stop(v, SIGTERM), 0);
    static const char *tables[] = {"vault.cards", "vault.data_keys", "vault.keyring"};
    for (size_t i = 0; i < PC_ARRAY_LEN(tables); i++) {
        char q[128];
        snprintf(q, sizeof q, "SELECT * FROM %s", tables[i]);
        ck_assert_str_eq(sqlstate_of("gateway", q), "42501");
        ck_assert_str_eq(sqlstate_of("auditor", q), "42501");
        ck_assert_str_eq(sqlstate_of("vault", q), "ok");
    }
    ck_assert_str_eq(sqlstate_of("gateway", "DELETE FROM vault.cards"), "42501");
    ck_assert_str_eq(sqlstate_of("gateway", "CREATE TABLE vault.mine (x int)"), "42501");
    /* and the vault role itself cannot delete key history */
    ck_assert_str_eq(sqlstate_of("vault", "DELETE FROM vault.data_keys"), "42501");
    ck_assert_str_eq(sqlstate_of("vault", "DELETE FROM vault.keyring"), "42501");
    ck_assert_str_eq(sqlstate_of("vault", "SELECT * FROM gateway.merchants"), "42501");
}
END_TEST

/* Runs fn in a child that has become uid/gid 65534 (nobody); returns the
 * child's exit code. */
static int as_nobody(int (*fn)(const h_vault_t *), const h_vault_t *v)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
            _exit(100);
        _exit(fn(v));
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 200;
}

/* exit code: 10 * ping status + tokenize status */
static int nobody_ping_and_tokenize(const h_vault_t *v)
{
    vault_client_config_t c = {.socket_path = v->socket, .pool_size = 1, .timeout_ms = 5000};
    vault_client_t *vc = vault_client_new(&c);
    if (!vc)
        return 99;
    vault_card_meta_t m;
    int p = vault_ping(vc);
    int t = vault_tokenize(vc, "mer_a", "4242424242424242", 12, 2030, "123", NULL, &m);
    vault_client_free(vc);
    return 10 * p + t;
}

static int nobody_status_and_tokenize(const h_vault_t *v)
{
    vault_client_config_t c = {.socket_path = v->socket, .pool_size = 1, .timeout_ms = 5000};
    vault_client_t *vc = vault_client_new(&c);
    if (!vc)
        return 99;
    json_t *st = NULL;
    vault_card_meta_t m;
    int s = vault_status(vc, &st);
    json_decref(st);
    int t = vault_tokenize(vc, "mer_a", "4242424242424242", 12, 2030, "123", NULL, &m);
    vault_client_free(vc);
    return 10 * s + t;
}

START_TEST(peer_uid_not_on_the_allow_list_is_refused)
{
    /* The socket's group is nobody's, so the file mode lets it connect: the
     * refusal below is vaultd's SO_PEERCRED check, not the file system. */
    h_vault_t *v = h_vault_start(
        db, "vaultd",
        "{\"socket\":{\"group\":\"nogroup\",\"allow_uids\":\"0\",\"admin_uids\":\"0\"}}");
    int rc = as_nobody(nobody_ping_and_tokenize, v);
    ck_assert_msg(rc == 10 * VAULT_DENIED + VAULT_DENIED, "nobody got %d", rc);
    char *log = file_read_all(v->log, 1 << 20, NULL);
    ck_assert_ptr_nonnull(strstr(log, "\"msg\":\"peer refused: uid not on the allow list\","
                                      "\"uid\":65534"));
    free(log);
    ck_assert_int_eq(h_sql_long(db, "SELECT count(*) FROM vault.cards"), 0);
    /* an allowed peer is served as before */
    vault_client_t *vc = unix_client(v);
    vault_card_meta_t m;
    ck_assert_int_eq(vault_tokenize(vc, "mer_a", "4242424242424242", 12, 2030, NULL, NULL, &m),
                     VAULT_OK);
    vault_client_free(vc);
    ck_assert(h_proc_alive(v->proc));
    ck_assert_int_eq(h_vault_stop(v, SIGTERM), 0);
}
END_TEST

START_TEST(key_custodians_cannot_read_cards_and_card_users_cannot_touch_keys)
{
    h_vault_t *v = h_vault_start(db, "vaultd",
                                 "{\"socket\":{\"group\":\"nogroup\",\"allow_uids\":\"0\","
                                 "\"admin_uids\":\"65534\"}}");
    int rc = as_nobody(nobody_status_and_tokenize, v);
    ck_assert_msg(rc == 10 * VAULT_OK + VAULT_DENIED, "admin-only peer got %d", rc);
    vault_client_t *vc = unix_client(v);
    int ver;
    ck_assert_int_eq(vault_key_rotate(vc, &ver), VAULT_DENIED);
    json_t *st = NULL;
    ck_assert_int_eq(vault_status(vc, &st), VAULT_DENIED);
    vault_card_meta_t m;
    ck_assert_int_eq(vault_tokenize(vc, "mer_a", "4242424242424242", 12, 2030, NULL, NULL, &m),
                     VAULT_OK);
    vault_client_free(vc);
    ck_assert_int_eq(h_sql_long(db, "SELECT current_version FROM vault.keyring"), 1);
    ck_assert_int_eq(h_vault_stop(v, SIGTERM), 0);
}
END_TEST

/* ------------------------------------------------------------ mutual TLS */

static char certs[1200];

static void make_certs(void)
{
    snprintf(certs, sizeof certs, "%s/certs", h_workdir());
    char script[1200];
    snprintf(script, sizeof script, "%s/scripts/gen-certs", SOURCE_DIR);
    char *argv[] = {"/bin/bash", script, certs, NULL};
    ck_assert_int_eq(h_run(NULL, argv), 0);
}

static h_vault_t *tls_vault(void)
{
    make_certs();
    char extra[4096];
    snprintf(extra, sizeof extra,
             "{\"tls\":{\"address\":\"127.0.0.1\",\"port\":0,\"ca_file\":\"%s/ca.crt\","
             "\"cert_file\":\"%s/server.crt\",\"key_file\":\"%s/server.key\"}}",
             certs, certs, certs);
    h_vault_t *v = h_vault_start(db, "vaultd-tls", extra);
    ck_assert_int_gt(v->tls_port, 0);
    return v;
}

static vault_client_t *tls_client(const h_vault_t *v, const char *host, const char *ca,
                                  const char *who)
{
    char caf[1300], cert[1300], key[1300];
    snprintf(caf, sizeof caf, "%s/%s.crt", certs, ca);
    snprintf(cert, sizeof cert, "%s/%s.crt", certs, who);
    snprintf(key, sizeof key, "%s/%s.key", certs, who);
    vault_client_config_t c = {.tls_host = host,
                               .tls_port = v->tls_port,
                               .tls_ca_file = caf,
                               .tls_cert_file = cert,
                               .tls_key_file = key,
                               .pool_size = 2,
                               .timeout_ms = 5000};
    vault_client_t *cl = vault_client_new(&c);
    ck_assert_ptr_nonnull(cl);
    return cl;
}

START_TEST(mtls_client_with_the_cas_certificate_is_served)
{
    h_vault_t *v = tls_vault();
    vault_client_t *vc = tls_client(v, "localhost", "ca", "client");
    vault_card_meta_t m;
    ck_assert_int_eq(vault_ping(vc), VAULT_OK);
    ck_assert_int_eq(vault_tokenize(vc, "mer_a", "4242424242424242", 12, 2030, "123", NULL, &m),
                     VAULT_OK);
    vault_card_t *card = NULL;
    ck_assert_int_eq(vault_detokenize(vc, "mer_a", m.token, "authorize", &card), VAULT_OK);
    ck_assert_str_eq(card->pan, "4242424242424242");
    ck_assert_str_eq(card->cvc, "123");
    vault_card_free(card);
    /* key administration is local only, never over the network */
    int ver;
    ck_assert_int_eq(vault_key_rotate(vc, &ver), VAULT_DENIED);
    ck_assert_int_eq(h_sql_long(db, "SELECT count(*) FROM audit.events WHERE action = "
                                    "'card.detokenize' AND detail->>'peer' = 'tls:gatewayd'"),
                     1);
    vault_client_free(vc);
    ck_assert_int_eq(h_vault_stop(v, SIGTERM), 0);
}
END_TEST

static int rng(void *ctx, unsigned char *out, size_t len)
{
    (void)ctx;
    randombytes_buf(out, len);
    return 0;
}

/* A TLS client that presents no certificate at all. Returns the handshake
 * result (0 = completed). */
static int handshake_without_certificate(int port)
{
    mbedtls_net_context net;
    mbedtls_ssl_context ssl;
    mbedtls_ssl_config conf;
    mbedtls_x509_crt ca;
    mbedtls_net_init(&net);
    mbedtls_ssl_init(&ssl);
    mbedtls_ssl_config_init(&conf);
    mbedtls_x509_crt_init(&ca);
    char caf[1300], ps[16];
    snprintf(caf, sizeof caf, "%s/ca.crt", certs);
    snprintf(ps, sizeof ps, "%d", port);
    ck_assert_int_eq(mbedtls_x509_crt_parse_file(&ca, caf), 0);
    ck_assert_int_eq(mbedtls_net_connect(&net, "127.0.0.1", ps, MBEDTLS_NET_PROTO_TCP), 0);
    ck_assert_int_eq(mbedtls_ssl_config_defaults(&conf, MBEDTLS_SSL_IS_CLIENT,
                                                 MBEDTLS_SSL_TRANSPORT_STREAM,
                                                 MBEDTLS_SSL_PRESET_DEFAULT),
                     0);
    mbedtls_ssl_conf_authmode(&conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(&conf, &ca, NULL);
    mbedtls_ssl_conf_rng(&conf, rng, NULL);
    mbedtls_ssl_conf_read_timeout(&conf, 5000);
    ck_assert_int_eq(mbedtls_ssl_setup(&ssl, &conf), 0);
    ck_assert_int_eq(mbedtls_ssl_set_hostname(&ssl, "localhost"), 0);
    mbedtls_ssl_set_bio(&ssl, &net, mbedtls_net_send, NULL, mbedtls_net_recv_timeout);
    int rc;
    while ((rc = mbedtls_ssl_handshake(&ssl)) == MBEDTLS_ERR_SSL_WANT_READ ||
           rc == MBEDTLS_ERR_SSL_WANT_WRITE)
        ;
    if (rc == 0) {
        /* should not happen; if it did, the vault must still not answer */
        static const unsigned char ping[] = {0, 0, 0, 2, 1, 1};
        unsigned char buf[16];
        PC_IGNORE(mbedtls_ssl_write(&ssl, ping, sizeof ping) < 0);
        if (mbedtls_ssl_read(&ssl, buf, sizeof buf) > 0)
            rc = 1;
    }
    mbedtls_ssl_free(&ssl);
    mbedtls_ssl_config_free(&conf);
    mbedtls_x509_crt_free(&ca);
    mbedtls_net_free(&net);
    return rc;
}

START_TEST(mtls_clients_without_a_valid_certificate_are_refused)
{
    h_vault_t *v = tls_vault();
    /* no certificate at all */
    ck_assert_int_ne(handshake_without_certificate(v->tls_port), 0);
    /* a certificate from another CA */
    vault_client_t *rogue = tls_client(v, "localhost", "ca", "rogue-client");
    ck_assert_int_eq(vault_ping(rogue), VAULT_UNAVAILABLE);
    vault_card_meta_t m;
    ck_assert_int_eq(vault_tokenize(rogue, "mer_a", "4242424242424242", 12, 2030, NULL, NULL, &m),
                     VAULT_UNAVAILABLE);
    vault_client_free(rogue);
    /* a certificate from the right CA, for another service than the gateway */
    vault_client_t *other = tls_client(v, "localhost", "ca", "other-client");
    ck_assert_int_eq(vault_tokenize(other, "mer_a", "4242424242424242", 12, 2030, NULL, NULL, &m),
                     VAULT_DENIED);
    vault_client_free(other);
    /* the client refuses a server it cannot verify: wrong CA, wrong name */
    vault_client_t *wrong_ca = tls_client(v, "localhost", "rogue-ca", "client");
    ck_assert_int_eq(vault_ping(wrong_ca), VAULT_UNAVAILABLE);
    vault_client_free(wrong_ca);
    vault_client_t *wrong_name = tls_client(v, "127.0.0.1", "ca", "client");
    ck_assert_int_eq(vault_ping(wrong_name), VAULT_UNAVAILABLE);
    vault_client_free(wrong_name);
    ck_assert_int_eq(h_sql_long(db, "SELECT count(*) FROM vault.cards"), 0);
    char *log = file_read_all(v->log, 1 << 20, NULL);
    ck_assert_ptr_nonnull(strstr(log, "\"msg\":\"TLS client refused\""));
    ck_assert_ptr_nonnull(strstr(log, "\"msg\":\"TLS peer refused: name not on the allow list\""));
    free(log);
    /* still serving the legitimate client */
    vault_client_t *vc = tls_client(v, "localhost", "ca", "client");
    ck_assert_int_eq(vault_ping(vc), VAULT_OK);
    vault_client_free(vc);
    ck_assert_int_eq(h_vault_stop(v, SIGTERM), 0);
}
END_TEST

/* Sends `first`, then one byte a second; the seconds until vaultd closes
 * the connection (-1 if it is still open after 30). */
static int drip_until_closed(int fd, const unsigned char *first, size_t n)
{
    ck_assert_int_eq(send(fd, first, n, MSG_NOSIGNAL), (ssize_t)n);
    for (int sec = 1; sec <= 30; sec++) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 1000) > 0) {
            unsigned char b[256];
            if (recv(fd, b, sizeof b, MSG_DONTWAIT) <= 0)
                return sec;
        }
        if (send(fd, "\x01", 1, MSG_NOSIGNAL) < 0)
            return sec;
    }
    return -1;
}

/* A peer that starts a frame (or, over TCP, a TLS handshake, before any
 * certificate is seen) and then sends a byte a second cannot hold the
 * connection, and a vaultd thread, past the frame timeout (10 s) in all:
 * each byte arriving does not start the clock again. */
START_TEST(a_peer_dripping_bytes_is_cut_off_at_the_frame_timeout)
{
    h_vault_t *v = tls_vault();
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", v->socket);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    static const unsigned char hdr[] = {0, 0, 0x10, 0}; /* a frame of 4096 bytes */
    int secs = drip_until_closed(fd, hdr, sizeof hdr);
    close(fd);
    ck_assert_msg(secs > 0 && secs <= 14, "unix socket held %d s", secs);

    fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in t = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)v->tls_port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&t, sizeof t), 0);
    static const unsigned char rec[] = {0x16, 0x03, 0x01, 0x3f, 0xf0}; /* a 16 KB handshake */
    secs = drip_until_closed(fd, rec, sizeof rec);
    close(fd);
    ck_assert_msg(secs > 0 && secs <= 14, "TLS handshake held %d s", secs);

    vault_client_t *vc = unix_client(v); /* and it still serves */
    ck_assert_int_eq(vault_ping(vc), VAULT_OK);
    vault_client_free(vc);
    ck_assert_int_eq(h_vault_stop(v, SIGTERM), 0);
}
END_TEST

int main(void)
{
    h_init("it_vault_isolation");
    Suite *s = suite_create("vault_isolation");
    TCase *tc = h_tcase("isolation", 300);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, gateway_role_is_denied_the_vault_schema);
    tcase_add_test(tc, peer_uid_not_on_the_allow_list_is_refused);
    tcase_add_test(tc, a_peer_dripping_bytes_is_cut_off_at_the_frame_timeout);
    tcase_add_test(tc, key_custodians_cannot_read_cards_and_card_users_cannot_touch_keys);
    tcase_add_test(tc, mtls_client_with_the_cas_certificate_is_served);
    tcase_add_test(tc, mtls_clients_without_a_valid_certificate_are_refused);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
