/*
 * The raylet's half of placement groups and actors against real daemons (rayc-gcs,
 * rayc-raylet, rayc-fake-worker as the worker program), talking to raylets directly with
 * rpc clients as the GCS would:
 *   - bundles: PrepareBundleResources all or nothing with concrete GPU instances (whole
 *     and fractional), idempotent Prepare/Commit/Cancel, Ray's bundle resource names in
 *     the node's reports, leases on indexed and wildcard bundle resources (GPU instances
 *     and CUDA_VISIBLE_DEVICES from the bundle's reservation, a wildcard split over the
 *     group's bundles, plain names renamed by the raylet for a placement-group strategy),
 *     demand for bundle resources, CancelResourceReserve ending the leases on the bundle
 *     and giving back exactly what was reserved, ReleaseUnusedBundles, spillback to the
 *     node holding a group's bundles;
 *   - actor creation leases: placed by required_placement_resources, holding only
 *     required_resources, dedicated workers killed when the lease comes back, a detached
 *     actor's worker outliving its job;
 *   - worker failure reports (WorkerInfoGcsService.ReportWorkerFailure) for crashed,
 *     killed, exiting and departing workers and for drivers, retried while the GCS refuses.
 *
 * The raylets reach the GCS through a proxy in this process (its own thread and loop): it
 * forwards every GCS call to the real GCS except ReportWorkerFailure, which it records (and
 * can refuse with UNAVAILABLE, as a restarting GCS would), so the reports can be checked
 * whatever the GCS does with them. Every case ends by stopping its raylets with SIGTERM:
 * they must exit 0 (under the sanitizers: with no report, leaks included).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <pthread.h>
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
#include "gcs_service.pb-c.h"
#include "health.pb-c.h"
#include "node_manager.pb-c.h"
#include "rayc_auth.pb-c.h"
#include "rayc_gcs.pb-c.h"
#include "rayc_raylet.pb-c.h"
#include "rc_alloc.h"
#include "rc_config.h"
#include "rc_ids.h"
#include "rc_time.h"
#include "unit.h"

#ifndef FAKE_WORKER
#error "FAKE_WORKER must name the fake worker program"
#endif

/* ---- the GCS proxy ------------------------------------------------------------------ */

enum { PROXY_MAX_REPORTS = 256 };

typedef struct proxy {
    pthread_t thread;
    uv_loop_t loop;
    uv_async_t stop;
    rpc_ctx *rpc;
    rpc_server *srv;
    rpc_client *gcs;
    char gcs_address[64];
    char address[64];
    rpc_method_handler *tables[16];
    size_t n_tables;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int ready;
    /* Under mu. */
    Ray__Rpc__WorkerTableData *reports[PROXY_MAX_REPORTS];
    size_t n_reports;
    int refuse;  /* answer this many more reports UNAVAILABLE */
    int refused; /* reports answered UNAVAILABLE so far */
} proxy;

static void proxy_forwarded(const rpc_status *st, const void *reply, size_t len, void *arg)
{
    rpc_call *call = arg;
    if (st->code == GRPC_STATUS_OK)
        rpc_reply_packed(call, reply, len);
    else
        rpc_reply_status(call, st->code, "%s", st->message);
}

static void proxy_forward(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    proxy *p = arg;
    char path[256];
    snprintf(path, sizeof(path), "/%s/%s", rpc_call_service(call), rpc_call_method(call));
    size_t len;
    uint8_t *bytes = rpc_msg_pack(request, &len);
    if (rpc_client_call_raw(p->gcs, path, bytes, len, -1, proxy_forwarded, call) < 0)
        rpc_reply_status(call, GRPC_STATUS_UNAVAILABLE, "the test proxy cannot forward %s", path);
    rc_free(bytes);
}

static void proxy_report(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    proxy *p = arg;
    const Ray__Rpc__ReportWorkerFailureRequest *req = (const void *)request;
    pthread_mutex_lock(&p->mu);
    int refuse = p->refuse > 0;
    if (refuse) {
        p->refuse--;
        p->refused++;
    } else if (req->worker_failure && p->n_reports < PROXY_MAX_REPORTS) {
        p->reports[p->n_reports++] = (Ray__Rpc__WorkerTableData *)rpc_msg_dup(&req->worker_failure->base);
    }
    pthread_mutex_unlock(&p->mu);
    if (refuse) {
        rpc_reply_status(call, GRPC_STATUS_UNAVAILABLE, "the test proxy plays a restarting GCS");
        return;
    }
    Ray__Rpc__ReportWorkerFailureReply reply = RAY__RPC__REPORT_WORKER_FAILURE_REPLY__INIT;
    Ray__Rpc__GcsStatus status = RAY__RPC__GCS_STATUS__INIT;
    reply.status = &status;
    rpc_reply(call, &reply.base);
}

/* Serves every method of svc by forwarding (or, for ReportWorkerFailure, recording). */
static void proxy_serve(proxy *p, const ProtobufCServiceDescriptor *svc)
{
    rpc_method_handler *t = rc_calloc(svc->n_methods + 1, sizeof(*t));
    for (unsigned i = 0; i < svc->n_methods; i++) {
        t[i].method = svc->methods[i].name;
        t[i].fn = svc == &ray__rpc__worker_info_gcs_service__descriptor &&
                          !strcmp(svc->methods[i].name, "ReportWorkerFailure")
                      ? proxy_report
                      : proxy_forward;
    }
    p->tables[p->n_tables++] = t;
    rpc_server_add_service(p->srv, svc, t, p);
}

static void proxy_stop(uv_async_t *a)
{
    proxy *p = a->data;
    rpc_client_destroy(p->gcs); /* forwarded calls end (CANCELLED) and answer their callers */
    rpc_server_destroy(p->srv);
    uv_close((uv_handle_t *)&p->stop, NULL);
}

static void *proxy_main(void *arg)
{
    proxy *p = arg;
    uv_loop_init(&p->loop);
    uv_async_init(&p->loop, &p->stop, proxy_stop);
    p->stop.data = p;
    rpc_ctx_create(&p->loop, &p->rpc);
    rpc_client_create(p->rpc, p->gcs_address, NULL, &p->gcs);
    rpc_server_create(p->rpc, NULL, &p->srv);
    const ProtobufCServiceDescriptor *services[] = {
        &ray__rpc__job_info_gcs_service__descriptor,        &ray__rpc__node_info_gcs_service__descriptor,
        &ray__rpc__internal_kvgcs_service__descriptor,      &ray__rpc__node_resource_info_gcs_service__descriptor,
        &ray__rpc__internal_pub_sub_gcs_service__descriptor, &ray__rpc__actor_info_gcs_service__descriptor,
        &ray__rpc__worker_info_gcs_service__descriptor,     &ray__rpc__placement_group_info_gcs_service__descriptor,
        &rayc__rpc__resource_report_gcs_service__descriptor, &grpc__health__v1__health__descriptor,
        &rayc__rpc__auth_service__descriptor,
    };
    for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++)
        proxy_serve(p, services[i]);
    int port = 0;
    rpc_server_listen(p->srv, "127.0.0.1:0", &port);
    rpc_server_start(p->srv);
    pthread_mutex_lock(&p->mu);
    snprintf(p->address, sizeof(p->address), "127.0.0.1:%d", port);
    p->ready = 1;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->mu);
    uv_run(&p->loop, UV_RUN_DEFAULT);
    rpc_ctx_destroy(p->rpc);
    uv_run(&p->loop, UV_RUN_DEFAULT);
    uv_loop_close(&p->loop);
    return NULL;
}

