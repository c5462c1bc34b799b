/*
 * tx_test.c -- the one transaction model, against the real PostgreSQL.
 *
 * Two halves:
 *  - cv_db directly: one owner per transaction (a second BEGIN is refused,
 *    never nested), a failed inner step rolls back only its SAVEPOINT, a
 *    COMMIT of a failed transaction is refused, cv_db_transact retries a
 *    conflict and then answers UNAVAILABLE.
 *  - The RPC server in this process, with the real acknowledgement
 *    handlers, plus one handler that injects a failure right after the
 *    real record insert: with an Idempotency-Key, neither the key nor the
 *    record (nor its evidence event) may survive, the worker's next
 *    request must not run inside a leftover transaction, and the same key
 *    then stores exactly one record.
 *
 * Needs CAVRA_DATABASE_URL pointing at a migrated database (scripts/test.sh
 * sets it). Run: ctest -R integration.tx, or the binary alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ack.pb-c.h"
#include "cv_rpc.h"
#include "cv_test_api.h"
#include "cv_test_ack.h"

/* What the injecting handler does after the real handler stored. */
enum tx_fault {
    TX_FAULT_NONE = 0,
    TX_FAULT_ERROR,    /* returns an error */
    TX_FAULT_NO_REPLY, /* "succeeds" without a reply (failed allocation) */
};

static enum tx_fault tx_fault;
static cv_test_inproc tx_srv;
#define tx_cli (tx_srv.cli)

/* ---- cv_db directly ---------------------------------------------------- */

static const cv_db_statement tx_statements[] = {
    {"tx_make", "CREATE TEMP TABLE IF NOT EXISTS tx_probe (v int PRIMARY KEY)"},
    {"tx_put", "INSERT INTO tx_probe (v) VALUES ($1::int)"},
    {"tx_count", "SELECT count(*) FROM tx_probe"},
    {"tx_mode", "SELECT current_setting('transaction_isolation') || ' ' ||"
                " current_setting('transaction_read_only')"},
};

static long
tx_count(cv_db *db)
{
    cv_error err;
    PGresult *res = cv_db_exec(db, "tx_count", 0, NULL, &err);
    long n;

    if (res == NULL)
        fail_msg("tx_count: %s (%s)", err.msg, err.cause);
    n = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return n;
}

static void
tx_put(cv_db *db, const char *v, int expect)
{
    const char *p[1] = {v};
    cv_error err;

    cv_error_clear(&err);
    assert_int_equal(cv_db_run(db, "tx_put", 1, p, &err), expect);
}

