/* Integration: sandbox-pricing as gatewayd sees it: API.md's example quote,
 * tax rounded half-up per line, shipping thresholds and country overrides,
 * 422 for unknown or unpriced SKUs, 400 naming the bad field, and a price
 * change through the control route reaching the next quote. */
#include "tests/harness/harness.h"
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define DEMO_CATALOG SOURCE_DIR "/sandbox/data/catalog.json"

/* A catalog whose numbers exist to exercise the arithmetic. */
static const char test_catalog[] =
    "{\"tax_bps\": {\"GB\": 0, \"FR\": 500, \"DE\": 1950, \"US\": 0},"
    " \"shipping\": {\"EUR\": {\"fee\": 495, \"free_from\": 5000,"
    "                         \"countries\": {\"US\": {\"fee\": 1500}}},"
    "              \"USD\": {\"fee\": 700}},"
    " \"skus\": {\"T-TEN\": {\"prices\": {\"EUR\": 10, \"USD\": 10}, \"stock\": 5},"
    "          \"T-ODD\": {\"prices\": {\"EUR\": 333}},"
    "          \"T-BIG\": {\"prices\": {\"EUR\": 5000, \"USD\": 5000}},"
    "          \"T-RISKY\": {\"prices\": {\"EUR\": 2000}, \"high_resale_risk\": true}}}";

static h_sandbox_t *demo, *calc;

static void setup(void)
{
    const char *demo_args[] = {"--catalog", DEMO_CATALOG, NULL};
    demo = h_sandbox_start("pricing", "pricing-demo", demo_args);
    char path[1024];
    snprintf(path, sizeof path, "%s/test-catalog.json", h_workdir());
    ck_assert_int_eq(file_write_atomic(path, test_catalog, strlen(test_catalog), 0644), 0);
    const char *calc_args[] = {"--catalog", path, NULL};
    calc = h_sandbox_start("pricing", "pricing-calc", calc_args);
}

static void teardown(void)
{
    h_sandbox_stop(demo);
    h_sandbox_stop(calc);
}

static h_resp_t quote(const h_sandbox_t *s, const char *body)
{
    char url[256];
    snprintf(url, sizeof url, "%s/v1/quote", s->url);
    return h_http("POST", url, NULL, body, NULL);
}

/* POSTs a quote and asserts 200 with these totals. */
static json_t *quote_ok(const h_sandbox_t *s, const char *body, json_int_t subtotal, json_int_t tax,
                        json_int_t shipping)
{
    h_resp_t r = quote(s, body);
    ck_assert_msg(r.status == 200, "quote %s: %ld %s", body, r.status, r.body);
    ck_assert_int_eq(h_json_int(r.json, "subtotal"), subtotal);
    ck_assert_int_eq(h_json_int(r.json, "tax"), tax);
    ck_assert_int_eq(h_json_int(r.json, "shipping"), shipping);
    ck_assert_int_eq(h_json_int(r.json, "total"), subtotal + tax + shipping);
    json_t *j = json_incref(r.json);
    h_resp_free(&r);
    return j;
}

START_TEST(api_example_two_red_mugs_to_gb_total_2598)
{
    json_t *q = quote_ok(demo,
                         "{\"currency\": \"EUR\", \"items\": [{\"sku\": \"SKU-RED-MUG\", "
                         "\"quantity\": 2}], \"shipping\": {\"country\": \"GB\"}}",
                         2598, 0, 0);
    ck_assert_str_eq(h_json_str(q, "currency"), "EUR");
    ck_assert_int_eq(json_array_size(json_object_get(q, "lines")), 1);
    ck_assert_str_eq(h_json_str(q, "lines.0.sku"), "SKU-RED-MUG");
    ck_assert_int_eq(h_json_int(q, "lines.0.quantity"), 2);
    ck_assert_int_eq(h_json_int(q, "lines.0.unit_amount"), 1299);
    ck_assert_int_eq(h_json_int(q, "lines.0.amount"), 2598);
    ck_assert_int_eq(h_json_int(q, "lines.0.tax_amount"), 0);
    ck_assert_str_eq(h_json_str(q, "lines.0.risk"), "normal");
    json_decref(q);
}
END_TEST

