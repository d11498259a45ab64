/*
 * rpc client: unary calls to protobuf-c described services over a gRPC channel.
 *
 * Each call is one batch of six operations (send metadata, message and half-close; receive
 * metadata, message and status) completed on the context's queue and finished on the loop
 * thread, where the reply is unpacked with the method's output descriptor and handed to the
 * callback. The client keeps its calls in flight on a list so that destroying it cancels
 * them; its memory lives until the last of them has ended.
 *
 * Fault injection (testing_rpc_*, rpc_fault.c): a call drawn for a delay, failure or drop
 * runs in stages on a timer of its own: held before it is sent, failed or dropped instead
 * of being sent, and its outcome held, replaced or dropped after gRPC returns it. Such a
 * call stays on the client's list through every stage, so destroying the client still
 * ends it (CANCELLED), and its timers count as outstanding operations of the context.
 *
 * Loop thread only.
 */
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <stdio.h>
#include <string.h>

#include "rc_alloc.h"
#include "rc_err.h"
#include "rc_list.h"
#include "rc_log.h"
#include "rc_metrics.h"
#include "rpc_int.h"

enum { RPC__MAX_METADATA = 8 };

typedef struct rpc__ccall rpc__ccall;

struct rpc_client {
    rpc_ctx *ctx;
    grpc_channel *channel;
    char *target;
    int wait_for_ready;
    int destroyed;
    int in_callback; /* a callback of this client is running: it may destroy the client */
    grpc_metadata metadata[RPC__MAX_METADATA];
    size_t n_metadata;
    rc_list calls; /* rpc__ccall.link: in flight */
};

struct rpc__ccall {
    rpc__op op;
    rpc_client *cli;
    grpc_call *call;
    grpc_byte_buffer *send_bb, *recv_bb;
    grpc_metadata_array initial_md, trailing_md;
    grpc_status_code status;
    grpc_slice details;
    const ProtobufCMessageDescriptor *output; /* NULL for a raw call */
    rpc_client_cb cb;
    rpc_client_raw_cb raw_cb;
    void *arg;
    char *raw_path; /* raw calls: the path, owned */
    const char *path_text;
    grpc_slice method_slice; /* a reference of the call's own */
    rc_list link; /* on cli->calls */
    /* fault injection */
    int faulty;
    rpc__fault fault;
    uv_timer_t *timer; /* made on first use; closed when the call is freed */
    int timer_armed, stage, cancelled, in_grpc;
    grpc_status_code cancel_code; /* with cancelled: the status (0: CANCELLED) */
    int answered;      /* an in-flight failure was handed over while gRPC still runs it */
    uint64_t deadline; /* uv_hrtime() ns; 0: none */
    uint64_t started_ns; /* uv_hrtime() when the call was made (latency metrics) */
    grpc_status_code real_code;
    char *real_message;
};

enum { RPC__STAGE_SEND, RPC__STAGE_IN_FLIGHT, RPC__STAGE_REPLY, RPC__STAGE_DROP_WAIT };

static void rpc__on_timer(uv_timer_t *t);

static void rpc__client_free(rpc_client *cli)
{
    for (size_t i = 0; i < cli->n_metadata; i++) {
        grpc_slice_unref(cli->metadata[i].key);
        grpc_slice_unref(cli->metadata[i].value);
    }
    grpc_channel_destroy(cli->channel);
    rc_free(cli->target);
    rc_free(cli);
}

int rpc_client_create(rpc_ctx *ctx, const char *target, const rpc_client_options *opts,
                      rpc_client **out)
{
    if (!target || !*target)
        return RC_EINVAL;
    rpc__sec *sec = rpc__sec_for(opts ? opts->security : NULL);
    grpc_channel_credentials *cc = rpc__channel_creds(sec, target, opts ? opts->peer_name : NULL);
    grpc_channel_args *args = rpc__channel_args_new(opts ? opts->max_message_size : 0, 0);
    grpc_channel *ch = grpc_channel_create(target, cc, args);
    rpc__channel_args_free(args);
    grpc_channel_credentials_release(cc);
    if (!ch) {
        rpc__sec_unref(sec);
        return RC_EINVAL;
    }
    rpc_client *cli = RC_NEW(rpc_client);
    rc_list_init(&cli->calls);
    cli->ctx = ctx;
    /* The token rides only on TLS: never in plaintext, never to a unix socket. */
    if (sec->bearer && rpc__channel_is_tls(sec, target))
        rpc_client_set_metadata(cli, "authorization", sec->bearer);
    rpc__sec_unref(sec);
    cli->channel = ch;
    cli->target = rc_strdup(target);
    cli->wait_for_ready = opts ? opts->wait_for_ready : 0;
    *out = cli;
    return 0;
}

