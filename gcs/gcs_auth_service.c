/*
 * GCS AuthService (rayc.rpc.AuthService, ARCHITECTURE §14): nodes join with a join token
 * and two CSRs; the admin makes, lists and revokes join tokens, revokes nodes and rotates
 * the admin token; nodes and jobs get job tokens. The state it changes is the auth
 * manager's (gcs_auth_manager.c).
 *
 * Writes: a record is stored before the call that changed it is answered. A join counts
 * its use in memory before storing it, so two racing joins cannot both use a single-use
 * token; revocations take effect in memory at once and are then stored. A storage failure
 * is answered IO_ERROR and leaves memory on the refusing side (a use counted, a revocation
 * in force), never on the permissive one.
 *
 * Roles are checked by the RPC layer from rpc_acl_def.h before a handler runs; handlers
 * look at the caller's identity only where the rule depends on state (a node asking for the
 * token of a finished job). Every refusal is a GcsStatus with its code and a
 * sentence; in insecure mode every method answers INVALID.
 *
 * Loop thread only.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "gcs_auth_int.h"
#include "rc_alloc.h"
#include "rc_err.h"
#include "rc_log.h"

/* A join token with unlimited uses remembers the nodes that used it, the latest this many. */
#define GCS__MAX_TOKEN_NODES 1024

static const char kInsecure[] =
    "this GCS runs with --insecure: it has no CA and issues no credentials";


/* 1 (and the call answered) when the GCS runs insecure. */
static int gcs__refuse_insecure(const gcs_auth_manager *am, rpc_call *call, ProtobufCMessage *reply)
{
    if (am->secure)
        return 0;
    gcs__reply(call, reply, GCS_STATUS_INVALID, "%s", kInsecure);
    return 1;
}

/* ---- labels: every map<string, string> entry has this layout ---------------------------- */

typedef struct gcs__label {
    ProtobufCMessage base;
    char *key;
    char *value;
} gcs__label;

/* A borrowed view of labels src[0..n) as entries of descriptor d (for a message of another
 * type that is packed or answered while src lives): *entries and *ptrs are new arrays that
 * the caller frees with rc_free; keys and values stay src's. */
static void gcs__labels_view(const ProtobufCMessageDescriptor *d, void *const *src, size_t n,
                             gcs__label **entries, gcs__label ***ptrs)
{
    *entries = rc_calloc(n ? n : 1, sizeof(**entries));
    *ptrs = rc_calloc(n ? n : 1, sizeof(**ptrs));
    for (size_t i = 0; i < n; i++) {
        const gcs__label *from = src[i];
        protobuf_c_message_init(d, &(*entries)[i]);
        (*entries)[i].key = from->key;
        (*entries)[i].value = from->value;
        (*ptrs)[i] = &(*entries)[i];
    }
}

/* ---- JoinNode ---------------------------------------------------------------------------- */

enum { GCS__JOIN_RETRY_S = 120 };

/* 4 or 6 for an IPv4 or IPv6 address, 0 for anything else; *loopback set for 127/8, ::1. */
static int gcs__ip_family(const char *s, int *loopback)
{
    unsigned char a[16];
    *loopback = 0;
    if (inet_pton(AF_INET, s, a) == 1) {
        *loopback = a[0] == 127;
        return 4;
    }
    if (inet_pton(AF_INET6, s, a) == 1) {
        static const unsigned char one[16] = {[15] = 1};
        *loopback = memcmp(a, one, 16) == 0;
        return 6;
    }
    return 0;
}

/* Why the join token record rec cannot be used now (NULL: it can). */
static const char *gcs__join_refusal(const Rayc__Rpc__JoinTokenInfo *info, int64_t now, char *buf,
                                     size_t len)
{
    if (info->revoked)
        snprintf(buf, len, "join token %s was revoked", info->token_id);
    else if (info->expires_at > 0 && now >= info->expires_at)
        snprintf(buf, len, "join token %s has expired", info->token_id);
    else if (info->max_uses > 0 && info->uses >= info->max_uses && info->max_uses == 1)
        snprintf(buf, len, "join token %s was single-use and has been used", info->token_id);
    else if (info->max_uses > 0 && info->uses >= info->max_uses)
        snprintf(buf, len, "join token %s has been used %d times, its limit", info->token_id,
                 (int)info->max_uses);
    else
        return NULL;
    return buf;
}

