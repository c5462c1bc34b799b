/*
 * gw_routes_test.c -- unit tests of the gateway's route table and path
 * matcher (gateway/gw_routes.c): the table is exactly the REST view of the
 * method registry (lib/cv_method.h) and the documented surface (docs/api.md),
 * every route matches its own path, literal segments
 * win over `{plan_id}`, `{plan_id}` segments are percent-decoded and
 * malformed ones rejected, and a known path under another method yields
 * the exact Allow text of a 405 (docs/api.md).
 *
 * Run: ctest -R unit.gw_routes, or the binary alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_method.h"
#include "gw_auth.h"
#include "gw_routes.h"

#define P                                                                      \
    "/runtime/go-pilot/rollback-drill-notifications/acknowledgements/"         \
    "audit-delivery"
#define ROUTES_TEST_PLAN "gordackrecoveryesc-0123456789abcdef"

/* The outcome of one gw_route_match call. */
typedef struct routes_test_match {
    const gw_route *route;
    gw_path_param params[GW_MAX_PATH_PARAMS];
    size_t n_params;
    bool path_known;
    char allow[64];
} routes_test_match;

static const gw_route *
routes_test_run(const char *method, const char *path, routes_test_match *m)
{
    memset(m, 0x5a, sizeof(*m)); /* garbage: the matcher must set outputs */
    m->n_params = 0;
    m->route = gw_route_match(method, path, m->params, &m->n_params,
                              &m->path_known, m->allow, sizeof(m->allow));
    return m->route;
}

/* The index in gw_routes of the route (method, path) reaches; fails the
 * test when it reaches none. */
static size_t
gw_route_match_index(const char *method, const char *path)
{
    routes_test_match m;

    if (routes_test_run(method, path, &m) == NULL)
        fail_msg("%s %s matched nothing", method, path);
    return (size_t)(m.route - gw_routes);
}

/* Asserts (method, path) matches no route and no path: a 404. */
static void
routes_test_unknown(const char *method, const char *path)
{
    routes_test_match m;

    if (routes_test_run(method, path, &m) != NULL)
        fail_msg("%s %s matched %s", method, path, m.route->rpc);
    if (m.path_known)
        fail_msg("%s %s: path_known set (allow \"%s\")", method, path, m.allow);
    if (m.allow[0] != '\0')
        fail_msg("%s %s: allow is \"%s\", expected empty", method, path,
                 m.allow);
}

/* Asserts (method, path) is a 405 whose Allow is exactly allow. */
static void
routes_test_405(const char *method, const char *path, const char *allow)
{
    routes_test_match m;

    if (routes_test_run(method, path, &m) != NULL)
        fail_msg("%s %s matched %s, expected a 405", method, path,
                 m.route->rpc);
    if (!m.path_known)
        fail_msg("%s %s: path not known, expected a 405", method, path);
    if (strcmp(m.allow, allow) != 0)
        fail_msg("%s %s: Allow \"%s\", expected \"%s\"", method, path, m.allow,
                 allow);
}

/* Asserts (method, path) reaches the route of rpc with plan_id == want
 * (want NULL: no parameters). */
static void
routes_test_hit(const char *method, const char *path, const char *rpc,
                const char *want)
{
    routes_test_match m;

    if (routes_test_run(method, path, &m) == NULL)
        fail_msg("%s %s matched nothing (path_known %d)", method, path,
                 (int)m.path_known);
    if (strcmp(m.route->rpc, rpc) != 0)
        fail_msg("%s %s matched %s, expected %s", method, path, m.route->rpc,
                 rpc);
    assert_true(m.path_known);
    if (want == NULL) {
        assert_int_equal(m.n_params, 0);
        return;
    }
    assert_int_equal(m.n_params, 1);
    assert_string_equal(m.params[0].name, "plan_id");
    if (strcmp(m.params[0].value, want) != 0)
        fail_msg("%s %s: plan_id \"%s\", expected \"%s\"", method, path,
                 m.params[0].value, want);
}