START_TEST(demo_catalog_taxes_and_ships_small_carts)
{
    /* one mug to GB: under the EUR 20.00 free-shipping threshold */
    json_decref(quote_ok(demo,
                         "{\"currency\": \"EUR\", \"items\": [{\"sku\": \"SKU-RED-MUG\", "
                         "\"quantity\": 1}], \"shipping\": {\"country\": \"GB\"}}",
                         1299, 0, 495));
    /* one mug to DE: 19% of 1299 = 246.81 -> 247 */
    json_decref(quote_ok(demo,
                         "{\"currency\": \"EUR\", \"items\": [{\"sku\": \"SKU-RED-MUG\", "
                         "\"quantity\": 1}], \"shipping\": {\"country\": \"DE\"}}",
                         1299, 247, 495));
    /* GBP prices exist too */
    json_decref(quote_ok(demo,
                         "{\"currency\": \"GBP\", \"items\": [{\"sku\": \"SKU-RED-MUG\", "
                         "\"quantity\": 1}], \"shipping\": {\"country\": \"GB\"}}",
                         1099, 0, 399));
}
END_TEST

START_TEST(tax_is_rounded_half_up_per_line)
{
    /* FR 5%: 10 -> 0.5 -> 1 (half-up, not half-even or truncation);
     * 333 -> 16.65 -> 17; per line 18, where rounding the total would give 17 */
    json_t *q = quote_ok(calc,
                         "{\"currency\": \"EUR\", \"items\": [{\"sku\": \"T-TEN\", \"quantity\": "
                         "1}, {\"sku\": \"T-ODD\", \"quantity\": 1}], \"shipping\": "
                         "{\"country\": \"FR\"}}",
                         343, 18, 495);
    ck_assert_int_eq(h_json_int(q, "lines.0.tax_amount"), 1);
    ck_assert_int_eq(h_json_int(q, "lines.1.tax_amount"), 17);
    ck_assert_int_eq(h_json_int(q, "tax_rate_bps"), 500);
    json_decref(q);
    /* DE 19.5%: 3 x 333 = 999 -> 194.805 -> 195; 1 x 10 -> 1.95 -> 2 */
    q = quote_ok(calc,
                 "{\"currency\": \"EUR\", \"items\": [{\"sku\": \"T-ODD\", \"quantity\": 3}, "
                 "{\"sku\": \"T-TEN\", \"quantity\": 1}], \"shipping\": {\"country\": \"DE\"}}",
                 1009, 197, 495);
    ck_assert_int_eq(h_json_int(q, "lines.0.unit_amount"), 333);
    ck_assert_int_eq(h_json_int(q, "lines.0.amount"), 999);
    ck_assert_int_eq(h_json_int(q, "lines.0.tax_amount"), 195);
    ck_assert_int_eq(h_json_int(q, "lines.1.tax_amount"), 2);
    json_decref(q);
}
END_TEST

START_TEST(shipping_threshold_is_inclusive_and_countries_override)
{
    /* subtotal exactly at free_from ships free */
    json_decref(quote_ok(calc,
                         "{\"currency\": \"EUR\", \"items\": [{\"sku\": \"T-BIG\", \"quantity\": "
                         "1}], \"shipping\": {\"country\": \"GB\"}}",
                         5000, 0, 0));
    /* one unit below it pays the fee */
    json_decref(quote_ok(calc,
                         "{\"currency\": \"EUR\", \"items\": [{\"sku\": \"T-ODD\", \"quantity\": "
                         "15}], \"shipping\": {\"country\": \"GB\"}}",
                         4995, 0, 495));
    /* the US rule replaces the currency's: its own fee, no free threshold */
    json_decref(quote_ok(calc,
                         "{\"currency\": \"EUR\", \"items\": [{\"sku\": \"T-BIG\", \"quantity\": "
                         "2}], \"shipping\": {\"country\": \"US\"}}",
                         10000, 0, 1500));
    /* USD has a flat fee; address fields besides country are accepted */
    json_decref(quote_ok(calc,
                         "{\"currency\": \"USD\", \"items\": [{\"sku\": \"T-BIG\", \"quantity\": "
                         "3}], \"shipping\": {\"country\": \"US\", \"postal_code\": \"10001\"}}",
                         15000, 0, 700));
}
END_TEST

