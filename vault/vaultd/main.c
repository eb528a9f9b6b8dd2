/* vaultd: the card vault. Reads the KEK, binds its sockets, sheds its
 * privileges and its network, loads the key ring, then serves tokenize,
 * detokenize, seal/unseal and key administration until SIGTERM. */
#include "vault/vaultd/vaultd.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_bool sweeper_stop;

static int fatal(const char *what, const char *why)
{
    log_json(LOG_ERROR, "vaultd cannot start", json_pack("{s:s, s:s}", "step", what, "error", why));
    fprintf(stderr, "vaultd: %s: %s\n", what, why);
    return 1;
}

static int open_log(void)
{
    if (!vd_cfg.log_file)
        return 2;
    int fd = open(vd_cfg.log_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        fprintf(stderr, "vaultd: log.file %s: cannot open: %s\n", vd_cfg.log_file, strerror(errno));
        return 2;
    }
    return fd;
}

/* The KEK file holds 64 hex characters (32 bytes). */
static uint8_t *kek_decode(const secret_t *s, char *err, size_t errlen)
{
    uint8_t *kek = sodium_malloc(SEAL_KEY);
    size_t n = 0;
    if (!kek) {
        snprintf(err, errlen, "out of guarded memory");
        return NULL;
    }
    if (s->len != 2 * SEAL_KEY ||
        sodium_hex2bin(kek, SEAL_KEY, (const char *)s->data, s->len, NULL, &n, NULL) != 0 ||
        n != SEAL_KEY) {
        snprintf(err, errlen, "the KEK file must hold exactly 64 hex characters (32 bytes)");
        sodium_free(kek);
        return NULL;
    }
    return kek;
}

/* After a lost database connection the instance lock must be taken again;
 * if another vaultd took it meanwhile, this one stops. */
static void check_instance_lock(void)
{
    if (vdb_instance_lock_alive())
        return;
    const char *pw = vd_cfg.db_password ? secret_str(vd_cfg.db_password) : NULL;
    vdb_lock_t l = vdb_instance_lock(vd_cfg.db_conninfo, pw);
    if (l == VDB_LOCK_TAKEN) {
        log_error("another vaultd took this vault's instance lock; stopping");
        kill(getpid(), SIGTERM);
    }
}

static void *sweeper_main(void *arg)
{
    (void)arg;
    /* CVCs once a second (lookups check expiry themselves; this only
     * wipes), the instance lock every 5 s, waking often enough not to hold
     * up a shutdown */
    for (int tick = 1; !atomic_load(&sweeper_stop); tick++) {
        usleep(50 * 1000);
        if (tick % 20 == 0)
            cvc_sweep();
        if (tick % 100 == 0)
            check_instance_lock();
    }
    return NULL;
}

/* A restarting predecessor may hold the lock for a moment: wait up to 5 s. */
static const char *take_instance_lock(void)
{
    const char *pw = vd_cfg.db_password ? secret_str(vd_cfg.db_password) : NULL;
    vdb_lock_t l = VDB_LOCK_ERROR;
    for (int i = 0; i < 50; i++) {
        l = vdb_instance_lock(vd_cfg.db_conninfo, pw);
        if (l == VDB_LOCK_HELD)
            return NULL;
        usleep(100 * 1000);
    }
    return l == VDB_LOCK_TAKEN ? "another vaultd already serves this vault database"
                               : "cannot connect to the database";
}

static const char *isolate_early(bool *netns)
{
    *netns = false;
    if (!vd_cfg.isolate_network)
        return "network allowed (run.isolate_network = false)";
    if (vd_cfg.tls_address)
        return "network for the TLS listener only";
    *netns = vd_unshare_network();
    return *netns ? "none (empty network namespace, AF_UNIX only)" : "none (AF_UNIX only)";
}

