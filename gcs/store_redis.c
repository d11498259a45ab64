/*
 * The Redis storage backend: GCS tables as Redis hashes in Ray's layout, "RAY<ns>@<TABLE>"
 * with field = key and value = record, and the job counter as the string key
 * "RAY<ns>@JobCounter" (ARCHITECTURE §5). One hiredis async connection on the libuv loop;
 * commands are pipelined on it and their replies come back in order.
 *
 * Connection states: DOWN (waiting for the backoff timer) -> CONNECTING (connect(2), AUTH
 * when a password is configured, and a PING, under a deadline of
 * rc_cfg.redis_connect_timeout_ms) -> READY, and back to DOWN
 * whenever an attempt fails or the connection drops; CLOSED once destroyed. Operations are
 * accepted only while READY; otherwise the call returns RC_EUNAVAIL and its callback never
 * runs. When a READY connection drops, every operation in flight on it fails with
 * RC_EUNAVAIL and the store reconnects in the background (100 ms backoff doubling to 2 s),
 * so a GCS keeps running through a Redis restart and recovers when Redis returns. A put
 * calls back only once Redis has acknowledged the write (write-through).
 *
 * Lifetimes, the subtle part. hiredis runs every queued reply callback exactly once: with
 * the reply, or with NULL while it frees the context (after an error, or when we free it,
 * possibly later than we ask if we ask from inside one of its callbacks). So an operation
 * (rop) is reference-counted: one reference per command hiredis still owes a reply for,
 * plus one until the caller's callback has run ("done"). A done rop no longer points at its
 * store, so a late NULL reply after the store is gone only drops a reference. The context
 * points back at the store through ac->data, cleared when the store lets go of it
 * (detach), so hiredis' connect and disconnect callbacks on an abandoned context do
 * nothing. The caller's callbacks are always the last thing a function does with the store,
 * because any of them may destroy it. Handles: the timer and the socket's poll handle are
 * freed in their close callbacks, so destroy() frees the store at once and the loop can
 * close after one more turn.
 *
 * Authentication: AUTH [username] password is queued before the PING on every connection,
 * so no other command ever runs unauthenticated. A refused AUTH, or a PING answered NOAUTH
 * (Redis wants a password and none was configured), is reported in a sentence that names the
 * server and never the password; on the first attempt the connect callback gets RC_EAUTH
 * (retrying will not help), later the store keeps retrying as for any outage.
 *
 * The loop glue is hiredis' libuv adapter with one fix (see attach_loop).
 *
 * Loop thread only.
 */
#define _DEFAULT_SOURCE /* explicit_bzero */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "rc_alloc.h"
#include "rc_buf.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_list.h"
#include "rc_log.h"
#include "rc_map.h"
#include "store.h"
#include "store_int.h"

/* HSCAN asks for this many entries per round trip; HMGET and HDEL send at most this many
 * fields per command, so one huge request does not make one huge command and reply. */
#define RS_BATCH 1000
#define RS_BACKOFF_MIN_MS 100
#define RS_BACKOFF_MAX_MS 2000

typedef enum rs_state { RS_DOWN, RS_CONNECTING, RS_READY, RS_CLOSED } rs_state;

typedef enum rop_kind {
    ROP_PING,  /* the (AUTH and) PING that complete a connection attempt */
    ROP_COUNT, /* integer replies, summed: put, del, exists, next_job_id */
    ROP_GET,   /* one bulk string or nil */
    ROP_MGET,  /* HMGET batches */
    ROP_SCAN,  /* HSCAN rounds: get_all, keys */
} rop_kind;

/* A result entry; offsets into the rop's arena, which may move while it grows. */
typedef struct ritem {
    size_t koff, klen;
    size_t voff, vlen;
    int found; /* MGET: the key exists */
} ritem;

struct redis_store;

typedef struct rop {
    rc_list link;            /* in the store's in-flight list while not done */
    struct redis_store *s;   /* NULL once done */
    rop_kind kind;
    const char *what; /* the command, for log lines */
    int refs;         /* replies hiredis still owes, plus one while not done */
    int done;         /* the caller's callback has run (or is running) */
    int rc;           /* first failure among several replies */
    int noop;         /* an empty request: the one command sent is a PING */
    size_t replies_left;
    size_t replies_seen;
    union {
        gcs_store_count_cb count;
        gcs_store_get_cb get;
        gcs_store_items_cb items;
    } cb;
    void *arg;
    int64_t n;          /* COUNT: sum of the integer replies */
    rc_buf arena;       /* MGET, SCAN: key and value bytes */
    ritem *items;       /* MGET: one per requested key; SCAN: one per distinct key */
    size_t nitems, items_cap;
    rc_map seen;        /* SCAN: key -> index + 1 in items, since HSCAN may repeat a key */
    int with_values;    /* SCAN: get_all (1) or keys (0) */
    char *hash;         /* SCAN: the hash and MATCH pattern (NULL: none) for the next round */
    size_t hash_len;
    char *pattern;
    size_t pattern_len;
} rop;

