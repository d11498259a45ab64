/*
 * The GCS's autoscaler state service (Ray's AutoscalerStateService) and rayc's verification
 * quarantine against real daemons (rayc-gcs, rayc-raylet with rayc-fake-worker), secure:
 * cluster resource state versions, node states and idle time, pending requests by shape and
 * pending gangs, constraints, the autoscaler's report (GetClusterStatus and `rayc status`),
 * DrainNode (idle termination refused on a busy node, preemption always accepted, a drained
 * node gets no new leases), nodes joined with a verification-required join token (no work
 * until they pass; never after they fail), and callers that are not the admin.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autoscaler.pb-c.h"
#include "fake_cluster.h"
#include "gcs_client.h"
#include "gcs_service.pb-c.h"
#include "node_manager.pb-c.h"
#include "rayc_auth.pb-c.h"
#include "rayc_market.pb-c.h"
#include "rc_alloc.h"
#include "rc_config.h"
#include "rc_ids.h"
#include "rc_time.h"
#include "unit.h"

#ifndef FAKE_WORKER
#error "FAKE_WORKER must name the fake worker program"
#endif

#define AS (&ray__rpc__autoscaler__autoscaler_state_service__descriptor)
#define MARKET (&rayc__rpc__market_gcs_service__descriptor)
#define STATUS_IDLE RAY__RPC__AUTOSCALER__NODE_STATUS__IDLE
#define STATUS_RUNNING RAY__RPC__AUTOSCALER__NODE_STATUS__RUNNING
#define STATUS_DRAINING RAY__RPC__AUTOSCALER__NODE_STATUS__DRAINING
#define REASON_IDLE RAY__RPC__AUTOSCALER__DRAIN_NODE_REASON__DRAIN_NODE_REASON_IDLE_TERMINATION
#define REASON_PREEMPT RAY__RPC__AUTOSCALER__DRAIN_NODE_REASON__DRAIN_NODE_REASON_PREEMPTION

typedef harness_fake tc;
typedef Ray__Rpc__Autoscaler__ClusterResourceState as_state;

static int tc_start(tc *t)
{
    setenv("RAYC_raylet_report_keepalive_ms", "200", 1);
    setenv("RAYC_raylet_cluster_view_poll_ms", "100", 1);
    setenv("RAYC_prestart_worker_first_driver", "0", 1);
    unsetenv("RAYC_FAKE_WORKER_MODE");
    rc_config_init();
    return harness_fake_start(t, 0, FAKE_WORKER, 1);
}

static void tc_stop(tc *t)
{
    harness_fake_stop(t, HARNESS_FAKE_CHECK_RAYLETS | HARNESS_FAKE_CHECK_GCS);
}

static void node_bytes(tc *t, int i, uint8_t *out)
{
    rc_id_from_hex(t->c.raylets[i].node_id, out, RC_NODE_ID_SIZE);
}

/* The cluster resource state (free the reply with rpc_msg_free through *msg). */
static const as_state *get_state(tc *t, ProtobufCMessage **msg)
{
    Ray__Rpc__Autoscaler__GetClusterResourceStateRequest req = RAY__RPC__AUTOSCALER__GET_CLUSTER_RESOURCE_STATE_REQUEST__INIT;
    *msg = NULL;
    char err[256];
    int rc = harness_fake_gcs_call(t, AS, "GetClusterResourceState", &req.base, msg, err, sizeof(err));
    CU_ASSERT_EQUAL(rc, 0);
    if (rc != 0 || !*msg) {
        fprintf(stderr, "GetClusterResourceState: %s\n", err);
        return NULL;
    }
    return ((Ray__Rpc__Autoscaler__GetClusterResourceStateReply *)*msg)->cluster_resource_state;
}

static const Ray__Rpc__Autoscaler__NodeState *node_state(const as_state *st, tc *t, int i)
{
    uint8_t id[RC_NODE_ID_SIZE];
    node_bytes(t, i, id);
    for (size_t k = 0; st && k < st->n_node_states; k++)
        if (st->node_states[k]->node_id.len == RC_NODE_ID_SIZE && !memcmp(st->node_states[k]->node_id.data, id, RC_NODE_ID_SIZE))
            return st->node_states[k];
    return NULL;
}

/* Waits until raylet i's node has status (and, for IDLE, an idle time > min_idle_ms). */
static int wait_status(tc *t, int i, int status, int64_t min_idle_ms, int ms)
{
    int64_t deadline = rc_mono_ms() + ms;
    while (rc_mono_ms() < deadline) {
        ProtobufCMessage *msg;
        const Ray__Rpc__Autoscaler__NodeState *ns = node_state(get_state(t, &msg), t, i);
        int ok = ns && (int)ns->status == status && ns->idle_duration_ms >= min_idle_ms;
        rpc_msg_free(msg);
        if (ok)
            return 1;
        harness_fake_pump(t, NULL, 100);
    }
    return 0;
}

