/*
 * Tasks end to end on real local clusters: many small tasks, nested tasks, 100 MB objects
 * produced on one node and read on another, GPU assignment seen by the function, an
 * unschedulable request that explains itself, workers killed mid-task (retried, then
 * WORKER_DIED), application errors, a raylet killed under its tasks, cancellation.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"
#include "rayc.h"
#include "rc_err.h"
#include "rc_time.h"
#include "unit.h"

static harness_cluster C;

/* Health checks that find a dead raylet within about a second: only for the case that
 * kills one, since a raylet busy moving 100 MB objects on a loaded machine can miss them. */
static void fast_health_checks(int on)
{
    static const char *const names[] = {"RAYC_health_check_initial_delay_ms", "RAYC_health_check_period_ms",
                                        "RAYC_health_check_timeout_ms", "RAYC_health_check_failure_threshold"};
    static const char *const values[] = {"200", "200", "500", "3"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (on)
            setenv(names[i], values[i], 1);
        else
            unsetenv(names[i]);
    }
}

/* A cluster of raylets (each a NULL-terminated flag list; the first is the head), and
 * this process as its driver. */
static int start_cluster(const char *const *const *raylets, int n)
{
    setenv("RAYC_unschedulable_task_timeout_ms", "2000", 1);
    setenv("RAYC_CODE_SEARCH_PATH", TASK_LIB, 1);
    if (harness_cluster_init(&C, 0) || harness_gcs_start(&C))
        return -1;
    for (int i = 0; i < n; i++) {
        int idx;
        if (harness_raylet_start(&C, raylets[i], &idx))
            return -1;
    }
    rayc_init_options opts;
    rayc_init_options_init(&opts);
    opts.address = C.gcs_address;
    opts.code_search_path = TASK_LIB;
    return rayc_init(&opts);
}

static void stop_cluster(void)
{
    rayc_shutdown();
    harness_cluster_destroy(&C);
    fast_health_checks(0);
}

static int64_t get_i64(const rayc_ref *ref, rayc_error *err)
{
    rayc_object o;
    int64_t v = -1;
    if (rayc_get(ref, 1, 60000, &o) != 0) {
        *err = RAYC_ERR_TIMEOUT;
        return -1;
    }
    *err = o.error;
    if (!o.error && o.size == 8)
        memcpy(&v, o.data, 8);
    else if (o.error)
        fprintf(stderr, "  task error: %s\n", o.error_message);
    rayc_object_release(&o, 1);
    return v;
}

static void test_many_small_tasks(void)
{
    const char *head[] = {"--head", "--num-cpus", "4", NULL};
    const char *other[] = {"--num-cpus", "2", NULL};
    const char *const *nodes[] = {head, other};
    CU_ASSERT_EQUAL_FATAL(start_cluster(nodes, 2), 0);
    enum { N = 10000 };
    static rayc_ref refs[N];
    int64_t start = rc_mono_ms();
    for (int64_t i = 0; i < N; i++) {
        int64_t one = 1;
        rayc_arg args[] = {RAYC_ARG_VALUE(&i, 8), RAYC_ARG_VALUE(&one, 8)};
        CU_ASSERT_EQUAL_FATAL(rayc_submit("add", args, 2, NULL, &refs[i]), 0);
    }
    static rayc_object outs[N];
    CU_ASSERT_EQUAL(rayc_get(refs, N, 120000, outs), 0);
    int wrong = 0;
    for (int64_t i = 0; i < N; i++) {
        int64_t v = -1;
        if (!outs[i].error && outs[i].size == 8)
            memcpy(&v, outs[i].data, 8);
        wrong += v != i + 1;
    }
    CU_ASSERT_EQUAL(wrong, 0);
    fprintf(stderr, "\n  %d tasks in %lld ms\n", N, (long long)(rc_mono_ms() - start));
    rayc_object_release(outs, N);
    for (int i = 0; i < N; i++)
        rayc_ref_release(&refs[i]);

    /* Two results from one task; refs passed as arguments. */
    rayc_ref two[2], chained;
    rayc_task_options o;
    rayc_task_options_init(&o);
    o.num_returns = 2;
    rayc_arg a[] = {RAYC_ARG_VALUE("hello", 5)};
    CU_ASSERT_EQUAL(rayc_submit("two", a, 1, &o, two), 0);
    rayc_arg b[] = {RAYC_ARG_REF(&two[1]), RAYC_ARG_REF(&two[1])};
    CU_ASSERT_EQUAL(rayc_submit("add", b, 2, NULL, &chained), 0);
    rayc_error e;
    CU_ASSERT_EQUAL(get_i64(&chained, &e), 10);
    rayc_object first;
    CU_ASSERT_EQUAL(rayc_get(&two[0], 1, 10000, &first), 0);
    CU_ASSERT_EQUAL(first.size, 5);
    CU_ASSERT(first.data && !memcmp(first.data, "hello", 5));
    rayc_object_release(&first, 1);
    /* A put used as an argument. */
    int64_t forty = 40, two_i = 2;
    rayc_ref put, sum;
    CU_ASSERT_EQUAL(rayc_put(&forty, 8, &put), 0);
    rayc_arg c[] = {RAYC_ARG_REF(&put), RAYC_ARG_VALUE(&two_i, 8)};
    CU_ASSERT_EQUAL(rayc_submit("add", c, 2, NULL, &sum), 0);
    CU_ASSERT_EQUAL(get_i64(&sum, &e), 42);
    stop_cluster();
}

