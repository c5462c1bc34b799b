/*
 * retry_http_test.c -- end-to-end tests of delivery-attempt intake (SPEC
 * 4.2) and retry plans (SPEC 5.2) through the REST gateway: the whole
 * stack (three services + gateway) against the real PostgreSQL, driven
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

#include "cv_test_http.h"
#include "cv_test_stack.h"
#include "cv_time.h"

#define P                                                                      \
    "/runtime/go-pilot/rollback-drill-notifications/acknowledgements/"         \
    "audit-delivery"
#define E2E_PLAN_PATH  P "/recovery-escalation-plan"
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

static cv_test_stack e2e_stack;

/* ---- JSON helpers ----------------------------------------------------- */

/* Looks up "a.b[2].c" in root; NULL when any step is missing. */
static json_t *
e2e_get(json_t *root, const char *path)
{
    json_t *cur = root;
    const char *p = path;
    char key[128];

    while (cur != NULL && *p != '\0') {
        if (*p == '.') {
            p++;
            continue;
        }
        if (*p == '[') {
            cur = json_array_get(cur, strtoul(p + 1, NULL, 10));
            p = strchr(p, ']');
            if (p == NULL)
                return NULL;
            p++;
            continue;
        }
        {
            size_t n = strcspn(p, ".[");

            if (n >= sizeof(key))
                return NULL;
            memcpy(key, p, n);
            key[n] = '\0';
            p += n;
            cur = json_object_get(cur, key);
        }
    }
    return cur;
}

static const char *
e2e_str(json_t *root, const char *path)
{
    json_t *v = e2e_get(root, path);

    if (!json_is_string(v))
        fail_msg("%s is not a string", path);
    return json_string_value(v);
}

static void
e2e_assert_str(json_t *root, const char *path, const char *want)
{
    const char *got = e2e_str(root, path);

    if (strcmp(got, want) != 0)
        fail_msg("%s is \"%s\", expected \"%s\"", path, got, want);
}

static void
e2e_assert_int(json_t *root, const char *path, long long want)
{
    json_t *v = e2e_get(root, path);

    if (!json_is_integer(v))
        fail_msg("%s is not an integer", path);
    if (json_integer_value(v) != want)
        fail_msg("%s is %lld, expected %lld", path,
                 (long long)json_integer_value(v), want);
}

static void
e2e_assert_num(json_t *root, const char *path, double want)
{
    json_t *v = e2e_get(root, path);

    if (!json_is_number(v))
        fail_msg("%s is not a number", path);
    if (fabs(json_number_value(v) - want) > 1e-9)
        fail_msg("%s is %g, expected %g", path, json_number_value(v), want);
}

static void
e2e_assert_null(json_t *root, const char *path)
{
    json_t *v = e2e_get(root, path);

    if (v == NULL)
        fail_msg("%s is missing (expected null)", path);
    if (!json_is_null(v))
        fail_msg("%s is not null", path);
}

static void
e2e_assert_bool(json_t *root, const char *path, int want)
{
    json_t *v = e2e_get(root, path);

    if (!json_is_boolean(v))
        fail_msg("%s is not a boolean", path);
    assert_int_equal(json_is_true(v), want);
}

