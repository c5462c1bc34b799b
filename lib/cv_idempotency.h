/*
 * cv_idempotency.h -- Idempotency-Key support for every RPC (SPEC 3).
 *
 * The RPC server wraps a call that carries a key in one transaction:
 *   1. cv_idempotency_begin: BEGIN, take a transaction-scoped advisory
 *      lock on (scope, method, key) -- only calls with the same key wait
 *      for each other -- and look the key up.
 *   2. Not found: the handler runs inside that transaction (its own
 *      begin/commit nest), then cv_idempotency_finish stores the reply
 *      and COMMITs: the record and the key land together or not at all.
 *   3. Found with the same request hash: the stored reply is answered
 *      again, flagged as replayed; nothing new is stored.
 *   4. Found with another request: ALREADY_EXISTS (409).
 * Keys are kept 7 days (at least the 24 h SPEC asks for).
 */
#ifndef CV_IDEMPOTENCY_H
#define CV_IDEMPOTENCY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cv_db.h"

extern const cv_db_statement cv_idempotency_statements[];
extern const size_t cv_idempotency_statement_count;

typedef struct cv_idempotency {
    char scope[160]; /* verified actor name, or "" */
    char method[64];
    char key[256];
    char request_sha256[65];
} cv_idempotency;

/*
 * Starts the keyed call. Returns 0 with the transaction open and
 * *replay NULL when the key is new; 0 with *replay set (malloc'd packed
 * reply payload of *replay_len bytes, caller frees; *existing copied) and
 * the transaction closed when it is a replay; an error (transaction
 * closed) otherwise.
 */
int cv_idempotency_begin(cv_db *db, cv_idempotency *idem, const char *scope,
                         const char *method, const char *key,
                         const uint8_t *payload, size_t payload_len,
                         uint8_t **replay, size_t *replay_len, bool *existing,
                         cv_error *err);

/* Stores the reply of a new keyed call and commits. On error the whole
 * transaction (record included) is rolled back. */
int cv_idempotency_finish(cv_db *db, const cv_idempotency *idem,
                          const uint8_t *reply, size_t reply_len, bool existing,
                          cv_error *err);

#endif
