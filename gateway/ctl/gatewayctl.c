/* gatewayctl: operator commands for the gateway: schema migrations, merchant
 * creation and API-key rotation and revocation. Keys are printed once and
 * only their keyed hashes are stored. */
#include "gateway/gateway.h"
#include "gateway/db/gwdb.h"
#include "pci/audit.h"
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *usage =
    "usage: gatewayctl [--config FILE] [options] COMMAND\n"
    "\n"
    "commands:\n"
    "  migrate                              apply pending schema migrations (as the schema owner)\n"
    "  merchant create NAME                 create a merchant; prints its pk/sk/ak keys once\n"
    "  key rotate MERCHANT_ID ROLE          issue a new pk|sk|ak key; the old ones stop working\n"
    "                                       now, or after --grace SECONDS\n"
    "  key revoke KEY_ID                    revoke one key now\n"
    "  key list MERCHANT_ID                 list a merchant's keys (never the keys themselves)\n"
    "\n"
    "  --json                               machine-readable output\n"
    "  --grace SECONDS                      rotation grace period (default 0)";

static bool opt_json;
static int64_t opt_grace;

static int die(const char *fmt, ...) PC_PRINTF(1, 2);
static int die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "gatewayctl: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return 2;
}

/* Separates gatewayctl's own words and flags from the configuration flags,
 * which go to cfg_load. */
static int split_args(int argc, char **argv, char **cfgv, int *cfgc, char **words, int *nwords)
{
    *cfgc = 1;
    cfgv[0] = argv[0];
    *nwords = 0;
    for (int a = 1; a < argc; a++) {
        const char *s = argv[a];
        if (!strcmp(s, "--json")) {
            opt_json = true;
        } else if (!strcmp(s, "--grace") && a + 1 < argc) {
            char *end;
            opt_grace = strtoll(argv[++a], &end, 10);
            if (*end || opt_grace < 0 || opt_grace > 90 * 86400)
                return die("--grace: must be between 0 and %d seconds", 7776000);
        } else if (s[0] == '-' && s[1] == '-') {
            cfgv[(*cfgc)++] = argv[a];
            if (strchr(s, '=') || !strcmp(s, "--help"))
                continue;
            bool takes_value = !strcmp(s, "--config");
            for (size_t i = 0; i < gw_cfg_nitems; i++)
                if (gw_cfg_items[i].flag && !strcmp(gw_cfg_items[i].flag, s) &&
                    gw_cfg_items[i].type != CFG_BOOL)
                    takes_value = true;
            if (takes_value && a + 1 < argc)
                cfgv[(*cfgc)++] = argv[++a];
        } else if (!strcmp(s, "-h")) {
            cfgv[(*cfgc)++] = "--help";
        } else {
            words[(*nwords)++] = argv[a];
        }
    }
    return 0;
}

static PGconn *connect_admin(void)
{
    if (!gw_cfg.migrate_conninfo) {
        fprintf(stderr, "gatewayctl: migrate.conninfo: required for migrate but not set "
                        "(or PORTCULLIS_MIGRATE_DB, --migrate-db)\n");
        return NULL;
    }
    const char *keys[] = {"dbname", "application_name", "password", NULL};
    const char *vals[] = {gw_cfg.migrate_conninfo, "gatewayctl",
                          gw_cfg.migrate_password ? secret_str(gw_cfg.migrate_password) : NULL,
                          NULL};
    if (!vals[2])
        keys[2] = NULL;
    PGconn *pg = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(pg) != CONNECTION_OK) {
        fprintf(stderr, "gatewayctl: cannot connect as the schema owner: %s", PQerrorMessage(pg));
        PQfinish(pg);
        return NULL;
    }
    return pg;
}

static db_pool_t *connect_gateway(void)
{
    if (!gw_cfg.db_conninfo) {
        fprintf(stderr, "gatewayctl: database.conninfo: required but not set (or PORTCULLIS_DB, "
                        "--db)\n");
        return NULL;
    }
    if (!gw_cfg.api_key_pepper) {
        fprintf(stderr, "gatewayctl: auth.api_key_pepper_file: required but not set\n");
        return NULL;
    }
    db_pool_config_t pc = {.pool_size = 1,
                           .conninfo = gw_cfg.db_conninfo,
                           .password = gw_cfg.db_password ? secret_str(gw_cfg.db_password) : NULL,
                           .application_name = "gatewayctl"};
    db_pool_t *p = db_pool_create(&pc);
    db_conn_t *c = p ? db_pool_acquire(p) : NULL;
    if (!c) {
        fprintf(stderr, "gatewayctl: cannot connect to the database\n");
        db_pool_destroy(p);
        return NULL;
    }
    db_pool_release(c);
    return p;
}

