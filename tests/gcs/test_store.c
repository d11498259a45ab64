/*
 * GCS storage (gcs/store.h). One set of cases runs against both backends: memory, and Redis
 * on a private redis-server (tests/harness) on a free port, with a password as admins are
 * told to run it. Then the cases only Redis has: authentication (a wrong password, none, an
 * ACL user),
 * Ray's key layout and namespaces, data surviving a store restart, Redis going away and
 * coming back on the same port, nothing listening, a server that never answers, error
 * replies, malformed replies (from a fake server on the test loop), and destroy with
 * operations in flight or from inside a callback. Every case ends with an empty loop, so a
 * leaked handle shows up as a failed uv_loop_close, and the sanitizer build catches leaks
 * and use-after-free.
 */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "rc_alloc.h"
#include "rc_buf.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_map.h"
#include "rc_time.h"
#include "redis_server.h"
#include "store.h"
#include "unit.h"

#define WAIT_MS 10000

typedef enum backend { BK_MEMORY, BK_REDIS } backend;

static harness_redis REDIS = HARNESS_REDIS_INIT;
static int redis_up;

typedef struct fixture {
    uv_loop_t loop;
    uv_timer_t deadline;
    backend kind;
    gcs_store *s;
} fixture;

static fixture F;

/* ---- loop and results ------------------------------------------------------------------ */