static void test_nested_tasks(void)
{
    /* One CPU: the parent must lend its CPU back while it waits for its children. */
    const char *head[] = {"--head", "--num-cpus", "1", NULL};
    const char *const *nodes[] = {head};
    CU_ASSERT_EQUAL_FATAL(start_cluster(nodes, 1), 0);
    int64_t n = 50;
    rayc_arg a[] = {RAYC_ARG_VALUE(&n, 8)};
    rayc_ref ref;
    CU_ASSERT_EQUAL(rayc_submit("fan_out", a, 1, NULL, &ref), 0);
    rayc_error e;
    CU_ASSERT_EQUAL(get_i64(&ref, &e), 50 * 51 / 2);
    CU_ASSERT_EQUAL(e, RAYC_OK);
    stop_cluster();
}

static void test_large_objects_across_nodes(void)
{
    const char *head[] = {"--head", "--num-cpus", "1", "--resources", "{\"A\": 1}", "--object-store-memory", "400MiB", NULL};
    const char *other[] = {"--num-cpus", "1", "--resources", "{\"B\": 1}", "--object-store-memory", "400MiB", NULL};
    const char *const *nodes[] = {head, other};
    CU_ASSERT_EQUAL_FATAL(start_cluster(nodes, 2), 0);
    int64_t size = 100 * 1024 * 1024, seed = 7;
    rayc_task_options on_a, on_b;
    rayc_task_options_init(&on_a);
    on_a.resources[0] = (rayc_resource){"A", 1};
    on_a.n_resources = 1;
    rayc_task_options_init(&on_b);
    on_b.resources[0] = (rayc_resource){"B", 1};
    on_b.n_resources = 1;
    rayc_arg args[] = {RAYC_ARG_VALUE(&size, 8), RAYC_ARG_VALUE(&seed, 8)};
    rayc_ref blob, checked;
    CU_ASSERT_EQUAL(rayc_submit("big", args, 2, &on_a, &blob), 0);
    rayc_arg check_args[] = {RAYC_ARG_REF(&blob), RAYC_ARG_VALUE(&seed, 8)};
    CU_ASSERT_EQUAL(rayc_submit("check_big", check_args, 2, &on_b, &checked), 0);
    rayc_error e;
    CU_ASSERT_EQUAL(get_i64(&checked, &e), size);
    /* The driver reads it too (zero-copy from its node's store). */
    rayc_object o;
    CU_ASSERT_EQUAL(rayc_get(&blob, 1, 60000, &o), 0);
    CU_ASSERT_EQUAL(o.error, RAYC_OK);
    CU_ASSERT_EQUAL(o.size, (size_t)size);
    int bad = 0;
    for (size_t i = 0; o.data && i < o.size; i += 4093)
        bad += ((const uint8_t *)o.data)[i] != (uint8_t)((i * 31 + 7) & 0xff);
    CU_ASSERT_EQUAL(bad, 0);
    rayc_object_release(&o, 1);
    /* A large put read on the other node. */
    uint8_t *buf = malloc((size_t)size);
    for (int64_t i = 0; i < size; i++)
        buf[i] = (uint8_t)((i * 31 + 9) & 0xff);
    rayc_ref put, checked2;
    CU_ASSERT_EQUAL(rayc_put(buf, (size_t)size, &put), 0);
    free(buf);
    int64_t seed9 = 9;
    rayc_arg c2[] = {RAYC_ARG_REF(&put), RAYC_ARG_VALUE(&seed9, 8)};
    CU_ASSERT_EQUAL(rayc_submit("check_big", c2, 2, &on_b, &checked2), 0);
    CU_ASSERT_EQUAL(get_i64(&checked2, &e), size);
    rayc_ref_release(&blob);
    rayc_ref_release(&put);
    stop_cluster();
}

