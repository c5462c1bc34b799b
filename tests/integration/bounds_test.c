/*
 * bounds_test.c -- integration: the reporting service's bounded resources
 * (issue 10 item 4), with the real cavra-report against the real
 * PostgreSQL, called over NNG with signed envelopes (no gateway).
 *
 *  - Every connection of cv_db has a statement_timeout
 *    (CAVRA_DB_STATEMENT_TIMEOUT_MS); a statement over it answers
 *    DEADLINE_EXCEEDED, a SET LOCAL lifts it for one transaction only.
 *  - report.VerifyEvidence is for auditor and admin only.
 *  - One verification at a time per process: while one runs (held on a
 *    table lock the test takes on evidence_events, so it stays running
 *    as long as the test wants), a second gets RESOURCE_EXHAUSTED at once
 *    and the service still answers on its other worker, with
 *    CAVRA_DB_WORKERS=1 (the verify worker is one more than that).
 *  - Verify's own statement timeout fires (DEADLINE_EXCEEDED), and a walk
 *    that outlives its caller's deadline is cancelled by the service.
 *  - Schedule caps: the enabled schedule beyond CAVRA_SCHEDULES_MAX or
 *    CAVRA_SCHEDULES_PER_ACTOR_MAX is refused and nothing is stored; a
 *    schedule switched off or on appends one evidence event with its
 *    actor.
 *
 * Each test starts its own cavra-report with the environment it needs.
 * The database is shared with other tests: the test scopes its
 * assertions with a random tag and disables what it enabled.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_db.h"
#include "cv_rpc.h"
#include "cv_test_api.h"
#include "evidence.pb-c.h"
#include "report.pb-c.h"

static char bt_tag[20];

/* An actor the test harness (a delegating principal) acts for. */
typedef struct bt_actor {
    Cv__Actor actor;
    char *roles[1];
    char name[64];
} bt_actor;

static void
bt_actor_init(bt_actor *a, const char *name, const char *role)
{
    cv__actor__init(&a->actor);
    snprintf(a->name, sizeof(a->name), "%s", name);
    a->roles[0] = (char *)role;
    a->actor.actor = a->name;
    a->actor.roles = a->roles;
    a->actor.n_roles = 1;
}

/* Runs sql (params text) on the owner's connection; returns the first
 * column of the first row as a long, or -1. */
