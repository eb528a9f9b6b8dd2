/* Configuration: JSON file, then environment, then flags, all checked
 * against one declarative list. A bad value stops start-up naming the key. */
#include "util/util.h"
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    char *text; /* value as text; for CFG_SECRET, the file path */
    const char *source;
} cfg_val_t;

static int failf(cfg_error_t *err, const char *fmt, ...) PC_PRINTF(2, 3);
static int failf(cfg_error_t *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return -1;
}

static const cfg_item_t *find_key(const cfg_item_t *items, size_t n, const char *key, size_t *idx)
{
    for (size_t i = 0; i < n; i++) {
        const char *k = items[i].key;
        if (items[i].type == CFG_SECRET) {
            size_t kl = strlen(k);
            if (strncmp(key, k, kl) == 0 && strcmp(key + kl, "_file") == 0) {
                *idx = i;
                return &items[i];
            }
        } else if (strcmp(k, key) == 0) {
            *idx = i;
            return &items[i];
        }
    }
    return NULL;
}

static bool looks_secret(const char *key)
{
    static const char *words[] = {"password", "secret", "token", "api_key", "kek", "pepper",
                                  "private_key", "credential"};
    const char *leaf = strrchr(key, '.');
    leaf = leaf ? leaf + 1 : key;
    size_t l = strlen(leaf);
    if (l > 5 && strcmp(leaf + l - 5, "_file") == 0)
        return false;
    for (size_t i = 0; i < PC_ARRAY_LEN(words); i++)
        if (strstr(leaf, words[i]))
            return true;
    return false;
}

static int set_from_json(const cfg_item_t *items, size_t n, cfg_val_t *vals, const char *path,
                         json_t *v, cfg_error_t *err)
{
    if (json_is_object(v)) {
        const char *k;
        json_t *sub;
        json_object_foreach(v, k, sub)
        {
            char p[256];
            if (snprintf(p, sizeof p, "%s%s%s", path, *path ? "." : "", k) >= (int)sizeof p)
                return failf(err, "%s: key too long", path);
            if (set_from_json(items, n, vals, p, sub, err) != 0)
                return -1;
        }
        return 0;
    }
    size_t i;
    const cfg_item_t *it = find_key(items, n, path, &i);
    if (!it) {
        if (looks_secret(path))
            return failf(err,
                         "%s: secrets are not accepted in the config file; write the secret to "
                         "a file readable only by its owner and set %s_file (or use "
                         "$CREDENTIALS_DIRECTORY)",
                         path, path);
        return failf(err, "%s: unknown configuration key", path);
    }
    char buf[64];
    const char *text = NULL;
    switch (it->type) {
    case CFG_STRING:
    case CFG_SECRET:
        if (!json_is_string(v))
            return failf(err, "%s: must be a string", path);
        text = json_string_value(v);
        break;
    case CFG_INT:
        if (!json_is_integer(v))
            return failf(err, "%s: must be an integer", path);
        snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        text = buf;
        break;
    case CFG_BOOL:
        if (!json_is_boolean(v))
            return failf(err, "%s: must be true or false", path);
        text = json_is_true(v) ? "true" : "false";
        break;
    }
    free(vals[i].text);
    vals[i].text = strdup(text);
    vals[i].source = "config file";
    return 0;
}

static int load_file(const cfg_item_t *items, size_t n, cfg_val_t *vals, const char *file,
                     cfg_error_t *err)
{
    json_error_t je;
    size_t len;
    char *buf = file_read_all(file, 1 << 20, &len);
    if (!buf)
        return failf(err, "%s: cannot read: %s", file, strerror(errno));
    json_t *root = json_loads_strict(buf, len, &je);
    free(buf);
    if (!root)
        return failf(err, "%s:%d:%d: invalid JSON: %s", file, je.line, je.column, je.text);
    int rc = json_is_object(root) ? set_from_json(items, n, vals, "", root, err)
                                  : failf(err, "%s: must contain a JSON object", file);
    json_decref(root);
    return rc;
}

static void print_help(const cfg_item_t *items, size_t n, const char *usage)
{
    printf("%s\n\nOptions (flag / environment / config key):\n", usage);
    printf("  --config FILE  JSON configuration file\n");
    for (size_t i = 0; i < n; i++) {
        const cfg_item_t *it = &items[i];
        printf("  %-22s %-28s %s%s\n", it->flag ? it->flag : "-", it->env ? it->env : "-",
               it->key, it->type == CFG_SECRET ? "_file" : "");
        printf("      %s%s%s%s\n", it->help ? it->help : "", it->def ? " (default " : "",
               it->def ? it->def : "", it->def ? ")" : "");
    }
}

