/*
 * chain_test.c -- unit tests of the evidence Merkle log's events
 * (docs/evidence.md): the canonical event form, the leaf hash and the offline
 * verifier of an export file, with and without a checkpoint (anchor). No
 * database: logs are built here, in memory and in temp files.
 *
 * The expected hashes are computed in the test itself with OpenSSL EVP over
 * the literal bytes RFC 6962 fixes (leaf 0x00 || canonical, node
 * 0x01 || left || right), never with cv_merkle, so a change of the hash
 * definition fails here. Export files are built with jansson, one
 * {"event": {...}, "leaf_hash": "..."} object per line, as cv_chain_export
 * writes them.
 *
 * Run: ctest -R unit.chain, or the binary alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_chain.h"

#define UT_N 3

/* ---- helpers ---------------------------------------------------------- */

/* SHA-256 of a || b || c (b, c may be empty), with OpenSSL EVP. */
static void
ut_sha256(const void *a, size_t alen, const void *b, size_t blen, const void *c,
          size_t clen, uint8_t out[32])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int n = 0;

    assert_non_null(ctx);
    assert_int_equal(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL), 1);
    assert_int_equal(EVP_DigestUpdate(ctx, a, alen), 1);
    if (blen > 0)
        assert_int_equal(EVP_DigestUpdate(ctx, b, blen), 1);
    if (clen > 0)
        assert_int_equal(EVP_DigestUpdate(ctx, c, clen), 1);
    assert_int_equal(EVP_DigestFinal_ex(ctx, out, &n), 1);
    assert_int_equal(n, 32);
    EVP_MD_CTX_free(ctx);
}

static void
ut_hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* The expected leaf hash: SHA-256(0x00 || canonical). */
static void
ut_expected_leaf(const char *canonical, uint8_t out[32])
{
    static const uint8_t leaf_tag = 0x00;

    ut_sha256(&leaf_tag, 1, canonical, strlen(canonical), NULL, 0, out);
}

/* SHA-256(0x01 || l || r). */
static void
ut_node(const uint8_t l[32], const uint8_t r[32], uint8_t out[32])
{
    static const uint8_t node_tag = 0x01;

    ut_sha256(&node_tag, 1, l, 32, r, 32, out);
}

/* Three events as the ack service stores them; NULL strings included. */
static const cv_chain_event ut_events[UT_N] = {
    {
        .seq = 1,
        .kind = "recovery_escalation_plan",
        .record_id = "gordackrecoveryesc-00000000000000a1",
        .plan_id = "gordackrecoveryesc-00000000000000a1",
        .provider = NULL,
        .actor = "alice",
        .request_id = "req-0000000000000001",
        .created_at = "2024-05-06T07:08:09.123456Z",
        .record = "{\"plan_id\": \"gordackrecoveryesc-00000000000000a1\", "
                  "\"escalation_count\": 2, "
                  "\"selected_providers\": [\"jira\", \"slack\"]}",
    },
    {
        .seq = 2,
        .kind = "recovery_escalation_ack",
        .record_id = "gordackrecoveryescack-00000000000000b2",
        .plan_id = "gordackrecoveryesc-00000000000000a1",
        .provider = "slack",
        .actor = "bob",
        .request_id = NULL,
        .created_at = "2024-05-06T07:08:10.000001Z",
        .record =
            "{\"acknowledgement_state\": \"accepted\", \"notes\": \"ok\"}",
    },
    {
        .seq = 3,
        .kind = "recovery_escalation_ack",
        .record_id = "gordackrecoveryescack-00000000000000c3",
        .plan_id = "gordackrecoveryesc-00000000000000a1",
        .provider = "jira",
        .actor = NULL,
        .request_id = "req-0000000000000003",
        .created_at = "2024-05-06T07:08:11.000000Z",
        .record = "{\"acknowledgement_state\": \"deferred\", "
                  "\"nested\": {\"z\": 1, \"a\": [true, null]}}",
    },
};

