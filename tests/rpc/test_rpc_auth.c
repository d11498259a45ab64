/*
 * rpc security: TLS with the cluster CA, mutual TLS for the GCS and nodes, bearer tokens,
 * and the access-control table. A CA, a GCS identity, node identities and tokens are made
 * at run time; one server serves the services under test with a handler that answers an
 * empty reply and records who called, so each case checks both the status a caller gets
 * and whether the handler ran at all.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "core_worker.pb-c.h"
#include "gcs_service.pb-c.h"
#include "health.pb-c.h"
#include "node_manager.pb-c.h"
#include "object_manager.pb-c.h"
#include "rayc_auth.pb-c.h"
#include "rayc_bench.pb-c.h"
#include "rayc_gcs.pb-c.h"
#include "rayc_raylet.pb-c.h"
#include "rc_alloc.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_ids.h"
#include "rpc.h"
#include "unit.h"

/* Every service a rayc process serves: each of their methods must have an ACL row. */
static const ProtobufCServiceDescriptor *const served[] = {
    &ray__rpc__node_info_gcs_service__descriptor,
    &ray__rpc__job_info_gcs_service__descriptor,
    &ray__rpc__internal_kvgcs_service__descriptor,
    &ray__rpc__node_resource_info_gcs_service__descriptor,
    &rayc__rpc__resource_report_gcs_service__descriptor,
    &ray__rpc__internal_pub_sub_gcs_service__descriptor,
    &ray__rpc__actor_info_gcs_service__descriptor,
    &ray__rpc__placement_group_info_gcs_service__descriptor,
    &ray__rpc__worker_info_gcs_service__descriptor,
    &rayc__rpc__auth_service__descriptor,
    &grpc__health__v1__health__descriptor,
    &ray__rpc__node_manager_service__descriptor,
    &ray__rpc__object_manager_service__descriptor,
    &rayc__rpc__local_raylet_service__descriptor,
    &ray__rpc__core_worker_service__descriptor,
    &rayc__bench__echo_service__descriptor,
};

typedef struct pki {
    char *ca_key, *ca_cert;
    char *gcs_key, *gcs_cert;
    char *node_key[2], *node_cert[2];
    uint8_t node_id[2][28];
    char *admin, *job1, *job2, *expired;
    char *other_ca_key, *other_ca_cert, *other_admin;
} pki;

static pki P;

typedef struct fixture {
    uv_loop_t loop;
    rpc_ctx *ctx;
    rpc_server *srv;
    int port;
    char addr[64];
    char sock[128];
    int handled;
    rpc_identity last;
    const char *revoked_token;
} fixture;

static fixture F;

static void make_pki(void)
{
    if (P.ca_key)
        return;
    const char *ips[] = {"127.0.0.1"};
    CU_ASSERT_EQUAL_FATAL(auth_ca_create("test CA", 30, &P.ca_key, &P.ca_cert), 0);
    CU_ASSERT_EQUAL_FATAL(auth_cert_issue(P.ca_key, P.ca_cert, "gcs", ips, 1, 30, &P.gcs_key, &P.gcs_cert), 0);
    for (int i = 0; i < 2; i++) {
        char cn[80] = "node:";
        rc_id_random(P.node_id[i], 28);
        rc_id_hex(P.node_id[i], 28, cn + 5);
        CU_ASSERT_EQUAL_FATAL(auth_cert_issue(P.ca_key, P.ca_cert, cn, ips, 1, 30, &P.node_key[i], &P.node_cert[i]), 0);
    }
    auth_claims admin = {.kind = AUTH_TOKEN_ADMIN, .issued_at = time(NULL)};
    CU_ASSERT_EQUAL_FATAL(auth_token_mint(P.ca_key, &admin, &P.admin), 0);
    auth_claims j1 = {.kind = AUTH_TOKEN_JOB, .job_id = {1, 0, 0, 0}, .issued_at = time(NULL)};
    CU_ASSERT_EQUAL_FATAL(auth_token_mint(P.ca_key, &j1, &P.job1), 0);
    auth_claims j2 = {.kind = AUTH_TOKEN_JOB, .job_id = {2, 0, 0, 0}, .issued_at = time(NULL)};
    CU_ASSERT_EQUAL_FATAL(auth_token_mint(P.ca_key, &j2, &P.job2), 0);
    auth_claims old = {.kind = AUTH_TOKEN_ADMIN, .issued_at = time(NULL) - 100, .expires_at = time(NULL) - 10};
    CU_ASSERT_EQUAL_FATAL(auth_token_mint(P.ca_key, &old, &P.expired), 0);
    CU_ASSERT_EQUAL_FATAL(auth_ca_create("other CA", 30, &P.other_ca_key, &P.other_ca_cert), 0);
    auth_claims forged = {.kind = AUTH_TOKEN_ADMIN, .issued_at = time(NULL)};
    CU_ASSERT_EQUAL_FATAL(auth_token_mint(P.other_ca_key, &forged, &P.other_admin), 0);
}

