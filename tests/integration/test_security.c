/*
 * Security against real daemons (issue: secure by default): each attack an unprivileged
 * caller could try on a cluster is tried here and must fail, with the right status, while
 * the daemons keep serving. A real rayc-gcs (memory, or Redis with a password) and real
 * raylets that joined with join tokens; the test process is the admin, and acts as other
 * principals through clients of their own: no credential, a forged token, a plaintext
 * client, a client trusting another CA, a node certificate, a job token.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "cluster.h"
#include "gcs_client.h"
#include "core_worker.pb-c.h"
#include "gcs_service.pb-c.h"
#include "node_manager.pb-c.h"
#include "rayc_auth.pb-c.h"
#include "rayc_gcs.pb-c.h"
#include "rc_alloc.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_ids.h"
#include "rc_time.h"
#include "rpc.h"
#include "unit.h"

typedef struct suite {
    harness_cluster c;
    uv_loop_t loop;
    rpc_ctx *ctx;
} suite;

static suite S;

static void start(int use_redis, int raylets)
{
    memset(&S, 0, sizeof(S));
    CU_ASSERT_EQUAL_FATAL(harness_cluster_init(&S.c, use_redis), 0);
    CU_ASSERT_EQUAL_FATAL(harness_gcs_start(&S.c), 0);
    for (int i = 0; i < raylets; i++) {
        int idx;
        const char *flags[] = {"--num-cpus", "1", NULL};
        CU_ASSERT_EQUAL_FATAL(harness_raylet_start(&S.c, flags, &idx), 0);
    }
    uv_loop_init(&S.loop);
    CU_ASSERT_EQUAL_FATAL(rpc_ctx_create(&S.loop, &S.ctx), 0);
}

static void stop(void)
{
    /* Daemons that exited on their own (a revoked node) left their sanitizer reports, if
     * any, in their logs (when the suite runs against sanitizer builds). */
    const char *names[HARNESS_MAX_RAYLETS + 1] = {"gcs"};
    for (int i = 0; i < S.c.n_raylets; i++)
        names[i + 1] = S.c.raylets[i].name;
    for (int i = 0; i <= S.c.n_raylets; i++) {
        int dirty = harness_log_contains(&S.c, names[i], "Sanitizer") ||
                    harness_log_contains(&S.c, names[i], "runtime error");
        CU_ASSERT_FALSE(dirty);
        if (dirty)
            setenv("RAYC_TEST_KEEP_LOGS", "1", 1);
    }
    rpc_ctx_destroy(S.ctx);
    uv_run(&S.loop, UV_RUN_DEFAULT);
    uv_loop_close(&S.loop);
    harness_cluster_destroy(&S.c);
}

/* A client of target with its own security (NULL fields: none). */
static rpc_client *client_as(const char *target, const char *ca, const char *cert, const char *key,
                             const char *token, int insecure)
{
    rpc_security sec = {.insecure = insecure, .ca_cert_pem = ca, .cert_pem = cert, .key_pem = key,
                        .present_cert = cert != NULL, .token = token};
    rpc_client_options co = {&sec, 0, 0};
    rpc_client *c = NULL;
    CU_ASSERT_EQUAL_FATAL(rpc_client_create(S.ctx, target, &co, &c), 0);
    return c;
}

static rpc_client *admin_client(const char *target)
{
    return client_as(target, S.c.ca_cert, NULL, NULL, S.c.admin_token, 0);
}

/* A client of target holding raylet i's node certificate and key (read from its session). */
static rpc_client *node_client_of(int i, const char *target)
{
    char path[PATH_MAX + 80];
    char *key = NULL, *cert = NULL;
    snprintf(path, sizeof(path), "%s/%s/node.key", S.c.root, S.c.raylets[i].name);
    CU_ASSERT_EQUAL_FATAL(auth_read_file(path, &key), 0);
    snprintf(path, sizeof(path), "%s/%s/node.crt", S.c.root, S.c.raylets[i].name);
    CU_ASSERT_EQUAL_FATAL(auth_read_file(path, &cert), 0);
    rpc_client *c = client_as(target, S.c.ca_cert, cert, key, NULL, 0); /* the PEMs are copied */
    rc_free(key);
    rc_free(cert);
    return c;
}

static char *raylet_address(int i, char *buf, size_t len)
{
    snprintf(buf, len, "127.0.0.1:%d", S.c.raylets[i].port);
    return buf;
}

/* Calls and returns the gRPC status; err gets the message; *reply (if not NULL) the reply. */
static int call(rpc_client *cli, const ProtobufCServiceDescriptor *svc, const char *method,
                const ProtobufCMessage *req, ProtobufCMessage **reply, char *err)
{
    ProtobufCMessage *r = NULL;
    err[0] = '\0';
    int code = rpc_client_call_sync(cli, svc, method, req, 10000, &r, err, 512);
    if (reply)
        *reply = r;
    else
        rpc_msg_free(r);
    return code;
}

static int alive_nodes(rpc_client *cli)
{
    Ray__Rpc__GetAllNodeInfoRequest req = RAY__RPC__GET_ALL_NODE_INFO_REQUEST__INIT;
    ProtobufCMessage *reply = NULL;
    char err[512];
    if (call(cli, &ray__rpc__node_info_gcs_service__descriptor, "GetAllNodeInfo", &req.base, &reply, err) != 0)
        return -1;
    const Ray__Rpc__GetAllNodeInfoReply *r = (const void *)reply;
    int n = 0;
    for (size_t i = 0; i < r->n_node_info_list; i++)
        n += r->node_info_list[i]->state == RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__ALIVE;
    rpc_msg_free(reply);
    return n;
}

static int add_job(rpc_client *cli, uint8_t job[4], const char *code_path)
{
    Ray__Rpc__JobConfig cfg = RAY__RPC__JOB_CONFIG__INIT;
    char *paths[] = {(char *)code_path};
    if (code_path) {
        cfg.code_search_path = paths;
        cfg.n_code_search_path = 1;
    }
    Ray__Rpc__JobTableData data = RAY__RPC__JOB_TABLE_DATA__INIT;
    data.job_id.data = job;
    data.job_id.len = 4;
    data.driver_pid = getpid();
    data.driver_ip_address = "127.0.0.1";
    data.config = &cfg;
    Ray__Rpc__AddJobRequest add = RAY__RPC__ADD_JOB_REQUEST__INIT;
    add.data = &data;
    char err[512];
    return call(cli, &ray__rpc__job_info_gcs_service__descriptor, "AddJob", &add.base, NULL, err);
}