/* An export of ut_events: one document per line, the leaf hashes and
 * the roots of the first k leaves (root[0]: the empty tree). */
typedef struct ut_export {
    json_t *docs[UT_N];
    char hash[UT_N][65];
    uint8_t leaf[UT_N][32];
    uint8_t rootb[UT_N + 1][32];
    char root[UT_N + 1][65];
} ut_export;

static void
ut_export_build(ut_export *x)
{
    for (int i = 0; i < UT_N; i++) {
        char *canonical = cv_chain_canonical(&ut_events[i]);
        json_t *event;

        assert_non_null(canonical);
        ut_expected_leaf(canonical, x->leaf[i]);
        ut_hex(x->leaf[i], 32, x->hash[i]);
        event = json_loads(canonical, 0, NULL);
        assert_non_null(event);
        x->docs[i] =
            json_pack("{s:o, s:s}", "event", event, "leaf_hash", x->hash[i]);
        assert_non_null(x->docs[i]);
        free(canonical);
    }
    /* RFC 6962 by hand for 0..3 leaves. */
    ut_sha256("", 0, NULL, 0, NULL, 0, x->rootb[0]);
    memcpy(x->rootb[1], x->leaf[0], 32);
    ut_node(x->leaf[0], x->leaf[1], x->rootb[2]);
    ut_node(x->rootb[2], x->leaf[2], x->rootb[3]);
    for (int k = 0; k <= UT_N; k++)
        ut_hex(x->rootb[k], 32, x->root[k]);
}

static void
ut_export_free(ut_export *x)
{
    for (int i = 0; i < UT_N; i++)
        json_decref(x->docs[i]);
}

static json_t *
ut_event(ut_export *x, int i)
{
    json_t *event = json_object_get(x->docs[i], "event");

    assert_true(json_is_object(event));
    return event;
}

/* Writes the documents in `order` (n of them; -1 writes a line that is not
 * JSON) to a temp file, rewound. */
static FILE *
ut_write(const ut_export *x, const int *order, int n)
{
    FILE *f = tmpfile();

    assert_non_null(f);
    for (int i = 0; i < n; i++) {
        char *text;

        if (order[i] < 0) {
            fputs("this line is not JSON {\n", f);
            continue;
        }
        text = json_dumps(x->docs[order[i]], JSON_COMPACT | JSON_SORT_KEYS);
        assert_non_null(text);
        fprintf(f, "%s\n", text);
        free(text);
    }
    rewind(f);
    return f;
}

/* Verifies the documents in `order`; fills report. */
static void
ut_verify(const ut_export *x, const int *order, int n, cv_chain_report *report)
{
    FILE *f = ut_write(x, order, n);

    memset(report, 0x5a, sizeof(*report));
    assert_int_equal(cv_chain_verify_file(f, NULL, 0, report), 0);
    fclose(f);
}

/* Asserts the report names seq as the first bad event, with a reason
 * containing `why`, after seq - 1 good events. */
static void
ut_expect_broken(const ut_export *x, const cv_chain_report *report, int64_t seq,
                 const char *why)
{
    if (report->valid)
        fail_msg("tampered export verified as valid (%lld events)",
                 (long long)report->events);
    assert_int_equal(report->first_invalid_seq, seq);
    assert_int_equal(report->events, seq - 1);
    /* No root is claimed for a log that does not verify. */
    assert_string_equal(report->head, "");
    (void)x;
    if (strstr(report->reason, why) == NULL)
        fail_msg("reason \"%s\" does not contain \"%s\"", report->reason, why);
}

static const int ut_in_order[UT_N] = {0, 1, 2};

/* ---- tests ------------------------------------------------------------ */

