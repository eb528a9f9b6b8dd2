/* Integration: sandbox-inventory as gatewayd sees it: reservations created,
 * replayed, refused, committed, released and expired with exact stock
 * accounting, and exactly one winner when 50 checkouts race for the last
 * unit. */
#include "tests/harness/harness.h"
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define DEMO_CATALOG SOURCE_DIR "/sandbox/data/catalog.json"

static h_sandbox_t *inv;

static void setup(void)
{
    const char *args[] = {"--catalog", DEMO_CATALOG, NULL};
    inv = h_sandbox_start("inventory", "inventory", args);
}

static void teardown(void)
{
    h_sandbox_stop(inv);
}

static h_resp_t call(const char *method, const char *path, const char *body)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", inv->url, path);
    return h_http(method, url, NULL, body, NULL);
}

static h_resp_t reserve(const char *id, const char *body)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/reservations/%s", id);
    return call("PUT", path, body);
}

static h_resp_t commit(const char *id)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/reservations/%s/commit", id);
    return call("POST", path, NULL);
}

static h_resp_t release(const char *id)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/reservations/%s", id);
    return call("DELETE", path, NULL);
}

typedef struct {
    json_int_t on_hand, reserved, committed;
} level_t;

static level_t stock_of(const char *sku)
{
    char url[256], path[128];
    snprintf(url, sizeof url, "%s/_sandbox/stock", inv->control_url);
    h_resp_t r = h_http("GET", url, NULL, NULL, NULL);
    ck_assert_int_eq(r.status, 200);
    level_t l;
    snprintf(path, sizeof path, "skus.%s.on_hand", sku);
    l.on_hand = h_json_int(r.json, path);
    snprintf(path, sizeof path, "skus.%s.reserved", sku);
    l.reserved = h_json_int(r.json, path);
    snprintf(path, sizeof path, "skus.%s.committed", sku);
    l.committed = h_json_int(r.json, path);
    snprintf(path, sizeof path, "skus.%s.available", sku);
    ck_assert_int_eq(h_json_int(r.json, path), l.on_hand - l.reserved);
    h_resp_free(&r);
    return l;
}

#define ck_assert_stock(sku, oh, res, com)                                                         \
    do {                                                                                           \
        level_t l_ = stock_of(sku);                                                                \
        ck_assert_msg(l_.on_hand == (oh) && l_.reserved == (res) && l_.committed == (com),         \
                      "%s: on_hand %lld reserved %lld committed %lld, expected %d %d %d", sku,     \
                      (long long)l_.on_hand, (long long)l_.reserved, (long long)l_.committed,      \
                      (int)(oh), (int)(res), (int)(com));                                          \
    } while (0)

static void set_stock(const char *sku, int on_hand, long expect_status)
{
    char url[256], body[256];
    snprintf(url, sizeof url, "%s/_sandbox/stock", inv->control_url);
    snprintf(body, sizeof body, "{\"sku\": \"%s\", \"on_hand\": %d}", sku, on_hand);
    h_resp_t r = h_http("POST", url, NULL, body, NULL);
    ck_assert_msg(r.status == expect_status, "set stock %s: %ld %s", body, r.status, r.body);
    h_resp_free(&r);
}

static const char *status_of(const char *id, char *buf, size_t n)
{
    char url[256];
    snprintf(url, sizeof url, "%s/_sandbox/reservations/%s", inv->control_url, id);
    h_resp_t r = h_http("GET", url, NULL, NULL, NULL);
    snprintf(buf, n, "%s", r.status == 200 ? h_json_str(r.json, "status") : "missing");
    h_resp_free(&r);
    return buf;
}

