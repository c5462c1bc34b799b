/*
 * cv_tlog.c -- tile storage, proofs, entry bundles and the checkpoint
 * signer of the evidence Merkle log (see cv_tlog.h). Its SQL lives in
 * cv_chain_statements (prepared on every connection).
 */
#include "cv_tlog.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cv_chain.h"
#include "cv_id.h"
#include "cv_log.h"
#include "cv_witness.h"

/* Tile levels a node can live in (8 * 8 = 64 tree levels). */
#define CV_TLOG_TILE_LEVELS 8

static int
cv_tlog_fail(cv_error *err, int code, const char *msg)
{
    if (err != NULL && err->code != CV_OK)
        return err->code;
    return cv_error_set(err, code, "%s", msg);
}

/* One tile as read: its hashes (malloc'd) and width. */
typedef struct cv_tlog_tile_row {
    int level;
    int64_t idx;
    int width;
    uint8_t *hashes;
} cv_tlog_tile_row;

int
cv_tlog_read(void *arg, const cv_merkle_node *nodes, size_t count,
             cv_merkle_hash *hashes)
{
    cv_tlog_reader *rd = arg;
    cv_tile_ref *refs = NULL;
    cv_tlog_tile_row *rows = NULL;
    char *levels = NULL, *idxs = NULL;
    size_t nrows = 0, cap;
    PGresult *res = NULL;
    int rv = -1;

    if (count == 0)
        return 0;
    refs = calloc(count, sizeof(*refs));
    cap = count * 24 + 4;
    levels = malloc(cap);
    idxs = malloc(cap);
    if (refs == NULL || levels == NULL || idxs == NULL) {
        cv_error_set(rd->err, CV_INTERNAL, "out of memory");
        goto out;
    }
    /* The tiles the nodes live in, as two array literals. */
    {
        size_t lu = 0, iu = 0;

        levels[lu++] = '{';
        idxs[iu++] = '{';
        for (size_t i = 0; i < count; i++) {
            refs[i] = cv_tile_locate(nodes[i]);
            lu += (size_t)snprintf(levels + lu, cap - lu, "%s%d",
                                   i > 0 ? "," : "", refs[i].tile_level);
            iu += (size_t)snprintf(idxs + iu, cap - iu, "%s%" PRId64,
                                   i > 0 ? "," : "", refs[i].tile_index);
        }
        snprintf(levels + lu, cap - lu, "}");
        snprintf(idxs + iu, cap - iu, "}");
    }
    {
        const char *p[2] = {levels, idxs};

        if ((res = cv_db_exec(rd->db, "cv_tlog_tiles", 2, p, rd->err)) == NULL)
            goto out;
    }
    nrows = (size_t)PQntuples(res);
    if ((rows = calloc(nrows + 1, sizeof(*rows))) == NULL) {
        cv_error_set(rd->err, CV_INTERNAL, "out of memory");
        goto out;
    }
    for (size_t r = 0; r < nrows; r++) {
        const char *hex = PQgetvalue(res, (int)r, 2);
        size_t n = strlen(hex) / 2;

        rows[r].level = atoi(PQgetvalue(res, (int)r, 0));
        rows[r].idx = strtoll(PQgetvalue(res, (int)r, 1), NULL, 10);
        rows[r].width = (int)(n / CV_MERKLE_HASH_LEN);
        if ((rows[r].hashes = malloc(n > 0 ? n : 1)) == NULL ||
            cv_hex_decode(hex, n, rows[r].hashes) != 0) {
            cv_error_set(rd->err, CV_DATA_LOSS, "evidence tile unreadable");
            goto out;
        }
    }
    for (size_t i = 0; i < count; i++) {
        const cv_tlog_tile_row *t = NULL;

        for (size_t r = 0; r < nrows && t == NULL; r++)
            if (rows[r].level == refs[i].tile_level &&
                rows[r].idx == refs[i].tile_index)
                t = &rows[r];
        if (t == NULL || refs[i].first < 0 || refs[i].count < 1 ||
            refs[i].first + refs[i].count > t->width ||
            cv_merkle_subtree_hash(
                (const cv_merkle_hash *)(t->hashes + (size_t)refs[i].first *
                                                         CV_MERKLE_HASH_LEN),
                (size_t)refs[i].count, hashes[i]) != 0) {
            cv_error_set(rd->err, CV_NOT_FOUND,
                         "the evidence tree has no node at level %d, index "
                         "%" PRId64,
                         nodes[i].level, nodes[i].index);
            goto out;
        }
    }
    rv = 0;
out:
    for (size_t r = 0; rows != NULL && r < nrows; r++)
        free(rows[r].hashes);
    free(rows);
    PQclear(res);
    free(refs);
    free(levels);
    free(idxs);
    return rv;
}

