/*
 * replica_test.c -- two replicas of every service behind one gateway
 * (issue 12, "Beyond one machine"), with real processes and PostgreSQL.
 *
 * Two service stacks (cv_test_stack, services only) give two processes of
 * cavra-ack, cavra-retry and cavra-report on distinct ipc:// URLs; one
 * gateway dials both of each (CAVRA_ACK_URL="url1,url2", ...). Both
 * replicas run the evidence sequencer (one chain lock) and the report
 * scheduler (one run per window: report_rpc_test covers that).
 *
 *   replica_spread     requests reach both ack replicas (each holds a
 *                      session with the gateway after the first calls);
 *   replica_kill_load  RT_THREADS clients post acknowledgements, each with
 *                      its own Idempotency-Key, retrying 502/503/504; after
 *                      RT_KILL_AFTER successes one ack replica is killed
 *                      (SIGKILL). Every request ends 2xx, each is stored
 *                      exactly once, the requests answered 503 are at most
 *                      the ones in flight on the dead replica, and the
 *                      rest of the load goes to the living one;
 *   replica_reads      the dashboard (report) and a retry plan (retry)
 *                      still answer; the chain verifies.
 *
 * Needs CAVRA_DATABASE_URL (scripts/test.sh sets it).
 * Run: ctest -R integration.replica, or the binary alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cv_test_api.h"

extern char **environ;

#define RT_THREADS     8
#define RT_REQUESTS    600
#define RT_KILL_AFTER  200
#define RT_DEADLINE_MS 90000
#define RT_GATEWAY     CV_TEST_BUILD_DIR "/gateway/cavra-gateway"
#define RT_ACK_PATH                                                            \
    "/runtime/go-pilot/rollback-drill-notifications/acknowledgements/"         \
    "audit-delivery/recovery-escalations/%s/acknowledgements"

static cv_test_stack rt_a, rt_b; /* the two replica sets */
static cv_test_stack rt_gw;      /* only base_url/dir used: the gateway */
static pid_t rt_gw_pid;
static char rt_plan[96];
static char rt_log[300];

/* A free loopback TCP port. */
static int
rt_free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* Starts the gateway dialing both replicas of every service. */
static int
rt_start_gateway(void)
{
    char ack[700], retry[700], report[700], port[40], key[200], prin[200];
    const char *set[] = {
        "CAVRA_ACK_URL=",        "CAVRA_RETRY_URL=",    "CAVRA_REPORT_URL=",
        "CAVRA_GATEWAY_HOST=",   "CAVRA_GATEWAY_PORT=", "CAVRA_RPC_KEY_FILE=",
        "CAVRA_PRINCIPALS_FILE="};
    char *env[512], host[] = "CAVRA_GATEWAY_HOST=127.0.0.1";
    char *argv[] = {(char *)RT_GATEWAY, NULL};
    posix_spawn_file_actions_t fa;
    size_t n = 0;
    int p = rt_free_port();

    if (p <= 0)
        return -1;
    snprintf(ack, sizeof(ack), "CAVRA_ACK_URL=%s,%s", rt_a.ack_url,
             rt_b.ack_url);
    snprintf(retry, sizeof(retry), "CAVRA_RETRY_URL=%s, %s", rt_a.retry_url,
             rt_b.retry_url);
    snprintf(report, sizeof(report), "CAVRA_REPORT_URL=%s,%s", rt_a.report_url,
             rt_b.report_url);
    snprintf(port, sizeof(port), "CAVRA_GATEWAY_PORT=%d", p);
    snprintf(key, sizeof(key), "CAVRA_RPC_KEY_FILE=%s",
             cv_test_key_path("gateway.key"));
    snprintf(prin, sizeof(prin), "CAVRA_PRINCIPALS_FILE=%s",
             cv_test_key_path("principals"));
    for (size_t i = 0; environ[i] != NULL && n < 500; i++) {
        bool ours = false;

        for (size_t j = 0; j < sizeof(set) / sizeof(set[0]); j++)
            ours = ours || strncmp(environ[i], set[j], strlen(set[j])) == 0;
        if (!ours)
            env[n++] = environ[i];
    }
    env[n++] = ack;
    env[n++] = retry;
    env[n++] = report;
    env[n++] = host;
    env[n++] = port;
    env[n++] = key;
    env[n++] = prin;
    env[n] = NULL;
    snprintf(rt_log, sizeof(rt_log), "%s/gateway-replicas.log", rt_a.dir);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, rt_log,
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
    if (posix_spawn(&rt_gw_pid, argv[0], &fa, NULL, argv, env) != 0)
        rt_gw_pid = 0;
    posix_spawn_file_actions_destroy(&fa);
    if (rt_gw_pid <= 0)
        return -1;
    snprintf(rt_gw.base_url, sizeof(rt_gw.base_url), "http://127.0.0.1:%d", p);
    rt_gw.gateway_port = p;
    for (long until = cv_test_now_ms() + 20000; cv_test_now_ms() < until;) {
        cv_http_response r;

        if (cv_http_request("GET", cv_test_url(&rt_gw, "/readyz"), NULL, NULL,
                            NULL, &r) == 0 &&
            r.status == 200) {
            cv_http_response_free(&r);
            return 0;
        }
        cv_http_response_free(&r);
        cv_test_sleep_ms(100);
    }
    fprintf(stderr, "replica_test: the gateway did not get ready (%s)\n",
            rt_log);
    return -1;
}

