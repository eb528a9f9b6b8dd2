/* Integration: vaultd's operations through the client library against a
 * real database: tokenize, detokenize, card info, seal and unseal, the audit
 * trail, malformed and oversized frames (answered, and the daemon keeps
 * serving), the KEK file rules and the process hardening. */
#include "tests/harness/harness.h"
#include "vault/vault.h"
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static char *db;
static h_vault_t *vlt;
static vault_client_t *vc;

static vault_client_t *client_for(const h_vault_t *v)
{
    vault_client_config_t c = {.socket_path = v->socket, .pool_size = 4, .timeout_ms = 10000};
    vault_client_t *cl = vault_client_new(&c);
    ck_assert_ptr_nonnull(cl);
    return cl;
}

static void setup(void)
{
    db = h_db_create();
    vlt = h_vault_start(db, "vaultd", NULL);
    vc = client_for(vlt);
}

static void teardown(void)
{
    vault_client_free(vc);
    if (vlt)
        ck_assert_int_eq(h_vault_stop(vlt, SIGTERM), 0);
    h_db_drop(db);
    free(db);
}

START_TEST(tokenize_detokenize_and_card_info_round_trip)
{
    vault_card_meta_t m;
    ck_assert_int_eq(
        vault_tokenize(vc, "mer_a", "4242 4242 4242 4242", 12, 2030, "123", "Ada Lovelace", &m),
        VAULT_OK);
    ck_assert(!strncmp(m.token, "tok_", 4));
    ck_assert_uint_ge(strlen(m.token), 4 + 22); /* 128 random bits, URL-safe base64 */
    ck_assert_str_eq(m.brand, "visa");
    ck_assert_str_eq(m.bin, "424242");
    ck_assert_str_eq(m.last4, "4242");
    ck_assert_int_eq(m.exp_month, 12);
    ck_assert_int_eq(m.exp_year, 2030);
    ck_assert(!strncmp(m.fingerprint, "fp_", 3));
    ck_assert(m.has_cvc);

    vault_card_t *card = NULL;
    ck_assert_int_eq(vault_detokenize(vc, "mer_a", m.token, "lookup", &card), VAULT_OK);
    ck_assert_str_eq(card->pan, "4242424242424242");
    ck_assert_str_eq(card->name, "Ada Lovelace");
    ck_assert_str_eq(card->brand, "visa");
    ck_assert_int_eq(card->exp_month, 12);
    ck_assert_int_eq(card->exp_year, 2030);
    ck_assert(!card->has_cvc); /* a lookup never gets the CVC ... */
    ck_assert_str_eq(card->cvc, "");
    vault_card_free(card);

    vault_card_meta_t info;
    ck_assert_int_eq(vault_card_info(vc, "mer_a", m.token, &info), VAULT_OK);
    ck_assert_str_eq(info.token, m.token);
    ck_assert_str_eq(info.brand, "visa");
    ck_assert_str_eq(info.bin, "424242");
    ck_assert_str_eq(info.last4, "4242");
    ck_assert_str_eq(info.fingerprint, m.fingerprint);
    ck_assert(info.has_cvc); /* ... nor takes it from the authorization */

    /* two-digit years are 20YY; amex has 4-digit CVCs */
    ck_assert_int_eq(vault_tokenize(vc, "mer_a", "378282246310005", 1, 31, "1234", NULL, &m),
                     VAULT_OK);
    ck_assert_str_eq(m.brand, "amex");
    ck_assert_int_eq(m.exp_year, 2031);
    ck_assert_int_eq(vault_detokenize(vc, "mer_a", m.token, "lookup", &card), VAULT_OK);
    ck_assert_str_eq(card->name, "");
    vault_card_free(card);
}
END_TEST

START_TEST(tokens_are_random_and_fingerprints_per_merchant)
{
    vault_card_meta_t a1, a2, b;
    ck_assert_int_eq(vault_tokenize(vc, "mer_a", "5555555555554444", 1, 2031, NULL, NULL, &a1),
                     VAULT_OK);
    ck_assert_int_eq(vault_tokenize(vc, "mer_a", "5555555555554444", 1, 2031, NULL, NULL, &a2),
                     VAULT_OK);
    ck_assert_int_eq(vault_tokenize(vc, "mer_b", "5555555555554444", 1, 2031, NULL, NULL, &b),
                     VAULT_OK);
    ck_assert_str_ne(a1.token, a2.token); /* never derived from the PAN */
    ck_assert_str_eq(a1.fingerprint, a2.fingerprint);
    ck_assert_str_ne(a1.fingerprint, b.fingerprint);
    ck_assert(!a1.has_cvc);
    ck_assert_ptr_null(strstr(a1.token, "4444"));
}
END_TEST

