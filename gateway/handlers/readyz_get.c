/* GET /readyz: ready to take traffic: the database answers, every registered
 * dependency check passes, and the server is not draining for shutdown. */
#include "gateway/handlers/handlers.h"
#include "gateway/db/gwdb.h"

bool gw_ready_run(json_t *checks);

enum MHD_Result handle_readyz_get(gw_request_t *rq)
{
    json_t *checks = json_object();
    bool ok = true;
    db_conn_t *c = db_pool_acquire(gw.db);
    db_status_t s = c ? db_ping(c) : DB_UNAVAILABLE;
    db_pool_release(c);
    json_object_set_new(checks, "database", json_string(s == DB_OK ? "ok" : "unreachable"));
    ok = s == DB_OK;
    ok = gw_ready_run(checks) && ok;
    if (atomic_load(&gw.shutting_down)) {
        json_object_set_new(checks, "server", json_string("shutting down"));
        ok = false;
    }
    return gw_reply_json(rq, ok ? 200 : 503,
                         json_pack("{s:s, s:o}", "status", ok ? "ready" : "not_ready", "checks",
                                   checks));
}
