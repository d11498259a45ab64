/*
 * A private redis-server for tests (see redis_server.h): fork + exec with no shell, stdout and
 * stderr into <dir>/redis.log, readiness checked with PING plus INFO's process_id (so that a
 * server someone else runs on a port we raced for is never mistaken for ours), stop with
 * SIGTERM and a SIGKILL fallback. The child only calls async-signal-safe functions between
 * fork and exec, so a test process with other threads (gRPC) may use this too.
 *
 * Main test thread only; blocking.
 */
#define _GNU_SOURCE
#include "redis_server.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "rc_err.h"
#include "rc_ids.h"
#include "rc_time.h"

#define START_DEADLINE_MS 10000
#define STOP_GRACE_MS 5000
#define START_TRIES 3 /* with a port we picked: someone may take it before the server binds */

int harness_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return RC_ESYS;
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof(a);
    int port = RC_ESYS;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* The redis-server to run: the first on PATH, else the Debian location. */
static void find_server(char *out, size_t n)
{
    const char *path = getenv("PATH");
    while (path && *path) {
        const char *end = strchr(path, ':');
        size_t len = end ? (size_t)(end - path) : strlen(path);
        if (len > 0 && (size_t)snprintf(out, n, "%.*s/redis-server", (int)len, path) < n &&
            access(out, X_OK) == 0)
            return;
        path = end ? end + 1 : NULL;
    }
    snprintf(out, n, "/usr/bin/redis-server");
}

void harness_remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char path[512];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
}

static void print_log(const harness_redis *r)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/redis.log", r->dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    fprintf(stderr, "---- %s ----\n", path);
    char line[512];
    while (fgets(line, sizeof(line), f))
        fputs(line, stderr);
    fprintf(stderr, "---- end of redis.log ----\n");
    fclose(f);
}

/* A blocking, authenticated connection to the server of r, or NULL. The caller frees it
 * with redisFree. */
static redisContext *connect_blocking(const harness_redis *r)
{
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", r->port, tv);
    if (c && c->err) {
        redisFree(c);
        return NULL;
    }
    if (!c)
        return NULL;
    redisSetTimeout(c, tv);
    if (r->password[0]) {
        redisReply *rep = redisCommand(c, "AUTH %s", r->password);
        int ok = rep && rep->type == REDIS_REPLY_STATUS;
        if (rep)
            freeReplyObject(rep);
        if (!ok) {
            redisFree(c);
            return NULL;
        }
    }
    return c;
}

int harness_redis_password_file(const harness_redis *r, const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return RC_EIO;
    size_t n = strlen(r->password);
    int ok = write(fd, r->password, n) == (ssize_t)n && write(fd, "\n", 1) == 1;
    return close(fd) == 0 && ok ? 0 : RC_EIO;
}

/* 1 when the server on r->port answers PING and is the process r->pid. */
static int answers(const harness_redis *r)
{
    redisContext *c = connect_blocking(r);
    if (!c)
        return 0;
    int ok = 0;
    redisReply *rep = redisCommand(c, "PING");
    if (rep && rep->type == REDIS_REPLY_STATUS && strcmp(rep->str, "PONG") == 0) {
        freeReplyObject(rep);
        rep = redisCommand(c, "INFO server");
        char want[64];
        snprintf(want, sizeof(want), "process_id:%d\r", (int)r->pid);
        ok = rep && rep->type == REDIS_REPLY_STRING && strstr(rep->str, want) != NULL;
    }
    if (rep)
        freeReplyObject(rep);
    redisFree(c);
    return ok;
}

/* Closes every descriptor above stderr in the child: the test's sockets must not stay open
 * in the server (a peer would never see them close). */
static void close_inherited_fds(void)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0)
        return;
#endif
    for (int fd = 3; fd < 65536; fd++)
        close(fd);
}

/* One attempt on r->port. Returns 0, or RC_EUNAVAIL with the server gone and its dir
 * removed. */
