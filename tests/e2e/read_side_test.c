/*
 * read_side_test.c -- end-to-end tests of the read side (docs/api.md) through
 * the REST gateway: the dashboard's exact counts, the evidence stream's
 * filters and cursor pages, and the trace of one plan.
 *
 * Needs CAVRA_DATABASE_URL pointing at a migrated database (scripts/test.sh
 * sets it). The group setup starts the whole stack once. Records are made
 * quickly over the services' RPCs (several threads); everything is read
 * back over HTTP. The store is shared with other tests, so assertions are
 * deltas, or scoped to the plans and providers this run made (their names
 * carry a random tag). The scheduler of the stack may add report runs at
 * a window boundary while a test runs; the run counts allow for exactly
 * the runs it made (generated_by "scheduler").
 *
 * Run: ctest -R e2e.read_side, or the binary alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ack.pb-c.h"
#include "cv_rpc.h"
#include "cv_test_api.h"
#include "cv_time.h"
#include "report.pb-c.h"
#include "retry.pb-c.h"

#define P                                                                      \
    "/runtime/go-pilot/rollback-drill-notifications/acknowledgements/"         \
    "audit-delivery"
#define E2E_STREAM    "/runtime/go-pilot/rollback-drill-notifications"
#define E2E_DASHBOARD E2E_STREAM "/dashboard"
#define E2E_DASH_SCHEMA                                                        \
    "cavra.go-backend-pilot.rollback-drill-notification-dashboard.v1"
#define E2E_NOT_FOUND "recovery escalation plan not found"

/* More than the 500 records the original kept of each kind. */
#define E2E_BULK    501
#define E2E_THREADS 8

static cv_test_stack e2e_stack;
static cv_rpc_client *e2e_ack, *e2e_retry, *e2e_report;
static char e2e_tag[20];

/* ---- HTTP helpers (the shared ones are in tests/support/cv_test_api.h) */

/* GETs path and expects status; the body must be a JSON object. */
static void
e2e_get_json(const char *path, long status, cv_http_response *r)
{
    cv_test_request_json(&e2e_stack, "GET", path, NULL, status, r);
}

/* GETs path and expects the error answer status with detail. */
static void
e2e_expect_error(const char *path, long status, const char *detail)
{
    cv_http_response r;

    cv_test_request(&e2e_stack, "GET", path, NULL, NULL, NULL, &r);
    cv_test_assert_error(&r, status, NULL, detail);
    cv_http_response_free(&r);
}

/* ---- RPC helpers (thread-safe: no cmocka calls, they return codes) ---- */

static int
e2e_rpc_plan(const char *provider, int critical, char *id, size_t idlen)
{
    Cv__EscalationRoute route = CV__ESCALATION_ROUTE__INIT;
    Cv__RecordPlanReply *rep = NULL;
    cv_error err;
    int rv;

    route.provider = (char *)provider;
    route.has_severity = 1;
    route.severity = critical ? CV__SEVERITY__SEVERITY_CRITICAL
                              : CV__SEVERITY__SEVERITY_WARNING;
    rv = cv_test_record_plan_call(e2e_ack, "read-side-test", &route, 1, NULL,
                                  &rep, &err);
    if (rv == 0) {
        snprintf(id, idlen, "%s", rep->plan->plan_id);
        protobuf_c_message_free_unpacked(&rep->base, NULL);
    }
    return rv;
}

static int
e2e_rpc_ack(const char *plan_id, const char *provider, int state)
{
    cv_error err;

    return cv_test_ack_call(e2e_ack, plan_id, provider, "read-side", state,
                            NULL, NULL, &err);
}

static int
e2e_rpc_delivery(const char *plan_id, const char *provider, int success)
{
    Cv__RecordDeliveryRequest req = CV__RECORD_DELIVERY_REQUEST__INIT;
    ProtobufCMessage *rep = NULL;
    cv_error err;
    int rv;

    req.plan_id = (char *)plan_id;
    req.provider = (char *)provider;
    req.has_success = 1;
    req.success = success;
    req.has_status_code = 1;
    req.status_code = success ? 200 : 503;
    cv_error_clear(&err);
    rv = cv_rpc_call(e2e_retry, "retry.RecordDelivery", &req.base,
                     &cv__record_delivery_reply__descriptor, &rep, NULL, &err);
    if (rv == 0)
        protobuf_c_message_free_unpacked(rep, NULL);
    return rv;
}

/* A retry plan (plan_id NULL: over every plan); *retryable and the id are
 * copied out. */
static int
e2e_rpc_retry_plan(const char *plan_id, int64_t *retryable, char *id,
                   size_t idlen)
{
    Cv__RetryPlanRequest req = CV__RETRY_PLAN_REQUEST__INIT;
    Cv__RetryPolicy pol = CV__RETRY_POLICY__INIT;
    ProtobufCMessage *rep = NULL;
    cv_error err;
    int rv;

    pol.has_allow_immediate_retry = 1;
    pol.allow_immediate_retry = 1;
    req.plan_id = (char *)plan_id;
    req.retry_policy = &pol;
    cv_error_clear(&err);
    rv = cv_rpc_call(e2e_retry, "retry.PlanRetries", &req.base,
                     &cv__retry_plan_reply__descriptor, &rep, NULL, &err);
    if (rv == 0) {
        Cv__RetryPlan *p = ((Cv__RetryPlanReply *)rep)->plan;

        if (retryable != NULL)
            *retryable = p->retryable_count;
        if (id != NULL)
            snprintf(id, idlen, "%s", p->retry_plan_id);
        protobuf_c_message_free_unpacked(rep, NULL);
    }
    return rv;
}

static int
e2e_rpc_run(const char *schedule_id, char *run_id, size_t idlen)
{
    Cv__ScheduleRunRequest req = CV__SCHEDULE_RUN_REQUEST__INIT;
    Cv__ScheduleSpec spec = CV__SCHEDULE_SPEC__INIT;
    ProtobufCMessage *rep = NULL;
    cv_error err;
    int rv;

    spec.schedule_id = (char *)schedule_id;
    spec.has_interval_minutes = 1;
    spec.interval_minutes = 10080;
    spec.has_enabled = 1;
    spec.enabled = 0;
    req.schedule = &spec;
    cv_error_clear(&err);
    rv = cv_rpc_call(e2e_report, "report.ScheduleRun", &req.base,
                     &cv__schedule_run_reply__descriptor, &rep, NULL, &err);
    if (rv == 0) {
        if (run_id != NULL)
            snprintf(run_id, idlen, "%s",
                     ((Cv__ScheduleRunReply *)rep)->run->run_id);
        protobuf_c_message_free_unpacked(rep, NULL);
    }
    return rv;
}

/* ---- setup ------------------------------------------------------------ */

static void e2e_live_stop(void);

