/*
 * Remote functions and an actor class for test_reconstruction: large results (kept in a
 * node's shared-memory store) with a pattern the test can check, so that a result made
 * again after its node died can be told right from wrong.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rayc.h"

/* Byte i of the pattern for seed. */
static uint8_t pattern_byte(uint64_t i, int64_t seed)
{
    return (uint8_t)((i * 31 + (uint64_t)seed) & 0xff);
}

static int read_i64(const rayc_object *o, int64_t *out)
{
    if (o->error || o->size != 8)
        return -1;
    memcpy(out, o->data, 8);
    return 0;
}

static int return_pattern(rayc_task_ctx *ctx, int64_t size, int64_t seed)
{
    if (size < 0 || size > (int64_t)1 << 30)
        return rayc_task_fail(ctx, "bad size %lld", (long long)size);
    uint8_t *buf = malloc(size ? (size_t)size : 1);
    if (!buf)
        return rayc_task_fail(ctx, "out of memory for %lld bytes", (long long)size);
    for (int64_t i = 0; i < size; i++)
        buf[i] = pattern_byte((uint64_t)i, seed);
    int rc = rayc_return(ctx, 0, buf, (size_t)size);
    free(buf);
    return rc;
}

static int check_pattern(const rayc_object *o, int64_t seed)
{
    const uint8_t *p = o->data;
    for (size_t i = 0; i < o->size; i++)
        if (p[i] != pattern_byte(i, seed))
            return -1;
    return 0;
}

/* rc_pattern(size, seed): size bytes of the pattern for seed. */
static int rc_pattern(rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    int64_t size, seed;
    if (nargs != 2 || read_i64(&args[0], &size) || read_i64(&args[1], &seed))
        return rayc_task_fail(ctx, "rc_pattern takes (size, seed)");
    return return_pattern(ctx, size, seed);
}
RAYC_REMOTE(rc_pattern)

/* rc_pair(size, seed): two results, the patterns for seed and seed + 1. */
static int rc_pair(rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    int64_t size, seed;
    if (nargs != 2 || read_i64(&args[0], &size) || read_i64(&args[1], &seed) || size < 0 || size > (int64_t)1 << 30)
        return rayc_task_fail(ctx, "rc_pair takes (size, seed)");
    uint8_t *buf = malloc(size ? (size_t)size : 1);
    if (!buf)
        return rayc_task_fail(ctx, "out of memory for %lld bytes", (long long)size);
    int rc = 0;
    for (int k = 0; k < 2 && rc == 0; k++) {
        for (int64_t i = 0; i < size; i++)
            buf[i] = pattern_byte((uint64_t)i, seed + k);
        rc = rayc_return(ctx, k, buf, (size_t)size);
    }
    free(buf);
    return rc;
}
RAYC_REMOTE(rc_pair)

/* rc_next(blob, seed): checks blob against seed's pattern, returns seed + 1's pattern of
 * the same size (a task that needs its argument's exact value). */
static int rc_next(rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    int64_t seed;
    if (nargs != 2 || args[0].error || read_i64(&args[1], &seed))
        return rayc_task_fail(ctx, "rc_next takes (blob, seed)");
    if (check_pattern(&args[0], seed))
        return rayc_task_fail(ctx, "rc_next: the argument is not the pattern for seed %lld", (long long)seed);
    return return_pattern(ctx, (int64_t)args[0].size, seed + 1);
}
RAYC_REMOTE(rc_next)

/* rc_check(blob, seed): blob's size if it is seed's pattern, else fails. */
static int rc_check(rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    int64_t seed;
    if (nargs != 2 || args[0].error || read_i64(&args[1], &seed))
        return rayc_task_fail(ctx, "rc_check takes (blob, seed)");
    if (check_pattern(&args[0], seed))
        return rayc_task_fail(ctx, "rc_check: the argument is not the pattern for seed %lld", (long long)seed);
    int64_t size = (int64_t)args[0].size;
    return rayc_return(ctx, 0, &size, sizeof(size));
}
RAYC_REMOTE(rc_check)

/* An actor whose make(size, seed) returns the pattern: an actor's result cannot be made
 * again by rerunning the call. */
static void *maker_create(rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    (void)ctx;
    (void)args;
    (void)nargs;
    static int token;
    return &token;
}

static int maker_make(void *self, rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    (void)self;
    return rc_pattern(ctx, args, nargs);
}

static const rayc_actor_method maker_methods[] = {{"make", maker_make}, {NULL, NULL}};
static const rayc_actor_class Maker = {"Maker", maker_create, NULL, maker_methods};
RAYC_ACTOR_CLASS(Maker)
