/*
 * ChallengeService on the raylet's TCP server (proto/rayc_market.proto; ARCHITECTURE §9): a
 * leased host proves what it claims. RunChallenge computes the seeded product of
 * auth_challenge.h and commits to its rows with a Merkle root; OpenChallengeRows opens rows
 * of that commitment with their authentication paths. Admin only (rpc_acl_def.h).
 *
 * The computation runs off the loop thread (uv_queue_work; the CPU kernel spreads over the
 * node's cores), so leases and health checks are served meanwhile. One challenge at a
 * time: a second RunChallenge while one runs is UNAVAILABLE. The result (C and its tree)
 * is kept for the latest challenge_id until it has been opened once or the next challenge
 * starts; then it is dropped (n = 8192 is 256 MiB of results).
 *
 * device "gpu": cuBLAS's int8 GEMM (cublasGemmEx, int32 results, CUBLAS_COMPUTE_32I),
 * libcudart and libcublas loaded with dlopen when the host has them, so nothing is needed at
 * build time; without them (or when they fail) the CPU kernel answers and device_used says
 * "cpu": the verifier decides whether that is acceptable. Orders above the CPU kernel's
 * bound then fail with FAILED_PRECONDITION. NVML's model, memory and count of GPUs come
 * with every reply when NVML is present.
 *
 * Errors are gRPC statuses with a sentence: INVALID_ARGUMENT for a malformed request (ids
 * of the wrong length, an order the challenge refuses, an unknown challenge, rows out of
 * range or too many), UNAVAILABLE while another challenge runs or while the raylet stops.
 * Successful replies carry an OK GcsStatus.
 *
 * For tests and demos (the market's local provider), two raylet flags make a host
 * misbehave on purpose: --testing-challenge-corrupt commits to a product whose rows are
 * wrong except every eighth (a host faking its GPU), --testing-challenge-delay-ms N answers
 * N ms late (a host too slow for its class; compute_us includes the delay).
 *
 * Loop thread only, except the work function and what it calls (marked).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth_challenge.h"
#include "gcs_status.h"
#include "raylet_int.h"
#include "rayc_market.pb-c.h"
#include "rc_alloc.h"
#include "rc_err.h"
#include "rc_log.h"

enum {
    RAYLET__CHALLENGE_MAX_THREADS = 16,
    /* An OpenChallengeRows reply stays under gRPC's default 4 MiB message limit. */
    RAYLET__OPEN_MAX_BYTES = 3 * 1024 * 1024,
    /* Corrupt mode: every row but one in this many is wrong. */
    RAYLET__CORRUPT_EVERY = 8,
};

/* One computation: inputs copied from the request, outputs filled by the work function. */
typedef struct raylet__challenge_job {
    uv_work_t work;
    struct raylet_challenge *ch;
    uint8_t id[AUTH_CHALLENGE_ID_SIZE];
    uint8_t seed[AUTH_CHALLENGE_SEED_SIZE];
    uint32_t n;
    int want_gpu;
    int corrupt;
    int64_t delay_ms;
    /* outputs */
    int rc;
    int code; /* grpc status when rc < 0 */
    char err[384];
    int32_t *c;
    auth_merkle *tree;
    int64_t compute_us;
    char device_used[160];
    char nvml_model[96];
    uint64_t nvml_memory;
    unsigned nvml_count;
} raylet__challenge_job;

struct raylet_challenge {
    raylet *r;
    raylet__challenge_job *running; /* NULL when idle */
    rpc_call *call;                 /* the RunChallenge waiting for running; NULL once answered */
    int cancel;                     /* read by the kernel (atomic) */
    int closing;                    /* destroyed while running: the after-work frees */
    /* the latest result */
    int have_result;
    uint8_t id[AUTH_CHALLENGE_ID_SIZE];
    uint32_t n;
    int32_t *c;
    auth_merkle *tree;
};

static int64_t raylet__now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void raylet__challenge_drop_result(raylet_challenge *ch)
{
    rc_free(ch->c);
    auth_merkle_free(ch->tree);
    ch->c = NULL;
    ch->tree = NULL;
    ch->have_result = 0;
}

