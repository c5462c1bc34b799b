/*
 * report_rpc_test.c -- integration tests of the reporting service: the
 * real cavra-report (with cavra-ack and cavra-retry to make the records it
 * reports on) against the real PostgreSQL, called over NNG with the RPC
 * client (no gateway).
 *
 * Needs CAVRA_DATABASE_URL pointing at a migrated database (scripts/test.sh
 * sets it). The group setup starts the three services with a 50 ms
 * scheduler tick; one test starts a second cavra-report replica on its own
 * ipc:// socket. The database is shared with other tests, so every
 * assertion is scoped to what this test made: fresh schedule ids,
 * providers with a random prefix, and before/after deltas of counts.
 *
 * The scheduler tests wait for the next UTC minute boundary (up to about
 * a minute). Every schedule they enable is disabled again at the end, so
 * later tests do not inherit a run every minute.
 *
 * Run: ctest -R integration.report_rpc, or the binary alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ack.pb-c.h"
#include "cv_rpc.h"
#include "cv_test_api.h"
#include "cv_time.h"
#include "report.pb-c.h"
#include "retry.pb-c.h"

extern char **environ;

#define IT_RACERS  16
#define IT_TICK_MS "50"

static cv_test_stack it_stack;
static cv_rpc_client *it_ack_cli, *it_retry_cli, *it_report_cli;
static char it_tag[20]; /* random per run: schedule ids, providers */
/* The second replica of the replicas test; the teardown stops it when a
 * failed assertion left it running. */
static pid_t it_replica_pid = -1;
static cv_rpc_client *it_replica_cli;
/* The every-minute schedule the scheduler test enables; the teardown
 * disables it again when a failed assertion skipped that. */
static char it_sched_on[80];

/* ---- helpers ---------------------------------------------------------- */

/* A name unique to this run: "<prefix>-<tag>-<suffix>". */
static void
it_name(char *out, size_t outlen, const char *prefix, const char *suffix)
{
    snprintf(out, outlen, "%s-%s-%s", prefix, it_tag, suffix);
}

/*
 * cv_rpc_call that also reports the envelope's `existing` flag and copies
 * the error text into msg. Returns the code; on success *reply is the
 * unpacked reply (free it). Safe from any thread: no cmocka calls.
 */
static int
it_call(cv_rpc_client *cli, const char *method, const ProtobufCMessage *req,
        const ProtobufCMessageDescriptor *reply_desc, const Cv__Actor *actor,
        ProtobufCMessage **reply, int *existing, char *msg, size_t msglen)
{
    bool was = false;
    cv_rpc_call_opts opts = {
        .actor = actor, .timeout_ms = 30000, .existing = &was};
    cv_error err;
    int code;

    cv_error_clear(&err);
    code = cv_rpc_call(cli, method, req, reply_desc, reply, &opts, &err);
    snprintf(msg, msglen, "%s", err.msg);
    if (existing != NULL)
        *existing = code == CV_OK && was;
    return code;
}

/* Schedule-run request: interval 0 / enabled -1 / slo 0 mean "not
 * given". */
typedef struct it_sched_req {
    Cv__ScheduleRunRequest req;
    Cv__ScheduleSpec spec;
} it_sched_req;

static void
it_sched_req_init(it_sched_req *t, const char *schedule_id, int64_t interval,
                  int enabled, int64_t slo)
{
    cv__schedule_run_request__init(&t->req);
    cv__schedule_spec__init(&t->spec);
    t->req.schedule = &t->spec;
    t->spec.schedule_id = (char *)schedule_id;
    if (interval > 0) {
        t->spec.has_interval_minutes = 1;
        t->spec.interval_minutes = interval;
    }
    if (enabled >= 0) {
        t->spec.has_enabled = 1;
        t->spec.enabled = enabled;
    }
    if (slo > 0) {
        t->req.has_recovery_slo_minutes = 1;
        t->req.recovery_slo_minutes = slo;
    }
}

/* Runs report.ScheduleRun and fails the test on error. */
static Cv__ScheduleRunReply *
it_schedule_run(const char *schedule_id, int64_t interval, int enabled,
                int64_t slo, int *existing)
{
    it_sched_req t;
    ProtobufCMessage *rep = NULL;
    char msg[CV_ERROR_MSG_MAX];
    int rv;

    it_sched_req_init(&t, schedule_id, interval, enabled, slo);
    rv = it_call(it_report_cli, "report.ScheduleRun", &t.req.base,
                 &cv__schedule_run_reply__descriptor, NULL, &rep, existing, msg,
                 sizeof(msg));
    if (rv != 0)
        fail_msg("report.ScheduleRun %s: code %d: %s", schedule_id, rv, msg);
    assert_non_null(((Cv__ScheduleRunReply *)rep)->run);
    return (Cv__ScheduleRunReply *)rep;
}

