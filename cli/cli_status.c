/*
 * rayc status and rayc list.
 *
 * status prints Ray's layout: "Node status" (active nodes, recently failed nodes),
 * "Resources" (used/total per resource over the live nodes; implicit node: and
 * accelerator_type: resources are left out, as Ray does) and "Demands" (pending and
 * infeasible requests by shape, then placement groups waiting to be placed, grouped by
 * bundles and strategy as Ray prints them, with the scheduler's sentence for a group no set
 * of nodes could ever hold). "Pending:" and "Recent failures:" print what the autoscaler
 * (rayc-market) last reported to the GCS (GetClusterStatus), in the lines Ray's `ray status`
 * prints (autoscaler v2's ClusterStatusFormatter), and the requests it found infeasible are
 * listed under Demands. list prints nodes, jobs, actors or placement groups as a table
 * or, with --format json, as a JSON array with Ray's field names (those of `ray list`).
 *
 * Main thread only.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "autoscaler.pb-c.h"
#include "cli_int.h"
#include "gcs.pb-c.h"
#include "gcs_service.pb-c.h"
#include "gcs_state_json.h"
#include "rc_alloc.h"
#include "rc_buf.h"
#include "rc_ids.h"
#include "rc_map.h"
#include "sched_proto.h"

typedef struct cli__usage {
    char *name;
    double used, total;
} cli__usage;

static int cli__hidden_resource(const char *name)
{
    return !strncmp(name, "node:", 5) || !strncmp(name, "accelerator_type:", 17) || sched_bundle_name_reserved(name);
}

static int cli__is_bytes(const char *name)
{
    return !strcmp(name, "memory") || !strcmp(name, "object_store_memory");
}

/* CPU, GPU, custom resources by name, then memory and object_store_memory. */
static int cli__rank(const char *name)
{
    if (!strcmp(name, "CPU"))
        return 0;
    if (!strcmp(name, "GPU"))
        return 1;
    if (!strcmp(name, "memory"))
        return 3;
    if (!strcmp(name, "object_store_memory"))
        return 4;
    return 2;
}

static int cli__by_rank(const void *a, const void *b)
{
    const cli__usage *x = a, *y = b;
    int rx = cli__rank(x->name), ry = cli__rank(y->name);
    return rx != ry ? rx - ry : strcmp(x->name, y->name);
}

static double cli__map_get(Ray__Rpc__ResourcesData__ResourcesAvailableEntry **entries, size_t n,
                           const char *name, int *found)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(entries[i]->key, name)) {
            *found = 1;
            return entries[i]->value;
        }
    *found = 0;
    return 0;
}

static void cli__format_amount(const char *name, double v, char *out, size_t len)
{
    if (cli__is_bytes(name))
        cli_format_bytes(v, out, len);
    else
        snprintf(out, len, "%.1f", v);
}

static void cli__print_shape(const Ray__Rpc__ResourceDemand *d)
{
    printf(" {");
    for (size_t i = 0; i < d->n_shape; i++)
        printf("%s'%s': %g", i ? ", " : "", d->shape[i]->key, d->shape[i]->value);
    printf("}");
    for (size_t i = 0; i < d->n_label_selectors; i++) {
        const Ray__Rpc__LabelSelector *ls = d->label_selectors[i];
        printf(" labels{");
        for (size_t j = 0; j < ls->n_label_constraints; j++) {
            const Ray__Rpc__LabelSelectorConstraint *c = ls->label_constraints[j];
            printf("%s%s %s (", j ? ", " : "", c->label_key,
                   c->operator_ == RAY__RPC__LABEL_SELECTOR_OPERATOR__LABEL_OPERATOR_NOT_IN ? "not in" : "in");
            for (size_t k = 0; k < c->n_label_values; k++)
                printf("%s%s", k ? "," : "", c->label_values[k]);
            printf(")");
        }
        printf("}");
    }
}

/* A resource amount as Python prints a float ("1.0", "0.5"), for Ray's demand lines. */
static void cli__py_float(double v, char *out, size_t len)
{
    snprintf(out, len, "%.15g", v);
    if (!strpbrk(out, ".eEn"))
        strncat(out, ".0", len - strlen(out) - 1);
}

/* Ray's text of a group's bundles: identical bundles counted, in first-seen order, e.g.
 * "{'CPU': 1.0} * 4" or "{'CPU': 1.0, 'GPU': 1.0} * 2, {'CPU': 2.0} * 1". */
