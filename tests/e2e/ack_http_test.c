/*
 * ack_http_test.c -- end-to-end tests of escalation plans (docs/api.md) and
 * acknowledgements (docs/api.md) through the REST gateway: the whole stack
 * (three services + gateway) against the real PostgreSQL, driven over HTTP
 * with libcurl.
 *
 * Needs CAVRA_DATABASE_URL pointing at a migrated database (scripts/test.sh
 * sets it). The group setup starts the stack once; the teardown stops it
 * and requires every process to exit cleanly. Each rejected request is
 * checked to have stored nothing (whole-table counts before and after:
 * safe because ctest runs e2e tests serially) and never to be a 5xx.
 *
 * Run: ctest -R e2e.ack_http, or the binary alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cv_test_api.h"

#define P                                                                      \
    "/runtime/go-pilot/rollback-drill-notifications/acknowledgements/"         \
    "audit-delivery"
#define E2E_PLAN_PATH CV_TEST_PLAN_PATH

#define E2E_PLAN_SCHEMA                                                        \
    "cavra.go-backend-pilot.rollback-drill-acknowledgement-audit-delivery-"    \
    "recovery-escalation-plan.v1"
#define E2E_ACK_SCHEMA                                                         \
    "cavra.go-backend-pilot.rollback-drill-acknowledgement-audit-delivery-"    \
    "recovery-escalation-ack.v1"
#define E2E_PLAN_KIND                                                          \
    "go-backend-rollback-drill-acknowledgement-audit-delivery-recovery-"       \
    "escalation-plan"
#define E2E_ACK_KIND                                                           \
    "go-backend-rollback-drill-acknowledgement-audit-delivery-recovery-"       \
    "escalation-ack"
#define E2E_STATE_RULE                                                         \
    "acknowledgement_state must be acknowledged, accepted, deferred, "         \
    "escalated, resolved, or dismissed"
#define E2E_NOT_FOUND "recovery escalation plan not found"

/* The HTTP body limit of docs/api.md. */
#define E2E_BODY_MAX 65536

CV_TEST_SUITE_STACK(e2e_stack, CV_STACK_ALL)

/* ---- helpers (the shared ones are in tests/support/cv_test_api.h) ---- */

/* A plan routing to slack (critical) and jira. */
static char *
e2e_plan_slack_jira(void)
{
    return cv_test_record_plan_http(
        &e2e_stack,
        "{\"escalation_routes\": [{\"provider\": \"slack\", \"severity\": "
        "\"critical\"}, {\"provider\": \"jira\"}]}");
}

static char *
e2e_ack_path(const char *plan_id)
{
    static char path[512];

    snprintf(path, sizeof(path), P "/recovery-escalations/%s/acknowledgements",
             plan_id);
    return path;
}

/* ---- tests ------------------------------------------------------------ */

