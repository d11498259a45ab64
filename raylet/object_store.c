/*
 * object_store: the object table, pins, eviction and waiting gets over one object_region
 * (see object_store.h for the object life and the invariants).
 *
 * Data structures: objects (id -> store_object) and waiters (id -> an rc_list of the slots
 * of the gets waiting for that id, newest first). A waiting get owns one slot per
 * requested object; a slot is on its id's waiter list while that object is missing.
 * Evictable objects form an LRU list, least recently released at the head.
 *
 * Callbacks (get answers) may call back into the store, so code that wakes several gets
 * takes one slot at a time off the waiter list and re-checks the object before each: a
 * callback may have deleted it or cancelled the other gets.
 *
 * Loop thread only.
 */
#include "object_store.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "rc_alloc.h"
#include "rc_err.h"
#include "rc_ids.h"
#include "rc_list.h"
#include "rc_log.h"
#include "rc_map.h"

const uint8_t RAYLET_STORE_SELF[28] = {0};

typedef struct store_pin {
    uint8_t client[RC_WORKER_ID_SIZE];
    uint32_t count;
} store_pin;

typedef struct store_object {
    uint8_t id[RC_OBJECT_ID_SIZE];
    uint8_t creator[RC_WORKER_ID_SIZE];
    uint64_t offset, data_size, metadata_size;
    uint64_t allocated; /* what the region really took */
    Ray__Rpc__Address *owner; /* owned; NULL if unknown */
    unsigned sealed : 1, primary : 1, pending_free : 1, on_lru : 1;
    store_pin *pins;
    uint32_t n_pins, cap_pins;
    uint32_t total_pins;
    rc_list lru_link; /* on s->lru while on_lru */
} store_object;

typedef struct store_slot {
    raylet_store_get *get;
    rc_list link; /* on the waiter list of its id while waiting */
    int waiting;
} store_slot;

struct raylet_store_get {
    raylet_store *s;
    uint8_t client[RC_WORKER_ID_SIZE];
    raylet_store_get_cb cb;
    void *arg;
    size_t n, missing;
    int starting; /* the fetch hooks are running: finish only once they are done */
    raylet_store_found *found;
    uint8_t (*ids)[RC_OBJECT_ID_SIZE];
    store_slot *slots;
    Ray__Rpc__Address **owners; /* waiting gets: each missing ref's owner (owned), or NULL */
    uv_timer_t timer;
    int has_timer;
    rc_list link; /* on s->gets */
};

struct raylet_store {
    uv_loop_t *loop;
    raylet_region *region;
    rc_map objects; /* id -> store_object */
    rc_map waiters; /* id -> rc_list (owned) of store_slot.link */
    rc_list lru;  /* store_object.lru_link: evictable, least recently used first */
    rc_list gets; /* raylet_store_get.link: waiting */
    raylet_store_hooks hooks;
    uint64_t used, evictable_bytes, num_evicted, num_sealed, num_primary;
    uint64_t sealed_bytes; /* of used, the sealed objects' */
    int destroyed;
    int closing; /* get timers not yet closed */
};

/* ---- helpers ------------------------------------------------------------------------ */

static char *store__hex(const uint8_t *id, char *buf)
{
    return rc_id_hex(id, RC_OBJECT_ID_SIZE, buf);
}

static void store__maybe_free(raylet_store *s)
{
    if (s->destroyed && s->closing == 0) {
        rc_map_destroy(&s->objects, NULL);
        rc_map_destroy(&s->waiters, rc_free);
        rc_free(s);
    }
}

static store_object *store__find(const raylet_store *s, const uint8_t *id)
{
    return rc_map_get(&s->objects, id, RC_OBJECT_ID_SIZE);
}

static void store__lru_remove(raylet_store *s, store_object *o)
{
    if (!o->on_lru)
        return;
    rc_list_remove(&o->lru_link);
    o->on_lru = 0;
    s->evictable_bytes -= o->allocated;
}

/* Puts o on (the most recent end of) the eviction list, or takes it off, per the
 * invariant in object_store.h. */
static void store__update_evictable(raylet_store *s, store_object *o)
{
    int evictable = o->sealed && !o->primary && !o->pending_free && o->total_pins == 0;
    if (!evictable) {
        store__lru_remove(s, o);
        return;
    }
    if (o->on_lru)
        return;
    rc_list_insert_tail(&s->lru, &o->lru_link);
    o->on_lru = 1;
    s->evictable_bytes += o->allocated;
}

