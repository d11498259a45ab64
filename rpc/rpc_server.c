/*
 * rpc server: serves protobuf-c service descriptors over gRPC core.
 *
 * The server keeps a fixed number of grpc_server_request_call operations outstanding, for
 * any method (unregistered calls), and re-arms one each time a call arrives. A call then
 * runs two batches at once: RECV_MESSAGE, and RECV_CLOSE_ON_SERVER, which completes when
 * the call ends — after our status is sent or, earlier, when the caller goes away, which is
 * how held calls (long polls) learn of cancellation. The reply is a third batch.
 *
 * An rpc_call is reference-counted: one reference per batch in flight plus one for the
 * answer the handler owes. It is freed when all are gone. Bad input never reaches a
 * handler: an unknown path is answered UNIMPLEMENTED, bytes that do not unpack as the
 * method's input INVALID_ARGUMENT; oversized messages are refused by gRPC itself
 * (RESOURCE_EXHAUSTED).
 *
 * Loop thread only.
 */
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rc_alloc.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_log.h"
#include "rc_metrics.h"
#include "rc_time.h"
#include "rpc_int.h"

typedef struct rpc__method {
    const ProtobufCServiceDescriptor *svc;
    unsigned index;
    const rpc__acl *acl; /* NULL: not in the table */
    rpc_handler_fn fn;
    void *arg;
    rc_metric_series *latency; /* found on first use when the server records metrics */
} rpc__method;

struct rpc_server {
    rpc_ctx *ctx;
    grpc_server *server;
    rc_map methods; /* path -> rpc__method */
    rpc_interceptor_fn interceptor;
    void *interceptor_arg;
    rpc__sec *sec;
    rpc__authz *authz;
    rpc_revoked_fn revoked;
    void *revoked_arg;
    rc_metric *latency; /* rayc_rpc_server_latency_seconds, or NULL */
    int started;
    int shutting_down;
    int shutdown_notified; /* the shutdown notification has completed */
    int64_t requests_outstanding;
    int64_t live_calls;
    rpc__op shutdown_op;
};

struct rpc_call {
    rpc_server *srv;
    grpc_call *call;
    grpc_call_details details;
    grpc_metadata_array metadata;
    rpc__op op_new, op_recv, op_close, op_send;
    grpc_byte_buffer *recv_bb, *send_bb;
    int close_cancelled; /* set by RECV_CLOSE_ON_SERVER */
    int refs;
    int answered;
    int closed;
    const rpc__method *method;
    ProtobufCMessage *request;
    char *peer;
    void (*cancel_fn)(rpc_call *, void *);
    void *cancel_arg;
    rpc_identity identity;
    int64_t arrived_ns; /* when the call reached the loop thread */
};

#define RPC__CONTAINER(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

static void rpc__server_maybe_free(rpc_server *srv);
static void rpc__request_one(rpc_server *srv);

static void rpc__call_unref(rpc_call *c)
{
    if (--c->refs > 0)
        return;
    rpc_server *srv = c->srv;
    if (c->call)
        grpc_call_unref(c->call);
    grpc_call_details_destroy(&c->details);
    grpc_metadata_array_destroy(&c->metadata);
    if (c->recv_bb)
        grpc_byte_buffer_destroy(c->recv_bb);
    if (c->send_bb)
        grpc_byte_buffer_destroy(c->send_bb);
    rpc_msg_free(c->request);
    if (c->peer)
        gpr_free(c->peer);
    rc_free(c);
    srv->live_calls--;
    rpc__server_maybe_free(srv);
}

static void rpc__on_send_done(rpc__op *op, int ok)
{
    (void)ok; /* a failed send means the caller went away: nothing to do */
    rpc_call *c = RPC__CONTAINER(op, rpc_call, op_send);
    rpc__call_unref(c);
}

/* From the call's arrival on the loop thread to its answer (handlers that answer later,
 * long polls included, count their whole wait). */
static void rpc__record_latency(rpc_call *c)
{
    rpc__method *m = (rpc__method *)c->method;
    if (!c->srv->latency || !m || !c->arrived_ns)
        return;
    if (!m->latency) {
        const char *svc = m->svc->name, *dot = strrchr(svc, '.');
        char label[160];
        snprintf(label, sizeof(label), "%s.%s", dot ? dot + 1 : svc, m->svc->methods[m->index].name);
        m->latency = rc_metric_series_get(c->srv->latency, (const char *const[]){label});
    }
    rc_metric_series_observe(m->latency, (double)(rc_mono_ns() - c->arrived_ns) / 1e9);
}

