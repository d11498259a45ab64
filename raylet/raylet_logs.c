/*
 * The node's log files for `rayc logs`, on the raylet's TCP server, admins only
 * (rpc_acl_def.h): Ray's LogService.ListLogs (the names in <session>/logs matching a glob)
 * and rayc.rpc.LogReadService (proto/rayc_logs.proto): ReadLog returns a chunk of one file
 * (from an offset, or its last N lines) and FindWorkerLogs names the stdout and stderr
 * files of a worker given its pid or worker ID.
 *
 * Only plain files directly in the log directory are served: a name with a slash, "." or
 * "..", or a symbolic link is refused (INVALID_ARGUMENT / NOT_FOUND), so a caller cannot
 * read anything else on the host. Files are read on the loop thread in chunks of at most
 * log_read_max_bytes (a local file read; the chunk bound keeps one call short).
 *
 * A worker's files are logs/worker-<first 8 hex digits of its worker ID>.out and .err
 * (raylet/worker_pool.c); their first line (and the first line of each file rotation
 * starts) is ":job_id:<job hex>:<pid>", which is how a pid finds its files, also after the
 * worker has exited.
 *
 * Loop thread only.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "raylet_int.h"
#include "rayc_logs.pb-c.h"
#include "rc_alloc.h"
#include "rc_config.h"
#include "reporter.pb-c.h"

static void raylet__log_dir(const raylet *r, char *out, size_t len)
{
    snprintf(out, len, "%s/logs", r->session_dir);
}

/* 1 when name may be served: one path component, not "." or "..". */
static int raylet__log_name_ok(const char *name)
{
    return name && *name && !strchr(name, '/') && strcmp(name, ".") && strcmp(name, "..") && strlen(name) < 256;
}

static int raylet__str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void handle_list_logs(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    raylet *r = arg;
    const Ray__Rpc__ListLogsRequest *req = (const void *)request;
    char dir[PATH_MAX + 16];
    raylet__log_dir(r, dir, sizeof(dir));
    DIR *d = opendir(dir);
    if (!d)
        return rpc_reply_status(call, GRPC_STATUS_NOT_FOUND, "cannot open the log directory %s: %s", dir,
                                strerror(errno));
    size_t n = 0, cap = 64;
    char **names = rc_calloc(cap, sizeof(*names));
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
            continue;
        if (req->glob_filter && *req->glob_filter && fnmatch(req->glob_filter, de->d_name, 0) != 0)
            continue;
        if (n == cap) {
            cap *= 2;
            char **bigger = rc_calloc(cap, sizeof(*names));
            memcpy(bigger, names, n * sizeof(*names));
            rc_free(names);
            names = bigger;
        }
        names[n++] = rc_strdup(de->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(*names), raylet__str_cmp);
    Ray__Rpc__ListLogsReply reply = RAY__RPC__LIST_LOGS_REPLY__INIT;
    reply.log_files = names;
    reply.n_log_files = n;
    rpc_reply(call, &reply.base);
    for (size_t i = 0; i < n; i++)
        rc_free(names[i]);
    rc_free(names);
}

/* Opens logs/name for reading; -1 with the call answered when it cannot. */
static int raylet__open_log(raylet *r, rpc_call *call, const char *name, struct stat *st)
{
    if (!raylet__log_name_ok(name)) {
        rpc_reply_status(call, GRPC_STATUS_INVALID_ARGUMENT,
                         "'%s' is not a log file name (one name from ListLogs, no directories)", name ? name : "");
        return -1;
    }
    char path[PATH_MAX + 400];
    snprintf(path, sizeof(path), "%s/logs/%s", r->session_dir, name);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0 || fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        rpc_reply_status(call, GRPC_STATUS_NOT_FOUND, "no log file %s on node %s%s%s", name, r->node_id_hex,
                         fd < 0 ? ": " : "", fd < 0 ? strerror(e) : "");
        return -1;
    }
    return fd;
}

/* The offset where the last `lines` lines of fd (size bytes) start, looking back at most
 * max bytes. */
static int64_t raylet__tail_start(int fd, int64_t size, int32_t lines, int64_t max)
{
    if (lines <= 0)
        return size;
    int64_t floor = size > max ? size - max : 0;
    int64_t pos = size;
    int32_t seen = 0;
    char buf[8192];
    /* A last line without its newline counts as a line. */
    char last;
    if (size > 0 && pread(fd, &last, 1, size - 1) == 1 && last == '\n')
        pos = size - 1;
    while (pos > floor) {
        int64_t from = pos - (int64_t)sizeof(buf) > floor ? pos - (int64_t)sizeof(buf) : floor;
        ssize_t got = pread(fd, buf, (size_t)(pos - from), from);
        if (got <= 0)
            return floor;
        for (ssize_t i = got - 1; i >= 0; i--)
            if (buf[i] == '\n' && ++seen == lines)
                return from + i + 1;
        pos = from;
    }
    return floor;
}

