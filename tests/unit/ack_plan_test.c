/*
 * ack_plan_test.c -- unit tests for services/ack/ack_plan.c: validating
 * plan and acknowledgement requests and building their records (docs/api.md,
 * 5.1), without any I/O.
 *
 * Requests are built as the RPC layer hands them over (protobuf-c
 * messages), so values a JSON client cannot send (an enum number outside
 * the enum) are covered too. Every expected value is written out here from
 * docs/api.md, never taken from the code under test. Run: ctest -L unit, or
 * the binary alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ack_plan.h"
#include "cv_plan_ref.h"

/* 2025-11-27T05:29:23.123456Z */
#define T_NOW_US   1764221363123456LL
#define T_NOW_TEXT "2025-11-27T05:29:23.123456Z"

#define T_PLAN_SCHEMA                                                          \
    "cavra.go-backend-pilot.rollback-drill-acknowledgement-audit-delivery-"    \
    "recovery-escalation-plan.v1"
#define T_ACK_SCHEMA                                                           \
    "cavra.go-backend-pilot.rollback-drill-acknowledgement-audit-delivery-"    \
    "recovery-escalation-ack.v1"
#define T_PLAN_KIND                                                            \
    "go-backend-rollback-drill-acknowledgement-audit-delivery-recovery-"       \
    "escalation-plan"
#define T_ACK_KIND                                                             \
    "go-backend-rollback-drill-acknowledgement-audit-delivery-recovery-"       \
    "escalation-ack"
#define T_STATE_RULE                                                           \
    "acknowledgement_state must be acknowledged, accepted, deferred, "         \
    "escalated, resolved, or dismissed"
#define T_IDENT_RULE "must use only a-z, 0-9, '.', '_' and '-'"

/* ---- helpers ---------------------------------------------------------- */

/* A plan request with room for one route more than the maximum. */
typedef struct t_plan_req {
    Cv__RecordPlanRequest req;
    Cv__EscalationRoute routes[201];
    Cv__EscalationRoute *ptrs[201];
} t_plan_req;

/* n routes, each with provider "slack" and nothing else set. */
static void
t_plan_req_init(t_plan_req *t, size_t n)
{
    cv__record_plan_request__init(&t->req);
    for (size_t i = 0; i < 201; i++) {
        cv__escalation_route__init(&t->routes[i]);
        t->routes[i].provider = "slack";
        t->ptrs[i] = &t->routes[i];
    }
    t->req.n_escalation_routes = n;
    t->req.escalation_routes = t->ptrs;
}

static void
t_route_set(Cv__EscalationRoute *r, const char *provider, int severity,
            int64_t failures, int64_t age)
{
    r->provider = (char *)provider;
    if (severity != 0) {
        r->has_severity = 1;
        r->severity = severity;
    }
    if (failures >= 0) {
        r->has_failure_count = 1;
        r->failure_count = failures;
    }
    if (age >= 0) {
        r->has_age_minutes = 1;
        r->age_minutes = age;
    }
}

/* Builds a plan that must succeed; fails the test with the error text. */
static Cv__EscalationPlan *
t_plan_ok(const Cv__RecordPlanRequest *req, const char *actor,
          const char *request_id)
{
    Cv__EscalationPlan *p = NULL;
    cv_error err;
    int rv;

    cv_error_clear(&err);
    rv = ack_plan_build(req, actor, request_id, T_NOW_US, &p, &err);
    if (rv != 0)
        fail_msg("ack_plan_build failed (%d): %s", rv, err.msg);
    assert_non_null(p);
    return p;
}

/* Asserts that the plan request is rejected with exactly msg. */
static void
t_plan_fails(const Cv__RecordPlanRequest *req, const char *msg)
{
    Cv__EscalationPlan *p = (Cv__EscalationPlan *)0x1;
    cv_error err;
    int rv;

    cv_error_clear(&err);
    rv = ack_plan_build(req, NULL, "req-test", T_NOW_US, &p, &err);
    if (rv == 0) {
        protobuf_c_message_free_unpacked(&p->base, NULL);
        fail_msg("expected \"%s\", but the plan was built", msg);
    }
    assert_int_equal(rv, CV_INVALID_ARGUMENT);
    assert_int_equal(err.code, CV_INVALID_ARGUMENT);
    assert_string_equal(err.msg, msg);
    assert_null(p);
}

static void
t_plan_free(Cv__EscalationPlan *p)
{
    protobuf_c_message_free_unpacked(&p->base, NULL);
}

/* An acknowledgement request for plan "gordackrecoveryesc-0123456789abcdef"
 * by "alice" for "slack"; callers change what they test. */
static void
t_ack_req_init(Cv__AcknowledgeRequest *r)
{
    cv__acknowledge_request__init(r);
    r->plan_id = "gordackrecoveryesc-0123456789abcdef";
    r->provider = "slack";
    r->acknowledged_by = "alice";
}

static Cv__Acknowledgement *
t_ack_ok(const Cv__AcknowledgeRequest *req, const char *actor,
         const char *request_id)
{
    Cv__Acknowledgement *a = NULL;
    cv_error err;
    int rv;

    cv_error_clear(&err);
    rv = ack_ack_build(req, actor, request_id, T_NOW_US, &a, &err);
    if (rv != 0)
        fail_msg("ack_ack_build failed (%d): %s", rv, err.msg);
    assert_non_null(a);
    return a;
}

static void
t_ack_fails_as(const Cv__AcknowledgeRequest *req, const char *actor,
               const char *msg)
{
    Cv__Acknowledgement *a = (Cv__Acknowledgement *)0x1;
    cv_error err;
    int rv;

    cv_error_clear(&err);
    rv = ack_ack_build(req, actor, "req-test", T_NOW_US, &a, &err);
    if (rv == 0) {
        protobuf_c_message_free_unpacked(&a->base, NULL);
        fail_msg("expected \"%s\", but the acknowledgement was built", msg);
    }
    assert_int_equal(rv, CV_INVALID_ARGUMENT);
    assert_int_equal(err.code, CV_INVALID_ARGUMENT);
    assert_string_equal(err.msg, msg);
    assert_null(a);
}

static void
t_ack_fails(const Cv__AcknowledgeRequest *req, const char *msg)
{
    t_ack_fails_as(req, NULL, msg);
}

static void
t_ack_free(Cv__Acknowledgement *a)
{
    protobuf_c_message_free_unpacked(&a->base, NULL);
}

