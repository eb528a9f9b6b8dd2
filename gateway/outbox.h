/* gateway/outbox: the dispatcher's view of outbox rows (internal). */
#ifndef PORTCULLIS_OUTBOX_H
#define PORTCULLIS_OUTBOX_H

#include "gateway/checkout.h"

typedef enum { OUTBOX_EVENT, OUTBOX_INVENTORY_COMMIT, OUTBOX_INVENTORY_RELEASE } outbox_kind_t;
typedef enum { OUTBOX_RETRY = 0, OUTBOX_DELIVERED, OUTBOX_FAILED } outbox_result_t;

typedef struct {
    int64_t id;
    outbox_kind_t kind;
    char merchant_id[IDS_MAX];
    char event_id[IDS_MAX];
    char endpoint_id[72];
    char *target; /* webhook URL or reservation id */
    int attempts;
    int64_t lease; /* the claim's leased_until, in epoch microseconds */
    int64_t age_s; /* since the row was queued */
    bool maybe_done; /* an earlier try's outcome is unknown (inventory commits) */
    bool too_old;
    char *ev_type;
    char ev_created[32]; /* RFC 3339 UTC, like every time in the API */
    char *ev_data;
    char *secret_sealed;
    char *previous_sealed;
    /* filled by the delivery */
    outbox_result_t result;
    double retry_in_s;
    char error[200];
    bool unknown_now; /* this try's outcome is unknown: recorded as maybe_done */
} outbox_item_t;

/* Claims up to `limit` due rows (one statement, its own transaction) and
 * leases them for lease_s seconds: they come due again if no result is
 * recorded by then. */
db_status_t db_outbox_claim(db_conn_t *c, int limit, int64_t max_age_s, int lease_s,
                            outbox_item_t **items, int *n) PC_WUR;
/* Records the deliveries' results, each only if its row is still pending
 * under this claim's lease: a dispatcher that overran its lease (the row
 * claimed again meanwhile) or a row given up meanwhile (its endpoint
 * disabled) records nothing. */
db_status_t db_outbox_results(db_conn_t *c, const outbox_item_t *items, int n) PC_WUR;
/* The checkout (and its merchant) that holds a reservation id. */
db_status_t db_outbox_reservation_owner(db_conn_t *c, const char *reservation_id,
                                        char checkout_id[IDS_MAX],
                                        char merchant_id[IDS_MAX]) PC_WUR;
/* Gives up the pending deliveries to a webhook endpoint being disabled. */
db_status_t db_outbox_cancel_endpoint(db_conn_t *c, const char *merchant_id,
                                      const char *endpoint_id) PC_WUR;

#endif