/* Appends node hex to the token's list of nodes (the latest GCS__MAX_TOKEN_NODES). */
static void gcs__join_add_node(Rayc__Rpc__JoinTokenInfo *info, const char *hex)
{
    if (info->n_node_ids >= GCS__MAX_TOKEN_NODES) {
        free(info->node_ids[0]);
        memmove(info->node_ids, info->node_ids + 1, (info->n_node_ids - 1) * sizeof(*info->node_ids));
        info->n_node_ids--;
    }
    info->node_ids = rc_realloc(info->node_ids, (info->n_node_ids + 1) * sizeof(*info->node_ids));
    info->node_ids[info->n_node_ids++] = rc_strdup(hex);
}

typedef struct gcs__join_op {
    rpc_call *call;
    char token_id[AUTH_TOKEN_ID_HEX + 1];
    char *node_cert, *worker_cert; /* owned */
} gcs__join_op;

static void gcs__join_stored(gcs_auth_manager *am, int rc, void *arg)
{
    gcs__join_op *op = arg;
    Rayc__Rpc__JoinNodeReply reply = RAYC__RPC__JOIN_NODE_REPLY__INIT;
    if (rc < 0) {
        gcs__reply(op->call, &reply.base, GCS_STATUS_IO_ERROR,
                        "cannot store the join: %s; join again", rc_strerror(rc));
    } else {
        const Rayc__Rpc__AuthJoinTokenRecord *rec = rc_map_get_str(&am->joins, op->token_id);
        gcs__label *entries = NULL, **ptrs = NULL;
        size_t n = rec ? rec->info->n_labels : 0;
        gcs__labels_view(&rayc__rpc__join_node_reply__labels_entry__descriptor,
                         rec ? (void *const *)rec->info->labels : NULL, n, &entries, &ptrs);
        reply.node_cert_pem = op->node_cert;
        reply.worker_cert_pem = op->worker_cert;
        reply.ca_cert_pem = am->ca_cert_pem;
        reply.labels = (Rayc__Rpc__JoinNodeReply__LabelsEntry **)ptrs;
        reply.n_labels = n;
        gcs__reply_ok(op->call, &reply.base);
        rc_free(ptrs);
        rc_free(entries);
    }
    rc_free(op->node_cert);
    rc_free(op->worker_cert);
    rc_free(op);
}

/* Signs the node's two CSRs; 0, or the call answered. */
static int gcs__join_sign(gcs_auth_manager *am, rpc_call *call, const Rayc__Rpc__JoinNodeRequest *req,
                          const char *hex, gcs__join_op *op)
{
    Rayc__Rpc__JoinNodeReply reply = RAYC__RPC__JOIN_NODE_REPLY__INIT;
    int loopback;
    gcs__ip_family(req->node_ip_address, &loopback);
    const char *ips[2] = {req->node_ip_address, "127.0.0.1"};
    size_t n_ips = loopback && strcmp(req->node_ip_address, "127.0.0.1") != 0 ? 2 : 1;
    char cn[16 + RC_ID_HEX_MAX], err[256] = "";
    snprintf(cn, sizeof(cn), "node:%s", hex);
    if (auth_cert_sign_csr(am->ca_key_pem, am->ca_cert_pem, req->node_csr_pem, cn, ips, n_ips,
                           GCS__CERT_DAYS, &op->node_cert, err, sizeof(err)) < 0) {
        gcs__reply(call, &reply.base, GCS_STATUS_INVALID_ARGUMENT, "node_csr_pem: %s", err);
        return -1;
    }
    snprintf(cn, sizeof(cn), "worker:%s", hex);
    if (auth_cert_sign_csr(am->ca_key_pem, am->ca_cert_pem, req->worker_csr_pem, cn, ips, n_ips,
                           GCS__CERT_DAYS, &op->worker_cert, err, sizeof(err)) < 0) {
        gcs__reply(call, &reply.base, GCS_STATUS_INVALID_ARGUMENT, "worker_csr_pem: %s", err);
        return -1;
    }
    return 0;
}