static int proxy_start(proxy *p, const char *gcs_address)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->gcs_address, sizeof(p->gcs_address), "%s", gcs_address);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cond, NULL);
    if (pthread_create(&p->thread, NULL, proxy_main, p) != 0)
        return -1;
    pthread_mutex_lock(&p->mu);
    while (!p->ready)
        pthread_cond_wait(&p->cond, &p->mu);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

static void proxy_destroy(proxy *p)
{
    uv_async_send(&p->stop);
    pthread_join(p->thread, NULL);
    for (size_t i = 0; i < p->n_tables; i++)
        rc_free(p->tables[i]);
    for (size_t i = 0; i < p->n_reports; i++)
        rpc_msg_free(&p->reports[i]->base);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cond);
}

/* Waits up to ms for the failure report of worker_id; returns a copy (rpc_msg_free) or NULL. */
static Ray__Rpc__WorkerTableData *proxy_wait_report(proxy *p, const uint8_t *worker_id, int ms)
{
    int64_t deadline = rc_mono_ms() + ms;
    do {
        Ray__Rpc__WorkerTableData *found = NULL;
        pthread_mutex_lock(&p->mu);
        for (size_t i = 0; i < p->n_reports && !found; i++) {
            const Ray__Rpc__Address *a = p->reports[i]->worker_address;
            if (a && a->worker_id.len == RC_WORKER_ID_SIZE && !memcmp(a->worker_id.data, worker_id, RC_WORKER_ID_SIZE))
                found = (Ray__Rpc__WorkerTableData *)rpc_msg_dup(&p->reports[i]->base);
        }
        pthread_mutex_unlock(&p->mu);
        if (found)
            return found;
        rc_sleep_ms(20);
    } while (rc_mono_ms() < deadline);
    return NULL;
}

static size_t proxy_report_count(proxy *p)
{
    pthread_mutex_lock(&p->mu);
    size_t n = p->n_reports;
    pthread_mutex_unlock(&p->mu);
    return n;
}

/* ---- cluster and client ------------------------------------------------------------- */

typedef harness_fake tc;
static proxy px; /* between the raylets and the GCS: records worker failure reports */

static int tc_start(tc *t)
{
    setenv("RAYC_raylet_report_keepalive_ms", "200", 1);
    setenv("RAYC_raylet_cluster_view_poll_ms", "100", 1);
    setenv("RAYC_prestart_worker_first_driver", "0", 1);
    unsetenv("RAYC_FAKE_WORKER_MODE");
    unsetenv("RAYC_CODE_SEARCH_PATH");
    unsetenv("CUDA_VISIBLE_DEVICES");
    rc_config_init();
    if (harness_fake_start(t, 0, FAKE_WORKER, 1) < 0)
        return -1;
    /* Raylets started from now on reach the GCS through the proxy. */
    if (proxy_start(&px, t->c.gcs_address) < 0)
        return -1;
    snprintf(t->c.gcs_address, sizeof(t->c.gcs_address), "%s", px.address);
    return 0;
}

static void tc_stop(tc *t)
{
    harness_fake_stop(t, HARNESS_FAKE_CHECK_RAYLETS);
    proxy_destroy(&px);
}

/* ---- names and bundles -------------------------------------------------------------- */

typedef struct group {
    uint8_t id[RC_PG_ID_SIZE];
    char hex[RC_ID_HEX_MAX];
    char names[24][160]; /* scratch for bundle resource names */
    int next;
} group;

static void group_init(group *g)
{
    rc_id_random(g->id, sizeof(g->id));
    rc_id_hex(g->id, sizeof(g->id), g->hex);
    g->next = 0;
}

/* "R_group_<i>_<hex>" (i >= 0) or "R_group_<hex>" (i -1), valid until 24 more names. */
static const char *gname(group *g, const char *base, int index)
{
    char *out = g->names[g->next++ % 24];
    if (index >= 0)
        snprintf(out, 160, "%s_group_%d_%s", base, index, g->hex);
    else
        snprintf(out, 160, "%s_group_%s", base, g->hex);
    return out;
}

typedef struct bundle_buf {
    Ray__Rpc__Bundle b;
    Ray__Rpc__Bundle__BundleIdentifier id;
    Ray__Rpc__Bundle__UnitResourcesEntry e[8], *ep[8];
} bundle_buf;

static Ray__Rpc__Bundle *bundle_of(bundle_buf *bb, const group *g, int index, const harness_res *rs)
{
    ray__rpc__bundle__init(&bb->b);
    ray__rpc__bundle__bundle_identifier__init(&bb->id);
    bb->id.placement_group_id.data = (uint8_t *)g->id;
    bb->id.placement_group_id.len = sizeof(g->id);
    bb->id.bundle_index = index;
    bb->b.bundle_id = &bb->id;
    size_t n = 0;
    for (; rs && rs[n].name; n++) {
        ray__rpc__bundle__unit_resources_entry__init(&bb->e[n]);
        bb->e[n].key = (char *)rs[n].name;
        bb->e[n].value = rs[n].amount;
        bb->ep[n] = &bb->e[n];
    }
    bb->b.unit_resources = bb->ep;
    bb->b.n_unit_resources = n;
    return &bb->b;
}

/* PrepareBundleResources of n bundles at raylet ri: 1 success, 0 refused, -1 no answer. */
static int prepare(tc *t, int ri, Ray__Rpc__Bundle **bundles, size_t n)
{
    Ray__Rpc__PrepareBundleResourcesRequest req = RAY__RPC__PREPARE_BUNDLE_RESOURCES_REQUEST__INIT;
    req.bundle_specs = bundles;
    req.n_bundle_specs = n;
    ProtobufCMessage *reply = NULL;
    if (rpc_client_call_sync(t->tcp[ri], &ray__rpc__node_manager_service__descriptor, "PrepareBundleResources",
                             &req.base, 5000, &reply, NULL, 0) != GRPC_STATUS_OK)
        return -1;
    int ok = ((Ray__Rpc__PrepareBundleResourcesReply *)reply)->success;
    rpc_msg_free(reply);
    return ok;
}

static int commit(tc *t, int ri, Ray__Rpc__Bundle **bundles, size_t n)
{
    Ray__Rpc__CommitBundleResourcesRequest req = RAY__RPC__COMMIT_BUNDLE_RESOURCES_REQUEST__INIT;
    req.bundle_specs = bundles;
    req.n_bundle_specs = n;
    ProtobufCMessage *reply = NULL;
    int code = rpc_client_call_sync(t->tcp[ri], &ray__rpc__node_manager_service__descriptor, "CommitBundleResources",
                                    &req.base, 5000, &reply, NULL, 0);
    rpc_msg_free(reply);
    return code;
}

static int cancel(tc *t, int ri, Ray__Rpc__Bundle *bundle)
{
    Ray__Rpc__CancelResourceReserveRequest req = RAY__RPC__CANCEL_RESOURCE_RESERVE_REQUEST__INIT;
    req.bundle_spec = bundle;
    ProtobufCMessage *reply = NULL;
    int code = rpc_client_call_sync(t->tcp[ri], &ray__rpc__node_manager_service__descriptor, "CancelResourceReserve",
                                    &req.base, 5000, &reply, NULL, 0);
    rpc_msg_free(reply);
    return code;
}

static int release_unused(tc *t, int ri, Ray__Rpc__Bundle **in_use, size_t n)
{
    Ray__Rpc__ReleaseUnusedBundlesRequest req = RAY__RPC__RELEASE_UNUSED_BUNDLES_REQUEST__INIT;
    req.bundles_in_use = in_use;
    req.n_bundles_in_use = n;
    ProtobufCMessage *reply = NULL;
    int code = rpc_client_call_sync(t->tcp[ri], &ray__rpc__node_manager_service__descriptor, "ReleaseUnusedBundles",
                                    &req.base, 5000, &reply, NULL, 0);
    rpc_msg_free(reply);
    return code;
}

