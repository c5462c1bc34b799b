/*
 * write_path_test.c -- the acknowledgement write path with fewer round
 * trips (issue 12), against the real PostgreSQL.
 *
 *  - cv_db's deferred transaction control: BEGIN (group), SET LOCAL
 *    lock_timeout, SAVEPOINT and RELEASE travel with the next statement;
 *    the semantics stay those of sending each at once (a failed step
 *    rolls back alone, a deferred command that fails is the error of the
 *    call that carried it, a failed transaction is never committed).
 *  - The one-statement acknowledgement (ack_sql_insert_ack): the plan and
 *    provider check is part of the insert. A group of acknowledgements
 *    sent at once through the real cavra-ack, mixing good ones, unknown
 *    plans and providers the plan does not route: each answered as alone
 *    (201 / 404 / 400 naming the providers), exactly the good ones stored
 *    with their current state and one evidence event each, with the
 *    caller's principal.
 *
 * Needs CAVRA_DATABASE_URL pointing at a migrated database (scripts/test.sh
 * sets it). Run: ctest -R integration.write_path, or the binary alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ack.pb-c.h"
#include "cv_rpc.h"
#include "cv_test_api.h"

#define WP_NOT_FOUND "recovery escalation plan not found"
#define WP_THREADS   24

static cv_test_stack wp_stack;
static cv_rpc_client *wp_cli;

/* ---- cv_db directly ---------------------------------------------------- */

static const cv_db_statement wp_statements[] = {
    {"wp_put", "INSERT INTO wp_probe (v) VALUES ($1::int)"},
    {"wp_count", "SELECT count(*) FROM wp_probe"},
    {"wp_lock_timeout", "SELECT current_setting('lock_timeout')"},
};

static long
wp_count(cv_db *db)
{
    cv_error err;
    PGresult *res = cv_db_exec(db, "wp_count", 0, NULL, &err);
    long n;

    if (res == NULL)
        fail_msg("wp_count: %s (%s)", err.msg, err.cause);
    n = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return n;
}

static void
wp_put(cv_db *db, const char *v, int expect)
{
    const char *p[1] = {v};
    cv_error err;

    cv_error_clear(&err);
    assert_int_equal(cv_db_run(db, "wp_put", 1, p, &err), expect);
}

static void
wp_db_open(cv_db *db)
{
    cv_error err;
    PGresult *r;

    cv_error_clear(&err);
    assert_int_equal(cv_db_init(db, cv_test_database_url(), NULL, 0, &err), 0);
    assert_int_equal(cv_db_ensure(db, &err), 0);
    /* A temporary table lives in this session only: make it, then
     * prepare its statements on the same session. */
    r = PQexec(db->conn, "CREATE TEMP TABLE IF NOT EXISTS wp_probe"
                         " (v int PRIMARY KEY)");
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    for (size_t i = 0; i < sizeof(wp_statements) / sizeof(wp_statements[0]);
         i++) {
        r = PQprepare(db->conn, wp_statements[i].name, wp_statements[i].sql, 0,
                      NULL);
        assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
        PQclear(r);
    }
}

