/*
 * lock_timeout_test.c -- the group commit's lock timeout (lib/cv_rpc_server.c
 * cv_rpc_group_run), through the real cavra-ack process and PostgreSQL.
 *
 * Inside a group each call runs under a SAVEPOINT with lock_timeout set to
 * CAVRA_RPC_GROUP_LOCK_TIMEOUT_MS: a call that waits on a row lock longer
 * fails with 55P03, which the server takes as a conflict (CV_ABORTED): it
 * rolls back to the call's savepoint, commits the rest of the group, and
 * then runs that call again alone (where it may wait as long as the lock
 * is held). Here:
 *
 *  1. cavra-ack runs with ONE database worker and debug logging. The test
 *     holds FOR UPDATE on plan A's row from a connection of its own (the
 *     owner), so an acknowledgement of A (its foreign key check takes FOR
 *     KEY SHARE on the plan) waits alone and keeps the worker busy.
 *  2. Meanwhile a second connection holds plan B's row, and acknowledgements
 *     of B (LT_LOCKED) and of a free plan C (LT_FREE) queue up.
 *  3. A is released: the queued calls run as one group. Those of C must be
 *     committed while B is still held (the lock wait was cut short), none
 *     of B's; B's reruns wait alone until B is released too.
 *
 * Then every call must have succeeded exactly once: rows, evidence events
 * and Idempotency-Keys per call, C's in one transaction and each of B's in
 * one of its own; and cavra-ack's log must show one RPC-GROUP-RERUN line
 * with SQLSTATE 55P03 per call of B.
 *
 * Needs CAVRA_DATABASE_URL (and CAVRA_TEST_OWNER_DATABASE_URL for the row
 * locks; scripts/test.sh sets both). Run: ctest -R integration.lock_timeout.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ack.pb-c.h"
#include "cv_rpc.h"
#include "cv_test_api.h"

#define LT_LOCKED  4  /* calls on plan B, which stays locked */
#define LT_FREE    12 /* calls on plan C, never locked */
#define LT_CALLS   (1 + LT_LOCKED + LT_FREE) /* call 0: the blocker on A */
#define LT_WAIT_MS 15000
/* Longer than the lock timeout many times over: a rerun that gave up
 * like the grouped call did would show within it. */
#define LT_HOLD_MS 400

enum { LT_A, LT_B, LT_C };

static cv_test_stack lt_stack;
static cv_rpc_client *lt_cli;
static char lt_tag[32]; /* per run: actors and keys never collide */
static char lt_plans[3][64];

/* The owner's connections holding plan rows (NULL when not held), and
 * one for the test's queries. */
static PGconn *lt_hold[2], *lt_db;

/* One call and how it ended (written by its thread only). */
typedef struct lt_call {
    int plan;     /* LT_A, LT_B or LT_C */
    char by[224]; /* sized for any prefix: -Wformat-truncation at -O2 */
    char key[240];
    int rv;
    bool replayed;
    pthread_t th;
    bool started;
} lt_call;

static lt_call lt_calls[LT_CALLS];
static atomic_int lt_sent;

/* ---- helpers ---------------------------------------------------------- */

static void *
lt_thread(void *arg)
{
    lt_call *c = arg;
    cv_rpc_call_opts opts = {.idempotency_key = c->key,
                             .replayed = &c->replayed,
                             /* The whole test, never a client resend. */
                             .timeout_ms = 2 * LT_WAIT_MS};
    cv_error err;

    atomic_fetch_add(&lt_sent, 1);
    c->rv = cv_test_ack_call(lt_cli, lt_plans[c->plan], "webhook", c->by, 0,
                             &opts, NULL, &err);
    if (c->rv != 0)
        fprintf(stderr, "lock_timeout_test: %s: code %d: %s\n", c->by, c->rv,
                err.msg);
    return NULL;
}

static void
lt_start(lt_call *c)
{
    assert_int_equal(pthread_create(&c->th, NULL, lt_thread, c), 0);
    c->started = true;
}

/* Holds FOR UPDATE on a plan's row in an open transaction of hold[i]. */
static void
lt_lock_plan(int i, const char *plan_id)
{
    lt_hold[i] = cv_test_db_connect();
    cv_test_db_exec(lt_hold[i], "BEGIN", NULL);
    cv_test_db_exec(lt_hold[i],
                    "SELECT plan_id FROM escalation_plans WHERE plan_id = $1 "
                    "FOR UPDATE",
                    plan_id);
}

static void
lt_release(int i)
{
    if (lt_hold[i] == NULL)
        return;
    PQclear(PQexec(lt_hold[i], "COMMIT"));
    PQfinish(lt_hold[i]);
    lt_hold[i] = NULL;
}

static long
lt_count(const char *sql, const char *param)
{
    return cv_test_db_count(lt_db, sql, param);
}