static void
test_tx_db_savepoints(void **state)
{
    cv_db db;
    cv_error err;

    (void)state;
    cv_error_clear(&err);
    assert_int_equal(cv_db_init(&db, cv_test_database_url(), NULL, 0, &err), 0);
    assert_int_equal(cv_db_ensure(&db, &err), 0);
    /* A temporary table lives in this session only: make it, then
     * prepare its statements on the same session. */
    for (size_t i = 0; i < sizeof(tx_statements) / sizeof(tx_statements[0]);
         i++) {
        PGresult *r = i == 0 ? PQexec(db.conn, tx_statements[0].sql)
                             : PQprepare(db.conn, tx_statements[i].name,
                                         tx_statements[i].sql, 0, NULL);

        assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
        PQclear(r);
    }

    /* One owner: a second BEGIN is an error, and does not end the first. */
    assert_int_equal(cv_db_tx_begin(&db, CV_TX_WRITE, &err), 0);
    tx_put(&db, "1", 0);
    assert_int_equal(cv_db_tx_begin(&db, CV_TX_WRITE, &err), CV_INTERNAL);
    assert_true(db.in_tx);

    /* A failed inner step rolls back only its savepoint. */
    assert_int_equal(cv_db_savepoint(&db, &err), 0);
    tx_put(&db, "2", 0);
    tx_put(&db, "1", CV_ALREADY_EXISTS); /* the transaction is now failed */
    assert_int_equal(cv_db_savepoint_rollback(&db, &err), 0);
    assert_int_equal(tx_count(&db), 1); /* 2 is gone, 1 stays */
    /* Nested savepoints: the inner release keeps the outer's work. */
    assert_int_equal(cv_db_savepoint(&db, &err), 0);
    tx_put(&db, "3", 0);
    assert_int_equal(cv_db_savepoint(&db, &err), 0);
    tx_put(&db, "4", 0);
    assert_int_equal(cv_db_savepoint_release(&db, &err), 0);
    assert_int_equal(cv_db_savepoint_rollback(&db, &err), 0);
    assert_int_equal(tx_count(&db), 1); /* 3 and 4 went with the outer */
    assert_int_equal(cv_db_tx_commit(&db, &err), 0);
    assert_false(db.in_tx);
    assert_int_equal(tx_count(&db), 1);

    /* A COMMIT of a failed transaction is refused, not reported stored. */
    assert_int_equal(cv_db_tx_begin(&db, CV_TX_WRITE, &err), 0);
    tx_put(&db, "5", 0);
    tx_put(&db, "5", CV_ALREADY_EXISTS);
    assert_int_not_equal(cv_db_tx_commit(&db, &err), 0);
    assert_false(db.in_tx);
    assert_int_equal(tx_count(&db), 1);

    /* Savepoints need an owner's transaction. */
    assert_int_equal(cv_db_savepoint(&db, &err), CV_INTERNAL);
    /* Isolation and read-only are chosen at BEGIN. */
    {
        static const struct {
            enum cv_tx_mode mode;
            const char *want;
        } modes[] = {
            {CV_TX_WRITE, "read committed off"},
            {CV_TX_WRITE_SNAPSHOT, "repeatable read off"},
            {CV_TX_READ, "read committed on"},
            {CV_TX_READ_SNAPSHOT, "repeatable read on"},
        };

        for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
            PGresult *r;

            assert_int_equal(cv_db_tx_begin(&db, modes[i].mode, &err), 0);
            r = cv_db_exec(&db, "tx_mode", 0, NULL, &err);
            assert_non_null(r);
            assert_string_equal(PQgetvalue(r, 0, 0), modes[i].want);
            PQclear(r);
            cv_db_tx_rollback(&db);
        }
    }
    cv_db_fini(&db);
}

/* A tx function that always conflicts, counting its runs. */
static int
tx_always_conflicts(cv_db *db, void *arg, cv_error *err)
{
    int *runs = arg;

    (void)db;
    (*runs)++;
    return cv_error_set(err, CV_ABORTED, "conflict");
}

/* Conflicts on its first run only. */
static int
tx_conflicts_once(cv_db *db, void *arg, cv_error *err)
{
    int *runs = arg;

    assert_true(db->in_tx);
    if ((*runs)++ == 0)
        return cv_error_set(err, CV_ABORTED, "conflict");
    return 0;
}

static void
test_tx_transact_retries(void **state)
{
    cv_db db;
    cv_error err;
    int runs = 0;

    (void)state;
    assert_int_equal(cv_db_init(&db, cv_test_database_url(), NULL, 0, &err), 0);
    assert_int_equal(
        cv_db_transact(&db, CV_TX_WRITE, tx_conflicts_once, &runs, &err), 0);
    assert_int_equal(runs, 2);
    runs = 0;
    assert_int_equal(
        cv_db_transact(&db, CV_TX_WRITE, tx_always_conflicts, &runs, &err),
        CV_UNAVAILABLE);
    assert_int_equal(runs, CV_DB_TX_ATTEMPTS);
    assert_false(db.in_tx);
    assert_null(strstr(err.msg, "SQLSTATE"));
    cv_db_fini(&db);
}

/* ---- the RPC server with an injected failure ------------------------------
 */

static int
tx_inject_ack(cv_rpc_ctx *call, const ProtobufCMessage *request,
              ProtobufCMessage **reply, cv_error *err)
{
    int rv = tx_srv.real(call, request, reply, err);

    if (rv != 0)
        return rv;
    switch (tx_fault) {
    case TX_FAULT_ERROR:
        protobuf_c_message_free_unpacked(*reply, NULL);
        *reply = NULL;
        return cv_error_set(err, CV_INTERNAL, "injected failure");
    case TX_FAULT_NO_REPLY:
        protobuf_c_message_free_unpacked(*reply, NULL);
        *reply = NULL;
        return 0;
    case TX_FAULT_NONE:
    default:
        return 0;
    }
}

static int
tx_setup(void **state)
{
    (void)state;
    /* One worker: the next request runs on the connection that saw the
     * failure, so a leftover transaction would show. */
    return cv_test_ack_inproc_start(&tx_srv, "tx", 4, tx_inject_ack);
}

