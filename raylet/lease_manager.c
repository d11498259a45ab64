/*
 * The lease manager: see lease_manager.h for the protocol.
 *
 * A lease is QUEUED (in its class's FIFO, waiting for a decision), STARTING (resources
 * allocated on this node, waiting for a worker from the pool) or GRANTED (a worker serves
 * it). While QUEUED or STARTING the RequestWorkerLease call is held (lease->call); it is
 * answered exactly once, and the lease leaves lm->leases when it is answered with anything
 * but a grant, or when a granted lease is returned or its worker dies.
 *
 * Dispatch: one round looks at every class, oldest class first, rotating the start each
 * round so no class starves. Within a class leases go in FIFO order, and the first one that
 * cannot go now (NOT_NOW or NEVER) stops the class: the others would get the same answer.
 * An infeasible class is not asked again until the view's set of nodes changes (epoch).
 * Rounds run when a request arrives, and soon after resources free up or the view changes.
 *
 * Fair share: while leases of more than one job are queued here, a round instead picks
 * one lease at a time over all classes still open: the job of the highest priority first,
 * among those the one whose share of this node (the sum of its granted leases' dominant
 * shares: for each lease the largest fraction of any one of the node's resources it holds)
 * divided by its weight is lowest, and that job's oldest lease (FIFO within a job; between
 * equal jobs the oldest lease). A class whose pick has to wait closes for the round, as
 * above; a class of other jobs' smaller requests may still go (backfill). Priority and
 * weight come with the job's record from the GCS (JobConfig.rayc_priority, rayc_weight;
 * until it arrives 0 and 1). Granted leases are not taken back: shares move as owners
 * return leases, which they do at the latest when a lease outlives
 * worker_lease_timeout_milliseconds (core_submit.c). With one job queued, or with
 * job_fair_share off, rounds are exactly as above.
 *
 * Preemption (job_fair_share_preemption, off by default): a queued lease that could run on
 * this node and has waited job_fair_share_preemption_grace_ms (since it arrived, or since
 * the last pass that considered it) takes the room of granted leases of jobs of strictly
 * lower priority whose task may run again (a normal task whose LeaseSpec.max_retries is
 * not 0: owners keep retriable and other tasks on separate leases), the lowest priority
 * first, then the most recently granted, only those holding a resource it is short of,
 * and only when they make room for it all. Their workers are killed; their owners see the
 * worker die and retry the task. Actors, blocked leases and placement-group leases are
 * never preempted, and equal priorities never preempt each other (weights only shape new
 * grants). Queued leases are served in fair order and each counts what the ones before
 * took. n_preempted counts them; the last preempted lease IDs are kept so that owners can
 * ask (GetWorkerFailureCause) and retry the task without counting it against max_retries.
 *
 * CPU lending (NotifyTaskBlocked): while any lease is blocked or the node's CPUs are
 * oversubscribed, the local node's available CPU is recomputed from the leases (total minus
 * the CPUs of unblocked leases, at least 0); otherwise the scheduler's own accounting is
 * exact and is left alone.
 *
 * Loop thread only.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundle_manager.h"
#include "lease_int.h"
#include "node_manager.pb-c.h"
#include "raylet_int.h"
#include "rc_alloc.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_log.h"
#include "rc_time.h"

enum { LEASE__ID_MAX = 64, LEASE__PREEMPTED_KEPT = 256 };

typedef enum lease_state { LEASE_QUEUED, LEASE_STARTING, LEASE_GRANTED } lease_state;

struct lease {
    lease_manager *lm;
    uint8_t id[LEASE__ID_MAX];
    size_t id_len;
    char id_hex[2 * 8 + 1]; /* first bytes, for logs */
    uint8_t job_id[RC_JOB_ID_SIZE];
    Ray__Rpc__Language language; /* of its worker (part of the worker key) */
    uint8_t owner[RC_WORKER_ID_SIZE];
    uint8_t owner_node[RC_NODE_ID_SIZE];
    int has_owner, has_owner_node;
    lease_class *cls;
    lease_state state;
    rpc_call *call; /* held while QUEUED or STARTING */
    int queued;     /* linked in cls's FIFO */
    int64_t queued_ms, infeasible_since_ms;
    sched_alloc alloc;
    bundle_gpu_use *bundle_gpus; /* bundle GPU instances, for classes holding bundle resources */
    int allocated, blocked;
    int detached; /* a detached actor's creation */
    int retriable; /* a normal task with max_retries != 0: may be preempted (see the file comment) */
    char task_name[64]; /* of the task it was asked for, for logs */
    uint64_t grant_seq; /* grant order (preemption takes the most recent first) */
    int64_t preempt_ms; /* a preemption was last considered for it (while QUEUED) */
    struct lease__job *job;
    uint64_t seq;  /* arrival order, for FIFO across classes */
    double share;  /* dominant share of the node it holds (fair share), while allocated */
    double held_cpus;
    worker *w;
    worker_pop *pop;
    lease *prev, *next;
};

/* One owner's backlog of one class, as the owner last reported it. Only owners on this
 * node report here (their own raylet), so their disconnect or death clears it; the job's
 * end clears it too. */
typedef struct lease__backlog {
    lease_class *cls;
    int64_t size;
    int has_job; /* job_id is known (a report's lease_spec may omit it) */
    uint8_t job_id[RC_JOB_ID_SIZE];
} lease__backlog;

/* One job as fair share sees it on this node. Lives while leases refer to it, and while the
 * GCS's record of a running job does. */
typedef struct lease__job {
    uint8_t job_id[RC_JOB_ID_SIZE];
    int32_t priority;
    double weight;   /* > 0 */
    int known;       /* priority and weight came from the GCS's record */
    int finished;
    int refs;        /* leases of the job here, in any state */
    size_t n_queued; /* of them QUEUED */
    size_t n_held;   /* of them holding resources here */
    double share, cpus;
} lease__job;

struct lease_manager {
    raylet *r;
    rc_map jobs;          /* job id -> lease__job */
    size_t n_jobs_queued; /* jobs with queued leases: more than one makes rounds fair */
    uint64_t seq;
    /* lease_manager_job_usage's answer, valid until its next call. */
    Ray__Rpc__RaycJobUsage *usage, **usage_ptrs;
    sched_rng rng;
    rc_map leases;  /* lease id -> lease */
    rc_map classes; /* class key -> lease_class */
    lease_class *classes_head, *classes_tail;
    rc_map backlog;   /* owner id + class key -> lease__backlog */
    rc_map jobs_seen; /* job id -> (void *)1: prestarted */
    size_t n_blocked;
    int cpu_oversubscribed;
    uint64_t epoch; /* bumped when the view's nodes change */
    uint64_t grant_seq;
    uint64_t n_preempted; /* leases preempted for higher-priority jobs since start */
    /* The last LEASE__PREEMPTED_KEPT preempted lease IDs, for GetWorkerFailureCause. */
    struct {
        uint8_t id[LEASE__ID_MAX];
        size_t len;
    } preempted[LEASE__PREEMPTED_KEPT];
    uv_timer_t dispatch_timer, infeasible_timer, preempt_timer;
    int dispatch_scheduled, in_dispatch, dispatch_again;
    int closing, handles_open;
};

/* ---- classes ------------------------------------------------------------------------ */

static void lease__class_unref(lease_manager *lm, lease_class *c)
{
    if (--c->refs > 0)
        return;
    rc_map_remove(&lm->classes, c->key, c->klen);
    if (c->prev)
        c->prev->next = c->next;
    else
        lm->classes_head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        lm->classes_tail = c->prev;
    lease__class_free(c);
}

/* The class of spec, found or created, with a reference for the caller. Returns 0, or an
 * error with err: RC_EINVAL (malformed) or RC_ESTATE (not served yet). */
static int lease__class_get(lease_manager *lm, const Ray__Rpc__LeaseSpec *spec, lease_class **out, char *err,
                            size_t errlen)
{
    rc_buf key = RC_BUF_INIT;
    int rc = lease__class_key(spec, &key, err, errlen);
    if (rc < 0) {
        rc_buf_free(&key);
        return rc;
    }
    lease_class *c = rc_map_get(&lm->classes, key.data, key.len);
    rc_buf_free(&key);
    if (!c) {
        if ((rc = lease__class_parse(lm->r->view, spec, &c, err, errlen)) < 0)
            return rc;
        rc_map_put(&lm->classes, c->key, c->klen, c);
        c->prev = lm->classes_tail;
        if (lm->classes_tail)
            lm->classes_tail->next = c;
        else
            lm->classes_head = c;
        lm->classes_tail = c;
    }
    c->refs++;
    *out = c;
    return 0;
}

/* ---- jobs (fair share) ------------------------------------------------------------- */

