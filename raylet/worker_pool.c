/*
 * The worker pool: see worker_pool.h for the life of a worker.
 *
 * Invariants: every worker is in p->workers (a list) and p->by_id until it is reaped;
 * n_starting counts workers in STARTING (each holds a start slot), n_idle those in IDLE.
 * A pending pop is in p->pops (FIFO) until it is delivered, failed or cancelled; pop->w is
 * the starting worker it claimed (and w->claimed_by points back), or NULL while it waits
 * for a start slot or its job's config. A pop with no callback is a prestart placeholder:
 * it only makes a worker start, and a real pop of its key takes over its place.
 *
 * A job's record (pool__job) holds what its workers are started with, copied from its
 * config; a prestart asked for before the config is known waits in it (the config says
 * the job's language).
 *
 * Callbacks (pop callbacks, on_worker_dead, fetch_job) run only after the pool's own
 * bookkeeping is done, so they may call back into the pool. pool__start_pending guards
 * against re-entry and repeats when it was asked again meanwhile.
 *
 * Loop thread only.
 */
#define _GNU_SOURCE
#include "worker_pool.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rc_alloc.h"
#include "rc_buf.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_json.h"
#include "rc_list.h"
#include "rc_log.h"
#include "rc_map.h"
#include "rc_time.h"

extern char **environ;

enum { POOL__TICK_MS = 100, POOL__MAX_GPUS = 32 };

/* What a Python worker runs: Ray's worker entry point, which rayc's ray package provides. */
#define POOL__PYTHON_MODULE "ray._private.workers.default_worker"

struct worker_pop {
    worker_key key;
    worker_pop_cb cb; /* NULL: a prestart placeholder */
    void *arg;
    worker *w;
    rc_list link; /* on p->pops */
    /* Set while worker_pool_pop creates it: a failure then is returned from there (failed,
     * message) instead of reaching cb. */
    int creating, failed, fail_rc;
    char message[300];
};

typedef enum pool__job_state { JOB_UNKNOWN, JOB_FETCHING, JOB_KNOWN } pool__job_state;

/* A job, as its workers are started: from its JobConfig (pool__job_configure). */
typedef struct pool__job {
    pool__job_state state;
    char *code_search_path; /* "a:b", NULL for the default */
    char *python_path;      /* its Python workers' PYTHONPATH, NULL for none */
    char *cwd;              /* its Python workers' directory, NULL for the raylet's */
    char **env_vars;        /* "K=V" from its runtime env, for all its workers */
    size_t n_env_vars;
    int is_python;  /* its driver is Python: prestarts start Python workers */
    int prestart;   /* workers to prestart once its config is known */
    int cwd_warned; /* a missing cwd was logged once */
    int dead;
} pool__job;

struct worker_pool {
    uv_loop_t *loop;
    worker_pool_callbacks cbs;
    char *command, *python, *session_dir, *socket, *node_id_hex, *node_ip, *gcs_address;
    char *default_path, *visible_gpus;
    double num_cpus; /* the node's: defaults of the limits below */

    rc_list workers; /* worker.link */
    rc_map by_id;    /* worker id -> worker */
    size_t n_workers, n_starting, n_idle;
    rc_list pops; /* worker_pop.link, oldest first */
    rc_map jobs; /* job id -> pool__job */

    uv_signal_t sigchld;
    uv_timer_t tick;
    int tick_running;
    int in_start_pending, start_again;
    int closing, handles_open;
};

static int pool__key_eq(const worker_key *a, const worker_key *b)
{
    return a->language == b->language && a->gpu_mask == b->gpu_mask && a->omp_threads == b->omp_threads &&
           memcmp(a->job_id, b->job_id, RC_JOB_ID_SIZE) == 0;
}

void worker_key_init(worker_key *key, const uint8_t job_id[RC_JOB_ID_SIZE], Ray__Rpc__Language language,
                     uint32_t gpu_mask, double cpus)
{
    memset(key, 0, sizeof(*key));
    memcpy(key->job_id, job_id, RC_JOB_ID_SIZE);
    key->language = language;
    key->gpu_mask = gpu_mask;
    double threads = ceil(cpus - 1e-9);
    key->omp_threads = threads < 1 ? 1 : threads > 1e6 ? 1000000 : (uint32_t)threads;
}

int worker_language_supported(Ray__Rpc__Language language)
{
    return language == RAY__RPC__LANGUAGE__PYTHON || language == RAY__RPC__LANGUAGE__CPP;
}

const char *worker_language_name(Ray__Rpc__Language language)
{
    switch (language) {
    case RAY__RPC__LANGUAGE__PYTHON:
        return "Python";
    case RAY__RPC__LANGUAGE__CPP:
        return "C++";
    case RAY__RPC__LANGUAGE__JAVA:
        return "Java";
    default:
        return "an unknown language";
    }
}

static void pool__log_path(const worker_pool *p, const worker *w, const char *ext, char *out, size_t len)
{
    snprintf(out, len, "%s/logs/worker-%.8s.%s", p->session_dir, w->id_hex, ext);
}

char *worker_pool_gpu_env(uint32_t mask, const char *visible, char *buf, size_t len)
{
    const char *tokens[POOL__MAX_GPUS];
    size_t tlen[POOL__MAX_GPUS], n_tokens = 0;
    for (const char *s = visible; s && *s && n_tokens < POOL__MAX_GPUS;) {
        const char *comma = strchr(s, ',');
        size_t n = comma ? (size_t)(comma - s) : strlen(s);
        tokens[n_tokens] = s;
        tlen[n_tokens++] = n;
        s = comma ? comma + 1 : s + n;
    }
    size_t used = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < POOL__MAX_GPUS && used < len; i++) {
        if (!(mask & (1u << i)))
            continue;
        int n = i < n_tokens ? snprintf(buf + used, len - used, "%s%.*s", used ? "," : "", (int)tlen[i], tokens[i])
                             : snprintf(buf + used, len - used, "%s%u", used ? "," : "", i);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    return buf;
}

