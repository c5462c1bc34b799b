/*
 * cv_chain.h -- the evidence stream as the leaves of an RFC 6962 Merkle
 * tree (docs/evidence.md): its canonical events, its sequencer and its
 * verifier.
 *
 * Design notes:
 *  - Request transactions only INSERT events (cv_evidence.h); they never
 *    touch the tree, so they never wait on a global lock.
 *  - The sequencer, a background thread in every service, takes the
 *    sequencer lock (a transaction-scoped advisory lock: one sequencer
 *    works at a time, the others skip the round), finds events without a
 *    leaf in id order, gives each the next position as a new row of
 *    evidence_leaves (seq, event_id; migration 0017: events are never
 *    UPDATEd, leaves are insert-only), appends its leaf hash
 *        leaf = SHA-256(0x00 || canonical(event))
 *    to the tree's right frontier (cv_merkle_frontier, kept in memory and
 *    reloaded from the tiles when another process moved the tree) and
 *    stores every node the batch completes in the tiles (cv_tlog.h), all
 *    in one transaction per batch. Leaf index = seq - 1.
 *  - Finding the events without a leaf: ids are taken in one order and
 *    committed in another, so "above the highest sequenced id" would miss
 *    a late commit. The search is an anti-join of evidence_events with
 *    evidence_leaves over ids above a floor: every id <= floor has a leaf
 *    or never committed (a rolled back insert leaves a hole for good).
 *    The floor rises through a horizon: in a round, the sequencer reads
 *    the sequence's last value S (pg_sequence_last_value), then takes its
 *    own transaction id X. Every writer takes its transaction id before
 *    its event id (evidence_next_id(), the column default), so every
 *    writer that holds an id <= S has a transaction id < X. In a later
 *    round whose snapshot has xmin >= X all of them have ended, and the
 *    committed ones are visible: once that round has given a leaf to
 *    every visible event up to S, the floor becomes S (or the last id the
 *    batch took, when the batch was full). The search thus covers about
 *    two rounds of events; a long open writing transaction holds the
 *    floor where it is (the search grows with the events written
 *    meanwhile, and shrinks again when it ends). Each leaf records the
 *    floor its batch searched from (id_floor), where a restarted
 *    sequencer starts; the floor moves only after its round committed.
 *  - Events sequenced before the Merkle log (migration 0012) keep their
 *    position (chain_seq became their leaf) and are hashed, in order,
 *    before any new event gets a position.
 *  - canonical(event) is the compact, key-sorted JSON of {seq, kind,
 *    record_id, plan_id, provider, actor, request_id, created_at, record}
 *    (plus principal when the event has one).
 *  - Verification recomputes every leaf and the tree from the events, in
 *    leaf order (evidence_leaves joined to the events), from the database or an
 * export file (one line per event: the canonical event and its leaf hash), and
 * checks: positions are 1..n without a gap, each leaf equals the stored leaf
 * hash, the stored tree has the recomputed root, and the tree at each anchor's
 *    size (the witnessed checkpoints, or a saved one) has the anchor's
 *    root. It names the first bad leaf; a rewrite that also recomputed the
 *    stored tree is narrowed to the leaves between the last anchor that
 *    still matches and the first that does not; a log shorter than an
 *    anchor is "log is shorter than witnessed checkpoint".
 */
#ifndef CV_CHAIN_H
#define CV_CHAIN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cv_db.h"
#include "cv_merkle.h"

#define CV_CHAIN_ALGORITHM                                                     \
    "rfc6962 merkle tree: leaf sha256(0x00 || canonical_event), node "         \
    "sha256(0x01 || left || right); c2sp tlog-checkpoint, ed25519"

/* The exact reason verify gives for a truncated log. */
#define CV_CHAIN_SHORTER "log is shorter than witnessed checkpoint"

extern const cv_db_statement cv_chain_statements[];
extern const size_t cv_chain_statement_count;

