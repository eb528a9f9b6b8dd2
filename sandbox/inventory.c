/* sandbox-inventory: the reference inventory service. gatewayd reserves a
 * cart under an id of its own (PUT /v1/reservations/{id}), commits it when
 * the order is paid and releases it when it is not; reservations expire after
 * their TTL and their stock returns. Stock comes from the catalog file's
 * "stock" per SKU (the format is described in sandbox/pricing.c).
 *
 * Per SKU: on_hand (units not yet sold), reserved (held by live
 * reservations, always <= on_hand), committed (sold so far); available =
 * on_hand - reserved. Commit moves a reservation's units out of on_hand and
 * reserved into committed.
 *
 * All state sits behind one mutex held for O(lines) work: a reservation must
 * take every line or none, and a per-SKU lock scheme would need ordered
 * acquisition for a gain the 2-core benchmark machine cannot show. JSON is
 * parsed and written outside the lock. Expiry is lazy but exact: every
 * operation first expires what is due (an indexed min-heap on the monotonic
 * clock), so nobody can observe stock held by an expired reservation.
 * Closed reservations (committed, released, expired) are remembered for
 * --retain-seconds (default 3600) so replays answer consistently, then freed. */
#include "sandbox/sandbox.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LINES       100
#define MAX_QUANTITY    1000
#define MAX_SKU_LEN     64
#define MAX_ID_LEN      128
#define MAX_STOCK       INT64_C(1000000000000)
#define MAX_TTL_SECONDS 86400
#define DEFAULT_TTL     900

typedef struct {
    const char *sku; /* borrowed from the catalog document */
    int64_t on_hand, reserved, committed;
} stock_t;

typedef struct {
    uint32_t idx; /* into stock[] */
    uint32_t quantity;
} line_t;

typedef enum { R_RESERVED = 0, R_COMMITTED, R_RELEASED, R_EXPIRED } rstate_t;
static const char *state_names[] = {"reserved", "committed", "released", "expired"};

typedef struct resv {
    char id[MAX_ID_LEN + 1];
    rstate_t state;
    int64_t ttl_seconds;
    int64_t created_unix, expires_unix, closed_unix;
    int64_t expires_mono, closed_mono; /* µs */
    size_t heap_pos;                   /* valid while reserved */
    size_t n;
    line_t *lines;  /* as requested */
    line_t *sorted; /* by idx: the identity a replay is compared with */
    struct resv *hnext, *qnext;
} resv_t;

/* A reservation copied out of the lock for the reply. */
typedef struct {
    char id[MAX_ID_LEN + 1];
    rstate_t state;
    int64_t ttl_seconds, created_unix, expires_unix, closed_unix;
    size_t n;
    line_t lines[MAX_LINES];
} snap_t;

static json_t *doc;       /* the catalog document (SKU strings live there) */
static json_t *sku_index; /* sku -> stock index; never changed after load */
static stock_t *stock;
static size_t nstock;
static int64_t retain_us = INT64_C(3600) * 1000000;
static char load_err[512];

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    resv_t **b; /* hash buckets, power of two */
    size_t nb, count;
    resv_t **heap; /* reserved ones by expires_mono */
    size_t nheap, capheap;
    resv_t *qhead, *qtail; /* closed ones in closing order, for purging */
} st;

/* ------------------------------------------------------------- helpers */

/* Replies 400 and returns false when the request has no JSON object body;
 * with `optional`, an empty body is fine. */
static bool body_is_object(sbx_req_t *rq, bool optional, enum MHD_Result *res)
{
    if (rq->body_len == 0 && optional)
        return true;
    if (rq->body_len == 0)
        *res = sbx_reply_json(
            rq, 400, err_body(ERR_PARAMETER_MISSING, "body", "A JSON object body is required."));
    else if (!rq->json)
        *res = sbx_reply_json(rq, 400, err_body(ERR_INVALID_JSON, "body", NULL));
    else if (!json_is_object(rq->json))
        *res = sbx_reply_json(rq, 400, err_body(ERR_BODY_NOT_OBJECT, "body", NULL));
    else
        return true;
    return false;
}

