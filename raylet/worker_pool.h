/*
 * The raylet's worker pool (ARCHITECTURE §6, docs/tasks.md "Processes and endpoints"):
 * starts worker processes, hands registered ones out for leases, takes them back for
 * reuse, reaps them, and kills them.
 *
 * A worker is started for a key: (job, language, set of GPU instances, OpenMP threads).
 * The language (LeaseSpec.language) picks the program: CPP starts rayc-worker
 * (worker_command), PYTHON starts `<python_executable> -m ray._private.workers.default_worker`
 * with the same arguments (no --code-search-path); the pool starts no other language. Its
 * environment is fixed at start (CUDA_VISIBLE_DEVICES = the key's GPU instances, "" for CPU
 * workers; OMP_NUM_THREADS = the key's threads: the lease's CPUs rounded up, at least 1),
 * so a worker is only ever reused for leases with the same key: languages never mix, nor
 * do CPU and GPU workers or jobs, and a worker's environment is always right for its lease.
 * An actor's worker is dedicated to it (worker_pool_dedicate): never reused after its
 * lease. The raylet's own credentials in its environment (RAYC_AUTH_TOKEN,
 * RAYC_AUTH_TOKEN_PATH, RAYC_TLS_*) are not passed on: a worker asks its raylet for its
 * job's (GetCredentials).
 *
 * Life of a worker:
 *
 *     spawn ──► STARTING ──RegisterClient──► IDLE ◄──push── LEASED
 *                  │                           │──pop──────►  │
 *                  │ register timeout,         │ idle timeout  │ exits / killed
 *                  │ exit before registering   │ (beyond the   │
 *                  ▼                           ▼  soft limit)  ▼
 *               KILLED ─────────────── SIGCHLD (reaped) ─────► freed
 *
 * A pop takes the most recently used idle worker of its key, else claims a starting worker
 * of its key that nobody waits for, else starts one (at most maximum_startup_concurrency
 * start at once; the rest wait in FIFO order). Workers are started with posix_spawn (gRPC
 * threads are running: no fork) and reaped on SIGCHLD (uv_signal), by pid.
 *
 * A job's config (JobConfig, from the GCS) shapes its workers. The pool asks its owner for
 * an unknown job's config once (fetch_job) and holds that job's starts until
 * worker_pool_job_info answers; a job the owner cannot vouch for (worker_pool_job_refused:
 * the GCS has no record of it) starts no worker, and its waiting pops fail (ARCHITECTURE
 * §14: workers load code only from the search path of a job an authenticated client
 * created). From the config:
 *   - code_search_path reaches C workers as --code-search-path a:b;
 *   - runtime_env_info.serialized_runtime_env's "env_vars" ({"K": "V"}) are set in every
 *     worker of the job, as Ray does (not those the pool sets or strips: see above); a
 *     runtime env that is not such JSON is logged and ignored, never fatal;
 *   - py_driver_sys_path (the Python driver's sys.path) becomes a Python worker's
 *     PYTHONPATH (joined with ':', empty entries skipped), so it imports what its driver
 *     could, ray itself included; an env_vars PYTHONPATH comes before it. Without entries
 *     the pool sets no PYTHONPATH (the raylet's own, if any, passes through);
 *   - rayc_driver_cwd is a Python worker's working directory when it exists (else the
 *     raylet's), so relative paths mean what they meant to the driver.
 * A job with any py_driver_sys_path entry is a Python job: worker_pool_prestart starts
 * Python workers for it.
 *
 * Logs: every worker's stdout and stderr go to <session_dir>/logs/worker-<8 hex>.out/.err.
 *
 * Memory: the pool owns its workers; a worker pointer stays valid until on_worker_dead has
 * returned for it (or the pool is destroyed). Loop thread only.
 */
#ifndef RAYC_RAYLET_WORKER_POOL_H
#define RAYC_RAYLET_WORKER_POOL_H

#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "common.pb-c.h"
#include "rc_ids.h"
#include "rc_list.h"

typedef struct worker_pool worker_pool;
typedef struct worker_pop worker_pop;

/* What makes workers interchangeable. gpu_mask bit i = GPU instance i. */
typedef struct worker_key {
    uint8_t job_id[RC_JOB_ID_SIZE];
    Ray__Rpc__Language language; /* PYTHON or CPP: the program started */
    uint32_t gpu_mask;
    uint32_t omp_threads; /* >= 1 */
} worker_key;

