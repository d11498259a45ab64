/*
 * Authorization: who is calling, and may they call this (ARCHITECTURE §14).
 *
 * Identity comes from the transport first: a unix-socket caller is local (the socket's
 * 0700 directory already decided who can connect); a TLS client certificate verified
 * against the cluster CA with CN "gcs" is the GCS, CN "node:<56 hex>" that node. Otherwise
 * an "authorization: Bearer <token>" metadata entry is verified with the CA's public key
 * (admin or job token). Nothing at all is anonymous. Token verdicts are cached per server
 * (a signature check costs about 0.1 ms; a cached verdict a hash lookup), and expiry is
 * checked again on every use.
 *
 * The decision is the ACL table's (rpc_acl_def.h): a role check before the request is
 * read, and the scope check on the unpacked request, walking the named field through
 * sub-messages (every element of repeated ones).
 *
 * Loop thread only, except rpc__acl_find and rpc__kv_namespace_is_system (any thread).
 */
#include <grpc/grpc_security.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "rc_alloc.h"
#include "rc_err.h"
#include "rc_ids.h"
#include "rc_map.h"
#include "rpc_int.h"
#include "rpc_acl_def.h"

/* ---- the table ------------------------------------------------------------------------ */

#define RPC__ACL_ROW(svc, m, roles, scope, field, offset) {svc, m, roles, scope, field, offset},
static const rpc__acl rpc__acl_rows[] = {RPC_ACL_TABLE(RPC__ACL_ROW)};
#undef RPC__ACL_ROW

const rpc__acl *rpc__acl_find(const char *service, const char *method)
{
    /* About a hundred rows, looked up once per method when a service is added. */
    for (size_t i = 0; i < sizeof(rpc__acl_rows) / sizeof(rpc__acl_rows[0]); i++)
        if (!strcmp(rpc__acl_rows[i].method, method) && !strcmp(rpc__acl_rows[i].service, service))
            return &rpc__acl_rows[i];
    return NULL;
}

int rpc__kv_namespace_is_system(const void *ns, size_t len)
{
    static const char *const exact[] = {"cluster", "session"};
    for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
        if (len == strlen(exact[i]) && !memcmp(ns, exact[i], len))
            return 1;
    return len >= 4 && !memcmp(ns, "rayc", 4);
}

/* ---- identities ----------------------------------------------------------------------- */

static const char *rpc__role_name(unsigned role)
{
    switch (role) {
    case RPC_ROLE_ANON: return "anonymous";
    case RPC_ROLE_LOCAL: return "local";
    case RPC_ROLE_JOB: return "job";
    case RPC_ROLE_NODE: return "node";
    case RPC_ROLE_GCS: return "gcs";
    case RPC_ROLE_ADMIN: return "admin";
    default: return "unidentified";
    }
}

void rpc_identity_text(const rpc_identity *id, char *out, size_t outlen)
{
    char hex[RC_ID_HEX_MAX];
    switch (id->role) {
    case RPC_ROLE_JOB:
        snprintf(out, outlen, "job %s", rc_id_hex(id->job_id, RC_JOB_ID_SIZE, hex));
        break;
    case RPC_ROLE_NODE:
        snprintf(out, outlen, "node %s", rc_id_hex(id->node_id, RC_NODE_ID_SIZE, hex));
        break;
    default:
        snprintf(out, outlen, "%s", rpc__role_name(id->role));
    }
}

/* ---- token verdicts ------------------------------------------------------------------- */

enum { RPC__TOKEN_CACHE_MAX = 4096 };

typedef struct rpc__verdict {
    int ok;
    auth_claims claims;
    char why[160];
} rpc__verdict;

struct rpc__authz {
    auth_verifier *verifier; /* NULL when the server is not TLS */
    rc_map verdicts;         /* token text -> rpc__verdict */
    size_t n_verdicts;
};

static void rpc__free_verdict(void *v)
{
    rc_free(v);
}

