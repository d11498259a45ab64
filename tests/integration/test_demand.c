/*
 * Pending demand is exactly the work that waits: after jobs end, however they end, the
 * cluster's demand (GetAllResourceUsage: resource_load_by_shape and placement_group_load)
 * and `rayc status`'s Demands are empty and stay empty.
 *
 * A secure GCS and three raylets on loopback (2 CPUs each; drivers attach to the head, so
 * most of their leases spill back to the other two). Each job is a driver process: this
 * test binary run again with --driver <mode> (see driver_main), so it can exit on its own
 * or be killed with SIGKILL while it has queued work. Modes:
 *
 *   spread      many one-CPU tasks and nested tasks (workers as owners), spread over all
 *               raylets by spillback; everything is fetched, then the driver exits.
 *   cancel      tasks cancelled while they wait in the owner's queue and at the raylet.
 *   infeasible  a task and an actor no node can ever hold; the driver exits with both
 *               still pending.
 *   killed      a long queue of tasks; the test kills the driver with SIGKILL.
 *
 * While the work waits the demand must show it (so a demand API that always reads zero
 * cannot pass); once the jobs are gone it must read zero within a bounded wait, and keep
 * reading zero across more than two report periods.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster.h"
#include "gcs_client.h"
#include "gcs_service.pb-c.h"
#include "rayc.h"
#include "rc_config.h"
#include "rc_time.h"
#include "unit.h"

enum {
    SETTLE_MS = 30000, /* bound on the wait for demand to drain */
    HOLD_MS = 2500,    /* > two report periods (raylet_report_keepalive_ms = 1000) */
};

static harness_cluster C;
static char self_exe[PATH_MAX];

/* ---- the drivers ------------------------------------------------------------------------ */

static int driver_init(const char *address)
{
    rayc_init_options opts;
    rayc_init_options_init(&opts);
    opts.address = address;
    opts.code_search_path = TASK_LIB ":" ACTOR_LIB;
    if (rayc_init(&opts) != 0) {
        fprintf(stderr, "driver: rayc_init: %s\n", rayc_last_error());
        return -1;
    }
    return 0;
}

static int submit_sleep(int64_t ms, const rayc_task_options *o, rayc_ref *out)
{
    rayc_arg a[] = {RAYC_ARG_VALUE(&ms, 8)};
    return rayc_submit("sleep_ms", a, 1, o, out);
}

/* Gets refs; returns how many failed (timeouts included). */
static int driver_get_all(rayc_ref *refs, int n)
{
    int failed = 0;
    for (int i = 0; i < n; i++) {
        rayc_object o;
        if (rayc_get(&refs[i], 1, 120000, &o) != 0) {
            failed++;
            continue;
        }
        failed += o.error != RAYC_OK;
        rayc_object_release(&o, 1);
    }
    return failed;
}

static int driver_spread(void)
{
    enum { N = 120 };
    static rayc_ref refs[N + 4];
    for (int i = 0; i < N; i++)
        if (submit_sleep(20 + i % 7, NULL, &refs[i]) != 0)
            return 1;
    /* Nested: workers on whichever node own the children they submit. */
    for (int i = 0; i < 4; i++) {
        int64_t kids = 12;
        rayc_arg a[] = {RAYC_ARG_VALUE(&kids, 8)};
        if (rayc_submit("fan_out", a, 1, NULL, &refs[N + i]) != 0)
            return 1;
    }
    int failed = driver_get_all(refs, N + 4);
    if (failed)
        fprintf(stderr, "driver spread: %d tasks failed\n", failed);
    return failed ? 1 : 0;
}

static int driver_cancel(void)
{
    enum { N = 60, KEEP = 12 };
    static rayc_ref refs[N];
    for (int i = 0; i < N; i++)
        if (submit_sleep(300, NULL, &refs[i]) != 0)
            return 1;
    rc_sleep_ms(400); /* some lease requests are held at the raylets by now */
    for (int i = KEEP; i < N; i++)
        rayc_cancel(&refs[i], 0);
    int failed = driver_get_all(refs, KEEP);
    int cancelled = 0;
    for (int i = KEEP; i < N; i++) {
        rayc_object o;
        if (rayc_get(&refs[i], 1, 60000, &o) == 0) {
            cancelled += o.error == RAYC_ERR_CANCELLED;
            rayc_object_release(&o, 1);
        }
    }
    if (failed || !cancelled)
        fprintf(stderr, "driver cancel: %d kept tasks failed, %d cancelled\n", failed, cancelled);
    return failed || !cancelled;
}