static int has_activity(const Ray__Rpc__Autoscaler__NodeState *ns, const char *text)
{
    for (size_t k = 0; ns && k < ns->n_node_activity; k++)
        if (strstr(ns->node_activity[k], text))
            return 1;
    return 0;
}

/* The pending count of the shape that names resource name (0: none). */
static int64_t pending_count(const as_state *st, const char *name)
{
    for (size_t i = 0; st && i < st->n_pending_resource_requests; i++) {
        const Ray__Rpc__Autoscaler__ResourceRequest *r = st->pending_resource_requests[i]->request;
        for (size_t k = 0; r && k < r->n_resources_bundle; k++)
            if (!strcmp(r->resources_bundle[k]->key, name))
                return st->pending_resource_requests[i]->count;
    }
    return 0;
}

static int64_t wait_pending(tc *t, const char *name, int want_nonzero, int ms)
{
    int64_t deadline = rc_mono_ms() + ms, n = 0;
    while (rc_mono_ms() < deadline) {
        ProtobufCMessage *msg;
        n = pending_count(get_state(t, &msg), name);
        rpc_msg_free(msg);
        if ((n > 0) == want_nonzero)
            return n;
        harness_fake_pump(t, NULL, 100);
    }
    return n;
}

static int drain(tc *t, int i, int reason, int64_t deadline_ms, char *why, size_t len)
{
    uint8_t id[RC_NODE_ID_SIZE];
    node_bytes(t, i, id);
    Ray__Rpc__Autoscaler__DrainNodeRequest req = RAY__RPC__AUTOSCALER__DRAIN_NODE_REQUEST__INIT;
    req.node_id.data = id;
    req.node_id.len = RC_NODE_ID_SIZE;
    req.reason = reason;
    req.reason_message = "test";
    req.deadline_timestamp_ms = deadline_ms;
    ProtobufCMessage *msg = NULL;
    char err[256];
    int rc = harness_fake_gcs_call(t, AS, "DrainNode", &req.base, &msg, err, sizeof(err));
    CU_ASSERT_EQUAL(rc, 0);
    int accepted = -1;
    if (msg) {
        const Ray__Rpc__Autoscaler__DrainNodeReply *r = (const void *)msg;
        accepted = r->is_accepted;
        snprintf(why, len, "%s", r->rejection_reason_message ? r->rejection_reason_message : "");
    }
    rpc_msg_free(msg);
    return accepted;
}

/* ---- cases ------------------------------------------------------------------------- */

static void test_versions_idle_and_pending_requests(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t), 0);
    int r0 = harness_fake_raylet(&t, (const char *[]){"--num-cpus", "2", NULL});
    int r1 = harness_fake_raylet(&t, (const char *[]){"--num-cpus", "1", NULL});
    CU_ASSERT_FATAL(r0 == 0 && r1 == 1);
    CU_ASSERT_FATAL(wait_status(&t, r0, STATUS_IDLE, 0, 10000));
    CU_ASSERT_FATAL(wait_status(&t, r1, STATUS_IDLE, 0, 10000));
    ProtobufCMessage *m1, *m2;
    const as_state *s1 = get_state(&t, &m1);
    CU_ASSERT_FATAL(s1 != NULL);
    CU_ASSERT_EQUAL(s1->n_node_states, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(s1->cluster_session_name, "session_"));
    const Ray__Rpc__Autoscaler__NodeState *ns = node_state(s1, &t, r0);
    CU_ASSERT_FATAL(ns != NULL);
    CU_ASSERT_STRING_EQUAL(ns->node_ip_address, "127.0.0.1");
    int cpus = 0;
    for (size_t k = 0; k < ns->n_total_resources; k++)
        cpus |= !strcmp(ns->total_resources[k]->key, "CPU") && ns->total_resources[k]->value == 2.0;
    CU_ASSERT(cpus);
    int64_t v1 = s1->cluster_resource_state_version, idle1 = ns->idle_duration_ms;
    /* Nothing changes: the same version, and the idle time grows. */
    harness_fake_pump(&t, NULL, 400);
    const as_state *s2 = get_state(&t, &m2);
    CU_ASSERT_FATAL(s2 != NULL);
    CU_ASSERT_EQUAL(s2->cluster_resource_state_version, v1);
    CU_ASSERT(node_state(s2, &t, r0)->idle_duration_ms > idle1);
    rpc_msg_free(m1);
    rpc_msg_free(m2);

    /* Busy: RUNNING, no idle time, and why; a new version. */
    harness_lease a;
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &a, HARNESS_RES({"CPU", 1}), NULL, 10000) && harness_lease_granted(&a));
    CU_ASSERT_FATAL(wait_status(&t, r0, STATUS_RUNNING, 0, 10000));
    const as_state *s3 = get_state(&t, &m1);
    CU_ASSERT(s3->cluster_resource_state_version > v1);
    CU_ASSERT_EQUAL(node_state(s3, &t, r0)->idle_duration_ms, 0);
    CU_ASSERT(has_activity(node_state(s3, &t, r0), "CPU"));
    rpc_msg_free(m1);
    /* Idle again once the lease is back: the idle time starts over. */
    CU_ASSERT_EQUAL(harness_lease_return(&t, &a, 0), GRPC_STATUS_OK);
    CU_ASSERT(wait_status(&t, r0, STATUS_IDLE, 0, 10000));
    const as_state *s4 = get_state(&t, &m1);
    CU_ASSERT(node_state(s4, &t, r0)->idle_duration_ms < idle1 + 400 + 5000);
    rpc_msg_free(m1);

    /* A shape no node has: pending, and gone once cancelled. */
    harness_lease b;
    harness_lease_async(&t, r0, &b, HARNESS_RES({"CPU", 1}, {"Unobtainium", 1}), NULL);
    CU_ASSERT(wait_pending(&t, "Unobtainium", 1, 10000) >= 1);
    Ray__Rpc__CancelWorkerLeaseRequest cancel = RAY__RPC__CANCEL_WORKER_LEASE_REQUEST__INIT;
    cancel.lease_id.data = b.lease_id;
    cancel.lease_id.len = sizeof(b.lease_id);
    ProtobufCMessage *reply = NULL;
    CU_ASSERT_EQUAL(rpc_client_call_sync(t.tcp[r0], &ray__rpc__node_manager_service__descriptor, "CancelWorkerLease",
                                         &cancel.base, 5000, &reply, NULL, 0),
                    GRPC_STATUS_OK);
    rpc_msg_free(reply);
    CU_ASSERT_EQUAL(wait_pending(&t, "Unobtainium", 0, 10000), 0);
    harness_fake_pump(&t, &b.done, 2000);
    harness_lease_free(&a);
    harness_lease_free(&b);
    tc_stop(&t);
}