static void cli__bundles_text(const Ray__Rpc__PlacementGroupTableData *pg, rc_buf *out)
{
    size_t n = pg->n_bundles;
    char **shapes = rc_calloc(n ? n : 1, sizeof(*shapes));
    size_t *counts = rc_calloc(n ? n : 1, sizeof(*counts));
    size_t distinct = 0;
    for (size_t i = 0; i < n; i++) {
        const Ray__Rpc__Bundle *b = pg->bundles[i];
        rc_buf shape = RC_BUF_INIT;
        rc_buf_putc(&shape, '{');
        for (size_t k = 0; k < b->n_unit_resources; k++) {
            char amount[64];
            cli__py_float(b->unit_resources[k]->value, amount, sizeof(amount));
            rc_buf_printf(&shape, "%s'%s': %s", k ? ", " : "", b->unit_resources[k]->key, amount);
        }
        rc_buf_putc(&shape, '}');
        size_t j = 0;
        while (j < distinct && strcmp(shapes[j], rc_buf_cstr(&shape)))
            j++;
        if (j == distinct)
            shapes[distinct++] = rc_buf_detach(&shape);
        else
            rc_buf_free(&shape);
        counts[j]++;
    }
    for (size_t j = 0; j < distinct; j++) {
        rc_buf_printf(out, "%s%s * %zu", j ? ", " : "", shapes[j], counts[j]);
        rc_free(shapes[j]);
    }
    rc_free(counts);
    rc_free(shapes);
}

static const char *cli__strategy_name(int strategy)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(&ray__rpc__placement_strategy__descriptor,
                                                                      strategy);
    return v ? v->name : "?";
}

/* Why the GCS can never place group id, as GetPlacementGroup's status message says (a new
 * string, "" when it did not say), freed by the caller. */
static char *cli__pg_why(cli_conn *c, const ProtobufCBinaryData *id)
{
    Ray__Rpc__GetPlacementGroupRequest req = RAY__RPC__GET_PLACEMENT_GROUP_REQUEST__INIT;
    req.placement_group_id = *id;
    ProtobufCMessage *reply = NULL;
    char err[64];
    if (rpc_client_call_sync(gcs_client_rpc(c->gcs), &ray__rpc__placement_group_info_gcs_service__descriptor,
                             "GetPlacementGroup", &req.base, 10000, &reply, err, sizeof(err)) != GRPC_STATUS_OK)
        return rc_strdup("");
    const char *message = "";
    gcs_reply_status(reply, &message);
    char *why = rc_strdup(message ? message : "");
    rpc_msg_free(reply);
    return why;
}

/* Prints the pending placement groups of load under Demands, Ray's way:
 *  {'CPU': 1.0} * 4 (STRICT_SPREAD): 1+ pending placement groups
 * Returns the number of lines printed. */
static size_t cli__print_pg_demand(cli_conn *c, const Ray__Rpc__PlacementGroupLoad *load)
{
    if (!load || !load->n_placement_group_data)
        return 0;
    size_t n = load->n_placement_group_data, distinct = 0;
    char **texts = rc_calloc(n, sizeof(*texts));
    char **whys = rc_calloc(n, sizeof(*whys));
    size_t *counts = rc_calloc(n, sizeof(*counts));
    for (size_t i = 0; i < n; i++) {
        const Ray__Rpc__PlacementGroupTableData *pg = load->placement_group_data[i];
        rc_buf text = RC_BUF_INIT;
        cli__bundles_text(pg, &text);
        rc_buf_printf(&text, " (%s)", cli__strategy_name(pg->strategy));
        size_t j = 0;
        while (j < distinct && strcmp(texts[j], rc_buf_cstr(&text)))
            j++;
        if (j == distinct) {
            texts[distinct++] = rc_buf_detach(&text);
            if (pg->stats &&
                pg->stats->scheduling_state == RAY__RPC__PLACEMENT_GROUP_STATS__SCHEDULING_STATE__INFEASIBLE)
                whys[j] = cli__pg_why(c, &pg->placement_group_id);
        } else {
            rc_buf_free(&text);
        }
        counts[j]++;
    }
    for (size_t j = 0; j < distinct; j++) {
        printf(" %s: %zu+ pending placement groups", texts[j], counts[j]);
        if (whys[j] && whys[j][0])
            printf(" (never: %s)", whys[j]);
        printf("\n");
        rc_free(texts[j]);
        rc_free(whys[j]);
    }
    rc_free(counts);
    rc_free(whys);
    rc_free(texts);
    return distinct;
}

/* ---- what the autoscaler reported ------------------------------------------------------- */

/* The autoscaler's last report (GetClusterStatus), or NULL when there is none or the GCS
 * cannot say; free with rpc_msg_free. */
