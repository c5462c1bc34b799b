/*
 * retry_http_test.c -- end-to-end tests of delivery-attempt intake
 * (docs/api.md) and retry plans (docs/api.md) through the REST gateway: the
 * whole stack (three services + gateway) against the real PostgreSQL, driven
 * over HTTP with libcurl.
 *
 * Needs CAVRA_DATABASE_URL pointing at a migrated database (scripts/test.sh
 * sets it). The group setup starts the stack once; the teardown stops it
 * and requires every process to exit cleanly. Each test records its own
 * plans and limits its retry plans to them with plan_id, so what else the
 * shared database holds does not matter. Each rejected request is checked
 * to have stored nothing (whole-table counts before and after: safe
 * because ctest runs e2e tests serially) and never to be a 5xx.
 *
 * Run: ctest -R e2e.retry_http, or the binary alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cv_test_api.h"
#include "cv_time.h"

#define P                                                                      \
    "/runtime/go-pilot/rollback-drill-notifications/acknowledgements/"         \
    "audit-delivery"
#define E2E_PLAN_PATH  CV_TEST_PLAN_PATH
#define E2E_RETRY_PATH P "/recovery-escalations/retry-plan"

#define E2E_DELIVERY_SCHEMA                                                    \
    "cavra.go-backend-pilot.rollback-drill-acknowledgement-audit-delivery-"    \
    "connector-delivery.v1"
#define E2E_RETRY_SCHEMA                                                       \
    "cavra.go-backend-pilot.rollback-drill-acknowledgement-audit-delivery-"    \
    "recovery-escalation-delivery-retry-plan.v1"
#define E2E_RETRY_KIND                                                         \
    "go-backend-rollback-drill-acknowledgement-audit-delivery-recovery-"       \
    "escalation-delivery-retry-plan"
#define E2E_SOURCE                                                             \
    "go_backend_rollback_drill_acknowledgement_audit_recovery_escalation"
#define E2E_NOT_FOUND "recovery escalation plan not found"
#define E2E_ELIGIBLE  "failed recovery escalation delivery is eligible for retry"

CV_TEST_SUITE_STACK(e2e_stack, CV_STACK_ALL)

/* ---- helpers (the shared ones are in tests/support/cv_test_api.h) ---- */

static void
e2e_assert_num(json_t *root, const char *path, double want)
{
    json_t *v = cv_test_json_get(root, path);

    if (!json_is_number(v))
        fail_msg("%s is not a number", path);
    if (fabs(json_number_value(v) - want) > 1e-9)
        fail_msg("%s is %g, expected %g", path, json_number_value(v), want);
}

/* Records a plan routing to slack (critical) and jira, plus `more` extra
 * routes given as JSON objects (may be NULL); returns its plan_id (caller
 * frees). */
static char *
e2e_record_plan(const char *more)
{
    char body[1024];

    snprintf(body, sizeof(body),
             "{\"escalation_routes\": [{\"provider\": \"slack\", "
             "\"severity\": \"critical\"}, {\"provider\": \"jira\"}%s%s]}",
             more != NULL ? ", " : "", more != NULL ? more : "");
    return cv_test_record_plan_http(&e2e_stack, body);
}

static char *
e2e_delivery_path(const char *plan_id)
{
    static char path[1024];

    snprintf(path, sizeof(path), P "/recovery-escalations/%s/delivery-attempts",
             plan_id);
    return path;
}

/* RFC 3339 text of now minus `minutes`. */
static const char *
e2e_ago(double minutes, char buf[CV_TIME_MAX])
{
    cv_time_format(cv_now_us() - (int64_t)(minutes * 60e6), buf);
    return buf;
}

/* Records a failed (status >= 0) or successful (status < 0: 200) attempt
 * completed `ago` minutes ago; returns its delivery_id (caller frees). */
static char *
e2e_attempt(const char *plan_id, const char *provider, bool success, int status,
            double ago)
{
    cv_http_response r;
    char body[512], when[CV_TIME_MAX];
    char *id;

    snprintf(body, sizeof(body),
             "{\"provider\": \"%s\", \"success\": %s, \"status_code\": %d, "
             "\"completed_at\": \"%s\"}",
             provider, success ? "true" : "false", status, e2e_ago(ago, when));
    cv_test_post_json(&e2e_stack, e2e_delivery_path(plan_id), body, &r);
    if (r.status != 201)
        fail_msg("recording an attempt: %ld %s", r.status, r.body);
    id = strdup(cv_test_json_str(r.json, "delivery.delivery_id"));
    cv_http_response_free(&r);
    return id;
}

static void
e2e_attempt0(const char *plan_id, const char *provider, bool success,
             int status, double ago)
{
    free(e2e_attempt(plan_id, provider, success, status, ago));
}

/* Asks for a retry plan limited to plan_id with the given policy JSON
 * (NULL: none); expects 201 and returns the response (free it). */
static void
e2e_retry_plan(const char *plan_id, const char *policy, cv_http_response *r)
{
    char body[1024];

    snprintf(body, sizeof(body), "{\"plan_id\": \"%s\"%s%s}", plan_id,
             policy != NULL ? ", \"retry_policy\": " : "",
             policy != NULL ? policy : "");
    cv_test_post_json(&e2e_stack, E2E_RETRY_PATH, body, r);
    if (r->status != 201)
        fail_msg("retry plan: %ld %s", r->status, r->body);
}

/* The decision of `provider` in a plan JSON, or NULL. */
static json_t *
e2e_decision(json_t *plan, const char *provider)
{
    json_t *list = json_object_get(plan, "retry_decisions");

    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *d = json_array_get(list, i);

        if (strcmp(cv_test_json_str(d, "provider"), provider) == 0)
            return d;
    }
    return NULL;
}

static json_t *
e2e_decision_must(json_t *plan, const char *provider)
{
    json_t *d = e2e_decision(plan, provider);

    if (d == NULL)
        fail_msg("no decision for %s", provider);
    return d;
}

/* ---- delivery attempts (docs/api.md) ------------------------------------- */

