/*
 * cv_principal.c -- caller keys, the principals file, envelope signatures
 * and the replay cache (see cv_principal.h).
 */
#include "cv_principal.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cv_id.h"
#include "cv_method.h"

#define CV_ENVELOPE_DOMAIN "cavra-rpc-envelope-v1"
#define CV_SESSION_DOMAIN  "cavra-rpc-session-v1"

struct cv_identity {
    char name[CV_PRINCIPAL_NAME_MAX + 1];
    char key_id[CV_KEY_ID_LEN + 1];
    EVP_PKEY *pkey;
};

struct cv_principals {
    cv_principal *items;
    size_t n;
};

/* ---- small helpers ---- */

/* The key id of a raw public key: 16 hex of its SHA-256. */
static void
cv_principal_key_id(const uint8_t pub[32], char out[CV_KEY_ID_LEN + 1])
{
    uint8_t d[SHA256_DIGEST_LENGTH];

    SHA256(pub, 32, d);
    cv_hex_encode(d, CV_KEY_ID_LEN / 2, out);
}

/* A principal name: 1..64 of [A-Za-z0-9._-]. */
static bool
cv_principal_name_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > CV_PRINCIPAL_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* Parses "a,b,c" into CV_ROLE_* bits; -1 on an unknown name. */
static int
cv_principal_roles(const char *text, unsigned int *roles)
{
    const char *p = text;

    *roles = 0;
    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        unsigned int bit = cv_role_bit(p, len);

        if (bit == 0)
            return -1;
        *roles |= bit;
        p += len;
        if (*p == ',')
            p++;
    }
    return *roles != 0 ? 0 : -1;
}

/* ---- identity ---- */

int
cv_identity_load(const char *path, cv_identity **out, cv_error *err)
{
    FILE *f;
    char line[256];
    char name[CV_PRINCIPAL_NAME_MAX + 2] = "";
    uint8_t seed[32], pub[32];
    bool have_seed = false;
    size_t publen = sizeof(pub);
    cv_identity *id;
    int rv = 0;

    *out = NULL;
    if ((f = fopen(path, "r")) == NULL)
        return cv_error_set(err, CV_INVALID_ARGUMENT,
                            "cannot read RPC key file %s: %s", path,
                            strerror(errno));
    while (fgets(line, sizeof(line), f) != NULL) {
        char *v;

        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '#' || line[0] == '\0')
            continue;
        if (strncmp(line, "principal ", 10) == 0) {
            /* Too long a name fails cv_principal_name_ok below. */
            size_t n = strlen(line + 10);

            if (n >= sizeof(name))
                n = sizeof(name) - 1;
            memcpy(name, line + 10, n);
            name[n] = '\0';
        } else if (strncmp(line, "ed25519-private ", 16) == 0) {
            v = line + 16;
            have_seed = strlen(v) == 64 && cv_hex_decode(v, 32, seed) == 0;
            if (!have_seed)
                break;
        }
    }
    fclose(f);
    OPENSSL_cleanse(line, sizeof(line));
    if (!cv_principal_name_ok(name) || !have_seed) {
        OPENSSL_cleanse(seed, sizeof(seed));
        return cv_error_set(err, CV_INVALID_ARGUMENT,
                            "RPC key file %s needs a 'principal <name>' and an "
                            "'ed25519-private <64 hex>' line",
                            path);
    }
    if ((id = calloc(1, sizeof(*id))) == NULL) {
        OPENSSL_cleanse(seed, sizeof(seed));
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    }
    memcpy(id->name, name, strlen(name) + 1); /* checked: <= 64 */
    id->pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed,
                                            sizeof(seed));
    OPENSSL_cleanse(seed, sizeof(seed));
    if (id->pkey == NULL ||
        EVP_PKEY_get_raw_public_key(id->pkey, pub, &publen) != 1) {
        rv = cv_error_set(err, CV_INVALID_ARGUMENT,
                          "RPC key file %s holds no usable Ed25519 key", path);
        cv_identity_free(id);
        return rv;
    }
    cv_principal_key_id(pub, id->key_id);
    *out = id;
    return 0;
}

void
cv_identity_free(cv_identity *id)
{
    if (id == NULL)
        return;
    EVP_PKEY_free(id->pkey);
    free(id);
}

const char *
cv_identity_name(const cv_identity *id)
{
    return id->name;
}

const char *
cv_identity_key_id(const cv_identity *id)
{
    return id->key_id;
}