static lease__job *lease__job_get(lease_manager *lm, const uint8_t job_id[RC_JOB_ID_SIZE])
{
    lease__job *j = rc_map_get(&lm->jobs, job_id, RC_JOB_ID_SIZE);
    if (!j) {
        j = RC_NEW(lease__job);
        memcpy(j->job_id, job_id, RC_JOB_ID_SIZE);
        j->weight = 1;
        rc_map_put(&lm->jobs, j->job_id, RC_JOB_ID_SIZE, j);
    }
    return j;
}

/* Forgets j once nothing refers to it (a running job the GCS told of stays). */
static void lease__job_maybe_free(lease_manager *lm, lease__job *j)
{
    if (j->refs > 0 || (j->known && !j->finished))
        return;
    rc_map_remove(&lm->jobs, j->job_id, RC_JOB_ID_SIZE);
    rc_free(j);
}

static void lease__job_queued(lease_manager *lm, lease__job *j, int delta)
{
    if (delta > 0 && j->n_queued++ == 0)
        lm->n_jobs_queued++;
    else if (delta < 0 && --j->n_queued == 0)
        lm->n_jobs_queued--;
}

/* 1 if job a goes before job b: a higher priority, else a lower share per weight. */
static int lease__job_before(const lease__job *a, const lease__job *b)
{
    if (a->priority != b->priority)
        return a->priority > b->priority;
    return a->share / a->weight < b->share / b->weight;
}

/* ---- resources ---------------------------------------------------------------------- */

static sched_amount lease__alloc_amount(const sched_alloc *a, uint32_t id)
{
    for (uint32_t i = 0; i < a->n; i++)
        if (a->id[i] == id)
            return a->amount[i];
    return 0;
}

/* Recomputes the local node's available CPU from the leases while CPUs are lent or
 * oversubscribed (see the file comment); force: a lease's blocked state just changed. */
static void lease__sync_cpu(lease_manager *lm, int force)
{
    if (!force && !lm->n_blocked && !lm->cpu_oversubscribed)
        return;
    raylet *r = lm->r;
    sched_amount in_use = 0;
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (rc_map_next(&lm->leases, &it, NULL, NULL, &v)) {
        lease *l = v;
        if (l->allocated && !l->blocked)
            in_use += lease__alloc_amount(&l->alloc, SCHED_CPU);
    }
    in_use += bundle_manager_reserved(r->bundles, SCHED_CPU); /* bundles keep theirs */
    sched_amount avail = sched_node_total(r->local_node, SCHED_CPU) - in_use;
    lm->cpu_oversubscribed = avail < 0;
    sched_node_set_available(r->view, r->local_node, SCHED_CPU, avail < 0 ? 0 : avail);
}

static void lease__release(lease *l)
{
    if (!l->allocated)
        return;
    lease_manager *lm = l->lm;
    if (l->blocked) {
        l->blocked = 0;
        lm->n_blocked--;
        lm->cpu_oversubscribed = 1; /* force a recount: its CPUs were already lent back */
    }
    if (l->bundle_gpus)
        bundle_manager_free(lm->r->bundles, &l->alloc, l->bundle_gpus);
    else
        sched_node_free(lm->r->view, lm->r->local_node, &l->alloc);
    l->allocated = 0;
    lease__job *j = l->job;
    if (--j->n_held == 0) {
        j->share = j->cpus = 0; /* no rounding left behind */
    } else {
        j->share -= l->share;
        j->cpus -= l->held_cpus;
    }
    lease__sync_cpu(lm, 0);
}

/* ---- lease lifetime ----------------------------------------------------------------- */

static void lease__dispatch(lease_manager *lm);

static void lease__dispatch_timer(uv_timer_t *t)
{
    lease_manager *lm = t->data;
    lm->dispatch_scheduled = 0;
    lease__dispatch(lm);
}

static void lease__dispatch_soon(lease_manager *lm)
{
    if (lm->closing)
        return;
    if (lm->in_dispatch) {
        lm->dispatch_again = 1;
        return;
    }
    if (!lm->dispatch_scheduled) {
        lm->dispatch_scheduled = 1;
        uv_timer_start(&lm->dispatch_timer, lease__dispatch_timer, 0, 0);
    }
}

static void lease__unqueue(lease *l)
{
    if (!l->queued)
        return;
    lease__job_queued(l->lm, l->job, -1);
    lease_class *c = l->cls;
    if (l->prev)
        l->prev->next = l->next;
    else
        c->head = l->next;
    if (l->next)
        l->next->prev = l->prev;
    else
        c->tail = l->prev;
    l->prev = l->next = NULL;
    l->queued = 0;
    c->n_queued--;
}

/* Frees l: out of the queue, its pop cancelled, its resources back, out of the map. Its
 * call must have been answered. Its worker, if any, is the caller's business. */
static void lease__destroy(lease *l)
{
    lease_manager *lm = l->lm;
    lease__unqueue(l);
    if (l->pop) {
        worker_pool_pop_cancel(lm->r->pool, l->pop);
        l->pop = NULL;
    }
    lease__release(l);
    if (l->w && l->w->lease == l)
        l->w->lease = NULL;
    rc_map_remove(&lm->leases, l->id, l->id_len);
    lease__class_unref(lm, l->cls);
    l->job->refs--;
    lease__job_maybe_free(lm, l->job);
    rc_free(l->bundle_gpus);
    rc_free(l);
    lease__dispatch_soon(lm);
}

static void lease__answer(lease *l, const ProtobufCMessage *reply)
{
    rpc_reply(l->call, reply);
    l->call = NULL;
}

/* Answers l's held call with a failure (canceled = true, as Ray's ReplyCancelled) and frees l. */
static void lease__fail(lease *l, Ray__Rpc__RequestWorkerLeaseReply__SchedulingFailureType type, const char *message)
{
    Ray__Rpc__RequestWorkerLeaseReply reply = RAY__RPC__REQUEST_WORKER_LEASE_REPLY__INIT;
    reply.canceled = 1;
    reply.failure_type = type;
    reply.scheduling_failure_message = (char *)message;
    RC_INFO("lease_manager: lease %s failed: %s", l->id_hex, message);
    lease__answer(l, &reply.base);
    lease__destroy(l);
}

/* A request that can never be served as written: an answer (gRPC OK) naming the problem,
 * with canceled = true and SCHEDULING_CANCELLED_UNSCHEDULABLE so owners fail its tasks with
 * the sentence instead of asking again. (gRPC INVALID_ARGUMENT is the rpc layer's answer
 * to bytes that do not parse.) */
