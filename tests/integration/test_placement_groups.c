/*
 * Placement groups end to end on real local clusters: the four strategies, a STRICT_SPREAD
 * group that waits for a node to join, infeasible groups that say why, removal returning
 * exactly what was reserved, GPUs inside bundles, actors in bundles (removed with the group,
 * restarted in their bundle after their worker is killed, moved with the bundle when its
 * raylet is killed), and bad requests.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"
#include "rayc.h"
#include "rc_err.h"
#include "rc_json.h"
#include "rc_time.h"
#include "unit.h"

static harness_cluster C;

typedef struct actor_where {
    int64_t pid;
    uint8_t node_id[RAYC_NODE_ID_SIZE];
    int32_t n_gpus;
    int32_t gpus[4];
} actor_where;

static int start_cluster(const char *const *const *raylets, int n)
{
    setenv("RAYC_health_check_initial_delay_ms", "200", 1);
    setenv("RAYC_health_check_period_ms", "200", 1);
    setenv("RAYC_health_check_timeout_ms", "500", 1);
    setenv("RAYC_health_check_failure_threshold", "3", 1);
    setenv("RAYC_unschedulable_task_timeout_ms", "2000", 1);
    setenv("RAYC_CODE_SEARCH_PATH", ACTOR_LIB, 1);
    if (harness_cluster_init(&C, 0) || harness_gcs_start(&C))
        return -1;
    for (int i = 0; i < n; i++) {
        int idx;
        if (harness_raylet_start(&C, raylets[i], &idx))
            return -1;
    }
    rayc_init_options opts;
    rayc_init_options_init(&opts);
    opts.address = C.gcs_address;
    opts.code_search_path = ACTOR_LIB;
    return rayc_init(&opts);
}

static void stop_cluster(void)
{
    rayc_shutdown();
    harness_cluster_destroy(&C);
}

static rayc_bundle cpu_bundle(double cpus)
{
    rayc_bundle b;
    memset(&b, 0, sizeof(b));
    b.num_cpus = cpus;
    return b;
}

/* Runs where_task in bundle index of pg (index -1: any) with cpus CPUs and gpus GPUs. */
static int task_where(const rayc_pg *pg, int index, double cpus, double gpus, actor_where *out, rayc_error *err)
{
    rayc_task_options o;
    rayc_task_options_init(&o);
    o.placement_group = pg;
    o.bundle_index = index;
    o.num_cpus = cpus;
    o.num_gpus = gpus;
    rayc_ref ref;
    if (rayc_submit("where_task", NULL, 0, &o, &ref) != 0)
        return -1;
    rayc_object obj;
    int rc = rayc_get(&ref, 1, 60000, &obj);
    *err = rc == 0 ? obj.error : RAYC_ERR_TIMEOUT;
    if (rc == 0 && !obj.error && obj.size == sizeof(*out))
        memcpy(out, obj.data, sizeof(*out));
    else {
        if (rc == 0 && obj.error)
            fprintf(stderr, "  where_task: %s\n", obj.error_message);
        rc = -1;
    }
    rayc_object_release(&obj, 1);
    rayc_ref_release(&ref);
    return rc;
}

static int actor_where_call(const rayc_actor *a, actor_where *out)
{
    rayc_ref ref;
    if (rayc_actor_call(a, "where", NULL, 0, NULL, &ref) != 0)
        return -1;
    rayc_object o;
    int rc = rayc_get(&ref, 1, 60000, &o);
    if (rc == 0 && !o.error && o.size == sizeof(*out))
        memcpy(out, o.data, sizeof(*out));
    else {
        if (rc == 0 && o.error)
            fprintf(stderr, "  where: %s\n", o.error_message);
        rc = -1;
    }
    rayc_object_release(&o, 1);
    rayc_ref_release(&ref);
    return rc;
}

/* The cluster's resource name (available or total); -1 if absent. count_group: the number
 * of resource names containing "_group_". */
static double resource(int available, const char *name, int *count_group)
{
    char *text = rayc_resources_json(available);
    if (!text)
        return -2;
    rc_json *root = NULL;
    double v = -1;
    if (rc_json_parse(text, strlen(text), &root, NULL, 0) == 0) {
        const rc_json *item = rc_json_get(root, name);
        if (item && item->type == RC_JSON_NUMBER)
            v = item->number;
        if (count_group) {
            *count_group = 0;
            for (size_t i = 0; i < root->n_items; i++)
                *count_group += strstr(root->items[i].key, "_group_") != NULL;
        }
        rc_json_free(root);
    }
    free(text);
    return v;
}

