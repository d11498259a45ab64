/* The job's remote function (test_install.sh builds it into libsquares.so). */
#include <stdint.h>
#include <string.h>

#include "rayc.h"

/* The square of its int64 argument. */
static int square(rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    int64_t v;
    if (nargs != 1 || args[0].size != sizeof(v))
        return rayc_task_fail(ctx, "square takes one int64");
    memcpy(&v, args[0].data, sizeof(v));
    v *= v;
    return rayc_return(ctx, 0, &v, sizeof(v));
}
RAYC_REMOTE(square)
