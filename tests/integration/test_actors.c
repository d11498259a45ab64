/*
 * Actors end to end on real local clusters: call ordering, named and detached actors,
 * owner death, restarts and the error after the last one, max_concurrency, handles passed
 * to tasks, constructor failures, kill, release, cancel, and a GCS restart with Redis while
 * actors run.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"
#include "rayc.h"
#include "rc_err.h"
#include "rc_time.h"
#include "unit.h"

static harness_cluster C;

typedef struct actor_where {
    int64_t pid;
    uint8_t node_id[RAYC_NODE_ID_SIZE];
    int32_t n_gpus;
    int32_t gpus[4];
} actor_where;

static void fast_env(void)
{
    setenv("RAYC_health_check_initial_delay_ms", "200", 1);
    setenv("RAYC_health_check_period_ms", "200", 1);
    setenv("RAYC_health_check_timeout_ms", "500", 1);
    setenv("RAYC_health_check_failure_threshold", "3", 1);
    setenv("RAYC_unschedulable_task_timeout_ms", "2000", 1);
    setenv("RAYC_CODE_SEARCH_PATH", ACTOR_LIB, 1);
}

static int start_cluster(const char *const *const *raylets, int n, int use_redis)
{
    fast_env();
    if (harness_cluster_init(&C, use_redis) || harness_gcs_start(&C))
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
    opts.namespace_ = "actors-test";
    return rayc_init(&opts);
}

static int start_one_node(int cpus)
{
    char n[16];
    snprintf(n, sizeof(n), "%d", cpus);
    const char *head[] = {"--head", "--num-cpus", n, NULL};
    const char *const *nodes[] = {head};
    return start_cluster(nodes, 1, 0);
}

static void stop_cluster(void)
{
    rayc_shutdown();
    harness_cluster_destroy(&C);
}

/* Calls method(x) (x < 0: no argument) and returns its int64 result; *err gets the error. */
static int64_t call_i64(const rayc_actor *a, const char *method, int64_t x, rayc_error *err, char *msg, size_t msglen)
{
    rayc_arg args[] = {RAYC_ARG_VALUE(&x, 8)};
    rayc_ref ref;
    if (rayc_actor_call(a, method, args, x < 0 ? 0 : 1, NULL, &ref) != 0) {
        *err = RAYC_ERR_TASK_FAILED;
        return -1;
    }
    rayc_object o;
    int64_t v = -1;
    if (rayc_get(&ref, 1, 60000, &o) != 0) {
        *err = RAYC_ERR_TIMEOUT;
        rayc_ref_release(&ref);
        return -1;
    }
    *err = o.error;
    if (!o.error && o.size == 8)
        memcpy(&v, o.data, 8);
    if (msg && msglen)
        snprintf(msg, msglen, "%s", o.error ? o.error_message : "");
    if (o.error)
        fprintf(stderr, "  %s: %s: %s\n", method, rayc_error_name(o.error), o.error_message);
    rayc_object_release(&o, 1);
    rayc_ref_release(&ref);
    return v;
}

static int where(const rayc_actor *a, actor_where *out)
{
    rayc_ref ref;
    if (rayc_actor_call(a, "where", NULL, 0, NULL, &ref) != 0)
        return -1;
    rayc_object o;
    int rc = rayc_get(&ref, 1, 60000, &o);
    if (rc == 0 && !o.error && o.size == sizeof(*out))
        memcpy(out, o.data, sizeof(*out));
    else
        rc = -1;
    rayc_object_release(&o, 1);
    rayc_ref_release(&ref);
    return rc;
}

/* Polls the GCS until the actor reaches state (or timeout_ms passes). */
static int wait_state(const rayc_actor *a, rayc_actor_state state, int timeout_ms, rayc_actor_info *info)
{
    int64_t deadline = rc_mono_ms() + timeout_ms;
    do {
        if (rayc_actor_info_get(a, info) == 0 && info->state == state)
            return 0;
        usleep(50 * 1000);
    } while (rc_mono_ms() < deadline);
    return -1;
}

