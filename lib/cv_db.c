/*
 * cv_db.c -- libpq connection, prepared statements and error mapping.
 *
 * The SQL text of each service lives in its <svc>_sql.c table; this file
 * only knows how to prepare and run named statements safely.
 */
#include "cv_db.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cv_chain.h"
#include "cv_env.h"
#include "cv_log.h"
#include "cv_evidence.h"
#include "cv_idempotency.h"
#include "cv_plan_ref.h"

#define CV_DB_DEFAULT_URL "postgresql://cavra@127.0.0.1:55432/cavra"

const char *
cv_db_default_url(void)
{
    const char *url = getenv("CAVRA_DATABASE_URL");

    return (url != NULL && url[0] != '\0') ? url : CV_DB_DEFAULT_URL;
}

int
cv_db_init(cv_db *db, const char *url, const cv_db_statement *stmts,
           size_t n_stmts, cv_error *err)
{
    memset(db, 0, sizeof(*db));
    if ((db->url = strdup(url != NULL ? url : cv_db_default_url())) == NULL)
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    db->stmts = stmts;
    db->n_stmts = n_stmts;
    return 0;
}

static void
cv_db_disconnect(cv_db *db)
{
    db->in_tx = false;
    db->savepoints = 0;
    db->n_pending = 0;
    db->replayed = 0;
    if (db->conn != NULL) {
        PQfinish(db->conn);
        db->conn = NULL;
    }
}

void
cv_db_fini(cv_db *db)
{
    if (db == NULL)
        return;
    cv_db_disconnect(db);
    free(db->url);
    db->url = NULL;
}

static int cv_db_result_error(cv_db *db, PGresult *res, const char *name,
                              cv_error *err);
static int cv_db_flush(cv_db *db, cv_error *err);
static int cv_db_defer(cv_db *db, const char *sql, cv_error *err);

static int
cv_db_prepare_table(cv_db *db, const cv_db_statement *stmts, size_t n,
                    cv_error *err)
{
    for (size_t i = 0; i < n; i++) {
        PGresult *res =
            PQprepare(db->conn, stmts[i].name, stmts[i].sql, 0, NULL);
        int rv = 0;

        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            rv = cv_db_result_error(db, res, stmts[i].name, err);
        PQclear(res);
        if (rv != 0)
            return rv;
    }
    return 0;
}

/*
 * Acts as $CAVRA_DB_ROLE for the rest of the session when it is set: the
 * services log in as the database owner's member but work with the
 * narrower grants of migration 0009 (append, never rewrite, evidence).
 * set_config keeps the role name a parameter.
 */
static int
cv_db_set_role(cv_db *db, cv_error *err)
{
    const char *role = getenv("CAVRA_DB_ROLE");
    const char *params[1] = {role};
    PGresult *res;
    int ok;

    if (role == NULL || role[0] == '\0')
        return 0;
    res = PQexecParams(db->conn, "SELECT set_config('role', $1, false)", 1,
                       NULL, params, NULL, NULL, 0);
    ok = PQresultStatus(res) == PGRES_TUPLES_OK;
    PQclear(res);
    if (!ok)
        return cv_error_set(err, CV_UNAVAILABLE,
                            "cannot act as database role %s", role);
    return 0;
}

/*
 * No JIT compilation in our sessions: every statement is a short index
 * walk, and a plan whose estimate crosses jit_above_cost (a generic plan
 * over a million-event log does) paid 10-100 ms of compiling per run on
 * the database's CPU, never won back.
 */
static int
cv_db_set_no_jit(cv_db *db, cv_error *err)
{
    PGresult *res = PQexec(db->conn, "SELECT set_config('jit', 'off', false)");
    int ok = PQresultStatus(res) == PGRES_TUPLES_OK;

    PQclear(res);
    if (!ok)
        return cv_error_set(err, CV_UNAVAILABLE, "cannot set up the session");
    return 0;
}

int
cv_db_statement_timeout_ms(void)
{
    long n;

    /* A typo must not switch the bound off: out of range is the default. */
    (void)cv_env_long(CV_DB_STATEMENT_TIMEOUT_ENV, 1,
                      CV_DB_STATEMENT_TIMEOUT_MAX_MS,
                      CV_DB_STATEMENT_TIMEOUT_DEFAULT_MS, &n);
    return (int)n;
}

