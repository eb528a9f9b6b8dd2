/* The velocity janitor: a thread that deletes events that left the longest
 * window, in batches, so the table stays the size of one day of traffic.
 * Every instance may run one; SKIP LOCKED makes them share the work. */
#include "fraud/internal.h"
#include <errno.h>
#include <pthread.h>
#include <time.h>

#define JANITOR_BATCH   10000
#define JANITOR_BATCHES 20 /* per round: a backlog drains over rounds, not in one burst */

static pthread_t janitor_thread;
static pthread_mutex_t janitor_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t janitor_cv;
static bool janitor_running, janitor_stop;
static db_pool_t *janitor_pool;
static int janitor_interval_s;

static void round_run(void)
{
    db_conn_t *c = db_pool_acquire(janitor_pool);
    if (!c)
        return;
    int64_t total = 0, n = 0;
    for (int i = 0; i < JANITOR_BATCHES; i++) {
        if (fraud_velocity_cleanup(c, 0, JANITOR_BATCH, &n) != DB_OK)
            break;
        total += n;
        if (n < JANITOR_BATCH)
            break;
    }
    db_pool_release(c);
    if (total > 0)
        log_json(LOG_DEBUG, "fraud velocity cleanup",
                 json_pack("{s:I}", "deleted", (json_int_t)total));
}

static void *janitor_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&janitor_mu);
    while (!janitor_stop) {
        pthread_mutex_unlock(&janitor_mu);
        round_run();
        pthread_mutex_lock(&janitor_mu);
        struct timespec dl;
        clock_gettime(CLOCK_MONOTONIC, &dl);
        dl.tv_sec += janitor_interval_s;
        while (!janitor_stop && pthread_cond_timedwait(&janitor_cv, &janitor_mu, &dl) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&janitor_mu);
    return NULL;
}

int fraud_janitor_start(db_pool_t *pool, int interval_s)
{
    if (janitor_running)
        return 0;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&janitor_cv, &ca);
    pthread_condattr_destroy(&ca);
    janitor_pool = pool;
    janitor_interval_s = interval_s > 0 ? interval_s : 60;
    janitor_stop = false;
    if (pthread_create(&janitor_thread, NULL, janitor_main, NULL) != 0) {
        pthread_cond_destroy(&janitor_cv);
        return -1;
    }
    janitor_running = true;
    return 0;
}

void fraud_janitor_stop(void)
{
    if (!janitor_running)
        return;
    pthread_mutex_lock(&janitor_mu);
    janitor_stop = true;
    pthread_cond_signal(&janitor_cv);
    pthread_mutex_unlock(&janitor_mu);
    pthread_join(janitor_thread, NULL);
    pthread_cond_destroy(&janitor_cv);
    janitor_running = false;
}