static void on_deadline(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

/* Runs the loop until *flag is non-zero or ms pass; returns whether *flag got set. */
static int run_until(const int *flag, int ms)
{
    int expired = 0;
    F.deadline.data = &expired;
    uv_timer_start(&F.deadline, on_deadline, (uint64_t)ms, 0);
    while (!*flag && !expired)
        uv_run(&F.loop, UV_RUN_ONCE);
    uv_timer_stop(&F.deadline);
    return *flag != 0;
}

static void run_for(int ms)
{
    int never = 0;
    run_until(&never, ms);
}

typedef struct item_copy {
    rc_buf key;
    rc_buf value;
    int has_value;
} item_copy;

/* What one operation's callback reported; result_free releases the copies. */
typedef struct result {
    int calls;
    int rc;
    int64_t n;
    rc_buf value;
    int has_value;
    item_copy *items;
    size_t nitems;
} result;

static void result_free(result *r)
{
    rc_buf_free(&r->value);
    for (size_t i = 0; i < r->nitems; i++) {
        rc_buf_free(&r->items[i].key);
        rc_buf_free(&r->items[i].value);
    }
    rc_free(r->items);
    memset(r, 0, sizeof(*r));
}

static void on_count(int rc, int64_t n, void *arg)
{
    result *r = arg;
    r->calls++;
    r->rc = rc;
    r->n = n;
}

static void on_get(int rc, const void *value, size_t vlen, void *arg)
{
    result *r = arg;
    r->calls++;
    r->rc = rc;
    r->has_value = value != NULL;
    rc_buf_clear(&r->value);
    if (value)
        rc_buf_append(&r->value, value, vlen);
}

static void on_items(int rc, const gcs_store_item *items, size_t n, void *arg)
{
    result *r = arg;
    r->calls++;
    r->rc = rc;
    r->items = rc_calloc(n ? n : 1, sizeof(*r->items));
    r->nitems = n;
    for (size_t i = 0; i < n; i++) {
        rc_buf_append(&r->items[i].key, items[i].key, items[i].klen);
        r->items[i].has_value = items[i].value != NULL;
        if (items[i].value)
            rc_buf_append(&r->items[i].value, items[i].value, items[i].vlen);
    }
}

/* The operation's outcome: what starting it returned, or what its one callback reported. */
static int finish(result *r, int start_rc)
{
    if (start_rc) {
        CU_ASSERT_EQUAL(r->calls, 0);
        return start_rc;
    }
    CU_ASSERT_TRUE(run_until(&r->calls, WAIT_MS));
    CU_ASSERT_EQUAL(r->calls, 1);
    return r->calls ? r->rc : RC_ETIMEDOUT;
}

static int bytes_eq(const rc_buf *b, const void *p, size_t n)
{
    return b->len == n && (n == 0 || memcmp(b->data, p, n) == 0);
}

/* ---- synchronous wrappers -------------------------------------------------------------- */

static int st_put(gcs_store *s, const char *table, const void *k, size_t kl, const void *v,
                  size_t vl, int overwrite, int64_t *added)
{
    result r = {0};
    int rc = finish(&r, s->ops->put(s, table, k, kl, v, vl, overwrite, on_count, &r));
    if (added)
        *added = r.n;
    result_free(&r);
    return rc;
}

static int st_put_str(gcs_store *s, const char *table, const char *k, const char *v)
{
    return st_put(s, table, k, strlen(k), v, strlen(v), 1, NULL);
}

/* *out gets a copy of the value; the caller frees it with rc_buf_free. */
static int st_get(gcs_store *s, const char *table, const void *k, size_t kl, rc_buf *out)
{
    result r = {0};
    int rc = finish(&r, s->ops->get(s, table, k, kl, on_get, &r));
    rc_buf_clear(out);
    if (rc == 0) {
        CU_ASSERT_TRUE(r.has_value);
        rc_buf_append(out, r.value.data, r.value.len);
    }
    result_free(&r);
    return rc;
}

/* 1 when key k holds exactly v[0..vl). */
static int holds(gcs_store *s, const char *table, const void *k, size_t kl, const void *v,
                 size_t vl)
{
    rc_buf got = RC_BUF_INIT;
    int ok = st_get(s, table, k, kl, &got) == 0 && bytes_eq(&got, v, vl);
    rc_buf_free(&got);
    return ok;
}

static int holds_str(gcs_store *s, const char *table, const char *k, const char *v)
{
    return holds(s, table, k, strlen(k), v, strlen(v));
}

/* The result is the caller's to free with result_free. */
static int st_get_all(gcs_store *s, const char *table, result *r)
{
    memset(r, 0, sizeof(*r));
    return finish(r, s->ops->get_all(s, table, on_items, r));
}

static int st_keys(gcs_store *s, const char *table, const void *p, size_t pl, result *r)
{
    memset(r, 0, sizeof(*r));
    return finish(r, s->ops->keys(s, table, p, pl, on_items, r));
}

static int st_mget(gcs_store *s, const char *table, const void *const *keys,
                   const size_t *klens, size_t n, result *r)
{
    memset(r, 0, sizeof(*r));
    return finish(r, s->ops->multi_get(s, table, keys, klens, n, on_items, r));
}

static int st_count(result *r, int start_rc, int64_t *n)
{
    int rc = finish(r, start_rc);
    if (n)
        *n = r->n;
    result_free(r);
    return rc;
}

static int st_del(gcs_store *s, const char *table, const void *const *keys, const size_t *klens,
                  size_t n, int64_t *removed)
{
    result r = {0};
    return st_count(&r, s->ops->del(s, table, keys, klens, n, on_count, &r), removed);
}

static int st_del_str(gcs_store *s, const char *table, const char *k, int64_t *removed)
{
    const void *keys[] = {k};
    size_t lens[] = {strlen(k)};
    return st_del(s, table, keys, lens, 1, removed);
}

static int st_exists(gcs_store *s, const char *table, const char *k, int64_t *n)
{
    result r = {0};
    return st_count(&r, s->ops->exists(s, table, k, strlen(k), on_count, &r), n);
}

static int st_next_job_id(gcs_store *s, int64_t *n)
{
    result r = {0};
    return st_count(&r, s->ops->next_job_id(s, on_count, &r), n);
}

/* How many items of r have key k (and, if v is not NULL, value v). */
static int count_items(const result *r, const void *k, size_t kl, const void *v, size_t vl)
{
    int hits = 0;
    for (size_t i = 0; i < r->nitems; i++) {
        if (!bytes_eq(&r->items[i].key, k, kl))
            continue;
        if (v && !(r->items[i].has_value && bytes_eq(&r->items[i].value, v, vl)))
            continue;
        hits++;
    }
    return hits;
}

static int has_key_str(const result *r, const char *k)
{
    return count_items(r, k, strlen(k), NULL, 0);
}

/* Counts many operations started back to back (pipelined on Redis). */
typedef struct tally {
    int calls;
    int expect;
    int failed;
    int complete;
    int64_t sum;
} tally;

static void on_tally(int rc, int64_t n, void *arg)
{
    tally *t = arg;
    t->calls++;
    if (rc)
        t->failed++;
    t->sum += n;
    if (t->calls == t->expect)
        t->complete = 1;
}

/* Puts "<prefix><i>" -> "value-<i>" for i in [0, n) where i % step == 0, all in flight at
 * once. Returns how many were stored. */
static int put_many(gcs_store *s, const char *table, const char *prefix, int n, int step)
{
    tally t = {0};
    for (int i = 0; i < n; i += step)
        t.expect++;
    for (int i = 0; i < n; i += step) {
        char k[64], v[64];
        int kl = snprintf(k, sizeof(k), "%s%d", prefix, i);
        int vl = snprintf(v, sizeof(v), "value-%d", i);
        int rc = s->ops->put(s, table, k, (size_t)kl, v, (size_t)vl, 1, on_tally, &t);
        CU_ASSERT_EQUAL(rc, 0);
        if (rc)
            return 0;
    }
    CU_ASSERT_TRUE(run_until(&t.complete, WAIT_MS));
    CU_ASSERT_EQUAL(t.failed, 0);
    CU_ASSERT_EQUAL(t.sum, t.expect);
    return t.calls - t.failed;
}

/* ---- fixture --------------------------------------------------------------------------- */

/* The harness server's credentials (its password is chosen when it starts). */
static gcs_store_redis_auth redis_auth(void)
{
    gcs_store_redis_auth a = {NULL, REDIS.password[0] ? REDIS.password : NULL};
    return a;
}

static int connect_redis_as(int port, const char *ns, const gcs_store_redis_auth *auth,
                            gcs_store **out)
{
    result r = {0};
    int rc = finish(&r, gcs_store_redis_connect(&F.loop, "127.0.0.1", port, ns, auth, out,
                                                on_count, &r));
    result_free(&r);
    return rc;
}

static int connect_redis(int port, const char *ns, gcs_store **out)
{
    gcs_store_redis_auth auth = redis_auth();
    return connect_redis_as(port, ns, &auth, out);
}

/* A store of the case's backend with namespace ns (memory stores ignore it); NULL on failure. */
static gcs_store *open_store(const char *ns)
{
    if (F.kind == BK_MEMORY)
        return gcs_store_memory_new();
    gcs_store *s = NULL;
    int rc = connect_redis(REDIS.port, ns, &s);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(s);
    if (rc && s) {
        s->ops->destroy(s);
        s = NULL;
    }
    return s;
}

static void setup(backend kind)
{
    memset(&F, 0, sizeof(F));
    F.kind = kind;
    rc_config_init();
    CU_ASSERT_EQUAL_FATAL(uv_loop_init(&F.loop), 0);
    uv_timer_init(&F.loop, &F.deadline);
    if (kind == BK_REDIS) {
        CU_ASSERT_TRUE(redis_up);
        if (redis_up)
            CU_ASSERT_EQUAL(harness_redis_flush(&REDIS), 0);
    }
    if (kind == BK_MEMORY || redis_up)
        F.s = open_store("test");
}

/* Destroys what is left, lets closing handles finish and checks nothing else is alive. */
static void teardown(void)
{
    if (F.s)
        F.s->ops->destroy(F.s);
    F.s = NULL;
    uv_close((uv_handle_t *)&F.deadline, NULL);
    for (int i = 0; i < 100 && uv_loop_alive(&F.loop); i++) {
        uv_run(&F.loop, UV_RUN_NOWAIT);
        if (uv_loop_alive(&F.loop))
            rc_sleep_ms(10);
    }
    CU_ASSERT_EQUAL(uv_loop_close(&F.loop), 0);
}

static void run_case(backend kind, void (*body)(void))
{
    setup(kind);
    if (F.s)
        body();
    teardown();
}

#define BOTH(name)                                                                            \
    static void test_memory_##name(void) { run_case(BK_MEMORY, case_##name); }                \
    static void test_redis_##name(void) { run_case(BK_REDIS, case_##name); }

#define REDIS_ONLY(name)                                                                      \
    static void test_redis_##name(void) { run_case(BK_REDIS, case_##name); }

/* ---- cases for both backends ----------------------------------------------------------- */

static void case_put_get(void)
{
    int64_t added = -1;
    CU_ASSERT_EQUAL(st_put(F.s, GCS_TABLE_NODE, "k1", 2, "v1", 2, 1, &added), 0);
    CU_ASSERT_EQUAL(added, 1);
    CU_ASSERT_TRUE(holds_str(F.s, GCS_TABLE_NODE, "k1", "v1"));

    /* Overwrite replaces and reports the key as existing. */
    CU_ASSERT_EQUAL(st_put(F.s, GCS_TABLE_NODE, "k1", 2, "v2", 2, 1, &added), 0);
    CU_ASSERT_EQUAL(added, 0);
    CU_ASSERT_TRUE(holds_str(F.s, GCS_TABLE_NODE, "k1", "v2"));

    /* Without overwrite an existing value is kept... */
    CU_ASSERT_EQUAL(st_put(F.s, GCS_TABLE_NODE, "k1", 2, "v3", 2, 0, &added), 0);
    CU_ASSERT_EQUAL(added, 0);
    CU_ASSERT_TRUE(holds_str(F.s, GCS_TABLE_NODE, "k1", "v2"));
    /* ...and a new key is stored. */
    CU_ASSERT_EQUAL(st_put(F.s, GCS_TABLE_NODE, "k2", 2, "w", 1, 0, &added), 0);
    CU_ASSERT_EQUAL(added, 1);
    CU_ASSERT_TRUE(holds_str(F.s, GCS_TABLE_NODE, "k2", "w"));

    rc_buf got = RC_BUF_INIT;
    CU_ASSERT_EQUAL(st_get(F.s, GCS_TABLE_NODE, "nope", 4, &got), RC_ENOENT);
    /* Empty values and the empty key are ordinary entries. */
    CU_ASSERT_EQUAL(st_put(F.s, GCS_TABLE_NODE, "k3", 2, NULL, 0, 1, &added), 0);
    CU_ASSERT_EQUAL(st_get(F.s, GCS_TABLE_NODE, "k3", 2, &got), 0);
    CU_ASSERT_EQUAL(got.len, 0);
    CU_ASSERT_EQUAL(st_put(F.s, GCS_TABLE_NODE, "", 0, "ek", 2, 1, &added), 0);
    CU_ASSERT_EQUAL(added, 1);
    CU_ASSERT_TRUE(holds(F.s, GCS_TABLE_NODE, "", 0, "ek", 2));
    rc_buf_free(&got);

    /* Bad arguments fail at the call; no callback. */
    result r = {0};
    CU_ASSERT_EQUAL(F.s->ops->get(F.s, NULL, "k", 1, on_get, &r), RC_EINVAL);
    CU_ASSERT_EQUAL(F.s->ops->get(F.s, GCS_TABLE_NODE, NULL, 3, on_get, &r), RC_EINVAL);
    CU_ASSERT_EQUAL(F.s->ops->put(F.s, GCS_TABLE_NODE, "k", 1, "v", 1, 1, NULL, &r), RC_EINVAL);
    run_for(20);
    CU_ASSERT_EQUAL(r.calls, 0);
}

static void case_binary(void)
{
    static const char k1[] = {'a', 0, 'b'}, k2[] = {'a', 0, 'c'}, k3[] = {'a'};
    static const char v1[] = {0, (char)0xff, 0, 'x'}, v2[] = {'\r', '\n', 0};
    CU_ASSERT_EQUAL(st_put(F.s, GCS_TABLE_ACTOR, k1, sizeof(k1), v1, sizeof(v1), 1, NULL), 0);
    CU_ASSERT_EQUAL(st_put(F.s, GCS_TABLE_ACTOR, k2, sizeof(k2), v2, sizeof(v2), 1, NULL), 0);
    CU_ASSERT_EQUAL(st_put(F.s, GCS_TABLE_ACTOR, k3, sizeof(k3), "one", 3, 1, NULL), 0);
    CU_ASSERT_TRUE(holds(F.s, GCS_TABLE_ACTOR, k1, sizeof(k1), v1, sizeof(v1)));
    CU_ASSERT_TRUE(holds(F.s, GCS_TABLE_ACTOR, k2, sizeof(k2), v2, sizeof(v2)));
    CU_ASSERT_TRUE(holds(F.s, GCS_TABLE_ACTOR, k3, sizeof(k3), "one", 3));

    result r;
    CU_ASSERT_EQUAL(st_get_all(F.s, GCS_TABLE_ACTOR, &r), 0);
    CU_ASSERT_EQUAL(r.nitems, 3);
    CU_ASSERT_EQUAL(count_items(&r, k1, sizeof(k1), v1, sizeof(v1)), 1);
    CU_ASSERT_EQUAL(count_items(&r, k2, sizeof(k2), v2, sizeof(v2)), 1);
    result_free(&r);

    /* A prefix with a NUL in it. */
    CU_ASSERT_EQUAL(st_keys(F.s, GCS_TABLE_ACTOR, "a\0", 2, &r), 0);
    CU_ASSERT_EQUAL(r.nitems, 2);
    CU_ASSERT_EQUAL(count_items(&r, k1, sizeof(k1), NULL, 0), 1);
    CU_ASSERT_EQUAL(count_items(&r, k2, sizeof(k2), NULL, 0), 1);
    result_free(&r);

    const void *keys[] = {k2, k3};
    const size_t lens[] = {sizeof(k2), sizeof(k3)};
    int64_t removed = 0;
    CU_ASSERT_EQUAL(st_del(F.s, GCS_TABLE_ACTOR, keys, lens, 2, &removed), 0);
    CU_ASSERT_EQUAL(removed, 2);
    CU_ASSERT_TRUE(holds(F.s, GCS_TABLE_ACTOR, k1, sizeof(k1), v1, sizeof(v1)));
}

static void case_multi_get(void)
{
    CU_ASSERT_EQUAL(st_put_str(F.s, GCS_TABLE_JOB, "k1", "v1"), 0);
    CU_ASSERT_EQUAL(st_put_str(F.s, GCS_TABLE_JOB, "k2", "v2"), 0);
    CU_ASSERT_EQUAL(st_put_str(F.s, GCS_TABLE_JOB, "k3", "v3"), 0);
    const void *keys[] = {"k1", "missing", "k3", "also-missing", "k2"};
    const size_t lens[] = {2, 7, 2, 12, 2};
    result r;
    CU_ASSERT_EQUAL(st_mget(F.s, GCS_TABLE_JOB, keys, lens, 5, &r), 0);
    CU_ASSERT_EQUAL(r.nitems, 3);
    CU_ASSERT_EQUAL(count_items(&r, "k1", 2, "v1", 2), 1);
    CU_ASSERT_EQUAL(count_items(&r, "k2", 2, "v2", 2), 1);
    CU_ASSERT_EQUAL(count_items(&r, "k3", 2, "v3", 2), 1);
    CU_ASSERT_EQUAL(has_key_str(&r, "missing"), 0);
    result_free(&r);

    CU_ASSERT_EQUAL(st_mget(F.s, GCS_TABLE_JOB, NULL, NULL, 0, &r), 0);
    CU_ASSERT_EQUAL(r.nitems, 0);
    result_free(&r);
    CU_ASSERT_EQUAL(st_mget(F.s, GCS_TABLE_WORKERS, keys, lens, 5, &r), 0);
    CU_ASSERT_EQUAL(r.nitems, 0);
    result_free(&r);

    /* More keys than one HMGET batch: every other one exists. */
    enum { N = 2500 };
    CU_ASSERT_EQUAL(put_many(F.s, GCS_TABLE_KV, "m", N, 2), N / 2);
    char(*names)[16] = rc_calloc(N, sizeof(*names));
    const void **many = rc_calloc(N, sizeof(*many));
    size_t *many_lens = rc_calloc(N, sizeof(*many_lens));
    for (int i = 0; i < N; i++) {
        many_lens[i] = (size_t)snprintf(names[i], sizeof(names[i]), "m%d", i);
        many[i] = names[i];
    }
    CU_ASSERT_EQUAL(st_mget(F.s, GCS_TABLE_KV, many, many_lens, N, &r), 0);
    CU_ASSERT_EQUAL(r.nitems, N / 2);
    int right = 0;
    for (int i = 0; i < N; i += 2) {
        char v[32];
        int vl = snprintf(v, sizeof(v), "value-%d", i);
        right += count_items(&r, names[i], many_lens[i], v, (size_t)vl);
    }
    CU_ASSERT_EQUAL(right, N / 2);
    result_free(&r);
    rc_free(names);
    rc_free(many);
    rc_free(many_lens);
}

static void case_get_all(void)
{
    result r;
    CU_ASSERT_EQUAL(st_get_all(F.s, GCS_TABLE_PLACEMENT_GROUP, &r), 0);
    CU_ASSERT_EQUAL(r.nitems, 0);
    result_free(&r);

    enum { N = 10000 };
    CU_ASSERT_EQUAL(put_many(F.s, GCS_TABLE_PLACEMENT_GROUP, "pg-", N, 1), N);
    CU_ASSERT_EQUAL(st_get_all(F.s, GCS_TABLE_PLACEMENT_GROUP, &r), 0);
    CU_ASSERT_EQUAL(r.nitems, N);
    /* Each key exactly once, with its own value. */
    rc_map seen = RC_MAP_INIT;
    int dups = 0, wrong = 0;
    for (size_t i = 0; i < r.nitems; i++) {
        const item_copy *it = &r.items[i];
        if (rc_map_put(&seen, it->key.data, it->key.len, (void *)1))
            dups++;
        int idx = -1;
        char v[32];
        if (sscanf(rc_buf_cstr(&it->key), "pg-%d", &idx) != 1 || idx < 0 || idx >= N) {
            wrong++;
            continue;
        }
        int vl = snprintf(v, sizeof(v), "value-%d", idx);
        if (!it->has_value || !bytes_eq(&it->value, v, (size_t)vl))
            wrong++;
    }
    CU_ASSERT_EQUAL(dups, 0);
    CU_ASSERT_EQUAL(wrong, 0);
    CU_ASSERT_EQUAL(rc_map_size(&seen), N);
    rc_map_destroy(&seen, NULL);
    result_free(&r);
}

static void case_keys_prefix(void)
{
    static const char *const all[] = {"a*b1", "a*b2", "axb1",   "[x]1",   "x1",
                                      "?1",   "z1",   "\\1",    "11",     "a-1",
                                      "^1",   "plain1", "plain2", "other"};
    for (size_t i = 0; i < RC_ARRAY_LEN(all); i++)
        CU_ASSERT_EQUAL(st_put_str(F.s, GCS_TABLE_KV, all[i], "v"), 0);

    static const struct {
        const char *prefix;
        const char *want[3];
    } checks[] = {
        {"a*b", {"a*b1", "a*b2"}}, {"[x]", {"[x]1"}}, {"?", {"?1"}},   {"\\", {"\\1"}},
        {"a-", {"a-1"}},           {"^", {"^1"}},     {"plain", {"plain1", "plain2"}},
        {"nomatch", {NULL}},
    };
    for (size_t c = 0; c < RC_ARRAY_LEN(checks); c++) {
        result r;
        CU_ASSERT_EQUAL(st_keys(F.s, GCS_TABLE_KV, checks[c].prefix, strlen(checks[c].prefix),
                                &r),
                        0);
        size_t want = 0;
        for (; want < 3 && checks[c].want[want]; want++)
            CU_ASSERT_EQUAL(has_key_str(&r, checks[c].want[want]), 1);
        CU_ASSERT_EQUAL(r.nitems, want);
        if (r.nitems != want)
            fprintf(stderr, "prefix '%s': %zu keys, want %zu\n", checks[c].prefix, r.nitems,
                    want);
        for (size_t i = 0; i < r.nitems; i++)
            CU_ASSERT_FALSE(r.items[i].has_value);
        result_free(&r);
    }
    result r;
    CU_ASSERT_EQUAL(st_keys(F.s, GCS_TABLE_KV, NULL, 0, &r), 0);
    CU_ASSERT_EQUAL(r.nitems, RC_ARRAY_LEN(all));
    result_free(&r);
}

static void case_del(void)
{
    CU_ASSERT_EQUAL(st_put_str(F.s, GCS_TABLE_NODE, "k1", "v"), 0);
    CU_ASSERT_EQUAL(st_put_str(F.s, GCS_TABLE_NODE, "k2", "v"), 0);
    CU_ASSERT_EQUAL(st_put_str(F.s, GCS_TABLE_NODE, "k3", "v"), 0);
    const void *keys[] = {"k1", "k2", "missing"};
    const size_t lens[] = {2, 2, 7};
    int64_t n = -1;
    CU_ASSERT_EQUAL(st_del(F.s, GCS_TABLE_NODE, keys, lens, 3, &n), 0);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(st_del(F.s, GCS_TABLE_NODE, keys, lens, 3, &n), 0);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(st_del(F.s, GCS_TABLE_NODE, NULL, NULL, 0, &n), 0);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(st_exists(F.s, GCS_TABLE_NODE, "k1", &n), 0);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_TRUE(holds_str(F.s, GCS_TABLE_NODE, "k3", "v"));

    /* More keys than one HDEL batch, some of them absent. */
    enum { N = 2600 };
    CU_ASSERT_EQUAL(put_many(F.s, GCS_TABLE_NODE, "d", 2500, 1), 2500);
    char(*names)[16] = rc_calloc(N, sizeof(*names));
    const void **many = rc_calloc(N, sizeof(*many));
    size_t *many_lens = rc_calloc(N, sizeof(*many_lens));
    for (int i = 0; i < N; i++) {
        many_lens[i] = (size_t)snprintf(names[i], sizeof(names[i]), "d%d", i);
        many[i] = names[i];
    }
    CU_ASSERT_EQUAL(st_del(F.s, GCS_TABLE_NODE, many, many_lens, N, &n), 0);
    CU_ASSERT_EQUAL(n, 2500);
    result r;
    CU_ASSERT_EQUAL(st_get_all(F.s, GCS_TABLE_NODE, &r), 0);
    CU_ASSERT_EQUAL(r.nitems, 1);
    CU_ASSERT_EQUAL(has_key_str(&r, "k3"), 1);
    result_free(&r);
    rc_free(names);
    rc_free(many);
    rc_free(many_lens);
}

static void case_exists(void)
{
    int64_t n = -1;
    CU_ASSERT_EQUAL(st_exists(F.s, GCS_TABLE_WORKERS, "w", &n), 0);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(st_put_str(F.s, GCS_TABLE_WORKERS, "w", "x"), 0);
    CU_ASSERT_EQUAL(st_exists(F.s, GCS_TABLE_WORKERS, "w", &n), 0);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(st_exists(F.s, GCS_TABLE_WORKERS, "ww", &n), 0);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(st_exists(F.s, GCS_TABLE_NODE, "w", &n), 0);
    CU_ASSERT_EQUAL(n, 0);
}

static void case_next_job_id(void)
{
    for (int64_t want = 1; want <= 20; want++) {
        int64_t n = -1;
        CU_ASSERT_EQUAL(st_next_job_id(F.s, &n), 0);
        CU_ASSERT_EQUAL(n, want);
    }
    /* Started back to back: still one distinct value each. */
    tally t = {.expect = 5};
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(F.s->ops->next_job_id(F.s, on_tally, &t), 0);
    CU_ASSERT_TRUE(run_until(&t.complete, WAIT_MS));
    CU_ASSERT_EQUAL(t.sum, 21 + 22 + 23 + 24 + 25);
}

static void case_tables_isolated(void)
{
    CU_ASSERT_EQUAL(st_put_str(F.s, GCS_TABLE_NODE, "k", "node"), 0);
    CU_ASSERT_EQUAL(st_put_str(F.s, GCS_TABLE_JOB, "k", "job"), 0);
    CU_ASSERT_TRUE(holds_str(F.s, GCS_TABLE_NODE, "k", "node"));
    CU_ASSERT_TRUE(holds_str(F.s, GCS_TABLE_JOB, "k", "job"));
    result r;
    CU_ASSERT_EQUAL(st_get_all(F.s, GCS_TABLE_NODE, &r), 0);
    CU_ASSERT_EQUAL(r.nitems, 1);
    CU_ASSERT_EQUAL(count_items(&r, "k", 1, "node", 4), 1);
    result_free(&r);
    int64_t n = -1;
    CU_ASSERT_EQUAL(st_del_str(F.s, GCS_TABLE_NODE, "k", &n), 0);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_TRUE(holds_str(F.s, GCS_TABLE_JOB, "k", "job"));
    CU_ASSERT_EQUAL(st_keys(F.s, GCS_TABLE_JOB, "k", 1, &r), 0);
    CU_ASSERT_EQUAL(r.nitems, 1);
    result_free(&r);
    /* A table whose name extends another's is still another table. */
    CU_ASSERT_EQUAL(st_get_all(F.s, GCS_TABLE_ACTOR_TASK_SPEC, &r), 0);
    CU_ASSERT_EQUAL(r.nitems, 0);
    result_free(&r);
}

/* Callbacks may change the store, even the entries they were handed, or destroy it: what
 * they were handed stays valid until they return. */
static void on_count_ignore(int rc, int64_t n, void *arg)
{
}

typedef struct mutator {
    int calls;
    int intact;
} mutator;

static void on_all_then_delete(int rc, const gcs_store_item *items, size_t n, void *arg)
{
    mutator *m = arg;
    m->calls++;
    for (size_t i = 0; i < n; i++) {
        const void *keys[] = {items[i].key};
        size_t lens[] = {items[i].klen};
        F.s->ops->del(F.s, GCS_TABLE_KV, keys, lens, 1, on_count_ignore, NULL);
        F.s->ops->put(F.s, GCS_TABLE_KV, items[i].key, items[i].klen, "changed", 7, 1,
                      on_count_ignore, NULL);
        F.s->ops->del(F.s, GCS_TABLE_KV, keys, lens, 1, on_count_ignore, NULL);
    }
    /* Read only after changing the store (ASan would catch freed memory). */
    int intact = rc == 0 && n == 3;
    for (size_t i = 0; i < n; i++)
        intact = intact && items[i].vlen == 8 && memcmp(items[i].value, "original", 8) == 0;
    m->intact = intact;
}

static void on_get_then_destroy(int rc, const void *value, size_t vlen, void *arg)
{
    mutator *m = arg;
    m->calls++;
    F.s->ops->put(F.s, GCS_TABLE_KV, "a", 1, "changed", 7, 1, on_count_ignore, NULL);
    F.s->ops->destroy(F.s);
    F.s = NULL;
    m->intact = rc == 0 && vlen == 8 && memcmp(value, "original", 8) == 0;
}

static void case_callbacks_change_store(void)
{
    CU_ASSERT_EQUAL(st_put_str(F.s, GCS_TABLE_KV, "a", "original"), 0);
    CU_ASSERT_EQUAL(st_put_str(F.s, GCS_TABLE_KV, "b", "original"), 0);
    CU_ASSERT_EQUAL(st_put_str(F.s, GCS_TABLE_KV, "c", "original"), 0);
    mutator m = {0};
    CU_ASSERT_EQUAL(F.s->ops->get_all(F.s, GCS_TABLE_KV, on_all_then_delete, &m), 0);
    CU_ASSERT_TRUE(run_until(&m.calls, WAIT_MS));
    CU_ASSERT_TRUE(m.intact);
    /* Redis runs the deletes before this, since replies on one connection come in order. */
    result r;
    CU_ASSERT_EQUAL(st_get_all(F.s, GCS_TABLE_KV, &r), 0);
    CU_ASSERT_EQUAL(r.nitems, 0);
    result_free(&r);

    CU_ASSERT_EQUAL(st_put_str(F.s, GCS_TABLE_KV, "a", "original"), 0);
    mutator d = {0};
    CU_ASSERT_EQUAL(F.s->ops->get(F.s, GCS_TABLE_KV, "a", 1, on_get_then_destroy, &d), 0);
    CU_ASSERT_TRUE(run_until(&d.calls, WAIT_MS));
    CU_ASSERT_EQUAL(d.calls, 1);
    CU_ASSERT_TRUE(d.intact);
    CU_ASSERT_PTR_NULL(F.s);
}

BOTH(put_get)
BOTH(binary)
BOTH(multi_get)
BOTH(get_all)
BOTH(keys_prefix)
BOTH(del)
BOTH(exists)
BOTH(next_job_id)
BOTH(tables_isolated)
BOTH(callbacks_change_store)

/* ---- Redis only ------------------------------------------------------------------------ */

/* A blocking client to look at (or spoil) what the store wrote; NULL on failure. */
static redisContext *raw_client(void)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", REDIS.port, tv);
    CU_ASSERT_TRUE(c && !c->err);
    if (c && c->err) {
        redisFree(c);
        c = NULL;
    }
    if (c && REDIS.password[0]) {
        redisReply *rep = redisCommand(c, "AUTH %s", REDIS.password);
        CU_ASSERT_TRUE(rep && rep->type == REDIS_REPLY_STATUS);
        if (rep)
            freeReplyObject(rep);
    }
    return c;
}