static void test_gang_constraint_and_report(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t), 0);
    int r0 = harness_fake_raylet(&t, (const char *[]){"--num-cpus", "1", NULL});
    CU_ASSERT_FATAL(r0 == 0);
    /* A STRICT_SPREAD group of 3 bundles on one node: pending, one gang. */
    uint8_t pg[RC_PG_ID_SIZE];
    rc_id_random(pg, sizeof(pg));
    Ray__Rpc__Bundle bundles[3], *bptrs[3];
    Ray__Rpc__Bundle__UnitResourcesEntry res[3], *rptrs[3];
    for (int i = 0; i < 3; i++) {
        ray__rpc__bundle__init(&bundles[i]);
        ray__rpc__bundle__unit_resources_entry__init(&res[i]);
        res[i].key = "CPU";
        res[i].value = 1;
        rptrs[i] = &res[i];
        bundles[i].unit_resources = &rptrs[i];
        bundles[i].n_unit_resources = 1;
        bptrs[i] = &bundles[i];
    }
    Ray__Rpc__PlacementGroupSpec spec = RAY__RPC__PLACEMENT_GROUP_SPEC__INIT;
    spec.placement_group_id.data = pg;
    spec.placement_group_id.len = sizeof(pg);
    spec.name = "";
    spec.bundles = bptrs;
    spec.n_bundles = 3;
    spec.strategy = RAY__RPC__PLACEMENT_STRATEGY__STRICT_SPREAD;
    Ray__Rpc__CreatePlacementGroupRequest creq = RAY__RPC__CREATE_PLACEMENT_GROUP_REQUEST__INIT;
    creq.placement_group_spec = &spec;
    char err[512];
    CU_ASSERT_EQUAL_FATAL(harness_fake_gcs_call(&t, &ray__rpc__placement_group_info_gcs_service__descriptor,
                                                "CreatePlacementGroup", &creq.base, NULL, err, sizeof(err)),
                          0);
    char hex[RC_ID_HEX_MAX], label[64], details[128];
    rc_id_hex(pg, sizeof(pg), hex);
    snprintf(label, sizeof(label), "_PG_%s", hex);
    snprintf(details, sizeof(details), "%s:STRICT_SPREAD|PENDING", hex);
    ProtobufCMessage *msg;
    const as_state *st = get_state(&t, &msg);
    CU_ASSERT_FATAL(st != NULL);
    CU_ASSERT_EQUAL_FATAL(st->n_pending_gang_resource_requests, 1);
    const Ray__Rpc__Autoscaler__GangResourceRequest *g = st->pending_gang_resource_requests[0];
    CU_ASSERT_STRING_EQUAL(g->details, details);
    CU_ASSERT_EQUAL(g->n_requests, 3);
    CU_ASSERT_EQUAL_FATAL(g->n_bundle_selectors, 1);
    CU_ASSERT_EQUAL(g->bundle_selectors[0]->n_resource_requests, 3);
    for (size_t i = 0; i < g->n_requests; i++) {
        const Ray__Rpc__Autoscaler__ResourceRequest *r = g->requests[i];
        CU_ASSERT_EQUAL_FATAL(r->n_placement_constraints, 1);
        CU_ASSERT_FATAL(r->placement_constraints[0]->anti_affinity != NULL);
        CU_ASSERT_STRING_EQUAL(r->placement_constraints[0]->anti_affinity->label_name, label);
        CU_ASSERT_PTR_NULL(r->placement_constraints[0]->affinity);
    }
    int64_t v = st->cluster_resource_state_version;
    rpc_msg_free(msg);

    /* A constraint comes back as it was asked for, with a new version. */
    Ray__Rpc__Autoscaler__ResourceRequest__ResourcesBundleEntry gpu = RAY__RPC__AUTOSCALER__RESOURCE_REQUEST__RESOURCES_BUNDLE_ENTRY__INIT;
    gpu.key = "GPU";
    gpu.value = 4;
    Ray__Rpc__Autoscaler__ResourceRequest__ResourcesBundleEntry *gptr = &gpu;
    Ray__Rpc__Autoscaler__ResourceRequest rq = RAY__RPC__AUTOSCALER__RESOURCE_REQUEST__INIT;
    rq.resources_bundle = &gptr;
    rq.n_resources_bundle = 1;
    Ray__Rpc__Autoscaler__ResourceRequestByCount byc = RAY__RPC__AUTOSCALER__RESOURCE_REQUEST_BY_COUNT__INIT;
    byc.request = &rq;
    byc.count = 2;
    Ray__Rpc__Autoscaler__ResourceRequestByCount *bptr = &byc;
    Ray__Rpc__Autoscaler__ClusterResourceConstraint con = RAY__RPC__AUTOSCALER__CLUSTER_RESOURCE_CONSTRAINT__INIT;
    con.resource_requests = &bptr;
    con.n_resource_requests = 1;
    Ray__Rpc__Autoscaler__RequestClusterResourceConstraintRequest creq2 =
        RAY__RPC__AUTOSCALER__REQUEST_CLUSTER_RESOURCE_CONSTRAINT_REQUEST__INIT;
    creq2.cluster_resource_constraint = &con;
    CU_ASSERT_EQUAL(harness_fake_gcs_call(&t, AS, "RequestClusterResourceConstraint", &creq2.base, NULL, err, sizeof(err)), 0);
    st = get_state(&t, &msg);
    CU_ASSERT_FATAL(st != NULL);
    CU_ASSERT(st->cluster_resource_state_version > v);
    CU_ASSERT_EQUAL_FATAL(st->n_cluster_resource_constraints, 1);
    const Ray__Rpc__Autoscaler__ResourceRequestByCount *got = st->cluster_resource_constraints[0]->resource_requests[0];
    CU_ASSERT_EQUAL(got->count, 2);
    CU_ASSERT_STRING_EQUAL(got->request->resources_bundle[0]->key, "GPU");
    CU_ASSERT_DOUBLE_EQUAL(got->request->resources_bundle[0]->value, 4.0, 1e-9);
    rpc_msg_free(msg);
    /* A bad constraint is refused. */
    gpu.value = -1;
    CU_ASSERT_EQUAL(harness_fake_gcs_call(&t, AS, "RequestClusterResourceConstraint", &creq2.base, NULL, err, sizeof(err)),
                    -1000 - GRPC_STATUS_INVALID_ARGUMENT);

    /* The autoscaler's report: kept, returned by GetClusterStatus, an older one ignored. */
    Ray__Rpc__Autoscaler__PendingInstanceRequest pir = RAY__RPC__AUTOSCALER__PENDING_INSTANCE_REQUEST__INIT;
    pir.ray_node_type_name = "A100x1";
    pir.instance_type_name = "lab:a100-cheap";
    pir.count = 1;
    Ray__Rpc__Autoscaler__PendingInstanceRequest *pptr = &pir;
    Ray__Rpc__Autoscaler__FailedInstanceRequest fir = RAY__RPC__AUTOSCALER__FAILED_INSTANCE_REQUEST__INIT;
    fir.ray_node_type_name = "H100x8";
    fir.count = 1;
    fir.reason = "provider lab: no capacity in region eu";
    fir.failed_ts = time(NULL);
    Ray__Rpc__Autoscaler__FailedInstanceRequest *fptr = &fir;
    Ray__Rpc__Autoscaler__AutoscalingState as = RAY__RPC__AUTOSCALER__AUTOSCALING_STATE__INIT;
    as.autoscaler_state_version = 5;
    as.pending_instance_requests = &pptr;
    as.n_pending_instance_requests = 1;
    as.failed_instance_requests = &fptr;
    as.n_failed_instance_requests = 1;
    as.infeasible_resource_requests = &(Ray__Rpc__Autoscaler__ResourceRequest *){&rq};
    as.n_infeasible_resource_requests = 1;
    gpu.value = 16;
    Ray__Rpc__Autoscaler__ReportAutoscalingStateRequest rreq = RAY__RPC__AUTOSCALER__REPORT_AUTOSCALING_STATE_REQUEST__INIT;
    rreq.autoscaling_state = &as;
    CU_ASSERT_EQUAL(harness_fake_gcs_call(&t, AS, "ReportAutoscalingState", &rreq.base, NULL, err, sizeof(err)), 0);
    as.autoscaler_state_version = 3;
    as.n_pending_instance_requests = 0;
    CU_ASSERT_EQUAL(harness_fake_gcs_call(&t, AS, "ReportAutoscalingState", &rreq.base, NULL, err, sizeof(err)), 0);
    Ray__Rpc__Autoscaler__GetClusterStatusRequest sreq = RAY__RPC__AUTOSCALER__GET_CLUSTER_STATUS_REQUEST__INIT;
    CU_ASSERT_EQUAL(harness_fake_gcs_call(&t, AS, "GetClusterStatus", &sreq.base, &msg, err, sizeof(err)), 0);
    const Ray__Rpc__Autoscaler__GetClusterStatusReply *sr = (const void *)msg;
    CU_ASSERT_FATAL(sr && sr->autoscaling_state && sr->cluster_resource_state);
    CU_ASSERT_EQUAL(sr->autoscaling_state->autoscaler_state_version, 5);
    CU_ASSERT_EQUAL(sr->autoscaling_state->n_pending_instance_requests, 1);
    CU_ASSERT_EQUAL(sr->cluster_resource_state->last_seen_autoscaler_state_version, 5);
    rpc_msg_free(msg);
    Ray__Rpc__Autoscaler__ReportAutoscalingStateRequest empty = RAY__RPC__AUTOSCALER__REPORT_AUTOSCALING_STATE_REQUEST__INIT;
    CU_ASSERT_EQUAL(harness_fake_gcs_call(&t, AS, "ReportAutoscalingState", &empty.base, NULL, err, sizeof(err)),
                    -1000 - GRPC_STATUS_INVALID_ARGUMENT);

    /* `rayc status` prints it in Ray's lines. */
    char cmd[PATH_MAX + 256], out[16384];
    snprintf(cmd, sizeof(cmd), "%s/rayc status --address %s", t.c.bin, t.c.gcs_address);
    FILE *p = popen(cmd, "r");
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    CU_ASSERT_EQUAL(pclose(p), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Pending:\n A100x1, 1 launching\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, " H100x8: LaunchFailed (latest_attempt: "));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, ") - provider lab: no capacity in region eu\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, " {'GPU': 16}: infeasible for the autoscaler\n"));
    CU_ASSERT_PTR_NULL(strstr(out, "(no pending nodes)"));
    CU_ASSERT_PTR_NULL(strstr(out, "(no failures)"));
    if (!strstr(out, "A100x1, 1 launching"))
        fprintf(stderr, "rayc status said:\n%s\n", out);
    tc_stop(&t);
}