static void
test_retry_http_delivery_created(void **state)
{
    static const char *const rid_hdr[] = {"X-Request-Id: e2e-retry-delivery",
                                          NULL};
    char *pid = e2e_record_plan(NULL);
    cv_http_response r;
    json_t *d;
    const char *id;
    char body[600];

    (void)state;
    snprintf(body, sizeof(body),
             "{\"provider\": \" Slack \", \"success\": false, "
             "\"status_code\": 503, \"attempt_count\": 2, "
             "\"started_at\": \"2025-11-27T07:29:23.5+02:00\", "
             "\"completed_at\": \"2025-11-27T05:30:00Z\", "
             "\"error\": \"POST https://hooks.example.com/x?token=s3cr3t "
             "failed\", \"plan_id\": \"ignored\", \"extra\": 1}");
    cv_test_request(&e2e_stack, "POST", e2e_delivery_path(pid), NULL, body,
                    rid_hdr, &r);
    d = cv_test_assert_created(&r, "delivery", NULL);
    id = cv_test_json_str(d, "delivery_id");
    cv_test_assert_id(id, "rcd-");
    cv_test_assert_str(d, "schema_version", E2E_DELIVERY_SCHEMA);
    cv_test_assert_str(d, "plan_id", pid);
    cv_test_assert_str(d, "provider", "slack");
    cv_test_assert_bool(d, "delivery_success", 0);
    assert_int_equal(json_array_size(json_object_get(d, "status_codes")), 1);
    cv_test_assert_int(d, "status_codes[0]", 503);
    cv_test_assert_int(d, "attempt_count", 2);
    cv_test_assert_str(d, "started_at", "2025-11-27T05:29:23.500000Z");
    cv_test_assert_str(d, "completed_at", "2025-11-27T05:30:00.000000Z");
    cv_test_assert_time(cv_test_json_str(d, "created_at"));
    cv_test_assert_str(d, "connector_delivery_source", E2E_SOURCE);
    cv_test_assert_str(d, "metadata_kind", "release-connector-delivery");
    cv_test_assert_str(d, "error",
                       "POST https://hooks.example.com/x?REDACTED failed");
    cv_test_assert_int(d, "redaction_count", 1);
    assert_null(json_object_get(d, "extra"));
    assert_null(strstr(r.body, "s3cr3t"));

    assert_int_equal(
        cv_test_count("SELECT count(*) FROM delivery_attempts WHERE "
                      "delivery_id = $1 AND NOT success AND "
                      "status_code = 503 AND attempt_at = "
                      "'2025-11-27T05:30:00Z'",
                      id),
        1);
    assert_int_equal(
        cv_test_count("SELECT count(*) FROM evidence_events WHERE "
                      "record_id = $1 AND kind = "
                      "'connector_delivery' AND provider = 'slack' "
                      "AND request_id = 'e2e-retry-delivery' AND "
                      "record->>'error' NOT LIKE '%s3cr3t%'",
                      id),
        1);
    assert_int_equal(
        cv_test_count("SELECT count(*) FROM delivery_attempts WHERE "
                      "plan_id = $1",
                      "ignored"),
        0);
    cv_http_response_free(&r);

    /* The minimum: provider and success; the rest defaults or is null. */
    cv_test_post_json(
        &e2e_stack, e2e_delivery_path(pid),
        "{\"provider\": \"jira\", \"success\": true, \"status_code\": "
        "null, \"error\": null}",
        &r);
    if (r.status != 201)
        fail_msg("expected 201, got %ld: %s", r.status, r.body);
    d = json_object_get(r.json, "delivery");
    cv_test_assert_bool(d, "delivery_success", 1);
    assert_true(json_is_array(json_object_get(d, "status_codes")));
    assert_int_equal(json_array_size(json_object_get(d, "status_codes")), 0);
    cv_test_assert_int(d, "attempt_count", 1);
    cv_test_assert_null(d, "started_at");
    cv_test_assert_null(d, "completed_at");
    cv_test_assert_null(d, "error");
    cv_test_assert_int(d, "redaction_count", 0);
    cv_http_response_free(&r);

    /* Boundaries that pass: status 0 (unreachable) and 599, count 1000. */
    cv_test_post_json(
        &e2e_stack, e2e_delivery_path(pid),
        "{\"provider\": \"jira\", \"success\": false, \"status_code\": "
        "0, \"attempt_count\": 1000}",
        &r);
    assert_int_equal(r.status, 201);
    cv_test_assert_int(r.json, "delivery.status_codes[0]", 0);
    cv_http_response_free(&r);
    cv_test_post_json(
        &e2e_stack, e2e_delivery_path(pid),
        "{\"provider\": \"jira\", \"success\": false, \"status_code\": "
        "599, \"started_at\": \"2025-11-27T05:30:00Z\", "
        "\"completed_at\": \"2025-11-27T05:30:00Z\"}",
        &r);
    assert_int_equal(r.status, 201);
    cv_http_response_free(&r);
    free(pid);
}