/* Backends of the cluster waiting for a lock right now. */
static long
lt_waiting(void)
{
    return lt_count("SELECT count(*) FROM pg_locks WHERE NOT granted", NULL);
}

#define LT_ACKS_OF_PLAN                                                        \
    "SELECT count(*) FROM acknowledgements WHERE plan_id = $1"
/* Who acknowledged lives on the evidence event (records stored once). */
#define LT_EVENTS_OF                                                           \
    "SELECT count(*) FROM evidence_events WHERE kind = "                       \
    "'recovery_escalation_ack' AND starts_with(actor, $1)"
#define LT_ACTORS_OF                                                           \
    "SELECT count(DISTINCT actor) FROM evidence_events WHERE kind = "          \
    "'recovery_escalation_ack' AND starts_with(actor, $1)"
#define LT_KEYS_OF                                                             \
    "SELECT count(*) FROM idempotency_keys WHERE starts_with("                 \
    "idempotency_key, 'lt-key-' || $1)"
/* Keys one transaction stored share its now(): distinct values count the
 * transactions that stored them. */
#define LT_TXS_OF                                                              \
    "SELECT count(DISTINCT created_at) FROM idempotency_keys WHERE "           \
    "starts_with(idempotency_key, 'lt-key-' || $1)"

/* Polls until sql (one parameter) counts want, LT_WAIT_MS at most, and
 * returns the last count. */
static long
lt_wait_count(const char *sql, const char *param, long want)
{
    long until = cv_test_now_ms() + LT_WAIT_MS, n;

    while ((n = lt_count(sql, param)) != want && cv_test_now_ms() < until)
        cv_test_sleep_ms(10);
    return n;
}

/* Polls until some backend waits for a lock; fails with why otherwise. */
static void
lt_wait_for_waiter(const char *why)
{
    long until = cv_test_now_ms() + LT_WAIT_MS;

    while (lt_waiting() < 1)
        if (cv_test_now_ms() > until)
            fail_msg("no call waits for a lock: %s", why);
        else
            cv_test_sleep_ms(10);
}

/* ---- setup ------------------------------------------------------------ */

static int
lt_setup(void **state)
{
    (void)state;
    if (cv_test_database_url() == NULL) {
        fprintf(stderr, "CAVRA_DATABASE_URL is not set\n");
        return -1;
    }
    /* Before the process starts: it inherits our environment. One worker,
     * so queued calls form one group; the documented default timeout. */
    setenv("CAVRA_DB_WORKERS", "1", 1);
    setenv("CAVRA_LOG_LEVEL", "debug", 1);
    setenv(CV_RPC_GROUP_MAX_ENV, "32", 1);
    setenv(CV_RPC_GROUP_LOCK_TIMEOUT_ENV, "50", 1);
    snprintf(lt_tag, sizeof(lt_tag), "%ld-%ld", (long)getpid(),
             cv_test_now_ms() % 100000);
    if (cv_test_stack_start(&lt_stack, CV_STACK_ACK) != 0)
        return -1;
    if (cv_test_client_open(lt_stack.ack_url, &lt_cli) != 0) {
        cv_test_stack_stop(&lt_stack);
        return -1;
    }
    return 0;
}

static int
lt_teardown(void **state)
{
    (void)state;
    /* After a failure: let the waiting calls finish, then stop. */
    lt_release(0);
    lt_release(1);
    PQfinish(lt_db);
    lt_db = NULL;
    for (int i = 0; i < LT_CALLS; i++)
        if (lt_calls[i].started) {
            pthread_join(lt_calls[i].th, NULL);
            lt_calls[i].started = false;
        }
    cv_rpc_client_close(lt_cli);
    return cv_test_stack_stop(&lt_stack);
}

/* ---- the test --------------------------------------------------------- */