/* ------------------------------------------------------------ new keys */

typedef struct {
    gw_role_t role;
    char id[IDS_MAX];
    char key[GW_KEY_MAX];
} new_key_t;

static db_status_t insert_key(db_conn_t *c, const char *merchant_id, new_key_t *k)
{
    unsigned char h[32];
    char disp[GW_KEY_MAX];
    gw_key_generate(k->role, k->key);
    ids_new(k->id, sizeof k->id, "key_");
    gw_key_hash(gw_cfg.api_key_pepper, k->key, h);
    gw_key_display(k->key, disp);
    return db_apikey_insert(c, k->id, merchant_id, gw_role_name(k->role), h, disp);
}

static db_status_t audit(db_conn_t *c, const char *action, const char *merchant_id,
                         const char *object)
{
    audit_event_t ev = {.actor = "gatewayctl", .action = action, .merchant_id = merchant_id,
                        .object = object};
    return audit_append(c, &ev);
}

typedef struct {
    char id[IDS_MAX];
    const char *name;
    new_key_t keys[3];
} merchant_txn_t;

static db_status_t merchant_create_txn(db_conn_t *c, void *cls)
{
    merchant_txn_t *m = cls;
    db_status_t s = db_merchant_insert(c, m->id, m->name);
    for (int i = 0; s == DB_OK && i < 3; i++)
        s = insert_key(c, m->id, &m->keys[i]);
    if (s == DB_OK)
        s = audit(c, "merchant.create", m->id, m->id);
    return s;
}

static int cmd_merchant_create(db_pool_t *p, const char *name)
{
    if (!name || !*name || strlen(name) > 200 || !str_is_printable(name))
        return die("merchant create: NAME must be 1 to 200 printable characters");
    merchant_txn_t m = {.name = name,
                        .keys = {{.role = GW_ROLE_PK}, {.role = GW_ROLE_SK}, {.role = GW_ROLE_AK}}};
    ids_new(m.id, sizeof m.id, "mer_");
    db_status_t s = db_txn_run(p, DB_READ_COMMITTED, "merchant_create", merchant_create_txn, &m);
    if (s != DB_OK)
        return die("merchant create failed (%s)", s == DB_CONFLICT ? "conflict" : "database error");
    if (opt_json) {
        json_t *o = json_pack("{s:{s:s, s:s}, s:{s:s, s:s, s:s}}", "merchant", "id", m.id, "name",
                              name, "keys", "pk", m.keys[0].key, "sk", m.keys[1].key, "ak",
                              m.keys[2].key);
        char *out = json_dumps_compact(o);
        printf("%s\n", out);
        free(out);
        json_decref(o);
    } else {
        printf("merchant %s (%s) created.\n"
               "These keys are shown once and cannot be recovered; store them now:\n"
               "  publishable  %s\n  secret       %s\n  auditor      %s\n",
               m.id, name, m.keys[0].key, m.keys[1].key, m.keys[2].key);
    }
    sodium_memzero(&m.keys, sizeof m.keys);
    return 0;
}

typedef struct {
    const char *merchant_id;
    new_key_t key;
    int expired;
} rotate_txn_t;

static db_status_t rotate_txn(db_conn_t *c, void *cls)
{
    rotate_txn_t *r = cls;
    gwdb_merchant_t m;
    db_status_t s = db_merchant_get(c, r->merchant_id, &m);
    if (s == DB_OK)
        s = insert_key(c, r->merchant_id, &r->key);
    if (s == DB_OK)
        s = db_apikey_expire_role(c, r->merchant_id, gw_role_name(r->key.role), opt_grace,
                                  r->key.id, &r->expired);
    if (s == DB_OK)
        s = audit(c, "key.rotate", r->merchant_id, r->key.id);
    if (s == DB_OK)
        s = db_config_notify(c, "keys");
    return s;
}

