/*
 * Remote functions for the task tests, loaded by workers from the code search path. Each
 * exercises one behaviour: plain values, errors, crashes, GPU assignment, large results,
 * nested tasks.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rayc.h"

/* Returns its first argument unchanged (or "" without arguments). */
static int echo(rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    return rayc_return(ctx, 0, nargs ? args[0].data : "", nargs ? args[0].size : 0);
}
RAYC_REMOTE(echo)

/* Sum of its int64 arguments. */
static int add(rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    int64_t sum = 0;
    for (size_t i = 0; i < nargs; i++) {
        int64_t v;
        if (args[i].size != sizeof(v))
            return rayc_task_fail(ctx, "argument %zu holds %zu bytes, not an int64", i, args[i].size);
        memcpy(&v, args[i].data, sizeof(v));
        sum += v;
    }
    return rayc_return(ctx, 0, &sum, sizeof(sum));
}
RAYC_REMOTE(add)

/* Fails with a message naming its input. */
static int fail(rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    return rayc_task_fail(ctx, "failing on purpose with %zu arguments", nargs);
}
RAYC_REMOTE(fail)

/* Sleeps argument 0 (int64) milliseconds, then returns its pid. */
static int sleep_ms(rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    int64_t ms = 0;
    if (nargs && args[0].size == sizeof(ms))
        memcpy(&ms, args[0].data, sizeof(ms));
    usleep((useconds_t)(ms * 1000));
    int64_t pid = getpid();
    return rayc_return(ctx, 0, &pid, sizeof(pid));
}
RAYC_REMOTE(sleep_ms)

/* Kills its own worker: every attempt dies. */
static int crash(rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    (void)ctx;
    (void)args;
    (void)nargs;
    kill(getpid(), SIGKILL);
    return 0;
}
RAYC_REMOTE(crash)

/* Kills its worker on the first attempt only: argument 0 is a marker file path; the
 * attempt that finds no marker creates it and dies. */
static int crash_once(rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    char path[512];
    if (!nargs || args[0].size >= sizeof(path))
        return rayc_task_fail(ctx, "crash_once needs a marker path");
    memcpy(path, args[0].data, args[0].size);
    path[args[0].size] = '\0';
    if (access(path, F_OK) != 0) {
        FILE *f = fopen(path, "w");
        if (f)
            fclose(f);
        kill(getpid(), SIGKILL);
    }
    return rayc_return(ctx, 0, "survived", 8);
}
RAYC_REMOTE(crash_once)

/* "CUDA_VISIBLE_DEVICES|gpu ids from rayc_get_gpu_ids|OMP_NUM_THREADS" */
static int gpu_env(rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    (void)args;
    (void)nargs;
    char out[256];
    int ids[16];
    int n = rayc_get_gpu_ids(ids, 16);
    const char *cuda = getenv("CUDA_VISIBLE_DEVICES");
    const char *omp = getenv("OMP_NUM_THREADS");
    int len = snprintf(out, sizeof(out), "%s|", cuda ? cuda : "(unset)");
    for (int i = 0; i < n; i++)
        len += snprintf(out + len, sizeof(out) - (size_t)len, "%s%d", i ? "," : "", ids[i]);
    len += snprintf(out + len, sizeof(out) - (size_t)len, "|%s", omp ? omp : "(unset)");
    return rayc_return(ctx, 0, out, (size_t)len);
}
RAYC_REMOTE(gpu_env)

/* Returns argument 0 (int64) bytes of a pattern keyed by argument 1 (int64). */
static int big(rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    int64_t size = 0, seed = 0;
    if (nargs < 2 || args[0].size != 8 || args[1].size != 8)
        return rayc_task_fail(ctx, "big needs (size, seed)");
    memcpy(&size, args[0].data, 8);
    memcpy(&seed, args[1].data, 8);
    uint8_t *buf = malloc((size_t)size);
    if (!buf)
        return rayc_task_fail(ctx, "out of memory for %lld bytes", (long long)size);
    for (int64_t i = 0; i < size; i++)
        buf[i] = (uint8_t)((i * 31 + seed) & 0xff);
    int rc = rayc_return(ctx, 0, buf, (size_t)size);
    free(buf);
    return rc;
}
RAYC_REMOTE(big)

/* Checks argument 0 against big()'s pattern for seed argument 1; returns its size or fails. */
static int check_big(rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    int64_t seed = 0;
    if (nargs < 2 || args[1].size != 8)
        return rayc_task_fail(ctx, "check_big needs (blob, seed)");
    memcpy(&seed, args[1].data, 8);
    const uint8_t *p = args[0].data;
    for (size_t i = 0; i < args[0].size; i++)
        if (p[i] != (uint8_t)((i * 31 + (uint64_t)seed) & 0xff))
            return rayc_task_fail(ctx, "byte %zu differs", i);
    int64_t size = (int64_t)args[0].size;
    return rayc_return(ctx, 0, &size, sizeof(size));
}
RAYC_REMOTE(check_big)

/* Nested tasks: submits argument 0 (int64) add() children from inside a task and returns
 * the sum of their results. */
static int fan_out(rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    int64_t n = 0;
    if (nargs && args[0].size == 8)
        memcpy(&n, args[0].data, 8);
    if (n < 0 || n > 1000)
        return rayc_task_fail(ctx, "fan_out of %lld", (long long)n);
    static __thread rayc_ref refs[1000];
    for (int64_t i = 0; i < n; i++) {
        int64_t a = i, b = 1;
        rayc_arg a2[] = {RAYC_ARG_VALUE(&a, 8), RAYC_ARG_VALUE(&b, 8)};
        if (rayc_submit("add", a2, 2, NULL, &refs[i]) != 0)
            return rayc_task_fail(ctx, "cannot submit child %lld: %s", (long long)i, rayc_last_error());
    }
    static __thread rayc_object outs[1000];
    if (rayc_get(refs, (size_t)n, 60000, outs) != 0)
        return rayc_task_fail(ctx, "children did not finish");
    int64_t sum = 0;
    for (int64_t i = 0; i < n; i++) {
        if (outs[i].error)
            return rayc_task_fail(ctx, "child %lld failed: %s", (long long)i, outs[i].error_message);
        int64_t v;
        memcpy(&v, outs[i].data, 8);
        sum += v;
    }
    rayc_object_release(outs, (size_t)n);
    for (int64_t i = 0; i < n; i++)
        rayc_ref_release(&refs[i]);
    return rayc_return(ctx, 0, &sum, sizeof(sum));
}
RAYC_REMOTE(fan_out)

/* The node this task runs on (28 bytes). */
static int where(rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    (void)args;
    (void)nargs;
    rayc_runtime_context rc;
    rayc_get_runtime_context(&rc);
    return rayc_return(ctx, 0, rc.node_id, sizeof(rc.node_id));
}
RAYC_REMOTE(where)

/* Two results: argument 0 and its length. */
static int two(rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    if (!nargs)
        return rayc_task_fail(ctx, "two needs an argument");
    int64_t len = (int64_t)args[0].size;
    rayc_return(ctx, 0, args[0].data, args[0].size);
    return rayc_return(ctx, 1, &len, sizeof(len));
}
RAYC_REMOTE(two)
