/*
 * rayc stop, and the sweep that start and stop share.
 *
 * stop stops the rayc processes of this host's session root ($RAYC_SESSION_ROOT, default
 * /tmp/rayc), as `ray stop` stops Ray's:
 *   - those recorded in the pid files of every session under the root;
 *   - the rayc daemons of this user that no session records (a rayc-gcs restarted by hand,
 *     the workers or market hosts of a raylet or market that was killed), found by name in
 *     /proc: rayc-gcs, rayc-raylet, rayc-worker, rayc-market. Such a process belongs to the
 *     session root named by RAYC_SESSION_ROOT in its environment (default /tmp/rayc); only
 *     those of this root are stopped, so that clusters run under roots of their own (test
 *     suites, several clusters on one host) are left alone. A worker whose parent is a live
 *     rayc daemon belongs to that daemon and is not an orphan.
 * Raylets, workers and markets go first (a raylet unregisters while its GCS still listens),
 * then the GCSs: SIGTERM, and SIGKILL for those still there after the grace period (--force:
 * SIGKILL at once). A pid is signalled only while it still is a rayc process. A second round
 * stops what the first left without a parent (the workers of a raylet just stopped).
 *
 * Both start and stop then sweep what processes that are gone (killed with SIGKILL, or
 * crashed) left on this host: their object store files in /dev/shm, their sockets and pid
 * files in the sessions (rc_sweep_host; live processes' files, of any cluster, are kept).
 *
 * Main thread only.
 */
#include <ctype.h>
#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_int.h"
#include "rc_alloc.h"
#include "rc_err.h"
#include "rc_session.h"
#include "rc_time.h"

enum {
    CLI__STOP_GRACE_S = 10,
    CLI__MAX_VICTIMS = 4096,
    CLI__ROUNDS = 2,
};

/* The programs `rayc stop` finds by name when no session records them. */
static const char *const cli__daemon_names[] = {"rayc-gcs", "rayc-raylet", "rayc-worker", "rayc-market"};

typedef struct cli__victim {
    pid_t pid;
    int is_gcs;
    int orphan;                   /* found in /proc, not in a pid file */
    char name[32];                /* its program's name */
    char pid_file[PATH_MAX + 600]; /* "" for an orphan */
} cli__victim;

/* ---- the sweep ----------------------------------------------------------------------------- */

static void cli__on_stale(const char *path, rc_stale_kind kind, long pid, void *arg)
{
    int *n = arg;
    (*n)++;
    if (kind == RC_STALE_PID_FILE)
        printf("Removed %s (process %ld is gone).\n", path, pid);
    else
        printf("Removed %s (%s of a raylet that is gone).\n", path,
               kind == RC_STALE_STORE ? "the object store" : "the socket");
}

int cli_sweep(void)
{
    int n = 0;
    rc_sweep_host(1, cli__on_stale, &n);
    fflush(stdout);
    return n;
}

/* ---- finding the processes ------------------------------------------------------------------ */

/* Reads /proc/<pid>/<what> (at most cap-1 bytes, NUL-terminated); its length, or -1. */
static ssize_t cli__proc_read(pid_t pid, const char *what, char *buf, size_t cap)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, what);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    return (ssize_t)n;
}

/* The program name (argv[0]'s last part) of pid into out; 0, or -1 if gone or a zombie. */
static int cli__proc_name(pid_t pid, char *out, size_t outlen)
{
    char cmd[PATH_MAX];
    if (cli__proc_read(pid, "cmdline", cmd, sizeof(cmd)) <= 0)
        return -1;
    const char *base = strrchr(cmd, '/');
    snprintf(out, outlen, "%s", base ? base + 1 : cmd);
    return 0;
}

static int cli__is_daemon_name(const char *name)
{
    for (size_t i = 0; i < RC_ARRAY_LEN(cli__daemon_names); i++)
        if (!strcmp(name, cli__daemon_names[i]))
            return 1;
    return 0;
}

/* The session root a process belongs to: RAYC_SESSION_ROOT in its environment, else the
 * default. 0, or -1 when its environment cannot be read. */
static int cli__proc_root(pid_t pid, char *out, size_t outlen)
{
    static char env[256 * 1024];
    ssize_t n = cli__proc_read(pid, "environ", env, sizeof(env));
    if (n < 0)
        return -1;
    const char *root = NULL;
    for (const char *p = env; p < env + n; p += strlen(p) + 1)
        if (!strncmp(p, "RAYC_SESSION_ROOT=", 18) && p[18])
            root = p + 18;
    snprintf(out, outlen, "%s", root ? root : "/tmp/rayc");
    return 0;
}

