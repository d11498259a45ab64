/*
 * GCS node manager: the node table and NodeInfoGcsService.
 *
 * Nodes are alive or dead. Registration and death are written to storage (table NODE,
 * key = node ID, value = GcsNodeInfo) before they are answered or published, so a
 * restarted GCS reloads exactly the nodes it had. A node dies when its raylet unregisters
 * (EXPECTED_TERMINATION, or the reason the raylet gives), when health checks fail
 * (UNEXPECTED_TERMINATION), or when drained; every death is published on the node channel
 * with its reason. A dead node ID cannot register again: the raylet must start as a new
 * node. Dead records are kept for `rayc list nodes`, at most maximum_gcs_dead_node_cached_count
 * of them (the oldest go first, from memory and storage), so a long-lived cluster with
 * churning market hosts keeps bounded memory. A node that joined with a join token gets that
 * token's labels at registration, over the ones it sent (gcs_auth_admit_node), and a node the
 * admin revoked cannot register.
 *
 * Loop thread only.
 */
#include <stdlib.h>
#include <string.h>

#include "gcs_int.h"
#include "health.pb-c.h"
#include "rc_alloc.h"
#include "rc_buf.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_log.h"
#include "rc_time.h"

typedef struct gcs__node {
    Ray__Rpc__GcsNodeInfo *info; /* owned */
    rpc_client *raylet;          /* alive nodes: created on first use */
    int dying;                   /* a death is being stored */
} gcs__node;

struct gcs_node_manager {
    gcs_server *gcs;
    rc_map alive; /* node id -> gcs__node */
    rc_map dead;  /* node id -> gcs__node */
    /* Dead node IDs, oldest first (a circular queue), for eviction. */
    uint8_t (*dead_order)[RC_NODE_ID_SIZE];
    size_t dead_head, dead_len, dead_cap;
    gcs_load_cb load_cb;
    int stopped;
};

static char *gcs__hex(const ProtobufCBinaryData *id, char *buf)
{
    size_t n = id->len < RC_NODE_ID_SIZE ? id->len : RC_NODE_ID_SIZE;
    return rc_id_hex(id->data, n, buf);
}

static void gcs__node_free(void *p)
{
    gcs__node *n = p;
    if (n->raylet)
        rpc_client_destroy(n->raylet);
    rpc_msg_free(&n->info->base);
    rc_free(n);
}

static void gcs__dead_push(gcs_node_manager *nm, const uint8_t *id)
{
    if (nm->dead_len == nm->dead_cap) {
        size_t cap = nm->dead_cap ? nm->dead_cap * 2 : 64;
        uint8_t(*q)[RC_NODE_ID_SIZE] = rc_malloc(cap * RC_NODE_ID_SIZE);
        for (size_t i = 0; i < nm->dead_len; i++)
            memcpy(q[i], nm->dead_order[(nm->dead_head + i) % nm->dead_cap], RC_NODE_ID_SIZE);
        rc_free(nm->dead_order);
        nm->dead_order = q;
        nm->dead_head = 0;
        nm->dead_cap = cap;
    }
    memcpy(nm->dead_order[(nm->dead_head + nm->dead_len) % nm->dead_cap], id, RC_NODE_ID_SIZE);
    nm->dead_len++;
}

static void gcs__evict_done(int rc, int64_t n, void *arg)
{
    (void)n;
    (void)arg;
    if (rc < 0 && rc != RC_ECANCELED)
        RC_WARN("gcs: cannot delete an evicted dead node record: %s", rc_strerror(rc));
}

/* Keeps at most maximum_gcs_dead_node_cached_count dead records. */
static void gcs__evict_dead(gcs_node_manager *nm)
{
    int64_t max = rc_cfg.maximum_gcs_dead_node_cached_count;
    while (nm->dead_len > 0 && (int64_t)rc_map_size(&nm->dead) > (max < 0 ? 0 : max)) {
        uint8_t *id = nm->dead_order[nm->dead_head];
        nm->dead_head = (nm->dead_head + 1) % nm->dead_cap;
        nm->dead_len--;
        gcs__node *n = rc_map_remove(&nm->dead, id, RC_NODE_ID_SIZE);
        if (!n)
            continue;
        gcs__node_free(n);
        const void *keys[1] = {id};
        size_t klens[1] = {RC_NODE_ID_SIZE};
        gcs_store *st = nm->gcs->store;
        if (st)
            st->ops->del(st, GCS_TABLE_NODE, keys, klens, 1, gcs__evict_done, NULL);
    }
}