/* Records a plan; routes are given as a table. Returns the plan id
 * (caller frees). */
typedef struct it_route {
    const char *provider;
    int severity; /* Cv__Severity, 0 = default */
    const char *category;
    const char *closure_state;
    int64_t failure_count;
    int64_t age_minutes;
    int slo_breached;
} it_route;

static char *
it_record_plan(const it_route *routes, size_t n)
{
    Cv__EscalationRoute r[8];
    Cv__RecordPlanReply *rep;
    char *id;

    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++) {
        cv__escalation_route__init(&r[i]);
        r[i].provider = (char *)routes[i].provider;
        if (routes[i].severity != 0) {
            r[i].has_severity = 1;
            r[i].severity = routes[i].severity;
        }
        r[i].category = (char *)routes[i].category;
        r[i].closure_state = (char *)routes[i].closure_state;
        r[i].has_failure_count = 1;
        r[i].failure_count = routes[i].failure_count;
        r[i].has_age_minutes = 1;
        r[i].age_minutes = routes[i].age_minutes;
        r[i].has_slo_breached = 1;
        r[i].slo_breached = routes[i].slo_breached;
    }
    rep = cv_test_record_plan_rpc(it_ack_cli, "report-integration-test", r, n,
                                  NULL);
    id = strdup(rep->plan->plan_id);
    protobuf_c_message_free_unpacked(&rep->base, NULL);
    return id;
}

static void
it_delivery(const char *plan_id, const char *provider, int success,
            int64_t status)
{
    Cv__RecordDeliveryRequest req = CV__RECORD_DELIVERY_REQUEST__INIT;
    ProtobufCMessage *rep = NULL;
    cv_error err;

    req.plan_id = (char *)plan_id;
    req.provider = (char *)provider;
    req.has_success = 1;
    req.success = success;
    req.has_status_code = 1;
    req.status_code = status;
    cv_error_clear(&err);
    CV_TEST_PASS(cv_rpc_call(it_retry_cli, "retry.RecordDelivery", &req.base,
                             &cv__record_delivery_reply__descriptor, &rep, NULL,
                             &err),
                 err);
    protobuf_c_message_free_unpacked(rep, NULL);
}

/* Plans retries for one plan with immediate retries allowed; returns the
 * plan's retryable_count. */
static int64_t
it_retry_plan(const char *plan_id)
{
    Cv__RetryPlanRequest req = CV__RETRY_PLAN_REQUEST__INIT;
    Cv__RetryPolicy pol = CV__RETRY_POLICY__INIT;
    ProtobufCMessage *rep = NULL;
    cv_error err;
    int64_t n;

    pol.has_allow_immediate_retry = 1;
    pol.allow_immediate_retry = 1;
    req.plan_id = (char *)plan_id;
    req.retry_policy = &pol;
    cv_error_clear(&err);
    CV_TEST_PASS(cv_rpc_call(it_retry_cli, "retry.PlanRetries", &req.base,
                             &cv__retry_plan_reply__descriptor, &rep, NULL,
                             &err),
                 err);
    n = ((Cv__RetryPlanReply *)rep)->plan->retryable_count;
    protobuf_c_message_free_unpacked(rep, NULL);
    return n;
}

/* Expects report.ScheduleRun to fail with code and msg, storing nothing. */
static void
it_expect_error(const ProtobufCMessage *req, int code, const char *msg)
{
    cv_test_rpc_expect_error(it_report_cli, "report.ScheduleRun", req,
                             &cv__schedule_run_reply__descriptor, code, msg);
}

/* The provider row of p in a report, or NULL. */
static const Cv__ProviderSummary *
it_provider(const Cv__ExecutiveReport *r, const char *p)
{
    for (size_t i = 0; i < r->n_provider_summary; i++)
        if (strcmp(r->provider_summary[i]->provider, p) == 0)
            return r->provider_summary[i];
    return NULL;
}

/* ---- a second replica of cavra-report ---------------------------------- */

/* Starts cavra-report on url with our environment (which carries the
 * scheduler tick) but its own CAVRA_REPORT_URL; output to log. */
