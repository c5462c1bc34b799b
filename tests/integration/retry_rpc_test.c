/*
 * retry_rpc_test.c -- integration tests of the retry-planning service: the
 * real cavra-ack and cavra-retry processes against the real PostgreSQL,
 * called over NNG with the RPC client (no gateway).
 *
 * Needs CAVRA_DATABASE_URL pointing at a migrated database (scripts/test.sh
 * sets it). The group setup starts cavra-ack (to record plans and
 * acknowledgements) and cavra-retry on private ipc:// sockets; the
 * teardown stops them and requires a clean exit. Every test makes its own
 * plans and asks for retry plans limited to them (plan_id), so tests do not
 * depend on each other or on what else the shared database holds; "nothing
 * was stored" checks compare whole-table counts, which is safe because
 * ctest runs this test serially.
 *
 * The streak query's cost is checked against 100,000 attempts inserted
 * inside a transaction that is rolled back, so the database keeps nothing.
 *
 * Run: ctest -R integration.retry_rpc, or the binary alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ack.pb-c.h"
#include "cv_rpc.h"
#include "cv_test_api.h"
#include "cv_time.h"
#include "retry.pb-c.h"
#include "retry_sql.h"

#define IT_NOT_FOUND "recovery escalation plan not found"
#define IT_ELIGIBLE  "failed recovery escalation delivery is eligible for retry"
#define IT_NO_CODE   (-1)
#define IT_MIN_US    60000000LL

static cv_test_stack it_stack;
static cv_rpc_client *it_ack_cli, *it_retry_cli;

/* ---- helpers ---------------------------------------------------------- */

/* RFC 3339 text of now minus `minutes` (may be fractional). */
static const char *
it_ago(double minutes, char buf[CV_TIME_MAX])
{
    cv_time_format(cv_now_us() - (int64_t)(minutes * (double)IT_MIN_US), buf);
    return buf;
}

/* Records a plan routing to the given providers; returns its plan_id
 * (caller frees). */
static char *
it_record_plan(const char *const *providers, size_t n)
{
    Cv__EscalationRoute routes[8];
    Cv__RecordPlanReply *rep;
    char *id;

    assert_true(n >= 1 && n <= 8);
    for (size_t i = 0; i < n; i++) {
        cv__escalation_route__init(&routes[i]);
        routes[i].provider = (char *)providers[i];
    }
    rep = cv_test_record_plan_rpc(it_ack_cli, "integration-test", routes, n,
                                  NULL);
    id = strdup(rep->plan->plan_id);
    protobuf_c_message_free_unpacked(&rep->base, NULL);
    return id;
}

/* Records one delivery attempt completed `ago` minutes ago (started one
 * minute before). status IT_NO_CODE: none. Returns the reply (free it). */
static Cv__RecordDeliveryReply *
it_delivery_opts(const char *plan_id, const char *provider, bool success,
                 int status, double ago, const cv_rpc_call_opts *opts)
{
    Cv__RecordDeliveryRequest req = CV__RECORD_DELIVERY_REQUEST__INIT;
    ProtobufCMessage *rep = NULL;
    char started[CV_TIME_MAX], completed[CV_TIME_MAX];
    cv_error err;

    req.plan_id = (char *)plan_id;
    req.provider = (char *)provider;
    req.has_success = 1;
    req.success = success;
    if (status != IT_NO_CODE) {
        req.has_status_code = 1;
        req.status_code = status;
    }
    req.started_at = (char *)it_ago(ago + 1, started);
    req.completed_at = (char *)it_ago(ago, completed);
    cv_error_clear(&err);
    CV_TEST_PASS(cv_rpc_call(it_retry_cli, "retry.RecordDelivery", &req.base,
                             &cv__record_delivery_reply__descriptor, &rep, opts,
                             &err),
                 err);
    assert_non_null(rep);
    assert_non_null(((Cv__RecordDeliveryReply *)rep)->delivery);
    return (Cv__RecordDeliveryReply *)rep;
}

static void
it_delivery(const char *plan_id, const char *provider, bool success, int status,
            double ago)
{
    Cv__RecordDeliveryReply *r =
        it_delivery_opts(plan_id, provider, success, status, ago, NULL);

    protobuf_c_message_free_unpacked(&r->base, NULL);
}

/* Plans retries for plan_id (NULL: all) with policy (may be NULL). */
static Cv__RetryPlanReply *
it_plan(const char *plan_id, Cv__RetryPolicy *policy,
        const cv_rpc_call_opts *opts)
{
    Cv__RetryPlanRequest req = CV__RETRY_PLAN_REQUEST__INIT;
    ProtobufCMessage *rep = NULL;
    cv_error err;

    req.plan_id = (char *)plan_id;
    req.retry_policy = policy;
    cv_error_clear(&err);
    CV_TEST_PASS(cv_rpc_call(it_retry_cli, "retry.PlanRetries", &req.base,
                             &cv__retry_plan_reply__descriptor, &rep, opts,
                             &err),
                 err);
    assert_non_null(rep);
    assert_non_null(((Cv__RetryPlanReply *)rep)->plan);
    return (Cv__RetryPlanReply *)rep;
}

static const Cv__RetryDecision *
it_find(const Cv__RetryPlan *p, const char *provider)
{
    for (size_t i = 0; i < p->n_retry_decisions; i++)
        if (strcmp(p->retry_decisions[i]->provider, provider) == 0)
            return p->retry_decisions[i];
    return NULL;
}

static void
it_assert_decision(const Cv__RetryPlan *p, const char *provider, int action,
                   const char *reason, int64_t count)
{
    const Cv__RetryDecision *d = it_find(p, provider);

    if (d == NULL)
        fail_msg("no decision for %s", provider);
    if ((int)d->action != action || strcmp(d->reason, reason) != 0 ||
        d->retry_count != count)
        fail_msg("%s: action %d \"%s\" count %lld, expected %d \"%s\" %lld",
                 provider, d->action, d->reason, (long long)d->retry_count,
                 action, reason, (long long)count);
}