/* Polls until the available amount of name is want (reports lag). */
static int wait_available(const char *name, double want, int timeout_ms)
{
    int64_t deadline = rc_mono_ms() + timeout_ms;
    double v;
    do {
        v = resource(1, name, NULL);
        if (v > want - 1e-6 && v < want + 1e-6)
            return 0;
        usleep(100 * 1000);
    } while (rc_mono_ms() < deadline);
    fprintf(stderr, "  available %s: %g, wanted %g\n", name, v, want);
    return -1;
}

/* ---- strategies ---------------------------------------------------------------------- */

static void test_strict_spread_waits_for_a_node(void)
{
    const char *head[] = {"--head", "--num-cpus", "2", NULL};
    const char *other[] = {"--num-cpus", "2", NULL};
    const char *const *nodes[] = {head, other, other};
    CU_ASSERT_EQUAL_FATAL(start_cluster(nodes, 3), 0);
    rayc_bundle b[4] = {cpu_bundle(1), cpu_bundle(1), cpu_bundle(1), cpu_bundle(1)};
    rayc_pg pg;
    CU_ASSERT_EQUAL_FATAL(rayc_pg_create(b, 4, RAYC_PG_STRICT_SPREAD, NULL, &pg), 0);
    CU_ASSERT_EQUAL(rayc_pg_wait(&pg, 1500), RC_ETIMEDOUT);
    fprintf(stderr, "\n  pending: %s\n", rayc_last_error());
    CU_ASSERT_PTR_NOT_NULL(strstr(rayc_last_error(), "STRICT_SPREAD"));
    /* Nothing is held while it waits (two-phase commit, all or nothing). */
    CU_ASSERT_EQUAL(wait_available("CPU", 6, 10000), 0);
    /* A fourth node joins: the group is placed, one bundle per node. */
    int idx;
    CU_ASSERT_EQUAL_FATAL(harness_raylet_start(&C, other, &idx), 0);
    CU_ASSERT_EQUAL_FATAL(rayc_pg_wait(&pg, 30000), 0);
    actor_where w[4];
    rayc_error e;
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(task_where(&pg, i, 1, 0, &w[i], &e), 0);
    int same = 0;
    for (int i = 0; i < 4; i++)
        for (int j = i + 1; j < 4; j++)
            same += !memcmp(w[i].node_id, w[j].node_id, RAYC_NODE_ID_SIZE);
    CU_ASSERT_EQUAL(same, 0);
    int groups = 0;
    CU_ASSERT_EQUAL(resource(0, "CPU", &groups), 8);
    CU_ASSERT(groups > 0);
    CU_ASSERT_EQUAL(wait_available("CPU", 4, 10000), 0);
    /* A task asking more than its bundle holds can never run there. */
    rayc_task_options o;
    rayc_task_options_init(&o);
    o.placement_group = &pg;
    o.bundle_index = 0;
    o.num_cpus = 2;
    rayc_ref ref;
    CU_ASSERT_EQUAL(rayc_submit("where_task", NULL, 0, &o, &ref), 0);
    rayc_object obj;
    CU_ASSERT_EQUAL(rayc_get(&ref, 1, 60000, &obj), 0);
    CU_ASSERT_EQUAL(obj.error, RAYC_ERR_UNSCHEDULABLE);
    rayc_object_release(&obj, 1);
    rayc_ref_release(&ref);
    CU_ASSERT_EQUAL(rayc_pg_remove(&pg), 0);
    CU_ASSERT_EQUAL(rayc_pg_wait(&pg, 1000), RC_ENOENT);
    CU_ASSERT_EQUAL(wait_available("CPU", 8, 10000), 0);
    stop_cluster();
}