static bool id_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > MAX_ID_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == ':'))
            return false;
    }
    return true;
}

static int64_t stock_find(const char *sku)
{
    json_t *v = json_object_get(sku_index, sku);
    return v ? (int64_t)json_integer_value(v) : -1;
}

static int line_cmp(const void *a, const void *b)
{
    const line_t *x = a, *y = b;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* ------------------------------------------------------------- catalog */

static bool fail(const char *fmt, ...) PC_PRINTF(1, 2);
static bool fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(load_err, sizeof load_err, fmt, ap);
    va_end(ap);
    return false;
}

static bool catalog_load(const char *file)
{
    json_error_t jerr;
    doc = json_load_file(file, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc)
        return fail("%s:%d: %s", file, jerr.line, jerr.text);
    const json_t *skus = NULL;
    const jspec_field_t top[] = {
        {.name = "description", .type = JSPEC_ANY},
        {.name = "tax_bps", .type = JSPEC_ANY},
        {.name = "shipping", .type = JSPEC_ANY},
        JSPEC_OBJ("skus", JSPEC_REQUIRED, NULL, &skus),
        JSPEC_END,
    };
    jspec_error_t je;
    if (!jspec_parse(doc, top, "", &je))
        return fail("%s %s", je.param, je.reason);
    nstock = json_object_size(skus);
    stock = calloc(nstock ? nstock : 1, sizeof *stock);
    sku_index = json_object();
    size_t i = 0;
    const char *sku;
    const json_t *v;
    json_object_foreach((json_t *)skus, sku, v)
    {
        char path[96];
        snprintf(path, sizeof path, "skus.%s", sku);
        if (strlen(sku) > MAX_SKU_LEN || !id_valid(sku) || strchr(sku, ':'))
            return fail("%s: a SKU is 1 to %d characters of A-Z a-z 0-9 - _ .", path, MAX_SKU_LEN);
        int64_t on_hand = 0;
        const jspec_field_t spec[] = {
            JSPEC_I64("stock", JSPEC_REQUIRED, 0, MAX_STOCK, &on_hand),
            {.name = "name", .type = JSPEC_ANY},
            {.name = "prices", .type = JSPEC_ANY},
            {.name = "high_resale_risk", .type = JSPEC_ANY},
            JSPEC_END,
        };
        if (!jspec_parse(v, spec, path, &je))
            return fail("%s %s", je.param, je.reason);
        stock[i] = (stock_t){.sku = sku, .on_hand = on_hand};
        json_object_set_new(sku_index, sku, json_integer((json_int_t)i));
        i++;
    }
    return true;
}

/* ----------------------------------------------- store (caller holds mu) */

static size_t hslot(const char *k, size_t nb)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *k; k++)
        h = (h ^ (unsigned char)*k) * 1099511628211ULL;
    return (size_t)(h & (nb - 1));
}

static resv_t *store_get(const char *id)
{
    if (!st.nb)
        return NULL;
    for (resv_t *r = st.b[hslot(id, st.nb)]; r; r = r->hnext)
        if (!strcmp(r->id, id))
            return r;
    return NULL;
}

static void store_grow(void)
{
    size_t nb = st.nb ? st.nb * 2 : 1024;
    resv_t **b = calloc(nb, sizeof *b);
    for (size_t i = 0; i < st.nb; i++)
        for (resv_t *r = st.b[i], *next; r; r = next) {
            next = r->hnext;
            size_t s = hslot(r->id, nb);
            r->hnext = b[s];
            b[s] = r;
        }
    free(st.b);
    st.b = b;
    st.nb = nb;
}

static void store_put(resv_t *r)
{
    if (st.count >= st.nb)
        store_grow();
    size_t s = hslot(r->id, st.nb);
    r->hnext = st.b[s];
    st.b[s] = r;
    st.count++;
}

