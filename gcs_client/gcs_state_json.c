/*
 * Rows of Ray's state API as JSON, from the GCS's replies: the field names of
 * ray.util.state's NodeState, ActorState, PlacementGroupState, TaskState and (for drivers)
 * JobState, plus a few of rayc's own. `rayc list --format json` prints them and librayc's
 * rayc_state_json hands them to ray.util.state. IDs are hex; a missing ID is null. Any
 * thread.
 */
#include "gcs_state_json.h"

#include <string.h>

#include "rc_ids.h"

/* The hex of an ID (at most 64 bytes) into out (2 * 64 + 1 bytes); "" for none. */
static void gs__id_hex(const ProtobufCBinaryData *b, char *out)
{
    if (!b || !b->len) {
        out[0] = '\0';
        return;
    }
    rc_id_hex(b->data, b->len > 64 ? 64 : b->len, out);
}

const char *gcs_state_task_state(const Ray__Rpc__TaskEvents *ev)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
        &ray__rpc__task_status__descriptor, ev->task_info ? (int)ev->task_info->scheduling_state : 0);
    return v ? v->name : "?";
}

int64_t gcs_state_task_ts(const Ray__Rpc__TaskEvents *ev, int status)
{
    const Ray__Rpc__TaskStateUpdate *su = ev->state_updates;
    for (size_t i = 0; su && i < su->n_state_ts_ns; i++)
        if (su->state_ts_ns[i]->key == status)
            return su->state_ts_ns[i]->value;
    return 0;
}

static void gs__kv_str(rc_buf *b, const char *key, const char *value, int *first)
{
    rc_buf_printf(b, "%s\"%s\": ", *first ? "" : ", ", key);
    rc_buf_json_str(b, value ? value : "", value ? strlen(value) : 0);
    *first = 0;
}

static void gs__kv_hex(rc_buf *b, const char *key, const ProtobufCBinaryData *id, int *first)
{
    char hex[2 * 64 + 1];
    size_t n = id->len < 64 ? id->len : 64;
    rc_buf_printf(b, "%s\"%s\": ", *first ? "" : ", ", key);
    if (n)
        rc_buf_printf(b, "\"%s\"", rc_id_hex(id->data, n, hex));
    else
        rc_buf_puts(b, "null");
    *first = 0;
}

static const char *gs__enum(const ProtobufCEnumDescriptor *d, int value)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(d, value);
    return v ? v->name : "UNKNOWN";
}

static const char *gs__node_state(const Ray__Rpc__GcsNodeInfo *n)
{
    return n->state == RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__ALIVE ? "ALIVE" : "DEAD";
}

void gcs_state_json_node(rc_buf *b, const Ray__Rpc__GcsNodeInfo *n)
{
    char hex[RC_ID_HEX_MAX];
    int first = 1;
    rc_buf_putc(b, '{');
    gs__kv_str(b, "node_id", rc_id_hex(n->node_id.data, n->node_id.len > 28 ? 28 : n->node_id.len, hex), &first);
    gs__kv_str(b, "state", gs__node_state(n), &first);
    gs__kv_str(b, "node_ip", n->node_manager_address, &first);
    gs__kv_str(b, "node_manager_address", n->node_manager_address, &first);
    rc_buf_printf(b, ", \"node_manager_port\": %d", n->node_manager_port);
    gs__kv_str(b, "node_manager_hostname", n->node_manager_hostname, &first);
    gs__kv_str(b, "node_name", n->node_name, &first);
    rc_buf_printf(b, ", \"is_head_node\": %s", n->is_head_node ? "true" : "false");
    rc_buf_puts(b, ", \"resources_total\": {");
    for (size_t i = 0; i < n->n_resources_total; i++) {
        rc_buf_printf(b, "%s", i ? ", " : "");
        rc_buf_json_str(b, n->resources_total[i]->key, strlen(n->resources_total[i]->key));
        rc_buf_printf(b, ": %.17g", n->resources_total[i]->value);
    }
    rc_buf_puts(b, "}, \"labels\": {");
    for (size_t i = 0; i < n->n_labels; i++) {
        rc_buf_printf(b, "%s", i ? ", " : "");
        rc_buf_json_str(b, n->labels[i]->key, strlen(n->labels[i]->key));
        rc_buf_puts(b, ": ");
        rc_buf_json_str(b, n->labels[i]->value, strlen(n->labels[i]->value));
    }
    rc_buf_printf(b, "}, \"start_time_ms\": %llu, \"end_time_ms\": %llu", (unsigned long long)n->start_time_ms,
                  (unsigned long long)n->end_time_ms);
    if (n->death_info) {
        const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(&ray__rpc__node_death_info__reason__descriptor,
                                                                          n->death_info->reason);
        rc_buf_puts(b, ", \"death_info\": {");
        first = 1;
        gs__kv_str(b, "reason", v ? v->name : "UNSPECIFIED", &first);
        gs__kv_str(b, "reason_message", n->death_info->reason_message, &first);
        rc_buf_putc(b, '}');
    }
    rc_buf_putc(b, '}');
}

