/*
 * Task events (Ray's task event buffer) and worker log rotation.
 *
 * Task events: owners record the scheduling states of the tasks they submit
 * (PENDING_ARGS_AVAIL, PENDING_NODE_ASSIGNMENT, SUBMITTED_TO_WORKER, then FINISHED or
 * FAILED), executors record RUNNING (with the worker, node, pid and where the task's output
 * starts in the worker's stdout and stderr files) and the end of the run (FINISHED or
 * FAILED, where the output ends). Records are buffered per task attempt and sent to the GCS
 * (TaskInfoGcsService.AddTaskEventData) every task_events_report_interval_ms, at most
 * task_events_send_batch_size attempts per call and one call at a time. The buffer holds at
 * most task_events_max_num_status_events_buffer_on_worker attempts: events of further
 * attempts are dropped and reported as dropped (Ray's TaskEventData.dropped_task_attempts).
 * A process that stops sends what it still holds before it disconnects.
 *
 * Log rotation (workers only): a worker's stdout and stderr are files in its node's session
 * (the raylet opened them). On the same tick the worker checks their sizes; one larger than
 * rotation_max_bytes is rotated as Python's RotatingFileHandler does (file.N-1 -> file.N ..
 * file -> file.1, at most rotation_backup_count backups) and reopened in place with dup2,
 * so every writer of fd 1 or 2 (printf, Python's sys.stdout, a library) goes on writing to
 * the new file. The new file starts with the worker's job marker line (":job_id:<hex>:<pid>")
 * as its first file did, which the driver's log monitor and `rayc logs --worker` read.
 *
 * Recording: any thread (a mutex). Sending and rotation: loop thread.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core_int.h"
#include "rc_alloc.h"
#include "rc_config.h"
#include "rc_log.h"
#include "task_events.pb-c.h"

#define CORE__EV_KEY_SIZE (RC_TASK_ID_SIZE + 4)
#define CORE__EV_STATES 14
#define CORE__EV_MAX_DROPPED_LISTED 1000 /* dropped attempts named per report; more are only counted */

typedef struct core__ev {
    uint8_t key[CORE__EV_KEY_SIZE];
    Ray__Rpc__TaskEvents msg; /* task_id, attempt_number, job_id point into this record */
    uint8_t job_id[RC_JOB_ID_SIZE];
    /* task info: the first event of an attempt in this batch carries it */
    int has_info;
    Ray__Rpc__TaskType type;
    Ray__Rpc__Language language;
    char *name, *func;
    uint8_t parent[RC_TASK_ID_SIZE];
    uint8_t actor_id[RC_ACTOR_ID_SIZE];
    int has_actor;
    /* state */
    int64_t ts[CORE__EV_STATES];
    uint8_t node_id[RC_NODE_ID_SIZE];
    int has_node;
    int executed; /* worker, pid and logs are this process's */
    int has_error;
    Ray__Rpc__ErrorType error_type;
    char *error_message;
    int32_t log[4]; /* stdout start, end, stderr start, end; -1 unknown */
    struct core__ev *next;
} core__ev;

typedef struct core_events {
    core_worker *cw;
    pthread_mutex_t mu;
    rc_map pending; /* key -> core__ev */
    core__ev *head, *tail;
    size_t n;
    uint8_t (*dropped)[CORE__EV_KEY_SIZE];
    size_t n_dropped;
    int64_t dropped_total;
    int in_flight;
    uv_timer_t timer;
    /* worker mode: its log files (absolute paths; "" when fd 1 or 2 is not a file) */
    char out_path[PATH_MAX], err_path[PATH_MAX];
} core_events;

static int64_t core__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The file behind fd, if it is a regular file. */
static void core__fd_path(int fd, char *out, size_t len)
{
    char link[64];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    struct stat st;
    ssize_t n = readlink(link, out, len - 1);
    if (n <= 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        out[0] = '\0';
        return;
    }
    out[n] = '\0';
}

