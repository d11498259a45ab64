/*
 * rpc: one generic binding between gRPC's C core and protobuf-c (ARCHITECTURE §3).
 *
 * Services are described by the ProtobufCServiceDescriptor that protoc-c generates; nothing
 * is marshalled by hand per method. Method m of service S is served and called at the gRPC
 * path "/<S.name>/<m.name>", e.g. "/ray.rpc.NodeInfoGcsService/RegisterNode", so rayc speaks
 * to anything that speaks Ray's protocol.
 *
 * Threads: an rpc_ctx belongs to one libuv loop. gRPC runs its own threads; one pump thread
 * per rpc_ctx drains the completion queue and hands completions to the loop thread, where
 * every handler and callback below runs. All functions here are for the loop thread only,
 * except where a comment says otherwise.
 *
 * Errors: functions return 0 or a negative RC_E* code. When a function that takes a callback
 * fails, the callback is never called. RPC outcomes are gRPC status codes (GRPC_STATUS_*).
 */
#ifndef RAYC_RPC_RPC_H
#define RAYC_RPC_RPC_H

#include <grpc/status.h>
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct rpc_ctx rpc_ctx;
typedef struct rpc_server rpc_server;
typedef struct rpc_call rpc_call;
typedef struct rpc_client rpc_client;

/* ---- Context ------------------------------------------------------------------------ */

/* Creates the completion queue and pump thread for loop. Free with rpc_ctx_destroy. */
int rpc_ctx_create(uv_loop_t *loop, rpc_ctx **out);
/* Destroys ctx. Every server and client of ctx must have been destroyed first. Runs the
 * loop (UV_RUN_ONCE) until gRPC has returned every outstanding completion, so call it
 * outside the loop's callbacks, typically after uv_run has returned. */
void rpc_ctx_destroy(rpc_ctx *ctx);
uv_loop_t *rpc_ctx_loop(rpc_ctx *ctx);
/* Runs the loop until gRPC has returned every outstanding completion of ctx (after servers
 * and clients were destroyed, their last callbacks have then run). Same calling rule as
 * rpc_ctx_destroy. */
void rpc_ctx_drain(rpc_ctx *ctx);

/* ---- Security (ARCHITECTURE §14) ------------------------------------------------------ */

/* Who a caller is, as the server sees it. Exactly one role bit per caller. */
typedef enum rpc_role {
    RPC_ROLE_ANON = 1 << 0,  /* no credential: only methods the ACL opens to anyone */
    RPC_ROLE_LOCAL = 1 << 1, /* a process of this node, over a unix socket (0700 directory) */
    RPC_ROLE_JOB = 1 << 2,   /* a job token: a driver or worker of job_id */
    RPC_ROLE_NODE = 1 << 3,  /* a node certificate: the raylet of node_id */
    RPC_ROLE_GCS = 1 << 4,   /* the GCS's certificate */
    RPC_ROLE_ADMIN = 1 << 5, /* the admin (client) token; everyone on an insecure server */
} rpc_role;

typedef struct rpc_identity {
    rpc_role role;
    uint8_t node_id[28]; /* RPC_ROLE_NODE */
    uint8_t job_id[4];   /* RPC_ROLE_JOB */
    char token_id[24];   /* token roles: the token's id, for revocation */
} rpc_identity;

/* The security of a process's servers and clients. TCP servers serve TLS with cert_pem and
 * key_pem and ask for (but do not require) a client certificate signed by ca_cert_pem;
 * clients verify servers against ca_cert_pem (and their IP subjectAltName), present their
 * certificate when present_cert is set (the GCS and raylets: mutual TLS) and send token as
 * "authorization: Bearer <token>" when it is set (drivers, workers, the CLI). Unix sockets
 * stay plaintext: only the socket directory's owner can reach them, and their callers have
 * the role RPC_ROLE_LOCAL. insecure: plaintext everywhere and every caller is admin
 * (--insecure, loopback development only). */
typedef struct rpc_security {
    int insecure;
    const char *ca_cert_pem;
    const char *cert_pem, *key_pem; /* NULL: a client-only process */
    int present_cert;
    const char *token; /* NULL: none */
} rpc_security;

