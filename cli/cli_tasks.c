/*
 * Commands over the cluster's task events (TaskInfoGcsService.GetTaskEvents) and tables:
 *
 *   rayc list tasks [--filter KEY=VALUE]... [--limit N] [--format table|json]
 *   rayc summary tasks|actors|objects [--format table|json]
 *   rayc timeline [--output FILE|-]
 *
 * as Ray's `ray list tasks`, `ray summary` and `ray timeline`: list tasks has Ray's columns,
 * summary tasks groups by function or class name with counts per state, timeline writes a
 * Chrome trace (chrome://tracing, ui.perfetto.dev) with one complete ("ph": "X") event per
 * task run: ts and dur in microseconds, pid the node, tid the worker.
 *
 * Main thread only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cli_int.h"
#include "gcs.pb-c.h"
#include "gcs_service.pb-c.h"
#include "gcs_state_json.h"
#include "rc_buf.h"
#include "rc_ids.h"
#include "task_events.pb-c.h"

static const char *cli__enum(const ProtobufCEnumDescriptor *d, int value)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(d, value);
    return v ? v->name : "?";
}

static void cli__hex(const ProtobufCBinaryData *b, char *out)
{
    if (!b || !b->len) {
        out[0] = '\0';
        return;
    }
    rc_id_hex(b->data, b->len > 64 ? 64 : b->len, out);
}

int cli_task_events(cli_conn *c, const Ray__Rpc__GetTaskEventsRequest *req, ProtobufCMessage **reply)
{
    return cli_call(c, &ray__rpc__task_info_gcs_service__descriptor, "GetTaskEvents", &req->base, reply);
}

/* --filter KEY=VALUE (Ray's keys: state, name, job_id, task_id, actor_id; "!=" negates). */
typedef struct cli__filters {
    Ray__Rpc__GetTaskEventsRequest__Filters f;
    Ray__Rpc__GetTaskEventsRequest__Filters__StateFilter state[8];
    Ray__Rpc__GetTaskEventsRequest__Filters__StateFilter *state_p[8];
    Ray__Rpc__GetTaskEventsRequest__Filters__TaskNameFilter name[8];
    Ray__Rpc__GetTaskEventsRequest__Filters__TaskNameFilter *name_p[8];
    Ray__Rpc__GetTaskEventsRequest__Filters__JobIdFilter job[8];
    Ray__Rpc__GetTaskEventsRequest__Filters__JobIdFilter *job_p[8];
    Ray__Rpc__GetTaskEventsRequest__Filters__TaskIdFilter task[8];
    Ray__Rpc__GetTaskEventsRequest__Filters__TaskIdFilter *task_p[8];
    Ray__Rpc__GetTaskEventsRequest__Filters__ActorIdFilter actor[8];
    Ray__Rpc__GetTaskEventsRequest__Filters__ActorIdFilter *actor_p[8];
    uint8_t ids[8 * 5][RC_TASK_ID_SIZE];
    size_t n_ids;
} cli__filters;

static int cli__id_arg(cli__filters *fs, const char *hex, size_t size, ProtobufCBinaryData *out)
{
    if (fs->n_ids >= 40 || strlen(hex) != 2 * size || rc_id_from_hex(hex, fs->ids[fs->n_ids], size) < 0)
        return -1;
    out->data = fs->ids[fs->n_ids++];
    out->len = size;
    return 0;
}

/* One more filter on an ID (kind job, task or actor): fs->kind[i], a <kind>_id_filter
 * holding the ID's bytes in its <kind>_id; to bad_id if the value is not such an ID. */