/* 1 when `command` answers a bulk string equal to want. */
static int raw_string_is(redisContext *c, const char *want, const char *fmt, const char *a,
                         const char *b)
{
    redisReply *rep = b ? redisCommand(c, fmt, a, b) : redisCommand(c, fmt, a);
    int ok = rep && rep->type == REDIS_REPLY_STRING && strcmp(rep->str, want) == 0;
    if (rep)
        freeReplyObject(rep);
    return ok;
}

static void case_layout_and_namespaces(void)
{
    gcs_store *a = open_store("nsA"), *b = open_store("nsB");
    if (!a || !b)
        goto out;
    CU_ASSERT_EQUAL(st_put_str(a, GCS_TABLE_NODE, "k", "A"), 0);
    CU_ASSERT_EQUAL(st_put_str(b, GCS_TABLE_NODE, "k", "B"), 0);
    CU_ASSERT_TRUE(holds_str(a, GCS_TABLE_NODE, "k", "A"));
    CU_ASSERT_TRUE(holds_str(b, GCS_TABLE_NODE, "k", "B"));
    rc_buf got = RC_BUF_INIT;
    CU_ASSERT_EQUAL(st_get(F.s, GCS_TABLE_NODE, "k", 1, &got), RC_ENOENT);
    rc_buf_free(&got);
    int64_t n = -1;
    CU_ASSERT_EQUAL(st_next_job_id(a, &n), 0);
    CU_ASSERT_EQUAL(st_next_job_id(a, &n), 0);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(st_next_job_id(b, &n), 0);
    CU_ASSERT_EQUAL(n, 1);
    int64_t removed = -1;
    CU_ASSERT_EQUAL(st_del_str(b, GCS_TABLE_NODE, "k", &removed), 0);
    CU_ASSERT_EQUAL(removed, 1);
    CU_ASSERT_TRUE(holds_str(a, GCS_TABLE_NODE, "k", "A"));

    /* Ray's layout, so Ray tools reading the same Redis find the same records. */
    redisContext *c = raw_client();
    if (c) {
        CU_ASSERT_TRUE(raw_string_is(c, "A", "HGET %s %s", "RAYnsA@NODE", "k"));
        CU_ASSERT_TRUE(raw_string_is(c, "2", "GET %s", "RAYnsA@JobCounter", NULL));
        CU_ASSERT_TRUE(raw_string_is(c, "1", "GET %s", "RAYnsB@JobCounter", NULL));
        redisFree(c);
    }
out:
    if (a)
        a->ops->destroy(a);
    if (b)
        b->ops->destroy(b);
}

