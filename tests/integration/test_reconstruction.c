/*
 * Lineage reconstruction end to end (Ray's test_reconstruction.py): large task results
 * (in a node's shared-memory store) whose only node is SIGKILLed are made again by their
 * owner, recursively through lost arguments, within the task's max_retries; results of
 * puts and actor calls cannot be and fail as RAYC_ERR_OBJECT_LOST.
 *
 * Layout: a head node without CPUs (this process's raylet, so nothing it fetches is lost
 * with the worker node) and one worker node with the custom resource "node1", killed and
 * replaced by a fresh node with the same resource.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"
#include "rayc.h"
#include "rc_time.h"
#include "unit.h"

enum { SIZE = 2 * 1024 * 1024 };

static harness_cluster C;
static int worker_node = -1;

static const char *const head_flags[] = {"--head", "--num-cpus", "0", "--object-store-memory", "200MiB", NULL};
static const char *const node1_flags[] = {"--num-cpus", "1", "--resources", "{\"node1\": 1}",
                                          "--object-store-memory", "200MiB", NULL};

static void fast_env(void)
{
    setenv("RAYC_health_check_initial_delay_ms", "200", 1);
    setenv("RAYC_health_check_period_ms", "300", 1);
    setenv("RAYC_health_check_timeout_ms", "2000", 1);
    setenv("RAYC_health_check_failure_threshold", "5", 1);
    setenv("RAYC_CODE_SEARCH_PATH", RECONSTRUCTION_LIB, 1);
}

static int start_cluster(void)
{
    fast_env();
    unsetenv("RAYC_RAYLET_SOCKET");
    int idx;
    if (harness_cluster_init(&C, 0) || harness_gcs_start(&C) || harness_raylet_start(&C, head_flags, &idx) ||
        harness_raylet_start(&C, node1_flags, &worker_node))
        return -1;
    rayc_init_options opts;
    rayc_init_options_init(&opts);
    opts.address = C.gcs_address;
    opts.code_search_path = RECONSTRUCTION_LIB;
    return rayc_init(&opts);
}

static void stop_cluster(void)
{
    rayc_shutdown();
    harness_cluster_destroy(&C);
    unsetenv("RAYC_RAYLET_SOCKET");
}

/* 1 once this driver's view of the cluster shows node hex dead. */
static int node_dead(const char *hex)
{
    char *json = rayc_nodes_json();
    int dead = 0;
    const char *at = json ? strstr(json, hex) : NULL;
    if (at) {
        const char *alive = strstr(at, "\"Alive\"");
        const char *next = strstr(at, "\"NodeID\"");
        if (alive && (!next || alive < next)) {
            alive += strlen("\"Alive\"");
            while (*alive == ' ' || *alive == ':')
                alive++;
            dead = !strncmp(alive, "false", 5);
        }
    }
    free(json);
    return dead;
}

/* SIGKILLs raylet i and waits until the cluster has marked it dead. */
static void kill_node(int i)
{
    char hex[64];
    snprintf(hex, sizeof(hex), "%s", C.raylets[i].node_id);
    harness_raylet_signal(&C, i, SIGKILL);
    CU_ASSERT_NOT_EQUAL(harness_raylet_wait_exit(&C, i, 10000), -1);
    int64_t until = rc_mono_ms() + 30000;
    while (!node_dead(hex) && rc_mono_ms() < until)
        rc_sleep_ms(100);
    CU_ASSERT_TRUE(node_dead(hex));
}

/* Kills the worker node and starts a fresh one with the same resources. */
static void replace_worker_node(void)
{
    kill_node(worker_node);
    CU_ASSERT_EQUAL(harness_raylet_start(&C, node1_flags, &worker_node), 0);
}

static void on_node1(rayc_task_options *o, int max_retries)
{
    rayc_task_options_init(o);
    o->resources[0] = (rayc_resource){"node1", 1};
    o->n_resources = 1;
    o->max_retries = max_retries;
}

static int submit_pattern(int64_t seed, int max_retries, rayc_ref *out)
{
    int64_t size = SIZE;
    rayc_arg args[] = {RAYC_ARG_VALUE(&size, 8), RAYC_ARG_VALUE(&seed, 8)};
    rayc_task_options o;
    on_node1(&o, max_retries);
    return rayc_submit("rc_pattern", args, 2, &o, out);
}

/* Waits until ref is ready without fetching it here (its only copy stays where it was made). */
static void wait_ready(const rayc_ref *ref)
{
    uint8_t ready[1] = {0};
    CU_ASSERT_EQUAL(rayc_wait(ref, 1, 1, 60000, 0, ready), 0);
    CU_ASSERT_EQUAL(ready[0], 1);
}

