/* sched_node.c: allocation and free, per-instance GPUs, best-fit fractions, GPU memory. */
#include <string.h>

#include "rc_err.h"
#include "sched_test.h"

static sched_request gpu_req(sched_view *v, double gpus)
{
    sched_request r;
    sched_request_init(&r);
    CU_ASSERT_EQUAL(sched_request_set(v, &r, "GPU", gpus, NULL), 0);
    return r;
}

/* Ray #52133: 0.5 GPU x 6 on 3 GPUs must put exactly two on each GPU. */
static void test_half_gpus_pack_two_per_gpu(void)
{
    sched_view *v = sched_view_new(NULL);
    sched_node *n = tadd(v, 1, TNODE(.cpus = 16, .gpus = 3));
    sched_request r = gpu_req(v, 0.5);
    int per_gpu[3] = {0, 0, 0};
    sched_alloc a[6];
    for (int i = 0; i < 6; i++) {
        CU_ASSERT_EQUAL_FATAL(sched_node_allocate(v, n, &r, &a[i]), 0);
        CU_ASSERT_EQUAL(a[i].n_gpus, 1);
        CU_ASSERT_EQUAL(a[i].gpu_amount[0], 5000);
        per_gpu[a[i].gpu_index[0]]++;
    }
    CU_ASSERT_EQUAL(per_gpu[0], 2);
    CU_ASSERT_EQUAL(per_gpu[1], 2);
    CU_ASSERT_EQUAL(per_gpu[2], 2);
    CU_ASSERT_EQUAL(sched_node_available(n, SCHED_GPU), 0);
    sched_alloc extra;
    CU_ASSERT_EQUAL(sched_node_allocate(v, n, &r, &extra), RC_EBUSY);
    for (int i = 0; i < 6; i++)
        CU_ASSERT_EQUAL(sched_node_free(v, n, &a[i]), 0);
    for (uint32_t g = 0; g < 3; g++)
        CU_ASSERT_EQUAL(sched_node_gpu_available(n, g), SCHED_UNIT);
    sched_view_free(v);
}

/* Ray #52915: 0.3, 0.7, 0.4, 0.6 on 2 GPUs fit without stranding capacity. */
static void test_mixed_fractions_fit_two_gpus(void)
{
    sched_view *v = sched_view_new(NULL);
    sched_node *n = tadd(v, 1, TNODE(.cpus = 16, .gpus = 2));
    const double fr[] = {0.3, 0.7, 0.4, 0.6};
    sched_alloc a[4];
    for (int i = 0; i < 4; i++) {
        sched_request r = gpu_req(v, fr[i]);
        CU_ASSERT_EQUAL_FATAL(sched_node_allocate(v, n, &r, &a[i]), 0);
    }
    CU_ASSERT_EQUAL(sched_node_gpu_available(n, 0), 0);
    CU_ASSERT_EQUAL(sched_node_gpu_available(n, 1), 0);
    CU_ASSERT_EQUAL(a[0].gpu_index[0], a[1].gpu_index[0]);
    CU_ASSERT_EQUAL(a[2].gpu_index[0], a[3].gpu_index[0]);
    CU_ASSERT_NOT_EQUAL(a[0].gpu_index[0], a[2].gpu_index[0]);
    /* A sequence first-fit strands (0.3 would go to the half-free GPU, leaving 0.2 and 0.3,
     * and the last 0.5 fits nowhere); best-fit puts 0.3 where exactly 0.3 is left. */
    for (int i = 3; i >= 0; i--)
        sched_node_free(v, n, &a[i]);
    const double fr2[] = {0.5, 0.7, 0.3, 0.5};
    for (int i = 0; i < 4; i++) {
        sched_request r = gpu_req(v, fr2[i]);
        CU_ASSERT_EQUAL(sched_node_allocate(v, n, &r, &a[i]), 0);
    }
    CU_ASSERT_EQUAL(sched_node_available(n, SCHED_GPU), 0);
    sched_view_free(v);
}

