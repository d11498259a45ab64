/*
 * Rows of Ray's state API (ray.util.state) as JSON objects, one per GCS record: what
 * `rayc list --format json` prints and rayc_state_json returns. Any thread.
 */
#ifndef RAYC_GCS_CLIENT_GCS_STATE_JSON_H
#define RAYC_GCS_CLIENT_GCS_STATE_JSON_H

#include <stdint.h>

#include "gcs_service.pb-c.h"
#include "rc_buf.h"
#include "task_events.pb-c.h"

/* NodeState: node_id, state, node_ip, node_name, is_head_node, resources_total, labels,
 * start_time_ms, end_time_ms, death_info (dead nodes). */
void gcs_state_json_node(rc_buf *b, const Ray__Rpc__GcsNodeInfo *n);
/* A job table entry: job_id, status (RUNNING or FINISHED), is_dead, driver_ip_address,
 * driver_pid, entrypoint, namespace, submission_id (null for a plain driver), start_time,
 * end_time. */
void gcs_state_json_job(rc_buf *b, const Ray__Rpc__JobTableData *j);
/* ActorState: actor_id, class_name, state, job_id, name, ray_namespace, node_id, pid,
 * num_restarts, max_restarts, is_detached, placement_group_id, repr_name,
 * required_resources, death_cause (Ray's proto as a dict), start_time_ms, end_time_ms. */
void gcs_state_json_actor(rc_buf *b, const Ray__Rpc__ActorTableData *a);
/* PlacementGroupState: placement_group_id, name, creator_job_id, state, strategy,
 * ray_namespace, is_detached, bundles, stats (with infeasible_reason when given and the
 * group is infeasible). */
void gcs_state_json_pg(rc_buf *b, const Ray__Rpc__PlacementGroupTableData *pg, const char *infeasible_reason);
/* TaskState of one attempt: task_id, attempt_number, name, state, job_id, actor_id, type,
 * func_or_class_name, language, parent_task_id, node_id, worker_id, worker_pid, error_type,
 * error_message, creation_time_ms, start_time_ms, end_time_ms; required_resources and
 * placement_group_id when the task's events carry them. */
void gcs_state_json_task(rc_buf *b, const Ray__Rpc__TaskEvents *ev);

/* The attempt's TaskStatus name ("FINISHED", ...). */
const char *gcs_state_task_state(const Ray__Rpc__TaskEvents *ev);
/* When the attempt reached status (a TaskStatus), in ns since the epoch; 0 if it did not. */
int64_t gcs_state_task_ts(const Ray__Rpc__TaskEvents *ev, int status);

#endif
