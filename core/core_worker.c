/*
 * The core worker: start and stop, the loop thread and the hand-off to it, connections
 * (GCS, the local raylet over its unix socket, other raylets and workers), the node table
 * and the CoreWorkerService server.
 *
 * Start runs on the calling thread, which drives the loop itself with synchronous calls
 * (credentials, GCS handshake, job registration, RegisterClient); only then does the loop
 * thread take the loop over. Credentials come first (ARCHITECTURE §14): a worker asks its
 * raylet (GetCredentials over the unix socket) for the CA, the node's worker-serving
 * certificate and a token of its job; a driver takes its CA and token from its environment
 * (or the local cluster it started), then the serving certificate from its raylet. The
 * CoreWorkerService is created only then, on the node's IP, never on every interface.
 *
 * Stop is the mirror: the loop thread is stopped and joined, and the calling thread finishes
 * the conversation (MarkJobFinished, DisconnectClient) and frees everything.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core_int.h"
#include "gcs_client_auth.h"
#include "rc_alloc.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_log.h"
#include "rc_net.h"
#include "rc_session.h"
#include "rc_time.h"

core_worker *core__cw;

/* ---- hand-off ------------------------------------------------------------------------- */

void core_post(core_worker *cw, core_op *op)
{
    op->next = NULL;
    pthread_mutex_lock(&cw->op_mu);
    if (cw->ops_tail)
        cw->ops_tail->next = op;
    else
        cw->ops_head = op;
    cw->ops_tail = op;
    pthread_mutex_unlock(&cw->op_mu);
    uv_async_send(&cw->wakeup);
}

static void core__drain_ops(uv_async_t *h)
{
    core_worker *cw = h->data;
    pthread_mutex_lock(&cw->op_mu);
    core_op *op = cw->ops_head;
    cw->ops_head = cw->ops_tail = NULL;
    pthread_mutex_unlock(&cw->op_mu);
    while (op) {
        core_op *next = op->next;
        op->run(cw, op);
        op = next;
    }
}

void core_waiter_init(core_waiter *w)
{
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->done = 0;
    w->rc = 0;
}

void core_waiter_destroy(core_waiter *w)
{
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
}