static long
bt_scalar(const char *sql, int n, const char *const *params)
{
    PGconn *c = PQconnectdb(cv_test_database_url());
    PGresult *res;
    long v = -1;

    if (PQstatus(c) == CONNECTION_OK) {
        res = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
            v = strtol(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
    }
    PQfinish(c);
    return v;
}

/* cv_rpc_call with an actor; returns the code, copies the message. */
static int
bt_call(cv_rpc_client *cli, const char *method, const ProtobufCMessage *req,
        const ProtobufCMessageDescriptor *desc, const Cv__Actor *actor,
        int timeout_ms, ProtobufCMessage **reply, char *msg, size_t msglen)
{
    cv_rpc_call_opts opts = {.actor = actor, .timeout_ms = timeout_ms};
    cv_error err;
    int code;

    *reply = NULL;
    cv_error_clear(&err);
    code = cv_rpc_call(cli, method, req, desc, reply, &opts, &err);
    snprintf(msg, msglen, "%s", err.msg);
    return code;
}

static int
bt_verify(cv_rpc_client *cli, const Cv__Actor *actor, int timeout_ms, char *msg,
          size_t msglen)
{
    Cv__VerifyEvidenceRequest req = CV__VERIFY_EVIDENCE_REQUEST__INIT;
    ProtobufCMessage *rep = NULL;
    int code = bt_call(cli, "report.VerifyEvidence", &req.base,
                       &cv__evidence_verification__descriptor, actor,
                       timeout_ms, &rep, msg, msglen);

    if (rep != NULL) {
        if (code == 0 && !((Cv__EvidenceVerification *)rep)->valid)
            code = -2; /* a broken chain is not what these tests expect */
        protobuf_c_message_free_unpacked(rep, NULL);
    }
    return code;
}

/* Starts cavra-report alone and opens a client to it. */
static void
bt_start(cv_test_stack *st, cv_rpc_client **cli)
{
    cv_error err;

    memset(st, 0, sizeof(*st));
    assert_int_equal(cv_test_stack_start(st, CV_STACK_REPORT), 0);
    cv_error_clear(&err);
    if (cv_rpc_client_open(st->report_url, cli, &err) != 0)
        fail_msg("cannot open an RPC client: %s", err.msg);
}

static void
bt_stop(cv_test_stack *st, cv_rpc_client *cli)
{
    cv_rpc_client_close(cli);
    assert_int_equal(cv_test_stack_stop(st), 0);
}

/* ---- statement timeout, through cv_db itself --------------------------- */

static const cv_db_statement bt_statements[] = {
    {"bt_sleep", "SELECT pg_sleep($1::float8)"},
    {"bt_timeout", "SELECT current_setting('statement_timeout')"},
};

static void
test_bounds_statement_timeout(void **state)
{
    const char *quick[1] = {"0.05"}, *slow[1] = {"1.5"};
    cv_db db;
    cv_error err;
    PGresult *res;

    (void)state;
    setenv(CV_DB_STATEMENT_TIMEOUT_ENV, "300", 1);
    cv_error_clear(&err);
    assert_int_equal(
        cv_db_init(&db, getenv("CAVRA_DATABASE_URL"), bt_statements, 2, &err),
        0);
    CV_TEST_PASS(cv_db_ensure(&db, &err), err);
    unsetenv(CV_DB_STATEMENT_TIMEOUT_ENV);
    res = cv_db_exec(&db, "bt_timeout", 0, NULL, &err);
    assert_non_null(res);
    assert_string_equal(PQgetvalue(res, 0, 0), "300ms");
    PQclear(res);
    /* Under the bound: fine. Over it: 57014, DEADLINE_EXCEEDED. */
    CV_TEST_PASS(cv_db_run(&db, "bt_sleep", 1, quick, &err), err);
    assert_int_equal(cv_db_run(&db, "bt_sleep", 1, slow, &err),
                     CV_DEADLINE_EXCEEDED);
    assert_string_equal(err.msg, "the store did not answer in time");
    assert_non_null(strstr(err.cause, "57014"));
    /* A SET LOCAL lifts it for one transaction, then it is back. */
    cv_error_clear(&err);
    CV_TEST_PASS(cv_db_tx_begin(&db, CV_TX_READ, &err), err);
    CV_TEST_PASS(cv_db_set_statement_timeout(&db, 5000, true, &err), err);
    CV_TEST_PASS(cv_db_run(&db, "bt_sleep", 1, (const char *[]){"0.5"}, &err),
                 err);
    CV_TEST_PASS(cv_db_tx_commit(&db, &err), err);
    res = cv_db_exec(&db, "bt_timeout", 0, NULL, &err);
    assert_non_null(res);
    assert_string_equal(PQgetvalue(res, 0, 0), "300ms");
    PQclear(res);
    cv_db_fini(&db);

    /* Without the variable: the default, 30 s. */
    cv_error_clear(&err);
    assert_int_equal(
        cv_db_init(&db, getenv("CAVRA_DATABASE_URL"), bt_statements, 2, &err),
        0);
    CV_TEST_PASS(cv_db_ensure(&db, &err), err);
    res = cv_db_exec(&db, "bt_timeout", 0, NULL, &err);
    assert_non_null(res);
    assert_string_equal(PQgetvalue(res, 0, 0), "30s");
    PQclear(res);
    cv_db_fini(&db);
}

/* ---- verify: roles and one at a time ----------------------------------- */

typedef struct bt_verify_job {
    cv_rpc_client *cli;
    const Cv__Actor *actor;
    int code;
    long ms;
    char msg[CV_ERROR_MSG_MAX];
} bt_verify_job;

static void *
bt_verify_main(void *arg)
{
    bt_verify_job *j = arg;
    long t0 = cv_test_now_ms();

    j->code = bt_verify(j->cli, j->actor, 60000, j->msg, sizeof(j->msg));
    j->ms = cv_test_now_ms() - t0;
    return NULL;
}

/* Waits until a session waits for a lock on evidence_events (the verify
 * walk held by the test's lock); returns 0, or -1 after 20 s. */
static int
bt_wait_blocked(void)
{
    for (int i = 0; i < 400; i++) {
        if (bt_scalar("SELECT count(*) FROM pg_locks WHERE relation ="
                      " 'evidence_events'::regclass AND NOT granted",
                      0, NULL) > 0)
            return 0;
        cv_test_sleep_ms(50);
    }
    return -1;
}

/* The owner's connection holding ACCESS EXCLUSIVE on evidence_events in
 * an open transaction: every reader of the stream waits for it. */
static PGconn *
bt_lock_evidence(void)
{
    PGconn *c = PQconnectdb(cv_test_database_url());
    PGresult *res;

    assert_int_equal(PQstatus(c), CONNECTION_OK);
    res = PQexec(c, "BEGIN");
    PQclear(res);
    /* The stream, and the counters the dashboard reads (migration 0014). */
    res = PQexec(c, "LOCK TABLE evidence_events, read_counts"
                    " IN ACCESS EXCLUSIVE MODE");
    assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);
    return c;
}