static int pid_alive(int64_t pid)
{
    return pid > 0 && kill((pid_t)pid, 0) == 0;
}

static int wait_pid_gone(int64_t pid, int timeout_ms)
{
    int64_t deadline = rc_mono_ms() + timeout_ms;
    while (pid_alive(pid) && rc_mono_ms() < deadline)
        usleep(20 * 1000);
    return pid_alive(pid) ? -1 : 0;
}

/* ---- ordering, values, errors ---------------------------------------------------------- */

static void test_calls_in_order(void)
{
    CU_ASSERT_EQUAL_FATAL(start_one_node(4), 0);
    int64_t start = 100;
    rayc_arg cargs[] = {RAYC_ARG_VALUE(&start, 8)};
    rayc_actor a;
    CU_ASSERT_EQUAL_FATAL(rayc_actor_create("Counter", cargs, 1, NULL, &a), 0);
    /* 2000 calls without waiting: they run in submission order. Every 7th takes its
     * argument as an object reference (resolved before the call runs, still in order). */
    enum { N = 2000 };
    static rayc_ref refs[N];
    static rayc_ref puts[N];
    int n_puts = 0;
    for (int64_t i = 0; i < N; i++) {
        if (i % 7 == 3) {
            CU_ASSERT_EQUAL_FATAL(rayc_put(&i, 8, &puts[n_puts]), 0);
            rayc_arg args[] = {RAYC_ARG_REF(&puts[n_puts])};
            n_puts++;
            CU_ASSERT_EQUAL_FATAL(rayc_actor_call(&a, "push", args, 1, NULL, &refs[i]), 0);
        } else {
            rayc_arg args[] = {RAYC_ARG_VALUE(&i, 8)};
            CU_ASSERT_EQUAL_FATAL(rayc_actor_call(&a, "push", args, 1, NULL, &refs[i]), 0);
        }
    }
    rayc_ref log_ref;
    CU_ASSERT_EQUAL_FATAL(rayc_actor_call(&a, "log", NULL, 0, NULL, &log_ref), 0);
    rayc_object log;
    CU_ASSERT_EQUAL_FATAL(rayc_get(&log_ref, 1, 60000, &log), 0);
    CU_ASSERT_EQUAL(log.error, RAYC_OK);
    CU_ASSERT_EQUAL(log.size, N * 8);
    int out_of_order = 0;
    for (int64_t i = 0; i < N && log.size == N * 8; i++) {
        int64_t v;
        memcpy(&v, (const char *)log.data + i * 8, 8);
        out_of_order += v != i;
    }
    CU_ASSERT_EQUAL(out_of_order, 0);
    rayc_object_release(&log, 1);
    rayc_ref_release(&log_ref);
    for (int i = 0; i < N; i++)
        rayc_ref_release(&refs[i]);
    for (int i = 0; i < n_puts; i++)
        rayc_ref_release(&puts[i]);

    /* State is kept between calls; the constructor saw its argument. */
    rayc_error e;
    CU_ASSERT_EQUAL(call_i64(&a, "add", 5, &e, NULL, 0), 105);
    CU_ASSERT_EQUAL(call_i64(&a, "add", 5, &e, NULL, 0), 110);
    /* A method that fails does not end the actor. */
    char msg[512];
    call_i64(&a, "fail", -1, &e, msg, sizeof(msg));
    CU_ASSERT_EQUAL(e, RAYC_ERR_TASK_FAILED);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "Counter.fail called"));
    call_i64(&a, "no_such_method", -1, &e, msg, sizeof(msg));
    CU_ASSERT_EQUAL(e, RAYC_ERR_TASK_FAILED);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "no method 'no_such_method'"));
    CU_ASSERT_EQUAL(call_i64(&a, "add", 1, &e, NULL, 0), 111);

    /* An argument that is an error fails that call only, in its turn. */
    rayc_ref bad;
    CU_ASSERT_EQUAL(rayc_actor_call(&a, "fail", NULL, 0, NULL, &bad), 0);
    rayc_arg badargs[] = {RAYC_ARG_REF(&bad)};
    rayc_ref r1, r2;
    CU_ASSERT_EQUAL(rayc_actor_call(&a, "add", badargs, 1, NULL, &r1), 0);
    int64_t one = 1;
    rayc_arg oneargs[] = {RAYC_ARG_VALUE(&one, 8)};
    CU_ASSERT_EQUAL(rayc_actor_call(&a, "add", oneargs, 1, NULL, &r2), 0);
    rayc_object o[2];
    rayc_ref both[2] = {r1, r2};
    CU_ASSERT_EQUAL(rayc_get(both, 2, 60000, o), 0);
    CU_ASSERT_EQUAL(o[0].error, RAYC_ERR_TASK_FAILED);
    CU_ASSERT_EQUAL(o[1].error, RAYC_OK);
    int64_t v = 0;
    if (!o[1].error)
        memcpy(&v, o[1].data, 8);
    CU_ASSERT_EQUAL(v, 112);
    rayc_object_release(o, 2);
    rayc_ref_release(&bad);
    rayc_ref_release(&r1);
    rayc_ref_release(&r2);

    rayc_actor_info info;
    CU_ASSERT_EQUAL(rayc_actor_info_get(&a, &info), 0);
    CU_ASSERT_EQUAL(info.state, RAYC_ACTOR_ALIVE);
    CU_ASSERT(info.pid > 0);
    stop_cluster();
}