static int start_once(harness_redis *r, const char *server)
{
    snprintf(r->dir, sizeof(r->dir), "/tmp/rayc-redis-XXXXXX");
    if (!mkdtemp(r->dir)) {
        fprintf(stderr, "harness: mkdtemp: %s\n", strerror(errno));
        r->dir[0] = '\0';
        return RC_ESYS;
    }
    char log_path[256], port[16];
    snprintf(log_path, sizeof(log_path), "%s/redis.log", r->dir);
    snprintf(port, sizeof(port), "%d", r->port);
    int log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (log_fd < 0 || null_fd < 0) {
        fprintf(stderr, "harness: cannot open %s or /dev/null: %s\n", log_path, strerror(errno));
        if (log_fd >= 0)
            close(log_fd);
        if (null_fd >= 0)
            close(null_fd);
        harness_remove_dir(r->dir);
        r->dir[0] = '\0';
        return RC_ESYS;
    }
    if (!r->password[0]) {
        uint8_t raw[16];
        rc_id_random(raw, sizeof(raw));
        rc_id_hex(raw, sizeof(raw), r->password);
    }
    char *const argv[] = {(char *)server, "--port", port, "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--dir", r->dir, "--daemonize", "no",
                          "--requirepass", r->password, NULL};
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        dup2(null_fd, 0);
        dup2(log_fd, 1);
        dup2(log_fd, 2);
        close_inherited_fds();
        execv(server, argv);
        _exit(127);
    }
    close(log_fd);
    close(null_fd);
    if (pid < 0) {
        fprintf(stderr, "harness: fork: %s\n", strerror(errno));
        harness_remove_dir(r->dir);
        r->dir[0] = '\0';
        return RC_ESYS;
    }
    r->pid = pid;
    int64_t deadline = rc_mono_ms() + START_DEADLINE_MS;
    while (rc_mono_ms() < deadline) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            fprintf(stderr, "harness: redis-server on port %d exited at start (status %d)\n",
                    r->port, status);
            print_log(r);
            r->pid = 0;
            harness_remove_dir(r->dir);
            r->dir[0] = '\0';
            return RC_EUNAVAIL;
        }
        if (answers(r))
            return 0;
        rc_sleep_ms(20);
    }
    fprintf(stderr, "harness: redis-server on port %d did not answer within %d ms\n", r->port,
            START_DEADLINE_MS);
    print_log(r);
    harness_redis_stop(r);
    return RC_EUNAVAIL;
}

int harness_redis_start(harness_redis *r)
{
    if (r->pid > 0)
        return RC_ESTATE;
    char server[512];
    find_server(server, sizeof(server));
    int pick = r->port == 0;
    int rc = RC_EUNAVAIL;
    for (int i = 0; i < (pick ? START_TRIES : 1); i++) {
        if (pick) {
            r->port = harness_free_port();
            if (r->port < 0) {
                rc = r->port;
                r->port = 0;
                return rc;
            }
        }
        rc = start_once(r, server);
        if (rc == 0 || rc == RC_ESYS)
            break;
    }
    if (rc && pick)
        r->port = 0;
    return rc;
}

void harness_redis_stop(harness_redis *r)
{
    if (r->pid > 0) {
        kill(r->pid, SIGTERM);
        int64_t deadline = rc_mono_ms() + STOP_GRACE_MS;
        int status;
        pid_t got = 0;
        while ((got = waitpid(r->pid, &status, WNOHANG)) == 0 && rc_mono_ms() < deadline)
            rc_sleep_ms(5);
        if (got == 0) {
            fprintf(stderr, "harness: redis-server %d ignored SIGTERM; killing it\n",
                    (int)r->pid);
            kill(r->pid, SIGKILL);
            while (waitpid(r->pid, &status, 0) < 0 && errno == EINTR)
                ;
        }
        r->pid = 0;
    }
    if (r->dir[0]) {
        harness_remove_dir(r->dir);
        r->dir[0] = '\0';
    }
}

int harness_redis_flush(const harness_redis *r)
{
    if (r->pid <= 0)
        return RC_EUNAVAIL;
    redisContext *c = connect_blocking(r);
    if (!c)
        return RC_EUNAVAIL;
    redisReply *rep = redisCommand(c, "FLUSHALL");
    int rc = !rep ? RC_EUNAVAIL
             : (rep->type == REDIS_REPLY_STATUS && strcmp(rep->str, "OK") == 0) ? 0
                                                                                 : RC_EPROTO;
    if (rep)
        freeReplyObject(rep);
    redisFree(c);
    return rc;
}
