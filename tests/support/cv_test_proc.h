/*
 * cv_test_proc.h -- the other processes and servers a test runs besides a
 * stack (cv_test_stack.h): a tool of the build tree with its JSON output,
 * and an RPC server inside the test process with one method wrapped (to
 * inject failures around the real handler).
 *
 * cv_test_run_tool fails the running cmocka test on a spawn error: include
 * <cmocka.h> (with its prerequisites) before this header. The in-process
 * server's functions never touch cmocka (group setups call them).
 */
#ifndef CV_TEST_PROC_H
#define CV_TEST_PROC_H

#include <jansson.h>
#include <stddef.h>

#include "cv_rpc.h"

/*
 * Runs CV_TEST_BUILD_DIR/tools/<tool> with the arguments that follow (a
 * NULL-terminated list of strings; none: just NULL), its stdout written
 * to <dir>/<tool>.out, its stderr ours. Returns its exit status; *out
 * (when not NULL) gets that stdout parsed as JSON, or NULL when it is
 * none. Fails the test when it cannot be started or did not exit.
 */
int cv_test_run_tool(const char *tool, const char *dir, json_t **out, ...)
    __attribute__((sentinel));

#define CV_TEST_INPROC_MAX_METHODS 16

/* An RPC server in this process and a client connected to it. */
typedef struct cv_test_inproc {
    cv_rpc_server *srv;
    cv_rpc_client *cli;
    char url[128]; /* ipc:///tmp/cavra-<tag>-test-<pid>.sock */
    cv_rpc_method methods[CV_TEST_INPROC_MAX_METHODS];
    cv_rpc_handler_fn real; /* the wrapped method's own handler */
} cv_test_inproc;

/*
 * Starts cfg (service_name, database_url, contexts, db_workers,
 * statements; url and methods are set here) with `methods`, the one named
 * `wrap` handled by `wrapper` instead (its own handler stays in s->real
 * for the wrapper to call), on a private ipc socket named after tag, and
 * connects s->cli (5 s at most). No authentication (cfg.principals
 * NULL). Returns 0, or -1 after printing why to stderr.
 */
int cv_test_inproc_start(cv_test_inproc *s, const char *tag,
                         const cv_rpc_server_config *cfg,
                         const cv_rpc_method *methods, size_t n_methods,
                         const char *wrap, cv_rpc_handler_fn wrapper);

/* Closes the client, stops the server and removes its socket. */
void cv_test_inproc_stop(cv_test_inproc *s);

#endif
