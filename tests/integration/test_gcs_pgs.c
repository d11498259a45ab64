/*
 * The GCS placement-group manager against real daemons: rayc-gcs (memory or Redis) and
 * rayc-raylets (rayc-fake-worker as their workers), with this process as the creator
 * (PlacementGroupInfoGcsService). Cases: each strategy on a 3-node cluster (where bundles
 * land, Ray's bundle resources on the raylets); STRICT_SPREAD of 4 bundles on 3 nodes stays
 * PENDING, is listed in GetAllResourceUsage.placement_group_load and under Demands in
 * `rayc status`, and is CREATED when a 4th node joins; removal gives back exactly what was
 * reserved (GetAllAvailableResources before and after) and kills the actors placed in the
 * group; a failed PrepareBundleResources rolls the other prepared bundles back (one node is
 * a fake raylet in this process that refuses on demand); a node death reschedules only the
 * lost bundles (STRICT_SPREAD keeps them off the surviving bundles' nodes); a group no
 * node set can hold stays PENDING with the scheduler's sentence (GetPlacementGroup,
 * `rayc status`, `rayc list placement-groups`); names per namespace; a finished job removes
 * its groups; a GCS restart on Redis keeps CREATED groups and places pending ones; and a
 * GCS stopped with calls held (a wait, a creation) answers them and exits cleanly.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fake_cluster.h"
#include "gcs_client.h"
#include "gcs_service.pb-c.h"
#include "health.pb-c.h"
#include "node_manager.pb-c.h"
#include "rayc_gcs.pb-c.h"
#include "rc_alloc.h"
#include "rc_config.h"
#include "rc_ids.h"
#include "rc_time.h"
#include "unit.h"

#ifndef FAKE_WORKER
#error "FAKE_WORKER must name the fake worker program"
#endif

#define PGS (&ray__rpc__placement_group_info_gcs_service__descriptor)
#define ACTORS (&ray__rpc__actor_info_gcs_service__descriptor)
#define PG_CREATED RAY__RPC__PLACEMENT_GROUP_TABLE_DATA__PLACEMENT_GROUP_STATE__CREATED
#define PG_PENDING RAY__RPC__PLACEMENT_GROUP_TABLE_DATA__PLACEMENT_GROUP_STATE__PENDING
#define PG_REMOVED RAY__RPC__PLACEMENT_GROUP_TABLE_DATA__PLACEMENT_GROUP_STATE__REMOVED

typedef Ray__Rpc__PlacementGroupTableData pg_data;

/* ---- cluster ------------------------------------------------------------------------ */

typedef harness_fake tc;

static void quick_config(int fast_health)
{
    setenv("RAYC_raylet_report_keepalive_ms", "200", 1);
    setenv("RAYC_raylet_cluster_view_poll_ms", "100", 1);
    setenv("RAYC_prestart_worker_first_driver", "0", 1);
    setenv("RAYC_health_check_initial_delay_ms", fast_health ? "200" : "1000", 1);
    setenv("RAYC_health_check_period_ms", fast_health ? "200" : "1000", 1);
    setenv("RAYC_health_check_timeout_ms", fast_health ? "500" : "5000", 1);
    setenv("RAYC_health_check_failure_threshold", fast_health ? "3" : "10", 1);
    setenv("RAYC_gcs_create_placement_group_retry_min_interval_ms", "50", 1);
    setenv("RAYC_gcs_create_placement_group_retry_max_interval_ms", "200", 1);
    unsetenv("RAYC_FAKE_WORKER_MODE");
    rc_config_init();
}

static int tc_start(tc *t, int use_redis, int fast_health)
{
    quick_config(fast_health);
    return harness_fake_start(t, use_redis, FAKE_WORKER, 0);
}

/* A raylet with cpus CPUs (and extra flags, NULL-terminated). Returns its index. */
static int tc_raylet(tc *t, const char *cpus, const char *const *extra)
{
    const char *flags[64] = {"--num-cpus", cpus};
    int n = 2;
    for (int i = 0; extra && extra[i] && n < 63; i++)
        flags[n++] = extra[i];
    flags[n] = NULL;
    return harness_fake_raylet(t, flags);
}

static void tc_stop(tc *t)
{
    harness_fake_stop(t, HARNESS_FAKE_CHECK_GCS);
}

static void node_bytes(tc *t, int i, uint8_t *out)
{
    CU_ASSERT_EQUAL(rc_id_from_hex(t->c.raylets[i].node_id, out, RC_NODE_ID_SIZE), 0);
}

/* Runs a rayc command against the cluster; its output goes into out. Returns its status. */
static int rayc(tc *t, const char *args, char *out, size_t outlen)
{
    char cmd[PATH_MAX + 512];
    snprintf(cmd, sizeof(cmd), "%s/rayc %s --address %s", t->c.bin, args, t->c.gcs_address);
    FILE *p = popen(cmd, "r");
    size_t n = fread(out, 1, outlen - 1, p);
    out[n] = '\0';
    return pclose(p);
}

/* ---- placement groups --------------------------------------------------------------- */

typedef struct bundle_shape {
    double cpu;
    const char *custom; /* another resource of 1, or NULL */
} bundle_shape;

typedef struct pg_opts {
    const char *name;
    int job; /* 0: none */
    int detached;
} pg_opts;

static int create_pg(tc *t, const uint8_t *id, int strategy, const bundle_shape *shapes, size_t n, const pg_opts *o,
                     char *message, size_t mlen)
{
    Ray__Rpc__Bundle bundles[16], *ptrs[16];
    Ray__Rpc__Bundle__UnitResourcesEntry res[16][2], *res_ptrs[16][2];
    for (size_t i = 0; i < n; i++) {
        ray__rpc__bundle__init(&bundles[i]);
        size_t k = 0;
        if (shapes[i].cpu > 0) {
            ray__rpc__bundle__unit_resources_entry__init(&res[i][k]);
            res[i][k].key = "CPU";
            res[i][k].value = shapes[i].cpu;
            res_ptrs[i][k] = &res[i][k];
            k++;
        }
        if (shapes[i].custom) {
            ray__rpc__bundle__unit_resources_entry__init(&res[i][k]);
            res[i][k].key = (char *)shapes[i].custom;
            res[i][k].value = 1;
            res_ptrs[i][k] = &res[i][k];
            k++;
        }
        bundles[i].unit_resources = res_ptrs[i];
        bundles[i].n_unit_resources = k;
        ptrs[i] = &bundles[i];
    }
    uint8_t job[RC_JOB_ID_SIZE] = {0, 0, 0, (uint8_t)(o ? o->job : 0)};
    Ray__Rpc__PlacementGroupSpec spec = RAY__RPC__PLACEMENT_GROUP_SPEC__INIT;
    spec.placement_group_id.data = (uint8_t *)id;
    spec.placement_group_id.len = RC_PG_ID_SIZE;
    spec.name = (char *)(o && o->name ? o->name : "");
    spec.bundles = ptrs;
    spec.n_bundles = n;
    spec.strategy = (Ray__Rpc__PlacementStrategy)strategy;
    if (o && o->job) {
        spec.creator_job_id.data = job;
        spec.creator_job_id.len = sizeof(job);
    }
    spec.is_detached = o ? o->detached : 0;
    Ray__Rpc__CreatePlacementGroupRequest req = RAY__RPC__CREATE_PLACEMENT_GROUP_REQUEST__INIT;
    req.placement_group_spec = &spec;
    return harness_fake_gcs_call(t, PGS, "CreatePlacementGroup", &req.base, NULL, message, mlen);
}