const Ray__Rpc__GcsNodeInfo *gcs_node_get_alive(const gcs_node_manager *nm, const uint8_t *id)
{
    gcs__node *n = rc_map_get(&nm->alive, id, RC_NODE_ID_SIZE);
    return n ? n->info : NULL;
}

size_t gcs_node_num_alive(const gcs_node_manager *nm)
{
    return rc_map_size(&nm->alive);
}

void gcs_node_foreach_alive(const gcs_node_manager *nm,
                            void (*fn)(const Ray__Rpc__GcsNodeInfo *node, void *arg), void *arg)
{
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (rc_map_next(&nm->alive, &it, NULL, NULL, &v))
        fn(((gcs__node *)v)->info, arg);
}

rpc_client *gcs_node_raylet_client(gcs_node_manager *nm, const uint8_t *id)
{
    gcs__node *n = rc_map_get(&nm->alive, id, RC_NODE_ID_SIZE);
    if (!n || nm->stopped)
        return NULL;
    if (!n->raylet) {
        char target[300];
        snprintf(target, sizeof(target), "%s:%d", n->info->node_manager_address,
                 n->info->node_manager_port);
        /* Only the raylet of this very node may answer there: its certificate must name
         * it, so a node cannot register the address of another node's raylet and pass its
         * health checks (or take its leases). */
        char peer[8 + RC_ID_HEX_MAX] = "node:";
        rc_id_hex(id, RC_NODE_ID_SIZE, peer + 5);
        rpc_client_options opts = {.peer_name = peer};
        if (rpc_client_create(nm->gcs->rpc, target, &opts, &n->raylet) < 0)
            return NULL;
        rpc_client_set_metadata(n->raylet, "ray_cluster_id", nm->gcs->cluster_id_hex);
    }
    return n->raylet;
}

/* ---- registration ------------------------------------------------------------------- */

typedef struct gcs__node_op {
    gcs_node_manager *nm;
    rpc_call *call; /* NULL when no caller waits (health checks) */
    Ray__Rpc__GcsNodeInfo *info; /* owned until it enters a table */
    void (*done)(void *arg);     /* deaths: runs once stored and published (may be NULL) */
    void *done_arg;
} gcs__node_op;

static void gcs__registered(int rc, int64_t added, void *arg)
{
    gcs__node_op *op = arg;
    gcs_node_manager *nm = op->nm;
    Ray__Rpc__RegisterNodeReply reply = RAY__RPC__REGISTER_NODE_REPLY__INIT;
    (void)added;
    if (rc < 0) {
        gcs__reply(op->call, &reply.base, GCS_STATUS_IO_ERROR,
                   "cannot store the node record: %s", rc_strerror(rc));
        rpc_msg_free(&op->info->base);
        rc_free(op);
        return;
    }
    const uint8_t *id = op->info->node_id.data;
    gcs__node *n = rc_map_get(&nm->alive, id, RC_NODE_ID_SIZE);
    if (n) { /* a raylet registering again (after a GCS restart): refresh its record */
        rpc_msg_free(&n->info->base);
        n->info = op->info;
    } else {
        n = RC_NEW(gcs__node);
        n->info = op->info;
        rc_map_put(&nm->alive, id, RC_NODE_ID_SIZE, n);
        gcs_health_add_node(nm->gcs->health, id);
    }
    char hex[RC_ID_HEX_MAX];
    RC_INFO("gcs: node %s registered at %s:%d (%zu alive)", gcs__hex(&n->info->node_id, hex),
            n->info->node_manager_address, n->info->node_manager_port, rc_map_size(&nm->alive));
    gcs_resource_on_node_added(nm->gcs->res, n->info);
    gcs_publish_node(nm->gcs->pub, n->info);
    gcs__reply_ok(op->call, &reply.base);
    rc_free(op);
}

