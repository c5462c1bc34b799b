/*
 * proof_test.c -- unit tests for cv_proof (the JSON inclusion and
 * consistency proofs and their offline verification).
 *
 * A log of canonical evidence events (cv_chain_canonical) is built in
 * memory, its checkpoints signed with a key generated for the test; every
 * bundle must round-trip through JSON text and verify, and any one bit
 * flipped anywhere in its JSON text must make it fail. Run: ctest -R
 * unit.proof, or the binary.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_chain.h"
#include "cv_proof.h"

#define PT_LEAVES 21
#define PT_ORIGIN "cavra.test/evidence"

typedef struct pt_state {
    char dir[64];
    cv_note_signer *signer;
    cv_note_signer *other; /* same name, another key */
    cv_note_verifier *verifier;
    char *canonical[PT_LEAVES];
    cv_merkle_hash leaf[PT_LEAVES];
} pt_state;

/* Event i of the test log, in canonical form (malloc'd). */
static char *
pt_event(int i)
{
    char rid[32], plan[32], rec[64];
    cv_chain_event ev = {
        .seq = i + 1,
        .kind = i % 3 == 0 ? "ack.recorded" : "retry.scheduled",
        .record_id = rid,
        .plan_id = plan,
        .provider = i % 2 ? "slack" : NULL,
        .actor = "auditor\xc3\xa9",
        .request_id = "req-1",
        .created_at = "2026-12-05T05:30:00.000000Z",
        .record = rec,
        .principal = i % 4 == 0 ? NULL : "svc-ack",
    };

    snprintf(rid, sizeof(rid), "ack_%016x", (unsigned)(i * 7919));
    snprintf(plan, sizeof(plan), "plan-%d", i / 4);
    snprintf(rec, sizeof(rec), "{\"z\": [1, 2.5, null], \"a\": \"n%d\"}", i);
    return cv_chain_canonical(&ev);
}

/* The reader: perfect subtrees by recursion over the leaves. */
static void
pt_subtree(const pt_state *s, int level, int64_t index, cv_merkle_hash out)
{
    cv_merkle_hash l, r;

    if (level == 0) {
        assert_true(index < PT_LEAVES);
        memcpy(out, s->leaf[index], CV_MERKLE_HASH_LEN);
        return;
    }
    pt_subtree(s, level - 1, 2 * index, l);
    pt_subtree(s, level - 1, 2 * index + 1, r);
    cv_merkle_node_hash(l, r, out);
}

static int
pt_read_cb(void *arg, const cv_merkle_node *nodes, size_t count,
           cv_merkle_hash *hashes)
{
    for (size_t i = 0; i < count; i++)
        pt_subtree(arg, nodes[i].level, nodes[i].index, hashes[i]);
    return 0;
}

static int
pt_setup(void **state)
{
    pt_state *s = calloc(1, sizeof(*s));
    char path[128], vkey[256], why[160];

    if (s == NULL)
        return -1;
    snprintf(s->dir, sizeof(s->dir), "/tmp/cv-proof-test.XXXXXX");
    if (mkdtemp(s->dir) == NULL)
        return -1;
    snprintf(path, sizeof(path), "%s/log.pem", s->dir);
    if (cv_note_key_generate(path, why, sizeof(why)) != 0 ||
        (s->signer = cv_note_signer_load(path, PT_ORIGIN, why, sizeof(why))) ==
            NULL)
        return -1;
    snprintf(path, sizeof(path), "%s/other.pem", s->dir);
    if (cv_note_key_generate(path, why, sizeof(why)) != 0 ||
        (s->other = cv_note_signer_load(path, PT_ORIGIN, why, sizeof(why))) ==
            NULL)
        return -1;
    if (cv_note_signer_vkey(s->signer, vkey, sizeof(vkey)) < 0 ||
        (s->verifier = cv_note_verifier_parse(vkey, why, sizeof(why))) == NULL)
        return -1;
    for (int i = 0; i < PT_LEAVES; i++) {
        if ((s->canonical[i] = pt_event(i)) == NULL)
            return -1;
        cv_merkle_leaf_hash(s->canonical[i], strlen(s->canonical[i]),
                            s->leaf[i]);
    }
    *state = s;
    return 0;
}