/* Asserts id == prefix + exactly 16 lowercase hex digits. */
static void
t_assert_id(const char *id, const char *prefix)
{
    size_t pl = strlen(prefix);

    assert_non_null(id);
    if (strncmp(id, prefix, pl) != 0)
        fail_msg("id %s does not start with %s", id, prefix);
    assert_int_equal(strlen(id), pl + 16);
    for (size_t i = pl; i < pl + 16; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            fail_msg("id %s: '%c' is not lowercase hex", id, id[i]);
}

/* A malloc'd string of n copies of unit. */
static char *
t_repeat(const char *unit, size_t n)
{
    size_t ul = strlen(unit);
    char *s = malloc(ul * n + 1);

    assert_non_null(s);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * ul, unit, ul);
    s[ul * n] = '\0';
    return s;
}

/* Asserts two messages pack to the same bytes (a deep equality). */
static void
t_assert_same_message(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
    size_t la, lb;
    uint8_t *ba, *bb;

    assert_non_null(a);
    assert_non_null(b);
    la = protobuf_c_message_get_packed_size(a);
    lb = protobuf_c_message_get_packed_size(b);
    assert_int_equal(la, lb);
    ba = malloc(la + 1);
    bb = malloc(lb + 1);
    assert_non_null(ba);
    assert_non_null(bb);
    protobuf_c_message_pack(a, ba);
    protobuf_c_message_pack(b, bb);
    assert_memory_equal(ba, bb, la);
    free(ba);
    free(bb);
}

/* ---- plans ------------------------------------------------------------ */

static void
test_ack_plan_defaults(void **state)
{
    t_plan_req t;
    Cv__EscalationPlan *p;
    Cv__EscalationRoute *r;

    (void)state;
    t_plan_req_init(&t, 1);
    t.routes[0].provider = "  Slack ";
    p = t_plan_ok(&t.req, NULL, "req-defaults");

    assert_string_equal(p->schema_version, T_PLAN_SCHEMA);
    assert_string_equal(p->product, "CAVRA");
    t_assert_id(p->plan_id, "gordackrecoveryesc-");
    assert_string_equal(p->generated_at, T_NOW_TEXT);
    assert_string_equal(p->generated_by, "console");
    assert_true(p->has_recovery_slo_minutes);
    assert_int_equal(p->recovery_slo_minutes, 240);
    assert_true(p->has_alert_level);
    assert_int_equal(p->alert_level, CV__ALERT_LEVEL__ALERT_LEVEL_WARNING);
    assert_int_equal(p->escalation_count, 1);
    assert_int_equal(p->critical_escalation_count, 0);
    assert_int_equal(p->slo_breached_count, 0);
    assert_int_equal(p->failed_execution_count, 0);
    assert_int_equal(p->open_recovery_count, 1);
    assert_int_equal(p->provider_count, 1);
    assert_int_equal(p->n_selected_providers, 1);
    assert_string_equal(p->selected_providers[0], "slack");
    assert_true(p->has_redaction_count);
    assert_int_equal(p->redaction_count, 0);
    assert_true(p->n_controls > 0);
    for (size_t i = 0; i < p->n_controls; i++)
        assert_true(p->controls[i] != NULL && p->controls[i][0] != '\0');

    assert_int_equal(p->n_escalation_routes, 1);
    r = p->escalation_routes[0];
    assert_string_equal(r->provider, "slack");
    assert_string_equal(r->category, "connector-recovery");
    assert_true(r->has_severity);
    assert_int_equal(r->severity, CV__SEVERITY__SEVERITY_WARNING);
    assert_string_equal(r->closure_state, "open");
    assert_string_equal(r->slo_status, "within_slo");
    assert_int_equal(r->age_minutes, 0);
    assert_int_equal(r->failure_count, 0);
    assert_true(r->has_slo_breached);
    assert_false(r->slo_breached);
    assert_null(r->reason);
    assert_null(r->recommended_action);
    assert_null(r->playbook_id);

    assert_non_null(p->executive_summary);
    assert_int_equal(p->executive_summary->status,
                     CV__ALERT_LEVEL__ALERT_LEVEL_WARNING);
    assert_int_equal(p->executive_summary->tracked_provider_count, 1);
    assert_int_equal(p->executive_summary->failed_execution_count, 0);
    assert_int_equal(p->executive_summary->open_recovery_count, 1);
    assert_int_equal(p->executive_summary->slo_breached_count, 0);
    t_plan_free(p);
}

static void
test_ack_plan_given_values_kept(void **state)
{
    t_plan_req t;
    Cv__EscalationPlan *p;
    Cv__EscalationRoute *r;

    (void)state;
    t_plan_req_init(&t, 1);
    t.req.generated_by = "  release-bot  ";
    t.req.has_recovery_slo_minutes = 1;
    t.req.recovery_slo_minutes = 30;
    r = &t.routes[0];
    t_route_set(r, "Jira", CV__SEVERITY__SEVERITY_INFO, 2, 45);
    r->category = " Retry-Execution ";
    r->closure_state = "Review_Required";
    r->reason = "  webhook returned 503  ";
    r->recommended_action = "re-run the connector";
    r->playbook_id = "PB-17";
    r->slo_status = "At-Risk";
    p = t_plan_ok(&t.req, NULL, "req-given");

    assert_string_equal(p->generated_by, "release-bot");
    assert_int_equal(p->recovery_slo_minutes, 30);
    r = p->escalation_routes[0];
    assert_string_equal(r->provider, "jira");
    assert_string_equal(r->category, "retry-execution");
    assert_string_equal(r->closure_state, "review_required");
    assert_string_equal(r->slo_status, "at-risk");
    assert_int_equal(r->severity, CV__SEVERITY__SEVERITY_INFO);
    assert_int_equal(r->failure_count, 2);
    assert_int_equal(r->age_minutes, 45);
    assert_string_equal(r->reason, "webhook returned 503");
    assert_string_equal(r->recommended_action, "re-run the connector");
    assert_string_equal(r->playbook_id, "PB-17");
    /* An info route is still a route: warning, not healthy. */
    assert_int_equal(p->alert_level, CV__ALERT_LEVEL__ALERT_LEVEL_WARNING);
    assert_int_equal(p->failed_execution_count, 2);
    t_plan_free(p);
}