static void raylet__job_free(raylet__challenge_job *job)
{
    rc_free(job->c);
    auth_merkle_free(job->tree);
    rc_free(job);
}

/* ---- CUDA and cuBLAS through dlopen (work thread) ---------------------------------------- */

enum {
    RAYLET__CUDA_MEMCPY_H2D = 1,
    RAYLET__CUDA_MEMCPY_D2H = 2,
    RAYLET__CUBLAS_OP_N = 0,
    RAYLET__CUBLAS_OP_T = 1,
    RAYLET__CUDA_R_8I = 3,
    RAYLET__CUDA_R_32I = 10,
    RAYLET__CUBLAS_COMPUTE_32I = 72,
    RAYLET__CUBLAS_GEMM_DEFAULT = -1,
};

typedef struct raylet__cuda {
    int loaded;
    char why[256]; /* why not, when !loaded */
    int (*malloc_)(void **, size_t);
    int (*free_)(void *);
    int (*memcpy_)(void *, const void *, size_t, int);
    int (*sync)(void);
    int (*create)(void **);
    int (*destroy)(void *);
    int (*gemm)(void *, int, int, int, int, int, const void *, const void *, int, int, const void *, int, int,
                const void *, void *, int, int, int, int);
} raylet__cuda;

static raylet__cuda raylet__cuda_lib;
static pthread_once_t raylet__cuda_once = PTHREAD_ONCE_INIT;

static void *raylet__dlopen_any(const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (h)
            return h;
    }
    return NULL;
}

/* Loads the libraries once per process; they stay loaded. */
static void raylet__cuda_load(void)
{
    raylet__cuda *cu = &raylet__cuda_lib;
    static const char *const cudart[] = {"libcudart.so", "libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0"};
    static const char *const cublas[] = {"libcublas.so", "libcublas.so.13", "libcublas.so.12", "libcublas.so.11"};
    void *rt = raylet__dlopen_any(cudart, RC_ARRAY_LEN(cudart));
    void *bl = rt ? raylet__dlopen_any(cublas, RC_ARRAY_LEN(cublas)) : NULL;
    if (!rt || !bl) {
        snprintf(cu->why, sizeof(cu->why), "%s was not found", !rt ? "libcudart.so" : "libcublas.so");
        return;
    }
    *(void **)&cu->malloc_ = dlsym(rt, "cudaMalloc");
    *(void **)&cu->free_ = dlsym(rt, "cudaFree");
    *(void **)&cu->memcpy_ = dlsym(rt, "cudaMemcpy");
    *(void **)&cu->sync = dlsym(rt, "cudaDeviceSynchronize");
    *(void **)&cu->create = dlsym(bl, "cublasCreate_v2");
    *(void **)&cu->destroy = dlsym(bl, "cublasDestroy_v2");
    *(void **)&cu->gemm = dlsym(bl, "cublasGemmEx");
    if (!cu->malloc_ || !cu->free_ || !cu->memcpy_ || !cu->sync || !cu->create || !cu->destroy || !cu->gemm) {
        snprintf(cu->why, sizeof(cu->why), "the CUDA libraries found lack cudaMalloc, cudaMemcpy or cublasGemmEx");
        return;
    }
    cu->loaded = 1;
}

/* C = A x B on the GPU. Row-major C, read column-major, is Cᵀ = Bᵀ Aᵀ: the first operand is
 * Bᵀ stored row-major (column-major: B) taken transposed, the second A stored row-major
 * (column-major: Aᵀ) taken as is; the "TN" form cuBLAS's int8 kernels prefer, every
 * leading dimension n (a multiple of 4). 0, or RC_EUNAVAIL with err when the GPU path
 * cannot be used. Work thread. */
