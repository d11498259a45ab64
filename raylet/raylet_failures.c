/*
 * Worker failure reports: the raylet tells the GCS (WorkerInfoGcsService.
 * ReportWorkerFailure, Ray's) about every worker process it reaped and every driver of
 * this node that disconnected or died, so the GCS can restart or bury their actors and
 * clean up after dead owners (docs/actors.md "Failures").
 *
 * A report is WorkerTableData{is_alive false, worker_address {node_id, ip_address, port
 * (its CoreWorkerService port; 0 if it never registered), worker_id}, worker_type,
 * exit_type, exit_detail, pid, start_time_ms, end_time_ms, timestamp}. Exit types: what the
 * worker said in its goodbye (DisconnectClient) when it said one; else INTENDED_SYSTEM_EXIT
 * when the raylet killed it (its lease was returned with disconnect_worker, its owner or
 * job went away, its bundle was removed, it did not register in time, it idled too long);
 * else SYSTEM_ERROR for a signal or a non-zero status and INTENDED_USER_EXIT for status 0.
 *
 * Delivery never blocks the loop: reports wait in a FIFO and up to RAYLET__REPORTS_IN_FLIGHT
 * are out at once. A report the GCS did not get (unreachable, deadline: it may be
 * restarting) goes back to the front of the queue and sending pauses for 100 ms, doubling
 * up to raylet_worker_failure_report_retry_max_ms; at most
 * raylet_worker_failure_report_max_pending reports wait (the oldest are dropped, logged).
 * A GCS that answers but refuses (UNIMPLEMENTED, a GcsStatus error) loses that report
 * (logged): asking again would get the same answer.
 *
 * Loop thread only.
 */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "gcs_service.pb-c.h"
#include "raylet_int.h"
#include "rc_alloc.h"
#include "rc_config.h"
#include "rc_log.h"
#include "rc_time.h"

enum { RAYLET__REPORTS_IN_FLIGHT = 8, RAYLET__REPORT_RETRY_MS = 100 };

typedef struct raylet__report {
    Ray__Rpc__ReportWorkerFailureRequest *req; /* owned (rpc_msg_dup) */
    char worker_hex[RC_ID_HEX_MAX];
    int attempts;
    struct raylet_failures *f;
    struct raylet__report *next;
} raylet__report;

typedef struct raylet__goodbye {
    int exit_type;
    char *detail;
} raylet__goodbye;

typedef struct raylet_failures {
    raylet *r;
    raylet__report *head, *tail; /* waiting to be sent */
    size_t n_queued, in_flight;
    uint64_t sent, dropped;
    int paused;          /* the retry timer runs: nothing is sent until it fires */
    int64_t backoff_ms;  /* the next pause */
    uv_timer_t retry_timer;
    rc_map goodbyes; /* worker id -> raylet__goodbye */
    int warned_unimplemented;
} raylet_failures;

static void raylet__report_free(raylet__report *rep)
{
    rpc_msg_free(&rep->req->base);
    rc_free(rep);
}

static void raylet__goodbye_free(void *v)
{
    raylet__goodbye *g = v;
    rc_free(g->detail);
    rc_free(g);
}

static void raylet__failures_pump(raylet_failures *f);

static void raylet__retry_fired(uv_timer_t *t)
{
    raylet_failures *f = t->data;
    f->paused = 0;
    raylet__failures_pump(f);
}

/* The GCS did not get rep: it goes back to the front, and sending pauses. */
static void raylet__failures_requeue(raylet_failures *f, raylet__report *rep)
{
    rep->next = f->head;
    f->head = rep;
    if (!f->tail)
        f->tail = rep;
    f->n_queued++;
    if (!f->paused) {
        f->paused = 1;
        int64_t max = rc_cfg.raylet_worker_failure_report_retry_max_ms > 0
                          ? rc_cfg.raylet_worker_failure_report_retry_max_ms
                          : RAYLET__REPORT_RETRY_MS;
        int64_t wait = f->backoff_ms ? f->backoff_ms : RAYLET__REPORT_RETRY_MS;
        f->backoff_ms = wait * 2 > max ? max : wait * 2;
        uv_timer_start(&f->retry_timer, raylet__retry_fired, (uint64_t)wait, 0);
    }
}