static void test_drain(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t), 0);
    int r0 = harness_fake_raylet(&t, (const char *[]){"--num-cpus", "1", NULL});
    int r1 = harness_fake_raylet(&t, (const char *[]){"--num-cpus", "1", NULL});
    CU_ASSERT_FATAL(r0 == 0 && r1 == 1);
    CU_ASSERT_FATAL(wait_status(&t, r0, STATUS_IDLE, 0, 10000) && wait_status(&t, r1, STATUS_IDLE, 0, 10000));
    char why[600];
    /* Busy r0: idle termination refused, saying why; preemption accepted. */
    harness_lease a;
    CU_ASSERT_FATAL(harness_lease_sync(&t, r0, &a, HARNESS_RES({"CPU", 1}), NULL, 10000) && harness_lease_granted(&a));
    CU_ASSERT_FATAL(wait_status(&t, r0, STATUS_RUNNING, 0, 10000));
    CU_ASSERT_EQUAL(drain(&t, r0, REASON_IDLE, 0, why, sizeof(why)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "not idle"));
    CU_ASSERT_EQUAL(drain(&t, r0, REASON_PREEMPT, (int64_t)time(NULL) * 1000 + 60000, why, sizeof(why)), 1);
    CU_ASSERT(wait_status(&t, r0, STATUS_DRAINING, 0, 5000));
    /* Idle r1: idle termination accepted. */
    CU_ASSERT_EQUAL(drain(&t, r1, REASON_IDLE, 0, why, sizeof(why)), 1);
    ProtobufCMessage *msg;
    const as_state *st = get_state(&t, &msg);
    CU_ASSERT_EQUAL(node_state(st, &t, r1)->status, STATUS_DRAINING);
    CU_ASSERT(has_activity(node_state(st, &t, r1), "idle termination"));
    rpc_msg_free(msg);
    /* GetAllResourceUsage shows both draining, with r0's deadline. */
    int64_t until = rc_mono_ms() + 5000;
    int both = 0;
    while (!both && rc_mono_ms() < until) {
        Ray__Rpc__GetAllResourceUsageRequest ureq = RAY__RPC__GET_ALL_RESOURCE_USAGE_REQUEST__INIT;
        ProtobufCMessage *u = NULL;
        harness_fake_gcs_call(&t, &ray__rpc__node_resource_info_gcs_service__descriptor, "GetAllResourceUsage", &ureq.base,
                              &u, why, sizeof(why));
        const Ray__Rpc__ResourceUsageBatchData *b = u ? ((Ray__Rpc__GetAllResourceUsageReply *)u)->resource_usage_data : NULL;
        int n = 0;
        for (size_t i = 0; b && i < b->n_batch; i++)
            n += b->batch[i]->is_draining;
        both = n == 2;
        rpc_msg_free(u);
        if (!both)
            harness_fake_pump(&t, NULL, 100);
    }
    CU_ASSERT(both);
    /* No new leases on drained nodes: a request at r1, which has a free CPU, is not granted
     * there (it waits: no node may take it). */
    harness_fake_pump(&t, NULL, 500); /* r1 hears of its drain at its next poll */
    harness_lease b;
    harness_lease_async(&t, r1, &b, HARNESS_RES({"CPU", 1}), NULL);
    CU_ASSERT_FALSE(harness_fake_pump(&t, &b.done, 1500));
    /* Unknown node: refused with a reason; bad requests: INVALID_ARGUMENT. */
    uint8_t unknown[RC_NODE_ID_SIZE];
    rc_id_random(unknown, sizeof(unknown));
    Ray__Rpc__Autoscaler__DrainNodeRequest req = RAY__RPC__AUTOSCALER__DRAIN_NODE_REQUEST__INIT;
    req.node_id.data = unknown;
    req.node_id.len = RC_NODE_ID_SIZE;
    req.reason = REASON_PREEMPT;
    CU_ASSERT_EQUAL(harness_fake_gcs_call(&t, AS, "DrainNode", &req.base, &msg, why, sizeof(why)), 0);
    CU_ASSERT_FATAL(msg != NULL);
    CU_ASSERT_FALSE(((Ray__Rpc__Autoscaler__DrainNodeReply *)msg)->is_accepted);
    CU_ASSERT_PTR_NOT_NULL(strstr(((Ray__Rpc__Autoscaler__DrainNodeReply *)msg)->rejection_reason_message, "not known"));
    rpc_msg_free(msg);
    req.reason = 7;
    CU_ASSERT_EQUAL(harness_fake_gcs_call(&t, AS, "DrainNode", &req.base, NULL, why, sizeof(why)),
                    -1000 - GRPC_STATUS_INVALID_ARGUMENT);
    req.reason = REASON_PREEMPT;
    req.node_id.len = 3;
    CU_ASSERT_EQUAL(harness_fake_gcs_call(&t, AS, "DrainNode", &req.base, NULL, why, sizeof(why)),
                    -1000 - GRPC_STATUS_INVALID_ARGUMENT);
    harness_lease_return(&t, &a, 0);
    harness_lease_free(&a);
    harness_lease_free(&b);
    tc_stop(&t);
}

