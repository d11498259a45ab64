/*
 * Test harness: a private redis-server for tests that need a real Redis (GCS storage, GCS
 * fault tolerance, integration tests).
 *
 * harness_redis_start runs `redis-server` (found on PATH, else /usr/bin/redis-server) on
 * 127.0.0.1 with a password (requirepass: r->password, a random one unless the caller set
 * it; kept across restarts), as admins are told to run it, with no persistence, a private temporary directory (r->dir, which holds its log,
 * redis.log) and, unless r->port is already set, a free port; it returns once that very
 * server (checked by pid) answers PING. harness_redis_stop ends it (SIGTERM, then SIGKILL
 * after 5 s) and removes the directory, but keeps r->port, so a later start brings a fresh,
 * empty server back on the same port: that is how tests simulate a Redis restart. The server
 * dies with the test process (PR_SET_PDEATHSIG), so a test killed by its timeout leaves no
 * server behind; start it from a thread that lives as long as the server (the main thread).
 *
 * Blocking calls (they wait for processes and sockets): call them from the test's main
 * thread, never from a loop callback that must stay responsive. Not thread-safe.
 */
#ifndef RAYC_TESTS_HARNESS_REDIS_SERVER_H
#define RAYC_TESTS_HARNESS_REDIS_SERVER_H

#include <sys/types.h>

typedef struct harness_redis {
    int port;      /* 0 before the first start: pick a free port; kept across stop */
    pid_t pid;     /* > 0 while running */
    char dir[128]; /* the server's private directory while running, else "" */
    char password[40]; /* requirepass; "" before the first start: a random one is chosen */
} harness_redis;

#define HARNESS_REDIS_INIT {0, 0, {0}, {0}}

/* A TCP port on 127.0.0.1 that was free when asked (bind port 0, read it back), or a
 * negative RC_E*. Someone else may take it before you bind it. */
int harness_free_port(void);

/* Starts the server described above. Returns 0, RC_ESTATE if r is already running,
 * RC_EUNAVAIL if the server did not come up within 10 s (its log is printed on stderr), or
 * RC_ESYS if a temp dir, file or process could not be made. */
int harness_redis_start(harness_redis *r);

/* Stops the server and removes its directory; nothing if it is not running. */
void harness_redis_stop(harness_redis *r);

/* Empties every database (FLUSHALL). Returns 0, RC_EUNAVAIL or RC_EPROTO. */
int harness_redis_flush(const harness_redis *r);

/* Removes dir and the files directly in it (the flat temporary directories tests make). */
void harness_remove_dir(const char *dir);

/* Writes r->password into path (mode 0600), for --redis-password-file. 0 or RC_EIO. */
int harness_redis_password_file(const harness_redis *r, const char *path);

#endif
