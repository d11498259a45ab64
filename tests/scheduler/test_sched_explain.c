/* sched_explain.c: every refusal explains itself, naming the unmet constraint. */
#include <string.h>

#include "sched_test.h"

#define ELLIPSIS "\xe2\x80\xa6"

static sched_decision decide(sched_view *v, const sched_request *r)
{
    sched_rng rng;
    sched_rng_seed(&rng, 1);
    sched_decision d;
    memset(&d, 0x5a, sizeof(d)); /* the refusal must write a terminated sentence */
    sched_schedule(v, r, NULL, &rng, &d);
    return d;
}

static void test_no_nodes(void)
{
    sched_view *v = sched_view_new(NULL);
    sched_request r = treq(v, 1, 0);
    sched_decision d = decide(v, &r);
    CU_ASSERT_EQUAL(d.status, SCHED_NEVER);
    CU_ASSERT_STRING_EQUAL(d.why, "the cluster view has no nodes");
    sched_view_free(v);
}

static void test_accelerator_type(void)
{
    sched_view *v = sched_view_new(NULL);
    tadd(v, 1, TNODE(.cpus = 64, .gpus = 8, .accel = "A100"));
    tadd(v, 0x3f2a, TNODE(.cpus = 16, .gpus = 1, .accel = "H100"));
    sched_request r = treq(v, 1, 2);
    CU_ASSERT_EQUAL(sched_request_set_accelerator_type(v, &r, "H100", NULL), 0);
    sched_decision d = decide(v, &r);
    CU_ASSERT_EQUAL(d.status, SCHED_NEVER);
    CU_ASSERT_STRING_EQUAL(d.why, "no node has 2 x GPU with accelerator_type H100; largest: "
                                  "1 x H100 on node 00003f2a" ELLIPSIS);
    /* A node without that accelerator never gets it, even with GPUs to spare. */
    sched_request one = treq(v, 1, 1);
    CU_ASSERT_EQUAL(sched_request_set_accelerator_type(v, &one, "H100", NULL), 0);
    tset_cpu_used(v, tnode(v, 0x3f2a), 16);
    d = decide(v, &one);
    CU_ASSERT_EQUAL(d.status, SCHED_NOT_NOW);
    CU_ASSERT_EQUAL(tnum(d.node), 0x3f2a);
    sched_request tpu = treq(v, 1, 1);
    CU_ASSERT_EQUAL(sched_request_set_accelerator_type(v, &tpu, "B200", NULL), 0);
    d = decide(v, &tpu);
    CU_ASSERT_STRING_EQUAL(d.why, "no node has 1 x GPU with accelerator_type B200; no node has "
                                  "that accelerator type");
    sched_view_free(v);
}

static void test_resources(void)
{
    sched_view *v = sched_view_new(NULL);
    tadd(v, 0xab12, TNODE(.cpus = 16, .mem_gib = 256));
    tadd(v, 2, TNODE(.cpus = 8, .mem_gib = 64));
    sched_request r = treq(v, 1, 0);
    CU_ASSERT_EQUAL(sched_request_set(v, &r, "memory", 512 * GIB, NULL), 0);
    sched_decision d = decide(v, &r);
    CU_ASSERT_STRING_EQUAL(d.why, "no node has 512 GiB memory; largest: 256 GiB memory on node "
                                  "0000ab12" ELLIPSIS);
    sched_request t = treq(v, 1, 0);
    CU_ASSERT_EQUAL(sched_request_set_custom(v, &t, "TPU", 2, NULL), 0);
    d = decide(v, &t);
    CU_ASSERT_STRING_EQUAL(d.why, "no node has 2 TPU; no node has any TPU");
    sched_request g = treq(v, 0.5, 0.5);
    d = decide(v, &g);
    CU_ASSERT_STRING_EQUAL(d.why, "no node has 0.5 GPU; no node has any GPU");
    sched_view_free(v);
}