static void handle_join_node(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_auth_manager *am = arg;
    const Rayc__Rpc__JoinNodeRequest *req = (const void *)request;
    Rayc__Rpc__JoinNodeReply reply = RAYC__RPC__JOIN_NODE_REPLY__INIT;
    if (gcs__refuse_insecure(am, call, &reply.base))
        return;
    int loopback;
    if (req->node_id.len != RC_NODE_ID_SIZE)
        return gcs__reply(call, &reply.base, GCS_STATUS_INVALID_ARGUMENT,
                               "node_id must hold %d bytes", RC_NODE_ID_SIZE);
    if (!gcs__ip_family(req->node_ip_address, &loopback))
        return gcs__reply(call, &reply.base, GCS_STATUS_INVALID_ARGUMENT,
                               "node_ip_address '%.64s' is not an IP address", req->node_ip_address);
    if (!req->node_csr_pem[0] || !req->worker_csr_pem[0])
        return gcs__reply(call, &reply.base, GCS_STATUS_INVALID_ARGUMENT,
                               "JoinNode needs node_csr_pem and worker_csr_pem");
    char id[AUTH_TOKEN_ID_HEX + 1], hash[GCS__SHA256_HEX + 1], why[160];
    Rayc__Rpc__AuthJoinTokenRecord *rec = NULL;
    if (auth_join_token_parse(req->join_token, id, hash) == 0)
        rec = rc_map_get_str(&am->joins, id);
    /* Constant time, so that the stored hash cannot be guessed byte by byte. */
    if (!rec || CRYPTO_memcmp(rec->secret_sha256, hash, GCS__SHA256_HEX) != 0)
        return gcs__reply(call, &reply.base, GCS_STATUS_PERMISSION_DENIED, "unknown join token");
    char hex[RC_ID_HEX_MAX];
    rc_id_hex(req->node_id.data, RC_NODE_ID_SIZE, hex);
    const Rayc__Rpc__AuthNodeRecord *known = rc_map_get(&am->nodes, req->node_id.data, RC_NODE_ID_SIZE);
    if (known && known->revoked)
        return gcs__reply(call, &reply.base, GCS_STATUS_PERMISSION_DENIED,
                               "node %s was revoked by the admin; start the raylet as a new node", hex);
    /* The same node asking again with the same token, soon after: its first reply was lost
     * (a timeout on the way back). It is answered again without spending another use, so a
     * single-use token survives the retry. */
    int64_t now = gcs__auth_now_s();
    int retry = known && known->join_token_id && !strcmp(known->join_token_id, id) &&
                now - known->joined_at < GCS__JOIN_RETRY_S;
    if (!retry && gcs__join_refusal(rec->info, now, why, sizeof(why)))
        return gcs__reply(call, &reply.base, GCS_STATUS_PERMISSION_DENIED, "%s", why);
    if (retry && (rec->info->revoked || (rec->info->expires_at > 0 && now >= rec->info->expires_at)))
        return gcs__reply(call, &reply.base, GCS_STATUS_PERMISSION_DENIED, "%s",
                               gcs__join_refusal(rec->info, now, why, sizeof(why)));
    gcs__join_op *op = RC_NEW(gcs__join_op);
    op->call = call;
    memcpy(op->token_id, id, sizeof(op->token_id));
    if (gcs__join_sign(am, call, req, hex, op) < 0) {
        rc_free(op->node_cert);
        rc_free(op);
        return;
    }
    if (!retry) {
        rec->info->uses++;
        gcs__join_add_node(rec->info, hex);
    }
    Rayc__Rpc__AuthNodeRecord node = RAYC__RPC__AUTH_NODE_RECORD__INIT;
    node.node_id = req->node_id;
    node.join_token_id = id;
    node.node_ip_address = req->node_ip_address;
    node.joined_at = retry ? known->joined_at : now;
    gcs__label *entries, **ptrs;
    gcs__labels_view(&rayc__rpc__auth_node_record__labels_entry__descriptor,
                     (void *const *)rec->info->labels, rec->info->n_labels, &entries, &ptrs);
    node.labels = (Rayc__Rpc__AuthNodeRecord__LabelsEntry **)ptrs;
    node.n_labels = rec->info->n_labels;
    Rayc__Rpc__AuthNodeRecord *owned = (Rayc__Rpc__AuthNodeRecord *)rpc_msg_dup(&node.base);
    rc_free(ptrs);
    rc_free(entries);
    /* A token that requires verification: the node waits for the market's verdict, which a
     * retried join keeps. */
    if (rec->info->require_verification)
        gcs__auth_node_verification(owned, known, "pending", NULL);
    gcs__auth_set_node(am, owned);
    RC_INFO("gcs: node %s at %s joined with join token %s (use %d)", hex, req->node_ip_address, id,
            (int)rec->info->uses);
    gcs__auth_writes *w = gcs__auth_writes_begin(am, gcs__join_stored, op);
    gcs__auth_put_join(w, rec);
    gcs__auth_put_node(w, owned);
    gcs__auth_writes_end(w);
}

