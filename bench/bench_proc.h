/*
 * Process helpers for benchmarks that run real daemons: spawn (dies with rayc-bench),
 * wait for a port file, stop, read a process's resident memory and CPU time, and a private
 * redis-server. Main thread only.
 */
#ifndef RAYC_BENCH_BENCH_PROC_H
#define RAYC_BENCH_BENCH_PROC_H

#include <stdint.h>
#include <sys/types.h>

/* Starts argv[0] with extra environment entries env ("NAME=value", NULL-terminated, may be
 * NULL); stdout/stderr go to log (or /dev/null when log is NULL). Returns the pid or -1. */
pid_t bench_spawn(char *const argv[], char *const env[], const char *log);
/* Waits until path holds a positive number (a port), up to timeout_ms; returns it or -1. */
int bench_wait_port_file(const char *path, pid_t pid, int64_t timeout_ms);
/* SIGTERM, then SIGKILL after 3 s; reaps. */
void bench_stop(pid_t pid);
/* Resident set size in KiB, or -1. */
int64_t bench_rss_kib(pid_t pid);
/* Private anonymous resident memory (RssAnon) in KiB, or -1: what a leak grows, without
 * the shared-memory pages of the object store a process has touched. */
int64_t bench_rss_anon_kib(pid_t pid);
/* User + system CPU time in seconds, or -1. */
double bench_cpu_seconds(pid_t pid);

typedef struct bench_redis {
    pid_t pid;
    int port;
    char dir[64];
} bench_redis;

/* The password of the benchmarks' redis-server (requirepass, as admins run it) and the file
 * holding it, for rayc-gcs --redis-password-file. */
#define BENCH_REDIS_PASSWORD "rayc-bench-redis"

/* Starts redis-server on a free loopback port with no persistence. 0 or -1. */
int bench_redis_start(bench_redis *r);
void bench_redis_stop(bench_redis *r);

/* A private directory for daemon logs and port files of this run. */
const char *bench_tmpdir(void);

/* Starts rayc-gcs from bin_dir (Redis storage when redis_port > 0) with extra environment
 * env; returns its pid and port, or -1. */
pid_t bench_start_gcs(const char *bin_dir, int redis_port, char *const env[], int *port);
/* The directory a GCS started by bench_start_gcs keeps its CA and admin token in (the last
 * one started). The process that talks to it sets its rpc security from there. */
const char *bench_gcs_auth_dir(void);
/* Sets this process's rpc security to the admin of the GCS whose --auth-dir is dir. 0 or -1. */
int bench_become_admin(const char *dir);

#endif
