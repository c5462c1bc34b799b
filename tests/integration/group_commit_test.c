/*
 * group_commit_test.c -- application-level group commit of the RPC server
 * (lib/cv_rpc_server.c, cv_rpc_group_run), against the real PostgreSQL.
 *
 * The RPC server runs in this process with ONE database worker and the
 * real acknowledgement handlers, wrapped by a handler that, after the real
 * one stored its record:
 *  - "bad-*" actors: fails (the call's SAVEPOINT must undo its record, its
 *    evidence event and its Idempotency-Key, and only its own);
 *  - "conf-*" actors: answers a conflict (CV_ABORTED) the first time (the
 *    call is rolled back to its savepoint and run again alone: exactly one
 *    record, never two).
 * Many client threads call at once, so the single worker takes groups;
 * every answer and every row is then checked, and the database must have
 * seen fewer commits than calls (groups did form).
 *
 * Needs CAVRA_DATABASE_URL pointing at a migrated database (scripts/test.sh
 * sets it). Run: ctest -R integration.group_commit.
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
#include <unistd.h>

#include "ack.pb-c.h"
#include "cv_rpc.h"
#include "cv_test_api.h"
#include "cv_test_ack.h"

#define GC_THREADS 48
#define GC_ROUNDS  3

static cv_test_inproc gc_srv;
#define gc_cli (gc_srv.cli)
static char gc_plan[64];
static char gc_tag[32]; /* per process: actors and keys never collide */

static pthread_mutex_t gc_mtx = PTHREAD_MUTEX_INITIALIZER;
static char gc_conflicted[GC_THREADS * GC_ROUNDS][64];
static int gc_n_conflicted;

/* True the first time name is seen (the conflict happens once). */
static bool
gc_first_time(const char *name)
{
    bool first = true;

    pthread_mutex_lock(&gc_mtx);
    for (int i = 0; i < gc_n_conflicted; i++)
        if (strcmp(gc_conflicted[i], name) == 0)
            first = false;
    if (first && gc_n_conflicted < GC_THREADS * GC_ROUNDS)
        snprintf(gc_conflicted[gc_n_conflicted++], sizeof(gc_conflicted[0]),
                 "%s", name);
    pthread_mutex_unlock(&gc_mtx);
    return first;
}

static int
gc_inject_ack(cv_rpc_ctx *call, const ProtobufCMessage *request,
              ProtobufCMessage **reply, cv_error *err)
{
    const Cv__AcknowledgeRequest *req = (const Cv__AcknowledgeRequest *)request;
    const char *by = req->acknowledged_by != NULL ? req->acknowledged_by : "";
    int rv = gc_srv.real(call, request, reply, err);

    if (rv != 0)
        return rv;
    if (strncmp(by, "bad-", 4) == 0 ||
        (strncmp(by, "conf-", 5) == 0 && gc_first_time(by))) {
        protobuf_c_message_free_unpacked(*reply, NULL);
        *reply = NULL;
        return by[0] == 'b'
                   ? cv_error_set(err, CV_INTERNAL, "injected failure")
                   : cv_error_set(err, CV_ABORTED, "injected conflict");
    }
    return 0;
}

static int
gc_setup(void **state)
{
    (void)state;
    setenv(CV_RPC_GROUP_MAX_ENV, "32", 1);
    snprintf(gc_tag, sizeof(gc_tag), "%ld-%ld", (long)getpid(),
             cv_test_now_ms() % 100000);
    /* 64 in flight on one worker: concurrent calls queue, groups form. */
    return cv_test_ack_inproc_start(&gc_srv, "gc", 64, gc_inject_ack);
}

static int
gc_teardown(void **state)
{
    (void)state;
    cv_test_inproc_stop(&gc_srv);
    return 0;
}

/* What one call was and how it ended. */
typedef struct gc_call {
    char by[64];
    char key[80];
    int rv;
    bool replayed;
} gc_call;

static gc_call gc_calls[GC_THREADS * GC_ROUNDS];
static pthread_barrier_t gc_barrier;

/* Call kinds by index: good, bad, conflict-once, and pairs of calls that
 * share one key and payload (one stores, the other replays). */
static void
gc_name(int i, gc_call *c)
{
    static const char *const kinds[4] = {"good", "bad", "conf", "dup"};
    int kind = i % 4;

    if (kind == 3)
        snprintf(c->by, sizeof(c->by), "dup-%s-%d", gc_tag, i / 8);
    else
        snprintf(c->by, sizeof(c->by), "%s-%s-%d", kinds[kind], gc_tag, i);
    snprintf(c->key, sizeof(c->key), "gc-%s", c->by);
}

static void *
gc_thread(void *arg)
{
    int t = (int)(intptr_t)arg;

    pthread_barrier_wait(&gc_barrier);
    for (int r = 0; r < GC_ROUNDS; r++) {
        gc_call *c = &gc_calls[r * GC_THREADS + t];
        cv_rpc_call_opts opts = {.idempotency_key = c->key,
                                 .replayed = &c->replayed};
        Cv__AcknowledgeReply *rep = NULL;
        cv_error err;

        cv_error_clear(&err);
        c->rv = cv_test_ack_call(gc_cli, gc_plan, "webhook", c->by, 0, &opts,
                                 &rep, &err);
        if (rep != NULL)
            protobuf_c_message_free_unpacked(&rep->base, NULL);
    }
    return NULL;
}

