/*
 * ack_rpc_test.c -- integration tests of the acknowledgement service: the
 * real cavra-ack process against the real PostgreSQL, called over NNG with
 * the RPC client (no gateway).
 *
 * Needs CAVRA_DATABASE_URL pointing at a migrated database (scripts/test.sh
 * sets it). The group setup starts cavra-ack on a private ipc:// socket;
 * the teardown stops it and requires a clean exit. Every test makes its
 * own plans (ids are unique per request), so tests do not depend on each
 * other; "nothing was stored" checks compare whole-table counts, which is
 * safe because ctest runs this test serially.
 *
 * Run: ctest -R integration.ack_rpc, or the binary alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ack.pb-c.h"
#include "cv_rpc.h"
#include "cv_test_api.h"

#define IT_STATE_RULE                                                          \
    "acknowledgement_state must be acknowledged, accepted, deferred, "         \
    "escalated, resolved, or dismissed"
#define IT_NOT_FOUND "recovery escalation plan not found"
#define IT_THREADS   16

static cv_test_stack it_stack;
static cv_rpc_client *it_cli;

/* ---- helpers ---------------------------------------------------------- */

/* Records a plan routing to the given providers (all warning, except the
 * first, which is critical). Returns the reply; free it with
 * protobuf_c_message_free_unpacked. */
static Cv__RecordPlanReply *
it_record_plan(const char *const *providers, size_t n, const char *request_id)
{
    Cv__EscalationRoute routes[IT_THREADS + 1];
    cv_rpc_call_opts opts = {.request_id = request_id};

    assert_true(n >= 1 && n <= IT_THREADS + 1);
    for (size_t i = 0; i < n; i++) {
        cv__escalation_route__init(&routes[i]);
        routes[i].provider = (char *)providers[i];
        routes[i].has_severity = 1;
        routes[i].severity = i == 0 ? CV__SEVERITY__SEVERITY_CRITICAL
                                    : CV__SEVERITY__SEVERITY_WARNING;
    }
    return cv_test_record_plan_rpc(it_cli, "integration-test", routes, n,
                                   &opts);
}

/* Acknowledges (plan, provider) as "alice" with state (0: not given).
 * Returns the reply (free it), or fails the test. */
static Cv__AcknowledgeReply *
it_ack(const char *plan_id, const char *provider, int state,
       const cv_rpc_call_opts *opts)
{
    Cv__AcknowledgeReply *rep;

    cv_test_ack_rpc(it_cli, plan_id, provider, "alice", state, opts, &rep);
    return rep;
}

/* ---- setup ------------------------------------------------------------ */

static int
it_setup(void **state)
{
    (void)state;
    return cv_test_stack_start_clients(&it_stack, CV_STACK_ACK, &it_cli, NULL,
                                       NULL);
}

static int
it_teardown(void **state)
{
    (void)state;
    return cv_test_stack_stop_clients(&it_stack, &it_cli, NULL, NULL);
}

/* ---- tests ------------------------------------------------------------ */

static void
test_ack_rpc_health(void **state)
{
    (void)state;
    cv_test_assert_health(it_cli, "ack");
}