START_TEST(high_resale_risk_is_returned_per_line)
{
    json_t *q = quote_ok(demo,
                         "{\"currency\": \"USD\", \"items\": [{\"sku\": \"SKU-RED-MUG\", "
                         "\"quantity\": 1}, {\"sku\": \"SKU-GIFT-CARD-50\", \"quantity\": 2}], "
                         "\"shipping\": {\"country\": \"US\"}}",
                         1499 + 10000, 0, 0);
    ck_assert_str_eq(h_json_str(q, "lines.0.risk"), "normal");
    ck_assert_str_eq(h_json_str(q, "lines.1.sku"), "SKU-GIFT-CARD-50");
    ck_assert_str_eq(h_json_str(q, "lines.1.risk"), "high_resale");
    json_decref(q);
}
END_TEST

START_TEST(unknown_sku_is_422_naming_it)
{
    h_resp_t r = quote(demo, "{\"currency\": \"EUR\", \"items\": [{\"sku\": \"SKU-RED-MUG\", "
                             "\"quantity\": 1}, {\"sku\": \"SKU-NO-SUCH\", \"quantity\": 1}], "
                             "\"shipping\": {\"country\": \"GB\"}}");
    ck_assert_msg(r.status == 422, "%ld %s", r.status, r.body);
    ck_assert_str_eq(h_json_str(r.json, "error.type"), "cart_error");
    ck_assert_str_eq(h_json_str(r.json, "error.code"), "unknown_sku");
    ck_assert_str_eq(h_json_str(r.json, "error.param"), "items[1].sku");
    ck_assert_str_eq(h_json_str(r.json, "error.sku"), "SKU-NO-SUCH");
    ck_assert_str_eq(h_json_str(r.json, "error.skus.0"), "SKU-NO-SUCH");
    ck_assert_ptr_nonnull(strstr(h_json_str(r.json, "error.message"), "SKU-NO-SUCH"));
    h_resp_free(&r);
}
END_TEST

START_TEST(currency_not_priced_is_422_naming_sku_and_currency)
{
    /* the teapot has EUR and GBP prices only */
    h_resp_t r = quote(demo, "{\"currency\": \"USD\", \"items\": [{\"sku\": \"SKU-TEAPOT\", "
                             "\"quantity\": 1}], \"shipping\": {\"country\": \"US\"}}");
    ck_assert_msg(r.status == 422, "%ld %s", r.status, r.body);
    ck_assert_str_eq(h_json_str(r.json, "error.code"), "currency_not_priced");
    ck_assert_str_eq(h_json_str(r.json, "error.sku"), "SKU-TEAPOT");
    ck_assert_str_eq(h_json_str(r.json, "error.currency"), "USD");
    h_resp_free(&r);
    /* a currency the shop does not sell in at all */
    r = quote(demo, "{\"currency\": \"JPY\", \"items\": [{\"sku\": \"SKU-RED-MUG\", "
                    "\"quantity\": 1}], \"shipping\": {\"country\": \"JP\"}}");
    ck_assert_int_eq(r.status, 422);
    ck_assert_str_eq(h_json_str(r.json, "error.code"), "currency_not_priced");
    h_resp_free(&r);
    /* a country without a tax rate is not served */
    r = quote(demo, "{\"currency\": \"EUR\", \"items\": [{\"sku\": \"SKU-RED-MUG\", "
                    "\"quantity\": 1}], \"shipping\": {\"country\": \"ZZ\"}}");
    ck_assert_int_eq(r.status, 422);
    ck_assert_str_eq(h_json_str(r.json, "error.code"), "country_not_served");
    ck_assert_str_eq(h_json_str(r.json, "error.param"), "shipping.country");
    h_resp_free(&r);
}
END_TEST

