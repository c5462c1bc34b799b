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
 */
#ifndef CV_DB_H
#define CV_DB_H

#include <libpq-fe.h>
#include <stddef.h>

#include "cv_error.h"

typedef struct cv_db_statement {
    const char *name;
    const char *sql;
} cv_db_statement;

typedef struct cv_db {
    PGconn *conn; /* NULL while disconnected */
    char *url;
    const cv_db_statement *stmts;
    size_t n_stmts;
    int tx_depth; /* nesting of cv_db_begin */
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

/* Executes a prepared statement and only checks it succeeded. */
int cv_db_run(cv_db *db, const char *name, int nparams,
              const char *const *params, cv_error *err);

/*
 * Transaction control; each returns 0 or an error as cv_db_exec does.
 * Transactions nest: only the outermost begin/commit reach PostgreSQL, so
 * the RPC server can wrap a handler's own transaction (idempotency keys)
 * and both commit together. cv_db_rollback rolls the whole transaction
 * back, whatever the depth, and is safe to call in any state.
 */
int cv_db_begin(cv_db *db, cv_error *err);
int cv_db_commit(cv_db *db, cv_error *err);
/* Begins a read-only REPEATABLE READ transaction: every query in it sees
 * one snapshot (long reads such as chain verification). End it with
 * cv_db_rollback. */
int cv_db_begin_snapshot(cv_db *db, cv_error *err);
void cv_db_rollback(cv_db *db);

/* Returns 0 when "SELECT 1" succeeds (after cv_db_ensure). */
int cv_db_ping(cv_db *db, cv_error *err);

#endif
