/*
 * redact_test.c -- unit tests for cv_redact, the public-safety scanner
 * (docs/api.md). Run: ctest -L unit, or the binary alone.
 *
 * Every expected-output check also runs the output through cv_redact a
 * second time and requires the same text and zero new redactions, so each
 * case doubles as an idempotence test. Vendor-format sample tokens are
 * split into adjacent string literals so that secret scanners do not flag
 * this file; they are fakes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_redact.h"
#include "redact_corpus.h"

#define REDACT_TEST_SLACK                                                      \
    "xox"                                                                      \
    "b-123456789012-1234567890123-abcdefghijklmnopqrstuvwx"
#define REDACT_TEST_GITHUB                                                     \
    "gh"                                                                       \
    "p_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"
#define REDACT_TEST_JWT                                                        \
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"                                     \
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDI" \
    "y"                                                                        \
    "fQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
#define REDACT_TEST_HEX40 "da39a3ee5e6b4b0d3255bfef95601890afd80709"
#define REDACT_TEST_B64   "dGhpcyBpcyBhIHZlcnkgc2VjcmV0IHBhc3N3b3JkIGluZGVlZA=="
#define REDACT_TEST_AWS   "AKIAIOSFODNN7EXAMPLE" /* AWS's documented example */

/*
 * Redacts in, asserts the exact output and number of redactions, then
 * asserts that a second pass changes nothing and counts nothing.
 */
static void
redact_test_check(const char *in, const char *want, int want_count)
{
    int count = 0;
    int again = 0;
    char *out = cv_redact(in, &count);
    char *out2;

    assert_non_null(out);
    if (strcmp(out, want) != 0 || count != want_count) {
        print_error(
            "cv_redact(\"%s\")\n  got  [%d] \"%s\"\n  want [%d] \"%s\"\n", in,
            count, out, want_count, want);
        free(out);
        fail();
    }
    out2 = cv_redact(out, &again);
    assert_non_null(out2);
    assert_string_equal(out2, out);
    assert_int_equal(again, 0);
    free(out2);
    free(out);
}

/* Asserts that none of the listed fragments survives in the output. */
static void
redact_test_gone(const char *in, const char *const *frags, size_t n)
{
    int count = 0;
    char *out = cv_redact(in, &count);

    assert_non_null(out);
    for (size_t i = 0; i < n; i++) {
        if (strstr(out, frags[i]) != NULL)
            fail_msg("\"%s\" survived in \"%s\"", frags[i], out);
    }
    assert_true(count > 0);
    free(out);
}

static void
test_redact_null_and_empty(void **state)
{
    int count = 3;
    char *out;

    (void)state;
    assert_null(cv_redact(NULL, &count));
    assert_null(cv_redact(NULL, NULL));
    assert_int_equal(count, 3);
    out = cv_redact("", &count);
    assert_non_null(out);
    assert_string_equal(out, "");
    assert_int_equal(count, 3);
    free(out);
}

static void
test_redact_url_query(void **state)
{
    (void)state;
    redact_test_check("see https://hooks.example.com/path/to?token=abc&x=1 now",
                      "see https://hooks.example.com/path/to?REDACTED now", 1);
    /* The fragment goes with the query. */
    redact_test_check("https://example.com/a?b=c#frag",
                      "https://example.com/a?REDACTED", 1);
    /* Sentence punctuation after the URL is kept. */
    redact_test_check("(see https://example.com/x?y=1).",
                      "(see https://example.com/x?REDACTED).", 1);
    redact_test_check("url=https://example.com/path?q=1",
                      "url=https://example.com/path?REDACTED", 1);
    /* An empty query has nothing to hide. */
    redact_test_check("https://example.com/?", "https://example.com/?", 0);
}

static void
test_redact_url_userinfo(void **state)
{
    (void)state;
    redact_test_check("https://user:pw@example.com/a/b",
                      "https://example.com/a/b", 1);
    redact_test_check("ftp://anonymous@ftp.example.com/pub",
                      "ftp://ftp.example.com/pub", 1);
    /* User-info and query are two redactions. */
    redact_test_check(
        "postgresql://cavra:s3cret@db.internal:5432/cavra?sslmode=x",
        "postgresql://db.internal:5432/cavra?REDACTED", 2);
    /* An '@' in the path is not user-info. */
    redact_test_check("https://example.com/users/@ops",
                      "https://example.com/users/@ops", 0);
}

