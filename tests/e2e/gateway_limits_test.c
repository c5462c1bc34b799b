/*
 * gateway_limits_test.c -- the gateway under connection floods, its 503
 * accounting and its shutdown under load (issue 7, items 5 to 7).
 *
 *  - One client (127.0.0.2) holds a few hundred idle connections, half of
 *    them with a request begun and never finished; another client
 *    (127.0.0.1) must still get every answer within 100 ms. The flooder
 *    keeps at most its per-client share (CAVRA_GATEWAY_PER_IP_CONNECTIONS,
 *    256 by default), the rest are closed at once and counted, and silent
 *    connections are closed after the idle timeout.
 *  - A service stopped: the call answers 503 with the documented error body,
 * and cavra_http_503_total{cause="service_unavailable"},
 *    cavra_rpc_unavailable_total and {cause="not_ready"} count it; the
 *    gateway log has one JSON line per request, the 503s with their cause.
 *  - SIGTERM while client threads send requests, some of them stuck on a
 *    stopped (SIGSTOP) service: the gateway exits 0 within the stack's
 *    stop limit, with no sanitizer report in its log.
 *
 * The stack runs with a 3 s idle timeout (set in the environment before
 * it starts). Run: ctest -R e2e.gateway_limits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cv_test_api.h"

#define GLT_FLOOD_FROM   "127.0.0.2"
#define GLT_CLIENT_FROM  "127.0.0.1"
#define GLT_FLOOD        300 /* more than the per-client limit */
#define GLT_PER_IP_LIMIT 256 /* the gateway's default */
#define GLT_IDLE_S       3
#define GLT_MAX_MS       100.0
#define GLT_PLAN_BODY    "{\"escalation_routes\": [{\"provider\": \"slack\"}]}"

static cv_test_stack glt_stack;

/* ---- raw sockets -------------------------------------------------------- */

static double
glt_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* A TCP connection from address `from` to the gateway (nonblocking when
 * asked: then possibly still connecting); -1 on failure. */
static int
glt_connect(const char *from, int nonblock)
{
    struct sockaddr_in src, dst;
    int fd = socket(AF_INET, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0);

    if (fd < 0)
        return -1;
    memset(&src, 0, sizeof(src));
    src.sin_family = AF_INET;
    inet_pton(AF_INET, from, &src.sin_addr);
    memset(&dst, 0, sizeof(dst));
    dst.sin_family = AF_INET;
    dst.sin_port = htons((uint16_t)glt_stack.gateway_port);
    inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    if (bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0 ||
        (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) != 0 &&
         !(nonblock && errno == EINPROGRESS))) {
        close(fd);
        return -1;
    }
    return fd;
}

/* 1 while the gateway keeps fd open (nothing to read, no EOF). */
static int
glt_open(int fd)
{
    char c;

    return fd >= 0 && recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) < 0 &&
           (errno == EAGAIN || errno == EWOULDBLOCK);
}

static int
glt_count_open(const int *fds, int n)
{
    int k = 0;

    for (int i = 0; i < n; i++)
        k += glt_open(fds[i]);
    return k;
}

/* GET path on a fresh connection from 127.0.0.1; returns the status and
 * the milliseconds from connect to the end of the answer in *ms (0 when
 * no answer came within 5 s). */