static pg_data *get_pg(tc *t, const uint8_t *id, char *message, size_t mlen)
{
    Ray__Rpc__GetPlacementGroupRequest req = RAY__RPC__GET_PLACEMENT_GROUP_REQUEST__INIT;
    req.placement_group_id.data = (uint8_t *)id;
    req.placement_group_id.len = RC_PG_ID_SIZE;
    ProtobufCMessage *reply = NULL;
    if (harness_fake_gcs_call(t, PGS, "GetPlacementGroup", &req.base, &reply, message, mlen) != 0) {
        rpc_msg_free(reply);
        return NULL;
    }
    Ray__Rpc__GetPlacementGroupReply *r = (void *)reply;
    pg_data *d = r->placement_group_table_data;
    r->placement_group_table_data = NULL;
    rpc_msg_free(reply);
    return d;
}

/* A WaitPlacementGroupUntilReady in flight. */
typedef struct wait_call {
    int done, code, status;
} wait_call;

static void waited(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    wait_call *w = arg;
    w->code = st->code;
    w->status = reply ? gcs_reply_status(reply, NULL) : -1;
    w->done = 1;
    rpc_msg_free(reply);
}

static void wait_async(tc *t, const uint8_t *id, wait_call *w)
{
    memset(w, 0, sizeof(*w));
    Ray__Rpc__WaitPlacementGroupUntilReadyRequest req = RAY__RPC__WAIT_PLACEMENT_GROUP_UNTIL_READY_REQUEST__INIT;
    req.placement_group_id.data = (uint8_t *)id;
    req.placement_group_id.len = RC_PG_ID_SIZE;
    CU_ASSERT_EQUAL(rpc_client_call(gcs_client_rpc(t->gcs), PGS, "WaitPlacementGroupUntilReady", &req.base, 60000,
                                    waited, w),
                    0);
}

/* Waits until the group is CREATED (WaitPlacementGroupUntilReady); returns its record. */
static pg_data *wait_created(tc *t, const uint8_t *id, int ms)
{
    wait_call w;
    wait_async(t, id, &w);
    harness_fake_pump(t, &w.done, ms);
    if (!w.done || w.code != GRPC_STATUS_OK || w.status != 0) {
        fprintf(stderr, "    WaitPlacementGroupUntilReady: done %d code %d status %d\n", w.done, w.code, w.status);
        if (!w.done)
            harness_fake_pump(t, &w.done, 65000); /* the call must end before w goes away */
        return NULL;
    }
    pg_data *d = get_pg(t, id, NULL, 0);
    CU_ASSERT_TRUE(d && d->state == PG_CREATED);
    return d;
}

static pg_data *wait_pg_state(tc *t, const uint8_t *id, int state, int ms)
{
    int64_t deadline = rc_mono_ms() + ms;
    while (rc_mono_ms() < deadline) {
        pg_data *d = get_pg(t, id, NULL, 0);
        if (d && (int)d->state == state)
            return d;
        rpc_msg_free(d ? &d->base : NULL);
        harness_fake_pump(t, NULL, 50);
    }
    return NULL;
}

static int remove_pg(tc *t, const uint8_t *id)
{
    Ray__Rpc__RemovePlacementGroupRequest req = RAY__RPC__REMOVE_PLACEMENT_GROUP_REQUEST__INIT;
    req.placement_group_id.data = (uint8_t *)id;
    req.placement_group_id.len = RC_PG_ID_SIZE;
    return harness_fake_gcs_call(t, PGS, "RemovePlacementGroup", &req.base, NULL, NULL, 0);
}

/* How many distinct nodes hold the bundles; nodes_out (may be NULL) gets each bundle's. */
static int distinct_nodes(const pg_data *d)
{
    int n = 0;
    for (size_t i = 0; i < d->n_bundles; i++) {
        int seen = 0;
        for (size_t j = 0; j < i; j++)
            seen |= !memcmp(d->bundles[i]->node_id.data, d->bundles[j]->node_id.data, RC_NODE_ID_SIZE);
        n += !seen;
    }
    return n;
}

static int all_placed(const pg_data *d)
{
    for (size_t i = 0; i < d->n_bundles; i++)
        if (d->bundles[i]->node_id.len != RC_NODE_ID_SIZE)
            return 0;
    return 1;
}

/* ---- resources ---------------------------------------------------------------------- */

/* Every (node, resource) -> available amount, as text "nodehex/name=amount;" sorted. */
static int by_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *available_text(tc *t)
{
    Ray__Rpc__GetAllAvailableResourcesRequest req = RAY__RPC__GET_ALL_AVAILABLE_RESOURCES_REQUEST__INIT;
    ProtobufCMessage *reply = NULL;
    if (harness_fake_gcs_call(t, &ray__rpc__node_resource_info_gcs_service__descriptor, "GetAllAvailableResources", &req.base,
                 &reply, NULL, 0) != 0)
        return strdup("");
    const Ray__Rpc__GetAllAvailableResourcesReply *r = (void *)reply;
    char *lines[512];
    size_t n = 0;
    for (size_t i = 0; i < r->n_resources_list; i++) {
        char hex[RC_ID_HEX_MAX];
        rc_id_hex(r->resources_list[i]->node_id.data, 8, hex);
        for (size_t k = 0; k < r->resources_list[i]->n_resources_available && n < 512; k++) {
            char line[512];
            snprintf(line, sizeof(line), "%s/%s=%.4f;", hex, r->resources_list[i]->resources_available[k]->key,
                     r->resources_list[i]->resources_available[k]->value);
            lines[n++] = strdup(line);
        }
    }
    qsort(lines, n, sizeof(*lines), by_str);
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(lines[i]);
    char *text = calloc(1, len);
    for (size_t i = 0; i < n; i++) {
        strcat(text, lines[i]);
        free(lines[i]);
    }
    rpc_msg_free(reply);
    return text;
}

/* Waits until the available resources read exactly want. */
static int wait_available(tc *t, const char *want, int ms)
{
    int64_t deadline = rc_mono_ms() + ms;
    char *now = NULL;
    while (rc_mono_ms() < deadline) {
        free(now);
        now = available_text(t);
        if (!strcmp(now, want)) {
            free(now);
            return 1;
        }
        harness_fake_pump(t, NULL, 100);
    }
    fprintf(stderr, "    available resources differ:\n    want %s\n    have %s\n", want, now);
    free(now);
    return 0;
}

/* Whether a resource name appears among the available resources. */
static int has_resource(tc *t, const char *needle)
{
    char *text = available_text(t);
    int found = strstr(text, needle) != NULL;
    free(text);
    return found;
}

/* ---- a fake raylet in this process (refuses PrepareBundleResources on demand) ------- */

typedef struct fake_node {
    tc *t;
    rpc_server *srv;
    rpc_client *report_cli;
    int port;
    uint8_t id[RC_NODE_ID_SIZE];
    double cpu_total, cpu_avail;
    int refuse_prepare;
    int prepares, commits, cancels;
    int reserved; /* bundles held */
} fake_node;

static void fake_reported(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    (void)st;
    (void)arg;
    rpc_msg_free(reply);
}