int
cv_identity_generate(const char *name, const char *path, const char *roles,
                     bool delegate, char *line, size_t line_len, cv_error *err)
{
    uint8_t seed[32], pub[32];
    char seedhex[65], pubhex[65];
    size_t len = sizeof(seed);
    unsigned int bits;
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *ctx;
    FILE *f;
    int fd, ok;

    if (!cv_principal_name_ok(name))
        return cv_error_set(err, CV_INVALID_ARGUMENT,
                            "principal name must be 1..64 of A-Z a-z 0-9 . _ "
                            "-");
    if (cv_principal_roles(roles, &bits) != 0)
        return cv_error_set(err, CV_INVALID_ARGUMENT,
                            "roles must be a comma-separated list of "
                            "release_manager, platform_owner, executive, "
                            "auditor, service, admin");
    if ((ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL)) == NULL ||
        EVP_PKEY_keygen_init(ctx) != 1 || EVP_PKEY_keygen(ctx, &pkey) != 1 ||
        EVP_PKEY_get_raw_private_key(pkey, seed, &len) != 1 ||
        (len = sizeof(pub), EVP_PKEY_get_raw_public_key(pkey, pub, &len)) !=
            1) {
        EVP_PKEY_CTX_free(ctx);
        EVP_PKEY_free(pkey);
        return cv_error_set(err, CV_INTERNAL, "cannot generate an Ed25519 key");
    }
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    cv_hex_encode(seed, 32, seedhex);
    cv_hex_encode(pub, 32, pubhex);
    OPENSSL_cleanse(seed, sizeof(seed));
    /* O_EXCL: never overwrite a key someone already trusts. */
    if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600)) < 0) {
        OPENSSL_cleanse(seedhex, sizeof(seedhex));
        return cv_error_set(err, CV_FAILED_PRECONDITION, "cannot create %s: %s",
                            path, strerror(errno));
    }
    if ((f = fdopen(fd, "w")) == NULL) {
        close(fd);
        OPENSSL_cleanse(seedhex, sizeof(seedhex));
        return cv_error_set(err, CV_INTERNAL, "cannot write %s", path);
    }
    ok = fprintf(f,
                 "# CAVRA RPC key of principal %s: keep secret (mode 0600)\n"
                 "principal %s\ned25519-private %s\n",
                 name, name, seedhex) > 0;
    OPENSSL_cleanse(seedhex, sizeof(seedhex));
    if (fclose(f) != 0 || !ok)
        return cv_error_set(err, CV_INTERNAL, "cannot write %s", path);
    snprintf(line, line_len, "%s ed25519:%s %s%s", name, pubhex, roles,
             delegate ? " delegate" : "");
    return 0;
}

/* ---- the signing input ---- */

typedef struct cv_sigbuf {
    uint8_t *data;
    size_t len, cap;
    bool failed;
} cv_sigbuf;

