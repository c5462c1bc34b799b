/*
 * cv_note.h -- C2SP signed notes and tlog-checkpoints with Ed25519
 * (docs/evidence.md): what the sequencer signs, the witness appends and
 * cavra-verify checks offline.
 *
 * Design notes:
 *  - A checkpoint body is "<origin>\n<size>\n<base64 root>\n" followed by
 *    optional extension lines; ours adds one, "time <RFC 3339 UTC>".
 *  - A signed note is the body, an empty line, and one or more lines
 *    "\u2014 <key name> <base64(key hash[4] || signature[64])>\n" (the
 *    em dash, U+2014). The key hash is the first 4 bytes of
 *    SHA-256(name || "\n" || 0x01 || public key), 0x01 = Ed25519.
 *  - A verifier key is the text "<name>+<8 hex key hash>+<base64(0x01 ||
 *    public key)>"; that is what GET /runtime/evidence/public-key serves.
 *  - The signing key is an Ed25519 private key in a PEM file (0600) that
 *    never enters the database.
 *  - Parsers take untrusted text: every malformed input is -1 with a
 *    reason, never a crash (there is a fuzz target).
 */
#ifndef CV_NOTE_H
#define CV_NOTE_H

#include <stddef.h>
#include <stdint.h>

#include "cv_merkle.h"

#define CV_NOTE_NAME_MAX         128
#define CV_CHECKPOINT_ORIGIN_MAX 256
#define CV_NOTE_MAX_LEN          8192

typedef struct cv_checkpoint {
    char origin[CV_CHECKPOINT_ORIGIN_MAX];
    int64_t size;
    cv_merkle_hash root;
    char time[40]; /* RFC 3339 UTC from the "time" extension, "" if none */
} cv_checkpoint;

/* The body text (malloc'd, caller frees), NULL on OOM or an origin with
 * a newline or that is empty. */
char *cv_checkpoint_format(const cv_checkpoint *cp);

/* Parses a checkpoint body. Returns 0, or -1 and a reason in why. */
int cv_checkpoint_parse(const char *body, size_t len, cv_checkpoint *cp,
                        char *why, size_t whylen);

typedef struct cv_note_signer cv_note_signer;
typedef struct cv_note_verifier cv_note_verifier;

/* Creates a new Ed25519 key in a PEM file at path (mode 0600, refuses to
 * overwrite). Returns 0 or -1 with a reason. */
int cv_note_key_generate(const char *path, char *why, size_t whylen);

/* Loads the PEM private key at path as signer `name` (the checkpoint
 * origin is a good name). Refuses a file readable by group or others.
 * Returns NULL with a reason. */
cv_note_signer *cv_note_signer_load(const char *path, const char *name,
                                    char *why, size_t whylen);
void cv_note_signer_free(cv_note_signer *s);

/* The verifier key text of this signer (see above), into out. Returns the
 * length or -1 when outlen is too small. */
int cv_note_signer_vkey(const cv_note_signer *s, char *out, size_t outlen);

/* Signs body (which must end with "\n"): returns the whole note,
 * malloc'd, or NULL (also for a body with a blank line or characters a
 * note cannot hold, or a note that would exceed CV_NOTE_MAX_LEN). */
char *cv_note_sign(const cv_note_signer *s, const char *body);

/* Parses a verifier key text. NULL with a reason when malformed. */
cv_note_verifier *cv_note_verifier_parse(const char *vkey, char *why,
                                         size_t whylen);
void cv_note_verifier_free(cv_note_verifier *v);

/*
 * Verifies that note carries a valid signature by v (other signers' lines
 * are ignored; a line by v's name and key hash with a bad signature is a
 * failure). On success returns 0 and, when body is non-NULL, *body points
 * to a malloc'd copy of the signed body. Returns -1 with a reason
 * otherwise.
 */
int cv_note_verify(const char *note, size_t len, const cv_note_verifier *v,
                   char **body, char *why, size_t whylen);

#endif
