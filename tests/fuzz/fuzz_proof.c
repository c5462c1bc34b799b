/*
 * fuzz_proof.c -- libFuzzer target for the proof bundle decoders and
 * verifiers (lib/cv_proof.c, lib/cv_merkle.c), which read the files an
 * auditor hands to `cavra-verify --inclusion`.
 *
 * The input is JSON; the seeds are valid bundles signed by the fixed
 * fuzz key (proof_fuzz_key.h), so mutations reach every check.
 * Properties checked on every input:
 *  - cv_proof_inclusion_parse / _consistency_parse never crash; what they
 *    accept encodes back (cv_proof_*_json) into a document that parses to
 *    the same bundle and gets the same verdict;
 *  - a bundle that verifies really is consistent: its leaf, index, size
 *    and path verify with cv_merkle_verify_inclusion against the root of
 *    its signed checkpoint;
 *  - the raw Merkle verifiers, fed sizes and hashes from the input, never
 *    crash.
 * Any violation aborts, which the fuzzer reports as a crash.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_proof.h"
#include "proof_fuzz_key.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_proof_inclusion(const json_t *doc, const cv_note_verifier *v)
{
    cv_inclusion_bundle b, back;
    cv_checkpoint cp, cp2;
    char why[256], why2[256];
    json_t *again;
    int rv, rv2;

    if (cv_proof_inclusion_parse(doc, &b, why, sizeof(why)) != 0)
        return;
    rv = cv_proof_verify_inclusion(&b, v, &cp, why, sizeof(why));
    if (rv == 0 &&
        !cv_merkle_verify_inclusion(b.leaf_hash, b.leaf_index, b.tree_size,
                                    b.path, b.path_len, cp.root)) {
        fprintf(stderr, "verified bundle does not verify\n");
        abort();
    }
    if ((again = cv_proof_inclusion_json(&b)) == NULL) {
        fprintf(stderr, "accepted bundle does not encode\n");
        abort();
    }
    if (cv_proof_inclusion_parse(again, &back, why2, sizeof(why2)) != 0) {
        fprintf(stderr, "encoded bundle does not parse: %s\n", why2);
        abort();
    }
    rv2 = cv_proof_verify_inclusion(&back, v, &cp2, why2, sizeof(why2));
    if (rv != rv2 || strcmp(b.record_id, back.record_id) != 0 ||
        b.leaf_index != back.leaf_index || b.tree_size != back.tree_size ||
        b.path_len != back.path_len ||
        memcmp(b.path, back.path, b.path_len * CV_MERKLE_HASH_LEN) != 0 ||
        strcmp(b.checkpoint, back.checkpoint) != 0 ||
        (b.event == NULL) != (back.event == NULL) ||
        (b.event != NULL && !json_equal(b.event, back.event))) {
        fprintf(stderr, "bundle changed in a round trip (%s / %s)\n", why,
                why2);
        abort();
    }
    json_decref(again);
    cv_proof_inclusion_fini(&back);
    cv_proof_inclusion_fini(&b);
}

static void
fuzz_proof_consistency(const json_t *doc, const cv_note_verifier *v)
{
    cv_consistency_bundle b, back;
    char why[256];
    json_t *again;

    if (cv_proof_consistency_parse(doc, &b, why, sizeof(why)) != 0)
        return;
    if ((again = cv_proof_consistency_json(&b)) == NULL ||
        cv_proof_consistency_parse(again, &back, why, sizeof(why)) != 0 ||
        back.from != b.from || back.to != b.to ||
        back.proof_len != b.proof_len ||
        (cv_proof_verify_consistency(&b, v, why, sizeof(why)) == 0) !=
            (cv_proof_verify_consistency(&back, v, why, sizeof(why)) == 0)) {
        fprintf(stderr, "consistency bundle changed in a round trip\n");
        abort();
    }
    json_decref(again);
    cv_proof_consistency_fini(&back);
    cv_proof_consistency_fini(&b);
}

/* The raw verifiers on sizes and hashes straight from the input. */
static void
fuzz_proof_raw(const uint8_t *data, size_t size)
{
    cv_merkle_hash hashes[CV_MERKLE_MAX_PROOF + 3];
    int64_t a = 0, b = 0;
    size_t n;

    if (size < 16)
        return;
    for (int i = 0; i < 8; i++) {
        a = (int64_t)((uint64_t)a << 8 | data[i]);
        b = (int64_t)((uint64_t)b << 8 | data[8 + i]);
    }
    data += 16;
    size -= 16;
    n = size / CV_MERKLE_HASH_LEN;
    if (n > CV_MERKLE_MAX_PROOF + 3)
        n = CV_MERKLE_MAX_PROOF + 3;
    if (n < 2)
        return;
    memcpy(hashes, data, n * CV_MERKLE_HASH_LEN);
    (void)cv_merkle_verify_inclusion(hashes[0], a, b, hashes + 2, n - 2,
                                     hashes[1]);
    (void)cv_merkle_verify_consistency(a, b, hashes[0], hashes[1], hashes + 2,
                                       n - 2);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cv_note_signer *signer;
    cv_note_verifier *v;
    json_t *doc;

    if (size > 1 << 16)
        return 0;
    proof_fuzz_key(&signer, &v);
    fuzz_proof_raw(data, size);
    doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (doc == NULL)
        return 0;
    fuzz_proof_inclusion(doc, v);
    fuzz_proof_consistency(doc, v);
    json_decref(doc);
    return 0;
}