static void case_survives_store_restart(void)
{
    CU_ASSERT_EQUAL(st_put_str(F.s, GCS_TABLE_JOB, "job1", "record"), 0);
    int64_t n = -1;
    CU_ASSERT_EQUAL(st_next_job_id(F.s, &n), 0);
    CU_ASSERT_EQUAL(st_next_job_id(F.s, &n), 0);
    F.s->ops->destroy(F.s);
    run_for(10);
    F.s = open_store("test");
    if (!F.s)
        return;
    CU_ASSERT_TRUE(holds_str(F.s, GCS_TABLE_JOB, "job1", "record"));
    CU_ASSERT_EQUAL(st_next_job_id(F.s, &n), 0);
    CU_ASSERT_EQUAL(n, 3);
}

/* The outcome of a get while Redis may be away: the call's error or the callback's. */
static int try_get(const char *k)
{
    rc_buf got = RC_BUF_INIT;
    int rc = st_get(F.s, GCS_TABLE_NODE, k, strlen(k), &got);
    rc_buf_free(&got);
    return rc;
}

static void case_redis_goes_away_and_returns(void)
{
    CU_ASSERT_EQUAL(st_put_str(F.s, GCS_TABLE_NODE, "k", "v"), 0);

    /* Operations queued but not yet written when Redis dies fail once, with RC_EUNAVAIL. */
    result pending[3];
    memset(pending, 0, sizeof(pending));
    CU_ASSERT_EQUAL(F.s->ops->put(F.s, GCS_TABLE_NODE, "k2", 2, "v", 1, 1, on_count, &pending[0]),
                    0);
    CU_ASSERT_EQUAL(F.s->ops->get_all(F.s, GCS_TABLE_NODE, on_items, &pending[1]), 0);
    CU_ASSERT_EQUAL(F.s->ops->next_job_id(F.s, on_count, &pending[2]), 0);
    /* A crash, not a shutdown; stop then only reaps it and cleans up. */
    CU_ASSERT_EQUAL(kill(REDIS.pid, SIGKILL), 0);
    harness_redis_stop(&REDIS);
    redis_up = 0;
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_TRUE(run_until(&pending[i].calls, WAIT_MS));
        CU_ASSERT_EQUAL(pending[i].rc, RC_EUNAVAIL);
    }
    run_for(300); /* a few reconnect attempts, all refused */
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(pending[i].calls, 1);
        result_free(&pending[i]);
    }
    /* New operations fail too, promptly. */
    int64_t t0 = rc_mono_ms();
    CU_ASSERT_EQUAL(try_get("k"), RC_EUNAVAIL);
    CU_ASSERT_EQUAL(st_put_str(F.s, GCS_TABLE_NODE, "k", "v"), RC_EUNAVAIL);
    CU_ASSERT_TRUE(rc_mono_ms() - t0 < 1000);

    /* Redis comes back on the same port (empty: it keeps nothing on disk). */
    CU_ASSERT_EQUAL_FATAL(harness_redis_start(&REDIS), 0);
    redis_up = 1;
    int rc = RC_EUNAVAIL;
    int64_t deadline = rc_mono_ms() + WAIT_MS;
    while (rc == RC_EUNAVAIL && rc_mono_ms() < deadline) {
        rc = try_get("k");
        if (rc == RC_EUNAVAIL)
            run_for(50);
    }
    CU_ASSERT_EQUAL(rc, RC_ENOENT);
    CU_ASSERT_EQUAL(st_put_str(F.s, GCS_TABLE_NODE, "k", "back"), 0);
    CU_ASSERT_TRUE(holds_str(F.s, GCS_TABLE_NODE, "k", "back"));
}

