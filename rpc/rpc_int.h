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

/* Ends an operation that rpc__op_started counted without a completion-queue event (a
 * fault-injection timer). */
void rpc__op_ended(rpc_ctx *ctx);

/* ---- fault injection (rpc_fault.c) ---- */

typedef enum rpc__fault_kind {
    RPC__FAULT_NONE,
    RPC__FAULT_FAIL_REQUEST,   /* never sent; UNAVAILABLE */
    RPC__FAULT_FAIL_RESPONSE,  /* sent, answered; the caller gets UNAVAILABLE */
    RPC__FAULT_FAIL_IN_FLIGHT, /* sent; the caller gets UNAVAILABLE at once */
    RPC__FAULT_DROP_REQUEST,   /* never sent; DEADLINE_EXCEEDED at the deadline */
    RPC__FAULT_DROP_RESPONSE,  /* sent, answered, the reply lost; DEADLINE_EXCEEDED */
} rpc__fault_kind;

typedef struct rpc__fault {
    rpc__fault_kind kind;
    int64_t req_delay_us, resp_delay_us;
} rpc__fault;

/* Draws what happens to one call to path ("/Service/Method") on target under the
 * testing_rpc_* settings. Returns 1 when anything is injected (out filled), else 0. Any
 * thread. */
int rpc__fault_draw(const char *path, const char *target, rpc__fault *out);

/* ---- security (rpc_creds.c) ---- */

/* A reference-counted private copy of an rpc_security, owned by the servers and clients
 * created with it. */
typedef struct rpc__sec {
    rpc_security pub; /* strings owned */
    char *bearer;     /* "Bearer <token>" or NULL */
    int refs;
} rpc__sec;

rpc__sec *rpc__sec_new(const rpc_security *sec);
/* explicit_sec if not NULL (copied), else a new reference to the process default. */
rpc__sec *rpc__sec_for(const rpc_security *explicit_sec);
rpc__sec *rpc__sec_ref(rpc__sec *s);
void rpc__sec_unref(rpc__sec *s);
/* New gRPC credentials for listening on addr / a channel to target (unix: plaintext). */
grpc_server_credentials *rpc__server_creds(const rpc__sec *s, const char *addr);
/* peer_name (may be NULL): the CN the server's certificate must carry. */
grpc_channel_credentials *rpc__channel_creds(const rpc__sec *s, const char *target, const char *peer_name);
int rpc__server_is_tls(const rpc__sec *s);
int rpc__channel_is_tls(const rpc__sec *s, const char *target);

/* ---- authorization (rpc_auth.c) ---- */

/* One row of the ACL table (rpc_acl_def.h). */
typedef enum rpc__acl_scope { ACL_OPEN, ACL_NODE_SELF, ACL_JOB_SELF, ACL_KV } rpc__acl_scope;
typedef struct rpc__acl {
    const char *service, *method;
    unsigned roles;
    rpc__acl_scope scope;
    const char *field;
    unsigned offset;
} rpc__acl;

/* The row for service/method, or NULL. */
const rpc__acl *rpc__acl_find(const char *service, const char *method);

/* A server's authorization state: its CA verifier and a cache of token verdicts. Loop
 * thread only. */
typedef struct rpc__authz rpc__authz;
rpc__authz *rpc__authz_new(const rpc__sec *s);
void rpc__authz_free(rpc__authz *a);
/* Derives the identity of a call from its transport (peer, auth context) and metadata.
 * Returns 0, or a gRPC status (UNAUTHENTICATED) with msg filled. */
int rpc__authz_identify(rpc__authz *a, rpc_call *c, grpc_call *call, const grpc_metadata_array *md,
                        rpc_identity *out, char *msg, size_t msglen);
/* The identity a bearer header value ("Bearer <token>", len bytes) proves: a token verified
 * with the CA (verdicts cached per token text) and not expired. 0, or
 * GRPC_STATUS_UNAUTHENTICATED with msg. */
int rpc__authz_bearer(rpc__authz *a, const char *auth, size_t len, rpc_identity *out, char *msg,
                      size_t msglen);
/* The role check of acl for id (before the request is read): 0 or a gRPC status and msg. */
int rpc__acl_check_role(const rpc__acl *acl, const char *service, const char *method,
                        const rpc_identity *id, char *msg, size_t msglen);
/* The scope check of acl on the unpacked request: 0 or PERMISSION_DENIED and msg. */
int rpc__acl_check_scope(const rpc__acl *acl, const char *method, const rpc_identity *id,
                         const ProtobufCMessage *req, char *msg, size_t msglen);
/* 1 if ns (len bytes) names a system KV namespace. */
int rpc__kv_namespace_is_system(const void *ns, size_t len);
grpc_channel_args *rpc__channel_args_new(int64_t max_message_size, int server);
void rpc__channel_args_free(grpc_channel_args *args);

#endif