static int
pt_teardown(void **state)
{
    pt_state *s = *state;
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf %s", s->dir);
    if (system(cmd) != 0)
        return -1;
    cv_note_signer_free(s->signer);
    cv_note_signer_free(s->other);
    cv_note_verifier_free(s->verifier);
    for (int i = 0; i < PT_LEAVES; i++)
        free(s->canonical[i]);
    free(s);
    return 0;
}

/* The signed checkpoint of the first size leaves (malloc'd). */
static char *
pt_checkpoint(pt_state *s, const cv_note_signer *signer, const char *origin,
              int64_t size)
{
    cv_checkpoint cp;
    char *body, *note;

    memset(&cp, 0, sizeof(cp));
    snprintf(cp.origin, sizeof(cp.origin), "%s", origin);
    cp.size = size;
    snprintf(cp.time, sizeof(cp.time), "2026-12-05T05:30:0%dZ",
             (int)(size % 10));
    assert_int_equal(cv_merkle_root(size, pt_read_cb, s, cp.root), 0);
    body = cv_checkpoint_format(&cp);
    assert_non_null(body);
    note = cv_note_sign(signer, body);
    assert_non_null(note);
    free(body);
    return note;
}

/* The inclusion bundle of leaf i in the tree of size leaves. */
static void
pt_bundle(pt_state *s, int64_t i, int64_t size, bool with_event,
          cv_inclusion_bundle *b)
{
    memset(b, 0, sizeof(*b));
    {
        json_t *ev = json_loads(s->canonical[i], 0, NULL);

        assert_non_null(ev);
        snprintf(b->record_id, sizeof(b->record_id), "%s",
                 json_string_value(json_object_get(ev, "record_id")));
        if (with_event)
            b->event = ev;
        else
            json_decref(ev);
    }
    b->leaf_index = i;
    b->tree_size = size;
    memcpy(b->leaf_hash, s->leaf[i], CV_MERKLE_HASH_LEN);
    assert_int_equal(cv_merkle_prove_inclusion(i, size, pt_read_cb, s, b->path,
                                               CV_MERKLE_MAX_PROOF,
                                               &b->path_len),
                     0);
    b->checkpoint = pt_checkpoint(s, s->signer, PT_ORIGIN, size);
}

/* Decodes JSON text and verifies it; returns 0 only when it is valid. */
static int
pt_verify_text(const pt_state *s, const char *text, size_t len, char *why,
               size_t whylen)
{
    cv_inclusion_bundle b;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    int rv;

    if (doc == NULL)
        return -1;
    rv = cv_proof_inclusion_parse(doc, &b, why, whylen);
    json_decref(doc);
    if (rv != 0)
        return -1;
    rv = cv_proof_verify_inclusion(&b, s->verifier, NULL, why, whylen);
    cv_proof_inclusion_fini(&b);
    return rv;
}