static void
test_retry_http_delivery_rejected(void **state)
{
    char *pid = e2e_record_plan(NULL);
    char path[1024], longid[300], msg[300], *body;

    (void)state;
    snprintf(path, sizeof(path), "%s", e2e_delivery_path(pid));
    cv_test_reject_400(&e2e_stack, path, "{}", "provider is required");
    cv_test_reject_400(&e2e_stack, path, "", "provider is required");
    cv_test_reject_400(&e2e_stack, path,
                       "{\"provider\": \"  \", \"success\": true}",
                       "provider is required");
    cv_test_reject_400(&e2e_stack, path,
                       "{\"provider\": null, \"success\": true}",
                       "provider is required");
    cv_test_reject_400(&e2e_stack, path,
                       "{\"provider\": \"sl ack\", \"success\": true}",
                       "provider must use only a-z, 0-9, '.', '_' and '-'");
    {
        char b[400];

        memset(longid, 'p', 65);
        longid[65] = '\0';
        snprintf(b, sizeof(b), "{\"provider\": \"%s\", \"success\": true}",
                 longid);
        cv_test_reject_400(&e2e_stack, path, b,
                           "provider must be at most 64 characters");
    }
    cv_test_reject_400(&e2e_stack, path, "{\"provider\": 5, \"success\": true}",
                       "provider must be a string");
    cv_test_reject_400(&e2e_stack, path, "{\"provider\": \"slack\"}",
                       "success is required");
    cv_test_reject_400(&e2e_stack, path,
                       "{\"provider\": \"slack\", \"success\": null}",
                       "success is required");
    cv_test_reject_400(&e2e_stack, path,
                       "{\"provider\": \"slack\", \"success\": \"yes\"}",
                       "success must be a boolean");
    cv_test_reject_400(&e2e_stack, path,
                       "{\"provider\": \"slack\", \"success\": 1}",
                       "success must be a boolean");
    cv_test_reject_400(&e2e_stack, path,
                       "{\"provider\": \"slack\", \"success\": false, "
                       "\"status_code\": 600}",
                       "status_code must be between 0 and 599");
    cv_test_reject_400(&e2e_stack, path,
                       "{\"provider\": \"slack\", \"success\": false, "
                       "\"status_code\": -1}",
                       "status_code must be between 0 and 599");
    cv_test_reject_400(&e2e_stack, path,
                       "{\"provider\": \"slack\", \"success\": false, "
                       "\"status_code\": \"five hundred\"}",
                       "status_code must be an integer");
    cv_test_reject_400(&e2e_stack, path,
                       "{\"provider\": \"slack\", \"success\": false, "
                       "\"status_code\": 500.5}",
                       "status_code must be an integer");
    cv_test_reject_400(&e2e_stack, path,
                       "{\"provider\": \"slack\", \"success\": false, "
                       "\"attempt_count\": 0}",
                       "attempt_count must be between 1 and 1000");
    cv_test_reject_400(&e2e_stack, path,
                       "{\"provider\": \"slack\", \"success\": false, "
                       "\"attempt_count\": 1001}",
                       "attempt_count must be between 1 and 1000");
    cv_test_reject_400(&e2e_stack, path,
                       "{\"provider\": \"slack\", \"success\": false, "
                       "\"attempt_count\": \"many\"}",
                       "attempt_count must be an integer");
    cv_test_reject_400(&e2e_stack, path,
                       "{\"provider\": \"slack\", \"success\": false, "
                       "\"started_at\": \"yesterday\"}",
                       "started_at must be an RFC 3339 timestamp");
    cv_test_reject_400(&e2e_stack, path,
                       "{\"provider\": \"slack\", \"success\": false, "
                       "\"started_at\": \"2025-11-27 05:30:00\"}",
                       "started_at must be an RFC 3339 timestamp");
    cv_test_reject_400(&e2e_stack, path,
                       "{\"provider\": \"slack\", \"success\": false, "
                       "\"started_at\": 1764221363}",
                       "started_at must be a string");
    cv_test_reject_400(&e2e_stack, path,
                       "{\"provider\": \"slack\", \"success\": false, "
                       "\"completed_at\": \"2025-02-30T00:00:00Z\"}",
                       "completed_at must be an RFC 3339 timestamp");
    cv_test_reject_400(&e2e_stack, path,
                       "{\"provider\": \"slack\", \"success\": false, "
                       "\"started_at\": \"2025-11-27T05:30:00Z\", "
                       "\"completed_at\": \"2025-11-27T07:29:59+02:00\"}",
                       "completed_at must not be before started_at");
    /* A failure dated 9999 would hide every later failure of the pair
     * from retry planning forever. */
    cv_test_reject_400(&e2e_stack, path,
                       "{\"provider\": \"slack\", \"success\": false, "
                       "\"completed_at\": \"9999-12-31T23:59:59Z\"}",
                       "completed_at must not be more than 5 minutes in the "
                       "future");
    cv_test_reject_400(&e2e_stack, path,
                       "{\"provider\": \"slack\", \"success\": false, "
                       "\"started_at\": \"1999-12-31T23:59:59Z\"}",
                       "started_at must not be before 2000-01-01T00:00:00Z");
    body = malloc(700);
    assert_non_null(body);
    {
        int o = sprintf(body, "{\"provider\": \"slack\", \"success\": false, "
                              "\"error\": \"");

        memset(body + o, 'e', 501);
        strcpy(body + o + 501, "\"}");
    }
    cv_test_reject_400(&e2e_stack, path, body,
                       "error must be at most 500 characters");
    free(body);

    /* A provider the plan does not route names the plan's providers. */
    snprintf(msg, sizeof(msg),
             "provider teams is not routed by recovery escalation plan %s; "
             "the plan's providers are jira, slack",
             pid);
    cv_test_reject_400(&e2e_stack, path,
                       "{\"provider\": \"Teams\", \"success\": false}", msg);

    /* Unknown plans, also ids too long to exist. */
    cv_test_reject(&e2e_stack, "POST",
                   e2e_delivery_path("gordackrecoveryesc-0000000000000000"),
                   NULL, "{\"provider\": \"slack\", \"success\": false}", 404,
                   "NOT_FOUND", E2E_NOT_FOUND);
    memset(longid, 'a', 200);
    longid[200] = '\0';
    cv_test_reject(&e2e_stack, "POST", e2e_delivery_path(longid), NULL,
                   "{\"provider\": \"slack\", \"success\": false}", 404,
                   "NOT_FOUND", E2E_NOT_FOUND);
    cv_test_reject(&e2e_stack, "POST",
                   e2e_delivery_path("x%27%20OR%20%271%27%3D%271"), NULL,
                   "{\"provider\": \"slack\", \"success\": false}", 404,
                   "NOT_FOUND", E2E_NOT_FOUND);
    free(pid);
}

/* ---- retry plans (docs/api.md) ------------------------------------------- */