void rpc_client_destroy(rpc_client *cli)
{
    if (!cli || cli->destroyed)
        return;
    cli->destroyed = 1;
    if (rc_list_empty(&cli->calls)) {
        if (!cli->in_callback)
            rpc__client_free(cli);
        return;
    }
    rc_list *n;
    RC_LIST_FOREACH(n, &cli->calls) {
        rpc__ccall *c = rc_list_entry(n, rpc__ccall, link);
        if (c->in_grpc)
            grpc_call_cancel(c->call, NULL);
        if (c->timer_armed && c->stage != RPC__STAGE_IN_FLIGHT) {
            c->cancelled = 1;
            uv_timer_start(c->timer, rpc__on_timer, 0, 0);
        }
    }
}

void rpc_client_cancel_calls(rpc_client *cli, grpc_status_code code, const char *why)
{
    rc_list *n;
    RC_LIST_FOREACH(n, &cli->calls) {
        rpc__ccall *c = rc_list_entry(n, rpc__ccall, link);
        if (c->in_grpc)
            grpc_call_cancel_with_status(c->call, code, why, NULL);
        if (c->timer_armed && c->stage != RPC__STAGE_IN_FLIGHT && !c->cancelled) {
            c->cancelled = 1;
            c->cancel_code = code;
            rc_free(c->real_message);
            c->real_message = rc_strdup(why);
            uv_timer_start(c->timer, rpc__on_timer, 0, 0);
        }
    }
}

const char *rpc_client_target(const rpc_client *cli)
{
    return cli->target;
}

void rpc_client_set_metadata(rpc_client *cli, const char *key, const char *value)
{
    size_t klen = strlen(key);
    for (size_t i = 0; i < cli->n_metadata; i++) {
        grpc_metadata *m = &cli->metadata[i];
        if (GRPC_SLICE_LENGTH(m->key) != klen || memcmp(GRPC_SLICE_START_PTR(m->key), key, klen))
            continue;
        grpc_slice_unref(m->value);
        if (value) {
            m->value = grpc_slice_from_copied_string(value);
        } else {
            grpc_slice_unref(m->key);
            *m = cli->metadata[--cli->n_metadata];
        }
        return;
    }
    if (!value)
        return;
    if (cli->n_metadata == RPC__MAX_METADATA) {
        RC_ERROR("rpc: too many metadata entries on client %s; dropping %s", cli->target, key);
        return;
    }
    grpc_metadata *m = &cli->metadata[cli->n_metadata++];
    memset(m, 0, sizeof(*m));
    m->key = grpc_slice_from_copied_string(key);
    m->value = grpc_slice_from_copied_string(value);
}

static void rpc__timer_closed(uv_handle_t *h)
{
    rc_free(h);
}

static void rpc__ccall_free(rpc__ccall *c)
{
    if (c->timer) {
        if (c->timer_armed)
            rpc__op_ended(c->cli->ctx);
        uv_close((uv_handle_t *)c->timer, rpc__timer_closed);
    }
    grpc_slice_unref(c->method_slice);
    rc_free(c->real_message);
    if (c->call)
        grpc_call_unref(c->call);
    if (c->send_bb)
        grpc_byte_buffer_destroy(c->send_bb);
    if (c->recv_bb)
        grpc_byte_buffer_destroy(c->recv_bb);
    grpc_metadata_array_destroy(&c->initial_md);
    grpc_metadata_array_destroy(&c->trailing_md);
    grpc_slice_unref(c->details);
    rc_free(c->raw_path);
    rc_free(c);
}

