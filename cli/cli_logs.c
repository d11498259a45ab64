/*
 * rayc logs: the log files of the cluster's nodes, as Ray's `ray logs`.
 *
 *   rayc logs [--node ID] [GLOB]                 list the files (of every alive node)
 *   rayc logs [--node ID] FILE                   print one file (its last --tail lines)
 *   rayc logs --worker PID [--node ID]           a worker's stdout (--err: its stderr)
 *   rayc logs --actor ID                         the stdout of the worker that runs the actor
 *   rayc logs --task ID                          what the task printed (its latest attempt)
 *   ... [--follow] [--tail N] [--err]
 *
 * The files are read through each node's raylet over the cluster's TLS and the admin token:
 * Ray's LogService.ListLogs and rayc.rpc.LogReadService (ReadLog, FindWorkerLogs), so a node
 * elsewhere is read the same way as this host's. --actor finds the worker and node in the
 * GCS's actor table; --task in its task events (the worker, node and the offsets of the
 * task's output in the worker's files). --follow asks again from the offset reached every
 * 500 ms until interrupted, and starts the file again from its beginning when the worker
 * rotated it.
 *
 * Main thread only.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli_int.h"
#include "gcs.pb-c.h"
#include "gcs_service.pb-c.h"
#include "rayc_logs.pb-c.h"
#include "rc_ids.h"
#include "reporter.pb-c.h"
#include "task_events.pb-c.h"

typedef struct cli__node {
    char id_hex[RC_ID_HEX_MAX];
    char address[300];
    rpc_client *cli;
} cli__node;

typedef struct cli__logs {
    cli_conn c;
    cli__node *nodes;
    size_t n_nodes;
    int follow, err, tail;
} cli__logs;

static volatile sig_atomic_t cli__interrupted;

static void cli__on_sigint(int sig)
{
    (void)sig;
    cli__interrupted = 1;
}

/* The alive nodes (prefix: only those whose ID starts with it). */
static int cli__load_nodes(cli__logs *L, const char *prefix)
{
    Ray__Rpc__GetAllNodeInfoRequest req = RAY__RPC__GET_ALL_NODE_INFO_REQUEST__INIT;
    ProtobufCMessage *msg;
    if (cli_call(&L->c, &ray__rpc__node_info_gcs_service__descriptor, "GetAllNodeInfo", &req.base, &msg))
        return CLI_FAIL;
    const Ray__Rpc__GetAllNodeInfoReply *r = (const void *)msg;
    L->nodes = calloc(r->n_node_info_list ? r->n_node_info_list : 1, sizeof(*L->nodes));
    for (size_t i = 0; L->nodes && i < r->n_node_info_list; i++) {
        const Ray__Rpc__GcsNodeInfo *n = r->node_info_list[i];
        if (n->state != RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__ALIVE || n->node_id.len != RC_NODE_ID_SIZE)
            continue;
        cli__node *node = &L->nodes[L->n_nodes];
        rc_id_hex(n->node_id.data, RC_NODE_ID_SIZE, node->id_hex);
        if (prefix && strncasecmp(node->id_hex, prefix, strlen(prefix)) != 0)
            continue;
        snprintf(node->address, sizeof(node->address), strchr(n->node_manager_address, ':') ? "[%s]:%d" : "%s:%d",
                 n->node_manager_address, n->node_manager_port);
        L->n_nodes++;
    }
    rpc_msg_free(msg);
    if (!L->nodes) {
        fprintf(stderr, "rayc logs: out of memory\n");
        return CLI_FAIL;
    }
    if (prefix && L->n_nodes == 0) {
        fprintf(stderr, "rayc logs: no alive node has an ID starting with '%s' (see `rayc list nodes`)\n", prefix);
        return CLI_FAIL;
    }
    if (prefix && L->n_nodes > 1) {
        fprintf(stderr, "rayc logs: %zu nodes have IDs starting with '%s': give more of the ID\n", L->n_nodes, prefix);
        return CLI_FAIL;
    }
    return CLI_OK;
}

static cli__node *cli__node_by_id(cli__logs *L, const ProtobufCBinaryData *id)
{
    char hex[RC_ID_HEX_MAX];
    if (id->len != RC_NODE_ID_SIZE)
        return NULL;
    rc_id_hex(id->data, RC_NODE_ID_SIZE, hex);
    for (size_t i = 0; i < L->n_nodes; i++)
        if (!strcmp(L->nodes[i].id_hex, hex))
            return &L->nodes[i];
    return NULL;
}

