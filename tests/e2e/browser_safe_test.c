/*
 * browser_safe_test.c -- end-to-end: a web page the operator visits cannot
 * drive the sandbox gateway (issue 10, item 3), and an oversized body is
 * refused before it is read (item 4).
 *
 * Each rule is shown with a refused and a served request, and every
 * refusal stores nothing (row counts of every table, before and after):
 *   content type  every POST declares application/json, an empty body too
 *                 (what a cross-site no-cors fetch sends is text/plain);
 *                 "; charset=utf-8" is fine; else 415 naming the header.
 *   host          the Host header names the gateway (listen address and
 *                 loopback names with its port in sandbox mode), else 421;
 *                 a configured CAVRA_GATEWAY_ALLOWED_HOSTS replaces them;
 *                 no Host at all (HTTP/1.0) is served; /healthz is exempt.
 *   origin        a POST from another origin (another host or port,
 *                 "null") is 403; the gateway's own origin is served; no
 *                 CORS header is sent, but to CAVRA_GATEWAY_CORS_ORIGINS
 *                 (preflight 204, may POST).
 *   body size     a Content-Length over 64 KiB is answered 413 at once,
 *                 with no byte of the body sent; a chunked body over it
 *                 is 413 at its end; one past 1 MiB is cut (closed).
 *
 * Needs CAVRA_DATABASE_URL pointing at a migrated database (scripts/test.sh
 * sets it). Run: ctest -R e2e.browser_safe, or the binary alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cv_test_api.h"

#define P                                                                      \
    "/runtime/go-pilot/rollback-drill-notifications/acknowledgements/"         \
    "audit-delivery"
#define BS_RETRY_PATH  P "/recovery-escalations/retry-plan"
#define BS_RETRY_COUNT "SELECT count(*) FROM retry_plans"

static cv_test_stack bs_stack;

static int
bs_setup(void **state)
{
    (void)state;
    return cv_test_stack_start(&bs_stack, CV_STACK_ALL);
}

static int
bs_teardown(void **state)
{
    (void)state;
    return cv_test_stack_stop(&bs_stack);
}

/* ---- a raw HTTP exchange (headers curl would fix for us) ---- */

/* Sends req (len bytes) on a fresh connection to port, then reads until
 * the peer closes or 5 s pass. Returns the status (0: no answer); the
 * answer's text in buf. *ms gets the time to the answer. */
