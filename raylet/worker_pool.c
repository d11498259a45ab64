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
#include <sys/wait.h>
#include <unistd.h>

#include "rc_alloc.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_log.h"
#include "rc_map.h"
#include "rc_time.h"

extern char **environ;

enum { POOL__TICK_MS = 100, POOL__MAX_GPUS = 32 };

struct worker_pop {
    worker_key key;
    worker_pop_cb cb; /* NULL: a prestart placeholder */
    void *arg;
    worker *w;
    worker_pop *prev, *next;
    /* Set while worker_pool_pop creates it: a failure then is returned from there (failed,
     * message) instead of reaching cb. */
    int creating, failed, fail_rc;
    char message[300];
};

typedef enum pool__job_state { JOB_UNKNOWN, JOB_FETCHING, JOB_KNOWN } pool__job_state;

typedef struct pool__job {
    pool__job_state state;
    char *code_search_path; /* "a:b", NULL for the default */
    int dead;
} pool__job;

struct worker_pool {
    uv_loop_t *loop;
    worker_pool_callbacks cbs;
    char *command, *session_dir, *socket, *node_id_hex, *node_ip, *gcs_address;
    char *default_path, *visible_gpus;
    double num_cpus; /* the node's: defaults of the limits below */

    worker *workers; /* list head */
    rc_map by_id;    /* worker id -> worker */
    size_t n_workers, n_starting, n_idle;
    worker_pop *pops_head, *pops_tail;
    rc_map jobs; /* job id -> pool__job */

    uv_signal_t sigchld;
    uv_timer_t tick;
    int tick_running;
    int in_start_pending, start_again;
    int closing, handles_open;
};

static int pool__key_eq(const worker_key *a, const worker_key *b)
{
    return a->gpu_mask == b->gpu_mask && a->omp_threads == b->omp_threads &&
           memcmp(a->job_id, b->job_id, RC_JOB_ID_SIZE) == 0;
}