static void get_text(const rayc_ref *ref, char *out, size_t len)
{
    rayc_object o;
    out[0] = '\0';
    if (rayc_get(ref, 1, 30000, &o) == 0 && !o.error)
        snprintf(out, len, "%.*s", (int)o.size, (const char *)o.data);
    else
        snprintf(out, len, "error: %s", o.error_message ? o.error_message : "timeout");
    rayc_object_release(&o, 1);
}

static void test_gpu_assignment(void)
{
    const char *head[] = {"--head", "--num-cpus", "4", "--num-gpus", "2", "--accelerator-type", "A100", NULL};
    const char *const *nodes[] = {head};
    CU_ASSERT_EQUAL_FATAL(start_cluster(nodes, 1), 0);
    rayc_task_options o;
    rayc_task_options_init(&o);
    o.num_gpus = 1;
    o.accelerator_type = "A100";
    rayc_ref r1, r2, cpu;
    CU_ASSERT_EQUAL(rayc_submit("gpu_env", NULL, 0, &o, &r1), 0);
    char a[256], b[256], c[256];
    get_text(&r1, a, sizeof(a));
    /* "<CUDA_VISIBLE_DEVICES>|<rayc_get_gpu_ids>|<OMP_NUM_THREADS>": one GPU, the same in both. */
    char dev[8];
    CU_ASSERT(sscanf(a, "%7[0-9]|", dev) == 1);
    char expect[64];
    snprintf(expect, sizeof(expect), "%s|%s|1", dev, dev);
    CU_ASSERT_STRING_EQUAL(a, expect);
    o.num_gpus = 2;
    CU_ASSERT_EQUAL(rayc_submit("gpu_env", NULL, 0, &o, &r2), 0);
    get_text(&r2, b, sizeof(b));
    CU_ASSERT(!strncmp(b, "0,1|0,1|", 8) || !strncmp(b, "1,0|1,0|", 8));
    rayc_task_options co;
    rayc_task_options_init(&co);
    co.num_cpus = 2;
    CU_ASSERT_EQUAL(rayc_submit("gpu_env", NULL, 0, &co, &cpu), 0);
    get_text(&cpu, c, sizeof(c));
    CU_ASSERT_STRING_EQUAL(c, "||2");
    fprintf(stderr, "\n  1 GPU: %s; 2 GPUs: %s; CPU: %s\n", a, b, c);
    stop_cluster();
}