static void
test_ack_plan_route_sorting(void **state)
{
    /* input order a..g; expected: critical first (e, g tie: input order),
     * then failure_count desc, then age desc, ties in input order. */
    static const char *const want[7] = {"e", "g", "b", "d", "f", "c", "a"};
    t_plan_req t;
    Cv__EscalationPlan *p;

    (void)state;
    t_plan_req_init(&t, 7);
    t_route_set(&t.routes[0], "a", CV__SEVERITY__SEVERITY_WARNING, 1, 5);
    t_route_set(&t.routes[1], "b", CV__SEVERITY__SEVERITY_CRITICAL, 0, 0);
    t_route_set(&t.routes[2], "c", CV__SEVERITY__SEVERITY_INFO, 5, 1);
    t_route_set(&t.routes[3], "d", CV__SEVERITY__SEVERITY_WARNING, 5, 10);
    t_route_set(&t.routes[4], "e", CV__SEVERITY__SEVERITY_CRITICAL, 2, 3);
    t_route_set(&t.routes[5], "f", CV__SEVERITY__SEVERITY_WARNING, 5, 10);
    t_route_set(&t.routes[6], "g", CV__SEVERITY__SEVERITY_CRITICAL, 2, 3);
    /* Tell the tied routes apart by a field the sort ignores. */
    t.routes[3].playbook_id = "first";
    t.routes[5].playbook_id = "second";
    p = t_plan_ok(&t.req, NULL, "req-sort");

    assert_int_equal(p->n_escalation_routes, 7);
    for (size_t i = 0; i < 7; i++)
        if (strcmp(p->escalation_routes[i]->provider, want[i]) != 0)
            fail_msg("route %zu is %s, expected %s", i,
                     p->escalation_routes[i]->provider, want[i]);
    assert_string_equal(p->escalation_routes[3]->playbook_id, "first");
    assert_string_equal(p->escalation_routes[4]->playbook_id, "second");
    assert_int_equal(p->alert_level, CV__ALERT_LEVEL__ALERT_LEVEL_CRITICAL);
    assert_int_equal(p->critical_escalation_count, 3);
    assert_int_equal(p->provider_count, 7);
    t_plan_free(p);
}

static void
test_ack_plan_sort_keeps_input_order_on_ties(void **state)
{
    t_plan_req t;
    Cv__EscalationPlan *p;
    char names[40][8];

    (void)state;
    /* 40 identical routes (same sort keys): the output keeps input order.
     * A merge or insertion sort might hide an unstable comparator with 2
     * items; 40 exercise the general path. */
    t_plan_req_init(&t, 40);
    for (size_t i = 0; i < 40; i++) {
        snprintf(names[i], sizeof(names[i]), "p%02zu", 39 - i);
        t_route_set(&t.routes[i], names[i], CV__SEVERITY__SEVERITY_CRITICAL, 3,
                    7);
    }
    p = t_plan_ok(&t.req, NULL, "req-stable");
    for (size_t i = 0; i < 40; i++)
        assert_string_equal(p->escalation_routes[i]->provider, names[i]);
    /* selected_providers are sorted regardless. */
    assert_int_equal(p->n_selected_providers, 40);
    assert_string_equal(p->selected_providers[0], "p00");
    assert_string_equal(p->selected_providers[39], "p39");
    t_plan_free(p);
}

static void
test_ack_plan_alert_level(void **state)
{
    t_plan_req t;
    Cv__EscalationPlan *p;

    (void)state;
    /* Only warning/info routes, no breach: warning. */
    t_plan_req_init(&t, 2);
    t_route_set(&t.routes[0], "slack", CV__SEVERITY__SEVERITY_WARNING, 9, 9);
    t_route_set(&t.routes[1], "jira", CV__SEVERITY__SEVERITY_INFO, 0, 0);
    p = t_plan_ok(&t.req, NULL, "req-al1");
    assert_int_equal(p->alert_level, CV__ALERT_LEVEL__ALERT_LEVEL_WARNING);
    assert_int_equal(p->executive_summary->status,
                     CV__ALERT_LEVEL__ALERT_LEVEL_WARNING);
    t_plan_free(p);

    /* A critical route: critical. */
    t.routes[1].has_severity = 1;
    t.routes[1].severity = CV__SEVERITY__SEVERITY_CRITICAL;
    p = t_plan_ok(&t.req, NULL, "req-al2");
    assert_int_equal(p->alert_level, CV__ALERT_LEVEL__ALERT_LEVEL_CRITICAL);
    assert_int_equal(p->critical_escalation_count, 1);
    assert_int_equal(p->slo_breached_count, 0);
    t_plan_free(p);

    /* No critical route but an SLO breach: critical too. */
    t.routes[1].severity = CV__SEVERITY__SEVERITY_INFO;
    t.routes[0].has_slo_breached = 1;
    t.routes[0].slo_breached = 1;
    p = t_plan_ok(&t.req, NULL, "req-al3");
    assert_int_equal(p->alert_level, CV__ALERT_LEVEL__ALERT_LEVEL_CRITICAL);
    assert_int_equal(p->executive_summary->status,
                     CV__ALERT_LEVEL__ALERT_LEVEL_CRITICAL);
    assert_int_equal(p->critical_escalation_count, 0);
    assert_int_equal(p->slo_breached_count, 1);
    assert_int_equal(p->executive_summary->slo_breached_count, 1);
    /* slo_status follows the breach when it was not given. */
    assert_string_equal(p->escalation_routes[0]->provider, "slack");
    assert_string_equal(p->escalation_routes[0]->slo_status, "breached");
    assert_true(p->escalation_routes[0]->slo_breached);
    assert_string_equal(p->escalation_routes[1]->slo_status, "within_slo");

    /* slo_breached explicitly false is no breach. */
    t.routes[0].slo_breached = 0;
    t_plan_free(p);
    p = t_plan_ok(&t.req, NULL, "req-al4");
    assert_int_equal(p->alert_level, CV__ALERT_LEVEL__ALERT_LEVEL_WARNING);
    assert_int_equal(p->slo_breached_count, 0);
    t_plan_free(p);
}

