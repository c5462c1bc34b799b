/*
 * cv_test_stack.c -- starts and stops the real CAVRA processes for the
 * integration and end-to-end tests (see cv_test_stack.h).
 *
 * Design notes:
 *  - Processes are started with posix_spawn, never fork + setenv: the test
 *    process already runs NNG and libcurl threads, and only the spawn path
 *    is safe in a multi-threaded parent. The child's environment is built
 *    in the parent: ours (minus the variables we set) plus the URLs/port.
 *  - Each child's stdout and stderr go to <dir>/<name>.log, opened for
 *    appending so a restart keeps the earlier lines.
 *  - Readiness: services answer their "<svc>.Health" RPC with database_ok
 *    (so a test never races a worker that cannot reach PostgreSQL); the
 *    gateway answers GET /healthz with 200. A process that exits while we
 *    wait fails the start at once, with its log.
 *  - Stop: SIGTERM to the gateway first (it dials the services), then the
 *    services; each gets CV_STACK_STOP_MS to exit before SIGKILL. A clean
 *    stop means every process exited with status 0.
 */
#include "cv_test_stack.h"

#include <pthread.h>
#include <stdbool.h>

#include "cv_principal.h"
#include "cv_rpc.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cv_rpc.h"
#include "cv_test_http.h"

extern char **environ;

#define CV_STACK_START_MS 20000
#define CV_STACK_STOP_MS  10000
#define CV_STACK_LOG_TAIL 40

enum { CV_STACK_I_ACK, CV_STACK_I_RETRY, CV_STACK_I_REPORT, CV_STACK_I_GW };

static const char *const cv_stack_names[4] = {"ack", "retry", "report",
                                              "gateway"};
static const char *const cv_stack_bins[4] = {
    CV_TEST_BUILD_DIR "/services/ack/cavra-ack",
    CV_TEST_BUILD_DIR "/services/retry/cavra-retry",
    CV_TEST_BUILD_DIR "/services/report/cavra-report",
    CV_TEST_BUILD_DIR "/gateway/cavra-gateway",
};

/* Environment variables the stack sets for its children. */
static const char *const cv_stack_env_names[] = {
    "CAVRA_ACK_URL",      "CAVRA_RETRY_URL",    "CAVRA_REPORT_URL",
    "CAVRA_GATEWAY_HOST", "CAVRA_GATEWAY_PORT", "CAVRA_PRINCIPALS_FILE",
    "CAVRA_RPC_KEY_FILE",
};
#define CV_STACK_N_ENV (sizeof(cv_stack_env_names) / sizeof(char *))

/* ---- RPC keys of the test process and its stacks ---- */

static char cv_test_keys_dir[64];
static cv_identity *cv_test_harness;
static pthread_mutex_t cv_test_keys_mtx = PTHREAD_MUTEX_INITIALIZER;

static const struct {
    const char *name, *roles;
    bool delegate;
} cv_test_principals[] = {
    {"gateway", "admin", true},
    {"test-harness", "admin", true},
    {"test-operator", "admin", false},
    {"test-auditor", "auditor", false},
};

const char *
cv_test_key_path(const char *file)
{
    /* One buffer per file name used by the stack and tests. */
    static __thread char buf[4][160];
    static __thread int next;
    char *out = buf[next++ % 4];

    snprintf(out, sizeof(buf[0]), "%s/%s", cv_test_keys_dir, file);
    return out;
}

