/* Appends records to the PCI scope log (audit.events). */
#include "pci/audit.h"
#include <stdlib.h>

DB_STMT(audit_insert, "INSERT INTO audit.events (actor, action, merchant_id, object, detail) "
                      "VALUES ($1, $2, $3, $4, COALESCE($5::jsonb, '{}'::jsonb))");

db_status_t audit_append(db_conn_t *c, const audit_event_t *ev)
{
    char *detail = ev->detail ? json_dumps_compact(ev->detail) : NULL;
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, ev->actor);
    db_param_text(&p, ev->action);
    db_param_text(&p, ev->merchant_id);
    db_param_text(&p, ev->object);
    db_param_text(&p, detail);
    PGresult *r;
    db_status_t s = db_exec(c, &audit_insert, &p, &r);
    PQclear(r);
    free(detail);
    return s;
}