START_TEST(another_merchants_token_is_not_found)
{
    vault_card_meta_t m, info;
    vault_card_t *card = NULL;
    ck_assert_int_eq(vault_tokenize(vc, "mer_a", "4242424242424242", 12, 2030, "123", NULL, &m),
                     VAULT_OK);
    ck_assert_int_eq(vault_detokenize(vc, "mer_b", m.token, "authorize", &card), VAULT_NOT_FOUND);
    ck_assert_ptr_null(card);
    ck_assert_int_eq(vault_card_info(vc, "mer_b", m.token, &info), VAULT_NOT_FOUND);
    ck_assert_int_eq(vault_detokenize(vc, "mer_a", "tok_doesnotexist0000000", "lookup", &card),
                     VAULT_NOT_FOUND);
    /* the wrong merchant's attempt did not consume the CVC */
    ck_assert_int_eq(vault_card_info(vc, "mer_a", m.token, &info), VAULT_OK);
    ck_assert(info.has_cvc);
}
END_TEST

START_TEST(card_errors_store_nothing)
{
    vault_card_meta_t m;
    long before = h_sql_long(db, "SELECT count(*) FROM vault.cards");
    ck_assert_int_eq(vault_tokenize(vc, "mer_a", "4242424242424241", 12, 2030, NULL, NULL, &m),
                     VAULT_INVALID_NUMBER);
    ck_assert_int_eq(vault_tokenize(vc, "mer_a", "", 12, 2030, NULL, NULL, &m),
                     VAULT_INVALID_NUMBER);
    ck_assert_int_eq(vault_tokenize(vc, "mer_a", "4242424242424242", 13, 2030, NULL, NULL, &m),
                     VAULT_INVALID_EXPIRY);
    ck_assert_int_eq(vault_tokenize(vc, "mer_a", "4242424242424242", 1, 2001, NULL, NULL, &m),
                     VAULT_INVALID_EXPIRY);
    ck_assert_int_eq(vault_tokenize(vc, "mer_a", "4242424242424242", 1, 2030, "12", NULL, &m),
                     VAULT_INVALID_CVC);
    ck_assert_int_eq(vault_tokenize(vc, "mer_a", "378282246310005", 1, 2030, "123", NULL, &m),
                     VAULT_INVALID_CVC);
    ck_assert_int_eq(h_sql_long(db, "SELECT count(*) FROM vault.cards"), before);
}
END_TEST

START_TEST(secrets_seal_and_unseal_for_their_merchant_and_context_only)
{
    const char cred[] = "{\"api_key\":\"sk_live_0123456789\"}";
    char *sealed = NULL;
    ck_assert_int_eq(vault_seal(vc, "mer_a", "provider:stripe", cred, strlen(cred), &sealed),
                     VAULT_OK);
    ck_assert_ptr_nonnull(sealed);
    ck_assert_ptr_null(strstr(sealed, "sk_live"));
    secret_t *out = NULL;
    ck_assert_int_eq(vault_unseal(vc, "mer_a", "provider:stripe", sealed, &out), VAULT_OK);
    ck_assert_uint_eq(out->len, strlen(cred));
    ck_assert(!memcmp(out->data, cred, out->len));
    secret_free(out);
    ck_assert_int_eq(vault_unseal(vc, "mer_b", "provider:stripe", sealed, &out), VAULT_DENIED);
    ck_assert_int_eq(vault_unseal(vc, "mer_a", "provider:adyen", sealed, &out), VAULT_DENIED);
    sealed[10] = sealed[10] == 'A' ? 'B' : 'A';
    ck_assert_int_eq(vault_unseal(vc, "mer_a", "provider:stripe", sealed, &out), VAULT_DENIED);
    ck_assert_ptr_null(out);
    free(sealed);
    ck_assert_int_eq(h_sql_long(db, "SELECT count(*) FROM audit.events WHERE action = "
                                    "'secret.unseal' AND detail->>'outcome' = 'denied'"),
                     3);
}
END_TEST

