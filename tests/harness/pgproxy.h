/* A PostgreSQL wire-protocol proxy for integration tests: it sits on a
 * loopback TCP port between a daemon and the fixture PostgreSQL, relays the
 * v3 protocol message by message (answering SSLRequest and GSSENCRequest
 * with 'N' itself), and can lose the answer to one COMMIT on purpose.
 *
 * Armed with a marker, the first connection that runs a statement whose
 * text contains it (a Query, or a Bind of a statement whose Parse carried
 * it, however long ago that connection prepared it) has both its
 * connections dropped at the moment the transaction is durable in
 * PostgreSQL but before the daemon hears so:
 *   - inside BEGIN ... COMMIT: instead of forwarding the server's
 *     CommandComplete "COMMIT";
 *   - in autocommit (the statement is its own transaction): instead of
 *     forwarding the statement's results and the ReadyForQuery 'I' that
 *     follows its implicit commit (held back until then; if the statement
 *     failed, they are forwarded and nothing is dropped).
 * One drop per arming; pgproxy_fired counts them. Runs its own thread. */
#ifndef PORTCULLIS_PGPROXY_H
#define PORTCULLIS_PGPROXY_H

typedef struct pgproxy pgproxy_t;

/* Proxies to host:port: a TCP host, or a unix socket directory (a host
 * starting with '/': <host>/.s.PGSQL.<port>, as libpq does). Listens on
 * 127.0.0.1 on a free port. NULL on failure. */
pgproxy_t *pgproxy_start(const char *host, int port);
int pgproxy_port(const pgproxy_t *p);
/* Loses the next COMMIT answer after a statement containing marker
 * (replaces an arming that has not fired yet). */
void pgproxy_arm(pgproxy_t *p, const char *marker);
void pgproxy_disarm(pgproxy_t *p);
int pgproxy_fired(pgproxy_t *p);       /* COMMIT answers lost so far */
int pgproxy_connections(pgproxy_t *p); /* client connections accepted so far */
/* Closes every connection and the listener, joins the thread, frees p. */
void pgproxy_stop(pgproxy_t *p);
/* A libpq conninfo reaching db as portcullis_<role> through the proxy
 * (malloc'd). */
char *pgproxy_conninfo(const pgproxy_t *p, const char *db, const char *role);

#endif