static void
test_ack_http_healthz_readyz(void **state)
{
    cv_http_response r;

    (void)state;
    cv_test_request(&e2e_stack, "GET", "/healthz", NULL, NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_true(strncmp(r.content_type, "application/json", 16) == 0);
    cv_test_assert_str(r.json, "status", "ok");
    cv_http_response_free(&r);

    cv_test_request(&e2e_stack, "GET", "/readyz", NULL, NULL, NULL, &r);
    if (r.status != 200)
        fail_msg("/readyz: %ld %s", r.status, r.body);
    cv_test_assert_str(r.json, "status", "ready");
    cv_http_response_free(&r);
}

static void
test_ack_http_plan_created(void **state)
{
    cv_http_response r;
    json_t *plan, *meta;
    const char *id;

    (void)state;
    cv_test_post_json(
        &e2e_stack, E2E_PLAN_PATH,
        "{\"generated_by\": null, \"recovery_slo_minutes\": null,"
        " \"unknown_key\": {\"x\": [1, 2]},"
        " \"escalation_routes\": ["
        "  {\"provider\": \"Jira\", \"closure_state\": \"resolved\","
        "   \"failure_count\": 9, \"category\": \"retry-execution\"},"
        "  {\"provider\": \" Slack \", \"severity\": \"critical\","
        "   \"failure_count\": 2, \"age_minutes\": 10,"
        "   \"category\": \"retry-execution\", \"reason\": null,"
        "   \"extra\": true},"
        "  {\"provider\": \"teams\", \"severity\": \"info\","
        "   \"slo_breached\": true, \"closure_state\": \"mitigated\"},"
        "  {\"provider\": \"slack\", \"severity\": \"WARNING\","
        "   \"age_minutes\": 99}"
        "]}",
        &r);
    plan = cv_test_assert_created(&r, "plan", &meta);

    id = cv_test_json_str(plan, "plan_id");
    cv_test_assert_id(id, "gordackrecoveryesc-");
    cv_test_assert_str(plan, "schema_version", E2E_PLAN_SCHEMA);
    cv_test_assert_str(plan, "generated_by", "console");
    cv_test_assert_time(cv_test_json_str(plan, "generated_at"));
    cv_test_assert_int(plan, "recovery_slo_minutes", 240);
    cv_test_assert_str(plan, "alert_level", "critical");
    cv_test_assert_int(plan, "escalation_count", 4);
    cv_test_assert_int(plan, "critical_escalation_count", 1);
    cv_test_assert_int(plan, "slo_breached_count", 1);
    cv_test_assert_int(plan, "failed_execution_count", 11);
    /* slack (twice) open; jira resolved and teams mitigated are not. */
    cv_test_assert_int(plan, "open_recovery_count", 2);
    cv_test_assert_int(plan, "provider_count", 3);
    assert_int_equal(
        json_array_size(json_object_get(plan, "selected_providers")), 3);
    cv_test_assert_str(plan, "selected_providers[0]", "jira");
    cv_test_assert_str(plan, "selected_providers[1]", "slack");
    cv_test_assert_str(plan, "selected_providers[2]", "teams");
    /* critical first, then failure_count desc, then age desc. */
    assert_int_equal(
        json_array_size(json_object_get(plan, "escalation_routes")), 4);
    cv_test_assert_str(plan, "escalation_routes[0].provider", "slack");
    cv_test_assert_str(plan, "escalation_routes[0].severity", "critical");
    cv_test_assert_int(plan, "escalation_routes[0].failure_count", 2);
    cv_test_assert_int(plan, "escalation_routes[0].age_minutes", 10);
    cv_test_assert_null(plan, "escalation_routes[0].reason");
    cv_test_assert_bool(plan, "escalation_routes[0].slo_breached", 0);
    cv_test_assert_str(plan, "escalation_routes[1].provider", "jira");
    cv_test_assert_str(plan, "escalation_routes[1].severity", "warning");
    cv_test_assert_str(plan, "escalation_routes[1].category",
                       "retry-execution");
    cv_test_assert_str(plan, "escalation_routes[2].provider", "slack");
    cv_test_assert_str(plan, "escalation_routes[2].severity", "warning");
    cv_test_assert_int(plan, "escalation_routes[2].age_minutes", 99);
    cv_test_assert_str(plan, "escalation_routes[2].category",
                       "connector-recovery");
    cv_test_assert_str(plan, "escalation_routes[2].closure_state", "open");
    cv_test_assert_str(plan, "escalation_routes[3].provider", "teams");
    cv_test_assert_str(plan, "escalation_routes[3].severity", "info");
    cv_test_assert_bool(plan, "escalation_routes[3].slo_breached", 1);
    assert_null(json_object_get(
        json_array_get(json_object_get(plan, "escalation_routes"), 0),
        "extra"));
    cv_test_assert_str(plan, "executive_summary.status", "critical");
    cv_test_assert_int(plan, "executive_summary.tracked_provider_count", 3);
    cv_test_assert_int(plan, "executive_summary.failed_execution_count", 11);
    cv_test_assert_int(plan, "executive_summary.open_recovery_count", 2);
    cv_test_assert_int(plan, "executive_summary.slo_breached_count", 1);
    assert_true(json_array_size(json_object_get(plan, "controls")) > 0);
    cv_test_json_str(plan, "controls[0]");
    assert_null(json_object_get(plan, "unknown_key"));

    cv_test_assert_str(meta, "metadata_kind", E2E_PLAN_KIND);
    cv_test_assert_str(meta, "session_id", id);
    cv_test_assert_str(meta, "plan_id", id);
    cv_test_assert_str(meta, "created_at",
                       cv_test_json_str(plan, "generated_at"));
    assert_true(
        json_equal(json_object_get(meta, "recovery_escalation_plan"), plan));

    assert_int_equal(
        cv_test_count(
            "SELECT count(*) FROM escalation_plans WHERE plan_id = $1", id),
        1);
    assert_int_equal(cv_test_count("SELECT count(*) FROM evidence_events WHERE "
                                   "plan_id = $1 AND kind = "
                                   "'recovery_escalation_plan'",
                                   id),
                     1);
    cv_http_response_free(&r);
}

static void
test_ack_http_plan_values_given(void **state)
{
    cv_http_response r;

    (void)state;
    cv_test_post_json(
        &e2e_stack, E2E_PLAN_PATH,
        "{\"generated_by\": \" release-bot \", \"recovery_slo_minutes\": "
        "43200, \"escalation_routes\": [{\"provider\": \"pagerduty\", "
        "\"severity\": \"info\", \"reason\": \"webhook 503\", "
        "\"recommended_action\": \"rerun\", \"playbook_id\": \"PB-1\", "
        "\"slo_status\": \"at_risk\"}]}",
        &r);
    if (r.status != 201)
        fail_msg("expected 201, got %ld: %s", r.status, r.body);
    cv_test_assert_str(r.json, "plan.generated_by", "release-bot");
    cv_test_assert_int(r.json, "plan.recovery_slo_minutes", 43200);
    /* An info-only plan still has a route: warning. */
    cv_test_assert_str(r.json, "plan.alert_level", "warning");
    cv_test_assert_str(r.json, "plan.escalation_routes[0].reason",
                       "webhook 503");
    cv_test_assert_str(r.json, "plan.escalation_routes[0].recommended_action",
                       "rerun");
    cv_test_assert_str(r.json, "plan.escalation_routes[0].playbook_id", "PB-1");
    cv_test_assert_str(r.json, "plan.escalation_routes[0].slo_status",
                       "at_risk");
    cv_http_response_free(&r);

    /* Media type parameters are fine. */
    cv_test_request(&e2e_stack, "POST", E2E_PLAN_PATH,
                    "application/json; charset=utf-8",
                    "{\"recovery_slo_minutes\": 1, \"escalation_routes\": "
                    "[{\"provider\": \"x\"}]}",
                    NULL, &r);
    assert_int_equal(r.status, 201);
    cv_test_assert_int(r.json, "plan.recovery_slo_minutes", 1);
    cv_http_response_free(&r);
}

static void
test_ack_http_plan_rejected(void **state)
{
    char *big;
    size_t o;

    (void)state;
    cv_test_reject_400(&e2e_stack, E2E_PLAN_PATH, "{}",
                       "escalation_routes is required: give 1 to 200 routes");
    cv_test_reject_400(&e2e_stack, E2E_PLAN_PATH, "{\"escalation_routes\": []}",
                       "escalation_routes is required: give 1 to 200 routes");
    cv_test_reject_400(&e2e_stack, E2E_PLAN_PATH,
                       "{\"escalation_routes\": null}",
                       "escalation_routes is required: give 1 to 200 routes");
    /* An empty body is the empty object. */
    cv_test_reject_400(&e2e_stack, E2E_PLAN_PATH, "",
                       "escalation_routes is required: give 1 to 200 routes");

    /* 201 routes. */
    big = malloc(201 * 24 + 64);
    assert_non_null(big);
    o = (size_t)sprintf(big, "{\"escalation_routes\": [");
    for (int i = 0; i < 201; i++)
        o += (size_t)sprintf(big + o, "%s{\"provider\": \"p%d\"}",
                             i > 0 ? "," : "", i);
    sprintf(big + o, "]}");
    cv_test_reject_400(&e2e_stack, E2E_PLAN_PATH, big,
                       "escalation_routes must have at most 200 routes");
    free(big);

    cv_test_reject_400(&e2e_stack, E2E_PLAN_PATH,
                       "{\"recovery_slo_minutes\": 0, \"escalation_routes\": "
                       "[{\"provider\": \"slack\"}]}",
                       "recovery_slo_minutes must be between 1 and 43200");
    cv_test_reject_400(
        &e2e_stack, E2E_PLAN_PATH,
        "{\"recovery_slo_minutes\": 43201, \"escalation_routes\": "
        "[{\"provider\": \"slack\"}]}",
        "recovery_slo_minutes must be between 1 and 43200");
    cv_test_reject_400(
        &e2e_stack, E2E_PLAN_PATH,
        "{\"recovery_slo_minutes\": \"soon\", \"escalation_routes\":"
        " [{\"provider\": \"slack\"}]}",
        "recovery_slo_minutes must be an integer");
    cv_test_reject_400(&e2e_stack, E2E_PLAN_PATH,
                       "{\"recovery_slo_minutes\": 1.5, \"escalation_routes\": "
                       "[{\"provider\": \"slack\"}]}",
                       "recovery_slo_minutes must be an integer");
    cv_test_reject_400(&e2e_stack, E2E_PLAN_PATH,
                       "{\"escalation_routes\": [{\"provider\": \"slack\"}, "
                       "{\"severity\": \"info\"}]}",
                       "escalation_routes[1].provider is required");
    cv_test_reject_400(&e2e_stack, E2E_PLAN_PATH,
                       "{\"escalation_routes\": [{\"provider\": \"sl ack\"}]}",
                       "escalation_routes[0].provider must use only a-z, 0-9, "
                       "'.', '_' and '-'");
    cv_test_reject_400(&e2e_stack, E2E_PLAN_PATH,
                       "{\"escalation_routes\": [{\"provider\": \"slack\", "
                       "\"age_minutes\": \"ten\"}]}",
                       "escalation_routes[0].age_minutes must be an integer");
    cv_test_reject_400(
        &e2e_stack, E2E_PLAN_PATH,
        "{\"escalation_routes\": [{\"provider\": \"slack\"}, "
        "{\"provider\": \"jira\", \"failure_count\": -1}]}",
        "escalation_routes[1].failure_count must be between 0 and "
        "1000000000");
    cv_test_reject_400(
        &e2e_stack, E2E_PLAN_PATH,
        "{\"escalation_routes\": [{\"provider\": \"slack\", "
        "\"severity\": \"urgent\"}]}",
        "escalation_routes[0].severity must be critical, warning, "
        "or info");
    /* null for an enum is a bad value, not "not given". */
    cv_test_reject_400(
        &e2e_stack, E2E_PLAN_PATH,
        "{\"escalation_routes\": [{\"provider\": \"slack\", "
        "\"severity\": null}]}",
        "escalation_routes[0].severity must be critical, warning, "
        "or info");
    cv_test_reject_400(
        &e2e_stack, E2E_PLAN_PATH,
        "{\"escalation_routes\": [{\"provider\": \"slack\", "
        "\"severity\": 1}]}",
        "escalation_routes[0].severity must be critical, warning, "
        "or info");
    cv_test_reject_400(&e2e_stack, E2E_PLAN_PATH,
                       "{\"escalation_routes\": [{\"provider\": \"slack\", "
                       "\"slo_breached\": \"yes\"}]}",
                       "escalation_routes[0].slo_breached must be a boolean");
    cv_test_reject_400(&e2e_stack, E2E_PLAN_PATH,
                       "{\"generated_by\": 7, \"escalation_routes\": "
                       "[{\"provider\": \"slack\"}]}",
                       "generated_by must be a string");
    cv_test_reject_400(&e2e_stack, E2E_PLAN_PATH,
                       "{\"escalation_routes\": {\"provider\": \"slack\"}}",
                       "escalation_routes must be an array");
    cv_test_reject_400(&e2e_stack, E2E_PLAN_PATH,
                       "{\"escalation_routes\": [\"slack\"]}",
                       "escalation_routes[0] must be an object");
    cv_test_reject_400(&e2e_stack, E2E_PLAN_PATH, "[]",
                       "request body must be a JSON object");
    cv_test_reject_400(&e2e_stack, E2E_PLAN_PATH, "\"plan\"",
                       "request body must be a JSON object");
}

static void
test_ack_http_ack_created(void **state)
{
    cv_http_response r;
    char *pid = e2e_plan_slack_jira();
    json_t *ack, *meta;
    const char *aid;

    (void)state;
    cv_test_post_json(
        &e2e_stack, e2e_ack_path(pid),
        "{\"provider\": \" Slack \", \"acknowledged_by\": \"alice\","
        " \"acknowledgement_state\": \" Accepted \","
        " \"external_ref\": \"INC-4711\", \"notes\": \"reviewed\","
        " \"escalation_reason\": \"slo breach\", \"ignored\": [1]}",
        &r);
    ack = cv_test_assert_created(&r, "acknowledgement", &meta);

    aid = cv_test_json_str(ack, "acknowledgement_id");
    cv_test_assert_id(aid, "gordackrecoveryescack-");
    cv_test_assert_str(ack, "schema_version", E2E_ACK_SCHEMA);
    cv_test_assert_str(ack, "product", "CAVRA");
    cv_test_assert_str(ack, "plan_id", pid);
    cv_test_assert_str(ack, "provider", "slack");
    cv_test_assert_str(ack, "acknowledged_by", "alice");
    cv_test_assert_str(ack, "acknowledgement_state", "accepted");
    cv_test_assert_time(cv_test_json_str(ack, "acknowledged_at"));
    cv_test_assert_str(ack, "external_ref", "INC-4711");
    cv_test_assert_str(ack, "notes", "reviewed");
    cv_test_assert_str(ack, "escalation_reason", "slo breach");
    cv_test_assert_int(ack, "redaction_count", 0);
    assert_null(json_object_get(ack, "ignored"));

    cv_test_assert_str(meta, "metadata_kind", E2E_ACK_KIND);
    cv_test_assert_str(meta, "session_id", aid);
    cv_test_assert_str(meta, "acknowledgement_id", aid);
    cv_test_assert_str(meta, "created_at",
                       cv_test_json_str(ack, "acknowledged_at"));
    assert_true(cv_test_json_str(meta, "signer")[0] != '\0');
    cv_test_assert_str(meta, "plan_id", pid);
    cv_test_assert_str(meta, "provider", "slack");
    cv_test_assert_str(meta, "acknowledgement_state", "accepted");
    {
        /* The original's keys only: ours stay in the record. */
        static const char *const ours[] = {"redaction_count", NULL};

        cv_test_assert_embedded(
            json_object_get(meta, "recovery_escalation_acknowledgement"), ack,
            ours);
    }

    assert_int_equal(
        cv_test_count("SELECT count(*) FROM acknowledgements WHERE "
                      "acknowledgement_id = $1 AND "
                      "acknowledgement_state = 'accepted'",
                      aid),
        1);
    assert_int_equal(
        cv_test_count("SELECT count(*) FROM evidence_events WHERE plan_id = $1",
                      pid),
        2);
    assert_int_equal(cv_test_count("SELECT count(*) FROM evidence_events WHERE "
                                   "record_id = $1 AND kind = "
                                   "'recovery_escalation_ack'",
                                   aid),
                     1);
    cv_http_response_free(&r);

    /* Optional fields left out are null; the default state applies. */
    cv_test_post_json(&e2e_stack, e2e_ack_path(pid),
                      "{\"provider\": \"JIRA\", \"acknowledged_by\": \"bob\", "
                      "\"notes\": null}",
                      &r);
    if (r.status != 201)
        fail_msg("expected 201, got %ld: %s", r.status, r.body);
    cv_test_assert_str(r.json, "acknowledgement.provider", "jira");
    cv_test_assert_str(r.json, "acknowledgement.acknowledgement_state",
                       "acknowledged");
    cv_test_assert_null(r.json, "acknowledgement.external_ref");
    cv_test_assert_null(r.json, "acknowledgement.notes");
    cv_test_assert_null(r.json, "acknowledgement.escalation_reason");
    cv_http_response_free(&r);

    /* The plan comes from the path: a plan_id in the body is ignored. */
    {
        char *other = e2e_plan_slack_jira();
        char body[256];

        snprintf(body, sizeof(body),
                 "{\"provider\": \"slack\", \"acknowledged_by\": \"bob\", "
                 "\"plan_id\": \"%s\"}",
                 other);
        cv_test_post_json(&e2e_stack, e2e_ack_path(pid), body, &r);
        if (r.status != 201)
            fail_msg("expected 201, got %ld: %s", r.status, r.body);
        cv_test_assert_str(r.json, "acknowledgement.plan_id", pid);
        assert_int_equal(cv_test_count("SELECT count(*) FROM acknowledgements "
                                       "WHERE plan_id = $1",
                                       other),
                         0);
        cv_http_response_free(&r);
        free(other);
    }
    free(pid);
}

static void
test_ack_http_state_normalised(void **state)
{
    static const struct {
        const char *in, *out;
    } ok[] = {
        {"\"ESCALATED\"", "escalated"},       {"\"  resolved\\t\"", "resolved"},
        {"\"Dismissed\"", "dismissed"},       {"\"deferred\"", "deferred"},
        {"\"acknowledged\"", "acknowledged"},
    };
    static const char *const bad[] = {
        "\"dis-missed\"",
        "\"re-solved\"",
        "\"done\"",
        "\"\"",
        "null",
        "1",
        "true",
        "[\"accepted\"]",
        "{\"state\": \"accepted\"}",
        "\"unspecified\"",
    };
    char *pid = e2e_plan_slack_jira();
    char body[256];

    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        cv_http_response r;

        snprintf(body, sizeof(body),
                 "{\"provider\": \"slack\", \"acknowledged_by\": \"alice\", "
                 "\"acknowledgement_state\": %s}",
                 ok[i].in);
        cv_test_post_json(&e2e_stack, e2e_ack_path(pid), body, &r);
        if (r.status != 201)
            fail_msg("state %s: %ld %s", ok[i].in, r.status, r.body);
        cv_test_assert_str(r.json, "acknowledgement.acknowledgement_state",
                           ok[i].out);
        cv_test_assert_str(r.json, "metadata.acknowledgement_state", ok[i].out);
        cv_http_response_free(&r);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(body, sizeof(body),
                 "{\"provider\": \"slack\", \"acknowledged_by\": \"alice\", "
                 "\"acknowledgement_state\": %s}",
                 bad[i]);
        cv_test_reject_400(&e2e_stack, e2e_ack_path(pid), body, E2E_STATE_RULE);
    }
    /* The latest acknowledgement is the pair's current state. */
    assert_int_equal(cv_test_count("SELECT count(*) FROM ack_current WHERE "
                                   "plan_id = $1 AND provider = 'slack' AND "
                                   "acknowledgement_state = 'acknowledged'",
                                   pid),
                     1);
    free(pid);
}

