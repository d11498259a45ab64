/*
 * The GCS actor manager against real daemons: rayc-gcs (memory or Redis storage) and
 * rayc-raylet with rayc-fake-worker as the worker program (its actor constructors succeed,
 * fail on purpose for class "FailingActor", and KillActor makes it exit). This process plays
 * the owners: it registers and creates actors (ActorInfoGcsService) and follows the actor
 * channel. Cases: register/create/ALIVE with the states published in order; named actors,
 * namespaces and ALREADY_EXISTS; GetAllActorInfo filters and limits; a SIGKILLed worker
 * restarts the actor until max_restarts, then DEAD (WORKER_DIED); KillActorViaGcs with and
 * without no_restart; a finished job and a dead owner worker kill non-detached actors only;
 * out of scope; a node dying under its actor; an actor no node can hold (explained, shown as
 * demand, DEAD after the timeout); a failing constructor; a GCS restart on Redis that keeps
 * ALIVE actors on the same worker and finishes pending creations; at most
 * maximum_gcs_destroyed_actor_cached_count dead actors kept (memory and Redis);
 * `rayc list actors`.
 *
 * Raylets report dead workers with ReportWorkerFailure. Where a case kills a worker it also
 * sends that report itself, exactly as the raylet would: a second report of the same death
 * must be (and is checked to be) harmless.
 */
#define _GNU_SOURCE
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
#include "gcs_service.pb-c.h"
#include "node_manager.pb-c.h"
#include "rc_alloc.h"
#include "rc_config.h"
#include "rc_ids.h"
#include "rc_time.h"
#include "unit.h"

#ifndef FAKE_WORKER
#error "FAKE_WORKER must name the fake worker program"
#endif

typedef Ray__Rpc__ActorTableData actor_data;

#define S_UNREADY RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__DEPENDENCIES_UNREADY
#define S_PENDING RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__PENDING_CREATION
#define S_ALIVE RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__ALIVE
#define S_DEAD RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__DEAD

/* ---- cluster ------------------------------------------------------------------------ */

typedef harness_fake tc;

static void quick_config(void)
{
    setenv("RAYC_raylet_report_keepalive_ms", "200", 1);
    setenv("RAYC_raylet_cluster_view_poll_ms", "100", 1);
    setenv("RAYC_prestart_worker_first_driver", "0", 1);
    setenv("RAYC_health_check_initial_delay_ms", "200", 1);
    setenv("RAYC_health_check_period_ms", "200", 1);
    setenv("RAYC_health_check_timeout_ms", "500", 1);
    setenv("RAYC_health_check_failure_threshold", "3", 1);
    setenv("RAYC_gcs_actor_scheduling_retry_ms", "100", 1);
    setenv("RAYC_unschedulable_task_timeout_ms", "60000", 1);
    unsetenv("RAYC_FAKE_WORKER_MODE");
    rc_config_init();
}

static int tc_start(tc *t, int use_redis)
{
    return harness_fake_start(t, use_redis, FAKE_WORKER, 0);
}

/* Stops the raylets (SIGTERM), then the GCS the same way: it must exit 0 and, under the
 * sanitizers, without a report. */
static void tc_stop(tc *t)
{
    harness_fake_stop(t, HARNESS_FAKE_CHECK_GCS);
}

/* ---- GCS calls ---------------------------------------------------------------------- */

#define ACTORS (&ray__rpc__actor_info_gcs_service__descriptor)

/* What an actor is made of, for make_spec. */
typedef struct actor_opts {
    const char *class_name; /* "Counter" if NULL */
    const char *name, *ns;
    int64_t max_restarts;
    int detached;
    int job;              /* 0: job 1 */
    const char *resource; /* an extra resource of 1 (e.g. one no node has) */
    const uint8_t *owner_worker; /* NULL: the test's default owner */
    const uint8_t *affinity_node; /* soft node affinity */
} actor_opts;

static uint8_t default_owner[RC_WORKER_ID_SIZE];

/* A creation TaskSpec built on the heap (free with rpc_msg_free). */
static Ray__Rpc__TaskSpec *make_spec(const uint8_t *actor_id, const actor_opts *o)
{
    uint8_t job[RC_JOB_ID_SIZE] = {0, 0, 0, (uint8_t)(o->job ? o->job : 1)};
    Ray__Rpc__CppFunctionDescriptor cpp = RAY__RPC__CPP_FUNCTION_DESCRIPTOR__INIT;
    cpp.class_name = (char *)(o->class_name ? o->class_name : "Counter");
    cpp.function_name = "<init>";
    Ray__Rpc__FunctionDescriptor fd = RAY__RPC__FUNCTION_DESCRIPTOR__INIT;
    fd.function_descriptor_case = RAY__RPC__FUNCTION_DESCRIPTOR__FUNCTION_DESCRIPTOR_CPP_FUNCTION_DESCRIPTOR;
    fd.cpp_function_descriptor = &cpp;
    Ray__Rpc__ActorCreationTaskSpec cs = RAY__RPC__ACTOR_CREATION_TASK_SPEC__INIT;
    cs.actor_id.data = (uint8_t *)actor_id;
    cs.actor_id.len = RC_ACTOR_ID_SIZE;
    cs.max_actor_restarts = o->max_restarts;
    cs.is_detached = o->detached;
    cs.name = (char *)(o->name ? o->name : "");
    cs.ray_namespace = (char *)(o->ns ? o->ns : "");
    Ray__Rpc__Address owner = RAY__RPC__ADDRESS__INIT;
    owner.ip_address = "127.0.0.1";
    owner.port = 1;
    owner.worker_id.data = (uint8_t *)(o->owner_worker ? o->owner_worker : default_owner);
    owner.worker_id.len = RC_WORKER_ID_SIZE;
    /* Ray's default actor: placed with {CPU: 1}, holding nothing for life. */
    Ray__Rpc__TaskSpec__RequiredPlacementResourcesEntry cpu = RAY__RPC__TASK_SPEC__REQUIRED_PLACEMENT_RESOURCES_ENTRY__INIT;
    cpu.key = "CPU";
    cpu.value = 1;
    Ray__Rpc__TaskSpec__RequiredPlacementResourcesEntry *place[1] = {&cpu};
    Ray__Rpc__TaskSpec__RequiredResourcesEntry extra = RAY__RPC__TASK_SPEC__REQUIRED_RESOURCES_ENTRY__INIT;
    extra.key = (char *)o->resource;
    extra.value = 1;
    Ray__Rpc__TaskSpec__RequiredResourcesEntry *held[1] = {&extra};
    Ray__Rpc__NodeAffinitySchedulingStrategy aff = RAY__RPC__NODE_AFFINITY_SCHEDULING_STRATEGY__INIT;
    Ray__Rpc__SchedulingStrategy strategy = RAY__RPC__SCHEDULING_STRATEGY__INIT;
    uint8_t task_id[RC_TASK_ID_SIZE];
    rc_id_random(task_id, sizeof(task_id));
    Ray__Rpc__TaskSpec spec = RAY__RPC__TASK_SPEC__INIT;
    spec.type = RAY__RPC__TASK_TYPE__ACTOR_CREATION_TASK;
    spec.name = "actor creation";
    spec.language = RAY__RPC__LANGUAGE__CPP;
    spec.function_descriptor = &fd;
    spec.job_id.data = job;
    spec.job_id.len = sizeof(job);
    spec.task_id.data = task_id;
    spec.task_id.len = sizeof(task_id);
    spec.caller_address = &owner;
    spec.num_returns = 1;
    spec.actor_creation_task_spec = &cs;
    if (o->resource) {
        spec.required_resources = held;
        spec.n_required_resources = 1;
    } else {
        spec.required_placement_resources = place;
        spec.n_required_placement_resources = 1;
    }
    if (o->affinity_node) {
        aff.node_id.data = (uint8_t *)o->affinity_node;
        aff.node_id.len = RC_NODE_ID_SIZE;
        aff.soft = 1;
        strategy.scheduling_strategy_case =
            RAY__RPC__SCHEDULING_STRATEGY__SCHEDULING_STRATEGY_NODE_AFFINITY_SCHEDULING_STRATEGY;
        strategy.node_affinity_scheduling_strategy = &aff;
        spec.scheduling_strategy = &strategy;
    }
    return (Ray__Rpc__TaskSpec *)rpc_msg_dup(&spec.base);
}