static void
test_ack_plan_counts(void **state)
{
    t_plan_req t;
    Cv__EscalationPlan *p;

    (void)state;
    t_plan_req_init(&t, 6);
    t_route_set(&t.routes[0], "slack", 0, 3, -1);
    t.routes[0].category = "retry-execution";
    t.routes[0].closure_state = "open";
    t_route_set(&t.routes[1], "jira", 0, 4, -1);
    t.routes[1].category = "Retry-Execution";
    t.routes[1].closure_state = "resolved";
    t_route_set(&t.routes[2], "teams", 0, 10, -1);
    t.routes[2].category = "connector-recovery";
    t.routes[2].closure_state = "mitigated";
    t_route_set(&t.routes[3], "SLACK", 0, 2, -1);
    t.routes[3].category = "retry-execution";
    t.routes[3].closure_state = "review_required";
    t.routes[3].has_slo_breached = 1;
    t.routes[3].slo_breached = 1;
    t_route_set(&t.routes[4], "pagerduty", 0, 7, -1);
    t.routes[4].closure_state = " RESOLVED ";
    t_route_set(&t.routes[5], "jira", 0, 1, -1);
    t.routes[5].category = "retry-executions"; /* not retry-execution */
    p = t_plan_ok(&t.req, NULL, "req-counts");

    assert_int_equal(p->escalation_count, 6);
    assert_int_equal(p->n_escalation_routes, 6);
    /* 3 + 4 + 2: only the retry-execution routes. */
    assert_int_equal(p->failed_execution_count, 9);
    /* open, review_required and the default (open) of route 5. */
    assert_int_equal(p->open_recovery_count, 3);
    assert_int_equal(p->slo_breached_count, 1);
    assert_int_equal(p->critical_escalation_count, 0);
    assert_int_equal(p->provider_count, 4);
    assert_int_equal(p->n_selected_providers, 4);
    assert_string_equal(p->selected_providers[0], "jira");
    assert_string_equal(p->selected_providers[1], "pagerduty");
    assert_string_equal(p->selected_providers[2], "slack");
    assert_string_equal(p->selected_providers[3], "teams");
    assert_int_equal(p->alert_level, CV__ALERT_LEVEL__ALERT_LEVEL_CRITICAL);

    assert_int_equal(p->executive_summary->status,
                     CV__ALERT_LEVEL__ALERT_LEVEL_CRITICAL);
    assert_int_equal(p->executive_summary->tracked_provider_count, 4);
    assert_int_equal(p->executive_summary->failed_execution_count, 9);
    assert_int_equal(p->executive_summary->open_recovery_count, 3);
    assert_int_equal(p->executive_summary->slo_breached_count, 1);
    t_plan_free(p);
}

static void
test_ack_plan_id_format(void **state)
{
    t_plan_req t;
    Cv__EscalationPlan *a, *b, *c;

    (void)state;
    t_plan_req_init(&t, 2);
    t.routes[1].provider = "teams";
    a = t_plan_ok(&t.req, NULL, "req-one");
    b = t_plan_ok(&t.req, NULL, "req-two");
    c = t_plan_ok(&t.req, NULL, "req-one");
    t_assert_id(a->plan_id, "gordackrecoveryesc-");
    t_assert_id(b->plan_id, "gordackrecoveryesc-");
    /* Same content, different requests: different records. */
    assert_string_not_equal(a->plan_id, b->plan_id);
    /* The id is reproducible from what is stored. */
    assert_string_equal(a->plan_id, c->plan_id);
    t_plan_free(a);
    t_plan_free(b);
    t_plan_free(c);

    /* Different content under the same request id differs too. */
    a = t_plan_ok(&t.req, NULL, "req-one");
    t.routes[1].provider = "jira";
    b = t_plan_ok(&t.req, NULL, "req-one");
    assert_string_not_equal(a->plan_id, b->plan_id);
    t_plan_free(a);
    t_plan_free(b);
}

static void
test_ack_plan_route_count_limits(void **state)
{
    t_plan_req t;
    Cv__EscalationPlan *p;

    (void)state;
    t_plan_req_init(&t, 0);
    t_plan_fails(&t.req, "escalation_routes is required: give 1 to 200 routes");
    t_plan_req_init(&t, 201);
    t_plan_fails(&t.req, "escalation_routes must have at most 200 routes");
    t_plan_req_init(&t, 200);
    p = t_plan_ok(&t.req, NULL, "req-200");
    assert_int_equal(p->escalation_count, 200);
    assert_int_equal(p->n_escalation_routes, 200);
    assert_int_equal(p->provider_count, 1);
    assert_int_equal(p->open_recovery_count, 200);
    t_plan_free(p);
}

static void
test_ack_plan_slo_range(void **state)
{
    static const int64_t bad[] = {0, 43201, -1, INT64_MIN, INT64_MAX};
    static const int64_t good[] = {1, 43200};
    t_plan_req t;

    (void)state;
    t_plan_req_init(&t, 1);
    t.req.has_recovery_slo_minutes = 1;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        t.req.recovery_slo_minutes = bad[i];
        t_plan_fails(&t.req,
                     "recovery_slo_minutes must be between 1 and 43200");
    }
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        Cv__EscalationPlan *p;

        t.req.recovery_slo_minutes = good[i];
        p = t_plan_ok(&t.req, NULL, "req-slo");
        assert_int_equal(p->recovery_slo_minutes, good[i]);
        t_plan_free(p);
    }
}

static void
test_ack_plan_route_provider_rules(void **state)
{
    t_plan_req t;
    Cv__EscalationPlan *p;
    char *max = t_repeat("a", 64);
    char *over = t_repeat("a", 65);

    (void)state;
    t_plan_req_init(&t, 3);
    t.routes[1].provider = NULL;
    t_plan_fails(&t.req, "escalation_routes[1].provider is required");
    t.routes[1].provider = "   ";
    t_plan_fails(&t.req, "escalation_routes[1].provider is required");
    t.routes[1].provider = "pager duty";
    t_plan_fails(&t.req, "escalation_routes[1].provider " T_IDENT_RULE);
    t.routes[1].provider = "slack/../x";
    t_plan_fails(&t.req, "escalation_routes[1].provider " T_IDENT_RULE);
    t.routes[1].provider = over;
    t_plan_fails(&t.req, "escalation_routes[1].provider must be at most 64 "
                         "characters");
    t.routes[1].provider = max;
    t.routes[2].provider = "Service.Now_2-x";
    p = t_plan_ok(&t.req, NULL, "req-prov");
    assert_int_equal(p->provider_count, 3);
    assert_string_equal(p->selected_providers[0], max);
    assert_string_equal(p->selected_providers[1], "service.now_2-x");
    assert_string_equal(p->selected_providers[2], "slack");
    t_plan_free(p);
    free(max);
    free(over);
}

