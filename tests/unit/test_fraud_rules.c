/* Unit: fraud rules documents. A bad document is refused naming the rule and
 * the field (wrong types, unknown features and operators, bounds); the
 * shipped default set is valid and is exactly fraud/data/default_rules.json. */
#include "fraud/fraud.h"
#include "tests/harness/harness.h"
#include <stdio.h>
#include <string.h>

static json_t *doc_of(const char *text)
{
    json_error_t je;
    json_t *j = json_loads_strict(text, strlen(text), &je);
    ck_assert_msg(j != NULL, "test JSON invalid: %s: %s", je.text, text);
    return j;
}

/* Parses `text`, expecting a refusal naming `param` with `code`; `rule` is
 * the rule id the error must name ("" for none); `words` must occur in the
 * reason. */
static void refused(const char *text, const char *param, err_code_t code, const char *rule,
                    const char *words)
{
    json_t *j = doc_of(text);
    fraud_rules_error_t e;
    fraud_rules_t *r = fraud_rules_parse(j, 0, &e);
    json_decref(j);
    ck_assert_msg(r == NULL, "accepted: %s", text);
    ck_assert_msg(!strcmp(e.param, param), "param %s, expected %s (%s) for %s", e.param, param,
                  e.reason, text);
    ck_assert_msg(e.code == code, "code %s, expected %s for %s", err_code_str(e.code),
                  err_code_str(code), text);
    ck_assert_msg(!strcmp(e.rule_id, rule), "rule \"%s\", expected \"%s\"", e.rule_id, rule);
    ck_assert_msg(strstr(e.reason, words), "reason \"%s\" lacks \"%s\"", e.reason, words);
}

#define RULE(cond) "{\"rules\":[{\"id\":\"r1\",\"score\":10,\"if\":" cond "}]}"

START_TEST(wrong_types_are_named)
{
    refused("{\"review_threshold\":\"60\"}", "review_threshold", ERR_PARAMETER_INVALID, "",
            "integer");
    refused("{\"decline_threshold\":101}", "decline_threshold", ERR_PARAMETER_INVALID, "",
            "between 1 and 100");
    refused("{\"review_threshold\":90,\"decline_threshold\":80}", "review_threshold",
            ERR_PARAMETER_INVALID, "", "decline_threshold");
    refused("{\"rules\":{}}", "rules", ERR_PARAMETER_INVALID, "", "array");
    refused("{\"rules\":[{\"id\":\"r1\",\"score\":\"10\",\"if\":{\"feature\":\"amount\","
            "\"op\":\"gt\",\"value\":1}}]}",
            "rules[0].score", ERR_PARAMETER_INVALID, "r1", "integer");
    refused(RULE("{\"feature\":\"amount\",\"op\":\"gte\",\"value\":\"100\"}"), "rules[0].if.value",
            ERR_PARAMETER_INVALID, "r1", "integer");
    refused(RULE("{\"feature\":\"has_cvc\",\"op\":\"eq\",\"value\":0}"), "rules[0].if.value",
            ERR_PARAMETER_INVALID, "r1", "boolean");
    refused(RULE("{\"feature\":\"card_country\",\"op\":\"in\",\"value\":[\"US\",7]}"),
            "rules[0].if.value[1]", ERR_PARAMETER_INVALID, "r1", "string");
    refused(RULE("\"amount > 5\""), "rules[0].if", ERR_PARAMETER_INVALID, "r1", "object");
    refused("{\"block\":{\"ips\":[\"10.0.0.1\",\"not-an-ip\"]}}", "block.ips[1]",
            ERR_PARAMETER_INVALID, "", "IP address");
    refused("{\"allow\":{\"countries\":[\"gb\"]}}", "allow.countries[0]", ERR_PARAMETER_INVALID, "",
            "ISO 3166");
    refused("{\"block\":{\"bins\":[\"42424x\"]}}", "block.bins[0]", ERR_PARAMETER_INVALID, "",
            "digits");
    refused("{\"block\":{\"emails\":[\"no-at-sign\"]}}", "block.emails[0]", ERR_PARAMETER_INVALID,
            "", "email");
    refused("{\"block\":{\"ips\":[\"10.0.0.0/33\"]}}", "block.ips[0]", ERR_PARAMETER_INVALID, "",
            "prefix");
}
END_TEST

