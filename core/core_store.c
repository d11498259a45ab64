/*
 * core_store: this process's side of the node's shared-memory object store (see core_int.h):
 * the one path by which a put and a task's large result are written into the store, and a
 * driver's pre-fault of its own mapping of it.
 *
 * CreateObject reserves the space, the parts are written at the offset it returns, and
 * SealObject makes the object visible. Nothing is written unless [offset, offset + size)
 * lies inside the store (the check cannot overflow); a reply pointing elsewhere (a raylet
 * bug, or a store of another size) is refused and the reserved object aborted, so a bad
 * offset cannot make the copy write over memory that is not the object's.
 *
 * Two ways in. Where the object lies in the part of the mapping this process has already
 * faulted in (the warm part, below), the bytes are copied through the mapping: a plain
 * memcpy. Elsewhere they go in with pwrite() on the store's file: the kernel copies through
 * its own mapping of the pages, so no page fault is paid for each 4 KiB of a mapping this
 * process has not touched, and a /dev/shm that is full fails the write with an error
 * instead of killing the process with SIGBUS. tmpfs copies a write under the file's lock,
 * so such puts from several processes take turns, 8 MiB at a time. Readers always use the
 * mapping (zero-copy gets).
 *
 * The warm part. The first access to each page of a mapping costs a fault, and on some
 * virtual machines far more (a trap to the hypervisor for each 4 KiB page, paid again by
 * the kernel the first time a write() reads each page of the caller's buffer). So a driver
 * (not the workers: there are many of them, each with page tables of its own) faults in
 * the low part of its mapping on a thread of its own right after it connects: the bottom
 * up, where the store places large objects (first fit), 4 MiB at a time, with
 * madvise(MADV_POPULATE_WRITE) (which allocates the store's pages if the raylet's own
 * pre-fault has not, and reports a full /dev/shm as an error rather than SIGBUS), then one
 * read of each page. It stops at object_store_client_prefault_mb, at the store's end,
 * before allocating pages would take the host's available memory below
 * object_store_prefault_keep_available of its total (pages the store already has cost
 * nothing: mincore tells them apart), where the kernel refuses MADV_POPULATE_WRITE (before Linux 5.14), or at
 * shutdown. The cost: the pages count in the driver's resident set (as shared memory), and
 * its page tables grow by 2 MiB per GiB.
 *
 * Threads: core_store_put from any thread that may call into the raylet
 * (core_call_raylet_from_thread); the warm thread reads the mapping and changes no byte.
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
#include "rc_session.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14; older kernels refuse it with EINVAL */
#endif

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
        RC_WARN("core: cannot abort an object that could not be written: %s", err);
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
    /* [offset, warm) is faulted in in this process's mapping: copied through it. */
    uint64_t warm = core_store_warm_bytes(cw);
    uint64_t at = offset;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *src = parts[i].data;
        size_t left = parts[i].size;
        while (left > 0) {
            if (at < warm) {
                size_t piece = warm - at < left ? (size_t)(warm - at) : left;
                memcpy(cw->store_base + at, src, piece);
                src += piece;
                left -= piece;
                at += piece;
                continue;
            }
            /* In pieces: tmpfs holds the file's lock for a whole write, and other puts (and
             * the raylet's pre-fault) wait for it. */
            size_t piece = left < (8u << 20) ? left : (8u << 20);
            ssize_t w = pwrite(cw->store_fd, src, piece, (off_t)at);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                snprintf(err, errlen, "cannot write %zu bytes into the object store at offset %llu: %s", size,
                         (unsigned long long)offset, w < 0 ? strerror(errno) : "nothing written");
                core__store_abort(cw, &creq);
                return RC_EIO;
            }
            src += w;
            left -= (size_t)w;
            at += (uint64_t)w;
        }
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

/* ---- a driver's warm part of its mapping -------------------------------------------------- */

enum {
    CORE__WARM_CHUNK = 4 << 20,  /* one madvise and one pass of reads; a stop is seen after it */
    CORE__WARM_STEP = 64 << 20,  /* available memory is read again after this many bytes */
};

typedef struct core_store_warm core_store_warm;

struct core_store_warm {
    pthread_t thread;
    atomic_int stop;
    _Atomic uint64_t warm; /* [0, warm) is faulted in (only grows) */
    uint8_t *base;
    uint64_t limit;
    double keep_available;
};

