/* Outbox claiming and results. A claim is one statement (its own short
 * transaction): due rows are picked with FOR UPDATE SKIP LOCKED, so any
 * number of instances can dispatch, and pushed into the future by a lease,
 * so a crashed dispatcher's rows come due again on their own. Deliveries run
 * with no transaction open, and their results are one more statement. */
#include "gateway/outbox.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Why not hold the row locks through the deliveries (one write per delivery
 * instead of two): a batch can take longer than the database lets a session
 * sit idle in a transaction (idle_in_transaction_session_timeout), and a
 * receiver that never answers would then get its rows claimed again, for
 * ever, ahead of everyone else's, with attempts never counted. */
DB_STMT(outbox_claim,
        "WITH due AS (SELECT id FROM gateway.outbox WHERE state = 'pending' "
        "  AND next_attempt_at <= now() AND (leased_until IS NULL OR leased_until <= now()) "
        "  ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED), "
        "leased AS (UPDATE gateway.outbox o "
        "  SET leased_until = now() + make_interval(secs => $3::int) "
        "  FROM due WHERE o.id = due.id RETURNING o.*) "
        "SELECT o.id, o.kind, o.merchant_id, COALESCE(o.event_id, ''), "
        " COALESCE(o.endpoint_id, ''), COALESCE(w.url, o.target), o.attempts + 1, "
        " (o.created_at < now() - make_interval(secs => $2::bigint)), "
        " ev.type, to_char(ev.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
        " ev.data::text, w.secret_sealed, "
        " CASE WHEN w.previous_expires_at > now() THEN w.previous_sealed END, "
        " (extract(epoch FROM o.leased_until) * 1000000)::bigint, "
        " extract(epoch FROM now() - o.created_at)::bigint, o.outcome_unknown "
        "FROM leased o "
        "LEFT JOIN gateway.events ev ON ev.id = o.event_id "
        "LEFT JOIN gateway.webhook_endpoints w ON w.merchant_id = o.merchant_id AND w.id = "
        "o.endpoint_id "
        "ORDER BY o.id");

static char *dup_or_null(const PGresult *r, int i, int col)
{
    const char *s = db_str(r, i, col);
    return s ? strdup(s) : NULL;
}

db_status_t db_outbox_claim(db_conn_t *c, int limit, int64_t max_age_s, int lease_s,
                            outbox_item_t **items, int *n)
{
    db_params_t p;
    db_params_init(&p);
    db_param_int(&p, limit);
    db_param_int(&p, max_age_s);
    db_param_int(&p, lease_s);
    PGresult *r;
    *n = 0;
    *items = NULL;
    db_status_t s = db_exec(c, &outbox_claim, &p, &r);
    if (s != DB_OK)
        return s;
    int rows = PQntuples(r);
    outbox_item_t *it = calloc(rows ? (size_t)rows : 1, sizeof *it);
    for (int i = 0; i < rows; i++) {
        it[i].id = db_i64(r, i, 0);
        const char *kind = db_str(r, i, 1);
        it[i].kind = !strcmp(kind, "event")              ? OUTBOX_EVENT
                     : !strcmp(kind, "inventory_commit") ? OUTBOX_INVENTORY_COMMIT
                                                         : OUTBOX_INVENTORY_RELEASE;
        snprintf(it[i].merchant_id, sizeof it[i].merchant_id, "%s", db_str(r, i, 2));
        snprintf(it[i].event_id, sizeof it[i].event_id, "%s", db_str(r, i, 3));
        snprintf(it[i].endpoint_id, sizeof it[i].endpoint_id, "%s", db_str(r, i, 4));
        it[i].target = dup_or_null(r, i, 5);
        it[i].attempts = (int)db_i64(r, i, 6);
        it[i].too_old = db_bool(r, i, 7);
        it[i].ev_type = dup_or_null(r, i, 8);
        snprintf(it[i].ev_created, sizeof it[i].ev_created, "%s",
                 db_str(r, i, 9) ? db_str(r, i, 9) : "");
        it[i].ev_data = dup_or_null(r, i, 10);
        it[i].secret_sealed = dup_or_null(r, i, 11);
        it[i].previous_sealed = dup_or_null(r, i, 12);
        it[i].lease = db_i64(r, i, 13);
        it[i].age_s = db_i64(r, i, 14);
        it[i].maybe_done = db_bool(r, i, 15);
    }
    PQclear(r);
    *items = it;
    *n = rows;
    return DB_OK;
}