/* A job token for job from the GCS (IssueJobToken as admin). */
static char *job_token(rpc_client *admin, uint8_t job[4])
{
    Rayc__Rpc__IssueJobTokenRequest req = RAYC__RPC__ISSUE_JOB_TOKEN_REQUEST__INIT;
    req.job_id.data = job;
    req.job_id.len = 4;
    ProtobufCMessage *reply = NULL;
    char err[512];
    CU_ASSERT_EQUAL_FATAL(call(admin, &rayc__rpc__auth_service__descriptor, "IssueJobToken", &req.base, &reply, err), 0);
    const Rayc__Rpc__IssueJobTokenReply *r = (const void *)reply;
    CU_ASSERT_FATAL(r->status == NULL || r->status->code == 0);
    char *t = rc_strdup(r->token);
    rpc_msg_free(reply);
    return t;
}

/* A RequestWorkerLease for one CPU for job (4 bytes), from a caller at 127.0.0.1:1, with a
 * fresh lease ID; the parts live in the struct. */
typedef struct cpu_lease {
    Ray__Rpc__LeaseSpec__RequiredResourcesEntry cpu, *cpus[1];
    uint8_t lease_id[24];
    Ray__Rpc__Address caller;
    Ray__Rpc__LeaseSpec spec;
    Ray__Rpc__RequestWorkerLeaseRequest req;
} cpu_lease;

static void cpu_lease_init(cpu_lease *l, uint8_t job[4])
{
    ray__rpc__lease_spec__required_resources_entry__init(&l->cpu);
    l->cpu.key = "CPU";
    l->cpu.value = 1;
    l->cpus[0] = &l->cpu;
    rc_id_random(l->lease_id, sizeof(l->lease_id));
    ray__rpc__address__init(&l->caller);
    l->caller.ip_address = "127.0.0.1";
    l->caller.port = 1;
    ray__rpc__lease_spec__init(&l->spec);
    l->spec.lease_id.data = l->lease_id;
    l->spec.lease_id.len = sizeof(l->lease_id);
    l->spec.job_id.data = job;
    l->spec.job_id.len = 4;
    l->spec.caller_address = &l->caller;
    l->spec.required_resources = l->cpus;
    l->spec.n_required_resources = 1;
    ray__rpc__request_worker_lease_request__init(&l->req);
    l->req.lease_spec = &l->spec;
}

/* ---- cases ---------------------------------------------------------------------------- */

static void test_no_token_wrong_token_plaintext_foreign_ca(void)
{
    start(0, 1);
    char err[512], raddr[64];
    rpc_client *admin = admin_client(S.c.gcs_address);
    CU_ASSERT_EQUAL(alive_nodes(admin), 1);

    /* No credential: GetAllJobInfo (every job's entrypoint, pid and address) is refused. */
    rpc_client *anon = client_as(S.c.gcs_address, S.c.ca_cert, NULL, NULL, NULL, 0);
    Ray__Rpc__GetAllJobInfoRequest jobs = RAY__RPC__GET_ALL_JOB_INFO_REQUEST__INIT;
    CU_ASSERT_EQUAL(call(anon, &ray__rpc__job_info_gcs_service__descriptor, "GetAllJobInfo", &jobs.base, NULL, err),
                    GRPC_STATUS_UNAUTHENTICATED);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "RAYC_AUTH_TOKEN"));
    /* ... and AddJob with a code search path of the attacker's choosing. */
    uint8_t evil[4] = {0, 0, 0, 66};
    CU_ASSERT_EQUAL(add_job(anon, evil, "/tmp/evil"), GRPC_STATUS_UNAUTHENTICATED);
    /* ... and ShutdownRaylet on the raylet's TCP port. */
    rpc_client *anon_raylet = client_as(raylet_address(0, raddr, sizeof(raddr)), S.c.ca_cert, NULL, NULL, NULL, 0);
    Ray__Rpc__ShutdownRayletRequest sd = RAY__RPC__SHUTDOWN_RAYLET_REQUEST__INIT;
    CU_ASSERT_EQUAL(call(anon_raylet, &ray__rpc__node_manager_service__descriptor, "ShutdownRaylet", &sd.base, NULL, err),
                    GRPC_STATUS_UNAUTHENTICATED);

    /* A token signed by another CA, and a garbage token. */
    char *other_key, *other_ca, *forged;
    CU_ASSERT_EQUAL_FATAL(auth_ca_create("attacker CA", 1, &other_key, &other_ca), 0);
    auth_claims claims = {.kind = AUTH_TOKEN_ADMIN};
    CU_ASSERT_EQUAL_FATAL(auth_token_mint(other_key, &claims, &forged), 0);
    rpc_client *forger = client_as(S.c.gcs_address, S.c.ca_cert, NULL, NULL, forged, 0);
    CU_ASSERT_EQUAL(call(forger, &ray__rpc__job_info_gcs_service__descriptor, "GetAllJobInfo", &jobs.base, NULL, err),
                    GRPC_STATUS_UNAUTHENTICATED);
    rpc_client *garbage = client_as(S.c.gcs_address, S.c.ca_cert, NULL, NULL, "Bearer-nonsense", 0);
    CU_ASSERT_EQUAL(call(garbage, &ray__rpc__job_info_gcs_service__descriptor, "GetAllJobInfo", &jobs.base, NULL, err),
                    GRPC_STATUS_UNAUTHENTICATED);

    /* A plaintext client on the TLS ports, and a client that trusts another CA (so it never
     * sends its token to a server it cannot authenticate). */
    rpc_client *plain = client_as(S.c.gcs_address, NULL, NULL, NULL, NULL, 1);
    CU_ASSERT_NOT_EQUAL(call(plain, &ray__rpc__job_info_gcs_service__descriptor, "GetAllJobInfo", &jobs.base, NULL, err),
                        GRPC_STATUS_OK);
    rpc_client *plain_raylet = client_as(raddr, NULL, NULL, NULL, NULL, 1);
    CU_ASSERT_NOT_EQUAL(call(plain_raylet, &ray__rpc__node_manager_service__descriptor, "ShutdownRaylet", &sd.base,
                             NULL, err),
                        GRPC_STATUS_OK);
    rpc_client *foreign = client_as(S.c.gcs_address, other_ca, NULL, NULL, S.c.admin_token, 0);
    CU_ASSERT_EQUAL(call(foreign, &ray__rpc__job_info_gcs_service__descriptor, "GetAllJobInfo", &jobs.base, NULL, err),
                    GRPC_STATUS_UNAVAILABLE);

    /* Nothing was harmed: the raylet is alive and registered, the GCS serves the admin. */
    CU_ASSERT(harness_raylet_alive(&S.c, 0));
    CU_ASSERT_EQUAL(alive_nodes(admin), 1);
    CU_ASSERT_EQUAL(call(admin, &ray__rpc__job_info_gcs_service__descriptor, "GetAllJobInfo", &jobs.base, NULL, err),
                    GRPC_STATUS_OK);
    rc_free(other_key);
    rc_free(other_ca);
    rc_free(forged);
    rpc_client *all[] = {admin, anon, anon_raylet, forger, garbage, plain, plain_raylet, foreign};
    for (size_t i = 0; i < UNIT_N(all); i++)
        rpc_client_destroy(all[i]);
    stop();
}

