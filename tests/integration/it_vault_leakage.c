/* Integration: no card number in the clear anywhere after the suite. Runs
 * every test card (valid and invalid) through gatewayd and vaultd with
 * debug logging, detokenizes, restarts the vault, then scans every file the
 * test suite wrote (all tests' logs, configs and results under
 * build/tests/<build>, ctest's log), PostgreSQL's server log and a pg_dump
 * of the database for the test PANs and for any Luhn-valid card number of
 * a known brand. ctest runs it after the other vault tests (DEPENDS). */
#include "tests/harness/harness.h"
#include "vault/card.h"
#include "vault/vault.h"
#include <ctype.h>
#include <ftw.h>
#include <glob.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Every card number the vault and token tests use, valid or not. */
static const char *pans[] = {
    "4242424242424242",
    "4000056655665556",
    "4012888888881881",
    "4222222222222",
    "4111111111111111",
    "5555555555554444",
    "5200828282828210",
    "5105105105105100",
    "2223003122003222",
    "2221000000000009",
    "2720992720992729",
    "378282246310005",
    "371449635398431",
    "340000000000009",
    "6011111111111117",
    "6011000990139424",
    "6445644564456445",
    "6500000000000002",
    "3566002020360505",
    "3530111333300000",
    "3056930009020004",
    "36227206271667",
    "38520000023237",
    "6200000000000005",
    "6205500000000000004",
    "6759649826438453",
    "5018000000000009",
    "6771798021000008",
    /* refused ones: no Luhn, no brand, wrong length: no log mask would catch them */
    "4242424242424241",
    "1234567812345670",
    "5555555555554445",
    "378282246310006",
    "424242424242424",
    "6200000000000001",
};

typedef struct {
    int hits;
    char first[1400];
} scan_t;

static scan_t scan;

static void report(const char *where, const char *pan, size_t n)
{
    /* the message itself must not become a leak: BIN and last 4 only */
    if (scan.hits++ == 0)
        snprintf(scan.first, sizeof scan.first, "%s: %.6s...%.4s", where, pan, pan + n - 4);
}

static void scan_text(const char *where, const char *buf, size_t len)
{
    for (size_t i = 0; i < PC_ARRAY_LEN(pans); i++)
        if (memmem(buf, len, pans[i], strlen(pans[i])))
            report(where, pans[i], strlen(pans[i]));
    /* any standalone 13-19 digit run that is a valid card number */
    for (size_t i = 0; i < len;) {
        if (!isdigit((unsigned char)buf[i])) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < len && isdigit((unsigned char)buf[j]))
            j++;
        size_t n = j - i;
        bool alone = (i == 0 || !isalnum((unsigned char)buf[i - 1])) &&
                     (j == len || !isalnum((unsigned char)buf[j]));
        if (n >= 13 && n <= 19 && alone) {
            char d[20];
            memcpy(d, buf + i, n);
            d[n] = '\0';
            const card_brand_t *b;
            if (card_number_ok(d, &b))
                report(where, d, n);
        }
        i = j;
    }
}

static int scan_file(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)flag;
    (void)ftw;
    if (!S_ISREG(sb->st_mode))
        return 0;
    size_t len = 0;
    char *text = file_read_all(path, 512u << 20, &len);
    if (text)
        scan_text(path, text, len);
    free(text);
    return 0;
}

static void scan_tree(const char *dir)
{
    if (access(dir, F_OK) == 0)
        ck_assert_int_eq(nftw(dir, scan_file, 32, FTW_PHYS), 0);
}

static char *pg_dump_db(const char *db)
{
    glob_t g;
    ck_assert_int_eq(glob("/usr/lib/postgresql/*/bin/pg_dump", 0, NULL, &g), 0);
    char host[1200];
    snprintf(host, sizeof host, "%s/sock", h_pgbase());
    char *pw = file_read_all(h_password_file("admin"), 4096, NULL);
    pw[strcspn(pw, "\n")] = '\0';
    setenv("PGPASSWORD", pw, 1);
    free(pw);
    char *argv[] = {g.gl_pathv[g.gl_pathc - 1],
                    "-h",
                    host,
                    "-U",
                    "portcullis_admin",
                    "-d",
                    (char *)db,
                    "--no-password",
                    NULL};
    char *out = NULL;
    ck_assert_int_eq(h_run(&out, argv), 0);
    unsetenv("PGPASSWORD");
    globfree(&g);
    return out;
}