/* A synchronous call to node's raylet; prints why on failure. */
static int cli__node_call(cli__logs *L, cli__node *node, const ProtobufCServiceDescriptor *svc, const char *method,
                          const ProtobufCMessage *req, ProtobufCMessage **reply, int quiet_not_found)
{
    if (!node->cli) {
        char peer[RC_ID_HEX_MAX + 8];
        snprintf(peer, sizeof(peer), "node:%s", node->id_hex);
        rpc_client_options opts = {.peer_name = peer};
        if (rpc_client_create(L->c.rpc, node->address, &opts, &node->cli) < 0) {
            fprintf(stderr, "rayc logs: cannot open a channel to node %.16s at %s\n", node->id_hex, node->address);
            return CLI_FAIL;
        }
    }
    char err[512] = "";
    int code = rpc_client_call_sync(node->cli, svc, method, req, 10000, reply, err, sizeof(err));
    if (code == GRPC_STATUS_OK)
        return CLI_OK;
    if (!(quiet_not_found && code == GRPC_STATUS_NOT_FOUND))
        fprintf(stderr, "rayc logs: %s on node %.16s (%s) failed: %s (%s)\n", method, node->id_hex, node->address, err,
                rpc_code_name((grpc_status_code)code));
    return code == GRPC_STATUS_NOT_FOUND ? -GRPC_STATUS_NOT_FOUND : CLI_FAIL;
}

static int cli__list(cli__logs *L, const char *glob)
{
    Ray__Rpc__ListLogsRequest req = RAY__RPC__LIST_LOGS_REQUEST__INIT;
    req.glob_filter = (char *)(glob ? glob : "");
    int failed = 0;
    for (size_t i = 0; i < L->n_nodes; i++) {
        ProtobufCMessage *msg;
        if (cli__node_call(L, &L->nodes[i], &ray__rpc__log_service__descriptor, "ListLogs", &req.base, &msg, 0) !=
            CLI_OK) {
            failed = 1;
            continue;
        }
        const Ray__Rpc__ListLogsReply *r = (const void *)msg;
        printf("=== node %s (%s) ===\n", L->nodes[i].id_hex, L->nodes[i].address);
        for (size_t k = 0; k < r->n_log_files; k++)
            printf("%s\n", r->log_files[k]);
        rpc_msg_free(msg);
    }
    return failed ? CLI_FAIL : CLI_OK;
}

/* Prints file of node: the bytes [start, end) (end 0: to the end; start < 0: the last
 * L->tail lines), then follows it when asked. */
static int cli__print(cli__logs *L, cli__node *node, const char *file, int64_t start, int64_t end)
{
    int64_t offset = start;
    int32_t lines = L->tail;
    if (offset < 0 && lines < 0)
        offset = 0; /* --tail -1: the whole file */
    int first = 1;
    for (;;) {
        Rayc__Rpc__ReadLogRequest req = RAYC__RPC__READ_LOG_REQUEST__INIT;
        req.log_file_name = (char *)file;
        req.offset = offset;
        req.lines = lines;
        req.end_offset = end;
        ProtobufCMessage *msg;
        int rc = cli__node_call(L, node, &rayc__rpc__log_read_service__descriptor, "ReadLog", &req.base, &msg, 0);
        if (rc != CLI_OK)
            return CLI_FAIL;
        const Rayc__Rpc__ReadLogReply *r = (const void *)msg;
        if (r->data.len)
            fwrite(r->data.data, 1, r->data.len, stdout);
        int64_t next = r->offset + (int64_t)r->data.len;
        int64_t size = r->file_size;
        rpc_msg_free(msg);
        fflush(stdout);
        first = 0;
        int more = next < (end > 0 ? end : size);
        if (more) {
            offset = next;
            continue;
        }
        if (!L->follow || end > 0)
            return CLI_OK;
        /* Follow: wait, then ask from where we are; a smaller file was rotated. */
        for (int i = 0; i < 5 && !cli__interrupted; i++)
            usleep(100 * 1000);
        if (cli__interrupted)
            return CLI_OK;
        offset = next;
        Rayc__Rpc__ReadLogRequest probe = RAYC__RPC__READ_LOG_REQUEST__INIT;
        probe.log_file_name = (char *)file;
        probe.offset = next;
        probe.max_bytes = 1;
        if (cli__node_call(L, node, &rayc__rpc__log_read_service__descriptor, "ReadLog", &probe.base, &msg, 0) !=
            CLI_OK)
            return CLI_FAIL;
        if (((const Rayc__Rpc__ReadLogReply *)msg)->file_size < next)
            offset = 0;
        rpc_msg_free(msg);
        (void)first;
    }
}