static void test_pack_spread_and_exact_release(void)
{
    const char *head[] = {"--head", "--num-cpus", "4", "--resources", "{\"A\": 4}", NULL};
    const char *other[] = {"--num-cpus", "4", "--resources", "{\"A\": 4}", NULL};
    const char *const *nodes[] = {head, other};
    CU_ASSERT_EQUAL_FATAL(start_cluster(nodes, 2), 0);
    CU_ASSERT_EQUAL(wait_available("CPU", 8, 10000), 0);
    rayc_bundle b[2] = {cpu_bundle(1), cpu_bundle(1)};
    for (int i = 0; i < 2; i++) {
        b[i].resources[0] = (rayc_resource){"A", 0.5};
        b[i].n_resources = 1;
    }
    rayc_pg pack, spread;
    CU_ASSERT_EQUAL_FATAL(rayc_pg_create(b, 2, RAYC_PG_PACK, NULL, &pack), 0);
    CU_ASSERT_EQUAL_FATAL(rayc_pg_create(b, 2, RAYC_PG_SPREAD, NULL, &spread), 0);
    CU_ASSERT_EQUAL_FATAL(rayc_pg_wait(&pack, 30000), 0);
    CU_ASSERT_EQUAL_FATAL(rayc_pg_wait(&spread, 30000), 0);
    actor_where w[4];
    rayc_error e;
    CU_ASSERT_EQUAL(task_where(&pack, 0, 1, 0, &w[0], &e), 0);
    CU_ASSERT_EQUAL(task_where(&pack, 1, 1, 0, &w[1], &e), 0);
    CU_ASSERT_EQUAL(task_where(&spread, 0, 1, 0, &w[2], &e), 0);
    CU_ASSERT_EQUAL(task_where(&spread, 1, 1, 0, &w[3], &e), 0);
    CU_ASSERT_EQUAL(memcmp(w[0].node_id, w[1].node_id, RAYC_NODE_ID_SIZE), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(w[2].node_id, w[3].node_id, RAYC_NODE_ID_SIZE), 0);
    /* Any bundle (-1) and no CPU at all still land inside the group. */
    actor_where any;
    CU_ASSERT_EQUAL(task_where(&pack, -1, 0, 0, &any, &e), 0);
    CU_ASSERT_EQUAL(memcmp(any.node_id, w[0].node_id, RAYC_NODE_ID_SIZE), 0);
    CU_ASSERT_EQUAL(wait_available("CPU", 4, 10000), 0);
    CU_ASSERT_EQUAL(wait_available("A", 6, 10000), 0);
    CU_ASSERT_EQUAL(rayc_pg_remove(&pack), 0);
    CU_ASSERT_EQUAL(rayc_pg_remove(&spread), 0);
    CU_ASSERT_EQUAL(rayc_pg_remove(&spread), 0); /* removing twice is fine, as in Ray */
    /* Everything is back, to the last fraction, and no bundle resource is left. */
    CU_ASSERT_EQUAL(wait_available("CPU", 8, 10000), 0);
    CU_ASSERT_EQUAL(wait_available("A", 8, 10000), 0);
    int groups = -1;
    int64_t deadline = rc_mono_ms() + 10000;
    do {
        resource(0, "CPU", &groups);
        if (groups == 0)
            break;
        usleep(100 * 1000);
    } while (rc_mono_ms() < deadline);
    CU_ASSERT_EQUAL(groups, 0);
    stop_cluster();
}

