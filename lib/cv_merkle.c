/*
 * cv_merkle.c -- RFC 6962 / RFC 9162 Merkle tree math over perfect
 * subtrees (see cv_merkle.h for the design notes).
 *
 * Every hash a root or a proof needs is the Merkle tree hash of a range
 * of leaves [lo, hi) that the RFC's recursion produces. Such a range
 * always starts at a multiple of the smallest power of two >= its length,
 * so it splits, largest first, into aligned perfect subtrees (one per set
 * bit of its length) whose hashes fold right to left into the range's
 * hash. A root or a proof therefore lists its ranges, reads all their
 * perfect subtrees in one batch, then folds: one round trip whatever the
 * storage.
 */
#include "cv_merkle.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

/* SHA-256 of the empty string: the root of the empty tree (RFC 6962
 * 2.1). */
static const cv_merkle_hash cv_merkle_empty = {
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4,
    0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b,
    0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55};

/* A range of leaves [lo, hi) whose Merkle tree hash a proof needs. */
typedef struct cv_merkle_range {
    int64_t lo;
    int64_t hi;
} cv_merkle_range;

/* SHA-256, fetched once: EVP_sha256() makes every EVP_DigestInit_ex look
 * the algorithm up again, which costs more than hashing 65 bytes. */
static EVP_MD *cv_merkle_md;
static pthread_once_t cv_merkle_md_once = PTHREAD_ONCE_INIT;

static void
cv_merkle_md_init(void)
{
    cv_merkle_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* SHA-256(tag || a || b). A failing digest (out of memory) yields all
 * zero bytes, which never matches a real hash, so a verifier fails
 * closed. */
static void
cv_merkle_sha256(uint8_t tag, const void *a, size_t alen, const void *b,
                 size_t blen, cv_merkle_hash out)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int n = CV_MERKLE_HASH_LEN;

    pthread_once(&cv_merkle_md_once, cv_merkle_md_init);
    if (ctx == NULL || cv_merkle_md == NULL ||
        EVP_DigestInit_ex(ctx, cv_merkle_md, NULL) != 1 ||
        EVP_DigestUpdate(ctx, &tag, 1) != 1 ||
        (alen > 0 && EVP_DigestUpdate(ctx, a, alen) != 1) ||
        (blen > 0 && EVP_DigestUpdate(ctx, b, blen) != 1) ||
        EVP_DigestFinal_ex(ctx, out, &n) != 1)
        memset(out, 0, CV_MERKLE_HASH_LEN);
    EVP_MD_CTX_free(ctx);
}

void
cv_merkle_leaf_hash(const void *data, size_t len, cv_merkle_hash out)
{
    cv_merkle_sha256(0x00, data, len, NULL, 0, out);
}

void
cv_merkle_node_hash(const cv_merkle_hash left, const cv_merkle_hash right,
                    cv_merkle_hash out)
{
    cv_merkle_hash l, r;

    /* Copies: out may alias left or right. */
    memcpy(l, left, CV_MERKLE_HASH_LEN);
    memcpy(r, right, CV_MERKLE_HASH_LEN);
    cv_merkle_sha256(0x01, l, CV_MERKLE_HASH_LEN, r, CV_MERKLE_HASH_LEN, out);
}

/* The largest power of two strictly below n (n >= 2). */
static int64_t
cv_merkle_split(int64_t n)
{
    int64_t k = 1;

    while (k < n - k) /* k * 2 < n without overflow */
        k <<= 1;
    return k;
}

/* The aligned perfect subtrees of [lo, hi), largest (leftmost) first,
 * into out; returns their count (at most 63). */
static int
cv_merkle_range_nodes(int64_t lo, int64_t hi, cv_merkle_node *out)
{
    int n = 0;

    for (int level = 62; level >= 0; level--) {
        int64_t width = (int64_t)1 << level;

        if ((hi - lo) & width) {
            out[n].level = level;
            out[n].index = lo >> level;
            n++;
            lo += width;
        }
    }
    return n;
}

/* Folds the hashes of a range's perfect subtrees, right to left, into the
 * range's hash (count >= 1). */