static void
test_ack_plan_route_field_rules(void **state)
{
    t_plan_req t;
    Cv__EscalationPlan *p;
    char *reason_max = t_repeat("r", 500);
    char *reason_over = t_repeat("r", 501);
    char *label_over = t_repeat("c", 65);

    (void)state;
    t_plan_req_init(&t, 2);

    t.routes[1].has_severity = 1;
    t.routes[1].severity = 99;
    t_plan_fails(&t.req, "escalation_routes[1].severity must be critical, "
                         "warning, or info");
    /* Value 0 (SEVERITY_UNSPECIFIED) is never accepted as input. */
    t.routes[1].severity = CV__SEVERITY__SEVERITY_UNSPECIFIED;
    t_plan_fails(&t.req, "escalation_routes[1].severity must be critical, "
                         "warning, or info");
    t.routes[1].has_severity = 0;

    t.routes[1].has_age_minutes = 1;
    t.routes[1].age_minutes = -1;
    t_plan_fails(&t.req,
                 "escalation_routes[1].age_minutes must be between 0 and "
                 "5256000");
    t.routes[1].age_minutes = 0;
    t.routes[1].has_failure_count = 1;
    t.routes[1].failure_count = -1;
    t_plan_fails(&t.req,
                 "escalation_routes[1].failure_count must be between 0 and "
                 "1000000000");
    t.routes[1].failure_count = 0;

    t.routes[1].reason = reason_over;
    t_plan_fails(&t.req,
                 "escalation_routes[1].reason must be at most 500 characters");
    t.routes[1].reason = NULL;
    t.routes[1].recommended_action = reason_over;
    t_plan_fails(&t.req, "escalation_routes[1].recommended_action must be at "
                         "most 500 characters");
    t.routes[1].recommended_action = NULL;
    t.routes[1].category = "connector recovery";
    t_plan_fails(&t.req, "escalation_routes[1].category " T_IDENT_RULE);
    t.routes[1].category = NULL;
    t.routes[1].closure_state = label_over;
    t_plan_fails(&t.req, "escalation_routes[1].closure_state must be at most "
                         "64 characters");
    t.routes[1].closure_state = NULL;

    /* At the maxima everything passes. */
    t.routes[1].reason = reason_max;
    t.routes[1].recommended_action = reason_max;
    t.routes[1].age_minutes = 5256000;
    t.routes[1].failure_count = 1000000000;
    p = t_plan_ok(&t.req, NULL, "req-fields");
    assert_int_equal(p->escalation_routes[0]->failure_count, 1000000000);
    assert_int_equal(strlen(p->escalation_routes[0]->reason), 500);
    t_plan_free(p);
    free(reason_max);
    free(reason_over);
    free(label_over);
}

static void
test_ack_plan_generated_by_length(void **state)
{
    t_plan_req t;
    Cv__EscalationPlan *p;
    char *max = t_repeat("g", 128);
    char *over = t_repeat("g", 129);

    (void)state;
    t_plan_req_init(&t, 1);
    t.req.generated_by = over;
    t_plan_fails(&t.req, "generated_by must be at most 128 characters");
    t.req.generated_by = max;
    p = t_plan_ok(&t.req, NULL, "req-gb");
    assert_string_equal(p->generated_by, max);
    t_plan_free(p);
    /* Blank means "not given": the default. */
    t.req.generated_by = "   ";
    p = t_plan_ok(&t.req, NULL, "req-gb2");
    assert_string_equal(p->generated_by, "console");
    t_plan_free(p);
    free(max);
    free(over);
}

static void
test_ack_plan_actor_overrides_generated_by(void **state)
{
    t_plan_req t;
    Cv__EscalationPlan *p;

    (void)state;
    t_plan_req_init(&t, 1);
    t.req.generated_by = "mallory";
    p = t_plan_ok(&t.req, "platform-owner-bob", "req-actor");
    assert_string_equal(p->generated_by, "platform-owner-bob");
    t_plan_free(p);
    t.req.generated_by = NULL;
    p = t_plan_ok(&t.req, "platform-owner-bob", "req-actor");
    assert_string_equal(p->generated_by, "platform-owner-bob");
    t_plan_free(p);
    t.req.generated_by = "mallory";
    p = t_plan_ok(&t.req, NULL, "req-actor");
    assert_string_equal(p->generated_by, "mallory");
    t_plan_free(p);
}

static void
test_ack_plan_redaction_counted(void **state)
{
    t_plan_req t;
    Cv__EscalationPlan *p;
    Cv__EscalationRoute *r;

    (void)state;
    t_plan_req_init(&t, 1);
    t.routes[0].reason = "connector said token=abcd1234secret";
    t.routes[0].recommended_action = "retry with Bearer zq81Kx09PlmQ";
    t.routes[0].playbook_id = "PB-17";
    p = t_plan_ok(&t.req, NULL, "req-redact");
    r = p->escalation_routes[0];
    assert_int_equal(p->redaction_count, 2);
    assert_null(strstr(r->reason, "abcd1234secret"));
    assert_non_null(strstr(r->reason, "REDACTED"));
    assert_non_null(strstr(r->reason, "connector said"));
    assert_null(strstr(r->recommended_action, "zq81Kx09PlmQ"));
    assert_non_null(strstr(r->recommended_action, "REDACTED"));
    assert_string_equal(r->playbook_id, "PB-17");
    t_plan_free(p);
}

static void
test_ack_plan_metadata(void **state)
{
    t_plan_req t;
    Cv__EscalationPlan *p;
    Cv__PlanMetadata *m;

    (void)state;
    t_plan_req_init(&t, 2);
    t_route_set(&t.routes[1], "teams", CV__SEVERITY__SEVERITY_CRITICAL, -1, -1);
    p = t_plan_ok(&t.req, NULL, "req-meta");
    m = ack_plan_metadata(p);
    assert_non_null(m);
    assert_string_equal(m->metadata_kind, T_PLAN_KIND);
    assert_string_equal(m->session_id, p->plan_id);
    assert_string_equal(m->plan_id, p->plan_id);
    assert_string_equal(m->created_at, T_NOW_TEXT);
    assert_true(m->signer != NULL && m->signer[0] != '\0');
    assert_int_equal(m->alert_level, CV__ALERT_LEVEL__ALERT_LEVEL_CRITICAL);
    assert_int_equal(m->escalation_count, 2);
    /* The full record, as a copy (not the same pointer). */
    assert_true(m->recovery_escalation_plan != p);
    t_assert_same_message(&m->recovery_escalation_plan->base, &p->base);
    protobuf_c_message_free_unpacked(&m->base, NULL);
    t_plan_free(p);
}

/* ---- acknowledgements ------------------------------------------------- */

