/*
 * The GCS's task event table (gcs/gcs_task_manager.c) without the network: batches as
 * workers send them merge per task attempt (the owner's and the executor's halves), the
 * state is the terminal one when there is one (FAILED before FINISHED), the table keeps at
 * most task_events_max_num_task_in_gcs attempts dropping the oldest and counting them (with
 * the attempts workers dropped), queries come newest first with Ray's filters and limit,
 * and malformed records are refused without losing the rest.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gcs_int.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_time.h"
#include "unit.h"

/* One event of task `n`, attempt `attempt`, of job 1: task info and one state. */
typedef struct ev {
    uint8_t task_id[RC_TASK_ID_SIZE];
    uint8_t job_id[RC_JOB_ID_SIZE];
    char name[32];
    Ray__Rpc__TaskEvents msg;
    Ray__Rpc__TaskInfoEntry info;
    Ray__Rpc__TaskStateUpdate su;
    Ray__Rpc__TaskStateUpdate__StateTsNsEntry ts;
    Ray__Rpc__TaskStateUpdate__StateTsNsEntry *ts_p;
    Ray__Rpc__RayErrorInfo err;
} ev;

static void ev_make(ev *e, int n, int attempt, const char *name, int status, int64_t when)
{
    memset(e, 0, sizeof(*e));
    e->task_id[0] = (uint8_t)n;
    e->task_id[1] = (uint8_t)(n >> 8);
    e->job_id[0] = 1;
    snprintf(e->name, sizeof(e->name), "%s", name);
    ray__rpc__task_events__init(&e->msg);
    e->msg.task_id.data = e->task_id;
    e->msg.task_id.len = RC_TASK_ID_SIZE;
    e->msg.attempt_number = attempt;
    e->msg.job_id.data = e->job_id;
    e->msg.job_id.len = RC_JOB_ID_SIZE;
    ray__rpc__task_info_entry__init(&e->info);
    e->info.name = e->name;
    e->info.func_or_class_name = e->name;
    e->info.type = RAY__RPC__TASK_TYPE__NORMAL_TASK;
    e->msg.task_info = &e->info;
    ray__rpc__task_state_update__init(&e->su);
    ray__rpc__task_state_update__state_ts_ns_entry__init(&e->ts);
    e->ts.key = status;
    e->ts.value = when;
    e->ts_p = &e->ts;
    e->su.state_ts_ns = &e->ts_p;
    e->su.n_state_ts_ns = 1;
    e->msg.state_updates = &e->su;
}

static int add(gcs_task_manager *tm, ev *events, size_t n)
{
    Ray__Rpc__TaskEvents **ptrs = calloc(n ? n : 1, sizeof(*ptrs));
    for (size_t i = 0; i < n; i++)
        ptrs[i] = &events[i].msg;
    Ray__Rpc__TaskEventData data = RAY__RPC__TASK_EVENT_DATA__INIT;
    data.events_by_task = ptrs;
    data.n_events_by_task = n;
    int rc = gcs_task_add_events(tm, &data);
    free(ptrs);
    return rc;
}

static Ray__Rpc__TaskStatus state_of(gcs_task_manager *tm, int n)
{
    uint8_t id[RC_TASK_ID_SIZE] = {(uint8_t)n, (uint8_t)(n >> 8)};
    Ray__Rpc__GetTaskEventsRequest__Filters__TaskIdFilter tf = RAY__RPC__GET_TASK_EVENTS_REQUEST__FILTERS__TASK_ID_FILTER__INIT;
    tf.task_id.data = id;
    tf.task_id.len = sizeof(id);
    Ray__Rpc__GetTaskEventsRequest__Filters__TaskIdFilter *tfp = &tf;
    Ray__Rpc__GetTaskEventsRequest__Filters f = RAY__RPC__GET_TASK_EVENTS_REQUEST__FILTERS__INIT;
    f.task_filters = &tfp;
    f.n_task_filters = 1;
    Ray__Rpc__GetTaskEventsRequest req = RAY__RPC__GET_TASK_EVENTS_REQUEST__INIT;
    req.filters = &f;
    Ray__Rpc__GetTaskEventsReply reply = RAY__RPC__GET_TASK_EVENTS_REPLY__INIT;
    gcs_task_get_events(tm, &req, &reply);
    Ray__Rpc__TaskStatus s = reply.n_events_by_task == 1 ? reply.events_by_task[0]->task_info->scheduling_state
                                                         : RAY__RPC__TASK_STATUS__NIL;
    gcs_task_events_reply_free(&reply);
    return s;
}