static void
test_ack_http_ack_rejected(void **state)
{
    char *pid = e2e_plan_slack_jira();
    char *path;
    char msg[300];
    char *body;

    (void)state;
    path = strdup(e2e_ack_path(pid));
    cv_test_reject_400(&e2e_stack, path, "{\"acknowledged_by\": \"alice\"}",
                       "provider is required");
    cv_test_reject_400(&e2e_stack, path,
                       "{\"provider\": null, \"acknowledged_by\": \"alice\"}",
                       "provider is required");
    cv_test_reject_400(&e2e_stack, path,
                       "{\"provider\": \"  \", \"acknowledged_by\": \"a\"}",
                       "provider is required");
    cv_test_reject_400(&e2e_stack, path, "{}", "provider is required");
    cv_test_reject_400(&e2e_stack, path, "{\"provider\": \"slack\"}",
                       "acknowledged_by is required");
    cv_test_reject_400(&e2e_stack, path,
                       "{\"provider\": \"slack\", \"acknowledged_by\": \"\"}",
                       "acknowledged_by is required");
    cv_test_reject_400(&e2e_stack, path,
                       "{\"provider\": \"slack\", \"acknowledged_by\": null}",
                       "acknowledged_by is required");
    cv_test_reject_400(&e2e_stack, path,
                       "{\"provider\": 5, \"acknowledged_by\": \"alice\"}",
                       "provider must be a string");
    cv_test_reject_400(
        &e2e_stack, path,
        "{\"provider\": \"slack\", \"acknowledged_by\": \"alice\", "
        "\"notes\": {\"text\": \"x\"}}",
        "notes must be a string");
    cv_test_reject_400(
        &e2e_stack, path,
        "{\"provider\": \"slack\", \"acknowledged_by\": [\"a\"]}",
        "acknowledged_by must be a string");
    cv_test_reject_400(
        &e2e_stack, path,
        "{\"provider\": \"pager duty\", \"acknowledged_by\": \"a\"}",
        "provider must use only a-z, 0-9, '.', '_' and '-'");

    /* Lengths: at the maximum accepted elsewhere, one more rejected. */
    body = malloc(2200);
    assert_non_null(body);
    snprintf(body, 2200,
             "{\"provider\": \"%065d\", \"acknowledged_by\": \"alice\"}", 0);
    cv_test_reject_400(&e2e_stack, path, body,
                       "provider must be at most 64 characters");
    snprintf(body, 2200,
             "{\"provider\": \"slack\", \"acknowledged_by\": \"%0129d\"}", 0);
    cv_test_reject_400(&e2e_stack, path, body,
                       "acknowledged_by must be at most 128 characters");
    snprintf(body, 2200,
             "{\"provider\": \"slack\", \"acknowledged_by\": \"a\", "
             "\"external_ref\": \"%0129d\"}",
             0);
    cv_test_reject_400(&e2e_stack, path, body,
                       "external_ref must be at most 128 characters");
    snprintf(body, 2200,
             "{\"provider\": \"slack\", \"acknowledged_by\": \"a\", "
             "\"escalation_reason\": \"%0501d\"}",
             0);
    cv_test_reject_400(&e2e_stack, path, body,
                       "escalation_reason must be at most 500 characters");
    snprintf(body, 2200,
             "{\"provider\": \"slack\", \"acknowledged_by\": \"a\", "
             "\"notes\": \"%02001d\"}",
             0);
    cv_test_reject_400(&e2e_stack, path, body,
                       "notes must be at most 2000 characters");
    /* Exactly at the maxima: stored. */
    {
        cv_http_response r;
        char *ok = malloc(4096);

        assert_non_null(ok);
        snprintf(ok, 4096,
                 "{\"provider\": \"slack\", \"acknowledged_by\": \"%0128d\", "
                 "\"external_ref\": \"%0128d\", \"notes\": \"%02000d\", "
                 "\"escalation_reason\": \"%0500d\"}",
                 0, 0, 0, 0);
        cv_test_post_json(&e2e_stack, path, ok, &r);
        if (r.status != 201)
            fail_msg("fields at their maxima: %ld %s", r.status, r.body);
        cv_http_response_free(&r);
        free(ok);
    }
    free(body);

    /* A provider the plan does not route to. */
    snprintf(msg, sizeof(msg),
             "provider teams is not routed by recovery escalation plan %s; "
             "the plan's providers are jira, slack",
             pid);
    cv_test_reject_400(&e2e_stack, path,
                       "{\"provider\": \"Teams\", \"acknowledged_by\": \"a\"}",
                       msg);

    /* Unknown plans. */
    cv_test_reject(&e2e_stack, "POST",
                   e2e_ack_path("gordackrecoveryesc-0000000000000000"), NULL,
                   "{\"provider\": \"slack\", \"acknowledged_by\": \"alice\"}",
                   404, "NOT_FOUND", E2E_NOT_FOUND);
    cv_test_reject(&e2e_stack, "POST", e2e_ack_path("no-such-plan"), NULL,
                   "{\"provider\": \"slack\", \"acknowledged_by\": \"alice\"}",
                   404, "NOT_FOUND", E2E_NOT_FOUND);
    cv_test_reject(&e2e_stack, "POST",
                   e2e_ack_path("x%27%20OR%20%271%27%3D%271"), NULL,
                   "{\"provider\": \"slack\", \"acknowledged_by\": \"alice\"}",
                   404, "NOT_FOUND", E2E_NOT_FOUND);
    free(path);
    free(pid);
}

