/*
 * The raylet's lease protocol and worker pool against real daemons (rayc-gcs, rayc-raylet)
 * with rayc-fake-worker as the worker program: grants with the right GPU instances and
 * environment, worker reuse by (job, GPU set), fractional GPU packing, queueing, spillback
 * and grant_or_reject, infeasible requests (explained, reported as demand, failed after the
 * timeout, or granted when a suitable node joins), worker death while leased, workers that
 * never register or exit at once, idle worker timeout, prestart, CancelWorkerLease, callers
 * that go away, CPU lending while blocked, owners' backlog and demand in `rayc status`,
 * LocalRayletService registration and bad input, malformed lease requests, and shutdown.
 * Every case ends by stopping its raylets with SIGTERM: they must exit 0 (under the
 * sanitizers: with no report, leaks included).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fake_cluster.h"
#include "core_worker.pb-c.h"
#include "gcs_client.h"
#include "node_manager.pb-c.h"
#include "rayc_raylet.pb-c.h"
#include "rc_alloc.h"
#include "rc_config.h"
#include "rc_ids.h"
#include "rc_time.h"
#include "unit.h"

#ifndef FAKE_WORKER
#error "FAKE_WORKER must name the fake worker program"
#endif

/* ---- cluster and client ------------------------------------------------------------- */

typedef harness_fake tc;

static void quick_config(void)
{
    setenv("RAYC_raylet_report_keepalive_ms", "200", 1);
    setenv("RAYC_raylet_cluster_view_poll_ms", "100", 1);
    setenv("RAYC_prestart_worker_first_driver", "0", 1);
    unsetenv("RAYC_FAKE_WORKER_MODE");
    unsetenv("RAYC_CODE_SEARCH_PATH");
    unsetenv("CUDA_VISIBLE_DEVICES");
    rc_config_init();
}

static int tc_start(tc *t)
{
    quick_config();
    return harness_fake_start(t, 0, FAKE_WORKER, 1);
}

/* Stops every raylet that still runs with SIGTERM: each must leave cleanly (exit 0) and,
 * in sanitizer builds, without a report (leaks are checked at exit). */
static void tc_stop(tc *t)
{
    harness_fake_stop(t, HARNESS_FAKE_CHECK_RAYLETS);
}

/* ---- leases ------------------------------------------------------------------------- */

static const char *worker_hex(const harness_lease *lc, char *hex)
{
    const ProtobufCBinaryData *id = &lc->reply->worker_address->worker_id;
    return rc_id_hex(id->data, id->len, hex);
}

/* Available amount of a resource on raylet ri (GetResourceLoad), -1 if absent. */
static double available(tc *t, int ri, const char *name)
{
    Ray__Rpc__GetResourceLoadRequest req = RAY__RPC__GET_RESOURCE_LOAD_REQUEST__INIT;
    ProtobufCMessage *reply = NULL;
    if (rpc_client_call_sync(t->tcp[ri], &ray__rpc__node_manager_service__descriptor, "GetResourceLoad", &req.base,
                             5000, &reply, NULL, 0) != GRPC_STATUS_OK)
        return -2;
    const Ray__Rpc__ResourcesData *d = ((Ray__Rpc__GetResourceLoadReply *)reply)->resources;
    double v = -1;
    for (size_t i = 0; d && i < d->n_resources_available; i++)
        if (!strcmp(d->resources_available[i]->key, name))
            v = d->resources_available[i]->value;
    rpc_msg_free(reply);
    return v;
}

/* Reads key from the fake worker's report file (waiting up to 5 s for it). */
static int worker_field(tc *t, const char *worker_hex_id, const char *key, char *out, size_t outlen)
{
    char path[PATH_MAX + 128];
    snprintf(path, sizeof(path), "%s/%s.txt", t->fake_dir, worker_hex_id);
    int64_t deadline = rc_mono_ms() + 5000;
    FILE *f;
    while (!(f = fopen(path, "r")) && rc_mono_ms() < deadline)
        rc_sleep_ms(20);
    if (!f)
        return -1;
    char line[4096];
    size_t klen = strlen(key);
    int found = -1;
    while (found < 0 && fgets(line, sizeof(line), f)) {
        if (strncmp(line, key, klen) || line[klen] != '=')
            continue;
        line[strcspn(line, "\n")] = '\0';
        snprintf(out, outlen, "%s", line + klen + 1);
        found = 0;
    }
    fclose(f);
    return found;
}

/* 1 if the fake worker's argv has flag followed by value. */
static int worker_has_arg(tc *t, const char *worker_hex_id, const char *flag, const char *value)
{
    for (int i = 1; i < 30; i++) {
        char key[16], v[PATH_MAX], next[PATH_MAX];
        snprintf(key, sizeof(key), "argv%d", i);
        if (worker_field(t, worker_hex_id, key, v, sizeof(v)) < 0)
            return 0;
        snprintf(key, sizeof(key), "argv%d", i + 1);
        if (!strcmp(v, flag) && worker_field(t, worker_hex_id, key, next, sizeof(next)) == 0 && !strcmp(next, value))
            return 1;
    }
    return 0;
}

/* GPU indices of a grant as "0,1" (from resource_mapping). */
static void gpu_list(const harness_lease *lc, char *out, size_t len)
{
    out[0] = '\0';
    size_t used = 0;
    for (size_t i = 0; i < lc->reply->n_resource_mapping; i++) {
        const Ray__Rpc__ResourceMapEntry *e = lc->reply->resource_mapping[i];
        if (strcmp(e->name, "GPU"))
            continue;
        for (size_t k = 0; k < e->n_resource_ids; k++)
            used += (size_t)snprintf(out + used, len - used, "%s%lld", used ? "," : "", (long long)e->resource_ids[k]->index);
    }
}