static pid_t
it_spawn_report(const char *url, const char *log)
{
    posix_spawn_file_actions_t fa;
    char *argv[2] = {CV_TEST_BUILD_DIR "/services/report/cavra-report", NULL};
    char **env;
    char url_var[480], principals_var[320];
    size_t n = 0, k = 0;
    pid_t pid = -1;

    while (environ[n] != NULL)
        n++;
    if ((env = calloc(n + 3, sizeof(char *))) == NULL)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "CAVRA_REPORT_URL=", 17) != 0 &&
            strncmp(environ[i], "CAVRA_PRINCIPALS_FILE=", 22) != 0)
            env[k++] = environ[i];
    snprintf(url_var, sizeof(url_var), "CAVRA_REPORT_URL=%s", url);
    env[k++] = url_var;
    /* The replica trusts the same callers as the stack's services. */
    snprintf(principals_var, sizeof(principals_var), "CAVRA_PRINCIPALS_FILE=%s",
             cv_test_key_path("principals"));
    env[k++] = principals_var;
    env[k] = NULL;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, log,
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
    if (posix_spawn(&pid, argv[0], &fa, NULL, argv, env) != 0)
        pid = -1;
    posix_spawn_file_actions_destroy(&fa);
    free(env);
    return pid;
}

/* SIGTERM, then the exit status (0 expected), or -1 after 10 s. */
static int
it_stop_process(pid_t pid)
{
    long deadline = cv_test_now_ms() + 10000;
    int status = 0;
    pid_t r;

    kill(pid, SIGTERM);
    while ((r = waitpid(pid, &status, WNOHANG)) == 0 &&
           cv_test_now_ms() < deadline)
        cv_test_sleep_ms(10);
    if (r != pid) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Waits until cli's service answers report.Health with its database. */
static int
it_wait_ready(cv_rpc_client *cli)
{
    long deadline = cv_test_now_ms() + 20000;

    while (cv_test_now_ms() < deadline) {
        Cv__HealthRequest hreq = CV__HEALTH_REQUEST__INIT;
        ProtobufCMessage *rep = NULL;
        cv_rpc_call_opts opts = {.timeout_ms = 1000};
        cv_error err;
        int ok = 0;

        cv_error_clear(&err);
        if (cv_rpc_call(cli, "report.Health", &hreq.base,
                        &cv__health_reply__descriptor, &rep, &opts,
                        &err) == 0) {
            ok = ((Cv__HealthReply *)rep)->database_ok;
            protobuf_c_message_free_unpacked(rep, NULL);
        }
        if (ok)
            return 0;
        cv_test_sleep_ms(50);
    }
    return -1;
}

/* ---- setup ------------------------------------------------------------ */

static int
it_setup(void **state)
{
    cv_error err;
    char rid[32];

    (void)state;
    cv_rpc_new_request_id(rid, sizeof(rid));
    snprintf(it_tag, sizeof(it_tag), "%.10s", rid + 4);
    if (cv_test_stack_start(&it_stack, CV_STACK_ACK | CV_STACK_RETRY |
                                           CV_STACK_REPORT) != 0)
        return -1;
    cv_error_clear(&err);
    if (cv_rpc_client_open(it_stack.ack_url, &it_ack_cli, &err) != 0 ||
        cv_rpc_client_open(it_stack.retry_url, &it_retry_cli, &err) != 0 ||
        cv_rpc_client_open(it_stack.report_url, &it_report_cli, &err) != 0) {
        fprintf(stderr, "cannot open RPC clients: %s\n", err.msg);
        cv_test_stack_stop(&it_stack);
        return -1;
    }
    return 0;
}

static int
it_teardown(void **state)
{
    (void)state;
    cv_rpc_client_close(it_replica_cli);
    it_replica_cli = NULL;
    if (it_replica_pid > 0 && it_stop_process(it_replica_pid) != 0)
        fprintf(stderr, "the second cavra-report did not stop cleanly\n");
    it_replica_pid = -1;
    if (it_sched_on[0] != '\0') {
        it_sched_req t;
        ProtobufCMessage *rep = NULL;
        char msg[CV_ERROR_MSG_MAX];

        it_sched_req_init(&t, it_sched_on, 1, 0, 0);
        if (it_call(it_report_cli, "report.ScheduleRun", &t.req.base,
                    &cv__schedule_run_reply__descriptor, NULL, &rep, NULL, msg,
                    sizeof(msg)) != 0)
            fprintf(stderr, "cannot disable schedule %s: %s\n", it_sched_on,
                    msg);
        if (rep != NULL)
            protobuf_c_message_free_unpacked(rep, NULL);
    }
    cv_rpc_client_close(it_ack_cli);
    cv_rpc_client_close(it_retry_cli);
    cv_rpc_client_close(it_report_cli);
    return cv_test_stack_stop(&it_stack);
}

/* ---- tests ------------------------------------------------------------ */

static void
test_report_rpc_health(void **state)
{
    (void)state;
    assert_int_equal(it_wait_ready(it_report_cli), 0);
}

static void
test_report_rpc_created_then_existing(void **state)
{
    Cv__ScheduleRunReply *a, *b;
    char sid[80], sql[256];
    cv_test_counts before, after;
    int existing = -1;

    (void)state;
    it_name(sid, sizeof(sid), "it-once", "a");
    cv_test_counts_snapshot(&before);
    a = it_schedule_run(sid, 10080, 0, 0, &existing);
    assert_int_equal(existing, 0);
    assert_string_equal(a->run->schedule->schedule_id, sid);
    assert_int_equal(a->run->schedule->interval_minutes, 10080);
    assert_false(a->run->schedule->enabled);
    assert_string_equal(a->run->generated_by, "console");
    assert_non_null(a->metadata);
    assert_string_equal(a->metadata->session_id, a->run->run_id);
    assert_non_null(a->report_metadata);
    assert_string_equal(a->report_metadata->session_id,
                        a->run->executive_report->executive_report_id);
    assert_null(a->actor);

    b = it_schedule_run(sid, 10080, 0, 0, &existing);
    assert_int_equal(existing, 1);
    assert_string_equal(b->run->run_id, a->run->run_id);
    assert_string_equal(b->run->generated_at, a->run->generated_at);
    assert_string_equal(b->run->executive_report->executive_report_id,
                        a->run->executive_report->executive_report_id);
    assert_string_equal(b->metadata->run_id, a->run->run_id);

    /* One run, one report, one evidence event; the schedule is kept. */
    cv_test_counts_snapshot(&after);
    assert_int_equal(after.runs, before.runs + 1);
    assert_int_equal(after.reports, before.reports + 1);
    assert_int_equal(after.events, before.events + 1);
    assert_int_equal(after.schedules, before.schedules + 1);
    assert_int_equal(
        cv_test_count("SELECT count(*) FROM report_runs WHERE schedule_id = $1",
                      sid),
        1);
    assert_int_equal(cv_test_count("SELECT count(*) FROM evidence_events WHERE "
                                   "kind = 'executive_report_schedule_run' AND "
                                   "record_id = $1 AND plan_id IS NULL",
                                   a->run->run_id),
                     1);
    assert_int_equal(
        cv_test_count("SELECT count(*) FROM report_schedules WHERE "
                      "schedule_id = $1 AND NOT enabled AND "
                      "interval_minutes = 10080",
                      sid),
        1);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM executive_reports WHERE run_id = $1 AND "
             "report_id = '%s'",
             a->run->executive_report->executive_report_id);
    assert_int_equal(cv_test_count(sql, a->run->run_id), 1);
    protobuf_c_message_free_unpacked(&a->base, NULL);
    protobuf_c_message_free_unpacked(&b->base, NULL);
}

