/*
 * GCS job manager: the job table and JobInfoGcsService.
 *
 * A driver asks for a job ID (GetNextJobID, a counter kept by the store so IDs stay unique
 * across GCS restarts), registers the job (AddJob) and marks it finished (MarkJobFinished).
 * Every change is stored (table JOB, key = 4-byte job ID, value = JobTableData) before it
 * is answered, then published on the job channel. A job's fair-share priority and weight
 * (JobConfig.rayc_priority, rayc_weight) travel in its record to every raylet; a weight
 * that is not a finite number >= 0 is refused, 0 (unset) is stored as 1.
 *
 * Memory stays bounded on a cluster that runs jobs for months: at most
 * maximum_gcs_finished_job_cached_count finished jobs are kept (Ray keeps them all); the
 * ones that finished first go, from memory and from storage, as Ray drops dead actors and
 * nodes. Running jobs are never dropped. The job ID counter is apart, so IDs stay unique.
 *
 * Loop thread only.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gcs_int.h"
#include "rc_alloc.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_log.h"
#include "rc_time.h"

struct gcs_job_manager {
    gcs_server *gcs;
    rc_map jobs; /* job id -> Ray__Rpc__JobTableData (owned) */
    gcs_load_cb load_cb;
    /* Finished jobs in the order they finished (a ring of IDs), oldest at head. */
    uint8_t (*finished)[RC_JOB_ID_SIZE];
    size_t fin_head, fin_len, fin_cap;
};

typedef struct gcs__job_op {
    gcs_job_manager *jm;
    rpc_call *call;
    Ray__Rpc__JobTableData *job; /* owned until it enters the table */
    int finishing;
} gcs__job_op;

static void gcs__job_free(void *p)
{
    rpc_msg_free(p);
}

/* ---- bounding finished jobs ---------------------------------------------------------- */

static void gcs__job_finished_push(gcs_job_manager *jm, const uint8_t *id)
{
    if (jm->fin_len == jm->fin_cap) {
        size_t cap = jm->fin_cap ? 2 * jm->fin_cap : 64;
        uint8_t (*ring)[RC_JOB_ID_SIZE] = rc_malloc(cap * sizeof(*ring));
        for (size_t i = 0; i < jm->fin_len; i++)
            memcpy(ring[i], jm->finished[(jm->fin_head + i) % jm->fin_cap], RC_JOB_ID_SIZE);
        rc_free(jm->finished);
        jm->finished = ring;
        jm->fin_head = 0;
        jm->fin_cap = cap;
    }
    memcpy(jm->finished[(jm->fin_head + jm->fin_len) % jm->fin_cap], id, RC_JOB_ID_SIZE);
    jm->fin_len++;
}

static void gcs__job_evict_done(int rc, int64_t n, void *arg)
{
    (void)n;
    (void)arg;
    if (rc < 0 && rc != RC_ECANCELED)
        RC_WARN("gcs: cannot delete an evicted finished job record: %s", rc_strerror(rc));
}

/* Drops the oldest finished jobs beyond maximum_gcs_finished_job_cached_count. */
static void gcs__job_evict(gcs_job_manager *jm)
{
    int64_t max = rc_cfg.maximum_gcs_finished_job_cached_count;
    if (max < 0)
        max = 0;
    while ((int64_t)jm->fin_len > max) {
        uint8_t id[RC_JOB_ID_SIZE];
        memcpy(id, jm->finished[jm->fin_head], RC_JOB_ID_SIZE);
        jm->fin_head = (jm->fin_head + 1) % jm->fin_cap;
        jm->fin_len--;
        Ray__Rpc__JobTableData *job = rc_map_get(&jm->jobs, id, RC_JOB_ID_SIZE);
        if (!job || !job->is_dead)
            continue; /* added again since (a driver reusing its ID): it runs */
        rc_map_remove(&jm->jobs, id, RC_JOB_ID_SIZE);
        rpc_msg_free(&job->base);
        gcs_auth_forget_job(jm->gcs->auth, id);
        const void *keys[1] = {id};
        size_t klens[1] = {RC_JOB_ID_SIZE};
        gcs_store *st = jm->gcs->store;
        if (st)
            st->ops->del(st, GCS_TABLE_JOB, keys, klens, 1, gcs__job_evict_done, NULL);
    }
}