static int run_rayc(const harness_cluster *c, const char *args, char *out, size_t outlen)
{
    char cmd[PATH_MAX + 2048];
    snprintf(cmd, sizeof(cmd), "'%s/rayc' %s 2>&1", c->bin, args);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = fread(out, 1, outlen - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- tests -------------------------------------------------------------------------- */

static void test_grant_gpu_env_and_push(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t), 0);
    /* Job 7 is registered with a code search path; other jobs fall back to the raylet's. */
    char *paths[] = {"/opt/a", "/opt/b"};
    Ray__Rpc__JobConfig cfg = RAY__RPC__JOB_CONFIG__INIT;
    cfg.code_search_path = paths;
    cfg.n_code_search_path = 2;
    uint8_t job7[RC_JOB_ID_SIZE];
    harness_job_id(7, job7);
    Ray__Rpc__JobTableData job = RAY__RPC__JOB_TABLE_DATA__INIT;
    job.job_id.data = job7;
    job.job_id.len = sizeof(job7);
    job.config = &cfg;
    Ray__Rpc__AddJobRequest areq = RAY__RPC__ADD_JOB_REQUEST__INIT;
    areq.data = &job;
    ProtobufCMessage *reply = NULL;
    CU_ASSERT_EQUAL(rpc_client_call_sync(gcs_client_rpc(t.gcs), &ray__rpc__job_info_gcs_service__descriptor, "AddJob",
                                         &areq.base, 5000, &reply, NULL, 0),
                    GRPC_STATUS_OK);
    rpc_msg_free(reply);
    setenv("RAYC_CODE_SEARCH_PATH", "/fallback/lib", 1);
    int r0 = harness_fake_raylet(&t, (const char *[]){"--num-cpus", "4", "--num-gpus", "4", NULL});
    unsetenv("RAYC_CODE_SEARCH_PATH");
    CU_ASSERT_EQUAL_FATAL(r0, 0);

    harness_lease a;
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &a, HARNESS_RES({"CPU", 2}, {"GPU", 2}), NULL, 10000));
    CU_ASSERT_FATAL(harness_lease_granted(&a));
    char hex[RC_ID_HEX_MAX], gpus[64], v[PATH_MAX];
    worker_hex(&a, hex);
    gpu_list(&a, gpus, sizeof(gpus));
    CU_ASSERT_EQUAL(strlen(gpus), 3); /* two instances, "i,j" */
    CU_ASSERT_EQUAL(worker_field(&t, hex, "CUDA_VISIBLE_DEVICES", v, sizeof(v)), 0);
    CU_ASSERT_STRING_EQUAL(v, gpus);
    CU_ASSERT_EQUAL(worker_field(&t, hex, "OMP_NUM_THREADS", v, sizeof(v)), 0);
    CU_ASSERT_STRING_EQUAL(v, "2");
    CU_ASSERT_EQUAL(worker_field(&t, hex, "pid", v, sizeof(v)), 0);
    CU_ASSERT_EQUAL(atoi(v), (int)a.reply->worker_pid);
    char sock[PATH_MAX + 64];
    snprintf(sock, sizeof(sock), "%s/sockets/raylet.%.8s.sock", t.session, t.c.raylets[r0].node_id);
    CU_ASSERT(worker_has_arg(&t, hex, "--raylet-socket", sock));
    CU_ASSERT(worker_has_arg(&t, hex, "--node-id", t.c.raylets[r0].node_id));
    CU_ASSERT(worker_has_arg(&t, hex, "--worker-id", hex));
    CU_ASSERT(worker_has_arg(&t, hex, "--job-id", "00000001"));
    CU_ASSERT(worker_has_arg(&t, hex, "--gcs-address", t.c.gcs_address));
    CU_ASSERT(worker_has_arg(&t, hex, "--node-ip-address", "127.0.0.1"));
    CU_ASSERT(worker_has_arg(&t, hex, "--code-search-path", "/fallback/lib"));
    char log[PATH_MAX + 64];
    snprintf(log, sizeof(log), "%s/logs/worker-%.8s.err", t.session, hex);
    CU_ASSERT_EQUAL(access(log, R_OK), 0);
    /* The mapping names concrete instances with whole quantities, and CPU as one amount. */
    int saw_cpu = 0;
    for (size_t i = 0; i < a.reply->n_resource_mapping; i++) {
        const Ray__Rpc__ResourceMapEntry *e = a.reply->resource_mapping[i];
        if (!strcmp(e->name, "GPU")) {
            CU_ASSERT_EQUAL(e->n_resource_ids, 2);
            for (size_t k = 0; k < e->n_resource_ids; k++)
                CU_ASSERT_DOUBLE_EQUAL(e->resource_ids[k]->quantity, 1.0, 1e-9);
        } else if (!strcmp(e->name, "CPU")) {
            saw_cpu = 1;
            CU_ASSERT_DOUBLE_EQUAL(e->resource_ids[0]->quantity, 2.0, 1e-9);
        }
    }
    CU_ASSERT(saw_cpu);
    CU_ASSERT_EQUAL(a.reply->worker_address->node_id.len, RC_NODE_ID_SIZE);

    /* The worker serves PushTask at the granted address. */
    char echoed[64];
    CU_ASSERT_EQUAL(harness_lease_push(&t, &a, "echo", "hello lease", 5000, echoed, sizeof(echoed)), GRPC_STATUS_OK);
    CU_ASSERT_STRING_EQUAL(echoed, "hello lease");

    /* A CPU-only lease: a CPU worker, no GPUs visible, OMP_NUM_THREADS at least 1. */
    harness_lease b;
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &b, HARNESS_RES({"CPU", 0.5}), NULL, 10000) && harness_lease_granted(&b));
    worker_hex(&b, hex);
    CU_ASSERT_EQUAL(worker_field(&t, hex, "CUDA_VISIBLE_DEVICES", v, sizeof(v)), 0);
    CU_ASSERT_STRING_EQUAL(v, "");
    CU_ASSERT_EQUAL(worker_field(&t, hex, "OMP_NUM_THREADS", v, sizeof(v)), 0);
    CU_ASSERT_STRING_EQUAL(v, "1");
    CU_ASSERT_DOUBLE_EQUAL(available(&t, r0, "CPU"), 1.5, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(available(&t, r0, "GPU"), 2.0, 1e-9);

    /* Job 7's workers get the job's code search path from the GCS. */
    harness_lease c;
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &c, HARNESS_RES({"CPU", 1}), &(harness_lease_opts){.job = 7}, 10000) && harness_lease_granted(&c));
    worker_hex(&c, hex);
    CU_ASSERT(worker_has_arg(&t, hex, "--code-search-path", "/opt/a:/opt/b"));
    CU_ASSERT(worker_has_arg(&t, hex, "--job-id", "00000007"));

    CU_ASSERT_EQUAL(harness_lease_return(&t, &a, 0), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(harness_lease_return(&t, &b, 0), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(harness_lease_return(&t, &c, 0), GRPC_STATUS_OK);
    CU_ASSERT_DOUBLE_EQUAL(available(&t, r0, "CPU"), 4.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(available(&t, r0, "GPU"), 4.0, 1e-9);
    harness_lease_free(&a);
    harness_lease_free(&b);
    harness_lease_free(&c);
    tc_stop(&t);
}

static void test_worker_reuse_by_job_and_gpus(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t), 0);
    int r0 = harness_fake_raylet(&t, (const char *[]){"--num-cpus", "4", "--num-gpus", "2", NULL});
    CU_ASSERT_EQUAL_FATAL(r0, 0);
    char h1[RC_ID_HEX_MAX], h2[RC_ID_HEX_MAX];
    harness_lease a, b;
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &a, HARNESS_RES({"CPU", 1}), NULL, 10000) && harness_lease_granted(&a));
    CU_ASSERT_EQUAL(harness_lease_return(&t, &a, 0), GRPC_STATUS_OK);
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &b, HARNESS_RES({"CPU", 1}), NULL, 10000) && harness_lease_granted(&b));
    CU_ASSERT_STRING_EQUAL(worker_hex(&a, h1), worker_hex(&b, h2)); /* same job, no GPUs: reused */
    CU_ASSERT_EQUAL(a.reply->worker_pid, b.reply->worker_pid);

    /* Another job never gets that worker, even while it idles; nor does a lease of another
     * CPU count (its OMP_NUM_THREADS would be wrong). */
    CU_ASSERT_EQUAL(harness_lease_return(&t, &b, 0), GRPC_STATUS_OK);
    harness_lease c, g;
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &c, HARNESS_RES({"CPU", 1}), &(harness_lease_opts){.job = 2}, 10000) && harness_lease_granted(&c));
    CU_ASSERT_STRING_NOT_EQUAL(worker_hex(&a, h1), worker_hex(&c, h2));
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &g, HARNESS_RES({"CPU", 2}), NULL, 10000) && harness_lease_granted(&g));
    CU_ASSERT_STRING_NOT_EQUAL(worker_hex(&a, h1), worker_hex(&g, h2));
    char omp[16];
    CU_ASSERT_EQUAL(worker_field(&t, h2, "OMP_NUM_THREADS", omp, sizeof(omp)), 0);
    CU_ASSERT_STRING_EQUAL(omp, "2");
    CU_ASSERT_EQUAL(harness_lease_return(&t, &g, 0), GRPC_STATUS_OK);
    harness_lease_free(&g);

    /* A GPU lease of the same job gets a GPU worker; the same GPU set reuses it; another
     * GPU set (held at the same time) gets another worker with its own CUDA_VISIBLE_DEVICES. */
    harness_lease d, e, f;
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &d, HARNESS_RES({"CPU", 1}, {"GPU", 1}), NULL, 10000) && harness_lease_granted(&d));
    CU_ASSERT_STRING_NOT_EQUAL(worker_hex(&a, h1), worker_hex(&d, h2));
    char gd[16], ge[16], gf[16], v[64];
    gpu_list(&d, gd, sizeof(gd));
    CU_ASSERT_EQUAL(harness_lease_return(&t, &d, 0), GRPC_STATUS_OK);
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &e, HARNESS_RES({"CPU", 1}, {"GPU", 1}), NULL, 10000) && harness_lease_granted(&e));
    gpu_list(&e, ge, sizeof(ge));
    if (!strcmp(gd, ge)) {
        CU_ASSERT_STRING_EQUAL(worker_hex(&d, h1), worker_hex(&e, h2));
    } else {
        CU_ASSERT_STRING_NOT_EQUAL(worker_hex(&d, h1), worker_hex(&e, h2));
    }
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &f, HARNESS_RES({"CPU", 1}, {"GPU", 1}), NULL, 10000) && harness_lease_granted(&f));
    gpu_list(&f, gf, sizeof(gf));
    CU_ASSERT_STRING_NOT_EQUAL(ge, gf);
    CU_ASSERT_STRING_NOT_EQUAL(worker_hex(&e, h1), worker_hex(&f, h2));
    CU_ASSERT_EQUAL(worker_field(&t, h2, "CUDA_VISIBLE_DEVICES", v, sizeof(v)), 0);
    CU_ASSERT_STRING_EQUAL(v, gf);
    harness_lease *all[] = {&a, &b, &c, &d, &e, &f};
    for (size_t i = 0; i < 6; i++)
        harness_lease_free(all[i]);
    tc_stop(&t);
}