static void on_connect_then_destroy(int rc, int64_t n, void *arg)
{
    gcs_store **s = arg;
    (*s)->ops->destroy(*s);
    *s = NULL;
}

static void case_nothing_listening(void)
{
    int port = harness_free_port();
    CU_ASSERT_TRUE_FATAL(port > 0);
    gcs_store *s = NULL;
    int64_t t0 = rc_mono_ms();
    CU_ASSERT_EQUAL(connect_redis(port, "x", &s), RC_EUNAVAIL);
    CU_ASSERT_TRUE(rc_mono_ms() - t0 < 2000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    result r = {0};
    CU_ASSERT_EQUAL(s->ops->get(s, GCS_TABLE_NODE, "k", 1, on_get, &r), RC_EUNAVAIL);
    CU_ASSERT_EQUAL(s->ops->next_job_id(s, on_count, &r), RC_EUNAVAIL);
    run_for(250); /* background attempts go on, quietly */
    CU_ASSERT_EQUAL(r.calls, 0);
    s->ops->destroy(s);

    /* The store may be destroyed from its own connect callback. */
    gcs_store *s2 = NULL;
    CU_ASSERT_EQUAL(gcs_store_redis_connect(&F.loop, "127.0.0.1", port, "x", NULL, &s2,
                                            on_connect_then_destroy, &s2),
                    0);
    CU_ASSERT_PTR_NOT_NULL(s2);
    run_for(300);
    CU_ASSERT_PTR_NULL(s2);

    /* Bad arguments fail at the call. */
    CU_ASSERT_EQUAL(gcs_store_redis_connect(&F.loop, "127.0.0.1", 0, "x", NULL, &s, on_count, &r),
                    RC_EINVAL);
    CU_ASSERT_PTR_NULL(s);
}

static void case_connect_timeout(void)
{
    /* A listener that never accepts: the kernel completes connect(2), PING gets no answer. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    CU_ASSERT_EQUAL_FATAL(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    CU_ASSERT_EQUAL_FATAL(listen(fd, 8), 0);
    CU_ASSERT_EQUAL_FATAL(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    rc_cfg.redis_connect_timeout_ms = 300;
    gcs_store *s = NULL;
    int64_t t0 = rc_mono_ms();
    CU_ASSERT_EQUAL(connect_redis(ntohs(a.sin_port), "x", &s), RC_EUNAVAIL);
    int64_t took = rc_mono_ms() - t0;
    CU_ASSERT_TRUE(took >= 250 && took < 3000);
    if (s)
        s->ops->destroy(s);
    close(fd);
}

/* Every operation in flight when the store is destroyed fails once with RC_ECANCELED. */
typedef struct canceller {
    int calls;
    result *others;
} canceller;

static void on_get_destroy_store(int rc, const void *value, size_t vlen, void *arg)
{
    canceller *c = arg;
    c->calls++;
    F.s->ops->destroy(F.s);
    /* Destroying fails the rest before returning; a nested call is harmless. */
    CU_ASSERT_EQUAL(c->others[0].calls, 1);
    CU_ASSERT_EQUAL(c->others[0].rc, RC_ECANCELED);
    F.s = NULL;
}

static void case_destroy_cancels(void)
{
    result r[5];
    memset(r, 0, sizeof(r));
    CU_ASSERT_EQUAL(F.s->ops->put(F.s, GCS_TABLE_NODE, "k", 1, "v", 1, 1, on_count, &r[0]), 0);
    CU_ASSERT_EQUAL(F.s->ops->get(F.s, GCS_TABLE_NODE, "k", 1, on_get, &r[1]), 0);
    CU_ASSERT_EQUAL(F.s->ops->get_all(F.s, GCS_TABLE_NODE, on_items, &r[2]), 0);
    CU_ASSERT_EQUAL(F.s->ops->keys(F.s, GCS_TABLE_NODE, "k", 1, on_items, &r[3]), 0);
    CU_ASSERT_EQUAL(F.s->ops->next_job_id(F.s, on_count, &r[4]), 0);
    F.s->ops->destroy(F.s);
    F.s = NULL;
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(r[i].calls, 1);
        CU_ASSERT_EQUAL(r[i].rc, RC_ECANCELED);
    }
    run_for(50);
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(r[i].calls, 1);
        result_free(&r[i]);
    }

    /* Destroyed from inside a reply callback, with more replies on the way. */
    F.s = open_store("test");
    if (!F.s)
        return;
    result other[2];
    memset(other, 0, sizeof(other));
    canceller c = {0, other};
    CU_ASSERT_EQUAL(F.s->ops->get(F.s, GCS_TABLE_NODE, "k", 1, on_get_destroy_store, &c), 0);
    CU_ASSERT_EQUAL(F.s->ops->get_all(F.s, GCS_TABLE_NODE, on_items, &other[0]), 0);
    CU_ASSERT_TRUE(run_until(&c.calls, WAIT_MS));
    run_for(50);
    CU_ASSERT_EQUAL(c.calls, 1);
    CU_ASSERT_EQUAL(other[0].calls, 1);
    result_free(&other[0]);

    /* Destroyed while still connecting: the connect callback is cancelled. */
    result conn = {0};
    gcs_store *s = NULL;
    gcs_store_redis_auth auth = redis_auth();
    CU_ASSERT_EQUAL(gcs_store_redis_connect(&F.loop, "127.0.0.1", REDIS.port, "test", &auth, &s,
                                            on_count, &conn),
                    0);
    s->ops->destroy(s);
    CU_ASSERT_EQUAL(conn.calls, 1);
    CU_ASSERT_EQUAL(conn.rc, RC_ECANCELED);
    run_for(50);
    CU_ASSERT_EQUAL(conn.calls, 1);
}