START_TEST(unknown_features_and_operators_are_named)
{
    refused(RULE("{\"feature\":\"shoe_size\",\"op\":\"gt\",\"value\":44}"), "rules[0].if.feature",
            ERR_PARAMETER_INVALID, "r1", "\"shoe_size\"");
    /* a card is one card: distinct_cards per card is no feature */
    refused(RULE("{\"feature\":\"card.distinct_cards.1h\",\"op\":\"gt\",\"value\":1}"),
            "rules[0].if.feature", ERR_PARAMETER_INVALID, "r1", "not a known feature");
    refused(RULE("{\"feature\":\"ip.attempts.5m\",\"op\":\"gt\",\"value\":1}"),
            "rules[0].if.feature", ERR_PARAMETER_INVALID, "r1", "not a known feature");
    refused(RULE("{\"feature\":\"amount\",\"op\":\"bigger\",\"value\":1}"), "rules[0].if.op",
            ERR_PARAMETER_INVALID, "r1", "\"bigger\"");
    refused(RULE("{\"feature\":\"card_country\",\"op\":\"gt\",\"value\":\"US\"}"), "rules[0].if.op",
            ERR_PARAMETER_INVALID, "r1", "does not apply");
    refused(RULE("{\"feature\":\"amount\",\"op\":\"starts_with\",\"value\":1}"), "rules[0].if.op",
            ERR_PARAMETER_INVALID, "r1", "does not apply");
    refused(RULE("{\"feature\":\"edge_country\",\"op\":\"ne\",\"value\":{\"feature\":\"nope\"}}"),
            "rules[0].if.value.feature", ERR_PARAMETER_INVALID, "r1", "not a known feature");
    refused(RULE("{\"feature\":\"edge_country\",\"op\":\"ne\",\"value\":{\"feature\":\"amount\"}}"),
            "rules[0].if.value.feature", ERR_PARAMETER_INVALID, "r1", "integer");
    /* the path follows compound conditions down */
    refused(RULE("{\"all\":[{\"feature\":\"amount\",\"op\":\"gt\",\"value\":1},"
                 "{\"any\":[{\"feature\":\"ip\",\"op\":\"eq\",\"value\":\"1.2.3.4\"},"
                 "{\"feature\":\"ip\",\"op\":\"matches\",\"value\":\"1.*\"}]}]}"),
            "rules[0].if.all[1].any[1].op", ERR_PARAMETER_INVALID, "r1", "\"matches\"");
}
END_TEST

