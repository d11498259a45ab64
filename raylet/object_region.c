/*
 * object_region: a /dev/shm file mapped MAP_SHARED, carved up by a dedicated jemalloc arena
 * whose extent hooks hand out page ranges of the mapping (see object_region.h).
 *
 * Free ranges live in an array sorted by offset, never adjacent to one another (a freed
 * range is merged with its neighbours at once). Large extents are placed first-fit from the
 * bottom, small ones last-fit from the top (RAYLET_REGION_SMALL_EXTENT).
 *
 * jemalloc and the sanitizers. The library calls jemalloc's non-standard API (mallctl,
 * mallocx, dallocx, sallocx), which exists in every build, so it links the shared
 * libjemalloc directly. In the daemons jemalloc is also the process allocator
 * (rayc_link_allocator); under ASan it is not: the compiler puts libasan first in the link
 * order, so malloc/free resolve to ASan's interceptors while mallocx & co, which ASan does
 * not intercept, resolve to libjemalloc. jemalloc then serves only this arena (its own
 * bootstrap uses mmap). Debian's build has no prefixed copies of the API (no je_mallocx),
 * and the static libjemalloc_pic.a would define malloc in the executable and pre-empt
 * ASan, so the shared library is the one robust choice. Region memory is not
 * instrumented by ASan (no redzones between objects), as with any mmap'd memory.
 *
 * jemalloc's "retain" option (on by default on Linux) makes an arena grow by whole size
 * classes and keep the surplus ("retained") for itself forever: an empty store could then
 * fail a large allocation because the free space is split between this module's ranges
 * and jemalloc's retained ones. malloc_conf below turns retain off for the process, so the
 * arena asks the hooks for exactly the extents it needs and gives each back when freed.
 * It is the documented way for a program to configure jemalloc; the cost for the rest of
 * the daemon is that jemalloc unmaps freed virtual memory instead of keeping it. If
 * MALLOC_CONF forces retain on, the arena still works (with a warning), only with the
 * fragmentation described. A second definition of malloc_conf anywhere in a daemon fails
 * at link time, which is how a conflicting choice would show up.
 *
 * Loop thread only: jemalloc calls the hooks on the allocating thread, and with decay times
 * of 0 no background purge ever touches this arena later.
 */
#include "object_region.h"

#include <errno.h>
#include <fcntl.h>
#include <jemalloc/jemalloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "rc_alloc.h"
#include "rc_err.h"
#include "rc_log.h"
#include "rc_session.h"


const char *malloc_conf = "retain:false";

typedef struct region_range {
    uint64_t off, len;
} region_range;

struct raylet_region {
    extent_hooks_t hooks; /* first: the hooks get a pointer to it and find the region */
    char *path;
    uint8_t *base;
    uint64_t size;
    unsigned arena;
    int arena_created;
    int flags; /* MALLOCX_ARENA(arena) | MALLOCX_TCACHE_NONE */
    region_range *free;
    size_t n_free, cap_free;
    struct region_prefault *prefault; /* NULL until raylet_region_prefault_start */
};

/* What the pre-fault thread shares with the region. It holds the file open and never
 * touches the mapping or the region, so the region does not wait for it at destroy: it
 * asks it to stop and drops its reference; the last of the two frees this. */
typedef struct region_prefault {
    atomic_int refs;
    atomic_int stop;
    atomic_int state;
    _Atomic uint64_t bytes;
    int fd;
    uint64_t size;
    double keep;
    char *meminfo; /* NULL: /proc/meminfo */
    char *path;    /* for the log */
} region_prefault;

static void region__prefault_unref(region_prefault *p)
{
    if (atomic_fetch_sub(&p->refs, 1) != 1)
        return;
    if (p->fd >= 0)
        close(p->fd);
    rc_free(p->meminfo);
    rc_free(p->path);
    rc_free(p);
}

