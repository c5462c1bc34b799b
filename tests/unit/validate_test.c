/*
 * validate_test.c -- unit tests for cv_validate (field rules and the exact
 * error messages REST clients read as `detail`). Run: ctest -L unit, or
 * the binary alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cv_validate.h"

/* Asserts that rv/err carry CV_INVALID_ARGUMENT with exactly msg. */
static void
validate_test_fails(int rv, const cv_error *err, const char *msg)
{
    assert_int_equal(rv, CV_INVALID_ARGUMENT);
    assert_int_equal(err->code, CV_INVALID_ARGUMENT);
    assert_string_equal(err->msg, msg);
}

/* Asserts success and that err was left untouched. */
static void
validate_test_passes(int rv, const cv_error *err)
{
    if (rv != 0)
        fail_msg("expected success, got %d: %s", rv, err->msg);
    assert_int_equal(err->code, CV_OK);
}

/* A malloc'd string of n copies of unit (caller frees). */
static char *
validate_test_repeat(const char *unit, size_t n)
{
    size_t ul = strlen(unit);
    char *s = malloc(ul * n + 1);

    assert_non_null(s);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * ul, unit, ul);
    s[ul * n] = '\0';
    return s;
}

static void
test_validate_text_required(void **state)
{
    cv_error err;

    (void)state;
    cv_error_clear(&err);
    validate_test_fails(cv_validate_text("notes", NULL, 10, true, &err), &err,
                        "notes is required");
    cv_error_clear(&err);
    validate_test_fails(cv_validate_text("notes", "", 10, true, &err), &err,
                        "notes is required");
    cv_error_clear(&err);
    validate_test_fails(cv_validate_text("notes", " \t\r\n ", 10, true, &err),
                        &err, "notes is required");
}

static void
test_validate_text_optional(void **state)
{
    cv_error err;

    (void)state;
    cv_error_clear(&err);
    validate_test_passes(cv_validate_text("notes", NULL, 10, false, &err),
                         &err);
    validate_test_passes(cv_validate_text("notes", "", 10, false, &err), &err);
    validate_test_passes(cv_validate_text("notes", "   ", 10, false, &err),
                         &err);
    validate_test_passes(cv_validate_text("notes", "ok", 10, false, &err),
                         &err);
}

static void
test_validate_text_length_boundary(void **state)
{
    cv_error err;
    char *at = validate_test_repeat("a", 128);
    char *over = validate_test_repeat("a", 129);

    (void)state;
    cv_error_clear(&err);
    validate_test_passes(
        cv_validate_text("acknowledged_by", at, 128, true, &err), &err);
    validate_test_fails(
        cv_validate_text("acknowledged_by", over, 128, true, &err), &err,
        "acknowledged_by must be at most 128 characters");
    free(at);
    free(over);
}

static void
test_validate_text_counts_code_points(void **state)
{
    cv_error err;
    /* 2000 two-byte characters is 4000 bytes but 2000 characters. */
    char *two = validate_test_repeat("\xc3\xa9", 2000);
    char *two_over = validate_test_repeat("\xc3\xa9", 2001);
    /* Four-byte characters (U+1F600) count once each too. */
    char *four = validate_test_repeat("\xf0\x9f\x98\x80", 5);

    (void)state;
    cv_error_clear(&err);
    validate_test_passes(cv_validate_text("notes", two, 2000, false, &err),
                         &err);
    validate_test_fails(cv_validate_text("notes", two_over, 2000, false, &err),
                        &err, "notes must be at most 2000 characters");
    cv_error_clear(&err);
    validate_test_passes(cv_validate_text("notes", four, 5, false, &err), &err);
    validate_test_fails(cv_validate_text("notes", four, 4, false, &err), &err,
                        "notes must be at most 4 characters");
    free(two);
    free(two_over);
    free(four);
}

static void
test_validate_text_trims_before_counting(void **state)
{
    cv_error err;

    (void)state;
    cv_error_clear(&err);
    /* Five characters once the surrounding white space is gone. */
    validate_test_passes(
        cv_validate_text("external_ref", "  \tabcde\r\n ", 5, true, &err),
        &err);
    validate_test_fails(
        cv_validate_text("external_ref", "  abcdef  ", 5, true, &err), &err,
        "external_ref must be at most 5 characters");
}