void core_waiter_signal(core_waiter *w, int rc)
{
    pthread_mutex_lock(&w->mu);
    w->done = 1;
    w->rc = rc;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int core_waiter_wait(core_waiter *w)
{
    pthread_mutex_lock(&w->mu);
    while (!w->done)
        pthread_cond_wait(&w->cv, &w->mu);
    int rc = w->rc;
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* ---- clients -------------------------------------------------------------------------- */

static rpc_client *core__client_in(core_worker *cw, rc_map *m, const char *address)
{
    rpc_client *c = rc_map_get_str(m, address);
    if (c)
        return c;
    if (rpc_client_create(cw->rpc, address, NULL, &c) < 0)
        return NULL;
    rc_map_put_str(m, address, c);
    return c;
}

rpc_client *core_raylet_client(core_worker *cw, const char *address)
{
    return core__client_in(cw, &cw->raylet_clients, address);
}

rpc_client *core_worker_client(core_worker *cw, const char *address)
{
    return core__client_in(cw, &cw->worker_clients, address);
}

void core_address_text(const Ray__Rpc__Address *a, char *out, size_t len)
{
    snprintf(out, len, "%s:%d", a->ip_address ? a->ip_address : "", a->port);
}

const char *core_node_address(core_worker *cw, const uint8_t *node_id)
{
    core_node *n = rc_map_get(&cw->nodes, node_id, RC_NODE_ID_SIZE);
    return n && n->alive ? n->address : NULL;
}

/* ---- node table ----------------------------------------------------------------------- */

static void core__track_node(core_worker *cw, const Ray__Rpc__GcsNodeInfo *info)
{
    if (info->node_id.len != RC_NODE_ID_SIZE)
        return;
    core_node *n = rc_map_get(&cw->nodes, info->node_id.data, RC_NODE_ID_SIZE);
    int alive = info->state == RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__ALIVE;
    if (!n) {
        if (!alive)
            return;
        n = RC_NEW(core_node);
        memcpy(n->id, info->node_id.data, RC_NODE_ID_SIZE);
        rc_map_put(&cw->nodes, n->id, RC_NODE_ID_SIZE, n);
    }
    snprintf(n->address, sizeof(n->address), "%s:%d", info->node_manager_address, info->node_manager_port);
    int was_alive = n->alive;
    n->alive = alive;
    if (was_alive && !alive) {
        char hex[RC_ID_HEX_MAX];
        RC_INFO("core: node %s died; retrying its tasks elsewhere", rc_id_hex(n->id, RC_NODE_ID_SIZE, hex));
        core_submit_node_died(cw, n->id);
        core_refs_node_died(cw, n->id);
        core_get_node_died(cw, n->id);
    }
}

static void core__on_node_message(const Ray__Rpc__PubMessage *m, void *arg)
{
    if (m->inner_message_case == RAY__RPC__PUB_MESSAGE__INNER_MESSAGE_NODE_INFO_MESSAGE)
        core__track_node(arg, m->node_info_message);
    else if (m->inner_message_case == RAY__RPC__PUB_MESSAGE__INNER_MESSAGE_ACTOR_MESSAGE)
        core_actor_on_message(arg, m->actor_message);
}

static void core__nodes_fetched(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    core_worker *cw = arg;
    if (st->code == GRPC_STATUS_OK && !cw->stopping) {
        Ray__Rpc__GetAllNodeInfoReply *r = (Ray__Rpc__GetAllNodeInfoReply *)reply;
        for (size_t i = 0; i < r->n_node_info_list; i++)
            core__track_node(cw, r->node_info_list[i]);
    }
    rpc_msg_free(reply);
}

static void core__on_subscribed(void *arg)
{
    core_worker *cw = arg;
    Ray__Rpc__GetAllNodeInfoRequest req = RAY__RPC__GET_ALL_NODE_INFO_REQUEST__INIT;
    rpc_client_call(gcs_client_rpc(cw->gcs), &ray__rpc__node_info_gcs_service__descriptor, "GetAllNodeInfo",
                    &req.base, rc_cfg.gcs_rpc_timeout_ms, core__nodes_fetched, cw);
    core_actor_refresh_all(cw); /* what changed while we were not subscribed */
}

/* ---- credentials (ARCHITECTURE §14) ----------------------------------------------------- */

/* A driver's first security, before it has talked to anyone: the local cluster's admin
 * credentials when rayc_init started one, else the environment (RAYC_INSECURE,
 * RAYC_CA_CERT, RAYC_AUTH_TOKEN[_PATH], the latest session). */
static int core__driver_security(core_worker *cw, char *err, size_t errlen)
{
    if (cw->local_insecure) {
        rpc_security sec = {.insecure = 1};
        return rpc_security_set(&sec, err, errlen);
    }
    if (cw->local_ca_pem) {
        rpc_security sec = {.ca_cert_pem = cw->local_ca_pem, .token = cw->local_token};
        return rpc_security_set(&sec, err, errlen);
    }
    return gcs_auth_client_security(cw->gcs_address, err, errlen);
}

/* LocalRayletService.GetCredentials over the raylet's unix socket (plaintext by design: only
 * this user reaches it). job_id NULL: no job token wanted. */
static int core__get_credentials(core_worker *cw, const uint8_t *job_id, Rayc__Rpc__GetCredentialsReply **out,
                                 char *err, size_t errlen)
{
    Rayc__Rpc__GetCredentialsRequest req = RAYC__RPC__GET_CREDENTIALS_REQUEST__INIT;
    if (job_id) {
        req.job_id.data = (uint8_t *)job_id;
        req.job_id.len = RC_JOB_ID_SIZE;
    }
    char msg[512] = "";
    ProtobufCMessage *reply = NULL;
    int code = rpc_client_call_sync(cw->raylet_local, &rayc__rpc__local_raylet_service__descriptor, "GetCredentials",
                                    &req.base, rc_cfg.gcs_rpc_timeout_ms, &reply, msg, sizeof(msg));
    if (code != GRPC_STATUS_OK) {
        snprintf(err, errlen, "the raylet at %s gave no credentials: %s (%s)", cw->raylet_socket, msg,
                 rpc_code_name((grpc_status_code)code));
        return rpc_code_to_rc((grpc_status_code)code);
    }
    *out = (Rayc__Rpc__GetCredentialsReply *)reply;
    return 0;
}

/* A worker's security, all from its raylet: the CA, the node's worker-serving certificate
 * and a token scoped to its job. */
static int core__worker_security(core_worker *cw, char *err, size_t errlen)
{
    Rayc__Rpc__GetCredentialsReply *r;
    int rc = core__get_credentials(cw, cw->job_id, &r, err, errlen);
    if (rc < 0)
        return rc;
    rpc_security sec = {.insecure = 1};
    if (!r->insecure) {
        if (!r->ca_cert_pem[0] || !r->server_cert_pem[0] || !r->server_key_pem[0] || !r->job_token[0]) {
            char hex[RC_ID_HEX_MAX];
            snprintf(err, errlen, "the raylet at %s gave incomplete credentials for job %s", cw->raylet_socket,
                     rc_id_hex(cw->job_id, RC_JOB_ID_SIZE, hex));
            rpc_msg_free(&r->base);
            return RC_EAUTH;
        }
        sec = (rpc_security){.ca_cert_pem = r->ca_cert_pem,
                             .cert_pem = r->server_cert_pem,
                             .key_pem = r->server_key_pem,
                             .token = r->job_token};
    }
    rc = rpc_security_set(&sec, err, errlen);
    rpc_msg_free(&r->base);
    return rc;
}

/* A driver, once it knows its raylet: the certificate its CoreWorkerService serves with (the
 * node's worker-serving one), keeping the CA and token it already uses. */
static int core__driver_serving_security(core_worker *cw, char *err, size_t errlen)
{
    const rpc_security *cur = rpc_security_get();
    Rayc__Rpc__GetCredentialsReply *r;
    int rc = core__get_credentials(cw, NULL, &r, err, errlen);
    if (rc < 0)
        return rc;
    if (cur->insecure || r->insecure) {
        if (!cur->insecure)
            snprintf(err, errlen, "the raylet at %s runs --insecure but this driver expects a secure cluster; "
                                  "set RAYC_INSECURE=1 for an insecure development cluster", cw->raylet_socket);
        rpc_msg_free(&r->base);
        return cur->insecure ? 0 : RC_EAUTH;
    }
    if (!r->server_cert_pem[0] || !r->server_key_pem[0]) {
        snprintf(err, errlen, "the raylet at %s has no worker certificate to serve with", cw->raylet_socket);
        rpc_msg_free(&r->base);
        return RC_EAUTH;
    }
    /* cur's strings are replaced by the set below: copy them first. */
    char *ca = rc_strdup(cur->ca_cert_pem), *token = cur->token ? rc_strdup(cur->token) : NULL;
    rpc_security sec = {
        .ca_cert_pem = ca, .cert_pem = r->server_cert_pem, .key_pem = r->server_key_pem, .token = token};
    rc = rpc_security_set(&sec, err, errlen);
    rpc_msg_free(&r->base);
    rc_free(ca);
    if (token) {
        memset(token, 0, strlen(token));
        rc_free(token);
    }
    return rc;
}

/* The CoreWorkerService (owners answer borrowers, workers take tasks), on the node's IP only:
 * created once the process has the certificate it serves with. */
static int core__serve(core_worker *cw, int is_worker, char *err, size_t errlen)
{
    int rc = rpc_server_create(cw->rpc, NULL, &cw->srv);
    if (rc < 0) {
        snprintf(err, errlen, "cannot create the CoreWorkerService server: %s", rc_strerror(rc));
        return rc;
    }
    rpc_server_add_service(cw->srv, &ray__rpc__core_worker_service__descriptor, core_owner_handlers, cw);
    rpc_server_add_service(cw->srv, &ray__rpc__core_worker_service__descriptor, core_generator_handlers, cw);
    if (is_worker)
        rpc_server_add_service(cw->srv, &ray__rpc__core_worker_service__descriptor, core_exec_handlers, cw);
    gcs_revocations_attach(cw->srv, &cw->revocations);
    gcs_revocations_follow(cw->revocations, cw->gcs);
    char addr[128];
    snprintf(addr, sizeof(addr), strchr(cw->node_ip, ':') ? "[%s]:0" : "%s:0", cw->node_ip);
    if ((rc = rpc_server_listen(cw->srv, addr, &cw->port)) < 0 || (rc = rpc_server_start(cw->srv)) < 0) {
        snprintf(err, errlen, "cannot serve CoreWorkerService on %s: %s", addr, rc_strerror(rc));
        return rc;
    }
    return 0;
}

/* ---- start ---------------------------------------------------------------------------- */

static int core__sync(core_worker *cw, rpc_client *cli, const ProtobufCServiceDescriptor *svc, const char *method,
                      const ProtobufCMessage *req, ProtobufCMessage **reply, char *err, size_t errlen)
{
    (void)cw;
    char msg[300] = "";
    /* A call lost on the way (a connection that broke, a reply that never came) is asked
     * again, as Ray's GCS client does: these calls are reads, or writes that repeat
     * harmlessly (AddJob stores the same record; a lost GetNextJobID leaves a gap). */
    int code = GRPC_STATUS_UNAVAILABLE;
    for (int attempt = 0; attempt < 3; attempt++) {
        code = rpc_client_call_sync(cli, svc, method, req, rc_cfg.gcs_rpc_timeout_ms, reply, msg, sizeof(msg));
        if (code != GRPC_STATUS_UNAVAILABLE && code != GRPC_STATUS_DEADLINE_EXCEEDED)
            break;
        RC_WARN("core: %s failed (%s: %s); asking again", method, rpc_code_name((grpc_status_code)code), msg);
    }
    if (code != GRPC_STATUS_OK) {
        snprintf(err, errlen, "%s failed: %s (%s)", method, msg, rpc_code_name((grpc_status_code)code));
        return RC_EUNAVAIL;
    }
    const char *gmsg;
    int status = gcs_reply_status(*reply, &gmsg);
    if (status != GCS_STATUS_OK) {
        snprintf(err, errlen, "%s failed: %s", method, gmsg);
        rpc_msg_free(*reply);
        *reply = NULL;
        return RC_EINVAL;
    }
    return 0;
}

/* Picks the raylet of this host: RAYC_RAYLET_SOCKET, else an alive node whose socket file
 * exists here, the head first. */
static int core__find_local_raylet(core_worker *cw, const Ray__Rpc__GetAllNodeInfoReply *nodes, char *err, size_t errlen)
{
    const char *env = getenv("RAYC_RAYLET_SOCKET");
    const Ray__Rpc__GcsNodeInfo *best = NULL;
    for (size_t i = 0; i < nodes->n_node_info_list; i++) {
        const Ray__Rpc__GcsNodeInfo *n = nodes->node_info_list[i];
        if (n->state != RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__ALIVE || !n->raylet_socket_name ||
            !n->raylet_socket_name[0] || n->node_id.len != RC_NODE_ID_SIZE)
            continue;
        if (env && *env) {
            if (!strcmp(env, n->raylet_socket_name)) {
                best = n;
                break;
            }
            continue;
        }
        if (access(n->raylet_socket_name, F_OK) != 0)
            continue;
        if (!best || (n->is_head_node && !best->is_head_node))
            best = n;
    }
    if (!best) {
        snprintf(err, errlen, "no raylet of this cluster runs on this host%s%s", env ? " with socket " : "",
                 env ? env : "");
        return RC_ENOENT;
    }
    snprintf(cw->raylet_socket, sizeof(cw->raylet_socket), "%s", best->raylet_socket_name);
    memcpy(cw->node_id, best->node_id.data, RC_NODE_ID_SIZE);
    snprintf(cw->node_ip, sizeof(cw->node_ip), "%s", best->node_manager_address);
    return 0;
}

static int core__map_store(core_worker *cw, const char *path, uint64_t size, char *err, size_t errlen)
{
    if (!path || !*path || !size)
        return 0; /* a raylet without a store: small objects only */
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open the object store %s: %s", path, strerror(errno));
        return RC_EIO;
    }
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        snprintf(err, errlen, "cannot map the object store %s: %s", path, strerror(errno));
        close(fd);
        return RC_EIO;
    }
    cw->store_base = p;
    cw->store_size = size;
    cw->store_fd = fd; /* puts write through it (core_store_put) */
    return 0;
}