START_TEST(reservation_create_then_replay_returns_the_same_reservation)
{
    static const char two[] = "{\"items\": [{\"sku\": \"SKU-RED-MUG\", \"quantity\": 2}, "
                              "{\"sku\": \"SKU-TEAPOT\", \"quantity\": 1}], \"ttl_seconds\": 600}";
    h_resp_t a = reserve("chk_replay", two);
    ck_assert_msg(a.status == 201, "%ld %s", a.status, a.body);
    ck_assert_str_eq(h_json_str(a.json, "id"), "chk_replay");
    ck_assert_str_eq(h_json_str(a.json, "status"), "reserved");
    ck_assert_str_eq(h_json_str(a.json, "items.0.sku"), "SKU-RED-MUG");
    ck_assert_int_eq(h_json_int(a.json, "items.0.quantity"), 2);
    ck_assert_str_eq(h_json_str(a.json, "items.1.sku"), "SKU-TEAPOT");
    ck_assert_ptr_nonnull(h_json_str(a.json, "expires_at"));
    ck_assert_stock("SKU-RED-MUG", 1000000, 2, 0);
    ck_assert_stock("SKU-TEAPOT", 5000, 1, 0);
    sleep(1); /* a replay must not restart the clock */
    /* the same items in another order with another TTL are the same request */
    h_resp_t b = reserve("chk_replay", "{\"items\": [{\"sku\": \"SKU-TEAPOT\", \"quantity\": 1}, "
                                       "{\"sku\": \"SKU-RED-MUG\", \"quantity\": 2}], "
                                       "\"ttl_seconds\": 30}");
    ck_assert_msg(b.status == 200, "%ld %s", b.status, b.body);
    ck_assert(json_equal(a.json, b.json));
    ck_assert_stock("SKU-RED-MUG", 1000000, 2, 0);
    ck_assert_stock("SKU-TEAPOT", 5000, 1, 0);
    h_resp_free(&a);
    h_resp_free(&b);
}
END_TEST

START_TEST(same_id_with_other_items_is_422_and_changes_nothing)
{
    h_resp_t r = reserve("chk_conflict", "{\"items\": [{\"sku\": \"SKU-RED-MUG\", \"quantity\": "
                                         "2}]}");
    ck_assert_int_eq(r.status, 201);
    h_resp_free(&r);
    const char *others[] = {
        "{\"items\": [{\"sku\": \"SKU-RED-MUG\", \"quantity\": 3}]}",
        "{\"items\": [{\"sku\": \"SKU-BLUE-MUG\", \"quantity\": 2}]}",
        "{\"items\": [{\"sku\": \"SKU-RED-MUG\", \"quantity\": 2}, {\"sku\": \"SKU-STICKER\", "
        "\"quantity\": 1}]}",
    };
    for (size_t i = 0; i < PC_ARRAY_LEN(others); i++) {
        r = reserve("chk_conflict", others[i]);
        ck_assert_msg(r.status == 422, "%s: %ld %s", others[i], r.status, r.body);
        ck_assert_str_eq(h_json_str(r.json, "error.type"), "idempotency_error");
        ck_assert_str_eq(h_json_str(r.json, "error.code"), "key_reused");
        ck_assert_int_eq(h_json_int(r.json, "reservation.items.0.quantity"), 2);
        h_resp_free(&r);
    }
    ck_assert_stock("SKU-RED-MUG", 1000000, 2, 0);
    ck_assert_stock("SKU-BLUE-MUG", 1000000, 0, 0);
    ck_assert_stock("SKU-STICKER", 1000000, 0, 0);
}
END_TEST