static void store_del(resv_t *r)
{
    for (resv_t **p = &st.b[hslot(r->id, st.nb)]; *p; p = &(*p)->hnext)
        if (*p == r) {
            *p = r->hnext;
            st.count--;
            return;
        }
}

static void heap_set(size_t i, resv_t *r)
{
    st.heap[i] = r;
    r->heap_pos = i;
}

static void heap_up(size_t i)
{
    resv_t *r = st.heap[i];
    while (i > 0 && st.heap[(i - 1) / 2]->expires_mono > r->expires_mono) {
        heap_set(i, st.heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_set(i, r);
}

static void heap_down(size_t i)
{
    resv_t *r = st.heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= st.nheap)
            break;
        if (c + 1 < st.nheap && st.heap[c + 1]->expires_mono < st.heap[c]->expires_mono)
            c++;
        if (st.heap[c]->expires_mono >= r->expires_mono)
            break;
        heap_set(i, st.heap[c]);
        i = c;
    }
    heap_set(i, r);
}

static void heap_push(resv_t *r)
{
    if (st.nheap == st.capheap) {
        st.capheap = st.capheap ? st.capheap * 2 : 1024;
        st.heap = realloc(st.heap, st.capheap * sizeof *st.heap);
    }
    heap_set(st.nheap++, r);
    heap_up(st.nheap - 1);
}

static void heap_remove(resv_t *r)
{
    size_t i = r->heap_pos;
    resv_t *last = st.heap[--st.nheap];
    if (i == st.nheap)
        return;
    heap_set(i, last);
    heap_up(i);
    heap_down(last->heap_pos);
}

/* Leaves "reserved": gives back or consumes the held units, stops the expiry
 * clock and queues the reservation for purging. */
static void resv_close(resv_t *r, rstate_t to, int64_t now_mono)
{
    for (size_t i = 0; i < r->n; i++) {
        stock_t *s = &stock[r->lines[i].idx];
        int64_t q = r->lines[i].quantity;
        s->reserved -= q;
        if (to == R_COMMITTED) {
            s->on_hand -= q;
            s->committed += q;
        }
    }
    heap_remove(r);
    r->state = to;
    r->closed_mono = now_mono;
    r->closed_unix = to == R_EXPIRED ? r->expires_unix : time_now_ms() / 1000;
    r->qnext = NULL;
    if (st.qtail)
        st.qtail->qnext = r;
    else
        st.qhead = r;
    st.qtail = r;
}

static void resv_free(resv_t *r)
{
    free(r->lines);
    free(r->sorted);
    free(r);
}

/* Expires what is due and forgets what closed more than retain_us ago. */
static void sweep(int64_t now_mono)
{
    while (st.nheap && st.heap[0]->expires_mono <= now_mono)
        resv_close(st.heap[0], R_EXPIRED, now_mono);
    while (st.qhead && st.qhead->closed_mono + retain_us <= now_mono) {
        resv_t *r = st.qhead;
        st.qhead = r->qnext;
        if (!st.qhead)
            st.qtail = NULL;
        store_del(r);
        resv_free(r);
    }
}

static void snap(const resv_t *r, snap_t *out)
{
    memcpy(out->id, r->id, sizeof out->id);
    out->state = r->state;
    out->ttl_seconds = r->ttl_seconds;
    out->created_unix = r->created_unix;
    out->expires_unix = r->expires_unix;
    out->closed_unix = r->closed_unix;
    out->n = r->n;
    memcpy(out->lines, r->lines, r->n * sizeof *r->lines);
}

