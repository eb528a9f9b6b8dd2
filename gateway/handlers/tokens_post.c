/* POST /v1/tokens: turn a card into a token in the vault. The card number
 * and CVC pass through gatewayd only on their way to vaultd: they are never
 * logged or echoed, the JSON strings holding them are wiped right after the
 * vault call, and the raw request body is wiped before it is freed. */
#include "gateway/handlers/handlers.h"
#include "gateway/db/gwdb.h"
#include "vault/vault.h"
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

typedef struct {
    gw_request_t *rq;
    const char *number, *cvc, *name;
    int64_t exp_month, exp_year;
    json_t *card;
} tok_ctx_t;

static void wipe_str(const char *s)
{
    if (s)
        sodium_memzero((char *)s, strlen(s)); /* jansson's own heap copy */
}

static void tok_ctx_free(void *p)
{
    tok_ctx_t *t = p;
    wipe_str(t->number);
    wipe_str(t->cvc);
    if (t->rq->body)
        sodium_memzero(t->rq->body, t->rq->body_len);
    free(t);
}

static bool has_control(const char *s)
{
    for (; s && *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

static const char *check_name(const json_t *v)
{
    return has_control(json_string_value(v)) ? "must not contain control characters" : NULL;
}

/* Which expiry field to blame: the month when it is not a month or when
 * the year is the current one, else the year. */
static const char *expiry_param(int64_t month, int64_t year)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    if (year >= 0 && year < 100)
        year += 2000;
    return month < 1 || month > 12 || year == tm.tm_year + 1900 ? "card.exp_month"
                                                                : "card.exp_year";
}

static enum MHD_Result reply_card(gw_request_t *rq, const vault_card_meta_t *m)
{
    return gw_reply_json(rq, 201,
                         json_pack("{s:s, s:{s:s, s:s, s:s, s:i, s:i, s:s}}", "id", m->token,
                                   "card", "brand", m->brand, "last4", m->last4, "bin", m->bin,
                                   "exp_month", m->exp_month, "exp_year", m->exp_year,
                                   "fingerprint", m->fingerprint));
}

/* A refused card number counts against the client IP's velocity: many
 * refusals from one source is what card testing looks like. */
static void count_token_failure(gw_request_t *rq)
{
    db_conn_t *c = db_pool_acquire(gw.db);
    if (!c)
        return;
    fraud_event_t ev = {.keys = {.merchant_id = rq->auth.merchant_id, .ip = rq->client_ip},
                        .token_failure = true};
    if (fraud_velocity_record(c, &ev) != DB_OK)
        log_warn("could not count a tokenization failure");
    db_pool_release(c);
}

static enum MHD_Result reply_status(gw_request_t *rq, tok_ctx_t *t, vault_status_t s)
{
    if (s == VAULT_INVALID_NUMBER || s == VAULT_INVALID_EXPIRY || s == VAULT_INVALID_CVC)
        count_token_failure(rq);
    switch (s) {
    case VAULT_INVALID_NUMBER:
        return gw_reply_error(rq, ERR_INVALID_NUMBER, "card.number", NULL);
    case VAULT_INVALID_EXPIRY:
        return gw_reply_error(rq, ERR_INVALID_EXPIRY, expiry_param(t->exp_month, t->exp_year),
                              NULL);
    case VAULT_INVALID_CVC:
        return gw_reply_error(rq, ERR_INVALID_CVC, "card.cvc", NULL);
    case VAULT_UNAVAILABLE:
        return gw_reply_error(rq, ERR_VAULT_UNAVAILABLE, NULL, NULL);
    default:
        log_json(LOG_ERROR, "tokenization failed in the vault",
                 json_pack("{s:s, s:s, s:s}", "request_id", rq->request_id, "merchant_id",
                           rq->auth.merchant_id, "vault_status", vault_status_str(s)));
        return gw_reply_error(rq, ERR_INTERNAL, NULL, NULL);
    }
}

enum MHD_Result handle_tokens_post(gw_request_t *rq)
{
    tok_ctx_t *t = calloc(1, sizeof *t);
    if (!t)
        return gw_reply_error(rq, ERR_INTERNAL, NULL, NULL);
    t->rq = rq;
    rq->ctx = t;
    rq->ctx_free = tok_ctx_free;
    int retry = 1;
    if (!gw_rate_ok(&gw_rate_tokens, rq, &retry))
        return gw_reply_rate_limited(rq, retry);
    /* Number and CVC contents are the vault's to judge (card_error); here
     * only their JSON types are checked. */
    const jspec_field_t card_spec[] = {
        JSPEC_STR("number", JSPEC_REQUIRED, 0, 0, &t->number),
        JSPEC_I64("exp_month", JSPEC_REQUIRED, 0, 0, &t->exp_month),
        JSPEC_I64("exp_year", JSPEC_REQUIRED, 0, 0, &t->exp_year),
        JSPEC_STR("cvc", JSPEC_NULLABLE, 0, 0, &t->cvc),
        {.name = "name",
         .type = JSPEC_STRING,
         .flags = JSPEC_NULLABLE,
         .min = 1,
         .max = 127,
         .dest = &t->name,
         .check = check_name},
        JSPEC_END,
    };
    const jspec_field_t spec[] = {
        JSPEC_OBJ("card", JSPEC_REQUIRED, card_spec, &t->card),
        JSPEC_END,
    };
    jspec_error_t je;
    if (!jspec_parse(rq->json, spec, "", &je))
        return gw_reply_jspec(rq, &je);
    if (t->exp_month < 0 || t->exp_month > 9999 || t->exp_year < 0 || t->exp_year > 9999)
        return reply_status(rq, t, VAULT_INVALID_EXPIRY);
    if (!gw_vault())
        return gw_reply_error(rq, ERR_VAULT_UNAVAILABLE, NULL, NULL);
    vault_card_meta_t meta;
    vault_status_t s = vault_tokenize(gw_vault(), rq->auth.merchant_id, t->number,
                                      (int)t->exp_month, (int)t->exp_year, t->cvc, t->name, &meta);
    wipe_str(t->number);
    wipe_str(t->cvc);
    t->number = t->cvc = NULL;
    return s == VAULT_OK ? reply_card(rq, &meta) : reply_status(rq, t, s);
}