static void lease__reply_invalid(rpc_call *call, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void lease__reply_invalid(rpc_call *call, const char *fmt, ...)
{
    char message[600];
    int n = snprintf(message, sizeof(message), "invalid lease request: ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message + n, sizeof(message) - (size_t)n, fmt, ap);
    va_end(ap);
    Ray__Rpc__RequestWorkerLeaseReply reply = RAY__RPC__REQUEST_WORKER_LEASE_REPLY__INIT;
    reply.canceled = 1;
    reply.failure_type = RAY__RPC__REQUEST_WORKER_LEASE_REPLY__SCHEDULING_FAILURE_TYPE__SCHEDULING_CANCELLED_UNSCHEDULABLE;
    reply.scheduling_failure_message = message;
    RC_INFO("lease_manager: %s", message);
    rpc_reply(call, &reply.base);
}

static void lease__fail_invalid(lease *l, const char *why)
{
    lease__reply_invalid(l->call, "%s", why);
    l->call = NULL;
    lease__destroy(l);
}

static void lease__on_cancel(rpc_call *call, void *arg)
{
    lease *l = arg;
    RC_INFO("lease_manager: the caller of lease %s went away; dropping it", l->id_hex);
    rpc_reply_status(call, GRPC_STATUS_CANCELLED, "the lease request was cancelled by its caller");
    l->call = NULL;
    lease__destroy(l);
}

/* ---- granting ----------------------------------------------------------------------- */

static void lease__grant(lease *l, worker *w)
{
    lease_manager *lm = l->lm;
    raylet *r = lm->r;
    l->state = LEASE_GRANTED;
    l->grant_seq = ++lm->grant_seq;
    l->w = w;
    w->lease = l;
    if (l->cls->actor)
        worker_pool_dedicate(r->pool, w, l->detached);

    Ray__Rpc__Address addr = RAY__RPC__ADDRESS__INIT;
    addr.node_id.data = r->node_id;
    addr.node_id.len = RC_NODE_ID_SIZE;
    addr.ip_address = r->spec.ip;
    addr.port = w->port;
    addr.worker_id.data = w->id;
    addr.worker_id.len = RC_WORKER_ID_SIZE;

    /* resource_mapping: each resource with its instances (GPUs: the concrete ones, for a
     * bundle's GPU resources those it reserved). */
    enum { MAX_IDS = SCHED_REQ_MAX_RESOURCES + 3 * SCHED_MAX_GPUS };
    const sched_alloc *a = &l->alloc;
    Ray__Rpc__ResourceMapEntry entries[SCHED_REQ_MAX_RESOURCES], *entry_ptrs[SCHED_REQ_MAX_RESOURCES];
    Ray__Rpc__ResourceId ids[MAX_IDS], *id_ptrs[MAX_IDS];
    size_t n_ids = 0;
    for (uint32_t i = 0; i < a->n; i++) {
        ray__rpc__resource_map_entry__init(&entries[i]);
        entries[i].name = (char *)sched_view_resource_name(r->view, a->id[i]);
        entries[i].resource_ids = &id_ptrs[n_ids];
        uint8_t idx[SCHED_MAX_GPUS];
        sched_amount amt[SCHED_MAX_GPUS];
        uint32_t n_inst = 0;
        if (a->id[i] == SCHED_GPU) {
            n_inst = a->n_gpus;
            memcpy(idx, a->gpu_index, n_inst);
            memcpy(amt, a->gpu_amount, n_inst * sizeof(*amt));
        } else if (l->bundle_gpus) {
            n_inst = bundle_manager_gpu_instances(r->bundles, a->id[i], l->bundle_gpus, idx, amt);
        }
        for (uint32_t g = 0; g < n_inst && n_ids < MAX_IDS; g++) {
            ray__rpc__resource_id__init(&ids[n_ids]);
            ids[n_ids].index = idx[g];
            ids[n_ids].quantity = (double)amt[g] / (double)SCHED_UNIT;
            id_ptrs[n_ids] = &ids[n_ids];
            n_ids++;
            entries[i].n_resource_ids++;
        }
        if (!n_inst && n_ids < MAX_IDS) {
            ray__rpc__resource_id__init(&ids[n_ids]);
            ids[n_ids].quantity = (double)a->amount[i] / (double)SCHED_UNIT;
            id_ptrs[n_ids] = &ids[n_ids];
            n_ids++;
            entries[i].n_resource_ids = 1;
        }
        entry_ptrs[i] = &entries[i];
    }
    Ray__Rpc__RequestWorkerLeaseReply reply = RAY__RPC__REQUEST_WORKER_LEASE_REPLY__INIT;
    reply.worker_address = &addr;
    reply.worker_pid = (uint32_t)w->pid;
    reply.n_resource_mapping = a->n;
    reply.resource_mapping = entry_ptrs;
    char gpus[200];
    RC_INFO("lease_manager: lease %s granted: worker %.8s (pid %d, port %d)%s, GPUs [%s]", l->id_hex, w->id_hex,
            (int)w->pid, w->port, l->cls->actor ? " for an actor" : "",
            worker_pool_gpu_env(w->key.gpu_mask, NULL, gpus, sizeof(gpus)));
    lease__answer(l, &reply.base);
}

/* A pop's failure, answered: a job the GCS has no record of (RC_EAUTH) is never served
 * here, so its owner fails its tasks with the sentence instead of asking again. */
static void lease__fail_pop(lease *l, int rc, const char *message)
{
    lease__fail(l, rc == RC_EAUTH ? RAY__RPC__REQUEST_WORKER_LEASE_REPLY__SCHEDULING_FAILURE_TYPE__SCHEDULING_CANCELLED_UNSCHEDULABLE
                                  : RAY__RPC__REQUEST_WORKER_LEASE_REPLY__SCHEDULING_FAILURE_TYPE__SCHEDULING_FAILED,
                message);
}

static void lease__worker_ready(worker *w, int rc, const char *message, void *arg)
{
    lease *l = arg;
    l->pop = NULL;
    if (rc < 0) {
        lease__fail_pop(l, rc, message);
        return;
    }
    lease__grant(l, w);
}

/* Takes what l holds on this node (bundle resources through the bundle manager, which
 * picks the bundles and their GPU instances). Returns 0 or RC_EBUSY (nothing taken). */
static int lease__allocate(lease *l)
{
    raylet *r = l->lm->r;
    if (!l->cls->hold_bundles)
        return sched_node_allocate(r->view, r->local_node, &l->cls->hold, &l->alloc);
    bundle_gpu_use *gpus = RC_NEW(bundle_gpu_use);
    if (bundle_manager_allocate(r->bundles, &l->cls->hold, &l->alloc, gpus) < 0) {
        rc_free(gpus);
        return RC_EBUSY;
    }
    l->bundle_gpus = gpus;
    return 0;
}

/* Counts what l was just allocated against its job: its dominant share of the node (none
 * for placement-group leases: their group's bundles are the job's already). */
static void lease__account(lease *l)
{
    raylet *r = l->lm->r;
    double share = 0;
    for (uint32_t i = 0; i < l->alloc.n && !l->cls->hold_bundles; i++) {
        sched_amount total = sched_node_total(r->local_node, l->alloc.id[i]);
        double f = total > 0 ? (double)l->alloc.amount[i] / (double)total : 0;
        if (f > share)
            share = f;
    }
    l->share = share;
    l->held_cpus = (double)lease__alloc_amount(&l->alloc, SCHED_CPU) / (double)SCHED_UNIT;
    lease__job *j = l->job;
    j->n_held++;
    j->share += l->share;
    j->cpus += l->held_cpus;
}

/* Takes l's resources on this node and gets it a worker. Returns RC_EBUSY (nothing done) if
 * the resources are not free; otherwise 0, whatever happens to l after. */
static int lease__start(lease *l)
{
    lease_manager *lm = l->lm;
    raylet *r = lm->r;
    if (lease__allocate(l) < 0)
        return RC_EBUSY;
    l->allocated = 1;
    lease__account(l);
    lease__sync_cpu(lm, 0);
    lease__unqueue(l);
    l->state = LEASE_STARTING;

    uint32_t gpu_mask = 0;
    for (uint32_t g = 0; g < l->alloc.n_gpus; g++)
        gpu_mask |= 1u << l->alloc.gpu_index[g];
    for (uint32_t g = 0; l->bundle_gpus && g < l->bundle_gpus->n; g++)
        gpu_mask |= 1u << l->bundle_gpus->index[g];
    worker_key key;
    worker_key_init(&key, l->job_id, l->language, gpu_mask, l->cls->cpus);
    worker *now;
    worker_pop *pending;
    char message[400];
    int rc = worker_pool_pop(r->pool, &key, lease__worker_ready, l, &now, &pending, message, sizeof(message));
    int first_of_job = !rc_map_get(&lm->jobs_seen, l->job_id, RC_JOB_ID_SIZE);
    if (first_of_job) {
        rc_map_put(&lm->jobs_seen, l->job_id, RC_JOB_ID_SIZE, (void *)1);
        if (rc_cfg.prestart_worker_first_driver)
            worker_pool_prestart(r->pool, l->job_id, (int)ceil(r->spec.num_cpus));
    }
    if (rc < 0)
        lease__fail_pop(l, rc, message);
    else if (now)
        lease__grant(l, now);
    else
        l->pop = pending;
    return 0;
}

/* Answers l with spillback to node (which had the resources free in our view) and frees
 * l. Returns RC_ENOENT (nothing done) if the node's address is unknown. */
static int lease__spill(lease *l, sched_node *node)
{
    raylet *r = l->lm->r;
    const Ray__Rpc__GcsNodeInfo *info = rc_map_get(&r->live_nodes, sched_node_id(node), RC_NODE_ID_SIZE);
    if (!info)
        return RC_ENOENT;
    /* Count it against the node until the next poll, so one round doesn't send it more than
     * it has. */
    sched_alloc taken;
    sched_node_allocate(r->view, node, &l->cls->req, &taken);
    Ray__Rpc__Address addr = RAY__RPC__ADDRESS__INIT;
    addr.node_id.data = (uint8_t *)sched_node_id(node);
    addr.node_id.len = RC_NODE_ID_SIZE;
    addr.ip_address = info->node_manager_address;
    addr.port = info->node_manager_port;
    Ray__Rpc__RequestWorkerLeaseReply reply = RAY__RPC__REQUEST_WORKER_LEASE_REPLY__INIT;
    reply.retry_at_raylet_address = &addr;
    char hex[RC_ID_HEX_MAX];
    RC_INFO("lease_manager: lease %s spills back to node %.8s (%s:%d)", l->id_hex,
            rc_id_hex(sched_node_id(node), RC_NODE_ID_SIZE, hex), info->node_manager_address,
            info->node_manager_port);
    lease__answer(l, &reply.base);
    lease__destroy(l);
    return 0;
}

/* ---- dispatch ----------------------------------------------------------------------- */

static void lease__mark_infeasible(lease_class *c, int64_t now)
{
    for (lease *l = c->head; l; l = l->next)
        if (!l->infeasible_since_ms)
            l->infeasible_since_ms = now;
}

/* Decides for l, queued in c. Returns 1 when c's next lease may be decided now, 0 when
 * c has to wait (the others would get the same answer). */
static int lease__decide(lease_manager *lm, lease_class *c, lease *l, int64_t now)
{
    raylet *r = lm->r;
    sched_options o = c->opts;
    o.preferred_node = r->local_node;
    sched_decision d;
    switch (sched_schedule(r->view, &c->req, &o, &lm->rng, &d)) {
    case SCHED_OK:
        c->infeasible = 0;
        l->infeasible_since_ms = 0;
        if (d.node == r->local_node ? lease__start(l) < 0 : lease__spill(l, d.node) < 0)
            return 0; /* our view was wrong about it: wait for the next change */
        return 1;
    case SCHED_NOT_NOW:
        c->infeasible = 0;
        for (lease *q = c->head; q; q = q->next)
            q->infeasible_since_ms = 0;
        return 0;
    case SCHED_NEVER:
        if (c->hard_affinity) {
            lease__fail(l, RAY__RPC__REQUEST_WORKER_LEASE_REPLY__SCHEDULING_FAILURE_TYPE__SCHEDULING_CANCELLED_UNSCHEDULABLE,
                        d.why);
            return 1;
        }
        if (!c->infeasible)
            RC_INFO("lease_manager: lease %s is infeasible for now: %s", l->id_hex, d.why);
        c->infeasible = 1;
        c->never_epoch = lm->epoch;
        snprintf(c->why, sizeof(c->why), "%s", d.why);
        lease__mark_infeasible(c, now);
        return 0;
    case SCHED_UNAVAILABLE:
        lease__fail(l, RAY__RPC__REQUEST_WORKER_LEASE_REPLY__SCHEDULING_FAILURE_TYPE__SCHEDULING_CANCELLED_UNSCHEDULABLE,
                    d.why);
        return 1;
    case SCHED_INVALID:
        lease__fail_invalid(l, d.why);
        return 1;
    }
    return 0;
}

/* 1 if c is infeasible and nothing changed since it was found so. */
static int lease__still_infeasible(lease_manager *lm, lease_class *c, int64_t now)
{
    if (!c->infeasible || c->never_epoch != lm->epoch)
        return 0;
    lease__mark_infeasible(c, now);
    return 1;
}

/* Decides for c's queued leases in order, until one has to wait. */
static void lease__dispatch_class(lease_manager *lm, lease_class *c)
{
    int64_t now = rc_mono_ms();
    while (c->head && !lm->closing && !lease__still_infeasible(lm, c, now))
        if (!lease__decide(lm, c, c->head, now))
            return;
}

/* 1 if queued lease a goes before b (fair share, see the file comment). */
static int lease__fair_before(const lease *a, const lease *b)
{
    if (a->job != b->job) {
        if (lease__job_before(a->job, b->job))
            return 1;
        if (lease__job_before(b->job, a->job))
            return 0;
    }
    return a->seq < b->seq;
}

/* A fair round (see the file comment): one lease at a time, the first by
 * lease__fair_before over the classes still open. */
static void lease__dispatch_fair(lease_manager *lm)
{
    int64_t now = rc_mono_ms();
    for (lease_class *c = lm->classes_head; c; c = c->next)
        c->fair_closed = 0;
    while (!lm->closing) {
        lease *best = NULL;
        for (lease_class *c = lm->classes_head; c; c = c->next) {
            if (c->fair_closed || !c->head)
                continue;
            if (lease__still_infeasible(lm, c, now)) {
                c->fair_closed = 1;
                continue;
            }
            for (lease *l = c->head; l; l = l->next)
                if (!best || lease__fair_before(l, best))
                    best = l;
        }
        if (!best)
            return;
        lease_class *c = best->cls;
        c->refs++;
        if (!lease__decide(lm, c, best, now))
            c->fair_closed = 1;
        lease__class_unref(lm, c);
    }
}

static void lease__infeasible_timer(uv_timer_t *t);

/* Arms the timer for the infeasible lease that times out first. */
static void lease__arm_infeasible(lease_manager *lm)
{
    int64_t first = INT64_MAX;
    for (lease_class *c = lm->classes_head; c; c = c->next) {
        if (!c->infeasible)
            continue;
        for (lease *l = c->head; l; l = l->next)
            if (l->infeasible_since_ms && l->infeasible_since_ms < first)
                first = l->infeasible_since_ms;
    }
    if (first == INT64_MAX || rc_cfg.unschedulable_task_timeout_ms < 0) { /* < 0: they wait */
        uv_timer_stop(&lm->infeasible_timer);
        return;
    }
    int64_t wait = first + rc_cfg.unschedulable_task_timeout_ms - rc_mono_ms();
    uv_timer_start(&lm->infeasible_timer, lease__infeasible_timer, (uint64_t)(wait > 0 ? wait : 0), 0);
}

/* ---- preemption --------------------------------------------------------------------- */

/* Resources a preemption pass counts as freed (> 0) or promised (< 0) on top of what the
 * local node has available. */
typedef struct lease__delta {
    size_t n, cap;
    uint32_t *id;
    sched_amount *amount;
} lease__delta;

static sched_amount *lease__delta_at(lease__delta *d, uint32_t id)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->id[i] == id)
            return &d->amount[i];
    if (d->n == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 16;
        d->id = rc_realloc(d->id, d->cap * sizeof(*d->id));
        d->amount = rc_realloc(d->amount, d->cap * sizeof(*d->amount));
    }
    d->id[d->n] = id;
    d->amount[d->n] = 0;
    return &d->amount[d->n++];
}