/* Sets the process-wide security (copied) that servers and clients use unless their options
 * name their own. Set it before creating them; clients and servers keep what they were
 * created with. The default before any call is insecure. RC_EINVAL (with err) when a PEM
 * does not parse or the key does not match the certificate. Any thread; not concurrently
 * with itself. */
int rpc_security_set(const rpc_security *sec, char *err, size_t errlen);
/* The process-wide security now in force (valid until the next rpc_security_set). */
const rpc_security *rpc_security_get(void);
/* Sets the process-wide security for a client process from its environment: insecure when
 * RAYC_INSECURE=1; otherwise the CA from auth_find_ca_cert ($RAYC_CA_CERT, the session),
 * the token from auth_find_client_token ($RAYC_AUTH_TOKEN, $RAYC_AUTH_TOKEN_PATH, the
 * session) and, when $RAYC_TLS_CERT and $RAYC_TLS_KEY name files, that certificate
 * (served, and presented when $RAYC_TLS_PRESENT=1). RC_ENOENT with err saying where it
 * looked when there is no CA or no token. */
int rpc_security_from_env(char *err, size_t errlen);

/* ---- Server ------------------------------------------------------------------------- */

/* A handler runs on the loop thread with the unpacked request, which stays valid until the
 * call is answered. It must answer exactly once, now or later, with rpc_reply or
 * rpc_reply_status; answering later is how long polls and storage-backed handlers work. */
typedef void (*rpc_handler_fn)(rpc_call *call, const ProtobufCMessage *request, void *arg);

/* Runs before every handler. Return 0 to let the call through; otherwise answer the call
 * (rpc_reply_status) and return non-zero. */
typedef int (*rpc_interceptor_fn)(rpc_call *call, void *arg);

typedef struct rpc_server_options {
    const rpc_security *security; /* NULL: the process-wide security */
    int64_t max_message_size;           /* <= 0: rc_cfg.max_grpc_message_size */
} rpc_server_options;

int rpc_server_create(rpc_ctx *ctx, const rpc_server_options *opts, rpc_server **out);
/* One entry of a service's handler table: the method's name as in the .proto file. */
typedef struct rpc_method_handler {
    const char *method;
    rpc_handler_fn fn;
} rpc_method_handler;

/* Serves svc with handlers, a table ended by {NULL, NULL}; methods it does not name answer
 * UNIMPLEMENTED. Returns RC_EINVAL (serving nothing) if an entry names no method of svc.
 * A service may be added several times with tables naming different methods (each with
 * its own arg): that is how several modules of one daemon share a service. Before start
 * only. */
int rpc_server_add_service(rpc_server *srv, const ProtobufCServiceDescriptor *svc,
                           const rpc_method_handler *handlers, void *arg);
void rpc_server_set_interceptor(rpc_server *srv, rpc_interceptor_fn fn, void *arg);
/* Every call is authorized before its request is read: its identity is derived once (client
 * certificate CN "gcs" or "node:<hex id>", else a bearer token verified with the CA, else
 * anonymous; unix-socket callers are local) and checked against the method's entry in the
 * ACL table (rpc_acl_def.h) and its scope (a node may name only its own node ID, a job only
 * its own job and actors, only the admin and the GCS write system KV namespaces). Missing
 * or bad credentials are UNAUTHENTICATED, a role the method does not admit is
 * PERMISSION_DENIED naming the roles it needs. Handlers never re-check.
 *
 * revoked (optional) runs on the loop thread for every call of a node, job or admin
 * identity (keep it a lookup); it returns NULL to accept, or why the identity is refused
 * ("node certificate revoked by the admin"), which the caller gets with UNAUTHENTICATED.
 * Before start only. */
typedef const char *(*rpc_revoked_fn)(const rpc_identity *id, void *arg);
void rpc_server_set_revocation(rpc_server *srv, rpc_revoked_fn fn, void *arg);
/* Records rayc_rpc_server_latency_seconds{Method="<Service>.<Method>"} (a histogram, in
 * reg, which must outlive srv) for every call srv answers. Before start; once. */
typedef struct rc_metrics rc_metrics;
int rpc_server_set_metrics(rpc_server *srv, rc_metrics *reg);
/* Checks an HTTP "Authorization" header value by the rules srv applies to its own callers,
 * for other endpoints a daemon serves beside srv (metrics): "Bearer <token>" with a token
 * verified with the cluster CA, not expired, not revoked (srv's revocation function); every
 * caller is admin on an insecure server. 0 and *out, or RC_EAUTH and msg saying why. */