START_TEST(short_cart_is_409_naming_every_short_line_and_reserves_nothing)
{
    h_resp_t r = reserve("chk_short", "{\"items\": [{\"sku\": \"SKU-SOLD-OUT\", \"quantity\": 1}, "
                                      "{\"sku\": \"SKU-RED-MUG\", \"quantity\": 4}, "
                                      "{\"sku\": \"SKU-LAST-ONE\", \"quantity\": 2}]}");
    ck_assert_msg(r.status == 409, "%ld %s", r.status, r.body);
    ck_assert_str_eq(h_json_str(r.json, "error.code"), "out_of_stock");
    ck_assert_int_eq(json_array_size(json_object_get(r.json, "unavailable")), 2);
    ck_assert_str_eq(h_json_str(r.json, "unavailable.0.sku"), "SKU-SOLD-OUT");
    ck_assert_int_eq(h_json_int(r.json, "unavailable.0.requested"), 1);
    ck_assert_int_eq(h_json_int(r.json, "unavailable.0.available"), 0);
    ck_assert_str_eq(h_json_str(r.json, "unavailable.1.sku"), "SKU-LAST-ONE");
    ck_assert_int_eq(h_json_int(r.json, "unavailable.1.requested"), 2);
    ck_assert_int_eq(h_json_int(r.json, "unavailable.1.available"), 1);
    h_resp_free(&r);
    /* all or nothing: the mugs that were in stock are not held */
    ck_assert_stock("SKU-RED-MUG", 1000000, 0, 0);
    ck_assert_stock("SKU-LAST-ONE", 1, 0, 0);
    char st[32];
    ck_assert_str_eq(status_of("chk_short", st, sizeof st), "missing");
}
END_TEST

START_TEST(commit_sells_the_units_and_is_idempotent)
{
    h_resp_t r = reserve("chk_commit", "{\"items\": [{\"sku\": \"SKU-LAST-ONE\", \"quantity\": "
                                       "1}, {\"sku\": \"SKU-RED-MUG\", \"quantity\": 3}]}");
    ck_assert_int_eq(r.status, 201);
    h_resp_free(&r);
    ck_assert_stock("SKU-LAST-ONE", 1, 1, 0);
    for (int i = 0; i < 2; i++) {
        r = commit("chk_commit");
        ck_assert_msg(r.status == 200, "commit %d: %ld %s", i, r.status, r.body);
        ck_assert_str_eq(h_json_str(r.json, "status"), "committed");
        h_resp_free(&r);
        ck_assert_stock("SKU-LAST-ONE", 0, 0, 1);
        ck_assert_stock("SKU-RED-MUG", 999997, 0, 3);
    }
    /* a replayed PUT of a committed reservation answers it as it stands */
    r = reserve("chk_commit", "{\"items\": [{\"sku\": \"SKU-LAST-ONE\", \"quantity\": 1}, "
                              "{\"sku\": \"SKU-RED-MUG\", \"quantity\": 3}]}");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(h_json_str(r.json, "status"), "committed");
    h_resp_free(&r);
    r = release("chk_commit");
    ck_assert_msg(r.status == 409, "%ld %s", r.status, r.body);
    ck_assert_str_eq(h_json_str(r.json, "error.code"), "reservation_committed");
    h_resp_free(&r);
    ck_assert_stock("SKU-LAST-ONE", 0, 0, 1);
    /* sold out now */
    r = reserve("chk_after", "{\"items\": [{\"sku\": \"SKU-LAST-ONE\", \"quantity\": 1}]}");
    ck_assert_int_eq(r.status, 409);
    ck_assert_int_eq(h_json_int(r.json, "unavailable.0.available"), 0);
    h_resp_free(&r);
}
END_TEST

