/* PostgreSQL pool: fixed-size, lazily connected, statements prepared once per
 * connection on first use, and the one retrying transaction helper.
 *
 * Trade-off: a mutex-and-condvar pool is simpler than a lock-free one and
 * costs well under a microsecond against a round trip that costs tens; the
 * pool is never the bottleneck, commits are. */
#include "util/util.h"
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DB_MAX_STMTS 1024
#define TXN_MAX_TRIES 8

struct db_conn {
    PGconn *pg;
    db_pool_t *pool;
    bool in_use;
    unsigned char prepared[DB_MAX_STMTS];
    char sqlstate[6];
};

struct db_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    db_conn_t *conns;
    int size, in_use, waiting;
    int acquire_timeout_ms;
    uint64_t acquired, timeouts;
    atomic_uint_fast64_t reconnects;
    char *conninfo, *password, *appname;
};

static atomic_int next_stmt_id = 1;

void db_params_init(db_params_t *p)
{
    p->n = 0;
}

static void param_set(db_params_t *p, const char *v, int len, int fmt)
{
    if (p->n >= DB_MAX_PARAMS)
        abort(); /* a programming error, caught by any test that runs the query */
    p->values[p->n] = v;
    p->lengths[p->n] = len;
    p->formats[p->n] = fmt;
    p->n++;
}

void db_param_text(db_params_t *p, const char *s)
{
    param_set(p, s, 0, 0);
}

void db_param_int(db_params_t *p, int64_t v)
{
    if (p->n >= DB_MAX_PARAMS)
        abort();
    snprintf(p->scratch[p->n], sizeof p->scratch[0], "%lld", (long long)v);
    param_set(p, p->scratch[p->n], 0, 0);
}

void db_param_bool(db_params_t *p, bool v)
{
    param_set(p, v ? "t" : "f", 0, 0);
}

void db_param_bytes(db_params_t *p, const void *data, size_t len)
{
    param_set(p, data, (int)len, 1);
}

/* Over TCP, a server that vanished without a reset (a failover, a partition)
 * would leave a connection waiting on the kernel for a quarter of an hour,
 * and with it the dispatcher, the recovery worker or a request; keepalives
 * and a user timeout make the kernel notice within half a minute. (Ignored
 * on unix sockets, where the server's exit is seen at once.) */
PGconn *db_connect(const char *conninfo, const char *appname, const char *password)
{
    const char *keys[] = {"dbname",
                          "application_name",
                          "keepalives",
                          "keepalives_idle",
                          "keepalives_interval",
                          "keepalives_count",
                          "tcp_user_timeout",
                          "password",
                          NULL};
    const char *vals[] = {conninfo, appname, "1", "10", "5", "3", "20000", password, NULL};
    if (!password)
        keys[7] = NULL;
    return PQconnectdbParams(keys, vals, 1);
}

static PGconn *connect_pg(db_pool_t *p)
{
    PGconn *pg = db_connect(p->conninfo, p->appname, p->password);
    if (PQstatus(pg) != CONNECTION_OK) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", PQerrorMessage(pg));
        msg[strcspn(msg, "\n")] = '\0';
        log_json(LOG_WARN, "database connect failed", json_pack("{s:s}", "error", msg));
        PQfinish(pg);
        return NULL;
    }
    return pg;
}

static bool conn_reset(db_conn_t *c)
{
    if (c->pg)
        PQfinish(c->pg);
    memset(c->prepared, 0, sizeof c->prepared);
    c->pg = connect_pg(c->pool);
    atomic_fetch_add(&c->pool->reconnects, 1);
    return c->pg != NULL;
}

db_pool_t *db_pool_create(const db_pool_config_t *cfg)
{
    db_pool_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    p->size = cfg->pool_size > 0 ? cfg->pool_size : 8;
    p->acquire_timeout_ms = cfg->acquire_timeout_ms > 0 ? cfg->acquire_timeout_ms : 5000;
    p->conninfo = strdup(cfg->conninfo);
    p->password = cfg->password ? strdup(cfg->password) : NULL;
    p->appname = strdup(cfg->application_name ? cfg->application_name : "portcullis");
    p->conns = calloc((size_t)p->size, sizeof *p->conns);
    for (int i = 0; i < p->size; i++)
        p->conns[i].pool = p;
    return p;
}