static uint64_t region__page(void)
{
    static uint64_t page;
    if (!page)
        page = (uint64_t)sysconf(_SC_PAGESIZE);
    return page;
}

/* ---- free ranges -------------------------------------------------------------------- */

static void region__insert_at(raylet_region *r, size_t i, uint64_t off, uint64_t len)
{
    if (r->n_free == r->cap_free) {
        r->cap_free = r->cap_free ? 2 * r->cap_free : 16;
        r->free = rc_realloc(r->free, r->cap_free * sizeof(*r->free));
    }
    memmove(&r->free[i + 1], &r->free[i], (r->n_free - i) * sizeof(*r->free));
    r->free[i].off = off;
    r->free[i].len = len;
    r->n_free++;
}

static void region__remove_at(raylet_region *r, size_t i)
{
    memmove(&r->free[i], &r->free[i + 1], (r->n_free - i - 1) * sizeof(*r->free));
    r->n_free--;
}

/* Takes [off, off+len) out of free range i, which contains it. */
static void region__take(raylet_region *r, size_t i, uint64_t off, uint64_t len)
{
    region_range fr = r->free[i];
    uint64_t lead = off - fr.off, trail = fr.off + fr.len - (off + len);
    if (lead && trail) {
        r->free[i].len = lead;
        region__insert_at(r, i + 1, off + len, trail);
    } else if (lead) {
        r->free[i].len = lead;
    } else if (trail) {
        r->free[i].off = off + len;
        r->free[i].len = trail;
    } else {
        region__remove_at(r, i);
    }
}

/* Returns [off, off+len) to the free list, merging with neighbours. 0, or RC_EINVAL if the
 * range is outside the region or overlaps a free range (a bookkeeping bug). */
