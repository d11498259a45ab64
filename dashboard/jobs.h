/*
 * jobs: Ray's Jobs API in rayc-dashboard (ARCHITECTURE §15). Each submitted entrypoint runs
 * as a child of the dashboard: `/bin/sh -c ENTRYPOINT` in a session (and process group) of
 * its own, its stdout and stderr in <session>/logs/job-driver-<submission_id>.log, its
 * working directory a copy of the local directory runtime_env.working_dir names (under
 * <session>/runtime_resources/working_dir_files/<submission_id>), its environment the
 * dashboard's plus runtime_env.env_vars, RAY_ADDRESS/RAYC_ADDRESS, the head's credentials
 * and RAYC_JOB_SUBMISSION_ID (the driver puts it into its JobConfig metadata as
 * "job_submission_id", as Ray's drivers do, so the GCS job table names the submission).
 *
 * A job that asks for entrypoint_num_cpus, entrypoint_num_gpus, entrypoint_memory or
 * entrypoint_resources stays PENDING until they are reserved on the head node (a detached
 * placement group of one bundle named _rayc_job_entrypoint_<submission_id>, pinned to the
 * head by its ray.io/node-id label), holds them while the entrypoint runs and releases them
 * when it ends; it FAILS at once (JOB_SUPERVISOR_ACTOR_UNSCHEDULABLE, with the scheduler's
 * reason) when the head can never provide them, or after RAY_JOB_START_TIMEOUT_SECONDS
 * (900) of waiting. A dashboard that stops releases them; one that starts removes the
 * groups an earlier one left (killed before it could). See jobs_reserve.c.
 *
 * Each job's record (Ray's JobDetails as JSON) is kept in the GCS internal KV, namespace
 * "job", key "_ray_internal_job_info_<submission_id>", written at every change; a
 * dashboard that starts reads them back and marks the jobs it no longer supervises FAILED
 * (JOB_SUPERVISOR_ACTOR_DIED), as Ray does when a job's supervisor dies.
 *
 * REST (Ray's shape; every request with the cluster token, see http_server.h):
 *   POST   /api/jobs/               submit  -> {"job_id", "submission_id"}
 *   GET    /api/jobs/               list    -> [JobDetails...] (with the GCS's other
 *                                              drivers as type DRIVER, as Ray lists them)
 *   GET    /api/jobs/{id}           one     -> JobDetails
 *   GET    /api/jobs/{id}/logs      logs    -> {"logs": "..."}
 *   GET    /api/jobs/{id}/logs/tail?offset=N
 *                                   follow  -> {"logs": from byte N, "offset": the next N,
 *                                               "status", "ended": nothing more will come}
 *   POST   /api/jobs/{id}/stop      stop    -> {"stopped": bool} (a job waiting for its
 *                                              resources is STOPPED at once)
 *   DELETE /api/jobs/{id}           delete  -> {"deleted": bool} (terminal jobs only)
 * Ray's /logs/tail is a websocket; rayc's is polled with a byte offset instead (`rayc job
 * logs --follow` and `rayc job submit` poll it).
 *
 * Loop thread only.
 */
#ifndef RAYC_DASHBOARD_JOBS_H
#define RAYC_DASHBOARD_JOBS_H

#include <uv.h>

#include "gcs_client.h"
#include "http_server.h"

typedef struct jobs jobs;

typedef struct jobs_options {
    const char *session;     /* the head's session directory */
    const char *gcs_address; /* handed to drivers as RAY_ADDRESS/RAYC_ADDRESS */
    int insecure;            /* the cluster runs without TLS and tokens */
    int stop_wait_s;         /* SIGTERM -> SIGKILL grace (RAY_JOB_STOP_WAIT_TIME_S, default 3) */
} jobs_options;

/* Reads the jobs recorded in the GCS (synchronously: call before the loop runs) and starts
 * supervising. RC_E* with err when the GCS cannot be read. */
int jobs_start(uv_loop_t *loop, gcs_client *gcs, const jobs_options *opts, jobs **out, char *err, size_t errlen);
/* Answers a request under /api/jobs; returns 0 if path is not one of ours (resp untouched). */
int jobs_handle(jobs *j, const http_request *req, http_response *resp);
/* Kills every running entrypoint's process group (the dashboard stops). */
void jobs_shutdown(jobs *j);

#endif
