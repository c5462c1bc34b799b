/*
 * cv_principal.c -- caller keys, the principals file, envelope signatures
 * and the replay cache (see cv_principal.h).
 */
#include "cv_principal.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
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

/* Builds the bytes the caller signs. Returns 0, -1 when out of memory;
 * the caller frees b->data. */
static int
cv_envelope_input(const Cv__RpcRequest *env, cv_sigbuf *b)
{
    uint8_t digest[SHA256_DIGEST_LENGTH];
    char deadline[24];

    memset(b, 0, sizeof(*b));
    SHA256(env->has_payload ? env->payload.data : (const uint8_t *)"",
           env->has_payload ? env->payload.len : 0, digest);
    snprintf(deadline, sizeof(deadline), "%lld",
             env->has_deadline_unix_ms ? (long long)env->deadline_unix_ms : -1);
    cv_sigbuf_str(b, CV_ENVELOPE_DOMAIN);
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
    if (cv_envelope_input(env, &b) != 0)
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
    if (cv_envelope_input(env, &b) != 0)
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

/* ---- replay cache ---- */

#define CV_REPLAY_BUCKETS 4096

typedef struct cv_replay_entry {
    struct cv_replay_entry *next;
    int64_t expires_ms;
    char id[CV_KEY_ID_LEN + 1 + 33];
} cv_replay_entry;

struct cv_replay_cache {
    pthread_mutex_t mtx;
    cv_replay_entry *buckets[CV_REPLAY_BUCKETS];
    size_t n, max;
};

cv_replay_cache *
cv_replay_cache_new(size_t max_entries)
{
    cv_replay_cache *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    pthread_mutex_init(&c->mtx, NULL);
    c->max = max_entries;
    return c;
}

void
cv_replay_cache_free(cv_replay_cache *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < CV_REPLAY_BUCKETS; i++) {
        while (c->buckets[i] != NULL) {
            cv_replay_entry *e = c->buckets[i];

            c->buckets[i] = e->next;
            free(e);
        }
    }
    pthread_mutex_destroy(&c->mtx);
    free(c);
}

int
cv_replay_check(cv_replay_cache *c, const char *key_id, const char *nonce,
                int64_t expires_ms, int64_t now_ms, cv_error *err)
{
    char id[CV_KEY_ID_LEN + 1 + 33];
    uint32_t h = 2166136261u; /* FNV-1a: the nonce is already random */
    cv_replay_entry **pp, *e;
    int rv = 0;

    snprintf(id, sizeof(id), "%s/%s", key_id, nonce);
    for (const char *s = id; *s != '\0'; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    pthread_mutex_lock(&c->mtx);
    /* Expired entries of this bucket go as we pass them. */
    for (pp = &c->buckets[h % CV_REPLAY_BUCKETS]; (e = *pp) != NULL;) {
        if (e->expires_ms < now_ms) {
            *pp = e->next;
            free(e);
            c->n--;
            continue;
        }
        if (strcmp(e->id, id) == 0) {
            rv = cv_error_set(err, CV_UNAUTHENTICATED,
                              "the RPC envelope was already used (replay)");
            goto out;
        }
        pp = &e->next;
    }
    if (c->n >= c->max) {
        rv = cv_error_set(err, CV_RESOURCE_EXHAUSTED,
                          "too many RPCs in flight; retry");
        goto out;
    }
    if ((e = malloc(sizeof(*e))) == NULL) {
        rv = cv_error_set(err, CV_INTERNAL, "out of memory");
        goto out;
    }
    e->expires_ms = expires_ms;
    memcpy(e->id, id, sizeof(id));
    e->next = c->buckets[h % CV_REPLAY_BUCKETS];
    c->buckets[h % CV_REPLAY_BUCKETS] = e;
    c->n++;
out:
    pthread_mutex_unlock(&c->mtx);
    return rv;
}