static void rpc__finish_typed(rpc__ccall *c, grpc_status_code code, char *message);
static void rpc__finish_raw(rpc__ccall *c, grpc_status_code code, char *message);

static void rpc__unlink(rpc__ccall *c)
{
    rc_list_remove(&c->link);
}

static void rpc__maybe_free_client(rpc_client *cli)
{
    if (cli->destroyed && rc_list_empty(&cli->calls) && !cli->in_callback)
        rpc__client_free(cli);
}

/* Ends c: hands code and message to its callback and frees it. */
static void rpc__deliver(rpc__ccall *c, grpc_status_code code, const char *text)
{
    rpc_client *cli = c->cli;
    rpc__unlink(c);
    char message[512];
    snprintf(message, sizeof(message), "%s", text && *text ? text : rpc_code_name(code));
    cli->in_callback++;
    if (!c->output)
        rpc__finish_raw(c, code, message);
    else
        rpc__finish_typed(c, code, message);
    cli->in_callback--;
    rpc__maybe_free_client(cli);
}

/* An in-flight failure: the caller gets UNAVAILABLE now; c stays until gRPC ends it. */
static void rpc__answer_early(rpc__ccall *c)
{
    rpc_client *cli = c->cli;
    c->answered = 1;
    rpc_status st = {GRPC_STATUS_UNAVAILABLE, "injected failure: the connection broke while the call was in flight"};
    cli->in_callback++;
    if (c->output)
        c->cb(&st, NULL, c->arg);
    else
        c->raw_cb(&st, NULL, 0, c->arg);
    cli->in_callback--;
}

static void rpc__arm(rpc__ccall *c, int stage, int64_t delay_ms)
{
    if (!c->timer) {
        c->timer = RC_NEW(uv_timer_t);
        uv_timer_init(c->cli->ctx->loop, c->timer);
        c->timer->data = c;
    }
    if (!c->timer_armed) {
        c->timer_armed = 1;
        rpc__op_started(c->cli->ctx);
    }
    c->stage = stage;
    uv_timer_start(c->timer, rpc__on_timer, (uint64_t)(delay_ms > 0 ? delay_ms : 0), 0);
}

static int64_t rpc__ms_left(const rpc__ccall *c)
{
    if (!c->deadline)
        return -1;
    uint64_t now = uv_hrtime();
    return now >= c->deadline ? 0 : (int64_t)((c->deadline - now + 999999) / 1000000);
}

/* A lost request or reply: nothing comes back before the deadline. */
static void rpc__lost(rpc__ccall *c, const char *what)
{
    int64_t left = rpc__ms_left(c);
    if (left < 0) {
        char msg[128];
        snprintf(msg, sizeof(msg), "injected drop: the %s was lost", what);
        rpc__deliver(c, GRPC_STATUS_UNAVAILABLE, msg);
    } else if (left == 0) {
        rpc__deliver(c, GRPC_STATUS_DEADLINE_EXCEEDED, "Deadline Exceeded");
    } else {
        rpc__arm(c, RPC__STAGE_DROP_WAIT, left);
    }
}

static int rpc__ccall_send(rpc__ccall *c, int64_t timeout_ms);

