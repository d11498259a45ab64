/*
 * GCS internal key-value store: InternalKVGcsService.
 *
 * Keys live in the store's KV table under Ray's layout: namespace ns and key k become the
 * field "@namespace_<ns>:<k>" (just k when ns is empty), so a Redis holding a rayc cluster
 * reads like one holding a Ray cluster. Reads and writes go straight through the store, as
 * Ray's GCS does; the memory store answers before the call returns, Redis after a round
 * trip. Keys may not themselves start with "@namespace_" (Ray refuses them too), which
 * keeps every key unambiguous.
 *
 * Limits (ARCHITECTURE §14): a value over kv_max_value_bytes, or a put that would make its
 * namespace hold more than kv_max_namespace_bytes of keys and values, is refused with gRPC
 * RESOURCE_EXHAUSTED and nothing is stored. The manager keeps the size of every entry in
 * memory (read once from storage at start, gcs_kv_manager_load) and the total per
 * namespace; a put counts as soon as it is sent (and is taken back if storage fails), a
 * delete as soon as it is sent. The namespace of a stored key is the part before its first
 * ':' after "@namespace_", so a namespace that itself contains ':' is counted under its
 * first part. The system namespaces ("cluster", "session", "rayc*") are writable only by
 * the admin and the GCS; the RPC layer enforces that before a handler runs.
 *
 * Loop thread only.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "gcs_int.h"
#include "rc_alloc.h"
#include "rc_buf.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_log.h"

static const char kNamespacePrefix[] = "@namespace_";
#define GCS__NS_PREFIX_LEN (sizeof(kNamespacePrefix) - 1)

struct gcs_kv_manager {
    gcs_server *gcs;
    rc_map sizes;  /* stored key -> (uintptr_t) 1 + bytes of its key (without the namespace
                      part) and value */
    rc_map totals; /* namespace -> (uintptr_t) bytes of keys and values in it (absent: 0) */
    gcs_load_cb load_cb;
};

char *gcs_kv_make_key(const void *ns, size_t ns_len, const void *key, size_t klen, size_t *len)
{
    rc_buf b = RC_BUF_INIT;
    if (ns_len) {
        rc_buf_append(&b, kNamespacePrefix, GCS__NS_PREFIX_LEN);
        rc_buf_append(&b, ns, ns_len);
        rc_buf_putc(&b, ':');
    }
    rc_buf_append(&b, key, klen);
    *len = b.len;
    return rc_buf_detach(&b);
}

/* Length of the "@namespace_<ns>:" part of a stored key. */
static size_t gcs__ns_part(size_t ns_len)
{
    return ns_len ? GCS__NS_PREFIX_LEN + ns_len + 1 : 0;
}

static int gcs__bad_key(const ProtobufCBinaryData *key)
{
    return key->len >= GCS__NS_PREFIX_LEN && memcmp(key->data, kNamespacePrefix, GCS__NS_PREFIX_LEN) == 0;
}

/* ---- limits: accounting of entry sizes per namespace ----------------------------------- */

/* The namespace part ns[0..*ns_len) of stored key k, and the length of its user key. */
static void gcs__split_stored_key(const char *k, size_t klen, const char **ns, size_t *ns_len,
                                  size_t *user_klen)
{
    *ns = "";
    *ns_len = 0;
    *user_klen = klen;
    if (klen < GCS__NS_PREFIX_LEN || memcmp(k, kNamespacePrefix, GCS__NS_PREFIX_LEN) != 0)
        return;
    const char *start = k + GCS__NS_PREFIX_LEN;
    const char *colon = memchr(start, ':', klen - GCS__NS_PREFIX_LEN);
    if (!colon)
        return;
    *ns = start;
    *ns_len = (size_t)(colon - start);
    *user_klen = klen - gcs__ns_part(*ns_len);
}

static uint64_t gcs__ns_total(const gcs_kv_manager *kv, const void *ns, size_t ns_len)
{
    return (uint64_t)(uintptr_t)rc_map_get(&kv->totals, ns, ns_len);
}

