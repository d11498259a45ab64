/*
 * object manager: three raylets' object managers and stores in one process on one loop,
 * each with its own rpc server on loopback TCP (ObjectManagerService), plus a fake owner
 * serving CoreWorkerService (GetObjectLocationsOwner answers from a table the test sets,
 * UpdateObjectLocationBatch is recorded). Covered: a 100 MB object pulled in chunks with
 * every byte checked and the owner told ADDED; concurrent gets deduplicated into one pull;
 * a holder dying mid-transfer and a holder that stalls (the next holder finishes the
 * object); an unreachable owner, an owner that does not know the object and one that
 * freed it (gets answer not found at once); an object located only after a retry;
 * FreeObjects on every copy; eviction reported REMOVED; malformed and impossible Push,
 * Pull and FreeObjects requests; destroy with transfers in flight. Every test ends with
 * an empty loop.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core_worker.pb-c.h"
#include "object_manager.h"
#include "object_manager.pb-c.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_ids.h"
#include "rc_time.h"
#include "unit.h"

#define MiB (1024ull * 1024ull)

enum { MAX_NODES = 4, MAX_OBJS = 8 };

typedef struct node {
    int up;
    uint8_t id[RC_NODE_ID_SIZE];
    char path[128];
    raylet_store *store;
    raylet_om *om;
    rpc_server *srv;
    char addr[64];
    int in_table; /* the node table says it is alive */
} node;

typedef struct owner_obj {
    uint8_t id[RC_OBJECT_ID_SIZE];
    uint8_t nodes[MAX_NODES][RC_NODE_ID_SIZE];
    int n_nodes;
    uint64_t size;
    int ref_removed;
    int not_found;
} owner_obj;

typedef struct location_update {
    uint8_t node[RC_NODE_ID_SIZE];
    uint8_t obj[RC_OBJECT_ID_SIZE];
    int what;
} location_update;

typedef struct fake_owner {
    rpc_server *srv;
    int port;
    uint8_t worker_id[RC_WORKER_ID_SIZE];
    owner_obj objs[MAX_OBJS];
    int n_objs;
    int locate_calls;
    location_update updates[64];
    int n_updates;
} fake_owner;

static uv_loop_t loop;
static rpc_ctx *ctx;
static rpc_client *probe; /* the test's own client, for direct calls */
static node nodes[MAX_NODES];
static fake_owner owner;
static uv_timer_t waker;

/* ---- fixture ------------------------------------------------------------------------ */

static const char *node_address(void *arg, const uint8_t *node_id)
{
    for (int i = 0; i < MAX_NODES; i++)
        if (nodes[i].in_table && memcmp(nodes[i].id, node_id, RC_NODE_ID_SIZE) == 0)
            return nodes[i].addr;
    return NULL;
}

typedef struct node_opts {
    uint64_t store_size;
    uint64_t chunk_size;
    int chunks_in_flight;
    int64_t transfer_idle_ms;
} node_opts;