static json_t *snap_json(const snap_t *s)
{
    json_t *items = json_array();
    for (size_t i = 0; i < s->n; i++)
        json_array_append_new(items, json_pack("{s:s, s:i}", "sku", stock[s->lines[i].idx].sku,
                                               "quantity", (int)s->lines[i].quantity));
    char created[32], expires[32];
    time_rfc3339(s->created_unix, created);
    time_rfc3339(s->expires_unix, expires);
    json_t *j = json_pack("{s:s, s:s, s:o, s:I, s:s, s:s}", "id", s->id, "status",
                          state_names[s->state], "items", items, "ttl_seconds",
                          (json_int_t)s->ttl_seconds, "created_at", created, "expires_at", expires);
    if (s->state != R_RESERVED) {
        char closed[32];
        time_rfc3339(s->closed_unix, closed);
        json_object_set_new(j, "closed_at", json_string(closed));
    }
    return j;
}

/* ------------------------------------------------------------- reserve */

typedef struct {
    char id[MAX_ID_LEN + 1];
    int64_t ttl_seconds;
    size_t n;
    line_t lines[MAX_LINES];
    line_t sorted[MAX_LINES];
    const char *skus[MAX_LINES];
} resv_req_t;

typedef enum { OUT_CREATED, OUT_REPLAY, OUT_CLOSED, OUT_MISMATCH, OUT_SHORT, OUT_FAULT } outcome_t;

static bool reserve_parse(const json_t *body, resv_req_t *q, jspec_error_t *je)
{
    const json_t *items = NULL;
    q->ttl_seconds = DEFAULT_TTL;
    const jspec_field_t spec[] = {
        JSPEC_ARR("items", JSPEC_REQUIRED, 1, MAX_LINES, &items),
        JSPEC_I64("ttl_seconds", 0, 1, MAX_TTL_SECONDS, &q->ttl_seconds),
        JSPEC_END,
    };
    if (!jspec_parse(body, spec, "", je))
        return false;
    q->n = json_array_size(items);
    for (size_t i = 0; i < q->n; i++) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "items[%zu]", i);
        int64_t quantity = 0;
        const jspec_field_t item_spec[] = {
            JSPEC_STR("sku", JSPEC_REQUIRED | JSPEC_PRINTABLE, 1, MAX_SKU_LEN, &q->skus[i]),
            JSPEC_I64("quantity", JSPEC_REQUIRED, 1, MAX_QUANTITY, &quantity),
            JSPEC_END,
        };
        if (!jspec_parse(json_array_get(items, i), item_spec, prefix, je))
            return false;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(q->skus[j], q->skus[i])) {
                snprintf(je->param, sizeof je->param, "%s.sku", prefix);
                snprintf(je->reason, sizeof je->reason, "repeats items[%zu].sku", j);
                je->code = ERR_PARAMETER_INVALID;
                return false;
            }
        q->lines[i].quantity = (uint32_t)quantity;
    }
    return true;
}

/* 422 naming every unknown SKU, or MHD_NO with *any == false. */
static enum MHD_Result resolve_skus(sbx_req_t *rq, resv_req_t *q, bool *any)
{
    json_t *unknown = json_array();
    int first = -1;
    for (size_t i = 0; i < q->n; i++) {
        int64_t idx = stock_find(q->skus[i]);
        if (idx < 0) {
            json_array_append_new(unknown, json_string(q->skus[i]));
            first = first < 0 ? (int)i : first;
        }
        q->lines[i].idx = (uint32_t)(idx < 0 ? 0 : idx);
    }
    *any = first >= 0;
    if (!*any) {
        json_decref(unknown);
        memcpy(q->sorted, q->lines, q->n * sizeof *q->lines);
        qsort(q->sorted, q->n, sizeof *q->sorted, line_cmp);
        return MHD_NO;
    }
    char param[32], msg[128];
    snprintf(param, sizeof param, "items[%d].sku", first);
    snprintf(msg, sizeof msg, "Unknown SKU %s.", q->skus[first]);
    json_t *body = sbx_error_json("cart_error", "unknown_sku", param, msg);
    json_t *e = json_object_get(body, "error");
    json_object_set_new(e, "sku", json_string(q->skus[first]));
    json_object_set_new(e, "skus", unknown);
    return sbx_reply_json(rq, 422, body);
}

