/*
 * object_store: the raylet's shared-memory object store (ARCHITECTURE §6, docs/tasks.md
 * "Objects"): the object table over one object_region, pins, waiting gets, eviction, and
 * the LocalRayletService methods that local workers and drivers call.
 *
 * Object life: CreateObject reserves space (the object is CREATED and belongs to its
 * creator, who writes it in place), SealObject makes it SEALED (immutable, visible to
 * gets), AbortObject drops an unsealed object. A copy is primary (made here by a local
 * client, or marked by the owner's PinObjectIDs) or secondary (pulled from another node).
 * GetObjects pins every object it returns for the caller, once per listed ID, until
 * ReleaseObjects (once per listed ID) or the caller's exit (raylet_store_client_gone).
 * The owner's FreeObjects deletes an object at once if nothing pins it, else when its last
 * pin goes. When a create does not fit, sealed secondary copies that nothing pins are
 * evicted, least recently used first; primary copies never are.
 *
 * Invariants: an object is on the eviction list iff it is sealed, secondary, not pending
 * free and pinned by nobody. A waiting get holds a pin on every object it has found so
 * far, so nothing it found can go before it answers. Every waiting get answers exactly
 * once: found everything, timed out, fetching failed for good, cancelled, or the store was
 * destroyed.
 *
 * Client IDs are 28-byte worker IDs. The all-zero ID is reserved for the raylet itself
 * (RAYLET_STORE_SELF: the object manager creates received copies and pins copies it is
 * pushing under it); the RPC handlers refuse it from clients.
 *
 * Threads: the loop thread only.
 */
#ifndef RAYC_RAYLET_OBJECT_STORE_H
#define RAYC_RAYLET_OBJECT_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common.pb-c.h"
#include "object_region.h"
#include "rpc.h"

typedef struct raylet_store raylet_store;
typedef struct raylet_store_get raylet_store_get;

extern const uint8_t RAYLET_STORE_SELF[28];

/* What the store asks of the object manager. Every hook is optional. */
typedef struct raylet_store_hooks {
    /* A get waits for an object that is not here at all (or whose unsealed copy was just
     * aborted): start fetching it. owner is the reference's owner (NULL when unknown);
     * valid during the call. Must not change the store: report a failure later, from a
     * callback. */
    void (*fetch)(void *arg, const uint8_t *object_id, const Ray__Rpc__Address *owner);
    /* A sealed secondary copy is being evicted to make room (its owner may want to know).
     * Must not call into the store. */
    void (*evicted)(void *arg, const uint8_t *object_id, const Ray__Rpc__Address *owner);
    void *arg;
} raylet_store_hooks;

typedef struct raylet_store_stats {
    uint64_t capacity;       /* bytes of the region */
    uint64_t used;           /* bytes taken by objects (jemalloc size classes) */
    uint64_t free_bytes;     /* bytes not held by the allocator at all */
    uint64_t largest_free;   /* the largest contiguous free range */
    uint64_t num_objects;    /* every object, sealed or not */
    uint64_t num_sealed;
    uint64_t sealed_bytes;   /* of used, taken by sealed objects */
    uint64_t num_primary;
    uint64_t pinned_bytes;   /* used by objects someone pins, or primary, or unsealed */
    uint64_t evictable_bytes;
    uint64_t num_evicted;    /* since creation */
} raylet_store_stats;

/* A table of the state of one object, for callers that read it. */
typedef struct raylet_object_info {
    uint64_t offset, data_size, metadata_size;
    int sealed;
    int primary;
    int pending_free;
    uint32_t pins; /* over all clients */
    const Ray__Rpc__Address *owner; /* NULL if unknown; valid while the object exists */
} raylet_object_info;

/* One object as a get reports it. */
typedef struct raylet_store_found {
    const uint8_t *object_id;
    int found;
    uint64_t offset, data_size, metadata_size;
} raylet_store_found;

/* rc is 0, or RC_ECANCELED when the get was abandoned (its client went away or the store
 * is being destroyed): then nothing is pinned and every object is reported not found.
 * objects[0..n) follows the request's order and is valid during the call only. */
typedef void (*raylet_store_get_cb)(void *arg, int rc, const raylet_store_found *objects,
                                    size_t n);

/* ---- lifetime --------------------------------------------------------------------- */

/* Creates the region at path (a file under /dev/shm that must not exist) of size bytes
 * (the node's object_store_memory) on loop. err gets a message on failure. Free with
 * raylet_store_destroy. */
int raylet_store_create(uv_loop_t *loop, const char *path, uint64_t size, char *err,
                        size_t errlen, raylet_store **out);
/* Answers every waiting get (rc RC_ECANCELED), closes the timers, destroys the region
 * (unlinking the file). The memory is freed once the loop has run the timers' close
 * callbacks: run the loop afterwards. The servers serving the handler tables must be
 * destroyed in the same loop callback (no handler may run after this) or before; the
 * object manager, if any, first. NULL is fine. */
void raylet_store_destroy(raylet_store *s);
void raylet_store_set_hooks(raylet_store *s, const raylet_store_hooks *hooks);