static void
test_ack_http_secrets_redacted(void **state)
{
    static const char *const secrets[] = {
        "abcd1234secret",
        "zq81Kx09PlmQ",
        "AKIAIOSFODNN7EXAMPLE",
        "hunter2pass",
    };
    cv_http_response r;
    char *pid = e2e_plan_slack_jira();
    const char *aid;

    (void)state;
    cv_test_post_json(
        &e2e_stack, e2e_ack_path(pid),
        "{\"provider\": \"slack\", \"acknowledged_by\": \"alice\","
        " \"notes\": \"rotated token=abcd1234secret after a call with "
        "Authorization: Bearer zq81Kx09PlmQ\","
        " \"escalation_reason\": \"key AKIAIOSFODNN7EXAMPLE leaked, see "
        "https://ops:hunter2pass@tickets.example/T-1?sig=abc\","
        " \"external_ref\": \"https://tickets.example/T-1\"}",
        &r);
    if (r.status != 201)
        fail_msg("expected 201, got %ld: %s", r.status, r.body);
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
        if (strstr(r.body, secrets[i]) != NULL)
            fail_msg("response contains the secret %s: %s", secrets[i], r.body);
    assert_non_null(
        strstr(cv_test_json_str(r.json, "acknowledgement.notes"), "REDACTED"));
    assert_non_null(
        strstr(cv_test_json_str(r.json, "acknowledgement.notes"), "rotated"));
    assert_true(json_integer_value(cv_test_json_get(
                    r.json, "acknowledgement.redaction_count")) >= 4);
    aid = cv_test_json_str(r.json, "acknowledgement.acknowledgement_id");
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
        char sql[256];

        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM acknowledgements a WHERE "
                 "acknowledgement_id = $1 AND a::text LIKE '%%%s%%'",
                 secrets[i]);
        assert_int_equal(cv_test_count(sql, aid), 0);
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM evidence_events WHERE record_id = $1 "
                 "AND record::text LIKE '%%%s%%'",
                 secrets[i]);
        assert_int_equal(cv_test_count(sql, aid), 0);
    }
    cv_http_response_free(&r);

    /* A rejected request never echoes the secret either. */
    cv_test_post_json(&e2e_stack, e2e_ack_path(pid),
                      "{\"provider\": \"token=abcd1234secret\", "
                      "\"acknowledged_by\": \"a\"}",
                      &r);
    assert_int_equal(r.status, 400);
    assert_null(strstr(r.body, "abcd1234secret"));
    cv_http_response_free(&r);

    /* external_ref is an identifier stored as sent: a secret in it is
     * refused (400 naming the field, not echoed), never redacted. */
    {
        static const struct {
            const char *ref;
            const char *secret;
            const char *detail;
        } refs[] = {
            {"https://ops:hunter2pass@tickets.example/T-1", "hunter2pass",
             "external_ref must match [A-Za-z0-9._:/#-]{1,128}"},
            {"T-1?sig=abcd1234secret", "abcd1234secret",
             "external_ref must match [A-Za-z0-9._:/#-]{1,128}"},
            {"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
             "9f86d081884c7d659a2feaa0c55ad015",
             "external_ref looks like a "
             "secret; identifiers must not carry credentials"},
        };
        cv_test_counts before;

        cv_test_counts_snapshot(&before);
        for (size_t i = 0; i < sizeof(refs) / sizeof(refs[0]); i++) {
            char body[512];

            snprintf(body, sizeof(body),
                     "{\"provider\": \"slack\", \"acknowledged_by\": \"a\", "
                     "\"external_ref\": \"%s\"}",
                     refs[i].ref);
            cv_test_post_json(&e2e_stack, e2e_ack_path(pid), body, &r);
            cv_test_assert_error(&r, 400, "INVALID_ARGUMENT", refs[i].detail);
            assert_null(strstr(r.body, refs[i].secret));
            cv_http_response_free(&r);
        }
        cv_test_counts_unchanged(&before, "a secret as external_ref");
    }
    free(pid);
}

