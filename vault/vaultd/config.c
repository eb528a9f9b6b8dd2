/* vaultd's configuration items: the JSON file, environment and flags, read
 * through util's declarative cfg_load. Secrets (KEK, database password) come
 * only from private files or $CREDENTIALS_DIRECTORY. */
#include "vault/vaultd/vaultd.h"

vd_config_t vd_cfg;

const cfg_item_t vd_cfg_items[] = {
    {"socket.path", CFG_STRING, "PORTCULLIS_VAULT_SOCKET", "--socket", NULL, 0, 0,
     &vd_cfg.socket_path, "unix socket to listen on (mode 0660)", NULL, CFG_REQUIRED},
    {"socket.group", CFG_STRING, NULL, "--socket-group", NULL, 0, 0, &vd_cfg.socket_group,
     "group that owns the socket (its members may connect)"},
    {"socket.allow_uids", CFG_STRING, "PORTCULLIS_VAULT_ALLOW_UIDS", "--allow-uids", NULL, 0, 0,
     &vd_cfg.allow_uids,
     "peers (uids or user names, comma-separated) allowed card operations; default: vaultd's "
     "own uid"},
    {"socket.admin_uids", CFG_STRING, NULL, "--admin-uids", "0", 0, 0, &vd_cfg.admin_uids,
     "peers allowed key operations (rotate, rewrap, retire) and status"},
    {"tls.address", CFG_STRING, NULL, "--tls-address", NULL, 0, 0, &vd_cfg.tls_address,
     "also listen on TCP with mutual TLS at this address (off when unset)"},
    {"tls.port", CFG_INT, NULL, "--tls-port", "7443", 0, 65535, &vd_cfg.tls_port,
     "TLS port (0 = any free port, see tls.port_file)"},
    {"tls.port_file", CFG_STRING, NULL, "--tls-port-file", NULL, 0, 0, &vd_cfg.tls_port_file,
     "write the bound TLS port here"},
    {"tls.ca_file", CFG_STRING, NULL, "--tls-ca-file", NULL, 0, 0, &vd_cfg.tls_ca_file,
     "CA that client certificates must chain to"},
    {"tls.cert_file", CFG_STRING, NULL, "--tls-cert-file", NULL, 0, 0, &vd_cfg.tls_cert_file,
     "vaultd's certificate"},
    {"tls.key_file", CFG_STRING, NULL, "--tls-key-file", NULL, 0, 0, &vd_cfg.tls_key_file,
     "vaultd's private key (a file private to its owner)"},
    {"tls.allow_names", CFG_STRING, NULL, "--tls-allow-names", "gatewayd", 0, 0,
     &vd_cfg.tls_allow_names,
     "client certificate common names (comma-separated) allowed card operations: the CA "
     "vouches for who a peer is, this list for what it may do"},
    {"kek", CFG_SECRET, NULL, "--kek-file", NULL, 0, 0, &vd_cfg.kek,
     "file holding the key-encrypting key: 64 hex characters, mode 0600", "kek", CFG_REQUIRED},
    {"database.conninfo", CFG_STRING, "PORTCULLIS_VAULT_DB", "--db", NULL, 0, 0,
     &vd_cfg.db_conninfo, "libpq connection string for the vault role (a unix socket)", NULL,
     CFG_REQUIRED},
    {"database.password", CFG_SECRET, NULL, "--db-password-file", NULL, 0, 0, &vd_cfg.db_password,
     "file holding the vault role's password", "db_password"},
    {"database.pool_size", CFG_INT, NULL, "--db-pool-size", "32", 1, 512, &vd_cfg.db_pool_size,
     "database connections"},
    {"cvc.ttl_seconds", CFG_INT, NULL, "--cvc-ttl", "600", 1, 3600, &vd_cfg.cvc_ttl_s,
     "how long a CVC is held in memory at most"},
    {"cvc.capacity", CFG_INT, NULL, NULL, "65536", 64, 4194304, &vd_cfg.cvc_capacity,
     "CVCs held at once (the oldest of a full bucket is evicted)"},
    {"limits.max_connections", CFG_INT, NULL, "--max-connections", "256", 1, 4096,
     &vd_cfg.max_connections, "concurrent client connections (one thread each)"},
    {"limits.idle_timeout_seconds", CFG_INT, NULL, NULL, "300", 1, 86400, &vd_cfg.idle_timeout_s,
     "close a client connection idle this long"},
    {"limits.rewrap_batch_max", CFG_INT, NULL, NULL, "2000", 1, 100000, &vd_cfg.rewrap_batch_max,
     "largest rewrap batch (records per transaction)"},
    {"run.user", CFG_STRING, NULL, "--user", NULL, 0, 0, &vd_cfg.user,
     "when started as root: run as this user once the KEK is read and the sockets are bound"},
    {"run.ready_file", CFG_STRING, NULL, "--ready-file", NULL, 0, 0, &vd_cfg.ready_file,
     "write the pid here once serving"},
    {"run.isolate_network", CFG_BOOL, NULL, "--isolate-network", "true", 0, 0,
     &vd_cfg.isolate_network,
     "without a TLS listener: enter an empty network namespace (when permitted) and refuse "
     "every socket family but AF_UNIX"},
    {"log.level", CFG_STRING, "PORTCULLIS_LOG_LEVEL", "--log-level", "info", 0, 0,
     &vd_cfg.log_level, "debug, info, warn or error"},
    {"log.file", CFG_STRING, "PORTCULLIS_VAULT_LOG_FILE", "--log-file", NULL, 0, 0,
     &vd_cfg.log_file, "append JSON log lines here instead of stderr"},
};

const size_t vd_cfg_nitems = PC_ARRAY_LEN(vd_cfg_items);