static int
e2e_setup(void **state)
{
    char rid[32];
    cv_error err;

    (void)state;
    cv_rpc_new_request_id(rid, sizeof(rid));
    snprintf(e2e_tag, sizeof(e2e_tag), "%.10s", rid + 4);
    if (cv_test_stack_start(&e2e_stack, CV_STACK_ALL) != 0)
        return -1;
    cv_error_clear(&err);
    if (cv_rpc_client_open(e2e_stack.ack_url, &e2e_ack, &err) != 0 ||
        cv_rpc_client_open(e2e_stack.retry_url, &e2e_retry, &err) != 0 ||
        cv_rpc_client_open(e2e_stack.report_url, &e2e_report, &err) != 0) {
        fprintf(stderr, "cannot open RPC clients: %s\n", err.msg);
        cv_test_stack_stop(&e2e_stack);
        return -1;
    }
    return 0;
}

static int
e2e_teardown(void **state)
{
    (void)state;
    e2e_live_stop();
    cv_rpc_client_close(e2e_ack);
    cv_rpc_client_close(e2e_retry);
    cv_rpc_client_close(e2e_report);
    return cv_test_stack_stop(&e2e_stack);
}

/* ---- dashboard -------------------------------------------------------- */

/* The dashboard's counters, by JSON name. */
static const char *const e2e_dash_fields[] = {
    "acknowledgement_audit_delivery_recovery_escalation_plan_count",
    "acknowledgement_audit_delivery_recovery_escalation_ack_count",
    "acknowledgement_audit_delivery_recovery_escalation_retry_plan_count",
    "acknowledgement_audit_delivery_recovery_escalation_retryable_count",
    "acknowledgement_audit_delivery_recovery_executive_report_schedule_run_"
    "count",
    "delivery_attempt_count",
    "failed_delivery_count",
    "open_recovery_count",
    "unacknowledged_count",
    "evidence_event_count",
    "acknowledgement_audit_delivery_recovery_executive_report_count",
    "report_schedule_count",
    "escalation_count",
    "critical_escalation_count",
    "slo_breached_count",
    "acknowledgement_audit_delivery_recovery_escalation_route_count",
    "outstanding_acknowledgement_count",
};
#define E2E_N_DASH_ALL (sizeof(e2e_dash_fields) / sizeof(e2e_dash_fields[0]))
#define E2E_N_DASH     E2E_N_DASH_ALL

/* Every integer counter of the Dashboard message must be compared: a new
 * counter without a row in e2e_dash_fields fails the test. */
static void
e2e_dash_fields_complete(void)
{
    const ProtobufCMessageDescriptor *d = &cv__dashboard__descriptor;
    size_t counters = 0;

    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        bool found = false;

        if (f->type != PROTOBUF_C_TYPE_INT64 ||
            f->label == PROTOBUF_C_LABEL_REPEATED)
            continue;
        counters++;
        for (size_t j = 0; j < E2E_N_DASH_ALL && !found; j++)
            found = strcmp(e2e_dash_fields[j], f->name) == 0;
        if (!found)
            fail_msg("dashboard counter %s is not compared with the store",
                     f->name);
    }
    assert_int_equal(counters, E2E_N_DASH_ALL);
}

/* The same numbers straight from the store. */
static const char *const e2e_dash_sql[E2E_N_DASH] = {
    "SELECT count(*) FROM escalation_plans",
    "SELECT count(*) FROM acknowledgements",
    "SELECT count(*) FROM retry_plans",
    "SELECT coalesce(sum(retryable_count), 0) FROM retry_plans",
    "SELECT count(*) FROM report_runs",
    "SELECT count(*) FROM delivery_attempts",
    "SELECT count(*) FROM delivery_attempts WHERE NOT success",
    "SELECT count(*) FROM plan_routes r LEFT JOIN ack_current c ON "
    "c.plan_id = r.plan_id AND c.provider = r.provider WHERE "
    "(c.acknowledgement_state IS NULL OR c.acknowledgement_state NOT IN "
    "('resolved', 'dismissed')) AND r.closure_state NOT IN ('resolved', "
    "'mitigated')",
    "SELECT count(DISTINCT (r.plan_id, r.provider)) FROM plan_routes r LEFT "
    "JOIN ack_current c ON c.plan_id = r.plan_id AND c.provider = "
    "r.provider WHERE c.acknowledgement_state IS NULL",
    "SELECT count(*) FROM evidence_events",
    "SELECT count(*) FROM executive_reports",
    "SELECT count(*) FROM report_schedules",
    /* Open escalations, from the plans themselves (not the routes' copies
     * of their time and SLO) and the acknowledgements table (not
     * ack_current): a route is open unless its pair's latest
     * acknowledgement resolved or dismissed it. */
    "SELECT count(*) FROM plan_routes r WHERE coalesce((SELECT "
    "a.acknowledgement_state FROM acknowledgements a WHERE a.plan_id = "
    "r.plan_id AND a.provider = r.provider ORDER BY a.seq DESC LIMIT 1), "
    "'open') NOT IN ('resolved', 'dismissed')",
    "SELECT count(*) FROM plan_routes r WHERE r.severity = 'critical' AND "
    "coalesce((SELECT a.acknowledgement_state FROM acknowledgements a WHERE "
    "a.plan_id = r.plan_id AND a.provider = r.provider ORDER BY a.seq DESC "
    "LIMIT 1), 'open') NOT IN ('resolved', 'dismissed')",
    "SELECT count(*) FROM plan_routes r JOIN escalation_plans p ON p.plan_id "
    "= r.plan_id WHERE (r.slo_breached OR now() - p.generated_at + "
    "make_interval(mins => r.age_minutes::int) > make_interval(mins => "
    "p.recovery_slo_minutes)) AND coalesce((SELECT a.acknowledgement_state "
    "FROM acknowledgements a WHERE a.plan_id = r.plan_id AND a.provider = "
    "r.provider ORDER BY a.seq DESC LIMIT 1), 'open') NOT IN ('resolved', "
    "'dismissed')",
    "SELECT coalesce(sum(escalation_count), 0) FROM escalation_plans",
    "SELECT count(*) FROM (SELECT DISTINCT plan_id, provider FROM "
    "plan_routes) r WHERE NOT EXISTS (SELECT 1 FROM acknowledgements a WHERE "
    "a.plan_id = r.plan_id AND a.provider = r.provider)",
};

static void
e2e_dashboard(long long out[E2E_N_DASH])
{
    cv_http_response r;

    e2e_get_json(E2E_DASHBOARD, 200, &r);
    if (strcmp(cv_test_json_str(r.json, "schema_version"), E2E_DASH_SCHEMA) !=
        0)
        fail_msg("dashboard schema %s",
                 cv_test_json_str(r.json, "schema_version"));
    (void)cv_test_json_str(r.json, "alert_level");
    (void)cv_test_json_str(r.json, "generated_at");
    if (!json_is_null(cv_test_json_get(r.json, "actor")))
        fail_msg("dashboard actor is not null in sandbox mode");
    for (size_t i = 0; i < E2E_N_DASH; i++)
        out[i] = cv_test_json_int(r.json, e2e_dash_fields[i]);
    cv_http_response_free(&r);
}