static void
test_retry_http_plan_created(void **state)
{
    char *pid = e2e_record_plan(
        "{\"provider\": \"teams\"}, {\"provider\": \"pagerduty\"}, "
        "{\"provider\": \"webhook\"}, {\"provider\": \"servicenow\"}");
    cv_http_response r;
    json_t *plan, *meta, *d;
    const char *rpid;
    char *slack_latest, ack_path[1024], sql[512];

    (void)state;
    /* slack: 502 then 503, the latest 40 minutes ago: delay 30 -> retry. */
    e2e_attempt0(pid, "slack", false, 502, 60);
    slack_latest = e2e_attempt(pid, "slack", false, 503, 40);
    /* jira: one 429 two minutes ago: wait 15. */
    e2e_attempt0(pid, "jira", false, 429, 2);
    /* teams: 404: suppressed. */
    e2e_attempt0(pid, "teams", false, 404, 100);
    /* pagerduty: a failure, then a success: no decision. */
    e2e_attempt0(pid, "pagerduty", false, 500, 50);
    e2e_attempt0(pid, "pagerduty", true, 200, 49);
    /* webhook: 3 failures with a success in between: 1 counted, 408. */
    e2e_attempt0(pid, "webhook", false, 500, 300);
    e2e_attempt0(pid, "webhook", true, 200, 200);
    e2e_attempt0(pid, "webhook", false, 408, 100);
    /* servicenow: a 500, then dismissed. */
    e2e_attempt0(pid, "servicenow", false, 500, 100);
    snprintf(ack_path, sizeof(ack_path),
             P "/recovery-escalations/%s/acknowledgements", pid);
    cv_test_post_json(
        &e2e_stack, ack_path,
        "{\"provider\": \"servicenow\", \"acknowledged_by\": \"bob\", "
        "\"acknowledgement_state\": \"dismissed\"}",
        &r);
    assert_int_equal(r.status, 201);
    cv_http_response_free(&r);

    e2e_retry_plan(pid, NULL, &r);
    plan = cv_test_assert_created(&r, "plan", &meta);
    rpid = cv_test_json_str(plan, "retry_plan_id");
    cv_test_assert_id(rpid, "gordackrecoveryescretry-");
    cv_test_assert_str(plan, "schema_version", E2E_RETRY_SCHEMA);
    cv_test_assert_str(plan, "product", "CAVRA");
    cv_test_assert_time(cv_test_json_str(plan, "generated_at"));
    cv_test_assert_str(plan, "generated_by", "console");
    cv_test_assert_str(plan, "plan_id", pid);
    cv_test_assert_str(plan, "alert_level", "critical");
    cv_test_assert_int(plan, "decision_count", 5);
    cv_test_assert_int(plan, "retryable_count", 2);
    cv_test_assert_int(plan, "waiting_count", 1);
    cv_test_assert_int(plan, "suppressed_count", 2);
    cv_test_assert_int(plan, "max_retry_attempts", 3);
    e2e_assert_num(plan, "base_retry_delay_minutes", 15);
    cv_test_assert_bool(plan, "allow_immediate_retry", 0);
    e2e_assert_num(plan, "backoff_multiplier", 2);
    assert_true(json_array_size(json_object_get(plan, "controls")) > 0);
    cv_test_json_str(plan, "controls[0]");
    /* Sorted by plan_id, then provider. */
    assert_int_equal(json_array_size(json_object_get(plan, "retry_decisions")),
                     5);
    cv_test_assert_str(plan, "retry_decisions[0].provider", "jira");
    cv_test_assert_str(plan, "retry_decisions[1].provider", "servicenow");
    cv_test_assert_str(plan, "retry_decisions[2].provider", "slack");
    cv_test_assert_str(plan, "retry_decisions[3].provider", "teams");
    cv_test_assert_str(plan, "retry_decisions[4].provider", "webhook");
    assert_null(e2e_decision(plan, "pagerduty"));

    d = e2e_decision_must(plan, "slack");
    cv_test_assert_str(d, "plan_id", pid);
    cv_test_assert_str(d, "action", "retry");
    cv_test_assert_str(d, "reason", E2E_ELIGIBLE);
    cv_test_assert_int(d, "retry_count", 2);
    cv_test_assert_int(d, "max_retry_attempts", 3);
    e2e_assert_num(d, "retry_delay_minutes", 30);
    cv_test_assert_str(d, "latest_delivery_id", slack_latest);
    cv_test_assert_time(cv_test_json_str(d, "latest_delivery_at"));
    cv_test_assert_time(cv_test_json_str(d, "next_retry_at"));
    {
        int64_t latest, next;

        assert_int_equal(
            cv_time_parse(cv_test_json_str(d, "latest_delivery_at"), &latest),
            0);
        assert_int_equal(
            cv_time_parse(cv_test_json_str(d, "next_retry_at"), &next), 0);
        assert_true(next - latest == 30 * 60000000LL);
    }
    assert_int_equal(json_array_size(json_object_get(d, "failed_status_codes")),
                     2);
    cv_test_assert_int(d, "failed_status_codes[0]", 502);
    cv_test_assert_int(d, "failed_status_codes[1]", 503);
    cv_test_assert_null(d, "acknowledgement_state");

    d = e2e_decision_must(plan, "jira");
    cv_test_assert_str(d, "action", "wait");
    cv_test_assert_str(d, "reason", "retry delay 15 minutes has not elapsed");
    cv_test_assert_int(d, "retry_count", 1);
    cv_test_assert_int(d, "failed_status_codes[0]", 429);
    d = e2e_decision_must(plan, "teams");
    cv_test_assert_str(d, "action", "suppress");
    cv_test_assert_str(d, "reason", "status 404 is not retryable");
    d = e2e_decision_must(plan, "webhook");
    cv_test_assert_str(d, "action", "retry");
    cv_test_assert_int(d, "retry_count", 1);
    assert_int_equal(json_array_size(json_object_get(d, "failed_status_codes")),
                     1);
    cv_test_assert_int(d, "failed_status_codes[0]", 408);
    d = e2e_decision_must(plan, "servicenow");
    cv_test_assert_str(d, "action", "suppress");
    cv_test_assert_str(d, "reason",
                       "acknowledgement state dismissed closes the escalation");
    cv_test_assert_str(d, "acknowledgement_state", "dismissed");

    /* Metadata: the full plan nested. */
    cv_test_assert_str(meta, "metadata_kind", E2E_RETRY_KIND);
    cv_test_assert_str(meta, "session_id", rpid);
    cv_test_assert_str(meta, "retry_plan_id", rpid);
    cv_test_assert_str(meta, "created_at",
                       cv_test_json_str(plan, "generated_at"));
    cv_test_assert_str(meta, "signer", "cavra-recovery/retry-planning-service");
    cv_test_assert_str(meta, "alert_level", "critical");
    cv_test_assert_int(meta, "decision_count", 5);
    cv_test_assert_int(meta, "retryable_count", 2);
    {
        /* The original's keys only: ours stay in the plan. */
        static const char *const ours[] = {
            "plan_id", "retry_decisions[].acknowledgement_state", NULL};

        cv_test_assert_embedded(
            json_object_get(meta, "recovery_escalation_delivery_retry_plan"),
            plan, ours);
    }

    /* Stored: the plan, its decisions, one evidence event. */
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM retry_plans r JOIN evidence_events e ON "
             "e.kind = 'recovery_escalation_retry_plan' AND e.record_id = "
             "r.retry_plan_id WHERE r.retry_plan_id = $1 AND "
             "r.plan_id = '%s' AND r.retryable_count = 2 AND "
             "e.record->>'retry_plan_id' = $1",
             pid);
    assert_int_equal(cv_test_count(sql, rpid), 1);
    assert_int_equal(cv_test_count("SELECT count(*) FROM retry_decisions WHERE "
                                   "retry_plan_id = $1",
                                   rpid),
                     5);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM evidence_events WHERE record_id = $1 AND "
             "kind = 'recovery_escalation_retry_plan' AND plan_id = '%s'",
             pid);
    assert_int_equal(cv_test_count(sql, rpid), 1);
    cv_http_response_free(&r);
    free(slack_latest);
    free(pid);
}