static void test_infeasible_and_bad_requests(void)
{
    const char *head[] = {"--head", "--num-cpus", "4", NULL};
    const char *const *nodes[] = {head};
    CU_ASSERT_EQUAL_FATAL(start_cluster(nodes, 1), 0);
    rayc_bundle b[2] = {cpu_bundle(3), cpu_bundle(3)};
    rayc_pg pg;
    CU_ASSERT_EQUAL_FATAL(rayc_pg_create(b, 2, RAYC_PG_STRICT_PACK, NULL, &pg), 0);
    CU_ASSERT_EQUAL(rayc_pg_wait(&pg, 1500), RC_ETIMEDOUT);
    fprintf(stderr, "\n  infeasible: %s\n", rayc_last_error());
    CU_ASSERT_PTR_NOT_NULL(strstr(rayc_last_error(), "STRICT_PACK"));
    CU_ASSERT_EQUAL(rayc_pg_remove(&pg), 0);
    CU_ASSERT_EQUAL(rayc_pg_wait(&pg, 5000), RC_ENOENT);

    /* Bad requests: nothing is created. */
    CU_ASSERT_EQUAL(rayc_pg_create(b, 0, RAYC_PG_PACK, NULL, &pg), RC_EINVAL);
    rayc_bundle empty = cpu_bundle(0);
    CU_ASSERT_EQUAL(rayc_pg_create(&empty, 1, RAYC_PG_PACK, NULL, &pg), RC_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(rayc_last_error(), "asks for nothing"));
    rayc_bundle neg = cpu_bundle(-1);
    CU_ASSERT_EQUAL(rayc_pg_create(&neg, 1, RAYC_PG_PACK, NULL, &pg), RC_EINVAL);
    rayc_bundle sel = cpu_bundle(1);
    sel.label_selector = "region in (";
    CU_ASSERT_EQUAL(rayc_pg_create(&sel, 1, RAYC_PG_PACK, NULL, &pg), RC_EINVAL);
    CU_ASSERT_EQUAL(rayc_pg_create(b, 1, (rayc_pg_strategy)9, NULL, &pg), RC_EINVAL);
    /* Names: unique, found by name. */
    rayc_pg_options po = {"trainers", 0};
    rayc_pg named, again, found;
    rayc_bundle one = cpu_bundle(1);
    CU_ASSERT_EQUAL_FATAL(rayc_pg_create(&one, 1, RAYC_PG_PACK, &po, &named), 0);
    CU_ASSERT_EQUAL(rayc_pg_create(&one, 1, RAYC_PG_PACK, &po, &again), RC_EEXIST);
    CU_ASSERT_EQUAL(rayc_pg_get("trainers", &found), 0);
    CU_ASSERT_EQUAL(memcmp(found.id, named.id, RAYC_PG_ID_SIZE), 0);
    CU_ASSERT_EQUAL(rayc_pg_get("nobody", &found), RC_ENOENT);
    CU_ASSERT_EQUAL(rayc_pg_wait(&named, 30000), 0);
    /* Label selectors per bundle: a label no node has keeps the group pending. */
    rayc_bundle labelled = cpu_bundle(1);
    labelled.label_selector = "region: mars";
    rayc_pg nowhere;
    CU_ASSERT_EQUAL_FATAL(rayc_pg_create(&labelled, 1, RAYC_PG_PACK, NULL, &nowhere), 0);
    CU_ASSERT_EQUAL(rayc_pg_wait(&nowhere, 1000), RC_ETIMEDOUT);
    CU_ASSERT_EQUAL(rayc_pg_remove(&nowhere), 0);
    stop_cluster();
}

/* ---- GPUs and actors in bundles ------------------------------------------------------------ */

static void test_gpus_and_actors_in_bundles(void)
{
    const char *head[] = {"--head", "--num-cpus", "4", "--num-gpus", "2", NULL};
    const char *const *nodes[] = {head};
    CU_ASSERT_EQUAL_FATAL(start_cluster(nodes, 1), 0);
    rayc_bundle b[2] = {cpu_bundle(1), cpu_bundle(1)};
    b[0].num_gpus = 1;
    b[1].num_gpus = 1;
    rayc_pg pg;
    CU_ASSERT_EQUAL_FATAL(rayc_pg_create(b, 2, RAYC_PG_STRICT_PACK, NULL, &pg), 0);
    CU_ASSERT_EQUAL_FATAL(rayc_pg_wait(&pg, 30000), 0);
    /* A plain GPU task outside the group finds no free GPU now. */
    CU_ASSERT_EQUAL(wait_available("GPU", 0, 10000), 0);
    actor_where w[2];
    rayc_error e;
    for (int i = 0; i < 2; i++) {
        CU_ASSERT_EQUAL(task_where(&pg, i, 0.5, 1, &w[i], &e), 0);
        CU_ASSERT_EQUAL(w[i].n_gpus, 1);
    }
    CU_ASSERT_NOT_EQUAL(w[0].gpus[0], w[1].gpus[0]);
    /* An actor holding bundle 1's GPU sees that GPU; the group's removal kills it. */
    rayc_actor_options ao;
    rayc_actor_options_init(&ao);
    ao.placement_group = &pg;
    ao.bundle_index = 1;
    ao.num_cpus = 1;
    ao.num_gpus = 1;
    ao.max_restarts = -1;
    ao.max_task_retries = 1; /* a call racing the kill below goes to the next instance */
    rayc_actor a;
    CU_ASSERT_EQUAL_FATAL(rayc_actor_create("Counter", NULL, 0, &ao, &a), 0);
    actor_where aw;
    CU_ASSERT_EQUAL_FATAL(actor_where_call(&a, &aw), 0);
    CU_ASSERT_EQUAL(aw.n_gpus, 1);
    CU_ASSERT_EQUAL(aw.gpus[0], w[1].gpus[0]);
    /* Its worker killed: it restarts inside the same bundle. */
    kill((pid_t)aw.pid, SIGKILL);
    actor_where aw2;
    CU_ASSERT_EQUAL(actor_where_call(&a, &aw2), 0);
    CU_ASSERT_NOT_EQUAL(aw2.pid, aw.pid);
    CU_ASSERT_EQUAL(aw2.gpus[0], w[1].gpus[0]);
    CU_ASSERT_EQUAL(rayc_pg_remove(&pg), 0);
    rayc_actor_info info;
    int64_t deadline = rc_mono_ms() + 10000;
    while (rc_mono_ms() < deadline && (rayc_actor_info_get(&a, &info) != 0 || info.state != RAYC_ACTOR_DEAD))
        usleep(50 * 1000);
    CU_ASSERT_EQUAL(info.state, RAYC_ACTOR_DEAD);
    fprintf(stderr, "\n  actor after its group was removed: %s\n", info.death_cause);
    rayc_ref ref;
    CU_ASSERT_EQUAL(rayc_actor_call(&a, "add", NULL, 0, NULL, &ref), 0);
    rayc_object o;
    CU_ASSERT_EQUAL(rayc_get(&ref, 1, 30000, &o), 0);
    CU_ASSERT(o.error == RAYC_ERR_ACTOR_DIED || o.error == RAYC_ERR_PG_REMOVED);
    rayc_object_release(&o, 1);
    rayc_ref_release(&ref);
    CU_ASSERT_EQUAL(wait_available("GPU", 2, 10000), 0);
    CU_ASSERT_EQUAL(wait_available("CPU", 4, 10000), 0);
    stop_cluster();
}

