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