static void
test_retry_http_plan_values_given(void **state)
{
    char *pid = e2e_record_plan(NULL);
    cv_http_response r;
    json_t *plan;

    (void)state;
    e2e_attempt0(pid, "slack", false, 500, 5);
    e2e_attempt0(pid, "slack", false, 0, 4);

    /* Aliases, and name + alias agreeing. */
    e2e_retry_plan(pid,
                   "{\"max_retries\": 7, \"delay_minutes\": 1.5, "
                   "\"multiplier\": 3, \"backoff_multiplier\": 3.0}",
                   &r);
    plan = json_object_get(r.json, "plan");
    cv_test_assert_int(plan, "max_retry_attempts", 7);
    e2e_assert_num(plan, "base_retry_delay_minutes", 1.5);
    e2e_assert_num(plan, "backoff_multiplier", 3);
    /* 1.5 * 3 = 4.5 minutes after the failure 4 minutes ago: wait. */
    cv_test_assert_str(plan, "retry_decisions[0].action", "wait");
    cv_test_assert_str(plan, "retry_decisions[0].reason",
                       "retry delay 4.5 minutes has not elapsed");
    e2e_assert_num(plan, "retry_decisions[0].retry_delay_minutes", 4.5);
    cv_test_assert_int(plan, "retry_decisions[0].max_retry_attempts", 7);
    cv_test_assert_str(plan, "alert_level", "warning");
    cv_http_response_free(&r);

    /* Immediate retry: delay 0 by default, so retry now. */
    e2e_retry_plan(pid, "{\"allow_immediate_retry\": true}", &r);
    plan = json_object_get(r.json, "plan");
    cv_test_assert_bool(plan, "allow_immediate_retry", 1);
    e2e_assert_num(plan, "base_retry_delay_minutes", 0);
    cv_test_assert_str(plan, "retry_decisions[0].action", "retry");
    cv_test_assert_str(plan, "retry_decisions[0].reason", E2E_ELIGIBLE);
    cv_test_assert_str(
        plan, "retry_decisions[0].next_retry_at",
        cv_test_json_str(plan, "retry_decisions[0].latest_delivery_at"));
    cv_http_response_free(&r);

    /* The cap: 2 failures with max 2. */
    e2e_retry_plan(pid, "{\"max_retry_attempts\": 2}", &r);
    cv_test_assert_str(r.json, "plan.retry_decisions[0].action", "suppress");
    cv_test_assert_str(r.json, "plan.retry_decisions[0].reason",
                       "maximum retry attempts 2 reached");
    cv_test_assert_str(r.json, "plan.alert_level", "healthy");
    cv_http_response_free(&r);

    /* generated_by given (trimmed) and an empty policy object. */
    {
        char body[256];

        snprintf(body, sizeof(body),
                 "{\"generated_by\": \" release-bot \", \"plan_id\": \"%s\", "
                 "\"retry_policy\": {}}",
                 pid);
        cv_test_post_json(&e2e_stack, E2E_RETRY_PATH, body, &r);
        assert_int_equal(r.status, 201);
        cv_test_assert_str(r.json, "plan.generated_by", "release-bot");
        cv_test_assert_int(r.json, "plan.max_retry_attempts", 3);
        assert_int_equal(
            cv_test_count("SELECT count(*) FROM evidence_events "
                          "WHERE record_id = $1 AND actor = "
                          "'release-bot'",
                          cv_test_json_str(r.json, "plan.retry_plan_id")),
            1);
        cv_http_response_free(&r);
    }
    free(pid);
}

static void
test_retry_http_plan_rejected(void **state)
{
    static const struct {
        const char *policy;
        const char *detail;
    } bad[] = {
        /* Out of range. */
        {"{\"max_retry_attempts\": 0}",
         "retry_policy.max_retry_attempts must be between 1 and 100"},
        {"{\"max_retry_attempts\": 101}",
         "retry_policy.max_retry_attempts must be between 1 and 100"},
        {"{\"max_retries\": -3}",
         "retry_policy.max_retries must be between 1 and 100"},
        {"{\"retry_delay_minutes\": 0}",
         "retry_policy.retry_delay_minutes must be between 1 and 10080"},
        {"{\"retry_delay_minutes\": 0.99}",
         "retry_policy.retry_delay_minutes must be between 1 and 10080"},
        {"{\"retry_delay_minutes\": 10081}",
         "retry_policy.retry_delay_minutes must be between 1 and 10080"},
        {"{\"delay_minutes\": -1}",
         "retry_policy.delay_minutes must be between 1 and 10080"},
        {"{\"allow_immediate_retry\": true, \"retry_delay_minutes\": -0.5}",
         "retry_policy.retry_delay_minutes must be between 0 and 10080"},
        {"{\"allow_immediate_retry\": true, \"delay_minutes\": 10080.5}",
         "retry_policy.delay_minutes must be between 0 and 10080"},
        {"{\"backoff_multiplier\": 0.5}",
         "retry_policy.backoff_multiplier must be between 1 and 10"},
        {"{\"backoff_multiplier\": 10.5}",
         "retry_policy.backoff_multiplier must be between 1 and 10"},
        {"{\"multiplier\": 0}",
         "retry_policy.multiplier must be between 1 and 10"},
        /* A name and its alias disagreeing. */
        {"{\"max_retry_attempts\": 3, \"max_retries\": 4}",
         "retry_policy.max_retry_attempts and its alias "
         "retry_policy.max_retries must not differ"},
        {"{\"retry_delay_minutes\": 5, \"delay_minutes\": 6}",
         "retry_policy.retry_delay_minutes and its alias "
         "retry_policy.delay_minutes must not differ"},
        {"{\"backoff_multiplier\": 2, \"multiplier\": 2.5}",
         "retry_policy.backoff_multiplier and its alias "
         "retry_policy.multiplier must not differ"},
        /* Not numbers at all: rejected before the service. */
        {"{\"max_retry_attempts\": \"three\"}",
         "retry_policy.max_retry_attempts must be an integer"},
        {"{\"max_retry_attempts\": 2.5}",
         "retry_policy.max_retry_attempts must be an integer"},
        {"{\"max_retry_attempts\": true}",
         "retry_policy.max_retry_attempts must be an integer"},
        {"{\"max_retries\": [3]}",
         "retry_policy.max_retries must be an integer"},
        {"{\"max_retry_attempts\": 1e30}",
         "retry_policy.max_retry_attempts is out of range"},
        {"{\"retry_delay_minutes\": \"15\"}",
         "retry_policy.retry_delay_minutes must be a number"},
        {"{\"delay_minutes\": \"soon\"}",
         "retry_policy.delay_minutes must be a number"},
        {"{\"backoff_multiplier\": \"2x\"}",
         "retry_policy.backoff_multiplier must be a number"},
        {"{\"multiplier\": {}}", "retry_policy.multiplier must be a number"},
        {"{\"allow_immediate_retry\": \"yes\"}",
         "retry_policy.allow_immediate_retry must be a boolean"},
        {"\"aggressive\"", "retry_policy must be an object"},
        {"[]", "retry_policy must be an object"},
        {"7", "retry_policy must be an object"},
    };
    char *pid = e2e_record_plan(NULL);
    char body[512], longid[300];

    (void)state;
    e2e_attempt0(pid, "slack", false, 500, 30);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(body, sizeof(body),
                 "{\"plan_id\": \"%s\", \"retry_policy\": %s}", pid,
                 bad[i].policy);
        cv_test_reject_400(&e2e_stack, E2E_RETRY_PATH, body, bad[i].detail);
    }
    /* generated_by. */
    snprintf(body, sizeof(body), "{\"plan_id\": \"%s\", \"generated_by\": 3}",
             pid);
    cv_test_reject_400(&e2e_stack, E2E_RETRY_PATH, body,
                       "generated_by must be a string");
    {
        char *big = malloc(400);
        int o;

        assert_non_null(big);
        o = sprintf(big, "{\"plan_id\": \"%s\", \"generated_by\": \"", pid);
        memset(big + o, 'g', 129);
        strcpy(big + o + 129, "\"}");
        cv_test_reject_400(&e2e_stack, E2E_RETRY_PATH, big,
                           "generated_by must be at most 128 characters");
        free(big);
    }
    /* plan_id: unknown or impossible plans are 404; not a string is 400. */
    cv_test_reject(&e2e_stack, "POST", E2E_RETRY_PATH, NULL,
                   "{\"plan_id\": \"gordackrecoveryesc-0000000000000000\"}",
                   404, "NOT_FOUND", E2E_NOT_FOUND);
    memset(longid, 'z', 200);
    longid[200] = '\0';
    snprintf(body, sizeof(body), "{\"plan_id\": \"%s\"}", longid);
    cv_test_reject(&e2e_stack, "POST", E2E_RETRY_PATH, NULL, body, 404,
                   "NOT_FOUND", E2E_NOT_FOUND);
    cv_test_reject_400(&e2e_stack, E2E_RETRY_PATH, "{\"plan_id\": 12}",
                       "plan_id must be a string");
    cv_test_reject_400(&e2e_stack, E2E_RETRY_PATH, "[]",
                       "request body must be a JSON object");
    free(pid);
}