static int raylet__gemm_cuda(const uint8_t *seed, uint32_t n, int32_t *c, char *err, size_t errlen)
{
    pthread_once(&raylet__cuda_once, raylet__cuda_load);
    raylet__cuda *cu = &raylet__cuda_lib;
    if (!cu->loaded) {
        if (snprintf(err, errlen, "%s", cu->why) >= (int)errlen)
            RC_DEBUG("raylet: the reason CUDA cannot be used was shortened");
        return RC_EUNAVAIL;
    }
    size_t nn = (size_t)n * n;
    int8_t *a = rc_try_malloc(nn), *bt = rc_try_malloc(nn), *brow = rc_try_malloc(n);
    void *da = NULL, *dbt = NULL, *dc = NULL, *handle = NULL;
    int rc = RC_EUNAVAIL, st;
    if (!a || !bt || !brow) {
        snprintf(err, errlen, "no host memory for the matrices of order %u", n);
        rc = RC_ENOMEM;
        goto out;
    }
    for (uint32_t i = 0; i < n; i++) {
        auth_challenge_gen_row(seed, 'A', n, i, a + (size_t)i * n);
        auth_challenge_gen_row(seed, 'B', n, i, brow);
        for (uint32_t j = 0; j < n; j++)
            bt[(size_t)j * n + i] = brow[j];
    }
    if ((st = cu->malloc_(&da, nn)) || (st = cu->malloc_(&dbt, nn)) || (st = cu->malloc_(&dc, nn * 4))) {
        snprintf(err, errlen, "cudaMalloc failed (error %d)", st);
        goto out;
    }
    if ((st = cu->memcpy_(da, a, nn, RAYLET__CUDA_MEMCPY_H2D)) ||
        (st = cu->memcpy_(dbt, bt, nn, RAYLET__CUDA_MEMCPY_H2D))) {
        snprintf(err, errlen, "cudaMemcpy to the GPU failed (error %d)", st);
        goto out;
    }
    if ((st = cu->create(&handle))) {
        handle = NULL;
        snprintf(err, errlen, "cublasCreate failed (status %d)", st);
        goto out;
    }
    int32_t alpha = 1, beta = 0;
    st = cu->gemm(handle, RAYLET__CUBLAS_OP_T, RAYLET__CUBLAS_OP_N, (int)n, (int)n, (int)n, &alpha, dbt,
                  RAYLET__CUDA_R_8I, (int)n, da, RAYLET__CUDA_R_8I, (int)n, &beta, dc, RAYLET__CUDA_R_32I, (int)n,
                  RAYLET__CUBLAS_COMPUTE_32I, RAYLET__CUBLAS_GEMM_DEFAULT);
    if (st) {
        snprintf(err, errlen, "cublasGemmEx (int8 in, int32 out) failed (status %d)", st);
        goto out;
    }
    if ((st = cu->sync()) || (st = cu->memcpy_(c, dc, nn * 4, RAYLET__CUDA_MEMCPY_D2H))) {
        snprintf(err, errlen, "the GEMM's result did not come back from the GPU (error %d)", st);
        goto out;
    }
    rc = 0;
out:
    if (handle)
        cu->destroy(handle);
    if (da)
        cu->free_(da);
    if (dbt)
        cu->free_(dbt);
    if (dc)
        cu->free_(dc);
    rc_free(a);
    rc_free(bt);
    rc_free(brow);
    return rc;
}

/* ---- the computation (work thread) -------------------------------------------------------- */

static int raylet__cpu_threads(void)
{
    cpu_set_t set;
    int n = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    return n > RAYLET__CHALLENGE_MAX_THREADS ? RAYLET__CHALLENGE_MAX_THREADS : n;
}

static void raylet__challenge_fail(raylet__challenge_job *job, int rc, int code)
{
    job->rc = rc;
    job->code = code;
}

