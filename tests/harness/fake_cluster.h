/*
 * Test fixture: a real rayc-gcs and real raylets whose workers are rayc-fake-worker, with a
 * libuv loop in the test's thread holding a GCS client (and, on request, clients of each
 * raylet's TCP and unix-socket services). The suites that drive the GCS and the raylets
 * directly (leases, bundles, GCS actors and placement groups) share it.
 *
 * Every raylet gets --worker-command and one --session-dir shared by all (its sockets are
 * then at <session>/sockets/raylet.<id8>.sock); RAYC_FAKE_WORKER_DIR points the fake
 * workers at <root>/fake. Main thread only.
 */
#ifndef RAYC_TESTS_HARNESS_FAKE_CLUSTER_H
#define RAYC_TESTS_HARNESS_FAKE_CLUSTER_H

#include <limits.h>
#include <uv.h>

#include "cluster.h"
#include "node_manager.pb-c.h"
#include "gcs_client.h"
#include "rpc.h"

typedef struct harness_fake {
    harness_cluster c;
    char session[PATH_MAX];
    char fake_dir[PATH_MAX];
    const char *worker_command; /* rayc-fake-worker's path */
    int raylet_clients;         /* open tcp[i] and local[i] for each raylet started */
    uv_loop_t loop;
    rpc_ctx *rpc;
    gcs_client *gcs;
    rpc_client *tcp[HARNESS_MAX_RAYLETS];   /* NodeManagerService of raylet i */
    rpc_client *local[HARNESS_MAX_RAYLETS]; /* its LocalRayletService */
    uint8_t owner_id[28]; /* the worker ID leases name as their caller (random at start) */
} harness_fake;

/* What harness_fake_stop checks besides stopping everything. */
enum {
    HARNESS_FAKE_CHECK_RAYLETS = 1, /* each raylet exits 0 on SIGTERM, no sanitizer report */
    HARNESS_FAKE_CHECK_GCS = 2,     /* the GCS too */
};

/* Starts the cluster's GCS (Redis storage with use_redis) and connects t->gcs to it.
 * Returns 0 or -1. */
int harness_fake_start(harness_fake *t, int use_redis, const char *worker_command, int raylet_clients);
/* (Re)connects t->gcs to t->c.gcs_address (after a GCS restart). */
int harness_fake_connect(harness_fake *t);
/* Starts a raylet with flags (NULL-terminated, may be NULL) and the fake worker; returns its
 * index or -1. */
int harness_fake_raylet(harness_fake *t, const char *const *flags);
/* Stops raylets (SIGTERM), then the GCS, checking what checks asks (CUnit assertions), and
 * frees everything. */
void harness_fake_stop(harness_fake *t, int checks);
/* Runs the loop until *flag is set (flag may be NULL) or ms have passed; returns *flag. */
int harness_fake_pump(harness_fake *t, const int *flag, int ms);
/* A synchronous GCS call: the GcsStatus code of the reply, or -1000 - the gRPC code when the
 * call itself failed. *reply (reply may be NULL) gets the reply, message (may be NULL) its
 * status text or the transport error. */
int harness_fake_gcs_call(harness_fake *t, const ProtobufCServiceDescriptor *svc, const char *method,
                          const ProtobufCMessage *req, ProtobufCMessage **reply, char *message, size_t mlen);

/* ---- leases, as an owner asks for them -------------------------------------------- */

/* A resource amount; lists end with {NULL, 0} (HARNESS_RES builds one in place). */
typedef struct harness_res {
    const char *name;
    double amount;
} harness_res;

#define HARNESS_RES(...) ((const harness_res[]){__VA_ARGS__, {NULL, 0}})
#define HARNESS_NO_RES ((const harness_res[]){{NULL, 0}})

typedef struct harness_lease_opts {
    int grant_or_reject;
    Ray__Rpc__SchedulingStrategy *strategy;
    Ray__Rpc__LabelSelector *selector;
    int64_t timeout_ms;      /* 0: none */
    int job;                 /* 0: job 1 */
    const uint8_t *lease_id; /* NULL: a new random one */
    const uint8_t *pg_id;    /* a placement group (PlacementGroupSchedulingStrategy), bundle pg_index */
    int pg_index;
    int actor;                     /* an ACTOR_CREATION_TASK lease */
    const harness_res *placement;  /* its required_placement_resources */
    int detached;
} harness_lease_opts;

/* A RequestWorkerLease in flight or answered. */
typedef struct harness_lease {
    int done;
    grpc_status_code code;
    char message[512];
    Ray__Rpc__RequestWorkerLeaseReply *reply;
    uint8_t lease_id[28];
    int raylet; /* the raylet it went to */
} harness_lease;

/* Job number n as a 4-byte job ID. */
void harness_job_id(int n, uint8_t out[4]);
/* Asks raylet ri for a lease of rs (o may be NULL); the answer lands in lc (pump the loop). */
void harness_lease_async(harness_fake *t, int ri, harness_lease *lc, const harness_res *rs,
                         const harness_lease_opts *o);
/* The same, then pumps up to ms for the answer. Returns 1 if answered. */
int harness_lease_sync(harness_fake *t, int ri, harness_lease *lc, const harness_res *rs,
                       const harness_lease_opts *o, int ms);
/* 1 if lc was answered with a worker. */
int harness_lease_granted(const harness_lease *lc);
void harness_lease_free(harness_lease *lc);
/* ReturnWorkerLease for lc; the gRPC code. */
int harness_lease_return(harness_fake *t, const harness_lease *lc, int disconnect);
/* Pushes fn(arg) (a function of rayc-fake-worker) to lc's worker and waits up to timeout_ms;
 * out (may be NULL) gets its first result as text. Returns the gRPC code. */
int harness_lease_push(harness_fake *t, const harness_lease *lc, const char *fn, const char *arg, int timeout_ms,
                       char *out, size_t outlen);
/* 1 once process pid is gone (within ms). */
int harness_pid_gone(pid_t pid, int ms);

#endif