/* Without plan_id: every plan; the stored event has no plan_id. Our
 * plan's pair is among the decisions. */
static void
test_retry_http_plan_all(void **state)
{
    char *pid = e2e_record_plan(NULL);
    cv_http_response r;
    json_t *list;
    int mine = 0;

    char body[2048];
    const char *next;
    int pages = 0;

    (void)state;
    e2e_attempt0(pid, "jira", false, 503, 1);
    /* The whole store, page by page (default page size). */
    snprintf(body, sizeof(body), "{}");
    for (;;) {
        cv_test_post_json(&e2e_stack, E2E_RETRY_PATH, body, &r);
        if (r.status != 201)
            fail_msg("expected 201, got %ld: %s", r.status, r.body);
        cv_test_assert_null(r.json, "plan.plan_id");
        list = cv_test_json_get(r.json, "plan.retry_decisions");
        assert_true(json_array_size(list) <= 1000);
        for (size_t i = 0; i < json_array_size(list); i++)
            if (strcmp(cv_test_json_str(json_array_get(list, i), "plan_id"),
                       pid) == 0) {
                mine++;
                cv_test_assert_str(json_array_get(list, i), "provider", "jira");
                cv_test_assert_str(json_array_get(list, i), "action", "wait");
            }
        cv_test_assert_int(r.json, "plan.decision_count",
                           (long long)json_array_size(list));
        assert_int_equal(
            cv_test_count("SELECT count(*) FROM evidence_events WHERE "
                          "record_id = $1 AND plan_id IS NULL",
                          cv_test_json_str(r.json, "plan.retry_plan_id")),
            1);
        next = json_string_value(json_object_get(r.json, "next_cursor"));
        if (next == NULL) {
            cv_http_response_free(&r);
            break;
        }
        snprintf(body, sizeof(body), "{\"cursor\": \"%s\"}", next);
        cv_http_response_free(&r);
        assert_true(++pages < 1000);
    }
    assert_int_equal(mine, 1);
    /* A body with no fields at all is the same request. */
    cv_test_post_json(&e2e_stack, E2E_RETRY_PATH, "", &r);
    assert_int_equal(r.status, 201);
    cv_http_response_free(&r);
    free(pid);
}

/* Appends "<plan_id> <provider>" of every decision of a reply's plan to
 * pairs (a jansson array of strings). */
static void
e2e_collect_pairs(json_t *reply, json_t *pairs)
{
    json_t *list = cv_test_json_get(reply, "plan.retry_decisions");

    for (size_t i = 0; i < json_array_size(list); i++) {
        char pair[512];

        snprintf(pair, sizeof(pair), "%s %s",
                 cv_test_json_str(json_array_get(list, i), "plan_id"),
                 cv_test_json_str(json_array_get(list, i), "provider"));
        json_array_append_new(pairs, json_string(pair));
    }
}

static int
e2e_pair_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The strings of a jansson array, sorted (free the array, not them). */
static const char **
e2e_sorted(json_t *pairs)
{
    size_t n = json_array_size(pairs);
    const char **v = calloc(n + 1, sizeof(*v));

    assert_non_null(v);
    for (size_t i = 0; i < n; i++)
        v[i] = json_string_value(json_array_get(pairs, i));
    qsort(v, n, sizeof(*v), e2e_pair_cmp);
    return v;
}

/*
 * Retry plans bigger than a page come in pages (docs/api.md paging): each
 * page is a stored retry plan of at most `limit` pairs with a next_cursor
 * while pairs remain; the pages of one listing hold every pair exactly
 * once. Bad paging input is a 400 naming the field.
 */
