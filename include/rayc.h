/*
 * rayc.h: the C API of rayc, modelled on Ray's C++ API (ray::Init, ray::Task(f).Remote,
 * ray::Get / Put / Wait).
 *
 *     rayc_init_options opts;
 *     rayc_init_options_init(&opts);             // address: RAYC_ADDRESS, else this host's cluster
 *     rayc_init(&opts);
 *     rayc_arg args[] = {RAYC_ARG_VALUE(&x, sizeof(x))};
 *     rayc_ref ref;
 *     rayc_submit("square", args, 1, NULL, &ref);  // runs square() somewhere in the cluster
 *     rayc_object out;
 *     rayc_get(&ref, 1, -1, &out);               // out.data / out.size, or out.error
 *     rayc_object_release(&out, 1);
 *     rayc_ref_release(&ref);
 *     rayc_shutdown();
 *
 * Remote functions are C functions in shared libraries, registered by name with
 * RAYC_REMOTE(fn) (or rayc_register_function). Workers load every library on the code search
 * path (rayc_init_options.code_search_path, or RAYC_CODE_SEARCH_PATH: directories or .so
 * files separated by ':') and look functions up by name.
 *
 * Errors are values: a task that failed, a worker that died, an unschedulable request or a
 * cancelled task still produce an object whose `error` says what happened (with the task's
 * name and node, or the scheduler's explanation). Functions return 0 or a negative RAYC_E*
 * code (rayc_errno.h: rayc_strerror says what it means).
 *
 * Threads: any user thread may call the API after rayc_init; calls are handed to the core
 * worker's loop thread. Inside a remote function, the task's context is the calling thread's.
 */
#ifndef RAYC_H
#define RAYC_H

#include <stddef.h>
#include <stdint.h>

#include "rayc_errno.h" /* RAYC_E* codes and rayc_strerror() */

