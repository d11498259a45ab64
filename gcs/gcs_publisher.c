/*
 * GCS publisher: Ray's long-poll pub/sub (InternalPubSubGcsService).
 *
 * A subscriber (identified by the bytes it chooses) subscribes to channels, for all keys or
 * for given keys (GcsSubscriberCommandBatch), and polls (GcsSubscriberPoll). Every published
 * message gets the next sequence number of this publisher and is appended to the mailbox of
 * each subscriber that wants it. A poll first drops the messages the subscriber has
 * acknowledged (sequence ≤ max_processed_sequence_id), then answers with the rest, or, if
 * none are left, is held until something is published. Messages are shared between
 * mailboxes (reference-counted), so a node event fanned out to 1,000 raylets is one copy.
 *
 * The publisher ID is new at every GCS start. A poll naming an older publisher comes from
 * before a restart: its acknowledgements mean nothing here, so nothing is dropped and the
 * reply carries the new ID (the subscriber then starts over, as Ray's does).
 *
 * Memory stays bounded: a mailbox keeps at most publisher_max_buffered_messages (oldest
 * dropped first) and a subscriber that has not polled for subscriber_timeout_ms is removed.
 *
 * Managers inside the GCS may listen to a channel too (gcs_publisher_listen): a finished
 * job reaches the actor and placement-group managers this way, after it was stored and
 * published, as Ray's job manager calls its job-finished listeners. Listeners hear only
 * what the GCS publishes itself, never messages clients send with GcsPublish.
 *
 * Loop thread only.
 */
#include <string.h>

#include "gcs_int.h"
#include "rc_alloc.h"
#include "rc_config.h"
#include "rc_log.h"
#include "rc_time.h"

enum { GCS__MAX_CHANNELS = 32, GCS__MAX_PER_REPLY = 1000, GCS__MAX_LISTENERS = 8 };

typedef struct gcs__pubmsg {
    int refs;
    Ray__Rpc__PubMessage *msg; /* owned */
} gcs__pubmsg;

typedef struct gcs__sub {
    gcs_publisher *pub;
    uint8_t *id;
    size_t id_len;
    uint32_t all_keys_mask; /* bit c: every key of channel c */
    rc_map keys;            /* channel byte + key -> (void *)1 */
    gcs__pubmsg **mailbox;  /* [head, head + len) of a circular array of cap entries */
    size_t head, len, cap;
    rpc_call *held;
    int64_t last_active_ms;
} gcs__sub;

struct gcs_publisher {
    gcs_server *gcs;
    rc_map subs; /* subscriber id -> gcs__sub */
    int64_t seq;
    uint8_t publisher_id[RC_UNIQUE_ID_SIZE];
    uv_timer_t sweep;
    int stopped;
    struct {
        Ray__Rpc__ChannelType channel;
        gcs_listener_fn fn;
        void *arg;
    } listeners[GCS__MAX_LISTENERS];
    size_t n_listeners;
};

static void gcs__pubmsg_unref(gcs__pubmsg *m)
{
    if (--m->refs > 0)
        return;
    rpc_msg_free(&m->msg->base);
    rc_free(m);
}

static gcs__pubmsg *gcs__mailbox_at(const gcs__sub *s, size_t i)
{
    return s->mailbox[(s->head + i) % s->cap];
}

static void gcs__mailbox_pop(gcs__sub *s)
{
    gcs__pubmsg_unref(s->mailbox[s->head]);
    s->head = (s->head + 1) % s->cap;
    s->len--;
}

static void gcs__mailbox_push(gcs__sub *s, gcs__pubmsg *m)
{
    int64_t max = rc_cfg.publisher_max_buffered_messages > 0 ? rc_cfg.publisher_max_buffered_messages : 1;
    if ((int64_t)s->len >= max)
        gcs__mailbox_pop(s); /* a subscriber that does not keep up loses the oldest */
    if (s->len == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        gcs__pubmsg **box = rc_malloc(cap * sizeof(*box));
        for (size_t i = 0; i < s->len; i++)
            box[i] = gcs__mailbox_at(s, i);
        rc_free(s->mailbox);
        s->mailbox = box;
        s->head = 0;
        s->cap = cap;
    }
    s->mailbox[(s->head + s->len) % s->cap] = m;
    s->len++;
    m->refs++;
}