int
cv_tlog_size(cv_db *db, int64_t *size, cv_error *err)
{
    PGresult *res = cv_db_exec(db, "cv_tlog_size", 0, NULL, err);

    if (res == NULL)
        return err->code;
    *size = PQntuples(res) == 1 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    PQclear(res);
    return 0;
}

int
cv_tlog_root(cv_db *db, int64_t size, cv_merkle_hash root, cv_error *err)
{
    cv_tlog_reader rd = {db, err};

    if (cv_merkle_root(size, cv_tlog_read, &rd, root) != 0)
        return cv_tlog_fail(err, CV_INVALID_ARGUMENT,
                            "the evidence tree has no such size");
    return 0;
}

int
cv_tlog_prove_inclusion(cv_db *db, int64_t index, int64_t size,
                        cv_merkle_hash *proof, size_t *len, cv_error *err)
{
    cv_tlog_reader rd = {db, err};

    if (cv_merkle_prove_inclusion(index, size, cv_tlog_read, &rd, proof,
                                  CV_MERKLE_MAX_PROOF, len) != 0)
        return cv_tlog_fail(err, CV_INVALID_ARGUMENT,
                            "leaf index must be below the tree size");
    return 0;
}

int
cv_tlog_prove_consistency(cv_db *db, int64_t old_size, int64_t new_size,
                          cv_merkle_hash *proof, size_t *len, cv_error *err)
{
    cv_tlog_reader rd = {db, err};

    if (old_size <= 0 || old_size > new_size)
        return cv_error_set(err, CV_INVALID_ARGUMENT,
                            "from must be at least 1 and at most to");
    if (cv_merkle_prove_consistency(old_size, new_size, cv_tlog_read, &rd,
                                    proof, CV_MERKLE_MAX_PROOF, len) != 0)
        return cv_tlog_fail(err, CV_INVALID_ARGUMENT,
                            "the evidence tree has no such size");
    return 0;
}

/* An entry bundle: width canonical events, each with a big-endian uint16
 * length (C2SP tlog-tiles). */
static int
cv_tlog_entries(cv_db *db, int64_t index, int width, uint8_t **out, size_t *len,
                cv_error *err)
{
    char from[24], to[24];
    const char *p[2] = {from, to};
    PGresult *res;
    uint8_t *buf = NULL;
    size_t used = 0, cap = 0;
    int n;

    snprintf(from, sizeof(from), "%" PRId64, index * CV_TILE_WIDTH + 1);
    snprintf(to, sizeof(to), "%" PRId64, index * CV_TILE_WIDTH + width);
    if ((res = cv_db_exec(db, "cv_tlog_entries", 2, p, err)) == NULL)
        return err->code;
    if ((n = PQntuples(res)) != width) {
        PQclear(res);
        return cv_error_set(err, CV_NOT_FOUND,
                            "the evidence log has no such entry bundle yet");
    }
    for (int i = 0; i < n; i++) {
        cv_chain_event ev = cv_chain_row_event(
            res, i, strtoll(PQgetvalue(res, i, 0), NULL, 10));
        char *canonical = cv_chain_canonical(&ev);
        size_t cl = canonical != NULL ? strlen(canonical) : 0;

        if (canonical == NULL || cl > CV_TLOG_ENTRY_MAX ||
            ev.seq != index * CV_TILE_WIDTH + i + 1) {
            free(canonical);
            free(buf);
            PQclear(res);
            return cv_error_set(err, CV_DATA_LOSS,
                                "evidence event %" PRId64
                                " cannot be served as an entry",
                                ev.seq);
        }
        if (used + cl + 2 > cap) {
            uint8_t *grown = realloc(buf, cap = (used + cl + 2) * 2);

            if (grown == NULL) {
                free(canonical);
                free(buf);
                PQclear(res);
                return cv_error_set(err, CV_INTERNAL, "out of memory");
            }
            buf = grown;
        }
        buf[used++] = (uint8_t)(cl >> 8);
        buf[used++] = (uint8_t)(cl & 0xff);
        memcpy(buf + used, canonical, cl);
        used += cl;
        free(canonical);
    }
    PQclear(res);
    *out = buf;
    *len = used;
    return 0;
}

