/*
 * Allocation wrappers over the process allocator (jemalloc in the daemons, linked in
 * place of libc malloc). Out of memory aborts with a message: see rc_alloc.h. Any thread.
 */
#include "rc_alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void rc__oom(size_t size)
{
    fprintf(stderr, "rayc: out of memory allocating %zu bytes\n", size);
    fflush(stderr);
    abort();
}

void *rc_malloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        rc__oom(size);
    return p;
}

void *rc_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        rc__oom(n * size);
    return p;
}

void *rc_realloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    if (!p)
        rc__oom(size);
    return p;
}

void *rc_try_malloc(size_t size)
{
    return malloc(size ? size : 1);
}

void rc_free(void *ptr)
{
    free(ptr);
}

char *rc_strdup(const char *s)
{
    return rc_strndup(s, strlen(s));
}

char *rc_strndup(const char *s, size_t n)
{
    char *p = rc_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void *rc_memdup(const void *p, size_t n)
{
    void *q = rc_malloc(n ? n : 1);
    if (n)
        memcpy(q, p, n);
    return q;
}