/* The key of a lease of job in language using the GPU instances in gpu_mask and cpus CPUs. */
void worker_key_init(worker_key *key, const uint8_t job_id[RC_JOB_ID_SIZE], Ray__Rpc__Language language,
                     uint32_t gpu_mask, double cpus);
/* 1 if the pool starts workers of language (PYTHON, CPP), else 0. */
int worker_language_supported(Ray__Rpc__Language language);
/* "Python", "C++", "Java" or "an unknown language", for messages. Static storage. */
const char *worker_language_name(Ray__Rpc__Language language);

typedef enum worker_state {
    WORKER_STARTING, /* spawned, not registered yet */
    WORKER_IDLE,     /* registered, waiting in the pool */
    WORKER_LEASED,   /* handed out by a pop */
    WORKER_KILLED,   /* signalled or failed; waiting to be reaped */
} worker_state;

/* A worker process. Fields are read-only outside the pool, except lease. */
typedef struct worker {
    uint8_t id[RC_WORKER_ID_SIZE];
    char id_hex[RC_ID_HEX_MAX];
    worker_key key;
    pid_t pid;
    int port; /* its CoreWorkerService port once registered, else 0 */
    worker_state state;
    int64_t started_ms, idle_since_ms;
    int exiting; /* it said goodbye (DisconnectClient) */
    int dedicated; /* an actor's (worker_pool_dedicate): never handed out again */
    int detached;  /* a detached actor's: outlives its job */
    /* How it ended, for on_worker_dead: its wait status, and why the pool killed it ("" if
     * the pool did not). */
    int exit_status;
    char kill_reason[240];
    void *lease; /* the lease manager's lease while LEASED; the pool never touches it */
    /* pool bookkeeping */
    worker_pop *claimed_by;
    rc_list link; /* on the pool's list of workers */
} worker;

typedef struct worker_pool_callbacks {
    /* A worker was reaped (w->state tells what it was doing: LEASED means its lease lost
     * it). why is a sentence ("exited with status 1", "was killed by signal 9"). w is freed
     * when this returns. */
    void (*on_worker_dead)(void *arg, worker *w, const char *why);
    /* The pool needs job's config before starting its workers: answer, now or later, with
     * worker_pool_job_info or worker_pool_job_refused. May be NULL (every job starts with
     * the default path). */
    void (*fetch_job)(void *arg, const uint8_t job_id[RC_JOB_ID_SIZE]);
    void *arg;
} worker_pool_callbacks;

typedef struct worker_pool_config {
    const char *worker_command;    /* program started for CPP keys (rayc-worker) */
    const char *python_executable; /* interpreter started for PYTHON keys; a name without
                                      '/' is looked up in PATH, a relative path is taken
                                      from the raylet's working directory */
    const char *session_dir;       /* logs go to <session_dir>/logs/worker-<8 hex>.out/.err */
    const char *raylet_socket;  /* what --raylet-socket says */
    const char *node_id_hex;
    const char *node_ip;
    const char *gcs_address;
    double num_cpus;                  /* the node's: prestart count, defaults of the limits */
    const char *default_code_search_path; /* for jobs without one; NULL or "" for none */
} worker_pool_config;

/* Creates a pool (copies cfg's strings) and watches SIGCHLD. Free with worker_pool_destroy. */
int worker_pool_create(uv_loop_t *loop, const worker_pool_config *cfg,
                       const worker_pool_callbacks *cbs, worker_pool **out);
/* Kills every worker (SIGKILL), reaps them, fails waiting pops (their callbacks do not
 * run), and frees the pool once its handles have closed (the loop must run afterwards). */
void worker_pool_destroy(worker_pool *p);

/* Runs when a pending pop ends: w is the worker now LEASED to the caller (rc 0), or NULL
 * with rc < 0 and message saying why (the worker did not register in time, exited, or
 * could not be started). */
typedef void (*worker_pop_cb)(worker *w, int rc, const char *message, void *arg);

/* Finds a worker for key. If an idle one is there, returns 0 with it LEASED in *now (cb
 * never runs). Otherwise returns 0 with *pending set, and cb runs once later unless the pop
 * is cancelled first. Returns RC_EINVAL for a language the pool does not start
 * (worker_language_supported), RC_ESYS if no worker could be spawned, or the rc given to
 * worker_pool_job_refused if its job was refused meanwhile (nothing pending, cb never
 * runs); message then says why. */
int worker_pool_pop(worker_pool *p, const worker_key *key, worker_pop_cb cb, void *arg,
                    worker **now, worker_pop **pending, char *message, size_t mlen);