void db_pool_destroy(db_pool_t *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->size; i++)
        if (p->conns[i].pg)
            PQfinish(p->conns[i].pg);
    if (p->password) {
        sodium_memzero(p->password, strlen(p->password));
        free(p->password);
    }
    free(p->conninfo);
    free(p->appname);
    free(p->conns);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}

/* An idle pooled connection has nothing to read unless the server spoke
 * first, and what it says unasked is nearly always goodbye (a restart, an
 * administrator's kill: a FATAL notice, then EOF, which libpq may not see in
 * one read). libpq would only notice when the next statement failed, and
 * callers running a single statement outside db_txn_run would answer 503
 * once per stale connection; so a connection with anything to read is
 * reopened instead (the rare harmless message costs one reconnect). */
static bool idle_conn_dead(PGconn *pg)
{
    struct pollfd pfd = {.fd = PQsocket(pg), .events = POLLIN};
    if (pfd.fd < 0)
        return true;
    return poll(&pfd, 1, 0) != 0;
}

db_conn_t *db_pool_acquire(db_pool_t *p)
{
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += p->acquire_timeout_ms / 1000;
    dl.tv_nsec += (long)(p->acquire_timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    db_conn_t *c = NULL;
    pthread_mutex_lock(&p->mu);
    while (p->in_use == p->size) {
        p->waiting++;
        int rc = pthread_cond_timedwait(&p->cv, &p->mu, &dl);
        p->waiting--;
        if (rc != 0 && p->in_use == p->size) {
            p->timeouts++;
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
    }
    /* Prefer a connection that is already open. */
    for (int i = 0; i < p->size; i++)
        if (!p->conns[i].in_use && (!c || (!c->pg && p->conns[i].pg)))
            c = &p->conns[i];
    c->in_use = true;
    p->in_use++;
    p->acquired++;
    pthread_mutex_unlock(&p->mu);
    if (!c->pg || PQstatus(c->pg) != CONNECTION_OK || idle_conn_dead(c->pg)) {
        if (!conn_reset(c)) {
            db_pool_release(c);
            return NULL;
        }
    }
    return c;
}

void db_pool_release(db_conn_t *c)
{
    if (!c)
        return;
    db_pool_t *p = c->pool;
    /* A connection left inside a transaction (a bug, or a lost COMMIT) must
     * not leak that state to the next user. */
    if (c->pg && PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
        PGresult *r = PQexec(c->pg, "ROLLBACK");
        PQclear(r);
    }
    pthread_mutex_lock(&p->mu);
    c->in_use = false;
    p->in_use--;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void db_pool_stats(db_pool_t *p, db_pool_stats_t *out)
{
    pthread_mutex_lock(&p->mu);
    out->size = p->size;
    out->in_use = p->in_use;
    out->waiting = p->waiting;
    out->acquired = p->acquired;
    out->timeouts = p->timeouts;
    pthread_mutex_unlock(&p->mu);
    out->reconnects = atomic_load(&p->reconnects);
}

PGconn *db_conn_pg(db_conn_t *c)
{
    return c->pg;
}

const char *db_last_sqlstate(db_conn_t *c)
{
    return c->sqlstate;
}

static db_status_t classify(db_conn_t *c, PGresult *r, const char *what)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    snprintf(c->sqlstate, sizeof c->sqlstate, "%s", state ? state : "");
    if (PQstatus(c->pg) != CONNECTION_OK || !state || !strncmp(state, "08", 2) ||
        !strcmp(state, "57P01") || !strcmp(state, "57P02") || !strcmp(state, "57P03"))
        return DB_CONN_LOST;
    if (!strcmp(state, "40001") || !strcmp(state, "40P01"))
        return DB_RETRY;
    if (!strcmp(state, "23505"))
        return DB_CONFLICT;
    const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    log_json(LOG_ERROR, "database statement failed",
             json_pack("{s:s, s:s, s:s}", "statement", what, "sqlstate", state, "error",
                       msg ? msg : "?"));
    return DB_ERROR;
}

db_status_t db_exec(db_conn_t *c, db_stmt_t *st, const db_params_t *p, PGresult **res)
{
    *res = NULL;
    c->sqlstate[0] = '\0';
    int id = __atomic_load_n(&st->id, __ATOMIC_ACQUIRE);
    if (id == 0) {
        int fresh = atomic_fetch_add(&next_stmt_id, 1);
        int expected = 0;
        if (!__atomic_compare_exchange_n(&st->id, &expected, fresh, false, __ATOMIC_ACQ_REL,
                                         __ATOMIC_ACQUIRE))
            fresh = expected;
        id = fresh;
    }
    if (id >= DB_MAX_STMTS)
        abort();
    char name[16];
    snprintf(name, sizeof name, "s%d", id);
    if (!c->prepared[id]) {
        PGresult *r = PQprepare(c->pg, name, st->sql, 0, NULL);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            db_status_t s = classify(c, r, st->name);
            PQclear(r);
            return s;
        }
        PQclear(r);
        c->prepared[id] = 1;
    }
    PGresult *r = PQexecPrepared(c->pg, name, p ? p->n : 0, p ? p->values : NULL,
                                 p ? p->lengths : NULL, p ? p->formats : NULL, 0);
    ExecStatusType es = PQresultStatus(r);
    if (es == PGRES_TUPLES_OK || es == PGRES_COMMAND_OK) {
        *res = r;
        return DB_OK;
    }
    db_status_t s = classify(c, r, st->name);
    PQclear(r);
    return s;
}

db_status_t db_exec_simple(db_conn_t *c, const char *sql)
{
    c->sqlstate[0] = '\0';
    PGresult *r = PQexec(c->pg, sql);
    ExecStatusType es = PQresultStatus(r);
    db_status_t s = (es == PGRES_COMMAND_OK || es == PGRES_TUPLES_OK) ? DB_OK
                                                                        : classify(c, r, sql);
    PQclear(r);
    return s;
}

static void backoff(int attempt)
{
    /* 5, 10, 20 ... ms with full jitter, capped near 1 s: enough for a
     * restarting PostgreSQL, short enough for a serialization retry. */
    uint32_t cap = 5u << (attempt < 8 ? attempt : 8);
    if (cap > 1000)
        cap = 1000;
    usleep((useconds_t)(1000u * (1 + randombytes_uniform(cap))));
}

/* The transaction's id if it has one (it wrote something), read just before
 * COMMIT so that a COMMIT whose answer is lost can be settled; 0 for a
 * transaction that wrote nothing (re-running it is harmless). Costs one round
 * trip; forcing an id at BEGIN instead would make every read-only
 * transaction write and flush a commit record. */
static db_status_t txn_xid(db_conn_t *c, unsigned long long *xid)
{
    *xid = 0;
    PGresult *r = PQexec(c->pg, "SELECT txid_current_if_assigned()");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_status_t s = classify(c, r, "txid_current_if_assigned");
        PQclear(r);
        return s;
    }
    if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
        *xid = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return DB_OK;
}

