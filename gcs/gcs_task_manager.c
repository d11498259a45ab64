/*
 * GCS task manager: TaskInfoGcsService (AddTaskEventData, GetTaskEvents), Ray's task event
 * table.
 *
 * Core workers report what happened to their tasks in batches: owners the scheduling states
 * (PENDING_ARGS_AVAIL .. SUBMITTED_TO_WORKER, and FINISHED/FAILED when the result comes
 * back or the task fails before it runs), executors RUNNING with the worker, node, pid and
 * the offsets of the task's output in the worker's log files, then FINISHED or FAILED. Both
 * halves of one task attempt (task ID + attempt number) merge into one record here.
 *
 * The table lives in memory only, as in Ray: it is for looking at (`rayc list tasks`,
 * `rayc summary tasks`, `rayc timeline`), not for recovery. It is bounded by
 * task_events_max_num_task_in_gcs attempts: beyond that the attempt first reported longest
 * ago is dropped and counted (num_status_task_events_dropped, with the attempts workers
 * dropped before sending). A record's state is its terminal one if it has one (FAILED
 * before FINISHED: an executor that saw an application error and an owner that got a
 * reply both report), else the state it entered last.
 *
 * Loop thread only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gcs_int.h"
#include "rc_alloc.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_time.h"
#include "task_events.pb-c.h"

#define GCS__TASK_KEY_SIZE (RC_TASK_ID_SIZE + 4)
#define GCS__NUM_STATES 14 /* TaskStatus values 0..13 */

typedef struct gcs__task {
    uint8_t key[GCS__TASK_KEY_SIZE]; /* task ID, then the attempt number (little endian) */
    int32_t attempt;
    uint8_t job_id[RC_JOB_ID_SIZE];
    int has_info;
    Ray__Rpc__TaskType type;
    Ray__Rpc__Language language;
    char *name, *func_or_class_name;
    uint8_t parent_task_id[RC_TASK_ID_SIZE];
    int has_parent;
    uint8_t actor_id[RC_ACTOR_ID_SIZE];
    int has_actor;
    uint8_t node_id[RC_NODE_ID_SIZE];
    int has_node;
    uint8_t worker_id[RC_WORKER_ID_SIZE];
    int has_worker;
    int32_t worker_pid;
    int has_pid;
    int has_error;
    Ray__Rpc__ErrorType error_type;
    char *error_message;
    char *stdout_file, *stderr_file;
    int32_t log_offsets[4]; /* stdout start, end, stderr start, end */
    unsigned log_set;       /* bit i: log_offsets[i] is known */
    int64_t state_ts[GCS__NUM_STATES];
    struct gcs__task *prev, *next; /* oldest first */
} gcs__task;

/* A finished job whose unfinished tasks fail once the delay has passed. */
typedef struct gcs__job_done {
    uint8_t job_id[RC_JOB_ID_SIZE];
    int64_t finished_ns;
    struct gcs__job_done *next;
} gcs__job_done;

#define GCS__MAX_JOBS_DONE 1000 /* finished jobs remembered for the sweep; older ones are dropped */

struct gcs_task_manager {
    gcs_server *gcs;
    gcs__job_done *jobs_done; /* newest first */
    size_t n_jobs_done;
    rc_map tasks; /* key -> gcs__task */
    gcs__task *head, *tail;
    int64_t dropped_status; /* attempts dropped here (evicted) or by workers */
    int64_t dropped_profile;
};

static void gcs__set_str(char **dst, const char *src);

gcs_task_manager *gcs_task_manager_new(gcs_server *gcs)
{
    gcs_task_manager *tm = RC_NEW(gcs_task_manager);
    tm->gcs = gcs;
    rc_map_init(&tm->tasks);
    return tm;
}

static void gcs__task_free(gcs__task *t)
{
    rc_free(t->name);
    rc_free(t->func_or_class_name);
    rc_free(t->error_message);
    rc_free(t->stdout_file);
    rc_free(t->stderr_file);
    rc_free(t);
}

