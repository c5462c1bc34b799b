/*
 * gzip_test.c -- end-to-end: gzip answers through the real gateway
 * (issue 11, item 5; docs/api.md "Compression").
 *
 * Every request here is sent with libcurl directly, so the test sees the
 * bytes on the wire (curl decodes nothing unless asked): a gzip answer is
 * inflated by zlib and must be byte for byte the plain answer to the same
 * request (an Idempotency-Key replay, or a read that does not change).
 * Checked: Accept-Encoding as Python requests sends it ("gzip, deflate")
 * gets Content-Encoding: gzip and a Content-Length that counts the gzip
 * bytes; "gzip;q=0", "identity", another coding only, or no header get
 * the plain body; every JSON or text answer says Vary: Accept-Encoding;
 * answers under the threshold (healthz, errors) and raw tiles stay plain;
 * an Idempotency-Key replay, the console page and the OpenAPI document are
 * served compressed too; curl's own decoding (as a client would use it)
 * yields the JSON with every key.
 *
 * Needs CAVRA_DATABASE_URL pointing at a migrated database (scripts/test.sh
 * sets it). Run: ctest -R e2e.gzip, or the binary alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "cv_test_api.h"

#define P                                                                      \
    "/runtime/go-pilot/rollback-drill-notifications/acknowledgements/"         \
    "audit-delivery"
/* What Python requests (the original CAVRA clients) sends by default. */
#define GZ_REQUESTS "gzip, deflate"

static cv_test_stack gz_stack;
static char *gz_plan;
/* X-Request-Id to send (NULL: none): two answers to compare byte for
 * byte must carry the same id. */
static const char *gz_request_id;

/* One answer as it came over the wire. */
typedef struct gz_answer {
    long status;
    char *raw; /* the body bytes received (NUL added, not counted) */
    size_t raw_len;
    char *body; /* the decoded body: raw, or raw inflated */
    size_t body_len;
    long content_length; /* -1: no header */
    char encoding[64];
    char vary[128];
    char type[128];
    char replayed[16];
} gz_answer;

static size_t
gz_body_cb(char *data, size_t size, size_t nmemb, void *arg)
{
    gz_answer *a = arg;
    size_t n = size * nmemb;
    char *grown = realloc(a->raw, a->raw_len + n + 1);

    if (grown == NULL)
        return 0;
    a->raw = grown;
    memcpy(a->raw + a->raw_len, data, n);
    a->raw_len += n;
    a->raw[a->raw_len] = '\0';
    return n;
}

/* Copies the value of header `name` when line is that header. */
static void
gz_capture(const char *line, size_t n, const char *name, char *out, size_t cap)
{
    size_t k = strlen(name), v;

    if (n <= k + 1 || strncasecmp(line, name, k) != 0 || line[k] != ':')
        return;
    line += k + 1, n -= k + 1;
    while (n > 0 && (*line == ' ' || *line == '\t'))
        line++, n--;
    while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == '\n'))
        n--;
    /* A second line of the same header is kept: the test wants one. */
    if (out[0] != '\0') {
        snprintf(out, cap, "(repeated)");
        return;
    }
    v = n < cap - 1 ? n : cap - 1;
    memcpy(out, line, v);
    out[v] = '\0';
}

static size_t
gz_header_cb(char *data, size_t size, size_t nmemb, void *arg)
{
    gz_answer *a = arg;
    size_t n = size * nmemb;
    char cl[32] = "";

    gz_capture(data, n, "Content-Encoding", a->encoding, sizeof(a->encoding));
    gz_capture(data, n, "Vary", a->vary, sizeof(a->vary));
    gz_capture(data, n, "Content-Type", a->type, sizeof(a->type));
    gz_capture(data, n, "Idempotent-Replayed", a->replayed,
               sizeof(a->replayed));
    gz_capture(data, n, "Content-Length", cl, sizeof(cl));
    if (cl[0] != '\0')
        a->content_length = strtol(cl, NULL, 10);
    return n;
}