static void lease__delta_add(lease__delta *d, const sched_alloc *a, int sign)
{
    for (uint32_t i = 0; i < a->n; i++)
        *lease__delta_at(d, a->id[i]) += sign * a->amount[i];
}

/* 1 if r fits the local node's available resources plus d; short (if set) gets, for each
 * entry of r, whether it is short. */
static int lease__fits(lease_manager *lm, const sched_request *r, lease__delta *d, int *short_of)
{
    int fits = 1;
    for (uint32_t i = 0; i < r->n; i++) {
        sched_amount have = sched_node_available(lm->r->local_node, r->id[i]) + *lease__delta_at(d, r->id[i]);
        int is_short = have < r->amount[i];
        if (short_of)
            short_of[i] = is_short;
        fits &= !is_short;
    }
    return fits;
}

/* 1 if queued lease l could run on this node at all: its class is not a placement group's
 * or infeasible, and the node matches its selector and strategy and has the totals. */
static int lease__preempt_candidate(lease_manager *lm, const lease *l)
{
    const lease_class *c = l->cls;
    raylet *r = lm->r;
    if (c->infeasible || c->has_pg || c->hold_bundles || !c->req.n)
        return 0;
    if ((c->selector && !sched_selector_matches(c->selector, r->local_node)) ||
        (c->opts.strategy == SCHED_STRATEGY_NODE_LABEL && !sched_selector_matches(c->label_hard, r->local_node)) ||
        (c->opts.strategy == SCHED_STRATEGY_NODE_AFFINITY && !c->opts.affinity_soft &&
         memcmp(c->opts.affinity_node, r->node_id, RC_NODE_ID_SIZE)))
        return 0;
    for (uint32_t i = 0; i < c->req.n; i++)
        if (sched_node_total(r->local_node, c->req.id[i]) < c->req.amount[i])
            return 0;
    return 1;
}

/* A granted lease that may be preempted: a retriable task's, not an actor's, not blocked
 * (its CPUs are lent already), not in a placement group's bundles. */
static int lease__preemptible(const lease *l)
{
    return l->state == LEASE_GRANTED && l->w && l->retriable && !l->cls->actor && !l->blocked && !l->bundle_gpus &&
           !l->cls->hold_bundles;
}

/* Victims first: the lowest priority, then the most recently granted. */
static int lease__victim_cmp(const void *a, const void *b)
{
    const lease *x = *(lease *const *)a, *y = *(lease *const *)b;
    if (x->job->priority != y->job->priority)
        return x->job->priority < y->job->priority ? -1 : 1;
    return x->grant_seq > y->grant_seq ? -1 : x->grant_seq < y->grant_seq;
}

static int lease__candidate_cmp(const void *a, const void *b)
{
    const lease *x = *(lease *const *)a, *y = *(lease *const *)b;
    return lease__fair_before(x, y) ? -1 : lease__fair_before(y, x);
}

static void lease__preempt_timer(uv_timer_t *t);

/* One preemption pass (see the file comment), then the timer armed for the next queued
 * lease to outwait the grace period. */