/* A resource of raylet ri's report (GetResourceLoad): its total and available amount.
 * Returns 1 if the node has it. */
static int resource(tc *t, int ri, const char *name, double *total, double *avail)
{
    Ray__Rpc__GetResourceLoadRequest req = RAY__RPC__GET_RESOURCE_LOAD_REQUEST__INIT;
    ProtobufCMessage *reply = NULL;
    *total = *avail = -1;
    if (rpc_client_call_sync(t->tcp[ri], &ray__rpc__node_manager_service__descriptor, "GetResourceLoad", &req.base,
                             5000, &reply, NULL, 0) != GRPC_STATUS_OK)
        return 0;
    const Ray__Rpc__ResourcesData *d = ((Ray__Rpc__GetResourceLoadReply *)reply)->resources;
    int found = 0;
    for (size_t i = 0; d && i < d->n_resources_total; i++)
        if (!strcmp(d->resources_total[i]->key, name)) {
            *total = d->resources_total[i]->value;
            found = 1;
        }
    for (size_t i = 0; d && i < d->n_resources_available; i++)
        if (!strcmp(d->resources_available[i]->key, name))
            *avail = d->resources_available[i]->value;
    rpc_msg_free(reply);
    return found;
}

static double avail_of(tc *t, int ri, const char *name)
{
    double total, avail;
    return resource(t, ri, name, &total, &avail) ? avail : -1;
}

/* Number of resources of raylet ri whose name contains text. */
static int count_named(tc *t, int ri, const char *text)
{
    Ray__Rpc__GetResourceLoadRequest req = RAY__RPC__GET_RESOURCE_LOAD_REQUEST__INIT;
    ProtobufCMessage *reply = NULL;
    if (rpc_client_call_sync(t->tcp[ri], &ray__rpc__node_manager_service__descriptor, "GetResourceLoad", &req.base,
                             5000, &reply, NULL, 0) != GRPC_STATUS_OK)
        return -1;
    const Ray__Rpc__ResourcesData *d = ((Ray__Rpc__GetResourceLoadReply *)reply)->resources;
    int n = 0;
    for (size_t i = 0; d && i < d->n_resources_total; i++)
        n += strstr(d->resources_total[i]->key, text) != NULL;
    rpc_msg_free(reply);
    return n;
}

/* The demand of raylet ri for a shape naming resource name: ready requests, or -1. */
static int64_t demand_of(tc *t, int ri, const char *name)
{
    Ray__Rpc__GetResourceLoadRequest req = RAY__RPC__GET_RESOURCE_LOAD_REQUEST__INIT;
    ProtobufCMessage *reply = NULL;
    if (rpc_client_call_sync(t->tcp[ri], &ray__rpc__node_manager_service__descriptor, "GetResourceLoad", &req.base,
                             5000, &reply, NULL, 0) != GRPC_STATUS_OK)
        return -1;
    const Ray__Rpc__ResourcesData *d = ((Ray__Rpc__GetResourceLoadReply *)reply)->resources;
    int64_t ready = -1;
    const Ray__Rpc__ResourceLoad *load = d ? d->resource_load_by_shape : NULL;
    for (size_t i = 0; load && i < load->n_resource_demands; i++)
        for (size_t k = 0; k < load->resource_demands[i]->n_shape; k++)
            if (!strcmp(load->resource_demands[i]->shape[k]->key, name))
                ready = (int64_t)load->resource_demands[i]->num_ready_requests_queued;
    rpc_msg_free(reply);
    return ready;
}

/* ---- leases ------------------------------------------------------------------------- */

/* The instances resource_mapping lists for name, as "0,1" ("" if none). */
static const char *mapping_of(const harness_lease *lc, const char *name, char *out, size_t len)
{
    out[0] = '\0';
    size_t used = 0;
    for (size_t i = 0; lc->reply && i < lc->reply->n_resource_mapping; i++) {
        const Ray__Rpc__ResourceMapEntry *e = lc->reply->resource_mapping[i];
        if (strcmp(e->name, name))
            continue;
        for (size_t k = 0; k < e->n_resource_ids; k++)
            used += (size_t)snprintf(out + used, len - used, "%s%lld:%g", used ? "," : "",
                                     (long long)e->resource_ids[k]->index, e->resource_ids[k]->quantity);
    }
    return out;
}

/* The fake worker's CUDA_VISIBLE_DEVICES (from its report file). */
static int worker_cuda(tc *t, const harness_lease *lc, char *out, size_t outlen)
{
    char hex[RC_ID_HEX_MAX], path[PATH_MAX + 128], line[512];
    const ProtobufCBinaryData *id = &lc->reply->worker_address->worker_id;
    snprintf(path, sizeof(path), "%s/%s.txt", t->fake_dir, rc_id_hex(id->data, id->len, hex));
    int64_t deadline = rc_mono_ms() + 5000;
    FILE *f;
    while (!(f = fopen(path, "r")) && rc_mono_ms() < deadline)
        rc_sleep_ms(20);
    if (!f)
        return -1;
    int found = -1;
    while (found < 0 && fgets(line, sizeof(line), f)) {
        if (strncmp(line, "CUDA_VISIBLE_DEVICES=", 21))
            continue;
        line[strcspn(line, "\n")] = '\0';
        snprintf(out, outlen, "%.60s", line + 21);
        found = 0;
    }
    fclose(f);
    return found;
}

/* ---- bundles ------------------------------------------------------------------------ */

