/*
 * The fake-worker cluster fixture (fake_cluster.h).
 */
#include "fake_cluster.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core_worker.pb-c.h"
#include "gcs_service.pb-c.h"
#include "rc_ids.h"
#include "rc_time.h"

int harness_fake_connect(harness_fake *t)
{
    if (t->gcs)
        gcs_client_destroy(t->gcs);
    gcs_client_create(t->rpc, t->c.gcs_address, &t->gcs);
    char err[300];
    if (gcs_client_connect_sync(t->gcs, 10000, err, sizeof(err)) < 0) {
        fprintf(stderr, "connect: %s\n", err);
        return -1;
    }
    return 0;
}

/* Raylets run workers only for jobs the GCS knows: the jobs the suites lease for (1..8)
 * are registered as a driver would, before any raylet starts. */
static int harness__add_jobs(harness_fake *t)
{
    for (int n = 1; n <= 8; n++) {
        uint8_t job[4];
        harness_job_id(n, job);
        Ray__Rpc__JobTableData data = RAY__RPC__JOB_TABLE_DATA__INIT;
        data.job_id.data = job;
        data.job_id.len = sizeof(job);
        data.driver_pid = getpid();
        data.driver_ip_address = "127.0.0.1";
        Ray__Rpc__AddJobRequest add = RAY__RPC__ADD_JOB_REQUEST__INIT;
        add.data = &data;
        char message[512];
        if (harness_fake_gcs_call(t, &ray__rpc__job_info_gcs_service__descriptor, "AddJob", &add.base, NULL,
                                  message, sizeof(message)) != 0) {
            fprintf(stderr, "harness: AddJob %d: %s\n", n, message);
            return -1;
        }
    }
    return 0;
}

int harness_fake_start(harness_fake *t, int use_redis, const char *worker_command, int raylet_clients)
{
    memset(t, 0, sizeof(*t));
    rc_id_random(t->owner_id, sizeof(t->owner_id));
    t->worker_command = worker_command;
    t->raylet_clients = raylet_clients;
    if (harness_cluster_init(&t->c, use_redis) < 0)
        return -1;
    snprintf(t->session, sizeof(t->session), "%s/session", t->c.root);
    snprintf(t->fake_dir, sizeof(t->fake_dir), "%s/fake", t->c.root);
    mkdir(t->session, 0755);
    mkdir(t->fake_dir, 0755);
    setenv("RAYC_FAKE_WORKER_DIR", t->fake_dir, 1);
    if (harness_gcs_start(&t->c) < 0)
        return -1;
    uv_loop_init(&t->loop);
    rpc_ctx_create(&t->loop, &t->rpc);
    if (harness_fake_connect(t) < 0)
        return -1;
    return harness__add_jobs(t);
}

int harness_fake_raylet(harness_fake *t, const char *const *flags)
{
    const char *argv[64];
    int n = 0;
    for (int i = 0; flags && flags[i] && n < 58; i++)
        argv[n++] = flags[i];
    argv[n++] = "--worker-command";
    argv[n++] = t->worker_command;
    argv[n++] = "--session-dir";
    argv[n++] = t->session;
    argv[n] = NULL;
    int i;
    if (harness_raylet_start(&t->c, argv, &i) < 0)
        return -1;
    if (t->raylet_clients) {
        char target[PATH_MAX + 64];
        snprintf(target, sizeof(target), "127.0.0.1:%d", t->c.raylets[i].port);
        rpc_client_create(t->rpc, target, NULL, &t->tcp[i]);
        snprintf(target, sizeof(target), "unix:%s/sockets/raylet.%.8s.sock", t->session, t->c.raylets[i].node_id);
        rpc_client_create(t->rpc, target, NULL, &t->local[i]);
    }
    return i;
}

/* SIGTERM to the GCS: it must exit 0 without a sanitizer report. */
static void harness__stop_gcs(harness_fake *t)
{
    pid_t pid = t->c.gcs_pid;
    kill(pid, SIGTERM);
    int status = -1;
    int64_t deadline = rc_mono_ms() + 15000;
    while (rc_mono_ms() < deadline && waitpid(pid, &status, WNOHANG) != pid)
        rc_sleep_ms(20);
    t->c.gcs_pid = 0;
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    int dirty = harness_log_contains(&t->c, "gcs", "Sanitizer") || harness_log_contains(&t->c, "gcs", "runtime error");
    CU_ASSERT_FALSE(dirty);
    if (dirty || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "    rayc-gcs did not stop cleanly (status 0x%x); see %s/logs/gcs.err\n", status, t->c.root);
        setenv("RAYC_TEST_KEEP_LOGS", "1", 1);
    }
}