typedef struct rt_load {
    atomic_int next;
    atomic_int ok, retried, n503, failed;
    atomic_int since_kill_ok; /* first-attempt successes after the kill */
    atomic_bool killed;
    long deadline_ms;
    const char *prefix;
} rt_load;

/* Posts acknowledgement i until it ends 2xx (or the deadline). */
static void
rt_send_one(rt_load *L, int i)
{
    char path[300], body[400], key[160], ref[96];
    const char *hdrs[2] = {key, NULL};

    snprintf(ref, sizeof(ref), "%s-%05d", L->prefix, i);
    snprintf(path, sizeof(path), RT_ACK_PATH, rt_plan);
    snprintf(body, sizeof(body),
             "{\"provider\": \"webhook\", \"acknowledged_by\": \"replica\", "
             "\"acknowledgement_state\": \"acknowledged\", "
             "\"external_ref\": \"%s\"}",
             ref);
    snprintf(key, sizeof(key), "Idempotency-Key: %s", ref);
    for (int attempt = 0;; attempt++) {
        cv_http_response r;
        bool after_kill = atomic_load(&L->killed);
        long status;

        if (cv_test_now_ms() > L->deadline_ms) {
            atomic_fetch_add(&L->failed, 1);
            return;
        }
        if (cv_http_request("POST", cv_test_url(&rt_gw, path), NULL, body, hdrs,
                            &r) != 0)
            r.status = 0;
        status = r.status;
        if (status != 200 && status != 201 && status != 0 && status != 502 &&
            status != 503 && status != 504)
            fprintf(stderr, "replica_test: %s answered %ld: %s\n", ref, status,
                    r.body != NULL ? r.body : "");
        cv_http_response_free(&r);
        if (status >= 200 && status < 300) {
            atomic_fetch_add(&L->ok, 1);
            if (attempt > 0)
                atomic_fetch_add(&L->retried, 1);
            else if (after_kill)
                atomic_fetch_add(&L->since_kill_ok, 1);
            return;
        }
        if (status == 503)
            atomic_fetch_add(&L->n503, 1);
        if (status != 0 && status != 502 && status != 503 && status != 504) {
            atomic_fetch_add(&L->failed, 1);
            return;
        }
        cv_test_sleep_ms(20);
    }
}