static void
test_ack_rpc_record_plan_stored(void **state)
{
    static const char *const provs[] = {"Slack", "jira", "slack"};
    Cv__RecordPlanReply *rep;
    Cv__EscalationPlan *p;
    char rid[40], sql[256];
    cv_test_counts before, after;
    const char *id;

    (void)state;
    cv_test_counts_snapshot(&before);
    cv_rpc_new_request_id(rid, sizeof(rid));
    rep = it_record_plan(provs, 3, rid);
    p = rep->plan;
    id = p->plan_id;
    cv_test_assert_id(id, "gordackrecoveryesc-");
    assert_string_equal(p->generated_by, "integration-test");
    assert_int_equal(p->escalation_count, 3);
    assert_int_equal(p->critical_escalation_count, 1);
    assert_int_equal(p->provider_count, 2);
    assert_int_equal(p->n_selected_providers, 2);
    assert_string_equal(p->selected_providers[0], "jira");
    assert_string_equal(p->selected_providers[1], "slack");
    assert_int_equal(p->alert_level, CV__ALERT_LEVEL__ALERT_LEVEL_CRITICAL);
    assert_non_null(rep->metadata);
    assert_string_equal(rep->metadata->metadata_kind,
                        "go-backend-rollback-drill-acknowledgement-audit-"
                        "delivery-recovery-escalation-plan");
    assert_string_equal(rep->metadata->session_id, id);
    assert_string_equal(rep->metadata->plan_id, id);
    assert_non_null(rep->metadata->recovery_escalation_plan);
    assert_string_equal(rep->metadata->recovery_escalation_plan->plan_id, id);
    assert_null(rep->actor);

    /* One plan row, one row per route, one evidence event. */
    assert_int_equal(
        cv_test_count(
            "SELECT count(*) FROM escalation_plans WHERE plan_id = $1", id),
        1);
    assert_int_equal(
        cv_test_count("SELECT count(*) FROM plan_routes WHERE plan_id = $1",
                      id),
        3);
    assert_int_equal(
        cv_test_count("SELECT count(*) FROM evidence_events WHERE "
                      "plan_id = $1 AND kind = "
                      "'recovery_escalation_plan' AND record_id = $1",
                      id),
        1);
    assert_int_equal(
        cv_test_count("SELECT count(*) FROM evidence_events WHERE plan_id = $1",
                      id),
        1);
    /* The request id and actor go with the event; the record is stored. */
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM evidence_events WHERE record_id = $1 AND "
             "request_id = '%s' AND actor = 'integration-test'",
             rid);
    assert_int_equal(cv_test_count(sql, id), 1);
    assert_int_equal(
        cv_test_count("SELECT (e.record->>'escalation_count')::int FROM "
                      "escalation_plans p JOIN evidence_events e ON e.kind = "
                      "'recovery_escalation_plan' AND e.record_id = p.plan_id "
                      "WHERE p.plan_id = $1",
                      id),
        3);
    assert_int_equal(
        cv_test_count("SELECT count(*) FROM escalation_plans p JOIN "
                      "evidence_events e ON e.kind = 'recovery_escalation_plan'"
                      " AND e.record_id = p.plan_id WHERE p.plan_id = $1 AND "
                      "e.record->>'plan_id' = $1 AND "
                      "p.providers = ARRAY['jira','slack']",
                      id),
        1);
    cv_test_counts_snapshot(&after);
    assert_int_equal(after.plans, before.plans + 1);
    assert_int_equal(after.routes, before.routes + 3);
    assert_int_equal(after.events, before.events + 1);
    assert_int_equal(after.acks, before.acks);
    protobuf_c_message_free_unpacked(&rep->base, NULL);
}

static void
test_ack_rpc_acknowledge_and_get_plan(void **state)
{
    static const char *const provs[] = {"slack", "jira"};
    Cv__RecordPlanReply *plan;
    Cv__AcknowledgeReply *ack;
    Cv__GetPlanRequest greq = CV__GET_PLAN_REQUEST__INIT;
    ProtobufCMessage *grep = NULL;
    Cv__EscalationPlan *got;
    cv_error err;
    const char *pid, *aid;
    uint8_t *a, *b;
    size_t la, lb;

    (void)state;
    plan = it_record_plan(provs, 2, NULL);
    pid = plan->plan->plan_id;
    ack = it_ack(pid, "  SLACK ", CV__ACK_STATE__ACK_STATE_ACCEPTED, NULL);
    aid = ack->acknowledgement->acknowledgement_id;
    cv_test_assert_id(aid, "gordackrecoveryescack-");
    assert_string_equal(ack->acknowledgement->plan_id, pid);
    assert_string_equal(ack->acknowledgement->provider, "slack");
    assert_string_equal(ack->acknowledgement->acknowledged_by, "alice");
    assert_int_equal(ack->acknowledgement->acknowledgement_state,
                     CV__ACK_STATE__ACK_STATE_ACCEPTED);
    assert_non_null(ack->metadata);
    assert_string_equal(ack->metadata->metadata_kind,
                        "go-backend-rollback-drill-acknowledgement-audit-"
                        "delivery-recovery-escalation-ack");
    assert_string_equal(ack->metadata->session_id, aid);
    assert_string_equal(ack->metadata->plan_id, pid);
    assert_string_equal(ack->metadata->provider, "slack");
    assert_null(ack->actor);

    assert_int_equal(
        cv_test_count(
            "SELECT count(*) FROM acknowledgements a JOIN evidence_events e "
            "ON e.kind = 'recovery_escalation_ack' AND e.record_id = "
            "a.acknowledgement_id WHERE a.acknowledgement_id = $1 AND "
            "a.provider = 'slack' AND a.acknowledgement_state = 'accepted' "
            "AND e.record->>'acknowledged_by' = 'alice'",
            aid),
        1);
    assert_int_equal(cv_test_count("SELECT count(*) FROM evidence_events WHERE "
                                   "kind = 'recovery_escalation_ack' AND "
                                   "record_id = $1 AND provider = 'slack'",
                                   aid),
                     1);
    assert_int_equal(cv_test_count("SELECT count(*) FROM ack_current WHERE "
                                   "acknowledgement_id = $1 AND "
                                   "acknowledgement_state = 'accepted'",
                                   aid),
                     1);

    /* GetPlan returns the stored plan, exactly as recorded. */
    greq.plan_id = (char *)pid;
    cv_error_clear(&err);
    CV_TEST_PASS(cv_rpc_call(it_cli, "ack.GetPlan", &greq.base,
                             &cv__get_plan_reply__descriptor, &grep, NULL,
                             &err),
                 err);
    got = ((Cv__GetPlanReply *)grep)->plan;
    assert_non_null(got);
    assert_string_equal(got->plan_id, pid);
    assert_string_equal(got->generated_at, plan->plan->generated_at);
    assert_int_equal(got->escalation_count, 2);
    assert_int_equal(got->n_escalation_routes, 2);
    assert_string_equal(got->escalation_routes[0]->provider, "slack");
    la = protobuf_c_message_get_packed_size(&got->base);
    lb = protobuf_c_message_get_packed_size(&plan->plan->base);
    assert_int_equal(la, lb);
    a = malloc(la + 1);
    b = malloc(lb + 1);
    protobuf_c_message_pack(&got->base, a);
    protobuf_c_message_pack(&plan->plan->base, b);
    assert_memory_equal(a, b, la);
    free(a);
    free(b);
    protobuf_c_message_free_unpacked(grep, NULL);
    protobuf_c_message_free_unpacked(&ack->base, NULL);
    protobuf_c_message_free_unpacked(&plan->base, NULL);
}