static void test_prepare_commit_cancel(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t), 0);
    int r0 = harness_fake_raylet(&t, (const char *[]){"--num-cpus", "4", "--num-gpus", "2", NULL});
    CU_ASSERT_EQUAL_FATAL(r0, 0);
    group g;
    group_init(&g);
    bundle_buf b0, b1, b2, b3;
    Ray__Rpc__Bundle *two[2] = {bundle_of(&b0, &g, 0, HARNESS_RES({"CPU", 1}, {"GPU", 1})),
                                bundle_of(&b1, &g, 1, HARNESS_RES({"CPU", 1}, {"GPU", 0.5}))};
    /* Prepare reserves now (a whole GPU instance and half of another); again is the same. */
    CU_ASSERT_EQUAL(prepare(&t, r0, two, 2), 1);
    CU_ASSERT_DOUBLE_EQUAL(avail_of(&t, r0, "CPU"), 2, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(avail_of(&t, r0, "GPU"), 0.5, 1e-9);
    CU_ASSERT_EQUAL(prepare(&t, r0, two, 2), 1);
    CU_ASSERT_DOUBLE_EQUAL(avail_of(&t, r0, "CPU"), 2, 1e-9);
    CU_ASSERT_EQUAL(count_named(&t, r0, "_group_"), 0); /* nothing to lease before Commit */
    /* All or nothing: one bundle that does not fit, nothing of the other is kept. */
    Ray__Rpc__Bundle *too_big[2] = {bundle_of(&b2, &g, 2, HARNESS_RES({"CPU", 1})), bundle_of(&b3, &g, 3, HARNESS_RES({"CPU", 5}))};
    CU_ASSERT_EQUAL(prepare(&t, r0, too_big, 2), 0);
    CU_ASSERT_DOUBLE_EQUAL(avail_of(&t, r0, "CPU"), 2, 1e-9);
    /* Malformed: refused, nothing held. */
    bundle_buf bad;
    Ray__Rpc__Bundle *bads[1] = {bundle_of(&bad, &g, 4, HARNESS_RES({"CPU", 1}))};
    bad.id.placement_group_id.len = 5;
    CU_ASSERT_EQUAL(prepare(&t, r0, bads, 1), 0);
    CU_ASSERT_DOUBLE_EQUAL(avail_of(&t, r0, "CPU"), 2, 1e-9);

    /* Commit: Ray's names, totals per bundle and summed for the group; again is the same. */
    CU_ASSERT_EQUAL(commit(&t, r0, two, 2), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(commit(&t, r0, two, 2), GRPC_STATUS_OK);
    double total, avail;
    CU_ASSERT(resource(&t, r0, gname(&g, "CPU", 0), &total, &avail) && total == 1 && avail == 1);
    CU_ASSERT(resource(&t, r0, gname(&g, "CPU", -1), &total, &avail) && total == 2 && avail == 2);
    CU_ASSERT(resource(&t, r0, gname(&g, "GPU", 1), &total, &avail) && total == 0.5 && avail == 0.5);
    CU_ASSERT(resource(&t, r0, gname(&g, "GPU", -1), &total, &avail) && total == 1.5 && avail == 1.5);
    CU_ASSERT(resource(&t, r0, gname(&g, "bundle", 0), &total, &avail) && total == 1000);
    CU_ASSERT(resource(&t, r0, gname(&g, "bundle", -1), &total, &avail) && total == 2000);
    CU_ASSERT_EQUAL(count_named(&t, r0, g.hex), 9); /* CPU, GPU, bundle: 0, 1 and the group */
    CU_ASSERT_DOUBLE_EQUAL(avail_of(&t, r0, "CPU"), 2, 1e-9); /* the node's own amounts do not change */

    /* A lease on bundle 0's GPU gets the instance bundle 0 reserved (0), in its mapping and
     * in CUDA_VISIBLE_DEVICES; one on bundle 1 (plain names, renamed by the raylet for the
     * placement group) gets instance 1. */
    harness_lease gpu0, gpu1, wide, waiting;
    char text[256];
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &gpu0, HARNESS_RES({gname(&g, "GPU", 0), 1}, {gname(&g, "GPU", -1), 1}), NULL, 10000));
    CU_ASSERT_FATAL(harness_lease_granted(&gpu0));
    CU_ASSERT_STRING_EQUAL(mapping_of(&gpu0, gname(&g, "GPU", 0), text, sizeof(text)), "0:1");
    CU_ASSERT_EQUAL(worker_cuda(&t, &gpu0, text, sizeof(text)), 0);
    CU_ASSERT_STRING_EQUAL(text, "0");
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &gpu1, HARNESS_RES({"GPU", 0.25}), &(harness_lease_opts){.pg_id = g.id, .pg_index = 1}, 10000));
    CU_ASSERT_FATAL(harness_lease_granted(&gpu1));
    CU_ASSERT_STRING_EQUAL(mapping_of(&gpu1, gname(&g, "GPU", 1), text, sizeof(text)), "1:0.25");
    CU_ASSERT_STRING_EQUAL(mapping_of(&gpu1, gname(&g, "GPU", -1), text, sizeof(text)), "1:0.25");
    CU_ASSERT_EQUAL(worker_cuda(&t, &gpu1, text, sizeof(text)), 0);
    CU_ASSERT_STRING_EQUAL(text, "1");
    CU_ASSERT_DOUBLE_EQUAL(avail_of(&t, r0, gname(&g, "GPU", 1)), 0.25, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(avail_of(&t, r0, gname(&g, "GPU", -1)), 0.25, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(avail_of(&t, r0, "GPU"), 0.5, 1e-9); /* the node's free half is untouched */

    /* A wildcard lease bigger than any bundle takes from both. */
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &wide, HARNESS_RES({gname(&g, "CPU", -1), 2}), NULL, 10000));
    CU_ASSERT_FATAL(harness_lease_granted(&wide));
    CU_ASSERT_DOUBLE_EQUAL(avail_of(&t, r0, gname(&g, "CPU", 0)), 0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(avail_of(&t, r0, gname(&g, "CPU", 1)), 0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(avail_of(&t, r0, gname(&g, "CPU", -1)), 0, 1e-9);
    /* Bundle 1's CPU is taken: a lease for it waits, and is demand. */
    harness_lease_async(&t, r0, &waiting, HARNESS_RES({"CPU", 1}), &(harness_lease_opts){.pg_id = g.id, .pg_index = 1});
    CU_ASSERT_FALSE(harness_fake_pump(&t, &waiting.done, 500));
    CU_ASSERT_EQUAL(demand_of(&t, r0, gname(&g, "CPU", 1)), 1);

    /* Cancel bundle 0: the leases holding any of it end and their workers are killed (the
     * GPU lease, and the wide one that took from both); what it reserved comes back; the
     * waiting lease gets bundle 1's CPU. */
    pid_t gpu0_pid = (pid_t)gpu0.reply->worker_pid, wide_pid = (pid_t)wide.reply->worker_pid;
    pid_t gpu1_pid = (pid_t)gpu1.reply->worker_pid;
    CU_ASSERT_EQUAL(cancel(&t, r0, two[0]), GRPC_STATUS_OK);
    CU_ASSERT(harness_pid_gone(gpu0_pid, 5000));
    CU_ASSERT(harness_pid_gone(wide_pid, 5000));
    CU_ASSERT_EQUAL(kill(gpu1_pid, 0), 0); /* bundle 1's lease lives on */
    CU_ASSERT_FATAL(harness_fake_pump(&t, &waiting.done, 10000));
    CU_ASSERT(harness_lease_granted(&waiting));
    CU_ASSERT_DOUBLE_EQUAL(avail_of(&t, r0, "CPU"), 3, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(avail_of(&t, r0, "GPU"), 1.5, 1e-9);
    CU_ASSERT_FALSE(resource(&t, r0, gname(&g, "CPU", 0), &total, &avail));
    CU_ASSERT(resource(&t, r0, gname(&g, "CPU", -1), &total, &avail) && total == 1 && avail == 0);
    CU_ASSERT(resource(&t, r0, gname(&g, "GPU", -1), &total, &avail) && total == 0.5 && avail == 0.25);
    CU_ASSERT_EQUAL(cancel(&t, r0, two[0]), GRPC_STATUS_OK); /* again: nothing happens */
    CU_ASSERT_DOUBLE_EQUAL(avail_of(&t, r0, "CPU"), 3, 1e-9);

    /* The GCS restarted and uses none of them: bundle 1 goes, with its leases; the node is
     * whole again. */
    pid_t waiting_pid = (pid_t)waiting.reply->worker_pid;
    CU_ASSERT_EQUAL(release_unused(&t, r0, NULL, 0), GRPC_STATUS_OK);
    CU_ASSERT(harness_pid_gone(gpu1_pid, 5000));
    CU_ASSERT(harness_pid_gone(waiting_pid, 5000));
    CU_ASSERT_DOUBLE_EQUAL(avail_of(&t, r0, "CPU"), 4, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(avail_of(&t, r0, "GPU"), 2, 1e-9);
    CU_ASSERT_EQUAL(count_named(&t, r0, "_group_"), 0);
    /* A late ReturnWorkerLease for an ended lease is harmless. */
    CU_ASSERT_EQUAL(harness_lease_return(&t, &gpu0, 0), GRPC_STATUS_OK);
    harness_lease *all[] = {&gpu0, &gpu1, &wide, &waiting};
    for (size_t i = 0; i < 4; i++)
        harness_lease_free(all[i]);
    tc_stop(&t);
}

/* GPU bundles keep their instances: leases inside get those (packed best-fit when
 * fractional, whole free instances when whole), leases outside never do. */
static void test_gpu_instances_within_bundles(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t), 0);
    int r0 = harness_fake_raylet(&t, (const char *[]){"--num-cpus", "8", "--num-gpus", "4", NULL});
    CU_ASSERT_EQUAL_FATAL(r0, 0);
    group g;
    group_init(&g);
    bundle_buf b0, b1;
    /* Bundle 0 takes instances 0 and 1; bundle 1 half of instance 2. */
    Ray__Rpc__Bundle *two[2] = {bundle_of(&b0, &g, 0, HARNESS_RES({"GPU", 2})), bundle_of(&b1, &g, 1, HARNESS_RES({"GPU", 0.5}))};
    CU_ASSERT_EQUAL(prepare(&t, r0, two, 2), 1);
    CU_ASSERT_EQUAL(commit(&t, r0, two, 2), GRPC_STATUS_OK);
    CU_ASSERT_DOUBLE_EQUAL(avail_of(&t, r0, "GPU"), 1.5, 1e-9);
    harness_lease plain, half_a, half_b, both, frac;
    char text[128];
    /* A lease outside the group: instance 3, the only whole one left. */
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &plain, HARNESS_RES({"GPU", 1}), NULL, 10000) && harness_lease_granted(&plain));
    CU_ASSERT_EQUAL(worker_cuda(&t, &plain, text, sizeof(text)), 0);
    CU_ASSERT_STRING_EQUAL(text, "3");
    /* Two halves in bundle 0 share one of its instances. */
    harness_lease_opts in0 = {.pg_id = g.id, .pg_index = 0};
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &half_a, HARNESS_RES({"GPU", 0.5}), &in0, 10000) && harness_lease_granted(&half_a));
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &half_b, HARNESS_RES({"GPU", 0.5}), &in0, 10000) && harness_lease_granted(&half_b));
    char a[64], b[64];
    CU_ASSERT_EQUAL(worker_cuda(&t, &half_a, a, sizeof(a)), 0);
    CU_ASSERT_EQUAL(worker_cuda(&t, &half_b, b, sizeof(b)), 0);
    CU_ASSERT_STRING_EQUAL(a, b);
    CU_ASSERT(!strcmp(a, "0") || !strcmp(a, "1"));
    /* A whole GPU from the group (any bundle): bundle 0's other instance. */
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &both, HARNESS_RES({"GPU", 1}), &(harness_lease_opts){.pg_id = g.id, .pg_index = -1}, 10000));
    CU_ASSERT_FATAL(harness_lease_granted(&both));
    CU_ASSERT_EQUAL(worker_cuda(&t, &both, text, sizeof(text)), 0);
    CU_ASSERT_STRING_EQUAL(text, !strcmp(a, "0") ? "1" : "0");
    CU_ASSERT_DOUBLE_EQUAL(avail_of(&t, r0, gname(&g, "GPU", 0)), 0, 1e-9);
    /* A fraction from the group: only bundle 1's half of instance 2 is left. */
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &frac, HARNESS_RES({"GPU", 0.25}), &(harness_lease_opts){.pg_id = g.id, .pg_index = -1}, 10000));
    CU_ASSERT_FATAL(harness_lease_granted(&frac));
    CU_ASSERT_EQUAL(worker_cuda(&t, &frac, text, sizeof(text)), 0);
    CU_ASSERT_STRING_EQUAL(text, "2");
    CU_ASSERT_STRING_EQUAL(mapping_of(&frac, gname(&g, "GPU", -1), text, sizeof(text)), "2:0.25");
    CU_ASSERT_DOUBLE_EQUAL(avail_of(&t, r0, gname(&g, "GPU", -1)), 0.25, 1e-9);
    /* Everything returns: the group's GPUs are whole again, the node's unchanged. */
    harness_lease *all[] = {&plain, &half_a, &half_b, &both, &frac};
    for (size_t i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(harness_lease_return(&t, all[i], 0), GRPC_STATUS_OK);
    CU_ASSERT_DOUBLE_EQUAL(avail_of(&t, r0, gname(&g, "GPU", -1)), 2.5, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(avail_of(&t, r0, gname(&g, "GPU", 0)), 2, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(avail_of(&t, r0, "GPU"), 1.5, 1e-9);
    /* Removing the group gives back exactly its instances. */
    CU_ASSERT_EQUAL(release_unused(&t, r0, NULL, 0), GRPC_STATUS_OK);
    CU_ASSERT_DOUBLE_EQUAL(avail_of(&t, r0, "GPU"), 4, 1e-9);
    harness_lease whole4;
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &whole4, HARNESS_RES({"GPU", 4}), NULL, 10000) && harness_lease_granted(&whole4));
    CU_ASSERT_EQUAL(worker_cuda(&t, &whole4, text, sizeof(text)), 0);
    CU_ASSERT_STRING_EQUAL(text, "0,1,2,3");
    for (size_t i = 0; i < 5; i++)
        harness_lease_free(all[i]);
    harness_lease_free(&whole4);
    tc_stop(&t);
}