/* Prints FILE of the one node that has it (or of --node). */
static int cli__print_file(cli__logs *L, const char *file)
{
    cli__node *found = NULL;
    size_t n_found = 0;
    Ray__Rpc__ListLogsRequest req = RAY__RPC__LIST_LOGS_REQUEST__INIT;
    req.glob_filter = (char *)file;
    for (size_t i = 0; i < L->n_nodes; i++) {
        ProtobufCMessage *msg;
        if (cli__node_call(L, &L->nodes[i], &ray__rpc__log_service__descriptor, "ListLogs", &req.base, &msg, 0) !=
            CLI_OK)
            return CLI_FAIL;
        const Ray__Rpc__ListLogsReply *r = (const void *)msg;
        for (size_t k = 0; k < r->n_log_files; k++)
            if (!strcmp(r->log_files[k], file)) {
                found = &L->nodes[i];
                n_found++;
            }
        rpc_msg_free(msg);
    }
    if (n_found == 0)
        return -1; /* the caller lists instead (GLOB) */
    if (n_found > 1) {
        fprintf(stderr, "rayc logs: %zu nodes have a file %s: choose one with --node ID\n", n_found, file);
        return CLI_USAGE;
    }
    return cli__print(L, found, file, -1, 0);
}

/* Finds a worker's files on node by pid or worker ID; 0 with out/err set, or -1. */
static int cli__find_worker(cli__logs *L, cli__node *node, int pid, const ProtobufCBinaryData *worker_id, char *out,
                            char *err, int quiet)
{
    Rayc__Rpc__FindWorkerLogsRequest req = RAYC__RPC__FIND_WORKER_LOGS_REQUEST__INIT;
    req.pid = pid;
    if (worker_id)
        req.worker_id = *worker_id;
    ProtobufCMessage *msg;
    if (cli__node_call(L, node, &rayc__rpc__log_read_service__descriptor, "FindWorkerLogs", &req.base, &msg, quiet) !=
        CLI_OK)
        return -1;
    const Rayc__Rpc__FindWorkerLogsReply *r = (const void *)msg;
    snprintf(out, 96, "%s", r->stdout_file);
    snprintf(err, 96, "%s", r->stderr_file);
    rpc_msg_free(msg);
    return 0;
}

static int cli__print_worker(cli__logs *L, cli__node *node, const char *out, const char *err, int64_t start,
                             int64_t end)
{
    const char *file = L->err ? err : out;
    if (!file[0]) {
        fprintf(stderr, "rayc logs: the worker has no %s file on node %.16s\n", L->err ? "stderr" : "stdout",
                node->id_hex);
        return CLI_FAIL;
    }
    return cli__print(L, node, file, start, end);
}

static int cli__worker(cli__logs *L, int pid)
{
    cli__node *found = NULL;
    char out[96], err[96], fout[96] = "", ferr[96] = "";
    size_t n_found = 0;
    for (size_t i = 0; i < L->n_nodes; i++)
        if (cli__find_worker(L, &L->nodes[i], pid, NULL, out, err, 1) == 0) {
            found = &L->nodes[i];
            n_found++;
            memcpy(fout, out, sizeof(out));
            memcpy(ferr, err, sizeof(err));
        }
    if (n_found == 0) {
        fprintf(stderr, "rayc logs: no %s has log files of a worker with pid %d\n",
                L->n_nodes == 1 ? "such node" : "alive node", pid);
        return CLI_FAIL;
    }
    if (n_found > 1) {
        fprintf(stderr, "rayc logs: workers with pid %d ran on %zu nodes: choose one with --node ID\n", pid, n_found);
        return CLI_USAGE;
    }
    return cli__print_worker(L, found, fout, ferr, -1, 0);
}