static void handle_register_node(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_node_manager *nm = arg;
    const Ray__Rpc__RegisterNodeRequest *req = (const void *)request;
    Ray__Rpc__RegisterNodeReply reply = RAY__RPC__REGISTER_NODE_REPLY__INIT;
    const Ray__Rpc__GcsNodeInfo *info = req->node_info;
    if (!info || info->node_id.len != RC_NODE_ID_SIZE)
        return gcs__reply(call, &reply.base, GCS_STATUS_INVALID_ARGUMENT,
                          "node_info.node_id must hold %d bytes", RC_NODE_ID_SIZE);
    if (!info->node_manager_address || !info->node_manager_address[0] ||
        info->node_manager_port <= 0 || info->node_manager_port > 65535)
        return gcs__reply(call, &reply.base, GCS_STATUS_INVALID_ARGUMENT,
                          "node_info needs node_manager_address and a node_manager_port in 1..65535");
    gcs__node *alive = rc_map_get(&nm->alive, info->node_id.data, RC_NODE_ID_SIZE);
    if (alive && alive->dying) {
        char hex[RC_ID_HEX_MAX];
        return gcs__reply(call, &reply.base, GCS_STATUS_INVALID,
                          "node %s is being removed; it cannot register again: restart the raylet to join as "
                          "a new node",
                          gcs__hex(&info->node_id, hex));
    }
    gcs__node *dead = rc_map_get(&nm->dead, info->node_id.data, RC_NODE_ID_SIZE);
    if (dead) {
        char hex[RC_ID_HEX_MAX];
        const char *why = dead->info->death_info && dead->info->death_info->reason_message
                              ? dead->info->death_info->reason_message
                              : "no reason recorded";
        return gcs__reply(call, &reply.base, GCS_STATUS_INVALID,
                          "node %s was marked dead (%s); it cannot register again: restart the "
                          "raylet to join as a new node",
                          gcs__hex(&info->node_id, hex), why);
    }
    gcs__node_op *op = RC_NEW(gcs__node_op);
    op->nm = nm;
    op->call = call;
    op->info = (Ray__Rpc__GcsNodeInfo *)rpc_msg_dup(&info->base);
    op->info->state = RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__ALIVE;
    char why[256];
    if (gcs_auth_admit_node(nm->gcs->auth, op->info, why, sizeof(why)) < 0) {
        rpc_msg_free(&op->info->base);
        rc_free(op);
        return gcs__reply(call, &reply.base, GCS_STATUS_PERMISSION_DENIED, "%s", why);
    }
    if (!op->info->start_time_ms)
        op->info->start_time_ms = (uint64_t)rc_wall_ms();
    size_t len;
    uint8_t *bytes = rpc_msg_pack(&op->info->base, &len);
    gcs_store *st = nm->gcs->store;
    int rc = st->ops->put(st, GCS_TABLE_NODE, op->info->node_id.data, RC_NODE_ID_SIZE, bytes, len,
                          1, gcs__registered, op);
    rc_free(bytes);
    if (rc < 0)
        gcs__registered(rc, 0, op);
}

/* ---- death -------------------------------------------------------------------------- */

static void gcs__died(int rc, int64_t added, void *arg)
{
    gcs__node_op *op = arg;
    gcs_node_manager *nm = op->nm;
    (void)added;
    const uint8_t *id = op->info->node_id.data;
    gcs__node *n = rc_map_get(&nm->alive, id, RC_NODE_ID_SIZE);
    if (rc < 0 && rc != RC_ECANCELED)
        RC_ERROR("gcs: cannot store the death of a node: %s; it is dead in memory only",
                 rc_strerror(rc));
    if (n) {
        rc_map_remove(&nm->alive, id, RC_NODE_ID_SIZE);
        gcs_health_remove_node(nm->gcs->health, id);
        gcs_resource_on_node_removed(nm->gcs->res, id);
        if (n->raylet)
            rpc_client_destroy(n->raylet);
        n->raylet = NULL;
        rpc_msg_free(&n->info->base);
        n->info = op->info;
        n->dying = 0;
        op->info = NULL;
        rc_map_put(&nm->dead, id, RC_NODE_ID_SIZE, n);
        gcs__dead_push(nm, id);
        char hex[RC_ID_HEX_MAX];
        /* Proto3 enums are open: a reason this build does not know is logged by number. */
        const ProtobufCEnumValue *reason = protobuf_c_enum_descriptor_get_value(
            &ray__rpc__node_death_info__reason__descriptor, n->info->death_info->reason);
        RC_INFO("gcs: node %s is dead: %s (%s%d)", gcs__hex(&n->info->node_id, hex),
                n->info->death_info->reason_message, reason ? reason->name : "reason ",
                reason ? 0 : (int)n->info->death_info->reason);
        gcs_publish_node(nm->gcs->pub, n->info);
        gcs_server_on_node_dead(nm->gcs, n->info);
        gcs__evict_dead(nm);
    }
    if (op->call) {
        Ray__Rpc__UnregisterNodeReply reply = RAY__RPC__UNREGISTER_NODE_REPLY__INIT;
        gcs__reply_ok(op->call, &reply.base);
    }
    if (op->info)
        rpc_msg_free(&op->info->base);
    void (*done)(void *) = op->done;
    void *done_arg = op->done_arg;
    rc_free(op);
    if (done)
        done(done_arg);
}

