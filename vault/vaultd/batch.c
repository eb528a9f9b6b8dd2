/* Group commit: tokenizations and audit records. A thread queues its item;
 * the first one to find no batch of its group in progress becomes the
 * leader, takes everything queued (up to BATCH_MAX) and writes it with one
 * statement, then wakes the others. While that commit waits for its WAL
 * flush, the next batch gathers.
 *
 * Trade-off: no timer, so a lone request is never delayed (a batch of one
 * is the plain insert); under load, one parse, one executor start and one
 * commit serve many rows. A batch that fails for anything but a lost
 * connection or an unavailable database is retried row by row, so one bad
 * row never fails the others. Each card's caller still holds the key
 * ring's read lock until its own row is committed, which is what retire
 * relies on; each detokenizing caller holds the plaintext back until its
 * audit record is committed. */
#include "vault/vaultd/vaultd.h"

#define BATCH_MAX 64

db_status_t vd_group_commit(vd_group_t *g, db_pool_t *pool, vd_group_item_t *item)
{
    /* One condition variable per waiting caller, so that finishing a batch
     * wakes exactly its callers and the next leader, not every thread. */
    pthread_cond_t cv;
    pthread_cond_init(&cv, NULL);
    item->cv = &cv;
    item->done = false;
    item->next = NULL;
    pthread_mutex_lock(&g->mu);
    if (g->tail)
        g->tail->next = item;
    else
        g->head = item;
    g->tail = item;
    while (!item->done) {
        if (g->leading) {
            pthread_cond_wait(&cv, &g->mu);
            continue;
        }
        g->leading = true;
        vd_group_item_t *batch[BATCH_MAX];
        int n = 0;
        while (g->head && n < BATCH_MAX) {
            batch[n++] = g->head;
            g->head = g->head->next;
        }
        if (!g->head)
            g->tail = NULL;
        pthread_mutex_unlock(&g->mu);
        g->run(pool, batch, n);
        pthread_mutex_lock(&g->mu);
        atomic_fetch_add(&g->batches, 1);
        atomic_fetch_add(&g->rows, (uint64_t)n);
        for (int i = 0; i < n; i++) {
            batch[i]->done = true;
            if (batch[i] != item)
                pthread_cond_signal(batch[i]->cv);
        }
        g->leading = false;
        if (g->head) /* whoever queued meanwhile leads the next batch */
            pthread_cond_signal(g->head->cv);
    }
    pthread_mutex_unlock(&g->mu);
    pthread_cond_destroy(&cv);
    return item->result;
}

/* ------------------------------------------------------------ cards */

static db_status_t cards_write(db_conn_t *c, vd_group_item_t **items, int n)
{
    if (n == 1) {
        const vd_card_insert_t *it = (const vd_card_insert_t *)items[0];
        return vdb_card_insert(c, it->row, it->version, it->nonce, it->ct);
    }
    vd_card_insert_t *cards[BATCH_MAX];
    for (int i = 0; i < n; i++)
        cards[i] = (vd_card_insert_t *)items[i];
    return vdb_cards_insert_many(c, cards, n);
}

/* Autocommit: one round trip. On a lost connection the statement may have
 * committed: on the retry, a unique violation means it did (tokens are
 * 128-bit random, so nothing else collides). */
static void cards_run(db_pool_t *pool, vd_group_item_t **items, int n)
{
    db_conn_t *c = db_pool_acquire(pool);
    db_status_t s = c ? cards_write(c, items, n) : DB_UNAVAILABLE;
    if (s == DB_CONN_LOST) {
        db_pool_release(c);
        c = db_pool_acquire(pool);
        s = c ? cards_write(c, items, n) : DB_UNAVAILABLE;
        if (s == DB_CONFLICT)
            s = DB_OK;
    }
    for (int i = 0; i < n; i++)
        items[i]->result = s;
    if (s != DB_OK && s != DB_UNAVAILABLE && s != DB_CONN_LOST && n > 1 && c)
        for (int i = 0; i < n; i++)
            items[i]->result = cards_write(c, &items[i], 1);
    db_pool_release(c);
}

vd_group_t vd_card_group = VD_GROUP_INIT(cards_run);

db_status_t vd_batch_insert(db_pool_t *pool, vd_card_insert_t *item)
{
    return vd_group_commit(&vd_card_group, pool, &item->g);
}

/* ------------------------------------------------------------ audit */

typedef struct {
    vd_group_item_t g;
    const audit_event_t *ev;
} audit_item_t;

typedef struct {
    vd_group_item_t **items;
    int n;
} audit_batch_t;

static db_status_t audit_txn(db_conn_t *c, void *cls)
{
    const audit_batch_t *b = cls;
    const audit_event_t *evs[BATCH_MAX];
    for (int i = 0; i < b->n; i++)
        evs[i] = ((const audit_item_t *)b->items[i])->ev;
    return audit_append_many(c, evs, b->n);
}

/* A transaction rather than autocommit: audit rows have no natural key, so
 * only db_txn_run's settlement of a lost COMMIT by transaction id keeps a
 * lost answer from writing a record twice. */
static void audit_run(db_pool_t *pool, vd_group_item_t **items, int n)
{
    audit_batch_t b = {.items = items, .n = n};
    db_status_t s = db_txn_run(pool, DB_READ_COMMITTED, "vault_audit", audit_txn, &b);
    for (int i = 0; i < n; i++)
        items[i]->result = s;
    if (s != DB_OK && s != DB_UNAVAILABLE && n > 1)
        for (int i = 0; i < n; i++) {
            audit_batch_t one = {.items = &items[i], .n = 1};
            items[i]->result = db_txn_run(pool, DB_READ_COMMITTED, "vault_audit", audit_txn, &one);
        }
}

vd_group_t vd_audit_group = VD_GROUP_INIT(audit_run);

db_status_t vd_audit(db_pool_t *pool, const audit_event_t *ev)
{
    audit_item_t item = {.ev = ev};
    return vd_group_commit(&vd_audit_group, pool, &item.g);
}
