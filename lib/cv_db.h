/*
 * cv_db.h -- libpq helpers: connect, prepare a table of named statements,
 * execute with separate parameters, map failures to cv_error codes.
 *
 * Design notes:
 *  - A PGconn belongs to exactly one thread at a time (one per RPC worker).
 *  - Statements are prepared right after connecting, from a table of
 *    {name, sql}; a service passes its own table, and the library's own
 *    statements (evidence, chain, idempotency, plan references) are
 *    always prepared as well.
 *  - A broken connection is re-established on the next cv_db_ensure();
 *    until it is back, calls fail with CV_UNAVAILABLE so clients get 503
 *    and the service recovers by itself.
 *  - One transaction model: a transaction has exactly one owner, the code
 *    that called cv_db_tx_begin (the RPC layer for a request, the
 *    sequencer or scheduler for their rounds). Isolation and read-only
 *    are chosen at BEGIN. Code running inside someone else's transaction
 *    never begins or ends it; an inner step that must be able to fail
 *    alone uses a SAVEPOINT (cv_db_savepoint*), so a failed inner step
 *    rolls back only itself. cv_db_transact wraps the whole pattern and
 *    retries serialization failures and deadlocks a bounded number of
 *    times.
 *  - Errors keep SQL internals (statement name, SQLSTATE, server text)
 *    in err->cause for the log; err->msg is client-safe.
 */
#ifndef CV_DB_H
#define CV_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cv_error.h"

typedef struct cv_db_statement {
    const char *name;
    const char *sql;
} cv_db_statement;

/* How a transaction is opened (cv_db_tx_begin). */
enum cv_tx_mode {
    CV_TX_NONE = 0,       /* no transaction */
    CV_TX_WRITE,          /* READ COMMITTED read-write */
    CV_TX_WRITE_SNAPSHOT, /* REPEATABLE READ read-write (one snapshot) */
    CV_TX_READ,           /* READ COMMITTED READ ONLY */
    CV_TX_READ_SNAPSHOT,  /* REPEATABLE READ READ ONLY */
};

typedef struct cv_db {
    PGconn *conn; /* NULL while disconnected */
    char *url;
    const cv_db_statement *stmts;
    size_t n_stmts;
    bool in_tx;     /* cv_db_tx_begin succeeded, not yet ended */
    int savepoints; /* open savepoints inside the transaction */
    /* The principal whose request this connection serves (set by the RPC
     * layer around each call; NULL otherwise): evidence records it. */
    const char *principal;
    /* Transaction-control commands not sent yet (savepoints, SET LOCAL):
     * they go in the same round trip as the next statement, in order
     * (see cv_db_savepoint). Only inside a transaction. */
    const char *pending[8];
    size_t n_pending;
    char pending_set[64]; /* the text of a deferred SET LOCAL */
    /* The highest replay position this connection's standby was seen at
     * (cv_db_wait_replay; 0 after a reconnect): it never goes back while
     * the connection lives, so a read needing no more skips the check. */
    uint64_t replayed;
} cv_db;

/* The database URL: $CAVRA_DATABASE_URL, else the local default
 * "postgresql://cavra@127.0.0.1:55432/cavra". Never NULL. */
const char *cv_db_default_url(void);

/* Initialises db (no connection yet). stmts must outlive db. Returns 0 or
 * CV_INTERNAL when out of memory. */
int cv_db_init(cv_db *db, const char *url, const cv_db_statement *stmts,
               size_t n_stmts, cv_error *err);

/* Closes the connection and frees what cv_db_init allocated. NULL-safe. */
void cv_db_fini(cv_db *db);

/* Connects (and prepares) when not connected or the connection went bad.
 * Returns 0, or CV_UNAVAILABLE when the database cannot be reached. */
int cv_db_ensure(cv_db *db, cv_error *err);

/*
 * Executes prepared statement `name` with nparams text parameters (a NULL
 * entry is SQL NULL). Returns the result when its status is
 * PGRES_TUPLES_OK or PGRES_COMMAND_OK; the caller PQclear()s it. On any
 * other outcome returns NULL with err set: CV_UNAVAILABLE when the
 * connection is lost, CV_ALREADY_EXISTS for a unique violation (23505),
 * CV_ABORTED for serialization failures/deadlocks (40001, 40P01),
 * CV_INTERNAL otherwise. The message never includes parameter values.
 */
PGresult *cv_db_exec(cv_db *db, const char *name, int nparams,
                     const char *const *params, cv_error *err);

/* One statement of cv_db_exec_pipeline. */
typedef struct cv_db_call {
    const char *name;
    int nparams;
    const char *const *params;
} cv_db_call;

/*
 * Runs n prepared statements in one round trip (libpq pipeline mode), in
 * order; each is its own statement (under READ COMMITTED each takes its
 * snapshot after the previous one finished, so a lock taken by one is
 * held before the next reads). Returns 0 with res[i] set (the caller
 * PQclear()s each), or the first failure's error as cv_db_exec (then
 * every res[i] is NULL and the statements after it did not run).
 */
int cv_db_exec_pipeline(cv_db *db, size_t n, const cv_db_call *calls,
                        PGresult **res, cv_error *err);

/* Executes a prepared statement and only checks it succeeded. */
int cv_db_run(cv_db *db, const char *name, int nparams,
              const char *const *params, cv_error *err);

/*
 * Transaction control; each returns 0 or an error as cv_db_exec does.
 * cv_db_tx_begin fails with CV_INTERNAL when a transaction is already
 * open (a second owner is a bug, never silently nested). cv_db_tx_commit
 * rolls back when COMMIT fails. cv_db_tx_rollback is safe in any state
 * and on a lost connection.
 */
