/*
 * cv_merkle.h -- RFC 6962 / RFC 9162 Merkle tree math for the evidence log
 * (docs/evidence.md): leaf and node hashes, the sequencer's right frontier,
 * inclusion and consistency proofs (generate and verify), and the C2SP
 * tlog-tiles geometry (tile height 8) and path encoding.
 *
 * Design notes:
 *  - No storage here. A proof or a root is computed from the hashes of
 *    complete ("perfect") subtrees, named by cv_merkle_node; the caller
 *    supplies one reader that fills a whole batch at once, so a proof costs
 *    one round trip of O(log n) hashes, however they are stored.
 *  - A node at level L, index i covers leaves [i * 2^L, (i + 1) * 2^L).
 *    Level 0 nodes are leaf hashes.
 *  - Sizes and indexes are int64_t (leaf counts fit easily); a function
 *    given an impossible size or index returns -1 / false, never asserts,
 *    since proofs and sizes also arrive from untrusted input.
 */
#ifndef CV_MERKLE_H
#define CV_MERKLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CV_MERKLE_HASH_LEN 32
/* Longest proof for any int64 tree: 2 * 63 hashes is a safe bound. */
#define CV_MERKLE_MAX_PROOF 128
/* Most perfect subtrees a tree of any size decomposes into. */
#define CV_MERKLE_MAX_FRONTIER 64
/* C2SP tlog-tiles: tiles are 8 levels high, 256 hashes wide. */
#define CV_TILE_HEIGHT 8
#define CV_TILE_WIDTH  256

typedef uint8_t cv_merkle_hash[CV_MERKLE_HASH_LEN];

/* A complete subtree. */
typedef struct cv_merkle_node {
    int level;
    int64_t index;
} cv_merkle_node;

/* SHA-256(0x00 || data). */
void cv_merkle_leaf_hash(const void *data, size_t len, cv_merkle_hash out);

/* SHA-256(0x01 || left || right). */
void cv_merkle_node_hash(const cv_merkle_hash left, const cv_merkle_hash right,
                         cv_merkle_hash out);

/*
 * Fills hashes[i] with the hash of nodes[i] for every i < count (count may
 * be 0). Returns 0, or -1 when some hash cannot be read (the caller's err
 * lives in arg).
 */
typedef int (*cv_merkle_read_fn)(void *arg, const cv_merkle_node *nodes,
                                 size_t count, cv_merkle_hash *hashes);

/*
 * The root of the tree of `size` leaves (size 0: SHA-256 of the empty
 * string, RFC 6962 2.1), reading the perfect subtrees it decomposes into
 * in one batch. Returns 0 or -1.
 */
int cv_merkle_root(int64_t size, cv_merkle_read_fn read, void *arg,
                   cv_merkle_hash root);

/*
 * The inclusion proof (RFC 9162 2.1.3.1 audit path) of leaf `index` in
 * the tree of `size` leaves, into proof (at most max hashes), its length
 * in *len. Reads its hashes in one batch. Returns 0, or -1 for index >=
 * size, a failed read or max too small.
 */
int cv_merkle_prove_inclusion(int64_t index, int64_t size,
                              cv_merkle_read_fn read, void *arg,
                              cv_merkle_hash *proof, size_t max, size_t *len);

/* The consistency proof (RFC 9162 2.1.4.1) from old_size to new_size
 * (0 < old_size <= new_size; empty when equal). Returns 0 or -1. */
int cv_merkle_prove_consistency(int64_t old_size, int64_t new_size,
                                cv_merkle_read_fn read, void *arg,
                                cv_merkle_hash *proof, size_t max, size_t *len);

/* RFC 9162 2.1.3.2: does proof show leaf at index in the tree of size
 * leaves with this root? */
bool cv_merkle_verify_inclusion(const cv_merkle_hash leaf, int64_t index,
                                int64_t size, const cv_merkle_hash *proof,
                                size_t len, const cv_merkle_hash root);

/* RFC 9162 2.1.4.2: does proof show the tree (old_size, old_root) is a
 * prefix of (new_size, new_root)? */
bool cv_merkle_verify_consistency(int64_t old_size, int64_t new_size,
                                  const cv_merkle_hash old_root,
                                  const cv_merkle_hash new_root,
                                  const cv_merkle_hash *proof, size_t len);

/*
 * The right frontier: the roots of the perfect subtrees a tree of `size`
 * leaves decomposes into, largest (leftmost) first. The sequencer keeps
 * one in memory and appends leaves to it.
 */
typedef struct cv_merkle_frontier {
    int64_t size;
    int count;
    cv_merkle_node node[CV_MERKLE_MAX_FRONTIER];
    cv_merkle_hash hash[CV_MERKLE_MAX_FRONTIER];
} cv_merkle_frontier;

/* Which nodes a frontier of `size` leaves holds (largest first), so that
 * a restarted sequencer can read them in one batch; returns the count. */
int cv_merkle_frontier_nodes(int64_t size,
                             cv_merkle_node out[CV_MERKLE_MAX_FRONTIER]);

/* Loads the frontier of `size` leaves through read. Returns 0 or -1. */
int cv_merkle_frontier_load(cv_merkle_frontier *f, int64_t size,
                            cv_merkle_read_fn read, void *arg);

/*
 * Called for every node a leaf append completes, the leaf itself first
 * (level 0), then each parent it closes, bottom up. Returns 0, or -1 to
 * stop (the append then returns -1 and the frontier is unchanged).
 */
typedef int (*cv_merkle_emit_fn)(void *arg, const cv_merkle_node *node,
                                 const cv_merkle_hash hash);

/* Appends one leaf hash at index f->size. Returns 0 or -1. */
int cv_merkle_frontier_append(cv_merkle_frontier *f, const cv_merkle_hash leaf,
                              cv_merkle_emit_fn emit, void *arg);

/* The root of the frontier's tree (empty-tree hash when size is 0). */
void cv_merkle_frontier_root(const cv_merkle_frontier *f, cv_merkle_hash root);

/*
 * The hash of a perfect subtree given its 2^k bottom-level hashes
 * (count must be a power of two, 1..CV_TILE_WIDTH); used to compute
 * nodes inside a tile from the tile's stored row. Returns 0 or -1.
 */
int cv_merkle_subtree_hash(const cv_merkle_hash *hashes, size_t count,
                           cv_merkle_hash out);

/* Where a node's hash lives in tlog-tiles: the tile at tile level
 * node.level / 8 holding tree level 8 * tile_level, tile index, and the
 * range [first, first + count) of that tile's hashes whose subtree hash is
 * the node. */
typedef struct cv_tile_ref {
    int tile_level;
    int64_t tile_index;
    int first;
    int count;
} cv_tile_ref;
cv_tile_ref cv_tile_locate(cv_merkle_node node);

/*
 * C2SP tlog-tiles paths, relative to the log prefix: "tile/<L>/<N>" or
 * "tile/<L>/<N>.p/<W>" with N in 3-digit groups ("x001/x234/067"), and
 * level -1 written "entries" (entry bundles). Format returns the length
 * written (< outlen) or -1; parse returns 0 and fills *level (-1 for
 * entries), *index, *width (CV_TILE_WIDTH for a full tile), or -1 for
 * anything not in canonical form.
 */
int cv_tile_path_format(int level, int64_t index, int width, char *out,
                        size_t outlen);
int cv_tile_path_parse(const char *path, int *level, int64_t *index,
                       int *width);

#endif