static void
e2e_sql_counts(long long out[E2E_N_DASH])
{
    for (size_t i = 0; i < E2E_N_DASH; i++)
        out[i] = cv_test_count(e2e_dash_sql[i], NULL);
}

typedef struct e2e_bulk {
    int first, step;
    int failures;
    int code; /* first failure */
    const char *what;
    int64_t retryable; /* sum over this worker's retry plans */
    int failed_deliveries;
    int open_pairs;
} e2e_bulk;

/* One worker: plans i = first, first + step, ... < E2E_BULK, each with an
 * ack, a delivery, a retry plan and a report run of its own schedule.
 * Every 100th plan keeps a failed, retryable delivery and stays open. */
static void *
e2e_bulk_main(void *arg)
{
    e2e_bulk *b = arg;
    char provider[64], plan[96], sid[96];

    snprintf(provider, sizeof(provider), "00%s-bulk", e2e_tag);
    for (int i = b->first; i < E2E_BULK && b->code == 0; i += b->step) {
        int special = i % 100 == 0;
        int64_t retryable = 0;
        int rv;

        snprintf(sid, sizeof(sid), "rs-%s-dash-%d", e2e_tag, i);
        if ((rv = e2e_rpc_plan(provider, 0, plan, sizeof(plan))) != 0) {
            b->what = "plan";
        } else if ((rv = e2e_rpc_ack(
                        plan, provider,
                        special ? CV__ACK_STATE__ACK_STATE_ACKNOWLEDGED
                                : CV__ACK_STATE__ACK_STATE_RESOLVED)) != 0) {
            b->what = "ack";
        } else if ((rv = e2e_rpc_delivery(plan, provider, !special)) != 0) {
            b->what = "delivery";
        } else if ((rv = e2e_rpc_retry_plan(plan, &retryable, NULL, 0)) != 0) {
            b->what = "retry plan";
        } else if ((rv = e2e_rpc_run(sid, NULL, 0)) != 0) {
            b->what = "report run";
        }
        if (rv != 0) {
            b->code = rv;
            break;
        }
        b->retryable += retryable;
        b->failed_deliveries += special;
        b->open_pairs += special;
    }
    return NULL;
}

static void
test_read_side_dashboard_exact(void **state)
{
    long long before[E2E_N_DASH], after[E2E_N_DASH], sql[E2E_N_DASH];
    long long sql2[E2E_N_DASH];
    pthread_t th[E2E_THREADS];
    e2e_bulk work[E2E_THREADS];
    long seq_before;
    long long scheduler_runs;
    int64_t retryable = 0;
    int failed = 0, open = 0;
    int stable = 0;

    (void)state;
    seq_before =
        cv_test_count("SELECT coalesce(max(seq), 0) FROM report_runs", NULL);
    e2e_dashboard(before);
    for (int t = 0; t < E2E_THREADS; t++) {
        memset(&work[t], 0, sizeof(work[t]));
        work[t].first = t;
        work[t].step = E2E_THREADS;
        pthread_create(&th[t], NULL, e2e_bulk_main, &work[t]);
    }
    for (int t = 0; t < E2E_THREADS; t++)
        pthread_join(th[t], NULL);
    for (int t = 0; t < E2E_THREADS; t++) {
        if (work[t].code != 0)
            fail_msg("worker %d: %s failed with code %d", t, work[t].what,
                     work[t].code);
        retryable += work[t].retryable;
        failed += work[t].failed_deliveries;
        open += work[t].open_pairs;
    }
    assert_int_equal(failed, 6);
    e2e_dashboard(after);
    {
        char sql_runs[200];

        snprintf(sql_runs, sizeof(sql_runs),
                 "SELECT count(*) FROM report_runs WHERE seq > %ld AND "
                 "generated_by = 'scheduler'",
                 seq_before);
        scheduler_runs = cv_test_count(sql_runs, NULL);
    }
    /* Deltas: exactly what this test made (no cap at 500). */
    assert_int_equal(after[0] - before[0], E2E_BULK);
    assert_int_equal(after[1] - before[1], E2E_BULK);
    assert_int_equal(after[2] - before[2], E2E_BULK);
    assert_int_equal(after[3] - before[3], retryable);
    assert_int_equal(after[4] - before[4], E2E_BULK + scheduler_runs);
    assert_int_equal(after[5] - before[5], E2E_BULK);
    assert_int_equal(after[6] - before[6], failed);
    assert_int_equal(after[7] - before[7], open);
    assert_int_equal(after[8] - before[8], 0);
    assert_int_equal(after[9] - before[9], 5 * E2E_BULK + scheduler_runs);
    assert_true(after[0] > 500 && after[1] > 500 && after[2] > 500 &&
                after[4] > 500 && after[5] > 500);

    /* Exactness: equal to COUNT(*) over the store at the same moment
     * (retried if something was written around the dashboard call). */
    e2e_dash_fields_complete();
    for (int attempt = 0; attempt < 5 && !stable; attempt++) {
        e2e_sql_counts(sql);
        e2e_dashboard(after);
        e2e_sql_counts(sql2);
        /* slo_breached_count also moves with the clock: an escalation
         * crossing its SLO between the two reads is retried too. */
        stable = memcmp(sql, sql2, sizeof(sql)) == 0 &&
                 memcmp(sql, after, sizeof(sql)) == 0;
    }
    for (size_t i = 0; i < E2E_N_DASH; i++)
        if (after[i] != sql[i])
            fail_msg("dashboard %s is %lld, the store holds %lld",
                     e2e_dash_fields[i], after[i], sql[i]);
}

/* ---- outstanding acknowledgements and hourly activity ------------------ */

/* The first value of sql (with one optional text parameter) as a malloc'd
 * string ("" for NULL); fails the test when the query fails. */
