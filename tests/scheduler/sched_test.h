/*
 * Helpers shared by the scheduler suites: readable node IDs, one-line node and request
 * builders, and an index-invariant checker that looks inside the view (sched_int.h).
 * Header-only (static functions) so each suite stays one executable.
 */
#ifndef RAYC_TESTS_SCHED_TEST_H
#define RAYC_TESTS_SCHED_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "rayc_sched.h"
#include "sched_int.h"
#include "unit.h"

#define GIB (1024.0 * 1024.0 * 1024.0)

/* Node i gets the ID 00 00 00 i 00..., printed "000000ii…". */
static inline void tid(uint8_t id[RC_NODE_ID_SIZE], uint32_t i)
{
    memset(id, 0, RC_NODE_ID_SIZE);
    id[0] = (uint8_t)(i >> 24);
    id[1] = (uint8_t)(i >> 16);
    id[2] = (uint8_t)(i >> 8);
    id[3] = (uint8_t)i;
}

/* The "000000ii" prefix explanations print for node i. */
static inline const char *tshort(uint32_t i, char buf[16])
{
    snprintf(buf, 16, "%08x", i);
    return buf;
}

typedef struct tnode_opts {
    double cpus, gpus, mem_gib;
    const char *accel;
    uint64_t gpu_mem;     /* bytes per GPU, 0: unknown */
    double price;         /* dollars per hour */
    int price_from_label; /* 1: price NaN, so the view reads rayc.io/price-per-hour */
    const sched_label *labels;
    size_t n_labels;
    const char *custom; /* one custom resource name, amount custom_amount */
    double custom_amount;
} tnode_opts;

#define TNODE(...) ((tnode_opts){__VA_ARGS__})

static inline sched_node *tadd(sched_view *v, uint32_t i, tnode_opts o)
{
    sched_named_amount res[8];
    size_t nr = 0;
    if (o.cpus)
        res[nr++] = (sched_named_amount){"CPU", o.cpus};
    if (o.gpus)
        res[nr++] = (sched_named_amount){"GPU", o.gpus};
    if (o.mem_gib)
        res[nr++] = (sched_named_amount){"memory", o.mem_gib * GIB};
    if (o.custom)
        res[nr++] = (sched_named_amount){o.custom, o.custom_amount};
    sched_node_spec spec;
    sched_node_spec_init(&spec);
    spec.resources = res;
    spec.n_resources = nr;
    spec.labels = o.labels;
    spec.n_labels = o.n_labels;
    spec.accelerator_type = o.accel;
    spec.gpu_memory = o.gpu_mem ? &o.gpu_mem : NULL;
    spec.n_gpu_memory = o.gpu_mem ? 1 : 0;
    spec.price_per_hour = o.price_from_label ? NAN : o.price;
    uint8_t id[RC_NODE_ID_SIZE];
    tid(id, i);
    sched_node *n = NULL;
    sched_err err = {""};
    int rc = sched_view_add_node(v, id, &spec, &n, &err);
    if (rc)
        fprintf(stderr, "tadd(%u): %s\n", i, err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    return n;
}

static inline sched_node *tnode(sched_view *v, uint32_t i)
{
    uint8_t id[RC_NODE_ID_SIZE];
    tid(id, i);
    return sched_view_find(v, id);
}

/* The test number of a node (inverse of tid). */
static inline uint32_t tnum(const sched_node *n)
{
    const uint8_t *id = sched_node_id(n);
    return ((uint32_t)id[0] << 24) | ((uint32_t)id[1] << 16) | ((uint32_t)id[2] << 8) | id[3];
}

static inline sched_request treq(sched_view *v, double cpus, double gpus)
{
    sched_request r;
    sched_request_init(&r);
    CU_ASSERT_EQUAL(sched_request_set(v, &r, "CPU", cpus, NULL), 0);
    CU_ASSERT_EQUAL(sched_request_set(v, &r, "GPU", gpus, NULL), 0);
    return r;
}

static inline void tset_cpu_used(sched_view *v, sched_node *n, double used)
{
    sched_amount total = sched_node_total(n, SCHED_CPU);
    sched_node_set_available(v, n, SCHED_CPU, total - (sched_amount)llround(used * SCHED_UNIT));
}

/* Checks every index invariant of sched_int.h; returns the number of violations. */
static inline int tcheck_index(const sched_view *v)
{
    int bad = 0;
    uint32_t usable = 0, gpu_nodes = 0, nongpu = 0;
    for (uint32_t s = 0; s < v->nodes.n; s++) {
        const sched_node *n = v->nodes.items[s];
        bad += n->slot != s;
        usable += n->usable;
        bad += n->usable != (n->alive && !n->draining);
        for (uint32_t r = 0; r < SCHED_N_PREDEFINED; r++) {
            bad += n->avail[r] < 0 || n->avail[r] > n->total[r];
            if (n->total[r] > 0)
                bad += n->pre_pos[r] >= v->buckets[r].n || v->buckets[r].items[n->pre_pos[r]] != n;
        }
        sched_amount gsum = 0;
        for (uint32_t g = 0; g < n->n_gpus; g++) {
            bad += n->gpu_avail[g] < 0 || n->gpu_avail[g] > SCHED_UNIT;
            gsum += n->gpu_avail[g];
        }
        bad += gsum != n->avail[SCHED_GPU];
        bad += n->total[SCHED_GPU] != (sched_amount)n->n_gpus * SCHED_UNIT;
        for (uint32_t i = 0; i < n->n_res; i++) {
            const sched__res *x = &n->res[i];
            bad += i && x->id <= n->res[i - 1].id;
            bad += x->avail < 0 || x->avail > x->total;
            bad +=
                x->bucket_pos >= v->buckets[x->id].n || v->buckets[x->id].items[x->bucket_pos] != n;
        }
        for (uint32_t i = 0; i < n->n_labels; i++) {
            const sched__label *l = &n->labels[i];
            bad += i && strcmp(l->key, n->labels[i - 1].key) <= 0;
            bad += l->bucket_pos >= l->bucket->n || l->bucket->items[l->bucket_pos] != n;
        }
        if (n->n_gpus) {
            gpu_nodes++;
        } else {
            nongpu++;
            bad += n->nongpu_pos >= v->nongpu.n || v->nongpu.items[n->nongpu_pos] != n;
        }
    }
    bad += usable != v->n_usable;
    bad += gpu_nodes != v->n_gpu_nodes;
    bad += nongpu != v->nongpu.n;
    /* Bucket sizes equal the number of nodes having the resource. */
    for (uint32_t r = 0; r < v->n_res_names; r++) {
        uint32_t want = 0;
        for (uint32_t s = 0; s < v->nodes.n; s++)
            want += sched_node_total(v->nodes.items[s], r) > 0;
        bad += want != v->buckets[r].n;
    }
    return bad;
}

#endif