/* set_config(name, ms, local): the one way this file changes a timeout
 * (statement_timeout, lock_timeout); the name is never from input. */
static int
cv_db_set_timeout(cv_db *db, const char *name, int ms, bool local,
                  cv_error *err)
{
    char text[24];
    const char *params[3] = {name, text, local ? "true" : "false"};
    PGresult *res;
    int rv = 0;

    if (db->conn == NULL)
        return cv_error_set(err, CV_UNAVAILABLE, "database unavailable");
    if ((rv = cv_db_flush(db, err)) != 0)
        return rv;
    snprintf(text, sizeof(text), "%d", ms);
    res = PQexecParams(db->conn, "SELECT set_config($1, $2, $3::boolean)", 3,
                       NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        rv = cv_db_result_error(db, res, name, err);
    PQclear(res);
    return rv;
}

int
cv_db_set_statement_timeout(cv_db *db, int ms, bool local, cv_error *err)
{
    return cv_db_set_timeout(db, "statement_timeout", ms, local, err);
}

int
cv_db_set_lock_timeout(cv_db *db, int ms, cv_error *err)
{
    int rv;

    if (!db->in_tx)
        return cv_db_set_timeout(db, "lock_timeout", ms, true, err);
    /* One deferred SET at a time (it has one buffer). */
    for (size_t i = 0; i < db->n_pending; i++)
        if (db->pending[i] == db->pending_set &&
            (rv = cv_db_flush(db, err)) != 0)
            return rv;
    /* ms is an int formatted here, never input text. */
    snprintf(db->pending_set, sizeof(db->pending_set),
             "SET LOCAL lock_timeout = %d", ms);
    return cv_db_defer(db, db->pending_set, err);
}

int
cv_db_ensure(cv_db *db, cv_error *err)
{
    int rv;

    if (db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK)
        return 0;
    cv_db_disconnect(db);
    {
        /* The URL may name its own application_name; otherwise every
         * connection says which process holds it (pg_stat_activity). */
        const char *keys[] = {"dbname", "fallback_application_name", NULL};
        const char *vals[] = {db->url, cv_log_program_name(), NULL};

        db->conn = PQconnectdbParams(keys, vals, 1);
    }
    if (PQstatus(db->conn) != CONNECTION_OK) {
        /* The libpq text names host and port, never the password. */
        cv_error_set(err, CV_UNAVAILABLE, "database unavailable");
        cv_error_cause(err, "connect: %s", PQerrorMessage(db->conn));
        cv_db_disconnect(db);
        return CV_UNAVAILABLE;
    }
    /* Every statement of the session is bounded (a stuck or runaway query
     * answers DEADLINE_EXCEEDED instead of holding a worker forever). */
    if ((rv = cv_db_set_role(db, err)) != 0 ||
        (rv = cv_db_set_no_jit(db, err)) != 0 ||
        (rv = cv_db_set_statement_timeout(db, cv_db_statement_timeout_ms(),
                                          false, err)) != 0 ||
        (rv = cv_db_prepare_table(db, cv_evidence_statements,
                                  cv_evidence_statement_count, err)) != 0 ||
        (rv = cv_db_prepare_table(db, cv_chain_statements,
                                  cv_chain_statement_count, err)) != 0 ||
        (rv = cv_db_prepare_table(db, cv_idempotency_statements,
                                  cv_idempotency_statement_count, err)) != 0 ||
        (rv = cv_db_prepare_table(db, cv_plan_ref_statements,
                                  cv_plan_ref_statement_count, err)) != 0 ||
        (rv = cv_db_prepare_table(db, db->stmts, db->n_stmts, err)) != 0) {
        cv_db_disconnect(db);
        return rv;
    }
    return 0;
}

/* Maps a failed result to our codes. err->msg stays client-safe; the
 * statement, SQLSTATE and the server's primary message (never its DETAIL,
 * which may quote values) go to err->cause. */
static int
cv_db_result_error(cv_db *db, PGresult *res, const char *name, cv_error *err)
{
    const char *state =
        res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary =
        res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    int rv;

    if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK ||
        (state != NULL && strncmp(state, "08", 2) == 0) ||
        (state != NULL && strncmp(state, "57P", 3) == 0)) {
        /* Lost connection, or the server is shutting down (57P01..3). */
        cv_db_disconnect(db);
        rv = cv_error_set(err, CV_UNAVAILABLE, "database unavailable");
    } else if (state != NULL && strcmp(state, "23505") == 0) {
        rv = cv_error_set(err, CV_ALREADY_EXISTS, "record already exists");
    } else if (state != NULL &&
               (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
                strcmp(state, "55P03") == 0)) {
        /* 55P03: a lock wait outlived lock_timeout (set only inside a
         * group commit, where it stands in for a deadlock found early). */
        rv = cv_error_set(err, CV_ABORTED, "conflicting concurrent write");
    } else if (state != NULL && strcmp(state, "57014") == 0) {
        rv = cv_error_set(err, CV_DEADLINE_EXCEEDED,
                          "the store did not answer in time");
    } else {
        rv = cv_error_set(err, CV_INTERNAL, "internal storage error");
    }
    cv_error_cause(err, "%s: SQLSTATE %s: %s", name,
                   state != NULL ? state : "none",
                   primary != NULL ? primary : "no server message");
    return rv;
}