static void test_unschedulable_explains(void)
{
    const char *head[] = {"--head", "--num-cpus", "2", "--num-gpus", "1", "--accelerator-type", "A100", NULL};
    const char *const *nodes[] = {head};
    CU_ASSERT_EQUAL_FATAL(start_cluster(nodes, 1), 0);
    rayc_task_options o;
    rayc_task_options_init(&o);
    o.num_gpus = 1;
    o.accelerator_type = "H100";
    rayc_ref r;
    CU_ASSERT_EQUAL(rayc_submit("echo", NULL, 0, &o, &r), 0);
    rayc_object out;
    CU_ASSERT_EQUAL(rayc_get(&r, 1, 30000, &out), 0);
    CU_ASSERT_EQUAL(out.error, RAYC_ERR_UNSCHEDULABLE);
    CU_ASSERT_PTR_NOT_NULL(out.error_message && strstr(out.error_message, "H100"));
    fprintf(stderr, "\n  %s\n", out.error_message ? out.error_message : "(none)");
    rayc_object_release(&out, 1);
    /* Invalid requests are refused at submit. */
    rayc_task_options bad;
    rayc_task_options_init(&bad);
    bad.num_gpus = 1.5;
    CU_ASSERT_EQUAL(rayc_submit("echo", NULL, 0, &bad, &r), RC_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(rayc_last_error(), "whole"));
    rayc_task_options_init(&bad);
    bad.label_selector = "region: in(";
    CU_ASSERT_EQUAL(rayc_submit("echo", NULL, 0, &bad, &r), RC_EINVAL);
    stop_cluster();
}

static void test_failures_and_retries(void)
{
    const char *head[] = {"--head", "--num-cpus", "2", NULL};
    const char *const *nodes[] = {head};
    CU_ASSERT_EQUAL_FATAL(start_cluster(nodes, 1), 0);
    rayc_error e;
    /* Killed on the first attempt, succeeds on the retry. */
    char marker[300];
    snprintf(marker, sizeof(marker), "%s/crash-marker", C.root);
    rayc_arg m[] = {RAYC_ARG_VALUE(marker, strlen(marker))};
    rayc_ref once;
    CU_ASSERT_EQUAL(rayc_submit("crash_once", m, 1, NULL, &once), 0);
    char text[512];
    get_text(&once, text, sizeof(text));
    CU_ASSERT_STRING_EQUAL(text, "survived");
    /* Always killed: max_retries = 2 attempts more, then WORKER_DIED. */
    rayc_task_options o;
    rayc_task_options_init(&o);
    o.max_retries = 2;
    rayc_ref always;
    CU_ASSERT_EQUAL(rayc_submit("crash", NULL, 0, &o, &always), 0);
    rayc_object out;
    CU_ASSERT_EQUAL(rayc_get(&always, 1, 60000, &out), 0);
    CU_ASSERT_EQUAL(out.error, RAYC_ERR_WORKER_DIED);
    CU_ASSERT_PTR_NOT_NULL(out.error_message && strstr(out.error_message, "max_retries=2"));
    rayc_object_release(&out, 1);
    /* An application error is a value naming the task and node, not retried. */
    rayc_ref f;
    CU_ASSERT_EQUAL(rayc_submit("fail", m, 1, NULL, &f), 0);
    CU_ASSERT_EQUAL(rayc_get(&f, 1, 30000, &out), 0);
    CU_ASSERT_EQUAL(out.error, RAYC_ERR_TASK_FAILED);
    CU_ASSERT_PTR_NOT_NULL(out.error_message && strstr(out.error_message, "failing on purpose with 1 arguments"));
    CU_ASSERT_PTR_NOT_NULL(out.error_message && strstr(out.error_message, "task 'fail' failed on node"));
    rayc_object_release(&out, 1);
    /* An error passed on: a task whose argument is an error fails with it. */
    rayc_ref dependent;
    rayc_arg dep[] = {RAYC_ARG_REF(&f)};
    CU_ASSERT_EQUAL(rayc_submit("echo", dep, 1, NULL, &dependent), 0);
    CU_ASSERT_EQUAL(rayc_get(&dependent, 1, 30000, &out), 0);
    CU_ASSERT_EQUAL(out.error, RAYC_ERR_TASK_FAILED);
    rayc_object_release(&out, 1);
    /* A function nobody registered. */
    rayc_ref missing;
    CU_ASSERT_EQUAL(rayc_submit("no_such_function", NULL, 0, NULL, &missing), 0);
    CU_ASSERT_EQUAL(rayc_get(&missing, 1, 30000, &out), 0);
    CU_ASSERT_PTR_NOT_NULL(out.error_message && strstr(out.error_message, "no_such_function"));
    rayc_object_release(&out, 1);
    (void)e;
    stop_cluster();
}

