/*
 * Bad input never crashes or wedges a daemon. Against a real rayc-gcs (memory and Redis
 * storage) and a real raylet, every method of every service they serve gets, through
 * rpc_client_call_raw: random bytes of random lengths, well-formed requests built at random
 * from the method's protobuf-c descriptor (the fields a handler actually reads), those
 * requests truncated at random points, and those requests with random bit flips. IDs in
 * requests often come from a small pool, so that calls meet the state earlier calls made
 * (a node registered, then reported, drained, unregistered). Every call must be answered
 * before its deadline (a long poll may legitimately be held until its deadline), and after
 * each method's batch the daemon must still be running and serving. Unknown paths must
 * answer UNIMPLEMENTED, odd cluster-ID metadata must be refused, enum values no .proto
 * declares must be harmless (proto3 enums are open), raw TCP garbage (not even HTTP/2) must
 * not hurt either daemon, and each daemon must still stop cleanly (exit 0, which under
 * ASan also means no leak) after all of it.
 *
 * Reproducible: the seed is printed, and RAYC_FUZZ_SEED=<n> repeats a run. Calls of one
 * batch are in flight together, which keeps a few thousand calls within seconds.
 *
 * One global fixture (F), main thread only; a case stopped by a fatal assertion leaves its
 * daemons for the next case (or main) to tear down.
 */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "gcs_client.h"
#include "gcs_service.pb-c.h"
#include "health.pb-c.h"
#include "node_manager.pb-c.h"
#include "rayc_gcs.pb-c.h"
#include "rc_config.h"
#include "rc_ids.h"
#include "rc_time.h"
#include "unit.h"

enum {
    N_RANDOM = 24,     /* per method: random bytes */
    N_VALID = 48,      /* well-formed random requests, sent as they are */
    N_TRUNCATED = 24,  /* well-formed, cut short */
    N_FLIPPED = 32,    /* well-formed, with 1..4 bits flipped */
    BATCH_MAX = N_RANDOM + N_VALID + N_TRUNCATED + N_FLIPPED,
    CALL_DEADLINE_MS = 8000,
    HELD_DEADLINE_MS = 300, /* long polls and lease requests may be held until their deadline */
    MAX_DEPTH = 4,
};

typedef struct fuzz {
    harness_cluster c;
    uv_loop_t loop;
    uv_timer_t timer;
    rpc_ctx *ctx;
    gcs_client *gc;
    rpc_client *raylet; /* to raylet 0, when a case starts one */
    int up;
} fuzz;

static fuzz F;
static uint64_t rng_state;
static uint64_t seed0; /* printed so a failing run can be repeated */

/* ---- randomness --------------------------------------------------------------------- */

static uint64_t rnd(void)
{
    /* xorshift64*: plenty for fuzzing, and repeatable from a printed seed */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

static size_t rnd_below(size_t n)
{
    return n ? (size_t)(rnd() % n) : 0;
}

static void rnd_fill(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)rnd();
}

/* ---- fixture ------------------------------------------------------------------------ */

static void fuzz_down(void)
{
    if (!F.up)
        return;
    F.up = 0;
    if (F.raylet)
        rpc_client_destroy(F.raylet);
    F.raylet = NULL;
    if (F.gc)
        gcs_client_destroy(F.gc);
    F.gc = NULL;
    if (F.ctx)
        rpc_ctx_destroy(F.ctx);
    F.ctx = NULL;
    uv_close((uv_handle_t *)&F.timer, NULL);
    uv_run(&F.loop, UV_RUN_DEFAULT);
    CU_ASSERT_EQUAL(uv_loop_close(&F.loop), 0);
    harness_cluster_destroy(&F.c);
}

/* Health checks fast enough that nodes the fuzzer registers (with made-up addresses) die
 * while it runs, so deaths happen under load too; lenient enough that a real raylet busy
 * with fuzz input is never declared dead. */
static void fuzz_health_settings(void)
{
    setenv("RAYC_health_check_initial_delay_ms", "100", 1);
    setenv("RAYC_health_check_period_ms", "200", 1);
    setenv("RAYC_health_check_timeout_ms", "2000", 1);
    setenv("RAYC_health_check_failure_threshold", "5", 1);
}

/* GCS (and optionally one raylet) up, client connected. */
static int fuzz_up(int use_redis, int with_raylet)
{
    fuzz_down();
    memset(&F, 0, sizeof(F));
    fuzz_health_settings();
    rc_config_init();
    int rc = harness_cluster_init(&F.c, use_redis);
    F.up = 1;
    uv_loop_init(&F.loop);
    uv_timer_init(&F.loop, &F.timer);
    if (rc == 0)
        rc = harness_gcs_start(&F.c);
    if (rc == 0)
        rc = rpc_ctx_create(&F.loop, &F.ctx);
    if (rc == 0)
        rc = gcs_client_create(F.ctx, F.c.gcs_address, &F.gc);
    char err[300] = "";
    if (rc == 0 && (rc = gcs_client_connect_sync(F.gc, 10000, err, sizeof(err))) != 0)
        fprintf(stderr, "connect: %s\n", err);
    if (rc == 0 && with_raylet) {
        int idx;
        rc = harness_raylet_start(&F.c, NULL, &idx);
        char target[64];
        snprintf(target, sizeof(target), "127.0.0.1:%d", F.c.raylets[0].port);
        if (rc == 0)
            rc = rpc_client_create(F.ctx, target, NULL, &F.raylet);
    }
    return rc;
}