void gcs_task_manager_free(gcs_task_manager *tm)
{
    if (!tm)
        return;
    for (gcs__task *t = tm->head, *next; t; t = next) {
        next = t->next;
        gcs__task_free(t);
    }
    rc_map_destroy(&tm->tasks, NULL);
    for (gcs__job_done *j = tm->jobs_done, *next; j; j = next) {
        next = j->next;
        rc_free(j);
    }
    rc_free(tm);
}

void gcs_task_on_job_finished(gcs_task_manager *tm, const uint8_t *job_id, int64_t now_ns)
{
    gcs__job_done *j = RC_NEW(gcs__job_done);
    memcpy(j->job_id, job_id, RC_JOB_ID_SIZE);
    j->finished_ns = now_ns;
    j->next = tm->jobs_done;
    tm->jobs_done = j;
    if (++tm->n_jobs_done > GCS__MAX_JOBS_DONE) {
        gcs__job_done *p = tm->jobs_done;
        for (size_t i = 1; i < GCS__MAX_JOBS_DONE; i++)
            p = p->next;
        rc_free(p->next); /* the oldest */
        p->next = NULL;
        tm->n_jobs_done--;
    }
}

/* Tasks of jobs that finished at least gcs_mark_task_failed_on_job_done_delay_ms ago and
 * never reported an end fail now (Ray's: their owner is gone, nobody will report one). The
 * delay lets the last reports of the job's workers arrive first. */
static void gcs__sweep_jobs_done(gcs_task_manager *tm, int64_t now_ns)
{
    if (!tm->jobs_done)
        return;
    int64_t delay_ns = (int64_t)rc_cfg.gcs_mark_task_failed_on_job_done_delay_ms * 1000000;
    for (gcs__task *t = tm->head; t; t = t->next) {
        if (t->state_ts[RAY__RPC__TASK_STATUS__FINISHED] || t->state_ts[RAY__RPC__TASK_STATUS__FAILED])
            continue;
        for (const gcs__job_done *j = tm->jobs_done; j; j = j->next) {
            if (memcmp(j->job_id, t->job_id, RC_JOB_ID_SIZE) != 0)
                continue;
            if (j->finished_ns + delay_ns <= now_ns) {
                t->state_ts[RAY__RPC__TASK_STATUS__FAILED] = j->finished_ns;
                if (!t->has_error) {
                    t->has_error = 1;
                    t->error_type = RAY__RPC__ERROR_TYPE__WORKER_DIED;
                    gcs__set_str(&t->error_message, "the job finished (its driver exited) before the task did");
                }
            }
            break;
        }
    }
}

size_t gcs_task_manager_size(const gcs_task_manager *tm)
{
    return rc_map_size(&tm->tasks);
}

int64_t gcs_task_manager_dropped(const gcs_task_manager *tm)
{
    return tm->dropped_status;
}

static void gcs__unlink(gcs_task_manager *tm, gcs__task *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        tm->head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    else
        tm->tail = t->prev;
    t->prev = t->next = NULL;
}

static void gcs__evict_oldest(gcs_task_manager *tm)
{
    gcs__task *t = tm->head;
    if (!t)
        return;
    gcs__unlink(tm, t);
    rc_map_remove(&tm->tasks, t->key, GCS__TASK_KEY_SIZE);
    gcs__task_free(t);
    tm->dropped_status++;
}

static void gcs__set_str(char **dst, const char *src)
{
    if (!src || !*src)
        return;
    rc_free(*dst);
    *dst = rc_strdup(src);
}