static void
test_validate_text_control_characters(void **state)
{
    static const char *bad[] = {
        "a\rb", "a\x01z", "a\x1b[31mred", "a\x7f", "a\xc2\x85z", /* U+0085 */
        "a\vb", "a\fb",
    };
    cv_error err;

    (void)state;
    cv_error_clear(&err);
    /* \n and \t inside the text are allowed. */
    validate_test_passes(
        cv_validate_text("notes", "line one\nline\ttwo", 100, false, &err),
        &err);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cv_error_clear(&err);
        validate_test_fails(cv_validate_text("notes", bad[i], 100, false, &err),
                            &err, "notes must not contain control characters");
    }
}

static void
test_validate_text_invalid_utf8(void **state)
{
    static const char *bad[] = {
        "caf\xc3",             /* truncated sequence at the end */
        "\x80 stray",          /* lone continuation byte */
        "\xc0\xaf",            /* overlong '/' */
        "\xe0\x80\xaf",        /* overlong, three bytes */
        "\xed\xa0\x80",        /* UTF-16 surrogate U+D800 */
        "\xf4\x90\x80\x80",    /* above U+10FFFF */
        "\xf5\x80\x80\x80",    /* invalid lead byte */
        "\xff",                /* never valid */
        "ok \xe2\x82 then ok", /* short sequence mid-text */
    };
    cv_error err;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cv_error_clear(&err);
        validate_test_fails(
            cv_validate_text("escalation_reason", bad[i], 500, false, &err),
            &err, "escalation_reason must be valid UTF-8");
    }
    /* Valid multi-byte text of every length passes. */
    cv_error_clear(&err);
    validate_test_passes(cv_validate_text("escalation_reason",
                                          "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"
                                          "\xf4\x8f\xbf\xbf",
                                          4, false, &err),
                         &err);
}

static void
test_validate_text_null_error(void **state)
{
    (void)state;
    /* err is optional: the code still comes back. */
    assert_int_equal(cv_validate_text("notes", NULL, 10, true, NULL),
                     CV_INVALID_ARGUMENT);
    assert_int_equal(cv_validate_text("notes", "fine", 10, true, NULL), 0);
}

static void
test_validate_int_range_boundaries(void **state)
{
    cv_error err;
    const char *msg = "recovery_slo_minutes must be between 1 and 43200";

    (void)state;
    cv_error_clear(&err);
    validate_test_passes(
        cv_validate_int_range("recovery_slo_minutes", 1, 1, 43200, &err), &err);
    validate_test_passes(
        cv_validate_int_range("recovery_slo_minutes", 43200, 1, 43200, &err),
        &err);
    validate_test_passes(
        cv_validate_int_range("recovery_slo_minutes", 240, 1, 43200, &err),
        &err);
    validate_test_fails(
        cv_validate_int_range("recovery_slo_minutes", 0, 1, 43200, &err), &err,
        msg);
    cv_error_clear(&err);
    validate_test_fails(
        cv_validate_int_range("recovery_slo_minutes", 43201, 1, 43200, &err),
        &err, msg);
    cv_error_clear(&err);
    validate_test_fails(cv_validate_int_range("recovery_slo_minutes", INT64_MIN,
                                              1, 43200, &err),
                        &err, msg);
}

static void
test_validate_int_range_negative_and_wide(void **state)
{
    cv_error err;

    (void)state;
    cv_error_clear(&err);
    validate_test_fails(cv_validate_int_range("delta", -11, -10, 10, &err),
                        &err, "delta must be between -10 and 10");
    cv_error_clear(&err);
    validate_test_passes(
        cv_validate_int_range("x", INT64_MAX, INT64_MIN, INT64_MAX, &err),
        &err);
    validate_test_fails(cv_validate_int_range("status_code", 600, 0, 599, &err),
                        &err, "status_code must be between 0 and 599");
}