static void
test_ack_plan_ack_defaults(void **state)
{
    Cv__AcknowledgeRequest req;
    Cv__Acknowledgement *a;

    (void)state;
    t_ack_req_init(&req);
    req.provider = " PagerDuty ";
    req.acknowledged_by = "  alice  ";
    a = t_ack_ok(&req, NULL, "req-ack");
    assert_string_equal(a->schema_version, T_ACK_SCHEMA);
    assert_string_equal(a->product, "CAVRA");
    t_assert_id(a->acknowledgement_id, "gordackrecoveryescack-");
    assert_string_equal(a->plan_id, "gordackrecoveryesc-0123456789abcdef");
    assert_string_equal(a->provider, "pagerduty");
    assert_string_equal(a->acknowledged_by, "alice");
    assert_true(a->has_acknowledgement_state);
    assert_int_equal(a->acknowledgement_state,
                     CV__ACK_STATE__ACK_STATE_ACKNOWLEDGED);
    assert_string_equal(a->acknowledged_at, T_NOW_TEXT);
    assert_null(a->external_ref);
    assert_null(a->notes);
    assert_null(a->escalation_reason);
    assert_true(a->has_redaction_count);
    assert_int_equal(a->redaction_count, 0);
    t_ack_free(a);
}

static void
test_ack_plan_ack_states(void **state)
{
    static const int states[] = {
        CV__ACK_STATE__ACK_STATE_ACKNOWLEDGED,
        CV__ACK_STATE__ACK_STATE_ACCEPTED,
        CV__ACK_STATE__ACK_STATE_DEFERRED,
        CV__ACK_STATE__ACK_STATE_ESCALATED,
        CV__ACK_STATE__ACK_STATE_RESOLVED,
        CV__ACK_STATE__ACK_STATE_DISMISSED,
    };
    Cv__AcknowledgeRequest req;

    (void)state;
    t_ack_req_init(&req);
    req.has_acknowledgement_state = 1;
    for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
        Cv__Acknowledgement *a;

        req.acknowledgement_state = states[i];
        a = t_ack_ok(&req, NULL, "req-state");
        assert_int_equal(a->acknowledgement_state, states[i]);
        t_ack_free(a);
    }
}

static void
test_ack_plan_ack_bad_state(void **state)
{
    static const int bad[] = {99, CV__ACK_STATE__ACK_STATE_UNSPECIFIED, -1, 7};
    Cv__AcknowledgeRequest req;

    (void)state;
    t_ack_req_init(&req);
    req.has_acknowledgement_state = 1;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        req.acknowledgement_state = bad[i];
        t_ack_fails(&req, T_STATE_RULE);
    }
}

static void
test_ack_plan_ack_provider_rules(void **state)
{
    Cv__AcknowledgeRequest req;
    Cv__Acknowledgement *a;
    char *max = t_repeat("p", 64);
    char *over = t_repeat("p", 65);

    (void)state;
    t_ack_req_init(&req);
    req.provider = NULL;
    t_ack_fails(&req, "provider is required");
    req.provider = "";
    t_ack_fails(&req, "provider is required");
    req.provider = " \t ";
    t_ack_fails(&req, "provider is required");
    req.provider = "pager duty";
    t_ack_fails(&req, "provider " T_IDENT_RULE);
    req.provider = "sl@ck";
    t_ack_fails(&req, "provider " T_IDENT_RULE);
    req.provider = over;
    t_ack_fails(&req, "provider must be at most 64 characters");
    req.provider = max;
    a = t_ack_ok(&req, NULL, "req-prov");
    assert_string_equal(a->provider, max);
    t_ack_free(a);
    req.provider = "Service.Now_2-X";
    a = t_ack_ok(&req, NULL, "req-prov");
    assert_string_equal(a->provider, "service.now_2-x");
    t_ack_free(a);
    free(max);
    free(over);
}

static void
test_ack_plan_ack_acknowledger_required(void **state)
{
    Cv__AcknowledgeRequest req;

    (void)state;
    t_ack_req_init(&req);
    req.acknowledged_by = NULL;
    t_ack_fails(&req, "acknowledged_by is required");
    req.acknowledged_by = "   ";
    t_ack_fails(&req, "acknowledged_by is required");
}

static void
test_ack_plan_ack_error_order(void **state)
{
    Cv__AcknowledgeRequest req;

    (void)state;
    /* docs/api.md order: provider, then acknowledger, then state. */
    t_ack_req_init(&req);
    req.provider = NULL;
    req.acknowledged_by = NULL;
    req.has_acknowledgement_state = 1;
    req.acknowledgement_state = 99;
    t_ack_fails(&req, "provider is required");
    req.provider = "slack";
    t_ack_fails(&req, "acknowledged_by is required");
    req.acknowledged_by = "alice";
    t_ack_fails(&req, T_STATE_RULE);
}

static void
test_ack_plan_ack_field_lengths(void **state)
{
    struct {
        const char *field;
        size_t max;
    } fields[] = {
        {"acknowledged_by", 128},
        {"external_ref", 128},
        {"notes", 2000},
        {"escalation_reason", 500},
    };
    Cv__AcknowledgeRequest req;

    (void)state;
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        /* Multi-byte characters: the limit counts characters. An
         * identifier (external_ref) is ASCII by its pattern. */
        int ident = strcmp(fields[i].field, "external_ref") == 0;
        char *max = t_repeat(ident ? "x" : "\xc3\xa9", fields[i].max);
        char *over = t_repeat("x", fields[i].max + 1);
        char **slot = NULL;
        char msg[128];
        Cv__Acknowledgement *a;

        t_ack_req_init(&req);
        if (strcmp(fields[i].field, "acknowledged_by") == 0)
            slot = &req.acknowledged_by;
        else if (strcmp(fields[i].field, "external_ref") == 0)
            slot = &req.external_ref;
        else if (strcmp(fields[i].field, "notes") == 0)
            slot = &req.notes;
        else
            slot = &req.escalation_reason;
        *slot = over;
        snprintf(msg, sizeof(msg), "%s must be at most %zu characters",
                 fields[i].field, fields[i].max);
        t_ack_fails(&req, msg);
        *slot = max;
        a = t_ack_ok(&req, NULL, "req-len");
        free(max);
        free(over);
        t_ack_free(a);
    }
}

/*
 * playbook_id and external_ref are identifiers, stored as sent: their
 * pattern, and never a secret (refused, not redacted). One case per bad
 * input class; ordinary ticket references pass unchanged.
 */
