/* Group commit of tokenizations. A tokenizing thread queues its sealed
 * record; the first one to find no batch in progress becomes the leader,
 * takes everything queued (up to BATCH_MAX) and inserts it with one
 * statement in one transaction, then wakes the others. While that commit
 * waits for its WAL flush, the next batch gathers.
 *
 * Trade-off: no timer, so a lone request is never delayed (a batch of one
 * is the plain insert); under load, one parse, one executor start and one
 * commit serve many cards. A batch that fails for anything but a lost
 * connection is retried row by row, so one bad row never fails the others.
 * Each caller still holds the key ring's read lock until its own row is
 * committed, which is what retire relies on. */
#include "vault/vaultd/vaultd.h"
#include <pthread.h>

#define BATCH_MAX 64

atomic_uint_fast64_t vd_batches, vd_batched_rows;

static struct {
    pthread_mutex_t mu;
    vd_card_insert_t *head, *tail;
    bool leading;
} bq = {.mu = PTHREAD_MUTEX_INITIALIZER};

static db_status_t insert_one(db_conn_t *c, const vd_card_insert_t *it)
{
    return vdb_card_insert(c, it->row, it->version, it->nonce, it->ct);
}

/* Runs one batch; sets each item's result (not `done`). */
static void run_batch(db_pool_t *pool, vd_card_insert_t **items, int n)
{
    db_conn_t *c = db_pool_acquire(pool);
    db_status_t s = !c       ? DB_UNAVAILABLE
                    : n == 1 ? insert_one(c, items[0])
                             : vdb_cards_insert_many(c, items, n);
    if (s == DB_CONN_LOST) {
        /* The statement may have committed before the connection died: on
         * the retry, a unique violation means it did (tokens are 128-bit
         * random, so nothing else collides). */
        db_pool_release(c);
        c = db_pool_acquire(pool);
        s = !c       ? DB_UNAVAILABLE
            : n == 1 ? insert_one(c, items[0])
                     : vdb_cards_insert_many(c, items, n);
        if (s == DB_CONFLICT)
            s = DB_OK;
    }
    for (int i = 0; i < n; i++)
        items[i]->result = s;
    if (s != DB_OK && s != DB_UNAVAILABLE && s != DB_CONN_LOST && n > 1 && c)
        for (int i = 0; i < n; i++)
            items[i]->result = insert_one(c, items[i]);
    db_pool_release(c);
}

db_status_t vd_batch_insert(db_pool_t *pool, vd_card_insert_t *item)
{
    /* One condition variable per waiting caller, so that finishing a batch
     * wakes exactly its callers and the next leader, not every thread. */
    pthread_cond_t cv;
    pthread_cond_init(&cv, NULL);
    item->cv = &cv;
    item->done = false;
    item->next = NULL;
    pthread_mutex_lock(&bq.mu);
    if (bq.tail)
        bq.tail->next = item;
    else
        bq.head = item;
    bq.tail = item;
    while (!item->done) {
        if (bq.leading) {
            pthread_cond_wait(&cv, &bq.mu);
            continue;
        }
        bq.leading = true;
        vd_card_insert_t *batch[BATCH_MAX];
        int n = 0;
        while (bq.head && n < BATCH_MAX) {
            batch[n++] = bq.head;
            bq.head = bq.head->next;
        }
        if (!bq.head)
            bq.tail = NULL;
        pthread_mutex_unlock(&bq.mu);
        run_batch(pool, batch, n);
        pthread_mutex_lock(&bq.mu);
        atomic_fetch_add(&vd_batches, 1);
        atomic_fetch_add(&vd_batched_rows, (uint64_t)n);
        for (int i = 0; i < n; i++) {
            batch[i]->done = true;
            if (batch[i] != item)
                pthread_cond_signal(batch[i]->cv);
        }
        bq.leading = false;
        if (bq.head) /* whoever queued meanwhile leads the next batch */
            pthread_cond_signal(bq.head->cv);
    }
    pthread_mutex_unlock(&bq.mu);
    pthread_cond_destroy(&cv);
    return item->result;
}