static void fake_report(fake_node *f)
{
    Ray__Rpc__ResourcesData__ResourcesAvailableEntry avail = RAY__RPC__RESOURCES_DATA__RESOURCES_AVAILABLE_ENTRY__INIT;
    Ray__Rpc__ResourcesData__ResourcesTotalEntry total = RAY__RPC__RESOURCES_DATA__RESOURCES_TOTAL_ENTRY__INIT;
    avail.key = total.key = "CPU";
    avail.value = f->cpu_avail;
    total.value = f->cpu_total;
    Ray__Rpc__ResourcesData__ResourcesAvailableEntry *ap[1] = {&avail};
    Ray__Rpc__ResourcesData__ResourcesTotalEntry *tp[1] = {&total};
    Ray__Rpc__ResourcesData d = RAY__RPC__RESOURCES_DATA__INIT;
    d.node_id.data = f->id;
    d.node_id.len = sizeof(f->id);
    d.resources_available = ap;
    d.n_resources_available = 1;
    d.resources_total = tp;
    d.n_resources_total = 1;
    d.node_manager_address = "127.0.0.1";
    Rayc__Rpc__ReportResourceUsageRequest req = RAYC__RPC__REPORT_RESOURCE_USAGE_REQUEST__INIT;
    req.resources = &d;
    rpc_client_call(gcs_client_rpc(f->t->gcs), &rayc__rpc__resource_report_gcs_service__descriptor,
                    "ReportResourceUsage", &req.base, 5000, fake_reported, NULL);
}

static double bundles_cpu(Ray__Rpc__Bundle **b, size_t n)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < b[i]->n_unit_resources; k++)
            if (!strcmp(b[i]->unit_resources[k]->key, "CPU"))
                sum += b[i]->unit_resources[k]->value;
    return sum;
}

static void fake_prepare(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    fake_node *f = arg;
    const Ray__Rpc__PrepareBundleResourcesRequest *req = (const void *)request;
    Ray__Rpc__PrepareBundleResourcesReply reply = RAY__RPC__PREPARE_BUNDLE_RESOURCES_REPLY__INIT;
    f->prepares++;
    double need = bundles_cpu(req->bundle_specs, req->n_bundle_specs);
    if (!f->refuse_prepare && need <= f->cpu_avail) {
        f->cpu_avail -= need;
        f->reserved += (int)req->n_bundle_specs;
        reply.success = 1;
    }
    rpc_reply(call, &reply.base);
    fake_report(f);
}

static void fake_commit(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    fake_node *f = arg;
    (void)request;
    f->commits++;
    Ray__Rpc__CommitBundleResourcesReply reply = RAY__RPC__COMMIT_BUNDLE_RESOURCES_REPLY__INIT;
    rpc_reply(call, &reply.base);
}

static void fake_cancel(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    fake_node *f = arg;
    const Ray__Rpc__CancelResourceReserveRequest *req = (const void *)request;
    f->cancels++;
    if (req->bundle_spec && f->reserved > 0) {
        f->cpu_avail += bundles_cpu((Ray__Rpc__Bundle **)&req->bundle_spec, 1);
        f->reserved--;
    }
    Ray__Rpc__CancelResourceReserveReply reply = RAY__RPC__CANCEL_RESOURCE_RESERVE_REPLY__INIT;
    rpc_reply(call, &reply.base);
    fake_report(f);
}

static void fake_release(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    (void)request;
    (void)arg;
    Ray__Rpc__ReleaseUnusedBundlesReply reply = RAY__RPC__RELEASE_UNUSED_BUNDLES_REPLY__INIT;
    rpc_reply(call, &reply.base);
}

static void fake_health(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    (void)request;
    (void)arg;
    Grpc__Health__V1__HealthCheckResponse reply = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    reply.status = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    rpc_reply(call, &reply.base);
}

static const rpc_method_handler fake_node_handlers[] = {
    {"PrepareBundleResources", fake_prepare}, {"CommitBundleResources", fake_commit},
    {"CancelResourceReserve", fake_cancel},   {"ReleaseUnusedBundles", fake_release},
    {NULL, NULL},
};
static const rpc_method_handler fake_health_handlers[] = {{"Check", fake_health}, {NULL, NULL}};

static int fake_node_start(tc *t, fake_node *f, double cpus)
{
    memset(f, 0, sizeof(*f));
    f->t = t;
    f->cpu_total = f->cpu_avail = cpus;
    rc_id_random(f->id, sizeof(f->id));
    /* It serves as the node it registers: the GCS talks only to a raylet whose certificate
     * names the node it reached it for. */
    char cn[80] = "node:", *key = NULL, *cert = NULL;
    rc_id_hex(f->id, sizeof(f->id), cn + 5);
    if (harness_issue_cert(&t->c, cn, &key, &cert) < 0)
        return -1;
    rpc_security sec = {.ca_cert_pem = t->c.ca_cert, .cert_pem = cert, .key_pem = key};
    rpc_server_options so = {&sec, 0};
    rpc_server_create(t->rpc, &so, &f->srv);
    rc_free(key);
    rc_free(cert);
    rpc_server_add_service(f->srv, &ray__rpc__node_manager_service__descriptor, fake_node_handlers, f);
    rpc_server_add_service(f->srv, &grpc__health__v1__health__descriptor, fake_health_handlers, f);
    if (rpc_server_listen(f->srv, "127.0.0.1:0", &f->port) < 0)
        return -1;
    rpc_server_start(f->srv);
    Ray__Rpc__GcsNodeInfo__ResourcesTotalEntry cpu = RAY__RPC__GCS_NODE_INFO__RESOURCES_TOTAL_ENTRY__INIT;
    cpu.key = "CPU";
    cpu.value = cpus;
    Ray__Rpc__GcsNodeInfo__ResourcesTotalEntry *cp[1] = {&cpu};
    Ray__Rpc__GcsNodeInfo info = RAY__RPC__GCS_NODE_INFO__INIT;
    info.node_id.data = f->id;
    info.node_id.len = sizeof(f->id);
    info.node_manager_address = "127.0.0.1";
    info.node_manager_port = f->port;
    info.node_name = "fake";
    info.resources_total = cp;
    info.n_resources_total = 1;
    Ray__Rpc__RegisterNodeRequest req = RAY__RPC__REGISTER_NODE_REQUEST__INIT;
    req.node_info = &info;
    if (harness_fake_gcs_call(t, &ray__rpc__node_info_gcs_service__descriptor, "RegisterNode", &req.base, NULL, NULL, 0) != 0)
        return -1;
    fake_report(f);
    harness_fake_pump(t, NULL, 100);
    return 0;
}

static void fake_node_stop(fake_node *f)
{
    Ray__Rpc__UnregisterNodeRequest req = RAY__RPC__UNREGISTER_NODE_REQUEST__INIT;
    req.node_id.data = f->id;
    req.node_id.len = sizeof(f->id);
    harness_fake_gcs_call(f->t, &ray__rpc__node_info_gcs_service__descriptor, "UnregisterNode", &req.base, NULL, NULL, 0);
    rpc_server_destroy(f->srv);
}

/* ---- cases -------------------------------------------------------------------------- */