/* Bytes of [base, base+len) whose pages the store's file does not have yet (the raylet's
 * pre-fault allocates them too); all of len if mincore cannot say. */
static uint64_t core__warm_absent(uint8_t *base, uint64_t len, uint64_t page, unsigned char *vec)
{
    if (mincore(base, len, vec) < 0)
        return len;
    uint64_t absent = 0;
    for (uint64_t i = 0; i < (len + page - 1) / page; i++)
        absent += !(vec[i] & 1);
    return absent * page;
}

static void *core__warm_main(void *arg)
{
    core_store_warm *w = arg;
    /* Background work, below the driver's own threads (Linux's nice is per thread), as the
     * raylet's pre-fault. Not lower: the populate holds the mapping's lock, and a thread that
     * may starve while holding it would stall the driver's own mmap calls. */
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
    const uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    unsigned char *vec = rc_malloc(CORE__WARM_CHUNK / page + 1);
    uint64_t allowed = 0; /* bytes that may still be allocated before MemAvailable is read again */
    const char *why = "the limit";
    char buf[160];
    uint64_t off = 0;
    while (off < w->limit) {
        if (atomic_load(&w->stop)) {
            rc_free(vec);
            return NULL; /* shutdown: nothing to say */
        }
        uint64_t len = w->limit - off < CORE__WARM_CHUNK ? w->limit - off : CORE__WARM_CHUNK;
        /* Pages the store does not have yet are allocated by the populate below: only while
         * the host keeps its floor of available memory, as the raylet's pre-fault does. */
        uint64_t absent = core__warm_absent(w->base + off, len, page, vec);
        if (absent > allowed) {
            uint64_t budget;
            if (rc_mem_budget(NULL, w->keep_available, &budget) < 0) {
                why = "an unreadable /proc/meminfo";
                break;
            }
            if (budget < absent) {
                why = "the available-memory floor";
                break;
            }
            allowed = budget < CORE__WARM_STEP ? budget : CORE__WARM_STEP;
        }
        if (madvise(w->base + off, len, MADV_POPULATE_WRITE) < 0) {
            if (errno == EINTR)
                continue;
            snprintf(buf, sizeof(buf), "madvise(MADV_POPULATE_WRITE): %s", strerror(errno));
            why = buf;
            break;
        }
        /* The populated entries still cost a trap at the first access on some hosts: one
         * read of each page pays it here instead of in a put. */
        for (uint64_t p = 0; p < len; p += page)
            (void)*(volatile const uint8_t *)(w->base + off + p);
        allowed -= absent;
        off += len;
        atomic_store_explicit(&w->warm, off, memory_order_release);
    }
    rc_free(vec);
    RC_DEBUG("core: pre-faulted %llu MiB of this driver's object store mapping (stopped at %s)",
             (unsigned long long)(off >> 20), why);
    return NULL;
}

void core_store_warm_start(core_worker *cw)
{
    int64_t mb = rc_cfg.object_store_client_prefault_mb;
    if (cw->is_worker || !cw->store_base || mb <= 0 || cw->store_warm)
        return;
    uint64_t limit = (uint64_t)mb >= (cw->store_size >> 20) ? cw->store_size : (uint64_t)mb << 20;
    core_store_warm *w = RC_NEW(core_store_warm);
    w->base = cw->store_base;
    w->limit = limit;
    w->keep_available = rc_cfg.object_store_prefault_keep_available;
    int e = pthread_create(&w->thread, NULL, core__warm_main, w);
    if (e) {
        RC_WARN("core: no thread to pre-fault the object store mapping: %s", strerror(e));
        rc_free(w);
        return;
    }
    cw->store_warm = w;
}

void core_store_warm_stop(core_worker *cw)
{
    core_store_warm *w = cw->store_warm;
    if (!w)
        return;
    atomic_store(&w->stop, 1);
    pthread_join(w->thread, NULL);
    cw->store_warm = NULL;
    rc_free(w);
}

uint64_t core_store_warm_bytes(const core_worker *cw)
{
    return cw->store_warm ? atomic_load_explicit(&cw->store_warm->warm, memory_order_acquire) : 0;
}