static void gcs__merge_info(gcs__task *t, const Ray__Rpc__TaskInfoEntry *info)
{
    t->has_info = 1;
    t->type = info->type;
    t->language = info->language;
    gcs__set_str(&t->name, info->name);
    gcs__set_str(&t->func_or_class_name, info->func_or_class_name);
    if (info->parent_task_id.len == RC_TASK_ID_SIZE) {
        memcpy(t->parent_task_id, info->parent_task_id.data, RC_TASK_ID_SIZE);
        t->has_parent = 1;
    }
    if (info->_actor_id_case == RAY__RPC__TASK_INFO_ENTRY___ACTOR_ID_ACTOR_ID &&
        info->actor_id.len == RC_ACTOR_ID_SIZE) {
        memcpy(t->actor_id, info->actor_id.data, RC_ACTOR_ID_SIZE);
        t->has_actor = 1;
    }
    if (info->_node_id_case == RAY__RPC__TASK_INFO_ENTRY___NODE_ID_NODE_ID && info->node_id.len == RC_NODE_ID_SIZE &&
        !t->has_node) {
        memcpy(t->node_id, info->node_id.data, RC_NODE_ID_SIZE);
        t->has_node = 1;
    }
}

static void gcs__merge_log_info(gcs__task *t, const Ray__Rpc__TaskLogInfo *li)
{
    if (li->_stdout_file_case == RAY__RPC__TASK_LOG_INFO___STDOUT_FILE_STDOUT_FILE)
        gcs__set_str(&t->stdout_file, li->stdout_file);
    if (li->_stderr_file_case == RAY__RPC__TASK_LOG_INFO___STDERR_FILE_STDERR_FILE)
        gcs__set_str(&t->stderr_file, li->stderr_file);
    int set[4] = {
        li->_stdout_start_case == RAY__RPC__TASK_LOG_INFO___STDOUT_START_STDOUT_START,
        li->_stdout_end_case == RAY__RPC__TASK_LOG_INFO___STDOUT_END_STDOUT_END,
        li->_stderr_start_case == RAY__RPC__TASK_LOG_INFO___STDERR_START_STDERR_START,
        li->_stderr_end_case == RAY__RPC__TASK_LOG_INFO___STDERR_END_STDERR_END,
    };
    int32_t v[4] = {li->stdout_start, li->stdout_end, li->stderr_start, li->stderr_end};
    for (int i = 0; i < 4; i++)
        if (set[i]) {
            t->log_offsets[i] = v[i];
            t->log_set |= 1u << i;
        }
}

static void gcs__merge_state(gcs__task *t, const Ray__Rpc__TaskStateUpdate *su)
{
    if (su->_node_id_case == RAY__RPC__TASK_STATE_UPDATE___NODE_ID_NODE_ID && su->node_id.len == RC_NODE_ID_SIZE) {
        memcpy(t->node_id, su->node_id.data, RC_NODE_ID_SIZE);
        t->has_node = 1;
    }
    if (su->_worker_id_case == RAY__RPC__TASK_STATE_UPDATE___WORKER_ID_WORKER_ID &&
        su->worker_id.len == RC_WORKER_ID_SIZE) {
        memcpy(t->worker_id, su->worker_id.data, RC_WORKER_ID_SIZE);
        t->has_worker = 1;
    }
    if (su->_worker_pid_case == RAY__RPC__TASK_STATE_UPDATE___WORKER_PID_WORKER_PID) {
        t->worker_pid = su->worker_pid;
        t->has_pid = 1;
    }
    if (su->error_info) {
        /* The executor's account (the exception) beats the owner's (it only saw the reply). */
        if (!t->has_error || !t->error_message || !*t->error_message) {
            t->error_type = su->error_info->error_type;
            gcs__set_str(&t->error_message, su->error_info->error_message);
        }
        t->has_error = 1;
    }
    if (su->task_log_info)
        gcs__merge_log_info(t, su->task_log_info);
    for (size_t i = 0; i < su->n_state_ts_ns; i++) {
        const Ray__Rpc__TaskStateUpdate__StateTsNsEntry *e = su->state_ts_ns[i];
        if (e->key > 0 && e->key < GCS__NUM_STATES && e->value > 0)
            t->state_ts[e->key] = e->value;
    }
}