static void raylet__challenge_work(uv_work_t *w)
{
    raylet__challenge_job *job = w->data;
    raylet_challenge *ch = job->ch;
    uint32_t n = job->n;
    int64_t t0 = raylet__now_us();
    int rc;
    if (raylet_nvml_first_gpu(job->nvml_model, sizeof(job->nvml_model), &job->nvml_memory, &job->nvml_count) < 0) {
        job->nvml_model[0] = '\0';
        job->nvml_memory = 0;
        job->nvml_count = 0;
    }
    job->c = rc_try_malloc((size_t)n * n * sizeof(int32_t));
    uint8_t *leaves = rc_try_malloc((size_t)n * AUTH_CHALLENGE_HASH_SIZE);
    if (!job->c || !leaves) {
        rc_free(leaves);
        snprintf(job->err, sizeof(job->err), "this node has no memory for a challenge of order %u", n);
        raylet__challenge_fail(job, RC_ENOMEM, GRPC_STATUS_RESOURCE_EXHAUSTED);
        return;
    }
    int on_gpu = 0;
    if (job->want_gpu) {
        char why[256] = "";
        if (raylet__gemm_cuda(job->seed, n, job->c, why, sizeof(why)) == 0) {
            on_gpu = 1;
            snprintf(job->device_used, sizeof(job->device_used), "cuda:%s",
                     job->nvml_model[0] ? job->nvml_model : "0");
            for (uint32_t i = 0; i < n; i++)
                auth_challenge_leaf(job->c + (size_t)i * n, n, leaves + (size_t)i * AUTH_CHALLENGE_HASH_SIZE);
        } else if (n > AUTH_CHALLENGE_CPU_N_MAX) {
            snprintf(job->err, sizeof(job->err),
                     "this node cannot run the challenge on a GPU (%s), and the CPU kernel computes orders up to %d, "
                     "not %u",
                     why, AUTH_CHALLENGE_CPU_N_MAX, n);
            rc_free(leaves);
            raylet__challenge_fail(job, RC_EUNAVAIL, GRPC_STATUS_FAILED_PRECONDITION);
            return;
        } else {
            RC_WARN("raylet: challenge on the CPU: no GPU through CUDA (%s)", why);
        }
    }
    if (!on_gpu) {
        snprintf(job->device_used, sizeof(job->device_used), "cpu");
        rc = auth_challenge_product_cpu(job->seed, n, n, raylet__cpu_threads(), &ch->cancel, job->c, leaves, job->err,
                                        sizeof(job->err));
        if (rc < 0) {
            rc_free(leaves);
            raylet__challenge_fail(job, rc, rc == RC_ECANCELED ? GRPC_STATUS_CANCELLED : GRPC_STATUS_INTERNAL);
            return;
        }
    }
    if (job->corrupt) { /* a host faking its device: most rows are not the product */
        for (uint32_t i = 0; i < n; i++) {
            if (i % RAYLET__CORRUPT_EVERY == 0)
                continue;
            job->c[(size_t)i * n + i % n] += 1;
            auth_challenge_leaf(job->c + (size_t)i * n, n, leaves + (size_t)i * AUTH_CHALLENGE_HASH_SIZE);
        }
    }
    rc = auth_merkle_build(leaves, n, &job->tree);
    rc_free(leaves);
    if (rc < 0) {
        snprintf(job->err, sizeof(job->err), "this node has no memory for the commitment of order %u", n);
        raylet__challenge_fail(job, rc, GRPC_STATUS_RESOURCE_EXHAUSTED);
        return;
    }
    /* A host too slow for its class: late, in slices so that a shutdown is not held up. */
    for (int64_t waited = 0; waited < job->delay_ms && !__atomic_load_n(&ch->cancel, __ATOMIC_RELAXED); waited += 10) {
        int64_t slice = job->delay_ms - waited < 10 ? job->delay_ms - waited : 10;
        struct timespec ts = {0, (long)slice * 1000000L};
        nanosleep(&ts, NULL);
    }
    job->compute_us = raylet__now_us() - t0;
    job->rc = 0;
}

/* ---- replies (loop thread) ---------------------------------------------------------------- */