static char *
e2e_sql_text(const char *sql, const char *param)
{
    const char *params[1] = {param};
    PGconn *conn = PQconnectdb(cv_test_database_url());
    PGresult *res;
    char *v;

    if (PQstatus(conn) != CONNECTION_OK)
        fail_msg("cannot connect: %s", PQerrorMessage(conn));
    res = PQexecParams(conn, sql, param != NULL ? 1 : 0, NULL,
                       param != NULL ? params : NULL, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
        fail_msg("query failed: %s: %s", sql, PQresultErrorMessage(res));
    v = strdup(PQgetisnull(res, 0, 0) ? "" : PQgetvalue(res, 0, 0));
    PQclear(res);
    PQfinish(conn);
    assert_non_null(v);
    return v;
}

/* The first 50 outstanding pairs as "plan/provider/severity/age/breached"
 * lines, computed without the service's statement: from the plans (time,
 * SLO) and the acknowledgements table (not ack_current). Oldest first is
 * by the exact start of the escalation (the age in whole minutes ties). */
#define E2E_OUTSTANDING_SQL                                                    \
    "WITH r AS (SELECT r.plan_id, r.provider, CASE r.severity WHEN "           \
    "'critical' THEN 1 WHEN 'warning' THEN 2 ELSE 3 END AS sev, "              \
    "p.generated_at - make_interval(mins => r.age_minutes::int) AS started, "  \
    "(r.slo_breached OR now() - p.generated_at + make_interval(mins => "       \
    "r.age_minutes::int) > make_interval(mins => p.recovery_slo_minutes)) AS " \
    "breached FROM plan_routes r JOIN escalation_plans p ON p.plan_id = "      \
    "r.plan_id WHERE NOT EXISTS (SELECT 1 FROM acknowledgements a WHERE "      \
    "a.plan_id = r.plan_id AND a.provider = r.provider)), pairs AS (SELECT "   \
    "plan_id, provider, min(sev) AS sev, min(started) AS started, "            \
    "bool_or(breached) AS breached FROM r GROUP BY plan_id, provider ORDER "   \
    "BY bool_or(breached) DESC, min(sev), min(started), plan_id, provider "    \
    "LIMIT 50) SELECT coalesce(string_agg(plan_id || '/' || provider || '/' "  \
    "|| sev || '/' || floor(extract(epoch FROM now() - started) / "            \
    "60)::bigint || '/' || breached, ',' ORDER BY breached DESC, sev, "        \
    "started, plan_id, provider), '') FROM pairs"

static int
e2e_severity_rank(const char *name)
{
    if (strcmp(name, "critical") == 0)
        return 1;
    if (strcmp(name, "warning") == 0)
        return 2;
    if (strcmp(name, "info") == 0)
        return 3;
    fail_msg("outstanding severity %s", name);
    return 0;
}

/* The dashboard's list in the form of E2E_OUTSTANDING_SQL; checks the
 * order of the rows on the way and the shape of each row. */
static char *
e2e_outstanding_text(json_t *list)
{
    size_t cap = 64 + json_array_size(list) * 160, len = 0, i;
    char *out = calloc(1, cap);
    json_t *it;
    int prev_b = 2, prev_sev = 0;
    long long prev_age = 0;

    assert_non_null(out);
    json_array_foreach(list, i, it)
    {
        int b = json_is_true(cv_test_json_get(it, "slo_breached"));
        int sev = e2e_severity_rank(cv_test_json_str(it, "severity"));
        long long age = cv_test_json_int(it, "age_minutes");

        if (!json_is_boolean(cv_test_json_get(it, "slo_breached")))
            fail_msg("outstanding row %zu: slo_breached is not a boolean", i);
        assert_true(cv_test_json_int(it, "recovery_slo_minutes") > 0);
        /* Most urgent first: breached, then severity, then age. */
        if (b > prev_b || (b == prev_b && sev < prev_sev) ||
            (b == prev_b && sev == prev_sev && age > prev_age))
            fail_msg("outstanding row %zu is more urgent than the one before",
                     i);
        prev_b = b;
        prev_sev = sev;
        prev_age = age;
        len += (size_t)snprintf(
            out + len, cap - len, "%s%s/%s/%d/%lld/%s", i > 0 ? "," : "",
            cv_test_json_str(it, "plan_id"), cv_test_json_str(it, "provider"),
            sev, age, b ? "true" : "false");
        assert_true(len < cap);
    }
    return out;
}

/* Plans of our own (one unacknowledged pair each, at the very top of the
 * urgency order or not), the count's deltas, and the list equal to the
 * store's own top 50 at the same moment. */
static void
test_read_side_outstanding(void **state)
{
    char provider[64], plans[3][96];
    cv_http_response r;
    long long count_before, count_mid;
    bool same = false;

    (void)state;
    snprintf(provider, sizeof(provider), "00%s-out", e2e_tag);
    e2e_get_json(E2E_DASHBOARD, 200, &r);
    count_before =
        cv_test_json_int(r.json, "outstanding_acknowledgement_count");
    cv_http_response_free(&r);
    for (int k = 0; k < 3; k++) {
        Cv__EscalationRoute route[2] = {CV__ESCALATION_ROUTE__INIT,
                                        CV__ESCALATION_ROUTE__INIT};
        Cv__RecordPlanReply *rep;

        /* Plan 0: breached, critical and ten years old (the top of the
         * list); plan 1: routed twice to the provider (one pair, which
         * takes the critical route's severity); plan 2: an info route. */
        route[0].provider = provider;
        route[0].has_severity = route[1].has_severity = 1;
        route[0].severity = k == 2 ? CV__SEVERITY__SEVERITY_INFO
                                   : CV__SEVERITY__SEVERITY_WARNING;
        route[0].has_age_minutes = 1;
        route[0].age_minutes = k == 0 ? 5256000 : 5;
        route[0].has_slo_breached = 1;
        route[0].slo_breached = k == 0;
        route[1] = route[0];
        route[1].severity = CV__SEVERITY__SEVERITY_CRITICAL;
        route[1].age_minutes = k == 0 ? 5256000 : 7;
        rep = cv_test_record_plan_rpc(e2e_ack, "read-side-test", route,
                                      k == 2 ? 1 : 2, NULL);
        snprintf(plans[k], sizeof(plans[k]), "%s", rep->plan->plan_id);
        protobuf_c_message_free_unpacked(&rep->base, NULL);
    }
    e2e_get_json(E2E_DASHBOARD, 200, &r);
    count_mid = cv_test_json_int(r.json, "outstanding_acknowledgement_count");
    assert_int_equal(count_mid - count_before, 3);
    {
        json_t *list = cv_test_json_get(r.json, "outstanding_acknowledgements");
        json_t *first;

        assert_true(json_is_array(list));
        assert_true(json_array_size(list) ==
                    (size_t)(count_mid < 50 ? count_mid : 50));
        /* Plan 0 is at the top unless another breached critical pair is
         * older still; either way it is in the list, with its values. */
        first = NULL;
        for (size_t i = 0; i < json_array_size(list); i++)
            if (strcmp(cv_test_json_str(json_array_get(list, i), "plan_id"),
                       plans[0]) == 0)
                first = json_array_get(list, i);
        if (first == NULL)
            fail_msg("plan %s (breached, critical, 10 years) is not listed",
                     plans[0]);
        assert_string_equal(cv_test_json_str(first, "provider"), provider);
        assert_string_equal(cv_test_json_str(first, "severity"), "critical");
        assert_true(json_is_true(cv_test_json_get(first, "slo_breached")));
        assert_true(cv_test_json_int(first, "age_minutes") >= 5256000);
        assert_int_equal(cv_test_json_int(first, "recovery_slo_minutes"), 240);
    }
    cv_http_response_free(&r);

    /* An acknowledgement in any state takes the pair off the list. */
    assert_int_equal(
        e2e_rpc_ack(plans[0], provider, CV__ACK_STATE__ACK_STATE_DEFERRED), 0);
    e2e_get_json(E2E_DASHBOARD, 200, &r);
    assert_int_equal(
        cv_test_json_int(r.json, "outstanding_acknowledgement_count"),
        count_mid - 1);
    {
        json_t *it;
        size_t i;

        json_array_foreach(
            cv_test_json_get(r.json, "outstanding_acknowledgements"), i, it)
        {
            if (strcmp(cv_test_json_str(it, "plan_id"), plans[0]) == 0)
                fail_msg("acknowledged plan %s is still outstanding", plans[0]);
        }
    }
    cv_http_response_free(&r);

    /* The whole list equals the store's (retried when a write or a
     * minute boundary fell between the two reads). */
    for (int attempt = 0; attempt < 5 && !same; attempt++) {
        char *want = e2e_sql_text(E2E_OUTSTANDING_SQL, NULL), *got;

        e2e_get_json(E2E_DASHBOARD, 200, &r);
        got = e2e_outstanding_text(
            cv_test_json_get(r.json, "outstanding_acknowledgements"));
        same = strcmp(want, got) == 0;
        if (!same && attempt == 4)
            fail_msg("outstanding list differs from the store:\n got  %.600s"
                     "\n want %.600s",
                     got, want);
        free(want);
        free(got);
        cv_http_response_free(&r);
    }
}

/* Whether the dashboard's 24 hourly buckets are consecutive UTC hours
 * ending with the current one, each equal to COUNT(*) over its hour;
 * *last gets the last bucket's counts and start. */
static bool
e2e_hours_match(long long last[2], char *last_start, size_t len)
{
    cv_http_response r;
    json_t *hours, *it;
    size_t i;
    bool same = true;
    char *now_hour = e2e_sql_text(
        "SELECT to_char(date_trunc('hour', now() AT TIME ZONE 'UTC'), "
        "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
        NULL);

    e2e_get_json(E2E_DASHBOARD, 200, &r);
    hours = cv_test_json_get(r.json, "hourly_activity");
    assert_true(json_is_array(hours));
    assert_int_equal(json_array_size(hours), 24);
    json_array_foreach(hours, i, it)
    {
        const char *start = cv_test_json_str(it, "hour_start");
        long long acks = cv_test_json_int(it, "acknowledgement_count");
        long long failed = cv_test_json_int(it, "failed_delivery_count");

        /* Hour i starts (23 - i) hours before the current hour. */
        if (cv_test_count("SELECT extract(epoch FROM (date_trunc('hour', "
                          "now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') - "
                          "$1::timestamptz)::bigint",
                          start) != 3600L * (long)(23 - i))
            same = false;
        if (acks != cv_test_count("SELECT count(*) FROM acknowledgements "
                                  "WHERE acknowledged_at >= $1::timestamptz "
                                  "AND acknowledged_at < $1::timestamptz + "
                                  "interval '1 hour'",
                                  start) ||
            failed != cv_test_count("SELECT count(*) FROM delivery_attempts "
                                    "WHERE success = false AND created_at >= "
                                    "$1::timestamptz AND created_at < "
                                    "$1::timestamptz + interval '1 hour'",
                                    start))
            same = false;
        if (i == 23) {
            if (strcmp(start, now_hour) != 0)
                same = false;
            last[0] = acks;
            last[1] = failed;
            snprintf(last_start, len, "%s", start);
        }
    }
    cv_http_response_free(&r);
    free(now_hour);
    return same;
}

/* The hourly chart's counts: equal to the store's per hour, and our own
 * acknowledgements and failed deliveries land in the current hour. */
static void
test_read_side_hourly(void **state)
{
    char provider[64], plan[96];
    bool done = false;

    (void)state;
    snprintf(provider, sizeof(provider), "00%s-hour", e2e_tag);
    assert_int_equal(e2e_rpc_plan(provider, 0, plan, sizeof(plan)), 0);
    /* Retried only when the hour turned between the reads. */
    for (int attempt = 0; attempt < 5 && !done; attempt++) {
        long long before[2], after[2];
        char start_before[40], start_after[40];

        if (!e2e_hours_match(before, start_before, sizeof(start_before)))
            continue;
        /* Two acknowledgements, three failed and one good delivery. */
        assert_int_equal(
            e2e_rpc_ack(plan, provider, CV__ACK_STATE__ACK_STATE_ACKNOWLEDGED),
            0);
        assert_int_equal(
            e2e_rpc_ack(plan, provider, CV__ACK_STATE__ACK_STATE_ACCEPTED), 0);
        for (int k = 0; k < 3; k++)
            assert_int_equal(e2e_rpc_delivery(plan, provider, 0), 0);
        assert_int_equal(e2e_rpc_delivery(plan, provider, 1), 0);
        if (!e2e_hours_match(after, start_after, sizeof(start_after)) ||
            strcmp(start_before, start_after) != 0)
            continue;
        if (after[0] - before[0] != 2 || after[1] - before[1] != 3)
            fail_msg("the current hour gained %lld acknowledgements and %lld "
                     "failed deliveries, want 2 and 3",
                     after[0] - before[0], after[1] - before[1]);
        done = true;
    }
    assert_true(done);
}

/* ---- evidence stream -------------------------------------------------- */

typedef struct e2e_inserter {
    pthread_mutex_t mtx;
    int stop;
    int made;
    int code;
    char provider[64];
} e2e_inserter;

/* The writer of the paging test; global so that the teardown can stop it
 * when a failed assertion left the test early. */
static e2e_inserter e2e_live;
static pthread_t e2e_live_thread;
static int e2e_live_running;

/* Keeps recording plans until told to stop (one at a time, so ids and
 * commits come in the same order). */
static void *
e2e_inserter_main(void *arg)
{
    e2e_inserter *in = arg;
    char plan[96];

    for (;;) {
        int stop, rv;

        pthread_mutex_lock(&in->mtx);
        stop = in->stop;
        pthread_mutex_unlock(&in->mtx);
        if (stop)
            break;
        if ((rv = e2e_rpc_plan(in->provider, 0, plan, sizeof(plan))) != 0) {
            in->code = rv;
            break;
        }
        in->made++;
    }
    return NULL;
}

/* The position of the only plan event of plan_id, over HTTP. */
static long long
e2e_plan_position(const char *plan_id)
{
    cv_http_response r;
    char path[400];
    long long pos;

    snprintf(path, sizeof(path),
             E2E_STREAM "?kind=recovery_escalation_plan&plan_id=%s", plan_id);
    e2e_get_json(path, 200, &r);
    assert_int_equal(json_array_size(cv_test_json_get(r.json, "items")), 1);
    pos = cv_test_json_int(r.json, "items[0].position");
    cv_http_response_free(&r);
    return pos;
}

static void
e2e_live_start(const char *provider)
{
    memset(&e2e_live, 0, sizeof(e2e_live));
    pthread_mutex_init(&e2e_live.mtx, NULL);
    snprintf(e2e_live.provider, sizeof(e2e_live.provider), "%s", provider);
    pthread_create(&e2e_live_thread, NULL, e2e_inserter_main, &e2e_live);
    e2e_live_running = 1;
}

static void
e2e_live_stop(void)
{
    if (!e2e_live_running)
        return;
    pthread_mutex_lock(&e2e_live.mtx);
    e2e_live.stop = 1;
    pthread_mutex_unlock(&e2e_live.mtx);
    pthread_join(e2e_live_thread, NULL);
    pthread_mutex_destroy(&e2e_live.mtx);
    e2e_live_running = 0;
}

static void
test_read_side_pages_while_writing(void **state)
{
    char provider[64], marker[96], plan[96];
    long long marker_pos, top = -1, last = -1;
    long long *seen = NULL;
    size_t n_seen = 0, cap = 0;
    char cursor[128] = "", live[64];
    int pages = 0, done = 0;

    (void)state;
    snprintf(provider, sizeof(provider), "00%s-page", e2e_tag);
    assert_int_equal(e2e_rpc_plan(provider, 0, marker, sizeof(marker)), 0);
    marker_pos = e2e_plan_position(marker);
    for (int i = 0; i < 60; i++) {
        assert_int_equal(e2e_rpc_plan(provider, i % 3 == 0, plan, sizeof(plan)),
                         0);
        assert_int_equal(
            e2e_rpc_ack(plan, provider, CV__ACK_STATE__ACK_STATE_ACCEPTED), 0);
    }

    snprintf(live, sizeof(live), "00%s-live", e2e_tag);
    e2e_live_start(live);
    /* Walk from the newest event down past the marker, 7 per page. */
    while (!done) {
        cv_http_response r;
        char path[400];
        json_t *items, *it;
        size_t i;

        snprintf(path, sizeof(path), E2E_STREAM "?limit=7%s%s",
                 cursor[0] != '\0' ? "&cursor=" : "", cursor);
        e2e_get_json(path, 200, &r);
        items = cv_test_json_get(r.json, "items");
        if (json_array_size(items) == 0 || json_array_size(items) > 7)
            fail_msg("page %d has %zu items", pages, json_array_size(items));
        json_array_foreach(items, i, it)
        {
            long long pos = cv_test_json_int(it, "position");

            if (top < 0)
                top = pos;
            /* Strictly newest first, across pages too: no overlap. */
            if (last >= 0 && pos >= last)
                fail_msg("position %lld after %lld on page %d", pos, last,
                         pages);
            last = pos;
            if (pos < marker_pos) {
                done = 1;
                break;
            }
            if (n_seen == cap) {
                cap = cap ? cap * 2 : 256;
                seen = realloc(seen, cap * sizeof(*seen));
                assert_non_null(seen);
            }
            seen[n_seen++] = pos;
        }
        if (!done) {
            if (!json_is_string(cv_test_json_get(r.json, "next_cursor")))
                fail_msg("page %d: no next_cursor before the marker", pages);
            snprintf(cursor, sizeof(cursor), "%s",
                     cv_test_json_str(r.json, "next_cursor"));
        }
        cv_http_response_free(&r);
        pages++;
    }
    e2e_live_stop();
    assert_int_equal(e2e_live.code, 0);
    assert_true(e2e_live.made > 0);
    assert_true(pages >= 18);

    /* No skip: every event from the marker up to the first page's top is
     * there, exactly once. */
    {
        char sql[256];
        long expected;

        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM evidence_events WHERE id >= %lld AND "
                 "id <= %lld",
                 marker_pos, top);
        expected = cv_test_count(sql, NULL);
        assert_int_equal((long)n_seen, expected);
        assert_int_equal(seen[0], top);
        assert_int_equal(seen[n_seen - 1], marker_pos);
        /* Records did arrive while the walk went on (after its top). */
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM evidence_events e JOIN plan_routes r "
                 "ON r.plan_id = e.plan_id WHERE e.kind = "
                 "'recovery_escalation_plan' AND r.provider = $1 AND e.id > "
                 "%lld",
                 top);
        assert_true(cv_test_count(sql, live) > 0);
    }
    free(seen);
}

