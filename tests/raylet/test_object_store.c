/*
 * object store: the region allocator (many sizes, fragmentation, coalescing, a full store),
 * eviction of unpinned secondary copies (LRU; primary copies never), the object life
 * (create, seal, get, release, abort, free with pins out, a client going away), zero-copy
 * visibility through a second mapping of the file (as a client process maps it), waiting
 * gets woken by a seal, by a failed fetch and by their timeout, and the LocalRayletService
 * and PinObjectIDs handlers through a real rpc server on a unix socket with a real client,
 * every error status and malformed requests included; the background pre-fault (its budget
 * from meminfo, the bound it keeps, its order, a stop mid-way) and the reuse of a freed,
 * already faulted range. Every test ends with an empty loop,
 * so a leaked timer or call shows up as a failed uv_loop_close.
 */
#define _GNU_SOURCE /* fallocate's FALLOC_FL_PUNCH_HOLE */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "node_manager.pb-c.h"
#include "object_store.h"
#include "rayc_raylet.pb-c.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_session.h"
#include "rc_ids.h"
#include "rc_time.h"
#include "unit.h"

#define MiB (1024ull * 1024ull)

static uv_loop_t loop;
static char shm_path[128];

static void path_init(const char *tag)
{
    snprintf(shm_path, sizeof(shm_path), "/dev/shm/rayc-test-%s-%d", tag, (int)getpid());
    unlink(shm_path);
}

static void make_id(uint8_t *id, uint32_t n)
{
    memset(id, 0, RC_OBJECT_ID_SIZE);
    id[0] = 0x0b;
    memcpy(id + 1, &n, sizeof(n));
}

static const uint8_t *worker(int n)
{
    static uint8_t ids[8][RC_WORKER_ID_SIZE];
    memset(ids[n], 0x40 + n, RC_WORKER_ID_SIZE);
    return ids[n];
}

static raylet_store *store_new(uint64_t size)
{
    raylet_store *s = NULL;
    char err[512];
    CU_ASSERT_EQUAL_FATAL(uv_loop_init(&loop), 0);
    int rc = raylet_store_create(&loop, shm_path, size, err, sizeof(err), &s);
    if (rc < 0)
        fprintf(stderr, "store: %s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    return s;
}

static void store_end(raylet_store *s)
{
    raylet_store_destroy(s);
    uv_run(&loop, UV_RUN_DEFAULT);
    CU_ASSERT_EQUAL(uv_loop_close(&loop), 0);
    struct stat st;
    CU_ASSERT_NOT_EQUAL(stat(shm_path, &st), 0); /* the file went with the store */
}

/* Creates and seals an object filled with byte fill. Returns its offset. */
static uint64_t put(raylet_store *s, uint32_t n, uint64_t size, int primary, uint8_t fill)
{
    uint8_t id[RC_OBJECT_ID_SIZE];
    make_id(id, n);
    uint64_t off = 0;
    char err[512];
    const uint8_t *creator = primary ? worker(0) : RAYLET_STORE_SELF;
    int rc = raylet_store_create_object(s, id, creator, size, 0, NULL, primary, &off, err, sizeof(err));
    CU_ASSERT_EQUAL(rc, 0);
    if (rc < 0) {
        fprintf(stderr, "put %u: %s\n", n, err);
        return 0;
    }
    memset(raylet_store_base(s) + off, fill, size);
    CU_ASSERT_EQUAL(raylet_store_seal(s, id, creator), 0);
    return off;
}

static int present(raylet_store *s, uint32_t n)
{
    uint8_t id[RC_OBJECT_ID_SIZE];
    raylet_object_info info;
    make_id(id, n);
    return raylet_store_lookup(s, id, &info) == 0;
}

/* ---- region ------------------------------------------------------------------------- */

typedef struct span {
    uint64_t off, size;
} span;

static int span_cmp(const void *a, const void *b)
{
    const span *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

static void test_region_many_sizes(void)
{
    path_init("region");
    raylet_region *r = NULL;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(raylet_region_create(shm_path, 128 * MiB, err, sizeof(err), &r), 0);
    raylet_region_stats empty;
    raylet_region_stats_get(r, &empty);
    CU_ASSERT_EQUAL(empty.size, 128 * MiB);
    /* jemalloc's metadata took a little, nothing else. */
    CU_ASSERT(empty.free_bytes >= 124 * MiB);
    enum { N = 400 };
    static span spans[N];
    size_t n = 0;
    srand(7);
    uint64_t total = 0;
    for (int i = 0; i < N; i++) {
        /* Sizes from 1 byte to 1 MiB, log-uniform-ish. */
        uint64_t size = 1ull << (rand() % 21);
        size += (uint64_t)rand() % size;
        uint64_t off, got;
        if (raylet_region_alloc(r, size, &off, &got) < 0)
            break;
        CU_ASSERT(got >= size);
        CU_ASSERT(off + got <= 128 * MiB);
        memset(raylet_region_base(r) + off, 0xa5, size); /* touch every byte we own */
        spans[n].off = off;
        spans[n].size = got;
        n++;
        total += got;
    }
    CU_ASSERT_EQUAL(n, N);
    qsort(spans, n, sizeof(span), span_cmp);
    for (size_t i = 1; i < n; i++)
        CU_ASSERT(spans[i - 1].off + spans[i - 1].size <= spans[i].off); /* no overlap */
    for (size_t i = 0; i < n; i++)
        raylet_region_free(r, spans[i].off);
    raylet_region_stats after;
    raylet_region_stats_get(r, &after);
    /* Everything came back and coalesced. */
    CU_ASSERT_EQUAL(after.free_bytes, empty.free_bytes);
    CU_ASSERT_EQUAL(after.free_ranges, empty.free_ranges);
    raylet_region_destroy(r);
    struct stat st;
    CU_ASSERT_NOT_EQUAL(stat(shm_path, &st), 0);
}

static void test_region_fragmentation_and_coalescing(void)
{
    path_init("frag");
    raylet_region *r = NULL;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(raylet_region_create(shm_path, 64 * MiB, err, sizeof(err), &r), 0);
    /* Fill the region with 2 MiB blocks. */
    enum { MAX = 64 };
    uint64_t offs[MAX], got, extra;
    int n = 0;
    while (n < MAX && raylet_region_alloc(r, 2 * MiB, &offs[n], &got) == 0)
        n++;
    CU_ASSERT(n >= 28);
    raylet_region_stats st;
    raylet_region_stats_get(r, &st);
    CU_ASSERT(st.largest_free < 2 * MiB + 8192);
    /* Free every other block: plenty of bytes free, but no 5 MiB hole. */
    for (int i = 0; i < n; i += 2)
        raylet_region_free(r, offs[i]);
    raylet_region_stats_get(r, &st);
    CU_ASSERT(st.free_bytes >= 28 * MiB);
    CU_ASSERT(st.largest_free < 4 * MiB);
    CU_ASSERT_EQUAL(raylet_region_alloc(r, 5 * MiB, &extra, &got), RC_ENOSPC);
    /* Freeing the neighbours coalesces the holes into one range. */
    for (int i = 1; i < n; i += 2)
        raylet_region_free(r, offs[i]);
    raylet_region_stats_get(r, &st);
    CU_ASSERT(st.largest_free >= 58 * MiB);
    CU_ASSERT(st.free_ranges <= 2);
    CU_ASSERT_EQUAL(raylet_region_alloc(r, 56 * MiB, &extra, &got), 0);
    raylet_region_free(r, extra);
    /* Small extents go to the top, large to the bottom: a small object does not split the
     * space a large one needs. */
    uint64_t small_off, large_off;
    CU_ASSERT_EQUAL(raylet_region_alloc(r, 1000, &small_off, &got), 0);
    CU_ASSERT_EQUAL(raylet_region_alloc(r, 40 * MiB, &large_off, &got), 0);
    CU_ASSERT(small_off > large_off);
    raylet_region_free(r, large_off);
    raylet_region_free(r, small_off);
    raylet_region_destroy(r);
}

static void test_region_bad_arguments(void)
{
    path_init("bad");
    raylet_region *r = NULL;
    char err[256];
    CU_ASSERT_EQUAL(raylet_region_create(shm_path, 1 * MiB, err, sizeof(err), &r), RC_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "at least"));
    CU_ASSERT_EQUAL(raylet_region_create("/nonexistent-dir/x", 16 * MiB, err, sizeof(err), &r),
                    RC_ESYS);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent-dir/x"));
    /* The file must not exist: another raylet could be using it. */
    CU_ASSERT_EQUAL_FATAL(raylet_region_create(shm_path, 16 * MiB, err, sizeof(err), &r), 0);
    raylet_region *r2 = NULL;
    CU_ASSERT_EQUAL(raylet_region_create(shm_path, 16 * MiB, err, sizeof(err), &r2), RC_EEXIST);
    raylet_region_destroy(r);
    /* Bigger than /dev/shm could ever hold. */
    CU_ASSERT_EQUAL(raylet_region_create(shm_path, 1ull << 50, err, sizeof(err), &r), RC_ENOSPC);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "free"));
}

