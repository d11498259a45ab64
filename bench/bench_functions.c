/*
 * Remote functions of the task benchmarks, loaded by workers from the code search path.
 */
#include "rayc.h"

/* Ray's microbenchmark task: no work, a 2-byte result. */
static int noop(rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    (void)args;
    (void)nargs;
    return rayc_return(ctx, 0, "ok", 2);
}
RAYC_REMOTE(noop)

/* The actor of the actor benchmarks (Ray's microbenchmark Actor): small_value returns a
 * 2-byte result; small_value_arg takes one argument too. */
static void *bench_actor_create(rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    (void)ctx;
    (void)args;
    (void)nargs;
    static int self;
    return &self;
}

static int small_value(void *self, rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    (void)self;
    (void)args;
    (void)nargs;
    return rayc_return(ctx, 0, "ok", 2);
}

static const rayc_actor_method bench_actor_methods[] = {
    {"small_value", small_value},
    {"small_value_arg", small_value},
    {NULL, NULL},
};

static const rayc_actor_class BenchActor = {"BenchActor", bench_actor_create, NULL, bench_actor_methods};
RAYC_ACTOR_CLASS(BenchActor)