static resv_t *resv_new(const resv_req_t *q, int64_t now_mono)
{
    resv_t *r = calloc(1, sizeof *r);
    memcpy(r->id, q->id, sizeof r->id);
    r->ttl_seconds = q->ttl_seconds;
    r->created_unix = time_now_ms() / 1000;
    r->expires_unix = r->created_unix + q->ttl_seconds;
    r->expires_mono = now_mono + q->ttl_seconds * 1000000;
    r->n = q->n;
    r->lines = malloc(q->n * sizeof *r->lines);
    r->sorted = malloc(q->n * sizeof *r->sorted);
    memcpy(r->lines, q->lines, q->n * sizeof *r->lines);
    memcpy(r->sorted, q->sorted, q->n * sizeof *r->sorted);
    return r;
}

/* The one critical section of a reservation: replay, or all-or-nothing
 * take. On OUT_SHORT, short[] gets the available count per line (-1 where
 * the line is satisfiable). */
static outcome_t reserve_locked(const resv_req_t *q, snap_t *out, int64_t *short_avail)
{
    outcome_t o;
    pthread_mutex_lock(&mu);
    int64_t now = time_mono_us();
    sweep(now);
    resv_t *r = store_get(q->id);
    if (r) {
        bool same = r->n == q->n && !memcmp(r->sorted, q->sorted, q->n * sizeof *q->sorted);
        o = !same ? OUT_MISMATCH
                  : (r->state == R_RESERVED || r->state == R_COMMITTED ? OUT_REPLAY : OUT_CLOSED);
        snap(r, out);
    } else {
        bool shortage = false;
        for (size_t i = 0; i < q->n; i++) {
            const stock_t *s = &stock[q->lines[i].idx];
            int64_t avail = s->on_hand > s->reserved ? s->on_hand - s->reserved : 0;
            short_avail[i] = avail < q->lines[i].quantity ? avail : -1;
            shortage |= short_avail[i] >= 0;
        }
        if (shortage) {
            o = OUT_SHORT;
        } else {
            for (size_t i = 0; i < q->n; i++)
                stock[q->lines[i].idx].reserved += q->lines[i].quantity;
            r = resv_new(q, now);
            store_put(r);
            heap_push(r);
            snap(r, out);
            o = OUT_CREATED;
        }
    }
    pthread_mutex_unlock(&mu);
    return o;
}

static enum MHD_Result reply_short(sbx_req_t *rq, const resv_req_t *q, const int64_t *avail)
{
    json_t *list = json_array();
    for (size_t i = 0; i < q->n; i++)
        if (avail[i] >= 0)
            json_array_append_new(list, json_pack("{s:s, s:i, s:I}", "sku", q->skus[i], "requested",
                                                  (int)q->lines[i].quantity, "available",
                                                  (json_int_t)avail[i]));
    json_t *body =
        sbx_error_json("cart_error", "out_of_stock", NULL, err_message(ERR_OUT_OF_STOCK));
    json_object_set_new(body, "unavailable", list);
    return sbx_reply_json(rq, 409, body);
}

/* An error that shows the reservation as it stands. */
static enum MHD_Result reply_state(sbx_req_t *rq, unsigned status, const snap_t *s,
                                   const char *type, const char *code, const char *message)
{
    json_t *body = sbx_error_json(type, code, NULL, message);
    json_object_set_new(body, "reservation", snap_json(s));
    return sbx_reply_json(rq, status, body);
}