/* Stores the death of alive node id, then moves it to the dead table and publishes it.
 * call (may be NULL) is answered and done (may be NULL) runs once that is done. */
static void gcs__kill_node(gcs_node_manager *nm, const uint8_t *id,
                           Ray__Rpc__NodeDeathInfo__Reason reason, const char *message,
                           rpc_call *call, void (*done)(void *arg), void *done_arg)
{
    gcs__node *n = rc_map_get(&nm->alive, id, RC_NODE_ID_SIZE);
    if (!n || n->dying) {
        if (call) {
            Ray__Rpc__UnregisterNodeReply reply = RAY__RPC__UNREGISTER_NODE_REPLY__INIT;
            gcs__reply_ok(call, &reply.base);
        }
        if (done)
            done(done_arg);
        return;
    }
    n->dying = 1;
    gcs__node_op *op = RC_NEW(gcs__node_op);
    op->nm = nm;
    op->call = call;
    op->done = done;
    op->done_arg = done_arg;
    op->info = (Ray__Rpc__GcsNodeInfo *)rpc_msg_dup(&n->info->base);
    op->info->state = RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__DEAD;
    op->info->end_time_ms = (uint64_t)rc_wall_ms();
    if (op->info->death_info)
        rpc_msg_free(&op->info->death_info->base);
    op->info->death_info = rc_malloc(sizeof(*op->info->death_info));
    ray__rpc__node_death_info__init(op->info->death_info);
    op->info->death_info->reason = reason;
    op->info->death_info->reason_message = rc_strdup(message ? message : "");
    size_t len;
    uint8_t *bytes = rpc_msg_pack(&op->info->base, &len);
    gcs_store *st = nm->gcs->store;
    int rc = st ? st->ops->put(st, GCS_TABLE_NODE, id, RC_NODE_ID_SIZE, bytes, len, 1, gcs__died, op)
                : RC_ECANCELED;
    rc_free(bytes);
    if (rc < 0)
        gcs__died(rc, 0, op);
}

void gcs_node_mark_dead(gcs_node_manager *nm, const uint8_t *id,
                        Ray__Rpc__NodeDeathInfo__Reason reason, const char *message)
{
    gcs__kill_node(nm, id, reason, message, NULL, NULL, NULL);
}

void gcs_node_kill(gcs_node_manager *nm, const uint8_t *id, Ray__Rpc__NodeDeathInfo__Reason reason,
                   const char *message, void (*done)(void *arg), void *arg)
{
    gcs__kill_node(nm, id, reason, message, NULL, done, arg);
}

void gcs_node_foreach_dead(const gcs_node_manager *nm,
                           void (*fn)(const Ray__Rpc__GcsNodeInfo *node, void *arg), void *arg)
{
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (rc_map_next(&nm->dead, &it, NULL, NULL, &v))
        fn(((gcs__node *)v)->info, arg);
}

static void gcs__label_stored(int rc, int64_t added, void *arg)
{
    (void)added;
    (void)arg;
    if (rc < 0 && rc != RC_ECANCELED)
        RC_WARN("gcs: cannot store a node's new labels: %s; they hold in memory", rc_strerror(rc));
}