#ifdef __cplusplus
extern "C" {
#endif

/* The context of the task being run (passed to remote functions and actor methods). */
typedef struct rayc_task_ctx rayc_task_ctx;

/* ---- identifiers ---------------------------------------------------------------------- */

enum { RAYC_OBJECT_ID_SIZE = 28, RAYC_NODE_ID_SIZE = 28, RAYC_TASK_ID_SIZE = 24, RAYC_JOB_ID_SIZE = 4 };

/* A reference to an object (a task's return value or a put), owned by the process that
 * created it. Copying the struct does not count as a reference: use rayc_ref_retain for
 * each extra holder and rayc_ref_release when done; the object is freed cluster-wide once
 * its owner has no holders and no task still needs it. */
typedef struct rayc_ref {
    uint8_t id[RAYC_OBJECT_ID_SIZE];
} rayc_ref;

/* ---- errors --------------------------------------------------------------------------- */

typedef enum rayc_error {
    RAYC_OK = 0,
    RAYC_ERR_TASK_FAILED,     /* the remote function reported an error (rayc_task_fail) */
    RAYC_ERR_WORKER_DIED,     /* the worker process died; retries (max_retries) ran out */
    RAYC_ERR_NODE_DIED,       /* the node holding the task or object died */
    RAYC_ERR_UNSCHEDULABLE,   /* no node can ever run the task: message says why */
    RAYC_ERR_CANCELLED,       /* rayc_cancel */
    RAYC_ERR_OBJECT_LOST,     /* every copy of the object is gone */
    RAYC_ERR_OWNER_DIED,      /* the object's owner is gone */
    RAYC_ERR_FUNCTION_NOT_FOUND, /* no library on the code search path registers the name */
    RAYC_ERR_TIMEOUT,         /* rayc_get: not ready within the timeout */
    RAYC_ERR_ACTOR_DIED,      /* the actor is dead (message: why) */
    RAYC_ERR_PG_REMOVED,      /* the placement group the task or actor needed was removed */
    /* Lineage reconstruction (an object whose every copy was lost is made again by rerunning
     * the task that made it; puts and actor results cannot be, they are RAYC_ERR_OBJECT_LOST): */
    RAYC_ERR_OBJECT_UNRECONSTRUCTABLE,              /* an argument it needs cannot be made again */
    RAYC_ERR_OBJECT_UNRECONSTRUCTABLE_MAX_ATTEMPTS, /* its task used up max_retries */
    RAYC_ERR_OBJECT_UNRECONSTRUCTABLE_LINEAGE_EVICTED, /* its task's lineage was released */
} rayc_error;

/* The name of an error ("RAYC_ERR_WORKER_DIED"). */
const char *rayc_error_name(rayc_error e);

/* ---- objects -------------------------------------------------------------------------- */

/* A fetched object: its bytes (read-only; zero-copy from the node's shared memory for large
 * objects) or an error. Valid until rayc_object_release. */
typedef struct rayc_object {
    rayc_error error;
    const void *data; /* NULL when error != RAYC_OK */
    size_t size;
    const char *error_message; /* NULL when error == RAYC_OK */
    void *internal_;
} rayc_object;

void rayc_object_release(rayc_object *objects, size_t n);
/* Makes dst another holder of src's bytes (fetched objects and a task's arguments alike):
 * the bytes stay valid, and a shared-memory object stays pinned, until dst is released. */
int rayc_object_retain(const rayc_object *src, rayc_object *dst);

/* ---- arguments ------------------------------------------------------------------------ */

/* A task argument: bytes (copied at submit) or an object reference (resolved to the
 * object's bytes before the task runs, as in Ray). */
typedef struct rayc_arg {
    const void *data;
    size_t size;
    const rayc_ref *ref; /* non-NULL: pass this object instead of data */
} rayc_arg;

#define RAYC_ARG_VALUE(ptr, len) ((rayc_arg){(ptr), (len), NULL})
#define RAYC_ARG_REF(refptr) ((rayc_arg){NULL, 0, (refptr)})

/* ---- languages ------------------------------------------------------------------------ */

/* The language of a task or actor: C functions from the code search path, or code that a
 * language binding runs in its own workers (rayc_set_executor; the raylet starts Python
 * workers for Python tasks). */
typedef enum rayc_language {
    RAYC_LANGUAGE_C = 0,
    RAYC_LANGUAGE_PYTHON = 1,
} rayc_language;

/* ---- init ----------------------------------------------------------------------------- */

typedef struct rayc_init_options {
    /* Where the cluster is, as Ray's ray.init(address) takes it:
     *   "host:port"  the cluster's GCS;
     *   "auto"       the cluster `rayc start` runs on this host (RAYC_ENOENT if none);
     *   "local"      a new local cluster (a GCS and one raylet with the resources below)
     *                that ends with rayc_shutdown;
     *   NULL or ""   RAYC_ADDRESS (any of the above) if set, else the cluster on this host if
     *                one runs, else a new local cluster.
     * The cluster on this host is the newest session under RAYC_SESSION_ROOT (/tmp/rayc)
     * whose raylet and GCS run, not counting clusters other programs started for themselves;
     * the driver uses that session's credentials unless RAYC_CA_CERT, RAYC_AUTH_TOKEN[_PATH]
     * or RAYC_INSECURE say otherwise. A local cluster's programs (rayc-gcs, rayc-raylet) are
     * found next to librayc (../bin), next to the program or on PATH; RAYC_BIN_DIR overrides. */
    const char *address;
    const char *namespace_;       /* Ray namespace of the job; NULL: anonymous */
    const char *code_search_path; /* NULL: RAYC_CODE_SEARCH_PATH */
    /* A new local cluster only (< 0: detect); rayc_init refuses them (RAYC_EINVAL) when it
     * finds a cluster on this host, as ray.init() does. */
    double num_cpus;
    double num_gpus;
    const char *resources_json;   /* custom resources of the local node, e.g. {"A": 1} */
    const char *labels;           /* labels of the local node, "k=v,k2=v2" */
    /* The job's environment, for workers of language bindings (Ray's JobConfig): the
     * driver's import path (a Python driver's sys.path), its working directory, and Ray's
     * runtime environment as JSON ({"env_vars": {"K": "V"}}). NULL: none. */
    const char *const *driver_sys_path;
    size_t n_driver_sys_path;
    const char *driver_cwd;
    const char *runtime_env_json;
    /* Fair share between jobs on a contended cluster: raylets grant new leases to the jobs
     * of the highest priority first (higher first; default 0) and, among them, in
     * proportion to their weights (a finite number > 0; 0: the default, 1). */
    int job_priority;
    double job_weight;
} rayc_init_options;

void rayc_init_options_init(rayc_init_options *opts);
/* Joins the cluster (or starts the local one). Security is on by default: the driver
 * verifies the cluster with its CA certificate and calls with the client token, found in
 * RAYC_CA_CERT, RAYC_AUTH_TOKEN, RAYC_AUTH_TOKEN_PATH, else the session on this host of the
 * cluster it joins (`rayc start` leaves them there; for a cluster given by address, the
 * latest session); RAYC_INSECURE=1 for a cluster started with --insecure.
 * A local cluster is secure with credentials of its own. Without credentials it fails and
 * rayc_last_error says where it looked. */
int rayc_init(const rayc_init_options *opts);
/* The cluster `rayc start` runs on this host, as rayc_init finds it (see
 * rayc_init_options.address): 0 with its GCS address ("host:port") in address and its
 * session directory in session (either may be NULL), RAYC_ENOENT when none runs, or
 * RAYC_ERANGE when a buffer is too small. Needs no rayc_init; any thread. */
int rayc_find_cluster(char *address, size_t address_len, char *session, size_t session_len);
/* Releases everything the job holds and disconnects (stopping a local cluster). */
void rayc_shutdown(void);
int rayc_is_initialized(void);

/* ---- tasks ---------------------------------------------------------------------------- */

typedef enum rayc_strategy {
    RAYC_STRATEGY_DEFAULT = 0, /* Ray's hybrid policy */
    RAYC_STRATEGY_SPREAD,
    RAYC_STRATEGY_NODE_AFFINITY, /* node_id, soft */
    RAYC_STRATEGY_COST,          /* cheapest feasible node by price per hour */
} rayc_strategy;

enum { RAYC_MAX_TASK_RESOURCES = 8 };

typedef struct rayc_resource {
    const char *name;
    double amount;
} rayc_resource;

typedef struct rayc_task_options {
    double num_cpus;            /* default 1 */
    double num_gpus;            /* default 0; fractions (< 1) share a GPU */
    uint64_t gpu_memory;        /* bytes each GPU must have; 0: any */
    rayc_resource resources[RAYC_MAX_TASK_RESOURCES]; /* custom resources */
    size_t n_resources;
    const char *accelerator_type; /* e.g. "A100" */
    const char *label_selector;   /* e.g. "region: in(us,eu), zone: !z1" */
    rayc_strategy strategy;
    uint8_t node_id[RAYC_NODE_ID_SIZE]; /* RAYC_STRATEGY_NODE_AFFINITY */
    int soft;                           /* affinity may fall back to other nodes */
    int max_retries;     /* system failures retried and lost results rebuilt, one budget; default 3; -1: forever */
    int retry_exceptions; /* also retry when the function reports an error */
    int num_returns;     /* default 1 */
    const char *name;    /* shown in errors; default: the function name */
    const struct rayc_pg *placement_group; /* NULL: none */
    int bundle_index;                      /* -1: any bundle of the group */
    /* Tasks and actors this task creates go into its placement group too (any bundle),
     * unless they name a group or strategy of their own (Ray's
     * placement_group_capture_child_tasks). */
    int capture_child_tasks;
    rayc_language language; /* default C */
    /* rayc_actor_call only: refuse a call (RAYC_EBUSY) while this many calls this process made
     * to the actor are unfinished (Ray's max_pending_calls); 0: no limit. */
    int max_pending_calls;
} rayc_task_options;

void rayc_task_options_init(rayc_task_options *opts);

/* Submits fn_name(args) and stores num_returns references in out_refs (the caller holds
 * one reference to each). opts NULL: defaults. Returns 0, or RAYC_EINVAL with nothing
 * submitted (bad options: the message is logged and rayc_last_error tells it). */
int rayc_submit(const char *fn_name, const rayc_arg *args, size_t nargs, const rayc_task_options *opts,
                rayc_ref *out_refs);

/* Stores a copy of data as an object owned by this process. */
int rayc_put(const void *data, size_t size, rayc_ref *out);

/* A piece of an object's bytes. */
typedef struct rayc_iov {
    const void *data;
    size_t size;
} rayc_iov;

/* rayc_put of the concatenation of n parts, copied once, straight into the node's store
 * when large (a serializer's header and out-of-band buffers). */
int rayc_put_iov(const rayc_iov *parts, size_t n, rayc_ref *out);

/* Fetches n objects, waiting up to timeout_ms (-1: forever). Returns 0 when every object
 * is ready (each out[i] holds its bytes or its error) or RAYC_ETIMEDOUT (the ready ones are
 * filled, the others have error RAYC_ERR_TIMEOUT). Release out with rayc_object_release.
 * An object whose every copy was lost with its node is made again by rerunning its task,
 * and the get waits for it; one that cannot be has RAYC_ERR_OBJECT_LOST or
 * RAYC_ERR_OBJECT_UNRECONSTRUCTABLE_* with the reason, one whose owner died
 * RAYC_ERR_OWNER_DIED. */
int rayc_get(const rayc_ref *refs, size_t n, int64_t timeout_ms, rayc_object *out);

/* Waits until num_returns of the n objects are ready or timeout_ms passes (-1: forever);
 * ready_mask[i] is set to 1 for ready objects. With fetch_local, ready means also copied
 * to this node. Returns 0 (also on timeout: count the mask). */
int rayc_wait(const rayc_ref *refs, size_t n, size_t num_returns, int64_t timeout_ms, int fetch_local,
              uint8_t *ready_mask);

/* Cancels the task that produces ref: a queued task never runs; a running one is
 * interrupted only with force (its worker is killed). Its result becomes RAYC_ERR_CANCELLED. */
int rayc_cancel(const rayc_ref *ref, int force);
/* rayc_cancel, and with recursive the tasks the cancelled task submitted are cancelled too
 * (by the worker running it; Ray's ray.cancel(recursive=True)). */
int rayc_cancel_recursive(const rayc_ref *ref, int force, int recursive);

void rayc_ref_retain(const rayc_ref *ref);
void rayc_ref_release(const rayc_ref *ref);
/* Hex text of a reference's object ID (57 bytes with the NUL). */
char *rayc_ref_hex(const rayc_ref *ref, char *buf);

/* References inside values (a list of refs passed to a task, a ref returned by a task):
 * rayc_ref_serialize writes the ID and its owner's address into buf (up to len bytes) and
 * returns the size needed (call again with a larger buf if it is more than len). An owned
 * object that was serialized stays alive until this process exits, since holders
 * elsewhere are not counted. rayc_ref_deserialize makes a reference that the receiving
 * process can get, wait for and pass to tasks: its owner is asked for the value. It
 * holds one reference (rayc_ref_release). Returns 0 or RAYC_EINVAL. */
size_t rayc_ref_serialize(const rayc_ref *ref, void *buf, size_t len);
int rayc_ref_deserialize(const void *buf, size_t len, rayc_ref *out);

/* The message of the last API error of this thread ("" if none). */
const char *rayc_last_error(void);

/* ---- cluster queries ------------------------------------------------------------------ */

/* The GCS's internal KV store (Ray's internal_kv): a value under ns and key. Put returns 0
 * (also when the key existed and overwrite is 0: nothing changes), get returns 0 with a
 * malloc'd copy (free()) or RAYC_ENOENT. */
int rayc_kv_put(const char *ns, const char *key, const void *value, size_t size, int overwrite);
int rayc_kv_get(const char *ns, const char *key, void **value, size_t *size);

/* Ray's ray.util.list_named_actors(): the live named actors of namespace_ (NULL: the job's),
 * or of every namespace, as a JSON array of {"name": ..., "namespace": ...}. free() it;
 * NULL on error (rayc_last_error). */
char *rayc_named_actors_json(const char *namespace_, int all_namespaces);

/* Ray's placement_group_table(): the group pg (NULL: every group the GCS knows) as a JSON
 * array of objects with Ray's keys (placement_group_id, name, strategy, state, is_detached,
 * namespace, bundles {index: resources}, bundles_to_node_id {index: node hex}). free() it;
 * NULL on error (rayc_last_error). */
char *rayc_pg_table_json(const struct rayc_pg *pg);

/* Ray's ray.nodes(): every node the GCS knows, as a JSON array of objects with Ray's keys
 * (NodeID, Alive, NodeManagerAddress, NodeManagerPort, ObjectStoreSocketName, Resources,
 * Labels, NodeName). free() it; NULL on error (rayc_last_error). */
char *rayc_nodes_json(void);

/* Ray's state API (ray.util.state) rows, fresh from the GCS: resource is "nodes", "jobs",
 * "actors", "placement_groups" or "tasks" (one row per attempt, newest first, at most limit
 * when limit > 0). A JSON object {"rows": [...], "truncated": N, "dropped": N}: the tasks
 * the limit left out, and task attempts the GCS or the workers no longer keep. Field names
 * are Ray's (ActorState, NodeState, ...; see `rayc list --format json`). free() it; NULL on
 * error (rayc_last_error). */
char *rayc_state_json(const char *resource, int64_t limit);

/* ---- placement groups ----------------------------------------------------------------- */

enum { RAYC_PG_ID_SIZE = 18, RAYC_ACTOR_ID_SIZE = 16 };

/* A placement group: bundles of resources reserved together (gang scheduling), as Ray's.
 * A value; the group lives until rayc_pg_remove (or its creator's job ends, unless
 * detached). */
typedef struct rayc_pg {
    uint8_t id[RAYC_PG_ID_SIZE];
} rayc_pg;

typedef enum rayc_pg_strategy {
    RAYC_PG_PACK = 0,          /* as few nodes as possible */
    RAYC_PG_SPREAD = 1,        /* as many nodes as possible */
    RAYC_PG_STRICT_PACK = 2,   /* one node, or wait */
    RAYC_PG_STRICT_SPREAD = 3, /* a distinct node per bundle, or wait */
} rayc_pg_strategy;

typedef struct rayc_bundle {
    double num_cpus;
    double num_gpus;
    rayc_resource resources[RAYC_MAX_TASK_RESOURCES];
    size_t n_resources;
    const char *label_selector; /* e.g. "region: us" */
} rayc_bundle;

typedef struct rayc_pg_options {
    const char *name; /* optional; unique in the job's namespace */
    int detached;     /* outlives the job that created it */
} rayc_pg_options;

/* Asks for the group; it is placed in the background (see rayc_pg_wait). Returns 0 or
 * RAYC_EINVAL (bad bundles: nothing created) or RAYC_EEXIST (the name is taken). An unnamed
 * group is sent without waiting for the GCS: if the GCS refuses it, rayc_pg_wait says why. */
int rayc_pg_create(const rayc_bundle *bundles, size_t n, rayc_pg_strategy strategy, const rayc_pg_options *opts,
                   rayc_pg *out);
/* Waits until every bundle is reserved: 0, RAYC_ETIMEDOUT (still pending: rayc_last_error
 * says why), RAYC_ENOENT (removed), RAYC_EINVAL (the GCS refused it: rayc_last_error). */
int rayc_pg_wait(const rayc_pg *pg, int64_t timeout_ms);
/* Removes the group (in the background; a wait after it says RAYC_ENOENT): what runs in it
 * is killed and its resources go back exactly. Removing a removed group is no error. */
int rayc_pg_remove(const rayc_pg *pg);
/* The group named name in the job's namespace: 0 or RAYC_ENOENT. */
int rayc_pg_get(const char *name, rayc_pg *out);

/* Ray's cluster_resources() (available 0) or available_resources() (available 1): each
 * resource summed over the alive nodes, as a JSON object ({"CPU": 8, "GPU": 2, ...},
 * bundle resources included). Available amounts come from the nodes' reports, so they lag
 * by up to a report period. Free the text with free(); NULL on error (rayc_last_error). */
char *rayc_resources_json(int available);

/* ---- actors --------------------------------------------------------------------------- */

/* An actor handle: a value (copy it, pass it to tasks as bytes with RAYC_ARG_VALUE). */
typedef struct rayc_actor {
    uint8_t id[RAYC_ACTOR_ID_SIZE];
} rayc_actor;

/* A method: self is what the class's create returned. Results and failures as for remote
 * functions (rayc_return, rayc_task_fail). */
typedef int (*rayc_actor_method_fn)(void *self, rayc_task_ctx *ctx, const rayc_object *args, size_t nargs);

typedef struct rayc_actor_method {
    const char *name;
    rayc_actor_method_fn fn;
} rayc_actor_method;

/* An actor class: a constructor, a destructor and methods, registered by name (like remote
 * functions, from libraries on the code search path). */
typedef struct rayc_actor_class {
    const char *name;
    /* Builds the actor's state from the creation arguments; NULL fails the creation (with
     * rayc_task_fail's message). */
    void *(*create)(rayc_task_ctx *ctx, const rayc_object *args, size_t nargs);
    void (*destroy)(void *self); /* may be NULL */
    const rayc_actor_method *methods; /* ended by {NULL, NULL} */
} rayc_actor_class;

int rayc_register_actor_class(const rayc_actor_class *cls);

#define RAYC_ACTOR_CLASS(var)                                                                   \
    __attribute__((constructor)) static void rayc__register_class_##var(void)                  \
    {                                                                                           \
        rayc_register_actor_class(&(var));                                                      \
    }

typedef struct rayc_actor_options {
    /* Resources held for the actor's life. num_cpus < 0 (the default) is Ray's default:
     * an actor that names no other resource is placed by 1 CPU and holds none; one that
     * names GPUs, custom resources or an accelerator type holds 1 CPU besides them. */
    double num_cpus;
    double num_gpus;
    uint64_t gpu_memory;
    rayc_resource resources[RAYC_MAX_TASK_RESOURCES];
    size_t n_resources;
    const char *accelerator_type;
    const char *label_selector;
    rayc_strategy strategy;
    uint8_t node_id[RAYC_NODE_ID_SIZE];
    int soft;
    const char *name;       /* a named actor, found with rayc_get_actor */
    const char *namespace_; /* NULL: the job's */
    int get_if_exists;      /* a named actor that exists is returned instead of an error */
    int detached;           /* outlives its creator */
    int max_restarts;       /* restarts after its worker dies; -1: forever; default 0 */
    int max_task_retries;   /* calls retried across restarts; -1: forever; default 0 */
    int max_concurrency;    /* > 1: calls run on that many threads; default 1 (in order) */
    const rayc_pg *placement_group; /* NULL: none */
    int bundle_index;               /* -1: any bundle of the group */
    int capture_child_tasks;        /* as for tasks: what its methods create joins its group */
    rayc_language language;         /* default C */
} rayc_actor_options;

void rayc_actor_options_init(rayc_actor_options *opts);

/* Creates an actor of class_name (in the background: calls queue until it is up). Returns
 * 0, RAYC_EINVAL (bad options), RAYC_EEXIST (the name is taken and get_if_exists is 0). */
int rayc_actor_create(const char *class_name, const rayc_arg *args, size_t nargs, const rayc_actor_options *opts,
                      rayc_actor *out);
/* Calls method with args; calls from one caller run in the order they were made (unless
 * max_concurrency > 1). opts: only num_returns and name are used (NULL: defaults). A call
 * to a dead actor yields an RAYC_ERR_ACTOR_DIED object naming the cause. */
int rayc_actor_call(const rayc_actor *actor, const char *method, const rayc_arg *args, size_t nargs,
                    const rayc_task_options *opts, rayc_ref *out_refs);
/* Kills the actor (its worker exits now); with no_restart its restarts are not used. */
int rayc_actor_kill(const rayc_actor *actor, int no_restart);
/* The handle of the actor named name in namespace_ (NULL: the job's). RAYC_ENOENT if none. */
int rayc_get_actor(const char *name, const char *namespace_, rayc_actor *out);
/* The creator is done with a non-detached actor: once its pending calls finish, the actor
 * is stopped (Ray: every handle went out of scope). No effect elsewhere. */
int rayc_actor_release(const rayc_actor *actor);

typedef enum rayc_actor_state {
    RAYC_ACTOR_PENDING = 0, /* waiting for dependencies or resources */
    RAYC_ACTOR_ALIVE = 2,
    RAYC_ACTOR_RESTARTING = 3,
    RAYC_ACTOR_DEAD = 4,
} rayc_actor_state;

typedef struct rayc_actor_info {
    rayc_actor_state state;
    int num_restarts;
    uint8_t node_id[RAYC_NODE_ID_SIZE];
    int pid;
    char death_cause[512]; /* "" unless dead */
} rayc_actor_info;

/* What the GCS says of the actor now. */
int rayc_actor_info_get(const rayc_actor *actor, rayc_actor_info *out);

/* ---- remote functions ----------------------------------------------------------------- */

/* A remote function: args are the resolved arguments (bytes; an argument whose object is an
 * error never reaches the function: the task fails with that error). It sets its results
 * with rayc_return and returns 0, or reports failure with rayc_task_fail (or a non-zero
 * return) and returns non-zero. */
typedef int (*rayc_remote_fn)(rayc_task_ctx *ctx, const rayc_object *args, size_t nargs);

/* How many results the task returns (rayc_return indices 0..n-1). */
int rayc_task_num_returns(const rayc_task_ctx *ctx);

/* Sets return value index (0-based, < num_returns) to a copy of data. */
int rayc_return(rayc_task_ctx *ctx, int index, const void *data, size_t size);
/* rayc_return of the concatenation of n parts, copied once (large results go straight
 * into the node's store). */
int rayc_return_iov(rayc_task_ctx *ctx, int index, const rayc_iov *parts, size_t n);
/* Fails the task with a message (printf-style); the caller's get sees RAYC_ERR_TASK_FAILED
 * with the message, the task's name and its node. Returns -1 for `return rayc_task_fail(...)`. */
int rayc_task_fail(rayc_task_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* For language bindings whose errors are values: the results set are the error the task
 * raised (message: a one-line summary, or NULL). The caller still gets those values; the
 * task counts as FAILED (TASK_EXECUTION_EXCEPTION) in the cluster's task events
 * (`rayc list tasks`). */
void rayc_task_mark_failed(rayc_task_ctx *ctx, const char *message);

/* Registers fn under name for this process (workers register what their libraries
 * declare with RAYC_REMOTE when loaded). Returns 0 or RAYC_EEXIST. */
int rayc_register_function(const char *name, rayc_remote_fn fn);

#define RAYC_REMOTE(fn)                                                                         \
    __attribute__((constructor)) static void rayc__register_##fn(void)                         \
    {                                                                                           \
        rayc_register_function(#fn, fn);                                                        \
    }

/* ---- language bindings ---------------------------------------------------------------- */

/* How a language binding runs its tasks in its workers: each callback runs on a task
 * thread (the thread in rayc_worker_main, or one of an actor's max_concurrency threads)
 * with the task's context, as remote functions and actor methods do. function is what
 * the submitter passed as fn_name (the binding's own key), class_name and method are the
 * actor class and method names. */
typedef struct rayc_executor {
    int (*run_task)(rayc_task_ctx *ctx, const char *function, const rayc_object *args, size_t nargs);
    void *(*create_actor)(rayc_task_ctx *ctx, const char *class_name, const rayc_object *args, size_t nargs);
    int (*call_method)(void *self, rayc_task_ctx *ctx, const char *method, const rayc_object *args, size_t nargs);
    void (*destroy_actor)(void *self); /* may be NULL */
    /* rayc_cancel without force of the task running now (a normal task): interrupt it
     * (Python raises KeyboardInterrupt in it, as Ray does). Called on the core's loop
     * thread: must not block. May be NULL (the task runs on). */
    void (*interrupt)(void);
} rayc_executor;

/* An actor method that finishes later (an async actor's coroutine): inside call_method,
 * rayc_task_defer hands the call to the binding and returns its context (NULL unless the
 * task is an actor method); the task thread is free at once for the next call. Any thread
 * then sets the results (rayc_return, rayc_return_iov, rayc_task_fail) and answers the
 * call with rayc_task_finish(ctx, rc) (rc as call_method's), which frees ctx. */
rayc_task_ctx *rayc_task_defer(rayc_task_ctx *ctx);
void rayc_task_finish(rayc_task_ctx *ctx, int rc);

/* Streaming generators (Ray's num_returns="streaming"): the executor reports each value
 * as it is yielded; the task's owner owns it from then on and its caller can take it
 * before the task ends (rayc_generator_next). index counts from 0; the task itself has one
 * return (conventionally the number of values). Blocks until the owner has the value. */
int rayc_report_generator_item(rayc_task_ctx *ctx, int64_t index, const rayc_iov *parts, size_t n);
/* The owner's side: waits up to timeout_ms for value index of the generator task whose
 * return is gen; 0 with *item (the caller holds one reference: rayc_ref_release), or
 * RAYC_ETIMEDOUT (not reported yet: the task may still be running, or may have ended with
 * fewer values: check gen), RAYC_EEXIST (that value was taken already). */
int rayc_generator_next(const rayc_ref *gen, size_t index, int64_t timeout_ms, rayc_ref *item);

/* Installs the executor of language's tasks in this process (before rayc_worker_main). */
int rayc_set_executor(rayc_language language, const rayc_executor *ex);

/* Runs this process as a worker started by a raylet: argv as rayc-worker takes it
 * (--raylet-socket --node-id --node-ip-address --worker-id --job-id --gcs-address
 * [--code-search-path]). Joins the raylet and runs tasks on the calling thread until the
 * raylet ends the worker; returns the exit status. */
int rayc_worker_main(int argc, char **argv);

/* ---- inside a task -------------------------------------------------------------------- */

/* The GPU instances of the current task's lease (what CUDA_VISIBLE_DEVICES lists). Stores
 * up to max indices in ids and returns how many there are (0 outside tasks). */
int rayc_get_gpu_ids(int *ids, int max);

typedef struct rayc_runtime_context {
    uint8_t node_id[RAYC_NODE_ID_SIZE];
    uint8_t job_id[RAYC_JOB_ID_SIZE];
    uint8_t task_id[RAYC_TASK_ID_SIZE]; /* zero outside tasks */
    uint8_t worker_id[28];
    const char *task_name;              /* NULL outside tasks; valid during the task */
    double num_cpus, num_gpus;          /* assigned to the current task */
    int in_task;
    uint8_t actor_id[RAYC_ACTOR_ID_SIZE]; /* the actor this worker hosts; zero if none */
    int is_actor;
    const char *namespace_;             /* the job's Ray namespace */
    char node_ip[64];
    /* the placement group the current task (or this worker's actor) was scheduled in */
    uint8_t placement_group_id[RAYC_PG_ID_SIZE];
    int in_placement_group;
} rayc_runtime_context;

int rayc_get_runtime_context(rayc_runtime_context *out);

#ifdef __cplusplus
}
#endif

#endif