static int register_actor(tc *t, const uint8_t *id, const actor_opts *o, char *message, size_t mlen)
{
    Ray__Rpc__TaskSpec *spec = make_spec(id, o);
    Ray__Rpc__RegisterActorRequest req = RAY__RPC__REGISTER_ACTOR_REQUEST__INIT;
    req.task_spec = spec;
    int st = harness_fake_gcs_call(t, ACTORS, "RegisterActor", &req.base, NULL, message, mlen);
    rpc_msg_free(&spec->base);
    return st;
}

/* A CreateActor call in flight. */
typedef struct create_call {
    int done;
    int code; /* gRPC */
    int status; /* GcsStatus */
    Ray__Rpc__CreateActorReply *reply;
} create_call;

static void created(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    create_call *cc = arg;
    cc->code = st->code;
    cc->reply = (Ray__Rpc__CreateActorReply *)reply;
    cc->status = reply ? gcs_reply_status(reply, NULL) : -1;
    cc->done = 1;
}

static void create_async(tc *t, const uint8_t *id, const actor_opts *o, create_call *cc)
{
    memset(cc, 0, sizeof(*cc));
    Ray__Rpc__TaskSpec *spec = make_spec(id, o);
    Ray__Rpc__CreateActorRequest req = RAY__RPC__CREATE_ACTOR_REQUEST__INIT;
    req.task_spec = spec;
    CU_ASSERT_EQUAL(rpc_client_call(gcs_client_rpc(t->gcs), ACTORS, "CreateActor", &req.base, 60000, created, cc), 0);
    rpc_msg_free(&spec->base);
}

static void create_free(create_call *cc)
{
    rpc_msg_free(cc->reply ? &cc->reply->base : NULL);
    cc->reply = NULL;
}

/* Registers and creates an actor; returns 1 once CreateActor answered OK (ALIVE). */
static int make_actor(tc *t, uint8_t *id, const actor_opts *o)
{
    rc_id_random(id, RC_ACTOR_ID_SIZE);
    char msg[512];
    int st = register_actor(t, id, o, msg, sizeof(msg));
    if (st != 0) {
        fprintf(stderr, "RegisterActor: %d %s\n", st, msg);
        return 0;
    }
    create_call cc;
    create_async(t, id, o, &cc);
    harness_fake_pump(t, &cc.done, 30000);
    int ok = cc.done && cc.code == GRPC_STATUS_OK && cc.status == 0 && cc.reply->actor_address &&
             cc.reply->actor_address->port > 0;
    if (!ok)
        fprintf(stderr, "CreateActor: done %d code %d status %d\n", cc.done, cc.code, cc.status);
    create_free(&cc);
    return ok;
}

/* The actor's record (free with rpc_msg_free), or NULL. */
static actor_data *get_actor(tc *t, const uint8_t *id)
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
    actor_data *d = r->actor_table_data;
    r->actor_table_data = NULL;
    rpc_msg_free(reply);
    return d;
}

/* Waits up to ms for the actor to reach state (and, if min_restarts >= 0, that many
 * restarts). Returns its record then (free it), else NULL. */
static actor_data *wait_state(tc *t, const uint8_t *id, int state, int64_t min_restarts, int ms)
{
    int64_t deadline = rc_mono_ms() + ms;
    actor_data *d = NULL;
    while (rc_mono_ms() < deadline) {
        d = get_actor(t, id);
        if (d && (int)d->state == state && (min_restarts < 0 || d->num_restarts >= min_restarts))
            return d;
        rpc_msg_free(d ? &d->base : NULL);
        d = NULL;
        harness_fake_pump(t, NULL, 50);
    }
    d = get_actor(t, id);
    fprintf(stderr, "    actor never reached state %d (now %d, %lld restarts)\n", state, d ? (int)d->state : -1,
            d ? (long long)d->num_restarts : -1LL);
    rpc_msg_free(d ? &d->base : NULL);
    return NULL;
}

static int kill_actor(tc *t, const uint8_t *id, int force, int no_restart)
{
    Ray__Rpc__KillActorViaGcsRequest req = RAY__RPC__KILL_ACTOR_VIA_GCS_REQUEST__INIT;
    req.actor_id.data = (uint8_t *)id;
    req.actor_id.len = RC_ACTOR_ID_SIZE;
    req.force_kill = force;
    req.no_restart = no_restart;
    return harness_fake_gcs_call(t, ACTORS, "KillActorViaGcs", &req.base, NULL, NULL, 0);
}

/* What a raylet sends when a worker process dies. */
static int report_worker_failure(tc *t, const Ray__Rpc__Address *addr, uint32_t pid)
{
    Ray__Rpc__WorkerTableData w = RAY__RPC__WORKER_TABLE_DATA__INIT;
    w.worker_address = (Ray__Rpc__Address *)addr;
    w.pid = pid;
    w._exit_type_case = RAY__RPC__WORKER_TABLE_DATA___EXIT_TYPE_EXIT_TYPE;
    w.exit_type = RAY__RPC__WORKER_EXIT_TYPE__SYSTEM_ERROR;
    w._exit_detail_case = RAY__RPC__WORKER_TABLE_DATA___EXIT_DETAIL_EXIT_DETAIL;
    w.exit_detail = "killed by signal 9 (test)";
    Ray__Rpc__ReportWorkerFailureRequest req = RAY__RPC__REPORT_WORKER_FAILURE_REQUEST__INIT;
    req.worker_failure = &w;
    return harness_fake_gcs_call(t, &ray__rpc__worker_info_gcs_service__descriptor, "ReportWorkerFailure", &req.base, NULL, NULL,
                    0);
}

/* SIGKILLs the actor's worker and reports it as its raylet would. */
static void kill_worker(tc *t, const actor_data *d)
{
    CU_ASSERT_FATAL(d->pid > 0 && d->address);
    CU_ASSERT_EQUAL(kill((pid_t)d->pid, SIGKILL), 0);
    CU_ASSERT_EQUAL(report_worker_failure(t, d->address, d->pid), 0);
}