PGresult *
cv_db_exec(cv_db *db, const char *name, int nparams, const char *const *params,
           cv_error *err)
{
    PGresult *res;
    ExecStatusType st;

    if (db->conn == NULL) {
        cv_error_set(err, CV_UNAVAILABLE, "database unavailable");
        return NULL;
    }
    if (db->n_pending > 0) {
        /* Deferred savepoints go in the statement's round trip. */
        const cv_db_call call = {name, nparams, params};

        return cv_db_exec_pipeline(db, 1, &call, &res, err) == 0 ? res : NULL;
    }
    res = PQexecPrepared(db->conn, name, nparams, params, NULL, NULL, 0);
    st = PQresultStatus(res);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        return res;
    cv_db_result_error(db, res, name, err);
    PQclear(res);
    return NULL;
}

/* Reads every result of a pipeline up to its sync point. */
static void
cv_db_pipeline_drain(PGconn *conn)
{
    for (int nulls = 0; nulls < 64;) {
        PGresult *r = PQgetResult(conn);

        if (r == NULL) {
            nulls++;
            if (PQstatus(conn) != CONNECTION_OK)
                return;
            continue;
        }
        nulls = 0;
        if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            return;
        }
        PQclear(r);
    }
}

int
cv_db_exec_pipeline(cv_db *db, size_t n, const cv_db_call *calls,
                    PGresult **res, cv_error *err)
{
    size_t i, n_pre;
    int rv = 0;

    for (i = 0; i < n; i++)
        res[i] = NULL;
    if (db->conn == NULL)
        return cv_error_set(err, CV_UNAVAILABLE, "database unavailable");
    if (PQenterPipelineMode(db->conn) != 1) {
        /* Not idle (cannot happen between statements): one by one. */
        if ((rv = cv_db_flush(db, err)) != 0)
            goto out;
        for (i = 0; i < n; i++) {
            if ((res[i] = cv_db_exec(db, calls[i].name, calls[i].nparams,
                                     calls[i].params, err)) == NULL) {
                rv = err != NULL ? err->code : CV_INTERNAL;
                break;
            }
        }
        goto out;
    }
    /* Deferred transaction control first, in order (no parameters). */
    n_pre = db->n_pending;
    db->n_pending = 0;
    for (i = 0; i < n_pre; i++)
        if (PQsendQueryParams(db->conn, db->pending[i], 0, NULL, NULL, NULL,
                              NULL, 0) != 1)
            break;
    if (i == n_pre)
        for (i = 0; i < n; i++) {
            if (PQsendQueryPrepared(db->conn, calls[i].name, calls[i].nparams,
                                    calls[i].params, NULL, NULL, 0) != 1)
                break;
        }
    if (i < n || PQpipelineSync(db->conn) != 1) {
        rv = cv_db_result_error(db, NULL, "pipeline send", err);
        if (db->conn != NULL)
            PQexitPipelineMode(db->conn);
        cv_db_disconnect(db);
        goto out;
    }
    for (i = 0; i < n_pre && rv == 0; i++) {
        PGresult *r = PQgetResult(db->conn);

        if (PQresultStatus(r) == PGRES_COMMAND_OK) {
            PQclear(r);
            /* The NULL that ends this command's results. */
            if ((r = PQgetResult(db->conn)) == NULL)
                continue;
            rv = cv_error_set(err, CV_INTERNAL, "internal storage error");
            cv_error_cause(err, "%s: more than one result", db->pending[i]);
        } else
            rv = cv_db_result_error(db, r, db->pending[i], err);
        PQclear(r);
    }
    for (i = 0; i < n && rv == 0; i++) {
        PGresult *r = PQgetResult(db->conn);
        ExecStatusType st = PQresultStatus(r);

        if (r != NULL && (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)) {
            res[i] = r;
            /* The NULL that ends this statement's results. */
            if ((r = PQgetResult(db->conn)) != NULL) {
                PQclear(r);
                rv = cv_error_set(err, CV_INTERNAL, "internal storage error");
                cv_error_cause(err, "%s: more than one result", calls[i].name);
                break;
            }
            continue;
        }
        rv = cv_db_result_error(db, r, calls[i].name, err);
        PQclear(r);
        break;
    }
    if (db->conn != NULL) {
        cv_db_pipeline_drain(db->conn);
        if (PQexitPipelineMode(db->conn) != 1) {
            /* Results left unread: the connection is in no known state. */
            cv_db_disconnect(db);
            if (rv == 0)
                rv = cv_error_set(err, CV_UNAVAILABLE, "database unavailable");
        }
    }
out:
    if (rv != 0)
        for (i = 0; i < n; i++) {
            PQclear(res[i]);
            res[i] = NULL;
        }
    return rv;
}