#define CLI__ID_FILTER(kind, size)                                                  \
    do {                                                                                         \
        size_t i = f->n_##kind##_filters;                                                        \
        ray__rpc__get_task_events_request__filters__##kind##_id_filter__init(&fs->kind[i]);         \
        fs->kind[i].predicate = pred;                                                            \
        if (cli__id_arg(fs, value, size, &fs->kind[i].kind##_id) < 0)                                \
            goto bad_id;                                                                         \
        fs->kind##_p[i] = &fs->kind[i];                                                          \
        f->kind##_filters = fs->kind##_p;                                                        \
        f->n_##kind##_filters++;                                                                 \
    } while (0)

static int cli__add_filter(cli__filters *fs, const char *arg)
{
    const char *eq = strstr(arg, "!=");
    int negate = eq != NULL;
    if (!eq)
        eq = strchr(arg, '=');
    if (!eq || eq == arg) {
        fprintf(stderr, "rayc list tasks: --filter takes KEY=VALUE or KEY!=VALUE, not '%s'\n", arg);
        return -1;
    }
    char key[32];
    snprintf(key, sizeof(key), "%.*s", (int)(eq - arg), arg);
    const char *value = eq + (negate ? 2 : 1);
    Ray__Rpc__FilterPredicate pred = negate ? RAY__RPC__FILTER_PREDICATE__NOT_EQUAL : RAY__RPC__FILTER_PREDICATE__EQUAL;
    Ray__Rpc__GetTaskEventsRequest__Filters *f = &fs->f;
    if (!strcasecmp(key, "state") && f->n_state_filters < 8) {
        size_t i = f->n_state_filters++;
        ray__rpc__get_task_events_request__filters__state_filter__init(&fs->state[i]);
        fs->state[i].predicate = pred;
        fs->state[i].state = (char *)value;
        fs->state_p[i] = &fs->state[i];
        f->state_filters = fs->state_p;
    } else if (!strcasecmp(key, "name") && f->n_task_name_filters < 8) {
        size_t i = f->n_task_name_filters++;
        ray__rpc__get_task_events_request__filters__task_name_filter__init(&fs->name[i]);
        fs->name[i].predicate = pred;
        fs->name[i].task_name = (char *)value;
        fs->name_p[i] = &fs->name[i];
        f->task_name_filters = fs->name_p;
    } else if (!strcasecmp(key, "job_id") && f->n_job_filters < 8) {
        CLI__ID_FILTER(job, RC_JOB_ID_SIZE);
    } else if (!strcasecmp(key, "task_id") && f->n_task_filters < 8) {
        CLI__ID_FILTER(task, RC_TASK_ID_SIZE);
    } else if (!strcasecmp(key, "actor_id") && f->n_actor_filters < 8) {
        CLI__ID_FILTER(actor, RC_ACTOR_ID_SIZE);
    } else {
        fprintf(stderr,
                "rayc list tasks: cannot filter on '%s' (keys: state, name, job_id, task_id, actor_id; at most 8 "
                "of each)\n",
                key);
        return -1;
    }
    return 0;
bad_id:
    fprintf(stderr, "rayc list tasks: '%s' is not a %s (hex digits, as `rayc list tasks` prints them)\n", value, key);
    return -1;
}

static int cli__list_tasks(const cli_args *a)
{
    const cli_args args = *a;
    const char *address = cli_arg(&args, "--address");
    const char *const *filters;
    int n_filters = cli_arg_all(&args, "--filter", &filters);
    long limit;
    int json;
    if (cli_arg_int(&args, "--limit", 1, 1000000000, 100, &limit) != CLI_OK || cli_arg_format(&args, &json) != CLI_OK)
        return CLI_USAGE;
    cli__filters fs;
    memset(&fs, 0, sizeof(fs));
    ray__rpc__get_task_events_request__filters__init(&fs.f);
    for (int i = 0; i < n_filters; i++)
        if (cli__add_filter(&fs, filters[i]) < 0)
            return CLI_USAGE;
    cli_conn c;
    int rc = cli_connect(&c, address);
    if (rc != CLI_OK)
        return rc;
    Ray__Rpc__GetTaskEventsRequest req = RAY__RPC__GET_TASK_EVENTS_REQUEST__INIT;
    req._limit_case = RAY__RPC__GET_TASK_EVENTS_REQUEST___LIMIT_LIMIT;
    req.limit = limit;
    req.filters = &fs.f;
    ProtobufCMessage *msg;
    if (cli_task_events(&c, &req, &msg) != CLI_OK) {
        cli_disconnect(&c);
        return CLI_FAIL;
    }
    const Ray__Rpc__GetTaskEventsReply *r = (const void *)msg;
    rc_buf b = RC_BUF_INIT;
    if (json) {
        rc_buf_putc(&b, '[');
        for (size_t i = 0; i < r->n_events_by_task; i++) {
            rc_buf_puts(&b, i ? ",\n " : "");
            gcs_state_json_task(&b, r->events_by_task[i]);
        }
        rc_buf_puts(&b, "]\n");
        fputs(rc_buf_cstr(&b), stdout);
    } else {
        printf("%-48s %-14s %-24s %-10s %-8s %-32s %-20s %-28s %-48s %-16s %-16s %s\n", "TASK_ID", "ATTEMPT_NUMBER",
               "NAME", "STATE", "JOB_ID", "ACTOR_ID", "TYPE", "FUNC_OR_CLASS_NAME", "PARENT_TASK_ID", "NODE_ID",
               "WORKER_ID", "ERROR_TYPE");
        for (size_t i = 0; i < r->n_events_by_task; i++) {
            const Ray__Rpc__TaskEvents *ev = r->events_by_task[i];
            const Ray__Rpc__TaskInfoEntry *ti = ev->task_info;
            const Ray__Rpc__TaskStateUpdate *su = ev->state_updates;
            char task[RC_ID_HEX_MAX * 2], job[16], actor[RC_ID_HEX_MAX * 2] = "", parent[RC_ID_HEX_MAX * 2] = "",
                 node[RC_ID_HEX_MAX * 2] = "", worker[RC_ID_HEX_MAX * 2] = "";
            cli__hex(&ev->task_id, task);
            cli__hex(&ev->job_id, job);
            if (ti && ti->_actor_id_case)
                cli__hex(&ti->actor_id, actor);
            if (ti)
                cli__hex(&ti->parent_task_id, parent);
            if (su && su->_node_id_case)
                cli__hex(&su->node_id, node);
            if (su && su->_worker_id_case)
                cli__hex(&su->worker_id, worker);
            printf("%-48s %-14d %-24s %-10s %-8s %-32s %-20s %-28s %-48s %-16.16s %-16.16s %s\n", task,
                   ev->attempt_number, ti && ti->name[0] ? ti->name : "-", gcs_state_task_state(ev), job,
                   actor[0] ? actor : "-", cli__enum(&ray__rpc__task_type__descriptor, ti ? (int)ti->type : 0),
                   ti && ti->func_or_class_name[0] ? ti->func_or_class_name : "-", parent[0] ? parent : "-",
                   node[0] ? node : "-", worker[0] ? worker : "-",
                   su && su->error_info ? cli__enum(&ray__rpc__error_type__descriptor, su->error_info->error_type) : "-");
        }
        if (r->num_truncated > 0)
            printf("(%lld more not shown: raise --limit)\n", (long long)r->num_truncated);
    }
    if (r->num_status_task_events_dropped > 0)
        fprintf(stderr,
                "rayc: %d task attempts were dropped (the GCS keeps task_events_max_num_task_in_gcs; workers "
                "buffer task_events_max_num_status_events_buffer_on_worker)\n",
                r->num_status_task_events_dropped);
    rc_buf_free(&b);
    rpc_msg_free(msg);
    cli_disconnect(&c);
    return CLI_OK;
}

int cli_list_tasks(const cli_args *a)
{
    return cli__list_tasks(a);
}

/* ---- summary -------------------------------------------------------------------------- */

typedef struct cli__group {
    char name[256];
    char type[32];
    long long counts[16]; /* by TaskStatus, or by actor state */
} cli__group;

static cli__group *cli__group_get(cli__group **groups, size_t *n, size_t *cap, const char *name, const char *type)
{
    for (size_t i = 0; i < *n; i++)
        if (!strcmp((*groups)[i].name, name) && !strcmp((*groups)[i].type, type))
            return &(*groups)[i];
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        *groups = realloc(*groups, *cap * sizeof(**groups));
        if (!*groups) {
            fprintf(stderr, "rayc: out of memory\n");
            exit(CLI_FAIL);
        }
    }
    cli__group *g = &(*groups)[(*n)++];
    memset(g, 0, sizeof(*g));
    snprintf(g->name, sizeof(g->name), "%s", name);
    snprintf(g->type, sizeof(g->type), "%s", type);
    return g;
}

static void cli__counts_text(const cli__group *g, const ProtobufCEnumDescriptor *d, int json, rc_buf *out)
{
    int first = 1;
    for (int s = 0; s < 16; s++) {
        if (!g->counts[s])
            continue;
        if (json)
            rc_buf_printf(out, "%s\"%s\": %lld", first ? "" : ", ", cli__enum(d, s), g->counts[s]);
        else
            rc_buf_printf(out, "%s%s: %lld", first ? "" : ", ", cli__enum(d, s), g->counts[s]);
        first = 0;
    }
}

static void cli__summary_header(const char *what)
{
    char now[64];
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(now, sizeof(now), "%Y-%m-%d %H:%M:%S", &tm);
    printf("======== %s Summary: %s ========\n", what, now);
}

static int cli__summary_tasks(cli_conn *c, int json)
{
    Ray__Rpc__GetTaskEventsRequest req = RAY__RPC__GET_TASK_EVENTS_REQUEST__INIT;
    ProtobufCMessage *msg;
    if (cli_task_events(c, &req, &msg) != CLI_OK)
        return CLI_FAIL;
    const Ray__Rpc__GetTaskEventsReply *r = (const void *)msg;
    cli__group *groups = NULL;
    size_t n = 0, cap = 0;
    long long total = 0, actor_tasks = 0, actor_scheduled = 0;
    for (size_t i = 0; i < r->n_events_by_task; i++) {
        const Ray__Rpc__TaskEvents *ev = r->events_by_task[i];
        const Ray__Rpc__TaskInfoEntry *ti = ev->task_info;
        int type = ti ? (int)ti->type : 0;
        const char *func = ti && ti->func_or_class_name[0] ? ti->func_or_class_name : ti && ti->name[0] ? ti->name : "?";
        cli__group *g = cli__group_get(&groups, &n, &cap, func, cli__enum(&ray__rpc__task_type__descriptor, type));
        int state = ti ? (int)ti->scheduling_state : 0;
        g->counts[state >= 0 && state < 16 ? state : 0]++;
        total += type == RAY__RPC__TASK_TYPE__NORMAL_TASK;
        actor_tasks += type == RAY__RPC__TASK_TYPE__ACTOR_TASK;
        actor_scheduled += type == RAY__RPC__TASK_TYPE__ACTOR_CREATION_TASK;
    }
    rc_buf b = RC_BUF_INIT;
    if (json) {
        rc_buf_printf(&b,
                      "{\"total_tasks\": %lld, \"total_actor_tasks\": %lld, \"total_actor_scheduled\": %lld, "
                      "\"summary\": {",
                      total, actor_tasks, actor_scheduled);
        for (size_t i = 0; i < n; i++) {
            rc_buf_puts(&b, i ? ", " : "");
            rc_buf_json_str(&b, groups[i].name, strlen(groups[i].name));
            rc_buf_puts(&b, ": {\"func_or_class_name\": ");
            rc_buf_json_str(&b, groups[i].name, strlen(groups[i].name));
            rc_buf_printf(&b, ", \"type\": \"%s\", \"state_counts\": {", groups[i].type);
            cli__counts_text(&groups[i], &ray__rpc__task_status__descriptor, 1, &b);
            rc_buf_puts(&b, "}}");
        }
        rc_buf_puts(&b, "}}\n");
        fputs(rc_buf_cstr(&b), stdout);
    } else {
        cli__summary_header("Tasks");
        printf("Stats:\n------------------------------------\ntotal_actor_scheduled: %lld\ntotal_actor_tasks: "
               "%lld\ntotal_tasks: %lld\n\nTable (group by func_name):\n------------------------------------\n",
               actor_scheduled, actor_tasks, total);
        printf("    %-32s %-48s %s\n", "FUNC_OR_CLASS_NAME", "STATE_COUNTS", "TYPE");
        for (size_t i = 0; i < n; i++) {
            rc_buf counts = RC_BUF_INIT;
            cli__counts_text(&groups[i], &ray__rpc__task_status__descriptor, 0, &counts);
            printf("%-3zu %-32s %-48s %s\n", i, groups[i].name, rc_buf_cstr(&counts), groups[i].type);
            rc_buf_free(&counts);
        }
    }
    rc_buf_free(&b);
    free(groups);
    rpc_msg_free(msg);
    return CLI_OK;
}

static int cli__summary_actors(cli_conn *c, int json)
{
    Ray__Rpc__GetAllActorInfoRequest req = RAY__RPC__GET_ALL_ACTOR_INFO_REQUEST__INIT;
    req.show_dead_jobs = 1;
    ProtobufCMessage *msg;
    if (cli_call(c, &ray__rpc__actor_info_gcs_service__descriptor, "GetAllActorInfo", &req.base, &msg))
        return CLI_FAIL;
    const Ray__Rpc__GetAllActorInfoReply *r = (const void *)msg;
    cli__group *groups = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; i < r->n_actor_table_data; i++) {
        const Ray__Rpc__ActorTableData *a = r->actor_table_data[i];
        cli__group *g = cli__group_get(&groups, &n, &cap, a->class_name && a->class_name[0] ? a->class_name : "?", "");
        g->counts[a->state >= 0 && a->state < 16 ? a->state : 0]++;
    }
    const ProtobufCEnumDescriptor *d = &ray__rpc__actor_table_data__actor_state__descriptor;
    rc_buf b = RC_BUF_INIT;
    if (json) {
        rc_buf_printf(&b, "{\"total_actors\": %zu, \"summary\": {", r->n_actor_table_data);
        for (size_t i = 0; i < n; i++) {
            rc_buf_puts(&b, i ? ", " : "");
            rc_buf_json_str(&b, groups[i].name, strlen(groups[i].name));
            rc_buf_puts(&b, ": {\"class_name\": ");
            rc_buf_json_str(&b, groups[i].name, strlen(groups[i].name));
            rc_buf_puts(&b, ", \"state_counts\": {");
            cli__counts_text(&groups[i], d, 1, &b);
            rc_buf_puts(&b, "}}");
        }
        rc_buf_puts(&b, "}}\n");
        fputs(rc_buf_cstr(&b), stdout);
    } else {
        cli__summary_header("Actors");
        printf("Stats:\n------------------------------------\ntotal_actors: %zu\n\nTable (group by "
               "class):\n------------------------------------\n",
               r->n_actor_table_data);
        printf("    %-32s %s\n", "CLASS_NAME", "STATE_COUNTS");
        for (size_t i = 0; i < n; i++) {
            rc_buf counts = RC_BUF_INIT;
            cli__counts_text(&groups[i], d, 0, &counts);
            printf("%-3zu %-32s %s\n", i, groups[i].name, rc_buf_cstr(&counts));
            rc_buf_free(&counts);
        }
    }
    rc_buf_free(&b);
    free(groups);
    rpc_msg_free(msg);
    return CLI_OK;
}

