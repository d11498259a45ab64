/* auth_challenge: the seeded matrices against the documented generator, the product against
 * a naive loop, the Merkle tree against a recursive definition, openings that verify and
 * openings that must not (a wrong row, a wrong path, a wrong root, a wrong shape), the
 * verifier's row draw and the order rule. Every expected value is computed here, in the
 * test, independently of the code under test. */
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth_challenge.h"
#include "rc_alloc.h"
#include "rc_err.h"
#include "unit.h"

enum { H = AUTH_CHALLENGE_HASH_SIZE };

static void seed_from(uint8_t seed[32], unsigned v)
{
    for (int i = 0; i < 32; i++)
        seed[i] = (uint8_t)(v * 31 + i * 7);
}

/* ---- the generator as auth_challenge.h documents it, written again -------------------- */

static uint64_t ref_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static void ref_row(const uint8_t seed[32], char m, uint32_t n, uint32_t r, int8_t *out)
{
    uint8_t in[37], d[32];
    memcpy(in, seed, 32);
    in[32] = (uint8_t)m;
    in[33] = (uint8_t)r;
    in[34] = (uint8_t)(r >> 8);
    in[35] = (uint8_t)(r >> 16);
    in[36] = (uint8_t)(r >> 24);
    SHA256(in, sizeof(in), d);
    uint64_t s[4] = {0};
    for (int w = 0; w < 4; w++)
        for (int b = 0; b < 8; b++)
            s[w] |= (uint64_t)d[8 * w + b] << (8 * b);
    uint8_t bytes[8];
    for (uint32_t j = 0; j < n; j++) {
        if (j % 8 == 0) {
            uint64_t x = ref_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
            s[2] ^= s[0];
            s[3] ^= s[1];
            s[1] ^= s[2];
            s[0] ^= s[3];
            s[2] ^= t;
            s[3] = ref_rotl(s[3], 45);
            for (int b = 0; b < 8; b++)
                bytes[b] = (uint8_t)(x >> (8 * b));
        }
        out[j] = (int8_t)bytes[j % 8];
    }
}

/* C = A x B by the textbook triple loop over the reference generator's matrices. */
static int32_t *naive_product(const uint8_t seed[32], uint32_t n)
{
    int8_t *a = malloc((size_t)n * n), *b = malloc((size_t)n * n);
    int32_t *c = calloc((size_t)n * n, sizeof(int32_t));
    for (uint32_t i = 0; i < n; i++) {
        ref_row(seed, 'A', n, i, a + (size_t)i * n);
        ref_row(seed, 'B', n, i, b + (size_t)i * n);
    }
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < n; j++) {
            int64_t s = 0;
            for (uint32_t k = 0; k < n; k++)
                s += (int64_t)a[(size_t)i * n + k] * b[(size_t)k * n + j];
            c[(size_t)i * n + j] = (int32_t)s;
        }
    free(a);
    free(b);
    return c;
}

static void ref_hash(uint8_t prefix, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen, uint8_t *out)
{
    uint8_t *buf = malloc(1 + alen + blen);
    buf[0] = prefix;
    memcpy(buf + 1, a, alen);
    if (blen)
        memcpy(buf + 1 + alen, b, blen);
    SHA256(buf, 1 + alen + blen, out);
    free(buf);
}

static void ref_leaf(const int32_t *row, uint32_t n, uint8_t *out)
{
    uint8_t *bytes = malloc((size_t)n * 4);
    for (uint32_t j = 0; j < n; j++)
        for (int b = 0; b < 4; b++)
            bytes[4 * j + b] = (uint8_t)((uint32_t)row[j] >> (8 * b));
    ref_hash(0x00, bytes, (size_t)n * 4, NULL, 0, out);
    free(bytes);
}

