/*
 * rpc context: the completion queue, its pump thread and the hand-off to the loop thread.
 *
 * The pump thread blocks in grpc_completion_queue_next and appends each completion to a
 * mutex-guarded queue, waking the loop with uv_async_send only when the queue was empty
 * (the loop takes the whole queue at once, so later completions ride on that wake-up). The
 * loop thread runs each op's done(). The wake-up handle is referenced only while operations
 * are outstanding, so a loop with nothing else to do returns from uv_run.
 *
 * Threads: rpc__pump runs on the pump thread; everything else on the loop thread.
 */
#include <grpc/byte_buffer_reader.h>
#include <grpc/support/time.h>
#include <string.h>

#include "rc_alloc.h"
#include "rc_buf.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_log.h"
#include "rpc_int.h"

static void rpc__pump(void *arg)
{
    rpc_ctx *ctx = arg;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(ctx->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC),
                                                   NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            return;
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        uv_mutex_lock(&ctx->mu);
        if (ctx->queue_len == ctx->queue_cap) {
            ctx->queue_cap = ctx->queue_cap ? ctx->queue_cap * 2 : 256;
            ctx->queue = rc_realloc(ctx->queue, ctx->queue_cap * sizeof(*ctx->queue));
        }
        ctx->queue[ctx->queue_len].op = ev.tag;
        ctx->queue[ctx->queue_len].ok = ev.success;
        int was_empty = ctx->queue_len++ == 0;
        uv_mutex_unlock(&ctx->mu);
        if (was_empty)
            uv_async_send(&ctx->wakeup);
    }
}

static void rpc__update_liveness(rpc_ctx *ctx)
{
    int want = ctx->pending_ops > 0;
    if (want == ctx->wakeup_active)
        return;
    ctx->wakeup_active = want;
    if (want)
        uv_ref((uv_handle_t *)&ctx->wakeup);
    else
        uv_unref((uv_handle_t *)&ctx->wakeup);
}

void rpc__op_started(rpc_ctx *ctx)
{
    ctx->pending_ops++;
    rpc__update_liveness(ctx);
}

void rpc__op_ended(rpc_ctx *ctx)
{
    ctx->pending_ops--;
    rpc__update_liveness(ctx);
}

static void rpc__on_wakeup(uv_async_t *handle)
{
    rpc_ctx *ctx = handle->data;
    uv_mutex_lock(&ctx->mu);
    /* Swap buffers so the pump thread can keep appending while we dispatch. */
    rpc__event *events = ctx->queue;
    size_t n = ctx->queue_len;
    size_t cap = ctx->queue_cap;
    ctx->queue = ctx->batch;
    ctx->queue_cap = ctx->batch_cap;
    ctx->queue_len = 0;
    ctx->batch = events;
    ctx->batch_cap = cap;
    uv_mutex_unlock(&ctx->mu);
    for (size_t i = 0; i < n; i++) {
        ctx->pending_ops--;
        events[i].op->done(events[i].op, events[i].ok);
    }
    rpc__update_liveness(ctx);
}

