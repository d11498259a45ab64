/*
 * The verification challenge of a leased host (ARCHITECTURE §9, proto/rayc_market.proto):
 * the seeded computation, its Merkle commitment and the verifier's checks. Pure and
 * deterministic: no clock, no randomness of its own (the verifier's seeds are arguments),
 * no I/O. Any thread; nothing here keeps state between calls.
 *
 * The computation. From a 32-byte seed and an order n (16..8192, a multiple of 4), two
 * n x n matrices of int8, A and B, and their product C = A x B with int32 accumulation
 * (|C[i][j]| <= 8192 * 128 * 128 = 2^27: no overflow, so every device's answer is
 * bit-exact). Matrices are row-major.
 *
 * The generator. Row r of matrix M (M is 'A' or 'B') is the byte stream of xoshiro256**
 * whose state is the four little-endian 64-bit words of SHA-256(seed || M || le32(r))
 * (37 bytes hashed: the seed, the ASCII letter, r as 4 little-endian bytes); each 64-bit
 * output gives 8 elements, least significant byte first, each byte read as a two's
 * complement int8. A state of all zeros (probability 2^-256) is replaced by {1, 0, 0, 0}.
 * Any row of either matrix is thus computed alone, in O(n).
 *
 * The commitment. Leaf i = SHA-256(0x00 || row i of C as n int32 little-endian); an inner
 * node = SHA-256(0x01 || left || right). Levels are built pairwise from the leaves up; at a
 * level of odd width the last node has no sibling and is promoted unchanged to the next
 * level (never duplicated, so no two leaf lists share a root). The root of the top level
 * is the commitment. A row's authentication path lists the sibling of its node at each
 * level where there is one, from the leaf up: its length is at most ceil(log2(n_leaves)).
 * The committed rows are the first n_leaves rows of C (n_leaves = n for a raylet's
 * challenge; fewer only in tests).
 *
 * Memory: functions that allocate say who frees (rc_free or the matching _free).
 * Functions return 0 or a negative RC_E* code; where an err buffer is given it gets a
 * sentence saying what was wrong.
 */
#ifndef RAYC_AUTH_AUTH_CHALLENGE_H
#define RAYC_AUTH_AUTH_CHALLENGE_H

#include <stddef.h>
#include <stdint.h>

enum {
    AUTH_CHALLENGE_SEED_SIZE = 32,
    AUTH_CHALLENGE_HASH_SIZE = 32,
    AUTH_CHALLENGE_ID_SIZE = 16,
    AUTH_CHALLENGE_N_MIN = 16,
    AUTH_CHALLENGE_N_MAX = 8192,
    /* The CPU kernel refuses larger orders: n = 2048 is 8.6e9 multiply-adds (seconds on a
     * few cores); 8192 is 5.5e11, which is a GPU's work. */
    AUTH_CHALLENGE_CPU_N_MAX = 2048,
    /* Longest authentication path: ceil(log2(AUTH_CHALLENGE_N_MAX)). */
    AUTH_CHALLENGE_PATH_MAX = 13,
};

/* ---- the seeded matrices and the product -------------------------------------------- */

/* 0 if n is an order the challenge accepts (AUTH_CHALLENGE_N_MIN..N_MAX, a multiple of 4),
 * else RC_EINVAL and a sentence in err. */
int auth_challenge_check_order(uint32_t n, char *err, size_t errlen);

/* Row r of matrix ('A' or 'B') for seed and order n into out (n int8). */
void auth_challenge_gen_row(const uint8_t seed[AUTH_CHALLENGE_SEED_SIZE], char matrix, uint32_t n, uint32_t r,
                            int8_t *out);

/* The first `rows` rows (1..n) of C = A x B into c (rows * n int32, row-major), on the CPU
 * with `threads` threads (<= 1: the calling thread only), and, if leaves is not NULL, each
 * row's leaf hash into leaves (rows * 32 bytes) as it is computed. cancel (may be NULL) is
 * read between rows: once it is non-zero the kernel stops and returns RC_ECANCELED. n must
 * pass auth_challenge_check_order and be at most AUTH_CHALLENGE_CPU_N_MAX (RC_ERANGE and a
 * sentence otherwise). RC_ENOMEM when the working copy of B (n * n bytes) cannot be had. */
int auth_challenge_product_cpu(const uint8_t seed[AUTH_CHALLENGE_SEED_SIZE], uint32_t n, uint32_t rows, int threads,
                               const int *cancel, int32_t *c, uint8_t *leaves, char *err, size_t errlen);

/* Row r of C alone into out (n int32): what the verifier computes, O(n^2) time and O(n)
 * memory (B is generated a row at a time). Any n that passes auth_challenge_check_order. */