static int start(uint8_t *kek, pthread_t *sweeper)
{
    char err[400] = "";
    /* opened now: after the user switch its directory may be out of reach */
    int ready_fd = vd_cfg.ready_file
                       ? open(vd_cfg.ready_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)
                       : -1;
    if (vd_cfg.ready_file && ready_fd < 0)
        return fatal("run.ready_file", strerror(errno));
    if (!proc_disable_core_dumps())
        return fatal("core dumps", "cannot set RLIMIT_CORE 0 and PR_SET_DUMPABLE 0");
    bool netns;
    const char *network = isolate_early(&netns); /* before any thread exists */
    if (vd_server_start(err, sizeof err) != 0)
        return fatal("listen", err);
    if (vd_cfg.user && geteuid() == 0) {
        if (!vd_drop_privileges(vd_cfg.user, err, sizeof err))
            return fatal("run.user", err);
        if (!proc_disable_core_dumps()) /* a uid change resets dumpable */
            return fatal("core dumps", "cannot disable after the user switch");
    } else if (vd_cfg.user) {
        log_warn("run.user %s ignored: vaultd was not started as root", vd_cfg.user);
    }
    if (vd_cfg.isolate_network && !vd_cfg.tls_address && !vd_seccomp_unix_only(err, sizeof err))
        return fatal("network isolation", err);
    db_pool_config_t pc = {
        .pool_size = (int)vd_cfg.db_pool_size,
        .acquire_timeout_ms = 5000,
        .conninfo = vd_cfg.db_conninfo,
        .password = vd_cfg.db_password ? secret_str(vd_cfg.db_password) : NULL,
        .application_name = "vaultd",
    };
    const char *lock_err = take_instance_lock();
    if (lock_err)
        return fatal("instance lock", lock_err);
    vd_db = db_pool_create(&pc);
    if (!vd_db || !kr_init(vd_db, kek, err, sizeof err))
        return fatal("key ring", err[0] ? err : "cannot create the database pool");
    if (!cvc_init((size_t)vd_cfg.cvc_capacity, (int)vd_cfg.cvc_ttl_s))
        return fatal("cvc store", "out of guarded memory");
    if (pthread_create(sweeper, NULL, sweeper_main, NULL) != 0 || vd_server_run() != 0)
        return fatal("threads", strerror(errno));
    log_json(LOG_INFO, "vaultd ready",
             json_pack("{s:s, s:i, s:i, s:i, s:s, s:i}", "socket", vd_cfg.socket_path, "tls_port",
                       (int)vd_server_tls_port(), "key_version", kr_current(),
                       "min_decrypt_version", kr_min(), "network", network, "uid", (int)getuid()));
    if (ready_fd >= 0) {
        char buf[32];
        int n = snprintf(buf, sizeof buf, "%d\n", (int)getpid());
        if (write(ready_fd, buf, (size_t)n) != n)
            log_warn("cannot write run.ready_file %s", vd_cfg.ready_file);
        close(ready_fd);
    }
    return 0;
}

static void wait_for_signal(const sigset_t *set, int *logfd, log_level_t lvl)
{
    for (;;) {
        int sig = 0;
        if (sigwait(set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            int nfd = open_log();
            if (nfd != 2) {
                log_setup("vaultd", lvl, nfd);
                if (*logfd != 2)
                    close(*logfd);
                *logfd = nfd;
            }
            continue;
        }
        log_json(LOG_INFO, "shutting down", json_pack("{s:s}", "signal", strsignal(sig)));
        return;
    }
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0) {
        fprintf(stderr, "vaultd: cannot initialise libsodium\n");
        return 1;
    }
    json_object_seed(0);
    cfg_error_t cerr;
    int rc = cfg_load(vd_cfg_items, vd_cfg_nitems, argc, argv,
                      "usage: vaultd [--config FILE] [options]", &cerr);
    if (rc != 0) {
        if (rc < 0)
            fprintf(stderr, "vaultd: configuration error: %s\n", cerr.msg);
        return rc < 0 ? 2 : 0;
    }
    log_level_t lvl;
    if (!log_level_parse(vd_cfg.log_level, &lvl)) {
        fprintf(stderr, "vaultd: configuration error: log.level: must be debug, info, warn or "
                        "error\n");
        return 2;
    }
    int logfd = open_log();
    log_setup("vaultd", lvl, logfd);
    char err[200];
    uint8_t *kek = kek_decode(vd_cfg.kek, err, sizeof err);
    secret_free(vd_cfg.kek); /* only the decoded copy lives on */
    vd_cfg.kek = NULL;
    if (!kek)
        return fatal("kek_file", err);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* every thread inherits this */
    signal(SIGPIPE, SIG_IGN);
    vd_started_us = time_mono_us();

    pthread_t sweeper;
    rc = start(kek, &sweeper);
    sodium_free(kek); /* the key ring keeps its own guarded copy */
    if (rc != 0)
        return rc;
    wait_for_signal(&set, &logfd, lvl);
    vd_server_stop();
    atomic_store(&sweeper_stop, true);
    pthread_join(sweeper, NULL);
    bool idle = atomic_load(&vd_connections) == 0;
    if (idle) { /* connection threads may still touch these otherwise */
        db_pool_destroy(vd_db);
        kr_free();
        cvc_free();
    }
    vdb_instance_unlock();
    log_info("vaultd stopped");
    cfg_free(vd_cfg_items, vd_cfg_nitems);
    return 0;
}
