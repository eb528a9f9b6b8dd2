/* Integration: key rotation under load. Workers tokenize and detokenize
 * continuously (new cards and cards sealed before any rotation) while
 * vaultctl rotates the data key, rewraps old records and retires old
 * versions, three times over. Not one operation fails, and afterwards no
 * record is below the minimum decryption version and the old keys are gone. */
#include "tests/harness/harness.h"
#include "vault/vault.h"
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define WORKERS 4
#define OLD     600

static char *db;
static h_vault_t *vlt;
static atomic_bool stop;

typedef struct {
    char token[64];
    char pan[20];
} old_t;
static old_t old[OLD];

typedef struct {
    vault_client_t *vc;
    long ops, failures;
    char first_failure[200];
} worker_t;

/* A random Luhn-valid 16-digit visa number. */
static void random_pan(char out[17])
{
    out[0] = '4';
    for (int i = 1; i < 15; i++)
        out[i] = (char)('0' + randombytes_uniform(10));
    out[16] = '\0';
    for (int d = 0; d < 10; d++) {
        out[15] = (char)('0' + d);
        int sum = 0;
        for (int i = 15, dbl = 0; i >= 0; i--, dbl = !dbl) {
            int v = out[i] - '0';
            if (dbl && (v *= 2) > 9)
                v -= 9;
            sum += v;
        }
        if (sum % 10 == 0)
            return;
    }
}

static void note_failure(worker_t *w, const char *what, vault_status_t s)
{
    if (w->failures++ == 0)
        snprintf(w->first_failure, sizeof w->first_failure, "%s: %s", what, vault_status_str(s));
}

static bool detok_is(worker_t *w, const char *token, const char *pan)
{
    vault_card_t *card = NULL;
    vault_status_t s = vault_detokenize(w->vc, "mer_rot", token, "lookup", &card);
    if (s != VAULT_OK) {
        note_failure(w, "detokenize", s);
        return false;
    }
    bool same = !strcmp(card->pan, pan);
    vault_card_free(card);
    if (!same)
        note_failure(w, "detokenize returned another PAN", VAULT_ERROR);
    return same;
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    while (!atomic_load(&stop)) {
        char pan[17];
        random_pan(pan);
        vault_card_meta_t m;
        vault_status_t s = vault_tokenize(w->vc, "mer_rot", pan, 12, 2030, "123", NULL, &m);
        if (s != VAULT_OK) {
            note_failure(w, "tokenize", s);
            continue;
        }
        detok_is(w, m.token, pan);
        const old_t *o = &old[randombytes_uniform(OLD)];
        detok_is(w, o->token, o->pan);
        w->ops++;
    }
    return NULL;
}

static void vaultctl_ok(const char *const args[])
{
    char *out = NULL;
    int rc = h_vaultctl(vlt, &out, args);
    ck_assert_msg(rc == 0, "vaultctl %s failed (%d): %s", args[0], rc, out);
    free(out);
}

/* Rewrap, then retire; a record committed under the old key just after the
 * rewrap's last batch makes retire refuse, so go round again. */
static void rewrap_and_retire(void)
{
    for (int attempt = 0; attempt < 10; attempt++) {
        vaultctl_ok((const char *const[]){"rewrap", "--batch", "100", NULL});
        char *out = NULL;
        int rc = h_vaultctl(vlt, &out, (const char *const[]){"retire", NULL});
        free(out);
        if (rc == 0)
            return;
    }
    ck_abort_msg("retire refused ten times");
}