static void
cv_merkle_fold(const cv_merkle_hash *hashes, int count, cv_merkle_hash out)
{
    cv_merkle_hash h;

    memcpy(h, hashes[count - 1], CV_MERKLE_HASH_LEN);
    for (int i = count - 2; i >= 0; i--)
        cv_merkle_node_hash(hashes[i], h, h);
    memcpy(out, h, CV_MERKLE_HASH_LEN);
}

/*
 * Reads the perfect subtrees of every range in one batch and writes the
 * hash of range i to out[i]. Returns 0 or -1 (read failed, out of
 * memory).
 */
static int
cv_merkle_read_ranges(const cv_merkle_range *ranges, size_t count,
                      cv_merkle_read_fn read, void *arg, cv_merkle_hash *out)
{
    cv_merkle_node *nodes = NULL;
    cv_merkle_hash *hashes = NULL;
    int *per = NULL;
    size_t total = 0;
    int rv = -1;

    if (count == 0)
        return 0;
    nodes = malloc(count * 63 * sizeof(*nodes));
    per = malloc(count * sizeof(*per));
    if (nodes == NULL || per == NULL)
        goto done;
    for (size_t i = 0; i < count; i++) {
        per[i] =
            cv_merkle_range_nodes(ranges[i].lo, ranges[i].hi, nodes + total);
        total += (size_t)per[i];
    }
    if ((hashes = malloc(total * sizeof(*hashes))) == NULL)
        goto done;
    if (read(arg, nodes, total, hashes) != 0)
        goto done;
    total = 0;
    for (size_t i = 0; i < count; i++) {
        cv_merkle_fold(hashes + total, per[i], out[i]);
        total += (size_t)per[i];
    }
    rv = 0;
done:
    free(nodes);
    free(hashes);
    free(per);
    return rv;
}

int
cv_merkle_root(int64_t size, cv_merkle_read_fn read, void *arg,
               cv_merkle_hash root)
{
    cv_merkle_range whole = {0, size};

    if (size < 0 || read == NULL)
        return -1;
    if (size == 0) {
        memcpy(root, cv_merkle_empty, CV_MERKLE_HASH_LEN);
        return 0;
    }
    return cv_merkle_read_ranges(&whole, 1, read, arg, (cv_merkle_hash *)root);
}

/* RFC 9162 2.1.3.1 PATH(m, D[lo:hi]): the sibling ranges of leaf m,
 * bottom up, appended to out (capacity 64: one per level). */
static void
cv_merkle_path_ranges(int64_t m, int64_t lo, int64_t hi, cv_merkle_range *out,
                      size_t *n)
{
    int64_t k;

    if (hi - lo <= 1)
        return;
    k = cv_merkle_split(hi - lo);
    if (m < k) {
        cv_merkle_path_ranges(m, lo, lo + k, out, n);
        out[(*n)++] = (cv_merkle_range){lo + k, hi};
    } else {
        cv_merkle_path_ranges(m - k, lo + k, hi, out, n);
        out[(*n)++] = (cv_merkle_range){lo, lo + k};
    }
}

/* RFC 9162 2.1.4.1 SUBPROOF(m, D[lo:hi], b). */
static void
cv_merkle_subproof_ranges(int64_t m, int64_t lo, int64_t hi, bool b,
                          cv_merkle_range *out, size_t *n)
{
    int64_t k;

    if (m == hi - lo) {
        if (!b)
            out[(*n)++] = (cv_merkle_range){lo, hi};
        return;
    }
    k = cv_merkle_split(hi - lo);
    if (m <= k) {
        cv_merkle_subproof_ranges(m, lo, lo + k, b, out, n);
        out[(*n)++] = (cv_merkle_range){lo + k, hi};
    } else {
        cv_merkle_subproof_ranges(m - k, lo + k, hi, false, out, n);
        out[(*n)++] = (cv_merkle_range){lo, lo + k};
    }
}