/* Sends the answer: a message (reply_bb != NULL, status OK) or a status with details. */
static void rpc__answer(rpc_call *c, grpc_byte_buffer *reply_bb, grpc_status_code code,
                        const char *details)
{
    if (c->answered) {
        RC_ERROR("rpc: %s answered twice; the second answer is dropped", rpc_call_method(c));
        if (reply_bb)
            grpc_byte_buffer_destroy(reply_bb);
        return;
    }
    c->answered = 1;
    rpc__record_latency(c);
    if (c->closed) { /* the caller is gone: drop the answer */
        if (reply_bb)
            grpc_byte_buffer_destroy(reply_bb);
        rpc__call_unref(c);
        return;
    }
    grpc_op ops[3];
    memset(ops, 0, sizeof(ops));
    size_t n = 0;
    ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[n++].data.send_initial_metadata.count = 0;
    if (reply_bb) {
        c->send_bb = reply_bb;
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = reply_bb;
    }
    grpc_slice details_slice = grpc_slice_from_copied_string(details ? details : "");
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.trailing_metadata_count = 0;
    ops[n].data.send_status_from_server.status = code;
    ops[n++].data.send_status_from_server.status_details = details ? &details_slice : NULL;
    c->op_send.done = rpc__on_send_done;
    grpc_call_error err = grpc_call_start_batch(c->call, ops, n, &c->op_send, NULL);
    grpc_slice_unref(details_slice);
    if (err != GRPC_CALL_OK) {
        RC_WARN("rpc: cannot send answer (grpc_call_error %d)", (int)err);
        rpc__call_unref(c);
        return;
    }
    rpc__op_started(c->srv->ctx);
}

void rpc_reply(rpc_call *c, const ProtobufCMessage *reply)
{
    if (c->method && reply->descriptor != c->method->svc->methods[c->method->index].output) {
        RC_ERROR("rpc: %s answered with a %s, not a %s", rpc_call_method(c),
                 reply->descriptor->name,
                 c->method->svc->methods[c->method->index].output->name);
        rpc__answer(c, NULL, GRPC_STATUS_INTERNAL, "server replied with the wrong message type");
        return;
    }
    rpc__answer(c, c->closed || c->answered ? NULL : rpc__pack(reply), GRPC_STATUS_OK, NULL);
}

void rpc_reply_packed(rpc_call *c, const void *bytes, size_t len)
{
    grpc_byte_buffer *bb = NULL;
    if (!c->closed && !c->answered) {
        grpc_slice slice = grpc_slice_from_copied_buffer(bytes, len);
        bb = grpc_raw_byte_buffer_create(&slice, 1);
        grpc_slice_unref(slice);
    }
    rpc__answer(c, bb, GRPC_STATUS_OK, NULL);
}

