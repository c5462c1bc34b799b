/*
 * compat_test.c -- drop-in compatibility with the original CAVRA clients
 * (issue 11): replays each request of tests/e2e/compat/
 * original-record-keys.md over HTTP through the whole stack and checks
 * that every key path the original emits is in our answer; where the
 * reference fixes a value (schema_version, product, metadata_kind, the key
 * risks' wording and owner) it must be equal. Also: the latest executive
 * report (stored, or computed without storing anything), the run history,
 * and the history answer's total / limit / offset and item keys.
 *
 * The requests are the reference's, with two deliberate changes: the
 * schedule-run names its own disabled schedule (the scheduler must not
 * generate runs in other tests' windows), and a plan with a breached,
 * open webhook route plus two failed deliveries exists first, so the
 * lists the reference walks ([]) are not empty.
 *
 * Run: ctest -R e2e.compat (needs CAVRA_DATABASE_URL, as every e2e test).
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
#define CT_STREAM "/runtime/go-pilot/rollback-drill-notifications"
#define CT_KEYS_FILE                                                           \
    CV_TEST_SOURCE_DIR "/tests/e2e/compat/original-record-keys.md"
#define CT_MAX_KEYS 400
#define CT_PATH_MAX 256
#define CT_SECTIONS 5
#define CT_ACK_KIND                                                            \
    "go-backend-rollback-drill-acknowledgement-audit-delivery-recovery-"       \
    "escalation-ack"

/* One key path of the reference, with its example value (NULL if none). */
typedef struct ct_key {
    char path[CT_PATH_MAX];
    json_t *example;
} ct_key;

typedef struct ct_section {
    char title[160];
    ct_key keys[CT_MAX_KEYS];
    size_t n;
} ct_section;

static cv_test_stack ct_stack;
static ct_section ct_sections[CT_SECTIONS];
static size_t ct_n_sections;
static char ct_tag[24];

/* ---- the reference -------------------------------------------------- */

/* Reads the reference: "## " starts a section, and inside ``` blocks
 * every ".path   e.g. value" line is a key. */
static int
ct_load_reference(void)
{
    FILE *f = fopen(CT_KEYS_FILE, "r");
    char line[1024];
    bool in_block = false;
    ct_section *cur = NULL;

    if (f == NULL) {
        fprintf(stderr, "compat: cannot open %s\n", CT_KEYS_FILE);
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "## ", 3) == 0) {
            if (ct_n_sections == CT_SECTIONS)
                break;
            cur = &ct_sections[ct_n_sections++];
            snprintf(cur->title, sizeof(cur->title), "%.*s",
                     (int)(sizeof(cur->title) - 1), line + 3);
            continue;
        }
        if (strncmp(line, "```", 3) == 0) {
            in_block = !in_block;
            continue;
        }
        if (!in_block || cur == NULL || line[0] != '.' || cur->n == CT_MAX_KEYS)
            continue;
        {
            ct_key *k = &cur->keys[cur->n++];
            char *eg = strstr(line, "   e.g. ");
            size_t plen = strcspn(line, " ");

            snprintf(k->path, sizeof(k->path), "%.*s", (int)plen, line);
            k->example =
                eg != NULL ? json_loads(eg + 8, JSON_DECODE_ANY, NULL) : NULL;
        }
    }
    fclose(f);
    return ct_n_sections == CT_SECTIONS ? 0 : -1;
}

/* The reference section whose title starts with prefix. */
static const ct_section *
ct_section_named(const char *prefix)
{
    for (size_t i = 0; i < ct_n_sections; i++)
        if (strncmp(ct_sections[i].title, prefix, strlen(prefix)) == 0)
            return &ct_sections[i];
    fail_msg("reference section \"%s\" is missing", prefix);
    return NULL;
}

/* Keys whose example value is fixed by the reference (the rest are
 * examples of meaning only). */
static bool
ct_value_fixed(const char *path)
{
    static const char *const fixed[] = {".schema_version", ".product",
                                        ".metadata_kind", ".risk", ".owner"};
    size_t n = strlen(path);

    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        size_t m = strlen(fixed[i]);
        if (n >= m && strcmp(path + n - m, fixed[i]) == 0)
            return true;
    }
    return false;
}

/*
 * Walks path (".a.b[].c") from node: every element of every [] list must
 * have the rest of the path (and a list the path goes through must not be
 * empty). *matched counts the leaves equal to want (NULL: not compared).
 */