/* ---- store: full, eviction ---------------------------------------------------------- */

static void test_full_store_message(void)
{
    path_init("full");
    raylet_store *s = store_new(16 * MiB);
    uint8_t id[RC_OBJECT_ID_SIZE];
    make_id(id, 1);
    uint64_t off;
    char err[512];
    CU_ASSERT_EQUAL(raylet_store_create_object(s, id, worker(1), 32 * MiB, 10, NULL, 1, &off, err,
                                               sizeof(err)), RC_ENOSPC);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "larger than the whole object store (16777216 bytes)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "33554442 bytes"));
    /* Fill with primary copies: nothing can be evicted, so the next create fails. */
    put(s, 10, 6 * MiB, 1, 1);
    put(s, 11, 6 * MiB, 1, 2);
    CU_ASSERT_EQUAL(raylet_store_create_object(s, id, worker(1), 6 * MiB, 0, NULL, 1, &off, err,
                                               sizeof(err)), RC_ENOSPC);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "object store full"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "6291456 bytes"));  /* requested */
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "of 16777216"));    /* total */
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "bytes free"));     /* free */
    CU_ASSERT(present(s, 10) && present(s, 11));
    /* Sizes that overflow are malformed. */
    CU_ASSERT_EQUAL(raylet_store_create_object(s, id, worker(1), UINT64_MAX, 2, NULL, 1, &off, err,
                                               sizeof(err)), RC_EINVAL);
    /* A zero-byte object is fine. */
    CU_ASSERT_EQUAL(raylet_store_create_object(s, id, worker(1), 0, 0, NULL, 1, &off, err,
                                               sizeof(err)), 0);
    CU_ASSERT_EQUAL(raylet_store_create_object(s, id, worker(1), 0, 0, NULL, 1, &off, err,
                                               sizeof(err)), RC_EEXIST);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "already exists"));
    store_end(s);
}

typedef struct evict_log {
    int n;
    uint32_t ids[64];
} evict_log;

static void on_evicted(void *arg, const uint8_t *id, const Ray__Rpc__Address *owner)
{
    evict_log *log = arg;
    uint32_t n;
    memcpy(&n, id + 1, sizeof(n));
    if (log->n < 64)
        log->ids[log->n++] = n;
}

static void on_get_ignore(void *arg, int rc, const raylet_store_found *objs, size_t n)
{
    int *calls = arg;
    (*calls)++;
}

static void test_eviction_lru_secondary_only(void)
{
    path_init("evict");
    raylet_store *s = store_new(40 * MiB);
    evict_log log = {0};
    raylet_store_hooks hooks = {NULL, on_evicted, &log};
    raylet_store_set_hooks(s, &hooks);
    /* Primary 1 (never evicted), then secondaries 2..5 of 6 MiB: about 30 MiB. */
    put(s, 1, 6 * MiB, 1, 0x11);
    for (uint32_t i = 2; i <= 5; i++)
        put(s, i, 6 * MiB, 0, (uint8_t)i);
    raylet_store_stats st;
    raylet_store_stats_get(s, &st);
    CU_ASSERT_EQUAL(st.num_objects, 5);
    CU_ASSERT_EQUAL(st.num_primary, 1);
    CU_ASSERT(st.evictable_bytes >= 24 * MiB);
    /* Use 2 (get + release): it becomes the most recently used; 3 is now the oldest. */
    uint8_t id2[RC_OBJECT_ID_SIZE];
    make_id(id2, 2);
    Ray__Rpc__ObjectReference ref = RAY__RPC__OBJECT_REFERENCE__INIT;
    ref.object_id.data = id2;
    ref.object_id.len = RC_OBJECT_ID_SIZE;
    Ray__Rpc__ObjectReference *refs[1] = {&ref};
    int calls = 0;
    CU_ASSERT_EQUAL(raylet_store_get_objects(s, worker(1), refs, 1, 0, on_get_ignore, &calls, NULL), 0);
    CU_ASSERT_EQUAL(calls, 1);
    const uint8_t *ids[1] = {id2};
    CU_ASSERT_EQUAL(raylet_store_release(s, worker(1), ids, 1, NULL), 0);
    /* Pin 4 so it cannot go either. */
    uint8_t id4[RC_OBJECT_ID_SIZE];
    make_id(id4, 4);
    CU_ASSERT_EQUAL(raylet_store_pin(s, id4, worker(2)), 0);
    /* 12 MiB more than fits: evicts 3 then 5 (LRU order, skipping pinned 4), not 1 or 2. */
    put(s, 6, 12 * MiB, 1, 6);
    CU_ASSERT(log.n >= 1);
    CU_ASSERT_EQUAL(log.ids[0], 3);
    CU_ASSERT(!present(s, 3));
    CU_ASSERT(present(s, 1));
    CU_ASSERT(present(s, 4));
    CU_ASSERT(present(s, 6));
    for (int i = 0; i < log.n; i++)
        CU_ASSERT(log.ids[i] != 1 && log.ids[i] != 4);
    raylet_store_stats_get(s, &st);
    CU_ASSERT_EQUAL(st.num_evicted, (uint64_t)log.n);
    /* Only primaries and the pinned one left: a huge create fails, evicting what it can
     * but never a primary or a pinned copy. */
    uint8_t id9[RC_OBJECT_ID_SIZE];
    make_id(id9, 9);
    uint64_t off;
    char err[512];
    CU_ASSERT_EQUAL(raylet_store_create_object(s, id9, worker(1), 30 * MiB, 0, NULL, 1, &off, err,
                                               sizeof(err)), RC_ENOSPC);
    CU_ASSERT(present(s, 1) && present(s, 4) && present(s, 6));
    store_end(s);
}

/* ---- store: object life ------------------------------------------------------------ */

