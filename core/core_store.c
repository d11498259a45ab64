/*
 * core_store: this process's side of the node's shared-memory object store (see core_int.h):
 * the one path by which a put and a task's large result are written into the store, and the
 * background touch of a driver's mapping.
 *
 * Store put: CreateObject reserves the space, the parts are copied to base + offset, and
 * SealObject makes the object visible. Nothing is copied unless [offset, offset + size) lies
 * inside this process's mapping; a reply pointing elsewhere (a raylet bug, or a mapping of
 * the wrong size) is refused and the reserved object aborted, so a bad offset cannot make
 * the copy write over memory that is not the object's.
 *
 * Touching the mapping: on a host where each first access of a page costs a fault (and in a
 * virtual machine a trap to the hypervisor), a driver's first large puts would run at the
 * speed of page faults. The raylet faults the store's pages in (raylet/object_region.c); a
 * driver's own mapping still pays one fault (or trap) per page at its first access, so a
 * driver touches each page on a thread of its own (at normal priority: it is bounded, and
 * the driver's own puts are what it speeds up), in the
 * order the store hands out space (the small-object zone at the top, then from the bottom
 * up), up to object_store_client_prefault_bytes. A touch of a page the raylet has not
 * faulted in yet allocates it, so a chunk with such pages (mincore) is touched only while the
 * host keeps object_store_prefault_keep_available of its memory available, as the raylet's
 * pre-fault does. Workers do not do it (there are many of them, each with page tables of
 * its own).
 *
 * Threads: core_store_put from any thread that may call into the raylet
 * (core_call_raylet_from_thread); the touch thread changes no byte of the mapping.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core_int.h"
#include "rc_alloc.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_log.h"

int core_iov_total(const rayc_iov *parts, size_t n, size_t *total)
{
    size_t size = 0;
    for (size_t i = 0; i < n; i++) {
        if (parts[i].size > SIZE_MAX - size)
            return RC_ETOOBIG;
        size += parts[i].size;
    }
    *total = size;
    return 0;
}

int core_store_span_check(uint64_t store_size, uint64_t offset, uint64_t size)
{
    return offset <= store_size && size <= store_size - offset ? 0 : RC_ERANGE;
}

/* Drops an object this process created but will not seal. */
static void core__store_abort(core_worker *cw, const Rayc__Rpc__CreateObjectRequest *creq)
{
    Rayc__Rpc__AbortObjectRequest areq = RAYC__RPC__ABORT_OBJECT_REQUEST__INIT;
    areq.worker_id = creq->worker_id;
    areq.object_id = creq->object_id;
    ProtobufCMessage *reply = NULL;
    char err[256] = "";
    if (core_call_raylet_from_thread(cw, "AbortObject", &areq.base, &reply, err, sizeof(err)) != GRPC_STATUS_OK)
        RC_WARN("core: cannot abort an object whose store offset was refused: %s", err);
    rpc_msg_free(reply);
}

int core_store_put(core_worker *cw, const uint8_t *object_id, const Ray__Rpc__Address *owner, const rayc_iov *parts,
                   size_t n, size_t size, char *err, size_t errlen)
{
    if (!cw->store_base) {
        snprintf(err, errlen, "this node has no object store for %zu bytes", size);
        return RC_ENOSPC;
    }
    size_t total;
    if (core_iov_total(parts, n, &total) < 0 || total != size) {
        snprintf(err, errlen, "the parts add up to %s, not the %zu bytes to store",
                 core_iov_total(parts, n, &total) < 0 ? "more than the address space" : "a different size", size);
        return RC_EINVAL;
    }
    Rayc__Rpc__CreateObjectRequest creq = RAYC__RPC__CREATE_OBJECT_REQUEST__INIT;
    creq.worker_id.data = cw->worker_id;
    creq.worker_id.len = RC_WORKER_ID_SIZE;
    creq.object_id.data = (uint8_t *)object_id;
    creq.object_id.len = RC_OBJECT_ID_SIZE;
    creq.data_size = size;
    creq.owner_address = (Ray__Rpc__Address *)owner;
    ProtobufCMessage *reply = NULL;
    if (core_call_raylet_from_thread(cw, "CreateObject", &creq.base, &reply, err, errlen) != GRPC_STATUS_OK)
        return RC_ENOSPC;
    uint64_t offset = ((Rayc__Rpc__CreateObjectReply *)reply)->offset;
    rpc_msg_free(reply);
    if (core_store_span_check(cw->store_size, offset, size) < 0) {
        snprintf(err, errlen, "the object store placed %zu bytes at offset %llu, outside its %llu-byte region; "
                 "nothing was copied", size, (unsigned long long)offset, (unsigned long long)cw->store_size);
        core__store_abort(cw, &creq);
        return RC_EPROTO;
    }
    uint8_t *dst = cw->store_base + offset;
    for (size_t i = 0; i < n; i++) {
        if (parts[i].size)
            memcpy(dst, parts[i].data, parts[i].size);
        dst += parts[i].size;
    }
    Rayc__Rpc__SealObjectRequest sreq = RAYC__RPC__SEAL_OBJECT_REQUEST__INIT;
    sreq.worker_id = creq.worker_id;
    sreq.object_id = creq.object_id;
    char why[400] = "";
    if (core_call_raylet_from_thread(cw, "SealObject", &sreq.base, &reply, why, sizeof(why)) != GRPC_STATUS_OK) {
        snprintf(err, errlen, "cannot seal the object: %s", why);
        return RC_EIO;
    }
    rpc_msg_free(reply);
    return 0;
}