static void
test_ack_rpc_evidence_per_record(void **state)
{
    static const char *const provs[] = {"teams"};
    Cv__RecordPlanReply *plan;
    Cv__AcknowledgeReply *a1, *a2;
    const char *pid;

    (void)state;
    plan = it_record_plan(provs, 1, NULL);
    pid = plan->plan->plan_id;
    a1 = it_ack(pid, "teams", 0, NULL);
    a2 = it_ack(pid, "teams", CV__ACK_STATE__ACK_STATE_ESCALATED, NULL);
    assert_string_not_equal(a1->acknowledgement->acknowledgement_id,
                            a2->acknowledgement->acknowledgement_id);
    assert_int_equal(a1->acknowledgement->acknowledgement_state,
                     CV__ACK_STATE__ACK_STATE_ACKNOWLEDGED);
    assert_int_equal(
        cv_test_count("SELECT count(*) FROM evidence_events WHERE plan_id = $1",
                      pid),
        3);
    assert_int_equal(cv_test_count("SELECT count(*) FROM evidence_events WHERE "
                                   "plan_id = $1 AND kind = "
                                   "'recovery_escalation_plan'",
                                   pid),
                     1);
    /* Each ack event names its own record. */
    assert_int_equal(
        cv_test_count(
            "SELECT count(*) FROM evidence_events e JOIN "
            "acknowledgements a ON a.acknowledgement_id = e.record_id "
            "WHERE e.plan_id = $1 AND a.plan_id = $1 AND e.kind = "
            "'recovery_escalation_ack'",
            pid),
        2);
    assert_int_equal(
        cv_test_count(
            "SELECT count(*) FROM acknowledgements WHERE plan_id = $1", pid),
        2);
    protobuf_c_message_free_unpacked(&a1->base, NULL);
    protobuf_c_message_free_unpacked(&a2->base, NULL);
    protobuf_c_message_free_unpacked(&plan->base, NULL);
}