static void test_whole_gpus_take_free_instances(void)
{
    sched_view *v = sched_view_new(NULL);
    sched_node *n = tadd(v, 1, TNODE(.cpus = 16, .gpus = 4));
    sched_request half = gpu_req(v, 0.5), two = gpu_req(v, 2), three = gpu_req(v, 3);
    sched_alloc a, b, c;
    CU_ASSERT_EQUAL(sched_node_allocate(v, n, &half, &a), 0);
    CU_ASSERT_EQUAL(a.gpu_index[0], 0);
    /* 3.5 GPUs are free in sum but only 3 instances are whole: 3 fit, then not 1 more. */
    CU_ASSERT_EQUAL(sched_node_allocate(v, n, &three, &b), 0);
    CU_ASSERT_EQUAL(b.n_gpus, 3);
    char list[32];
    CU_ASSERT_STRING_EQUAL(sched_alloc_gpu_list(&b, list, sizeof(list)), "1,2,3");
    sched_node_free(v, n, &b);
    CU_ASSERT_EQUAL(sched_node_allocate(v, n, &two, &b), 0);
    CU_ASSERT_STRING_EQUAL(sched_alloc_gpu_list(&b, list, sizeof(list)), "1,2");
    sched_request one = gpu_req(v, 1);
    CU_ASSERT_EQUAL(sched_node_allocate(v, n, &one, &c), 0);
    CU_ASSERT_STRING_EQUAL(sched_alloc_gpu_list(&c, list, sizeof(list)), "3");
    /* 0.5 free on instance 0 only: a whole GPU no longer fits, a half does. */
    sched_alloc d;
    CU_ASSERT_EQUAL(sched_node_allocate(v, n, &one, &d), RC_EBUSY);
    CU_ASSERT_EQUAL(sched_node_allocate(v, n, &half, &d), 0);
    CU_ASSERT_EQUAL(d.gpu_index[0], 0);
    sched_view_free(v);
}

static void test_busy_allocation_takes_nothing(void)
{
    sched_view *v = sched_view_new(NULL);
    sched_node *n = tadd(v, 1, TNODE(.cpus = 4, .gpus = 1, .custom = "TPU", .custom_amount = 1));
    sched_request r = treq(v, 2, 1);
    CU_ASSERT_EQUAL(sched_request_set(v, &r, "TPU", 2, NULL), 0);
    sched_alloc a;
    CU_ASSERT_EQUAL(sched_node_allocate(v, n, &r, &a), RC_EBUSY);
    CU_ASSERT_EQUAL(sched_node_available(n, SCHED_CPU), 4 * SCHED_UNIT);
    CU_ASSERT_EQUAL(sched_node_available(n, SCHED_GPU), SCHED_UNIT);
    CU_ASSERT_EQUAL(sched_node_gpu_available(n, 0), SCHED_UNIT);
    /* Unknown custom resource on the node. */
    sched_request u;
    sched_request_init(&u);
    CU_ASSERT_EQUAL(sched_request_set(v, &u, "FPGA", 1, NULL), 0);
    CU_ASSERT_EQUAL(sched_node_allocate(v, n, &u, &a), RC_EBUSY);
    sched_view_free(v);
}

static void test_free_rejects_foreign_allocations(void)
{
    sched_view *v = sched_view_new(NULL);
    sched_node *big = tadd(v, 1, TNODE(.cpus = 4, .gpus = 4, .custom = "TPU", .custom_amount = 1));
    sched_node *small = tadd(v, 2, TNODE(.cpus = 4, .gpus = 1));
    sched_request r = treq(v, 1, 1);
    CU_ASSERT_EQUAL(sched_request_set(v, &r, "TPU", 1, NULL), 0);
    sched_alloc a;
    CU_ASSERT_EQUAL_FATAL(sched_node_allocate(v, big, &r, &a), 0);
    CU_ASSERT_EQUAL(sched_node_free(v, small, &a), RC_EINVAL); /* no TPU there */
    CU_ASSERT_EQUAL(sched_node_available(small, SCHED_CPU), 4 * SCHED_UNIT);
    sched_request g2 = gpu_req(v, 3);
    sched_alloc b;
    CU_ASSERT_EQUAL_FATAL(sched_node_allocate(v, big, &g2, &b), 0);
    CU_ASSERT_EQUAL(sched_node_free(v, small, &b), RC_EINVAL); /* instance 3 doesn't exist */
    CU_ASSERT_EQUAL(sched_node_free(v, big, &b), 0);
    CU_ASSERT_EQUAL(sched_node_free(v, big, &a), 0);
    CU_ASSERT_EQUAL(sched_node_available(big, SCHED_GPU), 4 * SCHED_UNIT);
    sched_view_free(v);
}