static void
test_redact_url_fragment_and_path(void **state)
{
    (void)state;
    /* Key=value fragments carry OAuth tokens; anchors do not. */
    redact_test_check("https://example.com/cb#access_token=abc&state=1",
                      "https://example.com/cb#REDACTED", 1);
    redact_test_check("https://docs.example.com/guide#section-2.",
                      "https://docs.example.com/guide#section-2.", 0);
    /* A random path segment (a webhook secret) is redacted in place... */
    redact_test_check("post to https://example.com/hook/T00000000/"
                      "aBcD1234eFgH5678iJkL9012 failed",
                      "post to https://example.com/hook/T00000000/REDACTED "
                      "failed",
                      1);
    /* ...and a known webhook host loses its whole path, random or not. */
    redact_test_check(
        "post to https://hooks.slack.com/services/T00000000/B00000000/"
        "XXXXXXXXXXXXXXXXXXXXXXXX failed",
        "post to https://hooks.slack.com/services/REDACTED failed", 1);
    redact_test_check("GET https://api.pagerduty.com/incidents: 503",
                      "GET https://api.pagerduty.com/incidents: 503", 0);
}

static void
test_redact_bearer_and_basic(void **state)
{
    (void)state;
    redact_test_check("Bearer abc123", "Bearer REDACTED", 1);
    redact_test_check("sent Bearer " REDACT_TEST_JWT " to the API",
                      "sent Bearer REDACTED to the API", 1);
    redact_test_check("Basic dXNlcjpwYXNzd29yZA==", "Basic REDACTED", 1);
    redact_test_check("basic YWRtaW46YWRtaW4= rejected",
                      "basic REDACTED rejected", 1);
    /* The full stop after a credential stays. */
    redact_test_check("header was Bearer abc123def.",
                      "header was Bearer REDACTED.", 1);
}

static void
test_redact_bearer_basic_prose(void **state)
{
    (void)state;
    redact_test_check("Basic troubleshooting steps were followed.",
                      "Basic troubleshooting steps were followed.", 0);
    redact_test_check("The Bearer token expired; use Basic auth.",
                      "The Bearer token expired; use Basic auth.", 0);
    redact_test_check("the bearer of bad news", "the bearer of bad news", 0);
    redact_test_check("Basic 2024 plan, Basic v2", "Basic 2024 plan, Basic v2",
                      0);
}

static void
test_redact_authorization_header(void **state)
{
    (void)state;
    redact_test_check("Authorization: xyz", "Authorization: REDACTED", 1);
    redact_test_check("Authorization: Bearer abc.def",
                      "Authorization: Bearer REDACTED", 1);
    redact_test_check("Proxy-Authorization: Basic dXNlcjpwYXNz\nnext line",
                      "Proxy-Authorization: Basic REDACTED\nnext line", 1);
    redact_test_check("curl -H 'Authorization: Bearer abc123' https://x.io",
                      "curl -H 'Authorization: Bearer REDACTED' https://x.io",
                      1);
    /* Header values run to the end of the line. */
    redact_test_check("Cookie: session=abc; theme=dark\nok",
                      "Cookie: REDACTED\nok", 1);
    redact_test_check("{\"authorization\":\"Bearer abc\"}",
                      "{\"authorization\":\"Bearer REDACTED\"}", 1);
}

static void
test_redact_secret_pairs(void **state)
{
    (void)state;
    redact_test_check("api_key=xyz", "api_key=REDACTED", 1);
    redact_test_check("api_key=xyz&foo=bar", "api_key=REDACTED&foo=bar", 1);
    redact_test_check("password: hunter2", "password: REDACTED", 1);
    redact_test_check("Password:hunter2 then", "Password:REDACTED then", 1);
    redact_test_check("token=deadbeef", "token=REDACTED", 1);
    redact_test_check("token = deadbeef", "token = REDACTED", 1);
    redact_test_check("X-Api-Key: 1234", "X-Api-Key: REDACTED", 1);
    redact_test_check("apikey=1 api-key=2 access_key=3 private_key=4",
                      "apikey=REDACTED api-key=REDACTED access_key=REDACTED "
                      "private_key=REDACTED",
                      4);
    redact_test_check("client_secret=a secret=b passwd=c pwd=d",
                      "client_secret=REDACTED secret=REDACTED passwd=REDACTED "
                      "pwd=REDACTED",
                      4);
    redact_test_check("session=a cookie=b signature=c refresh_token=d",
                      "session=REDACTED cookie=REDACTED signature=REDACTED "
                      "refresh_token=REDACTED",
                      4);
    /* The name may be the tail of a path. */
    redact_test_check("GET /api/v1/token=abc", "GET /api/v1/token=REDACTED", 1);
}