/* The path of pattern with every `{name}` replaced by value. */
static void
routes_test_fill(const char *pattern, const char *value, char *out,
                 size_t outlen)
{
    size_t o = 0;

    for (const char *p = pattern; *p != '\0';) {
        if (*p == '{') {
            const char *close = strchr(p, '}');

            assert_non_null(close);
            o += (size_t)snprintf(out + o, outlen - o, "%s", value);
            p = close + 1;
        } else {
            out[o++] = *p++;
        }
        assert_true(o < outlen);
    }
    out[o] = '\0';
}

static size_t
routes_test_n_params(const char *pattern)
{
    size_t n = 0;

    for (const char *p = pattern; *p != '\0'; p++)
        if (*p == '{')
            n++;
    return n;
}

/* The table is the documented REST surface: method, path, RPC, success
 * status and the docs/operator-guide.md roles of each route. */
static void
test_gw_routes_table_documented(void **state)
{
    static const struct {
        const char *method, *pattern, *rpc;
        int status;
        unsigned int roles;
    } want[] = {
        {"POST", P "/recovery-escalation-plan", "ack.RecordPlan", 201,
         CV_ROLE_PLATFORM_OWNER | CV_ROLE_SERVICE},
        {"POST", P "/recovery-escalations/{plan_id}/acknowledgements",
         "ack.Acknowledge", 201, CV_ROLE_RELEASE_MANAGER},
        {"GET", P "/recovery-escalations/{plan_id}", "ack.GetPlan", 200,
         CV_ROLE_ANY},
        {"POST", P "/recovery-escalations/{plan_id}/delivery-attempts",
         "retry.RecordDelivery", 201, CV_ROLE_PLATFORM_OWNER | CV_ROLE_SERVICE},
        {"POST", P "/recovery-escalations/retry-plan", "retry.PlanRetries", 201,
         CV_ROLE_PLATFORM_OWNER},
        {"POST", P "/recovery-executive-report/schedule-run",
         "report.ScheduleRun", 201, CV_ROLE_EXECUTIVE},
        {"GET", P "/recovery-executive-report", "report.LatestReport", 200,
         CV_ROLE_ANY},
        {"GET", P "/recovery-executive-report/runs", "report.ListRuns", 200,
         CV_ROLE_ANY},
        {"GET", P "/recovery-escalations/{plan_id}/trace", "report.Trace", 200,
         CV_ROLE_ANY},
        {"GET", "/runtime/go-pilot/rollback-drill-notifications/dashboard",
         "report.Dashboard", 200, CV_ROLE_ANY},
        {"GET", "/runtime/go-pilot/rollback-drill-notifications",
         "report.ListEvidence", 200, CV_ROLE_ANY},
        {"GET", "/runtime/evidence/verify", "report.VerifyEvidence", 200,
         CV_ROLE_AUDITOR},
        {"GET", "/runtime/evidence/checkpoint", "report.EvidenceCheckpoint",
         200, CV_ROLE_ANY},
        {"GET", "/runtime/evidence/public-key", "report.EvidencePublicKey", 200,
         CV_ROLE_ANY},
        {"GET", "/runtime/evidence/proof/inclusion", "report.InclusionProof",
         200, CV_ROLE_ANY},
        {"GET", "/runtime/evidence/proof/consistency",
         "report.ConsistencyProof", 200, CV_ROLE_ANY},
        {"GET", "/runtime/evidence/tile/{path*}", "report.EvidenceTile", 200,
         CV_ROLE_ANY},
    };
    const size_t n = sizeof(want) / sizeof(want[0]);

    (void)state;
    assert_int_equal(gw_route_count, n);
    for (size_t i = 0; i < n; i++) {
        const gw_route *r = &gw_routes[i];

        assert_string_equal(r->http_method, want[i].method);
        assert_string_equal(r->pattern, want[i].pattern);
        assert_string_equal(r->rpc, want[i].rpc);
        assert_int_equal(r->status, want[i].status);
        if (r->roles != want[i].roles)
            fail_msg("%s: roles 0x%x, expected 0x%x", r->rpc, r->roles,
                     want[i].roles);
        assert_non_null(r->request);
        assert_non_null(r->reply);
        assert_non_null(r->summary);
        assert_true(r->summary[0] != '\0');
        assert_true(r->service >= GW_SVC_ACK && r->service < GW_SVC_COUNT);
        /* A view of the registry entry of the same name. */
        assert_ptr_equal(r->method, cv_method_find(want[i].rpc));
        /* The service is the RPC's prefix. */
        {
            static const char *const svc[] = {"ack.", "retry.", "report."};

            assert_true(
                strncmp(r->rpc, svc[r->service], strlen(svc[r->service])) == 0);
        }
    }
}

