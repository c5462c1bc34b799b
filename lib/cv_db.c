/*
 * cv_db.c -- libpq connection, prepared statements and error mapping.
 *
 * The SQL text of each service lives in its <svc>_sql.c table; this file
 * only knows how to prepare and run named statements safely.
 */
#include "cv_db.h"

#include <stdlib.h>
#include <string.h>

#include "cv_chain.h"
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
    db->tx_depth = 0;
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

static int
cv_db_prepare_table(cv_db *db, const cv_db_statement *stmts, size_t n,
                    cv_error *err)
{
    for (size_t i = 0; i < n; i++) {
        PGresult *res =
            PQprepare(db->conn, stmts[i].name, stmts[i].sql, 0, NULL);
        int ok = PQresultStatus(res) == PGRES_COMMAND_OK;

        if (!ok)
            cv_error_set(err, CV_INTERNAL, "cannot prepare %s: %s",
                         stmts[i].name, PQresultErrorMessage(res));
        PQclear(res);
        if (!ok)
            return CV_INTERNAL;
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

int
cv_db_ensure(cv_db *db, cv_error *err)
{
    int rv;

    if (db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK)
        return 0;
    cv_db_disconnect(db);
    db->conn = PQconnectdb(db->url);
    if (PQstatus(db->conn) != CONNECTION_OK) {
        /* The libpq text names host and port, never the password. */
        cv_error_set(err, CV_UNAVAILABLE, "database unavailable");
        cv_db_disconnect(db);
        return CV_UNAVAILABLE;
    }
    if ((rv = cv_db_set_role(db, err)) != 0 ||
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

/* Maps a failed result to our codes; never copies parameter values. */
static int
cv_db_result_error(cv_db *db, PGresult *res, const char *name, cv_error *err)
{
    const char *state =
        res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK) {
        cv_db_disconnect(db);
        return cv_error_set(err, CV_UNAVAILABLE, "database unavailable");
    }
    if (state != NULL && strcmp(state, "23505") == 0)
        return cv_error_set(err, CV_ALREADY_EXISTS, "%s: record exists", name);
    if (state != NULL &&
        (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0))
        return cv_error_set(err, CV_ABORTED, "%s: conflict, retry", name);
    if (state != NULL && strncmp(state, "08", 2) == 0) {
        cv_db_disconnect(db);
        return cv_error_set(err, CV_UNAVAILABLE, "database unavailable");
    }
    return cv_error_set(err, CV_INTERNAL, "%s failed (SQLSTATE %s)", name,
                        state != NULL ? state : "none");
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
    res = PQexecPrepared(db->conn, name, nparams, params, NULL, NULL, 0);
    st = PQresultStatus(res);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        return res;
    cv_db_result_error(db, res, name, err);
    PQclear(res);
    return NULL;
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

/* Transaction verbs carry no parameters, so plain PQexec is safe here. */
static int
cv_db_simple(cv_db *db, const char *sql, cv_error *err)
{
    PGresult *res;
    int rv = 0;

    if (db->conn == NULL)
        return cv_error_set(err, CV_UNAVAILABLE, "database unavailable");
    res = PQexec(db->conn, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK &&
        PQresultStatus(res) != PGRES_TUPLES_OK)
        rv = cv_db_result_error(db, res, sql, err);
    PQclear(res);
    return rv;
}

int
cv_db_begin(cv_db *db, cv_error *err)
{
    int rv;

    if (db->tx_depth > 0) {
        db->tx_depth++;
        return 0;
    }
    if ((rv = cv_db_simple(db, "BEGIN", err)) == 0)
        db->tx_depth = 1;
    return rv;
}

int
cv_db_begin_snapshot(cv_db *db, cv_error *err)
{
    int rv;

    if (db->tx_depth > 0)
        return cv_error_set(err, CV_INTERNAL,
                            "a snapshot cannot nest in a transaction");
    if ((rv = cv_db_simple(db,
                           "BEGIN ISOLATION LEVEL REPEATABLE READ READ "
                           "ONLY",
                           err)) == 0)
        db->tx_depth = 1;
    return rv;
}

int
cv_db_commit(cv_db *db, cv_error *err)
{
    int rv;

    if (db->tx_depth > 1) {
        db->tx_depth--;
        return 0;
    }
    db->tx_depth = 0;
    if ((rv = cv_db_simple(db, "COMMIT", err)) != 0)
        cv_db_rollback(db);
    return rv;
}

void
cv_db_rollback(cv_db *db)
{
    db->tx_depth = 0;
    if (db->conn != NULL && PQtransactionStatus(db->conn) != PQTRANS_IDLE)
        cv_db_simple(db, "ROLLBACK", NULL);
}

int
cv_db_ping(cv_db *db, cv_error *err)
{
    int rv;

    if ((rv = cv_db_ensure(db, err)) != 0)
        return rv;
    return cv_db_simple(db, "SELECT 1", err);
}