/* The limits, read when used: the GCS's configuration arrives after the pool exists. */
static size_t pool__max_starting(const worker_pool *p)
{
    if (rc_cfg.maximum_startup_concurrency > 0)
        return (size_t)rc_cfg.maximum_startup_concurrency;
    return (size_t)fmax(1, ceil(p->num_cpus));
}

static size_t pool__soft_limit(const worker_pool *p)
{
    if (rc_cfg.num_workers_soft_limit >= 0)
        return (size_t)rc_cfg.num_workers_soft_limit;
    return (size_t)ceil(p->num_cpus);
}

/* ---- jobs --------------------------------------------------------------------------- */

static pool__job *pool__job_get(worker_pool *p, const uint8_t id[RC_JOB_ID_SIZE])
{
    pool__job *j = rc_map_get(&p->jobs, id, RC_JOB_ID_SIZE);
    if (!j) {
        j = RC_NEW(pool__job);
        rc_map_put(&p->jobs, id, RC_JOB_ID_SIZE, j);
    }
    return j;
}

/* Forgets what j's config said. */
static void pool__job_clear(pool__job *j)
{
    rc_free(j->code_search_path);
    rc_free(j->python_path);
    rc_free(j->cwd);
    for (size_t i = 0; i < j->n_env_vars; i++)
        rc_free(j->env_vars[i]);
    rc_free(j->env_vars);
    j->code_search_path = j->python_path = j->cwd = NULL;
    j->env_vars = NULL;
    j->n_env_vars = 0;
    j->is_python = j->cwd_warned = 0;
}

static void pool__job_free(void *v)
{
    pool__job *j = v;
    pool__job_clear(j);
    rc_free(j);
}

/* The n strings joined with ':' (freed with rc_free), empty ones left out if skip_empty;
 * NULL when nothing is left. */
static char *pool__join(char *const *strs, size_t n, int skip_empty)
{
    rc_buf b = RC_BUF_INIT;
    int any = 0;
    for (size_t i = 0; i < n; i++) {
        if (skip_empty && !*strs[i])
            continue;
        if (any)
            rc_buf_putc(&b, ':');
        rc_buf_puts(&b, strs[i]);
        any = 1;
    }
    return any ? rc_buf_detach(&b) : NULL;
}

/* Copies what j's workers need from cfg (NULL: nothing) over what an earlier config said. */
static void pool__job_configure(pool__job *j, const uint8_t job_id[RC_JOB_ID_SIZE], const Ray__Rpc__JobConfig *cfg)
{
    pool__job_clear(j);
    if (!cfg)
        return;
    /* Empty code search path entries are kept, as they always were: "" is a path given. */
    j->code_search_path = pool__join(cfg->code_search_path, cfg->n_code_search_path, 0);
    j->is_python = cfg->n_py_driver_sys_path > 0;
    j->python_path = pool__join(cfg->py_driver_sys_path, cfg->n_py_driver_sys_path, 1);
    if (cfg->rayc_driver_cwd && *cfg->rayc_driver_cwd)
        j->cwd = rc_strdup(cfg->rayc_driver_cwd);
    const char *runtime_env = cfg->runtime_env_info ? cfg->runtime_env_info->serialized_runtime_env : NULL;
    if (!runtime_env || !*runtime_env)
        return;
    char err[600], hex[RC_ID_HEX_MAX];
    rc_id_hex(job_id, RC_JOB_ID_SIZE, hex);
    if (worker_pool_parse_runtime_env(runtime_env, &j->env_vars, &j->n_env_vars, err, sizeof(err)) < 0)
        RC_WARN("worker_pool: job %s: its runtime env is ignored (its workers start without its env_vars): %s", hex,
                err);
    else if (*err)
        RC_WARN("worker_pool: job %s: %s", hex, err);
}

/* The directory j's Python workers start in: its driver's when that exists here, else
 * NULL (the raylet's). Checked at each start: the directory may come or go. */
static const char *pool__job_cwd(pool__job *j, const uint8_t job_id[RC_JOB_ID_SIZE])
{
    if (!j || !j->cwd)
        return NULL;
    struct stat st;
    if (stat(j->cwd, &st) == 0 && S_ISDIR(st.st_mode))
        return j->cwd;
    if (!j->cwd_warned) {
        char hex[RC_ID_HEX_MAX];
        RC_WARN("worker_pool: job %s's driver ran in %s, which is not a directory on this node; its Python workers "
                "start in the raylet's working directory",
                rc_id_hex(job_id, RC_JOB_ID_SIZE, hex), j->cwd);
        j->cwd_warned = 1;
    }
    return NULL;
}

/* ---- pops --------------------------------------------------------------------------- */

/* The first worker (pop) of p's list, the one after w (pop); NULL at the end. */
static worker *pool__first_worker(const worker_pool *p)
{
    return rc_list_entry_or_null(rc_list_first(&p->workers), worker, link);
}

static worker *pool__next_worker(const worker_pool *p, const worker *w)
{
    return rc_list_entry_or_null(rc_list_next(&p->workers, &w->link), worker, link);
}

static worker_pop *pool__first_pop(const worker_pool *p)
{
    return rc_list_entry_or_null(rc_list_first(&p->pops), worker_pop, link);
}