static void store__set_primary(raylet_store *s, store_object *o, int primary)
{
    if (o->primary == (unsigned)!!primary)
        return;
    o->primary = !!primary;
    if (primary)
        s->num_primary++;
    else
        s->num_primary--;
}

/* Removes o from every structure and frees its space. Gets waiting for an unsealed o keep
 * waiting (it may be created again). */
static void store__delete(raylet_store *s, store_object *o)
{
    store__lru_remove(s, o);
    rc_map_remove(&s->objects, o->id, RC_OBJECT_ID_SIZE);
    if (o->sealed) {
        s->num_sealed--;
        s->sealed_bytes -= o->allocated;
    }
    store__set_primary(s, o, 0);
    s->used -= o->allocated;
    raylet_region_free(s->region, o->offset);
    rpc_msg_free(o->owner ? &o->owner->base : NULL);
    rc_free(o->pins);
    rc_free(o);
}

/* Deletes an unsealed object. Gets waiting for it would otherwise wait for a creator that
 * gave up (or a transfer that stalled): fetch it again for them. */
static void store__drop_unsealed(raylet_store *s, store_object *o)
{
    uint8_t id[RC_OBJECT_ID_SIZE];
    memcpy(id, o->id, sizeof(id));
    Ray__Rpc__Address *owner = o->owner;
    o->owner = NULL;
    store__delete(s, o);
    rc_list *waiting = rc_map_get(&s->waiters, id, RC_OBJECT_ID_SIZE);
    store_slot *waiter = waiting ? rc_list_entry(rc_list_first(waiting), store_slot, link) : NULL;
    if (s->hooks.fetch && waiter) {
        /* The copy may not have known its owner (an unasked push); the waiter's ref does. */
        const Ray__Rpc__Address *who = owner ? owner : waiter->get->owners[waiter - waiter->get->slots];
        s->hooks.fetch(s->hooks.arg, id, who);
    }
    rpc_msg_free(owner ? &owner->base : NULL);
}

static void store__pin(raylet_store *s, store_object *o, const uint8_t *client)
{
    uint32_t i = 0;
    while (i < o->n_pins && memcmp(o->pins[i].client, client, RC_WORKER_ID_SIZE) != 0)
        i++;
    if (i == o->n_pins) {
        if (o->n_pins == o->cap_pins) {
            o->cap_pins = o->cap_pins ? 2 * o->cap_pins : 2;
            o->pins = rc_realloc(o->pins, o->cap_pins * sizeof(*o->pins));
        }
        memcpy(o->pins[i].client, client, RC_WORKER_ID_SIZE);
        o->pins[i].count = 0;
        o->n_pins++;
    }
    o->pins[i].count++;
    o->total_pins++;
    store__lru_remove(s, o);
}

static uint32_t store__pins_of(const store_object *o, const uint8_t *client)
{
    for (uint32_t i = 0; i < o->n_pins; i++)
        if (memcmp(o->pins[i].client, client, RC_WORKER_ID_SIZE) == 0)
            return o->pins[i].count;
    return 0;
}

/* Drops count pins of client (which holds at least that many). May delete o. */
static void store__unpin(raylet_store *s, store_object *o, const uint8_t *client, uint32_t count)
{
    for (uint32_t i = 0; i < o->n_pins; i++) {
        if (memcmp(o->pins[i].client, client, RC_WORKER_ID_SIZE) != 0)
            continue;
        o->pins[i].count -= count;
        o->total_pins -= count;
        if (o->pins[i].count == 0)
            o->pins[i] = o->pins[--o->n_pins];
        break;
    }
    if (o->total_pins == 0 && o->pending_free && o->sealed)
        store__delete(s, o);
    else
        store__update_evictable(s, o);
}

/* ---- gets --------------------------------------------------------------------------- */

static void store__slot_unlink(raylet_store *s, store_slot *sl)
{
    if (!sl->waiting)
        return;
    const uint8_t *id = sl->get->ids[sl - sl->get->slots];
    rc_list_remove(&sl->link);
    rc_list *waiting = rc_map_get(&s->waiters, id, RC_OBJECT_ID_SIZE);
    if (waiting && rc_list_empty(waiting))
        rc_free(rc_map_remove(&s->waiters, id, RC_OBJECT_ID_SIZE));
    sl->waiting = 0;
}