int rpc_ctx_create(uv_loop_t *loop, rpc_ctx **out)
{
    rpc_ctx *ctx = RC_NEW(rpc_ctx);
    ctx->loop = loop;
    grpc_init();
    ctx->cq = grpc_completion_queue_create_for_next(NULL);
    rc_map_init(&ctx->paths);
    rc_map_init(&ctx->client_series);
    if (uv_mutex_init(&ctx->mu) != 0)
        goto fail_mutex;
    if (uv_async_init(loop, &ctx->wakeup, rpc__on_wakeup) != 0)
        goto fail_async;
    ctx->wakeup.data = ctx;
    uv_unref((uv_handle_t *)&ctx->wakeup);
    if (uv_thread_create(&ctx->pump, rpc__pump, ctx) != 0)
        goto fail_thread;
    *out = ctx;
    return 0;

fail_thread:
    uv_close((uv_handle_t *)&ctx->wakeup, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
fail_async:
    uv_mutex_destroy(&ctx->mu);
fail_mutex:
    grpc_completion_queue_shutdown(ctx->cq);
    grpc_completion_queue_destroy(ctx->cq);
    grpc_shutdown();
    rc_free(ctx);
    return RC_ESYS;
}

static void rpc__free_path(void *p)
{
    rpc__path *path = p;
    grpc_slice_unref(path->slice);
    rc_free(path->text);
    rc_free(path);
}

static void rpc__on_wakeup_closed(uv_handle_t *h)
{
    (void)h;
}

void rpc_ctx_drain(rpc_ctx *ctx)
{
    while (ctx->pending_ops > 0)
        uv_run(ctx->loop, UV_RUN_ONCE);
}

void rpc_ctx_destroy(rpc_ctx *ctx)
{
    if (!ctx)
        return;
    rpc_ctx_drain(ctx);
    grpc_completion_queue_shutdown(ctx->cq);
    uv_thread_join(&ctx->pump);
    grpc_completion_queue_destroy(ctx->cq);
    uv_close((uv_handle_t *)&ctx->wakeup, rpc__on_wakeup_closed);
    uv_run(ctx->loop, UV_RUN_NOWAIT);
    uv_mutex_destroy(&ctx->mu);
    rc_free(ctx->queue);
    rc_free(ctx->batch);
    rc_map_destroy(&ctx->paths, rpc__free_path);
    rc_map_destroy(&ctx->client_series, NULL);
    rc_free(ctx);
    grpc_shutdown();
}

uv_loop_t *rpc_ctx_loop(rpc_ctx *ctx)
{
    return ctx->loop;
}

const rpc__path *rpc__path_get(rpc_ctx *ctx, const ProtobufCServiceDescriptor *svc,
                               unsigned index)
{
    struct {
        const void *svc;
        uintptr_t index;
    } key = {svc, index};
    rpc__path *path = rc_map_get(&ctx->paths, &key, sizeof(key));
    if (path)
        return path;
    path = RC_NEW(rpc__path);
    rc_buf b = RC_BUF_INIT;
    rc_buf_printf(&b, "/%s/%s", svc->name, svc->methods[index].name);
    path->text = rc_buf_detach(&b);
    path->slice = grpc_slice_from_copied_string(path->text);
    path->svc = svc;
    path->index = index;
    rc_map_put(&ctx->paths, &key, sizeof(key), path);
    return path;
}

grpc_byte_buffer *rpc__pack(const ProtobufCMessage *msg)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    grpc_slice slice = grpc_slice_malloc(n);
    protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(slice));
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    return bb;
}

/* protobuf-c keeps the fields it does not know and writes them back when the message is
 * packed again, but it reads tags wider than 29 bits without complaint and writes them back
 * truncated (as field 0, for one): such a message cannot be read back once copied
 * (rpc_msg_dup) or stored. Whoever sent it gets INVALID_ARGUMENT instead. */
static int rpc__msg_sane(const ProtobufCMessage *m, int depth)
{
    if (depth > 64)
        return 0;
    for (unsigned i = 0; i < m->n_unknown_fields; i++)
        if (m->unknown_fields[i].tag == 0 || m->unknown_fields[i].tag > 0x1fffffffu)
            return 0;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        const char *base = (const char *)m;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            ProtobufCMessage *const *items = *(ProtobufCMessage *const *const *)(base + f->offset);
            for (size_t k = 0; k < n; k++)
                if (items[k] && !rpc__msg_sane(items[k], depth + 1))
                    return 0;
            continue;
        }
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && *(const uint32_t *)(base + f->quantifier_offset) != f->id)
            continue;
        const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)(base + f->offset);
        if (sub && !rpc__msg_sane(sub, depth + 1))
            return 0;
    }
    return 1;
}

ProtobufCMessage *rpc__unpack(const ProtobufCMessageDescriptor *desc, grpc_byte_buffer *bb)
{
    grpc_byte_buffer_reader reader;
    if (!grpc_byte_buffer_reader_init(&reader, bb))
        return NULL;
    grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    ProtobufCMessage *msg = protobuf_c_message_unpack(desc, NULL, GRPC_SLICE_LENGTH(all),
                                                      GRPC_SLICE_START_PTR(all));
    grpc_slice_unref(all);
    if (msg && !rpc__msg_sane(msg, 0)) {
        protobuf_c_message_free_unpacked(msg, NULL);
        return NULL;
    }
    return msg;
}

void rpc_msg_free(ProtobufCMessage *msg)
{
    if (msg)
        protobuf_c_message_free_unpacked(msg, NULL);
}

ProtobufCMessage *rpc_msg_dup(const ProtobufCMessage *msg)
{
    size_t n;
    uint8_t *buf = rpc_msg_pack(msg, &n);
    ProtobufCMessage *copy = protobuf_c_message_unpack(msg->descriptor, NULL, n, buf);
    if (!copy) {
        char hex[200] = "";
        for (size_t i = 0; i < n && i < 64; i++)
            snprintf(hex + 3 * i, sizeof(hex) - 3 * i, "%02x ", buf[i]);
        RC_ERROR("rpc: a %s does not read back as it was written (%zu bytes: %s)", msg->descriptor->name, n, hex);
    }
    rc_free(buf);
    return copy;
}