static void test_lifecycle(void)
{
    path_init("life");
    raylet_store *s = store_new(16 * MiB);
    uint8_t id[RC_OBJECT_ID_SIZE];
    make_id(id, 1);
    uint64_t off;
    char err[512];
    CU_ASSERT_EQUAL(raylet_store_create_object(s, id, worker(1), 1000, 24, NULL, 1, &off, err,
                                               sizeof(err)), 0);
    raylet_object_info info;
    CU_ASSERT_EQUAL(raylet_store_lookup(s, id, &info), 0);
    CU_ASSERT_EQUAL(info.offset, off);
    CU_ASSERT_EQUAL(info.data_size, 1000);
    CU_ASSERT_EQUAL(info.metadata_size, 24);
    CU_ASSERT(!info.sealed && info.primary);
    /* Only the creator seals or aborts; unsealed objects cannot be pinned. */
    CU_ASSERT_EQUAL(raylet_store_seal(s, id, worker(2)), RC_EAUTH);
    CU_ASSERT_EQUAL(raylet_store_abort(s, id, worker(2)), RC_EAUTH);
    CU_ASSERT_EQUAL(raylet_store_pin(s, id, worker(2)), RC_ESTATE);
    CU_ASSERT_EQUAL(raylet_store_seal(s, id, worker(1)), 0);
    CU_ASSERT_EQUAL(raylet_store_seal(s, id, worker(1)), RC_ESTATE);
    CU_ASSERT_EQUAL(raylet_store_abort(s, id, worker(1)), RC_ESTATE);
    /* Pins: worker 2 twice, worker 3 once. */
    CU_ASSERT_EQUAL(raylet_store_pin(s, id, worker(2)), 0);
    CU_ASSERT_EQUAL(raylet_store_pin(s, id, worker(2)), 0);
    CU_ASSERT_EQUAL(raylet_store_pin(s, id, worker(3)), 0);
    CU_ASSERT_EQUAL(raylet_store_lookup(s, id, &info), 0);
    CU_ASSERT_EQUAL(info.pins, 3);
    /* Releasing more than held changes nothing. */
    const uint8_t *three[3] = {id, id, id};
    size_t bad = 99;
    CU_ASSERT_EQUAL(raylet_store_release(s, worker(2), three, 3, &bad), RC_ESTATE);
    CU_ASSERT_EQUAL(bad, 2);
    CU_ASSERT_EQUAL(raylet_store_lookup(s, id, &info), 0);
    CU_ASSERT_EQUAL(info.pins, 3);
    /* The owner frees it while pinned: it stays until the last pin goes. */
    CU_ASSERT_EQUAL(raylet_store_free(s, id), 0);
    CU_ASSERT_EQUAL(raylet_store_lookup(s, id, &info), 0);
    CU_ASSERT(info.pending_free && !info.primary);
    CU_ASSERT_EQUAL(raylet_store_release(s, worker(2), three, 2, NULL), 0);
    CU_ASSERT_EQUAL(raylet_store_lookup(s, id, &info), 0);
    /* Worker 3 dies: its pin goes, and with it the object. */
    raylet_store_client_gone(s, worker(3));
    CU_ASSERT_EQUAL(raylet_store_lookup(s, id, &info), RC_ENOENT);
    CU_ASSERT_EQUAL(raylet_store_free(s, id), RC_ENOENT);
    CU_ASSERT_EQUAL(raylet_store_seal(s, id, worker(1)), RC_ENOENT);

    /* Abort gives the space back; the ID can be created again. */
    CU_ASSERT_EQUAL(raylet_store_create_object(s, id, worker(1), 8 * MiB, 0, NULL, 1, &off, err,
                                               sizeof(err)), 0);
    CU_ASSERT_EQUAL(raylet_store_abort(s, id, worker(1)), 0);
    CU_ASSERT_EQUAL(raylet_store_create_object(s, id, worker(1), 8 * MiB, 0, NULL, 1, &off, err,
                                               sizeof(err)), 0);
    /* A client that dies with an unsealed object: it is aborted. */
    raylet_store_client_gone(s, worker(1));
    CU_ASSERT_EQUAL(raylet_store_lookup(s, id, &info), RC_ENOENT);
    /* Freed while being written: gone as soon as it is sealed. */
    CU_ASSERT_EQUAL(raylet_store_create_object(s, id, worker(1), 10, 0, NULL, 1, &off, err,
                                               sizeof(err)), 0);
    CU_ASSERT_EQUAL(raylet_store_free(s, id), 0);
    CU_ASSERT_EQUAL(raylet_store_seal(s, id, worker(1)), 0);
    CU_ASSERT_EQUAL(raylet_store_lookup(s, id, &info), RC_ENOENT);
    /* Primary marking (PinObjectIDs) needs a sealed copy and records the owner. */
    put(s, 2, 100, 0, 7);
    uint8_t id2[RC_OBJECT_ID_SIZE], wid[RC_WORKER_ID_SIZE];
    make_id(id2, 2);
    memset(wid, 0x77, sizeof(wid));
    Ray__Rpc__Address owner = RAY__RPC__ADDRESS__INIT;
    owner.ip_address = "10.0.0.7";
    owner.port = 4242;
    owner.worker_id.data = wid;
    owner.worker_id.len = sizeof(wid);
    CU_ASSERT_EQUAL(raylet_store_make_primary(s, id2, &owner), 0);
    CU_ASSERT_EQUAL(raylet_store_lookup(s, id2, &info), 0);
    CU_ASSERT(info.primary);
    CU_ASSERT_STRING_EQUAL(info.owner->ip_address, "10.0.0.7");
    CU_ASSERT_EQUAL(raylet_store_make_primary(s, id, &owner), RC_ENOENT);
    /* The owner dies: what it owned is freed. */
    raylet_store_owner_gone(s, wid, NULL);
    CU_ASSERT_EQUAL(raylet_store_lookup(s, id2, &info), RC_ENOENT);
    store_end(s);
}

static void test_zero_copy_second_mapping(void)
{
    path_init("zc");
    raylet_store *s = store_new(16 * MiB);
    /* A client maps the same file, as a worker process does with RegisterClient's reply. */
    int fd = open(raylet_store_path(s), O_RDWR);
    CU_ASSERT_FATAL(fd >= 0);
    uint8_t *client = mmap(NULL, raylet_store_capacity(s), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    CU_ASSERT_FATAL(client != MAP_FAILED);
    CU_ASSERT(client != raylet_store_base(s));
    uint8_t id[RC_OBJECT_ID_SIZE];
    make_id(id, 1);
    uint64_t off;
    char err[256];
    CU_ASSERT_EQUAL(raylet_store_create_object(s, id, worker(1), 1 * MiB, 5, NULL, 1, &off, err,
                                               sizeof(err)), 0);
    /* The client writes in place... */
    for (uint64_t i = 0; i < 1 * MiB; i++)
        client[off + i] = (uint8_t)(i * 31 + 7);
    memcpy(client + off + 1 * MiB, "meta!", 5);
    CU_ASSERT_EQUAL(raylet_store_seal(s, id, worker(1)), 0);
    /* ... and the raylet sees every byte without a copy. */
    const uint8_t *mine = raylet_store_base(s) + off;
    int same = 1;
    for (uint64_t i = 0; i < 1 * MiB && same; i++)
        same = mine[i] == (uint8_t)(i * 31 + 7);
    CU_ASSERT(same);
    CU_ASSERT_EQUAL(memcmp(mine + 1 * MiB, "meta!", 5), 0);
    /* The other way round too. */
    raylet_store_base(s)[off] = 0xee;
    CU_ASSERT_EQUAL(client[off], 0xee);
    munmap(client, raylet_store_capacity(s));
    store_end(s);
}

/* ---- waiting gets --------------------------------------------------------------------- */

typedef struct get_result {
    int calls, rc;
    size_t n;
    int found[8];
    uint64_t offset[8];
    int64_t at_ms;
} get_result;

static void on_get(void *arg, int rc, const raylet_store_found *objs, size_t n)
{
    get_result *r = arg;
    r->calls++;
    r->rc = rc;
    r->n = n;
    for (size_t i = 0; i < n && i < 8; i++) {
        r->found[i] = objs[i].found;
        r->offset[i] = objs[i].offset;
    }
    r->at_ms = rc_mono_ms();
}

typedef struct fetch_log {
    int n;
    uint32_t ids[16];
    int with_owner;
} fetch_log;

static void on_fetch(void *arg, const uint8_t *id, const Ray__Rpc__Address *owner)
{
    fetch_log *f = arg;
    uint32_t n;
    memcpy(&n, id + 1, sizeof(n));
    if (f->n < 16)
        f->ids[f->n++] = n;
    if (owner)
        f->with_owner++;
}

typedef struct sealer {
    raylet_store *s;
    uint32_t id;
    uv_timer_t t;
} sealer;

static void seal_later(uv_timer_t *t)
{
    sealer *x = t->data;
    put(x->s, x->id, 4096, 1, 0x5a);
    uv_close((uv_handle_t *)t, NULL);
}

static void refs_init(Ray__Rpc__ObjectReference *refs, Ray__Rpc__ObjectReference **ptrs,
                      uint8_t (*ids)[RC_OBJECT_ID_SIZE], const uint32_t *nums, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        make_id(ids[i], nums[i]);
        ray__rpc__object_reference__init(&refs[i]);
        refs[i].object_id.data = ids[i];
        refs[i].object_id.len = RC_OBJECT_ID_SIZE;
        ptrs[i] = &refs[i];
    }
}