/* Inflates one gzip member; fails the test unless it is exactly one. */
static char *
gz_inflate(const char *in, size_t in_len, size_t *out_len)
{
    z_stream zs;
    size_t cap = 4096;
    char *out = malloc(cap);
    int rv;

    assert_non_null(out);
    memset(&zs, 0, sizeof(zs));
    assert_int_equal(inflateInit2(&zs, 15 + 16), Z_OK);
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)in_len;
    do {
        if (zs.total_out + 1 >= cap) {
            cap *= 2;
            out = realloc(out, cap);
            assert_non_null(out);
        }
        zs.next_out = (Bytef *)out + zs.total_out;
        zs.avail_out = (uInt)(cap - zs.total_out - 1);
        rv = inflate(&zs, Z_NO_FLUSH);
    } while (rv == Z_OK);
    if (rv != Z_STREAM_END)
        fail_msg("not a gzip body: inflate %d", rv);
    assert_int_equal(zs.avail_in, 0);
    *out_len = zs.total_out;
    out[*out_len] = '\0';
    inflateEnd(&zs);
    return out;
}

/*
 * Sends method path (JSON body when body != NULL) with Accept-Encoding
 * `accept` (NULL: no such header; curl_decodes: curl's own, decoded by
 * curl) and an optional Idempotency-Key. Decodes a gzip body itself.
 */
static void
gz_request_ex(const char *method, const char *path, const char *body,
              const char *accept, const char *idem_key, bool curl_decodes,
              gz_answer *a)
{
    CURL *curl = curl_easy_init();
    struct curl_slist *hdrs = NULL;
    char line[512];
    CURLcode cc;

    memset(a, 0, sizeof(*a));
    a->content_length = -1;
    assert_non_null(curl);
    curl_easy_setopt(curl, CURLOPT_URL, cv_test_url(&gz_stack, path));
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, gz_body_cb);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, gz_header_cb);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, a);
    if (curl_decodes)
        curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
    else
        curl_easy_setopt(curl, CURLOPT_HTTP_CONTENT_DECODING, 0L);
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    } else if (body != NULL) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    }
    hdrs = curl_slist_append(hdrs, "Expect:");
    if (accept != NULL) {
        snprintf(line, sizeof(line), "Accept-Encoding: %s", accept);
        hdrs = curl_slist_append(hdrs, line);
    }
    if (gz_request_id != NULL) {
        snprintf(line, sizeof(line), "X-Request-Id: %s", gz_request_id);
        hdrs = curl_slist_append(hdrs, line);
    }
    if (idem_key != NULL) {
        snprintf(line, sizeof(line), "Idempotency-Key: %s", idem_key);
        hdrs = curl_slist_append(hdrs, line);
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
    cc = curl_easy_perform(curl);
    if (cc != CURLE_OK)
        fail_msg("%s %s: %s", method, path, curl_easy_strerror(cc));
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &a->status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(curl);
    if (a->raw == NULL) {
        a->raw = strdup("");
        assert_non_null(a->raw);
    }
    if (!curl_decodes && strcasecmp(a->encoding, "gzip") == 0) {
        a->body = gz_inflate(a->raw, a->raw_len, &a->body_len);
    } else {
        a->body = malloc(a->raw_len + 1);
        assert_non_null(a->body);
        memcpy(a->body, a->raw, a->raw_len + 1);
        a->body_len = a->raw_len;
    }
}

static void
gz_request(const char *method, const char *path, const char *body,
           const char *accept, const char *idem_key, gz_answer *a)
{
    gz_request_ex(method, path, body, accept, idem_key, false, a);
}

static void
gz_free(gz_answer *a)
{
    free(a->raw);
    free(a->body);
    memset(a, 0, sizeof(*a));
}

static void
gz_expect_status(const gz_answer *a, long status, const char *what)
{
    if (a->status != status)
        fail_msg("%s: %ld, expected %ld: %.300s", what, a->status, status,
                 a->body);
}