/* Merges one task attempt's events; returns 0, or RC_EINVAL for a malformed record. */
static int gcs__add_one(gcs_task_manager *tm, const Ray__Rpc__TaskEvents *ev)
{
    if (ev->task_id.len != RC_TASK_ID_SIZE || ev->attempt_number < 0)
        return RC_EINVAL;
    uint8_t key[GCS__TASK_KEY_SIZE];
    memcpy(key, ev->task_id.data, RC_TASK_ID_SIZE);
    uint32_t attempt = (uint32_t)ev->attempt_number;
    for (int i = 0; i < 4; i++)
        key[RC_TASK_ID_SIZE + i] = (uint8_t)(attempt >> (8 * i));
    gcs__task *t = rc_map_get(&tm->tasks, key, sizeof(key));
    if (!t) {
        int64_t max = rc_cfg.task_events_max_num_task_in_gcs;
        if (max <= 0)
            return 0; /* a table of no tasks: everything counts as dropped at the source */
        while ((int64_t)rc_map_size(&tm->tasks) >= max)
            gcs__evict_oldest(tm);
        t = RC_NEW(gcs__task);
        memcpy(t->key, key, sizeof(key));
        t->attempt = ev->attempt_number;
        rc_map_put(&tm->tasks, t->key, sizeof(t->key), t);
        t->prev = tm->tail;
        if (tm->tail)
            tm->tail->next = t;
        else
            tm->head = t;
        tm->tail = t;
    }
    if (ev->job_id.len == RC_JOB_ID_SIZE)
        memcpy(t->job_id, ev->job_id.data, RC_JOB_ID_SIZE);
    if (ev->task_info)
        gcs__merge_info(t, ev->task_info);
    if (ev->state_updates)
        gcs__merge_state(t, ev->state_updates);
    return 0;
}

int gcs_task_add_events(gcs_task_manager *tm, const Ray__Rpc__TaskEventData *data)
{
    int bad = 0;
    for (size_t i = 0; i < data->n_events_by_task; i++)
        if (gcs__add_one(tm, data->events_by_task[i]) < 0)
            bad++;
    tm->dropped_status += (int64_t)data->n_dropped_task_attempts;
    if (data->num_profile_events_dropped > 0)
        tm->dropped_profile += data->num_profile_events_dropped;
    return bad ? RC_EINVAL : 0;
}

/* The state a record is in now (see the file's comment). */
static Ray__Rpc__TaskStatus gcs__state(const gcs__task *t)
{
    if (t->state_ts[RAY__RPC__TASK_STATUS__FAILED])
        return RAY__RPC__TASK_STATUS__FAILED;
    if (t->state_ts[RAY__RPC__TASK_STATUS__FINISHED])
        return RAY__RPC__TASK_STATUS__FINISHED;
    int best = RAY__RPC__TASK_STATUS__NIL;
    for (int s = 1; s < GCS__NUM_STATES; s++)
        if (t->state_ts[s] && t->state_ts[s] >= t->state_ts[best])
            best = s;
    return (Ray__Rpc__TaskStatus)best;
}

void gcs_task_foreach(const gcs_task_manager *tm, gcs_task_visit_fn fn, void *arg)
{
    for (const gcs__task *t = tm->head; t; t = t->next) {
        const char *name = t->name && *t->name ? t->name : t->func_or_class_name ? t->func_or_class_name : "";
        fn((int)gcs__state(t), name, t->job_id, t->attempt, arg);
    }
}

const char *gcs_task_status_name(int status)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(&ray__rpc__task_status__descriptor, status);
    return v ? v->name : "NIL";
}

static int gcs__pred(Ray__Rpc__FilterPredicate p, int equal)
{
    return p == RAY__RPC__FILTER_PREDICATE__NOT_EQUAL ? !equal : equal;
}