/* The connection died during COMMIT: only PostgreSQL knows whether it went
 * through. Asks it on a new connection (waiting out a COMMIT still being
 * flushed, or a server coming back): DB_OK when it committed (the callback's
 * first run stands: re-running it would meet its own writes), DB_CONN_LOST
 * when it did not (re-run), DB_UNAVAILABLE when it cannot be told within
 * about 15 s (the caller answers 503; the client retries idempotently). */
static db_status_t commit_outcome(db_conn_t *c, const char *name, unsigned long long xid)
{
    char xs[24];
    snprintf(xs, sizeof xs, "%llu", xid);
    const char *vals[] = {xs};
    for (int attempt = 0; attempt < 60; attempt++) {
        if (attempt > 0)
            usleep(250 * 1000);
        if (!conn_reset(c))
            continue;
        PGresult *r =
            PQexecParams(c->pg, "SELECT txid_status($1::bigint)", 1, NULL, vals, NULL, NULL, 0);
        const char *st =
            PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0)
                ? PQgetvalue(r, 0, 0)
                : NULL;
        bool committed = st && !strcmp(st, "committed"), aborted = st && !strcmp(st, "aborted");
        bool gone = PQresultStatus(r) == PGRES_TUPLES_OK && !st; /* xid too old to tell */
        PQclear(r);
        if (committed || aborted) {
            log_json(LOG_WARN, "COMMIT answer lost; settled by its transaction id",
                     json_pack("{s:s, s:s}", "txn", name, "outcome",
                               committed ? "committed" : "aborted"));
            return committed ? DB_OK : DB_CONN_LOST;
        }
        if (gone)
            break;
        /* "in progress": the old backend is still finishing the COMMIT */
    }
    log_json(LOG_ERROR, "COMMIT answer lost and its outcome cannot be told",
             json_pack("{s:s}", "txn", name));
    return DB_UNAVAILABLE;
}