/* A gzip answer: the header, Vary, and the Content-Length of the bytes. */
static void
gz_expect_gzip(const gz_answer *a, const char *what)
{
    if (strcmp(a->encoding, "gzip") != 0)
        fail_msg("%s: Content-Encoding \"%s\", expected gzip", what,
                 a->encoding);
    if (strstr(a->vary, "Accept-Encoding") == NULL)
        fail_msg("%s: Vary \"%s\" lacks Accept-Encoding", what, a->vary);
    if (a->content_length != (long)a->raw_len)
        fail_msg("%s: Content-Length %ld, %zu bytes received", what,
                 a->content_length, a->raw_len);
    if (a->raw_len >= a->body_len)
        fail_msg("%s: gzip %zu bytes, plain %zu: no gain", what, a->raw_len,
                 a->body_len);
}

/* A plain answer: no Content-Encoding; Vary when the type can vary. */
static void
gz_expect_plain(const gz_answer *a, bool vary, const char *what)
{
    if (a->encoding[0] != '\0')
        fail_msg("%s: Content-Encoding \"%s\", expected none", what,
                 a->encoding);
    if (vary && strstr(a->vary, "Accept-Encoding") == NULL)
        fail_msg("%s: Vary \"%s\" lacks Accept-Encoding", what, a->vary);
    if (!vary && strstr(a->vary, "Accept-Encoding") != NULL)
        fail_msg("%s: Vary \"%s\" names Accept-Encoding", what, a->vary);
    if (a->content_length >= 0 && a->content_length != (long)a->raw_len)
        fail_msg("%s: Content-Length %ld, %zu bytes received", what,
                 a->content_length, a->raw_len);
}

static void
gz_expect_same_body(const gz_answer *a, const gz_answer *b, const char *what)
{
    if (a->body_len != b->body_len || memcmp(a->body, b->body, a->body_len))
        fail_msg(
            "%s: decoded bodies differ (%zu vs %zu bytes):\n%.400s\n%.400s",
            what, a->body_len, b->body_len, a->body, b->body);
}

static void
gz_new_key(char *out, size_t len, const char *what)
{
    snprintf(out, len, "gz-%s-%ld-%d", what, cv_test_now_ms(), rand());
}

/* ---- tests ---- */

/* The acknowledgement: gzip for Python requests' header, and every
 * replay, under each Accept-Encoding, decodes to the same bytes. */
static void
test_gzip_acknowledgement_and_replays(void **state)
{
    static const struct {
        const char *accept;
        bool gzip;
    } replays[] = {
        {NULL, false},
        {"gzip;q=0", false},
        {"identity", false},
        {"deflate, br", false},
        {"gzip;q=0.5, identity", false},
        {"gzip, deflate, br;q=0.9, gzip;q=0", false},
        {"*", true},
        {"x-gzip", true},
        {"GZIP;Q=0.1", true},
        {"br, gzip;q=0.8", true},
    };
    char path[512], key[96];
    gz_answer first, again;
    json_t *doc;

    (void)state;
    snprintf(path, sizeof(path), P "/recovery-escalations/%s/acknowledgements",
             gz_plan);
    gz_new_key(key, sizeof(key), "ack");
    gz_request("POST", path,
               "{\"provider\":\"webhook\",\"acknowledged_by\":\"release-"
               "manager\",\"acknowledgement_state\":\"accepted\",\"external_"
               "ref\":\"INC-456\",\"notes\":\"reviewed\",\"escalation_"
               "reason\":\"recovery SLO breached\"}",
               GZ_REQUESTS, key, &first);
    gz_expect_status(&first, 201, "acknowledgement");
    gz_expect_gzip(&first, "acknowledgement");
    doc = json_loadb(first.body, first.body_len, 0, NULL);
    assert_non_null(doc);
    cv_test_assert_str(doc, "acknowledgement.provider", "webhook");
    cv_test_assert_str(
        doc, "metadata.recovery_escalation_acknowledgement.external_ref",
        "INC-456");
    json_decref(doc);
    print_message("acknowledgement: %zu bytes plain, %zu gzip\n",
                  first.body_len, first.raw_len);
    for (size_t i = 0; i < sizeof(replays) / sizeof(replays[0]); i++) {
        char what[160];

        snprintf(what, sizeof(what), "replay with Accept-Encoding %s",
                 replays[i].accept != NULL ? replays[i].accept : "(none)");
        gz_request("POST", path,
                   "{\"provider\":\"webhook\",\"acknowledged_by\":\"release-"
                   "manager\",\"acknowledgement_state\":\"accepted\","
                   "\"external_ref\":\"INC-456\",\"notes\":\"reviewed\","
                   "\"escalation_reason\":\"recovery SLO breached\"}",
                   replays[i].accept, key, &again);
        gz_expect_status(&again, 200, what);
        assert_string_equal(again.replayed, "true");
        if (replays[i].gzip)
            gz_expect_gzip(&again, what);
        else
            gz_expect_plain(&again, true, what);
        gz_expect_same_body(&first, &again, what);
        gz_free(&again);
    }
    gz_free(&first);
}