static void test_nodes_act_only_for_themselves(void)
{
    start(0, 2);
    char err[512], raddr[64];
    rpc_client *admin = admin_client(S.c.gcs_address);
    /* An attacker holding a valid node certificate (of a node it made up) may not report
     * or unregister for raylet0's node, nor register a forged 100-GPU node of another ID. */
    uint8_t mine[28], victim[28];
    rc_id_random(mine, 28);
    CU_ASSERT_EQUAL_FATAL(rc_id_from_hex(S.c.raylets[0].node_id, victim, 28), 0);
    char cn[80] = "node:";
    rc_id_hex(mine, 28, cn + 5);
    char *key, *cert;
    CU_ASSERT_EQUAL_FATAL(harness_issue_cert(&S.c, cn, &key, &cert), 0);
    rpc_client *node = client_as(S.c.gcs_address, S.c.ca_cert, cert, key, NULL, 0);

    Ray__Rpc__ResourcesData res = RAY__RPC__RESOURCES_DATA__INIT;
    res.node_id.data = victim;
    res.node_id.len = 28;
    Rayc__Rpc__ReportResourceUsageRequest rep = RAYC__RPC__REPORT_RESOURCE_USAGE_REQUEST__INIT;
    rep.resources = &res;
    CU_ASSERT_EQUAL(call(node, &rayc__rpc__resource_report_gcs_service__descriptor, "ReportResourceUsage", &rep.base,
                         NULL, err),
                    GRPC_STATUS_PERMISSION_DENIED);
    Ray__Rpc__UnregisterNodeRequest un = RAY__RPC__UNREGISTER_NODE_REQUEST__INIT;
    un.node_id.data = victim;
    un.node_id.len = 28;
    CU_ASSERT_EQUAL(call(node, &ray__rpc__node_info_gcs_service__descriptor, "UnregisterNode", &un.base, NULL, err),
                    GRPC_STATUS_PERMISSION_DENIED);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "own node ID"));
    Ray__Rpc__DrainNodeData dd = RAY__RPC__DRAIN_NODE_DATA__INIT;
    dd.node_id = un.node_id;
    Ray__Rpc__DrainNodeData *dds[] = {&dd};
    Ray__Rpc__DrainNodeRequest drain = RAY__RPC__DRAIN_NODE_REQUEST__INIT;
    drain.drain_node_data = dds;
    drain.n_drain_node_data = 1;
    CU_ASSERT_EQUAL(call(node, &ray__rpc__node_info_gcs_service__descriptor, "DrainNode", &drain.base, NULL, err),
                    GRPC_STATUS_PERMISSION_DENIED);
    Ray__Rpc__GcsNodeInfo info = RAY__RPC__GCS_NODE_INFO__INIT;
    uint8_t forged_id[28];
    rc_id_random(forged_id, 28);
    info.node_id.data = forged_id;
    info.node_id.len = 28;
    info.node_manager_address = "127.0.0.1";
    info.node_manager_port = S.c.raylets[0].port;
    Ray__Rpc__RegisterNodeRequest reg = RAY__RPC__REGISTER_NODE_REQUEST__INIT;
    reg.node_info = &info;
    CU_ASSERT_EQUAL(call(node, &ray__rpc__node_info_gcs_service__descriptor, "RegisterNode", &reg.base, NULL, err),
                    GRPC_STATUS_PERMISSION_DENIED);

    /* A node may not shut down another raylet, nor prepare bundles on it (the GCS does). */
    rpc_client *node_to_raylet = client_as(raylet_address(0, raddr, sizeof(raddr)), S.c.ca_cert, cert, key, NULL, 0);
    Ray__Rpc__ShutdownRayletRequest sd = RAY__RPC__SHUTDOWN_RAYLET_REQUEST__INIT;
    CU_ASSERT_EQUAL(call(node_to_raylet, &ray__rpc__node_manager_service__descriptor, "ShutdownRaylet", &sd.base, NULL,
                         err),
                    GRPC_STATUS_PERMISSION_DENIED);
    CU_ASSERT(harness_raylet_alive(&S.c, 0));
    CU_ASSERT_EQUAL(alive_nodes(admin), 2);
    rc_free(key);
    rc_free(cert);
    rpc_client_destroy(node);
    rpc_client_destroy(node_to_raylet);
    rpc_client_destroy(admin);
    stop();
}

/* A node with a valid certificate registers itself (100 GPUs) at the address of another
 * node's raylet: the GCS reaches that raylet, which cannot show the forged node's
 * certificate, so the forged node fails its health checks and is declared dead instead of
 * drawing leases to the wrong raylet forever. */