static void gcs__ns_add(gcs_kv_manager *kv, const void *ns, size_t ns_len, int64_t delta)
{
    int64_t total = (int64_t)gcs__ns_total(kv, ns, ns_len) + delta;
    if (total <= 0)
        rc_map_remove(&kv->totals, ns, ns_len);
    else
        rc_map_put(&kv->totals, ns, ns_len, (void *)(uintptr_t)total);
}

/* Accounts stored key k as holding size bytes (0: absent). Returns its size before. */
static uintptr_t gcs__account(gcs_kv_manager *kv, const char *k, size_t klen, uintptr_t size)
{
    const char *ns;
    size_t ns_len, user_klen;
    gcs__split_stored_key(k, klen, &ns, &ns_len, &user_klen);
    uintptr_t stored = (uintptr_t)rc_map_get(&kv->sizes, k, klen);
    uintptr_t old = stored ? stored - 1 : 0;
    if (size)
        rc_map_put(&kv->sizes, k, klen, (void *)(size + 1));
    else if (stored)
        rc_map_remove(&kv->sizes, k, klen);
    if (!size && !stored)
        return 0;
    gcs__ns_add(kv, ns, ns_len, (int64_t)size - (int64_t)old);
    return old;
}

/* A namespace for a message: printable, at most 64 characters. */
static void gcs__ns_text(const void *ns, size_t ns_len, char *out, size_t outlen)
{
    size_t n = 0;
    const unsigned char *p = ns;
    for (size_t i = 0; i < ns_len && n + 4 < outlen && i < 64; i++)
        out[n++] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
    if (ns_len > 64 && n + 4 < outlen) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}

typedef struct gcs__kv_op {
    rpc_call *call;
    size_t ns_part; /* bytes to strip from stored keys */
    gcs_kv_manager *kv;
    char *key;      /* put: the stored key, to take the accounting back if storage fails */
    size_t klen;
    uintptr_t old_size; /* put: the entry's accounted size before (0: none) */
} gcs__kv_op;

static gcs__kv_op *gcs__kv_op_new(gcs_kv_manager *kv, rpc_call *call, size_t ns_len)
{
    gcs__kv_op *op = RC_NEW(gcs__kv_op);
    op->kv = kv;
    op->call = call;
    op->ns_part = gcs__ns_part(ns_len);
    return op;
}

#define GCS__REJECT_BAD_KEY(call, reply, key)                                                  \
    do {                                                                                       \
        if (gcs__bad_key(key))                                                                 \
            return gcs__reply(call, &(reply).base, GCS_STATUS_KEY_ERROR,                       \
                              "key can't start with %s", kNamespacePrefix);                    \
    } while (0)

/* ---- Get / MultiGet ------------------------------------------------------------------- */

static void gcs__kv_got(int rc, const void *value, size_t vlen, void *arg)
{
    gcs__kv_op *op = arg;
    Ray__Rpc__InternalKVGetReply reply = RAY__RPC__INTERNAL_KVGET_REPLY__INIT;
    if (rc == RC_ENOENT)
        gcs__reply(op->call, &reply.base, GCS_STATUS_NOT_FOUND, "Failed to find the key");
    else if (rc < 0)
        gcs__reply(op->call, &reply.base, GCS_STATUS_IO_ERROR, "storage: %s", rc_strerror(rc));
    else {
        reply.value.data = (uint8_t *)value;
        reply.value.len = vlen;
        gcs__reply_ok(op->call, &reply.base);
    }
    rc_free(op);
}

static void handle_get(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_kv_manager *kv = arg;
    const Ray__Rpc__InternalKVGetRequest *req = (const void *)request;
    Ray__Rpc__InternalKVGetReply reply = RAY__RPC__INTERNAL_KVGET_REPLY__INIT;
    GCS__REJECT_BAD_KEY(call, reply, &req->key);
    size_t klen;
    char *key = gcs_kv_make_key(req->namespace_.data, req->namespace_.len, req->key.data, req->key.len, &klen);
    gcs__kv_op *op = gcs__kv_op_new(kv, call, req->namespace_.len);
    gcs_store *st = kv->gcs->store;
    int rc = st->ops->get(st, GCS_TABLE_KV, key, klen, gcs__kv_got, op);
    rc_free(key);
    if (rc < 0)
        gcs__kv_got(rc, NULL, 0, op);
}