static void test_strategies_on_three_nodes(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t, 0, 0), 0);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_FATAL(tc_raylet(&t, "6", NULL) >= 0);
    bundle_shape one = {1, NULL}, two = {2, NULL};
    bundle_shape ones[3] = {one, one, one}, twos[2] = {two, two};
    uint8_t pack[RC_PG_ID_SIZE], spread[RC_PG_ID_SIZE], spack[RC_PG_ID_SIZE], sspread[RC_PG_ID_SIZE];
    rc_id_random(pack, sizeof(pack));
    rc_id_random(spread, sizeof(spread));
    rc_id_random(spack, sizeof(spack));
    rc_id_random(sspread, sizeof(sspread));
    CU_ASSERT_EQUAL(create_pg(&t, pack, RAY__RPC__PLACEMENT_STRATEGY__PACK, ones, 3, NULL, NULL, 0), 0);
    pg_data *d = wait_created(&t, pack, 20000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_TRUE(all_placed(d));
    CU_ASSERT_EQUAL(distinct_nodes(d), 1);
    CU_ASSERT_EQUAL(d->stats->scheduling_state, RAY__RPC__PLACEMENT_GROUP_STATS__SCHEDULING_STATE__FINISHED);
    rpc_msg_free(&d->base);
    CU_ASSERT_EQUAL(create_pg(&t, spread, RAY__RPC__PLACEMENT_STRATEGY__SPREAD, ones, 3, NULL, NULL, 0), 0);
    d = wait_created(&t, spread, 20000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_EQUAL(distinct_nodes(d), 3);
    rpc_msg_free(&d->base);
    CU_ASSERT_EQUAL(create_pg(&t, spack, RAY__RPC__PLACEMENT_STRATEGY__STRICT_PACK, twos, 2, NULL, NULL, 0), 0);
    d = wait_created(&t, spack, 20000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_EQUAL(distinct_nodes(d), 1);
    rpc_msg_free(&d->base);
    CU_ASSERT_EQUAL(create_pg(&t, sspread, RAY__RPC__PLACEMENT_STRATEGY__STRICT_SPREAD, ones, 3, NULL, NULL, 0), 0);
    d = wait_created(&t, sspread, 20000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_EQUAL(distinct_nodes(d), 3);
    rpc_msg_free(&d->base);
    /* The raylets turned the reservations into Ray's bundle resources. */
    char hex[RC_ID_HEX_MAX], name[128];
    rc_id_hex(sspread, sizeof(sspread), hex);
    snprintf(name, sizeof(name), "/CPU_group_2_%s=", hex);
    int64_t deadline = rc_mono_ms() + 5000;
    while (!has_resource(&t, name) && rc_mono_ms() < deadline)
        harness_fake_pump(&t, NULL, 100);
    CU_ASSERT_TRUE(has_resource(&t, name));
    snprintf(name, sizeof(name), "/CPU_group_%s=", hex);
    CU_ASSERT_TRUE(has_resource(&t, name));
    /* Bad input is refused with a sentence. */
    char msg[512];
    uint8_t bad[RC_PG_ID_SIZE];
    rc_id_random(bad, sizeof(bad));
    CU_ASSERT_EQUAL(create_pg(&t, bad, RAY__RPC__PLACEMENT_STRATEGY__PACK, NULL, 0, NULL, msg, sizeof(msg)), 34);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "bundles"));
    bundle_shape empty = {0, NULL};
    CU_ASSERT_EQUAL(create_pg(&t, bad, RAY__RPC__PLACEMENT_STRATEGY__PACK, &empty, 1, NULL, msg, sizeof(msg)), 34);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "empty"));
    bundle_shape frac = {1.5, NULL};
    CU_ASSERT_EQUAL(create_pg(&t, bad, RAY__RPC__PLACEMENT_STRATEGY__PACK, &frac, 1, NULL, msg, sizeof(msg)), 34);
    CU_ASSERT_EQUAL(create_pg(&t, bad, 9, &one, 1, NULL, msg, sizeof(msg)), 34);
    tc_stop(&t);
}

static void test_strict_spread_waits_for_fourth_node(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t, 0, 0), 0);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_FATAL(tc_raylet(&t, "2", NULL) >= 0);
    bundle_shape one = {1, NULL}, four[4] = {one, one, one, one};
    uint8_t id[RC_PG_ID_SIZE];
    rc_id_random(id, sizeof(id));
    CU_ASSERT_EQUAL(create_pg(&t, id, RAY__RPC__PLACEMENT_STRATEGY__STRICT_SPREAD, four, 4, NULL, NULL, 0), 0);
    wait_call w;
    wait_async(&t, id, &w);
    harness_fake_pump(&t, &w.done, 1500);
    CU_ASSERT_FALSE(w.done);
    pg_data *d = get_pg(&t, id, NULL, 0);
    CU_ASSERT_TRUE(d && d->state == PG_PENDING);
    rpc_msg_free(d ? &d->base : NULL);
    /* Listed as pending demand, and shown under Demands as Ray does. */
    Ray__Rpc__GetAllResourceUsageRequest ureq = RAY__RPC__GET_ALL_RESOURCE_USAGE_REQUEST__INIT;
    ProtobufCMessage *reply = NULL;
    CU_ASSERT_EQUAL_FATAL(harness_fake_gcs_call(&t, &ray__rpc__node_resource_info_gcs_service__descriptor, "GetAllResourceUsage",
                                   &ureq.base, &reply, NULL, 0),
                          0);
    const Ray__Rpc__ResourceUsageBatchData *b = ((Ray__Rpc__GetAllResourceUsageReply *)reply)->resource_usage_data;
    CU_ASSERT_TRUE_FATAL(b && b->placement_group_load);
    CU_ASSERT_EQUAL(b->placement_group_load->n_placement_group_data, 1);
    CU_ASSERT_EQUAL(memcmp(b->placement_group_load->placement_group_data[0]->placement_group_id.data, id, sizeof(id)),
                    0);
    rpc_msg_free(reply);
    char out[8192];
    CU_ASSERT_EQUAL(rayc(&t, "status", out, sizeof(out)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, " {'CPU': 1.0} * 4 (STRICT_SPREAD): 1+ pending placement groups"));
    CU_ASSERT_PTR_NULL(strstr(out, "never:"));
    /* A 4th node: placed. */
    CU_ASSERT_FATAL(tc_raylet(&t, "2", NULL) >= 0);
    harness_fake_pump(&t, &w.done, 20000);
    CU_ASSERT_TRUE(w.done && w.code == GRPC_STATUS_OK && w.status == 0);
    d = get_pg(&t, id, NULL, 0);
    CU_ASSERT_TRUE_FATAL(d && d->state == PG_CREATED);
    CU_ASSERT_EQUAL(distinct_nodes(d), 4);
    rpc_msg_free(&d->base);
    CU_ASSERT_EQUAL(rayc(&t, "status", out, sizeof(out)), 0);
    CU_ASSERT_PTR_NULL(strstr(out, "pending placement groups"));
    tc_stop(&t);
}