/* ---- join tokens ------------------------------------------------------------------------ */

typedef struct gcs__create_op {
    rpc_call *call;
    char *token; /* owned; shown once */
    char id[AUTH_TOKEN_ID_HEX + 1];
} gcs__create_op;

static void gcs__created(gcs_auth_manager *am, int rc, void *arg)
{
    gcs__create_op *op = arg;
    Rayc__Rpc__CreateJoinTokenReply reply = RAYC__RPC__CREATE_JOIN_TOKEN_REPLY__INIT;
    const Rayc__Rpc__AuthJoinTokenRecord *rec = rc_map_get_str(&am->joins, op->id);
    if (rc < 0 || !rec) {
        gcs__reply(op->call, &reply.base, GCS_STATUS_IO_ERROR,
                        "cannot store the join token: %s", rc_strerror(rc < 0 ? rc : RC_ENOENT));
    } else {
        reply.join_token = op->token;
        reply.info = rec->info;
        gcs__reply_ok(op->call, &reply.base);
    }
    gcs__auth_wipe_free(op->token);
    rc_free(op);
}

static void handle_create_join_token(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_auth_manager *am = arg;
    const Rayc__Rpc__CreateJoinTokenRequest *req = (const void *)request;
    Rayc__Rpc__CreateJoinTokenReply reply = RAYC__RPC__CREATE_JOIN_TOKEN_REPLY__INIT;
    if (gcs__refuse_insecure(am, call, &reply.base))
        return;
    if (req->ttl_seconds < 0 || req->max_uses < 0)
        return gcs__reply(call, &reply.base, GCS_STATUS_INVALID_ARGUMENT,
                               "ttl_seconds and max_uses must not be negative (0: no limit)");
    for (size_t i = 0; i < req->n_labels; i++)
        if (!req->labels[i]->key[0])
            return gcs__reply(call, &reply.base, GCS_STATUS_INVALID_ARGUMENT,
                                   "a join token's label needs a key");
    gcs__create_op *op = RC_NEW(gcs__create_op);
    op->call = call;
    char hash[GCS__SHA256_HEX + 1];
    int rc = auth_join_token_create(&op->token, op->id, hash);
    if (rc < 0) {
        rc_free(op);
        return gcs__reply(call, &reply.base, GCS_STATUS_UNKNOWN_ERROR,
                               "cannot create a join token: %s", rc_strerror(rc));
    }
    int64_t now = gcs__auth_now_s();
    Rayc__Rpc__JoinTokenInfo info = RAYC__RPC__JOIN_TOKEN_INFO__INIT;
    info.token_id = op->id;
    info.created_at = now;
    info.expires_at = req->ttl_seconds > 0 ? now + req->ttl_seconds : 0;
    info.max_uses = req->max_uses;
    info.require_verification = req->require_verification;
    gcs__label *entries, **ptrs;
    gcs__labels_view(&rayc__rpc__join_token_info__labels_entry__descriptor,
                     (void *const *)req->labels, req->n_labels, &entries, &ptrs);
    info.labels = (Rayc__Rpc__JoinTokenInfo__LabelsEntry **)ptrs;
    info.n_labels = req->n_labels;
    Rayc__Rpc__AuthJoinTokenRecord rec = RAYC__RPC__AUTH_JOIN_TOKEN_RECORD__INIT;
    rec.info = &info;
    rec.secret_sha256 = hash;
    Rayc__Rpc__AuthJoinTokenRecord *owned = (Rayc__Rpc__AuthJoinTokenRecord *)rpc_msg_dup(&rec.base);
    rc_free(ptrs);
    rc_free(entries);
    rpc_msg_free(rc_map_put_str(&am->joins, op->id, owned));
    RC_INFO("gcs: join token %s created (ttl %llds, max uses %d, %zu labels%s)", op->id,
            (long long)req->ttl_seconds, (int)req->max_uses, req->n_labels,
            req->require_verification ? ", nodes need verification" : "");
    gcs__auth_writes *w = gcs__auth_writes_begin(am, gcs__created, op);
    gcs__auth_put_join(w, owned);
    gcs__auth_writes_end(w);
}