/* Providers of this run: sorted before the usual names. */
static void
it_provider_name(char *out, size_t outlen, const char *base)
{
    snprintf(out, outlen, "00%s-%s", it_tag, base);
}

static void
test_report_rpc_counts_exact(void **state)
{
    char slack[64], jira[64], teams[64], pd[64], hook[64];
    char sa[80], sb[80];
    Cv__ScheduleRunReply *a, *b;
    const Cv__ReportExecutiveSummary *x, *y;
    const Cv__ProviderSummary *p;
    char *p1, *p2;
    int64_t retryable;

    (void)state;
    it_provider_name(slack, sizeof(slack), "slack");
    it_provider_name(jira, sizeof(jira), "jira");
    it_provider_name(teams, sizeof(teams), "teams");
    it_provider_name(pd, sizeof(pd), "pagerduty");
    it_provider_name(hook, sizeof(hook), "webhook");
    it_name(sa, sizeof(sa), "it-counts", "before");
    it_name(sb, sizeof(sb), "it-counts", "after");
    a = it_schedule_run(sa, 10080, 0, 0, NULL);
    {
        const it_route r1[] = {
            {slack, CV__SEVERITY__SEVERITY_CRITICAL, NULL, NULL, 0, 0, 0},
            {jira, CV__SEVERITY__SEVERITY_WARNING, "retry-execution", NULL, 3,
             0, 0},
            {teams, CV__SEVERITY__SEVERITY_WARNING, NULL, "resolved", 0, 0, 1},
        };
        /* pagerduty: open far longer than the 240-minute SLO. */
        const it_route r2[] = {
            {pd, CV__SEVERITY__SEVERITY_WARNING, NULL, NULL, 0, 100000, 0},
            {hook, CV__SEVERITY__SEVERITY_INFO, NULL, NULL, 0, 0, 0},
        };

        p1 = it_record_plan(r1, 3);
        p2 = it_record_plan(r2, 2);
    }
    cv_test_ack_rpc(it_ack_cli, p1, slack, "alice",
                    CV__ACK_STATE__ACK_STATE_RESOLVED, NULL, NULL);
    cv_test_ack_rpc(it_ack_cli, p1, jira, "alice",
                    CV__ACK_STATE__ACK_STATE_ACCEPTED, NULL, NULL);
    cv_test_ack_rpc(it_ack_cli, p2, hook, "alice",
                    CV__ACK_STATE__ACK_STATE_DISMISSED, NULL, NULL);
    it_delivery(p1, jira, 0, 503);
    it_delivery(p1, jira, 0, 500);
    it_delivery(p2, pd, 1, 200);
    retryable = it_retry_plan(p1);
    assert_int_equal(retryable, 1);
    b = it_schedule_run(sb, 10080, 0, 0, NULL);
    if (strcmp(a->run->schedule->window_start,
               b->run->schedule->window_start) != 0)
        skip(); /* crossed a week boundary between the two runs */

    x = a->run->executive_report->executive_summary;
    y = b->run->executive_report->executive_summary;
    /* Open at B: jira (acked, not closed), teams (flagged breach, no ack),
     * pagerduty (age breach, no ack). slack resolved, webhook dismissed. */
    assert_int_equal(y->escalation_count - x->escalation_count, 3);
    assert_int_equal(
        y->critical_escalation_count - x->critical_escalation_count, 0);
    assert_int_equal(y->slo_breached_count - x->slo_breached_count, 2);
    assert_int_equal(y->open_recovery_count - x->open_recovery_count, 2);
    assert_int_equal(y->failed_execution_count - x->failed_execution_count, 3);
    assert_int_equal(y->unacknowledged_count - x->unacknowledged_count, 2);
    assert_int_equal(y->failed_delivery_count - x->failed_delivery_count, 2);
    assert_int_equal(y->acknowledgement_count - x->acknowledgement_count, 3);
    assert_int_equal(y->retryable_count, retryable);
    assert_int_equal(b->run->alert_level,
                     CV__ALERT_LEVEL__ALERT_LEVEL_CRITICAL);
    assert_int_equal(b->run->summary->escalation_count, y->escalation_count);
    assert_int_equal(b->run->summary->slo_breached_count,
                     y->slo_breached_count);

    /* Provider rows of our providers are exact. */
    p = it_provider(b->run->executive_report, jira);
    assert_non_null(p);
    assert_int_equal(p->escalation_count, 1);
    assert_int_equal(p->open_recovery_count, 1);
    assert_int_equal(p->unacknowledged_count, 0);
    assert_int_equal(p->failed_delivery_count, 2);
    assert_int_equal(p->acknowledgement_count, 1);
    assert_int_equal(p->latest_acknowledgement_state,
                     CV__ACK_STATE__ACK_STATE_ACCEPTED);
    p = it_provider(b->run->executive_report, slack);
    assert_non_null(p);
    assert_int_equal(p->escalation_count, 0);
    assert_int_equal(p->critical_escalation_count, 0);
    assert_int_equal(p->acknowledgement_count, 1);
    assert_int_equal(p->latest_acknowledgement_state,
                     CV__ACK_STATE__ACK_STATE_RESOLVED);
    p = it_provider(b->run->executive_report, teams);
    assert_non_null(p);
    assert_int_equal(p->escalation_count, 1);
    assert_int_equal(p->slo_breached_count, 1);
    assert_int_equal(p->open_recovery_count, 0);
    assert_int_equal(p->unacknowledged_count, 1);
    assert_false(p->has_latest_acknowledgement_state);
    p = it_provider(b->run->executive_report, pd);
    assert_non_null(p);
    assert_int_equal(p->slo_breached_count, 1);
    assert_int_equal(p->unacknowledged_count, 1);
    assert_int_equal(p->failed_delivery_count, 0);
    p = it_provider(b->run->executive_report, hook);
    assert_non_null(p);
    assert_int_equal(p->escalation_count, 0);
    assert_int_equal(p->latest_acknowledgement_state,
                     CV__ACK_STATE__ACK_STATE_DISMISSED);
    /* Run A came before our records: none of our providers in it. */
    assert_null(it_provider(a->run->executive_report, jira));

    /* The run counted both plans, run A neither: the plans' traces name
     * run B and not run A. */
    for (int k = 0; k < 2; k++) {
        Cv__TraceRequest treq = CV__TRACE_REQUEST__INIT;
        ProtobufCMessage *out = NULL;
        Cv__Trace *trace;
        int saw_a = 0, saw_b = 0;
        cv_error terr;

        treq.plan_id = k == 0 ? p1 : p2;
        CV_TEST_PASS(cv_rpc_call(it_report_cli, "report.Trace", &treq.base,
                                 &cv__trace__descriptor, &out, NULL, &terr),
                     terr);
        trace = (Cv__Trace *)out;
        for (size_t i = 0; i < trace->n_items; i++) {
            saw_a |= strcmp(trace->items[i]->record_id, a->run->run_id) == 0;
            saw_b |= strcmp(trace->items[i]->record_id, b->run->run_id) == 0;
        }
        assert_true(saw_b);
        assert_false(saw_a);
        protobuf_c_message_free_unpacked(out, NULL);
    }
    free(p1);
    free(p2);
    protobuf_c_message_free_unpacked(&a->base, NULL);
    protobuf_c_message_free_unpacked(&b->base, NULL);
}