START_TEST(bad_input_is_400_naming_the_field)
{
    char many[8192];
    size_t off = (size_t)snprintf(many, sizeof many, "{\"currency\": \"EUR\", \"items\": [");
    for (int i = 0; i < 101; i++)
        off += (size_t)snprintf(many + off, sizeof many - off,
                                "%s{\"sku\": \"S%d\", \"quantity\": 1}", i ? "," : "", i);
    snprintf(many + off, sizeof many - off, "], \"shipping\": {\"country\": \"GB\"}}");
    static const char ok_tail[] = "\"shipping\": {\"country\": \"GB\"}}";
    char body[512];
    struct {
        const char *body;
        const char *param;
        const char *code;
    } cases[] = {
        {"{\"currency\": \"EUR\", \"items\": [{\"sku\": \"SKU-RED-MUG\", \"quantity\": 0}], ",
         "items[0].quantity", "parameter_invalid"},
        {"{\"currency\": \"EUR\", \"items\": [{\"sku\": \"SKU-RED-MUG\", \"quantity\": 1001}], ",
         "items[0].quantity", "parameter_invalid"},
        {"{\"currency\": \"EUR\", \"items\": [{\"sku\": \"SKU-RED-MUG\", \"quantity\": \"2\"}], ",
         "items[0].quantity", "parameter_invalid"},
        {"{\"currency\": \"EUR\", \"items\": [{\"sku\": \"SKU-RED-MUG\"}], ", "items[0].quantity",
         "parameter_missing"},
        {"{\"currency\": \"eur\", \"items\": [{\"sku\": \"SKU-RED-MUG\", \"quantity\": 1}], ",
         "currency", "parameter_invalid"},
        {"{\"currency\": \"EURO\", \"items\": [{\"sku\": \"SKU-RED-MUG\", \"quantity\": 1}], ",
         "currency", "parameter_invalid"},
        {"{\"items\": [{\"sku\": \"SKU-RED-MUG\", \"quantity\": 1}], ", "currency",
         "parameter_missing"},
        {"{\"currency\": \"EUR\", \"items\": [], ", "items", "parameter_invalid"},
        {"{\"currency\": \"EUR\", \"items\": {}, ", "items", "parameter_invalid"},
        {"{\"currency\": \"EUR\", \"items\": [7], ", "items[0]", "parameter_invalid"},
        {"{\"currency\": \"EUR\", \"items\": [{\"sku\": \"\", \"quantity\": 1}], ", "items[0].sku",
         "parameter_invalid"},
        {"{\"currency\": \"EUR\", \"items\": [{\"sku\": \"SKU-RED-MUG\", \"quantity\": 1, "
         "\"unit_amount\": 1}], ",
         "items[0].unit_amount", "parameter_unknown"},
        {"{\"currency\": \"EUR\", \"items\": [{\"sku\": \"SKU-RED-MUG\", \"quantity\": 1}, "
         "{\"sku\": \"SKU-RED-MUG\", \"quantity\": 2}], ",
         "items[1].sku", "parameter_invalid"},
        {"{\"currency\": \"EUR\", \"discount\": 5, \"items\": [{\"sku\": \"SKU-RED-MUG\", "
         "\"quantity\": 1}], ",
         "discount", "parameter_unknown"},
    };
    for (size_t i = 0; i < PC_ARRAY_LEN(cases); i++) {
        snprintf(body, sizeof body, "%s%s", cases[i].body, ok_tail);
        h_resp_t r = quote(demo, body);
        ck_assert_msg(r.status == 400, "%s -> %ld %s", body, r.status, r.body);
        ck_assert_msg(h_json_str(r.json, "error.param") &&
                          !strcmp(h_json_str(r.json, "error.param"), cases[i].param),
                      "%s: expected param %s: %s", body, cases[i].param, r.body);
        ck_assert_str_eq(h_json_str(r.json, "error.code"), cases[i].code);
        h_resp_free(&r);
    }
    struct {
        const char *body;
        const char *param;
    } whole[] = {
        {many, "items"},
        {"{\"currency\": \"EUR\", \"items\": [{\"sku\": \"SKU-RED-MUG\", \"quantity\": 1}]}",
         "shipping"},
        {"{\"currency\": \"EUR\", \"items\": [{\"sku\": \"SKU-RED-MUG\", \"quantity\": 1}], "
         "\"shipping\": {\"country\": \"gbr\"}}",
         "shipping.country"},
        {"{\"currency\": \"EUR\", \"items\": [{\"sku\": \"SKU-RED-MUG\", \"quantity\": 1}], "
         "\"shipping\": {}}",
         "shipping.country"},
        {"{\"currency\": \"EUR\", \"items\": [{\"sku\": \"SKU-RED-MUG\", \"quantity\": 1}", "body"},
        {"[1, 2]", "body"},
    };
    for (size_t i = 0; i < PC_ARRAY_LEN(whole); i++) {
        h_resp_t r = quote(demo, whole[i].body);
        ck_assert_msg(r.status == 400, "%.80s -> %ld %s", whole[i].body, r.status, r.body);
        ck_assert_msg(h_json_str(r.json, "error.param") &&
                          !strcmp(h_json_str(r.json, "error.param"), whole[i].param),
                      "%.80s: expected param %s: %s", whole[i].body, whole[i].param, r.body);
        h_resp_free(&r);
    }
    /* the service keeps serving */
    json_decref(quote_ok(demo,
                         "{\"currency\": \"EUR\", \"items\": [{\"sku\": \"SKU-RED-MUG\", "
                         "\"quantity\": 2}], \"shipping\": {\"country\": \"GB\"}}",
                         2598, 0, 0));
}
END_TEST

