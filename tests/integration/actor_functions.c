/*
 * Actor classes and remote functions for the actor and placement-group tests, loaded by
 * workers from the code search path.
 *
 * Counter: an int64 and the log of every value pushed to it, in arrival order. Its methods
 * exercise ordering (push/log), concurrency (overlap/max_overlap), failures (fail, die) and
 * identity (where: pid, node, GPUs).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rayc.h"

typedef struct counter {
    pthread_mutex_t mu;
    int64_t value;
    int64_t *log;
    size_t n_log, cap_log;
    int active, max_active;
} counter;

static int get_i64(const rayc_object *o, int64_t *out)
{
    if (o->size != sizeof(*out))
        return -1;
    memcpy(out, o->data, sizeof(*out));
    return 0;
}

static void *counter_create(rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    counter *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    pthread_mutex_init(&c->mu, NULL);
    if (nargs && get_i64(&args[0], &c->value) < 0) {
        free(c);
        rayc_task_fail(ctx, "Counter takes an int64 start value, not %zu bytes", args[0].size);
        return NULL;
    }
    return c;
}

static void counter_destroy(void *self)
{
    counter *c = self;
    free(c->log);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* add(x): value += x; returns the new value. */
static int counter_add(void *self, rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    counter *c = self;
    int64_t x = 1;
    if (nargs && get_i64(&args[0], &x) < 0)
        return rayc_task_fail(ctx, "add takes an int64");
    pthread_mutex_lock(&c->mu);
    c->value += x;
    int64_t v = c->value;
    pthread_mutex_unlock(&c->mu);
    return rayc_return(ctx, 0, &v, sizeof(v));
}

/* push(x): appends x to the log (the order calls ran in). */
static int counter_push(void *self, rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    counter *c = self;
    int64_t x;
    if (nargs != 1 || get_i64(&args[0], &x) < 0)
        return rayc_task_fail(ctx, "push takes one int64");
    pthread_mutex_lock(&c->mu);
    if (c->n_log == c->cap_log) {
        c->cap_log = c->cap_log ? c->cap_log * 2 : 64;
        c->log = realloc(c->log, c->cap_log * sizeof(*c->log));
    }
    c->log[c->n_log++] = x;
    pthread_mutex_unlock(&c->mu);
    return rayc_return(ctx, 0, &x, sizeof(x));
}

/* log(): the pushed values, in the order they arrived. */
static int counter_log(void *self, rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    (void)args;
    (void)nargs;
    counter *c = self;
    pthread_mutex_lock(&c->mu);
    int rc = rayc_return(ctx, 0, c->log ? (void *)c->log : "", c->n_log * sizeof(*c->log));
    pthread_mutex_unlock(&c->mu);
    return rc;
}

/* overlap(ms): holds a slot for ms milliseconds; the class records how many ran at once. */
static int counter_overlap(void *self, rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    counter *c = self;
    int64_t ms = 100;
    if (nargs)
        get_i64(&args[0], &ms);
    pthread_mutex_lock(&c->mu);
    if (++c->active > c->max_active)
        c->max_active = c->active;
    pthread_mutex_unlock(&c->mu);
    usleep((useconds_t)ms * 1000);
    pthread_mutex_lock(&c->mu);
    c->active--;
    pthread_mutex_unlock(&c->mu);
    int64_t one = 1;
    return rayc_return(ctx, 0, &one, sizeof(one));
}

static int counter_max_overlap(void *self, rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    (void)args;
    (void)nargs;
    counter *c = self;
    pthread_mutex_lock(&c->mu);
    int64_t m = c->max_active;
    pthread_mutex_unlock(&c->mu);
    return rayc_return(ctx, 0, &m, sizeof(m));
}

static int counter_fail(void *self, rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    (void)self;
    (void)args;
    return rayc_task_fail(ctx, "Counter.fail called with %zu arguments", nargs);
}

/* die(): the actor's worker exits (a crash, as far as the cluster can tell). */
static int counter_die(void *self, rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    (void)self;
    (void)ctx;
    (void)args;
    (void)nargs;
    fflush(NULL);
    _exit(3);
}

/* where(): {pid, node id, gpu count, gpu ids[4]} as int64s and bytes (see actor_where). */
typedef struct actor_where {
    int64_t pid;
    uint8_t node_id[RAYC_NODE_ID_SIZE];
    int32_t n_gpus;
    int32_t gpus[4];
} actor_where;

static int counter_where(void *self, rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    (void)self;
    (void)args;
    (void)nargs;
    actor_where w;
    memset(&w, 0, sizeof(w));
    w.pid = getpid();
    rayc_runtime_context rc;
    rayc_get_runtime_context(&rc);
    memcpy(w.node_id, rc.node_id, RAYC_NODE_ID_SIZE);
    int ids[4];
    w.n_gpus = rayc_get_gpu_ids(ids, 4);
    for (int i = 0; i < w.n_gpus && i < 4; i++)
        w.gpus[i] = ids[i];
    return rayc_return(ctx, 0, &w, sizeof(w));
}