/* ---- setup ------------------------------------------------------------ */

static int
it_setup(void **state)
{
    (void)state;
    return cv_test_stack_start_clients(&it_stack, CV_STACK_ACK | CV_STACK_RETRY,
                                       &it_ack_cli, &it_retry_cli, NULL);
}

static int
it_teardown(void **state)
{
    (void)state;
    return cv_test_stack_stop_clients(&it_stack, &it_ack_cli, &it_retry_cli,
                                      NULL);
}

/* ---- tests ------------------------------------------------------------ */

static void
test_retry_rpc_health(void **state)
{
    (void)state;
    cv_test_assert_health(it_retry_cli, "retry");
}

static void
test_retry_rpc_delivery_stored(void **state)
{
    static const char *const provs[] = {"slack", "jira"};
    Cv__RecordDeliveryRequest req = CV__RECORD_DELIVERY_REQUEST__INIT;
    cv_rpc_call_opts opts = {.request_id = NULL};
    ProtobufCMessage *rep = NULL;
    Cv__DeliveryRecord *d;
    cv_test_counts before, after;
    char rid[40], sql[512];
    cv_error err;
    char *pid;

    (void)state;
    pid = it_record_plan(provs, 2);
    cv_test_counts_snapshot(&before);
    cv_rpc_new_request_id(rid, sizeof(rid));
    opts.request_id = rid;
    req.plan_id = pid;
    req.provider = " JIRA ";
    req.has_success = 1;
    req.success = 0;
    req.has_status_code = 1;
    req.status_code = 503;
    req.has_attempt_count = 1;
    req.attempt_count = 3;
    req.started_at = "2025-11-27T07:29:23+02:00";
    req.completed_at = "2025-11-27T05:30:23Z";
    req.error = "timeout calling https://ops:pw@hooks.example.com/h?sig=abc";
    cv_error_clear(&err);
    CV_TEST_PASS(cv_rpc_call(it_retry_cli, "retry.RecordDelivery", &req.base,
                             &cv__record_delivery_reply__descriptor, &rep,
                             &opts, &err),
                 err);
    d = ((Cv__RecordDeliveryReply *)rep)->delivery;
    cv_test_assert_id(d->delivery_id, "rcd-");
    assert_string_equal(d->plan_id, pid);
    assert_string_equal(d->provider, "jira");
    assert_false(d->delivery_success);
    assert_int_equal(d->n_status_codes, 1);
    assert_int_equal(d->status_codes[0], 503);
    assert_int_equal(d->attempt_count, 3);
    assert_string_equal(d->started_at, "2025-11-27T05:29:23.000000Z");
    assert_string_equal(d->completed_at, "2025-11-27T05:30:23.000000Z");
    assert_string_equal(d->connector_delivery_source,
                        "go_backend_rollback_drill_acknowledgement_audit_"
                        "recovery_escalation");
    assert_string_equal(d->metadata_kind, "release-connector-delivery");
    assert_null(strstr(d->error, "pw@"));
    assert_null(strstr(d->error, "sig=abc"));
    assert_true(d->redaction_count >= 1);
    assert_null(((Cv__RecordDeliveryReply *)rep)->actor);

    /* One row (attempt_at = completed_at) and one evidence event. */
    assert_int_equal(
        cv_test_count(
            "SELECT count(*) FROM delivery_attempts WHERE delivery_id = "
            "$1 AND provider = 'jira' AND NOT success AND status_code = "
            "503 AND attempt_count = 3 AND attempt_at = "
            "'2025-11-27T05:30:23Z' AND started_at = "
            "'2025-11-27T05:29:23Z' AND EXISTS (SELECT 1 FROM "
            "evidence_events e WHERE e.kind = 'connector_delivery' AND "
            "e.record_id = $1 AND e.record->>'delivery_id' = $1)",
            d->delivery_id),
        1);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM evidence_events WHERE kind = "
             "'connector_delivery' AND record_id = $1 AND provider = 'jira' "
             "AND request_id = '%s' AND plan_id = '%s'",
             rid, pid);
    assert_int_equal(cv_test_count(sql, d->delivery_id), 1);
    cv_test_counts_snapshot(&after);
    assert_int_equal(after.deliveries, before.deliveries + 1);
    assert_int_equal(after.events, before.events + 1);
    assert_int_equal(after.retry_plans, before.retry_plans);
    protobuf_c_message_free_unpacked(rep, NULL);

    /* Without times: attempt_at is created_at; no status: NULL, []. */
    cv__record_delivery_request__init(&req);
    req.plan_id = pid;
    req.provider = "slack";
    req.has_success = 1;
    req.success = 1;
    cv_error_clear(&err);
    CV_TEST_PASS(cv_rpc_call(it_retry_cli, "retry.RecordDelivery", &req.base,
                             &cv__record_delivery_reply__descriptor, &rep, NULL,
                             &err),
                 err);
    d = ((Cv__RecordDeliveryReply *)rep)->delivery;
    assert_int_equal(d->n_status_codes, 0);
    assert_int_equal(d->attempt_count, 1);
    assert_int_equal(
        cv_test_count(
            "SELECT count(*) FROM delivery_attempts WHERE delivery_id = "
            "$1 AND success AND status_code IS NULL AND attempt_at = "
            "created_at AND started_at IS NULL AND completed_at IS NULL",
            d->delivery_id),
        1);
    protobuf_c_message_free_unpacked(rep, NULL);
    free(pid);
}