static void on_deadline(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

static int run_until(const int *flag, int ms)
{
    int expired = 0;
    F.timer.data = &expired;
    uv_timer_start(&F.timer, on_deadline, (uint64_t)ms, 0);
    while (!*flag && !expired)
        uv_run(&F.loop, UV_RUN_ONCE);
    uv_timer_stop(&F.timer);
    return *flag != 0;
}

/* 1 while the GCS process runs (reaps it, and forgets its pid, once it has exited). */
static int gcs_running(void)
{
    int status;
    if (F.c.gcs_pid <= 0)
        return 0;
    if (waitpid(F.c.gcs_pid, &status, WNOHANG) == F.c.gcs_pid) {
        fprintf(stderr, "rayc-gcs exited (status 0x%x); see %s/logs/gcs.err\n", status, F.c.root);
        F.c.gcs_pid = 0;
        return 0;
    }
    return 1;
}

/* The GCS answers GetClusterId with its cluster ID. */
static int gcs_serves(void)
{
    Ray__Rpc__GetClusterIdRequest req = RAY__RPC__GET_CLUSTER_ID_REQUEST__INIT;
    ProtobufCMessage *reply = NULL;
    char err[200] = "";
    int st = rpc_client_call_sync(gcs_client_rpc(F.gc), &ray__rpc__node_info_gcs_service__descriptor,
                                  "GetClusterId", &req.base, 5000, &reply, err, sizeof(err));
    int ok = st == GRPC_STATUS_OK &&
             ((Ray__Rpc__GetClusterIdReply *)reply)->cluster_id.len == RC_CLUSTER_ID_SIZE &&
             memcmp(((Ray__Rpc__GetClusterIdReply *)reply)->cluster_id.data, gcs_client_cluster_id(F.gc),
                    RC_CLUSTER_ID_SIZE) == 0;
    if (!ok)
        fprintf(stderr, "GetClusterId: %s %s\n", rpc_code_name(st), err);
    rpc_msg_free(reply);
    return ok;
}

/* The raylet answers Health/Check with SERVING. */
static int raylet_serves(void)
{
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    ProtobufCMessage *reply = NULL;
    char err[200] = "";
    int st = rpc_client_call_sync(F.raylet, &grpc__health__v1__health__descriptor, "Check", &req.base, 5000, &reply,
                                  err, sizeof(err));
    int ok = st == GRPC_STATUS_OK && ((Grpc__Health__V1__HealthCheckResponse *)reply)->status ==
                                         GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    if (!ok)
        fprintf(stderr, "Health/Check: %s %s\n", rpc_code_name(st), err);
    rpc_msg_free(reply);
    return ok;
}

/* The GCS still lists raylet 0 as alive. */
static int raylet_alive_in_gcs(void)
{
    uint8_t id[RC_NODE_ID_SIZE];
    if (rc_id_from_hex(F.c.raylets[0].node_id, id, sizeof(id)) != 0)
        return 0;
    ProtobufCBinaryData ids[1] = {{sizeof(id), id}};
    Ray__Rpc__CheckAliveRequest req = RAY__RPC__CHECK_ALIVE_REQUEST__INIT;
    req.node_ids = ids;
    req.n_node_ids = 1;
    ProtobufCMessage *reply = NULL;
    int st = rpc_client_call_sync(gcs_client_rpc(F.gc), &ray__rpc__node_info_gcs_service__descriptor, "CheckAlive",
                                  &req.base, 5000, &reply, NULL, 0);
    const Ray__Rpc__CheckAliveReply *r = (const void *)reply;
    int alive = st == GRPC_STATUS_OK && r->n_raylet_alive == 1 && r->raylet_alive[0];
    rpc_msg_free(reply);
    return alive;
}

/* Stops pid with SIGTERM and returns its exit status (128+signal if killed), or -1 if it
 * had not exited after 15 s (then it is killed). */
static int stop_cleanly(pid_t pid)
{
    kill(pid, SIGTERM);
    int64_t deadline = rc_mono_ms() + 15000;
    int status;
    while (rc_mono_ms() < deadline) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        rc_sleep_ms(20);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

/* ---- well-formed random requests from descriptors ----------------------------------- */

/* Every allocation of one generated message, freed together. */
typedef struct arena {
    void **ptrs;
    size_t n, cap;
} arena;

static void *arena_alloc(arena *a, size_t size)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->ptrs = realloc(a->ptrs, a->cap * sizeof(*a->ptrs));
    }
    void *p = calloc(1, size ? size : 1);
    a->ptrs[a->n++] = p;
    return p;
}

static void arena_free(arena *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->ptrs[i]);
    free(a->ptrs);
    memset(a, 0, sizeof(*a));
}

static size_t field_size(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return 4;
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM:
        return sizeof(int);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    return 8;
}

/* Integers that tend to matter: zero, one, -1, extremes, small counts and ports. */
static int64_t rnd_int(void)
{
    static const int64_t special[] = {0, 1, -1, 2, 4, 28, 65535, 65536, INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN};
    switch (rnd_below(3)) {
    case 0:
        return special[rnd_below(sizeof(special) / sizeof(special[0]))];
    case 1:
        return (int64_t)rnd_below(100);
    default:
        return (int64_t)rnd();
    }
}

static double rnd_double(void)
{
    static const double special[] = {0, 1, -1, 0.5, 0.0001, 1e300, -1e300, __builtin_nan(""), __builtin_inf(),
                                     -__builtin_inf()};
    if (rnd_below(2))
        return special[rnd_below(sizeof(special) / sizeof(special[0]))];
    return (double)(int64_t)rnd() / 1e9;
}

