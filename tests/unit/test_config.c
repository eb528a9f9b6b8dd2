/* Unit: configuration from file, environment and flags; bad files stop
 * start-up naming the key; secrets only from private files. */
#include "gateway/gateway.h"
#include "tests/harness/harness.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *write_tmp(const char *name, const char *text, int mode)
{
    char *path = str_printf("%s/%s", h_workdir(), name);
    unlink(path);
    ck_assert_int_eq(file_write_atomic(path, text, strlen(text), mode), 0);
    chmod(path, (mode_t)mode);
    return path;
}

static int load(const char *json, const char *extra_flag, const char *extra_val, cfg_error_t *e)
{
    cfg_free(gw_cfg_items, gw_cfg_nitems);
    memset(&gw_cfg, 0, sizeof gw_cfg);
    char *path = write_tmp("cfg.json", json, 0644);
    char *argv[6] = {"gatewayd", "--config", path, (char *)extra_flag, (char *)extra_val, NULL};
    int argc = extra_flag ? (extra_val ? 5 : 4) : 3;
    int rc = cfg_load(gw_cfg_items, gw_cfg_nitems, argc, argv, "usage", e);
    free(path);
    return rc;
}

START_TEST(good_file_is_loaded_with_defaults)
{
    cfg_error_t e;
    char *pep = write_tmp("pepper", "0123456789abcdef0123456789abcdef\n", 0600);
    char *doc = str_printf("{\"listen\":{\"port\":9000},\"database\":{\"conninfo\":\"dbname=x\","
                           "\"pool_size\":4},\"auth\":{\"api_key_pepper_file\":\"%s\"}}",
                           pep);
    ck_assert_int_eq(load(doc, NULL, NULL, &e), 0);
    ck_assert_int_eq(gw_cfg.port, 9000);
    ck_assert_str_eq(gw_cfg.db_conninfo, "dbname=x");
    ck_assert_int_eq(gw_cfg.db_pool_size, 4);
    ck_assert_str_eq(gw_cfg.listen_address, "127.0.0.1"); /* default */
    ck_assert_ptr_nonnull(gw_cfg.api_key_pepper);
    ck_assert_uint_eq(gw_cfg.api_key_pepper->len, 32); /* newline trimmed */
    free(doc);
    free(pep);
}
END_TEST

START_TEST(env_then_flag_override_the_file)
{
    cfg_error_t e;
    setenv("PORTCULLIS_PORT", "9100", 1);
    ck_assert_int_eq(load("{\"listen\":{\"port\":9000}}", NULL, NULL, &e), 0);
    ck_assert_int_eq(gw_cfg.port, 9100);
    ck_assert_int_eq(load("{\"listen\":{\"port\":9000}}", "--port", "9200", &e), 0);
    ck_assert_int_eq(gw_cfg.port, 9200);
    ck_assert_int_eq(load("{}", "--port=9300", NULL, &e), 0);
    ck_assert_int_eq(gw_cfg.port, 9300);
    unsetenv("PORTCULLIS_PORT");
}
END_TEST

START_TEST(bad_files_name_the_key)
{
    cfg_error_t e;
    ck_assert_int_eq(load("{\"listen\":{\"prot\":1}}", NULL, NULL, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.msg, "listen.prot"));
    ck_assert_int_eq(load("{\"listen\":{\"port\":\"80\"}}", NULL, NULL, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.msg, "listen.port"));
    ck_assert_int_eq(load("{\"listen\":{\"port\":70000}}", NULL, NULL, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.msg, "listen.port"));
    ck_assert_int_eq(load("{\"database\":{\"password\":\"hunter2\"}}", NULL, NULL, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.msg, "database.password"));
    ck_assert_ptr_nonnull(strstr(e.msg, "_file"));
    ck_assert_ptr_null(strstr(e.msg, "hunter2"));
    ck_assert_int_eq(load("{\"listen\": {", NULL, NULL, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.msg, "invalid JSON"));
    ck_assert_int_eq(load("[1,2]", NULL, NULL, &e), -1);
    ck_assert_int_eq(load("{\"shutdown\":{\"grace_seconds\":true}}", NULL, NULL, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.msg, "shutdown.grace_seconds"));
    ck_assert_int_eq(load("{}", "--no-such-flag", NULL, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.msg, "--no-such-flag"));
}
END_TEST

START_TEST(secret_files_must_be_private)
{
    cfg_error_t e;
    char *pep = write_tmp("pepper-open", "0123456789abcdef0123456789abcdef", 0644);
    char *doc = str_printf("{\"auth\":{\"api_key_pepper_file\":\"%s\"}}", pep);
    ck_assert_int_eq(load(doc, NULL, NULL, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.msg, "auth.api_key_pepper_file"));
    ck_assert_ptr_nonnull(strstr(e.msg, "group or others"));
    free(doc);
    doc = str_printf("{\"auth\":{\"api_key_pepper_file\":\"%s/missing\"}}", h_workdir());
    ck_assert_int_eq(load(doc, NULL, NULL, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.msg, "auth.api_key_pepper_file"));
    free(doc);
    free(pep);
}
END_TEST

START_TEST(secrets_come_from_credentials_directory)
{
    cfg_error_t e;
    char *dir = str_printf("%s/creds", h_workdir());
    mkdir(dir, 0700);
    char *p = str_printf("%s/api_key_pepper", dir);
    unlink(p);
    ck_assert_int_eq(file_write_atomic(p, "from-credentials-directory-0123456", 34, 0600), 0);
    setenv("CREDENTIALS_DIRECTORY", dir, 1);
    ck_assert_int_eq(load("{}", NULL, NULL, &e), 0);
    ck_assert_ptr_nonnull(gw_cfg.api_key_pepper);
    ck_assert_str_eq(secret_str(gw_cfg.api_key_pepper), "from-credentials-directory-0123456");
    unsetenv("CREDENTIALS_DIRECTORY");
    free(p);
    free(dir);
}
END_TEST

int main(void)
{
    h_init("test_config");
    Suite *s = suite_create("config");
    TCase *tc = h_tcase("config", 30);
    tcase_add_test(tc, good_file_is_loaded_with_defaults);
    tcase_add_test(tc, env_then_flag_override_the_file);
    tcase_add_test(tc, bad_files_name_the_key);
    tcase_add_test(tc, secret_files_must_be_private);
    tcase_add_test(tc, secrets_come_from_credentials_directory);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