static void
test_validate_double_range_boundaries(void **state)
{
    cv_error err;
    const char *msg = "backoff_multiplier must be between 1 and 10";

    (void)state;
    cv_error_clear(&err);
    validate_test_passes(
        cv_validate_double_range("backoff_multiplier", 1.0, 1.0, 10.0, &err),
        &err);
    validate_test_passes(
        cv_validate_double_range("backoff_multiplier", 10.0, 1.0, 10.0, &err),
        &err);
    validate_test_passes(
        cv_validate_double_range("backoff_multiplier", 2.5, 1.0, 10.0, &err),
        &err);
    validate_test_fails(cv_validate_double_range("backoff_multiplier",
                                                 nextafter(1.0, 0.0), 1.0, 10.0,
                                                 &err),
                        &err, msg);
    cv_error_clear(&err);
    validate_test_fails(cv_validate_double_range("backoff_multiplier",
                                                 nextafter(10.0, 11.0), 1.0,
                                                 10.0, &err),
                        &err, msg);
    cv_error_clear(&err);
    validate_test_fails(
        cv_validate_double_range("backoff_multiplier", 0.5, 1.0, 10.0, &err),
        &err, msg);
}

static void
test_validate_double_range_non_finite(void **state)
{
    cv_error err;
    const char *msg = "backoff_multiplier must be between 1 and 10";

    (void)state;
    cv_error_clear(&err);
    validate_test_fails(
        cv_validate_double_range("backoff_multiplier", NAN, 1.0, 10.0, &err),
        &err, msg);
    cv_error_clear(&err);
    validate_test_fails(cv_validate_double_range("backoff_multiplier", INFINITY,
                                                 1.0, 10.0, &err),
                        &err, msg);
    cv_error_clear(&err);
    validate_test_fails(cv_validate_double_range("backoff_multiplier",
                                                 -INFINITY, 1.0, 10.0, &err),
                        &err, msg);
    /* Infinity fails even when the range is unbounded. */
    cv_error_clear(&err);
    assert_int_equal(
        cv_validate_double_range("x", INFINITY, -INFINITY, INFINITY, &err),
        CV_INVALID_ARGUMENT);
}

static void
test_validate_double_range_message_format(void **state)
{
    cv_error err;

    (void)state;
    cv_error_clear(&err);
    /* Fractions keep their digits; large bounds are not in e-notation. */
    validate_test_fails(cv_validate_double_range("ratio", 2.0, 0.25, 1.5, &err),
                        &err, "ratio must be between 0.25 and 1.5");
    cv_error_clear(&err);
    validate_test_fails(cv_validate_double_range("big", -1.0, 0.0, 1e6, &err),
                        &err, "big must be between 0 and 1000000");
}

static void
test_validate_ident_normalizes(void **state)
{
    cv_error err;
    char out[65];

    (void)state;
    cv_error_clear(&err);
    validate_test_passes(cv_normalize_ident("provider", "  PagerDuty\t", 64,
                                            out, sizeof(out), &err),
                         &err);
    assert_string_equal(out, "pagerduty");
    validate_test_passes(cv_normalize_ident("provider", "Service.Now_v2-EU", 64,
                                            out, sizeof(out), &err),
                         &err);
    assert_string_equal(out, "service.now_v2-eu");
}

static void
test_validate_ident_required(void **state)
{
    cv_error err;
    char out[65] = "stale";

    (void)state;
    cv_error_clear(&err);
    validate_test_fails(
        cv_normalize_ident("provider", NULL, 64, out, sizeof(out), &err), &err,
        "provider is required");
    assert_string_equal(out, "");
    cv_error_clear(&err);
    validate_test_fails(
        cv_normalize_ident("provider", " \t ", 64, out, sizeof(out), &err),
        &err, "provider is required");
}

static void
test_validate_ident_bad_characters(void **state)
{
    static const char *bad[] = {"slack hooks", "slack/teams", "caf\xc3\xa9",
                                "a;drop",      "x\ny",        "pager+duty"};
    cv_error err;
    char out[65];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cv_error_clear(&err);
        validate_test_fails(
            cv_normalize_ident("provider", bad[i], 64, out, sizeof(out), &err),
            &err, "provider must use only a-z, 0-9, '.', '_' and '-'");
        /* Nothing half-normalised is left behind. */
        assert_string_equal(out, "");
    }
}

