/* API keys: random, shown once, stored only as a keyed BLAKE2b hash. */
#include "gateway/gateway.h"
#include <sodium.h>
#include <stdio.h>
#include <string.h>

static const struct {
    gw_role_t role;
    const char *name;
} role_names[] = {{GW_ROLE_PK, "pk"}, {GW_ROLE_SK, "sk"}, {GW_ROLE_AK, "ak"}};

const char *gw_role_name(gw_role_t r)
{
    for (size_t i = 0; i < PC_ARRAY_LEN(role_names); i++)
        if (role_names[i].role == r)
            return role_names[i].name;
    return "?";
}

bool gw_role_parse(const char *s, gw_role_t *out)
{
    for (size_t i = 0; i < PC_ARRAY_LEN(role_names); i++)
        if (s && strcmp(s, role_names[i].name) == 0) {
            *out = role_names[i].role;
            return true;
        }
    return false;
}

gw_role_t gw_key_role(const char *key)
{
    /* "<pk|sk|ak>_<test|live>_<32 URL-safe base64 chars>" */
    if (!key || strlen(key) != 3 + 5 + GW_KEY_RANDOM_CHARS)
        return 0;
    if (key[2] != '_' || (strncmp(key + 3, "test_", 5) && strncmp(key + 3, "live_", 5)))
        return 0;
    for (const char *p = key + 8; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_'))
            return 0;
    char r[3] = {key[0], key[1], 0};
    gw_role_t role;
    return gw_role_parse(r, &role) ? role : 0;
}

void gw_key_generate(gw_role_t role, char out[GW_KEY_MAX])
{
    unsigned char rnd[24];
    char b64[sodium_base64_ENCODED_LEN(24, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    randombytes_buf(rnd, sizeof rnd);
    sodium_bin2base64(b64, sizeof b64, rnd, sizeof rnd, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    snprintf(out, GW_KEY_MAX, "%s_test_%s", gw_role_name(role), b64);
    sodium_memzero(rnd, sizeof rnd);
    sodium_memzero(b64, sizeof b64);
}

void gw_key_hash(const secret_t *pepper, const char *key, unsigned char out[32])
{
    /* BLAKE2b keys are at most 64 bytes; a longer pepper is hashed down. */
    unsigned char k[32];
    crypto_generichash(k, sizeof k, pepper->data, pepper->len, NULL, 0);
    crypto_generichash(out, 32, (const unsigned char *)key, strlen(key), k, sizeof k);
    sodium_memzero(k, sizeof k);
}

void gw_key_display(const char *key, char out[GW_KEY_MAX])
{
    size_t n = strlen(key);
    if (n < 16) {
        snprintf(out, GW_KEY_MAX, "%.3s...", key);
        return;
    }
    snprintf(out, GW_KEY_MAX, "%.12s...%s", key, key + n - 4);
}