/* The root by the definition: pair up, promote the odd last node, repeat. */
static void ref_root(const uint8_t *leaves, size_t n, uint8_t *out)
{
    uint8_t *level = malloc(n * H);
    memcpy(level, leaves, n * H);
    while (n > 1) {
        size_t m = 0;
        for (size_t i = 0; i < n; i += 2, m++) {
            uint8_t h[H];
            if (i + 1 < n)
                ref_hash(0x01, level + i * H, H, level + (i + 1) * H, H, h);
            else
                memcpy(h, level + i * H, H);
            memcpy(level + m * H, h, H);
        }
        n = m;
    }
    memcpy(out, level, H);
    free(level);
}

static void bytes_of(const int32_t *row, uint32_t n, uint8_t *out)
{
    for (uint32_t j = 0; j < n; j++)
        for (int b = 0; b < 4; b++)
            out[4 * j + b] = (uint8_t)((uint32_t)row[j] >> (8 * b));
}

/* ---- tests ---------------------------------------------------------------------------- */

static void test_generator_is_the_documented_one(void)
{
    uint8_t seed[32];
    seed_from(seed, 1);
    const uint32_t orders[] = {16, 20, 36, 100};
    for (size_t o = 0; o < UNIT_N(orders); o++) {
        uint32_t n = orders[o];
        int8_t got[128], want[128];
        for (uint32_t r = 0; r < n; r += 3) {
            auth_challenge_gen_row(seed, 'A', n, r, got);
            ref_row(seed, 'A', n, r, want);
            CU_ASSERT_EQUAL(memcmp(got, want, n), 0);
            auth_challenge_gen_row(seed, 'B', n, r, got);
            ref_row(seed, 'B', n, r, want);
            CU_ASSERT_EQUAL(memcmp(got, want, n), 0);
        }
    }
    /* Rows differ between the matrices, between rows and between seeds, and take both signs. */
    int8_t a0[64], a1[64], b0[64], other[64];
    auth_challenge_gen_row(seed, 'A', 64, 0, a0);
    auth_challenge_gen_row(seed, 'A', 64, 1, a1);
    auth_challenge_gen_row(seed, 'B', 64, 0, b0);
    uint8_t seed2[32];
    seed_from(seed2, 2);
    auth_challenge_gen_row(seed2, 'A', 64, 0, other);
    CU_ASSERT_NOT_EQUAL(memcmp(a0, a1, 64), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(a0, b0, 64), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(a0, other, 64), 0);
    int neg = 0, pos = 0;
    for (int j = 0; j < 64; j++) {
        neg += a0[j] < 0;
        pos += a0[j] > 0;
    }
    CU_ASSERT(neg > 0 && pos > 0);
}

static void test_product_matches_naive_loop(void)
{
    const uint32_t orders[] = {16, 20, 44, 64};
    for (size_t o = 0; o < UNIT_N(orders); o++) {
        uint32_t n = orders[o];
        uint8_t seed[32];
        seed_from(seed, 10 + (unsigned)o);
        int32_t *want = naive_product(seed, n);
        for (int threads = 1; threads <= 3; threads += 2) {
            int32_t *c = rc_malloc((size_t)n * n * sizeof(int32_t));
            uint8_t *leaves = rc_malloc((size_t)n * H);
            char err[256] = "";
            CU_ASSERT_EQUAL(auth_challenge_product_cpu(seed, n, n, threads, NULL, c, leaves, err, sizeof(err)), 0);
            CU_ASSERT_EQUAL(memcmp(c, want, (size_t)n * n * sizeof(int32_t)), 0);
            for (uint32_t i = 0; i < n; i++) {
                uint8_t leaf[H];
                ref_leaf(want + (size_t)i * n, n, leaf);
                CU_ASSERT_EQUAL(memcmp(leaves + (size_t)i * H, leaf, H), 0);
            }
            rc_free(c);
            rc_free(leaves);
        }
        int32_t row[64];
        for (uint32_t i = 0; i < n; i++) {
            auth_challenge_product_row(seed, n, i, row);
            CU_ASSERT_EQUAL(memcmp(row, want + (size_t)i * n, n * sizeof(int32_t)), 0);
        }
        free(want);
    }
}