#define CLI__ENTRY(entries_, n_, name_, out_)           \
    do {                                                \
        (out_) = 0;                                     \
        for (size_t k_ = 0; k_ < (n_); k_++)            \
            if (!strcmp((entries_)[k_]->key, (name_)))  \
                (out_) = (entries_)[k_]->value;         \
    } while (0)

/* Objects: what each node's shared-memory store holds (the raylets' reports). Ray groups
 * objects by call site from every worker's reference table; rayc's workers do not report
 * references, so this is the store's view. */
static int cli__summary_objects(cli_conn *c, int json)
{
    Ray__Rpc__GetAllResourceUsageRequest req = RAY__RPC__GET_ALL_RESOURCE_USAGE_REQUEST__INIT;
    ProtobufCMessage *msg;
    if (cli_call(c, &ray__rpc__node_resource_info_gcs_service__descriptor, "GetAllResourceUsage", &req.base, &msg))
        return CLI_FAIL;
    const Ray__Rpc__GetAllResourceUsageReply *r = (const void *)msg;
    const Ray__Rpc__ResourceUsageBatchData *batch = r->resource_usage_data;
    size_t n = batch ? batch->n_batch : 0;
    double used_all = 0, total_all = 0;
    rc_buf b = RC_BUF_INIT;
    if (json)
        rc_buf_puts(&b, "{\"nodes\": [");
    else {
        cli__summary_header("Objects");
        printf("Table (object store, by node):\n------------------------------------\n");
        printf("    %-58s %-14s %-14s %s\n", "NODE_ID", "USED", "TOTAL", "ADDRESS");
    }
    for (size_t i = 0; i < n; i++) {
        const Ray__Rpc__ResourcesData *d = batch->batch[i];
        double total, avail;
        CLI__ENTRY(d->resources_total, d->n_resources_total, "object_store_memory", total);
        CLI__ENTRY(d->resources_available, d->n_resources_available, "object_store_memory", avail);
        double used = total > avail ? total - avail : 0;
        used_all += used;
        total_all += total;
        char node[RC_ID_HEX_MAX * 2];
        cli__hex(&d->node_id, node);
        if (json) {
            rc_buf_printf(&b, "%s{\"node_id\": \"%s\", \"used_bytes\": %.0f, \"total_bytes\": %.0f}", i ? ", " : "", node,
                          used, total);
        } else {
            char u[32], t[32];
            cli_format_bytes(used, u, sizeof(u));
            cli_format_bytes(total, t, sizeof(t));
            printf("%-3zu %-58s %-14s %-14s %s\n", i, node, u, t, d->node_manager_address);
        }
    }
    if (json) {
        rc_buf_printf(&b, "], \"total_used_bytes\": %.0f, \"total_bytes\": %.0f}\n", used_all, total_all);
        fputs(rc_buf_cstr(&b), stdout);
    } else {
        char u[32], t[32];
        cli_format_bytes(used_all, u, sizeof(u));
        cli_format_bytes(total_all, t, sizeof(t));
        printf("\nStats:\n------------------------------------\nnodes: %zu\nobject_store_used: %s\nobject_store_total: "
               "%s\n",
               n, u, t);
    }
    rc_buf_free(&b);
    rpc_msg_free(msg);
    return CLI_OK;
}