static void test_halves_merge_and_terminal_state_wins(void)
{
    gcs_task_manager *tm = gcs_task_manager_new(NULL);
    ev e[3];
    ev_make(&e[0], 1, 0, "f", RAY__RPC__TASK_STATUS__PENDING_ARGS_AVAIL, 100);
    ev_make(&e[1], 1, 0, "f", RAY__RPC__TASK_STATUS__FINISHED, 300); /* the owner saw a reply */
    CU_ASSERT_EQUAL(add(tm, e, 2), 0);
    CU_ASSERT_EQUAL(state_of(tm, 1), RAY__RPC__TASK_STATUS__FINISHED);
    /* The executor's half arrives later: it ran and raised. */
    ev_make(&e[2], 1, 0, "f", RAY__RPC__TASK_STATUS__FAILED, 250);
    ray__rpc__ray_error_info__init(&e[2].err);
    e[2].err.error_type = RAY__RPC__ERROR_TYPE__TASK_EXECUTION_EXCEPTION;
    e[2].err.error_message = "ValueError";
    e[2].su.error_info = &e[2].err;
    e[2].su._worker_pid_case = RAY__RPC__TASK_STATE_UPDATE___WORKER_PID_WORKER_PID;
    e[2].su.worker_pid = 4242;
    CU_ASSERT_EQUAL(add(tm, &e[2], 1), 0);
    CU_ASSERT_EQUAL(gcs_task_manager_size(tm), 1);
    CU_ASSERT_EQUAL(state_of(tm, 1), RAY__RPC__TASK_STATUS__FAILED);

    Ray__Rpc__GetTaskEventsRequest req = RAY__RPC__GET_TASK_EVENTS_REQUEST__INIT;
    Ray__Rpc__GetTaskEventsReply reply = RAY__RPC__GET_TASK_EVENTS_REPLY__INIT;
    gcs_task_get_events(tm, &req, &reply);
    CU_ASSERT_EQUAL_FATAL(reply.n_events_by_task, 1);
    const Ray__Rpc__TaskStateUpdate *su = reply.events_by_task[0]->state_updates;
    CU_ASSERT_EQUAL(su->n_state_ts_ns, 3);
    CU_ASSERT_EQUAL(su->worker_pid, 4242);
    CU_ASSERT_PTR_NOT_NULL_FATAL(su->error_info);
    CU_ASSERT_STRING_EQUAL(su->error_info->error_message, "ValueError");
    CU_ASSERT_STRING_EQUAL(reply.events_by_task[0]->task_info->name, "f");
    gcs_task_events_reply_free(&reply);

    /* A retry is an attempt of its own. */
    ev_make(&e[0], 1, 1, "f", RAY__RPC__TASK_STATUS__RUNNING, 400);
    CU_ASSERT_EQUAL(add(tm, e, 1), 0);
    CU_ASSERT_EQUAL(gcs_task_manager_size(tm), 2);
    gcs_task_manager_free(tm);
}

