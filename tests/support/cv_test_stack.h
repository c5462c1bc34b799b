/*
 * cv_test_stack.h -- starts the real CAVRA processes for integration and
 * end-to-end tests, and small database helpers.
 *
 * Services listen on ipc:// sockets in a private temporary folder and the
 * gateway on a free loopback port, so tests never collide with a running
 * `make run`. Every process gets CAVRA_DATABASE_URL from the environment
 * (scripts/test.sh points it at a throwaway, migrated cluster). Logs go to
 * <dir>/<name>.log and are printed when a start fails.
 */
#ifndef CV_TEST_STACK_H
#define CV_TEST_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "cv_rpc.h"

#define CV_STACK_ACK     0x1
#define CV_STACK_RETRY   0x2
#define CV_STACK_REPORT  0x4
#define CV_STACK_GATEWAY 0x8
#define CV_STACK_ALL     0xf

typedef struct cv_test_stack {
    int which;     /* CV_STACK_* bits started */
    char dir[256]; /* private temp folder (sockets, logs) */
    char ack_url[320], retry_url[320], report_url[320];
    int gateway_port;
    char base_url[64]; /* "http://127.0.0.1:<port>" */
    pid_t pids[4];     /* ack, retry, report, gateway; 0 when not running */
} cv_test_stack;

/* The database the tests' own SQL uses: CAVRA_TEST_OWNER_DATABASE_URL
 * (the owner) when set, else CAVRA_DATABASE_URL (what the services log in
 * with); NULL when neither is set (tests then fail loudly). */
const char *cv_test_database_url(void);

/*
 * Starts the processes named by `which` and waits until each answers
 * (services: their Health RPC; gateway: GET /healthz), 20 s at most.
 * Returns 0, or -1 after printing why and the logs' tails to stderr.
 */
int cv_test_stack_start(cv_test_stack *s, int which);

/* Sends SIGTERM to every started process and waits for it; returns 0 when
 * all exited with status 0, -1 otherwise. Removes the temp folder. */
int cv_test_stack_stop(cv_test_stack *s);

/* Opens an RPC client to url (a stack's ack_url, ...) and waits until it
 * is connected, 5 s at most. Returns 0, or -1 after printing why to
 * stderr (nothing open then). */
int cv_test_client_open(const char *url, cv_rpc_client **cli);

/*
 * Defines a suite's stack `name` (a static cv_test_stack) and its cmocka
 * group setup and teardown, name##_start (cv_test_stack_start(&name,
 * which)) and name##_stop (cv_test_stack_stop(&name)).
 */
#define CV_TEST_SUITE_STACK(name, which)                                       \
    static cv_test_stack name;                                                 \
    static int name##_start(void **state)                                      \
    {                                                                          \
        (void)state;                                                           \
        return cv_test_stack_start(&name, (which));                            \
    }                                                                          \
    static int name##_stop(void **state)                                       \
    {                                                                          \
        (void)state;                                                           \
        return cv_test_stack_stop(&name);                                      \
    }

/*
 * A suite's setup: cv_test_stack_start(s, which), then a connected client
 * (cv_test_client_open) to each service whose pointer is not NULL: *ack,
 * *retry, *report. Returns 0, or -1 after printing why (nothing is left
 * open or running then).
 */
int cv_test_stack_start_clients(cv_test_stack *s, int which,
                                cv_rpc_client **ack, cv_rpc_client **retry,
                                cv_rpc_client **report);

/* A suite's teardown: closes the clients that are open (and NULLs them),
 * then returns cv_test_stack_stop(s). Any pointer may be NULL. */
int cv_test_stack_stop_clients(cv_test_stack *s, cv_rpc_client **ack,
                               cv_rpc_client **retry, cv_rpc_client **report);

/* Stops the processes (SIGTERM, wait) and starts them again with the same
 * URLs and port; returns 0 or -1. */
int cv_test_stack_restart(cv_test_stack *s);

/*
 * RPC keys for the tests (made once per test process, removed at exit):
 * a principals file and key files for "gateway" (admin, delegate),
 * "test-harness" (admin, delegate: this process signs with it),
 * "test-operator" (admin) and "test-auditor" (auditor). Stacks give the
 * services the principals file and the gateway its key. Returns 0 or -1.
 */
int cv_test_keys_init(void);

/* The path of a file in the keys folder ("principals", "<name>.key"), in
 * a small rotating thread-local buffer: copy it before four more calls. */
const char *cv_test_key_path(const char *file);

/* Counts the lines of process `name`'s log ("ack", "retry", "report",
 * "gateway"; NULL: the three services' logs) that contain `what`, echoing
 * each to stderr when echo is set. A log not written yet counts 0. */
int cv_test_stack_log_count(const cv_test_stack *s, const char *name,
                            const char *what, bool echo);

/* Starts argv (argv[0] looked up in PATH unless it holds a '/') with the
 * environment env, stdin /dev/null, stdout and stderr appended to log;
 * posix_spawn, safe in a multi-threaded test. Returns 0 with *pid, or -1
 * after printing why. */
int cv_test_spawn_logged(char *const argv[], char *const env[], const char *log,
                         pid_t *pid);

/* Binds 127.0.0.1:0 and returns the port the kernel chose, or -1. */
int cv_test_free_port(void);

/* Returns 1 when something accepts TCP connections on 127.0.0.1:port. */
int cv_test_port_open(int port);

/* Milliseconds of CLOCK_MONOTONIC, for timeouts. */
long cv_test_now_ms(void);

/* Sleeps ms milliseconds (resumed after signals). */
void cv_test_sleep_ms(long ms);

/* Runs a parameterised query (at most one text parameter, may be NULL) on
 * CAVRA_DATABASE_URL and returns the first column of the first row as a
 * long, or -1 on any failure. For assertions like "nothing was stored". */
long cv_test_db_scalar(const char *sql, const char *param);

#endif