static void test_bad_arguments(void)
{
    CU_ASSERT_EQUAL_FATAL(start_one_node(2), 0);
    rayc_actor a;
    rayc_actor_options o;
    rayc_actor_options_init(&o);
    o.max_concurrency = 0;
    CU_ASSERT_EQUAL(rayc_actor_create("Counter", NULL, 0, &o, &a), RC_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(rayc_last_error(), "max_concurrency"));
    rayc_actor_options_init(&o);
    o.num_gpus = -1;
    CU_ASSERT_EQUAL(rayc_actor_create("Counter", NULL, 0, &o, &a), RC_EINVAL);
    rayc_actor_options_init(&o);
    o.get_if_exists = 1;
    CU_ASSERT_EQUAL(rayc_actor_create("Counter", NULL, 0, &o, &a), RC_EINVAL);
    CU_ASSERT_EQUAL(rayc_actor_create(NULL, NULL, 0, NULL, &a), RC_EINVAL);
    /* A class no library registers: the actor dies with the reason, calls say it. */
    CU_ASSERT_EQUAL_FATAL(rayc_actor_create("NoSuchClass", NULL, 0, NULL, &a), 0);
    rayc_error e;
    char msg[1024];
    call_i64(&a, "add", 1, &e, msg, sizeof(msg));
    CU_ASSERT_EQUAL(e, RAYC_ERR_ACTOR_DIED);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "NoSuchClass"));
    /* A constructor that fails: DEAD, with its message. */
    rayc_actor b;
    CU_ASSERT_EQUAL_FATAL(rayc_actor_create("Broken", NULL, 0, NULL, &b), 0);
    call_i64(&b, "anything", -1, &e, msg, sizeof(msg));
    CU_ASSERT_EQUAL(e, RAYC_ERR_ACTOR_DIED);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "Broken refuses to start"));
    rayc_actor_info info;
    CU_ASSERT_EQUAL(wait_state(&b, RAYC_ACTOR_DEAD, 10000, &info), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(info.death_cause, "Broken refuses to start"));
    /* An actor that needs more than any node has: unschedulable, then dead with the reason. */
    rayc_actor_options_init(&o);
    o.num_cpus = 64;
    rayc_actor big;
    CU_ASSERT_EQUAL_FATAL(rayc_actor_create("Counter", NULL, 0, &o, &big), 0);
    call_i64(&big, "add", 1, &e, msg, sizeof(msg));
    CU_ASSERT_EQUAL(e, RAYC_ERR_ACTOR_DIED);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "CPU"));
    /* An unknown handle. */
    rayc_actor ghost;
    memset(&ghost, 0x5a, sizeof(ghost));
    CU_ASSERT_EQUAL(rayc_actor_info_get(&ghost, &info), RC_ENOENT);
    call_i64(&ghost, "add", 1, &e, msg, sizeof(msg));
    CU_ASSERT_EQUAL(e, RAYC_ERR_ACTOR_DIED);
    stop_cluster();
}