static int gcs__by_created(const void *a, const void *b)
{
    const Rayc__Rpc__JoinTokenInfo *x = *(Rayc__Rpc__JoinTokenInfo *const *)a;
    const Rayc__Rpc__JoinTokenInfo *y = *(Rayc__Rpc__JoinTokenInfo *const *)b;
    if (x->created_at != y->created_at)
        return x->created_at < y->created_at ? -1 : 1;
    return strcmp(x->token_id, y->token_id);
}

static void handle_list_join_tokens(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_auth_manager *am = arg;
    (void)request;
    Rayc__Rpc__ListJoinTokensReply reply = RAYC__RPC__LIST_JOIN_TOKENS_REPLY__INIT;
    if (gcs__refuse_insecure(am, call, &reply.base))
        return;
    size_t n = rc_map_size(&am->joins);
    Rayc__Rpc__JoinTokenInfo **list = rc_calloc(n ? n : 1, sizeof(*list));
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    size_t i = 0;
    while (rc_map_next(&am->joins, &it, NULL, NULL, &v))
        list[i++] = ((Rayc__Rpc__AuthJoinTokenRecord *)v)->info;
    qsort(list, n, sizeof(*list), gcs__by_created);
    reply.tokens = list;
    reply.n_tokens = n;
    gcs__reply_ok(call, &reply.base);
    rc_free(list);
}

/* Answers a call whose reply is nothing but its status, once its writes are stored. */
static void gcs__status_stored(gcs_auth_manager *am, int rc, void *arg)
{
    (void)am;
    rpc_call *call = arg;
    Rayc__Rpc__RevokeJoinTokenReply reply = RAYC__RPC__REVOKE_JOIN_TOKEN_REPLY__INIT;
    if (rc < 0)
        gcs__reply(call, &reply.base, GCS_STATUS_IO_ERROR,
                        "the revocation is in force in this GCS but could not be stored (%s): a "
                        "GCS restart would forget it; try again",
                        rc_strerror(rc));
    else
        gcs__reply_ok(call, &reply.base);
}

static void handle_revoke_join_token(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_auth_manager *am = arg;
    const Rayc__Rpc__RevokeJoinTokenRequest *req = (const void *)request;
    Rayc__Rpc__RevokeJoinTokenReply reply = RAYC__RPC__REVOKE_JOIN_TOKEN_REPLY__INIT;
    if (gcs__refuse_insecure(am, call, &reply.base))
        return;
    Rayc__Rpc__AuthJoinTokenRecord *rec = rc_map_get_str(&am->joins, req->token_id);
    if (!rec)
        return gcs__reply(call, &reply.base, GCS_STATUS_NOT_FOUND,
                               "join token %.64s is unknown to the GCS", req->token_id);
    if (!rec->info->revoked)
        RC_INFO("gcs: join token %s revoked", rec->info->token_id);
    rec->info->revoked = 1;
    gcs__auth_writes *w = gcs__auth_writes_begin(am, gcs__status_stored, call);
    gcs__auth_put_join(w, rec);
    gcs__auth_writes_end(w);
}