/* BEGIN; fn; COMMIT once. */
static db_status_t txn_once(db_conn_t *c, db_isolation_t iso, const char *name, db_txn_fn fn,
                            void *cls)
{
    static const char *begins[] = {"BEGIN", "BEGIN ISOLATION LEVEL REPEATABLE READ",
                                   "BEGIN ISOLATION LEVEL SERIALIZABLE"};
    db_status_t s = db_exec_simple(c, begins[iso]);
    if (s != DB_OK)
        return s;
    unsigned long long xid = 0;
    s = fn(c, cls);
    if (s == DB_OK)
        s = txn_xid(c, &xid);
    if (s != DB_OK) {
        if (PQstatus(c->pg) == CONNECTION_OK)
            PC_IGNORE(db_exec_simple(c, "ROLLBACK"));
        return s;
    }
    s = db_exec_simple(c, "COMMIT");
    if (s == DB_CONN_LOST && xid != 0)
        s = commit_outcome(c, name, xid);
    return s;
}

db_status_t db_txn_run_on(db_conn_t *c, db_isolation_t iso, const char *name, db_txn_fn fn,
                          void *cls)
{
    db_status_t s = DB_ERROR;
    for (int attempt = 0; attempt < TXN_MAX_TRIES; attempt++) {
        if (attempt > 0)
            backoff(attempt);
        if (!c->pg || PQstatus(c->pg) != CONNECTION_OK) {
            if (!conn_reset(c)) {
                s = DB_CONN_LOST;
                continue;
            }
        }
        s = iso == DB_AUTOCOMMIT ? fn(c, cls) : txn_once(c, iso, name, fn, cls);
        if (s == DB_RETRY) {
            log_json(LOG_DEBUG, "transaction retry",
                     json_pack("{s:s, s:i}", "txn", name, "attempt", attempt + 1));
            continue;
        }
        if (s == DB_CONN_LOST) {
            log_json(LOG_WARN, "transaction lost its connection; reconnecting",
                     json_pack("{s:s, s:i}", "txn", name, "attempt", attempt + 1));
            (void)conn_reset(c);
            continue;
        }
        return s;
    }
    return s;
}

db_status_t db_txn_run(db_pool_t *p, db_isolation_t iso, const char *name, db_txn_fn fn,
                       void *cls)
{
    db_conn_t *c = db_pool_acquire(p);
    if (!c)
        return DB_UNAVAILABLE;
    db_status_t s = db_txn_run_on(c, iso, name, fn, cls);
    db_pool_release(c);
    return s;
}

const char *db_str(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

int64_t db_i64(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

bool db_bool(const PGresult *r, int row, int col)
{
    return !PQgetisnull(r, row, col) && PQgetvalue(r, row, col)[0] == 't';
}

bool db_isnull(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col);
}

unsigned char *db_bytes(const PGresult *r, int row, int col, size_t *len)
{
    if (PQgetisnull(r, row, col))
        return NULL;
    size_t n = 0;
    unsigned char *raw = PQunescapeBytea((const unsigned char *)PQgetvalue(r, row, col), &n);
    if (!raw)
        return NULL;
    unsigned char *out = malloc(n ? n : 1);
    if (out)
        memcpy(out, raw, n);
    PQfreemem(raw);
    *len = n;
    return out;
}

/* A PostgreSQL array literal of text values, quoted element by element. It
 * travels as a parameter value, never as SQL text. */
char *db_text_array(const char *const *v, int n)
{
    /* worst case per element: two quotes, every byte escaped, a comma;
     * or NULL and a comma */
    size_t cap = 3;
    for (int i = 0; i < n; i++)
        cap += v[i] ? 3 + 2 * strlen(v[i]) : 5;
    char *out = malloc(cap), *o = out;
    *o++ = '{';
    for (int i = 0; i < n; i++) {
        if (i)
            *o++ = ',';
        if (!v[i]) {
            memcpy(o, "NULL", 4);
            o += 4;
            continue;
        }
        *o++ = '"';
        for (const char *s = v[i]; *s; s++) {
            if (*s == '"' || *s == '\\')
                *o++ = '\\';
            *o++ = *s;
        }
        *o++ = '"';
    }
    *o++ = '}';
    *o = '\0';
    return out;
}