static int cli__actor(cli__logs *L, const char *hex)
{
    uint8_t id[RC_ACTOR_ID_SIZE];
    if (strlen(hex) != 2 * RC_ACTOR_ID_SIZE || rc_id_from_hex(hex, id, sizeof(id)) < 0) {
        fprintf(stderr, "rayc logs: '%s' is not an actor ID (%d hex digits, as `rayc list actors` prints)\n", hex,
                2 * RC_ACTOR_ID_SIZE);
        return CLI_USAGE;
    }
    Ray__Rpc__GetActorInfoRequest req = RAY__RPC__GET_ACTOR_INFO_REQUEST__INIT;
    req.actor_id.data = id;
    req.actor_id.len = sizeof(id);
    ProtobufCMessage *msg;
    if (cli_call(&L->c, &ray__rpc__actor_info_gcs_service__descriptor, "GetActorInfo", &req.base, &msg))
        return CLI_FAIL;
    const Ray__Rpc__GetActorInfoReply *r = (const void *)msg;
    const Ray__Rpc__ActorTableData *a = r->actor_table_data;
    const Ray__Rpc__Address *addr = a ? a->address : NULL;
    if (!addr || addr->worker_id.len != RC_WORKER_ID_SIZE) {
        fprintf(stderr, "rayc logs: actor %s has no worker yet (state %s)\n", hex,
                a ? protobuf_c_enum_descriptor_get_value(&ray__rpc__actor_table_data__actor_state__descriptor, a->state)
                        ->name
                  : "unknown");
        rpc_msg_free(msg);
        return CLI_FAIL;
    }
    const ProtobufCBinaryData *node_id = addr->node_id.len ? &addr->node_id : &a->node_id;
    cli__node *node = cli__node_by_id(L, node_id);
    if (!node) {
        fprintf(stderr, "rayc logs: the node of actor %s is not alive (its logs went with it)\n", hex);
        rpc_msg_free(msg);
        return CLI_FAIL;
    }
    char out[96], err[96];
    int rc = cli__find_worker(L, node, 0, &addr->worker_id, out, err, 0);
    rpc_msg_free(msg);
    if (rc < 0)
        return CLI_FAIL;
    return cli__print_worker(L, node, out, err, -1, 0);
}