static void
test_chain_canonical_exact(void **state)
{
    const cv_chain_event ev = {
        .seq = 7,
        .kind = "recovery_escalation_plan",
        .record_id = "r1",
        .plan_id = "p1",
        .provider = NULL,
        .actor = "alice",
        .request_id = NULL,
        .created_at = "2024-01-02T03:04:05.000006Z",
        .record = "{ \"b\" : 2, \"a\": [1, \"x\", {\"d\": false, \"c\": "
                  "null}], \"\\u00e9\": \"caf\\u00e9\" }",
    };
    char *text;

    (void)state;
    text = cv_chain_canonical(&ev);
    assert_non_null(text);
    assert_string_equal(
        text, "{\"actor\":\"alice\",\"created_at\":\"2024-01-02T03:04:05."
              "000006Z\",\"kind\":\"recovery_escalation_plan\",\"plan_id\":"
              "\"p1\",\"provider\":null,\"record\":{\"a\":[1,\"x\",{\"c\":null,"
              "\"d\":false}],\"b\":2,\"\xc3\xa9\":\"caf\xc3\xa9\"},"
              "\"record_id\":\"r1\",\"request_id\":null,\"seq\":7}");
    free(text);
}

static void
test_chain_canonical_nulls_and_bad_record(void **state)
{
    cv_chain_event ev = {.seq = 1, .record = "[1,2]"};
    char *text;

    (void)state;
    /* Every string NULL: all null; a non-object record is kept as is. */
    text = cv_chain_canonical(&ev);
    assert_non_null(text);
    assert_string_equal(text, "{\"actor\":null,\"created_at\":null,\"kind\":"
                              "null,\"plan_id\":null,\"provider\":null,"
                              "\"record\":[1,2],\"record_id\":null,"
                              "\"request_id\":null,\"seq\":1}");
    free(text);
    /* A record that is not JSON has no canonical form. */
    ev.record = "{\"a\": ";
    assert_null(cv_chain_canonical(&ev));
    ev.record = "not json";
    assert_null(cv_chain_canonical(&ev));
}

static void
test_chain_canonical_key_order_irrelevant(void **state)
{
    cv_chain_event a = ut_events[2], b = ut_events[2];
    char *ta, *tb;

    (void)state;
    b.record = "{\"nested\":{\"a\":[true,null],\"z\":1},"
               "\"acknowledgement_state\":\"deferred\"}";
    ta = cv_chain_canonical(&a);
    tb = cv_chain_canonical(&b);
    assert_non_null(ta);
    assert_non_null(tb);
    assert_string_equal(ta, tb);
    free(ta);
    free(tb);
}

static void
test_chain_leaf_independent(void **state)
{
    uint8_t got[32], want[32];
    char gothex[65], wanthex[65];
    char *text;

    (void)state;
    /* Fixed vector (Python hashlib over the same bytes). */
    cv_chain_leaf("{\"seq\":1}", got);
    cv_chain_hex(got, gothex);
    assert_string_equal(
        gothex,
        "b119a77a4864308c481efb947ff723d6bd4ea1e7fab902eb8ca98bd759e46aee");

    /* EVP over the literal bytes, for a real canonical event. */
    text = cv_chain_canonical(&ut_events[1]);
    assert_non_null(text);
    ut_expected_leaf(text, want);
    cv_chain_leaf(text, got);
    ut_hex(want, 32, wanthex);
    cv_chain_hex(got, gothex);
    assert_string_equal(gothex, wanthex);
    /* Not the undecorated SHA-256(canonical). */
    ut_sha256(text, strlen(text), NULL, 0, NULL, 0, want);
    ut_hex(want, 32, wanthex);
    assert_string_not_equal(gothex, wanthex);
    free(text);
}