static void test_fractional_gpus_packed(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t), 0);
    int r0 = harness_fake_raylet(&t, (const char *[]){"--num-cpus", "8", "--num-gpus", "2", NULL});
    CU_ASSERT_EQUAL_FATAL(r0, 0);
    harness_lease l[5];
    int per_gpu[2] = {0, 0};
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &l[i], HARNESS_RES({"CPU", 1}, {"GPU", 0.5}), NULL, 10000) && harness_lease_granted(&l[i]));
        for (size_t k = 0; k < l[i].reply->n_resource_mapping; k++) {
            const Ray__Rpc__ResourceMapEntry *e = l[i].reply->resource_mapping[k];
            if (strcmp(e->name, "GPU"))
                continue;
            CU_ASSERT_EQUAL(e->n_resource_ids, 1);
            CU_ASSERT_DOUBLE_EQUAL(e->resource_ids[0]->quantity, 0.5, 1e-9);
            int idx = (int)e->resource_ids[0]->index;
            CU_ASSERT(idx == 0 || idx == 1);
            if (idx == 0 || idx == 1)
                per_gpu[idx]++;
        }
    }
    CU_ASSERT_EQUAL(per_gpu[0], 2);
    CU_ASSERT_EQUAL(per_gpu[1], 2);
    CU_ASSERT_DOUBLE_EQUAL(available(&t, r0, "GPU"), 0.0, 1e-9);
    /* A fifth waits for a half GPU, and gets the one given back. */
    harness_lease_async(&t, r0, &l[4], HARNESS_RES({"CPU", 1}, {"GPU", 0.5}), NULL);
    CU_ASSERT_FALSE(harness_fake_pump(&t, &l[4].done, 500));
    char g[16], g4[16];
    gpu_list(&l[2], g, sizeof(g));
    CU_ASSERT_EQUAL(harness_lease_return(&t, &l[2], 0), GRPC_STATUS_OK);
    CU_ASSERT_FATAL(harness_fake_pump(&t, &l[4].done, 10000) && harness_lease_granted(&l[4]));
    gpu_list(&l[4], g4, sizeof(g4));
    CU_ASSERT_STRING_EQUAL(g, g4);
    for (int i = 0; i < 5; i++)
        harness_lease_free(&l[i]);
    tc_stop(&t);
}

static void test_queue_until_returned_and_demand(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t), 0);
    int r0 = harness_fake_raylet(&t, (const char *[]){"--num-cpus", "1", NULL});
    CU_ASSERT_EQUAL_FATAL(r0, 0);
    harness_lease a, b;
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &a, HARNESS_RES({"CPU", 1}), NULL, 10000) && harness_lease_granted(&a));
    CU_ASSERT_DOUBLE_EQUAL(available(&t, r0, "CPU"), 0.0, 1e-9);
    harness_lease_async(&t, r0, &b, HARNESS_RES({"CPU", 1}), NULL);
    CU_ASSERT_FALSE(harness_fake_pump(&t, &b.done, 500));

    /* While it waits, `rayc status` shows it as demand, and usage as 1/1 CPU. */
    char out[16384], args[256];
    snprintf(args, sizeof(args), "status --address %s", t.c.gcs_address);
    int shown = 0;
    for (int i = 0; i < 50 && !shown; i++) {
        CU_ASSERT_EQUAL(run_rayc(&t.c, args, out, sizeof(out)), 0);
        shown = strstr(out, "{'CPU': 1}: 1+ pending tasks/actors") != NULL && strstr(out, " 1.0/1.0 CPU") != NULL;
        if (!shown)
            harness_fake_pump(&t, NULL, 100);
    }
    CU_ASSERT(shown);
    if (!shown)
        fprintf(stderr, "rayc status said:\n%s\n", out);

    CU_ASSERT_EQUAL(harness_lease_return(&t, &a, 0), GRPC_STATUS_OK);
    CU_ASSERT_FATAL(harness_fake_pump(&t, &b.done, 10000) && harness_lease_granted(&b));
    char h1[RC_ID_HEX_MAX], h2[RC_ID_HEX_MAX];
    CU_ASSERT_STRING_EQUAL(worker_hex(&a, h1), worker_hex(&b, h2)); /* the returned worker serves it */
    CU_ASSERT_EQUAL(harness_lease_return(&t, &b, 0), GRPC_STATUS_OK);
    /* Demand is gone from the status once nothing waits. */
    int gone = 0;
    for (int i = 0; i < 50 && !gone; i++) {
        run_rayc(&t.c, args, out, sizeof(out));
        gone = strstr(out, "(no resource demands)") != NULL;
        if (!gone)
            harness_fake_pump(&t, NULL, 100);
    }
    CU_ASSERT(gone);
    harness_lease_free(&a);
    harness_lease_free(&b);
    tc_stop(&t);
}

/* Waits until raylet `from` sees raylet `to` in its view: a lease only `to` can take spills. */
static void test_spillback_and_grant_or_reject(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t), 0);
    int r0 = harness_fake_raylet(&t, (const char *[]){"--num-cpus", "1", NULL});
    int r1 = harness_fake_raylet(&t, (const char *[]){"--num-cpus", "1", NULL});
    CU_ASSERT_FATAL(r0 == 0 && r1 == 1);
    harness_lease a, b, b2, c;
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &a, HARNESS_RES({"CPU", 1}), NULL, 10000) && harness_lease_granted(&a));
    uint8_t r1_id[RC_NODE_ID_SIZE];
    rc_id_from_hex(t.c.raylets[r1].node_id, r1_id, sizeof(r1_id));
    /* r0 is full: the request is spilled to r1 (as soon as r0 knows r1, at once here). */
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &b, HARNESS_RES({"CPU", 1}), NULL, 10000));
    CU_ASSERT_EQUAL(b.code, GRPC_STATUS_OK);
    CU_ASSERT_FATAL(b.reply && b.reply->retry_at_raylet_address);
    CU_ASSERT_EQUAL(b.reply->retry_at_raylet_address->port, t.c.raylets[r1].port);
    CU_ASSERT_EQUAL(b.reply->retry_at_raylet_address->node_id.len, RC_NODE_ID_SIZE);
    CU_ASSERT(!memcmp(b.reply->retry_at_raylet_address->node_id.data, r1_id, RC_NODE_ID_SIZE));
    CU_ASSERT_FALSE(b.reply->worker_address && b.reply->worker_address->port);
    /* The owner retries at r1 with grant_or_reject: granted there. */
    CU_ASSERT_FATAL(harness_lease_sync(&t, r1, &b2, HARNESS_RES({"CPU", 1}), &(harness_lease_opts){.grant_or_reject = 1}, 10000));
    CU_ASSERT_FATAL(harness_lease_granted(&b2));
    CU_ASSERT(!memcmp(b2.reply->worker_address->node_id.data, r1_id, RC_NODE_ID_SIZE));
    /* r1 is full now: grant_or_reject is rejected at once, never queued or spilled. */
    CU_ASSERT_FATAL(harness_lease_sync(&t, r1, &c, HARNESS_RES({"CPU", 1}), &(harness_lease_opts){.grant_or_reject = 1}, 3000));
    CU_ASSERT_EQUAL(c.code, GRPC_STATUS_OK);
    CU_ASSERT(c.reply && c.reply->rejected);
    CU_ASSERT_FALSE(c.reply && c.reply->retry_at_raylet_address && c.reply->retry_at_raylet_address->port);
    CU_ASSERT_DOUBLE_EQUAL(available(&t, r1, "CPU"), 0.0, 1e-9);
    /* Both full (once r0 has heard so from the GCS: r1 reports, r0 polls): a plain request
     * queues at r0 and is granted when r0 frees up. */
    harness_fake_pump(&t, NULL, 1000);
    harness_lease d;
    harness_lease_async(&t, r0, &d, HARNESS_RES({"CPU", 1}), NULL);
    CU_ASSERT_FALSE(harness_fake_pump(&t, &d.done, 500));
    CU_ASSERT_EQUAL(harness_lease_return(&t, &a, 0), GRPC_STATUS_OK);
    CU_ASSERT_FATAL(harness_fake_pump(&t, &d.done, 10000));
    CU_ASSERT(harness_lease_granted(&d));
    CU_ASSERT(d.reply && d.reply->worker_address && d.reply->worker_address->port == a.reply->worker_address->port);
    harness_lease *all[] = {&a, &b, &b2, &c, &d};
    for (size_t i = 0; i < 5; i++)
        harness_lease_free(all[i]);
    tc_stop(&t);
}

/* The cluster's demand for a shape naming resource `name` (GetAllResourceUsage). */
static int usage_demand(tc *t, const char *name, uint64_t *ready, uint64_t *infeasible)
{
    Ray__Rpc__GetAllResourceUsageRequest req = RAY__RPC__GET_ALL_RESOURCE_USAGE_REQUEST__INIT;
    ProtobufCMessage *reply = NULL;
    if (rpc_client_call_sync(gcs_client_rpc(t->gcs), &ray__rpc__node_resource_info_gcs_service__descriptor,
                             "GetAllResourceUsage", &req.base, 5000, &reply, NULL, 0) != GRPC_STATUS_OK)
        return 0;
    const Ray__Rpc__ResourceUsageBatchData *u = ((Ray__Rpc__GetAllResourceUsageReply *)reply)->resource_usage_data;
    int found = 0;
    for (size_t i = 0; u && u->resource_load_by_shape && i < u->resource_load_by_shape->n_resource_demands; i++) {
        const Ray__Rpc__ResourceDemand *d = u->resource_load_by_shape->resource_demands[i];
        for (size_t k = 0; k < d->n_shape; k++) {
            if (strcmp(d->shape[k]->key, name))
                continue;
            found = 1;
            *ready = d->num_ready_requests_queued;
            *infeasible = d->num_infeasible_requests_queued;
        }
    }
    rpc_msg_free(reply);
    return found;
}