static ProtobufCMessage *cli__autoscaling(cli_conn *c, const Ray__Rpc__Autoscaler__AutoscalingState **out)
{
    Ray__Rpc__Autoscaler__GetClusterStatusRequest req = RAY__RPC__AUTOSCALER__GET_CLUSTER_STATUS_REQUEST__INIT;
    ProtobufCMessage *reply = NULL;
    char err[64];
    *out = NULL;
    if (rpc_client_call_sync(gcs_client_rpc(c->gcs), &ray__rpc__autoscaler__autoscaler_state_service__descriptor,
                             "GetClusterStatus", &req.base, 10000, &reply, err, sizeof(err)) != GRPC_STATUS_OK)
        return NULL;
    *out = ((Ray__Rpc__Autoscaler__GetClusterStatusReply *)reply)->autoscaling_state;
    return reply;
}

static const char *cli__or(const char *s, const char *dflt)
{
    return s && s[0] ? s : dflt;
}

/* Ray's pending lines: " <node type>, <n> launching" per node type, then
 * " <instance id>: <node type>, <details>" per instance on its way. */
static void cli__print_pending(const Ray__Rpc__Autoscaler__AutoscalingState *as)
{
    size_t shown = 0;
    for (size_t i = 0; as && i < as->n_pending_instance_requests; i++) {
        const Ray__Rpc__Autoscaler__PendingInstanceRequest *p = as->pending_instance_requests[i];
        const char *type = cli__or(p->ray_node_type_name, cli__or(p->instance_type_name, "unknown"));
        int seen = 0;
        for (size_t k = 0; k < i && !seen; k++)
            seen = !strcmp(type, cli__or(as->pending_instance_requests[k]->ray_node_type_name,
                                         cli__or(as->pending_instance_requests[k]->instance_type_name, "unknown")));
        if (seen)
            continue;
        long long count = 0;
        for (size_t k = i; k < as->n_pending_instance_requests; k++)
            if (!strcmp(type, cli__or(as->pending_instance_requests[k]->ray_node_type_name,
                                      cli__or(as->pending_instance_requests[k]->instance_type_name, "unknown"))))
                count += as->pending_instance_requests[k]->count;
        printf(" %s, %lld launching\n", type, count);
        shown++;
    }
    for (size_t i = 0; as && i < as->n_pending_instances; i++) {
        const Ray__Rpc__Autoscaler__PendingInstance *p = as->pending_instances[i];
        char details[256];
        snprintf(details, sizeof(details), "%s", cli__or(p->details, "pending"));
        for (char *q = details; *q; q++)
            if (*q >= 'A' && *q <= 'Z')
                *q = (char)(*q - 'A' + 'a');
        printf(" %s: %s, %s\n", cli__or(p->instance_id, cli__or(p->ip_address, "?")),
               cli__or(p->ray_node_type_name, cli__or(p->instance_type_name, "unknown")), details);
        shown++;
    }
    if (!shown)
        printf(" (no pending nodes)\n");
}

/* Ray's failed launch lines, newest first, with the reason:
 * " <node type>: LaunchFailed (latest_attempt: HH:MM:SS) - <reason>". */
static size_t cli__print_failed_launches(const Ray__Rpc__Autoscaler__AutoscalingState *as)
{
    size_t n = as ? as->n_failed_instance_requests : 0;
    const Ray__Rpc__Autoscaler__FailedInstanceRequest **sorted = rc_calloc(n ? n : 1, sizeof(*sorted));
    for (size_t i = 0; i < n; i++) {
        size_t k = i;
        int64_t ts = as->failed_instance_requests[i]->failed_ts;
        while (k > 0 && sorted[k - 1]->failed_ts < ts) {
            sorted[k] = sorted[k - 1];
            k--;
        }
        sorted[k] = as->failed_instance_requests[i];
    }
    for (size_t i = 0; i < n && i < 20; i++) {
        const Ray__Rpc__Autoscaler__FailedInstanceRequest *f = sorted[i];
        time_t at = (time_t)(f->failed_ts ? f->failed_ts : f->start_ts);
        struct tm tm;
        localtime_r(&at, &tm);
        printf(" %s: LaunchFailed (latest_attempt: %02d:%02d:%02d) - %s\n",
               cli__or(f->ray_node_type_name, cli__or(f->instance_type_name, "unknown")), tm.tm_hour, tm.tm_min,
               tm.tm_sec, cli__or(f->reason, "no reason given"));
    }
    rc_free(sorted);
    return n;
}

static void cli__print_request(const Ray__Rpc__Autoscaler__ResourceRequest *r)
{
    Ray__Rpc__ResourceDemand d = RAY__RPC__RESOURCE_DEMAND__INIT;
    d.n_shape = r->n_resources_bundle;
    d.shape = (Ray__Rpc__ResourceDemand__ShapeEntry **)r->resources_bundle; /* same {key; value} layout */
    d.n_label_selectors = r->n_label_selectors;
    d.label_selectors = r->label_selectors;
    cli__print_shape(&d);
}

