/*
 * restart_test.c -- end-to-end: what was stored survives a restart of
 * every process. Records a plan and an acknowledgement through the
 * gateway, stops and starts the three services and the gateway (same
 * sockets and port), then acknowledges the same plan again.
 *
 * Needs CAVRA_DATABASE_URL pointing at a migrated database (scripts/test.sh
 * sets it). Run: ctest -R e2e.restart, or the binary alone.
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

#include "cv_test_api.h"

#define P                                                                      \
    "/runtime/go-pilot/rollback-drill-notifications/acknowledgements/"         \
    "audit-delivery"

static cv_test_stack rs_stack;

static void
rs_request(const char *method, const char *path, const char *body,
           cv_http_response *r)
{
    char url[512];

    snprintf(url, sizeof(url), "%s%s", rs_stack.base_url, path);
    if (cv_http_request(method, url, NULL, body, NULL, r) != 0)
        fail_msg("%s %s: no response", method, path);
}

static const char *
rs_str(json_t *root, const char *outer, const char *key)
{
    json_t *v = json_object_get(json_object_get(root, outer), key);

    if (!json_is_string(v))
        fail_msg("%s.%s is not a string", outer, key);
    return json_string_value(v);
}

/* Acknowledges (plan, provider); returns the new acknowledgement id. */
static char *
rs_ack(const char *plan_id, const char *provider, const char *state)
{
    cv_http_response r;
    char path[256], body[256];
    char *id;

    snprintf(path, sizeof(path), P "/recovery-escalations/%s/acknowledgements",
             plan_id);
    snprintf(body, sizeof(body),
             "{\"provider\": \"%s\", \"acknowledged_by\": \"alice\", "
             "\"acknowledgement_state\": \"%s\"}",
             provider, state);
    rs_request("POST", path, body, &r);
    if (r.status != 201)
        fail_msg("acknowledging %s: %ld %s", plan_id, r.status, r.body);
    assert_string_equal(rs_str(r.json, "acknowledgement", "plan_id"), plan_id);
    assert_string_equal(
        rs_str(r.json, "acknowledgement", "acknowledgement_state"), state);
    id = strdup(rs_str(r.json, "acknowledgement", "acknowledgement_id"));
    cv_http_response_free(&r);
    return id;
}

static int
rs_setup(void **state)
{
    (void)state;
    return cv_test_stack_start(&rs_stack, CV_STACK_ALL);
}

static int
rs_teardown(void **state)
{
    (void)state;
    return cv_test_stack_stop(&rs_stack);
}

static void
test_restart_plan_survives(void **state)
{
    cv_http_response r;
    char *plan_id, *a1, *a2;
    int port_before;

    (void)state;
    rs_request("POST", P "/recovery-escalation-plan",
               "{\"escalation_routes\": [{\"provider\": \"slack\", "
               "\"severity\": \"critical\"}, {\"provider\": \"jira\"}]}",
               &r);
    if (r.status != 201)
        fail_msg("recording a plan: %ld %s", r.status, r.body);
    plan_id = strdup(rs_str(r.json, "plan", "plan_id"));
    cv_http_response_free(&r);
    a1 = rs_ack(plan_id, "slack", "deferred");
    assert_int_equal(
        cv_test_count("SELECT count(*) FROM evidence_events WHERE plan_id = $1",
                      plan_id),
        2);

    port_before = rs_stack.gateway_port;
    assert_int_equal(cv_test_stack_restart(&rs_stack), 0);
    assert_int_equal(rs_stack.gateway_port, port_before);
    for (int i = 0; i < 4; i++)
        assert_true(rs_stack.pids[i] > 0);

    rs_request("GET", "/readyz", NULL, &r);
    if (r.status != 200)
        fail_msg("/readyz after restart: %ld %s", r.status, r.body);
    cv_http_response_free(&r);

    /* The stored plan is still known and still acknowledgeable. */
    a2 = rs_ack(plan_id, "slack", "resolved");
    assert_string_not_equal(a1, a2);
    assert_int_equal(
        cv_test_count("SELECT count(*) FROM evidence_events WHERE plan_id = $1",
                      plan_id),
        3);
    assert_int_equal(cv_test_count("SELECT count(*) FROM evidence_events WHERE "
                                   "plan_id = $1 AND kind = "
                                   "'recovery_escalation_ack'",
                                   plan_id),
                     2);
    /* The pair's current state is the acknowledgement made after it. */
    assert_int_equal(cv_test_count("SELECT count(*) FROM ack_current WHERE "
                                   "acknowledgement_id = $1 AND "
                                   "acknowledgement_state = 'resolved'",
                                   a2),
                     1);
    free(a1);
    free(a2);
    free(plan_id);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restart_plan_survives),
    };

    return cmocka_run_group_tests_name("restart", tests, rs_setup, rs_teardown);
}