static const char *const t_ident_ok[] = {
    "INC-4711",
    "CHG-1234",
    "PB-17",
    "https://tickets.example/browse/OPS-42",
    "JIRA#123",
    "pb.restart_connector:v2",
    "3f2b8c1e-9a4d-4b7e-8f00-1234567890ab", /* a UUID is public */
};
static const struct {
    const char *value;
    const char *rule; /* what the 400 says after the field name */
} t_ident_bad[] = {
    {"INC 4711", "must match [A-Za-z0-9._:/#-]{1,128}"}, /* space */
    {"ref\"x", "must match [A-Za-z0-9._:/#-]{1,128}"},   /* quote */
    {"ref\x07", "must match [A-Za-z0-9._:/#-]{1,128}"},  /* control */
    {"r\xc3\xa9"
     "f",
     "must match [A-Za-z0-9._:/#-]{1,128}"}, /* non-ASCII */
    {"https://ops:hunter2pass@tickets.example/T-1",
     "must match [A-Za-z0-9._:/#-]{1,128}"}, /* user-info */
    {"T-1?token=abcd1234secret",
     "must match [A-Za-z0-9._:/#-]{1,128}"}, /* a query */
    {"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
     "looks like a secret; identifiers must not carry credentials"},
    {"glpat-Qr7sT8uV9wX0yZ1aB2cD",
     "looks like a secret; identifiers must not carry credentials"},
    {"AKIAIOSFODNN7EXAMPLE",
     "looks like a secret; identifiers must not carry credentials"},
    {"ref/zK3q9XvB2mT7pL4wR8sN",
     "looks like a secret; identifiers must not carry credentials"},
};

static void
test_ack_plan_identifier_fields(void **state)
{
    Cv__AcknowledgeRequest req;
    Cv__Acknowledgement *a;
    t_plan_req t;
    Cv__EscalationPlan *p;
    char msg[160];

    (void)state;
    for (size_t i = 0; i < sizeof(t_ident_ok) / sizeof(t_ident_ok[0]); i++) {
        t_ack_req_init(&req);
        req.external_ref = (char *)t_ident_ok[i];
        a = t_ack_ok(&req, NULL, "req-ident");
        assert_string_equal(a->external_ref, t_ident_ok[i]);
        assert_int_equal(a->redaction_count, 0);
        t_ack_free(a);
        t_plan_req_init(&t, 1);
        t.routes[0].playbook_id = (char *)t_ident_ok[i];
        p = t_plan_ok(&t.req, NULL, "req-ident");
        assert_string_equal(p->escalation_routes[0]->playbook_id,
                            t_ident_ok[i]);
        t_plan_free(p);
    }
    for (size_t i = 0; i < sizeof(t_ident_bad) / sizeof(t_ident_bad[0]); i++) {
        t_ack_req_init(&req);
        req.external_ref = (char *)t_ident_bad[i].value;
        snprintf(msg, sizeof(msg), "external_ref %s", t_ident_bad[i].rule);
        t_ack_fails(&req, msg);
        t_plan_req_init(&t, 2);
        t.routes[1].playbook_id = (char *)t_ident_bad[i].value;
        snprintf(msg, sizeof(msg), "escalation_routes[1].playbook_id %s",
                 t_ident_bad[i].rule);
        t_plan_fails(&t.req, msg);
    }
    /* Blank is absent; an over-long value names the limit. */
    t_ack_req_init(&req);
    req.external_ref = "   ";
    a = t_ack_ok(&req, NULL, "req-ident-blank");
    assert_null(a->external_ref);
    t_ack_free(a);
    {
        char *over = t_repeat("x", 129);

        t_plan_req_init(&t, 1);
        t.routes[0].playbook_id = over;
        t_plan_fails(&t.req, "escalation_routes[0].playbook_id must be at "
                             "most 128 characters");
        free(over);
    }
}

static void
test_ack_plan_ack_text_kept(void **state)
{
    Cv__AcknowledgeRequest req;
    Cv__Acknowledgement *a;

    (void)state;
    t_ack_req_init(&req);
    req.external_ref = "  INC-4711 ";
    req.notes = "reviewed with the on-call team\nall good";
    req.escalation_reason = "SLO breach on slack route";
    a = t_ack_ok(&req, NULL, "req-text");
    assert_string_equal(a->external_ref, "INC-4711");
    assert_string_equal(a->notes, "reviewed with the on-call team\nall good");
    assert_string_equal(a->escalation_reason, "SLO breach on slack route");
    assert_int_equal(a->redaction_count, 0);
    t_ack_free(a);

    /* Control characters are refused, naming the field. */
    req.notes = "bell\x07";
    t_ack_fails(&req, "notes must not contain control characters");
}

static void
test_ack_plan_ack_actor_overrides(void **state)
{
    Cv__AcknowledgeRequest req;
    Cv__Acknowledgement *a;

    (void)state;
    t_ack_req_init(&req);
    req.acknowledged_by = "mallory";
    a = t_ack_ok(&req, "release-manager-alice", "req-act");
    assert_string_equal(a->acknowledged_by, "release-manager-alice");
    t_ack_free(a);
    /* With a verified actor the self-declared name is optional. */
    req.acknowledged_by = NULL;
    a = t_ack_ok(&req, "release-manager-alice", "req-act");
    assert_string_equal(a->acknowledged_by, "release-manager-alice");
    t_ack_free(a);
    /* Still no provider, though. */
    req.provider = NULL;
    t_ack_fails_as(&req, "release-manager-alice", "provider is required");
}

static void
test_ack_plan_ack_redaction_counted(void **state)
{
    Cv__AcknowledgeRequest req;
    Cv__Acknowledgement *a;

    (void)state;
    t_ack_req_init(&req);
    req.notes = "rotated token=abcd1234secret and called with Bearer "
                "zq81Kx09PlmQ";
    req.escalation_reason = "password=hunter2 leaked in ticket";
    req.external_ref = "INC-4711";
    a = t_ack_ok(&req, NULL, "req-red");
    assert_int_equal(a->redaction_count, 3);
    assert_null(strstr(a->notes, "abcd1234secret"));
    assert_null(strstr(a->notes, "zq81Kx09PlmQ"));
    assert_non_null(strstr(a->notes, "rotated"));
    assert_null(strstr(a->escalation_reason, "hunter2"));
    assert_non_null(strstr(a->escalation_reason, "REDACTED"));
    assert_string_equal(a->external_ref, "INC-4711");
    t_ack_free(a);
}

static void
test_ack_plan_ack_id_per_request(void **state)
{
    Cv__AcknowledgeRequest req;
    Cv__Acknowledgement *a, *b, *c;

    (void)state;
    t_ack_req_init(&req);
    a = t_ack_ok(&req, NULL, "req-one");
    b = t_ack_ok(&req, NULL, "req-two");
    c = t_ack_ok(&req, NULL, "req-one");
    t_assert_id(a->acknowledgement_id, "gordackrecoveryescack-");
    t_assert_id(b->acknowledgement_id, "gordackrecoveryescack-");
    assert_string_not_equal(a->acknowledgement_id, b->acknowledgement_id);
    assert_string_equal(a->acknowledgement_id, c->acknowledgement_id);
    t_ack_free(a);
    t_ack_free(b);
    t_ack_free(c);
}