/* The requests the autoscaler found no way to serve, under Demands. */
static size_t cli__print_infeasible(const Ray__Rpc__Autoscaler__AutoscalingState *as)
{
    size_t shown = 0;
    for (size_t i = 0; as && i < as->n_infeasible_resource_requests; i++, shown++) {
        cli__print_request(as->infeasible_resource_requests[i]);
        /* rayc's market says why (budget, no offer fits, ...) beside Ray's fields. */
        const char *why = i < as->n_rayc_infeasible_reasons ? as->rayc_infeasible_reasons[i] : NULL;
        printf(": infeasible for the autoscaler%s%s\n", why && why[0] ? ": " : "", why ? why : "");
    }
    for (size_t i = 0; as && i < as->n_infeasible_gang_resource_requests; i++, shown++) {
        const Ray__Rpc__Autoscaler__GangResourceRequest *g = as->infeasible_gang_resource_requests[i];
        printf(" [");
        for (size_t k = 0; k < g->n_requests; k++) {
            if (k)
                printf(",");
            cli__print_request(g->requests[k]);
        }
        printf(" ] (gang): infeasible for the autoscaler%s%s\n", g->details && g->details[0] ? ": " : "",
               g->details ? g->details : "");
    }
    return shown;
}

/* One job's use of the cluster: its raylets' reports summed. */
typedef struct cli__job_use {
    const Ray__Rpc__JobTableData *job;
    double cpus, share;
    uint64_t leases, queued;
} cli__job_use;

/* "Jobs": each running job's priority and weight (from its record) and what it holds and
 * waits for now (from the raylets' reports: ResourcesData.rayc_job_usage), with its part
 * of the CPUs all jobs hold. */
static void cli__print_jobs(cli_conn *c, const Ray__Rpc__ResourceUsageBatchData *usage)
{
    printf("\nJobs (fair share)\n---------------------------------------------------------------\n");
    ProtobufCMessage *msg;
    Ray__Rpc__GetAllJobInfoRequest req = RAY__RPC__GET_ALL_JOB_INFO_REQUEST__INIT;
    if (cli_call(c, &ray__rpc__job_info_gcs_service__descriptor, "GetAllJobInfo", &req.base, &msg)) {
        printf(" (the job table could not be read)\n");
        return;
    }
    const Ray__Rpc__GetAllJobInfoReply *r = (const void *)msg;
    cli__job_use *use = rc_calloc(r->n_job_info_list + 1, sizeof(*use));
    size_t n = 0;
    double all_cpus = 0;
    for (size_t i = 0; i < r->n_job_info_list; i++) {
        const Ray__Rpc__JobTableData *j = r->job_info_list[i];
        if (j->is_dead)
            continue;
        cli__job_use *u = &use[n++];
        u->job = j;
        for (size_t k = 0; usage && k < usage->n_batch; k++) {
            const Ray__Rpc__ResourcesData *d = usage->batch[k];
            for (size_t m = 0; m < d->n_rayc_job_usage; m++) {
                const Ray__Rpc__RaycJobUsage *ju = d->rayc_job_usage[m];
                if (ju->job_id.len != j->job_id.len || memcmp(ju->job_id.data, j->job_id.data, ju->job_id.len))
                    continue;
                u->cpus += ju->cpus;
                u->share += ju->share;
                u->leases += ju->leases;
                u->queued += ju->queued;
            }
        }
        all_cpus += u->cpus;
    }
    char hex[RC_ID_HEX_MAX];
    for (size_t i = 0; i < n; i++) {
        const cli__job_use *u = &use[i];
        const Ray__Rpc__JobConfig *cfg = u->job->config;
        double weight = cfg && cfg->rayc_weight > 0 ? cfg->rayc_weight : 1;
        rc_id_hex(u->job->job_id.data, u->job->job_id.len > 4 ? 4 : u->job->job_id.len, hex);
        printf(" job %s: priority %d, weight %g: %g CPU held", hex, cfg ? (int)cfg->rayc_priority : 0, weight, u->cpus);
        if (all_cpus > 0)
            printf(" (%.0f%% of the CPUs jobs hold)", 100.0 * u->cpus / all_cpus);
        printf(", %llu leases, %llu lease requests queued\n", (unsigned long long)u->leases,
               (unsigned long long)u->queued);
    }
    if (!n)
        printf(" (no running jobs)\n");
    rc_free(use);
    rpc_msg_free(msg);
}

static const cli_opt cli__status_opts[] = {CLI_OPT_ADDRESS};
static const cli_spec cli__status_spec = {
    "rayc status", NULL,
    "Prints the cluster's nodes, its resource usage and the demand that waits (tasks, actors,\n"
    "placement groups), as 'ray status' does.",
    NULL, CLI_SPEC_OPTS(cli__status_opts), 0, 0,
};

