/*
 * rayc_init without an address, as ray.init() does it: join the cluster `rayc start` runs on
 * this host if there is one (core_local_cluster_find), else start a cluster of this process's
 * own — a GCS and one raylet in a new session directory, stopped again by rayc_shutdown
 * (core_local_cluster_start).
 *
 * Finding the cluster: the sessions under the session root (RAYC_SESSION_ROOT or /tmp/rayc),
 * session_latest first, then the others newest first. A session counts when its raylet runs
 * (its pid file), it records a GCS address, that GCS accepts connections, and no driver
 * started it for itself (such a session holds "driver_local": its cluster ends with that
 * driver). The driver then calls with that session's credentials (ca.crt, auth_token, or the
 * mark of an --insecure cluster), unless the environment names others.
 *
 * A local cluster is secure the way `rayc start --head` is (ARCHITECTURE §14): the GCS writes
 * the CA and the admin token into the session, the raylet joins with a single-use join token
 * made with them, and the driver keeps them (cw->local_ca_pem, cw->local_token) to connect
 * with, so another cluster's credentials in its environment never get in the way.
 * RAYC_INSECURE=1 starts both daemons with --insecure instead. Everything listens on
 * 127.0.0.1 only.
 *
 * The daemons' programs are found without any setting: next to librayc (<lib>/../bin, the
 * layout of both `make install` and the build tree), next to the running program, or on
 * PATH; RAYC_BIN_DIR, when set, overrides them all.
 *
 * Calling thread only (rayc_init / rayc_shutdown).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core_int.h"
#include "gcs_client_auth.h"
#include "rc_alloc.h"
#include "rc_buf.h"
#include "rc_err.h"
#include "rc_session.h"
#include "rc_time.h"

/* ---- the daemons' programs ------------------------------------------------------------ */

static int core__has_daemons(const char *dir)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/rayc-gcs", dir);
    if (access(path, X_OK) != 0)
        return 0;
    snprintf(path, sizeof(path), "%s/rayc-raylet", dir);
    return access(path, X_OK) == 0;
}

/* Tries dir: 1 (and out set) if it holds both programs, else 0 with dir added to looked. */
static int core__try_bin_dir(const char *dir, char *out, size_t len, rc_buf *looked)
{
    if (!dir || !*dir)
        return 0;
    if (core__has_daemons(dir)) {
        snprintf(out, len, "%s", dir);
        return 1;
    }
    rc_buf_printf(looked, "%s%s", looked->len ? ", " : "", dir);
    return 0;
}

/* The first directory on PATH that holds both programs: 1 (and out set) or 0. */
static int core__path_bin_dir(char *out, size_t len)
{
    char dir[PATH_MAX];
    for (const char *p = getenv("PATH"); p && *p;) {
        size_t n = strcspn(p, ":");
        if (n > 0 && n < sizeof(dir)) {
            memcpy(dir, p, n);
            dir[n] = '\0';
            if (core__has_daemons(dir)) {
                snprintf(out, len, "%s", dir);
                return 1;
            }
        }
        p += n + (p[n] == ':');
    }
    return 0;
}

/* The directory of the file this code was loaded from: librayc.so, or the program itself
 * when librayc is linked in statically. */
static int core__library_dir(char *out, size_t len)
{
    Dl_info info;
    char real[PATH_MAX];
    if (!dladdr((void *)core_local_cluster_start, &info) || !info.dli_fname || !realpath(info.dli_fname, real))
        return RC_ENOENT;
    snprintf(out, len, "%s", dirname(real));
    return 0;
}

/* Where rayc-gcs and rayc-raylet are. 0 and the directory in out, or RC_ENOENT with a
 * sentence in err that says where it looked and what to do. */
static int core__bin_dir(char *out, size_t len, char *err, size_t errlen)
{
    const char *env = getenv("RAYC_BIN_DIR");
    if (env && *env) {
        if (core__has_daemons(env)) {
            snprintf(out, len, "%s", env);
            return 0;
        }
        snprintf(err, errlen,
                 "RAYC_BIN_DIR=%s holds no rayc-gcs and rayc-raylet; point it at the bin directory of a rayc "
                 "build or installation, or unset it to find them next to librayc or on PATH",
                 env);
        return RC_ENOENT;
    }
    char lib[PATH_MAX], up[PATH_MAX + 8], real[PATH_MAX], exe[PATH_MAX];
    const char *candidates[3];
    size_t n = 0;
    if (core__library_dir(lib, sizeof(lib)) == 0) {
        snprintf(up, sizeof(up), "%s/../bin", lib);
        candidates[n++] = realpath(up, real) ? real : up;
        candidates[n++] = lib;
    }
    if (rc_exe_dir(exe, sizeof(exe)) == 0 && (n == 0 || strcmp(exe, lib) != 0))
        candidates[n++] = exe; /* librayc linked into the program: the same directory */
    rc_buf looked = RC_BUF_INIT;
    int found = 0;
    for (size_t i = 0; i < n && !found; i++)
        found = core__try_bin_dir(candidates[i], out, len, &looked);
    if (!found)
        found = core__path_bin_dir(out, len);
    if (!found)
        snprintf(err, errlen,
                 "cannot start a local cluster: rayc-gcs and rayc-raylet are not next to librayc, next to this "
                 "program or on PATH (looked in %s%sPATH). Install rayc (`make install`) or add its bin directory "
                 "to PATH (RAYC_BIN_DIR=DIR names it explicitly); or start a cluster on this host with `rayc start "
                 "--head`, or set RAYC_ADDRESS to a running one, and rayc_init joins it",
                 rc_buf_cstr(&looked), looked.len ? ", " : "");
    rc_buf_free(&looked);
    return found ? 0 : RC_ENOENT;
}