static int process_gone(pid_t pid, int ms)
{
    int64_t deadline = rc_mono_ms() + ms;
    while (rc_mono_ms() < deadline) {
        if (kill(pid, 0) < 0 && errno == ESRCH)
            return 1;
        rc_sleep_ms(20);
    }
    return 0;
}

/* Calls "pid" on the actor's worker (PushTask, as a caller would): its pid, or -1. */
static long worker_pid(tc *t, const Ray__Rpc__Address *addr)
{
    char target[128];
    snprintf(target, sizeof(target), "%s:%d", addr->ip_address, addr->port);
    rpc_client *cli;
    rpc_client_create(t->rpc, target, NULL, &cli);
    Ray__Rpc__CppFunctionDescriptor cpp = RAY__RPC__CPP_FUNCTION_DESCRIPTOR__INIT;
    cpp.function_name = "pid";
    Ray__Rpc__FunctionDescriptor fd = RAY__RPC__FUNCTION_DESCRIPTOR__INIT;
    fd.function_descriptor_case = RAY__RPC__FUNCTION_DESCRIPTOR__FUNCTION_DESCRIPTOR_CPP_FUNCTION_DESCRIPTOR;
    fd.cpp_function_descriptor = &cpp;
    Ray__Rpc__TaskSpec spec = RAY__RPC__TASK_SPEC__INIT;
    spec.type = RAY__RPC__TASK_TYPE__ACTOR_TASK;
    spec.function_descriptor = &fd;
    Ray__Rpc__PushTaskRequest req = RAY__RPC__PUSH_TASK_REQUEST__INIT;
    req.task_spec = &spec;
    ProtobufCMessage *reply = NULL;
    long pid = -1;
    if (rpc_client_call_sync(cli, &ray__rpc__core_worker_service__descriptor, "PushTask", &req.base, 5000, &reply,
                             NULL, 0) == GRPC_STATUS_OK) {
        Ray__Rpc__PushTaskReply *r = (void *)reply;
        if (r->n_return_objects == 1) {
            char text[32] = "";
            size_t n = r->return_objects[0]->data.len < 31 ? r->return_objects[0]->data.len : 31;
            memcpy(text, r->return_objects[0]->data.data, n);
            pid = atol(text);
        }
    }
    rpc_msg_free(reply);
    rpc_client_destroy(cli);
    return pid;
}

static const Ray__Rpc__ActorDiedErrorContext *died_context(const actor_data *d)
{
    return d && d->death_cause &&
                   d->death_cause->context_case == RAY__RPC__ACTOR_DEATH_CAUSE__CONTEXT_ACTOR_DIED_ERROR_CONTEXT
               ? d->death_cause->actor_died_error_context
               : NULL;
}

/* ---- actor channel ------------------------------------------------------------------ */

typedef struct channel_log {
    int states[64];
    int n;
    int subscribed;
} channel_log;

static void on_actor_message(const Ray__Rpc__PubMessage *msg, void *arg)
{
    channel_log *log = arg;
    if (msg->channel_type == RAY__RPC__CHANNEL_TYPE__GCS_ACTOR_CHANNEL && msg->actor_message && log->n < 64)
        log->states[log->n++] = msg->actor_message->state;
}

static void on_subscribed(void *arg)
{
    ((channel_log *)arg)->subscribed = 1;
}

/* ---- cases -------------------------------------------------------------------------- */

static void test_create_alive_and_published(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t, 0), 0);
    const char *flags[] = {"--num-cpus", "2", NULL};
    CU_ASSERT_FATAL(harness_fake_raylet(&t, flags) >= 0);
    uint8_t id[RC_ACTOR_ID_SIZE];
    rc_id_random(id, sizeof(id));
    channel_log log = {{0}, 0, 0};
    gcs_subscriber_callbacks cbs = {on_actor_message, on_subscribed, &log};
    gcs_subscriber *sub = gcs_subscriber_new(t.gcs, &cbs);
    gcs_subscriber_subscribe(sub, RAY__RPC__CHANNEL_TYPE__GCS_ACTOR_CHANNEL, id, sizeof(id));
    harness_fake_pump(&t, &log.subscribed, 5000);
    CU_ASSERT_TRUE(log.subscribed);
    harness_fake_pump(&t, NULL, 200);

    actor_opts o = {.max_restarts = 0};
    CU_ASSERT_EQUAL(register_actor(&t, id, &o, NULL, 0), 0);
    CU_ASSERT_EQUAL(register_actor(&t, id, &o, NULL, 0), 0); /* an owner's retry */
    actor_data *d = get_actor(&t, id);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_EQUAL(d->state, S_UNREADY);
    CU_ASSERT_STRING_EQUAL(d->class_name, "Counter");
    rpc_msg_free(&d->base);
    create_call cc;
    create_async(&t, id, &o, &cc);
    harness_fake_pump(&t, &cc.done, 20000);
    CU_ASSERT_TRUE_FATAL(cc.done);
    CU_ASSERT_EQUAL(cc.code, GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(cc.status, 0);
    CU_ASSERT_TRUE_FATAL(cc.reply && cc.reply->actor_address && cc.reply->actor_address->port > 0);
    CU_ASSERT_EQUAL(cc.reply->actor_address->worker_id.len, RC_WORKER_ID_SIZE);
    d = get_actor(&t, id);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_EQUAL(d->state, S_ALIVE);
    CU_ASSERT(d->pid > 0);
    CU_ASSERT_EQUAL(d->_node_id_case, RAY__RPC__ACTOR_TABLE_DATA___NODE_ID_NODE_ID);
    CU_ASSERT_EQUAL(d->address->port, cc.reply->actor_address->port);
    CU_ASSERT(d->start_time > 0);
    /* The worker the GCS says is the actor's answers calls, from that pid. */
    CU_ASSERT_EQUAL(worker_pid(&t, d->address), (long)d->pid);
    /* CreateActor again: answered at once with the same address. */
    create_free(&cc);
    create_async(&t, id, &o, &cc);
    harness_fake_pump(&t, &cc.done, 5000);
    CU_ASSERT_TRUE(cc.done && cc.status == 0 && cc.reply->actor_address->port == d->address->port);
    create_free(&cc);
    rpc_msg_free(&d->base);
    /* The channel saw every state in order. */
    harness_fake_pump(&t, NULL, 300);
    CU_ASSERT_EQUAL_FATAL(log.n, 3);
    CU_ASSERT_EQUAL(log.states[0], S_UNREADY);
    CU_ASSERT_EQUAL(log.states[1], S_PENDING);
    CU_ASSERT_EQUAL(log.states[2], S_ALIVE);
    /* Bad input: not a creation task, a short ID, an unknown actor. */
    Ray__Rpc__TaskSpec bad = RAY__RPC__TASK_SPEC__INIT;
    Ray__Rpc__RegisterActorRequest breq = RAY__RPC__REGISTER_ACTOR_REQUEST__INIT;
    breq.task_spec = &bad;
    char msg[512];
    CU_ASSERT_EQUAL(harness_fake_gcs_call(&t, ACTORS, "RegisterActor", &breq.base, NULL, msg, sizeof(msg)), 34);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "ACTOR_CREATION_TASK"));
    uint8_t unknown[RC_ACTOR_ID_SIZE];
    rc_id_random(unknown, sizeof(unknown));
    CU_ASSERT_PTR_NULL(get_actor(&t, unknown));
    create_async(&t, unknown, &o, &cc);
    harness_fake_pump(&t, &cc.done, 5000);
    CU_ASSERT_EQUAL(cc.status, 17); /* NOT_FOUND */
    create_free(&cc);
    gcs_subscriber_destroy(sub);
    tc_stop(&t);
}

