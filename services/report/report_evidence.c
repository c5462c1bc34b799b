/*
 * report_evidence.c -- the evidence log's reads (docs/evidence.md), served by
 * the reporting service: report.EvidenceCheckpoint  the latest signed
 * checkpoint (text/plain) report.EvidencePublicKey   the verifier key
 * (text/plain) report.InclusionProof      one record's leaf, audit path and the
 *                              checkpoint it is against (JSON)
 *   report.ConsistencyProof    from one tree size to another (JSON)
 *   report.EvidenceTile        C2SP tlog-tiles tiles and entry bundles
 * Every reply is a cv.RawBody, served as is by the gateway. The proofs
 * come from the tiles (cv_tlog.h), O(log n) rows each; the checkpoints
 * from the cache the signer fills after the witness accepted them.
 */
#include "report_evidence.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cv_chain.h"
#include "cv_id.h"
#include "cv_note.h"
#include "cv_proof.h"
#include "cv_record.h"
#include "cv_tlog.h"
#include "evidence.pb-c.h"

#define REPORT_TEXT "text/plain; charset=utf-8"
#define REPORT_JSON "application/json"
#define REPORT_BIN  "application/octet-stream"

/* A RawBody reply that takes ownership of data (malloc'd). */
static int
report_raw(ProtobufCMessage **reply, void *data, size_t len, const char *type,
           cv_error *err)
{
    Cv__RawBody *b = malloc(sizeof(*b));

    if (b == NULL) {
        free(data);
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    }
    cv__raw_body__init(b);
    b->has_body = true;
    b->body.data = data;
    b->body.len = len;
    if ((b->content_type = strdup(type)) == NULL) {
        protobuf_c_message_free_unpacked(&b->base, NULL);
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    }
    *reply = &b->base;
    return 0;
}

/* A JSON document as a RawBody (steals doc). */
static int
report_raw_json(ProtobufCMessage **reply, json_t *doc, cv_error *err)
{
    char *text = doc != NULL ? json_dumps(doc, JSON_INDENT(2)) : NULL;
    size_t len;

    json_decref(doc);
    if (text == NULL)
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    len = strlen(text);
    return report_raw(reply, text, len, REPORT_JSON, err);
}

int
report_evidence_checkpoint(cv_rpc_ctx *call, const ProtobufCMessage *request,
                           ProtobufCMessage **reply, cv_error *err)
{
    char *note;
    int rv;

    (void)request;
    if ((rv = cv_tlog_checkpoint(call->db, -1, &note, NULL, err)) != 0)
        return rv;
    return report_raw(reply, note, strlen(note), REPORT_TEXT, err);
}

int
report_evidence_public_key(cv_rpc_ctx *call, const ProtobufCMessage *request,
                           ProtobufCMessage **reply, cv_error *err)
{
    const char *vkey = cv_tlog_process_vkey();
    size_t len;
    char *text;

    (void)call;
    (void)request;
    if (vkey == NULL)
        return cv_error_set(err, CV_NOT_FOUND,
                            "this service has no evidence key (set "
                            "CAVRA_EVIDENCE_KEY_FILE or "
                            "CAVRA_EVIDENCE_PUBLIC_KEY_FILE)");
    len = strlen(vkey);
    if ((text = malloc(len + 2)) == NULL)
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    memcpy(text, vkey, len);
    text[len] = '\n';
    text[len + 1] = '\0';
    return report_raw(reply, text, len + 1, REPORT_TEXT, err);
}

/* The checkpoint a proof is against: of tree_size when given (> 0), else
 * the latest. Fills note (malloc'd), its checkpoint and size. */
static int
report_proof_checkpoint(cv_db *db, bool has_size, int64_t tree_size,
                        char **note, cv_checkpoint *cp, cv_error *err)
{
    const char *nl;
    char why[160];
    int rv;

    if (has_size && tree_size < 1)
        return cv_error_set(err, CV_INVALID_ARGUMENT,
                            "tree_size must be at least 1");
    if ((rv = cv_tlog_checkpoint(db, has_size ? tree_size : -1, note,
                                 &tree_size, err)) != 0)
        return rv;
    /* The body ends at the blank line before the signatures. */
    nl = strstr(*note, "\n\n");
    if (nl == NULL || cv_checkpoint_parse(*note, (size_t)(nl - *note) + 1, cp,
                                          why, sizeof(why)) != 0) {
        free(*note);
        *note = NULL;
        return cv_error_set(err, CV_DATA_LOSS,
                            "the stored checkpoint of size %" PRId64
                            " is unreadable",
                            tree_size);
    }
    return 0;
}