static void
test_ack_rpc_unknown_plan_not_found(void **state)
{
    Cv__AcknowledgeRequest req = CV__ACKNOWLEDGE_REQUEST__INIT;
    Cv__GetPlanRequest greq = CV__GET_PLAN_REQUEST__INIT;
    char longid[300];

    (void)state;
    req.plan_id = "gordackrecoveryesc-0000000000000000";
    req.provider = "slack";
    req.acknowledged_by = "alice";
    cv_test_rpc_expect_error(it_cli, "ack.Acknowledge", &req.base,
                             &cv__acknowledge_reply__descriptor, CV_NOT_FOUND,
                             IT_NOT_FOUND);
    req.plan_id = "";
    cv_test_rpc_expect_error(it_cli, "ack.Acknowledge", &req.base,
                             &cv__acknowledge_reply__descriptor, CV_NOT_FOUND,
                             IT_NOT_FOUND);
    req.plan_id = NULL;
    cv_test_rpc_expect_error(it_cli, "ack.Acknowledge", &req.base,
                             &cv__acknowledge_reply__descriptor, CV_NOT_FOUND,
                             IT_NOT_FOUND);
    memset(longid, 'a', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    req.plan_id = longid;
    cv_test_rpc_expect_error(it_cli, "ack.Acknowledge", &req.base,
                             &cv__acknowledge_reply__descriptor, CV_NOT_FOUND,
                             IT_NOT_FOUND);
    /* SQL text in the id is only a parameter. */
    req.plan_id = "x' OR '1'='1";
    cv_test_rpc_expect_error(it_cli, "ack.Acknowledge", &req.base,
                             &cv__acknowledge_reply__descriptor, CV_NOT_FOUND,
                             IT_NOT_FOUND);

    greq.plan_id = "gordackrecoveryesc-0000000000000000";
    cv_test_rpc_expect_error(it_cli, "ack.GetPlan", &greq.base,
                             &cv__get_plan_reply__descriptor, CV_NOT_FOUND,
                             IT_NOT_FOUND);
    greq.plan_id = NULL;
    cv_test_rpc_expect_error(it_cli, "ack.GetPlan", &greq.base,
                             &cv__get_plan_reply__descriptor, CV_NOT_FOUND,
                             IT_NOT_FOUND);
}

static void
test_ack_rpc_invalid_arguments(void **state)
{
    static const char *const provs[] = {"slack", "jira"};
    Cv__RecordPlanReply *plan;
    Cv__RecordPlanRequest preq = CV__RECORD_PLAN_REQUEST__INIT;
    Cv__EscalationRoute route = CV__ESCALATION_ROUTE__INIT;
    Cv__EscalationRoute *rptr = &route;
    Cv__AcknowledgeRequest req = CV__ACKNOWLEDGE_REQUEST__INIT;
    char notes[2002], msg[300];

    (void)state;
    /* Plans. */
    cv_test_rpc_expect_error(
        it_cli, "ack.RecordPlan", &preq.base,
        &cv__record_plan_reply__descriptor, CV_INVALID_ARGUMENT,
        "escalation_routes is required: give 1 to 200 routes");
    preq.n_escalation_routes = 1;
    preq.escalation_routes = &rptr;
    cv_test_rpc_expect_error(it_cli, "ack.RecordPlan", &preq.base,
                             &cv__record_plan_reply__descriptor,
                             CV_INVALID_ARGUMENT,
                             "escalation_routes[0].provider is required");
    route.provider = "slack";
    preq.has_recovery_slo_minutes = 1;
    preq.recovery_slo_minutes = 43201;
    cv_test_rpc_expect_error(
        it_cli, "ack.RecordPlan", &preq.base,
        &cv__record_plan_reply__descriptor, CV_INVALID_ARGUMENT,
        "recovery_slo_minutes must be between 1 and 43200");
    preq.recovery_slo_minutes = 60;
    route.has_severity = 1;
    route.severity = 42;
    cv_test_rpc_expect_error(
        it_cli, "ack.RecordPlan", &preq.base,
        &cv__record_plan_reply__descriptor, CV_INVALID_ARGUMENT,
        "escalation_routes[0].severity must be critical, warning, "
        "or info");

    /* Acknowledgements, in docs/api.md order. */
    plan = it_record_plan(provs, 2, NULL);
    req.plan_id = plan->plan->plan_id;
    req.acknowledged_by = "alice";
    cv_test_rpc_expect_error(it_cli, "ack.Acknowledge", &req.base,
                             &cv__acknowledge_reply__descriptor,
                             CV_INVALID_ARGUMENT, "provider is required");
    req.provider = "   ";
    cv_test_rpc_expect_error(it_cli, "ack.Acknowledge", &req.base,
                             &cv__acknowledge_reply__descriptor,
                             CV_INVALID_ARGUMENT, "provider is required");
    req.provider = "slack";
    req.acknowledged_by = NULL;
    cv_test_rpc_expect_error(it_cli, "ack.Acknowledge", &req.base,
                             &cv__acknowledge_reply__descriptor,
                             CV_INVALID_ARGUMENT,
                             "acknowledged_by is required");
    req.acknowledged_by = "alice";
    req.has_acknowledgement_state = 1;
    req.acknowledgement_state = 99;
    cv_test_rpc_expect_error(it_cli, "ack.Acknowledge", &req.base,
                             &cv__acknowledge_reply__descriptor,
                             CV_INVALID_ARGUMENT, IT_STATE_RULE);
    req.acknowledgement_state = 0;
    cv_test_rpc_expect_error(it_cli, "ack.Acknowledge", &req.base,
                             &cv__acknowledge_reply__descriptor,
                             CV_INVALID_ARGUMENT, IT_STATE_RULE);
    req.has_acknowledgement_state = 0;
    memset(notes, 'n', 2001);
    notes[2001] = '\0';
    req.notes = notes;
    cv_test_rpc_expect_error(it_cli, "ack.Acknowledge", &req.base,
                             &cv__acknowledge_reply__descriptor,
                             CV_INVALID_ARGUMENT,
                             "notes must be at most 2000 characters");
    req.notes = NULL;
    req.acknowledged_by = "\xff\xfe";
    cv_test_rpc_expect_error(it_cli, "ack.Acknowledge", &req.base,
                             &cv__acknowledge_reply__descriptor,
                             CV_INVALID_ARGUMENT,
                             "acknowledged_by must be valid UTF-8");
    req.acknowledged_by = "alice";

    /* A provider the plan does not route to names the plan's providers. */
    req.provider = "Teams";
    snprintf(msg, sizeof(msg),
             "provider teams is not routed by recovery escalation plan %s; "
             "the plan's providers are jira, slack",
             plan->plan->plan_id);
    cv_test_rpc_expect_error(it_cli, "ack.Acknowledge", &req.base,
                             &cv__acknowledge_reply__descriptor,
                             CV_INVALID_ARGUMENT, msg);

    /* Input rules come before the store: a bad request for an unknown
     * plan is a 400, not a 404. */
    req.plan_id = "gordackrecoveryesc-0000000000000000";
    req.provider = NULL;
    cv_test_rpc_expect_error(it_cli, "ack.Acknowledge", &req.base,
                             &cv__acknowledge_reply__descriptor,
                             CV_INVALID_ARGUMENT, "provider is required");
    protobuf_c_message_free_unpacked(&plan->base, NULL);
}

static void
test_ack_rpc_actor_and_redaction(void **state)
{
    static const char *const provs[] = {"slack"};
    char *roles[] = {"release_manager"};
    Cv__Actor actor = CV__ACTOR__INIT;
    cv_rpc_call_opts opts = {0};
    Cv__RecordPlanReply *plan;
    Cv__AcknowledgeRequest req = CV__ACKNOWLEDGE_REQUEST__INIT;
    ProtobufCMessage *rep = NULL;
    Cv__AcknowledgeReply *ack;
    cv_error err;
    const char *aid;

    (void)state;
    plan = it_record_plan(provs, 1, NULL);
    actor.actor = "release-manager-alice";
    actor.subject = "alice@example.test";
    actor.n_roles = 1;
    actor.roles = roles;
    opts.actor = &actor;

    req.plan_id = plan->plan->plan_id;
    req.provider = "slack";
    req.acknowledged_by = "mallory";
    req.notes = "rotated token=abcd1234secret; called with Bearer zq81Kx09PlmQ";
    cv_error_clear(&err);
    CV_TEST_PASS(cv_rpc_call(it_cli, "ack.Acknowledge", &req.base,
                             &cv__acknowledge_reply__descriptor, &rep, &opts,
                             &err),
                 err);
    ack = (Cv__AcknowledgeReply *)rep;
    aid = ack->acknowledgement->acknowledgement_id;
    assert_string_equal(ack->acknowledgement->acknowledged_by,
                        "release-manager-alice");
    assert_non_null(ack->actor);
    assert_string_equal(ack->actor->actor, "release-manager-alice");
    assert_int_equal(ack->acknowledgement->redaction_count, 2);
    assert_null(strstr(ack->acknowledgement->notes, "abcd1234secret"));
    assert_null(strstr(ack->acknowledgement->notes, "zq81Kx09PlmQ"));
    assert_int_equal(
        cv_test_count("SELECT count(*) FROM evidence_events WHERE kind = "
                      "'recovery_escalation_ack' AND record_id = $1 AND "
                      "record->>'acknowledged_by' = 'release-manager-alice'",
                      aid),
        1);
    assert_int_equal(cv_test_count("SELECT count(*) FROM evidence_events WHERE "
                                   "record_id = $1 AND actor = "
                                   "'release-manager-alice'",
                                   aid),
                     1);
    /* The secrets are nowhere in the store. */
    assert_int_equal(
        cv_test_count("SELECT count(*) FROM acknowledgements a WHERE "
                      "acknowledgement_id = $1 AND (a::text LIKE "
                      "'%abcd1234secret%' OR a::text LIKE '%zq81Kx09PlmQ%')",
                      aid),
        0);
    assert_int_equal(
        cv_test_count("SELECT count(*) FROM evidence_events WHERE record::text "
                      "LIKE '%abcd1234secret%' OR record::text LIKE "
                      "'%zq81Kx09PlmQ%'",
                      NULL),
        0);
    protobuf_c_message_free_unpacked(rep, NULL);
    protobuf_c_message_free_unpacked(&plan->base, NULL);
}

static void
test_ack_rpc_ack_current_latest(void **state)
{
    static const char *const provs[] = {"slack", "jira"};
    static const int seq[] = {
        CV__ACK_STATE__ACK_STATE_ACKNOWLEDGED,
        CV__ACK_STATE__ACK_STATE_ESCALATED,
        CV__ACK_STATE__ACK_STATE_RESOLVED,
    };
    Cv__RecordPlanReply *plan;
    Cv__AcknowledgeReply *a;
    const char *pid;
    char last[128] = "";

    (void)state;
    plan = it_record_plan(provs, 2, NULL);
    pid = plan->plan->plan_id;
    for (size_t i = 0; i < 3; i++) {
        a = it_ack(pid, "slack", seq[i], NULL);
        snprintf(last, sizeof(last), "%s",
                 a->acknowledgement->acknowledgement_id);
        protobuf_c_message_free_unpacked(&a->base, NULL);
    }
    a = it_ack(pid, "jira", CV__ACK_STATE__ACK_STATE_DEFERRED, NULL);
    protobuf_c_message_free_unpacked(&a->base, NULL);

    assert_int_equal(
        cv_test_count("SELECT count(*) FROM ack_current WHERE plan_id = $1",
                      pid),
        2);
    assert_int_equal(cv_test_count("SELECT count(*) FROM ack_current WHERE "
                                   "plan_id = $1 AND provider = 'slack' AND "
                                   "acknowledgement_state = 'resolved'",
                                   pid),
                     1);
    assert_int_equal(
        cv_test_count("SELECT count(*) FROM ack_current WHERE "
                      "acknowledgement_id = $1 AND provider = 'slack'",
                      last),
        1);
    assert_int_equal(cv_test_count("SELECT count(*) FROM ack_current WHERE "
                                   "plan_id = $1 AND provider = 'jira' AND "
                                   "acknowledgement_state = 'deferred'",
                                   pid),
                     1);
    /* History is kept: every ack stays. */
    assert_int_equal(
        cv_test_count("SELECT count(*) FROM acknowledgements WHERE "
                      "plan_id = $1 AND provider = 'slack'",
                      pid),
        3);
    protobuf_c_message_free_unpacked(&plan->base, NULL);
}

/* One thread's acknowledgement for the concurrency tests. */
typedef struct it_worker {
    pthread_barrier_t *barrier;
    const char *plan_id;
    const char *provider;
    int state;
    int rv;
    char msg[CV_ERROR_MSG_MAX];
    char id[128];
} it_worker;

static void *
it_worker_main(void *arg)
{
    it_worker *w = arg;
    Cv__AcknowledgeReply *rep = NULL;
    cv_error err;

    pthread_barrier_wait(w->barrier);
    w->rv = cv_test_ack_call(it_cli, w->plan_id, w->provider,
                             "concurrent-tester", w->state, NULL, &rep, &err);
    snprintf(w->msg, sizeof(w->msg), "%s", err.msg);
    if (w->rv == 0) {
        snprintf(w->id, sizeof(w->id), "%s",
                 rep->acknowledgement->acknowledgement_id);
        protobuf_c_message_free_unpacked(&rep->base, NULL);
    }
    return NULL;
}

/* Runs IT_THREADS acknowledgements at once; provider i is providers[i]. */
static void
it_run_concurrent(const char *plan_id, const char *const *providers,
                  it_worker *w)
{
    pthread_barrier_t barrier;
    pthread_t th[IT_THREADS];

    pthread_barrier_init(&barrier, NULL, IT_THREADS);
    for (int i = 0; i < IT_THREADS; i++) {
        memset(&w[i], 0, sizeof(w[i]));
        w[i].barrier = &barrier;
        w[i].plan_id = plan_id;
        w[i].provider = providers[i];
        w[i].state = 1 + i % 6;
        assert_int_equal(pthread_create(&th[i], NULL, it_worker_main, &w[i]),
                         0);
    }
    for (int i = 0; i < IT_THREADS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&barrier);
    for (int i = 0; i < IT_THREADS; i++) {
        if (w[i].rv != 0)
            fail_msg("concurrent ack %d failed with %d: %s", i, w[i].rv,
                     w[i].msg);
        cv_test_assert_id(w[i].id, "gordackrecoveryescack-");
        for (int j = 0; j < i; j++)
            assert_string_not_equal(w[i].id, w[j].id);
    }
}

static void
test_ack_rpc_concurrent_distinct_pairs(void **state)
{
    char names[IT_THREADS][8];
    const char *provs[IT_THREADS];
    it_worker w[IT_THREADS];
    Cv__RecordPlanReply *plan;
    const char *pid;

    (void)state;
    for (int i = 0; i < IT_THREADS; i++) {
        snprintf(names[i], sizeof(names[i]), "p%02d", i);
        provs[i] = names[i];
    }
    plan = it_record_plan(provs, IT_THREADS, NULL);
    pid = plan->plan->plan_id;
    it_run_concurrent(pid, provs, w);
    assert_int_equal(
        cv_test_count(
            "SELECT count(*) FROM acknowledgements WHERE plan_id = $1", pid),
        IT_THREADS);
    assert_int_equal(
        cv_test_count("SELECT count(DISTINCT provider) FROM acknowledgements "
                      "WHERE plan_id = $1",
                      pid),
        IT_THREADS);
    assert_int_equal(
        cv_test_count("SELECT count(*) FROM ack_current WHERE plan_id = $1",
                      pid),
        IT_THREADS);
    /* Each pair's current row is that pair's only ack. */
    assert_int_equal(
        cv_test_count(
            "SELECT count(*) FROM ack_current c JOIN acknowledgements a "
            "ON a.acknowledgement_id = c.acknowledgement_id AND "
            "a.provider = c.provider AND a.acknowledgement_state = "
            "c.acknowledgement_state WHERE c.plan_id = $1",
            pid),
        IT_THREADS);
    assert_int_equal(cv_test_count("SELECT count(*) FROM evidence_events WHERE "
                                   "plan_id = $1 AND kind = "
                                   "'recovery_escalation_ack'",
                                   pid),
                     IT_THREADS);
    protobuf_c_message_free_unpacked(&plan->base, NULL);
}

static void
test_ack_rpc_concurrent_same_pair(void **state)
{
    static const char *const one[] = {"slack"};
    const char *provs[IT_THREADS];
    it_worker w[IT_THREADS];
    Cv__RecordPlanReply *plan;
    const char *pid;

    (void)state;
    for (int i = 0; i < IT_THREADS; i++)
        provs[i] = "slack";
    plan = it_record_plan(one, 1, NULL);
    pid = plan->plan->plan_id;
    it_run_concurrent(pid, provs, w);
    assert_int_equal(
        cv_test_count(
            "SELECT count(*) FROM acknowledgements WHERE plan_id = $1", pid),
        IT_THREADS);
    assert_int_equal(
        cv_test_count("SELECT count(*) FROM ack_current WHERE plan_id = $1",
                      pid),
        1);
    /* No lost update: the current row is the ack stored last. */
    assert_int_equal(
        cv_test_count(
            "SELECT count(*) FROM ack_current c JOIN acknowledgements a "
            "ON a.acknowledgement_id = c.acknowledgement_id WHERE "
            "c.plan_id = $1 AND c.acknowledgement_state = "
            "a.acknowledgement_state AND a.seq = (SELECT max(seq) FROM "
            "acknowledgements WHERE plan_id = $1)",
            pid),
        1);
    assert_int_equal(
        cv_test_count("SELECT count(*) FROM evidence_events WHERE plan_id = $1",
                      pid),
        IT_THREADS + 1);
    protobuf_c_message_free_unpacked(&plan->base, NULL);
}

static void
test_ack_rpc_unknown_method(void **state)
{
    Cv__HealthRequest req = CV__HEALTH_REQUEST__INIT;

    (void)state;
    cv_test_rpc_expect_error(it_cli, "ack.Nope", &req.base,
                             &cv__health_reply__descriptor, CV_UNIMPLEMENTED,
                             "unknown method");
    cv_test_rpc_expect_error(it_cli, "retry.Health", &req.base,
                             &cv__health_reply__descriptor, CV_UNIMPLEMENTED,
                             "unknown method");
    cv_test_rpc_expect_error(it_cli, "", &req.base,
                             &cv__health_reply__descriptor, CV_UNIMPLEMENTED,
                             "unknown method");
}

typedef struct it_raw_wait {
    pthread_mutex_t mtx;
    pthread_cond_t cond;
    int done;
    int code;
    char msg[CV_ERROR_MSG_MAX];
} it_raw_wait;

static void
it_raw_cb(void *arg, cv_rpc_result *res)
{
    it_raw_wait *w = arg;

    pthread_mutex_lock(&w->mtx);
    w->code = res->code;
    snprintf(w->msg, sizeof(w->msg), "%s", res->message);
    if (res->reply != NULL)
        cv__rpc_reply__free_unpacked(res->reply, NULL);
    w->done = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mtx);
}

