/*
 * cavra-verify -- checks the evidence Merkle log (docs/evidence.md), from the
 * database or offline from an export file, optionally against a saved
 * signed checkpoint; and checks one record's inclusion proof offline.
 *
 *   cavra-verify [--database-url URL]             verify the database
 *   cavra-verify --export FILE [--database-url URL]
 *                                                 write an export (JSONL:
 *                                                 event + leaf hash)
 *   cavra-verify --file FILE                      verify an export offline
 *   ... --checkpoint FILE --public-key FILE       and that the log extends
 *                                                 that signed checkpoint
 *   cavra-verify --inclusion PROOF.json --public-key FILE
 *                                                 one record's inclusion
 *                                                 proof, offline
 *
 * A checkpoint is the note GET /runtime/evidence/checkpoint served (or the
 * witness folder's `checkpoint` file); the public key is the text of GET
 * /runtime/evidence/public-key. A database dump is verified by restoring
 * it into a scratch database and pointing --database-url at it. Prints a
 * JSON verdict; exits 0 when valid, 1 when the log (or the proof, or the
 * checkpoint's signature) does not verify, 2 on usage or access errors.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_chain.h"
#include "cv_db.h"
#include "cv_id.h"
#include "cv_note.h"
#include "cv_proof.h"

static int
cv_verify_print(const cv_chain_report *report)
{
    json_t *doc = json_pack("{s:b, s:I, s:s, s:s}", "valid", report->valid,
                            "events", (json_int_t)report->events, "head",
                            report->head, "algorithm", CV_CHAIN_ALGORITHM);

    if (report->pending > 0)
        json_object_set_new(doc, "pending", json_integer(report->pending));
    if (report->tree_size > 0)
        json_object_set_new(doc, "tree_size", json_integer(report->tree_size));
    if (report->checkpoint_size >= 0)
        json_object_set_new(doc, "checkpoint_size",
                            json_integer(report->checkpoint_size));
    if (!report->valid) {
        json_object_set_new(doc, "first_invalid_seq",
                            json_integer(report->first_invalid_seq));
        if (report->last_invalid_seq > report->first_invalid_seq)
            json_object_set_new(doc, "last_invalid_seq",
                                json_integer(report->last_invalid_seq));
        json_object_set_new(doc, "reason", json_string(report->reason));
    }
    json_dumpf(doc, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
    json_decref(doc);
    return report->valid ? 0 : 1;
}

/* A verdict that is not a log walk (a bad checkpoint, a proof). */
static int
cv_verify_verdict(bool valid, const char *reason, json_t *extra)
{
    json_t *doc = json_pack("{s:b}", "valid", valid);

    if (extra != NULL)
        json_object_update(doc, extra);
    json_decref(extra);
    if (reason != NULL)
        json_object_set_new(doc, "reason", json_string(reason));
    json_dumpf(doc, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
    json_decref(doc);
    return valid ? 0 : 1;
}

static int
cv_verify_usage(void)
{
    fprintf(stderr,
            "usage: cavra-verify [--database-url URL] [--export FILE | "
            "--file FILE]\n"
            "                    [--checkpoint FILE --public-key FILE]\n"
            "       cavra-verify --inclusion PROOF.json --public-key FILE\n");
    return 2;
}

/* Reads a small text file (malloc'd) or NULL. */
static char *
cv_verify_slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf;
    long n;

    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || n > 1 << 20 ||
        fseek(f, 0, SEEK_SET) != 0 || (buf = malloc((size_t)n + 1)) == NULL) {
        fclose(f);
        return NULL;
    }
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        fclose(f);
        return NULL;
    }
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* The verifier of the public key file; NULL (printed) when unusable. */
static cv_note_verifier *
cv_verify_key(const char *path)
{
    char *text = cv_verify_slurp(path), why[200];
    cv_note_verifier *v;

    if (text == NULL) {
        fprintf(stderr, "cavra-verify: cannot read %s\n", path);
        return NULL;
    }
    text[strcspn(text, "\r\n")] = '\0';
    v = cv_note_verifier_parse(text, why, sizeof(why));
    free(text);
    if (v == NULL)
        fprintf(stderr, "cavra-verify: %s is not a verifier key: %s\n", path,
                why);
    return v;
}

/* Verifies a signed checkpoint note and parses it; 0, 1 (does not
 * verify: printed) or 2. */