static void
cv_sigbuf_put(cv_sigbuf *b, const void *p, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 4 > b->cap) {
        size_t cap = (b->cap + n + 4) * 2;
        uint8_t *d = realloc(b->data, cap);

        if (d == NULL) {
            b->failed = true;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    b->data[b->len++] = (uint8_t)(n >> 24);
    b->data[b->len++] = (uint8_t)(n >> 16);
    b->data[b->len++] = (uint8_t)(n >> 8);
    b->data[b->len++] = (uint8_t)n;
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void
cv_sigbuf_str(cv_sigbuf *b, const char *s)
{
    /* Absent and empty differ: absent is one 0xff byte. */
    if (s == NULL)
        cv_sigbuf_put(b, "\xff", 1);
    else
        cv_sigbuf_put(b, s, strlen(s) + 1);
}

/* Builds the bytes the caller signs (domain CV_ENVELOPE_DOMAIN) or MACs
 * (CV_SESSION_DOMAIN: then the session id comes last). Returns 0, -1 when
 * out of memory; the caller frees b->data. */
static int
cv_envelope_input(const Cv__RpcRequest *env, const char *domain, cv_sigbuf *b)
{
    uint8_t digest[SHA256_DIGEST_LENGTH];
    char deadline[24];

    memset(b, 0, sizeof(*b));
    SHA256(env->has_payload ? env->payload.data : (const uint8_t *)"",
           env->has_payload ? env->payload.len : 0, digest);
    snprintf(deadline, sizeof(deadline), "%lld",
             env->has_deadline_unix_ms ? (long long)env->deadline_unix_ms : -1);
    cv_sigbuf_str(b, domain);
    cv_sigbuf_str(b, env->method);
    cv_sigbuf_str(b, env->request_id);
    cv_sigbuf_str(b, deadline);
    if (env->actor == NULL) {
        cv_sigbuf_str(b, NULL);
    } else {
        cv_sigbuf_str(b, "actor");
        cv_sigbuf_str(b, env->actor->actor);
        cv_sigbuf_str(b, env->actor->subject);
        for (size_t i = 0; i < env->actor->n_roles; i++)
            cv_sigbuf_str(b, env->actor->roles[i]);
        cv_sigbuf_str(b, NULL); /* end of roles */
    }
    cv_sigbuf_str(b, env->idempotency_key);
    cv_sigbuf_put(b, digest, sizeof(digest));
    cv_sigbuf_str(b, env->key_id);
    cv_sigbuf_str(b, env->nonce);
    if (strcmp(domain, CV_SESSION_DOMAIN) == 0) {
        cv_sigbuf_put(b, env->session_id.data,
                      env->has_session_id ? env->session_id.len : 0);
    } else if (env->has_session_offer) {
        /* Only when present: an envelope without an offer has the same
         * signing input as before sessions existed. */
        cv_sigbuf_put(b, env->session_offer.data, env->session_offer.len);
    }
    if (b->failed) {
        free(b->data);
        b->data = NULL;
        return -1;
    }
    return 0;
}

int
cv_envelope_sign(const cv_identity *id, Cv__RpcRequest *env,
                 cv_envelope_sig_buf *buf, cv_error *err)
{
    uint8_t nonce[16];
    cv_sigbuf b;
    EVP_MD_CTX *md;
    size_t siglen = sizeof(buf->sig);
    int ok;

    if (RAND_bytes(nonce, sizeof(nonce)) != 1)
        return cv_error_set(err, CV_INTERNAL, "no randomness for a nonce");
    cv_hex_encode(nonce, sizeof(nonce), buf->nonce);
    snprintf(buf->key_id, sizeof(buf->key_id), "%s", id->key_id);
    env->key_id = buf->key_id;
    env->nonce = buf->nonce;
    env->has_signature = 0;
    env->has_session_id = 0;
    env->has_session_mac = 0;
    if (cv_envelope_input(env, CV_ENVELOPE_DOMAIN, &b) != 0)
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    md = EVP_MD_CTX_new();
    ok = md != NULL &&
         EVP_DigestSignInit(md, NULL, NULL, NULL, id->pkey) == 1 &&
         EVP_DigestSign(md, buf->sig, &siglen, b.data, b.len) == 1 &&
         siglen == sizeof(buf->sig);
    EVP_MD_CTX_free(md);
    free(b.data);
    if (!ok)
        return cv_error_set(err, CV_INTERNAL, "cannot sign the envelope");
    env->has_signature = 1;
    env->signature.data = buf->sig;
    env->signature.len = sizeof(buf->sig);
    return 0;
}

/* ---- principals ---- */

int
cv_principals_load(const char *path, cv_principals **out, cv_error *err)
{
    FILE *f;
    char line[512];
    int lineno = 0, rv = 0;
    cv_principals *p;

    *out = NULL;
    if ((f = fopen(path, "r")) == NULL)
        return cv_error_set(err, CV_INVALID_ARGUMENT,
                            "cannot read principals file %s: %s", path,
                            strerror(errno));
    if ((p = calloc(1, sizeof(*p))) == NULL) {
        fclose(f);
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        char *save = NULL, *name, *key, *roles, *flag, *extra;
        cv_principal pr;
        uint8_t pub[32];
        cv_principal *grown;

        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        name = strtok_r(line, " \t", &save);
        if (name == NULL || name[0] == '#')
            continue;
        key = strtok_r(NULL, " \t", &save);
        roles = strtok_r(NULL, " \t", &save);
        flag = strtok_r(NULL, " \t", &save);
        extra = strtok_r(NULL, " \t", &save);
        memset(&pr, 0, sizeof(pr));
        if (!cv_principal_name_ok(name) || key == NULL || roles == NULL ||
            extra != NULL || (flag != NULL && strcmp(flag, "delegate") != 0) ||
            strncmp(key, "ed25519:", 8) != 0 || strlen(key + 8) != 64 ||
            cv_hex_decode(key + 8, 32, pub) != 0 ||
            cv_principal_roles(roles, &pr.roles) != 0) {
            rv = cv_error_set(err, CV_INVALID_ARGUMENT,
                              "principals file %s line %d: expected '<name> "
                              "ed25519:<64 hex> <role>[,<role>...] "
                              "[delegate]'",
                              path, lineno);
            break;
        }
        snprintf(pr.name, sizeof(pr.name), "%s", name);
        pr.delegate = flag != NULL;
        cv_principal_key_id(pub, pr.key_id);
        for (size_t i = 0; i < p->n; i++) {
            if (strcmp(p->items[i].key_id, pr.key_id) == 0 ||
                strcmp(p->items[i].name, pr.name) == 0) {
                rv = cv_error_set(err, CV_INVALID_ARGUMENT,
                                  "principals file %s line %d: principal or "
                                  "key listed twice",
                                  path, lineno);
                break;
            }
        }
        if (rv != 0)
            break;
        pr.pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
        grown = realloc(p->items, (p->n + 1) * sizeof(*grown));
        if (pr.pkey == NULL || grown == NULL) {
            EVP_PKEY_free(pr.pkey);
            if (grown != NULL)
                p->items = grown;
            rv = cv_error_set(err, CV_INTERNAL, "out of memory");
            break;
        }
        p->items = grown;
        p->items[p->n++] = pr;
    }
    fclose(f);
    if (rv == 0 && p->n == 0)
        rv = cv_error_set(err, CV_INVALID_ARGUMENT,
                          "principals file %s lists no principal", path);
    if (rv != 0) {
        cv_principals_free(p);
        return rv;
    }
    *out = p;
    return 0;
}

void
cv_principals_free(cv_principals *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n; i++)
        EVP_PKEY_free(p->items[i].pkey);
    free(p->items);
    free(p);
}

size_t
cv_principals_count(const cv_principals *p)
{
    return p != NULL ? p->n : 0;
}

int
cv_envelope_verify(const cv_principals *p, const Cv__RpcRequest *env,
                   int64_t now_ms, const cv_principal **who, cv_error *err)
{
    const cv_principal *pr = NULL;
    cv_sigbuf b;
    EVP_MD_CTX *md;
    int ok;

    *who = NULL;
    if (!env->has_signature || env->signature.len != 64 ||
        env->key_id == NULL || env->nonce == NULL)
        return cv_error_set(err, CV_UNAUTHENTICATED,
                            "the RPC envelope is not signed");
    for (size_t i = 0; i < p->n && pr == NULL; i++)
        if (strcmp(p->items[i].key_id, env->key_id) == 0)
            pr = &p->items[i];
    if (pr == NULL)
        return cv_error_set(err, CV_UNAUTHENTICATED,
                            "the RPC envelope is signed by an unknown key");
    if (cv_envelope_input(env, CV_ENVELOPE_DOMAIN, &b) != 0)
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    md = EVP_MD_CTX_new();
    ok =
        md != NULL &&
        EVP_DigestVerifyInit(md, NULL, NULL, NULL, (EVP_PKEY *)pr->pkey) == 1 &&
        EVP_DigestVerify(md, env->signature.data, env->signature.len, b.data,
                         b.len) == 1;
    EVP_MD_CTX_free(md);
    free(b.data);
    if (!ok)
        return cv_error_set(err, CV_UNAUTHENTICATED,
                            "the RPC envelope's signature does not verify");
    if (!env->has_deadline_unix_ms || env->deadline_unix_ms < now_ms ||
        env->deadline_unix_ms > now_ms + CV_ENVELOPE_MAX_AHEAD_MS)
        return cv_error_set(err, CV_UNAUTHENTICATED,
                            "the RPC envelope's deadline is in the past or "
                            "more than 5 minutes ahead");
    *who = pr;
    return 0;
}

/* ---- expiring tables: the replay cache and the sessions ---- */

#define CV_TABLE_BUCKETS 4096

/* The head of every entry of an expiring table: its first member, so a
 * head points at its entry too. */
typedef struct cv_expiring {
    struct cv_expiring *next;
    int64_t expires_ms;
} cv_expiring;

/* Chained buckets under one lock, at most max entries; entries are freed
 * with free_entry. */
typedef struct cv_expiring_table {
    pthread_mutex_t mtx;
    cv_expiring *buckets[CV_TABLE_BUCKETS];
    size_t n, max;
    void (*free_entry)(cv_expiring *);
} cv_expiring_table;

static void
cv_table_init(cv_expiring_table *t, size_t max,
              void (*free_entry)(cv_expiring *))
{
    pthread_mutex_init(&t->mtx, NULL);
    t->max = max;
    t->free_entry = free_entry;
}

/* Drops the entries of bucket b that expired before now_ms; under the
 * lock. */
static void
cv_table_sweep_bucket(cv_expiring_table *t, size_t b, int64_t now_ms)
{
    cv_expiring **pp = &t->buckets[b], *e;

    while ((e = *pp) != NULL) {
        if (e->expires_ms < now_ms) {
            *pp = e->next;
            t->free_entry(e);
            t->n--;
        } else {
            pp = &e->next;
        }
    }
}

static void
cv_table_sweep(cv_expiring_table *t, int64_t now_ms)
{
    for (size_t b = 0; b < CV_TABLE_BUCKETS; b++)
        cv_table_sweep_bucket(t, b, now_ms);
}

static void
cv_table_fini(cv_expiring_table *t)
{
    for (size_t b = 0; b < CV_TABLE_BUCKETS; b++) {
        while (t->buckets[b] != NULL) {
            cv_expiring *e = t->buckets[b];

            t->buckets[b] = e->next;
            t->free_entry(e);
        }
    }
    pthread_mutex_destroy(&t->mtx);
}

/* Adds e to bucket b; under the lock, the caller has checked n < max. */
static void
cv_table_add(cv_expiring_table *t, size_t b, cv_expiring *e)
{
    e->next = t->buckets[b];
    t->buckets[b] = e;
    t->n++;
}

static void
cv_table_free_plain(cv_expiring *e)
{
    free(e);
}

typedef struct cv_replay_entry {
    cv_expiring head;
    char id[CV_KEY_ID_LEN + 1 + 33];
} cv_replay_entry;

struct cv_replay_cache {
    cv_expiring_table t;
};

cv_replay_cache *
cv_replay_cache_new(size_t max_entries)
{
    cv_replay_cache *c = calloc(1, sizeof(*c));

    if (c != NULL)
        cv_table_init(&c->t, max_entries, cv_table_free_plain);
    return c;
}

void
cv_replay_cache_free(cv_replay_cache *c)
{
    if (c == NULL)
        return;
    cv_table_fini(&c->t);
    free(c);
}

int
cv_replay_check(cv_replay_cache *c, const char *key_id, const char *nonce,
                int64_t expires_ms, int64_t now_ms, cv_error *err)
{
    char id[CV_KEY_ID_LEN + 1 + 33];
    uint32_t h = 2166136261u; /* FNV-1a: the nonce is already random */
    cv_replay_entry *e;
    size_t b;
    int rv = 0;

    snprintf(id, sizeof(id), "%s/%s", key_id, nonce);
    for (const char *s = id; *s != '\0'; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    b = h % CV_TABLE_BUCKETS;
    pthread_mutex_lock(&c->t.mtx);
    /* Expired entries of this bucket go before it is searched. */
    cv_table_sweep_bucket(&c->t, b, now_ms);
    for (cv_expiring *x = c->t.buckets[b]; x != NULL; x = x->next) {
        if (strcmp(((cv_replay_entry *)x)->id, id) == 0) {
            rv = cv_error_set(err, CV_UNAUTHENTICATED,
                              "the RPC envelope was already used (replay)");
            goto out;
        }
    }
    if (c->t.n >= c->t.max) {
        rv = cv_error_set(err, CV_RESOURCE_EXHAUSTED,
                          "too many RPCs in flight; retry");
        goto out;
    }
    if ((e = malloc(sizeof(*e))) == NULL) {
        rv = cv_error_set(err, CV_INTERNAL, "out of memory");
        goto out;
    }
    e->head.expires_ms = expires_ms;
    memcpy(e->id, id, sizeof(id));
    cv_table_add(&c->t, b, &e->head);
out:
    pthread_mutex_unlock(&c->t.mtx);
    return rv;
}

/* ---- sessions ---- */

/* HKDF-SHA256 (RFC 5869) with an empty salt, 32 bytes out. */
static int
cv_session_hkdf(const uint8_t *ikm, size_t ikm_len, const uint8_t *info,
                size_t info_len, uint8_t out[CV_SESSION_KEY_LEN])
{
    static const uint8_t zero_salt[32];
    uint8_t prk[32], t[256 + 1];
    unsigned int len = 0;
    int ok;

    if (info_len + 1 > sizeof(t))
        return -1;
    ok = HMAC(EVP_sha256(), zero_salt, sizeof(zero_salt), ikm, ikm_len, prk,
              &len) != NULL &&
         len == sizeof(prk);
    memcpy(t, info, info_len);
    t[info_len] = 0x01;
    ok = ok &&
         HMAC(EVP_sha256(), prk, sizeof(prk), t, info_len + 1, out, &len) !=
             NULL &&
         len == CV_SESSION_KEY_LEN;
    OPENSSL_cleanse(prk, sizeof(prk));
    return ok ? 0 : -1;
}

/*
 * The session key both sides derive: HKDF over the X25519 secret, bound
 * to the caller's key id, both public keys and the session id, so a key
 * belongs to one caller, one service process and one session.
 */
static int
cv_session_derive(EVP_PKEY *mine, const uint8_t peer_pub[32],
                  const char *key_id, const uint8_t client_pub[32],
                  const uint8_t service_pub[32],
                  const uint8_t id[CV_SESSION_ID_LEN],
                  uint8_t key[CV_SESSION_KEY_LEN])
{
    EVP_PKEY *peer =
        EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer_pub, 32);
    EVP_PKEY_CTX *ctx = peer != NULL ? EVP_PKEY_CTX_new(mine, NULL) : NULL;
    uint8_t shared[32], info[160];
    size_t len = sizeof(shared), n = 0, klen = strlen(key_id);
    int ok;

    /* OpenSSL refuses an all-zero result (a low-order peer key). */
    ok = ctx != NULL && EVP_PKEY_derive_init(ctx) == 1 &&
         EVP_PKEY_derive_set_peer(ctx, peer) == 1 &&
         EVP_PKEY_derive(ctx, shared, &len) == 1 && len == sizeof(shared);
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(peer);
    if (ok && klen <= CV_KEY_ID_LEN) {
        memcpy(info, CV_SESSION_DOMAIN, sizeof(CV_SESSION_DOMAIN));
        n = sizeof(CV_SESSION_DOMAIN);
        memcpy(info + n, key_id, klen + 1);
        n += klen + 1;
        memcpy(info + n, client_pub, 32);
        n += 32;
        memcpy(info + n, service_pub, 32);
        n += 32;
        memcpy(info + n, id, CV_SESSION_ID_LEN);
        n += CV_SESSION_ID_LEN;
        ok = cv_session_hkdf(shared, sizeof(shared), info, n, key) == 0;
    } else {
        ok = 0;
    }
    OPENSSL_cleanse(shared, sizeof(shared));
    return ok ? 0 : -1;
}

/* A fresh X25519 key pair. */
static EVP_PKEY *
cv_session_keypair(uint8_t pub[32])
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, NULL);
    EVP_PKEY *pkey = NULL;
    size_t len = 32;

    if (ctx == NULL || EVP_PKEY_keygen_init(ctx) != 1 ||
        EVP_PKEY_keygen(ctx, &pkey) != 1 ||
        EVP_PKEY_get_raw_public_key(pkey, pub, &len) != 1 || len != 32) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    return pkey;
}