static void
test_validate_ident_length_boundary(void **state)
{
    cv_error err;
    char out[65];
    char *at = validate_test_repeat("A", 64);
    char *over = validate_test_repeat("a", 65);

    (void)state;
    cv_error_clear(&err);
    validate_test_passes(
        cv_normalize_ident("provider", at, 64, out, sizeof(out), &err), &err);
    assert_int_equal(strlen(out), 64);
    assert_int_equal(out[0], 'a');
    validate_test_fails(
        cv_normalize_ident("provider", over, 64, out, sizeof(out), &err), &err,
        "provider must be at most 64 characters");
    /* One character (the lower bound) is fine. */
    cv_error_clear(&err);
    validate_test_passes(
        cv_normalize_ident("provider", "x", 64, out, sizeof(out), &err), &err);
    assert_string_equal(out, "x");
    free(at);
    free(over);
}

static void
test_validate_ident_small_buffer(void **state)
{
    cv_error err;
    char out[8];

    (void)state;
    cv_error_clear(&err);
    /* outlen < max + 1 is a programming error, reported as INTERNAL. */
    assert_int_equal(
        cv_normalize_ident("provider", "slack", 64, out, sizeof(out), &err),
        CV_INTERNAL);
    assert_int_equal(err.code, CV_INTERNAL);
    assert_string_equal(out, "");
}

static void
test_validate_trim_dup(void **state)
{
    char *s;

    (void)state;
    assert_null(cv_trim_dup(NULL));
    s = cv_trim_dup("  \t hello world \r\n");
    assert_string_equal(s, "hello world");
    free(s);
    s = cv_trim_dup("   ");
    assert_string_equal(s, "");
    free(s);
    s = cv_trim_dup("");
    assert_string_equal(s, "");
    free(s);
    /* Inner white space and non-ASCII text are kept as they are. */
    s = cv_trim_dup("caf\xc3\xa9  au\tlait");
    assert_string_equal(s, "caf\xc3\xa9  au\tlait");
    free(s);
}

/* Identifier-shaped public values that must pass. */
static const char *const validate_test_ids_ok[] = {
    "JIRA-123",
    "INC0012345",
    "pb-db-failover",
    "runbooks/db-failover#step-3",
    "gordackrecoveryesc-0123456789abcdef",
    "3fa85f64-5717-4562-b3fc-2c963f66afa6",
    "plan-3fa85f64-5717-4562-b3fc-2c963f66afa6",
    "service.now_v2-eu",
    "weekly",
    "CHG0034567:approved",
};

/* Identifier-shaped secrets that must be refused (fakes). */
static const char *const validate_test_ids_secret[] = {
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "3f9a1c7e5b2d44aa9e10",
    "AKIA"
    "IOSFODNN7EXAMPLE",
    "glpat-"
    "xY1zA2bC3dE4fG5hI6jK",
    "gh"
    "p_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
    "ref-q7Rk2VxN9mLp4TzW8bYc3",
    "xox"
    "b-1234567890-abcdefabcdef",
};

static void
test_validate_identifier(void **state)
{
    cv_error err;
    char big[80];

    (void)state;
    for (size_t i = 0;
         i < sizeof(validate_test_ids_ok) / sizeof(validate_test_ids_ok[0]);
         i++) {
        if (cv_validate_identifier("external_ref", validate_test_ids_ok[i], 64,
                                   false, &err) != 0)
            fail_msg("refused \"%s\": %s", validate_test_ids_ok[i], err.msg);
        assert_false(cv_looks_like_secret(validate_test_ids_ok[i]));
    }
    for (size_t i = 0; i < sizeof(validate_test_ids_secret) /
                               sizeof(validate_test_ids_secret[0]);
         i++) {
        if (cv_validate_identifier("playbook_id", validate_test_ids_secret[i],
                                   128, false, &err) != CV_INVALID_ARGUMENT)
            fail_msg("accepted \"%s\"", validate_test_ids_secret[i]);
        assert_string_equal(err.msg, "playbook_id looks like a secret; "
                                     "identifiers must not carry credentials");
        /* The refusal never echoes the value. */
        assert_null(strstr(err.msg, validate_test_ids_secret[i]));
    }
    assert_int_equal(
        cv_validate_identifier("external_ref", NULL, 64, false, &err), 0);
    assert_int_equal(cv_validate_identifier("external_ref", "", 64, true, &err),
                     CV_INVALID_ARGUMENT);
    assert_string_equal(err.msg, "external_ref is required");
    assert_int_equal(
        cv_validate_identifier("external_ref", "a b", 64, false, &err),
        CV_INVALID_ARGUMENT);
    assert_string_equal(err.msg,
                        "external_ref must match [A-Za-z0-9._:/#-]{1,64}");
    assert_int_equal(
        cv_validate_identifier("external_ref", "x\"y", 64, false, &err),
        CV_INVALID_ARGUMENT);
    memset(big, 'a', 65);
    big[65] = '\0';
    assert_int_equal(
        cv_validate_identifier("external_ref", big, 64, false, &err),
        CV_INVALID_ARGUMENT);
    assert_string_equal(err.msg, "external_ref must be at most 64 characters");
}

