/*
 * cv_principal.h -- who may call the RPCs: Ed25519 caller keys, the
 * principals file, signed envelopes and replay protection.
 *
 * Every RPC caller (the gateway, cavra-rpc, an internal service) holds
 * its own Ed25519 key pair. A service knows the callers from a principals
 * file, one line each:
 *
 *     <name> ed25519:<64 hex public key> <role>[,<role>...] [delegate]
 *
 * (blank lines and '#' comments skipped). `delegate` marks a principal
 * that may act for end users (the gateway: it names the token-verified
 * actor); every other principal acts as itself. A key's id is the first
 * 16 hex digits of SHA-256 over its raw public key, so the file needs no
 * id column and an id can never point at another key.
 *
 * A key file (secret, mode 0600) holds one caller's name and private key:
 *
 *     # CAVRA RPC key: keep secret
 *     principal <name>
 *     ed25519-private <64 hex seed>
 *
 * Design notes:
 *  - The caller signs the envelope: method, request id, deadline, actor
 *    (name, subject, roles), Idempotency-Key, SHA-256 of the payload, key
 *    id and a random nonce, each length-prefixed so no two envelopes share
 *    a signing input. The service verifies before it reads anything else.
 *  - Replays: the nonce is remembered (per key) until the envelope's
 *    deadline, which may lie at most CV_ENVELOPE_MAX_AHEAD_MS ahead; after
 *    the deadline the envelope is refused as stale anyway. The cache lives
 *    in each service process.
 *  - A service holds only public keys: nothing it has lets it act as
 *    another principal.
 */
#ifndef CV_PRINCIPAL_H
#define CV_PRINCIPAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cv_error.h"
#include "rpc.pb-c.h"

#define CV_PRINCIPAL_NAME_MAX    64
#define CV_KEY_ID_LEN            16
#define CV_ENVELOPE_MAX_AHEAD_MS (5 * 60 * 1000)

/* ---- the caller's side ---- */

typedef struct cv_identity cv_identity;

/* Loads a key file. Returns 0 and *out (free with cv_identity_free), or
 * CV_INVALID_ARGUMENT naming the problem (never the key). */
int cv_identity_load(const char *path, cv_identity **out, cv_error *err);
void cv_identity_free(cv_identity *id);
const char *cv_identity_name(const cv_identity *id);
const char *cv_identity_key_id(const cv_identity *id);

/*
 * Creates a fresh key pair for principal `name`, writes the key file at
 * path (mode 0600, refusing to overwrite an existing file) and writes the
 * principals-file line for it (with roles text and delegate) into line.
 * Returns 0 or an error.
 */
int cv_identity_generate(const char *name, const char *path, const char *roles,
                         bool delegate, char *line, size_t line_len,
                         cv_error *err);

/*
 * Signs env in place with id: sets key_id, a fresh nonce and the
 * signature. The strings and bytes it sets point into buf, which must
 * outlive env's use. Returns 0 or CV_INTERNAL.
 */
typedef struct cv_envelope_sig_buf {
    char key_id[CV_KEY_ID_LEN + 1];
    char nonce[33];
    uint8_t sig[64];
} cv_envelope_sig_buf;

int cv_envelope_sign(const cv_identity *id, Cv__RpcRequest *env,
                     cv_envelope_sig_buf *buf, cv_error *err);

/* ---- the service's side ---- */

typedef struct cv_principal {
    char name[CV_PRINCIPAL_NAME_MAX + 1];
    char key_id[CV_KEY_ID_LEN + 1];
    unsigned int roles; /* CV_ROLE_* bits */
    bool delegate;      /* may act for end users */
    void *pkey;         /* EVP_PKEY * (public) */
} cv_principal;

typedef struct cv_principals cv_principals;

/* Loads a principals file. Returns 0 and *out, or CV_INVALID_ARGUMENT
 * naming the bad line. */
int cv_principals_load(const char *path, cv_principals **out, cv_error *err);
void cv_principals_free(cv_principals *p);
size_t cv_principals_count(const cv_principals *p);

/*
 * Checks env's signature against the principals and its deadline against
 * now_ms (not past, at most CV_ENVELOPE_MAX_AHEAD_MS ahead). Returns 0
 * with *who set, or CV_UNAUTHENTICATED with a reason (no signature,
 * unknown key, bad signature, stale or far deadline).
 */
int cv_envelope_verify(const cv_principals *p, const Cv__RpcRequest *env,
                       int64_t now_ms, const cv_principal **who, cv_error *err);

typedef struct cv_replay_cache cv_replay_cache;

/* A cache of at most max_entries live nonces. NULL when out of memory. */
cv_replay_cache *cv_replay_cache_new(size_t max_entries);
void cv_replay_cache_free(cv_replay_cache *c);

/*
 * Records (key_id, nonce) until expires_ms. Returns 0 the first time,
 * CV_UNAUTHENTICATED when it is already recorded (a replay), or
 * CV_RESOURCE_EXHAUSTED when the cache is full of live entries.
 * Thread-safe.
 */
int cv_replay_check(cv_replay_cache *c, const char *key_id, const char *nonce,
                    int64_t expires_ms, int64_t now_ms, cv_error *err);

#endif