START_TEST(every_detokenize_is_audited_before_the_pan_leaves)
{
    vault_card_meta_t m;
    vault_card_t *card = NULL;
    ck_assert_int_eq(vault_tokenize(vc, "mer_a", "4242424242424242", 12, 2030, NULL, NULL, &m),
                     VAULT_OK);
    ck_assert_int_eq(vault_detokenize(vc, "mer_a", m.token, "authorize", &card), VAULT_OK);
    vault_card_free(card);
    ck_assert_int_eq(vault_detokenize(vc, "mer_b", m.token, "refund", &card), VAULT_NOT_FOUND);
    ck_assert_int_eq(h_sql_long(db,
                                "SELECT count(*) FROM audit.events WHERE action = "
                                "'card.detokenize' AND actor = 'vaultd' AND object = '%s' AND "
                                "merchant_id = 'mer_a' AND detail->>'purpose' = 'authorize' "
                                "AND detail->>'outcome' = 'ok' AND detail->>'peer' = 'uid:0'",
                                m.token),
                     1);
    ck_assert_int_eq(h_sql_long(db, "SELECT count(*) FROM audit.events WHERE action = "
                                    "'card.detokenize' AND merchant_id = 'mer_b' AND "
                                    "detail->>'outcome' = 'not_found'"),
                     1);
    /* when the audit log cannot be written, no PAN is released */
    free(h_sql(db, "REVOKE INSERT ON audit.events FROM portcullis_vault"));
    ck_assert_int_ne(vault_detokenize(vc, "mer_a", m.token, "lookup", &card), VAULT_OK);
    ck_assert_ptr_null(card);
    free(h_sql(db, "GRANT INSERT ON audit.events TO portcullis_vault"));
    ck_assert_int_eq(vault_detokenize(vc, "mer_a", m.token, "lookup", &card), VAULT_OK);
    vault_card_free(card);
}
END_TEST

START_TEST(tampered_record_in_the_database_does_not_open)
{
    vault_card_meta_t m, m2;
    vault_card_t *card = NULL;
    ck_assert_int_eq(vault_tokenize(vc, "mer_a", "4242424242424242", 12, 2030, NULL, NULL, &m),
                     VAULT_OK);
    ck_assert_int_eq(vault_tokenize(vc, "mer_a", "5555555555554444", 12, 2030, NULL, NULL, &m2),
                     VAULT_OK);
    /* one flipped ciphertext byte; then a record moved to another token */
    free(h_sql(db,
               "UPDATE vault.cards SET sealed = set_byte(sealed, 7, get_byte(sealed, 7) # 1) "
               "WHERE token = '%s'",
               m.token));
    ck_assert_int_eq(vault_detokenize(vc, "mer_a", m.token, "lookup", &card), VAULT_ERROR);
    free(h_sql(db,
               "UPDATE vault.cards c SET nonce = o.nonce, sealed = o.sealed FROM vault.cards o "
               "WHERE c.token = '%s' AND o.token = '%s'",
               m.token, m2.token));
    ck_assert_int_eq(vault_detokenize(vc, "mer_a", m.token, "lookup", &card), VAULT_ERROR);
    ck_assert_ptr_null(card);
    ck_assert_int_eq(vault_detokenize(vc, "mer_a", m2.token, "lookup", &card), VAULT_OK);
    ck_assert_str_eq(card->pan, "5555555555554444");
    vault_card_free(card);
}
END_TEST