/* Prepared bundles that are never committed give back exactly what they took; a
 * ReleaseUnusedBundles keeps the bundles listed; a lease waiting for a group's bundle
 * resources is granted once they are committed. */
static void test_release_keeps_used_and_waiting_leases(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t), 0);
    int r0 = harness_fake_raylet(&t, (const char *[]){"--num-cpus", "2", "--resources", "{\"disk\": 4}", NULL});
    CU_ASSERT_EQUAL_FATAL(r0, 0);
    group g, h;
    group_init(&g);
    group_init(&h);
    bundle_buf bg, bh;
    Ray__Rpc__Bundle *gb[1] = {bundle_of(&bg, &g, 0, HARNESS_RES({"CPU", 1}, {"disk", 2}))};
    Ray__Rpc__Bundle *hb[1] = {bundle_of(&bh, &h, 0, HARNESS_RES({"CPU", 0.5}))};
    /* A lease for g's bundle before it exists: infeasible for now, granted after Commit. */
    harness_lease early;
    harness_lease_async(&t, r0, &early, HARNESS_RES({"disk", 1}), &(harness_lease_opts){.pg_id = g.id, .pg_index = 0});
    CU_ASSERT_FALSE(harness_fake_pump(&t, &early.done, 300));
    CU_ASSERT_EQUAL(prepare(&t, r0, gb, 1), 1);
    CU_ASSERT_EQUAL(prepare(&t, r0, hb, 1), 1);
    CU_ASSERT_DOUBLE_EQUAL(avail_of(&t, r0, "CPU"), 0.5, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(avail_of(&t, r0, "disk"), 2, 1e-9);
    CU_ASSERT_EQUAL(commit(&t, r0, gb, 1), GRPC_STATUS_OK);
    CU_ASSERT_FATAL(harness_fake_pump(&t, &early.done, 5000));
    CU_ASSERT(harness_lease_granted(&early));
    char text[128];
    CU_ASSERT_STRING_EQUAL(mapping_of(&early, gname(&g, "disk", 0), text, sizeof(text)), "0:1");
    CU_ASSERT_DOUBLE_EQUAL(avail_of(&t, r0, gname(&g, "disk", -1)), 1, 1e-9);
    /* h was only prepared and g is in use: h goes, g and its lease stay. */
    CU_ASSERT_EQUAL(release_unused(&t, r0, gb, 1), GRPC_STATUS_OK);
    CU_ASSERT_DOUBLE_EQUAL(avail_of(&t, r0, "CPU"), 1, 1e-9);
    CU_ASSERT_EQUAL(kill((pid_t)early.reply->worker_pid, 0), 0);
    CU_ASSERT_DOUBLE_EQUAL(avail_of(&t, r0, gname(&g, "disk", 0)), 1, 1e-9);
    /* The lease comes back: the bundle is whole again. */
    CU_ASSERT_EQUAL(harness_lease_return(&t, &early, 0), GRPC_STATUS_OK);
    CU_ASSERT_DOUBLE_EQUAL(avail_of(&t, r0, gname(&g, "disk", 0)), 2, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(avail_of(&t, r0, gname(&g, "disk", -1)), 2, 1e-9);
    CU_ASSERT_EQUAL(cancel(&t, r0, gb[0]), GRPC_STATUS_OK);
    CU_ASSERT_DOUBLE_EQUAL(avail_of(&t, r0, "CPU"), 2, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(avail_of(&t, r0, "disk"), 4, 1e-9);
    harness_lease_free(&early);
    tc_stop(&t);
}

/* A node learns other nodes' bundle resources from their reports (through the GCS): a
 * lease for a bundle held elsewhere spills back there. */
static void test_spillback_to_the_bundles_node(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t), 0);
    int r0 = harness_fake_raylet(&t, (const char *[]){"--num-cpus", "2", NULL});
    int r1 = harness_fake_raylet(&t, (const char *[]){"--num-cpus", "2", NULL});
    CU_ASSERT_FATAL(r0 == 0 && r1 == 1);
    group g;
    group_init(&g);
    bundle_buf b;
    Ray__Rpc__Bundle *one[1] = {bundle_of(&b, &g, 0, HARNESS_RES({"CPU", 1}))};
    CU_ASSERT_EQUAL(prepare(&t, r1, one, 1), 1);
    CU_ASSERT_EQUAL(commit(&t, r1, one, 1), GRPC_STATUS_OK);
    harness_lease a, c;
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &a, HARNESS_RES({"CPU", 1}), &(harness_lease_opts){.pg_id = g.id, .pg_index = 0}, 10000));
    CU_ASSERT_FATAL(a.reply && a.reply->retry_at_raylet_address);
    CU_ASSERT_EQUAL(a.reply->retry_at_raylet_address->port, t.c.raylets[r1].port);
    /* At the bundle's node it is granted there. */
    CU_ASSERT_FATAL(harness_lease_sync(&t, r1, &c, HARNESS_RES({"CPU", 1}), &(harness_lease_opts){.pg_id = g.id, .pg_index = 0}, 10000));
    CU_ASSERT(harness_lease_granted(&c));
    CU_ASSERT_DOUBLE_EQUAL(avail_of(&t, r1, "CPU"), 1, 1e-9);
    harness_lease_free(&a);
    harness_lease_free(&c);
    tc_stop(&t);
}