/* The retry plan and the schedule-run (the biggest answer): gzip, and a
 * plain replay has the same bytes. */
static void
test_gzip_retry_plan_and_schedule_run(void **state)
{
    char body[512], key[96], run_key[96];
    gz_answer z, plain;

    (void)state;
    snprintf(body, sizeof(body), P "/recovery-escalations/%s/delivery-attempts",
             gz_plan);
    gz_request("POST", body,
               "{\"provider\":\"webhook\",\"success\":false,\"status_code\":"
               "503,\"attempt_count\":1}",
               GZ_REQUESTS, NULL, &z);
    gz_expect_status(&z, 201, "delivery attempt");
    gz_free(&z);

    snprintf(body, sizeof(body),
             "{\"generated_by\":\"console\",\"plan_id\":\"%s\","
             "\"retry_policy\":{\"max_retry_attempts\":3,"
             "\"retry_delay_minutes\":0,\"allow_immediate_retry\":true,"
             "\"backoff_multiplier\":2}}",
             gz_plan);
    gz_new_key(key, sizeof(key), "retry");
    gz_request("POST", P "/recovery-escalations/retry-plan", body, GZ_REQUESTS,
               key, &z);
    gz_expect_status(&z, 201, "retry plan");
    gz_expect_gzip(&z, "retry plan");
    gz_request("POST", P "/recovery-escalations/retry-plan", body, NULL, key,
               &plain);
    gz_expect_status(&plain, 200, "retry plan replay");
    gz_expect_plain(&plain, true, "retry plan replay");
    gz_expect_same_body(&z, &plain, "retry plan");
    print_message("retry plan: %zu bytes plain, %zu gzip\n", z.body_len,
                  z.raw_len);
    gz_free(&z);
    gz_free(&plain);

    snprintf(body, sizeof(body),
             "{\"generated_by\":\"console\",\"recovery_slo_minutes\":240,"
             "\"schedule\":{\"interval_minutes\":60,\"cadence\":\"hourly\","
             "\"enabled\":false,\"schedule_id\":\"gz-%ld\"}}",
             cv_test_now_ms());
    gz_new_key(run_key, sizeof(run_key), "run");
    gz_request("POST", P "/recovery-executive-report/schedule-run", body,
               GZ_REQUESTS, run_key, &z);
    gz_expect_status(&z, 201, "schedule-run");
    gz_expect_gzip(&z, "schedule-run");
    gz_request("POST", P "/recovery-executive-report/schedule-run", body,
               "gzip;q=0", run_key, &plain);
    gz_expect_status(&plain, 200, "schedule-run replay");
    gz_expect_plain(&plain, true, "schedule-run replay");
    gz_expect_same_body(&z, &plain, "schedule-run");
    print_message("schedule-run: %zu bytes plain, %zu gzip\n", z.body_len,
                  z.raw_len);
    gz_free(&z);
    gz_free(&plain);
}