static void test_infeasible_explained_then_failed(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t), 0);
    setenv("RAYC_unschedulable_task_timeout_ms", "2500", 1);
    int r0 = harness_fake_raylet(&t, (const char *[]){"--num-cpus", "2", "--num-gpus", "1", "--accelerator-type", "A100", NULL});
    CU_ASSERT_EQUAL_FATAL(r0, 0);
    harness_lease a;
    int64_t start = rc_mono_ms();
    harness_lease_async(&t, r0, &a, HARNESS_RES({"CPU", 1}, {"GPU", 1}, {"accelerator_type:H100", 0.001}), NULL);
    /* Before the timeout: infeasible demand for the H100 shape. */
    uint64_t ready = 9, infeasible = 0;
    int seen = 0;
    for (int i = 0; i < 15 && !seen && !a.done; i++) {
        harness_fake_pump(&t, &a.done, 100);
        seen = usage_demand(&t, "accelerator_type:H100", &ready, &infeasible) && infeasible == 1;
    }
    CU_ASSERT(seen);
    CU_ASSERT_EQUAL(ready, 0);
    CU_ASSERT_FALSE(a.done);
    /* Then: failed with the scheduler's explanation. */
    CU_ASSERT_FATAL(harness_fake_pump(&t, &a.done, 10000));
    int64_t waited = rc_mono_ms() - start;
    CU_ASSERT(waited >= 2000);
    CU_ASSERT_EQUAL(a.code, GRPC_STATUS_OK);
    CU_ASSERT_FATAL(a.reply != NULL);
    CU_ASSERT(a.reply->canceled);
    CU_ASSERT_EQUAL(a.reply->failure_type,
                    RAY__RPC__REQUEST_WORKER_LEASE_REPLY__SCHEDULING_FAILURE_TYPE__SCHEDULING_CANCELLED_UNSCHEDULABLE);
    CU_ASSERT_PTR_NOT_NULL(strstr(a.reply->scheduling_failure_message, "H100"));
    fprintf(stderr, "    (unschedulable after %lld ms: %s)\n", (long long)waited, a.reply->scheduling_failure_message);
    CU_ASSERT_DOUBLE_EQUAL(available(&t, r0, "CPU"), 2.0, 1e-9);

    /* Infeasible until a node that can run it joins: then it goes there. */
    harness_lease b;
    harness_lease_async(&t, r0, &b, HARNESS_RES({"CPU", 1}, {"GPU", 1}, {"accelerator_type:H100", 0.001}), NULL);
    CU_ASSERT_FALSE(harness_fake_pump(&t, &b.done, 300));
    int r1 = harness_fake_raylet(&t, (const char *[]){"--num-cpus", "2", "--num-gpus", "1", "--accelerator-type", "H100", NULL});
    unsetenv("RAYC_unschedulable_task_timeout_ms");
    CU_ASSERT_FATAL(r1 == 1);
    CU_ASSERT_FATAL(harness_fake_pump(&t, &b.done, 5000));
    CU_ASSERT_FATAL(b.reply && b.reply->retry_at_raylet_address);
    CU_ASSERT_EQUAL(b.reply->retry_at_raylet_address->port, t.c.raylets[r1].port);
    harness_lease_free(&a);
    harness_lease_free(&b);
    tc_stop(&t);
}

static void test_worker_killed_while_leased(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t), 0);
    int r0 = harness_fake_raylet(&t, (const char *[]){"--num-cpus", "1", NULL});
    CU_ASSERT_EQUAL_FATAL(r0, 0);
    harness_lease a, b;
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &a, HARNESS_RES({"CPU", 1}), NULL, 10000) && harness_lease_granted(&a));
    harness_lease_async(&t, r0, &b, HARNESS_RES({"CPU", 1}), NULL);
    CU_ASSERT_FALSE(harness_fake_pump(&t, &b.done, 300));
    kill((pid_t)a.reply->worker_pid, SIGKILL);
    /* Reaped: its CPU goes to the waiting request (with a new worker). */
    CU_ASSERT_FATAL(harness_fake_pump(&t, &b.done, 10000) && harness_lease_granted(&b));
    CU_ASSERT_NOT_EQUAL(a.reply->worker_pid, b.reply->worker_pid);
    /* Returning the dead worker's lease afterwards is harmless. */
    CU_ASSERT_EQUAL(harness_lease_return(&t, &a, 0), GRPC_STATUS_OK);
    CU_ASSERT_DOUBLE_EQUAL(available(&t, r0, "CPU"), 0.0, 1e-9);
    CU_ASSERT_EQUAL(harness_lease_return(&t, &b, 0), GRPC_STATUS_OK);
    CU_ASSERT_DOUBLE_EQUAL(available(&t, r0, "CPU"), 1.0, 1e-9);
    CU_ASSERT(harness_log_contains(&t.c, "raylet0", "its resources are free again"));

    /* A worker that owns leases (a task that submitted tasks) dies: those leases go too,
     * and their workers with them. */
    harness_lease outer, inner;
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &outer, HARNESS_RES({"CPU", 0.5}), NULL, 10000) && harness_lease_granted(&outer));
    const ProtobufCBinaryData *outer_id = &outer.reply->worker_address->worker_id;
    uint8_t saved[RC_WORKER_ID_SIZE];
    memcpy(saved, t.owner_id, sizeof(saved));
    memcpy(t.owner_id, outer_id->data, sizeof(t.owner_id));
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &inner, HARNESS_RES({"CPU", 0.5}), NULL, 10000) && harness_lease_granted(&inner));
    memcpy(t.owner_id, saved, sizeof(t.owner_id));
    CU_ASSERT_DOUBLE_EQUAL(available(&t, r0, "CPU"), 0.0, 1e-9);
    kill((pid_t)outer.reply->worker_pid, SIGKILL);
    CU_ASSERT(harness_pid_gone((pid_t)inner.reply->worker_pid, 5000));
    int64_t deadline = rc_mono_ms() + 5000;
    while (available(&t, r0, "CPU") < 1.0 && rc_mono_ms() < deadline)
        rc_sleep_ms(20);
    CU_ASSERT_DOUBLE_EQUAL(available(&t, r0, "CPU"), 1.0, 1e-9);
    harness_lease_free(&outer);
    harness_lease_free(&inner);
    harness_lease_free(&a);
    harness_lease_free(&b);
    tc_stop(&t);
}

static void test_worker_that_never_registers(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t), 0);
    setenv("RAYC_worker_register_timeout_ms", "1000", 1);
    setenv("RAYC_FAKE_WORKER_MODE", "never_register", 1);
    int r0 = harness_fake_raylet(&t, (const char *[]){"--num-cpus", "2", NULL});
    setenv("RAYC_FAKE_WORKER_MODE", "exit", 1);
    int r1 = harness_fake_raylet(&t, (const char *[]){"--num-cpus", "2", NULL});
    unsetenv("RAYC_FAKE_WORKER_MODE");
    unsetenv("RAYC_worker_register_timeout_ms");
    CU_ASSERT_FATAL(r0 == 0 && r1 == 1);
    harness_lease a, b;
    int64_t start = rc_mono_ms();
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &a, HARNESS_RES({"CPU", 1}), NULL, 10000));
    CU_ASSERT(rc_mono_ms() - start >= 900);
    CU_ASSERT_EQUAL(a.code, GRPC_STATUS_OK);
    CU_ASSERT_FATAL(a.reply != NULL);
    CU_ASSERT(a.reply->canceled);
    CU_ASSERT_EQUAL(a.reply->failure_type, RAY__RPC__REQUEST_WORKER_LEASE_REPLY__SCHEDULING_FAILURE_TYPE__SCHEDULING_FAILED);
    CU_ASSERT_PTR_NOT_NULL(strstr(a.reply->scheduling_failure_message, "did not register within 1000 ms"));
    CU_ASSERT_DOUBLE_EQUAL(available(&t, r0, "CPU"), 2.0, 1e-9);

    CU_ASSERT_FATAL(harness_lease_sync(&t, r1, &b, HARNESS_RES({"CPU", 1}), NULL, 10000));
    CU_ASSERT_FATAL(b.reply != NULL);
    CU_ASSERT(b.reply->canceled);
    CU_ASSERT_PTR_NOT_NULL(strstr(b.reply->scheduling_failure_message, "exited with status 3 before it registered"));
    CU_ASSERT_DOUBLE_EQUAL(available(&t, r1, "CPU"), 2.0, 1e-9);
    CU_ASSERT(harness_raylet_alive(&t.c, r0));
    CU_ASSERT(harness_raylet_alive(&t.c, r1));

    /* A worker program that cannot be started at all fails the lease at once, by name. */
    char missing[PATH_MAX + 32];
    snprintf(missing, sizeof(missing), "%s/no-such-worker", t.c.root);
    int r2i;
    const char *argv[] = {"--num-cpus", "2", "--worker-command", missing, "--session-dir", t.session, NULL};
    CU_ASSERT_EQUAL_FATAL(harness_raylet_start(&t.c, argv, &r2i), 0);
    char target[64];
    snprintf(target, sizeof(target), "127.0.0.1:%d", t.c.raylets[r2i].port);
    rpc_client_create(t.rpc, target, NULL, &t.tcp[r2i]);
    harness_lease c;
    CU_ASSERT_FATAL(harness_lease_sync(&t, r2i, &c, HARNESS_RES({"CPU", 1}), NULL, 10000));
    CU_ASSERT_FATAL(c.reply != NULL);
    CU_ASSERT(c.reply->canceled);
    CU_ASSERT_PTR_NOT_NULL(strstr(c.reply->scheduling_failure_message, "no-such-worker"));
    CU_ASSERT_DOUBLE_EQUAL(available(&t, r2i, "CPU"), 2.0, 1e-9);
    harness_lease_free(&a);
    harness_lease_free(&b);
    harness_lease_free(&c);
    tc_stop(&t);
}