static void raylet__report_sent(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    raylet__report *rep = arg;
    raylet_failures *f = rep->f;
    raylet *r = f->r;
    f->in_flight--;
    const char *message = "";
    int gcs_code = st->code == GRPC_STATUS_OK ? gcs_reply_status(reply, &message) : 0;
    if (r->state == RAYLET_STOPPING) {
        rpc_msg_free(reply);
        raylet__report_free(rep);
        return;
    }
    if (st->code == GRPC_STATUS_OK && gcs_code == GCS_STATUS_OK) {
        RC_DEBUG("raylet: the GCS has the failure report of worker %.8s", rep->worker_hex);
        f->sent++;
        f->backoff_ms = 0;
        raylet__report_free(rep);
    } else if (st->code == GRPC_STATUS_OK || st->code == GRPC_STATUS_UNIMPLEMENTED ||
               st->code == GRPC_STATUS_INVALID_ARGUMENT) {
        /* It answered: asking again would get the same answer. */
        if (st->code == GRPC_STATUS_UNIMPLEMENTED) {
            if (!f->warned_unimplemented)
                RC_WARN("raylet: the GCS does not serve ReportWorkerFailure (%s); worker failure reports are dropped",
                        st->message);
            f->warned_unimplemented = 1;
        } else {
            RC_WARN("raylet: the GCS refused the failure report of worker %.8s: %s", rep->worker_hex,
                    st->code == GRPC_STATUS_OK ? message : st->message);
        }
        f->dropped++;
        raylet__report_free(rep);
    } else {
        rep->attempts++;
        if (rep->attempts == 1 || rep->attempts % 20 == 0)
            RC_INFO("raylet: the failure report of worker %.8s did not reach the GCS (%s, attempt %d); retrying",
                    rep->worker_hex, st->message, rep->attempts);
        raylet__failures_requeue(f, rep);
    }
    rpc_msg_free(reply);
    raylet__failures_pump(f);
}

/* Sends queued reports while fewer than RAYLET__REPORTS_IN_FLIGHT are out. */
static void raylet__failures_pump(raylet_failures *f)
{
    raylet *r = f->r;
    while (f->head && !f->paused && f->in_flight < RAYLET__REPORTS_IN_FLIGHT && r->gcs && r->state != RAYLET_STOPPING) {
        raylet__report *rep = f->head;
        f->head = rep->next;
        if (!f->head)
            f->tail = NULL;
        rep->next = NULL;
        f->n_queued--;
        if (rpc_client_call(gcs_client_rpc(r->gcs), &ray__rpc__worker_info_gcs_service__descriptor,
                            "ReportWorkerFailure", &rep->req->base, rc_cfg.gcs_rpc_timeout_ms, raylet__report_sent,
                            rep) < 0) {
            raylet__failures_requeue(f, rep);
            return;
        }
        f->in_flight++;
    }
    if (f->head && !f->paused && !r->gcs && r->state != RAYLET_STOPPING) {
        /* Not connected to the GCS yet: look again soon. */
        f->paused = 1;
        uv_timer_start(&f->retry_timer, raylet__retry_fired, RAYLET__REPORT_RETRY_MS, 0);
    }
}

void raylet_failures_init(raylet *r)
{
    raylet_failures *f = RC_NEW(raylet_failures);
    f->r = r;
    rc_map_init(&f->goodbyes);
    uv_timer_init(r->loop, &f->retry_timer);
    f->retry_timer.data = f;
    r->failures = f;
}

void raylet_failures_report(raylet *r, const raylet_exit *e)
{
    raylet_failures *f = r->failures;
    if (!f || r->state == RAYLET_STOPPING)
        return;
    int64_t now = rc_wall_ms();
    Ray__Rpc__Address addr = RAY__RPC__ADDRESS__INIT;
    addr.node_id.data = r->node_id;
    addr.node_id.len = RC_NODE_ID_SIZE;
    addr.ip_address = r->spec.ip;
    addr.port = e->port;
    addr.worker_id.data = (uint8_t *)e->worker_id;
    addr.worker_id.len = RC_WORKER_ID_SIZE;
    Ray__Rpc__WorkerTableData d = RAY__RPC__WORKER_TABLE_DATA__INIT;
    d.is_alive = 0;
    d.worker_address = &addr;
    d.timestamp = now;
    d.worker_type = e->is_driver ? RAY__RPC__WORKER_TYPE__DRIVER : RAY__RPC__WORKER_TYPE__WORKER;
    d._exit_type_case = RAY__RPC__WORKER_TABLE_DATA___EXIT_TYPE_EXIT_TYPE;
    d.exit_type = (Ray__Rpc__WorkerExitType)e->exit_type;
    d._exit_detail_case = RAY__RPC__WORKER_TABLE_DATA___EXIT_DETAIL_EXIT_DETAIL;
    d.exit_detail = (char *)(e->exit_detail ? e->exit_detail : "");
    d.pid = e->pid > 0 ? (uint32_t)e->pid : 0;
    d.start_time_ms = e->start_time_ms > 0 ? (uint64_t)e->start_time_ms : 0;
    d.end_time_ms = (uint64_t)now;
    Ray__Rpc__ReportWorkerFailureRequest req = RAY__RPC__REPORT_WORKER_FAILURE_REQUEST__INIT;
    req.worker_failure = &d;

    raylet__report *rep = RC_NEW(raylet__report);
    rep->req = (Ray__Rpc__ReportWorkerFailureRequest *)rpc_msg_dup(&req.base);
    rep->f = f;
    rc_id_hex(e->worker_id, RC_WORKER_ID_SIZE, rep->worker_hex);
    RC_INFO("raylet: reporting %s %.8s (pid %d, port %d) to the GCS: %s, %s", e->is_driver ? "driver" : "worker",
            rep->worker_hex, (int)e->pid, e->port,
            ray__rpc__worker_exit_type__descriptor.values[e->exit_type >= 0 && e->exit_type <= 4 ? e->exit_type : 0].name,
            d.exit_detail);
    if (f->tail)
        f->tail->next = rep;
    else
        f->head = rep;
    f->tail = rep;
    f->n_queued++;
    int64_t max = rc_cfg.raylet_worker_failure_report_max_pending > 0 ? rc_cfg.raylet_worker_failure_report_max_pending : 1;
    while ((int64_t)f->n_queued > max) {
        raylet__report *old = f->head;
        f->head = old->next;
        f->n_queued--;
        f->dropped++;
        RC_WARN("raylet: more than %lld worker failure reports wait for the GCS; dropping the one of worker %.8s",
                (long long)max, old->worker_hex);
        raylet__report_free(old);
    }
    raylet__failures_pump(f);
}