static int convert(const cfg_item_t *it, const char *text, const char *source, cfg_error_t *err)
{
    switch (it->type) {
    case CFG_STRING:
        *(char **)it->dest = strdup(text);
        return 0;
    case CFG_INT: {
        char *end;
        errno = 0;
        long long v = strtoll(text, &end, 10);
        if (errno || end == text || *end)
            return failf(err, "%s: must be an integer (from %s)", it->key, source);
        if ((it->min || it->max) && (v < it->min || v > it->max))
            return failf(err, "%s: must be between %" PRId64 " and %" PRId64 " (from %s)",
                         it->key, it->min, it->max, source);
        *(int64_t *)it->dest = v;
        return 0;
    }
    case CFG_BOOL:
        if (!strcmp(text, "true") || !strcmp(text, "1") || !strcmp(text, "yes"))
            *(bool *)it->dest = true;
        else if (!strcmp(text, "false") || !strcmp(text, "0") || !strcmp(text, "no"))
            *(bool *)it->dest = false;
        else
            return failf(err, "%s: must be true or false (from %s)", it->key, source);
        return 0;
    case CFG_SECRET: {
        char e[400];
        secret_t *s = secret_read_file(text, e, sizeof e);
        if (!s)
            return failf(err, "%s_file: %s", it->key, e);
        *(secret_t **)it->dest = s;
        return 0;
    }
    }
    return -1;
}

static int finish(const cfg_item_t *items, size_t n, cfg_val_t *vals, cfg_error_t *err)
{
    for (size_t i = 0; i < n; i++) {
        const cfg_item_t *it = &items[i];
        const char *text = vals[i].text, *src = vals[i].source;
        char credpath[4096];
        if (!text && it->type == CFG_SECRET && it->cred) {
            const char *dir = getenv("CREDENTIALS_DIRECTORY");
            if (dir && snprintf(credpath, sizeof credpath, "%s/%s", dir, it->cred) <
                           (int)sizeof credpath &&
                access(credpath, F_OK) == 0) {
                text = credpath;
                src = "$CREDENTIALS_DIRECTORY";
            }
        }
        if (!text && it->def) {
            text = it->def;
            src = "default";
        }
        if (!text) {
            if (it->flags & CFG_REQUIRED)
                return failf(err, "%s%s: required but not set%s%s%s%s", it->key,
                             it->type == CFG_SECRET ? "_file" : "", it->env ? " (or " : "",
                             it->env ? it->env : "", it->env ? ")" : "",
                             it->cred ? "; or provide it as a systemd credential" : "");
            continue;
        }
        if (convert(it, text, src, err) != 0)
            return -1;
    }
    return 0;
}

int cfg_load(const cfg_item_t *items, size_t n, int argc, char **argv, const char *usage,
             cfg_error_t *err)
{
    cfg_val_t *vals = calloc(n, sizeof *vals);
    int rc = -1;
    const char *file = NULL;
    err->msg[0] = '\0';
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--help") || !strcmp(argv[a], "-h")) {
            print_help(items, n, usage);
            rc = 1;
            goto out;
        }
        if (!strcmp(argv[a], "--config") && a + 1 < argc)
            file = argv[++a];
        else if (!strncmp(argv[a], "--config=", 9))
            file = argv[a] + 9;
    }
    if (file && load_file(items, n, vals, file, err) != 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const char *ev = items[i].env ? getenv(items[i].env) : NULL;
        if (ev && *ev) {
            free(vals[i].text);
            vals[i].text = strdup(ev);
            vals[i].source = items[i].env;
        }
    }
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (!strcmp(arg, "--config")) {
            a++;
            continue;
        }
        if (!strncmp(arg, "--config=", 9))
            continue;
        const char *eq = strchr(arg, '=');
        size_t flen = eq ? (size_t)(eq - arg) : strlen(arg);
        size_t i;
        for (i = 0; i < n; i++)
            if (items[i].flag && strlen(items[i].flag) == flen &&
                !strncmp(items[i].flag, arg, flen))
                break;
        if (i == n) {
            failf(err, "%s: unknown option (see --help)", arg);
            goto out;
        }
        const char *val = eq ? eq + 1 : NULL;
        if (!val && items[i].type == CFG_BOOL)
            val = "true";
        else if (!val) {
            if (a + 1 >= argc) {
                failf(err, "%s: needs a value", arg);
                goto out;
            }
            val = argv[++a];
        }
        free(vals[i].text);
        vals[i].text = strdup(val);
        vals[i].source = items[i].flag;
    }
    rc = finish(items, n, vals, err);
out:
    for (size_t i = 0; i < n; i++)
        free(vals[i].text);
    free(vals);
    return rc;
}

void cfg_free(const cfg_item_t *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!items[i].dest)
            continue;
        if (items[i].type == CFG_STRING) {
            free(*(char **)items[i].dest);
            *(char **)items[i].dest = NULL;
        } else if (items[i].type == CFG_SECRET) {
            secret_free(*(secret_t **)items[i].dest);
            *(secret_t **)items[i].dest = NULL;
        }
    }
}