typedef struct redis_store {
    gcs_store base;
    uv_loop_t *loop;
    char *host;
    int port;
    char *prefix; /* "RAY<namespace>@" */
    size_t prefix_len;
    char *counter_key; /* "RAY<namespace>@JobCounter" */
    size_t counter_len;
    char *username, *password; /* AUTH credentials (NULL: none); the password is wiped on free */
    rs_state state;
    redisAsyncContext *ac;    /* the connection, ac->data == this store; NULL while DOWN */
    rop *ping;                /* CONNECTING: the PING in flight */
    rc_list ops;              /* READY: operations in flight (rop.link), oldest first */
    uv_timer_t *timer;        /* CONNECTING: the deadline; DOWN: the next attempt */
    uint64_t backoff_ms;
    int quiet; /* this outage was reported; further failed attempts log at debug level */
    gcs_store_count_cb connect_cb; /* until the first attempt has been reported */
    void *connect_arg;
} redis_store;

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata);
static void start_attempt(redis_store *s);
static void on_timer(uv_timer_t *timer);

/* hiredis wants a pointer even for zero bytes. */
static const char *bytes_or_empty(const void *p)
{
    return p ? p : "";
}

/* ---- operations: lifetime -------------------------------------------------------------- */

/* A new in-flight operation holding the "not done" reference, linked into s's list. */
static rop *op_new(redis_store *s, rop_kind kind, const char *what, void *arg)
{
    rop *op = RC_NEW(rop);
    op->s = s;
    op->kind = kind;
    op->what = what;
    op->arg = arg;
    op->refs = 1;
    rc_map_init(&op->seen);
    if (kind == ROP_PING)
        return op; /* tracked as s->ping, not in the list */
    rc_list_insert_tail(&s->ops, &op->link);
    return op;
}

static void op_unlink(rop *op)
{
    redis_store *s = op->s;
    if (!s || op->kind == ROP_PING)
        return;
    rc_list_remove(&op->link);
}

/* Frees the results; done operations need only their reference count. */
static void op_release_data(rop *op)
{
    rc_buf_free(&op->arena);
    rc_free(op->items);
    op->items = NULL;
    op->nitems = op->items_cap = 0;
    rc_map_destroy(&op->seen, NULL);
    rc_free(op->hash);
    rc_free(op->pattern);
    op->hash = op->pattern = NULL;
}

static void op_unref(rop *op)
{
    if (--op->refs > 0)
        return;
    op_release_data(op);
    rc_free(op);
}

/* Marks op done and detaches it from its store without calling anyone. */
static void op_mark_done(rop *op)
{
    op_unlink(op);
    op->done = 1;
    op->s = NULL;
}

/* Calls the caller's callback with rc and, on success, the result. value/vlen: ROP_GET's
 * value, valid for the call only. The store may be gone when this returns. */
static void op_deliver(rop *op, int rc, const void *value, size_t vlen)
{
    switch (op->kind) {
    case ROP_PING:
        break;
    case ROP_COUNT:
        op->cb.count(rc, rc ? 0 : op->n, op->arg);
        break;
    case ROP_GET:
        op->cb.get(rc, rc ? NULL : value, rc ? 0 : vlen, op->arg);
        break;
    case ROP_MGET:
    case ROP_SCAN: {
        if (rc) {
            op->cb.items(rc, NULL, 0, op->arg);
            break;
        }
        const char *base = op->arena.data ? op->arena.data : "";
        gcs_store_item *out = rc_calloc(op->nitems ? op->nitems : 1, sizeof(*out));
        size_t n = 0;
        for (size_t i = 0; i < op->nitems; i++) {
            const ritem *it = &op->items[i];
            if (op->kind == ROP_MGET && !it->found)
                continue;
            int has_value = op->kind == ROP_MGET || op->with_values;
            out[n++] = (gcs_store_item){base + it->koff, it->klen,
                                        has_value ? base + it->voff : NULL,
                                        has_value ? it->vlen : 0};
        }
        op->cb.items(0, out, n, op->arg);
        rc_free(out);
        break;
    }
    }
}

/* Completes op: the caller's callback runs (last), then the "not done" reference goes. op
 * itself stays valid while a hiredis reply callback holds a reference on it. */
static void op_finish(rop *op, int rc, const void *value, size_t vlen)
{
    op_mark_done(op);
    op_deliver(op, rc, value, vlen);
    op_release_data(op);
    op_unref(op);
}

/* Queues one command for op. Returns 0 or RC_EUNAVAIL (hiredis refuses commands once the
 * connection is going away). hiredis copies argv before returning. */
static int op_send(redis_store *s, rop *op, int argc, const char **argv, const size_t *lens)
{
    if (!s->ac || redisAsyncCommandArgv(s->ac, on_reply, op, argc, argv, lens) != REDIS_OK)
        return RC_EUNAVAIL;
    op->refs++;
    op->replies_left++;
    return 0;
}

/* Sends op's only (first) command. On failure op is freed, its callback never runs, and the
 * caller returns the error. */
static int op_start(redis_store *s, rop *op, int argc, const char **argv, const size_t *lens)
{
    int rc = op_send(s, op, argc, argv, lens);
    if (rc) {
        op_mark_done(op);
        op_release_data(op);
        op_unref(op);
    }
    return rc;
}

/* ---- the loop glue ---------------------------------------------------------------------- */

/* hiredis' libuv adapter (hiredis/adapters/libuv.h), with the fix later hiredis releases
 * made: libuv reports POLLERR (a refused connect, a reset connection) as status UV_EBADF and
 * stops the handle, and the 0.14 adapter returns on any status, so hiredis never learned of
 * the error and the connection hung with its commands. Here an error is passed on as the
 * events hiredis was waiting for; its read or write then meets the real error and tears the
 * context down the usual way. */
