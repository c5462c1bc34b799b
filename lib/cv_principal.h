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
 *  - Sessions (cheaper than a signature per request; docs/rpc.md): a
 *    signed envelope may carry an ephemeral X25519 public key (the
 *    offer, covered by the signature). The service answers with a session
 *    id and its own ephemeral public key; both sides derive the session
 *    key with X25519 + HKDF-SHA256, so neither an eavesdropper nor any
 *    other service or replica learns it. Later envelopes to that process
 *    carry the session id and an HMAC-SHA256 over the same fields instead
 *    of a signature; nonce, replay cache and deadlines are unchanged. The
 *    key is the service's own copy of a secret only this session shares:
 *    it lets the service verify requests addressed to itself, nothing
 *    else.
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
    uint8_t mac[32]; /* cv_envelope_mac */
} cv_envelope_sig_buf;

int cv_envelope_sign(const cv_identity *id, Cv__RpcRequest *env,
                     cv_envelope_sig_buf *buf, cv_error *err);

/* ---- sessions, the caller's side ---- */

#define CV_SESSION_ID_LEN  16
#define CV_SESSION_KEY_LEN 32
/* A service forgets a session this long after granting it; a caller stops
 * using one a minute earlier, so it never relies on one about to go. */
#define CV_SESSION_TTL_MS        (10 * 60 * 1000)
#define CV_SESSION_CLIENT_TTL_MS (9 * 60 * 1000)

/* A caller's pending offer: its ephemeral X25519 key pair. */
typedef struct cv_session_offer {
    void *pkey; /* EVP_PKEY * (X25519, private) */
    uint8_t pub[32];
} cv_session_offer;

/* Makes a fresh offer. Returns 0 or CV_INTERNAL. */
int cv_session_offer_new(cv_session_offer *o, cv_error *err);
void cv_session_offer_free(cv_session_offer *o);

/*
 * Derives the session key from the caller's offer and the service's
 * answer (its session id and ephemeral public key). key_id is the
 * caller's. Returns 0 or CV_UNAUTHENTICATED for an unusable answer.
 */
int cv_session_accept(const cv_session_offer *o, const char *key_id,
                      const uint8_t *session_id, size_t id_len,
                      const uint8_t *service_pub, size_t pub_len,
                      uint8_t key[CV_SESSION_KEY_LEN], cv_error *err);

/*
 * Authenticates env with a session instead of a signature: sets key_id,
 * a fresh nonce, session_id (pointing at session_id, which must outlive
 * env's use) and the MAC (in buf). Returns 0 or CV_INTERNAL.
 */
int cv_envelope_mac(const char *key_id, const uint8_t key[CV_SESSION_KEY_LEN],
                    const uint8_t session_id[CV_SESSION_ID_LEN],
                    Cv__RpcRequest *env, cv_envelope_sig_buf *buf,
                    cv_error *err);

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

/* ---- sessions, the service's side ---- */

typedef struct cv_session_store cv_session_store;

/* A store of at most max_sessions live sessions. NULL when out of
 * memory. */
cv_session_store *cv_session_store_new(size_t max_sessions);
void cv_session_store_free(cv_session_store *s);

/*
 * Grants a session for env's offer. Call only after cv_envelope_verify
 * accepted env for who. Writes the session id and the service's public
 * key. Returns 0, or CV_RESOURCE_EXHAUSTED when the store is full of live
 * sessions (the request itself still counts: it was signed), or
 * CV_INVALID_ARGUMENT for a malformed offer. Thread-safe.
 */
int cv_session_grant(cv_session_store *s, const cv_principal *who,
                     const Cv__RpcRequest *env, int64_t now_ms,
                     uint8_t id[CV_SESSION_ID_LEN], uint8_t pub[32],
                     cv_error *err);

/*
 * Checks env's session MAC and its deadline, like cv_envelope_verify for
 * a signature. Returns 0 with *who set, or CV_UNAUTHENTICATED: unknown
 * session (*unknown set: the caller should sign and offer again), a
 * session of another principal, a bad MAC, a stale or far deadline.
 * Thread-safe.
 */
int cv_session_verify(cv_session_store *s, const Cv__RpcRequest *env,
                      int64_t now_ms, const cv_principal **who, bool *unknown,
                      cv_error *err);

#endif