static void test_table_is_bounded_oldest_dropped(void)
{
    int64_t saved = rc_cfg.task_events_max_num_task_in_gcs;
    rc_cfg.task_events_max_num_task_in_gcs = 100;
    gcs_task_manager *tm = gcs_task_manager_new(NULL);
    static ev e[250];
    for (int i = 0; i < 250; i++)
        ev_make(&e[i], i, 0, i % 2 ? "odd" : "even", RAY__RPC__TASK_STATUS__FINISHED, 1000 + i);
    CU_ASSERT_EQUAL(add(tm, e, 250), 0);
    CU_ASSERT_EQUAL(gcs_task_manager_size(tm), 100);
    CU_ASSERT_EQUAL(gcs_task_manager_dropped(tm), 150);
    CU_ASSERT_EQUAL(state_of(tm, 149), RAY__RPC__TASK_STATUS__NIL); /* dropped */
    CU_ASSERT_EQUAL(state_of(tm, 150), RAY__RPC__TASK_STATUS__FINISHED);
    CU_ASSERT_EQUAL(state_of(tm, 249), RAY__RPC__TASK_STATUS__FINISHED);

    /* Attempts workers dropped count too. */
    Ray__Rpc__TaskAttempt a = RAY__RPC__TASK_ATTEMPT__INIT, *ap = &a;
    Ray__Rpc__TaskEventData data = RAY__RPC__TASK_EVENT_DATA__INIT;
    data.dropped_task_attempts = &ap;
    data.n_dropped_task_attempts = 1;
    CU_ASSERT_EQUAL(gcs_task_add_events(tm, &data), 0);
    Ray__Rpc__GetTaskEventsRequest req = RAY__RPC__GET_TASK_EVENTS_REQUEST__INIT;
    req._limit_case = RAY__RPC__GET_TASK_EVENTS_REQUEST___LIMIT_LIMIT;
    req.limit = 10;
    Ray__Rpc__GetTaskEventsRequest__Filters__TaskNameFilter nf = RAY__RPC__GET_TASK_EVENTS_REQUEST__FILTERS__TASK_NAME_FILTER__INIT;
    nf.task_name = "odd";
    Ray__Rpc__GetTaskEventsRequest__Filters__TaskNameFilter *nfp = &nf;
    Ray__Rpc__GetTaskEventsRequest__Filters f = RAY__RPC__GET_TASK_EVENTS_REQUEST__FILTERS__INIT;
    f.task_name_filters = &nfp;
    f.n_task_name_filters = 1;
    req.filters = &f;
    Ray__Rpc__GetTaskEventsReply reply = RAY__RPC__GET_TASK_EVENTS_REPLY__INIT;
    gcs_task_get_events(tm, &req, &reply);
    CU_ASSERT_EQUAL(reply.n_events_by_task, 10);
    CU_ASSERT_EQUAL(reply.num_total_stored, 100);
    CU_ASSERT_EQUAL(reply.num_filtered_on_gcs, 50);
    CU_ASSERT_EQUAL(reply.num_truncated, 40);
    CU_ASSERT_EQUAL(reply.num_status_task_events_dropped, 151);
    CU_ASSERT_EQUAL(reply.events_by_task[0]->task_id.data[0], 249); /* newest first */
    for (size_t i = 0; i < reply.n_events_by_task; i++)
        CU_ASSERT_STRING_EQUAL(reply.events_by_task[i]->task_info->name, "odd");
    gcs_task_events_reply_free(&reply);

    /* State filters by name, NOT_EQUAL included. */
    Ray__Rpc__GetTaskEventsRequest__Filters__StateFilter sf = RAY__RPC__GET_TASK_EVENTS_REQUEST__FILTERS__STATE_FILTER__INIT;
    sf.state = "finished";
    sf.predicate = RAY__RPC__FILTER_PREDICATE__NOT_EQUAL;
    Ray__Rpc__GetTaskEventsRequest__Filters__StateFilter *sfp = &sf;
    Ray__Rpc__GetTaskEventsRequest__Filters f2 = RAY__RPC__GET_TASK_EVENTS_REQUEST__FILTERS__INIT;
    f2.state_filters = &sfp;
    f2.n_state_filters = 1;
    Ray__Rpc__GetTaskEventsRequest req2 = RAY__RPC__GET_TASK_EVENTS_REQUEST__INIT;
    req2.filters = &f2;
    gcs_task_get_events(tm, &req2, &reply);
    CU_ASSERT_EQUAL(reply.n_events_by_task, 0);
    gcs_task_events_reply_free(&reply);
    gcs_task_manager_free(tm);
    rc_cfg.task_events_max_num_task_in_gcs = saved;
}