/* Mixed A100-40GB / A100-80GB node: gpu_memory picks the big instances. */
static void test_gpu_memory_selects_instances(void)
{
    sched_view *v = sched_view_new(NULL);
    const sched_named_amount res[] = {{"CPU", 32}, {"GPU", 4}};
    const uint64_t mem[] = {(uint64_t)(40 * GIB), (uint64_t)(80 * GIB), (uint64_t)(40 * GIB),
                            (uint64_t)(80 * GIB)};
    sched_node_spec spec;
    sched_node_spec_init(&spec);
    spec.resources = res;
    spec.n_resources = 2;
    spec.gpu_memory = mem;
    spec.n_gpu_memory = 4;
    uint8_t id[RC_NODE_ID_SIZE];
    tid(id, 1);
    sched_node *n;
    CU_ASSERT_EQUAL_FATAL(sched_view_add_node(v, id, &spec, &n, NULL), 0);
    CU_ASSERT_EQUAL(sched_node_gpu_memory(n, 1), (uint64_t)(80 * GIB));
    sched_request big = gpu_req(v, 1);
    big.gpu_memory = (uint64_t)(60 * GIB);
    sched_alloc a, b, c;
    CU_ASSERT_EQUAL(sched_node_allocate(v, n, &big, &a), 0);
    CU_ASSERT_EQUAL(a.gpu_index[0], 1);
    CU_ASSERT_EQUAL(sched_node_allocate(v, n, &big, &b), 0);
    CU_ASSERT_EQUAL(b.gpu_index[0], 3);
    /* Two 40 GB GPUs are still free, but not for this request. */
    CU_ASSERT_EQUAL(sched_node_allocate(v, n, &big, &c), RC_EBUSY);
    sched_request small = gpu_req(v, 1);
    small.gpu_memory = (uint64_t)(16 * GIB);
    CU_ASSERT_EQUAL(sched_node_allocate(v, n, &small, &c), 0);
    CU_ASSERT_EQUAL(c.gpu_index[0], 0);
    /* Fractional with memory: best fit among qualifying instances only. */
    sched_node_free(v, n, &a);
    sched_request half = gpu_req(v, 0.5);
    half.gpu_memory = (uint64_t)(60 * GIB);
    CU_ASSERT_EQUAL(sched_node_allocate(v, n, &half, &a), 0);
    CU_ASSERT_EQUAL(a.gpu_index[0], 1);
    /* Two whole 80 GB GPUs needed, only one 80 GB instance has room: busy, and the
     * scheduler sees it as feasible (not now) because the node has two when idle. */
    sched_request two = gpu_req(v, 2);
    two.gpu_memory = (uint64_t)(60 * GIB);
    CU_ASSERT_EQUAL(sched_node_allocate(v, n, &two, &b), RC_EBUSY);
    sched_rng rng;
    sched_rng_seed(&rng, 1);
    sched_decision d;
    CU_ASSERT_EQUAL(sched_schedule(v, &two, NULL, &rng, &d), SCHED_NOT_NOW);
    two.gpu_memory = (uint64_t)(100 * GIB);
    CU_ASSERT_EQUAL(sched_schedule(v, &two, NULL, &rng, &d), SCHED_NEVER);
    sched_view_free(v);
}

/* Property: random requests and frees on random nodes never overdraw any total or
 * instance, and freeing everything restores every amount exactly. */