void harness_fake_stop(harness_fake *t, int checks)
{
    for (int i = 0; i < t->c.n_raylets; i++) {
        if (!harness_raylet_alive(&t->c, i))
            continue;
        harness_raylet_signal(&t->c, i, SIGTERM);
        int status = harness_raylet_wait_exit(&t->c, i, 15000);
        if (checks & HARNESS_FAKE_CHECK_RAYLETS)
            CU_ASSERT_EQUAL(status, 0);
    }
    for (int i = 0; (checks & HARNESS_FAKE_CHECK_RAYLETS) && i < t->c.n_raylets; i++) {
        int dirty = harness_log_contains(&t->c, t->c.raylets[i].name, "Sanitizer") ||
                    harness_log_contains(&t->c, t->c.raylets[i].name, "runtime error");
        CU_ASSERT_FALSE(dirty);
        if (dirty) {
            char path[PATH_MAX];
            harness_log_path(&t->c, t->c.raylets[i].name, path, sizeof(path));
            fprintf(stderr, "    sanitizer report in %s\n", path);
            setenv("RAYC_TEST_KEEP_LOGS", "1", 1);
        }
    }
    if ((checks & HARNESS_FAKE_CHECK_GCS) && t->c.gcs_pid > 0)
        harness__stop_gcs(t);
    for (int i = 0; i < HARNESS_MAX_RAYLETS; i++) {
        if (t->tcp[i])
            rpc_client_destroy(t->tcp[i]);
        if (t->local[i])
            rpc_client_destroy(t->local[i]);
    }
    if (t->gcs)
        gcs_client_destroy(t->gcs);
    if (t->rpc)
        rpc_ctx_destroy(t->rpc);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    uv_loop_close(&t->loop);
    harness_cluster_destroy(&t->c);
}

/* The pump's timer lives on the heap until its close callback, where libuv allows its
 * memory to be released. */
typedef struct harness__timer {
    uv_timer_t timer;
    int fired;
} harness__timer;

/* The timer may fire at the start of a loop iteration whose poll would then wait for I/O
 * with no deadline (libuv runs due timers before it polls): uv_stop keeps that poll from
 * blocking, so the pump returns on time even when nothing else happens. */
static void harness__fired(uv_timer_t *h)
{
    ((harness__timer *)h->data)->fired = 1;
    uv_stop(h->loop);
}

static void harness__timer_closed(uv_handle_t *h)
{
    free(h->data);
}

int harness_fake_pump(harness_fake *t, const int *flag, int ms)
{
    harness__timer *pt = calloc(1, sizeof(*pt));
    uv_update_time(&t->loop); /* the caller may have blocked for a while: ms from now */
    uv_timer_init(&t->loop, &pt->timer);
    pt->timer.data = pt;
    uv_timer_start(&pt->timer, harness__fired, (uint64_t)ms, 0);
    while (!(flag && *flag) && !pt->fired)
        uv_run(&t->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&pt->timer, harness__timer_closed);
    uv_run(&t->loop, UV_RUN_NOWAIT);
    return flag ? *flag : 0;
}

int harness_fake_gcs_call(harness_fake *t, const ProtobufCServiceDescriptor *svc, const char *method,
                          const ProtobufCMessage *req, ProtobufCMessage **reply, char *message, size_t mlen)
{
    ProtobufCMessage *r = NULL;
    char err[512] = "";
    int code = rpc_client_call_sync(gcs_client_rpc(t->gcs), svc, method, req, 30000, &r, err, sizeof(err));
    if (code != GRPC_STATUS_OK) {
        if (message)
            snprintf(message, mlen, "%s", err);
        return -1000 - code;
    }
    const char *text;
    int status = gcs_reply_status(r, &text);
    if (message)
        snprintf(message, mlen, "%s", text);
    if (reply)
        *reply = r;
    else
        rpc_msg_free(r);
    return status;
}

/* ---- leases -------------------------------------------------------------------------- */