static void
ct_walk(json_t *node, const char *path, const char *full, const json_t *want,
        size_t *matched)
{
    char seg[CT_PATH_MAX];
    size_t len;
    bool list;
    json_t *v;

    if (*path == '\0') {
        if (want != NULL && json_equal(node, (json_t *)want))
            (*matched)++;
        return;
    }
    assert_true(*path == '.');
    path++;
    len = strcspn(path, ".");
    snprintf(seg, sizeof(seg), "%.*s", (int)len, path);
    path += len;
    list = len > 2 && strcmp(seg + len - 2, "[]") == 0;
    if (list)
        seg[len - 2] = '\0';
    if (!json_is_object(node) || (v = json_object_get(node, seg)) == NULL)
        fail_msg("%s: key \"%s\" is missing", full, seg);
    if (!list) {
        ct_walk(v, path, full, want, matched);
        return;
    }
    if (!json_is_array(v))
        fail_msg("%s: \"%s\" is not a list", full, seg);
    if (json_array_size(v) == 0)
        fail_msg("%s: \"%s\" is empty, nothing to check", full, seg);
    for (size_t i = 0; i < json_array_size(v); i++)
        ct_walk(json_array_get(v, i), path, full, want, matched);
}

/* Every key of section is in answer; fixed values are equal (in a list,
 * at least one element has it). */
static void
ct_check_section(json_t *answer, const ct_section *sec)
{
    assert_true(sec->n > 0);
    for (size_t i = 0; i < sec->n; i++) {
        const ct_key *k = &sec->keys[i];
        const json_t *want =
            ct_value_fixed(k->path) && k->example != NULL ? k->example : NULL;
        size_t matched = 0;

        ct_walk(answer, k->path, k->path, want, &matched);
        if (want != NULL && matched == 0) {
            char *w = json_dumps(want, JSON_ENCODE_ANY);
            fail_msg("%s: no value equals the original's %s", k->path, w);
        }
    }
}

/* ---- setup ------------------------------------------------------------ */

static char *ct_plan;

static int
ct_setup(void **state)
{
    (void)state;
    snprintf(ct_tag, sizeof(ct_tag), "%ld", cv_test_now_ms());
    if (ct_load_reference() != 0)
        return -1;
    return cv_test_stack_start(&ct_stack, CV_STACK_ALL);
}

static int
ct_teardown(void **state)
{
    (void)state;
    free(ct_plan);
    for (size_t i = 0; i < ct_n_sections; i++)
        for (size_t j = 0; j < ct_sections[i].n; j++)
            json_decref(ct_sections[i].keys[j].example);
    return cv_test_stack_stop(&ct_stack);
}

/* A plan whose webhook route is critical, open and past its SLO, with two
 * failed deliveries: every list the reference walks has an element. */
static const char *
ct_plan_id(void)
{
    char path[256];
    cv_http_response r;

    if (ct_plan != NULL)
        return ct_plan;
    ct_plan = cv_test_record_plan_http(
        &ct_stack,
        "{\"generated_by\":\"compat\",\"recovery_slo_minutes\":240,"
        "\"escalation_routes\":[{\"provider\":\"webhook\",\"category\":"
        "\"connector-recovery\",\"severity\":\"critical\",\"reason\":"
        "\"recovery SLO breached\",\"playbook_id\":\"pb-1\","
        "\"closure_state\":\"open\",\"age_minutes\":300,"
        "\"slo_breached\":true}]}");
    snprintf(path, sizeof(path), P "/recovery-escalations/%s/delivery-attempts",
             ct_plan);
    for (int i = 0; i < 2; i++) {
        cv_test_request_json(&ct_stack, "POST", path,
                             "{\"provider\":\"webhook\",\"success\":false,"
                             "\"status_code\":503,\"attempt_count\":1}",
                             201, &r);
        cv_http_response_free(&r);
    }
    return ct_plan;
}

/* Our keys that metadata leaves out of the record it embeds (the record
 * beside it has them): every other key of the copy is the record's. */
static const char *const ct_ours_ack[] = {"redaction_count", NULL};
static const char *const ct_ours_retry[] = {
    "plan_id", "retry_decisions[].acknowledgement_state", NULL};
#define CT_OURS_REPORT(p)                                                      \
    p "window_start", p "window_end", p "run_id", p "schedule_id",             \
        p "executive_summary.critical_escalation_count",                       \
        p "executive_summary.unacknowledged_count",                            \
        p "executive_summary.failed_delivery_count",                           \
        p "executive_summary.retryable_count",                                 \
        p "executive_summary.acknowledgement_count",                           \
        p "provider_summary[].critical_escalation_count",                      \
        p "provider_summary[].unacknowledged_count",                           \
        p "provider_summary[].failed_delivery_count",                          \
        p "provider_summary[].acknowledgement_count",                          \
        p "provider_summary[].latest_acknowledgement_state",                   \
        p "provider_summary[].escalation_count"