START_TEST(release_returns_the_units_and_is_idempotent)
{
    h_resp_t r = reserve("chk_release", "{\"items\": [{\"sku\": \"SKU-LAST-ONE\", \"quantity\": "
                                        "1}, {\"sku\": \"SKU-RED-MUG\", \"quantity\": 5}]}");
    ck_assert_int_eq(r.status, 201);
    h_resp_free(&r);
    ck_assert_stock("SKU-RED-MUG", 1000000, 5, 0);
    for (int i = 0; i < 2; i++) {
        r = release("chk_release");
        ck_assert_msg(r.status == 200, "release %d: %ld %s", i, r.status, r.body);
        ck_assert_str_eq(h_json_str(r.json, "status"), "released");
        h_resp_free(&r);
        ck_assert_stock("SKU-RED-MUG", 1000000, 0, 0);
        ck_assert_stock("SKU-LAST-ONE", 1, 0, 0);
    }
    r = commit("chk_release");
    ck_assert_int_eq(r.status, 409);
    ck_assert_str_eq(h_json_str(r.json, "error.code"), "reservation_released");
    h_resp_free(&r);
    /* the id is closed: a retry of the PUT does not silently re-reserve */
    r = reserve("chk_release", "{\"items\": [{\"sku\": \"SKU-LAST-ONE\", \"quantity\": 1}, "
                               "{\"sku\": \"SKU-RED-MUG\", \"quantity\": 5}]}");
    ck_assert_int_eq(r.status, 409);
    ck_assert_str_eq(h_json_str(r.json, "error.code"), "reservation_released");
    h_resp_free(&r);
    ck_assert_stock("SKU-LAST-ONE", 1, 0, 0);
    /* the unit is free for someone else */
    r = reserve("chk_next", "{\"items\": [{\"sku\": \"SKU-LAST-ONE\", \"quantity\": 1}]}");
    ck_assert_int_eq(r.status, 201);
    h_resp_free(&r);
    /* unknown ids */
    r = release("chk_never");
    ck_assert_int_eq(r.status, 404);
    h_resp_free(&r);
    r = commit("chk_never");
    ck_assert_int_eq(r.status, 404);
    h_resp_free(&r);
}
END_TEST

START_TEST(expired_reservation_returns_its_stock)
{
    h_resp_t r = reserve("chk_expire", "{\"items\": [{\"sku\": \"SKU-LAST-ONE\", \"quantity\": "
                                       "1}], \"ttl_seconds\": 1}");
    ck_assert_int_eq(r.status, 201);
    h_resp_free(&r);
    ck_assert_stock("SKU-LAST-ONE", 1, 1, 0);
    r = reserve("chk_rival", "{\"items\": [{\"sku\": \"SKU-LAST-ONE\", \"quantity\": 1}]}");
    ck_assert_int_eq(r.status, 409);
    h_resp_free(&r);
    usleep(1300 * 1000);
    ck_assert_stock("SKU-LAST-ONE", 1, 0, 0);
    char st[32];
    ck_assert_str_eq(status_of("chk_expire", st, sizeof st), "expired");
    r = commit("chk_expire");
    ck_assert_int_eq(r.status, 409);
    ck_assert_str_eq(h_json_str(r.json, "error.code"), "reservation_expired");
    h_resp_free(&r);
    r = reserve("chk_expire", "{\"items\": [{\"sku\": \"SKU-LAST-ONE\", \"quantity\": 1}]}");
    ck_assert_int_eq(r.status, 409);
    ck_assert_str_eq(h_json_str(r.json, "error.code"), "reservation_expired");
    h_resp_free(&r);
    /* releasing an expired reservation is a no-op success */
    r = release("chk_expire");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(h_json_str(r.json, "status"), "expired");
    h_resp_free(&r);
    ck_assert_stock("SKU-LAST-ONE", 1, 0, 0);
    r = reserve("chk_rival", "{\"items\": [{\"sku\": \"SKU-LAST-ONE\", \"quantity\": 1}]}");
    ck_assert_int_eq(r.status, 201);
    h_resp_free(&r);
    ck_assert_stock("SKU-LAST-ONE", 1, 1, 0);
}
END_TEST