static void test_forged_node_at_another_raylets_address_dies(void)
{
    setenv("RAYC_health_check_initial_delay_ms", "200", 1);
    setenv("RAYC_health_check_period_ms", "200", 1);
    setenv("RAYC_health_check_timeout_ms", "500", 1);
    setenv("RAYC_health_check_failure_threshold", "3", 1);
    start(0, 1);
    char err[512];
    rpc_client *admin = admin_client(S.c.gcs_address);
    uint8_t forged[28];
    rc_id_random(forged, 28);
    char cn[80] = "node:";
    rc_id_hex(forged, 28, cn + 5);
    char *key, *cert;
    CU_ASSERT_EQUAL_FATAL(harness_issue_cert(&S.c, cn, &key, &cert), 0);
    rpc_client *node = client_as(S.c.gcs_address, S.c.ca_cert, cert, key, NULL, 0);
    Ray__Rpc__GcsNodeInfo__ResourcesTotalEntry gpu = RAY__RPC__GCS_NODE_INFO__RESOURCES_TOTAL_ENTRY__INIT;
    gpu.key = "GPU";
    gpu.value = 100;
    Ray__Rpc__GcsNodeInfo__ResourcesTotalEntry *res[] = {&gpu};
    Ray__Rpc__GcsNodeInfo info = RAY__RPC__GCS_NODE_INFO__INIT;
    info.node_id.data = forged;
    info.node_id.len = 28;
    info.node_manager_address = "127.0.0.1";
    info.node_manager_port = S.c.raylets[0].port;
    info.resources_total = res;
    info.n_resources_total = 1;
    Ray__Rpc__RegisterNodeRequest reg = RAY__RPC__REGISTER_NODE_REQUEST__INIT;
    reg.node_info = &info;
    CU_ASSERT_EQUAL(call(node, &ray__rpc__node_info_gcs_service__descriptor, "RegisterNode", &reg.base, NULL, err), 0);
    int64_t deadline = rc_mono_ms() + 15000;
    int alive = 2;
    while ((alive = alive_nodes(admin)) != 1 && rc_mono_ms() < deadline)
        rc_sleep_ms(200);
    CU_ASSERT_EQUAL(alive, 1);
    CU_ASSERT(harness_raylet_alive(&S.c, 0)); /* the real raylet is untouched */
    rc_free(key);
    rc_free(cert);
    rpc_client_destroy(node);
    rpc_client_destroy(admin);
    stop();
    unsetenv("RAYC_health_check_initial_delay_ms");
    unsetenv("RAYC_health_check_period_ms");
    unsetenv("RAYC_health_check_timeout_ms");
    unsetenv("RAYC_health_check_failure_threshold");
}