static int
cv_verify_note(const char *note, const cv_note_verifier *v, cv_checkpoint *cp)
{
    char *body = NULL, why[200], reason[300];

    if (cv_note_verify(note, strlen(note), v, &body, why, sizeof(why)) != 0) {
        snprintf(reason, sizeof(reason),
                 "the checkpoint's signature does not verify with this public "
                 "key: %s",
                 why);
        return cv_verify_verdict(false, reason, NULL);
    }
    if (cv_checkpoint_parse(body, strlen(body), cp, why, sizeof(why)) != 0) {
        free(body);
        snprintf(reason, sizeof(reason), "not a checkpoint: %s", why);
        return cv_verify_verdict(false, reason, NULL);
    }
    free(body);
    return 0;
}

/* ---- --inclusion: one record's inclusion proof, offline (docs/evidence.md)
 * ---- */

/* The verifier key text of a file (its first line), malloc'd or NULL. */
static char *
cv_verify_read_key(const char *path)
{
    char buf[1024];
    FILE *f = fopen(path, "r");
    size_t n;

    if (f == NULL)
        return NULL;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    return strdup(buf);
}

/* Prints the verdict of an inclusion proof; returns the exit status. */
static int
cv_verify_inclusion_print(const cv_inclusion_bundle *b, const cv_checkpoint *cp,
                          const char *reason)
{
    json_t *doc = json_pack("{s:b}", "valid", reason == NULL);
    char root[2 * CV_MERKLE_HASH_LEN + 1];

    if (b != NULL && b->record_id[0] != '\0') {
        json_object_set_new(doc, "record_id", json_string(b->record_id));
        json_object_set_new(doc, "leaf_index", json_integer(b->leaf_index));
        json_object_set_new(doc, "tree_size", json_integer(b->tree_size));
        json_object_set_new(doc, "event_checked",
                            json_boolean(b->event != NULL));
    }
    if (reason != NULL) {
        json_object_set_new(doc, "reason", json_string(reason));
    } else {
        cv_hex_encode(cp->root, CV_MERKLE_HASH_LEN, root);
        json_object_set_new(doc, "origin", json_string(cp->origin));
        json_object_set_new(doc, "root", json_string(root));
        if (cp->time[0] != '\0')
            json_object_set_new(doc, "checkpoint_time", json_string(cp->time));
    }
    json_dumpf(doc, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
    json_decref(doc);
    return reason == NULL ? 0 : 1;
}

/*
 * cavra-verify --inclusion PROOF.json --public-key FILE: checks the
 * bundle's signed checkpoint against the verifier key in FILE, then the
 * event and the audit path (cv_proof_verify_inclusion). Exit 0 valid, 1
 * invalid (a malformed proof included), 2 usage or unreadable files.
 */
static int
cv_verify_inclusion_main(int argc, char **argv)
{
    const char *proof_path = NULL, *key_path = NULL;
    char why[256] = "", *vkey;
    cv_note_verifier *v;
    cv_inclusion_bundle b;
    cv_checkpoint cp;
    json_error_t jerr;
    json_t *doc;
    FILE *in;
    int rv;

    bool bad = false;

    for (int i = 1; i < argc && !bad; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--inclusion") == 0)
            proof_path = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--public-key") == 0)
            key_path = argv[++i];
        else
            bad = true;
    }
    if (bad || proof_path == NULL || key_path == NULL) {
        fprintf(stderr, "usage: cavra-verify --inclusion PROOF.json "
                        "--public-key FILE\n");
        return 2;
    }
    if ((vkey = cv_verify_read_key(key_path)) == NULL) {
        fprintf(stderr, "cavra-verify: cannot read %s\n", key_path);
        return 2;
    }
    v = cv_note_verifier_parse(vkey, why, sizeof(why));
    free(vkey);
    if (v == NULL) {
        fprintf(stderr, "cavra-verify: %s: %s\n", key_path, why);
        return 2;
    }
    in = strcmp(proof_path, "-") == 0 ? stdin : fopen(proof_path, "r");
    if (in == NULL) {
        fprintf(stderr, "cavra-verify: cannot read %s\n", proof_path);
        cv_note_verifier_free(v);
        return 2;
    }
    doc = json_loadf(in, JSON_REJECT_DUPLICATES, &jerr);
    if (in != stdin)
        fclose(in);
    if (doc == NULL) {
        snprintf(why, sizeof(why), "proof is not JSON: %s (line %d)", jerr.text,
                 jerr.line);
        cv_note_verifier_free(v);
        return cv_verify_inclusion_print(NULL, NULL, why);
    }
    rv = cv_proof_inclusion_parse(doc, &b, why, sizeof(why));
    json_decref(doc);
    if (rv != 0) {
        cv_note_verifier_free(v);
        return cv_verify_inclusion_print(NULL, NULL, why);
    }
    rv = cv_proof_verify_inclusion(&b, v, &cp, why, sizeof(why));
    rv = cv_verify_inclusion_print(&b, &cp, rv == 0 ? NULL : why);
    cv_proof_inclusion_fini(&b);
    cv_note_verifier_free(v);
    return rv;
}

int
main(int argc, char **argv)
{
    const char *url = NULL, *export_path = NULL, *file_path = NULL;
    const char *cp_path = NULL, *key_path = NULL;
    cv_chain_anchor anchor;
    size_t n_anchors = 0;
    cv_note_verifier *v = NULL;
    cv_chain_report report;
    cv_db db;
    cv_error err;
    int rv;

    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--inclusion") == 0)
            return cv_verify_inclusion_main(argc, argv);
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--database-url") == 0)
            url = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--export") == 0)
            export_path = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--file") == 0)
            file_path = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--checkpoint") == 0)
            cp_path = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--public-key") == 0)
            key_path = argv[++i];
        else
            return cv_verify_usage();
    }
    if ((cp_path != NULL) != (key_path != NULL))
        return cv_verify_usage();
    if (cp_path != NULL && export_path != NULL)
        return cv_verify_usage();
    if (key_path != NULL && (v = cv_verify_key(key_path)) == NULL)
        return 2;
    if (cp_path != NULL) {
        char *note = cv_verify_slurp(cp_path);
        cv_checkpoint cp;

        if (note == NULL) {
            fprintf(stderr, "cavra-verify: cannot read %s\n", cp_path);
            cv_note_verifier_free(v);
            return 2;
        }
        rv = cv_verify_note(note, v, &cp);
        free(note);
        cv_note_verifier_free(v);
        if (rv != 0)
            return rv;
        anchor.size = cp.size;
        memcpy(anchor.root, cp.root, CV_MERKLE_HASH_LEN);
        n_anchors = 1;
    }
    if (file_path != NULL) {
        FILE *in;

        if (export_path != NULL || url != NULL)
            return cv_verify_usage();
        in = strcmp(file_path, "-") == 0 ? stdin : fopen(file_path, "r");
        if (in == NULL) {
            fprintf(stderr, "cavra-verify: cannot read %s\n", file_path);
            return 2;
        }
        rv = cv_chain_verify_file(in, &anchor, n_anchors, &report);
        if (in != stdin)
            fclose(in);
        if (rv != 0) {
            fprintf(stderr, "cavra-verify: error reading %s\n", file_path);
            return 2;
        }
        return cv_verify_print(&report);
    }
    cv_error_clear(&err);
    if (cv_db_init(&db, url, NULL, 0, &err) != 0 ||
        cv_db_ensure(&db, &err) != 0) {
        fprintf(stderr, "cavra-verify: %s\n", err.msg);
        cv_db_fini(&db);
        return 2;
    }
    if (export_path != NULL) {
        FILE *out = fopen(export_path, "w");
        int64_t n = 0;

        if (out == NULL) {
            fprintf(stderr, "cavra-verify: cannot write %s\n", export_path);
            cv_db_fini(&db);
            return 2;
        }
        if ((rv = cv_db_tx_begin(&db, CV_TX_READ_SNAPSHOT, &err)) == 0)
            rv = cv_chain_export(&db, out, &n, &err);
        cv_db_tx_rollback(&db); /* read-only */
        if (fclose(out) != 0 && rv == 0)
            rv = cv_error_set(&err, CV_INTERNAL, "cannot write export");
        cv_db_fini(&db);
        if (rv != 0) {
            fprintf(stderr, "cavra-verify: %s\n", err.msg);
            return 2;
        }
        fprintf(stderr, "cavra-verify: exported %" PRId64 " events to %s\n", n,
                export_path);
        return 0;
    }
    if ((rv = cv_db_tx_begin(&db, CV_TX_READ_SNAPSHOT, &err)) == 0)
        rv = cv_chain_verify_db(&db, &anchor, n_anchors, &report, &err);
    cv_db_tx_rollback(&db); /* read-only */
    cv_db_fini(&db);
    if (rv != 0) {
        fprintf(stderr, "cavra-verify: %s\n", err.msg);
        return 2;
    }
    return cv_verify_print(&report);
}