int
cv_session_offer_new(cv_session_offer *o, cv_error *err)
{
    if ((o->pkey = cv_session_keypair(o->pub)) == NULL)
        return cv_error_set(err, CV_INTERNAL, "cannot make a session key");
    return 0;
}

void
cv_session_offer_free(cv_session_offer *o)
{
    if (o == NULL)
        return;
    EVP_PKEY_free(o->pkey);
    o->pkey = NULL;
}

int
cv_session_accept(const cv_session_offer *o, const char *key_id,
                  const uint8_t *session_id, size_t id_len,
                  const uint8_t *service_pub, size_t pub_len,
                  uint8_t key[CV_SESSION_KEY_LEN], cv_error *err)
{
    if (o->pkey == NULL || session_id == NULL || service_pub == NULL ||
        id_len != CV_SESSION_ID_LEN || pub_len != 32 ||
        cv_session_derive(o->pkey, service_pub, key_id, o->pub, service_pub,
                          session_id, key) != 0)
        return cv_error_set(err, CV_UNAUTHENTICATED,
                            "the service's session answer is unusable");
    return 0;
}

/* HMAC-SHA256 with the algorithm looked up once: HMAC() fetches it on
 * every call, 3 of its 4 us per envelope (issue 12); a copy of this
 * context only takes the key. */
