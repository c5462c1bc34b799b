/*
 * merkle_test.c -- unit tests for cv_merkle (RFC 6962 / RFC 9162 tree
 * math, the frontier and the tlog-tiles geometry and paths).
 *
 * Known answers: the 8-leaf tree of transparency-dev/merkle
 * (testonly/constants.go: leaf inputs, node hashes and roots for every
 * size) and its proof vectors (cmd/proofgen/main.go; leaf numbers there
 * are 1-based). Everything else is checked against a naive recursive
 * implementation of MTH, PATH and SUBPROOF written straight from RFC 9162
 * in this file. Run: ctest -R unit.merkle, or the binary.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_id.h"
#include "cv_merkle.h"

#define MT_MAX_LEAVES 1024

/* ---- reference data (transparency-dev/merkle testonly) ---- */

static const char *const mt_leaf_inputs[8] = {
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f"};

static const char *const mt_roots[9] = {
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

static const char *const mt_level0[8] = {
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
    "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
    "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
};

typedef struct mt_vector {
    int64_t a; /* inclusion: 1-based leaf; consistency: old size */
    int64_t size;
    int len;
    const char *proof[3];
} mt_vector;

static const mt_vector mt_inclusion[] = {
    {1, 1, 0, {NULL}},
    {1,
     8,
     3,
     {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
    {6,
     8,
     3,
     {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
    {3,
     3,
     1,
     {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
    {2,
     5,
     3,
     {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
};

static const mt_vector mt_consistency[] = {
    {1, 1, 0, {NULL}},
    {1,
     8,
     3,
     {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
    {6,
     8,
     3,
     {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
    {2,
     5,
     2,
     {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
    {6,
     7,
     3,
     {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
      "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
};

/* ---- the test tree: leaf hashes and every perfect subtree ---- */

typedef struct mt_tree {
    int64_t leaves;            /* leaf hashes held */
    int64_t limit;             /* reads must stay inside [0, limit) */
    int reads;                 /* read calls */
    int fail;                  /* make the next read fail */
    cv_merkle_hash *level[11]; /* level[l][i]: node (l, i) */
} mt_tree;

static void
mt_unhex(const char *hex, uint8_t *out, size_t n)
{
    assert_int_equal(cv_hex_decode(hex, n, out), 0);
}

static void
mt_assert_hash(const cv_merkle_hash got, const char *want)
{
    char hex[2 * CV_MERKLE_HASH_LEN + 1];

    cv_hex_encode(got, CV_MERKLE_HASH_LEN, hex);
    assert_string_equal(hex, want);
}

/* A tree of n leaves: the 8 reference inputs when ref, else "leaf <i>". */
static mt_tree *
mt_tree_new(int64_t n, bool ref)
{
    mt_tree *t = calloc(1, sizeof(*t));

    assert_non_null(t);
    t->leaves = n;
    t->limit = n;
    for (int l = 0; l < 11; l++) {
        t->level[l] = calloc((size_t)(n >> l) + 1, sizeof(cv_merkle_hash));
        assert_non_null(t->level[l]);
    }
    for (int64_t i = 0; i < n; i++) {
        if (ref) {
            uint8_t data[16];
            size_t len = strlen(mt_leaf_inputs[i]) / 2;

            mt_unhex(mt_leaf_inputs[i], data, len);
            cv_merkle_leaf_hash(data, len, t->level[0][i]);
        } else {
            char data[32];
            int len = snprintf(data, sizeof(data), "leaf %lld", (long long)i);

            cv_merkle_leaf_hash(data, (size_t)len, t->level[0][i]);
        }
    }
    for (int l = 1; l < 11; l++) {
        for (int64_t i = 0; i < (n >> l); i++)
            cv_merkle_node_hash(t->level[l - 1][2 * i],
                                t->level[l - 1][2 * i + 1], t->level[l][i]);
    }
    return t;
}

static void
mt_tree_free(mt_tree *t)
{
    for (int l = 0; l < 11; l++)
        free(t->level[l]);
    free(t);
}

/* The reader: perfect subtrees inside [0, limit) only. */
static int
mt_read_cb(void *arg, const cv_merkle_node *nodes, size_t count,
           cv_merkle_hash *hashes)
{
    mt_tree *t = arg;

    t->reads++;
    if (t->fail) {
        t->fail = 0;
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        assert_in_range(nodes[i].level, 0, 10);
        assert_true(nodes[i].index >= 0);
        assert_true((nodes[i].index + 1) << nodes[i].level <= t->limit);
        memcpy(hashes[i], t->level[nodes[i].level][nodes[i].index],
               CV_MERKLE_HASH_LEN);
    }
    return 0;
}

/* ---- the naive reference, straight from RFC 9162 2.1 ---- */

static void
mt_naive_mth(const mt_tree *t, int64_t lo, int64_t hi, cv_merkle_hash out)
{
    cv_merkle_hash l, r;
    int64_t k = 1;

    if (hi - lo == 1) {
        memcpy(out, t->level[0][lo], CV_MERKLE_HASH_LEN);
        return;
    }
    while (2 * k < hi - lo)
        k *= 2;
    mt_naive_mth(t, lo, lo + k, l);
    mt_naive_mth(t, lo + k, hi, r);
    cv_merkle_node_hash(l, r, out);
}

static void
mt_naive_path(const mt_tree *t, int64_t m, int64_t lo, int64_t hi,
              cv_merkle_hash *out, size_t *n)
{
    int64_t k = 1;

    if (hi - lo <= 1)
        return;
    while (2 * k < hi - lo)
        k *= 2;
    if (m < k) {
        mt_naive_path(t, m, lo, lo + k, out, n);
        mt_naive_mth(t, lo + k, hi, out[(*n)++]);
    } else {
        mt_naive_path(t, m - k, lo + k, hi, out, n);
        mt_naive_mth(t, lo, lo + k, out[(*n)++]);
    }
}

static void
mt_naive_subproof(const mt_tree *t, int64_t m, int64_t lo, int64_t hi, bool b,
                  cv_merkle_hash *out, size_t *n)
{
    int64_t k = 1;

    if (m == hi - lo) {
        if (!b)
            mt_naive_mth(t, lo, hi, out[(*n)++]);
        return;
    }
    while (2 * k < hi - lo)
        k *= 2;
    if (m <= k) {
        mt_naive_subproof(t, m, lo, lo + k, b, out, n);
        mt_naive_mth(t, lo + k, hi, out[(*n)++]);
    } else {
        mt_naive_subproof(t, m - k, lo + k, hi, false, out, n);
        mt_naive_mth(t, lo, lo + k, out[(*n)++]);
    }
}

/* ---- tests ---- */

static void
test_merkle_hashes_known(void **state)
{
    /* Inner nodes of the reference tree (level, index, hash). */
    static const struct {
        int level, index;
        const char *hash;
    } inner[] = {
        {1, 0,
         "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"},
        {1, 3,
         "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"},
        {2, 1,
         "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"},
    };
    mt_tree *t = mt_tree_new(8, true);
    cv_merkle_hash root;

    (void)state;
    for (int i = 0; i < 8; i++)
        mt_assert_hash(t->level[0][i], mt_level0[i]);
    for (size_t k = 0; k < sizeof(inner) / sizeof(inner[0]); k++)
        mt_assert_hash(t->level[inner[k].level][inner[k].index], inner[k].hash);
    for (int64_t n = 0; n <= 8; n++) {
        t->limit = n;
        t->reads = 0;
        assert_int_equal(cv_merkle_root(n, mt_read_cb, t, root), 0);
        mt_assert_hash(root, mt_roots[n]);
        assert_int_equal(t->reads, n == 0 ? 0 : 1);
    }
    assert_int_equal(cv_merkle_root(-1, mt_read_cb, t, root), -1);
    t->fail = 1;
    assert_int_equal(cv_merkle_root(5, mt_read_cb, t, root), -1);
    mt_tree_free(t);
}

static void
test_merkle_inclusion_known(void **state)
{
    mt_tree *t = mt_tree_new(8, true);

    (void)state;
    for (size_t v = 0; v < sizeof(mt_inclusion) / sizeof(mt_inclusion[0]);
         v++) {
        const mt_vector *vec = &mt_inclusion[v];
        cv_merkle_hash proof[CV_MERKLE_MAX_PROOF], want[3], root;
        size_t len = 99;

        t->limit = vec->size;
        t->reads = 0;
        assert_int_equal(cv_merkle_prove_inclusion(vec->a - 1, vec->size,
                                                   mt_read_cb, t, proof,
                                                   CV_MERKLE_MAX_PROOF, &len),
                         0);
        assert_int_equal(t->reads, len == 0 ? 0 : 1);
        assert_int_equal(len, vec->len);
        for (int i = 0; i < vec->len; i++) {
            mt_assert_hash(proof[i], vec->proof[i]);
            mt_unhex(vec->proof[i], want[i], CV_MERKLE_HASH_LEN);
        }
        mt_unhex(mt_roots[vec->size], root, CV_MERKLE_HASH_LEN);
        assert_true(cv_merkle_verify_inclusion(t->level[0][vec->a - 1],
                                               vec->a - 1, vec->size, want,
                                               (size_t)vec->len, root));
    }
    mt_tree_free(t);
}

static void
test_merkle_consistency_known(void **state)
{
    mt_tree *t = mt_tree_new(8, true);

    (void)state;
    for (size_t v = 0; v < sizeof(mt_consistency) / sizeof(mt_consistency[0]);
         v++) {
        const mt_vector *vec = &mt_consistency[v];
        cv_merkle_hash proof[CV_MERKLE_MAX_PROOF], want[3], r1, r2;
        size_t len = 99;

        t->limit = vec->size;
        assert_int_equal(cv_merkle_prove_consistency(vec->a, vec->size,
                                                     mt_read_cb, t, proof,
                                                     CV_MERKLE_MAX_PROOF, &len),
                         0);
        assert_int_equal(len, vec->len);
        for (int i = 0; i < vec->len; i++) {
            mt_assert_hash(proof[i], vec->proof[i]);
            mt_unhex(vec->proof[i], want[i], CV_MERKLE_HASH_LEN);
        }
        mt_unhex(mt_roots[vec->a], r1, CV_MERKLE_HASH_LEN);
        mt_unhex(mt_roots[vec->size], r2, CV_MERKLE_HASH_LEN);
        assert_true(cv_merkle_verify_consistency(vec->a, vec->size, r1, r2,
                                                 want, (size_t)vec->len));
        /* The roots swapped never verify (unless equal sizes). */
        if (vec->a != vec->size)
            assert_false(cv_merkle_verify_consistency(vec->a, vec->size, r2, r1,
                                                      want, (size_t)vec->len));
    }
    mt_tree_free(t);
}

/* Every inclusion proof of every tree of 1..70 leaves equals the naive
 * PATH, verifies, and fails with any bit flipped, a wrong index or size,
 * or a hash missing or added. */
static void
test_merkle_inclusion_all(void **state)
{
    mt_tree *t = mt_tree_new(72, false);
    cv_merkle_hash proof[CV_MERKLE_MAX_PROOF], naive[CV_MERKLE_MAX_PROOF];
    cv_merkle_hash root, other, roots[73];

    (void)state;
    for (int64_t n = 1; n <= 72; n++)
        mt_naive_mth(t, 0, n, roots[n]);
    for (int64_t n = 1; n <= 70; n++) {
        memcpy(root, roots[n], CV_MERKLE_HASH_LEN);
        for (int64_t m = 0; m < n; m++) {
            size_t len = 0, nlen = 0;
            const uint8_t *leaf = t->level[0][m];

            t->limit = n;
            t->reads = 0;
            assert_int_equal(
                cv_merkle_prove_inclusion(m, n, mt_read_cb, t, proof,
                                          CV_MERKLE_MAX_PROOF, &len),
                0);
            assert_true(t->reads <= 1);
            mt_naive_path(t, m, 0, n, naive, &nlen);
            assert_int_equal(len, nlen);
            assert_memory_equal(proof, naive, len * CV_MERKLE_HASH_LEN);
            assert_true(
                cv_merkle_verify_inclusion(leaf, m, n, proof, len, root));
            /* One bit of each hash, a different one each time (kept
             * small: the test must stay fast on a loaded machine). */
            for (size_t i = 0; i < len; i++) {
                int bit = (int)((i * 37 + (size_t)m * 11) % 256);

                proof[i][bit / 8] ^= (uint8_t)(1u << (bit % 8));
                assert_false(
                    cv_merkle_verify_inclusion(leaf, m, n, proof, len, root));
                proof[i][bit / 8] ^= (uint8_t)(1u << (bit % 8));
            }
            memcpy(other, root, CV_MERKLE_HASH_LEN);
            other[31] ^= 1;
            assert_false(
                cv_merkle_verify_inclusion(leaf, m, n, proof, len, other));
            memcpy(other, leaf, CV_MERKLE_HASH_LEN);
            other[0] ^= 0x80;
            assert_false(
                cv_merkle_verify_inclusion(other, m, n, proof, len, root));
            /* Every other index in small trees, nearby ones and the ends
             * in bigger ones. */
            for (int64_t w = 0; w < n + 2; w++) {
                if (w != m && (n <= 24 || (w >= m - 3 && w <= m + 3) ||
                               w == 0 || w >= n - 1))
                    assert_false(cv_merkle_verify_inclusion(leaf, w, n, proof,
                                                            len, root));
            }
            /* A proof for n leaves never shows the leaf in the tree of
             * another size (its root); the size itself is only bound
             * through the root, as in RFC 9162. */
            for (int64_t s = 1; s < n + 3; s++) {
                if (s != n && (n <= 24 || s >= n - 3 || s == 1))
                    assert_false(cv_merkle_verify_inclusion(leaf, m, s, proof,
                                                            len, roots[s]));
            }
            assert_false(
                cv_merkle_verify_inclusion(leaf, -1, n, proof, len, root));
            if (len > 0)
                assert_false(cv_merkle_verify_inclusion(leaf, m, n, proof,
                                                        len - 1, root));
            memcpy(proof[len], root, CV_MERKLE_HASH_LEN);
            assert_false(
                cv_merkle_verify_inclusion(leaf, m, n, proof, len + 1, root));
        }
        assert_int_equal(cv_merkle_prove_inclusion(n, n, mt_read_cb, t, proof,
                                                   CV_MERKLE_MAX_PROOF, NULL),
                         -1);
    }
    {
        size_t len;

        t->limit = 70;
        assert_int_equal(cv_merkle_prove_inclusion(70, 70, mt_read_cb, t, proof,
                                                   CV_MERKLE_MAX_PROOF, &len),
                         -1);
        assert_int_equal(cv_merkle_prove_inclusion(-1, 70, mt_read_cb, t, proof,
                                                   CV_MERKLE_MAX_PROOF, &len),
                         -1);
        /* 70 leaves: 7 hashes; a buffer of 6 is too small. */
        assert_int_equal(
            cv_merkle_prove_inclusion(3, 70, mt_read_cb, t, proof, 6, &len),
            -1);
        t->fail = 1;
        assert_int_equal(cv_merkle_prove_inclusion(3, 70, mt_read_cb, t, proof,
                                                   CV_MERKLE_MAX_PROOF, &len),
                         -1);
    }
    mt_tree_free(t);
}

/* Every consistency proof between trees of 1..70 leaves equals the naive
 * SUBPROOF, verifies, and fails when tampered with. */
static void
test_merkle_consistency_all(void **state)
{
    mt_tree *t = mt_tree_new(70, false);
    cv_merkle_hash proof[CV_MERKLE_MAX_PROOF], naive[CV_MERKLE_MAX_PROOF];
    cv_merkle_hash roots[71], other;

    (void)state;
    for (int64_t n = 1; n <= 70; n++)
        mt_naive_mth(t, 0, n, roots[n]);
    for (int64_t n = 1; n <= 70; n++) {
        for (int64_t m = 1; m <= n; m++) {
            size_t len = 0, nlen = 0;

            t->limit = n;
            t->reads = 0;
            assert_int_equal(
                cv_merkle_prove_consistency(m, n, mt_read_cb, t, proof,
                                            CV_MERKLE_MAX_PROOF, &len),
                0);
            assert_true(t->reads <= 1);
            mt_naive_subproof(t, m, 0, n, true, naive, &nlen);
            assert_int_equal(len, nlen);
            assert_memory_equal(proof, naive, len * CV_MERKLE_HASH_LEN);
            assert_true(cv_merkle_verify_consistency(m, n, roots[m], roots[n],
                                                     proof, len));
            for (size_t i = 0; i < len; i++) {
                proof[i][i % 32] ^= 0x10;
                assert_false(cv_merkle_verify_consistency(
                    m, n, roots[m], roots[n], proof, len));
                proof[i][i % 32] ^= 0x10;
            }
            memcpy(other, roots[m], CV_MERKLE_HASH_LEN);
            other[5] ^= 1;
            assert_false(cv_merkle_verify_consistency(m, n, other, roots[n],
                                                      proof, len));
            memcpy(other, roots[n], CV_MERKLE_HASH_LEN);
            other[5] ^= 1;
            assert_false(cv_merkle_verify_consistency(m, n, roots[m], other,
                                                      proof, len));
            if (m > 1 && m != n)
                assert_false(cv_merkle_verify_consistency(
                    m - 1, n, roots[m - 1], roots[n], proof, len));
            if (n < 70 && m != n)
                assert_false(cv_merkle_verify_consistency(
                    m, n + 1, roots[m], roots[n + 1], proof, len));
            if (len > 0)
                assert_false(cv_merkle_verify_consistency(
                    m, n, roots[m], roots[n], proof, len - 1));
            memcpy(proof[len], roots[n], CV_MERKLE_HASH_LEN);
            assert_false(cv_merkle_verify_consistency(m, n, roots[m], roots[n],
                                                      proof, len + 1));
        }
    }
    {
        size_t len;
        cv_merkle_hash empty;

        t->limit = 70;
        assert_int_equal(cv_merkle_prove_consistency(0, 5, mt_read_cb, t, proof,
                                                     CV_MERKLE_MAX_PROOF, &len),
                         -1);
        assert_int_equal(cv_merkle_prove_consistency(6, 5, mt_read_cb, t, proof,
                                                     CV_MERKLE_MAX_PROOF, &len),
                         -1);
        /* The empty tree is a prefix of any tree, with an empty proof. */
        t->limit = 0;
        assert_int_equal(cv_merkle_root(0, mt_read_cb, t, empty), 0);
        assert_true(
            cv_merkle_verify_consistency(0, 9, empty, roots[9], proof, 0));
        assert_false(
            cv_merkle_verify_consistency(0, 9, roots[1], roots[9], proof, 0));
        assert_false(
            cv_merkle_verify_consistency(0, 9, empty, roots[9], roots, 1));
        /* An empty proof never shows growth. */
        assert_false(
            cv_merkle_verify_consistency(4, 9, roots[4], roots[9], proof, 0));
        assert_false(
            cv_merkle_verify_consistency(9, 4, roots[9], roots[4], proof, 0));
    }
    mt_tree_free(t);
}

/* What the emit callback saw. */
typedef struct mt_emits {
    int count;
    int fail_at; /* emit number that fails, -1 never */
    cv_merkle_node node[64];
    cv_merkle_hash hash[64];
} mt_emits;

static int
mt_emit_cb(void *arg, const cv_merkle_node *node, const cv_merkle_hash hash)
{
    mt_emits *e = arg;

    if (e->count == e->fail_at)
        return -1;
    e->node[e->count] = *node;
    memcpy(e->hash[e->count], hash, CV_MERKLE_HASH_LEN);
    e->count++;
    return 0;
}

/* Appending 600 leaves one by one: the root agrees with the naive MTH at
 * every size, the emitted nodes are exactly the ones the leaf completes
 * (bottom up, with their true hashes), and loading the frontier through
 * the reader gives the same frontier. */
static void
test_merkle_frontier_append_load(void **state)
{
    mt_tree *t = mt_tree_new(600, false);
    cv_merkle_frontier f, loaded;
    cv_merkle_hash root, naive;

    (void)state;
    memset(&f, 0, sizeof(f));
    cv_merkle_frontier_root(&f, root);
    mt_assert_hash(root, mt_roots[0]);
    for (int64_t n = 1; n <= 600; n++) {
        mt_emits e = {.count = 0, .fail_at = -1};
        int want = 0;

        assert_int_equal(
            cv_merkle_frontier_append(&f, t->level[0][n - 1], mt_emit_cb, &e),
            0);
        assert_int_equal(f.size, n);
        /* Node (l, i) is complete once (i + 1) << l == n. */
        for (int l = 0; l < 11; l++) {
            if ((n % ((int64_t)1 << l)) != 0)
                break;
            assert_true(want < e.count);
            assert_int_equal(e.node[want].level, l);
            assert_int_equal(e.node[want].index, (n >> l) - 1);
            assert_memory_equal(e.hash[want], t->level[l][(n >> l) - 1],
                                CV_MERKLE_HASH_LEN);
            want++;
        }
        assert_int_equal(e.count, want);
        cv_merkle_frontier_root(&f, root);
        mt_naive_mth(t, 0, n, naive);
        assert_memory_equal(root, naive, CV_MERKLE_HASH_LEN);

        t->limit = n;
        t->reads = 0;
        assert_int_equal(cv_merkle_frontier_load(&loaded, n, mt_read_cb, t), 0);
        assert_int_equal(t->reads, 1);
        assert_int_equal(loaded.size, f.size);
        assert_int_equal(loaded.count, f.count);
        assert_int_equal(loaded.count, __builtin_popcountll((uint64_t)n));
        for (int i = 0; i < f.count; i++) {
            assert_int_equal(loaded.node[i].level, f.node[i].level);
            assert_int_equal(loaded.node[i].index, f.node[i].index);
            assert_memory_equal(loaded.hash[i], f.hash[i], CV_MERKLE_HASH_LEN);
        }
    }
    /* Appending without an emit callback works too. */
    memset(&loaded, 0, sizeof(loaded));
    for (int64_t n = 0; n < 600; n++)
        assert_int_equal(
            cv_merkle_frontier_append(&loaded, t->level[0][n], NULL, NULL), 0);
    cv_merkle_frontier_root(&loaded, naive);
    assert_memory_equal(root, naive, CV_MERKLE_HASH_LEN);
    t->fail = 1;
    assert_int_equal(cv_merkle_frontier_load(&loaded, 600, mt_read_cb, t), -1);
    assert_int_equal(cv_merkle_frontier_load(&loaded, -1, mt_read_cb, t), -1);
    mt_tree_free(t);
}

/* An emit that fails stops the append and leaves the frontier as it was. */
static void
test_merkle_frontier_emit_fails(void **state)
{
    mt_tree *t = mt_tree_new(64, false);
    cv_merkle_frontier f, before;

    (void)state;
    memset(&f, 0, sizeof(f));
    for (int64_t n = 0; n < 63; n++)
        assert_int_equal(
            cv_merkle_frontier_append(&f, t->level[0][n], NULL, NULL), 0);
    /* Leaf 63 completes 7 nodes (levels 0..6); fail at each of them. */
    for (int at = 0; at < 7; at++) {
        mt_emits e = {.count = 0, .fail_at = at};

        before = f;
        assert_int_equal(
            cv_merkle_frontier_append(&f, t->level[0][63], mt_emit_cb, &e), -1);
        assert_memory_equal(&f, &before, sizeof(f));
    }
    {
        mt_emits e = {.count = 0, .fail_at = -1};

        assert_int_equal(
            cv_merkle_frontier_append(&f, t->level[0][63], mt_emit_cb, &e), 0);
        assert_int_equal(e.count, 7);
        assert_int_equal(f.count, 1);
        assert_memory_equal(f.hash[0], t->level[6][0], CV_MERKLE_HASH_LEN);
    }
    mt_tree_free(t);
}

static void
test_merkle_frontier_nodes(void **state)
{
    static const cv_merkle_node want13[3] = {{3, 0}, {2, 2}, {0, 12}};
    cv_merkle_node nodes[CV_MERKLE_MAX_FRONTIER];

    (void)state;
    assert_int_equal(cv_merkle_frontier_nodes(0, nodes), 0);
    /* 13 = 8 + 4 + 1: (3, 0), (2, 2), (0, 12). */
    assert_int_equal(cv_merkle_frontier_nodes(13, nodes), 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(nodes[i].level, want13[i].level);
        assert_int_equal(nodes[i].index, want13[i].index);
    }
    assert_int_equal(cv_merkle_frontier_nodes(INT64_MAX, nodes), 63);
    assert_int_equal(nodes[62].level, 0);
    assert_int_equal(nodes[62].index, INT64_MAX - 1);
}

/* A reader that only counts, for trees too big to hash: every node asked
 * for must be a perfect subtree inside the tree. */
typedef struct mt_counter {
    int64_t size;
    int reads;
    size_t nodes;
} mt_counter;

static int
mt_count_cb(void *arg, const cv_merkle_node *nodes, size_t count,
            cv_merkle_hash *hashes)
{
    mt_counter *c = arg;

    c->reads++;
    c->nodes += count;
    for (size_t i = 0; i < count; i++) {
        assert_in_range(nodes[i].level, 0, 62);
        assert_true(nodes[i].index >= 0);
        /* (index + 1) << level <= size, without overflow */
        assert_true(nodes[i].index < (c->size >> nodes[i].level));
        memset(hashes[i], 0, CV_MERKLE_HASH_LEN);
    }
    return 0;
}

/* Proofs in huge trees cost one read of O(log n) nodes. */
static void
test_merkle_large_trees(void **state)
{
    static const int64_t sizes[] = {1000000, 1048576, 1048577, (int64_t)1 << 40,
                                    INT64_MAX};
    cv_merkle_hash proof[CV_MERKLE_MAX_PROOF], root;

    (void)state;
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        int64_t n = sizes[k];
        int64_t probes[] = {0, 1, n / 3, n / 2, n - 2, n - 1};
        int depth = 0;
        mt_counter c = {n, 0, 0};

        while (depth < 63 && ((int64_t)1 << depth) < n)
            depth++;
        assert_int_equal(cv_merkle_root(n, mt_count_cb, &c, root), 0);
        assert_int_equal(c.reads, 1);
        assert_int_equal(c.nodes, __builtin_popcountll((uint64_t)n));
        for (size_t p = 0; p < sizeof(probes) / sizeof(probes[0]); p++) {
            size_t len = 0;

            c = (mt_counter){n, 0, 0};
            assert_int_equal(
                cv_merkle_prove_inclusion(probes[p], n, mt_count_cb, &c, proof,
                                          CV_MERKLE_MAX_PROOF, &len),
                0);
            assert_int_equal(c.reads, 1);
            assert_true(len <= (size_t)depth);
            assert_true(c.nodes <= 2 * (size_t)depth);
            if (probes[p] == 0)
                continue;
            c = (mt_counter){n, 0, 0};
            assert_int_equal(
                cv_merkle_prove_consistency(probes[p], n, mt_count_cb, &c,
                                            proof, CV_MERKLE_MAX_PROOF, &len),
                0);
            assert_true(c.reads <= 1);
            assert_true(len <= 2 * (size_t)depth);
            assert_true(c.nodes <= 2 * (size_t)depth + 1);
        }
    }
}

/* Each thread hashes with its own digest context: four threads building
 * the reference tree at once all get its known root. */
static void *
mt_thread_main(void *arg)
{
    int *ok = arg;

    *ok = 1;
    for (int round = 0; round < 200; round++) {
        mt_tree *t = mt_tree_new(8, true);
        cv_merkle_frontier f;
        cv_merkle_hash root, want;

        memset(&f, 0, sizeof(f));
        for (int i = 0; i < 8; i++)
            cv_merkle_frontier_append(&f, t->level[0][i], NULL, NULL);
        cv_merkle_frontier_root(&f, root);
        cv_hex_decode(mt_roots[8], CV_MERKLE_HASH_LEN, want);
        if (memcmp(root, want, CV_MERKLE_HASH_LEN) != 0)
            *ok = 0;
        mt_tree_free(t);
    }
    return NULL;
}

static void
test_merkle_threads(void **state)
{
    pthread_t th[4];
    int ok[4];

    (void)state;
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, mt_thread_main, &ok[i]),
                         0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(ok[i], 1);
    }
}

static void
test_merkle_subtree_hash(void **state)
{
    mt_tree *t = mt_tree_new(512, false);
    cv_merkle_hash out;

    (void)state;
    for (int l = 0; l <= 8; l++) {
        size_t count = (size_t)1 << l;

        for (int64_t i = 0; i < 2; i++) {
            assert_int_equal(cv_merkle_subtree_hash(
                                 t->level[0] + i * (int64_t)count, count, out),
                             0);
            assert_memory_equal(out, t->level[l][i], CV_MERKLE_HASH_LEN);
        }
        /* A row of level-2 hashes gives the level 2 + l node. */
        if (l <= 7) {
            assert_int_equal(cv_merkle_subtree_hash(t->level[2], count, out),
                             0);
            assert_memory_equal(out, t->level[2 + l][0], CV_MERKLE_HASH_LEN);
        }
    }
    assert_int_equal(cv_merkle_subtree_hash(t->level[0], 0, out), -1);
    assert_int_equal(cv_merkle_subtree_hash(t->level[0], 3, out), -1);
    assert_int_equal(cv_merkle_subtree_hash(t->level[0], 12, out), -1);
    assert_int_equal(cv_merkle_subtree_hash(t->level[0], 512, out), -1);
    assert_int_equal(cv_merkle_subtree_hash(NULL, 4, out), -1);
    mt_tree_free(t);
}

static void
test_merkle_tile_locate(void **state)
{
    /* node -> tile (level, index) and the hashes [first, first + count) */
    static const struct {
        cv_merkle_node node;
        int tile_level;
        int64_t tile_index;
        int first, count;
    } cases[] = {
        {{0, 0}, 0, 0, 0, 1},
        {{0, 1000}, 0, 3, 1000 - 768, 1},
        /* Level 3, index 37: leaves 296..303, tile 1 hashes 40..47. */
        {{3, 37}, 0, 1, 40, 8},
        /* Level 7: half a tile. */
        {{7, 5}, 0, 2, 128, 128},
        /* Level 8 is stored itself, in a level-1 tile. */
        {{8, 300}, 1, 1, 44, 1},
        {{17, 3}, 2, 0, 6, 2},
    };
    /* Not a node of any tree: tile_level -1. */
    static const cv_merkle_node bad[] = {
        {-1, 0}, {64, 0}, {3, -2}, {20, INT64_MAX}};

    (void)state;
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        cv_tile_ref r = cv_tile_locate(cases[k].node);

        assert_int_equal(r.tile_level, cases[k].tile_level);
        assert_int_equal(r.tile_index, cases[k].tile_index);
        assert_int_equal(r.first, cases[k].first);
        assert_int_equal(r.count, cases[k].count);
    }
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
        assert_int_equal(cv_tile_locate(bad[k]).tile_level, -1);
}

static void
mt_path_round_trip(int level, int64_t index, int width, const char *want)
{
    char buf[128];
    int l, w;
    int64_t i;

    assert_int_equal(cv_tile_path_format(level, index, width, buf, sizeof(buf)),
                     (int)strlen(want));
    assert_string_equal(buf, want);
    assert_int_equal(cv_tile_path_parse(want, &l, &i, &w), 0);
    assert_int_equal(l, level);
    assert_int_equal(i, index);
    assert_int_equal(w, width);
}

/* The examples of C2SP tlog-tiles and golang.org/x/mod/sumdb/tlog. */
static void
test_merkle_tile_path_round_trip(void **state)
{
    /* level, index, width, buffer size -> length written or -1 */
    static const struct {
        int level;
        int64_t index;
        int width;
        size_t buflen;
        int want;
    } args[] = {
        {0, 0, 256, 11, 10}, /* "tile/0/000" and its NUL just fit */
        {0, 0, 256, 10, -1},  {0, 5, 256, 5, -1},   {-2, 5, 256, 64, -1},
        {64, 5, 256, 64, -1}, {0, -1, 256, 64, -1}, {0, 5, 0, 64, -1},
        {0, 5, 257, 64, -1},
    };
    char buf[64];

    (void)state;
    mt_path_round_trip(0, 1234067, 256, "tile/0/x001/x234/067");
    mt_path_round_trip(0, 1234067, 8, "tile/0/x001/x234/067.p/8");
    mt_path_round_trip(-1, 1234067, 8, "tile/entries/x001/x234/067.p/8");
    mt_path_round_trip(-1, 1234067, 256, "tile/entries/x001/x234/067");
    mt_path_round_trip(0, 0, 256, "tile/0/000");
    mt_path_round_trip(2, 0, 1, "tile/2/000.p/1");
    mt_path_round_trip(1, 273, 17, "tile/1/273.p/17");
    mt_path_round_trip(3, 999, 255, "tile/3/999.p/255");
    mt_path_round_trip(1, 1000, 256, "tile/1/x001/000");
    mt_path_round_trip(63, 999999999999999999, 255,
                       "tile/63/x999/x999/x999/x999/x999/999.p/255");
    mt_path_round_trip(0, INT64_MAX, 256,
                       "tile/0/x009/x223/x372/x036/x854/x775/807");
    mt_path_round_trip(-1, 5, 12, "tile/entries/005.p/12");
    for (int64_t i = 0; i < 3000; i += 7)
        for (int w = 1; w <= 256; w += 51)
            assert_int_equal(
                cv_tile_path_format(i % 5, i, w, buf, sizeof(buf)) > 0, true);
    /* Bad arguments and a short buffer. */
    for (size_t k = 0; k < sizeof(args) / sizeof(args[0]); k++)
        assert_int_equal(cv_tile_path_format(args[k].level, args[k].index,
                                             args[k].width, buf,
                                             args[k].buflen),
                         args[k].want);
}

static void
test_merkle_tile_path_refused(void **state)
{
    static const char *const bad[] = {
        "",
        "tile",
        "tile/",
        "tile/0",
        "tile/0/",
        "/tile/0/000",
        "tiles/0/000",
        "tile/0/0",
        "tile/0/00",
        "tile/0/0000",
        "tile/0/67",
        "tile/00/000",
        "tile/01/000",
        "tile/64/000",
        "tile/-1/000",
        "tile/+1/000",
        "tile/data/000",
        "tile/entries/",
        "tile/entries",
        "tile/0/x000/067",      /* leading zero group */
        "tile/0/x000/x001/067", /* leading zero group */
        "tile/0/x001",
        "tile/0/x001/",
        "tile/0/x001/x234",
        "tile/0/x001/x234/",
        "tile/0/x001/x234/067/",
        "tile/0/x001/234/067",
        "tile/0/X001/234",
        "tile/0/x1000/000",
        "tile/0/x01/000",
        "tile/0/000/",
        "tile/0/000.p",
        "tile/0/000.p/",
        "tile/0/000.p/0",
        "tile/0/000.p/00",
        "tile/0/000.p/08",
        "tile/0/000.p/256",
        "tile/0/000.p/1000",
        "tile/0/000.p/-1",
        "tile/0/000.p/8/",
        "tile/0/000.q/8",
        "tile/0/000.p8",
        "tile/0/000 ",
        " tile/0/000",
        "tile/0/00a",
        "tile//000",
        "tile/0//000",
        "tile/0/x009/x223/x372/x036/x854/x775/808", /* INT64_MAX + 1 */
        "tile/0/x999/x999/x999/x999/x999/x999/x999/999",
    };
    int l = 7, w = 7;
    int64_t i = 7;

    (void)state;
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        if (cv_tile_path_parse(bad[k], &l, &i, &w) != -1)
            fail_msg("accepted non-canonical tile path \"%s\"", bad[k]);
    }
    assert_int_equal(l, 7);
    assert_int_equal(i, 7);
    assert_int_equal(w, 7);
    assert_int_equal(cv_tile_path_parse(NULL, &l, &i, &w), -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merkle_hashes_known),
        cmocka_unit_test(test_merkle_inclusion_known),
        cmocka_unit_test(test_merkle_consistency_known),
        cmocka_unit_test(test_merkle_inclusion_all),
        cmocka_unit_test(test_merkle_consistency_all),
        cmocka_unit_test(test_merkle_frontier_append_load),
        cmocka_unit_test(test_merkle_frontier_emit_fails),
        cmocka_unit_test(test_merkle_frontier_nodes),
        cmocka_unit_test(test_merkle_large_trees),
        cmocka_unit_test(test_merkle_threads),
        cmocka_unit_test(test_merkle_subtree_hash),
        cmocka_unit_test(test_merkle_tile_locate),
        cmocka_unit_test(test_merkle_tile_path_round_trip),
        cmocka_unit_test(test_merkle_tile_path_refused),
    };

    return cmocka_run_group_tests_name("merkle", tests, NULL, NULL);
}