START_TEST(mixed_ttls_expire_in_order_and_closed_ids_are_forgotten_after_retention)
{
    h_sandbox_t *saved = inv;
    const char *args[] = {"--catalog", DEMO_CATALOG, "--retain-seconds", "1", NULL};
    inv = h_sandbox_start("inventory", "inventory-retain", args);
    const char *ids[] = {"r_a", "r_b", "r_c", "r_d", "r_e"};
    const int ttl[] = {1, 30, 1, 4, 30};
    for (int i = 0; i < 5; i++) {
        char body[128];
        snprintf(body, sizeof body,
                 "{\"items\": [{\"sku\": \"SKU-TEAPOT\", \"quantity\": %d}], "
                 "\"ttl_seconds\": %d}",
                 i + 1, ttl[i]);
        h_resp_t r = reserve(ids[i], body);
        ck_assert_int_eq(r.status, 201);
        h_resp_free(&r);
    }
    ck_assert_stock("SKU-TEAPOT", 5000, 15, 0);
    /* take one out of the middle of the expiry order */
    h_resp_t r = release("r_b");
    ck_assert_int_eq(r.status, 200);
    h_resp_free(&r);
    r = commit("r_e");
    ck_assert_int_eq(r.status, 200);
    h_resp_free(&r);
    ck_assert_stock("SKU-TEAPOT", 4995, 8, 5);
    usleep(1300 * 1000);
    /* a and c (ttl 1) expired; d (ttl 4) still holds its 4 */
    ck_assert_stock("SKU-TEAPOT", 4995, 4, 5);
    char st[32];
    ck_assert_str_eq(status_of("r_a", st, sizeof st), "expired");
    ck_assert_str_eq(status_of("r_d", st, sizeof st), "reserved");
    /* b, e (closed over 1 s ago) are forgotten; a and c closed just now */
    ck_assert_str_eq(status_of("r_b", st, sizeof st), "missing");
    ck_assert_str_eq(status_of("r_e", st, sizeof st), "missing");
    usleep(1200 * 1000);
    ck_assert_str_eq(status_of("r_a", st, sizeof st), "missing");
    ck_assert_str_eq(status_of("r_c", st, sizeof st), "missing");
    ck_assert_str_eq(status_of("r_d", st, sizeof st), "reserved");
    /* a forgotten id is new again */
    r = reserve("r_b", "{\"items\": [{\"sku\": \"SKU-TEAPOT\", \"quantity\": 1}]}");
    ck_assert_int_eq(r.status, 201);
    h_resp_free(&r);
    ck_assert_stock("SKU-TEAPOT", 4995, 5, 5);
    usleep(1800 * 1000);
    ck_assert_str_eq(status_of("r_d", st, sizeof st), "expired");
    ck_assert_stock("SKU-TEAPOT", 4995, 1, 5);
    h_sandbox_stop(inv);
    inv = saved;
}
END_TEST

START_TEST(reply_lost_after_processing_then_retry_under_same_id_replays)
{
    /* the failure before processing changes nothing */
    h_sandbox_faults(inv, "{\"mode\": \"error_500\"}");
    h_resp_t r = reserve("chk_lost", "{\"items\": [{\"sku\": \"SKU-LAST-ONE\", \"quantity\": 1}]}");
    ck_assert_int_eq(r.status, 500);
    h_resp_free(&r);
    ck_assert_stock("SKU-LAST-ONE", 1, 0, 0);
    /* after processing: the unit is held though the caller saw a failure */
    h_sandbox_faults(inv, "{\"mode\": \"reset\", \"after_processing\": true}");
    r = reserve("chk_lost", "{\"items\": [{\"sku\": \"SKU-LAST-ONE\", \"quantity\": 1}]}");
    ck_assert_int_ne(r.net, HTTPC_OK);
    h_resp_free(&r);
    ck_assert_stock("SKU-LAST-ONE", 1, 1, 0);
    h_sandbox_faults(inv, "{\"mode\": \"error_500\", \"after_processing\": true}");
    r = commit("chk_lost");
    ck_assert_int_eq(r.status, 500);
    h_resp_free(&r);
    ck_assert_stock("SKU-LAST-ONE", 0, 0, 1);
    /* retries under the same id find the work done, without doing it twice */
    h_sandbox_faults(inv, "{\"mode\": \"none\"}");
    r = reserve("chk_lost", "{\"items\": [{\"sku\": \"SKU-LAST-ONE\", \"quantity\": 1}]}");
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_str_eq(h_json_str(r.json, "status"), "committed");
    h_resp_free(&r);
    r = commit("chk_lost");
    ck_assert_int_eq(r.status, 200);
    h_resp_free(&r);
    ck_assert_stock("SKU-LAST-ONE", 0, 0, 1);
}
END_TEST