/* Per kind of call ($1 = "<kind>-<tag>-"): rows, distinct actors with a
 * row, evidence events and keys. Few queries: each check connects anew. */
/* Who acknowledged lives on the evidence event only (records are stored
 * once): rows are matched to their events by acknowledgement_id. */
#define GC_ACK_ACTOR                                                           \
    " FROM acknowledgements a JOIN evidence_events e"                          \
    " ON e.record_id = a.acknowledgement_id"
#define GC_ROWS_OF                                                             \
    "SELECT count(*)" GC_ACK_ACTOR " WHERE starts_with(e.actor, $1)"
#define GC_ACTORS_OF                                                           \
    "SELECT count(DISTINCT e.actor)" GC_ACK_ACTOR                              \
    " WHERE starts_with(e.actor, $1)"
#define GC_EVENTS_OF                                                           \
    "SELECT count(*) FROM evidence_events"                                     \
    " WHERE kind = 'recovery_escalation_ack' AND starts_with(actor, $1)"
#define GC_KEYS_OF                                                             \
    "SELECT count(*) FROM idempotency_keys"                                    \
    " WHERE starts_with(idempotency_key, 'gc-' || $1)"
/* Keys one transaction stored share its now() (created_at), whatever
 * savepoint they were written in: distinct values count the transactions
 * that stored this run's calls. */
#define GC_TX_OF_RUN                                                           \
    "SELECT count(DISTINCT created_at) FROM idempotency_keys"                  \
    " WHERE idempotency_key LIKE 'gc-%-' || $1 || '-%'"
#define GC_ROWS_OF_RUN                                                         \
    "SELECT count(*)" GC_ACK_ACTOR " WHERE e.actor LIKE '%-' || $1 || '-%'"

static void
test_group_commit_failures_stay_alone(void **state)
{
    Cv__EscalationRoute route = CV__ESCALATION_ROUTE__INIT;
    Cv__RecordPlanReply *plan;
    pthread_t th[GC_THREADS];
    long txs, rows;
    int n = GC_THREADS * GC_ROUNDS, dup_replays = 0, dup_ok = 0;

    (void)state;
    route.provider = "webhook";
    plan = cv_test_record_plan_rpc(gc_cli, "gc-test", &route, 1, NULL);
    snprintf(gc_plan, sizeof(gc_plan), "%s", plan->plan->plan_id);
    protobuf_c_message_free_unpacked(&plan->base, NULL);
    for (int i = 0; i < n; i++)
        gc_name(i, &gc_calls[i]);

    pthread_barrier_init(&gc_barrier, NULL, GC_THREADS);
    for (int t = 0; t < GC_THREADS; t++)
        assert_int_equal(
            pthread_create(&th[t], NULL, gc_thread, (void *)(intptr_t)t), 0);
    for (int t = 0; t < GC_THREADS; t++)
        pthread_join(th[t], NULL);
    pthread_barrier_destroy(&gc_barrier);

    for (int i = 0; i < n; i++) {
        const gc_call *c = &gc_calls[i];

        switch (c->by[0]) {
        case 'g': /* stored once, with its evidence and its key */
        case 'c': /* a conflict in its group, then alone: still once */
            assert_int_equal(c->rv, 0);
            assert_false(c->replayed);
            break;
        case 'b': /* failed alone */
            assert_int_equal(c->rv, CV_INTERNAL);
            break;
        default: /* dup: one of each pair stores, the other replays */
            assert_int_equal(c->rv, 0);
            dup_ok++;
            dup_replays += c->replayed;
            break;
        }
    }
    {
        /* kind, rows = actors = events = keys expected */
        static const struct {
            const char *kind;
            long want;
        } kinds[4] = {
            {"good", GC_THREADS * GC_ROUNDS / 4},
            {"conf", GC_THREADS * GC_ROUNDS / 4},
            {"dup", GC_THREADS * GC_ROUNDS / 8},
            {"bad", 0}, /* nothing of a failed call stayed */
        };
        char prefix[64];

        for (int k = 0; k < 4; k++) {
            snprintf(prefix, sizeof(prefix), "%s-%s-", kinds[k].kind, gc_tag);
            assert_int_equal(cv_test_count(GC_ROWS_OF, prefix), kinds[k].want);
            assert_int_equal(cv_test_count(GC_ACTORS_OF, prefix),
                             kinds[k].want);
            assert_int_equal(cv_test_count(GC_EVENTS_OF, prefix),
                             kinds[k].want);
            assert_int_equal(cv_test_count(GC_KEYS_OF, prefix), kinds[k].want);
        }
    }
    assert_int_equal(dup_ok, n / 4);
    assert_int_equal(dup_replays, n / 8);
    /* 36 good + 36 conflict-once + 18 dup pairs stored one row each; the
     * grouped ones shared transactions (the conflicted ones committed
     * alone after their group), so fewer transactions than rows. */
    rows = cv_test_count(GC_ROWS_OF_RUN, gc_tag);
    txs = cv_test_count(GC_TX_OF_RUN, gc_tag);
    print_message("group_commit_test: %d calls, %ld rows in %ld transactions\n",
                  n, rows, txs);
    assert_int_equal(rows, n / 4 + n / 4 + n / 8);
    assert_true(txs < rows - n / 4);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_commit_failures_stay_alone),
    };

    return cmocka_run_group_tests(tests, gc_setup, gc_teardown);
}