/* Reads that do not change between two calls: the plan, the OpenAPI
 * document and the console's files, gzip and plain. */
static void
test_gzip_reads_and_console(void **state)
{
    char path[512];
    const char *paths[] = {path, "/openapi.json", "/", "/console/app.js",
                           "/console/style.css"};
    gz_answer z, plain;

    (void)state;
    snprintf(path, sizeof(path), P "/recovery-escalations/%s", gz_plan);
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        gz_request("GET", paths[i], NULL, GZ_REQUESTS, NULL, &z);
        gz_expect_status(&z, 200, paths[i]);
        gz_expect_gzip(&z, paths[i]);
        gz_request("GET", paths[i], NULL, NULL, NULL, &plain);
        gz_expect_status(&plain, 200, paths[i]);
        gz_expect_plain(&plain, true, paths[i]);
        gz_expect_same_body(&z, &plain, paths[i]);
        gz_free(&z);
        gz_free(&plain);
    }
    /* Prometheus asks for gzip: /metrics is text, it gets it. */
    gz_request("GET", "/metrics", NULL, "gzip", NULL, &z);
    gz_expect_status(&z, 200, "/metrics");
    gz_expect_gzip(&z, "/metrics");
    assert_non_null(strstr(z.body, "cavra_http_requests_total"));
    gz_free(&z);
}

/* Small answers and errors stay plain (under the threshold), still with
 * Vary; a HEAD is answered like its GET (Content-Length of the body it
 * would send, no body). */
static void
test_gzip_small_errors_head(void **state)
{
    gz_answer a;
    json_t *doc;

    (void)state;
    gz_request("GET", "/healthz", NULL, GZ_REQUESTS, NULL, &a);
    gz_expect_status(&a, 200, "/healthz");
    gz_expect_plain(&a, true, "/healthz");
    gz_free(&a);

    gz_request("GET",
               P "/recovery-escalations/gordackrecoveryesc-"
                 "0123456789abcdef",
               NULL, GZ_REQUESTS, NULL, &a);
    gz_expect_status(&a, 404, "unknown plan");
    gz_expect_plain(&a, true, "unknown plan");
    doc = json_loadb(a.body, a.body_len, 0, NULL);
    assert_non_null(doc);
    cv_test_assert_str(doc, "code", "NOT_FOUND");
    json_decref(doc);
    gz_free(&a);

    gz_request("POST", P "/recovery-escalations/retry-plan",
               "{\"retry_policy\":{\"max_retry_attempts\":0}}", GZ_REQUESTS,
               NULL, &a);
    gz_expect_status(&a, 400, "bad retry policy");
    gz_expect_plain(&a, true, "bad retry policy");
    assert_non_null(strstr(a.body, "max_retry_attempts"));
    gz_free(&a);

    /* The gateway answers HEAD of a route 405 (GET only): the headers
     * and Content-Length are those of that answer, with no body. */
    {
        char path[512];
        gz_answer get;

        snprintf(path, sizeof(path), P "/recovery-escalations/%s", gz_plan);
        gz_request_id = "gz-head-test";
        gz_request("HEAD", path, NULL, GZ_REQUESTS, NULL, &a);
        gz_expect_status(&a, 405, "HEAD");
        assert_int_equal(a.raw_len, 0);
        assert_true(a.content_length > 0);
        assert_non_null(strstr(a.vary, "Accept-Encoding"));
        assert_string_equal(a.encoding, "");
        /* The same request as a PUT gets the same answer with its body. */
        gz_request("PUT", path, "{}", GZ_REQUESTS, NULL, &get);
        gz_request_id = NULL;
        gz_expect_status(&get, 405, "PUT");
        assert_int_equal(a.content_length, (long)get.raw_len);
        gz_free(&get);
        gz_free(&a);
    }
}

