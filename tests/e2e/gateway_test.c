/*
 * gateway_test.c -- end-to-end tests of the gateway's own surface
 * (docs/api.md): /openapi.json against the route table, /metrics counters,
 * /healthz and /readyz (also with a service killed), 405 with Allow,
 * X-Request-Id sanitisation, and the Evidence Console's static files (no path
 * escapes its folder).
 *
 * The whole stack runs in sandbox mode (no token file) against the real
 * PostgreSQL named by CAVRA_DATABASE_URL. The readiness test kills a
 * service and restarts the stack, so it runs last.
 *
 * Run: ctest -R e2e.gateway, or the binary alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <curl/curl.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cv_chain.h"
#include "cv_tlog.h"
#include "cv_test_api.h"
#include "gw_routes.h"

#define P                                                                      \
    "/runtime/go-pilot/rollback-drill-notifications/acknowledgements/"         \
    "audit-delivery"
#define GWT_PLAN_PATH   P "/recovery-escalation-plan"
#define GWT_PLAN_BODY   "{\"escalation_routes\": [{\"provider\": \"slack\"}]}"
#define GWT_CONSOLE_DIR CV_TEST_SOURCE_DIR "/gateway/console"

static cv_test_stack gwt_stack;

/* ---- helpers ---------------------------------------------------------- */

static char *
gwt_url(const char *path)
{
    static char url[2048];

    snprintf(url, sizeof(url), "%s%s", gwt_stack.base_url, path);
    return url;
}

/* Sends a request; fails the test when no response arrived or it lacks an
 * X-Request-Id. 5xx are allowed only when allow_5xx. */
static void
gwt_send(const char *method, const char *path, const char *body,
         const char *const *headers, int allow_5xx, cv_http_response *r)
{
    if (cv_http_request(method, gwt_url(path), NULL, body, headers, r) != 0)
        fail_msg("%s %s: no response", method, path);
    if (r->request_id[0] == '\0')
        fail_msg("%s %s: %ld without X-Request-Id", method, path, r->status);
    if (!allow_5xx && r->status >= 500)
        fail_msg("%s %s: server error %ld: %s", method, path, r->status,
                 r->body);
}

static void
gwt_do(const char *method, const char *path, const char *body,
       const char *const *headers, cv_http_response *r)
{
    gwt_send(method, path, body, headers, 0, r);
}

static const char *
gwt_str(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);

    if (!json_is_string(v))
        fail_msg("\"%s\" is not a string", key);
    return json_string_value(v);
}

/* Checks the docs/api.md error body and its request_id == the header. */
static void
gwt_assert_error(const cv_http_response *r, long status, const char *code,
                 const char *detail)
{
    if (r->status != status)
        fail_msg("expected %ld, got %ld: %s", status, r->status,
                 r->body != NULL ? r->body : "");
    if (strncmp(r->content_type, "application/json", 16) != 0)
        fail_msg("error Content-Type is \"%s\"", r->content_type);
    if (!json_is_object(r->json))
        fail_msg("error body is not a JSON object: %s", r->body);
    assert_string_equal(gwt_str(r->json, "code"), code);
    assert_string_equal(gwt_str(r->json, "detail"), detail);
    assert_string_equal(gwt_str(r->json, "request_id"), r->request_id);
    assert_int_equal(json_object_size(r->json), 3);
}