/* Collects every item of a filtered stream (following next_cursor);
 * returns the count and checks each item with want_* (NULL: any). */
static size_t
e2e_walk(const char *query, int limit, const char *want_kind,
         const char *want_plan, const char *want_provider)
{
    char cursor[128] = "";
    size_t total = 0;
    long long last = -1;

    for (;;) {
        cv_http_response r;
        char path[600];
        json_t *items, *it;
        size_t i;
        int more;

        snprintf(path, sizeof(path), E2E_STREAM "?%s&limit=%d%s%s", query,
                 limit, cursor[0] != '\0' ? "&cursor=" : "", cursor);
        e2e_get_json(path, 200, &r);
        items = cv_test_json_get(r.json, "items");
        assert_true(json_array_size(items) <= (size_t)limit);
        json_array_foreach(items, i, it)
        {
            long long pos = cv_test_json_int(it, "position");

            if (last >= 0 && pos >= last)
                fail_msg("%s: position %lld after %lld", query, pos, last);
            last = pos;
            if (want_kind != NULL &&
                strcmp(cv_test_json_str(it, "kind"), want_kind) != 0)
                fail_msg("%s: kind %s", query, cv_test_json_str(it, "kind"));
            if (want_plan != NULL &&
                strcmp(cv_test_json_str(it, "plan_id"), want_plan) != 0)
                fail_msg("%s: plan %s", query, cv_test_json_str(it, "plan_id"));
            if (want_provider != NULL &&
                strcmp(cv_test_json_str(it, "provider"), want_provider) != 0)
                fail_msg("%s: provider %s", query,
                         cv_test_json_str(it, "provider"));
            (void)cv_test_json_str(it, "record_id");
            (void)cv_test_json_str(it, "created_at");
            if (!json_is_object(cv_test_json_get(it, "record")))
                fail_msg("%s: record is not an object", query);
            total++;
        }
        more = json_is_string(cv_test_json_get(r.json, "next_cursor"));
        if (!more && !json_is_null(cv_test_json_get(r.json, "next_cursor")))
            fail_msg("%s: next_cursor is neither a string nor null", query);
        if (more)
            snprintf(cursor, sizeof(cursor), "%s",
                     cv_test_json_str(r.json, "next_cursor"));
        cv_http_response_free(&r);
        if (!more)
            break;
    }
    return total;
}