static int
bs_raw(int port, const char *req, size_t len, char *buf, size_t cap, long *ms)
{
    struct sockaddr_in addr;
    long t0 = cv_test_now_ms();
    size_t got = 0, sent = 0;
    int fd, status = 0;

    buf[0] = '\0';
    if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
        return 0;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        close(fd);
        return 0;
    }
    while (sent < len) {
        ssize_t n = send(fd, req + sent, len - sent, MSG_NOSIGNAL);

        if (n <= 0)
            break; /* the gateway closed: read what it answered */
        sent += (size_t)n;
    }
    for (;;) {
        struct pollfd pfd = {fd, POLLIN, 0};
        ssize_t n;

        if (got >= cap - 1 || poll(&pfd, 1, 5000) != 1)
            break;
        if ((n = recv(fd, buf + got, cap - 1 - got, 0)) <= 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    if (ms != NULL)
        *ms = cv_test_now_ms() - t0;
    close(fd);
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
        status = 0;
    return status;
}

/* True when an answer's text carries any Access-Control-* header. */
static bool
bs_has_cors(const char *answer)
{
    for (const char *p = answer; *p != '\0'; p++)
        if (strncasecmp(p, "\nAccess-Control-", 16) == 0)
            return true;
    return false;
}

/* One request through the stack's client with extra header lines. */
static long
bs_request(const char *method, const char *path, const char *ctype,
           const char *body, const char *h1, const char *h2,
           cv_http_response *r)
{
    const char *hdrs[3] = {h1, h2, NULL};

    if (h1 == NULL)
        hdrs[0] = h2, hdrs[1] = NULL;
    cv_test_request(&bs_stack, method, path, ctype, body, hdrs, r);
    return r->status;
}

/* A refused request: status, the error body naming `names`, and nothing
 * stored. */
static void
bs_refused(const char *method, const char *path, const char *ctype,
           const char *body, const char *h1, const char *h2, long status,
           const char *code, const char *names)
{
    cv_test_counts before;
    cv_http_response r;
    char detail[64];

    cv_test_counts_snapshot(&before);
    bs_request(method, path, ctype, body, h1, h2, &r);
    snprintf(detail, sizeof(detail), "~%s", names);
    cv_test_assert_error(&r, status, code, detail);
    cv_http_response_free(&r);
    cv_test_counts_unchanged(&before, names);
}

/* A served POST of the retry plan: 201 and one more retry plan. */
static void
bs_served_post(const char *ctype, const char *body, const char *h1,
               const char *h2)
{
    long before = cv_test_count(BS_RETRY_COUNT, NULL);
    cv_http_response r;

    if (bs_request("POST", BS_RETRY_PATH, ctype, body, h1, h2, &r) != 201)
        fail_msg("POST %s (%s, %s): %ld %s", BS_RETRY_PATH,
                 ctype != NULL ? ctype : "json", h1 != NULL ? h1 : "-",
                 r.status, r.body);
    cv_http_response_free(&r);
    assert_int_equal(cv_test_count(BS_RETRY_COUNT, NULL), before + 1);
}

/* ---- Content-Type ---- */

static void
test_browser_safe_content_type(void **state)
{
    (void)state;
    /* What a cross-site no-cors fetch sends: answered 201 before. */
    bs_refused("POST", BS_RETRY_PATH, "text/plain", "", NULL, NULL, 415,
               "INVALID_ARGUMENT", "Content-Type");
    bs_refused("POST", BS_RETRY_PATH, "text/plain;charset=UTF-8", "{}", NULL,
               NULL, 415, "INVALID_ARGUMENT", "Content-Type");
    bs_refused("POST", BS_RETRY_PATH, "application/x-www-form-urlencoded", "",
               NULL, NULL, 415, "INVALID_ARGUMENT", "Content-Type");
    bs_refused("POST", BS_RETRY_PATH, "multipart/form-data; boundary=x", "",
               NULL, NULL, 415, "INVALID_ARGUMENT", "Content-Type");
    bs_refused("POST", BS_RETRY_PATH, "application/jsonx", "{}", NULL, NULL,
               415, "INVALID_ARGUMENT", "Content-Type");
    /* No Content-Type at all, empty body. */
    bs_refused("POST", BS_RETRY_PATH, "", NULL, NULL, NULL, 415,
               "INVALID_ARGUMENT", "Content-Type");
    /* Served: JSON, empty or not, with a charset parameter. */
    bs_served_post("application/json", "", NULL, NULL);
    bs_served_post("application/json; charset=utf-8", "{}", NULL, NULL);
    bs_served_post("Application/JSON;charset=UTF-8", "", NULL, NULL);
}

/* ---- Host ---- */

static void
test_browser_safe_host(void **state)
{
    char own[64], loop[64], six[64], other_port[64], buf[4096];
    const char *api_get = "/runtime/go-pilot/rollback-drill-notifications/"
                          "dashboard";
    cv_http_response r;
    int port = bs_stack.gateway_port;

    (void)state;
    snprintf(own, sizeof(own), "Host: 127.0.0.1:%d", port);
    snprintf(loop, sizeof(loop), "Host: localhost:%d", port);
    snprintf(six, sizeof(six), "Host: [::1]:%d", port);
    snprintf(other_port, sizeof(other_port), "Host: 127.0.0.1:%d",
             port == 65535 ? 1 : port + 1);
    /* DNS rebinding: the attacker's name with our address. */
    bs_refused("POST", BS_RETRY_PATH, NULL, "", "Host: evil.example", NULL, 421,
               "FAILED_PRECONDITION", "Host");
    bs_refused("POST", BS_RETRY_PATH, NULL, "", "Host: evil.example:12345",
               NULL, 421, "FAILED_PRECONDITION", "Host");
    bs_refused("POST", BS_RETRY_PATH, NULL, "", other_port, NULL, 421,
               "FAILED_PRECONDITION", "Host");
    bs_refused("GET", api_get, NULL, NULL, "Host: evil.example", NULL, 421,
               "FAILED_PRECONDITION", "Host");
    bs_refused("GET", "/metrics", NULL, NULL, "Host: 127.0.0.1.evil.example",
               NULL, 421, "FAILED_PRECONDITION", "Host");
    bs_refused("GET", "/", NULL, NULL, "Host: evil.example", NULL, 421,
               "FAILED_PRECONDITION", "Host");
    /* Served: the listen address and the loopback names, with the port or
     * without one. */
    bs_served_post(NULL, "", own, NULL);
    bs_served_post(NULL, "", loop, NULL);
    bs_served_post(NULL, "", six, NULL);
    bs_served_post(NULL, "", "Host: LOCALHOST", NULL);
    assert_int_equal(bs_request("GET", api_get, NULL, NULL, loop, NULL, &r),
                     200);
    cv_http_response_free(&r);
    /* Probes are exempt: a container probe uses the name it has. */
    assert_int_equal(
        bs_request("GET", "/healthz", NULL, NULL, "Host: gw", NULL, &r), 200);
    cv_http_response_free(&r);
    /* No Host at all (HTTP/1.0): served; browsers always send one. */
    {
        const char *req = "GET /openapi.json HTTP/1.0\r\n\r\n";
        const char *bad =
            "GET /openapi.json HTTP/1.0\r\nHost: evil.example\r\n\r\n";

        assert_int_equal(bs_raw(port, req, strlen(req), buf, sizeof(buf), NULL),
                         200);
        assert_int_equal(bs_raw(port, bad, strlen(bad), buf, sizeof(buf), NULL),
                         421);
    }
}

/* CAVRA_GATEWAY_CORS_ORIGINS: those origins (only) get CORS headers, a
 * preflight, and may POST. */
static void
bs_cors_configured(void)
{
    int port = bs_stack.gateway_port;
    char req[1024], buf[8192];
    long n = cv_test_count(BS_RETRY_COUNT, NULL);
    cv_test_counts before;

    snprintf(req, sizeof(req),
             "OPTIONS %s HTTP/1.1\r\nHost: cavra.test\r\n"
             "Origin: http://localhost:3000\r\n"
             "Access-Control-Request-Method: POST\r\n"
             "Access-Control-Request-Headers: content-type\r\n"
             "Connection: close\r\n\r\n",
             BS_RETRY_PATH);
    assert_int_equal(bs_raw(port, req, strlen(req), buf, sizeof(buf), NULL),
                     204);
    assert_non_null(
        strstr(buf, "Access-Control-Allow-Origin: http://localhost:3000\r\n"));
    assert_non_null(strstr(buf, "Content-Type"));
    snprintf(req, sizeof(req),
             "POST %s HTTP/1.1\r\nHost: cavra.test\r\n"
             "Origin: https://ops.example\r\n"
             "Content-Type: application/json\r\nContent-Length: 0\r\n"
             "Connection: close\r\n\r\n",
             BS_RETRY_PATH);
    assert_int_equal(bs_raw(port, req, strlen(req), buf, sizeof(buf), NULL),
                     201);
    assert_non_null(
        strstr(buf, "Access-Control-Allow-Origin: https://ops.example\r\n"));
    assert_int_equal(cv_test_count(BS_RETRY_COUNT, NULL), n + 1);
    /* Another port of a listed host is not listed. */
    cv_test_counts_snapshot(&before);
    snprintf(req, sizeof(req),
             "POST %s HTTP/1.1\r\nHost: cavra.test\r\n"
             "Origin: http://localhost:3001\r\n"
             "Content-Type: application/json\r\nContent-Length: 0\r\n"
             "Connection: close\r\n\r\n",
             BS_RETRY_PATH);
    assert_int_equal(bs_raw(port, req, strlen(req), buf, sizeof(buf), NULL),
                     403);
    if (bs_has_cors(buf))
        fail_msg("an unlisted origin got a CORS header: %.300s", buf);
    snprintf(req, sizeof(req),
             "OPTIONS %s HTTP/1.1\r\nHost: cavra.test\r\n"
             "Origin: http://localhost:3001\r\n"
             "Access-Control-Request-Method: POST\r\n"
             "Connection: close\r\n\r\n",
             BS_RETRY_PATH);
    assert_int_not_equal(bs_raw(port, req, strlen(req), buf, sizeof(buf), NULL),
                         204);
    if (bs_has_cors(buf))
        fail_msg("an unlisted preflight got a CORS header: %.300s", buf);
    cv_test_counts_unchanged(&before, "unlisted CORS origin");
}

/* A configured list replaces the defaults. */
static void
test_browser_safe_host_configured(void **state)
{
    char own[64];
    cv_http_response r;

    (void)state;
    assert_int_equal(cv_test_stack_stop(&bs_stack), 0);
    setenv("CAVRA_GATEWAY_ALLOWED_HOSTS", " cavra.test , gw.test:443", 1);
    setenv("CAVRA_GATEWAY_CORS_ORIGINS",
           "https://ops.example:443, http://localhost:3000", 1);
    assert_int_equal(cv_test_stack_start(&bs_stack, CV_STACK_ALL), 0);
    unsetenv("CAVRA_GATEWAY_ALLOWED_HOSTS");
    unsetenv("CAVRA_GATEWAY_CORS_ORIGINS");
    snprintf(own, sizeof(own), "Host: 127.0.0.1:%d", bs_stack.gateway_port);
    bs_refused("POST", BS_RETRY_PATH, NULL, "", own, NULL, 421,
               "FAILED_PRECONDITION", "Host");
    bs_refused("POST", BS_RETRY_PATH, NULL, "", "Host: gw.test:444", NULL, 421,
               "FAILED_PRECONDITION", "Host");
    bs_served_post(NULL, "", "Host: cavra.test:8443", NULL);
    bs_served_post(NULL, "", "Host: gw.test:443", NULL);
    /* The Origin follows the list: scheme-implied ports count. */
    bs_served_post(NULL, "", "Host: gw.test", "Origin: https://gw.test");
    bs_refused("POST", BS_RETRY_PATH, NULL, "", "Host: gw.test",
               "Origin: http://gw.test", 403, "PERMISSION_DENIED", "Origin");
    assert_int_equal(bs_request("GET", "/openapi.json", NULL, NULL,
                                "Host: cavra.test", NULL, &r),
                     200);
    cv_http_response_free(&r);
    bs_cors_configured();
    /* Back to the defaults for the tests after this one. */
    assert_int_equal(cv_test_stack_stop(&bs_stack), 0);
    assert_int_equal(cv_test_stack_start(&bs_stack, CV_STACK_ALL), 0);
}

/* ---- Origin ---- */

static void
test_browser_safe_origin(void **state)
{
    char own[64], loop[64], other_port[64], req[512], buf[8192];
    int port = bs_stack.gateway_port;
    cv_http_response r;

    (void)state;
    snprintf(own, sizeof(own), "Origin: http://127.0.0.1:%d", port);
    snprintf(loop, sizeof(loop), "Origin: http://localhost:%d", port);
    snprintf(other_port, sizeof(other_port), "Origin: http://127.0.0.1:%d",
             port == 65535 ? 1 : port + 1);
    bs_refused("POST", BS_RETRY_PATH, NULL, "", "Origin: http://evil.example",
               NULL, 403, "PERMISSION_DENIED", "Origin");
    /* Another port on the same host is another origin. */
    bs_refused("POST", BS_RETRY_PATH, NULL, "", other_port, NULL, 403,
               "PERMISSION_DENIED", "Origin");
    /* Sandboxed frames and file:// pages say "null". */
    bs_refused("POST", BS_RETRY_PATH, NULL, "", "Origin: null", NULL, 403,
               "PERMISSION_DENIED", "Origin");
    bs_refused("POST", BS_RETRY_PATH, NULL, "", "Origin: http://127.0.0.1",
               NULL, 403, "PERMISSION_DENIED", "Origin");
    /* Even JSON with the right Host: the Origin decides. */
    bs_refused("POST", CV_TEST_PLAN_PATH, NULL,
               "{\"escalation_routes\": [{\"provider\": \"slack\"}]}",
               "Origin: https://evil.example", NULL, 403, "PERMISSION_DENIED",
               "Origin");
    /* Served: the gateway's own origin (the console's fetch). */
    bs_served_post(NULL, "", own, NULL);
    bs_served_post(NULL, "", loop, NULL);
    /* Reads are not refused (a browser cannot read them cross-site: no
     * CORS header is ever sent). */
    assert_int_equal(bs_request("GET", "/openapi.json", NULL, NULL,
                                "Origin: http://evil.example", NULL, &r),
                     200);
    cv_http_response_free(&r);
    snprintf(req, sizeof(req),
             "GET /openapi.json HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
             "Origin: http://evil.example\r\nConnection: close\r\n\r\n",
             port);
    assert_int_equal(bs_raw(port, req, strlen(req), buf, sizeof(buf), NULL),
                     200);
    if (bs_has_cors(buf))
        fail_msg("a CORS header was sent: %.300s", buf);
    /* A preflight finds no CORS either. */
    snprintf(req, sizeof(req),
             "OPTIONS %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
             "Origin: http://evil.example\r\n"
             "Access-Control-Request-Method: POST\r\n"
             "Connection: close\r\n\r\n",
             BS_RETRY_PATH, port);
    bs_raw(port, req, strlen(req), buf, sizeof(buf), NULL);
    if (bs_has_cors(buf))
        fail_msg("a preflight got a CORS header: %.300s", buf);
}

/* ---- body size ---- */

static void
test_browser_safe_body_size(void **state)
{
    int port = bs_stack.gateway_port;
    char head[512], buf[8192];
    cv_test_counts before;
    long ms;
    char *req;
    size_t len;

    (void)state;
    /* A Content-Length over the limit, no body sent: the answer comes at
     * once, so the gateway did not wait for (read) the body. */
    cv_test_counts_snapshot(&before);
    snprintf(head, sizeof(head),
             "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
             "Content-Type: application/json\r\nContent-Length: 10000000\r\n"
             "\r\n",
             BS_RETRY_PATH, port);
    assert_int_equal(bs_raw(port, head, strlen(head), buf, sizeof(buf), &ms),
                     413);
    if (ms > 2000)
        fail_msg("413 took %ld ms: the gateway waited for the body", ms);
    assert_non_null(strstr(buf, "65536"));
    assert_non_null(strstr(buf, "\"code\":\"RESOURCE_EXHAUSTED\""));
    /* 65537 is over; exactly at the limit is read (and judged as JSON). */
    snprintf(head, sizeof(head),
             "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
             "Content-Type: application/json\r\nContent-Length: 65537\r\n"
             "\r\n",
             BS_RETRY_PATH, port);
    assert_int_equal(bs_raw(port, head, strlen(head), buf, sizeof(buf), &ms),
                     413);
    assert_true(ms < 2000);

    /* A chunked body over the limit: 413 at its end, nothing stored. */
    len = 0;
    req = malloc(2 * 1024 * 1024 + 4096);
    assert_non_null(req);
    len += (size_t)sprintf(req,
                           "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                           "Content-Type: application/json\r\n"
                           "Transfer-Encoding: chunked\r\n"
                           "Connection: close\r\n\r\n",
                           BS_RETRY_PATH, port);
    for (int i = 0; i < 10; i++) { /* 10 x 8 KiB = 80 KiB */
        len += (size_t)sprintf(req + len, "2000\r\n");
        memset(req + len, ' ', 0x2000);
        len += 0x2000;
        len += (size_t)sprintf(req + len, "\r\n");
    }
    len += (size_t)sprintf(req + len, "0\r\n\r\n");
    assert_int_equal(bs_raw(port, req, len, buf, sizeof(buf), NULL), 413);
    assert_non_null(strstr(buf, "65536"));
    /* The same through libcurl, as `curl -H "Transfer-Encoding: chunked"
     * --data-binary @100k.json` sends it: chunked, 413 at its end. */
    {
        static const char *const te[] = {"Transfer-Encoding: chunked", NULL};
        const size_t n = 100 * 1024;
        char *big = malloc(n + 64);
        cv_http_response r;

        assert_non_null(big);
        memcpy(big, "{\"generated_by\": \"", 17);
        memset(big + 17, 'x', n);
        memcpy(big + 17 + n, "\"}", 3);
        cv_test_request(&bs_stack, "POST", BS_RETRY_PATH, "application/json",
                        big, te, &r);
        if (r.status != 413 || strstr(r.body, "65536") == NULL)
            fail_msg("a chunked 100 KiB body through libcurl: %ld %s", r.status,
                     r.body);
        cv_http_response_free(&r);
        free(big);
    }
    /* One that goes on past 1 MiB is cut: the connection closes with no
     * answer, or with the 413, never a stored record. */
    len = (size_t)sprintf(req,
                          "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                          "Content-Type: application/json\r\n"
                          "Transfer-Encoding: chunked\r\n\r\n",
                          BS_RETRY_PATH, port);
    for (int i = 0; i < 256; i++) { /* 256 x 8 KiB = 2 MiB, no last chunk */
        len += (size_t)sprintf(req + len, "2000\r\n");
        memset(req + len, ' ', 0x2000);
        len += 0x2000;
        len += (size_t)sprintf(req + len, "\r\n");
    }
    {
        int status = bs_raw(port, req, len, buf, sizeof(buf), &ms);

        if (status != 0 && status != 413)
            fail_msg("an endless chunked body got %d", status);
        if (ms > 4500)
            fail_msg("an endless chunked body was not cut (%ld ms)", ms);
    }
    free(req);
    cv_test_counts_unchanged(&before, "oversized bodies");

    /* Served: a chunked JSON body within the limit. */
    {
        long n = cv_test_count(BS_RETRY_COUNT, NULL);
        const char *small =
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
            "Connection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n";

        snprintf(head, sizeof(head),
                 "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s", BS_RETRY_PATH,
                 port, small);
        assert_int_equal(
            bs_raw(port, head, strlen(head), buf, sizeof(buf), NULL), 201);
        assert_int_equal(cv_test_count(BS_RETRY_COUNT, NULL), n + 1);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_browser_safe_content_type),
        cmocka_unit_test(test_browser_safe_host),
        cmocka_unit_test(test_browser_safe_origin),
        cmocka_unit_test(test_browser_safe_body_size),
        cmocka_unit_test(test_browser_safe_host_configured),
    };

    return cmocka_run_group_tests(tests, bs_setup, bs_teardown);
}