int rpc_server_check_bearer(rpc_server *srv, const char *authorization, rpc_identity *out,
                            char *msg, size_t msglen);
/* The caller's identity (valid for the life of the call). */
const rpc_identity *rpc_call_identity(const rpc_call *call);
/* "admin", "job 01000000", "node 3fa2…", "gcs", "local", "anonymous": for messages. */
void rpc_identity_text(const rpc_identity *id, char *out, size_t outlen);

/* Listens on "host:port" (port 0 picks a free one) or "unix:/path". Stores the bound TCP port
 * in *port if port is not NULL (0 for unix sockets). Before start only. RC_EIO if the address
 * cannot be bound (for instance because it is in use). */
int rpc_server_listen(rpc_server *srv, const char *addr, int *port);
int rpc_server_start(rpc_server *srv);
/* Stops accepting calls, cancels the calls in progress (their cancel callbacks run and
 * their late answers are dropped) and frees srv once gRPC has returned everything. No
 * handler runs after this returns. */
void rpc_server_destroy(rpc_server *srv);

/* Answers call with reply (packed now: reply may live on the caller's stack). */
void rpc_reply(rpc_call *call, const ProtobufCMessage *reply);
/* Answers call with a reply already packed (len bytes, a message of the method's output
 * type; the bytes are copied). For replies built off the loop thread. */