static int region__give_back(raylet_region *r, uint64_t off, uint64_t len)
{
    if (len == 0 || off > r->size || len > r->size - off)
        return RC_EINVAL;
    size_t lo = 0, hi = r->n_free; /* first range with .off > off */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (r->free[mid].off <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t i = lo;
    if (i > 0 && r->free[i - 1].off + r->free[i - 1].len > off)
        return RC_EINVAL;
    if (i < r->n_free && off + len > r->free[i].off)
        return RC_EINVAL;
    int merge_prev = i > 0 && r->free[i - 1].off + r->free[i - 1].len == off;
    int merge_next = i < r->n_free && off + len == r->free[i].off;
    if (merge_prev && merge_next) {
        r->free[i - 1].len += len + r->free[i].len;
        region__remove_at(r, i);
    } else if (merge_prev) {
        r->free[i - 1].len += len;
    } else if (merge_next) {
        r->free[i].off = off;
        r->free[i].len += len;
    } else {
        region__insert_at(r, i, off, len);
    }
    return 0;
}

/* Finds room for len bytes aligned (in absolute addresses) to align: first fit from the
 * bottom, or last fit from the top for small extents. 0 and *off, or RC_ENOSPC. */
static int region__find(raylet_region *r, uint64_t len, uint64_t align, uint64_t *off)
{
    uintptr_t base = (uintptr_t)r->base;
    if (len >= RAYLET_REGION_SMALL_EXTENT) {
        for (size_t i = 0; i < r->n_free; i++) {
            uintptr_t start = base + r->free[i].off, end = start + r->free[i].len;
            uintptr_t a = (start + align - 1) & ~(uintptr_t)(align - 1);
            if (a >= start && a <= end && end - a >= len) {
                *off = a - base;
                region__take(r, i, *off, len);
                return 0;
            }
        }
        return RC_ENOSPC;
    }
    for (size_t i = r->n_free; i-- > 0;) {
        uintptr_t start = base + r->free[i].off, end = start + r->free[i].len;
        if (end - start < len)
            continue;
        uintptr_t a = (end - len) & ~(uintptr_t)(align - 1);
        if (a >= start) {
            *off = a - base;
            region__take(r, i, *off, len);
            return 0;
        }
    }
    return RC_ENOSPC;
}

/* ---- extent hooks ------------------------------------------------------------------- */

static void *region__hook_alloc(extent_hooks_t *h, void *new_addr, size_t size, size_t alignment,
                                bool *zero, bool *commit, unsigned arena_ind)
{
    raylet_region *r = (raylet_region *)h;
    uint64_t off;
    if (alignment < region__page())
        alignment = region__page();
    if (new_addr) {
        /* Growing an extent in place: only if that exact range is free. */
        uint64_t want = (uint64_t)((uint8_t *)new_addr - r->base);
        if ((uint8_t *)new_addr < r->base || want >= r->size)
            return NULL;
        size_t i = 0;
        while (i < r->n_free && r->free[i].off + r->free[i].len <= want)
            i++;
        if (i == r->n_free || r->free[i].off > want || r->free[i].off + r->free[i].len - want < size)
            return NULL;
        off = want;
        region__take(r, i, off, size);
    } else if (region__find(r, size, alignment, &off) < 0) {
        return NULL;
    }
    if (*zero)
        memset(r->base + off, 0, size); /* reused pages hold old objects' bytes */
    *commit = true;
    return r->base + off;
}

static bool region__hook_dalloc(extent_hooks_t *h, void *addr, size_t size, bool committed,
                                unsigned arena_ind)
{
    raylet_region *r = (raylet_region *)h;
    if (region__give_back(r, (uint64_t)((uint8_t *)addr - r->base), size) < 0) {
        RC_ERROR("object store: jemalloc returned a range [%p, +%zu) that is not the region's "
                 "or is already free; keeping it out of the free list", addr, size);
    }
    return false; /* deallocated: jemalloc forgets the range */
}

static void region__hook_destroy(extent_hooks_t *h, void *addr, size_t size, bool committed,
                                 unsigned arena_ind)
{
    region__hook_dalloc(h, addr, size, committed, arena_ind);
}

/* Every range comes from one mapping, so any split or merge jemalloc wants is fine
 * (false means "done"). */
static bool region__hook_split(extent_hooks_t *h, void *addr, size_t size, size_t size_a,
                               size_t size_b, bool committed, unsigned arena_ind)
{
    return false;
}

static bool region__hook_merge(extent_hooks_t *h, void *addr_a, size_t size_a, void *addr_b,
                               size_t size_b, bool committed, unsigned arena_ind)
{
    return false;
}

static const extent_hooks_t region__hooks = {
    .alloc = region__hook_alloc,
    .dalloc = region__hook_dalloc,
    .destroy = region__hook_destroy,
    /* No commit/decommit/purge: the mapping stays committed; freed extents go back to
     * the free list through dalloc instead of being purged in place. */
    .split = region__hook_split,
    .merge = region__hook_merge,
};

/* ---- region ------------------------------------------------------------------------- */

static int region__set_arena_opt(unsigned arena, const char *opt, void *val, size_t len)
{
    char name[64];
    snprintf(name, sizeof(name), "arena.%u.%s", arena, opt);
    return mallctl(name, NULL, NULL, val, len);
}

static int region__create_arena(raylet_region *r, char *err, size_t errlen)
{
    extent_hooks_t *hooks = &r->hooks;
    size_t sz = sizeof(r->arena);
    int e = mallctl("arenas.create", &r->arena, &sz, &hooks, sizeof(hooks));
    if (e) {
        snprintf(err, errlen, "cannot create a jemalloc arena for the object store: %s",
                 strerror(e));
        return RC_ESYS;
    }
    r->arena_created = 1;
    r->flags = MALLOCX_ARENA(r->arena) | MALLOCX_TCACHE_NONE;
    ssize_t zero_ms = 0; /* freed extents go back to the free list at once */
    if ((e = region__set_arena_opt(r->arena, "dirty_decay_ms", &zero_ms, sizeof(zero_ms))) ||
        (e = region__set_arena_opt(r->arena, "muzzy_decay_ms", &zero_ms, sizeof(zero_ms)))) {
        snprintf(err, errlen, "cannot set the object store arena's decay: %s", strerror(e));
        return RC_ESYS;
    }
    bool retain = false;
    sz = sizeof(retain);
    if (mallctl("opt.retain", &retain, &sz, NULL, 0) == 0 && retain) {
        size_t smallest = (size_t)region__page();
        region__set_arena_opt(r->arena, "retain_grow_limit", &smallest, sizeof(smallest));
        RC_WARN("object store: jemalloc runs with retain:true (MALLOC_CONF?); the store's "
                "free space may fragment between jemalloc and the region");
    }
    return 0;
}

static int region__map(raylet_region *r, char *err, size_t errlen)
{
    int fd = open(r->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot create the object store file %s: %s", r->path, strerror(e));
        return e == EEXIST ? RC_EEXIST : RC_ESYS;
    }
    int rc = 0;
    if (ftruncate(fd, (off_t)r->size) < 0) {
        snprintf(err, errlen, "cannot size the object store file %s to %llu bytes: %s", r->path,
                 (unsigned long long)r->size, strerror(errno));
        rc = RC_ESYS;
    } else {
        void *p = mmap(NULL, r->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
            snprintf(err, errlen, "cannot map the object store file %s (%llu bytes): %s",
                     r->path, (unsigned long long)r->size, strerror(errno));
            rc = RC_ESYS;
        } else {
            r->base = p;
        }
    }
    close(fd); /* the mapping keeps the file's pages */
    if (rc < 0)
        unlink(r->path);
    return rc;
}

/* tmpfs hands out pages on first touch; a region bigger than the file system's free space
 * would die of SIGBUS later, so refuse it now. */
static int region__check_space(const char *path, uint64_t size, char *err, size_t errlen)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    struct statvfs vfs;
    if (statvfs(dir, &vfs) < 0)
        return 0; /* the open below reports a missing directory */
    uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    if (avail < size) {
        snprintf(err, errlen, "the object store needs %llu bytes but %s has only %llu free; "
                 "lower object_store_memory or enlarge %s", (unsigned long long)size, dir,
                 (unsigned long long)avail, dir);
        return RC_ENOSPC;
    }
    return 0;
}