static const char *const ct_ours_report[] = {CT_OURS_REPORT(""), NULL};
static const char *const ct_ours_run[] = {
    "redaction_count", "schedule.schedule_id",
    CT_OURS_REPORT("executive_report."), NULL};

/* ---- the reference requests ------------------------------------------ */

static void
test_compat_acknowledgement(void **state)
{
    char path[256];
    cv_http_response r;

    (void)state;
    snprintf(path, sizeof(path), P "/recovery-escalations/%s/acknowledgements",
             ct_plan_id());
    cv_test_request_json(
        &ct_stack, "POST", path,
        "{\"provider\": \"webhook\", \"acknowledged_by\": \"release-manager\", "
        "\"acknowledgement_state\": \"accepted\", \"external_ref\": "
        "\"INC-456\", \"notes\": \"reviewed\", \"escalation_reason\": "
        "\"recovery SLO breached\"}",
        201, &r);
    ct_check_section(r.json, ct_section_named("POST P/recovery-escalations/{"));
    /* One spelling per field: the old names are gone. */
    assert_null(cv_test_json_get(r.json, "acknowledgement.schema"));
    /* The metadata embeds the record with the original's keys. */
    cv_test_assert_embedded(
        cv_test_json_get(r.json,
                         "metadata.recovery_escalation_acknowledgement"),
        cv_test_json_get(r.json, "acknowledgement"), ct_ours_ack);
    cv_test_assert_int(r.json, "metadata.decision_count", 1);
    cv_http_response_free(&r);
}

static void
test_compat_retry_plan(void **state)
{
    cv_http_response r;

    (void)state;
    (void)ct_plan_id();
    cv_test_request_json(
        &ct_stack, "POST", P "/recovery-escalations/retry-plan",
        "{\"generated_by\": \"console\", \"retry_policy\": "
        "{\"max_retry_attempts\": 3, \"retry_delay_minutes\": 0, "
        "\"allow_immediate_retry\": true, \"backoff_multiplier\": 2}}",
        201, &r);
    ct_check_section(
        r.json, ct_section_named("POST P/recovery-escalations/retry-plan"));
    assert_null(cv_test_json_get(r.json, "plan.schema"));
    assert_int_equal(cv_test_json_int(r.json, "metadata.waiting_count"),
                     cv_test_json_int(r.json, "plan.waiting_count"));
    assert_int_equal(
        cv_test_json_int(r.json, "metadata.approval_required_count"),
        cv_test_json_int(r.json, "plan.retryable_count"));
    cv_test_assert_embedded(
        cv_test_json_get(r.json,
                         "metadata.recovery_escalation_delivery_retry_plan"),
        cv_test_json_get(r.json, "plan"), ct_ours_retry);
    cv_http_response_free(&r);
}

/* The run of this test's schedule (created by test_compat_schedule_run). */
static char ct_run_id[96];

static void
test_compat_schedule_run(void **state)
{
    char body[512];
    cv_http_response r;

    (void)state;
    (void)ct_plan_id();
    snprintf(body, sizeof(body),
             "{\"generated_by\": \"console\", \"recovery_slo_minutes\": 240, "
             "\"schedule\": {\"interval_minutes\": 60, \"cadence\": "
             "\"hourly\", \"enabled\": false, \"schedule_id\": "
             "\"compat-%s\"}}",
             ct_tag);
    cv_test_request_json(&ct_stack, "POST",
                         P "/recovery-executive-report/schedule-run", body, 201,
                         &r);
    ct_check_section(
        r.json, ct_section_named("POST P/recovery-executive-report/schedule"));
    assert_null(cv_test_json_get(r.json, "run.executive_report.report_id"));
    cv_test_assert_embedded(
        cv_test_json_get(r.json,
                         "metadata.recovery_executive_report_schedule_run"),
        cv_test_json_get(r.json, "run"), ct_ours_run);
    cv_test_assert_embedded(
        cv_test_json_get(r.json, "report_metadata.recovery_executive_report"),
        cv_test_json_get(r.json, "run.executive_report"), ct_ours_report);
    snprintf(ct_run_id, sizeof(ct_run_id), "%s",
             cv_test_json_str(r.json, "run.run_id"));
    cv_http_response_free(&r);

    /* The same window again: the stored run, rendered from its one copy,
     * is the same answer. */
    {
        cv_http_response again;

        cv_test_request_json(&ct_stack, "POST",
                             P "/recovery-executive-report/schedule-run", body,
                             200, &again);
        cv_test_assert_str(again.json, "run.run_id", ct_run_id);
        ct_check_section(again.json,
                         ct_section_named("POST P/recovery-executive-report/"
                                          "schedule"));
        cv_http_response_free(&again);
    }
}