static void test_malformed_records_are_refused(void)
{
    gcs_task_manager *tm = gcs_task_manager_new(NULL);
    ev e[2];
    ev_make(&e[0], 7, 0, "good", RAY__RPC__TASK_STATUS__RUNNING, 10);
    ev_make(&e[1], 8, 0, "bad", RAY__RPC__TASK_STATUS__RUNNING, 10);
    e[1].msg.task_id.len = 3;
    CU_ASSERT_EQUAL(add(tm, e, 2), RC_EINVAL);
    CU_ASSERT_EQUAL(gcs_task_manager_size(tm), 1);
    CU_ASSERT_EQUAL(state_of(tm, 7), RAY__RPC__TASK_STATUS__RUNNING);
    ev_make(&e[0], 9, 0, "odd state", 99, 10); /* no such TaskStatus: ignored */
    CU_ASSERT_EQUAL(add(tm, e, 1), 0);
    CU_ASSERT_EQUAL(state_of(tm, 9), RAY__RPC__TASK_STATUS__NIL);
    gcs_task_manager_free(tm);
}

static void test_finished_job_fails_its_unfinished_tasks(void)
{
    gcs_task_manager *tm = gcs_task_manager_new(NULL);
    ev e[3];
    ev_make(&e[0], 1, 0, "running", RAY__RPC__TASK_STATUS__RUNNING, 10);
    ev_make(&e[1], 2, 0, "done", RAY__RPC__TASK_STATUS__FINISHED, 10);
    ev_make(&e[2], 3, 0, "other job", RAY__RPC__TASK_STATUS__RUNNING, 10);
    e[2].job_id[0] = 2;
    CU_ASSERT_EQUAL(add(tm, e, 3), 0);
    uint8_t job1[RC_JOB_ID_SIZE] = {1};
    int64_t now = rc_wall_ms() * 1000000;
    gcs_task_on_job_finished(tm, job1, now); /* just now: the delay has not passed */
    CU_ASSERT_EQUAL(state_of(tm, 1), RAY__RPC__TASK_STATUS__RUNNING);
    gcs_task_manager_free(tm);

    tm = gcs_task_manager_new(NULL);
    CU_ASSERT_EQUAL(add(tm, e, 3), 0);
    gcs_task_on_job_finished(tm, job1, now - (rc_cfg.gcs_mark_task_failed_on_job_done_delay_ms + 1000) * 1000000);
    CU_ASSERT_EQUAL(state_of(tm, 1), RAY__RPC__TASK_STATUS__FAILED);
    CU_ASSERT_EQUAL(state_of(tm, 2), RAY__RPC__TASK_STATUS__FINISHED);
    CU_ASSERT_EQUAL(state_of(tm, 3), RAY__RPC__TASK_STATUS__RUNNING);
    Ray__Rpc__GetTaskEventsRequest req = RAY__RPC__GET_TASK_EVENTS_REQUEST__INIT;
    Ray__Rpc__GetTaskEventsReply reply = RAY__RPC__GET_TASK_EVENTS_REPLY__INIT;
    gcs_task_get_events(tm, &req, &reply);
    for (size_t i = 0; i < reply.n_events_by_task; i++) {
        const Ray__Rpc__TaskEvents *te = reply.events_by_task[i];
        if (te->task_id.data[0] == 1) {
            CU_ASSERT_PTR_NOT_NULL_FATAL(te->state_updates->error_info);
            CU_ASSERT_EQUAL(te->state_updates->error_info->error_type, RAY__RPC__ERROR_TYPE__WORKER_DIED);
        }
    }
    gcs_task_events_reply_free(&reply);
    gcs_task_manager_free(tm);
}

static const unit_case cases[] = {
    UNIT_CASE(test_finished_job_fails_its_unfinished_tasks),
    UNIT_CASE(test_halves_merge_and_terminal_state_wins),
    UNIT_CASE(test_table_is_bounded_oldest_dropped),
    UNIT_CASE(test_malformed_records_are_refused),
};

int main(void)
{
    rc_config_init();
    return unit_run("gcs_task_manager", cases, UNIT_N(cases));
}