/* The table is derived from the registry: one route per entry with a REST
 * binding, in registry order, each field copied (status 201 exactly for
 * entries that store a record); RPC-only entries are not routes. */
static void
test_gw_routes_table_is_the_registry(void **state)
{
    size_t n = 0, count = 0;
    const gw_route *table = gw_route_table(&count);

    (void)state;
    assert_ptr_equal(table, gw_routes);
    assert_int_equal(count, gw_route_count);
    assert_true(count > 0 && count <= GW_ROUTE_MAX);
    for (size_t i = 0; i < cv_method_count; i++) {
        const cv_method_info *m = &cv_methods[i];
        const gw_route *r;

        if (m->http_method == NULL)
            continue;
        assert_true(n < count);
        r = &table[n++];
        assert_ptr_equal(r->method, m);
        assert_ptr_equal(r->rpc, m->name);
        assert_ptr_equal(r->http_method, m->http_method);
        assert_ptr_equal(r->pattern, m->path);
        assert_ptr_equal(r->request, m->request);
        assert_ptr_equal(r->reply, m->reply);
        assert_int_equal(r->service, m->service);
        assert_int_equal(r->roles, m->roles);
        assert_int_equal(r->timeout_ms, m->timeout_ms);
        assert_int_equal(r->status, m->stores_record ? 201 : 200);
        /* The registry's own invariants the gateway relies on. */
        assert_true(strcmp(m->http_method, "GET") == 0 ||
                    strcmp(m->http_method, "POST") == 0);
        if (m->keyed || m->stores_record)
            assert_string_equal(m->http_method, "POST");
        assert_ptr_equal(cv_method_find(m->name), m);
        {
            const char *svc = cv_service_name(m->service);

            assert_true(strncmp(m->name, svc, strlen(svc)) == 0 &&
                        m->name[strlen(svc)] == '.');
        }
    }
    assert_int_equal(n, count);
    /* Only the stored-record routes answer 201. */
    for (size_t i = 0; i < count; i++)
        assert_int_equal(table[i].status == 201,
                         table[i].method->stores_record);
    /* The timeout the gateway uses comes from the registry. */
    assert_int_equal(
        table[gw_route_match_index("GET", "/runtime/evidence/verify")]
            .timeout_ms,
        300000);
}

/* Every route matches its own pattern, filled with a sample plan id, and
 * gets exactly that plan id as its one parameter. */
static void
test_gw_routes_every_route_matches_itself(void **state)
{
    (void)state;
    for (size_t i = 0; i < gw_route_count; i++) {
        const gw_route *r = &gw_routes[i];
        routes_test_match m;
        char path[512];

        routes_test_fill(r->pattern, ROUTES_TEST_PLAN, path, sizeof(path));
        if (routes_test_run(r->http_method, path, &m) != &gw_routes[i])
            fail_msg("%s %s matched %s, expected %s", r->http_method, path,
                     m.route != NULL ? m.route->rpc : "nothing", r->rpc);
        assert_true(m.path_known);
        assert_int_equal(m.n_params, routes_test_n_params(r->pattern));
        for (size_t k = 0; k < m.n_params; k++) {
            /* The tile route's one parameter is the rest of the path. */
            assert_string_equal(
                m.params[k].name,
                strstr(r->pattern, "{path*}") != NULL ? "path" : "plan_id");
            assert_string_equal(m.params[k].value, ROUTES_TEST_PLAN);
        }
        /* The same path answers its own method in Allow. */
        assert_non_null(strstr(m.allow, r->http_method));
    }
}