static void test_max_concurrency(void)
{
    CU_ASSERT_EQUAL_FATAL(start_one_node(4), 0);
    rayc_actor_options o;
    rayc_actor_options_init(&o);
    o.max_concurrency = 4;
    rayc_actor many, one;
    CU_ASSERT_EQUAL_FATAL(rayc_actor_create("Counter", NULL, 0, &o, &many), 0);
    CU_ASSERT_EQUAL_FATAL(rayc_actor_create("Counter", NULL, 0, NULL, &one), 0);
    enum { N = 8 };
    rayc_ref refs[2 * N];
    int64_t ms = 300;
    rayc_arg args[] = {RAYC_ARG_VALUE(&ms, 8)};
    for (int i = 0; i < N; i++) {
        CU_ASSERT_EQUAL(rayc_actor_call(&many, "overlap", args, 1, NULL, &refs[i]), 0);
        CU_ASSERT_EQUAL(rayc_actor_call(&one, "overlap", args, 1, NULL, &refs[N + i]), 0);
    }
    rayc_object outs[2 * N];
    CU_ASSERT_EQUAL(rayc_get(refs, 2 * N, 60000, outs), 0);
    rayc_object_release(outs, 2 * N);
    for (int i = 0; i < 2 * N; i++)
        rayc_ref_release(&refs[i]);
    rayc_error e;
    int64_t m_many = call_i64(&many, "max_overlap", -1, &e, NULL, 0);
    int64_t m_one = call_i64(&one, "max_overlap", -1, &e, NULL, 0);
    fprintf(stderr, "\n  max calls at once: %lld (max_concurrency 4), %lld (default)\n", (long long)m_many,
            (long long)m_one);
    CU_ASSERT(m_many >= 2 && m_many <= 4);
    CU_ASSERT_EQUAL(m_one, 1);
    stop_cluster();
}

/* ---- names, handles, owners ------------------------------------------------------------- */