void raylet_failures_goodbye(raylet *r, const uint8_t worker_id[RC_WORKER_ID_SIZE], int exit_type, const char *detail)
{
    raylet_failures *f = r->failures;
    if (!f)
        return;
    raylet__goodbye *g = RC_NEW(raylet__goodbye);
    g->exit_type = exit_type;
    g->detail = rc_strdup(detail ? detail : "");
    raylet__goodbye *old = rc_map_put(&f->goodbyes, worker_id, RC_WORKER_ID_SIZE, g);
    if (old)
        raylet__goodbye_free(old);
}

void raylet_failures_worker_reaped(raylet *r, const worker *w)
{
    raylet_failures *f = r->failures;
    if (!f)
        return;
    char how[160], detail[600];
    int status = w->exit_status, exit_type;
    if (WIFEXITED(status))
        snprintf(how, sizeof(how), "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(how, sizeof(how), "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(how, sizeof(how), "ended (wait status 0x%x)", status);
    raylet__goodbye *g = rc_map_remove(&f->goodbyes, w->id, RC_WORKER_ID_SIZE);
    if (g) {
        exit_type = g->exit_type;
        snprintf(detail, sizeof(detail), "worker %.8s (pid %d) %s after saying goodbye%s%s", w->id_hex, (int)w->pid,
                 how, *g->detail ? ": " : "", g->detail);
        raylet__goodbye_free(g);
    } else if (w->kill_reason[0]) {
        exit_type = RAY__RPC__WORKER_EXIT_TYPE__INTENDED_SYSTEM_EXIT;
        snprintf(detail, sizeof(detail), "worker %.8s (pid %d) %s: the raylet killed it because %s", w->id_hex,
                 (int)w->pid, how, w->kill_reason);
    } else {
        exit_type = WIFEXITED(status) && WEXITSTATUS(status) == 0 ? RAY__RPC__WORKER_EXIT_TYPE__INTENDED_USER_EXIT
                                                                 : RAY__RPC__WORKER_EXIT_TYPE__SYSTEM_ERROR;
        snprintf(detail, sizeof(detail), "worker %.8s (pid %d) %s", w->id_hex, (int)w->pid, how);
    }
    raylet_exit e = {
        .worker_id = w->id,
        .pid = w->pid,
        .port = w->port,
        .exit_type = exit_type,
        .exit_detail = detail,
        .start_time_ms = rc_wall_ms() - (rc_mono_ms() - w->started_ms),
    };
    raylet_failures_report(r, &e);
}

static void raylet__failures_closed(uv_handle_t *h)
{
    rc_free(h->data);
}

void raylet_failures_cleanup(raylet *r)
{
    raylet_failures *f = r->failures;
    if (!f)
        return;
    r->failures = NULL;
    if (f->n_queued)
        RC_INFO("raylet: %zu worker failure reports were not sent (the node's death stands for them)", f->n_queued);
    while (f->head) {
        raylet__report *rep = f->head;
        f->head = rep->next;
        raylet__report_free(rep);
    }
    rc_map_destroy(&f->goodbyes, raylet__goodbye_free);
    uv_close((uv_handle_t *)&f->retry_timer, raylet__failures_closed);
}