static int gcs__bytes_eq(const ProtobufCBinaryData *b, const uint8_t *v, size_t n, int has)
{
    return has && b->len == n && !memcmp(b->data, v, n);
}

static int gcs__matches(const gcs__task *t, const Ray__Rpc__GetTaskEventsRequest__Filters *f)
{
    if (!f)
        return 1;
    for (size_t i = 0; i < f->n_job_filters; i++)
        if (!gcs__pred(f->job_filters[i]->predicate,
                       gcs__bytes_eq(&f->job_filters[i]->job_id, t->job_id, RC_JOB_ID_SIZE, 1)))
            return 0;
    for (size_t i = 0; i < f->n_task_filters; i++)
        if (!gcs__pred(f->task_filters[i]->predicate,
                       gcs__bytes_eq(&f->task_filters[i]->task_id, t->key, RC_TASK_ID_SIZE, 1)))
            return 0;
    for (size_t i = 0; i < f->n_actor_filters; i++)
        if (!gcs__pred(f->actor_filters[i]->predicate,
                       gcs__bytes_eq(&f->actor_filters[i]->actor_id, t->actor_id, RC_ACTOR_ID_SIZE, t->has_actor)))
            return 0;
    for (size_t i = 0; i < f->n_task_name_filters; i++) {
        const char *want = f->task_name_filters[i]->task_name;
        if (!gcs__pred(f->task_name_filters[i]->predicate, t->name && want && !strcmp(t->name, want)))
            return 0;
    }
    for (size_t i = 0; i < f->n_state_filters; i++) {
        const char *want = f->state_filters[i]->state;
        if (!gcs__pred(f->state_filters[i]->predicate,
                       want && !strcasecmp(gcs_task_status_name(gcs__state(t)), want)))
            return 0;
    }
    if (f->_exclude_driver_case == RAY__RPC__GET_TASK_EVENTS_REQUEST__FILTERS___EXCLUDE_DRIVER_EXCLUDE_DRIVER &&
        f->exclude_driver && t->has_info && t->type == RAY__RPC__TASK_TYPE__DRIVER_TASK)
        return 0;
    return 1;
}