static void core__loop_main(void *arg)
{
    core_worker *cw = arg;
    uv_run(&cw->loop, UV_RUN_DEFAULT);
}

static void core__backlog_tick(uv_timer_t *t)
{
    core_submit_backlog_tick(t->data);
    core_actor_tick(t->data);
    core_pg_tick(t->data);
}

/* Whether the raylet that started this worker has exited: the worker was handed to
 * another parent, or the raylet is a zombie not yet reaped. */
static int core__raylet_gone(core_worker *cw)
{
    return getppid() != cw->parent_pid || !rc_pid_running(cw->parent_pid);
}

static void core__parent_check(uv_timer_t *t)
{
    core_worker *cw = t->data;
    /* A worker whose raylet is gone has nobody to work for. */
    if (core__raylet_gone(cw)) {
        RC_WARN("core: the raylet that started this worker is gone; exiting");
        _exit(1);
    }
}

void core_worker_raylet_call_failed(core_worker *cw, int grpc_code)
{
    if (!cw->is_worker || grpc_code != GRPC_STATUS_UNAVAILABLE)
        return;
    /* A killed raylet closes its sockets a moment before it exits: wait that moment. */
    for (int i = 0; i < 100; i++) {
        if (core__raylet_gone(cw)) {
            RC_WARN("core: the raylet that started this worker is gone; exiting");
            _exit(1);
        }
        usleep(10 * 1000);
    }
}