static void
test_gw_routes_exact_paths(void **state)
{
    (void)state;
    routes_test_hit("POST", P "/recovery-escalation-plan", "ack.RecordPlan",
                    NULL);
    routes_test_hit("GET", P "/recovery-escalations/x", "ack.GetPlan", "x");
    routes_test_hit("GET", P "/recovery-escalations/x/trace", "report.Trace",
                    "x");
    routes_test_hit("POST", P "/recovery-escalations/x/acknowledgements",
                    "ack.Acknowledge", "x");
    routes_test_hit("POST", P "/recovery-escalations/x/delivery-attempts",
                    "retry.RecordDelivery", "x");
    routes_test_hit("POST", P "/recovery-escalations/retry-plan",
                    "retry.PlanRetries", NULL);
    routes_test_hit("GET",
                    "/runtime/go-pilot/rollback-drill-notifications/dashboard",
                    "report.Dashboard", NULL);
    routes_test_hit("GET", "/runtime/go-pilot/rollback-drill-notifications",
                    "report.ListEvidence", NULL);
}

/* A literal segment wins over a `{plan_id}` at the same place: the path
 * .../recovery-escalations/retry-plan is the retry-plan route's, never a
 * plan read, under any method; elsewhere "retry-plan" is just a plan id. */
static void
test_gw_routes_literal_segments_win(void **state)
{
    (void)state;
    routes_test_hit("POST", P "/recovery-escalations/retry-plan",
                    "retry.PlanRetries", NULL);
    /* Was a plan read of a plan named "retry-plan" (404): now a 405. */
    routes_test_405("GET", P "/recovery-escalations/retry-plan", "POST");
    routes_test_405("HEAD", P "/recovery-escalations/retry-plan", "POST");
    routes_test_405("PUT", P "/recovery-escalations/retry-plan", "POST");
    /* Compared decoded: an escaped literal is the same literal. */
    routes_test_hit("POST", P "/recovery-escalations/retry%2Dplan",
                    "retry.PlanRetries", NULL);
    routes_test_405("GET", P "/recovery-escalations/retry%2dplan", "POST");
    routes_test_hit("GET", P "/recovery%2Descalations/x", "ack.GetPlan", "x");
    /* Deeper or different paths do not have the literal: plan ids. */
    routes_test_hit("GET", P "/recovery-escalations/retry-plan/trace",
                    "report.Trace", "retry-plan");
    routes_test_hit("POST",
                    P "/recovery-escalations/retry-plan/acknowledgements",
                    "ack.Acknowledge", "retry-plan");
    routes_test_hit("GET", P "/recovery-escalations/retry-plans", "ack.GetPlan",
                    "retry-plans");
    routes_test_hit("GET", P "/recovery-escalations/retry-pla", "ack.GetPlan",
                    "retry-pla");
    routes_test_hit("GET", P "/recovery-escalations/Retry-Plan", "ack.GetPlan",
                    "Retry-Plan");
    /* And a plan id is still a plan id. */
    routes_test_hit("GET", P "/recovery-escalations/" ROUTES_TEST_PLAN,
                    "ack.GetPlan", ROUTES_TEST_PLAN);
}

/* For every pair of routes whose patterns can match one path, that path
 * (parameters filled with the other pattern's literal) resolves to the
 * pattern with the first literal segment, and Allow lists exactly the
 * methods of that pattern's routes. */
static void
test_gw_routes_resolution_is_by_pattern(void **state)
{
    (void)state;
    for (size_t i = 0; i < gw_route_count; i++) {
        const gw_route *r = &gw_routes[i];
        char path[512], allow[64] = "";
        routes_test_match m;

        routes_test_fill(r->pattern, ROUTES_TEST_PLAN, path, sizeof(path));
        /* The methods of r's pattern, in table order. */
        for (size_t j = 0; j < gw_route_count; j++) {
            size_t used = strlen(allow);

            if (strcmp(gw_routes[j].pattern, r->pattern) != 0 ||
                strstr(allow, gw_routes[j].http_method) != NULL)
                continue;
            snprintf(allow + used, sizeof(allow) - used, "%s%s",
                     used > 0 ? ", " : "", gw_routes[j].http_method);
        }
        routes_test_405("OPTIONS", path, allow);
        assert_ptr_equal(routes_test_run(r->http_method, path, &m), r);
        assert_string_equal(m.allow, allow);
    }
}

