/*
 * GCS storage: the interface every table manager writes through (ARCHITECTURE §5).
 *
 * A store holds named tables ("NODE", "JOB", "KV", ...) of binary key -> binary value, plus
 * the job counter. Two backends implement it behind gcs_store_ops: memory (the default;
 * state lives as long as the process) and Redis (state survives a GCS restart). The Redis
 * layout is Ray's: one hash per table named "RAY<namespace>@<TABLE>", the field is the key
 * and the value the serialized record; the job counter is the string key
 * "RAY<namespace>@JobCounter".
 *
 * Every operation completes through its callback, exactly once, unless the call itself
 * returns an error (then never). The memory backend calls back before returning; the Redis
 * backend later, on the loop thread. Callers must therefore do nothing after starting an
 * operation that the callback could invalidate. Data handed to a callback is valid only
 * during the callback. Keys and values passed in are copied before the call returns.
 *
 * Loop thread only.
 */
#ifndef RAYC_GCS_STORE_H
#define RAYC_GCS_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct gcs_store gcs_store;

typedef struct gcs_store_item {
    const void *key;
    size_t klen;
    const void *value; /* NULL for key-only results (gcs_store_keys) */
    size_t vlen;
} gcs_store_item;

/* rc: 0 or a negative RC_E* (RC_EUNAVAIL when the backend cannot be reached). n: what the
 * operation counts (see each operation). */
typedef void (*gcs_store_count_cb)(int rc, int64_t n, void *arg);
/* rc: 0, RC_ENOENT when the key is absent, or another RC_E*. */
typedef void (*gcs_store_get_cb)(int rc, const void *value, size_t vlen, void *arg);
/* rc: 0 or RC_E*; items[0..n) in unspecified order. */
typedef void (*gcs_store_items_cb)(int rc, const gcs_store_item *items, size_t n, void *arg);

typedef struct gcs_store_ops {
    const char *name; /* "memory", "redis" */
    /* Stores key -> value. With overwrite 0 an existing value is kept. n: 1 if the key was
     * new, 0 if it existed (Ray's "added"). */
    int (*put)(gcs_store *s, const char *table, const void *key, size_t klen, const void *value,
               size_t vlen, int overwrite, gcs_store_count_cb cb, void *arg);
    int (*get)(gcs_store *s, const char *table, const void *key, size_t klen,
               gcs_store_get_cb cb, void *arg);
    /* The entries among keys[0..n) that exist. */
    int (*multi_get)(gcs_store *s, const char *table, const void *const *keys,
                     const size_t *klens, size_t n, gcs_store_items_cb cb, void *arg);
    /* Every entry of the table. */
    int (*get_all)(gcs_store *s, const char *table, gcs_store_items_cb cb, void *arg);
    /* The keys (values NULL) that start with prefix (plen 0: all keys). */
    int (*keys)(gcs_store *s, const char *table, const void *prefix, size_t plen,
                gcs_store_items_cb cb, void *arg);
    /* Deletes keys[0..n). n in the callback: how many existed. */
    int (*del)(gcs_store *s, const char *table, const void *const *keys, const size_t *klens,
               size_t n, gcs_store_count_cb cb, void *arg);
    /* n: 1 if key exists, else 0. */
    int (*exists)(gcs_store *s, const char *table, const void *key, size_t klen,
                  gcs_store_count_cb cb, void *arg);
    /* Increments the job counter; n: its new value (1 for the first job). */
    int (*next_job_id)(gcs_store *s, gcs_store_count_cb cb, void *arg);
    /* Fails every pending operation with RC_ECANCELED (callbacks run) and frees s. */
    void (*destroy)(gcs_store *s);
} gcs_store_ops;

struct gcs_store {
    const gcs_store_ops *ops;
};

/* The memory backend. Never fails. Free with s->ops->destroy(s). */
gcs_store *gcs_store_memory_new(void);

/* Credentials for a Redis that asks for them (requirepass, or an ACL user). */
typedef struct gcs_store_redis_auth {
    const char *username; /* NULL: Redis's "default" user (AUTH <password>) */
    const char *password; /* NULL: send no AUTH */
} gcs_store_redis_auth;

/* The Redis backend on loop: connects to host:port (a hiredis async context on the libuv
 * loop), authenticates when auth names a password (AUTH [username] password is the first
 * command of every connection, reconnections included; auth is copied and the copy of the
 * password is wiped when the store is freed; it is never logged), checks the server
 * answers, then calls cb(rc, 0, arg) with 0, RC_EUNAVAIL, or RC_EAUTH when Redis refused
 * the credentials or wants some and none were given (the log then says which, in a
 * sentence), and stores the store in *out before the callback runs. namespace_ is the table namespace
 * (rc_cfg.external_storage_namespace). If the connection drops later, operations fail with
 * RC_EUNAVAIL while the store reconnects in the background. Free with s->ops->destroy(s).
 * Precisely: after either outcome the store stays valid until destroyed and keeps trying to
 * connect (backoff up to 2 s); while it is not connected an operation returns RC_EUNAVAIL
 * from the call (its callback never runs), and operations in flight when the connection
 * drops call back with RC_EUNAVAIL. The connect deadline is rc_cfg.redis_connect_timeout_ms.
 * Sets SIGPIPE to SIG_IGN if it was at its default, so a vanished Redis cannot kill the
 * process. */
int gcs_store_redis_connect(uv_loop_t *loop, const char *host, int port, const char *namespace_,
                            const gcs_store_redis_auth *auth, gcs_store **out,
                            gcs_store_count_cb cb, void *arg);

/* Table names (Ray's TablePrefix names). */
#define GCS_TABLE_NODE "NODE"
#define GCS_TABLE_JOB "JOB"
#define GCS_TABLE_KV "KV"
#define GCS_TABLE_ACTOR "ACTOR"
#define GCS_TABLE_ACTOR_TASK_SPEC "ACTOR_TASK_SPEC"
#define GCS_TABLE_PLACEMENT_GROUP "PLACEMENT_GROUP"
#define GCS_TABLE_WORKERS "WORKERS"
#define GCS_TABLE_AUTH "AUTH" /* rayc's: the cluster CA, join tokens, node identities */

#endif