int core_start(core_worker *cw, const rayc_init_options *opts, int is_worker, const char *raylet_socket,
               const uint8_t *worker_id, const uint8_t *node_id, const char *node_ip)
{
    char err[768] = "";
    int rc;
    cw->is_worker = is_worker;
    cw->parent_pid = getppid();
    uv_loop_init(&cw->loop);
    pthread_mutex_init(&cw->op_mu, NULL);
    pthread_mutex_init(&cw->exec_mu, NULL);
    rc_list_init(&cw->exec_queue);
    pthread_cond_init(&cw->exec_cv, NULL);
    uv_async_init(&cw->loop, &cw->wakeup, core__drain_ops);
    cw->wakeup.data = cw;
    core_memstore_init(&cw->memstore);
    rc_map_init(&cw->refs);
    rc_map_init(&cw->tasks);
    rc_map_init(&cw->lineage);
    rc_list_init(&cw->lineage_order);
    rc_map_init(&cw->keys);
    rc_map_init(&cw->nodes);
    rc_map_init(&cw->raylet_clients);
    rc_map_init(&cw->worker_clients);
    rc_map_init(&cw->plasma_pins);
    rc_map_init(&cw->actor_callers);
    rc_map_init(&cw->actors);
    rc_map_init(&cw->pgs);
    rc_id_random(cw->task_prefix, sizeof(cw->task_prefix));
    if (worker_id)
        memcpy(cw->worker_id, worker_id, RC_WORKER_ID_SIZE);
    else
        rc_id_random(cw->worker_id, RC_WORKER_ID_SIZE);
    if ((rc = rpc_ctx_create(&cw->loop, &cw->rpc)) < 0) {
        snprintf(err, sizeof(err), "cannot start gRPC: %s", rc_strerror(rc));
        goto fail;
    }

    char target[600];
    if (raylet_socket) {
        /* A worker: its raylet is known from its command line and gives it everything. */
        snprintf(cw->raylet_socket, sizeof(cw->raylet_socket), "%s", raylet_socket);
        memcpy(cw->node_id, node_id, RC_NODE_ID_SIZE);
        snprintf(cw->node_ip, sizeof(cw->node_ip), "%s", node_ip);
        snprintf(target, sizeof(target), "unix:%s", cw->raylet_socket);
        if ((rc = rpc_client_create(cw->rpc, target, NULL, &cw->raylet_local)) < 0 ||
            (rc = core__worker_security(cw, err, sizeof(err))) < 0)
            goto fail;
    } else if ((rc = core__driver_security(cw, err, sizeof(err))) < 0) {
        goto fail;
    }

    if ((rc = gcs_client_create(cw->rpc, cw->gcs_address, &cw->gcs)) < 0 ||
        (rc = gcs_client_connect_sync(cw->gcs, 10000, err, sizeof(err))) < 0) {
        if (!err[0])
            snprintf(err, sizeof(err), "cannot create a client for the GCS at %s", cw->gcs_address);
        rc = rc ? rc : RC_EUNAVAIL;
        goto fail;
    }
    ProtobufCMessage *reply = NULL;
    Ray__Rpc__GetAllNodeInfoRequest nreq = RAY__RPC__GET_ALL_NODE_INFO_REQUEST__INIT;
    if ((rc = core__sync(cw, gcs_client_rpc(cw->gcs), &ray__rpc__node_info_gcs_service__descriptor, "GetAllNodeInfo",
                         &nreq.base, &reply, err, sizeof(err))) < 0)
        goto fail;
    Ray__Rpc__GetAllNodeInfoReply *nodes = (Ray__Rpc__GetAllNodeInfoReply *)reply;
    for (size_t i = 0; i < nodes->n_node_info_list; i++)
        core__track_node(cw, nodes->node_info_list[i]);
    if (!raylet_socket && (rc = core__find_local_raylet(cw, nodes, err, sizeof(err))) < 0) {
        rpc_msg_free(reply);
        goto fail;
    }
    rpc_msg_free(reply);
    if (!raylet_socket) {
        snprintf(target, sizeof(target), "unix:%s", cw->raylet_socket);
        if ((rc = rpc_client_create(cw->rpc, target, NULL, &cw->raylet_local)) < 0 ||
            (rc = core__driver_serving_security(cw, err, sizeof(err))) < 0)
            goto fail;
    }
    if ((rc = core__serve(cw, is_worker, err, sizeof(err))) < 0)
        goto fail;
    const char *raylet_addr = core_node_address(cw, cw->node_id);
    if (raylet_addr)
        cw->raylet_tcp = core_raylet_client(cw, raylet_addr);

    ray__rpc__address__init(&cw->address);
    cw->address.node_id.data = cw->node_id;
    cw->address.node_id.len = RC_NODE_ID_SIZE;
    cw->address.ip_address = cw->node_ip;
    cw->address.port = cw->port;
    cw->address.worker_id.data = cw->worker_id;
    cw->address.worker_id.len = RC_WORKER_ID_SIZE;

    if (!is_worker) {
        /* A driver is a job: ask for its ID and register it. */
        Ray__Rpc__GetNextJobIDRequest jreq = RAY__RPC__GET_NEXT_JOB_IDREQUEST__INIT;
        if ((rc = core__sync(cw, gcs_client_rpc(cw->gcs), &ray__rpc__job_info_gcs_service__descriptor, "GetNextJobID",
                             &jreq.base, &reply, err, sizeof(err))) < 0)
            goto fail;
        uint32_t job = (uint32_t)((Ray__Rpc__GetNextJobIDReply *)reply)->job_id;
        rpc_msg_free(reply);
        memcpy(cw->job_id, &job, RC_JOB_ID_SIZE); /* little-endian, as Ray's JobID::FromInt */
        Ray__Rpc__JobConfig config = RAY__RPC__JOB_CONFIG__INIT;
        char *paths[64];
        size_t n_paths = 0;
        char path_copy[sizeof(cw->code_search_path)];
        snprintf(path_copy, sizeof(path_copy), "%s", cw->code_search_path);
        for (char *save = NULL, *p = strtok_r(path_copy, ":", &save); p && n_paths < 64; p = strtok_r(NULL, ":", &save))
            paths[n_paths++] = p;
        config.code_search_path = paths;
        config.n_code_search_path = n_paths;
        config.ray_namespace = cw->namespace_;
        /* A language binding's job: where its workers import from and start, and its
         * runtime environment (the raylet applies env_vars to every worker of the job). */
        Ray__Rpc__RuntimeEnvInfo env = RAY__RPC__RUNTIME_ENV_INFO__INIT;
        if (opts) {
            config.py_driver_sys_path = (char **)opts->driver_sys_path;
            config.n_py_driver_sys_path = opts->driver_sys_path ? opts->n_driver_sys_path : 0;
            if (opts->driver_cwd)
                config.rayc_driver_cwd = (char *)opts->driver_cwd;
            config.rayc_priority = opts->job_priority;
            config.rayc_weight = opts->job_weight;
            if (opts->runtime_env_json && *opts->runtime_env_json) {
                env.serialized_runtime_env = (char *)opts->runtime_env_json;
                config.runtime_env_info = &env;
            }
        }
        /* A driver started by the Jobs API (rayc-dashboard) carries its submission's ID in
         * its metadata, as Ray's drivers do, so the job table names the submission. */
        Ray__Rpc__JobConfig__MetadataEntry sub_entry = RAY__RPC__JOB_CONFIG__METADATA_ENTRY__INIT;
        Ray__Rpc__JobConfig__MetadataEntry *sub_entries[1] = {&sub_entry};
        const char *submission_id = getenv("RAYC_JOB_SUBMISSION_ID");
        if (submission_id && *submission_id) {
            sub_entry.key = "job_submission_id";
            sub_entry.value = (char *)submission_id;
            config.metadata = sub_entries;
            config.n_metadata = 1;
        }
        Ray__Rpc__JobTableData job_data = RAY__RPC__JOB_TABLE_DATA__INIT;
        job_data.job_id.data = cw->job_id;
        job_data.job_id.len = RC_JOB_ID_SIZE;
        job_data.driver_ip_address = cw->node_ip;
        job_data.driver_pid = getpid();
        job_data.config = &config;
        job_data.driver_address = &cw->address;
        char entry[256] = "";
        ssize_t n = readlink("/proc/self/exe", entry, sizeof(entry) - 1);
        if (n > 0)
            entry[n] = '\0';
        job_data.entrypoint = entry;
        Ray__Rpc__AddJobRequest areq = RAY__RPC__ADD_JOB_REQUEST__INIT;
        areq.data = &job_data;
        if ((rc = core__sync(cw, gcs_client_rpc(cw->gcs), &ray__rpc__job_info_gcs_service__descriptor, "AddJob",
                             &areq.base, &reply, err, sizeof(err))) < 0)
            goto fail;
        rpc_msg_free(reply);
    }

    Rayc__Rpc__RegisterClientRequest reg = RAYC__RPC__REGISTER_CLIENT_REQUEST__INIT;
    reg.worker_id.data = cw->worker_id;
    reg.worker_id.len = RC_WORKER_ID_SIZE;
    reg.worker_type = is_worker ? RAY__RPC__WORKER_TYPE__WORKER : RAY__RPC__WORKER_TYPE__DRIVER;
    reg.pid = getpid();
    reg.port = cw->port;
    reg.job_id.data = cw->job_id;
    reg.job_id.len = RC_JOB_ID_SIZE;
    if ((rc = core__sync(cw, cw->raylet_local, &rayc__rpc__local_raylet_service__descriptor, "RegisterClient",
                         &reg.base, &reply, err, sizeof(err))) < 0)
        goto fail;
    Rayc__Rpc__RegisterClientReply *rr = (Rayc__Rpc__RegisterClientReply *)reply;
    rc = core__map_store(cw, rr->store_path, rr->store_size, err, sizeof(err));
    rpc_msg_free(reply);
    if (rc < 0)
        goto fail;
    core_store_warm_start(cw); /* a driver's, in the background */

    /* Follow node deaths: tasks and objects on a dead node need another home. */
    gcs_subscriber_callbacks cbs = {core__on_node_message, core__on_subscribed, cw};
    cw->sub = gcs_subscriber_new(cw->gcs, &cbs);
    gcs_subscriber_subscribe(cw->sub, RAY__RPC__CHANNEL_TYPE__GCS_NODE_INFO_CHANNEL, NULL, 0);

    uv_timer_init(&cw->loop, &cw->backlog_timer);
    cw->backlog_timer.data = cw;
    uv_timer_start(&cw->backlog_timer, core__backlog_tick, 1000, 1000);
    uv_timer_init(&cw->loop, &cw->linger_timer);
    cw->linger_timer.data = cw;
    uv_timer_init(&cw->loop, &cw->pg_timer);
    cw->pg_timer.data = cw;
    uv_timer_init(&cw->loop, &cw->parent_check_timer);
    cw->parent_check_timer.data = cw;
    if (is_worker)
        uv_timer_start(&cw->parent_check_timer, core__parent_check, 1000, 1000);
    core_events_start(cw);

    if (uv_thread_create(&cw->loop_thread, core__loop_main, cw) != 0) {
        rc = RC_ESYS;
        snprintf(err, sizeof(err), "cannot start the core worker thread");
        goto fail;
    }
    return 0;

fail:
    core_store_warm_stop(cw);
    RC_ERROR("core: %s", err);
    fprintf(stderr, "rayc: %s\n", err);
    snprintf(cw->start_error, sizeof(cw->start_error), "%s", err);
    return rc < 0 ? rc : RC_EUNAVAIL;
}