/* Many groups come and go (Ray's placement_group_create/removal): the node ends whole,
 * with no bundle resource left, and the raylet keeps up. */
static void test_bundle_churn(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t), 0);
    int r0 = harness_fake_raylet(&t, (const char *[]){"--num-cpus", "4", "--num-gpus", "2", NULL});
    CU_ASSERT_EQUAL_FATAL(r0, 0);
    enum { ROUNDS = 300 };
    int prepared = 0, committed = 0, cancelled = 0;
    int64_t start = rc_mono_ms();
    for (int i = 0; i < ROUNDS; i++) {
        group g;
        group_init(&g);
        bundle_buf b0, b1;
        Ray__Rpc__Bundle *two[2] = {bundle_of(&b0, &g, 0, HARNESS_RES({"CPU", 1}, {"GPU", 0.5})),
                                    bundle_of(&b1, &g, 1, HARNESS_RES({"CPU", 1}))};
        prepared += prepare(&t, r0, two, 2) == 1;
        committed += commit(&t, r0, two, 2) == GRPC_STATUS_OK;
        cancelled += cancel(&t, r0, two[0]) == GRPC_STATUS_OK && cancel(&t, r0, two[1]) == GRPC_STATUS_OK;
    }
    int64_t ms = rc_mono_ms() - start;
    fprintf(stderr, "    (%d groups of 2 bundles prepared, committed and cancelled in %lld ms: %.0f groups/s, 4 "
                    "sequential calls each)\n",
            ROUNDS, (long long)ms, ROUNDS * 1000.0 / (double)(ms ? ms : 1));
    CU_ASSERT_EQUAL(prepared, ROUNDS);
    CU_ASSERT_EQUAL(committed, ROUNDS);
    CU_ASSERT_EQUAL(cancelled, ROUNDS);
    CU_ASSERT_DOUBLE_EQUAL(avail_of(&t, r0, "CPU"), 4, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(avail_of(&t, r0, "GPU"), 2, 1e-9);
    CU_ASSERT_EQUAL(count_named(&t, r0, "_group_"), 0);
    tc_stop(&t);
}

/* ---- actors ------------------------------------------------------------------------- */

static int add_job(tc *t, int job)
{
    uint8_t id[RC_JOB_ID_SIZE];
    harness_job_id(job, id);
    Ray__Rpc__JobConfig config = RAY__RPC__JOB_CONFIG__INIT;
    Ray__Rpc__JobTableData data = RAY__RPC__JOB_TABLE_DATA__INIT;
    data.job_id.data = id;
    data.job_id.len = sizeof(id);
    data.driver_ip_address = "127.0.0.1";
    data.driver_pid = 4242;
    data.config = &config;
    Ray__Rpc__AddJobRequest req = RAY__RPC__ADD_JOB_REQUEST__INIT;
    req.data = &data;
    ProtobufCMessage *reply = NULL;
    int code = rpc_client_call_sync(gcs_client_rpc(t->gcs), &ray__rpc__job_info_gcs_service__descriptor, "AddJob",
                                    &req.base, 5000, &reply, NULL, 0);
    rpc_msg_free(reply);
    return code;
}

static int finish_job(tc *t, int job)
{
    uint8_t id[RC_JOB_ID_SIZE];
    harness_job_id(job, id);
    Ray__Rpc__MarkJobFinishedRequest req = RAY__RPC__MARK_JOB_FINISHED_REQUEST__INIT;
    req.job_id.data = id;
    req.job_id.len = sizeof(id);
    ProtobufCMessage *reply = NULL;
    int code = rpc_client_call_sync(gcs_client_rpc(t->gcs), &ray__rpc__job_info_gcs_service__descriptor,
                                    "MarkJobFinished", &req.base, 5000, &reply, NULL, 0);
    rpc_msg_free(reply);
    return code;
}