static void
bt_unlock_evidence(PGconn *c)
{
    PGresult *res = PQexec(c, "ROLLBACK");

    PQclear(res);
    PQfinish(c);
}

static void
test_bounds_verify_roles_and_one_at_a_time(void **state)
{
    cv_test_stack st;
    cv_rpc_client *cli = NULL;
    bt_actor exec, owner, auditor, admin;
    bt_verify_job job;
    pthread_t th;
    PGconn *lock;
    char msg[CV_ERROR_MSG_MAX];
    long t0;
    int code;

    (void)state;
    /* One worker for everything else; the sequencer off so that only the
     * verify walk waits on the test's lock. */
    setenv("CAVRA_DB_WORKERS", "1", 1);
    setenv("CAVRA_SEQUENCER", "off", 1);
    bt_start(&st, &cli);
    unsetenv("CAVRA_DB_WORKERS");
    unsetenv("CAVRA_SEQUENCER");
    bt_actor_init(&exec, "bt-exec", "executive");
    bt_actor_init(&owner, "bt-owner", "platform_owner");
    bt_actor_init(&auditor, "bt-auditor", "auditor");
    bt_actor_init(&admin, "bt-admin", "admin");

    /* Roles: auditor and admin only. */
    assert_int_equal(bt_verify(cli, &exec.actor, 30000, msg, sizeof(msg)),
                     CV_PERMISSION_DENIED);
    assert_string_equal(
        msg, "report.VerifyEvidence needs the role auditor or admin");
    assert_int_equal(bt_verify(cli, &owner.actor, 30000, msg, sizeof(msg)),
                     CV_PERMISSION_DENIED);
    code = bt_verify(cli, &auditor.actor, 60000, msg, sizeof(msg));
    if (code != 0)
        fail_msg("auditor verify: code %d: %s", code, msg);
    code = bt_verify(cli, &admin.actor, 60000, msg, sizeof(msg));
    if (code != 0)
        fail_msg("admin verify: code %d: %s", code, msg);

    /* One at a time: the first walk waits on the lock... */
    lock = bt_lock_evidence();
    memset(&job, 0, sizeof(job));
    job.cli = cli;
    job.actor = &auditor.actor;
    assert_int_equal(pthread_create(&th, NULL, bt_verify_main, &job), 0);
    if (bt_wait_blocked() != 0) {
        bt_unlock_evidence(lock);
        pthread_join(th, NULL);
        fail_msg("the first verification never reached the store");
    }
    /* ...a second is refused at once, by a free worker... */
    t0 = cv_test_now_ms();
    code = bt_verify(cli, &admin.actor, 10000, msg, sizeof(msg));
    if (code != CV_RESOURCE_EXHAUSTED) {
        bt_unlock_evidence(lock);
        pthread_join(th, NULL);
        fail_msg("second verify: code %d (want 8): %s", code, msg);
    }
    assert_non_null(strstr(msg, "already running"));
    assert_true(cv_test_now_ms() - t0 < 5000);
    /* ...and the service still answers while the walk holds a worker
     * (CAVRA_DB_WORKERS=1: without the extra worker this would wait). */
    t0 = cv_test_now_ms();
    cv_test_assert_health(cli, "report");
    assert_true(cv_test_now_ms() - t0 < 5000);
    cv_test_sleep_ms(300);
    bt_unlock_evidence(lock);
    pthread_join(th, NULL);
    if (job.code != 0)
        fail_msg("the held verification: code %d: %s", job.code, job.msg);
    assert_true(job.ms >= 300);
    /* Free again once it finished. */
    code = bt_verify(cli, &auditor.actor, 60000, msg, sizeof(msg));
    if (code != 0)
        fail_msg("verify after the first finished: code %d: %s", code, msg);

    /* A walk outliving its caller's deadline is cancelled by the
     * service: the statement stops waiting although the lock is still
     * held, and the slot is free for the next caller. */
    lock = bt_lock_evidence();
    code = bt_verify(cli, &auditor.actor, 1500, msg, sizeof(msg));
    assert_int_equal(code, CV_DEADLINE_EXCEEDED);
    {
        long waiting = 1;

        for (int i = 0; i < 60 && waiting > 0; i++) {
            cv_test_sleep_ms(50);
            waiting = bt_scalar("SELECT count(*) FROM pg_locks WHERE relation"
                                " = 'evidence_events'::regclass AND NOT"
                                " granted",
                                0, NULL);
        }
        bt_unlock_evidence(lock);
        assert_int_equal(waiting, 0);
    }
    code = bt_verify(cli, &auditor.actor, 60000, msg, sizeof(msg));
    if (code != 0)
        fail_msg("verify after a cancelled one: code %d: %s", code, msg);
    bt_stop(&st, cli);
}