static EVP_MAC_CTX *cv_session_hmac;
static pthread_once_t cv_session_hmac_once = PTHREAD_ONCE_INIT;

static void
cv_session_hmac_init(void)
{
    EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(
                               OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
                           OSSL_PARAM_construct_end()};

    if (m != NULL && (cv_session_hmac = EVP_MAC_CTX_new(m)) != NULL &&
        EVP_MAC_CTX_set_params(cv_session_hmac, params) != 1) {
        EVP_MAC_CTX_free(cv_session_hmac);
        cv_session_hmac = NULL;
    }
    EVP_MAC_free(m); /* the context keeps its own reference */
}

/* HMAC-SHA256 of env's session input under key. */
static int
cv_session_mac_of(const uint8_t key[CV_SESSION_KEY_LEN],
                  const Cv__RpcRequest *env, uint8_t mac[32])
{
    EVP_MAC_CTX *c = NULL;
    cv_sigbuf b;
    size_t len = 0;
    int ok;

    pthread_once(&cv_session_hmac_once, cv_session_hmac_init);
    if (cv_session_hmac == NULL ||
        cv_envelope_input(env, CV_SESSION_DOMAIN, &b) != 0)
        return -1;
    ok = (c = EVP_MAC_CTX_dup(cv_session_hmac)) != NULL &&
         EVP_MAC_init(c, key, CV_SESSION_KEY_LEN, NULL) == 1 &&
         EVP_MAC_update(c, b.data, b.len) == 1 &&
         EVP_MAC_final(c, mac, &len, 32) == 1 && len == 32;
    EVP_MAC_CTX_free(c);
    free(b.data);
    return ok ? 0 : -1;
}