uint8_t *rpc_msg_pack(const ProtobufCMessage *msg, size_t *len)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = rc_malloc(n ? n : 1);
    protobuf_c_message_pack(msg, buf);
    *len = n;
    return buf;
}

gpr_timespec rpc__deadline(int64_t timeout_ms)
{
    if (timeout_ms < 0)
        return gpr_inf_future(GPR_CLOCK_MONOTONIC);
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                        gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
}

grpc_channel_args *rpc__channel_args_new(int64_t max_message_size, int server)
{
    if (max_message_size <= 0)
        max_message_size = rc_cfg.max_grpc_message_size;
    if (max_message_size > INT32_MAX)
        max_message_size = INT32_MAX;
    grpc_channel_args *args = RC_NEW(grpc_channel_args);
    args->args = rc_calloc(8, sizeof(grpc_arg));
    grpc_arg *a = args->args;
    size_t n = 0;
    a[n].type = GRPC_ARG_INTEGER;
    a[n].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    a[n++].value.integer = (int)max_message_size;
    /* A server's limit is on what it accepts (the GCS keeps KV puts under its KV limit);
     * what it sends back is bounded by the process-wide limit only. */
    int64_t send_max = server ? rc_cfg.max_grpc_message_size : max_message_size;
    a[n].type = GRPC_ARG_INTEGER;
    a[n].key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
    a[n++].value.integer = (int)(send_max > INT32_MAX ? INT32_MAX : send_max);
    if (server) {
        /* Two daemons must never share a port: a second GCS on a busy port fails loudly. */
        a[n].type = GRPC_ARG_INTEGER;
        a[n].key = GRPC_ARG_ALLOW_REUSEPORT;
        a[n++].value.integer = 0;
    } else {
        /* Peers restart (a GCS with Redis behind it, a raylet): reconnect within a second or
         * two instead of gRPC's default backoff of up to two minutes. */
        a[n].type = GRPC_ARG_INTEGER;
        a[n].key = GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS;
        a[n++].value.integer = 100;
        /* gRPC takes this as the shortest time a connection attempt (TCP and the TLS
         * handshake) is given, not as a backoff: a loaded host needs seconds. */
        a[n].type = GRPC_ARG_INTEGER;
        a[n].key = GRPC_ARG_MIN_RECONNECT_BACKOFF_MS;
        a[n++].value.integer = 5000;
        a[n].type = GRPC_ARG_INTEGER;
        a[n].key = GRPC_ARG_MAX_RECONNECT_BACKOFF_MS;
        a[n++].value.integer = 1000;
        a[n].type = GRPC_ARG_INTEGER;
        a[n].key = GRPC_ARG_ENABLE_RETRIES;
        a[n++].value.integer = 0;
    }
    args->num_args = n;
    return args;
}

void rpc__channel_args_free(grpc_channel_args *args)
{
    if (!args)
        return;
    rc_free(args->args);
    rc_free(args);
}

const char *rpc_code_name(grpc_status_code code)
{
    static const char *names[] = {
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    };
    if ((unsigned)code < RC_ARRAY_LEN(names))
        return names[code];
    return "UNKNOWN_STATUS";
}

int rpc_code_to_rc(grpc_status_code code)
{
    switch (code) {
    case GRPC_STATUS_OK:
        return 0;
    case GRPC_STATUS_CANCELLED:
        return RC_ECANCELED;
    case GRPC_STATUS_INVALID_ARGUMENT:
    case GRPC_STATUS_OUT_OF_RANGE:
        return RC_EINVAL;
    case GRPC_STATUS_DEADLINE_EXCEEDED:
        return RC_ETIMEDOUT;
    case GRPC_STATUS_NOT_FOUND:
        return RC_ENOENT;
    case GRPC_STATUS_ALREADY_EXISTS:
        return RC_EEXIST;
    case GRPC_STATUS_PERMISSION_DENIED:
    case GRPC_STATUS_UNAUTHENTICATED:
        return RC_EAUTH;
    case GRPC_STATUS_RESOURCE_EXHAUSTED:
        return RC_ETOOBIG;
    case GRPC_STATUS_FAILED_PRECONDITION:
    case GRPC_STATUS_ABORTED:
        return RC_ESTATE;
    case GRPC_STATUS_UNAVAILABLE:
        return RC_EUNAVAIL;
    default:
        return RC_EPROTO;
    }
}