static int32_t core__fd_size(int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        return -1;
    return st.st_size > INT32_MAX ? INT32_MAX : (int32_t)st.st_size;
}

static int32_t core__key_attempt(const uint8_t *key)
{
    const uint8_t *a = key + RC_TASK_ID_SIZE;
    return (int32_t)((uint32_t)a[0] | (uint32_t)a[1] << 8 | (uint32_t)a[2] << 16 | (uint32_t)a[3] << 24);
}

static void core__ev_free(core__ev *e)
{
    rc_free(e->name);
    rc_free(e->func);
    rc_free(e->error_message);
    rc_free(e);
}

/* The record of spec's attempt, made when missing; NULL (counted as dropped) when the
 * buffer is full. Mutex held. */
static core__ev *core__ev_get(core_events *ev, const Ray__Rpc__TaskSpec *spec)
{
    if (spec->task_id.len != RC_TASK_ID_SIZE)
        return NULL;
    uint8_t key[CORE__EV_KEY_SIZE];
    memcpy(key, spec->task_id.data, RC_TASK_ID_SIZE);
    uint32_t attempt = (uint32_t)(spec->attempt_number < 0 ? 0 : spec->attempt_number);
    for (int i = 0; i < 4; i++)
        key[RC_TASK_ID_SIZE + i] = (uint8_t)(attempt >> (8 * i));
    core__ev *e = rc_map_get(&ev->pending, key, sizeof(key));
    if (e)
        return e;
    if ((int64_t)ev->n >= rc_cfg.task_events_max_num_status_events_buffer_on_worker) {
        ev->dropped_total++;
        if (ev->n_dropped < CORE__EV_MAX_DROPPED_LISTED) {
            if (!ev->dropped)
                ev->dropped = rc_calloc(CORE__EV_MAX_DROPPED_LISTED, CORE__EV_KEY_SIZE);
            memcpy(ev->dropped[ev->n_dropped++], key, CORE__EV_KEY_SIZE);
        }
        return NULL;
    }
    e = RC_NEW(core__ev);
    memcpy(e->key, key, sizeof(key));
    for (int i = 0; i < 4; i++)
        e->log[i] = -1;
    e->has_info = 1;
    e->type = spec->type;
    e->language = spec->language;
    e->name = rc_strdup(spec->name ? spec->name : "");
    const Ray__Rpc__FunctionDescriptor *fd = spec->function_descriptor;
    const char *fn = NULL, *cls = NULL;
    if (fd && fd->function_descriptor_case ==
                  RAY__RPC__FUNCTION_DESCRIPTOR__FUNCTION_DESCRIPTOR_PYTHON_FUNCTION_DESCRIPTOR) {
        fn = fd->python_function_descriptor->function_name;
        cls = fd->python_function_descriptor->class_name;
    } else if (fd && fd->function_descriptor_case ==
                         RAY__RPC__FUNCTION_DESCRIPTOR__FUNCTION_DESCRIPTOR_CPP_FUNCTION_DESCRIPTOR) {
        fn = fd->cpp_function_descriptor->function_name;
        cls = fd->cpp_function_descriptor->class_name;
    }
    char func[512];
    if (spec->language == RAY__RPC__LANGUAGE__PYTHON && spec->type == RAY__RPC__TASK_TYPE__NORMAL_TASK) {
        fn = NULL; /* a Python function's descriptor names its export key: its name says more */
        cls = NULL;
    }
    if (cls && *cls && fn && *fn)
        snprintf(func, sizeof(func), "%s.%s", cls, fn);
    else
        snprintf(func, sizeof(func), "%s", fn && *fn ? fn : cls && *cls ? cls : e->name);
    e->func = rc_strdup(func);
    if (spec->job_id.len == RC_JOB_ID_SIZE)
        memcpy(e->job_id, spec->job_id.data, RC_JOB_ID_SIZE);
    if (spec->parent_task_id.len == RC_TASK_ID_SIZE)
        memcpy(e->parent, spec->parent_task_id.data, RC_TASK_ID_SIZE);
    const ProtobufCBinaryData *actor = NULL;
    if (spec->type == RAY__RPC__TASK_TYPE__ACTOR_CREATION_TASK && spec->actor_creation_task_spec)
        actor = &spec->actor_creation_task_spec->actor_id;
    else if (spec->type == RAY__RPC__TASK_TYPE__ACTOR_TASK && spec->actor_task_spec)
        actor = &spec->actor_task_spec->actor_id;
    if (actor && actor->len == RC_ACTOR_ID_SIZE) {
        memcpy(e->actor_id, actor->data, RC_ACTOR_ID_SIZE);
        e->has_actor = 1;
    }
    rc_map_put(&ev->pending, e->key, sizeof(e->key), e);
    if (ev->tail)
        ev->tail->next = e;
    else
        ev->head = e;
    ev->tail = e;
    ev->n++;
    return e;
}