static void store__slot_link(raylet_store *s, store_slot *sl)
{
    const uint8_t *id = sl->get->ids[sl - sl->get->slots];
    rc_list *waiting = rc_map_get(&s->waiters, id, RC_OBJECT_ID_SIZE);
    if (!waiting) {
        waiting = RC_NEW(rc_list);
        rc_list_init(waiting);
        rc_map_put(&s->waiters, id, RC_OBJECT_ID_SIZE, waiting);
    }
    rc_list_insert_head(waiting, &sl->link);
    sl->waiting = 1;
}

static void store__get_free(raylet_store_get *g)
{
    if (g->owners) {
        for (size_t i = 0; i < g->n; i++)
            rpc_msg_free(g->owners[i] ? &g->owners[i]->base : NULL);
        rc_free(g->owners);
    }
    rc_free(g);
}

static void store__on_get_timer_closed(uv_handle_t *h)
{
    raylet_store_get *g = h->data;
    raylet_store *s = g->s;
    store__get_free(g);
    s->closing--;
    store__maybe_free(s);
}

/* Takes g off every list and frees it (after its timer closes). With cancel the pins it
 * took go and nothing counts as found. cb runs unless silent. */
static void store__get_finish(raylet_store_get *g, int rc, int silent)
{
    raylet_store *s = g->s;
    for (size_t i = 0; i < g->n; i++)
        store__slot_unlink(s, &g->slots[i]);
    rc_list_remove(&g->link);
    if (rc == RC_ECANCELED) {
        for (size_t i = 0; i < g->n; i++) {
            if (!g->found[i].found)
                continue;
            g->found[i].found = 0;
            store_object *o = store__find(s, g->ids[i]);
            if (o)
                store__unpin(s, o, g->client, 1);
        }
    }
    if (!silent)
        g->cb(g->arg, rc, g->found, g->n);
    if (g->has_timer) {
        uv_timer_stop(&g->timer);
        s->closing++;
        uv_close((uv_handle_t *)&g->timer, store__on_get_timer_closed);
    } else {
        store__get_free(g);
    }
}

static void store__on_get_timeout(uv_timer_t *t)
{
    store__get_finish(t->data, 0, 0);
}

static void store__fill_found(raylet_store_found *f, const store_object *o)
{
    f->found = 1;
    f->offset = o->offset;
    f->data_size = o->data_size;
    f->metadata_size = o->metadata_size;
}

/* Resolves the gets waiting for id, now that it is sealed (failed == 0) or lost for good
 * (failed == 1). One slot at a time: an answer may change anything. */
static void store__wake(raylet_store *s, const uint8_t *object_id, int failed)
{
    uint8_t id[RC_OBJECT_ID_SIZE];
    memcpy(id, object_id, sizeof(id));
    rc_list *waiting;
    while ((waiting = rc_map_get(&s->waiters, id, RC_OBJECT_ID_SIZE))) {
        store_slot *sl = rc_list_entry(rc_list_first(waiting), store_slot, link);
        raylet_store_get *g = sl->get;
        store_object *o = NULL;
        if (!failed) {
            o = store__find(s, id);
            if (!o || !o->sealed)
                return;
        }
        store__slot_unlink(s, sl);
        if (o) {
            store__pin(s, o, g->client);
            store__fill_found(&g->found[sl - g->slots], o);
        }
        if (--g->missing == 0 && !g->starting)
            store__get_finish(g, 0, 0);
    }
}