int raylet_region_create(const char *path, uint64_t size, char *err, size_t errlen,
                         raylet_region **out)
{
    size -= size % region__page();
    if (!path || !*path || size < RAYLET_REGION_MIN_SIZE) {
        snprintf(err, errlen, "the object store needs a file path and at least %d bytes (got %llu)",
                 RAYLET_REGION_MIN_SIZE, (unsigned long long)size);
        return RC_EINVAL;
    }
    int rc = region__check_space(path, size, err, errlen);
    if (rc < 0)
        return rc;
    raylet_region *r = RC_NEW(raylet_region);
    r->hooks = region__hooks;
    r->path = rc_strdup(path);
    r->size = size;
    if ((rc = region__map(r, err, errlen)) < 0) {
        rc_free(r->path);
        rc_free(r);
        return rc;
    }
    region__insert_at(r, 0, 0, size);
    if ((rc = region__create_arena(r, err, errlen)) < 0) {
        raylet_region_destroy(r);
        return rc;
    }
    *out = r;
    return 0;
}

void raylet_region_destroy(raylet_region *r)
{
    if (!r)
        return;
    if (r->prefault) { /* it stops after the piece it is allocating; nothing to wait for */
        atomic_store(&r->prefault->stop, 1);
        region__prefault_unref(r->prefault);
        r->prefault = NULL;
    }
    if (r->arena_created) {
        char name[64];
        snprintf(name, sizeof(name), "arena.%u.destroy", r->arena);
        int e = mallctl(name, NULL, NULL, NULL, 0);
        if (e)
            RC_WARN("object store: cannot destroy jemalloc arena %u: %s", r->arena, strerror(e));
    }
    if (r->base)
        munmap(r->base, r->size);
    if (unlink(r->path) < 0 && errno != ENOENT)
        RC_WARN("object store: cannot remove %s: %s", r->path, strerror(errno));
    rc_free(r->free);
    rc_free(r->path);
    rc_free(r);
}