static void gcs__sub_free(void *p)
{
    gcs__sub *s = p;
    while (s->len)
        gcs__mailbox_pop(s);
    rc_free(s->mailbox);
    rc_map_destroy(&s->keys, NULL);
    rc_free(s->id);
    rc_free(s);
}

static gcs__sub *gcs__sub_get(gcs_publisher *pub, const uint8_t *id, size_t len, int create)
{
    gcs__sub *s = rc_map_get(&pub->subs, id, len);
    if (s || !create)
        return s;
    s = RC_NEW(gcs__sub);
    s->pub = pub;
    s->id = rc_memdup(id, len);
    s->id_len = len;
    rc_map_init(&s->keys);
    rc_map_put(&pub->subs, id, len, s);
    return s;
}

static int gcs__sub_wants(const gcs__sub *s, const Ray__Rpc__PubMessage *m)
{
    unsigned ch = (unsigned)m->channel_type;
    if (ch < GCS__MAX_CHANNELS && (s->all_keys_mask & (1u << ch)))
        return 1;
    if (!rc_map_size(&s->keys))
        return 0;
    uint8_t key[1 + 256];
    if (m->key_id.len > 256)
        return 0;
    key[0] = (uint8_t)ch;
    memcpy(key + 1, m->key_id.data, m->key_id.len);
    return rc_map_get(&s->keys, key, 1 + m->key_id.len) != NULL;
}

/* Answers the held or given poll with the mailbox contents (up to a cap). */
static void gcs__answer_poll(gcs_publisher *pub, gcs__sub *s, rpc_call *call)
{
    Ray__Rpc__GcsSubscriberPollReply reply = RAY__RPC__GCS_SUBSCRIBER_POLL_REPLY__INIT;
    Ray__Rpc__PubMessage *msgs[GCS__MAX_PER_REPLY];
    size_t n = s->len < GCS__MAX_PER_REPLY ? s->len : GCS__MAX_PER_REPLY;
    for (size_t i = 0; i < n; i++)
        msgs[i] = gcs__mailbox_at(s, i)->msg;
    reply.pub_messages = msgs;
    reply.n_pub_messages = n;
    reply.publisher_id.data = pub->publisher_id;
    reply.publisher_id.len = sizeof(pub->publisher_id);
    gcs__reply_ok(call, &reply.base);
    s->last_active_ms = rc_mono_ms();
}

static void gcs__on_poll_cancelled(rpc_call *call, void *arg)
{
    gcs__sub *s = arg;
    if (s->held == call)
        s->held = NULL;
    rpc_reply_status(call, GRPC_STATUS_CANCELLED, "poll cancelled");
}

void gcs_publish(gcs_publisher *pub, const Ray__Rpc__PubMessage *msg)
{
    gcs__pubmsg *m = RC_NEW(gcs__pubmsg);
    m->msg = (Ray__Rpc__PubMessage *)rpc_msg_dup(&msg->base);
    m->msg->sequence_id = ++pub->seq;
    m->refs = 1;
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (rc_map_next(&pub->subs, &it, NULL, NULL, &v)) {
        gcs__sub *s = v;
        if (!gcs__sub_wants(s, m->msg))
            continue;
        gcs__mailbox_push(s, m);
        if (s->held) {
            rpc_call *call = s->held;
            s->held = NULL;
            rpc_call_on_cancel(call, NULL, NULL);
            gcs__answer_poll(pub, s, call);
        }
    }
    gcs__pubmsg_unref(m);
}

/* Listeners hear what the GCS itself publishes, never what a client sends to GcsPublish. */
static void gcs__publish_internal(gcs_publisher *pub, const Ray__Rpc__PubMessage *msg)
{
    gcs_publish(pub, msg);
    for (size_t i = 0; i < pub->n_listeners; i++)
        if (pub->listeners[i].channel == msg->channel_type)
            pub->listeners[i].fn(msg, pub->listeners[i].arg);
}

void gcs_publisher_listen(gcs_publisher *pub, Ray__Rpc__ChannelType channel, gcs_listener_fn fn, void *arg)
{
    if (pub->n_listeners == GCS__MAX_LISTENERS) {
        RC_ERROR("gcs: too many publisher listeners; one is ignored");
        return;
    }
    pub->listeners[pub->n_listeners].channel = channel;
    pub->listeners[pub->n_listeners].fn = fn;
    pub->listeners[pub->n_listeners].arg = arg;
    pub->n_listeners++;
}