static void
test_chain_hex_lowercase(void **state)
{
    uint8_t h[32];
    char out[65];

    (void)state;
    for (int i = 0; i < 32; i++)
        h[i] = (uint8_t)(0xf0 + (i % 16));
    memset(out, 'x', sizeof(out));
    cv_chain_hex(h, out);
    assert_int_equal(strlen(out), 64);
    assert_string_equal(out, "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff"
                             "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
}

static void
test_chain_verify_file_valid(void **state)
{
    cv_chain_report report;
    ut_export x;

    (void)state;
    ut_export_build(&x);
    ut_verify(&x, ut_in_order, UT_N, &report);
    assert_true(report.valid);
    assert_int_equal(report.events, 3);
    assert_string_equal(report.head, x.root[3]);
    assert_int_equal(report.first_invalid_seq, 0);
    assert_int_equal(report.pending, 0);
    assert_string_equal(report.reason, "");
    ut_export_free(&x);
}

static void
test_chain_verify_file_export_key_order(void **state)
{
    cv_chain_report report;
    json_t *event, *shuffled;
    const char *key;
    json_t *value;
    ut_export x;
    FILE *f;

    (void)state;
    ut_export_build(&x);
    /* The second event with its keys in reverse order and spaces: the
     * verifier hashes the canonical form, not the line's text. */
    event = ut_event(&x, 1);
    shuffled = json_object();
    for (int k = (int)json_object_size(event) - 1; k >= 0; k--) {
        int j = 0;

        json_object_foreach(event, key, value)
        {
            if (j++ == k)
                json_object_set(shuffled, key, value);
        }
    }
    json_object_set_new(x.docs[1], "event", shuffled);
    f = tmpfile();
    assert_non_null(f);
    for (int i = 0; i < UT_N; i++) {
        char *text = json_dumps(x.docs[i], i == 1 ? 0 : JSON_COMPACT);

        assert_non_null(text);
        fprintf(f, "%s\n", text);
        free(text);
    }
    rewind(f);
    assert_int_equal(cv_chain_verify_file(f, NULL, 0, &report), 0);
    fclose(f);
    assert_true(report.valid);
    assert_int_equal(report.events, 3);
    assert_string_equal(report.head, x.root[3]);
    ut_export_free(&x);
}

static void
test_chain_verify_file_record_changed(void **state)
{
    cv_chain_report report;
    json_t *record;
    ut_export x;

    (void)state;
    ut_export_build(&x);
    record = json_object_get(ut_event(&x, 1), "record");
    json_object_set_new(record, "acknowledgement_state",
                        json_string("resolved"));
    ut_verify(&x, ut_in_order, UT_N, &report);
    ut_expect_broken(&x, &report, 2, "was changed after it was sequenced");
    ut_export_free(&x);

    /* A nested value of the last event. */
    ut_export_build(&x);
    record = json_object_get(ut_event(&x, 2), "record");
    json_array_set_new(json_object_get(json_object_get(record, "nested"), "a"),
                       0, json_false());
    ut_verify(&x, ut_in_order, UT_N, &report);
    ut_expect_broken(&x, &report, 3, "was changed after it was sequenced");
    ut_export_free(&x);

    /* A key added to the first event's record. */
    ut_export_build(&x);
    record = json_object_get(ut_event(&x, 0), "record");
    json_object_set_new(record, "approved", json_true());
    ut_verify(&x, ut_in_order, UT_N, &report);
    ut_expect_broken(&x, &report, 1, "was changed after it was sequenced");
    ut_export_free(&x);
}

static void
test_chain_verify_file_kind_changed(void **state)
{
    cv_chain_report report;
    ut_export x;

    (void)state;
    ut_export_build(&x);
    json_object_set_new(ut_event(&x, 0), "kind",
                        json_string("recovery_escalation_ack"));
    ut_verify(&x, ut_in_order, UT_N, &report);
    ut_expect_broken(&x, &report, 1, "was changed after it was sequenced");
    /* The reason names the event as the file has it. */
    assert_non_null(strstr(report.reason,
                           "recovery_escalation_ack "
                           "gordackrecoveryesc-00000000000000a1"));
    ut_export_free(&x);
}

static void
test_chain_verify_file_actor_changed(void **state)
{
    cv_chain_report report;
    ut_export x;

    (void)state;
    ut_export_build(&x);
    json_object_set_new(ut_event(&x, 1), "actor", json_string("mallory"));
    ut_verify(&x, ut_in_order, UT_N, &report);
    ut_expect_broken(&x, &report, 2, "was changed after it was sequenced");
    ut_export_free(&x);

    /* A NULL actor given a value. */
    ut_export_build(&x);
    json_object_set_new(ut_event(&x, 2), "actor", json_string("alice"));
    ut_verify(&x, ut_in_order, UT_N, &report);
    ut_expect_broken(&x, &report, 3, "was changed after it was sequenced");
    ut_export_free(&x);

    /* An actor removed (becomes null). */
    ut_export_build(&x);
    json_object_set_new(ut_event(&x, 0), "actor", json_null());
    ut_verify(&x, ut_in_order, UT_N, &report);
    ut_expect_broken(&x, &report, 1, "was changed after it was sequenced");
    ut_export_free(&x);
}

static void
test_chain_verify_file_other_fields_changed(void **state)
{
    static const char *const fields[] = {"record_id", "plan_id", "provider",
                                         "request_id", "created_at"};
    cv_chain_report report;
    ut_export x;

    (void)state;
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        ut_export_build(&x);
        json_object_set_new(ut_event(&x, 1), fields[i], json_string("other"));
        ut_verify(&x, ut_in_order, UT_N, &report);
        ut_expect_broken(&x, &report, 2, "was changed after it was sequenced");
        ut_export_free(&x);
    }
}