static void
test_write_path_deferred_control(void **state)
{
    cv_db db;
    cv_error err;
    PGresult *res;

    (void)state;
    wp_db_open(&db);
    cv_error_clear(&err);

    /* The group's BEGIN, lock timeout and first SAVEPOINT wait for the
     * first statement: the server has seen no transaction yet. */
    assert_int_equal(cv_db_tx_begin_deferred(&db, CV_TX_WRITE, &err), 0);
    assert_true(db.in_tx);
    assert_int_equal(cv_db_set_lock_timeout(&db, 50, &err), 0);
    assert_int_equal(cv_db_savepoint(&db, &err), 0);
    assert_int_equal(PQtransactionStatus(db.conn), PQTRANS_IDLE);
    wp_put(&db, "1", 0);
    assert_int_equal(PQtransactionStatus(db.conn), PQTRANS_INTRANS);
    res = cv_db_exec(&db, "wp_lock_timeout", 0, NULL, &err);
    assert_non_null(res);
    assert_string_equal(PQgetvalue(res, 0, 0), "50ms");
    PQclear(res);

    /* The next call's RELEASE + SAVEPOINT go with its statement; a failed
     * step rolls back alone and the transaction goes on. */
    assert_int_equal(cv_db_savepoint_next(&db, &err), 0);
    wp_put(&db, "2", 0);
    wp_put(&db, "1", CV_ALREADY_EXISTS);
    assert_int_equal(cv_db_savepoint_rollback(&db, &err), 0);
    assert_int_equal(db.savepoints, 0);
    assert_int_equal(wp_count(&db), 1); /* 2 is gone, 1 stays */

    /* A savepoint nothing ran under: rolling back to it costs nothing and
     * undoes nothing; releasing it neither. */
    assert_int_equal(cv_db_savepoint(&db, &err), 0);
    assert_int_equal(cv_db_savepoint_rollback(&db, &err), 0);
    assert_int_equal(cv_db_savepoint(&db, &err), 0);
    assert_int_equal(cv_db_savepoint_release(&db, &err), 0);
    assert_int_equal(db.savepoints, 0);
    assert_int_equal(wp_count(&db), 1);

    /* Nested, with a deferred RELEASE carried by the COMMIT. */
    assert_int_equal(cv_db_savepoint(&db, &err), 0);
    wp_put(&db, "3", 0);
    assert_int_equal(cv_db_savepoint(&db, &err), 0);
    wp_put(&db, "4", 0);
    assert_int_equal(cv_db_savepoint_release(&db, &err), 0);
    assert_int_equal(cv_db_savepoint_next(&db, &err), 0);
    wp_put(&db, "5", 0);
    assert_int_equal(cv_db_savepoint_release(&db, &err), 0);
    assert_int_equal(cv_db_tx_commit(&db, &err), 0);
    assert_false(db.in_tx);
    assert_int_equal(db.n_pending, 0);
    assert_int_equal(wp_count(&db), 4);
    /* SET LOCAL ended with the transaction. */
    res = cv_db_exec(&db, "wp_lock_timeout", 0, NULL, &err);
    assert_non_null(res);
    assert_string_equal(PQgetvalue(res, 0, 0), "0");
    PQclear(res);

    /* A deferred command that fails (the transaction is already failed)
     * is the error of the statement that carried it, and the COMMIT is
     * refused: nothing of it is stored. */
    assert_int_equal(cv_db_tx_begin(&db, CV_TX_WRITE, &err), 0);
    wp_put(&db, "6", 0);
    wp_put(&db, "6", CV_ALREADY_EXISTS);
    assert_int_equal(cv_db_savepoint(&db, &err), 0);
    cv_error_clear(&err);
    {
        const char *p[1] = {"7"};

        assert_int_not_equal(cv_db_run(&db, "wp_put", 1, p, &err), 0);
        assert_non_null(strstr(err.cause, "SAVEPOINT"));
    }
    assert_int_not_equal(cv_db_tx_commit(&db, &err), 0);
    assert_false(db.in_tx);
    assert_int_equal(wp_count(&db), 4);

    /* A deferred BEGIN nothing ran under: the rollback sends nothing and
     * leaves the connection idle; a COMMIT of it commits nothing. */
    assert_int_equal(cv_db_tx_begin_deferred(&db, CV_TX_WRITE, &err), 0);
    assert_int_equal(cv_db_savepoint(&db, &err), 0);
    cv_db_tx_rollback(&db);
    assert_false(db.in_tx);
    assert_int_equal(db.n_pending, 0);
    assert_int_equal(PQtransactionStatus(db.conn), PQTRANS_IDLE);
    assert_int_equal(cv_db_tx_begin_deferred(&db, CV_TX_WRITE, &err), 0);
    assert_int_equal(cv_db_set_lock_timeout(&db, 50, &err), 0);
    assert_int_equal(cv_db_savepoint(&db, &err), 0);
    assert_int_equal(cv_db_tx_commit(&db, &err), 0);
    assert_int_equal(PQtransactionStatus(db.conn), PQTRANS_IDLE);

    /* Pipelines carry the deferred commands too. */
    assert_int_equal(cv_db_tx_begin_deferred(&db, CV_TX_WRITE, &err), 0);
    assert_int_equal(cv_db_savepoint(&db, &err), 0);
    {
        const char *p8[1] = {"8"}, *p9[1] = {"9"};
        const cv_db_call calls[2] = {{"wp_put", 1, p8}, {"wp_put", 1, p9}};
        PGresult *rs[2];

        assert_int_equal(cv_db_exec_pipeline(&db, 2, calls, rs, &err), 0);
        PQclear(rs[0]);
        PQclear(rs[1]);
    }
    assert_int_equal(cv_db_savepoint_rollback(&db, &err), 0);
    assert_int_equal(wp_count(&db), 4);
    assert_int_equal(cv_db_tx_commit(&db, &err), 0);
    cv_db_fini(&db);
}

/* ---- the acknowledgement service --------------------------------------- */

