/*
 * rayc-raylet's command line, shared with `rayc start` (which validates the raylet flags
 * before it starts anything, with the very function the raylet uses).
 *
 * Flags (Ray's names where Ray has them):
 *   --gcs-address HOST:PORT          the GCS to join (required)
 *   --head                           this is the head node (adds node:__internal_head__)
 *   --node-ip-address IP             address other nodes use for this one (default: the
 *                                    local address that reaches the GCS)
 *   --node-manager-port N            port of the raylet's RPC server (0: any free port)
 *   --metrics-export-port N          port of the raylet's Prometheus /metrics endpoint (0,
 *                                    the default: any free port; reported in the node table)
 *   --node-name NAME
 *   --num-cpus N  --num-gpus N       override detection
 *   --accelerator-type T             GPU model (A100, H100, RTX4090, ...)
 *   --gpu-memory SIZE                memory per GPU (80GiB, 24GB, bytes)
 *   --memory SIZE  --object-store-memory SIZE
 *   --resources JSON                 custom resources, e.g. '{"fast_disk": 1}'
 *   --labels k=v,k2=v2               node labels
 *   --ready-file PATH                written (node ID, port) once registered
 *   --session-dir DIR                session directory for sockets and worker logs (default:
 *                                    <root>/session_latest when it exists, e.g. under
 *                                    `rayc start`, else a new session via rc_session_create)
 *   --worker-command PATH            program started as a worker (default: rayc-worker next
 *                                    to rayc-raylet; tests run a fake worker)
 *   --python-executable PATH         interpreter started (with -m
 *                                    ray._private.workers.default_worker) as a worker for
 *                                    Python tasks (default: $RAYC_PYTHON if set, else
 *                                    /usr/bin/python3; a bare name is looked up in PATH)
 *
 * Security (ARCHITECTURE §14; one of the first two forms is required):
 *   --join-token T --ca-cert-hash sha256:<hex>
 *                                    join a secure cluster: fetch the GCS's CA, pin it by
 *                                    hash, and trade the token and CSRs for certificates
 *   --join-token T --ca-cert FILE    the same, trusting the CA in FILE (no fetch; a hash
 *                                    given too must match it)
 *   --insecure                       plaintext, no credentials: for a development cluster
 *                                    whose GCS runs with --insecure
 *   --auth-dir DIR                   also write ca.crt, node.key, node.crt, worker.key and
 *                                    worker.crt there (keys 0600); without it they stay in
 *                                    memory
 *   --bind-all                       listen on every interface instead of the node IP only
 *
 * For tests and demos only (a host that misbehaves on purpose in the market's verification
 * challenge):
 *   --testing-challenge-corrupt      commit to a product with wrong rows (a fake GPU)
 *   --testing-challenge-delay-ms N   answer the challenge N ms late (a host too slow)
 *
 * Any thread; no global state.
 */
#ifndef RAYC_RAYLET_RAYLET_H
#define RAYC_RAYLET_RAYLET_H

#include <stddef.h>
#include <stdint.h>

enum { RAYLET_MAX_CUSTOM = 64, RAYLET_MAX_LABELS = 64 };

typedef struct raylet_kv {
    char *key;
    char *value;
} raylet_kv;

typedef struct raylet_options {
    char *gcs_address;
    int is_head;
    char *node_ip_address; /* NULL: detect */
    int node_manager_port;
    int metrics_export_port; /* 0: any free port */
    char *node_name;
    double num_cpus;            /* < 0: detect */
    double num_gpus;            /* < 0: detect */
    char *accelerator_type;     /* NULL: detect */
    int64_t gpu_memory;         /* bytes per GPU; 0: detect or unknown */
    int64_t memory;             /* < 0: detect */
    int64_t object_store_memory; /* < 0: detect */
    int object_store_prefault;   /* 0 or 1; < 0: the config object_store_prefault */
    char *resource_names[RAYLET_MAX_CUSTOM];
    double resource_values[RAYLET_MAX_CUSTOM];
    size_t n_resources;
    raylet_kv labels[RAYLET_MAX_LABELS];
    size_t n_labels;
    char *ready_file;
    char *session_dir;    /* NULL: see --session-dir */
    char *worker_command; /* NULL: <dir of rayc-raylet>/rayc-worker */
    char *python_executable; /* NULL: raylet_python_executable's default */
    char *join_token;     /* NULL unless --join-token */
    char *ca_cert_hash;   /* "sha256:<64 hex>", NULL unless --ca-cert-hash */
    char *ca_cert_file;   /* NULL unless --ca-cert */
    char *auth_dir;       /* NULL: credentials stay in memory */
    int insecure;
    int bind_all;
    int exit_with_parent; /* stop (as on SIGTERM) once the process that started it is gone */
    /* For tests and demos only (the market's local provider): the verification challenge
     * misbehaves on purpose (raylet_challenge.c). */
    int testing_challenge_corrupt;      /* commits to a product with wrong rows */
    int64_t testing_challenge_delay_ms; /* answers this much later */
} raylet_options;

/* Fills opts from argv[0..argc) (flags only, no program name). Returns 0, or RC_EINVAL with
 * a message naming the bad flag and why in err. opts must be released with
 * raylet_options_free either way. require_gcs: 0 lets `rayc start` validate before the GCS
 * address is known, and before it has added the head node's own join token and CA (so the
 * security requirement below is checked only with require_gcs 1). */
int raylet_options_parse(raylet_options *opts, int argc, char **argv, int require_gcs, char *err,
                         size_t errlen);
void raylet_options_free(raylet_options *opts);
/* The interpreter Python workers run: --python-executable, else $RAYC_PYTHON when set and
 * not empty, else /usr/bin/python3. Points into opts or the environment. */
const char *raylet_python_executable(const raylet_options *opts);
/* 0 if opts can join a cluster: --insecure, or --join-token with --ca-cert-hash or
 * --ca-cert. Otherwise RC_EINVAL and a sentence in err saying what to pass. `rayc start
 * --address` calls it itself (it parses with require_gcs 0). */
int raylet_options_check_security(const raylet_options *opts, char *err, size_t errlen);
/* 1 if flag (e.g. "--num-gpus") is a raylet flag that takes a value, 0 if it takes none
 * ("--head"), -1 if it is not a raylet flag. */
int raylet_flag_arity(const char *flag);

/* Parses "80GiB", "24GB", "512MiB", "1.5TiB" or a byte count. Returns 0 or RC_EINVAL. */
int raylet_parse_size(const char *text, int64_t *bytes);
/* Validates and parses the --resources JSON object into opts. */
int raylet_parse_resources(raylet_options *opts, const char *json, char *err, size_t errlen);
/* Validates and parses "k=v,k2=v2" into opts. */
int raylet_parse_labels(raylet_options *opts, const char *text, char *err, size_t errlen);

#endif
