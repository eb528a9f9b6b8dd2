/* gateway/payments: gatewayd's side of the providers subsystem: each
 * merchant's provider configs (credentials unsealed from the vault) and
 * routing document, cached per configuration generation. Internal. */
#ifndef PORTCULLIS_PAYMENTS_H
#define PORTCULLIS_PAYMENTS_H

#include "gateway/gateway.h"
#include "providers/providers.h"

typedef struct {
    int refs;
    uint64_t generation;
    char merchant_id[IDS_MAX];
    prv_config_t *configs;
    size_t n;
    prv_routing_t *routing; /* NULL: every enabled provider by priority */
    json_t *routing_doc;    /* as stored, NULL when none */
} gw_providers_t;

/* A snapshot of the merchant's providers (release it). DB_UNAVAILABLE when
 * neither the database nor the vault answered and nothing was cached. */
db_status_t gw_providers_get(const char *merchant_id, gw_providers_t **out) PC_WUR;
void gw_providers_release(gw_providers_t *p);
const prv_config_t *gw_providers_find(const gw_providers_t *p, const char *name);
void gw_providers_cache_clear(void);
/* Registers the providers' Prometheus lines with gatewayd's /metrics. */
void gw_providers_metrics_init(void);

#endif