static void case_error_replies(void)
{
    redisContext *c = raw_client();
    if (!c)
        return;
    /* A table that is not a hash, and a counter that is not a number. */
    redisReply *rep = redisCommand(c, "SET RAYtest@NODE not-a-hash");
    CU_ASSERT_PTR_NOT_NULL(rep);
    freeReplyObject(rep);
    rep = redisCommand(c, "SET RAYtest@JobCounter not-a-number");
    CU_ASSERT_PTR_NOT_NULL(rep);
    freeReplyObject(rep);
    redisFree(c);

    rc_buf got = RC_BUF_INIT;
    CU_ASSERT_EQUAL(st_get(F.s, GCS_TABLE_NODE, "k", 1, &got), RC_EIO);
    rc_buf_free(&got);
    CU_ASSERT_EQUAL(st_put_str(F.s, GCS_TABLE_NODE, "k", "v"), RC_EIO);
    result r;
    CU_ASSERT_EQUAL(st_get_all(F.s, GCS_TABLE_NODE, &r), RC_EIO);
    result_free(&r);
    const void *keys[] = {"a", "b"};
    const size_t lens[] = {1, 1};
    CU_ASSERT_EQUAL(st_mget(F.s, GCS_TABLE_NODE, keys, lens, 2, &r), RC_EIO);
    result_free(&r);
    int64_t n;
    CU_ASSERT_EQUAL(st_del(F.s, GCS_TABLE_NODE, keys, lens, 2, &n), RC_EIO);
    CU_ASSERT_EQUAL(st_next_job_id(F.s, &n), RC_EIO);
    /* The connection is fine. */
    CU_ASSERT_EQUAL(st_put_str(F.s, GCS_TABLE_JOB, "k", "v"), 0);
    CU_ASSERT_TRUE(holds_str(F.s, GCS_TABLE_JOB, "k", "v"));
}