static void test_raylet_killed_under_a_bundle(void)
{
    const char *head[] = {"--head", "--num-cpus", "2", NULL};
    const char *other[] = {"--num-cpus", "2", NULL};
    const char *const *nodes[] = {head, other, other};
    CU_ASSERT_EQUAL_FATAL(start_cluster(nodes, 3), 0);
    rayc_bundle b[2] = {cpu_bundle(1), cpu_bundle(1)};
    rayc_pg pg;
    CU_ASSERT_EQUAL_FATAL(rayc_pg_create(b, 2, RAYC_PG_STRICT_SPREAD, NULL, &pg), 0);
    CU_ASSERT_EQUAL_FATAL(rayc_pg_wait(&pg, 30000), 0);
    rayc_actor a[2];
    actor_where w[2];
    for (int i = 0; i < 2; i++) {
        rayc_actor_options ao;
        rayc_actor_options_init(&ao);
        ao.placement_group = &pg;
        ao.bundle_index = i;
        ao.num_cpus = 1;
        ao.max_restarts = -1;
        ao.max_task_retries = -1;
        CU_ASSERT_EQUAL_FATAL(rayc_actor_create("Counter", NULL, 0, &ao, &a[i]), 0);
        CU_ASSERT_EQUAL_FATAL(actor_where_call(&a[i], &w[i]), 0);
    }
    /* Kill the raylet under bundle 1 (not the head, which the driver uses). */
    int victim = -1;
    for (int r = 1; r < C.n_raylets; r++) {
        uint8_t id[RAYC_NODE_ID_SIZE];
        for (int k = 0; k < RAYC_NODE_ID_SIZE; k++)
            sscanf(C.raylets[r].node_id + 2 * k, "%2hhx", &id[k]);
        if (!memcmp(id, w[1].node_id, RAYC_NODE_ID_SIZE) && memcmp(id, w[0].node_id, RAYC_NODE_ID_SIZE))
            victim = r;
    }
    if (victim < 0) { /* bundle 1 is on the head: kill bundle 0's instead */
        for (int r = 1; r < C.n_raylets; r++) {
            uint8_t id[RAYC_NODE_ID_SIZE];
            for (int k = 0; k < RAYC_NODE_ID_SIZE; k++)
                sscanf(C.raylets[r].node_id + 2 * k, "%2hhx", &id[k]);
            if (!memcmp(id, w[0].node_id, RAYC_NODE_ID_SIZE))
                victim = r;
        }
    }
    CU_ASSERT_FATAL(victim > 0);
    uint8_t victim_id[RAYC_NODE_ID_SIZE];
    for (int k = 0; k < RAYC_NODE_ID_SIZE; k++)
        sscanf(C.raylets[victim].node_id + 2 * k, "%2hhx", &victim_id[k]);
    int moved = !memcmp(victim_id, w[1].node_id, RAYC_NODE_ID_SIZE) ? 1 : 0;
    harness_raylet_signal(&C, victim, SIGKILL);
    harness_raylet_wait_exit(&C, victim, 5000);
    /* Its workers notice their raylet is gone and exit. */
    int64_t deadline = rc_mono_ms() + 10000;
    while (kill((pid_t)w[moved].pid, 0) == 0 && rc_mono_ms() < deadline)
        usleep(20 * 1000);
    CU_ASSERT_NOT_EQUAL(kill((pid_t)w[moved].pid, 0), 0);
    /* The group is rescheduled on the spare node; the actor follows its bundle. */
    actor_where after;
    CU_ASSERT_EQUAL(actor_where_call(&a[moved], &after), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(after.node_id, victim_id, RAYC_NODE_ID_SIZE), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(after.node_id, w[1 - moved].node_id, RAYC_NODE_ID_SIZE), 0);
    CU_ASSERT_EQUAL(rayc_pg_wait(&pg, 30000), 0);
    actor_where still;
    CU_ASSERT_EQUAL(actor_where_call(&a[1 - moved], &still), 0);
    CU_ASSERT_EQUAL(still.pid, w[1 - moved].pid);
    rayc_actor_info info;
    CU_ASSERT_EQUAL(rayc_actor_info_get(&a[moved], &info), 0);
    CU_ASSERT_EQUAL(info.num_restarts, 1);
    stop_cluster();
}

