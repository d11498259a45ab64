/*
 * rayc status and rayc list.
 *
 * status prints Ray's layout: "Node status" (active nodes, recently failed nodes),
 * "Resources" (used/total per resource over the live nodes; implicit node: and
 * accelerator_type: resources are left out, as Ray does) and "Demands" (pending and
 * infeasible requests by shape). list prints nodes or jobs as a table or, with
 * --format json, as a JSON array with Ray's field names.
 *
 * Main thread only.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_int.h"
#include "gcs.pb-c.h"
#include "rc_alloc.h"
#include "rc_buf.h"
#include "rc_ids.h"
#include "rc_map.h"

typedef struct cli__usage {
    char *name;
    double used, total;
} cli__usage;

static int cli__hidden_resource(const char *name)
{
    return !strncmp(name, "node:", 5) || !strncmp(name, "accelerator_type:", 17) || strstr(name, "_group_");
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

int cli_cmd_status(int argc, char **argv)
{
    const char *address = NULL;
    argc = cli_take_address(argc, argv, &address);
    if (argc != 0) {
        fprintf(stderr, argc < 0 ? "" : "rayc status: unexpected argument '%s'\n", argc > 0 ? argv[0] : "");
        return CLI_USAGE;
    }
    cli_conn c;
    int rc = cli_connect(&c, address);
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
    printf("Pending:\n (no pending nodes)\nRecent failures:\n");
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
    if (!shown)
        printf(" (no resource demands)\n");
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

static void cli__json_kv_str(rc_buf *b, const char *key, const char *value, int *first)
{
    rc_buf_printf(b, "%s\"%s\": ", *first ? "" : ", ", key);
    rc_buf_json_str(b, value ? value : "", value ? strlen(value) : 0);
    *first = 0;
}

static void cli__node_json(rc_buf *b, const Ray__Rpc__GcsNodeInfo *n)
{
    char hex[RC_ID_HEX_MAX];
    int first = 1;
    rc_buf_putc(b, '{');
    cli__json_kv_str(b, "node_id", rc_id_hex(n->node_id.data, n->node_id.len > 28 ? 28 : n->node_id.len, hex), &first);
    cli__json_kv_str(b, "state", cli__node_state(n), &first);
    cli__json_kv_str(b, "node_ip", n->node_manager_address, &first);
    cli__json_kv_str(b, "node_manager_address", n->node_manager_address, &first);
    rc_buf_printf(b, ", \"node_manager_port\": %d", n->node_manager_port);
    cli__json_kv_str(b, "node_manager_hostname", n->node_manager_hostname, &first);
    cli__json_kv_str(b, "node_name", n->node_name, &first);
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
        cli__json_kv_str(b, "reason", v ? v->name : "UNSPECIFIED", &first);
        cli__json_kv_str(b, "reason_message", n->death_info->reason_message, &first);
        rc_buf_putc(b, '}');
    }
    rc_buf_putc(b, '}');
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
            cli__node_json(&b, r->node_info_list[i]);
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
        int first = 1;
        rc_buf_puts(&b, i ? ",\n {" : "{");
        cli__json_kv_str(&b, "job_id", hex, &first);
        cli__json_kv_str(&b, "status", status, &first);
        rc_buf_printf(&b, ", \"is_dead\": %s", j->is_dead ? "true" : "false");
        cli__json_kv_str(&b, "driver_ip_address", j->driver_ip_address, &first);
        rc_buf_printf(&b, ", \"driver_pid\": %lld", (long long)j->driver_pid);
        cli__json_kv_str(&b, "entrypoint", j->entrypoint, &first);
        cli__json_kv_str(&b, "namespace", j->config ? j->config->ray_namespace : "", &first);
        rc_buf_printf(&b, ", \"start_time\": %llu, \"end_time\": %llu}", (unsigned long long)j->start_time,
                      (unsigned long long)j->end_time);
    }
    if (json) {
        rc_buf_puts(&b, "]\n");
        fputs(rc_buf_cstr(&b), stdout);
    }
    rc_buf_free(&b);
    rpc_msg_free(msg);
    return CLI_OK;
}

int cli_cmd_list(int argc, char **argv)
{
    const char *address = NULL, *format = "table";
    argc = cli_take_address(argc, argv, &address);
    if (argc < 0)
        return CLI_USAGE;
    const char *what = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--format") && i + 1 < argc) {
            format = argv[++i];
        } else if (!strncmp(argv[i], "--format=", 9)) {
            format = argv[i] + 9;
        } else if (argv[i][0] != '-' && !what) {
            what = argv[i];
        } else {
            fprintf(stderr, "rayc list: unexpected argument '%s'\n", argv[i]);
            return CLI_USAGE;
        }
    }
    if (!what || (strcmp(what, "nodes") && strcmp(what, "jobs"))) {
        fprintf(stderr, "usage: rayc list nodes|jobs [--format table|json] [--address HOST:PORT]\n");
        return CLI_USAGE;
    }
    if (strcmp(format, "table") && strcmp(format, "json")) {
        fprintf(stderr, "rayc list: --format is table or json, not '%s'\n", format);
        return CLI_USAGE;
    }
    cli_conn c;
    int rc = cli_connect(&c, address);
    if (rc != CLI_OK)
        return rc;
    int json = !strcmp(format, "json");
    rc = !strcmp(what, "nodes") ? cli__list_nodes(&c, json) : cli__list_jobs(&c, json);
    cli_disconnect(&c);
    return rc;
}