static void test_merkle_tree_shapes(void)
{
    for (size_t n = 1; n <= 33; n++) {
        uint8_t *leaves = malloc(n * H);
        for (size_t i = 0; i < n * H; i++)
            leaves[i] = (uint8_t)(i * 131 + n);
        auth_merkle *t = NULL;
        CU_ASSERT_EQUAL_FATAL(auth_merkle_build(leaves, n, &t), 0);
        CU_ASSERT_EQUAL(auth_merkle_leaf_count(t), n);
        uint8_t root[H], want[H];
        auth_merkle_root(t, root);
        ref_root(leaves, n, want);
        CU_ASSERT_EQUAL(memcmp(root, want, H), 0);
        size_t depth = 0;
        while (((size_t)1 << depth) < n)
            depth++;
        for (size_t i = 0; i < n; i++) {
            uint8_t path[AUTH_CHALLENGE_PATH_MAX * H];
            int np = auth_merkle_path(t, i, path, AUTH_CHALLENGE_PATH_MAX);
            CU_ASSERT(np >= 0 && (size_t)np <= depth);
            CU_ASSERT(auth_merkle_check(leaves + i * H, i, n, path, (size_t)np, root));
            /* The same path does not place the leaf at another index, nor with a hash missing. */
            if (n > 1) {
                CU_ASSERT_FALSE(auth_merkle_check(leaves + i * H, (i + 1) % n, n, path, (size_t)np, root));
                if (np > 0)
                    CU_ASSERT_FALSE(auth_merkle_check(leaves + i * H, i, n, path, (size_t)np - 1, root));
            }
            CU_ASSERT_FALSE(auth_merkle_check(leaves + i * H, n, n, path, (size_t)np, root));
        }
        CU_ASSERT_EQUAL(auth_merkle_path(t, n, (uint8_t[AUTH_CHALLENGE_PATH_MAX * H]){0}, AUTH_CHALLENGE_PATH_MAX),
                        RC_ERANGE);
        auth_merkle_free(t);
        free(leaves);
    }
    auth_merkle *t = NULL;
    CU_ASSERT_EQUAL(auth_merkle_build((const uint8_t *)"", 0, &t), RC_EINVAL);
}

/* The committed product of seed (first `rows` rows of order n): c, the tree and its root. */
typedef struct commit {
    uint32_t n, rows;
    int32_t *c;
    auth_merkle *tree;
    uint8_t root[H];
} commit;