static void test_job_tokens_are_scoped(void)
{
    start(0, 1);
    char err[512], raddr[64];
    rpc_client *admin = admin_client(S.c.gcs_address);
    uint8_t job1[4] = {1, 0, 0, 0}, job2[4] = {2, 0, 0, 0};
    CU_ASSERT_EQUAL_FATAL(add_job(admin, job1, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(add_job(admin, job2, NULL), 0);
    char *t1 = job_token(admin, job1);
    rpc_client *j1 = client_as(S.c.gcs_address, S.c.ca_cert, NULL, NULL, t1, 0);
    rpc_client *j1_raylet = client_as(raylet_address(0, raddr, sizeof(raddr)), S.c.ca_cert, NULL, NULL, t1, 0);

    /* A job token may not shut a raylet down, kill another job's actor, write the cluster
     * ID, add jobs, or mint join tokens. */
    Ray__Rpc__ShutdownRayletRequest sd = RAY__RPC__SHUTDOWN_RAYLET_REQUEST__INIT;
    CU_ASSERT_EQUAL(call(j1_raylet, &ray__rpc__node_manager_service__descriptor, "ShutdownRaylet", &sd.base, NULL, err),
                    GRPC_STATUS_PERMISSION_DENIED);
    uint8_t actor[16];
    rc_id_random(actor, 16);
    memcpy(actor + 12, job2, 4);
    Ray__Rpc__KillActorViaGcsRequest kill = RAY__RPC__KILL_ACTOR_VIA_GCS_REQUEST__INIT;
    kill.actor_id.data = actor;
    kill.actor_id.len = 16;
    kill.force_kill = 1;
    CU_ASSERT_EQUAL(call(j1, &ray__rpc__actor_info_gcs_service__descriptor, "KillActorViaGcs", &kill.base, NULL, err),
                    GRPC_STATUS_PERMISSION_DENIED);
    Ray__Rpc__InternalKVPutRequest put = RAY__RPC__INTERNAL_KVPUT_REQUEST__INIT;
    put.namespace_.data = (uint8_t *)"cluster";
    put.namespace_.len = 7;
    put.key.data = (uint8_t *)"ray_cluster_id";
    put.key.len = 14;
    put.value.data = (uint8_t *)"x";
    put.value.len = 1;
    put.overwrite = 1;
    CU_ASSERT_EQUAL(call(j1, &ray__rpc__internal_kvgcs_service__descriptor, "InternalKVPut", &put.base, NULL, err),
                    GRPC_STATUS_PERMISSION_DENIED);
    uint8_t job9[4] = {9, 0, 0, 0};
    CU_ASSERT_EQUAL(add_job(j1, job9, "/tmp/evil"), GRPC_STATUS_PERMISSION_DENIED);
    Rayc__Rpc__CreateJoinTokenRequest jt = RAYC__RPC__CREATE_JOIN_TOKEN_REQUEST__INIT;
    CU_ASSERT_EQUAL(call(j1, &rayc__rpc__auth_service__descriptor, "CreateJoinToken", &jt.base, NULL, err),
                    GRPC_STATUS_PERMISSION_DENIED);
    /* Its own KV namespace is fine. */
    put.namespace_.data = (uint8_t *)"fun";
    put.namespace_.len = 3;
    CU_ASSERT_EQUAL(call(j1, &ray__rpc__internal_kvgcs_service__descriptor, "InternalKVPut", &put.base, NULL, err), 0);

    /* The cluster ID is unchanged, and the raylet still serves. */
    Ray__Rpc__InternalKVGetRequest get = RAY__RPC__INTERNAL_KVGET_REQUEST__INIT;
    get.namespace_.data = (uint8_t *)"cluster";
    get.namespace_.len = 7;
    get.key = put.key;
    ProtobufCMessage *reply = NULL;
    CU_ASSERT_EQUAL(call(admin, &ray__rpc__internal_kvgcs_service__descriptor, "InternalKVGet", &get.base, &reply, err),
                    0);
    const Ray__Rpc__InternalKVGetReply *g = (const void *)reply;
    CU_ASSERT(g && g->value.len > 1);
    rpc_msg_free(reply);
    /* A lease for a job the GCS never heard of (an attacker's AddJob was refused above) is
     * refused by the raylet, even for the admin: no worker loads code for it. */
    rpc_client *admin_raylet = admin_client(raddr);
    uint8_t unknown[4] = {0, 0, 0, 66};
    cpu_lease cl;
    cpu_lease_init(&cl, unknown);
    Ray__Rpc__LeaseSpec *spec = &cl.spec;
    Ray__Rpc__RequestWorkerLeaseRequest *lease = &cl.req;
    ProtobufCMessage *lr = NULL;
    int lcode = call(admin_raylet, &ray__rpc__node_manager_service__descriptor, "RequestWorkerLease", &lease->base, &lr,
                     err);
    const Ray__Rpc__RequestWorkerLeaseReply *lrep = (const void *)lr;
    CU_ASSERT(lcode != GRPC_STATUS_OK || (lrep && lrep->canceled && !lrep->worker_address));
    if (lrep && lrep->scheduling_failure_message)
        CU_ASSERT_PTR_NOT_NULL(strstr(lrep->scheduling_failure_message, "unknown to the GCS"));
    rpc_msg_free(lr);
    /* The job token may not lease for job 2 either (its own job only). */
    spec->job_id.data = job2;
    CU_ASSERT_EQUAL(call(j1_raylet, &ray__rpc__node_manager_service__descriptor, "RequestWorkerLease", &lease->base,
                         NULL, err),
                    GRPC_STATUS_PERMISSION_DENIED);
    rpc_client_destroy(admin_raylet);
    CU_ASSERT(harness_raylet_alive(&S.c, 0));
    rc_free(t1);
    rpc_client_destroy(j1);
    rpc_client_destroy(j1_raylet);
    rpc_client_destroy(admin);
    stop();
}

static void test_kv_limits(void)
{
    setenv("RAYC_kv_max_value_bytes", "1048576", 1);
    start(0, 0);
    unsetenv("RAYC_kv_max_value_bytes");
    char err[512];
    rpc_client *admin = admin_client(S.c.gcs_address);
    size_t big = 2u << 20;
    uint8_t *value = rc_calloc(1, big);
    Ray__Rpc__InternalKVPutRequest put = RAY__RPC__INTERNAL_KVPUT_REQUEST__INIT;
    put.namespace_.data = (uint8_t *)"data";
    put.namespace_.len = 4;
    put.key.data = (uint8_t *)"big";
    put.key.len = 3;
    put.value.data = value;
    put.value.len = big;
    int code = call(admin, &ray__rpc__internal_kvgcs_service__descriptor, "InternalKVPut", &put.base, NULL, err);
    CU_ASSERT_EQUAL(code, GRPC_STATUS_RESOURCE_EXHAUSTED);
    put.value.len = 1000;
    CU_ASSERT_EQUAL(call(admin, &ray__rpc__internal_kvgcs_service__descriptor, "InternalKVPut", &put.base, NULL, err), 0);
    rc_free(value);
    rpc_client_destroy(admin);
    stop();
}

/* Runs a raylet that must fail to join with token (NULL: none) and returns its exit status,
 * and whether its log names why. */
static int raylet_join_fails(const char *token, const char *ca_flag, const char *ca_value, const char *why)
{
    char exe[PATH_MAX + 32], log[PATH_MAX + 64], cmd[4 * PATH_MAX];
    snprintf(exe, sizeof(exe), "%s/rayc-raylet", S.c.bin);
    snprintf(log, sizeof(log), "%s/logs/refused.err", S.c.root);
    snprintf(cmd, sizeof(cmd), "timeout 30 '%s' --gcs-address %s --node-ip-address 127.0.0.1 --num-cpus 1 %s %s %s %s "
             "> /dev/null 2> '%s'", exe, S.c.gcs_address, token ? "--join-token" : "", token ? token : "",
             ca_flag, ca_value, log);
    int status = system(cmd);
    char text[8192] = "";
    FILE *f = fopen(log, "r");
    if (f) {
        size_t n = fread(text, 1, sizeof(text) - 1, f);
        text[n] = '\0';
        fclose(f);
    }
    if (why && !strstr(text, why)) {
        fprintf(stderr, "raylet log does not say '%s':\n%s\n", why, text);
        return 0;
    }
    return WIFEXITED(status) && WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 124;
}

/* Starts a raylet of its own (outside the harness) that joins with token and the CA given
 * by ca_flag (--ca-cert FILE or --ca-cert-hash PIN); returns its pid once it is ready, or -1
 * (after killing it) if it is not ready within 20 s. */
static pid_t raylet_joined(const char *token, const char *ca_flag, const char *ca_value, const char *ready)
{
    char exe[PATH_MAX + 32];
    snprintf(exe, sizeof(exe), "%s/rayc-raylet", S.c.bin);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(exe, exe, "--gcs-address", S.c.gcs_address, "--node-ip-address", "127.0.0.1", "--num-cpus", "1",
              "--join-token", token, ca_flag, ca_value, "--ready-file", ready, (char *)NULL);
        _exit(127);
    }
    int64_t deadline = rc_mono_ms() + 20000;
    while (access(ready, R_OK) != 0 && rc_mono_ms() < deadline)
        rc_sleep_ms(50);
    if (access(ready, R_OK) == 0)
        return pid;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static void test_join_tokens(void)
{
    start(0, 0);
    char ca_path[PATH_MAX + 16], err[512];
    snprintf(ca_path, sizeof(ca_path), "%s/ca.crt", S.c.root);
    rpc_client *admin = admin_client(S.c.gcs_address);

    /* A single-use token with labels: the node joins and carries the labels; the second use
     * is refused. */
    char token[256];
    CU_ASSERT_EQUAL_FATAL(harness_join_token(&S.c, 600, 1, "market.lease=abc123", token, sizeof(token)), 0);
    char ready[PATH_MAX + 32];
    snprintf(ready, sizeof(ready), "%s/labelled.ready", S.c.root);
    pid_t pid = raylet_joined(token, "--ca-cert", ca_path, ready);
    CU_ASSERT(pid > 0);
    Ray__Rpc__GetAllNodeInfoRequest nreq = RAY__RPC__GET_ALL_NODE_INFO_REQUEST__INIT;
    ProtobufCMessage *reply = NULL;
    CU_ASSERT_EQUAL(call(admin, &ray__rpc__node_info_gcs_service__descriptor, "GetAllNodeInfo", &nreq.base, &reply, err),
                    0);
    const Ray__Rpc__GetAllNodeInfoReply *nodes = (const void *)reply;
    int labelled = 0;
    for (size_t i = 0; nodes && i < nodes->n_node_info_list; i++)
        for (size_t k = 0; k < nodes->node_info_list[i]->n_labels; k++)
            labelled += !strcmp(nodes->node_info_list[i]->labels[k]->key, "market.lease") &&
                        !strcmp(nodes->node_info_list[i]->labels[k]->value, "abc123");
    CU_ASSERT_EQUAL(labelled, 1);
    rpc_msg_free(reply);
    CU_ASSERT(raylet_join_fails(token, "--ca-cert", ca_path, "used"));

    /* A node whose JoinNode reply was lost asks again with its single-use token: answered
     * again (the use is not spent twice); another node with that token is refused. */
    char once[256];
    CU_ASSERT_EQUAL_FATAL(harness_join_token(&S.c, 600, 1, NULL, once, sizeof(once)), 0);
    char *nkey, *wkey, *ncsr, *wcsr;
    CU_ASSERT_EQUAL_FATAL(auth_key_create(&nkey), 0);
    CU_ASSERT_EQUAL_FATAL(auth_key_create(&wkey), 0);
    CU_ASSERT_EQUAL_FATAL(auth_csr_create(nkey, "node:x", &ncsr), 0);
    CU_ASSERT_EQUAL_FATAL(auth_csr_create(wkey, "worker:x", &wcsr), 0);
    uint8_t joiner[28];
    rc_id_random(joiner, 28);
    Rayc__Rpc__JoinNodeRequest jn = RAYC__RPC__JOIN_NODE_REQUEST__INIT;
    jn.join_token = once;
    jn.node_id.data = joiner;
    jn.node_id.len = 28;
    jn.node_ip_address = "127.0.0.1";
    jn.node_csr_pem = ncsr;
    jn.worker_csr_pem = wcsr;
    rpc_client *newcomer = client_as(S.c.gcs_address, S.c.ca_cert, NULL, NULL, NULL, 0);
    for (int attempt = 0; attempt < 3; attempt++) {
        ProtobufCMessage *jr = NULL;
        int jcode = call(newcomer, &rayc__rpc__auth_service__descriptor, "JoinNode", &jn.base, &jr, err);
        const Rayc__Rpc__JoinNodeReply *j = (const void *)jr;
        int granted = jcode == 0 && j && (!j->status || j->status->code == 0) && j->node_cert_pem[0];
        CU_ASSERT_EQUAL(granted, attempt < 2); /* twice the same node; then another node */
        if (granted) {
            char cn[100];
            CU_ASSERT_EQUAL(auth_cert_cn(j->node_cert_pem, cn, sizeof(cn)), 0);
            CU_ASSERT_EQUAL(strncmp(cn, "node:", 5), 0); /* the GCS names it, not the CSR */
            CU_ASSERT_EQUAL(strlen(cn), 5 + 56);
        } else if (j && j->status) {
            CU_ASSERT_PTR_NOT_NULL(strstr(j->status->message, "single-use"));
        }
        rpc_msg_free(jr);
        if (attempt == 1)
            rc_id_random(joiner, 28);
    }
    rpc_client_destroy(newcomer);
    rc_free(nkey);
    rc_free(wkey);
    rc_free(ncsr);
    rc_free(wcsr);

    /* Expired, revoked, unknown and absent tokens; a wrong CA pin. */
    char expiring[256];
    CU_ASSERT_EQUAL_FATAL(harness_join_token(&S.c, 1, 0, NULL, expiring, sizeof(expiring)), 0);
    rc_sleep_ms(2100);
    CU_ASSERT(raylet_join_fails(expiring, "--ca-cert", ca_path, "expired"));
    char revoked[256];
    CU_ASSERT_EQUAL_FATAL(harness_join_token(&S.c, 600, 0, NULL, revoked, sizeof(revoked)), 0);
    char id[32];
    snprintf(id, sizeof(id), "%.16s", revoked);
    Rayc__Rpc__RevokeJoinTokenRequest rv = RAYC__RPC__REVOKE_JOIN_TOKEN_REQUEST__INIT;
    rv.token_id = id;
    CU_ASSERT_EQUAL(call(admin, &rayc__rpc__auth_service__descriptor, "RevokeJoinToken", &rv.base, NULL, err), 0);
    CU_ASSERT(raylet_join_fails(revoked, "--ca-cert", ca_path, "revoked"));
    CU_ASSERT(raylet_join_fails("0123456789abcdef.0123456789abcdef0123456789abcdef", "--ca-cert", ca_path, NULL));
    CU_ASSERT(raylet_join_fails(NULL, "--ca-cert", ca_path, "--join-token"));
    char good[256];
    CU_ASSERT_EQUAL_FATAL(harness_join_token(&S.c, 600, 0, NULL, good, sizeof(good)), 0);
    CU_ASSERT(raylet_join_fails(good, "--ca-cert-hash",
                                "sha256:0000000000000000000000000000000000000000000000000000000000000000", "sha256"));

    /* With the right pin, the CA is fetched from the GCS and the node joins. */
    char pin[AUTH_CA_HASH_MAX];
    CU_ASSERT_EQUAL_FATAL(auth_ca_hash(S.c.ca_cert, pin, sizeof(pin)), 0);
    int idx;
    const char *flags[] = {"--num-cpus", "1", NULL};
    CU_ASSERT_EQUAL(harness_raylet_start(&S.c, flags, &idx), 0); /* --ca-cert path */
    snprintf(ready, sizeof(ready), "%s/pinned.ready", S.c.root);
    pid_t pinned = raylet_joined(good, "--ca-cert-hash", pin, ready);
    CU_ASSERT(pinned > 0);
    CU_ASSERT_EQUAL(alive_nodes(admin), 3);
    pid_t started[] = {pid, pinned};
    for (size_t i = 0; i < UNIT_N(started); i++) {
        if (started[i] > 0) {
            kill(started[i], SIGKILL);
            waitpid(started[i], NULL, 0);
        }
    }
    rpc_client_destroy(admin);
    stop();
}

static void test_revoked_node_is_refused(void)
{
    start(0, 2);
    char err[512];
    rpc_client *admin = admin_client(S.c.gcs_address);
    CU_ASSERT_EQUAL(alive_nodes(admin), 2);
    uint8_t victim[28];
    CU_ASSERT_EQUAL_FATAL(rc_id_from_hex(S.c.raylets[1].node_id, victim, 28), 0);
    Rayc__Rpc__RevokeNodeRequest rv = RAYC__RPC__REVOKE_NODE_REQUEST__INIT;
    rv.node_id.data = victim;
    rv.node_id.len = 28;
    CU_ASSERT_EQUAL(call(admin, &rayc__rpc__auth_service__descriptor, "RevokeNode", &rv.base, NULL, err), 0);
    /* The node is dead for the cluster, and the raylet, told so, exits. */
    int64_t deadline = rc_mono_ms() + 20000;
    while (alive_nodes(admin) != 1 && rc_mono_ms() < deadline)
        rc_sleep_ms(100);
    CU_ASSERT_EQUAL(alive_nodes(admin), 1);
    CU_ASSERT(harness_raylet_wait_exit(&S.c, 1, 20000) >= 0);
    /* Its certificate is refused even for a plain read. */
    rpc_client *revoked = node_client_of(1, S.c.gcs_address);
    Ray__Rpc__GetAllNodeInfoRequest nreq = RAY__RPC__GET_ALL_NODE_INFO_REQUEST__INIT;
    CU_ASSERT_EQUAL(call(revoked, &ray__rpc__node_info_gcs_service__descriptor, "GetAllNodeInfo", &nreq.base, NULL, err),
                    GRPC_STATUS_UNAUTHENTICATED);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "revoked"));
    CU_ASSERT(harness_raylet_alive(&S.c, 0));
    rpc_client_destroy(revoked);
    rpc_client_destroy(admin);
    stop();
}