/* Runs rc_check(ref, seed) on node1: the value is checked there, no copy comes here. */
static int64_t check_on_node1(const rayc_ref *ref, int64_t seed, rayc_error *err)
{
    rayc_arg args[] = {RAYC_ARG_REF(ref), RAYC_ARG_VALUE(&seed, 8)};
    rayc_task_options o;
    on_node1(&o, 0);
    rayc_ref check;
    int64_t v = -1;
    *err = RAYC_ERR_TIMEOUT;
    if (rayc_submit("rc_check", args, 2, &o, &check) != 0)
        return -1;
    rayc_object out;
    if (rayc_get(&check, 1, 120000, &out) == 0) {
        *err = out.error;
        if (!out.error && out.size == 8)
            memcpy(&v, out.data, 8);
        else if (out.error)
            fprintf(stderr, "  rc_check: %s: %s\n", rayc_error_name(out.error), out.error_message);
        rayc_object_release(&out, 1);
    }
    rayc_ref_release(&check);
    return v;
}

/* Gets ref here: its error, and (when fine) whether it is seed's pattern of SIZE bytes. */
static rayc_error get_here(const rayc_ref *ref, int64_t seed, int *pattern_ok, char *message, size_t len)
{
    rayc_object o;
    *pattern_ok = 0;
    if (message && len)
        message[0] = '\0';
    if (rayc_get(ref, 1, 120000, &o) != 0)
        return RAYC_ERR_TIMEOUT;
    rayc_error e = o.error;
    if (e) {
        fprintf(stderr, "  get: %s: %s\n", rayc_error_name(e), o.error_message);
        if (message)
            snprintf(message, len, "%s", o.error_message);
    } else if (o.size == SIZE) {
        const uint8_t *p = o.data;
        int ok = 1;
        for (size_t i = 0; i < o.size && ok; i++)
            ok = p[i] == (uint8_t)((i * 31 + (uint64_t)seed) & 0xff);
        *pattern_ok = ok;
    }
    rayc_object_release(&o, 1);
    return e;
}

/* A result lost with its node is made again on the replacement node; lost once more, its
 * task (max_retries=1) has no retry left. max_retries=0 results are not made again. */
static void test_basic_reconstruction(void)
{
    CU_ASSERT_EQUAL_FATAL(start_cluster(), 0);
    rayc_ref once, never;
    CU_ASSERT_EQUAL(submit_pattern(5, 1, &once), 0);
    CU_ASSERT_EQUAL(submit_pattern(6, 0, &never), 0);
    wait_ready(&once);
    wait_ready(&never);
    rayc_error e;
    CU_ASSERT_EQUAL(check_on_node1(&once, 5, &e), SIZE);

    replace_worker_node();
    CU_ASSERT_EQUAL(check_on_node1(&once, 5, &e), SIZE);
    CU_ASSERT_EQUAL(e, RAYC_OK);
    int ok;
    char message[1024];
    CU_ASSERT_EQUAL(get_here(&never, 6, &ok, message, sizeof(message)), RAYC_ERR_OBJECT_UNRECONSTRUCTABLE_MAX_ATTEMPTS);
    CU_ASSERT_PTR_NOT_NULL(strstr(message, "max_retries=0"));
    /* A task reading the lost result fails with its error. */
    CU_ASSERT_EQUAL(check_on_node1(&never, 6, &e), -1);
    CU_ASSERT_EQUAL(e, RAYC_ERR_OBJECT_UNRECONSTRUCTABLE_MAX_ATTEMPTS);

    replace_worker_node();
    CU_ASSERT_EQUAL(get_here(&once, 5, &ok, message, sizeof(message)), RAYC_ERR_OBJECT_UNRECONSTRUCTABLE_MAX_ATTEMPTS);
    rayc_ref_release(&once);
    rayc_ref_release(&never);
    stop_cluster();
}

/* A chain a -> b with both lost: b's rerun needs a, which is made again first. In one
 * chain the driver still holds a (lost with the node), in the other it let a go (its value
 * was released and only its lineage kept). */