static void
test_retry_rpc_delivery_rejected(void **state)
{
    static const char *const provs[] = {"slack", "jira"};
    Cv__RecordDeliveryRequest req = CV__RECORD_DELIVERY_REQUEST__INIT;
    const ProtobufCMessageDescriptor *rd =
        &cv__record_delivery_reply__descriptor;
    char longid[300], err_text[502];
    char *pid;

    (void)state;
    pid = it_record_plan(provs, 2);
    req.plan_id = pid;
    cv_test_rpc_expect_error(it_retry_cli, "retry.RecordDelivery", &req.base,
                             rd, CV_INVALID_ARGUMENT, "provider is required");
    req.provider = "slack";
    cv_test_rpc_expect_error(it_retry_cli, "retry.RecordDelivery", &req.base,
                             rd, CV_INVALID_ARGUMENT, "success is required");
    req.has_success = 1;
    req.has_status_code = 1;
    req.status_code = 600;
    cv_test_rpc_expect_error(it_retry_cli, "retry.RecordDelivery", &req.base,
                             rd, CV_INVALID_ARGUMENT,
                             "status_code must be between 0 and 599");
    req.status_code = -1;
    cv_test_rpc_expect_error(it_retry_cli, "retry.RecordDelivery", &req.base,
                             rd, CV_INVALID_ARGUMENT,
                             "status_code must be between 0 and 599");
    req.status_code = 500;
    req.has_attempt_count = 1;
    req.attempt_count = 0;
    cv_test_rpc_expect_error(it_retry_cli, "retry.RecordDelivery", &req.base,
                             rd, CV_INVALID_ARGUMENT,
                             "attempt_count must be between 1 and 1000");
    req.attempt_count = 2;
    req.started_at = "not a time";
    cv_test_rpc_expect_error(it_retry_cli, "retry.RecordDelivery", &req.base,
                             rd, CV_INVALID_ARGUMENT,
                             "started_at must be an RFC 3339 timestamp");
    req.started_at = "2025-11-27T05:30:00Z";
    req.completed_at = "2025-11-27";
    cv_test_rpc_expect_error(it_retry_cli, "retry.RecordDelivery", &req.base,
                             rd, CV_INVALID_ARGUMENT,
                             "completed_at must be an RFC 3339 timestamp");
    req.completed_at = "2025-11-27T05:29:59Z";
    cv_test_rpc_expect_error(it_retry_cli, "retry.RecordDelivery", &req.base,
                             rd, CV_INVALID_ARGUMENT,
                             "completed_at must not be before started_at");
    req.completed_at = "2025-11-27T05:30:01Z";
    memset(err_text, 'e', 501);
    err_text[501] = '\0';
    req.error = err_text;
    cv_test_rpc_expect_error(it_retry_cli, "retry.RecordDelivery", &req.base,
                             rd, CV_INVALID_ARGUMENT,
                             "error must be at most 500 characters");
    req.error = NULL;

    /* The store: a provider the plan does not route, unknown plans. */
    req.provider = "Teams";
    {
        char msg[300];

        snprintf(msg, sizeof(msg),
                 "provider teams is not routed by recovery escalation plan "
                 "%s; the plan's providers are jira, slack",
                 pid);
        cv_test_rpc_expect_error(it_retry_cli, "retry.RecordDelivery",
                                 &req.base, rd, CV_INVALID_ARGUMENT, msg);
    }
    req.provider = "slack";
    req.plan_id = "gordackrecoveryesc-0000000000000000";
    cv_test_rpc_expect_error(it_retry_cli, "retry.RecordDelivery", &req.base,
                             rd, CV_NOT_FOUND, IT_NOT_FOUND);
    req.plan_id = NULL;
    cv_test_rpc_expect_error(it_retry_cli, "retry.RecordDelivery", &req.base,
                             rd, CV_NOT_FOUND, IT_NOT_FOUND);
    memset(longid, 'a', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    req.plan_id = longid;
    cv_test_rpc_expect_error(it_retry_cli, "retry.RecordDelivery", &req.base,
                             rd, CV_NOT_FOUND, IT_NOT_FOUND);
    req.plan_id = "x' OR '1'='1";
    cv_test_rpc_expect_error(it_retry_cli, "retry.RecordDelivery", &req.base,
                             rd, CV_NOT_FOUND, IT_NOT_FOUND);
    free(pid);
}

static void
test_retry_rpc_plan_decisions(void **state)
{
    static const char *const provs[] = {"slack",     "jira",    "teams",
                                        "pagerduty", "webhook", "servicenow",
                                        "opsgenie"};
    cv_rpc_call_opts opts = {.request_id = NULL};
    Cv__RetryPlanReply *rep;
    const Cv__RetryPlan *p;
    cv_test_counts before, after;
    char rid[40], sql[512];
    char *pid;

    (void)state;
    pid = it_record_plan(provs, 7);
    /* slack: two 500s long ago -> retry (delay 30 has passed). */
    it_delivery(pid, "slack", false, 500, 120);
    it_delivery(pid, "slack", false, 502, 90);
    /* jira: a 503 a minute ago -> wait 15 minutes. */
    it_delivery(pid, "jira", false, 503, 1);
    /* teams: a 404 -> suppressed. */
    it_delivery(pid, "teams", false, 404, 30);
    /* pagerduty: failures, then a success -> no decision. */
    it_delivery(pid, "pagerduty", false, 500, 50);
    it_delivery(pid, "pagerduty", false, 500, 40);
    it_delivery(pid, "pagerduty", true, 200, 30);
    /* webhook: failures, success, one failure -> count 1, retry. */
    it_delivery(pid, "webhook", false, 500, 100);
    it_delivery(pid, "webhook", false, 500, 90);
    it_delivery(pid, "webhook", true, 200, 80);
    it_delivery(pid, "webhook", false, 0, 70);
    /* servicenow: a 500, acknowledged resolved -> suppressed. */
    it_delivery(pid, "servicenow", false, 500, 60);
    cv_test_ack_rpc(it_ack_cli, pid, "servicenow", "alice",
                    CV__ACK_STATE__ACK_STATE_RESOLVED, NULL, NULL);
    /* opsgenie: three failures -> the default cap of 3. */
    it_delivery(pid, "opsgenie", false, 500, 300);
    it_delivery(pid, "opsgenie", false, 500, 200);
    it_delivery(pid, "opsgenie", false, 429, 100);

    cv_test_counts_snapshot(&before);
    cv_rpc_new_request_id(rid, sizeof(rid));
    opts.request_id = rid;
    rep = it_plan(pid, NULL, &opts);
    p = rep->plan;
    cv_test_assert_id(p->retry_plan_id, "gordackrecoveryescretry-");
    assert_string_equal(p->schema_version,
                        "cavra.go-backend-pilot.rollback-drill-"
                        "acknowledgement-audit-delivery-recovery-escalation-"
                        "delivery-retry-plan.v1");
    assert_string_equal(p->generated_by, "console");
    assert_string_equal(p->plan_id, pid);
    assert_int_equal(p->alert_level, CV__ALERT_LEVEL__ALERT_LEVEL_CRITICAL);
    assert_int_equal(p->decision_count, 6);
    assert_int_equal(p->retryable_count, 2);
    assert_int_equal(p->waiting_count, 1);
    assert_int_equal(p->suppressed_count, 3);
    assert_int_equal(p->max_retry_attempts, 3);
    assert_true(p->base_retry_delay_minutes == 15.0);
    assert_false(p->allow_immediate_retry);
    assert_true(p->backoff_multiplier == 2.0);
    /* Sorted by provider within the plan. */
    assert_int_equal(p->n_retry_decisions, 6);
    assert_string_equal(p->retry_decisions[0]->provider, "jira");
    assert_string_equal(p->retry_decisions[1]->provider, "opsgenie");
    assert_string_equal(p->retry_decisions[2]->provider, "servicenow");
    assert_string_equal(p->retry_decisions[3]->provider, "slack");
    assert_string_equal(p->retry_decisions[4]->provider, "teams");
    assert_string_equal(p->retry_decisions[5]->provider, "webhook");
    it_assert_decision(p, "slack", CV__RETRY_ACTION__RETRY_ACTION_RETRY,
                       IT_ELIGIBLE, 2);
    it_assert_decision(p, "jira", CV__RETRY_ACTION__RETRY_ACTION_WAIT,
                       "retry delay 15 minutes has not elapsed", 1);
    it_assert_decision(p, "teams", CV__RETRY_ACTION__RETRY_ACTION_SUPPRESS,
                       "status 404 is not retryable", 1);
    it_assert_decision(p, "servicenow", CV__RETRY_ACTION__RETRY_ACTION_SUPPRESS,
                       "acknowledgement state resolved closes the escalation",
                       1);
    it_assert_decision(p, "webhook", CV__RETRY_ACTION__RETRY_ACTION_RETRY,
                       IT_ELIGIBLE, 1);
    it_assert_decision(p, "opsgenie", CV__RETRY_ACTION__RETRY_ACTION_SUPPRESS,
                       "maximum retry attempts 3 reached", 3);
    assert_null(it_find(p, "pagerduty"));
    {
        const Cv__RetryDecision *d = it_find(p, "slack");

        assert_int_equal(d->n_failed_status_codes, 2);
        assert_int_equal(d->failed_status_codes[0], 500);
        assert_int_equal(d->failed_status_codes[1], 502);
        assert_true(d->retry_delay_minutes == 30.0);
        assert_false(d->has_acknowledgement_state);
        cv_test_assert_id(d->latest_delivery_id, "rcd-");
        /* The latest failure is the 502. */
        assert_int_equal(
            cv_test_count("SELECT count(*) FROM delivery_attempts "
                          "WHERE delivery_id = $1 AND status_code = "
                          "502",
                          d->latest_delivery_id),
            1);
        d = it_find(p, "webhook");
        assert_int_equal(d->n_failed_status_codes, 1);
        assert_int_equal(d->failed_status_codes[0], 0);
        d = it_find(p, "servicenow");
        assert_true(d->has_acknowledgement_state);
        assert_int_equal(d->acknowledgement_state,
                         CV__ACK_STATE__ACK_STATE_RESOLVED);
        d = it_find(p, "opsgenie");
        assert_int_equal(d->n_failed_status_codes, 3);
        assert_int_equal(d->failed_status_codes[2], 429);
    }
    /* Metadata. */
    assert_non_null(rep->metadata);
    assert_string_equal(rep->metadata->metadata_kind,
                        "go-backend-rollback-drill-acknowledgement-audit-"
                        "delivery-recovery-escalation-delivery-retry-plan");
    assert_string_equal(rep->metadata->session_id, p->retry_plan_id);
    assert_string_equal(rep->metadata->signer,
                        "cavra-recovery/retry-planning-service");
    assert_string_equal(
        rep->metadata->recovery_escalation_delivery_retry_plan->retry_plan_id,
        p->retry_plan_id);

    /* Stored: the plan row, one row per decision, one evidence event. */
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM retry_plans WHERE retry_plan_id = $1 AND "
             "plan_id = '%s' AND decision_count = 6 AND retryable_count = 2 "
             "AND waiting_count = 1 AND suppressed_count = 3 AND alert_level "
             "= 'critical' AND generated_by = 'console' AND request_id = '%s' "
             "AND EXISTS (SELECT 1 FROM evidence_events e WHERE e.kind = "
             "'recovery_escalation_retry_plan' AND e.record_id = $1 AND "
             "e.record->>'retry_plan_id' = $1)",
             pid, rid);
    assert_int_equal(cv_test_count(sql, p->retry_plan_id), 1);
    assert_int_equal(cv_test_count("SELECT count(*) FROM retry_decisions WHERE "
                                   "retry_plan_id = $1",
                                   p->retry_plan_id),
                     6);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM retry_decisions WHERE retry_plan_id = $1 "
             "AND plan_id = '%s' AND ((provider = 'slack' AND action = "
             "'retry') OR (provider = 'jira' AND action = 'wait') OR "
             "(provider = 'teams' AND action = 'suppress'))",
             pid);
    assert_int_equal(cv_test_count(sql, p->retry_plan_id), 3);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM evidence_events WHERE kind = "
             "'recovery_escalation_retry_plan' AND record_id = $1 AND "
             "plan_id = '%s' AND provider IS NULL AND actor = 'console' AND "
             "request_id = '%s' AND "
             "jsonb_array_length(record->'retry_decisions') = 6",
             pid, rid);
    assert_int_equal(cv_test_count(sql, p->retry_plan_id), 1);
    cv_test_counts_snapshot(&after);
    assert_int_equal(after.retry_plans, before.retry_plans + 1);
    assert_int_equal(after.decisions, before.decisions + 6);
    assert_int_equal(after.events, before.events + 1);
    assert_int_equal(after.deliveries, before.deliveries);
    protobuf_c_message_free_unpacked(&rep->base, NULL);
    free(pid);
}

