/*
 * cv_proof.h -- the JSON forms of the evidence log's proofs (docs/evidence.md):
 * what GET /runtime/evidence/proof/{inclusion,consistency} serve and what
 * `cavra-verify --inclusion` checks offline with nothing but the proof and
 * the log's verifier key.
 *
 * Inclusion proof bundle:
 *   {"record_id": "<id>", "leaf_index": <int>, "leaf_hash": "<64 hex>",
 *    "tree_size": <int>, "audit_path": ["<64 hex>", ...],
 *    "checkpoint": "<signed note text>",
 *    "event": {<canonical event>}}            ("event" optional)
 * Consistency proof:
 *   {"from": <int>, "to": <int>, "proof": ["<64 hex>", ...],
 *    "from_checkpoint": "<note>", "to_checkpoint": "<note>"} (both optional)
 *
 * Design notes:
 *  - Decoding checks shape only (types, hex, bounds) and never trusts a
 *    value; verifying checks meaning: the checkpoint's signature, its
 *    size against tree_size, the event against leaf_hash, the audit path
 *    against the signed root.
 *  - The event, when present, must be exactly a canonical evidence event:
 *    its compact key-sorted JSON must be what cv_chain_canonical gives
 *    for the same fields, and leaf_hash = SHA-256(0x00 || that text). So
 *    a bundle cannot show one event and prove another.
 *  - The leaf index is bound by the audit path, the tree size by the
 *    signed root; the event's seq is not compared with leaf_index here
 *    (the sequencer defines that mapping).
 */
#ifndef CV_PROOF_H
#define CV_PROOF_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "cv_id.h"
#include "cv_merkle.h"
#include "cv_note.h"

typedef struct cv_inclusion_bundle {
    char record_id[CV_ID_MAX];
    int64_t leaf_index;
    cv_merkle_hash leaf_hash;
    int64_t tree_size;
    size_t path_len;
    cv_merkle_hash path[CV_MERKLE_MAX_PROOF];
    char *checkpoint; /* signed note text, malloc'd; freed by _fini */
    json_t *event;    /* a reference held by the bundle, or NULL */
} cv_inclusion_bundle;

typedef struct cv_consistency_bundle {
    int64_t from;
    int64_t to;
    size_t proof_len;
    cv_merkle_hash proof[CV_MERKLE_MAX_PROOF];
    char *from_checkpoint; /* malloc'd or NULL; freed by _fini */
    char *to_checkpoint;   /* malloc'd or NULL; freed by _fini */
} cv_consistency_bundle;

/* The JSON object of a bundle (a new reference, caller json_decref's), NULL
 * when out of memory. The event is included when non-NULL. */
json_t *cv_proof_inclusion_json(const cv_inclusion_bundle *b);
json_t *cv_proof_consistency_json(const cv_consistency_bundle *b);

/*
 * Decodes a bundle from its JSON object into *b (which the caller then
 * releases with the matching _fini, on success only). Returns 0, or -1
 * with a reason naming the field in why (and *b left empty).
 */
int cv_proof_inclusion_parse(const json_t *doc, cv_inclusion_bundle *b,
                             char *why, size_t whylen);
int cv_proof_consistency_parse(const json_t *doc, cv_consistency_bundle *b,
                               char *why, size_t whylen);

/* Release what a bundle owns (NULL and zeroed bundles are fine). */
void cv_proof_inclusion_fini(cv_inclusion_bundle *b);
void cv_proof_consistency_fini(cv_consistency_bundle *b);

/*
 * Verifies an inclusion bundle against the log's verifier key: the
 * checkpoint's signature, its tree size == tree_size, the event (if any)
 * against leaf_hash and record_id, and the audit path against the signed
 * root. Returns 0 when valid (and fills *cp when non-NULL with the signed
 * checkpoint), -1 with the reason in why otherwise.
 */
int cv_proof_verify_inclusion(const cv_inclusion_bundle *b,
                              const cv_note_verifier *v, cv_checkpoint *cp,
                              char *why, size_t whylen);

/*
 * Verifies a consistency bundle that carries both checkpoints: both
 * signatures, the same origin, their sizes == from and to, and the proof
 * between their roots. Returns 0 when valid, -1 with a reason otherwise.
 */
int cv_proof_verify_consistency(const cv_consistency_bundle *b,
                                const cv_note_verifier *v, char *why,
                                size_t whylen);

/*
 * The leaf hash of an event object, after checking that it is a canonical
 * evidence event (see the design notes). Returns 0, or -1 with a reason.
 */
int cv_proof_event_leaf(const json_t *event, cv_merkle_hash leaf, char *why,
                        size_t whylen);

#endif