/* ---- stop ----------------------------------------------------------------------------- */

static void core__stop_loop(core_worker *cw, core_op *op)
{
    rc_free(op);
    cw->stopping = 1;
    uv_stop(&cw->loop);
}

static void core__close_client(void *p)
{
    rpc_client_destroy(p);
}

static void core__free_node(void *p)
{
    rc_free(p);
}

void core_stop(core_worker *cw)
{
    core_op *op = RC_NEW(core_op);
    op->run = core__stop_loop;
    core_post(cw, op);
    uv_thread_join(&cw->loop_thread);
    /* The loop is ours again: finish the conversation synchronously. */
    core_submit_shutdown(cw);
    core_actor_shutdown(cw);
    ProtobufCMessage *reply = NULL;
    char err[256];
    core_events_flush_sync(cw, 2000);
    if (!cw->is_worker && cw->gcs) {
        Ray__Rpc__MarkJobFinishedRequest req = RAY__RPC__MARK_JOB_FINISHED_REQUEST__INIT;
        req.job_id.data = cw->job_id;
        req.job_id.len = RC_JOB_ID_SIZE;
        if (core__sync(cw, gcs_client_rpc(cw->gcs), &ray__rpc__job_info_gcs_service__descriptor, "MarkJobFinished",
                       &req.base, &reply, err, sizeof(err)) == 0)
            rpc_msg_free(reply);
    }
    if (cw->raylet_local) {
        Rayc__Rpc__DisconnectClientRequest req = RAYC__RPC__DISCONNECT_CLIENT_REQUEST__INIT;
        req.worker_id.data = cw->worker_id;
        req.worker_id.len = RC_WORKER_ID_SIZE;
        req.exit_type = RAY__RPC__WORKER_EXIT_TYPE__INTENDED_USER_EXIT;
        if (core__sync(cw, cw->raylet_local, &rayc__rpc__local_raylet_service__descriptor, "DisconnectClient",
                       &req.base, &reply, err, sizeof(err)) == 0)
            rpc_msg_free(reply);
    }
    cw->stopping = 1;
    /* Destroying the clients ends every call still out; their callbacks see `stopping`. */
    if (cw->sub)
        gcs_subscriber_destroy(cw->sub);
    gcs_revocations_stop(cw->revocations);
    if (cw->gcs)
        gcs_client_destroy(cw->gcs);
    if (cw->srv)
        rpc_server_destroy(cw->srv);
    if (cw->raylet_local)
        rpc_client_destroy(cw->raylet_local);
    rc_map_destroy(&cw->raylet_clients, core__close_client);
    rc_map_destroy(&cw->worker_clients, core__close_client);
    rpc_ctx_drain(cw->rpc);
    gcs_revocations_free(cw->revocations); /* after the drain: srv is gone, its last poll answered */
    cw->revocations = NULL;
    core_get_forget_asks();
    core_exec_free_callers(cw);
    core_actor_free_all(cw);
    core_pg_free_all(cw);
    core_submit_free_all(cw);
    core_refs_free_all(cw);
    rpc_ctx_destroy(cw->rpc);
    rc_map_destroy(&cw->nodes, core__free_node);
    rc_map_destroy(&cw->plasma_pins, NULL);
    rc_map_destroy(&cw->tasks, NULL);
    rc_map_destroy(&cw->lineage, NULL);
    rc_map_destroy(&cw->refs, NULL);
    core_memstore_destroy(&cw->memstore);
    rpc_msg_free(cw->actor_strategy ? &cw->actor_strategy->base : NULL);
    cw->actor_strategy = NULL;
    core_store_warm_stop(cw);
    if (cw->store_base) {
        munmap(cw->store_base, cw->store_size);
        close(cw->store_fd);
    }
    uv_close((uv_handle_t *)&cw->wakeup, NULL);
    if (uv_is_active((uv_handle_t *)&cw->backlog_timer) || cw->backlog_timer.loop)
        uv_close((uv_handle_t *)&cw->backlog_timer, NULL);
    if (cw->parent_check_timer.loop)
        uv_close((uv_handle_t *)&cw->parent_check_timer, NULL);
    if (cw->linger_timer.loop)
        uv_close((uv_handle_t *)&cw->linger_timer, NULL);
    if (cw->pg_timer.loop)
        uv_close((uv_handle_t *)&cw->pg_timer, NULL);
    core_events_close(cw);
    uv_run(&cw->loop, UV_RUN_DEFAULT);
    uv_loop_close(&cw->loop);
    pthread_mutex_destroy(&cw->op_mu);
}