static void
test_chain_verify_file_missing_line(void **state)
{
    static const int dropped_middle[] = {0, 2};
    static const int dropped_first[] = {1, 2};
    cv_chain_report report;
    ut_export x;

    (void)state;
    ut_export_build(&x);
    ut_verify(&x, dropped_middle, 2, &report);
    ut_expect_broken(&x, &report, 2, "event 2 is missing (found 3 next)");
    ut_verify(&x, dropped_first, 2, &report);
    ut_expect_broken(&x, &report, 1, "event 1 is missing (found 2 next)");
    ut_export_free(&x);
}

static void
test_chain_verify_file_swapped_lines(void **state)
{
    static const int swapped[] = {0, 2, 1};
    static const int repeated[] = {0, 1, 1, 2};
    cv_chain_report report;
    ut_export x;

    (void)state;
    ut_export_build(&x);
    ut_verify(&x, swapped, UT_N, &report);
    ut_expect_broken(&x, &report, 2, "missing");
    /* Renumbering the swapped events does not help: the hashes chain. */
    json_object_set_new(ut_event(&x, 2), "seq", json_integer(2));
    json_object_set_new(ut_event(&x, 1), "seq", json_integer(3));
    ut_verify(&x, swapped, UT_N, &report);
    ut_expect_broken(&x, &report, 2, "was changed after it was sequenced");
    ut_export_free(&x);

    ut_export_build(&x);
    ut_verify(&x, repeated, 4, &report);
    ut_expect_broken(&x, &report, 3, "event 3 is missing (found 2 next)");
    ut_export_free(&x);
}

static void
test_chain_verify_file_wrong_hash(void **state)
{
    cv_chain_report report;
    char bad[65];
    ut_export x;

    (void)state;
    ut_export_build(&x);
    /* One hex digit off on the last line. */
    memcpy(bad, x.hash[2], sizeof(bad));
    bad[10] = bad[10] == '0' ? '1' : '0';
    json_object_set_new(x.docs[2], "leaf_hash", json_string(bad));
    ut_verify(&x, ut_in_order, UT_N, &report);
    ut_expect_broken(&x, &report, 3, "was changed after it was sequenced");
    ut_export_free(&x);

    /* A missing leaf hash, a leaf hash that is not a string. */
    ut_export_build(&x);
    json_object_del(x.docs[0], "leaf_hash");
    ut_verify(&x, ut_in_order, UT_N, &report);
    ut_expect_broken(&x, &report, 1, "is not an exported event");
    json_object_set_new(x.docs[0], "leaf_hash", json_integer(1));
    ut_verify(&x, ut_in_order, UT_N, &report);
    ut_expect_broken(&x, &report, 1, "is not an exported event");
    ut_export_free(&x);
}