static enum MHD_Result reserve_reply(sbx_req_t *rq, const resv_req_t *q, const sbx_fault_t *f)
{
    snap_t *s = malloc(sizeof *s);
    int64_t avail[MAX_LINES];
    enum MHD_Result res = MHD_NO;
    outcome_t o = reserve_locked(q, s, avail);
    if (f->mode != SBX_NONE && f->after_processing)
        o = OUT_FAULT;
    switch (o) {
    case OUT_FAULT:
        res = sbx_fault_fail(rq, f);
        break;
    case OUT_CREATED:
        res = sbx_reply_json(rq, 201, snap_json(s));
        break;
    case OUT_REPLAY:
        res = sbx_reply_json(rq, 200, snap_json(s));
        break;
    case OUT_SHORT:
        res = reply_short(rq, q, avail);
        break;
    case OUT_CLOSED:
        res = reply_state(rq, 409, s, "invalid_request_error",
                          s->state == R_EXPIRED ? "reservation_expired" : "reservation_released",
                          "This reservation id is closed; reserve under a new id.");
        break;
    case OUT_MISMATCH:
        res = reply_state(rq, 422, s, "idempotency_error", "key_reused",
                          "This reservation id already holds different items.");
        break;
    }
    free(s);
    return res;
}

static enum MHD_Result reservation_put(sbx_req_t *rq, const char *id, const sbx_fault_t *f)
{
    enum MHD_Result res;
    if (!body_is_object(rq, false, &res))
        return res;
    resv_req_t *q = calloc(1, sizeof *q);
    snprintf(q->id, sizeof q->id, "%s", id);
    jspec_error_t je;
    if (!reserve_parse(rq->json, q, &je)) {
        res = sbx_reply_jspec(rq, &je);
    } else {
        bool unknown = false;
        res = resolve_skus(rq, q, &unknown);
        if (!unknown)
            res = reserve_reply(rq, q, f);
    }
    free(q);
    return res;
}

/* ---------------------------------------------------- commit / release */

typedef enum { ACT_RESERVE, ACT_COMMIT, ACT_RELEASE } act_t;

/* Returns false when the id is unknown; fills *s after the transition. */
static bool transition_locked(const char *id, act_t act, snap_t *s)
{
    pthread_mutex_lock(&mu);
    int64_t now = time_mono_us();
    sweep(now);
    resv_t *r = store_get(id);
    if (r && r->state == R_RESERVED)
        resv_close(r, act == ACT_COMMIT ? R_COMMITTED : R_RELEASED, now);
    if (r)
        snap(r, s);
    pthread_mutex_unlock(&mu);
    return r != NULL;
}

/* Commit: reserved or committed -> 200 committed; released/expired -> 409.
 * Release: reserved, released or expired -> 200 (nothing is held any more);
 * committed -> 409. */
static enum MHD_Result reservation_act(sbx_req_t *rq, const char *id, act_t act,
                                       const sbx_fault_t *f)
{
    enum MHD_Result res;
    if (!body_is_object(rq, true, &res))
        return res;
    const jspec_field_t none[] = {JSPEC_END};
    jspec_error_t je;
    if (rq->json && !jspec_parse(rq->json, none, "", &je))
        return sbx_reply_jspec(rq, &je);
    snap_t *s = malloc(sizeof *s);
    bool found = transition_locked(id, act, s);
    if (found && f->mode != SBX_NONE && f->after_processing)
        res = sbx_fault_fail(rq, f);
    else if (!found)
        res = sbx_reply_json(rq, 404, err_body(ERR_RESOURCE_MISSING, "id", "No such reservation."));
    else if (act == ACT_COMMIT && s->state != R_COMMITTED)
        res = reply_state(rq, 409, s, "invalid_request_error",
                          s->state == R_EXPIRED ? "reservation_expired" : "reservation_released",
                          "Only a live reservation can be committed.");
    else if (act == ACT_RELEASE && s->state == R_COMMITTED)
        res = reply_state(rq, 409, s, "invalid_request_error", "reservation_committed",
                          "A committed reservation cannot be released.");
    else
        res = sbx_reply_json(rq, 200, snap_json(s));
    free(s);
    return res;
}