int gcs_node_set_label(gcs_node_manager *nm, const uint8_t *id, const char *key, const char *value)
{
    gcs__node *n = rc_map_get(&nm->alive, id, RC_NODE_ID_SIZE);
    if (!n || n->dying)
        return RC_ENOENT;
    Ray__Rpc__GcsNodeInfo *info = n->info;
    size_t i = 0;
    while (i < info->n_labels && strcmp(info->labels[i]->key, key))
        i++;
    if (i < info->n_labels && !value) {
        protobuf_c_message_free_unpacked(&info->labels[i]->base, NULL);
        info->labels[i] = info->labels[--info->n_labels];
    } else if (i < info->n_labels) {
        free(info->labels[i]->value); /* protobuf-c's allocator is rc_malloc's */
        info->labels[i]->value = rc_strdup(value);
    } else if (value) {
        Ray__Rpc__GcsNodeInfo__LabelsEntry *e = rc_malloc(sizeof(*e));
        ray__rpc__gcs_node_info__labels_entry__init(e);
        e->key = rc_strdup(key);
        e->value = rc_strdup(value);
        info->labels = rc_realloc(info->labels, (info->n_labels + 1) * sizeof(*info->labels));
        info->labels[info->n_labels++] = e;
    }
    size_t len;
    uint8_t *bytes = rpc_msg_pack(&info->base, &len);
    gcs_store *st = nm->gcs->store;
    if (st)
        st->ops->put(st, GCS_TABLE_NODE, id, RC_NODE_ID_SIZE, bytes, len, 1, gcs__label_stored, NULL);
    rc_free(bytes);
    gcs_publish_node(nm->gcs->pub, info);
    return 0;
}

int gcs_node_known(const gcs_node_manager *nm, const uint8_t *id)
{
    return rc_map_get(&nm->alive, id, RC_NODE_ID_SIZE) || rc_map_get(&nm->dead, id, RC_NODE_ID_SIZE);
}

static void handle_unregister_node(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_node_manager *nm = arg;
    const Ray__Rpc__UnregisterNodeRequest *req = (const void *)request;
    Ray__Rpc__UnregisterNodeReply reply = RAY__RPC__UNREGISTER_NODE_REPLY__INIT;
    if (req->node_id.len != RC_NODE_ID_SIZE)
        return gcs__reply(call, &reply.base, GCS_STATUS_INVALID_ARGUMENT,
                          "node_id must hold %d bytes", RC_NODE_ID_SIZE);
    Ray__Rpc__NodeDeathInfo__Reason reason = RAY__RPC__NODE_DEATH_INFO__REASON__EXPECTED_TERMINATION;
    const char *message = "the raylet unregistered";
    if (req->node_death_info) {
        if (req->node_death_info->reason != RAY__RPC__NODE_DEATH_INFO__REASON__UNSPECIFIED)
            reason = req->node_death_info->reason;
        if (req->node_death_info->reason_message && req->node_death_info->reason_message[0])
            message = req->node_death_info->reason_message;
    }
    gcs__kill_node(nm, req->node_id.data, reason, message, call, NULL, NULL);
}

/* ---- queries ------------------------------------------------------------------------ */

static void handle_get_cluster_id(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_node_manager *nm = arg;
    (void)request;
    Ray__Rpc__GetClusterIdReply reply = RAY__RPC__GET_CLUSTER_ID_REPLY__INIT;
    reply.cluster_id.data = nm->gcs->cluster_id;
    reply.cluster_id.len = RC_CLUSTER_ID_SIZE;
    gcs__reply_ok(call, &reply.base);
}

static int gcs__node_selected(const Ray__Rpc__GetAllNodeInfoRequest *req,
                              const Ray__Rpc__GcsNodeInfo *info)
{
    if (req->_state_filter_case == RAY__RPC__GET_ALL_NODE_INFO_REQUEST___STATE_FILTER_STATE_FILTER &&
        info->state != req->state_filter)
        return 0;
    if (!req->n_node_selectors)
        return 1;
    for (size_t i = 0; i < req->n_node_selectors; i++) {
        const Ray__Rpc__GetAllNodeInfoRequest__NodeSelector *s = req->node_selectors[i];
        switch (s->node_selector_case) {
        case RAY__RPC__GET_ALL_NODE_INFO_REQUEST__NODE_SELECTOR__NODE_SELECTOR_NODE_ID:
            if (s->node_id.len == info->node_id.len &&
                memcmp(s->node_id.data, info->node_id.data, s->node_id.len) == 0)
                return 1;
            break;
        case RAY__RPC__GET_ALL_NODE_INFO_REQUEST__NODE_SELECTOR__NODE_SELECTOR_NODE_NAME:
            if (info->node_name && strcmp(s->node_name, info->node_name) == 0)
                return 1;
            break;
        case RAY__RPC__GET_ALL_NODE_INFO_REQUEST__NODE_SELECTOR__NODE_SELECTOR_NODE_IP_ADDRESS:
            if (info->node_manager_address && strcmp(s->node_ip_address, info->node_manager_address) == 0)
                return 1;
            break;
        default:
            break;
        }
    }
    return 0;
}