/* Answers every method with an empty reply of its output type and records the caller. */
static void handle_any(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    const ProtobufCServiceDescriptor *svc = arg;
    F.handled++;
    F.last = *rpc_call_identity(call);
    const ProtobufCMethodDescriptor *m = protobuf_c_service_descriptor_get_method_by_name(svc, rpc_call_method(call));
    ProtobufCMessage *reply = rc_calloc(1, m->output->sizeof_message);
    protobuf_c_message_init(m->output, reply);
    rpc_reply(call, reply);
    rc_free(reply);
    (void)request;
}

static const char *revoked(const rpc_identity *id, void *arg)
{
    (void)arg;
    if (F.revoked_token && !strcmp(id->token_id, F.revoked_token))
        return "token revoked by the admin";
    return NULL;
}

static void setup(void)
{
    make_pki();
    memset(&F, 0, sizeof(F));
    rc_config_init();
    CU_ASSERT_EQUAL_FATAL(uv_loop_init(&F.loop), 0);
    CU_ASSERT_EQUAL_FATAL(rpc_ctx_create(&F.loop, &F.ctx), 0);
    rpc_security sec = {.ca_cert_pem = P.ca_cert, .cert_pem = P.gcs_cert, .key_pem = P.gcs_key, .present_cert = 1};
    rpc_server_options so = {&sec, 0};
    CU_ASSERT_EQUAL_FATAL(rpc_server_create(F.ctx, &so, &F.srv), 0);
    for (size_t s = 0; s < UNIT_N(served); s++) {
        rpc_method_handler h[64];
        size_t n = 0;
        for (unsigned i = 0; i < served[s]->n_methods && n < 63; i++)
            h[n++] = (rpc_method_handler){served[s]->methods[i].name, handle_any};
        h[n] = (rpc_method_handler){NULL, NULL};
        CU_ASSERT_EQUAL_FATAL(rpc_server_add_service(F.srv, served[s], h, (void *)served[s]), 0);
    }
    rpc_server_set_revocation(F.srv, revoked, NULL);
    CU_ASSERT_EQUAL_FATAL(rpc_server_listen(F.srv, "127.0.0.1:0", &F.port), 0);
    snprintf(F.sock, sizeof(F.sock), "unix:/tmp/rayc-test-rpc-auth-%d.sock", (int)getpid());
    CU_ASSERT_EQUAL_FATAL(rpc_server_listen(F.srv, F.sock, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(rpc_server_start(F.srv), 0);
    snprintf(F.addr, sizeof(F.addr), "127.0.0.1:%d", F.port);
}

static void teardown(void)
{
    rpc_server_destroy(F.srv);
    rpc_ctx_destroy(F.ctx);
    uv_run(&F.loop, UV_RUN_DEFAULT);
    CU_ASSERT_EQUAL(uv_loop_close(&F.loop), 0);
    unlink(F.sock + 5);
}

/* A client of F's server with the given security (NULL fields: none). */
static rpc_client *client(const char *target, const char *ca, const char *cert, const char *key,
                          const char *token, int insecure)
{
    rpc_security sec = {.insecure = insecure, .ca_cert_pem = ca, .cert_pem = cert, .key_pem = key,
                        .present_cert = cert != NULL, .token = token};
    rpc_client_options co = {&sec, 0, 0};
    rpc_client *c = NULL;
    CU_ASSERT_EQUAL_FATAL(rpc_client_create(F.ctx, target, &co, &c), 0);
    return c;
}

/* Calls svc.method with req; returns the status code, the message in err. */
static int call(rpc_client *c, const ProtobufCServiceDescriptor *svc, const char *method,
                const ProtobufCMessage *req, char *err)
{
    ProtobufCMessage *reply = NULL;
    err[0] = '\0';
    int code = rpc_client_call_sync(c, svc, method, req, 5000, &reply, err, 512);
    rpc_msg_free(reply);
    return code;
}

static int echo(rpc_client *c, char *err)
{
    Rayc__Bench__EchoRequest req = RAYC__BENCH__ECHO_REQUEST__INIT;
    return call(c, &rayc__bench__echo_service__descriptor, "Echo", &req.base, err);
}

static void test_every_served_method_has_an_acl_row(void)
{
    /* rpc_server_add_service warns about missing rows; here a missing row is a failure. A
     * caller the table does not know is refused, so check through the server: an anonymous
     * call of each method must be refused for a reason other than "not in the table"
     * (JoinNode is open to anyone). */
    setup();
    rpc_client *c = client(F.addr, P.ca_cert, NULL, NULL, NULL, 0);
    char err[512];
    for (size_t s = 0; s < UNIT_N(served); s++) {
        for (unsigned i = 0; i < served[s]->n_methods; i++) {
            ProtobufCMessage *req = rc_calloc(1, served[s]->methods[i].input->sizeof_message);
            protobuf_c_message_init(served[s]->methods[i].input, req);
            int code = call(c, served[s], served[s]->methods[i].name, req, err);
            rc_free(req);
            if (strstr(err, "access-control table"))
                fprintf(stderr, "missing ACL row: %s.%s\n", served[s]->name, served[s]->methods[i].name);
            CU_ASSERT_PTR_NULL(strstr(err, "access-control table"));
            if (strcmp(served[s]->methods[i].name, "JoinNode"))
                CU_ASSERT_EQUAL(code, GRPC_STATUS_UNAUTHENTICATED);
        }
    }
    CU_ASSERT_EQUAL(F.handled, 1); /* JoinNode only */
    rpc_client_destroy(c);
    teardown();
}

static void test_tls_with_tokens(void)
{
    setup();
    char err[512];
    rpc_client *admin = client(F.addr, P.ca_cert, NULL, NULL, P.admin, 0);
    CU_ASSERT_EQUAL(echo(admin, err), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(F.last.role, RPC_ROLE_ADMIN);

    rpc_client *job = client(F.addr, P.ca_cert, NULL, NULL, P.job1, 0);
    CU_ASSERT_EQUAL(echo(job, err), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(F.last.role, RPC_ROLE_JOB);
    CU_ASSERT_EQUAL(F.last.job_id[0], 1);

    rpc_client *none = client(F.addr, P.ca_cert, NULL, NULL, NULL, 0);
    int before = F.handled;
    CU_ASSERT_EQUAL(echo(none, err), GRPC_STATUS_UNAUTHENTICATED);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "RAYC_AUTH_TOKEN"));

    rpc_client *forged = client(F.addr, P.ca_cert, NULL, NULL, P.other_admin, 0);
    CU_ASSERT_EQUAL(echo(forged, err), GRPC_STATUS_UNAUTHENTICATED);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "token was refused"));

    rpc_client *expired = client(F.addr, P.ca_cert, NULL, NULL, P.expired, 0);
    CU_ASSERT_EQUAL(echo(expired, err), GRPC_STATUS_UNAUTHENTICATED);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "expired"));

    rpc_client *garbage = client(F.addr, P.ca_cert, NULL, NULL, "not-a-token", 0);
    CU_ASSERT_EQUAL(echo(garbage, err), GRPC_STATUS_UNAUTHENTICATED);
    CU_ASSERT_EQUAL(F.handled, before);

    /* The admin still gets through after every refusal: the server kept serving. */
    CU_ASSERT_EQUAL(echo(admin, err), GRPC_STATUS_OK);
    rpc_client_destroy(admin);
    rpc_client_destroy(job);
    rpc_client_destroy(none);
    rpc_client_destroy(forged);
    rpc_client_destroy(expired);
    rpc_client_destroy(garbage);
    teardown();
}