START_TEST(routes_and_methods_are_checked)
{
    char url[256];
    snprintf(url, sizeof url, "%s/v1/quote", demo->url);
    h_resp_t r = h_http("GET", url, NULL, NULL, NULL);
    ck_assert_int_eq(r.status, 405);
    h_resp_free(&r);
    snprintf(url, sizeof url, "%s/v1/quotes", demo->url);
    r = h_http("POST", url, NULL, "{}", NULL);
    ck_assert_int_eq(r.status, 404);
    h_resp_free(&r);
    /* the quote route is not on the control listener */
    snprintf(url, sizeof url, "%s/v1/quote", demo->control_url);
    r = h_http("POST", url, NULL, "{}", NULL);
    ck_assert_int_eq(r.status, 404);
    h_resp_free(&r);
}
END_TEST

static h_resp_t set_price(const h_sandbox_t *s, const char *body)
{
    char url[256];
    snprintf(url, sizeof url, "%s/_sandbox/prices", s->control_url);
    return h_http("POST", url, NULL, body, NULL);
}

START_TEST(price_change_through_control_route_changes_next_quote)
{
    static const char two_mugs[] = "{\"currency\": \"EUR\", \"items\": [{\"sku\": "
                                   "\"SKU-RED-MUG\", \"quantity\": 2}], \"shipping\": "
                                   "{\"country\": \"GB\"}}";
    json_decref(quote_ok(demo, two_mugs, 2598, 0, 0));
    h_resp_t r = set_price(demo, "{\"sku\": \"SKU-RED-MUG\", \"currency\": \"EUR\", "
                                 "\"unit_amount\": 1599}");
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_int_eq(h_json_int(r.json, "prices.EUR"), 1599);
    ck_assert_int_eq(h_json_int(r.json, "prices.USD"), 1499);
    h_resp_free(&r);
    json_t *q = quote_ok(demo, two_mugs, 3198, 0, 0);
    ck_assert_int_eq(h_json_int(q, "lines.0.unit_amount"), 1599);
    json_decref(q);
    /* other currencies keep their price */
    json_decref(quote_ok(demo,
                         "{\"currency\": \"GBP\", \"items\": [{\"sku\": \"SKU-RED-MUG\", "
                         "\"quantity\": 1}], \"shipping\": {\"country\": \"GB\"}}",
                         1099, 0, 399));
    /* a SKU can be priced in a shop currency it lacked, and flagged */
    r = set_price(demo, "{\"sku\": \"SKU-TEAPOT\", \"currency\": \"USD\", \"unit_amount\": 4000, "
                        "\"high_resale_risk\": true}");
    ck_assert_int_eq(r.status, 200);
    h_resp_free(&r);
    q = quote_ok(demo,
                 "{\"currency\": \"USD\", \"items\": [{\"sku\": \"SKU-TEAPOT\", \"quantity\": "
                 "1}], \"shipping\": {\"country\": \"US\"}}",
                 4000, 0, 599);
    ck_assert_str_eq(h_json_str(q, "lines.0.risk"), "high_resale");
    json_decref(q);
    /* refused changes name the field and change nothing */
    r = set_price(demo, "{\"sku\": \"SKU-NO-SUCH\", \"currency\": \"EUR\", \"unit_amount\": 1}");
    ck_assert_int_eq(r.status, 404);
    h_resp_free(&r);
    r = set_price(demo, "{\"sku\": \"SKU-RED-MUG\", \"currency\": \"JPY\", \"unit_amount\": 1}");
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(h_json_str(r.json, "error.param"), "currency");
    h_resp_free(&r);
    r = set_price(demo, "{\"sku\": \"SKU-RED-MUG\", \"currency\": \"EUR\", \"unit_amount\": -1}");
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(h_json_str(r.json, "error.param"), "unit_amount");
    h_resp_free(&r);
    r = set_price(demo, "{\"sku\": \"SKU-RED-MUG\", \"currency\": \"EUR\"}");
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(h_json_str(r.json, "error.param"), "unit_amount");
    h_resp_free(&r);
    json_decref(quote_ok(demo, two_mugs, 3198, 0, 0));
}
END_TEST