static void
test_proof_inclusion_round_trip(void **state)
{
    pt_state *s = *state;
    char why[256];

    for (int64_t size = 1; size <= PT_LEAVES; size += 4) {
        for (int64_t i = 0; i < size; i++) {
            cv_inclusion_bundle b, back;
            cv_checkpoint cp;
            json_t *doc;
            char *text;

            pt_bundle(s, i, size, i % 2 == 0, &b);
            assert_int_equal(cv_proof_verify_inclusion(&b, s->verifier, &cp,
                                                       why, sizeof(why)),
                             0);
            assert_int_equal(cp.size, size);
            assert_string_equal(cp.origin, PT_ORIGIN);
            doc = cv_proof_inclusion_json(&b);
            assert_non_null(doc);
            text = json_dumps(doc, JSON_COMPACT);
            json_decref(doc);
            assert_non_null(text);
            doc = json_loads(text, 0, NULL);
            assert_int_equal(
                cv_proof_inclusion_parse(doc, &back, why, sizeof(why)), 0);
            json_decref(doc);
            assert_string_equal(back.record_id, b.record_id);
            assert_int_equal(back.leaf_index, b.leaf_index);
            assert_int_equal(back.tree_size, b.tree_size);
            assert_int_equal(back.path_len, b.path_len);
            assert_memory_equal(back.path, b.path,
                                b.path_len * CV_MERKLE_HASH_LEN);
            assert_memory_equal(back.leaf_hash, b.leaf_hash,
                                CV_MERKLE_HASH_LEN);
            assert_string_equal(back.checkpoint, b.checkpoint);
            assert_int_equal(back.event != NULL, b.event != NULL);
            assert_int_equal(cv_proof_verify_inclusion(&back, s->verifier, NULL,
                                                       why, sizeof(why)),
                             0);
            free(text);
            cv_proof_inclusion_fini(&back);
            cv_proof_inclusion_fini(&b);
        }
    }
}

/* Any one bit flipped anywhere in the bundle's JSON text: refused. */
static void
test_proof_inclusion_flipped_bits(void **state)
{
    pt_state *s = *state;
    static const int64_t cases[][2] = {{5, 13}, {0, 1}, {20, 21}};
    char why[256];

    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        cv_inclusion_bundle b;
        json_t *doc;
        char *text;
        size_t len, ev;

        pt_bundle(s, cases[c][0], cases[c][1], true, &b);
        doc = cv_proof_inclusion_json(&b);
        text = json_dumps(doc, JSON_COMPACT);
        json_decref(doc);
        assert_non_null(text);
        len = strlen(text);
        assert_non_null(strstr(text, "\"event\":"));
        ev = (size_t)(strstr(text, "\"event\":") - text);
        assert_int_equal(pt_verify_text(s, text, len, why, sizeof(why)), 0);
        for (size_t i = 0; i < len; i++) {
            for (int bit = 0; bit < 8; bit += (c == 0 ? 1 : 3)) {
                text[i] ^= (char)(1 << bit);
                /* Only a hex digit's case may change without meaning,
                 * and renaming "event" drops the (optional) event: what
                 * is left still proves the leaf hash. */
                if (pt_verify_text(s, text, len, why, sizeof(why)) == 0 &&
                    !(bit == 5 && ((text[i] >= 'A' && text[i] <= 'F') ||
                                   (text[i] >= 'a' && text[i] <= 'f'))) &&
                    !(i > ev && i < ev + 6))
                    fail_msg("bundle %zu still valid with bit %d of byte %zu "
                             "flipped:\n%s",
                             c, bit, i, text);
                text[i] ^= (char)(1 << bit);
            }
        }
        free(text);
        cv_proof_inclusion_fini(&b);
    }
}

