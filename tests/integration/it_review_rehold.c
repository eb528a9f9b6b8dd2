/* Integration: a review approved when the checkout's inventory hold is about
 * to end (here: at once, the review hold being the minimum 60 s) takes the
 * stock again under a new reservation before anything is captured, and
 * commits that one; if the stock is gone meanwhile, the approval is refused
 * with 409 out_of_stock naming the line, nothing is captured, and the review
 * stays open for a reject. */
#include "tests/harness/stack.h"
#include <string.h>

static h_stack_t *st;

static void setup(void)
{
    h_stack_opts_t o = {.gateway_json = "{\"checkout\":{\"review_reservation_ttl_seconds\":60}}"};
    st = h_stack_start(&o);
    const char *rules =
        "{\"review_threshold\":60,\"decline_threshold\":85,\"rules\":[{\"id\":\"review_me\","
        "\"if\":{\"feature\":\"email_domain\",\"op\":\"eq\",\"value\":\"review.example\"},"
        "\"score\":0,\"action\":\"review\",\"reason\":\"held for manual review\"}]}";
    char url[256];
    snprintf(url, sizeof url, "%s/v1/fraud/rules", st->gw[0]->url);
    h_resp_t r = h_http("PUT", url, st->m.sk, rules, NULL);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    h_resp_free(&r);
}

static void teardown(void)
{
    h_stack_stop(st);
}

/* A checkout of one `sku` held for review; returns its id (malloc'd). */
static char *held(const char *sku)
{
    h_resp_t r = h_stack_pay(st, 0, "4242424242424242", sku, 1,
                             "{\"customer\":{\"email\":\"someone@review.example\"}}");
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_str_eq(h_json_str(r.json, "status"), "requires_review");
    char *id = strdup(h_json_str(r.json, "id"));
    h_resp_free(&r);
    return id;
}

static h_resp_t review(const char *chk, const char *decision)
{
    char url[256], body[64];
    snprintf(url, sizeof url, "%s/v1/checkouts/%s/review", st->gw[0]->url, chk);
    snprintf(body, sizeof body, "{\"decision\":\"%s\"}", decision);
    return h_http("POST", url, st->m.sk, body, NULL);
}

static h_resp_t inventory(const char *method, const char *id, const char *body)
{
    char url[512];
    snprintf(url, sizeof url, "%s/v1/reservations/%s", st->inventory->url, id);
    return h_http(method, url, NULL, body, NULL);
}

static bool committed_there(void *cls)
{
    return h_sql_long(st->db,
                      "SELECT count(*) FROM gateway.checkouts WHERE id = '%s' AND "
                      "reservation_state = 'committed' AND reservation_id LIKE 'res_%%-r%%'",
                      (const char *)cls) == 1;
}

START_TEST(an_approval_takes_the_stock_again_and_commits_the_new_hold)
{
    char *id = held("SKU-BLUE-MUG");
    long committed = h_stack_stock(st, "SKU-BLUE-MUG", "committed");
    long captured = h_stack_charges(st, "captured");
    h_resp_t r = review(id, "approve");
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_str_eq(h_json_str(r.json, "status"), "succeeded");
    ck_assert_str_eq(h_json_str(r.json, "payment.status"), "captured");
    h_resp_free(&r);
    /* the renewed reservation (res_<checkout>-r<time>) is the one committed */
    ck_assert(h_wait_until(committed_there, id, 15000));
    ck_assert_int_eq(h_stack_stock(st, "SKU-BLUE-MUG", "committed"), committed + 1);
    ck_assert_int_eq(h_stack_charges(st, "captured"), captured + 1);
    free(id);
}
END_TEST

START_TEST(an_approval_whose_stock_is_gone_is_refused_and_the_review_stays_open)
{
    char *id = held("SKU-LAST-ONE");
    long captured = h_stack_charges(st, "captured");
    /* the hold ends at the inventory (as its TTL would) and someone else
     * takes the last one */
    char rid[96], blocker[64];
    snprintf(rid, sizeof rid, "res_%s", id + 4);
    h_resp_t d = inventory("DELETE", rid, NULL);
    ck_assert_msg(d.status == 200 || d.status == 204, "%ld %s", d.status, d.body);
    h_resp_free(&d);
    snprintf(blocker, sizeof blocker, "someone-else-%d", (int)getpid());
    d = inventory("PUT", blocker,
                  "{\"items\":[{\"sku\":\"SKU-LAST-ONE\",\"quantity\":1}],\"ttl_seconds\":600}");
    ck_assert_msg(d.status == 201, "%ld %s", d.status, d.body);
    h_resp_free(&d);

    h_resp_t r = review(id, "approve");
    h_assert_error(&r, 409, ERR_OUT_OF_STOCK);
    ck_assert_str_eq(h_json_str(r.json, "error.lines.0.sku"), "SKU-LAST-ONE");
    h_resp_free(&r);
    ck_assert_int_eq(h_stack_charges(st, "captured"), captured);
    ck_assert_int_eq(h_sql_long(st->db,
                                "SELECT count(*) FROM gateway.checkouts WHERE id = '%s' "
                                "AND status = 'requires_review'",
                                id),
                     1);
    /* still open: a reject ends it, and voids the authorization */
    r = review(id, "reject");
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_str_eq(h_json_str(r.json, "status"), "declined");
    h_resp_free(&r);
    ck_assert_int_eq(h_stack_charges(st, "captured"), captured);
    d = inventory("DELETE", blocker, NULL);
    h_resp_free(&d);
    free(id);
}
END_TEST

int main(void)
{
    h_init("it_review_rehold");
    Suite *s = suite_create("review_rehold");
    TCase *tc = h_tcase("rehold", 300);
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_add_test(tc, an_approval_takes_the_stock_again_and_commits_the_new_hold);
    tcase_add_test(tc, an_approval_whose_stock_is_gone_is_refused_and_the_review_stays_open);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