/* Forgets a pending pop; its callback never runs. A worker started for it stays and
 * becomes idle once registered. */
void worker_pool_pop_cancel(worker_pool *p, worker_pop *pop);
/* Takes back a LEASED worker for reuse by its key (its lease pointer is cleared); a
 * dedicated worker is killed instead. */
void worker_pool_push(worker_pool *p, worker *w);
/* w (LEASED) now serves an actor (Ray: a dedicated worker): when its lease comes back it
 * is killed, never reused; detached: it survives the end of its job. */
void worker_pool_dedicate(worker_pool *p, worker *w, int detached);
/* Sends SIGKILL (once); the worker is reaped later. A worker being killed is never handed
 * out again; on_worker_dead still runs when it is reaped. */
void worker_pool_kill(worker_pool *p, worker *w, const char *why);
/* Starts CPU workers for job (one OpenMP thread each: Ray's default of one CPU per task)
 * in the background until the job has n such workers, alive or starting. They are of the
 * job's language: PYTHON for a Python job (its config has py_driver_sys_path entries),
 * else CPP; an unknown job's config is fetched first (fetch_job), and its prestart happens
 * once worker_pool_job_info answers (a refused job prestarts nothing). */
void worker_pool_prestart(worker_pool *p, const uint8_t job_id[RC_JOB_ID_SIZE], int n);

/* The worker said goodbye (DisconnectClient): it is never handed out again, and killed
 * now unless it is leased (then when it comes back). */
void worker_pool_disconnect(worker_pool *p, worker *w);

/* The worker with this ID, or NULL. */
worker *worker_pool_find(worker_pool *p, const uint8_t id[RC_WORKER_ID_SIZE]);
/* The LEASED worker serving on port, or NULL. */
worker *worker_pool_find_by_port(worker_pool *p, int port);
/* A STARTING worker registers (RegisterClient). Returns 0, RC_ENOENT (no such worker was
 * started here) or RC_ESTATE (it registered already or is being killed); err says which. */
int worker_pool_register(worker_pool *p, const uint8_t id[RC_WORKER_ID_SIZE], pid_t pid, int port,
                         char *err, size_t errlen);

/* Answer to fetch_job (or news from the job channel): the job is known, with config (NULL:
 * none; what the pool needs is copied, see the top of this file), replacing what an
 * earlier answer said; workers already started keep what they were started with. And
 * whether the job is finished (its workers are killed, except detached actors'; later
 * pops for it still start workers). A malformed runtime env is logged (RC_WARN) and
 * ignored. */
void worker_pool_job_info(worker_pool *p, const uint8_t job_id[RC_JOB_ID_SIZE], const Ray__Rpc__JobConfig *config,
                          int is_dead);

/* Answer to fetch_job: the owner cannot vouch for job (the GCS has no record of it). Every
 * pop waiting for it fails with rc and why (its callback runs, or worker_pool_pop returns
 * them); the job is forgotten, so a later pop asks again. Ignored unless the job's fetch
 * is still outstanding (worker_pool_job_info came first). */
void worker_pool_job_refused(worker_pool *p, const uint8_t job_id[RC_JOB_ID_SIZE], int rc, const char *why);

/* Counts, for reports and tests. */
size_t worker_pool_size(const worker_pool *p);
size_t worker_pool_idle_count(const worker_pool *p);

/* Writes CUDA_VISIBLE_DEVICES for mask: the instances in ascending order, each mapped
 * through visible (the raylet's own CUDA_VISIBLE_DEVICES, NULL or "" for none: instance i
 * is device i). Returns buf. Pure; exposed for tests. */
char *worker_pool_gpu_env(uint32_t mask, const char *visible, char *buf, size_t len);

/* Parses a serialized runtime env (Ray's JSON, e.g. {"env_vars": {"K": "V"}}) into its
 * env_vars as "K=V" strings in *vars (*n of them; the array and its strings are freed
 * with rc_free). Entries the pool sets or strips itself (CUDA_VISIBLE_DEVICES,
 * OMP_NUM_THREADS, the raylet's credentials), and names or values a process environment
 * cannot hold, are left out with a sentence in err. Returns 0 (err "" when nothing was
 * left out), or RC_EPARSE with *vars NULL and err saying why the whole of it was ignored
 * (not JSON, not an object, env_vars not an object). Pure; exposed for tests. */
int worker_pool_parse_runtime_env(const char *json, char ***vars, size_t *n, char *err, size_t errlen);

#endif
