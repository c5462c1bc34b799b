/*
 * chain_canonical_test.c -- the sequencer's and the verifier's canonical
 * event form (lib/cv_chain.c) is written without jansson when it can be:
 * those bytes must be exactly jansson's (cv_chain_canonical_jansson, the
 * definition every stored leaf was hashed with), for the JSON PostgreSQL
 * hands out and for anything else a record or export line may hold.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "cv_chain.h"

/* Asserts both serializations agree (both NULL counts as agreeing). */
static void
ut_same(const cv_chain_event *ev)
{
    char *fast = cv_chain_canonical(ev);
    char *ref = cv_chain_canonical_jansson(ev);

    if (ref == NULL)
        assert_null(fast);
    else {
        assert_non_null(fast);
        if (strcmp(fast, ref) != 0)
            fail_msg("record %s:\n fast %s\n  ref %s", ev->record, fast, ref);
    }
    free(fast);
    free(ref);
}

static void
ut_record(const char *record)
{
    const cv_chain_event ev = {
        .seq = 42,
        .kind = "recovery_escalation_ack",
        .record_id = "gordackrecoveryescack-0123456789abcdef",
        .plan_id = "gordackrecoveryesc-0123456789abcdef",
        .provider = "slack",
        .actor = "alice",
        .request_id = "req-1",
        .created_at = "2024-01-02T03:04:05.000006Z",
        .record = record,
        .principal = "gateway",
    };

    ut_same(&ev);
}

static void
test_canonical_postgres_shapes(void **state)
{
    static const char *const records[] = {
        /* As jsonb::text writes them: ", " and ": ", keys by length. */
        "{\"seq\": 1, \"notes\": \"seeded\", \"provider\": \"slack\", "
        "\"acknowledgement_id\": \"benchack-1\"}",
        "{\"routes\": [{\"severity\": \"critical\", \"age_minutes\": 7, "
        "\"slo_breached\": true, \"playbook_id\": null}], \"counts\": {}, "
        "\"empty\": [], \"n\": -12, \"z\": 0}",
        "{\"s\": \"quote \\\" backslash \\\\ slash \\/ tab \\t nl \\n "
        "cr \\r bs \\b ff \\f ctl \\u0001 \\u001f del \\u007f\"}",
        "{\"e\": \"caf\\u00e9 \xc3\xa9 \\u20ac \xe2\x82\xac \\ud83d\\ude00 "
        "\xf0\x9f\x98\x80 \\u2028\"}",
        "{\"\\u00e9\": 1, \"e\": 2, \"\xc3\xa9\xc3\xa9\": 3, \"a\": {\"b\": "
        "{\"c\": {\"d\": [[[]]]}}}}",
        "{\"ab\": 1, \"a\": 2, \"abc\": 3, \"b\": 4, \"\": 5, \"A\": 6}",
        "  {\"padded\" :\t[ 1 ,2\n, 3 ] }  \n",
        "[1, \"x\", null, true, false]",
        "\"just a string\"",
        "123456789012345678",
        "null",
        "{\"big\": 999999999999999999, \"neg\": -999999999999999999}",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(records) / sizeof(records[0]); i++)
        ut_record(records[i]);
}

/* Inputs the fast path must hand to jansson (same answer either way). */
static void
test_canonical_fallbacks(void **state)
{
    static const char *const records[] = {
        "{\"r\": 1.5}",
        "{\"r\": 1.50}",
        "{\"r\": 1e3}",
        "{\"r\": 0.1, \"s\": -2.5E-3}",
        "{\"i\": 1234567890123456789}",
        "{\"i\": -9223372036854775808}",
        "{\"i\": 99999999999999999999999}",
        "{\"i\": -0}",
        "{\"i\": 01}",
        "{\"dup\": 1, \"dup\": 2}",
        "{\"nul\": \"a\\u0000b\"}",
        "{\"lone\": \"\\ud800\"}",
        "{\"lone\": \"\\udc00x\"}",
        "{\"pair\": \"\\ud800\\u0041\"}",
        "{\"bad\": \"\\x\"}",
        "{\"bad\": \"\\u12g4\"}",
        "{\"utf8\": \"\xc3\"}",
        "{\"utf8\": \"\xc0\xaf\"}",
        "{\"utf8\": \"\xed\xa0\x80\"}",
        "{\"utf8\": \"\xf4\x90\x80\x80\"}",
        "{\"raw\": \"a\tb\"}",
        "{\"a\": 1,}",
        "{\"a\": 1} x",
        "{\"a\" 1}",
        "{a: 1}",
        "[1, 2",
        "[1 2]",
        "tru",
        "truex",
        "nul",
        "",
        "   ",
        "{\"a\": [1, {\"b\": 2}], \"c\": }",
        "{\"k\": \"unterminated}",
        "{\"k\": \"esc at end\\",
    };
    char deep[400];
    size_t n = 0;

    (void)state;
    for (size_t i = 0; i < sizeof(records) / sizeof(records[0]); i++)
        ut_record(records[i]);
    /* Nesting past the fast path's depth limit. */
    for (int i = 0; i < 100; i++)
        deep[n++] = '[';
    for (int i = 0; i < 100; i++)
        deep[n++] = ']';
    deep[n] = '\0';
    ut_record(deep);
}

