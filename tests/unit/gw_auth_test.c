/*
 * gw_auth_test.c -- unit tests of the gateway's bearer tokens and roles
 * (gateway/gw_auth.c, docs/operator-guide.md): token file parsing, the 401/403
 * decisions with their exact messages, the verified cv.Actor, and that no
 * message ever carries a token or a token hash (docs/api.md).
 *
 * Token files are written to a private temporary folder; the tokens are
 * made-up test strings.
 *
 * Run: ctest -R unit.gw_auth, or the binary alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cv_error.h"
#include "cv_id.h"
#include "gw_auth.h"
#include "gw_routes.h"

#define AUTH_TEST_REQUIRED                                                     \
    "a bearer token is required (Authorization: Bearer <token>)"
#define AUTH_TEST_INVALID "the bearer token is not valid"
#define AUTH_TEST_LINE_RULE                                                    \
    "expected '<sha256 hex> <actor> <role>[,<role>...]' with known roles"

/* One made-up token per actor of the shared file. */
static const struct {
    const char *token, *actor, *roles;
    unsigned int bits;
} auth_test_users[] = {
    {"rita-test-token-1", "rita", "release_manager", CV_ROLE_RELEASE_MANAGER},
    {"paul-test-token-2", "paul", "platform_owner", CV_ROLE_PLATFORM_OWNER},
    {"eve-test-token-3", "eve", "executive", CV_ROLE_EXECUTIVE},
    {"audrey-test-token-4", "audrey", "auditor", CV_ROLE_AUDITOR},
    {"svc-test-token-5", "svc", "service", CV_ROLE_SERVICE},
    {"ada-test-token-6", "ada", "admin", CV_ROLE_ADMIN},
};
#define AUTH_TEST_N_USERS (sizeof(auth_test_users) / sizeof(auth_test_users[0]))

/* A token whose file line lists its roles out of canonical order. */
#define AUTH_TEST_MULTI "multi-test-token-7"

static char auth_test_dir[64];
static int auth_test_files;

/* ---- helpers ---------------------------------------------------------- */

static void
auth_test_sha(const char *token, char out[CV_SHA256_HEX_LEN + 1])
{
    cv_sha256_hex(token, strlen(token), out);
}