static void gcs__job_stored(int rc, int64_t added, void *arg)
{
    gcs__job_op *op = arg;
    gcs_job_manager *jm = op->jm;
    (void)added;
    ProtobufCMessage *reply;
    Ray__Rpc__AddJobReply add_reply = RAY__RPC__ADD_JOB_REPLY__INIT;
    Ray__Rpc__MarkJobFinishedReply fin_reply = RAY__RPC__MARK_JOB_FINISHED_REPLY__INIT;
    reply = op->finishing ? &fin_reply.base : &add_reply.base;
    if (rc < 0) {
        if (op->call)
            gcs__reply(op->call, reply, GCS_STATUS_IO_ERROR, "cannot store the job record: %s",
                       rc_strerror(rc));
        else
            RC_WARN("gcs: cannot store the job record: %s", rc_strerror(rc));
        rpc_msg_free(&op->job->base);
        rc_free(op);
        return;
    }
    Ray__Rpc__JobTableData *old = rc_map_put(&jm->jobs, op->job->job_id.data, RC_JOB_ID_SIZE, op->job);
    int newly_finished = op->job->is_dead && !(old && old->is_dead);
    if (old)
        rpc_msg_free(&old->base);
    char hex[RC_ID_HEX_MAX];
    RC_INFO("gcs: job %s %s", rc_id_hex(op->job->job_id.data, RC_JOB_ID_SIZE, hex),
            op->finishing ? "finished" : "added");
    gcs_publish_job(jm->gcs->pub, op->job);
    if (op->call)
        gcs__reply_ok(op->call, reply);
    if (newly_finished) {
        uint8_t id[RC_JOB_ID_SIZE];
        memcpy(id, op->job->job_id.data, RC_JOB_ID_SIZE);
        rc_free(op);
        if (jm->gcs->task_events)
            gcs_task_on_job_finished(jm->gcs->task_events, id, rc_wall_ms() * 1000000);
        gcs__job_finished_push(jm, id);
        gcs__job_evict(jm);
        return;
    }
    rc_free(op);
}

static void gcs__job_store(gcs_job_manager *jm, gcs__job_op *op)
{
    size_t len;
    uint8_t *bytes = rpc_msg_pack(&op->job->base, &len);
    gcs_store *st = jm->gcs->store;
    int rc = st->ops->put(st, GCS_TABLE_JOB, op->job->job_id.data, RC_JOB_ID_SIZE, bytes, len, 1,
                          gcs__job_stored, op);
    rc_free(bytes);
    if (rc < 0)
        gcs__job_stored(rc, 0, op);
}

static void handle_add_job(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_job_manager *jm = arg;
    const Ray__Rpc__AddJobRequest *req = (const void *)request;
    Ray__Rpc__AddJobReply reply = RAY__RPC__ADD_JOB_REPLY__INIT;
    if (!req->data || req->data->job_id.len != RC_JOB_ID_SIZE)
        return gcs__reply(call, &reply.base, GCS_STATUS_INVALID_ARGUMENT,
                          "data.job_id must hold %d bytes", RC_JOB_ID_SIZE);
    const Ray__Rpc__JobConfig *cfg = req->data->config;
    if (cfg && (!isfinite(cfg->rayc_weight) || cfg->rayc_weight < 0))
        return gcs__reply(call, &reply.base, GCS_STATUS_INVALID_ARGUMENT,
                          "data.config.rayc_weight %g must be a finite number > 0 (0: the default, 1)",
                          cfg->rayc_weight);
    gcs__job_op *op = RC_NEW(gcs__job_op);
    op->jm = jm;
    op->call = call;
    op->job = (Ray__Rpc__JobTableData *)rpc_msg_dup(&req->data->base);
    op->job->is_dead = 0;
    if (op->job->config && op->job->config->rayc_weight == 0)
        op->job->config->rayc_weight = 1; /* stored as the raylets will use it */
    if (!op->job->start_time)
        op->job->start_time = (uint64_t)rc_wall_ms();
    if (!op->job->timestamp)
        op->job->timestamp = rc_wall_ms();
    gcs__job_store(jm, op);
}