/* An envelope for `method` whose payload is the given raw bytes. */
static int
it_call_raw_payload(const char *method, const uint8_t *payload, size_t len,
                    char *msg, size_t msglen)
{
    Cv__RpcRequest env = CV__RPC_REQUEST__INIT;
    it_raw_wait w;
    cv_error err;

    env.method = (char *)method;
    env.request_id = "it-raw-payload";
    env.has_payload = 1;
    env.payload.data = (uint8_t *)payload;
    env.payload.len = len;
    memset(&w, 0, sizeof(w));
    pthread_mutex_init(&w.mtx, NULL);
    pthread_cond_init(&w.cond, NULL);
    cv_error_clear(&err);
    if (cv_rpc_call_start(it_cli, &env, 5000, it_raw_cb, &w, &err) != 0)
        fail_msg("cv_rpc_call_start: %s", err.msg);
    pthread_mutex_lock(&w.mtx);
    while (!w.done)
        pthread_cond_wait(&w.cond, &w.mtx);
    pthread_mutex_unlock(&w.mtx);
    pthread_mutex_destroy(&w.mtx);
    pthread_cond_destroy(&w.cond);
    snprintf(msg, msglen, "%s", w.msg);
    return w.code;
}

/* Sends bytes that are not an RpcRequest at all, on a socket of our own,
 * and returns the reply's code (or -1 when no valid reply came back). */