static void
test_compat_latest_report(void **state)
{
    const ct_section *sec = ct_section_named("GET P/recovery-executive-report");
    cv_http_response r;
    long runs, events;

    (void)state;
    if (ct_run_id[0] == '\0')
        test_compat_schedule_run(state);
    cv_test_request_json(&ct_stack, "GET", P "/recovery-executive-report", NULL,
                         200, &r);
    ct_check_section(r.json, sec);
    /* The newest run is ours (e2e tests run one at a time). */
    cv_test_assert_str(r.json, "report.run_id", ct_run_id);
    cv_test_assert_bool(r.json, "computed", 0);
    cv_http_response_free(&r);

    /* With the original's query parameters: computed now, same shape,
     * nothing stored. */
    runs = cv_test_count("SELECT count(*) FROM report_runs", NULL);
    events = cv_test_count("SELECT count(*) FROM evidence_events", NULL);
    cv_test_request_json(&ct_stack, "GET",
                         P "/recovery-executive-report?recovery_slo_minutes=240"
                           "&generated_by=console",
                         NULL, 200, &r);
    ct_check_section(r.json, sec);
    cv_test_assert_bool(r.json, "computed", 1);
    cv_test_assert_str(r.json, "report.generated_by", "console");
    cv_test_assert_int(r.json, "report.recovery_slo_minutes", 240);
    cv_test_assert_null(r.json, "report.run_id");
    assert_int_equal(cv_test_count("SELECT count(*) FROM report_runs", NULL),
                     runs);
    assert_int_equal(
        cv_test_count("SELECT count(*) FROM evidence_events", NULL), events);
    cv_http_response_free(&r);

    /* Bad query values are a 400 naming the field. */
    cv_test_reject(&ct_stack, "GET",
                   P "/recovery-executive-report?recovery_slo_minutes=0", NULL,
                   NULL, 400, "INVALID_ARGUMENT", "~recovery_slo_minutes");
}

static void
test_compat_latest_report_404_when_empty(void **state)
{
    cv_http_response r;

    (void)state;
    /* Only meaningful before any run exists in this database; make test
     * runs this test first on its fresh store and says so, and then an
     * existing run is a failure, not a reason to skip. */
    if (cv_test_count("SELECT count(*) FROM report_runs", NULL) != 0) {
        if (getenv("CAVRA_TEST_EXPECT_EMPTY_STORE") != NULL)
            fail_msg("the store should have no report run yet");
        skip();
    }
    cv_test_request(&ct_stack, "GET", P "/recovery-executive-report", NULL,
                    NULL, NULL, &r);
    cv_test_assert_error(&r, 404, "NOT_FOUND", "~no executive report yet");
    cv_http_response_free(&r);
}

static void
test_compat_run_history(void **state)
{
    char path[256];
    cv_http_response r, next;

    (void)state;
    if (ct_run_id[0] == '\0')
        test_compat_schedule_run(state);
    snprintf(path, sizeof(path),
             P "/recovery-executive-report/runs?schedule_id=compat-%s&limit=5",
             ct_tag);
    cv_test_request_json(&ct_stack, "GET", path, NULL, 200, &r);
    assert_int_equal(json_array_size(cv_test_json_get(r.json, "items")), 1);
    cv_test_assert_str(r.json, "items[0].run_id", ct_run_id);
    cv_test_assert_str(r.json, "items[0].schema_version",
                       "cavra.go-backend-pilot.rollback-drill-acknowledgement-"
                       "audit-delivery-recovery-executive-report-schedule-"
                       "run.v1");
    cv_test_assert_null(r.json, "next_cursor");
    cv_http_response_free(&r);

    /* Every schedule, one per page, the cursor leads on. */
    cv_test_request_json(&ct_stack, "GET",
                         P "/recovery-executive-report/runs?limit=1", NULL, 200,
                         &r);
    cv_test_assert_str(r.json, "items[0].run_id", ct_run_id);
    if (cv_test_count("SELECT count(*) FROM report_runs", NULL) > 1) {
        snprintf(path, sizeof(path),
                 P "/recovery-executive-report/runs?limit=1&cursor=%s",
                 cv_test_json_str(r.json, "next_cursor"));
        cv_test_request_json(&ct_stack, "GET", path, NULL, 200, &next);
        assert_string_not_equal(cv_test_json_str(next.json, "items[0].run_id"),
                                ct_run_id);
        cv_http_response_free(&next);
    }
    cv_http_response_free(&r);
    cv_test_reject(&ct_stack, "GET",
                   P "/recovery-executive-report/runs?limit=101", NULL, NULL,
                   400, "INVALID_ARGUMENT", "~limit");
}