static void
test_read_side_filters(void **state)
{
    char provider[64], other[64], plan[96], plan2[96], query[400];
    cv_http_response r;

    (void)state;
    snprintf(provider, sizeof(provider), "00%s-filter", e2e_tag);
    snprintf(other, sizeof(other), "00%s-other", e2e_tag);
    assert_int_equal(e2e_rpc_plan(provider, 1, plan, sizeof(plan)), 0);
    assert_int_equal(e2e_rpc_plan(other, 0, plan2, sizeof(plan2)), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(
            e2e_rpc_ack(plan, provider, CV__ACK_STATE__ACK_STATE_DEFERRED), 0);
        assert_int_equal(e2e_rpc_delivery(plan, provider, i == 2), 0);
    }
    assert_int_equal(
        e2e_rpc_ack(plan2, other, CV__ACK_STATE__ACK_STATE_ACCEPTED), 0);

    /* plan_id alone: the plan, 3 acks, 3 deliveries; pages of 2. */
    snprintf(query, sizeof(query), "plan_id=%s", plan);
    assert_int_equal(e2e_walk(query, 2, NULL, plan, NULL), 7);
    assert_int_equal(e2e_walk(query, 500, NULL, plan, NULL), 7);
    /* Combined with kind and with provider. */
    snprintf(query, sizeof(query), "plan_id=%s&kind=recovery_escalation_ack",
             plan);
    assert_int_equal(
        e2e_walk(query, 2, "recovery_escalation_ack", plan, provider), 3);
    snprintf(query, sizeof(query), "plan_id=%s&kind=connector_delivery", plan);
    assert_int_equal(e2e_walk(query, 1, "connector_delivery", plan, provider),
                     3);
    snprintf(query, sizeof(query), "provider=%s", provider);
    assert_int_equal(e2e_walk(query, 4, NULL, plan, provider), 6);
    snprintf(query, sizeof(query),
             "provider=%s&kind=recovery_escalation_ack&plan_id=%s", provider,
             plan);
    assert_int_equal(
        e2e_walk(query, 50, "recovery_escalation_ack", plan, provider), 3);
    snprintf(query, sizeof(query), "provider=%s&plan_id=%s", other, plan);
    assert_int_equal(e2e_walk(query, 50, NULL, NULL, NULL), 0);
    /* Providers are normalised like on intake. */
    snprintf(query, sizeof(query), "provider=%%20%s%%20&plan_id=%s", other,
             plan2);
    assert_int_equal(e2e_walk(query, 50, NULL, plan2, other), 1);
    /* kind alone: newest first, only that kind. */
    e2e_get_json(E2E_STREAM "?kind=recovery_escalation_plan&limit=3", 200, &r);
    assert_int_equal(json_array_size(cv_test_json_get(r.json, "items")), 3);
    if (strcmp(cv_test_json_str(r.json, "items[0].kind"),
               "recovery_escalation_plan") != 0)
        fail_msg("kind filter returned %s",
                 cv_test_json_str(r.json, "items[0].kind"));
    assert_true(json_is_string(cv_test_json_get(r.json, "next_cursor")));
    cv_http_response_free(&r);
    /* The default page size is 50. */
    e2e_get_json(E2E_STREAM, 200, &r);
    assert_int_equal(json_array_size(cv_test_json_get(r.json, "items")), 50);
    assert_true(json_is_string(cv_test_json_get(r.json, "next_cursor")));
    assert_true(json_is_null(cv_test_json_get(r.json, "actor")));
    cv_http_response_free(&r);
    /* A plan that does not exist: an empty last page. */
    e2e_get_json(E2E_STREAM "?plan_id=gordackrecoveryesc-0000000000000000", 200,
                 &r);
    assert_int_equal(json_array_size(cv_test_json_get(r.json, "items")), 0);
    assert_true(json_is_null(cv_test_json_get(r.json, "next_cursor")));
    cv_http_response_free(&r);
}

