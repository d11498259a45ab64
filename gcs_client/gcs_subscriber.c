/*
 * GCS subscriber: Ray's long-poll subscription from the subscriber's side.
 *
 * One poll is always out (GcsSubscriberPoll, acknowledging everything processed so far);
 * the GCS holds it until there is news. Messages are delivered in sequence order, each
 * once: those at or below the last processed sequence number are skipped. When a reply
 * names a new publisher the GCS has restarted: sequence numbers start over, the
 * subscriptions it lost are sent again (GcsSubscriberCommandBatch) and the owner is told
 * (on_subscribed) so it can re-read state it may have missed. Errors are retried after a
 * short pause; polls carry a deadline so a silently vanished GCS is noticed too.
 *
 * Memory: the subscriber is reference-counted by its calls in flight and its timer, so
 * gcs_subscriber_destroy can be called at any time.
 *
 * Loop thread only.
 */
#include <string.h>

#include "gcs_client.h"
#include "rc_alloc.h"
#include "rc_log.h"

enum { GCS__POLL_TIMEOUT_MS = 30000, GCS__RETRY_MS = 300, GCS__COMMAND_TIMEOUT_MS = 10000 };

typedef struct gcs__subscription {
    Ray__Rpc__ChannelType channel;
    uint8_t *key; /* NULL: all keys */
    size_t klen;
} gcs__subscription;

struct gcs_subscriber {
    gcs_client *gc;
    gcs_subscriber_callbacks cbs;
    uint8_t id[RC_UNIQUE_ID_SIZE];
    gcs__subscription *subs;
    size_t n_subs, cap_subs;
    uint8_t publisher_id[64];
    size_t publisher_id_len;
    int64_t max_processed;
    int polling;
    int resubscribe_pending; /* a full CommandBatch must be (re)sent */
    int commands_in_flight;
    uv_timer_t retry;
    int refs;
    int destroyed;
};

static void gcs__sub_unref(gcs_subscriber *s)
{
    if (--s->refs > 0)
        return;
    for (size_t i = 0; i < s->n_subs; i++)
        rc_free(s->subs[i].key);
    rc_free(s->subs);
    rc_free(s);
}

static void gcs__sub_timer_closed(uv_handle_t *h)
{
    gcs__sub_unref(h->data);
}

static void gcs__poll(gcs_subscriber *s);
static void gcs__send_commands(gcs_subscriber *s, size_t first, size_t n);

static void gcs__retry_fired(uv_timer_t *t)
{
    gcs_subscriber *s = t->data;
    if (s->destroyed)
        return;
    if (s->resubscribe_pending && !s->commands_in_flight)
        gcs__send_commands(s, 0, s->n_subs);
    if (!s->polling)
        gcs__poll(s);
}

static void gcs__schedule_retry(gcs_subscriber *s)
{
    if (!s->destroyed && !uv_is_active((uv_handle_t *)&s->retry))
        uv_timer_start(&s->retry, gcs__retry_fired, GCS__RETRY_MS, 0);
}

static void gcs__commands_done(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    gcs_subscriber *s = arg;
    s->commands_in_flight--;
    int ok = st->code == GRPC_STATUS_OK && gcs_reply_status(reply, NULL) == GCS_STATUS_OK;
    rpc_msg_free(reply);
    if (s->destroyed) {
        gcs__sub_unref(s);
        return;
    }
    if (!ok) {
        s->resubscribe_pending = 1;
        gcs__schedule_retry(s);
    } else if (s->cbs.on_subscribed) {
        s->cbs.on_subscribed(s->cbs.arg);
    }
    gcs__sub_unref(s);
}

/* Sends subscribe commands for subs[first, first + n). */
static void gcs__send_commands(gcs_subscriber *s, size_t first, size_t n)
{
    if (s->destroyed || n == 0)
        return;
    if (first == 0 && n == s->n_subs)
        s->resubscribe_pending = 0;
    Ray__Rpc__GcsSubscriberCommandBatchRequest req = RAY__RPC__GCS_SUBSCRIBER_COMMAND_BATCH_REQUEST__INIT;
    Ray__Rpc__Command *cmds = rc_calloc(n, sizeof(*cmds));
    Ray__Rpc__Command **ptrs = rc_calloc(n, sizeof(*ptrs));
    Ray__Rpc__SubMessage sub = RAY__RPC__SUB_MESSAGE__INIT;
    for (size_t i = 0; i < n; i++) {
        const gcs__subscription *e = &s->subs[first + i];
        ray__rpc__command__init(&cmds[i]);
        cmds[i].channel_type = e->channel;
        cmds[i].key_id.data = e->key;
        cmds[i].key_id.len = e->klen;
        cmds[i].command_message_one_of_case = RAY__RPC__COMMAND__COMMAND_MESSAGE_ONE_OF_SUBSCRIBE_MESSAGE;
        cmds[i].subscribe_message = &sub;
        ptrs[i] = &cmds[i];
    }
    req.subscriber_id.data = s->id;
    req.subscriber_id.len = sizeof(s->id);
    req.commands = ptrs;
    req.n_commands = n;
    int rc = rpc_client_call(gcs_client_rpc(s->gc), &ray__rpc__internal_pub_sub_gcs_service__descriptor,
                             "GcsSubscriberCommandBatch", &req.base, GCS__COMMAND_TIMEOUT_MS,
                             gcs__commands_done, s);
    rc_free(ptrs);
    rc_free(cmds);
    if (rc < 0) {
        s->resubscribe_pending = 1;
        gcs__schedule_retry(s);
        return;
    }
    s->commands_in_flight++;
    s->refs++;
}

