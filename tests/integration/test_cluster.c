/*
 * Whole-cluster behaviour against real processes: a heterogeneous cluster seen through
 * `rayc status` and `rayc list nodes`; node death by SIGKILL (health checks, unexpected
 * termination) and by SIGTERM (expected termination); GCS fault tolerance with Redis (kill
 * -9, restart: same cluster, nodes alive, KV intact, raylets still running) and without it
 * (raylets exit with a clear message); a GCS that stays away; a raylet that cannot join.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"
#include "gcs_client.h"
#include "rc_config.h"
#include "rc_ids.h"
#include "rc_json.h"
#include "rc_time.h"
#include "unit.h"

/* Fast failure detection for tests: 3 missed checks 200 ms apart. */
static void fast_health_checks(void)
{
    setenv("RAYC_health_check_initial_delay_ms", "200", 1);
    setenv("RAYC_health_check_period_ms", "200", 1);
    setenv("RAYC_health_check_timeout_ms", "300", 1);
    setenv("RAYC_health_check_failure_threshold", "3", 1);
    setenv("RAYC_raylet_report_keepalive_ms", "200", 1);
    setenv("RAYC_gcs_rpc_server_reconnect_timeout_s", "30", 1);
    rc_config_init();
}

typedef struct client {
    uv_loop_t loop;
    rpc_ctx *rpc;
    gcs_client *gcs;
} client;

static int client_open(client *cl, const char *address)
{
    uv_loop_init(&cl->loop);
    rpc_ctx_create(&cl->loop, &cl->rpc);
    gcs_client_create(cl->rpc, address, &cl->gcs);
    char err[300];
    int rc = gcs_client_connect_sync(cl->gcs, 10000, err, sizeof(err));
    if (rc < 0)
        fprintf(stderr, "client_open: %s\n", err);
    return rc;
}

static void client_close(client *cl)
{
    gcs_client_destroy(cl->gcs);
    rpc_ctx_destroy(cl->rpc);
    uv_run(&cl->loop, UV_RUN_DEFAULT);
    uv_loop_close(&cl->loop);
}

/* State of node hex_id: 0 alive, 1 dead, -1 unknown; reason and message of a death. */
static int node_state(client *cl, const char *hex_id, int *reason, char *message, size_t mlen)
{
    Ray__Rpc__GetAllNodeInfoRequest req = RAY__RPC__GET_ALL_NODE_INFO_REQUEST__INIT;
    ProtobufCMessage *reply;
    if (rpc_client_call_sync(gcs_client_rpc(cl->gcs), &ray__rpc__node_info_gcs_service__descriptor,
                             "GetAllNodeInfo", &req.base, 5000, &reply, NULL, 0) != GRPC_STATUS_OK)
        return -2;
    Ray__Rpc__GetAllNodeInfoReply *r = (void *)reply;
    int state = -1;
    for (size_t i = 0; i < r->n_node_info_list; i++) {
        const Ray__Rpc__GcsNodeInfo *n = r->node_info_list[i];
        char hex[RC_ID_HEX_MAX];
        if (n->node_id.len != RC_NODE_ID_SIZE || strcmp(rc_id_hex(n->node_id.data, RC_NODE_ID_SIZE, hex), hex_id))
            continue;
        state = n->state == RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__ALIVE ? 0 : 1;
        if (reason)
            *reason = n->death_info ? (int)n->death_info->reason : 0;
        if (message)
            snprintf(message, mlen, "%s", n->death_info && n->death_info->reason_message ? n->death_info->reason_message : "");
    }
    rpc_msg_free(reply);
    return state;
}

/* Polls until node hex_id is dead or timeout; returns ms waited, or -1. */
static int64_t wait_node_dead(client *cl, const char *hex_id, int64_t timeout_ms)
{
    int64_t start = rc_mono_ms();
    while (rc_mono_ms() - start < timeout_ms) {
        if (node_state(cl, hex_id, NULL, NULL, 0) == 1)
            return rc_mono_ms() - start;
        rc_sleep_ms(50);
    }
    return -1;
}