static core_events *core__events(core_worker *cw)
{
    return cw && rc_cfg.enable_task_events ? cw->events : NULL;
}

static void core__set_error(core__ev *e, Ray__Rpc__ErrorType type, const char *message)
{
    e->has_error = 1;
    e->error_type = type;
    rc_free(e->error_message);
    e->error_message = rc_strdup(message ? message : "");
}

void core_events_task_status(core_worker *cw, const Ray__Rpc__TaskSpec *spec, Ray__Rpc__TaskStatus status,
                             const uint8_t *node_id)
{
    core_events *ev = core__events(cw);
    if (!ev || status <= 0 || status >= CORE__EV_STATES)
        return;
    pthread_mutex_lock(&ev->mu);
    core__ev *e = core__ev_get(ev, spec);
    if (e) {
        e->ts[status] = core__now_ns();
        if (node_id) {
            memcpy(e->node_id, node_id, RC_NODE_ID_SIZE);
            e->has_node = 1;
        }
    }
    pthread_mutex_unlock(&ev->mu);
}

Ray__Rpc__ErrorType core_events_error_type(rayc_error error)
{
    /* As a result's error (core_error_to_type), except that what is not a known cause is
     * the task's own failure, not a lost object. */
    if (error == RAYC_ERR_OBJECT_LOST)
        return RAY__RPC__ERROR_TYPE__OBJECT_LOST;
    Ray__Rpc__ErrorType type = core_error_to_type(error);
    return type == RAY__RPC__ERROR_TYPE__OBJECT_LOST ? RAY__RPC__ERROR_TYPE__TASK_EXECUTION_EXCEPTION : type;
}

void core_events_task_failed(core_worker *cw, const Ray__Rpc__TaskSpec *spec, Ray__Rpc__ErrorType type,
                             const char *message)
{
    core_events *ev = core__events(cw);
    if (!ev)
        return;
    pthread_mutex_lock(&ev->mu);
    core__ev *e = core__ev_get(ev, spec);
    if (e) {
        e->ts[RAY__RPC__TASK_STATUS__FAILED] = core__now_ns();
        core__set_error(e, type, message);
    }
    pthread_mutex_unlock(&ev->mu);
}

/* The executor's half of an attempt: status at now on this node, and where the task's
 * output starts (end 0) or ends (end 1) in the worker's log files; the error if failed. */
static void core__executed(core_worker *cw, const Ray__Rpc__TaskSpec *spec, Ray__Rpc__TaskStatus status, int end,
                           int failed, Ray__Rpc__ErrorType type, const char *message)
{
    core_events *ev = core__events(cw);
    if (!ev)
        return;
    int32_t out = ev->out_path[0] ? core__fd_size(STDOUT_FILENO) : -1;
    int32_t err = ev->err_path[0] ? core__fd_size(STDERR_FILENO) : -1;
    pthread_mutex_lock(&ev->mu);
    core__ev *e = core__ev_get(ev, spec);
    if (e) {
        e->ts[status] = core__now_ns();
        memcpy(e->node_id, cw->node_id, RC_NODE_ID_SIZE);
        e->has_node = 1;
        e->executed = 1;
        e->log[end] = out;
        e->log[end + 2] = err;
        if (failed)
            core__set_error(e, type, message);
    }
    pthread_mutex_unlock(&ev->mu);
}