/* ---- nodes ------------------------------------------------------------------------------- */

typedef struct gcs__revoke_op {
    rpc_call *call;
    uint8_t node_id[RC_NODE_ID_SIZE];
    int rc; /* the storage outcome */
} gcs__revoke_op;

static void gcs__revoked_node_dead(void *arg)
{
    gcs__revoke_op *op = arg;
    Rayc__Rpc__RevokeNodeReply reply = RAYC__RPC__REVOKE_NODE_REPLY__INIT;
    if (op->rc < 0)
        gcs__reply(op->call, &reply.base, GCS_STATUS_IO_ERROR,
                        "the revocation is in force in this GCS but could not be stored (%s): a "
                        "GCS restart would forget it; try again",
                        rc_strerror(op->rc));
    else
        gcs__reply_ok(op->call, &reply.base);
    rc_free(op);
}

/* The revocation is stored (or failed to be): the node dies as if it had failed, whatever the
 * storage said, since its calls are refused from now on anyway. */
static void gcs__node_revocation_stored(gcs_auth_manager *am, int rc, void *arg)
{
    gcs__revoke_op *op = arg;
    op->rc = rc;
    gcs_node_kill(am->gcs->nodes, op->node_id, RAY__RPC__NODE_DEATH_INFO__REASON__UNEXPECTED_TERMINATION,
                  "node certificate revoked by the admin", gcs__revoked_node_dead, op);
}

static void handle_revoke_node(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_auth_manager *am = arg;
    const Rayc__Rpc__RevokeNodeRequest *req = (const void *)request;
    Rayc__Rpc__RevokeNodeReply reply = RAYC__RPC__REVOKE_NODE_REPLY__INIT;
    if (gcs__refuse_insecure(am, call, &reply.base))
        return;
    if (req->node_id.len != RC_NODE_ID_SIZE)
        return gcs__reply(call, &reply.base, GCS_STATUS_INVALID_ARGUMENT,
                               "node_id must hold %d bytes", RC_NODE_ID_SIZE);
    char hex[RC_ID_HEX_MAX];
    rc_id_hex(req->node_id.data, RC_NODE_ID_SIZE, hex);
    Rayc__Rpc__AuthNodeRecord *rec = rc_map_get(&am->nodes, req->node_id.data, RC_NODE_ID_SIZE);
    if (!rec && !gcs_node_known(am->gcs->nodes, req->node_id.data))
        return gcs__reply(call, &reply.base, GCS_STATUS_NOT_FOUND, "node %s is unknown to the GCS",
                               hex);
    if (!rec) { /* a node that never joined (its certificate was made with the CA's key) */
        Rayc__Rpc__AuthNodeRecord fresh = RAYC__RPC__AUTH_NODE_RECORD__INIT;
        fresh.node_id = req->node_id;
        rec = (Rayc__Rpc__AuthNodeRecord *)rpc_msg_dup(&fresh.base);
        gcs__auth_set_node(am, rec);
    }
    if (!rec->revoked) {
        rec->revoked = 1;
        rec->revoked_at = gcs__auth_now_s();
        RC_INFO("gcs: node %s revoked by the admin", hex);
    }
    gcs__revoke_op *op = RC_NEW(gcs__revoke_op);
    op->call = call;
    memcpy(op->node_id, req->node_id.data, RC_NODE_ID_SIZE);
    gcs__auth_writes *w = gcs__auth_writes_begin(am, gcs__node_revocation_stored, op);
    gcs__auth_put_node(w, rec);
    gcs__auth_writes_end(w);
}