START_TEST(rotate_rewrap_and_retire_under_load_lose_nothing)
{
    vault_client_t *vc[WORKERS + 1];
    for (int i = 0; i <= WORKERS; i++) {
        vault_client_config_t c = {.socket_path = vlt->socket, .pool_size = 2, .timeout_ms = 30000};
        vc[i] = vault_client_new(&c);
        ck_assert_ptr_nonnull(vc[i]);
    }
    for (int i = 0; i < OLD; i++) {
        vault_card_meta_t m;
        random_pan(old[i].pan);
        ck_assert_int_eq(
            vault_tokenize(vc[WORKERS], "mer_rot", old[i].pan, 1, 2031, NULL, NULL, &m), VAULT_OK);
        snprintf(old[i].token, sizeof old[i].token, "%s", m.token);
    }
    worker_t w[WORKERS] = {0};
    pthread_t t[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        w[i].vc = vc[i];
        pthread_create(&t[i], NULL, worker_main, &w[i]);
    }
    usleep(300 * 1000);
    for (int round = 0; round < 3; round++) {
        vaultctl_ok((const char *const[]){"rotate", NULL});
        usleep(200 * 1000);
        rewrap_and_retire();
        usleep(200 * 1000);
    }
    atomic_store(&stop, true);
    long ops = 0, failures = 0;
    for (int i = 0; i < WORKERS; i++) {
        pthread_join(t[i], NULL);
        ops += w[i].ops;
        failures += w[i].failures;
        ck_assert_msg(w[i].failures == 0, "worker %d: %ld failures, first: %s", i, w[i].failures,
                      w[i].first_failure);
    }
    ck_assert_int_eq(failures, 0);
    ck_assert_int_gt(ops, 50); /* the load really ran through the rotations */

    ck_assert_int_eq(h_sql_long(db, "SELECT current_version FROM vault.keyring"), 4);
    ck_assert_int_eq(h_sql_long(db, "SELECT min_decrypt_version FROM vault.keyring"), 4);
    ck_assert_int_eq(h_sql_long(db, "SELECT count(*) FROM vault.cards WHERE key_version < "
                                    "(SELECT min_decrypt_version FROM vault.keyring)"),
                     0);
    ck_assert_int_eq(h_sql_long(db, "SELECT count(*) FROM vault.data_keys WHERE version < 4 "
                                    "AND wrapped IS NOT NULL"),
                     0);
    ck_assert_int_eq(h_sql_long(db, "SELECT count(*) FROM vault.data_keys WHERE version < 4 "
                                    "AND retired_at IS NOT NULL"),
                     3);
    ck_assert_int_eq(h_sql_long(db, "SELECT count(*) FROM audit.events WHERE action = "
                                    "'key.rotate'"),
                     3);
    ck_assert_int_eq(h_sql_long(db, "SELECT count(*) FROM audit.events WHERE action = "
                                    "'key.retire'"),
                     3);
    ck_assert_int_ge(h_sql_long(db, "SELECT count(*) FROM audit.events WHERE action = "
                                    "'key.rewrap'"),
                     3);
    /* every card sealed before the first rotation still opens, under key 4 */
    worker_t check = {.vc = vc[WORKERS]};
    for (int i = 0; i < OLD; i++)
        detok_is(&check, old[i].token, old[i].pan);
    ck_assert_msg(check.failures == 0, "%ld old cards lost, first: %s", check.failures,
                  check.first_failure);
    /* and after a restart, with versions 1-3 destroyed, too */
    for (int i = 0; i <= WORKERS; i++)
        vault_client_free(vc[i]);
    h_vault_restart(vlt);
    vault_client_config_t c = {.socket_path = vlt->socket, .pool_size = 1, .timeout_ms = 30000};
    check.vc = vault_client_new(&c);
    for (int i = 0; i < OLD; i += 10)
        detok_is(&check, old[i].token, old[i].pan);
    ck_assert_int_eq(check.failures, 0);
    vault_client_free(check.vc);
    char *out = NULL;
    ck_assert_int_eq(h_vaultctl(vlt, &out, (const char *const[]){"status", NULL}), 0);
    json_t *st = json_loads(out, 0, NULL);
    ck_assert_int_eq(h_json_int(st, "current_version"), 4);
    ck_assert_uint_eq(json_object_size(json_object_get(st, "records_by_version")), 1);
    json_decref(st);
    free(out);
}
END_TEST