static void test_plaintext_and_foreign_ca_refused(void)
{
    setup();
    char err[512];
    int before = F.handled;
    rpc_client *plain = client(F.addr, NULL, NULL, NULL, NULL, 1);
    CU_ASSERT_NOT_EQUAL(echo(plain, err), GRPC_STATUS_OK);
    /* A client that trusts another CA refuses our server (and so never sends its token). */
    rpc_client *foreign = client(F.addr, P.other_ca_cert, NULL, NULL, P.admin, 0);
    CU_ASSERT_EQUAL(echo(foreign, err), GRPC_STATUS_UNAVAILABLE);
    /* A client certificate from another CA does not verify: the handshake fails. */
    char *k = NULL, *crt = NULL;
    const char *ips[] = {"127.0.0.1"};
    CU_ASSERT_EQUAL_FATAL(auth_cert_issue(P.other_ca_key, P.other_ca_cert, "gcs", ips, 1, 1, &k, &crt), 0);
    rpc_client *fake_gcs = client(F.addr, P.ca_cert, crt, k, NULL, 0);
    CU_ASSERT_NOT_EQUAL(echo(fake_gcs, err), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(F.handled, before);
    rpc_client *admin = client(F.addr, P.ca_cert, NULL, NULL, P.admin, 0);
    CU_ASSERT_EQUAL(echo(admin, err), GRPC_STATUS_OK);
    rc_free(k);
    rc_free(crt);
    rpc_client_destroy(plain);
    rpc_client_destroy(foreign);
    rpc_client_destroy(fake_gcs);
    rpc_client_destroy(admin);
    teardown();
}

static void test_node_scope(void)
{
    setup();
    char err[512];
    rpc_client *n0 = client(F.addr, P.ca_cert, P.node_cert[0], P.node_key[0], NULL, 0);
    Ray__Rpc__UnregisterNodeRequest un = RAY__RPC__UNREGISTER_NODE_REQUEST__INIT;
    un.node_id.data = P.node_id[1];
    un.node_id.len = 28;
    int before = F.handled;
    CU_ASSERT_EQUAL(call(n0, &ray__rpc__node_info_gcs_service__descriptor, "UnregisterNode", &un.base, err),
                    GRPC_STATUS_PERMISSION_DENIED);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "its own node ID"));
    CU_ASSERT_EQUAL(F.handled, before);
    un.node_id.data = P.node_id[0];
    CU_ASSERT_EQUAL(call(n0, &ray__rpc__node_info_gcs_service__descriptor, "UnregisterNode", &un.base, err),
                    GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(F.last.role, RPC_ROLE_NODE);
    CU_ASSERT_EQUAL(memcmp(F.last.node_id, P.node_id[0], 28), 0);

    /* Another node's resource report; a drain naming two nodes, one not its own. */
    Ray__Rpc__ResourcesData res = RAY__RPC__RESOURCES_DATA__INIT;
    res.node_id.data = P.node_id[1];
    res.node_id.len = 28;
    Rayc__Rpc__ReportResourceUsageRequest rep = RAYC__RPC__REPORT_RESOURCE_USAGE_REQUEST__INIT;
    rep.resources = &res;
    CU_ASSERT_EQUAL(call(n0, &rayc__rpc__resource_report_gcs_service__descriptor, "ReportResourceUsage",
                         &rep.base, err),
                    GRPC_STATUS_PERMISSION_DENIED);
    Ray__Rpc__DrainNodeData d0 = RAY__RPC__DRAIN_NODE_DATA__INIT, d1 = RAY__RPC__DRAIN_NODE_DATA__INIT;
    d0.node_id.data = P.node_id[0];
    d0.node_id.len = 28;
    d1.node_id.data = P.node_id[1];
    d1.node_id.len = 28;
    Ray__Rpc__DrainNodeData *ds[] = {&d0, &d1};
    Ray__Rpc__DrainNodeRequest drain = RAY__RPC__DRAIN_NODE_REQUEST__INIT;
    drain.drain_node_data = ds;
    drain.n_drain_node_data = 2;
    CU_ASSERT_EQUAL(call(n0, &ray__rpc__node_info_gcs_service__descriptor, "DrainNode", &drain.base, err),
                    GRPC_STATUS_PERMISSION_DENIED);
    drain.n_drain_node_data = 1;
    CU_ASSERT_EQUAL(call(n0, &ray__rpc__node_info_gcs_service__descriptor, "DrainNode", &drain.base, err),
                    GRPC_STATUS_OK);

    /* A node may not shut a raylet down or create join tokens; the GCS may shut it down. */
    Ray__Rpc__ShutdownRayletRequest sd = RAY__RPC__SHUTDOWN_RAYLET_REQUEST__INIT;
    CU_ASSERT_EQUAL(call(n0, &ray__rpc__node_manager_service__descriptor, "ShutdownRaylet", &sd.base, err),
                    GRPC_STATUS_PERMISSION_DENIED);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "admin or gcs"));
    rpc_client *gcs = client(F.addr, P.ca_cert, P.gcs_cert, P.gcs_key, NULL, 0);
    CU_ASSERT_EQUAL(call(gcs, &ray__rpc__node_manager_service__descriptor, "ShutdownRaylet", &sd.base, err),
                    GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(F.last.role, RPC_ROLE_GCS);
    rpc_client_destroy(n0);
    rpc_client_destroy(gcs);
    teardown();
}