static void
test_report_rpc_slo_minutes_apply(void **state)
{
    char prov[64], s1[80], s2[80];
    Cv__ScheduleRunReply *a, *b;
    const Cv__ProviderSummary *pa, *pb;
    char *plan;

    (void)state;
    it_provider_name(prov, sizeof(prov), "slo");
    {
        const it_route r[] = {
            {prov, CV__SEVERITY__SEVERITY_WARNING, NULL, NULL, 0, 300, 0},
        };

        plan = it_record_plan(r, 1);
    }
    /* 300 minutes old: past an SLO of 240, within one of 600. */
    it_name(s1, sizeof(s1), "it-slo", "240");
    it_name(s2, sizeof(s2), "it-slo", "600");
    a = it_schedule_run(s1, 10080, 0, 240, NULL);
    b = it_schedule_run(s2, 10080, 0, 600, NULL);
    assert_int_equal(a->run->executive_report->recovery_slo_minutes, 240);
    assert_int_equal(b->run->executive_report->recovery_slo_minutes, 600);
    pa = it_provider(a->run->executive_report, prov);
    pb = it_provider(b->run->executive_report, prov);
    assert_non_null(pa);
    assert_non_null(pb);
    assert_int_equal(pa->slo_breached_count, 1);
    assert_int_equal(pb->slo_breached_count, 0);
    free(plan);
    protobuf_c_message_free_unpacked(&a->base, NULL);
    protobuf_c_message_free_unpacked(&b->base, NULL);
}