START_TEST(retire_is_refused_while_old_records_remain)
{
    vault_client_config_t c = {.socket_path = vlt->socket, .pool_size = 1, .timeout_ms = 30000};
    vault_client_t *vc = vault_client_new(&c);
    vault_card_meta_t m;
    ck_assert_int_eq(vault_tokenize(vc, "mer_rot", "4242424242424242", 1, 2031, NULL, NULL, &m),
                     VAULT_OK);
    int v;
    ck_assert_int_eq(vault_key_rotate(vc, &v), VAULT_OK);
    ck_assert_int_eq(v, 2);
    long remaining = 0;
    ck_assert_int_eq(vault_key_retire(vc, 0, &remaining), VAULT_DENIED);
    ck_assert_int_eq(remaining, 1);
    ck_assert_int_eq(vault_key_retire(vc, 3, &remaining), VAULT_DENIED); /* above current */
    ck_assert_int_eq(h_sql_long(db, "SELECT min_decrypt_version FROM vault.keyring"), 1);
    ck_assert_int_eq(h_sql_long(db, "SELECT count(*) FROM vault.data_keys WHERE wrapped IS "
                                    "NULL"),
                     0);
    int moved;
    ck_assert_int_eq(vault_key_rewrap(vc, 10, &moved, &remaining), VAULT_OK);
    ck_assert_int_eq(moved, 1);
    ck_assert_int_eq(remaining, 0);
    ck_assert_int_eq(vault_key_retire(vc, 0, &remaining), VAULT_OK);
    vault_card_t *card = NULL;
    ck_assert_int_eq(vault_detokenize(vc, "mer_rot", m.token, "lookup", &card), VAULT_OK);
    ck_assert_str_eq(card->pan, "4242424242424242");
    vault_card_free(card);
    /* a record put back under the destroyed version cannot be opened */
    free(h_sql(db, "UPDATE vault.cards SET key_version = 1 WHERE token = '%s'", m.token));
    ck_assert_int_eq(vault_detokenize(vc, "mer_rot", m.token, "lookup", &card), VAULT_ERROR);
    vault_client_free(vc);
}
END_TEST

/* A reload that meets a data key it cannot unwrap (a damaged or foreign
 * row) must leave the keys in use as they were: unwrapping in place would
 * zero the current key, and vaultd would then seal new cards under zeros. */
START_TEST(a_key_ring_that_does_not_load_leaves_the_keys_in_use_intact)
{
    vault_client_config_t c = {.socket_path = vlt->socket, .pool_size = 1, .timeout_ms = 30000};
    vault_client_t *vc = vault_client_new(&c);
    vault_card_meta_t a, b;
    ck_assert_int_eq(vault_tokenize(vc, "mer_rot", "4242424242424242", 1, 2031, NULL, NULL, &a),
                     VAULT_OK);
    ck_assert_int_eq(vault_tokenize(vc, "mer_rot", "5555555555554444", 1, 2031, NULL, NULL, &b),
                     VAULT_OK);
    /* the current key's row damaged, and a card claiming a newer version,
     * whose detokenize makes vaultd reload the ring */
    free(h_sql(db, "UPDATE vault.data_keys SET wrapped = overlay(wrapped placing "
                   "'\\x00'::bytea from 40 for 1) WHERE version = 1 RETURNING 1"));
    free(h_sql(db, "UPDATE vault.cards SET key_version = 999 WHERE token = '%s' RETURNING 1",
               b.token));
    vault_card_t *card = NULL;
    ck_assert_int_ne(vault_detokenize(vc, "mer_rot", b.token, "lookup", &card), VAULT_OK);
    /* the card sealed before still opens, and so does one sealed after */
    ck_assert_int_eq(vault_detokenize(vc, "mer_rot", a.token, "lookup", &card), VAULT_OK);
    ck_assert_str_eq(card->pan, "4242424242424242");
    vault_card_free(card);
    vault_card_meta_t n;
    ck_assert_int_eq(vault_tokenize(vc, "mer_rot", "4000056655665556", 1, 2031, NULL, NULL, &n),
                     VAULT_OK);
    ck_assert_int_eq(vault_detokenize(vc, "mer_rot", n.token, "lookup", &card), VAULT_OK);
    ck_assert_str_eq(card->pan, "4000056655665556");
    vault_card_free(card);
    vault_client_free(vc);
}
END_TEST

static void setup(void)
{
    db = h_db_create();
    vlt = h_vault_start(db, "vaultd", NULL);
    atomic_store(&stop, false);
}

static void teardown(void)
{
    ck_assert_int_eq(h_vault_stop(vlt, SIGTERM), 0);
    h_db_drop(db);
    free(db);
}

int main(void)
{
    h_init("it_vault_rotation");
    Suite *s = suite_create("vault_rotation");
    TCase *tc = h_tcase("rotation", 600);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, rotate_rewrap_and_retire_under_load_lose_nothing);
    tcase_add_test(tc, retire_is_refused_while_old_records_remain);
    tcase_add_test(tc, a_key_ring_that_does_not_load_leaves_the_keys_in_use_intact);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