static void commit_make(commit *cm, const uint8_t seed[32], uint32_t n, uint32_t rows)
{
    cm->n = n;
    cm->rows = rows;
    cm->c = rc_malloc((size_t)rows * n * sizeof(int32_t));
    uint8_t *leaves = rc_malloc((size_t)rows * H);
    char err[256];
    CU_ASSERT_EQUAL_FATAL(auth_challenge_product_cpu(seed, n, rows, 2, NULL, cm->c, leaves, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL_FATAL(auth_merkle_build(leaves, rows, &cm->tree), 0);
    auth_merkle_root(cm->tree, cm->root);
    rc_free(leaves);
}

static void commit_free(commit *cm)
{
    rc_free(cm->c);
    auth_merkle_free(cm->tree);
}

/* Opens row i of cm and verifies it against seed and root; returns the verifier's code. */
static int open_and_verify(const commit *cm, const uint8_t seed[32], const uint8_t root[H], uint32_t i, char *err,
                           size_t errlen)
{
    uint8_t values[4 * 256], path[AUTH_CHALLENGE_PATH_MAX * H];
    bytes_of(cm->c + (size_t)i * cm->n, cm->n, values);
    int np = auth_merkle_path(cm->tree, i, path, AUTH_CHALLENGE_PATH_MAX);
    CU_ASSERT_FATAL(np >= 0);
    return auth_challenge_verify_opening(seed, cm->n, cm->rows, root, i, values, (size_t)cm->n * 4, path,
                                         (size_t)np, err, errlen);
}

static void test_every_row_opens(void)
{
    uint8_t seed[32];
    seed_from(seed, 3);
    const uint32_t shapes[][2] = {{32, 32}, {48, 48}, {16, 7}, {16, 13}, {40, 33}, {20, 1}};
    for (size_t s = 0; s < UNIT_N(shapes); s++) {
        commit cm;
        commit_make(&cm, seed, shapes[s][0], shapes[s][1]);
        for (uint32_t i = 0; i < cm.rows; i++) {
            char err[256] = "";
            int rc = open_and_verify(&cm, seed, cm.root, i, err, sizeof(err));
            CU_ASSERT_EQUAL(rc, 0);
            if (rc)
                fprintf(stderr, "order %u rows %u row %u: %s\n", cm.n, cm.rows, i, err);
        }
        commit_free(&cm);
    }
}

static void test_tampered_row_fails(void)
{
    uint8_t seed[32];
    seed_from(seed, 4);
    commit cm;
    commit_make(&cm, seed, 32, 32);
    /* A row changed after the commitment: wrong values (checked first). */
    cm.c[17 * 32 + 5] += 1;
    char err[256] = "";
    CU_ASSERT_EQUAL(open_and_verify(&cm, seed, cm.root, 17, err, sizeof(err)), RC_EAUTH);
    CU_ASSERT_STRING_EQUAL(err, "row 17 differs from the seeded product");
    commit_free(&cm);

    /* A host that commits to a wrong row: its path is consistent, its values are not. */
    commit liar;
    commit_make(&liar, seed, 32, 32);
    liar.c[9 * 32] ^= 0x40;
    uint8_t *leaves = rc_malloc(32 * H);
    for (uint32_t i = 0; i < 32; i++)
        auth_challenge_leaf(liar.c + (size_t)i * 32, 32, leaves + (size_t)i * H);
    auth_merkle_free(liar.tree);
    CU_ASSERT_EQUAL_FATAL(auth_merkle_build(leaves, 32, &liar.tree), 0);
    auth_merkle_root(liar.tree, liar.root);
    rc_free(leaves);
    CU_ASSERT_EQUAL(open_and_verify(&liar, seed, liar.root, 9, err, sizeof(err)), RC_EAUTH);
    CU_ASSERT_STRING_EQUAL(err, "row 9 differs from the seeded product");
    CU_ASSERT_EQUAL(open_and_verify(&liar, seed, liar.root, 8, err, sizeof(err)), 0);
    /* Another seed's product is not this seed's. */
    uint8_t other[32];
    seed_from(other, 5);
    CU_ASSERT_EQUAL(open_and_verify(&liar, other, liar.root, 8, err, sizeof(err)), RC_EAUTH);
    commit_free(&liar);
}

static void test_tampered_path_and_wrong_root_fail(void)
{
    uint8_t seed[32];
    seed_from(seed, 6);
    commit cm;
    commit_make(&cm, seed, 36, 36);
    uint32_t i = 17;
    uint8_t values[4 * 36], path[AUTH_CHALLENGE_PATH_MAX * H];
    bytes_of(cm.c + (size_t)i * 36, 36, values);
    int np = auth_merkle_path(cm.tree, i, path, AUTH_CHALLENGE_PATH_MAX);
    CU_ASSERT_FATAL(np > 1);
    char err[256] = "";
    CU_ASSERT_EQUAL(auth_challenge_verify_opening(seed, 36, 36, cm.root, i, values, sizeof(values), path, (size_t)np,
                                                  err, sizeof(err)),
                    0);
    for (int k = 0; k < np; k++) {
        path[k * H + 3] ^= 1;
        CU_ASSERT_EQUAL(auth_challenge_verify_opening(seed, 36, 36, cm.root, i, values, sizeof(values), path,
                                                      (size_t)np, err, sizeof(err)),
                        RC_EAUTH);
        CU_ASSERT_STRING_EQUAL(err, "row 17's path does not lead to the committed root");
        path[k * H + 3] ^= 1;
    }
    /* A hash missing, a hash too many. */
    CU_ASSERT_EQUAL(auth_challenge_verify_opening(seed, 36, 36, cm.root, i, values, sizeof(values), path,
                                                  (size_t)np - 1, err, sizeof(err)),
                    RC_EAUTH);
    memcpy(path + (size_t)np * H, path, H);
    CU_ASSERT_EQUAL(auth_challenge_verify_opening(seed, 36, 36, cm.root, i, values, sizeof(values), path,
                                                  (size_t)np + 1, err, sizeof(err)),
                    RC_EAUTH);
    /* Another root; a tree of another size. */
    uint8_t root[H];
    memcpy(root, cm.root, H);
    root[0] ^= 0x80;
    CU_ASSERT_EQUAL(auth_challenge_verify_opening(seed, 36, 36, root, i, values, sizeof(values), path, (size_t)np,
                                                  err, sizeof(err)),
                    RC_EAUTH);
    CU_ASSERT_STRING_EQUAL(err, "row 17's path does not lead to the committed root");
    /* Row 34 has a sibling among 36 leaves and none among 35: its path cannot serve both. */
    bytes_of(cm.c + (size_t)34 * 36, 36, values);
    np = auth_merkle_path(cm.tree, 34, path, AUTH_CHALLENGE_PATH_MAX);
    CU_ASSERT_EQUAL(auth_challenge_verify_opening(seed, 36, 36, cm.root, 34, values, sizeof(values), path, (size_t)np,
                                                  err, sizeof(err)),
                    0);
    CU_ASSERT_EQUAL(auth_challenge_verify_opening(seed, 36, 35, cm.root, 34, values, sizeof(values), path, (size_t)np,
                                                  err, sizeof(err)),
                    RC_EAUTH);
    commit_free(&cm);
}

static void test_wrong_shapes_are_refused(void)
{
    uint8_t seed[32], root[H] = {0}, values[4 * 64] = {0};
    seed_from(seed, 7);
    char err[256] = "";
    CU_ASSERT_EQUAL(auth_challenge_verify_opening(seed, 18, 18, root, 0, values, 72, NULL, 0, err, sizeof(err)),
                    RC_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "multiple of 4"));
    CU_ASSERT_EQUAL(auth_challenge_verify_opening(seed, 8, 8, root, 0, values, 32, NULL, 0, err, sizeof(err)),
                    RC_EINVAL);
    CU_ASSERT_EQUAL(auth_challenge_verify_opening(seed, 16, 16, root, 16, values, 64, NULL, 0, err, sizeof(err)),
                    RC_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "row 16"));
    CU_ASSERT_EQUAL(auth_challenge_verify_opening(seed, 16, 17, root, 0, values, 64, NULL, 0, err, sizeof(err)),
                    RC_EINVAL);
    CU_ASSERT_EQUAL(auth_challenge_verify_opening(seed, 16, 16, root, 0, values, 60, NULL, 0, err, sizeof(err)),
                    RC_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "60 bytes"));
    CU_ASSERT_EQUAL(auth_challenge_check_order(16, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(auth_challenge_check_order(8192, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(auth_challenge_check_order(8196, err, sizeof(err)), RC_EINVAL);
    CU_ASSERT_EQUAL(auth_challenge_check_order(12, err, sizeof(err)), RC_EINVAL);
}

static void test_cpu_kernel_limits_and_cancel(void)
{
    uint8_t seed[32];
    seed_from(seed, 8);
    char err[256] = "";
    int32_t dummy[16];
    CU_ASSERT_EQUAL(auth_challenge_product_cpu(seed, 4096, 4096, 1, NULL, dummy, NULL, err, sizeof(err)), RC_ERANGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "GPU"));
    CU_ASSERT_EQUAL(auth_challenge_product_cpu(seed, 16, 17, 1, NULL, dummy, NULL, err, sizeof(err)), RC_EINVAL);
    int cancel = 1;
    int32_t *c = rc_malloc(64 * 64 * sizeof(int32_t));
    CU_ASSERT_EQUAL(auth_challenge_product_cpu(seed, 64, 64, 2, &cancel, c, NULL, err, sizeof(err)), RC_ECANCELED);
    rc_free(c);
}

static void test_pick_rows(void)
{
    uint8_t vseed[32], other[32];
    seed_from(vseed, 9);
    seed_from(other, 10);
    uint32_t rows[64], again[64], diff[64];
    CU_ASSERT_EQUAL(auth_challenge_pick_rows(vseed, 1000, 16, rows), 0);
    CU_ASSERT_EQUAL(auth_challenge_pick_rows(vseed, 1000, 16, again), 0);
    CU_ASSERT_EQUAL(auth_challenge_pick_rows(other, 1000, 16, diff), 0);
    CU_ASSERT_EQUAL(memcmp(rows, again, 16 * sizeof(uint32_t)), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(rows, diff, 16 * sizeof(uint32_t)), 0);
    for (int i = 0; i < 16; i++) {
        CU_ASSERT(rows[i] < 1000);
        for (int j = 0; j < i; j++)
            CU_ASSERT_NOT_EQUAL(rows[i], rows[j]);
    }
    /* k = n_leaves: every row exactly once. */
    CU_ASSERT_EQUAL(auth_challenge_pick_rows(vseed, 37, 37, rows), 0);
    int seen[37] = {0};
    for (int i = 0; i < 37; i++)
        if (rows[i] < 37)
            seen[rows[i]]++;
    for (int i = 0; i < 37; i++)
        CU_ASSERT_EQUAL(seen[i], 1);
    CU_ASSERT_EQUAL(auth_challenge_pick_rows(vseed, 5, 6, rows), RC_EINVAL);
    CU_ASSERT_EQUAL(auth_challenge_pick_rows(vseed, 0, 0, rows), RC_EINVAL);
    /* Every row can be drawn: over many seeds, each of 8 rows comes up. */
    int hits[8] = {0};
    for (unsigned s = 0; s < 200; s++) {
        uint8_t v[32];
        seed_from(v, 100 + s);
        uint32_t r[2];
        CU_ASSERT_EQUAL(auth_challenge_pick_rows(v, 8, 2, r), 0);
        hits[r[0] % 8]++;
        hits[r[1] % 8]++;
    }
    for (int i = 0; i < 8; i++)
        CU_ASSERT(hits[i] > 0);
}

static void test_order_for_memory(void)
{
    const uint64_t gib = 1ull << 30;
    CU_ASSERT_EQUAL(auth_challenge_order_for_memory(0, 256, 64), 256);
    CU_ASSERT_EQUAL(auth_challenge_order_for_memory(80 * gib, 256, 64), 256 + 80 * 64);
    CU_ASSERT_EQUAL(auth_challenge_order_for_memory(24 * gib - 1, 256, 64), 256 + 24 * 64); /* rounded up */
    CU_ASSERT_EQUAL(auth_challenge_order_for_memory(80 * gib, 256, 1000), AUTH_CHALLENGE_N_MAX);
    CU_ASSERT_EQUAL(auth_challenge_order_for_memory(0, 3, 0), AUTH_CHALLENGE_N_MIN);
    CU_ASSERT_EQUAL(auth_challenge_order_for_memory(0, 257, 0), 260);
    CU_ASSERT_EQUAL(auth_challenge_order_for_memory(1 * gib, 100, 5) % 4, 0);
}

static const unit_case cases[] = {
    UNIT_CASE(test_generator_is_the_documented_one),
    UNIT_CASE(test_product_matches_naive_loop),
    UNIT_CASE(test_merkle_tree_shapes),
    UNIT_CASE(test_every_row_opens),
    UNIT_CASE(test_tampered_row_fails),
    UNIT_CASE(test_tampered_path_and_wrong_root_fail),
    UNIT_CASE(test_wrong_shapes_are_refused),
    UNIT_CASE(test_cpu_kernel_limits_and_cancel),
    UNIT_CASE(test_pick_rows),
    UNIT_CASE(test_order_for_memory),
};

int main(void)
{
    return unit_run("auth_challenge", cases, UNIT_N(cases));
}