/* Text handlers care about (resource names, addresses), or random printable text. */
static char *rnd_string(arena *a)
{
    static const char *const words[] = {"", "CPU", "GPU", "memory", "127.0.0.1", "node:127.0.0.1", "@namespace_",
                                        "a*", "[", "job_submission_id", "ray.io/node-id", "\\"};
    if (rnd_below(2)) {
        const char *w = words[rnd_below(sizeof(words) / sizeof(words[0]))];
        char *s = arena_alloc(a, strlen(w) + 1);
        memcpy(s, w, strlen(w));
        return s;
    }
    size_t n = rnd_below(24);
    char *s = arena_alloc(a, n + 1);
    for (size_t i = 0; i < n; i++)
        s[i] = (char)(' ' + rnd_below(95));
    return s;
}

/* A few IDs of each size that requests keep coming back to, so that one request finds
 * what another created (register then unregister, report, drain; add then finish a job). */
enum { POOL = 4 };
static uint8_t pool[POOL][RC_NODE_ID_SIZE];

/* Bytes of the lengths IDs have (job 4, placement group 18, node 28), often a pooled ID,
 * or any length. */
static ProtobufCBinaryData rnd_bytes(arena *a)
{
    static const size_t lens[] = {0, 1, 4, 18, 28, 28, 28, 64};
    size_t n = rnd_below(5) ? lens[rnd_below(sizeof(lens) / sizeof(lens[0]))] : rnd_below(40);
    ProtobufCBinaryData b = {n, arena_alloc(a, n)};
    if ((n == 4 || n == 28) && rnd_below(2))
        memcpy(b.data, pool[rnd_below(POOL)], n);
    else
        rnd_fill(b.data, n);
    return b;
}

static ProtobufCMessage *gen_message(const ProtobufCMessageDescriptor *d, int depth, arena *a);

static void gen_value(const ProtobufCFieldDescriptor *f, void *slot, int depth, arena *a)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        *(int32_t *)slot = (int32_t)rnd_int();
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        *(int64_t *)slot = rnd_int();
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        *(float *)slot = (float)rnd_double();
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        *(double *)slot = rnd_double();
        break;
    case PROTOBUF_C_TYPE_BOOL:
        *(protobuf_c_boolean *)slot = (protobuf_c_boolean)rnd_below(2);
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *e = f->descriptor;
        *(int *)slot = rnd_below(5) && e->n_values ? e->values[rnd_below(e->n_values)].value : (int)rnd_int();
        break;
    }
    case PROTOBUF_C_TYPE_STRING:
        *(char **)slot = rnd_string(a);
        break;
    case PROTOBUF_C_TYPE_BYTES:
        *(ProtobufCBinaryData *)slot = rnd_bytes(a);
        break;
    case PROTOBUF_C_TYPE_MESSAGE:
        *(ProtobufCMessage **)slot = gen_message(f->descriptor, depth + 1, a);
        break;
    }
}

/* A message of type d with random fields (at most one member of each oneof, up to three
 * elements per repeated field, sub-messages down to MAX_DEPTH). Lives in a. */
static ProtobufCMessage *gen_message(const ProtobufCMessageDescriptor *d, int depth, arena *a)
{
    ProtobufCMessage *m = arena_alloc(a, d->sizeof_message);
    d->message_init(m);
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        char *base = (char *)m;
        int is_message = f->type == PROTOBUF_C_TYPE_MESSAGE;
        if (is_message && depth >= MAX_DEPTH)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = depth >= MAX_DEPTH - 1 ? rnd_below(2) : rnd_below(4);
            size_t size = field_size(f);
            char *array = arena_alloc(a, n * size);
            for (size_t k = 0; k < n; k++)
                gen_value(f, array + k * size, depth, a);
            *(size_t *)(base + f->quantifier_offset) = n;
            *(void **)(base + f->offset) = array;
            continue;
        }
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t *which = (uint32_t *)(base + f->quantifier_offset);
            if (*which || rnd_below(3) == 0)
                continue; /* a sibling was chosen, or none will be */
            *which = f->id;
            gen_value(f, base + f->offset, depth, a);
            continue;
        }
        if (rnd_below(5) == 0)
            continue; /* left at its default */
        if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset && !is_message &&
            f->type != PROTOBUF_C_TYPE_STRING)
            *(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
        gen_value(f, base + f->offset, depth, a);
    }
    return m;
}

/* A packed well-formed random request of type d; *len gets its size. Free with free(). */
static uint8_t *gen_request(const ProtobufCMessageDescriptor *d, size_t *len)
{
    arena a = {0};
    ProtobufCMessage *m = gen_message(d, 0, &a);
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(*len ? *len : 1);
    protobuf_c_message_pack(m, buf);
    arena_free(&a);
    return buf;
}

/* ---- batches of raw calls ----------------------------------------------------------- */

typedef enum input_kind { IN_RANDOM, IN_VALID, IN_TRUNCATED, IN_FLIPPED } input_kind;
static const char *const kind_names[] = {"random bytes", "well-formed", "truncated", "bit-flipped"};
/* Calls of each kind answered OK, i.e. that got past parsing into a handler. */
static int accepted[4];

typedef struct batch batch;

typedef struct raw_call {
    batch *b;
    input_kind kind;
    uint8_t *data;
    size_t len;
    int done;
    int code;
} raw_call;