int cli_cmd_status(int argc, char **argv)
{
    cli_args a;
    int rc = cli_parse(&cli__status_spec, argc, argv, &a);
    if (rc != CLI_OK)
        return CLI_PARSED_EXIT(rc);
    cli_conn c;
    rc = cli_connect(&c, cli_arg(&a, "--address"));
    if (rc != CLI_OK)
        return rc;
    ProtobufCMessage *nodes_msg = NULL, *usage_msg = NULL;
    Ray__Rpc__GetAllNodeInfoRequest nreq = RAY__RPC__GET_ALL_NODE_INFO_REQUEST__INIT;
    Ray__Rpc__GetAllResourceUsageRequest ureq = RAY__RPC__GET_ALL_RESOURCE_USAGE_REQUEST__INIT;
    if (cli_call(&c, &ray__rpc__node_info_gcs_service__descriptor, "GetAllNodeInfo", &nreq.base, &nodes_msg) ||
        cli_call(&c, &ray__rpc__node_resource_info_gcs_service__descriptor, "GetAllResourceUsage", &ureq.base,
                 &usage_msg)) {
        rpc_msg_free(nodes_msg);
        cli_disconnect(&c);
        return CLI_FAIL;
    }
    const Ray__Rpc__GetAllNodeInfoReply *nodes = (const void *)nodes_msg;
    const Ray__Rpc__ResourceUsageBatchData *usage = ((Ray__Rpc__GetAllResourceUsageReply *)usage_msg)->resource_usage_data;

    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    printf("======== Cluster status: %04d-%02d-%02d %02d:%02d:%02d ========\n", tm.tm_year + 1900, tm.tm_mon + 1,
           tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    printf("Node status\n---------------------------------------------------------------\nActive:\n");
    size_t alive = 0, failed = 0;
    char hex[RC_ID_HEX_MAX];
    for (size_t i = 0; i < nodes->n_node_info_list; i++) {
        const Ray__Rpc__GcsNodeInfo *n = nodes->node_info_list[i];
        if (n->state != RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__ALIVE)
            continue;
        alive++;
        const char *accel = "";
        for (size_t j = 0; j < n->n_labels; j++)
            if (!strcmp(n->labels[j]->key, "ray.io/accelerator-type"))
                accel = n->labels[j]->value;
        printf(" 1 node_%s (%s:%d%s%s%s)\n", rc_id_hex(n->node_id.data, n->node_id.len > 28 ? 28 : n->node_id.len, hex),
               n->node_manager_address, n->node_manager_port, n->is_head_node ? ", head" : "", accel[0] ? ", " : "",
               accel);
    }
    if (!alive)
        printf(" (no active nodes)\n");
    const Ray__Rpc__Autoscaler__AutoscalingState *autoscaling = NULL;
    ProtobufCMessage *status_msg = cli__autoscaling(&c, &autoscaling);
    printf("Pending:\n");
    cli__print_pending(autoscaling);
    printf("Recent failures:\n");
    failed += cli__print_failed_launches(autoscaling);
    for (size_t i = 0; i < nodes->n_node_info_list; i++) {
        const Ray__Rpc__GcsNodeInfo *n = nodes->node_info_list[i];
        if (n->state != RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__DEAD || !n->death_info ||
            n->death_info->reason != RAY__RPC__NODE_DEATH_INFO__REASON__UNEXPECTED_TERMINATION)
            continue;
        failed++;
        printf(" node_%s: %s (ip: %s)\n", rc_id_hex(n->node_id.data, n->node_id.len > 28 ? 28 : n->node_id.len, hex),
               n->death_info->reason_message, n->node_manager_address);
    }
    if (!failed)
        printf(" (no failures)\n");

    /* Resources: sum totals and used (total - available) over the live nodes. */
    cli__usage sums[256];
    size_t n_sums = 0;
    for (size_t i = 0; usage && i < usage->n_batch; i++) {
        const Ray__Rpc__ResourcesData *d = usage->batch[i];
        for (size_t j = 0; j < d->n_resources_total; j++) {
            const char *name = d->resources_total[j]->key;
            if (cli__hidden_resource(name))
                continue;
            int found;
            double avail = cli__map_get(d->resources_available, d->n_resources_available, name, &found);
            double total = d->resources_total[j]->value;
            size_t k = 0;
            while (k < n_sums && strcmp(sums[k].name, name))
                k++;
            if (k == n_sums) {
                if (n_sums == sizeof(sums) / sizeof(sums[0]))
                    continue;
                sums[n_sums++] = (cli__usage){(char *)name, 0, 0};
            }
            sums[k].total += total;
            sums[k].used += found ? total - avail : 0;
        }
    }
    qsort(sums, n_sums, sizeof(sums[0]), cli__by_rank);
    printf("\nResources\n---------------------------------------------------------------\nUsage:\n");
    for (size_t k = 0; k < n_sums; k++) {
        char used[32], total[32];
        cli__format_amount(sums[k].name, sums[k].used, used, sizeof(used));
        cli__format_amount(sums[k].name, sums[k].total, total, sizeof(total));
        printf(" %s/%s %s\n", used, total, sums[k].name);
    }
    if (!n_sums)
        printf(" (no resources)\n");
    printf("\nDemands:\n");
    const Ray__Rpc__ResourceLoad *load = usage ? usage->resource_load_by_shape : NULL;
    size_t shown = 0;
    for (size_t i = 0; load && i < load->n_resource_demands; i++) {
        const Ray__Rpc__ResourceDemand *d = load->resource_demands[i];
        uint64_t pending = d->num_ready_requests_queued + d->num_infeasible_requests_queued + (uint64_t)d->backlog_size;
        if (!pending)
            continue;
        shown++;
        cli__print_shape(d);
        printf(": %llu+ pending tasks/actors", (unsigned long long)pending);
        if (d->num_infeasible_requests_queued)
            printf(" (%llu infeasible: no node can ever run them)", (unsigned long long)d->num_infeasible_requests_queued);
        printf("\n");
    }
    shown += cli__print_pg_demand(&c, usage ? usage->placement_group_load : NULL);
    shown += cli__print_infeasible(autoscaling);
    if (!shown)
        printf(" (no resource demands)\n");
    cli__print_jobs(&c, usage);
    rpc_msg_free(status_msg);
    rpc_msg_free(nodes_msg);
    rpc_msg_free(usage_msg);
    cli_disconnect(&c);
    return CLI_OK;
}

/* ---- list --------------------------------------------------------------------------- */

static const char *cli__node_state(const Ray__Rpc__GcsNodeInfo *n)
{
    return n->state == RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__ALIVE ? "ALIVE" : "DEAD";
}

static int cli__list_nodes(cli_conn *c, int json)
{
    ProtobufCMessage *msg;
    Ray__Rpc__GetAllNodeInfoRequest req = RAY__RPC__GET_ALL_NODE_INFO_REQUEST__INIT;
    if (cli_call(c, &ray__rpc__node_info_gcs_service__descriptor, "GetAllNodeInfo", &req.base, &msg))
        return CLI_FAIL;
    const Ray__Rpc__GetAllNodeInfoReply *r = (const void *)msg;
    if (json) {
        rc_buf b = RC_BUF_INIT;
        rc_buf_putc(&b, '[');
        for (size_t i = 0; i < r->n_node_info_list; i++) {
            rc_buf_puts(&b, i ? ",\n " : "");
            gcs_state_json_node(&b, r->node_info_list[i]);
        }
        rc_buf_puts(&b, "]\n");
        fputs(rc_buf_cstr(&b), stdout);
        rc_buf_free(&b);
    } else {
        printf("%-58s %-6s %-22s %-5s %s\n", "NODE_ID", "STATE", "ADDRESS", "HEAD", "RESOURCES");
        char hex[RC_ID_HEX_MAX];
        for (size_t i = 0; i < r->n_node_info_list; i++) {
            const Ray__Rpc__GcsNodeInfo *n = r->node_info_list[i];
            char addr[300];
            snprintf(addr, sizeof(addr), "%s:%d", n->node_manager_address, n->node_manager_port);
            printf("%-58s %-6s %-22s %-5s", rc_id_hex(n->node_id.data, n->node_id.len > 28 ? 28 : n->node_id.len, hex),
                   cli__node_state(n), addr, n->is_head_node ? "yes" : "no");
            for (size_t j = 0; j < n->n_resources_total; j++) {
                const char *name = n->resources_total[j]->key;
                if (cli__hidden_resource(name))
                    continue;
                char amount[32];
                cli__format_amount(name, n->resources_total[j]->value, amount, sizeof(amount));
                printf(" %s=%s", name, amount);
            }
            if (n->death_info && n->death_info->reason_message && n->death_info->reason_message[0])
                printf("  [%s]", n->death_info->reason_message);
            printf("\n");
        }
    }
    rpc_msg_free(msg);
    return CLI_OK;
}

static int cli__list_jobs(cli_conn *c, int json)
{
    ProtobufCMessage *msg;
    Ray__Rpc__GetAllJobInfoRequest req = RAY__RPC__GET_ALL_JOB_INFO_REQUEST__INIT;
    if (cli_call(c, &ray__rpc__job_info_gcs_service__descriptor, "GetAllJobInfo", &req.base, &msg))
        return CLI_FAIL;
    const Ray__Rpc__GetAllJobInfoReply *r = (const void *)msg;
    char hex[RC_ID_HEX_MAX];
    rc_buf b = RC_BUF_INIT;
    if (json)
        rc_buf_putc(&b, '[');
    else
        printf("%-10s %-10s %-16s %-8s %s\n", "JOB_ID", "STATUS", "DRIVER_IP", "PID", "ENTRYPOINT");
    for (size_t i = 0; i < r->n_job_info_list; i++) {
        const Ray__Rpc__JobTableData *j = r->job_info_list[i];
        rc_id_hex(j->job_id.data, j->job_id.len > 4 ? 4 : j->job_id.len, hex);
        const char *status = j->is_dead ? "FINISHED" : "RUNNING";
        if (!json) {
            printf("%-10s %-10s %-16s %-8lld %s\n", hex, status, j->driver_ip_address, (long long)j->driver_pid,
                   j->entrypoint);
            continue;
        }
        rc_buf_puts(&b, i ? ",\n " : "");
        gcs_state_json_job(&b, j);
    }
    if (json) {
        rc_buf_puts(&b, "]\n");
        fputs(rc_buf_cstr(&b), stdout);
    }
    rc_buf_free(&b);
    rpc_msg_free(msg);
    return CLI_OK;
}

static const char *cli__enum_name(const ProtobufCEnumDescriptor *d, int value)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(d, value);
    return v ? v->name : "UNKNOWN";
}

