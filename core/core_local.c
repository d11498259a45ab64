/*
 * rayc_init without an address: a cluster of this process's own, like ray.init() — a GCS
 * and one raylet started in a new session directory, stopped again by rayc_shutdown.
 *
 * It is secure the way `rayc start --head` is (ARCHITECTURE §14): the GCS writes the CA and
 * the admin token into the session, the raylet joins with a single-use join token made with
 * them, and the driver keeps them (cw->local_ca_pem, cw->local_token) to connect with, so
 * another cluster's credentials in its environment never get in the way. RAYC_INSECURE=1
 * starts both daemons with --insecure instead. Everything listens on 127.0.0.1 only.
 *
 * Calling thread only (rayc_init / rayc_shutdown).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core_int.h"
#include "gcs_client_auth.h"
#include "rc_alloc.h"
#include "rc_err.h"
#include "rc_session.h"
#include "rc_time.h"

/* Where rayc-gcs and rayc-raylet are: RAYC_BIN_DIR, else next to this executable. */
static void core__bin_dir(char *out, size_t len)
{
    const char *env = getenv("RAYC_BIN_DIR");
    if (env && *env) {
        snprintf(out, len, "%s", env);
        return;
    }
    if (rc_exe_dir(out, len) < 0)
        snprintf(out, len, ".");
}

static int core__wait_file(const char *session, const char *name, pid_t pid, int64_t timeout_ms)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", session, name);
    int64_t deadline = rc_mono_ms() + timeout_ms;
    while (rc_mono_ms() < deadline) {
        if (access(path, R_OK) == 0)
            return 0;
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return RC_ESTATE;
        rc_sleep_ms(10);
    }
    return RC_ETIMEDOUT;
}