const char *raylet_store_path(const raylet_store *s);
uint64_t raylet_store_capacity(const raylet_store *s);
/* The mapping of the region in this process; objects are at base + offset. */
uint8_t *raylet_store_base(const raylet_store *s);
void raylet_store_stats_get(const raylet_store *s, raylet_store_stats *out);
/* Starts faulting the region's pages in on a background thread, bounded by the host's
 * available memory (raylet_region_prefault_start; keep_available is the fraction of
 * MemTotal left available, meminfo NULL for /proc/meminfo). Destroying the store stops it. */
int raylet_store_prefault_start(raylet_store *s, double keep_available, const char *meminfo);
void raylet_store_prefault_get(const raylet_store *s, raylet_prefault_progress *out);

/* ---- objects (ids are RC_OBJECT_ID_SIZE bytes, clients RC_WORKER_ID_SIZE) ----------- */

/* Reserves data_size + metadata_size bytes for a new CREATED object of creator; primary
 * says which kind of copy it is; owner (may be NULL) is copied. *offset gets its place.
 * Evicts unpinned secondary copies when it does not fit. RC_EEXIST if the object exists,
 * RC_ENOSPC (err says requested, free and total bytes) if it cannot fit, RC_EINVAL if the
 * sizes overflow. */
int raylet_store_create_object(raylet_store *s, const uint8_t *object_id, const uint8_t *creator,
                               uint64_t data_size, uint64_t metadata_size,
                               const Ray__Rpc__Address *owner, int primary, uint64_t *offset,
                               char *err, size_t errlen);
/* Seals a CREATED object of client and wakes the gets waiting for it. RC_ENOENT (no such
 * object), RC_ESTATE (already sealed), RC_EAUTH (client is not its creator). */
int raylet_store_seal(raylet_store *s, const uint8_t *object_id, const uint8_t *client);
/* Deletes a CREATED object of client. Same errors as seal. */
int raylet_store_abort(raylet_store *s, const uint8_t *object_id, const uint8_t *client);
/* 0 and *out if the object is here (sealed or not), else RC_ENOENT. */
int raylet_store_lookup(const raylet_store *s, const uint8_t *object_id, raylet_object_info *out);
/* Pins a sealed object for client. RC_ENOENT if absent, RC_ESTATE if not sealed. */
int raylet_store_pin(raylet_store *s, const uint8_t *object_id, const uint8_t *client);
/* Drops one pin of client per listed ID. Nothing is released unless client holds every one
 * of them (RC_ESTATE, *bad = index of the first it does not hold). */
int raylet_store_release(raylet_store *s, const uint8_t *client, const uint8_t *const *ids,
                         size_t n, size_t *bad);
/* The owner no longer needs the object: it is deleted now, or when its last pin goes (or,
 * unsealed, when its creator seals or aborts it). RC_ENOENT if absent. */
int raylet_store_free(raylet_store *s, const uint8_t *object_id);
/* Makes a sealed copy primary (the owner's PinObjectIDs); owner, if not NULL, replaces the
 * recorded owner. RC_ENOENT if absent, RC_ESTATE if not sealed. */
int raylet_store_make_primary(raylet_store *s, const uint8_t *object_id,
                              const Ray__Rpc__Address *owner);
/* A client disconnected or died: its waiting gets answer RC_ECANCELED, its pins go, its
 * unsealed objects are aborted. */
void raylet_store_client_gone(raylet_store *s, const uint8_t *client);
/* Owners died: every object owned by worker owner_worker_id, or (if NULL) by any worker of
 * node owner_node_id, is freed as if the owner had sent FreeObjects. */
void raylet_store_owner_gone(raylet_store *s, const uint8_t *owner_worker_id,
                             const uint8_t *owner_node_id);

/* ---- gets --------------------------------------------------------------------------- */

/* Finds refs[0..n) for client, waiting up to timeout_ms (-1: no limit; 0: only what is here
 * now) for the missing ones; the fetch hook runs for each that is not here at all. Every
 * object found is pinned for client. cb runs exactly once, possibly before this returns
 * (everything found, or timeout 0), unless the get is cancelled. *out (may be NULL) gets a
 * handle for raylet_store_get_cancel, valid until cb runs. RC_EINVAL for a malformed ID or
 * timeout below -1 (cb never runs). */
int raylet_store_get_objects(raylet_store *s, const uint8_t *client,
                             Ray__Rpc__ObjectReference *const *refs, size_t n, int64_t timeout_ms,
                             raylet_store_get_cb cb, void *arg, raylet_store_get **out);
/* Abandons a waiting get: the pins it took go, cb never runs. */
void raylet_store_get_cancel(raylet_store *s, raylet_store_get *g);
/* Fetching object_id failed for good (its owner is dead or freed it): every get waiting for
 * it reports it not found, answering now if nothing else is missing. */
void raylet_store_fetch_failed(raylet_store *s, const uint8_t *object_id);
/* 1 if some get waits for object_id. */
int raylet_store_is_wanted(const raylet_store *s, const uint8_t *object_id);

/* ---- RPC ------------------------------------------------------------------------------ */

/* rayc.rpc.LocalRayletService: CreateObject, SealObject, AbortObject, GetObjects,
 * ReleaseObjects. arg: the raylet_store. */
extern const rpc_method_handler raylet_store_handlers[];
/* ray.rpc.NodeManagerService: PinObjectIDs. arg: the raylet_store. */
extern const rpc_method_handler raylet_store_pin_handlers[];

#endif