/* Runs the rayc command line and captures its output. Returns the exit status. */
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

static void test_heterogeneous_cluster_status(void)
{
    fast_health_checks();
    harness_cluster c;
    CU_ASSERT_EQUAL_FATAL(harness_cluster_init(&c, 0), 0);
    CU_ASSERT_EQUAL_FATAL(harness_gcs_start(&c), 0);
    const char *head[] = {"--head", "--num-cpus", "4", "--num-gpus", "2", "--accelerator-type", "A100",
                          "--gpu-memory", "80GiB", "--resources", "{\"fast_disk\": 1}", "--labels",
                          "region=eu,provider=local", NULL};
    const char *rtx[] = {"--num-cpus", "2", "--num-gpus", "4", "--accelerator-type", "RTX4090", "--gpu-memory",
                         "24GiB", NULL};
    const char *cpu[] = {"--num-cpus", "8", "--num-gpus", "0", "--labels", "region=us", NULL};
    int i;
    CU_ASSERT_EQUAL_FATAL(harness_raylet_start(&c, head, &i), 0);
    CU_ASSERT_EQUAL_FATAL(harness_raylet_start(&c, rtx, &i), 0);
    CU_ASSERT_EQUAL_FATAL(harness_raylet_start(&c, cpu, &i), 0);

    char out[16384], args[256];
    snprintf(args, sizeof(args), "status --address %s", c.gcs_address);
    CU_ASSERT_EQUAL(run_rayc(&c, args, out, sizeof(out)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Node status"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, " 0.0/14.0 CPU"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, " 0.0/6.0 GPU"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, " 0.0/1.0 fast_disk"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "(no resource demands)"));
    CU_ASSERT_PTR_NULL(strstr(out, "node:127.0.0.1")); /* implicit resources stay hidden */

    snprintf(args, sizeof(args), "list nodes --format json --address %s", c.gcs_address);
    CU_ASSERT_EQUAL(run_rayc(&c, args, out, sizeof(out)), 0);
    rc_json *j = NULL;
    char err[200];
    CU_ASSERT_EQUAL_FATAL(rc_json_parse(out, strlen(out), &j, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(j->type, RC_JSON_ARRAY);
    CU_ASSERT_EQUAL(j->n_items, 3);
    int a100 = 0, rtx4090 = 0, heads = 0;
    for (size_t k = 0; k < j->n_items; k++) {
        const rc_json *n = &j->items[k];
        CU_ASSERT_STRING_EQUAL(rc_json_get(n, "state")->str, "ALIVE");
        const rc_json *labels = rc_json_get(n, "labels"), *res = rc_json_get(n, "resources_total");
        const rc_json *accel = rc_json_get(labels, "ray.io/accelerator-type");
        CU_ASSERT_STRING_EQUAL(rc_json_get(labels, "ray.io/node-id")->str, rc_json_get(n, "node_id")->str);
        heads += rc_json_get(n, "is_head_node")->boolean;
        if (accel && !strcmp(accel->str, "A100")) {
            a100++;
            CU_ASSERT_EQUAL(rc_json_get(res, "GPU")->number, 2);
            CU_ASSERT_EQUAL(rc_json_get(res, "accelerator_type:A100")->number, 1);
            CU_ASSERT_STRING_EQUAL(rc_json_get(labels, "rayc.io/gpu-memory")->str, "85899345920");
            CU_ASSERT_STRING_EQUAL(rc_json_get(labels, "region")->str, "eu");
            CU_ASSERT_PTR_NOT_NULL(rc_json_get(res, "node:__internal_head__"));
        } else if (accel && !strcmp(accel->str, "RTX4090")) {
            rtx4090++;
            CU_ASSERT_EQUAL(rc_json_get(res, "GPU")->number, 4);
            CU_ASSERT_STRING_EQUAL(rc_json_get(labels, "rayc.io/gpu-memory")->str, "25769803776");
        } else {
            CU_ASSERT_PTR_NULL(rc_json_get(res, "GPU"));
            CU_ASSERT_EQUAL(rc_json_get(res, "CPU")->number, 8);
        }
    }
    CU_ASSERT_EQUAL(a100, 1);
    CU_ASSERT_EQUAL(rtx4090, 1);
    CU_ASSERT_EQUAL(heads, 1);
    rc_json_free(j);
    harness_cluster_destroy(&c);
}

static void test_sigkill_and_sigterm_deaths(void)
{
    fast_health_checks();
    harness_cluster c;
    CU_ASSERT_EQUAL_FATAL(harness_cluster_init(&c, 0), 0);
    CU_ASSERT_EQUAL_FATAL(harness_gcs_start(&c), 0);
    const char *args[] = {"--num-cpus", "1", NULL};
    int a, b, k;
    CU_ASSERT_EQUAL_FATAL(harness_raylet_start(&c, args, &a), 0);
    CU_ASSERT_EQUAL_FATAL(harness_raylet_start(&c, args, &b), 0);
    CU_ASSERT_EQUAL_FATAL(harness_raylet_start(&c, args, &k), 0);
    client cl;
    CU_ASSERT_EQUAL_FATAL(client_open(&cl, c.gcs_address), 0);

    /* SIGKILL: the GCS notices through health checks: 3 misses at 200 ms (+ timeouts). */
    harness_raylet_signal(&c, a, SIGKILL);
    int64_t waited = wait_node_dead(&cl, c.raylets[a].node_id, 10000);
    CU_ASSERT(waited >= 0);
    fprintf(stderr, "\n  SIGKILL detected after %lld ms\n", (long long)waited);
    int reason = -1;
    char message[300];
    CU_ASSERT_EQUAL(node_state(&cl, c.raylets[a].node_id, &reason, message, sizeof(message)), 1);
    CU_ASSERT_EQUAL(reason, RAY__RPC__NODE_DEATH_INFO__REASON__UNEXPECTED_TERMINATION);
    CU_ASSERT_PTR_NOT_NULL(strstr(message, "health check"));

    /* SIGTERM: the raylet unregisters itself, with its reason, and exits 0. */
    harness_raylet_signal(&c, b, SIGTERM);
    CU_ASSERT_EQUAL(harness_raylet_wait_exit(&c, b, 5000), 0);
    CU_ASSERT_EQUAL(node_state(&cl, c.raylets[b].node_id, &reason, message, sizeof(message)), 1);
    CU_ASSERT_EQUAL(reason, RAY__RPC__NODE_DEATH_INFO__REASON__EXPECTED_TERMINATION);
    CU_ASSERT_PTR_NOT_NULL(strstr(message, "SIGTERM"));

    /* The survivor stays alive and `rayc status` lists the failure. */
    rc_sleep_ms(1000);
    CU_ASSERT_EQUAL(node_state(&cl, c.raylets[k].node_id, NULL, NULL, 0), 0);
    char out[8192], cmd[128];
    snprintf(cmd, sizeof(cmd), "status --address %s", c.gcs_address);
    CU_ASSERT_EQUAL(run_rayc(&c, cmd, out, sizeof(out)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, c.raylets[a].node_id));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, " 0.0/1.0 CPU"));
    client_close(&cl);
    harness_cluster_destroy(&c);
}

static int kv_put(client *cl, const char *key, const char *value)
{
    Ray__Rpc__InternalKVPutRequest req = RAY__RPC__INTERNAL_KVPUT_REQUEST__INIT;
    req.namespace_.data = (uint8_t *)"test";
    req.namespace_.len = 4;
    req.key.data = (uint8_t *)key;
    req.key.len = strlen(key);
    req.value.data = (uint8_t *)value;
    req.value.len = strlen(value);
    req.overwrite = 1;
    ProtobufCMessage *reply;
    int code = rpc_client_call_sync(gcs_client_rpc(cl->gcs), &ray__rpc__internal_kvgcs_service__descriptor,
                                    "InternalKVPut", &req.base, 5000, &reply, NULL, 0);
    rpc_msg_free(reply);
    return code;
}

static int kv_get(client *cl, const char *key, char *out, size_t outlen)
{
    Ray__Rpc__InternalKVGetRequest req = RAY__RPC__INTERNAL_KVGET_REQUEST__INIT;
    req.namespace_.data = (uint8_t *)"test";
    req.namespace_.len = 4;
    req.key.data = (uint8_t *)key;
    req.key.len = strlen(key);
    ProtobufCMessage *reply;
    int code = rpc_client_call_sync(gcs_client_rpc(cl->gcs), &ray__rpc__internal_kvgcs_service__descriptor,
                                    "InternalKVGet", &req.base, 5000, &reply, NULL, 0);
    if (code == GRPC_STATUS_OK) {
        Ray__Rpc__InternalKVGetReply *r = (void *)reply;
        if (gcs_reply_status(reply, NULL) != GCS_STATUS_OK)
            code = -1;
        else
            snprintf(out, outlen, "%.*s", (int)r->value.len, (const char *)r->value.data);
    }
    rpc_msg_free(reply);
    return code;
}

static void test_gcs_restart_with_redis(void)
{
    fast_health_checks();
    harness_cluster c;
    CU_ASSERT_EQUAL_FATAL(harness_cluster_init(&c, 1), 0);
    CU_ASSERT_EQUAL_FATAL(harness_gcs_start(&c), 0);
    const char *args[] = {"--num-cpus", "2", NULL};
    int a, b;
    CU_ASSERT_EQUAL_FATAL(harness_raylet_start(&c, args, &a), 0);
    CU_ASSERT_EQUAL_FATAL(harness_raylet_start(&c, args, &b), 0);
    client cl;
    CU_ASSERT_EQUAL_FATAL(client_open(&cl, c.gcs_address), 0);
    uint8_t cluster_before[RC_CLUSTER_ID_SIZE];
    memcpy(cluster_before, gcs_client_cluster_id(cl.gcs), RC_CLUSTER_ID_SIZE);
    CU_ASSERT_EQUAL(kv_put(&cl, "model", "resnet50"), GRPC_STATUS_OK);
    client_close(&cl);

    /* kill -9 the GCS; while it is down, one raylet dies too. */
    harness_gcs_kill(&c, SIGKILL);
    rc_sleep_ms(500);
    harness_raylet_signal(&c, b, SIGKILL);
    CU_ASSERT(harness_raylet_wait_exit(&c, b, 5000) >= 0);
    CU_ASSERT_EQUAL_FATAL(harness_gcs_start(&c), 0);

    CU_ASSERT_EQUAL_FATAL(client_open(&cl, c.gcs_address), 0);
    CU_ASSERT_EQUAL(memcmp(cluster_before, gcs_client_cluster_id(cl.gcs), RC_CLUSTER_ID_SIZE), 0);
    char value[64] = "";
    CU_ASSERT_EQUAL(kv_get(&cl, "model", value, sizeof(value)), GRPC_STATUS_OK);
    CU_ASSERT_STRING_EQUAL(value, "resnet50");
    /* The node that died while the GCS was away is found dead by health checks; the other
     * is alive, still the same process, and reconnected. */
    CU_ASSERT(wait_node_dead(&cl, c.raylets[b].node_id, 10000) >= 0);
    rc_sleep_ms(1500);
    CU_ASSERT_EQUAL(node_state(&cl, c.raylets[a].node_id, NULL, NULL, 0), 0);
    CU_ASSERT(harness_raylet_alive(&c, a));
    CU_ASSERT(harness_log_contains(&c, "raylet0", "is back and serves our cluster"));
    /* It still speaks with the new GCS: a graceful stop is recorded as expected. */
    harness_raylet_signal(&c, a, SIGTERM);
    CU_ASSERT_EQUAL(harness_raylet_wait_exit(&c, a, 5000), 0);
    int reason = -1;
    CU_ASSERT_EQUAL(node_state(&cl, c.raylets[a].node_id, &reason, NULL, 0), 1);
    CU_ASSERT_EQUAL(reason, RAY__RPC__NODE_DEATH_INFO__REASON__EXPECTED_TERMINATION);
    /* And new nodes join the restarted GCS. */
    int n;
    CU_ASSERT_EQUAL(harness_raylet_start(&c, args, &n), 0);
    CU_ASSERT_EQUAL(node_state(&cl, c.raylets[n].node_id, NULL, NULL, 0), 0);
    client_close(&cl);
    harness_cluster_destroy(&c);
}

static void test_gcs_restart_without_storage(void)
{
    fast_health_checks();
    harness_cluster c;
    CU_ASSERT_EQUAL_FATAL(harness_cluster_init(&c, 0), 0);
    CU_ASSERT_EQUAL_FATAL(harness_gcs_start(&c), 0);
    int a, b;
    CU_ASSERT_EQUAL_FATAL(harness_raylet_start(&c, NULL, &a), 0);
    CU_ASSERT_EQUAL_FATAL(harness_raylet_start(&c, NULL, &b), 0);
    harness_gcs_kill(&c, SIGKILL);
    CU_ASSERT_EQUAL_FATAL(harness_gcs_start(&c), 0);
    /* A new cluster ID: the raylets of the old cluster leave, saying why. */
    CU_ASSERT_EQUAL(harness_raylet_wait_exit(&c, a, 10000), 1);
    CU_ASSERT_EQUAL(harness_raylet_wait_exit(&c, b, 10000), 1);
    CU_ASSERT(harness_log_contains(&c, "raylet0", "restarted without its previous state"));
    CU_ASSERT(harness_log_contains(&c, "raylet1", "--redis-address"));
    harness_cluster_destroy(&c);
}

static void test_gcs_gone_for_good(void)
{
    fast_health_checks();
    setenv("RAYC_gcs_rpc_server_reconnect_timeout_s", "2", 1);
    harness_cluster c;
    CU_ASSERT_EQUAL_FATAL(harness_cluster_init(&c, 0), 0);
    CU_ASSERT_EQUAL_FATAL(harness_gcs_start(&c), 0);
    int a;
    CU_ASSERT_EQUAL_FATAL(harness_raylet_start(&c, NULL, &a), 0);
    harness_gcs_kill(&c, SIGKILL);
    int64_t start = rc_mono_ms();
    CU_ASSERT_EQUAL(harness_raylet_wait_exit(&c, a, 10000), 1);
    CU_ASSERT(rc_mono_ms() - start >= 1500);
    CU_ASSERT(harness_log_contains(&c, "raylet0", "unreachable for"));
    harness_cluster_destroy(&c);
    setenv("RAYC_gcs_rpc_server_reconnect_timeout_s", "30", 1);
}

static void test_raylet_cannot_join(void)
{
    fast_health_checks();
    setenv("RAYC_gcs_rpc_server_reconnect_timeout_s", "1", 1);
    harness_cluster c;
    CU_ASSERT_EQUAL_FATAL(harness_cluster_init(&c, 0), 0);
    /* No GCS at this address. */
    snprintf(c.gcs_address, sizeof(c.gcs_address), "127.0.0.1:%d", harness_free_port());
    int a;
    CU_ASSERT_NOT_EQUAL(harness_raylet_start(&c, NULL, &a), 0);
    CU_ASSERT(harness_log_contains(&c, "raylet0", "cannot reach the GCS"));
    harness_cluster_destroy(&c);
    setenv("RAYC_gcs_rpc_server_reconnect_timeout_s", "30", 1);
}

static const unit_case cases[] = {
    UNIT_CASE(test_heterogeneous_cluster_status),
    UNIT_CASE(test_sigkill_and_sigterm_deaths),
    UNIT_CASE(test_gcs_restart_with_redis),
    UNIT_CASE(test_gcs_restart_without_storage),
    UNIT_CASE(test_gcs_gone_for_good),
    UNIT_CASE(test_raylet_cannot_join),
};

int main(void)
{
    return unit_run("cluster", cases, UNIT_N(cases));
}