int raylet_store_get_objects(raylet_store *s, const uint8_t *client,
                             Ray__Rpc__ObjectReference *const *refs, size_t n, int64_t timeout_ms,
                             raylet_store_get_cb cb, void *arg, raylet_store_get **out)
{
    if (out)
        *out = NULL;
    if (timeout_ms < -1)
        return RC_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!refs[i] || refs[i]->object_id.len != RC_OBJECT_ID_SIZE)
            return RC_EINVAL;
    /* One block: the get, then found[n], slots[n] and (unaligned bytes last) ids[n]. */
    size_t bytes = sizeof(raylet_store_get) + n * (sizeof(raylet_store_found) +
                                                   sizeof(store_slot) + RC_OBJECT_ID_SIZE);
    raylet_store_get *g = rc_calloc(1, bytes);
    g->s = s;
    memcpy(g->client, client, RC_WORKER_ID_SIZE);
    g->cb = cb;
    g->arg = arg;
    g->n = n;
    g->found = (raylet_store_found *)(g + 1);
    g->slots = (store_slot *)(g->found + n);
    g->ids = (uint8_t(*)[RC_OBJECT_ID_SIZE])(g->slots + n);
    for (size_t i = 0; i < n; i++) {
        memcpy(g->ids[i], refs[i]->object_id.data, RC_OBJECT_ID_SIZE);
        g->found[i].object_id = g->ids[i];
        g->slots[i].get = g;
        store_object *o = store__find(s, g->ids[i]);
        if (o && o->sealed) {
            store__pin(s, o, client);
            store__fill_found(&g->found[i], o);
        } else {
            g->missing++;
        }
    }
    if (g->missing == 0 || timeout_ms == 0) {
        /* Not waiting; still fetch what is absent, so that a later get finds it. */
        for (size_t i = 0; i < n && s->hooks.fetch; i++)
            if (!g->found[i].found && !store__find(s, g->ids[i]))
                s->hooks.fetch(s->hooks.arg, g->ids[i], refs[i]->owner_address);
        cb(arg, 0, g->found, n);
        store__get_free(g);
        return 0;
    }
    rc_list_insert_head(&s->gets, &g->link);
    /* Owners are kept for fetching again later (see store__drop_unsealed). */
    g->owners = rc_calloc(n, sizeof(*g->owners));
    for (size_t i = 0; i < n; i++) {
        if (g->found[i].found)
            continue;
        store__slot_link(s, &g->slots[i]);
        if (refs[i]->owner_address)
            g->owners[i] = (Ray__Rpc__Address *)rpc_msg_dup(&refs[i]->owner_address->base);
    }
    if (timeout_ms > 0) {
        uv_timer_init(s->loop, &g->timer);
        g->timer.data = g;
        g->has_timer = 1;
        /* The loop's cached time may be as old as the start of this loop iteration: the
         * timeout counts from now, never from then (a get must not end before it asked). */
        uv_update_time(s->loop);
        uv_timer_start(&g->timer, store__on_get_timeout, (uint64_t)timeout_ms, 0);
    }
    if (out)
        *out = g;
    /* The hooks may fail a fetch at once; g answers only after they all ran. */
    g->starting = 1;
    for (size_t i = 0; i < n && s->hooks.fetch; i++)
        if (g->slots[i].waiting && !store__find(s, g->ids[i]))
            s->hooks.fetch(s->hooks.arg, g->ids[i], refs[i]->owner_address);
    g->starting = 0;
    if (g->missing == 0) {
        if (out)
            *out = NULL;
        store__get_finish(g, 0, 0);
    }
    return 0;
}

void raylet_store_get_cancel(raylet_store *s, raylet_store_get *g)
{
    if (g)
        store__get_finish(g, RC_ECANCELED, 1);
}

void raylet_store_fetch_failed(raylet_store *s, const uint8_t *object_id)
{
    store__wake(s, object_id, 1);
}

int raylet_store_is_wanted(const raylet_store *s, const uint8_t *object_id)
{
    return rc_map_get(&s->waiters, object_id, RC_OBJECT_ID_SIZE) != NULL;
}

/* ---- objects ------------------------------------------------------------------------ */

static void store__full_message(raylet_store *s, const uint8_t *id, uint64_t data_size,
                                uint64_t metadata_size, char *err, size_t errlen)
{
    char hex[RC_ID_HEX_MAX];
    raylet_region_stats rs;
    raylet_region_stats_get(s->region, &rs);
    uint64_t total = data_size + metadata_size;
    if (total > rs.size) {
        snprintf(err, errlen, "object %s of %" PRIu64 " bytes (data %" PRIu64 " + metadata %"
                 PRIu64 ") is larger than the whole object store (%" PRIu64 " bytes)",
                 store__hex(id, hex), total, data_size, metadata_size, rs.size);
        return;
    }
    snprintf(err, errlen, "object store full: cannot create object %s of %" PRIu64 " bytes (data %"
             PRIu64 " + metadata %" PRIu64 "): %" PRIu64 " bytes free of %" PRIu64
             " (largest free range %" PRIu64 "), %" PRIu64 " bytes held by %zu objects that are "
             "pinned, primary or unsealed", store__hex(id, hex), total, data_size, metadata_size,
             rs.free_bytes, rs.size, rs.largest_free, s->used - s->evictable_bytes,
             rc_map_size(&s->objects));
}