static int cli__list_actors(cli_conn *c, int json)
{
    ProtobufCMessage *msg;
    Ray__Rpc__GetAllActorInfoRequest req = RAY__RPC__GET_ALL_ACTOR_INFO_REQUEST__INIT;
    req.show_dead_jobs = 1;
    if (cli_call(c, &ray__rpc__actor_info_gcs_service__descriptor, "GetAllActorInfo", &req.base, &msg))
        return CLI_FAIL;
    const Ray__Rpc__GetAllActorInfoReply *r = (const void *)msg;
    rc_buf b = RC_BUF_INIT;
    if (json) {
        rc_buf_putc(&b, '[');
        for (size_t i = 0; i < r->n_actor_table_data; i++) {
            rc_buf_puts(&b, i ? ",\n " : "");
            gcs_state_json_actor(&b, r->actor_table_data[i]);
        }
        rc_buf_puts(&b, "]\n");
        fputs(rc_buf_cstr(&b), stdout);
        rc_buf_free(&b);
        rpc_msg_free(msg);
        return CLI_OK;
    }
    printf("%-32s %-20s %-16s %-16s %-12s %-16s %-8s %s\n", "ACTOR_ID", "CLASS_NAME", "STATE", "NAME", "NAMESPACE",
           "NODE_ID", "PID", "RESTARTS");
    char id[RC_ID_HEX_MAX], node[RC_ID_HEX_MAX];
    for (size_t i = 0; i < r->n_actor_table_data; i++) {
        const Ray__Rpc__ActorTableData *a = r->actor_table_data[i];
        rc_id_hex(a->actor_id.data, a->actor_id.len > 16 ? 16 : a->actor_id.len, id);
        node[0] = '\0';
        if (a->_node_id_case && a->node_id.len)
            rc_id_hex(a->node_id.data, a->node_id.len > 8 ? 8 : a->node_id.len, node);
        char restarts[48];
        if (a->max_restarts < 0)
            snprintf(restarts, sizeof(restarts), "%lld/inf", (long long)a->num_restarts);
        else
            snprintf(restarts, sizeof(restarts), "%lld/%lld", (long long)a->num_restarts, (long long)a->max_restarts);
        printf("%-32s %-20s %-16s %-16s %-12s %-16s %-8u %s", id, a->class_name,
               cli__enum_name(&ray__rpc__actor_table_data__actor_state__descriptor, a->state),
               a->name[0] ? a->name : "-", a->ray_namespace[0] ? a->ray_namespace : "-", node[0] ? node : "-", a->pid,
               restarts);
        const char *why = gcs_actor_death_text(a->death_cause);
        if (why && why[0])
            printf("  [%s]", why);
        printf("\n");
    }
    rpc_msg_free(msg);
    return CLI_OK;
}