void rpc_reply_packed(rpc_call *call, const void *bytes, size_t len);
/* Answers call with a non-OK status and a message for the caller. */
void rpc_reply_status(rpc_call *call, grpc_status_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The method being called ("RegisterNode") and its service ("ray.rpc.NodeInfoGcsService"). */
const char *rpc_call_method(const rpc_call *call);
const char *rpc_call_service(const rpc_call *call);
/* Value of request metadata key (lowercase), or NULL. *len gets its length. */
const char *rpc_call_metadata(const rpc_call *call, const char *key, size_t *len);
/* "ipv4:127.0.0.1:5555" or similar. Valid for the life of the call. */
const char *rpc_call_peer(rpc_call *call);
/* 1 once the caller has gone away or the call was cancelled. */
int rpc_call_cancelled(const rpc_call *call);
/* fn runs once if the call is cancelled before it is answered (the caller gave up or
 * the server is shutting down); the handler must still answer it. */
void rpc_call_on_cancel(rpc_call *call, void (*fn)(rpc_call *call, void *arg), void *arg);

/* ---- Client ------------------------------------------------------------------------- */

typedef struct rpc_status {
    grpc_status_code code;
    const char *message; /* never NULL; valid during the callback only */
} rpc_status;

/* Runs on the loop thread when a call ends. reply is the unpacked reply when status->code
 * is GRPC_STATUS_OK, else NULL; the callback owns it and frees it with rpc_msg_free. */
typedef void (*rpc_client_cb)(const rpc_status *status, ProtobufCMessage *reply, void *arg);

typedef struct rpc_client_options {
    const rpc_security *security; /* NULL: the process-wide security */
    int64_t max_message_size;           /* <= 0: rc_cfg.max_grpc_message_size */
    /* 1: a call to a peer that is not reachable yet waits (until its deadline) instead of
     * failing at once with UNAVAILABLE. */
    int wait_for_ready;
    /* TLS channels: the common name the server's certificate must carry (e.g. "node:<hex
     * id>" for a raylet known by its node ID), so a host cannot answer for another node.
     * NULL: any certificate of the cluster CA. Copied. */
    const char *peer_name;
} rpc_client_options;

/* Opens a channel to target ("host:port" or "unix:/path"). Connection happens lazily. */
int rpc_client_create(rpc_ctx *ctx, const char *target, const rpc_client_options *opts,
                      rpc_client **out);
/* Cancels the calls in flight (their callbacks run with CANCELLED) and frees the client
 * once they have ended. */
void rpc_client_destroy(rpc_client *cli);
const char *rpc_client_target(const rpc_client *cli);
/* Ends every call of cli now in flight with code and why (e.g. UNAVAILABLE "the node was
 * declared dead"): their callbacks run with that status, later calls go out as usual. For a
 * peer known to be gone whose connection may still look open (a frozen or cut-off host). */
void rpc_client_cancel_calls(rpc_client *cli, grpc_status_code code, const char *why);

/* Sets (or with value NULL removes) metadata sent with every later call, e.g.
 * "ray_cluster_id". key must be lowercase. */
void rpc_client_set_metadata(rpc_client *cli, const char *key, const char *value);
/* Calls method (by name) of svc with req. timeout_ms < 0: no deadline. cb runs exactly once
 * unless this returns an error (RC_EINVAL for an unknown method or a request of the wrong
 * type). */
int rpc_client_call(rpc_client *cli, const ProtobufCServiceDescriptor *svc, const char *method,
                    const ProtobufCMessage *req, int64_t timeout_ms, rpc_client_cb cb,
                    void *arg);
/* A callback for calls whose answer nobody needs (notifications, best-effort releases): it
 * frees the reply. */
void rpc_reply_drop(const rpc_status *status, ProtobufCMessage *reply, void *arg);
/* The synchronous form, for command-line tools and tests: runs the loop until the call
 * ends. Returns the gRPC status code; on OK *reply holds the reply (free with rpc_msg_free),
 * otherwise the status message is copied into err (errlen bytes) when err is not NULL. Must
 * not be called from inside a loop callback. */
int rpc_client_call_sync(rpc_client *cli, const ProtobufCServiceDescriptor *svc,
                         const char *method, const ProtobufCMessage *req, int64_t timeout_ms,
                         ProtobufCMessage **reply, char *err, size_t errlen);

/* Raw form, for tools and tests that must send bytes no message describes (fuzzing a
 * daemon): calls the gRPC path (e.g. "/ray.rpc.NodeInfoGcsService/RegisterNode") with data
 * as the request. cb gets the reply bytes (valid during the callback only) on OK. */
typedef void (*rpc_client_raw_cb)(const rpc_status *status, const void *reply, size_t len,
                                  void *arg);
int rpc_client_call_raw(rpc_client *cli, const char *path, const void *data, size_t len,
                        int64_t timeout_ms, rpc_client_raw_cb cb, void *arg);
/* Synchronous raw call; returns the gRPC status code. Loop-thread rules of
 * rpc_client_call_sync apply. */
int rpc_client_call_raw_sync(rpc_client *cli, const char *path, const void *data, size_t len,
                             int64_t timeout_ms, char *err, size_t errlen);

/* ---- Fault injection (testing) --------------------------------------------------------- */

/* Client calls are delayed, failed or dropped as the testing_rpc_delay_us,
 * testing_rpc_failure and testing_rpc_drop settings say (config_def.h; all empty, so off,
 * by default): a delay holds the request before it is sent and the reply before it is
 * handed over; a failure answers UNAVAILABLE; a drop answers nothing, so the caller sees
 * DEADLINE_EXCEEDED at its deadline (UNAVAILABLE at once for a call without one). What was
 * injected so far in this process: */
typedef struct rpc_fault_stats {
    uint64_t delayed;
    uint64_t failed_request, failed_response, failed_in_flight;
    uint64_t dropped_request, dropped_response;
} rpc_fault_stats;
void rpc_fault_stats_get(rpc_fault_stats *out);

/* ---- Helpers ------------------------------------------------------------------------ */

/* Frees a message unpacked by this layer (replies handed to callbacks) or made by
 * rpc_msg_dup. NULL is fine. */
void rpc_msg_free(ProtobufCMessage *msg);
/* A deep copy of msg that owns all its parts (free with rpc_msg_free). Sub-messages and
 * strings later assigned into the copy must come from malloc/rc_malloc, since rpc_msg_free
 * frees them. Returns NULL only if msg cannot be packed and unpacked (never for valid
 * messages). */
ProtobufCMessage *rpc_msg_dup(const ProtobufCMessage *msg);
/* Packs msg into a new buffer of *len bytes; the caller frees it with rc_free. */
uint8_t *rpc_msg_pack(const ProtobufCMessage *msg, size_t *len);
/* Name of a gRPC status code ("UNAVAILABLE"). */
const char *rpc_code_name(grpc_status_code code);
/* The RC_E* error that best describes a gRPC status code (0 for OK). */
int rpc_code_to_rc(grpc_status_code code);

#endif