/* Attempt time, not recording order, decides; ties go by recording order;
 * later acknowledgements change the decision. */
static void
test_retry_rpc_plan_ordering(void **state)
{
    static const char *const provs[] = {"a", "b", "c", "d"};
    Cv__RetryPlanReply *rep;
    char *pid;

    (void)state;
    pid = it_record_plan(provs, 4);
    /* a: a failure at -10, then a success recorded later but at -20. */
    it_delivery(pid, "a", false, 500, 10);
    it_delivery(pid, "a", true, 200, 20);
    /* b: a success at -10, then a failure recorded later at -20. */
    it_delivery(pid, "b", true, 200, 10);
    it_delivery(pid, "b", false, 500, 20);
    /* c and d: the same time; c failure then success, d the reverse. */
    {
        Cv__RecordDeliveryRequest req = CV__RECORD_DELIVERY_REQUEST__INIT;
        ProtobufCMessage *r = NULL;
        char at[CV_TIME_MAX];
        cv_error err;
        const struct {
            const char *prov;
            bool ok;
        } seq[] = {{"c", false}, {"c", true}, {"d", true}, {"d", false}};

        it_ago(5, at);
        req.plan_id = pid;
        req.completed_at = at;
        req.has_success = 1;
        for (size_t i = 0; i < 4; i++) {
            req.provider = (char *)seq[i].prov;
            req.success = seq[i].ok;
            cv_error_clear(&err);
            CV_TEST_PASS(cv_rpc_call(it_retry_cli, "retry.RecordDelivery",
                                     &req.base,
                                     &cv__record_delivery_reply__descriptor, &r,
                                     NULL, &err),
                         err);
            protobuf_c_message_free_unpacked(r, NULL);
        }
    }
    rep = it_plan(pid, NULL, NULL);
    assert_int_equal(rep->plan->decision_count, 2);
    it_assert_decision(rep->plan, "a", CV__RETRY_ACTION__RETRY_ACTION_WAIT,
                       "retry delay 15 minutes has not elapsed", 1);
    assert_null(it_find(rep->plan, "b"));
    assert_null(it_find(rep->plan, "c"));
    it_assert_decision(rep->plan, "d", CV__RETRY_ACTION__RETRY_ACTION_WAIT,
                       "retry delay 15 minutes has not elapsed", 1);
    assert_int_equal(rep->plan->alert_level,
                     CV__ALERT_LEVEL__ALERT_LEVEL_WARNING);
    protobuf_c_message_free_unpacked(&rep->base, NULL);

    /* Dismissing a: suppressed; re-opening (a later ack) un-suppresses. */
    cv_test_ack_rpc(it_ack_cli, pid, "a", "alice",
                    CV__ACK_STATE__ACK_STATE_DISMISSED, NULL, NULL);
    rep = it_plan(pid, NULL, NULL);
    it_assert_decision(rep->plan, "a", CV__RETRY_ACTION__RETRY_ACTION_SUPPRESS,
                       "acknowledgement state dismissed closes the escalation",
                       1);
    protobuf_c_message_free_unpacked(&rep->base, NULL);
    cv_test_ack_rpc(it_ack_cli, pid, "a", "alice",
                    CV__ACK_STATE__ACK_STATE_ESCALATED, NULL, NULL);
    rep = it_plan(pid, NULL, NULL);
    it_assert_decision(rep->plan, "a", CV__RETRY_ACTION__RETRY_ACTION_WAIT,
                       "retry delay 15 minutes has not elapsed", 1);
    assert_int_equal(it_find(rep->plan, "a")->acknowledgement_state,
                     CV__ACK_STATE__ACK_STATE_ESCALATED);
    protobuf_c_message_free_unpacked(&rep->base, NULL);

    /* A plan with no failures at all: healthy, no decisions. */
    {
        static const char *const one[] = {"quiet"};
        char *quiet = it_record_plan(one, 1);

        it_delivery(quiet, "quiet", true, 200, 1);
        rep = it_plan(quiet, NULL, NULL);
        assert_int_equal(rep->plan->decision_count, 0);
        assert_int_equal(rep->plan->n_retry_decisions, 0);
        assert_int_equal(rep->plan->alert_level,
                         CV__ALERT_LEVEL__ALERT_LEVEL_HEALTHY);
        assert_int_equal(cv_test_count("SELECT count(*) FROM retry_decisions "
                                       "WHERE retry_plan_id = $1",
                                       rep->plan->retry_plan_id),
                         0);
        assert_int_equal(cv_test_count("SELECT count(*) FROM retry_plans WHERE "
                                       "retry_plan_id = $1",
                                       rep->plan->retry_plan_id),
                         1);
        protobuf_c_message_free_unpacked(&rep->base, NULL);
        free(quiet);
    }
    free(pid);
}