rpc__authz *rpc__authz_new(const rpc__sec *s)
{
    rpc__authz *a = RC_NEW(rpc__authz);
    rc_map_init(&a->verdicts);
    if (s->pub.ca_cert_pem && auth_verifier_create(s->pub.ca_cert_pem, &a->verifier) < 0)
        a->verifier = NULL;
    return a;
}

void rpc__authz_free(rpc__authz *a)
{
    if (!a)
        return;
    rc_map_destroy(&a->verdicts, rpc__free_verdict);
    auth_verifier_destroy(a->verifier);
    rc_free(a);
}

static const rpc__verdict *rpc__verdict_for(rpc__authz *a, const char *token, size_t len,
                                            int64_t now)
{
    rpc__verdict *v = rc_map_get(&a->verdicts, token, len);
    if (v)
        return v;
    if (a->n_verdicts >= RPC__TOKEN_CACHE_MAX) { /* a flood of distinct tokens: start over */
        rc_map_destroy(&a->verdicts, rpc__free_verdict);
        rc_map_init(&a->verdicts);
        a->n_verdicts = 0;
    }
    v = RC_NEW(rpc__verdict);
    char text[1100];
    if (len >= sizeof(text)) {
        snprintf(v->why, sizeof(v->why), "the token is too long to be a rayc token");
    } else {
        memcpy(text, token, len);
        text[len] = '\0';
        v->ok = auth_token_verify(a->verifier, text, now, &v->claims, v->why, sizeof(v->why)) == 0;
    }
    rc_map_put(&a->verdicts, token, len, v);
    a->n_verdicts++;
    return v;
}

static const char *rpc__md_value(const grpc_metadata_array *md, const char *key, size_t *len)
{
    size_t klen = strlen(key);
    for (size_t i = 0; i < md->count; i++) {
        const grpc_metadata *m = &md->metadata[i];
        if (GRPC_SLICE_LENGTH(m->key) == klen && !memcmp(GRPC_SLICE_START_PTR(m->key), key, klen)) {
            *len = GRPC_SLICE_LENGTH(m->value);
            return (const char *)GRPC_SLICE_START_PTR(m->value);
        }
    }
    return NULL;
}

/* What the transport says of the caller: 1 (and *out) for a unix-socket caller or a verified
 * client certificate with CN "gcs" or "node:<hex>"; 0 for a TLS caller without such a
 * certificate (its token decides). Only a call that did not arrive over TLS pays for the
 * peer string: on a secure server every TCP listener is TLS, so the rest are unix sockets. */
static int rpc__transport_identity(rpc_call *c, grpc_call *call, rpc_identity *out)
{
    grpc_auth_context *ctx = grpc_call_auth_context(call);
    int found = 0, tls = 0;
    if (ctx) {
        grpc_auth_property_iterator it =
            grpc_auth_context_find_properties_by_name(ctx, GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME);
        const grpc_auth_property *p = grpc_auth_property_iterator_next(&it);
        tls = p && p->value_length == 3 && !memcmp(p->value, "ssl", 3);
        it = grpc_auth_context_find_properties_by_name(ctx, GRPC_X509_CN_PROPERTY_NAME);
        p = tls ? grpc_auth_property_iterator_next(&it) : NULL;
        if (p && p->value_length == 3 && !memcmp(p->value, "gcs", 3)) {
            out->role = RPC_ROLE_GCS;
            found = 1;
        } else if (p && p->value_length == 5 + 2 * RC_NODE_ID_SIZE && !memcmp(p->value, "node:", 5)) {
            char hex[2 * RC_NODE_ID_SIZE + 1];
            memcpy(hex, p->value + 5, 2 * RC_NODE_ID_SIZE);
            hex[2 * RC_NODE_ID_SIZE] = '\0';
            if (rc_id_from_hex(hex, out->node_id, RC_NODE_ID_SIZE) == 0) {
                out->role = RPC_ROLE_NODE;
                found = 1;
            }
        }
        grpc_auth_context_release(ctx);
    }
    if (!tls && !found) {
        const char *peer = rpc_call_peer(c);
        if (peer && !strncmp(peer, "unix:", 5)) {
            out->role = RPC_ROLE_LOCAL;
            found = 1;
        }
    }
    return found;
}