static void test_job_scope(void)
{
    setup();
    char err[512];
    rpc_client *job = client(F.addr, P.ca_cert, NULL, NULL, P.job1, 0);
    uint8_t actor[16] = {0};
    actor[12] = 2; /* an actor of job 2 */
    Ray__Rpc__KillActorViaGcsRequest kill = RAY__RPC__KILL_ACTOR_VIA_GCS_REQUEST__INIT;
    kill.actor_id.data = actor;
    kill.actor_id.len = 16;
    int before = F.handled;
    CU_ASSERT_EQUAL(call(job, &ray__rpc__actor_info_gcs_service__descriptor, "KillActorViaGcs", &kill.base, err),
                    GRPC_STATUS_PERMISSION_DENIED);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "its own job"));
    CU_ASSERT_EQUAL(F.handled, before);
    actor[12] = 1;
    CU_ASSERT_EQUAL(call(job, &ray__rpc__actor_info_gcs_service__descriptor, "KillActorViaGcs", &kill.base, err),
                    GRPC_STATUS_OK);

    Ray__Rpc__ShutdownRayletRequest sd = RAY__RPC__SHUTDOWN_RAYLET_REQUEST__INIT;
    CU_ASSERT_EQUAL(call(job, &ray__rpc__node_manager_service__descriptor, "ShutdownRaylet", &sd.base, err),
                    GRPC_STATUS_PERMISSION_DENIED);
    Rayc__Rpc__CreateJoinTokenRequest jt = RAYC__RPC__CREATE_JOIN_TOKEN_REQUEST__INIT;
    CU_ASSERT_EQUAL(call(job, &rayc__rpc__auth_service__descriptor, "CreateJoinToken", &jt.base, err),
                    GRPC_STATUS_PERMISSION_DENIED);

    /* System KV: a job may not write the cluster ID; the admin may. */
    Ray__Rpc__InternalKVPutRequest put = RAY__RPC__INTERNAL_KVPUT_REQUEST__INIT;
    put.namespace_.data = (uint8_t *)"cluster";
    put.namespace_.len = 7;
    put.key.data = (uint8_t *)"ray_cluster_id";
    put.key.len = 14;
    CU_ASSERT_EQUAL(call(job, &ray__rpc__internal_kvgcs_service__descriptor, "InternalKVPut", &put.base, err),
                    GRPC_STATUS_PERMISSION_DENIED);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "system KV"));
    put.namespace_.data = (uint8_t *)"fun";
    put.namespace_.len = 3;
    CU_ASSERT_EQUAL(call(job, &ray__rpc__internal_kvgcs_service__descriptor, "InternalKVPut", &put.base, err),
                    GRPC_STATUS_OK);
    rpc_client *admin = client(F.addr, P.ca_cert, NULL, NULL, P.admin, 0);
    put.namespace_.data = (uint8_t *)"cluster";
    put.namespace_.len = 7;
    CU_ASSERT_EQUAL(call(admin, &ray__rpc__internal_kvgcs_service__descriptor, "InternalKVPut", &put.base, err),
                    GRPC_STATUS_OK);

    /* A job's lease request must name its own job. */
    uint8_t other_job[4] = {2, 0, 0, 0};
    Ray__Rpc__LeaseSpec spec = RAY__RPC__LEASE_SPEC__INIT;
    spec.job_id.data = other_job;
    spec.job_id.len = 4;
    Ray__Rpc__RequestWorkerLeaseRequest lease = RAY__RPC__REQUEST_WORKER_LEASE_REQUEST__INIT;
    lease.lease_spec = &spec;
    CU_ASSERT_EQUAL(call(job, &ray__rpc__node_manager_service__descriptor, "RequestWorkerLease", &lease.base, err),
                    GRPC_STATUS_PERMISSION_DENIED);

    /* A job frees copies of its own objects only (job ID in bytes 20..23 of an ObjectID). */
    uint8_t object[28] = {0};
    object[20] = 2;
    ProtobufCBinaryData oid = {sizeof(object), object};
    Ray__Rpc__FreeObjectsRequest fr = RAY__RPC__FREE_OBJECTS_REQUEST__INIT;
    fr.object_ids = &oid;
    fr.n_object_ids = 1;
    CU_ASSERT_EQUAL(call(job, &ray__rpc__object_manager_service__descriptor, "FreeObjects", &fr.base, err),
                    GRPC_STATUS_PERMISSION_DENIED);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "its own job"));
    object[20] = 1;
    CU_ASSERT_EQUAL(call(job, &ray__rpc__object_manager_service__descriptor, "FreeObjects", &fr.base, err),
                    GRPC_STATUS_OK);
    rpc_client_destroy(job);
    rpc_client_destroy(admin);
    teardown();
}