void core_events_task_running(core_worker *cw, const Ray__Rpc__TaskSpec *spec)
{
    core__executed(cw, spec, RAY__RPC__TASK_STATUS__RUNNING, 0, 0, RAY__RPC__ERROR_TYPE__WORKER_DIED, NULL);
}

void core_events_task_ran(core_worker *cw, const Ray__Rpc__TaskSpec *spec, int failed, Ray__Rpc__ErrorType type,
                          const char *message)
{
    core__executed(cw, spec, failed ? RAY__RPC__TASK_STATUS__FAILED : RAY__RPC__TASK_STATUS__FINISHED, 1, failed, type,
                   message);
}

/* ---- sending -------------------------------------------------------------------------- */

/* One batch and everything its messages point to: freed as a unit after the call. */
typedef struct core__batch {
    core_events *ev;
    core__ev *records; /* taken from the buffer */
    Ray__Rpc__TaskEvents **by_task;
    Ray__Rpc__TaskInfoEntry *infos;
    Ray__Rpc__TaskStateUpdate *states;
    Ray__Rpc__TaskLogInfo *logs;
    Ray__Rpc__RayErrorInfo *errors;
    Ray__Rpc__TaskStateUpdate__StateTsNsEntry *ts;
    Ray__Rpc__TaskStateUpdate__StateTsNsEntry **ts_ptrs;
    Ray__Rpc__TaskAttempt *dropped;
    Ray__Rpc__TaskAttempt **dropped_ptrs;
    uint8_t (*dropped_keys)[CORE__EV_KEY_SIZE];
    size_t n_dropped; /* listed (at most CORE__EV_MAX_DROPPED_LISTED per report) */
    size_t n;
} core__batch;

static void core__batch_free(core__batch *b)
{
    for (core__ev *e = b->records, *next; e; e = next) {
        next = e->next;
        core__ev_free(e);
    }
    rc_free(b->by_task);
    rc_free(b->infos);
    rc_free(b->states);
    rc_free(b->logs);
    rc_free(b->errors);
    rc_free(b->ts);
    rc_free(b->ts_ptrs);
    rc_free(b->dropped);
    rc_free(b->dropped_ptrs);
    rc_free(b->dropped_keys);
    rc_free(b);
}

/* Takes up to task_events_send_batch_size records (and the dropped list) out of the
 * buffer; NULL when there is nothing to send. */