/* A join token that requires verification (CreateJoinToken as admin). */
static void verification_token(tc *t, char *out, size_t len)
{
    Rayc__Rpc__CreateJoinTokenRequest req = RAYC__RPC__CREATE_JOIN_TOKEN_REQUEST__INIT;
    req.ttl_seconds = 120;
    req.max_uses = 1;
    req.require_verification = 1;
    ProtobufCMessage *msg = NULL;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(harness_fake_gcs_call(t, &rayc__rpc__auth_service__descriptor, "CreateJoinToken", &req.base,
                                                &msg, err, sizeof(err)),
                          0);
    const Rayc__Rpc__CreateJoinTokenReply *r = (const void *)msg;
    CU_ASSERT(r->info && r->info->require_verification);
    snprintf(out, len, "%s", r->join_token);
    rpc_msg_free(msg);
}

static int verdict(tc *t, int i, int passed, const char *reason, char *err, size_t len)
{
    uint8_t id[RC_NODE_ID_SIZE];
    node_bytes(t, i, id);
    Rayc__Rpc__SetNodeVerificationRequest req = RAYC__RPC__SET_NODE_VERIFICATION_REQUEST__INIT;
    req.node_id.data = id;
    req.node_id.len = RC_NODE_ID_SIZE;
    req.passed = passed;
    req.reason = (char *)reason;
    return harness_fake_gcs_call(t, MARKET, "SetNodeVerification", &req.base, NULL, err, len);
}