static void handle_mark_job_finished(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_job_manager *jm = arg;
    const Ray__Rpc__MarkJobFinishedRequest *req = (const void *)request;
    Ray__Rpc__MarkJobFinishedReply reply = RAY__RPC__MARK_JOB_FINISHED_REPLY__INIT;
    if (req->job_id.len != RC_JOB_ID_SIZE)
        return gcs__reply(call, &reply.base, GCS_STATUS_INVALID_ARGUMENT,
                          "job_id must hold %d bytes", RC_JOB_ID_SIZE);
    Ray__Rpc__JobTableData *job = rc_map_get(&jm->jobs, req->job_id.data, RC_JOB_ID_SIZE);
    char hex[RC_ID_HEX_MAX];
    if (!job)
        return gcs__reply(call, &reply.base, GCS_STATUS_NOT_FOUND, "no job %s",
                          rc_id_hex(req->job_id.data, RC_JOB_ID_SIZE, hex));
    if (job->is_dead)
        return gcs__reply_ok(call, &reply.base);
    gcs__job_op *op = RC_NEW(gcs__job_op);
    op->jm = jm;
    op->call = call;
    op->finishing = 1;
    op->job = (Ray__Rpc__JobTableData *)rpc_msg_dup(&job->base);
    op->job->is_dead = 1;
    op->job->end_time = (uint64_t)rc_wall_ms();
    gcs__job_store(jm, op);
}

/* A driver died without MarkJobFinished (killed, or its host lost): its job is finished,
 * as Ray's raylet marks it when its driver disconnects, so raylets end the job's workers and
 * leases and its resources come back. */
void gcs_job_on_driver_dead(gcs_job_manager *jm, const uint8_t *worker_id)
{
    rc_map_iter it = RC_MAP_ITER_INIT;
    const void *key;
    size_t klen;
    void *v;
    while (rc_map_next(&jm->jobs, &it, &key, &klen, &v)) {
        Ray__Rpc__JobTableData *job = v;
        const Ray__Rpc__Address *a = job->driver_address;
        if (job->is_dead || !a || a->worker_id.len != RC_WORKER_ID_SIZE ||
            memcmp(a->worker_id.data, worker_id, RC_WORKER_ID_SIZE))
            continue;
        gcs__job_op *op = RC_NEW(gcs__job_op);
        op->jm = jm;
        op->finishing = 1;
        op->job = (Ray__Rpc__JobTableData *)rpc_msg_dup(&job->base);
        op->job->is_dead = 1;
        op->job->end_time = (uint64_t)rc_wall_ms();
        char hex[RC_ID_HEX_MAX];
        RC_INFO("gcs: the driver of job %s died; the job is finished",
                rc_id_hex(job->job_id.data, RC_JOB_ID_SIZE, hex));
        gcs__job_store(jm, op);
        return;
    }
}

static int gcs__job_matches(const Ray__Rpc__JobTableData *job, const char *wanted)
{
    char hex[RC_ID_HEX_MAX];
    rc_id_hex(job->job_id.data, job->job_id.len <= RC_JOB_ID_SIZE ? job->job_id.len : RC_JOB_ID_SIZE, hex);
    if (strcmp(hex, wanted) == 0)
        return 1;
    /* Ray also matches the submission ID kept in the job's metadata. */
    if (job->config)
        for (size_t i = 0; i < job->config->n_metadata; i++)
            if (!strcmp(job->config->metadata[i]->key, "job_submission_id") &&
                !strcmp(job->config->metadata[i]->value, wanted))
                return 1;
    return 0;
}

static void handle_get_all_job_info(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_job_manager *jm = arg;
    const Ray__Rpc__GetAllJobInfoRequest *req = (const void *)request;
    Ray__Rpc__GetAllJobInfoReply reply = RAY__RPC__GET_ALL_JOB_INFO_REPLY__INIT;
    int has_limit = req->_limit_case == RAY__RPC__GET_ALL_JOB_INFO_REQUEST___LIMIT_LIMIT;
    if (has_limit && req->limit < 0)
        return gcs__reply(call, &reply.base, GCS_STATUS_INVALID, "limit must be non-negative");
    const char *wanted =
        req->_job_or_submission_id_case ==
                RAY__RPC__GET_ALL_JOB_INFO_REQUEST___JOB_OR_SUBMISSION_ID_JOB_OR_SUBMISSION_ID
            ? req->job_or_submission_id
            : NULL;
    size_t total = rc_map_size(&jm->jobs);
    Ray__Rpc__JobTableData **list = rc_malloc((total ? total : 1) * sizeof(*list));
    size_t n = 0;
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (rc_map_next(&jm->jobs, &it, NULL, NULL, &v)) {
        if (has_limit && (int64_t)n >= req->limit)
            break;
        if (wanted && !gcs__job_matches(v, wanted))
            continue;
        list[n++] = v;
    }
    reply.job_info_list = list;
    reply.n_job_info_list = n;
    gcs__reply_ok(call, &reply.base);
    rc_free(list);
}

