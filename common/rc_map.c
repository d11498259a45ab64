/*
 * rc_map: open-addressing hash map with linear probing and backward-shift deletion.
 *
 * Invariant: for every occupied slot s holding hash h, every slot from h's home slot up to
 * s (cyclically) is occupied. Removal keeps it by shifting later entries of the cluster
 * back into the hole, never across an empty slot.
 *
 * Iteration starts just after an empty slot and walks the table cyclically. Because no
 * cluster spans that empty slot, a removal at the cursor can only shift entries that come
 * later in iteration order back to the cursor or later: revisiting the cursor's slot after
 * rc_map_iter_remove sees every entry exactly once.
 */
#include "rc_map.h"

#include <string.h>

#include "rc_alloc.h"

uint64_t rc_hash_bytes(const void *data, size_t n)
{
    /* FNV-1a over 8 bytes at a time, then a murmur-style finalizer for avalanche. */
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL ^ (uint64_t)n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0x100000001b3ULL;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    while (n--)
        h = (h ^ *p++) * 0x100000001b3ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h ? h : 1; /* 0 marks an empty slot */
}

void rc_map_init(rc_map *m)
{
    m->slots = NULL;
    m->cap = 0;
    m->size = 0;
}

void rc_map_destroy(rc_map *m, void (*free_value)(void *))
{
    for (size_t i = 0; i < m->cap; i++) {
        rc_map_entry *e = &m->slots[i];
        if (!e->hash)
            continue;
        rc_free(e->key);
        if (free_value)
            free_value(e->value);
    }
    rc_free(m->slots);
    rc_map_init(m);
}

size_t rc_map_size(const rc_map *m)
{
    return m->size;
}

static size_t rc__find(const rc_map *m, uint64_t h, const void *key, size_t klen, int *found)
{
    size_t mask = m->cap - 1;
    size_t i = (size_t)h & mask;
    for (;;) {
        const rc_map_entry *e = &m->slots[i];
        if (!e->hash) {
            *found = 0;
            return i;
        }
        if (e->hash == h && e->klen == klen && (klen == 0 || memcmp(e->key, key, klen) == 0)) {
            *found = 1;
            return i;
        }
        i = (i + 1) & mask;
    }
}

static void rc__grow(rc_map *m)
{
    size_t old_cap = m->cap;
    rc_map_entry *old = m->slots;
    m->cap = old_cap ? old_cap * 2 : 16;
    m->slots = rc_calloc(m->cap, sizeof(*m->slots));
    for (size_t i = 0; i < old_cap; i++) {
        if (!old[i].hash)
            continue;
        size_t j = (size_t)old[i].hash & (m->cap - 1);
        while (m->slots[j].hash)
            j = (j + 1) & (m->cap - 1);
        m->slots[j] = old[i];
    }
    rc_free(old);
}

void *rc_map_get(const rc_map *m, const void *key, size_t klen)
{
    if (!m->size)
        return NULL;
    int found;
    size_t i = rc__find(m, rc_hash_bytes(key, klen), key, klen, &found);
    return found ? m->slots[i].value : NULL;
}

void *rc_map_get_str(const rc_map *m, const char *key)
{
    return rc_map_get(m, key, strlen(key));
}

void *rc_map_put(rc_map *m, const void *key, size_t klen, void *value)
{
    if ((m->size + 1) * 4 > m->cap * 3)
        rc__grow(m);
    uint64_t h = rc_hash_bytes(key, klen);
    int found;
    size_t i = rc__find(m, h, key, klen, &found);
    rc_map_entry *e = &m->slots[i];
    if (found) {
        void *old = e->value;
        e->value = value;
        return old;
    }
    e->hash = h;
    e->key = rc_memdup(key, klen);
    e->klen = klen;
    e->value = value;
    m->size++;
    return NULL;
}

void *rc_map_put_str(rc_map *m, const char *key, void *value)
{
    return rc_map_put(m, key, strlen(key), value);
}

/* Empties slot i and shifts the rest of its cluster back. */
static void rc__remove_at(rc_map *m, size_t i)
{
    size_t mask = m->cap - 1;
    rc_free(m->slots[i].key);
    m->size--;
    size_t hole = i;
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        rc_map_entry *e = &m->slots[j];
        if (!e->hash)
            break;
        size_t home = (size_t)e->hash & mask;
        /* e may move into the hole unless its home lies cyclically in (hole, j]. */
        int home_between = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (home_between)
            continue;
        m->slots[hole] = *e;
        hole = j;
    }
    memset(&m->slots[hole], 0, sizeof(m->slots[hole]));
}

void *rc_map_remove(rc_map *m, const void *key, size_t klen)
{
    if (!m->size)
        return NULL;
    int found;
    size_t i = rc__find(m, rc_hash_bytes(key, klen), key, klen, &found);
    if (!found)
        return NULL;
    void *value = m->slots[i].value;
    rc__remove_at(m, i);
    return value;
}

void *rc_map_remove_str(rc_map *m, const char *key)
{
    return rc_map_remove(m, key, strlen(key));
}

int rc_map_next(const rc_map *m, rc_map_iter *it, const void **key, size_t *klen, void **value)
{
    if (!m->size)
        return 0;
    size_t mask = m->cap - 1;
    if (it->steps == 0) {
        size_t e = 0;
        while (m->slots[e].hash) /* the table is at most 3/4 full: an empty slot exists */
            e++;
        it->pos = (e + 1) & mask;
        it->steps = 1;
    }
    while (it->steps <= m->cap) {
        const rc_map_entry *e = &m->slots[it->pos];
        it->pos = (it->pos + 1) & mask;
        it->steps++;
        if (!e->hash)
            continue;
        if (key)
            *key = e->key;
        if (klen)
            *klen = e->klen;
        if (value)
            *value = e->value;
        return 1;
    }
    return 0;
}

void *rc_map_iter_remove(rc_map *m, rc_map_iter *it)
{
    size_t mask = m->cap - 1;
    size_t i = (it->pos - 1) & mask;
    void *value = m->slots[i].value;
    rc__remove_at(m, i);
    /* Look at slot i again: it may now hold an entry shifted back from later on. */
    it->pos = i;
    it->steps--;
    return value;
}