static void
test_ack_http_protocol_errors(void **state)
{
    cv_http_response r;
    cv_test_counts before;
    char *big;
    const char *head = "{\"escalation_routes\": [{\"provider\": \"s\"}]";
    size_t hl = strlen(head);

    (void)state;
    /* 415: a body that is not declared JSON. */
    cv_test_reject(&e2e_stack, "POST", E2E_PLAN_PATH, "text/plain",
                   "{\"escalation_routes\": [{\"provider\": \"slack\"}]}", 415,
                   NULL, NULL);
    cv_test_reject(&e2e_stack, "POST", E2E_PLAN_PATH,
                   "application/x-www-form-urlencoded", "provider=slack", 415,
                   NULL, NULL);
    /* A body without any Content-Type is not declared JSON either. */
    cv_test_reject(&e2e_stack, "POST", E2E_PLAN_PATH, "",
                   "{\"escalation_routes\": [{\"provider\": \"slack\"}]}", 415,
                   NULL, NULL);
    cv_test_reject(
        &e2e_stack, "POST", e2e_ack_path("gordackrecoveryesc-0000000000000000"),
        "text/json-ish", "{\"provider\": \"slack\"}", 415, NULL, NULL);
    /* 400: not JSON. */
    cv_test_counts_snapshot(&before);
    cv_test_request(&e2e_stack, "POST", E2E_PLAN_PATH, NULL,
                    "{\"escalation_routes\": [", NULL, &r);
    cv_test_assert_error(&r, 400, "INVALID_ARGUMENT", NULL);
    assert_true(strncmp(cv_test_json_str(r.json, "detail"),
                        "request body is not valid JSON", 30) == 0);
    cv_http_response_free(&r);
    cv_test_counts_unchanged(&before, "invalid JSON");
    cv_test_reject(&e2e_stack, "POST",
                   e2e_ack_path("gordackrecoveryesc-0000000000000000"), NULL,
                   "provider=slack", 400, "INVALID_ARGUMENT", NULL);

    /* 413 past 64 KiB; exactly 64 KiB is read (white space pads it). */
    big = malloc(E2E_BODY_MAX + 2);
    assert_non_null(big);
    memcpy(big, head, hl);
    memset(big + hl, ' ', E2E_BODY_MAX - hl - 1);
    big[E2E_BODY_MAX - 1] = '}';
    big[E2E_BODY_MAX] = '\0';
    cv_test_post_json(&e2e_stack, E2E_PLAN_PATH, big, &r);
    if (r.status != 201)
        fail_msg("a body of exactly %d bytes: %ld %s", E2E_BODY_MAX, r.status,
                 r.body);
    cv_http_response_free(&r);
    memset(big + hl, ' ', E2E_BODY_MAX - hl);
    big[E2E_BODY_MAX] = '}';
    big[E2E_BODY_MAX + 1] = '\0';
    cv_test_reject(&e2e_stack, "POST", E2E_PLAN_PATH, NULL, big, 413, NULL,
                   NULL);
    free(big);

    /* 404 / 405. */
    cv_test_reject(&e2e_stack, "GET", "/no/such/path", NULL, NULL, 404, NULL,
                   NULL);
    cv_test_reject(&e2e_stack, "POST", P "/recovery-escalation-plans", NULL,
                   "{}", 404, NULL, NULL);
    cv_test_reject(&e2e_stack, "POST",
                   P "/recovery-escalations//acknowledgements", NULL,
                   "{\"provider\": \"slack\", \"acknowledged_by\": \"a\"}", 404,
                   NULL, NULL);

    cv_test_counts_snapshot(&before);
    cv_test_request(&e2e_stack, "GET", E2E_PLAN_PATH, NULL, NULL, NULL, &r);
    cv_test_assert_error(&r, 405, NULL, NULL);
    assert_non_null(strstr(r.allow, "POST"));
    cv_http_response_free(&r);
    cv_test_request(&e2e_stack, "DELETE",
                    e2e_ack_path("gordackrecoveryesc-0000000000000000"), NULL,
                    NULL, NULL, &r);
    cv_test_assert_error(&r, 405, NULL, NULL);
    assert_non_null(strstr(r.allow, "POST"));
    cv_http_response_free(&r);
    cv_test_request(&e2e_stack, "PUT", E2E_PLAN_PATH, NULL,
                    "{\"escalation_routes\": [{\"provider\": \"slack\"}]}",
                    NULL, &r);
    cv_test_assert_error(&r, 405, NULL, NULL);
    assert_non_null(strstr(r.allow, "POST"));
    cv_http_response_free(&r);
    cv_test_request(&e2e_stack, "POST", "/healthz", NULL, "{}", NULL, &r);
    cv_test_assert_error(&r, 405, NULL, NULL);
    assert_non_null(strstr(r.allow, "GET"));
    cv_http_response_free(&r);
    cv_test_counts_unchanged(&before, "405s");
}