static void
test_report_rpc_actor_overrides(void **state)
{
    it_sched_req t;
    Cv__Actor actor = CV__ACTOR__INIT;
    char *roles[] = {"executive"};
    ProtobufCMessage *rep = NULL;
    Cv__ScheduleRunReply *r;
    char sid[80], msg[CV_ERROR_MSG_MAX];

    (void)state;
    it_name(sid, sizeof(sid), "it-actor", "a");
    it_sched_req_init(&t, sid, 10080, 0, 0);
    t.req.generated_by = "someone else";
    actor.actor = "erin";
    actor.subject = "erin@example.test";
    actor.roles = roles;
    actor.n_roles = 1;
    assert_int_equal(it_call(it_report_cli, "report.ScheduleRun", &t.req.base,
                             &cv__schedule_run_reply__descriptor, &actor, &rep,
                             NULL, msg, sizeof(msg)),
                     0);
    r = (Cv__ScheduleRunReply *)rep;
    assert_string_equal(r->run->generated_by, "erin");
    assert_string_equal(r->run->executive_report->generated_by, "erin");
    assert_non_null(r->actor);
    assert_string_equal(r->actor->actor, "erin");
    assert_int_equal(cv_test_count("SELECT count(*) FROM evidence_events WHERE "
                                   "record_id = $1 AND actor = 'erin'",
                                   r->run->run_id),
                     1);
    protobuf_c_message_free_unpacked(rep, NULL);
}

