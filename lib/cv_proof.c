/*
 * cv_proof.c -- JSON encoding, decoding and offline verification of the
 * evidence log's inclusion and consistency proofs (see cv_proof.h).
 *
 * Decoding takes untrusted JSON (a file an auditor was handed, a fuzz
 * input): every field is type-checked and bounded before use, and a
 * failure names the field.
 */
#include "cv_proof.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_chain.h"

#define CV_PROOF_HEX (2 * CV_MERKLE_HASH_LEN)

static int
cv_proof_fail(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;

    if (why != NULL && whylen > 0) {
        va_start(ap, fmt);
        vsnprintf(why, whylen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ---- encoding ------------------------------------------------------------ */

static json_t *
cv_proof_hex(const cv_merkle_hash h)
{
    char hex[CV_PROOF_HEX + 1];

    cv_hex_encode(h, CV_MERKLE_HASH_LEN, hex);
    return json_string(hex);
}

static json_t *
cv_proof_hex_array(const cv_merkle_hash *hashes, size_t n)
{
    json_t *arr = json_array();

    for (size_t i = 0; arr != NULL && i < n; i++) {
        if (json_array_append_new(arr, cv_proof_hex(hashes[i])) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

json_t *
cv_proof_inclusion_json(const cv_inclusion_bundle *b)
{
    json_t *doc;

    if (b == NULL || b->checkpoint == NULL || b->path_len > CV_MERKLE_MAX_PROOF)
        return NULL;
    doc = json_pack("{s:s, s:I, s:o, s:I, s:o, s:s}", "record_id", b->record_id,
                    "leaf_index", (json_int_t)b->leaf_index, "leaf_hash",
                    cv_proof_hex(b->leaf_hash), "tree_size",
                    (json_int_t)b->tree_size, "audit_path",
                    cv_proof_hex_array(b->path, b->path_len), "checkpoint",
                    b->checkpoint);
    if (doc != NULL && b->event != NULL &&
        json_object_set(doc, "event", b->event) != 0) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}

json_t *
cv_proof_consistency_json(const cv_consistency_bundle *b)
{
    json_t *doc;

    if (b == NULL || b->proof_len > CV_MERKLE_MAX_PROOF)
        return NULL;
    doc = json_pack("{s:I, s:I, s:o}", "from", (json_int_t)b->from, "to",
                    (json_int_t)b->to, "proof",
                    cv_proof_hex_array(b->proof, b->proof_len));
    if (doc == NULL)
        return NULL;
    if ((b->from_checkpoint != NULL &&
         json_object_set_new(doc, "from_checkpoint",
                             json_string(b->from_checkpoint)) != 0) ||
        (b->to_checkpoint != NULL &&
         json_object_set_new(doc, "to_checkpoint",
                             json_string(b->to_checkpoint)) != 0)) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}

/* ---- decoding ------------------------------------------------------------ */

/* A non-negative integer member. */
static int
cv_proof_get_int(const json_t *doc, const char *key, int64_t min, int64_t *out,
                 char *why, size_t whylen)
{
    const json_t *v = json_object_get(doc, key);

    if (!json_is_integer(v) || json_integer_value(v) < min)
        return cv_proof_fail(why, whylen, "%s must be an integer >= %lld", key,
                             (long long)min);
    *out = json_integer_value(v);
    return 0;
}

/* A 64-hex-digit hash from a JSON string. */
static int
cv_proof_get_hash(const json_t *v, cv_merkle_hash out)
{
    if (!json_is_string(v) || json_string_length(v) != CV_PROOF_HEX)
        return -1;
    return cv_hex_decode(json_string_value(v), CV_MERKLE_HASH_LEN, out);
}

static int
cv_proof_get_path(const json_t *doc, const char *key, cv_merkle_hash *out,
                  size_t *len, char *why, size_t whylen)
{
    const json_t *arr = json_object_get(doc, key);
    size_t n;

    if (!json_is_array(arr))
        return cv_proof_fail(why, whylen, "%s must be an array of hashes", key);
    if ((n = json_array_size(arr)) > CV_MERKLE_MAX_PROOF)
        return cv_proof_fail(why, whylen, "%s has more than %d hashes", key,
                             CV_MERKLE_MAX_PROOF);
    for (size_t i = 0; i < n; i++) {
        if (cv_proof_get_hash(json_array_get(arr, i), out[i]) != 0)
            return cv_proof_fail(why, whylen, "%s[%zu] must be 64 hex digits",
                                 key, i);
    }
    *len = n;
    return 0;
}

/* A signed note member: a string without NUL, at most CV_NOTE_MAX_LEN
 * bytes; *out malloc'd, NULL when the member is absent and optional. */
static int
cv_proof_get_note(const json_t *doc, const char *key, bool optional, char **out,
                  char *why, size_t whylen)
{
    const json_t *v = json_object_get(doc, key);
    size_t n;

    *out = NULL;
    if (optional && (v == NULL || json_is_null(v)))
        return 0;
    if (!json_is_string(v) || (n = json_string_length(v)) == 0 ||
        n > CV_NOTE_MAX_LEN || strlen(json_string_value(v)) != n)
        return cv_proof_fail(why, whylen,
                             "%s must be a signed note of 1..%d bytes", key,
                             CV_NOTE_MAX_LEN);
    if ((*out = strdup(json_string_value(v))) == NULL)
        return cv_proof_fail(why, whylen, "out of memory");
    return 0;
}

int
cv_proof_inclusion_parse(const json_t *doc, cv_inclusion_bundle *b, char *why,
                         size_t whylen)
{
    const json_t *v;
    size_t n;

    if (b == NULL)
        return cv_proof_fail(why, whylen, "no bundle");
    memset(b, 0, sizeof(*b));
    if (!json_is_object(doc))
        return cv_proof_fail(why, whylen, "proof must be a JSON object");
    v = json_object_get(doc, "record_id");
    if (!json_is_string(v) || (n = json_string_length(v)) == 0 ||
        n >= sizeof(b->record_id) || strlen(json_string_value(v)) != n)
        return cv_proof_fail(why, whylen,
                             "record_id must be a string of 1..%d bytes",
                             (int)sizeof(b->record_id) - 1);
    memcpy(b->record_id, json_string_value(v), n + 1);
    if (cv_proof_get_int(doc, "leaf_index", 0, &b->leaf_index, why, whylen) !=
            0 ||
        cv_proof_get_int(doc, "tree_size", 1, &b->tree_size, why, whylen) != 0)
        goto fail;
    if (cv_proof_get_hash(json_object_get(doc, "leaf_hash"), b->leaf_hash) !=
        0) {
        cv_proof_fail(why, whylen, "leaf_hash must be 64 hex digits");
        goto fail;
    }
    if (cv_proof_get_path(doc, "audit_path", b->path, &b->path_len, why,
                          whylen) != 0 ||
        cv_proof_get_note(doc, "checkpoint", false, &b->checkpoint, why,
                          whylen) != 0)
        goto fail;
    v = json_object_get(doc, "event");
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_object(v)) {
            cv_proof_fail(why, whylen, "event must be a JSON object");
            goto fail;
        }
        b->event = json_incref((json_t *)v);
    }
    return 0;
fail:
    cv_proof_inclusion_fini(b);
    return -1;
}

int
cv_proof_consistency_parse(const json_t *doc, cv_consistency_bundle *b,
                           char *why, size_t whylen)
{
    if (b == NULL)
        return cv_proof_fail(why, whylen, "no bundle");
    memset(b, 0, sizeof(*b));
    if (!json_is_object(doc))
        return cv_proof_fail(why, whylen, "proof must be a JSON object");
    if (cv_proof_get_int(doc, "from", 0, &b->from, why, whylen) != 0 ||
        cv_proof_get_int(doc, "to", 0, &b->to, why, whylen) != 0 ||
        cv_proof_get_path(doc, "proof", b->proof, &b->proof_len, why, whylen) !=
            0 ||
        cv_proof_get_note(doc, "from_checkpoint", true, &b->from_checkpoint,
                          why, whylen) != 0 ||
        cv_proof_get_note(doc, "to_checkpoint", true, &b->to_checkpoint, why,
                          whylen) != 0) {
        cv_proof_consistency_fini(b);
        return -1;
    }
    if (b->from > b->to) {
        cv_proof_consistency_fini(b);
        return cv_proof_fail(why, whylen, "from must not exceed to");
    }
    return 0;
}

void
cv_proof_inclusion_fini(cv_inclusion_bundle *b)
{
    if (b == NULL)
        return;
    free(b->checkpoint);
    json_decref(b->event);
    memset(b, 0, sizeof(*b));
}

void
cv_proof_consistency_fini(cv_consistency_bundle *b)
{
    if (b == NULL)
        return;
    free(b->from_checkpoint);
    free(b->to_checkpoint);
    memset(b, 0, sizeof(*b));
}

/* ---- verification -------------------------------------------------------- */

/* A string-or-null member of an event, for cv_chain_event. */
static const char *
cv_proof_event_str(const json_t *event, const char *key)
{
    return json_string_value(json_object_get(event, key)); /* NULL if not */
}

int
cv_proof_event_leaf(const json_t *event, cv_merkle_hash leaf, char *why,
                    size_t whylen)
{
    const json_t *seq = json_object_get(event, "seq");
    cv_chain_event ev;
    char *given = NULL, *record = NULL, *canonical = NULL;
    int rv = -1;

    if (!json_is_object(event))
        return cv_proof_fail(why, whylen, "event must be a JSON object");
    if (!json_is_integer(seq))
        return cv_proof_fail(why, whylen, "event.seq must be an integer");
    /* Rebuild the event from its fields the way the sequencer does; any
     * extra, missing or mistyped field makes the two texts differ. */
    memset(&ev, 0, sizeof(ev));
    ev.seq = json_integer_value(seq);
    ev.kind = cv_proof_event_str(event, "kind");
    ev.record_id = cv_proof_event_str(event, "record_id");
    ev.plan_id = cv_proof_event_str(event, "plan_id");
    ev.provider = cv_proof_event_str(event, "provider");
    ev.actor = cv_proof_event_str(event, "actor");
    ev.request_id = cv_proof_event_str(event, "request_id");
    ev.created_at = cv_proof_event_str(event, "created_at");
    ev.principal = cv_proof_event_str(event, "principal");
    if (json_object_get(event, "record") != NULL)
        record = json_dumps(json_object_get(event, "record"),
                            JSON_ENCODE_ANY | JSON_COMPACT | JSON_SORT_KEYS);
    ev.record = record; /* NULL: JSON null */
    given = json_dumps(event, JSON_COMPACT | JSON_SORT_KEYS);
    canonical = cv_chain_canonical(&ev);
    if (given == NULL || canonical == NULL) {
        cv_proof_fail(why, whylen, "event cannot be serialized");
        goto done;
    }
    if (strcmp(given, canonical) != 0) {
        cv_proof_fail(why, whylen,
                      "event is not a canonical evidence event (fields or "
                      "types differ)");
        goto done;
    }
    cv_merkle_leaf_hash(given, strlen(given), leaf);
    rv = 0;
done:
    free(record);
    free(given);
    free(canonical);
    return rv;
}

/* Opens a signed checkpoint: signature by v, then its body. */
static int
cv_proof_open_checkpoint(const char *note, const cv_note_verifier *v,
                         const char *what, cv_checkpoint *cp, char *why,
                         size_t whylen)
{
    char reason[192];
    char *body = NULL;
    int rv;

    if (note == NULL)
        return cv_proof_fail(why, whylen, "%s is missing", what);
    if (cv_note_verify(note, strlen(note), v, &body, reason, sizeof(reason)) !=
        0)
        return cv_proof_fail(why, whylen, "%s: %s", what, reason);
    rv = cv_checkpoint_parse(body, strlen(body), cp, reason, sizeof(reason));
    free(body);
    if (rv != 0)
        return cv_proof_fail(why, whylen, "%s: %s", what, reason);
    return 0;
}

int
cv_proof_verify_inclusion(const cv_inclusion_bundle *b,
                          const cv_note_verifier *v, cv_checkpoint *cp,
                          char *why, size_t whylen)
{
    cv_checkpoint signed_cp;

    if (b == NULL || v == NULL)
        return cv_proof_fail(why, whylen, "no proof or no key");
    if (cv_proof_open_checkpoint(b->checkpoint, v, "checkpoint", &signed_cp,
                                 why, whylen) != 0)
        return -1;
    if (signed_cp.size != b->tree_size)
        return cv_proof_fail(why, whylen,
                             "tree_size %lld does not match the checkpoint's "
                             "size %lld",
                             (long long)b->tree_size,
                             (long long)signed_cp.size);
    if (b->leaf_index < 0 || b->leaf_index >= b->tree_size)
        return cv_proof_fail(why, whylen,
                             "leaf_index %lld is outside the tree of %lld",
                             (long long)b->leaf_index, (long long)b->tree_size);
    if (b->event != NULL) {
        cv_merkle_hash leaf;
        const char *rid =
            json_string_value(json_object_get(b->event, "record_id"));

        if (cv_proof_event_leaf(b->event, leaf, why, whylen) != 0)
            return -1;
        if (memcmp(leaf, b->leaf_hash, CV_MERKLE_HASH_LEN) != 0)
            return cv_proof_fail(why, whylen,
                                 "leaf_hash is not the hash of the event");
        if (rid == NULL || strcmp(rid, b->record_id) != 0)
            return cv_proof_fail(why, whylen,
                                 "event.record_id is not the record_id");
    }
    if (!cv_merkle_verify_inclusion(b->leaf_hash, b->leaf_index, b->tree_size,
                                    b->path, b->path_len, signed_cp.root))
        return cv_proof_fail(why, whylen,
                             "audit_path does not lead from leaf %lld to the "
                             "checkpoint's root",
                             (long long)b->leaf_index);
    if (cp != NULL)
        *cp = signed_cp;
    return 0;
}

int
cv_proof_verify_consistency(const cv_consistency_bundle *b,
                            const cv_note_verifier *v, char *why, size_t whylen)
{
    cv_checkpoint c1, c2;

    if (b == NULL || v == NULL)
        return cv_proof_fail(why, whylen, "no proof or no key");
    if (cv_proof_open_checkpoint(b->from_checkpoint, v, "from_checkpoint", &c1,
                                 why, whylen) != 0 ||
        cv_proof_open_checkpoint(b->to_checkpoint, v, "to_checkpoint", &c2, why,
                                 whylen) != 0)
        return -1;
    if (strcmp(c1.origin, c2.origin) != 0)
        return cv_proof_fail(why, whylen,
                             "the checkpoints are of different logs");
    if (c1.size != b->from || c2.size != b->to)
        return cv_proof_fail(why, whylen,
                             "from/to do not match the checkpoints' sizes");
    if (!cv_merkle_verify_consistency(b->from, b->to, c1.root, c2.root,
                                      b->proof, b->proof_len))
        return cv_proof_fail(why, whylen,
                             "proof does not show the tree of %lld extends "
                             "the tree of %lld",
                             (long long)b->to, (long long)b->from);
    return 0;
}