/* Writes text to a new file in the temp folder; returns its path in out. */
static void
auth_test_write(const char *text, char *out, size_t outlen)
{
    FILE *f;

    snprintf(out, outlen, "%s/tokens-%d", auth_test_dir, auth_test_files++);
    f = fopen(out, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* Writes a one-line file "<line>\n" preceded by `before` lines, and asserts
 * loading fails with the line number `lineno` and without `secret`. */
static void
auth_test_bad_line(const char *before, const char *line, int lineno,
                   const char *secret)
{
    char text[1024], path[128], want[CV_ERROR_MSG_MAX];
    gw_auth *auth = (gw_auth *)&auth;
    cv_error err;
    int rv;

    snprintf(text, sizeof(text), "%s%s\n", before, line);
    auth_test_write(text, path, sizeof(path));
    cv_error_clear(&err);
    rv = gw_auth_load(path, &auth, &err);
    if (rv != CV_INVALID_ARGUMENT)
        fail_msg("line \"%s\": rv %d, expected INVALID_ARGUMENT", line, rv);
    assert_null(auth);
    assert_int_equal(err.code, CV_INVALID_ARGUMENT);
    snprintf(want, sizeof(want), "token file %s line %d: " AUTH_TEST_LINE_RULE,
             path, lineno);
    if (strcmp(err.msg, want) != 0)
        fail_msg("line \"%s\": message \"%s\", expected \"%s\"", line, err.msg,
                 want);
    if (secret != NULL && secret[0] != '\0' && strstr(err.msg, secret) != NULL)
        fail_msg("the message names \"%s\": %s", secret, err.msg);
}

/* Loads the shared file of auth_test_users plus AUTH_TEST_MULTI. */
static gw_auth *
auth_test_load_users(void)
{
    char text[4096], path[128], sha[CV_SHA256_HEX_LEN + 1];
    size_t o = 0;
    gw_auth *auth = NULL;
    cv_error err;

    o += (size_t)snprintf(text + o, sizeof(text) - o,
                          "# CAVRA tokens: sha256 actor roles\n\n");
    for (size_t i = 0; i < AUTH_TEST_N_USERS; i++) {
        auth_test_sha(auth_test_users[i].token, sha);
        o += (size_t)snprintf(text + o, sizeof(text) - o, "%s %s %s\n", sha,
                              auth_test_users[i].actor,
                              auth_test_users[i].roles);
    }
    auth_test_sha(AUTH_TEST_MULTI, sha);
    o += (size_t)snprintf(text + o, sizeof(text) - o,
                          "%s multi admin,auditor,release_manager\n", sha);
    assert_true(o < sizeof(text));
    auth_test_write(text, path, sizeof(path));
    cv_error_clear(&err);
    if (gw_auth_load(path, &auth, &err) != 0)
        fail_msg("loading the users: %s", err.msg);
    assert_non_null(auth);
    assert_int_equal(gw_auth_count(auth), AUTH_TEST_N_USERS + 1);
    return auth;
}

/* Fails when text contains any test token or any token's hash. */
static void
auth_test_no_secret(const char *text)
{
    char sha[CV_SHA256_HEX_LEN + 1];

    for (size_t i = 0; i < AUTH_TEST_N_USERS; i++) {
        auth_test_sha(auth_test_users[i].token, sha);
        if (strstr(text, auth_test_users[i].token) != NULL ||
            strstr(text, sha) != NULL)
            fail_msg("\"%s\" carries the token of %s", text,
                     auth_test_users[i].actor);
    }
    if (strstr(text, AUTH_TEST_MULTI) != NULL)
        fail_msg("\"%s\" carries a token", text);
}

/* Runs gw_auth_check and asserts it fails with code and exact message. */
static void
auth_test_reject(const gw_auth *auth, const char *header, unsigned int roles,
                 int code, const char *msg)
{
    Cv__Actor *actor = (Cv__Actor *)&actor;
    cv_error err;
    int rv;

    cv_error_clear(&err);
    rv = gw_auth_check(auth, header, roles, &actor, &err);
    if (rv != code)
        fail_msg("\"%s\": rv %d (%s), expected %d", header ? header : "(null)",
                 rv, err.msg, code);
    assert_int_equal(err.code, code);
    assert_null(actor);
    if (strcmp(err.msg, msg) != 0)
        fail_msg("\"%s\": message \"%s\", expected \"%s\"",
                 header ? header : "(null)", err.msg, msg);
    auth_test_no_secret(err.msg);
}

/* Runs gw_auth_check and asserts it passes; returns the actor. */
static Cv__Actor *
auth_test_pass(const gw_auth *auth, const char *header, unsigned int roles)
{
    Cv__Actor *actor = NULL;
    cv_error err;
    int rv;

    cv_error_clear(&err);
    rv = gw_auth_check(auth, header, roles, &actor, &err);
    if (rv != 0)
        fail_msg("\"%s\" for roles 0x%x: %d %s", header, roles, rv, err.msg);
    assert_non_null(actor);
    return actor;
}

static const char *
auth_test_bearer(const char *token)
{
    static char header[256];

    snprintf(header, sizeof(header), "Bearer %s", token);
    return header;
}

/* ---- setup ------------------------------------------------------------ */

static int
auth_test_setup(void **state)
{
    (void)state;
    snprintf(auth_test_dir, sizeof(auth_test_dir), "/tmp/gwauth-XXXXXX");
    return mkdtemp(auth_test_dir) != NULL ? 0 : -1;
}

static int
auth_test_teardown(void **state)
{
    char path[128];

    (void)state;
    for (int i = 0; i < auth_test_files; i++) {
        snprintf(path, sizeof(path), "%s/tokens-%d", auth_test_dir, i);
        unlink(path);
    }
    return rmdir(auth_test_dir);
}

/* ---- loading ---------------------------------------------------------- */

static void
test_gw_auth_load_comments_and_blank_lines(void **state)
{
    char sha1[CV_SHA256_HEX_LEN + 1], sha2[CV_SHA256_HEX_LEN + 1];
    char upper[CV_SHA256_HEX_LEN + 1], text[1024], path[128];
    gw_auth *auth = NULL;
    cv_error err;
    Cv__Actor *a;

    (void)state;
    auth_test_sha("tok-one", sha1);
    auth_test_sha("tok-two", sha2);
    for (size_t i = 0; i <= CV_SHA256_HEX_LEN; i++)
        upper[i] =
            (char)(sha2[i] >= 'a' && sha2[i] <= 'f' ? sha2[i] - 32 : sha2[i]);
    /* Comments (also indented), blank and white-space lines, tabs as
     * separators, CRLF endings, upper-case hex, no final newline. */
    snprintf(text, sizeof(text),
             "# tokens\n"
             "\n"
             "   \t \n"
             "   # indented comment %s\n"
             "%s\tone\trelease_manager\r\n"
             "\r\n"
             "  %s  two   auditor,executive",
             sha1, sha1, upper);
    auth_test_write(text, path, sizeof(path));
    cv_error_clear(&err);
    if (gw_auth_load(path, &auth, &err) != 0)
        fail_msg("load: %s", err.msg);
    assert_int_equal(gw_auth_count(auth), 2);

    a = auth_test_pass(auth, "Bearer tok-one", CV_ROLE_RELEASE_MANAGER);
    assert_string_equal(a->actor, "one");
    assert_int_equal(a->n_roles, 1);
    assert_string_equal(a->roles[0], "release_manager");
    cv__actor__free_unpacked(a, NULL);
    /* The upper-case hash matches the (lower-case) hash of the token. */
    a = auth_test_pass(auth, "Bearer tok-two", CV_ROLE_EXECUTIVE);
    assert_string_equal(a->actor, "two");
    assert_int_equal(a->n_roles, 2);
    assert_string_equal(a->roles[0], "executive");
    assert_string_equal(a->roles[1], "auditor");
    {
        char want[32];

        snprintf(want, sizeof(want), "token:%.12s", sha2);
        assert_string_equal(a->subject, want);
    }
    cv__actor__free_unpacked(a, NULL);
    gw_auth_free(auth);
}

static void
test_gw_auth_load_empty_file(void **state)
{
    char path[128];
    gw_auth *auth = NULL;
    cv_error err;

    (void)state;
    auth_test_write("# nobody yet\n\n", path, sizeof(path));
    cv_error_clear(&err);
    assert_int_equal(gw_auth_load(path, &auth, &err), 0);
    assert_non_null(auth);
    assert_int_equal(gw_auth_count(auth), 0);
    /* With no tokens every token is unknown. */
    auth_test_reject(auth, "Bearer anything", CV_ROLE_ANY, CV_UNAUTHENTICATED,
                     AUTH_TEST_INVALID);
    gw_auth_free(auth);
    assert_int_equal(gw_auth_count(NULL), 0);
    gw_auth_free(NULL);
}

static void
test_gw_auth_load_missing_file(void **state)
{
    char path[128], want[CV_ERROR_MSG_MAX];
    gw_auth *auth = (gw_auth *)&auth;
    cv_error err;

    (void)state;
    snprintf(path, sizeof(path), "%s/does-not-exist", auth_test_dir);
    cv_error_clear(&err);
    assert_int_equal(gw_auth_load(path, &auth, &err), CV_INVALID_ARGUMENT);
    assert_null(auth);
    snprintf(want, sizeof(want), "cannot read token file %s", path);
    assert_string_equal(err.msg, want);
}

static void
test_gw_auth_load_malformed_lines(void **state)
{
    char sha[CV_SHA256_HEX_LEN + 1], line[512], bad[CV_SHA256_HEX_LEN + 2];
    char good[200], before[600], actor[200], pre[11];

    (void)state;
    auth_test_sha("some-token", sha);
    /* Every hash field below starts with these 10 digits: no message may
     * carry them. */
    snprintf(pre, sizeof(pre), "%.10s", sha);
    snprintf(good, sizeof(good), "%s good auditor\n", sha);

    /* Bad hex: a non-hex digit, 63 and 65 digits, a "0x" prefix. */
    snprintf(bad, sizeof(bad), "%s", sha);
    bad[10] = 'g';
    snprintf(line, sizeof(line), "%s rita release_manager", bad);
    auth_test_bad_line("", line, 1, pre);
    snprintf(line, sizeof(line), "%.63s rita release_manager", sha);
    auth_test_bad_line("", line, 1, pre);
    snprintf(line, sizeof(line), "%sa rita release_manager", sha);
    auth_test_bad_line("", line, 1, pre);
    snprintf(line, sizeof(line), "0x%.62s rita release_manager", sha);
    auth_test_bad_line("", line, 1, pre);

    /* Unknown role, alone or in a list; empty list items; case matters. */
    snprintf(line, sizeof(line), "%s rita superuser", sha);
    auth_test_bad_line("", line, 1, pre);
    snprintf(line, sizeof(line), "%s rita release_manager,root", sha);
    auth_test_bad_line("", line, 1, pre);
    snprintf(line, sizeof(line), "%s rita Admin", sha);
    auth_test_bad_line("", line, 1, pre);
    snprintf(line, sizeof(line), "%s rita ,admin", sha);
    auth_test_bad_line("", line, 1, pre);
    snprintf(line, sizeof(line), "%s rita auditor,,admin", sha);
    auth_test_bad_line("", line, 1, pre);

    /* Missing fields. */
    snprintf(line, sizeof(line), "%s rita", sha);
    auth_test_bad_line("", line, 1, pre);
    snprintf(line, sizeof(line), "%s", sha);
    auth_test_bad_line("", line, 1, pre);
    auth_test_bad_line("", "rita release_manager", 1, NULL);

    /* An extra field (e.g. a space inside the role list). */
    snprintf(line, sizeof(line), "%s rita release_manager extra", sha);
    auth_test_bad_line("", line, 1, pre);
    snprintf(line, sizeof(line), "%s rita auditor, admin", sha);
    auth_test_bad_line("", line, 1, pre);

    /* Actor names are at most 128 bytes. */
    memset(actor, 'r', 129);
    actor[129] = '\0';
    snprintf(line, sizeof(line), "%s %s auditor", sha, actor);
    auth_test_bad_line("", line, 1, pre);

    /* The line number counts comments and blank lines; an earlier good
     * line does not rescue the file. */
    snprintf(before, sizeof(before), "# header\n\n%s   # note\n", good);
    snprintf(line, sizeof(line), "%s rita superuser", sha);
    auth_test_bad_line(before, line, 5, pre);
    snprintf(before, sizeof(before), "%s%s%s", good, good, good);
    snprintf(line, sizeof(line), "%s rita", sha);
    auth_test_bad_line(before, line, 4, pre);
}

static void
test_gw_auth_load_actor_length_limit(void **state)
{
    char sha[CV_SHA256_HEX_LEN + 1], actor[200], text[512], path[128];
    gw_auth *auth = NULL;
    cv_error err;
    Cv__Actor *a;

    (void)state;
    auth_test_sha("long-actor-token", sha);
    memset(actor, 'r', 128);
    actor[128] = '\0';
    snprintf(text, sizeof(text), "%s %s auditor\n", sha, actor);
    auth_test_write(text, path, sizeof(path));
    cv_error_clear(&err);
    if (gw_auth_load(path, &auth, &err) != 0)
        fail_msg("a 128-byte actor: %s", err.msg);
    a = auth_test_pass(auth, "Bearer long-actor-token", CV_ROLE_AUDITOR);
    assert_string_equal(a->actor, actor);
    cv__actor__free_unpacked(a, NULL);
    gw_auth_free(auth);
}

/* ---- checks ----------------------------------------------------------- */

static void
test_gw_auth_check_missing_or_malformed_header(void **state)
{
    gw_auth *auth = auth_test_load_users();

    (void)state;
    auth_test_reject(auth, NULL, CV_ROLE_ANY, CV_UNAUTHENTICATED,
                     AUTH_TEST_REQUIRED);
    auth_test_reject(auth, "", CV_ROLE_ANY, CV_UNAUTHENTICATED,
                     AUTH_TEST_REQUIRED);
    auth_test_reject(auth, "Basic YWRhOmFkYS10ZXN0LXRva2VuLTY=", CV_ROLE_ANY,
                     CV_UNAUTHENTICATED, AUTH_TEST_REQUIRED);
    /* The token without a scheme is not a bearer token. */
    auth_test_reject(auth, "ada-test-token-6", CV_ROLE_ANY, CV_UNAUTHENTICATED,
                     AUTH_TEST_REQUIRED);
    auth_test_reject(auth, "Token ada-test-token-6", CV_ROLE_ANY,
                     CV_UNAUTHENTICATED, AUTH_TEST_REQUIRED);
    auth_test_reject(auth, "Bearerada-test-token-6", CV_ROLE_ANY,
                     CV_UNAUTHENTICATED, AUTH_TEST_REQUIRED);
    /* An empty token. */
    auth_test_reject(auth, "Bearer", CV_ROLE_ANY, CV_UNAUTHENTICATED,
                     AUTH_TEST_REQUIRED);
    auth_test_reject(auth, "Bearer ", CV_ROLE_ANY, CV_UNAUTHENTICATED,
                     AUTH_TEST_REQUIRED);
    auth_test_reject(auth, "Bearer     ", CV_ROLE_ANY, CV_UNAUTHENTICATED,
                     AUTH_TEST_REQUIRED);
    gw_auth_free(auth);
}

static void
test_gw_auth_check_unknown_token(void **state)
{
    gw_auth *auth = auth_test_load_users();
    char sha[CV_SHA256_HEX_LEN + 1];

    (void)state;
    auth_test_reject(auth, "Bearer not-a-known-token", CV_ROLE_ANY,
                     CV_UNAUTHENTICATED, AUTH_TEST_INVALID);
    /* Near misses: a prefix, a longer token, another case. */
    auth_test_reject(auth, "Bearer ada-test-token-", CV_ROLE_ANY,
                     CV_UNAUTHENTICATED, AUTH_TEST_INVALID);
    auth_test_reject(auth, "Bearer ada-test-token-66", CV_ROLE_ANY,
                     CV_UNAUTHENTICATED, AUTH_TEST_INVALID);
    auth_test_reject(auth, "Bearer ADA-TEST-TOKEN-6", CV_ROLE_ANY,
                     CV_UNAUTHENTICATED, AUTH_TEST_INVALID);
    /* Only hashes are stored: presenting the hash itself does not work. */
    auth_test_sha("ada-test-token-6", sha);
    auth_test_reject(auth, auth_test_bearer(sha), CV_ROLE_ANY,
                     CV_UNAUTHENTICATED, AUTH_TEST_INVALID);
    gw_auth_free(auth);
}

static void
test_gw_auth_check_scheme_case_and_spaces(void **state)
{
    gw_auth *auth = auth_test_load_users();
    Cv__Actor *a;

    (void)state;
    /* The scheme is case-insensitive (RFC 9110 section 11.1); extra
     * spaces before the token are skipped. */
    a = auth_test_pass(auth, "bearer rita-test-token-1",
                       CV_ROLE_RELEASE_MANAGER);
    assert_string_equal(a->actor, "rita");
    cv__actor__free_unpacked(a, NULL);
    a = auth_test_pass(auth, "BEARER    rita-test-token-1",
                       CV_ROLE_RELEASE_MANAGER);
    assert_string_equal(a->actor, "rita");
    cv__actor__free_unpacked(a, NULL);
    gw_auth_free(auth);
}

static void
test_gw_auth_check_role_mismatch(void **state)
{
    gw_auth *auth = auth_test_load_users();

    (void)state;
    auth_test_reject(
        auth, "Bearer audrey-test-token-4", CV_ROLE_RELEASE_MANAGER,
        CV_PERMISSION_DENIED,
        "actor audrey lacks the role for this call (needs release_manager "
        "or admin)");
    auth_test_reject(auth, "Bearer audrey-test-token-4",
                     CV_ROLE_PLATFORM_OWNER | CV_ROLE_SERVICE,
                     CV_PERMISSION_DENIED,
                     "actor audrey lacks the role for this call (needs "
                     "platform_owner or service or admin)");
    auth_test_reject(auth, "Bearer rita-test-token-1", CV_ROLE_EXECUTIVE,
                     CV_PERMISSION_DENIED,
                     "actor rita lacks the role for this call (needs "
                     "executive or admin)");
    auth_test_reject(auth, "Bearer paul-test-token-2", CV_ROLE_RELEASE_MANAGER,
                     CV_PERMISSION_DENIED,
                     "actor paul lacks the role for this call (needs "
                     "release_manager or admin)");
    auth_test_reject(auth, "Bearer svc-test-token-5", CV_ROLE_PLATFORM_OWNER,
                     CV_PERMISSION_DENIED,
                     "actor svc lacks the role for this call (needs "
                     "platform_owner or admin)");
    /* Admin-only calls name only admin. */
    auth_test_reject(auth, "Bearer eve-test-token-3", CV_ROLE_ADMIN,
                     CV_PERMISSION_DENIED,
                     "actor eve lacks the role for this call (needs admin)");
    gw_auth_free(auth);
}

/* Each single-role token passes exactly the routes that list its role;
 * admin passes every route. */
static void
test_gw_auth_check_routes_by_role(void **state)
{
    gw_auth *auth = auth_test_load_users();

    (void)state;
    for (size_t u = 0; u < AUTH_TEST_N_USERS; u++) {
        for (size_t i = 0; i < gw_route_count; i++) {
            const gw_route *route = &gw_routes[i];
            int expect = (route->roles & auth_test_users[u].bits) != 0 ||
                         auth_test_users[u].bits == CV_ROLE_ADMIN;
            Cv__Actor *a = NULL;
            cv_error err;
            int rv;

            cv_error_clear(&err);
            rv = gw_auth_check(auth, auth_test_bearer(auth_test_users[u].token),
                               route->roles, &a, &err);
            if (expect && rv != 0)
                fail_msg("%s denied %s: %s", auth_test_users[u].actor,
                         route->rpc, err.msg);
            if (!expect && rv != CV_PERMISSION_DENIED)
                fail_msg("%s on %s: rv %d, expected PERMISSION_DENIED",
                         auth_test_users[u].actor, route->rpc, rv);
            if (expect) {
                assert_non_null(a);
                assert_string_equal(a->actor, auth_test_users[u].actor);
                assert_int_equal(a->n_roles, 1);
                assert_string_equal(a->roles[0], auth_test_users[u].roles);
                cv__actor__free_unpacked(a, NULL);
            } else {
                assert_null(a);
                auth_test_no_secret(err.msg);
            }
        }
    }
    /* The reads are open to every role (but verifying the whole chain:
     * auditors); the writes are not. */
    for (size_t i = 0; i < gw_route_count; i++) {
        if (strcmp(gw_routes[i].rpc, "report.VerifyEvidence") == 0)
            assert_int_equal(gw_routes[i].roles, CV_ROLE_AUDITOR);
        else if (strcmp(gw_routes[i].http_method, "GET") == 0)
            assert_int_equal(gw_routes[i].roles, CV_ROLE_ANY);
        else
            assert_true((gw_routes[i].roles & CV_ROLE_AUDITOR) == 0);
    }
    gw_auth_free(auth);
}

static void
test_gw_auth_check_actor_fields(void **state)
{
    gw_auth *auth = auth_test_load_users();
    char sha[CV_SHA256_HEX_LEN + 1], want[32];
    Cv__Actor *a;

    (void)state;
    a = auth_test_pass(auth, "Bearer paul-test-token-2",
                       CV_ROLE_PLATFORM_OWNER | CV_ROLE_SERVICE);
    auth_test_sha("paul-test-token-2", sha);
    snprintf(want, sizeof(want), "token:%.12s", sha);
    assert_string_equal(a->actor, "paul");
    assert_string_equal(a->subject, want);
    assert_int_equal(strlen(a->subject), strlen("token:") + 12);
    assert_int_equal(a->n_roles, 1);
    assert_string_equal(a->roles[0], "platform_owner");
    auth_test_no_secret(a->subject);
    cv__actor__free_unpacked(a, NULL);

    /* Roles come out in canonical order, whatever the file's order. */
    a = auth_test_pass(auth, "Bearer " AUTH_TEST_MULTI, CV_ROLE_EXECUTIVE);
    auth_test_sha(AUTH_TEST_MULTI, sha);
    snprintf(want, sizeof(want), "token:%.12s", sha);
    assert_string_equal(a->actor, "multi");
    assert_string_equal(a->subject, want);
    assert_int_equal(a->n_roles, 3);
    assert_string_equal(a->roles[0], "release_manager");
    assert_string_equal(a->roles[1], "auditor");
    assert_string_equal(a->roles[2], "admin");
    cv__actor__free_unpacked(a, NULL);

    /* A role the route lists passes even with others missing. */
    a = auth_test_pass(auth, "Bearer " AUTH_TEST_MULTI,
                       CV_ROLE_RELEASE_MANAGER);
    assert_int_equal(a->n_roles, 3);
    cv__actor__free_unpacked(a, NULL);
    gw_auth_free(auth);
}

static void
test_gw_auth_errors_never_carry_the_token(void **state)
{
    gw_auth *auth = auth_test_load_users();
    static const char *const headers[] = {
        "Bearer wrong-token-abc123",
        "Basic ada-test-token-6",
        "Bearer audrey-test-token-4",
        "Bearer rita-test-token-1",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        Cv__Actor *a = NULL;
        cv_error err;
        const char *tok = strchr(headers[i], ' ') + 1;

        cv_error_clear(&err);
        assert_int_not_equal(
            gw_auth_check(auth, headers[i], CV_ROLE_EXECUTIVE, &a, &err), 0);
        assert_null(a);
        if (strstr(err.msg, tok) != NULL)
            fail_msg("message carries the token: %s", err.msg);
        auth_test_no_secret(err.msg);
    }
    gw_auth_free(auth);
}

static void
test_gw_auth_roles_text(void **state)
{
    char out[160], small[10];

    (void)state;
    gw_auth_roles_text(CV_ROLE_ANY, out, sizeof(out));
    assert_string_equal(out, "release_manager or platform_owner or executive "
                             "or auditor or service or admin");
    gw_auth_roles_text(CV_ROLE_AUDITOR, out, sizeof(out));
    assert_string_equal(out, "auditor");
    gw_auth_roles_text(CV_ROLE_SERVICE | CV_ROLE_RELEASE_MANAGER, out,
                       sizeof(out));
    assert_string_equal(out, "release_manager or service");
    gw_auth_roles_text(0, out, sizeof(out));
    assert_string_equal(out, "");
    /* Truncated, never overrun. */
    gw_auth_roles_text(CV_ROLE_ANY, small, sizeof(small));
    assert_string_equal(small, "release_m");
}

/* The token file's role names are the registry's (one definition):
 * every CV_ROLE_* bit has a name that maps back to it, and nothing else
 * does. */
static void
test_gw_auth_role_names_are_the_registry(void **state)
{
    unsigned int all = 0;
    char out[160];

    (void)state;
    for (unsigned int bit = 1; bit <= CV_ROLE_ANY; bit <<= 1) {
        const char *name = cv_role_name(bit);

        assert_non_null(name);
        assert_int_equal(cv_role_bit(name, strlen(name)), bit);
        all |= bit;
    }
    assert_int_equal(all, CV_ROLE_ANY);
    assert_int_equal(__builtin_popcount(CV_ROLE_ANY), CV_ROLE_COUNT);
    assert_null(cv_role_name(0));
    assert_null(cv_role_name(CV_ROLE_ANY));
    assert_null(cv_role_name(CV_ROLE_ANY + 1));
    assert_int_equal(cv_role_bit("admin", 5), CV_ROLE_ADMIN);
    assert_int_equal(cv_role_bit("admins", 6), 0);
    assert_int_equal(cv_role_bit("admin", 4), 0);
    assert_int_equal(cv_role_bit("Admin", 5), 0);
    assert_int_equal(cv_role_bit("", 0), 0);
    cv_roles_text(CV_ROLE_EXECUTIVE | CV_ROLE_AUDITOR, ", ", out, sizeof(out));
    assert_string_equal(out, "executive, auditor");
    cv_roles_text(CV_ROLE_ANY, "|", out, sizeof(out));
    assert_string_equal(
        out, "release_manager|platform_owner|executive|auditor|service|admin");
    cv_roles_text(CV_ROLE_ANY, "|", out, 0); /* no room: untouched, no crash */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gw_auth_load_comments_and_blank_lines),
        cmocka_unit_test(test_gw_auth_load_empty_file),
        cmocka_unit_test(test_gw_auth_load_missing_file),
        cmocka_unit_test(test_gw_auth_load_malformed_lines),
        cmocka_unit_test(test_gw_auth_load_actor_length_limit),
        cmocka_unit_test(test_gw_auth_check_missing_or_malformed_header),
        cmocka_unit_test(test_gw_auth_check_unknown_token),
        cmocka_unit_test(test_gw_auth_check_scheme_case_and_spaces),
        cmocka_unit_test(test_gw_auth_check_role_mismatch),
        cmocka_unit_test(test_gw_auth_check_routes_by_role),
        cmocka_unit_test(test_gw_auth_check_actor_fields),
        cmocka_unit_test(test_gw_auth_errors_never_carry_the_token),
        cmocka_unit_test(test_gw_auth_roles_text),
        cmocka_unit_test(test_gw_auth_role_names_are_the_registry),
    };

    return cmocka_run_group_tests_name("gw_auth", tests, auth_test_setup,
                                       auth_test_teardown);
}
