/* Integration: the CVC lives only in vaultd's guarded memory. It is gone
 * after its first use for an authorization, after its TTL, and after a
 * vaultd restart (the token itself still detokenizes), and it is never in a
 * pg_dump of the whole database nor in any log. */
#include "tests/harness/harness.h"
#include "vault/vault.h"
#include <glob.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char *db;
static h_vault_t *vlt;
static vault_client_t *vc;

static void start(const char *extra)
{
    db = h_db_create();
    vlt = h_vault_start(db, "vaultd", extra);
    vault_client_config_t c = {.socket_path = vlt->socket, .pool_size = 2, .timeout_ms = 10000};
    vc = vault_client_new(&c);
    ck_assert_ptr_nonnull(vc);
}

static void teardown(void)
{
    vault_client_free(vc);
    h_vault_stop(vlt, SIGTERM);
    h_db_drop(db);
    free(db);
}

static bool detok_has_cvc(const char *token, const char *purpose, const char *cvc)
{
    vault_card_t *card = NULL;
    ck_assert_int_eq(vault_detokenize(vc, "mer_a", token, purpose, &card), VAULT_OK);
    bool has = card->has_cvc;
    if (has)
        ck_assert_str_eq(card->cvc, cvc);
    else
        ck_assert_str_eq(card->cvc, ""); /* nothing left in the struct either */
    vault_card_free(card);
    return has;
}

START_TEST(cvc_goes_only_to_its_first_authorization)
{
    start(NULL);
    vault_card_meta_t m, info;
    ck_assert_int_eq(vault_tokenize(vc, "mer_a", "4000056655665556", 12, 2030, "846", NULL, &m),
                     VAULT_OK);
    ck_assert(m.has_cvc);
    /* other purposes never get it, and leave it for the authorization */
    ck_assert(!detok_has_cvc(m.token, "lookup", NULL));
    ck_assert(!detok_has_cvc(m.token, "capture", NULL));
    /* the authorization takes it, once */
    ck_assert(detok_has_cvc(m.token, "authorize", "846"));
    ck_assert(!detok_has_cvc(m.token, "authorize", NULL));
    ck_assert(!detok_has_cvc(m.token, "lookup", NULL));
    ck_assert_int_eq(vault_card_info(vc, "mer_a", m.token, &info), VAULT_OK);
    ck_assert(!info.has_cvc);
    /* another card's CVC is untouched */
    vault_card_meta_t m2;
    ck_assert_int_eq(vault_tokenize(vc, "mer_a", "371449635398431", 12, 2030, "7391", NULL, &m2),
                     VAULT_OK);
    ck_assert(detok_has_cvc(m2.token, "authorize", "7391"));
}
END_TEST

START_TEST(cvc_is_gone_after_its_ttl)
{
    start("{\"cvc\":{\"ttl_seconds\":2}}");
    vault_card_meta_t m, info;
    ck_assert_int_eq(vault_tokenize(vc, "mer_a", "4000056655665556", 12, 2030, "846", NULL, &m),
                     VAULT_OK);
    ck_assert_int_eq(vault_card_info(vc, "mer_a", m.token, &info), VAULT_OK);
    ck_assert(info.has_cvc);
    sleep(3);
    /* the sweeper wiped it without anyone asking */
    char *out = NULL;
    ck_assert_int_eq(h_vaultctl(vlt, &out, (const char *const[]){"status", NULL}), 0);
    json_t *st = json_loads(out, 0, NULL);
    ck_assert_int_eq(h_json_int(st, "cvc_held"), 0);
    json_decref(st);
    free(out);
    ck_assert(!detok_has_cvc(m.token, "authorize", NULL));
}
END_TEST

START_TEST(cvc_is_gone_after_a_restart_but_the_token_still_detokenizes)
{
    start(NULL);
    vault_card_meta_t m;
    ck_assert_int_eq(
        vault_tokenize(vc, "mer_a", "5555555555554444", 11, 2031, "592", "Grace H", &m), VAULT_OK);
    h_vault_restart(vlt);
    vault_card_t *card = NULL;
    ck_assert_int_eq(vault_detokenize(vc, "mer_a", m.token, "authorize", &card), VAULT_OK);
    ck_assert_str_eq(card->pan, "5555555555554444");
    ck_assert_str_eq(card->name, "Grace H");
    ck_assert_int_eq(card->exp_month, 11);
    ck_assert_int_eq(card->exp_year, 2031);
    ck_assert(!card->has_cvc);
    vault_card_free(card);
}
END_TEST

/* Occurrences of `needle` as a value of its own: between field separators
 * of a COPY line or JSON, not inside a longer number, hex string or a
 * timestamp's fraction. */