static void test_named_detached_and_handles(void)
{
    CU_ASSERT_EQUAL_FATAL(start_one_node(4), 0);
    rayc_actor_options o;
    rayc_actor_options_init(&o);
    o.name = "registry";
    rayc_actor a, b, c;
    CU_ASSERT_EQUAL_FATAL(rayc_actor_create("Counter", NULL, 0, &o, &a), 0);
    CU_ASSERT_EQUAL(rayc_actor_create("Counter", NULL, 0, &o, &b), RC_EEXIST);
    CU_ASSERT_PTR_NOT_NULL(strstr(rayc_last_error(), "registry"));
    o.get_if_exists = 1;
    CU_ASSERT_EQUAL(rayc_actor_create("Counter", NULL, 0, &o, &b), 0);
    CU_ASSERT_EQUAL(memcmp(a.id, b.id, sizeof(a.id)), 0);
    CU_ASSERT_EQUAL(rayc_get_actor("registry", NULL, &c), 0);
    CU_ASSERT_EQUAL(memcmp(a.id, c.id, sizeof(a.id)), 0);
    CU_ASSERT_EQUAL(rayc_get_actor("registry", "another-namespace", &c), RC_ENOENT);
    CU_ASSERT_EQUAL(rayc_get_actor("nobody", NULL, &c), RC_ENOENT);
    /* The same name in another namespace is another actor. */
    rayc_actor_options_init(&o);
    o.name = "registry";
    o.namespace_ = "another-namespace";
    rayc_actor d;
    CU_ASSERT_EQUAL(rayc_actor_create("Counter", NULL, 0, &o, &d), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(a.id, d.id, sizeof(a.id)), 0);

    /* Handles passed to tasks: the tasks call the actor as well. */
    rayc_error e;
    CU_ASSERT_EQUAL(call_i64(&a, "add", 10, &e, NULL, 0), 10);
    enum { T = 6 };
    rayc_ref refs[T];
    for (int i = 0; i < T; i++) {
        int64_t x = 1;
        rayc_arg args[] = {RAYC_ARG_VALUE(&a, sizeof(a)), RAYC_ARG_VALUE(&x, 8)};
        CU_ASSERT_EQUAL(rayc_submit("call_add", args, 2, NULL, &refs[i]), 0);
    }
    rayc_object outs[T];
    CU_ASSERT_EQUAL(rayc_get(refs, T, 60000, outs), 0);
    int bad = 0;
    for (int i = 0; i < T; i++) {
        bad += outs[i].error != RAYC_OK;
        if (outs[i].error)
            fprintf(stderr, "  call_add: %s\n", outs[i].error_message);
    }
    CU_ASSERT_EQUAL(bad, 0);
    rayc_object_release(outs, T);
    for (int i = 0; i < T; i++)
        rayc_ref_release(&refs[i]);
    CU_ASSERT_EQUAL(call_i64(&a, "add", 0, &e, NULL, 0), 10 + T);

    /* A detached actor outlives its creator's job; a named lookup from a new job finds it. */
    rayc_actor_options_init(&o);
    o.name = "keeper";
    o.detached = 1;
    rayc_actor k;
    CU_ASSERT_EQUAL_FATAL(rayc_actor_create("Counter", NULL, 0, &o, &k), 0);
    CU_ASSERT_EQUAL(call_i64(&k, "add", 42, &e, NULL, 0), 42);
    rayc_actor_info ainfo;
    CU_ASSERT_EQUAL(rayc_actor_info_get(&a, &ainfo), 0);
    rayc_shutdown(); /* the job ends: its non-detached actors go */
    rayc_init_options io;
    rayc_init_options_init(&io);
    io.address = C.gcs_address;
    io.code_search_path = ACTOR_LIB;
    io.namespace_ = "actors-test";
    CU_ASSERT_EQUAL_FATAL(rayc_init(&io), 0);
    rayc_actor k2;
    CU_ASSERT_EQUAL(rayc_get_actor("keeper", NULL, &k2), 0);
    CU_ASSERT_EQUAL(call_i64(&k2, "add", 1, &e, NULL, 0), 43);
    rayc_actor_info info;
    CU_ASSERT_EQUAL(wait_state(&a, RAYC_ACTOR_DEAD, 10000, &info), 0);
    CU_ASSERT(wait_pid_gone(ainfo.pid, 10000) == 0);
    CU_ASSERT_EQUAL(rayc_get_actor("registry", NULL, &c), RC_ENOENT); /* dead names are free */
    CU_ASSERT_EQUAL(rayc_actor_kill(&k2, 1), 0);
    CU_ASSERT_EQUAL(wait_state(&k2, RAYC_ACTOR_DEAD, 10000, &info), 0);
    stop_cluster();
}

static void test_owner_death(void)
{
    CU_ASSERT_EQUAL_FATAL(start_one_node(4), 0);
    struct {
        rayc_actor a;
        int64_t pid;
    } owned[2];
    for (int detached = 0; detached < 2; detached++) {
        int64_t d = detached;
        rayc_arg args[] = {RAYC_ARG_VALUE(&d, 8)};
        rayc_ref ref;
        CU_ASSERT_EQUAL_FATAL(rayc_submit("spawn_counter", args, 1, NULL, &ref), 0);
        rayc_object o;
        CU_ASSERT_EQUAL_FATAL(rayc_get(&ref, 1, 60000, &o), 0);
        CU_ASSERT_EQUAL_FATAL(o.error, RAYC_OK);
        CU_ASSERT_EQUAL_FATAL(o.size, sizeof(owned[0]));
        memcpy(&owned[detached], o.data, sizeof(owned[0]));
        rayc_object_release(&o, 1);
        rayc_ref_release(&ref);
    }
    rayc_actor_info info[2];
    for (int i = 0; i < 2; i++)
        CU_ASSERT_EQUAL(rayc_actor_info_get(&owned[i].a, &info[i]), 0);
    /* Kill the workers that own them: the non-detached actor dies with its owner. */
    for (int i = 0; i < 2; i++)
        kill((pid_t)owned[i].pid, SIGKILL);
    rayc_actor_info now;
    CU_ASSERT_EQUAL(wait_state(&owned[0].a, RAYC_ACTOR_DEAD, 15000, &now), 0);
    fprintf(stderr, "\n  owner died: %s\n", now.death_cause);
    CU_ASSERT(wait_pid_gone(info[0].pid, 10000) == 0);
    rayc_error e;
    char msg[1024];
    call_i64(&owned[0].a, "add", 1, &e, msg, sizeof(msg));
    CU_ASSERT_EQUAL(e, RAYC_ERR_ACTOR_DIED);
    CU_ASSERT(strstr(msg, "owner") != NULL);
    CU_ASSERT_EQUAL(call_i64(&owned[1].a, "add", 1, &e, NULL, 0), 2); /* detached: still there */
    CU_ASSERT(pid_alive(info[1].pid));
    rayc_actor_kill(&owned[1].a, 1);
    stop_cluster();
}