static void lease__preempt(lease_manager *lm)
{
    if (lm->closing)
        return;
    if (!rc_cfg.job_fair_share || !rc_cfg.job_fair_share_preemption) {
        uv_timer_stop(&lm->preempt_timer);
        return;
    }
    int64_t now = rc_mono_ms(), grace = rc_cfg.job_fair_share_preemption_grace_ms > 0
                                            ? rc_cfg.job_fair_share_preemption_grace_ms
                                            : 0;
    size_t cap = rc_map_size(&lm->leases), n_victims = 0, n_cands = 0;
    lease **victims = rc_malloc((cap ? cap : 1) * sizeof(*victims));
    lease **cands = rc_malloc((cap ? cap : 1) * sizeof(*cands));
    lease **ending = rc_malloc((cap ? cap : 1) * sizeof(*ending));
    int32_t lowest = INT32_MAX;
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (rc_map_next(&lm->leases, &it, NULL, NULL, &v)) {
        lease *l = v;
        if (lease__preemptible(l)) {
            victims[n_victims++] = l;
            if (l->job->priority < lowest)
                lowest = l->job->priority;
        }
    }
    int64_t next_due = INT64_MAX;
    /* Without victims now, waiting leases are looked at again every grace period (a lease
     * of a lower-priority job may be granted meanwhile without a dispatch round). */
    for (lease_class *c = lm->classes_head; c; c = c->next) {
        for (lease *l = c->head; l; l = l->next) {
            if ((n_victims && l->job->priority <= lowest) || !lease__preempt_candidate(lm, l))
                continue;
            int64_t due = (l->preempt_ms > l->queued_ms ? l->preempt_ms : l->queued_ms) + grace;
            if (due > now) {
                if (due < next_due)
                    next_due = due;
                continue;
            }
            l->preempt_ms = now;
            cands[n_cands++] = l;
            if (now + (grace ? grace : 1) < next_due)
                next_due = now + (grace ? grace : 1);
        }
    }
    qsort(victims, n_victims, sizeof(*victims), lease__victim_cmp);
    qsort(cands, n_cands, sizeof(*cands), lease__candidate_cmp);
    /* Each candidate in fair order takes the victims it needs, counting what earlier ones
     * freed and took. taken: 0 free, 1 chosen for this candidate, 2 chosen. */
    uint8_t *taken = rc_calloc(n_victims ? n_victims : 1, 1);
    lease__delta d = {0};
    size_t n_ending = 0;
    for (size_t k = 0; k < n_cands; k++) {
        lease *q = cands[k];
        const sched_request *req = &q->cls->req;
        int short_of[SCHED_REQ_MAX_RESOURCES];
        if (!lease__fits(lm, req, &d, short_of)) {
            lease__delta trial = {0};
            for (size_t i = 0; i < d.n; i++)
                *lease__delta_at(&trial, d.id[i]) = d.amount[i];
            int fits = 0;
            for (size_t i = 0; i < n_victims && !fits; i++) {
                lease *w = victims[i];
                if (taken[i] || w->job->priority >= q->job->priority)
                    continue;
                int helps = 0;
                for (uint32_t e = 0; e < req->n && !helps; e++)
                    helps = short_of[e] && lease__alloc_amount(&w->alloc, req->id[e]) > 0;
                if (!helps)
                    continue;
                taken[i] = 1;
                lease__delta_add(&trial, &w->alloc, 1);
                fits = lease__fits(lm, req, &trial, short_of);
            }
            for (size_t i = 0; i < n_victims; i++)
                if (taken[i] == 1)
                    taken[i] = fits ? 2 : 0;
            if (fits) {
                rc_free(d.id);
                rc_free(d.amount);
                d = trial;
            } else {
                rc_free(trial.id);
                rc_free(trial.amount);
                continue; /* even every lower-priority task would not make room */
            }
            for (size_t i = 0; i < n_victims; i++) {
                if (taken[i] != 2 || !victims[i]->w)
                    continue;
                lease *w = victims[i];
                char jv[RC_ID_HEX_MAX], jq[RC_ID_HEX_MAX];
                RC_INFO("lease_manager: preempting lease %s (job %s, priority %d, asked for task '%s', worker %.8s "
                        "pid %d) for lease %s (job %s, priority %d, task '%s', waiting %lld ms)",
                        w->id_hex, rc_id_hex(w->job_id, RC_JOB_ID_SIZE, jv), (int)w->job->priority, w->task_name,
                        w->w->id_hex, (int)w->w->pid, q->id_hex, rc_id_hex(q->job_id, RC_JOB_ID_SIZE, jq),
                        (int)q->job->priority, q->task_name, (long long)(now - q->queued_ms));
                ending[n_ending++] = w;
                taken[i] = 3;
            }
        }
        /* What it will take once granted is not there for the next one. */
        for (uint32_t e = 0; e < req->n; e++)
            *lease__delta_at(&d, req->id[e]) -= req->amount[e];
    }
    rc_free(d.id);
    rc_free(d.amount);
    rc_free(taken);
    rc_free(cands);
    rc_free(victims);
    for (size_t i = 0; i < n_ending; i++) {
        lease *l = ending[i];
        worker *w = l->w;
        char why[200];
        snprintf(why, sizeof(why),
                 "preempted: its lease (job priority %d) made room for a job of higher priority "
                 "(job_fair_share_preemption)",
                 (int)l->job->priority);
        lm->preempted[lm->n_preempted % LEASE__PREEMPTED_KEPT].len = l->id_len;
        memcpy(lm->preempted[lm->n_preempted % LEASE__PREEMPTED_KEPT].id, l->id, l->id_len);
        lm->n_preempted++;
        lease__destroy(l);
        worker_pool_kill(lm->r->pool, w, why);
    }
    rc_free(ending);
    if (next_due == INT64_MAX) {
        uv_timer_stop(&lm->preempt_timer);
        return;
    }
    uv_timer_start(&lm->preempt_timer, lease__preempt_timer, (uint64_t)(next_due > now ? next_due - now : 0), 0);
}

static void lease__preempt_timer(uv_timer_t *t)
{
    lease__preempt(t->data);
}

static void lease__dispatch(lease_manager *lm)
{
    if (lm->closing)
        return;
    bundle_manager_flush(lm->r->bundles); /* commits and cancels of this iteration first */
    if (lm->in_dispatch) {
        lm->dispatch_again = 1;
        return;
    }
    lm->in_dispatch = 1;
    do {
        lm->dispatch_again = 0;
        if (rc_cfg.job_fair_share && lm->n_jobs_queued > 1) {
            lease__dispatch_fair(lm);
            continue;
        }
        /* Rotate: the class served first last time goes last. */
        lease_class *first = lm->classes_head;
        if (first && first->next) {
            lm->classes_head = first->next;
            lm->classes_head->prev = NULL;
            first->prev = lm->classes_tail;
            first->next = NULL;
            lm->classes_tail->next = first;
            lm->classes_tail = first;
        }
        for (lease_class *c = lm->classes_head, *next; c; c = next) {
            c->refs++;
            if (c->head)
                lease__dispatch_class(lm, c);
            next = c->next;
            lease__class_unref(lm, c);
        }
    } while (lm->dispatch_again && !lm->closing);
    lm->in_dispatch = 0;
    if (lm->dispatch_scheduled) {
        uv_timer_stop(&lm->dispatch_timer);
        lm->dispatch_scheduled = 0;
    }
    lease__arm_infeasible(lm);
    lease__preempt(lm);
}

static void lease__infeasible_timer(uv_timer_t *t)
{
    lease_manager *lm = t->data;
    int64_t now = rc_mono_ms();
    for (lease_class *c = lm->classes_head, *cnext; c; c = cnext) {
        c->refs++;
        if (c->infeasible) {
            for (lease *l = c->head, *next; l; l = next) {
                next = l->next;
                if (!l->infeasible_since_ms || now - l->infeasible_since_ms < rc_cfg.unschedulable_task_timeout_ms)
                    continue;
                char message[SCHED_WHY_MAX + 200];
                snprintf(message, sizeof(message),
                         "%s. No node that could run it joined the cluster within %lld ms "
                         "(unschedulable_task_timeout_ms)",
                         c->why, (long long)rc_cfg.unschedulable_task_timeout_ms);
                lease__fail(l, RAY__RPC__REQUEST_WORKER_LEASE_REPLY__SCHEDULING_FAILURE_TYPE__SCHEDULING_CANCELLED_UNSCHEDULABLE,
                            message);
            }
        }
        cnext = c->next;
        lease__class_unref(lm, c);
    }
    lease__arm_infeasible(lm);
}

/* ---- backlog ------------------------------------------------------------------------ */

static void lease__backlog_key(const uint8_t owner[RC_WORKER_ID_SIZE], const lease_class *c, rc_buf *key)
{
    rc_buf_append(key, owner, RC_WORKER_ID_SIZE);
    rc_buf_append(key, c->key, c->klen);
}

/* Sets owner's backlog for class c of job_id (NULL: not known; 0 removes it). */
static void lease__backlog_set(lease_manager *lm, const uint8_t owner[RC_WORKER_ID_SIZE], const uint8_t *job_id,
                               lease_class *c, int64_t size)
{
    rc_buf key = RC_BUF_INIT;
    lease__backlog_key(owner, c, &key);
    lease__backlog *b = rc_map_get(&lm->backlog, key.data, key.len);
    if (b) {
        c->backlog += size - b->size;
        b->size = size;
        if (!size) {
            rc_map_remove(&lm->backlog, key.data, key.len);
            lease__class_unref(lm, b->cls);
            rc_free(b);
        }
    } else if (size > 0) {
        b = RC_NEW(lease__backlog);
        b->cls = c;
        b->size = size;
        if (job_id) {
            b->has_job = 1;
            memcpy(b->job_id, job_id, RC_JOB_ID_SIZE);
        }
        c->refs++;
        c->backlog += size;
        rc_map_put(&lm->backlog, key.data, key.len, b);
    }
    rc_buf_free(&key);
}