int rpc__authz_identify(rpc__authz *a, rpc_call *c, grpc_call *call, const grpc_metadata_array *md,
                        rpc_identity *out, char *msg, size_t msglen)
{
    memset(out, 0, sizeof(*out));
    if (rpc__transport_identity(c, call, out))
        return 0;
    size_t len;
    const char *auth = rpc__md_value(md, "authorization", &len);
    if (!auth) {
        out->role = RPC_ROLE_ANON;
        return 0;
    }
    return rpc__authz_bearer(a, auth, len, out, msg, msglen);
}

int rpc__authz_bearer(rpc__authz *a, const char *auth, size_t len, rpc_identity *out, char *msg,
                      size_t msglen)
{
    memset(out, 0, sizeof(*out));
    if (len < 7 || strncmp(auth, "Bearer ", 7) != 0) {
        snprintf(msg, msglen, "the authorization metadata is not \"Bearer <token>\"");
        return GRPC_STATUS_UNAUTHENTICATED;
    }
    int64_t now = (int64_t)time(NULL);
    const rpc__verdict *v = rpc__verdict_for(a, auth + 7, len - 7, now);
    if (!v->ok) {
        snprintf(msg, msglen, "the bearer token was refused: %s", v->why);
        return GRPC_STATUS_UNAUTHENTICATED;
    }
    if (v->claims.expires_at && now >= v->claims.expires_at) {
        snprintf(msg, msglen, "the bearer token was refused: token has expired");
        return GRPC_STATUS_UNAUTHENTICATED;
    }
    out->role = v->claims.kind == AUTH_TOKEN_ADMIN ? RPC_ROLE_ADMIN : RPC_ROLE_JOB;
    memcpy(out->job_id, v->claims.job_id, sizeof(out->job_id));
    snprintf(out->token_id, sizeof(out->token_id), "%s", v->claims.id);
    return 0;
}

/* ---- checks --------------------------------------------------------------------------- */

static void rpc__roles_text(unsigned roles, char *out, size_t outlen)
{
    static const unsigned order[] = {RPC_ROLE_ADMIN, RPC_ROLE_GCS, RPC_ROLE_NODE, RPC_ROLE_JOB, RPC_ROLE_LOCAL};
    size_t n = 0, count = 0, total = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
        total += (roles & order[i]) != 0;
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]) && n < outlen; i++) {
        if (!(roles & order[i]))
            continue;
        count++;
        const char *sep = count == 1 ? "" : count == total ? " or " : ", ";
        n += (size_t)snprintf(out + n, outlen - n, "%s%s", sep, rpc__role_name(order[i]));
    }
}

int rpc__acl_check_role(const rpc__acl *acl, const char *service, const char *method,
                        const rpc_identity *id, char *msg, size_t msglen)
{
    if (id->role == RPC_ROLE_ADMIN)
        return 0; /* the admin may do everything (an insecure server's callers are admin) */
    if (!acl) {
        snprintf(msg, msglen, "%s.%s is not in rayc's access-control table: nobody may call it", service, method);
        return GRPC_STATUS_PERMISSION_DENIED;
    }
    if (acl->roles & id->role)
        return 0;
    if (id->role == RPC_ROLE_ANON) {
        snprintf(msg, msglen,
                 "this rayc cluster requires a credential for %s: the call carried no client "
                 "certificate and no \"authorization: Bearer <token>\". Clients take the token from "
                 "RAYC_AUTH_TOKEN, then the file named by RAYC_AUTH_TOKEN_PATH, then the session on "
                 "this host; `rayc get-auth-token` on the head prints it",
                 method);
        return GRPC_STATUS_UNAUTHENTICATED;
    }
    char need[96], who[96];
    rpc__roles_text(acl->roles & ~(unsigned)RPC_ROLE_ANON, need, sizeof(need));
    rpc_identity_text(id, who, sizeof(who));
    snprintf(msg, msglen, "%s needs the role %s; the caller is %s", method, need, who);
    return GRPC_STATUS_PERMISSION_DENIED;
}

