/*
 * time_test.c -- unit tests for cv_time (RFC 3339 format and parse).
 *
 * The expected epoch values were computed independently with
 * `date -u -d <timestamp> +%s`. Run: ctest -L unit, or the binary alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "cv_time.h"

#define US(sec) ((int64_t)(sec)*INT64_C(1000000))

/* Parses s and asserts success, returning the value. */
static int64_t
time_test_parse_ok(const char *s)
{
    int64_t us = -12345;

    if (cv_time_parse(s, &us) != 0)
        fail_msg("cv_time_parse rejected valid \"%s\"", s);
    return us;
}

static void
time_test_parse_bad(const char *s)
{
    int64_t us = -12345;

    if (cv_time_parse(s, &us) != -1)
        fail_msg("cv_time_parse accepted invalid \"%s\"", s);
    /* A failed parse leaves the output alone. */
    assert_int_equal(us, -12345);
}

static void
test_time_format_known(void **state)
{
    char out[CV_TIME_MAX];

    (void)state;
    cv_time_format(US(1795757363) + 123456, out);
    assert_string_equal(out, "2026-11-27T05:29:23.123456Z");
    cv_time_format(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00.000000Z");
    cv_time_format(US(951825600) + 1, out);
    assert_string_equal(out, "2000-02-29T12:00:00.000001Z");
    cv_time_format(US(253402300799) + 999999, out);
    assert_string_equal(out, "9999-12-31T23:59:59.999999Z");
}

static void
test_time_format_before_epoch(void **state)
{
    char out[CV_TIME_MAX];

    (void)state;
    cv_time_format(-1, out);
    assert_string_equal(out, "1969-12-31T23:59:59.999999Z");
    cv_time_format(US(-1), out);
    assert_string_equal(out, "1969-12-31T23:59:59.000000Z");
    cv_time_format(US(-62135596800), out);
    assert_string_equal(out, "0001-01-01T00:00:00.000000Z");
}

static void
test_time_format_extremes_fit(void **state)
{
    char out[CV_TIME_MAX];

    (void)state;
    /* Whatever the value, the text fits the buffer and ends in 'Z'. */
    cv_time_format(INT64_MAX, out);
    assert_true(strlen(out) < CV_TIME_MAX);
    assert_int_equal(out[strlen(out) - 1], 'Z');
    cv_time_format(INT64_MIN, out);
    assert_true(strlen(out) < CV_TIME_MAX);
    assert_int_equal(out[strlen(out) - 1], 'Z');
}

static void
test_time_parse_utc(void **state)
{
    (void)state;
    assert_int_equal(time_test_parse_ok("2026-11-27T05:29:23Z"),
                     US(1795757363));
    assert_int_equal(time_test_parse_ok("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(time_test_parse_ok("1969-12-31T23:59:59Z"), US(-1));
    assert_int_equal(time_test_parse_ok("2000-02-29T12:00:00Z"), US(951825600));
    assert_int_equal(time_test_parse_ok("0001-01-01T00:00:00Z"),
                     US(-62135596800));
    assert_int_equal(time_test_parse_ok("9999-12-31T23:59:59Z"),
                     US(253402300799));
}

static void
test_time_parse_lowercase(void **state)
{
    (void)state;
    assert_int_equal(time_test_parse_ok("2026-11-27t05:29:23z"),
                     US(1795757363));
}

static void
test_time_parse_offsets(void **state)
{
    (void)state;
    /* 05:29:23+02:00 is 03:29:23Z. */
    assert_int_equal(time_test_parse_ok("2026-11-27T05:29:23+02:00"),
                     US(1795750163));
    assert_int_equal(time_test_parse_ok("2026-11-27T03:29:23+00:00"),
                     US(1795750163));
    assert_int_equal(time_test_parse_ok("2026-11-27T03:29:23-00:00"),
                     US(1795750163));
    assert_int_equal(time_test_parse_ok("2026-11-27T01:00:23-02:29"),
                     US(1795750163));
    /* Offsets may move the date across a day boundary. */
    assert_int_equal(time_test_parse_ok("1970-01-01T23:59:00+23:59"), 0);
    assert_int_equal(time_test_parse_ok("1969-12-31T00:01:00-23:59"), 0);
}

static void
test_time_parse_fraction(void **state)
{
    (void)state;
    assert_int_equal(time_test_parse_ok("1970-01-01T00:00:00.5Z"), 500000);
    assert_int_equal(time_test_parse_ok("1970-01-01T00:00:00.000001Z"), 1);
    assert_int_equal(time_test_parse_ok("1970-01-01T00:00:00.123456Z"), 123456);
    /* Digits past the sixth are truncated, not rounded. */
    assert_int_equal(time_test_parse_ok("1970-01-01T00:00:00.123456789Z"),
                     123456);
    assert_int_equal(time_test_parse_ok("1970-01-01T00:00:00.9999999Z"),
                     999999);
    assert_int_equal(time_test_parse_ok("2026-11-27T07:29:23.5+02:00"),
                     US(1795757363) + 500000);
    /* Before the epoch the fraction still adds. */
    assert_int_equal(time_test_parse_ok("1969-12-31T23:59:59.25Z"),
                     US(-1) + 250000);
}

static void
test_time_parse_roundtrip(void **state)
{
    static const int64_t values[] = {0,
                                     1,
                                     -1,
                                     US(1795757363) + 123456,
                                     US(951825600),
                                     US(-62135596800),
                                     US(253402300799) + 999999};
    char out[CV_TIME_MAX];

    (void)state;
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        cv_time_format(values[i], out);
        assert_int_equal(time_test_parse_ok(out), values[i]);
    }
}

static void
test_time_parse_leap_years(void **state)
{
    (void)state;
    time_test_parse_ok("2024-02-29T00:00:00Z");
    time_test_parse_ok("2000-02-29T00:00:00Z");
    time_test_parse_bad("2026-02-29T00:00:00Z");
    time_test_parse_bad("1900-02-29T00:00:00Z");
    time_test_parse_bad("2024-02-30T00:00:00Z");
}

static void
test_time_parse_rejects_impossible(void **state)
{
    (void)state;
    time_test_parse_bad("2026-02-30T00:00:00Z");
    time_test_parse_bad("2026-04-31T00:00:00Z");
    time_test_parse_bad("2026-00-10T00:00:00Z");
    time_test_parse_bad("2026-13-10T00:00:00Z");
    time_test_parse_bad("2026-01-00T00:00:00Z");
    time_test_parse_bad("2026-01-32T00:00:00Z");
    time_test_parse_bad("2026-01-01T24:00:00Z");
    time_test_parse_bad("2026-01-01T00:60:00Z");
    time_test_parse_bad("2026-01-01T00:00:60Z");
    time_test_parse_bad("2026-01-01T00:00:00+24:00");
    time_test_parse_bad("2026-01-01T00:00:00+00:60");
    /* The last valid value of each field passes. */
    time_test_parse_ok("2026-12-31T23:59:59+23:59");
    time_test_parse_ok("2026-04-30T00:00:00Z");
}

static void
test_time_parse_rejects_syntax(void **state)
{
    static const char *bad[] = {
        "",
        "2026-11-27",
        "2026-11-27T05:29:23",             /* no offset */
        "2026-11-27 05:29:23Z",            /* space separator */
        "2026-11-27T05:29Z",               /* no seconds */
        "2026-11-27T05:29:23.Z",           /* '.' without digits */
        "2026-11-27T05:29:23.1234567890Z", /* 10 fraction digits */
        "2026-11-27T05:29:23+0200",        /* offset without ':' */
        "2026-11-27T05:29:23+02",          /* short offset */
        "2026-11-27T05:29:23ZZ",           /* trailing garbage */
        "2026-11-27T05:29:23Z ",           /* trailing space */
        " 2026-11-27T05:29:23Z",           /* leading space */
        "26-11-27T05:29:23Z",              /* two-digit year */
        "2026-1-27T05:29:23Z",             /* one-digit month */
        "2026-11-27T5:29:23Z",             /* one-digit hour */
        "2026/11/27T05:29:23Z",            /* wrong separators */
        "2026-11-27T05:29:23UTC",          /* named zone */
        "+2026-11-27T05:29:23Z",           /* signed year */
        "2026-11-27T05:29:23.12a4Z",       /* letter in fraction */
        "abcd-ef-ghTij:kl:mnZ",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        time_test_parse_bad(bad[i]);
}

static void
test_time_parse_null(void **state)
{
    int64_t us = 7;

    (void)state;
    assert_int_equal(cv_time_parse(NULL, &us), -1);
    assert_int_equal(us, 7);
    assert_int_equal(cv_time_parse("2026-11-27T05:29:23Z", NULL), -1);
}

static void
test_time_now_is_current(void **state)
{
    int64_t a;
    int64_t b;

    (void)state;
    a = cv_now_us();
    b = cv_now_us();
    /* After 2024-01-01 and not going backwards between two quick calls. */
    assert_true(a > US(1704067200));
    assert_true(b >= a);
    assert_true(b - a < US(5));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_format_known),
        cmocka_unit_test(test_time_format_before_epoch),
        cmocka_unit_test(test_time_format_extremes_fit),
        cmocka_unit_test(test_time_parse_utc),
        cmocka_unit_test(test_time_parse_lowercase),
        cmocka_unit_test(test_time_parse_offsets),
        cmocka_unit_test(test_time_parse_fraction),
        cmocka_unit_test(test_time_parse_roundtrip),
        cmocka_unit_test(test_time_parse_leap_years),
        cmocka_unit_test(test_time_parse_rejects_impossible),
        cmocka_unit_test(test_time_parse_rejects_syntax),
        cmocka_unit_test(test_time_parse_null),
        cmocka_unit_test(test_time_now_is_current),
    };

    return cmocka_run_group_tests_name("time", tests, NULL, NULL);
}