/* Forgets the backlog of owner (job_id NULL) or of every owner of job_id (owner NULL). */
static void lease__backlog_clear(lease_manager *lm, const uint8_t *owner, const uint8_t *job_id)
{
    rc_map_iter it = RC_MAP_ITER_INIT;
    const void *key;
    size_t klen;
    void *v;
    while (rc_map_next(&lm->backlog, &it, &key, &klen, &v)) {
        const lease__backlog *b = v;
        if (owner && (klen < RC_WORKER_ID_SIZE || memcmp(key, owner, RC_WORKER_ID_SIZE)))
            continue;
        if (job_id && (!b->has_job || memcmp(b->job_id, job_id, RC_JOB_ID_SIZE)))
            continue;
        rc_map_iter_remove(&lm->backlog, &it);
        b->cls->backlog -= b->size;
        lease__class_unref(lm, b->cls);
        rc_free((void *)b);
    }
}

/* ---- handlers ----------------------------------------------------------------------- */

/* grant_or_reject: this node, now, or not at all. */
static void lease__grant_or_reject(lease *l)
{
    lease_manager *lm = l->lm;
    raylet *r = lm->r;
    lease_class *c = l->cls;
    sched_options o = c->opts;
    o.preferred_node = r->local_node;
    sched_decision d;
    if (sched_schedule(r->view, &c->req, &o, &lm->rng, &d) == SCHED_INVALID) {
        lease__fail_invalid(l, d.why);
        return;
    }
    int here = (!c->selector || sched_selector_matches(c->selector, r->local_node)) &&
               (c->opts.strategy != SCHED_STRATEGY_NODE_LABEL || sched_selector_matches(c->label_hard, r->local_node)) &&
               (c->opts.strategy != SCHED_STRATEGY_NODE_AFFINITY || c->opts.affinity_soft ||
                !memcmp(c->opts.affinity_node, r->node_id, RC_NODE_ID_SIZE));
    if (here && lease__start(l) == 0)
        return;
    Ray__Rpc__RequestWorkerLeaseReply reply = RAY__RPC__REQUEST_WORKER_LEASE_REPLY__INIT;
    reply.rejected = 1;
    RC_INFO("lease_manager: lease %s rejected (grant_or_reject, not free here now)", l->id_hex);
    lease__answer(l, &reply.base);
    lease__destroy(l);
}

static void handle_request_worker_lease(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    lease_manager *lm = arg;
    raylet *r = lm->r;
    const Ray__Rpc__RequestWorkerLeaseRequest *req = (const void *)request;
    const Ray__Rpc__LeaseSpec *spec = req->lease_spec;
    if (r->state == RAYLET_STOPPING || lm->closing)
        return rpc_reply_status(call, GRPC_STATUS_UNAVAILABLE, "the raylet is shutting down");
    if (!spec)
        return lease__reply_invalid(call, "it has no lease_spec");
    if (!spec->lease_id.len || spec->lease_id.len > LEASE__ID_MAX)
        return lease__reply_invalid(call, "lease_spec.lease_id holds %zu bytes; it must hold 1 to %d",
                                    spec->lease_id.len, LEASE__ID_MAX);
    if (spec->job_id.len != RC_JOB_ID_SIZE)
        return lease__reply_invalid(call, "lease_spec.job_id holds %zu bytes; a job ID has %d", spec->job_id.len,
                                    RC_JOB_ID_SIZE);
    if (req->backlog_size < 0)
        return lease__reply_invalid(call, "backlog_size %lld is negative", (long long)req->backlog_size);
    if (!worker_language_supported(spec->language))
        return lease__reply_invalid(call, "lease_spec.language is %s (%d); this raylet starts Python and C++ workers",
                                    worker_language_name(spec->language), (int)spec->language);
    if (rc_map_get(&lm->leases, spec->lease_id.data, spec->lease_id.len)) {
        Ray__Rpc__RequestWorkerLeaseReply reply = RAY__RPC__REQUEST_WORKER_LEASE_REPLY__INIT;
        reply.canceled = 1;
        reply.failure_type = RAY__RPC__REQUEST_WORKER_LEASE_REPLY__SCHEDULING_FAILURE_TYPE__SCHEDULING_FAILED;
        reply.scheduling_failure_message = "a lease with this lease_id is already held or requested here";
        return rpc_reply(call, &reply.base);
    }
    char err[400];
    lease_class *c;
    if (lease__class_get(lm, spec, &c, err, sizeof(err)) < 0)
        return lease__reply_invalid(call, "%s", err);

    lease *l = RC_NEW(lease);
    l->lm = lm;
    memcpy(l->id, spec->lease_id.data, spec->lease_id.len);
    l->id_len = spec->lease_id.len;
    rc_id_hex(l->id, l->id_len < 8 ? l->id_len : 8, l->id_hex);
    memcpy(l->job_id, spec->job_id.data, RC_JOB_ID_SIZE);
    l->language = spec->language;
    const Ray__Rpc__Address *caller = spec->caller_address;
    if (caller && caller->worker_id.len == RC_WORKER_ID_SIZE) {
        memcpy(l->owner, caller->worker_id.data, RC_WORKER_ID_SIZE);
        l->has_owner = 1;
        if (caller->node_id.len == RC_NODE_ID_SIZE) {
            memcpy(l->owner_node, caller->node_id.data, RC_NODE_ID_SIZE);
            l->has_owner_node = 1;
        }
        /* Only an owner of this node keeps its backlog here up to date (and is seen going
         * away); a spilled-back request's backlog stays with the owner's own raylet. */
        int local_owner = caller->node_id.len == RC_NODE_ID_SIZE &&
                          !memcmp(caller->node_id.data, r->node_id, RC_NODE_ID_SIZE);
        if (local_owner && !req->grant_or_reject)
            lease__backlog_set(lm, l->owner, spec->job_id.data, c, req->backlog_size);
    }
    l->cls = c;
    l->job = lease__job_get(lm, l->job_id);
    l->job->refs++;
    l->seq = ++lm->seq;
    l->detached = c->actor && spec->is_detached_actor;
    l->retriable = spec->type == RAY__RPC__TASK_TYPE__NORMAL_TASK && spec->max_retries != 0;
    snprintf(l->task_name, sizeof(l->task_name), "%s", spec->task_name ? spec->task_name : "");
    l->call = call;
    l->queued_ms = rc_mono_ms();
    rc_map_put(&lm->leases, l->id, l->id_len, l);
    rpc_call_on_cancel(call, lease__on_cancel, l);
    if (req->grant_or_reject) {
        lease__grant_or_reject(l);
        return;
    }
    l->prev = c->tail;
    if (c->tail)
        c->tail->next = l;
    else
        c->head = l;
    c->tail = l;
    l->queued = 1;
    c->n_queued++;
    lease__job_queued(lm, l->job, 1);
    lease__dispatch(lm);
}

static void handle_return_worker_lease(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    lease_manager *lm = arg;
    const Ray__Rpc__ReturnWorkerLeaseRequest *req = (const void *)request;
    Ray__Rpc__ReturnWorkerLeaseReply reply = RAY__RPC__RETURN_WORKER_LEASE_REPLY__INIT;
    lease *l = req->lease_id.len ? rc_map_get(&lm->leases, req->lease_id.data, req->lease_id.len) : NULL;
    if (!l && !req->lease_id.len && req->worker_port > 0) {
        worker *w = worker_pool_find_by_port(lm->r->pool, req->worker_port);
        l = w ? w->lease : NULL;
    }
    if (!l || l->state != LEASE_GRANTED) {
        /* Already freed (its worker died) or never granted: nothing to give back. */
        RC_DEBUG("lease_manager: ReturnWorkerLease for a lease not granted here; nothing to do");
        rpc_reply(call, &reply.base);
        return;
    }
    worker *w = l->w;
    /* An actor's worker is its own: it goes with its lease, whatever the caller asked. */
    int actor = l->cls->actor;
    int kill_it = req->disconnect_worker || req->worker_exiting || actor;
    const char *why = req->disconnect_worker_error_detail && *req->disconnect_worker_error_detail
                          ? req->disconnect_worker_error_detail
                      : actor ? "its actor's lease was returned"
                              : "its lease was returned with disconnect_worker";
    RC_INFO("lease_manager: lease %s returned%s", l->id_hex,
            actor ? " (an actor's: its worker goes)" : kill_it ? " with its worker disconnected" : "");
    rpc_reply(call, &reply.base);
    lease__destroy(l);
    if (kill_it)
        worker_pool_kill(lm->r->pool, w, why);
    else
        worker_pool_push(lm->r->pool, w);
}