typedef struct rs_poll {
    redisAsyncContext *ac; /* NULL once hiredis has let go (cleanup) */
    uv_poll_t handle;
    int events;
} rs_poll;

static void poll_cb(uv_poll_t *handle, int status, int events)
{
    rs_poll *p = handle->data;
    int ready = status ? p->events : events;
    if (p->ac && (ready & UV_READABLE))
        redisAsyncHandleRead(p->ac);
    if (p->ac && (ready & UV_WRITABLE))
        redisAsyncHandleWrite(p->ac);
}

static void poll_update(rs_poll *p)
{
    if (p->events)
        uv_poll_start(&p->handle, p->events, poll_cb);
    else
        uv_poll_stop(&p->handle);
}

static void poll_add_read(void *data)
{
    rs_poll *p = data;
    p->events |= UV_READABLE;
    poll_update(p);
}

static void poll_del_read(void *data)
{
    rs_poll *p = data;
    p->events &= ~UV_READABLE;
    poll_update(p);
}

static void poll_add_write(void *data)
{
    rs_poll *p = data;
    p->events |= UV_WRITABLE;
    poll_update(p);
}

static void poll_del_write(void *data)
{
    rs_poll *p = data;
    p->events &= ~UV_WRITABLE;
    poll_update(p);
}

static void poll_closed(uv_handle_t *handle)
{
    rc_free(handle->data);
}

/* hiredis is freeing the context (it closes the socket right after). */
static void poll_cleanup(void *data)
{
    rs_poll *p = data;
    p->ac = NULL;
    uv_close((uv_handle_t *)&p->handle, poll_closed);
}

/* Watches ac's socket on loop. Returns 0 or RC_ESYS; on success the poll handle belongs to
 * the context, and is closed and freed when hiredis frees the context. */
static int attach_loop(redisAsyncContext *ac, uv_loop_t *loop)
{
    rs_poll *p = RC_NEW(rs_poll);
    if (uv_poll_init_socket(loop, &p->handle, ac->c.fd) != 0) {
        rc_free(p);
        return RC_ESYS;
    }
    p->handle.data = p;
    p->ac = ac;
    ac->ev.data = p;
    ac->ev.addRead = poll_add_read;
    ac->ev.delRead = poll_del_read;
    ac->ev.addWrite = poll_add_write;
    ac->ev.delWrite = poll_del_write;
    ac->ev.cleanup = poll_cleanup;
    return 0;
}

/* ---- the connection -------------------------------------------------------------------- */

/* The connection attempt's PING is settled (answered or abandoned); a reply still owed for
 * it only drops hiredis' reference. */
static void release_ping(redis_store *s)
{
    rop *ping = s->ping;
    if (!ping)
        return;
    s->ping = NULL;
    op_mark_done(ping);
    op_unref(ping);
}

/* Lets go of the connection: hiredis callbacks on it will no longer find the store, and the
 * pending PING (if any) is done. Returns the context, which the caller frees unless hiredis
 * is already freeing it. */
static redisAsyncContext *detach(redis_store *s)
{
    redisAsyncContext *ac = s->ac;
    s->ac = NULL;
    if (ac)
        ac->data = NULL;
    release_ping(s);
    return ac;
}

/* Fails the pending connect callback and every in-flight operation with rc. Everything is
 * taken off the store first, because any of the callbacks may destroy it; the store is not
 * touched here after that. */
static void fail_everything(redis_store *s, int rc)
{
    rc_list list;
    rc_list_init(&list);
    rc_list_move_tail(&s->ops, &list);
    gcs_store_count_cb connect_cb = s->connect_cb;
    void *connect_arg = s->connect_arg;
    s->connect_cb = NULL;
    rc_list *n;
    RC_LIST_FOREACH(n, &list) {
        rop *op = rc_list_entry(n, rop, link);
        op->done = 1;
        op->s = NULL;
    }
    if (connect_cb)
        connect_cb(rc, 0, connect_arg);
    while ((n = rc_list_first(&list))) {
        rop *op = rc_list_entry(n, rop, link);
        rc_list_remove(n);
        op_deliver(op, rc, NULL, 0);
        op_release_data(op);
        op_unref(op);
    }
}

/* The attempt failed or the connection dropped (why: for the log). The caller has freed the
 * context or hiredis is freeing it. Schedules the next attempt, then fails what was waiting
 * on this connection: the connect callback (first attempt) with rc (RC_EUNAVAIL, or RC_EAUTH
 * when why is already the whole sentence about refused credentials), operations in flight
 * with RC_EUNAVAIL. */
static void connection_down(redis_store *s, const char *why, int rc)
{
    int was_ready = s->state == RS_READY;
    detach(s);
    s->state = RS_DOWN;
    if (s->connect_cb) {
        if (rc == RC_EAUTH)
            RC_ERROR("%s", why);
        else
            RC_ERROR("cannot connect to Redis at %s:%d: %s", s->host, s->port, why);
        s->quiet = 1;
    } else if (was_ready) {
        RC_WARN("lost the connection to Redis at %s:%d: %s; storage operations fail with "
                "RC_EUNAVAIL until it is back",
                s->host, s->port, why);
        s->quiet = 0;
        s->backoff_ms = RS_BACKOFF_MIN_MS;
    } else if (!s->quiet) {
        RC_WARN("cannot reconnect to Redis at %s:%d: %s; retrying every %d ms at most",
                s->host, s->port, why, RS_BACKOFF_MAX_MS);
        s->quiet = 1;
    } else {
        RC_DEBUG("cannot reconnect to Redis at %s:%d: %s", s->host, s->port, why);
    }
    uint64_t delay = s->backoff_ms;
    s->backoff_ms = delay * 2 > RS_BACKOFF_MAX_MS ? RS_BACKOFF_MAX_MS : delay * 2;
    uv_timer_start(s->timer, on_timer, delay, 0);
    fail_everything(s, rc == RC_EAUTH ? rc : RC_EUNAVAIL);
}