/* ---- the cluster `rayc start` runs on this host ------------------------------------- */

enum { CORE__FIND_MAX_SESSIONS = 64, CORE__FIND_CONNECT_MS = 1000 };

/* 1 if something accepts TCP connections at address ("host:port" or "[v6]:port") within
 * timeout_ms. */
static int core__gcs_answers(const char *address, int timeout_ms)
{
    char host[300], port[16];
    const char *colon = strrchr(address, ':');
    if (!colon || colon == address || strlen(colon + 1) >= sizeof(port))
        return 0;
    size_t hlen = (size_t)(colon - address);
    if (address[0] == '[' && hlen >= 2 && address[hlen - 1] == ']') {
        address++;
        hlen -= 2;
    }
    if (hlen >= sizeof(host))
        return 0;
    memcpy(host, address, hlen);
    host[hlen] = '\0';
    snprintf(port, sizeof(port), "%s", colon + 1);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(host, port, &hints, &res) != 0)
        return 0;
    int ok = 0;
    for (struct addrinfo *ai = res; ai && !ok; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            ok = 1;
        } else if (errno == EINPROGRESS) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            int soerr = 0;
            socklen_t slen = sizeof(soerr);
            ok = poll(&pfd, 1, timeout_ms) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) == 0 &&
                 soerr == 0;
        }
        close(fd);
    }
    freeaddrinfo(res);
    return ok;
}

/* 1 if session holds a cluster of `rayc start` that runs, with its GCS address in address. */
static int core__session_live(const char *session, char *address, size_t len)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/driver_local", session);
    if (access(path, F_OK) == 0)
        return 0;
    snprintf(path, sizeof(path), "%s/pids/raylet.pid", session);
    if (!rc_pid_file_alive(path))
        return 0;
    if (rc_session_read(session, "gcs_address", address, len) < 0 || !address[0])
        return 0;
    return core__gcs_answers(address, CORE__FIND_CONNECT_MS);
}

static int core__cmp_desc(const void *a, const void *b)
{
    return strcmp(*(char *const *)b, *(char *const *)a);
}

/* The sessions to look at: session_latest, then up to CORE__FIND_MAX_SESSIONS others,
 * newest first (their names begin with the date and time). *n_out paths, each and the
 * array freed by the caller with rc_free. */
static char **core__candidate_sessions(size_t *n_out)
{
    char root[PATH_MAX];
    rc_session_root(root, sizeof(root));
    size_t n = 0, cap = 16;
    char **names = rc_malloc(cap * sizeof(*names));
    DIR *d = opendir(root);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (strncmp(e->d_name, "session_2", 9) != 0)
            continue;
        if (n == cap) {
            cap *= 2;
            names = rc_realloc(names, cap * sizeof(*names));
        }
        names[n++] = rc_strdup(e->d_name);
    }
    if (d)
        closedir(d);
    qsort(names, n, sizeof(*names), core__cmp_desc);
    size_t keep = n < CORE__FIND_MAX_SESSIONS ? n : CORE__FIND_MAX_SESSIONS;
    char **out = rc_malloc((keep + 1) * sizeof(*out));
    char path[2 * PATH_MAX];
    size_t m = 0;
    snprintf(path, sizeof(path), "%s/session_latest", root);
    out[m++] = rc_strdup(path);
    for (size_t i = 0; i < n; i++) {
        if (i < keep) {
            snprintf(path, sizeof(path), "%s/%s", root, names[i]);
            out[m++] = rc_strdup(path);
        }
        rc_free(names[i]);
    }
    rc_free(names);
    *n_out = m;
    return out;
}