static int
tx_teardown(void **state)
{
    (void)state;
    cv_test_inproc_stop(&tx_srv);
    return 0;
}

#define TX_ACKS_OF_PLAN                                                        \
    "SELECT count(*) FROM acknowledgements WHERE plan_id = $1"
#define TX_EVENTS_OF_ACK                                                       \
    "SELECT count(*) FROM evidence_events WHERE plan_id = $1 AND kind = "      \
    "'recovery_escalation_ack'"
#define TX_KEYS                                                                \
    "SELECT count(*) FROM idempotency_keys WHERE idempotency_key = $1"

static void
tx_faulty_ack(const char *plan_id, const char *key, enum tx_fault fault)
{
    cv_rpc_call_opts opts = {.idempotency_key = key};
    Cv__AcknowledgeReply *rep = NULL;
    cv_error err;
    int rv;

    tx_fault = fault;
    cv_error_clear(&err);
    rv = cv_test_ack_call(tx_cli, plan_id, "webhook", "alice", 0, &opts, &rep,
                          &err);
    tx_fault = TX_FAULT_NONE;
    assert_int_equal(rv, CV_INTERNAL);
    assert_null(rep);
    /* The client reads the product's words, never SQL internals. */
    assert_null(strstr(err.msg, "SQLSTATE"));
    assert_null(strstr(err.msg, "ack_"));
}

static void
test_tx_key_and_record_commit_together(void **state)
{
    Cv__EscalationRoute route = CV__ESCALATION_ROUTE__INIT;
    Cv__RecordPlanReply *plan;
    char key[64], plan_id[64];
    const enum tx_fault faults[2] = {TX_FAULT_ERROR, TX_FAULT_NO_REPLY};

    (void)state;
    route.provider = "webhook";
    plan = cv_test_record_plan_rpc(tx_cli, "tx-test", &route, 1, NULL);
    snprintf(plan_id, sizeof(plan_id), "%s", plan->plan->plan_id);
    protobuf_c_message_free_unpacked(&plan->base, NULL);
    snprintf(key, sizeof(key), "tx-key-%ld", (long)getpid());

    for (int i = 0; i < 2; i++) {
        /* The handler stored the record, then the call failed: with the
         * key, nothing of it may remain. */
        tx_faulty_ack(plan_id, key, faults[i]);
        assert_int_equal(cv_test_count(TX_ACKS_OF_PLAN, plan_id), 0);
        assert_int_equal(cv_test_count(TX_EVENTS_OF_ACK, plan_id), 0);
        assert_int_equal(cv_test_count(TX_KEYS, key), 0);
    }

    /* The same worker's next call commits on its own (no leftover
     * transaction swallowed it): visible from another connection. */
    {
        cv_rpc_call_opts opts = {.idempotency_key = key};
        Cv__AcknowledgeReply *rep = NULL;
        bool replayed = true;
        cv_error err;

        opts.replayed = &replayed;
        assert_int_equal(cv_test_ack_call(tx_cli, plan_id, "webhook", "alice",
                                          0, &opts, &rep, &err),
                         0);
        assert_false(replayed);
        protobuf_c_message_free_unpacked(&rep->base, NULL);
        assert_int_equal(cv_test_count(TX_ACKS_OF_PLAN, plan_id), 1);
        assert_int_equal(cv_test_count(TX_EVENTS_OF_ACK, plan_id), 1);
        assert_int_equal(cv_test_count(TX_KEYS, key), 1);

        /* A replay stores nothing new. */
        replayed = false;
        assert_int_equal(cv_test_ack_call(tx_cli, plan_id, "webhook", "alice",
                                          0, &opts, &rep, &err),
                         0);
        assert_true(replayed);
        protobuf_c_message_free_unpacked(&rep->base, NULL);
        assert_int_equal(cv_test_count(TX_ACKS_OF_PLAN, plan_id), 1);
    }
}

int
main(void)
{
    const struct CMUnitTest db_tests[] = {
        cmocka_unit_test(test_tx_db_savepoints),
        cmocka_unit_test(test_tx_transact_retries),
    };
    const struct CMUnitTest rpc_tests[] = {
        cmocka_unit_test(test_tx_key_and_record_commit_together),
    };
    int failed = cmocka_run_group_tests_name("tx_db", db_tests, NULL, NULL);

    failed +=
        cmocka_run_group_tests_name("tx_rpc", rpc_tests, tx_setup, tx_teardown);
    return failed;
}