/* cv_normalize_ident (provider, category, schedule_id, cadence...) too. */
static void
test_validate_ident_refuses_secret(void **state)
{
    cv_error err;
    char out[129];

    (void)state;
    assert_int_equal(
        cv_normalize_ident(
            "provider",
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            128, out, sizeof(out), &err),
        CV_INVALID_ARGUMENT);
    assert_string_equal(err.msg, "provider looks like a secret; identifiers "
                                 "must not carry credentials");
    assert_string_equal(out, "");
    assert_int_equal(cv_normalize_ident("schedule.schedule_id",
                                        "sched-0123456789abcdef", 128, out,
                                        sizeof(out), &err),
                     0);
    assert_int_equal(cv_normalize_ident("schedule.cadence", " Weekly ", 128,
                                        out, sizeof(out), &err),
                     0);
    assert_string_equal(out, "weekly");
}

static void
test_validate_request_id(void **state)
{
    (void)state;
    assert_true(cv_request_id_sane("req-123"));
    assert_true(cv_request_id_sane("3fa85f64-5717-4562-b3fc-2c963f66afa6"));
    assert_true(cv_request_id_sane("gw-0123456789abcdef"));
    assert_false(cv_request_id_sane(NULL));
    assert_false(cv_request_id_sane(""));
    assert_false(cv_request_id_sane("a b"));
    assert_false(cv_request_id_sane("x\r\nSet-Cookie: a=b"));
    assert_false(cv_request_id_sane(
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"));
    assert_false(cv_request_id_sane("glpat-"
                                    "xY1zA2bC3dE4fG5hI6jK"));
    assert_true(cv_request_id_sane("e2e-12345-1764900000:retry.2"));
    {
        char big[130];

        memset(big, 'a', 129);
        big[129] = '\0';
        assert_false(cv_request_id_sane(big));
        big[128] = '\0';
        assert_true(cv_request_id_sane(big));
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validate_text_required),
        cmocka_unit_test(test_validate_text_optional),
        cmocka_unit_test(test_validate_text_length_boundary),
        cmocka_unit_test(test_validate_text_counts_code_points),
        cmocka_unit_test(test_validate_text_trims_before_counting),
        cmocka_unit_test(test_validate_text_control_characters),
        cmocka_unit_test(test_validate_text_invalid_utf8),
        cmocka_unit_test(test_validate_text_null_error),
        cmocka_unit_test(test_validate_int_range_boundaries),
        cmocka_unit_test(test_validate_int_range_negative_and_wide),
        cmocka_unit_test(test_validate_double_range_boundaries),
        cmocka_unit_test(test_validate_double_range_non_finite),
        cmocka_unit_test(test_validate_double_range_message_format),
        cmocka_unit_test(test_validate_ident_normalizes),
        cmocka_unit_test(test_validate_ident_required),
        cmocka_unit_test(test_validate_ident_bad_characters),
        cmocka_unit_test(test_validate_ident_length_boundary),
        cmocka_unit_test(test_validate_ident_small_buffer),
        cmocka_unit_test(test_validate_trim_dup),
        cmocka_unit_test(test_validate_identifier),
        cmocka_unit_test(test_validate_ident_refuses_secret),
        cmocka_unit_test(test_validate_request_id),
    };

    return cmocka_run_group_tests_name("validate", tests, NULL, NULL);
}
