/* Shared helpers of the lost-COMMIT integration tests (it_lost_commit*.c):
 * the stack with a daemon's database connections through pgproxy, requests,
 * Idempotency-Keys, and the counts and receiver checks that tell a
 * transaction ran once although its COMMIT answer was lost.
 *
 * Started inside the test, not in a fixture: the proxies' threads live in
 * the test's process, which Check forks per test. */
#ifndef PORTCULLIS_LOSTCOMMIT_H
#define PORTCULLIS_LOSTCOMMIT_H

#include "tests/harness/pgproxy.h"
#include "tests/harness/stack.h"
#include <string.h>

typedef struct {
    h_stack_t *st;
    pgproxy_t *px;  /* gatewayd 0's database connections (pool and LISTEN) */
    pgproxy_t *vpx; /* vaultd's, when lc_start_with was asked for them; else NULL */
} lc_t;

/* A proxy to the fixture cluster; asserts it started. */
pgproxy_t *lc_proxy_start(void);
/* The stack, then (if vault) vaultd restarted with its database through a
 * proxy of its own, then gateway 0 restarted through another. Asserts that
 * each daemon really connects through its proxy. */
lc_t lc_start_with(const h_stack_opts_t *o, bool vault);
lc_t lc_start(const h_stack_opts_t *o); /* lc_start_with(o, false) */
void lc_stop(lc_t *t);

/* A request to gateway 0 with the merchant's sk; key NULL sends no
 * Idempotency-Key. */
h_resp_t lc_sk_send(h_stack_t *st, const char *method, const char *path, const char *body,
                    const char *key);
/* POST /v1/payments/{pay}/{op} ("capture", "void", "refunds"). */
h_resp_t lc_pay_op(h_stack_t *st, const char *pay, const char *op, const char *body,
                   const char *key);
/* An Idempotency-Key naming what the test loses (malloc'd). Unique per
 * process only: each test has a database of its own. */
char *lc_key(const char *what);

/* A checkout request to send, and to replay byte for byte: a fresh token of
 * 4242 4242 4242 4242, a body for one SKU-RED-MUG (extra merged in, may be
 * NULL) and an Idempotency-Key. */
typedef struct {
    char *tok, *body, *key;
} lc_checkout_t;
lc_checkout_t lc_checkout_new(h_stack_t *st, const char *extra, const char *what);
h_resp_t lc_checkout_send(h_stack_t *st, const lc_checkout_t *c); /* on gateway 0 */
void lc_checkout_free(lc_checkout_t *c);

/* A paid checkout of one SKU-RED-MUG with pan; asserts 200 and returns the
 * checkout id (malloc'd). */
char *lc_paid_checkout(h_stack_t *st, const char *pan);

/* A payment to operate on (capture, void, refund): a checkout of one
 * SKU-RED-MUG paid with 4242 4242 4242 4242 (extra as for
 * h_stack_checkout_body), asserted 200 and, unless status is NULL, with
 * that payment.status; and an Idempotency-Key for the operation. */
typedef struct {
    char *pay, *chk, *key;
    json_int_t amount; /* payment.amount */
} lc_payment_t;
lc_payment_t lc_payment_new(h_stack_t *st, const char *extra, const char *status, const char *what);
void lc_payment_free(lc_payment_t *p);

/* The webhook receiver's deliveries of `type` about object id (data.id):
 * how many distinct events, and in *deliveries (may be NULL) how many
 * deliveries in all. */
int lc_received(h_stack_t *st, const char *type, const char *id, long *deliveries);
/* Waits until the receiver has `want` deliveries of type about id;
 * returns the deliveries it has. */
long lc_wait_deliveries(h_stack_t *st, const char *type, const char *id, long want, int timeout_ms);
/* Waits for a first delivery; returns how many distinct events there are. */
int lc_wait_received(h_stack_t *st, const char *type, const char *id, int timeout_ms);
/* Exactly one event of type about id, delivered exactly `want` times. It
 * sleeps 700 ms after the wait: a duplicate cannot be seen the moment the
 * first arrives, and a fixed pause is the price of catching one. */
void lc_assert_delivered(h_stack_t *st, const char *type, const char *id, long want);
long lc_bad_signatures(h_stack_t *st); /* deliveries the receiver rejected */

/* Counts in the test database. */
long lc_count(h_stack_t *st, const char *sql); /* the first cell of sql */
long lc_events(h_stack_t *st, const char *type);
long lc_audits(h_stack_t *st, const char *action);

/* Asserts that the first cell of the query (printf-style) is want. A macro,
 * not a function, so that a failure names the test's line. */
#define lc_assert_sql_str(db, want, ...)                                                           \
    do {                                                                                           \
        char *got_ = h_sql(db, __VA_ARGS__);                                                       \
        ck_assert_msg(got_ && !strcmp(got_, want), "expected %s, got %s", want,                    \
                      got_ ? got_ : "NULL");                                                       \
        free(got_);                                                                                \
    } while (0)

/* The key's stored answer is done with this status and, unless body is
 * NULL, is body to the byte. */
void lc_assert_stored_answer(h_stack_t *st, const char *key, long status, const char *body);
/* A replay of the request that gave `first`: the same status and body.
 * Frees again (pass the request's call straight in). */
void lc_assert_replay(h_resp_t again, const h_resp_t *first);

#endif