static void
test_retry_http_plan_paged(void **state)
{
    static const char *const provs[] = {"pa", "pb", "pc", "pd", "pe"};
    char *pid =
        e2e_record_plan("{\"provider\": \"pa\"}, {\"provider\": \"pb\"}, "
                        "{\"provider\": \"pc\"}, {\"provider\": \"pd\"}, "
                        "{\"provider\": \"pe\"}");
    char *other = e2e_record_plan(NULL);
    char body[2048], first_cursor[1024] = "";
    cv_http_response r;
    json_t *all = json_array(), *walked = json_array();
    const char **a, **w;
    const char *next;
    size_t total, limit, got = 0;
    int pages = 0;

    (void)state;
    for (size_t i = 0; i < 5; i++)
        e2e_attempt0(pid, provs[i], false, 503, 1);
    e2e_attempt0(other, "slack", false, 500, 1);

    /* One plan by two: pages of 2, 2 and 1, in provider order. */
    snprintf(body, sizeof(body), "{\"plan_id\": \"%s\", \"limit\": 2}", pid);
    for (size_t page = 0; page < 3; page++) {
        json_t *list;

        cv_test_post_json(&e2e_stack, E2E_RETRY_PATH, body, &r);
        if (r.status != 201)
            fail_msg("page %zu: %ld %s", page, r.status, r.body);
        list = cv_test_json_get(r.json, "plan.retry_decisions");
        assert_int_equal(json_array_size(list), page < 2 ? 2 : 1);
        cv_test_assert_int(r.json, "plan.decision_count", page < 2 ? 2 : 1);
        cv_test_assert_int(r.json, "metadata.decision_count", page < 2 ? 2 : 1);
        for (size_t i = 0; i < json_array_size(list); i++)
            cv_test_assert_str(json_array_get(list, i), "provider",
                               provs[2 * page + i]);
        assert_int_equal(
            cv_test_count("SELECT count(*) FROM retry_plans WHERE "
                          "retry_plan_id = $1",
                          cv_test_json_str(r.json, "plan.retry_plan_id")),
            1);
        next = json_string_value(json_object_get(r.json, "next_cursor"));
        if (page < 2) {
            assert_non_null(next);
            if (page == 0)
                snprintf(first_cursor, sizeof(first_cursor), "%s", next);
            snprintf(body, sizeof(body),
                     "{\"plan_id\": \"%s\", \"limit\": 2, \"cursor\": "
                     "\"%s\"}",
                     pid, next);
        } else {
            cv_test_assert_null(r.json, "next_cursor");
        }
        cv_http_response_free(&r);
    }

    /* The whole store: once in one page, then walked in about four; the
     * walk holds the same pairs, each once, no page over its limit. */
    cv_test_post_json(&e2e_stack, E2E_RETRY_PATH, "{\"limit\": 5000}", &r);
    assert_int_equal(r.status, 201);
    if (json_string_value(json_object_get(r.json, "next_cursor")) != NULL)
        fail_msg("more than 5000 pairs to decide in the test store");
    e2e_collect_pairs(r.json, all);
    cv_http_response_free(&r);
    total = json_array_size(all);
    assert_true(total >= 6);
    limit = (total + 3) / 4;
    snprintf(body, sizeof(body), "{\"limit\": %zu}", limit);
    for (;;) {
        size_t before = json_array_size(walked);

        cv_test_post_json(&e2e_stack, E2E_RETRY_PATH, body, &r);
        if (r.status != 201)
            fail_msg("whole-store page %d: %ld %s", pages, r.status, r.body);
        e2e_collect_pairs(r.json, walked);
        got = json_array_size(walked) - before;
        assert_true(got >= 1 && got <= limit);
        pages++;
        next = json_string_value(json_object_get(r.json, "next_cursor"));
        if (next == NULL) {
            cv_http_response_free(&r);
            break;
        }
        assert_int_equal(got, limit); /* only the last page is short */
        snprintf(body, sizeof(body), "{\"limit\": %zu, \"cursor\": \"%s\"}",
                 limit, next);
        cv_http_response_free(&r);
        assert_true(pages < 100);
    }
    assert_true(pages >= 2);
    assert_int_equal(json_array_size(walked), total);
    a = e2e_sorted(all);
    w = e2e_sorted(walked);
    for (size_t i = 0; i < total; i++) {
        if (strcmp(a[i], w[i]) != 0)
            fail_msg("pair %zu: one page has \"%s\", the walk \"%s\"", i, a[i],
                     w[i]);
        if (i > 0 && strcmp(w[i - 1], w[i]) == 0)
            fail_msg("the walk holds \"%s\" twice", w[i]);
    }
    free(a);
    free(w);
    json_decref(all);
    json_decref(walked);

    /* Bad paging input: 400 naming the field, nothing stored. */
    cv_test_reject_400(&e2e_stack, E2E_RETRY_PATH, "{\"limit\": 0}",
                       "limit must be between 1 and 5000");
    cv_test_reject_400(&e2e_stack, E2E_RETRY_PATH, "{\"limit\": 5001}",
                       "limit must be between 1 and 5000");
    cv_test_reject_400(&e2e_stack, E2E_RETRY_PATH, "{\"cursor\": \"zz\"}",
                       "cursor is invalid");
    /* Well-formed hex of "r1\na b\nc": a space is no plan id. */
    cv_test_reject_400(&e2e_stack, E2E_RETRY_PATH,
                       "{\"cursor\": \"72310a6120620a63\"}",
                       "cursor is invalid");
    /* Upper-case hex of a real cursor: not what the service wrote. */
    {
        char upper[1024];

        for (size_t i = 0; i <= strlen(first_cursor); i++)
            upper[i] = (char)(first_cursor[i] >= 'a' && first_cursor[i] <= 'f'
                                  ? first_cursor[i] - 'a' + 'A'
                                  : first_cursor[i]);
        snprintf(body, sizeof(body), "{\"cursor\": \"%s\"}", upper);
        cv_test_reject_400(&e2e_stack, E2E_RETRY_PATH, body,
                           "cursor is invalid");
    }
    snprintf(body, sizeof(body), "{\"plan_id\": \"%s\", \"cursor\": \"%s\"}",
             other, first_cursor);
    cv_test_reject_400(&e2e_stack, E2E_RETRY_PATH, body,
                       "cursor is not from a retry plan of this plan_id");
    free(pid);
    free(other);
}