void gcs_state_json_job(rc_buf *b, const Ray__Rpc__JobTableData *j)
{
    char hex[RC_ID_HEX_MAX];
    rc_id_hex(j->job_id.data, j->job_id.len > 4 ? 4 : j->job_id.len, hex);
    int first = 1;
    rc_buf_putc(b, '{');
    gs__kv_str(b, "job_id", hex, &first);
    gs__kv_str(b, "status", j->is_dead ? "FINISHED" : "RUNNING", &first);
    rc_buf_printf(b, ", \"is_dead\": %s", j->is_dead ? "true" : "false");
    gs__kv_str(b, "driver_ip_address", j->driver_ip_address, &first);
    rc_buf_printf(b, ", \"driver_pid\": %lld", (long long)j->driver_pid);
    gs__kv_str(b, "entrypoint", j->entrypoint, &first);
    gs__kv_str(b, "namespace", j->config ? j->config->ray_namespace : "", &first);
    const char *submission = NULL; /* set by the Jobs API's drivers (JobConfig metadata) */
    for (size_t k = 0; j->config && k < j->config->n_metadata; k++)
        if (!strcmp(j->config->metadata[k]->key, "job_submission_id"))
            submission = j->config->metadata[k]->value;
    if (submission)
        gs__kv_str(b, "submission_id", submission, &first);
    else
        rc_buf_puts(b, ", \"submission_id\": null");
    rc_buf_printf(b, ", \"start_time\": %llu, \"end_time\": %llu}", (unsigned long long)j->start_time,
                  (unsigned long long)j->end_time);
}

static void gs__death_cause(rc_buf *b, const Ray__Rpc__ActorDeathCause *dc)
{
    int first = 1;
    rc_buf_putc(b, '{');
    switch (dc->context_case) {
    case RAY__RPC__ACTOR_DEATH_CAUSE__CONTEXT_ACTOR_DIED_ERROR_CONTEXT: {
        const Ray__Rpc__ActorDiedErrorContext *x = dc->actor_died_error_context;
        rc_buf_puts(b, "\"actor_died_error_context\": {");
        gs__kv_str(b, "error_message", x->error_message, &first);
        gs__kv_str(b, "reason", gs__enum(&ray__rpc__actor_died_error_context__reason__descriptor, x->reason),
                         &first);
        gs__kv_hex(b, "owner_id", &x->owner_id, &first);
        gs__kv_str(b, "owner_ip_address", x->owner_ip_address, &first);
        gs__kv_str(b, "node_ip_address", x->node_ip_address, &first);
        rc_buf_printf(b, ", \"pid\": %u, \"never_started\": %s}", x->pid, x->never_started ? "true" : "false");
        break;
    }
    case RAY__RPC__ACTOR_DEATH_CAUSE__CONTEXT_CREATION_TASK_FAILURE_CONTEXT:
        rc_buf_puts(b, "\"creation_task_failure_context\": {");
        gs__kv_str(b, "formatted_exception_string",
                         dc->creation_task_failure_context->formatted_exception_string, &first);
        rc_buf_putc(b, '}');
        break;
    case RAY__RPC__ACTOR_DEATH_CAUSE__CONTEXT_ACTOR_UNSCHEDULABLE_CONTEXT:
        rc_buf_puts(b, "\"actor_unschedulable_context\": {");
        gs__kv_str(b, "error_message", dc->actor_unschedulable_context->error_message, &first);
        rc_buf_putc(b, '}');
        break;
    default:
        break;
    }
    rc_buf_putc(b, '}');
}