static void gcs__kv_multi_got(int rc, const gcs_store_item *items, size_t n, void *arg)
{
    gcs__kv_op *op = arg;
    Ray__Rpc__InternalKVMultiGetReply reply = RAY__RPC__INTERNAL_KVMULTI_GET_REPLY__INIT;
    if (rc < 0) {
        gcs__reply(op->call, &reply.base, GCS_STATUS_IO_ERROR, "storage: %s", rc_strerror(rc));
        rc_free(op);
        return;
    }
    Ray__Rpc__MapFieldEntry *entries = rc_calloc(n ? n : 1, sizeof(*entries));
    Ray__Rpc__MapFieldEntry **ptrs = rc_calloc(n ? n : 1, sizeof(*ptrs));
    for (size_t i = 0; i < n; i++) {
        ray__rpc__map_field_entry__init(&entries[i]);
        entries[i].key.data = (uint8_t *)items[i].key + op->ns_part;
        entries[i].key.len = items[i].klen - op->ns_part;
        entries[i].value.data = (uint8_t *)items[i].value;
        entries[i].value.len = items[i].vlen;
        ptrs[i] = &entries[i];
    }
    reply.results = ptrs;
    reply.n_results = n;
    gcs__reply_ok(op->call, &reply.base);
    rc_free(ptrs);
    rc_free(entries);
    rc_free(op);
}

static void handle_multi_get(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_kv_manager *kv = arg;
    const Ray__Rpc__InternalKVMultiGetRequest *req = (const void *)request;
    Ray__Rpc__InternalKVMultiGetReply reply = RAY__RPC__INTERNAL_KVMULTI_GET_REPLY__INIT;
    for (size_t i = 0; i < req->n_keys; i++)
        GCS__REJECT_BAD_KEY(call, reply, &req->keys[i]);
    /* Ray answers with a map: a key asked for twice comes back once. */
    size_t n = 0;
    char **keys = rc_calloc(req->n_keys ? req->n_keys : 1, sizeof(*keys));
    size_t *klens = rc_calloc(req->n_keys ? req->n_keys : 1, sizeof(*klens));
    rc_map seen = RC_MAP_INIT;
    for (size_t i = 0; i < req->n_keys; i++) {
        if (rc_map_put(&seen, req->keys[i].data, req->keys[i].len, (void *)1))
            continue;
        keys[n] = gcs_kv_make_key(req->namespace_.data, req->namespace_.len, req->keys[i].data, req->keys[i].len,
                                  &klens[n]);
        n++;
    }
    rc_map_destroy(&seen, NULL);
    gcs__kv_op *op = gcs__kv_op_new(kv, call, req->namespace_.len);
    gcs_store *st = kv->gcs->store;
    int rc = st->ops->multi_get(st, GCS_TABLE_KV, (const void *const *)keys, klens, n,
                                gcs__kv_multi_got, op);
    for (size_t i = 0; i < n; i++)
        rc_free(keys[i]);
    rc_free(keys);
    rc_free(klens);
    if (rc < 0)
        gcs__kv_multi_got(rc, NULL, 0, op);
}

/* ---- Put / Exists --------------------------------------------------------------------- */

static void gcs__kv_put_done(int rc, int64_t added, void *arg)
{
    gcs__kv_op *op = arg;
    Ray__Rpc__InternalKVPutReply reply = RAY__RPC__INTERNAL_KVPUT_REPLY__INIT;
    if (op->key && rc < 0)
        gcs__account(op->kv, op->key, op->klen, op->old_size);
    rc_free(op->key);
    if (rc < 0) {
        gcs__reply(op->call, &reply.base, GCS_STATUS_IO_ERROR, "storage: %s", rc_strerror(rc));
    } else {
        reply.added = added > 0;
        gcs__reply_ok(op->call, &reply.base);
    }
    rc_free(op);
}

