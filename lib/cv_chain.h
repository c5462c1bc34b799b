/*
 * cv_chain.h -- the tamper-evident hash chain over the evidence stream
 * (SPEC 9), its sequencer and its verifier.
 *
 * Design notes:
 *  - Request transactions only INSERT events (cv_evidence.h); they never
 *    touch the chain, so they never wait on a global lock.
 *  - The sequencer, a background thread in every service, takes the
 *    chain lock (a transaction-scoped advisory lock: one sequencer works
 *    at a time, the others skip the round), reads unchained events in id
 *    order and gives each the next chain_seq, prev_hash and hash.
 *  - Hashing, RFC 6962-style domain separation:
 *        leaf = SHA-256(0x00 || canonical(event))
 *        hash = SHA-256(0x01 || prev_hash || leaf)
 *    with prev_hash of the first event = 32 zero bytes. canonical(event)
 *    is the compact, key-sorted JSON of {seq, kind, record_id, plan_id,
 *    provider, actor, request_id, created_at, record}.
 *  - Verification recomputes every hash in chain_seq order, from the
 *    database or from an export file (one canonical event per line plus
 *    its hash), and names the first event that does not match.
 */
#ifndef CV_CHAIN_H
#define CV_CHAIN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cv_db.h"

#define CV_CHAIN_ALGORITHM                                                     \
    "sha256(0x01 || prev || sha256(0x00 || canonical_event)), rfc6962-style"

extern const cv_db_statement cv_chain_statements[];
extern const size_t cv_chain_statement_count;

/* One event as the chain sees it; strings may be NULL (JSON null). */
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

/* hash = SHA-256(0x01 || prev || SHA-256(0x00 || canonical)). */
void cv_chain_hash(const uint8_t prev[32], const char *canonical,
                   uint8_t out[32]);

/* Lowercase hex of a 32-byte hash into out (65 bytes). */
void cv_chain_hex(const uint8_t hash[32], char out[65]);

/*
 * One sequencer round: chains up to `batch` unchained events. Returns 0
 * and *chained (possibly 0, also when another sequencer holds the lock),
 * or an error.
 */
int cv_chain_sequence(cv_db *db, int batch, int *chained, cv_error *err);

/* The outcome of a verification. */
typedef struct cv_chain_report {
    bool valid;
    int64_t events;            /* chained events checked */
    char head[65];             /* hash of the last valid event */
    int64_t pending;           /* not yet chained (database only) */
    int64_t first_invalid_seq; /* 0 when valid */
    char reason[256];
} cv_chain_report;

/* Verifies the chain in the database, inside the caller's REPEATABLE READ
 * transaction (CV_TX_READ_SNAPSHOT: one snapshot for the whole walk).
 * Returns 0 (see report->valid) or an error when the database could not
 * be read. */
int cv_chain_verify_db(cv_db *db, cv_chain_report *report, cv_error *err);

/* Writes the chained events as an export: one JSON object per line,
 * {"event": <canonical event>, "hash": "<hex>"}, inside the caller's
 * REPEATABLE READ transaction. Returns 0 or an error. */
int cv_chain_export(cv_db *db, FILE *out, int64_t *written, cv_error *err);

/* Verifies an export file. Returns 0 (see report->valid), or -1 when the
 * file cannot be read. */
int cv_chain_verify_file(FILE *in, cv_chain_report *report);

#endif
