/* Finishing a checkout from a payment outcome: the one mapping from a
 * provider result to checkout, payment, order, reservation, event and
 * stored response, shared by the request path, the recovery worker and the
 * review queue so that all of them finish a checkout the same way. */
#include "gateway/checkout_flow.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static err_code_t decline_code(const char *reason)
{
    err_code_t e = err_by_code(reason);
    if (e < ERR__COUNT && err_http_status(e) == 402 && !strcmp(err_type(e), "card_error"))
        return e;
    return ERR_CARD_DECLINED;
}

static char *error_json(err_code_t e, const char *decline_code_raw)
{
    json_t *j = json_pack("{s:s, s:s, s:s}", "type", err_type(e), "code", err_code_str(e),
                          "message", err_message(e));
    if (decline_code_raw && *decline_code_raw)
        json_object_set_new(j, "decline_code", json_string(decline_code_raw));
    char *s = json_dumps_compact(j);
    json_decref(j);
    return s;
}

void gw_finish_plan(const gw_finish_ctx_t *fc, const prv_result_t *res, gw_finish_plan_t *pl)
{
    memset(pl, 0, sizeof *pl);
    gwdb_checkout_finish_t *f = &pl->f;
    f->checkout_id = fc->checkout_id;
    f->attempt_seq = fc->attempt_seq;
    f->provider = fc->provider;
    f->provider_ref = res->provider_ref;
    f->attempt_ref = res->provider_ref;
    f->attempt_reason = res->reason;
    f->attempt_hard = res->hard;
    switch (res->outcome) {
    case PRV_AUTHORIZED:
    case PRV_CAPTURED: {
        bool captured = res->outcome == PRV_CAPTURED;
        /* The attempt's outcome is the provider's answer to the
         * authorization (API.md: "outcome": "authorized"); whether the
         * money was also captured is the payment's status. */
        f->attempt_state = "authorized";
        f->attempt_reason = NULL;
        f->payment_status = captured ? "captured" : "authorized";
        f->captured = captured ? fc->amount : 0;
        f->http = 200;
        if (fc->review) {
            f->status = "requires_review";
            f->reservation = "reserved";
            f->event_type = "checkout.requires_review";
        } else {
            f->status = "succeeded";
            ids_new(pl->order_id, sizeof pl->order_id, "ord_");
            f->order_id = pl->order_id;
            f->reservation = "commit";
            f->event_type = "order.confirmed";
        }
        break;
    }
    case PRV_DECLINED:
        f->attempt_state = "declined";
        f->status = "declined";
        f->payment_status = "declined";
        f->http = 402;
        f->reservation = "release";
        f->event_type = "checkout.declined";
        pl->error = error_json(decline_code(res->reason), res->provider_code);
        pl->declined = true;
        break;
    case PRV_UNKNOWN:
        f->attempt_state = "unknown";
        f->status = "processing";
        f->payment_status = "processing";
        f->http = 202;
        f->reservation = "reserved";
        f->event_type = NULL;
        break;
    default: /* unavailable everywhere */
        f->attempt_state = "unavailable";
        f->status = "failed";
        f->payment_status = "failed";
        f->http = 503;
        f->reservation = "release";
        f->event_type = "checkout.failed";
        pl->error = error_json(ERR_PROVIDERS_UNAVAILABLE, NULL);
        break;
    }
    f->error_json = pl->error;
}

void gw_finish_plan_free(gw_finish_plan_t *pl)
{
    free(pl->error);
    pl->error = NULL;
}

typedef struct {
    const gw_finish_ctx_t *fc;
    gw_finish_plan_t *pl;
    gwdb_finish_result_t *out;
} finish_txn_t;

static db_status_t finish_txn(db_conn_t *c, void *cls)
{
    finish_txn_t *t = cls;
    free(t->out->body);
    t->out->body = NULL;
    return db_checkout_finish(c, &t->pl->f, t->out);
}

db_status_t gw_finish_run(const gw_finish_ctx_t *fc, gw_finish_plan_t *pl,
                          gwdb_finish_result_t *out)
{
    memset(out, 0, sizeof *out);
    finish_txn_t t = {.fc = fc, .pl = pl, .out = out};
    pl->f.vel = fc->velocity;
    /* one statement, its own transaction: one round trip for commit 2 */
    db_status_t s = db_txn_run(gw.db, DB_AUTOCOMMIT, "checkout_finish", finish_txn, &t);
    if (s == DB_OK)
        gw_outbox_kick();
    return s;
}

db_status_t gw_checkout_finish_outcome(const gw_finish_ctx_t *fc, const prv_result_t *res,
                                       gwdb_finish_result_t *out)
{
    gw_finish_plan_t pl;
    gw_finish_plan(fc, res, &pl);
    db_status_t s = gw_finish_run(fc, &pl, out);
    gw_finish_plan_free(&pl);
    return s;
}

/* A checkout that ends before any provider was called (out of stock,
 * inventory down): the first attempt was never sent. */
db_status_t gw_checkout_finish_early(const char *checkout_id, const char *status, int http,
                                     err_code_t e, json_t *extra, const char *reservation,
                                     gwdb_finish_result_t *out)
{
    json_t *err = json_pack("{s:s, s:s, s:s}", "type", err_type(e), "code", err_code_str(e),
                            "message", err_message(e));
    if (extra)
        json_object_update(err, extra);
    char *ej = json_dumps_compact(err);
    json_decref(err);
    gw_finish_plan_t pl = {0};
    pl.error = ej;
    gwdb_checkout_finish_t *f = &pl.f;
    f->checkout_id = checkout_id;
    f->status = status;
    f->http = http;
    f->attempt_seq = 1;
    f->attempt_state = "skipped";
    f->payment_status = "failed";
    f->reservation = reservation;
    f->error_json = ej;
    f->event_type = "checkout.failed";
    gw_finish_ctx_t fc = {.checkout_id = checkout_id};
    db_status_t s = gw_finish_run(&fc, &pl, out);
    gw_finish_plan_free(&pl);
    return s;
}