void rpc_reply_status(rpc_call *c, grpc_status_code code, const char *fmt, ...)
{
    char details[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(details, sizeof(details), fmt, ap);
    va_end(ap);
    rpc__answer(c, NULL, code, details);
}

static void rpc__on_close(rpc__op *op, int ok)
{
    (void)ok;
    rpc_call *c = RPC__CONTAINER(op, rpc_call, op_close);
    c->closed = 1;
    if (!c->answered && c->cancel_fn) {
        void (*fn)(rpc_call *, void *) = c->cancel_fn;
        c->cancel_fn = NULL;
        c->refs++; /* the callback may answer, which could otherwise free c under us */
        fn(c, c->cancel_arg);
        rpc__call_unref(c);
    }
    rpc__call_unref(c);
}

/* The ACL's scope on the unpacked request: 0, or the call has been answered. */
static int rpc__check_scope(rpc_call *c)
{
    char msg[512];
    int code = rpc__acl_check_scope(c->method->acl, rpc_call_method(c), &c->identity, c->request,
                                    msg, sizeof(msg));
    if (code == 0)
        return 0;
    RC_INFO("rpc: refused %s from %s: %s", rpc_call_method(c), rpc_call_peer(c), msg);
    rpc_reply_status(c, (grpc_status_code)code, "%s", msg);
    return -1;
}

static void rpc__on_recv(rpc__op *op, int ok)
{
    rpc_call *c = RPC__CONTAINER(op, rpc_call, op_recv);
    rpc_server *srv = c->srv;
    if (!ok) {
        /* gRPC failed the call (too large, cancelled): it has told the caller already. */
        c->answered = 1;
        rpc__call_unref(c); /* the answer reference */
    } else if (!c->recv_bb) {
        rpc_reply_status(c, GRPC_STATUS_INVALID_ARGUMENT, "request carried no message");
    } else {
        const ProtobufCMessageDescriptor *input = c->method->svc->methods[c->method->index].input;
        c->request = rpc__unpack(input, c->recv_bb);
        grpc_byte_buffer_destroy(c->recv_bb);
        c->recv_bb = NULL;
        if (!c->request) {
            rpc_reply_status(c, GRPC_STATUS_INVALID_ARGUMENT, "malformed %s request: not a valid %s",
                             rpc_call_method(c), input->name);
        } else if (srv->shutting_down) {
            /* Handlers may already be gone: never dispatch once shutdown began. */
            rpc_reply_status(c, GRPC_STATUS_UNAVAILABLE, "server is shutting down");
        } else if (rpc__check_scope(c) == 0 &&
                   (!srv->interceptor || srv->interceptor(c, srv->interceptor_arg) == 0)) {
            c->method->fn(c, c->request, c->method->arg);
        }
    }
    rpc__call_unref(c); /* the receive batch's reference */
}

/* Who is calling, and may they call this method: 0, or the call has been answered. */
static int rpc__authorize(rpc_call *c)
{
    rpc_server *srv = c->srv;
    if (srv->sec->pub.insecure) {
        c->identity.role = RPC_ROLE_ADMIN;
        return 0;
    }
    char msg[512];
    int code = rpc__authz_identify(srv->authz, c, c->call, &c->metadata, &c->identity, msg, sizeof(msg));
    if (code == 0 && srv->revoked &&
        (c->identity.role & (RPC_ROLE_NODE | RPC_ROLE_JOB | RPC_ROLE_ADMIN))) {
        const char *why = srv->revoked(&c->identity, srv->revoked_arg);
        if (why) {
            snprintf(msg, sizeof(msg), "%s", why);
            code = GRPC_STATUS_UNAUTHENTICATED;
        }
    }
    if (code == 0)
        code = rpc__acl_check_role(c->method->acl, c->method->svc->name, rpc_call_method(c),
                                   &c->identity, msg, sizeof(msg));
    if (code == 0)
        return 0;
    char who[96];
    rpc_identity_text(&c->identity, who, sizeof(who));
    RC_INFO("rpc: refused %s from %s (%s): %s", rpc_call_method(c), rpc_call_peer(c), who, msg);
    rpc_reply_status(c, (grpc_status_code)code, "%s", msg);
    return -1;
}

static void rpc__start_call(rpc_call *c)
{
    rpc_server *srv = c->srv;
    c->refs = 2; /* the close batch, and the answer owed */
    grpc_op close_op;
    memset(&close_op, 0, sizeof(close_op));
    close_op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    close_op.data.recv_close_on_server.cancelled = &c->close_cancelled;
    c->op_close.done = rpc__on_close;
    if (grpc_call_start_batch(c->call, &close_op, 1, &c->op_close, NULL) != GRPC_CALL_OK) {
        RC_ERROR("rpc: cannot watch a call for cancellation");
        c->closed = 1;
        c->refs--;
    } else {
        rpc__op_started(srv->ctx);
    }

    c->arrived_ns = srv->latency ? rc_mono_ns() : 0;
    c->method = rc_map_get(&srv->methods, GRPC_SLICE_START_PTR(c->details.method),
                           GRPC_SLICE_LENGTH(c->details.method));
    if (!c->method || !c->method->fn) {
        rpc_reply_status(c, GRPC_STATUS_UNIMPLEMENTED, "unknown method %.*s",
                         (int)GRPC_SLICE_LENGTH(c->details.method),
                         (const char *)GRPC_SLICE_START_PTR(c->details.method));
        return;
    }
    if (rpc__authorize(c) != 0)
        return;
    grpc_op recv_op;
    memset(&recv_op, 0, sizeof(recv_op));
    recv_op.op = GRPC_OP_RECV_MESSAGE;
    recv_op.data.recv_message.recv_message = &c->recv_bb;
    c->op_recv.done = rpc__on_recv;
    c->refs++;
    if (grpc_call_start_batch(c->call, &recv_op, 1, &c->op_recv, NULL) != GRPC_CALL_OK) {
        c->refs--;
        rpc_reply_status(c, GRPC_STATUS_INTERNAL, "cannot receive the request");
        return;
    }
    rpc__op_started(srv->ctx);
}

static void rpc__on_new_call(rpc__op *op, int ok)
{
    rpc_call *c = RPC__CONTAINER(op, rpc_call, op_new);
    rpc_server *srv = c->srv;
    srv->requests_outstanding--;
    if (!ok) { /* the server is shutting down: this slot never got a call */
        c->refs = 1;
        rpc__call_unref(c);
        return;
    }
    if (!srv->shutting_down)
        rpc__request_one(srv);
    rpc__start_call(c);
}

static void rpc__request_one(rpc_server *srv)
{
    rpc_call *c = RC_NEW(rpc_call);
    c->srv = srv;
    grpc_call_details_init(&c->details);
    grpc_metadata_array_init(&c->metadata);
    c->op_new.done = rpc__on_new_call;
    srv->live_calls++;
    grpc_call_error err = grpc_server_request_call(srv->server, &c->call, &c->details,
                                                   &c->metadata, srv->ctx->cq, srv->ctx->cq,
                                                   &c->op_new);
    if (err != GRPC_CALL_OK) {
        RC_ERROR("rpc: grpc_server_request_call failed (%d)", (int)err);
        c->refs = 1;
        rpc__call_unref(c);
        return;
    }
    srv->requests_outstanding++;
    rpc__op_started(srv->ctx);
}

int rpc_server_create(rpc_ctx *ctx, const rpc_server_options *opts, rpc_server **out)
{
    rpc_server *srv = RC_NEW(rpc_server);
    srv->ctx = ctx;
    rc_map_init(&srv->methods);
    srv->sec = rpc__sec_for(opts ? opts->security : NULL);
    srv->authz = rpc__authz_new(srv->sec);
    grpc_channel_args *args = rpc__channel_args_new(opts ? opts->max_message_size : 0, 1);
    srv->server = grpc_server_create(args, NULL);
    rpc__channel_args_free(args);
    grpc_server_register_completion_queue(srv->server, ctx->cq, NULL);
    *out = srv;
    return 0;
}

int rpc_server_add_service(rpc_server *srv, const ProtobufCServiceDescriptor *svc,
                           const rpc_method_handler *handlers, void *arg)
{
    if (srv->started)
        return RC_ESTATE;
    for (const rpc_method_handler *h = handlers; h->method; h++) {
        if (!protobuf_c_service_descriptor_get_method_by_name(svc, h->method)) {
            RC_ERROR("rpc: %s has no method %s", svc->name, h->method);
            return RC_EINVAL;
        }
    }
    for (const rpc_method_handler *h = handlers; h->method; h++) {
        const ProtobufCMethodDescriptor *md = protobuf_c_service_descriptor_get_method_by_name(svc, h->method);
        unsigned i = (unsigned)(md - svc->methods);
        const rpc__path *path = rpc__path_get(srv->ctx, svc, i);
        rpc__method *m = RC_NEW(rpc__method);
        m->svc = svc;
        m->index = i;
        m->fn = h->fn;
        m->arg = arg;
        m->acl = rpc__acl_find(svc->name, h->method);
        if (!m->acl && !srv->sec->pub.insecure)
            RC_WARN("rpc: %s.%s is not in the access-control table: only the admin may call it",
                    svc->name, h->method);
        rc_free(rc_map_put_str(&srv->methods, path->text, m));
    }
    return 0;
}

void rpc_server_set_interceptor(rpc_server *srv, rpc_interceptor_fn fn, void *arg)
{
    srv->interceptor = fn;
    srv->interceptor_arg = arg;
}

void rpc_server_set_revocation(rpc_server *srv, rpc_revoked_fn fn, void *arg)
{
    srv->revoked = fn;
    srv->revoked_arg = arg;
}

int rpc_server_set_metrics(rpc_server *srv, rc_metrics *reg)
{
    static const double bounds[] = {0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10};
    if (srv->latency)
        return RC_ESTATE;
    return rc_metrics_add(reg, RC_METRIC_HISTOGRAM, "rayc_rpc_server_latency_seconds",
                          "Time from a gRPC call's arrival to its answer, per method (long polls "
                          "count their whole wait).",
                          (const char *const[]){"Method", NULL}, bounds,
                          sizeof(bounds) / sizeof(bounds[0]), &srv->latency);
}

int rpc_server_check_bearer(rpc_server *srv, const char *authorization, rpc_identity *out,
                            char *msg, size_t msglen)
{
    memset(out, 0, sizeof(*out));
    if (srv->sec->pub.insecure) {
        out->role = RPC_ROLE_ADMIN;
        return 0;
    }
    if (!authorization || !*authorization) {
        snprintf(msg, msglen, "no credentials: send \"Authorization: Bearer <token>\" with the "
                              "cluster's token (rayc get-auth-token on the head node)");
        return RC_EAUTH;
    }
    if (rpc__authz_bearer(srv->authz, authorization, strlen(authorization), out, msg, msglen) != 0)
        return RC_EAUTH;
    const char *why = srv->revoked ? srv->revoked(out, srv->revoked_arg) : NULL;
    if (why) {
        snprintf(msg, msglen, "%s", why);
        return RC_EAUTH;
    }
    return 0;
}

const rpc_identity *rpc_call_identity(const rpc_call *c)
{
    return &c->identity;
}

int rpc_server_listen(rpc_server *srv, const char *addr, int *port)
{
    if (srv->started)
        return RC_ESTATE;
    if (strncmp(addr, "unix:", 5) != 0 && !srv->sec->pub.insecure && !rpc__server_is_tls(srv->sec)) {
        RC_ERROR("rpc: cannot listen on %s: a secure server needs a certificate and key", addr);
        return RC_EAUTH;
    }
    grpc_server_credentials *sc = rpc__server_creds(srv->sec, addr);
    int bound = grpc_server_add_http2_port(srv->server, addr, sc);
    grpc_server_credentials_release(sc);
    if (bound == 0)
        return RC_EIO;
    if (port)
        *port = strncmp(addr, "unix:", 5) == 0 ? 0 : bound;
    return 0;
}

int rpc_server_start(rpc_server *srv)
{
    if (srv->started)
        return RC_ESTATE;
    grpc_server_start(srv->server);
    srv->started = 1;
    int64_t n = rc_cfg.grpc_server_outstanding_requests;
    for (int64_t i = 0; i < (n > 0 ? n : 1); i++)
        rpc__request_one(srv);
    return 0;
}

static void rpc__on_shutdown(rpc__op *op, int ok)
{
    (void)ok;
    rpc_server *srv = RPC__CONTAINER(op, rpc_server, shutdown_op);
    srv->shutdown_notified = 1;
    rpc__server_maybe_free(srv);
}

static void rpc__free_method(void *m)
{
    rc_free(m);
}

static void rpc__server_maybe_free(rpc_server *srv)
{
    if (!srv->shutting_down || !srv->shutdown_notified || srv->live_calls > 0)
        return;
    grpc_server_destroy(srv->server);
    rc_map_destroy(&srv->methods, rpc__free_method);
    rpc__authz_free(srv->authz);
    rpc__sec_unref(srv->sec);
    rc_free(srv);
}

void rpc_server_destroy(rpc_server *srv)
{
    if (!srv || srv->shutting_down)
        return;
    srv->shutting_down = 1;
    if (!srv->started) {
        /* Never started: gRPC still wants a shutdown before destroy. */
        grpc_server_start(srv->server);
    }
    srv->shutdown_op.done = rpc__on_shutdown;
    grpc_server_shutdown_and_notify(srv->server, srv->ctx->cq, &srv->shutdown_op);
    rpc__op_started(srv->ctx);
    grpc_server_cancel_all_calls(srv->server);
}

const char *rpc_call_method(const rpc_call *c)
{
    return c->method ? c->method->svc->methods[c->method->index].name : "?";
}

const char *rpc_call_service(const rpc_call *c)
{
    return c->method ? c->method->svc->name : "?";
}

const char *rpc_call_metadata(const rpc_call *c, const char *key, size_t *len)
{
    size_t klen = strlen(key);
    for (size_t i = 0; i < c->metadata.count; i++) {
        const grpc_metadata *m = &c->metadata.metadata[i];
        if (GRPC_SLICE_LENGTH(m->key) == klen &&
            memcmp(GRPC_SLICE_START_PTR(m->key), key, klen) == 0) {
            if (len)
                *len = GRPC_SLICE_LENGTH(m->value);
            return (const char *)GRPC_SLICE_START_PTR(m->value);
        }
    }
    return NULL;
}

const char *rpc_call_peer(rpc_call *c)
{
    if (!c->peer)
        c->peer = grpc_call_get_peer(c->call);
    return c->peer;
}

int rpc_call_cancelled(const rpc_call *c)
{
    return c->closed && !c->answered;
}

void rpc_call_on_cancel(rpc_call *c, void (*fn)(rpc_call *, void *), void *arg)
{
    c->cancel_fn = fn;
    c->cancel_arg = arg;
}