START_TEST(injected_faults_hit_quotes_until_cleared)
{
    static const char mug[] = "{\"currency\": \"EUR\", \"items\": [{\"sku\": "
                              "\"SKU-RED-MUG\", \"quantity\": 2}], \"shipping\": "
                              "{\"country\": \"GB\"}}";
    h_sandbox_faults(demo, "{\"mode\": \"error_500\"}");
    h_resp_t r = quote(demo, mug);
    ck_assert_int_eq(r.status, 500);
    h_resp_free(&r);
    h_sandbox_faults(demo, "{\"mode\": \"reset\"}");
    r = quote(demo, mug);
    ck_assert_int_ne(r.net, HTTPC_OK);
    h_resp_free(&r);
    h_sandbox_faults(demo, "{\"mode\": \"down\"}");
    r = quote(demo, mug);
    ck_assert_int_ne(r.net, HTTPC_OK);
    h_resp_free(&r);
    h_sandbox_faults(demo, "{\"mode\": \"none\"}");
    json_decref(quote_ok(demo, mug, 2598, 0, 0));
}
END_TEST

/* Runs sandbox-pricing on a catalog and returns its exit code. */
static int run_with_catalog(const char *name, const char *text)
{
    char path[1024], bin[1024];
    snprintf(path, sizeof path, "%s/%s.json", h_workdir(), name);
    ck_assert_int_eq(file_write_atomic(path, text, strlen(text), 0644), 0);
    snprintf(bin, sizeof bin, "%s/sandbox-pricing", SANDBOX_BIN_DIR);
    char *argv[] = {bin, "--port", "0", "--catalog", path, NULL};
    h_proc_t *p = h_proc_start(name, argv, NULL);
    int rc = h_proc_stop(p, 0, 5000); /* signal 0: just wait */
    free(p);
    return rc;
}

START_TEST(bad_catalog_stops_start_up)
{
    /* a price in a currency without a shipping rule */
    ck_assert_int_eq(run_with_catalog("cat-currency",
                                      "{\"tax_bps\": {}, \"shipping\": {\"EUR\": {\"fee\": 1}}, "
                                      "\"skus\": {\"A\": {\"prices\": {\"USD\": 1}}}}"),
                     2);
    /* a misspelt key */
    ck_assert_int_eq(run_with_catalog("cat-typo",
                                      "{\"tax_bps\": {}, \"shipping\": {\"EUR\": {\"fee\": 1}}, "
                                      "\"skus\": {\"A\": {\"prices\": {\"EUR\": 1}, "
                                      "\"high_resale\": true}}}"),
                     2);
    /* a tax rate over 100% */
    ck_assert_int_eq(run_with_catalog("cat-tax", "{\"tax_bps\": {\"DE\": 10001}, \"shipping\": "
                                                 "{\"EUR\": {\"fee\": 1}}, \"skus\": {}}"),
                     2);
}
END_TEST

int main(void)
{
    h_init("it_platform_pricing");
    Suite *s = suite_create("platform_pricing");
    TCase *tc = h_tcase("pricing", 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, api_example_two_red_mugs_to_gb_total_2598);
    tcase_add_test(tc, demo_catalog_taxes_and_ships_small_carts);
    tcase_add_test(tc, tax_is_rounded_half_up_per_line);
    tcase_add_test(tc, shipping_threshold_is_inclusive_and_countries_override);
    tcase_add_test(tc, high_resale_risk_is_returned_per_line);
    tcase_add_test(tc, unknown_sku_is_422_naming_it);
    tcase_add_test(tc, currency_not_priced_is_422_naming_sku_and_currency);
    tcase_add_test(tc, bad_input_is_400_naming_the_field);
    tcase_add_test(tc, routes_and_methods_are_checked);
    tcase_add_test(tc, price_change_through_control_route_changes_next_quote);
    tcase_add_test(tc, injected_faults_hit_quotes_until_cleared);
    suite_add_tcase(s, tc);
    TCase *boot = h_tcase("catalog", 60);
    tcase_add_test(boot, bad_catalog_stops_start_up);
    suite_add_tcase(s, boot);
    return h_run_suite(s);
}