static void test_idle_worker_timeout_and_prestart(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t), 0);
    setenv("RAYC_idle_worker_timeout_ms", "300", 1);
    setenv("RAYC_num_workers_soft_limit", "0", 1);
    int r0 = harness_fake_raylet(&t, (const char *[]){"--num-cpus", "2", NULL});
    unsetenv("RAYC_num_workers_soft_limit");
    setenv("RAYC_prestart_worker_first_driver", "1", 1);
    int r1 = harness_fake_raylet(&t, (const char *[]){"--num-cpus", "3", NULL});
    setenv("RAYC_prestart_worker_first_driver", "0", 1);
    unsetenv("RAYC_idle_worker_timeout_ms");
    CU_ASSERT_FATAL(r0 == 0 && r1 == 1);
    harness_lease a;
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &a, HARNESS_RES({"CPU", 1}), NULL, 10000) && harness_lease_granted(&a));
    pid_t pid = (pid_t)a.reply->worker_pid;
    rc_sleep_ms(600);
    CU_ASSERT_FALSE(harness_pid_gone(pid, 0)); /* leased workers never time out */
    CU_ASSERT_EQUAL(harness_lease_return(&t, &a, 0), GRPC_STATUS_OK);
    CU_ASSERT(harness_pid_gone(pid, 5000));

    /* Prestart: the first lease of job 5 starts CPU workers up to the node's 3 CPUs. */
    harness_lease b;
    CU_ASSERT_FATAL(harness_lease_sync(&t, r1, &b, HARNESS_RES({"CPU", 1}), &(harness_lease_opts){.job = 5}, 10000) && harness_lease_granted(&b));
    int n = 0;
    for (int tries = 0; tries < 100 && n < 3; tries++) {
        n = 0;
        DIR *d = opendir(t.fake_dir);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            char hex[RC_ID_HEX_MAX];
            snprintf(hex, sizeof(hex), "%.56s", e->d_name);
            if (strlen(e->d_name) > 56 && worker_has_arg(&t, hex, "--job-id", "00000005"))
                n++;
        }
        if (d)
            closedir(d);
        if (n < 3)
            rc_sleep_ms(50);
    }
    CU_ASSERT_EQUAL(n, 3);
    harness_lease_free(&a);
    harness_lease_free(&b);
    tc_stop(&t);
}

static void test_cancel_and_caller_gone(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t), 0);
    int r0 = harness_fake_raylet(&t, (const char *[]){"--num-cpus", "1", NULL});
    CU_ASSERT_EQUAL_FATAL(r0, 0);
    harness_lease a, b, c;
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &a, HARNESS_RES({"CPU", 1}), NULL, 10000) && harness_lease_granted(&a));
    harness_lease_async(&t, r0, &b, HARNESS_RES({"CPU", 1}), NULL);
    CU_ASSERT_FALSE(harness_fake_pump(&t, &b.done, 300));

    Ray__Rpc__CancelWorkerLeaseRequest req = RAY__RPC__CANCEL_WORKER_LEASE_REQUEST__INIT;
    req.lease_id.data = b.lease_id;
    req.lease_id.len = sizeof(b.lease_id);
    ProtobufCMessage *reply = NULL;
    CU_ASSERT_EQUAL(rpc_client_call_sync(t.tcp[r0], &ray__rpc__node_manager_service__descriptor, "CancelWorkerLease",
                                         &req.base, 5000, &reply, NULL, 0),
                    GRPC_STATUS_OK);
    CU_ASSERT(reply && ((Ray__Rpc__CancelWorkerLeaseReply *)reply)->success);
    rpc_msg_free(reply);
    CU_ASSERT_FATAL(harness_fake_pump(&t, &b.done, 5000));
    CU_ASSERT(b.reply && b.reply->canceled);
    CU_ASSERT_EQUAL(b.reply->failure_type,
                    RAY__RPC__REQUEST_WORKER_LEASE_REPLY__SCHEDULING_FAILURE_TYPE__SCHEDULING_CANCELLED_INTENDED);
    /* Cancelling what is not waiting (granted, or unknown) does nothing. */
    req.lease_id.data = a.lease_id;
    CU_ASSERT_EQUAL(rpc_client_call_sync(t.tcp[r0], &ray__rpc__node_manager_service__descriptor, "CancelWorkerLease",
                                         &req.base, 5000, &reply, NULL, 0),
                    GRPC_STATUS_OK);
    CU_ASSERT(reply && !((Ray__Rpc__CancelWorkerLeaseReply *)reply)->success);
    rpc_msg_free(reply);

    /* A caller that gives up (deadline) is dropped: the freed CPU stays free. */
    harness_lease_async(&t, r0, &c, HARNESS_RES({"CPU", 1}), &(harness_lease_opts){.timeout_ms = 300});
    CU_ASSERT_FATAL(harness_fake_pump(&t, &c.done, 5000));
    CU_ASSERT_EQUAL(c.code, GRPC_STATUS_DEADLINE_EXCEEDED);
    harness_fake_pump(&t, NULL, 200);
    CU_ASSERT_EQUAL(harness_lease_return(&t, &a, 0), GRPC_STATUS_OK);
    harness_fake_pump(&t, NULL, 300);
    CU_ASSERT_DOUBLE_EQUAL(available(&t, r0, "CPU"), 1.0, 1e-9);
    harness_lease_free(&a);
    harness_lease_free(&b);
    harness_lease_free(&c);
    tc_stop(&t);
}

static int notify(tc *t, int ri, const harness_lease *lc, int blocked)
{
    ProtobufCMessage *reply = NULL;
    int code;
    if (blocked) {
        Rayc__Rpc__NotifyTaskBlockedRequest req = RAYC__RPC__NOTIFY_TASK_BLOCKED_REQUEST__INIT;
        req.worker_id = lc->reply->worker_address->worker_id;
        code = rpc_client_call_sync(t->local[ri], &rayc__rpc__local_raylet_service__descriptor, "NotifyTaskBlocked",
                                    &req.base, 5000, &reply, NULL, 0);
    } else {
        Rayc__Rpc__NotifyTaskUnblockedRequest req = RAYC__RPC__NOTIFY_TASK_UNBLOCKED_REQUEST__INIT;
        req.worker_id = lc->reply->worker_address->worker_id;
        code = rpc_client_call_sync(t->local[ri], &rayc__rpc__local_raylet_service__descriptor, "NotifyTaskUnblocked",
                                    &req.base, 5000, &reply, NULL, 0);
    }
    rpc_msg_free(reply);
    return code;
}