static int driver_infeasible(void)
{
    rayc_task_options o;
    rayc_task_options_init(&o);
    o.resources[0] = (rayc_resource){"no_such_resource", 1};
    o.n_resources = 1;
    rayc_ref ref;
    if (submit_sleep(1, &o, &ref) != 0)
        return 1;
    rayc_actor_options ao;
    rayc_actor_options_init(&ao);
    ao.resources[0] = (rayc_resource){"no_such_resource", 2};
    ao.n_resources = 1;
    rayc_actor actor;
    if (rayc_actor_create("Counter", NULL, 0, &ao, &actor) != 0) {
        fprintf(stderr, "driver infeasible: rayc_actor_create: %s\n", rayc_last_error());
        return 1;
    }
    printf("pending\n");
    fflush(stdout);
    /* Wait until the test has seen the demand (it closes our stdin), then leave. */
    char c;
    while (read(0, &c, 1) > 0)
        ;
    return 0;
}

static int driver_killed(void)
{
    enum { N = 200 };
    static rayc_ref refs[N];
    for (int i = 0; i < N; i++)
        if (submit_sleep(500, NULL, &refs[i]) != 0)
            return 1;
    printf("pending\n");
    fflush(stdout);
    for (;;)
        pause(); /* until SIGKILL */
}

static int driver_main(const char *mode, const char *address)
{
    if (driver_init(address) < 0)
        return 2;
    int rc = !strcmp(mode, "spread")       ? driver_spread()
             : !strcmp(mode, "cancel")     ? driver_cancel()
             : !strcmp(mode, "infeasible") ? driver_infeasible()
             : !strcmp(mode, "killed")     ? driver_killed()
                                           : 2;
    rayc_shutdown();
    return rc;
}

/* ---- the test's side -------------------------------------------------------------------- */

typedef struct driver {
    pid_t pid;
    FILE *out;   /* its stdout */
    int in_fd;   /* its stdin (closed to let an "infeasible" driver go) */
} driver;