static int cli__list_pgs(cli_conn *c, int json)
{
    ProtobufCMessage *msg;
    Ray__Rpc__GetAllPlacementGroupRequest req = RAY__RPC__GET_ALL_PLACEMENT_GROUP_REQUEST__INIT;
    if (cli_call(c, &ray__rpc__placement_group_info_gcs_service__descriptor, "GetAllPlacementGroup", &req.base, &msg))
        return CLI_FAIL;
    const Ray__Rpc__GetAllPlacementGroupReply *r = (const void *)msg;
    if (json) {
        rc_buf b = RC_BUF_INIT;
        rc_buf_putc(&b, '[');
        for (size_t i = 0; i < r->n_placement_group_table_data; i++) {
            rc_buf_puts(&b, i ? ",\n " : "");
            const Ray__Rpc__PlacementGroupTableData *pg = r->placement_group_table_data[i];
            char *why = pg->stats && pg->stats->scheduling_state ==
                                         RAY__RPC__PLACEMENT_GROUP_STATS__SCHEDULING_STATE__INFEASIBLE
                            ? cli__pg_why(c, &pg->placement_group_id)
                            : NULL;
            gcs_state_json_pg(&b, pg, why);
            rc_free(why);
        }
        rc_buf_puts(&b, "]\n");
        fputs(rc_buf_cstr(&b), stdout);
        rc_buf_free(&b);
        rpc_msg_free(msg);
        return CLI_OK;
    }
    printf("%-36s %-16s %-12s %-13s %s\n", "PLACEMENT_GROUP_ID", "NAME", "STATE", "STRATEGY", "BUNDLES");
    char id[RC_ID_HEX_MAX], node[RC_ID_HEX_MAX];
    for (size_t i = 0; i < r->n_placement_group_table_data; i++) {
        const Ray__Rpc__PlacementGroupTableData *pg = r->placement_group_table_data[i];
        rc_id_hex(pg->placement_group_id.data, pg->placement_group_id.len > 18 ? 18 : pg->placement_group_id.len, id);
        printf("%-36s %-16s %-12s %-13s", id, pg->name[0] ? pg->name : "-",
               cli__enum_name(&ray__rpc__placement_group_table_data__placement_group_state__descriptor, pg->state),
               cli__strategy_name(pg->strategy));
        for (size_t k = 0; k < pg->n_bundles; k++) {
            const Ray__Rpc__Bundle *bd = pg->bundles[k];
            printf(" {");
            for (size_t j = 0; j < bd->n_unit_resources; j++)
                printf("%s%s: %g", j ? ", " : "", bd->unit_resources[j]->key, bd->unit_resources[j]->value);
            if (bd->node_id.len)
                printf("}@%s", rc_id_hex(bd->node_id.data, bd->node_id.len > 4 ? 4 : bd->node_id.len, node));
            else
                printf("}");
        }
        if (pg->stats && pg->stats->scheduling_state == RAY__RPC__PLACEMENT_GROUP_STATS__SCHEDULING_STATE__INFEASIBLE) {
            char *why = cli__pg_why(c, &pg->placement_group_id);
            printf("  [never: %s]", why);
            rc_free(why);
        }
        printf("\n");
    }
    rpc_msg_free(msg);
    return CLI_OK;
}