static void raylet__challenge_answer(raylet_challenge *ch, raylet__challenge_job *job)
{
    rpc_call *call = ch->call;
    ch->call = NULL;
    if (!call)
        return;
    if (job->rc < 0) {
        rpc_reply_status(call, (grpc_status_code)job->code, "%s", job->err);
        return;
    }
    Ray__Rpc__GcsStatus ok = RAY__RPC__GCS_STATUS__INIT;
    ok.code = GCS_STATUS_OK;
    ok.message = "";
    uint8_t root[AUTH_CHALLENGE_HASH_SIZE];
    auth_merkle_root(job->tree, root);
    Rayc__Rpc__RunChallengeReply reply = RAYC__RPC__RUN_CHALLENGE_REPLY__INIT;
    reply.status = &ok;
    reply.merkle_root.data = root;
    reply.merkle_root.len = sizeof(root);
    reply.compute_us = job->compute_us;
    reply.device_used = job->device_used;
    reply.nvml_model = job->nvml_model;
    reply.nvml_memory_bytes = job->nvml_memory;
    reply.nvml_count = job->nvml_count;
    rpc_reply(call, &reply.base);
}

static void raylet__challenge_done(uv_work_t *w, int status)
{
    raylet__challenge_job *job = w->data;
    raylet_challenge *ch = job->ch;
    ch->running = NULL;
    if (ch->closing) {
        raylet__job_free(job);
        rc_free(ch);
        return;
    }
    if (status == UV_ECANCELED) {
        job->rc = RC_ECANCELED;
        job->code = GRPC_STATUS_CANCELLED;
        snprintf(job->err, sizeof(job->err), "the challenge was cancelled");
    }
    char hex[2 * AUTH_CHALLENGE_ID_SIZE + 1];
    for (int i = 0; i < AUTH_CHALLENGE_ID_SIZE; i++)
        snprintf(hex + 2 * i, 3, "%02x", job->id[i]);
    if (job->rc == 0) {
        RC_INFO("raylet: challenge %s of order %u done on %s in %lld us", hex, job->n, job->device_used,
                (long long)job->compute_us);
    } else {
        RC_WARN("raylet: challenge %s of order %u failed: %s", hex, job->n, job->err);
    }
    raylet__challenge_answer(ch, job);
    if (job->rc == 0 && !ch->cancel) {
        memcpy(ch->id, job->id, sizeof(ch->id));
        ch->n = job->n;
        ch->c = job->c;
        ch->tree = job->tree;
        ch->have_result = 1;
        job->c = NULL;
        job->tree = NULL;
    }
    ch->cancel = 0;
    raylet__job_free(job);
}

/* The caller gave up (deadline, disconnect): stop computing; the call is answered now. */
static void raylet__challenge_call_cancelled(rpc_call *call, void *arg)
{
    raylet_challenge *ch = arg;
    if (ch->call != call)
        return;
    ch->call = NULL;
    __atomic_store_n(&ch->cancel, 1, __ATOMIC_RELAXED);
    rpc_reply_status(call, GRPC_STATUS_CANCELLED, "the challenge was cancelled: its caller went away");
}

/* ---- handlers (loop thread) --------------------------------------------------------------- */