int
cv_db_run(cv_db *db, const char *name, int nparams, const char *const *params,
          cv_error *err)
{
    PGresult *res = cv_db_exec(db, name, nparams, params, err);

    if (res == NULL)
        return err != NULL ? err->code : CV_INTERNAL;
    PQclear(res);
    return 0;
}

/* Transaction verbs carry no parameters, so plain PQexec is safe here.
 * Deferred commands go first, in the same simple query (inside the open
 * transaction they run in order and the first failure stops the rest);
 * sql NULL sends only them. */
static int
cv_db_simple(cv_db *db, const char *sql, cv_error *err)
{
    char text[512];
    size_t used = 0;
    PGresult *res;
    int rv = 0;

    if (db->conn == NULL)
        return cv_error_set(err, CV_UNAVAILABLE, "database unavailable");
    /* At most 8 short constant commands and one verb: they fit. */
    for (size_t i = 0; i < db->n_pending && used < sizeof(text); i++)
        used += (size_t)snprintf(text + used, sizeof(text) - used, "%s%s",
                                 i > 0 ? "; " : "", db->pending[i]);
    if (sql != NULL && db->n_pending > 0 && used < sizeof(text))
        used += (size_t)snprintf(text + used, sizeof(text) - used, "; %s", sql);
    if (db->n_pending > 0) {
        db->n_pending = 0;
        if (used >= sizeof(text))
            return cv_error_set(err, CV_INTERNAL, "internal storage error");
        sql = text;
    }
    if (sql == NULL)
        return 0;
    res = PQexec(db->conn, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK &&
        PQresultStatus(res) != PGRES_TUPLES_OK)
        rv = cv_db_result_error(db, res, sql, err);
    PQclear(res);
    return rv;
}

static int
cv_db_flush(cv_db *db, cv_error *err)
{
    return db->n_pending > 0 ? cv_db_simple(db, NULL, err) : 0;
}

/* The deferred SAVEPOINT, compared by address. */
static const char cv_db_sp_sql[] = "SAVEPOINT cv_sp";
static const char cv_db_release_sql[] = "RELEASE SAVEPOINT cv_sp";

/* Queues a transaction-control command for the next round trip (flushes
 * first when the queue is full). */