static int driver_start(driver *d, const char *mode)
{
    int out[2], in[2];
    if (pipe(out) || pipe(in))
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        execl(self_exe, self_exe, "--driver", mode, C.gcs_address, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    d->pid = pid;
    d->in_fd = in[1];
    d->out = fdopen(out[0], "r");
    return 0;
}

/* Waits for a line from d ("pending"); 0 when it came. */
static int driver_wait_line(driver *d)
{
    char line[64];
    return fgets(line, sizeof(line), d->out) ? 0 : -1;
}

/* Reaps d; returns its exit status (128 + signal when killed). */
static int driver_reap(driver *d)
{
    int st = 0;
    if (d->in_fd >= 0)
        close(d->in_fd);
    d->in_fd = -1;
    waitpid(d->pid, &st, 0);
    fclose(d->out);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

typedef struct demand {
    uint64_t ready, infeasible, backlog, pgs;
    size_t shapes;
    char text[1024]; /* what is pending, for the failure message */
} demand;

/* The cluster's demand as GetAllResourceUsage sums it; 0, or -1 if the call failed. */
static int read_demand(gcs_client *gcs, demand *out)
{
    memset(out, 0, sizeof(*out));
    Ray__Rpc__GetAllResourceUsageRequest req = RAY__RPC__GET_ALL_RESOURCE_USAGE_REQUEST__INIT;
    ProtobufCMessage *reply = NULL;
    if (rpc_client_call_sync(gcs_client_rpc(gcs), &ray__rpc__node_resource_info_gcs_service__descriptor,
                             "GetAllResourceUsage", &req.base, 5000, &reply, NULL, 0) != GRPC_STATUS_OK)
        return -1;
    const Ray__Rpc__ResourceUsageBatchData *u = ((Ray__Rpc__GetAllResourceUsageReply *)reply)->resource_usage_data;
    const Ray__Rpc__ResourceLoad *load = u ? u->resource_load_by_shape : NULL;
    size_t len = 0;
    for (size_t i = 0; load && i < load->n_resource_demands; i++) {
        const Ray__Rpc__ResourceDemand *d = load->resource_demands[i];
        out->shapes++;
        out->ready += d->num_ready_requests_queued;
        out->infeasible += d->num_infeasible_requests_queued;
        out->backlog += (uint64_t)d->backlog_size;
        len += (size_t)snprintf(out->text + len, sizeof(out->text) - len, "{");
        for (size_t k = 0; k < d->n_shape && len < sizeof(out->text); k++)
            len += (size_t)snprintf(out->text + len, sizeof(out->text) - len, "%s%s: %g", k ? ", " : "",
                                    d->shape[k]->key, d->shape[k]->value);
        if (len < sizeof(out->text))
            len += (size_t)snprintf(out->text + len, sizeof(out->text) - len, "}: ready %llu infeasible %llu backlog %lld; ",
                                    (unsigned long long)d->num_ready_requests_queued,
                                    (unsigned long long)d->num_infeasible_requests_queued, (long long)d->backlog_size);
        if (len >= sizeof(out->text))
            len = sizeof(out->text) - 1;
    }
    if (u && u->placement_group_load)
        out->pgs = u->placement_group_load->n_placement_group_data;
    rpc_msg_free(reply);
    return 0;
}

static uint64_t demand_total(const demand *d)
{
    return d->ready + d->infeasible + d->backlog + d->pgs;
}

/* `rayc status` prints no demand. */
static int status_shows_no_demand(char *out, size_t outlen)
{
    char cmd[PATH_MAX + 256];
    snprintf(cmd, sizeof(cmd), "'%s/rayc' status --address %s 2>&1", C.bin, C.gcs_address);
    FILE *p = popen(cmd, "r");
    if (!p)
        return 0;
    size_t n = fread(out, 1, outlen - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 && strstr(out, "(no resource demands)") &&
           !strstr(out, "pending tasks/actors");
}

/* Polls until the demand holds at least min in all (work is seen waiting), min_infeasible
 * of it infeasible; 1 when it did. */
static int wait_demand_at_least(gcs_client *gcs, uint64_t min, uint64_t min_infeasible, demand *d)
{
    int64_t deadline = rc_mono_ms() + SETTLE_MS;
    while (rc_mono_ms() < deadline) {
        if (read_demand(gcs, d) == 0 && demand_total(d) >= min && d->infeasible >= min_infeasible)
            return 1;
        rc_sleep_ms(100);
    }
    fprintf(stderr, "\n  waited for %llu pending (%llu infeasible); the demand is: %s\n", (unsigned long long)min,
            (unsigned long long)min_infeasible, d->text);
    return 0;
}

/* The heart of every case: demand drains to zero within SETTLE_MS and stays zero for
 * HOLD_MS, in the API and in `rayc status`. */
static void assert_demand_drains(gcs_client *gcs, const char *after)
{
    demand d;
    char status[8192] = "";
    int64_t start = rc_mono_ms(), zero_since = -1;
    int held = 0;
    while (rc_mono_ms() - start < SETTLE_MS + HOLD_MS) {
        int ok = read_demand(gcs, &d) == 0 && demand_total(&d) == 0 && d.shapes == 0;
        if (ok && zero_since < 0) {
            ok = status_shows_no_demand(status, sizeof(status));
            if (ok)
                zero_since = rc_mono_ms();
        } else if (!ok) {
            if (zero_since >= 0)
                fprintf(stderr, "\n  demand came back after %s: %s\n", after, d.text);
            zero_since = -1;
            if (rc_mono_ms() - start > SETTLE_MS)
                break;
        }
        if (zero_since >= 0 && rc_mono_ms() - zero_since >= HOLD_MS) {
            held = status_shows_no_demand(status, sizeof(status));
            break;
        }
        rc_sleep_ms(100);
    }
    if (!held) {
        status_shows_no_demand(status, sizeof(status));
        fprintf(stderr, "\n  after %s the demand did not drain and hold: %llu ready, %llu infeasible, %llu backlog, "
                        "%llu placement groups (%s)\n  rayc status:\n%s\n",
                after, (unsigned long long)d.ready, (unsigned long long)d.infeasible, (unsigned long long)d.backlog,
                (unsigned long long)d.pgs, d.text, status);
    }
    CU_ASSERT(held);
}

/* CPUs free on all nodes, and in all, from the nodes' last reports. */
static int read_cpus(gcs_client *gcs, double *avail, double *total)
{
    *avail = *total = 0;
    Ray__Rpc__GetAllResourceUsageRequest req = RAY__RPC__GET_ALL_RESOURCE_USAGE_REQUEST__INIT;
    ProtobufCMessage *reply = NULL;
    if (rpc_client_call_sync(gcs_client_rpc(gcs), &ray__rpc__node_resource_info_gcs_service__descriptor,
                             "GetAllResourceUsage", &req.base, 5000, &reply, NULL, 0) != GRPC_STATUS_OK)
        return -1;
    const Ray__Rpc__ResourceUsageBatchData *u = ((Ray__Rpc__GetAllResourceUsageReply *)reply)->resource_usage_data;
    for (size_t i = 0; u && i < u->n_batch; i++) {
        const Ray__Rpc__ResourcesData *d = u->batch[i];
        for (size_t k = 0; k < d->n_resources_available; k++)
            if (!strcmp(d->resources_available[k]->key, "CPU"))
                *avail += d->resources_available[k]->value;
        for (size_t k = 0; k < d->n_resources_total; k++)
            if (!strcmp(d->resources_total[k]->key, "CPU"))
                *total += d->resources_total[k]->value;
    }
    rpc_msg_free(reply);
    return 0;
}

/* Every CPU of the cluster is free again within SETTLE_MS (leases of dead owners were given
 * back), so the nodes can look idle to the market. */
static void assert_cpus_come_back(gcs_client *gcs, const char *after)
{
    double avail = 0, total = 0;
    int64_t deadline = rc_mono_ms() + SETTLE_MS;
    while (rc_mono_ms() < deadline) {
        if (read_cpus(gcs, &avail, &total) == 0 && total > 0 && avail == total)
            return;
        rc_sleep_ms(100);
    }
    fprintf(stderr, "\n  after %s only %g of %g CPUs are free\n", after, avail, total);
    CU_FAIL("the CPUs did not come back");
}

/* 1 when the GCS's job table holds no job that is still running. */
static int no_running_jobs(gcs_client *gcs)
{
    Ray__Rpc__GetAllJobInfoRequest req = RAY__RPC__GET_ALL_JOB_INFO_REQUEST__INIT;
    ProtobufCMessage *reply = NULL;
    if (rpc_client_call_sync(gcs_client_rpc(gcs), &ray__rpc__job_info_gcs_service__descriptor, "GetAllJobInfo",
                             &req.base, 5000, &reply, NULL, 0) != GRPC_STATUS_OK)
        return 0;
    const Ray__Rpc__GetAllJobInfoReply *r = (const void *)reply;
    int running = 0;
    for (size_t i = 0; i < r->n_job_info_list; i++)
        running += !r->job_info_list[i]->is_dead;
    rpc_msg_free(reply);
    return running == 0;
}

/* ---- cases ------------------------------------------------------------------------------ */

static uv_loop_t loop;
static rpc_ctx *rpc;
static gcs_client *gcs;

static void test_start_cluster(void)
{
    CU_ASSERT_EQUAL_FATAL(harness_cluster_init(&C, 0), 0);
    CU_ASSERT_EQUAL_FATAL(harness_gcs_start(&C), 0);
    const char *head[] = {"--head", "--num-cpus", "2", NULL};
    const char *other[] = {"--num-cpus", "2", NULL};
    int idx;
    CU_ASSERT_EQUAL_FATAL(harness_raylet_start(&C, head, &idx), 0);
    CU_ASSERT_EQUAL_FATAL(harness_raylet_start(&C, other, &idx), 0);
    CU_ASSERT_EQUAL_FATAL(harness_raylet_start(&C, other, &idx), 0);
    uv_loop_init(&loop);
    CU_ASSERT_EQUAL_FATAL(rpc_ctx_create(&loop, &rpc), 0);
    CU_ASSERT_EQUAL_FATAL(gcs_client_create(rpc, C.gcs_address, &gcs), 0);
    char err[300];
    CU_ASSERT_EQUAL_FATAL(gcs_client_connect_sync(gcs, 10000, err, sizeof(err)), 0);
    demand d;
    CU_ASSERT_EQUAL(read_demand(gcs, &d), 0);
    CU_ASSERT_EQUAL(demand_total(&d), 0);
}

/* Two jobs at once, their tasks spread over all raylets by spillback, nested tasks too. */
static void test_jobs_spread_by_spillback(void)
{
    driver a, b;
    CU_ASSERT_EQUAL_FATAL(driver_start(&a, "spread"), 0);
    CU_ASSERT_EQUAL_FATAL(driver_start(&b, "spread"), 0);
    CU_ASSERT_EQUAL(driver_reap(&a), 0);
    CU_ASSERT_EQUAL(driver_reap(&b), 0);
    assert_demand_drains(gcs, "two jobs of spilled-back tasks finished");
}

static void test_tasks_cancelled_while_queued(void)
{
    driver a;
    CU_ASSERT_EQUAL_FATAL(driver_start(&a, "cancel"), 0);
    CU_ASSERT_EQUAL(driver_reap(&a), 0);
    assert_demand_drains(gcs, "a job cancelled its queued tasks");
}

static void test_infeasible_work_of_an_exited_driver(void)
{
    driver a;
    CU_ASSERT_EQUAL_FATAL(driver_start(&a, "infeasible"), 0);
    CU_ASSERT_EQUAL_FATAL(driver_wait_line(&a), 0);
    demand d;
    /* The task at the raylet and the actor held back by the GCS: both infeasible. */
    CU_ASSERT(wait_demand_at_least(gcs, 2, 2, &d));
    CU_ASSERT_EQUAL(driver_reap(&a), 0);
    assert_demand_drains(gcs, "a driver with infeasible work exited");
}

static void test_driver_killed_with_queued_work(void)
{
    driver a;
    CU_ASSERT_EQUAL_FATAL(driver_start(&a, "killed"), 0);
    CU_ASSERT_EQUAL_FATAL(driver_wait_line(&a), 0);
    demand d;
    CU_ASSERT(wait_demand_at_least(gcs, 50, 0, &d));
    rc_sleep_ms(1500); /* backlog reports and spilled requests have reached every raylet */
    kill(a.pid, SIGKILL);
    CU_ASSERT_EQUAL(driver_reap(&a), 128 + SIGKILL);
    assert_demand_drains(gcs, "a driver with 200 queued tasks was killed with SIGKILL");
    /* Its job is finished (the raylet reported the driver dead) and the workers it had
     * leased on every node are let go. */
    int64_t deadline = rc_mono_ms() + SETTLE_MS;
    while (!no_running_jobs(gcs) && rc_mono_ms() < deadline)
        rc_sleep_ms(100);
    CU_ASSERT(no_running_jobs(gcs));
    assert_cpus_come_back(gcs, "a driver with leased workers on every node was killed with SIGKILL");
}

/* After everything, once more: the jobs that ended earlier left nothing behind either. */
static void test_stop_cluster(void)
{
    assert_demand_drains(gcs, "all jobs");
    gcs_client_destroy(gcs);
    rpc_ctx_destroy(rpc);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    harness_cluster_destroy(&C);
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "--driver"))
        return driver_main(argv[2], argv[3]);
    ssize_t n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
    if (n <= 0)
        return 2;
    self_exe[n] = '\0';
    setenv("RAYC_CODE_SEARCH_PATH", TASK_LIB ":" ACTOR_LIB, 1);
    rc_config_init();
    static const unit_case cases[] = {
        UNIT_CASE(test_start_cluster),
        UNIT_CASE(test_jobs_spread_by_spillback),
        UNIT_CASE(test_tasks_cancelled_while_queued),
        UNIT_CASE(test_infeasible_work_of_an_exited_driver),
        UNIT_CASE(test_driver_killed_with_queued_work),
        UNIT_CASE(test_stop_cluster),
    };
    return unit_run("demand", cases, UNIT_N(cases));
}
