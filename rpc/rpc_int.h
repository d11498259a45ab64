/*
 * Private structures of the rpc layer, shared by rpc_ctx.c, rpc_server.c and rpc_client.c.
 *
 * Every gRPC completion-queue tag is an rpc__op whose done() runs on the loop thread. The
 * context counts operations handed to gRPC and not yet completed (pending_ops) so that it
 * can be destroyed only when gRPC has nothing of ours left, and so that the loop is kept
 * alive exactly while something is outstanding.
 */
#ifndef RAYC_RPC_RPC_INT_H
#define RAYC_RPC_RPC_INT_H

#include <grpc/grpc.h>

#include "rc_map.h"
#include "rpc.h"

typedef struct rpc__op rpc__op;
struct rpc__op {
    void (*done)(rpc__op *op, int ok);
};

typedef struct rpc__event {
    rpc__op *op;
    int ok;
} rpc__event;

struct rpc_ctx {
    uv_loop_t *loop;
    grpc_completion_queue *cq;
    uv_thread_t pump;
    uv_async_t wakeup;
    int wakeup_active; /* wakeup is referenced (keeps the loop alive) */

    uv_mutex_t mu; /* guards queue: the pump thread appends, the loop thread takes */
    rpc__event *queue;
    size_t queue_len, queue_cap;
    rpc__event *batch; /* loop thread: events being dispatched */
    size_t batch_cap;

    int64_t pending_ops; /* loop thread only */
    rc_map paths;        /* (service descriptor, method index) -> rpc__path */
};

/* The gRPC path of one method, built once per context. */
typedef struct rpc__path {
    char *text;  /* "/ray.rpc.NodeInfoGcsService/RegisterNode" */
    grpc_slice slice; /* the same, refcounted: gRPC's header compression keeps references */
    const ProtobufCServiceDescriptor *svc;
    unsigned index;
} rpc__path;

/* Call after a successful grpc_call_start_batch / request_call / shutdown_and_notify. */
void rpc__op_started(rpc_ctx *ctx);
/* Looks up (building on first use) the path of method index of svc. */
const rpc__path *rpc__path_get(rpc_ctx *ctx, const ProtobufCServiceDescriptor *svc,
                               unsigned index);
/* Packs msg into a new byte buffer (the caller destroys it). */
grpc_byte_buffer *rpc__pack(const ProtobufCMessage *msg);
/* Unpacks bb as desc; NULL if the bytes are not a valid message. Free with rpc_msg_free. */
ProtobufCMessage *rpc__unpack(const ProtobufCMessageDescriptor *desc, grpc_byte_buffer *bb);
gpr_timespec rpc__deadline(int64_t timeout_ms);
grpc_channel_args *rpc__channel_args_new(int64_t max_message_size, int server);
void rpc__channel_args_free(grpc_channel_args *args);

#endif