void gcs_state_json_actor(rc_buf *b, const Ray__Rpc__ActorTableData *a)
{
    int first = 1;
    rc_buf_putc(b, '{');
    gs__kv_hex(b, "actor_id", &a->actor_id, &first);
    gs__kv_str(b, "class_name", a->class_name, &first);
    gs__kv_str(b, "state", gs__enum(&ray__rpc__actor_table_data__actor_state__descriptor, a->state),
                     &first);
    gs__kv_hex(b, "job_id", &a->job_id, &first);
    gs__kv_str(b, "name", a->name, &first);
    gs__kv_str(b, "ray_namespace", a->ray_namespace, &first);
    gs__kv_str(b, "namespace", a->ray_namespace, &first);
    ProtobufCBinaryData none = {0, NULL};
    gs__kv_hex(b, "node_id", a->_node_id_case ? &a->node_id : &none, &first);
    rc_buf_printf(b, ", \"pid\": %u, \"num_restarts\": %lld, \"max_restarts\": %lld, \"is_detached\": %s", a->pid,
                  (long long)a->num_restarts, (long long)a->max_restarts, a->is_detached ? "true" : "false");
    gs__kv_hex(b, "placement_group_id", a->_placement_group_id_case ? &a->placement_group_id : &none, &first);
    gs__kv_str(b, "repr_name", a->repr_name, &first);
    rc_buf_puts(b, ", \"required_resources\": {");
    for (size_t i = 0; i < a->n_required_resources; i++) {
        rc_buf_printf(b, "%s", i ? ", " : "");
        rc_buf_json_str(b, a->required_resources[i]->key, strlen(a->required_resources[i]->key));
        rc_buf_printf(b, ": %.17g", a->required_resources[i]->value);
    }
    rc_buf_puts(b, "}, \"death_cause\": ");
    if (a->death_cause)
        gs__death_cause(b, a->death_cause);
    else
        rc_buf_puts(b, "null");
    rc_buf_printf(b, ", \"start_time_ms\": %llu, \"end_time_ms\": %llu}", (unsigned long long)a->start_time,
                  (unsigned long long)a->end_time);
}

void gcs_state_json_pg(rc_buf *b, const Ray__Rpc__PlacementGroupTableData *pg, const char *infeasible_reason)
{
    int first = 1;
    rc_buf_putc(b, '{');
    gs__kv_hex(b, "placement_group_id", &pg->placement_group_id, &first);
    gs__kv_str(b, "name", pg->name, &first);
    gs__kv_hex(b, "creator_job_id", &pg->creator_job_id, &first);
    gs__kv_str(b, "state",
                     gs__enum(&ray__rpc__placement_group_table_data__placement_group_state__descriptor, pg->state),
                     &first);
    gs__kv_str(b, "strategy", gs__enum(&ray__rpc__placement_strategy__descriptor, pg->strategy), &first);
    gs__kv_str(b, "ray_namespace", pg->ray_namespace, &first);
    rc_buf_printf(b, ", \"is_detached\": %s, \"bundles\": [", pg->is_detached ? "true" : "false");
    for (size_t i = 0; i < pg->n_bundles; i++) {
        const Ray__Rpc__Bundle *bd = pg->bundles[i];
        int f = 1;
        rc_buf_printf(b, "%s{\"bundle_index\": %zu", i ? ", " : "", i);
        f = 0;
        gs__kv_hex(b, "node_id", &bd->node_id, &f);
        rc_buf_puts(b, ", \"unit_resources\": {");
        for (size_t k = 0; k < bd->n_unit_resources; k++) {
            rc_buf_printf(b, "%s", k ? ", " : "");
            rc_buf_json_str(b, bd->unit_resources[k]->key, strlen(bd->unit_resources[k]->key));
            rc_buf_printf(b, ": %.17g", bd->unit_resources[k]->value);
        }
        rc_buf_puts(b, "}, \"label_selector\": {");
        for (size_t k = 0; k < bd->n_label_selector; k++) {
            rc_buf_printf(b, "%s", k ? ", " : "");
            rc_buf_json_str(b, bd->label_selector[k]->key, strlen(bd->label_selector[k]->key));
            rc_buf_puts(b, ": ");
            rc_buf_json_str(b, bd->label_selector[k]->value, strlen(bd->label_selector[k]->value));
        }
        rc_buf_puts(b, "}}");
    }
    rc_buf_puts(b, "]");
    if (pg->stats) {
        rc_buf_puts(b, ", \"stats\": {");
        first = 1;
        gs__kv_str(b, "scheduling_state",
                         gs__enum(&ray__rpc__placement_group_stats__scheduling_state__descriptor,
                                        pg->stats->scheduling_state),
                         &first);
        rc_buf_printf(b, ", \"scheduling_attempt\": %u}", pg->stats->scheduling_attempt);
        if (pg->stats->scheduling_state == RAY__RPC__PLACEMENT_GROUP_STATS__SCHEDULING_STATE__INFEASIBLE &&
            infeasible_reason) {
            first = 0;
            gs__kv_str(b, "infeasible_reason", infeasible_reason, &first);
        }
    }
    rc_buf_putc(b, '}');
}