static void test_blocked_worker_lends_cpus(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t), 0);
    int r0 = harness_fake_raylet(&t, (const char *[]){"--num-cpus", "1", "--num-gpus", "1", NULL});
    CU_ASSERT_EQUAL_FATAL(r0, 0);
    harness_lease a, b;
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &a, HARNESS_RES({"CPU", 1}, {"GPU", 1}), NULL, 10000) && harness_lease_granted(&a));
    harness_lease_async(&t, r0, &b, HARNESS_RES({"CPU", 1}), NULL);
    CU_ASSERT_FALSE(harness_fake_pump(&t, &b.done, 300));
    CU_ASSERT_EQUAL(notify(&t, r0, &a, 1), GRPC_STATUS_OK);
    CU_ASSERT_FATAL(harness_fake_pump(&t, &b.done, 5000) && harness_lease_granted(&b)); /* the nested task runs */
    CU_ASSERT_DOUBLE_EQUAL(available(&t, r0, "CPU"), 0.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(available(&t, r0, "GPU"), 0.0, 1e-9); /* GPUs stay held */
    CU_ASSERT_EQUAL(notify(&t, r0, &a, 0), GRPC_STATUS_OK);         /* oversubscribed now */
    CU_ASSERT_DOUBLE_EQUAL(available(&t, r0, "CPU"), 0.0, 1e-9);
    CU_ASSERT_EQUAL(harness_lease_return(&t, &b, 0), GRPC_STATUS_OK);
    CU_ASSERT_DOUBLE_EQUAL(available(&t, r0, "CPU"), 0.0, 1e-9); /* a still holds its CPU */
    CU_ASSERT_EQUAL(harness_lease_return(&t, &a, 0), GRPC_STATUS_OK);
    CU_ASSERT_DOUBLE_EQUAL(available(&t, r0, "CPU"), 1.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(available(&t, r0, "GPU"), 1.0, 1e-9);
    /* A worker blocked when its lease is returned gives back exactly what it holds. */
    harness_lease c;
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &c, HARNESS_RES({"CPU", 1}), NULL, 10000) && harness_lease_granted(&c));
    CU_ASSERT_EQUAL(notify(&t, r0, &c, 1), GRPC_STATUS_OK);
    CU_ASSERT_DOUBLE_EQUAL(available(&t, r0, "CPU"), 1.0, 1e-9);
    CU_ASSERT_EQUAL(harness_lease_return(&t, &c, 0), GRPC_STATUS_OK);
    CU_ASSERT_DOUBLE_EQUAL(available(&t, r0, "CPU"), 1.0, 1e-9);
    harness_lease_free(&a);
    harness_lease_free(&b);
    harness_lease_free(&c);
    tc_stop(&t);
}

/* A request that parses but can never be served is answered at once: canceled,
 * unschedulable, "invalid lease request: ..." naming what is wrong. */
static int is_invalid_reply(const harness_lease *lc, const char *text)
{
    return lc->done && lc->code == GRPC_STATUS_OK && lc->reply && lc->reply->canceled &&
           lc->reply->failure_type ==
               RAY__RPC__REQUEST_WORKER_LEASE_REPLY__SCHEDULING_FAILURE_TYPE__SCHEDULING_CANCELLED_UNSCHEDULABLE &&
           strstr(lc->reply->scheduling_failure_message, "invalid lease request: ") &&
           strstr(lc->reply->scheduling_failure_message, text);
}

static void expect_invalid(tc *t, const harness_res *rs, const harness_lease_opts *o, const char *text)
{
    harness_lease lc;
    CU_ASSERT_FATAL(harness_lease_sync(t, 0, &lc, rs, o, 5000));
    CU_ASSERT(is_invalid_reply(&lc, text));
    if (!is_invalid_reply(&lc, text))
        fprintf(stderr, "    got %s: %s (wanted '%s')\n", rpc_code_name(lc.code),
                lc.reply ? lc.reply->scheduling_failure_message : lc.message, text);
    harness_lease_free(&lc);
}

static void test_malformed_requests(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t), 0);
    int r0 = harness_fake_raylet(&t, (const char *[]){"--num-cpus", "2", "--num-gpus", "2", NULL});
    CU_ASSERT_EQUAL_FATAL(r0, 0);
    expect_invalid(&t, HARNESS_RES({"GPU", 1.5}), NULL, "quantities >1 must be whole numbers");
    expect_invalid(&t, HARNESS_RES({"CPU", -1}), NULL, "negative");
    expect_invalid(&t, HARNESS_RES({"CPU", 0.00001}), NULL, "precision");
    expect_invalid(&t, HARNESS_RES({"", 1}), NULL, "is not a resource name");
    expect_invalid(&t, HARNESS_RES({"bad name", 1}), NULL, "is not a resource name");
    expect_invalid(&t, HARNESS_RES({"CPU", 1.0 / 0.0}), NULL, "not a finite number");

    Ray__Rpc__NodeAffinitySchedulingStrategy na = RAY__RPC__NODE_AFFINITY_SCHEDULING_STRATEGY__INIT;
    uint8_t short_id[5] = {1, 2, 3, 4, 5};
    na.node_id.data = short_id;
    na.node_id.len = sizeof(short_id);
    Ray__Rpc__SchedulingStrategy st = RAY__RPC__SCHEDULING_STRATEGY__INIT;
    st.scheduling_strategy_case = RAY__RPC__SCHEDULING_STRATEGY__SCHEDULING_STRATEGY_NODE_AFFINITY_SCHEDULING_STRATEGY;
    st.node_affinity_scheduling_strategy = &na;
    expect_invalid(&t, HARNESS_RES({"CPU", 1}), &(harness_lease_opts){.strategy = &st}, "node_id holds 5 bytes");
    /* A well-formed node ID that is not in the cluster: hard affinity fails at once. */
    uint8_t unknown[RC_NODE_ID_SIZE];
    rc_id_random(unknown, sizeof(unknown));
    na.node_id.data = unknown;
    na.node_id.len = sizeof(unknown);
    harness_lease lc;
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &lc, HARNESS_RES({"CPU", 1}), &(harness_lease_opts){.strategy = &st}, 5000));
    CU_ASSERT(lc.reply && lc.reply->canceled);
    CU_ASSERT(lc.reply && lc.reply->failure_type ==
                              RAY__RPC__REQUEST_WORKER_LEASE_REPLY__SCHEDULING_FAILURE_TYPE__SCHEDULING_CANCELLED_UNSCHEDULABLE);
    CU_ASSERT(lc.reply && strstr(lc.reply->scheduling_failure_message, "not in the cluster view"));
    harness_lease_free(&lc);
    /* Ray's flag rules: spill_on_unavailable needs soft affinity. */
    na.spill_on_unavailable = 1;
    expect_invalid(&t, HARNESS_RES({"CPU", 1}), &(harness_lease_opts){.strategy = &st}, "spill_on_unavailable requires soft");
    na.spill_on_unavailable = 0;
    /* Placement groups are not served yet. */
    Ray__Rpc__PlacementGroupSchedulingStrategy pg = RAY__RPC__PLACEMENT_GROUP_SCHEDULING_STRATEGY__INIT;
    Ray__Rpc__SchedulingStrategy pst = RAY__RPC__SCHEDULING_STRATEGY__INIT;
    pst.scheduling_strategy_case = RAY__RPC__SCHEDULING_STRATEGY__SCHEDULING_STRATEGY_PLACEMENT_GROUP_SCHEDULING_STRATEGY;
    pst.placement_group_scheduling_strategy = &pg;
    expect_invalid(&t, HARNESS_RES({"CPU", 1}), &(harness_lease_opts){.strategy = &pst}, "placement group");
    /* A label selector constraint without an operator. */
    char *vals[] = {"us"};
    Ray__Rpc__LabelSelectorConstraint k = RAY__RPC__LABEL_SELECTOR_CONSTRAINT__INIT;
    k.label_key = "region";
    k.label_values = vals;
    k.n_label_values = 1;
    Ray__Rpc__LabelSelectorConstraint *ks[1] = {&k};
    Ray__Rpc__LabelSelector sel = RAY__RPC__LABEL_SELECTOR__INIT;
    sel.label_constraints = ks;
    sel.n_label_constraints = 1;
    expect_invalid(&t, HARNESS_RES({"CPU", 1}), &(harness_lease_opts){.selector = &sel}, "no operator");

    /* No lease_spec, short IDs (answered in the reply); garbage bytes (the rpc layer's
     * INVALID_ARGUMENT). */
    Ray__Rpc__RequestWorkerLeaseRequest empty = RAY__RPC__REQUEST_WORKER_LEASE_REQUEST__INIT;
    ProtobufCMessage *reply = NULL;
    char err[300];
    harness_lease raw = {.done = 1};
    raw.code = rpc_client_call_sync(t.tcp[r0], &ray__rpc__node_manager_service__descriptor, "RequestWorkerLease",
                                    &empty.base, 5000, (ProtobufCMessage **)&raw.reply, err, sizeof(err));
    CU_ASSERT(is_invalid_reply(&raw, "no lease_spec"));
    harness_lease_free(&raw);
    Ray__Rpc__LeaseSpec spec = RAY__RPC__LEASE_SPEC__INIT;
    uint8_t lid[4] = {1, 2, 3, 4};
    spec.lease_id.data = lid;
    spec.lease_id.len = sizeof(lid);
    empty.lease_spec = &spec;
    raw.code = rpc_client_call_sync(t.tcp[r0], &ray__rpc__node_manager_service__descriptor, "RequestWorkerLease",
                                    &empty.base, 5000, (ProtobufCMessage **)&raw.reply, err, sizeof(err));
    CU_ASSERT(is_invalid_reply(&raw, "job_id holds 0 bytes"));
    harness_lease_free(&raw);
    static const uint8_t garbage[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01};
    CU_ASSERT_EQUAL(rpc_client_call_raw_sync(t.tcp[r0], "/ray.rpc.NodeManagerService/RequestWorkerLease", garbage,
                                             sizeof(garbage), 5000, err, sizeof(err)),
                    GRPC_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(rpc_client_call_raw_sync(t.tcp[r0], "/ray.rpc.NodeManagerService/ReturnWorkerLease", garbage,
                                             sizeof(garbage), 5000, err, sizeof(err)),
                    GRPC_STATUS_INVALID_ARGUMENT);
    /* The same lease ID twice while the first waits. */
    harness_lease hold, dup;
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &hold, HARNESS_RES({"CPU", 2}), NULL, 10000) && harness_lease_granted(&hold));
    harness_lease w1;
    harness_lease_async(&t, r0, &w1, HARNESS_RES({"CPU", 2}), NULL);
    CU_ASSERT_FALSE(harness_fake_pump(&t, &w1.done, 200));
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &dup, HARNESS_RES({"CPU", 1}), &(harness_lease_opts){.lease_id = w1.lease_id}, 5000));
    CU_ASSERT(dup.reply && dup.reply->canceled &&
              strstr(dup.reply->scheduling_failure_message, "already held or requested here"));
    CU_ASSERT_FALSE(w1.done); /* the first one still waits */
    /* Backlog reports with a bad worker ID are ignored (the reply has no error field). */
    Ray__Rpc__ReportWorkerBacklogRequest breq = RAY__RPC__REPORT_WORKER_BACKLOG_REQUEST__INIT;
    CU_ASSERT_EQUAL(rpc_client_call_sync(t.tcp[r0], &ray__rpc__node_manager_service__descriptor, "ReportWorkerBacklog",
                                         &breq.base, 5000, &reply, err, sizeof(err)),
                    GRPC_STATUS_OK);
    rpc_msg_free(reply);
    harness_lease_free(&dup);

    /* Through all of it the raylet kept serving. */
    CU_ASSERT(harness_raylet_alive(&t.c, r0));
    CU_ASSERT_EQUAL(harness_lease_return(&t, &hold, 0), GRPC_STATUS_OK);
    CU_ASSERT_FATAL(harness_fake_pump(&t, &w1.done, 10000) && harness_lease_granted(&w1));
    CU_ASSERT_EQUAL(harness_lease_return(&t, &w1, 0), GRPC_STATUS_OK);
    CU_ASSERT_DOUBLE_EQUAL(available(&t, r0, "CPU"), 2.0, 1e-9);
    harness_lease_free(&hold);
    harness_lease_free(&w1);
    tc_stop(&t);
}