static core__batch *core__batch_take(core_events *ev)
{
    pthread_mutex_lock(&ev->mu);
    if (!ev->head && !ev->dropped_total) {
        pthread_mutex_unlock(&ev->mu);
        return NULL;
    }
    core__batch *b = RC_NEW(core__batch);
    b->ev = ev;
    size_t max = rc_cfg.task_events_send_batch_size > 0 ? (size_t)rc_cfg.task_events_send_batch_size : 1;
    core__ev *last = NULL;
    for (core__ev *e = ev->head; e && b->n < max; e = e->next) {
        rc_map_remove(&ev->pending, e->key, CORE__EV_KEY_SIZE);
        last = e;
        b->n++;
    }
    if (last) {
        b->records = ev->head;
        ev->head = last->next;
        if (!ev->head)
            ev->tail = NULL;
        last->next = NULL;
        ev->n -= b->n;
    }
    b->dropped_keys = ev->dropped;
    size_t n_dropped = b->n_dropped = ev->n_dropped;
    ev->dropped = NULL;
    ev->n_dropped = 0;
    ev->dropped_total = 0;
    pthread_mutex_unlock(&ev->mu);

    core_worker *cw = ev->cw;
    size_t n = b->n ? b->n : 1;
    b->by_task = rc_calloc(n, sizeof(*b->by_task));
    b->infos = rc_calloc(n, sizeof(*b->infos));
    b->states = rc_calloc(n, sizeof(*b->states));
    b->logs = rc_calloc(n, sizeof(*b->logs));
    b->errors = rc_calloc(n, sizeof(*b->errors));
    b->ts = rc_calloc(n * CORE__EV_STATES, sizeof(*b->ts));
    b->ts_ptrs = rc_calloc(n * CORE__EV_STATES, sizeof(*b->ts_ptrs));
    size_t i = 0;
    for (core__ev *e = b->records; e; e = e->next, i++) {
        Ray__Rpc__TaskEvents *m = &e->msg;
        ray__rpc__task_events__init(m);
        m->task_id.data = e->key;
        m->task_id.len = RC_TASK_ID_SIZE;
        m->attempt_number = core__key_attempt(e->key);
        m->job_id.data = e->job_id;
        m->job_id.len = RC_JOB_ID_SIZE;
        Ray__Rpc__TaskInfoEntry *info = &b->infos[i];
        ray__rpc__task_info_entry__init(info);
        info->type = e->type;
        info->language = e->language;
        info->name = e->name;
        info->func_or_class_name = e->func;
        info->job_id = m->job_id;
        info->task_id = m->task_id;
        info->parent_task_id.data = e->parent;
        info->parent_task_id.len = RC_TASK_ID_SIZE;
        if (e->has_actor) {
            info->_actor_id_case = RAY__RPC__TASK_INFO_ENTRY___ACTOR_ID_ACTOR_ID;
            info->actor_id.data = e->actor_id;
            info->actor_id.len = RC_ACTOR_ID_SIZE;
        }
        m->task_info = info;
        Ray__Rpc__TaskStateUpdate *su = &b->states[i];
        ray__rpc__task_state_update__init(su);
        if (e->has_node) {
            su->_node_id_case = RAY__RPC__TASK_STATE_UPDATE___NODE_ID_NODE_ID;
            su->node_id.data = e->node_id;
            su->node_id.len = RC_NODE_ID_SIZE;
        }
        if (e->executed) {
            su->_worker_id_case = RAY__RPC__TASK_STATE_UPDATE___WORKER_ID_WORKER_ID;
            su->worker_id.data = cw->worker_id;
            su->worker_id.len = RC_WORKER_ID_SIZE;
            su->_worker_pid_case = RAY__RPC__TASK_STATE_UPDATE___WORKER_PID_WORKER_PID;
            su->worker_pid = (int32_t)getpid();
            Ray__Rpc__TaskLogInfo *li = &b->logs[i];
            ray__rpc__task_log_info__init(li);
            if (ev->out_path[0]) {
                li->_stdout_file_case = RAY__RPC__TASK_LOG_INFO___STDOUT_FILE_STDOUT_FILE;
                li->stdout_file = ev->out_path;
            }
            if (ev->err_path[0]) {
                li->_stderr_file_case = RAY__RPC__TASK_LOG_INFO___STDERR_FILE_STDERR_FILE;
                li->stderr_file = ev->err_path;
            }
            if (e->log[0] >= 0) {
                li->_stdout_start_case = RAY__RPC__TASK_LOG_INFO___STDOUT_START_STDOUT_START;
                li->stdout_start = e->log[0];
            }
            if (e->log[1] >= 0) {
                li->_stdout_end_case = RAY__RPC__TASK_LOG_INFO___STDOUT_END_STDOUT_END;
                li->stdout_end = e->log[1];
            }
            if (e->log[2] >= 0) {
                li->_stderr_start_case = RAY__RPC__TASK_LOG_INFO___STDERR_START_STDERR_START;
                li->stderr_start = e->log[2];
            }
            if (e->log[3] >= 0) {
                li->_stderr_end_case = RAY__RPC__TASK_LOG_INFO___STDERR_END_STDERR_END;
                li->stderr_end = e->log[3];
            }
            su->task_log_info = li;
        }
        if (e->has_error) {
            Ray__Rpc__RayErrorInfo *ei = &b->errors[i];
            ray__rpc__ray_error_info__init(ei);
            ei->error_type = e->error_type;
            ei->error_message = e->error_message;
            su->error_info = ei;
        }
        su->state_ts_ns = &b->ts_ptrs[i * CORE__EV_STATES];
        for (int s = 1; s < CORE__EV_STATES; s++) {
            if (!e->ts[s])
                continue;
            Ray__Rpc__TaskStateUpdate__StateTsNsEntry *t = &b->ts[i * CORE__EV_STATES + su->n_state_ts_ns];
            ray__rpc__task_state_update__state_ts_ns_entry__init(t);
            t->key = s;
            t->value = e->ts[s];
            su->state_ts_ns[su->n_state_ts_ns++] = t;
        }
        m->state_updates = su;
        b->by_task[i] = m;
    }
    if (n_dropped) {
        b->dropped = rc_calloc(n_dropped, sizeof(*b->dropped));
        b->dropped_ptrs = rc_calloc(n_dropped, sizeof(*b->dropped_ptrs));
        for (size_t k = 0; k < n_dropped; k++) {
            ray__rpc__task_attempt__init(&b->dropped[k]);
            b->dropped[k].task_id.data = b->dropped_keys[k];
            b->dropped[k].task_id.len = RC_TASK_ID_SIZE;
            b->dropped[k].attempt_number = core__key_attempt(b->dropped_keys[k]);
            b->dropped_ptrs[k] = &b->dropped[k];
        }
    }
    return b;
}