static void handle_cancel_worker_lease(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    lease_manager *lm = arg;
    const Ray__Rpc__CancelWorkerLeaseRequest *req = (const void *)request;
    Ray__Rpc__CancelWorkerLeaseReply reply = RAY__RPC__CANCEL_WORKER_LEASE_REPLY__INIT;
    lease *l = req->lease_id.len ? rc_map_get(&lm->leases, req->lease_id.data, req->lease_id.len) : NULL;
    if (l && l->state != LEASE_GRANTED && l->call) {
        lease__fail(l, RAY__RPC__REQUEST_WORKER_LEASE_REPLY__SCHEDULING_FAILURE_TYPE__SCHEDULING_CANCELLED_INTENDED,
                    "the lease request was cancelled (CancelWorkerLease)");
        reply.success = 1;
    }
    rpc_reply(call, &reply.base);
}

/* Ray's GetWorkerFailureCause: whether this raylet preempted the lease (see the file
 * comment); for any other lease, nothing is known here (an empty answer). */
static void handle_get_worker_failure_cause(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    lease_manager *lm = arg;
    const Ray__Rpc__GetWorkerFailureCauseRequest *req = (const void *)request;
    Ray__Rpc__GetWorkerFailureCauseReply reply = RAY__RPC__GET_WORKER_FAILURE_CAUSE_REPLY__INIT;
    Ray__Rpc__RayErrorInfo info = RAY__RPC__RAY_ERROR_INFO__INIT;
    size_t kept = lm->n_preempted < LEASE__PREEMPTED_KEPT ? (size_t)lm->n_preempted : LEASE__PREEMPTED_KEPT;
    for (size_t i = 0; i < kept && req->lease_id.len; i++) {
        if (lm->preempted[i].len != req->lease_id.len || memcmp(lm->preempted[i].id, req->lease_id.data, req->lease_id.len))
            continue;
        info.error_type = RAY__RPC__ERROR_TYPE__WORKER_DIED;
        info.error_message = "the raylet preempted the worker's lease to make room for a job of higher priority "
                             "(job_fair_share_preemption)";
        reply.failure_cause = &info;
        reply.rayc_preempted = 1;
        break;
    }
    rpc_reply(call, &reply.base);
}

static void handle_report_worker_backlog(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    lease_manager *lm = arg;
    const Ray__Rpc__ReportWorkerBacklogRequest *req = (const void *)request;
    Ray__Rpc__ReportWorkerBacklogReply reply = RAY__RPC__REPORT_WORKER_BACKLOG_REPLY__INIT;
    /* The reply has no room for errors (Ray's neither): bad reports are logged and skipped. */
    rpc_reply(call, &reply.base);
    if (req->worker_id.len != RC_WORKER_ID_SIZE) {
        RC_WARN("lease_manager: ReportWorkerBacklog ignored: worker_id holds %zu bytes, a worker ID has %d",
                req->worker_id.len, RC_WORKER_ID_SIZE);
        return;
    }
    lease__backlog_clear(lm, req->worker_id.data, NULL);
    for (size_t i = 0; i < req->n_backlog_reports; i++) {
        const Ray__Rpc__WorkerBacklogReport *b = req->backlog_reports[i];
        char err[300];
        lease_class *c;
        if (!b->lease_spec || b->backlog_size < 0) {
            RC_WARN("lease_manager: ReportWorkerBacklog: report %zu ignored: it needs a lease_spec and a "
                    "backlog_size >= 0", i);
            continue;
        }
        if (lease__class_get(lm, b->lease_spec, &c, err, sizeof(err)) < 0) {
            RC_WARN("lease_manager: ReportWorkerBacklog: report %zu ignored: %s", i, err);
            continue;
        }
        const ProtobufCBinaryData *job = &b->lease_spec->job_id;
        lease__backlog_set(lm, req->worker_id.data, job->len == RC_JOB_ID_SIZE ? job->data : NULL, c,
                           b->backlog_size);
        lease__class_unref(lm, c);
    }
}

const rpc_method_handler lease_manager_handlers[] = {
    {"RequestWorkerLease", handle_request_worker_lease},
    {"ReturnWorkerLease", handle_return_worker_lease},
    {"CancelWorkerLease", handle_cancel_worker_lease},
    {"GetWorkerFailureCause", handle_get_worker_failure_cause},
    {"ReportWorkerBacklog", handle_report_worker_backlog},
    {NULL, NULL},
};

/* ---- events from the rest of the raylet --------------------------------------------- */

void lease_manager_view_changed(lease_manager *lm, int nodes_changed)
{
    if (nodes_changed)
        lm->epoch++;
    lease__dispatch_soon(lm);
}

void lease_manager_worker_dead(lease_manager *lm, worker *w, const char *why)
{
    lease *l = w->lease;
    if (!l)
        return;
    RC_WARN("lease_manager: worker %.8s of lease %s %s; its resources are free again", w->id_hex, l->id_hex, why);
    l->w = NULL;
    w->lease = NULL;
    lease__destroy(l);
}

/* Ends the leases of one owner (owner_id) or of every owner on one node (node_id). */
static void lease__owners_gone(lease_manager *lm, const uint8_t *owner_id, const uint8_t *node_id)
{
    size_t n = 0, cap = rc_map_size(&lm->leases);
    lease **mine = rc_malloc((cap ? cap : 1) * sizeof(*mine));
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (rc_map_next(&lm->leases, &it, NULL, NULL, &v)) {
        lease *l = v;
        if (owner_id ? l->has_owner && !memcmp(l->owner, owner_id, RC_WORKER_ID_SIZE)
                     : l->has_owner_node && !memcmp(l->owner_node, node_id, RC_NODE_ID_SIZE) &&
                           !(l->detached && l->state == LEASE_GRANTED))
            mine[n++] = l;
    }
    for (size_t i = 0; i < n; i++) {
        lease *l = mine[i];
        if (l->state != LEASE_GRANTED) {
            lease__fail(l, RAY__RPC__REQUEST_WORKER_LEASE_REPLY__SCHEDULING_FAILURE_TYPE__SCHEDULING_CANCELLED_INTENDED,
                        owner_id ? "the owner of the lease request went away"
                                 : "the node of the lease request's owner died");
            continue;
        }
        worker *w = l->w;
        if (!owner_id)
            RC_INFO("lease_manager: lease %s ends: its owner's node died", l->id_hex);
        lease__destroy(l);
        if (w)
            worker_pool_kill(lm->r->pool, w, owner_id ? "the owner of its lease went away"
                                                      : "the node of its lease's owner died");
    }
    rc_free(mine);
}

void lease_manager_owner_gone(lease_manager *lm, const uint8_t owner_id[RC_WORKER_ID_SIZE])
{
    lease__backlog_clear(lm, owner_id, NULL);
    lease__owners_gone(lm, owner_id, NULL);
}

void lease_manager_owner_node_gone(lease_manager *lm, const uint8_t node_id[RC_NODE_ID_SIZE])
{
    lease__owners_gone(lm, NULL, node_id);
}

void lease_manager_job_finished(lease_manager *lm, const uint8_t job_id[RC_JOB_ID_SIZE])
{
    lease__backlog_clear(lm, NULL, job_id);
    size_t n = 0, cap = rc_map_size(&lm->leases);
    lease **waiting = rc_malloc((cap ? cap : 1) * sizeof(*waiting));
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (rc_map_next(&lm->leases, &it, NULL, NULL, &v)) {
        lease *l = v;
        if (l->state != LEASE_GRANTED && l->call && !l->detached && !memcmp(l->job_id, job_id, RC_JOB_ID_SIZE))
            waiting[n++] = l;
    }
    for (size_t i = 0; i < n; i++)
        lease__fail(waiting[i], RAY__RPC__REQUEST_WORKER_LEASE_REPLY__SCHEDULING_FAILURE_TYPE__SCHEDULING_CANCELLED_INTENDED,
                    "the job of the lease request has finished");
    rc_free(waiting);
}

size_t lease_manager_end_holding(lease_manager *lm, const uint32_t *ids, size_t n_ids, const char *why)
{
    size_t n = 0, cap = rc_map_size(&lm->leases);
    lease **ending = rc_malloc((cap ? cap : 1) * sizeof(*ending));
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (rc_map_next(&lm->leases, &it, NULL, NULL, &v)) {
        lease *l = v;
        if (!l->allocated)
            continue;
        int holds = 0;
        for (uint32_t i = 0; i < l->alloc.n && !holds; i++)
            for (size_t k = 0; k < n_ids && !holds; k++)
                holds = l->alloc.id[i] == ids[k] && l->alloc.amount[i] > 0;
        if (holds)
            ending[n++] = l;
    }
    for (size_t i = 0; i < n; i++) {
        lease *l = ending[i];
        if (l->state != LEASE_GRANTED) {
            lease__fail(l, RAY__RPC__REQUEST_WORKER_LEASE_REPLY__SCHEDULING_FAILURE_TYPE__SCHEDULING_CANCELLED_INTENDED,
                        why);
            continue;
        }
        worker *w = l->w;
        RC_INFO("lease_manager: lease %s ends: %s", l->id_hex, why);
        lease__destroy(l);
        if (w)
            worker_pool_kill(lm->r->pool, w, why);
    }
    rc_free(ending);
    return n;
}

