/*
 * The memory storage backend: every table is an rc_map of key -> entry, and the job
 * counter a plain integer. State lives as long as the store; this is the default GCS
 * storage, which loses everything when the GCS exits (ARCHITECTURE §5).
 *
 * Every operation calls back before it returns, as store.h allows. An entry holds its key
 * and its value in one reference-counted block that is never changed after it is made: a
 * put replaces the block, a delete drops the table's reference. Each callback is handed
 * pointers into blocks it holds a reference on, so a callback may overwrite or delete the
 * very entries it is looking at, or destroy the store, and its data stays valid until it
 * returns, just as with the Redis backend, which hands out copies.
 *
 * Loop thread only (no locks; one owner).
 */
#include <stdint.h>
#include <string.h>

#include "rc_alloc.h"
#include "rc_err.h"
#include "rc_map.h"
#include "store.h"
#include "store_int.h"

typedef struct mem_entry {
    size_t refs; /* the table's reference, plus one per callback in progress */
    size_t klen;
    size_t vlen;
    unsigned char bytes[]; /* key, then value */
} mem_entry;

typedef struct mem_store {
    gcs_store base;
    rc_map tables; /* table name -> rc_map * (key -> mem_entry *) */
    int64_t job_counter;
} mem_store;

/* Returns a new entry with one reference; released with entry_unref. */
static mem_entry *entry_new(const void *key, size_t klen, const void *value, size_t vlen)
{
    mem_entry *e = rc_malloc(sizeof(*e) + klen + vlen);
    e->refs = 1;
    e->klen = klen;
    e->vlen = vlen;
    if (klen)
        memcpy(e->bytes, key, klen);
    if (vlen)
        memcpy(e->bytes + klen, value, vlen);
    return e;
}

static mem_entry *entry_ref(mem_entry *e)
{
    e->refs++;
    return e;
}

static void entry_unref(void *p)
{
    mem_entry *e = p;
    if (e && --e->refs == 0)
        rc_free(e);
}

static const void *entry_key(const mem_entry *e)
{
    return e->bytes;
}

static const void *entry_value(const mem_entry *e)
{
    return e->bytes + e->klen;
}

static void table_free(void *p)
{
    rc_map *t = p;
    rc_map_destroy(t, entry_unref);
    rc_free(t);
}

/* The table named name, or NULL when nothing was ever stored in it. */
static rc_map *table_find(mem_store *s, const char *name)
{
    return rc_map_get_str(&s->tables, name);
}

static rc_map *table_get_or_create(mem_store *s, const char *name)
{
    rc_map *t = table_find(s, name);
    if (!t) {
        t = RC_NEW(rc_map);
        rc_map_init(t);
        rc_map_put_str(&s->tables, name, t);
    }
    return t;
}

/* An empty key may come in as NULL; rc_map wants a pointer it can hand to memcmp. */
static const void *key_ptr(const void *key)
{
    return key ? key : "";
}

/* Hands items[0..n) (each pointing into held[i]) to cb, then drops the references that kept
 * them alive during the call, and frees both arrays (which this function owns). */
static void deliver_items(gcs_store_items_cb cb, void *arg, gcs_store_item *items,
                          mem_entry **held, size_t n)
{
    cb(0, items, n, arg);
    for (size_t i = 0; i < n; i++)
        entry_unref(held[i]);
    rc_free(items);
    rc_free(held);
}

static int mem_put(gcs_store *base, const char *table, const void *key, size_t klen,
                   const void *value, size_t vlen, int overwrite, gcs_store_count_cb cb,
                   void *arg)
{
    mem_store *s = (mem_store *)base;
    int rc = gcs__check_key_op(table, key, klen, cb != NULL);
    if (rc || gcs__check_bytes(value, vlen))
        return RC_EINVAL;
    rc_map *t = table_get_or_create(s, table);
    key = key_ptr(key);
    if (rc_map_get(t, key, klen) && !overwrite) {
        cb(0, 0, arg);
        return 0;
    }
    mem_entry *old = rc_map_put(t, key, klen, entry_new(key, klen, value, vlen));
    int64_t added = old ? 0 : 1;
    entry_unref(old);
    cb(0, added, arg);
    return 0;
}

static int mem_get(gcs_store *base, const char *table, const void *key, size_t klen,
                   gcs_store_get_cb cb, void *arg)
{
    mem_store *s = (mem_store *)base;
    int rc = gcs__check_key_op(table, key, klen, cb != NULL);
    if (rc)
        return rc;
    rc_map *t = table_find(s, table);
    mem_entry *e = t ? rc_map_get(t, key_ptr(key), klen) : NULL;
    if (!e) {
        cb(RC_ENOENT, NULL, 0, arg);
        return 0;
    }
    entry_ref(e);
    cb(0, entry_value(e), e->vlen, arg);
    entry_unref(e);
    return 0;
}

/* One item per requested key that exists, in request order (a key asked for twice comes
 * back twice, as HMGET does). */
