/*
 * Session directories and daemon processes.
 *
 * Every `rayc start` (and every local cluster a driver starts) gets a session directory
 * <root>/session_<date>_<time>_<usec>_<pid>/ with logs/ (one .out and .err per process) and
 * pids/ (one .pid per process). <root> is $RAYC_SESSION_ROOT or /tmp/rayc, so tests and
 * parallel clusters isolate themselves by setting it. <root>/session_latest points at the
 * newest session; its file gcs_address is where clients connect by default. A session
 * directory and its logs/ and pids/ are mode 0700 and logs 0600: the raylet's socket and the
 * cluster's secrets (ca.key, auth_token) live there, and only their user may reach them.
 *
 * Daemons are started with posix_spawn in a new session (setsid), stdin from /dev/null,
 * stdout and stderr into the session's logs: the caller may have gRPC running, and spawn
 * never runs code between fork and exec.
 *
 * Main thread (or any single thread) only.
 */
#ifndef RAYC_COMMON_RC_SESSION_H
#define RAYC_COMMON_RC_SESSION_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Writes the session root into buf. */
void rc_session_root(char *buf, size_t len);
/* Creates a new session directory (mode 0700, and its logs/ and pids/) and points
 * session_latest at it. Writes its path into out. Returns 0 or RC_EIO. */
int rc_session_create(char *out, size_t outlen);
/* The two halves of rc_session_create, for a caller that points session_latest at its
 * session only once what runs there works (`rayc start`: a start that fails leaves the
 * latest session, and the credentials clients find there, as they were). */
int rc_session_new(char *out, size_t outlen);
/* Makes the session directory path (and its parents) with its logs/ and pids/, mode 0700;
 * for a session of a name of the caller's (a host a market provider runs). 0 or RC_EIO. */
int rc_session_make(const char *path);
int rc_session_set_latest(const char *session);
/* Writes content into <session>/<name> atomically. Returns 0 or RC_EIO. */
int rc_session_write(const char *session, const char *name, const char *content);
/* Reads <session>/<name> into out (trailing newline removed). Returns 0, RC_ENOENT or RC_EIO. */
int rc_session_read(const char *session, const char *name, char *out, size_t outlen);
/* The GCS address recorded in session_latest, if any. Returns 0 or RC_ENOENT. */
int rc_session_latest_address(char *out, size_t outlen);

/* Starts exe (a path) with argv (argv[0] included, NULL-terminated) as a daemon of session:
 * logs go to <session>/logs/<name>.out and .err, the pid to <session>/pids/<name>.pid.
 * Returns 0 and the pid, or RC_ESYS (errno kept) if it could not be started. */
int rc_spawn_daemon(const char *session, const char *name, const char *exe, char *const argv[],
                    pid_t *pid);
/* Reads /proc/<pid>/stat into buf (len bytes) and returns its fields after the command
 * name (which may hold spaces and parentheses), starting at the state: "S 1 ...". NULL if
 * there is no such process or the text is malformed. */
const char *rc_proc_stat(pid_t pid, char *buf, size_t len);
/* 1 if pid is a process that runs (a zombie or a dead one does not). */
int rc_pid_running(pid_t pid);
/* Memory a background pre-fault may still take: MemAvailable minus keep_available of
 * MemTotal (0 if below), read from meminfo (NULL: /proc/meminfo). RC_EIO and 0 if the file
 * cannot be read or lacks the two lines. */
int rc_mem_budget(const char *meminfo, double keep_available, uint64_t *bytes);
/* 1 if pid is a live process whose program name starts with "rayc-" (so a recycled pid is
 * never signalled by mistake). */
int rc_pid_is_rayc(pid_t pid);
/* 1 if the pid file at path names a live rayc process that is the one it was written for:
 * the pid runs a rayc-* program that started before the file was last written (a pid the
 * system handed to a newer rayc process after the recorded one died does not count). */
int rc_pid_file_alive(const char *path);

/* ---- what dead processes leave behind ------------------------------------------------
 *
 * A raylet's object store is the file <plasma_directory>/rayc-<node id, 56 hex digits>
 * (config plasma_directory, /dev/shm by default); its unix
 * socket is <session>/sockets/raylet.<8 hex>.sock; every daemon `rayc start` runs has
 * <session>/pids/<name>.pid. A process killed with SIGKILL removes none of them. The
 * sweep below finds those whose owner is gone, and only those (many clusters and test
 * suites share a host):
 *   - a store file is live while any process holds the owner lock on it (the raylet takes
 *     it for its whole life with rc_owner_lock), has it open or mapped (its workers, or a
 *     raylet of an older build that took no lock; seen through /proc), or was changed in the
 *     last RC_SWEEP_YOUNG_S seconds (a raylet creating it right now);
 *   - a socket is live while something accepts connections on it (a connect that is not
 *     refused) or it is younger than RC_SWEEP_YOUNG_S;
 *   - a pid file is live while rc_pid_file_alive says so.
 * Only files of this user are looked at (others' cannot be removed anyway). */
enum { RC_SWEEP_YOUNG_S = 5 };

typedef enum rc_stale_kind { RC_STALE_STORE, RC_STALE_SOCKET, RC_STALE_PID_FILE } rc_stale_kind;
/* Called for each stale file found (path, its kind, and for a pid file the pid it names). */
typedef void (*rc_stale_fn)(const char *path, rc_stale_kind kind, long pid, void *arg);

/* Takes the owner lock of the file at path (an exclusive flock on a descriptor that stays
 * open, close-on-exec, until the process exits) and returns 0, or RC_ESYS (errno kept). */
int rc_owner_lock(const char *path);
/* Looks at every store file under shm_dir (NULL: the configured plasma_directory): stale ones are passed to fn (may
 * be NULL) and, with remove, unlinked. Returns how many were stale. */
int rc_sweep_stores(const char *shm_dir, int remove, rc_stale_fn fn, void *arg);
/* The same for the sockets and pid files of every directory directly under root (the
 * sessions of a session root, or the per-node directories of a test's root). */
int rc_sweep_sessions(const char *root, int remove, rc_stale_fn fn, void *arg);
/* Both, for this host's stores and the sessions under rc_session_root. */
int rc_sweep_host(int remove, rc_stale_fn fn, void *arg);

/* Directory of the running executable (where rayc-gcs and rayc-raylet live). */
int rc_exe_dir(char *out, size_t outlen);
/* Copies the last lines of a file (at most outlen bytes) into out; "" if unreadable. */
void rc_file_tail(const char *path, char *out, size_t outlen);

#endif
