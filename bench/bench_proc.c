/*
 * Process helpers for rayc-bench: see bench_proc.h.
 */
#define _GNU_SOURCE
#include "bench_proc.h"

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include "auth.h"
#include "rc_alloc.h"
#include "rc_session.h"
#include "rc_time.h"
#include "rpc.h"

extern char **environ;

const char *bench_tmpdir(void)
{
    static char dir[64];
    if (!dir[0]) {
        snprintf(dir, sizeof(dir), "/tmp/rayc-bench-XXXXXX");
        if (!mkdtemp(dir))
            snprintf(dir, sizeof(dir), "/tmp");
    }
    return dir;
}

pid_t bench_spawn(char *const argv[], char *const env[], const char *log)
{
    /* Build the environment before forking: the child may only call async-signal-safe
     * functions. */
    size_t n_env = 0, n_extra = 0;
    while (environ[n_env])
        n_env++;
    while (env && env[n_extra])
        n_extra++;
    char **envp = calloc(n_env + n_extra + 1, sizeof(char *));
    size_t k = 0;
    for (size_t i = 0; i < n_extra; i++)
        envp[k++] = env[i];
    for (size_t i = 0; i < n_env; i++) {
        int overridden = 0;
        for (size_t j = 0; j < n_extra; j++) {
            size_t len = strcspn(env[j], "=");
            if (!strncmp(environ[i], env[j], len) && environ[i][len] == '=')
                overridden = 1;
        }
        if (!overridden)
            envp[k++] = environ[i];
    }
    envp[k] = NULL;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int fd = open(log ? log : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
        int in = open("/dev/null", O_RDONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        if (in >= 0)
            dup2(in, 0);
        execve(argv[0], argv, envp);
        _exit(127);
    }
    free(envp);
    return pid;
}

int bench_wait_port_file(const char *path, pid_t pid, int64_t timeout_ms)
{
    int64_t deadline = rc_mono_ms() + timeout_ms;
    while (rc_mono_ms() < deadline) {
        FILE *f = fopen(path, "r");
        if (f) {
            int port = 0;
            int ok = fscanf(f, "%d", &port) == 1;
            fclose(f);
            if (ok && port > 0)
                return port;
        }
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return -1;
        rc_sleep_ms(10);
    }
    return -1;
}

void bench_stop(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    for (int i = 0; i < 300; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return;
        rc_sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

int64_t bench_rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long long kib = -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %lld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

int64_t bench_rss_anon_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long long kib = -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "RssAnon: %lld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

double bench_cpu_seconds(pid_t pid)
{
    char buf[1024];
    const char *p = rc_proc_stat(pid, buf, sizeof(buf));
    if (!p)
        return -1;
    unsigned long utime = 0, stime = 0;
    if (sscanf(p, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
        return -1;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static int bench__free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

int bench_redis_start(bench_redis *r)
{
    memset(r, 0, sizeof(*r));
    r->port = bench__free_port();
    snprintf(r->dir, sizeof(r->dir), "%s", bench_tmpdir());
    char port[16], log[128];
    snprintf(port, sizeof(port), "%d", r->port);
    snprintf(log, sizeof(log), "%s/redis.log", r->dir);
    const char *exe = access("/usr/bin/redis-server", X_OK) == 0 ? "/usr/bin/redis-server" : "redis-server";
    char *argv[] = {(char *)exe, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                    "--dir", r->dir, "--requirepass", BENCH_REDIS_PASSWORD, NULL};
    r->pid = bench_spawn(argv, NULL, log);
    for (int i = 0; i < 500; i++) {
        struct timeval tv = {1, 0};
        redisContext *c = redisConnectWithTimeout("127.0.0.1", r->port, tv);
        if (c && !c->err) {
            freeReplyObject(redisCommand(c, "AUTH %s", BENCH_REDIS_PASSWORD));
            redisReply *reply = redisCommand(c, "PING");
            int ok = reply && reply->type == REDIS_REPLY_STATUS;
            freeReplyObject(reply);
            redisFree(c);
            if (ok)
                return 0;
        } else if (c) {
            redisFree(c);
        }
        rc_sleep_ms(10);
    }
    bench_stop(r->pid);
    return -1;
}

void bench_redis_stop(bench_redis *r)
{
    bench_stop(r->pid);
    r->pid = 0;
}

static char bench__auth_dir[160];

const char *bench_gcs_auth_dir(void)
{
    return bench__auth_dir;
}

int bench_become_admin(const char *dir)
{
    char path[300], *ca = NULL, *token = NULL, err[256];
    snprintf(path, sizeof(path), "%s/ca.crt", dir);
    int rc = auth_read_file(path, &ca);
    snprintf(path, sizeof(path), "%s/auth_token", dir);
    rc = rc < 0 ? rc : auth_read_file(path, &token);
    if (rc == 0) {
        token[strcspn(token, "\r\n")] = '\0';
        rpc_security sec = {.ca_cert_pem = ca, .token = token};
        rc = rpc_security_set(&sec, err, sizeof(err));
    }
    rc_free(ca);
    rc_free(token);
    return rc < 0 ? -1 : 0;
}

pid_t bench_start_gcs(const char *bin_dir, int redis_port, char *const env[], int *port)
{
    static int serial;
    char exe[4200], port_file[128], log[128], redis[64], pass[128];
    snprintf(exe, sizeof(exe), "%s/rayc-gcs", bin_dir);
    snprintf(port_file, sizeof(port_file), "%s/gcs%d.port", bench_tmpdir(), serial);
    snprintf(log, sizeof(log), "%s/gcs%d.log", bench_tmpdir(), serial);
    snprintf(bench__auth_dir, sizeof(bench__auth_dir), "%s/gcs%d", bench_tmpdir(), serial++);
    snprintf(redis, sizeof(redis), "127.0.0.1:%d", redis_port);
    snprintf(pass, sizeof(pass), "%s/redis.password", bench_tmpdir());
    mkdir(bench__auth_dir, 0700);
    if (redis_port > 0 && auth_write_secret(pass, BENCH_REDIS_PASSWORD "\n") < 0)
        return -1;
    char *argv[] = {exe, "--host", "127.0.0.1", "--port", "0", "--port-file", port_file, "--auth-dir", bench__auth_dir,
                    redis_port > 0 ? "--redis-address" : NULL, redis, "--redis-password-file", pass, NULL};
    pid_t pid = bench_spawn(argv, env, log);
    if (pid < 0)
        return -1;
    *port = bench_wait_port_file(port_file, pid, 10000);
    if (*port < 0) {
        bench_stop(pid);
        return -1;
    }
    return pid;
}