static void
test_lock_timeout_reruns_alone(void **state)
{
    static const char *const names[3] = {"a", "b", "c"};
    char prefix[3][64];
    long n;

    (void)state;
    lt_db = cv_test_db_connect();
    for (int p = 0; p < 3; p++) {
        Cv__EscalationRoute route = CV__ESCALATION_ROUTE__INIT;
        Cv__RecordPlanReply *plan;

        route.provider = "webhook";
        plan = cv_test_record_plan_rpc(lt_cli, "lock-timeout-test", &route, 1,
                                       NULL);
        snprintf(lt_plans[p], sizeof(lt_plans[p]), "%s", plan->plan->plan_id);
        protobuf_c_message_free_unpacked(&plan->base, NULL);
        snprintf(prefix[p], sizeof(prefix[p]), "lt-%s-%s-", names[p], lt_tag);
    }
    for (int i = 0; i < LT_CALLS; i++) {
        lt_call *c = &lt_calls[i];

        c->plan = i == 0 ? LT_A : i <= LT_LOCKED ? LT_B : LT_C;
        snprintf(c->by, sizeof(c->by), "%s%d", prefix[c->plan], i);
        snprintf(c->key, sizeof(c->key), "lt-key-%s%d", prefix[c->plan], i);
        c->rv = -1;
        c->replayed = true;
    }
    assert_int_equal(lt_waiting(), 0);

    /* 1. The blocker: alone, it waits for A as long as A is held, and the
     *    only worker with it. */
    lt_lock_plan(0, lt_plans[LT_A]);
    lt_lock_plan(1, lt_plans[LT_B]);
    lt_start(&lt_calls[0]);
    lt_wait_for_waiter("the call on plan A should wait for its row");

    /* 2. B's and C's calls queue behind it, interleaved. */
    for (int i = 1; i < LT_CALLS; i++)
        lt_start(&lt_calls[i]);
    while (atomic_load(&lt_sent) < LT_CALLS)
        cv_test_sleep_ms(5);
    cv_test_sleep_ms(500); /* sent: let them arrive at the server */
    assert_int_equal(lt_count(LT_ACKS_OF_PLAN, lt_plans[LT_C]), 0);

    /* 3. A released: the blocker commits, the queue runs as one group.
     *    C's calls commit while B is still held: the lock wait of each of
     *    B's calls was cut to the lock timeout. */
    lt_release(0);
    n = lt_wait_count(LT_ACKS_OF_PLAN, lt_plans[LT_C], LT_FREE);
    if (n != LT_FREE)
        fail_msg("%ld of %d calls on the free plan committed while plan B "
                 "was locked (the group waited for the lock?)",
                 n, LT_FREE);
    assert_int_equal(lt_count(LT_ACKS_OF_PLAN, lt_plans[LT_A]), 1);
    assert_int_equal(lt_count(LT_ACKS_OF_PLAN, lt_plans[LT_B]), 0);
    /* B's calls now run alone, one by one, and wait without a timeout. */
    lt_wait_for_waiter("a call on plan B should wait alone after the group");
    cv_test_sleep_ms(LT_HOLD_MS);
    assert_int_equal(lt_count(LT_ACKS_OF_PLAN, lt_plans[LT_B]), 0);
    assert_true(lt_waiting() >= 1);

    /* 4. B released: every call ends, each exactly once. */
    lt_release(1);
    for (int i = 0; i < LT_CALLS; i++) {
        pthread_join(lt_calls[i].th, NULL);
        lt_calls[i].started = false;
    }
    for (int i = 0; i < LT_CALLS; i++) {
        if (lt_calls[i].rv != 0)
            fail_msg("%s failed with code %d", lt_calls[i].by, lt_calls[i].rv);
        assert_false(lt_calls[i].replayed);
    }
    {
        static const long want[3] = {1, LT_LOCKED, LT_FREE};

        for (int p = 0; p < 3; p++) {
            assert_int_equal(lt_count(LT_ACKS_OF_PLAN, lt_plans[p]), want[p]);
            assert_int_equal(lt_count(LT_EVENTS_OF, prefix[p]), want[p]);
            assert_int_equal(lt_count(LT_ACTORS_OF, prefix[p]), want[p]);
            assert_int_equal(lt_count(LT_KEYS_OF, prefix[p]), want[p]);
        }
    }
    /* C's calls shared the group's transaction; each of B's committed in
     * one of its own, after it. */
    assert_int_equal(lt_count(LT_TXS_OF, prefix[LT_C]), 1);
    assert_int_equal(lt_count(LT_TXS_OF, prefix[LT_B]), LT_LOCKED);
    assert_int_equal(
        lt_count("SELECT count(*) FROM idempotency_keys WHERE "
                 "starts_with(idempotency_key, 'lt-key-lt-b-' || $1) "
                 "AND created_at <= (SELECT max(created_at) FROM "
                 "idempotency_keys WHERE starts_with(idempotency_key, "
                 "'lt-key-lt-c-' || $1))",
                 lt_tag),
        0);
    /* The server says so: one rerun per call of B, for the lock timeout
     * (SQLSTATE 55P03), and none for any other call. */
    assert_int_equal(
        cv_test_stack_log_count(&lt_stack, "ack", "RPC-GROUP-RERUN", false),
        LT_LOCKED);
    assert_int_equal(
        cv_test_stack_log_count(&lt_stack, "ack", "SQLSTATE 55P03", false),
        LT_LOCKED);
    assert_int_equal(cv_test_stack_log_count(&lt_stack, "ack",
                                             "method=ack.Acknowledge", true),
                     LT_LOCKED);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lock_timeout_reruns_alone),
    };

    return cmocka_run_group_tests(tests, lt_setup, lt_teardown);
}