static void handle_get_all_node_info(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_node_manager *nm = arg;
    const Ray__Rpc__GetAllNodeInfoRequest *req = (const void *)request;
    Ray__Rpc__GetAllNodeInfoReply reply = RAY__RPC__GET_ALL_NODE_INFO_REPLY__INIT;
    int64_t limit = req->_limit_case == RAY__RPC__GET_ALL_NODE_INFO_REQUEST___LIMIT_LIMIT &&
                            req->limit > 0
                        ? req->limit
                        : INT64_MAX;
    size_t total = rc_map_size(&nm->alive) + rc_map_size(&nm->dead);
    Ray__Rpc__GcsNodeInfo **list = rc_malloc((total ? total : 1) * sizeof(*list));
    size_t n = 0, filtered = 0;
    const rc_map *tables[2] = {&nm->alive, &nm->dead};
    for (int t = 0; t < 2; t++) {
        rc_map_iter it = RC_MAP_ITER_INIT;
        void *v;
        while (rc_map_next(tables[t], &it, NULL, NULL, &v)) {
            gcs__node *node = v;
            if (!gcs__node_selected(req, node->info)) {
                filtered++;
                continue;
            }
            if ((int64_t)n < limit)
                list[n++] = node->info;
        }
    }
    reply.node_info_list = list;
    reply.n_node_info_list = n;
    reply.total = (int64_t)total;
    reply.num_filtered = (int64_t)filtered;
    gcs__reply_ok(call, &reply.base);
    rc_free(list);
}

static void handle_check_alive(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_node_manager *nm = arg;
    const Ray__Rpc__CheckAliveRequest *req = (const void *)request;
    Ray__Rpc__CheckAliveReply reply = RAY__RPC__CHECK_ALIVE_REPLY__INIT;
    protobuf_c_boolean *alive = rc_calloc(req->n_node_ids ? req->n_node_ids : 1, sizeof(*alive));
    for (size_t i = 0; i < req->n_node_ids; i++)
        alive[i] = req->node_ids[i].len == RC_NODE_ID_SIZE &&
                   rc_map_get(&nm->alive, req->node_ids[i].data, RC_NODE_ID_SIZE) != NULL;
    reply.raylet_alive = alive;
    reply.n_raylet_alive = req->n_node_ids;
    reply.ray_version = GCS_RAY_VERSION;
    gcs__reply_ok(call, &reply.base);
    rc_free(alive);
}

static void gcs__shutdown_sent(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    (void)arg;
    if (st->code != GRPC_STATUS_OK)
        RC_WARN("gcs: ShutdownRaylet for a drained node failed: %s", st->message);
    rpc_msg_free(reply);
}

static void handle_drain_node(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_node_manager *nm = arg;
    const Ray__Rpc__DrainNodeRequest *req = (const void *)request;
    Ray__Rpc__DrainNodeReply reply = RAY__RPC__DRAIN_NODE_REPLY__INIT;
    size_t n = req->n_drain_node_data;
    Ray__Rpc__DrainNodeStatus *statuses = rc_calloc(n ? n : 1, sizeof(*statuses));
    Ray__Rpc__DrainNodeStatus **ptrs = rc_calloc(n ? n : 1, sizeof(*ptrs));
    for (size_t i = 0; i < n; i++) {
        const ProtobufCBinaryData *id = &req->drain_node_data[i]->node_id;
        ray__rpc__drain_node_status__init(&statuses[i]);
        statuses[i].node_id = *id;
        ptrs[i] = &statuses[i];
        if (id->len != RC_NODE_ID_SIZE)
            continue;
        /* As Ray does today: a drained raylet is asked to shut down gracefully; it then
         * unregisters itself with EXPECTED_TERMINATION. */
        rpc_client *cli = gcs_node_raylet_client(nm, id->data);
        if (!cli)
            continue;
        Ray__Rpc__ShutdownRayletRequest sreq = RAY__RPC__SHUTDOWN_RAYLET_REQUEST__INIT;
        sreq.graceful = 1;
        rpc_client_call(cli, &ray__rpc__node_manager_service__descriptor, "ShutdownRaylet", &sreq.base,
                        rc_cfg.gcs_rpc_timeout_ms, gcs__shutdown_sent, NULL);
    }
    reply.drain_node_status = ptrs;
    reply.n_drain_node_status = n;
    gcs__reply_ok(call, &reply.base);
    rc_free(ptrs);
    rc_free(statuses);
}