/* 0 if the put fits the limits; otherwise the call is answered RESOURCE_EXHAUSTED. stores:
 * whether the put would store anything (not when the key exists and overwrite is off).
 * A put that does not grow its namespace is let through even over the limit (which may
 * have been lowered since). */
static int gcs__check_limits(gcs_kv_manager *kv, rpc_call *call,
                             const Ray__Rpc__InternalKVPutRequest *req, int stores,
                             uintptr_t old_size)
{
    const ProtobufCBinaryData *ns = &req->namespace_;
    if ((int64_t)req->value.len > rc_cfg.kv_max_value_bytes) {
        rpc_reply_status(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
                         "InternalKVPut: a value of %zu bytes is over the limit of %lld bytes "
                         "(kv_max_value_bytes; raise it with RAYC_kv_max_value_bytes in the "
                         "GCS's environment)",
                         req->value.len, (long long)rc_cfg.kv_max_value_bytes);
        return -1;
    }
    uint64_t now = gcs__ns_total(kv, ns->data, ns->len);
    uint64_t total = now - old_size + req->key.len + req->value.len;
    if (stores && total > now && (int64_t)total > rc_cfg.kv_max_namespace_bytes) {
        char text[80];
        gcs__ns_text(ns->data, ns->len, text, sizeof(text));
        rpc_reply_status(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
                         "InternalKVPut: namespace '%s' would hold %llu bytes of keys and values, "
                         "over the limit of %lld bytes (kv_max_namespace_bytes; raise it with "
                         "RAYC_kv_max_namespace_bytes in the GCS's environment, or delete keys)",
                         text, (unsigned long long)total, (long long)rc_cfg.kv_max_namespace_bytes);
        return -1;
    }
    return 0;
}

static void handle_put(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_kv_manager *kv = arg;
    const Ray__Rpc__InternalKVPutRequest *req = (const void *)request;
    Ray__Rpc__InternalKVPutReply reply = RAY__RPC__INTERNAL_KVPUT_REPLY__INIT;
    GCS__REJECT_BAD_KEY(call, reply, &req->key);
    size_t klen;
    char *key = gcs_kv_make_key(req->namespace_.data, req->namespace_.len, req->key.data, req->key.len, &klen);
    uintptr_t stored = (uintptr_t)rc_map_get(&kv->sizes, key, klen);
    uintptr_t old_size = stored ? stored - 1 : 0;
    int stores = !stored || req->overwrite; /* otherwise the store keeps the value it has */
    if (gcs__check_limits(kv, call, req, stores, old_size) < 0) {
        rc_free(key);
        return;
    }
    gcs__kv_op *op = gcs__kv_op_new(kv, call, req->namespace_.len);
    if (stores) {
        op->old_size = gcs__account(kv, key, klen, req->key.len + req->value.len);
        op->key = rc_memdup(key, klen);
        op->klen = klen;
    }
    gcs_store *st = kv->gcs->store;
    int rc = st->ops->put(st, GCS_TABLE_KV, key, klen, req->value.data, req->value.len, req->overwrite,
                          gcs__kv_put_done, op);
    rc_free(key);
    if (rc < 0)
        gcs__kv_put_done(rc, 0, op);
}

static void gcs__kv_exists_done(int rc, int64_t exists, void *arg)
{
    gcs__kv_op *op = arg;
    Ray__Rpc__InternalKVExistsReply reply = RAY__RPC__INTERNAL_KVEXISTS_REPLY__INIT;
    if (rc < 0) {
        gcs__reply(op->call, &reply.base, GCS_STATUS_IO_ERROR, "storage: %s", rc_strerror(rc));
    } else {
        reply.exists = exists > 0;
        gcs__reply_ok(op->call, &reply.base);
    }
    rc_free(op);
}