/* The code of GetResourceLoad on raylet 0 through cli, its message in err, retried until it
 * is want or 30 s have passed (the raylet learns revocations from the GCS every
 * auth_revocation_poll_ms). */
static int raylet_load_until(rpc_client *cli, int want, char *err)
{
    int64_t deadline = rc_mono_ms() + 30000;
    int code;
    do {
        Ray__Rpc__GetResourceLoadRequest req = RAY__RPC__GET_RESOURCE_LOAD_REQUEST__INIT;
        code = call(cli, &ray__rpc__node_manager_service__descriptor, "GetResourceLoad", &req.base, NULL, err);
        if (code == want)
            break;
        rc_sleep_ms(200);
    } while (rc_mono_ms() < deadline);
    return code;
}

/* A replaced admin token and a revoked node's certificate are refused by the raylets too,
 * not only by the GCS. */
static void test_revocations_reach_the_raylets(void)
{
    start(0, 2);
    char err[512], raddr[64];
    raylet_address(0, raddr, sizeof(raddr));
    rpc_client *gcs_admin = admin_client(S.c.gcs_address);
    rpc_client *old_admin = admin_client(raddr);
    CU_ASSERT_EQUAL(raylet_load_until(old_admin, GRPC_STATUS_OK, err), GRPC_STATUS_OK);
    /* A node's certificate, while its node stands. */
    rpc_client *node1 = node_client_of(1, raddr);
    CU_ASSERT_EQUAL(raylet_load_until(node1, GRPC_STATUS_OK, err), GRPC_STATUS_OK);
    /* A worker of a job, leased by the admin; it answers the admin's token. */
    uint8_t job[4] = {7, 0, 0, 0};
    CU_ASSERT_EQUAL_FATAL(add_job(gcs_admin, job, NULL), 0);
    cpu_lease cl;
    cpu_lease_init(&cl, job);
    cl.spec.language = RAY__RPC__LANGUAGE__CPP;
    ProtobufCMessage *lr = NULL;
    CU_ASSERT_EQUAL_FATAL(call(old_admin, &ray__rpc__node_manager_service__descriptor, "RequestWorkerLease", &cl.req.base,
                               &lr, err), 0);
    const Ray__Rpc__RequestWorkerLeaseReply *lrep = (const void *)lr;
    CU_ASSERT_FATAL(lrep && lrep->worker_address && lrep->worker_address->port > 0);
    char waddr[64];
    snprintf(waddr, sizeof(waddr), "127.0.0.1:%d", lrep->worker_address->port);
    rpc_msg_free(lr);
    rpc_client *old_admin_worker = admin_client(waddr);
    Ray__Rpc__NumPendingTasksRequest np = RAY__RPC__NUM_PENDING_TASKS_REQUEST__INIT;
    CU_ASSERT_EQUAL(call(old_admin_worker, &ray__rpc__core_worker_service__descriptor, "NumPendingTasks", &np.base, NULL,
                         err), GRPC_STATUS_OK);

    /* The admin token is replaced: the raylet refuses the old one, takes the new one. */
    Rayc__Rpc__RotateAdminTokenRequest rot = RAYC__RPC__ROTATE_ADMIN_TOKEN_REQUEST__INIT;
    ProtobufCMessage *reply = NULL;
    CU_ASSERT_EQUAL_FATAL(call(gcs_admin, &rayc__rpc__auth_service__descriptor, "RotateAdminToken", &rot.base, &reply,
                               err), 0);
    const Rayc__Rpc__RotateAdminTokenReply *rr = (const void *)reply;
    CU_ASSERT_FATAL(rr->token && rr->token[0]);
    rpc_client *new_admin = client_as(raddr, S.c.ca_cert, NULL, NULL, rr->token, 0);
    rpc_client *gcs_new_admin = client_as(S.c.gcs_address, S.c.ca_cert, NULL, NULL, rr->token, 0);
    rpc_msg_free(reply);
    CU_ASSERT_EQUAL(raylet_load_until(old_admin, GRPC_STATUS_UNAUTHENTICATED, err), GRPC_STATUS_UNAUTHENTICATED);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "replaced"));
    CU_ASSERT_EQUAL(raylet_load_until(new_admin, GRPC_STATUS_OK, err), GRPC_STATUS_OK);
    /* The worker refuses it too (it follows the GCS as the raylet does). */
    int64_t deadline = rc_mono_ms() + 30000;
    int code;
    while ((code = call(old_admin_worker, &ray__rpc__core_worker_service__descriptor, "NumPendingTasks", &np.base,
                        NULL, err)) == GRPC_STATUS_OK &&
           rc_mono_ms() < deadline)
        rc_sleep_ms(200);
    CU_ASSERT_EQUAL(code, GRPC_STATUS_UNAUTHENTICATED);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "replaced"));
    rpc_client_destroy(old_admin_worker);

    /* Node 1 is revoked: raylet 0 refuses its certificate from then on. */
    uint8_t victim[28];
    CU_ASSERT_EQUAL_FATAL(rc_id_from_hex(S.c.raylets[1].node_id, victim, 28), 0);
    Rayc__Rpc__RevokeNodeRequest rv = RAYC__RPC__REVOKE_NODE_REQUEST__INIT;
    rv.node_id.data = victim;
    rv.node_id.len = 28;
    CU_ASSERT_EQUAL(call(gcs_new_admin, &rayc__rpc__auth_service__descriptor, "RevokeNode", &rv.base, NULL, err), 0);
    CU_ASSERT_EQUAL(raylet_load_until(node1, GRPC_STATUS_UNAUTHENTICATED, err), GRPC_STATUS_UNAUTHENTICATED);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "revoked"));
    CU_ASSERT_EQUAL(raylet_load_until(new_admin, GRPC_STATUS_OK, err), GRPC_STATUS_OK);
    rpc_client_destroy(gcs_new_admin);
    rpc_client_destroy(new_admin);
    rpc_client_destroy(old_admin);
    rpc_client_destroy(node1);
    rpc_client_destroy(gcs_admin);
    stop();
}