static void rpc__on_timer(uv_timer_t *t)
{
    rpc__ccall *c = t->data;
    c->timer_armed = 0;
    rpc__op_ended(c->cli->ctx);
    if (c->stage == RPC__STAGE_IN_FLIGHT) {
        if (!c->answered)
            rpc__answer_early(c);
        return;
    }
    if (c->cancelled && c->cancel_code && !c->cli->destroyed) {
        rpc__deliver(c, c->cancel_code, c->real_message);
        return;
    }
    if (c->cancelled || c->cli->destroyed) {
        rpc__deliver(c, GRPC_STATUS_CANCELLED, "Cancelled");
        return;
    }
    switch (c->stage) {
    case RPC__STAGE_SEND:
        if (c->fault.kind == RPC__FAULT_FAIL_REQUEST) {
            rpc__deliver(c, GRPC_STATUS_UNAVAILABLE, "injected failure: the request was not sent");
        } else if (c->fault.kind == RPC__FAULT_DROP_REQUEST) {
            rpc__lost(c, "request");
        } else if (c->deadline && rpc__ms_left(c) == 0) {
            rpc__deliver(c, GRPC_STATUS_DEADLINE_EXCEEDED, "Deadline Exceeded");
        } else if (rpc__ccall_send(c, rpc__ms_left(c)) < 0) {
            rpc__deliver(c, GRPC_STATUS_INTERNAL, "cannot start the call");
        } else if (c->fault.kind == RPC__FAULT_FAIL_IN_FLIGHT) {
            rpc__arm(c, RPC__STAGE_IN_FLIGHT, 0);
        }
        break;
    case RPC__STAGE_REPLY:
        if (c->fault.kind == RPC__FAULT_FAIL_RESPONSE)
            rpc__deliver(c, GRPC_STATUS_UNAVAILABLE, "injected failure: the reply was lost");
        else if (c->fault.kind == RPC__FAULT_DROP_RESPONSE)
            rpc__lost(c, "reply");
        else if (c->deadline && rpc__ms_left(c) == 0 && c->real_code == GRPC_STATUS_OK)
            rpc__deliver(c, GRPC_STATUS_DEADLINE_EXCEEDED, "Deadline Exceeded");
        else
            rpc__deliver(c, c->real_code, c->real_message);
        break;
    default: /* RPC__STAGE_DROP_WAIT */
        rpc__deliver(c, GRPC_STATUS_DEADLINE_EXCEEDED, "Deadline Exceeded");
        break;
    }
}

static void rpc__on_call_done(rpc__op *op, int ok)
{
    rpc__ccall *c = (rpc__ccall *)op;
    c->in_grpc = 0;
    grpc_status_code code = ok ? c->status : GRPC_STATUS_INTERNAL;
    char message[512];
    size_t dlen = GRPC_SLICE_LENGTH(c->details);
    snprintf(message, sizeof(message), "%.*s", (int)dlen,
             (const char *)GRPC_SLICE_START_PTR(c->details));
    if (!c->faulty) {
        rpc__deliver(c, code, message);
        return;
    }
    if (c->fault.kind == RPC__FAULT_FAIL_IN_FLIGHT) {
        if (!c->answered) {
            rpc__deliver(c, GRPC_STATUS_UNAVAILABLE,
                         "injected failure: the connection broke while the call was in flight");
        } else {
            rpc_client *cli = c->cli;
            rpc__unlink(c);
            rpc__ccall_free(c);
            rpc__maybe_free_client(cli);
        }
        return;
    }
    c->real_code = code;
    c->real_message = rc_strdup(message);
    rpc__arm(c, RPC__STAGE_REPLY, (c->fault.resp_delay_us + 999) / 1000);
}

/* From the call being made to its outcome (failures and deadlines included). */
static void rpc__record_latency(rpc__ccall *c)
{
    rpc_ctx *ctx = c->cli->ctx;
    if (!ctx->client_latency || !c->started_ns || !c->path_text)
        return;
    rc_metric_series *s = rc_map_get_str(&ctx->client_series, c->path_text);
    if (!s) {
        /* "/ray.rpc.NodeInfoGcsService/RegisterNode" -> "NodeInfoGcsService.RegisterNode" */
        const char *slash = strrchr(c->path_text, '/'), *svc = c->path_text + 1;
        for (const char *p = svc; slash && p < slash; p++)
            if (*p == '.')
                svc = p + 1;
        char label[200];
        if (slash)
            snprintf(label, sizeof(label), "%.*s.%s", (int)(slash - svc), svc, slash + 1);
        else
            snprintf(label, sizeof(label), "%s", c->path_text);
        s = rc_metric_series_get(ctx->client_latency, (const char *const[]){label});
        rc_map_put_str(&ctx->client_series, c->path_text, s);
    }
    rc_metric_series_observe(s, (double)(uv_hrtime() - c->started_ns) / 1e9);
}

int rpc_ctx_set_metrics(rpc_ctx *ctx, rc_metrics *reg)
{
    static const double bounds[] = {0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10};
    if (ctx->client_latency)
        return RC_ESTATE;
    return rc_metrics_add(reg, RC_METRIC_HISTOGRAM, "rayc_rpc_client_latency_seconds",
                          "Time from a gRPC call being made to its outcome (reply, failure or "
                          "deadline), per method called.",
                          (const char *const[]){"Method", NULL}, bounds,
                          sizeof(bounds) / sizeof(bounds[0]), &ctx->client_latency);
}