/* Verify's own statement timeout, and the services' default one. */
static void
test_bounds_service_timeouts(void **state)
{
    cv_test_stack st;
    cv_rpc_client *cli = NULL;
    bt_actor auditor;
    Cv__DashboardRequest dreq = CV__DASHBOARD_REQUEST__INIT;
    ProtobufCMessage *rep = NULL;
    PGconn *lock;
    char msg[CV_ERROR_MSG_MAX];
    long t0, ms;
    int code;

    (void)state;
    setenv("CAVRA_SEQUENCER", "off", 1);
    setenv(CV_DB_STATEMENT_TIMEOUT_ENV, "400", 1);
    setenv("CAVRA_VERIFY_STATEMENT_TIMEOUT_MS", "700", 1);
    bt_start(&st, &cli);
    unsetenv("CAVRA_SEQUENCER");
    unsetenv(CV_DB_STATEMENT_TIMEOUT_ENV);
    unsetenv("CAVRA_VERIFY_STATEMENT_TIMEOUT_MS");
    bt_actor_init(&auditor, "bt-auditor", "auditor");

    lock = bt_lock_evidence();
    /* The dashboard reads the locked counters: it waits, then the bound
     * fires. */
    t0 = cv_test_now_ms();
    code =
        bt_call(cli, "report.Dashboard", &dreq.base, &cv__dashboard__descriptor,
                &auditor.actor, 20000, &rep, msg, sizeof(msg));
    ms = cv_test_now_ms() - t0;
    if (rep != NULL)
        protobuf_c_message_free_unpacked(rep, NULL);
    /* The verify walk has its own (longer) bound. */
    t0 = cv_test_now_ms();
    {
        int vcode = bt_verify(cli, &auditor.actor, 20000, msg, sizeof(msg));
        long vms = cv_test_now_ms() - t0;

        bt_unlock_evidence(lock);
        assert_int_equal(code, CV_DEADLINE_EXCEEDED);
        assert_true(ms >= 350 && ms < 10000);
        assert_int_equal(vcode, CV_DEADLINE_EXCEEDED);
        assert_string_equal(msg, "the store did not answer in time");
        assert_true(vms >= 650 && vms < 10000);
    }
    /* The flag was released on the failure: the next one runs. */
    code = bt_verify(cli, &auditor.actor, 60000, msg, sizeof(msg));
    if (code != 0)
        fail_msg("verify after a timeout: code %d: %s", code, msg);
    bt_stop(&st, cli);
}

/* ---- schedule caps and change evidence --------------------------------- */

static int
bt_schedule(cv_rpc_client *cli, const Cv__Actor *actor, const char *id,
            int enabled, char *msg, size_t msglen)
{
    Cv__ScheduleRunRequest req = CV__SCHEDULE_RUN_REQUEST__INIT;
    Cv__ScheduleSpec spec = CV__SCHEDULE_SPEC__INIT;
    ProtobufCMessage *rep = NULL;
    int code;

    req.schedule = &spec;
    spec.schedule_id = (char *)id;
    spec.has_interval_minutes = 1;
    spec.interval_minutes = 1440; /* a run a day at most while it lives */
    spec.has_enabled = 1;
    spec.enabled = enabled;
    code = bt_call(cli, "report.ScheduleRun", &req.base,
                   &cv__schedule_run_reply__descriptor, actor, 30000, &rep, msg,
                   msglen);
    if (rep != NULL)
        protobuf_c_message_free_unpacked(rep, NULL);
    return code;
}