static void raylet__run_challenge(rpc_call *call, const ProtobufCMessage *msg, void *arg)
{
    raylet_challenge *ch = arg;
    const Rayc__Rpc__RunChallengeRequest *req = (const Rayc__Rpc__RunChallengeRequest *)msg;
    char err[256];
    if (req->challenge_id.len != AUTH_CHALLENGE_ID_SIZE) {
        rpc_reply_status(call, GRPC_STATUS_INVALID_ARGUMENT, "challenge_id must be %d bytes, not %zu",
                         AUTH_CHALLENGE_ID_SIZE, req->challenge_id.len);
        return;
    }
    if (req->seed.len != AUTH_CHALLENGE_SEED_SIZE) {
        rpc_reply_status(call, GRPC_STATUS_INVALID_ARGUMENT, "seed must be %d bytes, not %zu", AUTH_CHALLENGE_SEED_SIZE,
                         req->seed.len);
        return;
    }
    if (auth_challenge_check_order(req->n, err, sizeof(err)) < 0) {
        rpc_reply_status(call, GRPC_STATUS_INVALID_ARGUMENT, "%s", err);
        return;
    }
    const char *device = req->device && req->device[0] ? req->device : "cpu";
    int want_gpu = !strcmp(device, "gpu");
    if (!want_gpu && strcmp(device, "cpu") != 0) {
        rpc_reply_status(call, GRPC_STATUS_INVALID_ARGUMENT, "device must be \"gpu\" or \"cpu\", not \"%.40s\"", device);
        return;
    }
    if (!want_gpu && req->n > AUTH_CHALLENGE_CPU_N_MAX) {
        rpc_reply_status(call, GRPC_STATUS_INVALID_ARGUMENT,
                         "the CPU kernel computes orders up to %d, not %u: ask for device \"gpu\" or a smaller n",
                         AUTH_CHALLENGE_CPU_N_MAX, req->n);
        return;
    }
    if (ch->running) {
        rpc_reply_status(call, GRPC_STATUS_UNAVAILABLE, "a challenge is already running on this node; try again when "
                                                        "it has been answered");
        return;
    }
    raylet__challenge_drop_result(ch); /* a new challenge replaces the last */
    raylet__challenge_job *job = RC_NEW(raylet__challenge_job);
    job->ch = ch;
    job->work.data = job;
    memcpy(job->id, req->challenge_id.data, AUTH_CHALLENGE_ID_SIZE);
    memcpy(job->seed, req->seed.data, AUTH_CHALLENGE_SEED_SIZE);
    job->n = req->n;
    job->want_gpu = want_gpu;
    job->corrupt = ch->r->opts.testing_challenge_corrupt;
    job->delay_ms = ch->r->opts.testing_challenge_delay_ms;
    ch->cancel = 0;
    if (uv_queue_work(ch->r->loop, &job->work, raylet__challenge_work, raylet__challenge_done) != 0) {
        rc_free(job);
        rpc_reply_status(call, GRPC_STATUS_INTERNAL, "the raylet could not start the challenge's computation");
        return;
    }
    ch->running = job;
    ch->call = call;
    rpc_call_on_cancel(call, raylet__challenge_call_cancelled, ch);
}