/* Injected faults (POST /_sandbox/faults) hit the three mutations like a
 * real service's partial outage; with after_processing the change is made
 * and the reply lost, which is what a retry under the same id must survive. */
static enum MHD_Result mutate(sbx_req_t *rq, const char *id, act_t act)
{
    sbx_fault_t f = sbx_fault_draw();
    if (f.mode != SBX_NONE && !f.after_processing)
        return sbx_fault_fail(rq, &f);
    if (act == ACT_RESERVE)
        return reservation_put(rq, id, &f);
    return reservation_act(rq, id, act, &f);
}

/* /v1/reservations/{id} and /v1/reservations/{id}/commit */
static enum MHD_Result handle(sbx_req_t *rq)
{
    char *v1 = sbx_path_segment(rq, 0), *coll = sbx_path_segment(rq, 1);
    char *id = sbx_path_segment(rq, 2), *verb = sbx_path_segment(rq, 3);
    char *extra = sbx_path_segment(rq, 4);
    bool base = v1 && coll && id && !extra && !strcmp(v1, "v1") && !strcmp(coll, "reservations");
    bool commit = base && verb && !strcmp(verb, "commit");
    enum MHD_Result res;
    if (!base || (verb && !commit))
        res = sbx_reply_json(rq, 404, err_body(ERR_ROUTE_NOT_FOUND, NULL, NULL));
    else if (!id_valid(id))
        res = sbx_reply_json(rq, 400,
                             err_body(ERR_PARAMETER_INVALID, "id",
                                      "A reservation id is 1 to 128 characters of "
                                      "A-Z a-z 0-9 - _ . :"));
    else if (commit && !strcmp(rq->method, "POST"))
        res = mutate(rq, id, ACT_COMMIT);
    else if (!commit && !strcmp(rq->method, "PUT"))
        res = mutate(rq, id, ACT_RESERVE);
    else if (!commit && !strcmp(rq->method, "DELETE"))
        res = mutate(rq, id, ACT_RELEASE);
    else
        res = sbx_reply_json(rq, 405, err_body(ERR_METHOD_NOT_ALLOWED, NULL, NULL));
    free(v1);
    free(coll);
    free(id);
    free(verb);
    free(extra);
    return res;
}

/* ------------------------------------------------------ control routes */

static json_t *stock_json(void)
{
    json_t *skus = json_object();
    pthread_mutex_lock(&mu);
    int64_t now = time_mono_us();
    sweep(now);
    for (size_t i = 0; i < nstock; i++) {
        const stock_t *s = &stock[i];
        json_object_set_new(skus, s->sku,
                            json_pack("{s:I, s:I, s:I, s:I}", "on_hand", (json_int_t)s->on_hand,
                                      "reserved", (json_int_t)s->reserved, "committed",
                                      (json_int_t)s->committed, "available",
                                      (json_int_t)(s->on_hand - s->reserved)));
    }
    size_t live = st.nheap, known = st.count;
    pthread_mutex_unlock(&mu);
    return json_pack("{s:o, s:I, s:I}", "skus", skus, "live_reservations", (json_int_t)live,
                     "known_reservations", (json_int_t)known);
}

/* {"sku", "on_hand"}: sets the units not yet sold. Refused below what live
 * reservations hold, so reserved <= on_hand always holds. */