/* One reply record, allocated as a unit of small pieces: see gcs__event_free. */
static Ray__Rpc__TaskEvents *gcs__event_of(const gcs__task *t)
{
    Ray__Rpc__TaskEvents *ev = RC_NEW(Ray__Rpc__TaskEvents);
    ray__rpc__task_events__init(ev);
    ev->task_id.data = (uint8_t *)t->key;
    ev->task_id.len = RC_TASK_ID_SIZE;
    ev->attempt_number = t->attempt;
    ev->job_id.data = (uint8_t *)t->job_id;
    ev->job_id.len = RC_JOB_ID_SIZE;

    Ray__Rpc__TaskInfoEntry *info = RC_NEW(Ray__Rpc__TaskInfoEntry);
    ray__rpc__task_info_entry__init(info);
    info->type = t->type;
    info->language = t->language;
    info->name = t->name ? t->name : "";
    info->func_or_class_name = t->func_or_class_name ? t->func_or_class_name : "";
    info->scheduling_state = gcs__state(t);
    info->job_id = ev->job_id;
    info->task_id = ev->task_id;
    if (t->has_parent) {
        info->parent_task_id.data = (uint8_t *)t->parent_task_id;
        info->parent_task_id.len = RC_TASK_ID_SIZE;
    }
    if (t->has_actor) {
        info->_actor_id_case = RAY__RPC__TASK_INFO_ENTRY___ACTOR_ID_ACTOR_ID;
        info->actor_id.data = (uint8_t *)t->actor_id;
        info->actor_id.len = RC_ACTOR_ID_SIZE;
    }
    if (t->has_node) {
        info->_node_id_case = RAY__RPC__TASK_INFO_ENTRY___NODE_ID_NODE_ID;
        info->node_id.data = (uint8_t *)t->node_id;
        info->node_id.len = RC_NODE_ID_SIZE;
    }
    ev->task_info = info;

    Ray__Rpc__TaskStateUpdate *su = RC_NEW(Ray__Rpc__TaskStateUpdate);
    ray__rpc__task_state_update__init(su);
    if (t->has_node) {
        su->_node_id_case = RAY__RPC__TASK_STATE_UPDATE___NODE_ID_NODE_ID;
        su->node_id = info->node_id;
    }
    if (t->has_worker) {
        su->_worker_id_case = RAY__RPC__TASK_STATE_UPDATE___WORKER_ID_WORKER_ID;
        su->worker_id.data = (uint8_t *)t->worker_id;
        su->worker_id.len = RC_WORKER_ID_SIZE;
    }
    if (t->has_pid) {
        su->_worker_pid_case = RAY__RPC__TASK_STATE_UPDATE___WORKER_PID_WORKER_PID;
        su->worker_pid = t->worker_pid;
    }
    if (t->has_error) {
        Ray__Rpc__RayErrorInfo *ei = RC_NEW(Ray__Rpc__RayErrorInfo);
        ray__rpc__ray_error_info__init(ei);
        ei->error_type = t->error_type;
        ei->error_message = t->error_message ? t->error_message : "";
        su->error_info = ei;
    }
    if (t->stdout_file || t->stderr_file || t->log_set) {
        Ray__Rpc__TaskLogInfo *li = RC_NEW(Ray__Rpc__TaskLogInfo);
        ray__rpc__task_log_info__init(li);
        if (t->stdout_file) {
            li->_stdout_file_case = RAY__RPC__TASK_LOG_INFO___STDOUT_FILE_STDOUT_FILE;
            li->stdout_file = t->stdout_file;
        }
        if (t->stderr_file) {
            li->_stderr_file_case = RAY__RPC__TASK_LOG_INFO___STDERR_FILE_STDERR_FILE;
            li->stderr_file = t->stderr_file;
        }
        if (t->log_set & 1u) {
            li->_stdout_start_case = RAY__RPC__TASK_LOG_INFO___STDOUT_START_STDOUT_START;
            li->stdout_start = t->log_offsets[0];
        }
        if (t->log_set & 2u) {
            li->_stdout_end_case = RAY__RPC__TASK_LOG_INFO___STDOUT_END_STDOUT_END;
            li->stdout_end = t->log_offsets[1];
        }
        if (t->log_set & 4u) {
            li->_stderr_start_case = RAY__RPC__TASK_LOG_INFO___STDERR_START_STDERR_START;
            li->stderr_start = t->log_offsets[2];
        }
        if (t->log_set & 8u) {
            li->_stderr_end_case = RAY__RPC__TASK_LOG_INFO___STDERR_END_STDERR_END;
            li->stderr_end = t->log_offsets[3];
        }
        su->task_log_info = li;
    }
    size_t n = 0;
    for (int s = 1; s < GCS__NUM_STATES; s++)
        n += t->state_ts[s] != 0;
    /* One block of entries: state_ts_ns[0] is its start (gcs__event_free). */
    Ray__Rpc__TaskStateUpdate__StateTsNsEntry *entries = n ? rc_calloc(n, sizeof(*entries)) : NULL;
    su->state_ts_ns = n ? rc_calloc(n, sizeof(*su->state_ts_ns)) : NULL;
    for (int s = 1; s < GCS__NUM_STATES; s++) {
        if (!t->state_ts[s])
            continue;
        Ray__Rpc__TaskStateUpdate__StateTsNsEntry *e = &entries[su->n_state_ts_ns];
        ray__rpc__task_state_update__state_ts_ns_entry__init(e);
        e->key = s;
        e->value = t->state_ts[s];
        su->state_ts_ns[su->n_state_ts_ns++] = e;
    }
    ev->state_updates = su;
    return ev;
}