static void
test_retry_rpc_plan_policy(void **state)
{
    static const char *const provs[] = {"slack"};
    Cv__RetryPolicy pol = CV__RETRY_POLICY__INIT;
    Cv__RetryPlanRequest req = CV__RETRY_PLAN_REQUEST__INIT;
    const ProtobufCMessageDescriptor *rd = &cv__retry_plan_reply__descriptor;
    Cv__RetryPlanReply *rep;
    Cv__Actor actor = CV__ACTOR__INIT;
    cv_rpc_call_opts opts = {.actor = &actor};
    char *roles[] = {"platform_owner"};
    char *pid;

    (void)state;
    pid = it_record_plan(provs, 1);
    it_delivery(pid, "slack", false, 503, 0.5);
    it_delivery(pid, "slack", false, 503, 0.25);

    /* Aliases; immediate retry with delay 0 retries at once. */
    pol.has_max_retries = 1;
    pol.max_retries = 5;
    pol.has_allow_immediate_retry = 1;
    pol.allow_immediate_retry = 1;
    pol.has_multiplier = 1;
    pol.multiplier = 3;
    rep = it_plan(pid, &pol, NULL);
    assert_int_equal(rep->plan->max_retry_attempts, 5);
    assert_true(rep->plan->allow_immediate_retry);
    assert_true(rep->plan->base_retry_delay_minutes == 0.0);
    assert_true(rep->plan->backoff_multiplier == 3.0);
    it_assert_decision(rep->plan, "slack", CV__RETRY_ACTION__RETRY_ACTION_RETRY,
                       IT_ELIGIBLE, 2);
    protobuf_c_message_free_unpacked(&rep->base, NULL);

    /* A long delay: wait, with the backoff in the reason. */
    cv__retry_policy__init(&pol);
    pol.has_delay_minutes = 1;
    pol.delay_minutes = 60;
    pol.has_backoff_multiplier = 1;
    pol.backoff_multiplier = 1.5;
    rep = it_plan(pid, &pol, NULL);
    it_assert_decision(rep->plan, "slack", CV__RETRY_ACTION__RETRY_ACTION_WAIT,
                       "retry delay 90 minutes has not elapsed", 2);
    protobuf_c_message_free_unpacked(&rep->base, NULL);

    /* A verified actor overrides generated_by, in the record and event. */
    actor.actor = "carol";
    actor.n_roles = 1;
    actor.roles = roles;
    {
        Cv__RetryPlanRequest r2 = CV__RETRY_PLAN_REQUEST__INIT;
        ProtobufCMessage *out = NULL;
        cv_error err;

        r2.plan_id = pid;
        r2.generated_by = "someone-else";
        cv_error_clear(&err);
        CV_TEST_PASS(cv_rpc_call(it_retry_cli, "retry.PlanRetries", &r2.base,
                                 rd, &out, &opts, &err),
                     err);
        rep = (Cv__RetryPlanReply *)out;
        assert_string_equal(rep->plan->generated_by, "carol");
        assert_non_null(rep->actor);
        assert_string_equal(rep->actor->actor, "carol");
        assert_int_equal(
            cv_test_count("SELECT count(*) FROM evidence_events WHERE "
                          "record_id = $1 AND actor = 'carol'",
                          rep->plan->retry_plan_id),
            1);
        protobuf_c_message_free_unpacked(out, NULL);
    }

    /* Rejected policies store nothing. */
    req.plan_id = pid;
    req.retry_policy = &pol;
    cv__retry_policy__init(&pol);
    pol.has_max_retry_attempts = 1;
    pol.max_retry_attempts = 0;
    cv_test_rpc_expect_error(
        it_retry_cli, "retry.PlanRetries", &req.base, rd, CV_INVALID_ARGUMENT,
        "retry_policy.max_retry_attempts must be between 1 and "
        "100");
    pol.max_retry_attempts = 3;
    pol.has_max_retries = 1;
    pol.max_retries = 4;
    cv_test_rpc_expect_error(it_retry_cli, "retry.PlanRetries", &req.base, rd,
                             CV_INVALID_ARGUMENT,
                             "retry_policy.max_retry_attempts and its alias "
                             "retry_policy.max_retries must not differ");
    cv__retry_policy__init(&pol);
    pol.has_retry_delay_minutes = 1;
    pol.retry_delay_minutes = 0;
    cv_test_rpc_expect_error(
        it_retry_cli, "retry.PlanRetries", &req.base, rd, CV_INVALID_ARGUMENT,
        "retry_policy.retry_delay_minutes must be between 1 and "
        "10080");
    pol.retry_delay_minutes = 10081;
    cv_test_rpc_expect_error(
        it_retry_cli, "retry.PlanRetries", &req.base, rd, CV_INVALID_ARGUMENT,
        "retry_policy.retry_delay_minutes must be between 1 and "
        "10080");
    cv__retry_policy__init(&pol);
    pol.has_backoff_multiplier = 1;
    pol.backoff_multiplier = 0.5;
    cv_test_rpc_expect_error(
        it_retry_cli, "retry.PlanRetries", &req.base, rd, CV_INVALID_ARGUMENT,
        "retry_policy.backoff_multiplier must be between 1 and "
        "10");
    req.retry_policy = NULL;
    {
        char name[130];

        memset(name, 'g', 129);
        name[129] = '\0';
        req.generated_by = name;
        cv_test_rpc_expect_error(it_retry_cli, "retry.PlanRetries", &req.base,
                                 rd, CV_INVALID_ARGUMENT,
                                 "generated_by must be at most 128 characters");
        req.generated_by = NULL;
    }
    free(pid);
}