void gcs_state_json_task(rc_buf *b, const Ray__Rpc__TaskEvents *ev)
{
    const Ray__Rpc__TaskInfoEntry *ti = ev->task_info;
    const Ray__Rpc__TaskStateUpdate *su = ev->state_updates;
    char hex[RC_ID_HEX_MAX * 2];
    gs__id_hex(&ev->task_id, hex);
    rc_buf_printf(b, "{\"task_id\": \"%s\", \"attempt_number\": %d, \"name\": ", hex, ev->attempt_number);
    const char *name = ti ? ti->name : "";
    rc_buf_json_str(b, name, strlen(name));
    rc_buf_printf(b, ", \"state\": \"%s\"", gcs_state_task_state(ev));
    gs__id_hex(&ev->job_id, hex);
    rc_buf_printf(b, ", \"job_id\": \"%s\"", hex);
    if (ti && ti->_actor_id_case == RAY__RPC__TASK_INFO_ENTRY___ACTOR_ID_ACTOR_ID)
        gs__id_hex(&ti->actor_id, hex);
    else
        hex[0] = '\0';
    rc_buf_printf(b, ", \"actor_id\": %s%s%s", hex[0] ? "\"" : "", hex[0] ? hex : "null", hex[0] ? "\"" : "");
    rc_buf_printf(b, ", \"type\": \"%s\", \"func_or_class_name\": ",
                  gs__enum(&ray__rpc__task_type__descriptor, ti ? (int)ti->type : 0));
    const char *func = ti ? ti->func_or_class_name : "";
    rc_buf_json_str(b, func, strlen(func));
    if (ti) {
        rc_buf_printf(b, ", \"language\": \"%s\"", gs__enum(&ray__rpc__language__descriptor, (int)ti->language));
        /* What the reporting workers filled in, only: the others stay unknown (absent). */
        if (ti->n_required_resources) {
            rc_buf_puts(b, ", \"required_resources\": {");
            for (size_t i = 0; i < ti->n_required_resources; i++) {
                rc_buf_printf(b, "%s", i ? ", " : "");
                rc_buf_json_str(b, ti->required_resources[i]->key, strlen(ti->required_resources[i]->key));
                rc_buf_printf(b, ": %.17g", ti->required_resources[i]->value);
            }
            rc_buf_putc(b, '}');
        }
        if (ti->_placement_group_id_case == RAY__RPC__TASK_INFO_ENTRY___PLACEMENT_GROUP_ID_PLACEMENT_GROUP_ID) {
            int first = 0;
            gs__kv_hex(b, "placement_group_id", &ti->placement_group_id, &first);
        }
    }
    gs__id_hex(ti ? &ti->parent_task_id : NULL, hex);
    rc_buf_printf(b, ", \"parent_task_id\": \"%s\"", hex);
    if (su && su->_node_id_case)
        gs__id_hex(&su->node_id, hex);
    else
        hex[0] = '\0';
    rc_buf_printf(b, ", \"node_id\": %s%s%s", hex[0] ? "\"" : "", hex[0] ? hex : "null", hex[0] ? "\"" : "");
    if (su && su->_worker_id_case)
        gs__id_hex(&su->worker_id, hex);
    else
        hex[0] = '\0';
    rc_buf_printf(b, ", \"worker_id\": %s%s%s", hex[0] ? "\"" : "", hex[0] ? hex : "null", hex[0] ? "\"" : "");
    if (su && su->_worker_pid_case)
        rc_buf_printf(b, ", \"worker_pid\": %d", su->worker_pid);
    else
        rc_buf_puts(b, ", \"worker_pid\": null");
    if (su && su->error_info) {
        rc_buf_printf(b, ", \"error_type\": \"%s\", \"error_message\": ",
                      gs__enum(&ray__rpc__error_type__descriptor, su->error_info->error_type));
        const char *m = su->error_info->error_message ? su->error_info->error_message : "";
        rc_buf_json_str(b, m, strlen(m));
    } else {
        rc_buf_puts(b, ", \"error_type\": null, \"error_message\": null");
    }
    int64_t start = gcs_state_task_ts(ev, RAY__RPC__TASK_STATUS__RUNNING);
    int64_t end = gcs_state_task_ts(ev, RAY__RPC__TASK_STATUS__FINISHED);
    if (!end)
        end = gcs_state_task_ts(ev, RAY__RPC__TASK_STATUS__FAILED);
    int64_t created = gcs_state_task_ts(ev, RAY__RPC__TASK_STATUS__PENDING_ARGS_AVAIL);
    rc_buf_printf(b, ", \"creation_time_ms\": %lld, \"start_time_ms\": %lld, \"end_time_ms\": %lld}",
                  (long long)(created / 1000000), (long long)(start / 1000000), (long long)(end / 1000000));
}