/* Allocates total bytes, evicting from the LRU end until it fits. */
static int store__alloc(raylet_store *s, uint64_t total, uint64_t *offset, uint64_t *allocated)
{
    for (;;) {
        if (raylet_region_alloc(s->region, total, offset, allocated) == 0)
            return 0;
        if (rc_list_empty(&s->lru))
            return RC_ENOSPC;
        /* Evict about enough for the request, then try again: fragmentation may want more. */
        uint64_t freed = 0;
        while (!rc_list_empty(&s->lru) && freed < total) {
            store_object *o = rc_list_entry(rc_list_first(&s->lru), store_object, lru_link);
            freed += o->allocated;
            if (s->hooks.evicted)
                s->hooks.evicted(s->hooks.arg, o->id, o->owner);
            s->num_evicted++;
            store__delete(s, o);
        }
    }
}

int raylet_store_create_object(raylet_store *s, const uint8_t *object_id, const uint8_t *creator,
                               uint64_t data_size, uint64_t metadata_size,
                               const Ray__Rpc__Address *owner, int primary, uint64_t *offset,
                               char *err, size_t errlen)
{
    char hex[RC_ID_HEX_MAX];
    if (store__find(s, object_id)) {
        snprintf(err, errlen, "object %s already exists in this node's store",
                 store__hex(object_id, hex));
        return RC_EEXIST;
    }
    if (data_size > UINT64_MAX - metadata_size) {
        snprintf(err, errlen, "object %s: data size %" PRIu64 " + metadata size %" PRIu64
                 " overflows", store__hex(object_id, hex), data_size, metadata_size);
        return RC_EINVAL;
    }
    uint64_t total = data_size + metadata_size, off = 0, allocated = 0;
    if (total > raylet_region_size(s->region) || store__alloc(s, total, &off, &allocated) < 0) {
        store__full_message(s, object_id, data_size, metadata_size, err, errlen);
        return RC_ENOSPC;
    }
    store_object *o = RC_NEW(store_object);
    memcpy(o->id, object_id, RC_OBJECT_ID_SIZE);
    memcpy(o->creator, creator, RC_WORKER_ID_SIZE);
    o->offset = off;
    o->data_size = data_size;
    o->metadata_size = metadata_size;
    o->allocated = allocated;
    if (owner)
        o->owner = (Ray__Rpc__Address *)rpc_msg_dup(&owner->base);
    store__set_primary(s, o, primary);
    s->used += allocated;
    rc_map_put(&s->objects, o->id, RC_OBJECT_ID_SIZE, o);
    *offset = off;
    return 0;
}

/* The checks seal and abort share. */
static int store__creator_check(raylet_store *s, const uint8_t *id, const uint8_t *client,
                                store_object **out)
{
    store_object *o = store__find(s, id);
    if (!o)
        return RC_ENOENT;
    if (o->sealed)
        return RC_ESTATE;
    if (memcmp(o->creator, client, RC_WORKER_ID_SIZE) != 0)
        return RC_EAUTH;
    *out = o;
    return 0;
}

int raylet_store_seal(raylet_store *s, const uint8_t *object_id, const uint8_t *client)
{
    store_object *o;
    int rc = store__creator_check(s, object_id, client, &o);
    if (rc < 0)
        return rc;
    o->sealed = 1;
    s->num_sealed++;
    s->sealed_bytes += o->allocated;
    if (o->pending_free && o->total_pins == 0) {
        store__delete(s, o); /* freed by its owner while it was being written */
        return 0;
    }
    store__update_evictable(s, o);
    store__wake(s, object_id, 0);
    return 0;
}

int raylet_store_abort(raylet_store *s, const uint8_t *object_id, const uint8_t *client)
{
    store_object *o;
    int rc = store__creator_check(s, object_id, client, &o);
    if (rc < 0)
        return rc;
    store__drop_unsealed(s, o);
    return 0;
}