/* ---- restarts ----------------------------------------------------------------------------- */

static void test_restarts_then_error(void)
{
    CU_ASSERT_EQUAL_FATAL(start_one_node(4), 0);
    rayc_actor_options o;
    rayc_actor_options_init(&o);
    o.max_restarts = 2;
    int64_t start = 7;
    rayc_arg cargs[] = {RAYC_ARG_VALUE(&start, 8)};
    rayc_actor a;
    CU_ASSERT_EQUAL_FATAL(rayc_actor_create("Counter", cargs, 1, &o, &a), 0);
    rayc_error e;
    CU_ASSERT_EQUAL(call_i64(&a, "add", 1, &e, NULL, 0), 8);
    for (int round = 1; round <= 2; round++) {
        actor_where w;
        CU_ASSERT_EQUAL_FATAL(where(&a, &w), 0);
        /* The call that kills the worker has no retries: it fails with ACTOR_DIED. */
        call_i64(&a, "die", -1, &e, NULL, 0);
        CU_ASSERT_EQUAL(e, RAYC_ERR_ACTOR_DIED);
        CU_ASSERT(wait_pid_gone(w.pid, 10000) == 0);
        /* The next call waits for the new instance, which ran the constructor again. */
        CU_ASSERT_EQUAL(call_i64(&a, "add", 1, &e, NULL, 0), 8);
        rayc_actor_info info;
        CU_ASSERT_EQUAL(rayc_actor_info_get(&a, &info), 0);
        CU_ASSERT_EQUAL(info.num_restarts, round);
        CU_ASSERT_EQUAL(info.state, RAYC_ACTOR_ALIVE);
        CU_ASSERT_NOT_EQUAL(info.pid, w.pid);
    }
    /* Out of restarts: dead for good, and every call says why. */
    call_i64(&a, "die", -1, &e, NULL, 0);
    rayc_actor_info info;
    CU_ASSERT_EQUAL(wait_state(&a, RAYC_ACTOR_DEAD, 15000, &info), 0);
    fprintf(stderr, "\n  death cause: %s\n", info.death_cause);
    char msg[1024];
    call_i64(&a, "add", 1, &e, msg, sizeof(msg));
    CU_ASSERT_EQUAL(e, RAYC_ERR_ACTOR_DIED);
    CU_ASSERT(strstr(msg, "restart") != NULL || strstr(msg, "died") != NULL);

    /* Calls in flight when the worker is killed from outside: retried on the new instance
     * with max_task_retries, failed without. */
    rayc_actor_options_init(&o);
    o.max_restarts = -1;
    o.max_task_retries = -1;
    rayc_actor r;
    CU_ASSERT_EQUAL_FATAL(rayc_actor_create("Counter", cargs, 1, &o, &r), 0);
    rayc_actor_options_init(&o);
    o.max_restarts = 1;
    rayc_actor nr;
    CU_ASSERT_EQUAL_FATAL(rayc_actor_create("Counter", cargs, 1, &o, &nr), 0);
    actor_where wr, wn;
    CU_ASSERT_EQUAL_FATAL(where(&r, &wr), 0);
    CU_ASSERT_EQUAL_FATAL(where(&nr, &wn), 0);
    int64_t ms = 3000;
    rayc_arg sargs[] = {RAYC_ARG_VALUE(&ms, 8)};
    rayc_ref slow_r, slow_n;
    CU_ASSERT_EQUAL(rayc_actor_call(&r, "sleep", sargs, 1, NULL, &slow_r), 0);
    CU_ASSERT_EQUAL(rayc_actor_call(&nr, "sleep", sargs, 1, NULL, &slow_n), 0);
    usleep(500 * 1000);
    kill((pid_t)wr.pid, SIGKILL);
    kill((pid_t)wn.pid, SIGKILL);
    rayc_object out[2];
    rayc_ref both[2] = {slow_r, slow_n};
    CU_ASSERT_EQUAL(rayc_get(both, 2, 60000, out), 0);
    CU_ASSERT_EQUAL(out[0].error, RAYC_OK);
    CU_ASSERT_EQUAL(out[1].error, RAYC_ERR_ACTOR_DIED);
    rayc_object_release(out, 2);
    rayc_ref_release(&slow_r);
    rayc_ref_release(&slow_n);
    CU_ASSERT_EQUAL(call_i64(&nr, "add", 1, &e, NULL, 0), 8); /* restarted once */

    /* rayc_actor_kill: restarts are used unless no_restart. */
    CU_ASSERT_EQUAL(rayc_actor_kill(&r, 0), 0);
    CU_ASSERT_EQUAL(call_i64(&r, "add", 1, &e, NULL, 0), 8);
    CU_ASSERT_EQUAL(rayc_actor_kill(&r, 1), 0);
    CU_ASSERT_EQUAL(wait_state(&r, RAYC_ACTOR_DEAD, 10000, &info), 0);
    call_i64(&r, "add", 1, &e, msg, sizeof(msg));
    CU_ASSERT_EQUAL(e, RAYC_ERR_ACTOR_DIED);
    stop_cluster();
}