static void
cv_test_keys_remove(void)
{
    char path[160];

    cv_rpc_set_identity(NULL);
    cv_identity_free(cv_test_harness);
    cv_test_harness = NULL;
    for (size_t i = 0;
         i < sizeof(cv_test_principals) / sizeof(cv_test_principals[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s.key", cv_test_keys_dir,
                 cv_test_principals[i].name);
        unlink(path);
    }
    snprintf(path, sizeof(path), "%s/principals", cv_test_keys_dir);
    unlink(path);
    rmdir(cv_test_keys_dir);
}

int
cv_test_keys_init(void)
{
    FILE *f = NULL;
    char path[160], line[256];
    cv_error err;
    int rv = -1;

    pthread_mutex_lock(&cv_test_keys_mtx);
    if (cv_test_keys_dir[0] != '\0') {
        pthread_mutex_unlock(&cv_test_keys_mtx);
        return 0;
    }
    snprintf(cv_test_keys_dir, sizeof(cv_test_keys_dir), "/tmp/cvtk-XXXXXX");
    if (mkdtemp(cv_test_keys_dir) == NULL) {
        fprintf(stderr, "cv_test_keys: mkdtemp: %s\n", strerror(errno));
        cv_test_keys_dir[0] = '\0';
        goto out;
    }
    snprintf(path, sizeof(path), "%s/principals", cv_test_keys_dir);
    if ((f = fopen(path, "w")) == NULL)
        goto out;
    for (size_t i = 0;
         i < sizeof(cv_test_principals) / sizeof(cv_test_principals[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s.key", cv_test_keys_dir,
                 cv_test_principals[i].name);
        cv_error_clear(&err);
        if (cv_identity_generate(cv_test_principals[i].name, path,
                                 cv_test_principals[i].roles,
                                 cv_test_principals[i].delegate, line,
                                 sizeof(line), &err) != 0) {
            fprintf(stderr, "cv_test_keys: %s\n", err.msg);
            goto out;
        }
        fprintf(f, "%s\n", line);
    }
    if (fclose(f) != 0) {
        f = NULL;
        goto out;
    }
    f = NULL;
    /* The test process itself calls as the harness, which may name the
     * actor it tests with, as the gateway does. */
    snprintf(path, sizeof(path), "%s/test-harness.key", cv_test_keys_dir);
    if (cv_identity_load(path, &cv_test_harness, &err) != 0) {
        fprintf(stderr, "cv_test_keys: %s\n", err.msg);
        goto out;
    }
    cv_rpc_set_identity(cv_test_harness);
    atexit(cv_test_keys_remove);
    rv = 0;
out:
    if (f != NULL)
        fclose(f);
    pthread_mutex_unlock(&cv_test_keys_mtx);
    return rv;
}

long
cv_test_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
cv_test_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

const char *
cv_test_database_url(void)
{
    /* The tests' own SQL runs as the owner when scripts/test.sh gave one
     * (the services log in as cavra_app through CAVRA_DATABASE_URL). */
    const char *url = getenv("CAVRA_TEST_OWNER_DATABASE_URL");

    if (url != NULL && url[0] != '\0')
        return url;
    url = getenv("CAVRA_DATABASE_URL");

    return url != NULL && url[0] != '\0' ? url : NULL;
}

static void
cv_stack_log_path(const cv_test_stack *s, int i, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/%s.log", s->dir, cv_stack_names[i]);
}

/* Prints the last CV_STACK_LOG_TAIL lines of process i's log to stderr. */
static void
cv_stack_print_log(const cv_test_stack *s, int i)
{
    char path[400];
    char *lines[CV_STACK_LOG_TAIL];
    char buf[1024];
    size_t n = 0;
    FILE *f;

    memset(lines, 0, sizeof(lines));
    cv_stack_log_path(s, i, path, sizeof(path));
    if ((f = fopen(path, "r")) == NULL) {
        fprintf(stderr, "---- %s: no log (%s)\n", cv_stack_names[i], path);
        return;
    }
    while (fgets(buf, sizeof(buf), f) != NULL) {
        free(lines[n % CV_STACK_LOG_TAIL]);
        lines[n % CV_STACK_LOG_TAIL] = strdup(buf);
        n++;
    }
    fclose(f);
    fprintf(stderr, "---- last lines of %s ----\n", path);
    for (size_t k = n > CV_STACK_LOG_TAIL ? n - CV_STACK_LOG_TAIL : 0; k < n;
         k++) {
        const char *l = lines[k % CV_STACK_LOG_TAIL];

        fprintf(stderr, "%s%s", l != NULL ? l : "",
                l != NULL && l[0] != '\0' && l[strlen(l) - 1] == '\n' ? ""
                                                                      : "\n");
    }
    fprintf(stderr, "---- end of %s ----\n", cv_stack_names[i]);
    for (size_t k = 0; k < CV_STACK_LOG_TAIL; k++)
        free(lines[k]);
}

static void
cv_stack_print_logs(const cv_test_stack *s)
{
    for (int i = 0; i < 4; i++)
        if (s->which & (1 << i))
            cv_stack_print_log(s, i);
}

int
cv_test_free_port(void)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int fd, port = -1;

    if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = 0;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

/* Builds the children's environment: ours without the stack's own
 * variables, then those. Free with cv_stack_env_free. */
static char **
cv_stack_env(const cv_test_stack *s, bool gateway)
{
    size_t n = 0, k = 0;
    char **env;
    char port[16];

    while (environ[n] != NULL)
        n++;
    if ((env = calloc(n + CV_STACK_N_ENV + 1, sizeof(char *))) == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        int ours = 0;

        for (size_t j = 0; j < CV_STACK_N_ENV; j++) {
            size_t l = strlen(cv_stack_env_names[j]);

            if (strncmp(environ[i], cv_stack_env_names[j], l) == 0 &&
                environ[i][l] == '=')
                ours = 1;
        }
        if (!ours)
            env[k++] = strdup(environ[i]);
    }
    snprintf(port, sizeof(port), "%d", s->gateway_port);
    {
        /* Only the gateway gets a key: services hold public keys only. */
        const char *vals[CV_STACK_N_ENV] = {
            s->ack_url,
            s->retry_url,
            s->report_url,
            "127.0.0.1",
            port,
            cv_test_key_path("principals"),
            gateway ? cv_test_key_path("gateway.key") : ""};

        for (size_t j = 0; j < CV_STACK_N_ENV; j++) {
            size_t l = strlen(cv_stack_env_names[j]) + strlen(vals[j]) + 2;

            if ((env[k] = malloc(l)) != NULL)
                snprintf(env[k], l, "%s=%s", cv_stack_env_names[j], vals[j]);
            k++;
        }
    }
    env[k] = NULL;
    return env;
}

static void
cv_stack_env_free(char **env)
{
    if (env == NULL)
        return;
    for (size_t i = 0; env[i] != NULL; i++)
        free(env[i]);
    free(env);
}

int
cv_test_spawn_logged(char *const argv[], char *const env[], const char *log,
                     pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    int rv;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, log,
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY,
                                     0);
    rv = posix_spawnp(pid, argv[0], &fa, NULL, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    if (rv != 0) {
        fprintf(stderr, "cv_test_spawn_logged: cannot start %s: %s\n", argv[0],
                strerror(rv));
        return -1;
    }
    return 0;
}

/* Spawns process i with its output appended to its log. */
static int
cv_stack_spawn(cv_test_stack *s, int i, char **env)
{
    char log[400];
    char *argv[2];
    pid_t pid;

    cv_stack_log_path(s, i, log, sizeof(log));
    argv[0] = (char *)cv_stack_bins[i];
    argv[1] = NULL;
    if (access(argv[0], X_OK) != 0) {
        fprintf(stderr, "cv_test_stack: %s is not built (%s)\n", argv[0],
                strerror(errno));
        return -1;
    }
    if (cv_test_spawn_logged(argv, env, log, &pid) != 0)
        return -1;
    s->pids[i] = pid;
    return 0;
}

/* Returns 1 when process i is still running; reaps it (and reports its
 * status) when it exited. */
static int
cv_stack_alive(cv_test_stack *s, int i)
{
    int status;
    pid_t r;

    if (s->pids[i] <= 0)
        return 0;
    r = waitpid(s->pids[i], &status, WNOHANG);
    if (r == 0)
        return 1;
    if (r == s->pids[i]) {
        if (WIFEXITED(status))
            fprintf(stderr, "cv_test_stack: %s exited with status %d\n",
                    cv_stack_names[i], WEXITSTATUS(status));
        else if (WIFSIGNALED(status))
            fprintf(stderr, "cv_test_stack: %s killed by signal %d\n",
                    cv_stack_names[i], WTERMSIG(status));
    }
    s->pids[i] = 0;
    return 0;
}

/* Waits until service i answers its Health RPC with database_ok. */
static int
cv_stack_wait_service(cv_test_stack *s, int i, long deadline)
{
    const char *urls[3] = {s->ack_url, s->retry_url, s->report_url};
    char method[32];
    cv_rpc_client *cli = NULL;
    cv_error err;
    int db_down = 0, rv = -1;

    snprintf(method, sizeof(method), "%s.Health", cv_stack_names[i]);
    cv_error_clear(&err);
    if (cv_rpc_client_open(urls[i], &cli, &err) != 0) {
        fprintf(stderr, "cv_test_stack: cannot dial %s: %s\n", urls[i],
                err.msg);
        return -1;
    }
    while (cv_test_now_ms() < deadline) {
        Cv__HealthRequest hreq = CV__HEALTH_REQUEST__INIT;
        ProtobufCMessage *rep = NULL;
        /* The time left, not a short fixed wait: on a loaded machine a
         * sanitizer build may take seconds to answer its first call, and
         * an answer that comes after its envelope's deadline is refused,
         * so short calls could never succeed. */
        long left = deadline - cv_test_now_ms();
        cv_rpc_call_opts opts = {.timeout_ms = left > 1000 ? (int)left : 1000};

        if (!cv_stack_alive(s, i))
            break;
        cv_error_clear(&err);
        if (cv_rpc_call(cli, method, &hreq.base, &cv__health_reply__descriptor,
                        &rep, &opts, &err) == 0) {
            Cv__HealthReply *h = (Cv__HealthReply *)rep;
            int ok = h->has_database_ok && h->database_ok;

            protobuf_c_message_free_unpacked(rep, NULL);
            if (ok) {
                rv = 0;
                break;
            }
            db_down = 1;
        }
        cv_test_sleep_ms(50);
    }
    cv_rpc_client_close(cli);
    if (rv != 0)
        fprintf(stderr, "cv_test_stack: %s did not become ready%s\n",
                cv_stack_names[i],
                db_down ? " (it answers, but its database is down)" : "");
    return rv;
}

int
cv_test_port_open(int port)
{
    struct sockaddr_in sa;
    int fd, ok;

    if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
        return 0;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

/* Waits until the gateway answers GET /healthz with 200. */
static int
cv_stack_wait_gateway(cv_test_stack *s, long deadline)
{
    char url[128];

    snprintf(url, sizeof(url), "%s/healthz", s->base_url);
    while (cv_test_now_ms() < deadline) {
        cv_http_response r;
        int ok;

        if (!cv_stack_alive(s, CV_STACK_I_GW))
            break;
        /* Not listening yet: wait quietly (the HTTP helper would log). */
        if (!cv_test_port_open(s->gateway_port)) {
            cv_test_sleep_ms(20);
            continue;
        }
        ok = cv_http_request("GET", url, NULL, NULL, NULL, &r) == 0 &&
             r.status == 200;
        cv_http_response_free(&r);
        if (ok)
            return 0;
        cv_test_sleep_ms(50);
    }
    fprintf(stderr, "cv_test_stack: gateway did not answer %s\n", url);
    return -1;
}

/* Sends SIGTERM to process i and waits; returns 0 when it exited 0. */
static int
cv_stack_kill(cv_test_stack *s, int i)
{
    long deadline = cv_test_now_ms() + CV_STACK_STOP_MS;
    int status = 0;
    pid_t r;

    if (s->pids[i] <= 0)
        return 0;
    kill(s->pids[i], SIGTERM);
    while ((r = waitpid(s->pids[i], &status, WNOHANG)) == 0 &&
           cv_test_now_ms() < deadline)
        cv_test_sleep_ms(10);
    if (r == 0) {
        fprintf(stderr,
                "cv_test_stack: %s did not exit within %d ms of SIGTERM; "
                "killing it\n",
                cv_stack_names[i], CV_STACK_STOP_MS);
        kill(s->pids[i], SIGKILL);
        waitpid(s->pids[i], &status, 0);
        s->pids[i] = 0;
        return -1;
    }
    s->pids[i] = 0;
    if (r < 0) {
        fprintf(stderr, "cv_test_stack: waitpid(%s): %s\n", cv_stack_names[i],
                strerror(errno));
        return -1;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFEXITED(status))
        fprintf(stderr, "cv_test_stack: %s exited with status %d\n",
                cv_stack_names[i], WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        fprintf(stderr, "cv_test_stack: %s died of signal %d\n",
                cv_stack_names[i], WTERMSIG(status));
    return -1;
}

/* Stops every running process, the gateway first. */
static int
cv_stack_kill_all(cv_test_stack *s)
{
    static const int order[4] = {CV_STACK_I_GW, CV_STACK_I_ACK,
                                 CV_STACK_I_RETRY, CV_STACK_I_REPORT};
    int rv = 0;

    for (int k = 0; k < 4; k++)
        if (cv_stack_kill(s, order[k]) != 0)
            rv = -1;
    return rv;
}

/* Starts the processes in s->which (URLs and port already set) and waits
 * for each. On failure stops what started and prints the logs. */
static int
cv_stack_launch(cv_test_stack *s)
{
    long deadline = cv_test_now_ms() + CV_STACK_START_MS;
    char **env, **gw_env;
    int rv = 0;

    if (cv_test_keys_init() != 0)
        return -1;
    if (cv_test_database_url() == NULL) {
        fprintf(stderr, "cv_test_stack: CAVRA_DATABASE_URL is not set; "
                        "point it at a migrated PostgreSQL\n");
        return -1;
    }
    if ((env = cv_stack_env(s, false)) == NULL)
        return -1;
    if ((gw_env = cv_stack_env(s, true)) == NULL) {
        cv_stack_env_free(env);
        return -1;
    }
    for (int i = 0; i < 3 && rv == 0; i++)
        if (s->which & (1 << i))
            rv = cv_stack_spawn(s, i, env);
    for (int i = 0; i < 3 && rv == 0; i++)
        if (s->which & (1 << i))
            rv = cv_stack_wait_service(s, i, deadline);
    if (rv == 0 && (s->which & CV_STACK_GATEWAY)) {
        if ((rv = cv_stack_spawn(s, CV_STACK_I_GW, gw_env)) == 0)
            rv = cv_stack_wait_gateway(s, deadline);
    }
    cv_stack_env_free(env);
    cv_stack_env_free(gw_env);
    if (rv != 0) {
        cv_stack_kill_all(s);
        cv_stack_print_logs(s);
    }
    return rv;
}

/* Removes the temp folder and what the processes left in it. */
static void
cv_stack_remove_dir(cv_test_stack *s)
{
    DIR *d;
    struct dirent *e;
    char path[600];

    if (s->dir[0] == '\0')
        return;
    if ((d = opendir(s->dir)) != NULL) {
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof(path), "%s/%s", s->dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(s->dir);
    s->dir[0] = '\0';
}

int
cv_test_stack_start(cv_test_stack *s, int which)
{
    memset(s, 0, sizeof(*s));
    s->which = which & CV_STACK_ALL;
    /* Short path: ipc:// socket names must fit in sun_path (108 bytes). */
    snprintf(s->dir, sizeof(s->dir), "/tmp/cvts-XXXXXX");
    if (mkdtemp(s->dir) == NULL) {
        fprintf(stderr, "cv_test_stack: mkdtemp: %s\n", strerror(errno));
        s->dir[0] = '\0';
        return -1;
    }
    snprintf(s->ack_url, sizeof(s->ack_url), "ipc://%s/ack.sock", s->dir);
    snprintf(s->retry_url, sizeof(s->retry_url), "ipc://%s/retry.sock", s->dir);
    snprintf(s->report_url, sizeof(s->report_url), "ipc://%s/report.sock",
             s->dir);
    if (s->which & CV_STACK_GATEWAY) {
        if ((s->gateway_port = cv_test_free_port()) <= 0) {
            fprintf(stderr, "cv_test_stack: no free TCP port\n");
            cv_stack_remove_dir(s);
            return -1;
        }
        snprintf(s->base_url, sizeof(s->base_url), "http://127.0.0.1:%d",
                 s->gateway_port);
    }
    if (cv_stack_launch(s) != 0) {
        cv_stack_remove_dir(s);
        return -1;
    }
    return 0;
}

int
cv_test_stack_stop(cv_test_stack *s)
{
    int rv = cv_stack_kill_all(s);

    if (rv != 0) {
        fprintf(stderr, "cv_test_stack: a process did not exit cleanly\n");
        cv_stack_print_logs(s);
    }
    cv_stack_remove_dir(s);
    return rv;
}

int
cv_test_stack_restart(cv_test_stack *s)
{
    if (cv_stack_kill_all(s) != 0) {
        cv_stack_print_logs(s);
        return -1;
    }
    return cv_stack_launch(s);
}

int
cv_test_client_open(const char *url, cv_rpc_client **cli)
{
    cv_error err;

    *cli = NULL;
    cv_error_clear(&err);
    if (cv_rpc_client_open(url, cli, &err) != 0 ||
        cv_rpc_client_wait_connected(*cli, 5000, &err) != 0) {
        fprintf(stderr, "cv_test_client_open: %s: %s\n", url, err.msg);
        if (*cli != NULL)
            cv_rpc_client_close(*cli);
        *cli = NULL;
        return -1;
    }
    return 0;
}

int
cv_test_stack_start_clients(cv_test_stack *s, int which, cv_rpc_client **ack,
                            cv_rpc_client **retry, cv_rpc_client **report)
{
    if (cv_test_stack_start(s, which) != 0)
        return -1;
    if ((ack == NULL || cv_test_client_open(s->ack_url, ack) == 0) &&
        (retry == NULL || cv_test_client_open(s->retry_url, retry) == 0) &&
        (report == NULL || cv_test_client_open(s->report_url, report) == 0))
        return 0;
    cv_test_stack_stop_clients(s, ack, retry, report);
    return -1;
}

int
cv_test_stack_stop_clients(cv_test_stack *s, cv_rpc_client **ack,
                           cv_rpc_client **retry, cv_rpc_client **report)
{
    cv_rpc_client **clis[3] = {ack, retry, report};

    for (size_t i = 0; i < 3; i++) {
        if (clis[i] != NULL && *clis[i] != NULL) {
            cv_rpc_client_close(*clis[i]);
            *clis[i] = NULL;
        }
    }
    return cv_test_stack_stop(s);
}

int
cv_test_stack_log_count(const cv_test_stack *s, const char *name,
                        const char *what, bool echo)
{
    int n = 0;

    for (int i = 0; i < 4; i++) {
        char path[400], line[4096];
        FILE *f;

        if (name != NULL ? strcmp(name, cv_stack_names[i]) != 0
                         : i == CV_STACK_I_GW)
            continue;
        cv_stack_log_path(s, i, path, sizeof(path));
        if ((f = fopen(path, "r")) == NULL)
            continue;
        while (fgets(line, sizeof(line), f) != NULL)
            if (strstr(line, what) != NULL) {
                if (echo)
                    fprintf(stderr, "%s: %s", path, line);
                n++;
            }
        fclose(f);
    }
    return n;
}

long
cv_test_db_scalar(const char *sql, const char *param)
{
    const char *url = cv_test_database_url();
    const char *params[1] = {param};
    PGconn *conn;
    PGresult *res;
    long v = -1;

    if (url == NULL) {
        fprintf(stderr, "cv_test_db_scalar: CAVRA_DATABASE_URL is not set\n");
        return -1;
    }
    conn = PQconnectdb(url);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "cv_test_db_scalar: cannot connect: %s",
                PQerrorMessage(conn));
        PQfinish(conn);
        return -1;
    }
    res = PQexecParams(conn, sql, param != NULL ? 1 : 0, NULL,
                       param != NULL ? params : NULL, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "cv_test_db_scalar: %s: %s", sql,
                PQresultErrorMessage(res));
    } else if (PQntuples(res) < 1 || PQnfields(res) < 1 ||
               PQgetisnull(res, 0, 0)) {
        fprintf(stderr, "cv_test_db_scalar: %s: no value\n", sql);
    } else {
        v = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    }
    PQclear(res);
    PQfinish(conn);
    return v;
}