static int
cv_db_defer(cv_db *db, const char *sql, cv_error *err)
{
    int rv;

    if (db->conn == NULL)
        return cv_error_set(err, CV_UNAVAILABLE, "database unavailable");
    if (db->n_pending == sizeof(db->pending) / sizeof(db->pending[0]) &&
        (rv = cv_db_flush(db, err)) != 0)
        return rv;
    db->pending[db->n_pending++] = sql;
    return 0;
}

/* True when the last deferred command is a SAVEPOINT not sent yet. */
static bool
cv_db_sp_pending(const cv_db *db)
{
    return db->n_pending > 0 && db->pending[db->n_pending - 1] == cv_db_sp_sql;
}

static const char *
cv_db_begin_sql(enum cv_tx_mode mode)
{
    switch (mode) {
    case CV_TX_WRITE:
        return "BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE";
    case CV_TX_WRITE_SNAPSHOT:
        return "BEGIN ISOLATION LEVEL REPEATABLE READ READ WRITE";
    case CV_TX_READ:
        return "BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY";
    case CV_TX_READ_SNAPSHOT:
        return "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
    case CV_TX_NONE:
    default:
        return NULL;
    }
}

int
cv_db_tx_begin(cv_db *db, enum cv_tx_mode mode, cv_error *err)
{
    const char *sql = cv_db_begin_sql(mode);
    int rv;

    if (sql == NULL)
        return cv_error_set(err, CV_INTERNAL, "internal storage error");
    if (db->in_tx) {
        cv_error_set(err, CV_INTERNAL, "internal storage error");
        cv_error_cause(err, "BEGIN inside an open transaction (two owners)");
        return CV_INTERNAL;
    }
    db->n_pending = 0;
    if ((rv = cv_db_simple(db, sql, err)) == 0) {
        db->in_tx = true;
        db->savepoints = 0;
    }
    return rv;
}

int
cv_db_tx_begin_deferred(cv_db *db, enum cv_tx_mode mode, cv_error *err)
{
    const char *sql = cv_db_begin_sql(mode);

    if (sql == NULL)
        return cv_error_set(err, CV_INTERNAL, "internal storage error");
    if (db->in_tx) {
        cv_error_set(err, CV_INTERNAL, "internal storage error");
        cv_error_cause(err, "BEGIN inside an open transaction (two owners)");
        return CV_INTERNAL;
    }
    if (db->conn == NULL)
        return cv_error_set(err, CV_UNAVAILABLE, "database unavailable");
    db->n_pending = 0;
    db->pending[db->n_pending++] = sql;
    db->in_tx = true;
    db->savepoints = 0;
    return 0;
}

int
cv_db_tx_commit(cv_db *db, cv_error *err)
{
    int rv;

    if (!db->in_tx) {
        cv_error_set(err, CV_INTERNAL, "internal storage error");
        cv_error_cause(err, "COMMIT without a transaction");
        return CV_INTERNAL;
    }
    /* A COMMIT of a failed transaction answers ROLLBACK, not an error:
     * refuse it explicitly so a lost write is never reported as stored. */
    if (db->conn != NULL && PQtransactionStatus(db->conn) == PQTRANS_INERROR) {
        cv_db_tx_rollback(db);
        cv_error_set(err, CV_INTERNAL, "internal storage error");
        cv_error_cause(err, "COMMIT of a failed transaction");
        return CV_INTERNAL;
    }
    /* Deferred commands go with it; one that fails stops the COMMIT. */
    rv = cv_db_simple(db, "COMMIT", err);
    db->in_tx = false;
    db->savepoints = 0;
    if (rv != 0)
        cv_db_tx_rollback(db);
    return rv;
}

void
cv_db_tx_rollback(cv_db *db)
{
    db->in_tx = false;
    db->savepoints = 0;
    db->n_pending = 0; /* nothing deferred matters any more */
    if (db->conn != NULL && PQtransactionStatus(db->conn) != PQTRANS_IDLE)
        cv_db_simple(db, "ROLLBACK", NULL);
}

/* Savepoints share one name: PostgreSQL resolves a repeated name to the
 * innermost one, which is exactly the nesting we want. */