static void test_named_actors_and_namespaces(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t, 0), 0);
    const char *flags[] = {"--num-cpus", "4", NULL};
    CU_ASSERT_FATAL(harness_fake_raylet(&t, flags) >= 0);
    uint8_t a[RC_ACTOR_ID_SIZE], b[RC_ACTOR_ID_SIZE], c[RC_ACTOR_ID_SIZE], d[RC_ACTOR_ID_SIZE];
    actor_opts n1 = {.name = "counter", .ns = "n1"}, n2 = {.name = "counter", .ns = "n2"};
    CU_ASSERT_TRUE_FATAL(make_actor(&t, a, &n1));
    rc_id_random(b, sizeof(b));
    char msg[512];
    CU_ASSERT_EQUAL(register_actor(&t, b, &n1, msg, sizeof(msg)), 20); /* ALREADY_EXISTS */
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "counter"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "n1"));
    CU_ASSERT_TRUE_FATAL(make_actor(&t, c, &n2));
    /* By name, in its namespace only. */
    Ray__Rpc__GetNamedActorInfoRequest nreq = RAY__RPC__GET_NAMED_ACTOR_INFO_REQUEST__INIT;
    nreq.name = "counter";
    nreq.ray_namespace = "n1";
    ProtobufCMessage *reply = NULL;
    CU_ASSERT_EQUAL_FATAL(harness_fake_gcs_call(&t, ACTORS, "GetNamedActorInfo", &nreq.base, &reply, NULL, 0), 0);
    Ray__Rpc__GetNamedActorInfoReply *nr = (void *)reply;
    CU_ASSERT_TRUE(nr->actor_table_data && !memcmp(nr->actor_table_data->actor_id.data, a, RC_ACTOR_ID_SIZE));
    CU_ASSERT_TRUE(nr->task_spec && nr->task_spec->actor_creation_task_spec);
    rpc_msg_free(reply);
    nreq.ray_namespace = "n3";
    CU_ASSERT_EQUAL(harness_fake_gcs_call(&t, ACTORS, "GetNamedActorInfo", &nreq.base, NULL, NULL, 0), 17);
    Ray__Rpc__ListNamedActorsRequest lreq = RAY__RPC__LIST_NAMED_ACTORS_REQUEST__INIT;
    lreq.ray_namespace = "n1";
    CU_ASSERT_EQUAL_FATAL(harness_fake_gcs_call(&t, ACTORS, "ListNamedActors", &lreq.base, &reply, NULL, 0), 0);
    CU_ASSERT_EQUAL(((Ray__Rpc__ListNamedActorsReply *)reply)->n_named_actors_list, 1);
    rpc_msg_free(reply);
    lreq.all_namespaces = 1;
    CU_ASSERT_EQUAL_FATAL(harness_fake_gcs_call(&t, ACTORS, "ListNamedActors", &lreq.base, &reply, NULL, 0), 0);
    CU_ASSERT_EQUAL(((Ray__Rpc__ListNamedActorsReply *)reply)->n_named_actors_list, 2);
    rpc_msg_free(reply);
    /* A dead actor's name is free again. */
    CU_ASSERT_EQUAL(kill_actor(&t, a, 1, 1), 0);
    actor_data *dead = wait_state(&t, a, S_DEAD, -1, 10000);
    CU_ASSERT_PTR_NOT_NULL(dead);
    CU_ASSERT_TRUE(died_context(dead) && died_context(dead)->reason == RAY__RPC__ACTOR_DIED_ERROR_CONTEXT__REASON__RAY_KILL);
    rpc_msg_free(dead ? &dead->base : NULL);
    CU_ASSERT_TRUE(make_actor(&t, d, &n1));
    tc_stop(&t);
}

static void test_get_all_filters(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t, 0), 0);
    const char *flags[] = {"--num-cpus", "4", NULL};
    CU_ASSERT_FATAL(harness_fake_raylet(&t, flags) >= 0);
    uint8_t a[RC_ACTOR_ID_SIZE], b[RC_ACTOR_ID_SIZE], c[RC_ACTOR_ID_SIZE];
    actor_opts j1 = {.job = 1}, j2 = {.job = 2};
    CU_ASSERT_TRUE_FATAL(make_actor(&t, a, &j1));
    CU_ASSERT_TRUE_FATAL(make_actor(&t, b, &j1));
    rc_id_random(c, sizeof(c));
    CU_ASSERT_EQUAL(register_actor(&t, c, &j2, NULL, 0), 0); /* stays DEPENDENCIES_UNREADY */
    Ray__Rpc__GetAllActorInfoRequest req = RAY__RPC__GET_ALL_ACTOR_INFO_REQUEST__INIT;
    Ray__Rpc__GetAllActorInfoRequest__Filters f;
    ray__rpc__get_all_actor_info_request__filters__init(&f);
    ProtobufCMessage *reply = NULL;
    CU_ASSERT_EQUAL_FATAL(harness_fake_gcs_call(&t, ACTORS, "GetAllActorInfo", &req.base, &reply, NULL, 0), 0);
    Ray__Rpc__GetAllActorInfoReply *r = (void *)reply;
    CU_ASSERT_EQUAL(r->n_actor_table_data, 3);
    CU_ASSERT_EQUAL(r->total, 3);
    CU_ASSERT_EQUAL(r->num_filtered, 0);
    rpc_msg_free(reply);
    uint8_t job2[RC_JOB_ID_SIZE] = {0, 0, 0, 2};
    req._filters_case = RAY__RPC__GET_ALL_ACTOR_INFO_REQUEST___FILTERS_FILTERS;
    req.filters = &f;
    f._job_id_case = RAY__RPC__GET_ALL_ACTOR_INFO_REQUEST__FILTERS___JOB_ID_JOB_ID;
    f.job_id.data = job2;
    f.job_id.len = sizeof(job2);
    CU_ASSERT_EQUAL_FATAL(harness_fake_gcs_call(&t, ACTORS, "GetAllActorInfo", &req.base, &reply, NULL, 0), 0);
    r = (void *)reply;
    CU_ASSERT_EQUAL_FATAL(r->n_actor_table_data, 1);
    CU_ASSERT_EQUAL(memcmp(r->actor_table_data[0]->actor_id.data, c, RC_ACTOR_ID_SIZE), 0);
    CU_ASSERT_EQUAL(r->num_filtered, 2);
    rpc_msg_free(reply);
    f._job_id_case = RAY__RPC__GET_ALL_ACTOR_INFO_REQUEST__FILTERS___JOB_ID__NOT_SET;
    f._state_case = RAY__RPC__GET_ALL_ACTOR_INFO_REQUEST__FILTERS___STATE_STATE;
    f.state = S_ALIVE;
    req._limit_case = RAY__RPC__GET_ALL_ACTOR_INFO_REQUEST___LIMIT_LIMIT;
    req.limit = 1;
    CU_ASSERT_EQUAL_FATAL(harness_fake_gcs_call(&t, ACTORS, "GetAllActorInfo", &req.base, &reply, NULL, 0), 0);
    r = (void *)reply;
    CU_ASSERT_EQUAL(r->n_actor_table_data, 1);
    CU_ASSERT_EQUAL(r->total, 3);
    CU_ASSERT_EQUAL(r->num_filtered, 1);
    rpc_msg_free(reply);
    req._limit_case = RAY__RPC__GET_ALL_ACTOR_INFO_REQUEST___LIMIT__NOT_SET;
    f._state_case = RAY__RPC__GET_ALL_ACTOR_INFO_REQUEST__FILTERS___STATE__NOT_SET;
    f._actor_id_case = RAY__RPC__GET_ALL_ACTOR_INFO_REQUEST__FILTERS___ACTOR_ID_ACTOR_ID;
    f.actor_id.data = b;
    f.actor_id.len = sizeof(b);
    CU_ASSERT_EQUAL_FATAL(harness_fake_gcs_call(&t, ACTORS, "GetAllActorInfo", &req.base, &reply, NULL, 0), 0);
    r = (void *)reply;
    CU_ASSERT_EQUAL_FATAL(r->n_actor_table_data, 1);
    CU_ASSERT_EQUAL(memcmp(r->actor_table_data[0]->actor_id.data, b, RC_ACTOR_ID_SIZE), 0);
    rpc_msg_free(reply);
    tc_stop(&t);
}

