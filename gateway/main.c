/* gatewayd: the public HTTP API. Reads its configuration, opens the database
 * pool, serves until SIGTERM or SIGINT, then drains and exits. */
#include "gateway/gateway.h"
#include "gateway/payment_ops.h"
#include "gateway/db/gwdb.h"
#include <curl/curl.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int open_log(void)
{
    if (!gw_cfg.log_file)
        return 2;
    int fd = open(gw_cfg.log_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        fprintf(stderr, "gatewayd: log.file %s: cannot open\n", gw_cfg.log_file);
        return 2;
    }
    return fd;
}

static int setup(int argc, char **argv, log_level_t *lvl)
{
    cfg_error_t err;
    int rc = cfg_load(gw_cfg_items, gw_cfg_nitems, argc, argv,
                      "usage: gatewayd [--config FILE] [options]", &err);
    if (rc != 0) {
        if (rc < 0)
            fprintf(stderr, "gatewayd: configuration error: %s\n", err.msg);
        return rc < 0 ? 2 : 1;
    }
    if (!gw_cfg.db_conninfo) {
        fprintf(stderr, "gatewayd: configuration error: database.conninfo: required but not set "
                        "(or PORTCULLIS_DB, --db)\n");
        return 2;
    }
    if (!gw_cfg.api_key_pepper) {
        fprintf(stderr, "gatewayd: configuration error: auth.api_key_pepper_file: required but "
                        "not set (or $CREDENTIALS_DIRECTORY/api_key_pepper)\n");
        return 2;
    }
    httpc_allow_loopback_http(gw_cfg.allow_loopback_http);
    httpc_allow_private_networks(gw_cfg.allow_private_networks);
    if (!log_level_parse(gw_cfg.log_level, lvl)) {
        fprintf(stderr, "gatewayd: configuration error: log.level: must be debug, info, warn or "
                        "error\n");
        return 2;
    }
    return 0;
}

int main(int argc, char **argv)
{
    /* jansson, libcurl and OpenSSL on the wiping heap: bodies with card data
     * pass through all three (first, before OpenSSL allocates anything) */
    if (sodium_init() < 0 || wipe_install() != 0) {
        fprintf(stderr, "gatewayd: cannot initialise libsodium, libcurl or the "
                        "wiping heap\n");
        return 1;
    }
    json_object_seed(0);
    log_level_t lvl;
    int rc = setup(argc, argv, &lvl);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    int logfd = open_log();
    log_setup("gatewayd", lvl, logfd);
    if (!proc_disable_core_dumps())
        log_warn("could not disable core dumps");

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* every thread inherits this */
    signal(SIGPIPE, SIG_IGN);

    db_pool_config_t pc = {
        .pool_size = (int)gw_cfg.db_pool_size,
        .acquire_timeout_ms = 5000,
        .conninfo = gw_cfg.db_conninfo,
        .password = gw_cfg.db_password ? secret_str(gw_cfg.db_password) : NULL,
        .application_name = "gatewayd",
    };
    if (gw_rate_start() != 0 || gw_vault_start() != 0)
        return 1;
    char ferr[512];
    if (gw_fraud_init(gw_cfg.fraud_bin_file, ferr, sizeof ferr) != 0) {
        fprintf(stderr, "gatewayd: configuration error: fraud.bin_file: %s\n", ferr);
        return 2;
    }
    gw.db = db_pool_create(&pc);
    gw_providers_metrics_init();
    if (!gw.db || gw_notify_start() != 0 || fraud_janitor_start(gw.db, 60) != 0 ||
        gw_outbox_start() != 0 || gw_recovery_start() != 0 || gw_server_start() != 0) {
        log_error("gatewayd failed to start");
        return 1;
    }
    log_json(LOG_INFO, "gatewayd listening",
             json_pack("{s:s, s:i}", "address", gw_cfg.listen_address, "port",
                       (int)gw_server_port()));

    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            /* reopen (log rotation) by putting the new file under the same
             * descriptor number: a thread writing a line right now never sees
             * a closed number that a socket may already have been given */
            int nfd = open_log();
            if (nfd != 2 && logfd != 2) {
                if (dup2(nfd, logfd) < 0)
                    log_warn("log reopen failed; still writing to the old file");
                close(nfd);
            } else if (nfd != 2) {
                log_setup("gatewayd", lvl, nfd); /* was stderr: nothing to close */
                logfd = nfd;
            }
            continue;
        }
        log_json(LOG_INFO, "shutting down", json_pack("{s:s, s:i}", "signal", strsignal(sig),
                                                       "in_flight", atomic_load(&gw.in_flight)));
        break;
    }
    gw_server_stop();
    gw_recovery_stop();
    gw_outbox_stop();
    gw_vault_stop();
    gw_rate_stop();
    gw_notify_stop();
    fraud_janitor_stop();
    gw_fraud_shutdown();
    db_pool_destroy(gw.db);
    gw.db = NULL;
    log_info("gatewayd stopped");
    cfg_free(gw_cfg_items, gw_cfg_nitems);
    curl_global_cleanup();
    return 0;
}