int
cv_db_savepoint(cv_db *db, cv_error *err)
{
    int rv;

    if (!db->in_tx)
        return cv_error_set(err, CV_INTERNAL, "internal storage error");
    if ((rv = cv_db_defer(db, cv_db_sp_sql, err)) == 0)
        db->savepoints++;
    return rv;
}

int
cv_db_savepoint_release(cv_db *db, cv_error *err)
{
    int rv = 0;

    if (!db->in_tx || db->savepoints == 0)
        return cv_error_set(err, CV_INTERNAL, "internal storage error");
    /* A savepoint never sent needs no release. */
    if (cv_db_sp_pending(db))
        db->n_pending--;
    else
        rv = cv_db_defer(db, cv_db_release_sql, err);
    if (rv == 0)
        db->savepoints--;
    return rv;
}

int
cv_db_savepoint_next(cv_db *db, cv_error *err)
{
    int rv;

    if (!db->in_tx || db->savepoints == 0)
        return cv_error_set(err, CV_INTERNAL, "internal storage error");
    /* Nothing ran since a savepoint not sent yet: it serves as the next. */
    if (cv_db_sp_pending(db))
        return 0;
    if ((rv = cv_db_defer(db, cv_db_release_sql, err)) != 0)
        return rv;
    return cv_db_defer(db, cv_db_sp_sql, err);
}

int
cv_db_savepoint_rollback(cv_db *db, cv_error *err)
{
    int rv;

    if (!db->in_tx || db->savepoints == 0)
        return cv_error_set(err, CV_INTERNAL, "internal storage error");
    /* Nothing ran since a savepoint not sent yet: nothing to undo. */
    if (cv_db_sp_pending(db)) {
        db->n_pending--;
        db->savepoints--;
        return 0;
    }
    /* ROLLBACK TO keeps the savepoint; release it so nesting unwinds.
     * One simple query: the first failure stops the rest. */
    if ((rv = cv_db_simple(db,
                           "ROLLBACK TO SAVEPOINT cv_sp; "
                           "RELEASE SAVEPOINT cv_sp",
                           err)) != 0)
        return rv;
    db->savepoints--;
    return 0;
}

/* Sleeps a few milliseconds, more after each failed attempt, with jitter
 * so that two conflicting writers do not collide again in lockstep. */
static void
cv_db_backoff(int attempt)
{
    long base_us = 1000L << (attempt < 6 ? attempt : 6);
    long us = base_us + (long)(random() % base_us);
    struct timespec ts = {us / 1000000L, (us % 1000000L) * 1000L};

    nanosleep(&ts, NULL);
}

int
cv_db_transact(cv_db *db, enum cv_tx_mode mode, cv_db_tx_fn fn, void *arg,
               cv_error *err)
{
    bool reconnected = false;
    int rv = 0;

    for (int attempt = 0; attempt < CV_DB_TX_ATTEMPTS; attempt++) {
        if (attempt > 0)
            cv_db_backoff(attempt);
        cv_error_clear(err);
        if ((rv = cv_db_ensure(db, err)) != 0)
            return rv;
        if (mode == CV_TX_NONE)
            return fn(db, arg, err);
        /* The BEGIN goes with fn's first statement (one round trip less
         * per request). */
        if ((rv = cv_db_tx_begin_deferred(db, mode, err)) != 0)
            return rv;
        if ((rv = fn(db, arg, err)) == 0) {
            rv = cv_db_tx_commit(db, err);
        } else {
            cv_db_tx_rollback(db);
            /* A connection that went stale while idle (the server
             * restarted) only shows at the first statement. fn's work
             * was lost with the connection, nothing of it committed: run
             * it once more on a new connection. */
            if (rv == CV_UNAVAILABLE && !reconnected &&
                (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK)) {
                reconnected = true;
                attempt--;
                continue;
            }
        }
        if (rv != CV_ABORTED)
            return rv;
    }
    /* Keep the last conflict's cause for the log. */
    {
        char cause[CV_ERROR_CAUSE_MAX];

        snprintf(cause, sizeof(cause), "%s", err != NULL ? err->cause : "");
        cv_error_set(err, CV_UNAVAILABLE,
                     "the store is busy with conflicting writes; retry");
        cv_error_cause(err, "gave up after %d attempts: %s", CV_DB_TX_ATTEMPTS,
                       cause);
    }
    return CV_UNAVAILABLE;
}