int
report_inclusion_proof(cv_rpc_ctx *call, const ProtobufCMessage *request,
                       ProtobufCMessage **reply, cv_error *err)
{
    const Cv__InclusionProofRequest *req =
        (const Cv__InclusionProofRequest *)request;
    const char *p[2];
    PGresult *res;
    int64_t seq;
    char *note = NULL, *canonical = NULL, seqtext[24];
    cv_checkpoint cp;
    cv_merkle_hash proof[CV_MERKLE_MAX_PROOF];
    size_t len = 0;
    json_t *doc;
    int rv;

    if (req->record_id == NULL || req->record_id[0] == '\0')
        return cv_error_set(err, CV_INVALID_ARGUMENT, "record_id is required");
    if (strlen(req->record_id) >= CV_ID_MAX ||
        (req->kind != NULL && strlen(req->kind) > 128))
        return cv_error_set(err, CV_INVALID_ARGUMENT,
                            "record_id or kind is too long");
    p[0] = req->record_id;
    p[1] = req->kind != NULL && req->kind[0] != '\0' ? req->kind : NULL;
    if ((res = cv_db_exec(call->db, "cv_tlog_leaf_of", 2, p, err)) == NULL)
        return err->code;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return cv_error_set(err, CV_NOT_FOUND,
                            "record_id names no sequenced evidence event (a "
                            "new record is sequenced within a second)");
    }
    if (PQntuples(res) > 1) {
        PQclear(res);
        return cv_error_set(err, CV_INVALID_ARGUMENT,
                            "record_id names events of several kinds: give "
                            "kind too");
    }
    seq = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    if ((rv = report_proof_checkpoint(call->db, req->has_tree_size,
                                      req->tree_size, &note, &cp, err)) != 0)
        return rv;
    if (seq > cp.size) {
        free(note);
        return cv_error_set(err, CV_NOT_FOUND,
                            "the event (leaf %" PRId64
                            ") is not in the checkpoint of tree size %" PRId64
                            " yet; ask again after the next checkpoint",
                            seq - 1, cp.size);
    }
    snprintf(seqtext, sizeof(seqtext), "%" PRId64, seq);
    p[0] = seqtext;
    p[1] = seqtext;
    if ((rv = cv_tlog_prove_inclusion(call->db, seq - 1, cp.size, proof, &len,
                                      err)) != 0 ||
        (res = cv_db_exec(call->db, "cv_tlog_entries", 2, p, err)) == NULL) {
        free(note);
        return rv != 0 ? rv : err->code;
    }
    if (PQntuples(res) == 1) {
        cv_chain_event ev = cv_chain_row_event(res, 0, seq);

        canonical = cv_chain_canonical(&ev);
    }
    PQclear(res);
    if (canonical == NULL) {
        free(note);
        return cv_error_set(err, CV_DATA_LOSS,
                            "evidence event %" PRId64 " is unreadable", seq);
    }
    /* cv_proof.h's bundle, the form cavra-verify --inclusion reads. */
    {
        cv_inclusion_bundle b;

        memset(&b, 0, sizeof(b));
        snprintf(b.record_id, sizeof(b.record_id), "%s", req->record_id);
        b.leaf_index = seq - 1;
        cv_chain_leaf(canonical, b.leaf_hash);
        b.tree_size = cp.size;
        b.path_len = len;
        memcpy(b.path, proof, len * sizeof(proof[0]));
        b.checkpoint = note;
        b.event = json_loads(canonical, 0, NULL);
        doc = cv_proof_inclusion_json(&b);
        json_decref(b.event);
    }
    free(canonical);
    free(note);
    return report_raw_json(reply, doc, err);
}

int
report_consistency_proof(cv_rpc_ctx *call, const ProtobufCMessage *request,
                         ProtobufCMessage **reply, cv_error *err)
{
    const Cv__ConsistencyProofRequest *req =
        (const Cv__ConsistencyProofRequest *)request;
    cv_merkle_hash proof[CV_MERKLE_MAX_PROOF];
    size_t len = 0;
    char *note = NULL, *old_note = NULL;
    cv_checkpoint cp, old_cp;
    int64_t size;
    json_t *doc;
    int rv;

    if (!req->has_from || req->from < 1)
        return cv_error_set(err, CV_INVALID_ARGUMENT,
                            "from is required and must be at least 1");
    if (req->has_to && req->to < req->from)
        return cv_error_set(err, CV_INVALID_ARGUMENT,
                            "to must be at least from");
    if ((rv = report_proof_checkpoint(call->db, req->has_to, req->to, &note,
                                      &cp, err)) != 0)
        return rv;
    if (req->from > cp.size) {
        free(note);
        return cv_error_set(err, CV_INVALID_ARGUMENT,
                            "from must be at most the checkpoint's tree size "
                            "%" PRId64,
                            cp.size);
    }
    if ((rv = cv_tlog_size(call->db, &size, err)) != 0 ||
        (rv = cv_tlog_prove_consistency(call->db, req->from, cp.size, proof,
                                        &len, err)) != 0) {
        free(note);
        return rv;
    }
    /* The older checkpoint too, when one of that size was signed: then
     * the proof is checkable with the two notes alone. */
    if (report_proof_checkpoint(call->db, true, req->from, &old_note, &old_cp,
                                err) != 0)
        cv_error_clear(err);
    {
        cv_consistency_bundle b;

        memset(&b, 0, sizeof(b));
        b.from = req->from;
        b.to = cp.size;
        b.proof_len = len;
        memcpy(b.proof, proof, len * sizeof(proof[0]));
        b.from_checkpoint = old_note;
        b.to_checkpoint = note;
        doc = cv_proof_consistency_json(&b);
    }
    free(note);
    free(old_note);
    return report_raw_json(reply, doc, err);
}

int
report_evidence_tile(cv_rpc_ctx *call, const ProtobufCMessage *request,
                     ProtobufCMessage **reply, cv_error *err)
{
    const Cv__EvidenceTileRequest *req =
        (const Cv__EvidenceTileRequest *)request;
    char path[300];
    int level, width, rv;
    int64_t index;
    uint8_t *data;
    size_t len;

    if (req->path == NULL || strlen(req->path) > 200 ||
        snprintf(path, sizeof(path), "tile/%s", req->path) < 0 ||
        cv_tile_path_parse(path, &level, &index, &width) != 0)
        return cv_error_set(err, CV_INVALID_ARGUMENT,
                            "path must be a C2SP tlog-tiles path: "
                            "<level>/<index>[.p/<width>] or "
                            "entries/<index>[.p/<width>]");
    if ((rv = cv_tlog_tile(call->db, level, index, width, &data, &len, err)) !=
        0)
        return rv;
    return report_raw(reply, data, len, REPORT_BIN, err);
}
