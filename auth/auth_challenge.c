/*
 * The verification challenge: the seeded int8 matrices, the CPU kernel for their product,
 * the Merkle commitment over its rows and the verifier's checks (auth_challenge.h has the
 * generator, the tree and the rules it documents).
 *
 * The CPU kernel transposes B once (so every dot product reads two contiguous int8 rows),
 * works on blocks of AUTH__BLOCK rows of A against each row of Bᵀ (one pass over Bᵀ serves
 * the whole block), accumulates in int32 and hashes each finished row into its leaf. Row
 * blocks are handed out to the threads through one atomic counter; each thread generates
 * its own rows of A. This file is compiled with optimization even in debug builds (see
 * auth/CMakeLists.txt): a raylet's answer is timed against the bound for its class.
 *
 * No state; any thread.
 */
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth_challenge.h"
#include "rc_alloc.h"
#include "rc_err.h"

enum { AUTH__BLOCK = 4, AUTH__MAX_THREADS = 64, AUTH__MAX_LEVELS = 64 };

static void auth__challenge_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void auth__challenge_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- the generator ------------------------------------------------------------------- */

typedef struct auth__xoshiro {
    uint64_t s[4];
} auth__xoshiro;

static uint64_t auth__rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t auth__xoshiro_next(auth__xoshiro *g)
{
    uint64_t *s = g->s;
    uint64_t result = auth__rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = auth__rotl(s[3], 45);
    return result;
}

static uint64_t auth__le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* The state is the four little-endian words of SHA-256(data). */
static void auth__xoshiro_seed(auth__xoshiro *g, const uint8_t *data, size_t len)
{
    uint8_t digest[SHA256_DIGEST_LENGTH];
    SHA256(data, len, digest);
    for (int i = 0; i < 4; i++)
        g->s[i] = auth__le64(digest + 8 * i);
    if (!(g->s[0] | g->s[1] | g->s[2] | g->s[3]))
        g->s[0] = 1;
}

int auth_challenge_check_order(uint32_t n, char *err, size_t errlen)
{
    if (n < AUTH_CHALLENGE_N_MIN || n > AUTH_CHALLENGE_N_MAX) {
        auth__challenge_err(err, errlen, "the challenge's order n must be between %d and %d, not %u",
                            AUTH_CHALLENGE_N_MIN, AUTH_CHALLENGE_N_MAX, n);
        return RC_EINVAL;
    }
    if (n % 4) {
        auth__challenge_err(err, errlen, "the challenge's order n must be a multiple of 4 (int8 GEMM alignment), not %u",
                            n);
        return RC_EINVAL;
    }
    return 0;
}

void auth_challenge_gen_row(const uint8_t seed[AUTH_CHALLENGE_SEED_SIZE], char matrix, uint32_t n, uint32_t r,
                            int8_t *out)
{
    uint8_t in[AUTH_CHALLENGE_SEED_SIZE + 5];
    memcpy(in, seed, AUTH_CHALLENGE_SEED_SIZE);
    in[AUTH_CHALLENGE_SEED_SIZE] = (uint8_t)matrix;
    for (int i = 0; i < 4; i++)
        in[AUTH_CHALLENGE_SEED_SIZE + 1 + i] = (uint8_t)(r >> (8 * i));
    auth__xoshiro g;
    auth__xoshiro_seed(&g, in, sizeof(in));
    uint64_t x = 0;
    for (uint32_t j = 0; j < n; j++) {
        if (j % 8 == 0)
            x = auth__xoshiro_next(&g);
        out[j] = (int8_t)(uint8_t)(x >> (8 * (j % 8)));
    }
}

/* ---- rows and leaves ----------------------------------------------------------------- */

void auth_challenge_row_bytes(const int32_t *values, uint32_t n, uint8_t *out)
{
    for (uint32_t j = 0; j < n; j++) {
        uint32_t v = (uint32_t)values[j];
        out[4 * j] = (uint8_t)v;
        out[4 * j + 1] = (uint8_t)(v >> 8);
        out[4 * j + 2] = (uint8_t)(v >> 16);
        out[4 * j + 3] = (uint8_t)(v >> 24);
    }
}

/* A digest context; like rc_malloc, out of memory is fatal. Free with EVP_MD_CTX_free. */
static EVP_MD_CTX *auth__sha256_begin(uint8_t prefix)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx) {
        fprintf(stderr, "rayc: out of memory for a SHA-256 context\n");
        abort();
    }
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    EVP_DigestUpdate(ctx, &prefix, 1);
    return ctx;
}