/* Two session roots name the same directory (or the same text when one does not exist). */
static int cli__same_root(const char *a, const char *b)
{
    char ra[PATH_MAX], rb[PATH_MAX];
    if (!realpath(a, ra))
        snprintf(ra, sizeof(ra), "%s", a);
    if (!realpath(b, rb))
        snprintf(rb, sizeof(rb), "%s", b);
    return strcmp(ra, rb) == 0;
}

static pid_t cli__proc_parent(pid_t pid)
{
    char buf[1024];
    const char *st = rc_proc_stat(pid, buf, sizeof(buf)); /* "S <ppid> ..." */
    return st && st[0] && st[1] == ' ' ? (pid_t)atoi(st + 2) : -1;
}

static int cli__known(const cli__victim *v, size_t n, pid_t pid)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].pid == pid)
            return 1;
    return 0;
}

static void cli__add(cli__victim *out, size_t *n, size_t cap, pid_t pid, int orphan, const char *pid_file)
{
    if (*n >= cap || cli__known(out, *n, pid))
        return;
    cli__victim *v = &out[*n];
    memset(v, 0, sizeof(*v));
    v->pid = pid;
    v->orphan = orphan;
    if (cli__proc_name(pid, v->name, sizeof(v->name)) < 0)
        return;
    v->is_gcs = !strcmp(v->name, "rayc-gcs");
    snprintf(v->pid_file, sizeof(v->pid_file), "%s", pid_file ? pid_file : "");
    (*n)++;
}

/* The processes recorded in the pid files of the sessions under root. */
static void cli__collect_sessions(const char *root, cli__victim *out, size_t *n, size_t cap)
{
    DIR *d = opendir(root);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) && *n < cap) {
        if (strncmp(e->d_name, "session_", 8) || !strcmp(e->d_name, "session_latest"))
            continue;
        char session[PATH_MAX + 300], pids[PATH_MAX + 310];
        snprintf(session, sizeof(session), "%s/%s", root, e->d_name);
        snprintf(pids, sizeof(pids), "%s/pids", session);
        DIR *pd = opendir(pids);
        if (!pd)
            continue;
        struct dirent *pe;
        while ((pe = readdir(pd)) && *n < cap) {
            size_t len = strlen(pe->d_name);
            if (len < 5 || strcmp(pe->d_name + len - 4, ".pid"))
                continue;
            char text[32], name[300], pid_file[PATH_MAX + 600];
            snprintf(name, sizeof(name), "pids/%s", pe->d_name);
            snprintf(pid_file, sizeof(pid_file), "%s/%s", pids, pe->d_name);
            if (rc_session_read(session, name, text, sizeof(text)) < 0)
                continue;
            pid_t pid = (pid_t)atoi(text);
            if (!rc_pid_is_rayc(pid)) {
                unlink(pid_file); /* stale: the process is gone */
                continue;
            }
            cli__add(out, n, cap, pid, 0, pid_file);
        }
        closedir(pd);
    }
    closedir(d);
}

/* This user's rayc daemons of session root root that no pid file records and no live rayc
 * daemon started. */
static void cli__collect_orphans(const char *root, cli__victim *out, size_t *n, size_t cap)
{
    DIR *d = opendir("/proc");
    if (!d)
        return;
    uid_t me = getuid();
    pid_t self = getpid();
    struct dirent *e;
    while ((e = readdir(d)) && *n < cap) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        pid_t pid = (pid_t)atoi(e->d_name);
        char path[300], name[PATH_MAX], proc_root[PATH_MAX];
        struct stat st;
        snprintf(path, sizeof(path), "/proc/%s", e->d_name);
        if (pid == self || stat(path, &st) != 0 || st.st_uid != me || cli__known(out, *n, pid))
            continue;
        if (cli__proc_name(pid, name, sizeof(name)) < 0 || !cli__is_daemon_name(name) || !rc_pid_running(pid))
            continue;
        pid_t parent = cli__proc_parent(pid);
        if (parent > 1 && rc_pid_is_rayc(parent))
            continue; /* a worker of a live raylet: it goes with its raylet */
        if (cli__proc_root(pid, proc_root, sizeof(proc_root)) < 0 || !cli__same_root(proc_root, root))
            continue;
        cli__add(out, n, cap, pid, 1, NULL);
    }
    closedir(d);
}

/* ---- stopping them --------------------------------------------------------------------------- */