START_TEST(unknown_and_missing_keys_are_named)
{
    refused("{\"rulez\":[]}", "rulez", ERR_PARAMETER_UNKNOWN, "", "not a known");
    refused("{\"block\":{\"phones\":[]}}", "block.phones", ERR_PARAMETER_UNKNOWN, "",
            "not a known");
    refused(
        "{\"rules\":[{\"score\":10,\"if\":{\"feature\":\"amount\",\"op\":\"gt\",\"value\":1}}]}",
        "rules[0].id", ERR_PARAMETER_MISSING, "", "required");
    refused("{\"rules\":[{\"id\":\"r1\",\"score\":10}]}", "rules[0].if", ERR_PARAMETER_MISSING,
            "r1", "required");
    refused(
        "{\"rules\":[{\"id\":\"r1\",\"if\":{\"feature\":\"amount\",\"op\":\"gt\",\"value\":1}}]}",
        "rules[0].score", ERR_PARAMETER_MISSING, "r1", "score or an action");
    refused(RULE("{\"fetaure\":\"amount\",\"op\":\"gt\",\"value\":1}"), "rules[0].if.fetaure",
            ERR_PARAMETER_UNKNOWN, "r1", "not a known");
    refused(RULE("{\"op\":\"gt\",\"value\":1}"), "rules[0].if.feature", ERR_PARAMETER_MISSING, "r1",
            "required");
    refused(RULE("{\"feature\":\"amount\",\"op\":\"gt\"}"), "rules[0].if.value",
            ERR_PARAMETER_MISSING, "r1", "required");
    refused(RULE("{\"feature\":\"device_id\",\"op\":\"present\",\"value\":true}"),
            "rules[0].if.value", ERR_PARAMETER_UNKNOWN, "r1", "left out");
    refused(RULE("{\"all\":[],\"any\":[]}"), "rules[0].if", ERR_PARAMETER_INVALID, "r1",
            "exactly one");
    refused(
        RULE("{\"all\":[{\"feature\":\"amount\",\"op\":\"gt\",\"value\":1}],\"feature\":\"x\"}"),
        "rules[0].if", ERR_PARAMETER_INVALID, "r1", "not both");
    refused("{\"rules\":[{\"id\":\"a b\",\"score\":1,\"if\":{\"feature\":\"amount\",\"op\":\"gt\","
            "\"value\":1}}]}",
            "rules[0].id", ERR_PARAMETER_INVALID, "", "letters");
    refused("{\"rules\":[{\"id\":\"r1\",\"score\":1,\"action\":\"block\",\"if\":{\"feature\":"
            "\"amount\",\"op\":\"gt\",\"value\":1}}]}",
            "rules[0].action", ERR_PARAMETER_INVALID, "r1", "decline");
    refused("{\"rules\":[{\"id\":\"r1\",\"score\":1,\"reason\":\"bad\\u0007bell\",\"if\":{"
            "\"feature\":\"amount\",\"op\":\"gt\",\"value\":1}}]}",
            "rules[0].reason", ERR_PARAMETER_INVALID, "r1", "control");
    refused("{\"rules\":[{\"id\":\"r1\",\"score\":1,\"if\":{\"feature\":\"amount\",\"op\":\"gt\","
            "\"value\":1}},{\"id\":\"r1\",\"score\":2,\"if\":{\"feature\":\"amount\",\"op\":\"gt\","
            "\"value\":2}}]}",
            "rules[1].id", ERR_PARAMETER_INVALID, "r1", "rules[0]");
}
END_TEST

static char *many(const char *head, const char *item, int n, const char *tail)
{
    size_t len = strlen(head) + (strlen(item) + 16) * (size_t)n + strlen(tail) + 1;
    char *s = malloc(len);
    char *p = s + sprintf(s, "%s", head);
    for (int i = 0; i < n; i++)
        p += sprintf(p, i ? ",%s" : "%s", item);
    sprintf(p, "%s", tail);
    return s;
}

START_TEST(huge_documents_are_refused)
{
    /* too many rules: each distinct id */
    char *doc = malloc(64 * 1024);
    char *p = doc + sprintf(doc, "{\"rules\":[");
    for (int i = 0; i <= FRAUD_MAX_RULES; i++)
        p += sprintf(p,
                     "%s{\"id\":\"r%d\",\"score\":1,\"if\":{\"feature\":\"amount\",\"op\":"
                     "\"gt\",\"value\":%d}}",
                     i ? "," : "", i, i);
    sprintf(p, "]}");
    refused(doc, "rules", ERR_PARAMETER_INVALID, "", "between 0 and 200");
    free(doc);

    char *list = many("{\"block\":{\"emails\":[", "\"a@b.cd\"", FRAUD_MAX_LIST + 1, "]}}");
    refused(list, "block.emails", ERR_PARAMETER_INVALID, "", "1000");
    free(list);

    char *in =
        many("{\"rules\":[{\"id\":\"r1\",\"score\":1,\"if\":{\"feature\":\"amount\",\"op\":\"in\","
             "\"value\":[",
             "1", FRAUD_MAX_IN_VALUES + 1, "]}}]}");
    refused(in, "rules[0].if.value", ERR_PARAMETER_INVALID, "r1", "1 to 500");
    free(in);

    /* deep nesting and long rules */
    refused(RULE("{\"not\":{\"not\":{\"not\":{\"not\":{\"not\":{\"feature\":\"amount\",\"op\":"
                 "\"gt\",\"value\":1}}}}}}"),
            "rules[0].if.not.not.not.not.not", ERR_PARAMETER_INVALID, "r1", "deeper");
    char *wide =
        many("{\"rules\":[{\"id\":\"r1\",\"score\":1,\"if\":{\"any\":[",
             "{\"feature\":\"amount\",\"op\":\"gt\",\"value\":1}", FRAUD_MAX_NODES, "]}}]}");
    refused(wide, "rules[0].if.any[31]", ERR_PARAMETER_INVALID, "r1", "32 conditions");
    free(wide);

    /* over 64 KiB in total, each part within its own bounds */
    char *big = many("{\"block\":{\"emails\":[",
                     "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                     "aaaaa@example.org\"",
                     800, "]}}");
    refused(big, "body", ERR_PARAMETER_INVALID, "", "at most 65536");
    free(big);
}
END_TEST