static void auth__sha256_prefixed(uint8_t prefix, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
                                  uint8_t out[AUTH_CHALLENGE_HASH_SIZE])
{
    EVP_MD_CTX *ctx = auth__sha256_begin(prefix);
    if (alen)
        EVP_DigestUpdate(ctx, a, alen);
    if (blen)
        EVP_DigestUpdate(ctx, b, blen);
    EVP_DigestFinal_ex(ctx, out, NULL);
    EVP_MD_CTX_free(ctx);
}

void auth_challenge_leaf_bytes(const uint8_t *bytes, size_t len, uint8_t out[AUTH_CHALLENGE_HASH_SIZE])
{
    auth__sha256_prefixed(0x00, bytes, len, NULL, 0, out);
}

void auth_challenge_leaf(const int32_t *values, uint32_t n, uint8_t out[AUTH_CHALLENGE_HASH_SIZE])
{
    EVP_MD_CTX *ctx = auth__sha256_begin(0x00);
    uint8_t chunk[4096];
    for (uint32_t j = 0; j < n; j += sizeof(chunk) / 4) {
        uint32_t m = n - j < sizeof(chunk) / 4 ? n - j : (uint32_t)(sizeof(chunk) / 4);
        auth_challenge_row_bytes(values + j, m, chunk);
        EVP_DigestUpdate(ctx, chunk, (size_t)m * 4);
    }
    EVP_DigestFinal_ex(ctx, out, NULL);
    EVP_MD_CTX_free(ctx);
}

/* ---- the product --------------------------------------------------------------------- */

void auth_challenge_product_row(const uint8_t seed[AUTH_CHALLENGE_SEED_SIZE], uint32_t n, uint32_t r, int32_t *out)
{
    int8_t *a = rc_malloc(n), *b = rc_malloc(n);
    auth_challenge_gen_row(seed, 'A', n, r, a);
    memset(out, 0, (size_t)n * sizeof(*out));
    for (uint32_t k = 0; k < n; k++) {
        auth_challenge_gen_row(seed, 'B', n, k, b);
        int32_t ak = a[k];
        for (uint32_t j = 0; j < n; j++)
            out[j] += ak * (int32_t)b[j];
    }
    rc_free(a);
    rc_free(b);
}

typedef struct auth__kernel {
    const uint8_t *seed;
    uint32_t n, rows;
    const int8_t *bt; /* Bᵀ, n x n */
    int32_t *c;
    uint8_t *leaves;
    const int *cancel;
    uint32_t next_block; /* atomic */
    int cancelled;       /* atomic */
} auth__kernel;

static int32_t auth__dot(const int8_t *a, const int8_t *b, uint32_t n)
{
    int32_t s = 0;
    for (uint32_t k = 0; k < n; k++)
        s += (int32_t)a[k] * (int32_t)b[k];
    return s;
}

/* Rows [i0, i0 + m) of C, m <= AUTH__BLOCK. */
static void auth__kernel_block(auth__kernel *kr, uint32_t i0, uint32_t m, int8_t *a)
{
    uint32_t n = kr->n;
    for (uint32_t t = 0; t < m; t++)
        auth_challenge_gen_row(kr->seed, 'A', n, i0 + t, a + (size_t)t * n);
    int32_t *c = kr->c + (size_t)i0 * n;
    if (m == AUTH__BLOCK) {
        const int8_t *a0 = a, *a1 = a + n, *a2 = a + 2 * (size_t)n, *a3 = a + 3 * (size_t)n;
        for (uint32_t j = 0; j < n; j++) {
            const int8_t *b = kr->bt + (size_t)j * n;
            int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            for (uint32_t k = 0; k < n; k++) {
                int32_t bk = b[k];
                s0 += a0[k] * bk;
                s1 += a1[k] * bk;
                s2 += a2[k] * bk;
                s3 += a3[k] * bk;
            }
            c[j] = s0;
            c[n + j] = s1;
            c[2 * (size_t)n + j] = s2;
            c[3 * (size_t)n + j] = s3;
        }
    } else {
        for (uint32_t t = 0; t < m; t++)
            for (uint32_t j = 0; j < n; j++)
                c[(size_t)t * n + j] = auth__dot(a + (size_t)t * n, kr->bt + (size_t)j * n, n);
    }
    if (kr->leaves)
        for (uint32_t t = 0; t < m; t++)
            auth_challenge_leaf(c + (size_t)t * n, n, kr->leaves + (size_t)(i0 + t) * AUTH_CHALLENGE_HASH_SIZE);
}