/* Verifies the documents in order against one anchor (a checkpoint). */
static void
ut_verify_anchor(const ut_export *x, int n, const cv_chain_anchor *a,
                 cv_chain_report *report)
{
    static const int order[UT_N] = {0, 1, 2};
    FILE *f = ut_write(x, order, n);

    assert_int_equal(cv_chain_verify_file(f, a, 1, report), 0);
    fclose(f);
}

static void
test_chain_verify_file_anchor(void **state)
{
    cv_chain_report report;
    cv_chain_anchor a;
    ut_export x;

    (void)state;
    ut_export_build(&x);
    /* The untouched log extends a checkpoint of 2 and one of 3. */
    a.size = 2;
    memcpy(a.root, x.rootb[2], 32);
    ut_verify_anchor(&x, UT_N, &a, &report);
    assert_true(report.valid);
    assert_int_equal(report.checkpoint_size, 2);
    assert_string_equal(report.head, x.root[3]);
    a.size = 3;
    memcpy(a.root, x.rootb[3], 32);
    ut_verify_anchor(&x, UT_N, &a, &report);
    assert_true(report.valid);

    /* Truncated below the checkpoint: the exact words. */
    ut_verify_anchor(&x, 2, &a, &report);
    assert_false(report.valid);
    assert_int_equal(report.first_invalid_seq, 3);
    assert_non_null(strstr(report.reason, CV_CHAIN_SHORTER));

    /* Event 2 rewritten and its leaf hash recomputed: each line agrees
     * with itself, only the checkpoint tells, narrowed to leaves 1..3. */
    json_object_set_new(ut_event(&x, 1), "actor", json_string("mallory"));
    {
        char *text = json_dumps(ut_event(&x, 1), JSON_COMPACT | JSON_SORT_KEYS);
        uint8_t h[32];
        char hex[65];

        assert_non_null(text);
        ut_expected_leaf(text, h);
        ut_hex(h, 32, hex);
        json_object_set_new(x.docs[1], "leaf_hash", json_string(hex));
        free(text);
    }
    ut_verify(&x, ut_in_order, UT_N, &report);
    assert_true(report.valid); /* without an anchor nothing tells */
    ut_verify_anchor(&x, UT_N, &a, &report);
    assert_false(report.valid);
    assert_int_equal(report.first_invalid_seq, 1);
    assert_int_equal(report.last_invalid_seq, 3);
    assert_non_null(strstr(report.reason, "were rewritten"));
    /* A checkpoint of 1 leaf still matches: narrowed to 2..3. */
    {
        cv_chain_anchor two[2];
        static const int order[UT_N] = {0, 1, 2};
        FILE *f = ut_write(&x, order, UT_N);

        two[0].size = 1;
        memcpy(two[0].root, x.rootb[1], 32);
        two[1] = a;
        assert_int_equal(cv_chain_verify_file(f, two, 2, &report), 0);
        fclose(f);
    }
    assert_false(report.valid);
    assert_int_equal(report.first_invalid_seq, 2);
    assert_int_equal(report.last_invalid_seq, 3);
    ut_export_free(&x);
}

