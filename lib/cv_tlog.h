/*
 * cv_tlog.h -- the evidence Merkle log in PostgreSQL (docs/evidence.md): tile
 * storage, roots and proofs read from it, C2SP tlog-tiles and entry
 * bundles, and the signer that turns the stored tree into witnessed,
 * signed checkpoints.
 *
 * Design notes:
 *  - Storage (migration 0012): evidence_tiles(level, idx, hashes) in the
 *    C2SP tlog-tiles geometry; the tree size is the number of leaf hashes
 *    in the level 0 tiles. Every node a proof or a root needs is found by
 *    cv_tile_locate and read, for the whole proof, in one query: O(log n)
 *    rows. The math is cv_merkle.h's; this file only reads and writes.
 *  - Leaf i (0-based) is the event of the evidence_leaves row with seq
 *    i + 1; its entry is the canonical event (cv_chain_canonical) and its
 *    leaf hash SHA-256(0x00 || entry).
 *  - The signer (cv_tlog_sign) runs only in a process given the key file
 *    ($CAVRA_EVIDENCE_KEY_FILE, an Ed25519 PEM, 0600, never in the
 *    database), under the sequencer's advisory lock, so one signer works
 *    at a time: it reads the committed tree, proves it consistent with the
 *    last witnessed checkpoint, signs, appends to the witness
 *    ($CAVRA_WITNESS_DIR, cv_witness.h) and only then caches the note in
 *    evidence_checkpoints, from where every service serves it.
 *  - Every function here runs inside the caller's transaction.
 */
#ifndef CV_TLOG_H
#define CV_TLOG_H

#include <stdbool.h>
#include <stdint.h>

#include "cv_chain.h"
#include "cv_db.h"
#include "cv_merkle.h"
#include "cv_note.h"

#define CV_TLOG_KEY_FILE_ENV    "CAVRA_EVIDENCE_KEY_FILE"
#define CV_TLOG_ORIGIN_ENV      "CAVRA_EVIDENCE_ORIGIN"
#define CV_TLOG_WITNESS_DIR_ENV "CAVRA_WITNESS_DIR"
#define CV_TLOG_DEFAULT_ORIGIN  "cavra.local/evidence"

/* An entry bundle entry is a big-endian uint16 length and the bytes. */
#define CV_TLOG_ENTRY_MAX 65535

/* The reader cv_merkle_* functions are given: nodes from the tiles. */
typedef struct cv_tlog_reader {
    cv_db *db;
    cv_error *err;
} cv_tlog_reader;
int cv_tlog_read(void *arg, const cv_merkle_node *nodes, size_t count,
                 cv_merkle_hash *hashes);

/* The stored tree size (leaf hashes in the level 0 tiles). */
int cv_tlog_size(cv_db *db, int64_t *size, cv_error *err);

/* The root of the first size leaves, from the tiles. */
int cv_tlog_root(cv_db *db, int64_t size, cv_merkle_hash root, cv_error *err);

/* Proofs from the tiles (CV_MERKLE_MAX_PROOF hashes of room). An index
 * or a size the stored tree does not have is CV_NOT_FOUND /
 * CV_INVALID_ARGUMENT. */
int cv_tlog_prove_inclusion(cv_db *db, int64_t index, int64_t size,
                            cv_merkle_hash *proof, size_t *len, cv_error *err);
int cv_tlog_prove_consistency(cv_db *db, int64_t old_size, int64_t new_size,
                              cv_merkle_hash *proof, size_t *len,
                              cv_error *err);

/*
 * One tile in the C2SP layout: level >= 0 a hash tile (width hashes,
 * 32 bytes each), level -1 an entry bundle (width entries). A tile the
 * tree does not hold yet at that width is CV_NOT_FOUND. *out is malloc'd.
 */
int cv_tlog_tile(cv_db *db, int level, int64_t index, int width, uint8_t **out,
                 size_t *len, cv_error *err);

/*
 * The checkpoint cache: the latest note (size < 0) or the latest one of
 * that tree size. CV_NOT_FOUND when there is none. *note is malloc'd.
 */
int cv_tlog_checkpoint(cv_db *db, int64_t size, char **note, int64_t *tree_size,
                       cv_error *err);

/* The signing keys and witness of this process. */
typedef struct cv_tlog_keys {
    cv_note_signer *signer;
    cv_note_verifier *verifier;
    char vkey[512]; /* the verifier key text */
    char origin[CV_CHECKPOINT_ORIGIN_MAX];
    char witness[1024]; /* the witness folder */
} cv_tlog_keys;

/* Loads a key file for origin, with its witness folder (required).
 * Returns 0 or -1 with a reason. */
int cv_tlog_keys_load(cv_tlog_keys *k, const char *key_file, const char *origin,
                      const char *witness_dir, char *why, size_t whylen);
void cv_tlog_keys_free(cv_tlog_keys *k);

/*
 * This process's keys from the environment (CAVRA_EVIDENCE_KEY_FILE,
 * CAVRA_EVIDENCE_ORIGIN, CAVRA_WITNESS_DIR), loaded once; NULL when no key
 * file is configured, or when it cannot be loaded (logged once as an
 * ERROR: a signer that cannot sign must be noticed).
 */
const cv_tlog_keys *cv_tlog_process_keys(void);

/* The verifier key for a reader: this process's, else the one in
 * $CAVRA_EVIDENCE_PUBLIC_KEY_FILE; NULL when neither. */
const char *cv_tlog_process_vkey(void);

/*
 * The anchors verify checks the log against, sorted by size, duplicates
 * of one size removed (malloc'd, *n of them): this process's witness when
 * it has one ("witness"), else the cached checkpoints whose signature the
 * process's verifier key accepts ("database"; others are skipped), else
 * none ("none"). *source is a static string.
 */
int cv_tlog_anchors(cv_db *db, cv_chain_anchor **out, size_t *n,
                    const char **source, cv_error *err);

/*
 * One signing round (see the design notes), in its own transaction: signs
 * when the tree grew since the last witnessed checkpoint, or when force
 * (the once-a-minute heartbeat). Returns 0 and *signed_size (-1 when it
 * did not sign: nothing new, or another signer holds the lock), or an
 * error; a checkpoint the witness refuses is CV_DATA_LOSS, logged as an
 * ERROR line (WITNESS-REFUSED) with the reason.
 */
int cv_tlog_sign(cv_db *db, const cv_tlog_keys *k, bool force,
                 int64_t *signed_size, cv_error *err);

#endif