/* ---------------------------------------------------------- concurrency */

#define RACERS 50

typedef struct {
    int i;
    const char *sku;
    pthread_barrier_t *go;
    long status;
    char body[512];
} racer_t;

static void *race(void *arg)
{
    racer_t *rc = arg;
    char id[64], body[128];
    snprintf(id, sizeof id, "chk_race_%s_%d", rc->sku, rc->i);
    snprintf(body, sizeof body, "{\"items\": [{\"sku\": \"%s\", \"quantity\": 1}]}", rc->sku);
    pthread_barrier_wait(rc->go);
    h_resp_t r = reserve(id, body);
    rc->status = r.status;
    snprintf(rc->body, sizeof rc->body, "%s", r.body);
    h_resp_free(&r);
    return NULL;
}

/* Starts RACERS parallel reservations of one unit of sku; returns the number
 * of 201s and asserts every other answer is a 409 naming the SKU. */
static int race_for(const char *sku)
{
    pthread_t th[RACERS];
    racer_t rc[RACERS];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, RACERS);
    for (int i = 0; i < RACERS; i++) {
        rc[i] = (racer_t){.i = i, .sku = sku, .go = &go};
        ck_assert_int_eq(pthread_create(&th[i], NULL, race, &rc[i]), 0);
    }
    for (int i = 0; i < RACERS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&go);
    int won = 0;
    for (int i = 0; i < RACERS; i++) {
        if (rc[i].status == 201) {
            won++;
            continue;
        }
        ck_assert_msg(rc[i].status == 409, "racer %d: %ld %s", i, rc[i].status, rc[i].body);
        json_t *j = json_loads(rc[i].body, 0, NULL);
        ck_assert_ptr_nonnull(j);
        ck_assert_int_eq(json_array_size(json_object_get(j, "unavailable")), 1);
        ck_assert_str_eq(h_json_str(j, "unavailable.0.sku"), sku);
        ck_assert_int_eq(h_json_int(j, "unavailable.0.requested"), 1);
        ck_assert_int_eq(h_json_int(j, "unavailable.0.available"), 0);
        json_decref(j);
    }
    return won;
}

START_TEST(fifty_parallel_reservations_of_last_one_exactly_one_succeeds)
{
    ck_assert_int_eq(race_for("SKU-LAST-ONE"), 1);
    ck_assert_stock("SKU-LAST-ONE", 1, 1, 0);
    /* the same with seven units: exactly seven win */
    set_stock("SKU-WATCH", 7, 200);
    ck_assert_int_eq(race_for("SKU-WATCH"), 7);
    ck_assert_stock("SKU-WATCH", 7, 7, 0);
}
END_TEST

START_TEST(stock_control_route_sets_levels)
{
    set_stock("SKU-SOLD-OUT", 3, 200);
    h_resp_t r = reserve("chk_restock", "{\"items\": [{\"sku\": \"SKU-SOLD-OUT\", \"quantity\": "
                                        "3}]}");
    ck_assert_int_eq(r.status, 201);
    h_resp_free(&r);
    ck_assert_stock("SKU-SOLD-OUT", 3, 3, 0);
    set_stock("SKU-SOLD-OUT", 2, 409); /* below what is held */
    set_stock("SKU-SOLD-OUT", 10, 200);
    ck_assert_stock("SKU-SOLD-OUT", 10, 3, 0);
    set_stock("SKU-NO-SUCH", 1, 404);
    char url[256];
    snprintf(url, sizeof url, "%s/_sandbox/stock", inv->control_url);
    r = h_http("POST", url, NULL, "{\"sku\": \"SKU-SOLD-OUT\", \"on_hand\": -1}", NULL);
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(h_json_str(r.json, "error.param"), "on_hand");
    h_resp_free(&r);
}
END_TEST

