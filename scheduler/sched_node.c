/*
 * sched_node.c: fitting a request on one node, and allocating and freeing it there.
 *
 * GPUs are per instance: a node with 4 GPUs has 4 instances of SCHED_UNIT each, and an
 * allocation names the instances it took (what becomes CUDA_VISIBLE_DEVICES). A whole
 * request (1, 2, ... GPUs) takes that many entirely free instances, lowest index first. A
 * fractional request (< 1) goes best-fit: to the fullest instance that still fits, ties to
 * the lowest index. Best-fit keeps whole instances whole for as long as possible, which is
 * what strands capacity in Ray (#52133, #52915): 0.5 x 6 on 3 GPUs puts exactly two on each
 * and 0.3, 0.7, 0.4, 0.6 on 2 GPUs all fit. A request's gpu_memory restricts the instances
 * to those with at least that much memory; it selects, it doesn't reserve (share a GPU with
 * fractional amounts).
 *
 * Fixed point makes free the exact inverse of allocate; free clamps to the totals only in
 * case a report or update came in between. Single-threaded like the view.
 */
#include <stdio.h>
#include <string.h>

#include "rc_err.h"
#include "sched_int.h"

sched__res *sched__node_res(const sched_node *n, uint32_t id)
{
    uint32_t lo = 0, hi = n->n_res;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (n->res[mid].id == id)
            return &n->res[mid];
        if (n->res[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

void sched__node_touch(sched_node *n)
{
    static const uint32_t critical[] = {SCHED_CPU, SCHED_MEMORY, SCHED_OBJECT_STORE_MEMORY};
    double highest = 0;
    for (size_t i = 0; i < sizeof(critical) / sizeof(critical[0]); i++) {
        uint32_t r = critical[i];
        if (n->total[r] <= 0)
            continue;
        double u = 1.0 - (double)n->avail[r] / (double)n->total[r];
        if (u > highest)
            highest = u;
    }
    n->util = (float)highest;
}

void sched__node_spread_gpu(sched_node *n, sched_amount amount)
{
    if (amount == n->avail[SCHED_GPU])
        return; /* our own instance state is more precise than a report's sum */
    sched_amount left = amount;
    for (uint32_t i = 0; i < n->n_gpus; i++) {
        sched_amount a = left >= SCHED_UNIT ? SCHED_UNIT : left;
        n->gpu_avail[i] = a;
        left -= a;
    }
    n->avail[SCHED_GPU] = amount - left;
}

static inline int gpu_mem_ok(const sched_node *n, uint32_t i, uint64_t mem)
{
    return !mem || n->gpu_mem[i] >= mem;
}

static int gpu_fits(const sched_node *n, sched_amount g, uint64_t mem, int avail)
{
    if (g < SCHED_UNIT) {
        for (uint32_t i = 0; i < n->n_gpus; i++)
            if (gpu_mem_ok(n, i, mem) && (!avail || n->gpu_avail[i] >= g))
                return 1;
        return 0;
    }
    if (!mem && !avail)
        return 1; /* totals are whole instances and total >= g was checked */
    uint32_t need = (uint32_t)(g / SCHED_UNIT), got = 0;
    for (uint32_t i = 0; i < n->n_gpus; i++)
        if (gpu_mem_ok(n, i, mem) && (!avail || n->gpu_avail[i] == SCHED_UNIT))
            if (++got >= need)
                return 1;
    return 0;
}

int sched__node_fits(const sched_node *n, const sched_request *r, int avail)
{
    const sched_amount *have = avail ? n->avail : n->total;
    sched_amount gpus = 0;
    uint32_t j = 0;
    for (uint32_t i = 0; i < r->n; i++) {
        uint32_t id = r->id[i];
        sched_amount need = r->amount[i];
        if (id < SCHED_N_PREDEFINED) {
            if (have[id] < need)
                return 0;
            if (id == SCHED_GPU)
                gpus = need;
            continue;
        }
        /* Both lists are sorted by id: walk them together. */
        while (j < n->n_res && n->res[j].id < id)
            j++;
        if (j == n->n_res || n->res[j].id != id)
            return 0;
        if ((avail ? n->res[j].avail : n->res[j].total) < need)
            return 0;
    }
    return gpus ? gpu_fits(n, gpus, r->gpu_memory, avail) : 1;
}

/* Chooses instances for g GPUs; returns how many were written to idx (0: none fit). */
static uint32_t gpu_choose(const sched_node *n, sched_amount g, uint64_t mem, uint8_t *idx)
{
    if (g < SCHED_UNIT) {
        int best = -1;
        for (uint32_t i = 0; i < n->n_gpus; i++) {
            if (!gpu_mem_ok(n, i, mem) || n->gpu_avail[i] < g)
                continue;
            if (best < 0 || n->gpu_avail[i] < n->gpu_avail[best])
                best = (int)i;
        }
        if (best < 0)
            return 0;
        idx[0] = (uint8_t)best;
        return 1;
    }
    uint32_t need = (uint32_t)(g / SCHED_UNIT), got = 0;
    for (uint32_t i = 0; i < n->n_gpus && got < need; i++)
        if (gpu_mem_ok(n, i, mem) && n->gpu_avail[i] == SCHED_UNIT)
            idx[got++] = (uint8_t)i;
    return got == need ? got : 0;
}

int sched_node_allocate(sched_view *v, sched_node *node, const sched_request *r, sched_alloc *out)
{
    (void)v;
    if (!sched__node_fits(node, r, 1))
        return RC_EBUSY;
    out->n = r->n;
    out->n_gpus = 0;
    for (uint32_t i = 0; i < r->n; i++) {
        uint32_t id = r->id[i];
        sched_amount a = r->amount[i];
        out->id[i] = id;
        out->amount[i] = a;
        if (id == SCHED_GPU) {
            uint8_t idx[SCHED_MAX_GPUS];
            uint32_t k = gpu_choose(node, a, r->gpu_memory, idx);
            sched_amount each = a < SCHED_UNIT ? a : SCHED_UNIT;
            for (uint32_t j = 0; j < k; j++) {
                node->gpu_avail[idx[j]] -= each;
                out->gpu_index[j] = idx[j];
                out->gpu_amount[j] = each;
            }
            out->n_gpus = k;
            node->avail[SCHED_GPU] -= a;
        } else if (id < SCHED_N_PREDEFINED) {
            node->avail[id] -= a;
        } else {
            sched__node_res(node, id)->avail -= a;
        }
    }
    sched__node_touch(node);
    return 0;
}

int sched_node_free(sched_view *v, sched_node *node, const sched_alloc *a)
{
    (void)v;
    /* Check everything before changing anything. */
    if (a->n > SCHED_REQ_MAX_RESOURCES || a->n_gpus > SCHED_MAX_GPUS)
        return RC_EINVAL;
    for (uint32_t i = 0; i < a->n; i++)
        if (a->id[i] >= SCHED_N_PREDEFINED && !sched__node_res(node, a->id[i]))
            return RC_EINVAL;
    for (uint32_t j = 0; j < a->n_gpus; j++)
        if (a->gpu_index[j] >= node->n_gpus)
            return RC_EINVAL;
    for (uint32_t i = 0; i < a->n; i++) {
        uint32_t id = a->id[i];
        if (id == SCHED_GPU)
            continue;
        if (id < SCHED_N_PREDEFINED) {
            sched_amount x = node->avail[id] + a->amount[i];
            node->avail[id] = x > node->total[id] ? node->total[id] : x;
        } else {
            sched__res *r = sched__node_res(node, id);
            sched_amount x = r->avail + a->amount[i];
            r->avail = x > r->total ? r->total : x;
        }
    }
    if (a->n_gpus) {
        sched_amount sum = 0;
        for (uint32_t j = 0; j < a->n_gpus; j++) {
            sched_amount x = node->gpu_avail[a->gpu_index[j]] + a->gpu_amount[j];
            node->gpu_avail[a->gpu_index[j]] = x > SCHED_UNIT ? SCHED_UNIT : x;
        }
        for (uint32_t i = 0; i < node->n_gpus; i++)
            sum += node->gpu_avail[i];
        node->avail[SCHED_GPU] = sum;
    }
    sched__node_touch(node);
    return 0;
}

char *sched_alloc_gpu_list(const sched_alloc *a, char *buf, size_t len)
{
    size_t used = 0;
    if (len)
        buf[0] = '\0';
    /* Instances were chosen in ascending order for whole requests; a fractional one is a
     * single index, so the list is already sorted. */
    for (uint32_t j = 0; j < a->n_gpus && used < len; j++)
        used += (size_t)snprintf(buf + used, len - used, "%s%u", j ? "," : "",
                                 (unsigned)a->gpu_index[j]);
    return buf;
}