int
cv_tlog_tile(cv_db *db, int level, int64_t index, int width, uint8_t **out,
             size_t *len, cv_error *err)
{
    char l[16], i[24];
    const char *p[2] = {l, i};
    PGresult *res;
    const char *hex;
    size_t have;

    *out = NULL;
    *len = 0;
    if (width < 1 || width > CV_TILE_WIDTH || index < 0 || level < -1 ||
        level >= CV_TLOG_TILE_LEVELS)
        return cv_error_set(err, CV_INVALID_ARGUMENT, "path is not a tile");
    if (level < 0) {
        int64_t size = 0;
        int rv = cv_tlog_size(db, &size, err);

        if (rv != 0)
            return rv;
        /* Only entries of leaves the tree holds. */
        if (index > (INT64_MAX - CV_TILE_WIDTH) / CV_TILE_WIDTH ||
            index * CV_TILE_WIDTH + width > size)
            return cv_error_set(err, CV_NOT_FOUND,
                                "the evidence log has no such entry bundle "
                                "yet");
        return cv_tlog_entries(db, index, width, out, len, err);
    }
    snprintf(l, sizeof(l), "%d", level);
    snprintf(i, sizeof(i), "%" PRId64, index);
    if ((res = cv_db_exec(db, "cv_tlog_tile_one", 2, p, err)) == NULL)
        return err->code;
    hex = PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "";
    have = strlen(hex) / 2 / CV_MERKLE_HASH_LEN;
    /* A partial request of a wider tile gets the first width hashes:
     * they never change. */
    if (have < (size_t)width) {
        PQclear(res);
        return cv_error_set(err, CV_NOT_FOUND,
                            "the evidence tree has no such tile yet");
    }
    *len = (size_t)width * CV_MERKLE_HASH_LEN;
    if ((*out = malloc(*len)) == NULL || cv_hex_decode(hex, *len, *out) != 0) {
        free(*out);
        *out = NULL;
        PQclear(res);
        return cv_error_set(err, CV_DATA_LOSS, "evidence tile unreadable");
    }
    PQclear(res);
    return 0;
}

int
cv_tlog_checkpoint(cv_db *db, int64_t size, char **note, int64_t *tree_size,
                   cv_error *err)
{
    char s[24];
    const char *p[1] = {s};
    PGresult *res;

    *note = NULL;
    snprintf(s, sizeof(s), "%" PRId64, size);
    res = size < 0 ? cv_db_exec(db, "cv_tlog_cp_latest", 0, NULL, err)
                   : cv_db_exec(db, "cv_tlog_cp_size", 1, p, err);
    if (res == NULL)
        return err->code;
    if (PQntuples(res) != 1) {
        PQclear(res);
        if (size < 0)
            return cv_error_set(err, CV_NOT_FOUND,
                                "no evidence checkpoint has been signed yet "
                                "(the signer needs CAVRA_EVIDENCE_KEY_FILE)");
        return cv_error_set(err, CV_NOT_FOUND,
                            "no signed checkpoint of tree size %" PRId64
                            "; GET /runtime/evidence/checkpoint names the "
                            "latest",
                            size);
    }
    *note = strdup(PQgetvalue(res, 0, 0));
    if (tree_size != NULL)
        *tree_size = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    PQclear(res);
    return *note != NULL ? 0 : cv_error_set(err, CV_INTERNAL, "out of memory");
}

/* ---- keys ---- */