static int cmd_key_rotate(db_pool_t *p, const char *merchant_id, const char *role)
{
    rotate_txn_t r = {.merchant_id = merchant_id};
    if (!role || !gw_role_parse(role, &r.key.role))
        return die("key rotate: ROLE must be pk, sk or ak");
    db_status_t s = db_txn_run(p, DB_READ_COMMITTED, "key_rotate", rotate_txn, &r);
    if (s == DB_NOT_FOUND)
        return die("key rotate: no merchant %s", merchant_id);
    if (s != DB_OK)
        return die("key rotate failed");
    if (opt_json) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:I}", "id", r.key.id, "role", role, "key",
                              r.key.key, "old_keys", r.expired, "grace_seconds",
                              (json_int_t)opt_grace);
        char *out = json_dumps_compact(o);
        printf("%s\n", out);
        free(out);
        json_decref(o);
    } else {
        printf("new %s key %s (shown once): %s\n%d old %s key(s) %s.\n", role, r.key.id,
               r.key.key, r.expired, role,
               opt_grace ? "expire after the grace period" : "revoked now");
    }
    sodium_memzero(&r.key, sizeof r.key);
    return 0;
}

static db_status_t revoke_txn(db_conn_t *c, void *cls)
{
    const char *key_id = cls;
    db_status_t s = db_apikey_revoke(c, key_id);
    if (s == DB_OK)
        s = audit(c, "key.revoke", NULL, key_id);
    if (s == DB_OK)
        s = db_config_notify(c, "keys");
    return s;
}

static int cmd_key_revoke(db_pool_t *p, const char *key_id)
{
    db_status_t s = db_txn_run(p, DB_READ_COMMITTED, "key_revoke", revoke_txn, (void *)key_id);
    if (s == DB_NOT_FOUND)
        return die("key revoke: no active key %s", key_id);
    if (s != DB_OK)
        return die("key revoke failed");
    printf("key %s revoked.\n", key_id);
    return 0;
}

static int cmd_key_list(db_pool_t *p, const char *merchant_id)
{
    db_conn_t *c = db_pool_acquire(p);
    json_t *keys = NULL;
    db_status_t s = c ? db_apikey_list(c, merchant_id, &keys) : DB_UNAVAILABLE;
    db_pool_release(c);
    if (s != DB_OK)
        return die("key list failed");
    if (opt_json) {
        char *out = json_dumps_compact(keys);
        printf("%s\n", out);
        free(out);
    } else {
        size_t i;
        json_t *k;
        json_array_foreach(keys, i, k)
        {
            printf("%-28s %s  %-24s %s  %s\n", json_string_value(json_object_get(k, "id")),
                   json_string_value(json_object_get(k, "role")),
                   json_string_value(json_object_get(k, "display")),
                   json_string_value(json_object_get(k, "created")),
                   json_string_value(json_object_get(k, "status")));
        }
    }
    json_decref(keys);
    return 0;
}

static int run(int nw, char **w)
{
    if (nw == 1 && !strcmp(w[0], "migrate")) {
        PGconn *pg = connect_admin();
        if (!pg)
            return 2;
        int rc = gw_migrate(pg, true);
        PQfinish(pg);
        return rc == 0 ? 0 : 1;
    }
    bool known = (nw == 3 && !strcmp(w[0], "merchant") && !strcmp(w[1], "create")) ||
                 (nw == 4 && !strcmp(w[0], "key") && !strcmp(w[1], "rotate")) ||
                 (nw == 3 && !strcmp(w[0], "key") &&
                  (!strcmp(w[1], "revoke") || !strcmp(w[1], "list")));
    if (!known) {
        fprintf(stderr, "%s\n", usage);
        return 2;
    }
    db_pool_t *p = connect_gateway();
    if (!p)
        return 2;
    int rc;
    if (!strcmp(w[0], "merchant"))
        rc = cmd_merchant_create(p, w[2]);
    else if (!strcmp(w[1], "rotate"))
        rc = cmd_key_rotate(p, w[2], w[3]);
    else if (!strcmp(w[1], "revoke"))
        rc = cmd_key_revoke(p, w[2]);
    else
        rc = cmd_key_list(p, w[2]);
    db_pool_destroy(p);
    return rc;
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        return 1;
    log_setup("gatewayctl", LOG_WARN, 2);
    char **cfgv = calloc((size_t)argc + 1, sizeof *cfgv);
    char **words = calloc((size_t)argc + 1, sizeof *words);
    int cfgc, nw;
    int rc = split_args(argc, argv, cfgv, &cfgc, words, &nw);
    if (rc == 0) {
        cfg_error_t err;
        rc = cfg_load(gw_cfg_items, gw_cfg_nitems, cfgc, cfgv, usage, &err);
        if (rc < 0) {
            fprintf(stderr, "gatewayctl: configuration error: %s\n", err.msg);
            rc = 2;
        } else if (rc == 1) {
            rc = 0;
        } else {
            rc = run(nw, words);
        }
    }
    cfg_free(gw_cfg_items, gw_cfg_nitems);
    free(cfgv);
    free(words);
    return rc;
}