static int
glt_timed_get(const char *path, double *ms)
{
    char req[256], buf[512];
    double t0 = glt_now_ms();
    size_t got = 0;
    int fd, status = 0;

    *ms = 0;
    snprintf(req, sizeof(req),
             "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
             path);
    if ((fd = glt_connect(GLT_CLIENT_FROM, 0)) < 0)
        return 0;
    if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req)) {
        close(fd);
        return 0;
    }
    for (;;) {
        struct pollfd pfd = {fd, POLLIN, 0};
        ssize_t n;

        if (poll(&pfd, 1, 5000) != 1)
            break;
        if (got >= sizeof(buf) - 1)
            got = 16; /* keep the status line, drop the rest */
        n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
        if (n <= 0) {
            buf[got] = '\0';
            if (got >= 12 && strncmp(buf, "HTTP/1.1 ", 9) == 0)
                status = atoi(buf + 9);
            *ms = glt_now_ms() - t0;
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    return status;
}

/* ---- metrics and logs -----------------------------------------------------
 */

static unsigned long long
glt_metric(const char *series)
{
    cv_http_response r;
    unsigned long long v = 0;
    size_t n = strlen(series);

    cv_test_request(&glt_stack, "GET", "/metrics", NULL, NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    for (const char *p = r.body; p != NULL && *p != '\0';) {
        const char *eol = strchr(p, '\n');

        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            v = strtoull(p + n + 1, NULL, 10);
        p = eol != NULL ? eol + 1 : NULL;
    }
    cv_http_response_free(&r);
    return v;
}

/* The gateway's log so far (malloc'd). */
static char *
glt_gateway_log(void)
{
    char path[400];
    FILE *f;
    char *buf;
    long n;
    size_t got;

    snprintf(path, sizeof(path), "%s/gateway.log", glt_stack.dir);
    f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    got = fread(buf, 1, (size_t)n, f);
    buf[got] = '\0';
    fclose(f);
    return buf;
}

/* The JSON request line of request_id in the gateway log (a new
 * reference), or NULL. The line is written once the answer is sent. */
static json_t *
glt_request_line(const char *request_id)
{
    for (int attempt = 0; attempt < 40; attempt++) {
        char *log = glt_gateway_log();
        json_t *found = NULL;

        for (char *line = strtok(log, "\n"); line != NULL && found == NULL;
             line = strtok(NULL, "\n")) {
            json_t *doc;

            if (line[0] != '{' || strstr(line, request_id) == NULL)
                continue;
            doc = json_loads(line, 0, NULL);
            if (doc != NULL &&
                strcmp(json_string_value(json_object_get(doc, "id")) != NULL
                           ? json_string_value(json_object_get(doc, "id"))
                           : "",
                       "GW-REQUEST") == 0)
                found = doc;
            else
                json_decref(doc);
        }
        free(log);
        if (found != NULL)
            return found;
        cv_test_sleep_ms(50);
    }
    return NULL;
}

/* ---- setup ------------------------------------------------------------ */

static int
glt_setup(void **state)
{
    char idle[16];
    struct rlimit rl;

    (void)state;
    /* The stack's processes inherit our environment. */
    snprintf(idle, sizeof(idle), "%d", GLT_IDLE_S);
    setenv("CAVRA_GATEWAY_IDLE_TIMEOUT_S", idle, 1);
    /* The default 10 s: calls to a frozen service outlast the 3 s of
     * grace a stopping gateway gives them, and must be cancelled. */
    unsetenv("CAVRA_RPC_TIMEOUT_MS");
    unsetenv("CAVRA_GATEWAY_PER_IP_CONNECTIONS");
    unsetenv("CAVRA_LOG_LEVEL");
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    return cv_test_stack_start(&glt_stack, CV_STACK_ALL);
}

static int
glt_teardown(void **state)
{
    (void)state;
    return cv_test_stack_stop(&glt_stack);
}

/* ---- tests ------------------------------------------------------------ */

static void
test_gateway_limits_idle_flood_others_answered(void **state)
{
    static int fds[GLT_FLOOD];
    static const char *const paths[] = {"/healthz", "/readyz", "/metrics"};
    unsigned long long rejected_before =
        glt_metric("cavra_http_connections_rejected_total");
    double worst = 0, t_open;
    int held, held_after, answered = 0;

    (void)state;
    /* The flood: connections that send nothing, and connections that
     * begin a request and never finish it. */
    t_open = glt_now_ms();
    for (int i = 0; i < GLT_FLOOD; i++)
        fds[i] = glt_connect(GLT_FLOOD_FROM, 1);
    for (int i = 0; i < GLT_FLOOD; i++) {
        struct pollfd pfd = {fds[i], POLLOUT, 0};

        if (fds[i] < 0)
            fail_msg("flood connection %d could not be made", i);
        if (poll(&pfd, 1, 2000) == 1 && !(pfd.revents & (POLLERR | POLLHUP)) &&
            i % 2 == 1)
            (void)send(fds[i], "GET /healthz HTTP/1.1\r\nHost: x\r\n", 32,
                       MSG_NOSIGNAL);
    }
    /* Those over the limit are closed as they are accepted. */
    for (int waited = 0; waited < 30; waited++) {
        cv_test_sleep_ms(50);
        if ((held = glt_count_open(fds, GLT_FLOOD)) <= GLT_PER_IP_LIMIT)
            break;
    }
    /* The flooder keeps at most its share; the rest were closed. */
    if (held > GLT_PER_IP_LIMIT || held < GLT_PER_IP_LIMIT - 16)
        fail_msg("the flooding client holds %d connections, expected about "
                 "%d (the per-client limit)",
                 held, GLT_PER_IP_LIMIT);

    /* Another client, while the flood is held: every answer in 100 ms. */
    for (int i = 0; i < 60; i++) {
        const char *path = paths[i % 3];
        double ms;
        int status = glt_timed_get(path, &ms);

        if (status != 200)
            fail_msg("GET %s during the flood: status %d after %.1f ms", path,
                     status, ms);
        if (ms > GLT_MAX_MS)
            fail_msg("GET %s during the flood took %.1f ms (limit %.0f)", path,
                     ms, GLT_MAX_MS);
        worst = ms > worst ? ms : worst;
        answered++;
    }
    held_after = glt_count_open(fds, GLT_FLOOD);
    print_message("flood of %d from " GLT_FLOOD_FROM ": %d held; %d answers "
                  "to " GLT_CLIENT_FROM ", slowest %.1f ms; still held %d "
                  "after %.0f ms\n",
                  GLT_FLOOD, held, answered, worst, held_after,
                  glt_now_ms() - t_open);
    assert_true(glt_metric("cavra_http_connections_rejected_total") >=
                rejected_before + (unsigned long long)(GLT_FLOOD - held));

    /* Silent and half-sent connections are closed after the idle timeout
     * (a few seconds, not the 30 of old). */
    for (int waited = 0; waited < (GLT_IDLE_S + 3) * 10; waited++) {
        if (glt_count_open(fds, GLT_FLOOD) == 0)
            break;
        cv_test_sleep_ms(100);
    }
    assert_int_equal(glt_count_open(fds, GLT_FLOOD), 0);
    for (int i = 0; i < GLT_FLOOD; i++)
        close(fds[i]);
    /* The flooder may connect again once its connections are gone. */
    {
        int fd = glt_connect(GLT_FLOOD_FROM, 0);

        assert_true(fd >= 0);
        cv_test_sleep_ms(100);
        assert_true(glt_open(fd));
        close(fd);
    }
}

static void
test_gateway_limits_503_counted_and_logged(void **state)
{
    unsigned long long svc0, unav0, ready0, svc1, unav1, ready1;
    cv_http_response r;
    json_t *line;
    char rid[160];
    int status = 0, n503 = 0;

    (void)state;
    svc0 = glt_metric("cavra_http_503_total{cause=\"service_unavailable\"}");
    unav0 = glt_metric("cavra_rpc_unavailable_total");
    ready0 = glt_metric("cavra_http_503_total{cause=\"not_ready\"}");

    /* A request that succeeds leaves an info line without a cause. */
    cv_test_post_json(&glt_stack, CV_TEST_PLAN_PATH, GLT_PLAN_BODY, &r);
    assert_int_equal(r.status, 201);
    line = glt_request_line(r.request_id);
    if (line == NULL)
        fail_msg("no GW-REQUEST line for %s", r.request_id);
    cv_test_assert_str(line, "level", "info");
    cv_test_assert_str(line, "method", "POST");
    cv_test_assert_str(line, "route",
                       "/runtime/go-pilot/rollback-drill-notifications/"
                       "acknowledgements/audit-delivery/"
                       "recovery-escalation-plan");
    cv_test_assert_int(line, "status", 201);
    cv_test_assert_str(line, "service", "ack");
    cv_test_assert_null(line, "actor");
    assert_true(json_is_number(json_object_get(line, "latency_ms")));
    cv_test_assert_time(cv_test_json_str(line, "time"));
    assert_null(json_object_get(line, "cause"));
    /* Never the body. */
    {
        char *text = json_dumps(line, 0);

        assert_null(strstr(text, "escalation_routes"));
        free(text);
    }
    json_decref(line);
    cv_http_response_free(&r);

    /* Stop the acknowledgement service. */
    assert_true(glt_stack.pids[0] > 0);
    kill(glt_stack.pids[0], SIGTERM);
    assert_int_equal(waitpid(glt_stack.pids[0], &status, 0), glt_stack.pids[0]);
    glt_stack.pids[0] = 0;

    /* Until the gateway notices the service left, a call can wait out
     * its timeout (504); after that every call is a 503 at once. */
    for (int i = 0; i < 5; i++) {
        cv_test_sleep_ms(200);
        if (cv_http_request("POST", cv_test_url(&glt_stack, CV_TEST_PLAN_PATH),
                            NULL, GLT_PLAN_BODY, NULL, &r) != 0)
            fail_msg("POST with ack down: no answer");
        if (r.status == 503)
            break;
        if (r.status != 504)
            fail_msg("POST with ack down: %ld %s", r.status, r.body);
        cv_http_response_free(&r);
    }
    assert_int_equal(r.status, 503);
    n503++;
    cv_test_assert_str(r.json, "code", "UNAVAILABLE");
    cv_test_assert_str(r.json, "detail", "service unavailable");
    cv_test_assert_str(r.json, "request_id", r.request_id);
    snprintf(rid, sizeof(rid), "%s", r.request_id);
    cv_http_response_free(&r);
    /* Fast, and again. */
    {
        double t0 = glt_now_ms();

        assert_int_equal(
            cv_http_request("POST", cv_test_url(&glt_stack, CV_TEST_PLAN_PATH),
                            NULL, GLT_PLAN_BODY, NULL, &r),
            0);
        assert_int_equal(r.status, 503);
        assert_true(glt_now_ms() - t0 < 1000);
        n503++;
        cv_http_response_free(&r);
    }
    svc1 = glt_metric("cavra_http_503_total{cause=\"service_unavailable\"}");
    unav1 = glt_metric("cavra_rpc_unavailable_total");
    assert_int_equal(svc1, svc0 + (unsigned long long)n503);
    assert_int_equal(unav1, unav0 + (unsigned long long)n503);

    /* The 503 left a warn line naming its cause. */
    line = glt_request_line(rid);
    if (line == NULL)
        fail_msg("no GW-REQUEST line for the 503 %s", rid);
    cv_test_assert_str(line, "level", "warn");
    cv_test_assert_int(line, "status", 503);
    cv_test_assert_str(line, "cause", "service_unavailable");
    cv_test_assert_str(line, "service", "ack");
    json_decref(line);

    /* /readyz not ready is a 503 too, with its own cause. */
    assert_int_equal(cv_http_request("GET", cv_test_url(&glt_stack, "/readyz"),
                                     NULL, NULL, NULL, &r),
                     0);
    assert_int_equal(r.status, 503);
    cv_http_response_free(&r);
    ready1 = glt_metric("cavra_http_503_total{cause=\"not_ready\"}");
    assert_int_equal(ready1, ready0 + 1);

    assert_int_equal(cv_test_stack_restart(&glt_stack), 0);
}

/* ---- shutdown under load ------------------------------------------------ */

typedef struct glt_loader {
    pthread_t th;
    int which;
    atomic_int *stop;
    int answered, failed;
} glt_loader;

static size_t
glt_discard_cb(char *data, size_t size, size_t nmemb, void *arg)
{
    (void)data;
    (void)arg;
    return size * nmemb;
}

/* GET /readyz over one kept-alive connection: after the gateway stops
 * accepting, its requests still reach the handlers, which must then
 * answer 503 rather than call a closed RPC client. */
static void *
glt_keepalive_main(void *arg)
{
    glt_loader *l = arg;
    CURL *curl = curl_easy_init();
    char url[512];

    if (curl == NULL)
        return NULL;
    snprintf(url, sizeof(url), "%s/readyz", glt_stack.base_url);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 15000L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, glt_discard_cb);
    while (!atomic_load(l->stop)) {
        if (curl_easy_perform(curl) == CURLE_OK) {
            l->answered++;
        } else {
            l->failed++;
            cv_test_sleep_ms(250);
        }
    }
    curl_easy_cleanup(curl);
    return NULL;
}

static void *
glt_loader_main(void *arg)
{
    glt_loader *l = arg;
    static const char *const paths[] = {"/readyz", "/healthz", "/metrics"};

    char url[512];

    while (!atomic_load(l->stop)) {
        cv_http_response r;
        int rv;

        /* Not cv_test_url: its static buffer is not for threads. */
        snprintf(url, sizeof(url), "%s%s", glt_stack.base_url,
                 l->which % 2 == 0 ? CV_TEST_PLAN_PATH
                                   : paths[l->answered % 3]);
        rv =
            cv_http_request(l->which % 2 == 0 ? "POST" : "GET", url, NULL,
                            l->which % 2 == 0 ? GLT_PLAN_BODY : NULL, NULL, &r);
        if (rv == 0 && r.status != 0)
            l->answered++;
        else
            l->failed++;
        cv_http_response_free(&r);
        if (rv != 0)
            cv_test_sleep_ms(250); /* the gateway is going */
    }
    return NULL;
}

static void
test_gateway_limits_sigterm_under_load(void **state)
{
    glt_loader loaders[5];
    atomic_int stop = 0;
    pid_t gw = glt_stack.pids[3], r;
    double t0;
    int status = 0;
    char *log;

    (void)state;
    /* kill(0, ...) would signal our own process group. */
    assert_true(gw > 0);
    if (glt_stack.pids[0] <= 0 && cv_test_stack_restart(&glt_stack) != 0)
        fail_msg("cannot restart the stack");
    gw = glt_stack.pids[3];
    assert_true(gw > 0 && glt_stack.pids[0] > 0);
    for (int i = 0; i < 5; i++) {
        loaders[i] = (glt_loader){.which = i, .stop = &stop};
        assert_int_equal(
            pthread_create(&loaders[i].th, NULL,
                           i < 4 ? glt_loader_main : glt_keepalive_main,
                           &loaders[i]),
            0);
    }
    cv_test_sleep_ms(700);
    /* Freeze the acknowledgement service: its calls now wait in flight
     * and must be cancelled (not freed under MHD) by the shutdown. */
    kill(glt_stack.pids[0], SIGSTOP);
    cv_test_sleep_ms(500);
    t0 = glt_now_ms();
    kill(gw, SIGTERM);
    while ((r = waitpid(gw, &status, WNOHANG)) == 0 && glt_now_ms() - t0 < 9000)
        cv_test_sleep_ms(10);
    kill(glt_stack.pids[0], SIGCONT);
    atomic_store(&stop, 1);
    for (int i = 0; i < 5; i++)
        pthread_join(loaders[i].th, NULL);
    if (r == 0) {
        kill(gw, SIGKILL);
        waitpid(gw, &status, 0);
        glt_stack.pids[3] = 0;
        fail_msg("the gateway did not exit within 9 s of SIGTERM");
    }
    glt_stack.pids[3] = 0;
    print_message("gateway exited %.0f ms after SIGTERM; loaders got %d, %d, "
                  "%d, %d answers, the kept-alive one %d\n",
                  glt_now_ms() - t0, loaders[0].answered, loaders[1].answered,
                  loaders[2].answered, loaders[3].answered,
                  loaders[4].answered);
    log = glt_gateway_log();
    if (strstr(log, "Sanitizer") != NULL || strstr(log, "runtime error") ||
        strstr(log, "MHD_PANIC") != NULL ||
        strstr(log, "suspended connections") != NULL)
        fail_msg("the gateway log has a sanitizer or MHD report:\n%s", log);
    {
        int cancelled = 0;

        for (const char *p = log; (p = strstr(p, "\"cause\":\"stopping\""));
             p++)
            cancelled++;
        print_message("%d requests answered 503 (stopping)\n", cancelled);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        /* The log's end says why (an NNG panic, an abort): the stack's
         * folder is gone once the suite ends. */
        size_t len = strlen(log);

        print_message("gateway log, last lines:\n%s\n",
                      log + (len > 4000 ? len - 4000 : 0));
        free(log);
        fail_msg("the gateway ended with %s %d",
                 WIFEXITED(status) ? "status" : "signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    }
    free(log);
    for (int i = 0; i < 5; i++)
        assert_true(loaders[i].answered > 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gateway_limits_idle_flood_others_answered),
        cmocka_unit_test(test_gateway_limits_503_counted_and_logged),
        /* Last: it ends the gateway. */
        cmocka_unit_test(test_gateway_limits_sigterm_under_load),
    };

    return cmocka_run_group_tests_name("gateway_limits", tests, glt_setup,
                                       glt_teardown);
}