static void test_worker_death_restarts_then_dead(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t, 0), 0);
    const char *flags[] = {"--num-cpus", "2", NULL};
    CU_ASSERT_FATAL(harness_fake_raylet(&t, flags) >= 0);
    uint8_t id[RC_ACTOR_ID_SIZE];
    actor_opts o = {.max_restarts = 2};
    CU_ASSERT_TRUE_FATAL(make_actor(&t, id, &o));
    uint32_t pids[3];
    for (int round = 0; round < 3; round++) {
        actor_data *d = wait_state(&t, id, S_ALIVE, round, 20000);
        CU_ASSERT_PTR_NOT_NULL_FATAL(d);
        CU_ASSERT_EQUAL(d->num_restarts, round);
        pids[round] = d->pid;
        for (int k = 0; k < round; k++)
            CU_ASSERT_NOT_EQUAL(pids[k], d->pid); /* a new worker each time */
        CU_ASSERT_EQUAL(worker_pid(&t, d->address), (long)d->pid);
        kill_worker(&t, d);
        CU_ASSERT_EQUAL(report_worker_failure(&t, d->address, d->pid), 0); /* a repeated report is harmless */
        rpc_msg_free(&d->base);
    }
    actor_data *d = wait_state(&t, id, S_DEAD, -1, 20000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_EQUAL(d->num_restarts, 2);
    const Ray__Rpc__ActorDiedErrorContext *why = died_context(d);
    CU_ASSERT_PTR_NOT_NULL_FATAL(why);
    CU_ASSERT_EQUAL(why->reason, RAY__RPC__ACTOR_DIED_ERROR_CONTEXT__REASON__WORKER_DIED);
    CU_ASSERT_PTR_NOT_NULL(strstr(why->error_message, "killed by signal 9"));
    CU_ASSERT_EQUAL(why->pid, pids[2]);
    rpc_msg_free(&d->base);
    tc_stop(&t);
}

