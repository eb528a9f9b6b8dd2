/* The adapter registry: adding a provider is one file (providers/<type>.c
 * with its code table) plus one line here. */
#include "providers/internal.h"
#include <string.h>

extern const prv_adapter_t prv_adapter_stripe;
extern const prv_adapter_t prv_adapter_adyen;
extern const prv_adapter_t prv_adapter_checkout;

static const prv_adapter_t *const adapters[] = {
    &prv_adapter_stripe,
    &prv_adapter_adyen,
    &prv_adapter_checkout,
};

const prv_adapter_t *prv_adapter_find(const char *type)
{
    for (size_t i = 0; type && i < PC_ARRAY_LEN(adapters); i++)
        if (!strcmp(adapters[i]->type, type))
            return adapters[i];
    return NULL;
}