static void
test_report_rpc_invalid_arguments(void **state)
{
    it_sched_req t;
    char sid[80], long_text[200];

    (void)state;
    it_name(sid, sizeof(sid), "it-bad", "a");
    it_sched_req_init(&t, sid, 0, -1, 0);
    t.req.has_recovery_slo_minutes = 1;
    t.req.recovery_slo_minutes = 43201;
    it_expect_error(&t.req.base, CV_INVALID_ARGUMENT,
                    "recovery_slo_minutes must be between 1 and 43200");
    it_sched_req_init(&t, sid, 0, -1, 0);
    t.spec.has_interval_minutes = 1;
    t.spec.interval_minutes = 10081;
    it_expect_error(&t.req.base, CV_INVALID_ARGUMENT,
                    "schedule.interval_minutes must be between 1 and 10080");
    it_sched_req_init(&t, "bad id!", 0, -1, 0);
    it_expect_error(&t.req.base, CV_INVALID_ARGUMENT,
                    "schedule.schedule_id must use only a-z, 0-9, '.', '_' "
                    "and '-'");
    it_sched_req_init(&t, sid, 0, -1, 0);
    memset(long_text, 'x', 129);
    long_text[129] = '\0';
    t.req.generated_by = long_text;
    it_expect_error(&t.req.base, CV_INVALID_ARGUMENT,
                    "generated_by must be at most 128 characters");
    assert_int_equal(
        cv_test_count(
            "SELECT count(*) FROM report_schedules WHERE schedule_id = $1",
            sid),
        0);
}

/* ---- exactly once ----------------------------------------------------- */

typedef struct it_racer {
    pthread_barrier_t *start;
    cv_rpc_client *cli;
    const char *schedule_id;
    int code;
    int existing;
    char run_id[96];
    char msg[CV_ERROR_MSG_MAX];
} it_racer;

static void *
it_racer_main(void *arg)
{
    it_racer *r = arg;
    it_sched_req t;
    ProtobufCMessage *rep = NULL;

    it_sched_req_init(&t, r->schedule_id, 10080, 0, 0);
    pthread_barrier_wait(r->start);
    r->code = it_call(r->cli, "report.ScheduleRun", &t.req.base,
                      &cv__schedule_run_reply__descriptor, NULL, &rep,
                      &r->existing, r->msg, sizeof(r->msg));
    if (r->code == 0) {
        snprintf(r->run_id, sizeof(r->run_id), "%s",
                 ((Cv__ScheduleRunReply *)rep)->run->run_id);
        protobuf_c_message_free_unpacked(rep, NULL);
    }
    return NULL;
}

/* IT_RACERS threads ask for the same fresh window's run at once, spread
 * over the given clients: one run, and everybody gets it. */
static void
it_race(cv_rpc_client *const *clis, size_t n_clis, const char *sid)
{
    pthread_barrier_t start;
    pthread_t th[IT_RACERS];
    it_racer r[IT_RACERS];
    int created = 0;

    pthread_barrier_init(&start, NULL, IT_RACERS);
    for (int i = 0; i < IT_RACERS; i++) {
        memset(&r[i], 0, sizeof(r[i]));
        r[i].start = &start;
        r[i].cli = clis[(size_t)i % n_clis];
        r[i].schedule_id = sid;
        pthread_create(&th[i], NULL, it_racer_main, &r[i]);
    }
    for (int i = 0; i < IT_RACERS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start);
    for (int i = 0; i < IT_RACERS; i++) {
        if (r[i].code != 0)
            fail_msg("racer %d: code %d: %s", i, r[i].code, r[i].msg);
        assert_string_equal(r[i].run_id, r[0].run_id);
        created += !r[i].existing;
    }
    assert_int_equal(created, 1);
    assert_int_equal(
        cv_test_count("SELECT count(*) FROM report_runs WHERE schedule_id = $1",
                      sid),
        1);
    assert_int_equal(
        cv_test_count("SELECT count(*) FROM executive_reports WHERE "
                      "run_id = $1",
                      r[0].run_id),
        1);
    assert_int_equal(cv_test_count("SELECT count(*) FROM evidence_events WHERE "
                                   "record_id = $1",
                                   r[0].run_id),
                     1);
}

static void
test_report_rpc_concurrent_same_window(void **state)
{
    char sid[80];

    (void)state;
    it_name(sid, sizeof(sid), "it-race", "one");
    it_race(&it_report_cli, 1, sid);
}

/* Seconds until the next UTC minute boundary, from the wall clock. */
static long
it_ms_to_next_minute(void)
{
    int64_t now = cv_now_us();

    return (long)((60000000LL - now % 60000000LL) / 1000);
}

