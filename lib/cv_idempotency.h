/*
 * cv_idempotency.h -- Idempotency-Key support for every keyed RPC
 * (docs/api.md).
 *
 * Both calls run inside the request's transaction, which the RPC server
 * owns (cv_db_transact):
 *   1. cv_idempotency_lookup takes a transaction-scoped advisory lock on
 *      (scope, method, key) -- only calls with the same key wait for each
 *      other -- and looks the key up.
 *   2. Not found: the handler runs, then cv_idempotency_store stores the
 *      reply; the server commits: the record and the key land together or
 *      not at all.
 *   3. Found with the same request hash: the stored reply is answered
 *      again, flagged as replayed; nothing new is stored.
 *   4. Found with another request: ALREADY_EXISTS (409).
 * Under REPEATABLE READ a key committed by a concurrent call after our
 * snapshot makes the store fail with a serialization error; the server
 * then runs the request again, and the lookup finds the key (a replay).
 * Keys are kept 7 days (at least the 24 h the API promises).
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
 * Looks the key up in the open transaction. Returns 0 with *replay NULL
 * when the key is new (idem is filled for cv_idempotency_store); 0 with
 * *replay set (malloc'd packed reply payload of *replay_len bytes, the
 * caller frees it; *existing copied) when it is a replay; an error
 * otherwise (ALREADY_EXISTS for a key used with another request).
 */
int cv_idempotency_lookup(cv_db *db, cv_idempotency *idem, const char *scope,
                          const char *method, const char *key,
                          const uint8_t *payload, size_t payload_len,
                          uint8_t **replay, size_t *replay_len, bool *existing,
                          cv_error *err);

/* Stores the reply of a new keyed call in the open transaction. */
int cv_idempotency_store(cv_db *db, const cv_idempotency *idem,
                         const uint8_t *reply, size_t reply_len, bool existing,
                         cv_error *err);

#endif