static void *
rt_worker(void *arg)
{
    rt_load *L = arg;
    int i;

    while ((i = atomic_fetch_add(&L->next, 1)) < RT_REQUESTS)
        rt_send_one(L, i);
    return NULL;
}

/* True when process pid is running. */
static bool
rt_alive(pid_t pid)
{
    return pid > 0 && kill(pid, 0) == 0;
}

/* True when the service log at dir/name.log has a line with both words. */
static bool
rt_log_has(const char *dir, const char *name, const char *a, const char *b)
{
    char path[400], line[1024];
    bool found = false;
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s.log", dir, name);
    if ((f = fopen(path, "r")) == NULL)
        return false;
    while (!found && fgets(line, sizeof(line), f) != NULL)
        found = strstr(line, a) != NULL && strstr(line, b) != NULL;
    fclose(f);
    return found;
}

static void
test_replica_kill_under_load(void **state)
{
    pthread_t th[RT_THREADS];
    rt_load L;
    char like[128], prefix[64];
    int status;

    (void)state;
    memset(&L, 0, sizeof(L));
    L.deadline_ms = cv_test_now_ms() + RT_DEADLINE_MS;
    snprintf(prefix, sizeof(prefix), "RT-kill-%ld", (long)getpid());
    L.prefix = prefix;
    for (int t = 0; t < RT_THREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, rt_worker, &L), 0);
    while (atomic_load(&L.ok) < RT_KILL_AFTER &&
           cv_test_now_ms() < L.deadline_ms)
        cv_test_sleep_ms(5);
    /* One ack replica dies mid-load. */
    assert_true(rt_alive(rt_a.pids[0]));
    assert_int_equal(kill(rt_a.pids[0], SIGKILL), 0);
    assert_int_equal(waitpid(rt_a.pids[0], &status, 0), rt_a.pids[0]);
    rt_a.pids[0] = 0;
    atomic_store(&L.killed, true);
    for (int t = 0; t < RT_THREADS; t++)
        pthread_join(th[t], NULL);
    fprintf(stderr,
            "replica_test: %d requests, %d ok, %d needed a retry, %d answers "
            "503, %d failed, %d first-attempt successes after the kill\n",
            RT_REQUESTS, atomic_load(&L.ok), atomic_load(&L.retried),
            atomic_load(&L.n503), atomic_load(&L.failed),
            atomic_load(&L.since_kill_ok));
    assert_int_equal(atomic_load(&L.failed), 0);
    assert_int_equal(atomic_load(&L.ok), RT_REQUESTS);
    /* Only calls in flight on the dead replica (at most one per client
     * thread) may have needed a retry; everything else went on. */
    assert_true(atomic_load(&L.retried) <= RT_THREADS);
    assert_true(atomic_load(&L.since_kill_ok) >=
                (RT_REQUESTS - RT_KILL_AFTER) / 2);
    /* Each request stored exactly once, retries included. */
    snprintf(like, sizeof(like), "%s-%%", L.prefix);
    assert_int_equal(cv_test_db_scalar("SELECT count(*) FROM evidence_events "
                                       "WHERE record->>'external_ref' LIKE $1",
                                       like),
                     RT_REQUESTS);
    assert_int_equal(
        cv_test_db_scalar("SELECT count(DISTINCT record->>'external_ref') FROM "
                          "evidence_events WHERE record->>'external_ref' "
                          "LIKE $1",
                          like),
        RT_REQUESTS);
}

/* Before any replica dies, calls are spread over both: a client given
 * both URLs (as cavra-rpc and the gateway are) reaches each replica, which
 * grants it a session (logged once per caller link). */