/* Reads the proof's ranges into proof (at most max). */
static int
cv_merkle_read_proof(const cv_merkle_range *ranges, size_t n,
                     cv_merkle_read_fn read, void *arg, cv_merkle_hash *proof,
                     size_t max, size_t *len)
{
    if (n > max)
        return -1;
    if (cv_merkle_read_ranges(ranges, n, read, arg, proof) != 0)
        return -1;
    *len = n;
    return 0;
}

int
cv_merkle_prove_inclusion(int64_t index, int64_t size, cv_merkle_read_fn read,
                          void *arg, cv_merkle_hash *proof, size_t max,
                          size_t *len)
{
    cv_merkle_range ranges[CV_MERKLE_MAX_PROOF];
    size_t n = 0;

    if (index < 0 || size <= 0 || index >= size || read == NULL || len == NULL)
        return -1;
    cv_merkle_path_ranges(index, 0, size, ranges, &n);
    return cv_merkle_read_proof(ranges, n, read, arg, proof, max, len);
}

int
cv_merkle_prove_consistency(int64_t old_size, int64_t new_size,
                            cv_merkle_read_fn read, void *arg,
                            cv_merkle_hash *proof, size_t max, size_t *len)
{
    cv_merkle_range ranges[CV_MERKLE_MAX_PROOF];
    size_t n = 0;

    if (old_size <= 0 || new_size < old_size || read == NULL || len == NULL)
        return -1;
    cv_merkle_subproof_ranges(old_size, 0, new_size, true, ranges, &n);
    return cv_merkle_read_proof(ranges, n, read, arg, proof, max, len);
}