static void test_backlog_is_demand(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t), 0);
    int r0 = harness_fake_raylet(&t, (const char *[]){"--num-cpus", "1", NULL});
    CU_ASSERT_EQUAL_FATAL(r0, 0);
    Ray__Rpc__LeaseSpec__RequiredResourcesEntry e = RAY__RPC__LEASE_SPEC__REQUIRED_RESOURCES_ENTRY__INIT;
    e.key = "custom_thing";
    e.value = 2;
    Ray__Rpc__LeaseSpec__RequiredResourcesEntry *es[1] = {&e};
    Ray__Rpc__LeaseSpec spec = RAY__RPC__LEASE_SPEC__INIT;
    spec.required_resources = es;
    spec.n_required_resources = 1;
    Ray__Rpc__WorkerBacklogReport rep = RAY__RPC__WORKER_BACKLOG_REPORT__INIT;
    rep.lease_spec = &spec;
    rep.backlog_size = 12;
    Ray__Rpc__WorkerBacklogReport *reps[1] = {&rep};
    Ray__Rpc__ReportWorkerBacklogRequest req = RAY__RPC__REPORT_WORKER_BACKLOG_REQUEST__INIT;
    req.worker_id.data = t.owner_id;
    req.worker_id.len = sizeof(t.owner_id);
    req.backlog_reports = reps;
    req.n_backlog_reports = 1;
    ProtobufCMessage *reply = NULL;
    CU_ASSERT_EQUAL(rpc_client_call_sync(t.tcp[r0], &ray__rpc__node_manager_service__descriptor, "ReportWorkerBacklog",
                                         &req.base, 5000, &reply, NULL, 0),
                    GRPC_STATUS_OK);
    rpc_msg_free(reply);
    char out[16384], args[256];
    snprintf(args, sizeof(args), "status --address %s", t.c.gcs_address);
    int shown = 0;
    for (int i = 0; i < 50 && !shown; i++) {
        run_rayc(&t.c, args, out, sizeof(out));
        shown = strstr(out, "{'custom_thing': 2}: 12+ pending tasks/actors") != NULL;
        if (!shown)
            rc_sleep_ms(100);
    }
    CU_ASSERT(shown);
    /* A new report without it clears it. */
    req.n_backlog_reports = 0;
    CU_ASSERT_EQUAL(rpc_client_call_sync(t.tcp[r0], &ray__rpc__node_manager_service__descriptor, "ReportWorkerBacklog",
                                         &req.base, 5000, &reply, NULL, 0),
                    GRPC_STATUS_OK);
    rpc_msg_free(reply);
    int gone = 0;
    for (int i = 0; i < 50 && !gone; i++) {
        run_rayc(&t.c, args, out, sizeof(out));
        gone = strstr(out, "(no resource demands)") != NULL;
        if (!gone)
            rc_sleep_ms(100);
    }
    CU_ASSERT(gone);
    tc_stop(&t);
}

static void test_register_client_and_shutdown(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t), 0);
    int r0 = harness_fake_raylet(&t, (const char *[]){"--num-cpus", "1", NULL});
    CU_ASSERT_EQUAL_FATAL(r0, 0);
    /* The socket is advertised in the node record. */
    Ray__Rpc__GetAllNodeInfoRequest nreq = RAY__RPC__GET_ALL_NODE_INFO_REQUEST__INIT;
    ProtobufCMessage *reply = NULL;
    CU_ASSERT_EQUAL_FATAL(rpc_client_call_sync(gcs_client_rpc(t.gcs), &ray__rpc__node_info_gcs_service__descriptor,
                                               "GetAllNodeInfo", &nreq.base, 5000, &reply, NULL, 0),
                          GRPC_STATUS_OK);
    const Ray__Rpc__GetAllNodeInfoReply *nodes = (const void *)reply;
    char sock[PATH_MAX + 64];
    snprintf(sock, sizeof(sock), "%s/sockets/raylet.%.8s.sock", t.session, t.c.raylets[r0].node_id);
    CU_ASSERT_FATAL(nodes->n_node_info_list == 1);
    CU_ASSERT_STRING_EQUAL(nodes->node_info_list[0]->raylet_socket_name, sock);
    rpc_msg_free(reply);

    /* A worker ID the raylet never started is refused; a driver is welcome. */
    uint8_t wid[RC_WORKER_ID_SIZE], job[RC_JOB_ID_SIZE];
    rc_id_random(wid, sizeof(wid));
    harness_job_id(3, job);
    Rayc__Rpc__RegisterClientRequest reg = RAYC__RPC__REGISTER_CLIENT_REQUEST__INIT;
    reg.worker_id.data = wid;
    reg.worker_id.len = sizeof(wid);
    reg.worker_type = RAY__RPC__WORKER_TYPE__WORKER;
    reg.pid = getpid();
    reg.port = 1234;
    reg.job_id.data = job;
    reg.job_id.len = sizeof(job);
    char err[300];
    CU_ASSERT_EQUAL(rpc_client_call_sync(t.local[r0], &rayc__rpc__local_raylet_service__descriptor, "RegisterClient",
                                         &reg.base, 5000, &reply, err, sizeof(err)),
                    GRPC_STATUS_NOT_FOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "was started by this raylet"));
    reg.worker_type = RAY__RPC__WORKER_TYPE__DRIVER;
    CU_ASSERT_EQUAL_FATAL(rpc_client_call_sync(t.local[r0], &rayc__rpc__local_raylet_service__descriptor,
                                               "RegisterClient", &reg.base, 5000, &reply, err, sizeof(err)),
                          GRPC_STATUS_OK);
    const Rayc__Rpc__RegisterClientReply *rr = (const void *)reply;
    char hex[RC_ID_HEX_MAX];
    CU_ASSERT_EQUAL(rr->node_id.len, RC_NODE_ID_SIZE);
    CU_ASSERT_STRING_EQUAL(rc_id_hex(rr->node_id.data, rr->node_id.len, hex), t.c.raylets[r0].node_id);
    CU_ASSERT_EQUAL(rr->node_manager_port, t.c.raylets[r0].port);
    CU_ASSERT_STRING_EQUAL(rr->node_ip_address, "127.0.0.1");
    CU_ASSERT_STRING_EQUAL(rr->gcs_address, t.c.gcs_address);
    /* The node's shared-memory store, for the client to map. */
    char store_prefix[PATH_MAX];
    snprintf(store_prefix, sizeof(store_prefix), "%s/rayc-", rc_cfg.plasma_directory);
    CU_ASSERT(!strncmp(rr->store_path, store_prefix, strlen(store_prefix)));
    CU_ASSERT(rr->store_size > 0);
    rpc_msg_free(reply);

    /* A driver that disconnects loses its leases and its workers. */
    memcpy(t.owner_id, wid, sizeof(t.owner_id));
    harness_lease a, b;
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &a, HARNESS_RES({"CPU", 1}), NULL, 10000) && harness_lease_granted(&a));
    harness_lease_async(&t, r0, &b, HARNESS_RES({"CPU", 1}), NULL);
    CU_ASSERT_FALSE(harness_fake_pump(&t, &b.done, 300));
    Rayc__Rpc__DisconnectClientRequest dreq = RAYC__RPC__DISCONNECT_CLIENT_REQUEST__INIT;
    dreq.worker_id.data = wid;
    dreq.worker_id.len = sizeof(wid);
    CU_ASSERT_EQUAL(rpc_client_call_sync(t.local[r0], &rayc__rpc__local_raylet_service__descriptor, "DisconnectClient",
                                         &dreq.base, 5000, &reply, NULL, 0),
                    GRPC_STATUS_OK);
    rpc_msg_free(reply);
    CU_ASSERT_FATAL(harness_fake_pump(&t, &b.done, 5000));
    CU_ASSERT(b.reply && b.reply->canceled);
    CU_ASSERT(harness_pid_gone((pid_t)a.reply->worker_pid, 5000));
    CU_ASSERT_DOUBLE_EQUAL(available(&t, r0, "CPU"), 1.0, 1e-9);

    /* Shutdown: a held request is answered, workers die, the socket goes away. */
    harness_lease c, d;
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &c, HARNESS_RES({"CPU", 1}), NULL, 10000) && harness_lease_granted(&c));
    harness_lease_async(&t, r0, &d, HARNESS_RES({"CPU", 1}), NULL);
    CU_ASSERT_FALSE(harness_fake_pump(&t, &d.done, 300));
    harness_raylet_signal(&t.c, r0, SIGTERM);
    CU_ASSERT(harness_fake_pump(&t, &d.done, 5000));
    CU_ASSERT_NOT_EQUAL(d.code, GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(harness_raylet_wait_exit(&t.c, r0, 10000), 0);
    CU_ASSERT(harness_pid_gone((pid_t)c.reply->worker_pid, 5000));
    CU_ASSERT_NOT_EQUAL(access(sock, F_OK), 0);
    harness_lease *all[] = {&a, &b, &c, &d};
    for (size_t i = 0; i < 4; i++)
        harness_lease_free(all[i]);
    tc_stop(&t);
}