static void test_actor_leases(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t), 0);
    int r0 = harness_fake_raylet(&t, (const char *[]){"--num-cpus", "1", "--num-gpus", "1", NULL});
    CU_ASSERT_EQUAL_FATAL(r0, 0);
    CU_ASSERT_EQUAL(add_job(&t, 7), GRPC_STATUS_OK);
    /* Ray's default actor: placed where a CPU is free, holding nothing. Two fit on one CPU,
     * and a task still gets the CPU. */
    harness_lease_opts dflt = {.actor = 1, .placement = HARNESS_RES({"CPU", 1}), .job = 7};
    harness_lease_opts detached = dflt;
    detached.detached = 1;
    harness_lease a1, a2, task, gpu_actor, blocked;
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &a1, HARNESS_NO_RES, &dflt, 10000) && harness_lease_granted(&a1));
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &a2, HARNESS_NO_RES, &detached, 10000) && harness_lease_granted(&a2));
    CU_ASSERT_DOUBLE_EQUAL(avail_of(&t, r0, "CPU"), 1, 1e-9);
    CU_ASSERT(a1.reply->worker_pid != a2.reply->worker_pid);
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &task, HARNESS_RES({"CPU", 1}), &(harness_lease_opts){.job = 7}, 10000) && harness_lease_granted(&task));
    CU_ASSERT_DOUBLE_EQUAL(avail_of(&t, r0, "CPU"), 0, 1e-9);
    /* An actor holding a GPU holds it for its life, with its instance. */
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &gpu_actor, HARNESS_RES({"GPU", 1}), &(harness_lease_opts){.actor = 1, .job = 7}, 10000));
    CU_ASSERT_FATAL(harness_lease_granted(&gpu_actor));
    CU_ASSERT_DOUBLE_EQUAL(avail_of(&t, r0, "GPU"), 0, 1e-9);
    char text[64];
    CU_ASSERT_EQUAL(worker_cuda(&t, &gpu_actor, text, sizeof(text)), 0);
    CU_ASSERT_STRING_EQUAL(text, "0");
    /* Placement needs a free CPU now: with the task holding it, the next actor waits. */
    harness_lease_async(&t, r0, &blocked, HARNESS_NO_RES, &dflt);
    CU_ASSERT_FALSE(harness_fake_pump(&t, &blocked.done, 400));
    CU_ASSERT_EQUAL(harness_lease_return(&t, &task, 0), GRPC_STATUS_OK);
    CU_ASSERT_FATAL(harness_fake_pump(&t, &blocked.done, 10000));
    CU_ASSERT(harness_lease_granted(&blocked));
    /* The task's worker went back to the pool, so the actor may take it; but an actor's
     * worker is never reused: returning its lease (even without disconnect_worker) kills
     * it, and its GPU is free again. */
    pid_t gpu_pid = (pid_t)gpu_actor.reply->worker_pid;
    CU_ASSERT_EQUAL(harness_lease_return(&t, &gpu_actor, 0), GRPC_STATUS_OK);
    CU_ASSERT(harness_pid_gone(gpu_pid, 5000));
    CU_ASSERT_DOUBLE_EQUAL(avail_of(&t, r0, "GPU"), 1, 1e-9);
    pid_t blocked_pid = (pid_t)blocked.reply->worker_pid;
    CU_ASSERT_EQUAL(harness_lease_return(&t, &blocked, 1), GRPC_STATUS_OK);
    CU_ASSERT(harness_pid_gone(blocked_pid, 5000));
    /* The job ends: its actors' workers go, a detached actor's stays. */
    CU_ASSERT_EQUAL(finish_job(&t, 7), GRPC_STATUS_OK);
    CU_ASSERT(harness_pid_gone((pid_t)a1.reply->worker_pid, 5000));
    rc_sleep_ms(300);
    CU_ASSERT_EQUAL(kill((pid_t)a2.reply->worker_pid, 0), 0);
    harness_lease *all[] = {&a1, &a2, &task, &gpu_actor, &blocked};
    for (size_t i = 0; i < 5; i++)
        harness_lease_free(all[i]);
    tc_stop(&t);
}

/* An actor in a placement group: placed and held through its bundle; the bundle's removal
 * ends it. */
static void test_actor_in_a_bundle(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t), 0);
    int r0 = harness_fake_raylet(&t, (const char *[]){"--num-cpus", "2", NULL});
    CU_ASSERT_EQUAL_FATAL(r0, 0);
    group g;
    group_init(&g);
    bundle_buf b;
    Ray__Rpc__Bundle *one[1] = {bundle_of(&b, &g, 0, HARNESS_RES({"CPU", 1}))};
    CU_ASSERT_EQUAL(prepare(&t, r0, one, 1), 1);
    CU_ASSERT_EQUAL(commit(&t, r0, one, 1), GRPC_STATUS_OK);
    /* As the owner sends it: placement {CPU_group_<pg>: 1}, nothing held but the bundle
     * label the raylet adds. */
    harness_lease a;
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &a, HARNESS_NO_RES,
                               &(harness_lease_opts){.actor = 1, .placement = HARNESS_RES({gname(&g, "CPU", -1), 1}), .pg_id = g.id,
                                             .pg_index = -1},
                               10000));
    CU_ASSERT_FATAL(harness_lease_granted(&a));
    CU_ASSERT_DOUBLE_EQUAL(avail_of(&t, r0, gname(&g, "CPU", 0)), 1, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(avail_of(&t, r0, gname(&g, "bundle", 0)), 999.999, 1e-6);
    CU_ASSERT_EQUAL(cancel(&t, r0, one[0]), GRPC_STATUS_OK);
    CU_ASSERT(harness_pid_gone((pid_t)a.reply->worker_pid, 5000));
    CU_ASSERT_DOUBLE_EQUAL(avail_of(&t, r0, "CPU"), 2, 1e-9);
    harness_lease_free(&a);
    tc_stop(&t);
}

/* ---- worker failure reports --------------------------------------------------------- */

static const uint8_t *worker_id_of(const harness_lease *lc)
{
    return lc->reply->worker_address->worker_id.data;
}

/* Checks the fields every report of worker lc (on raylet ri) carries. */
static void check_report(tc *t, const Ray__Rpc__WorkerTableData *d, const harness_lease *lc, int ri)
{
    CU_ASSERT_FALSE(d->is_alive);
    CU_ASSERT_EQUAL(d->worker_type, RAY__RPC__WORKER_TYPE__WORKER);
    CU_ASSERT_FATAL(d->worker_address != NULL);
    CU_ASSERT_EQUAL(d->worker_address->port, lc->reply->worker_address->port);
    CU_ASSERT_STRING_EQUAL(d->worker_address->ip_address, "127.0.0.1");
    uint8_t node[RC_NODE_ID_SIZE];
    rc_id_from_hex(t->c.raylets[ri].node_id, node, sizeof(node));
    CU_ASSERT(d->worker_address->node_id.len == RC_NODE_ID_SIZE && !memcmp(d->worker_address->node_id.data, node, RC_NODE_ID_SIZE));
    CU_ASSERT_EQUAL(d->pid, lc->reply->worker_pid);
    CU_ASSERT_EQUAL(d->_exit_type_case, RAY__RPC__WORKER_TABLE_DATA___EXIT_TYPE_EXIT_TYPE);
    CU_ASSERT_EQUAL(d->_exit_detail_case, RAY__RPC__WORKER_TABLE_DATA___EXIT_DETAIL_EXIT_DETAIL);
    CU_ASSERT(d->end_time_ms > 0 && d->start_time_ms > 0 && d->start_time_ms <= d->end_time_ms);
}