static void node_start(int i, const node_opts *o)
{
    node *n = &nodes[i];
    memset(n, 0, sizeof(*n));
    memset(n->id, 0xa0 + i, RC_NODE_ID_SIZE);
    snprintf(n->path, sizeof(n->path), "/dev/shm/rayc-test-om-%d-%d", (int)getpid(), i);
    unlink(n->path);
    char err[512];
    int rc = raylet_store_create(&loop, n->path, o->store_size, err, sizeof(err), &n->store);
    if (rc < 0)
        fprintf(stderr, "store: %s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    raylet_om_options oo = {0};
    oo.node_id = n->id;
    oo.node_address = node_address;
    oo.chunk_size = o->chunk_size;
    oo.chunks_in_flight = o->chunks_in_flight;
    oo.pull_retry_ms = 20;
    oo.pull_retry_max_ms = 100;
    oo.transfer_idle_ms = o->transfer_idle_ms ? o->transfer_idle_ms : 2000;
    CU_ASSERT_EQUAL_FATAL(raylet_om_create(ctx, n->store, &oo, &n->om), 0);
    CU_ASSERT_EQUAL_FATAL(rpc_server_create(ctx, NULL, &n->srv), 0);
    CU_ASSERT_EQUAL_FATAL(rpc_server_add_service(n->srv, &ray__rpc__object_manager_service__descriptor,
                                                 raylet_object_manager_handlers, n->om), 0);
    int port = 0;
    CU_ASSERT_EQUAL_FATAL(rpc_server_listen(n->srv, "127.0.0.1:0", &port), 0);
    CU_ASSERT_EQUAL_FATAL(rpc_server_start(n->srv), 0);
    snprintf(n->addr, sizeof(n->addr), "127.0.0.1:%d", port);
    n->up = 1;
    n->in_table = 1;
}

/* The node dies: server, object manager and store go; the node table still lists it. */
static void node_kill(int i)
{
    node *n = &nodes[i];
    if (!n->up)
        return;
    raylet_om_destroy(n->om);
    rpc_server_destroy(n->srv);
    raylet_store_destroy(n->store);
    n->up = 0;
}

static void on_wake(uv_timer_t *t)
{
    (void)t;
}

/* ---- fake owner --------------------------------------------------------------------- */

static owner_obj *owner_find(const uint8_t *id)
{
    for (int i = 0; i < owner.n_objs; i++)
        if (memcmp(owner.objs[i].id, id, RC_OBJECT_ID_SIZE) == 0)
            return &owner.objs[i];
    return NULL;
}

static void handle_locations(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    const Ray__Rpc__GetObjectLocationsOwnerRequest *req =
        (const Ray__Rpc__GetObjectLocationsOwnerRequest *)request;
    owner.locate_calls++;
    CU_ASSERT_EQUAL(req->intended_worker_id.len, RC_WORKER_ID_SIZE);
    CU_ASSERT_EQUAL(req->n_object_ids, 1);
    owner_obj *o = req->n_object_ids ? owner_find(req->object_ids[0].data) : NULL;
    if (!o || o->not_found) {
        rpc_reply_status(call, GRPC_STATUS_NOT_FOUND, "no such object");
        return;
    }
    Ray__Rpc__WorkerObjectLocationsPubMessage info = RAY__RPC__WORKER_OBJECT_LOCATIONS_PUB_MESSAGE__INIT;
    ProtobufCBinaryData ids[MAX_NODES];
    for (int i = 0; i < o->n_nodes; i++) {
        ids[i].data = o->nodes[i];
        ids[i].len = RC_NODE_ID_SIZE;
    }
    info.n_node_ids = (size_t)o->n_nodes;
    info.node_ids = ids;
    info.object_size = o->size;
    info.ref_removed = o->ref_removed;
    info.pending_creation = o->n_nodes == 0;
    Ray__Rpc__WorkerObjectLocationsPubMessage *infos[1] = {&info};
    Ray__Rpc__GetObjectLocationsOwnerReply reply = RAY__RPC__GET_OBJECT_LOCATIONS_OWNER_REPLY__INIT;
    reply.n_object_location_infos = 1;
    reply.object_location_infos = infos;
    rpc_reply(call, &reply.base);
}

static void handle_location_update(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    const Ray__Rpc__UpdateObjectLocationBatchRequest *req =
        (const Ray__Rpc__UpdateObjectLocationBatchRequest *)request;
    CU_ASSERT_EQUAL(memcmp(req->intended_worker_id.data, owner.worker_id, RC_WORKER_ID_SIZE), 0);
    for (size_t i = 0; i < req->n_object_location_updates && owner.n_updates < 64; i++) {
        location_update *u = &owner.updates[owner.n_updates++];
        memcpy(u->node, req->node_id.data, RC_NODE_ID_SIZE);
        memcpy(u->obj, req->object_location_updates[i]->object_id.data, RC_OBJECT_ID_SIZE);
        u->what = req->object_location_updates[i]->plasma_location_update;
    }
    Ray__Rpc__UpdateObjectLocationBatchReply reply = RAY__RPC__UPDATE_OBJECT_LOCATION_BATCH_REPLY__INIT;
    rpc_reply(call, &reply.base);
}

static const rpc_method_handler owner_handlers[] = {
    {"GetObjectLocationsOwner", handle_locations},
    {"UpdateObjectLocationBatch", handle_location_update},
    {NULL, NULL},
};

static owner_obj *owner_add(uint32_t n, uint64_t size)
{
    owner_obj *o = &owner.objs[owner.n_objs++];
    memset(o, 0, sizeof(*o));
    memset(o->id, 0, RC_OBJECT_ID_SIZE);
    o->id[0] = 0x0b;
    memcpy(o->id + 1, &n, sizeof(n));
    o->size = size;
    return o;
}

static void owner_locate_at(owner_obj *o, int node_idx)
{
    memcpy(o->nodes[o->n_nodes++], nodes[node_idx].id, RC_NODE_ID_SIZE);
}

static int owner_updates(const uint8_t *obj, int node_idx, int what)
{
    int n = 0;
    for (int i = 0; i < owner.n_updates; i++)
        if (memcmp(owner.updates[i].obj, obj, RC_OBJECT_ID_SIZE) == 0 &&
            memcmp(owner.updates[i].node, nodes[node_idx].id, RC_NODE_ID_SIZE) == 0 &&
            owner.updates[i].what == what)
            n++;
    return n;
}

static void fill_address(Ray__Rpc__Address *a, int port)
{
    ray__rpc__address__init(a);
    a->ip_address = "127.0.0.1";
    a->port = port;
    a->worker_id.data = owner.worker_id;
    a->worker_id.len = RC_WORKER_ID_SIZE;
}

static void setup(void)
{
    rc_config_init();
    memset(nodes, 0, sizeof(nodes));
    memset(&owner, 0, sizeof(owner));
    CU_ASSERT_EQUAL_FATAL(uv_loop_init(&loop), 0);
    CU_ASSERT_EQUAL_FATAL(rpc_ctx_create(&loop, &ctx), 0);
    memset(owner.worker_id, 0x77, RC_WORKER_ID_SIZE);
    CU_ASSERT_EQUAL_FATAL(rpc_server_create(ctx, NULL, &owner.srv), 0);
    CU_ASSERT_EQUAL_FATAL(rpc_server_add_service(owner.srv, &ray__rpc__core_worker_service__descriptor,
                                                 owner_handlers, &owner), 0);
    CU_ASSERT_EQUAL_FATAL(rpc_server_listen(owner.srv, "127.0.0.1:0", &owner.port), 0);
    CU_ASSERT_EQUAL_FATAL(rpc_server_start(owner.srv), 0);
    uv_timer_init(&loop, &waker);
    uv_timer_start(&waker, on_wake, 10, 10); /* so run_until never sleeps past a deadline */
    probe = NULL;
}

static void teardown(void)
{
    for (int i = 0; i < MAX_NODES; i++)
        node_kill(i);
    if (probe)
        rpc_client_destroy(probe);
    rpc_server_destroy(owner.srv);
    uv_close((uv_handle_t *)&waker, NULL);
    rpc_ctx_drain(ctx);
    rpc_ctx_destroy(ctx);
    uv_run(&loop, UV_RUN_DEFAULT);
    CU_ASSERT_EQUAL(uv_loop_close(&loop), 0);
}

static int run_until(const int *flag, int64_t timeout_ms)
{
    int64_t deadline = rc_mono_ms() + timeout_ms;
    while (!*flag && rc_mono_ms() < deadline)
        uv_run(&loop, UV_RUN_ONCE);
    return *flag;
}

static void run_for(int64_t ms)
{
    int never = 0;
    run_until(&never, ms);
}

/* ---- objects and gets --------------------------------------------------------------- */

static void obj_id(uint8_t *id, uint32_t n)
{
    memset(id, 0, RC_OBJECT_ID_SIZE);
    id[0] = 0x0b;
    memcpy(id + 1, &n, sizeof(n));
}

/* A sealed primary copy on node i with a byte pattern derived from seed. */
static void put_on(int i, uint32_t n, uint64_t size, uint64_t meta, uint32_t seed)
{
    uint8_t id[RC_OBJECT_ID_SIZE], w[RC_WORKER_ID_SIZE];
    obj_id(id, n);
    memset(w, 0x31, sizeof(w));
    Ray__Rpc__Address a;
    fill_address(&a, owner.port);
    uint64_t off;
    char err[512];
    int rc = raylet_store_create_object(nodes[i].store, id, w, size, meta, &a, 1, &off, err, sizeof(err));
    if (rc < 0)
        fprintf(stderr, "put_on: %s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    uint8_t *p = raylet_store_base(nodes[i].store) + off;
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    for (uint64_t k = 0; k < size + meta; k += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t left = size + meta - k;
        memcpy(p + k, &x, left < 8 ? left : 8);
    }
    CU_ASSERT_EQUAL(raylet_store_seal(nodes[i].store, id, w), 0);
}

/* 1 if node i and node j hold identical sealed copies of n. */
static int same_copy(int i, int j, uint32_t n)
{
    uint8_t id[RC_OBJECT_ID_SIZE];
    obj_id(id, n);
    raylet_object_info a, b;
    if (raylet_store_lookup(nodes[i].store, id, &a) < 0 || raylet_store_lookup(nodes[j].store, id, &b) < 0)
        return 0;
    if (!a.sealed || !b.sealed || a.data_size != b.data_size || a.metadata_size != b.metadata_size)
        return 0;
    return memcmp(raylet_store_base(nodes[i].store) + a.offset,
                  raylet_store_base(nodes[j].store) + b.offset, a.data_size + a.metadata_size) == 0;
}

typedef struct get_result {
    int done, rc, found;
    uint64_t data_size;
    int64_t at_ms;
} get_result;

static void on_get(void *arg, int rc, const raylet_store_found *objs, size_t n)
{
    get_result *r = arg;
    r->done = 1;
    r->rc = rc;
    r->found = n > 0 && objs[0].found;
    r->data_size = n > 0 ? objs[0].data_size : 0;
    r->at_ms = rc_mono_ms();
}

/* Starts a get of object n on node i for client c whose owner listens at owner_port. */
static void get_on(int i, uint32_t n, int c, int owner_port, int64_t timeout_ms, get_result *r)
{
    uint8_t id[RC_OBJECT_ID_SIZE], w[RC_WORKER_ID_SIZE];
    obj_id(id, n);
    memset(w, 0x50 + c, sizeof(w));
    Ray__Rpc__Address a;
    fill_address(&a, owner_port);
    Ray__Rpc__ObjectReference ref = RAY__RPC__OBJECT_REFERENCE__INIT, *refs[1] = {&ref};
    ref.object_id.data = id;
    ref.object_id.len = RC_OBJECT_ID_SIZE;
    ref.owner_address = &a;
    memset(r, 0, sizeof(*r));
    CU_ASSERT_EQUAL(raylet_store_get_objects(nodes[i].store, w, refs, 1, timeout_ms, on_get, r, NULL), 0);
}

static void release_on(int i, uint32_t n, int c)
{
    uint8_t id[RC_OBJECT_ID_SIZE], w[RC_WORKER_ID_SIZE];
    obj_id(id, n);
    memset(w, 0x50 + c, sizeof(w));
    const uint8_t *ids[1] = {id};
    CU_ASSERT_EQUAL(raylet_store_release(nodes[i].store, w, ids, 1, NULL), 0);
}

static int has_copy(int i, uint32_t n)
{
    uint8_t id[RC_OBJECT_ID_SIZE];
    raylet_object_info info;
    obj_id(id, n);
    return raylet_store_lookup(nodes[i].store, id, &info) == 0 && info.sealed;
}

/* ---- tests -------------------------------------------------------------------------- */

static void test_transfer_100mb(void)
{
    setup();
    node_opts o = {256 * MiB, 0, 0, 0};
    node_start(0, &o);
    node_start(1, &o);
    const uint64_t size = 100ull * 1000 * 1000;
    put_on(0, 1, size, 17, 42);
    owner_obj *oo = owner_add(1, size + 17);
    owner_locate_at(oo, 0);
    get_result r;
    int64_t t0 = rc_mono_ns();
    get_on(1, 1, 0, owner.port, 30000, &r);
    CU_ASSERT_FATAL(run_until(&r.done, 30000));
    double secs = (double)(rc_mono_ns() - t0) / 1e9;
    CU_ASSERT_EQUAL(r.rc, 0);
    CU_ASSERT(r.found);
    CU_ASSERT_EQUAL(r.data_size, size);
    CU_ASSERT(same_copy(0, 1, 1)); /* every byte, data and metadata */
    printf("\n  100 MB pulled A -> B in %.3f s (%.0f MB/s, %u-byte chunks)\n", secs,
           size / secs / 1e6, RAYLET_OM_DEFAULT_CHUNK_SIZE);
    raylet_om_stats st;
    raylet_om_stats_get(nodes[1].om, &st);
    uint64_t chunks = (size + 17 + RAYLET_OM_DEFAULT_CHUNK_SIZE - 1) / RAYLET_OM_DEFAULT_CHUNK_SIZE;
    CU_ASSERT_EQUAL(st.chunks_received, chunks);
    CU_ASSERT_EQUAL(st.bytes_received, size + 17);
    CU_ASSERT_EQUAL(st.pulls_done, 1);
    CU_ASSERT_EQUAL(st.pulls_active, 0);
    CU_ASSERT_EQUAL(st.transfers_active, 0);
    /* B's copy is a secondary one; A's push released its pin. */
    uint8_t id[RC_OBJECT_ID_SIZE];
    obj_id(id, 1);
    raylet_object_info info;
    CU_ASSERT_EQUAL(raylet_store_lookup(nodes[1].store, id, &info), 0);
    CU_ASSERT(!info.primary);
    CU_ASSERT_EQUAL(info.pins, 1); /* the get's */
    /* A's push ends when its last Push call returns, a moment after B sealed. */
    int64_t deadline = rc_mono_ms() + 5000;
    do {
        uv_run(&loop, UV_RUN_ONCE);
        raylet_om_stats_get(nodes[0].om, &st);
    } while (st.pushes_active > 0 && rc_mono_ms() < deadline);
    CU_ASSERT_EQUAL(raylet_store_lookup(nodes[0].store, id, &info), 0);
    CU_ASSERT(info.primary);
    CU_ASSERT_EQUAL(info.pins, 0);
    /* The owner learns of the new copy. */
    deadline = rc_mono_ms() + 5000;
    while (owner_updates(id, 1, RAY__RPC__OBJECT_PLASMA_LOCATION_UPDATE__ADDED) == 0 && rc_mono_ms() < deadline)
        uv_run(&loop, UV_RUN_ONCE);
    CU_ASSERT_EQUAL(owner_updates(id, 1, RAY__RPC__OBJECT_PLASMA_LOCATION_UPDATE__ADDED), 1);
    raylet_om_stats_get(nodes[0].om, &st);
    CU_ASSERT_EQUAL(st.chunks_sent, chunks);
    CU_ASSERT_EQUAL(st.pushes_active, 0);
    release_on(1, 1, 0);
    teardown();
}

static void test_concurrent_gets_one_pull(void)
{
    setup();
    node_opts o = {64 * MiB, 1 * MiB, 2, 0};
    node_start(0, &o);
    node_start(1, &o);
    put_on(0, 1, 12 * MiB, 0, 7);
    owner_obj *oo = owner_add(1, 12 * MiB);
    owner_locate_at(oo, 0);
    enum { N = 6 };
    get_result r[N];
    for (int i = 0; i < N; i++)
        get_on(1, 1, i, owner.port, 20000, &r[i]);
    for (int i = 0; i < N; i++) {
        CU_ASSERT(run_until(&r[i].done, 20000));
        CU_ASSERT(r[i].found);
    }
    CU_ASSERT(same_copy(0, 1, 1));
    raylet_om_stats st;
    raylet_om_stats_get(nodes[1].om, &st);
    CU_ASSERT_EQUAL(owner.locate_calls, 1);
    CU_ASSERT_EQUAL(st.pull_requests, 1);
    CU_ASSERT_EQUAL(st.chunks_received, 12);
    CU_ASSERT_EQUAL(st.chunks_duplicate, 0);
    raylet_om_stats_get(nodes[0].om, &st);
    CU_ASSERT_EQUAL(st.chunks_sent, 12);
    /* A later get finds it local: no more calls. */
    get_result again;
    get_on(1, 1, N, owner.port, 0, &again);
    CU_ASSERT(again.done && again.found);
    CU_ASSERT_EQUAL(owner.locate_calls, 1);
    teardown();
}

/* B pulls from A; A dies after a few chunks; C, the other holder, completes the copy. */
static int pushes_seen, kill_after = -1;
static uv_timer_t kill_timer;

static void kill_a(uv_timer_t *t)
{
    node_kill(0);
    uv_close((uv_handle_t *)t, NULL);
}

static int count_pushes(rpc_call *call, void *arg)
{
    if (strcmp(rpc_call_method(call), "Push") == 0 && ++pushes_seen == kill_after) {
        uv_timer_init(&loop, &kill_timer);
        uv_timer_start(&kill_timer, kill_a, 0, 0);
    }
    return 0;
}

static void test_holder_dies_mid_transfer(void)
{
    setup();
    node_opts o = {96 * MiB, 1 * MiB, 1, 0};
    node_start(0, &o);
    node_start(1, &o);
    node_start(2, &o);
    pushes_seen = 0;
    kill_after = 5;
    rpc_server_set_interceptor(nodes[1].srv, count_pushes, NULL);
    put_on(0, 1, 40 * MiB, 3, 9);
    put_on(2, 1, 40 * MiB, 3, 9);
    owner_obj *oo = owner_add(1, 40 * MiB + 3);
    owner_locate_at(oo, 0);
    owner_locate_at(oo, 2);
    get_result r;
    int64_t t0 = rc_mono_ms();
    get_on(1, 1, 0, owner.port, 30000, &r);
    CU_ASSERT_FATAL(run_until(&r.done, 30000));
    CU_ASSERT(r.found);
    CU_ASSERT(!nodes[0].up);
    CU_ASSERT(same_copy(1, 2, 1));
    raylet_om_stats st;
    raylet_om_stats_get(nodes[1].om, &st);
    CU_ASSERT_EQUAL(st.pull_requests, 2);  /* A, then C */
    CU_ASSERT_EQUAL(st.chunks_received, 41);
    CU_ASSERT(st.chunks_received + st.chunks_duplicate >= 41);
    raylet_om_stats_get(nodes[2].om, &st);
    CU_ASSERT(st.chunks_sent >= 36 && st.chunks_sent <= 41); /* C sent what A had not */
    printf("\n  holder died after %d chunks; the copy was finished by the other holder in %" PRId64 " ms\n",
           kill_after, r.at_ms - t0);
    teardown();
}

/* D answers Pull by never pushing: after transfer_idle_ms B tries A, which works. */
static rpc_call *stalled_calls[8];
static int n_stalled;

static void handle_stall_pull(rpc_call *call, const ProtobufCMessage *req, void *arg)
{
    stalled_calls[n_stalled++] = call;
}

static void test_holder_stalls(void)
{
    setup();
    node_opts o = {64 * MiB, 1 * MiB, 2, 300};
    node_start(0, &o);
    node_start(1, &o);
    /* Node 3 is a fake raylet that holds Pull calls forever. */
    node *d = &nodes[3];
    memset(d, 0, sizeof(*d));
    memset(d->id, 0xdd, RC_NODE_ID_SIZE);
    static const rpc_method_handler stall[] = {{"Pull", handle_stall_pull}, {NULL, NULL}};
    n_stalled = 0;
    rpc_server *dsrv = NULL;
    CU_ASSERT_EQUAL_FATAL(rpc_server_create(ctx, NULL, &dsrv), 0);
    rpc_server_add_service(dsrv, &ray__rpc__object_manager_service__descriptor, stall, NULL);
    int port = 0;
    CU_ASSERT_EQUAL_FATAL(rpc_server_listen(dsrv, "127.0.0.1:0", &port), 0);
    rpc_server_start(dsrv);
    snprintf(d->addr, sizeof(d->addr), "127.0.0.1:%d", port);
    d->in_table = 1;
    put_on(0, 1, 3 * MiB, 0, 5);
    owner_obj *oo = owner_add(1, 3 * MiB);
    owner_locate_at(oo, 3);
    owner_locate_at(oo, 0);
    get_result r;
    int64_t t0 = rc_mono_ms();
    get_on(1, 1, 0, owner.port, 20000, &r);
    CU_ASSERT_FATAL(run_until(&r.done, 20000));
    CU_ASSERT(r.found);
    CU_ASSERT(r.at_ms - t0 >= 250);
    CU_ASSERT_EQUAL(n_stalled, 1);
    CU_ASSERT(same_copy(0, 1, 1));
    for (int i = 0; i < n_stalled; i++)
        rpc_reply_status(stalled_calls[i], GRPC_STATUS_UNAVAILABLE, "test over");
    rpc_server_destroy(dsrv);
    d->in_table = 0;
    teardown();
}

static void test_owner_unreachable_or_object_gone(void)
{
    setup();
    node_opts o = {32 * MiB, 0, 0, 0};
    node_start(1, &o);
    /* A port nobody listens on: a server that has come and gone. */
    rpc_server *gone = NULL;
    int dead_port = 0;
    rpc_server_create(ctx, NULL, &gone);
    rpc_server_listen(gone, "127.0.0.1:0", &dead_port);
    rpc_server_start(gone);
    rpc_server_destroy(gone);
    run_for(100);
    get_result r;
    int64_t t0 = rc_mono_ms();
    get_on(1, 1, 0, dead_port, 30000, &r);
    CU_ASSERT_FATAL(run_until(&r.done, 15000));
    CU_ASSERT_EQUAL(r.rc, 0);
    CU_ASSERT(!r.found);
    CU_ASSERT(r.at_ms - t0 < 10000); /* long before the get's own timeout */
    raylet_om_stats st;
    raylet_om_stats_get(nodes[1].om, &st);
    CU_ASSERT_EQUAL(st.pulls_failed, 1);
    /* The owner does not know the object, or freed it. */
    owner_obj *unknown = owner_add(2, 10);
    unknown->not_found = 1;
    get_on(1, 2, 0, owner.port, 30000, &r);
    CU_ASSERT_FATAL(run_until(&r.done, 10000));
    CU_ASSERT(!r.found);
    owner_obj *freed = owner_add(3, 10);
    freed->ref_removed = 1;
    get_on(1, 3, 0, owner.port, 30000, &r);
    CU_ASSERT_FATAL(run_until(&r.done, 10000));
    CU_ASSERT(!r.found);
    raylet_om_stats_get(nodes[1].om, &st);
    CU_ASSERT_EQUAL(st.pulls_failed, 3);
    /* No owner address at all: nothing to ask; the get waits for a local copy only. */
    get_on(1, 4, 0, 0, 100, &r);
    CU_ASSERT_FATAL(run_until(&r.done, 5000));
    CU_ASSERT(!r.found);
    raylet_om_stats_get(nodes[1].om, &st);
    CU_ASSERT_EQUAL(st.pulls_active, 0);
    teardown();
}

/* The owner has no location at first (task still running); the pull retries. A get that
 * times out meanwhile ends the pull. */
static void test_located_after_retry(void)
{
    setup();
    node_opts o = {32 * MiB, 1 * MiB, 0, 0};
    node_start(0, &o);
    node_start(1, &o);
    owner_obj *oo = owner_add(1, 2 * MiB);
    get_result r;
    get_on(1, 1, 0, owner.port, 20000, &r);
    run_for(150);
    CU_ASSERT_EQUAL(r.done, 0);
    CU_ASSERT(owner.locate_calls >= 2); /* retried */
    put_on(0, 1, 2 * MiB, 0, 3);
    owner_locate_at(oo, 0);
    CU_ASSERT_FATAL(run_until(&r.done, 10000));
    CU_ASSERT(r.found);
    CU_ASSERT(same_copy(0, 1, 1));
    /* Nobody waits any more: a pull for an object that never appears stops retrying. */
    owner_add(2, 10);
    get_on(1, 2, 0, owner.port, 100, &r);
    CU_ASSERT_FATAL(run_until(&r.done, 5000));
    CU_ASSERT(!r.found);
    run_for(300);
    raylet_om_stats st;
    raylet_om_stats_get(nodes[1].om, &st);
    CU_ASSERT_EQUAL(st.pulls_active, 0);
    int calls = owner.locate_calls;
    run_for(300);
    CU_ASSERT_EQUAL(owner.locate_calls, calls);
    teardown();
}

static int call_om(int i, const char *method, const ProtobufCMessage *req, char *err)
{
    if (probe)
        rpc_client_destroy(probe);
    probe = NULL;
    CU_ASSERT_EQUAL_FATAL(rpc_client_create(ctx, nodes[i].addr, NULL, &probe), 0);
    ProtobufCMessage *reply = NULL;
    int code = rpc_client_call_sync(probe, &ray__rpc__object_manager_service__descriptor, method,
                                    req, 10000, &reply, err, 512);
    rpc_msg_free(reply);
    return code;
}

static void test_free_objects_and_eviction(void)
{
    setup();
    node_opts o = {40 * MiB, 1 * MiB, 0, 0};
    node_start(0, &o);
    node_start(1, &o);
    put_on(0, 1, 8 * MiB, 0, 1);
    owner_obj *oo = owner_add(1, 8 * MiB);
    owner_locate_at(oo, 0);
    get_result r;
    get_on(1, 1, 0, owner.port, 20000, &r);
    CU_ASSERT_FATAL(run_until(&r.done, 20000));
    CU_ASSERT(r.found && has_copy(0, 1) && has_copy(1, 1));
    /* FreeObjects to both nodes: A's primary goes at once, B's when its get releases. */
    uint8_t id[RC_OBJECT_ID_SIZE];
    obj_id(id, 1);
    ProtobufCBinaryData ids[1] = {{RC_OBJECT_ID_SIZE, id}};
    Ray__Rpc__FreeObjectsRequest fr = RAY__RPC__FREE_OBJECTS_REQUEST__INIT;
    fr.n_object_ids = 1;
    fr.object_ids = ids;
    char err[512];
    CU_ASSERT_EQUAL(call_om(0, "FreeObjects", &fr.base, err), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(call_om(1, "FreeObjects", &fr.base, err), GRPC_STATUS_OK);
    CU_ASSERT(!has_copy(0, 1));
    CU_ASSERT(has_copy(1, 1));
    release_on(1, 1, 0);
    CU_ASSERT(!has_copy(1, 1));
    /* Freeing what is not there is fine. */
    CU_ASSERT_EQUAL(call_om(1, "FreeObjects", &fr.base, err), GRPC_STATUS_OK);

    /* Eviction: B pulls 2 (secondary), then a local create needs the room: 2 goes and
     * the owner hears REMOVED. */
    put_on(0, 2, 20 * MiB, 0, 2);
    owner_obj *o2 = owner_add(2, 20 * MiB);
    owner_locate_at(o2, 0);
    get_on(1, 2, 0, owner.port, 20000, &r);
    CU_ASSERT_FATAL(run_until(&r.done, 20000));
    CU_ASSERT(r.found);
    release_on(1, 2, 0);
    put_on(1, 3, 30 * MiB, 0, 3);
    CU_ASSERT(!has_copy(1, 2));
    uint8_t id2[RC_OBJECT_ID_SIZE];
    obj_id(id2, 2);
    int64_t deadline = rc_mono_ms() + 5000;
    while (owner_updates(id2, 1, RAY__RPC__OBJECT_PLASMA_LOCATION_UPDATE__REMOVED) == 0 &&
           rc_mono_ms() < deadline)
        uv_run(&loop, UV_RUN_ONCE);
    CU_ASSERT_EQUAL(owner_updates(id2, 1, RAY__RPC__OBJECT_PLASMA_LOCATION_UPDATE__ADDED), 1);
    CU_ASSERT_EQUAL(owner_updates(id2, 1, RAY__RPC__OBJECT_PLASMA_LOCATION_UPDATE__REMOVED), 1);
    /* B's store is full of a primary copy now: pulling 2 again fails at the push
     * (RESOURCE_EXHAUSTED), and the get times out without a partial copy left behind. */
    get_on(1, 2, 0, owner.port, 400, &r);
    CU_ASSERT_FATAL(run_until(&r.done, 5000));
    CU_ASSERT(!r.found);
    raylet_om_stats st;
    raylet_om_stats_get(nodes[1].om, &st);
    CU_ASSERT_EQUAL(st.transfers_active, 0);
    teardown();
}

static void test_malformed_and_impossible_requests(void)
{
    setup();
    node_opts o = {32 * MiB, 1 * MiB, 0, 0};
    node_start(0, &o);
    node_start(1, &o);
    char err[512];
    uint8_t id[RC_OBJECT_ID_SIZE], other[RC_NODE_ID_SIZE];
    obj_id(id, 1);
    memset(other, 0xee, sizeof(other));
    Ray__Rpc__PullRequest pull = RAY__RPC__PULL_REQUEST__INIT;
    pull.node_id.data = nodes[1].id;
    pull.node_id.len = 3;
    pull.object_id.data = id;
    pull.object_id.len = RC_OBJECT_ID_SIZE;
    CU_ASSERT_EQUAL(call_om(0, "Pull", &pull.base, err), GRPC_STATUS_INVALID_ARGUMENT);
    pull.node_id.len = RC_NODE_ID_SIZE;
    CU_ASSERT_EQUAL(call_om(0, "Pull", &pull.base, err), GRPC_STATUS_NOT_FOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "no sealed copy"));
    put_on(0, 1, 1000, 0, 1);
    pull.node_id.data = other; /* a node the table does not know */
    CU_ASSERT_EQUAL(call_om(0, "Pull", &pull.base, err), GRPC_STATUS_UNAVAILABLE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not known to be alive"));
    pull.node_id.data = nodes[0].id; /* itself */
    CU_ASSERT_EQUAL(call_om(0, "Pull", &pull.base, err), GRPC_STATUS_INVALID_ARGUMENT);
    /* A good Pull: answered once B has the whole object. */
    pull.node_id.data = nodes[1].id;
    CU_ASSERT_EQUAL(call_om(0, "Pull", &pull.base, err), GRPC_STATUS_OK);
    CU_ASSERT(same_copy(0, 1, 1));
    /* An unasked push of a new object is taken as a secondary copy. */
    Ray__Rpc__PushRequest push = RAY__RPC__PUSH_REQUEST__INIT;
    uint8_t id2[RC_OBJECT_ID_SIZE], data[100];
    memset(data, 9, sizeof(data));
    obj_id(id2, 2);
    push.object_id.data = id2;
    push.object_id.len = RC_OBJECT_ID_SIZE;
    push.data_size = 100;
    push.data.data = data;
    push.data.len = 99; /* one short */
    CU_ASSERT_EQUAL(call_om(1, "Push", &push.base, err), GRPC_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "does not fit"));
    push.data.len = 100;
    push.chunk_index = 1; /* beyond the only chunk */
    CU_ASSERT_EQUAL(call_om(1, "Push", &push.base, err), GRPC_STATUS_INVALID_ARGUMENT);
    push.chunk_index = 0;
    push.object_id.len = 4;
    CU_ASSERT_EQUAL(call_om(1, "Push", &push.base, err), GRPC_STATUS_INVALID_ARGUMENT);
    push.object_id.len = RC_OBJECT_ID_SIZE;
    push.data_size = UINT64_MAX;
    push.metadata_size = 2;
    CU_ASSERT_EQUAL(call_om(1, "Push", &push.base, err), GRPC_STATUS_INVALID_ARGUMENT);
    push.data_size = 64 * MiB; /* bigger than the store: a well-formed first chunk */
    push.metadata_size = 0;
    push.data.data = raylet_store_base(nodes[0].store);
    push.data.len = 1 * MiB;
    CU_ASSERT_EQUAL(call_om(1, "Push", &push.base, err), GRPC_STATUS_RESOURCE_EXHAUSTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "larger than the whole object store"));
    push.data_size = 100;
    push.data.data = data;
    push.data.len = 100;
    CU_ASSERT_EQUAL(call_om(1, "Push", &push.base, err), GRPC_STATUS_OK);
    CU_ASSERT(has_copy(1, 2));
    CU_ASSERT_EQUAL(call_om(1, "Push", &push.base, err), GRPC_STATUS_OK); /* duplicate */
    Ray__Rpc__FreeObjectsRequest fr = RAY__RPC__FREE_OBJECTS_REQUEST__INIT;
    ProtobufCBinaryData bad[1] = {{5, id}};
    fr.n_object_ids = 1;
    fr.object_ids = bad;
    CU_ASSERT_EQUAL(call_om(1, "FreeObjects", &fr.base, err), GRPC_STATUS_INVALID_ARGUMENT);
    /* A partial push that is never finished is dropped after transfer_idle_ms. */
    uint8_t id3[RC_OBJECT_ID_SIZE];
    obj_id(id3, 3);
    push.object_id.data = id3;
    push.data_size = 3 * MiB;
    push.data.data = raylet_store_base(nodes[0].store); /* any 1 MiB */
    push.data.len = 1 * MiB;
    CU_ASSERT_EQUAL(call_om(1, "Push", &push.base, err), GRPC_STATUS_OK);
    raylet_om_stats st;
    raylet_om_stats_get(nodes[1].om, &st);
    CU_ASSERT_EQUAL(st.transfers_active, 1);
    run_for(2500);
    raylet_om_stats_get(nodes[1].om, &st);
    CU_ASSERT_EQUAL(st.transfers_active, 0);
    raylet_object_info info;
    CU_ASSERT_EQUAL(raylet_store_lookup(nodes[1].store, id3, &info), RC_ENOENT);
    teardown();
}

/* A partial copy nobody finishes (its pusher went away) is dropped after the idle time,
 * and a get that waited for it pulls the object afresh. */
static void test_stale_partial_copy_refetched(void)
{
    setup();
    node_opts o = {32 * MiB, 1 * MiB, 0, 300};
    node_start(0, &o);
    node_start(1, &o);
    put_on(0, 5, 3 * MiB, 0, 5);
    owner_obj *oo = owner_add(5, 3 * MiB);
    owner_locate_at(oo, 0);
    /* Chunk 1 of 3 arrives unasked (from a holder that then died). */
    uint8_t id[RC_OBJECT_ID_SIZE];
    obj_id(id, 5);
    raylet_object_info info;
    CU_ASSERT_EQUAL_FATAL(raylet_store_lookup(nodes[0].store, id, &info), 0);
    Ray__Rpc__PushRequest push = RAY__RPC__PUSH_REQUEST__INIT;
    push.object_id.data = id;
    push.object_id.len = RC_OBJECT_ID_SIZE;
    push.data_size = 3 * MiB;
    push.chunk_index = 1;
    push.data.data = raylet_store_base(nodes[0].store) + info.offset + 1 * MiB;
    push.data.len = 1 * MiB;
    char err[512];
    CU_ASSERT_EQUAL(call_om(1, "Push", &push.base, err), GRPC_STATUS_OK);
    /* A get now finds the partial copy, so it waits without fetching... */
    get_result r;
    int64_t t0 = rc_mono_ms();
    get_on(1, 5, 0, owner.port, 20000, &r);
    CU_ASSERT_EQUAL(owner.locate_calls, 0);
    /* ... until the partial copy is dropped and the object pulled. */
    CU_ASSERT_FATAL(run_until(&r.done, 10000));
    CU_ASSERT(r.found);
    CU_ASSERT(r.at_ms - t0 >= 250);
    CU_ASSERT(same_copy(0, 1, 5));
    CU_ASSERT_EQUAL(owner.locate_calls, 1);
    teardown();
}

/* Destroying managers with transfers in flight leaves nothing behind (the loop empties). */
static void test_destroy_mid_transfer(void)
{
    setup();
    node_opts o = {64 * MiB, 256 * 1024, 1, 0};
    node_start(0, &o);
    node_start(1, &o);
    put_on(0, 1, 30 * MiB, 0, 1);
    owner_obj *oo = owner_add(1, 30 * MiB);
    owner_locate_at(oo, 0);
    get_result r;
    get_on(1, 1, 0, owner.port, 20000, &r);
    raylet_om_stats st = {0};
    int64_t deadline = rc_mono_ms() + 10000;
    while (st.chunks_received < 10 && rc_mono_ms() < deadline) {
        uv_run(&loop, UV_RUN_ONCE);
        raylet_om_stats_get(nodes[1].om, &st);
    }
    CU_ASSERT(st.chunks_received >= 10);
    CU_ASSERT_EQUAL(st.transfers_active, 1);
    /* B's manager goes first (its partial copy is aborted), then everything. */
    raylet_om_destroy(nodes[1].om);
    nodes[1].om = NULL;
    uint8_t id[RC_OBJECT_ID_SIZE];
    raylet_object_info info;
    obj_id(id, 1);
    CU_ASSERT_EQUAL(raylet_store_lookup(nodes[1].store, id, &info), RC_ENOENT);
    rpc_server_destroy(nodes[1].srv);
    raylet_store_destroy(nodes[1].store);
    nodes[1].up = 0;
    CU_ASSERT_EQUAL(r.done, 1);
    CU_ASSERT_EQUAL(r.rc, RC_ECANCELED);
    teardown();
}

static const unit_case cases[] = {
    UNIT_CASE(test_transfer_100mb),
    UNIT_CASE(test_concurrent_gets_one_pull),
    UNIT_CASE(test_holder_dies_mid_transfer),
    UNIT_CASE(test_holder_stalls),
    UNIT_CASE(test_owner_unreachable_or_object_gone),
    UNIT_CASE(test_located_after_retry),
    UNIT_CASE(test_free_objects_and_eviction),
    UNIT_CASE(test_malformed_and_impossible_requests),
    UNIT_CASE(test_stale_partial_copy_refetched),
    UNIT_CASE(test_destroy_mid_transfer),
};

int main(void)
{
    return unit_run("object_manager", cases, UNIT_N(cases));
}