static void *auth__kernel_thread(void *arg)
{
    auth__kernel *kr = arg;
    int8_t *a = rc_malloc((size_t)AUTH__BLOCK * kr->n);
    for (;;) {
        if (kr->cancel && __atomic_load_n(kr->cancel, __ATOMIC_RELAXED)) {
            __atomic_store_n(&kr->cancelled, 1, __ATOMIC_RELAXED);
            break;
        }
        uint32_t block = __atomic_fetch_add(&kr->next_block, 1, __ATOMIC_RELAXED);
        uint64_t i0 = (uint64_t)block * AUTH__BLOCK;
        if (i0 >= kr->rows)
            break;
        uint32_t m = kr->rows - (uint32_t)i0 < AUTH__BLOCK ? kr->rows - (uint32_t)i0 : AUTH__BLOCK;
        auth__kernel_block(kr, (uint32_t)i0, m, a);
    }
    rc_free(a);
    return NULL;
}

int auth_challenge_product_cpu(const uint8_t seed[AUTH_CHALLENGE_SEED_SIZE], uint32_t n, uint32_t rows, int threads,
                               const int *cancel, int32_t *c, uint8_t *leaves, char *err, size_t errlen)
{
    int rc = auth_challenge_check_order(n, err, errlen);
    if (rc < 0)
        return rc;
    if (n > AUTH_CHALLENGE_CPU_N_MAX) {
        auth__challenge_err(err, errlen,
                            "the CPU kernel computes orders up to %d; order %u is %.1e multiply-adds, a GPU's work "
                            "(ask for device \"gpu\" on a node with one)",
                            AUTH_CHALLENGE_CPU_N_MAX, n, (double)n * n * n);
        return RC_ERANGE;
    }
    if (rows < 1 || rows > n) {
        auth__challenge_err(err, errlen, "the product has rows 1..%u, not %u", n, rows);
        return RC_EINVAL;
    }
    int8_t *bt = rc_try_malloc((size_t)n * n);
    int8_t *brow = rc_try_malloc(n);
    if (!bt || !brow) {
        rc_free(bt);
        rc_free(brow);
        auth__challenge_err(err, errlen, "no memory for the challenge's matrices (order %u)", n);
        return RC_ENOMEM;
    }
    for (uint32_t k = 0; k < n; k++) {
        auth_challenge_gen_row(seed, 'B', n, k, brow);
        for (uint32_t j = 0; j < n; j++)
            bt[(size_t)j * n + k] = brow[j];
    }
    rc_free(brow);
    auth__kernel kr = {.seed = seed, .n = n, .rows = rows, .bt = bt, .c = c, .leaves = leaves, .cancel = cancel};
    if (threads > AUTH__MAX_THREADS)
        threads = AUTH__MAX_THREADS;
    pthread_t tids[AUTH__MAX_THREADS];
    int started = 0;
    for (int t = 1; t < threads; t++)
        if (pthread_create(&tids[started], NULL, auth__kernel_thread, &kr) == 0)
            started++;
    auth__kernel_thread(&kr); /* the calling thread works too; it alone suffices */
    for (int t = 0; t < started; t++)
        pthread_join(tids[t], NULL);
    rc_free(bt);
    if (kr.cancelled) {
        auth__challenge_err(err, errlen, "the challenge was cancelled");
        return RC_ECANCELED;
    }
    return 0;
}

/* ---- the Merkle tree ----------------------------------------------------------------- */

struct auth_merkle {
    size_t n_leaves;
    size_t n_levels;
    size_t offset[AUTH__MAX_LEVELS]; /* first hash of each level in hashes */
    size_t width[AUTH__MAX_LEVELS];
    uint8_t *hashes; /* every level, leaves first, 32 bytes each */
};

static void auth__inner(const uint8_t *left, const uint8_t *right, uint8_t *out)
{
    auth__sha256_prefixed(0x01, left, AUTH_CHALLENGE_HASH_SIZE, right, AUTH_CHALLENGE_HASH_SIZE, out);
}

