/*
 * object_manager: moves objects between raylets (ARCHITECTURE §6, docs/tasks.md "Objects").
 *
 * Pull (the node that needs an object): a get waits for an object that is not here, so the
 * store's fetch hook asks the object manager for it. One pull per object, however many
 * gets want it. The pull asks the object's owner where copies are
 * (CoreWorkerService.GetObjectLocationsOwner), maps each holder's node ID to its raylet's
 * address through the raylet's node table (raylet_om_node_address_fn), and sends one holder
 * ObjectManagerService.Pull{node_id = this node}. The holder pushes the object back in
 * chunks; this side creates the object (a secondary copy) on the first chunk to arrive,
 * writes chunks in any order, ignores duplicates, seals it after the last (which wakes the
 * gets) and tells the owner UpdateObjectLocationBatch(ADDED).
 *
 * Push (the holder): Pull is answered once the whole object has been pushed: OK when every
 * chunk was accepted, else the error (NOT_FOUND: no sealed copy here; RESOURCE_EXHAUSTED:
 * the requester's store is full; UNAVAILABLE: the requester cannot be reached). So a
 * holder that dies mid-transfer fails the requester's Pull call at once; a holder that
 * stalls is given up after transfer_idle_ms without a chunk. The copy being pushed is
 * pinned (under RAYLET_STORE_SELF) until the push ends.
 *
 * Failures: a holder that fails or stalls -> the next holder; no holder left -> ask the
 * owner again after a delay (pull_retry_ms, doubling up to pull_retry_max_ms), for as long
 * as some get still waits. The owner unreachable (UNAVAILABLE), or the owner saying the
 * object is gone (NOT_FOUND, or ref_removed) -> the fetch failed for good: every get
 * waiting for the object answers at once with found = false for it (before its timeout).
 * A core worker seeing found = false before its timeout asks the owner
 * (GetObjectStatus): an unreachable owner means OWNER_DIED, else OBJECT_LOST.
 *
 * A partial copy that nobody pulls any more (no chunk for transfer_idle_ms) is aborted.
 * Evicted secondary copies are reported to their owners (REMOVED).
 *
 * Threads: the loop thread only (the rpc_ctx's loop).
 */
#ifndef RAYC_RAYLET_OBJECT_MANAGER_H
#define RAYC_RAYLET_OBJECT_MANAGER_H

#include <stdint.h>

#include "object_store.h"
#include "rpc.h"

typedef struct raylet_om raylet_om;

/* The raylet address ("ip:port", where its ObjectManagerService is served) of a live node,
 * or NULL if the node is dead or unknown. The object manager copies the string at once. */
typedef const char *(*raylet_om_node_address_fn)(void *arg, const uint8_t *node_id);

/* Defaults of raylet_om_options, named after the configuration entries they stand for
 * until common/config_def.h has them. */
enum {
    RAYLET_OM_DEFAULT_CHUNK_SIZE = 5 * 1024 * 1024, /* object_manager_default_chunk_size */
    RAYLET_OM_DEFAULT_CHUNKS_IN_FLIGHT = 4,         /* object_manager_max_chunks_in_flight */
    RAYLET_OM_DEFAULT_RPC_TIMEOUT_MS = 10000,       /* object_manager_rpc_timeout_ms */
    RAYLET_OM_DEFAULT_PULL_RETRY_MS = 100,          /* object_manager_pull_retry_ms */
    RAYLET_OM_DEFAULT_PULL_RETRY_MAX_MS = 2000,     /* object_manager_pull_retry_max_ms */
    RAYLET_OM_DEFAULT_TRANSFER_IDLE_MS = 10000,     /* object_manager_transfer_idle_ms */
};

typedef struct raylet_om_options {
    const uint8_t *node_id; /* this node, 28 bytes (copied) */
    raylet_om_node_address_fn node_address;
    void *node_address_arg;
    /* 0 for each: the default above. */
    uint64_t chunk_size;     /* bytes per Push */
    int chunks_in_flight;    /* Push calls one push keeps outstanding */
    int64_t rpc_timeout_ms;  /* owner calls and each Push */
    int64_t pull_retry_ms;   /* first delay before asking the owner again */
    int64_t pull_retry_max_ms;
    int64_t transfer_idle_ms; /* a transfer without a chunk for this long is given up */
    /* Copied; NULL: the process-wide security (rpc_security_set: mutual TLS with the node
     * certificate on a secure node) and no waiting for ready. A security it names must
     * outlive the object manager. */
    const rpc_client_options *client_options;
} raylet_om_options;

typedef struct raylet_om_stats {
    uint64_t pulls_active, pushes_active, transfers_active;
    uint64_t pulls_done, pulls_failed; /* failed: for good (owner dead or object freed) */
    uint64_t pull_requests; /* Pull calls sent (one per holder tried) */
    uint64_t chunks_received, chunks_duplicate, bytes_received;
    uint64_t chunks_sent, bytes_sent;
} raylet_om_stats;

/* Creates the object manager of store on rpc's loop and installs itself as the store's
 * hooks (fetch, evicted). Free with raylet_om_destroy before destroying store. */
int raylet_om_create(rpc_ctx *rpc, raylet_store *store, const raylet_om_options *opts,
                     raylet_om **out);
/* Ends every pull and push (held Pull calls answer UNAVAILABLE, partial copies are
 * aborted, pinned copies released), removes the store hooks and destroys its clients. The
 * memory goes once the clients' last callbacks ran: keep running the loop (rpc_ctx_drain
 * or uv_run) afterwards. The server serving raylet_object_manager_handlers must be
 * destroyed in the same loop callback (no handler may run after this) or before. NULL is
 * fine. */
void raylet_om_destroy(raylet_om *om);

/* Starts pulling object_id from its owner's locations unless it is here or already being
 * pulled. The store's fetch hook does this; owner NULL or without an address: nothing. */
void raylet_om_pull(raylet_om *om, const uint8_t *object_id, const Ray__Rpc__Address *owner);
/* A node died: pulls from it move on, pushes to it end, and the objects its workers owned
 * are freed here. */
void raylet_om_node_gone(raylet_om *om, const uint8_t *node_id);
void raylet_om_stats_get(const raylet_om *om, raylet_om_stats *out);

/* ray.rpc.ObjectManagerService: Push, Pull, FreeObjects. arg: the raylet_om. */
extern const rpc_method_handler raylet_object_manager_handlers[];

#endif