static void
test_proof_inclusion_refused(void **state)
{
    pt_state *s = *state;
    cv_inclusion_bundle b;
    char why[256];
    char *note;

    /* Signed by another key of the same name. */
    pt_bundle(s, 3, 9, true, &b);
    free(b.checkpoint);
    b.checkpoint = pt_checkpoint(s, s->other, PT_ORIGIN, 9);
    assert_int_equal(
        cv_proof_verify_inclusion(&b, s->verifier, NULL, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "checkpoint: note has no signature"));
    /* A checkpoint of another size. */
    free(b.checkpoint);
    b.checkpoint = pt_checkpoint(s, s->signer, PT_ORIGIN, 10);
    assert_int_equal(
        cv_proof_verify_inclusion(&b, s->verifier, NULL, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "tree_size 9 does not match"));
    /* The right checkpoint, another leaf's event. */
    free(b.checkpoint);
    b.checkpoint = pt_checkpoint(s, s->signer, PT_ORIGIN, 9);
    assert_int_equal(
        cv_proof_verify_inclusion(&b, s->verifier, NULL, why, sizeof(why)), 0);
    json_decref(b.event);
    b.event = json_loads(s->canonical[4], 0, NULL);
    assert_int_equal(
        cv_proof_verify_inclusion(&b, s->verifier, NULL, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "leaf_hash is not the hash of the event"));
    /* Another leaf's hash and event, claimed at index 3. */
    memcpy(b.leaf_hash, s->leaf[4], CV_MERKLE_HASH_LEN);
    assert_int_equal(
        cv_proof_verify_inclusion(&b, s->verifier, NULL, why, sizeof(why)), -1);
    /* The event with an extra field, or a field of another type. */
    json_decref(b.event);
    b.event = json_loads(s->canonical[3], 0, NULL);
    memcpy(b.leaf_hash, s->leaf[3], CV_MERKLE_HASH_LEN);
    assert_int_equal(
        cv_proof_verify_inclusion(&b, s->verifier, NULL, why, sizeof(why)), 0);
    json_object_set_new(b.event, "extra", json_true());
    assert_int_equal(
        cv_proof_verify_inclusion(&b, s->verifier, NULL, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "not a canonical evidence event"));
    json_object_del(b.event, "extra");
    json_object_set_new(b.event, "request_id", json_integer(1));
    assert_int_equal(
        cv_proof_verify_inclusion(&b, s->verifier, NULL, why, sizeof(why)), -1);
    json_object_set_new(b.event, "request_id", json_string("req-1"));
    assert_int_equal(
        cv_proof_verify_inclusion(&b, s->verifier, NULL, why, sizeof(why)), 0);
    /* The record_id asked for is not the event's. */
    b.record_id[0] = 'x';
    assert_int_equal(
        cv_proof_verify_inclusion(&b, s->verifier, NULL, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "record_id"));
    b.record_id[0] = 'a';
    /* Wrong index, index out of range, path cut or extended. */
    b.leaf_index = 2;
    assert_int_equal(
        cv_proof_verify_inclusion(&b, s->verifier, NULL, why, sizeof(why)), -1);
    b.leaf_index = 9;
    assert_int_equal(
        cv_proof_verify_inclusion(&b, s->verifier, NULL, why, sizeof(why)), -1);
    b.leaf_index = 3;
    b.path_len--;
    assert_int_equal(
        cv_proof_verify_inclusion(&b, s->verifier, NULL, why, sizeof(why)), -1);
    b.path_len += 2;
    assert_int_equal(
        cv_proof_verify_inclusion(&b, s->verifier, NULL, why, sizeof(why)), -1);
    b.path_len--;
    /* A checkpoint whose body was changed after signing. */
    note = b.checkpoint;
    note[strlen(PT_ORIGIN) + 1] = '8';
    assert_int_equal(
        cv_proof_verify_inclusion(&b, s->verifier, NULL, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "invalid signature"));
    assert_int_equal(
        cv_proof_verify_inclusion(NULL, s->verifier, NULL, why, sizeof(why)),
        -1);
    assert_int_equal(cv_proof_verify_inclusion(&b, NULL, NULL, why, 0), -1);
    cv_proof_inclusion_fini(&b);
    cv_proof_inclusion_fini(NULL);
}