void gcs_publish_node(gcs_publisher *pub, const Ray__Rpc__GcsNodeInfo *node)
{
    Ray__Rpc__PubMessage m = RAY__RPC__PUB_MESSAGE__INIT;
    m.channel_type = RAY__RPC__CHANNEL_TYPE__GCS_NODE_INFO_CHANNEL;
    m.key_id = node->node_id;
    m.inner_message_case = RAY__RPC__PUB_MESSAGE__INNER_MESSAGE_NODE_INFO_MESSAGE;
    m.node_info_message = (Ray__Rpc__GcsNodeInfo *)node;
    gcs__publish_internal(pub, &m);
}

void gcs_publish_job(gcs_publisher *pub, const Ray__Rpc__JobTableData *job)
{
    Ray__Rpc__PubMessage m = RAY__RPC__PUB_MESSAGE__INIT;
    m.channel_type = RAY__RPC__CHANNEL_TYPE__GCS_JOB_CHANNEL;
    m.key_id = job->job_id;
    m.inner_message_case = RAY__RPC__PUB_MESSAGE__INNER_MESSAGE_JOB_MESSAGE;
    m.job_message = (Ray__Rpc__JobTableData *)job;
    gcs__publish_internal(pub, &m);
}

void gcs_publish_actor(gcs_publisher *pub, const Ray__Rpc__ActorTableData *actor)
{
    Ray__Rpc__PubMessage m = RAY__RPC__PUB_MESSAGE__INIT;
    m.channel_type = RAY__RPC__CHANNEL_TYPE__GCS_ACTOR_CHANNEL;
    m.key_id = actor->actor_id;
    m.inner_message_case = RAY__RPC__PUB_MESSAGE__INNER_MESSAGE_ACTOR_MESSAGE;
    m.actor_message = (Ray__Rpc__ActorTableData *)actor;
    gcs__publish_internal(pub, &m);
}

size_t gcs_publisher_num_subscribers(const gcs_publisher *pub)
{
    return rc_map_size(&pub->subs);
}

/* ---- handlers ----------------------------------------------------------------------- */

static void handle_poll(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_publisher *pub = arg;
    const Ray__Rpc__GcsSubscriberPollRequest *req = (const void *)request;
    Ray__Rpc__GcsSubscriberPollReply reply = RAY__RPC__GCS_SUBSCRIBER_POLL_REPLY__INIT;
    if (!req->subscriber_id.len || req->subscriber_id.len > 64)
        return gcs__reply(call, &reply.base, GCS_STATUS_INVALID_ARGUMENT,
                          "subscriber_id must hold 1 to 64 bytes");
    gcs__sub *s = gcs__sub_get(pub, req->subscriber_id.data, req->subscriber_id.len, 1);
    s->last_active_ms = rc_mono_ms();
    int same_publisher = req->publisher_id.len == 0 ||
                         (req->publisher_id.len == sizeof(pub->publisher_id) &&
                          memcmp(req->publisher_id.data, pub->publisher_id, sizeof(pub->publisher_id)) == 0);
    if (same_publisher)
        while (s->len && gcs__mailbox_at(s, 0)->msg->sequence_id <= req->max_processed_sequence_id)
            gcs__mailbox_pop(s);
    if (s->held) { /* a newer poll replaces the one we hold */
        rpc_call *old = s->held;
        s->held = NULL;
        rpc_call_on_cancel(old, NULL, NULL);
        gcs__answer_poll(pub, s, old);
    }
    if (s->len || !same_publisher || pub->stopped) {
        gcs__answer_poll(pub, s, call);
        return;
    }
    s->held = call;
    rpc_call_on_cancel(call, gcs__on_poll_cancelled, s);
}

