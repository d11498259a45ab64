/*
 * jobs_int: what jobs.c (records, supervision, REST) and jobs_reserve.c (the entrypoint's
 * reserved resources) share: the job and jobs structs and the calls between them. Private to
 * dashboard/jobs*.c. Loop thread only.
 */
#ifndef RAYC_DASHBOARD_JOBS_INT_H
#define RAYC_DASHBOARD_JOBS_INT_H

#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "jobs.h"
#include "rc_buf.h"
#include "rc_ids.h"

/* Where a job's reservation stands (jobs_reserve.c). */
enum { JOBS_PG_NONE, JOBS_PG_LOOKUP, JOBS_PG_CREATING, JOBS_PG_WAITING, JOBS_PG_HELD };

typedef struct job {
    struct job *next;
    jobs *owner;
    char *submission_id, *entrypoint, *message, *error_type;
    char *metadata, *runtime_env, *resources; /* JSON text */
    char job_id[16];                           /* the driver's job ID (hex) once known */
    char *driver_info;                         /* Ray's DriverInfo (JSON) once known, else NULL */
    const char *status;                        /* static: PENDING, RUNNING, ... */
    double num_cpus, num_gpus, memory;
    int has_cpus, has_gpus, has_memory;
    int64_t start_time, end_time; /* ms since the epoch; 0: not yet */
    int has_exit_code, exit_code;
    pid_t pid;
    int running; /* proc is live (its handle open) */
    int stop_requested;
    uv_process_t proc;
    uv_timer_t kill_timer;
    int timer_open;
    char *log_path;
    /* The entrypoint's reservation (jobs_reserve.c). */
    int reserve;                  /* it asked for resources: it starts once they are reserved */
    int pg_phase;                 /* JOBS_PG_* */
    int pg_polling;               /* a GetPlacementGroup in flight */
    int pg_waiting;               /* a WaitPlacementGroupUntilReady in flight */
    uint8_t pg_id[RC_PG_ID_SIZE];
    char node_id[RC_ID_HEX_MAX]; /* driver_node_id: the head node, once the entrypoint runs */
} job;

/* A placement group to remove (a reservation released, or left by an earlier dashboard),
 * until the GCS has said so. */
typedef struct jobs__orphan {
    struct jobs__orphan *next;
    uint8_t pg_id[RC_PG_ID_SIZE];
    int inflight;
} jobs__orphan;

struct jobs {
    uv_loop_t *loop;
    gcs_client *gcs;
    jobs_options opts;
    char *session, *gcs_address;
    job *list; /* newest first */
    uv_timer_t poll;
    int polling;         /* a GetAllJobInfo in flight */
    rc_buf driver_jobs; /* JobDetails of the drivers not submitted here ("" or ", {...}..."), as of the last poll */
    jobs__orphan *orphans;
    int64_t start_timeout_ms; /* RAY_JOB_START_TIMEOUT_SECONDS: how long a job may wait for its resources */
};

/* jobs.c */
/* Sets x's status (message NULL: Ray's default text for it), records it in the GCS and, when
 * the status is terminal, releases what x reserved. */
void jobs__set_status(job *x, const char *status, const char *message, const char *error_type);
/* Starts x's entrypoint now; on failure x is FAILED with why. */
void jobs__launch(jobs *j, job *x);

/* jobs_reserve.c */
/* Whether x asked for any entrypoint resource above 0. */
int jobs__wants(const job *x);
/* Starts reserving x's resources on the head; x's entrypoint starts once they are reserved,
 * or x FAILS with why. */
void jobs__reserve(job *x);
/* Gives back what x reserved or is reserving (nothing when it holds nothing). */
void jobs__release(job *x);
/* One poll tick: follows the reservations being placed and retries removals. */
void jobs__poll_reservations(jobs *j);
/* As the dashboard stops (the loop no longer runs, the entrypoints are gone): releases every
 * reservation, waiting up to timeout_ms for the GCS; what is left is removed by the next
 * dashboard (jobs__collect_orphans). */
void jobs__release_all(jobs *j, int64_t timeout_ms);
/* On start (before the loop runs): queues the removal of every reservation an earlier
 * dashboard left. */
void jobs__collect_orphans(jobs *j);

#endif