static int cli__wait_gone(cli__victim *v, size_t n, int gcs, int64_t timeout_ms)
{
    int64_t deadline = rc_mono_ms() + timeout_ms;
    for (;;) {
        int left = 0;
        for (size_t i = 0; i < n; i++)
            if (v[i].is_gcs == gcs && rc_pid_is_rayc(v[i].pid))
                left++;
        if (!left || rc_mono_ms() >= deadline)
            return left;
        rc_sleep_ms(50);
    }
}

/* Stops v[0..n): everything but the GCSs first, then the GCSs. */
static void cli__stop_all(cli__victim *v, size_t n, int force, int64_t grace_ms)
{
    int sig = force ? SIGKILL : SIGTERM;
    for (int gcs = 0; gcs <= 1; gcs++) {
        for (size_t i = 0; i < n; i++)
            if (v[i].is_gcs == gcs && rc_pid_is_rayc(v[i].pid))
                kill(v[i].pid, sig);
        if (cli__wait_gone(v, n, gcs, force ? 2000 : grace_ms) > 0) {
            for (size_t i = 0; i < n; i++)
                if (v[i].is_gcs == gcs && rc_pid_is_rayc(v[i].pid)) {
                    fprintf(stderr, "rayc stop: %s (pid %d) did not stop within %lld s; killing it\n", v[i].name,
                            (int)v[i].pid, (long long)(grace_ms / 1000));
                    kill(v[i].pid, SIGKILL);
                }
            cli__wait_gone(v, n, gcs, 2000);
        }
    }
}

static const cli_opt cli__stop_opts[] = {
    {"--force", "-f", NULL, NULL, "SIGKILL at once instead of SIGTERM first", NULL},
    {"--grace-period", "-g", "SECONDS", "10", "how long processes get to exit before SIGKILL", NULL},
};

static const cli_spec cli__stop_spec = {
    "rayc stop",
    NULL,
    "Stops the rayc processes of this host's session root ($RAYC_SESSION_ROOT, default\n"
    "/tmp/rayc): those its sessions recorded, and this user's rayc daemons (rayc-gcs,\n"
    "rayc-raylet, rayc-worker, rayc-market) that belong to no session, such as a GCS\n"
    "restarted by hand. A daemon belongs to the root in its RAYC_SESSION_ROOT (default\n"
    "/tmp/rayc); daemons of other roots are left alone. Then removes what dead processes\n"
    "left behind (object store files, sockets, pid files).",
    NULL,
    CLI_SPEC_OPTS(cli__stop_opts),
    0,
    0,
};

int cli_cmd_stop(int argc, char **argv)
{
    cli_args a;
    int rc = cli_parse(&cli__stop_spec, argc, argv, &a);
    if (rc != CLI_OK)
        return CLI_PARSED_EXIT(rc);
    long grace_s;
    if (cli_arg_int(&a, "--grace-period", 0, 3600, CLI__STOP_GRACE_S, &grace_s) != CLI_OK)
        return CLI_USAGE;
    int force = !!cli_arg(&a, "--force");
    char root[PATH_MAX];
    rc_session_root(root, sizeof(root));

    static cli__victim victims[CLI__MAX_VICTIMS];
    size_t n = 0, done = 0, stopped = 0, orphans = 0;
    for (int round = 0; round < CLI__ROUNDS; round++) {
        cli__collect_sessions(root, victims, &n, CLI__MAX_VICTIMS);
        cli__collect_orphans(root, victims, &n, CLI__MAX_VICTIMS);
        if (n == done)
            break;
        cli__stop_all(victims + done, n - done, force, grace_s * 1000);
        for (size_t i = done; i < n; i++) {
            cli__victim *v = &victims[i];
            if (rc_pid_is_rayc(v->pid)) {
                fprintf(stderr, "rayc stop: %s (pid %d) is still running; run 'rayc stop --force'\n", v->name,
                        (int)v->pid);
                continue;
            }
            if (v->pid_file[0])
                unlink(v->pid_file);
            stopped++;
            if (v->orphan) {
                orphans++;
                printf("Stopped %s (pid %d), which belonged to no session.\n", v->name, (int)v->pid);
            }
        }
        done = n;
    }
    if (!n)
        printf("Did not find any active rayc processes.\n");
    else
        printf("Stopped %zu rayc process%s (%zu that belonged to no session).\n", stopped,
               stopped == 1 ? "" : "es", orphans);
    fflush(stdout);
    cli_sweep();
    return stopped == n ? CLI_OK : CLI_FAIL;
}