static worker_pop *pool__next_pop(const worker_pool *p, const worker_pop *pop)
{
    return rc_list_entry_or_null(rc_list_next(&p->pops, &pop->link), worker_pop, link);
}

static void pool__pop_unlink(worker_pool *p, worker_pop *pop)
{
    rc_list_remove(&pop->link);
    if (pop->w && pop->w->claimed_by == pop)
        pop->w->claimed_by = NULL;
    pop->w = NULL;
}

static void pool__pop_append(worker_pool *p, worker_pop *pop)
{
    rc_list_insert_tail(&p->pops, &pop->link);
}

/* Ends pop with an error: its callback runs, unless worker_pool_pop is still creating it
 * (then the error is returned from there). */
static void pool__pop_fail(worker_pool *p, worker_pop *pop, int rc, const char *message)
{
    pool__pop_unlink(p, pop);
    if (pop->creating) {
        snprintf(pop->message, sizeof(pop->message), "%s", message);
        pop->failed = 1;
        pop->fail_rc = rc;
        return;
    }
    worker_pop_cb cb = pop->cb;
    void *arg = pop->arg;
    rc_free(pop);
    if (cb)
        cb(NULL, rc, message, arg);
}

/* Hands w (registered) to pop, which leaves the queue. */
static void pool__pop_deliver(worker_pool *p, worker_pop *pop, worker *w)
{
    pool__pop_unlink(p, pop);
    worker_pop_cb cb = pop->cb;
    void *arg = pop->arg;
    rc_free(pop);
    w->state = WORKER_LEASED;
    cb(w, 0, "", arg);
}

/* ---- workers ------------------------------------------------------------------------ */

static void pool__tick(uv_timer_t *t);

static void pool__tick_ensure(worker_pool *p)
{
    if (!p->tick_running && !p->closing) {
        uv_timer_start(&p->tick, pool__tick, POOL__TICK_MS, POOL__TICK_MS);
        p->tick_running = 1;
    }
}

static void pool__worker_unlink(worker_pool *p, worker *w)
{
    rc_list_remove(&w->link);
    rc_map_remove(&p->by_id, w->id, RC_WORKER_ID_SIZE);
    p->n_workers--;
}

/* 1 for a variable a worker must not inherit: those the pool sets, and the credentials of
 * whoever started the raylet (an admin token, a certificate): a worker's only credential
 * is the one its raylet gives it for its job (GetCredentials, ARCHITECTURE §14). */
static int pool__env_dropped(const char *var)
{
    static const char *const names[] = {
        "CUDA_VISIBLE_DEVICES=", "OMP_NUM_THREADS=", "RAYC_AUTH_TOKEN=", "RAYC_AUTH_TOKEN_PATH=",
        "RAYC_TLS_CERT=",        "RAYC_TLS_KEY=",    "RAYC_TLS_PRESENT=",
    };
    for (size_t i = 0; i < RC_ARRAY_LEN(names); i++)
        if (!strncmp(var, names[i], strlen(names[i])))
            return 1;
    return 0;
}

/* A worker's environment being built: NULL-terminated "NAME=value" strings, all owned
 * (pool__env_free frees them). */
typedef struct pool__env {
    char **vars;
    size_t n, cap;
} pool__env;

static size_t pool__env_name_len(const char *var)
{
    const char *eq = strchr(var, '=');
    return eq ? (size_t)(eq - var) : strlen(var);
}

static void pool__env_append(pool__env *e, char *var)
{
    if (e->n + 2 > e->cap) {
        e->cap = e->cap ? 2 * e->cap : 64;
        e->vars = rc_realloc(e->vars, e->cap * sizeof(*e->vars));
    }
    e->vars[e->n++] = var;
    e->vars[e->n] = NULL;
}

/* Sets var (taken over), replacing the variable of the same name if there is one. */
static void pool__env_put(pool__env *e, char *var)
{
    size_t len = pool__env_name_len(var);
    for (size_t i = 0; i < e->n; i++) {
        if (pool__env_name_len(e->vars[i]) == len && !strncmp(e->vars[i], var, len)) {
            rc_free(e->vars[i]);
            e->vars[i] = var;
            return;
        }
    }
    pool__env_append(e, var);
}

static char *pool__env_var(const char *name, const char *value)
{
    rc_buf b = RC_BUF_INIT;
    rc_buf_printf(&b, "%s=%s", name, value);
    return rc_buf_detach(&b);
}

static void pool__env_free(pool__env *e)
{
    for (size_t i = 0; i < e->n; i++)
        rc_free(e->vars[i]);
    rc_free(e->vars);
}

/* Builds the environment of a worker of key (job: its record, NULL if it has none): ours
 * minus pool__env_dropped's, then the key's GPUs and threads, then the job's env_vars
 * (which override ours), then a Python worker's PYTHONPATH: the env_vars one first, then
 * its driver's path. */
static void pool__env_build(const worker_pool *p, const worker_key *key, const pool__job *job, pool__env *e)
{
    for (char **v = environ; *v; v++)
        if (!pool__env_dropped(*v))
            pool__env_append(e, rc_strdup(*v));
    char buf[200];
    pool__env_put(e, pool__env_var("CUDA_VISIBLE_DEVICES", worker_pool_gpu_env(key->gpu_mask, p->visible_gpus, buf,
                                                                               sizeof(buf))));
    snprintf(buf, sizeof(buf), "%u", key->omp_threads);
    pool__env_put(e, pool__env_var("OMP_NUM_THREADS", buf));
    if (!job)
        return;
    const char *user_path = NULL;
    for (size_t i = 0; i < job->n_env_vars; i++) {
        pool__env_put(e, rc_strdup(job->env_vars[i]));
        if (!strncmp(job->env_vars[i], "PYTHONPATH=", 11))
            user_path = job->env_vars[i] + 11;
    }
    if (key->language != RAY__RPC__LANGUAGE__PYTHON || !job->python_path)
        return;
    rc_buf path = RC_BUF_INIT;
    rc_buf_printf(&path, "PYTHONPATH=%s%s%s", user_path ? user_path : "", user_path && *user_path ? ":" : "",
                  job->python_path);
    pool__env_put(e, rc_buf_detach(&path));
}