static void
test_chain_verify_file_not_json(void **state)
{
    static const int garbage_middle[] = {0, -1, 2};
    static const int garbage_first[] = {-1, 0, 1, 2};
    cv_chain_report report;
    ut_export x;
    FILE *f;

    (void)state;
    ut_export_build(&x);
    ut_verify(&x, garbage_middle, 3, &report);
    ut_expect_broken(&x, &report, 2, "line 2 is not an exported event");
    ut_verify(&x, garbage_first, 4, &report);
    ut_expect_broken(&x, &report, 1, "line 1 is not an exported event");

    /* JSON, but no event object. */
    f = tmpfile();
    assert_non_null(f);
    fprintf(f, "{\"leaf_hash\":\"%s\"}\n", x.hash[0]);
    rewind(f);
    assert_int_equal(cv_chain_verify_file(f, NULL, 0, &report), 0);
    fclose(f);
    ut_expect_broken(&x, &report, 1, "line 1 is not an exported event");
    f = tmpfile();
    assert_non_null(f);
    fputs("[1,2,3]\n", f);
    rewind(f);
    assert_int_equal(cv_chain_verify_file(f, NULL, 0, &report), 0);
    fclose(f);
    ut_expect_broken(&x, &report, 1, "line 1 is not an exported event");
    ut_export_free(&x);
}

static void
test_chain_verify_file_empty(void **state)
{
    cv_chain_report report;
    FILE *f = tmpfile();

    (void)state;
    assert_non_null(f);
    memset(&report, 0x5a, sizeof(report));
    assert_int_equal(cv_chain_verify_file(f, NULL, 0, &report), 0);
    fclose(f);
    assert_true(report.valid);
    assert_int_equal(report.events, 0);
    /* The root of the empty tree: SHA-256 of nothing. */
    assert_string_equal(report.head, "e3b0c44298fc1c149afbf4c8996fb92427ae41e"
                                     "4649b934ca495991b7852b855");
    assert_int_equal(report.first_invalid_seq, 0);
    assert_string_equal(report.reason, "");
}

static void
test_chain_verify_file_unhashed_content(void **state)
{
    cv_chain_report report;
    ut_export x;

    (void)state;
    /* A NULL column given a non-string value reads back as null, and an
     * extra key is not part of the canonical form: the line would show
     * content that was never hashed, so it must not verify. */
    ut_export_build(&x);
    json_object_set_new(ut_event(&x, 0), "provider", json_integer(5));
    ut_verify(&x, ut_in_order, UT_N, &report);
    if (report.valid)
        fail_msg("a non-string provider verified as the chained null");
    assert_int_equal(report.first_invalid_seq, 1);
    assert_int_equal(report.events, 0);
    assert_string_not_equal(report.reason, "");
    ut_export_free(&x);

    ut_export_build(&x);
    json_object_set_new(ut_event(&x, 1), "approved_by", json_string("cfo"));
    ut_verify(&x, ut_in_order, UT_N, &report);
    if (report.valid)
        fail_msg("an event with an unhashed key verified as valid");
    assert_int_equal(report.first_invalid_seq, 2);
    assert_int_equal(report.events, 1);
    assert_string_equal(report.head, "");
    assert_string_not_equal(report.reason, "");
    ut_export_free(&x);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain_canonical_exact),
        cmocka_unit_test(test_chain_canonical_nulls_and_bad_record),
        cmocka_unit_test(test_chain_canonical_key_order_irrelevant),
        cmocka_unit_test(test_chain_leaf_independent),
        cmocka_unit_test(test_chain_hex_lowercase),
        cmocka_unit_test(test_chain_verify_file_valid),
        cmocka_unit_test(test_chain_verify_file_export_key_order),
        cmocka_unit_test(test_chain_verify_file_record_changed),
        cmocka_unit_test(test_chain_verify_file_kind_changed),
        cmocka_unit_test(test_chain_verify_file_actor_changed),
        cmocka_unit_test(test_chain_verify_file_other_fields_changed),
        cmocka_unit_test(test_chain_verify_file_missing_line),
        cmocka_unit_test(test_chain_verify_file_swapped_lines),
        cmocka_unit_test(test_chain_verify_file_wrong_hash),
        cmocka_unit_test(test_chain_verify_file_anchor),
        cmocka_unit_test(test_chain_verify_file_not_json),
        cmocka_unit_test(test_chain_verify_file_empty),
        cmocka_unit_test(test_chain_verify_file_unhashed_content),
    };

    return cmocka_run_group_tests_name("chain", tests, NULL, NULL);
}
