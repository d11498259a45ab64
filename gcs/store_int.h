/*
 * Private to the storage backends (store_memory.c, store_redis.c): the argument checks both
 * apply before starting an operation, so that a bad call fails the same way, with RC_EINVAL
 * and no callback, whichever backend is configured. Nothing outside gcs/store_*.c includes
 * this. Any thread (pure functions).
 */
#ifndef RAYC_GCS_STORE_INT_H
#define RAYC_GCS_STORE_INT_H

#include <stddef.h>

#include "rc_err.h"
#include "store.h"

/* A byte range may be NULL only when it is empty. */
static inline int gcs__check_bytes(const void *p, size_t n)
{
    return (p || n == 0) ? 0 : RC_EINVAL;
}

/* has_cb: whether the caller passed a callback (every operation needs one). */
static inline int gcs__check_key_op(const char *table, const void *key, size_t klen, int has_cb)
{
    if (!table || !table[0] || !has_cb)
        return RC_EINVAL;
    return gcs__check_bytes(key, klen);
}

/* keys[0..n) with their lengths; NULL arrays are fine when n is 0. */
static inline int gcs__check_keys_op(const char *table, const void *const *keys,
                                     const size_t *klens, size_t n, int has_cb)
{
    if (!table || !table[0] || !has_cb)
        return RC_EINVAL;
    if (n && (!keys || !klens))
        return RC_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (gcs__check_bytes(keys[i], klens[i]))
            return RC_EINVAL;
    }
    return 0;
}

#endif