DB_STMT(outbox_results,
        "WITH v AS (SELECT * FROM unnest($1::bigint[], $2::text[], $3::double precision[], "
        " $4::text[], $5::bigint[], $6::boolean[]) AS v(id, state, delay, err, lease, unknown)), "
        "upd AS (UPDATE gateway.outbox o SET state = v.state, leased_until = NULL, "
        " last_error = CASE WHEN v.delay < 0 THEN o.last_error ELSE v.err END, "
        " attempts = o.attempts + CASE WHEN v.delay < 0 THEN 0 ELSE 1 END, "
        " next_attempt_at = CASE WHEN v.state = 'pending' THEN now() + make_interval(secs => "
        "GREATEST(v.delay, 0)) "
        "   ELSE o.next_attempt_at END, "
        " delivered_at = CASE WHEN v.state = 'delivered' THEN now() END, "
        " outcome_unknown = o.outcome_unknown OR v.unknown "
        " FROM v WHERE o.id = v.id AND o.state = 'pending' "
        "  AND (extract(epoch FROM o.leased_until) * 1000000)::bigint = v.lease "
        " RETURNING o.kind, o.target, o.state) "
        "UPDATE gateway.checkouts c SET reservation_state = CASE upd.kind "
        "  WHEN 'inventory_commit' THEN 'committed' ELSE 'released' END, updated_at = now() "
        "FROM upd WHERE upd.state = 'delivered' AND upd.kind <> 'event' "
        " AND c.reservation_id = upd.target AND c.reservation_state IN ('pending', 'reserved')");

db_status_t db_outbox_results(db_conn_t *c, const outbox_item_t *items, int n)
{
    char **ids = calloc((size_t)n, sizeof *ids), **delays = calloc((size_t)n, sizeof *delays);
    char **leases = calloc((size_t)n, sizeof *leases);
    const char **unknown = calloc((size_t)n, sizeof *unknown);
    const char **states = calloc((size_t)n, sizeof *states), **errs = calloc((size_t)n, sizeof *errs);
    for (int i = 0; i < n; i++) {
        ids[i] = str_printf("%lld", (long long)items[i].id);
        delays[i] = str_printf("%.3f", items[i].retry_in_s);
        leases[i] = str_printf("%lld", (long long)items[i].lease);
        unknown[i] = items[i].unknown_now ? "t" : "f";
        states[i] = items[i].result == OUTBOX_DELIVERED ? "delivered"
                    : items[i].result == OUTBOX_FAILED  ? "failed"
                                                        : "pending";
        errs[i] = items[i].error[0] ? items[i].error : NULL;
    }
    char *a1 = db_text_array((const char *const *)ids, n);
    char *a2 = db_text_array(states, n);
    char *a3 = db_text_array((const char *const *)delays, n);
    char *a4 = db_text_array(errs, n);
    char *a5 = db_text_array((const char *const *)leases, n);
    char *a6 = db_text_array(unknown, n);
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, a1);
    db_param_text(&p, a2);
    db_param_text(&p, a3);
    db_param_text(&p, a4);
    db_param_text(&p, a5);
    db_param_text(&p, a6);
    PGresult *r;
    db_status_t s = db_exec(c, &outbox_results, &p, &r);
    PQclear(r);
    for (int i = 0; i < n; i++) {
        free(ids[i]);
        free(delays[i]);
        free(leases[i]);
    }
    free(ids);
    free(delays);
    free(leases);
    free(unknown);
    free(states);
    free(errs);
    free(a1);
    free(a2);
    free(a3);
    free(a4);
    free(a5);
    free(a6);
    return s;
}

DB_STMT(outbox_reservation_owner,
        "SELECT id, merchant_id FROM gateway.checkouts WHERE reservation_id = $1");

db_status_t db_outbox_reservation_owner(db_conn_t *c, const char *reservation_id,
                                        char checkout_id[IDS_MAX], char merchant_id[IDS_MAX])
{
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, reservation_id);
    PGresult *r;
    db_status_t s = db_exec(c, &outbox_reservation_owner, &p, &r);
    if (s != DB_OK)
        return s;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return DB_NOT_FOUND;
    }
    snprintf(checkout_id, IDS_MAX, "%s", db_str(r, 0, 0));
    snprintf(merchant_id, IDS_MAX, "%s", db_str(r, 0, 1));
    PQclear(r);
    return DB_OK;
}

DB_STMT(outbox_cancel_endpoint,
        "UPDATE gateway.outbox SET state = 'failed', last_error = 'endpoint disabled' "
        "WHERE merchant_id = $1 AND endpoint_id = $2 AND state = 'pending'");

db_status_t db_outbox_cancel_endpoint(db_conn_t *c, const char *merchant_id,
                                      const char *endpoint_id)
{
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, merchant_id);
    db_param_text(&p, endpoint_id);
    PGresult *r;
    db_status_t s = db_exec(c, &outbox_cancel_endpoint, &p, &r);
    PQclear(r);
    return s;
}
