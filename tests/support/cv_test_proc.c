/*
 * cv_test_proc.c -- tools of the build tree and in-process RPC servers
 * for the tests (see cv_test_proc.h).
 *
 * Tools are started with posix_spawn (the test process runs NNG threads;
 * see cv_test_stack.c), their stdout sent to a file that is parsed after
 * they exit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cv_test_proc.h"
#include "cv_test_stack.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Arguments a tool gets at most (more is a test bug). */
#define CV_TEST_TOOL_MAX_ARGS 16

int
cv_test_run_tool(const char *tool, const char *dir, json_t **out, ...)
{
    char bin[512], outpath[512];
    char *argv[CV_TEST_TOOL_MAX_ARGS + 2];
    posix_spawn_file_actions_t fa;
    int argc = 0, status;
    const char *a;
    va_list ap;
    pid_t pid;

    snprintf(bin, sizeof(bin), "%s/tools/%s", CV_TEST_BUILD_DIR, tool);
    snprintf(outpath, sizeof(outpath), "%s/%s.out", dir, tool);
    argv[argc++] = bin;
    va_start(ap, out);
    while ((a = va_arg(ap, const char *)) != NULL) {
        if (argc > CV_TEST_TOOL_MAX_ARGS) {
            va_end(ap);
            fail_msg("%s: more than %d arguments", tool, CV_TEST_TOOL_MAX_ARGS);
        }
        argv[argc++] = (char *)a;
    }
    va_end(ap);
    argv[argc] = NULL;
    assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
    assert_int_equal(posix_spawn_file_actions_addopen(
                         &fa, 1, outpath, O_WRONLY | O_CREAT | O_TRUNC, 0600),
                     0);
    assert_int_equal(posix_spawn(&pid, bin, &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    while (waitpid(pid, &status, 0) < 0)
        assert_int_equal(errno, EINTR);
    assert_true(WIFEXITED(status));
    if (out != NULL)
        *out = json_load_file(outpath, 0, NULL);
    return WEXITSTATUS(status);
}

int
cv_test_inproc_start(cv_test_inproc *s, const char *tag,
                     const cv_rpc_server_config *cfg,
                     const cv_rpc_method *methods, size_t n_methods,
                     const char *wrap, cv_rpc_handler_fn wrapper)
{
    cv_rpc_server_config c = *cfg;
    cv_error err;

    memset(s, 0, sizeof(*s));
    if (n_methods > CV_TEST_INPROC_MAX_METHODS) {
        fprintf(stderr, "cv_test_inproc: %zu methods, at most %d\n", n_methods,
                CV_TEST_INPROC_MAX_METHODS);
        return -1;
    }
    for (size_t i = 0; i < n_methods; i++) {
        s->methods[i] = methods[i];
        if (wrap != NULL && strcmp(methods[i].name, wrap) == 0) {
            s->real = methods[i].handler;
            s->methods[i].handler = wrapper;
        }
    }
    if (wrap != NULL && s->real == NULL) {
        fprintf(stderr, "cv_test_inproc: no method %s to wrap\n", wrap);
        return -1;
    }
    snprintf(s->url, sizeof(s->url), "ipc:///tmp/cavra-%s-test-%ld.sock", tag,
             (long)getpid());
    c.url = s->url;
    c.methods = s->methods;
    c.n_methods = n_methods;
    c.principals = NULL;
    cv_error_clear(&err);
    if (cv_rpc_server_start(&c, &s->srv, &err) != 0) {
        fprintf(stderr, "cv_test_inproc: cannot start the server: %s\n",
                err.msg);
        return -1;
    }
    if (cv_test_client_open(s->url, &s->cli) != 0) {
        cv_test_inproc_stop(s);
        return -1;
    }
    return 0;
}

void
cv_test_inproc_stop(cv_test_inproc *s)
{
    if (s->cli != NULL)
        cv_rpc_client_close(s->cli);
    if (s->srv != NULL)
        cv_rpc_server_stop(s->srv);
    if (s->url[0] != '\0')
        unlink(s->url + strlen("ipc://"));
    s->cli = NULL;
    s->srv = NULL;
}