int raylet_store_lookup(const raylet_store *s, const uint8_t *object_id, raylet_object_info *out)
{
    const store_object *o = store__find(s, object_id);
    if (!o)
        return RC_ENOENT;
    out->offset = o->offset;
    out->data_size = o->data_size;
    out->metadata_size = o->metadata_size;
    out->sealed = o->sealed;
    out->primary = o->primary;
    out->pending_free = o->pending_free;
    out->pins = o->total_pins;
    out->owner = o->owner;
    return 0;
}

int raylet_store_pin(raylet_store *s, const uint8_t *object_id, const uint8_t *client)
{
    store_object *o = store__find(s, object_id);
    if (!o)
        return RC_ENOENT;
    if (!o->sealed)
        return RC_ESTATE;
    store__pin(s, o, client);
    return 0;
}

int raylet_store_release(raylet_store *s, const uint8_t *client, const uint8_t *const *ids,
                         size_t n, size_t *bad)
{
    /* Check first that client holds a pin for every occurrence, so that a bad request
     * changes nothing. Quadratic in n only through repeated IDs, which are rare. */
    for (size_t i = 0; i < n; i++) {
        store_object *o = store__find(s, ids[i]);
        uint32_t needed = 1;
        for (size_t j = 0; j < i; j++)
            if (memcmp(ids[j], ids[i], RC_OBJECT_ID_SIZE) == 0)
                needed++;
        if (!o || store__pins_of(o, client) < needed) {
            if (bad)
                *bad = i;
            return RC_ESTATE;
        }
    }
    for (size_t i = 0; i < n; i++)
        store__unpin(s, store__find(s, ids[i]), client, 1);
    return 0;
}

int raylet_store_free(raylet_store *s, const uint8_t *object_id)
{
    store_object *o = store__find(s, object_id);
    if (!o)
        return RC_ENOENT;
    store__set_primary(s, o, 0);
    o->pending_free = 1;
    if (o->sealed && o->total_pins == 0)
        store__delete(s, o);
    else
        store__lru_remove(s, o);
    return 0;
}

int raylet_store_make_primary(raylet_store *s, const uint8_t *object_id,
                              const Ray__Rpc__Address *owner)
{
    store_object *o = store__find(s, object_id);
    if (!o)
        return RC_ENOENT;
    if (!o->sealed || o->pending_free)
        return RC_ESTATE;
    if (owner) {
        rpc_msg_free(o->owner ? &o->owner->base : NULL);
        o->owner = (Ray__Rpc__Address *)rpc_msg_dup(&owner->base);
    }
    store__set_primary(s, o, 1);
    store__update_evictable(s, o);
    return 0;
}

/* Collects the objects pred picks (the map must not change while iterating). The caller
 * frees the array with rc_free. */
static store_object **store__select(raylet_store *s, int (*pred)(store_object *, const void *),
                                    const void *arg, size_t *n)
{
    store_object **out = rc_malloc((rc_map_size(&s->objects) + 1) * sizeof(*out));
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    *n = 0;
    while (rc_map_next(&s->objects, &it, NULL, NULL, &v))
        if (pred(v, arg))
            out[(*n)++] = v;
    return out;
}

static int store__touched_by(store_object *o, const void *client)
{
    return store__pins_of(o, client) > 0 ||
           (!o->sealed && memcmp(o->creator, client, RC_WORKER_ID_SIZE) == 0);
}

void raylet_store_client_gone(raylet_store *s, const uint8_t *client)
{
    /* Its gets first: they hold pins of the client too. */
    rc_list *gl = rc_list_first(&s->gets);
    while (gl) {
        rc_list *next = rc_list_next(&s->gets, gl);
        raylet_store_get *g = rc_list_entry(gl, raylet_store_get, link);
        if (memcmp(g->client, client, RC_WORKER_ID_SIZE) == 0) {
            store__get_finish(g, RC_ECANCELED, 0);
            next = rc_list_first(&s->gets); /* the answer may have changed the list: start over */
        }
        gl = next;
    }
    size_t n;
    store_object **objs = store__select(s, store__touched_by, client, &n);
    for (size_t i = 0; i < n; i++) {
        store_object *o = objs[i];
        if (!o->sealed && memcmp(o->creator, client, RC_WORKER_ID_SIZE) == 0)
            store__drop_unsealed(s, o);
        else
            store__unpin(s, o, client, store__pins_of(o, client));
    }
    rc_free(objs);
}