static void handle_read_log(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    raylet *r = arg;
    const Rayc__Rpc__ReadLogRequest *req = (const void *)request;
    struct stat st;
    int fd = raylet__open_log(r, call, req->log_file_name, &st);
    if (fd < 0)
        return;
    int64_t size = st.st_size;
    int64_t max = rc_cfg.log_read_max_bytes > 0 ? rc_cfg.log_read_max_bytes : 4 << 20;
    if (req->max_bytes > 0 && req->max_bytes < max)
        max = req->max_bytes;
    int64_t start = req->offset < 0 ? raylet__tail_start(fd, size, req->lines, max) : req->offset;
    int64_t end = req->end_offset > 0 && req->end_offset < size ? req->end_offset : size;
    if (start > end)
        start = end; /* past the end (a file rotated under the reader): nothing, with the size */
    if (end - start > max)
        end = start + max;
    uint8_t *data = rc_calloc((size_t)(end - start) + 1, 1);
    ssize_t got = end > start ? pread(fd, data, (size_t)(end - start), start) : 0;
    close(fd);
    if (got < 0) {
        rc_free(data);
        return rpc_reply_status(call, GRPC_STATUS_INTERNAL, "cannot read %s: %s", req->log_file_name,
                                strerror(errno));
    }
    Rayc__Rpc__ReadLogReply reply = RAYC__RPC__READ_LOG_REPLY__INIT;
    reply.data.data = data;
    reply.data.len = (size_t)got;
    reply.offset = start;
    reply.file_size = size;
    rpc_reply(call, &reply.base);
    rc_free(data);
}

/* The pid on the job marker line that starts logs/name, or 0. */
static int raylet__marker_pid(const char *dir, const char *name)
{
    char path[PATH_MAX + 400];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return 0;
    char line[128];
    ssize_t n = read(fd, line, sizeof(line) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    line[n] = '\0';
    if (strncmp(line, ":job_id:", 8) != 0)
        return 0;
    const char *colon = strchr(line + 8, ':');
    return colon ? atoi(colon + 1) : 0;
}

static void handle_find_worker_logs(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    raylet *r = arg;
    const Rayc__Rpc__FindWorkerLogsRequest *req = (const void *)request;
    if (req->worker_id.len && req->worker_id.len != RC_WORKER_ID_SIZE)
        return rpc_reply_status(call, GRPC_STATUS_INVALID_ARGUMENT, "worker_id must hold %d bytes",
                                RC_WORKER_ID_SIZE);
    if (!req->worker_id.len && req->pid <= 0)
        return rpc_reply_status(call, GRPC_STATUS_INVALID_ARGUMENT, "name a worker by pid or worker_id");
    char dir[PATH_MAX + 16], base[64] = "";
    raylet__log_dir(r, dir, sizeof(dir));
    if (req->worker_id.len) {
        char hex[RC_ID_HEX_MAX];
        rc_id_hex(req->worker_id.data, RC_WORKER_ID_SIZE, hex);
        snprintf(base, sizeof(base), "worker-%.8s", hex);
    } else {
        DIR *d = opendir(dir);
        struct dirent *de;
        while (d && (de = readdir(d)) != NULL && !base[0]) {
            size_t len = strlen(de->d_name);
            if (strncmp(de->d_name, "worker-", 7) != 0 || len < 5 || strcmp(de->d_name + len - 4, ".out") != 0)
                continue;
            if (raylet__marker_pid(dir, de->d_name) == req->pid)
                snprintf(base, sizeof(base), "%.*s", (int)(len - 4), de->d_name);
        }
        if (d)
            closedir(d);
    }
    Rayc__Rpc__FindWorkerLogsReply reply = RAYC__RPC__FIND_WORKER_LOGS_REPLY__INIT;
    char out[96] = "", err[96] = "";
    struct stat st;
    char path[PATH_MAX + 400];
    if (base[0]) {
        snprintf(path, sizeof(path), "%s/%s.out", dir, base);
        if (lstat(path, &st) == 0 && S_ISREG(st.st_mode))
            snprintf(out, sizeof(out), "%s.out", base);
        snprintf(path, sizeof(path), "%s/%s.err", dir, base);
        if (lstat(path, &st) == 0 && S_ISREG(st.st_mode))
            snprintf(err, sizeof(err), "%s.err", base);
        if (out[0])
            reply.pid = raylet__marker_pid(dir, out);
    }
    if (!out[0] && !err[0])
        return rpc_reply_status(call, GRPC_STATUS_NOT_FOUND, "node %.16s has no log files of worker %s", r->node_id_hex,
                                req->worker_id.len ? base + 7 : "with that pid");
    reply.stdout_file = out;
    reply.stderr_file = err;
    rpc_reply(call, &reply.base);
}

const rpc_method_handler raylet_log_list_handlers[] = {
    {"ListLogs", handle_list_logs},
    {NULL, NULL},
};

const rpc_method_handler raylet_log_read_handlers[] = {
    {"ReadLog", handle_read_log},
    {"FindWorkerLogs", handle_find_worker_logs},
    {NULL, NULL},
};