void
cv_tlog_keys_free(cv_tlog_keys *k)
{
    cv_note_signer_free(k->signer);
    cv_note_verifier_free(k->verifier);
    memset(k, 0, sizeof(*k));
}

int
cv_tlog_keys_load(cv_tlog_keys *k, const char *key_file, const char *origin,
                  const char *witness_dir, char *why, size_t whylen)
{
    memset(k, 0, sizeof(*k));
    if (witness_dir == NULL || witness_dir[0] == '\0') {
        snprintf(why, whylen,
                 "%s is set but %s is not: a checkpoint must be witnessed "
                 "outside the database",
                 CV_TLOG_KEY_FILE_ENV, CV_TLOG_WITNESS_DIR_ENV);
        return -1;
    }
    snprintf(k->origin, sizeof(k->origin), "%s",
             origin != NULL && origin[0] != '\0' ? origin
                                                 : CV_TLOG_DEFAULT_ORIGIN);
    snprintf(k->witness, sizeof(k->witness), "%s", witness_dir);
    if ((k->signer = cv_note_signer_load(key_file, k->origin, why, whylen)) ==
            NULL ||
        cv_note_signer_vkey(k->signer, k->vkey, sizeof(k->vkey)) < 0 ||
        (k->verifier = cv_note_verifier_parse(k->vkey, why, whylen)) == NULL) {
        cv_tlog_keys_free(k);
        return -1;
    }
    return 0;
}

static cv_tlog_keys cv_tlog_keys_proc;
static const cv_tlog_keys *cv_tlog_keys_ptr;
static char cv_tlog_vkey_proc[512];
static pthread_once_t cv_tlog_keys_once = PTHREAD_ONCE_INIT;

static void
cv_tlog_keys_load_once(void)
{
    const char *file = getenv(CV_TLOG_KEY_FILE_ENV);
    const char *pub = getenv("CAVRA_EVIDENCE_PUBLIC_KEY_FILE");
    char why[256];

    if (file != NULL && file[0] != '\0') {
        if (cv_tlog_keys_load(
                &cv_tlog_keys_proc, file, getenv(CV_TLOG_ORIGIN_ENV),
                getenv(CV_TLOG_WITNESS_DIR_ENV), why, sizeof(why)) != 0) {
            CV_LOG(CV_LOG_ERROR, "EVIDENCE-KEY",
                   "evidence checkpoints will NOT be signed: %s", why);
        } else {
            cv_tlog_keys_ptr = &cv_tlog_keys_proc;
            snprintf(cv_tlog_vkey_proc, sizeof(cv_tlog_vkey_proc), "%s",
                     cv_tlog_keys_proc.vkey);
            CV_LOG(CV_LOG_INFO, "EVIDENCE-KEY",
                   "signing evidence checkpoints as %s; witness in %s",
                   cv_tlog_keys_proc.vkey, cv_tlog_keys_proc.witness);
            return;
        }
    }
    if (pub != NULL && pub[0] != '\0') {
        FILE *f = fopen(pub, "r");

        if (f == NULL ||
            fgets(cv_tlog_vkey_proc, sizeof(cv_tlog_vkey_proc), f) == NULL) {
            cv_tlog_vkey_proc[0] = '\0';
            CV_LOG(CV_LOG_ERROR, "EVIDENCE-KEY",
                   "cannot read the evidence public key %s", pub);
        }
        if (f != NULL)
            fclose(f);
        cv_tlog_vkey_proc[strcspn(cv_tlog_vkey_proc, "\r\n")] = '\0';
    }
}

const cv_tlog_keys *
cv_tlog_process_keys(void)
{
    pthread_once(&cv_tlog_keys_once, cv_tlog_keys_load_once);
    return cv_tlog_keys_ptr;
}

const char *
cv_tlog_process_vkey(void)
{
    pthread_once(&cv_tlog_keys_once, cv_tlog_keys_load_once);
    return cv_tlog_vkey_proc[0] != '\0' ? cv_tlog_vkey_proc : NULL;
}

/* ---- anchors ---- */