static void
test_redact_quoted_pairs(void **state)
{
    (void)state;
    redact_test_check("{\"password\": \"hunter2\", \"n\": 1}",
                      "{\"password\": \"REDACTED\", \"n\": 1}", 1);
    redact_test_check("password=\"a b c\" and 'token': 'x'",
                      "password=\"REDACTED\" and 'token': 'REDACTED'", 2);
    /* Escaped quotes stay inside the value. */
    redact_test_check("\"token\":\"abc\\\"def\" rest",
                      "\"token\":\"REDACTED\" rest", 1);
    /* JSON literals are not secrets; compact JSON keeps its shape. */
    redact_test_check("{\"api_key\":null,\"secret\":abc,\"n\":1}",
                      "{\"api_key\":null,\"secret\":REDACTED,\"n\":1}", 1);
}

static void
test_redact_pair_names_not_secret(void **state)
{
    (void)state;
    redact_test_check("bypass=true compass: north",
                      "bypass=true compass: north", 0);
    redact_test_check("passwords: rotate monthly; tokens: 5",
                      "passwords: rotate monthly; tokens: 5", 0);
    redact_test_check("max_tokens=100 status_code=503 attempt_count=3",
                      "max_tokens=100 status_code=503 attempt_count=3", 0);
    redact_test_check("Idempotency-Key: 7f1c2d", "Idempotency-Key: 7f1c2d", 0);
    /* A secret name with no value on its line redacts nothing. */
    redact_test_check("password:\nnext", "password:\nnext", 0);
    redact_test_check("token=", "token=", 0);
}

static void
test_redact_aws_keys(void **state)
{
    (void)state;
    redact_test_check("AWS key " REDACT_TEST_AWS " leaked",
                      "AWS key REDACTED leaked", 1);
    redact_test_check("ASIA1234567890ABCDEF", "REDACTED", 1);
    /* Also inside a longer run. */
    redact_test_check("key/" REDACT_TEST_AWS, "key/REDACTED", 1);
    /* Too short, or lower case: not a key id. */
    redact_test_check("AKIA1234 and akiaiosfodnn7example",
                      "AKIA1234 and akiaiosfodnn7example", 0);
}

static void
test_redact_slack_tokens(void **state)
{
    (void)state;
    redact_test_check("slack " REDACT_TEST_SLACK " here", "slack REDACTED here",
                      1);
    redact_test_check("xox"
                      "p-1234567890-abcdef",
                      "REDACTED", 1);
    /* A bare prefix is just text. */
    redact_test_check("xox"
                      "p-1234 and xox",
                      "xox"
                      "p-1234 and xox",
                      0);
}

static void
test_redact_github_tokens(void **state)
{
    (void)state;
    redact_test_check("gh " REDACT_TEST_GITHUB " done", "gh REDACTED done", 1);
    redact_test_check("github"
                      "_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCD",
                      "REDACTED", 1);
    redact_test_check("gh"
                      "p_short",
                      "gh"
                      "p_short",
                      0);
}

static void
test_redact_jwt(void **state)
{
    (void)state;
    /* One JWT is one redaction; the full stop after it stays. */
    redact_test_check("jwt " REDACT_TEST_JWT ".", "jwt REDACTED.", 1);
    redact_test_check("id_token:" REDACT_TEST_JWT, "id_token:REDACTED", 1);
}

static void
test_redact_hex_and_base64(void **state)
{
    (void)state;
    redact_test_check("key " REDACT_TEST_HEX40 " broke it",
                      "key REDACTED broke it", 1);
    /* A git object id after "commit" is public and stays readable. */
    redact_test_check("commit " REDACT_TEST_HEX40 " broke it",
                      "commit " REDACT_TEST_HEX40 " broke it", 0);
    redact_test_check("DA39A3EE5E6B4B0D3255BFEF95601890AFD80709", "REDACTED",
                      1);
    redact_test_check(
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca49"
        "5991b7852b855",
        "sha256:REDACTED", 1);
    redact_test_check("blob " REDACT_TEST_B64 " end", "blob REDACTED end", 1);
    redact_test_check("secret key wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY ok",
                      "secret key REDACTED ok", 1);
    /* A token glued to words by '-' is still found. */
    redact_test_check("failed-with-key-aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z",
                      "REDACTED", 1);
    /* 31 characters is below the threshold. */
    redact_test_check("aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1x",
                      "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1x", 0);
}