static void raylet__open_rows(rpc_call *call, const ProtobufCMessage *msg, void *arg)
{
    raylet_challenge *ch = arg;
    const Rayc__Rpc__OpenChallengeRowsRequest *req = (const Rayc__Rpc__OpenChallengeRowsRequest *)msg;
    if (req->challenge_id.len != AUTH_CHALLENGE_ID_SIZE) {
        rpc_reply_status(call, GRPC_STATUS_INVALID_ARGUMENT, "challenge_id must be %d bytes, not %zu",
                         AUTH_CHALLENGE_ID_SIZE, req->challenge_id.len);
        return;
    }
    if (ch->running && !memcmp(ch->running->id, req->challenge_id.data, AUTH_CHALLENGE_ID_SIZE)) {
        rpc_reply_status(call, GRPC_STATUS_UNAVAILABLE, "that challenge is still running; open its rows once "
                                                        "RunChallenge has answered");
        return;
    }
    if (!ch->have_result || memcmp(ch->id, req->challenge_id.data, AUTH_CHALLENGE_ID_SIZE) != 0) {
        rpc_reply_status(call, GRPC_STATUS_INVALID_ARGUMENT,
                         "this node holds no result for that challenge_id (unknown, superseded or already opened): "
                         "run the challenge again");
        return;
    }
    uint32_t n = ch->n;
    if (req->n_rows == 0) {
        rpc_reply_status(call, GRPC_STATUS_INVALID_ARGUMENT, "no rows were asked for");
        return;
    }
    size_t per_row = (size_t)n * 4 + AUTH_CHALLENGE_PATH_MAX * (AUTH_CHALLENGE_HASH_SIZE + 2) + 16;
    size_t max_rows = RAYLET__OPEN_MAX_BYTES / per_row;
    if (req->n_rows > max_rows) {
        rpc_reply_status(call, GRPC_STATUS_INVALID_ARGUMENT, "too many rows: at most %zu rows of order %u per call, "
                                                             "not %zu", max_rows, n, req->n_rows);
        return;
    }
    for (size_t i = 0; i < req->n_rows; i++) {
        if (req->rows[i] >= n) {
            rpc_reply_status(call, GRPC_STATUS_INVALID_ARGUMENT, "row %u does not exist: the product has rows 0..%u",
                             req->rows[i], n - 1);
            return;
        }
    }
    size_t k = req->n_rows;
    Rayc__Rpc__ChallengeRowOpening *openings = rc_calloc(k, sizeof(*openings));
    Rayc__Rpc__ChallengeRowOpening **ptrs = rc_calloc(k, sizeof(*ptrs));
    uint8_t *values = rc_malloc(k * (size_t)n * 4);
    uint8_t *paths = rc_malloc(k * AUTH_CHALLENGE_PATH_MAX * AUTH_CHALLENGE_HASH_SIZE);
    ProtobufCBinaryData *path_items = rc_calloc(k * AUTH_CHALLENGE_PATH_MAX, sizeof(*path_items));
    for (size_t i = 0; i < k; i++) {
        uint32_t row = req->rows[i];
        Rayc__Rpc__ChallengeRowOpening *o = &openings[i];
        rayc__rpc__challenge_row_opening__init(o);
        o->row = row;
        o->values.data = values + i * (size_t)n * 4;
        o->values.len = (size_t)n * 4;
        auth_challenge_row_bytes(ch->c + (size_t)row * n, n, o->values.data);
        uint8_t *path = paths + i * AUTH_CHALLENGE_PATH_MAX * AUTH_CHALLENGE_HASH_SIZE;
        int np = auth_merkle_path(ch->tree, row, path, AUTH_CHALLENGE_PATH_MAX);
        o->path = &path_items[i * AUTH_CHALLENGE_PATH_MAX];
        o->n_path = np > 0 ? (size_t)np : 0;
        for (size_t h = 0; h < o->n_path; h++) {
            o->path[h].data = path + h * AUTH_CHALLENGE_HASH_SIZE;
            o->path[h].len = AUTH_CHALLENGE_HASH_SIZE;
        }
        ptrs[i] = o;
    }
    Ray__Rpc__GcsStatus ok = RAY__RPC__GCS_STATUS__INIT;
    ok.code = GCS_STATUS_OK;
    ok.message = "";
    Rayc__Rpc__OpenChallengeRowsReply reply = RAYC__RPC__OPEN_CHALLENGE_ROWS_REPLY__INIT;
    reply.status = &ok;
    reply.openings = ptrs;
    reply.n_openings = k;
    rpc_reply(call, &reply.base);
    rc_free(path_items);
    rc_free(paths);
    rc_free(values);
    rc_free(ptrs);
    rc_free(openings);
    raylet__challenge_drop_result(ch); /* opened once: a verifier that wants more runs a new challenge */
}

const rpc_method_handler raylet_challenge_handlers[] = {
    {"RunChallenge", raylet__run_challenge},
    {"OpenChallengeRows", raylet__open_rows},
    {NULL, NULL},
};

int raylet_challenge_create(raylet *r, raylet_challenge **out)
{
    raylet_challenge *ch = RC_NEW(raylet_challenge);
    ch->r = r;
    *out = ch;
    return 0;
}

void raylet_challenge_destroy(raylet_challenge *ch)
{
    if (!ch)
        return;
    __atomic_store_n(&ch->cancel, 1, __ATOMIC_RELAXED);
    if (ch->call) {
        rpc_call *call = ch->call;
        ch->call = NULL;
        rpc_reply_status(call, GRPC_STATUS_UNAVAILABLE, "the raylet is shutting down");
    }
    raylet__challenge_drop_result(ch);
    if (ch->running) {
        uv_cancel((uv_req_t *)&ch->running->work); /* not started yet: it ends now */
        ch->closing = 1;                           /* its after-work frees ch */
        return;
    }
    rc_free(ch);
}