static void test_recursive_reconstruction(void)
{
    CU_ASSERT_EQUAL_FATAL(start_cluster(), 0);
    rayc_ref a1, b1, a2, b2;
    rayc_task_options o;
    on_node1(&o, 3);
    CU_ASSERT_EQUAL(submit_pattern(10, 3, &a1), 0);
    int64_t seed10 = 10, seed20 = 20;
    rayc_arg n1[] = {RAYC_ARG_REF(&a1), RAYC_ARG_VALUE(&seed10, 8)};
    CU_ASSERT_EQUAL(rayc_submit("rc_next", n1, 2, &o, &b1), 0);
    CU_ASSERT_EQUAL(submit_pattern(20, 3, &a2), 0);
    rayc_arg n2[] = {RAYC_ARG_REF(&a2), RAYC_ARG_VALUE(&seed20, 8)};
    CU_ASSERT_EQUAL(rayc_submit("rc_next", n2, 2, &o, &b2), 0);
    wait_ready(&b1);
    wait_ready(&b2);
    wait_ready(&a1);
    rayc_ref_release(&a2); /* b2's lineage keeps it */

    replace_worker_node();
    int ok = 0;
    CU_ASSERT_EQUAL(get_here(&b1, 11, &ok, NULL, 0), RAYC_OK);
    CU_ASSERT_TRUE(ok);
    CU_ASSERT_EQUAL(get_here(&a1, 10, &ok, NULL, 0), RAYC_OK);
    CU_ASSERT_TRUE(ok);
    CU_ASSERT_EQUAL(get_here(&b2, 21, &ok, NULL, 0), RAYC_OK);
    CU_ASSERT_TRUE(ok);
    rayc_ref_release(&a1);
    rayc_ref_release(&b1);
    rayc_ref_release(&b2);
    stop_cluster();
}

/* A task with two results, one of which has a copy here: only the other is lost, and the
 * rerun that makes it leaves the first as it was. */
static void test_one_of_two_results_lost(void)
{
    CU_ASSERT_EQUAL_FATAL(start_cluster(), 0);
    int64_t size = SIZE, seed = 50;
    rayc_arg args[] = {RAYC_ARG_VALUE(&size, 8), RAYC_ARG_VALUE(&seed, 8)};
    rayc_task_options o;
    on_node1(&o, 2);
    o.num_returns = 2;
    rayc_ref pair[2];
    CU_ASSERT_EQUAL(rayc_submit("rc_pair", args, 2, &o, pair), 0);
    int ok = 0;
    CU_ASSERT_EQUAL(get_here(&pair[1], 51, &ok, NULL, 0), RAYC_OK); /* a copy on this node */
    CU_ASSERT_TRUE(ok);
    wait_ready(&pair[0]);
    replace_worker_node();
    CU_ASSERT_EQUAL(get_here(&pair[0], 50, &ok, NULL, 0), RAYC_OK);
    CU_ASSERT_TRUE(ok);
    CU_ASSERT_EQUAL(get_here(&pair[1], 51, &ok, NULL, 0), RAYC_OK);
    CU_ASSERT_TRUE(ok);
    /* Both still readable on node1 once more (the rerun's second copy is known or freed). */
    rayc_error e;
    CU_ASSERT_EQUAL(check_on_node1(&pair[1], 51, &e), SIZE);
    rayc_ref_release(&pair[0]);
    rayc_ref_release(&pair[1]);
    stop_cluster();
}

/* An actor call's result cannot be made again: lost, it is RAYC_ERR_OBJECT_LOST saying why. */
static void test_actor_result_lost(void)
{
    CU_ASSERT_EQUAL_FATAL(start_cluster(), 0);
    rayc_actor_options ao;
    rayc_actor_options_init(&ao);
    ao.resources[0] = (rayc_resource){"node1", 1};
    ao.n_resources = 1;
    rayc_actor maker;
    CU_ASSERT_EQUAL_FATAL(rayc_actor_create("Maker", NULL, 0, &ao, &maker), 0);
    int64_t size = SIZE, seed = 7;
    rayc_arg args[] = {RAYC_ARG_VALUE(&size, 8), RAYC_ARG_VALUE(&seed, 8)};
    rayc_ref made;
    CU_ASSERT_EQUAL(rayc_actor_call(&maker, "make", args, 2, NULL, &made), 0);
    wait_ready(&made);
    replace_worker_node();
    int ok;
    char message[1024];
    CU_ASSERT_EQUAL(get_here(&made, 7, &ok, message, sizeof(message)), RAYC_ERR_OBJECT_LOST);
    CU_ASSERT_PTR_NOT_NULL(strstr(message, "actor task"));
    rayc_ref_release(&made);
    stop_cluster();
}

/* A put's only copy is in its owner's node store: this driver attaches to the worker
 * node's raylet, puts, and that raylet is killed. The owner lives on; the put cannot be
 * made again. */