/* Why hiredis gave up on ac, for the log. The context's own fields, because hiredis copies
 * them into ac->err only after calling the connect callback. */
static void describe_error(const redisAsyncContext *ac, char *buf, size_t n)
{
    snprintf(buf, n, "%s", ac->c.err && ac->c.errstr[0] ? ac->c.errstr : "connection closed");
}

/* The PING was answered: the store is READY. The connect callback, if still pending, runs
 * last. */
static void became_ready(redis_store *s)
{
    release_ping(s);
    uv_timer_stop(s->timer);
    s->state = RS_READY;
    s->backoff_ms = RS_BACKOFF_MIN_MS;
    if (s->quiet && !s->connect_cb)
        RC_INFO("reconnected to Redis at %s:%d", s->host, s->port);
    else
        RC_INFO("connected to Redis at %s:%d", s->host, s->port);
    s->quiet = 0;
    gcs_store_count_cb cb = s->connect_cb;
    s->connect_cb = NULL;
    if (cb)
        cb(0, 0, s->connect_arg);
}

/* Redis refused the credentials (or wants some): the attempt ends with RC_EAUTH. Inside a
 * hiredis reply callback, so hiredis frees the context after we return. */
static void auth_refused(redis_store *s, const redisReply *r)
{
    char why[384];
    if (s->password)
        snprintf(why, sizeof(why), "Redis at %s:%d refused the password: %.*s", s->host, s->port,
                 (int)(r->len < 200 ? r->len : 200), r->str);
    else
        snprintf(why, sizeof(why),
                 "Redis at %s:%d requires a password (NOAUTH): give --redis-password-file", s->host,
                 s->port);
    redisAsyncFree(detach(s));
    connection_down(s, why, RC_EAUTH);
}

static int is_error_prefix(const redisReply *r, const char *prefix)
{
    size_t n = strlen(prefix);
    return r->type == REDIS_REPLY_ERROR && r->len >= n && memcmp(r->str, prefix, n) == 0;
}

/* The connection attempt's replies: AUTH's first when a password is configured, then PING's. */
static void on_ping_reply(redis_store *s, rop *ping, const redisReply *r)
{
    if (s->password && ping->replies_seen++ == 0) {
        if (r->type != REDIS_REPLY_STATUS)
            auth_refused(s, r);
        return; /* +OK: the PING's reply comes next */
    }
    if (r->type == REDIS_REPLY_STATUS && r->len == 4 && memcmp(r->str, "PONG", 4) == 0) {
        became_ready(s);
        return;
    }
    if (is_error_prefix(r, "NOAUTH")) {
        auth_refused(s, r);
        return;
    }
    /* A server that is still loading its data answers -LOADING; try again later. */
    char why[256];
    if (r->type == REDIS_REPLY_ERROR)
        snprintf(why, sizeof(why), "PING answered with an error: %.*s", (int)r->len, r->str);
    else
        snprintf(why, sizeof(why), "PING answered with a reply of type %d", r->type);
    /* Inside a hiredis reply callback, so hiredis frees the context after we return. */
    redisAsyncFree(detach(s));
    connection_down(s, why, RC_EUNAVAIL);
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    redis_store *s = ac->data;
    if (!s || status == REDIS_OK)
        return; /* connected: the PING reply decides */
    char why[256];
    describe_error(ac, why, sizeof(why));
    connection_down(s, why, RC_EUNAVAIL); /* hiredis frees ac after we return */
}

/* Runs while hiredis frees a context that was connected. If the store still holds it, the
 * connection dropped with nothing in flight (in-flight replies would have detached it). */
static void on_disconnect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    redis_store *s = ac->data;
    if (!s)
        return;
    char why[256];
    describe_error(ac, why, sizeof(why));
    connection_down(s, why, RC_EUNAVAIL);
}

