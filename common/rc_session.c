/*
 * Session directories, daemon spawning and process checks. See rc_session.h.
 */
#define _GNU_SOURCE
#include "rc_session.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "rc_alloc.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_ids.h"

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

const char *rc_proc_stat(pid_t pid, char *buf, size_t len)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f || len < 2) {
        if (f)
            fclose(f);
        return NULL;
    }
    size_t n = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *end = strrchr(buf, ')'); /* "pid (comm) S ..." */
    return end && end[1] == ' ' && end[2] ? end + 2 : NULL;
}

int rc_pid_running(pid_t pid)
{
    char buf[512];
    const char *st = rc_proc_stat(pid, buf, sizeof(buf));
    return st && *st != 'Z' && *st != 'X';
}

/* When pid started, in seconds since the epoch, or -1. */
static double rc__pid_start_time(pid_t pid)
{
    char buf[2048];
    /* starttime is field 22; the state (field 3) is where rc_proc_stat's text begins. */
    const char *p = rc_proc_stat(pid, buf, sizeof(buf));
    if (!p)
        return -1;
    for (int field = 3; field < 22 && p; field++)
        p = strchr(p + 1, ' ');
    if (!p)
        return -1;
    unsigned long long ticks = strtoull(p + 1, NULL, 10);
    long btime = -1;
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return -1;
    char line[256];
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, "btime ", 6)) {
            btime = atol(line + 6);
            break;
        }
    fclose(f);
    long hz = sysconf(_SC_CLK_TCK);
    if (btime < 0 || hz <= 0)
        return -1;
    return (double)btime + (double)ticks / (double)hz;
}

int rc_pid_file_alive(const char *path)
{
    char text[32];
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    char *end;
    long pid = strtol(text, &end, 10);
    if (end == text || pid <= 1 || pid > INT32_MAX || !rc_pid_is_rayc((pid_t)pid))
        return 0;
    struct stat st;
    if (stat(path, &st) != 0)
        return 0;
    /* The pid file is written just after the process started; a process that started well
     * after the file was written got a recycled pid. The slack is wide: boot-time arithmetic
     * moves with steps of the wall clock, and a live daemon judged dead would lose its pid
     * file (and `rayc stop` its way to it), while the other mistake only keeps a file. */
    double started = rc__pid_start_time((pid_t)pid);
    if (started > 0 && started > (double)st.st_mtime + 60.0)
        return 0;
    return 1;
}

/* ---- what dead processes leave behind --------------------------------------------------- */

int rc_owner_lock(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return RC_ESYS;
    /* Blocking: a sweep probing the lock holds it for an instant only. */
    while (flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            int e = errno;
            close(fd);
            errno = e;
            return RC_ESYS;
        }
    }
    return 0; /* fd stays open (and the lock held) for the life of the process */
}

static int rc__is_store_name(const char *name)
{
    if (strncmp(name, "rayc-", 5))
        return 0;
    const char *hex = name + 5;
    size_t n = strlen(hex);
    if (n != 2 * RC_NODE_ID_SIZE)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)hex[i]))
            return 0;
    return 1;
}

static int rc__young(const struct stat *st)
{
    time_t now = time(NULL);
    time_t last = st->st_mtime > st->st_ctime ? st->st_mtime : st->st_ctime;
    return now - last < RC_SWEEP_YOUNG_S && now - last > -RC_SWEEP_YOUNG_S;
}

/* The store files (full paths under prefix) that some process of this host has open or
 * mapped, read from /proc/<pid>/fd and /proc/<pid>/maps. */
typedef struct rc__in_use {
    char **paths;
    size_t n, cap;
} rc__in_use;

static void rc__in_use_add(rc__in_use *u, const char *path, size_t len)
{
    for (size_t i = 0; i < u->n; i++)
        if (strlen(u->paths[i]) == len && !memcmp(u->paths[i], path, len))
            return;
    if (u->n == u->cap) {
        u->cap = u->cap ? 2 * u->cap : 16;
        u->paths = rc_realloc(u->paths, u->cap * sizeof(*u->paths));
    }
    u->paths[u->n++] = rc_strndup(path, len);
}

static void rc__in_use_scan(rc__in_use *u, const char *prefix)
{
    DIR *proc = opendir("/proc");
    if (!proc)
        return;
    size_t plen = strlen(prefix);
    struct dirent *e;
    while ((e = readdir(proc))) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        char path[PATH_MAX], target[PATH_MAX];
        snprintf(path, sizeof(path), "/proc/%s/fd", e->d_name);
        DIR *fds = opendir(path);
        if (fds) {
            struct dirent *fe;
            while ((fe = readdir(fds))) {
                if (fe->d_name[0] == '.')
                    continue;
                char link[PATH_MAX];
                snprintf(link, sizeof(link), "/proc/%s/fd/%s", e->d_name, fe->d_name);
                ssize_t n = readlink(link, target, sizeof(target) - 1);
                if (n > (ssize_t)plen && !memcmp(target, prefix, plen)) {
                    target[n] = '\0';
                    char *deleted = strstr(target, " (deleted)");
                    rc__in_use_add(u, target, deleted ? (size_t)(deleted - target) : (size_t)n);
                }
            }
            closedir(fds);
        }
        snprintf(path, sizeof(path), "/proc/%s/maps", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        char line[PATH_MAX + 256];
        while (fgets(line, sizeof(line), f)) {
            char *p = strstr(line, prefix);
            if (!p)
                continue;
            size_t n = strcspn(p, "\n");
            char *deleted = strstr(p, " (deleted)");
            if (deleted && deleted < p + n)
                n = (size_t)(deleted - p);
            rc__in_use_add(u, p, n);
        }
        fclose(f);
    }
    closedir(proc);
}