START_TEST(error_message_names_rule_and_field)
{
    json_t *j = doc_of("{\"rules\":[{\"id\":\"ok\",\"score\":1,\"if\":{\"feature\":\"amount\","
                       "\"op\":\"gt\",\"value\":1}},{\"id\":\"big_basket\",\"score\":40,\"if\":"
                       "{\"feature\":\"amount\",\"op\":\"greater\",\"value\":100000}}]}");
    fraud_rules_error_t e;
    ck_assert_ptr_null(fraud_rules_parse(j, 0, &e));
    json_decref(j);
    char msg[600];
    fraud_rules_error_message(&e, msg, sizeof msg);
    ck_assert_msg(strstr(msg, "In rule \"big_basket\": rules[1].if.op is not a known operator: "
                              "\"greater\""),
                  "message: %s", msg);
}
END_TEST

START_TEST(valid_document_compiles_and_keeps_a_private_copy)
{
    json_t *j = doc_of("{\"review_threshold\":50,\"decline_threshold\":90,"
                       "\"block\":{\"ips\":[\"203.0.113.0/24\",\"2001:db8::/32\"]},"
                       "\"allow\":{\"emails\":[\"VIP@Example.org\"]},"
                       "\"rules\":[{\"id\":\"a\",\"score\":10,\"if\":{\"feature\":\"currency\","
                       "\"op\":\"in\",\"value\":[\"USD\",\"EUR\"]}},"
                       "{\"id\":\"b\",\"action\":\"review\",\"enabled\":false,\"if\":{\"not\":"
                       "{\"feature\":\"device_id\",\"op\":\"present\"}}}]}");
    fraud_rules_error_t e;
    fraud_rules_t *r = fraud_rules_parse(j, 7, &e);
    ck_assert_msg(r != NULL, "refused: %s %s", e.param, e.reason);
    ck_assert_int_eq(fraud_rules_version(r), 7);
    ck_assert_uint_eq(fraud_rules_count(r), 2);
    ck_assert_str_eq(fraud_rules_id(r, 1), "b");
    ck_assert(json_equal(fraud_rules_doc(r), j));
    /* the caller's document may change or go away */
    json_object_set_new(j, "review_threshold", json_integer(1));
    ck_assert(!json_equal(fraud_rules_doc(r), j));
    json_decref(j);
    fraud_rules_t *again = fraud_rules_ref(r);
    fraud_rules_release(r);
    ck_assert_str_eq(fraud_rules_id(again, 0), "a");
    fraud_rules_release(again);
}
END_TEST

START_TEST(default_set_is_the_shipped_file)
{
    char *path = str_printf("%s/fraud/data/default_rules.json", SOURCE_DIR);
    size_t len = 0;
    char *text = file_read_all(path, 1 << 20, &len);
    ck_assert_ptr_nonnull(text);
    json_t *file = doc_of(text);
    fraud_rules_t *d = fraud_rules_default();
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(fraud_rules_version(d), 0);
    ck_assert(json_equal(fraud_rules_doc(d), file));
    ck_assert(fraud_rules_doc(d) == fraud_rules_default_doc());
    ck_assert_uint_ge(fraud_rules_count(d), 15);
    fraud_rules_release(d);
    json_decref(file);
    free(text);
    free(path);
}
END_TEST

int main(void)
{
    h_init("test_fraud_rules");
    Suite *s = suite_create("fraud_rules");
    TCase *tc = h_tcase("rules", 60);
    tcase_add_test(tc, wrong_types_are_named);
    tcase_add_test(tc, unknown_features_and_operators_are_named);
    tcase_add_test(tc, unknown_and_missing_keys_are_named);
    tcase_add_test(tc, huge_documents_are_refused);
    tcase_add_test(tc, error_message_names_rule_and_field);
    tcase_add_test(tc, valid_document_compiles_and_keeps_a_private_copy);
    tcase_add_test(tc, default_set_is_the_shipped_file);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