static void
test_retry_http_bad_input_never_5xx(void **state)
{
    static const char *const bodies[] = {
        "null",
        "42",
        "{\"retry_policy\": null, \"plan_id\": null}",
        "{\"retry_policy\": {\"max_retry_attempts\": "
        "99999999999999999999999}}",
        "{\"retry_policy\": {\"retry_delay_minutes\": -1e400}}",
        "{\"retry_policy\": {\"backoff_multiplier\": NaN}}",
        "{\"retry_policy\": {\"max_retry_attempts\": "
        "\"-9223372036854775808\"}}",
        "{\"retry_policy\": {\"max_retry_attempts\": \"\"}}",
        "{\"plan_id\": \"a\\u0000b\"}",
        "{\"plan_id\": \"\xff\xfe\"}",
        "{\"generated_by\": \"\\ud800\"}",
        "{\"retry_policy\": {\"max_retry_attempts\": 3",
    };
    static const char *const delivery_bodies[] = {
        "null",
        "[true]",
        "{\"provider\": \"slack\", \"success\": false, \"status_code\": "
        "1e400}",
        "{\"provider\": \"slack\", \"success\": false, \"status_code\": "
        "\"99999999999999999999999\"}",
        "{\"provider\": \"slack\", \"success\": false, \"attempt_count\": "
        "-9223372036854775808}",
        "{\"provider\": \"slack\", \"success\": false, \"started_at\": "
        "\"9999-99-99T99:99:99Z\"}",
        "{\"provider\": \"slack\", \"success\": false, \"started_at\": "
        "\"2025-11-27T05:30:00.1234567890123Z\"}",
        "{\"provider\": \"slack\", \"success\": false, \"error\": "
        "\"a\\u0000b\"}",
        "{\"provider\": \"sl\xc3\xa4"
        "ck\", \"success\": false}",
        "{\"provider\": \"slack\", \"success\": false, \"error\": [\"x\"]}",
    };
    char *pid = e2e_record_plan(NULL);
    char path[1024];
    cv_test_counts before;

    (void)state;
    snprintf(path, sizeof(path), "%s", e2e_delivery_path(pid));
    cv_test_counts_snapshot(&before);
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        cv_http_response r;

        cv_test_request(&e2e_stack, "POST", E2E_RETRY_PATH, NULL, bodies[i],
                        NULL, &r);
        /* null fields are "not given": that one is a valid request. */
        if (i == 2) {
            assert_int_equal(r.status, 201);
            cv_http_response_free(&r);
            cv_test_counts_snapshot(&before);
            continue;
        }
        if (r.status < 400 || r.status >= 500)
            fail_msg("retry body #%zu: %ld %s", i, r.status, r.body);
        cv_test_assert_error(&r, r.status, NULL, NULL);
        cv_http_response_free(&r);
    }
    for (size_t i = 0; i < sizeof(delivery_bodies) / sizeof(delivery_bodies[0]);
         i++) {
        cv_http_response r;

        cv_test_request(&e2e_stack, "POST", path, NULL, delivery_bodies[i],
                        NULL, &r);
        if (r.status < 400 || r.status >= 500)
            fail_msg("delivery body #%zu: %ld %s", i, r.status, r.body);
        cv_test_assert_error(&r, r.status, NULL, NULL);
        cv_http_response_free(&r);
    }
    cv_test_counts_unchanged(&before, "bad input");
    /* Wrong methods and media types. */
    {
        cv_http_response r;

        cv_test_request(&e2e_stack, "GET", E2E_RETRY_PATH, NULL, NULL, NULL,
                        &r);
        assert_true(r.status == 404 || r.status == 405);
        cv_http_response_free(&r);
        cv_test_request(&e2e_stack, "GET", path, NULL, NULL, NULL, &r);
        cv_test_assert_error(&r, 405, NULL, NULL);
        assert_non_null(strstr(r.allow, "POST"));
        cv_http_response_free(&r);
        cv_test_request(&e2e_stack, "POST", path, "text/plain",
                        "{\"provider\": \"slack\", \"success\": false}", NULL,
                        &r);
        assert_int_equal(r.status, 415);
        cv_http_response_free(&r);
    }
    cv_test_counts_unchanged(&before, "bad input");
    free(pid);
}

/* The request id goes with both kinds of evidence event. */
static void
test_retry_http_request_id(void **state)
{
    char *pid = e2e_record_plan(NULL);
    char rid[64], hdr[96], body[256], sql[256];
    const char *hdrs[2] = {hdr, NULL};
    cv_http_response r;

    (void)state;
    snprintf(rid, sizeof(rid), "e2e-retry-%ld-%ld", (long)getpid(),
             (long)time(NULL));
    snprintf(hdr, sizeof(hdr), "X-Request-Id: %s", rid);
    cv_test_request(
        &e2e_stack, "POST", e2e_delivery_path(pid), NULL,
        "{\"provider\": \"slack\", \"success\": false, \"status_code\": "
        "503}",
        hdrs, &r);
    assert_int_equal(r.status, 201);
    assert_string_equal(r.request_id, rid);
    cv_http_response_free(&r);
    snprintf(body, sizeof(body), "{\"plan_id\": \"%s\"}", pid);
    cv_test_request(&e2e_stack, "POST", E2E_RETRY_PATH, NULL, body, hdrs, &r);
    assert_int_equal(r.status, 201);
    cv_http_response_free(&r);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM evidence_events WHERE plan_id = $1 AND "
             "request_id = '%s' AND kind IN ('connector_delivery', "
             "'recovery_escalation_retry_plan')",
             rid);
    assert_int_equal(cv_test_count(sql, pid), 2);
    /* An error answer carries it too. */
    cv_test_request(&e2e_stack, "POST", E2E_RETRY_PATH, NULL,
                    "{\"retry_policy\": {\"max_retries\": 0}}", hdrs, &r);
    cv_test_assert_error(&r, 400, "INVALID_ARGUMENT",
                         "retry_policy.max_retries must be between 1 and 100");
    assert_string_equal(r.request_id, rid);
    cv_http_response_free(&r);
    free(pid);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_http_delivery_created),
        cmocka_unit_test(test_retry_http_delivery_rejected),
        cmocka_unit_test(test_retry_http_plan_created),
        cmocka_unit_test(test_retry_http_plan_values_given),
        cmocka_unit_test(test_retry_http_plan_rejected),
        cmocka_unit_test(test_retry_http_plan_all),
        cmocka_unit_test(test_retry_http_plan_paged),
        cmocka_unit_test(test_retry_http_bad_input_never_5xx),
        cmocka_unit_test(test_retry_http_request_id),
    };

    return cmocka_run_group_tests_name("retry_http", tests, e2e_stack_start,
                                       e2e_stack_stop);
}