static void
test_retry_rpc_plan_not_found(void **state)
{
    Cv__RetryPlanRequest req = CV__RETRY_PLAN_REQUEST__INIT;
    const ProtobufCMessageDescriptor *rd = &cv__retry_plan_reply__descriptor;
    Cv__RetryPolicy pol = CV__RETRY_POLICY__INIT;
    char longid[300];

    (void)state;
    req.plan_id = "gordackrecoveryesc-0000000000000000";
    cv_test_rpc_expect_error(it_retry_cli, "retry.PlanRetries", &req.base, rd,
                             CV_NOT_FOUND, IT_NOT_FOUND);
    memset(longid, 'b', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    req.plan_id = longid;
    cv_test_rpc_expect_error(it_retry_cli, "retry.PlanRetries", &req.base, rd,
                             CV_NOT_FOUND, IT_NOT_FOUND);
    /* Input rules come first: a bad policy is 400 even for a bad plan. */
    pol.has_max_retry_attempts = 1;
    pol.max_retry_attempts = 101;
    req.retry_policy = &pol;
    cv_test_rpc_expect_error(
        it_retry_cli, "retry.PlanRetries", &req.base, rd, CV_INVALID_ARGUMENT,
        "retry_policy.max_retry_attempts must be between 1 and "
        "100");
}

/* Without plan_id: every plan's pairs; the event has no plan_id. */
static void
test_retry_rpc_plan_all(void **state)
{
    static const char *const provs[] = {"slack", "jira"};
    Cv__RetryPlanReply *rep;
    size_t mine = 0;
    char *pid;

    (void)state;
    pid = it_record_plan(provs, 2);
    it_delivery(pid, "slack", false, 500, 200);
    it_delivery(pid, "jira", false, 500, 1);
    rep = it_plan(NULL, NULL, NULL);
    assert_null(rep->plan->plan_id);
    for (size_t i = 0; i < rep->plan->n_retry_decisions; i++) {
        const Cv__RetryDecision *d = rep->plan->retry_decisions[i];

        if (i > 0) {
            const Cv__RetryDecision *prev = rep->plan->retry_decisions[i - 1];
            int c = strcmp(prev->plan_id, d->plan_id);

            assert_true(c < 0 ||
                        (c == 0 && strcmp(prev->provider, d->provider) < 0));
        }
        if (strcmp(d->plan_id, pid) == 0)
            mine++;
    }
    assert_int_equal(mine, 2);
    assert_int_equal(rep->plan->decision_count,
                     (int64_t)rep->plan->n_retry_decisions);
    assert_int_equal(cv_test_count("SELECT count(*) FROM retry_plans WHERE "
                                   "retry_plan_id = $1 AND plan_id IS NULL",
                                   rep->plan->retry_plan_id),
                     1);
    assert_int_equal(
        cv_test_count("SELECT count(*) FROM evidence_events WHERE "
                      "record_id = $1 AND plan_id IS NULL AND kind = "
                      "'recovery_escalation_retry_plan'",
                      rep->plan->retry_plan_id),
        1);
    protobuf_c_message_free_unpacked(&rep->base, NULL);
    free(pid);
}

/* ---- the streak query at scale ---------------------------------------- */

static const char *
it_stmt(const char *name)
{
    for (size_t i = 0; i < retry_sql_statement_count; i++)
        if (strcmp(retry_sql_statements[i].name, name) == 0)
            return retry_sql_statements[i].sql;
    fail_msg("no statement %s", name);
    return NULL;
}

static PGresult *
it_pq(PGconn *c, const char *sql, const char *param, ExecStatusType want)
{
    const char *params[1] = {param};
    PGresult *r = PQexecParams(c, sql, param != NULL ? 1 : 0, NULL,
                               param != NULL ? params : NULL, NULL, NULL, 0);

    if (PQresultStatus(r) != want)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    return r;
}

/* A statement with its three parameters (the paged streak queries). */
static PGresult *
it_pq3(PGconn *c, const char *sql, const char *a, const char *b, const char *n,
       ExecStatusType want)
{
    const char *params[3] = {a, b, n};
    PGresult *r = PQexecParams(c, sql, 3, NULL, params, NULL, NULL, 0);

    if (PQresultStatus(r) != want)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    return r;
}

/* The plan's text must not scan delivery_attempts sequentially. */
static void
it_assert_indexed(PGconn *c, const char *stmt, const char *a, const char *b,
                  const char *n)
{
    char sql[8192];
    PGresult *r;

    snprintf(sql, sizeof(sql), "EXPLAIN %s", it_stmt(stmt));
    r = it_pq3(c, sql, a, b, n, PGRES_TUPLES_OK);
    for (int i = 0; i < PQntuples(r); i++) {
        const char *line = PQgetvalue(r, i, 0);

        if (strstr(line, "Seq Scan") != NULL &&
            strstr(line, "delivery_attempts") != NULL)
            fail_msg("%s scans delivery_attempts: %s", stmt, line);
    }
    PQclear(r);
}

static double
it_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
test_retry_rpc_streak_query_at_scale(void **state)
{
    PGconn *c;
    PGresult *r;
    double t0, t1;

    (void)state;
    c = PQconnectdb(cv_test_database_url());
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("cannot connect: %s", PQerrorMessage(c));
    PQclear(it_pq(c, "BEGIN", NULL, PGRES_COMMAND_OK));
    /* 1,000 plans x 5 providers x 20 attempts (records live in the
     * evidence since migration 0013, not in these rows). Pairs
     * of provider p0 end in a 3-failure streak (the last success is
     * attempt 16); all the others end with a success. */
    PQclear(it_pq(c,
                  "INSERT INTO escalation_plans (plan_id, generated_at,"
                  " generated_by, alert_level, recovery_slo_minutes,"
                  " escalation_count, critical_escalation_count,"
                  " slo_breached_count, failed_execution_count,"
                  " open_recovery_count, providers)"
                  " SELECT 'it-scale-' || g, now(), 'it', 'warning', 240, 5,"
                  " 0, 0, 0, 5, ARRAY['p0','p1','p2','p3','p4']"
                  " FROM generate_series(1, 1000) g",
                  NULL, PGRES_COMMAND_OK));
    PQclear(it_pq(c,
                  "INSERT INTO delivery_attempts (delivery_id, plan_id,"
                  " provider, success, status_code, attempt_count,"
                  " attempt_at, created_at)"
                  " SELECT 'rcd-it-scale-' || g || '-' || p || '-' || a,"
                  " 'it-scale-' || g, 'p' || p,"
                  " CASE WHEN p = 0 THEN a = 16 ELSE a = 19 OR a % 3 = 0 END,"
                  " 500 + a, 1, now() - interval '1 day' + a * interval"
                  " '1 minute', now()"
                  " FROM generate_series(1, 1000) g, generate_series(0, 4) p,"
                  " generate_series(0, 19) a",
                  NULL, PGRES_COMMAND_OK));
    PQclear(it_pq(c, "ANALYZE delivery_attempts", NULL, PGRES_COMMAND_OK));

    it_assert_indexed(c, "retry_streaks_page", "", "", "1001");
    it_assert_indexed(c, "retry_streaks_plan_page", "it-scale-7", "", "1001");

    /* One plan: only p0's streak (3 rows: attempts 17, 18, 19). */
    r = it_pq3(c, it_stmt("retry_streaks_plan_page"), "it-scale-7", "", "1001",
               PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 3);
    assert_string_equal(PQgetvalue(r, 0, 1), "p0");
    assert_string_equal(PQgetvalue(r, 0, 3), "517");
    assert_string_equal(PQgetvalue(r, 2, 3), "519");
    assert_string_equal(PQgetvalue(r, 2, 2), "rcd-it-scale-7-0-19");
    PQclear(r);

    /* Everything: 3,000 streak rows of ours among whatever else exists,
     * in well under the time a full scan of the records would take. */
    t0 = it_seconds();
    r = it_pq3(c, it_stmt("retry_streaks_page"), "", "", "1000000",
               PGRES_TUPLES_OK);
    t1 = it_seconds();
    {
        int ours = 0;

        for (int i = 0; i < PQntuples(r); i++)
            ours += strncmp(PQgetvalue(r, i, 0), "it-scale-", 9) == 0;
        assert_int_equal(ours, 3000);
    }
    PQclear(r);
    if (t1 - t0 > 5.0)
        fail_msg("the streak query over 100,000 attempts took %.2f s", t1 - t0);

    /* Paged by 250 pairs from the cursor pair on: the pages chain with
     * neither gap nor overlap (each of our 1,000 streak pairs exactly
     * once), and no page holds more pairs than asked. */
    {
        char after_plan[256] = "", after_prov[256] = "";
        int ours = 0, pages = 0;

        for (;;) {
            int rows, pairs = 0;

            r = it_pq3(c, it_stmt("retry_streaks_page"), after_plan, after_prov,
                       "250", PGRES_TUPLES_OK);
            if ((rows = PQntuples(r)) == 0) {
                PQclear(r);
                break;
            }
            for (int i = 0; i < rows; i++) {
                const char *pl = PQgetvalue(r, i, 0);
                const char *pv = PQgetvalue(r, i, 1);

                if (i > 0 && strcmp(pl, PQgetvalue(r, i - 1, 0)) == 0 &&
                    strcmp(pv, PQgetvalue(r, i - 1, 1)) == 0)
                    continue;
                pairs++;
                ours += strncmp(pl, "it-scale-", 9) == 0;
            }
            assert_true(pairs <= 250);
            snprintf(after_plan, sizeof(after_plan), "%s",
                     PQgetvalue(r, rows - 1, 0));
            snprintf(after_prov, sizeof(after_prov), "%s",
                     PQgetvalue(r, rows - 1, 1));
            PQclear(r);
            if (++pages > 1000)
                fail_msg("paging does not end");
        }
        assert_int_equal(ours, 1000);
        assert_true(pages >= 4);
    }
    PQclear(it_pq(c, "ROLLBACK", NULL, PGRES_COMMAND_OK));
    PQfinish(c);
    assert_int_equal(
        cv_test_count("SELECT count(*) FROM delivery_attempts WHERE "
                      "plan_id LIKE $1",
                      "it-scale-%"),
        0);
}

/* Many deliveries of one pair: every one stored with its own id and
 * event, and the plan counts them all (the backoff is capped). */
static void
test_retry_rpc_many_deliveries(void **state)
{
    static const char *const provs[] = {"slack"};
    Cv__RetryPlanReply *rep;
    Cv__RetryPolicy pol = CV__RETRY_POLICY__INIT;
    char *pid;

    (void)state;
    pid = it_record_plan(provs, 1);
    for (int i = 0; i < 40; i++)
        it_delivery(pid, "slack", false, 500 + i % 4, 100 - i);
    assert_int_equal(
        cv_test_count(
            "SELECT count(DISTINCT delivery_id) FROM delivery_attempts "
            "WHERE plan_id = $1",
            pid),
        40);
    assert_int_equal(
        cv_test_count("SELECT count(*) FROM evidence_events WHERE "
                      "plan_id = $1 AND kind = 'connector_delivery'",
                      pid),
        40);
    pol.has_max_retry_attempts = 1;
    pol.max_retry_attempts = 100;
    rep = it_plan(pid, &pol, NULL);
    it_assert_decision(rep->plan, "slack", CV__RETRY_ACTION__RETRY_ACTION_WAIT,
                       "retry delay 5256000000 minutes has not elapsed", 40);
    assert_int_equal(rep->plan->retry_decisions[0]->n_failed_status_codes, 40);
    protobuf_c_message_free_unpacked(&rep->base, NULL);
    free(pid);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_rpc_health),
        cmocka_unit_test(test_retry_rpc_delivery_stored),
        cmocka_unit_test(test_retry_rpc_delivery_rejected),
        cmocka_unit_test(test_retry_rpc_plan_decisions),
        cmocka_unit_test(test_retry_rpc_plan_ordering),
        cmocka_unit_test(test_retry_rpc_plan_policy),
        cmocka_unit_test(test_retry_rpc_plan_not_found),
        cmocka_unit_test(test_retry_rpc_plan_all),
        cmocka_unit_test(test_retry_rpc_streak_query_at_scale),
        cmocka_unit_test(test_retry_rpc_many_deliveries),
    };

    return cmocka_run_group_tests_name("retry_rpc", tests, it_setup,
                                       it_teardown);
}
