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
/* 1 if pid is a live process whose program name starts with "rayc-" (so a recycled pid is
 * never signalled by mistake). */
int rc_pid_is_rayc(pid_t pid);
/* Directory of the running executable (where rayc-gcs and rayc-raylet live). */
int rc_exe_dir(char *out, size_t outlen);
/* Copies the last lines of a file (at most outlen bytes) into out; "" if unreadable. */
void rc_file_tail(const char *path, char *out, size_t outlen);

#endif