/* The request for batch b (pointing into it). */
static void core__batch_request(core__batch *b, Ray__Rpc__TaskEventData *data,
                                Ray__Rpc__AddTaskEventDataRequest *req)
{
    ray__rpc__task_event_data__init(data);
    data->events_by_task = b->by_task;
    data->n_events_by_task = b->n;
    data->dropped_task_attempts = b->dropped_ptrs;
    data->n_dropped_task_attempts = b->n_dropped;
    data->job_id.data = b->ev->cw->job_id;
    data->job_id.len = RC_JOB_ID_SIZE;
    ray__rpc__add_task_event_data_request__init(req);
    req->data = data;
}

static void core__sent(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    core__batch *b = arg;
    if (st->code != GRPC_STATUS_OK)
        RC_DEBUG("core: %zu task events were not delivered to the GCS: %s", b->n, st->message);
    rpc_msg_free(reply);
    b->ev->in_flight = 0;
    core__batch_free(b);
}

/* Sends one batch if none is in flight. Loop thread. */
static void core__flush(core_events *ev)
{
    core_worker *cw = ev->cw;
    if (ev->in_flight || !cw->gcs || cw->stopping)
        return;
    core__batch *b = core__batch_take(ev);
    if (!b)
        return;
    Ray__Rpc__TaskEventData data;
    Ray__Rpc__AddTaskEventDataRequest req;
    core__batch_request(b, &data, &req);
    ev->in_flight = 1;
    if (rpc_client_call(gcs_client_rpc(cw->gcs), &ray__rpc__task_info_gcs_service__descriptor, "AddTaskEventData",
                        &req.base, rc_cfg.gcs_rpc_timeout_ms, core__sent, b) < 0) {
        ev->in_flight = 0;
        core__batch_free(b);
    }
}

/* ---- log rotation (workers) ----------------------------------------------------------- */