/* Frees what gcs__event_of allocated (the strings and IDs stay the table's). */
static void gcs__event_free(Ray__Rpc__TaskEvents *ev)
{
    Ray__Rpc__TaskStateUpdate *su = ev->state_updates;
    if (su) {
        if (su->n_state_ts_ns)
            rc_free(su->state_ts_ns[0]); /* the entries' block */
        rc_free(su->state_ts_ns);
        rc_free(su->error_info);
        rc_free(su->task_log_info);
        rc_free(su);
    }
    rc_free(ev->task_info);
    rc_free(ev);
}

void gcs_task_get_events(gcs_task_manager *tm, const Ray__Rpc__GetTaskEventsRequest *req,
                         Ray__Rpc__GetTaskEventsReply *reply)
{
    gcs__sweep_jobs_done(tm, rc_wall_ms() * 1000000);
    int64_t limit = req->_limit_case == RAY__RPC__GET_TASK_EVENTS_REQUEST___LIMIT_LIMIT && req->limit >= 0
                        ? req->limit
                        : INT64_MAX;
    size_t cap = rc_map_size(&tm->tasks);
    reply->events_by_task = rc_calloc(cap ? cap : 1, sizeof(*reply->events_by_task));
    reply->n_events_by_task = 0;
    int64_t filtered = 0, truncated = 0;
    /* Newest first, so that a limit keeps the recent tasks. */
    for (const gcs__task *t = tm->tail; t; t = t->prev) {
        if (!gcs__matches(t, req->filters)) {
            filtered++;
            continue;
        }
        if ((int64_t)reply->n_events_by_task >= limit) {
            truncated++;
            continue;
        }
        reply->events_by_task[reply->n_events_by_task++] = gcs__event_of(t);
    }
    reply->num_total_stored = (int64_t)cap;
    reply->num_filtered_on_gcs = filtered;
    reply->num_truncated = truncated;
    reply->num_status_task_events_dropped = (int32_t)(tm->dropped_status > INT32_MAX ? INT32_MAX : tm->dropped_status);
    reply->num_profile_task_events_dropped =
        (int32_t)(tm->dropped_profile > INT32_MAX ? INT32_MAX : tm->dropped_profile);
}

void gcs_task_events_reply_free(Ray__Rpc__GetTaskEventsReply *reply)
{
    for (size_t i = 0; i < reply->n_events_by_task; i++)
        gcs__event_free(reply->events_by_task[i]);
    rc_free(reply->events_by_task);
    reply->events_by_task = NULL;
    reply->n_events_by_task = 0;
}

static void handle_add_task_event_data(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_task_manager *tm = arg;
    const Ray__Rpc__AddTaskEventDataRequest *req = (const void *)request;
    Ray__Rpc__AddTaskEventDataReply reply = RAY__RPC__ADD_TASK_EVENT_DATA_REPLY__INIT;
    if (!req->data)
        return gcs__reply(call, &reply.base, GCS_STATUS_INVALID_ARGUMENT, "data is missing");
    if (gcs_task_add_events(tm, req->data) < 0)
        return gcs__reply(call, &reply.base, GCS_STATUS_INVALID_ARGUMENT,
                          "some task events were dropped: a task_id must hold %d bytes and attempt_number be >= 0",
                          RC_TASK_ID_SIZE);
    gcs__reply_ok(call, &reply.base);
}

static void handle_get_task_events(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_task_manager *tm = arg;
    Ray__Rpc__GetTaskEventsReply reply = RAY__RPC__GET_TASK_EVENTS_REPLY__INIT;
    gcs_task_get_events(tm, (const Ray__Rpc__GetTaskEventsRequest *)request, &reply);
    gcs__reply_ok(call, &reply.base);
    gcs_task_events_reply_free(&reply);
}

const rpc_method_handler gcs_task_handlers[] = {
    {"AddTaskEventData", handle_add_task_event_data},
    {"GetTaskEvents", handle_get_task_events},
    {NULL, NULL},
};