static void handle_exists(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_kv_manager *kv = arg;
    const Ray__Rpc__InternalKVExistsRequest *req = (const void *)request;
    Ray__Rpc__InternalKVExistsReply reply = RAY__RPC__INTERNAL_KVEXISTS_REPLY__INIT;
    GCS__REJECT_BAD_KEY(call, reply, &req->key);
    size_t klen;
    char *key = gcs_kv_make_key(req->namespace_.data, req->namespace_.len, req->key.data, req->key.len, &klen);
    gcs__kv_op *op = gcs__kv_op_new(kv, call, req->namespace_.len);
    gcs_store *st = kv->gcs->store;
    int rc = st->ops->exists(st, GCS_TABLE_KV, key, klen, gcs__kv_exists_done, op);
    rc_free(key);
    if (rc < 0)
        gcs__kv_exists_done(rc, 0, op);
}

/* ---- Keys / Del ----------------------------------------------------------------------- */

static void gcs__kv_keys_done(int rc, const gcs_store_item *items, size_t n, void *arg)
{
    gcs__kv_op *op = arg;
    Ray__Rpc__InternalKVKeysReply reply = RAY__RPC__INTERNAL_KVKEYS_REPLY__INIT;
    if (rc < 0) {
        gcs__reply(op->call, &reply.base, GCS_STATUS_IO_ERROR, "storage: %s", rc_strerror(rc));
        rc_free(op);
        return;
    }
    ProtobufCBinaryData *keys = rc_calloc(n ? n : 1, sizeof(*keys));
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        /* Without a namespace, keys of namespaced entries are not this caller's. */
        if (!op->ns_part && items[i].klen >= GCS__NS_PREFIX_LEN &&
            memcmp(items[i].key, kNamespacePrefix, GCS__NS_PREFIX_LEN) == 0)
            continue;
        keys[m].data = (uint8_t *)items[i].key + op->ns_part;
        keys[m++].len = items[i].klen - op->ns_part;
    }
    reply.results = keys;
    reply.n_results = m;
    gcs__reply_ok(op->call, &reply.base);
    rc_free(keys);
    rc_free(op);
}

static void handle_keys(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_kv_manager *kv = arg;
    const Ray__Rpc__InternalKVKeysRequest *req = (const void *)request;
    size_t plen;
    char *prefix = gcs_kv_make_key(req->namespace_.data, req->namespace_.len, req->prefix.data,
                                   req->prefix.len, &plen);
    gcs__kv_op *op = gcs__kv_op_new(kv, call, req->namespace_.len);
    gcs_store *st = kv->gcs->store;
    int rc = st->ops->keys(st, GCS_TABLE_KV, prefix, plen, gcs__kv_keys_done, op);
    rc_free(prefix);
    if (rc < 0)
        gcs__kv_keys_done(rc, NULL, 0, op);
}

static void gcs__kv_del_done(int rc, int64_t deleted, void *arg)
{
    gcs__kv_op *op = arg;
    Ray__Rpc__InternalKVDelReply reply = RAY__RPC__INTERNAL_KVDEL_REPLY__INIT;
    if (rc < 0) {
        gcs__reply(op->call, &reply.base, GCS_STATUS_IO_ERROR, "storage: %s", rc_strerror(rc));
    } else {
        reply.deleted_num = (int32_t)deleted;
        gcs__reply_ok(op->call, &reply.base);
    }
    rc_free(op);
}

static void gcs__kv_del_keys_found(int rc, const gcs_store_item *items, size_t n, void *arg)
{
    gcs__kv_op *op = arg;
    if (rc < 0 || n == 0)
        return gcs__kv_del_done(rc, 0, op);
    const void **keys = rc_malloc(n * sizeof(*keys));
    size_t *klens = rc_malloc(n * sizeof(*klens));
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (!op->ns_part && items[i].klen >= GCS__NS_PREFIX_LEN &&
            memcmp(items[i].key, kNamespacePrefix, GCS__NS_PREFIX_LEN) == 0)
            continue;
        keys[m] = items[i].key;
        klens[m++] = items[i].klen;
    }
    for (size_t i = 0; i < m; i++)
        gcs__account(op->kv, keys[i], klens[i], 0);
    gcs_store *st = op->kv->gcs->store;
    rc = m ? st->ops->del(st, GCS_TABLE_KV, keys, klens, m, gcs__kv_del_done, op) : 0;
    rc_free(keys);
    rc_free(klens);
    if (rc < 0 || m == 0)
        gcs__kv_del_done(rc, 0, op);
}