static void test_random_allocate_free_restores_exactly(void)
{
    sched_view *v = sched_view_new(NULL);
    sched_rng rng;
    sched_rng_seed(&rng, 2024);
    enum { NODES = 12, LIVE = 200, OPS = 20000 };
    for (uint32_t i = 0; i < NODES; i++)
        tadd(v, i,
             TNODE(.cpus = 1 + sched_rng_below(&rng, 16), .gpus = sched_rng_below(&rng, 5),
                   .mem_gib = 1 + sched_rng_below(&rng, 64), .custom = "TPU",
                   .custom_amount = sched_rng_below(&rng, 3)));
    static const double gpu_choices[] = {0, 0.1, 0.25, 0.3, 0.5, 0.7, 1, 2, 3};
    static const double cpu_choices[] = {0, 0.5, 1, 2, 0.0001, 4};
    sched_alloc allocs[LIVE];
    sched_node *where[LIVE];
    int live[LIVE] = {0};
    for (int op = 0; op < OPS; op++) {
        uint32_t slot = sched_rng_below(&rng, LIVE);
        if (live[slot]) {
            CU_ASSERT_EQUAL_FATAL(sched_node_free(v, where[slot], &allocs[slot]), 0);
            live[slot] = 0;
        } else {
            sched_request r = treq(v, cpu_choices[sched_rng_below(&rng, 6)],
                                   gpu_choices[sched_rng_below(&rng, 9)]);
            if (sched_rng_below(&rng, 4) == 0)
                sched_request_set(v, &r, "TPU", 0.5, NULL);
            if (sched_rng_below(&rng, 3) == 0)
                sched_request_set(v, &r, "memory", (1 + sched_rng_below(&rng, 8)) * GIB, NULL);
            sched_node *n = sched_view_node_at(v, sched_rng_below(&rng, NODES));
            int fits = sched__node_fits(n, &r, 1);
            int rc = sched_node_allocate(v, n, &r, &allocs[slot]);
            CU_ASSERT_EQUAL(rc == 0, fits);
            if (!rc) {
                live[slot] = 1;
                where[slot] = n;
                sched_amount g = sched_request_get(&r, SCHED_GPU);
                sched_amount sum = 0;
                for (uint32_t j = 0; j < allocs[slot].n_gpus; j++)
                    sum += allocs[slot].gpu_amount[j];
                CU_ASSERT_EQUAL(sum, g);
            }
        }
        if (op % 500 == 0)
            CU_ASSERT_EQUAL_FATAL(tcheck_index(v), 0); /* includes 0 <= avail <= total */
    }
    for (int s = 0; s < LIVE; s++)
        if (live[s])
            CU_ASSERT_EQUAL(sched_node_free(v, where[s], &allocs[s]), 0);
    uint32_t tpu;
    sched_view_resource_id(v, "TPU", &tpu);
    for (uint32_t i = 0; i < NODES; i++) {
        sched_node *n = sched_view_node_at(v, i);
        for (uint32_t r = 0; r < SCHED_N_PREDEFINED; r++)
            CU_ASSERT_EQUAL(sched_node_available(n, r), sched_node_total(n, r));
        CU_ASSERT_EQUAL(sched_node_available(n, tpu), sched_node_total(n, tpu));
        for (uint32_t g = 0; g < sched_node_gpu_count(n); g++)
            CU_ASSERT_EQUAL(sched_node_gpu_available(n, g), SCHED_UNIT);
        CU_ASSERT_DOUBLE_EQUAL(sched_node_utilization(n), 0, 1e-9);
    }
    sched_view_free(v);
}

static const unit_case cases[] = {
    UNIT_CASE(test_half_gpus_pack_two_per_gpu),
    UNIT_CASE(test_mixed_fractions_fit_two_gpus),
    UNIT_CASE(test_whole_gpus_take_free_instances),
    UNIT_CASE(test_busy_allocation_takes_nothing),
    UNIT_CASE(test_free_rejects_foreign_allocations),
    UNIT_CASE(test_gpu_memory_selects_instances),
    UNIT_CASE(test_random_allocate_free_restores_exactly),
};

int main(void)
{
    return unit_run("sched_node", cases, UNIT_N(cases));
}