void worker_key_init(worker_key *key, const uint8_t job_id[RC_JOB_ID_SIZE], uint32_t gpu_mask, double cpus)
{
    memcpy(key->job_id, job_id, RC_JOB_ID_SIZE);
    key->gpu_mask = gpu_mask;
    double threads = ceil(cpus - 1e-9);
    key->omp_threads = threads < 1 ? 1 : threads > 1e6 ? 1000000 : (uint32_t)threads;
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

static void pool__job_free(void *v)
{
    pool__job *j = v;
    rc_free(j->code_search_path);
    rc_free(j);
}

/* ---- pops --------------------------------------------------------------------------- */

static void pool__pop_unlink(worker_pool *p, worker_pop *pop)
{
    if (pop->prev)
        pop->prev->next = pop->next;
    else
        p->pops_head = pop->next;
    if (pop->next)
        pop->next->prev = pop->prev;
    else
        p->pops_tail = pop->prev;
    pop->prev = pop->next = NULL;
    if (pop->w && pop->w->claimed_by == pop)
        pop->w->claimed_by = NULL;
    pop->w = NULL;
}

static void pool__pop_append(worker_pool *p, worker_pop *pop)
{
    pop->prev = p->pops_tail;
    pop->next = NULL;
    if (p->pops_tail)
        p->pops_tail->next = pop;
    else
        p->pops_head = pop;
    p->pops_tail = pop;
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
    if (w->prev)
        w->prev->next = w->next;
    else
        p->workers = w->next;
    if (w->next)
        w->next->prev = w->prev;
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

/* Builds the worker's environment: ours, minus pool__env_dropped's. The strings in the
 * returned array (freed with rc_free, like the two it adds) are borrowed from environ
 * except the last two. */
static char **pool__env(const worker_pool *p, const worker_key *key, char *cuda, size_t cuda_len, char *omp,
                        size_t omp_len)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = rc_calloc(n + 3, sizeof(*env));
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!pool__env_dropped(environ[i]))
            env[k++] = environ[i];
    char gpus[200];
    worker_pool_gpu_env(key->gpu_mask, p->visible_gpus, gpus, sizeof(gpus));
    snprintf(cuda, cuda_len, "CUDA_VISIBLE_DEVICES=%s", gpus);
    snprintf(omp, omp_len, "OMP_NUM_THREADS=%u", key->omp_threads);
    env[k++] = cuda;
    env[k++] = omp;
    env[k] = NULL;
    return env;
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
    char *argv[20];
    int n = 0;
    argv[n++] = p->command;
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
    if (path && *path) {
        argv[n++] = "--code-search-path";
        argv[n++] = (char *)path;
    }
    argv[n] = NULL;

    char cuda[256], omp[64];
    char **env = pool__env(p, key, cuda, sizeof(cuda), omp, sizeof(omp));
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, err_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
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
    int err = posix_spawn(&w->pid, p->command, &fa, &attr, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    rc_free(env);
    if (err != 0) {
        snprintf(message, mlen, "cannot start worker program %s: %s", p->command, strerror(err));
        RC_ERROR("worker_pool: %s", message);
        rc_free(w);
        return RC_ESYS;
    }
    w->state = WORKER_STARTING;
    w->started_ms = rc_mono_ms();
    w->next = p->workers;
    if (p->workers)
        p->workers->prev = w;
    p->workers = w;
    rc_map_put(&p->by_id, w->id, RC_WORKER_ID_SIZE, w);
    p->n_workers++;
    p->n_starting++;
    pool__tick_ensure(p);
    char gpus[200];
    RC_INFO("worker_pool: started worker %.8s (pid %d) for job %s, GPUs [%s], %u OpenMP threads", w->id_hex,
            (int)w->pid, job_hex, worker_pool_gpu_env(key->gpu_mask, p->visible_gpus, gpus, sizeof(gpus)),
            key->omp_threads);
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
        for (worker_pop *pop = p->pops_head; pop && !p->closing; pop = next) {
            next = pop->next;
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
    for (worker_pop *pop = p->pops_head; pop; pop = pop->next) {
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
    for (worker *w = p->workers; w; w = next) {
        next = w->next;
        int status;
        if (waitpid(w->pid, &status, WNOHANG) == w->pid) {
            pool__reaped(p, w, status);
            next = p->workers; /* callbacks may have changed the list: start over */
        }
    }
}

static void pool__tick(uv_timer_t *t)
{
    worker_pool *p = t->data;
    int64_t now = rc_mono_ms();
    worker *next;
    for (worker *w = p->workers; w; w = next) {
        next = w->next;
        if (w->state != WORKER_STARTING || now - w->started_ms < rc_cfg.worker_register_timeout_ms)
            continue;
        char err_path[PATH_MAX], why[PATH_MAX + 200];
        pool__log_path(p, w, "err", err_path, sizeof(err_path));
        snprintf(why, sizeof(why), "worker %.8s did not register within %lld ms; see %s", w->id_hex,
                 (long long)rc_cfg.worker_register_timeout_ms, err_path);
        worker_pool_kill(p, w, why);
        next = p->workers;
    }
    /* Idle workers beyond the soft limit, the longest idle first. */
    size_t alive = 0;
    for (worker *w = p->workers; w; w = w->next)
        alive += w->state != WORKER_KILLED;
    while (alive > pool__soft_limit(p)) {
        worker *oldest = NULL;
        for (worker *w = p->workers; w; w = w->next)
            if (w->state == WORKER_IDLE && now - w->idle_since_ms >= rc_cfg.idle_worker_timeout_ms &&
                (!oldest || w->idle_since_ms < oldest->idle_since_ms))
                oldest = w;
        if (!oldest)
            break;
        worker_pool_kill(p, oldest, "idle for too long, and the node has more workers than num_workers_soft_limit");
        alive--;
    }
    if (!p->workers) {
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
    while (p->pops_head) {
        worker_pop *pop = p->pops_head;
        pool__pop_unlink(p, pop);
        rc_free(pop);
    }
    size_t killed = 0;
    for (worker *w = p->workers; w; w = w->next) {
        kill(w->pid, SIGKILL);
        killed++;
    }
    while (p->workers) {
        worker *w = p->workers;
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
    for (worker *w = p->workers; w; w = w->next)
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
    for (worker *s = p->workers; s; s = s->next) {
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
    for (worker_pop *q = p->pops_head; q && !placeholder; q = q->next)
        if (!q->cb && !q->w && pool__key_eq(&q->key, key))
            placeholder = q;
    if (placeholder) {
        pop->prev = placeholder->prev;
        pop->next = placeholder->next;
        if (pop->prev)
            pop->prev->next = pop;
        else
            p->pops_head = pop;
        if (pop->next)
            pop->next->prev = pop;
        else
            p->pops_tail = pop;
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

void worker_pool_prestart(worker_pool *p, const uint8_t job_id[RC_JOB_ID_SIZE], int n)
{
    worker_key key;
    worker_key_init(&key, job_id, 0, 1);
    int have = 0;
    for (worker *w = p->workers; w; w = w->next)
        have += w->state != WORKER_KILLED && pool__key_eq(&w->key, &key);
    for (worker_pop *q = p->pops_head; q; q = q->next)
        have += !q->w && pool__key_eq(&q->key, &key);
    if (have >= n)
        return;
    for (int i = have; i < n; i++) {
        worker_pop *pop = RC_NEW(worker_pop);
        pop->key = key;
        pool__pop_append(p, pop);
    }
    pool__start_pending(p);
}

worker *worker_pool_find(worker_pool *p, const uint8_t id[RC_WORKER_ID_SIZE])
{
    return rc_map_get(&p->by_id, id, RC_WORKER_ID_SIZE);
}

worker *worker_pool_find_by_port(worker_pool *p, int port)
{
    for (worker *w = p->workers; w; w = w->next)
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

void worker_pool_job_info(worker_pool *p, const uint8_t job_id[RC_JOB_ID_SIZE], int found, char *const *paths,
                          size_t n_paths, int is_dead)
{
    pool__job *job = pool__job_get(p, job_id);
    job->state = JOB_KNOWN;
    if (found) {
        rc_free(job->code_search_path);
        job->code_search_path = NULL;
        size_t len = 1;
        for (size_t i = 0; i < n_paths; i++)
            len += strlen(paths[i]) + 1;
        if (n_paths) {
            job->code_search_path = rc_calloc(1, len);
            for (size_t i = 0; i < n_paths; i++) {
                if (i)
                    strcat(job->code_search_path, ":");
                strcat(job->code_search_path, paths[i]);
            }
        }
    }
    if (is_dead && !job->dead) {
        job->dead = 1;
        char hex[RC_ID_HEX_MAX];
        RC_INFO("worker_pool: job %s finished; killing its workers (detached actors' excepted)",
                rc_id_hex(job_id, RC_JOB_ID_SIZE, hex));
        for (worker *w = p->workers, *next; w; w = next) {
            next = w->next;
            if (w->state != WORKER_KILLED && !w->detached && !memcmp(w->key.job_id, job_id, RC_JOB_ID_SIZE)) {
                worker_pool_kill(p, w, "its job has finished");
                next = p->workers;
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
    for (worker_pop *pop = p->pops_head; pop;) {
        if (pop->w || memcmp(pop->key.job_id, job_id, RC_JOB_ID_SIZE) != 0) {
            pop = pop->next;
            continue;
        }
        pool__pop_fail(p, pop, rc, why);
        pop = p->pops_head;
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