/* ---- bearer tokens ------------------------------------------------------------------------ */

typedef struct gcs__rotate_op {
    rpc_call *call;
    char *token; /* owned: the new admin token */
} gcs__rotate_op;

static void gcs__rotated(gcs_auth_manager *am, int rc, void *arg)
{
    (void)am;
    gcs__rotate_op *op = arg;
    Rayc__Rpc__RotateAdminTokenReply reply = RAYC__RPC__ROTATE_ADMIN_TOKEN_REPLY__INIT;
    if (rc < 0) {
        gcs__reply(op->call, &reply.base, GCS_STATUS_IO_ERROR,
                        "the new admin token is in force in this GCS but could not be stored "
                        "(%s): a GCS restart would accept the old ones again; rotate again",
                        rc_strerror(rc));
    } else {
        reply.token = op->token;
        gcs__reply_ok(op->call, &reply.base);
    }
    gcs__auth_wipe_free(op->token);
    rc_free(op);
}

static void handle_rotate_admin_token(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_auth_manager *am = arg;
    (void)request;
    Rayc__Rpc__RotateAdminTokenReply reply = RAYC__RPC__ROTATE_ADMIN_TOKEN_REPLY__INIT;
    if (gcs__refuse_insecure(am, call, &reply.base))
        return;
    auth_claims c = {.kind = AUTH_TOKEN_ADMIN, .issued_at = gcs__auth_now_s()};
    char *token = NULL;
    int rc = auth_token_mint(am->ca_key_pem, &c, &token);
    if (rc < 0)
        return gcs__reply(call, &reply.base, GCS_STATUS_UNKNOWN_ERROR,
                               "cannot mint an admin token: %s", rc_strerror(rc));
    /* The file first: if it cannot be written, nothing changes. */
    if (gcs__auth_write_file(am, "auth_token", token, 0600) < 0) {
        gcs__auth_wipe_free(token);
        return gcs__reply(call, &reply.base, GCS_STATUS_IO_ERROR,
                               "cannot write %s/auth_token; the admin token is unchanged",
                               am->gcs->opts.auth_dir);
    }
    gcs__rotate_op *op = RC_NEW(gcs__rotate_op);
    op->call = call;
    op->token = rc_strdup(token);
    gcs__auth_wipe_free(am->admin_token);
    am->admin_token = token;
    gcs__auth_writes *w = gcs__auth_writes_begin(am, gcs__rotated, op);
    int64_t now = gcs__auth_now_s();
    size_t revoked = 0;
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (rc_map_next(&am->tokens, &it, NULL, NULL, &v)) {
        Rayc__Rpc__AuthTokenRecord *rec = v;
        if (rec->kind != AUTH_TOKEN_ADMIN || rec->revoked)
            continue;
        rec->revoked = 1;
        rec->revoked_at = now;
        gcs__auth_put_token(w, rec);
        revoked++;
    }
    Rayc__Rpc__AuthTokenRecord *rec = gcs__auth_token_record_new(&c);
    rpc_msg_free(rc_map_put_str(&am->tokens, rec->token_id, rec));
    gcs__auth_put_token(w, rec);
    RC_INFO("gcs: admin token rotated: %s in force, %zu earlier ones revoked", c.id, revoked);
    gcs__auth_writes_end(w);
}