uint8_t *raylet_region_base(const raylet_region *r)
{
    return r->base;
}

uint64_t raylet_region_size(const raylet_region *r)
{
    return r->size;
}

const char *raylet_region_path(const raylet_region *r)
{
    return r->path;
}

int raylet_region_alloc(raylet_region *r, uint64_t size, uint64_t *offset, uint64_t *allocated)
{
    if (size > r->size)
        return RC_ENOSPC;
    void *p = mallocx(size ? (size_t)size : 1, r->flags);
    if (!p)
        return RC_ENOSPC;
    *offset = (uint64_t)((uint8_t *)p - r->base);
    *allocated = sallocx(p, r->flags);
    return 0;
}

void raylet_region_free(raylet_region *r, uint64_t offset)
{
    dallocx(r->base + offset, r->flags);
}

void raylet_region_stats_get(const raylet_region *r, raylet_region_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->size = r->size;
    out->free_ranges = r->n_free;
    for (size_t i = 0; i < r->n_free; i++) {
        out->free_bytes += r->free[i].len;
        if (r->free[i].len > out->largest_free)
            out->largest_free = r->free[i].len;
    }
}

/* ---- pre-fault ---------------------------------------------------------------------- */

const char *raylet_prefault_state_name(raylet_prefault_state state)
{
    switch (state) {
    case RAYLET_PREFAULT_OFF: return "off";
    case RAYLET_PREFAULT_RUNNING: return "running";
    case RAYLET_PREFAULT_DONE: return "done";
    case RAYLET_PREFAULT_MEMORY: return "stopped at the available-memory floor";
    case RAYLET_PREFAULT_STOPPED: return "stopped at shutdown";
    case RAYLET_PREFAULT_FAILED: return "failed";
    }
    return "?";
}

/* Allocates the file's pages of [off, off+len) without changing a byte: fallocate() on
 * the file, in pieces of 2 MiB so a stop is seen soon and the file's lock (which a put's
 * write into the file also takes) is held only briefly. Not through the mapping (MAP_POPULATE, MADV_POPULATE_WRITE, touching): those
 * hold the process's mmap lock while they fault, and a low-priority thread preempted with
 * it held would stall the loop thread's next mmap (and every fault queued behind that);
 * they would also map the whole store into the raylet (its resident set), and a touch of a
 * page of a full /dev/shm is a SIGBUS where fallocate returns ENOSPC. The kernel zeroes
 * each page at its first fault in a client, which is cheap next to allocating it.
 * 0, 1 if asked to stop, or RC_ESYS with err set. */
static int region__fault(region_prefault *p, uint64_t off, uint64_t len, char *err, size_t errlen)
{
    const uint64_t piece = 2 << 20;
    for (uint64_t at = off; at < off + len; at += piece) {
        if (atomic_load(&p->stop))
            return 1;
        uint64_t n = off + len - at < piece ? off + len - at : piece;
        int e;
        while ((e = posix_fallocate(p->fd, (off_t)at, (off_t)n)) == EINTR)
            ;
        if (e) {
            snprintf(err, errlen, "fallocate: %s", strerror(e));
            return RC_ESYS;
        }
        atomic_fetch_add(&p->bytes, n);
    }
    return 0;
}