static enum MHD_Result stock_post(sbx_req_t *rq)
{
    enum MHD_Result res;
    if (!body_is_object(rq, false, &res))
        return res;
    const char *sku = NULL;
    int64_t on_hand = 0;
    const jspec_field_t spec[] = {
        JSPEC_STR("sku", JSPEC_REQUIRED | JSPEC_PRINTABLE, 1, MAX_SKU_LEN, &sku),
        JSPEC_I64("on_hand", JSPEC_REQUIRED, 0, MAX_STOCK, &on_hand),
        JSPEC_END,
    };
    jspec_error_t je;
    if (!jspec_parse(rq->json, spec, "", &je))
        return sbx_reply_jspec(rq, &je);
    int64_t idx = stock_find(sku);
    if (idx < 0)
        return sbx_reply_json(rq, 404, err_body(ERR_RESOURCE_MISSING, "sku", "No such SKU."));
    pthread_mutex_lock(&mu);
    int64_t now = time_mono_us();
    sweep(now);
    stock_t s = stock[idx];
    bool ok = on_hand >= s.reserved;
    if (ok)
        stock[idx].on_hand = s.on_hand = on_hand;
    pthread_mutex_unlock(&mu);
    if (!ok)
        return sbx_reply_json(
            rq, 409,
            err_body(ERR_INVALID_STATE, "on_hand", "on_hand may not go below the units reserved."));
    log_json(LOG_INFO, "stock set",
             json_pack("{s:s, s:I}", "sku", sku, "on_hand", (json_int_t)on_hand));
    return sbx_reply_json(rq, 200,
                          json_pack("{s:s, s:I, s:I, s:I, s:I}", "sku", s.sku, "on_hand",
                                    (json_int_t)s.on_hand, "reserved", (json_int_t)s.reserved,
                                    "committed", (json_int_t)s.committed, "available",
                                    (json_int_t)(s.on_hand - s.reserved)));
}

static enum MHD_Result reservation_get(sbx_req_t *rq, const char *id)
{
    snap_t *s = malloc(sizeof *s);
    pthread_mutex_lock(&mu);
    int64_t now = time_mono_us();
    sweep(now);
    resv_t *r = id_valid(id) ? store_get(id) : NULL;
    if (r)
        snap(r, s);
    pthread_mutex_unlock(&mu);
    enum MHD_Result res =
        r ? sbx_reply_json(rq, 200, snap_json(s))
          : sbx_reply_json(rq, 404, err_body(ERR_RESOURCE_MISSING, "id", "No such reservation."));
    free(s);
    return res;
}

static enum MHD_Result control(sbx_req_t *rq, bool *handled)
{
    const char *p = rq->path + strlen("/_sandbox/");
    bool get = !strcmp(rq->method, "GET");
    *handled = true;
    if (!strcmp(p, "stock") && get)
        return sbx_reply_json(rq, 200, stock_json());
    if (!strcmp(p, "stock") && !strcmp(rq->method, "POST"))
        return stock_post(rq);
    if (!strncmp(p, "reservations/", 13) && get && !strchr(p + 13, '/'))
        return reservation_get(rq, p + 13);
    *handled = false;
    return MHD_NO;
}

/* ---------------------------------------------------------------- main */

static void flag_fail(const char *what, const char *value)
{
    fprintf(stderr, "sandbox-inventory: %s %s: %s\n", what, value, load_err);
    exit(2);
}

static bool flag(const char *name, const char *value)
{
    if (!strcmp(name, "--catalog")) {
        if (doc)
            snprintf(load_err, sizeof load_err, "given twice");
        if (doc || !catalog_load(value))
            flag_fail(name, value);
        log_json(LOG_INFO, "catalog loaded",
                 json_pack("{s:s, s:I}", "file", value, "skus", (json_int_t)nstock));
        return true;
    }
    if (!strcmp(name, "--retain-seconds")) {
        char *end;
        long long v = strtoll(value, &end, 10);
        if (*end || v < 1 || v > 30LL * 86400) {
            snprintf(load_err, sizeof load_err, "must be 1 to 2592000");
            flag_fail(name, value);
        }
        retain_us = (int64_t)v * 1000000;
        return true;
    }
    return false;
}

int main(int argc, char **argv)
{
    static const sbx_dialect_t d = {
        .name = "inventory",
        .handler = handle,
        .control = control,
        .flag = flag,
        .required_flag = "--catalog",
        .usage = "--catalog FILE [--retain-seconds N] [--port N] [--port-file F] "
                 "[--control-port N] [--control-port-file F]"};
    return sbx_main(argc, argv, &d);
}