static void
test_redact_ids_unchanged(void **state)
{
    static const char *keep[] = {
        "plan gordackrecoveryesc-0123456789abcdef acked",
        "gordackrecoveryesc-3f9a0c1be7d24a58",
        "gordackrecoveryescack-3f9a0c1be7d24a58",
        "gordackrecoveryescretry-9e107d9d372bb682",
        "rcd-3f9a0c1be7d24a58 gordackexecsched-b6589fc6ab0dc82c",
        "see /runtime/go-pilot/recovery-escalations/"
        "gordackrecoveryesc-3f9a0c1be7d24a58/trace",
        "https://cavra.example.com/recovery-escalations/"
        "gordackrecoveryesc-3f9a0c1be7d24a58/trace",
        "request 550e8400-e29b-41d4-a716-446655440000 failed",
        "req-550e8400-e29b-41d4-a716-446655440000",
        "cavra.go-backend-pilot.rollback-drill-acknowledgement-audit-delivery-"
        "recovery-escalation-ack.v1",
        "go_backend_rollback_drill_acknowledgement_audit_recovery_escalation",
        "connector-recovery-2026-11-27-retry-execution-v2",
        "/var/lib/postgresql/data/pg_wal/000000010000000000000001",
        "acked at 2026-11-27T05:29:23.123456Z and 2026-11-27T07:29:23+02:00",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
        redact_test_check(keep[i], keep[i], 0);
}

static void
test_redact_prose_unchanged(void **state)
{
    static const char *keep[] = {
        "The connector failed after 3 retries; slack, teams, jira, servicenow "
        "and pagerduty were notified.",
        "Escalated to the on-call release manager at 05:29 UTC.",
        "Webhook returned HTTP 503 (Service Unavailable), retry in 15 minutes.",
        "See RFC3339 and ISO8601. Internationalization and "
        "counterrevolutionaries are long words.",
        "Root cause: token bucket exhausted, sessions were dropped.",
        "email ops@example.com about it, phone +1 555 0100",
        "na\xc3\xafve caf\xc3\xa9 r\xc3\xa9sum\xc3\xa9 \xe2\x80\x94 "
        "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
        "Provider names: webhook, slack, teams, jira, servicenow, pagerduty.",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
        redact_test_check(keep[i], keep[i], 0);
}

static void
test_redact_already_redacted(void **state)
{
    (void)state;
    /* Our own output is never counted again. */
    redact_test_check(
        "REDACTED ?REDACTED https://x.io/?REDACTED Bearer REDACTED "
        "password: REDACTED Authorization: Basic REDACTED "
        "\"token\": \"REDACTED\" https://x.io/cb#REDACTED",
        "REDACTED ?REDACTED https://x.io/?REDACTED Bearer REDACTED "
        "password: REDACTED Authorization: Basic REDACTED "
        "\"token\": \"REDACTED\" https://x.io/cb#REDACTED",
        0);
}

static void
test_redact_count_accumulates(void **state)
{
    int count = 5;
    char *out;

    (void)state;
    /* The count is ADDED to *count, one per redaction. */
    out = cv_redact("password: a token=b Bearer c1 " REDACT_TEST_AWS
                    " https://u:p@h.io/?q=1",
                    &count);
    assert_non_null(out);
    assert_string_equal(out,
                        "password: REDACTED token=REDACTED Bearer REDACTED "
                        "REDACTED https://h.io/?REDACTED");
    assert_int_equal(count, 5 + 6);
    free(out);

    /* count may be NULL. */
    out = cv_redact("token=x", NULL);
    assert_string_equal(out, "token=REDACTED");
    free(out);
}

static void
test_redact_no_secret_remains(void **state)
{
    static const char *in =
        "Delivery to https://svc:Sup3rS3cret@hooks.example.com/v1?sig=abcd1234 "
        "failed with Authorization: Bearer tok_live_998877 after "
        "api_key=k3yk3yk3y, password: hunter2, " REDACT_TEST_AWS ", "
        "" REDACT_TEST_SLACK ", " REDACT_TEST_GITHUB ", " REDACT_TEST_JWT
        ", " REDACT_TEST_HEX40 " and " REDACT_TEST_B64 ".";
    static const char *const secrets[] = {
        "svc",    "Sup3rS3cret", "abcd1234", "tok_live", "998877",
        "k3yk3y", "hunter2",     "AKIA",     "xoxb",     "ghp_",
        "eyJ",    "SflKxwRJ",    "da39a3ee", "dGhpcyBp", "@",
    };

    (void)state;
    redact_test_gone(in, secrets, sizeof(secrets) / sizeof(secrets[0]));
}

static void
test_redact_long_input(void **state)
{
    size_t n = 1u << 20;
    char *in = malloc(n + 64);
    char *out;
    int count = 0;

    (void)state;
    assert_non_null(in);
    /* A megabyte of words, then a secret at the very end. */
    for (size_t i = 0; i < n; i++)
        in[i] = (i % 7 == 6) ? ' ' : (char)('a' + (int)(i % 26));
    strcpy(in + n, " password: hunter2");
    out = cv_redact(in, &count);
    assert_non_null(out);
    assert_int_equal(count, 1);
    assert_null(strstr(out, "hunter2"));
    assert_int_equal(strlen(out), n + strlen(" password: REDACTED"));
    free(out);

    /* One enormous run: a single token, redacted once. */
    for (size_t i = 0; i < n; i++)
        in[i] = "aZ3"[i % 3];
    in[n] = '\0';
    count = 0;
    out = cv_redact(in, &count);
    assert_string_equal(out, "REDACTED");
    assert_int_equal(count, 1);
    free(out);
    free(in);
}

static void
test_redact_binary_input(void **state)
{
    char in[256];
    char *out;
    int count = 0;

    (void)state;
    /* Every non-NUL byte value, invalid UTF-8 included, passes through. */
    for (int i = 1; i < 256; i++)
        in[i - 1] = (char)i;
    in[255] = '\0';
    out = cv_redact(in, &count);
    assert_non_null(out);
    assert_int_equal(count, 0);
    assert_string_equal(out, in);
    free(out);

    /* Broken UTF-8 around a secret does not stop the redaction. */
    redact_test_check("\xff\xfe token=abc \xc3", "\xff\xfe token=REDACTED \xc3",
                      1);
}

/* A small deterministic generator, so the test is the same everywhere. */
static uint32_t
redact_test_next(uint32_t *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    return (*seed >> 16) & 0x7fff;
}

static void
test_redact_mixed_idempotent(void **state)
{
    static const char *const frags[] = {
        "password: hunter2",
        "token=abc",
        "Bearer abc123",
        "Basic dXNlcjpwYXNz",
        REDACT_TEST_AWS,
        REDACT_TEST_SLACK,
        REDACT_TEST_GITHUB,
        REDACT_TEST_JWT,
        REDACT_TEST_HEX40,
        "https://u:p@h.io/a/b?c=d#e",
        "https://h.io/x#a=b",
        "REDACTED",
        "gordackrecoveryesc-3f9a0c1be7d24a58",
        "550e8400-e29b-41d4-a716-446655440000",
        "the",
        "2026-11-27T05:29:23Z",
        " ",
        "\n",
        "-",
        "_",
        "/",
        "=",
        ":",
        "?",
        "#",
        "@",
        "\"",
        "'",
        ",",
        ".",
        "+",
        "Authorization",
        "Cookie",
        "api_key",
        "\xc3\xa9",
        "\xff",
        "http://",
        "://",
        "eyJ",
        "AKIA",
    };
    uint32_t seed = 20261127;

    (void)state;
    /* Glued fragments hit the rules' edges; the second pass must agree. */
    for (int it = 0; it < 20000; it++) {
        char buf[1024];
        size_t len = 0;
        int parts = (int)(redact_test_next(&seed) % 10) + 1;
        int c1 = 0;
        int c2 = 0;
        char *r1;
        char *r2;

        for (int k = 0; k < parts; k++) {
            const char *f = frags[redact_test_next(&seed) %
                                  (sizeof(frags) / sizeof(frags[0]))];
            size_t fl = strlen(f);

            if (len + fl >= sizeof(buf))
                break;
            memcpy(buf + len, f, fl);
            len += fl;
        }
        buf[len] = '\0';
        r1 = cv_redact(buf, &c1);
        r2 = cv_redact(r1, &c2);
        assert_non_null(r1);
        assert_non_null(r2);
        if (strcmp(r1, r2) != 0 || c2 != 0)
            fail_msg("not idempotent: \"%s\" -> \"%s\" -> \"%s\"", buf, r1, r2);
        free(r1);
        free(r2);
    }
}

/*
 * The secret corpus: in every case the planted secret must be gone, at
 * least one redaction counted, the output no longer than the input plus
 * one marker per redaction, and a second pass must change nothing.
 * Prints the detection rate; requires 100%.
 */
static void
test_redact_corpus_secrets(void **state)
{
    size_t caught = 0;

    (void)state;
    for (size_t i = 0; i < REDACT_SECRETS_N; i++) {
        const redact_case *c = &REDACT_SECRETS[i];
        int count = 0;
        int again = 0;
        char *out = cv_redact(c->text, &count);
        char *out2;
        bool ok;

        assert_non_null(out);
        out2 = cv_redact(out, &again);
        assert_non_null(out2);
        ok = strstr(out, c->secret) == NULL && count > 0 &&
             strlen(out) <= strlen(c->text) + 8 * (size_t)count;
        if (ok)
            caught++;
        else
            print_error("MISSED [%s] \"%s\"\n  -> [%d] \"%s\"\n", c->family,
                        c->text, count, out);
        if (strcmp(out, out2) != 0 || again != 0)
            fail_msg("[%s] not idempotent: \"%s\" -> \"%s\" -> \"%s\"",
                     c->family, c->text, out, out2);
        free(out2);
        free(out);
    }
    printf("redaction corpus: %zu/%zu secret forms redacted, detection rate "
           "%.1f%%\n",
           caught, REDACT_SECRETS_N, 100.0 * (double)caught / REDACT_SECRETS_N);
    assert_true(REDACT_SECRETS_N >= 60);
    assert_int_equal(caught, REDACT_SECRETS_N);
}

/* Ordinary operator text comes through byte for byte; prints the rate. */
static void
test_redact_corpus_benign(void **state)
{
    size_t changed = 0;

    (void)state;
    for (size_t i = 0; i < REDACT_BENIGN_N; i++) {
        int count = 0;
        char *out = cv_redact(REDACT_BENIGN[i], &count);

        assert_non_null(out);
        if (strcmp(out, REDACT_BENIGN[i]) != 0 || count != 0) {
            changed++;
            print_error("FALSE POSITIVE \"%s\"\n  -> [%d] \"%s\"\n",
                        REDACT_BENIGN[i], count, out);
        }
        free(out);
    }
    printf("benign corpus: %zu/%zu texts changed, false-positive rate "
           "%.1f%%\n",
           changed, REDACT_BENIGN_N, 100.0 * (double)changed / REDACT_BENIGN_N);
    assert_int_equal(changed, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redact_null_and_empty),
        cmocka_unit_test(test_redact_url_query),
        cmocka_unit_test(test_redact_url_userinfo),
        cmocka_unit_test(test_redact_url_fragment_and_path),
        cmocka_unit_test(test_redact_bearer_and_basic),
        cmocka_unit_test(test_redact_bearer_basic_prose),
        cmocka_unit_test(test_redact_authorization_header),
        cmocka_unit_test(test_redact_secret_pairs),
        cmocka_unit_test(test_redact_quoted_pairs),
        cmocka_unit_test(test_redact_pair_names_not_secret),
        cmocka_unit_test(test_redact_aws_keys),
        cmocka_unit_test(test_redact_slack_tokens),
        cmocka_unit_test(test_redact_github_tokens),
        cmocka_unit_test(test_redact_jwt),
        cmocka_unit_test(test_redact_hex_and_base64),
        cmocka_unit_test(test_redact_ids_unchanged),
        cmocka_unit_test(test_redact_prose_unchanged),
        cmocka_unit_test(test_redact_already_redacted),
        cmocka_unit_test(test_redact_count_accumulates),
        cmocka_unit_test(test_redact_no_secret_remains),
        cmocka_unit_test(test_redact_long_input),
        cmocka_unit_test(test_redact_binary_input),
        cmocka_unit_test(test_redact_mixed_idempotent),
        cmocka_unit_test(test_redact_corpus_secrets),
        cmocka_unit_test(test_redact_corpus_benign),
    };

    return cmocka_run_group_tests_name("redact", tests, NULL, NULL);
}