static int
wp_setup(void **state)
{
    (void)state;
    return cv_test_stack_start_clients(&wp_stack, CV_STACK_ACK, &wp_cli, NULL,
                                       NULL);
}

static int
wp_teardown(void **state)
{
    (void)state;
    return cv_test_stack_stop_clients(&wp_stack, &wp_cli, NULL, NULL);
}

enum wp_kind { WP_GOOD, WP_UNKNOWN_PLAN, WP_UNROUTED };

typedef struct wp_worker {
    pthread_barrier_t *barrier;
    enum wp_kind kind;
    const char *plan_id;
    const char *provider;
    int rv;
    char msg[CV_ERROR_MSG_MAX];
    char id[128];
} wp_worker;

static void *
wp_worker_main(void *arg)
{
    wp_worker *w = arg;
    Cv__AcknowledgeReply *rep = NULL;
    cv_error err;

    cv_error_clear(&err);
    pthread_barrier_wait(w->barrier);
    w->rv =
        cv_test_ack_call(wp_cli, w->plan_id, w->provider, "group-tester",
                         CV__ACK_STATE__ACK_STATE_ACCEPTED, NULL, &rep, &err);
    snprintf(w->msg, sizeof(w->msg), "%s", err.msg);
    if (w->rv == 0) {
        snprintf(w->id, sizeof(w->id), "%s",
                 rep->acknowledgement->acknowledgement_id);
        protobuf_c_message_free_unpacked(&rep->base, NULL);
    }
    return NULL;
}

static void
test_write_path_mixed_group(void **state)
{
    static const char *const provs[] = {"slack", "jira", "pagerduty"};
    Cv__EscalationRoute routes[3];
    Cv__RecordPlanReply *plan;
    wp_worker w[WP_THREADS];
    pthread_t th[WP_THREADS];
    pthread_barrier_t barrier;
    cv_test_counts before;
    const char *pid;
    char unrouted[WP_THREADS][16], missing[64];
    long good = 0;

    (void)state;
    for (size_t i = 0; i < 3; i++) {
        cv__escalation_route__init(&routes[i]);
        routes[i].provider = (char *)provs[i];
    }
    plan = cv_test_record_plan_rpc(wp_cli, "write-path-test", routes, 3, NULL);
    pid = plan->plan->plan_id;
    /* An id of the right shape that no plan has. */
    snprintf(missing, sizeof(missing), "gordackrecoveryesc-%016x", 0u);
    cv_test_counts_snapshot(&before);

    pthread_barrier_init(&barrier, NULL, WP_THREADS);
    for (int i = 0; i < WP_THREADS; i++) {
        memset(&w[i], 0, sizeof(w[i]));
        w[i].barrier = &barrier;
        w[i].kind = (enum wp_kind)(i % 3);
        switch (w[i].kind) {
        case WP_GOOD:
            w[i].plan_id = pid;
            w[i].provider = provs[i % 2]; /* several acks per pair */
            good++;
            break;
        case WP_UNKNOWN_PLAN:
            w[i].plan_id = missing;
            w[i].provider = "slack";
            break;
        case WP_UNROUTED:
            snprintf(unrouted[i], sizeof(unrouted[i]), "teams%d", i);
            w[i].plan_id = pid;
            w[i].provider = unrouted[i];
            break;
        }
        assert_int_equal(pthread_create(&th[i], NULL, wp_worker_main, &w[i]),
                         0);
    }
    for (int i = 0; i < WP_THREADS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&barrier);

    for (int i = 0; i < WP_THREADS; i++) {
        char want[CV_ERROR_MSG_MAX];

        switch (w[i].kind) {
        case WP_GOOD:
            if (w[i].rv != 0)
                fail_msg("ack %d failed with %d: %s", i, w[i].rv, w[i].msg);
            cv_test_assert_id(w[i].id, "gordackrecoveryescack-");
            /* Its row, and exactly one evidence event with the same
             * principal as the plan's (the same caller). */
            assert_int_equal(
                cv_test_count("SELECT count(*) FROM acknowledgements WHERE "
                              "acknowledgement_id = $1",
                              w[i].id),
                1);
            assert_int_equal(
                cv_test_count(
                    "SELECT count(*) FROM evidence_events e WHERE"
                    " e.kind = 'recovery_escalation_ack' AND e.record_id = $1"
                    " AND e.actor = 'group-tester'"
                    " AND e.record->>'acknowledgement_id' = $1"
                    " AND e.principal IS NOT DISTINCT FROM (SELECT p.principal"
                    " FROM evidence_events p WHERE p.kind ="
                    " 'recovery_escalation_plan' AND p.record_id ="
                    " e.plan_id)",
                    w[i].id),
                1);
            break;
        case WP_UNKNOWN_PLAN:
            assert_int_equal(w[i].rv, CV_NOT_FOUND);
            assert_string_equal(w[i].msg, WP_NOT_FOUND);
            break;
        case WP_UNROUTED:
            assert_int_equal(w[i].rv, CV_INVALID_ARGUMENT);
            snprintf(want, sizeof(want),
                     "provider %s is not routed by recovery escalation plan "
                     "%s; the plan's providers are jira, pagerduty, slack",
                     w[i].provider, pid);
            assert_string_equal(w[i].msg, want);
            break;
        }
    }
    /* Exactly the good ones were stored, nothing for the others. */
    assert_int_equal(
        cv_test_count(
            "SELECT count(*) FROM acknowledgements WHERE plan_id = $1", pid),
        good);
    assert_int_equal(cv_test_count("SELECT count(*) FROM evidence_events WHERE"
                                   " kind = 'recovery_escalation_ack' AND"
                                   " plan_id = $1",
                                   pid),
                     good);
    assert_int_equal(
        cv_test_count("SELECT count(*) FROM acknowledgements WHERE plan_id = $1"
                      " AND provider NOT IN ('slack', 'jira')",
                      pid),
        0);
    assert_int_equal(cv_test_count("SELECT count(*) FROM acknowledgements"
                                   " WHERE plan_id = $1",
                                   missing),
                     0);
    /* The current state of each pair is its latest acknowledgement. */
    assert_int_equal(
        cv_test_count("SELECT count(*) FROM ack_current c WHERE c.plan_id = $1"
                      " AND c.seq = (SELECT max(a.seq) FROM acknowledgements a"
                      " WHERE a.plan_id = c.plan_id"
                      " AND a.provider = c.provider)",
                      pid),
        2);
    assert_int_equal(
        cv_test_count("SELECT count(*) FROM ack_current WHERE plan_id = $1",
                      pid),
        2);
    {
        cv_test_counts after;

        cv_test_counts_snapshot(&after);
        assert_int_equal(after.acks - before.acks, good);
        assert_int_equal(after.events - before.events, good);
        assert_int_equal(after.current - before.current, 2);
        assert_int_equal(after.plans, before.plans);
    }
    protobuf_c_message_free_unpacked(&plan->base, NULL);
}