static long
bt_schedule_rows(const char *id)
{
    const char *p[1] = {id};

    return bt_scalar("SELECT count(*) FROM report_schedules WHERE"
                     " schedule_id = $1",
                     1, p) +
           bt_scalar("SELECT count(*) FROM report_runs WHERE"
                     " schedule_id = $1",
                     1, p);
}

static long
bt_change_events(const char *id, const char *actor, const char *enabled)
{
    const char *p[3] = {id, actor, enabled};

    return bt_scalar("SELECT count(*) FROM evidence_events WHERE kind ="
                     " 'executive_report_schedule_change'"
                     " AND record->>'schedule_id' = $1 AND actor = $2"
                     " AND record->>'changed_by' = $2"
                     " AND record->>'enabled' = $3",
                     3, p);
}

static void
test_bounds_schedule_caps(void **state)
{
    cv_test_stack st;
    cv_rpc_client *cli = NULL;
    bt_actor a, b;
    char ids[5][64], nameb[64], namea[64], cap[24], msg[CV_ERROR_MSG_MAX];
    long enabled_now, changes;
    int code;

    (void)state;
    for (int i = 0; i < 5; i++)
        snprintf(ids[i], sizeof(ids[i]), "bt-%s-%d", bt_tag, i);
    snprintf(namea, sizeof(namea), "bt-a-%s", bt_tag);
    snprintf(nameb, sizeof(nameb), "bt-b-%s", bt_tag);
    bt_actor_init(&a, namea, "executive");
    bt_actor_init(&b, nameb, "executive");
    /* Room for exactly three more enabled schedules in the whole store,
     * two per actor. */
    enabled_now = bt_scalar(
        "SELECT count(*) FROM report_schedules WHERE enabled", 0, NULL);
    assert_true(enabled_now >= 0);
    snprintf(cap, sizeof(cap), "%ld", enabled_now + 3);
    setenv("CAVRA_SCHEDULES_MAX", cap, 1);
    setenv("CAVRA_SCHEDULES_PER_ACTOR_MAX", "2", 1);
    bt_start(&st, &cli);
    unsetenv("CAVRA_SCHEDULES_MAX");
    unsetenv("CAVRA_SCHEDULES_PER_ACTOR_MAX");

    assert_int_equal(bt_schedule(cli, &a.actor, ids[0], 1, msg, sizeof(msg)),
                     0);
    assert_int_equal(bt_schedule(cli, &a.actor, ids[1], 1, msg, sizeof(msg)),
                     0);
    /* The third of actor a: refused by the per-actor rule, nothing kept. */
    code = bt_schedule(cli, &a.actor, ids[2], 1, msg, sizeof(msg));
    assert_int_equal(code, CV_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(msg, "CAVRA_SCHEDULES_PER_ACTOR_MAX"));
    assert_non_null(strstr(msg, "at most 2"));
    assert_int_equal(bt_schedule_rows(ids[2]), 0);
    /* Calling an enabled schedule again is no new schedule: allowed. */
    assert_int_equal(bt_schedule(cli, &a.actor, ids[0], 1, msg, sizeof(msg)),
                     0);
    /* Actor b takes the last place in the store; its second is refused
     * by the total rule. */
    assert_int_equal(bt_schedule(cli, &b.actor, ids[3], 1, msg, sizeof(msg)),
                     0);
    code = bt_schedule(cli, &b.actor, ids[4], 1, msg, sizeof(msg));
    assert_int_equal(code, CV_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(msg, "CAVRA_SCHEDULES_MAX"));
    assert_int_equal(bt_schedule_rows(ids[4]), 0);

    /* Switching off is evidence with its actor, once per change. */
    assert_int_equal(bt_change_events(ids[0], namea, "false"), 0);
    assert_int_equal(bt_schedule(cli, &a.actor, ids[0], 0, msg, sizeof(msg)),
                     0);
    assert_int_equal(bt_change_events(ids[0], namea, "false"), 1);
    assert_int_equal(bt_schedule(cli, &a.actor, ids[0], 0, msg, sizeof(msg)),
                     0);
    assert_int_equal(bt_change_events(ids[0], namea, "false"), 1);
    /* That freed a place: b's second now fits. */
    assert_int_equal(bt_schedule(cli, &b.actor, ids[4], 1, msg, sizeof(msg)),
                     0);
    /* Switching back on counts against the caps again: refused, and no
     * change event. */
    code = bt_schedule(cli, &a.actor, ids[0], 1, msg, sizeof(msg));
    assert_int_equal(code, CV_RESOURCE_EXHAUSTED);
    assert_int_equal(bt_change_events(ids[0], namea, "true"), 0);
    /* Switched on by someone else once there is room: their event. */
    assert_int_equal(bt_schedule(cli, &b.actor, ids[4], 0, msg, sizeof(msg)),
                     0);
    assert_int_equal(bt_change_events(ids[4], nameb, "false"), 1);
    assert_int_equal(bt_schedule(cli, &b.actor, ids[0], 1, msg, sizeof(msg)),
                     0);
    assert_int_equal(bt_change_events(ids[0], nameb, "true"), 1);
    {
        const char *p[1] = {bt_tag};

        changes =
            bt_scalar("SELECT count(*) FROM evidence_events WHERE kind ="
                      " 'executive_report_schedule_change'"
                      " AND record->>'schedule_id' LIKE 'bt-' || $1 || '-%'",
                      1, p);
    }
    assert_int_equal(changes, 3);

    /* Leave nothing enabled behind. */
    for (int i = 0; i < 5; i++)
        if (bt_schedule_rows(ids[i]) > 0)
            assert_int_equal(
                bt_schedule(cli, &b.actor, ids[i], 0, msg, sizeof(msg)), 0);
    bt_stop(&st, cli);
}

