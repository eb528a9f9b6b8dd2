/* pci: the PCI scope log. Every security-relevant event (key use,
 * detokenize, key rotation, configuration change, authentication failure)
 * is appended to audit.events, which services may insert into but never
 * update or delete. */
#ifndef PORTCULLIS_PCI_AUDIT_H
#define PORTCULLIS_PCI_AUDIT_H

#include "util/util.h"

typedef struct {
    const char *actor;       /* "vaultd", "gatewayd", "key:<key id>", "gatewayctl" */
    const char *action;      /* "card.detokenize", "key.rotate", "config.change" ... */
    const char *merchant_id; /* may be NULL */
    const char *object;      /* token, provider name, key id ... never card data */
    json_t *detail;          /* borrowed; may be NULL; never card data */
} audit_event_t;

/* Appends one record inside the caller's transaction (or alone). */
db_status_t audit_append(db_conn_t *c, const audit_event_t *ev) PC_WUR PC_NONNULL;
/* Appends n records, in order, with one statement. */
db_status_t audit_append_many(db_conn_t *c, const audit_event_t *const *evs,
                              int n) PC_WUR PC_NONNULL;

#endif