static void rc__in_use_free(rc__in_use *u)
{
    for (size_t i = 0; i < u->n; i++)
        rc_free(u->paths[i]);
    rc_free(u->paths);
}

/* 1 if some process holds the owner lock of path (or it cannot be told: kept). */
static int rc__locked(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return errno != ENOENT;
    int held = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    close(fd); /* lets go of the probe's own lock, if it got one */
    return held;
}

int rc_sweep_stores(const char *shm_dir, int remove, rc_stale_fn fn, void *arg)
{
    if (!shm_dir)
        shm_dir = rc_cfg.plasma_directory && rc_cfg.plasma_directory[0] ? rc_cfg.plasma_directory : "/dev/shm";
    DIR *d = opendir(shm_dir);
    if (!d)
        return 0;
    char prefix[PATH_MAX];
    snprintf(prefix, sizeof(prefix), "%s/rayc-", shm_dir);
    rc__in_use in_use = {0};
    int scanned = 0, stale = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!rc__is_store_name(e->d_name))
            continue;
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", shm_dir, e->d_name);
        struct stat st;
        if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() || rc__young(&st) ||
            rc__locked(path))
            continue;
        if (!scanned) { /* only when some file has no lock holder */
            rc__in_use_scan(&in_use, prefix);
            scanned = 1;
        }
        int used = 0;
        for (size_t i = 0; i < in_use.n && !used; i++)
            used = !strcmp(in_use.paths[i], path);
        if (used)
            continue;
        stale++;
        if (fn)
            fn(path, RC_STALE_STORE, 0, arg);
        if (remove)
            unlink(path);
    }
    closedir(d);
    rc__in_use_free(&in_use);
    return stale;
}

/* 1 if nothing accepts connections on the unix socket at path any more. */
static int rc__socket_dead(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path))
        return 0;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    int dead = rc != 0 && errno == ECONNREFUSED;
    close(fd);
    return dead;
}

static int rc__sweep_dir(const char *dir, const char *sub, int remove, rc_stale_fn fn, void *arg)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir, sub);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    int stale = 0, pids = !strcmp(sub, "pids");
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        char file[PATH_MAX + 256];
        snprintf(file, sizeof(file), "%s/%s", path, e->d_name);
        struct stat st;
        if (e->d_name[0] == '.' || lstat(file, &st) != 0 || st.st_uid != geteuid() || rc__young(&st))
            continue;
        long pid = 0;
        if (pids) {
            if (len < 5 || strcmp(e->d_name + len - 4, ".pid") || !S_ISREG(st.st_mode) || rc_pid_file_alive(file))
                continue;
            char text[32];
            FILE *f = fopen(file, "r");
            if (f) {
                size_t n = fread(text, 1, sizeof(text) - 1, f);
                text[n] = '\0';
                pid = atol(text);
                fclose(f);
            }
        } else if (len < 6 || strcmp(e->d_name + len - 5, ".sock") || !S_ISSOCK(st.st_mode) ||
                   !rc__socket_dead(file)) {
            continue;
        }
        stale++;
        if (fn)
            fn(file, pids ? RC_STALE_PID_FILE : RC_STALE_SOCKET, pid, arg);
        if (remove)
            unlink(file);
    }
    closedir(d);
    return stale;
}

int rc_sweep_sessions(const char *root, int remove, rc_stale_fn fn, void *arg)
{
    DIR *d = opendir(root);
    if (!d)
        return 0;
    int stale = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s/%s", root, e->d_name);
        struct stat st;
        if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid())
            continue; /* session_latest is a link to one of the others */
        stale += rc__sweep_dir(dir, "sockets", remove, fn, arg);
        stale += rc__sweep_dir(dir, "pids", remove, fn, arg);
    }
    closedir(d);
    return stale;
}

int rc_sweep_host(int remove, rc_stale_fn fn, void *arg)
{
    char root[PATH_MAX];
    rc_session_root(root, sizeof(root));
    return rc_sweep_stores(NULL, remove, fn, arg) + rc_sweep_sessions(root, remove, fn, arg);
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

int rc_mem_budget(const char *meminfo, double keep_available, uint64_t *bytes)
{
    *bytes = 0;
    FILE *f = fopen(meminfo ? meminfo : "/proc/meminfo", "r");
    if (!f)
        return RC_EIO;
    char line[256];
    long long total = -1, avail = -1, kb;
    while (fgets(line, sizeof(line), f) && (total < 0 || avail < 0)) {
        if (sscanf(line, "MemTotal: %lld kB", &kb) == 1)
            total = kb;
        else if (sscanf(line, "MemAvailable: %lld kB", &kb) == 1)
            avail = kb;
    }
    fclose(f);
    if (total < 0 || avail < 0)
        return RC_EIO;
    double keep = keep_available * (double)total * 1024.0;
    double have = (double)avail * 1024.0;
    *bytes = have > keep ? (uint64_t)(have - keep) : 0;
    return 0;
}