static int node_label(tc *t, int i, const char *key, char *out, size_t len)
{
    Ray__Rpc__GetAllNodeInfoRequest req = RAY__RPC__GET_ALL_NODE_INFO_REQUEST__INIT;
    ProtobufCMessage *msg = NULL;
    char err[256];
    uint8_t id[RC_NODE_ID_SIZE];
    node_bytes(t, i, id);
    int found = 0;
    if (harness_fake_gcs_call(t, &ray__rpc__node_info_gcs_service__descriptor, "GetAllNodeInfo", &req.base, &msg, err,
                              sizeof(err)) != 0)
        return 0;
    const Ray__Rpc__GetAllNodeInfoReply *r = (const void *)msg;
    for (size_t k = 0; k < r->n_node_info_list; k++) {
        const Ray__Rpc__GcsNodeInfo *n = r->node_info_list[k];
        if (memcmp(n->node_id.data, id, RC_NODE_ID_SIZE))
            continue;
        for (size_t l = 0; l < n->n_labels; l++)
            if (!strcmp(n->labels[l]->key, key)) {
                snprintf(out, len, "%s", n->labels[l]->value);
                found = 1;
            }
    }
    rpc_msg_free(msg);
    return found;
}

static void test_verification_quarantine(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t), 0);
    int r0 = harness_fake_raylet(&t, (const char *[]){"--num-cpus", "1", NULL});
    char tok[256], tok2[256];
    verification_token(&t, tok, sizeof(tok));
    verification_token(&t, tok2, sizeof(tok2));
    /* A node may not claim to be verified itself. */
    int rv = harness_fake_raylet(&t, (const char *[]){"--num-cpus", "1", "--resources", "{\"V\": 1}", "--join-token", tok,
                                                      "--labels", "rayc.io/verification=passed", NULL});
    int rf = harness_fake_raylet(&t, (const char *[]){"--num-cpus", "1", "--resources", "{\"W\": 1}", "--join-token", tok2,
                                                      NULL});
    CU_ASSERT_FATAL(r0 == 0 && rv == 1 && rf == 2);
    char v[256];
    CU_ASSERT(node_label(&t, rv, "rayc.io/verification", v, sizeof(v)) && !strcmp(v, "pending"));
    CU_ASSERT_FALSE(node_label(&t, r0, "rayc.io/verification", v, sizeof(v)));
    ProtobufCMessage *msg;
    const as_state *st = get_state(&t, &msg);
    CU_ASSERT_EQUAL(node_state(st, &t, rv)->status, STATUS_DRAINING);
    CU_ASSERT(has_activity(node_state(st, &t, rv), "awaiting verification"));
    rpc_msg_free(msg);

    /* No work for the unverified node: a lease only it could take waits. */
    harness_fake_pump(&t, NULL, 500);
    harness_lease a, b;
    harness_lease_async(&t, r0, &a, HARNESS_RES({"V", 1}), NULL);
    harness_lease_async(&t, r0, &b, HARNESS_RES({"W", 1}), NULL);
    CU_ASSERT_FALSE(harness_fake_pump(&t, &a.done, 1500));
    char err[512];
    CU_ASSERT_EQUAL(verdict(&t, rv, 1, "matrix rows check out", err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(verdict(&t, rf, 0, "wrong results", err, sizeof(err)), 0);
    /* Passed: the waiting lease goes there. */
    CU_ASSERT_FATAL(harness_fake_pump(&t, &a.done, 10000));
    CU_ASSERT_FATAL(a.reply && a.reply->retry_at_raylet_address);
    CU_ASSERT_EQUAL(a.reply->retry_at_raylet_address->port, t.c.raylets[rv].port);
    CU_ASSERT(node_label(&t, rv, "rayc.io/verification", v, sizeof(v)) && !strcmp(v, "passed"));
    /* Failed: out for good, and visible. */
    st = get_state(&t, &msg);
    CU_ASSERT(node_state(st, &t, rv)->status != STATUS_DRAINING);
    CU_ASSERT_EQUAL(node_state(st, &t, rf)->status, STATUS_DRAINING);
    CU_ASSERT(has_activity(node_state(st, &t, rf), "failed verification: wrong results"));
    rpc_msg_free(msg);
    CU_ASSERT_EQUAL(verdict(&t, rf, 1, "second try", err, sizeof(err)), GCS_STATUS_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "final"));
    CU_ASSERT_FALSE(harness_fake_pump(&t, &b.done, 1500));
    /* A node that needs no verification takes no verdict. */
    CU_ASSERT_EQUAL(verdict(&t, r0, 1, "", err, sizeof(err)), GCS_STATUS_NOT_FOUND);
    /* ListJoinTokens shows the flag. */
    Rayc__Rpc__ListJoinTokensRequest lreq = RAYC__RPC__LIST_JOIN_TOKENS_REQUEST__INIT;
    CU_ASSERT_EQUAL(harness_fake_gcs_call(&t, &rayc__rpc__auth_service__descriptor, "ListJoinTokens", &lreq.base, &msg, err,
                                          sizeof(err)),
                    0);
    int flagged = 0;
    const Rayc__Rpc__ListJoinTokensReply *lr = (const void *)msg;
    for (size_t i = 0; lr && i < lr->n_tokens; i++)
        flagged += lr->tokens[i]->require_verification;
    CU_ASSERT_EQUAL(flagged, 2);
    rpc_msg_free(msg);
    /* Cancel what still waits. */
    Ray__Rpc__CancelWorkerLeaseRequest cancel = RAY__RPC__CANCEL_WORKER_LEASE_REQUEST__INIT;
    cancel.lease_id.data = b.lease_id;
    cancel.lease_id.len = sizeof(b.lease_id);
    ProtobufCMessage *reply = NULL;
    rpc_client_call_sync(t.tcp[r0], &ray__rpc__node_manager_service__descriptor, "CancelWorkerLease", &cancel.base, 5000,
                         &reply, NULL, 0);
    rpc_msg_free(reply);
    harness_fake_pump(&t, &b.done, 2000);
    harness_lease_free(&a);
    harness_lease_free(&b);
    tc_stop(&t);
}