static void start_attempt(redis_store *s)
{
    char why[256];
    s->state = RS_CONNECTING;
    redisAsyncContext *ac = redisAsyncConnect(s->host, s->port);
    if (!ac) {
        connection_down(s, "out of memory", RC_EUNAVAIL);
        return;
    }
    if (ac->err) {
        /* Refused at once (typical on loopback) or a bad address. */
        describe_error(ac, why, sizeof(why));
        redisAsyncFree(ac);
        connection_down(s, why, RC_EUNAVAIL);
        return;
    }
    if (attach_loop(ac, s->loop) != 0) {
        redisAsyncFree(ac);
        connection_down(s, "cannot watch the socket on the loop", RC_EUNAVAIL);
        return;
    }
    ac->data = s;
    s->ac = ac;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    /* hiredis queues AUTH and PING until connect(2) completes. */
    s->ping = op_new(s, ROP_PING, s->password ? "AUTH" : "PING", NULL);
    if (s->password) {
        const char *auth_argv[3] = {"AUTH"};
        size_t auth_lens[3] = {4};
        int argc = 1;
        if (s->username) {
            auth_argv[argc] = s->username;
            auth_lens[argc++] = strlen(s->username);
        }
        auth_argv[argc] = s->password;
        auth_lens[argc++] = strlen(s->password);
        if (op_send(s, s->ping, argc, auth_argv, auth_lens) != 0) {
            redisAsyncFree(detach(s));
            connection_down(s, "cannot queue AUTH", RC_EUNAVAIL);
            return;
        }
    }
    const char *argv[] = {"PING"};
    const size_t lens[] = {4};
    if (op_send(s, s->ping, 1, argv, lens) != 0) {
        redisAsyncFree(detach(s));
        connection_down(s, "cannot queue PING", RC_EUNAVAIL);
        return;
    }
    int64_t deadline = rc_cfg.redis_connect_timeout_ms > 0 ? rc_cfg.redis_connect_timeout_ms : 1;
    uv_timer_start(s->timer, on_timer, (uint64_t)deadline, 0);
}

static void on_timer(uv_timer_t *timer)
{
    redis_store *s = timer->data;
    if (s->state == RS_DOWN) {
        start_attempt(s);
    } else if (s->state == RS_CONNECTING) {
        char why[128];
        snprintf(why, sizeof(why), "no answer within %lld ms (redis_connect_timeout_ms)",
                 (long long)rc_cfg.redis_connect_timeout_ms);
        /* Not inside a hiredis callback: this frees the context now; the PING reply
         * callback it runs finds the PING done. */
        redisAsyncFree(detach(s));
        connection_down(s, why, RC_EUNAVAIL);
    }
}

/* ---- replies --------------------------------------------------------------------------- */

/* The rc for a reply of the wrong kind: RC_EIO for an error reply (Redis refused: WRONGTYPE,
 * OOM, ...), RC_EPROTO for anything else unexpected. */
static int reply_error(const rop *op, const redisReply *r)
{
    if (r->type == REDIS_REPLY_ERROR) {
        RC_WARN("Redis refused %s: %.*s", op->what, (int)r->len, r->str);
        return RC_EIO;
    }
    RC_WARN("Redis answered %s with an unexpected reply (type %d)", op->what, r->type);
    return RC_EPROTO;
}

static size_t arena_add(rop *op, const void *p, size_t n)
{
    size_t off = op->arena.len;
    rc_buf_append(&op->arena, p, n);
    return off;
}

static ritem *items_push(rop *op)
{
    if (op->nitems == op->items_cap) {
        op->items_cap = op->items_cap ? op->items_cap * 2 : 64;
        op->items = rc_realloc(op->items, op->items_cap * sizeof(*op->items));
    }
    ritem *it = &op->items[op->nitems++];
    memset(it, 0, sizeof(*it));
    return it;
}

static void count_reply(rop *op, const redisReply *r)
{
    if (op->noop) {
        if (r->type != REDIS_REPLY_STATUS && !op->rc)
            op->rc = reply_error(op, r);
    } else if (r->type == REDIS_REPLY_INTEGER) {
        op->n += r->integer;
    } else if (!op->rc) {
        op->rc = reply_error(op, r);
    }
    if (--op->replies_left == 0)
        op_finish(op, op->rc, NULL, 0);
}

static void get_reply(rop *op, const redisReply *r)
{
    if (r->type == REDIS_REPLY_STRING)
        op_finish(op, 0, r->str, r->len);
    else if (r->type == REDIS_REPLY_NIL)
        op_finish(op, RC_ENOENT, NULL, 0);
    else
        op_finish(op, reply_error(op, r), NULL, 0);
}

/* Replies come in the order the batches were sent, so the k-th reply answers items
 * [k * RS_BATCH, ...). */
static void mget_reply(rop *op, const redisReply *r)
{
    size_t first = op->replies_seen++ * RS_BATCH;
    if (op->noop) {
        if (r->type != REDIS_REPLY_STATUS && !op->rc)
            op->rc = reply_error(op, r);
    } else if (!op->rc) {
        size_t want = op->nitems - first < RS_BATCH ? op->nitems - first : RS_BATCH;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != want) {
            op->rc = reply_error(op, r);
        } else {
            for (size_t i = 0; i < want && !op->rc; i++) {
                const redisReply *e = r->element[i];
                ritem *it = &op->items[first + i];
                if (e->type == REDIS_REPLY_STRING) {
                    it->voff = arena_add(op, e->str, e->len);
                    it->vlen = e->len;
                    it->found = 1;
                } else if (e->type != REDIS_REPLY_NIL) {
                    op->rc = reply_error(op, e);
                }
            }
        }
    }
    if (--op->replies_left == 0)
        op_finish(op, op->rc, NULL, 0);
}

/* One HSCAN entry. A key seen before (SCAN may return it again) keeps one item, with the
 * latest value. */
static void scan_add(rop *op, const redisReply *k, const redisReply *v)
{
    void *seen = rc_map_get(&op->seen, k->str, k->len);
    ritem *it;
    if (seen) {
        it = &op->items[(uintptr_t)seen - 1];
    } else {
        it = items_push(op);
        it->koff = arena_add(op, k->str, k->len);
        it->klen = k->len;
        rc_map_put(&op->seen, k->str, k->len, (void *)(uintptr_t)op->nitems);
    }
    if (op->with_values) {
        it->voff = arena_add(op, v->str, v->len);
        it->vlen = v->len;
    }
}