static void
test_read_side_stream_errors(void **state)
{
    (void)state;
    e2e_expect_error(E2E_STREAM "?limit=0", 400,
                     "limit must be between 1 and 500");
    e2e_expect_error(E2E_STREAM "?limit=501", 400,
                     "limit must be between 1 and 500");
    e2e_expect_error(E2E_STREAM "?limit=-3", 400,
                     "limit must be between 1 and 500");
    e2e_expect_error(E2E_STREAM "?limit=ten", 400, "limit must be an integer");
    e2e_expect_error(E2E_STREAM "?limit=1.5", 400, "limit must be an integer");
    e2e_expect_error(E2E_STREAM "?cursor=abc", 400, "cursor is invalid");
    e2e_expect_error(E2E_STREAM "?cursor=djE6MA", 400, "cursor is invalid");
    e2e_expect_error(E2E_STREAM "?cursor=%27%3B--", 400, "cursor is invalid");
    e2e_expect_error(E2E_STREAM "?kind=plans", 400,
                     "kind must be one of recovery_escalation_plan, "
                     "connector_delivery, recovery_escalation_ack, "
                     "recovery_escalation_retry_plan, "
                     "executive_report_schedule_run");
    e2e_expect_error(E2E_STREAM "?provider=a%2Fb", 400,
                     "provider must use only a-z, 0-9, '.', '_' and '-'");
    {
        char path[400];

        snprintf(path, sizeof(path), E2E_STREAM "?plan_id=%0*d", 129, 7);
        e2e_expect_error(path, 400, "plan_id must be at most 128 characters");
    }
    /* Wrong method. */
    {
        cv_http_response r;

        assert_int_equal(cv_http_request("POST",
                                         cv_test_url(&e2e_stack, E2E_DASHBOARD),
                                         NULL, "{}", NULL, &r),
                         0);
        assert_int_equal(r.status, 405);
        cv_http_response_free(&r);
    }
}

/* ---- trace ------------------------------------------------------------ */