int
cv_envelope_mac(const char *key_id, const uint8_t key[CV_SESSION_KEY_LEN],
                const uint8_t session_id[CV_SESSION_ID_LEN],
                Cv__RpcRequest *env, cv_envelope_sig_buf *buf, cv_error *err)
{
    uint8_t nonce[16];

    if (RAND_bytes(nonce, sizeof(nonce)) != 1)
        return cv_error_set(err, CV_INTERNAL, "no randomness for a nonce");
    cv_hex_encode(nonce, sizeof(nonce), buf->nonce);
    snprintf(buf->key_id, sizeof(buf->key_id), "%s", key_id);
    env->key_id = buf->key_id;
    env->nonce = buf->nonce;
    env->has_signature = 0;
    env->has_session_offer = 0;
    env->has_session_id = 1;
    env->session_id.data = (uint8_t *)session_id;
    env->session_id.len = CV_SESSION_ID_LEN;
    env->has_session_mac = 0;
    if (cv_session_mac_of(key, env, buf->mac) != 0)
        return cv_error_set(err, CV_INTERNAL,
                            "cannot authenticate the "
                            "envelope");
    env->has_session_mac = 1;
    env->session_mac.data = buf->mac;
    env->session_mac.len = sizeof(buf->mac);
    return 0;
}