static void test_revocation_hook(void)
{
    setup();
    char err[512];
    auth_claims c;
    auth_verifier *v;
    CU_ASSERT_EQUAL_FATAL(auth_verifier_create(P.ca_cert, &v), 0);
    CU_ASSERT_EQUAL_FATAL(auth_token_verify(v, P.admin, time(NULL), &c, err, sizeof(err)), 0);
    auth_verifier_destroy(v);
    rpc_client *admin = client(F.addr, P.ca_cert, NULL, NULL, P.admin, 0);
    CU_ASSERT_EQUAL(echo(admin, err), GRPC_STATUS_OK);
    F.revoked_token = c.id;
    CU_ASSERT_EQUAL(echo(admin, err), GRPC_STATUS_UNAUTHENTICATED);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "revoked"));
    F.revoked_token = NULL;
    rpc_client_destroy(admin);
    teardown();
}

static void test_unix_socket_is_local(void)
{
    setup();
    char err[512];
    rpc_client *local = client(F.sock, P.ca_cert, NULL, NULL, NULL, 0);
    Rayc__Rpc__GetCredentialsRequest req = RAYC__RPC__GET_CREDENTIALS_REQUEST__INIT;
    CU_ASSERT_EQUAL(call(local, &rayc__rpc__local_raylet_service__descriptor, "GetCredentials", &req.base, err),
                    GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(F.last.role, RPC_ROLE_LOCAL);
    /* The same method over TCP, even as a node, is refused. */
    rpc_client *n0 = client(F.addr, P.ca_cert, P.node_cert[0], P.node_key[0], NULL, 0);
    CU_ASSERT_EQUAL(call(n0, &rayc__rpc__local_raylet_service__descriptor, "GetCredentials", &req.base, err),
                    GRPC_STATUS_PERMISSION_DENIED);
    rpc_client_destroy(local);
    rpc_client_destroy(n0);
    teardown();
}

static void test_secure_server_needs_a_certificate(void)
{
    make_pki();
    uv_loop_t loop;
    rpc_ctx *ctx;
    rpc_server *srv;
    rc_config_init();
    uv_loop_init(&loop);
    CU_ASSERT_EQUAL_FATAL(rpc_ctx_create(&loop, &ctx), 0);
    rpc_security sec = {.ca_cert_pem = P.ca_cert, .token = P.admin};
    rpc_server_options so = {&sec, 0};
    CU_ASSERT_EQUAL_FATAL(rpc_server_create(ctx, &so, &srv), 0);
    int port;
    CU_ASSERT_EQUAL(rpc_server_listen(srv, "127.0.0.1:0", &port), RC_EAUTH);
    rpc_server_destroy(srv);
    rpc_ctx_destroy(ctx);
    uv_run(&loop, UV_RUN_DEFAULT);
    CU_ASSERT_EQUAL(uv_loop_close(&loop), 0);
    /* A key that is not the certificate's is refused when configured. */
    char err[256];
    rpc_security bad = {.ca_cert_pem = P.ca_cert, .cert_pem = P.gcs_cert, .key_pem = P.node_key[0]};
    CU_ASSERT_EQUAL(rpc_security_set(&bad, err, sizeof(err)), RC_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "does not match"));
}

static void free_pki(void)
{
    char **all[] = {&P.ca_key, &P.ca_cert, &P.gcs_key, &P.gcs_cert, &P.node_key[0], &P.node_cert[0],
                    &P.node_key[1], &P.node_cert[1], &P.admin, &P.job1, &P.job2, &P.expired,
                    &P.other_ca_key, &P.other_ca_cert, &P.other_admin};
    for (size_t i = 0; i < UNIT_N(all); i++) {
        rc_free(*all[i]);
        *all[i] = NULL;
    }
}

static void test_zz_cleanup(void)
{
    free_pki();
    CU_PASS("freed");
}

static const unit_case cases[] = {
    UNIT_CASE(test_every_served_method_has_an_acl_row),
    UNIT_CASE(test_tls_with_tokens),
    UNIT_CASE(test_plaintext_and_foreign_ca_refused),
    UNIT_CASE(test_node_scope),
    UNIT_CASE(test_job_scope),
    UNIT_CASE(test_revocation_hook),
    UNIT_CASE(test_unix_socket_is_local),
    UNIT_CASE(test_secure_server_needs_a_certificate),
    UNIT_CASE(test_zz_cleanup),
};

int main(void)
{
    return unit_run("rpc_auth", cases, UNIT_N(cases));
}
