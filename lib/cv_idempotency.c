/*
 * cv_idempotency.c -- stored replies of keyed calls (see the header).
 *
 * Replies are stored as hex text so every parameter stays a text
 * parameter of a prepared statement.
 */
#include "cv_idempotency.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_id.h"

const cv_db_statement cv_idempotency_statements[] = {
    {"cv_idem_lock",
     "SELECT pg_advisory_xact_lock(hashtextextended($1 || chr(31) || $2 || "
     "chr(31) || $3, 7))"},
    {"cv_idem_get", "SELECT request_sha256, encode(reply, 'hex'), existing"
                    " FROM idempotency_keys"
                    " WHERE scope = $1 AND method = $2 AND idempotency_key = $3"
                    " AND created_at > now() - interval '7 days'"},
    {"cv_idem_put",
     "INSERT INTO idempotency_keys (scope, method, idempotency_key,"
     " request_sha256, reply, existing) VALUES ($1, $2, $3, $4,"
     " decode($5, 'hex'), $6::boolean)"
     " ON CONFLICT (scope, method, idempotency_key) DO UPDATE SET"
     " request_sha256 = EXCLUDED.request_sha256, reply = EXCLUDED.reply,"
     " existing = EXCLUDED.existing, created_at = now()"},
    {"cv_idem_expire",
     "DELETE FROM idempotency_keys WHERE created_at < now() - interval '7 "
     "days'"},
};
const size_t cv_idempotency_statement_count =
    sizeof(cv_idempotency_statements) / sizeof(cv_idempotency_statements[0]);

int
cv_idempotency_lookup(cv_db *db, cv_idempotency *idem, const char *scope,
                      const char *method, const char *key,
                      const uint8_t *payload, size_t payload_len,
                      uint8_t **replay, size_t *replay_len, bool *existing,
                      cv_error *err)
{
    const char *params[3];
    PGresult *res;
    int rv;

    *replay = NULL;
    *replay_len = 0;
    *existing = false;
    snprintf(idem->scope, sizeof(idem->scope), "%s",
             scope != NULL ? scope : "");
    snprintf(idem->method, sizeof(idem->method), "%s", method);
    snprintf(idem->key, sizeof(idem->key), "%s", key);
    cv_sha256_hex(payload, payload_len, idem->request_sha256);
    params[0] = idem->scope;
    params[1] = idem->method;
    params[2] = idem->key;

    {
        /* The key's lock, then its row, in one round trip: the read is a
         * statement of its own, so it sees what the lock's previous holder
         * committed. */
        const cv_db_call calls[2] = {{"cv_idem_lock", 3, params},
                                     {"cv_idem_get", 3, params}};
        PGresult *rs[2];

        if ((rv = cv_db_exec_pipeline(db, 2, calls, rs, err)) != 0)
            return rv;
        PQclear(rs[0]);
        res = rs[1];
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        return 0; /* a new key */
    }
    if (strcmp(PQgetvalue(res, 0, 0), idem->request_sha256) != 0) {
        PQclear(res);
        return cv_error_set(err, CV_ALREADY_EXISTS,
                            "Idempotency-Key was already used with a "
                            "different request");
    }
    {
        const char *hex = PQgetvalue(res, 0, 1);
        size_t n = strlen(hex) / 2;

        *existing = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
        if ((*replay = malloc(n > 0 ? n : 1)) == NULL) {
            PQclear(res);
            return cv_error_set(err, CV_INTERNAL, "out of memory");
        }
        if (cv_hex_decode(hex, n, *replay) != 0) {
            free(*replay);
            *replay = NULL;
            PQclear(res);
            return cv_error_set(err, CV_DATA_LOSS,
                                "stored reply is unreadable");
        }
        *replay_len = n;
    }
    PQclear(res);
    return 0;
}

int
cv_idempotency_store(cv_db *db, const cv_idempotency *idem,
                     const uint8_t *reply, size_t reply_len, bool existing,
                     cv_error *err)
{
    const char *params[6];
    char *hex;
    int rv;

    if ((hex = malloc(reply_len * 2 + 1)) == NULL)
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    cv_hex_encode(reply, reply_len, hex);
    params[0] = idem->scope;
    params[1] = idem->method;
    params[2] = idem->key;
    params[3] = idem->request_sha256;
    params[4] = hex;
    params[5] = existing ? "true" : "false";
    rv = cv_db_run(db, "cv_idem_put", 6, params, err);
    free(hex);
    return rv;
}