/* A fake Redis on the test loop: answers each chunk it reads with the next canned reply. */
typedef struct fake_redis {
    uv_tcp_t server;
    uv_tcp_t client;
    int has_client;
    const char *const *replies;
    size_t n_replies;
    size_t next;
    rc_buf last; /* the last request read */
} fake_redis;

static void fake_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    static char space[65536];
    *buf = uv_buf_init(space, sizeof(space));
}

static void fake_written(uv_write_t *req, int status)
{
    rc_free(req);
}

static void fake_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    fake_redis *f = stream->data;
    if (nread < 0) {
        if (!uv_is_closing((uv_handle_t *)stream))
            uv_close((uv_handle_t *)stream, NULL);
        return;
    }
    if (nread == 0 || f->next >= f->n_replies)
        return;
    rc_buf_clear(&f->last);
    rc_buf_append(&f->last, buf->base, (size_t)nread);
    const char *reply = f->replies[f->next++];
    if (strcmp(reply, "RST") == 0) {
        /* Reset the connection: the client sees POLLERR and ECONNRESET, not EOF. */
        uv_os_fd_t fd;
        struct linger lin = {1, 0};
        if (uv_fileno((uv_handle_t *)stream, &fd) == 0)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lin, sizeof(lin));
        uv_close((uv_handle_t *)stream, NULL);
        return;
    }
    uv_buf_t out = uv_buf_init((char *)reply, (unsigned)strlen(reply));
    uv_write(RC_NEW(uv_write_t), stream, &out, 1, fake_written);
}

static void fake_accept(uv_stream_t *server, int status)
{
    fake_redis *f = server->data;
    if (status != 0 || f->has_client)
        return;
    uv_tcp_init(&F.loop, &f->client);
    f->client.data = f;
    f->has_client = 1;
    if (uv_accept(server, (uv_stream_t *)&f->client) == 0)
        uv_read_start((uv_stream_t *)&f->client, fake_alloc, fake_read);
}

static int fake_start(fake_redis *f)
{
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(&F.loop, &f->server);
    f->server.data = f;
    int len = sizeof(a);
    if (uv_tcp_bind(&f->server, (const struct sockaddr *)&a, 0) ||
        uv_listen((uv_stream_t *)&f->server, 8, fake_accept) ||
        uv_tcp_getsockname(&f->server, (struct sockaddr *)&a, &len))
        return -1;
    return ntohs(a.sin_port);
}

static void fake_stop(fake_redis *f)
{
    uv_close((uv_handle_t *)&f->server, NULL);
    if (f->has_client && !uv_is_closing((uv_handle_t *)&f->client))
        uv_close((uv_handle_t *)&f->client, NULL);
    run_for(10);
    rc_buf_free(&f->last);
}

static void case_malformed_replies(void)
{
    static const char *const replies[] = {
        "+PONG\r\n",                                  /* connect */
        ":5\r\n",                                      /* HGET: integer */
        "$3\r\nabc\r\n",                               /* HSET: string */
        "*1\r\n$1\r\n0\r\n",                           /* HSCAN: one element */
        "*2\r\n$1\r\n0\r\n*1\r\n$1\r\nk\r\n",          /* HSCAN: a field without value */
        "*2\r\n:0\r\n*0\r\n",                          /* HSCAN: integer cursor */
        "*1\r\n:7\r\n",                                /* HMGET: integer element */
        "*2\r\n$1\r\na\r\n$1\r\nb\r\n",                /* HMGET: two answers for one key */
        "+OK\r\n",                                     /* INCRBY: status */
        "-ERR boom\r\n",                               /* HEXISTS: error */
        /* HSCAN in two rounds that both return k (SCAN may): k once, latest value. */
        "*2\r\n$1\r\n5\r\n*2\r\n$1\r\nk\r\n$2\r\nv1\r\n",
        "*2\r\n$1\r\n0\r\n*4\r\n$1\r\nk\r\n$2\r\nv2\r\n$1\r\nj\r\n$1\r\nw\r\n",
        ":1\r\n",                                      /* HSET: fine again */
        "RST",                                         /* HEXISTS: connection reset */
    };
    fake_redis f = {.replies = replies, .n_replies = RC_ARRAY_LEN(replies)};
    int port = fake_start(&f);
    CU_ASSERT_TRUE_FATAL(port > 0);
    gcs_store *s = NULL;
    CU_ASSERT_EQUAL(connect_redis_as(port, "fake", NULL, &s), 0); /* the fake wants no AUTH */
    if (s) {
        rc_buf got = RC_BUF_INIT;
        result r;
        int64_t n = -1;
        const void *keys[] = {"k"};
        const size_t lens[] = {1};
        CU_ASSERT_EQUAL(st_get(s, GCS_TABLE_NODE, "k", 1, &got), RC_EPROTO);
        CU_ASSERT_EQUAL(st_put_str(s, GCS_TABLE_NODE, "k", "v"), RC_EPROTO);
        CU_ASSERT_EQUAL(st_get_all(s, GCS_TABLE_NODE, &r), RC_EPROTO);
        result_free(&r);
        CU_ASSERT_EQUAL(st_keys(s, GCS_TABLE_NODE, "k", 1, &r), RC_EPROTO);
        result_free(&r);
        CU_ASSERT_EQUAL(st_get_all(s, GCS_TABLE_NODE, &r), RC_EPROTO);
        result_free(&r);
        CU_ASSERT_EQUAL(st_mget(s, GCS_TABLE_NODE, keys, lens, 1, &r), RC_EPROTO);
        result_free(&r);
        CU_ASSERT_EQUAL(st_mget(s, GCS_TABLE_NODE, keys, lens, 1, &r), RC_EPROTO);
        result_free(&r);
        CU_ASSERT_EQUAL(st_next_job_id(s, &n), RC_EPROTO);
        CU_ASSERT_EQUAL(st_exists(s, GCS_TABLE_NODE, "k", &n), RC_EIO);
        CU_ASSERT_EQUAL(st_get_all(s, GCS_TABLE_NODE, &r), 0);
        CU_ASSERT_EQUAL(r.nitems, 2);
        CU_ASSERT_EQUAL(count_items(&r, "k", 1, "v2", 2), 1);
        CU_ASSERT_EQUAL(count_items(&r, "j", 1, "w", 1), 1);
        result_free(&r);
        /* The second round continued from the first round's cursor. */
        CU_ASSERT_PTR_NOT_NULL(memmem(f.last.data, f.last.len, "HSCAN", 5));
        CU_ASSERT_PTR_NOT_NULL(memmem(f.last.data, f.last.len, "$1\r\n5\r\n", 7));
        int64_t added = -1;
        CU_ASSERT_EQUAL(st_put(s, GCS_TABLE_NODE, "k", 1, "v", 1, 1, &added), 0);
        CU_ASSERT_EQUAL(added, 1);
        /* A reset connection fails what is in flight instead of hanging it. */
        CU_ASSERT_EQUAL(st_exists(s, GCS_TABLE_NODE, "k", &n), RC_EUNAVAIL);
        rc_buf_free(&got);
        s->ops->destroy(s);
    }
    fake_stop(&f);
}

