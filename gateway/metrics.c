/* Prometheus metrics: request counts by route and status, a latency
 * histogram by route, requests in flight, database pool use, plus whatever
 * other subsystems register. Lock-free atomics on the request path. */
#include "gateway/gateway.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ROUTES 128
#define MAX_WRITERS 16

static const unsigned statuses[] = {200, 201, 202, 204, 400, 401, 402, 403, 404, 405, 409,
                                    413, 422, 429, 431, 500, 502, 503, 504};
#define NSTATUS (PC_ARRAY_LEN(statuses) + 1) /* last = other */
static const double buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                 0.25,  0.5,    1,     2.5,  5,     10};
#define NBUCKETS PC_ARRAY_LEN(buckets)

typedef struct {
    atomic_uint_fast64_t by_status[NSTATUS];
    atomic_uint_fast64_t bucket[NBUCKETS + 1];
    atomic_uint_fast64_t sum_us;
    atomic_uint_fast64_t count;
} route_stats_t;

/* index MAX_ROUTES is for unmatched paths (404 and friends) */
static route_stats_t stats[MAX_ROUTES + 1];
static gw_metrics_writer_fn writers[MAX_WRITERS];
static atomic_int nwriters;

void gw_metrics_add_writer(gw_metrics_writer_fn fn)
{
    int i = atomic_fetch_add(&nwriters, 1);
    if (i < MAX_WRITERS)
        writers[i] = fn;
}

static size_t status_idx(unsigned st)
{
    for (size_t i = 0; i < PC_ARRAY_LEN(statuses); i++)
        if (statuses[i] == st)
            return i;
    return NSTATUS - 1;
}

void gw_metrics_observe(int route_idx, const char *method, unsigned status, int64_t dur_us)
{
    (void)method;
    route_stats_t *s =
        &stats[route_idx >= 0 && (size_t)route_idx < gw_nroutes && route_idx < MAX_ROUTES
                   ? route_idx
                   : MAX_ROUTES];
    atomic_fetch_add(&s->by_status[status_idx(status)], 1);
    double secs = (double)dur_us / 1e6;
    size_t b = 0;
    while (b < NBUCKETS && secs > buckets[b])
        b++;
    atomic_fetch_add(&s->bucket[b], 1);
    atomic_fetch_add(&s->sum_us, (uint64_t)(dur_us > 0 ? dur_us : 0));
    atomic_fetch_add(&s->count, 1);
}

void gw_text_printf(gw_text_t *t, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        size_t room = t->cap - t->len;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (t->buf && (size_t)n < room) {
            t->len += (size_t)n;
            return;
        }
        size_t nc = t->cap ? t->cap * 2 : 8192;
        while (nc < t->len + (size_t)n + 1)
            nc *= 2;
        char *nb = realloc(t->buf, nc);
        if (!nb)
            return;
        t->buf = nb;
        t->cap = nc;
    }
}

static void route_label(size_t i, char *out, size_t n)
{
    if (i < gw_nroutes && i < MAX_ROUTES)
        snprintf(out, n, "method=\"%s\",route=\"%s\"", gw_routes[i].method, gw_routes[i].pattern);
    else
        snprintf(out, n, "method=\"\",route=\"unmatched\"");
}