typedef struct store_owner_match {
    const uint8_t *worker_id, *node_id;
} store_owner_match;

static int store__owned_by(store_object *o, const void *arg)
{
    const store_owner_match *m = arg;
    if (!o->owner)
        return 0;
    if (m->worker_id)
        return o->owner->worker_id.len == RC_WORKER_ID_SIZE &&
               memcmp(o->owner->worker_id.data, m->worker_id, RC_WORKER_ID_SIZE) == 0;
    return o->owner->node_id.len == RC_NODE_ID_SIZE &&
           memcmp(o->owner->node_id.data, m->node_id, RC_NODE_ID_SIZE) == 0;
}

void raylet_store_owner_gone(raylet_store *s, const uint8_t *owner_worker_id,
                             const uint8_t *owner_node_id)
{
    if (!owner_worker_id && !owner_node_id)
        return;
    store_owner_match m = {owner_worker_id, owner_node_id};
    size_t n;
    store_object **objs = store__select(s, store__owned_by, &m, &n);
    for (size_t i = 0; i < n; i++)
        raylet_store_free(s, objs[i]->id);
    rc_free(objs);
}

/* ---- lifetime ----------------------------------------------------------------------- */

int raylet_store_create(uv_loop_t *loop, const char *path, uint64_t size, char *err,
                        size_t errlen, raylet_store **out)
{
    raylet_region *region;
    int rc = raylet_region_create(path, size, err, errlen, &region);
    if (rc < 0)
        return rc;
    raylet_store *s = RC_NEW(raylet_store);
    s->loop = loop;
    s->region = region;
    rc_map_init(&s->objects);
    rc_map_init(&s->waiters);
    rc_list_init(&s->lru);
    rc_list_init(&s->gets);
    *out = s;
    return 0;
}

static void store__free_object(void *p)
{
    store_object *o = p;
    rpc_msg_free(o->owner ? &o->owner->base : NULL);
    rc_free(o->pins);
    rc_free(o);
}

void raylet_store_destroy(raylet_store *s)
{
    if (!s || s->destroyed)
        return;
    while (!rc_list_empty(&s->gets))
        store__get_finish(rc_list_entry(rc_list_first(&s->gets), raylet_store_get, link), RC_ECANCELED, 0);
    s->destroyed = 1;
    rc_map_destroy(&s->objects, store__free_object);
    rc_list_init(&s->lru);
    raylet_region_destroy(s->region);
    s->region = NULL;
    store__maybe_free(s);
}

void raylet_store_set_hooks(raylet_store *s, const raylet_store_hooks *hooks)
{
    if (hooks)
        s->hooks = *hooks;
    else
        memset(&s->hooks, 0, sizeof(s->hooks));
}

const char *raylet_store_path(const raylet_store *s)
{
    return raylet_region_path(s->region);
}

uint64_t raylet_store_capacity(const raylet_store *s)
{
    return raylet_region_size(s->region);
}

uint8_t *raylet_store_base(const raylet_store *s)
{
    return raylet_region_base(s->region);
}

int raylet_store_prefault_start(raylet_store *s, double keep_available, const char *meminfo)
{
    return raylet_region_prefault_start(s->region, keep_available, meminfo);
}

void raylet_store_prefault_get(const raylet_store *s, raylet_prefault_progress *out)
{
    raylet_region_prefault_get(s->region, out);
}

void raylet_store_stats_get(const raylet_store *s, raylet_store_stats *out)
{
    raylet_region_stats rs;
    raylet_region_stats_get(s->region, &rs);
    memset(out, 0, sizeof(*out));
    out->capacity = rs.size;
    out->used = s->used;
    out->free_bytes = rs.free_bytes;
    out->largest_free = rs.largest_free;
    out->num_objects = rc_map_size(&s->objects);
    out->num_sealed = s->num_sealed;
    out->sealed_bytes = s->sealed_bytes;
    out->num_primary = s->num_primary;
    out->pinned_bytes = s->used - s->evictable_bytes;
    out->evictable_bytes = s->evictable_bytes;
    out->num_evicted = s->num_evicted;
}