static const cli_opt cli__list_opts[] = {
    CLI_OPT_FORMAT,
    {"--filter", NULL, "KEY=VALUE", NULL,
     "tasks: KEY=VALUE or KEY!=VALUE; KEY: state, name, job_id, task_id, actor_id; repeatable (all must "
     "hold)", NULL},
    {"--limit", NULL, "N", "100", "tasks: at most N rows", NULL},
    CLI_OPT_ADDRESS,
};
static const cli_spec cli__list_spec = {
    "rayc list", "nodes|jobs|actors|placement-groups|tasks",
    "Lists the cluster's nodes, jobs, actors, placement groups or recent task attempts (Ray's\n"
    "'ray list'; tasks come from the GCS's task events, newest first).",
    NULL, CLI_SPEC_OPTS(cli__list_opts), 1, 1,
};

int cli_cmd_list(int argc, char **argv)
{
    cli_args a;
    int rc = cli_parse(&cli__list_spec, argc, argv, &a);
    if (rc != CLI_OK)
        return CLI_PARSED_EXIT(rc);
    const char *what = a.pos[0];
    if (!strcmp(what, "tasks"))
        return cli_list_tasks(&a);
    if (strcmp(what, "nodes") && strcmp(what, "jobs") && strcmp(what, "actors") && strcmp(what, "placement-groups"))
        return cli_usage_error(&cli__list_spec, "'%s' is not one of nodes, jobs, actors, placement-groups, tasks", what);
    int json;
    if (cli_arg_format(&a, &json) != CLI_OK)
        return CLI_USAGE;
    cli_conn c;
    rc = cli_connect(&c, cli_arg(&a, "--address"));
    if (rc != CLI_OK)
        return rc;
    if (!strcmp(what, "nodes"))
        rc = cli__list_nodes(&c, json);
    else if (!strcmp(what, "jobs"))
        rc = cli__list_jobs(&c, json);
    else if (!strcmp(what, "actors"))
        rc = cli__list_actors(&c, json);
    else
        rc = cli__list_pgs(&c, json);
    cli_disconnect(&c);
    return rc;
}
