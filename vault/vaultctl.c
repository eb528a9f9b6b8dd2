/* vaultctl: the vault's operator commands over vaultd's unix socket: status,
 * data-key rotation, rewrap of old records while the vault serves, and
 * retirement of old key versions. Also generates a KEK file. */
#include "vault/vault.h"
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *usage =
    "usage: vaultctl [--socket PATH] [--timeout-ms N] COMMAND\n"
    "\n"
    "commands:\n"
    "  status                 key versions, records per version, CVCs held (JSON)\n"
    "  rotate                 add a data-key version and seal new cards with it\n"
    "  rewrap [--batch N]     move every record to the current version, N per\n"
    "                         transaction (default 500), while vaultd serves\n"
    "  retire [VERSION]       make VERSION (default: current) the minimum decryption\n"
    "                         version and destroy the older keys; refused while\n"
    "                         records remain under them\n"
    "  genkek FILE            write a new random KEK (64 hex characters, mode 0600);\n"
    "                         refuses to overwrite\n"
    "\n"
    "The socket defaults to $PORTCULLIS_VAULT_SOCKET. Key commands need a uid on\n"
    "vaultd's socket.admin_uids list.";

static int die(const char *fmt, ...) PC_PRINTF(1, 2);
static int die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "vaultctl: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return 2;
}

static int genkek(const char *path)
{
    uint8_t *k = sodium_malloc(32);
    char *hex = sodium_malloc(65);
    if (!k || !hex)
        return die("out of guarded memory");
    randombytes_buf(k, 32);
    sodium_bin2hex(hex, 65, k, 32);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    bool ok = fd >= 0 && write(fd, hex, 64) == 64 && fsync(fd) == 0;
    int e = errno;
    if (fd >= 0)
        close(fd);
    sodium_free(k);
    sodium_free(hex);
    if (!ok)
        return die("%s: %s", path, strerror(e));
    printf("KEK written to %s (mode 0600)\n", path);
    return 0;
}

static int report(vault_status_t s, const char *what)
{
    if (s == VAULT_OK)
        return 0;
    return die("%s: %s", what, vault_status_str(s));
}

static int cmd_rewrap(vault_client_t *vc, int batch)
{
    long total = 0, remaining = 0;
    for (;;) {
        int moved;
        vault_status_t s = vault_key_rewrap(vc, batch, &moved, &remaining);
        if (s != VAULT_OK)
            return report(s, "rewrap");
        total += moved;
        if (moved == 0 || remaining == 0)
            break;
    }
    printf("{\"rewrapped\":%ld,\"remaining\":%ld}\n", total, remaining);
    if (remaining > 0)
        return die("%ld record(s) could not be moved (see vaultd's log)", remaining);
    return 0;
}

static int run(vault_client_t *vc, int nw, char **w, int batch)
{
    if (!strcmp(w[0], "status") && nw == 1) {
        json_t *j;
        vault_status_t s = vault_status(vc, &j);
        if (s != VAULT_OK)
            return report(s, "status");
        char *t = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("%s\n", t ? t : "{}");
        free(t);
        json_decref(j);
        return 0;
    }
    if (!strcmp(w[0], "rotate") && nw == 1) {
        int v;
        vault_status_t s = vault_key_rotate(vc, &v);
        if (s == VAULT_OK)
            printf("{\"current_version\":%d}\n", v);
        return report(s, "rotate");
    }
    if (!strcmp(w[0], "rewrap") && nw == 1)
        return cmd_rewrap(vc, batch);
    if (!strcmp(w[0], "retire") && nw <= 2) {
        int v = nw == 2 ? atoi(w[1]) : 0;
        if (nw == 2 && v <= 0)
            return die("retire: VERSION must be a positive number");
        long remaining;
        vault_status_t s = vault_key_retire(vc, v, &remaining);
        if (s == VAULT_DENIED && remaining > 0)
            return die("retire: %ld record(s) still sealed under older versions; run rewrap",
                       remaining);
        if (s != VAULT_OK)
            return report(s, "retire");
        json_t *j = NULL;
        if (vault_status(vc, &j) == VAULT_OK) /* the version now in force */
            printf("{\"min_decrypt_version\":%d}\n",
                   (int)json_integer_value(json_object_get(j, "min_decrypt_version")));
        json_decref(j);
        return 0;
    }
    return die("unknown command (see --help)");
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        return die("cannot initialise libsodium");
    log_setup("vaultctl", LOG_WARN, 2);
    const char *sock = getenv("PORTCULLIS_VAULT_SOCKET");
    int timeout = 60000, batch = 500, nw = 0;
    char *words[8];
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--help") || !strcmp(argv[a], "-h")) {
            printf("%s\n", usage);
            return 0;
        } else if (!strcmp(argv[a], "--socket") && a + 1 < argc) {
            sock = argv[++a];
        } else if (!strcmp(argv[a], "--timeout-ms") && a + 1 < argc) {
            timeout = atoi(argv[++a]);
        } else if (!strcmp(argv[a], "--batch") && a + 1 < argc) {
            batch = atoi(argv[++a]);
            if (batch <= 0)
                return die("--batch: must be a positive number");
        } else if (argv[a][0] == '-') {
            return die("%s: unknown option (see --help)", argv[a]);
        } else if (nw < 8) {
            words[nw++] = argv[a];
        }
    }
    if (nw == 0)
        return die("no command (see --help)");
    if (!strcmp(words[0], "genkek"))
        return nw == 2 ? genkek(words[1]) : die("usage: vaultctl genkek FILE");
    if (!sock)
        return die("no socket: use --socket PATH or $PORTCULLIS_VAULT_SOCKET");
    vault_client_config_t cfg = {.socket_path = sock, .pool_size = 1, .timeout_ms = timeout};
    vault_client_t *vc = vault_client_new(&cfg);
    if (!vc)
        return die("cannot create a vault client for %s", sock);
    int rc = run(vc, nw, words, batch);
    vault_client_free(vc);
    return rc;
}