/* Concurrent callers cannot pass the cap together (migration 0011's
 * guard row serialises them). */
typedef struct bt_sched_job {
    cv_rpc_client *cli;
    const Cv__Actor *actor;
    char id[64];
    int code;
    char msg[CV_ERROR_MSG_MAX];
} bt_sched_job;

static void *
bt_sched_main(void *arg)
{
    bt_sched_job *j = arg;

    j->code = bt_schedule(j->cli, j->actor, j->id, 1, j->msg, sizeof(j->msg));
    return NULL;
}

static void
test_bounds_schedule_cap_concurrent(void **state)
{
    enum { N = 8 };
    cv_test_stack st;
    cv_rpc_client *cli = NULL;
    bt_actor a;
    bt_sched_job jobs[N];
    pthread_t th[N];
    char name[64];
    int ok = 0, refused = 0;

    (void)state;
    snprintf(name, sizeof(name), "bt-c-%s", bt_tag);
    bt_actor_init(&a, name, "executive");
    setenv("CAVRA_SCHEDULES_PER_ACTOR_MAX", "3", 1);
    bt_start(&st, &cli);
    unsetenv("CAVRA_SCHEDULES_PER_ACTOR_MAX");
    for (int i = 0; i < N; i++) {
        memset(&jobs[i], 0, sizeof(jobs[i]));
        jobs[i].cli = cli;
        jobs[i].actor = &a.actor;
        snprintf(jobs[i].id, sizeof(jobs[i].id), "bt-c-%s-%d", bt_tag, i);
        assert_int_equal(pthread_create(&th[i], NULL, bt_sched_main, &jobs[i]),
                         0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        if (jobs[i].code == 0)
            ok++;
        else if (jobs[i].code == CV_RESOURCE_EXHAUSTED)
            refused++;
        else
            print_error("racer %d: code %d: %s\n", i, jobs[i].code,
                        jobs[i].msg);
    }
    {
        const char *p[1] = {name};

        assert_int_equal(bt_scalar("SELECT count(*) FROM report_schedules"
                                   " WHERE enabled AND generated_by = $1",
                                   1, p),
                         3);
    }
    assert_int_equal(ok, 3);
    assert_int_equal(refused, N - 3);
    for (int i = 0; i < N; i++) {
        char msg[CV_ERROR_MSG_MAX];

        if (jobs[i].code == 0)
            assert_int_equal(
                bt_schedule(cli, &a.actor, jobs[i].id, 0, msg, sizeof(msg)), 0);
    }
    bt_stop(&st, cli);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bounds_statement_timeout),
        cmocka_unit_test(test_bounds_verify_roles_and_one_at_a_time),
        cmocka_unit_test(test_bounds_service_timeouts),
        cmocka_unit_test(test_bounds_schedule_caps),
        cmocka_unit_test(test_bounds_schedule_cap_concurrent),
    };
    char rid[32];

    cv_rpc_new_request_id(rid, sizeof(rid));
    snprintf(bt_tag, sizeof(bt_tag), "%.10s", rid + 4);
    return cmocka_run_group_tests_name("bounds", tests, NULL, NULL);
}