/* Credentials Redis refuses, or none when it wants some, end the first attempt with
 * RC_EAUTH (the sentence naming the cause is in the log); an ACL user works like the
 * default user. */
static void case_authentication(void)
{
    CU_ASSERT_TRUE_FATAL(REDIS.password[0] != '\0');
    gcs_store *s = NULL;
    /* No password for a server that wants one: NOAUTH, reported as RC_EAUTH. */
    CU_ASSERT_EQUAL(connect_redis_as(REDIS.port, "auth", NULL, &s), RC_EAUTH);
    CU_ASSERT_PTR_NOT_NULL(s);
    result r = {0};
    if (s) {
        CU_ASSERT_EQUAL(s->ops->get(s, GCS_TABLE_AUTH, "ca", 2, on_get, &r), RC_EUNAVAIL);
        s->ops->destroy(s);
    }
    /* A wrong password: WRONGPASS. */
    gcs_store_redis_auth wrong = {NULL, "not-the-password"};
    s = NULL;
    CU_ASSERT_EQUAL(connect_redis_as(REDIS.port, "auth", &wrong, &s), RC_EAUTH);
    if (s)
        s->ops->destroy(s);
    /* A user without its password is refused at the call. */
    gcs_store_redis_auth half = {"someone", NULL};
    CU_ASSERT_EQUAL(gcs_store_redis_connect(&F.loop, "127.0.0.1", REDIS.port, "auth", &half, &s,
                                            on_count, &r),
                    RC_EINVAL);
    run_for(20);
    CU_ASSERT_EQUAL(r.calls, 0);

    /* A Redis ACL user with its own password, allowed only the GCS's keys. */
    redisContext *c = raw_client();
    if (!c)
        return;
    redisReply *rep = redisCommand(c, "ACL SETUSER rayc_gcs reset on >user-secret ~RAY* +@all");
    int acl_ok = rep && rep->type == REDIS_REPLY_STATUS;
    CU_ASSERT_TRUE(acl_ok);
    if (rep)
        freeReplyObject(rep);
    if (acl_ok) {
        gcs_store_redis_auth user = {"rayc_gcs", "user-secret"};
        s = NULL;
        CU_ASSERT_EQUAL(connect_redis_as(REDIS.port, "auth", &user, &s), 0);
        if (s) {
            CU_ASSERT_EQUAL(st_put_str(s, GCS_TABLE_AUTH, "k", "v"), 0);
            CU_ASSERT_TRUE(holds_str(s, GCS_TABLE_AUTH, "k", "v"));
            s->ops->destroy(s);
        }
        gcs_store_redis_auth user_wrong = {"rayc_gcs", "user-secret-not"};
        s = NULL;
        CU_ASSERT_EQUAL(connect_redis_as(REDIS.port, "auth", &user_wrong, &s), RC_EAUTH);
        if (s)
            s->ops->destroy(s);
        rep = redisCommand(c, "ACL DELUSER rayc_gcs");
        if (rep)
            freeReplyObject(rep);
    }
    redisFree(c);
}

/* AUTH is the first command of every connection, reconnections included: after Redis
 * restarts (same password) the store authenticates again and works. */
static void case_auth_on_reconnect(void)
{
    CU_ASSERT_EQUAL(st_put_str(F.s, GCS_TABLE_AUTH, "ca", "before"), 0);
    harness_redis_stop(&REDIS);
    redis_up = harness_redis_start(&REDIS) == 0;
    CU_ASSERT_TRUE_FATAL(redis_up);
    int rc = RC_EUNAVAIL;
    for (int64_t t0 = rc_mono_ms(); rc == RC_EUNAVAIL && rc_mono_ms() - t0 < WAIT_MS;) {
        rc = st_put_str(F.s, GCS_TABLE_AUTH, "ca", "after");
        if (rc == RC_EUNAVAIL)
            run_for(50);
    }
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_TRUE(holds_str(F.s, GCS_TABLE_AUTH, "ca", "after"));
}

REDIS_ONLY(authentication)
REDIS_ONLY(auth_on_reconnect)
REDIS_ONLY(layout_and_namespaces)
REDIS_ONLY(survives_store_restart)
REDIS_ONLY(redis_goes_away_and_returns)
REDIS_ONLY(nothing_listening)
REDIS_ONLY(connect_timeout)
REDIS_ONLY(destroy_cancels)
REDIS_ONLY(error_replies)
REDIS_ONLY(malformed_replies)

static const unit_case cases[] = {
    UNIT_CASE(test_memory_put_get),
    UNIT_CASE(test_redis_put_get),
    UNIT_CASE(test_memory_binary),
    UNIT_CASE(test_redis_binary),
    UNIT_CASE(test_memory_multi_get),
    UNIT_CASE(test_redis_multi_get),
    UNIT_CASE(test_memory_get_all),
    UNIT_CASE(test_redis_get_all),
    UNIT_CASE(test_memory_keys_prefix),
    UNIT_CASE(test_redis_keys_prefix),
    UNIT_CASE(test_memory_del),
    UNIT_CASE(test_redis_del),
    UNIT_CASE(test_memory_exists),
    UNIT_CASE(test_redis_exists),
    UNIT_CASE(test_memory_next_job_id),
    UNIT_CASE(test_redis_next_job_id),
    UNIT_CASE(test_memory_tables_isolated),
    UNIT_CASE(test_redis_tables_isolated),
    UNIT_CASE(test_memory_callbacks_change_store),
    UNIT_CASE(test_redis_callbacks_change_store),
    UNIT_CASE(test_redis_layout_and_namespaces),
    UNIT_CASE(test_redis_survives_store_restart),
    UNIT_CASE(test_redis_redis_goes_away_and_returns),
    UNIT_CASE(test_redis_nothing_listening),
    UNIT_CASE(test_redis_connect_timeout),
    UNIT_CASE(test_redis_destroy_cancels),
    UNIT_CASE(test_redis_error_replies),
    UNIT_CASE(test_redis_malformed_replies),
    UNIT_CASE(test_redis_authentication),
    UNIT_CASE(test_redis_auth_on_reconnect),
};

int main(void)
{
    rc_config_init();
    if (harness_redis_start(&REDIS) == 0)
        redis_up = 1;
    else
        fprintf(stderr, "test_store: cannot start redis-server; the Redis cases will fail\n");
    int rc = unit_run("gcs_store", cases, UNIT_N(cases));
    harness_redis_stop(&REDIS);
    return rc;
}
