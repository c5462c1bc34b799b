/*
 * cv_witness.h -- the witness log of evidence checkpoints, outside
 * PostgreSQL (docs/evidence.md).
 *
 * Design notes:
 *  - A folder ($CAVRA_WITNESS_DIR, a volume of its own in docker-compose)
 *    holds two files: `checkpoints.jsonl`, append-only, one line
 *    {"tree_size": N, "note": "<signed note>"} per witnessed checkpoint,
 *    and `checkpoint`, the latest note exactly as signed (written to a
 *    temporary file and renamed, so it is always whole): what an auditor
 *    saves and later gives to `cavra-verify --checkpoint`.
 *  - The witness trusts only its own files and the public key. Before it
 *    appends a checkpoint it checks: the signature (the verifier it was
 *    given), the origin, and that the new tree extends the last witnessed
 *    one (same size: same root; larger: the consistency proof the caller
 *    brings verifies against the witnessed root). Anything else is
 *    refused, and the caller logs it loudly.
 *  - Appends hold an exclusive flock on the log and fsync the log, the
 *    new `checkpoint` file and the folder before returning, so a
 *    checkpoint is durable before it is served.
 */
#ifndef CV_WITNESS_H
#define CV_WITNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cv_merkle.h"
#include "cv_note.h"

#define CV_WITNESS_LOG    "checkpoints.jsonl"
#define CV_WITNESS_LATEST "checkpoint"

/* One witnessed checkpoint. */
typedef struct cv_witnessed {
    cv_checkpoint cp;
    char *note; /* malloc'd signed note */
} cv_witnessed;

/*
 * The latest witnessed checkpoint of dir into *out (verified with v).
 * Returns 1 when there is one, 0 when the witness is empty (no file yet),
 * -1 with a reason when the file is unreadable, malformed or does not
 * verify. Free out->note.
 */
int cv_witness_latest(const char *dir, const cv_note_verifier *v,
                      cv_witnessed *out, char *why, size_t whylen);

/*
 * Every witnessed checkpoint, oldest first (malloc'd array in *out, count
 * in *n; free with cv_witness_list_free). Lines that do not verify make
 * it fail. Returns 0 (also for an empty witness) or -1 with a reason.
 */
int cv_witness_list(const char *dir, const cv_note_verifier *v,
                    cv_witnessed **out, size_t *n, char *why, size_t whylen);
void cv_witness_list_free(cv_witnessed *list, size_t n);

/*
 * Checks and appends one signed checkpoint note (see the design notes).
 * proof is the consistency proof from the last witnessed size to the new
 * one (ignored when the witness is empty or the sizes are equal). Returns
 * 0 when appended, 1 when refused (why says why), -1 on an I/O error
 * (why says which).
 */
int cv_witness_append(const char *dir, const cv_note_verifier *v,
                      const char *origin, const char *note,
                      const cv_merkle_hash *proof, size_t proof_len, char *why,
                      size_t whylen);

#endif