/* path made absolute against our working directory (a Python worker may start in
 * another); a bare name stays, for PATH. Freed with rc_free. */
static char *pool__absolute(const char *path)
{
    char cwd[PATH_MAX];
    if (path[0] == '/' || !strchr(path, '/') || !getcwd(cwd, sizeof(cwd)))
        return rc_strdup(path);
    rc_buf b = RC_BUF_INIT;
    rc_buf_printf(&b, "%s/%s", cwd, path);
    return rc_buf_detach(&b);
}

/* An env_vars entry a worker cannot be given, and why; NULL if it can. */
static const char *pool__env_entry_refused(const rc_json *it)
{
    if (!it->key_len || strlen(it->key) != it->key_len || strchr(it->key, '='))
        return "is not a name an environment can hold";
    if (it->type != RC_JSON_STRING)
        return "has a value that is not text";
    if (strlen(it->str) != it->str_len)
        return "has a value with a NUL character";
    rc_buf var = RC_BUF_INIT;
    rc_buf_printf(&var, "%s=", it->key);
    int dropped = pool__env_dropped(rc_buf_cstr(&var));
    rc_buf_free(&var);
    return dropped ? "is set by the raylet itself" : NULL;
}

int worker_pool_parse_runtime_env(const char *json, char ***vars, size_t *n, char *err, size_t errlen)
{
    *vars = NULL;
    *n = 0;
    err[0] = '\0';
    rc_json *root;
    char perr[200];
    if (rc_json_parse(json, strlen(json), &root, perr, sizeof(perr)) < 0) {
        snprintf(err, errlen, "it is not JSON: %s", perr);
        return RC_EPARSE;
    }
    int rc = 0;
    const rc_json *env_vars = rc_json_get(root, "env_vars");
    if (root->type != RC_JSON_OBJECT) {
        snprintf(err, errlen, "it is a JSON %s, not an object such as {\"env_vars\": {\"K\": \"V\"}}",
                 rc_json_type_name(root->type));
        rc = RC_EPARSE;
    } else if (env_vars && env_vars->type != RC_JSON_OBJECT && env_vars->type != RC_JSON_NULL) {
        snprintf(err, errlen, "its env_vars is a JSON %s, not an object of names and text values",
                 rc_json_type_name(env_vars->type));
        rc = RC_EPARSE;
    } else if (env_vars && env_vars->type == RC_JSON_OBJECT) {
        rc_buf left_out = RC_BUF_INIT;
        *vars = rc_calloc(env_vars->n_items + 1, sizeof(**vars));
        for (size_t i = 0; i < env_vars->n_items; i++) {
            const rc_json *it = &env_vars->items[i];
            const char *why = pool__env_entry_refused(it);
            if (why)
                rc_buf_printf(&left_out, "%s\"%.64s\" %s", left_out.len ? "; " : "", it->key, why);
            else
                (*vars)[(*n)++] = pool__env_var(it->key, it->str);
        }
        if (left_out.len)
            snprintf(err, errlen, "runtime env env_vars left out: %s", rc_buf_cstr(&left_out));
        rc_buf_free(&left_out);
    }
    rc_json_free(root);
    return rc;
}

/* Starts a worker process for key. Returns 0 with the STARTING worker in *out, or RC_ESYS
 * with message saying why. */