static void test_release_and_cancel(void)
{
    CU_ASSERT_EQUAL_FATAL(start_one_node(4), 0);
    rayc_actor a;
    CU_ASSERT_EQUAL_FATAL(rayc_actor_create("Counter", NULL, 0, NULL, &a), 0);
    actor_where w;
    CU_ASSERT_EQUAL_FATAL(where(&a, &w), 0);
    /* Queue a slow call, then calls behind it; cancel one that has not run. */
    int64_t ms = 1000;
    rayc_arg sargs[] = {RAYC_ARG_VALUE(&ms, 8)};
    rayc_ref slow, later[3];
    CU_ASSERT_EQUAL(rayc_actor_call(&a, "sleep", sargs, 1, NULL, &slow), 0);
    for (int i = 0; i < 3; i++) {
        int64_t x = 1;
        rayc_arg args[] = {RAYC_ARG_VALUE(&x, 8)};
        CU_ASSERT_EQUAL(rayc_actor_call(&a, "add", args, 1, NULL, &later[i]), 0);
    }
    CU_ASSERT_EQUAL(rayc_cancel(&later[1], 0), 0);
    rayc_object out[3];
    CU_ASSERT_EQUAL(rayc_get(later, 3, 60000, out), 0);
    CU_ASSERT_EQUAL(out[0].error, RAYC_OK);
    CU_ASSERT_EQUAL(out[1].error, RAYC_ERR_CANCELLED);
    CU_ASSERT_EQUAL(out[2].error, RAYC_OK);
    int64_t v = 0;
    if (!out[2].error)
        memcpy(&v, out[2].data, 8);
    CU_ASSERT_EQUAL(v, 2); /* the cancelled add never ran */
    rayc_object_release(out, 3);
    for (int i = 0; i < 3; i++)
        rayc_ref_release(&later[i]);
    rayc_ref_release(&slow);
    /* Released by its creator: it stops once its calls are done. */
    rayc_ref last;
    CU_ASSERT_EQUAL(rayc_actor_call(&a, "sleep", sargs, 1, NULL, &last), 0);
    CU_ASSERT_EQUAL(rayc_actor_release(&a), 0);
    rayc_object lo;
    CU_ASSERT_EQUAL(rayc_get(&last, 1, 60000, &lo), 0);
    CU_ASSERT_EQUAL(lo.error, RAYC_OK);
    rayc_object_release(&lo, 1);
    rayc_ref_release(&last);
    rayc_actor_info info;
    CU_ASSERT_EQUAL(wait_state(&a, RAYC_ACTOR_DEAD, 10000, &info), 0);
    CU_ASSERT(wait_pid_gone(w.pid, 10000) == 0);
    fprintf(stderr, "\n  released: %s\n", info.death_cause);
    stop_cluster();
}