static int
it_call_raw_envelope(const uint8_t *bytes, size_t len, char *msg, size_t msglen)
{
    nng_socket sock;
    nng_msg *m;
    Cv__RpcReply *rep;
    int code = -1;

    msg[0] = '\0';
    if (nng_req0_open(&sock) != 0)
        return -1;
    nng_socket_set_ms(sock, NNG_OPT_RECVTIMEO, 5000);
    nng_socket_set_ms(sock, NNG_OPT_SENDTIMEO, 5000);
    if (nng_dial(sock, it_stack.ack_url, NULL, 0) != 0 ||
        nng_msg_alloc(&m, len) != 0) {
        nng_close(sock);
        return -1;
    }
    memcpy(nng_msg_body(m), bytes, len);
    if (nng_sendmsg(sock, m, 0) != 0) {
        nng_msg_free(m);
        nng_close(sock);
        return -1;
    }
    if (nng_recvmsg(sock, &m, 0) == 0) {
        rep = cv__rpc_reply__unpack(NULL, nng_msg_len(m), nng_msg_body(m));
        if (rep != NULL) {
            code = rep->has_code ? rep->code : -1;
            snprintf(msg, msglen, "%s", rep->message ? rep->message : "");
            cv__rpc_reply__free_unpacked(rep, NULL);
        }
        nng_msg_free(m);
    }
    nng_close(sock);
    return code;
}

