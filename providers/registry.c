/* The adapter registry: adding a provider is one file (providers/<type>.c
 * with its code table) plus one line here. */
#include "providers/internal.h"
#include <curl/curl.h>
#include <string.h>
#include <strings.h>

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

/* host is domain, or ends in "." + domain (a label boundary, so that
 * "evilstripe.com" is not "stripe.com"). Case-insensitive, as DNS is. */
static bool host_in_domain(const char *domain, size_t dl, const void *ctx)
{
    const char *host = ctx;
    size_t hl = strlen(host);
    if (hl == dl)
        return strncasecmp(host, domain, dl) == 0;
    return hl > dl && host[hl - dl - 1] == '.' && strncasecmp(host + hl - dl, domain, dl) == 0;
}

bool prv_base_url_allowed(const prv_adapter_t *a, const char *url)
{
    if (!a || !httpc_url_outbound_ok(url, false))
        return false;
    if (httpc_url_is_loopback_http(url))
        return true; /* outbound_ok has already applied allow_loopback_http */
    CURLU *u = curl_url();
    char *host = NULL;
    bool ok = u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
              prv_words_any(a->api_domains, host_in_domain, host);
    curl_free(host);
    curl_url_cleanup(u);
    return ok;
}