static void
test_ack_plan_ack_metadata(void **state)
{
    Cv__AcknowledgeRequest req;
    Cv__Acknowledgement *a;
    Cv__AckMetadata *m;

    (void)state;
    t_ack_req_init(&req);
    req.has_acknowledgement_state = 1;
    req.acknowledgement_state = CV__ACK_STATE__ACK_STATE_DEFERRED;
    a = t_ack_ok(&req, NULL, "req-meta");
    m = ack_ack_metadata(a);
    assert_non_null(m);
    assert_string_equal(m->metadata_kind, T_ACK_KIND);
    assert_string_equal(m->session_id, a->acknowledgement_id);
    assert_string_equal(m->acknowledgement_id, a->acknowledgement_id);
    assert_string_equal(m->created_at, T_NOW_TEXT);
    assert_true(m->signer != NULL && m->signer[0] != '\0');
    assert_string_equal(m->plan_id, "gordackrecoveryesc-0123456789abcdef");
    assert_string_equal(m->provider, "slack");
    assert_int_equal(m->acknowledgement_state,
                     CV__ACK_STATE__ACK_STATE_DEFERRED);
    /* The record with the original's keys: read back as a record, it is
     * the record without redaction_count (ours, in the record beside it). */
    {
        const ProtobufCMessage *copy =
            &m->recovery_escalation_acknowledgement->base;
        size_t len = protobuf_c_message_get_packed_size(copy);
        uint8_t *buf = malloc(len + 1);
        Cv__Acknowledgement *back;

        assert_non_null(buf);
        protobuf_c_message_pack(copy, buf);
        back = cv__acknowledgement__unpack(NULL, len, buf);
        free(buf);
        assert_non_null(back);
        assert_false(back->has_redaction_count);
        back->has_redaction_count = 1;
        back->redaction_count = a->redaction_count;
        t_assert_same_message(&back->base, &a->base);
        cv__acknowledgement__free_unpacked(back, NULL);
    }
    protobuf_c_message_free_unpacked(&m->base, NULL);
    t_ack_free(a);
}

/* The provider check an acknowledgement passes before it is stored
 * (cv_plan_ref_check_provider; delivery attempts pass the same one). */
static void
test_ack_plan_check_provider(void **state)
{
    char *const two[] = {"jira", "slack"};
    char *const one[] = {"teams"};
    char *many[40];
    cv_error err;

    (void)state;
    cv_error_clear(&err);
    assert_int_equal(
        cv_plan_ref_check_provider("gordackrecoveryesc-0123456789abcdef",
                                   "slack", two, 2, &err),
        0);
    assert_int_equal(err.code, CV_OK);
    assert_int_equal(
        cv_plan_ref_check_provider("gordackrecoveryesc-0123456789abcdef",
                                   "teams", two, 2, &err),
        CV_INVALID_ARGUMENT);
    assert_string_equal(err.msg,
                        "provider teams is not routed by recovery escalation "
                        "plan gordackrecoveryesc-0123456789abcdef; the plan's "
                        "providers are jira, slack");
    cv_error_clear(&err);
    assert_int_equal(
        cv_plan_ref_check_provider("gordackrecoveryesc-aaaaaaaaaaaaaaaa",
                                   "jira", one, 1, &err),
        CV_INVALID_ARGUMENT);
    assert_string_equal(err.msg,
                        "provider jira is not routed by recovery escalation "
                        "plan gordackrecoveryesc-aaaaaaaaaaaaaaaa; the plan's "
                        "providers are teams");

    /* A long provider list is cut to fit, never overflowing. */
    for (size_t i = 0; i < 40; i++)
        many[i] = t_repeat(i % 2 ? "x" : "y", 60);
    cv_error_clear(&err);
    assert_int_equal(
        cv_plan_ref_check_provider("gordackrecoveryesc-aaaaaaaaaaaaaaaa",
                                   "jira", many, 40, &err),
        CV_INVALID_ARGUMENT);
    assert_true(strncmp(err.msg, "provider jira is not routed", 27) == 0);
    assert_true(strlen(err.msg) < CV_ERROR_MSG_MAX);
    for (size_t i = 0; i < 40; i++)
        free(many[i]);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ack_plan_defaults),
        cmocka_unit_test(test_ack_plan_given_values_kept),
        cmocka_unit_test(test_ack_plan_route_sorting),
        cmocka_unit_test(test_ack_plan_sort_keeps_input_order_on_ties),
        cmocka_unit_test(test_ack_plan_alert_level),
        cmocka_unit_test(test_ack_plan_counts),
        cmocka_unit_test(test_ack_plan_id_format),
        cmocka_unit_test(test_ack_plan_route_count_limits),
        cmocka_unit_test(test_ack_plan_slo_range),
        cmocka_unit_test(test_ack_plan_route_provider_rules),
        cmocka_unit_test(test_ack_plan_route_field_rules),
        cmocka_unit_test(test_ack_plan_generated_by_length),
        cmocka_unit_test(test_ack_plan_actor_overrides_generated_by),
        cmocka_unit_test(test_ack_plan_redaction_counted),
        cmocka_unit_test(test_ack_plan_metadata),
        cmocka_unit_test(test_ack_plan_ack_defaults),
        cmocka_unit_test(test_ack_plan_ack_states),
        cmocka_unit_test(test_ack_plan_ack_bad_state),
        cmocka_unit_test(test_ack_plan_ack_provider_rules),
        cmocka_unit_test(test_ack_plan_ack_acknowledger_required),
        cmocka_unit_test(test_ack_plan_ack_error_order),
        cmocka_unit_test(test_ack_plan_ack_field_lengths),
        cmocka_unit_test(test_ack_plan_ack_text_kept),
        cmocka_unit_test(test_ack_plan_identifier_fields),
        cmocka_unit_test(test_ack_plan_ack_actor_overrides),
        cmocka_unit_test(test_ack_plan_ack_redaction_counted),
        cmocka_unit_test(test_ack_plan_ack_id_per_request),
        cmocka_unit_test(test_ack_plan_ack_metadata),
        cmocka_unit_test(test_ack_plan_check_provider),
    };

    return cmocka_run_group_tests_name("ack_plan", tests, NULL, NULL);
}