/* Each malformed field is named. */
static void
test_proof_inclusion_parse_errors(void **state)
{
    static const char *const cases[][2] = {
        {"[]", "JSON object"},
        {"{}", "record_id"},
        {"{\"record_id\":7}", "record_id"},
        {"{\"record_id\":\"\"}", "record_id"},
        {"{\"record_id\":\"a\\u0000b\"}", "record_id"},
        {"{\"record_id\":\"a\"}", "leaf_index"},
        {"{\"record_id\":\"a\",\"leaf_index\":-1}", "leaf_index"},
        {"{\"record_id\":\"a\",\"leaf_index\":1.5}", "leaf_index"},
        {"{\"record_id\":\"a\",\"leaf_index\":0,\"tree_size\":0}", "tree_size"},
        {"{\"record_id\":\"a\",\"leaf_index\":0,\"tree_size\":1,"
         "\"leaf_hash\":\"00\"}",
         "leaf_hash"},
        {"{\"record_id\":\"a\",\"leaf_index\":0,\"tree_size\":1,"
         "\"leaf_hash\":"
         "\"000000000000000000000000000000000000000000000000000000000000000g\""
         "}",
         "leaf_hash"},
        {"{\"record_id\":\"a\",\"leaf_index\":0,\"tree_size\":1,"
         "\"leaf_hash\":"
         "\"0000000000000000000000000000000000000000000000000000000000000000\","
         "\"audit_path\":{}}",
         "audit_path"},
        {"{\"record_id\":\"a\",\"leaf_index\":0,\"tree_size\":1,"
         "\"leaf_hash\":"
         "\"0000000000000000000000000000000000000000000000000000000000000000\","
         "\"audit_path\":[\"00\"]}",
         "audit_path[0]"},
        {"{\"record_id\":\"a\",\"leaf_index\":0,\"tree_size\":1,"
         "\"leaf_hash\":"
         "\"0000000000000000000000000000000000000000000000000000000000000000\","
         "\"audit_path\":[]}",
         "checkpoint"},
        {"{\"record_id\":\"a\",\"leaf_index\":0,\"tree_size\":1,"
         "\"leaf_hash\":"
         "\"0000000000000000000000000000000000000000000000000000000000000000\","
         "\"audit_path\":[],\"checkpoint\":\"x\",\"event\":[]}",
         "event"},
    };
    char why[256];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *doc = json_loads(cases[i][0], JSON_ALLOW_NUL, NULL);
        cv_inclusion_bundle b;

        assert_non_null(doc);
        why[0] = '\0';
        if (cv_proof_inclusion_parse(doc, &b, why, sizeof(why)) != -1)
            fail_msg("accepted %s", cases[i][0]);
        if (strstr(why, cases[i][1]) == NULL)
            fail_msg("reason for %s is \"%s\", not naming %s", cases[i][0], why,
                     cases[i][1]);
        json_decref(doc);
    }
    /* 129 hashes are too many. */
    {
        json_t *doc = json_loads(
            "{\"record_id\":\"a\",\"leaf_index\":0,\"tree_size\":1,"
            "\"leaf_hash\":"
            "\"0000000000000000000000000000000000000000000000000000000000000000"
            "\",\"checkpoint\":\"x\"}",
            0, NULL);
        json_t *path = json_array();
        cv_inclusion_bundle b;

        for (int i = 0; i <= CV_MERKLE_MAX_PROOF; i++)
            json_array_append_new(
                path, json_string("00000000000000000000000000000000000000000000"
                                  "00000000000000000000"));
        json_object_set_new(doc, "audit_path", path);
        assert_int_equal(cv_proof_inclusion_parse(doc, &b, why, sizeof(why)),
                         -1);
        assert_non_null(strstr(why, "more than"));
        json_array_remove(path, 0);
        assert_int_equal(cv_proof_inclusion_parse(doc, &b, why, sizeof(why)),
                         0);
        assert_int_equal(b.path_len, CV_MERKLE_MAX_PROOF);
        cv_proof_inclusion_fini(&b);
        json_decref(doc);
    }
}