static void
test_read_side_trace_order(void **state)
{
    static const char *const kinds[] = {
        "recovery_escalation_plan",
        "connector_delivery",
        "connector_delivery",
        "recovery_escalation_ack",
        "recovery_escalation_retry_plan",
        "executive_report_schedule_run",
    };
    char provider[64], plan[96], other[96], retry_id[96], run_id[96];
    char sid[96], path[512];
    cv_http_response r;
    json_t *items, *it;
    long long last = -1;
    int64_t retryable = 0;
    int over_all;
    size_t i;

    (void)state;
    snprintf(provider, sizeof(provider), "00%s-trace", e2e_tag);
    assert_int_equal(e2e_rpc_plan(provider, 1, plan, sizeof(plan)), 0);
    /* Another plan with a failure, so a retry plan over every plan holds
     * decisions that do not name ours. */
    assert_int_equal(e2e_rpc_plan(provider, 0, other, sizeof(other)), 0);
    assert_int_equal(e2e_rpc_delivery(other, provider, 0), 0);
    assert_int_equal(e2e_rpc_delivery(plan, provider, 0), 0);
    assert_int_equal(e2e_rpc_delivery(plan, provider, 0), 0);
    assert_int_equal(
        e2e_rpc_ack(plan, provider, CV__ACK_STATE__ACK_STATE_ESCALATED), 0);
    /* Over every plan when the store is small enough for one reply;
     * otherwise over ours only. */
    over_all =
        e2e_rpc_retry_plan(NULL, &retryable, retry_id, sizeof(retry_id)) == 0;
    if (!over_all)
        assert_int_equal(
            e2e_rpc_retry_plan(plan, &retryable, retry_id, sizeof(retry_id)),
            0);
    snprintf(sid, sizeof(sid), "rs-%s-trace", e2e_tag);
    assert_int_equal(e2e_rpc_run(sid, run_id, sizeof(run_id)), 0);

    snprintf(path, sizeof(path), P "/recovery-escalations/%s/trace", plan);
    e2e_get_json(path, 200, &r);
    if (strcmp(cv_test_json_str(r.json, "plan_id"), plan) != 0)
        fail_msg("trace of %s says plan_id %s", plan,
                 cv_test_json_str(r.json, "plan_id"));
    items = cv_test_json_get(r.json, "items");
    if (json_array_size(items) != 6)
        fail_msg("trace has %zu items: %s", json_array_size(items), r.body);
    json_array_foreach(items, i, it)
    {
        long long pos = cv_test_json_int(it, "position");

        if (strcmp(cv_test_json_str(it, "kind"), kinds[i]) != 0)
            fail_msg("trace item %zu is %s, expected %s", i,
                     cv_test_json_str(it, "kind"), kinds[i]);
        if (pos <= last)
            fail_msg("trace item %zu at %lld after %lld", i, pos, last);
        last = pos;
        (void)cv_test_json_str(it, "created_at");
        if (!json_is_object(cv_test_json_get(it, "record")))
            fail_msg("trace item %zu has no record", i);
    }
    if (strcmp(cv_test_json_str(items, "[0].record_id"), plan) != 0 ||
        strcmp(cv_test_json_str(items, "[0].record.plan_id"), plan) != 0)
        fail_msg("first trace item is not the plan");
    if (strcmp(cv_test_json_str(items, "[1].record.plan_id"), plan) != 0 ||
        strncmp(cv_test_json_str(items, "[1].record_id"), "rcd-", 4) != 0)
        fail_msg("second trace item is not a delivery of the plan");
    if (strcmp(cv_test_json_str(items, "[3].record.acknowledgement_state"),
               "escalated") != 0)
        fail_msg("fourth trace item is not the acknowledgement");
    if (strcmp(cv_test_json_str(items, "[4].record_id"), retry_id) != 0)
        fail_msg("fifth trace item is not the retry plan %s", retry_id);
    if (strcmp(cv_test_json_str(items, "[5].record_id"), run_id) != 0)
        fail_msg("last trace item is not the report run %s", run_id);
    /* The retry plan is shown with the decisions that name this plan. */
    {
        json_t *ds = cv_test_json_get(items, "[4].record.retry_decisions");
        json_t *d;
        size_t k;

        assert_true(json_array_size(ds) >= 1);
        json_array_foreach(ds, k, d)
        {
            if (strcmp(cv_test_json_str(d, "plan_id"), plan) != 0)
                fail_msg("trace retry plan names %s",
                         cv_test_json_str(d, "plan_id"));
        }
        if (over_all)
            assert_true(cv_test_json_int(items, "[4].record.decision_count") >
                        (long long)json_array_size(ds));
    }
    assert_true(json_is_null(cv_test_json_get(r.json, "next_cursor")));
    cv_http_response_free(&r);

    /* In pages of two, with the same order and nothing lost. */
    {
        char cursor[128] = "";
        size_t seen = 0;

        for (int page = 0; page < 5; page++) {
            snprintf(path, sizeof(path),
                     P "/recovery-escalations/%s/trace?limit=2%s%s", plan,
                     cursor[0] != '\0' ? "&cursor=" : "", cursor);
            e2e_get_json(path, 200, &r);
            items = cv_test_json_get(r.json, "items");
            json_array_foreach(items, i, it)
            {
                if (strcmp(cv_test_json_str(it, "kind"), kinds[seen]) != 0)
                    fail_msg("paged trace item %zu is %s", seen,
                             cv_test_json_str(it, "kind"));
                seen++;
            }
            if (!json_is_string(cv_test_json_get(r.json, "next_cursor"))) {
                cv_http_response_free(&r);
                break;
            }
            snprintf(cursor, sizeof(cursor), "%s",
                     cv_test_json_str(r.json, "next_cursor"));
            cv_http_response_free(&r);
        }
        assert_int_equal(seen, 6);
    }
    /* The other plan's trace does not hold our deliveries or ack. */
    snprintf(path, sizeof(path), P "/recovery-escalations/%s/trace", other);
    e2e_get_json(path, 200, &r);
    json_array_foreach(cv_test_json_get(r.json, "items"), i, it)
    {
        if (strcmp(cv_test_json_str(it, "kind"), "connector_delivery") == 0 ||
            strcmp(cv_test_json_str(it, "kind"), "recovery_escalation_plan") ==
                0)
            if (strcmp(cv_test_json_str(it, "plan_id"), other) != 0)
                fail_msg("the other plan's trace holds %s",
                         cv_test_json_str(it, "record_id"));
        if (strcmp(cv_test_json_str(it, "kind"), "recovery_escalation_ack") ==
            0)
            fail_msg("the other plan's trace holds an acknowledgement");
    }
    cv_http_response_free(&r);
}

static void
test_read_side_trace_errors(void **state)
{
    char path[512];

    (void)state;
    e2e_expect_error(P "/recovery-escalations/"
                       "gordackrecoveryesc-0000000000000000/trace",
                     404, E2E_NOT_FOUND);
    snprintf(path, sizeof(path), P "/recovery-escalations/%0*d/trace", 200, 1);
    e2e_expect_error(path, 404, E2E_NOT_FOUND);
    {
        char provider[64], plan[96];

        snprintf(provider, sizeof(provider), "00%s-trerr", e2e_tag);
        assert_int_equal(e2e_rpc_plan(provider, 0, plan, sizeof(plan)), 0);
        snprintf(path, sizeof(path),
                 P "/recovery-escalations/%s/trace?cursor=nope", plan);
        e2e_expect_error(path, 400, "cursor is invalid");
        snprintf(path, sizeof(path), P "/recovery-escalations/%s/trace?limit=0",
                 plan);
        e2e_expect_error(path, 400, "limit must be between 1 and 500");
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_side_dashboard_exact),
        cmocka_unit_test(test_read_side_outstanding),
        cmocka_unit_test(test_read_side_hourly),
        cmocka_unit_test(test_read_side_pages_while_writing),
        cmocka_unit_test(test_read_side_filters),
        cmocka_unit_test(test_read_side_stream_errors),
        cmocka_unit_test(test_read_side_trace_order),
        cmocka_unit_test(test_read_side_trace_errors),
    };

    return cmocka_run_group_tests_name("read_side", tests, e2e_setup,
                                       e2e_teardown);
}