int lease_manager_set_blocked(lease_manager *lm, worker *w, int blocked)
{
    lease *l = w->lease;
    if (!l || l->state != LEASE_GRANTED)
        return RC_ENOENT;
    blocked = !!blocked;
    if (l->blocked == blocked)
        return 0;
    l->blocked = blocked;
    if (blocked)
        lm->n_blocked++;
    else
        lm->n_blocked--;
    lease__sync_cpu(lm, 1);
    RC_INFO("lease_manager: lease %s %s: its CPUs are %s", l->id_hex, blocked ? "blocked" : "unblocked",
            blocked ? "lent to the node" : "taken back");
    if (blocked)
        lease__dispatch_soon(lm);
    return 0;
}

void lease_manager_job_info(lease_manager *lm, const uint8_t job_id[RC_JOB_ID_SIZE], const Ray__Rpc__JobConfig *config,
                            int is_dead)
{
    lease__job *j = lease__job_get(lm, job_id);
    int32_t priority = config ? config->rayc_priority : 0;
    double weight = config && isfinite(config->rayc_weight) && config->rayc_weight > 0 ? config->rayc_weight : 1;
    if (!j->known || j->priority != priority || j->weight != weight) {
        char hex[RC_ID_HEX_MAX];
        RC_DEBUG("lease_manager: job %s: priority %d, weight %g", rc_id_hex(job_id, RC_JOB_ID_SIZE, hex), (int)priority,
                 weight);
    }
    j->known = 1;
    j->priority = priority;
    j->weight = weight;
    j->finished = is_dead;
    lease__job_maybe_free(lm, j);
    if (!is_dead)
        lease__dispatch_soon(lm); /* the order of queued leases may have changed */
}

Ray__Rpc__RaycJobUsage **lease_manager_job_usage(lease_manager *lm, size_t *n)
{
    rc_free(lm->usage);
    rc_free(lm->usage_ptrs);
    size_t cap = rc_map_size(&lm->jobs);
    lm->usage = rc_calloc(cap ? cap : 1, sizeof(*lm->usage));
    lm->usage_ptrs = rc_calloc(cap ? cap : 1, sizeof(*lm->usage_ptrs));
    *n = 0;
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (rc_map_next(&lm->jobs, &it, NULL, NULL, &v)) {
        lease__job *j = v;
        if (!j->n_held && !j->n_queued)
            continue;
        Ray__Rpc__RaycJobUsage *u = &lm->usage[*n];
        ray__rpc__rayc_job_usage__init(u);
        u->job_id.data = j->job_id;
        u->job_id.len = RC_JOB_ID_SIZE;
        u->priority = j->priority;
        u->weight = j->weight;
        u->leases = (uint32_t)j->n_held;
        u->cpus = j->cpus;
        u->share = j->share;
        u->queued = (uint32_t)j->n_queued;
        lm->usage_ptrs[(*n)++] = u;
    }
    return lm->usage_ptrs;
}

/* ---- demand ------------------------------------------------------------------------- */

Ray__Rpc__ResourceLoad *lease_manager_load(lease_manager *lm)
{
    size_t n = 0;
    for (lease_class *c = lm->classes_head; c; c = c->next)
        n += c->n_queued > 0 || c->backlog > 0;
    if (!n)
        return NULL;
    Ray__Rpc__ResourceLoad *load = RC_NEW(Ray__Rpc__ResourceLoad);
    ray__rpc__resource_load__init(load);
    load->resource_demands = rc_calloc(n, sizeof(*load->resource_demands));
    for (lease_class *c = lm->classes_head; c; c = c->next) {
        if (!c->n_queued && c->backlog <= 0)
            continue;
        Ray__Rpc__ResourceDemand *d = RC_NEW(Ray__Rpc__ResourceDemand);
        ray__rpc__resource_demand__init(d);
        Ray__Rpc__ResourceDemand__ShapeEntry *entries = rc_calloc(c->n_shape + 1, sizeof(*entries));
        d->shape = rc_calloc(c->n_shape + 1, sizeof(*d->shape));
        d->shape[c->n_shape] = entries; /* the block, found again by lease_manager_load_free */
        for (size_t i = 0; i < c->n_shape; i++) {
            ray__rpc__resource_demand__shape_entry__init(&entries[i]);
            entries[i].key = c->shape_names[i];
            entries[i].value = c->shape_amounts[i];
            d->shape[i] = &entries[i];
        }
        d->n_shape = c->n_shape;
        if (c->infeasible)
            d->num_infeasible_requests_queued = c->n_queued;
        else
            d->num_ready_requests_queued = c->n_queued;
        d->backlog_size = c->backlog;
        if (c->label_selector) {
            d->label_selectors = rc_calloc(1, sizeof(*d->label_selectors));
            d->label_selectors[0] = c->label_selector;
            d->n_label_selectors = 1;
        }
        load->resource_demands[load->n_resource_demands++] = d;
    }
    return load;
}

void lease_manager_load_free(Ray__Rpc__ResourceLoad *load)
{
    if (!load)
        return;
    for (size_t i = 0; i < load->n_resource_demands; i++) {
        Ray__Rpc__ResourceDemand *d = load->resource_demands[i];
        rc_free(d->shape[d->n_shape]);
        rc_free(d->shape);
        rc_free(d->label_selectors);
        rc_free(d);
    }
    rc_free(load->resource_demands);
    rc_free(load);
}

int lease_manager_busy(const lease_manager *lm)
{
    return rc_map_size(&lm->leases) > 0;
}

/* ---- lifetime ----------------------------------------------------------------------- */

int lease_manager_create(raylet *r, lease_manager **out)
{
    lease_manager *lm = RC_NEW(lease_manager);
    lm->r = r;
    uint64_t seed;
    rc_id_random(&seed, sizeof(seed));
    sched_rng_seed(&lm->rng, seed);
    rc_map_init(&lm->leases);
    rc_map_init(&lm->classes);
    rc_map_init(&lm->backlog);
    rc_map_init(&lm->jobs_seen);
    rc_map_init(&lm->jobs);
    uv_timer_init(r->loop, &lm->dispatch_timer);
    uv_timer_init(r->loop, &lm->infeasible_timer);
    uv_timer_init(r->loop, &lm->preempt_timer);
    lm->dispatch_timer.data = lm->infeasible_timer.data = lm->preempt_timer.data = lm;
    lm->handles_open = 3;
    *out = lm;
    return 0;
}

static void lease__closed(uv_handle_t *h)
{
    lease_manager *lm = h->data;
    if (--lm->handles_open == 0)
        rc_free(lm);
}

static void lease__free_backlog(void *v) /* and jobs: plain blocks */
{
    rc_free(v);
}

void lease_manager_destroy(lease_manager *lm)
{
    if (!lm)
        return;
    lm->closing = 1;
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (rc_map_next(&lm->leases, &it, NULL, NULL, &v)) {
        lease *l = v;
        if (l->call)
            rpc_reply_status(l->call, GRPC_STATUS_UNAVAILABLE, "the raylet is shutting down");
        if (l->pop)
            worker_pool_pop_cancel(lm->r->pool, l->pop);
        if (l->w && l->w->lease == l)
            l->w->lease = NULL;
        rc_map_iter_remove(&lm->leases, &it);
        rc_free(l->bundle_gpus);
        rc_free(l);
    }
    rc_map_destroy(&lm->leases, NULL);
    rc_map_destroy(&lm->backlog, lease__free_backlog);
    while (lm->classes_head) {
        lease_class *c = lm->classes_head;
        lm->classes_head = c->next;
        lease__class_free(c);
    }
    rc_map_destroy(&lm->classes, NULL);
    rc_map_destroy(&lm->jobs_seen, NULL);
    rc_map_destroy(&lm->jobs, lease__free_backlog);
    rc_free(lm->usage);
    rc_free(lm->usage_ptrs);
    uv_close((uv_handle_t *)&lm->dispatch_timer, lease__closed);
    uv_close((uv_handle_t *)&lm->infeasible_timer, lease__closed);
    uv_close((uv_handle_t *)&lm->preempt_timer, lease__closed);
}

uint64_t lease_manager_preemptions(const lease_manager *lm)
{
    return lm->n_preempted;
}

const char *lease_manager_explain(const lease_manager *lm, const uint8_t *lease_id, size_t len)
{
    if (len != RC_UNIQUE_ID_SIZE)
        return "";
    const lease *l = rc_map_get(&lm->leases, lease_id, RC_UNIQUE_ID_SIZE);
    return l && l->cls && l->cls->infeasible && l->infeasible_since_ms ? l->cls->why : "";
}