/* A plan id nobody has is 404 and stores nothing; once a plan exists,
 * acknowledging it works at once (nothing negative is remembered). */
static void
test_write_path_unknown_then_created(void **state)
{
    static const char *const provs[] = {"slack"};
    Cv__EscalationRoute route;
    Cv__RecordPlanReply *plan;
    Cv__AcknowledgeReply *rep = NULL;
    cv_test_counts before;
    cv_error err;
    char long_id[300];

    (void)state;
    cv_test_counts_snapshot(&before);
    cv_error_clear(&err);
    assert_int_equal(cv_test_ack_call(wp_cli, "gordackrecoveryesc-nothere",
                                      "slack", "bob", 0, NULL, &rep, &err),
                     CV_NOT_FOUND);
    assert_string_equal(err.msg, WP_NOT_FOUND);
    /* Too long to exist: 404 without a query. */
    memset(long_id, 'a', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    assert_int_equal(
        cv_test_ack_call(wp_cli, long_id, "slack", "bob", 0, NULL, &rep, &err),
        CV_NOT_FOUND);
    cv_test_counts_unchanged(&before, "acks of unknown plans");

    cv__escalation_route__init(&route);
    route.provider = (char *)provs[0];
    plan = cv_test_record_plan_rpc(wp_cli, "write-path-test", &route, 1, NULL);
    cv_test_ack_rpc(wp_cli, plan->plan->plan_id, "slack", "bob", 0, NULL, &rep);
    assert_non_null(rep);
    assert_string_equal(rep->acknowledgement->plan_id, plan->plan->plan_id);
    protobuf_c_message_free_unpacked(&rep->base, NULL);
    protobuf_c_message_free_unpacked(&plan->base, NULL);
}

int
main(void)
{
    const struct CMUnitTest db_tests[] = {
        cmocka_unit_test(test_write_path_deferred_control),
    };
    const struct CMUnitTest ack_tests[] = {
        cmocka_unit_test(test_write_path_mixed_group),
        cmocka_unit_test(test_write_path_unknown_then_created),
    };
    int failed =
        cmocka_run_group_tests_name("write_path.db", db_tests, NULL, NULL);

    failed += cmocka_run_group_tests_name("write_path.ack", ack_tests, wp_setup,
                                          wp_teardown);
    return failed;
}