int cv_db_tx_begin(cv_db *db, enum cv_tx_mode mode, cv_error *err);
int cv_db_tx_commit(cv_db *db, cv_error *err);
/* As cv_db_tx_begin, but the BEGIN is deferred like a savepoint: it goes
 * with the transaction's first statement (a connection that went stale
 * then fails that statement with CV_UNAVAILABLE, not the BEGIN). */
int cv_db_tx_begin_deferred(cv_db *db, enum cv_tx_mode mode, cv_error *err);
void cv_db_tx_rollback(cv_db *db);

/*
 * Savepoints inside the open transaction (CV_INTERNAL outside one). They
 * nest: release/rollback act on the innermost. cv_db_savepoint_rollback
 * undoes only what ran since the matching cv_db_savepoint and releases it;
 * the transaction stays usable.
 *
 * SAVEPOINT and RELEASE are deferred: they travel in the same round trip
 * as the next statement, COMMIT or rollback (libpq pipeline mode), in
 * order, so a group of requests costs one round trip per statement, not
 * three. A deferred command that fails shows as the error of the call
 * that carried it (the transaction is then aborted, as before); a
 * rollback to a savepoint whose SAVEPOINT was never sent costs nothing.
 */
int cv_db_savepoint(cv_db *db, cv_error *err);
int cv_db_savepoint_release(cv_db *db, cv_error *err);
int cv_db_savepoint_rollback(cv_db *db, cv_error *err);
/* Releases the innermost savepoint and opens the next one in a single
 * round trip (group commit: one savepoint per request). */
int cv_db_savepoint_next(cv_db *db, cv_error *err);

/* The work of one transaction; returns 0 or an error code with err set.
 * It may run more than once (see cv_db_transact), so it must not keep
 * results of a failed run. */
typedef int (*cv_db_tx_fn)(cv_db *db, void *arg, cv_error *err);

/* Attempts of cv_db_transact before a conflict becomes CV_UNAVAILABLE. */
#define CV_DB_TX_ATTEMPTS 6

/*
 * Runs fn in a transaction of the given mode and commits it (mode
 * CV_TX_NONE: runs fn without one). When fn or the COMMIT fails with
 * CV_ABORTED (serialization failure, deadlock, or fn's own "conflict,
 * run me again"), rolls back and runs it again in a fresh transaction,
 * with a short randomised backoff, up to CV_DB_TX_ATTEMPTS times; then
 * answers CV_UNAVAILABLE ("the store is busy"). Any other error rolls
 * back and is returned. Ensures the connection first. The BEGIN is
 * deferred (cv_db_tx_begin_deferred); when fn fails because the
 * connection was lost (it went stale while idle), nothing committed and
 * fn runs once more on a new connection.
 */
int cv_db_transact(cv_db *db, enum cv_tx_mode mode, cv_db_tx_fn fn, void *arg,
                   cv_error *err);

/* Every connection bounds each statement with statement_timeout (set at
 * connect): $CAVRA_DB_STATEMENT_TIMEOUT_MS, 1..CV_DB_STATEMENT_TIMEOUT_MAX_MS,
 * default 30 s. A statement over it fails with CV_DEADLINE_EXCEEDED
 * (SQLSTATE 57014). */
#define CV_DB_STATEMENT_TIMEOUT_ENV        "CAVRA_DB_STATEMENT_TIMEOUT_MS"
#define CV_DB_STATEMENT_TIMEOUT_DEFAULT_MS 30000
#define CV_DB_STATEMENT_TIMEOUT_MAX_MS     3600000

/* The configured per-statement timeout in milliseconds. */
int cv_db_statement_timeout_ms(void);

/* Sets statement_timeout to ms on the connection: for the session, or
 * (local) only until the open transaction ends, as a method that is
 * allowed longer statements does. Returns 0 or an error as cv_db_exec. */
int cv_db_set_statement_timeout(cv_db *db, int ms, bool local, cv_error *err);

/* Sets lock_timeout to ms until the open transaction ends: a lock wait
 * longer than that fails as CV_ABORTED (a conflict to retry). Deferred
 * like a savepoint (sent with the transaction's next statement). */
int cv_db_set_lock_timeout(cv_db *db, int ms, cv_error *err);

/*
 * Read replica support (CAVRA_READ_DATABASE_URL). cv_db_wal_lsn writes
 * a WAL position of the primary at or past the commit record of every
 * write already answered (the flush position, or with synchronous_commit
 * off the insert position) as text into out.
 * cv_db_wait_replay waits until the standby db has replayed up to lsn,
 * at most max_ms: 0 when it has (or db is no standby), CV_UNAVAILABLE
 * when it lags further or cannot be reached.
 */
#define CV_DB_READ_URL_ENV         "CAVRA_READ_DATABASE_URL"
#define CV_DB_READ_MAX_LAG_ENV     "CAVRA_READ_MAX_LAG_MS"
#define CV_DB_READ_MAX_LAG_DEFAULT 1000
int cv_db_wal_lsn(cv_db *db, char *out, size_t outlen, cv_error *err);
int cv_db_wait_replay(cv_db *db, const char *lsn, int max_ms, cv_error *err);

/* Parses a pg_lsn text ("16/B374D848") into *out; false when malformed. */
bool cv_db_lsn_parse(const char *text, uint64_t *out);

/* Returns 0 when "SELECT 1" succeeds (after cv_db_ensure). */
int cv_db_ping(cv_db *db, cv_error *err);

#endif
