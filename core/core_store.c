/*
 * core_store: this process's side of the node's shared-memory object store (see core_int.h):
 * the one path by which a put and a task's large result are written into the store.
 *
 * CreateObject reserves the space, the parts are written at the offset it returns, and
 * SealObject makes the object visible. Nothing is written unless [offset, offset + size)
 * lies inside the store (the check cannot overflow); a reply pointing elsewhere (a raylet
 * bug, or a store of another size) is refused and the reserved object aborted, so a bad
 * offset cannot make the copy write over memory that is not the object's.
 *
 * The bytes go in with pwrite() on the store's file rather than a copy through this
 * process's mapping: the kernel copies through its own mapping of the pages, so a put pays
 * no page fault for each 4 KiB of the mapping the process has not touched before (the
 * raylet allocates the file's pages in advance, raylet/object_region.c), and a /dev/shm that
 * is full fails the write with an error instead of killing the process with SIGBUS. Readers
 * still use the mapping (zero-copy gets). The cost: tmpfs copies a write under the file's
 * lock, so puts into one node's store from several processes take turns, 8 MiB at a time.
 *
 * Threads: any thread that may call into the raylet (core_call_raylet_from_thread).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core_int.h"
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
    uint64_t at = offset;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *src = parts[i].data;
        size_t left = parts[i].size;
        while (left > 0) {
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