/* ---- the GCS restarts (Redis) while actors run -------------------------------------------- */

static void test_gcs_restart_with_redis(void)
{
    const char *head[] = {"--head", "--num-cpus", "4", NULL};
    const char *const *nodes[] = {head};
    CU_ASSERT_EQUAL_FATAL(start_cluster(nodes, 1, 1), 0);
    rayc_actor_options o;
    rayc_actor_options_init(&o);
    o.name = "survivor";
    o.max_restarts = 1;
    o.max_task_retries = 1; /* the call right after the kill below may still reach the dead worker */
    rayc_actor a;
    CU_ASSERT_EQUAL_FATAL(rayc_actor_create("Counter", NULL, 0, &o, &a), 0);
    rayc_error e;
    CU_ASSERT_EQUAL(call_i64(&a, "add", 5, &e, NULL, 0), 5);
    rayc_actor_info before;
    CU_ASSERT_EQUAL(rayc_actor_info_get(&a, &before), 0);
    harness_gcs_kill(&C, SIGKILL);
    /* Calls go straight to the actor: they work while the GCS is down. */
    CU_ASSERT_EQUAL(call_i64(&a, "add", 1, &e, NULL, 0), 6);
    CU_ASSERT_EQUAL_FATAL(harness_gcs_start(&C), 0);
    CU_ASSERT_EQUAL(call_i64(&a, "add", 1, &e, NULL, 0), 7);
    /* The GCS reloaded the actor: same worker, same name, still restartable. */
    rayc_actor_info after;
    int64_t deadline = rc_mono_ms() + 15000;
    int rc;
    while ((rc = rayc_actor_info_get(&a, &after)) != 0 && rc_mono_ms() < deadline)
        usleep(100 * 1000);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(after.state, RAYC_ACTOR_ALIVE);
    CU_ASSERT_EQUAL(after.pid, before.pid);
    rayc_actor same;
    CU_ASSERT_EQUAL(rayc_get_actor("survivor", NULL, &same), 0);
    CU_ASSERT_EQUAL(memcmp(same.id, a.id, sizeof(a.id)), 0);
    /* A new actor after the restart works too, and the old one still restarts. */
    rayc_actor b;
    CU_ASSERT_EQUAL_FATAL(rayc_actor_create("Counter", NULL, 0, NULL, &b), 0);
    CU_ASSERT_EQUAL(call_i64(&b, "add", 3, &e, NULL, 0), 3);
    kill((pid_t)before.pid, SIGKILL);
    CU_ASSERT(wait_pid_gone(before.pid, 10000) == 0);
    CU_ASSERT_EQUAL(call_i64(&a, "add", 1, &e, NULL, 0), 1);
    rayc_actor_info info;
    CU_ASSERT_EQUAL(rayc_actor_info_get(&a, &info), 0);
    CU_ASSERT_EQUAL(info.num_restarts, 1);
    stop_cluster();
}

static const unit_case cases[] = {
    UNIT_CASE(test_calls_in_order),        UNIT_CASE(test_bad_arguments),
    UNIT_CASE(test_max_concurrency),       UNIT_CASE(test_named_detached_and_handles),
    UNIT_CASE(test_owner_death),           UNIT_CASE(test_restarts_then_error),
    UNIT_CASE(test_release_and_cancel),    UNIT_CASE(test_gcs_restart_with_redis),
};

int main(void)
{
    return unit_run("actors", cases, UNIT_N(cases));
}
