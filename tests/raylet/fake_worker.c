/*
 * rayc-fake-worker: a stand-in for rayc-worker in raylet tests (--worker-command).
 *
 * It takes rayc-worker's command line (docs/tasks.md), serves ray.rpc.CoreWorkerService on
 * a free loopback port, registers with its raylet (RegisterClient, worker_type WORKER),
 * and answers PushTask:
 *   function "echo"   returns its first argument's bytes;
 *   function "sleep"  waits the milliseconds given as its first argument, then replies "slept";
 *   function "exit"   exits at once with the status given as its first argument (no reply);
 *   function "goodbye" says goodbye to its raylet (DisconnectClient, INTENDED_USER_EXIT,
 *                     detail "goodbye from the fake worker"), then exits with status 0;
 *   function "pid"    returns this process's pid as decimal text;
 *   an actor creation task (type ACTOR_CREATION_TASK) runs a pretend constructor named by
 *                     its class: "FailingActor" fails (application error "constructor of
 *                     FailingActor failed on purpose"), "SlowActor:<ms>" takes <ms>
 *                     milliseconds, any other class succeeds at once;
 *   anything else     an application error naming the function.
 * CoreWorkerService.KillActor is answered, then the worker exits (status 0; 1 with
 * force_kill), as an actor's worker does when the GCS kills its actor.
 *
 * Before registering it writes what it was given to $RAYC_FAKE_WORKER_DIR/<worker id>.txt
 * (one "key=value" per line: pid, CUDA_VISIBLE_DEVICES (or "<unset>"), OMP_NUM_THREADS,
 * argv[i], port), so tests can check the contract. $RAYC_FAKE_WORKER_MODE changes it:
 *   never_register   write the file, then wait without registering;
 *   exit             write the file, then exit with status 3 at once.
 *
 * It dies with its raylet (PR_SET_PDEATHSIG). Single-threaded apart from gRPC's threads.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "core_worker.pb-c.h"
#include "rayc_raylet.pb-c.h"
#include "rc_config.h"
#include "rc_ids.h"
#include "rpc.h"

typedef struct fake {
    uv_loop_t loop;
    rpc_ctx *rpc;
    rpc_server *srv;
    int port;
    rpc_client *raylet;
    uint8_t worker_id[RC_WORKER_ID_SIZE];
    uv_timer_t exit_timer;
    int exit_status;
} fake;

typedef struct sleeper {
    uv_timer_t timer;
    rpc_call *call;
} sleeper;

static void reply_bytes(rpc_call *call, const void *data, size_t len)
{
    Ray__Rpc__ReturnObject ret = RAY__RPC__RETURN_OBJECT__INIT;
    ret.data.data = (uint8_t *)data;
    ret.data.len = len;
    ret.size = (int64_t)len;
    Ray__Rpc__ReturnObject *rets[1] = {&ret};
    Ray__Rpc__PushTaskReply reply = RAY__RPC__PUSH_TASK_REPLY__INIT;
    reply.return_objects = rets;
    reply.n_return_objects = 1;
    rpc_reply(call, &reply.base);
}

static void sleeper_closed(uv_handle_t *h)
{
    free(h->data);
}

static void sleeper_done(uv_timer_t *t)
{
    sleeper *s = t->data;
    reply_bytes(s->call, "slept", 5);
    t->data = s;
    uv_close((uv_handle_t *)t, sleeper_closed);
}

static void goodbye_said(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    (void)st;
    (void)arg;
    rpc_msg_free(reply);
    _exit(0);
}

static void constructed(uv_timer_t *t)
{
    sleeper *s = t->data;
    Ray__Rpc__PushTaskReply reply = RAY__RPC__PUSH_TASK_REPLY__INIT;
    rpc_reply(s->call, &reply.base);
    uv_close((uv_handle_t *)t, sleeper_closed);
}

/* A pretend actor constructor (see the top of the file). */
static void construct(fake *f, rpc_call *call, const char *class_name)
{
    Ray__Rpc__PushTaskReply reply = RAY__RPC__PUSH_TASK_REPLY__INIT;
    if (!strcmp(class_name, "FailingActor")) {
        reply.is_application_error = 1;
        reply.task_execution_error = "constructor of FailingActor failed on purpose";
        rpc_reply(call, &reply.base);
        return;
    }
    if (!strncmp(class_name, "SlowActor:", 10)) {
        sleeper *s = calloc(1, sizeof(*s));
        s->call = call;
        uv_timer_init(&f->loop, &s->timer);
        s->timer.data = s;
        uv_timer_start(&s->timer, constructed, (uint64_t)atoll(class_name + 10), 0);
        return;
    }
    rpc_reply(call, &reply.base);
}

