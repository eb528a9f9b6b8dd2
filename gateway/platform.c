/* Clients for the platform services a checkout calls: pricing (quotes) and
 * inventory (reservations). Replies are hostile input: a quote whose lines do
 * not add up is refused as if the service were down, because charging a
 * wrong total is worse than not charging. */
#include "gateway/checkout.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const json_headers[] = {"Content-Type: application/json",
                                           "Accept: application/json", NULL};

static httpc_status_t call(const char *method, const char *url, const char *body,
                           httpc_response_t *rs)
{
    httpc_request_t rq = {.method = method,
                          .url = url,
                          .headers = json_headers,
                          .body = body,
                          .body_len = body ? strlen(body) : 0,
                          .connect_timeout_ms = gw_cfg.platform_connect_timeout_ms,
                          .timeout_ms = gw_cfg.platform_timeout_ms,
                          .max_response = 256 * 1024};
    return httpc_perform(&rq, rs);
}

static plat_status_t transport(httpc_status_t s)
{
    return s == HTTPC_NOT_SENT || s == HTTPC_ERROR ? PLAT_UNAVAILABLE : PLAT_UNKNOWN;
}

void gw_quote_free(gw_quote_t *q)
{
    free(q->lines);
    json_decref(q->json);
    memset(q, 0, sizeof *q);
}

static bool get_amount(const json_t *o, const char *k, int64_t *out)
{
    const json_t *v = json_object_get(o, k);
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) > GW_MAX_AMOUNT)
        return false;
    *out = json_integer_value(v);
    return true;
}

/* Checks a quote against the request and against its own arithmetic. */
static bool quote_parse(const json_t *j, const char *currency, const json_t *items, gw_quote_t *q)
{
    const json_t *lines = json_object_get(j, "lines");
    const char *cur = json_string_value(json_object_get(j, "currency"));
    if (!cur || strcmp(cur, currency) != 0 || !json_is_array(lines) ||
        json_array_size(lines) != json_array_size(items))
        return false;
    if (!get_amount(j, "subtotal", &q->subtotal) || !get_amount(j, "tax", &q->tax) ||
        !get_amount(j, "shipping", &q->shipping) || !get_amount(j, "total", &q->total))
        return false;
    q->nlines = json_array_size(lines);
    q->lines = calloc(q->nlines ? q->nlines : 1, sizeof *q->lines);
    int64_t sub = 0, tax = 0;
    for (size_t i = 0; i < q->nlines; i++) {
        const json_t *l = json_array_get(lines, i), *it = json_array_get(items, i);
        gw_quote_line_t *ql = &q->lines[i];
        const char *sku = json_string_value(json_object_get(l, "sku"));
        const char *want = json_string_value(json_object_get(it, "sku"));
        if (!sku || !want || strcmp(sku, want) != 0 || strlen(sku) >= sizeof ql->sku)
            return false;
        snprintf(ql->sku, sizeof ql->sku, "%s", sku);
        if (!get_amount(l, "quantity", &ql->quantity) ||
            ql->quantity != json_integer_value(json_object_get(it, "quantity")) ||
            !get_amount(l, "unit_amount", &ql->unit_amount) || !get_amount(l, "amount", &ql->amount))
            return false;
        if (!get_amount(l, "tax_amount", &ql->tax_amount))
            ql->tax_amount = 0;
        if (ql->unit_amount * ql->quantity != ql->amount)
            return false;
        const char *risk = json_string_value(json_object_get(l, "risk"));
        ql->high_resale_risk = risk && !strcmp(risk, "high_resale");
        sub += ql->amount;
        tax += ql->tax_amount;
        if (sub > GW_MAX_AMOUNT || tax > GW_MAX_AMOUNT)
            return false;
    }
    return sub == q->subtotal && tax == q->tax && q->subtotal + q->tax + q->shipping == q->total;
}