static void
test_gw_routes_params_percent_decoded(void **state)
{
    (void)state;
    routes_test_hit("GET", P "/recovery-escalations/gordackrecoveryesc%2D0123",
                    "ack.GetPlan", "gordackrecoveryesc-0123");
    routes_test_hit("GET", P "/recovery-escalations/a%2db/trace",
                    "report.Trace", "a-b");
    routes_test_hit("POST", P "/recovery-escalations/%41%42c/acknowledgements",
                    "ack.Acknowledge", "ABc");
    routes_test_hit("GET", P "/recovery-escalations/a%20b", "ack.GetPlan",
                    "a b");
    routes_test_hit("GET", P "/recovery-escalations/100%25", "ack.GetPlan",
                    "100%");
    routes_test_hit("GET", P "/recovery-escalations/%2D", "ack.GetPlan", "-");
    routes_test_hit("GET", P "/recovery-escalations/%e2%82%ac", "ack.GetPlan",
                    "\xe2\x82\xac");
    /* Decoded once only: %252D is the text "%2D". */
    routes_test_hit("GET", P "/recovery-escalations/%252D", "ack.GetPlan",
                    "%2D");
}

static void
test_gw_routes_malformed_escapes_rejected(void **state)
{
    static const char *const bad[] = {
        "%",  "%2",  "%zz", "%2G", "%G2", "abc%",  "abc%4",
        "%%", "%-1", "a%2", "%+2", "% 2", "%2%2D",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char path[256];

        snprintf(path, sizeof(path), P "/recovery-escalations/%s", bad[i]);
        routes_test_unknown("GET", path);
        snprintf(path, sizeof(path), P "/recovery-escalations/%s/trace",
                 bad[i]);
        routes_test_unknown("GET", path);
        snprintf(path, sizeof(path),
                 P "/recovery-escalations/%s/acknowledgements", bad[i]);
        routes_test_unknown("POST", path);
    }
}

static void
test_gw_routes_encoded_slash_and_nul_rejected(void **state)
{
    (void)state;
    routes_test_unknown("GET", P "/recovery-escalations/a%2Fb");
    routes_test_unknown("GET", P "/recovery-escalations/a%2fb");
    routes_test_unknown("GET", P "/recovery-escalations/%2F");
    routes_test_unknown("GET", P "/recovery-escalations/..%2F..%2Fetc/trace");
    routes_test_unknown("GET", P "/recovery-escalations/a%00b");
    routes_test_unknown("POST", P "/recovery-escalations/%2f/acknowledgements");
}

static void
test_gw_routes_empty_segment_rejected(void **state)
{
    (void)state;
    routes_test_unknown("GET", P "/recovery-escalations/");
    routes_test_unknown("GET", P "/recovery-escalations//trace");
    routes_test_unknown("POST", P "/recovery-escalations//acknowledgements");
    routes_test_unknown("GET", P "/recovery-escalations");
    routes_test_unknown("POST", "/runtime/go-pilot//rollback-drill-"
                                "notifications/acknowledgements/"
                                "audit-delivery/recovery-escalation-plan");
    routes_test_unknown("GET", "//runtime/go-pilot/rollback-drill-"
                               "notifications");
}

static void
test_gw_routes_trailing_slash_not_matched(void **state)
{
    (void)state;
    routes_test_unknown("POST", P "/recovery-escalation-plan/");
    routes_test_unknown("GET", P "/recovery-escalations/x/");
    routes_test_unknown("GET", P "/recovery-escalations/x/trace/");
    routes_test_unknown("POST", P "/recovery-escalations/x/acknowledgements/");
    routes_test_unknown("POST", P "/recovery-escalations/retry-plan/trace/");
    routes_test_unknown("GET",
                        "/runtime/go-pilot/rollback-drill-notifications/");
    routes_test_unknown(
        "GET", "/runtime/go-pilot/rollback-drill-notifications/dashboard/");
}