static void test_label_selector(void)
{
    sched_view *v = sched_view_new(NULL);
    const sched_label ap[] = {{"region", "ap"}};
    const sched_label us[] = {{"region", "us"}};
    tadd(v, 1, TNODE(.cpus = 8, .labels = ap, .n_labels = 1));
    tadd(v, 2, TNODE(.cpus = 8, .gpus = 4, .labels = us, .n_labels = 1));
    sched_selector *s = NULL;
    CU_ASSERT_EQUAL_FATAL(sched_selector_parse("region: in(us,eu)", &s, NULL), 0);
    sched_request r = treq(v, 1, 0);
    r.selector = s;
    sched_node_set_alive(v, tnode(v, 2), 0); /* the only match is dead */
    sched_decision d = decide(v, &r);
    CU_ASSERT_STRING_EQUAL(d.why, "no node matches label selector region: in(us,eu)");
    sched_node_set_alive(v, tnode(v, 2), 1);
    sched_request g = treq(v, 1, 8);
    g.selector = s;
    d = decide(v, &g);
    CU_ASSERT_STRING_EQUAL(d.why, "no node matching region: in(us,eu) has 8 GPU; largest: 4 GPU on "
                                  "node 00000002" ELLIPSIS);
    sched_selector_free(s);
    sched_view_free(v);
}

static void test_gpu_memory(void)
{
    sched_view *v = sched_view_new(NULL);
    tadd(v, 1, TNODE(.cpus = 8, .gpus = 4, .gpu_mem = (uint64_t)(40 * GIB)));
    tadd(v, 2, TNODE(.cpus = 8, .gpus = 2, .gpu_mem = (uint64_t)(24 * GIB)));
    sched_request r = treq(v, 1, 1);
    r.gpu_memory = (uint64_t)(80 * GIB);
    sched_decision d = decide(v, &r);
    CU_ASSERT_EQUAL(d.status, SCHED_NEVER);
    CU_ASSERT_STRING_EQUAL(d.why, "no node has 1 x GPU with at least 80 GiB of memory; largest "
                                  "GPU memory: 40 GiB on node 00000001" ELLIPSIS);
    tadd(v, 3, TNODE(.cpus = 8, .gpus = 1, .gpu_mem = (uint64_t)(80 * GIB)));
    sched_request two = treq(v, 1, 2);
    two.gpu_memory = (uint64_t)(80 * GIB);
    d = decide(v, &two);
    CU_ASSERT_STRING_EQUAL(d.why, "no node has 2 x GPU with at least 80 GiB of memory; largest: "
                                  "1 such GPUs on node 00000003" ELLIPSIS);
    d = decide(v, &r);
    CU_ASSERT_EQUAL(d.status, SCHED_OK);
    CU_ASSERT_EQUAL(tnum(d.node), 3);
    CU_ASSERT_STRING_EQUAL(d.why, ""); /* OK decisions carry no explanation */
    sched_view_free(v);
}

static void test_resources_never_together(void)
{
    sched_view *v = sched_view_new(NULL);
    tadd(v, 1, TNODE(.cpus = 16));
    tadd(v, 2, TNODE(.cpus = 2, .gpus = 1));
    sched_request r = treq(v, 8, 1);
    sched_decision d = decide(v, &r);
    CU_ASSERT_EQUAL(d.status, SCHED_NEVER);
    CU_ASSERT_STRING_EQUAL(d.why, "no single node has all of {CPU: 8, GPU: 1}; closest: node "
                                  "00000001" ELLIPSIS ", where it has no GPU, the request needs "
                                  "1 GPU");
    sched_view_free(v);
}

/* Long explanations are cut to the buffer, still terminated. */
static void test_truncation(void)
{
    sched_view *v = sched_view_new(NULL);
    tadd(v, 1, TNODE(.cpus = 1));
    char sel[600] = "";
    for (int i = 0; i < 20; i++) {
        char part[40];
        snprintf(part, sizeof(part), "%skey-number-%02d: value-%02d", i ? ", " : "", i, i);
        strcat(sel, part);
    }
    sched_selector *s = NULL;
    CU_ASSERT_EQUAL_FATAL(sched_selector_parse(sel, &s, NULL), 0);
    sched_request r = treq(v, 1, 0);
    r.selector = s;
    sched_decision d = decide(v, &r);
    CU_ASSERT_EQUAL(d.status, SCHED_NEVER);
    CU_ASSERT(strlen(d.why) < SCHED_WHY_MAX);
    CU_ASSERT_EQUAL(strncmp(d.why, "no node matches label selector key-number-00", 44), 0);
    sched_selector_free(s);
    sched_view_free(v);
}

static const unit_case cases[] = {
    UNIT_CASE(test_no_nodes),   UNIT_CASE(test_accelerator_type),
    UNIT_CASE(test_resources),  UNIT_CASE(test_label_selector),
    UNIT_CASE(test_gpu_memory), UNIT_CASE(test_resources_never_together),
    UNIT_CASE(test_truncation),
};

int main(void)
{
    return unit_run("sched_explain", cases, UNIT_N(cases));
}
