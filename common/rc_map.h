/*
 * rc_map: a hash map from byte-string keys to non-NULL pointers.
 *
 * Open addressing with linear probing and backward-shift deletion (no tombstones), so
 * lookups stay short however many inserts and removes a long-running daemon does. The map
 * copies keys and never touches values: the caller owns what values point to (see
 * rc_map_destroy). Capacity is a power of two, kept at most 3/4 full.
 *
 * Iteration order is unspecified; the map must not be changed while iterating, except
 * through rc_map_iter_remove. Not thread-safe: one owner (the loop thread, in daemons).
 */
#ifndef RAYC_COMMON_RC_MAP_H
#define RAYC_COMMON_RC_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct rc_map_entry {
    uint64_t hash; /* 0 marks an empty slot */
    void *key;
    size_t klen;
    void *value;
} rc_map_entry;

typedef struct rc_map {
    rc_map_entry *slots;
    size_t cap; /* 0 or a power of two */
    size_t size;
} rc_map;

#define RC_MAP_INIT {NULL, 0, 0}

typedef struct rc_map_iter {
    size_t pos;   /* next slot to look at */
    size_t steps; /* slots looked at so far, plus one once started; 0: not started */
} rc_map_iter;

#define RC_MAP_ITER_INIT {0, 0}

uint64_t rc_hash_bytes(const void *data, size_t n);

void rc_map_init(rc_map *m);
/* Frees the map's own memory and keys; calls free_value (if not NULL) on every value. */
void rc_map_destroy(rc_map *m, void (*free_value)(void *));
size_t rc_map_size(const rc_map *m);

/* Returns the value stored under key, or NULL. */
void *rc_map_get(const rc_map *m, const void *key, size_t klen);
void *rc_map_get_str(const rc_map *m, const char *key);
/* Stores value (not NULL) under key. Returns the value it replaced, or NULL if the key is
 * new; the caller disposes of the replaced value. */
void *rc_map_put(rc_map *m, const void *key, size_t klen, void *value);
void *rc_map_put_str(rc_map *m, const char *key, void *value);
/* Removes key; returns its value (the caller disposes of it) or NULL if absent. */
void *rc_map_remove(rc_map *m, const void *key, size_t klen);
void *rc_map_remove_str(rc_map *m, const char *key);

/* Advances it; returns 0 at the end. Key and value pointers stay valid until the entry is
 * removed. Any out-parameter may be NULL. */
int rc_map_next(const rc_map *m, rc_map_iter *it, const void **key, size_t *klen, void **value);
/* Removes the entry rc_map_next just returned and returns its value. Entries not yet
 * visited are still visited exactly once. */
void *rc_map_iter_remove(rc_map *m, rc_map_iter *it);

#endif