static int scan_send(redis_store *s, rop *op, const char *cursor, size_t cursor_len)
{
    const char *argv[7] = {"HSCAN", op->hash, cursor};
    size_t lens[7] = {5, op->hash_len, cursor_len};
    int argc = 3;
    if (op->pattern) {
        argv[argc] = "MATCH";
        lens[argc++] = 5;
        argv[argc] = op->pattern;
        lens[argc++] = op->pattern_len;
    }
    argv[argc] = "COUNT";
    lens[argc++] = 5;
    char count[16];
    lens[argc] = (size_t)snprintf(count, sizeof(count), "%d", RS_BATCH);
    argv[argc++] = count;
    return op_send(s, op, argc, argv, lens);
}

/* An HSCAN reply is [cursor, [field, value, ...]]; cursor "0" ends the scan. */
static void scan_reply(redis_store *s, rop *op, const redisReply *r)
{
    op->replies_left--;
    const redisReply *cursor = NULL, *entries = NULL;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
        cursor = r->element[0];
        entries = r->element[1];
    }
    int ok = cursor && cursor->type == REDIS_REPLY_STRING && entries &&
             entries->type == REDIS_REPLY_ARRAY && entries->elements % 2 == 0;
    for (size_t i = 0; ok && i < entries->elements; i++)
        ok = entries->element[i]->type == REDIS_REPLY_STRING;
    if (!ok) {
        op_finish(op, reply_error(op, r), NULL, 0);
        return;
    }
    for (size_t i = 0; i < entries->elements; i += 2)
        scan_add(op, entries->element[i], entries->element[i + 1]);
    if (cursor->len == 1 && cursor->str[0] == '0') {
        op_finish(op, 0, NULL, 0);
        return;
    }
    if (scan_send(s, op, cursor->str, cursor->len) != 0)
        op_finish(op, RC_EUNAVAIL, NULL, 0);
}

/* Every command's reply callback. reply NULL: hiredis is freeing the context; if op is still
 * live the store did not let go of the connection first, so it dropped. */
static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    rop *op = privdata;
    redisReply *r = reply;
    if (!op->done) {
        redis_store *s = op->s;
        if (!r) {
            char why[256];
            describe_error(ac, why, sizeof(why));
            connection_down(s, why, RC_EUNAVAIL); /* fails op too */
        } else {
            switch (op->kind) {
            case ROP_PING:
                on_ping_reply(s, op, r);
                break;
            case ROP_COUNT:
                count_reply(op, r);
                break;
            case ROP_GET:
                get_reply(op, r);
                break;
            case ROP_MGET:
                mget_reply(op, r);
                break;
            case ROP_SCAN:
                scan_reply(s, op, r);
                break;
            }
        }
    }
    op_unref(op); /* the reference this reply held */
}

/* ---- operations ------------------------------------------------------------------------ */

/* 0 when s takes operations now. */
static int usable(const redis_store *s)
{
    if (s->state == RS_CLOSED)
        return RC_ECANCELED;
    return s->state == RS_READY ? 0 : RC_EUNAVAIL;
}

/* "RAY<namespace>@<table>"; the caller frees with rc_buf_free. */
static void hash_name(const redis_store *s, const char *table, rc_buf *out)
{
    rc_buf_append(out, s->prefix, s->prefix_len);
    rc_buf_puts(out, table);
}

/* A command whose arguments are the hash and then one argument per key, sent in batches of
 * RS_BATCH keys (HMGET, HDEL). An empty request sends a PING instead, so that the callback
 * still comes later, in order, like every other reply. On failure op is freed and the
 * callback never runs. */
static int op_start_batches(redis_store *s, rop *op, const char *cmd, const rc_buf *hash,
                            const void *const *keys, const size_t *klens, size_t n)
{
    if (n == 0) {
        const char *argv[] = {"PING"};
        const size_t lens[] = {4};
        op->noop = 1;
        return op_start(s, op, 1, argv, lens);
    }
    size_t max = (n < RS_BATCH ? n : RS_BATCH) + 2;
    const char **argv = rc_malloc(max * sizeof(*argv));
    size_t *lens = rc_malloc(max * sizeof(*lens));
    int rc = 0;
    for (size_t first = 0; first < n; first += RS_BATCH) {
        size_t cnt = n - first < RS_BATCH ? n - first : RS_BATCH;
        argv[0] = cmd;
        lens[0] = strlen(cmd);
        argv[1] = hash->data;
        lens[1] = hash->len;
        for (size_t i = 0; i < cnt; i++) {
            argv[2 + i] = bytes_or_empty(keys[first + i]);
            lens[2 + i] = klens[first + i];
        }
        if (first == 0) {
            rc = op_start(s, op, (int)(cnt + 2), argv, lens);
            if (rc)
                break;
        } else if (op_send(s, op, (int)(cnt + 2), argv, lens) != 0) {
            /* Batches already sent will answer; the operation then fails as a whole. */
            op->rc = RC_EUNAVAIL;
            break;
        }
    }
    rc_free(argv);
    rc_free(lens);
    return rc;
}