static void
test_proof_consistency(void **state)
{
    pt_state *s = *state;
    char why[256];

    for (int64_t m = 1; m <= PT_LEAVES; m += 3) {
        for (int64_t n = m; n <= PT_LEAVES; n += 5) {
            cv_consistency_bundle b, back;
            json_t *doc;
            char *text;

            memset(&b, 0, sizeof(b));
            b.from = m;
            b.to = n;
            assert_int_equal(
                cv_merkle_prove_consistency(m, n, pt_read_cb, s, b.proof,
                                            CV_MERKLE_MAX_PROOF, &b.proof_len),
                0);
            b.from_checkpoint = pt_checkpoint(s, s->signer, PT_ORIGIN, m);
            b.to_checkpoint = pt_checkpoint(s, s->signer, PT_ORIGIN, n);
            doc = cv_proof_consistency_json(&b);
            text = json_dumps(doc, JSON_COMPACT);
            json_decref(doc);
            doc = json_loads(text, 0, NULL);
            free(text);
            assert_int_equal(
                cv_proof_consistency_parse(doc, &back, why, sizeof(why)), 0);
            json_decref(doc);
            assert_int_equal(cv_proof_verify_consistency(&back, s->verifier,
                                                         why, sizeof(why)),
                             0);
            for (size_t i = 0; i < back.proof_len; i++) {
                back.proof[i][7] ^= 0x04;
                assert_int_equal(cv_proof_verify_consistency(&back, s->verifier,
                                                             why, sizeof(why)),
                                 -1);
                back.proof[i][7] ^= 0x04;
            }
            if (m != n) {
                /* The checkpoints swapped. */
                char *t = back.from_checkpoint;

                back.from_checkpoint = back.to_checkpoint;
                back.to_checkpoint = t;
                assert_int_equal(cv_proof_verify_consistency(&back, s->verifier,
                                                             why, sizeof(why)),
                                 -1);
            }
            cv_proof_consistency_fini(&back);
            cv_proof_consistency_fini(&b);
        }
    }
    /* A forged new checkpoint (another key), another log, a missing one. */
    {
        cv_consistency_bundle b;

        memset(&b, 0, sizeof(b));
        b.from = 5;
        b.to = 12;
        assert_int_equal(
            cv_merkle_prove_consistency(5, 12, pt_read_cb, s, b.proof,
                                        CV_MERKLE_MAX_PROOF, &b.proof_len),
            0);
        b.from_checkpoint = pt_checkpoint(s, s->signer, PT_ORIGIN, 5);
        b.to_checkpoint = pt_checkpoint(s, s->other, PT_ORIGIN, 12);
        assert_int_equal(
            cv_proof_verify_consistency(&b, s->verifier, why, sizeof(why)), -1);
        assert_non_null(strstr(why, "to_checkpoint"));
        free(b.to_checkpoint);
        b.to_checkpoint = pt_checkpoint(s, s->signer, "other.log", 12);
        assert_int_equal(
            cv_proof_verify_consistency(&b, s->verifier, why, sizeof(why)), -1);
        assert_non_null(strstr(why, "different logs"));
        free(b.to_checkpoint);
        b.to_checkpoint = pt_checkpoint(s, s->signer, PT_ORIGIN, 12);
        assert_int_equal(
            cv_proof_verify_consistency(&b, s->verifier, why, sizeof(why)), 0);
        b.to = 13;
        assert_int_equal(
            cv_proof_verify_consistency(&b, s->verifier, why, sizeof(why)), -1);
        b.to = 12;
        free(b.from_checkpoint);
        b.from_checkpoint = NULL;
        assert_int_equal(
            cv_proof_verify_consistency(&b, s->verifier, why, sizeof(why)), -1);
        assert_non_null(strstr(why, "from_checkpoint is missing"));
        cv_proof_consistency_fini(&b);
    }
    {
        json_t *doc = json_loads("{\"from\":5,\"to\":4,\"proof\":[]}", 0, NULL);
        cv_consistency_bundle b;

        assert_int_equal(cv_proof_consistency_parse(doc, &b, why, sizeof(why)),
                         -1);
        json_decref(doc);
        doc = json_loads("{\"from\":5,\"to\":6,\"proof\":[],"
                         "\"to_checkpoint\":3}",
                         0, NULL);
        assert_int_equal(cv_proof_consistency_parse(doc, &b, why, sizeof(why)),
                         -1);
        assert_non_null(strstr(why, "to_checkpoint"));
        json_decref(doc);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proof_inclusion_round_trip),
        cmocka_unit_test(test_proof_inclusion_flipped_bits),
        cmocka_unit_test(test_proof_inclusion_refused),
        cmocka_unit_test(test_proof_inclusion_parse_errors),
        cmocka_unit_test(test_proof_consistency),
    };

    return cmocka_run_group_tests_name("proof", tests, pt_setup, pt_teardown);
}