static const cli_opt cli__summary_opts[] = {CLI_OPT_FORMAT, CLI_OPT_ADDRESS};
static const cli_spec cli__summary_spec = {
    "rayc summary", "tasks|actors|objects",
    "Sums up the cluster's tasks (attempts by function or class name and state, from the GCS's\n"
    "task events), actors (by class and state) or objects (each node's object store use), as\n"
    "Ray's 'ray summary'.",
    NULL, CLI_SPEC_OPTS(cli__summary_opts), 1, 1,
};

int cli_cmd_summary(int argc, char **argv)
{
    cli_args args;
    int prc = cli_parse(&cli__summary_spec, argc, argv, &args);
    if (prc != CLI_OK)
        return CLI_PARSED_EXIT(prc);
    const char *address = cli_arg(&args, "--address"), *what = args.pos[0];
    if (strcmp(what, "tasks") && strcmp(what, "actors") && strcmp(what, "objects"))
        return cli_usage_error(&cli__summary_spec, "'%s' is not one of tasks, actors, objects", what);
    int json;
    if (cli_arg_format(&args, &json) != CLI_OK)
        return CLI_USAGE;
    cli_conn c;
    int rc = cli_connect(&c, address);
    if (rc != CLI_OK)
        return rc;
    if (!strcmp(what, "tasks"))
        rc = cli__summary_tasks(&c, json);
    else if (!strcmp(what, "actors"))
        rc = cli__summary_actors(&c, json);
    else
        rc = cli__summary_objects(&c, json);
    cli_disconnect(&c);
    return rc;
}