static void handle_push_task(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    fake *f = arg;
    const Ray__Rpc__PushTaskRequest *req = (const void *)request;
    const Ray__Rpc__TaskSpec *spec = req->task_spec;
    const char *fn = "", *class_name = "";
    if (spec && spec->function_descriptor &&
        spec->function_descriptor->function_descriptor_case ==
            RAY__RPC__FUNCTION_DESCRIPTOR__FUNCTION_DESCRIPTOR_CPP_FUNCTION_DESCRIPTOR) {
        fn = spec->function_descriptor->cpp_function_descriptor->function_name;
        class_name = spec->function_descriptor->cpp_function_descriptor->class_name;
    }
    const ProtobufCBinaryData *arg0 = spec && spec->n_args ? &spec->args[0]->data : NULL;
    if (spec && spec->type == RAY__RPC__TASK_TYPE__ACTOR_CREATION_TASK) {
        construct(f, call, class_name);
    } else if (!strcmp(fn, "pid")) {
        char text[32];
        int n = snprintf(text, sizeof(text), "%d", (int)getpid());
        reply_bytes(call, text, (size_t)n);
    } else if (!strcmp(fn, "echo")) {
        reply_bytes(call, arg0 ? arg0->data : NULL, arg0 ? arg0->len : 0);
    } else if (!strcmp(fn, "sleep")) {
        char text[32] = "0";
        if (arg0 && arg0->len < sizeof(text)) {
            memcpy(text, arg0->data, arg0->len);
            text[arg0->len] = '\0';
        }
        sleeper *s = calloc(1, sizeof(*s));
        s->call = call;
        uv_timer_init(&f->loop, &s->timer);
        s->timer.data = s;
        uv_timer_start(&s->timer, sleeper_done, (uint64_t)atoll(text), 0);
    } else if (!strcmp(fn, "exit")) {
        char text[32] = "0";
        if (arg0 && arg0->len < sizeof(text)) {
            memcpy(text, arg0->data, arg0->len);
            text[arg0->len] = '\0';
        }
        _exit(atoi(text));
    } else if (!strcmp(fn, "goodbye")) {
        Rayc__Rpc__DisconnectClientRequest bye = RAYC__RPC__DISCONNECT_CLIENT_REQUEST__INIT;
        bye.worker_id.data = f->worker_id;
        bye.worker_id.len = RC_WORKER_ID_SIZE;
        bye.exit_type = RAY__RPC__WORKER_EXIT_TYPE__INTENDED_USER_EXIT;
        bye.exit_detail = "goodbye from the fake worker";
        if (rpc_client_call(f->raylet, &rayc__rpc__local_raylet_service__descriptor, "DisconnectClient", &bye.base, 5000,
                            goodbye_said, f) < 0)
            _exit(0);
    } else {
        Ray__Rpc__PushTaskReply reply = RAY__RPC__PUSH_TASK_REPLY__INIT;
        char message[300];
        snprintf(message, sizeof(message), "the fake worker has no function '%s'", fn);
        reply.is_application_error = 1;
        reply.task_execution_error = message;
        rpc_reply(call, &reply.base);
    }
}

static void exit_now(uv_timer_t *t)
{
    fake *f = t->data;
    _exit(f->exit_status);
}

/* Exits with status once the loop has had a moment to send what was answered. */
static void exit_soon(fake *f, int status)
{
    f->exit_status = status;
    uv_timer_init(&f->loop, &f->exit_timer);
    f->exit_timer.data = f;
    uv_timer_start(&f->exit_timer, exit_now, 20, 0);
}

static void handle_kill_actor(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    fake *f = arg;
    const Ray__Rpc__KillActorRequest *req = (const void *)request;
    Ray__Rpc__KillActorReply reply = RAY__RPC__KILL_ACTOR_REPLY__INIT;
    rpc_reply(call, &reply.base);
    fprintf(stderr, "fake_worker: KillActor (force_kill %d): exiting\n", (int)req->force_kill);
    exit_soon(f, req->force_kill ? 1 : 0);
}

static const rpc_method_handler core_worker_handlers[] = {
    {"PushTask", handle_push_task}, {"KillActor", handle_kill_actor}, {NULL, NULL}};

static const char *flag_value(int argc, char **argv, const char *flag)
{
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], flag))
            return argv[i + 1];
    return NULL;
}

static void write_report(int argc, char **argv, const char *worker_hex, int port)
{
    const char *dir = getenv("RAYC_FAKE_WORKER_DIR");
    if (!dir || !*dir)
        return;
    char path[4096], tmp[4200];
    snprintf(path, sizeof(path), "%s/%s.txt", dir, worker_hex);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *out = fopen(tmp, "w");
    if (!out)
        return;
    const char *cuda = getenv("CUDA_VISIBLE_DEVICES"), *omp = getenv("OMP_NUM_THREADS");
    fprintf(out, "pid=%d\nCUDA_VISIBLE_DEVICES=%s\nOMP_NUM_THREADS=%s\nport=%d\n", (int)getpid(),
            cuda ? cuda : "<unset>", omp ? omp : "<unset>", port);
    for (int i = 0; i < argc; i++)
        fprintf(out, "argv%d=%s\n", i, argv[i]);
    fclose(out);
    rename(tmp, path);
}