static void
test_ack_http_request_id(void **state)
{
    static const char *const echo[] = {"X-Request-Id: test-123", NULL};
    static const char *const insane[] = {"X-Request-Id: bad id \"<script>\"",
                                         NULL};
    cv_http_response r1, r2;
    char hdr[64], rid[40], sql[200], *long_hdr;
    const char *hdrs[2] = {hdr, NULL};
    const char *lh[2];
    const char *pid;

    (void)state;
    /* Echoed on success and on errors, and in the error body. */
    cv_test_request(&e2e_stack, "GET", "/healthz", NULL, NULL, echo, &r1);
    assert_string_equal(r1.request_id, "test-123");
    cv_http_response_free(&r1);
    cv_test_request(&e2e_stack, "POST",
                    e2e_ack_path("gordackrecoveryesc-0000000000000000"), NULL,
                    "{\"provider\": \"slack\", \"acknowledged_by\": \"alice\"}",
                    echo, &r1);
    cv_test_assert_error(&r1, 404, "NOT_FOUND", E2E_NOT_FOUND);
    assert_string_equal(r1.request_id, "test-123");
    cv_http_response_free(&r1);

    /* Stored with the evidence of the request. */
    snprintf(rid, sizeof(rid), "e2e-%ld-%ld", (long)getpid(), (long)time(NULL));
    snprintf(hdr, sizeof(hdr), "X-Request-Id: %s", rid);
    cv_test_request(&e2e_stack, "POST", E2E_PLAN_PATH, NULL,
                    "{\"escalation_routes\": [{\"provider\": \"slack\"}]}",
                    hdrs, &r1);
    assert_int_equal(r1.status, 201);
    assert_string_equal(r1.request_id, rid);
    pid = cv_test_json_str(r1.json, "plan.plan_id");
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM evidence_events WHERE record_id = $1 AND "
             "request_id = '%s'",
             rid);
    assert_int_equal(cv_test_count(sql, pid), 1);
    cv_http_response_free(&r1);

    /* Generated when absent: non-empty and different per request. */
    cv_test_request(&e2e_stack, "GET", "/healthz", NULL, NULL, NULL, &r1);
    cv_test_request(&e2e_stack, "GET", "/healthz", NULL, NULL, NULL, &r2);
    assert_true(strlen(r1.request_id) >= 8);
    assert_string_not_equal(r1.request_id, r2.request_id);
    cv_http_response_free(&r1);
    cv_http_response_free(&r2);

    /* Not echoed when it is not sane. */
    cv_test_request(&e2e_stack, "GET", "/healthz", NULL, NULL, insane, &r1);
    assert_string_not_equal(r1.request_id, "bad id \"<script>\"");
    assert_null(strchr(r1.request_id, '<'));
    cv_http_response_free(&r1);
    long_hdr = malloc(1100);
    assert_non_null(long_hdr);
    strcpy(long_hdr, "X-Request-Id: ");
    memset(long_hdr + 14, 'a', 1000);
    long_hdr[1014] = '\0';
    lh[0] = long_hdr;
    lh[1] = NULL;
    cv_test_request(&e2e_stack, "GET", "/healthz", NULL, NULL, lh, &r1);
    assert_true(strlen(r1.request_id) < 1000);
    cv_http_response_free(&r1);
    free(long_hdr);
}