static void test_worker_failure_reports(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t), 0);
    int r0 = harness_fake_raylet(&t, (const char *[]){"--num-cpus", "8", NULL});
    CU_ASSERT_EQUAL_FATAL(r0, 0);
    harness_lease killed, clean, failed, bye, returned, refused;
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &killed, HARNESS_RES({"CPU", 1}), NULL, 10000) && harness_lease_granted(&killed));
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &clean, HARNESS_RES({"CPU", 1}), NULL, 10000) && harness_lease_granted(&clean));
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &failed, HARNESS_RES({"CPU", 1}), NULL, 10000) && harness_lease_granted(&failed));
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &bye, HARNESS_RES({"CPU", 1}), NULL, 10000) && harness_lease_granted(&bye));
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &returned, HARNESS_RES({"CPU", 1}), NULL, 10000) && harness_lease_granted(&returned));
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &refused, HARNESS_RES({"CPU", 1}), NULL, 10000) && harness_lease_granted(&refused));

    /* Killed by a signal: SYSTEM_ERROR. */
    kill((pid_t)killed.reply->worker_pid, SIGKILL);
    Ray__Rpc__WorkerTableData *d = proxy_wait_report(&px, worker_id_of(&killed), 10000);
    CU_ASSERT_FATAL(d != NULL);
    check_report(&t, d, &killed, r0);
    CU_ASSERT_EQUAL(d->exit_type, RAY__RPC__WORKER_EXIT_TYPE__SYSTEM_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(d->exit_detail, "killed by signal 9"));
    fprintf(stderr, "    (report: %s)\n", d->exit_detail);
    rpc_msg_free(&d->base);
    /* Exit 0: INTENDED_USER_EXIT; exit 3: SYSTEM_ERROR. */
    harness_lease_push(&t, &clean, "exit", "0", 3000, NULL, 0); /* the worker exits instead of answering */
    d = proxy_wait_report(&px, worker_id_of(&clean), 10000);
    CU_ASSERT_FATAL(d != NULL);
    check_report(&t, d, &clean, r0);
    CU_ASSERT_EQUAL(d->exit_type, RAY__RPC__WORKER_EXIT_TYPE__INTENDED_USER_EXIT);
    CU_ASSERT_PTR_NOT_NULL(strstr(d->exit_detail, "exited with status 0"));
    rpc_msg_free(&d->base);
    harness_lease_push(&t, &failed, "exit", "3", 3000, NULL, 0); /* the worker exits instead of answering */
    d = proxy_wait_report(&px, worker_id_of(&failed), 10000);
    CU_ASSERT_FATAL(d != NULL);
    CU_ASSERT_EQUAL(d->exit_type, RAY__RPC__WORKER_EXIT_TYPE__SYSTEM_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(d->exit_detail, "exited with status 3"));
    rpc_msg_free(&d->base);
    /* A goodbye (DisconnectClient) stands for the worker: its exit type and detail. */
    harness_lease_push(&t, &bye, "goodbye", "", 3000, NULL, 0); /* the worker exits instead of answering */
    d = proxy_wait_report(&px, worker_id_of(&bye), 10000);
    CU_ASSERT_FATAL(d != NULL);
    CU_ASSERT_EQUAL(d->exit_type, RAY__RPC__WORKER_EXIT_TYPE__INTENDED_USER_EXIT);
    CU_ASSERT_PTR_NOT_NULL(strstr(d->exit_detail, "goodbye from the fake worker"));
    rpc_msg_free(&d->base);
    /* Killed by the raylet (its lease returned with disconnect_worker): INTENDED_SYSTEM_EXIT. */
    CU_ASSERT_EQUAL(harness_lease_return(&t, &returned, 1), GRPC_STATUS_OK);
    d = proxy_wait_report(&px, worker_id_of(&returned), 10000);
    CU_ASSERT_FATAL(d != NULL);
    CU_ASSERT_EQUAL(d->exit_type, RAY__RPC__WORKER_EXIT_TYPE__INTENDED_SYSTEM_EXIT);
    CU_ASSERT_PTR_NOT_NULL(strstr(d->exit_detail, "disconnect_worker"));
    rpc_msg_free(&d->base);

    /* The GCS does not answer for a while (restarting): the report arrives once it does. */
    pthread_mutex_lock(&px.mu);
    px.refuse = 3;
    pthread_mutex_unlock(&px.mu);
    kill((pid_t)refused.reply->worker_pid, SIGKILL);
    d = proxy_wait_report(&px, worker_id_of(&refused), 15000);
    CU_ASSERT_FATAL(d != NULL);
    CU_ASSERT_EQUAL(d->exit_type, RAY__RPC__WORKER_EXIT_TYPE__SYSTEM_ERROR);
    rpc_msg_free(&d->base);
    pthread_mutex_lock(&px.mu);
    CU_ASSERT_EQUAL(px.refused, 3);
    pthread_mutex_unlock(&px.mu);

    /* Drivers: one disconnects (its exit type), one dies without a word (SYSTEM_ERROR). */
    uint8_t job[RC_JOB_ID_SIZE];
    harness_job_id(1, job);
    uint8_t polite[RC_WORKER_ID_SIZE], sudden[RC_WORKER_ID_SIZE];
    rc_id_random(polite, sizeof(polite));
    rc_id_random(sudden, sizeof(sudden));
    pid_t child = fork();
    if (child == 0) {
        pause();
        _exit(0);
    }
    Rayc__Rpc__RegisterClientRequest reg = RAYC__RPC__REGISTER_CLIENT_REQUEST__INIT;
    reg.worker_type = RAY__RPC__WORKER_TYPE__DRIVER;
    reg.job_id.data = job;
    reg.job_id.len = sizeof(job);
    reg.worker_id.data = polite;
    reg.worker_id.len = sizeof(polite);
    reg.pid = getpid();
    reg.port = 4321;
    ProtobufCMessage *reply = NULL;
    CU_ASSERT_EQUAL(rpc_client_call_sync(t.local[r0], &rayc__rpc__local_raylet_service__descriptor, "RegisterClient",
                                         &reg.base, 5000, &reply, NULL, 0),
                    GRPC_STATUS_OK);
    rpc_msg_free(reply);
    reg.worker_id.data = sudden;
    reg.pid = child;
    reg.port = 4322;
    CU_ASSERT_EQUAL(rpc_client_call_sync(t.local[r0], &rayc__rpc__local_raylet_service__descriptor, "RegisterClient",
                                         &reg.base, 5000, &reply, NULL, 0),
                    GRPC_STATUS_OK);
    rpc_msg_free(reply);
    Rayc__Rpc__DisconnectClientRequest dis = RAYC__RPC__DISCONNECT_CLIENT_REQUEST__INIT;
    dis.worker_id.data = polite;
    dis.worker_id.len = sizeof(polite);
    dis.exit_type = RAY__RPC__WORKER_EXIT_TYPE__INTENDED_USER_EXIT;
    dis.exit_detail = "the driver is done";
    CU_ASSERT_EQUAL(rpc_client_call_sync(t.local[r0], &rayc__rpc__local_raylet_service__descriptor, "DisconnectClient",
                                         &dis.base, 5000, &reply, NULL, 0),
                    GRPC_STATUS_OK);
    rpc_msg_free(reply);
    d = proxy_wait_report(&px, polite, 10000);
    CU_ASSERT_FATAL(d != NULL);
    CU_ASSERT_EQUAL(d->worker_type, RAY__RPC__WORKER_TYPE__DRIVER);
    CU_ASSERT_EQUAL(d->exit_type, RAY__RPC__WORKER_EXIT_TYPE__INTENDED_USER_EXIT);
    CU_ASSERT_EQUAL(d->worker_address->port, 4321);
    CU_ASSERT_EQUAL(d->pid, (uint32_t)getpid());
    CU_ASSERT_PTR_NOT_NULL(strstr(d->exit_detail, "the driver is done"));
    rpc_msg_free(&d->base);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    d = proxy_wait_report(&px, sudden, 10000);
    CU_ASSERT_FATAL(d != NULL);
    CU_ASSERT_EQUAL(d->worker_type, RAY__RPC__WORKER_TYPE__DRIVER);
    CU_ASSERT_EQUAL(d->exit_type, RAY__RPC__WORKER_EXIT_TYPE__SYSTEM_ERROR);
    CU_ASSERT_EQUAL(d->worker_address->port, 4322);
    CU_ASSERT_PTR_NOT_NULL(strstr(d->exit_detail, "exited without disconnecting"));
    rpc_msg_free(&d->base);
    CU_ASSERT_EQUAL(proxy_report_count(&px), 8);
    harness_lease *all[] = {&killed, &clean, &failed, &bye, &returned, &refused};
    for (size_t i = 0; i < 6; i++)
        harness_lease_free(all[i]);
    tc_stop(&t);
}

static const unit_case cases[] = {
    UNIT_CASE(test_prepare_commit_cancel),    UNIT_CASE(test_gpu_instances_within_bundles),
    UNIT_CASE(test_release_keeps_used_and_waiting_leases),
    UNIT_CASE(test_spillback_to_the_bundles_node), UNIT_CASE(test_bundle_churn), UNIT_CASE(test_actor_leases),
    UNIT_CASE(test_actor_in_a_bundle),        UNIT_CASE(test_worker_failure_reports),
};

int main(void)
{
    return unit_run("bundles", cases, UNIT_N(cases));
}