/* One event as the log sees it; strings may be NULL (JSON null). */
typedef struct cv_chain_event {
    int64_t seq;
    const char *kind;
    const char *record_id;
    const char *plan_id;
    const char *provider;
    const char *actor;
    const char *request_id;
    const char *created_at; /* RFC 3339 UTC, cv_time_format form */
    const char *record;     /* JSON text */
    const char *principal;  /* NULL: none (left out of the canonical form,
                               as in events stored before principals) */
} cv_chain_event;

/* The canonical serialization (malloc'd; caller frees), NULL on OOM or
 * when record is not JSON. */
char *cv_chain_canonical(const cv_chain_event *ev);
/* The same through jansson (the definition; cv_chain_canonical writes it
 * without jansson when it can, and falls back to this). For tests. */
char *cv_chain_canonical_jansson(const cv_chain_event *ev);

/* The leaf hash of a canonical event. */
void cv_chain_leaf(const char *canonical, cv_merkle_hash out);

/* Lowercase hex of a 32-byte hash into out (65 bytes). */
void cv_chain_hex(const uint8_t hash[32], char out[65]);

/* The event of a row of the statements whose columns are: 0 the position
 * or id, 1..8 kind .. record, last principal. Strings point into res. */
cv_chain_event cv_chain_row_event(PGresult *res, int row, int64_t seq);

/* The sequencer's memory between rounds: the frontier of the tree it
 * last committed (reloaded from the tiles when the size moved), and where
 * its search for new events starts (the floor, with the horizon that
 * lets it rise: see the design notes). */
typedef struct cv_chain_sequencer {
    bool loaded;
    cv_merkle_frontier frontier;
    bool floor_loaded;
    int64_t floor;      /* every event id <= floor has a leaf or never
                           committed */
    int64_t next_floor; /* the floor once this round commits */
    int64_t hz_id;      /* the sequence's last value, read ... */
    uint64_t hz_xid;    /* ... before this transaction id was assigned; 0:
                           no horizon pending */
} cv_chain_sequencer;

/*
 * One sequencer round: sequences up to `batch` events. Returns 0 and
 * *chained (possibly 0, also when another sequencer holds the lock), or
 * an error. st may be NULL (the frontier is then loaded every round).
 */
int cv_chain_sequence_with(cv_db *db, cv_chain_sequencer *st, int batch,
                           int *chained, cv_error *err);
int cv_chain_sequence(cv_db *db, int batch, int *chained, cv_error *err);

/* A tree size and root the log must match (a witnessed checkpoint). */
typedef struct cv_chain_anchor {
    int64_t size;
    cv_merkle_hash root;
} cv_chain_anchor;

/* The outcome of a verification. */
typedef struct cv_chain_report {
    bool valid;
    int64_t events;            /* sequenced events checked (leaves) */
    char head[65];             /* root of the recomputed tree (hex) */
    int64_t pending;           /* not yet sequenced (database only) */
    int64_t first_invalid_seq; /* position of the first bad leaf; 0 valid */
    int64_t last_invalid_seq;  /* end of the range it is narrowed to */
    char reason[256];
    int64_t tree_size;       /* stored tree size (database only) */
    int64_t checkpoint_size; /* largest anchor checked, -1 without */
} cv_chain_report;

/*
 * Verifies the log in the database against anchors (sorted by size, may
 * be empty), inside the caller's REPEATABLE READ transaction
 * (CV_TX_READ_SNAPSHOT: one snapshot for the whole walk). Returns 0 (see
 * report->valid) or an error when the database could not be read.
 */
int cv_chain_verify_db(cv_db *db, const cv_chain_anchor *anchors,
                       size_t n_anchors, cv_chain_report *report,
                       cv_error *err);

/* Writes the sequenced events as an export: one JSON object per line,
 * {"event": <canonical event>, "leaf_hash": "<hex>"}, inside the caller's
 * REPEATABLE READ transaction. Returns 0 or an error. */
int cv_chain_export(cv_db *db, FILE *out, int64_t *written, cv_error *err);

/* Verifies an export file against anchors. Returns 0 (see
 * report->valid), or -1 when the file cannot be read. */
int cv_chain_verify_file(FILE *in, const cv_chain_anchor *anchors,
                         size_t n_anchors, cv_chain_report *report);

#endif