static void
test_compat_history(void **state)
{
    char path[320];
    cv_http_response r, two, one;
    long total;

    (void)state;
    (void)ct_plan_id();
    cv_test_request_json(&ct_stack, "GET", CT_STREAM, NULL, 200, &r);
    ct_check_section(r.json, ct_section_named("GET /runtime/go-pilot/"));
    cv_test_assert_int(r.json, "limit", 50);
    cv_test_assert_int(r.json, "offset", 0);
    total = cv_test_count("SELECT count(*) FROM evidence_events", NULL);
    cv_test_assert_int(r.json, "total", total);
    cv_http_response_free(&r);

    /* The total is exact for the filter; items carry the original keys. */
    snprintf(path, sizeof(path),
             CT_STREAM "?kind=recovery_escalation_ack&plan_id=%s", ct_plan);
    cv_test_request_json(&ct_stack, "GET", path, NULL, 200, &r);
    cv_test_assert_int(
        r.json, "total",
        cv_test_count("SELECT count(*) FROM evidence_events WHERE kind = "
                      "'recovery_escalation_ack' AND plan_id = $1",
                      ct_plan));
    if (json_array_size(cv_test_json_get(r.json, "items")) > 0) {
        cv_test_assert_str(r.json, "items[0].kind", "recovery_escalation_ack");
        cv_test_assert_str(r.json, "items[0].metadata_kind", CT_ACK_KIND);
        cv_test_assert_str(r.json, "items[0].acknowledgement_id",
                           cv_test_json_str(r.json, "items[0].record_id"));
        cv_test_assert_str(r.json, "items[0].session_id",
                           cv_test_json_str(r.json, "items[0].record_id"));
        cv_test_assert_int(r.json, "items[0].decision_count", 1);
        cv_test_assert_int(r.json, "items[0].blocked_count", 0);
        cv_test_assert_int(r.json, "items[0].approval_required_count", 0);
        assert_true(
            json_is_object(cv_test_json_get(r.json, "items[0].record")));
    }
    cv_http_response_free(&r);

    /* offset skips exactly that many items of the same order. */
    snprintf(path, sizeof(path), CT_STREAM "?plan_id=%s&limit=2", ct_plan);
    cv_test_request_json(&ct_stack, "GET", path, NULL, 200, &two);
    snprintf(path, sizeof(path), CT_STREAM "?plan_id=%s&limit=1&offset=1",
             ct_plan);
    cv_test_request_json(&ct_stack, "GET", path, NULL, 200, &one);
    cv_test_assert_int(one.json, "offset", 1);
    cv_test_assert_int(one.json, "limit", 1);
    assert_int_equal(cv_test_json_int(one.json, "items[0].position"),
                     cv_test_json_int(two.json, "items[1].position"));
    cv_http_response_free(&two);
    cv_http_response_free(&one);

    /* Deep pages go by the cursor. */
    cv_test_reject(&ct_stack, "GET", CT_STREAM "?offset=10001", NULL, NULL, 400,
                   "INVALID_ARGUMENT", "~next_cursor");
    cv_test_reject(&ct_stack, "GET", CT_STREAM "?offset=-1", NULL, NULL, 400,
                   "INVALID_ARGUMENT", "~offset");
    cv_test_request_json(&ct_stack, "GET", CT_STREAM "?offset=10000", NULL, 200,
                         &r);
    cv_http_response_free(&r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compat_latest_report_404_when_empty),
        cmocka_unit_test(test_compat_acknowledgement),
        cmocka_unit_test(test_compat_retry_plan),
        cmocka_unit_test(test_compat_schedule_run),
        cmocka_unit_test(test_compat_latest_report),
        cmocka_unit_test(test_compat_run_history),
        cmocka_unit_test(test_compat_history),
    };

    return cmocka_run_group_tests_name("compat", tests, ct_setup, ct_teardown);
}