static void
test_replica_spread(void **state)
{
    cv_rpc_client *cli;
    cv_error err;
    char urls[700];

    (void)state;
    snprintf(urls, sizeof(urls), "%s,%s", rt_a.ack_url, rt_b.ack_url);
    assert_int_equal(cv_rpc_client_open(urls, &cli, &err), 0);
    assert_int_equal(cv_rpc_client_wait_connected(cli, 5000, &err), 0);
    cv_test_sleep_ms(200); /* both links up */
    for (int i = 0; i < 64; i++)
        cv_test_assert_health(cli, "ack");
    cv_rpc_client_close(cli);
    assert_true(rt_log_has(rt_a.dir, "ack", "RPC-SESSION",
                           "principal=test-harness session granted"));
    assert_true(rt_log_has(rt_b.dir, "ack", "RPC-SESSION",
                           "principal=test-harness session granted"));
    /* The gateway's calls reached both too (plan recorded in setup, and
     * the health checks of /readyz). */
    assert_true(rt_log_has(rt_a.dir, "ack", "RPC-SESSION",
                           "principal=gateway session granted") ||
                rt_log_has(rt_b.dir, "ack", "RPC-SESSION",
                           "principal=gateway session granted"));
}

static void
test_replica_reads_and_chain(void **state)
{
    cv_http_response r;
    char path[300];

    (void)state;
    cv_test_request(&rt_gw, "GET",
                    "/runtime/go-pilot/rollback-drill-notifications/dashboard",
                    NULL, NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    cv_http_response_free(&r);
    snprintf(path, sizeof(path),
             "/runtime/go-pilot/rollback-drill-notifications/acknowledgements/"
             "audit-delivery/recovery-escalations/retry-plan");
    {
        char body[200];

        snprintf(body, sizeof(body),
                 "{\"generated_by\":\"replica\",\"plan_id\":\"%s\"}", rt_plan);
        cv_test_post_json(&rt_gw, path, body, &r);
    }
    assert_true(r.status == 200 || r.status == 201);
    cv_http_response_free(&r);
    /* Two sequencers, one chain: everything gets chained, and it
     * verifies. */
    for (int i = 0; i < 200 && cv_test_db_scalar("SELECT count(*) FROM "
                                                 "evidence_unsequenced",
                                                 NULL) != 0;
         i++)
        cv_test_sleep_ms(100);
    cv_test_request(&rt_gw, "GET", "/runtime/evidence/verify", NULL, NULL, NULL,
                    &r);
    assert_int_equal(r.status, 200);
    if (r.json != NULL && json_object_get(r.json, "valid") != NULL)
        assert_true(json_is_true(json_object_get(r.json, "valid")));
    cv_http_response_free(&r);
}

static int
rt_setup(void **state)
{
    char *id;

    (void)state;
    if (cv_test_stack_start(&rt_a, CV_STACK_ACK | CV_STACK_RETRY |
                                       CV_STACK_REPORT) != 0 ||
        cv_test_stack_start(&rt_b, CV_STACK_ACK | CV_STACK_RETRY |
                                       CV_STACK_REPORT) != 0 ||
        rt_start_gateway() != 0)
        return -1;
    id = cv_test_record_plan_http(
        &rt_gw, "{\"generated_by\":\"replica-test\",\"recovery_slo_minutes\":"
                "60,\"escalation_routes\":[{\"provider\":\"webhook\","
                "\"severity\":\"critical\",\"category\":\"connector-"
                "recovery\"}]}");
    if (id == NULL)
        return -1;
    snprintf(rt_plan, sizeof(rt_plan), "%s", id);
    free(id);
    return 0;
}

static int
rt_teardown(void **state)
{
    int rv = 0;

    (void)state;
    if (rt_gw_pid > 0) {
        kill(rt_gw_pid, SIGTERM);
        waitpid(rt_gw_pid, NULL, 0);
    }
    rv |= cv_test_stack_stop(&rt_b);
    rv |= cv_test_stack_stop(&rt_a);
    return rv;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replica_spread),
        cmocka_unit_test(test_replica_kill_under_load),
        cmocka_unit_test(test_replica_reads_and_chain),
    };

    return cmocka_run_group_tests_name("replica", tests, rt_setup, rt_teardown);
}