static void test_put_lost(void)
{
    fast_env();
    int idx;
    CU_ASSERT_EQUAL_FATAL(harness_cluster_init(&C, 0), 0);
    CU_ASSERT_EQUAL_FATAL(harness_gcs_start(&C), 0);
    CU_ASSERT_EQUAL_FATAL(harness_raylet_start(&C, head_flags, &idx), 0);
    /* A session directory of its own, so that this test knows where its socket is. */
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/own", C.root);
    const char *const own_flags[] = {"--num-cpus", "1", "--object-store-memory", "200MiB", "--session-dir", dir, NULL};
    CU_ASSERT_EQUAL_FATAL(harness_raylet_start(&C, own_flags, &worker_node), 0);
    char socket[PATH_MAX + 64];
    snprintf(socket, sizeof(socket), "%s/sockets/raylet.%.8s.sock", dir, C.raylets[worker_node].node_id);
    CU_ASSERT_EQUAL_FATAL(access(socket, F_OK), 0);
    setenv("RAYC_RAYLET_SOCKET", socket, 1);
    rayc_init_options opts;
    rayc_init_options_init(&opts);
    opts.address = C.gcs_address;
    opts.code_search_path = RECONSTRUCTION_LIB;
    CU_ASSERT_EQUAL_FATAL(rayc_init(&opts), 0);
    uint8_t *buf = malloc(SIZE);
    for (size_t i = 0; i < SIZE; i++)
        buf[i] = (uint8_t)((i * 31 + 9) & 0xff);
    rayc_ref put;
    CU_ASSERT_EQUAL(rayc_put(buf, SIZE, &put), 0);
    free(buf);
    int ok;
    CU_ASSERT_EQUAL(get_here(&put, 9, &ok, NULL, 0), RAYC_OK);
    CU_ASSERT_TRUE(ok);
    kill_node(worker_node);
    char message[1024];
    CU_ASSERT_EQUAL(get_here(&put, 9, &ok, message, sizeof(message)), RAYC_ERR_OBJECT_LOST);
    CU_ASSERT_PTR_NOT_NULL(strstr(message, "put"));
    rayc_ref_release(&put);
    stop_cluster();
}

/* Lineage is released when its results go out of scope: under a max_lineage_bytes that
 * holds a few tasks, twenty results made and let go leave the first result's lineage in
 * place, and it is made again when lost. */
static void test_lineage_released_with_results(void)
{
    setenv("RAYC_max_lineage_bytes", "6000", 1);
    CU_ASSERT_EQUAL_FATAL(start_cluster(), 0);
    unsetenv("RAYC_max_lineage_bytes");
    rayc_ref first;
    CU_ASSERT_EQUAL(submit_pattern(30, 3, &first), 0);
    wait_ready(&first);
    for (int i = 0; i < 20; i++) {
        rayc_ref r;
        CU_ASSERT_EQUAL(submit_pattern(100 + i, 3, &r), 0);
        wait_ready(&r);
        rayc_ref_release(&r);
    }
    replace_worker_node();
    rayc_error e;
    CU_ASSERT_EQUAL(check_on_node1(&first, 30, &e), SIZE);
    CU_ASSERT_EQUAL(e, RAYC_OK);
    rayc_ref_release(&first);
    stop_cluster();
}

/* Past max_lineage_bytes the oldest lineage is released: its result, lost, cannot be made
 * again (Ray's ObjectReconstructionFailedLineageEvictedError). */
static void test_lineage_evicted(void)
{
    setenv("RAYC_max_lineage_bytes", "1", 1);
    CU_ASSERT_EQUAL_FATAL(start_cluster(), 0);
    unsetenv("RAYC_max_lineage_bytes");
    rayc_ref r;
    CU_ASSERT_EQUAL(submit_pattern(40, 3, &r), 0);
    wait_ready(&r);
    replace_worker_node();
    int ok;
    char message[1024];
    CU_ASSERT_EQUAL(get_here(&r, 40, &ok, message, sizeof(message)), RAYC_ERR_OBJECT_UNRECONSTRUCTABLE_LINEAGE_EVICTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(message, "max_lineage_bytes"));
    rayc_ref_release(&r);
    stop_cluster();
}

static const unit_case cases[] = {
    UNIT_CASE(test_basic_reconstruction),
    UNIT_CASE(test_recursive_reconstruction),
    UNIT_CASE(test_one_of_two_results_lost),
    UNIT_CASE(test_actor_result_lost),
    UNIT_CASE(test_put_lost),
    UNIT_CASE(test_lineage_released_with_results),
    UNIT_CASE(test_lineage_evicted),
};

int main(void)
{
    return unit_run("reconstruction", cases, UNIT_N(cases));
}