static void gcs__next_job_id(int rc, int64_t value, void *arg)
{
    rpc_call *call = arg;
    Ray__Rpc__GetNextJobIDReply reply = RAY__RPC__GET_NEXT_JOB_IDREPLY__INIT;
    if (rc < 0)
        return gcs__reply(call, &reply.base, GCS_STATUS_IO_ERROR, "cannot advance the job counter: %s",
                          rc_strerror(rc));
    reply.job_id = (int32_t)value;
    gcs__reply_ok(call, &reply.base);
}

static void handle_get_next_job_id(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_job_manager *jm = arg;
    (void)request;
    int rc = jm->gcs->store->ops->next_job_id(jm->gcs->store, gcs__next_job_id, call);
    if (rc < 0)
        gcs__next_job_id(rc, 0, call);
}

const Ray__Rpc__JobTableData *gcs_job_get(const gcs_job_manager *jm, const uint8_t *id)
{
    return rc_map_get(&jm->jobs, id, RC_JOB_ID_SIZE);
}

const rpc_method_handler gcs_job_handlers[] = {
    {"AddJob", handle_add_job},
    {"MarkJobFinished", handle_mark_job_finished},
    {"GetAllJobInfo", handle_get_all_job_info},
    {"GetNextJobID", handle_get_next_job_id},
    {NULL, NULL},
};

static int gcs__job_by_end(const void *a, const void *b)
{
    const Ray__Rpc__JobTableData *x = *(const Ray__Rpc__JobTableData *const *)a;
    const Ray__Rpc__JobTableData *y = *(const Ray__Rpc__JobTableData *const *)b;
    return x->end_time < y->end_time ? -1 : x->end_time > y->end_time;
}

static void gcs__jobs_loaded(int rc, const gcs_store_item *items, size_t n, void *arg)
{
    gcs_job_manager *jm = arg;
    if (rc < 0) {
        jm->load_cb(jm->gcs, rc);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        Ray__Rpc__JobTableData *job = ray__rpc__job_table_data__unpack(NULL, items[i].vlen, items[i].value);
        if (!job || job->job_id.len != RC_JOB_ID_SIZE) {
            RC_WARN("gcs: skipping an unreadable job record in storage");
            if (job)
                rpc_msg_free(&job->base);
            continue;
        }
        Ray__Rpc__JobTableData *old = rc_map_put(&jm->jobs, job->job_id.data, RC_JOB_ID_SIZE, job);
        if (old)
            rpc_msg_free(&old->base);
    }
    /* Finished jobs enter the eviction order by their end time. */
    size_t n_fin = 0;
    const Ray__Rpc__JobTableData **fin = rc_malloc((rc_map_size(&jm->jobs) + 1) * sizeof(*fin));
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (rc_map_next(&jm->jobs, &it, NULL, NULL, &v))
        if (((const Ray__Rpc__JobTableData *)v)->is_dead)
            fin[n_fin++] = v;
    qsort(fin, n_fin, sizeof(*fin), gcs__job_by_end);
    for (size_t i = 0; i < n_fin; i++)
        gcs__job_finished_push(jm, fin[i]->job_id.data);
    rc_free(fin);
    gcs__job_evict(jm);
    RC_INFO("gcs: loaded %zu jobs from storage", rc_map_size(&jm->jobs));
    jm->load_cb(jm->gcs, 0);
}

int gcs_job_manager_load(gcs_job_manager *jm, gcs_load_cb cb)
{
    jm->load_cb = cb;
    return jm->gcs->store->ops->get_all(jm->gcs->store, GCS_TABLE_JOB, gcs__jobs_loaded, jm);
}

gcs_job_manager *gcs_job_manager_new(gcs_server *gcs)
{
    gcs_job_manager *jm = RC_NEW(gcs_job_manager);
    jm->gcs = gcs;
    rc_map_init(&jm->jobs);
    return jm;
}

void gcs_job_manager_free(gcs_job_manager *jm)
{
    if (!jm)
        return;
    rc_map_destroy(&jm->jobs, gcs__job_free);
    rc_free(jm->finished);
    rc_free(jm);
}
