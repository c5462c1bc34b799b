/*
 * replica_read_test.c -- read-your-writes with the reporting service
 * reading from a streaming standby (CAVRA_READ_DATABASE_URL, issue 12).
 *
 * RR_THREADS clients each loop RR_ROUNDS times: record a plan (ack), and
 * right after the answer read it back from the reporting service: the
 * evidence stream filtered by the plan, and the plan's trace; every
 * RR_ACK_EVERY rounds also acknowledge it and expect the acknowledgement
 * in the trace at once. Every read must see the write answered before it.
 * The reads must really run on the standby: the reporting service logs no
 * read sent to the primary (CV-READ-REPLICA), and the standby's commit
 * count grows by at least one per read. It runs twice: with the
 * cluster's synchronous_commit (off in make test) and with it on.
 *
 * Without CAVRA_READ_DATABASE_URL (a hot standby of CAVRA_DATABASE_URL;
 * scripts/test.sh block 3b makes one) the test is skipped.
 * Run: ctest -R integration.replica_read, or the binary alone.
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

#include "ack.pb-c.h"
#include "cv_rpc.h"
#include "cv_test_api.h"
#include "report.pb-c.h"

#define RR_THREADS   4
#define RR_ROUNDS    100
#define RR_ACK_EVERY 3
/* How long a read may wait for the standby before it runs on the primary:
 * long enough that none does on a loaded machine. */
#define RR_MAX_LAG_MS "10000"

static cv_test_stack rr_stack;
static cv_rpc_client *rr_ack, *rr_report;
static const char *rr_read_url;

typedef struct rr_worker {
    int id;
    int rounds; /* write-read rounds done */
    int reads;  /* reads checked */
    int misses; /* reads that did not see the write before them */
    int errors; /* failed calls */
    char first_miss[200];
} rr_worker;

/* The standby's committed transactions in database cavra (statistics are
 * flushed at most once a second, hence the caller's pause). */
static long
rr_standby_commits(void)
{
    PGconn *c = PQconnectdb(rr_read_url);
    long n = -1;

    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *r = PQexec(c, "SELECT xact_commit FROM pg_stat_database"
                                " WHERE datname = current_database()");

        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
            n = atol(PQgetvalue(r, 0, 0));
        PQclear(r);
    }
    PQfinish(c);
    return n;
}

/* Lines of the reporting service's log that say reads ran on the primary
 * (CV-READ-REPLICA, each counting one or more), or -1. */
static int
rr_fallback_lines(void)
{
    char path[400], line[2048];
    FILE *f;
    int n = 0;

    snprintf(path, sizeof(path), "%s/report.log", rr_stack.dir);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strstr(line, "CV-READ-REPLICA") != NULL) {
            fprintf(stderr, "replica_read: %s", line);
            n++;
        }
    fclose(f);
    return n;
}

/* Items of the plan's stream page (kind NULL: every kind), or -1. */
static int
rr_stream_items(const char *plan_id, const char *kind)
{
    Cv__ListEvidenceRequest req = CV__LIST_EVIDENCE_REQUEST__INIT;
    ProtobufCMessage *rep = NULL;
    cv_error err;
    int n;

    req.plan_id = (char *)plan_id;
    req.kind = (char *)kind;
    cv_error_clear(&err);
    if (cv_rpc_call(rr_report, "report.ListEvidence", &req.base,
                    &cv__evidence_page__descriptor, &rep, NULL, &err) != 0) {
        fprintf(stderr, "replica_read: stream of %s: %s\n", plan_id, err.msg);
        return -1;
    }
    n = (int)((Cv__EvidencePage *)rep)->n_items;
    protobuf_c_message_free_unpacked(rep, NULL);
    return n;
}

/* Items of the plan's trace (0: plan not found), or -1. */
static int
rr_trace_items(const char *plan_id)
{
    Cv__TraceRequest req = CV__TRACE_REQUEST__INIT;
    ProtobufCMessage *rep = NULL;
    cv_error err;
    int n, rv;

    req.plan_id = (char *)plan_id;
    cv_error_clear(&err);
    rv = cv_rpc_call(rr_report, "report.Trace", &req.base,
                     &cv__trace__descriptor, &rep, NULL, &err);
    if (rv == CV_NOT_FOUND)
        return 0; /* the plan itself is not there yet: a miss */
    if (rv != 0) {
        fprintf(stderr, "replica_read: trace of %s: %s\n", plan_id, err.msg);
        return -1;
    }
    n = (int)((Cv__Trace *)rep)->n_items;
    protobuf_c_message_free_unpacked(rep, NULL);
    return n;
}

/* Counts a read: got < 0 is an error, got < want a miss. */
static void
rr_check(rr_worker *w, const char *what, const char *plan, int got, int want)
{
    w->reads++;
    if (got < 0) {
        w->errors++;
    } else if (got < want) {
        if (w->misses++ == 0)
            snprintf(w->first_miss, sizeof(w->first_miss),
                     "%s of %s: %d items, want %d (round %d)", what, plan, got,
                     want, w->rounds);
    }
}