/* An actor in bundle `index` of group pg (resources renamed by its owner, Ray's way). */
static int make_pg_actor(tc *t, uint8_t *actor_id, const uint8_t *pg, int64_t index)
{
    rc_id_random(actor_id, RC_ACTOR_ID_SIZE);
    char hex[RC_ID_HEX_MAX], res[128];
    rc_id_hex(pg, RC_PG_ID_SIZE, hex);
    if (index >= 0)
        snprintf(res, sizeof(res), "CPU_group_%lld_%s", (long long)index, hex);
    else
        snprintf(res, sizeof(res), "CPU_group_%s", hex);
    uint8_t job[RC_JOB_ID_SIZE] = {0, 0, 0, 1};
    uint8_t owner[RC_WORKER_ID_SIZE];
    rc_id_random(owner, sizeof(owner));
    Ray__Rpc__CppFunctionDescriptor cpp = RAY__RPC__CPP_FUNCTION_DESCRIPTOR__INIT;
    cpp.class_name = "InGroup";
    cpp.function_name = "<init>";
    Ray__Rpc__FunctionDescriptor fd = RAY__RPC__FUNCTION_DESCRIPTOR__INIT;
    fd.function_descriptor_case = RAY__RPC__FUNCTION_DESCRIPTOR__FUNCTION_DESCRIPTOR_CPP_FUNCTION_DESCRIPTOR;
    fd.cpp_function_descriptor = &cpp;
    Ray__Rpc__ActorCreationTaskSpec cs = RAY__RPC__ACTOR_CREATION_TASK_SPEC__INIT;
    cs.actor_id.data = actor_id;
    cs.actor_id.len = RC_ACTOR_ID_SIZE;
    Ray__Rpc__Address owner_addr = RAY__RPC__ADDRESS__INIT;
    owner_addr.ip_address = "127.0.0.1";
    owner_addr.port = 1;
    owner_addr.worker_id.data = owner;
    owner_addr.worker_id.len = sizeof(owner);
    Ray__Rpc__TaskSpec__RequiredResourcesEntry cpu = RAY__RPC__TASK_SPEC__REQUIRED_RESOURCES_ENTRY__INIT;
    cpu.key = res;
    cpu.value = 1;
    Ray__Rpc__TaskSpec__RequiredResourcesEntry *held[1] = {&cpu};
    Ray__Rpc__PlacementGroupSchedulingStrategy pgs = RAY__RPC__PLACEMENT_GROUP_SCHEDULING_STRATEGY__INIT;
    pgs.placement_group_id.data = (uint8_t *)pg;
    pgs.placement_group_id.len = RC_PG_ID_SIZE;
    pgs.placement_group_bundle_index = index;
    Ray__Rpc__SchedulingStrategy st = RAY__RPC__SCHEDULING_STRATEGY__INIT;
    st.scheduling_strategy_case = RAY__RPC__SCHEDULING_STRATEGY__SCHEDULING_STRATEGY_PLACEMENT_GROUP_SCHEDULING_STRATEGY;
    st.placement_group_scheduling_strategy = &pgs;
    Ray__Rpc__TaskSpec spec = RAY__RPC__TASK_SPEC__INIT;
    spec.type = RAY__RPC__TASK_TYPE__ACTOR_CREATION_TASK;
    spec.language = RAY__RPC__LANGUAGE__CPP;
    spec.function_descriptor = &fd;
    spec.job_id.data = job;
    spec.job_id.len = sizeof(job);
    spec.caller_address = &owner_addr;
    spec.actor_creation_task_spec = &cs;
    spec.required_resources = held;
    spec.n_required_resources = 1;
    spec.scheduling_strategy = &st;
    Ray__Rpc__RegisterActorRequest reg = RAY__RPC__REGISTER_ACTOR_REQUEST__INIT;
    reg.task_spec = &spec;
    if (harness_fake_gcs_call(t, ACTORS, "RegisterActor", &reg.base, NULL, NULL, 0) != 0)
        return 0;
    Ray__Rpc__CreateActorRequest creq = RAY__RPC__CREATE_ACTOR_REQUEST__INIT;
    creq.task_spec = &spec;
    return harness_fake_gcs_call(t, ACTORS, "CreateActor", &creq.base, NULL, NULL, 0) == 0;
}

static Ray__Rpc__ActorTableData *get_actor(tc *t, const uint8_t *id)
{
    Ray__Rpc__GetActorInfoRequest req = RAY__RPC__GET_ACTOR_INFO_REQUEST__INIT;
    req.actor_id.data = (uint8_t *)id;
    req.actor_id.len = RC_ACTOR_ID_SIZE;
    ProtobufCMessage *reply = NULL;
    if (harness_fake_gcs_call(t, ACTORS, "GetActorInfo", &req.base, &reply, NULL, 0) != 0) {
        rpc_msg_free(reply);
        return NULL;
    }
    Ray__Rpc__GetActorInfoReply *r = (void *)reply;
    Ray__Rpc__ActorTableData *d = r->actor_table_data;
    r->actor_table_data = NULL;
    rpc_msg_free(reply);
    return d;
}

static void test_removal_returns_resources_and_kills_actors(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t, 0, 0), 0);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_FATAL(tc_raylet(&t, "4", NULL) >= 0);
    harness_fake_pump(&t, NULL, 600); /* a report from every raylet */
    char *before = available_text(&t);
    bundle_shape shapes[2] = {{2, NULL}, {1, NULL}};
    uint8_t id[RC_PG_ID_SIZE];
    rc_id_random(id, sizeof(id));
    CU_ASSERT_EQUAL(create_pg(&t, id, RAY__RPC__PLACEMENT_STRATEGY__SPREAD, shapes, 2, NULL, NULL, 0), 0);
    pg_data *d = wait_created(&t, id, 20000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    uint8_t bundle0_node[RC_NODE_ID_SIZE];
    memcpy(bundle0_node, d->bundles[0]->node_id.data, RC_NODE_ID_SIZE);
    rpc_msg_free(&d->base);
    /* An actor in bundle 0 runs on bundle 0's node. */
    uint8_t actor[RC_ACTOR_ID_SIZE];
    CU_ASSERT_TRUE_FATAL(make_pg_actor(&t, actor, id, 0));
    Ray__Rpc__ActorTableData *a = get_actor(&t, actor);
    CU_ASSERT_TRUE_FATAL(a && a->state == RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__ALIVE);
    CU_ASSERT_EQUAL(memcmp(a->node_id.data, bundle0_node, RC_NODE_ID_SIZE), 0);
    CU_ASSERT_EQUAL(a->_placement_group_id_case, RAY__RPC__ACTOR_TABLE_DATA___PLACEMENT_GROUP_ID_PLACEMENT_GROUP_ID);
    pid_t pid = (pid_t)a->pid;
    rpc_msg_free(&a->base);
    /* The raylets' next reports show the reservation. */
    char *during = available_text(&t);
    int64_t until = rc_mono_ms() + 5000;
    while (!strcmp(during, before) && rc_mono_ms() < until) {
        free(during);
        harness_fake_pump(&t, NULL, 50);
        during = available_text(&t);
    }
    CU_ASSERT_STRING_NOT_EQUAL(during, before);
    free(during);
    /* A wait for it answers at once; removal answers NOT_FOUND to later waits. */
    wait_call w;
    wait_async(&t, id, &w);
    harness_fake_pump(&t, &w.done, 5000);
    CU_ASSERT_TRUE(w.done && w.status == 0);
    CU_ASSERT_EQUAL(remove_pg(&t, id), 0);
    CU_ASSERT_EQUAL(remove_pg(&t, id), 0); /* again: fine */
    d = get_pg(&t, id, NULL, 0);
    CU_ASSERT_TRUE(d && d->state == PG_REMOVED);
    rpc_msg_free(d ? &d->base : NULL);
    wait_async(&t, id, &w);
    harness_fake_pump(&t, &w.done, 5000);
    CU_ASSERT_TRUE(w.done && w.status == 17);
    a = get_actor(&t, actor);
    CU_ASSERT_TRUE(a && a->state == RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__DEAD);
    rpc_msg_free(a ? &a->base : NULL);
    int64_t deadline = rc_mono_ms() + 5000;
    while (kill(pid, 0) == 0 && rc_mono_ms() < deadline)
        harness_fake_pump(&t, NULL, 50);
    CU_ASSERT_NOT_EQUAL(kill(pid, 0), 0);
    /* Exactly what there was before, bundle resources gone. */
    CU_ASSERT_TRUE(wait_available(&t, before, 10000));
    free(before);
    tc_stop(&t);
}

