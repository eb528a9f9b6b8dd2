/* Cross-instance change notices: a thread LISTENs on portcullis_config and
 * bumps gw_config_generation; caches (API keys, and later provider and fraud
 * configuration) compare generations instead of asking the database. After a
 * lost connection it bumps too, since notices may have been missed. */
#include "gateway/gateway.h"
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

atomic_uint_fast64_t gw_config_generation = 1;

static pthread_t notify_thread;
static atomic_bool notify_stop;
static bool notify_running;

static PGconn *listen_connect(void)
{
    /* keepalives: a listener silently deaf after a failover would miss
     * every change notice */
    PGconn *pg = db_connect(gw_cfg.db_conninfo, "gatewayd-listen",
                            gw_cfg.db_password ? secret_str(gw_cfg.db_password) : NULL);
    if (PQstatus(pg) != CONNECTION_OK) {
        PQfinish(pg);
        return NULL;
    }
    PGresult *r = PQexec(pg, "LISTEN portcullis_config");
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok) {
        PQfinish(pg);
        return NULL;
    }
    return pg;
}

/* A listener that has heard nothing for this long proves it is still
 * connected with a round trip; a deaf listener would let caches without a
 * TTL (provider snapshots) outlive a change for as long as it stays deaf. */
#define PROBE_AFTER_US (30 * 1000000LL)

static bool listener_alive(PGconn *pg)
{
    PGresult *r = PQexec(pg, "SELECT 1");
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    PQclear(r);
    return ok && PQstatus(pg) == CONNECTION_OK;
}

static void *notify_main(void *arg)
{
    PGconn *pg = NULL;
    int64_t heard = 0;
    while (!atomic_load(&notify_stop)) {
        if (!pg) {
            pg = listen_connect();
            atomic_fetch_add(&gw_config_generation, 1);
            if (!pg) {
                usleep(500 * 1000);
                continue;
            }
            heard = time_mono_us();
        }
        struct pollfd pfd = {.fd = PQsocket(pg), .events = POLLIN};
        int rc = poll(&pfd, 1, 250);
        if (rc < 0)
            continue;
        if (rc == 0 && time_mono_us() - heard > PROBE_AFTER_US) {
            if (!listener_alive(pg)) {
                log_warn("config listener lost its database connection");
                PQfinish(pg);
                pg = NULL;
                continue;
            }
            heard = time_mono_us();
        }
        if (rc > 0)
            heard = time_mono_us();
        if (rc > 0 && !PQconsumeInput(pg)) {
            log_warn("config listener lost its database connection");
            PQfinish(pg);
            pg = NULL;
            continue;
        }
        PGnotify *n;
        bool any = false;
        while ((n = PQnotifies(pg)) != NULL) {
            any = true;
            PQfreemem(n);
        }
        if (any)
            atomic_fetch_add(&gw_config_generation, 1);
        if (PQstatus(pg) != CONNECTION_OK) {
            PQfinish(pg);
            pg = NULL;
        }
    }
    if (pg)
        PQfinish(pg);
    return NULL;
}

int gw_notify_start(void)
{
    atomic_store(&notify_stop, false);
    if (pthread_create(&notify_thread, NULL, notify_main, NULL) != 0)
        return -1;
    notify_running = true;
    return 0;
}

void gw_notify_stop(void)
{
    if (!notify_running)
        return;
    atomic_store(&notify_stop, true);
    pthread_join(notify_thread, NULL);
    notify_running = false;
}