static void test_kill_with_and_without_restart(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t, 0), 0);
    const char *flags[] = {"--num-cpus", "2", NULL};
    CU_ASSERT_FATAL(harness_fake_raylet(&t, flags) >= 0);
    uint8_t id[RC_ACTOR_ID_SIZE];
    actor_opts o = {.max_restarts = -1};
    CU_ASSERT_TRUE_FATAL(make_actor(&t, id, &o));
    actor_data *d = wait_state(&t, id, S_ALIVE, 0, 10000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    pid_t first = (pid_t)d->pid;
    rpc_msg_free(&d->base);
    /* ray.kill(actor, no_restart=False): the worker goes, the actor comes back. */
    CU_ASSERT_EQUAL(kill_actor(&t, id, 1, 0), 0);
    d = wait_state(&t, id, S_ALIVE, 1, 20000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_NOT_EQUAL((pid_t)d->pid, first);
    CU_ASSERT_TRUE(process_gone(first, 5000));
    pid_t second = (pid_t)d->pid;
    rpc_msg_free(&d->base);
    /* Graceful kill (force_kill false) restarts too. */
    CU_ASSERT_EQUAL(kill_actor(&t, id, 0, 0), 0);
    d = wait_state(&t, id, S_ALIVE, 2, 20000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_TRUE(process_gone(second, 5000));
    pid_t third = (pid_t)d->pid;
    rpc_msg_free(&d->base);
    /* no_restart: DEAD for good, and its worker exits. */
    CU_ASSERT_EQUAL(kill_actor(&t, id, 1, 1), 0);
    d = wait_state(&t, id, S_DEAD, -1, 10000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_TRUE(died_context(d) && died_context(d)->reason == RAY__RPC__ACTOR_DIED_ERROR_CONTEXT__REASON__RAY_KILL);
    CU_ASSERT_TRUE(process_gone(third, 5000));
    rpc_msg_free(&d->base);
    CU_ASSERT_EQUAL(kill_actor(&t, id, 1, 1), 0); /* killing the dead is fine */
    tc_stop(&t);
}

static void test_owner_death_and_job_end(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t, 0), 0);
    const char *flags[] = {"--num-cpus", "8", NULL};
    CU_ASSERT_FATAL(harness_fake_raylet(&t, flags) >= 0);
    /* Job 7: a detached and a non-detached actor; MarkJobFinished kills only the latter. */
    uint8_t job[RC_JOB_ID_SIZE] = {0, 0, 0, 7};
    Ray__Rpc__JobTableData jd = RAY__RPC__JOB_TABLE_DATA__INIT;
    jd.job_id.data = job;
    jd.job_id.len = sizeof(job);
    Ray__Rpc__AddJobRequest add = RAY__RPC__ADD_JOB_REQUEST__INIT;
    add.data = &jd;
    CU_ASSERT_EQUAL(harness_fake_gcs_call(&t, &ray__rpc__job_info_gcs_service__descriptor, "AddJob", &add.base, NULL, NULL, 0), 0);
    uint8_t keep[RC_ACTOR_ID_SIZE], gone[RC_ACTOR_ID_SIZE];
    actor_opts detached = {.job = 7, .detached = 1}, plain = {.job = 7};
    CU_ASSERT_TRUE_FATAL(make_actor(&t, keep, &detached));
    CU_ASSERT_TRUE_FATAL(make_actor(&t, gone, &plain));
    actor_data *g = get_actor(&t, gone);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    pid_t gone_pid = (pid_t)g->pid;
    rpc_msg_free(&g->base);
    Ray__Rpc__MarkJobFinishedRequest fin = RAY__RPC__MARK_JOB_FINISHED_REQUEST__INIT;
    fin.job_id.data = job;
    fin.job_id.len = sizeof(job);
    CU_ASSERT_EQUAL(harness_fake_gcs_call(&t, &ray__rpc__job_info_gcs_service__descriptor, "MarkJobFinished", &fin.base, NULL, NULL, 0),
                    0);
    g = wait_state(&t, gone, S_DEAD, -1, 10000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_TRUE(died_context(g) && died_context(g)->reason == RAY__RPC__ACTOR_DIED_ERROR_CONTEXT__REASON__OWNER_DIED);
    CU_ASSERT_TRUE(process_gone(gone_pid, 5000));
    rpc_msg_free(&g->base);
    actor_data *k = get_actor(&t, keep);
    CU_ASSERT_TRUE(k && k->state == S_ALIVE);
    rpc_msg_free(k ? &k->base : NULL);
    /* An owner worker that dies takes its non-detached actors along, and the actors those
     * actors' workers owned. */
    uint8_t owner[RC_WORKER_ID_SIZE];
    rc_id_random(owner, sizeof(owner));
    uint8_t child[RC_ACTOR_ID_SIZE], grandchild[RC_ACTOR_ID_SIZE], orphan_ok[RC_ACTOR_ID_SIZE];
    actor_opts by_owner = {.owner_worker = owner}, detached_by_owner = {.owner_worker = owner, .detached = 1};
    CU_ASSERT_TRUE_FATAL(make_actor(&t, child, &by_owner));
    CU_ASSERT_TRUE_FATAL(make_actor(&t, orphan_ok, &detached_by_owner));
    actor_data *cd = get_actor(&t, child);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cd);
    actor_opts by_child = {.owner_worker = cd->address->worker_id.data};
    CU_ASSERT_TRUE_FATAL(make_actor(&t, grandchild, &by_child));
    rpc_msg_free(&cd->base);
    Ray__Rpc__Address owner_addr = RAY__RPC__ADDRESS__INIT;
    owner_addr.worker_id.data = owner;
    owner_addr.worker_id.len = sizeof(owner);
    owner_addr.ip_address = "127.0.0.1";
    owner_addr.port = 1;
    CU_ASSERT_EQUAL(report_worker_failure(&t, &owner_addr, 1), 0);
    actor_data *x = wait_state(&t, child, S_DEAD, -1, 10000);
    CU_ASSERT_TRUE(died_context(x) && died_context(x)->reason == RAY__RPC__ACTOR_DIED_ERROR_CONTEXT__REASON__OWNER_DIED);
    rpc_msg_free(x ? &x->base : NULL);
    x = wait_state(&t, grandchild, S_DEAD, -1, 10000);
    CU_ASSERT_TRUE(died_context(x) && died_context(x)->reason == RAY__RPC__ACTOR_DIED_ERROR_CONTEXT__REASON__OWNER_DIED);
    rpc_msg_free(x ? &x->base : NULL);
    x = get_actor(&t, orphan_ok);
    CU_ASSERT_TRUE(x && x->state == S_ALIVE);
    rpc_msg_free(x ? &x->base : NULL);
    tc_stop(&t);
}

static void test_out_of_scope(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t, 0), 0);
    const char *flags[] = {"--num-cpus", "4", NULL};
    CU_ASSERT_FATAL(harness_fake_raylet(&t, flags) >= 0);
    uint8_t a[RC_ACTOR_ID_SIZE], det[RC_ACTOR_ID_SIZE];
    actor_opts plain = {.max_restarts = 3}, detached = {.detached = 1};
    CU_ASSERT_TRUE_FATAL(make_actor(&t, a, &plain));
    CU_ASSERT_TRUE_FATAL(make_actor(&t, det, &detached));
    actor_data *d = get_actor(&t, a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    pid_t pid = (pid_t)d->pid;
    rpc_msg_free(&d->base);
    Ray__Rpc__ReportActorOutOfScopeRequest req = RAY__RPC__REPORT_ACTOR_OUT_OF_SCOPE_REQUEST__INIT;
    req.actor_id.data = a;
    req.actor_id.len = sizeof(a);
    CU_ASSERT_EQUAL(harness_fake_gcs_call(&t, ACTORS, "ReportActorOutOfScope", &req.base, NULL, NULL, 0), 0);
    req.actor_id.data = det;
    CU_ASSERT_EQUAL(harness_fake_gcs_call(&t, ACTORS, "ReportActorOutOfScope", &req.base, NULL, NULL, 0), 0);
    d = wait_state(&t, a, S_DEAD, -1, 10000);
    CU_ASSERT_TRUE(died_context(d) && died_context(d)->reason == RAY__RPC__ACTOR_DIED_ERROR_CONTEXT__REASON__OUT_OF_SCOPE);
    CU_ASSERT_EQUAL(d ? d->num_restarts : -1, 0); /* no restart however many are left */
    rpc_msg_free(d ? &d->base : NULL);
    CU_ASSERT_TRUE(process_gone(pid, 10000));
    d = get_actor(&t, det);
    CU_ASSERT_TRUE(d && d->state == S_ALIVE);
    rpc_msg_free(d ? &d->base : NULL);
    tc_stop(&t);
}

static void test_node_death_restarts_elsewhere(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t, 0), 0);
    const char *flags[] = {"--num-cpus", "2", NULL};
    int r0 = harness_fake_raylet(&t, flags), r1 = harness_fake_raylet(&t, flags);
    CU_ASSERT_FATAL(r0 >= 0 && r1 >= 0);
    uint8_t node0[RC_NODE_ID_SIZE];
    CU_ASSERT_EQUAL_FATAL(rc_id_from_hex(t.c.raylets[r0].node_id, node0, sizeof(node0)), 0);
    uint8_t a[RC_ACTOR_ID_SIZE], b[RC_ACTOR_ID_SIZE];
    actor_opts restartable = {.max_restarts = 1, .affinity_node = node0}, fragile = {.affinity_node = node0};
    CU_ASSERT_TRUE_FATAL(make_actor(&t, a, &restartable));
    CU_ASSERT_TRUE_FATAL(make_actor(&t, b, &fragile));
    actor_data *d = get_actor(&t, a);
    CU_ASSERT_TRUE_FATAL(d && d->_node_id_case && !memcmp(d->node_id.data, node0, RC_NODE_ID_SIZE));
    rpc_msg_free(&d->base);
    harness_raylet_signal(&t.c, r0, SIGKILL);
    harness_raylet_wait_exit(&t.c, r0, 5000);
    d = wait_state(&t, a, S_ALIVE, 1, 30000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_NOT_EQUAL(memcmp(d->node_id.data, node0, RC_NODE_ID_SIZE), 0);
    CU_ASSERT_EQUAL(worker_pid(&t, d->address), (long)d->pid);
    rpc_msg_free(&d->base);
    d = wait_state(&t, b, S_DEAD, -1, 10000);
    CU_ASSERT_TRUE(died_context(d) && died_context(d)->reason == RAY__RPC__ACTOR_DIED_ERROR_CONTEXT__REASON__NODE_DIED);
    rpc_msg_free(d ? &d->base : NULL);
    tc_stop(&t);
}