static void
test_canonical_event_fields(void **state)
{
    cv_chain_event ev = {.seq = 1, .record = "{}"};

    (void)state;
    ut_same(&ev); /* every string NULL, no principal */
    ev.actor = "line\nbreak \"quoted\" \\ \x01 \x7f caf\xc3\xa9";
    ev.kind = "k";
    ev.principal = "";
    ev.seq = INT64_MAX;
    ut_same(&ev);
    ev.actor = "bad \xff utf-8"; /* jansson drops such a key */
    ut_same(&ev);
    ev.actor = "ok";
    ev.request_id = "\xe2\x82";
    ut_same(&ev);
    ev.request_id = NULL;
    ev.record = NULL;
    ut_same(&ev);
    ev.seq = -5;
    ut_same(&ev);
}

/* ---- random documents, written every way jansson can write them ------- */

static uint64_t ut_rng = 0x9e3779b97f4a7c15ull;

static uint32_t
ut_rand(uint32_t n)
{
    ut_rng ^= ut_rng << 13;
    ut_rng ^= ut_rng >> 7;
    ut_rng ^= ut_rng << 17;
    return (uint32_t)(ut_rng % n);
}

/* A random valid UTF-8 string: ASCII, controls, specials, 2-4 byte. */
static void
ut_string(char *out, size_t cap)
{
    static const char *const pieces[] = {
        "a",
        "b",
        "Z",
        "0",
        " ",
        "\"",
        "\\",
        "/",
        "\n",
        "\t",
        "\x01",
        "\x1f",
        "\x7f",
        "\xc3\xa9",
        "\xe2\x82\xac",
        "\xf0\x9f\x98\x80",
        "\xe2\x80\xa8",
        "\xef\xbf\xbf",
        "id",
        "_",
    };
    size_t len = 0, n = ut_rand(8);

    for (size_t i = 0; i < n; i++) {
        const char *p = pieces[ut_rand(sizeof(pieces) / sizeof(pieces[0]))];
        size_t l = strlen(p);

        if (len + l + 1 >= cap)
            break;
        memcpy(out + len, p, l);
        len += l;
    }
    out[len] = '\0';
}

static json_t *
ut_value(int depth, int reals)
{
    char s[64];

    switch (ut_rand(depth > 3 ? 6 : 8)) {
    case 0:
        return json_null();
    case 1:
        return json_boolean(ut_rand(2));
    case 2:
        return json_integer((json_int_t)ut_rand(2000000) - 1000000);
    case 3:
        return json_integer(ut_rand(2) ? (json_int_t)999999999999999999ll
                                       : -(json_int_t)ut_rand(100));
    case 4:
        if (reals)
            return json_real((double)ut_rand(100000) / 64.0);
        /* fall through */
    case 5:
        ut_string(s, sizeof(s));
        return json_string(s);
    case 6: {
        json_t *a = json_array();

        for (uint32_t i = ut_rand(5); i > 0; i--)
            json_array_append_new(a, ut_value(depth + 1, reals));
        return a;
    }
    default: {
        json_t *o = json_object();

        for (uint32_t i = ut_rand(7); i > 0; i--) {
            ut_string(s, sizeof(s));
            json_object_set_new(o, s, ut_value(depth + 1, reals));
        }
        return o;
    }
    }
}

static void
test_canonical_random(void **state)
{
    static const size_t flags[] = {
        0,
        JSON_COMPACT,
        JSON_INDENT(2),
        JSON_ENSURE_ASCII,
        JSON_ESCAPE_SLASH | JSON_COMPACT,
        JSON_ENSURE_ASCII | JSON_INDENT(1) | JSON_ESCAPE_SLASH,
        JSON_PRESERVE_ORDER,
    };

    (void)state;
    for (int i = 0; i < 3000; i++) {
        json_t *doc = ut_value(0, i % 5 == 0);
        char *text = json_dumps(
            doc,
            JSON_ENCODE_ANY | flags[ut_rand(sizeof(flags) / sizeof(flags[0]))]);

        assert_non_null(text);
        ut_record(text);
        free(text);
        json_decref(doc);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical_postgres_shapes),
        cmocka_unit_test(test_canonical_fallbacks),
        cmocka_unit_test(test_canonical_event_fields),
        cmocka_unit_test(test_canonical_random),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