static int
cv_tlog_anchor_cmp(const void *a, const void *b)
{
    const cv_chain_anchor *x = a, *y = b;

    return x->size < y->size ? -1 : x->size > y->size ? 1 : 0;
}

/* Adds one checkpoint; a second one of the same size is kept too when
 * its root differs (then one of them cannot match, which verify says). */
static int
cv_tlog_anchor_add(cv_chain_anchor **list, size_t *n, size_t *cap,
                   const cv_checkpoint *cp)
{
    for (size_t i = 0; i < *n; i++)
        if ((*list)[i].size == cp->size &&
            memcmp((*list)[i].root, cp->root, CV_MERKLE_HASH_LEN) == 0)
            return 0;
    if (*n == *cap) {
        cv_chain_anchor *grown =
            realloc(*list, (*cap = *cap * 2 + 16) * sizeof(**list));

        if (grown == NULL)
            return -1;
        *list = grown;
    }
    (*list)[*n].size = cp->size;
    memcpy((*list)[*n].root, cp->root, CV_MERKLE_HASH_LEN);
    (*n)++;
    return 0;
}

int
cv_tlog_anchors(cv_db *db, cv_chain_anchor **out, size_t *n,
                const char **source, cv_error *err)
{
    const cv_tlog_keys *k = cv_tlog_process_keys();
    const char *vkey = cv_tlog_process_vkey();
    cv_chain_anchor *list = NULL;
    size_t have = 0, cap = 0;
    char why[256];

    *out = NULL;
    *n = 0;
    *source = "none";
    if (k != NULL) {
        cv_witnessed *w;
        size_t nw;

        if (cv_witness_list(k->witness, k->verifier, &w, &nw, why,
                            sizeof(why)) != 0)
            return cv_error_set(err, CV_DATA_LOSS, "witness unreadable: %s",
                                why);
        for (size_t i = 0; i < nw; i++)
            if (cv_tlog_anchor_add(&list, &have, &cap, &w[i].cp) != 0) {
                cv_witness_list_free(w, nw);
                free(list);
                return cv_error_set(err, CV_INTERNAL, "out of memory");
            }
        cv_witness_list_free(w, nw);
        *source = "witness";
    } else if (vkey != NULL) {
        cv_note_verifier *v = cv_note_verifier_parse(vkey, why, sizeof(why));
        PGresult *res;

        if (v == NULL)
            return cv_error_set(err, CV_INTERNAL,
                                "the evidence public key is malformed: %s",
                                why);
        if ((res = cv_db_exec(db, "cv_tlog_cp_all", 0, NULL, err)) == NULL) {
            cv_note_verifier_free(v);
            return err->code;
        }
        for (int i = 0; i < PQntuples(res); i++) {
            const char *note = PQgetvalue(res, i, 0);
            char *body = NULL;
            cv_checkpoint cp;

            if (cv_note_verify(note, strlen(note), v, &body, why,
                               sizeof(why)) != 0)
                continue; /* not ours: a forged cache row proves nothing */
            if (cv_checkpoint_parse(body, strlen(body), &cp, why,
                                    sizeof(why)) == 0 &&
                cv_tlog_anchor_add(&list, &have, &cap, &cp) != 0) {
                free(body);
                PQclear(res);
                cv_note_verifier_free(v);
                free(list);
                return cv_error_set(err, CV_INTERNAL, "out of memory");
            }
            free(body);
        }
        PQclear(res);
        cv_note_verifier_free(v);
        *source = "database";
    }
    if (have > 1)
        qsort(list, have, sizeof(*list), cv_tlog_anchor_cmp);
    *out = list;
    *n = have;
    return 0;
}

/* ---- signing ---- */