static int pool__spawn(worker_pool *p, const worker_key *key, worker **out, char *message, size_t mlen)
{
    worker *w = RC_NEW(worker);
    rc_id_random(w->id, RC_WORKER_ID_SIZE);
    rc_id_hex(w->id, RC_WORKER_ID_SIZE, w->id_hex);
    w->key = *key;
    char job_hex[RC_ID_HEX_MAX], out_path[PATH_MAX], err_path[PATH_MAX];
    rc_id_hex(key->job_id, RC_JOB_ID_SIZE, job_hex);
    pool__log_path(p, w, "out", out_path, sizeof(out_path));
    pool__log_path(p, w, "err", err_path, sizeof(err_path));

    pool__job *job = rc_map_get(&p->jobs, key->job_id, RC_JOB_ID_SIZE);
    const char *path = job && job->code_search_path ? job->code_search_path : p->default_path;
    int python = key->language == RAY__RPC__LANGUAGE__PYTHON;
    char *program = python ? p->python : p->command;
    char *argv[20];
    int n = 0;
    argv[n++] = program;
    if (python) {
        argv[n++] = "-m";
        argv[n++] = POOL__PYTHON_MODULE;
    }
    argv[n++] = "--raylet-socket";
    argv[n++] = p->socket;
    argv[n++] = "--node-id";
    argv[n++] = p->node_id_hex;
    argv[n++] = "--node-ip-address";
    argv[n++] = p->node_ip;
    argv[n++] = "--worker-id";
    argv[n++] = w->id_hex;
    argv[n++] = "--job-id";
    argv[n++] = job_hex;
    argv[n++] = "--gcs-address";
    argv[n++] = p->gcs_address;
    if (!python && path && *path) { /* a Python worker imports through PYTHONPATH instead */
        argv[n++] = "--code-search-path";
        argv[n++] = (char *)path;
    }
    argv[n] = NULL;

    pool__env env = {0};
    pool__env_build(p, key, job, &env);
    const char *cwd = python ? pool__job_cwd(job, key->job_id) : NULL;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, err_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    /* After the opens: the log paths may be relative to our directory. */
    if (cwd)
        posix_spawn_file_actions_addchdir_np(&fa, cwd);
    /* The raylet ignores SIGPIPE and watches SIGCHLD; a worker starts with neither. Its own
     * process group keeps a terminal's ^C away from it: the raylet decides when it dies. */
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    int reset[] = {SIGPIPE, SIGCHLD, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < RC_ARRAY_LEN(reset); i++)
        sigaddset(&defaults, reset[i]);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
    /* A bare program name ("python3") is looked up in PATH, as a shell would. */
    int err = strchr(program, '/') ? posix_spawn(&w->pid, program, &fa, &attr, argv, env.vars)
                                   : posix_spawnp(&w->pid, program, &fa, &attr, argv, env.vars);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    pool__env_free(&env);
    if (err != 0) {
        snprintf(message, mlen, "cannot start %s worker program %s%s%s: %s", worker_language_name(key->language),
                 program, cwd ? " in " : "", cwd ? cwd : "", strerror(err));
        RC_ERROR("worker_pool: %s", message);
        rc_free(w);
        return RC_ESYS;
    }
    w->state = WORKER_STARTING;
    w->started_ms = rc_mono_ms();
    rc_list_insert_head(&p->workers, &w->link);
    rc_map_put(&p->by_id, w->id, RC_WORKER_ID_SIZE, w);
    p->n_workers++;
    p->n_starting++;
    pool__tick_ensure(p);
    char gpus[200];
    RC_INFO("worker_pool: started %s worker %.8s (pid %d) for job %s, GPUs [%s], %u OpenMP threads",
            worker_language_name(key->language), w->id_hex, (int)w->pid, job_hex,
            worker_pool_gpu_env(key->gpu_mask, p->visible_gpus, gpus, sizeof(gpus)), key->omp_threads);
    *out = w;
    return 0;
}

/* Starts workers for waiting pops while start slots are free and their jobs are known. */
static void pool__start_pending(worker_pool *p)
{
    if (p->in_start_pending) {
        p->start_again = 1;
        return;
    }
    p->in_start_pending = 1;
    do {
        p->start_again = 0;
        worker_pop *next;
        for (worker_pop *pop = pool__first_pop(p); pop && !p->closing; pop = next) {
            next = pool__next_pop(p, pop);
            if (pop->w)
                continue;
            if (p->n_starting >= pool__max_starting(p))
                break;
            pool__job *job = pool__job_get(p, pop->key.job_id);
            if (job->state == JOB_UNKNOWN) {
                if (p->cbs.fetch_job) {
                    job->state = JOB_FETCHING;
                    p->cbs.fetch_job(p->cbs.arg, pop->key.job_id);
                    p->start_again = 1; /* the answer may have come already; pops may have changed */
                    break;
                }
                job->state = JOB_KNOWN;
            }
            if (job->state != JOB_KNOWN)
                continue;
            worker *w;
            char message[300];
            if (pool__spawn(p, &pop->key, &w, message, sizeof(message)) < 0) {
                pool__pop_fail(p, pop, RC_ESYS, message);
                p->start_again = 1;
                break;
            }
            pop->w = w;
            w->claimed_by = pop;
        }
    } while (p->start_again && !p->closing);
    p->in_start_pending = 0;
}

/* w is registered and nobody claimed it: a waiting pop of its key gets it, else it idles. */
static void pool__make_idle(worker_pool *p, worker *w)
{
    w->lease = NULL;
    for (worker_pop *pop = pool__first_pop(p); pop; pop = pool__next_pop(p, pop)) {
        if (pop->cb && !pop->w && pool__key_eq(&pop->key, &w->key)) {
            pool__pop_deliver(p, pop, w);
            return;
        }
    }
    w->state = WORKER_IDLE;
    w->idle_since_ms = rc_mono_ms();
    p->n_idle++;
}

void worker_pool_kill(worker_pool *p, worker *w, const char *why)
{
    if (w->state == WORKER_KILLED)
        return;
    RC_INFO("worker_pool: killing worker %.8s (pid %d): %s", w->id_hex, (int)w->pid, why);
    snprintf(w->kill_reason, sizeof(w->kill_reason), "%s", why);
    if (w->state == WORKER_STARTING)
        p->n_starting--;
    else if (w->state == WORKER_IDLE)
        p->n_idle--;
    w->state = WORKER_KILLED;
    kill(w->pid, SIGKILL);
    worker_pop *pop = w->claimed_by;
    if (pop) {
        w->claimed_by = NULL;
        pop->w = NULL;
        if (pop->cb) {
            char message[600];
            snprintf(message, sizeof(message), "the worker started for this lease was killed: %s", why);
            pool__pop_fail(p, pop, RC_ECANCELED, message);
        } else {
            pool__pop_unlink(p, pop);
            rc_free(pop);
        }
    }
    pool__start_pending(p);
}