static void
test_report_rpc_scheduler_and_replicas(void **state)
{
    char url[400], log[400], s_on[80], s_off[80], s_race[80];
    char boundary_text[CV_TIME_MAX];
    cv_rpc_client *clis[2];
    Cv__ScheduleRunReply *r;
    int64_t boundary;
    cv_error err;
    long wait_ms;

    (void)state;
    snprintf(url, sizeof(url), "ipc://%s/report2.sock", it_stack.dir);
    snprintf(log, sizeof(log), "%s/report2.log", it_stack.dir);
    it_replica_pid = it_spawn_report(url, log);
    assert_true(it_replica_pid > 0);
    cv_error_clear(&err);
    CV_TEST_PASS(cv_rpc_client_open(url, &it_replica_cli, &err), err);
    if (it_wait_ready(it_replica_cli) != 0)
        fail_msg("the second cavra-report did not become ready (log %s)", log);

    /* Two processes race for one window: still one run. */
    it_name(s_race, sizeof(s_race), "it-race", "two");
    clis[0] = it_report_cli;
    clis[1] = it_replica_cli;
    it_race(clis, 2, s_race);

    /* Too close to a boundary: the schedule's first run could land on
     * either side of it. Wait for the next minute to begin. */
    if (it_ms_to_next_minute() < 5000)
        cv_test_sleep_ms(it_ms_to_next_minute() + 200);
    it_name(s_on, sizeof(s_on), "it-sched", "on");
    it_name(s_off, sizeof(s_off), "it-sched", "off");
    snprintf(it_sched_on, sizeof(it_sched_on), "%s", s_on);
    r = it_schedule_run(s_on, 1, 1, 0, NULL);
    boundary = 0;
    {
        int64_t ws;

        assert_int_equal(cv_time_parse(r->run->schedule->window_end, &ws), 0);
        boundary = ws;
    }
    protobuf_c_message_free_unpacked(&r->base, NULL);
    r = it_schedule_run(s_off, 1, 0, 0, NULL);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    cv_time_format(boundary, boundary_text);

    /* Both replicas tick every 50 ms; give them 3 s past the boundary. */
    wait_ms = (long)((boundary - cv_now_us()) / 1000) + 3000;
    if (wait_ms > 0)
        cv_test_sleep_ms(wait_ms);
    {
        char sql[400];

        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM report_runs WHERE schedule_id = $1 "
                 "AND window_start = '%s'::timestamptz",
                 boundary_text);
        assert_int_equal(cv_test_count(sql, s_on), 1);
        assert_int_equal(cv_test_count(sql, s_off), 0);
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM report_runs WHERE schedule_id = $1 "
                 "AND window_start = '%s'::timestamptz AND generated_by = "
                 "'scheduler' AND request_id LIKE 'scheduler-%%' AND "
                 "generated_at - window_start < interval '3 seconds'",
                 boundary_text);
        assert_int_equal(cv_test_count(sql, s_on), 1);
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM evidence_events e JOIN report_runs r "
                 "ON e.record_id = r.run_id WHERE r.schedule_id = $1 AND "
                 "r.window_start = '%s'::timestamptz AND e.actor = "
                 "'scheduler'",
                 boundary_text);
        assert_int_equal(cv_test_count(sql, s_on), 1);
    }
    /* Every run of the schedule so far: the caller's and the boundary's,
     * never two for one window. */
    assert_int_equal(
        cv_test_count("SELECT count(*) - count(DISTINCT window_start) "
                      "FROM report_runs WHERE schedule_id = $1",
                      s_on),
        0);

    /* Disable it again; a disabled schedule is left alone. */
    r = it_schedule_run(s_on, 1, 0, 0, NULL);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    assert_int_equal(
        cv_test_count("SELECT count(*) FROM report_schedules WHERE "
                      "schedule_id = $1 AND NOT enabled",
                      s_on),
        1);
    it_sched_on[0] = '\0';
    cv_rpc_client_close(it_replica_cli);
    it_replica_cli = NULL;
    {
        pid_t pid = it_replica_pid;

        it_replica_pid = -1;
        assert_int_equal(it_stop_process(pid), 0);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_report_rpc_health),
        cmocka_unit_test(test_report_rpc_created_then_existing),
        cmocka_unit_test(test_report_rpc_counts_exact),
        cmocka_unit_test(test_report_rpc_slo_minutes_apply),
        cmocka_unit_test(test_report_rpc_actor_overrides),
        cmocka_unit_test(test_report_rpc_invalid_arguments),
        cmocka_unit_test(test_report_rpc_concurrent_same_window),
        cmocka_unit_test(test_report_rpc_scheduler_and_replicas),
    };

    /* Both replicas pick a boundary up within 50 ms. */
    setenv("CAVRA_SCHEDULER_TICK_MS", IT_TICK_MS, 1);
    return cmocka_run_group_tests_name("report_rpc", tests, it_setup,
                                       it_teardown);
}
