/* Appends records to the PCI scope log (audit.events). */
#include "pci/audit.h"
#include <stdlib.h>

/* The records travel as one JSON array, kept in order by their position;
 * a missing key (no merchant, no detail) reads as SQL NULL. */
DB_STMT(audit_insert, "INSERT INTO audit.events (actor, action, merchant_id, object, detail) "
                      "SELECT e->>'actor', e->>'action', e->>'merchant_id', e->>'object', "
                      "COALESCE(e->'detail', '{}'::jsonb) "
                      "FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS x(e, i) ORDER BY i");

/* NULL when out of memory or a field is not UTF-8: the record is refused
 * rather than written without it. */
static json_t *event_json(const audit_event_t *ev)
{
    json_t *j = json_pack("{s:s, s:s}", "actor", ev->actor, "action", ev->action);
    int bad = !j;
    if (!bad && ev->merchant_id)
        bad = json_object_set_new(j, "merchant_id", json_string(ev->merchant_id));
    if (!bad && ev->object)
        bad = json_object_set_new(j, "object", json_string(ev->object));
    if (!bad && ev->detail)
        bad = json_object_set(j, "detail", ev->detail);
    if (bad) {
        json_decref(j);
        return NULL;
    }
    return j;
}

db_status_t audit_append_many(db_conn_t *c, const audit_event_t *const *evs, int n)
{
    json_t *arr = json_array();
    for (int i = 0; arr && i < n; i++) {
        json_t *e = event_json(evs[i]);
        if (!e || json_array_append_new(arr, e) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    char *text = arr ? json_dumps_compact(arr) : NULL;
    json_decref(arr);
    if (!text)
        return DB_ERROR;
    db_params_t p;
    db_params_init(&p);
    db_param_text(&p, text);
    PGresult *r;
    db_status_t s = db_exec(c, &audit_insert, &p, &r);
    if (s == DB_OK && atoi(PQcmdTuples(r)) != n)
        s = DB_ERROR;
    PQclear(r);
    free(text);
    return s;
}

db_status_t audit_append(db_conn_t *c, const audit_event_t *ev)
{
    return audit_append_many(c, &ev, 1);
}
