/*
 * Session directories, daemon spawning and process checks. See rc_session.h.
 */
#define _GNU_SOURCE
#include "rc_session.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "rc_err.h"

extern char **environ;

void rc_session_root(char *buf, size_t len)
{
    const char *root = getenv("RAYC_SESSION_ROOT");
    snprintf(buf, len, "%s", root && *root ? root : "/tmp/rayc");
}

/* Creates path and its missing parents. The parents (the session root, which other users'
 * sessions may share) get 0755; path itself gets exactly mode (chmod: the umask only takes
 * bits away, and a directory that already existed is tightened too). */
static int rc__mkdir_p(const char *path, mode_t mode)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return RC_EIO;
        *p = '/';
    }
    if (mkdir(tmp, mode) != 0 && errno != EEXIST)
        return RC_EIO;
    if (chmod(tmp, mode) != 0)
        return RC_EIO;
    return 0;
}

int rc_session_new(char *out, size_t outlen)
{
    char root[PATH_MAX];
    rc_session_root(root, sizeof(root));
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    localtime_r(&tv.tv_sec, &tm);
    char name[128];
    snprintf(name, sizeof(name), "session_%04d-%02d-%02d_%02d-%02d-%02d_%06ld_%d", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)tv.tv_usec, (int)getpid());
    char path[PATH_MAX + 256];
    snprintf(path, sizeof(path), "%s/%s", root, name);
    if (rc_session_make(path) < 0)
        return RC_EIO;
    snprintf(out, outlen, "%s", path);
    return 0;
}

int rc_session_make(const char *path)
{
    char sub[PATH_MAX + 300];
    /* 0700: the session holds the raylet's socket, the cluster's secrets (ca.key,
     * auth_token) and logs that may name them; only its user may reach any of it. */
    if (rc__mkdir_p(path, 0700) < 0)
        return RC_EIO;
    if (snprintf(sub, sizeof(sub), "%s/logs", path) >= (int)sizeof(sub) || rc__mkdir_p(sub, 0700) < 0)
        return RC_EIO;
    if (snprintf(sub, sizeof(sub), "%s/pids", path) >= (int)sizeof(sub) || rc__mkdir_p(sub, 0700) < 0)
        return RC_EIO;
    return 0;
}

int rc_session_set_latest(const char *session)
{
    char root[PATH_MAX];
    rc_session_root(root, sizeof(root));
    const char *name = strrchr(session, '/');
    name = name ? name + 1 : session;
    /* Atomically: a new link renamed over the old one. */
    char link_tmp[PATH_MAX + 32], link_path[PATH_MAX + 32];
    snprintf(link_tmp, sizeof(link_tmp), "%s/.session_latest.%d", root, (int)getpid());
    snprintf(link_path, sizeof(link_path), "%s/session_latest", root);
    unlink(link_tmp);
    if (symlink(name, link_tmp) != 0 || rename(link_tmp, link_path) != 0) {
        unlink(link_tmp);
        return RC_EIO;
    }
    return 0;
}

int rc_session_create(char *out, size_t outlen)
{
    char path[PATH_MAX + 256];
    int rc = rc_session_new(path, sizeof(path));
    if (rc < 0 || (rc = rc_session_set_latest(path)) < 0)
        return rc;
    snprintf(out, outlen, "%s", path);
    return 0;
}

int rc_session_write(const char *session, const char *name, const char *content)
{
    char path[PATH_MAX], tmp[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/%s", session, name);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return RC_EIO;
    int ok = fputs(content, f) >= 0;
    ok &= fclose(f) == 0;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return RC_EIO;
    }
    return 0;
}

int rc_session_read(const char *session, const char *name, char *out, size_t outlen)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", session, name);
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? RC_ENOENT : RC_EIO;
    size_t n = fread(out, 1, outlen - 1, f);
    fclose(f);
    out[n] = '\0';
    while (n && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' '))
        out[--n] = '\0';
    return 0;
}

int rc_session_latest_address(char *out, size_t outlen)
{
    char root[PATH_MAX], latest[PATH_MAX + 32];
    rc_session_root(root, sizeof(root));
    snprintf(latest, sizeof(latest), "%s/session_latest", root);
    int rc = rc_session_read(latest, "gcs_address", out, outlen);
    if (rc < 0 || !out[0])
        return RC_ENOENT;
    return 0;
}

int rc_spawn_daemon(const char *session, const char *name, const char *exe, char *const argv[],
                    pid_t *pid)
{
    char out_path[PATH_MAX], err_path[PATH_MAX];
    snprintf(out_path, sizeof(out_path), "%s/logs/%s.out", session, name);
    snprintf(err_path, sizeof(err_path), "%s/logs/%s.err", session, name);
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, err_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
    int err = posix_spawn(pid, exe, &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (err != 0) {
        errno = err;
        return RC_ESYS;
    }
    char pid_name[256], text[32];
    snprintf(pid_name, sizeof(pid_name), "pids/%s.pid", name);
    snprintf(text, sizeof(text), "%d\n", (int)*pid);
    rc_session_write(session, pid_name, text);
    return 0;
}

int rc_pid_is_rayc(pid_t pid)
{
    if (pid <= 1)
        return 0;
    char path[64], cmd[PATH_MAX];
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(cmd, 1, sizeof(cmd) - 1, f);
    fclose(f);
    cmd[n] = '\0'; /* argv[0] ends at the first NUL */
    if (n == 0)
        return 0; /* a zombie has an empty command line */
    const char *base = strrchr(cmd, '/');
    base = base ? base + 1 : cmd;
    return strncmp(base, "rayc-", 5) == 0;
}

int rc_exe_dir(char *out, size_t outlen)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return RC_ESYS;
    self[n] = '\0';
    snprintf(out, outlen, "%s", dirname(self));
    return 0;
}

void rc_file_tail(const char *path, char *out, size_t outlen)
{
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    long start = size > (long)outlen - 1 ? size - ((long)outlen - 1) : 0;
    fseek(f, start, SEEK_SET);
    size_t n = fread(out, 1, outlen - 1, f);
    out[n] = '\0';
    fclose(f);
    if (start > 0) { /* begin at a line boundary */
        char *nl = strchr(out, '\n');
        if (nl)
            memmove(out, nl + 1, strlen(nl + 1) + 1);
    }
}
