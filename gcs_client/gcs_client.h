/*
 * GCS client: what every process that talks to the GCS needs (raylets, drivers, the rayc
 * command, rayc-bench).
 *
 * A gcs_client is an rpc_client to the GCS plus the cluster identity: gcs_client_connect
 * asks GetClusterId (retrying while the GCS is unreachable, up to a deadline) and from then
 * on every call carries the "ray_cluster_id" metadata, as Ray's clients do. Replies of GCS
 * methods carry Ray's application status in their GcsStatus field; gcs_reply_status reads
 * it from any reply.
 *
 * gcs_subscriber runs Ray's long-poll subscription (GcsSubscriberCommandBatch +
 * GcsSubscriberPoll) and survives GCS restarts: when the publisher changes it subscribes
 * again and tells its owner, who should then re-read the state it follows.
 *
 * Loop thread only.
 */
#ifndef RAYC_GCS_GCS_CLIENT_H
#define RAYC_GCS_GCS_CLIENT_H

#include <stdint.h>

#include "gcs_service.pb-c.h"
#include "gcs_status.h"
#include "pubsub.pb-c.h"
#include "rc_ids.h"
#include "rpc.h"

typedef struct gcs_client gcs_client;

/* Creates a client for the GCS at address ("host:port"). Free with gcs_client_destroy. */
int gcs_client_create(rpc_ctx *ctx, const char *address, gcs_client **out);
void gcs_client_destroy(gcs_client *gc);
rpc_client *gcs_client_rpc(gcs_client *gc);
const char *gcs_client_address(const gcs_client *gc);
uv_loop_t *gcs_client_loop(const gcs_client *gc);

/* Runs when connect finishes: rc 0 (cluster ID known), RC_ETIMEDOUT (unreachable until the
 * deadline) or another RC_E*; message says what happened. */
typedef void (*gcs_connect_cb)(gcs_client *gc, int rc, const char *message, void *arg);
/* Asks the GCS for its cluster ID, retrying every retry_ms while it is unreachable, until
 * timeout_ms has passed. On success the ID is sent with every later call. */
int gcs_client_connect(gcs_client *gc, int64_t timeout_ms, gcs_connect_cb cb, void *arg);
/* Synchronous form (tools): runs the loop until done. Returns 0 or RC_E*; err gets the
 * reason. Not from inside a loop callback. */
int gcs_client_connect_sync(gcs_client *gc, int64_t timeout_ms, char *err, size_t errlen);
/* The cluster ID (RC_CLUSTER_ID_SIZE bytes) once connected, else NULL. */
const uint8_t *gcs_client_cluster_id(const gcs_client *gc);
/* Forgets the cluster ID and sends none until the next connect. */
void gcs_client_reset_cluster_id(gcs_client *gc);

/* The GcsStatus of a GCS reply: its code (GCS_STATUS_OK when the field is absent) and, if
 * message is not NULL, its text ("" if none). */
int gcs_reply_status(const ProtobufCMessage *reply, const char **message);

/* ---- subscriber --------------------------------------------------------------------- */

typedef struct gcs_subscriber gcs_subscriber;

typedef struct gcs_subscriber_callbacks {
    /* A message on a subscribed channel; msg is valid during the call only. */
    void (*on_message)(const Ray__Rpc__PubMessage *msg, void *arg);
    /* The subscription was (re)established with a publisher: after a GCS restart messages
     * may have been missed, so re-read what you follow. */
    void (*on_subscribed)(void *arg);
    void *arg;
} gcs_subscriber_callbacks;

/* Creates a subscriber on gc (which must outlive it). Nothing happens until subscribe. */
gcs_subscriber *gcs_subscriber_new(gcs_client *gc, const gcs_subscriber_callbacks *cbs);
/* Subscribes to channel, for one key or (key NULL) all keys. Starts polling. */
void gcs_subscriber_subscribe(gcs_subscriber *sub, Ray__Rpc__ChannelType channel,
                              const void *key, size_t klen);
/* Subscribes again to everything (e.g. after NotifyGCSRestart). */
void gcs_subscriber_resubscribe(gcs_subscriber *sub);
/* Stops polling; the subscriber is freed once its calls in flight have ended. */
void gcs_subscriber_destroy(gcs_subscriber *sub);

/* The sentence an actor's death cause carries ("" when none); any thread. */
const char *gcs_actor_death_text(const Ray__Rpc__ActorDeathCause *dc);

#endif