typedef struct cv_session_entry {
    cv_expiring head;
    const cv_principal *who;
    uint8_t id[CV_SESSION_ID_LEN];
    uint8_t key[CV_SESSION_KEY_LEN];
} cv_session_entry;

struct cv_session_store {
    cv_expiring_table t;
};

static void
cv_session_entry_free(cv_session_entry *e)
{
    OPENSSL_cleanse(e->key, sizeof(e->key));
    free(e);
}

static void
cv_session_entry_release(cv_expiring *e)
{
    cv_session_entry_free((cv_session_entry *)e);
}

cv_session_store *
cv_session_store_new(size_t max_sessions)
{
    cv_session_store *s = calloc(1, sizeof(*s));

    if (s != NULL)
        cv_table_init(&s->t, max_sessions, cv_session_entry_release);
    return s;
}

void
cv_session_store_free(cv_session_store *s)
{
    if (s == NULL)
        return;
    cv_table_fini(&s->t);
    free(s);
}

/* The bucket of a session id (random: its first bytes are a fine hash). */
static size_t
cv_session_bucket(const uint8_t *id)
{
    return ((size_t)id[0] << 8 | id[1]) % CV_TABLE_BUCKETS;
}

int
cv_session_grant(cv_session_store *s, const cv_principal *who,
                 const Cv__RpcRequest *env, int64_t now_ms,
                 uint8_t id[CV_SESSION_ID_LEN], uint8_t pub[32], cv_error *err)
{
    cv_session_entry *e;
    EVP_PKEY *mine;
    int rv = 0;

    if (!env->has_session_offer || env->session_offer.len != 32)
        return cv_error_set(err, CV_INVALID_ARGUMENT,
                            "session_offer must be 32 bytes");
    if ((e = calloc(1, sizeof(*e))) == NULL)
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    if (RAND_bytes(e->id, sizeof(e->id)) != 1 ||
        (mine = cv_session_keypair(pub)) == NULL) {
        free(e);
        return cv_error_set(err, CV_INTERNAL, "cannot make a session key");
    }
    rv = cv_session_derive(mine, env->session_offer.data, who->key_id,
                           env->session_offer.data, pub, e->id, e->key);
    /* The service's half is used once: only the derived key is kept. */
    EVP_PKEY_free(mine);
    if (rv != 0) {
        cv_session_entry_free(e);
        return cv_error_set(err, CV_INVALID_ARGUMENT,
                            "session_offer is not a usable X25519 key");
    }
    e->who = who;
    e->head.expires_ms = now_ms + CV_SESSION_TTL_MS;
    memcpy(id, e->id, sizeof(e->id));
    pthread_mutex_lock(&s->t.mtx);
    if (s->t.n >= s->t.max)
        cv_table_sweep(&s->t, now_ms);
    if (s->t.n >= s->t.max) {
        pthread_mutex_unlock(&s->t.mtx);
        cv_session_entry_free(e);
        return cv_error_set(err, CV_RESOURCE_EXHAUSTED,
                            "too many sessions; keep signing");
    }
    cv_table_add(&s->t, cv_session_bucket(e->id), &e->head);
    pthread_mutex_unlock(&s->t.mtx);
    return 0;
}