const rpc_method_handler gcs_node_handlers[] = {
    {"GetClusterId", handle_get_cluster_id},   {"RegisterNode", handle_register_node},
    {"UnregisterNode", handle_unregister_node}, {"DrainNode", handle_drain_node},
    {"GetAllNodeInfo", handle_get_all_node_info}, {"CheckAlive", handle_check_alive},
    {NULL, NULL},
};

/* ---- load and lifetime -------------------------------------------------------------- */

static int gcs__by_end_time(const void *a, const void *b)
{
    const gcs__node *x = *(gcs__node *const *)a, *y = *(gcs__node *const *)b;
    return x->info->end_time_ms < y->info->end_time_ms ? -1 : x->info->end_time_ms > y->info->end_time_ms;
}

static void gcs__nodes_loaded(int rc, const gcs_store_item *items, size_t n, void *arg)
{
    gcs_node_manager *nm = arg;
    if (rc < 0) {
        nm->load_cb(nm->gcs, rc);
        return;
    }
    gcs__node **dead = rc_malloc((n ? n : 1) * sizeof(*dead));
    size_t n_dead = 0, skipped = 0;
    for (size_t i = 0; i < n; i++) {
        Ray__Rpc__GcsNodeInfo *info = ray__rpc__gcs_node_info__unpack(NULL, items[i].vlen, items[i].value);
        if (!info || info->node_id.len != RC_NODE_ID_SIZE) {
            skipped++;
            if (info)
                rpc_msg_free(&info->base);
            continue;
        }
        gcs__node *node = RC_NEW(gcs__node);
        node->info = info;
        if (info->state == RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__ALIVE) {
            rc_map_put(&nm->alive, info->node_id.data, RC_NODE_ID_SIZE, node);
            gcs_health_add_node(nm->gcs->health, info->node_id.data);
            gcs_resource_on_node_added(nm->gcs->res, info);
        } else {
            rc_map_put(&nm->dead, info->node_id.data, RC_NODE_ID_SIZE, node);
            dead[n_dead++] = node;
        }
    }
    qsort(dead, n_dead, sizeof(*dead), gcs__by_end_time);
    for (size_t i = 0; i < n_dead; i++)
        gcs__dead_push(nm, dead[i]->info->node_id.data);
    rc_free(dead);
    if (skipped)
        RC_WARN("gcs: skipped %zu unreadable node records in storage", skipped);
    RC_INFO("gcs: loaded %zu alive and %zu dead nodes from storage", rc_map_size(&nm->alive),
            rc_map_size(&nm->dead));
    gcs__evict_dead(nm);
    nm->load_cb(nm->gcs, 0);
}

int gcs_node_manager_load(gcs_node_manager *nm, gcs_load_cb cb)
{
    nm->load_cb = cb;
    return nm->gcs->store->ops->get_all(nm->gcs->store, GCS_TABLE_NODE, gcs__nodes_loaded, nm);
}

gcs_node_manager *gcs_node_manager_new(gcs_server *gcs)
{
    gcs_node_manager *nm = RC_NEW(gcs_node_manager);
    nm->gcs = gcs;
    rc_map_init(&nm->alive);
    rc_map_init(&nm->dead);
    return nm;
}

void gcs_node_manager_shutdown(gcs_node_manager *nm)
{
    if (!nm)
        return;
    nm->stopped = 1;
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (rc_map_next(&nm->alive, &it, NULL, NULL, &v)) {
        gcs__node *n = v;
        if (n->raylet)
            rpc_client_destroy(n->raylet);
        n->raylet = NULL;
    }
}

void gcs_node_manager_free(gcs_node_manager *nm)
{
    if (!nm)
        return;
    gcs_node_manager_shutdown(nm);
    rc_map_destroy(&nm->alive, gcs__node_free);
    rc_map_destroy(&nm->dead, gcs__node_free);
    rc_free(nm->dead_order);
    rc_free(nm);
}