/* ---- timeline ------------------------------------------------------------------------- */

static const cli_opt cli__timeline_opts[] = {
    {"--output", "-o", "FILE", "/tmp/rayc-timeline-<date>.json", "where to write the trace ('-': stdout)", NULL},
    CLI_OPT_ADDRESS,
};
static const cli_spec cli__timeline_spec = {
    "rayc timeline", NULL,
    "Writes the cluster's recent task runs as a Chrome trace (open it in chrome://tracing or\n"
    "https://ui.perfetto.dev): one complete event per task run, ts and dur in microseconds, pid\n"
    "the node, tid the worker (Ray's 'ray timeline').",
    NULL, CLI_SPEC_OPTS(cli__timeline_opts), 0, 0,
};

int cli_cmd_timeline(int argc, char **argv)
{
    cli_args args;
    int prc = cli_parse(&cli__timeline_spec, argc, argv, &args);
    if (prc != CLI_OK)
        return CLI_PARSED_EXIT(prc);
    const char *address = cli_arg(&args, "--address"), *output = cli_arg(&args, "--output");
    char path[512];
    if (!output) {
        time_t t = time(NULL);
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(path, sizeof(path), "/tmp/rayc-timeline-%Y-%m-%d_%H-%M-%S.json", &tm);
        output = path;
    }
    cli_conn c;
    int rc = cli_connect(&c, address);
    if (rc != CLI_OK)
        return rc;
    Ray__Rpc__GetTaskEventsRequest req = RAY__RPC__GET_TASK_EVENTS_REQUEST__INIT;
    ProtobufCMessage *msg;
    if (cli_task_events(&c, &req, &msg) != CLI_OK) {
        cli_disconnect(&c);
        return CLI_FAIL;
    }
    const Ray__Rpc__GetTaskEventsReply *r = (const void *)msg;
    rc_buf b = RC_BUF_INIT;
    rc_buf_putc(&b, '[');
    size_t written = 0;
    /* Oldest first (the reply is newest first). */
    for (size_t k = r->n_events_by_task; k-- > 0;) {
        const Ray__Rpc__TaskEvents *ev = r->events_by_task[k];
        const Ray__Rpc__TaskInfoEntry *ti = ev->task_info;
        const Ray__Rpc__TaskStateUpdate *su = ev->state_updates;
        int64_t start = gcs_state_task_ts(ev, RAY__RPC__TASK_STATUS__RUNNING);
        int64_t end = gcs_state_task_ts(ev, RAY__RPC__TASK_STATUS__FINISHED);
        int64_t failed = gcs_state_task_ts(ev, RAY__RPC__TASK_STATUS__FAILED);
        if (failed && (!end || failed > end))
            end = failed;
        if (!start || !end || end < start)
            continue; /* not run here (yet), or its run's end was not reported */
        char task[RC_ID_HEX_MAX * 2], node[RC_ID_HEX_MAX * 2] = "", worker[RC_ID_HEX_MAX * 2] = "", job[16];
        cli__hex(&ev->task_id, task);
        cli__hex(&ev->job_id, job);
        if (su && su->_node_id_case)
            cli__hex(&su->node_id, node);
        if (su && su->_worker_id_case)
            cli__hex(&su->worker_id, worker);
        const char *name = ti && ti->name[0] ? ti->name : "task";
        rc_buf_puts(&b, written++ ? ",\n " : "");
        char cat[300];
        snprintf(cat, sizeof(cat), "task::%s", name);
        rc_buf_puts(&b, "{\"cat\": ");
        rc_buf_json_str(&b, cat, strlen(cat));
        rc_buf_puts(&b, ", \"name\": ");
        rc_buf_json_str(&b, name, strlen(name));
        rc_buf_printf(&b,
                      ", \"pid\": \"Node %.16s\", \"tid\": \"Worker %.16s (pid %d)\", \"ts\": %.3f, \"dur\": %.3f, "
                      "\"ph\": \"X\", \"cname\": \"%s\", \"args\": {\"task_id\": \"%s\", \"attempt_number\": %d, "
                      "\"job_id\": \"%s\", \"state\": \"%s\", \"func_or_class_name\": ",
                      node[0] ? node : "?", worker[0] ? worker : "?", su && su->_worker_pid_case ? su->worker_pid : 0,
                      (double)start / 1000.0, (double)(end - start) / 1000.0,
                      failed ? "terrible" : "generic_work", task, ev->attempt_number, job, gcs_state_task_state(ev));
        const char *func = ti ? ti->func_or_class_name : "";
        rc_buf_json_str(&b, func, strlen(func));
        rc_buf_puts(&b, "}}");
    }
    rc_buf_puts(&b, "]\n");
    rpc_msg_free(msg);
    cli_disconnect(&c);
    if (!strcmp(output, "-")) {
        fputs(rc_buf_cstr(&b), stdout);
        rc_buf_free(&b);
        return CLI_OK;
    }
    FILE *f = fopen(output, "w");
    if (!f || fputs(rc_buf_cstr(&b), f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "rayc timeline: cannot write %s\n", output);
        rc_buf_free(&b);
        return CLI_FAIL;
    }
    rc_buf_free(&b);
    printf("Trace file written to %s (%zu task runs). Open it in chrome://tracing or https://ui.perfetto.dev\n", output,
           written);
    return CLI_OK;
}