int
cv_session_verify(cv_session_store *s, const Cv__RpcRequest *env,
                  int64_t now_ms, const cv_principal **who, bool *unknown,
                  cv_error *err)
{
    cv_session_entry *e;
    const cv_principal *pr = NULL;
    uint8_t key[CV_SESSION_KEY_LEN], mac[32];
    int ok;

    *who = NULL;
    *unknown = false;
    if (!env->has_session_id || env->session_id.len != CV_SESSION_ID_LEN ||
        !env->has_session_mac || env->session_mac.len != 32 ||
        env->key_id == NULL || env->nonce == NULL)
        return cv_error_set(err, CV_UNAUTHENTICATED,
                            "the RPC envelope is not signed");
    pthread_mutex_lock(&s->t.mtx);
    for (cv_expiring *x = s->t.buckets[cv_session_bucket(env->session_id.data)];
         x != NULL; x = x->next) {
        e = (cv_session_entry *)x;
        if (e->head.expires_ms >= now_ms &&
            CRYPTO_memcmp(e->id, env->session_id.data, sizeof(e->id)) == 0) {
            pr = e->who;
            memcpy(key, e->key, sizeof(key));
            break;
        }
    }
    pthread_mutex_unlock(&s->t.mtx);
    if (pr == NULL) {
        *unknown = true;
        return cv_error_set(err, CV_UNAUTHENTICATED,
                            "the RPC envelope names an unknown session");
    }
    /* A session is its principal's: another key id cannot borrow it. */
    if (strcmp(pr->key_id, env->key_id) != 0) {
        OPENSSL_cleanse(key, sizeof(key));
        return cv_error_set(err, CV_UNAUTHENTICATED,
                            "the RPC envelope's session belongs to another "
                            "principal");
    }
    ok = cv_session_mac_of(key, env, mac) == 0 &&
         CRYPTO_memcmp(mac, env->session_mac.data, sizeof(mac)) == 0;
    OPENSSL_cleanse(key, sizeof(key));
    if (!ok)
        return cv_error_set(err, CV_UNAUTHENTICATED,
                            "the RPC envelope's session MAC does not verify");
    if (!env->has_deadline_unix_ms || env->deadline_unix_ms < now_ms ||
        env->deadline_unix_ms > now_ms + CV_ENVELOPE_MAX_AHEAD_MS)
        return cv_error_set(err, CV_UNAUTHENTICATED,
                            "the RPC envelope's deadline is in the past or "
                            "more than 5 minutes ahead");
    *who = pr;
    return 0;
}