static void
test_ack_rpc_garbage_payload(void **state)
{
    /* Field 1 (string) claims 16 bytes but 1 follows: truncated. */
    static const uint8_t truncated[] = {0x0a, 0x10, 'a'};
    /* A varint that never ends. */
    static const uint8_t endless[] = {0x10, 0xff, 0xff, 0xff, 0xff, 0xff,
                                      0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t envelope[] = {0xff, 0x00, 0x13, 0x37, 0x0a, 0x7f};
    static const char *const provs[] = {"slack"};
    Cv__RecordPlanReply *plan;
    Cv__AcknowledgeReply *ack;
    cv_test_counts before;
    char msg[CV_ERROR_MSG_MAX];

    (void)state;
    cv_test_counts_snapshot(&before);
    assert_int_equal(it_call_raw_payload("ack.RecordPlan", truncated,
                                         sizeof(truncated), msg, sizeof(msg)),
                     CV_INVALID_ARGUMENT);
    assert_string_equal(msg, "malformed request payload");
    assert_int_equal(it_call_raw_payload("ack.Acknowledge", endless,
                                         sizeof(endless), msg, sizeof(msg)),
                     CV_INVALID_ARGUMENT);
    assert_string_equal(msg, "malformed request payload");
    assert_int_equal(
        it_call_raw_envelope(envelope, sizeof(envelope), msg, sizeof(msg)),
        CV_INVALID_ARGUMENT);
    assert_string_equal(msg, "malformed RPC envelope");
    cv_test_counts_unchanged(&before, "malformed calls");

    /* The service keeps serving. */
    test_ack_rpc_health(state);
    plan = it_record_plan(provs, 1, NULL);
    ack = it_ack(plan->plan->plan_id, "slack", 0, NULL);
    assert_string_equal(ack->acknowledgement->plan_id, plan->plan->plan_id);
    protobuf_c_message_free_unpacked(&ack->base, NULL);
    protobuf_c_message_free_unpacked(&plan->base, NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ack_rpc_health),
        cmocka_unit_test(test_ack_rpc_record_plan_stored),
        cmocka_unit_test(test_ack_rpc_acknowledge_and_get_plan),
        cmocka_unit_test(test_ack_rpc_evidence_per_record),
        cmocka_unit_test(test_ack_rpc_unknown_plan_not_found),
        cmocka_unit_test(test_ack_rpc_invalid_arguments),
        cmocka_unit_test(test_ack_rpc_actor_and_redaction),
        cmocka_unit_test(test_ack_rpc_ack_current_latest),
        cmocka_unit_test(test_ack_rpc_concurrent_distinct_pairs),
        cmocka_unit_test(test_ack_rpc_concurrent_same_pair),
        cmocka_unit_test(test_ack_rpc_unknown_method),
        cmocka_unit_test(test_ack_rpc_garbage_payload),
    };

    return cmocka_run_group_tests_name("ack_rpc", tests, it_setup, it_teardown);
}