struct batch {
    char path[200];
    int may_hold; /* the method may hold a well-formed call (long poll, lease request) */
    raw_call calls[BATCH_MAX];
    int n, answered;
    int all_answered;
};

static void on_raw(const rpc_status *st, const void *reply, size_t len, void *arg)
{
    raw_call *c = arg;
    (void)reply;
    (void)len;
    c->done = 1;
    c->code = st->code;
    if (++c->b->answered == c->b->n)
        c->b->all_answered = 1;
}

static void batch_add(batch *b, input_kind kind, uint8_t *data, size_t len)
{
    raw_call *c = &b->calls[b->n++];
    c->b = b;
    c->kind = kind;
    c->data = data;
    c->len = len;
}

/* Fills b with inputs for a method whose requests are of type input. */
static void batch_fill(batch *b, const ProtobufCMessageDescriptor *input)
{
    for (int i = 0; i < N_RANDOM; i++) {
        size_t len = rnd_below(8) == 0 ? rnd_below(16384) : rnd_below(256);
        uint8_t *data = malloc(len ? len : 1);
        rnd_fill(data, len);
        batch_add(b, IN_RANDOM, data, len);
    }
    for (int i = 0; i < N_VALID; i++) {
        size_t len;
        uint8_t *data = gen_request(input, &len);
        batch_add(b, IN_VALID, data, len);
    }
    for (int i = 0; i < N_TRUNCATED; i++) {
        size_t len;
        uint8_t *data = gen_request(input, &len);
        batch_add(b, IN_TRUNCATED, data, len ? rnd_below(len) : 0);
    }
    for (int i = 0; i < N_FLIPPED; i++) {
        size_t len;
        uint8_t *data = gen_request(input, &len);
        for (size_t k = 0, flips = 1 + rnd_below(4); len && k < flips; k++) {
            size_t bit = rnd_below(len * 8);
            data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        batch_add(b, IN_FLIPPED, data, len);
    }
}

static void print_input(const raw_call *c)
{
    fprintf(stderr, "  input (%s, %zu bytes):", kind_names[c->kind], c->len);
    for (size_t i = 0; i < c->len && i < 64; i++)
        fprintf(stderr, " %02x", c->data[i]);
    fprintf(stderr, "%s\n", c->len > 64 ? " ..." : "");
}

/* Sends every input of b at once to path on cli and waits for all answers. Returns the
 * number of calls whose outcome is not acceptable (printed on stderr). */
static int batch_run(batch *b, rpc_client *cli)
{
    int64_t deadline = b->may_hold ? HELD_DEADLINE_MS : CALL_DEADLINE_MS;
    int started = 0;
    for (int i = 0; i < b->n; i++) {
        raw_call *c = &b->calls[i];
        if (rpc_client_call_raw(cli, b->path, c->data, c->len, deadline, on_raw, c) == 0) {
            started++;
        } else {
            c->done = 1;
            c->code = -1;
            b->all_answered = ++b->answered == b->n;
        }
    }
    /* every call ends by its deadline at the latest; the margin is for a slow machine */
    run_until(&b->all_answered, CALL_DEADLINE_MS + 10000);
    /* A method with no handler yet answers UNIMPLEMENTED to everything: that is an answer. */
    int unimplemented = 0;
    for (int i = 0; i < b->n; i++)
        unimplemented += b->calls[i].done && b->calls[i].code == GRPC_STATUS_UNIMPLEMENTED;
    if (unimplemented == b->n) {
        fprintf(stderr, "%s: not implemented by this daemon yet\n", b->path);
        return 0;
    }
    int bad = 0;
    for (int i = 0; i < b->n; i++) {
        const raw_call *c = &b->calls[i];
        int ok;
        if (!c->done)
            ok = 0;
        else if (c->code == GRPC_STATUS_OK)
            ok = 1;
        else if (c->code == GRPC_STATUS_INVALID_ARGUMENT)
            ok = c->kind != IN_VALID; /* malformed bytes are refused; well-formed ones never */
        else
            ok = b->may_hold && (c->code == GRPC_STATUS_DEADLINE_EXCEEDED || c->code == GRPC_STATUS_CANCELLED);
        if (ok) {
            accepted[c->kind] += c->code == GRPC_STATUS_OK;
            continue;
        }
        if (bad++ < 5) {
            fprintf(stderr, "%s: %s\n", b->path,
                    c->done ? (c->code < 0 ? "call not started" : rpc_code_name((grpc_status_code)c->code))
                            : "no answer");
            print_input(c);
        }
    }
    CU_ASSERT_EQUAL(started, b->n);
    return bad;
}

static void batch_free(batch *b)
{
    for (int i = 0; i < b->n; i++)
        free(b->calls[i].data);
    b->n = b->answered = 0;
}

/* Methods that would legitimately stop the raylet they are sent to. */
static int stops_the_daemon(const char *method)
{
    return strcmp(method, "ShutdownRaylet") == 0 || strcmp(method, "DrainRaylet") == 0;
}

/* Fuzzes every method of svc (except those that stop the daemon) on cli; after each method
 * checks that the daemon still serves (alive()). Returns the number of calls sent. */
static int fuzz_service(rpc_client *cli, const ProtobufCServiceDescriptor *svc, int (*alive)(void))
{
    static batch b; /* large; one at a time */
    int sent = 0;
    for (unsigned m = 0; m < svc->n_methods; m++) {
        const ProtobufCMethodDescriptor *md = &svc->methods[m];
        if (stops_the_daemon(md->name))
            continue;
        memset(&b, 0, sizeof(b));
        snprintf(b.path, sizeof(b.path), "/%s/%s", svc->name, md->name);
        b.may_hold = strcmp(md->name, "GcsSubscriberPoll") == 0 || strcmp(md->name, "RequestWorkerLease") == 0;
        batch_fill(&b, md->input);
        int bad = batch_run(&b, cli);
        sent += b.n;
        if (bad)
            fprintf(stderr, "%s: %d of %d calls ended badly\n", b.path, bad, b.n);
        CU_ASSERT_EQUAL(bad, 0);
        batch_free(&b);
        int serving = alive();
        if (!serving)
            fprintf(stderr, "the daemon stopped serving after %s (seed %llu)\n", b.path,
                    (unsigned long long)seed0);
        CU_ASSERT_TRUE_FATAL(serving);
    }
    return sent;
}

static int gcs_alive_and_serving(void)
{
    return gcs_running() && gcs_serves();
}

static int raylet_alive_and_serving(void)
{
    return harness_raylet_alive(&F.c, 0) && raylet_serves();
}

/* Every service rayc-gcs serves. */
static const ProtobufCServiceDescriptor *const gcs_services[] = {
    &ray__rpc__node_info_gcs_service__descriptor,    &ray__rpc__job_info_gcs_service__descriptor,
    &ray__rpc__internal_kvgcs_service__descriptor,   &ray__rpc__node_resource_info_gcs_service__descriptor,
    &ray__rpc__internal_pub_sub_gcs_service__descriptor, &rayc__rpc__resource_report_gcs_service__descriptor,
    &ray__rpc__actor_info_gcs_service__descriptor,   &ray__rpc__placement_group_info_gcs_service__descriptor,
    &ray__rpc__worker_info_gcs_service__descriptor,
};

/* ---- cases -------------------------------------------------------------------------- */

static void fuzz_gcs_methods(int use_redis)
{
    CU_ASSERT_EQUAL_FATAL(fuzz_up(use_redis, 0), 0);
    memset(accepted, 0, sizeof(accepted));
    int64_t t0 = rc_mono_ms();
    int sent = 0;
    for (size_t s = 0; s < sizeof(gcs_services) / sizeof(gcs_services[0]); s++)
        sent += fuzz_service(gcs_client_rpc(F.gc), gcs_services[s], gcs_alive_and_serving);
    fprintf(stderr, "gcs (%s): %d calls in %lld ms; answered OK: %d random, %d well-formed, %d truncated, %d flipped\n",
            use_redis ? "redis" : "memory", sent, (long long)(rc_mono_ms() - t0), accepted[IN_RANDOM],
            accepted[IN_VALID], accepted[IN_TRUNCATED], accepted[IN_FLIPPED]);
    /* After all of it the GCS still stops cleanly. */
    pid_t pid = F.c.gcs_pid;
    F.c.gcs_pid = 0;
    CU_ASSERT_EQUAL(stop_cleanly(pid), 0);
    fuzz_down();
}

static void test_fuzz_gcs_methods_memory(void)
{
    fuzz_gcs_methods(0);
}

static void test_fuzz_gcs_methods_redis(void)
{
    fuzz_gcs_methods(1);
}

/* Paths nobody serves, and cluster-ID metadata that names no cluster or is malformed. */
static void test_fuzz_gcs_paths_and_metadata(void)
{
    CU_ASSERT_EQUAL_FATAL(fuzz_up(0, 0), 0);
    static const char *const paths[] = {
        "/ray.rpc.NodeInfoGcsService/NoSuchMethod",
        "/ray.rpc.NoSuchService/GetClusterId",
        "/ray.rpc.NodeInfoGcsService/getclusterid",
        "/ray.rpc.NodeInfoGcsService/GetClusterId/extra",
        "/ray.rpc.NodeInfoGcsService/",
        "/ray.rpc.NodeManagerService/ShutdownRaylet", /* the raylet's, not the GCS's */
        "/grpc.health.v1.Health/Check",
        "/",
        "/x",
    };
    uint8_t junk[64];
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        rnd_fill(junk, sizeof(junk));
        char err[200] = "";
        int st = rpc_client_call_raw_sync(gcs_client_rpc(F.gc), paths[i], junk, rnd_below(sizeof(junk)), 5000, err,
                                          sizeof(err));
        if (st != GRPC_STATUS_UNIMPLEMENTED)
            fprintf(stderr, "%s: %s %s\n", paths[i], rpc_code_name(st), err);
        CU_ASSERT_EQUAL(st, GRPC_STATUS_UNIMPLEMENTED);
    }
    CU_ASSERT_TRUE(gcs_alive_and_serving());

    /* Metadata that is not this cluster's ID in any form is refused; GetClusterId is not. */
    char longid[4097];
    memset(longid, 'a', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    char upper[RC_ID_HEX_MAX];
    rc_id_hex(gcs_client_cluster_id(F.gc), RC_CLUSTER_ID_SIZE, upper);
    for (char *p = upper; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    char prefix[RC_ID_HEX_MAX];
    rc_id_hex(gcs_client_cluster_id(F.gc), RC_CLUSTER_ID_SIZE, prefix);
    prefix[20] = '\0';
    const char *const values[] = {"", "not hex at all", longid, prefix, upper};
    rpc_client *cli;
    CU_ASSERT_EQUAL_FATAL(rpc_client_create(F.ctx, F.c.gcs_address, NULL, &cli), 0);
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        rpc_client_set_metadata(cli, "ray_cluster_id", values[i]);
        Ray__Rpc__GetAllNodeInfoRequest req = RAY__RPC__GET_ALL_NODE_INFO_REQUEST__INIT;
        ProtobufCMessage *reply = NULL;
        char err[200] = "";
        int st = rpc_client_call_sync(cli, &ray__rpc__node_info_gcs_service__descriptor, "GetAllNodeInfo", &req.base,
                                      5000, &reply, err, sizeof(err));
        rpc_msg_free(reply);
        reply = NULL;
        if (st != GRPC_STATUS_UNAUTHENTICATED)
            fprintf(stderr, "metadata value %zu: %s %s\n", i, rpc_code_name(st), err);
        CU_ASSERT_EQUAL(st, GRPC_STATUS_UNAUTHENTICATED);
        Ray__Rpc__GetClusterIdRequest idreq = RAY__RPC__GET_CLUSTER_ID_REQUEST__INIT;
        st = rpc_client_call_sync(cli, &ray__rpc__node_info_gcs_service__descriptor, "GetClusterId", &idreq.base, 5000,
                                  &reply, err, sizeof(err));
        CU_ASSERT_EQUAL(st, GRPC_STATUS_OK);
        rpc_msg_free(reply);
    }
    rpc_client_destroy(cli);
    CU_ASSERT_TRUE(gcs_alive_and_serving());
    fuzz_down();
}

/* ---- enum values outside their declarations ----------------------------------------- */

/* Proto3 enums are open: a value the .proto does not declare is still a valid message and
 * must be carried, compared or refused, never looked up blindly. */

/* Calls method of svc on the GCS; returns the gRPC status and the GcsStatus code in *code. */
static int gcs_call(const ProtobufCServiceDescriptor *svc, const char *method, const ProtobufCMessage *req, int *code)
{
    ProtobufCMessage *reply = NULL;
    char err[200] = "";
    int st = rpc_client_call_sync(gcs_client_rpc(F.gc), svc, method, req, 5000, &reply, err, sizeof(err));
    if (st != GRPC_STATUS_OK)
        fprintf(stderr, "%s: %s %s\n", method, rpc_code_name(st), err);
    *code = st == GRPC_STATUS_OK ? gcs_reply_status(reply, NULL) : -1;
    rpc_msg_free(reply);
    return st;
}

static int register_node(const uint8_t *id, int state, int death_reason)
{
    Ray__Rpc__NodeDeathInfo death = RAY__RPC__NODE_DEATH_INFO__INIT;
    death.reason = (Ray__Rpc__NodeDeathInfo__Reason)death_reason;
    Ray__Rpc__GcsNodeInfo info = RAY__RPC__GCS_NODE_INFO__INIT;
    info.node_id.data = (uint8_t *)id;
    info.node_id.len = RC_NODE_ID_SIZE;
    info.node_manager_address = "127.0.0.1";
    info.node_manager_port = 1;
    info.state = (Ray__Rpc__GcsNodeInfo__GcsNodeState)state;
    info.death_info = &death;
    Ray__Rpc__RegisterNodeRequest req = RAY__RPC__REGISTER_NODE_REQUEST__INIT;
    req.node_info = &info;
    int code;
    int st = gcs_call(&ray__rpc__node_info_gcs_service__descriptor, "RegisterNode", &req.base, &code);
    return st == GRPC_STATUS_OK ? code : -1;
}

static void test_fuzz_gcs_unknown_enum_values(void)
{
    CU_ASSERT_EQUAL_FATAL(fuzz_up(0, 0), 0);
    /* a node claiming state 9 and a death reason 77 registers (as alive) */
    uint8_t id[RC_NODE_ID_SIZE];
    rc_id_random(id, sizeof(id));
    CU_ASSERT_EQUAL(register_node(id, 9, 77), GCS_STATUS_OK);
    int code;
    Ray__Rpc__GetAllNodeInfoRequest q = RAY__RPC__GET_ALL_NODE_INFO_REQUEST__INIT;
    q._state_filter_case = RAY__RPC__GET_ALL_NODE_INFO_REQUEST___STATE_FILTER_STATE_FILTER;
    q.state_filter = (Ray__Rpc__GcsNodeInfo__GcsNodeState)5;
    CU_ASSERT_EQUAL(gcs_call(&ray__rpc__node_info_gcs_service__descriptor, "GetAllNodeInfo", &q.base, &code),
                    GRPC_STATUS_OK);
    /* channels no subscriber can name, subscribed to and published on */
    static const int channels[] = {31, 32, -3, 1000};
    for (size_t i = 0; i < sizeof(channels) / sizeof(channels[0]); i++) {
        Ray__Rpc__SubMessage sm = RAY__RPC__SUB_MESSAGE__INIT;
        Ray__Rpc__Command cmd = RAY__RPC__COMMAND__INIT;
        Ray__Rpc__Command *cmds[1] = {&cmd};
        cmd.channel_type = (Ray__Rpc__ChannelType)channels[i];
        cmd.command_message_one_of_case = RAY__RPC__COMMAND__COMMAND_MESSAGE_ONE_OF_SUBSCRIBE_MESSAGE;
        cmd.subscribe_message = &sm;
        Ray__Rpc__GcsSubscriberCommandBatchRequest creq = RAY__RPC__GCS_SUBSCRIBER_COMMAND_BATCH_REQUEST__INIT;
        creq.subscriber_id.data = id;
        creq.subscriber_id.len = 8;
        creq.commands = cmds;
        creq.n_commands = 1;
        CU_ASSERT_EQUAL(gcs_call(&ray__rpc__internal_pub_sub_gcs_service__descriptor, "GcsSubscriberCommandBatch",
                                 &creq.base, &code),
                        GRPC_STATUS_OK);
        Ray__Rpc__PubMessage m = RAY__RPC__PUB_MESSAGE__INIT;
        Ray__Rpc__PubMessage *ms[1] = {&m};
        m.channel_type = (Ray__Rpc__ChannelType)channels[i];
        Ray__Rpc__GcsPublishRequest preq = RAY__RPC__GCS_PUBLISH_REQUEST__INIT;
        preq.pub_messages = ms;
        preq.n_pub_messages = 1;
        CU_ASSERT_EQUAL(gcs_call(&ray__rpc__internal_pub_sub_gcs_service__descriptor, "GcsPublish", &preq.base, &code),
                        GRPC_STATUS_OK);
    }
    /* a job whose config names an actor lifetime that does not exist */
    uint8_t job[RC_JOB_ID_SIZE] = {9, 9, 9, 9};
    Ray__Rpc__JobConfig config = RAY__RPC__JOB_CONFIG__INIT;
    config.default_actor_lifetime = (Ray__Rpc__JobConfig__ActorLifetime)55;
    Ray__Rpc__JobTableData data = RAY__RPC__JOB_TABLE_DATA__INIT;
    data.job_id.data = job;
    data.job_id.len = sizeof(job);
    data.config = &config;
    Ray__Rpc__AddJobRequest areq = RAY__RPC__ADD_JOB_REQUEST__INIT;
    areq.data = &data;
    CU_ASSERT_EQUAL(gcs_call(&ray__rpc__job_info_gcs_service__descriptor, "AddJob", &areq.base, &code), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(code, GCS_STATUS_OK);
    CU_ASSERT_TRUE(gcs_alive_and_serving());
    fuzz_down();
}

/* UnregisterNode of an alive node with a death reason NodeDeathInfo.Reason does not
 * declare (found by the fuzzer: the GCS looked the value's name up and used it unchecked). */
static void test_fuzz_gcs_unregister_unknown_reason(void)
{
    CU_ASSERT_EQUAL_FATAL(fuzz_up(0, 0), 0);
    static const int reasons[] = {42, -1};
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        uint8_t id[RC_NODE_ID_SIZE];
        rc_id_random(id, sizeof(id));
        CU_ASSERT_EQUAL(register_node(id, 0, 0), GCS_STATUS_OK);
        Ray__Rpc__NodeDeathInfo death = RAY__RPC__NODE_DEATH_INFO__INIT;
        death.reason = (Ray__Rpc__NodeDeathInfo__Reason)reasons[i];
        death.reason_message = "a reason from the future";
        Ray__Rpc__UnregisterNodeRequest req = RAY__RPC__UNREGISTER_NODE_REQUEST__INIT;
        req.node_id.data = id;
        req.node_id.len = sizeof(id);
        req.node_death_info = &death;
        int code;
        CU_ASSERT_EQUAL(gcs_call(&ray__rpc__node_info_gcs_service__descriptor, "UnregisterNode", &req.base, &code),
                        GRPC_STATUS_OK);
        int serving = gcs_alive_and_serving();
        if (!serving)
            fprintf(stderr, "UnregisterNode with death reason %d stopped the GCS\n", reasons[i]);
        CU_ASSERT_TRUE_FATAL(serving);
        /* the node is dead either way */
        ProtobufCBinaryData ids[1] = {{sizeof(id), id}};
        Ray__Rpc__CheckAliveRequest creq = RAY__RPC__CHECK_ALIVE_REQUEST__INIT;
        creq.node_ids = ids;
        creq.n_node_ids = 1;
        ProtobufCMessage *reply = NULL;
        CU_ASSERT_EQUAL(rpc_client_call_sync(gcs_client_rpc(F.gc), &ray__rpc__node_info_gcs_service__descriptor,
                                             "CheckAlive", &creq.base, 5000, &reply, NULL, 0),
                        GRPC_STATUS_OK);
        const Ray__Rpc__CheckAliveReply *cr = (const void *)reply;
        CU_ASSERT(cr && cr->n_raylet_alive == 1 && !cr->raylet_alive[0]);
        rpc_msg_free(reply);
    }
    fuzz_down();
}

static void test_fuzz_raylet_methods(void)
{
    CU_ASSERT_EQUAL_FATAL(fuzz_up(0, 1), 0);
    CU_ASSERT_TRUE_FATAL(raylet_serves());
    int64_t t0 = rc_mono_ms();
    int sent = fuzz_service(F.raylet, &ray__rpc__node_manager_service__descriptor, raylet_alive_and_serving);
    sent += fuzz_service(F.raylet, &grpc__health__v1__health__descriptor, raylet_alive_and_serving);
    fprintf(stderr, "raylet: %d calls in %lld ms\n", sent, (long long)(rc_mono_ms() - t0));
    static const char *const paths[] = {"/ray.rpc.NodeManagerService/NoSuchMethod",
                                        "/ray.rpc.NodeInfoGcsService/GetClusterId", "/grpc.health.v1.Health/Watch"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        CU_ASSERT_EQUAL(rpc_client_call_raw_sync(F.raylet, paths[i], "", 0, 5000, NULL, 0), GRPC_STATUS_UNIMPLEMENTED);
    CU_ASSERT_TRUE(raylet_alive_and_serving());
    CU_ASSERT_TRUE(raylet_alive_in_gcs());
    CU_ASSERT_TRUE(gcs_alive_and_serving());
    /* It still leaves the cluster cleanly. */
    CU_ASSERT_EQUAL(stop_cleanly(F.c.raylets[0].pid), 0);
    F.c.raylets[0].pid = 0;
    fuzz_down();
}

/* ---- TCP garbage -------------------------------------------------------------------- */

static int tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {2, 0}; /* a peer that stops reading must not stall the test */
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Writes up to n bytes (fewer if the peer hangs up or stops reading); returns bytes sent. */
static size_t send_all(int fd, const uint8_t *p, size_t n)
{
    size_t off = 0;
    while (off < n) {
        ssize_t w = send(fd, p + off, n - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    return off;
}

static const char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/* Garbage of several kinds at port; returns how many connections were made. */
static int spray(int port)
{
    static uint8_t buf[1 << 16];
    int made = 0;
    for (int i = 0; i < 40; i++) { /* not HTTP/2 at all */
        int fd = tcp_connect(port);
        if (fd < 0)
            continue;
        made++;
        size_t n = 1 + rnd_below(4096);
        rnd_fill(buf, n);
        send_all(fd, buf, n);
        close(fd);
    }
    for (int i = 0; i < 20; i++) { /* a valid preface, then garbage frames */
        int fd = tcp_connect(port);
        if (fd < 0)
            continue;
        made++;
        send_all(fd, (const uint8_t *)kPreface, sizeof(kPreface) - 1);
        size_t n = 1 + rnd_below(4096);
        rnd_fill(buf, n);
        if (i % 2) { /* an empty SETTINGS frame first, so garbage lands mid-session */
            static const uint8_t settings[9] = {0, 0, 0, 4, 0, 0, 0, 0, 0};
            send_all(fd, settings, sizeof(settings));
        }
        send_all(fd, buf, n);
        close(fd);
    }
    for (int i = 0; i < 10; i++) { /* connect and reset at once */
        int fd = tcp_connect(port);
        if (fd < 0)
            continue;
        made++;
        struct linger lg = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        close(fd);
    }
    /* one huge random stream */
    int fd = tcp_connect(port);
    if (fd >= 0) {
        made++;
        size_t total = 0;
        for (int k = 0; k < 512; k++) { /* up to 32 MiB */
            rnd_fill(buf, sizeof(buf));
            size_t w = send_all(fd, buf, sizeof(buf));
            total += w;
            if (w < sizeof(buf))
                break;
        }
        close(fd);
    }
    return made;
}

/* Connections that say half a preface and then nothing, held open. */
static int hold_open(int port, int *fds, int n)
{
    int made = 0;
    for (int i = 0; i < n; i++) {
        fds[i] = tcp_connect(port);
        if (fds[i] >= 0) {
            send_all(fds[i], (const uint8_t *)kPreface, 10);
            made++;
        }
    }
    return made;
}

static void test_fuzz_tcp_garbage(void)
{
    CU_ASSERT_EQUAL_FATAL(fuzz_up(0, 1), 0);
    int ports[2] = {F.c.gcs_port, F.c.raylets[0].port};
    for (int p = 0; p < 2; p++) {
        int made = spray(ports[p]);
        CU_ASSERT(made >= 60);
        CU_ASSERT_TRUE(gcs_alive_and_serving());
        CU_ASSERT_TRUE(raylet_alive_and_serving());
    }
    /* idle half-open connections on both ports do not keep real clients out */
    int fds[2][16];
    CU_ASSERT_EQUAL(hold_open(ports[0], fds[0], 16), 16);
    CU_ASSERT_EQUAL(hold_open(ports[1], fds[1], 16), 16);
    CU_ASSERT_TRUE(gcs_alive_and_serving());
    CU_ASSERT_TRUE(raylet_alive_and_serving());
    for (int p = 0; p < 2; p++)
        for (int i = 0; i < 16; i++)
            if (fds[p][i] >= 0)
                close(fds[p][i]);
    CU_ASSERT_TRUE(raylet_alive_in_gcs());
    CU_ASSERT_TRUE(gcs_alive_and_serving());
    CU_ASSERT_EQUAL(stop_cleanly(F.c.raylets[0].pid), 0);
    F.c.raylets[0].pid = 0;
    pid_t pid = F.c.gcs_pid;
    F.c.gcs_pid = 0;
    CU_ASSERT_EQUAL(stop_cleanly(pid), 0);
    fuzz_down();
}

static const unit_case cases[] = {
    UNIT_CASE(test_fuzz_gcs_methods_memory),
    UNIT_CASE(test_fuzz_gcs_methods_redis),
    UNIT_CASE(test_fuzz_gcs_paths_and_metadata),
    UNIT_CASE(test_fuzz_gcs_unknown_enum_values),
    UNIT_CASE(test_fuzz_gcs_unregister_unknown_reason),
    UNIT_CASE(test_fuzz_raylet_methods),
    UNIT_CASE(test_fuzz_tcp_garbage),
};

int main(void)
{
    const char *seed = getenv("RAYC_FUZZ_SEED");
    rng_state = seed ? strtoull(seed, NULL, 10) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    if (!rng_state)
        rng_state = 1;
    seed0 = rng_state;
    for (int i = 0; i < POOL; i++)
        rnd_fill(pool[i], sizeof(pool[i]));
    fprintf(stderr, "fuzz seed: %llu (RAYC_FUZZ_SEED=<seed> repeats this run)\n", (unsigned long long)seed0);
    int rc = unit_run("gcs_fuzz", cases, UNIT_N(cases));
    fuzz_down();
    return rc;
}