static void test_get_woken_by_seal(void)
{
    path_init("wake");
    raylet_store *s = store_new(16 * MiB);
    fetch_log fl = {0};
    raylet_store_hooks hooks = {on_fetch, NULL, &fl};
    raylet_store_set_hooks(s, &hooks);
    put(s, 1, 100, 1, 1);
    uint32_t nums[3] = {1, 2, 3};
    Ray__Rpc__ObjectReference refs[3], *ptrs[3];
    uint8_t ids[3][RC_OBJECT_ID_SIZE];
    refs_init(refs, ptrs, ids, nums, 3);
    /* 2 is being created here: no fetch for it. 3 is not here at all: fetched. */
    uint64_t off;
    char err[256];
    CU_ASSERT_EQUAL(raylet_store_create_object(s, ids[1], worker(1), 10, 0, NULL, 1, &off, err,
                                               sizeof(err)), 0);
    get_result r = {0};
    raylet_store_get *g = NULL;
    CU_ASSERT_EQUAL(raylet_store_get_objects(s, worker(2), ptrs, 3, -1, on_get, &r, &g), 0);
    CU_ASSERT_PTR_NOT_NULL(g);
    CU_ASSERT_EQUAL(r.calls, 0);
    CU_ASSERT_EQUAL(fl.n, 1);
    CU_ASSERT_EQUAL(fl.ids[0], 3);
    CU_ASSERT(raylet_store_is_wanted(s, ids[2]));
    CU_ASSERT(raylet_store_is_wanted(s, ids[1]));
    /* Object 1 was found at once and is pinned by the waiting get already. */
    raylet_object_info info;
    CU_ASSERT_EQUAL(raylet_store_lookup(s, ids[0], &info), 0);
    CU_ASSERT_EQUAL(info.pins, 1);
    CU_ASSERT_EQUAL(raylet_store_seal(s, ids[1], worker(1)), 0);
    CU_ASSERT_EQUAL(r.calls, 0);
    sealer x = {s, 3};
    uv_timer_init(&loop, &x.t);
    x.t.data = &x;
    uv_timer_start(&x.t, seal_later, 20, 0);
    while (r.calls == 0)
        uv_run(&loop, UV_RUN_ONCE);
    CU_ASSERT_EQUAL(r.rc, 0);
    CU_ASSERT(r.found[0] && r.found[1] && r.found[2]);
    CU_ASSERT(!raylet_store_is_wanted(s, ids[2]));
    /* Every object returned is pinned for worker 2 now. */
    const uint8_t *rel[3] = {ids[0], ids[1], ids[2]};
    CU_ASSERT_EQUAL(raylet_store_release(s, worker(2), rel, 3, NULL), 0);
    CU_ASSERT_EQUAL(raylet_store_release(s, worker(2), rel, 1, NULL), RC_ESTATE);
    store_end(s);
}

/* A get waiting for an object being created here fetches it once its creator gives up. */
static void test_abort_refetches_for_waiting_gets(void)
{
    path_init("refetch");
    raylet_store *s = store_new(16 * MiB);
    fetch_log fl = {0};
    raylet_store_hooks hooks = {on_fetch, NULL, &fl};
    raylet_store_set_hooks(s, &hooks);
    uint32_t nums[1] = {5};
    Ray__Rpc__ObjectReference refs[1], *ptrs[1];
    uint8_t ids[1][RC_OBJECT_ID_SIZE];
    refs_init(refs, ptrs, ids, nums, 1);
    uint64_t off;
    char err[256];
    CU_ASSERT_EQUAL(raylet_store_create_object(s, ids[0], worker(1), 10, 0, NULL, 1, &off, err,
                                               sizeof(err)), 0);
    get_result r = {0};
    CU_ASSERT_EQUAL(raylet_store_get_objects(s, worker(2), ptrs, 1, -1, on_get, &r, NULL), 0);
    CU_ASSERT_EQUAL(fl.n, 0); /* being created here: nothing to fetch yet */
    CU_ASSERT_EQUAL(raylet_store_abort(s, ids[0], worker(1)), 0);
    CU_ASSERT_EQUAL(fl.n, 1);
    CU_ASSERT_EQUAL(fl.ids[0], 5);
    /* The same when the creator dies. */
    CU_ASSERT_EQUAL(raylet_store_create_object(s, ids[0], worker(3), 10, 0, NULL, 1, &off, err,
                                               sizeof(err)), 0);
    raylet_store_client_gone(s, worker(3));
    CU_ASSERT_EQUAL(fl.n, 2);
    CU_ASSERT_EQUAL(r.calls, 0);
    put(s, 5, 10, 1, 1);
    CU_ASSERT_EQUAL(r.calls, 1);
    CU_ASSERT(r.found[0]);
    store_end(s);
}

static void test_get_timeout_and_failed_fetch(void)
{
    path_init("tmo");
    raylet_store *s = store_new(16 * MiB);
    put(s, 1, 100, 1, 1);
    uint32_t nums[2] = {1, 2};
    Ray__Rpc__ObjectReference refs[2], *ptrs[2];
    uint8_t ids[2][RC_OBJECT_ID_SIZE];
    refs_init(refs, ptrs, ids, nums, 2);
    /* timeout 0: what is here now, answered before returning. */
    get_result r0 = {0};
    CU_ASSERT_EQUAL(raylet_store_get_objects(s, worker(2), ptrs, 2, 0, on_get, &r0, NULL), 0);
    CU_ASSERT_EQUAL(r0.calls, 1);
    CU_ASSERT(r0.found[0] && !r0.found[1]);
    /* 150 ms timeout: partial result when it fires. */
    get_result r = {0};
    int64_t t0 = rc_mono_ms();
    CU_ASSERT_EQUAL(raylet_store_get_objects(s, worker(2), ptrs, 2, 150, on_get, &r, NULL), 0);
    while (r.calls == 0)
        uv_run(&loop, UV_RUN_ONCE);
    CU_ASSERT(r.at_ms - t0 >= 140); /* never before its timeout (how late depends on the load) */
    CU_ASSERT(r.found[0] && !r.found[1]);
    /* A fetch that fails for good (owner dead) answers at once, long before the timeout. */
    get_result r2 = {0};
    CU_ASSERT_EQUAL(raylet_store_get_objects(s, worker(3), ptrs, 2, 60000, on_get, &r2, NULL), 0);
    CU_ASSERT_EQUAL(r2.calls, 0);
    raylet_store_fetch_failed(s, ids[1]);
    CU_ASSERT_EQUAL(r2.calls, 1);
    CU_ASSERT(r2.found[0] && !r2.found[1]);
    /* Invalid arguments: the callback never runs. */
    get_result r3 = {0};
    CU_ASSERT_EQUAL(raylet_store_get_objects(s, worker(3), ptrs, 2, -2, on_get, &r3, NULL), RC_EINVAL);
    refs[1].object_id.len = 5;
    CU_ASSERT_EQUAL(raylet_store_get_objects(s, worker(3), ptrs, 2, -1, on_get, &r3, NULL), RC_EINVAL);
    CU_ASSERT_EQUAL(r3.calls, 0);
    refs[1].object_id.len = RC_OBJECT_ID_SIZE;
    /* A cancelled get gives back its pins and never answers; a waiting get of a client that
     * goes away answers RC_ECANCELED with nothing pinned. */
    raylet_store_get *g = NULL;
    get_result r4 = {0}, r5 = {0};
    CU_ASSERT_EQUAL(raylet_store_get_objects(s, worker(4), ptrs, 2, -1, on_get, &r4, &g), 0);
    CU_ASSERT_EQUAL(raylet_store_get_objects(s, worker(5), ptrs, 2, 5000, on_get, &r5, NULL), 0);
    raylet_object_info info;
    CU_ASSERT_EQUAL(raylet_store_lookup(s, ids[0], &info), 0);
    CU_ASSERT_EQUAL(info.pins, 5); /* r0, r, r2 (answered) + r4, r5 (waiting) */
    raylet_store_get_cancel(s, g);
    raylet_store_client_gone(s, worker(5));
    CU_ASSERT_EQUAL(r4.calls, 0);
    CU_ASSERT_EQUAL(r5.calls, 1);
    CU_ASSERT_EQUAL(r5.rc, RC_ECANCELED);
    CU_ASSERT(!r5.found[0]);
    CU_ASSERT_EQUAL(raylet_store_lookup(s, ids[0], &info), 0);
    CU_ASSERT_EQUAL(info.pins, 3);
    CU_ASSERT(!raylet_store_is_wanted(s, ids[1]));
    /* Destroying the store answers what still waits. */
    get_result r6 = {0};
    CU_ASSERT_EQUAL(raylet_store_get_objects(s, worker(6), ptrs, 2, 100000, on_get, &r6, NULL), 0);
    store_end(s);
    CU_ASSERT_EQUAL(r6.calls, 1);
    CU_ASSERT_EQUAL(r6.rc, RC_ECANCELED);
}

/* ---- RPC ---------------------------------------------------------------------------- */

static const ProtobufCServiceDescriptor *local_svc = &rayc__rpc__local_raylet_service__descriptor;

typedef struct rpc_fixture {
    rpc_ctx *ctx;
    rpc_server *srv;
    rpc_client *cli;
    raylet_store *s;
    char sock[128];
} rpc_fixture;