static void test_non_admin_refused(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t), 0);
    /* A job's token (AddJob, IssueJobToken as admin). */
    uint8_t job[4] = {0, 0, 0, 7};
    Ray__Rpc__JobTableData data = RAY__RPC__JOB_TABLE_DATA__INIT;
    data.job_id.data = job;
    data.job_id.len = 4;
    data.driver_ip_address = "127.0.0.1";
    Ray__Rpc__AddJobRequest add = RAY__RPC__ADD_JOB_REQUEST__INIT;
    add.data = &data;
    char err[512];
    CU_ASSERT_EQUAL_FATAL(harness_fake_gcs_call(&t, &ray__rpc__job_info_gcs_service__descriptor, "AddJob", &add.base, NULL,
                                                err, sizeof(err)),
                          0);
    Rayc__Rpc__IssueJobTokenRequest ireq = RAYC__RPC__ISSUE_JOB_TOKEN_REQUEST__INIT;
    ireq.job_id.data = job;
    ireq.job_id.len = 4;
    ProtobufCMessage *msg = NULL;
    CU_ASSERT_EQUAL_FATAL(harness_fake_gcs_call(&t, &rayc__rpc__auth_service__descriptor, "IssueJobToken", &ireq.base, &msg,
                                                err, sizeof(err)),
                          0);
    char *token = rc_strdup(((Rayc__Rpc__IssueJobTokenReply *)msg)->token);
    rpc_msg_free(msg);
    rpc_security sec = {.ca_cert_pem = t.c.ca_cert, .token = token};
    rpc_client_options co = {&sec, 0, 0};
    rpc_client *job_cli = NULL;
    CU_ASSERT_EQUAL_FATAL(rpc_client_create(t.rpc, t.c.gcs_address, &co, &job_cli), 0);
    Ray__Rpc__Autoscaler__GetClusterResourceStateRequest g = RAY__RPC__AUTOSCALER__GET_CLUSTER_RESOURCE_STATE_REQUEST__INIT;
    Ray__Rpc__Autoscaler__ReportAutoscalingStateRequest r = RAY__RPC__AUTOSCALER__REPORT_AUTOSCALING_STATE_REQUEST__INIT;
    Ray__Rpc__Autoscaler__DrainNodeRequest d = RAY__RPC__AUTOSCALER__DRAIN_NODE_REQUEST__INIT;
    Rayc__Rpc__SetNodeVerificationRequest s = RAYC__RPC__SET_NODE_VERIFICATION_REQUEST__INIT;
    struct {
        const ProtobufCServiceDescriptor *svc;
        const char *method;
        const ProtobufCMessage *req;
    } calls[] = {{AS, "GetClusterResourceState", &g.base},
                 {AS, "ReportAutoscalingState", &r.base},
                 {AS, "DrainNode", &d.base},
                 {MARKET, "SetNodeVerification", &s.base}};
    for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
        ProtobufCMessage *reply = NULL;
        int code = rpc_client_call_sync(job_cli, calls[i].svc, calls[i].method, calls[i].req, 5000, &reply, err, sizeof(err));
        CU_ASSERT_EQUAL(code, GRPC_STATUS_PERMISSION_DENIED);
        if (code != GRPC_STATUS_PERMISSION_DENIED)
            fprintf(stderr, "%s as a job: %d %s\n", calls[i].method, code, err);
        rpc_msg_free(reply);
    }
    rpc_client_destroy(job_cli);
    rc_free(token);
    tc_stop(&t);
}

static const unit_case cases[] = {
    UNIT_CASE(test_versions_idle_and_pending_requests),
    UNIT_CASE(test_gang_constraint_and_report),
    UNIT_CASE(test_drain),
    UNIT_CASE(test_verification_quarantine),
    UNIT_CASE(test_non_admin_refused),
};

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    rc_config_init();
    return unit_run("autoscaler", cases, UNIT_N(cases));
}
