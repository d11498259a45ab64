/*
 * object_region: the node's shared-memory region and the allocator inside it
 * (ARCHITECTURE §6, docs/tasks.md "Objects").
 *
 * One file under /dev/shm, sized once (ftruncate) and mapped MAP_SHARED; clients map the
 * same file and read and write objects in place at the offsets the store hands out.
 * Allocation goes through a jemalloc arena of its own whose extent hooks hand out page
 * ranges of the region from a free-range list (first fit, coalescing on free). So jemalloc
 * decides size classes and slabs, and this module decides where extents go.
 *
 * Invariants: every byte of the region is either in exactly one free range or held by the
 * arena (object extents, slabs, and the arena's own metadata, which jemalloc places in the
 * region too: one 2 MiB block at first). The arena returns freed extents at once (decay
 * times 0) and, with jemalloc's retain option off (see object_region.c), never holds freed
 * ranges back, so free bytes seen here are the store's real free space.
 *
 * Warm pages first. A page of the region costs a page fault (allocation and zeroing in
 * the kernel, then a mapping in each process) the first time it is used. Large extents are
 * placed first fit from the bottom and freed extents are merged back at once, so the
 * lowest free range, the one used most before, is the one handed out next; the background
 * pre-fault (raylet_region_prefault_start) warms the small-extent zone at the top and then
 * the region from the bottom up, the order in which the allocator uses it.
 *
 * Threads: the loop thread only (jemalloc calls the hooks on the thread that allocates),
 * except the pre-fault thread, which only allocates the file's pages and publishes its
 * progress.
 */
#ifndef RAYC_RAYLET_OBJECT_REGION_H
#define RAYC_RAYLET_OBJECT_REGION_H

#include <stddef.h>
#include <stdint.h>

typedef struct raylet_region raylet_region;

enum {
    /* jemalloc takes 2 MiB of the region for its metadata before the first object. */
    RAYLET_REGION_MIN_SIZE = 8 << 20,
    /* Extents below this size (slabs of small objects) are placed from the top of the
     * region, large ones from the bottom, so small long-lived objects do not split the
     * space large objects need. */
    RAYLET_REGION_SMALL_EXTENT = 1 << 20,
    /* The top of the region the pre-fault warms first: where slabs of small objects go. */
    RAYLET_REGION_PREFAULT_TOP = 32 << 20,
    /* The pre-fault works in steps of this many bytes, checking memory before each. */
    RAYLET_REGION_PREFAULT_STEP = 32 << 20,
};

typedef enum raylet_prefault_state {
    RAYLET_PREFAULT_OFF,      /* never started */
    RAYLET_PREFAULT_RUNNING,
    RAYLET_PREFAULT_DONE,     /* the whole region is faulted in */
    RAYLET_PREFAULT_MEMORY,   /* stopped: the host's available memory reached the floor */
    RAYLET_PREFAULT_STOPPED,  /* stopped: the region is being destroyed */
    RAYLET_PREFAULT_FAILED,   /* stopped: the kernel refused (see the log) */
} raylet_prefault_state;

typedef struct raylet_prefault_progress {
    raylet_prefault_state state;
    uint64_t bytes;      /* faulted in so far */
    uint64_t target;     /* the region's size */
} raylet_prefault_progress;

typedef struct raylet_region_stats {
    uint64_t size;          /* the whole region */
    uint64_t free_bytes;    /* in free ranges, not held by the arena */
    uint64_t largest_free;  /* the largest free range */
    uint64_t free_ranges;   /* how many free ranges (fragmentation) */
} raylet_region_stats;

/* Creates the file at path (which must not exist: RC_EEXIST), sizes it, maps it and
 * creates the arena. size is rounded down to whole pages and must be at least
 * RAYLET_REGION_MIN_SIZE. On failure err gets a message; nothing is left behind.
 * Free with raylet_region_destroy. */
int raylet_region_create(const char *path, uint64_t size, char *err, size_t errlen,
                         raylet_region **out);
/* Destroys the arena (every allocation with it), unmaps and unlinks the file, and tells a
 * running pre-fault to stop (without waiting for it: it holds the file open and stops after
 * the piece it is allocating). NULL is fine. */
void raylet_region_destroy(raylet_region *r);

uint8_t *raylet_region_base(const raylet_region *r);
uint64_t raylet_region_size(const raylet_region *r);
const char *raylet_region_path(const raylet_region *r);

/* Allocates size bytes (0 is taken as 1). *offset gets the offset from the base and
 * *allocated the bytes really taken (jemalloc's size class). RC_ENOSPC when nothing fits;
 * the caller may free something and retry. */
int raylet_region_alloc(raylet_region *r, uint64_t size, uint64_t *offset, uint64_t *allocated);
/* Frees what raylet_region_alloc returned at offset. */
void raylet_region_free(raylet_region *r, uint64_t offset);
void raylet_region_stats_get(const raylet_region *r, raylet_region_stats *out);

/* Starts allocating the region's pages (fallocate on its file: they belong to the file and
 * are not mapped in this process; see object_region.c) on a thread of its own (nice 10), the top RAYLET_REGION_PREFAULT_TOP bytes first, then from the bottom up, in
 * steps of RAYLET_REGION_PREFAULT_STEP. Before each step it reads MemAvailable and MemTotal
 * from meminfo (a /proc/meminfo format file; NULL: /proc/meminfo) and stops once a step
 * would leave less than keep_available (a fraction of MemTotal, 0..1) available, or take
 * more than was available at its start. Pages already holding objects are left as they
 * are. Logs one line when it ends. RC_ESTATE if already started, RC_EINVAL for a fraction
 * outside 0..1, RC_ESYS if no thread can be made. */
int raylet_region_prefault_start(raylet_region *r, double keep_available, const char *meminfo);
/* A snapshot of the pre-fault's progress; any thread. */
void raylet_region_prefault_get(const raylet_region *r, raylet_prefault_progress *out);
const char *raylet_prefault_state_name(raylet_prefault_state state);

#endif