static rpc_fixture R;

static void rpc_setup(void)
{
    path_init("rpc");
    rc_config_init();
    R.s = store_new(32 * MiB);
    CU_ASSERT_EQUAL_FATAL(rpc_ctx_create(&loop, &R.ctx), 0);
    CU_ASSERT_EQUAL_FATAL(rpc_server_create(R.ctx, NULL, &R.srv), 0);
    CU_ASSERT_EQUAL_FATAL(rpc_server_add_service(R.srv, local_svc, raylet_store_handlers, R.s), 0);
    CU_ASSERT_EQUAL_FATAL(rpc_server_add_service(R.srv, &ray__rpc__node_manager_service__descriptor,
                                                 raylet_store_pin_handlers, R.s), 0);
    snprintf(R.sock, sizeof(R.sock), "unix:/tmp/rayc-test-store-%d.sock", (int)getpid());
    unlink(R.sock + 5);
    CU_ASSERT_EQUAL_FATAL(rpc_server_listen(R.srv, R.sock, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(rpc_server_start(R.srv), 0);
    CU_ASSERT_EQUAL_FATAL(rpc_client_create(R.ctx, R.sock, NULL, &R.cli), 0);
}

static void rpc_teardown(void)
{
    rpc_client_destroy(R.cli);
    rpc_server_destroy(R.srv);
    rpc_ctx_drain(R.ctx);
    raylet_store_destroy(R.s);
    rpc_ctx_destroy(R.ctx);
    uv_run(&loop, UV_RUN_DEFAULT);
    CU_ASSERT_EQUAL(uv_loop_close(&loop), 0);
    unlink(R.sock + 5);
}

static int call(const char *method, const ProtobufCMessage *req, ProtobufCMessage **reply, char *err)
{
    const ProtobufCServiceDescriptor *svc = strcmp(method, "PinObjectIDs") == 0
                                                ? &ray__rpc__node_manager_service__descriptor
                                                : local_svc;
    ProtobufCMessage *r = NULL;
    err[0] = '\0';
    int code = rpc_client_call_sync(R.cli, svc, method, req, 10000, &r, err, 512);
    if (reply)
        *reply = r;
    else
        rpc_msg_free(r);
    return code;
}

static ProtobufCBinaryData bin(const uint8_t *p, size_t n)
{
    ProtobufCBinaryData b = {n, (uint8_t *)p};
    return b;
}

static int rpc_create(uint32_t n, const uint8_t *w, uint64_t size, uint64_t *off, char *err)
{
    uint8_t id[RC_OBJECT_ID_SIZE];
    make_id(id, n);
    Rayc__Rpc__CreateObjectRequest req = RAYC__RPC__CREATE_OBJECT_REQUEST__INIT;
    req.worker_id = bin(w, RC_WORKER_ID_SIZE);
    req.object_id = bin(id, RC_OBJECT_ID_SIZE);
    req.data_size = size;
    req.metadata_size = 1;
    ProtobufCMessage *reply = NULL;
    int code = call("CreateObject", &req.base, &reply, err);
    if (code == GRPC_STATUS_OK && off)
        *off = ((Rayc__Rpc__CreateObjectReply *)reply)->offset;
    rpc_msg_free(reply);
    return code;
}

static int rpc_seal_abort(const char *method, uint32_t n, const uint8_t *w, char *err)
{
    uint8_t id[RC_OBJECT_ID_SIZE];
    make_id(id, n);
    Rayc__Rpc__SealObjectRequest req = RAYC__RPC__SEAL_OBJECT_REQUEST__INIT;
    req.worker_id = bin(w, RC_WORKER_ID_SIZE);
    req.object_id = bin(id, RC_OBJECT_ID_SIZE);
    if (strcmp(method, "AbortObject") == 0) {
        Rayc__Rpc__AbortObjectRequest a = RAYC__RPC__ABORT_OBJECT_REQUEST__INIT;
        a.worker_id = req.worker_id;
        a.object_id = req.object_id;
        return call(method, &a.base, NULL, err);
    }
    return call(method, &req.base, NULL, err);
}

static int rpc_release(uint32_t n, const uint8_t *w, char *err)
{
    uint8_t id[RC_OBJECT_ID_SIZE];
    make_id(id, n);
    Rayc__Rpc__ReleaseObjectsRequest req = RAYC__RPC__RELEASE_OBJECTS_REQUEST__INIT;
    ProtobufCBinaryData ids[1] = {bin(id, RC_OBJECT_ID_SIZE)};
    req.worker_id = bin(w, RC_WORKER_ID_SIZE);
    req.n_object_ids = 1;
    req.object_ids = ids;
    return call("ReleaseObjects", &req.base, NULL, err);
}

static void test_rpc_create_seal_abort_release(void)
{
    rpc_setup();
    char err[512];
    uint64_t off = 0;
    CU_ASSERT_EQUAL(rpc_create(1, worker(1), 1000, &off, err), GRPC_STATUS_OK);
    memset(raylet_store_base(R.s) + off, 3, 1001);
    CU_ASSERT_EQUAL(rpc_create(1, worker(1), 1000, &off, err), GRPC_STATUS_ALREADY_EXISTS);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "already exists"));
    CU_ASSERT_EQUAL(rpc_seal_abort("SealObject", 1, worker(2), err), GRPC_STATUS_PERMISSION_DENIED);
    CU_ASSERT_EQUAL(rpc_seal_abort("AbortObject", 1, worker(2), err), GRPC_STATUS_PERMISSION_DENIED);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "another worker created it"));
    CU_ASSERT_EQUAL(rpc_seal_abort("SealObject", 1, worker(1), err), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(rpc_seal_abort("SealObject", 1, worker(1), err), GRPC_STATUS_FAILED_PRECONDITION);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "already sealed"));
    CU_ASSERT_EQUAL(rpc_seal_abort("AbortObject", 1, worker(1), err), GRPC_STATUS_FAILED_PRECONDITION);
    CU_ASSERT_EQUAL(rpc_seal_abort("SealObject", 2, worker(1), err), GRPC_STATUS_NOT_FOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not in this node's store"));
    CU_ASSERT_EQUAL(rpc_seal_abort("AbortObject", 2, worker(1), err), GRPC_STATUS_NOT_FOUND);
    /* Abort through RPC. */
    CU_ASSERT_EQUAL(rpc_create(3, worker(1), 10, &off, err), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(rpc_seal_abort("AbortObject", 3, worker(1), err), GRPC_STATUS_OK);
    /* Full store. */
    CU_ASSERT_EQUAL(rpc_create(4, worker(1), 64 * MiB, &off, err), GRPC_STATUS_RESOURCE_EXHAUSTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "larger than the whole object store"));
    CU_ASSERT_EQUAL(rpc_create(4, worker(1), 20 * MiB, &off, err), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(rpc_create(5, worker(1), 20 * MiB, &off, err), GRPC_STATUS_RESOURCE_EXHAUSTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "object store full"));
    /* Release of something not held. */
    CU_ASSERT_EQUAL(rpc_release(1, worker(1), err), GRPC_STATUS_FAILED_PRECONDITION);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "does not hold"));
    rpc_teardown();
}