static void
test_ack_http_bad_input_never_5xx(void **state)
{
    static const char *const bodies[] = {
        "null",
        "42",
        "true",
        "{\"escalation_routes\": [null]}",
        "{\"escalation_routes\": [{\"provider\": {}}]}",
        "{\"escalation_routes\": [{\"provider\": \"slack\", "
        "\"age_minutes\": 1e400}]}",
        "{\"escalation_routes\": [{\"provider\": \"slack\", "
        "\"failure_count\": 99999999999999999999999}]}",
        "{\"escalation_routes\": [{\"provider\": \"slack\", "
        "\"age_minutes\": -0.5}]}",
        "{\"escalation_routes\": [{\"provider\": \"sl\\u0000ack\"}]}",
        "{\"generated_by\": \"a\\u0000b\", \"escalation_routes\": "
        "[{\"provider\": \"slack\"}]}",
        "{\"generated_by\": \"\xff\xfe\", \"escalation_routes\": "
        "[{\"provider\": \"slack\"}]}",
        "{\"generated_by\": \"\\ud800\", \"escalation_routes\": "
        "[{\"provider\": \"slack\"}]}",
        "{\"escalation_routes\": [{\"provider\": \"slack\"}]",
        "{\"a\":",
        "\xef\xbb\xbf{}",
        "{\"escalation_routes\": [{\"provider\": \"slack\", "
        "\"provider\": 3}]}",
    };
    static const char *const ack_bodies[] = {
        "null",
        "[1, 2, 3]",
        "{\"provider\": [], \"acknowledged_by\": {}}",
        "{\"provider\": \"slack\", \"acknowledged_by\": \"a\", "
        "\"acknowledgement_state\": 99}",
        "{\"provider\": \"slack\", \"acknowledged_by\": \"a\\u0000\"}",
        "{\"provider\": \"slack\", \"acknowledged_by\": \"\xc3\x28\"}",
        "{\"provider\": \"sl\xc3\xa4"
        "ck\", \"acknowledged_by\": \"a\"}",
        "{\"provider\": \"slack\", \"acknowledged_by\": \"a\", \"plan_id\": "
        "\"gordackrecoveryesc-0000000000000000\", \"notes\": 1.5}",
    };
    char *pid = e2e_plan_slack_jira();
    char *path;
    char *deep;
    cv_test_counts before;

    (void)state;
    path = strdup(e2e_ack_path(pid));
    cv_test_counts_snapshot(&before);
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        cv_http_response r;

        cv_test_request(&e2e_stack, "POST", E2E_PLAN_PATH, NULL, bodies[i],
                        NULL, &r);
        if (r.status < 400 || r.status >= 500)
            fail_msg("plan body #%zu: %ld %s", i, r.status, r.body);
        cv_test_assert_error(&r, r.status, NULL, NULL);
        cv_http_response_free(&r);
    }
    for (size_t i = 0; i < sizeof(ack_bodies) / sizeof(ack_bodies[0]); i++) {
        cv_http_response r;

        cv_test_request(&e2e_stack, "POST", path, NULL, ack_bodies[i], NULL,
                        &r);
        if (r.status < 400 || r.status >= 500)
            fail_msg("ack body #%zu: %ld %s", i, r.status, r.body);
        cv_test_assert_error(&r, r.status, NULL, NULL);
        cv_http_response_free(&r);
    }
    /* 5000 nested arrays. */
    deep = malloc(10001 + 64);
    assert_non_null(deep);
    strcpy(deep, "{\"escalation_routes\": ");
    {
        size_t o = strlen(deep);

        memset(deep + o, '[', 5000);
        memset(deep + o + 5000, ']', 5000);
        strcpy(deep + o + 10000, "}");
    }
    {
        cv_http_response r;

        cv_test_request(&e2e_stack, "POST", E2E_PLAN_PATH, NULL, deep, NULL,
                        &r);
        if (r.status < 400 || r.status >= 500)
            fail_msg("deep body: %ld %s", r.status, r.body);
        cv_http_response_free(&r);
    }
    free(deep);
    cv_test_counts_unchanged(&before, "bad input");
    /* Everything still answers. */
    test_ack_http_healthz_readyz(state);
    free(path);
    free(pid);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ack_http_healthz_readyz),
        cmocka_unit_test(test_ack_http_plan_created),
        cmocka_unit_test(test_ack_http_plan_values_given),
        cmocka_unit_test(test_ack_http_plan_rejected),
        cmocka_unit_test(test_ack_http_ack_created),
        cmocka_unit_test(test_ack_http_state_normalised),
        cmocka_unit_test(test_ack_http_ack_rejected),
        cmocka_unit_test(test_ack_http_secrets_redacted),
        cmocka_unit_test(test_ack_http_protocol_errors),
        cmocka_unit_test(test_ack_http_request_id),
        cmocka_unit_test(test_ack_http_bad_input_never_5xx),
    };

    return cmocka_run_group_tests_name("ack_http", tests, e2e_stack_start,
                                       e2e_stack_stop);
}