int
cv_db_ping(cv_db *db, cv_error *err)
{
    int rv;

    if ((rv = cv_db_ensure(db, err)) != 0)
        return rv;
    return cv_db_simple(db, "SELECT 1", err);
}

int
cv_db_wal_lsn(cv_db *db, char *out, size_t outlen, cv_error *err)
{
    PGresult *res;
    int rv = 0;

    if ((rv = cv_db_ensure(db, err)) != 0)
        return rv;
    /* The commit record of every transaction answered before now must lie
     * at or before the position returned. pg_current_wal_lsn() is only
     * where WAL has been written to the kernel: with synchronous_commit
     * off, a commit is visible (and answered) as soon as its record is
     * inserted into the WAL buffers, before the WAL writer writes it, so
     * the standby could reach that position without the commit (the
     * intermittent read-your-writes failure of make test, whose cluster
     * runs with synchronous_commit off). Then take the insert position.
     * With it on, a commit is flushed before it becomes visible, and the
     * flush position is the tightest bound (nothing the standby must wait
     * for beyond it). The setting read here is the session default of the
     * services' role and database, the same as the writers'. */
    res = PQexec(db->conn, "SELECT (CASE current_setting('synchronous_commit')"
                           " WHEN 'off' THEN pg_current_wal_insert_lsn()"
                           " ELSE pg_current_wal_flush_lsn() END)::text");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
        rv = cv_db_result_error(db, res, "pg_current_wal_lsn", err);
    else
        snprintf(out, outlen, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return rv;
}

bool
cv_db_lsn_parse(const char *text, uint64_t *out)
{
    unsigned long long hi, lo;
    char *end;

    if (text == NULL || !isxdigit((unsigned char)text[0]))
        return false;
    errno = 0;
    hi = strtoull(text, &end, 16);
    if (errno != 0 || *end != '/' || hi > 0xffffffffULL ||
        !isxdigit((unsigned char)end[1]))
        return false;
    lo = strtoull(end + 1, &end, 16);
    if (errno != 0 || *end != '\0' || lo > 0xffffffffULL)
        return false;
    *out = (uint64_t)hi << 32 | (uint64_t)lo;
    return true;
}

int
cv_db_wait_replay(cv_db *db, const char *lsn, int max_ms, cv_error *err)
{
    long waited_us = 0, step_us = 200;
    uint64_t want;
    int rv;

    if (!cv_db_lsn_parse(lsn, &want))
        return cv_error_set(err, CV_INTERNAL, "bad WAL position");
    if ((rv = cv_db_ensure(db, err)) != 0)
        return rv;
    for (;;) {
        PGresult *res;
        bool ok, caught_up;
        uint64_t at = 0;

        if (db->replayed >= want)
            return 0;
        res = PQexec(db->conn, "SELECT pg_last_wal_replay_lsn()::text,"
                               " pg_is_in_recovery()");
        ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
        if (!ok) {
            rv = cv_db_result_error(db, res, "pg_last_wal_replay_lsn", err);
            PQclear(res);
            return rv;
        }
        if (PQgetisnull(res, 0, 0))
            /* No replay position: a server that is no standby (the read
             * URL names the primary itself) has nothing to wait for; a
             * standby always has one once it accepts reads. */
            caught_up = strcmp(PQgetvalue(res, 0, 1), "f") == 0;
        else
            caught_up =
                cv_db_lsn_parse(PQgetvalue(res, 0, 0), &at) && at >= want;
        PQclear(res);
        if (at > db->replayed)
            db->replayed = at;
        if (caught_up)
            return 0;
        if (waited_us >= (long)max_ms * 1000L)
            return cv_error_set(err, CV_UNAVAILABLE,
                                "the read replica lags behind");
        {
            struct timespec ts = {0, step_us * 1000L};

            nanosleep(&ts, NULL);
        }
        waited_us += step_us;
        if (step_us < 5000)
            step_us *= 2;
    }
}