static int rs_put(gcs_store *base, const char *table, const void *key, size_t klen,
                  const void *value, size_t vlen, int overwrite, gcs_store_count_cb cb, void *arg)
{
    redis_store *s = (redis_store *)base;
    int rc = gcs__check_key_op(table, key, klen, cb != NULL);
    if (rc || gcs__check_bytes(value, vlen))
        return RC_EINVAL;
    if ((rc = usable(s)))
        return rc;
    /* HSET answers the number of new fields and HSETNX 1 if it set the field: either way 1
     * exactly when the key was new, which is what "added" means. */
    const char *cmd = overwrite ? "HSET" : "HSETNX";
    rc_buf hash = RC_BUF_INIT;
    hash_name(s, table, &hash);
    const char *argv[] = {cmd, hash.data, bytes_or_empty(key), bytes_or_empty(value)};
    const size_t lens[] = {strlen(cmd), hash.len, klen, vlen};
    rop *op = op_new(s, ROP_COUNT, cmd, arg);
    op->cb.count = cb;
    rc = op_start(s, op, 4, argv, lens);
    rc_buf_free(&hash);
    return rc;
}

static int rs_get(gcs_store *base, const char *table, const void *key, size_t klen,
                  gcs_store_get_cb cb, void *arg)
{
    redis_store *s = (redis_store *)base;
    int rc = gcs__check_key_op(table, key, klen, cb != NULL);
    if (rc || (rc = usable(s)))
        return rc;
    rc_buf hash = RC_BUF_INIT;
    hash_name(s, table, &hash);
    const char *argv[] = {"HGET", hash.data, bytes_or_empty(key)};
    const size_t lens[] = {4, hash.len, klen};
    rop *op = op_new(s, ROP_GET, "HGET", arg);
    op->cb.get = cb;
    rc = op_start(s, op, 3, argv, lens);
    rc_buf_free(&hash);
    return rc;
}

/* One item per requested key that exists, in request order (a key asked for twice comes
 * back twice, as with HMGET). */
static int rs_multi_get(gcs_store *base, const char *table, const void *const *keys,
                        const size_t *klens, size_t n, gcs_store_items_cb cb, void *arg)
{
    redis_store *s = (redis_store *)base;
    int rc = gcs__check_keys_op(table, keys, klens, n, cb != NULL);
    if (rc || (rc = usable(s)))
        return rc;
    rop *op = op_new(s, ROP_MGET, "HMGET", arg);
    op->cb.items = cb;
    /* Keys are copied now (store.h): the results point at these copies. */
    for (size_t i = 0; i < n; i++) {
        ritem *it = items_push(op);
        it->koff = arena_add(op, bytes_or_empty(keys[i]), klens[i]);
        it->klen = klens[i];
    }
    rc_buf hash = RC_BUF_INIT;
    hash_name(s, table, &hash);
    rc = op_start_batches(s, op, "HMGET", &hash, keys, klens, n);
    rc_buf_free(&hash);
    return rc;
}

/* Appends prefix as an HSCAN MATCH pattern for "starts with prefix": the glob specials get a
 * backslash, as Ray's EscapeMatchPattern does, then '*'. Binary-safe (Redis matches bytes). */
static void append_prefix_pattern(rc_buf *out, const void *prefix, size_t plen)
{
    const unsigned char *p = prefix;
    for (size_t i = 0; i < plen; i++) {
        switch (p[i]) {
        case '*':
        case '?':
        case '[':
        case ']':
        case '\\':
        case '^':
        case '-':
            rc_buf_putc(out, '\\');
            break;
        default:
            break;
        }
        rc_buf_putc(out, (char)p[i]);
    }
    rc_buf_putc(out, '*');
}

static int start_scan(redis_store *s, const char *table, const void *prefix, size_t plen,
                      int with_values, gcs_store_items_cb cb, void *arg)
{
    int rc = usable(s);
    if (rc)
        return rc;
    rop *op = op_new(s, ROP_SCAN, "HSCAN", arg);
    op->cb.items = cb;
    op->with_values = with_values;
    rc_buf b = RC_BUF_INIT;
    hash_name(s, table, &b);
    op->hash_len = b.len;
    op->hash = rc_buf_detach(&b);
    if (plen) {
        append_prefix_pattern(&b, prefix, plen);
        op->pattern_len = b.len;
        op->pattern = rc_buf_detach(&b);
    }
    rc = scan_send(s, op, "0", 1);
    if (rc) {
        op_mark_done(op);
        op_release_data(op);
        op_unref(op);
    }
    return rc;
}

static int rs_get_all(gcs_store *base, const char *table, gcs_store_items_cb cb, void *arg)
{
    if (!table || !table[0] || !cb)
        return RC_EINVAL;
    return start_scan((redis_store *)base, table, NULL, 0, 1, cb, arg);
}

static int rs_keys(gcs_store *base, const char *table, const void *prefix, size_t plen,
                   gcs_store_items_cb cb, void *arg)
{
    int rc = gcs__check_key_op(table, prefix, plen, cb != NULL);
    if (rc)
        return rc;
    return start_scan((redis_store *)base, table, prefix, plen, 0, cb, arg);
}

static int rs_del(gcs_store *base, const char *table, const void *const *keys,
                  const size_t *klens, size_t n, gcs_store_count_cb cb, void *arg)
{
    redis_store *s = (redis_store *)base;
    int rc = gcs__check_keys_op(table, keys, klens, n, cb != NULL);
    if (rc || (rc = usable(s)))
        return rc;
    rop *op = op_new(s, ROP_COUNT, "HDEL", arg);
    op->cb.count = cb;
    rc_buf hash = RC_BUF_INIT;
    hash_name(s, table, &hash);
    rc = op_start_batches(s, op, "HDEL", &hash, keys, klens, n);
    rc_buf_free(&hash);
    return rc;
}