bool
cv_merkle_verify_inclusion(const cv_merkle_hash leaf, int64_t index,
                           int64_t size, const cv_merkle_hash *proof,
                           size_t len, const cv_merkle_hash root)
{
    cv_merkle_hash r;
    int64_t fn, sn;

    if (index < 0 || size <= 0 || index >= size || (len > 0 && proof == NULL) ||
        len > CV_MERKLE_MAX_PROOF)
        return false;
    fn = index;
    sn = size - 1;
    memcpy(r, leaf, CV_MERKLE_HASH_LEN);
    for (size_t i = 0; i < len; i++) {
        if (sn == 0)
            return false;
        if ((fn & 1) || fn == sn) {
            cv_merkle_node_hash(proof[i], r, r);
            /* Skip the levels where this node has no right sibling. */
            while (!(fn & 1) && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            cv_merkle_node_hash(r, proof[i], r);
        }
        fn >>= 1;
        sn >>= 1;
    }
    return sn == 0 && memcmp(r, root, CV_MERKLE_HASH_LEN) == 0;
}

bool
cv_merkle_verify_consistency(int64_t old_size, int64_t new_size,
                             const cv_merkle_hash old_root,
                             const cv_merkle_hash new_root,
                             const cv_merkle_hash *proof, size_t len)
{
    const cv_merkle_hash *path = proof;
    size_t plen = len;
    cv_merkle_hash fr, sr;
    int64_t fn, sn;
    size_t i;

    if (old_size < 0 || new_size < old_size || (len > 0 && proof == NULL) ||
        len > CV_MERKLE_MAX_PROOF)
        return false;
    /* The empty tree is a prefix of every tree; its root is fixed. */
    if (old_size == 0)
        return len == 0 &&
               memcmp(old_root, cv_merkle_empty, CV_MERKLE_HASH_LEN) == 0;
    if (old_size == new_size)
        return len == 0 && memcmp(old_root, new_root, CV_MERKLE_HASH_LEN) == 0;
    if (len == 0)
        return false;
    /* An old tree that is a perfect subtree is left out of the proof:
     * the path starts with old_root itself. */
    if ((old_size & (old_size - 1)) == 0) {
        memcpy(fr, old_root, CV_MERKLE_HASH_LEN);
        i = 0;
    } else {
        memcpy(fr, path[0], CV_MERKLE_HASH_LEN);
        i = 1;
    }
    memcpy(sr, fr, CV_MERKLE_HASH_LEN);
    fn = old_size - 1;
    sn = new_size - 1;
    while (fn & 1) {
        fn >>= 1;
        sn >>= 1;
    }
    for (; i < plen; i++) {
        if (sn == 0)
            return false;
        if ((fn & 1) || fn == sn) {
            cv_merkle_node_hash(path[i], fr, fr);
            cv_merkle_node_hash(path[i], sr, sr);
            while (!(fn & 1) && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            cv_merkle_node_hash(sr, path[i], sr);
        }
        fn >>= 1;
        sn >>= 1;
    }
    return sn == 0 && memcmp(fr, old_root, CV_MERKLE_HASH_LEN) == 0 &&
           memcmp(sr, new_root, CV_MERKLE_HASH_LEN) == 0;
}

int
cv_merkle_frontier_nodes(int64_t size,
                         cv_merkle_node out[CV_MERKLE_MAX_FRONTIER])
{
    if (size <= 0)
        return 0;
    return cv_merkle_range_nodes(0, size, out);
}

int
cv_merkle_frontier_load(cv_merkle_frontier *f, int64_t size,
                        cv_merkle_read_fn read, void *arg)
{
    cv_merkle_frontier next;

    if (f == NULL || size < 0 || read == NULL)
        return -1;
    memset(&next, 0, sizeof(next));
    next.size = size;
    next.count = cv_merkle_frontier_nodes(size, next.node);
    if (next.count > 0 &&
        read(arg, next.node, (size_t)next.count, next.hash) != 0)
        return -1;
    *f = next;
    return 0;
}

int
cv_merkle_frontier_append(cv_merkle_frontier *f, const cv_merkle_hash leaf,
                          cv_merkle_emit_fn emit, void *arg)
{
    cv_merkle_node node;
    cv_merkle_hash hash;
    int count;

    if (f == NULL || f->size < 0 || f->size == INT64_MAX)
        return -1;
    node.level = 0;
    node.index = f->size;
    memcpy(hash, leaf, CV_MERKLE_HASH_LEN);
    if (emit != NULL && emit(arg, &node, hash) != 0)
        return -1;
    /* Each trailing subtree of the same height closes a parent; the
     * frontier itself changes only once every emit succeeded. */
    count = f->count;
    while (count > 0 && f->node[count - 1].level == node.level) {
        cv_merkle_node_hash(f->hash[count - 1], hash, hash);
        node.level++;
        node.index >>= 1;
        count--;
        if (emit != NULL && emit(arg, &node, hash) != 0)
            return -1;
    }
    f->node[count] = node;
    memcpy(f->hash[count], hash, CV_MERKLE_HASH_LEN);
    f->count = count + 1;
    f->size++;
    return 0;
}

void
cv_merkle_frontier_root(const cv_merkle_frontier *f, cv_merkle_hash root)
{
    if (f->count <= 0) {
        memcpy(root, cv_merkle_empty, CV_MERKLE_HASH_LEN);
        return;
    }
    cv_merkle_fold(f->hash, f->count, root);
}

int
cv_merkle_subtree_hash(const cv_merkle_hash *hashes, size_t count,
                       cv_merkle_hash out)
{
    cv_merkle_hash row[CV_TILE_WIDTH / 2];

    if (hashes == NULL || count == 0 || count > CV_TILE_WIDTH ||
        (count & (count - 1)) != 0)
        return -1;
    if (count == 1) {
        memcpy(out, hashes[0], CV_MERKLE_HASH_LEN);
        return 0;
    }
    for (size_t i = 0; i < count / 2; i++)
        cv_merkle_node_hash(hashes[2 * i], hashes[2 * i + 1], row[i]);
    for (size_t w = count / 2; w > 1; w /= 2) {
        for (size_t i = 0; i < w / 2; i++)
            cv_merkle_node_hash(row[2 * i], row[2 * i + 1], row[i]);
    }
    memcpy(out, row[0], CV_MERKLE_HASH_LEN);
    return 0;
}

cv_tile_ref
cv_tile_locate(cv_merkle_node node)
{
    cv_tile_ref ref = {-1, -1, 0, 0};
    int shift;
    int64_t first;

    /* A node beyond any int64 tree is not located (untrusted input). */
    if (node.level < 0 || node.level > 62 || node.index < 0 ||
        node.index > (INT64_MAX >> node.level))
        return ref;
    ref.tile_level = node.level / CV_TILE_HEIGHT;
    shift = node.level - ref.tile_level * CV_TILE_HEIGHT;
    /* The node's first hash on the tile's bottom row. */
    first = node.index << shift;
    ref.tile_index = first / CV_TILE_WIDTH;
    ref.first = (int)(first % CV_TILE_WIDTH);
    ref.count = 1 << shift;
    return ref;
}

int
cv_tile_path_format(int level, int64_t index, int width, char *out,
                    size_t outlen)
{
    char groups[64];
    char lev[16];
    int64_t rest = index;
    size_t len = 0;
    int n;

    if (level < -1 || level > 63 || index < 0 || width < 1 ||
        width > CV_TILE_WIDTH || out == NULL)
        return -1;
    /* Groups of three digits, least significant first, then reversed:
     * all but the last get an "x". */
    {
        int digits[8];
        int count = 0;

        do {
            digits[count++] = (int)(rest % 1000);
            rest /= 1000;
        } while (rest > 0);
        for (int i = count - 1; i >= 0; i--) {
            n = snprintf(groups + len, sizeof(groups) - len, "%s%03d%s",
                         i > 0 ? "x" : "", digits[i], i > 0 ? "/" : "");
            len += (size_t)n;
        }
    }
    if (level == -1)
        snprintf(lev, sizeof(lev), "entries");
    else
        snprintf(lev, sizeof(lev), "%d", level);
    if (width == CV_TILE_WIDTH)
        n = snprintf(out, outlen, "tile/%s/%s", lev, groups);
    else
        n = snprintf(out, outlen, "tile/%s/%s.p/%d", lev, groups, width);
    if (n < 0 || (size_t)n >= outlen)
        return -1;
    return n;
}

/* Reads a decimal in [lo, hi] without sign or leading zeros from *p,
 * advancing it. Returns 0 or -1. */
static int
cv_tile_parse_small(const char **p, int lo, int hi, int *out)
{
    const char *s = *p;
    int v = 0, digits = 0;

    if (s[0] == '0' && s[1] >= '0' && s[1] <= '9')
        return -1;
    while (*s >= '0' && *s <= '9') {
        if (++digits > 3)
            return -1;
        v = v * 10 + (*s - '0');
        s++;
    }
    if (digits == 0 || v < lo || v > hi)
        return -1;
    *p = s;
    *out = v;
    return 0;
}

int
cv_tile_path_parse(const char *path, int *level, int64_t *index, int *width)
{
    const char *p = path;
    int lev, w = CV_TILE_WIDTH, groups = 0;
    int64_t n = 0;

    if (path == NULL || level == NULL || index == NULL || width == NULL ||
        strncmp(p, "tile/", 5) != 0)
        return -1;
    p += 5;
    if (strncmp(p, "entries/", 8) == 0) {
        lev = -1;
        p += 8;
    } else {
        if (cv_tile_parse_small(&p, 0, 63, &lev) != 0 || *p != '/')
            return -1;
        p++;
    }
    /* xDDD/ groups, then a last DDD group. */
    for (;;) {
        bool more = *p == 'x';
        int g = 0;

        if (more)
            p++;
        for (int i = 0; i < 3; i++, p++) {
            if (*p < '0' || *p > '9')
                return -1;
            g = g * 10 + (*p - '0');
        }
        /* A leading zero group is never written (not canonical). */
        if (groups == 0 && more && g == 0)
            return -1;
        if (n > (INT64_MAX - g) / 1000)
            return -1;
        n = n * 1000 + g;
        groups++;
        if (!more)
            break;
        if (*p != '/')
            return -1;
        p++;
    }
    if (*p == '.') {
        if (strncmp(p, ".p/", 3) != 0)
            return -1;
        p += 3;
        if (cv_tile_parse_small(&p, 1, CV_TILE_WIDTH - 1, &w) != 0)
            return -1;
    }
    if (*p != '\0')
        return -1;
    *level = lev;
    *index = n;
    *width = w;
    return 0;
}