/* 1 if the environment names the credentials to use (they win over a session's). */
static int core__env_credentials(void)
{
    static const char *const keys[] = {"RAYC_AUTH_TOKEN", "RAYC_AUTH_TOKEN_PATH", "RAYC_CA_CERT"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *v = getenv(keys[i]);
        if (v && *v)
            return 1;
    }
    const char *insecure = getenv("RAYC_INSECURE"); /* as rpc_security_from_env reads it */
    return insecure && (!strcmp(insecure, "1") || !strcmp(insecure, "true"));
}

int core_local_cluster_find(char *address, size_t len, char *session, size_t session_len)
{
    size_t n = 0;
    char **sessions = core__candidate_sessions(&n);
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        if (!found && core__session_live(sessions[i], address, len)) {
            found = 1;
            char real[PATH_MAX];
            snprintf(session, session_len, "%s", realpath(sessions[i], real) ? real : sessions[i]);
        }
        rc_free(sessions[i]);
    }
    rc_free(sessions);
    return found ? 0 : RC_ENOENT;
}

void core_local_cluster_credentials(core_worker *cw, const char *session)
{
    if (core__env_credentials())
        return;
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/" GCS_AUTH_INSECURE_FILE, session);
    if (access(path, F_OK) == 0) {
        cw->local_insecure = 1;
        return;
    }
    /* A head's session holds the admin credentials; a node that joined a head elsewhere
     * may hold only the CA, and then the environment must give the token. */
    char err[512];
    gcs_admin_creds creds = {0};
    if (gcs_admin_creds_from_dir(session, 0, &creds, err, sizeof(err)) == 0) {
        cw->local_ca_pem = creds.ca_cert_pem;
        cw->local_token = creds.token;
    }
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
static int core__local_join_token(core_worker *cw, const char *session, const char *address, char **token,
                                  char *err, size_t errlen)
{
    char why[768];
    gcs_admin_creds creds = {0};
    if (gcs_admin_creds_from_dir(session, 15000, &creds, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "the local GCS gave no credentials: %s; see %s/logs/gcs_server.err", why, session);
        return RC_EUNAVAIL;
    }
    gcs_join_token_spec spec = {.ttl_seconds = CORE__LOCAL_TOKEN_TTL_S, .max_uses = 1};
    int rc = gcs_auth_create_join_token_sync(address, &creds, &spec, 10000, token, NULL, why, sizeof(why));
    if (rc < 0) {
        snprintf(err, errlen, "cannot make a join token for the local raylet: %s", why);
        gcs_admin_creds_free(&creds);
        return rc;
    }
    cw->local_ca_pem = creds.ca_cert_pem; /* the driver connects with these */
    cw->local_token = creds.token;
    return 0;
}

int core_local_cluster_start(core_worker *cw, const rayc_init_options *opts, char *address, size_t len, char *err,
                             size_t errlen)
{
    char bin[PATH_MAX], exe[PATH_MAX + 32], session[512];
    if (core__bin_dir(bin, sizeof(bin), err, errlen) < 0)
        return RC_ENOENT;
    if (rc_session_create(session, sizeof(session)) < 0) {
        char root[PATH_MAX];
        rc_session_root(root, sizeof(root));
        snprintf(err, errlen, "cannot start a local cluster: cannot create a session directory under %s: %s", root,
                 strerror(errno));
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
        snprintf(err, errlen, "cannot start a local cluster: running %s failed: %s", exe, strerror(errno));
        return RC_ESYS;
    }
    if (core__wait_file(session, "gcs_port", cw->local_gcs_pid, 15000) < 0) {
        snprintf(err, errlen, "the local GCS (%s) did not start; see %s/logs/gcs_server.err", exe, session);
        core__stop_pid(cw->local_gcs_pid);
        cw->local_gcs_pid = 0;
        return RC_EUNAVAIL;
    }
    char port[32];
    rc_session_read(session, "gcs_port", port, sizeof(port));
    snprintf(address, len, "127.0.0.1:%s", port);
    char *token = NULL;
    if (!cw->local_insecure && core__local_join_token(cw, session, address, &token, err, errlen) < 0) {
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
        snprintf(err, errlen, "the local raylet (%s) did not start; see %s/logs/raylet.err", exe, session);
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
    /* Both are reaped: their pid files would only name dead processes (or, later, others). */
    static const char *const names[] = {"raylet", "gcs_server"};
    for (size_t i = 0; cw->local_session[0] && i < sizeof(names) / sizeof(names[0]); i++) {
        char path[sizeof(cw->local_session) + 32];
        snprintf(path, sizeof(path), "%s/pids/%s.pid", cw->local_session, names[i]);
        unlink(path);
    }
    cw->local_raylet_pid = cw->local_gcs_pid = 0;
    gcs_admin_creds creds = {cw->local_ca_pem, cw->local_token}; /* the token is wiped */
    gcs_admin_creds_free(&creds);
    cw->local_ca_pem = cw->local_token = NULL;
}