/* Sum over GetAllResourceUsage of the infeasible demand of shapes naming resource. */
static uint64_t infeasible_demand(tc *t, const char *resource)
{
    Ray__Rpc__GetAllResourceUsageRequest req = RAY__RPC__GET_ALL_RESOURCE_USAGE_REQUEST__INIT;
    ProtobufCMessage *reply = NULL;
    uint64_t n = 0;
    if (harness_fake_gcs_call(t, &ray__rpc__node_resource_info_gcs_service__descriptor, "GetAllResourceUsage", &req.base, &reply,
                 NULL, 0) != 0)
        return 0;
    const Ray__Rpc__ResourceUsageBatchData *b = ((Ray__Rpc__GetAllResourceUsageReply *)reply)->resource_usage_data;
    for (size_t i = 0; b && b->resource_load_by_shape && i < b->resource_load_by_shape->n_resource_demands; i++) {
        const Ray__Rpc__ResourceDemand *d = b->resource_load_by_shape->resource_demands[i];
        for (size_t k = 0; k < d->n_shape; k++)
            if (!strcmp(d->shape[k]->key, resource))
                n += d->num_infeasible_requests_queued;
    }
    rpc_msg_free(reply);
    return n;
}

static void test_unschedulable_actor_dies_explained(void)
{
    setenv("RAYC_unschedulable_task_timeout_ms", "2000", 1);
    tc t;
    int up = tc_start(&t, 0);
    setenv("RAYC_unschedulable_task_timeout_ms", "60000", 1);
    CU_ASSERT_EQUAL_FATAL(up, 0);
    const char *flags[] = {"--num-cpus", "2", NULL};
    CU_ASSERT_FATAL(harness_fake_raylet(&t, flags) >= 0);
    uint8_t id[RC_ACTOR_ID_SIZE];
    rc_id_random(id, sizeof(id));
    actor_opts o = {.resource = "unobtainium", .max_restarts = 5};
    CU_ASSERT_EQUAL(register_actor(&t, id, &o, NULL, 0), 0);
    create_call cc;
    create_async(&t, id, &o, &cc);
    harness_fake_pump(&t, NULL, 500);
    CU_ASSERT_FALSE(cc.done);
    actor_data *d = get_actor(&t, id);
    CU_ASSERT_TRUE(d && d->state == S_PENDING);
    rpc_msg_free(d ? &d->base : NULL);
    CU_ASSERT_EQUAL(infeasible_demand(&t, "unobtainium"), 1);
    harness_fake_pump(&t, &cc.done, 10000);
    CU_ASSERT_TRUE_FATAL(cc.done);
    CU_ASSERT_EQUAL(cc.code, GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(cc.status, 19); /* SCHEDULING_CANCELLED */
    CU_ASSERT_PTR_NOT_NULL_FATAL(cc.reply->death_cause);
    CU_ASSERT_EQUAL(cc.reply->death_cause->context_case, RAY__RPC__ACTOR_DEATH_CAUSE__CONTEXT_ACTOR_UNSCHEDULABLE_CONTEXT);
    const char *why = cc.reply->death_cause->actor_unschedulable_context->error_message;
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "unobtainium"));
    create_free(&cc);
    d = get_actor(&t, id);
    CU_ASSERT_TRUE(d && d->state == S_DEAD && d->num_restarts == 0);
    rpc_msg_free(d ? &d->base : NULL);
    CU_ASSERT_EQUAL(infeasible_demand(&t, "unobtainium"), 0);
    tc_stop(&t);
}

static void test_failing_constructor(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t, 0), 0);
    const char *flags[] = {"--num-cpus", "2", NULL};
    CU_ASSERT_FATAL(harness_fake_raylet(&t, flags) >= 0);
    uint8_t id[RC_ACTOR_ID_SIZE];
    rc_id_random(id, sizeof(id));
    actor_opts o = {.class_name = "FailingActor", .max_restarts = 3};
    CU_ASSERT_EQUAL(register_actor(&t, id, &o, NULL, 0), 0);
    create_call cc;
    create_async(&t, id, &o, &cc);
    harness_fake_pump(&t, &cc.done, 20000);
    CU_ASSERT_TRUE_FATAL(cc.done && cc.reply);
    CU_ASSERT_EQUAL(cc.status, 19);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cc.reply->death_cause);
    CU_ASSERT_EQUAL(cc.reply->death_cause->context_case,
                    RAY__RPC__ACTOR_DEATH_CAUSE__CONTEXT_CREATION_TASK_FAILURE_CONTEXT);
    CU_ASSERT_PTR_NOT_NULL(strstr(cc.reply->death_cause->creation_task_failure_context->formatted_exception_string,
                                  "failed on purpose"));
    create_free(&cc);
    actor_data *d = get_actor(&t, id);
    CU_ASSERT_TRUE(d && d->state == S_DEAD && d->num_restarts == 0);
    rpc_msg_free(d ? &d->base : NULL);
    tc_stop(&t);
}

static void test_gcs_restart_with_redis(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t, 1), 0);
    const char *flags[] = {"--num-cpus", "2", NULL};
    CU_ASSERT_FATAL(harness_fake_raylet(&t, flags) >= 0);
    uint8_t alive[RC_ACTOR_ID_SIZE], pending[RC_ACTOR_ID_SIZE], named[RC_ACTOR_ID_SIZE];
    actor_opts plain = {.max_restarts = 1}, needs = {.resource = "later"}, n = {.name = "kept", .ns = "ns"};
    CU_ASSERT_TRUE_FATAL(make_actor(&t, alive, &plain));
    CU_ASSERT_TRUE_FATAL(make_actor(&t, named, &n));
    rc_id_random(pending, sizeof(pending));
    CU_ASSERT_EQUAL(register_actor(&t, pending, &needs, NULL, 0), 0);
    create_call cc;
    create_async(&t, pending, &needs, &cc);
    harness_fake_pump(&t, NULL, 300);
    actor_data *before = get_actor(&t, alive);
    CU_ASSERT_PTR_NOT_NULL_FATAL(before);
    harness_gcs_kill(&t.c, SIGKILL);
    harness_fake_pump(&t, &cc.done, 3000); /* the held call ends with the GCS */
    create_free(&cc);
    CU_ASSERT_EQUAL_FATAL(harness_gcs_start(&t.c), 0);
    CU_ASSERT_EQUAL_FATAL(harness_fake_connect(&t), 0);
    /* Same worker, same pid, still answering. */
    actor_data *after = get_actor(&t, alive);
    CU_ASSERT_PTR_NOT_NULL_FATAL(after);
    CU_ASSERT_EQUAL(after->state, S_ALIVE);
    CU_ASSERT_EQUAL(after->pid, before->pid);
    CU_ASSERT_EQUAL(after->address->port, before->address->port);
    CU_ASSERT_EQUAL(worker_pid(&t, after->address), (long)before->pid);
    rpc_msg_free(&before->base);
    /* Names survive. */
    Ray__Rpc__GetNamedActorInfoRequest nreq = RAY__RPC__GET_NAMED_ACTOR_INFO_REQUEST__INIT;
    nreq.name = "kept";
    nreq.ray_namespace = "ns";
    CU_ASSERT_EQUAL(harness_fake_gcs_call(&t, ACTORS, "GetNamedActorInfo", &nreq.base, NULL, NULL, 0), 0);
    /* The pending one is still pending, and is created once a node that can hold it joins. */
    actor_data *p = get_actor(&t, pending);
    CU_ASSERT_TRUE(p && p->state == S_PENDING);
    rpc_msg_free(p ? &p->base : NULL);
    const char *more[] = {"--num-cpus", "1", "--resources", "{\"later\": 1}", NULL};
    CU_ASSERT_FATAL(harness_fake_raylet(&t, more) >= 0);
    p = wait_state(&t, pending, S_ALIVE, -1, 20000);
    CU_ASSERT_PTR_NOT_NULL(p);
    rpc_msg_free(p ? &p->base : NULL);
    /* The restarted GCS still restarts the old actor when its worker dies. */
    kill_worker(&t, after);
    rpc_msg_free(&after->base);
    after = wait_state(&t, alive, S_ALIVE, 1, 20000);
    CU_ASSERT_PTR_NOT_NULL(after);
    rpc_msg_free(after ? &after->base : NULL);
    tc_stop(&t);
}