static void rpc__finish_typed(rpc__ccall *c, grpc_status_code code, char *message)
{
    rpc__record_latency(c);
    ProtobufCMessage *reply = NULL;
    if (code == GRPC_STATUS_OK) {
        if (!c->recv_bb) {
            code = GRPC_STATUS_INTERNAL;
            snprintf(message, 512, "reply carried no message");
        } else if (!(reply = rpc__unpack(c->output, c->recv_bb))) {
            code = GRPC_STATUS_INTERNAL;
            snprintf(message, 512, "malformed reply: not a valid %s", c->output->name);
        }
    }
    rpc_status st = {code, message};
    rpc_client_cb cb = c->cb;
    void *arg = c->arg;
    rpc__ccall_free(c);
    cb(&st, reply, arg);
}

static void rpc__finish_raw(rpc__ccall *c, grpc_status_code code, char *message)
{
    rpc__record_latency(c);
    grpc_slice all = grpc_empty_slice();
    if (code == GRPC_STATUS_OK && c->recv_bb) {
        grpc_byte_buffer_reader reader;
        if (grpc_byte_buffer_reader_init(&reader, c->recv_bb)) {
            all = grpc_byte_buffer_reader_readall(&reader);
            grpc_byte_buffer_reader_destroy(&reader);
        }
    }
    rpc_status st = {code, message};
    rpc_client_raw_cb cb = c->raw_cb;
    void *arg = c->arg;
    rpc__ccall_free(c);
    cb(&st, GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all), arg);
    grpc_slice_unref(all);
}

/* Starts the gRPC batch of c. */
static int rpc__ccall_send(rpc__ccall *c, int64_t timeout_ms)
{
    rpc_client *cli = c->cli;
    c->call = grpc_channel_create_call(cli->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cli->ctx->cq,
                                       c->method_slice, NULL, rpc__deadline(timeout_ms), NULL);
    if (!c->call)
        return RC_EIO;
    grpc_op ops[6];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = cli->n_metadata;
    ops[0].data.send_initial_metadata.metadata = cli->n_metadata ? cli->metadata : NULL;
    if (cli->wait_for_ready)
        ops[0].flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY |
                       GRPC_INITIAL_METADATA_WAIT_FOR_READY_EXPLICITLY_SET;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = c->send_bb;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &c->initial_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &c->recv_bb;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &c->trailing_md;
    ops[5].data.recv_status_on_client.status = &c->status;
    ops[5].data.recv_status_on_client.status_details = &c->details;
    grpc_call_error err = grpc_call_start_batch(c->call, ops, 6, &c->op, NULL);
    if (err != GRPC_CALL_OK) {
        RC_ERROR("rpc: cannot start call %s (grpc_call_error %d)", c->path_text, (int)err);
        return RC_EIO;
    }
    c->in_grpc = 1;
    rpc__op_started(cli->ctx);
    return 0;
}

/* Starts c (whose output, callbacks and path are set) sending send_bb: at once, or through
 * the stages of an injected fault. */
static int rpc__ccall_start(rpc_client *cli, rpc__ccall *c, const char *path,
                            grpc_slice method_slice, grpc_byte_buffer *send_bb, int64_t timeout_ms)
{
    c->op.done = rpc__on_call_done;
    c->cli = cli;
    c->details = grpc_empty_slice();
    c->send_bb = send_bb;
    c->path_text = path;
    c->method_slice = grpc_slice_ref(method_slice);
    c->started_ns = uv_hrtime();
    grpc_metadata_array_init(&c->initial_md);
    grpc_metadata_array_init(&c->trailing_md);
    c->faulty = rpc__fault_draw(path, cli->target, &c->fault);
    if (c->faulty) {
        if (timeout_ms >= 0)
            c->deadline = uv_hrtime() + (uint64_t)timeout_ms * 1000000u;
        rpc__arm(c, RPC__STAGE_SEND, (c->fault.req_delay_us + 999) / 1000);
    } else if (rpc__ccall_send(c, timeout_ms) < 0) {
        rpc__ccall_free(c);
        return RC_EIO;
    }
    rc_list_insert_head(&cli->calls, &c->link);
    return 0;
}