/* sleep(ms): returns the value after sleeping (a call in flight while tests kill things). */
static int counter_sleep(void *self, rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    counter *c = self;
    int64_t ms = 0;
    if (nargs)
        get_i64(&args[0], &ms);
    usleep((useconds_t)ms * 1000);
    pthread_mutex_lock(&c->mu);
    int64_t v = c->value;
    pthread_mutex_unlock(&c->mu);
    return rayc_return(ctx, 0, &v, sizeof(v));
}

static const rayc_actor_method counter_methods[] = {
    {"add", counter_add},     {"push", counter_push},   {"log", counter_log},
    {"overlap", counter_overlap}, {"max_overlap", counter_max_overlap},
    {"fail", counter_fail},   {"die", counter_die},     {"where", counter_where},
    {"sleep", counter_sleep}, {NULL, NULL},
};

static const rayc_actor_class Counter = {"Counter", counter_create, counter_destroy, counter_methods};
RAYC_ACTOR_CLASS(Counter)

/* A class whose constructor always fails. */
static void *broken_create(rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    (void)args;
    rayc_task_fail(ctx, "Broken refuses to start (%zu arguments)", nargs);
    return NULL;
}

static const rayc_actor_method broken_methods[] = {{NULL, NULL}};
static const rayc_actor_class Broken = {"Broken", broken_create, NULL, broken_methods};
RAYC_ACTOR_CLASS(Broken)

/* ---- remote functions ------------------------------------------------------------------ */

/* call_add(handle, x): a task holding an actor handle calls add(x) and returns the result. */
static int call_add(rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    if (nargs != 2 || args[0].size != sizeof(rayc_actor) || args[1].size != 8)
        return rayc_task_fail(ctx, "call_add takes an actor handle and an int64");
    rayc_actor a;
    memcpy(&a, args[0].data, sizeof(a));
    rayc_arg call_args[] = {RAYC_ARG_VALUE(args[1].data, 8)};
    rayc_ref ref;
    if (rayc_actor_call(&a, "add", call_args, 1, NULL, &ref) != 0)
        return rayc_task_fail(ctx, "rayc_actor_call: %s", rayc_last_error());
    rayc_object out;
    rayc_get(&ref, 1, -1, &out);
    int rc = out.error ? rayc_task_fail(ctx, "add failed: %s", out.error_message)
                       : rayc_return(ctx, 0, out.data, out.size);
    rayc_object_release(&out, 1);
    rayc_ref_release(&ref);
    return rc;
}
RAYC_REMOTE(call_add)

/* spawn_counter(detached): this worker creates a Counter (detached if the int64 is 1) and
 * returns {actor handle, worker pid}: the test then kills the owner. */
static int spawn_counter(rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    int64_t detached = 0;
    if (nargs)
        get_i64(&args[0], &detached);
    rayc_actor_options o;
    rayc_actor_options_init(&o);
    o.detached = (int)detached;
    o.name = detached ? "orphan-survivor" : NULL;
    rayc_actor a;
    if (rayc_actor_create("Counter", NULL, 0, &o, &a) != 0)
        return rayc_task_fail(ctx, "rayc_actor_create: %s", rayc_last_error());
    /* Wait until it is up, so that the owner's death is what ends it. */
    rayc_ref ref;
    rayc_actor_call(&a, "add", NULL, 0, NULL, &ref);
    rayc_object out;
    rayc_get(&ref, 1, -1, &out);
    rayc_object_release(&out, 1);
    rayc_ref_release(&ref);
    struct {
        rayc_actor a;
        int64_t pid;
    } r;
    memset(&r, 0, sizeof(r));
    r.a = a;
    r.pid = getpid();
    return rayc_return(ctx, 0, &r, sizeof(r));
}
RAYC_REMOTE(spawn_counter)

/* where_task(): {pid, node, gpus} of a plain task (placement-group tests). */
static int where_task(rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    return counter_where(NULL, ctx, args, nargs);
}
RAYC_REMOTE(where_task)

/* child_where(): submits where_task with default options (no group of its own) and returns
 * what the child saw: inside a capturing placement group, the child joins the group. */
static int child_where(rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    (void)args;
    (void)nargs;
    rayc_ref ref;
    if (rayc_submit("where_task", NULL, 0, NULL, &ref) != 0)
        return rayc_task_fail(ctx, "rayc_submit: %s", rayc_last_error());
    rayc_object out;
    rayc_get(&ref, 1, -1, &out);
    int rc = out.error ? rayc_task_fail(ctx, "the child failed: %s", out.error_message)
                       : rayc_return(ctx, 0, out.data, out.size);
    rayc_object_release(&out, 1);
    rayc_ref_release(&ref);
    return rc;
}
RAYC_REMOTE(child_where)