static void test_rayc_list_actors(void)
{
    tc t;
    CU_ASSERT_EQUAL_FATAL(tc_start(&t, 0), 0);
    const char *flags[] = {"--num-cpus", "2", NULL};
    CU_ASSERT_FATAL(harness_fake_raylet(&t, flags) >= 0);
    uint8_t a[RC_ACTOR_ID_SIZE], b[RC_ACTOR_ID_SIZE];
    actor_opts named = {.name = "listed", .ns = "team", .max_restarts = 4};
    CU_ASSERT_TRUE_FATAL(make_actor(&t, a, &named));
    actor_opts plain = {0};
    CU_ASSERT_TRUE_FATAL(make_actor(&t, b, &plain));
    CU_ASSERT_EQUAL(kill_actor(&t, b, 1, 1), 0);
    actor_data *d = wait_state(&t, b, S_DEAD, -1, 10000);
    rpc_msg_free(d ? &d->base : NULL);
    char hex_a[RC_ID_HEX_MAX], hex_b[RC_ID_HEX_MAX], cmd[PATH_MAX + 256], out[16384];
    rc_id_hex(a, sizeof(a), hex_a);
    rc_id_hex(b, sizeof(b), hex_b);
    snprintf(cmd, sizeof(cmd), "%s/rayc list actors --format json --address %s", t.c.bin, t.c.gcs_address);
    FILE *p = popen(cmd, "r");
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    CU_ASSERT_EQUAL(pclose(p), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, hex_a));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, hex_b));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"class_name\": \"Counter\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"name\": \"listed\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"ray_namespace\": \"team\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"max_restarts\": 4"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"state\": \"DEAD\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "RAY_KILL"));
    snprintf(cmd, sizeof(cmd), "%s/rayc list actors --address %s", t.c.bin, t.c.gcs_address);
    p = popen(cmd, "r");
    n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    CU_ASSERT_EQUAL(pclose(p), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "ACTOR_ID"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "ALIVE"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "listed"));
    tc_stop(&t);
}

static void test_dead_actors_bounded(void)
{
    setenv("RAYC_maximum_gcs_destroyed_actor_cached_count", "2", 1);
    tc t;
    int up = tc_start(&t, 1);
    unsetenv("RAYC_maximum_gcs_destroyed_actor_cached_count");
    CU_ASSERT_EQUAL_FATAL(up, 0);
    const char *flags[] = {"--num-cpus", "4", NULL};
    CU_ASSERT_FATAL(harness_fake_raylet(&t, flags) >= 0);
    uint8_t ids[4][RC_ACTOR_ID_SIZE], live[RC_ACTOR_ID_SIZE];
    actor_opts o = {0};
    CU_ASSERT_TRUE_FATAL(make_actor(&t, live, &o)); /* alive throughout: never dropped */
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_TRUE_FATAL(make_actor(&t, ids[i], &o));
        CU_ASSERT_EQUAL(kill_actor(&t, ids[i], 1, 1), 0);
        actor_data *d = wait_state(&t, ids[i], S_DEAD, -1, 10000);
        CU_ASSERT_PTR_NOT_NULL(d);
        rpc_msg_free(d ? &d->base : NULL);
    }
    /* Only the two most recent dead actors are kept, in memory and in Redis; the live one
     * stays. */
    for (int round = 0; round < 2; round++) {
        Ray__Rpc__GetAllActorInfoRequest req = RAY__RPC__GET_ALL_ACTOR_INFO_REQUEST__INIT;
        ProtobufCMessage *reply = NULL;
        CU_ASSERT_EQUAL_FATAL(harness_fake_gcs_call(&t, ACTORS, "GetAllActorInfo", &req.base, &reply, NULL, 0), 0);
        CU_ASSERT_EQUAL(((Ray__Rpc__GetAllActorInfoReply *)reply)->total, 3);
        rpc_msg_free(reply);
        actor_data *d = get_actor(&t, ids[0]);
        CU_ASSERT_PTR_NULL(d);
        rpc_msg_free(d ? &d->base : NULL);
        d = get_actor(&t, ids[1]);
        CU_ASSERT_PTR_NULL(d);
        rpc_msg_free(d ? &d->base : NULL);
        d = get_actor(&t, ids[2]);
        CU_ASSERT_TRUE(d && d->state == S_DEAD);
        rpc_msg_free(d ? &d->base : NULL);
        d = get_actor(&t, live);
        CU_ASSERT_TRUE(d && d->state != S_DEAD);
        rpc_msg_free(d ? &d->base : NULL);
        d = get_actor(&t, ids[3]);
        CU_ASSERT_TRUE(d && d->state == S_DEAD);
        rpc_msg_free(d ? &d->base : NULL);
        if (round == 0) { /* and after a restart from storage */
            harness_gcs_kill(&t.c, SIGKILL);
            CU_ASSERT_EQUAL_FATAL(harness_gcs_start(&t.c), 0);
            CU_ASSERT_EQUAL_FATAL(harness_fake_connect(&t), 0);
        }
    }
    tc_stop(&t);
}

static const unit_case cases[] = {
    UNIT_CASE(test_create_alive_and_published),
    UNIT_CASE(test_named_actors_and_namespaces),
    UNIT_CASE(test_get_all_filters),
    UNIT_CASE(test_worker_death_restarts_then_dead),
    UNIT_CASE(test_kill_with_and_without_restart),
    UNIT_CASE(test_owner_death_and_job_end),
    UNIT_CASE(test_out_of_scope),
    UNIT_CASE(test_node_death_restarts_elsewhere),
    UNIT_CASE(test_unschedulable_actor_dies_explained),
    UNIT_CASE(test_failing_constructor),
    UNIT_CASE(test_gcs_restart_with_redis),
    UNIT_CASE(test_dead_actors_bounded),
    UNIT_CASE(test_rayc_list_actors),
};

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    quick_config();
    rc_id_random(default_owner, sizeof(default_owner));
    return unit_run("gcs_actors", cases, UNIT_N(cases));
}