static void test_prepare_failure_rolls_back(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t, 0, 0), 0);
    int r = tc_raylet(&t, "1", NULL);
    CU_ASSERT_FATAL(r >= 0);
    fake_node f;
    CU_ASSERT_EQUAL_FATAL(fake_node_start(&t, &f, 1), 0);
    f.refuse_prepare = 1;
    harness_fake_pump(&t, NULL, 500);
    char *before = available_text(&t);
    bundle_shape one = {1, NULL}, two[2] = {one, one};
    uint8_t id[RC_PG_ID_SIZE];
    rc_id_random(id, sizeof(id));
    CU_ASSERT_EQUAL(create_pg(&t, id, RAY__RPC__PLACEMENT_STRATEGY__STRICT_SPREAD, two, 2, NULL, NULL, 0), 0);
    int64_t deadline = rc_mono_ms() + 10000;
    while (f.prepares < 3 && rc_mono_ms() < deadline)
        harness_fake_pump(&t, NULL, 50);
    CU_ASSERT(f.prepares >= 3); /* refused, retried */
    pg_data *d = get_pg(&t, id, NULL, 0);
    CU_ASSERT_TRUE(d && d->state == PG_PENDING && !all_placed(d));
    rpc_msg_free(d ? &d->base : NULL);
    /* The real raylet's bundle was cancelled each time: its CPU is all free again. */
    CU_ASSERT_TRUE(wait_available(&t, before, 10000));
    CU_ASSERT(harness_log_contains(&t.c, "gcs", "PrepareBundleResources on node"));
    free(before);
    /* Now the fake node accepts: created, one bundle on each node, nothing cancelled there. */
    f.refuse_prepare = 0;
    d = wait_created(&t, id, 20000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_EQUAL(distinct_nodes(d), 2);
    rpc_msg_free(&d->base);
    CU_ASSERT_EQUAL(f.commits, 1);
    CU_ASSERT_EQUAL(f.cancels, 0);
    CU_ASSERT_EQUAL(f.cpu_avail, 0);
    /* Removal cancels the fake node's bundle too. */
    CU_ASSERT_EQUAL(remove_pg(&t, id), 0);
    deadline = rc_mono_ms() + 5000;
    while (f.cancels < 1 && rc_mono_ms() < deadline)
        harness_fake_pump(&t, NULL, 50);
    CU_ASSERT_EQUAL(f.cancels, 1);
    CU_ASSERT_EQUAL(f.cpu_avail, 1);
    fake_node_stop(&f);
    tc_stop(&t);
}

static void test_node_death_reschedules_lost_bundles(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t, 0, 1), 0);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_FATAL(tc_raylet(&t, "2", NULL) >= 0);
    bundle_shape one = {1, NULL}, two[2] = {one, one};
    uint8_t id[RC_PG_ID_SIZE];
    rc_id_random(id, sizeof(id));
    CU_ASSERT_EQUAL(create_pg(&t, id, RAY__RPC__PLACEMENT_STRATEGY__STRICT_SPREAD, two, 2, NULL, NULL, 0), 0);
    pg_data *d = wait_created(&t, id, 20000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    uint8_t kept[RC_NODE_ID_SIZE], lost[RC_NODE_ID_SIZE];
    memcpy(lost, d->bundles[0]->node_id.data, RC_NODE_ID_SIZE);
    memcpy(kept, d->bundles[1]->node_id.data, RC_NODE_ID_SIZE);
    rpc_msg_free(&d->base);
    int victim = -1;
    for (int i = 0; i < 3; i++) {
        uint8_t n[RC_NODE_ID_SIZE];
        node_bytes(&t, i, n);
        if (!memcmp(n, lost, RC_NODE_ID_SIZE))
            victim = i;
    }
    CU_ASSERT_FATAL(victim >= 0);
    harness_raylet_signal(&t.c, victim, SIGKILL);
    harness_raylet_wait_exit(&t.c, victim, 5000);
    /* RESCHEDULING, then CREATED again: bundle 0 elsewhere (not on bundle 1's node), bundle
     * 1 untouched. */
    int64_t deadline = rc_mono_ms() + 20000;
    int rescheduled = 0;
    d = NULL;
    while (rc_mono_ms() < deadline) {
        d = get_pg(&t, id, NULL, 0);
        if (d && d->state == RAY__RPC__PLACEMENT_GROUP_TABLE_DATA__PLACEMENT_GROUP_STATE__RESCHEDULING)
            rescheduled = 1;
        if (d && d->state == PG_CREATED && memcmp(d->bundles[0]->node_id.data, lost, RC_NODE_ID_SIZE))
            break;
        rpc_msg_free(d ? &d->base : NULL);
        d = NULL;
        harness_fake_pump(&t, NULL, 20);
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_TRUE(rescheduled || harness_log_contains(&t.c, "gcs", "rescheduling them"));
    CU_ASSERT_EQUAL(memcmp(d->bundles[1]->node_id.data, kept, RC_NODE_ID_SIZE), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(d->bundles[0]->node_id.data, kept, RC_NODE_ID_SIZE), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(d->bundles[0]->node_id.data, lost, RC_NODE_ID_SIZE), 0);
    rpc_msg_free(&d->base);
    tc_stop(&t);
}

static void test_infeasible_group_explained(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t, 0, 0), 0);
    CU_ASSERT_FATAL(tc_raylet(&t, "2", NULL) >= 0);
    bundle_shape huge = {64, NULL};
    uint8_t id[RC_PG_ID_SIZE];
    rc_id_random(id, sizeof(id));
    CU_ASSERT_EQUAL(create_pg(&t, id, RAY__RPC__PLACEMENT_STRATEGY__PACK, &huge, 1, NULL, NULL, 0), 0);
    harness_fake_pump(&t, NULL, 500);
    char why[512] = "";
    pg_data *d = get_pg(&t, id, why, sizeof(why));
    CU_ASSERT_TRUE_FATAL(d && d->state == PG_PENDING);
    CU_ASSERT_EQUAL(d->stats->scheduling_state, RAY__RPC__PLACEMENT_GROUP_STATS__SCHEDULING_STATE__INFEASIBLE);
    rpc_msg_free(&d->base);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "CPU"));
    char out[8192];
    CU_ASSERT_EQUAL(rayc(&t, "status", out, sizeof(out)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, " {'CPU': 64.0} * 1 (PACK): 1+ pending placement groups (never: "));
    CU_ASSERT_EQUAL(rayc(&t, "list placement-groups --format json", out, sizeof(out)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"state\": \"PENDING\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"scheduling_state\": \"INFEASIBLE\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"infeasible_reason\": \""));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"strategy\": \"PACK\""));
    CU_ASSERT_EQUAL(rayc(&t, "list placement-groups", out, sizeof(out)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "PLACEMENT_GROUP_ID"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "[never: "));
    CU_ASSERT_EQUAL(remove_pg(&t, id), 0);
    CU_ASSERT_EQUAL(rayc(&t, "status", out, sizeof(out)), 0);
    CU_ASSERT_PTR_NULL(strstr(out, "pending placement groups"));
    tc_stop(&t);
}