void harness_job_id(int n, uint8_t out[4])
{
    out[0] = (uint8_t)(n >> 24);
    out[1] = (uint8_t)(n >> 16);
    out[2] = (uint8_t)(n >> 8);
    out[3] = (uint8_t)n;
}

static void harness__lease_replied(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    harness_lease *lc = arg;
    lc->code = st->code;
    snprintf(lc->message, sizeof(lc->message), "%s", st->message);
    lc->reply = (Ray__Rpc__RequestWorkerLeaseReply *)reply;
    lc->done = 1;
}

static size_t harness__entries(const harness_res *rs, Ray__Rpc__LeaseSpec__RequiredResourcesEntry *entries,
                               Ray__Rpc__LeaseSpec__RequiredResourcesEntry **ptrs)
{
    size_t n = 0;
    for (; rs && rs[n].name && n < 16; n++) {
        ray__rpc__lease_spec__required_resources_entry__init(&entries[n]);
        entries[n].key = (char *)rs[n].name;
        entries[n].value = rs[n].amount;
        ptrs[n] = &entries[n];
    }
    return n;
}

void harness_lease_async(harness_fake *t, int ri, harness_lease *lc, const harness_res *rs,
                         const harness_lease_opts *o)
{
    memset(lc, 0, sizeof(*lc));
    lc->raylet = ri;
    if (o && o->lease_id)
        memcpy(lc->lease_id, o->lease_id, sizeof(lc->lease_id));
    else
        rc_id_random(lc->lease_id, sizeof(lc->lease_id));
    uint8_t job[4];
    harness_job_id(o && o->job ? o->job : 1, job);
    Ray__Rpc__LeaseSpec__RequiredResourcesEntry entries[16], *ptrs[16], pentries[16], *pptrs[16];
    Ray__Rpc__Address caller = RAY__RPC__ADDRESS__INIT;
    caller.worker_id.data = t->owner_id;
    caller.worker_id.len = sizeof(t->owner_id);
    caller.ip_address = "127.0.0.1";
    Ray__Rpc__LeaseSpec spec = RAY__RPC__LEASE_SPEC__INIT;
    spec.language = RAY__RPC__LANGUAGE__CPP; /* rayc-fake-worker stands in for rayc-worker */
    spec.lease_id.data = lc->lease_id;
    spec.lease_id.len = sizeof(lc->lease_id);
    spec.job_id.data = job;
    spec.job_id.len = sizeof(job);
    spec.caller_address = &caller;
    spec.required_resources = ptrs;
    spec.n_required_resources = harness__entries(rs, entries, ptrs);
    spec.scheduling_strategy = o ? o->strategy : NULL;
    spec.label_selector = o ? o->selector : NULL;
    Ray__Rpc__PlacementGroupSchedulingStrategy pg = RAY__RPC__PLACEMENT_GROUP_SCHEDULING_STRATEGY__INIT;
    Ray__Rpc__SchedulingStrategy st = RAY__RPC__SCHEDULING_STRATEGY__INIT;
    if (o && o->pg_id) {
        pg.placement_group_id.data = (uint8_t *)o->pg_id;
        pg.placement_group_id.len = RC_PG_ID_SIZE;
        pg.placement_group_bundle_index = o->pg_index;
        st.scheduling_strategy_case = RAY__RPC__SCHEDULING_STRATEGY__SCHEDULING_STRATEGY_PLACEMENT_GROUP_SCHEDULING_STRATEGY;
        st.placement_group_scheduling_strategy = &pg;
        spec.scheduling_strategy = &st;
    }
    if (o && o->actor) {
        spec.type = RAY__RPC__TASK_TYPE__ACTOR_CREATION_TASK;
        spec.is_detached_actor = o->detached;
        spec.n_required_placement_resources = harness__entries(o->placement, pentries, pptrs);
        spec.required_placement_resources = (Ray__Rpc__LeaseSpec__RequiredPlacementResourcesEntry **)pptrs;
    }
    Ray__Rpc__RequestWorkerLeaseRequest req = RAY__RPC__REQUEST_WORKER_LEASE_REQUEST__INIT;
    req.lease_spec = &spec;
    req.grant_or_reject = o ? o->grant_or_reject : 0;
    int64_t timeout = o && o->timeout_ms ? o->timeout_ms : -1;
    CU_ASSERT_EQUAL(rpc_client_call(t->tcp[ri], &ray__rpc__node_manager_service__descriptor, "RequestWorkerLease",
                                    &req.base, timeout, harness__lease_replied, lc),
                    0);
}