static void
test_gw_routes_segment_length_limit(void **state)
{
    char seg[300], path[512];
    routes_test_match m;

    (void)state;
    /* 255 bytes fit the parameter buffer (256 with NUL); 256 do not. */
    memset(seg, 'a', 255);
    seg[255] = '\0';
    snprintf(path, sizeof(path), P "/recovery-escalations/%s", seg);
    routes_test_hit("GET", path, "ack.GetPlan", seg);
    memset(seg, 'a', 256);
    seg[256] = '\0';
    snprintf(path, sizeof(path), P "/recovery-escalations/%s", seg);
    routes_test_unknown("GET", path);
    /* The limit is on the decoded text: 255 escapes decode to 255 bytes,
     * 256 escapes are one too many. */
    {
        char enc[800], full[1024];
        size_t o = 0;

        for (int i = 0; i < 255; i++)
            o += (size_t)snprintf(enc + o, sizeof(enc) - o, "%%2D");
        snprintf(full, sizeof(full), P "/recovery-escalations/%s", enc);
        assert_non_null(routes_test_run("GET", full, &m));
        assert_int_equal(strlen(m.params[0].value), 255);
        assert_int_equal(strspn(m.params[0].value, "-"), 255);
        snprintf(full, sizeof(full), P "/recovery-escalations/%s%%2D", enc);
        routes_test_unknown("GET", full);
    }
}

static void
test_gw_routes_wrong_method_allow(void **state)
{
    (void)state;
    routes_test_405("GET", P "/recovery-escalation-plan", "POST");
    routes_test_405("PUT", P "/recovery-escalation-plan", "POST");
    routes_test_405("POST", P "/recovery-escalations/" ROUTES_TEST_PLAN, "GET");
    routes_test_405("HEAD", P "/recovery-escalations/" ROUTES_TEST_PLAN, "GET");
    routes_test_405("DELETE", P "/recovery-escalations/" ROUTES_TEST_PLAN,
                    "GET");
    routes_test_405(
        "GET", P "/recovery-escalations/" ROUTES_TEST_PLAN "/acknowledgements",
        "POST");
    routes_test_405(
        "GET", P "/recovery-escalations/" ROUTES_TEST_PLAN "/delivery-attempts",
        "POST");
    routes_test_405(
        "POST", P "/recovery-escalations/" ROUTES_TEST_PLAN "/trace", "GET");
    /* The retry-plan literal wins over the {plan_id} read: POST only. */
    routes_test_405("GET", P "/recovery-escalations/retry-plan", "POST");
    routes_test_405("PUT", P "/recovery-escalations/retry-plan", "POST");
    routes_test_405("DELETE", P "/recovery-escalations/retry-plan", "POST");
    routes_test_405("HEAD", P "/recovery-escalations/retry-plan", "POST");
    routes_test_405("GET", P "/recovery-executive-report/schedule-run", "POST");
    routes_test_405("POST",
                    "/runtime/go-pilot/rollback-drill-notifications/dashboard",
                    "GET");
    routes_test_405("PATCH", "/runtime/go-pilot/rollback-drill-notifications",
                    "GET");
    /* Methods are case-sensitive (RFC 9110 section 9.1). */
    routes_test_405("get", "/runtime/go-pilot/rollback-drill-notifications",
                    "GET");
    routes_test_405("post", P "/recovery-escalation-plan", "POST");
}

static void
test_gw_routes_unknown_path(void **state)
{
    (void)state;
    routes_test_unknown("GET", "/");
    routes_test_unknown("GET", "");
    routes_test_unknown("GET", "/runtime");
    routes_test_unknown("GET", "/runtime/go-pilot");
    routes_test_unknown("GET", P);
    routes_test_unknown("POST", P "/nope");
    routes_test_unknown("POST", P "/recovery-escalation-plans");
    routes_test_unknown("POST", P "/recovery-escalation-pla");
    routes_test_unknown("GET", P "/recovery-escalations/x/trace/more");
    routes_test_unknown("GET", P "/RECOVERY-escalations/x");
    routes_test_unknown("GET", "runtime/go-pilot/rollback-drill-notifications");
    routes_test_unknown("GET", "/healthz");
    routes_test_unknown("GET", "/openapi.json");
    routes_test_unknown(
        "GET", "/runtime/go-pilot/rollback-drill-notifications/dashboardx");
}