static void *region__prefault_main(void *arg)
{
    region_prefault *p = arg;
    /* Background work, below the daemons' own (Linux's nice is per thread); not the lowest,
     * as it takes the file's lock for each piece and a put may wait for it. */
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t top = p->size > RAYLET_REGION_PREFAULT_TOP ? RAYLET_REGION_PREFAULT_TOP : p->size;
    /* The small-extent zone first, then the bottom up: the order the allocator uses. */
    uint64_t spans[2][2] = {{p->size - top, p->size}, {0, p->size - top}};
    int state = RAYLET_PREFAULT_DONE;
    char err[300] = "";
    /* Never more than was available at the start, nor than is available at each step. */
    uint64_t first_budget = 0, done = 0;
    if (rc_mem_budget(p->meminfo, p->keep, &first_budget) < 0)
        first_budget = 0;
    for (int i = 0; i < 2 && state == RAYLET_PREFAULT_DONE; i++) {
        for (uint64_t off = spans[i][0]; off < spans[i][1]; off += RAYLET_REGION_PREFAULT_STEP) {
            uint64_t len = spans[i][1] - off < RAYLET_REGION_PREFAULT_STEP ? spans[i][1] - off
                                                                           : RAYLET_REGION_PREFAULT_STEP;
            uint64_t budget;
            if (rc_mem_budget(p->meminfo, p->keep, &budget) < 0) {
                snprintf(err, sizeof(err), "cannot read MemAvailable and MemTotal from %s",
                         p->meminfo ? p->meminfo : "/proc/meminfo");
                state = RAYLET_PREFAULT_FAILED;
                break;
            }
            if (budget < len || first_budget - done < len) {
                state = RAYLET_PREFAULT_MEMORY;
                break;
            }
            int rc = region__fault(p, off, len, err, sizeof(err));
            if (rc) {
                state = rc > 0 ? RAYLET_PREFAULT_STOPPED : RAYLET_PREFAULT_FAILED;
                break;
            }
            done += len;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    uint64_t bytes = atomic_load(&p->bytes);
    if (state == RAYLET_PREFAULT_FAILED)
        RC_WARN("object store: pre-faulted %llu of %llu bytes of %s in %.1f s, then failed: %s",
                (unsigned long long)bytes, (unsigned long long)p->size, p->path, secs, err);
    else if (state != RAYLET_PREFAULT_STOPPED) /* stopped: the store is gone, and so may be the log */
        RC_INFO("object store: pre-faulted %llu of %llu bytes of %s in %.1f s (%s)",
                (unsigned long long)bytes, (unsigned long long)p->size, p->path, secs,
                raylet_prefault_state_name((raylet_prefault_state)state));
    atomic_store(&p->state, state);
    region__prefault_unref(p);
    return NULL;
}

int raylet_region_prefault_start(raylet_region *r, double keep_available, const char *meminfo)
{
    if (r->prefault)
        return RC_ESTATE;
    if (!(keep_available >= 0.0 && keep_available <= 1.0))
        return RC_EINVAL;
    int fd = open(r->path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        RC_WARN("object store: no pre-fault: cannot open %s: %s", r->path, strerror(errno));
        return RC_ESYS;
    }
    region_prefault *p = RC_NEW(region_prefault);
    atomic_store(&p->refs, 2); /* the region's and the thread's */
    atomic_store(&p->state, RAYLET_PREFAULT_RUNNING);
    p->fd = fd;
    p->size = r->size;
    p->keep = keep_available;
    p->meminfo = meminfo ? rc_strdup(meminfo) : NULL;
    p->path = rc_strdup(r->path);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t thread;
    int e = pthread_create(&thread, &attr, region__prefault_main, p);
    pthread_attr_destroy(&attr);
    if (e) {
        RC_WARN("object store: cannot start the pre-fault thread: %s", strerror(e));
        atomic_store(&p->refs, 1);
        region__prefault_unref(p);
        return RC_ESYS;
    }
    r->prefault = p;
    return 0;
}

void raylet_region_prefault_get(const raylet_region *r, raylet_prefault_progress *out)
{
    region_prefault *p = r->prefault;
    out->state = p ? (raylet_prefault_state)atomic_load(&p->state) : RAYLET_PREFAULT_OFF;
    out->bytes = p ? atomic_load(&p->bytes) : 0;
    out->target = r->size;
}