/* LocalRayletService (the unix socket) refuses bad input with a status and keeps serving. */
static void test_local_service_bad_input(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t), 0);
    int r0 = harness_fake_raylet(&t, (const char *[]){"--num-cpus", "1", NULL});
    CU_ASSERT_EQUAL_FATAL(r0, 0);
    static const char *const methods[] = {"RegisterClient", "DisconnectClient", "NotifyTaskBlocked",
                                          "NotifyTaskUnblocked"};
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (size_t m = 0; m < RC_ARRAY_LEN(methods); m++) {
        char path[128];
        snprintf(path, sizeof(path), "/rayc.rpc.LocalRayletService/%s", methods[m]);
        for (int i = 0; i < 40; i++) {
            uint8_t bytes[64];
            size_t len = (size_t)(x % sizeof(bytes));
            for (size_t k = 0; k < len; k++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                bytes[k] = (uint8_t)x;
            }
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            int code = rpc_client_call_raw_sync(t.local[r0], path, bytes, len, 5000, NULL, 0);
            CU_ASSERT(code != GRPC_STATUS_DEADLINE_EXCEEDED && code != GRPC_STATUS_UNAVAILABLE);
        }
    }
    /* Well-formed but wrong: IDs of the wrong size, a worker_type nobody serves, unknown IDs. */
    uint8_t short_id[3] = {1, 2, 3}, unknown[RC_WORKER_ID_SIZE];
    rc_id_random(unknown, sizeof(unknown));
    char err[300];
    ProtobufCMessage *reply = NULL;
    Rayc__Rpc__RegisterClientRequest reg = RAYC__RPC__REGISTER_CLIENT_REQUEST__INIT;
    reg.worker_id.data = short_id;
    reg.worker_id.len = sizeof(short_id);
    CU_ASSERT_EQUAL(rpc_client_call_sync(t.local[r0], &rayc__rpc__local_raylet_service__descriptor, "RegisterClient",
                                         &reg.base, 5000, &reply, err, sizeof(err)),
                    GRPC_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "worker_id holds 3 bytes"));
    reg.worker_id.data = unknown;
    reg.worker_id.len = sizeof(unknown);
    reg.worker_type = RAY__RPC__WORKER_TYPE__SPILL_WORKER;
    CU_ASSERT_EQUAL(rpc_client_call_sync(t.local[r0], &rayc__rpc__local_raylet_service__descriptor, "RegisterClient",
                                         &reg.base, 5000, &reply, err, sizeof(err)),
                    GRPC_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "worker_type 2"));
    reg.worker_type = RAY__RPC__WORKER_TYPE__DRIVER;
    CU_ASSERT_EQUAL(rpc_client_call_sync(t.local[r0], &rayc__rpc__local_raylet_service__descriptor, "RegisterClient",
                                         &reg.base, 5000, &reply, err, sizeof(err)),
                    GRPC_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "job_id"));
    Rayc__Rpc__NotifyTaskBlockedRequest nb = RAYC__RPC__NOTIFY_TASK_BLOCKED_REQUEST__INIT;
    nb.worker_id.data = unknown;
    nb.worker_id.len = sizeof(unknown);
    CU_ASSERT_EQUAL(rpc_client_call_sync(t.local[r0], &rayc__rpc__local_raylet_service__descriptor, "NotifyTaskBlocked",
                                         &nb.base, 5000, &reply, err, sizeof(err)),
                    GRPC_STATUS_NOT_FOUND);
    Rayc__Rpc__DisconnectClientRequest dc = RAYC__RPC__DISCONNECT_CLIENT_REQUEST__INIT;
    dc.worker_id.data = unknown;
    dc.worker_id.len = sizeof(unknown);
    CU_ASSERT_EQUAL(rpc_client_call_sync(t.local[r0], &rayc__rpc__local_raylet_service__descriptor, "DisconnectClient",
                                         &dc.base, 5000, &reply, err, sizeof(err)),
                    GRPC_STATUS_OK);
    rpc_msg_free(reply);
    /* A worker that registers twice is refused the second time. */
    harness_lease a;
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &a, HARNESS_RES({"CPU", 1}), NULL, 10000) && harness_lease_granted(&a));
    reg.worker_id = a.reply->worker_address->worker_id;
    reg.worker_type = RAY__RPC__WORKER_TYPE__WORKER;
    CU_ASSERT_EQUAL(rpc_client_call_sync(t.local[r0], &rayc__rpc__local_raylet_service__descriptor, "RegisterClient",
                                         &reg.base, 5000, &reply, err, sizeof(err)),
                    GRPC_STATUS_FAILED_PRECONDITION);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "has registered already"));
    /* Still serving, and the lease still works end to end. */
    char echoed[32];
    CU_ASSERT_EQUAL(harness_lease_push(&t, &a, "echo", "still here", 5000, echoed, sizeof(echoed)), GRPC_STATUS_OK);
    CU_ASSERT_STRING_EQUAL(echoed, "still here");
    CU_ASSERT_EQUAL(harness_lease_return(&t, &a, 0), GRPC_STATUS_OK);
    harness_lease_free(&a);
    tc_stop(&t);
}

static const unit_case cases[] = {
    UNIT_CASE(test_grant_gpu_env_and_push),
    UNIT_CASE(test_worker_reuse_by_job_and_gpus),
    UNIT_CASE(test_fractional_gpus_packed),
    UNIT_CASE(test_queue_until_returned_and_demand),
    UNIT_CASE(test_spillback_and_grant_or_reject),
    UNIT_CASE(test_infeasible_explained_then_failed),
    UNIT_CASE(test_worker_killed_while_leased),
    UNIT_CASE(test_worker_that_never_registers),
    UNIT_CASE(test_idle_worker_timeout_and_prestart),
    UNIT_CASE(test_cancel_and_caller_gone),
    UNIT_CASE(test_blocked_worker_lends_cpus),
    UNIT_CASE(test_malformed_requests),
    UNIT_CASE(test_backlog_is_demand),
    UNIT_CASE(test_local_service_bad_input),
    UNIT_CASE(test_register_client_and_shutdown),
};

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    rc_config_init();
    return unit_run("leases", cases, UNIT_N(cases));
}