/* "req-" + 16 lowercase hex: an id the gateway made up. */
static void
gwt_assert_generated_id(const char *id)
{
    if (strncmp(id, "req-", 4) != 0 || strlen(id) != 20)
        fail_msg("\"%s\" is not a generated request id", id);
    for (size_t i = 4; i < 20; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            fail_msg("\"%s\" is not a generated request id", id);
}

/* Reads a whole file into a malloc'd string, NULL when missing. */
static char *
gwt_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    *len = fread(buf, 1, (size_t)n, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

/* The body sink of gwt_raw_get. */
static size_t
gwt_raw_body_cb(char *data, size_t size, size_t nmemb, void *arg)
{
    char *buf = arg;
    size_t n = size * nmemb, have = strlen(buf);

    if (have + n >= 65536)
        n = 65535 - have;
    memcpy(buf + have, data, n);
    buf[have + n] = '\0';
    return size * nmemb;
}

/* GET of a path sent exactly as written (no "/../" squashing by curl);
 * returns the status and copies the body (at most 64 KiB) into body. */
static long
gwt_raw_get(const char *path, char *body)
{
    CURL *curl = curl_easy_init();
    long status = 0;
    CURLcode cc;

    assert_non_null(curl);
    body[0] = '\0';
    curl_easy_setopt(curl, CURLOPT_URL, gwt_url(path));
    curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 15000L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, gwt_raw_body_cb);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
    cc = curl_easy_perform(curl);
    if (cc != CURLE_OK)
        fail_msg("GET %s: %s", path, curl_easy_strerror(cc));
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(curl);
    return status;
}

/* ---- metrics ---------------------------------------------------------- */

/* The value of the sample line `name{labels} <value>`; 0 when absent (a
 * counter never incremented is not listed). */
static unsigned long long
gwt_metric(const char *text, const char *series)
{
    size_t n = strlen(series);

    for (const char *p = text; p != NULL && *p != '\0';) {
        const char *eol = strchr(p, '\n');

        if (strncmp(p, series, n) == 0 && p[n] == ' ') {
            char *end;
            unsigned long long v = strtoull(p + n + 1, &end, 10);

            if (end == p + n + 1 || (*end != '\n' && *end != '\0'))
                fail_msg("bad sample line for %s", series);
            return v;
        }
        p = eol != NULL ? eol + 1 : NULL;
    }
    return 0;
}

static char *
gwt_metrics_text(void)
{
    cv_http_response r;
    char *text;

    gwt_do("GET", "/metrics", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    if (strncmp(r.content_type, "text/plain", 10) != 0)
        fail_msg("/metrics Content-Type is \"%s\"", r.content_type);
    text = strdup(r.body);
    cv_http_response_free(&r);
    return text;
}

#define GWT_SERIES(route, status)                                              \
    "cavra_http_requests_total{route=\"" route "\",status=\"" status "\"}"

/* ---- setup ------------------------------------------------------------ */

static int
gwt_setup(void **state)
{
    (void)state;
    return cv_test_stack_start(&gwt_stack, CV_STACK_ALL);
}

static int
gwt_teardown(void **state)
{
    (void)state;
    return cv_test_stack_stop(&gwt_stack);
}

/* ---- tests ------------------------------------------------------------ */

static void
test_gateway_openapi_document(void **state)
{
    cv_http_response r;
    json_t *paths, *schemas;
    size_t n_ops = 0;

    (void)state;
    gwt_do("GET", "/openapi.json", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_true(strncmp(r.content_type, "application/json", 16) == 0);
    if (!json_is_object(r.json))
        fail_msg("/openapi.json is not a JSON object: %.200s", r.body);
    assert_string_equal(gwt_str(r.json, "openapi"), "3.0.3");
    assert_true(json_is_string(
        json_object_get(json_object_get(r.json, "info"), "title")));
    assert_true(json_is_string(
        json_object_get(json_object_get(r.json, "info"), "version")));
    paths = json_object_get(r.json, "paths");
    schemas = json_object_get(json_object_get(r.json, "components"), "schemas");
    assert_true(json_is_object(paths));
    assert_true(json_is_object(schemas));

    /* One operation per route: path, method, RPC, success status. */
    for (size_t i = 0; i < gw_route_count; i++) {
        const gw_route *route = &gw_routes[i];
        json_t *item, *op, *params, *responses;
        char method[8], status[8], key[256];
        size_t j, k = 0;

        /* A rest-of-path `{name*}` is `{name}` in OpenAPI. */
        for (j = 0; route->pattern[j] != '\0' && k + 1 < sizeof(key); j++)
            if (route->pattern[j] != '*')
                key[k++] = route->pattern[j];
        key[k] = '\0';
        item = json_object_get(paths, key);

        if (!json_is_object(item))
            fail_msg("paths lacks %s", route->pattern);
        for (j = 0; route->http_method[j] != '\0'; j++)
            method[j] = (char)tolower((unsigned char)route->http_method[j]);
        method[j] = '\0';
        op = json_object_get(item, method);
        if (!json_is_object(op))
            fail_msg("%s lacks %s", route->pattern, method);
        assert_string_equal(gwt_str(op, "operationId"), route->rpc);
        assert_string_equal(gwt_str(op, "summary"), route->summary);
        responses = json_object_get(op, "responses");
        snprintf(status, sizeof(status), "%d", route->status);
        if (json_object_get(responses, status) == NULL)
            fail_msg("%s %s lacks response %s", method, route->pattern, status);
        assert_non_null(json_object_get(responses, "400"));
        /* Path parameters are documented, required, in the path. */
        params = json_object_get(op, "parameters");
        assert_true(json_is_array(params));
        if (strstr(route->pattern, "{plan_id}") != NULL) {
            int found = 0;

            for (size_t k = 0; k < json_array_size(params); k++) {
                json_t *p = json_array_get(params, k);

                if (strcmp(gwt_str(p, "name"), "plan_id") == 0) {
                    assert_string_equal(gwt_str(p, "in"), "path");
                    assert_true(json_is_true(json_object_get(p, "required")));
                    found = 1;
                }
            }
            if (!found)
                fail_msg("%s %s: no plan_id path parameter", method,
                         route->pattern);
        }
        if (strcmp(route->http_method, "POST") == 0) {
            json_t *rb = json_object_get(op, "requestBody");
            json_t *ref = json_object_get(
                json_object_get(json_object_get(json_object_get(rb, "content"),
                                                "application/json"),
                                "schema"),
                "$ref");
            char want[256];

            assert_true(json_is_string(ref));
            snprintf(want, sizeof(want), "#/components/schemas/%s",
                     route->request->short_name);
            assert_string_equal(json_string_value(ref), want);
            assert_non_null(
                json_object_get(schemas, route->request->short_name));
        }
    }
    /* Nothing undocumented: operations == routes + built-ins. */
    {
        const char *path;
        json_t *item;

        json_object_foreach(paths, path, item)
        {
            n_ops += json_object_size(item);
        }
    }
    assert_non_null(json_object_get(json_object_get(paths, "/healthz"), "get"));
    assert_non_null(json_object_get(json_object_get(paths, "/readyz"), "get"));
    assert_non_null(json_object_get(json_object_get(paths, "/metrics"), "get"));
    assert_non_null(
        json_object_get(json_object_get(paths, "/openapi.json"), "get"));
    assert_non_null(json_object_get(json_object_get(paths, "/"), "get"));
    assert_int_equal(n_ops, gw_route_count + 5);
    assert_non_null(json_object_get(schemas, "Error"));
    cv_http_response_free(&r);
}

static void
test_gateway_healthz_readyz(void **state)
{
    cv_http_response r;
    json_t *svcs;

    (void)state;
    gwt_do("GET", "/healthz", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_true(strncmp(r.content_type, "application/json", 16) == 0);
    assert_string_equal(gwt_str(r.json, "status"), "ok");
    cv_http_response_free(&r);

    gwt_do("GET", "/readyz", NULL, NULL, &r);
    if (r.status != 200)
        fail_msg("/readyz: %ld %s", r.status, r.body);
    assert_string_equal(gwt_str(r.json, "status"), "ready");
    assert_true(json_is_true(json_object_get(r.json, "database")));
    assert_string_equal(gwt_str(r.json, "request_id"), r.request_id);
    svcs = json_object_get(r.json, "services");
    assert_int_equal(json_object_size(svcs), 3);
    for (int i = 0; i < 3; i++) {
        static const char *const names[] = {"ack", "retry", "report"};
        json_t *s = json_object_get(svcs, names[i]);

        assert_true(json_is_true(json_object_get(s, "ok")));
        assert_true(json_is_true(json_object_get(s, "database_ok")));
    }
    cv_http_response_free(&r);

    /* Only GET. */
    gwt_do("POST", "/healthz", "{}", NULL, &r);
    gwt_assert_error(&r, 405, "UNIMPLEMENTED", "method not allowed");
    assert_string_equal(r.allow, "GET");
    cv_http_response_free(&r);
    gwt_do("DELETE", "/readyz", NULL, NULL, &r);
    gwt_assert_error(&r, 405, "UNIMPLEMENTED", "method not allowed");
    assert_string_equal(r.allow, "GET");
    cv_http_response_free(&r);
}

static void
test_gateway_metrics_counters(void **state)
{
    cv_http_response r;
    char *before, *after = NULL;
    unsigned long long p201, p400, u404, m200;

    (void)state;
    before = gwt_metrics_text();
    assert_non_null(
        strstr(before, "# TYPE cavra_http_requests_total counter\n"));
    assert_non_null(strstr(
        before, "# TYPE cavra_http_request_duration_seconds histogram\n"));
    assert_non_null(strstr(before, "\ncavra_http_in_flight 0\n"));
    p201 = gwt_metric(before, GWT_SERIES("ack.RecordPlan", "201"));
    p400 = gwt_metric(before, GWT_SERIES("ack.RecordPlan", "400"));
    u404 = gwt_metric(before, GWT_SERIES("unmatched", "404"));
    m200 = gwt_metric(before, GWT_SERIES("metrics", "200"));

    gwt_do("POST", GWT_PLAN_PATH, GWT_PLAN_BODY, NULL, &r);
    assert_int_equal(r.status, 201);
    cv_http_response_free(&r);
    gwt_do("POST", GWT_PLAN_PATH, "{}", NULL, &r);
    assert_int_equal(r.status, 400);
    cv_http_response_free(&r);
    gwt_do("POST", GWT_PLAN_PATH, "{}", NULL, &r);
    assert_int_equal(r.status, 400);
    cv_http_response_free(&r);
    gwt_do("GET", "/no/such/path", NULL, NULL, &r);
    assert_int_equal(r.status, 404);
    cv_http_response_free(&r);

    /* A request is counted once its response is sent: poll briefly. */
    for (int i = 0; i < 40; i++) {
        free(after);
        after = gwt_metrics_text();
        if (gwt_metric(after, GWT_SERIES("ack.RecordPlan", "201")) ==
                p201 + 1 &&
            gwt_metric(after, GWT_SERIES("ack.RecordPlan", "400")) ==
                p400 + 2 &&
            gwt_metric(after, GWT_SERIES("unmatched", "404")) == u404 + 1)
            break;
        cv_test_sleep_ms(50);
    }
    assert_int_equal(gwt_metric(after, GWT_SERIES("ack.RecordPlan", "201")),
                     p201 + 1);
    assert_int_equal(gwt_metric(after, GWT_SERIES("ack.RecordPlan", "400")),
                     p400 + 2);
    assert_int_equal(gwt_metric(after, GWT_SERIES("unmatched", "404")),
                     u404 + 1);
    /* The earlier /metrics reads count too. */
    assert_true(gwt_metric(after, GWT_SERIES("metrics", "200")) > m200);
    /* The latency histogram counts every answered RecordPlan. */
    assert_int_equal(
        gwt_metric(after, "cavra_http_request_duration_seconds_count{route="
                          "\"ack.RecordPlan\"}"),
        gwt_metric(after, GWT_SERIES("ack.RecordPlan", "201")) +
            gwt_metric(after, GWT_SERIES("ack.RecordPlan", "400")) +
            gwt_metric(after, GWT_SERIES("ack.RecordPlan", "415")) +
            gwt_metric(after, GWT_SERIES("ack.RecordPlan", "200")));
    assert_int_equal(
        gwt_metric(after, "cavra_http_request_duration_seconds_bucket{route="
                          "\"ack.RecordPlan\",le=\"+Inf\"}"),
        gwt_metric(after, "cavra_http_request_duration_seconds_count{route="
                          "\"ack.RecordPlan\"}"));
    assert_non_null(strstr(after, "\ncavra_rpc_unavailable_total "));
    free(before);
    free(after);
}

static void
test_gateway_wrong_method_405(void **state)
{
    static const struct {
        const char *method, *path, *allow;
    } cases[] = {
        {"HEAD", P "/recovery-escalations/gordackrecoveryesc-0123456789abcdef",
         "GET"},
        {"PUT", P "/recovery-escalations/gordackrecoveryesc-0123456789abcdef",
         "GET"},
        {"DELETE",
         P "/recovery-escalations/gordackrecoveryesc-0123456789abcdef", "GET"},
        /* The retry-plan literal wins over {plan_id}: POST only. */
        {"PUT", P "/recovery-escalations/retry-plan", "POST"},
        {"DELETE", P "/recovery-escalations/retry-plan", "POST"},
        {"HEAD", P "/recovery-escalations/retry-plan", "POST"},
        {"GET", P "/recovery-escalations/retry-plan", "POST"},
        {"GET", GWT_PLAN_PATH, "POST"},
        {"PUT", GWT_PLAN_PATH, "POST"},
        {"DELETE", P "/recovery-escalations/x/acknowledgements", "POST"},
        {"PATCH", "/runtime/go-pilot/rollback-drill-notifications/dashboard",
         "GET"},
        {"POST", "/runtime/go-pilot/rollback-drill-notifications", "GET"},
    };
    cv_test_counts before;

    (void)state;
    cv_test_counts_snapshot(&before);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cv_http_response r;
        int head = strcmp(cases[i].method, "HEAD") == 0;
        const char *body =
            head || strcmp(cases[i].method, "GET") == 0 ? NULL : GWT_PLAN_BODY;

        gwt_do(cases[i].method, cases[i].path, body, NULL, &r);
        if (r.status != 405)
            fail_msg("%s %s: %ld, expected 405", cases[i].method, cases[i].path,
                     r.status);
        if (strcmp(r.allow, cases[i].allow) != 0)
            fail_msg("%s %s: Allow \"%s\", expected \"%s\"", cases[i].method,
                     cases[i].path, r.allow, cases[i].allow);
        if (!head)
            gwt_assert_error(&r, 405, "UNIMPLEMENTED", "method not allowed");
        cv_http_response_free(&r);
    }
    /* A 405 stores nothing (a PUT of a plan body is not a POST). */
    cv_test_counts_unchanged(&before, "405s");
}

static void
test_gateway_unknown_path_404(void **state)
{
    static const struct {
        const char *method, *path;
    } cases[] = {
        {"GET", "/nope"},
        {"POST", P "/recovery-escalation-plan/"},
        {"POST", P "/recovery-escalation-plans"},
        {"GET", P "/recovery-escalations/x/trace/extra"},
        {"GET", "/runtime/go-pilot/rollback-drill-notifications/"},
        {"GET", "/healthz/"},
        {"DELETE", "/nope"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cv_http_response r;

        gwt_do(cases[i].method, cases[i].path, NULL, NULL, &r);
        gwt_assert_error(&r, 404, "NOT_FOUND", "not found");
        assert_string_equal(r.allow, "");
        cv_http_response_free(&r);
    }
}

static void
test_gateway_request_id_sanitised(void **state)
{
    char long_id[201], max_id[129], over_id[130], hdr[300], rid[64];
    char first[160];
    cv_http_response r;

    (void)state;
    memset(long_id, 'a', 200);
    long_id[200] = '\0';
    memset(max_id, 'b', 128);
    max_id[128] = '\0';
    memset(over_id, 'c', 129);
    over_id[129] = '\0';

    /* Sane ids are echoed, in headers and error bodies. */
    {
        const char *h[] = {"X-Request-Id: Abc-123_x.y:z", NULL};

        gwt_do("GET", "/nope", NULL, h, &r);
        assert_string_equal(r.request_id, "Abc-123_x.y:z");
        gwt_assert_error(&r, 404, "NOT_FOUND", "not found");
        cv_http_response_free(&r);
    }
    snprintf(hdr, sizeof(hdr), "X-Request-Id: %s", max_id);
    {
        const char *h[] = {hdr, NULL};

        gwt_do("GET", "/healthz", NULL, h, &r);
        assert_string_equal(r.request_id, max_id);
        cv_http_response_free(&r);
    }

    /* Insane ones are replaced by a generated id. */
    {
        static const char *const bad[] = {
            "X-Request-Id: has spaces in it", "X-Request-Id: a/b",
            "X-Request-Id: semi;colon",       "X-Request-Id: <script>",
            "X-Request-Id: caf\xc3\xa9",      "X-Request-Id;",
        };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            const char *h[] = {bad[i], NULL};

            gwt_do("GET", "/healthz", NULL, h, &r);
            gwt_assert_generated_id(r.request_id);
            cv_http_response_free(&r);
        }
    }
    snprintf(hdr, sizeof(hdr), "X-Request-Id: %s", long_id);
    {
        const char *h[] = {hdr, NULL};

        gwt_do("GET", "/nope", NULL, h, &r);
        gwt_assert_generated_id(r.request_id);
        gwt_assert_error(&r, 404, "NOT_FOUND", "not found");
        cv_http_response_free(&r);
    }
    snprintf(hdr, sizeof(hdr), "X-Request-Id: %s", over_id);
    {
        const char *h[] = {hdr, NULL};

        gwt_do("GET", "/healthz", NULL, h, &r);
        gwt_assert_generated_id(r.request_id);
        cv_http_response_free(&r);
    }
    /* Without one, each response gets a fresh id. */
    gwt_do("GET", "/healthz", NULL, NULL, &r);
    gwt_assert_generated_id(r.request_id);
    snprintf(first, sizeof(first), "%s", r.request_id);
    cv_http_response_free(&r);
    gwt_do("GET", "/healthz", NULL, NULL, &r);
    gwt_assert_generated_id(r.request_id);
    assert_string_not_equal(r.request_id, first);
    cv_http_response_free(&r);

    /* The echoed id is the one stored with the evidence. */
    snprintf(rid, sizeof(rid), "gwt-rid-%ld-%ld", (long)getpid(),
             (long)time(NULL));
    snprintf(hdr, sizeof(hdr), "X-Request-Id: %s", rid);
    {
        const char *h[] = {hdr, NULL};

        gwt_do("POST", GWT_PLAN_PATH, GWT_PLAN_BODY, h, &r);
        assert_int_equal(r.status, 201);
        assert_string_equal(r.request_id, rid);
        cv_http_response_free(&r);
    }
    assert_int_equal(
        cv_test_count(
            "SELECT count(*) FROM escalation_plans WHERE request_id = $1", rid),
        1);
    assert_int_equal(
        cv_test_count(
            "SELECT count(*) FROM evidence_events WHERE request_id = $1", rid),
        1);
}

static void
test_gateway_console_served(void **state)
{
    cv_http_response r;
    size_t len = 0;
    char *index = gwt_read_file(GWT_CONSOLE_DIR "/index.html", &len);
    char *app;

    (void)state;
    if (index == NULL) {
        /* No console in this tree: / is just an unknown path. */
        gwt_do("GET", "/", NULL, NULL, &r);
        gwt_assert_error(&r, 404, "NOT_FOUND", "not found");
        cv_http_response_free(&r);
        skip();
    }
    static const char *const index_paths[] = {"/", "/console", "/console/",
                                              "/console/index.html"};

    for (size_t i = 0; i < sizeof(index_paths) / sizeof(index_paths[0]); i++) {
        gwt_do("GET", index_paths[i], NULL, NULL, &r);
        if (r.status != 200)
            fail_msg("GET %s: %ld", index_paths[i], r.status);
        assert_string_equal(r.content_type, "text/html; charset=utf-8");
        assert_int_equal(strlen(r.body), len);
        assert_memory_equal(r.body, index, len);
        cv_http_response_free(&r);
    }
    free(index);
    if ((app = gwt_read_file(GWT_CONSOLE_DIR "/app.js", &len)) != NULL) {
        gwt_do("GET", "/console/app.js", NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.content_type, "text/javascript; charset=utf-8");
        assert_int_equal(strlen(r.body), len);
        cv_http_response_free(&r);
        free(app);
    }
    gwt_do("GET", "/console/no-such-file.js", NULL, NULL, &r);
    gwt_assert_error(&r, 404, "NOT_FOUND", "not found");
    cv_http_response_free(&r);
    /* The console is GET only: other methods are unknown paths. */
    gwt_do("POST", "/", "{}", NULL, &r);
    gwt_assert_error(&r, 404, "NOT_FOUND", "not found");
    cv_http_response_free(&r);
}

static void
test_gateway_console_traversal_404(void **state)
{
    static const char *const paths[] = {
        "/console/../etc/passwd",
        "/console/../../../../etc/passwd",
        "/console/..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/console/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/console/%2e%2e%2f%2e%2e%2fCMakeLists.txt",
        "/console/../CMakeLists.txt",
        "/console/../gw_server.c",
        "/console/..",
        "/console/.",
        "/console/.hidden",
        "/console//etc/passwd",
        "/console/%2fetc%2fpasswd",
        "/console/INDEX.HTML",
        "/console/index.html/",
        "/../../../../etc/passwd",
        "/etc/passwd",
        "/index.html",
    };
    static char body[65536];

    (void)state;
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        long status = gwt_raw_get(paths[i], body);

        if (status != 404)
            fail_msg("GET %s: %ld, expected 404: %.200s", paths[i], status,
                     body);
        if (strstr(body, "root:") != NULL || strstr(body, "<html") != NULL ||
            strstr(body, "add_library") != NULL)
            fail_msg("GET %s leaked a file: %.200s", paths[i], body);
    }
}

/*
 * The gateway routes on the path as sent: each {plan_id} segment is
 * percent-decoded exactly once (gw_route_match), so "%252D" is the text
 * "%2D", and an escaped '/' or NUL is rejected instead of becoming a
 * segment break or the end of the path.
 */
static void
test_gateway_path_escapes_decoded_once(void **state)
{
    cv_http_response r;
    char id[128], pre[64], path[512], problems[2048];
    const char *dash;
    size_t o = 0;
    /* %s: the id's prefix up to '-', %s: the 16 hex after it. */
    static const struct {
        const char *fmt;
        long status;
    } cases[] = {
        /* One level of escaping reaches the plan. */
        {P "/recovery-escalations/%s%%2D%s", 200},
        {P "/recovery-escalations/%s%%2d%s/trace", 200},
        /* Two levels do not: the id would be "...%2D...". */
        {P "/recovery-escalations/%s%%252D%s", 404},
        /* An escaped '/' stays inside the segment: rejected. */
        {P "/recovery-escalations/%s-%s%%2Ftrace", 404},
        /* An escaped NUL does not end the path: rejected. */
        {P "/recovery-escalations/%s-%s%%00/trace", 404},
    };

    (void)state;
    gwt_do("POST", GWT_PLAN_PATH, GWT_PLAN_BODY, NULL, &r);
    assert_int_equal(r.status, 201);
    snprintf(id, sizeof(id), "%s",
             gwt_str(json_object_get(r.json, "plan"), "plan_id"));
    cv_http_response_free(&r);
    dash = strchr(id, '-');
    assert_non_null(dash);
    snprintf(pre, sizeof(pre), "%.*s", (int)(dash - id), id);

    problems[0] = '\0';
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(path, sizeof(path), cases[i].fmt, pre, dash + 1);
        gwt_do("GET", path, NULL, NULL, &r);
        /* GetPlan answers {"plan": {...}}, Trace {"plan_id", "items"}. */
        if (r.status == 200)
            assert_string_equal(
                json_object_get(r.json, "plan") != NULL
                    ? gwt_str(json_object_get(r.json, "plan"), "plan_id")
                    : gwt_str(r.json, "plan_id"),
                id);
        if (r.status != cases[i].status)
            o += (size_t)snprintf(problems + o, sizeof(problems) - o,
                                  "\n  GET %s: %ld, expected %ld",
                                  path + strlen(P), r.status, cases[i].status);
        cv_http_response_free(&r);
        assert_true(o < sizeof(problems));
    }
    if (problems[0] != '\0')
        fail_msg("path escapes are not decoded exactly once:%s", problems);
}

/* Last: kills a service and restarts the stack. */
/* GET /runtime/evidence/verify recomputes the chain: once the sequencer
 * has caught up, the answer names every event and the stored head. */
static void
test_gateway_verify_evidence(void **state)
{
    cv_http_response r;
    long chained = -1, pending = -1;
    char *head;

    (void)state;
    for (int i = 0; i < 100; i++) {
        pending =
            cv_test_count("SELECT count(*) FROM evidence_unsequenced", NULL);
        if (pending == 0)
            break;
        cv_test_sleep_ms(100);
    }
    assert_int_equal(pending, 0);
    chained = cv_test_count("SELECT count(*) FROM evidence_events", NULL);
    head = NULL;
    {
        /* The head is the root of the stored Merkle tree. */
        cv_db db;
        cv_error err;
        int64_t size;
        cv_merkle_hash root;
        char hex[65];

        cv_error_clear(&err);
        if (cv_db_init(&db, cv_test_database_url(), NULL, 0, &err) == 0 &&
            cv_db_ensure(&db, &err) == 0 &&
            cv_tlog_size(&db, &size, &err) == 0 &&
            cv_tlog_root(&db, size, root, &err) == 0) {
            cv_chain_hex(root, hex);
            head = strdup(hex);
        }
        cv_db_fini(&db);
    }
    assert_non_null(head);
    gwt_do("GET", "/runtime/evidence/verify", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_true(json_is_true(json_object_get(r.json, "valid")));
    /* Events may arrive between the count and the call; never fewer. */
    assert_true(json_integer_value(json_object_get(r.json, "events")) >=
                chained);
    assert_int_equal(strlen(gwt_str(r.json, "head")), 64);
    if (json_integer_value(json_object_get(r.json, "events")) == chained)
        assert_string_equal(gwt_str(r.json, "head"), head);
    assert_true(json_is_null(json_object_get(r.json, "reason")));
    free(head);
    cv_http_response_free(&r);
}

static void
test_gateway_readyz_names_dead_service(void **state)
{
    cv_http_response r;
    json_t *svcs;
    int status = 0, ready = 0;

    (void)state;
    assert_true(gwt_stack.pids[0] > 0);
    kill(gwt_stack.pids[0], SIGTERM);
    assert_int_equal(waitpid(gwt_stack.pids[0], &status, 0), gwt_stack.pids[0]);
    gwt_stack.pids[0] = 0;

    gwt_send("GET", "/readyz", NULL, NULL, 1, &r);
    if (r.status != 503)
        fail_msg("/readyz with ack down: %ld %s", r.status, r.body);
    assert_true(strncmp(r.content_type, "application/json", 16) == 0);
    assert_string_equal(gwt_str(r.json, "status"), "not_ready");
    assert_string_equal(gwt_str(r.json, "request_id"), r.request_id);
    svcs = json_object_get(r.json, "services");
    assert_true(
        json_is_false(json_object_get(json_object_get(svcs, "ack"), "ok")));
    assert_true(
        json_is_true(json_object_get(json_object_get(svcs, "retry"), "ok")));
    assert_true(
        json_is_true(json_object_get(json_object_get(svcs, "report"), "ok")));
    assert_true(json_is_true(
        json_object_get(json_object_get(svcs, "retry"), "database_ok")));
    cv_http_response_free(&r);

    /* The process is up even when a dependency is not. */
    gwt_do("GET", "/healthz", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    cv_http_response_free(&r);

    /* A call to the dead service is a 503 (or, when the transport cannot
     * tell a dead service from a slow one, a 504 once the RPC timeout
     * passed): never a hang, a 500 or a stored record. */
    {
        cv_test_counts before;
        char *m;

        cv_test_counts_snapshot(&before);
        gwt_send("POST", GWT_PLAN_PATH, GWT_PLAN_BODY, NULL, 1, &r);
        if (r.status == 503) {
            gwt_assert_error(&r, 503, "UNAVAILABLE", "service unavailable");
        } else if (r.status == 504) {
            gwt_assert_error(&r, 504, "DEADLINE_EXCEEDED",
                             "service did not answer in time");
        } else {
            fail_msg("POST with ack down: %ld %s", r.status, r.body);
        }
        cv_http_response_free(&r);
        cv_test_counts_unchanged(&before, "POST with ack down");
        m = gwt_metrics_text();
        assert_int_equal(gwt_metric(m, "cavra_rpc_unavailable_total"), 1);
        free(m);
    }

    assert_int_equal(cv_test_stack_restart(&gwt_stack), 0);
    for (int i = 0; i < 50 && !ready; i++) {
        gwt_send("GET", "/readyz", NULL, NULL, 1, &r);
        ready = r.status == 200;
        if (!ready) {
            cv_http_response_free(&r);
            cv_test_sleep_ms(100);
        }
    }
    if (!ready)
        fail_msg("/readyz did not recover after the restart");
    assert_string_equal(gwt_str(r.json, "status"), "ready");
    svcs = json_object_get(r.json, "services");
    assert_true(
        json_is_true(json_object_get(json_object_get(svcs, "ack"), "ok")));
    cv_http_response_free(&r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gateway_openapi_document),
        cmocka_unit_test(test_gateway_healthz_readyz),
        cmocka_unit_test(test_gateway_metrics_counters),
        cmocka_unit_test(test_gateway_wrong_method_405),
        cmocka_unit_test(test_gateway_unknown_path_404),
        cmocka_unit_test(test_gateway_request_id_sanitised),
        cmocka_unit_test(test_gateway_console_served),
        cmocka_unit_test(test_gateway_console_traversal_404),
        cmocka_unit_test(test_gateway_path_escapes_decoded_once),
        cmocka_unit_test(test_gateway_verify_evidence),
        cmocka_unit_test(test_gateway_readyz_names_dead_service),
    };

    return cmocka_run_group_tests_name("gateway", tests, gwt_setup,
                                       gwt_teardown);
}