static void handle_del(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_kv_manager *kv = arg;
    const Ray__Rpc__InternalKVDelRequest *req = (const void *)request;
    Ray__Rpc__InternalKVDelReply reply = RAY__RPC__INTERNAL_KVDEL_REPLY__INIT;
    if (!req->del_by_prefix)
        GCS__REJECT_BAD_KEY(call, reply, &req->key);
    size_t klen;
    char *key = gcs_kv_make_key(req->namespace_.data, req->namespace_.len, req->key.data, req->key.len, &klen);
    gcs__kv_op *op = gcs__kv_op_new(kv, call, req->namespace_.len);
    gcs_store *st = kv->gcs->store;
    int rc;
    if (req->del_by_prefix) {
        rc = st->ops->keys(st, GCS_TABLE_KV, key, klen, gcs__kv_del_keys_found, op);
        rc_free(key);
        if (rc < 0)
            gcs__kv_del_done(rc, 0, op);
        return;
    }
    const void *keys[1] = {key};
    size_t klens[1] = {klen};
    gcs__account(kv, key, klen, 0);
    rc = st->ops->del(st, GCS_TABLE_KV, keys, klens, 1, gcs__kv_del_done, op);
    rc_free(key);
    if (rc < 0)
        gcs__kv_del_done(rc, 0, op);
}

static void handle_get_internal_config(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    (void)request;
    (void)arg;
    Ray__Rpc__GetInternalConfigReply reply = RAY__RPC__GET_INTERNAL_CONFIG_REPLY__INIT;
    rc_buf json = RC_BUF_INIT;
    rc_config_to_json(&json);
    reply.config = (char *)rc_buf_cstr(&json);
    gcs__reply_ok(call, &reply.base);
    rc_buf_free(&json);
}

const rpc_method_handler gcs_kv_handlers[] = {
    {"InternalKVGet", handle_get},       {"InternalKVMultiGet", handle_multi_get},
    {"InternalKVPut", handle_put},       {"InternalKVDel", handle_del},
    {"InternalKVExists", handle_exists}, {"InternalKVKeys", handle_keys},
    {"GetInternalConfig", handle_get_internal_config}, {NULL, NULL},
};

static void gcs__kv_loaded(int rc, const gcs_store_item *items, size_t n, void *arg)
{
    gcs_kv_manager *kv = arg;
    if (rc < 0) {
        kv->load_cb(kv->gcs, rc);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const char *ns;
        size_t ns_len, user_klen;
        gcs__split_stored_key(items[i].key, items[i].klen, &ns, &ns_len, &user_klen);
        gcs__account(kv, items[i].key, items[i].klen, user_klen + items[i].vlen);
    }
    RC_INFO("gcs: %zu KV entries in %zu namespaces in storage", rc_map_size(&kv->sizes),
            rc_map_size(&kv->totals));
    kv->load_cb(kv->gcs, 0);
}

int gcs_kv_manager_load(gcs_kv_manager *kv, gcs_load_cb cb)
{
    kv->load_cb = cb;
    gcs_store *st = kv->gcs->store;
    return st->ops->get_all(st, GCS_TABLE_KV, gcs__kv_loaded, kv);
}

gcs_kv_manager *gcs_kv_manager_new(gcs_server *gcs)
{
    gcs_kv_manager *kv = RC_NEW(gcs_kv_manager);
    kv->gcs = gcs;
    rc_map_init(&kv->sizes);
    rc_map_init(&kv->totals);
    return kv;
}

void gcs_kv_manager_free(gcs_kv_manager *kv)
{
    if (!kv)
        return;
    rc_map_destroy(&kv->sizes, NULL);
    rc_map_destroy(&kv->totals, NULL);
    rc_free(kv);
}