static void run_cards_through_the_stack(const char *db, h_vault_t *v)
{
    h_merchant_t m = h_merchant_create(db, "Leak Shop");
    char *vj = h_vault_gateway_json(v);
    char extra[1200];
    snprintf(extra, sizeof extra,
             "%.*s, \"log\":{\"level\":\"debug\"}, \"rate_limit\":{\"tokens\":"
             "{\"per_ip_burst\":1000}}}",
             (int)strlen(vj) - 1, vj);
    free(vj);
    h_gateway_t *g = h_gateway_start(db, "gatewayd", extra);
    vault_client_config_t c = {.socket_path = v->socket, .pool_size = 2, .timeout_ms = 10000};
    vault_client_t *vc = vault_client_new(&c);
    int tokenized = 0, refused = 0;
    for (size_t i = 0; i < PC_ARRAY_LEN(pans); i++) {
        bool amex = pans[i][0] == '3' && (pans[i][1] == '4' || pans[i][1] == '7');
        char body[256];
        snprintf(body, sizeof body,
                 "{\"card\":{\"number\":\"%s\",\"exp_month\":12,\"exp_year\":2030,\"cvc\":\"%s\","
                 "\"name\":\"Test Card %zu\"}}",
                 pans[i], amex ? "7391" : "846", i);
        h_resp_t r = h_post(g, "/v1/tokens", m.pk, body);
        if (r.status == 201) {
            tokenized++;
            vault_card_t *card = NULL;
            ck_assert_int_eq(
                vault_detokenize(vc, m.id, h_json_str(r.json, "id"), "authorize", &card), VAULT_OK);
            ck_assert_str_eq(card->pan, pans[i]);
            vault_card_free(card);
        } else {
            ck_assert_int_eq(r.status, 400);
            refused++;
        }
        h_resp_free(&r);
        /* a broken body with the number in it: the parse error must not quote it */
        snprintf(body, sizeof body, "{\"card\":{\"number\":\"%s\",", pans[i]);
        r = h_post(g, "/v1/tokens", m.pk, body);
        ck_assert_int_eq(r.status, 400);
        h_resp_free(&r);
    }
    ck_assert_int_ge(tokenized, 25);
    ck_assert_int_ge(refused, 5);
    vault_client_free(vc);
    h_vault_restart(v);
    h_gateway_stop(g, SIGTERM);
}

START_TEST(no_test_pan_in_any_log_or_database_dump)
{
    /* the scanner finds what it looks for (positive control) */
    char probe[1200];
    snprintf(probe, sizeof probe, "%s/probe.txt", h_workdir());
    const char *leak = "{\"x\":\"6011000990139424\"}";
    ck_assert_int_eq(file_write_atomic(probe, leak, strlen(leak), 0600), 0);
    scan_tree(h_workdir());
    ck_assert_int_ge(scan.hits, 1);
    unlink(probe);
    scan.hits = 0;
    /* the generic rule alone (a number not on the list): standalone runs
     * count, digits inside ids, hex strings and masked numbers do not */
    const char *alone = "amount 4000000000000002\n";
    scan_text("probe", alone, strlen(alone));
    ck_assert_int_eq(scan.hits, 1);
    scan = (scan_t){0};
    const char *embedded = "tok_a4000000000000002b \\x0a4000000000000002ff 400000******0002";
    scan_text("probe", embedded, strlen(embedded));
    ck_assert_int_eq(scan.hits, 0);

    char *db = h_db_create();
    h_vault_t *v = h_vault_start(db, "vaultd", "{\"log\":{\"level\":\"debug\"}}");
    run_cards_through_the_stack(db, v);
    ck_assert_int_eq(h_vault_stop(v, SIGTERM), 0);

    char *dump = pg_dump_db(db);
    ck_assert_ptr_nonnull(strstr(dump, "COPY vault.cards"));
    scan_text("pg_dump", dump, strlen(dump));
    free(dump);
    /* every test's files: logs, configs, results */
    scan_tree(BUILD_DIR);
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/log", h_pgbase());
    scan_tree(dir);
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s", BUILD_DIR);
    snprintf(dir, sizeof dir, "%s/build/%s/Testing/Temporary", SOURCE_DIR, basename(tmp));
    scan_tree(dir);
    ck_assert_msg(scan.hits == 0, "%d card number(s) in the clear; first: %s", scan.hits,
                  scan.first);
    h_db_drop(db);
    free(db);
}
END_TEST

int main(void)
{
    h_init("it_vault_leakage");
    Suite *s = suite_create("vault_leakage");
    TCase *tc = h_tcase("leakage", 600);
    tcase_add_test(tc, no_test_pan_in_any_log_or_database_dump);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
