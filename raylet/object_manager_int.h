/*
 * Private structures of the object manager, shared by object_manager.c (pulls, receiving
 * pushes, FreeObjects, lifetime) and object_manager_push.c (serving Pull by pushing).
 *
 * RPC callbacks never hold pointers to pulls or pushes: each carries the key (object ID,
 * destination) and the generation it was started under, and looks the state up again, so
 * a pull or push may end at any time without waiting for its calls. Only the raylet_om
 * itself outlives its calls: inflight counts them, and a destroyed manager is freed when
 * the count and its timer are done.
 *
 * Loop thread only.
 */
#ifndef RAYC_RAYLET_OBJECT_MANAGER_INT_H
#define RAYC_RAYLET_OBJECT_MANAGER_INT_H

#include <stdint.h>
#include <uv.h>

#include "object_manager.h"
#include "rc_ids.h"
#include "rc_map.h"

enum { OM__KEY_SIZE = RC_OBJECT_ID_SIZE + RC_NODE_ID_SIZE, OM__TARGET_MAX = 300 };

/* One holder-side transfer of one object to one node. */
typedef struct om_push {
    raylet_om *om;
    uint8_t key[OM__KEY_SIZE]; /* object ID, then destination node ID */
    uint32_t gen;
    char target[OM__TARGET_MAX];
    uint8_t push_id[RC_UNIQUE_ID_SIZE];
    uint64_t offset, data_size, metadata_size, total;
    uint32_t n_chunks, next_chunk, acked, in_flight;
    Ray__Rpc__Address *owner; /* owned, may be NULL */
    rpc_call **calls;         /* held Pull calls, answered when the push ends */
    size_t n_calls, cap_calls;
    int stopped;              /* send no more chunks (failed, cancelled, node gone) */
    grpc_status_code code;    /* the first failure */
    char message[256];
} om_push;

struct raylet_om {
    rpc_ctx *rpc;
    uv_loop_t *loop;
    raylet_store *store;
    uint8_t node_id[RC_NODE_ID_SIZE];
    raylet_om_node_address_fn node_address;
    void *node_address_arg;
    uint64_t chunk_size;
    int chunks_in_flight;
    int64_t rpc_timeout_ms, pull_retry_ms, pull_retry_max_ms, transfer_idle_ms;
    rpc_client_options client_options;
    int has_client_options;

    rc_map clients;  /* "ip:port" -> om_client */
    rc_map pulls;    /* object ID -> om_pull */
    rc_map inbound;  /* object ID -> om_inbound */
    rc_map pushes;   /* object ID + node ID -> om_push */
    uint32_t next_gen;

    uv_timer_t tick;
    int ticking;
    int64_t tick_ms;

    int destroyed;
    int tick_closed;
    int64_t inflight; /* RPC calls whose callbacks have not run */
    uint64_t use_clock;
    raylet_om_stats stats;
};

/* object_manager.c */
/* The cached client for target ("ip:port"); NULL if no channel can be made. */
rpc_client *raylet_om__client(raylet_om *om, const char *target);
/* Counts a call made (before rpc_client_call) and its callback having run (first thing in
 * every callback; returns 1 if the manager is being destroyed: the callback stops there). */
void raylet_om__call_started(raylet_om *om);
int raylet_om__call_ended(raylet_om *om);
/* Undoes raylet_om__call_started for a call that could not be made. */
void raylet_om__call_failed(raylet_om *om);

/* object_manager_push.c */
void raylet_om__handle_pull(rpc_call *call, const ProtobufCMessage *request, void *arg);
/* Ends pushes: every one (node_id NULL, with code/message for the held calls) or those
 * to node_id. */
void raylet_om__end_pushes(raylet_om *om, const uint8_t *node_id, grpc_status_code code,
                           const char *message);

#endif