static const char *cli__base(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static int cli__task(cli__logs *L, const char *hex)
{
    uint8_t id[RC_TASK_ID_SIZE];
    if (strlen(hex) != 2 * RC_TASK_ID_SIZE || rc_id_from_hex(hex, id, sizeof(id)) < 0) {
        fprintf(stderr, "rayc logs: '%s' is not a task ID (%d hex digits, as `rayc list tasks` prints)\n", hex,
                2 * RC_TASK_ID_SIZE);
        return CLI_USAGE;
    }
    Ray__Rpc__GetTaskEventsRequest__Filters__TaskIdFilter tf = RAY__RPC__GET_TASK_EVENTS_REQUEST__FILTERS__TASK_ID_FILTER__INIT;
    tf.task_id.data = id;
    tf.task_id.len = sizeof(id);
    Ray__Rpc__GetTaskEventsRequest__Filters__TaskIdFilter *tfp = &tf;
    Ray__Rpc__GetTaskEventsRequest__Filters f = RAY__RPC__GET_TASK_EVENTS_REQUEST__FILTERS__INIT;
    f.task_filters = &tfp;
    f.n_task_filters = 1;
    Ray__Rpc__GetTaskEventsRequest req = RAY__RPC__GET_TASK_EVENTS_REQUEST__INIT;
    req.filters = &f;
    ProtobufCMessage *msg;
    if (cli_task_events(&L->c, &req, &msg) != CLI_OK)
        return CLI_FAIL;
    const Ray__Rpc__GetTaskEventsReply *r = (const void *)msg;
    const Ray__Rpc__TaskEvents *best = NULL;
    for (size_t i = 0; i < r->n_events_by_task; i++) {
        const Ray__Rpc__TaskEvents *ev = r->events_by_task[i];
        const Ray__Rpc__TaskStateUpdate *su = ev->state_updates;
        if (su && su->_worker_id_case && (!best || ev->attempt_number > best->attempt_number))
            best = ev;
    }
    if (!best) {
        fprintf(stderr, "rayc logs: %s: no run of task %s is known (not run yet, or its events not reported yet)\n",
                r->n_events_by_task ? "the task has not run on a worker" : "unknown task", hex);
        rpc_msg_free(msg);
        return CLI_FAIL;
    }
    const Ray__Rpc__TaskStateUpdate *su = best->state_updates;
    cli__node *node = su->_node_id_case ? cli__node_by_id(L, &su->node_id) : NULL;
    if (!node) {
        fprintf(stderr, "rayc logs: the node that ran task %s is not alive (its logs went with it)\n", hex);
        rpc_msg_free(msg);
        return CLI_FAIL;
    }
    const Ray__Rpc__TaskLogInfo *li = su->task_log_info;
    char out[96] = "", err[96] = "";
    int64_t start = -1, end = 0;
    if (li) {
        if (li->_stdout_file_case)
            snprintf(out, sizeof(out), "%s", cli__base(li->stdout_file));
        if (li->_stderr_file_case)
            snprintf(err, sizeof(err), "%s", cli__base(li->stderr_file));
        int has_start = L->err ? li->_stderr_start_case != 0 : li->_stdout_start_case != 0;
        int has_end = L->err ? li->_stderr_end_case != 0 : li->_stdout_end_case != 0;
        int32_t s = L->err ? li->stderr_start : li->stdout_start, e = L->err ? li->stderr_end : li->stdout_end;
        if (has_start) {
            start = s;
            if (has_end && e > s)
                end = e;
            else if (has_end)
                end = -1; /* it printed nothing (or the file was rotated meanwhile) */
        }
    }
    int rc;
    if (!out[0] && !err[0])
        rc = cli__find_worker(L, node, 0, &su->worker_id, out, err, 0);
    else
        rc = 0;
    rpc_msg_free(msg);
    if (rc < 0)
        return CLI_FAIL;
    if (end < 0)
        return CLI_OK;
    return cli__print_worker(L, node, out, err, start, end);
}

static const cli_opt cli__logs_opts[] = {
    {"--node", NULL, "ID", "every alive node", "a node ID or a unique prefix of one (`rayc list nodes`)", NULL},
    {"--worker", NULL, "PID", NULL, "the stdout of the worker process PID (--err: its stderr)", NULL},
    {"--actor", NULL, "ID", NULL, "the stdout of the worker that runs the actor (`rayc list actors`)", NULL},
    {"--task", NULL, "ID", NULL, "what the task printed (its latest attempt; `rayc list tasks`)", NULL},
    {"--tail", NULL, "N", "1000", "print the last N lines (-1: the whole file)", NULL},
    {"--follow", "-f", NULL, NULL, "keep printing what is appended until interrupted (^C)", NULL},
    {"--err", NULL, NULL, NULL, "stderr instead of stdout", NULL},
    CLI_OPT_ADDRESS,
};
static const cli_spec cli__logs_spec = {
    "rayc logs", "[FILE|GLOB]",
    "Lists the log files of every alive node (or of --node) matching GLOB, prints FILE, or prints a\n"
    "worker's, an actor's or a task's output (Ray's 'ray logs'), read through each node's raylet.",
    NULL, CLI_SPEC_OPTS(cli__logs_opts), 0, 1,
};

int cli_cmd_logs(int argc, char **argv)
{
    cli_args args;
    int prc = cli_parse(&cli__logs_spec, argc, argv, &args);
    if (prc != CLI_OK)
        return CLI_PARSED_EXIT(prc);
    cli__logs L;
    memset(&L, 0, sizeof(L));
    const char *address = cli_arg(&args, "--address"), *node = cli_arg(&args, "--node");
    const char *actor = cli_arg(&args, "--actor"), *task = cli_arg(&args, "--task");
    const char *file = args.n_pos ? args.pos[0] : NULL;
    long pid = 0, tail = 1000;
    if (cli_arg_int(&args, "--worker", 1, 0x7fffffff, 0, &pid) != CLI_OK ||
        cli_arg_int(&args, "--tail", -1, 100000000, 1000, &tail) != CLI_OK)
        return CLI_USAGE;
    L.tail = (int)tail;
    L.follow = cli_arg(&args, "--follow") != NULL;
    L.err = cli_arg(&args, "--err") != NULL;
    if ((pid != 0) + (actor != NULL) + (task != NULL) + (file != NULL) > 1) {
        return cli_usage_error(&cli__logs_spec, "give one of FILE, --worker, --actor and --task");
    }
    if (cli_connect(&L.c, address) != CLI_OK)
        return CLI_FAIL;
    int rc = cli__load_nodes(&L, node);
    if (rc == CLI_OK && L.n_nodes == 0) {
        fprintf(stderr, "rayc logs: the cluster has no alive node\n");
        rc = CLI_FAIL;
    }
    struct sigaction sa, old;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = cli__on_sigint;
    sigaction(SIGINT, &sa, &old);
    if (rc != CLI_OK) {
        /* nothing more */
    } else if (pid) {
        rc = cli__worker(&L, (int)pid);
    } else if (actor) {
        rc = cli__actor(&L, actor);
    } else if (task) {
        rc = cli__task(&L, task);
    } else if (file && !strpbrk(file, "*?[")) {
        rc = cli__print_file(&L, file);
        if (rc == -1) {
            fprintf(stderr, "rayc logs: no %s has a log file named %s\n", node ? "such node" : "alive node", file);
            rc = CLI_FAIL;
        }
    } else {
        rc = cli__list(&L, file);
    }
    sigaction(SIGINT, &old, NULL);
    for (size_t i = 0; i < L.n_nodes; i++)
        if (L.nodes[i].cli)
            rpc_client_destroy(L.nodes[i].cli);
    free(L.nodes);
    cli_disconnect(&L.c);
    return rc;
}