void auth_challenge_product_row(const uint8_t seed[AUTH_CHALLENGE_SEED_SIZE], uint32_t n, uint32_t r, int32_t *out);

/* Writes n int32 values as 4n little-endian bytes. */
void auth_challenge_row_bytes(const int32_t *values, uint32_t n, uint8_t *out);

/* ---- the Merkle commitment ---------------------------------------------------------- */

/* The leaf hash of a row of n int32 values. */
void auth_challenge_leaf(const int32_t *values, uint32_t n, uint8_t out[AUTH_CHALLENGE_HASH_SIZE]);
/* The same over the row's 4n little-endian bytes (as they travel). */
void auth_challenge_leaf_bytes(const uint8_t *bytes, size_t len, uint8_t out[AUTH_CHALLENGE_HASH_SIZE]);

/* A Merkle tree over n_leaves leaf hashes. */
typedef struct auth_merkle auth_merkle;

/* Builds the tree over leaves (n_leaves * 32 bytes, copied; n_leaves >= 1). Free it with
 * auth_merkle_free. */
int auth_merkle_build(const uint8_t *leaves, size_t n_leaves, auth_merkle **out);
void auth_merkle_free(auth_merkle *t);
size_t auth_merkle_leaf_count(const auth_merkle *t);
void auth_merkle_root(const auth_merkle *t, uint8_t out[AUTH_CHALLENGE_HASH_SIZE]);
/* The authentication path of leaf into path (room for AUTH_CHALLENGE_PATH_MAX hashes of 32
 * bytes, contiguous; enough for up to 8192 leaves, more needs room for ceil(log2) hashes);
 * returns the number of hashes written, or RC_ERANGE when leaf is not a leaf of t. */
int auth_merkle_path(const auth_merkle *t, size_t leaf, uint8_t *path, size_t max_hashes);
/* 1 if the path (n_path contiguous 32-byte hashes) leads from leaf_hash at index leaf of a
 * tree of n_leaves leaves to root; 0 otherwise (a wrong hash, a path of the wrong length,
 * an index out of range). */
int auth_merkle_check(const uint8_t leaf_hash[AUTH_CHALLENGE_HASH_SIZE], size_t leaf, size_t n_leaves,
                      const uint8_t *path, size_t n_path, const uint8_t root[AUTH_CHALLENGE_HASH_SIZE]);

/* ---- the verifier ------------------------------------------------------------------- */

/* Checks one opened row: values (values_len bytes, n int32 little-endian) must be row `row`
 * of the seeded product, and path (n_path contiguous 32-byte hashes) must lead from its leaf
 * to root in a tree of n_leaves leaves. 0 when both hold. Otherwise RC_EAUTH with err "row
 * 17 differs from the seeded product" or "row 17's path does not lead to the committed
 * root", or RC_EINVAL with a sentence for an opening of the wrong shape (an order the
 * challenge refuses, n_leaves not in 1..n, a row outside the committed rows, values not 4n
 * bytes, a path longer than any tree of n_leaves has). */
int auth_challenge_verify_opening(const uint8_t seed[AUTH_CHALLENGE_SEED_SIZE], uint32_t n, uint32_t n_leaves,
                                  const uint8_t root[AUTH_CHALLENGE_HASH_SIZE], uint32_t row, const uint8_t *values,
                                  size_t values_len, const uint8_t *path, size_t n_path, char *err, size_t errlen);

/* The rows to open: k distinct rows of 0..n_leaves-1 drawn from the verifier's own seed
 * (vseed, 32 random bytes it keeps to itself until the node has committed), in draw order.
 * The draw: xoshiro256** seeded with SHA-256(vseed || "rows"), Floyd's sampling with
 * unbiased bounded draws; the same vseed gives the same rows. k > n_leaves or n_leaves == 0:
 * RC_EINVAL. */
int auth_challenge_pick_rows(const uint8_t vseed[AUTH_CHALLENGE_SEED_SIZE], uint32_t n_leaves, uint32_t k,
                             uint32_t *rows);

/* The order for a claimed GPU memory: base_n + n_per_gib * (gpu_memory_bytes in GiB,
 * rounded up), rounded up to a multiple of 4 and clamped to AUTH_CHALLENGE_N_MIN..N_MAX
 * (a host without GPUs, gpu_memory_bytes 0, gets base_n). Why linear and capped: the
 * product's working set (6 n^2 bytes: A, B, C) cannot fill a large GPU within the order the
 * wire allows (8192: 384 MiB), so the order grows with the claim to make a bigger claim
 * cost more work, and the time bound for the claimed class does the rest. The market's
 * config names base_n and n_per_gib (verification.matrix_n and n_per_gib). */
uint32_t auth_challenge_order_for_memory(uint64_t gpu_memory_bytes, uint32_t base_n, uint32_t n_per_gib);

#endif