static int standalone(const char *hay, const char *needle)
{
    static const char *before = "\t\n \"':,({[", *after = "\t\n \"',)}]";
    int n = 0;
    size_t nl = strlen(needle);
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        if ((p == hay || strchr(before, p[-1])) && p[nl] && strchr(after, p[nl]))
            n++;
    return n;
}

static char *pg_dump_all(void)
{
    glob_t g;
    ck_assert_int_eq(glob("/usr/lib/postgresql/*/bin/pg_dump", 0, NULL, &g), 0);
    char *bin = g.gl_pathv[g.gl_pathc - 1];
    char host[1200];
    snprintf(host, sizeof host, "%s/sock", h_pgbase());
    char *pw = file_read_all(h_password_file("admin"), 4096, NULL);
    pw[strcspn(pw, "\n")] = '\0';
    setenv("PGPASSWORD", pw, 1);
    free(pw);
    char *argv[] = {bin, "-h", host, "-U", "portcullis_admin", "-d", db, "--no-password", NULL};
    char *out = NULL;
    ck_assert_int_eq(h_run(&out, argv), 0);
    globfree(&g);
    unsetenv("PGPASSWORD");
    return out;
}

START_TEST(cvc_is_never_in_a_dump_of_the_whole_database_nor_in_a_log)
{
    start(NULL);
    h_merchant_t mer = h_merchant_create(db, "CVC Shop");
    char *vj = h_vault_gateway_json(vlt);
    h_gateway_t *g = h_gateway_start(db, "gatewayd", vj);
    free(vj);
    static const struct {
        const char *number, *cvc;
    } cards[] = {
        {"4000056655665556", "846"}, {"371449635398431", "7391"}, {"5555555555554444", "592"}};
    for (size_t i = 0; i < PC_ARRAY_LEN(cards); i++) {
        char body[256];
        snprintf(body, sizeof body,
                 "{\"card\":{\"number\":\"%s\",\"exp_month\":12,\"exp_year\":2030,"
                 "\"cvc\":\"%s\"}}",
                 cards[i].number, cards[i].cvc);
        h_resp_t r = h_post(g, "/v1/tokens", mer.pk, body);
        ck_assert_int_eq(r.status, 201);
        /* still held: the CVC exists somewhere, only not in PostgreSQL */
        vault_card_meta_t info;
        ck_assert_int_eq(vault_card_info(vc, mer.id, h_json_str(r.json, "id"), &info), VAULT_OK);
        ck_assert(info.has_cvc);
        vault_card_t *card = NULL;
        ck_assert_int_eq(vault_detokenize(vc, mer.id, h_json_str(r.json, "id"), "lookup", &card),
                         VAULT_OK);
        vault_card_free(card);
        h_resp_free(&r);
    }
    h_gateway_stop(g, SIGTERM);
    char *dump = pg_dump_all();
    ck_assert_ptr_nonnull(strstr(dump, "COPY vault.cards")); /* the dump has the vault */
    ck_assert_ptr_nonnull(strstr(dump, "card.detokenize"));
    for (size_t i = 0; i < PC_ARRAY_LEN(cards); i++) {
        ck_assert_msg(standalone(dump, cards[i].cvc) == 0, "CVC %s in pg_dump", cards[i].cvc);
        ck_assert_msg(strstr(dump, cards[i].number) == NULL, "PAN in pg_dump");
    }
    ck_assert_ptr_null(strstr(dump, "cvc"));
    free(dump);
    /* nor in any log of this test */
    glob_t gl;
    char pat[1200];
    snprintf(pat, sizeof pat, "%s/*", h_workdir());
    ck_assert_int_eq(glob(pat, 0, NULL, &gl), 0);
    for (size_t f = 0; f < gl.gl_pathc; f++) {
        char *text = file_read_all(gl.gl_pathv[f], 64 << 20, NULL);
        for (size_t i = 0; text && i < PC_ARRAY_LEN(cards); i++) {
            char quoted[16];
            snprintf(quoted, sizeof quoted, "\"%s\"", cards[i].cvc);
            ck_assert_msg(strstr(text, quoted) == NULL, "CVC in %s", gl.gl_pathv[f]);
            ck_assert_msg(strstr(text, cards[i].number) == NULL, "PAN in %s", gl.gl_pathv[f]);
        }
        free(text);
    }
    globfree(&gl);
}
END_TEST

int main(void)
{
    h_init("it_vault_cvc");
    Suite *s = suite_create("vault_cvc");
    TCase *tc = h_tcase("cvc", 300);
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, cvc_goes_only_to_its_first_authorization);
    tcase_add_test(tc, cvc_is_gone_after_its_ttl);
    tcase_add_test(tc, cvc_is_gone_after_a_restart_but_the_token_still_detokenizes);
    tcase_add_test(tc, cvc_is_never_in_a_dump_of_the_whole_database_nor_in_a_log);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