static int rs_exists(gcs_store *base, const char *table, const void *key, size_t klen,
                     gcs_store_count_cb cb, void *arg)
{
    redis_store *s = (redis_store *)base;
    int rc = gcs__check_key_op(table, key, klen, cb != NULL);
    if (rc || (rc = usable(s)))
        return rc;
    rc_buf hash = RC_BUF_INIT;
    hash_name(s, table, &hash);
    const char *argv[] = {"HEXISTS", hash.data, bytes_or_empty(key)};
    const size_t lens[] = {7, hash.len, klen};
    rop *op = op_new(s, ROP_COUNT, "HEXISTS", arg);
    op->cb.count = cb;
    rc = op_start(s, op, 3, argv, lens);
    rc_buf_free(&hash);
    return rc;
}

static int rs_next_job_id(gcs_store *base, gcs_store_count_cb cb, void *arg)
{
    redis_store *s = (redis_store *)base;
    int rc = cb ? usable(s) : RC_EINVAL;
    if (rc)
        return rc;
    const char *argv[] = {"INCRBY", s->counter_key, "1"};
    const size_t lens[] = {6, s->counter_len, 1};
    rop *op = op_new(s, ROP_COUNT, "INCRBY", arg);
    op->cb.count = cb;
    return op_start(s, op, 3, argv, lens);
}

static void free_timer(uv_handle_t *h)
{
    rc_free(h);
}

/* Order matters: operations are marked done before the context is freed, so the NULL replies
 * hiredis runs while freeing it (now, or after the hiredis callback we may be inside of)
 * only drop references. Callbacks that run here find the store CLOSED: new operations
 * return RC_ECANCELED and a nested destroy does nothing. */
static void rs_destroy(gcs_store *base)
{
    redis_store *s = (redis_store *)base;
    if (s->state == RS_CLOSED)
        return;
    s->state = RS_CLOSED;
    redisAsyncContext *ac = detach(s);
    rc_list *n;
    RC_LIST_FOREACH(n, &s->ops)
        rc_list_entry(n, rop, link)->done = 1;
    if (ac)
        redisAsyncFree(ac);
    s->timer->data = NULL;
    uv_close((uv_handle_t *)s->timer, free_timer);
    s->timer = NULL;
    fail_everything(s, RC_ECANCELED);
    rc_free(s->host);
    rc_free(s->prefix);
    rc_free(s->counter_key);
    rc_free(s->username);
    if (s->password) {
        explicit_bzero(s->password, strlen(s->password));
        rc_free(s->password);
    }
    rc_free(s);
}

static const gcs_store_ops redis_ops = {
    .name = "redis",
    .put = rs_put,
    .get = rs_get,
    .multi_get = rs_multi_get,
    .get_all = rs_get_all,
    .keys = rs_keys,
    .del = rs_del,
    .exists = rs_exists,
    .next_job_id = rs_next_job_id,
    .destroy = rs_destroy,
};

/* hiredis writes with write(2): without this a Redis that goes away while a command is being
 * sent kills the whole process with SIGPIPE instead of failing one connection. Only the
 * default action is replaced; a handler someone installed is left alone. */
static void ignore_sigpipe(void)
{
    struct sigaction old;
    if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL &&
        !(old.sa_flags & SA_SIGINFO))
        signal(SIGPIPE, SIG_IGN);
}

int gcs_store_redis_connect(uv_loop_t *loop, const char *host, int port, const char *namespace_,
                            const gcs_store_redis_auth *auth, gcs_store **out,
                            gcs_store_count_cb cb, void *arg)
{
    if (out)
        *out = NULL;
    if (!loop || !host || !host[0] || port <= 0 || port > 65535 || !out || !cb)
        return RC_EINVAL;
    if (auth && auth->username && !auth->password)
        return RC_EINVAL; /* an ACL user always comes with its password */
    ignore_sigpipe();
    redis_store *s = RC_NEW(redis_store);
    rc_list_init(&s->ops);
    s->base.ops = &redis_ops;
    s->loop = loop;
    s->host = rc_strdup(host);
    s->port = port;
    if (auth && auth->password) {
        s->password = rc_strdup(auth->password);
        s->username = auth->username ? rc_strdup(auth->username) : NULL;
    }
    rc_buf b = RC_BUF_INIT;
    rc_buf_printf(&b, "RAY%s@", namespace_ ? namespace_ : "");
    s->prefix_len = b.len;
    s->prefix = rc_buf_detach(&b);
    rc_buf_printf(&b, "%sJobCounter", s->prefix);
    s->counter_len = b.len;
    s->counter_key = rc_buf_detach(&b);
    s->timer = rc_malloc(sizeof(*s->timer));
    uv_timer_init(loop, s->timer);
    s->timer->data = s;
    s->state = RS_DOWN;
    s->backoff_ms = RS_BACKOFF_MIN_MS;
    s->connect_cb = cb;
    s->connect_arg = arg;
    /* The first attempt starts from the loop, so that even a connection refused at once is
     * reported through the callback, after *out is set. */
    uv_timer_start(s->timer, on_timer, 0, 0);
    *out = &s->base;
    return 0;
}