static void core__stop_pid(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    for (int i = 0; i < 500; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return;
        rc_sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

enum { CORE__LOCAL_TOKEN_TTL_S = 600 };

/* The local GCS's admin credentials and a single-use join token for its raylet. */
static int core__local_join_token(core_worker *cw, const char *session, const char *address, char **token)
{
    char err[1024];
    gcs_admin_creds creds = {0};
    if (gcs_admin_creds_from_dir(session, 15000, &creds, err, sizeof(err)) < 0) {
        fprintf(stderr, "rayc: the local GCS gave no credentials: %s; see %s/logs/gcs_server.err\n", err, session);
        return RC_EUNAVAIL;
    }
    gcs_join_token_spec spec = {.ttl_seconds = CORE__LOCAL_TOKEN_TTL_S, .max_uses = 1};
    int rc = gcs_auth_create_join_token_sync(address, &creds, &spec, 10000, token, NULL, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "rayc: cannot make a join token for the local raylet: %s\n", err);
        gcs_admin_creds_free(&creds);
        return rc;
    }
    cw->local_ca_pem = creds.ca_cert_pem; /* the driver connects with these */
    cw->local_token = creds.token;
    return 0;
}

int core_local_cluster_start(core_worker *cw, const rayc_init_options *opts, char *address, size_t len)
{
    char bin[1024], exe[1100], session[512];
    core__bin_dir(bin, sizeof(bin));
    if (rc_session_create(session, sizeof(session)) < 0) {
        fprintf(stderr, "rayc: cannot create a session directory: %s\n", strerror(errno));
        return RC_EIO;
    }
    /* Clients looking for the cluster `rayc start` runs on this host pass this one by. */
    rc_session_write(session, "driver_local", "this session's cluster ends with the driver that started it\n");
    const char *insecure = getenv("RAYC_INSECURE");
    cw->local_insecure = insecure && (!strcmp(insecure, "1") || !strcmp(insecure, "true"));
    snprintf(cw->local_session, sizeof(cw->local_session), "%s", session);
    snprintf(exe, sizeof(exe), "%s/rayc-gcs", bin);
    char port_file[600];
    snprintf(port_file, sizeof(port_file), "%s/gcs_port", session);
    char *gcs_argv[] = {exe, "--host", "127.0.0.1", "--port", "0", "--port-file", port_file, "--exit-with-parent",
                        cw->local_insecure ? "--insecure" : "--auth-dir", cw->local_insecure ? NULL : session,
                        NULL};
    if (rc_spawn_daemon(session, "gcs_server", exe, gcs_argv, &cw->local_gcs_pid) < 0) {
        fprintf(stderr, "rayc: cannot start %s: %s (set RAYC_BIN_DIR)\n", exe, strerror(errno));
        return RC_ESYS;
    }
    if (core__wait_file(session, "gcs_port", cw->local_gcs_pid, 15000) < 0) {
        fprintf(stderr, "rayc: the local GCS did not start; see %s/logs/gcs_server.err\n", session);
        core__stop_pid(cw->local_gcs_pid);
        cw->local_gcs_pid = 0;
        return RC_EUNAVAIL;
    }
    char port[32];
    rc_session_read(session, "gcs_port", port, sizeof(port));
    snprintf(address, len, "127.0.0.1:%s", port);
    char *token = NULL;
    if (!cw->local_insecure && core__local_join_token(cw, session, address, &token) < 0) {
        core_local_cluster_stop(cw);
        return RC_EUNAVAIL;
    }

    snprintf(exe, sizeof(exe), "%s/rayc-raylet", bin);
    char ready[600], cpus[32], gpus[32], ca_path[600];
    snprintf(ready, sizeof(ready), "%s/raylet_ready.json", session);
    snprintf(ca_path, sizeof(ca_path), "%s/" GCS_AUTH_CA_CERT_FILE, session);
    char *argv[32];
    int n = 0;
    argv[n++] = exe;
    argv[n++] = "--gcs-address";
    argv[n++] = address;
    argv[n++] = "--head";
    argv[n++] = "--exit-with-parent";
    argv[n++] = "--node-ip-address";
    argv[n++] = "127.0.0.1";
    argv[n++] = "--session-dir";
    argv[n++] = session;
    argv[n++] = "--ready-file";
    argv[n++] = ready;
    if (cw->local_insecure) {
        argv[n++] = "--insecure";
    } else {
        argv[n++] = "--join-token";
        argv[n++] = token;
        argv[n++] = "--ca-cert";
        argv[n++] = ca_path;
        argv[n++] = "--auth-dir";
        argv[n++] = session;
    }
    if (opts && opts->num_cpus >= 0) {
        snprintf(cpus, sizeof(cpus), "%g", opts->num_cpus);
        argv[n++] = "--num-cpus";
        argv[n++] = cpus;
    }
    if (opts && opts->num_gpus >= 0) {
        snprintf(gpus, sizeof(gpus), "%g", opts->num_gpus);
        argv[n++] = "--num-gpus";
        argv[n++] = gpus;
    }
    if (opts && opts->labels && *opts->labels) {
        argv[n++] = "--labels";
        argv[n++] = (char *)opts->labels;
    }
    if (opts && opts->resources_json) {
        argv[n++] = "--resources";
        argv[n++] = (char *)opts->resources_json;
    }
    argv[n] = NULL;
    int started = rc_spawn_daemon(session, "raylet", exe, argv, &cw->local_raylet_pid) == 0;
    rc_free(token);
    if (!started || core__wait_file(session, "raylet_ready.json", cw->local_raylet_pid, 30000) < 0) {
        fprintf(stderr, "rayc: the local raylet did not start; see %s/logs/raylet.err\n", session);
        core_local_cluster_stop(cw);
        return RC_EUNAVAIL;
    }
    rc_session_write(session, "gcs_address", address);
    if (cw->local_insecure)
        rc_session_write(session, GCS_AUTH_INSECURE_FILE, "");
    return 0;
}

void core_local_cluster_stop(core_worker *cw)
{
    core__stop_pid(cw->local_raylet_pid);
    core__stop_pid(cw->local_gcs_pid);
    cw->local_raylet_pid = cw->local_gcs_pid = 0;
    gcs_admin_creds creds = {cw->local_ca_pem, cw->local_token}; /* the token is wiped */
    gcs_admin_creds_free(&creds);
    cw->local_ca_pem = cw->local_token = NULL;
}