int auth_merkle_build(const uint8_t *leaves, size_t n_leaves, auth_merkle **out)
{
    if (n_leaves == 0 || n_leaves > ((size_t)1 << 40))
        return RC_EINVAL;
    auth_merkle *t = RC_NEW(auth_merkle);
    size_t total = 0, w = n_leaves;
    for (;;) {
        t->offset[t->n_levels] = total;
        t->width[t->n_levels++] = w;
        total += w;
        if (w == 1)
            break;
        w = (w + 1) / 2;
    }
    t->n_leaves = n_leaves;
    t->hashes = rc_try_malloc(total * AUTH_CHALLENGE_HASH_SIZE);
    if (!t->hashes) {
        rc_free(t);
        return RC_ENOMEM;
    }
    memcpy(t->hashes, leaves, n_leaves * AUTH_CHALLENGE_HASH_SIZE);
    for (size_t l = 1; l < t->n_levels; l++) {
        const uint8_t *below = t->hashes + t->offset[l - 1] * AUTH_CHALLENGE_HASH_SIZE;
        uint8_t *here = t->hashes + t->offset[l] * AUTH_CHALLENGE_HASH_SIZE;
        size_t wb = t->width[l - 1];
        for (size_t i = 0; i < t->width[l]; i++) {
            const uint8_t *left = below + 2 * i * AUTH_CHALLENGE_HASH_SIZE;
            if (2 * i + 1 < wb)
                auth__inner(left, left + AUTH_CHALLENGE_HASH_SIZE, here + i * AUTH_CHALLENGE_HASH_SIZE);
            else
                memcpy(here + i * AUTH_CHALLENGE_HASH_SIZE, left, AUTH_CHALLENGE_HASH_SIZE); /* promoted */
        }
    }
    *out = t;
    return 0;
}

void auth_merkle_free(auth_merkle *t)
{
    if (!t)
        return;
    rc_free(t->hashes);
    rc_free(t);
}

size_t auth_merkle_leaf_count(const auth_merkle *t)
{
    return t->n_leaves;
}

void auth_merkle_root(const auth_merkle *t, uint8_t out[AUTH_CHALLENGE_HASH_SIZE])
{
    memcpy(out, t->hashes + t->offset[t->n_levels - 1] * AUTH_CHALLENGE_HASH_SIZE, AUTH_CHALLENGE_HASH_SIZE);
}

int auth_merkle_path(const auth_merkle *t, size_t leaf, uint8_t *path, size_t max_hashes)
{
    if (leaf >= t->n_leaves)
        return RC_ERANGE;
    size_t k = 0, idx = leaf;
    for (size_t l = 0; l + 1 < t->n_levels; l++, idx /= 2) {
        size_t sib = idx ^ 1;
        if (sib >= t->width[l])
            continue; /* promoted: no sibling at this level */
        if (k == max_hashes)
            return RC_ERANGE;
        memcpy(path + k++ * AUTH_CHALLENGE_HASH_SIZE, t->hashes + (t->offset[l] + sib) * AUTH_CHALLENGE_HASH_SIZE,
               AUTH_CHALLENGE_HASH_SIZE);
    }
    return (int)k;
}

int auth_merkle_check(const uint8_t leaf_hash[AUTH_CHALLENGE_HASH_SIZE], size_t leaf, size_t n_leaves,
                      const uint8_t *path, size_t n_path, const uint8_t root[AUTH_CHALLENGE_HASH_SIZE])
{
    if (leaf >= n_leaves)
        return 0;
    uint8_t h[AUTH_CHALLENGE_HASH_SIZE];
    memcpy(h, leaf_hash, sizeof(h));
    size_t k = 0, idx = leaf;
    for (size_t w = n_leaves; w > 1; w = (w + 1) / 2, idx /= 2) {
        if ((idx ^ 1) >= w)
            continue;
        if (k == n_path)
            return 0;
        const uint8_t *sib = path + k++ * AUTH_CHALLENGE_HASH_SIZE;
        uint8_t next[AUTH_CHALLENGE_HASH_SIZE];
        if (idx & 1)
            auth__inner(sib, h, next);
        else
            auth__inner(h, sib, next);
        memcpy(h, next, sizeof(h));
    }
    return k == n_path && memcmp(h, root, sizeof(h)) == 0;
}

/* ---- the verifier -------------------------------------------------------------------- */