int harness_lease_sync(harness_fake *t, int ri, harness_lease *lc, const harness_res *rs,
                       const harness_lease_opts *o, int ms)
{
    harness_lease_async(t, ri, lc, rs, o);
    return harness_fake_pump(t, &lc->done, ms);
}

int harness_lease_granted(const harness_lease *lc)
{
    return lc->done && lc->code == GRPC_STATUS_OK && lc->reply && lc->reply->worker_address &&
           lc->reply->worker_address->port > 0;
}

void harness_lease_free(harness_lease *lc)
{
    rpc_msg_free(lc->reply ? &lc->reply->base : NULL);
    lc->reply = NULL;
}

int harness_lease_return(harness_fake *t, const harness_lease *lc, int disconnect)
{
    Ray__Rpc__ReturnWorkerLeaseRequest req = RAY__RPC__RETURN_WORKER_LEASE_REQUEST__INIT;
    req.lease_id.data = (uint8_t *)lc->lease_id;
    req.lease_id.len = sizeof(lc->lease_id);
    req.worker_port = lc->reply && lc->reply->worker_address ? lc->reply->worker_address->port : 0;
    req.disconnect_worker = disconnect;
    ProtobufCMessage *reply = NULL;
    int code = rpc_client_call_sync(t->tcp[lc->raylet], &ray__rpc__node_manager_service__descriptor,
                                    "ReturnWorkerLease", &req.base, 5000, &reply, NULL, 0);
    rpc_msg_free(reply);
    return code;
}

int harness_lease_push(harness_fake *t, const harness_lease *lc, const char *fn, const char *arg, int timeout_ms,
                       char *out, size_t outlen)
{
    char target[96];
    snprintf(target, sizeof(target), "%s:%d", lc->reply->worker_address->ip_address, lc->reply->worker_address->port);
    rpc_client *w;
    rpc_client_create(t->rpc, target, NULL, &w);
    Ray__Rpc__CppFunctionDescriptor cpp = RAY__RPC__CPP_FUNCTION_DESCRIPTOR__INIT;
    cpp.function_name = (char *)fn;
    Ray__Rpc__FunctionDescriptor fd = RAY__RPC__FUNCTION_DESCRIPTOR__INIT;
    fd.function_descriptor_case = RAY__RPC__FUNCTION_DESCRIPTOR__FUNCTION_DESCRIPTOR_CPP_FUNCTION_DESCRIPTOR;
    fd.cpp_function_descriptor = &cpp;
    Ray__Rpc__TaskArg targ = RAY__RPC__TASK_ARG__INIT;
    targ.data.data = (uint8_t *)arg;
    targ.data.len = strlen(arg);
    targ.is_inlined = 1;
    Ray__Rpc__TaskArg *args[1] = {&targ};
    Ray__Rpc__TaskSpec spec = RAY__RPC__TASK_SPEC__INIT;
    spec.function_descriptor = &fd;
    spec.args = args;
    spec.n_args = 1;
    spec.num_returns = 1;
    Ray__Rpc__PushTaskRequest req = RAY__RPC__PUSH_TASK_REQUEST__INIT;
    req.task_spec = &spec;
    req.intended_worker_id = lc->reply->worker_address->worker_id;
    ProtobufCMessage *reply = NULL;
    int code = rpc_client_call_sync(w, &ray__rpc__core_worker_service__descriptor, "PushTask", &req.base, timeout_ms,
                                    &reply, NULL, 0);
    if (out && outlen) {
        out[0] = '\0';
        const Ray__Rpc__PushTaskReply *pr = (const void *)reply;
        if (code == GRPC_STATUS_OK && pr->n_return_objects)
            snprintf(out, outlen, "%.*s", (int)pr->return_objects[0]->data.len,
                     (const char *)pr->return_objects[0]->data.data);
    }
    rpc_msg_free(reply);
    rpc_client_destroy(w);
    return code;
}

int harness_pid_gone(pid_t pid, int ms)
{
    int64_t deadline = rc_mono_ms() + ms;
    do {
        if (kill(pid, 0) != 0 && errno == ESRCH)
            return 1;
        rc_sleep_ms(20);
    } while (rc_mono_ms() < deadline);
    return 0;
}