/* A raw connection to vaultd's socket. */
static int raw_connect(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

/* Reads one reply frame; returns its code, or -1 on EOF. */
static int raw_reply(int fd)
{
    uint8_t hdr[4], body[512];
    if (recv(fd, hdr, 4, MSG_WAITALL) != 4)
        return -1;
    uint32_t n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
    ck_assert_uint_le(n, sizeof body);
    ck_assert_int_eq(recv(fd, body, n, MSG_WAITALL), (int)n);
    ck_assert_int_eq(body[0], 1);
    return body[1];
}

static void raw_send(int fd, const void *p, size_t n)
{
    ck_assert_int_eq(send(fd, p, n, MSG_NOSIGNAL), (int)n);
}

START_TEST(malformed_and_oversized_frames_are_answered_and_vaultd_keeps_serving)
{
    static const uint8_t ping[] = {0, 0, 0, 2, 1, 1};
    int fd = raw_connect(vlt->socket);
    /* a body that does not parse: answered (bad frame), connection stays */
    static const uint8_t bad[] = {0, 0, 0, 5, 1, 2, 0xee, 0, 9};
    raw_send(fd, bad, sizeof bad);
    ck_assert_int_eq(raw_reply(fd), 16);
    raw_send(fd, ping, sizeof ping);
    ck_assert_int_eq(raw_reply(fd), VAULT_OK);
    /* an unknown operation, a wrong protocol version */
    static const uint8_t unknown_op[] = {0, 0, 0, 2, 1, 99};
    raw_send(fd, unknown_op, sizeof unknown_op);
    ck_assert_int_eq(raw_reply(fd), 16);
    static const uint8_t version[] = {0, 0, 0, 2, 7, 1};
    raw_send(fd, version, sizeof version);
    ck_assert_int_eq(raw_reply(fd), 16);
    /* a tokenize with a missing merchant is refused, not crashed on */
    static const uint8_t nomerchant[] = {0, 0, 0, 5, 1, 2, 3, 0, 0};
    raw_send(fd, nomerchant, sizeof nomerchant);
    ck_assert_int_eq(raw_reply(fd), 16);
    /* an oversized length prefix: answered, then the connection is closed */
    static const uint8_t huge[] = {0x7f, 0xff, 0xff, 0xff, 1, 1};
    raw_send(fd, huge, sizeof huge);
    ck_assert_int_eq(raw_reply(fd), 17);
    ck_assert_int_eq(raw_reply(fd), -1);
    close(fd);
    /* a peer that sends half a frame and vanishes */
    fd = raw_connect(vlt->socket);
    static const uint8_t half[] = {0, 0, 0, 40, 1, 2, 1};
    raw_send(fd, half, sizeof half);
    close(fd);
    /* a zero length prefix */
    fd = raw_connect(vlt->socket);
    static const uint8_t zero[] = {0, 0, 0, 0};
    raw_send(fd, zero, sizeof zero);
    ck_assert_int_eq(raw_reply(fd), 17);
    close(fd);
    /* still serving, through the real client too */
    ck_assert_int_eq(vault_ping(vc), VAULT_OK);
    vault_card_meta_t m;
    ck_assert_int_eq(vault_tokenize(vc, "mer_a", "4242424242424242", 12, 2030, NULL, NULL, &m),
                     VAULT_OK);
    ck_assert(h_proc_alive(vlt->proc));
}
END_TEST

typedef struct {
    vault_client_t *vc;
    char tokens[25][64];
    int ok;
} burst_t;

/* A merchant id with every character an array literal must escape. */
static const char *odd_merchant = "mer_\"q\\b,{x} y";

static void *burst(void *arg)
{
    burst_t *b = arg;
    for (int i = 0; i < 25; i++) {
        vault_card_meta_t m;
        if (vault_tokenize(b->vc, odd_merchant, "4242424242424242", 12, 2030, NULL, NULL, &m) ==
            VAULT_OK) {
            snprintf(b->tokens[b->ok++], 64, "%s", m.token);
        }
    }
    return NULL;
}

static long status_int(const char *field)
{
    char *out = NULL;
    ck_assert_int_eq(h_vaultctl(vlt, &out, (const char *const[]){"status", NULL}), 0);
    json_t *st = json_loads(out, 0, NULL);
    long v = h_json_int(st, field);
    json_decref(st);
    free(out);
    return v;
}

/* 16 threads sharing one 16-connection client, each running fn on its own
 * burst_t; returns once all have finished. */
static void run_bursts(burst_t b[16], void *(*fn)(void *))
{
    pthread_t t[16];
    for (int i = 0; i < 16; i++)
        pthread_create(&t[i], NULL, fn, &b[i]);
    for (int i = 0; i < 16; i++)
        pthread_join(t[i], NULL);
}

static vault_client_t *client_of_16(void)
{
    vault_client_config_t c = {.socket_path = vlt->socket, .pool_size = 16, .timeout_ms = 30000};
    return vault_client_new(&c);
}

START_TEST(concurrent_tokenizations_are_committed_together_and_all_kept)
{
    vault_client_t *many = client_of_16();
    static burst_t b[16];
    for (int i = 0; i < 16; i++)
        b[i] = (burst_t){.vc = many};
    run_bursts(b, burst);
    for (int i = 0; i < 16; i++) {
        ck_assert_int_eq(b[i].ok, 25);
        for (int k = 0; k < 25; k += 8) {
            vault_card_t *card = NULL;
            ck_assert_int_eq(vault_detokenize(many, odd_merchant, b[i].tokens[k], "lookup", &card),
                             VAULT_OK);
            ck_assert_str_eq(card->pan, "4242424242424242");
            vault_card_free(card);
        }
    }
    vault_client_free(many);
    ck_assert_int_eq(h_sql_long(db, "SELECT count(*) FROM vault.cards WHERE merchant_id = "
                                    "E'mer_\"q\\\\b,{x} y'"),
                     400);
    /* more rows than batches: concurrent inserts shared a commit */
    ck_assert_int_eq(status_int("inserted_rows"), 400);
    ck_assert_int_lt(status_int("insert_batches"), 400);
}
END_TEST

static void *detok_burst(void *arg)
{
    burst_t *b = arg;
    for (int i = 0; i < 25; i++) {
        vault_card_t *card = NULL;
        if (vault_detokenize(b->vc, odd_merchant, b->tokens[0], "lookup", &card) == VAULT_OK &&
            strcmp(card->pan, "4242424242424242") == 0)
            b->ok++;
        vault_card_free(card);
    }
    return NULL;
}

/* Each detokenization's record is written before its PAN leaves, and
 * concurrent ones share a commit (batch.c): exactly one record per call,
 * none lost, none doubled, fewer commits than records. */
START_TEST(concurrent_detokenizations_are_audited_together_once_each)
{
    vault_client_t *many = client_of_16();
    static burst_t b[16];
    for (int i = 0; i < 16; i++) {
        b[i] = (burst_t){.vc = many};
        vault_card_meta_t m;
        ck_assert_int_eq(
            vault_tokenize(many, odd_merchant, "4242424242424242", 12, 2030, NULL, NULL, &m),
            VAULT_OK);
        snprintf(b[i].tokens[0], 64, "%s", m.token);
    }
    long rows0 = status_int("audit_rows"), batches0 = status_int("audit_batches");
    run_bursts(b, detok_burst);
    vault_client_free(many);
    for (int i = 0; i < 16; i++) {
        ck_assert_int_eq(b[i].ok, 25);
        ck_assert_int_eq(h_sql_long(db,
                                    "SELECT count(*) FROM audit.events WHERE action = "
                                    "'card.detokenize' AND object = '%s' AND merchant_id = "
                                    "E'mer_\"q\\\\b,{x} y' AND detail->>'outcome' = 'ok'",
                                    b[i].tokens[0]),
                         25);
    }
    long rows = status_int("audit_rows") - rows0, batches = status_int("audit_batches") - batches0;
    ck_assert_int_eq(rows, 400);
    ck_assert_msg(batches < rows, "%ld audit batches for %ld records", batches, rows);
}
END_TEST

START_TEST(client_reconnects_after_a_vaultd_restart)
{
    vault_card_meta_t m;
    ck_assert_int_eq(vault_tokenize(vc, "mer_a", "4242424242424242", 12, 2030, NULL, NULL, &m),
                     VAULT_OK);
    h_vault_restart(vlt);
    vault_card_t *card = NULL;
    ck_assert_int_eq(vault_detokenize(vc, "mer_a", m.token, "lookup", &card), VAULT_OK);
    ck_assert_str_eq(card->pan, "4242424242424242");
    vault_card_free(card);
    /* every pooled connection comes back */
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(vault_ping(vc), VAULT_OK);
}
END_TEST

static bool log_has(const char *tag, const char *ext, const char *what)
{
    char path[1300];
    snprintf(path, sizeof path, "%s/%s.%s", h_workdir(), tag, ext);
    char *text = file_read_all(path, 1 << 20, NULL);
    bool found = text && strstr(text, what);
    free(text);
    return found;
}

START_TEST(one_vaultd_per_vault_and_its_kek_file_must_be_private_and_right)
{
    /* a second vaultd on a vault that is being served: refused */
    h_vault_t *v2 = NULL;
    ck_assert_int_ne(h_vault_try_start(db, "second", NULL, &v2), 0);
    ck_assert(log_has("second", "log", "another vaultd already serves this vault database"));
    ck_assert_int_eq(vault_ping(vc), VAULT_OK);
    ck_assert_int_eq(h_vault_stop(vlt, SIGTERM), 0);
    vlt = NULL;

    char path[1200], extra[1400];
    snprintf(path, sizeof path, "%s/grp.kek", h_workdir());
    h_secret_file(path);
    chmod(path, 0640);
    snprintf(extra, sizeof extra, "{\"kek_file\":\"%s\"}", path);
    ck_assert_int_ne(h_vault_try_start(db, "grp", extra, &v2), 0);
    ck_assert_ptr_null(v2);
    ck_assert(log_has("grp", "out", "readable by group or others"));
    /* private but not this vault's KEK */
    chmod(path, 0600);
    ck_assert_int_ne(h_vault_try_start(db, "grp", extra, &v2), 0);
    ck_assert(log_has("grp", "log", "does not unwrap"));
    /* not 64 hex characters */
    ck_assert_int_eq(file_write_atomic(path, "short", 5, 0600), 0);
    ck_assert_int_ne(h_vault_try_start(db, "grp", extra, &v2), 0);
    ck_assert(log_has("grp", "log", "64 hex characters"));
    /* the vault's own KEK: serves again, the old records open */
    vlt = h_vault_start(db, "vaultd", NULL);
    ck_assert_int_eq(vault_ping(vc), VAULT_OK);
}
END_TEST

static char *proc_file(int pid, const char *name)
{
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/%s", pid, name);
    return file_read_all(p, 1 << 16, NULL);
}

START_TEST(vaultd_runs_unprivileged_without_network_or_core_dumps)
{
    ck_assert_int_eq(h_vault_stop(vlt, SIGTERM), 0); /* one vaultd per vault */
    vlt = NULL;
    h_vault_t *v2 = h_vault_start(db, "nobody", "{\"run\":{\"user\":\"nobody\"}}");
    int pid = v2->proc->pid;
    char *status = proc_file(pid, "status");
    ck_assert_ptr_nonnull(strstr(status, "\nUid:\t65534\t65534\t65534\t65534"));
    ck_assert_ptr_nonnull(strstr(status, "\nNoNewPrivs:\t1"));
    ck_assert_ptr_nonnull(strstr(status, "\nSeccomp:\t2"));
    free(status);
    char *limits = proc_file(pid, "limits");
    char *core = strstr(limits, "Max core file size");
    ck_assert_ptr_nonnull(core);
    char soft[32], hard[32];
    ck_assert_int_eq(sscanf(core + strlen("Max core file size"), "%31s %31s", soft, hard), 2);
    ck_assert_str_eq(soft, "0");
    ck_assert_str_eq(hard, "0");
    free(limits);
    /* PR_SET_DUMPABLE 0: its /proc files belong to root, not to its own uid */
    char p[64];
    struct stat st;
    snprintf(p, sizeof p, "/proc/%d/environ", pid);
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_uint_eq(st.st_uid, 0);
    /* a network namespace of its own (it was started as root) */
    char mine[128] = "", its[128] = "";
    snprintf(p, sizeof p, "/proc/%d/ns/net", pid);
    ck_assert_int_gt(readlink("/proc/self/ns/net", mine, sizeof mine - 1), 0);
    ck_assert_int_gt(readlink(p, its, sizeof its - 1), 0);
    ck_assert_str_ne(mine, its);
    /* and it serves, over the unix socket, as nobody */
    vault_client_t *c2 = client_for(v2);
    vault_card_meta_t m;
    ck_assert_int_eq(vault_tokenize(c2, "mer_a", "4242424242424242", 12, 2030, "123", NULL, &m),
                     VAULT_OK);
    vault_client_free(c2);
    ck_assert_int_eq(h_vault_stop(v2, SIGTERM), 0);
}
END_TEST

int main(void)
{
    h_init("it_vault_ops");
    Suite *s = suite_create("vault_ops");
    TCase *tc = h_tcase("ops", 300);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, tokenize_detokenize_and_card_info_round_trip);
    tcase_add_test(tc, tokens_are_random_and_fingerprints_per_merchant);
    tcase_add_test(tc, another_merchants_token_is_not_found);
    tcase_add_test(tc, card_errors_store_nothing);
    tcase_add_test(tc, secrets_seal_and_unseal_for_their_merchant_and_context_only);
    tcase_add_test(tc, every_detokenize_is_audited_before_the_pan_leaves);
    tcase_add_test(tc, tampered_record_in_the_database_does_not_open);
    tcase_add_test(tc, malformed_and_oversized_frames_are_answered_and_vaultd_keeps_serving);
    tcase_add_test(tc, concurrent_tokenizations_are_committed_together_and_all_kept);
    tcase_add_test(tc, concurrent_detokenizations_are_audited_together_once_each);
    tcase_add_test(tc, client_reconnects_after_a_vaultd_restart);
    tcase_add_test(tc, one_vaultd_per_vault_and_its_kek_file_must_be_private_and_right);
    tcase_add_test(tc, vaultd_runs_unprivileged_without_network_or_core_dumps);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