plat_status_t gw_pricing_quote(const char *currency, const json_t *items, const char *country,
                               gw_quote_t *q, char *bad_param, size_t bad_len)
{
    memset(q, 0, sizeof *q);
    json_t *req = json_pack("{s:s, s:O, s:{s:s?}}", "currency", currency, "items", items,
                            "shipping", "country", country);
    char *body = json_dumps_compact(req);
    json_decref(req);
    char url[600];
    snprintf(url, sizeof url, "%s/v1/quote", gw_cfg.pricing_url);
    httpc_response_t rs;
    httpc_status_t hs = call("POST", url, body, &rs);
    free(body);
    plat_status_t st = PLAT_UNAVAILABLE;
    json_t *j = hs == HTTPC_OK ? json_loadb(rs.body, rs.body_len, JSON_REJECT_DUPLICATES, NULL)
                               : NULL;
    if (hs != HTTPC_OK) {
        st = transport(hs);
    } else if (rs.http_status == 200 && j && quote_parse(j, currency, items, q)) {
        q->json = json_incref(j);
        st = PLAT_OK;
    } else if (rs.http_status == 422 || rs.http_status == 400) {
        /* The service names the SKU (or the country); map it back to the
         * request's own field. */
        const json_t *err = json_object_get(j, "error");
        const char *sku = json_string_value(json_object_get(err, "sku"));
        const char *param = json_string_value(json_object_get(err, "param"));
        snprintf(bad_param, bad_len, "cart.items");
        if (param && !strcmp(param, "shipping.country"))
            snprintf(bad_param, bad_len, "shipping.country");
        for (size_t i = 0; sku && i < json_array_size(items); i++) {
            const char *mine = json_string_value(json_object_get(json_array_get(items, i), "sku"));
            if (mine && !strcmp(sku, mine))
                snprintf(bad_param, bad_len, "cart.items[%zu].sku", i);
        }
        st = PLAT_REJECTED;
    } else {
        log_json(LOG_WARN, "pricing service answered badly",
                 json_pack("{s:i}", "status", (int)rs.http_status));
        gw_quote_free(q);
    }
    json_decref(j);
    httpc_response_free(&rs);
    return st;
}

plat_status_t gw_inventory_reserve(const char *reservation_id, const json_t *items, int ttl_s,
                                   json_t **unavailable)
{
    *unavailable = NULL;
    json_t *lines = json_array();
    size_t i;
    json_t *it;
    json_array_foreach((json_t *)items, i, it)
    {
        json_array_append_new(lines, json_pack("{s:O, s:O}", "sku", json_object_get(it, "sku"),
                                               "quantity", json_object_get(it, "quantity")));
    }
    json_t *req = json_pack("{s:o, s:i}", "items", lines, "ttl_seconds", ttl_s);
    char *body = json_dumps_compact(req);
    json_decref(req);
    char *esc = httpc_escape(reservation_id);
    char url[700];
    snprintf(url, sizeof url, "%s/v1/reservations/%s", gw_cfg.inventory_url, esc);
    free(esc);
    httpc_response_t rs;
    httpc_status_t hs = call("PUT", url, body, &rs);
    free(body);
    plat_status_t st;
    if (hs != HTTPC_OK) {
        st = transport(hs);
    } else if (rs.http_status == 200 || rs.http_status == 201) {
        st = PLAT_OK;
    } else if (rs.http_status == 409) {
        json_t *j = json_loadb(rs.body, rs.body_len, JSON_REJECT_DUPLICATES, NULL);
        json_t *u = json_object_get(j, "unavailable");
        *unavailable = json_is_array(u) ? json_incref(u) : json_array();
        json_decref(j);
        st = PLAT_REJECTED;
    } else if (rs.http_status >= 500) {
        /* a 5xx may have reserved; the caller releases to be sure */
        st = PLAT_UNKNOWN;
    } else {
        log_json(LOG_WARN, "inventory refused a reservation",
                 json_pack("{s:i}", "status", (int)rs.http_status));
        st = PLAT_UNAVAILABLE;
    }
    httpc_response_free(&rs);
    return st;
}

plat_status_t gw_inventory_finish(const char *reservation_id, bool commit, long *http_status)
{
    char *esc = httpc_escape(reservation_id);
    char url[700];
    snprintf(url, sizeof url, "%s/v1/reservations/%s%s", gw_cfg.inventory_url, esc,
             commit ? "/commit" : "");
    free(esc);
    httpc_response_t rs;
    httpc_status_t hs = call(commit ? "POST" : "DELETE", url, commit ? "{}" : NULL, &rs);
    *http_status = rs.http_status;
    plat_status_t st = hs != HTTPC_OK ? transport(hs)
                       : rs.http_status < 300 ? PLAT_OK
                       : rs.http_status >= 500 ? PLAT_UNAVAILABLE
                                               : PLAT_REJECTED;
    httpc_response_free(&rs);
    return st;
}