static void
test_gw_routes_allow_buffer_bounded(void **state)
{
    gw_path_param params[GW_MAX_PATH_PARAMS];
    size_t n = 0;
    bool known = false;
    char allow[3];
    const gw_route *r;

    (void)state;
    /* A short buffer is truncated, NUL-terminated, never overrun (ASan). */
    memset(allow, 'x', sizeof(allow));
    r = gw_route_match("PUT", P "/recovery-escalations/retry-plan", params, &n,
                       &known, allow, sizeof(allow));
    assert_null(r);
    assert_true(known);
    assert_string_equal(allow, "PO");
    /* No buffer at all is fine too. */
    r = gw_route_match("PUT", P "/recovery-escalations/retry-plan", params, &n,
                       &known, NULL, 0);
    assert_null(r);
    assert_true(known);
    r = gw_route_match("GET", P "/recovery-escalations/abc", params, &n, &known,
                       NULL, 0);
    assert_non_null(r);
    assert_string_equal(r->rpc, "ack.GetPlan");
    assert_string_equal(params[0].value, "abc");
}

/* The table is built once and shared: every caller, from any thread, sees
 * the same routes at the same addresses. */
static void *
routes_test_table_thread(void *arg)
{
    size_t n = 0;

    (void)arg;
    return (void *)gw_route_table(&n);
}

static void
test_gw_routes_table_built_once(void **state)
{
    pthread_t t[4];
    void *got[4];

    (void)state;
    for (int i = 0; i < 4; i++)
        assert_int_equal(
            pthread_create(&t[i], NULL, routes_test_table_thread, NULL), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], &got[i]), 0);
        assert_ptr_equal(got[i], gw_routes);
    }
    assert_ptr_equal(gw_route_table(NULL), &gw_routes[0]);
}

/* `{path*}` takes the rest of the path (C2SP tile paths), decoded once,
 * and still refuses an escaped slash. */
static void
test_gw_routes_rest_of_path(void **state)
{
    routes_test_match m;

    (void)state;
    assert_non_null(
        routes_test_run("GET", "/runtime/evidence/tile/0/x001/234.p/5", &m));
    assert_string_equal(m.route->rpc, "report.EvidenceTile");
    assert_int_equal(m.n_params, 1);
    assert_string_equal(m.params[0].name, "path");
    assert_string_equal(m.params[0].value, "0/x001/234.p/5");
    assert_non_null(
        routes_test_run("GET", "/runtime/evidence/tile/entries/%30", &m));
    assert_string_equal(m.params[0].value, "entries/0");
    assert_null(routes_test_run("GET", "/runtime/evidence/tile/0%2F1", &m));
    assert_null(routes_test_run("GET", "/runtime/evidence/tile/", &m));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gw_routes_table_built_once),
        cmocka_unit_test(test_gw_routes_table_documented),
        cmocka_unit_test(test_gw_routes_table_is_the_registry),
        cmocka_unit_test(test_gw_routes_every_route_matches_itself),
        cmocka_unit_test(test_gw_routes_exact_paths),
        cmocka_unit_test(test_gw_routes_literal_segments_win),
        cmocka_unit_test(test_gw_routes_resolution_is_by_pattern),
        cmocka_unit_test(test_gw_routes_params_percent_decoded),
        cmocka_unit_test(test_gw_routes_malformed_escapes_rejected),
        cmocka_unit_test(test_gw_routes_encoded_slash_and_nul_rejected),
        cmocka_unit_test(test_gw_routes_empty_segment_rejected),
        cmocka_unit_test(test_gw_routes_trailing_slash_not_matched),
        cmocka_unit_test(test_gw_routes_segment_length_limit),
        cmocka_unit_test(test_gw_routes_wrong_method_allow),
        cmocka_unit_test(test_gw_routes_unknown_path),
        cmocka_unit_test(test_gw_routes_allow_buffer_bounded),
        cmocka_unit_test(test_gw_routes_rest_of_path),
    };

    return cmocka_run_group_tests_name("gw_routes", tests, NULL, NULL);
}