static void handle_command_batch(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_publisher *pub = arg;
    const Ray__Rpc__GcsSubscriberCommandBatchRequest *req = (const void *)request;
    Ray__Rpc__GcsSubscriberCommandBatchReply reply = RAY__RPC__GCS_SUBSCRIBER_COMMAND_BATCH_REPLY__INIT;
    if (!req->subscriber_id.len || req->subscriber_id.len > 64)
        return gcs__reply(call, &reply.base, GCS_STATUS_INVALID_ARGUMENT,
                          "subscriber_id must hold 1 to 64 bytes");
    for (size_t i = 0; i < req->n_commands; i++) {
        const Ray__Rpc__Command *c = req->commands[i];
        if ((unsigned)c->channel_type >= GCS__MAX_CHANNELS || c->key_id.len > 256)
            return gcs__reply(call, &reply.base, GCS_STATUS_INVALID_ARGUMENT,
                              "command %zu: bad channel %d or key of %zu bytes", i,
                              (int)c->channel_type, c->key_id.len);
    }
    gcs__sub *s = gcs__sub_get(pub, req->subscriber_id.data, req->subscriber_id.len, 1);
    s->last_active_ms = rc_mono_ms();
    for (size_t i = 0; i < req->n_commands; i++) {
        const Ray__Rpc__Command *c = req->commands[i];
        unsigned ch = (unsigned)c->channel_type;
        int subscribe = c->command_message_one_of_case ==
                        RAY__RPC__COMMAND__COMMAND_MESSAGE_ONE_OF_SUBSCRIBE_MESSAGE;
        if (!c->key_id.len) {
            if (subscribe)
                s->all_keys_mask |= 1u << ch;
            else
                s->all_keys_mask &= ~(1u << ch);
            continue;
        }
        uint8_t key[1 + 256];
        key[0] = (uint8_t)ch;
        memcpy(key + 1, c->key_id.data, c->key_id.len);
        if (subscribe)
            rc_map_put(&s->keys, key, 1 + c->key_id.len, (void *)1);
        else
            rc_map_remove(&s->keys, key, 1 + c->key_id.len);
    }
    gcs__reply_ok(call, &reply.base);
}

static void handle_publish(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_publisher *pub = arg;
    const Ray__Rpc__GcsPublishRequest *req = (const void *)request;
    Ray__Rpc__GcsPublishReply reply = RAY__RPC__GCS_PUBLISH_REPLY__INIT;
    for (size_t i = 0; i < req->n_pub_messages; i++)
        gcs_publish(pub, req->pub_messages[i]);
    gcs__reply_ok(call, &reply.base);
}

const rpc_method_handler gcs_publisher_handlers[] = {
    {"GcsPublish", handle_publish},
    {"GcsSubscriberPoll", handle_poll},
    {"GcsSubscriberCommandBatch", handle_command_batch},
    {NULL, NULL},
};

/* ---- lifetime ----------------------------------------------------------------------- */

static void gcs__sweep(uv_timer_t *t)
{
    gcs_publisher *pub = t->data;
    int64_t now = rc_mono_ms();
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (rc_map_next(&pub->subs, &it, NULL, NULL, &v)) {
        gcs__sub *s = v;
        if (s->held || now - s->last_active_ms < rc_cfg.subscriber_timeout_ms)
            continue;
        RC_INFO("gcs: dropping subscriber that has not polled for %lld ms",
                (long long)(now - s->last_active_ms));
        rc_map_iter_remove(&pub->subs, &it);
        gcs__sub_free(s);
    }
}

gcs_publisher *gcs_publisher_new(gcs_server *gcs)
{
    gcs_publisher *pub = RC_NEW(gcs_publisher);
    pub->gcs = gcs;
    rc_map_init(&pub->subs);
    rc_id_random(pub->publisher_id, sizeof(pub->publisher_id));
    uv_timer_init(gcs->loop, &pub->sweep);
    pub->sweep.data = pub;
    int64_t period = rc_cfg.subscriber_timeout_ms / 4;
    if (period < 100)
        period = 100;
    uv_timer_start(&pub->sweep, gcs__sweep, (uint64_t)period, (uint64_t)period);
    uv_unref((uv_handle_t *)&pub->sweep);
    return pub;
}

void gcs_publisher_shutdown(gcs_publisher *pub)
{
    if (!pub || pub->stopped)
        return;
    pub->stopped = 1;
    uv_timer_stop(&pub->sweep);
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (rc_map_next(&pub->subs, &it, NULL, NULL, &v)) {
        gcs__sub *s = v;
        if (!s->held)
            continue;
        rpc_call *call = s->held;
        s->held = NULL;
        rpc_call_on_cancel(call, NULL, NULL);
        gcs__answer_poll(pub, s, call);
    }
}

static void gcs__publisher_closed(uv_handle_t *h)
{
    rc_free(h->data);
}

void gcs_publisher_free(gcs_publisher *pub)
{
    if (!pub)
        return;
    gcs_publisher_shutdown(pub);
    rc_map_destroy(&pub->subs, gcs__sub_free);
    uv_close((uv_handle_t *)&pub->sweep, gcs__publisher_closed);
}
