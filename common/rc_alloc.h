/*
 * Allocation wrappers. Every rayc allocation goes through these (as Redis does with
 * zmalloc), so out-of-memory has one policy: print what could not be allocated and abort.
 * A daemon that cannot allocate a few bytes cannot keep its promises to its peers, and
 * limping on corrupts state that others rely on. Large, caller-sized allocations that may
 * legitimately fail (object buffers, request payloads) use rc_try_malloc and report
 * RC_ENOMEM instead.
 *
 * Memory from any of these is released with rc_free. Any thread.
 */
#ifndef RAYC_COMMON_RC_ALLOC_H
#define RAYC_COMMON_RC_ALLOC_H

#include <stddef.h>

void *rc_malloc(size_t size);
void *rc_calloc(size_t n, size_t size);
void *rc_realloc(void *ptr, size_t size);
/* May return NULL; the caller reports RC_ENOMEM. */
void *rc_try_malloc(size_t size);
void rc_free(void *ptr);

/* Copies of strings and byte ranges; the caller frees with rc_free. rc_memdup of 0 bytes
 * returns a valid 1-byte allocation, so the result is never NULL. */
char *rc_strdup(const char *s);
char *rc_strndup(const char *s, size_t n);
void *rc_memdup(const void *p, size_t n);

#define RC_NEW(type) ((type *)rc_calloc(1, sizeof(type)))
#define RC_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