static int mem_multi_get(gcs_store *base, const char *table, const void *const *keys,
                         const size_t *klens, size_t n, gcs_store_items_cb cb, void *arg)
{
    mem_store *s = (mem_store *)base;
    int rc = gcs__check_keys_op(table, keys, klens, n, cb != NULL);
    if (rc)
        return rc;
    rc_map *t = table_find(s, table);
    gcs_store_item *items = rc_calloc(n ? n : 1, sizeof(*items));
    mem_entry **held = rc_calloc(n ? n : 1, sizeof(*held));
    size_t found = 0;
    for (size_t i = 0; t && i < n; i++) {
        mem_entry *e = rc_map_get(t, key_ptr(keys[i]), klens[i]);
        if (!e)
            continue;
        held[found] = entry_ref(e);
        items[found] = (gcs_store_item){entry_key(e), e->klen, entry_value(e), e->vlen};
        found++;
    }
    deliver_items(cb, arg, items, held, found);
    return 0;
}

/* get_all and keys: the entries whose key starts with prefix[0..plen). */
static int scan_table(mem_store *s, const char *table, const void *prefix, size_t plen,
                      int with_values, gcs_store_items_cb cb, void *arg)
{
    rc_map *t = table_find(s, table);
    size_t cap = t ? rc_map_size(t) : 0;
    gcs_store_item *items = rc_calloc(cap ? cap : 1, sizeof(*items));
    mem_entry **held = rc_calloc(cap ? cap : 1, sizeof(*held));
    size_t n = 0;
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (t && rc_map_next(t, &it, NULL, NULL, &v)) {
        mem_entry *e = v;
        if (e->klen < plen || (plen && memcmp(entry_key(e), prefix, plen) != 0))
            continue;
        held[n] = entry_ref(e);
        items[n] = (gcs_store_item){entry_key(e), e->klen, with_values ? entry_value(e) : NULL,
                                    with_values ? e->vlen : 0};
        n++;
    }
    deliver_items(cb, arg, items, held, n);
    return 0;
}

static int mem_get_all(gcs_store *base, const char *table, gcs_store_items_cb cb, void *arg)
{
    if (!table || !table[0] || !cb)
        return RC_EINVAL;
    return scan_table((mem_store *)base, table, NULL, 0, 1, cb, arg);
}

static int mem_keys(gcs_store *base, const char *table, const void *prefix, size_t plen,
                    gcs_store_items_cb cb, void *arg)
{
    int rc = gcs__check_key_op(table, prefix, plen, cb != NULL);
    if (rc)
        return rc;
    return scan_table((mem_store *)base, table, prefix, plen, 0, cb, arg);
}

static int mem_del(gcs_store *base, const char *table, const void *const *keys,
                   const size_t *klens, size_t n, gcs_store_count_cb cb, void *arg)
{
    mem_store *s = (mem_store *)base;
    int rc = gcs__check_keys_op(table, keys, klens, n, cb != NULL);
    if (rc)
        return rc;
    rc_map *t = table_find(s, table);
    int64_t removed = 0;
    for (size_t i = 0; t && i < n; i++) {
        mem_entry *e = rc_map_remove(t, key_ptr(keys[i]), klens[i]);
        if (e) {
            entry_unref(e);
            removed++;
        }
    }
    cb(0, removed, arg);
    return 0;
}

static int mem_exists(gcs_store *base, const char *table, const void *key, size_t klen,
                      gcs_store_count_cb cb, void *arg)
{
    mem_store *s = (mem_store *)base;
    int rc = gcs__check_key_op(table, key, klen, cb != NULL);
    if (rc)
        return rc;
    rc_map *t = table_find(s, table);
    cb(0, (t && rc_map_get(t, key_ptr(key), klen)) ? 1 : 0, arg);
    return 0;
}

static int mem_next_job_id(gcs_store *base, gcs_store_count_cb cb, void *arg)
{
    mem_store *s = (mem_store *)base;
    if (!cb)
        return RC_EINVAL;
    cb(0, ++s->job_counter, arg);
    return 0;
}

/* Nothing is ever pending here, so there is nothing to cancel. */
static void mem_destroy(gcs_store *base)
{
    mem_store *s = (mem_store *)base;
    rc_map_destroy(&s->tables, table_free);
    rc_free(s);
}

static const gcs_store_ops mem_ops = {
    .name = "memory",
    .put = mem_put,
    .get = mem_get,
    .multi_get = mem_multi_get,
    .get_all = mem_get_all,
    .keys = mem_keys,
    .del = mem_del,
    .exists = mem_exists,
    .next_job_id = mem_next_job_id,
    .destroy = mem_destroy,
};

gcs_store *gcs_store_memory_new(void)
{
    mem_store *s = RC_NEW(mem_store);
    s->base.ops = &mem_ops;
    rc_map_init(&s->tables);
    return &s->base;
}
