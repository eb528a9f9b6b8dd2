/* gatewayd's configuration items: one list read by gatewayd and gatewayctl,
 * so one config file serves both. */
#include "gateway/gateway.h"

gw_config_t gw_cfg;

const cfg_item_t gw_cfg_items[] = {
    {"listen.address", CFG_STRING, "PORTCULLIS_LISTEN_ADDRESS", "--listen", "127.0.0.1", 0, 0,
     &gw_cfg.listen_address, "address to listen on"},
    {"listen.port", CFG_INT, "PORTCULLIS_PORT", "--port", "8080", 0, 65535, &gw_cfg.port,
     "TCP port (0 = any free port, see --port-file)"},
    {"listen.port_file", CFG_STRING, NULL, "--port-file", NULL, 0, 0, &gw_cfg.port_file,
     "write the bound port to this file once listening"},
    {"listen.max_connections", CFG_INT, NULL, "--max-connections", "1024", 1, 65536,
     &gw_cfg.max_connections, "concurrent client connections (one thread each)"},
    {"listen.connection_timeout_seconds", CFG_INT, NULL, NULL, "60", 1, 3600,
     &gw_cfg.connection_timeout_s, "idle connection timeout"},
    {"listen.trust_forwarded_for", CFG_BOOL, NULL, NULL, "false", 0, 0,
     &gw_cfg.trust_forwarded_for,
     "take the client IP from X-Forwarded-For (only behind a trusted proxy)"},
    {"database.conninfo", CFG_STRING, "PORTCULLIS_DB", "--db", NULL, 0, 0, &gw_cfg.db_conninfo,
     "libpq connection string for the gateway role"},
    {"database.password", CFG_SECRET, NULL, "--db-password-file", NULL, 0, 0,
     &gw_cfg.db_password, "file holding the database password", "db_password"},
    {"database.pool_size", CFG_INT, "PORTCULLIS_DB_POOL_SIZE", "--db-pool-size", "32", 1, 512,
     &gw_cfg.db_pool_size, "database connections"},
    {"auth.api_key_pepper", CFG_SECRET, NULL, "--api-key-pepper-file", NULL, 0, 0,
     &gw_cfg.api_key_pepper, "file holding the key that API-key hashes are keyed with",
     "api_key_pepper"},
    {"auth.cache_ttl_seconds", CFG_INT, NULL, NULL, "60", 0, 3600, &gw_cfg.auth_cache_ttl_s,
     "how long a resolved API key is cached (revocations also flush it at once)"},
    {"log.level", CFG_STRING, "PORTCULLIS_LOG_LEVEL", "--log-level", "info", 0, 0,
     &gw_cfg.log_level, "debug, info, warn or error"},
    {"log.file", CFG_STRING, "PORTCULLIS_LOG_FILE", "--log-file", NULL, 0, 0, &gw_cfg.log_file,
     "append JSON log lines here instead of stderr"},
    {"shutdown.grace_seconds", CFG_INT, NULL, NULL, "30", 0, 600, &gw_cfg.shutdown_grace_s,
     "how long to wait for in-flight requests on SIGTERM"},
    {"migrate.conninfo", CFG_STRING, "PORTCULLIS_MIGRATE_DB", "--migrate-db", NULL, 0, 0,
     &gw_cfg.migrate_conninfo, "connection string of the schema owner (gatewayctl migrate)"},
    {"migrate.password", CFG_SECRET, NULL, "--migrate-password-file", NULL, 0, 0,
     &gw_cfg.migrate_password, "file holding the schema owner's password", "migrate_password"},
    {"fraud.bin_file", CFG_STRING, "PORTCULLIS_FRAUD_BIN_FILE", "--fraud-bin-file", NULL, 0, 0,
     &gw_cfg.fraud_bin_file, "BIN range CSV (see fraud/data/bin_ranges.csv); default: built in"},
};

const size_t gw_cfg_nitems = PC_ARRAY_LEN(gw_cfg_items);