START_TEST(bad_input_is_400_naming_the_field)
{
    struct {
        const char *id, *body, *param;
    } cases[] = {
        {"chk_b", "{\"items\": [{\"sku\": \"SKU-RED-MUG\", \"quantity\": 0}]}",
         "items[0].quantity"},
        {"chk_b", "{\"items\": [{\"sku\": \"SKU-RED-MUG\", \"quantity\": 1001}]}",
         "items[0].quantity"},
        {"chk_b", "{\"items\": [{\"sku\": \"SKU-RED-MUG\"}]}", "items[0].quantity"},
        {"chk_b", "{\"items\": []}", "items"},
        {"chk_b", "{\"ttl_seconds\": 60}", "items"},
        {"chk_b", "{\"items\": [{\"sku\": \"SKU-RED-MUG\", \"quantity\": 1}], \"ttl_seconds\": 0}",
         "ttl_seconds"},
        {"chk_b", "{\"items\": [{\"sku\": \"SKU-RED-MUG\", \"quantity\": 1}], \"price\": 1}",
         "price"},
        {"chk_b",
         "{\"items\": [{\"sku\": \"SKU-RED-MUG\", \"quantity\": 1}, {\"sku\": \"SKU-RED-MUG\", "
         "\"quantity\": 1}]}",
         "items[1].sku"},
        {"chk_b", "not json", "body"},
        {"bad%20id", "{\"items\": [{\"sku\": \"SKU-RED-MUG\", \"quantity\": 1}]}", "id"},
    };
    for (size_t i = 0; i < PC_ARRAY_LEN(cases); i++) {
        h_resp_t r = reserve(cases[i].id, cases[i].body);
        ck_assert_msg(r.status == 400, "%s -> %ld %s", cases[i].body, r.status, r.body);
        ck_assert_msg(h_json_str(r.json, "error.param") &&
                          !strcmp(h_json_str(r.json, "error.param"), cases[i].param),
                      "%s: expected param %s: %s", cases[i].body, cases[i].param, r.body);
        h_resp_free(&r);
    }
    h_resp_t r = reserve("chk_b", "{\"items\": [{\"sku\": \"SKU-RED-MUG\", \"quantity\": 1}, "
                                  "{\"sku\": \"SKU-NO-SUCH\", \"quantity\": 1}]}");
    ck_assert_int_eq(r.status, 422);
    ck_assert_str_eq(h_json_str(r.json, "error.code"), "unknown_sku");
    ck_assert_str_eq(h_json_str(r.json, "error.sku"), "SKU-NO-SUCH");
    ck_assert_str_eq(h_json_str(r.json, "error.param"), "items[1].sku");
    h_resp_free(&r);
    ck_assert_stock("SKU-RED-MUG", 1000000, 0, 0);
    r = call("GET", "/v1/reservations/chk_b", NULL);
    ck_assert_int_eq(r.status, 405);
    h_resp_free(&r);
    r = call("POST", "/v1/reservations/chk_b/cancel", NULL);
    ck_assert_int_eq(r.status, 404);
    h_resp_free(&r);
}
END_TEST

int main(void)
{
    h_init("it_platform_inventory");
    Suite *s = suite_create("platform_inventory");
    TCase *tc = h_tcase("inventory", 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, reservation_create_then_replay_returns_the_same_reservation);
    tcase_add_test(tc, same_id_with_other_items_is_422_and_changes_nothing);
    tcase_add_test(tc, short_cart_is_409_naming_every_short_line_and_reserves_nothing);
    tcase_add_test(tc, commit_sells_the_units_and_is_idempotent);
    tcase_add_test(tc, release_returns_the_units_and_is_idempotent);
    tcase_add_test(tc, expired_reservation_returns_its_stock);
    tcase_add_test(tc, mixed_ttls_expire_in_order_and_closed_ids_are_forgotten_after_retention);
    tcase_add_test(tc, reply_lost_after_processing_then_retry_under_same_id_replays);
    tcase_add_test(tc, fifty_parallel_reservations_of_last_one_exactly_one_succeeds);
    tcase_add_test(tc, stock_control_route_sets_levels);
    tcase_add_test(tc, bad_input_is_400_naming_the_field);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