int auth_challenge_verify_opening(const uint8_t seed[AUTH_CHALLENGE_SEED_SIZE], uint32_t n, uint32_t n_leaves,
                                  const uint8_t root[AUTH_CHALLENGE_HASH_SIZE], uint32_t row, const uint8_t *values,
                                  size_t values_len, const uint8_t *path, size_t n_path, char *err, size_t errlen)
{
    int rc = auth_challenge_check_order(n, err, errlen);
    if (rc < 0)
        return rc;
    if (n_leaves < 1 || n_leaves > n) {
        auth__challenge_err(err, errlen, "a challenge of order %u commits to 1..%u rows, not %u", n, n, n_leaves);
        return RC_EINVAL;
    }
    if (row >= n_leaves) {
        auth__challenge_err(err, errlen, "row %u was opened, but only rows 0..%u were committed", row, n_leaves - 1);
        return RC_EINVAL;
    }
    if (values_len != (size_t)n * 4) {
        auth__challenge_err(err, errlen, "row %u's opening holds %zu bytes of values; a row of order %u is %u bytes", row,
                            values_len, n, n * 4);
        return RC_EINVAL;
    }
    if (n_path > AUTH__MAX_LEVELS) {
        auth__challenge_err(err, errlen, "row %u's path has %zu hashes, more than any tree of %u rows", row, n_path,
                            n_leaves);
        return RC_EINVAL;
    }
    int32_t *expected = rc_malloc((size_t)n * sizeof(*expected));
    uint8_t *bytes = rc_malloc((size_t)n * 4);
    auth_challenge_product_row(seed, n, row, expected);
    auth_challenge_row_bytes(expected, n, bytes);
    int same = memcmp(bytes, values, values_len) == 0;
    rc_free(expected);
    rc_free(bytes);
    if (!same) {
        auth__challenge_err(err, errlen, "row %u differs from the seeded product", row);
        return RC_EAUTH;
    }
    uint8_t leaf[AUTH_CHALLENGE_HASH_SIZE];
    auth_challenge_leaf_bytes(values, values_len, leaf);
    if (!auth_merkle_check(leaf, row, n_leaves, path, n_path, root)) {
        auth__challenge_err(err, errlen, "row %u's path does not lead to the committed root", row);
        return RC_EAUTH;
    }
    return 0;
}

/* A uniform draw from 0..bound-1 (bound >= 1), without modulo bias. */
static uint64_t auth__below(auth__xoshiro *g, uint64_t bound)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    for (;;) {
        uint64_t x = auth__xoshiro_next(g);
        if (x < limit)
            return x % bound;
    }
}

int auth_challenge_pick_rows(const uint8_t vseed[AUTH_CHALLENGE_SEED_SIZE], uint32_t n_leaves, uint32_t k,
                             uint32_t *rows)
{
    if (n_leaves == 0 || k > n_leaves)
        return RC_EINVAL;
    uint8_t in[AUTH_CHALLENGE_SEED_SIZE + 4];
    memcpy(in, vseed, AUTH_CHALLENGE_SEED_SIZE);
    memcpy(in + AUTH_CHALLENGE_SEED_SIZE, "rows", 4);
    auth__xoshiro g;
    auth__xoshiro_seed(&g, in, sizeof(in));
    /* Floyd: for j in n-k..n-1 take a uniform t in 0..j, or j itself when t is taken. */
    uint32_t m = 0;
    for (uint32_t j = n_leaves - k; j < n_leaves; j++) {
        uint32_t t = (uint32_t)auth__below(&g, (uint64_t)j + 1);
        for (uint32_t q = 0; q < m; q++) {
            if (rows[q] == t) {
                t = j;
                break;
            }
        }
        rows[m++] = t;
    }
    return 0;
}

uint32_t auth_challenge_order_for_memory(uint64_t gpu_memory_bytes, uint32_t base_n, uint32_t n_per_gib)
{
    uint64_t gib = (gpu_memory_bytes + (1ull << 30) - 1) >> 30;
    uint64_t n = (uint64_t)base_n + (uint64_t)n_per_gib * gib;
    n = (n + 3) / 4 * 4;
    if (n < AUTH_CHALLENGE_N_MIN)
        n = AUTH_CHALLENGE_N_MIN;
    if (n > AUTH_CHALLENGE_N_MAX)
        n = AUTH_CHALLENGE_N_MAX;
    return (uint32_t)n;
}