static void test_get_timeout_and_wait(void)
{
    const char *head[] = {"--head", "--num-cpus", "2", NULL};
    const char *const *nodes[] = {head};
    CU_ASSERT_EQUAL_FATAL(start_cluster(nodes, 1), 0);
    int64_t long_ms = 3000, short_ms = 10;
    rayc_arg la[] = {RAYC_ARG_VALUE(&long_ms, 8)}, sa[] = {RAYC_ARG_VALUE(&short_ms, 8)};
    rayc_ref refs[2];
    CU_ASSERT_EQUAL(rayc_submit("sleep_ms", la, 1, NULL, &refs[0]), 0);
    CU_ASSERT_EQUAL(rayc_submit("sleep_ms", sa, 1, NULL, &refs[1]), 0);
    uint8_t ready[2] = {0, 0};
    CU_ASSERT_EQUAL(rayc_wait(refs, 2, 1, 10000, 0, ready), 0);
    CU_ASSERT(ready[1] == 1 && ready[0] == 0);
    rayc_object o;
    CU_ASSERT_EQUAL(rayc_get(&refs[0], 1, 100, &o), RC_ETIMEDOUT);
    CU_ASSERT_EQUAL(o.error, RAYC_ERR_TIMEOUT);
    rayc_object_release(&o, 1);
    CU_ASSERT_EQUAL(rayc_wait(refs, 2, 2, 10000, 1, ready), 0);
    CU_ASSERT(ready[0] == 1 && ready[1] == 1);
    /* Cancel a task that is still waiting for a CPU. */
    rayc_ref hog[2], queued;
    CU_ASSERT_EQUAL(rayc_submit("sleep_ms", la, 1, NULL, &hog[0]), 0);
    CU_ASSERT_EQUAL(rayc_submit("sleep_ms", la, 1, NULL, &hog[1]), 0);
    rc_sleep_ms(300);
    CU_ASSERT_EQUAL(rayc_submit("sleep_ms", sa, 1, NULL, &queued), 0);
    rc_sleep_ms(100);
    CU_ASSERT_EQUAL(rayc_cancel(&queued, 0), 0);
    CU_ASSERT_EQUAL(rayc_get(&queued, 1, 10000, &o), 0);
    CU_ASSERT_EQUAL(o.error, RAYC_ERR_CANCELLED);
    rayc_object_release(&o, 1);
    stop_cluster();
}

static void test_raylet_killed_tasks_finish_elsewhere(void)
{
    const char *head[] = {"--head", "--num-cpus", "2", NULL};
    const char *other[] = {"--num-cpus", "2", NULL};
    const char *const *nodes[] = {head, other};
    fast_health_checks(1);
    CU_ASSERT_EQUAL_FATAL(start_cluster(nodes, 2), 0);
    /* Spread long tasks over both nodes, then kill the second raylet under them. */
    rayc_task_options o;
    rayc_task_options_init(&o);
    o.strategy = RAYC_STRATEGY_SPREAD;
    int64_t ms = 1500;
    rayc_arg a[] = {RAYC_ARG_VALUE(&ms, 8)};
    rayc_ref refs[4];
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(rayc_submit("where", NULL, 0, &o, &refs[i]), 0);
    rayc_ref slow[4];
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(rayc_submit("sleep_ms", a, 1, &o, &slow[i]), 0);
    rc_sleep_ms(500);
    harness_raylet_signal(&C, 1, SIGKILL);
    rayc_object outs[4];
    CU_ASSERT_EQUAL(rayc_get(slow, 4, 60000, outs), 0);
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(outs[i].error, RAYC_OK);
    rayc_object_release(outs, 4);
    stop_cluster();
}

static const unit_case cases[] = {
    UNIT_CASE(test_many_small_tasks),
    UNIT_CASE(test_nested_tasks),
    UNIT_CASE(test_large_objects_across_nodes),
    UNIT_CASE(test_gpu_assignment),
    UNIT_CASE(test_unschedulable_explains),
    UNIT_CASE(test_failures_and_retries),
    UNIT_CASE(test_get_timeout_and_wait),
    UNIT_CASE(test_raylet_killed_tasks_finish_elsewhere),
};

int main(void)
{
    return unit_run("tasks", cases, UNIT_N(cases));
}