static void test_rpc_malformed_requests(void)
{
    rpc_setup();
    char err[512];
    uint8_t id[RC_OBJECT_ID_SIZE], zero[RC_WORKER_ID_SIZE] = {0};
    make_id(id, 1);
    /* Short IDs, the reserved worker ID, a timeout below -1. */
    Rayc__Rpc__CreateObjectRequest c = RAYC__RPC__CREATE_OBJECT_REQUEST__INIT;
    c.worker_id = bin(worker(1), 5);
    c.object_id = bin(id, RC_OBJECT_ID_SIZE);
    CU_ASSERT_EQUAL(call("CreateObject", &c.base, NULL, err), GRPC_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "worker_id must be 28 bytes, got 5"));
    c.worker_id = bin(zero, RC_WORKER_ID_SIZE);
    CU_ASSERT_EQUAL(call("CreateObject", &c.base, NULL, err), GRPC_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "reserved"));
    c.worker_id = bin(worker(1), RC_WORKER_ID_SIZE);
    c.object_id = bin(id, 27);
    CU_ASSERT_EQUAL(call("CreateObject", &c.base, NULL, err), GRPC_STATUS_INVALID_ARGUMENT);
    c.object_id = bin(id, RC_OBJECT_ID_SIZE);
    c.data_size = UINT64_MAX;
    c.metadata_size = 10;
    CU_ASSERT_EQUAL(call("CreateObject", &c.base, NULL, err), GRPC_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "overflows"));
    Rayc__Rpc__SealObjectRequest sreq = RAYC__RPC__SEAL_OBJECT_REQUEST__INIT;
    CU_ASSERT_EQUAL(call("SealObject", &sreq.base, NULL, err), GRPC_STATUS_INVALID_ARGUMENT);
    Rayc__Rpc__GetObjectsRequest g = RAYC__RPC__GET_OBJECTS_REQUEST__INIT;
    Ray__Rpc__ObjectReference ref = RAY__RPC__OBJECT_REFERENCE__INIT, *refs[1] = {&ref};
    ref.object_id = bin(id, 3);
    g.worker_id = bin(worker(1), RC_WORKER_ID_SIZE);
    g.n_refs = 1;
    g.refs = refs;
    CU_ASSERT_EQUAL(call("GetObjects", &g.base, NULL, err), GRPC_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "refs[0].object_id"));
    ref.object_id = bin(id, RC_OBJECT_ID_SIZE);
    g.timeout_ms = -7;
    CU_ASSERT_EQUAL(call("GetObjects", &g.base, NULL, err), GRPC_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "timeout_ms"));
    Rayc__Rpc__ReleaseObjectsRequest rel = RAYC__RPC__RELEASE_OBJECTS_REQUEST__INIT;
    ProtobufCBinaryData short_id[1] = {bin(id, 1)};
    rel.worker_id = bin(worker(1), RC_WORKER_ID_SIZE);
    rel.n_object_ids = 1;
    rel.object_ids = short_id;
    CU_ASSERT_EQUAL(call("ReleaseObjects", &rel.base, NULL, err), GRPC_STATUS_INVALID_ARGUMENT);
    Ray__Rpc__PinObjectIDsRequest pin = RAY__RPC__PIN_OBJECT_IDS_REQUEST__INIT;
    pin.n_object_ids = 1;
    pin.object_ids = short_id;
    /* PinObjectIDs answers per object, as Ray's raylet does: a malformed ID is not pinned. */
    ProtobufCMessage *pin_reply = NULL;
    CU_ASSERT_EQUAL(call("PinObjectIDs", &pin.base, &pin_reply, err), GRPC_STATUS_OK);
    if (pin_reply) {
        const Ray__Rpc__PinObjectIDsReply *pr = (const void *)pin_reply;
        CU_ASSERT_EQUAL(pr->n_successes, 1);
        CU_ASSERT(pr->n_successes == 1 && !pr->successes[0]);
        rpc_msg_free(pin_reply);
    }
    /* Bytes that are no message at all: the rpc layer refuses them; the raylet lives on. */
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x12};
    CU_ASSERT_EQUAL(rpc_client_call_raw_sync(R.cli, "/rayc.rpc.LocalRayletService/CreateObject", junk,
                                             sizeof(junk), 5000, err, sizeof(err)),
                    GRPC_STATUS_INVALID_ARGUMENT);
    uint64_t off;
    CU_ASSERT_EQUAL(rpc_create(9, worker(1), 10, &off, err), GRPC_STATUS_OK);
    /* Methods of the service this module does not serve answer UNIMPLEMENTED. */
    Rayc__Rpc__NotifyTaskBlockedRequest nb = RAYC__RPC__NOTIFY_TASK_BLOCKED_REQUEST__INIT;
    CU_ASSERT_EQUAL(call("NotifyTaskBlocked", &nb.base, NULL, err), GRPC_STATUS_UNIMPLEMENTED);
    rpc_teardown();
}

typedef struct async_get {
    int done, code;
    Rayc__Rpc__GetObjectsReply *reply;
    char msg[256];
} async_get;

static void on_async_get(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    async_get *a = arg;
    a->done = 1;
    a->code = st->code;
    snprintf(a->msg, sizeof(a->msg), "%s", st->message);
    a->reply = (Rayc__Rpc__GetObjectsReply *)reply;
}

static void start_get(rpc_client *cli, const uint32_t *nums, size_t n, int64_t timeout_ms,
                      const uint8_t *w, async_get *a)
{
    Ray__Rpc__ObjectReference refs[8], *ptrs[8];
    uint8_t ids[8][RC_OBJECT_ID_SIZE];
    refs_init(refs, ptrs, ids, nums, n);
    Rayc__Rpc__GetObjectsRequest g = RAYC__RPC__GET_OBJECTS_REQUEST__INIT;
    g.worker_id = bin(w, RC_WORKER_ID_SIZE);
    g.n_refs = n;
    g.refs = ptrs;
    g.timeout_ms = timeout_ms;
    memset(a, 0, sizeof(*a));
    CU_ASSERT_EQUAL(rpc_client_call(cli, local_svc, "GetObjects", &g.base, 20000, on_async_get, a), 0);
}