static void test_capture_child_tasks(void)
{
    /* A group of one 2-CPU bundle fits only on the 2-CPU node and takes all of its CPUs: a
     * child that joins the group runs there, one that does not must go to the head. */
    const char *head[] = {"--head", "--num-cpus", "1", NULL};
    const char *other[] = {"--num-cpus", "2", NULL};
    const char *const *nodes[] = {head, other};
    CU_ASSERT_EQUAL_FATAL(start_cluster(nodes, 2), 0);
    rayc_bundle b = cpu_bundle(2);
    rayc_pg pg;
    CU_ASSERT_EQUAL_FATAL(rayc_pg_create(&b, 1, RAYC_PG_STRICT_PACK, NULL, &pg), 0);
    CU_ASSERT_EQUAL_FATAL(rayc_pg_wait(&pg, 30000), 0);
    actor_where group_node;
    rayc_error e;
    CU_ASSERT_EQUAL_FATAL(task_where(&pg, 0, 1, 0, &group_node, &e), 0);
    for (int capture = 0; capture < 2; capture++) {
        rayc_task_options o;
        rayc_task_options_init(&o);
        o.placement_group = &pg;
        o.num_cpus = 1;
        o.capture_child_tasks = capture;
        rayc_ref ref;
        CU_ASSERT_EQUAL_FATAL(rayc_submit("child_where", NULL, 0, &o, &ref), 0);
        rayc_object out;
        CU_ASSERT_EQUAL(rayc_get(&ref, 1, 60000, &out), 0);
        CU_ASSERT_EQUAL(out.error, RAYC_OK);
        if (!out.error && out.size == sizeof(actor_where)) {
            const actor_where *w = out.data;
            int same = !memcmp(w->node_id, group_node.node_id, RAYC_NODE_ID_SIZE);
            CU_ASSERT_EQUAL(same, capture);
        } else if (out.error) {
            fprintf(stderr, "  child_where: %s\n", out.error_message);
        }
        rayc_object_release(&out, 1);
        rayc_ref_release(&ref);
    }
    stop_cluster();
}

static const unit_case cases[] = {
    UNIT_CASE(test_capture_child_tasks),
    UNIT_CASE(test_strict_spread_waits_for_a_node),
    UNIT_CASE(test_pack_spread_and_exact_release),
    UNIT_CASE(test_infeasible_and_bad_requests),
    UNIT_CASE(test_gpus_and_actors_in_bundles),
    UNIT_CASE(test_raylet_killed_under_a_bundle),
};

int main(void)
{
    return unit_run("placement_groups", cases, UNIT_N(cases));
}