static void test_gcs_restart_on_redis_keeps_identities(void)
{
    start(1, 2);
    char err[512];
    rpc_client *admin = admin_client(S.c.gcs_address);
    CU_ASSERT_EQUAL(alive_nodes(admin), 2);
    Ray__Rpc__GetClusterIdRequest idreq = RAY__RPC__GET_CLUSTER_ID_REQUEST__INIT;
    ProtobufCMessage *reply = NULL;
    CU_ASSERT_EQUAL(call(admin, &ray__rpc__node_info_gcs_service__descriptor, "GetClusterId", &idreq.base, &reply, err), 0);
    char before[64] = "";
    if (reply)
        rc_id_hex(((Ray__Rpc__GetClusterIdReply *)reply)->cluster_id.data, 28, before);
    rpc_msg_free(reply);
    /* The GCS's files are gone too: the CA and tokens come back from Redis. */
    harness_gcs_kill(&S.c, SIGKILL);
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/ca.key", S.c.root);
    unlink(path);
    CU_ASSERT_EQUAL_FATAL(harness_gcs_start(&S.c), 0);
    int64_t deadline = rc_mono_ms() + 15000;
    while (alive_nodes(admin) != 2 && rc_mono_ms() < deadline)
        rc_sleep_ms(200);
    CU_ASSERT_EQUAL(alive_nodes(admin), 2);
    reply = NULL;
    CU_ASSERT_EQUAL(call(admin, &ray__rpc__node_info_gcs_service__descriptor, "GetClusterId", &idreq.base, &reply, err), 0);
    char after[64] = "";
    if (reply)
        rc_id_hex(((Ray__Rpc__GetClusterIdReply *)reply)->cluster_id.data, 28, after);
    rpc_msg_free(reply);
    CU_ASSERT_STRING_EQUAL(before, after);
    /* The raylets kept their node certificates and are still healthy a few beats later. */
    rc_sleep_ms(1500);
    CU_ASSERT(harness_raylet_alive(&S.c, 0));
    CU_ASSERT(harness_raylet_alive(&S.c, 1));
    CU_ASSERT_EQUAL(alive_nodes(admin), 2);
    rpc_client_destroy(admin);
    stop();
}