/* ---- touching a driver's mapping ------------------------------------------------------ */

enum {
    /* The same zone the raylet faults first (RAYLET_REGION_PREFAULT_TOP): small objects. */
    CORE__TOUCH_TOP = 32 << 20,
    CORE__TOUCH_CHUNK = 2 << 20,
};

struct core_store_toucher {
    pthread_t thread;
    atomic_int stop;
    uint8_t *base;
    uint64_t size, limit;
    double keep_available;
    atomic_ullong touched;
};

/* MemAvailable less keep_available of MemTotal, in bytes (0 if below, or unreadable). */
static uint64_t core__memory_budget(double keep_available)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return 0;
    char line[256];
    long long total = -1, avail = -1, kb;
    while (fgets(line, sizeof(line), f) && (total < 0 || avail < 0)) {
        if (sscanf(line, "MemTotal: %lld kB", &kb) == 1)
            total = kb;
        else if (sscanf(line, "MemAvailable: %lld kB", &kb) == 1)
            avail = kb;
    }
    fclose(f);
    double left = (double)avail * 1024.0 - keep_available * (double)total * 1024.0;
    return total < 0 || avail < 0 || left <= 0 ? 0 : (uint64_t)left;
}

/* Touches each page of [off, off+len). Pages the store has not allocated yet are allocated
 * by the touch, so a chunk with such pages is touched only while the host's
 * available memory allows it. 0, or -1 to stop (no memory to spare). */
static int core__touch_chunk(core_store_toucher *t, uint64_t off, uint64_t len, unsigned char *vec, uint64_t page)
{
    uint64_t absent = 0;
    if (mincore(t->base + off, len, vec) == 0) {
        for (uint64_t p = 0; p < len / page; p++)
            absent += !(vec[p] & 1);
    } else {
        absent = len / page;
    }
    if (absent && core__memory_budget(t->keep_available) < absent * page)
        return -1;
    /* A write access, so the page is mapped writable and dirty at once (a read would leave
     * the first write of the put to fault again). Adding 0 atomically changes no byte, even
     * with another process writing the same page. */
    for (uint64_t p = 0; p < len; p += page)
        __atomic_fetch_add((uint8_t *)t->base + off + p, 0, __ATOMIC_RELAXED);
    atomic_fetch_add(&t->touched, len);
    return 0;
}

static void *core__toucher_main(void *arg)
{
    core_store_toucher *t = arg;
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    unsigned char vec[CORE__TOUCH_CHUNK / 4096 + 1];
    if (page < 4096 || CORE__TOUCH_CHUNK / page + 1 > sizeof(vec))
        return NULL;
    uint64_t top = t->size > CORE__TOUCH_TOP ? CORE__TOUCH_TOP : t->size;
    uint64_t spans[2][2] = {{t->size - top, t->size}, {0, t->size - top}};
    for (int i = 0; i < 2; i++) {
        for (uint64_t off = spans[i][0]; off < spans[i][1]; off += CORE__TOUCH_CHUNK) {
            if (atomic_load(&t->stop) || atomic_load(&t->touched) >= t->limit)
                return NULL;
            uint64_t len = spans[i][1] - off < CORE__TOUCH_CHUNK ? spans[i][1] - off : CORE__TOUCH_CHUNK;
            if (len < page || core__touch_chunk(t, off, len - len % page, vec, page) < 0)
                return NULL;
        }
    }
    return NULL;
}

void core_store_touch_start(core_worker *cw)
{
    int64_t limit = rc_cfg.object_store_client_prefault_bytes;
    if (cw->is_worker || !cw->store_base || limit <= 0 || cw->store_toucher)
        return;
    core_store_toucher *t = RC_NEW(core_store_toucher);
    t->base = cw->store_base;
    t->size = cw->store_size;
    t->limit = (uint64_t)limit;
    t->keep_available = rc_cfg.object_store_prefault_keep_available;
    int e = pthread_create(&t->thread, NULL, core__toucher_main, t);
    if (e) {
        RC_DEBUG("core: no thread to touch the object store mapping: %s", strerror(e));
        rc_free(t);
        return;
    }
    cw->store_toucher = t;
}

uint64_t core_store_touched(const core_worker *cw)
{
    return cw->store_toucher ? atomic_load(&cw->store_toucher->touched) : 0;
}

void core_store_touch_stop(core_worker *cw)
{
    core_store_toucher *t = cw->store_toucher;
    if (!t)
        return;
    atomic_store(&t->stop, 1);
    pthread_join(t->thread, NULL);
    rc_free(t);
    cw->store_toucher = NULL;
}