static void gcs__polled(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    gcs_subscriber *s = arg;
    s->polling = 0;
    if (s->destroyed) {
        rpc_msg_free(reply);
        gcs__sub_unref(s);
        return;
    }
    if (st->code != GRPC_STATUS_OK) {
        rpc_msg_free(reply);
        if (st->code == GRPC_STATUS_DEADLINE_EXCEEDED)
            gcs__poll(s); /* nothing happened for a while: ask again */
        else
            gcs__schedule_retry(s);
        gcs__sub_unref(s);
        return;
    }
    Ray__Rpc__GcsSubscriberPollReply *r = (Ray__Rpc__GcsSubscriberPollReply *)reply;
    size_t plen = r->publisher_id.len < sizeof(s->publisher_id) ? r->publisher_id.len : sizeof(s->publisher_id);
    int new_publisher = plen != s->publisher_id_len || memcmp(r->publisher_id.data, s->publisher_id, plen) != 0;
    if (new_publisher) {
        int restarted = s->publisher_id_len > 0;
        memcpy(s->publisher_id, r->publisher_id.data, plen);
        s->publisher_id_len = plen;
        s->max_processed = 0;
        if (restarted) {
            RC_INFO("gcs subscriber: the GCS restarted; subscribing again");
            gcs__send_commands(s, 0, s->n_subs);
        }
    }
    for (size_t i = 0; i < r->n_pub_messages && !s->destroyed; i++) {
        const Ray__Rpc__PubMessage *m = r->pub_messages[i];
        if (m->sequence_id <= s->max_processed)
            continue;
        s->max_processed = m->sequence_id;
        if (s->cbs.on_message)
            s->cbs.on_message(m, s->cbs.arg);
    }
    rpc_msg_free(reply);
    if (!s->destroyed)
        gcs__poll(s);
    gcs__sub_unref(s);
}

static void gcs__poll(gcs_subscriber *s)
{
    if (s->polling || s->destroyed || s->n_subs == 0)
        return;
    Ray__Rpc__GcsSubscriberPollRequest req = RAY__RPC__GCS_SUBSCRIBER_POLL_REQUEST__INIT;
    req.subscriber_id.data = s->id;
    req.subscriber_id.len = sizeof(s->id);
    req.max_processed_sequence_id = s->max_processed;
    req.publisher_id.data = s->publisher_id;
    req.publisher_id.len = s->publisher_id_len;
    int rc = rpc_client_call(gcs_client_rpc(s->gc), &ray__rpc__internal_pub_sub_gcs_service__descriptor,
                             "GcsSubscriberPoll", &req.base, GCS__POLL_TIMEOUT_MS, gcs__polled, s);
    if (rc < 0) {
        gcs__schedule_retry(s);
        return;
    }
    s->polling = 1;
    s->refs++;
}

gcs_subscriber *gcs_subscriber_new(gcs_client *gc, const gcs_subscriber_callbacks *cbs)
{
    gcs_subscriber *s = RC_NEW(gcs_subscriber);
    s->gc = gc;
    if (cbs)
        s->cbs = *cbs;
    rc_id_random(s->id, sizeof(s->id));
    s->refs = 1; /* the timer */
    uv_timer_init(gcs_client_loop(gc), &s->retry);
    s->retry.data = s;
    return s;
}

void gcs_subscriber_subscribe(gcs_subscriber *s, Ray__Rpc__ChannelType channel, const void *key,
                              size_t klen)
{
    if (s->n_subs == s->cap_subs) {
        s->cap_subs = s->cap_subs ? s->cap_subs * 2 : 4;
        s->subs = rc_realloc(s->subs, s->cap_subs * sizeof(*s->subs));
    }
    gcs__subscription *e = &s->subs[s->n_subs++];
    e->channel = channel;
    e->key = key && klen ? rc_memdup(key, klen) : NULL;
    e->klen = key ? klen : 0;
    gcs__send_commands(s, s->n_subs - 1, 1);
    gcs__poll(s);
}

void gcs_subscriber_resubscribe(gcs_subscriber *s)
{
    if (!s->commands_in_flight)
        gcs__send_commands(s, 0, s->n_subs);
    else
        s->resubscribe_pending = 1;
}

void gcs_subscriber_destroy(gcs_subscriber *s)
{
    if (!s || s->destroyed)
        return;
    s->destroyed = 1;
    uv_timer_stop(&s->retry);
    uv_close((uv_handle_t *)&s->retry, gcs__sub_timer_closed);
}