/* prefix + exactly 16 lowercase hex digits. */
static void
e2e_assert_id(const char *id, const char *prefix)
{
    size_t pl = strlen(prefix);

    if (strncmp(id, prefix, pl) != 0 || strlen(id) != pl + 16)
        fail_msg("id \"%s\" is not %s + 16 hex", id, prefix);
    for (size_t i = pl; i < pl + 16; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            fail_msg("id \"%s\" is not lowercase hex", id);
}

/* RFC 3339 UTC: "YYYY-MM-DDTHH:MM:SS[.frac](Z|+00:00)". */
static void
e2e_assert_time(const char *t)
{
    size_t n = strlen(t);

    if (n < 20 || t[4] != '-' || t[7] != '-' || t[10] != 'T' || t[13] != ':' ||
        t[16] != ':')
        fail_msg("\"%s\" is not an RFC 3339 date-time", t);
    if (!(t[n - 1] == 'Z' || (n > 6 && strcmp(t + n - 6, "+00:00") == 0)))
        fail_msg("\"%s\" is not UTC", t);
}

/* ---- HTTP helpers ----------------------------------------------------- */

static char *
e2e_url(const char *path)
{
    static char url[2048];

    snprintf(url, sizeof(url), "%s%s", e2e_stack.base_url, path);
    return url;
}

/* Sends a request and fails the test when no response arrived; checks the
 * headers every response carries and that it is never a 5xx. */
static void
e2e_do(const char *method, const char *path, const char *ctype,
       const char *body, const char *const *headers, cv_http_response *r)
{
    if (cv_http_request(method, e2e_url(path), ctype, body, headers, r) != 0)
        fail_msg("%s %s: no response", method, path);
    if (r->request_id[0] == '\0')
        fail_msg("%s %s: %ld without X-Request-Id", method, path, r->status);
    if (r->status >= 500)
        fail_msg("%s %s: server error %ld: %s", method, path, r->status,
                 r->body);
}

static void
e2e_post(const char *path, const char *body, cv_http_response *r)
{
    e2e_do("POST", path, NULL, body, NULL, r);
}

/* Row counts of every table a request of this file may write. */
typedef struct e2e_counts {
    long plans, deliveries, retry_plans, decisions, acks, events;
} e2e_counts;

static void
e2e_counts_get(e2e_counts *c)
{
    c->plans = cv_test_db_scalar("SELECT count(*) FROM escalation_plans", NULL);
    c->deliveries =
        cv_test_db_scalar("SELECT count(*) FROM delivery_attempts", NULL);
    c->retry_plans =
        cv_test_db_scalar("SELECT count(*) FROM retry_plans", NULL);
    c->decisions =
        cv_test_db_scalar("SELECT count(*) FROM retry_decisions", NULL);
    c->acks = cv_test_db_scalar("SELECT count(*) FROM acknowledgements", NULL);
    c->events = cv_test_db_scalar("SELECT count(*) FROM evidence_events", NULL);
    assert_true(c->plans >= 0 && c->deliveries >= 0 && c->retry_plans >= 0 &&
                c->decisions >= 0 && c->acks >= 0 && c->events >= 0);
}

static void
e2e_counts_unchanged(const e2e_counts *b, const char *what)
{
    e2e_counts a;

    e2e_counts_get(&a);
    if (a.plans != b->plans || a.deliveries != b->deliveries ||
        a.retry_plans != b->retry_plans || a.decisions != b->decisions ||
        a.acks != b->acks || a.events != b->events)
        fail_msg("%s stored something: plans %ld->%ld deliveries %ld->%ld "
                 "retry plans %ld->%ld decisions %ld->%ld acks %ld->%ld "
                 "events %ld->%ld",
                 what, b->plans, a.plans, b->deliveries, a.deliveries,
                 b->retry_plans, a.retry_plans, b->decisions, a.decisions,
                 b->acks, a.acks, b->events, a.events);
}

/* Checks an error response: status, JSON body {detail, code, request_id}
 * with request_id == the X-Request-Id header; code and detail compared
 * exactly unless NULL. */
static void
e2e_assert_error(const cv_http_response *r, long status, const char *code,
                 const char *detail)
{
    json_t *j = r->json;

    if (r->status != status)
        fail_msg("expected %ld, got %ld: %s", status, r->status,
                 r->body != NULL ? r->body : "");
    if (strncmp(r->content_type, "application/json", 16) != 0)
        fail_msg("error Content-Type is \"%s\"", r->content_type);
    if (!json_is_object(j))
        fail_msg("error body is not a JSON object: %s", r->body);
    if (!json_is_string(json_object_get(j, "detail")) ||
        e2e_str(j, "detail")[0] == '\0')
        fail_msg("error body without detail: %s", r->body);
    e2e_assert_str(j, "request_id", r->request_id);
    if (code != NULL)
        e2e_assert_str(j, "code", code);
    if (detail != NULL && strcmp(e2e_str(j, "detail"), detail) != 0)
        fail_msg("detail is \"%s\", expected \"%s\"", e2e_str(j, "detail"),
                 detail);
}

/* Sends a POST that must be rejected with status/code/detail and must not
 * store anything. */
static void
e2e_reject(const char *path, const char *body, long status, const char *code,
           const char *detail)
{
    cv_http_response r;
    e2e_counts before;
    char what[256];

    e2e_counts_get(&before);
    e2e_do("POST", path, NULL, body, NULL, &r);
    e2e_assert_error(&r, status, code, detail);
    cv_http_response_free(&r);
    snprintf(what, sizeof(what), "rejected POST %.200s", path);
    e2e_counts_unchanged(&before, what);
}

static void
e2e_reject_400(const char *path, const char *body, const char *detail)
{
    e2e_reject(path, body, 400, "INVALID_ARGUMENT", detail);
}

static long
e2e_count(const char *sql, const char *param)
{
    long n = cv_test_db_scalar(sql, param);

    if (n < 0)
        fail_msg("query failed: %s", sql);
    return n;
}

/* Records a plan routing to slack (critical) and jira, plus `more` extra
 * routes given as JSON objects (may be NULL); returns its plan_id (caller
 * frees). */
static char *
e2e_record_plan(const char *more)
{
    cv_http_response r;
    char body[1024];
    char *id;

    snprintf(body, sizeof(body),
             "{\"escalation_routes\": [{\"provider\": \"slack\", "
             "\"severity\": \"critical\"}, {\"provider\": \"jira\"}%s%s]}",
             more != NULL ? ", " : "", more != NULL ? more : "");
    e2e_post(E2E_PLAN_PATH, body, &r);
    if (r.status != 201)
        fail_msg("recording a plan: %ld %s", r.status, r.body);
    id = strdup(e2e_str(r.json, "plan.plan_id"));
    cv_http_response_free(&r);
    return id;
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
    e2e_post(e2e_delivery_path(plan_id), body, &r);
    if (r.status != 201)
        fail_msg("recording an attempt: %ld %s", r.status, r.body);
    id = strdup(e2e_str(r.json, "delivery.delivery_id"));
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
    e2e_post(E2E_RETRY_PATH, body, r);
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

        if (strcmp(e2e_str(d, "provider"), provider) == 0)
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

/* ---- setup ------------------------------------------------------------ */

static int
e2e_setup(void **state)
{
    (void)state;
    return cv_test_stack_start(&e2e_stack, CV_STACK_ALL);
}

static int
e2e_teardown(void **state)
{
    int rv;

    (void)state;
    rv = cv_test_stack_stop(&e2e_stack);
    if (rv != 0)
        fprintf(stderr, "the stack did not stop cleanly\n");
    return rv;
}

/* ---- delivery attempts (SPEC 4.2) ------------------------------------- */

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
    e2e_do("POST", e2e_delivery_path(pid), NULL, body, rid_hdr, &r);
    if (r.status != 201)
        fail_msg("expected 201, got %ld: %s", r.status, r.body);
    assert_true(strncmp(r.content_type, "application/json", 16) == 0);
    d = json_object_get(r.json, "delivery");
    assert_non_null(d);
    e2e_assert_null(r.json, "actor");
    id = e2e_str(d, "delivery_id");
    e2e_assert_id(id, "rcd-");
    e2e_assert_str(d, "schema", E2E_DELIVERY_SCHEMA);
    e2e_assert_str(d, "plan_id", pid);
    e2e_assert_str(d, "provider", "slack");
    e2e_assert_bool(d, "delivery_success", 0);
    assert_int_equal(json_array_size(json_object_get(d, "status_codes")), 1);
    e2e_assert_int(d, "status_codes[0]", 503);
    e2e_assert_int(d, "attempt_count", 2);
    e2e_assert_str(d, "started_at", "2025-11-27T05:29:23.500000Z");
    e2e_assert_str(d, "completed_at", "2025-11-27T05:30:00.000000Z");
    e2e_assert_time(e2e_str(d, "created_at"));
    e2e_assert_str(d, "connector_delivery_source", E2E_SOURCE);
    e2e_assert_str(d, "metadata_kind", "release-connector-delivery");
    e2e_assert_str(d, "error",
                   "POST https://hooks.example.com/x?REDACTED failed");
    e2e_assert_int(d, "redaction_count", 1);
    assert_null(json_object_get(d, "extra"));
    assert_null(strstr(r.body, "s3cr3t"));

    assert_int_equal(e2e_count("SELECT count(*) FROM delivery_attempts WHERE "
                               "delivery_id = $1 AND NOT success AND "
                               "status_code = 503 AND attempt_at = "
                               "'2025-11-27T05:30:00Z'",
                               id),
                     1);
    assert_int_equal(e2e_count("SELECT count(*) FROM evidence_events WHERE "
                               "record_id = $1 AND kind = "
                               "'connector_delivery' AND provider = 'slack' "
                               "AND request_id = 'e2e-retry-delivery' AND "
                               "record->>'error' NOT LIKE '%s3cr3t%'",
                               id),
                     1);
    assert_int_equal(e2e_count("SELECT count(*) FROM delivery_attempts WHERE "
                               "plan_id = $1",
                               "ignored"),
                     0);
    cv_http_response_free(&r);

    /* The minimum: provider and success; the rest defaults or is null. */
    e2e_post(e2e_delivery_path(pid),
             "{\"provider\": \"jira\", \"success\": true, \"status_code\": "
             "null, \"error\": null}",
             &r);
    if (r.status != 201)
        fail_msg("expected 201, got %ld: %s", r.status, r.body);
    d = json_object_get(r.json, "delivery");
    e2e_assert_bool(d, "delivery_success", 1);
    assert_true(json_is_array(json_object_get(d, "status_codes")));
    assert_int_equal(json_array_size(json_object_get(d, "status_codes")), 0);
    e2e_assert_int(d, "attempt_count", 1);
    e2e_assert_null(d, "started_at");
    e2e_assert_null(d, "completed_at");
    e2e_assert_null(d, "error");
    e2e_assert_int(d, "redaction_count", 0);
    cv_http_response_free(&r);

    /* Boundaries that pass: status 0 (unreachable) and 599, count 1000. */
    e2e_post(e2e_delivery_path(pid),
             "{\"provider\": \"jira\", \"success\": false, \"status_code\": "
             "0, \"attempt_count\": 1000}",
             &r);
    assert_int_equal(r.status, 201);
    e2e_assert_int(r.json, "delivery.status_codes[0]", 0);
    cv_http_response_free(&r);
    e2e_post(e2e_delivery_path(pid),
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
    e2e_reject_400(path, "{}", "provider is required");
    e2e_reject_400(path, "", "provider is required");
    e2e_reject_400(path, "{\"provider\": \"  \", \"success\": true}",
                   "provider is required");
    e2e_reject_400(path, "{\"provider\": null, \"success\": true}",
                   "provider is required");
    e2e_reject_400(path, "{\"provider\": \"sl ack\", \"success\": true}",
                   "provider must use only a-z, 0-9, '.', '_' and '-'");
    {
        char b[400];

        memset(longid, 'p', 65);
        longid[65] = '\0';
        snprintf(b, sizeof(b), "{\"provider\": \"%s\", \"success\": true}",
                 longid);
        e2e_reject_400(path, b, "provider must be at most 64 characters");
    }
    e2e_reject_400(path, "{\"provider\": 5, \"success\": true}",
                   "provider must be a string");
    e2e_reject_400(path, "{\"provider\": \"slack\"}", "success is required");
    e2e_reject_400(path, "{\"provider\": \"slack\", \"success\": null}",
                   "success is required");
    e2e_reject_400(path, "{\"provider\": \"slack\", \"success\": \"yes\"}",
                   "success must be a boolean");
    e2e_reject_400(path, "{\"provider\": \"slack\", \"success\": 1}",
                   "success must be a boolean");
    e2e_reject_400(path,
                   "{\"provider\": \"slack\", \"success\": false, "
                   "\"status_code\": 600}",
                   "status_code must be between 0 and 599");
    e2e_reject_400(path,
                   "{\"provider\": \"slack\", \"success\": false, "
                   "\"status_code\": -1}",
                   "status_code must be between 0 and 599");
    e2e_reject_400(path,
                   "{\"provider\": \"slack\", \"success\": false, "
                   "\"status_code\": \"five hundred\"}",
                   "status_code must be an integer");
    e2e_reject_400(path,
                   "{\"provider\": \"slack\", \"success\": false, "
                   "\"status_code\": 500.5}",
                   "status_code must be an integer");
    e2e_reject_400(path,
                   "{\"provider\": \"slack\", \"success\": false, "
                   "\"attempt_count\": 0}",
                   "attempt_count must be between 1 and 1000");
    e2e_reject_400(path,
                   "{\"provider\": \"slack\", \"success\": false, "
                   "\"attempt_count\": 1001}",
                   "attempt_count must be between 1 and 1000");
    e2e_reject_400(path,
                   "{\"provider\": \"slack\", \"success\": false, "
                   "\"attempt_count\": \"many\"}",
                   "attempt_count must be an integer");
    e2e_reject_400(path,
                   "{\"provider\": \"slack\", \"success\": false, "
                   "\"started_at\": \"yesterday\"}",
                   "started_at must be an RFC 3339 timestamp");
    e2e_reject_400(path,
                   "{\"provider\": \"slack\", \"success\": false, "
                   "\"started_at\": \"2025-11-27 05:30:00\"}",
                   "started_at must be an RFC 3339 timestamp");
    e2e_reject_400(path,
                   "{\"provider\": \"slack\", \"success\": false, "
                   "\"started_at\": 1764221363}",
                   "started_at must be a string");
    e2e_reject_400(path,
                   "{\"provider\": \"slack\", \"success\": false, "
                   "\"completed_at\": \"2025-02-30T00:00:00Z\"}",
                   "completed_at must be an RFC 3339 timestamp");
    e2e_reject_400(path,
                   "{\"provider\": \"slack\", \"success\": false, "
                   "\"started_at\": \"2025-11-27T05:30:00Z\", "
                   "\"completed_at\": \"2025-11-27T07:29:59+02:00\"}",
                   "completed_at must not be before started_at");
    body = malloc(700);
    assert_non_null(body);
    {
        int o = sprintf(body, "{\"provider\": \"slack\", \"success\": false, "
                              "\"error\": \"");

        memset(body + o, 'e', 501);
        strcpy(body + o + 501, "\"}");
    }
    e2e_reject_400(path, body, "error must be at most 500 characters");
    free(body);

    /* A provider the plan does not route names the plan's providers. */
    snprintf(msg, sizeof(msg),
             "provider teams is not routed by recovery escalation plan %s; "
             "the plan's providers are jira, slack",
             pid);
    e2e_reject_400(path, "{\"provider\": \"Teams\", \"success\": false}", msg);

    /* Unknown plans, also ids too long to exist. */
    e2e_reject(e2e_delivery_path("gordackrecoveryesc-0000000000000000"),
               "{\"provider\": \"slack\", \"success\": false}", 404,
               "NOT_FOUND", E2E_NOT_FOUND);
    memset(longid, 'a', 200);
    longid[200] = '\0';
    e2e_reject(e2e_delivery_path(longid),
               "{\"provider\": \"slack\", \"success\": false}", 404,
               "NOT_FOUND", E2E_NOT_FOUND);
    e2e_reject(e2e_delivery_path("x%27%20OR%20%271%27%3D%271"),
               "{\"provider\": \"slack\", \"success\": false}", 404,
               "NOT_FOUND", E2E_NOT_FOUND);
    free(pid);
}

/* ---- retry plans (SPEC 5.2) ------------------------------------------- */

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
    e2e_post(ack_path,
             "{\"provider\": \"servicenow\", \"acknowledged_by\": \"bob\", "
             "\"acknowledgement_state\": \"dismissed\"}",
             &r);
    assert_int_equal(r.status, 201);
    cv_http_response_free(&r);

    e2e_retry_plan(pid, NULL, &r);
    assert_true(strncmp(r.content_type, "application/json", 16) == 0);
    plan = json_object_get(r.json, "plan");
    meta = json_object_get(r.json, "metadata");
    assert_non_null(plan);
    assert_non_null(meta);
    e2e_assert_null(r.json, "actor");
    rpid = e2e_str(plan, "retry_plan_id");
    e2e_assert_id(rpid, "gordackrecoveryescretry-");
    e2e_assert_str(plan, "schema", E2E_RETRY_SCHEMA);
    e2e_assert_str(plan, "product", "CAVRA");
    e2e_assert_time(e2e_str(plan, "generated_at"));
    e2e_assert_str(plan, "generated_by", "console");
    e2e_assert_str(plan, "plan_id", pid);
    e2e_assert_str(plan, "alert_level", "critical");
    e2e_assert_int(plan, "decision_count", 5);
    e2e_assert_int(plan, "retryable_count", 2);
    e2e_assert_int(plan, "waiting_count", 1);
    e2e_assert_int(plan, "suppressed_count", 2);
    e2e_assert_int(plan, "max_retry_attempts", 3);
    e2e_assert_num(plan, "base_retry_delay_minutes", 15);
    e2e_assert_bool(plan, "allow_immediate_retry", 0);
    e2e_assert_num(plan, "backoff_multiplier", 2);
    assert_true(json_array_size(json_object_get(plan, "controls")) > 0);
    e2e_str(plan, "controls[0]");
    /* Sorted by plan_id, then provider. */
    assert_int_equal(json_array_size(json_object_get(plan, "retry_decisions")),
                     5);
    e2e_assert_str(plan, "retry_decisions[0].provider", "jira");
    e2e_assert_str(plan, "retry_decisions[1].provider", "servicenow");
    e2e_assert_str(plan, "retry_decisions[2].provider", "slack");
    e2e_assert_str(plan, "retry_decisions[3].provider", "teams");
    e2e_assert_str(plan, "retry_decisions[4].provider", "webhook");
    assert_null(e2e_decision(plan, "pagerduty"));

    d = e2e_decision_must(plan, "slack");
    e2e_assert_str(d, "plan_id", pid);
    e2e_assert_str(d, "action", "retry");
    e2e_assert_str(d, "reason", E2E_ELIGIBLE);
    e2e_assert_int(d, "retry_count", 2);
    e2e_assert_int(d, "max_retry_attempts", 3);
    e2e_assert_num(d, "retry_delay_minutes", 30);
    e2e_assert_str(d, "latest_delivery_id", slack_latest);
    e2e_assert_time(e2e_str(d, "latest_delivery_at"));
    e2e_assert_time(e2e_str(d, "next_retry_at"));
    {
        int64_t latest, next;

        assert_int_equal(
            cv_time_parse(e2e_str(d, "latest_delivery_at"), &latest), 0);
        assert_int_equal(cv_time_parse(e2e_str(d, "next_retry_at"), &next), 0);
        assert_true(next - latest == 30 * 60000000LL);
    }
    assert_int_equal(json_array_size(json_object_get(d, "failed_status_codes")),
                     2);
    e2e_assert_int(d, "failed_status_codes[0]", 502);
    e2e_assert_int(d, "failed_status_codes[1]", 503);
    e2e_assert_null(d, "acknowledgement_state");

    d = e2e_decision_must(plan, "jira");
    e2e_assert_str(d, "action", "wait");
    e2e_assert_str(d, "reason", "retry delay 15 minutes has not elapsed");
    e2e_assert_int(d, "retry_count", 1);
    e2e_assert_int(d, "failed_status_codes[0]", 429);
    d = e2e_decision_must(plan, "teams");
    e2e_assert_str(d, "action", "suppress");
    e2e_assert_str(d, "reason", "status 404 is not retryable");
    d = e2e_decision_must(plan, "webhook");
    e2e_assert_str(d, "action", "retry");
    e2e_assert_int(d, "retry_count", 1);
    assert_int_equal(json_array_size(json_object_get(d, "failed_status_codes")),
                     1);
    e2e_assert_int(d, "failed_status_codes[0]", 408);
    d = e2e_decision_must(plan, "servicenow");
    e2e_assert_str(d, "action", "suppress");
    e2e_assert_str(d, "reason",
                   "acknowledgement state dismissed closes the escalation");
    e2e_assert_str(d, "acknowledgement_state", "dismissed");

    /* Metadata: the full plan nested. */
    e2e_assert_str(meta, "metadata_kind", E2E_RETRY_KIND);
    e2e_assert_str(meta, "session_id", rpid);
    e2e_assert_str(meta, "retry_plan_id", rpid);
    e2e_assert_str(meta, "created_at", e2e_str(plan, "generated_at"));
    e2e_assert_str(meta, "signer", "cavra-recovery/retry-planning-service");
    e2e_assert_str(meta, "alert_level", "critical");
    e2e_assert_int(meta, "decision_count", 5);
    e2e_assert_int(meta, "retryable_count", 2);
    assert_true(json_equal(
        json_object_get(meta, "recovery_escalation_delivery_retry_plan"),
        plan));

    /* Stored: the plan, its decisions, one evidence event. */
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM retry_plans WHERE retry_plan_id = $1 AND "
             "plan_id = '%s' AND retryable_count = 2 AND record = "
             "metadata->'recovery_escalation_delivery_retry_plan'",
             pid);
    assert_int_equal(e2e_count(sql, rpid), 1);
    assert_int_equal(e2e_count("SELECT count(*) FROM retry_decisions WHERE "
                               "retry_plan_id = $1",
                               rpid),
                     5);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM evidence_events WHERE record_id = $1 AND "
             "kind = 'recovery_escalation_retry_plan' AND plan_id = '%s'",
             pid);
    assert_int_equal(e2e_count(sql, rpid), 1);
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
    e2e_assert_int(plan, "max_retry_attempts", 7);
    e2e_assert_num(plan, "base_retry_delay_minutes", 1.5);
    e2e_assert_num(plan, "backoff_multiplier", 3);
    /* 1.5 * 3 = 4.5 minutes after the failure 4 minutes ago: wait. */
    e2e_assert_str(plan, "retry_decisions[0].action", "wait");
    e2e_assert_str(plan, "retry_decisions[0].reason",
                   "retry delay 4.5 minutes has not elapsed");
    e2e_assert_num(plan, "retry_decisions[0].retry_delay_minutes", 4.5);
    e2e_assert_int(plan, "retry_decisions[0].max_retry_attempts", 7);
    e2e_assert_str(plan, "alert_level", "warning");
    cv_http_response_free(&r);

    /* Immediate retry: delay 0 by default, so retry now. */
    e2e_retry_plan(pid, "{\"allow_immediate_retry\": true}", &r);
    plan = json_object_get(r.json, "plan");
    e2e_assert_bool(plan, "allow_immediate_retry", 1);
    e2e_assert_num(plan, "base_retry_delay_minutes", 0);
    e2e_assert_str(plan, "retry_decisions[0].action", "retry");
    e2e_assert_str(plan, "retry_decisions[0].reason", E2E_ELIGIBLE);
    e2e_assert_str(plan, "retry_decisions[0].next_retry_at",
                   e2e_str(plan, "retry_decisions[0].latest_delivery_at"));
    cv_http_response_free(&r);

    /* The cap: 2 failures with max 2. */
    e2e_retry_plan(pid, "{\"max_retry_attempts\": 2}", &r);
    e2e_assert_str(r.json, "plan.retry_decisions[0].action", "suppress");
    e2e_assert_str(r.json, "plan.retry_decisions[0].reason",
                   "maximum retry attempts 2 reached");
    e2e_assert_str(r.json, "plan.alert_level", "healthy");
    cv_http_response_free(&r);

    /* generated_by given (trimmed) and an empty policy object. */
    {
        char body[256];

        snprintf(body, sizeof(body),
                 "{\"generated_by\": \" release-bot \", \"plan_id\": \"%s\", "
                 "\"retry_policy\": {}}",
                 pid);
        e2e_post(E2E_RETRY_PATH, body, &r);
        assert_int_equal(r.status, 201);
        e2e_assert_str(r.json, "plan.generated_by", "release-bot");
        e2e_assert_int(r.json, "plan.max_retry_attempts", 3);
        assert_int_equal(e2e_count("SELECT count(*) FROM evidence_events "
                                   "WHERE record_id = $1 AND actor = "
                                   "'release-bot'",
                                   e2e_str(r.json, "plan.retry_plan_id")),
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
        e2e_reject_400(E2E_RETRY_PATH, body, bad[i].detail);
    }
    /* generated_by. */
    snprintf(body, sizeof(body), "{\"plan_id\": \"%s\", \"generated_by\": 3}",
             pid);
    e2e_reject_400(E2E_RETRY_PATH, body, "generated_by must be a string");
    {
        char *big = malloc(400);
        int o;

        assert_non_null(big);
        o = sprintf(big, "{\"plan_id\": \"%s\", \"generated_by\": \"", pid);
        memset(big + o, 'g', 129);
        strcpy(big + o + 129, "\"}");
        e2e_reject_400(E2E_RETRY_PATH, big,
                       "generated_by must be at most 128 characters");
        free(big);
    }
    /* plan_id: unknown or impossible plans are 404; not a string is 400. */
    e2e_reject(E2E_RETRY_PATH,
               "{\"plan_id\": \"gordackrecoveryesc-0000000000000000\"}", 404,
               "NOT_FOUND", E2E_NOT_FOUND);
    memset(longid, 'z', 200);
    longid[200] = '\0';
    snprintf(body, sizeof(body), "{\"plan_id\": \"%s\"}", longid);
    e2e_reject(E2E_RETRY_PATH, body, 404, "NOT_FOUND", E2E_NOT_FOUND);
    e2e_reject_400(E2E_RETRY_PATH, "{\"plan_id\": 12}",
                   "plan_id must be a string");
    e2e_reject_400(E2E_RETRY_PATH, "[]", "request body must be a JSON object");
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

    (void)state;
    e2e_attempt0(pid, "jira", false, 503, 1);
    e2e_post(E2E_RETRY_PATH, "{}", &r);
    if (r.status != 201)
        fail_msg("expected 201, got %ld: %s", r.status, r.body);
    e2e_assert_null(r.json, "plan.plan_id");
    list = e2e_get(r.json, "plan.retry_decisions");
    for (size_t i = 0; i < json_array_size(list); i++)
        if (strcmp(e2e_str(json_array_get(list, i), "plan_id"), pid) == 0) {
            mine++;
            e2e_assert_str(json_array_get(list, i), "provider", "jira");
            e2e_assert_str(json_array_get(list, i), "action", "wait");
        }
    assert_int_equal(mine, 1);
    e2e_assert_int(r.json, "plan.decision_count",
                   (long long)json_array_size(list));
    assert_int_equal(e2e_count("SELECT count(*) FROM evidence_events WHERE "
                               "record_id = $1 AND plan_id IS NULL",
                               e2e_str(r.json, "plan.retry_plan_id")),
                     1);
    cv_http_response_free(&r);
    /* A body with no fields at all is the same request. */
    e2e_post(E2E_RETRY_PATH, "", &r);
    assert_int_equal(r.status, 201);
    cv_http_response_free(&r);
    free(pid);
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
    e2e_counts before;

    (void)state;
    snprintf(path, sizeof(path), "%s", e2e_delivery_path(pid));
    e2e_counts_get(&before);
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        cv_http_response r;

        e2e_do("POST", E2E_RETRY_PATH, NULL, bodies[i], NULL, &r);
        /* null fields are "not given": that one is a valid request. */
        if (i == 2) {
            assert_int_equal(r.status, 201);
            cv_http_response_free(&r);
            e2e_counts_get(&before);
            continue;
        }
        if (r.status < 400 || r.status >= 500)
            fail_msg("retry body #%zu: %ld %s", i, r.status, r.body);
        e2e_assert_error(&r, r.status, NULL, NULL);
        cv_http_response_free(&r);
    }
    for (size_t i = 0; i < sizeof(delivery_bodies) / sizeof(delivery_bodies[0]);
         i++) {
        cv_http_response r;

        e2e_do("POST", path, NULL, delivery_bodies[i], NULL, &r);
        if (r.status < 400 || r.status >= 500)
            fail_msg("delivery body #%zu: %ld %s", i, r.status, r.body);
        e2e_assert_error(&r, r.status, NULL, NULL);
        cv_http_response_free(&r);
    }
    e2e_counts_unchanged(&before, "bad input");
    /* Wrong methods and media types. */
    {
        cv_http_response r;

        e2e_do("GET", E2E_RETRY_PATH, NULL, NULL, NULL, &r);
        assert_true(r.status == 404 || r.status == 405);
        cv_http_response_free(&r);
        e2e_do("GET", path, NULL, NULL, NULL, &r);
        e2e_assert_error(&r, 405, NULL, NULL);
        assert_non_null(strstr(r.allow, "POST"));
        cv_http_response_free(&r);
        e2e_do("POST", path, "text/plain",
               "{\"provider\": \"slack\", \"success\": false}", NULL, &r);
        assert_int_equal(r.status, 415);
        cv_http_response_free(&r);
    }
    e2e_counts_unchanged(&before, "bad input");
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
    e2e_do("POST", e2e_delivery_path(pid), NULL,
           "{\"provider\": \"slack\", \"success\": false, \"status_code\": "
           "503}",
           hdrs, &r);
    assert_int_equal(r.status, 201);
    assert_string_equal(r.request_id, rid);
    cv_http_response_free(&r);
    snprintf(body, sizeof(body), "{\"plan_id\": \"%s\"}", pid);
    e2e_do("POST", E2E_RETRY_PATH, NULL, body, hdrs, &r);
    assert_int_equal(r.status, 201);
    cv_http_response_free(&r);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM evidence_events WHERE plan_id = $1 AND "
             "request_id = '%s' AND kind IN ('connector_delivery', "
             "'recovery_escalation_retry_plan')",
             rid);
    assert_int_equal(e2e_count(sql, pid), 2);
    /* An error answer carries it too. */
    e2e_do("POST", E2E_RETRY_PATH, NULL,
           "{\"retry_policy\": {\"max_retries\": 0}}", hdrs, &r);
    e2e_assert_error(&r, 400, "INVALID_ARGUMENT",
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
        cmocka_unit_test(test_retry_http_bad_input_never_5xx),
        cmocka_unit_test(test_retry_http_request_id),
    };

    return cmocka_run_group_tests_name("retry_http", tests, e2e_setup,
                                       e2e_teardown);
}