/* A local user who is not the cluster's: a child that drops to nobody can neither connect
 * to the raylet's unix socket nor read the session's secrets. */
static void test_other_local_user_is_shut_out(void)
{
    start(0, 1);
    struct passwd *nobody = getpwnam("nobody");
    if (!nobody || getuid() != 0) {
        fprintf(stderr, "    (skipped: needs root and a 'nobody' user)\n");
        stop();
        return;
    }
    char node_key[PATH_MAX + 64], secret[PATH_MAX + 64];
    snprintf(node_key, sizeof(node_key), "%s/%s/node.key", S.c.root, S.c.raylets[0].name);
    snprintf(secret, sizeof(secret), "%s/auth_token", S.c.root);
    /* The raylet's socket: the ready file's session holds it; find any socket under root. */
    char find[PATH_MAX + 128], sock[PATH_MAX] = "";
    snprintf(find, sizeof(find), "find '%s' -name 'raylet*.sock' 2>/dev/null | head -1", S.c.root);
    FILE *p = popen(find, "r");
    if (p) {
        if (fgets(sock, sizeof(sock), p))
            sock[strcspn(sock, "\n")] = '\0';
        pclose(p);
    }
    CU_ASSERT_NOT_EQUAL(sock[0], '\0');
    pid_t pid = fork();
    if (pid == 0) {
        if (setgid(nobody->pw_gid) != 0 || setuid(nobody->pw_uid) != 0)
            _exit(10);
        int bad = 0;
        int fd = open(secret, O_RDONLY);
        bad |= fd >= 0;
        fd = open(node_key, O_RDONLY);
        bad |= (fd >= 0) << 1;
        int s = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        size_t n = strlen(sock) < sizeof(a.sun_path) - 1 ? strlen(sock) : sizeof(a.sun_path) - 1;
        memcpy(a.sun_path, sock, n);
        bad |= (sock[0] && connect(s, (struct sockaddr *)&a, sizeof(a)) == 0) << 2;
        _exit(bad);
    }
    int status;
    waitpid(pid, &status, 0);
    CU_ASSERT(WIFEXITED(status));
    CU_ASSERT_EQUAL(WEXITSTATUS(status), 0);
    stop();
}

static const unit_case cases[] = {
    UNIT_CASE(test_no_token_wrong_token_plaintext_foreign_ca),
    UNIT_CASE(test_nodes_act_only_for_themselves),
    UNIT_CASE(test_forged_node_at_another_raylets_address_dies),
    UNIT_CASE(test_job_tokens_are_scoped),
    UNIT_CASE(test_kv_limits),
    UNIT_CASE(test_join_tokens),
    UNIT_CASE(test_revoked_node_is_refused),
    UNIT_CASE(test_revocations_reach_the_raylets),
    UNIT_CASE(test_gcs_restart_on_redis_keeps_identities),
    UNIT_CASE(test_other_local_user_is_shut_out),
};

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    rc_config_init();
    return unit_run("security", cases, UNIT_N(cases));
}