/* Raw bytes (C2SP tiles) are never compressed and do not vary. */
static void
test_gzip_tiles_stay_raw(void **state)
{
    char path[128];
    long size;
    gz_answer a;

    (void)state;
    /* Wait until the sequencer has given every event its leaf. */
    for (int i = 0; i < 300 && cv_test_db_scalar("SELECT count(*) FROM "
                                                 "evidence_unsequenced",
                                                 NULL) > 0;
         i++)
        cv_test_sleep_ms(100);
    size = cv_test_db_scalar("SELECT coalesce(max(seq), 0) FROM "
                             "evidence_leaves",
                             NULL);
    assert_true(size > 0);
    if (size >= 256)
        snprintf(path, sizeof(path), "/runtime/evidence/tile/entries/000");
    else
        snprintf(path, sizeof(path), "/runtime/evidence/tile/entries/000.p/%ld",
                 size);
    gz_request("GET", path, NULL, GZ_REQUESTS, NULL, &a);
    gz_expect_status(&a, 200, path);
    assert_non_null(strstr(a.type, "application/octet-stream"));
    /* Entry bundles hold JSON: big enough to compress, yet sent raw. */
    assert_true(a.raw_len > 256);
    gz_expect_plain(&a, false, path);
    gz_free(&a);
    /* The hash tile: 32 bytes a leaf. */
    if (size >= 256)
        snprintf(path, sizeof(path), "/runtime/evidence/tile/0/000");
    else
        snprintf(path, sizeof(path), "/runtime/evidence/tile/0/000.p/%ld",
                 size);
    gz_request("GET", path, NULL, GZ_REQUESTS, NULL, &a);
    gz_expect_status(&a, 200, path);
    assert_int_equal(a.raw_len % 32, 0);
    gz_expect_plain(&a, false, path);
    gz_free(&a);
}

/* A client that lets its HTTP library decode (Python requests does) gets
 * the JSON with every key. */
static void
test_gzip_client_decodes(void **state)
{
    char path[512];
    gz_answer a;
    json_t *doc;

    (void)state;
    snprintf(path, sizeof(path), P "/recovery-escalations/%s/acknowledgements",
             gz_plan);
    gz_request_ex("POST", path,
                  "{\"provider\":\"webhook\",\"acknowledged_by\":\"bob\","
                  "\"acknowledgement_state\":\"deferred\"}",
                  NULL, NULL, true, &a);
    gz_expect_status(&a, 201, "acknowledgement decoded by curl");
    assert_string_equal(a.encoding, "gzip");
    doc = json_loadb(a.body, a.body_len, 0, NULL);
    assert_non_null(doc);
    cv_test_assert_str(doc, "acknowledgement.acknowledgement_state",
                       "deferred");
    cv_test_assert_str(doc, "metadata.schema_version",
                       "cavra.evidence.metadata.v1");
    json_decref(doc);
    gz_free(&a);
}

static int
gz_setup(void **state)
{
    (void)state;
    if (cv_test_stack_start(&gz_stack, CV_STACK_ALL) != 0)
        return -1;
    gz_plan = cv_test_record_plan_http(
        &gz_stack,
        "{\"generated_by\":\"gzip-test\",\"escalation_routes\":"
        "[{\"provider\":\"webhook\",\"severity\":\"critical\","
        "\"category\":\"connector-recovery\",\"closure_state\":\"open\","
        "\"age_minutes\":300,\"slo_breached\":true}]}");
    return gz_plan != NULL ? 0 : -1;
}

static int
gz_teardown(void **state)
{
    (void)state;
    free(gz_plan);
    return cv_test_stack_stop(&gz_stack);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gzip_acknowledgement_and_replays),
        cmocka_unit_test(test_gzip_retry_plan_and_schedule_run),
        cmocka_unit_test(test_gzip_reads_and_console),
        cmocka_unit_test(test_gzip_small_errors_head),
        cmocka_unit_test(test_gzip_tiles_stay_raw),
        cmocka_unit_test(test_gzip_client_decodes),
    };

    curl_global_init(CURL_GLOBAL_DEFAULT);
    return cmocka_run_group_tests(tests, gz_setup, gz_teardown);
}
