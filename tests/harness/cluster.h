/*
 * Test harness: real rayc clusters on loopback for integration tests.
 *
 * A harness_cluster owns a private session root (a temp directory), a rayc-gcs process
 * (memory storage, or Redis storage on a private redis-server), and raylets. Daemons are
 * started with fork+exec from the calling thread with PR_SET_PDEATHSIG, so a test killed by
 * its timeout leaves nothing behind; their logs go to <root>/logs/<name>.err. Configuration
 * reaches them through the environment (set RAYC_<name> before starting them).
 *
 * Security is on, as users run rayc: init makes the cluster's CA (root/ca.crt, ca.key) and
 * an admin token (root/auth_token) before the GCS starts with --auth-dir root, so the GCS
 * adopts them; Redis runs with a password; every raylet joins with a single-use join token
 * and the CA file. The test process itself becomes an admin client: RAYC_CA_CERT and
 * RAYC_AUTH_TOKEN are set (drivers started by the test find them) and the process-wide rpc
 * security is TLS with that token and a server certificate of its own (CN "worker:test",
 * IP 127.0.0.1), so fake raylets and workers served by the test speak TLS too.
 *
 * Blocking calls: main thread only; not thread-safe.
 */
#ifndef RAYC_TESTS_HARNESS_CLUSTER_H
#define RAYC_TESTS_HARNESS_CLUSTER_H

#include <limits.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

#include "redis_server.h"

enum { HARNESS_MAX_RAYLETS = 16 };

typedef struct harness_raylet {
    pid_t pid; /* > 0 while running (not yet reaped) */
    int port;
    char node_id[64]; /* hex */
    char name[32];    /* log name: raylet<i> */
} harness_raylet;

typedef struct harness_cluster {
    char root[256];
    char *ca_key, *ca_cert; /* PEM, the cluster CA */
    char *admin_token;
    char bin[PATH_MAX];
    int use_redis;
    harness_redis redis;
    int gcs_port; /* chosen at the first start, kept across restarts */
    pid_t gcs_pid;
    int gcs_starts;
    char gcs_address[64];
    harness_raylet raylets[HARNESS_MAX_RAYLETS];
    int n_raylets;
} harness_cluster;

/* Prepares an empty cluster (and, with use_redis, starts its redis-server). Sets
 * RAYC_SESSION_ROOT to the cluster's root. Returns 0 or RC_E*. */
int harness_cluster_init(harness_cluster *c, int use_redis);
/* Starts rayc-gcs (again, after a kill: same port, same Redis) and waits until it serves. */
int harness_gcs_start(harness_cluster *c);
/* Sends sig to the GCS and reaps it. */
void harness_gcs_kill(harness_cluster *c, int sig);
/* Starts a raylet with extra flags (NULL-terminated list, may be NULL) and waits until it
 * has registered. Stores its index in *index. */
int harness_raylet_start(harness_cluster *c, const char *const *extra, int *index);
/* Sends sig to raylet i (no reaping). */
void harness_raylet_signal(harness_cluster *c, int i, int sig);
/* Waits up to timeout_ms for raylet i to exit; returns its exit status (128+signal for a
 * signal) or -1 if it is still running. */
int harness_raylet_wait_exit(harness_cluster *c, int i, int timeout_ms);
/* 1 if raylet i is still running. */
int harness_raylet_alive(harness_cluster *c, int i);
/* Path of a daemon's stderr log ("gcs", "raylet0", ...). */
void harness_log_path(const harness_cluster *c, const char *name, char *out, size_t outlen);
/* 1 if the log of name contains text. */
int harness_log_contains(const harness_cluster *c, const char *name, const char *text);
/* A join token from the GCS (AuthService/CreateJoinToken as admin): ttl_s 0 = never
 * expires, max_uses 0 = unlimited, labels "k=v,..." or NULL. 0 and out, or RC_E*. */
int harness_join_token(harness_cluster *c, int64_t ttl_s, int max_uses, const char *labels, char *out,
                       size_t outlen);
/* A key and certificate signed by the cluster CA with subject CN cn and IP 127.0.0.1 (for
 * tests that act as a node or the GCS). Free both with rc_free. */
int harness_issue_cert(const harness_cluster *c, const char *cn, char **key_pem, char **cert_pem);
/* Stops everything and removes the root. */
void harness_cluster_destroy(harness_cluster *c);

#endif