int rpc_client_call(rpc_client *cli, const ProtobufCServiceDescriptor *svc, const char *method,
                    const ProtobufCMessage *req, int64_t timeout_ms, rpc_client_cb cb, void *arg)
{
    if (cli->destroyed)
        return RC_ESTATE;
    const ProtobufCMethodDescriptor *m = protobuf_c_service_descriptor_get_method_by_name(svc, method);
    if (!m || req->descriptor != m->input)
        return RC_EINVAL;
    const rpc__path *path = rpc__path_get(cli->ctx, svc, (unsigned)(m - svc->methods));
    rpc__ccall *c = RC_NEW(rpc__ccall);
    c->output = m->output;
    c->cb = cb;
    c->arg = arg;
    return rpc__ccall_start(cli, c, path->text, path->slice, rpc__pack(req), timeout_ms);
}

int rpc_client_call_raw(rpc_client *cli, const char *path, const void *data, size_t len,
                        int64_t timeout_ms, rpc_client_raw_cb cb, void *arg)
{
    if (cli->destroyed)
        return RC_ESTATE;
    if (!path || path[0] != '/')
        return RC_EINVAL;
    rpc__ccall *c = RC_NEW(rpc__ccall);
    c->raw_cb = cb;
    c->arg = arg;
    c->raw_path = rc_strdup(path);
    grpc_slice slice = grpc_slice_from_copied_buffer(data, len);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    grpc_slice method_slice = grpc_slice_from_copied_string(path); /* the call takes a ref */
    int rc = rpc__ccall_start(cli, c, c->raw_path, method_slice, bb, timeout_ms);
    grpc_slice_unref(method_slice);
    return rc;
}

typedef struct rpc__sync {
    int done;
    int code;
    ProtobufCMessage *reply;
    char *err;
    size_t errlen;
} rpc__sync;

static void rpc__on_sync_done(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    rpc__sync *s = arg;
    s->done = 1;
    s->code = st->code;
    s->reply = reply;
    if (st->code != GRPC_STATUS_OK && s->err && s->errlen)
        snprintf(s->err, s->errlen, "%s", st->message);
}

int rpc_client_call_sync(rpc_client *cli, const ProtobufCServiceDescriptor *svc,
                         const char *method, const ProtobufCMessage *req, int64_t timeout_ms,
                         ProtobufCMessage **reply, char *err, size_t errlen)
{
    rpc__sync s = {0, 0, NULL, err, errlen};
    *reply = NULL;
    int rc = rpc_client_call(cli, svc, method, req, timeout_ms, rpc__on_sync_done, &s);
    if (rc < 0) {
        if (err && errlen)
            snprintf(err, errlen, "cannot call %s: %s", method, rc_strerror(rc));
        return GRPC_STATUS_INTERNAL;
    }
    while (!s.done)
        uv_run(cli->ctx->loop, UV_RUN_ONCE);
    *reply = s.reply;
    return s.code;
}

static void rpc__on_raw_sync_done(const rpc_status *st, const void *reply, size_t len, void *arg)
{
    (void)reply;
    (void)len;
    rpc__on_sync_done(st, NULL, arg);
}

int rpc_client_call_raw_sync(rpc_client *cli, const char *path, const void *data, size_t len,
                             int64_t timeout_ms, char *err, size_t errlen)
{
    rpc__sync s = {0, 0, NULL, err, errlen};
    int rc = rpc_client_call_raw(cli, path, data, len, timeout_ms, rpc__on_raw_sync_done, &s);
    if (rc < 0) {
        if (err && errlen)
            snprintf(err, errlen, "cannot call %s: %s", path, rc_strerror(rc));
        return GRPC_STATUS_INTERNAL;
    }
    while (!s.done)
        uv_run(cli->ctx->loop, UV_RUN_ONCE);
    return s.code;
}

void rpc_reply_drop(const rpc_status *status, ProtobufCMessage *reply, void *arg)
{
    (void)status;
    (void)arg;
    rpc_msg_free(reply);
}