static void pool__describe_exit(int status, char *out, size_t len)
{
    if (WIFEXITED(status))
        snprintf(out, len, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(out, len, "was killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(out, len, "ended (status 0x%x)", status);
}

static void pool__reaped(worker_pool *p, worker *w, int status)
{
    char why[160], err_path[PATH_MAX];
    pool__describe_exit(status, why, sizeof(why));
    pool__log_path(p, w, "err", err_path, sizeof(err_path));
    if (w->state == WORKER_STARTING) {
        p->n_starting--;
        worker_pop *pop = w->claimed_by;
        if (pop) {
            w->claimed_by = NULL;
            pop->w = NULL;
            if (pop->cb) {
                char message[PATH_MAX + 300];
                snprintf(message, sizeof(message), "worker %.8s %s before it registered; see %s", w->id_hex, why,
                         err_path);
                pool__pop_fail(p, pop, RC_EUNAVAIL, message);
            } else {
                pool__pop_unlink(p, pop);
                rc_free(pop);
            }
        }
        RC_WARN("worker_pool: worker %.8s (pid %d) %s before it registered; see %s", w->id_hex, (int)w->pid, why,
                err_path);
    } else if (w->state == WORKER_IDLE) {
        p->n_idle--;
    }
    if (w->state != WORKER_KILLED && w->state != WORKER_STARTING)
        RC_INFO("worker_pool: worker %.8s (pid %d) %s", w->id_hex, (int)w->pid, why);
    w->state = WORKER_KILLED;
    w->exit_status = status;
    pool__worker_unlink(p, w);
    if (p->cbs.on_worker_dead && !p->closing)
        p->cbs.on_worker_dead(p->cbs.arg, w, why);
    rc_free(w);
    pool__start_pending(p);
}

static void pool__on_sigchld(uv_signal_t *h, int signum)
{
    worker_pool *p = h->data;
    (void)signum;
    worker *next;
    for (worker *w = pool__first_worker(p); w; w = next) {
        next = pool__next_worker(p, w);
        int status;
        if (waitpid(w->pid, &status, WNOHANG) == w->pid) {
            pool__reaped(p, w, status);
            next = pool__first_worker(p); /* callbacks may have changed the list: start over */
        }
    }
}

static void pool__tick(uv_timer_t *t)
{
    worker_pool *p = t->data;
    int64_t now = rc_mono_ms();
    worker *next;
    for (worker *w = pool__first_worker(p); w; w = next) {
        next = pool__next_worker(p, w);
        if (w->state != WORKER_STARTING || now - w->started_ms < rc_cfg.worker_register_timeout_ms)
            continue;
        char err_path[PATH_MAX], why[PATH_MAX + 200];
        pool__log_path(p, w, "err", err_path, sizeof(err_path));
        snprintf(why, sizeof(why), "worker %.8s did not register within %lld ms; see %s", w->id_hex,
                 (long long)rc_cfg.worker_register_timeout_ms, err_path);
        worker_pool_kill(p, w, why);
        next = pool__first_worker(p);
    }
    /* Idle workers beyond the soft limit, the longest idle first. */
    size_t alive = 0;
    for (worker *w = pool__first_worker(p); w; w = pool__next_worker(p, w))
        alive += w->state != WORKER_KILLED;
    while (alive > pool__soft_limit(p)) {
        worker *oldest = NULL;
        for (worker *w = pool__first_worker(p); w; w = pool__next_worker(p, w))
            if (w->state == WORKER_IDLE && now - w->idle_since_ms >= rc_cfg.idle_worker_timeout_ms &&
                (!oldest || w->idle_since_ms < oldest->idle_since_ms))
                oldest = w;
        if (!oldest)
            break;
        worker_pool_kill(p, oldest, "idle for too long, and the node has more workers than num_workers_soft_limit");
        alive--;
    }
    if (rc_list_empty(&p->workers)) {
        uv_timer_stop(&p->tick);
        p->tick_running = 0;
    }
}

/* ---- public ------------------------------------------------------------------------- */

int worker_pool_create(uv_loop_t *loop, const worker_pool_config *cfg, const worker_pool_callbacks *cbs,
                       worker_pool **out)
{
    worker_pool *p = RC_NEW(worker_pool);
    p->loop = loop;
    p->cbs = *cbs;
    p->command = rc_strdup(cfg->worker_command);
    p->python = pool__absolute(cfg->python_executable);
    p->session_dir = rc_strdup(cfg->session_dir);
    p->socket = rc_strdup(cfg->raylet_socket);
    p->node_id_hex = rc_strdup(cfg->node_id_hex);
    p->node_ip = rc_strdup(cfg->node_ip);
    p->gcs_address = rc_strdup(cfg->gcs_address);
    p->default_path = cfg->default_code_search_path && *cfg->default_code_search_path
                          ? rc_strdup(cfg->default_code_search_path)
                          : NULL;
    const char *visible = getenv("CUDA_VISIBLE_DEVICES");
    p->visible_gpus = visible && *visible ? rc_strdup(visible) : NULL;
    p->num_cpus = cfg->num_cpus;
    rc_map_init(&p->by_id);
    rc_list_init(&p->workers);
    rc_list_init(&p->pops);
    rc_map_init(&p->jobs);
    uv_signal_init(loop, &p->sigchld);
    uv_timer_init(loop, &p->tick);
    p->sigchld.data = p->tick.data = p;
    p->handles_open = 2;
    int rc = uv_signal_start(&p->sigchld, pool__on_sigchld, SIGCHLD);
    if (rc < 0) {
        RC_ERROR("worker_pool: cannot watch SIGCHLD: %s", uv_strerror(rc));
        worker_pool_destroy(p);
        return RC_ESYS;
    }
    *out = p;
    return 0;
}

static void pool__closed(uv_handle_t *h)
{
    worker_pool *p = h->data;
    if (--p->handles_open)
        return;
    rc_free(p->command);
    rc_free(p->python);
    rc_free(p->session_dir);
    rc_free(p->socket);
    rc_free(p->node_id_hex);
    rc_free(p->node_ip);
    rc_free(p->gcs_address);
    rc_free(p->default_path);
    rc_free(p->visible_gpus);
    rc_free(p);
}

void worker_pool_destroy(worker_pool *p)
{
    if (!p)
        return;
    p->closing = 1;
    worker_pop *pop;
    while ((pop = pool__first_pop(p))) {
        pool__pop_unlink(p, pop);
        rc_free(pop);
    }
    size_t killed = 0;
    for (worker *w = pool__first_worker(p); w; w = pool__next_worker(p, w)) {
        kill(w->pid, SIGKILL);
        killed++;
    }
    worker *w;
    while ((w = pool__first_worker(p))) {
        waitpid(w->pid, NULL, 0);
        pool__worker_unlink(p, w);
        rc_free(w);
    }
    if (killed)
        RC_INFO("worker_pool: killed %zu workers", killed);
    rc_map_destroy(&p->by_id, NULL);
    rc_map_destroy(&p->jobs, pool__job_free);
    uv_close((uv_handle_t *)&p->sigchld, pool__closed);
    uv_close((uv_handle_t *)&p->tick, pool__closed);
}

/* The most recently used idle worker of key, or NULL. */
static worker *pool__find_idle(worker_pool *p, const worker_key *key)
{
    worker *best = NULL;
    for (worker *w = pool__first_worker(p); w; w = pool__next_worker(p, w))
        if (w->state == WORKER_IDLE && !w->exiting && pool__key_eq(&w->key, key) &&
            (!best || w->idle_since_ms > best->idle_since_ms))
            best = w;
    return best;
}

int worker_pool_pop(worker_pool *p, const worker_key *key, worker_pop_cb cb, void *arg, worker **now,
                    worker_pop **pending, char *message, size_t mlen)
{
    *now = NULL;
    *pending = NULL;
    if (!worker_language_supported(key->language)) {
        snprintf(message, mlen, "this raylet starts Python and C++ workers, not %s ones",
                 worker_language_name(key->language));
        return RC_EINVAL;
    }
    worker *w = pool__find_idle(p, key);
    if (w) {
        p->n_idle--;
        w->state = WORKER_LEASED;
        *now = w;
        return 0;
    }
    worker_pop *pop = RC_NEW(worker_pop);
    pop->key = *key;
    pop->cb = cb;
    pop->arg = arg;
    /* A starting worker of this key that nobody (or only a prestart placeholder) waits for. */
    for (worker *s = pool__first_worker(p); s; s = pool__next_worker(p, s)) {
        if (s->state != WORKER_STARTING || !pool__key_eq(&s->key, key) || (s->claimed_by && s->claimed_by->cb))
            continue;
        worker_pop *placeholder = s->claimed_by;
        if (placeholder) {
            pool__pop_unlink(p, placeholder);
            rc_free(placeholder);
        }
        pool__pop_append(p, pop);
        pop->w = s;
        s->claimed_by = pop;
        *pending = pop;
        return 0;
    }
    /* A placeholder still waiting for a slot gives its place in the queue to us. */
    worker_pop *placeholder = NULL;
    for (worker_pop *q = pool__first_pop(p); q && !placeholder; q = pool__next_pop(p, q))
        if (!q->cb && !q->w && pool__key_eq(&q->key, key))
            placeholder = q;
    if (placeholder) {
        rc_list_replace(&placeholder->link, &pop->link);
        rc_free(placeholder);
    } else {
        pool__pop_append(p, pop);
    }
    pop->creating = 1;
    pool__start_pending(p);
    pop->creating = 0;
    if (pop->failed) {
        int rc = pop->fail_rc;
        snprintf(message, mlen, "%s", pop->message);
        rc_free(pop);
        return rc;
    }
    *pending = pop;
    return 0;
}

void worker_pool_pop_cancel(worker_pool *p, worker_pop *pop)
{
    pool__pop_unlink(p, pop);
    rc_free(pop);
}

void worker_pool_push(worker_pool *p, worker *w)
{
    if (w->state != WORKER_LEASED)
        return;
    w->lease = NULL;
    if (w->exiting) {
        worker_pool_kill(p, w, "it is exiting");
        return;
    }
    if (w->dedicated) {
        worker_pool_kill(p, w, "it served an actor, and an actor's worker is never reused");
        return;
    }
    pool__job *job = rc_map_get(&p->jobs, w->key.job_id, RC_JOB_ID_SIZE);
    if (job && job->dead) {
        worker_pool_kill(p, w, "its job has finished");
        return;
    }
    pool__make_idle(p, w);
}

void worker_pool_dedicate(worker_pool *p, worker *w, int detached)
{
    (void)p;
    w->dedicated = 1;
    w->detached = !!detached;
}

/* Queues placeholders until job (known) has n CPU workers of its language, alive or
 * starting or queued. The caller runs pool__start_pending. */
static void pool__prestart_known(worker_pool *p, const uint8_t job_id[RC_JOB_ID_SIZE], const pool__job *job, int n)
{
    worker_key key;
    worker_key_init(&key, job_id, job->is_python ? RAY__RPC__LANGUAGE__PYTHON : RAY__RPC__LANGUAGE__CPP, 0, 1);
    int have = 0;
    for (worker *w = pool__first_worker(p); w; w = pool__next_worker(p, w))
        have += w->state != WORKER_KILLED && pool__key_eq(&w->key, &key);
    for (worker_pop *q = pool__first_pop(p); q; q = pool__next_pop(p, q))
        have += !q->w && pool__key_eq(&q->key, &key);
    for (int i = have; i < n; i++) {
        worker_pop *pop = RC_NEW(worker_pop);
        pop->key = key;
        pool__pop_append(p, pop);
    }
}

void worker_pool_prestart(worker_pool *p, const uint8_t job_id[RC_JOB_ID_SIZE], int n)
{
    pool__job *job = pool__job_get(p, job_id);
    if (job->state == JOB_UNKNOWN && !p->cbs.fetch_job)
        job->state = JOB_KNOWN;
    if (job->state == JOB_KNOWN) {
        pool__prestart_known(p, job_id, job, n);
        pool__start_pending(p);
        return;
    }
    /* The language comes with the config: worker_pool_job_info prestarts. */
    if (n > job->prestart)
        job->prestart = n;
    if (job->state == JOB_UNKNOWN) {
        job->state = JOB_FETCHING;
        p->cbs.fetch_job(p->cbs.arg, job_id); /* may answer (or refuse, freeing job) at once */
    }
}

worker *worker_pool_find(worker_pool *p, const uint8_t id[RC_WORKER_ID_SIZE])
{
    return rc_map_get(&p->by_id, id, RC_WORKER_ID_SIZE);
}

worker *worker_pool_find_by_port(worker_pool *p, int port)
{
    for (worker *w = pool__first_worker(p); w; w = pool__next_worker(p, w))
        if (w->state == WORKER_LEASED && w->port == port)
            return w;
    return NULL;
}

int worker_pool_register(worker_pool *p, const uint8_t id[RC_WORKER_ID_SIZE], pid_t pid, int port, char *err,
                         size_t errlen)
{
    worker *w = worker_pool_find(p, id);
    char hex[RC_ID_HEX_MAX];
    if (!w) {
        snprintf(err, errlen, "no worker %s was started by this raylet", rc_id_hex(id, RC_WORKER_ID_SIZE, hex));
        return RC_ENOENT;
    }
    if (w->state != WORKER_STARTING) {
        snprintf(err, errlen, "worker %.8s %s", w->id_hex,
                 w->state == WORKER_KILLED ? "is being killed" : "has registered already");
        return RC_ESTATE;
    }
    if (pid != w->pid)
        RC_WARN("worker_pool: worker %.8s registers as pid %d but was started as pid %d", w->id_hex, (int)pid,
                (int)w->pid);
    w->port = port;
    p->n_starting--;
    RC_INFO("worker_pool: worker %.8s (pid %d) registered, port %d, after %lld ms", w->id_hex, (int)w->pid, port,
            (long long)(rc_mono_ms() - w->started_ms));
    worker_pop *pop = w->claimed_by;
    w->claimed_by = NULL;
    if (pop && pop->cb) {
        pop->w = NULL;
        pool__pop_deliver(p, pop, w);
    } else {
        if (pop) {
            pool__pop_unlink(p, pop);
            rc_free(pop);
        }
        pool__make_idle(p, w);
    }
    pool__start_pending(p);
    return 0;
}

void worker_pool_disconnect(worker_pool *p, worker *w)
{
    w->exiting = 1;
    if (w->state == WORKER_IDLE || w->state == WORKER_STARTING)
        worker_pool_kill(p, w, "it disconnected");
}

void worker_pool_job_info(worker_pool *p, const uint8_t job_id[RC_JOB_ID_SIZE], const Ray__Rpc__JobConfig *config,
                          int is_dead)
{
    pool__job *job = pool__job_get(p, job_id);
    job->state = JOB_KNOWN;
    pool__job_configure(job, job_id, config);
    if (job->prestart && !is_dead)
        pool__prestart_known(p, job_id, job, job->prestart);
    job->prestart = 0;
    if (is_dead && !job->dead) {
        job->dead = 1;
        char hex[RC_ID_HEX_MAX];
        RC_INFO("worker_pool: job %s finished; killing its workers (detached actors' excepted)",
                rc_id_hex(job_id, RC_JOB_ID_SIZE, hex));
        for (worker *w = pool__first_worker(p), *next; w; w = next) {
            next = pool__next_worker(p, w);
            if (w->state != WORKER_KILLED && !w->detached && !memcmp(w->key.job_id, job_id, RC_JOB_ID_SIZE)) {
                worker_pool_kill(p, w, "its job has finished");
                next = pool__first_worker(p);
            }
        }
    }
    pool__start_pending(p);
}

void worker_pool_job_refused(worker_pool *p, const uint8_t job_id[RC_JOB_ID_SIZE], int rc, const char *why)
{
    pool__job *job = rc_map_get(&p->jobs, job_id, RC_JOB_ID_SIZE);
    if (!job || job->state != JOB_FETCHING)
        return; /* the job channel vouched for it meanwhile */
    pool__job_free(rc_map_remove(&p->jobs, job_id, RC_JOB_ID_SIZE));
    /* No worker starts before its job is known, so none of these pops has one; a failed
     * pop's callback may change the queue: look again from the start. */
    for (worker_pop *pop = pool__first_pop(p); pop;) {
        if (pop->w || memcmp(pop->key.job_id, job_id, RC_JOB_ID_SIZE) != 0) {
            pop = pool__next_pop(p, pop);
            continue;
        }
        pool__pop_fail(p, pop, rc, why);
        pop = pool__first_pop(p);
    }
    pool__start_pending(p);
}

size_t worker_pool_size(const worker_pool *p)
{
    return p->n_workers;
}

size_t worker_pool_idle_count(const worker_pool *p)
{
    return p->n_idle;
}
