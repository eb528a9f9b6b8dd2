/* Unit: PostgreSQL array literals built for parameters (quoting, NULLs),
 * exactly sized even when every element is NULL or needs escaping. */
#include "tests/harness/harness.h"
#include <string.h>

START_TEST(array_literal_quotes_and_nulls)
{
    const char *v[] = {"a", NULL, "say \"hi\"", "back\\slash", ""};
    char *s = db_text_array(v, 5);
    ck_assert_str_eq(s, "{\"a\",NULL,\"say \\\"hi\\\"\",\"back\\\\slash\",\"\"}");
    free(s);
    s = db_text_array(v, 0);
    ck_assert_str_eq(s, "{}");
    free(s);
}
END_TEST

START_TEST(array_literal_of_many_nulls_fits)
{
    /* the outbox records a batch of delivered rows with NULL errors */
    const char *v[1000] = {0};
    char *s = db_text_array(v, 1000);
    ck_assert_uint_eq(strlen(s), 2 + 1000 * 4 + 999);
    free(s);
    const char *q[300];
    for (int i = 0; i < 300; i++)
        q[i] = "\"\"\"\\";
    s = db_text_array(q, 300);
    ck_assert_uint_eq(strlen(s), 2 + 300 * (2 + 8) + 299);
    free(s);
}
END_TEST

int main(void)
{
    h_init("test_db");
    Suite *s = suite_create("db");
    TCase *tc = h_tcase("array", 30);
    tcase_add_test(tc, array_literal_quotes_and_nulls);
    tcase_add_test(tc, array_literal_of_many_nulls_fits);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