/* Rotates path (open as fd) when it is larger than rotation_max_bytes. */
static void core__rotate(core_events *ev, int fd, const char *path)
{
    int64_t max = rc_cfg.rotation_max_bytes;
    int64_t count = rc_cfg.rotation_backup_count;
    if (!path[0] || max <= 0 || count <= 0)
        return;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= max)
        return;
    char from[PATH_MAX + 16], to[PATH_MAX + 16];
    for (int64_t i = count - 1; i >= 1; i--) {
        snprintf(from, sizeof(from), "%s.%lld", path, (long long)i);
        snprintf(to, sizeof(to), "%s.%lld", path, (long long)(i + 1));
        if (rename(from, to) < 0 && errno != ENOENT)
            RC_WARN("core: cannot rotate %s to %s: %s", from, to, strerror(errno));
    }
    snprintf(to, sizeof(to), "%s.1", path);
    if (rename(path, to) < 0) {
        RC_WARN("core: cannot rotate %s: %s", path, strerror(errno));
        return;
    }
    int nfd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (nfd < 0) {
        RC_WARN("core: cannot reopen %s after rotating it: %s", path, strerror(errno));
        return; /* the worker goes on writing to the rotated file */
    }
    char job_hex[RC_ID_HEX_MAX], marker[128];
    rc_id_hex(ev->cw->job_id, RC_JOB_ID_SIZE, job_hex);
    int n = snprintf(marker, sizeof(marker), ":job_id:%s:%d\n", job_hex, (int)getpid());
    if (write(nfd, marker, (size_t)n) != n)
        RC_DEBUG("core: cannot write the job marker to %s", path);
    if (dup2(nfd, fd) < 0)
        RC_WARN("core: cannot switch fd %d to %s: %s", fd, path, strerror(errno));
    close(nfd);
}

static void core__events_tick(uv_timer_t *t)
{
    core_events *ev = t->data;
    core__flush(ev);
    if (ev->cw->is_worker) {
        core__rotate(ev, STDOUT_FILENO, ev->out_path);
        core__rotate(ev, STDERR_FILENO, ev->err_path);
    }
}

/* ---- life ----------------------------------------------------------------------------- */

int core_events_start(core_worker *cw)
{
    core_events *ev = RC_NEW(core_events);
    ev->cw = cw;
    pthread_mutex_init(&ev->mu, NULL);
    rc_map_init(&ev->pending);
    if (cw->is_worker) {
        core__fd_path(STDOUT_FILENO, ev->out_path, sizeof(ev->out_path));
        core__fd_path(STDERR_FILENO, ev->err_path, sizeof(ev->err_path));
    }
    uv_timer_init(&cw->loop, &ev->timer);
    ev->timer.data = ev;
    int64_t period = rc_cfg.task_events_report_interval_ms > 0 ? rc_cfg.task_events_report_interval_ms : 1000;
    uv_timer_start(&ev->timer, core__events_tick, (uint64_t)period, (uint64_t)period);
    cw->events = ev;
    return 0;
}

static void core__events_closed(uv_handle_t *h)
{
    core_events *ev = h->data;
    pthread_mutex_lock(&ev->mu);
    for (core__ev *e = ev->head, *next; e; e = next) {
        next = e->next;
        core__ev_free(e);
    }
    rc_map_destroy(&ev->pending, NULL);
    rc_free(ev->dropped);
    pthread_mutex_unlock(&ev->mu);
    pthread_mutex_destroy(&ev->mu);
    rc_free(ev);
}

void core_events_flush_sync(core_worker *cw, int64_t timeout_ms)
{
    core_events *ev = cw->events;
    if (!ev || !cw->gcs)
        return; /* a batch still in flight is independent of these: it ends during the drain */
    core__batch *b;
    while ((b = core__batch_take(ev)) != NULL) {
        Ray__Rpc__TaskEventData data;
        Ray__Rpc__AddTaskEventDataRequest req;
        core__batch_request(b, &data, &req);
        ProtobufCMessage *reply = NULL;
        char err[256];
        int code = rpc_client_call_sync(gcs_client_rpc(cw->gcs), &ray__rpc__task_info_gcs_service__descriptor,
                                        "AddTaskEventData", &req.base, timeout_ms, &reply, err, sizeof(err));
        rpc_msg_free(reply);
        core__batch_free(b);
        if (code != GRPC_STATUS_OK)
            break;
    }
}

void core_events_close(core_worker *cw)
{
    core_events *ev = cw->events;
    if (!ev)
        return;
    cw->events = NULL;
    uv_close((uv_handle_t *)&ev->timer, core__events_closed);
}