void gw_metrics_render(gw_text_t *t)
{
    char lbl[256];
    size_t nr = gw_nroutes < MAX_ROUTES ? gw_nroutes : MAX_ROUTES;
    gw_text_printf(t, "# HELP portcullis_http_requests_total HTTP requests by route and status.\n"
                      "# TYPE portcullis_http_requests_total counter\n");
    for (size_t i = 0; i <= nr; i++) {
        size_t ri = i == nr ? MAX_ROUTES : i;
        route_label(ri, lbl, sizeof lbl);
        for (size_t s = 0; s < NSTATUS; s++) {
            uint64_t v = atomic_load(&stats[ri].by_status[s]);
            if (v == 0 && ri == MAX_ROUTES)
                continue;
            if (v == 0 && s != 0)
                continue;
            if (s < NSTATUS - 1)
                gw_text_printf(t, "portcullis_http_requests_total{%s,status=\"%u\"} %llu\n", lbl,
                               statuses[s], (unsigned long long)v);
            else
                gw_text_printf(t, "portcullis_http_requests_total{%s,status=\"other\"} %llu\n",
                               lbl, (unsigned long long)v);
        }
    }
    gw_text_printf(t, "# HELP portcullis_http_request_duration_seconds Request latency by route.\n"
                      "# TYPE portcullis_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i <= nr; i++) {
        size_t ri = i == nr ? MAX_ROUTES : i;
        route_label(ri, lbl, sizeof lbl);
        uint64_t cum = 0;
        for (size_t b = 0; b < NBUCKETS; b++) {
            cum += atomic_load(&stats[ri].bucket[b]);
            gw_text_printf(t, "portcullis_http_request_duration_seconds_bucket{%s,le=\"%g\"} %llu\n",
                           lbl, buckets[b], (unsigned long long)cum);
        }
        cum += atomic_load(&stats[ri].bucket[NBUCKETS]);
        gw_text_printf(t, "portcullis_http_request_duration_seconds_bucket{%s,le=\"+Inf\"} %llu\n",
                       lbl, (unsigned long long)cum);
        gw_text_printf(t, "portcullis_http_request_duration_seconds_sum{%s} %.6f\n", lbl,
                       (double)atomic_load(&stats[ri].sum_us) / 1e6);
        gw_text_printf(t, "portcullis_http_request_duration_seconds_count{%s} %llu\n", lbl,
                       (unsigned long long)atomic_load(&stats[ri].count));
    }
    gw_text_printf(t, "# HELP portcullis_http_requests_in_flight Requests being served now.\n"
                      "# TYPE portcullis_http_requests_in_flight gauge\n"
                      "portcullis_http_requests_in_flight %d\n",
                   atomic_load(&gw.in_flight));
    if (gw.db) {
        db_pool_stats_t ps;
        db_pool_stats(gw.db, &ps);
        gw_text_printf(t,
                       "# HELP portcullis_db_pool_connections Database pool connections by state.\n"
                       "# TYPE portcullis_db_pool_connections gauge\n"
                       "portcullis_db_pool_connections{state=\"in_use\"} %d\n"
                       "portcullis_db_pool_connections{state=\"idle\"} %d\n"
                       "# HELP portcullis_db_pool_size Configured pool size.\n"
                       "# TYPE portcullis_db_pool_size gauge\n"
                       "portcullis_db_pool_size %d\n"
                       "# HELP portcullis_db_pool_waiting Requests waiting for a connection.\n"
                       "# TYPE portcullis_db_pool_waiting gauge\n"
                       "portcullis_db_pool_waiting %d\n"
                       "# HELP portcullis_db_pool_acquired_total Connections handed out.\n"
                       "# TYPE portcullis_db_pool_acquired_total counter\n"
                       "portcullis_db_pool_acquired_total %llu\n"
                       "# HELP portcullis_db_pool_timeouts_total Acquisitions that timed out.\n"
                       "# TYPE portcullis_db_pool_timeouts_total counter\n"
                       "portcullis_db_pool_timeouts_total %llu\n"
                       "# HELP portcullis_db_reconnects_total Database (re)connections made.\n"
                       "# TYPE portcullis_db_reconnects_total counter\n"
                       "portcullis_db_reconnects_total %llu\n",
                       ps.in_use, ps.size - ps.in_use, ps.size, ps.waiting,
                       (unsigned long long)ps.acquired, (unsigned long long)ps.timeouts,
                       (unsigned long long)ps.reconnects);
    }
    int nw = atomic_load(&nwriters);
    for (int i = 0; i < nw && i < MAX_WRITERS; i++)
        writers[i](t);
}