static void handle_issue_job_token(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_auth_manager *am = arg;
    const Rayc__Rpc__IssueJobTokenRequest *req = (const void *)request;
    Rayc__Rpc__IssueJobTokenReply reply = RAYC__RPC__ISSUE_JOB_TOKEN_REPLY__INIT;
    if (gcs__refuse_insecure(am, call, &reply.base))
        return;
    if (req->job_id.len != RC_JOB_ID_SIZE)
        return gcs__reply(call, &reply.base, GCS_STATUS_INVALID_ARGUMENT,
                               "job_id must hold %d bytes", RC_JOB_ID_SIZE);
    char hex[RC_ID_HEX_MAX];
    rc_id_hex(req->job_id.data, RC_JOB_ID_SIZE, hex);
    const Ray__Rpc__JobTableData *job = gcs_job_get(am->gcs->jobs, req->job_id.data);
    if (!job)
        return gcs__reply(call, &reply.base, GCS_STATUS_NOT_FOUND,
                               "job %s is unknown to the GCS", hex);
    if (job->is_dead && rpc_call_identity(call)->role == RPC_ROLE_NODE)
        return gcs__reply(call, &reply.base, GCS_STATUS_PERMISSION_DENIED,
                               "job %s has finished; a node gets tokens only for running jobs", hex);
    char *token = rc_map_get(&am->job_tokens, req->job_id.data, RC_JOB_ID_SIZE);
    if (!token) {
        auth_claims c = {.kind = AUTH_TOKEN_JOB, .issued_at = gcs__auth_now_s()};
        memcpy(c.job_id, req->job_id.data, RC_JOB_ID_SIZE);
        int rc = auth_token_mint(am->ca_key_pem, &c, &token);
        if (rc < 0)
            return gcs__reply(call, &reply.base, GCS_STATUS_UNKNOWN_ERROR,
                                   "cannot mint a token for job %s: %s", hex, rc_strerror(rc));
        rc_map_put(&am->job_tokens, req->job_id.data, RC_JOB_ID_SIZE, token);
    }
    reply.token = token;
    gcs__reply_ok(call, &reply.base);
}

/* The revoked token and node IDs (insecure: none); nothing but "unchanged" when the
 * caller's counts match, as revocations are never undone. */
static void handle_get_revocations(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_auth_manager *am = arg;
    const Rayc__Rpc__GetRevocationsRequest *req = (const void *)request;
    Rayc__Rpc__GetRevocationsReply reply = RAYC__RPC__GET_REVOCATIONS_REPLY__INIT;
    size_t n_tokens = 0, n_nodes = 0;
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (am->secure && rc_map_next(&am->tokens, &it, NULL, NULL, &v))
        n_tokens += ((const Rayc__Rpc__AuthTokenRecord *)v)->revoked;
    it = (rc_map_iter)RC_MAP_ITER_INIT;
    while (am->secure && rc_map_next(&am->nodes, &it, NULL, NULL, &v))
        n_nodes += ((const Rayc__Rpc__AuthNodeRecord *)v)->revoked;
    if (req->known_tokens == n_tokens && req->known_nodes == n_nodes) {
        reply.unchanged = 1;
        rpc_reply(call, &reply.base);
        return;
    }
    char **tokens = rc_calloc(n_tokens ? n_tokens : 1, sizeof(*tokens));
    ProtobufCBinaryData *nodes = rc_calloc(n_nodes ? n_nodes : 1, sizeof(*nodes));
    it = (rc_map_iter)RC_MAP_ITER_INIT;
    while (rc_map_next(&am->tokens, &it, NULL, NULL, &v)) {
        const Rayc__Rpc__AuthTokenRecord *rec = v;
        if (rec->revoked)
            tokens[reply.n_token_ids++] = rec->token_id;
    }
    it = (rc_map_iter)RC_MAP_ITER_INIT;
    while (rc_map_next(&am->nodes, &it, NULL, NULL, &v)) {
        const Rayc__Rpc__AuthNodeRecord *rec = v;
        if (rec->revoked)
            nodes[reply.n_node_ids++] = rec->node_id;
    }
    reply.token_ids = tokens;
    reply.node_ids = nodes;
    rpc_reply(call, &reply.base);
    rc_free(tokens);
    rc_free(nodes);
}

const rpc_method_handler gcs_auth_handlers[] = {
    {"GetRevocations", handle_get_revocations},
    {"JoinNode", handle_join_node},
    {"CreateJoinToken", handle_create_join_token},
    {"ListJoinTokens", handle_list_join_tokens},
    {"RevokeJoinToken", handle_revoke_join_token},
    {"RevokeNode", handle_revoke_node},
    {"RotateAdminToken", handle_rotate_admin_token},
    {"IssueJobToken", handle_issue_job_token},
    {NULL, NULL},
};