static void *
rr_worker_main(void *arg)
{
    rr_worker *w = arg;
    char provider[64];

    snprintf(provider, sizeof(provider), "replica-read-%d-%ld", w->id,
             cv_test_now_ms() % 1000000);
    for (w->rounds = 0; w->rounds < RR_ROUNDS; w->rounds++) {
        Cv__EscalationRoute route = CV__ESCALATION_ROUTE__INIT;
        Cv__RecordPlanReply *rep = NULL;
        char plan[96];
        cv_error err;

        route.provider = provider;
        route.has_severity = 1;
        route.severity = CV__SEVERITY__SEVERITY_WARNING;
        if (cv_test_record_plan_call(rr_ack, "replica-read-test", &route, 1,
                                     NULL, &rep, &err) != 0) {
            fprintf(stderr, "replica_read: plan: %s\n", err.msg);
            w->errors++;
            continue;
        }
        snprintf(plan, sizeof(plan), "%s", rep->plan->plan_id);
        protobuf_c_message_free_unpacked(&rep->base, NULL);
        rr_check(w, "stream", plan,
                 rr_stream_items(plan, "recovery_escalation_plan"), 1);
        rr_check(w, "trace", plan, rr_trace_items(plan), 1);
        if (w->rounds % RR_ACK_EVERY == 0) {
            if (cv_test_ack_call(rr_ack, plan, provider, "replica-read",
                                 CV__ACK_STATE__ACK_STATE_ACKNOWLEDGED, NULL,
                                 NULL, &err) != 0) {
                fprintf(stderr, "replica_read: ack: %s\n", err.msg);
                w->errors++;
                continue;
            }
            rr_check(w, "trace after ack", plan, rr_trace_items(plan), 2);
        }
    }
    return NULL;
}

static void
test_replica_read_your_writes(void **state)
{
    pthread_t th[RR_THREADS];
    rr_worker ws[RR_THREADS];
    long before, after, t0;
    int reads = 0, misses = 0, errors = 0;

    fprintf(stderr, "replica_read: services with PGOPTIONS %s\n",
            *state != NULL ? (const char *)*state : "(none)");
    if (rr_read_url == NULL) {
        fprintf(stderr, "replica_read: CAVRA_READ_DATABASE_URL not set, "
                        "skipped (scripts/test.sh block 3b runs it)\n");
        skip();
    }
    before = rr_standby_commits();
    assert_true(before >= 0);
    t0 = cv_test_now_ms();
    memset(ws, 0, sizeof(ws));
    for (int i = 0; i < RR_THREADS; i++) {
        ws[i].id = i;
        assert_int_equal(pthread_create(&th[i], NULL, rr_worker_main, &ws[i]),
                         0);
    }
    for (int i = 0; i < RR_THREADS; i++) {
        pthread_join(th[i], NULL);
        reads += ws[i].reads;
        misses += ws[i].misses;
        errors += ws[i].errors;
        if (ws[i].misses > 0)
            fprintf(stderr, "replica_read: first miss of client %d: %s\n", i,
                    ws[i].first_miss);
    }
    cv_test_sleep_ms(1500); /* the standby's statistics flush */
    after = rr_standby_commits();
    fprintf(stderr,
            "replica_read: %d reads right after their write in %ld ms, "
            "%d missed it, %d errors, %ld transactions on the standby\n",
            reads, cv_test_now_ms() - t0, misses, errors, after - before);
    assert_int_equal(errors, 0);
    assert_int_equal(misses, 0);
    /* Every read ran on the standby: none fell back to the primary (the
     * stack waits up to RR_MAX_LAG_MS for the standby). */
    assert_int_equal(rr_fallback_lines(), 0);
    /* Each read is one transaction on the standby when it ran there. */
    assert_true(after - before >= reads);
}

/* Starts the stack; *state is the services' PGOPTIONS (NULL: none). */
static int
rr_setup(void **state)
{
    cv_error err;
    const char *u = getenv("CAVRA_READ_DATABASE_URL");
    const char *opts = *state;

    rr_read_url = u != NULL && u[0] != '\0' ? u : NULL;
    if (rr_read_url == NULL)
        return 0;
    /* No thread of ours runs here: the stack's children inherit these. */
    setenv("CAVRA_READ_MAX_LAG_MS", RR_MAX_LAG_MS, 1);
    if (opts != NULL)
        setenv("PGOPTIONS", opts, 1);
    else
        unsetenv("PGOPTIONS");
    if (cv_test_stack_start(&rr_stack, CV_STACK_ACK | CV_STACK_REPORT) != 0)
        return -1;
    cv_error_clear(&err);
    if (cv_rpc_client_open(rr_stack.ack_url, &rr_ack, &err) != 0 ||
        cv_rpc_client_open(rr_stack.report_url, &rr_report, &err) != 0) {
        fprintf(stderr, "cannot open RPC clients: %s\n", err.msg);
        cv_test_stack_stop(&rr_stack);
        return -1;
    }
    return 0;
}

static int
rr_teardown(void **state)
{
    (void)state;
    if (rr_read_url == NULL)
        return 0;
    cv_rpc_client_close(rr_ack);
    cv_rpc_client_close(rr_report);
    return cv_test_stack_stop(&rr_stack);
}

int
main(void)
{
    /* Both ways the primary makes a commit visible: the cluster's own
     * setting (make test's runs with synchronous_commit off: visible once
     * in the WAL buffers), and durable commits (flushed first), as in
     * production. */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_replica_read_your_writes,
                                                 rr_setup, rr_teardown, NULL),
        cmocka_unit_test_prestate_setup_teardown(
            test_replica_read_your_writes, rr_setup, rr_teardown,
            (void *)"-c synchronous_commit=on"),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