typedef struct rpc__scope_walk {
    const rpc__acl *acl;
    const rpc_identity *id;
    int values; /* values seen at the end of the path */
    int bad;    /* a value out of scope */
} rpc__scope_walk;

static void rpc__scope_value(rpc__scope_walk *w, const ProtobufCBinaryData *v)
{
    w->values++;
    switch (w->acl->scope) {
    case ACL_NODE_SELF:
        if (v->len != RC_NODE_ID_SIZE || memcmp(v->data, w->id->node_id, RC_NODE_ID_SIZE))
            w->bad = 1;
        break;
    case ACL_JOB_SELF:
        if (v->len < w->acl->offset + RC_JOB_ID_SIZE ||
            memcmp(v->data + w->acl->offset, w->id->job_id, RC_JOB_ID_SIZE))
            w->bad = 1;
        break;
    case ACL_KV:
        if (rpc__kv_namespace_is_system(v->data, v->len))
            w->bad = 1;
        break;
    case ACL_OPEN:
        break;
    }
}

/* Visits every bytes value at path (dotted field names) below msg. */
static void rpc__scope_walk_path(rpc__scope_walk *w, const ProtobufCMessage *msg, const char *path)
{
    const char *dot = strchr(path, '.');
    char name[64];
    size_t n = dot ? (size_t)(dot - path) : strlen(path);
    if (!msg || n >= sizeof(name))
        return;
    memcpy(name, path, n);
    name[n] = '\0';
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(msg->descriptor, name);
    if (!f)
        return;
    const char *base = (const char *)msg + f->offset;
    size_t count = 1;
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        count = *(const size_t *)((const char *)msg + f->quantifier_offset);
    if (dot) {
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            return;
        for (size_t i = 0; i < count; i++) {
            const ProtobufCMessage *sub = f->label == PROTOBUF_C_LABEL_REPEATED
                                              ? (*(ProtobufCMessage *const *const *)base)[i]
                                              : *(ProtobufCMessage *const *)base;
            rpc__scope_walk_path(w, sub, dot + 1);
        }
        return;
    }
    if (f->type != PROTOBUF_C_TYPE_BYTES)
        return;
    for (size_t i = 0; i < count; i++) {
        const ProtobufCBinaryData *v = f->label == PROTOBUF_C_LABEL_REPEATED
                                           ? &(*(ProtobufCBinaryData *const *)base)[i]
                                           : (const ProtobufCBinaryData *)base;
        rpc__scope_value(w, v);
    }
}

int rpc__acl_check_scope(const rpc__acl *acl, const char *method, const rpc_identity *id,
                         const ProtobufCMessage *req, char *msg, size_t msglen)
{
    if (!acl || acl->scope == ACL_OPEN || !acl->field)
        return 0;
    unsigned held = acl->scope == ACL_NODE_SELF ? RPC_ROLE_NODE
                  : acl->scope == ACL_JOB_SELF  ? RPC_ROLE_JOB
                                                : (unsigned)~(RPC_ROLE_ADMIN | RPC_ROLE_GCS);
    if (!(id->role & held))
        return 0;
    rpc__scope_walk w = {acl, id, 0, 0};
    rpc__scope_walk_path(&w, req, acl->field);
    char who[96];
    rpc_identity_text(id, who, sizeof(who));
    switch (acl->scope) {
    case ACL_NODE_SELF:
        if (!w.bad && w.values > 0)
            return 0;
        snprintf(msg, msglen, "%s: %s may name only its own node ID in %s", method, who, acl->field);
        break;
    case ACL_JOB_SELF:
        if (!w.bad && w.values > 0)
            return 0;
        snprintf(msg, msglen, "%s: %s may act only on its own job (%s names another)", method, who, acl->field);
        break;
    default:
        if (!w.bad)
            return 0;
        snprintf(msg, msglen,
                 "%s: system KV namespaces (cluster, session, rayc*) are written by the GCS and the "
                 "admin only; the caller is %s",
                 method, who);
    }
    return GRPC_STATUS_PERMISSION_DENIED;
}