static void test_rpc_get_waits_release_pin(void)
{
    rpc_setup();
    char err[512];
    uint64_t off1 = 0, off2 = 0;
    CU_ASSERT_EQUAL(rpc_create(1, worker(1), 100, &off1, err), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(rpc_seal_abort("SealObject", 1, worker(1), err), GRPC_STATUS_OK);
    /* A get for 1 and 2 waits for 2; a seal over RPC wakes it. */
    uint32_t nums[2] = {1, 2};
    async_get a;
    start_get(R.cli, nums, 2, -1, worker(2), &a);
    for (int i = 0; i < 20; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    CU_ASSERT_EQUAL(a.done, 0);
    CU_ASSERT_EQUAL(rpc_create(2, worker(1), 5000, &off2, err), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(rpc_seal_abort("SealObject", 2, worker(1), err), GRPC_STATUS_OK);
    while (!a.done)
        uv_run(&loop, UV_RUN_ONCE);
    CU_ASSERT_EQUAL_FATAL(a.code, GRPC_STATUS_OK);
    CU_ASSERT_EQUAL_FATAL(a.reply->n_objects, 2);
    CU_ASSERT(a.reply->objects[0]->found && a.reply->objects[1]->found);
    CU_ASSERT_EQUAL(a.reply->objects[0]->offset, off1);
    CU_ASSERT_EQUAL(a.reply->objects[1]->offset, off2);
    CU_ASSERT_EQUAL(a.reply->objects[1]->data_size, 5000);
    CU_ASSERT_EQUAL(a.reply->objects[1]->metadata_size, 1);
    uint8_t id2[RC_OBJECT_ID_SIZE];
    make_id(id2, 2);
    CU_ASSERT_EQUAL(memcmp(a.reply->objects[1]->object_id.data, id2, RC_OBJECT_ID_SIZE), 0);
    rpc_msg_free(&a.reply->base);
    /* Timeout with a partial answer. */
    uint32_t nums2[2] = {1, 3};
    start_get(R.cli, nums2, 2, 100, worker(2), &a);
    while (!a.done)
        uv_run(&loop, UV_RUN_ONCE);
    CU_ASSERT_EQUAL_FATAL(a.code, GRPC_STATUS_OK);
    CU_ASSERT(a.reply->objects[0]->found && !a.reply->objects[1]->found);
    rpc_msg_free(&a.reply->base);
    /* Worker 2 holds 1 twice and 2 once. */
    CU_ASSERT_EQUAL(rpc_release(1, worker(2), err), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(rpc_release(1, worker(2), err), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(rpc_release(1, worker(2), err), GRPC_STATUS_FAILED_PRECONDITION);
    CU_ASSERT_EQUAL(rpc_release(2, worker(2), err), GRPC_STATUS_OK);
    /* PinObjectIDs: sealed objects become primary; absent ones report false. */
    uint8_t id1[RC_OBJECT_ID_SIZE], id7[RC_OBJECT_ID_SIZE];
    make_id(id1, 1);
    make_id(id7, 7);
    Ray__Rpc__PinObjectIDsRequest pin = RAY__RPC__PIN_OBJECT_IDS_REQUEST__INIT;
    ProtobufCBinaryData pids[2] = {bin(id1, RC_OBJECT_ID_SIZE), bin(id7, RC_OBJECT_ID_SIZE)};
    pin.n_object_ids = 2;
    pin.object_ids = pids;
    ProtobufCMessage *pr = NULL;
    CU_ASSERT_EQUAL(call("PinObjectIDs", &pin.base, &pr, err), GRPC_STATUS_OK);
    Ray__Rpc__PinObjectIDsReply *pinr = (Ray__Rpc__PinObjectIDsReply *)pr;
    CU_ASSERT_EQUAL_FATAL(pinr->n_successes, 2);
    CU_ASSERT(pinr->successes[0] && !pinr->successes[1]);
    rpc_msg_free(pr);
    rpc_teardown();
}

static void test_rpc_held_get_cancel_and_shutdown(void)
{
    rpc_setup();
    char err[512];
    uint64_t off;
    CU_ASSERT_EQUAL(rpc_create(1, worker(1), 100, &off, err), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(rpc_seal_abort("SealObject", 1, worker(1), err), GRPC_STATUS_OK);
    /* A second client waits for 1 and 2, then goes away: its get is cancelled and the pin
     * it took on 1 goes with it. */
    rpc_client *other = NULL;
    CU_ASSERT_EQUAL_FATAL(rpc_client_create(R.ctx, R.sock, NULL, &other), 0);
    uint32_t nums[2] = {1, 2};
    async_get a;
    start_get(other, nums, 2, -1, worker(3), &a);
    uint8_t id1[RC_OBJECT_ID_SIZE];
    make_id(id1, 1);
    raylet_object_info info;
    int64_t deadline = rc_mono_ms() + 5000;
    while (rc_mono_ms() < deadline && (raylet_store_lookup(R.s, id1, &info), info.pins == 0))
        uv_run(&loop, UV_RUN_NOWAIT);
    CU_ASSERT_EQUAL(info.pins, 1);
    rpc_client_destroy(other);
    deadline = rc_mono_ms() + 5000;
    while (rc_mono_ms() < deadline && (raylet_store_lookup(R.s, id1, &info), info.pins != 0))
        uv_run(&loop, UV_RUN_NOWAIT);
    CU_ASSERT_EQUAL(info.pins, 0);
    while (!a.done)
        uv_run(&loop, UV_RUN_ONCE);
    CU_ASSERT_EQUAL(a.code, GRPC_STATUS_CANCELLED);
    /* A waiting get of a worker that disconnects is answered UNAVAILABLE. */
    start_get(R.cli, nums, 2, -1, worker(4), &a);
    for (int i = 0; i < 50 && !raylet_store_is_wanted(R.s, (uint8_t[RC_OBJECT_ID_SIZE]){0x0b, 2}); i++)
        uv_run(&loop, UV_RUN_ONCE);
    raylet_store_client_gone(R.s, worker(4));
    while (!a.done)
        uv_run(&loop, UV_RUN_ONCE);
    CU_ASSERT_EQUAL(a.code, GRPC_STATUS_UNAVAILABLE);
    CU_ASSERT_PTR_NOT_NULL(strstr(a.msg, "disconnected"));
    /* The store going away answers what still waits. */
    start_get(R.cli, nums, 2, -1, worker(5), &a);
    for (int i = 0; i < 50 && !raylet_store_is_wanted(R.s, (uint8_t[RC_OBJECT_ID_SIZE]){0x0b, 2}); i++)
        uv_run(&loop, UV_RUN_ONCE);
    raylet_store_destroy(R.s);
    while (!a.done)
        uv_run(&loop, UV_RUN_ONCE);
    CU_ASSERT_EQUAL(a.code, GRPC_STATUS_UNAVAILABLE);
    R.s = NULL;
    rpc_teardown();
}

/* Local round trip, as a worker does it: create, write, seal, get, release. */
static void test_rpc_round_trip_rate(void)
{
    rpc_setup();
    char err[512];
    enum { N = 2000 };
    int64_t t0 = rc_mono_ns();
    int ok = 0;
    for (uint32_t i = 0; i < N; i++) {
        uint64_t off;
        if (rpc_create(100 + i, worker(1), 1024, &off, err) != GRPC_STATUS_OK)
            break;
        memset(raylet_store_base(R.s) + off, (int)i, 1024);
        if (rpc_seal_abort("SealObject", 100 + i, worker(1), err) != GRPC_STATUS_OK)
            break;
        uint32_t nums[1] = {100 + i};
        async_get a;
        start_get(R.cli, nums, 1, 0, worker(2), &a);
        while (!a.done)
            uv_run(&loop, UV_RUN_ONCE);
        int found = a.code == GRPC_STATUS_OK && a.reply->objects[0]->found &&
                    raylet_store_base(R.s)[a.reply->objects[0]->offset] == (uint8_t)i;
        rpc_msg_free(a.reply ? &a.reply->base : NULL);
        if (!found || rpc_release(100 + i, worker(2), err) != GRPC_STATUS_OK)
            break;
        ok++;
    }
    double s = (double)(rc_mono_ns() - t0) / 1e9;
    CU_ASSERT_EQUAL(ok, N);
    printf("\n  create+seal+get+release over a unix socket: %.1f us per object (%.0f/s)\n",
           s / N * 1e6, N / s);
    /* The store itself, without RPC. */
    t0 = rc_mono_ns();
    enum { M = 200000 };
    int direct_ok = 0;
    for (uint32_t i = 0; i < M; i++) {
        uint8_t id[RC_OBJECT_ID_SIZE];
        make_id(id, 1000000 + i);
        uint64_t off;
        if (raylet_store_create_object(R.s, id, worker(1), 1024, 0, NULL, 1, &off, err, sizeof(err)) < 0 ||
            raylet_store_seal(R.s, id, worker(1)) < 0 || raylet_store_pin(R.s, id, worker(2)) < 0)
            break;
        const uint8_t *ids[1] = {id};
        raylet_store_release(R.s, worker(2), ids, 1, NULL);
        raylet_store_free(R.s, id);
        direct_ok++;
    }
    s = (double)(rc_mono_ns() - t0) / 1e9;
    CU_ASSERT_EQUAL(direct_ok, M);
    printf("  in-process create+seal+pin+release+free: %.2f us per object\n", s / M * 1e6);
    rpc_teardown();
}


/* ---- pre-fault and warm reuse ------------------------------------------------------- */

/* Bytes of the file at path that have memory (its allocated blocks). */
static uint64_t allocated_bytes(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
}

/* Bytes the file at path had allocated in [off, off+len): the drop in its blocks when that
 * range is punched out (which frees it). */
static uint64_t punch(const char *path, uint64_t off, uint64_t len)
{
    uint64_t before = allocated_bytes(path);
    int fd = open(path, O_RDWR);
    if (fd < 0)
        return 0;
    int rc = fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len);
    close(fd);
    uint64_t after = allocated_bytes(path);
    return rc == 0 && before >= after ? before - after : 0;
}

static void write_meminfo(const char *path, long long total_kb, long long avail_kb)
{
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fprintf(f, "MemTotal:       %lld kB\nMemFree:        1 kB\n", total_kb);
    if (avail_kb >= 0)
        fprintf(f, "MemAvailable:   %lld kB\n", avail_kb);
    fprintf(f, "Buffers:        0 kB\n");
    fclose(f);
}

static raylet_prefault_progress prefault_wait(raylet_region *r)
{
    raylet_prefault_progress p;
    for (int i = 0; i < 1200; i++) { /* 60 s: generous for a loaded machine */
        raylet_region_prefault_get(r, &p);
        if (p.state != RAYLET_PREFAULT_RUNNING)
            break;
        rc_sleep_ms(50);
    }
    return p;
}

static void test_prefault_budget(void)
{
    char mi[128];
    snprintf(mi, sizeof(mi), "/tmp/rayc-test-meminfo-%d", (int)getpid());
    uint64_t b = 1;
    write_meminfo(mi, 1000 * 1024, 600 * 1024);
    CU_ASSERT_EQUAL(rc_mem_budget(mi, 0.5, &b), 0);
    CU_ASSERT_EQUAL(b, 100 * MiB);
    CU_ASSERT_EQUAL(rc_mem_budget(mi, 0.0, &b), 0);
    CU_ASSERT_EQUAL(b, 600 * MiB);
    CU_ASSERT_EQUAL(rc_mem_budget(mi, 0.7, &b), 0);
    CU_ASSERT_EQUAL(b, 0); /* less available than the floor: nothing */
    write_meminfo(mi, 1000 * 1024, -1); /* no MemAvailable line */
    CU_ASSERT_EQUAL(rc_mem_budget(mi, 0.5, &b), RC_EIO);
    CU_ASSERT_EQUAL(b, 0);
    unlink(mi);
    CU_ASSERT_EQUAL(rc_mem_budget(mi, 0.5, &b), RC_EIO);
    /* The real file parses. */
    CU_ASSERT_EQUAL(rc_mem_budget(NULL, 0.0, &b), 0);
    CU_ASSERT(b > 0);
}

/* With 100 MiB to spare the pre-fault of a 256 MiB region stops after three 32 MiB steps:
 * the top zone, then the bottom up; the pages past them stay untouched. */
static void test_prefault_bounded_by_memory(void)
{
    path_init("prefault");
    char mi[128];
    snprintf(mi, sizeof(mi), "/tmp/rayc-test-meminfo-%d", (int)getpid());
    write_meminfo(mi, 1000 * 1024, 600 * 1024);
    raylet_region *r = NULL;
    char err[256];
    uint64_t size = 256 * MiB;
    CU_ASSERT_EQUAL_FATAL(raylet_region_create(shm_path, size, err, sizeof(err), &r), 0);
    raylet_prefault_progress p;
    raylet_region_prefault_get(r, &p);
    CU_ASSERT_EQUAL(p.state, RAYLET_PREFAULT_OFF);
    CU_ASSERT_EQUAL(raylet_region_prefault_start(r, 1.5, mi), RC_EINVAL);
    CU_ASSERT_EQUAL(raylet_region_prefault_start(r, 0.5, mi), 0);
    CU_ASSERT_EQUAL(raylet_region_prefault_start(r, 0.5, mi), RC_ESTATE);
    p = prefault_wait(r);
    CU_ASSERT_EQUAL(p.state, RAYLET_PREFAULT_MEMORY);
    CU_ASSERT_EQUAL(p.bytes, 3 * (uint64_t)RAYLET_REGION_PREFAULT_STEP);
    CU_ASSERT_EQUAL(p.target, size);
    /* jemalloc's metadata block (the lowest pages) was written before: at most 4 MiB more. */
    uint64_t total = allocated_bytes(shm_path), top = RAYLET_REGION_PREFAULT_TOP;
    uint64_t step = RAYLET_REGION_PREFAULT_STEP;
    CU_ASSERT(total >= 3 * step && total <= 3 * step + 4 * MiB);
    /* The top zone and the two lowest steps hold them all; the rest holds nothing. */
    CU_ASSERT_EQUAL(punch(shm_path, size - top, top), top);
    CU_ASSERT_EQUAL(punch(shm_path, 2 * step, size - top - 2 * step), 0);
    /* (Not the lowest 4 MiB: jemalloc's metadata lives there and must stay.) */
    CU_ASSERT_EQUAL(punch(shm_path, 4 * MiB, 2 * step - 4 * MiB), 2 * step - 4 * MiB);
    raylet_region_destroy(r);
    unlink(mi);

    /* A floor above what is available: nothing at all. */
    write_meminfo(mi, 1000 * 1024, 400 * 1024);
    CU_ASSERT_EQUAL_FATAL(raylet_region_create(shm_path, 64 * MiB, err, sizeof(err), &r), 0);
    CU_ASSERT_EQUAL(raylet_region_prefault_start(r, 0.5, mi), 0);
    p = prefault_wait(r);
    CU_ASSERT_EQUAL(p.state, RAYLET_PREFAULT_MEMORY);
    CU_ASSERT_EQUAL(p.bytes, 0);
    /* Only what jemalloc wrote of its own metadata (a block at the bottom). */
    CU_ASSERT(allocated_bytes(shm_path) <= 4 * MiB);
    raylet_region_destroy(r);
    unlink(mi);
}

/* Enough memory: the whole region, while objects live in it, without changing their bytes
 * and without mapping the pages here; and a region destroyed while its pre-fault runs. */
static void test_prefault_whole_region_keeps_objects(void)
{
    path_init("prefault");
    char mi[128];
    snprintf(mi, sizeof(mi), "/tmp/rayc-test-meminfo-%d", (int)getpid());
    write_meminfo(mi, 100000 * 1024, 100000 * 1024);
    raylet_region *r = NULL;
    char err[256];
    uint64_t size = 80 * MiB;
    CU_ASSERT_EQUAL_FATAL(raylet_region_create(shm_path, size, err, sizeof(err), &r), 0);
    uint64_t off, got;
    CU_ASSERT_EQUAL_FATAL(raylet_region_alloc(r, 20 * MiB, &off, &got), 0);
    memset(raylet_region_base(r) + off, 0x5a, 20 * MiB);
    CU_ASSERT_EQUAL(raylet_region_prefault_start(r, 0.0, mi), 0);
    raylet_prefault_progress p = prefault_wait(r);
    CU_ASSERT_EQUAL(p.state, RAYLET_PREFAULT_DONE);
    CU_ASSERT_EQUAL(p.bytes, size);
    CU_ASSERT_EQUAL(allocated_bytes(shm_path), size);
    const uint8_t *b = raylet_region_base(r) + off;
    int same = 1;
    for (uint64_t i = 0; i < 20 * MiB; i++)
        same &= b[i] == 0x5a;
    CU_ASSERT(same);
    raylet_region_free(r, off);
    raylet_region_destroy(r);

    /* Destroyed mid-way (or done, on a fast machine): destroy does not wait for the thread,
     * which stops after its current piece; the file goes at once. */
    CU_ASSERT_EQUAL_FATAL(raylet_region_create(shm_path, 512 * MiB, err, sizeof(err), &r), 0);
    CU_ASSERT_EQUAL(raylet_region_prefault_start(r, 0.0, mi), 0);
    raylet_region_destroy(r);
    struct stat st;
    CU_ASSERT_NOT_EQUAL(stat(shm_path, &st), 0);
    unlink(mi);
}

/* A large object freed and made again lands on the same, already faulted range; so does a
 * small one in the top zone. */
static void test_region_reuses_warm_range(void)
{
    path_init("region");
    raylet_region *r = NULL;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(raylet_region_create(shm_path, 256 * MiB, err, sizeof(err), &r), 0);
    uint64_t a, b, got, page = (uint64_t)sysconf(_SC_PAGESIZE);
    for (int round = 0; round < 3; round++) {
        CU_ASSERT_EQUAL_FATAL(raylet_region_alloc(r, 100 * MiB, &a, &got), 0);
        CU_ASSERT_EQUAL_FATAL(raylet_region_alloc(r, 300 * 1024, &b, &got), 0);
        static uint64_t first_a, first_b;
        if (round == 0) {
            first_a = a;
            first_b = b;
            CU_ASSERT(a < 128 * MiB);                            /* large: from the bottom */
            CU_ASSERT(b >= 256 * MiB - RAYLET_REGION_PREFAULT_TOP); /* small: the top zone */
        } else {
            /* The same extent (jemalloc offsets a large object by a random cache line within
             * its first page, so compare pages). */
            CU_ASSERT_EQUAL(a / page, first_a / page);
            CU_ASSERT_EQUAL(b / page, first_b / page);
        }
        raylet_region_free(r, a);
        raylet_region_free(r, b);
    }
    raylet_region_destroy(r);
}

static const unit_case cases[] = {
    UNIT_CASE(test_region_many_sizes),
    UNIT_CASE(test_region_fragmentation_and_coalescing),
    UNIT_CASE(test_region_bad_arguments),
    UNIT_CASE(test_full_store_message),
    UNIT_CASE(test_eviction_lru_secondary_only),
    UNIT_CASE(test_lifecycle),
    UNIT_CASE(test_zero_copy_second_mapping),
    UNIT_CASE(test_get_woken_by_seal),
    UNIT_CASE(test_abort_refetches_for_waiting_gets),
    UNIT_CASE(test_get_timeout_and_failed_fetch),
    UNIT_CASE(test_rpc_create_seal_abort_release),
    UNIT_CASE(test_rpc_malformed_requests),
    UNIT_CASE(test_rpc_get_waits_release_pin),
    UNIT_CASE(test_rpc_held_get_cancel_and_shutdown),
    UNIT_CASE(test_rpc_round_trip_rate),
    UNIT_CASE(test_prefault_budget),
    UNIT_CASE(test_prefault_bounded_by_memory),
    UNIT_CASE(test_prefault_whole_region_keeps_objects),
    UNIT_CASE(test_region_reuses_warm_range),
};

int main(void)
{
    return unit_run("object_store", cases, UNIT_N(cases));
}