static void test_names_and_job_lifetime(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t, 0, 0), 0);
    CU_ASSERT_FATAL(tc_raylet(&t, "4", NULL) >= 0);
    /* Job 3 runs in namespace "team". */
    uint8_t job[RC_JOB_ID_SIZE] = {0, 0, 0, 3};
    Ray__Rpc__JobConfig cfg = RAY__RPC__JOB_CONFIG__INIT;
    cfg.ray_namespace = "team";
    Ray__Rpc__JobTableData jd = RAY__RPC__JOB_TABLE_DATA__INIT;
    jd.job_id.data = job;
    jd.job_id.len = sizeof(job);
    jd.config = &cfg;
    Ray__Rpc__AddJobRequest add = RAY__RPC__ADD_JOB_REQUEST__INIT;
    add.data = &jd;
    CU_ASSERT_EQUAL(harness_fake_gcs_call(&t, &ray__rpc__job_info_gcs_service__descriptor, "AddJob", &add.base, NULL, NULL, 0), 0);
    bundle_shape one = {1, NULL};
    uint8_t a[RC_PG_ID_SIZE], b[RC_PG_ID_SIZE], c[RC_PG_ID_SIZE], det[RC_PG_ID_SIZE];
    rc_id_random(a, sizeof(a));
    rc_id_random(b, sizeof(b));
    rc_id_random(c, sizeof(c));
    rc_id_random(det, sizeof(det));
    pg_opts named = {.name = "gang", .job = 3}, detached = {.name = "stays", .job = 3, .detached = 1};
    CU_ASSERT_EQUAL(create_pg(&t, a, RAY__RPC__PLACEMENT_STRATEGY__PACK, &one, 1, &named, NULL, 0), 0);
    char msg[512];
    CU_ASSERT_EQUAL(create_pg(&t, b, RAY__RPC__PLACEMENT_STRATEGY__PACK, &one, 1, &named, msg, sizeof(msg)), 20);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "gang"));
    CU_ASSERT_EQUAL(create_pg(&t, c, RAY__RPC__PLACEMENT_STRATEGY__PACK, &one, 1, NULL, NULL, 0), 0); /* no job */
    CU_ASSERT_EQUAL(create_pg(&t, det, RAY__RPC__PLACEMENT_STRATEGY__PACK, &one, 1, &detached, NULL, 0), 0);
    Ray__Rpc__GetNamedPlacementGroupRequest nreq = RAY__RPC__GET_NAMED_PLACEMENT_GROUP_REQUEST__INIT;
    nreq.name = "gang";
    nreq.ray_namespace = "team";
    ProtobufCMessage *reply = NULL;
    CU_ASSERT_EQUAL_FATAL(harness_fake_gcs_call(&t, PGS, "GetNamedPlacementGroup", &nreq.base, &reply, NULL, 0), 0);
    const pg_data *nd = ((Ray__Rpc__GetNamedPlacementGroupReply *)reply)->placement_group_table_data;
    CU_ASSERT_TRUE(nd && !memcmp(nd->placement_group_id.data, a, sizeof(a)));
    CU_ASSERT_STRING_EQUAL(nd ? nd->ray_namespace : "", "team");
    rpc_msg_free(reply);
    nreq.ray_namespace = "";
    CU_ASSERT_EQUAL(harness_fake_gcs_call(&t, PGS, "GetNamedPlacementGroup", &nreq.base, NULL, NULL, 0), 17);
    Ray__Rpc__GetAllPlacementGroupRequest areq = RAY__RPC__GET_ALL_PLACEMENT_GROUP_REQUEST__INIT;
    CU_ASSERT_EQUAL_FATAL(harness_fake_gcs_call(&t, PGS, "GetAllPlacementGroup", &areq.base, &reply, NULL, 0), 0);
    CU_ASSERT_EQUAL(((Ray__Rpc__GetAllPlacementGroupReply *)reply)->n_placement_group_table_data, 3);
    CU_ASSERT_EQUAL(((Ray__Rpc__GetAllPlacementGroupReply *)reply)->total, 3);
    rpc_msg_free(reply);
    areq._limit_case = RAY__RPC__GET_ALL_PLACEMENT_GROUP_REQUEST___LIMIT_LIMIT;
    areq.limit = 1;
    CU_ASSERT_EQUAL_FATAL(harness_fake_gcs_call(&t, PGS, "GetAllPlacementGroup", &areq.base, &reply, NULL, 0), 0);
    CU_ASSERT_EQUAL(((Ray__Rpc__GetAllPlacementGroupReply *)reply)->n_placement_group_table_data, 1);
    rpc_msg_free(reply);
    pg_data *d = wait_created(&t, a, 10000);
    rpc_msg_free(d ? &d->base : NULL);
    /* The job ends: its non-detached group goes; the detached one and the job-less one stay. */
    Ray__Rpc__MarkJobFinishedRequest fin = RAY__RPC__MARK_JOB_FINISHED_REQUEST__INIT;
    fin.job_id.data = job;
    fin.job_id.len = sizeof(job);
    CU_ASSERT_EQUAL(harness_fake_gcs_call(&t, &ray__rpc__job_info_gcs_service__descriptor, "MarkJobFinished", &fin.base, NULL, NULL, 0),
                    0);
    d = wait_pg_state(&t, a, PG_REMOVED, 5000);
    CU_ASSERT_PTR_NOT_NULL(d);
    rpc_msg_free(d ? &d->base : NULL);
    d = get_pg(&t, det, NULL, 0);
    CU_ASSERT_TRUE(d && d->state != PG_REMOVED && d->creator_job_dead);
    rpc_msg_free(d ? &d->base : NULL);
    d = get_pg(&t, c, NULL, 0);
    CU_ASSERT_TRUE(d && d->state != PG_REMOVED);
    rpc_msg_free(d ? &d->base : NULL);
    /* The name is free again. */
    CU_ASSERT_EQUAL(create_pg(&t, b, RAY__RPC__PLACEMENT_STRATEGY__PACK, &one, 1, &named, NULL, 0), 0);
    tc_stop(&t);
}

static void test_gcs_restart_with_redis(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t, 1, 0), 0);
    for (int i = 0; i < 2; i++)
        CU_ASSERT_FATAL(tc_raylet(&t, "2", NULL) >= 0);
    bundle_shape one = {1, NULL}, two[2] = {one, one}, later = {1, "later"};
    uint8_t made[RC_PG_ID_SIZE], waiting[RC_PG_ID_SIZE];
    rc_id_random(made, sizeof(made));
    rc_id_random(waiting, sizeof(waiting));
    CU_ASSERT_EQUAL(create_pg(&t, made, RAY__RPC__PLACEMENT_STRATEGY__STRICT_SPREAD, two, 2, NULL, NULL, 0), 0);
    pg_data *before = wait_created(&t, made, 20000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(before);
    CU_ASSERT_EQUAL(create_pg(&t, waiting, RAY__RPC__PLACEMENT_STRATEGY__PACK, &later, 1, NULL, NULL, 0), 0);
    harness_fake_pump(&t, NULL, 800);
    char *avail = available_text(&t);
    harness_gcs_kill(&t.c, SIGKILL);
    CU_ASSERT_EQUAL_FATAL(harness_gcs_start(&t.c), 0);
    CU_ASSERT_EQUAL_FATAL(harness_fake_connect(&t), 0);
    /* Still created, same nodes, and the raylets kept the reservations. */
    pg_data *after = get_pg(&t, made, NULL, 0);
    CU_ASSERT_TRUE_FATAL(after && after->state == PG_CREATED);
    for (size_t i = 0; i < 2; i++)
        CU_ASSERT_EQUAL(memcmp(after->bundles[i]->node_id.data, before->bundles[i]->node_id.data, RC_NODE_ID_SIZE), 0);
    rpc_msg_free(&after->base);
    rpc_msg_free(&before->base);
    harness_fake_pump(&t, NULL, 1000);
    CU_ASSERT_TRUE(wait_available(&t, avail, 10000));
    free(avail);
    /* The pending one is placed once a node that can hold it joins. */
    const char *extra[] = {"--resources", "{\"later\": 1}", NULL};
    CU_ASSERT_FATAL(tc_raylet(&t, "1", extra) >= 0);
    pg_data *d = wait_created(&t, waiting, 20000);
    CU_ASSERT_PTR_NOT_NULL(d);
    rpc_msg_free(d ? &d->base : NULL);
    tc_stop(&t);
}

