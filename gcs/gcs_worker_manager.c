/*
 * GCS worker manager: WorkerInfoGcsService.ReportWorkerFailure.
 *
 * A raylet reports every worker process that died (worker_failure.worker_address with the
 * worker's node_id, ip_address, port and worker_id; exit_type and exit_detail say how). The
 * actor manager restarts or fails the actor that ran there and fails the actors the worker
 * owned; the failure is published on GCS_WORKER_DELTA_CHANNEL (key: the worker ID) for
 * owners that lent it objects. Reports are not stored: nothing reads them back, and a
 * long-lived cluster would pile up one record per worker ever started. A report for a worker
 * the GCS knows nothing about is answered OK (reports may repeat or race with the GCS's own
 * view of a death).
 *
 * Loop thread only.
 */
#include <string.h>

#include "gcs_int.h"

static void handle_report_worker_failure(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_server *gcs = arg;
    const Ray__Rpc__ReportWorkerFailureRequest *req = (const void *)request;
    Ray__Rpc__ReportWorkerFailureReply reply = RAY__RPC__REPORT_WORKER_FAILURE_REPLY__INIT;
    const Ray__Rpc__WorkerTableData *w = req->worker_failure;
    if (!w || !w->worker_address || w->worker_address->worker_id.len != RC_WORKER_ID_SIZE)
        return gcs__reply(call, &reply.base, GCS_STATUS_INVALID_ARGUMENT,
                          "worker_failure.worker_address.worker_id must hold %d bytes", RC_WORKER_ID_SIZE);
    if (w->worker_address->node_id.len && w->worker_address->node_id.len != RC_NODE_ID_SIZE)
        return gcs__reply(call, &reply.base, GCS_STATUS_INVALID_ARGUMENT,
                          "worker_failure.worker_address.node_id must be empty or hold %d bytes", RC_NODE_ID_SIZE);
    gcs_actor_on_worker_dead(gcs->actors, w);
    if (w->worker_type == RAY__RPC__WORKER_TYPE__DRIVER && gcs->jobs)
        gcs_job_on_driver_dead(gcs->jobs, w->worker_address->worker_id.data);
    Ray__Rpc__WorkerDeltaData delta = RAY__RPC__WORKER_DELTA_DATA__INIT;
    delta.node_id = w->worker_address->node_id;
    delta.worker_id = w->worker_address->worker_id;
    Ray__Rpc__PubMessage m = RAY__RPC__PUB_MESSAGE__INIT;
    m.channel_type = RAY__RPC__CHANNEL_TYPE__GCS_WORKER_DELTA_CHANNEL;
    m.key_id = w->worker_address->worker_id;
    m.inner_message_case = RAY__RPC__PUB_MESSAGE__INNER_MESSAGE_WORKER_DELTA_MESSAGE;
    m.worker_delta_message = &delta;
    gcs_publish(gcs->pub, &m);
    gcs__reply_ok(call, &reply.base);
}

const rpc_method_handler gcs_worker_handlers[] = {
    {"ReportWorkerFailure", handle_report_worker_failure},
    {NULL, NULL},
};