/* GetCredentials for job: the process's TLS identity and the job's token. 0 or -1. */
static int take_credentials(rpc_client *raylet, const uint8_t *job_id)
{
    Rayc__Rpc__GetCredentialsRequest req = RAYC__RPC__GET_CREDENTIALS_REQUEST__INIT;
    req.job_id.data = (uint8_t *)job_id;
    req.job_id.len = RC_JOB_ID_SIZE;
    ProtobufCMessage *reply = NULL;
    char err[512];
    int code = rpc_client_call_sync(raylet, &rayc__rpc__local_raylet_service__descriptor, "GetCredentials",
                                    &req.base, 10000, &reply, err, sizeof(err));
    if (code != GRPC_STATUS_OK) {
        fprintf(stderr, "fake_worker: GetCredentials failed: %s\n", err);
        return -1;
    }
    const Rayc__Rpc__GetCredentialsReply *r = (const void *)reply;
    rpc_security sec = {.insecure = r->insecure, .ca_cert_pem = r->ca_cert_pem, .cert_pem = r->server_cert_pem,
                        .key_pem = r->server_key_pem, .token = r->job_token};
    int rc = rpc_security_set(&sec, err, sizeof(err));
    if (rc < 0)
        fprintf(stderr, "fake_worker: bad credentials from the raylet: %s\n", err);
    rpc_msg_free(reply);
    return rc < 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    rc_config_init();
    const char *socket = flag_value(argc, argv, "--raylet-socket");
    const char *worker_hex = flag_value(argc, argv, "--worker-id");
    const char *job_hex = flag_value(argc, argv, "--job-id");
    uint8_t worker_id[RC_WORKER_ID_SIZE], job_id[RC_JOB_ID_SIZE];
    if (!socket || !worker_hex || !job_hex || !flag_value(argc, argv, "--node-id") ||
        !flag_value(argc, argv, "--node-ip-address") || !flag_value(argc, argv, "--gcs-address") ||
        rc_id_from_hex(worker_hex, worker_id, sizeof(worker_id)) < 0 ||
        rc_id_from_hex(job_hex, job_id, sizeof(job_id)) < 0) {
        fprintf(stderr, "fake_worker: incomplete command line\n");
        return 2;
    }
    const char *mode = getenv("RAYC_FAKE_WORKER_MODE");
    mode = mode ? mode : "";

    static fake f;
    uv_loop_init(&f.loop);
    rpc_ctx_create(&f.loop, &f.rpc);

    /* Like a real worker: the credentials first, from the raylet over its unix socket. */
    char target[4200];
    snprintf(target, sizeof(target), "unix:%s", socket);
    rpc_client *raylet;
    rpc_client_create(f.rpc, target, NULL, &raylet);
    f.raylet = raylet;
    if (take_credentials(raylet, job_id) < 0)
        return 1;

    rpc_server_create(f.rpc, NULL, &f.srv);
    rpc_server_add_service(f.srv, &ray__rpc__core_worker_service__descriptor, core_worker_handlers, &f);
    if (rpc_server_listen(f.srv, "127.0.0.1:0", &f.port) < 0) {
        fprintf(stderr, "fake_worker: cannot listen\n");
        return 1;
    }
    rpc_server_start(f.srv);
    write_report(argc, argv, worker_hex, f.port);
    if (!strcmp(mode, "exit"))
        _exit(3);
    if (!strcmp(mode, "never_register")) {
        for (;;)
            pause();
    }

    memcpy(f.worker_id, worker_id, RC_WORKER_ID_SIZE);
    Rayc__Rpc__RegisterClientRequest reg = RAYC__RPC__REGISTER_CLIENT_REQUEST__INIT;
    reg.worker_id.data = worker_id;
    reg.worker_id.len = RC_WORKER_ID_SIZE;
    reg.worker_type = RAY__RPC__WORKER_TYPE__WORKER;
    reg.pid = getpid();
    reg.port = f.port;
    reg.job_id.data = job_id;
    reg.job_id.len = RC_JOB_ID_SIZE;
    ProtobufCMessage *reply = NULL;
    char err[300];
    int code = rpc_client_call_sync(raylet, &rayc__rpc__local_raylet_service__descriptor, "RegisterClient", &reg.base,
                                    10000, &reply, err, sizeof(err));
    if (code != GRPC_STATUS_OK) {
        fprintf(stderr, "fake_worker: RegisterClient failed: %s\n", err);
        return 1;
    }
    rpc_msg_free(reply);
    fprintf(stderr, "fake_worker: %s registered on port %d\n", worker_hex, f.port);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    return 0;
}