/* The work of one signing round inside its transaction. */
static int
cv_tlog_sign_tx(cv_db *db, const cv_tlog_keys *k, bool force,
                int64_t *signed_size, cv_error *err)
{
    cv_merkle_hash root, proof[CV_MERKLE_MAX_PROOF];
    size_t proof_len = 0;
    cv_witnessed last;
    cv_checkpoint cp;
    char why[256], rootl[65], sizetext[24], *body = NULL, *note = NULL;
    int64_t size = 0;
    int have, rv, ar;
    PGresult *res;

    if ((res = cv_db_exec(db, "cv_chain_try_lock", 0, NULL, err)) == NULL)
        return err->code;
    if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
        PQclear(res);
        return 0; /* another signer or sequencer is at work */
    }
    PQclear(res);
    if ((rv = cv_tlog_size(db, &size, err)) != 0 ||
        (rv = cv_tlog_root(db, size, root, err)) != 0)
        return rv;
    have = cv_witness_latest(k->witness, k->verifier, &last, why, sizeof(why));
    if (have < 0) {
        CV_LOG(CV_LOG_ERROR, "WITNESS-REFUSED",
               "cannot read the witness, not signing: %s", why);
        return cv_error_set(err, CV_DATA_LOSS, "witness unreadable: %s", why);
    }
    if (have == 1) {
        bool same = last.cp.size == size &&
                    memcmp(last.cp.root, root, CV_MERKLE_HASH_LEN) == 0;
        int64_t wsize = last.cp.size;

        free(last.note);
        if (same && !force)
            return 0;
        if (wsize > size) {
            CV_LOG(CV_LOG_ERROR, "WITNESS-REFUSED",
                   "the stored evidence tree (%" PRId64
                   " leaves) is shorter than the witnessed checkpoint "
                   "(%" PRId64 "): not signing",
                   size, wsize);
            return cv_error_set(err, CV_DATA_LOSS,
                                "log is shorter than witnessed checkpoint");
        }
        if (wsize > 0 && wsize < size &&
            (rv = cv_tlog_prove_consistency(db, wsize, size, proof, &proof_len,
                                            err)) != 0)
            return rv;
    }
    memset(&cp, 0, sizeof(cp));
    snprintf(cp.origin, sizeof(cp.origin), "%s", k->origin);
    cp.size = size;
    memcpy(cp.root, root, CV_MERKLE_HASH_LEN);
    {
        time_t now = time(NULL);
        struct tm tm;

        gmtime_r(&now, &tm);
        strftime(cp.time, sizeof(cp.time), "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    if ((body = cv_checkpoint_format(&cp)) == NULL ||
        (note = cv_note_sign(k->signer, body)) == NULL) {
        free(body);
        return cv_error_set(err, CV_INTERNAL, "cannot sign the checkpoint");
    }
    free(body);
    ar = cv_witness_append(k->witness, k->verifier, k->origin, note, proof,
                           proof_len, why, sizeof(why));
    if (ar != 0) {
        free(note);
        if (ar > 0) {
            CV_LOG(CV_LOG_ERROR, "WITNESS-REFUSED",
                   "the witness refused checkpoint of size %" PRId64 ": %s",
                   size, why);
            return cv_error_set(err, CV_DATA_LOSS,
                                "the witness refused the checkpoint: %s", why);
        }
        CV_LOG(CV_LOG_ERROR, "WITNESS-IO", "%s", why);
        return cv_error_set(err, CV_INTERNAL, "witness: %s", why);
    }
    snprintf(sizetext, sizeof(sizetext), "%" PRId64, size);
    cv_hex_encode(root, CV_MERKLE_HASH_LEN, rootl);
    {
        const char *p[3] = {sizetext, rootl, note};

        rv = cv_db_run(db, "cv_tlog_cp_put", 3, p, err);
    }
    free(note);
    if (rv == 0)
        *signed_size = size;
    return rv;
}

int
cv_tlog_sign(cv_db *db, const cv_tlog_keys *k, bool force, int64_t *signed_size,
             cv_error *err)
{
    int rv;

    *signed_size = -1;
    if ((rv = cv_db_tx_begin(db, CV_TX_WRITE, err)) != 0)
        return rv;
    rv = cv_tlog_sign_tx(db, k, force, signed_size, err);
    if (rv != 0) {
        cv_db_tx_rollback(db);
        *signed_size = -1;
        return rv;
    }
    /* The witness has it already: a failed cache insert is only a
     * checkpoint the API serves one round later. */
    if ((rv = cv_db_tx_commit(db, err)) != 0)
        *signed_size = -1;
    return rv;
}