/* Removed groups are bounded (maximum_gcs_removed_placement_group_cached_count): the ones
 * removed first go, from memory and from Redis; a live group is untouched. */
static void test_removed_groups_bounded(void)
{
    setenv("RAYC_maximum_gcs_removed_placement_group_cached_count", "2", 1);
    tc t;
    int up = tc_start(&t, 1, 0);
    unsetenv("RAYC_maximum_gcs_removed_placement_group_cached_count");
    CU_ASSERT_EQUAL_FATAL(up, 0);
    CU_ASSERT_FATAL(tc_raylet(&t, "4", NULL) >= 0);
    bundle_shape one = {1, NULL};
    uint8_t live[RC_PG_ID_SIZE], gone[4][RC_PG_ID_SIZE];
    rc_id_random(live, sizeof(live));
    pg_opts detached = {.detached = 1};
    CU_ASSERT_EQUAL(create_pg(&t, live, RAY__RPC__PLACEMENT_STRATEGY__PACK, &one, 1, &detached, NULL, 0), 0);
    pg_data *d = wait_created(&t, live, 20000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    rpc_msg_free(&d->base);
    for (int i = 0; i < 4; i++) {
        rc_id_random(gone[i], sizeof(gone[i]));
        CU_ASSERT_EQUAL(create_pg(&t, gone[i], RAY__RPC__PLACEMENT_STRATEGY__PACK, &one, 1, &detached, NULL, 0), 0);
        d = wait_created(&t, gone[i], 20000);
        rpc_msg_free(d ? &d->base : NULL);
        CU_ASSERT_EQUAL(remove_pg(&t, gone[i]), 0);
    }
    for (int round = 0; round < 2; round++) {
        Ray__Rpc__GetAllPlacementGroupRequest areq = RAY__RPC__GET_ALL_PLACEMENT_GROUP_REQUEST__INIT;
        ProtobufCMessage *reply = NULL;
        CU_ASSERT_EQUAL_FATAL(harness_fake_gcs_call(&t, PGS, "GetAllPlacementGroup", &areq.base, &reply, NULL, 0), 0);
        CU_ASSERT_EQUAL(((Ray__Rpc__GetAllPlacementGroupReply *)reply)->total, 3);
        rpc_msg_free(reply);
        for (int i = 0; i < 2; i++) {
            d = get_pg(&t, gone[i], NULL, 0);
            CU_ASSERT_PTR_NULL(d);
            rpc_msg_free(d ? &d->base : NULL);
        }
        for (int i = 2; i < 4; i++) {
            d = get_pg(&t, gone[i], NULL, 0);
            CU_ASSERT_TRUE(d && d->state == PG_REMOVED);
            rpc_msg_free(d ? &d->base : NULL);
        }
        d = get_pg(&t, live, NULL, 0);
        CU_ASSERT_TRUE(d && d->state == PG_CREATED);
        rpc_msg_free(d ? &d->base : NULL);
        if (round == 0) { /* and after a restart from storage (default bound: storage decides) */
            harness_gcs_kill(&t.c, SIGKILL);
            CU_ASSERT_EQUAL_FATAL(harness_gcs_start(&t.c), 0);
            CU_ASSERT_EQUAL_FATAL(harness_fake_connect(&t), 0);
        }
    }
    tc_stop(&t);
}

/* A CreateActor call in flight. */
typedef struct held_call {
    int done, code;
} held_call;

static void held_answered(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    held_call *h = arg;
    h->code = st->code;
    h->done = 1;
    rpc_msg_free(reply);
}

/* SIGTERM with calls held (a group no node can hold, an actor no node can hold): the GCS
 * answers them, exits 0 and (under the sanitizers) leaks nothing. */
static void test_shutdown_with_held_calls(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t, 0, 0), 0);
    CU_ASSERT_FATAL(tc_raylet(&t, "1", NULL) >= 0);
    bundle_shape huge = {64, NULL};
    uint8_t pg[RC_PG_ID_SIZE];
    rc_id_random(pg, sizeof(pg));
    CU_ASSERT_EQUAL(create_pg(&t, pg, RAY__RPC__PLACEMENT_STRATEGY__PACK, &huge, 1, NULL, NULL, 0), 0);
    wait_call w;
    wait_async(&t, pg, &w);
    /* An actor asking for 64 CPUs, registered and created (held). */
    uint8_t actor[RC_ACTOR_ID_SIZE], job[RC_JOB_ID_SIZE] = {0, 0, 0, 1};
    rc_id_random(actor, sizeof(actor));
    Ray__Rpc__ActorCreationTaskSpec cs = RAY__RPC__ACTOR_CREATION_TASK_SPEC__INIT;
    cs.actor_id.data = actor;
    cs.actor_id.len = sizeof(actor);
    Ray__Rpc__TaskSpec__RequiredResourcesEntry cpu = RAY__RPC__TASK_SPEC__REQUIRED_RESOURCES_ENTRY__INIT;
    cpu.key = "CPU";
    cpu.value = 64;
    Ray__Rpc__TaskSpec__RequiredResourcesEntry *held[1] = {&cpu};
    Ray__Rpc__TaskSpec spec = RAY__RPC__TASK_SPEC__INIT;
    spec.type = RAY__RPC__TASK_TYPE__ACTOR_CREATION_TASK;
    spec.job_id.data = job;
    spec.job_id.len = sizeof(job);
    spec.actor_creation_task_spec = &cs;
    spec.required_resources = held;
    spec.n_required_resources = 1;
    Ray__Rpc__RegisterActorRequest reg = RAY__RPC__REGISTER_ACTOR_REQUEST__INIT;
    reg.task_spec = &spec;
    CU_ASSERT_EQUAL(harness_fake_gcs_call(&t, ACTORS, "RegisterActor", &reg.base, NULL, NULL, 0), 0);
    Ray__Rpc__CreateActorRequest creq = RAY__RPC__CREATE_ACTOR_REQUEST__INIT;
    creq.task_spec = &spec;
    held_call hc = {0, 0};
    CU_ASSERT_EQUAL(rpc_client_call(gcs_client_rpc(t.gcs), ACTORS, "CreateActor", &creq.base, 60000, held_answered, &hc),
                    0);
    harness_fake_pump(&t, NULL, 500);
    CU_ASSERT_FALSE(w.done);
    CU_ASSERT_FALSE(hc.done);
    kill(t.c.gcs_pid, SIGTERM);
    harness_fake_pump(&t, &w.done, 10000);
    harness_fake_pump(&t, &hc.done, 10000);
    CU_ASSERT_TRUE(w.done && w.code != GRPC_STATUS_OK);
    CU_ASSERT_TRUE(hc.done && hc.code != GRPC_STATUS_OK);
    tc_stop(&t); /* checks the exit status and the sanitizer report */
}

static const unit_case cases[] = {
    UNIT_CASE(test_strategies_on_three_nodes),
    UNIT_CASE(test_strict_spread_waits_for_fourth_node),
    UNIT_CASE(test_removal_returns_resources_and_kills_actors),
    UNIT_CASE(test_prepare_failure_rolls_back),
    UNIT_CASE(test_node_death_reschedules_lost_bundles),
    UNIT_CASE(test_infeasible_group_explained),
    UNIT_CASE(test_names_and_job_lifetime),
    UNIT_CASE(test_gcs_restart_with_redis),
    UNIT_CASE(test_removed_groups_bounded),
    UNIT_CASE(test_shutdown_with_held_calls),
};

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    quick_config(0);
    return unit_run("gcs_pgs", cases, UNIT_N(cases));
}
