/*
 * jobs: supervised entrypoints, their records in the GCS KV and Ray's Jobs REST API (see
 * jobs.h); the resources an entrypoint reserves are jobs_reserve.c's.
 */
#define _GNU_SOURCE
#include "jobs_int.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rc_alloc.h"
#include "rc_err.h"
#include "rc_json.h"
#include "rc_log.h"
#include "rc_time.h"

extern char **environ;

#define JOBS_KV_NAMESPACE "job"
#define JOBS_KV_PREFIX "_ray_internal_job_info_"
enum { JOBS_LOG_TAIL = 20000, JOBS_MAX_ENV = 2048 };


static int jobs__terminal(const char *s)
{
    return !strcmp(s, "STOPPED") || !strcmp(s, "SUCCEEDED") || !strcmp(s, "FAILED");
}

static const char *jobs__default_message(const char *s)
{
    if (!strcmp(s, "PENDING"))
        return "Job has not started yet.";
    if (!strcmp(s, "RUNNING"))
        return "Job is currently running.";
    if (!strcmp(s, "STOPPED"))
        return "Job was intentionally stopped.";
    if (!strcmp(s, "SUCCEEDED"))
        return "Job finished successfully.";
    return "Job failed.";
}

static const char *jobs__status_static(const char *s)
{
    static const char *const all[] = {"PENDING", "RUNNING", "STOPPED", "SUCCEEDED", "FAILED"};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (s && !strcmp(s, all[i]))
            return all[i];
    return NULL;
}

static job *jobs__find(jobs *j, const char *id)
{
    for (job *x = j->list; x; x = x->next)
        if (!strcmp(x->submission_id, id) || (x->job_id[0] && !strcmp(x->job_id, id)))
            return x;
    return NULL;
}

/* ---- JSON ------------------------------------------------------------------------------ */

static char *jobs__json_text(const rc_json *v)
{
    rc_buf b = RC_BUF_INIT;
    rc_json_write(&b, v);
    rc_buf_putc(&b, '\0');
    return rc_buf_detach(&b);
}

static void jobs__kv_str(rc_buf *b, const char *key, const char *val)
{
    rc_buf_printf(b, "\"%s\": ", key);
    if (val)
        rc_buf_json_str(b, val, strlen(val));
    else
        rc_buf_puts(b, "null");
}

/* Ray's JobDetails of a submission job. */
static void jobs__details(const job *x, rc_buf *b)
{
    rc_buf_puts(b, "{\"type\": \"SUBMISSION\", ");
    jobs__kv_str(b, "job_id", x->job_id[0] ? x->job_id : NULL);
    rc_buf_puts(b, ", ");
    jobs__kv_str(b, "submission_id", x->submission_id);
    rc_buf_printf(b, ", \"driver_info\": %s, ", x->driver_info ? x->driver_info : "null");
    jobs__kv_str(b, "status", x->status);
    rc_buf_puts(b, ", ");
    jobs__kv_str(b, "entrypoint", x->entrypoint);
    rc_buf_puts(b, ", ");
    jobs__kv_str(b, "message", x->message);
    rc_buf_puts(b, ", ");
    jobs__kv_str(b, "error_type", x->error_type);
    rc_buf_printf(b, ", \"start_time\": %lld, \"end_time\": ", (long long)x->start_time);
    if (x->end_time)
        rc_buf_printf(b, "%lld", (long long)x->end_time);
    else
        rc_buf_puts(b, "null");
    rc_buf_printf(b, ", \"metadata\": %s, \"runtime_env\": %s", x->metadata, x->runtime_env);
    if (x->has_cpus)
        rc_buf_printf(b, ", \"entrypoint_num_cpus\": %.17g", x->num_cpus);
    else
        rc_buf_puts(b, ", \"entrypoint_num_cpus\": null");
    if (x->has_gpus)
        rc_buf_printf(b, ", \"entrypoint_num_gpus\": %.17g", x->num_gpus);
    else
        rc_buf_puts(b, ", \"entrypoint_num_gpus\": null");
    if (x->has_memory)
        rc_buf_printf(b, ", \"entrypoint_memory\": %.17g", x->memory);
    else
        rc_buf_puts(b, ", \"entrypoint_memory\": null");
    rc_buf_printf(b, ", \"entrypoint_resources\": %s", x->resources);
    rc_buf_puts(b, ", \"driver_agent_http_address\": null, ");
    jobs__kv_str(b, "driver_node_id", x->node_id[0] ? x->node_id : NULL);
    rc_buf_puts(b, ", \"driver_exit_code\": ");
    if (x->has_exit_code)
        rc_buf_printf(b, "%d", x->exit_code);
    else
        rc_buf_puts(b, "null");
    rc_buf_putc(b, '}');
}

/* ---- the GCS record ------------------------------------------------------------------------ */

static void jobs__bytes(ProtobufCBinaryData *d, const char *s)
{
    d->data = (uint8_t *)s;
    d->len = strlen(s);
}

static void jobs__on_put(const rpc_status *status, ProtobufCMessage *reply, void *arg)
{
    char *key = arg;
    const char *msg = NULL;
    if (status->code != 0)
        RC_WARN("dashboard: cannot record %s in the GCS: %s", key, status->message ? status->message : "");
    else if (gcs_reply_status(reply, &msg) != GCS_STATUS_OK)
        RC_WARN("dashboard: the GCS refused the record %s: %s", key, msg);
    if (reply)
        rpc_msg_free(reply);
    rc_free(key);
}

static void jobs__store(job *x)
{
    rc_buf b = RC_BUF_INIT;
    jobs__details(x, &b);
    rc_buf_putc(&b, '\0');
    char key[512];
    snprintf(key, sizeof(key), JOBS_KV_PREFIX "%s", x->submission_id);
    Ray__Rpc__InternalKVPutRequest req = RAY__RPC__INTERNAL_KVPUT_REQUEST__INIT;
    jobs__bytes(&req.namespace_, JOBS_KV_NAMESPACE);
    jobs__bytes(&req.key, key);
    req.value.data = (uint8_t *)b.data;
    req.value.len = b.len - 1;
    req.overwrite = 1;
    char *arg = rc_strdup(key);
    if (rpc_client_call(gcs_client_rpc(x->owner->gcs), &ray__rpc__internal_kvgcs_service__descriptor, "InternalKVPut",
                        &req.base, 10000, jobs__on_put, arg) < 0) {
        RC_WARN("dashboard: cannot record %s in the GCS", key);
        rc_free(arg);
    }
    rc_buf_free(&b);
}

static void jobs__delete_record(jobs *j, const char *submission_id)
{
    char key[512];
    snprintf(key, sizeof(key), JOBS_KV_PREFIX "%s", submission_id);
    Ray__Rpc__InternalKVDelRequest req = RAY__RPC__INTERNAL_KVDEL_REQUEST__INIT;
    jobs__bytes(&req.namespace_, JOBS_KV_NAMESPACE);
    jobs__bytes(&req.key, key);
    char *arg = rc_strdup(key);
    if (rpc_client_call(gcs_client_rpc(j->gcs), &ray__rpc__internal_kvgcs_service__descriptor, "InternalKVDel",
                        &req.base, 10000, jobs__on_put, arg) < 0)
        rc_free(arg);
}

void jobs__set_status(job *x, const char *status, const char *message, const char *error_type)
{
    x->status = status;
    rc_free(x->message);
    x->message = rc_strdup(message ? message : jobs__default_message(status));
    rc_free(x->error_type);
    x->error_type = error_type ? rc_strdup(error_type) : NULL;
    if (jobs__terminal(status) && !x->end_time)
        x->end_time = rc_wall_ms();
    if (jobs__terminal(status))
        jobs__release(x); /* whatever it reserved, from whichever path it ended */
    RC_INFO("dashboard: job %s is %s", x->submission_id, status);
    jobs__store(x);
}

/* ---- the driver's job ID ------------------------------------------------------------------- */

static void jobs__driver_info(const Ray__Rpc__JobTableData *d, const char *hex, rc_buf *b)
{
    rc_buf_puts(b, "{\"id\": ");
    rc_buf_json_str(b, hex, strlen(hex));
    rc_buf_puts(b, ", \"node_ip_address\": ");
    rc_buf_json_str(b, d->driver_ip_address ? d->driver_ip_address : "",
                    d->driver_ip_address ? strlen(d->driver_ip_address) : 0);
    rc_buf_printf(b, ", \"pid\": \"%lld\"}", (long long)d->driver_pid);
}

/* The GCS job table: which driver job carries each submission's ID (Ray's job_id and
 * driver_info of a submission), and the drivers started elsewhere, which Ray lists as jobs of
 * type DRIVER. */
static void jobs__on_job_table(const rpc_status *status, ProtobufCMessage *reply, void *arg)
{
    jobs *j = arg;
    j->polling = 0;
    if (status->code != 0 || !reply) {
        if (reply)
            rpc_msg_free(reply);
        return;
    }
    rc_buf_clear(&j->driver_jobs);
    const Ray__Rpc__GetAllJobInfoReply *r = (const void *)reply;
    for (size_t i = 0; i < r->n_job_info_list; i++) {
        const Ray__Rpc__JobTableData *d = r->job_info_list[i];
        if (d->job_id.len < 4)
            continue;
        char hex[RC_ID_HEX_MAX];
        rc_id_hex(d->job_id.data, 4, hex);
        const char *sid = NULL;
        for (size_t k = 0; d->config && k < d->config->n_metadata; k++)
            if (!strcmp(d->config->metadata[k]->key, "job_submission_id"))
                sid = d->config->metadata[k]->value;
        job *x = sid ? jobs__find(j, sid) : NULL;
        if (x) {
            if (!x->job_id[0]) {
                rc_buf info = RC_BUF_INIT;
                jobs__driver_info(d, hex, &info);
                memcpy(x->job_id, hex, 8); /* 4 bytes in hex */
                x->job_id[8] = '\0';
                rc_free(x->driver_info);
                x->driver_info = rc_buf_detach(&info);
                jobs__store(x);
            }
            continue;
        }
        if (sid)
            continue; /* a submission this dashboard does not know (deleted) */
        rc_buf *b = &j->driver_jobs;
        rc_buf_puts(b, ", {\"type\": \"DRIVER\", \"job_id\": ");
        rc_buf_json_str(b, hex, strlen(hex));
        rc_buf_puts(b, ", \"submission_id\": null, \"driver_info\": ");
        jobs__driver_info(d, hex, b);
        /* Ray's view of a driver job: RUNNING while its driver lives, SUCCEEDED after */
        rc_buf_printf(b, ", \"status\": \"%s\", \"entrypoint\": ", d->is_dead ? "SUCCEEDED" : "RUNNING");
        rc_buf_json_str(b, d->entrypoint ? d->entrypoint : "", d->entrypoint ? strlen(d->entrypoint) : 0);
        rc_buf_printf(b, ", \"message\": null, \"error_type\": null, \"start_time\": %llu, \"end_time\": ",
                      (unsigned long long)d->start_time);
        if (d->end_time)
            rc_buf_printf(b, "%llu", (unsigned long long)d->end_time);
        else
            rc_buf_puts(b, "null");
        rc_buf_puts(b, ", \"metadata\": {");
        for (size_t k = 0; d->config && k < d->config->n_metadata; k++) {
            if (k)
                rc_buf_puts(b, ", ");
            rc_buf_json_str(b, d->config->metadata[k]->key, strlen(d->config->metadata[k]->key));
            rc_buf_puts(b, ": ");
            rc_buf_json_str(b, d->config->metadata[k]->value, strlen(d->config->metadata[k]->value));
        }
        rc_buf_puts(b, "}, \"runtime_env\": {}, \"driver_exit_code\": null}");
    }
    rpc_msg_free(reply);
}

static void jobs__on_poll(uv_timer_t *t)
{
    jobs *j = t->data;
    jobs__poll_reservations(j);
    if (j->polling)
        return;
    Ray__Rpc__GetAllJobInfoRequest req = RAY__RPC__GET_ALL_JOB_INFO_REQUEST__INIT;
    if (rpc_client_call(gcs_client_rpc(j->gcs), &ray__rpc__job_info_gcs_service__descriptor, "GetAllJobInfo",
                        &req.base, 5000, jobs__on_job_table, j) == 0)
        j->polling = 1;
}

/* ---- supervision ---------------------------------------------------------------------------- */

static char *jobs__read_log(const job *x, size_t max_tail)
{
    rc_buf b = RC_BUF_INIT;
    int fd = open(x->log_path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        struct stat st;
        if (max_tail && fstat(fd, &st) == 0 && (size_t)st.st_size > max_tail)
            lseek(fd, st.st_size - (off_t)max_tail, SEEK_SET);
        char chunk[65536];
        ssize_t n;
        while ((n = read(fd, chunk, sizeof(chunk))) > 0)
            rc_buf_append(&b, chunk, (size_t)n);
        close(fd);
    }
    rc_buf_putc(&b, '\0');
    return rc_buf_detach(&b);
}

static void jobs__on_handle_closed(uv_handle_t *h)
{
    (void)h;
}

static void jobs__on_exit(uv_process_t *p, int64_t exit_status, int term_signal)
{
    job *x = p->data;
    x->running = 0;
    int code = term_signal ? -term_signal : (int)exit_status;
    if (x->stop_requested)
        kill(-x->pid, SIGKILL); /* whatever the entrypoint left in its group */
    if (x->timer_open)
        uv_timer_stop(&x->kill_timer);
    uv_close((uv_handle_t *)p, jobs__on_handle_closed);
    x->has_exit_code = 1;
    x->exit_code = code;
    if (x->stop_requested) {
        jobs__set_status(x, "STOPPED", NULL, NULL);
    } else if (code == 0) {
        jobs__set_status(x, "SUCCEEDED", NULL, NULL);
    } else {
        char *tail = jobs__read_log(x, JOBS_LOG_TAIL);
        rc_buf m = RC_BUF_INIT;
        if (*tail)
            rc_buf_printf(&m, "Job entrypoint command failed with exit code %d, last available logs (truncated to "
                              "20,000 chars):\n%s", code, tail);
        else
            rc_buf_printf(&m, "Job entrypoint command failed with exit code %d. No logs available.", code);
        jobs__set_status(x, "FAILED", rc_buf_cstr(&m), "JOB_ENTRYPOINT_COMMAND_ERROR");
        rc_buf_free(&m);
        rc_free(tail);
    }
}

static void jobs__on_kill_timer(uv_timer_t *t)
{
    job *x = t->data;
    if (x->running) {
        RC_WARN("dashboard: job %s did not stop within %d s of SIGTERM; killing it", x->submission_id,
                x->owner->opts.stop_wait_s);
        kill(-x->pid, SIGKILL);
    }
}

/* Copying a working directory (nftw has no argument: loop thread only). */
static const char *jobs__copy_src, *jobs__copy_dst;
static int jobs__copy_failed;

static int jobs__copy_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)ftw;
    char dst[PATH_MAX * 2];
    snprintf(dst, sizeof(dst), "%s%s", jobs__copy_dst, path + strlen(jobs__copy_src));
    if (type == FTW_D) {
        if (mkdir(dst, 0700) != 0 && errno != EEXIST)
            jobs__copy_failed = errno;
        return jobs__copy_failed ? 1 : 0;
    }
    if (type == FTW_SL) {
        char target[PATH_MAX];
        ssize_t n = readlink(path, target, sizeof(target) - 1);
        if (n >= 0) {
            target[n] = '\0';
            if (symlink(target, dst) != 0)
                jobs__copy_failed = errno;
        }
        return jobs__copy_failed ? 1 : 0;
    }
    if (type != FTW_F)
        return 0;
    int in = open(path, O_RDONLY | O_CLOEXEC);
    int out = in < 0 ? -1 : open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, st->st_mode & 0777);
    char chunk[65536];
    ssize_t n = 0;
    while (out >= 0 && (n = read(in, chunk, sizeof(chunk))) > 0)
        if (write(out, chunk, (size_t)n) != n) {
            n = -1;
            break;
        }
    if (in < 0 || out < 0 || n < 0)
        jobs__copy_failed = errno ? errno : EIO;
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return jobs__copy_failed ? 1 : 0;
}

static int jobs__copy_dir(const char *src, const char *dst)
{
    jobs__copy_src = src;
    jobs__copy_dst = dst;
    jobs__copy_failed = 0;
    int rc = nftw(src, jobs__copy_one, 32, FTW_PHYS);
    return rc == 0 && !jobs__copy_failed ? 0 : RC_EIO;
}

static void jobs__spawn(jobs *j, job *x, const rc_json *env_vars, const char *working_dir);

/* Starts x's entrypoint, with the working_dir and env_vars of its runtime env (checked at
 * submission). On failure the job is FAILED with why. */
void jobs__launch(jobs *j, job *x)
{
    rc_json *renv = NULL;
    char perr[200];
    if (rc_json_parse(x->runtime_env, strlen(x->runtime_env), &renv, perr, sizeof(perr)) < 0)
        renv = NULL;
    const rc_json *env_vars = renv ? rc_json_get(renv, "env_vars") : NULL;
    const rc_json *wd = renv ? rc_json_get(renv, "working_dir") : NULL;
    if (env_vars && env_vars->type != RC_JSON_OBJECT)
        env_vars = NULL;
    const char *working_dir = wd && wd->type == RC_JSON_STRING ? wd->str : NULL;
    jobs__spawn(j, x, env_vars, working_dir);
    rc_json_free(renv);
}

static void jobs__spawn(jobs *j, job *x, const rc_json *env_vars, const char *working_dir)
{
    char cwd[PATH_MAX + 200];
    snprintf(cwd, sizeof(cwd), "%s", j->session);
    if (working_dir) {
        char dir[PATH_MAX + 100];
        snprintf(dir, sizeof(dir), "%s/runtime_resources", j->session);
        mkdir(dir, 0700);
        snprintf(dir, sizeof(dir), "%s/runtime_resources/working_dir_files", j->session);
        mkdir(dir, 0700);
        snprintf(cwd, sizeof(cwd), "%s/%s", dir, x->submission_id);
        char src[PATH_MAX];
        if (!realpath(working_dir, src) || jobs__copy_dir(src, cwd) < 0) {
            char m[PATH_MAX + 300];
            snprintf(m, sizeof(m), "Failed to set up the runtime environment: cannot copy working_dir %s into %s: %s",
                     working_dir, cwd, strerror(jobs__copy_failed ? jobs__copy_failed : errno));
            jobs__set_status(x, "FAILED", m, "RUNTIME_ENV_SETUP_FAILURE");
            return;
        }
    }
    /* The environment: ours, then the job's variables, then what the driver needs. */
    char *env[JOBS_MAX_ENV + 16];
    size_t n = 0;
    static const char *const ours[] = {"RAY_ADDRESS=",  "RAYC_ADDRESS=",        "RAYC_JOB_SUBMISSION_ID=",
                                       "RAYC_CA_CERT=", "RAYC_AUTH_TOKEN_PATH=", "RAYC_AUTH_TOKEN=",
                                       "RAY_JOB_CONFIG_JSON_ENV_VAR="};
    rc_buf keep = RC_BUF_INIT; /* strings we build */
    char *owned[JOBS_MAX_ENV + 16];
    size_t n_owned = 0;
    for (char **e = environ; *e && n < JOBS_MAX_ENV / 2; e++) { /* the rest is the job's */
        int skip = 0;
        for (size_t k = 0; k < sizeof(ours) / sizeof(ours[0]); k++)
            skip |= !strncmp(*e, ours[k], strlen(ours[k]));
        if (env_vars)
            for (size_t k = 0; k < env_vars->n_items; k++) {
                size_t kl = strlen(env_vars->items[k].key);
                skip |= !strncmp(*e, env_vars->items[k].key, kl) && (*e)[kl] == '=';
            }
        if (!skip)
            env[n++] = *e;
    }
    if (env_vars)
        for (size_t k = 0; k < env_vars->n_items && n < JOBS_MAX_ENV; k++) {
            rc_buf_clear(&keep);
            rc_buf_printf(&keep, "%s=%s", env_vars->items[k].key, env_vars->items[k].str);
            rc_buf_putc(&keep, '\0');
            env[n++] = owned[n_owned++] = rc_strdup(keep.data);
        }
    /* The job's runtime env for its driver's ray.init (Ray's RAY_JOB_CONFIG_JSON_ENV_VAR), so
     * that every worker of the job gets it too: its env_vars, and the working_dir's copy,
     * which ray.init packages for the workers of every node. */
    rc_buf config = RC_BUF_INIT;
    rc_buf_puts(&config, "{\"runtime_env\": {");
    if (env_vars) {
        rc_buf_puts(&config, "\"env_vars\": ");
        rc_json_write(&config, env_vars);
    }
    if (working_dir) {
        rc_buf_printf(&config, "%s\"working_dir\": ", env_vars ? ", " : "");
        rc_buf_json_str(&config, cwd, strlen(cwd));
    }
    rc_buf_puts(&config, "}}");
    const char *pairs[6][2] = {{"RAY_ADDRESS", j->gcs_address},
                               {"RAYC_ADDRESS", j->gcs_address},
                               {"RAYC_JOB_SUBMISSION_ID", x->submission_id},
                               {"RAY_JOB_CONFIG_JSON_ENV_VAR", rc_buf_cstr(&config)},
                               {NULL, NULL},
                               {NULL, NULL}};
    char ca[PATH_MAX + 32], tok[PATH_MAX + 32];
    if (!j->opts.insecure) {
        snprintf(ca, sizeof(ca), "%s/ca.crt", j->session);
        snprintf(tok, sizeof(tok), "%s/auth_token", j->session);
        pairs[4][0] = "RAYC_CA_CERT";
        pairs[4][1] = ca;
        pairs[5][0] = "RAYC_AUTH_TOKEN_PATH";
        pairs[5][1] = tok;
    }
    for (size_t k = 0; k < 6; k++) {
        if (!pairs[k][0])
            continue;
        rc_buf_clear(&keep);
        rc_buf_printf(&keep, "%s=%s", pairs[k][0], pairs[k][1]);
        rc_buf_putc(&keep, '\0');
        env[n++] = owned[n_owned++] = rc_strdup(keep.data);
    }
    env[n] = NULL;
    rc_buf_free(&keep);
    rc_buf_free(&config);

    int fd = open(x->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        char m[PATH_MAX + 100];
        snprintf(m, sizeof(m), "Cannot open the job's log %s: %s", x->log_path, strerror(errno));
        jobs__set_status(x, "FAILED", m, "JOB_ENTRYPOINT_COMMAND_START_ERROR");
        for (size_t k = 0; k < n_owned; k++)
            rc_free(owned[k]);
        return;
    }
    char *args[] = {"/bin/sh", "-c", x->entrypoint, NULL};
    uv_stdio_container_t stdio[3];
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_INHERIT_FD;
    stdio[1].data.fd = fd;
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = fd;
    uv_process_options_t po;
    memset(&po, 0, sizeof(po));
    po.file = "/bin/sh";
    po.args = args;
    po.env = env;
    po.cwd = cwd;
    po.flags = UV_PROCESS_DETACHED; /* setsid: a process group of its own, to stop as one */
    po.stdio_count = 3;
    po.stdio = stdio;
    po.exit_cb = jobs__on_exit;
    x->proc.data = x;
    int rc = uv_spawn(j->loop, &x->proc, &po);
    close(fd);
    for (size_t k = 0; k < n_owned; k++)
        rc_free(owned[k]);
    if (rc != 0) {
        uv_close((uv_handle_t *)&x->proc, jobs__on_handle_closed);
        char m[300];
        snprintf(m, sizeof(m), "Cannot start the entrypoint: %s", uv_strerror(rc));
        jobs__set_status(x, "FAILED", m, "JOB_ENTRYPOINT_COMMAND_START_ERROR");
        return;
    }
    x->pid = x->proc.pid;
    x->running = 1;
    RC_INFO("dashboard: job %s runs as process group %d: %s", x->submission_id, (int)x->pid, x->entrypoint);
    jobs__set_status(x, "RUNNING", NULL, NULL);
}

/* ---- REST ------------------------------------------------------------------------------------- */

static void jobs__text(http_response *resp, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void jobs__text(http_response *resp, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    resp->status = status;
    resp->content_type = "text/plain; charset=utf-8";
    size_t from = resp->body.len;
    rc_buf_vprintf(&resp->body, fmt, ap);
    va_end(ap);
    /* these texts quote what the caller sent: keep them printable ASCII */
    for (size_t i = from; i < resp->body.len; i++)
        if (((unsigned char)resp->body.data[i] < 0x20 && resp->body.data[i] != '\n') ||
            (unsigned char)resp->body.data[i] >= 0x7f)
            resp->body.data[i] = '?';
}

static int jobs__id_ok(const char *s)
{
    if (!*s || strlen(s) > 200)
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' ||
              *p == '-' || *p == '.'))
            return 0;
    return *s != '.';
}

static void jobs__new_id(char *out, size_t len)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    unsigned char r[16];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, r, sizeof(r)) != (ssize_t)sizeof(r))
        for (size_t i = 0; i < sizeof(r); i++)
            r[i] = (unsigned char)rand();
    if (fd >= 0)
        close(fd);
    char part[17];
    for (size_t i = 0; i < 16; i++)
        part[i] = alphabet[r[i] % (sizeof(alphabet) - 1)];
    part[16] = '\0';
    snprintf(out, len, "raysubmit_%s", part);
}

static const rc_json *jobs__member(const rc_json *o, const char *key, rc_json_type want, int *bad)
{
    const rc_json *v = rc_json_get(o, key);
    if (!v || v->type == RC_JSON_NULL)
        return NULL;
    if (v->type != want)
        *bad = 1;
    return v->type == want ? v : NULL;
}

static void jobs__submit(jobs *j, const http_request *req, http_response *resp)
{
    rc_json *body = NULL;
    char err[300];
    if (rc_json_parse(req->body, req->body_len, &body, err, sizeof(err)) < 0) {
        return jobs__text(resp, 400, "Failed to parse the request body as JSON: %s\n", err);
    }
    if (body->type != RC_JSON_OBJECT) {
        rc_json_free(body);
        return jobs__text(resp, 400, "The request body must be a JSON object (JobSubmitRequest)\n");
    }
    int bad = 0;
    const rc_json *entry = jobs__member(body, "entrypoint", RC_JSON_STRING, &bad);
    const char *bad_field = bad ? "entrypoint" : NULL;
    const rc_json *sid = jobs__member(body, "submission_id", RC_JSON_STRING, &bad);
    if (!sid && !bad_field && bad)
        bad_field = "submission_id";
    const rc_json *old_id = sid ? NULL : jobs__member(body, "job_id", RC_JSON_STRING, &bad);
    if (!bad_field && bad)
        bad_field = "job_id";
    const rc_json *renv = jobs__member(body, "runtime_env", RC_JSON_OBJECT, &bad);
    if (!bad_field && bad)
        bad_field = "runtime_env (an object)";
    const rc_json *meta = jobs__member(body, "metadata", RC_JSON_OBJECT, &bad);
    if (!bad_field && bad)
        bad_field = "metadata (an object of strings)";
    const rc_json *cpus = jobs__member(body, "entrypoint_num_cpus", RC_JSON_NUMBER, &bad);
    const rc_json *gpus = jobs__member(body, "entrypoint_num_gpus", RC_JSON_NUMBER, &bad);
    const rc_json *mem = jobs__member(body, "entrypoint_memory", RC_JSON_NUMBER, &bad);
    if (!bad_field && bad)
        bad_field = "entrypoint_num_cpus/entrypoint_num_gpus/entrypoint_memory (numbers)";
    const rc_json *res = jobs__member(body, "entrypoint_resources", RC_JSON_OBJECT, &bad);
    if (!bad_field && bad)
        bad_field = "entrypoint_resources (an object of numbers)";
    const rc_json *wd = renv ? jobs__member(renv, "working_dir", RC_JSON_STRING, &bad) : NULL;
    const rc_json *env_vars = renv ? jobs__member(renv, "env_vars", RC_JSON_OBJECT, &bad) : NULL;
    if (!bad_field && bad)
        bad_field = "runtime_env.working_dir (a string) or runtime_env.env_vars (an object)";
    for (size_t i = 0; meta && !bad_field && i < meta->n_items; i++)
        if (meta->items[i].type != RC_JSON_STRING)
            bad_field = "metadata (an object of strings)";
    for (size_t i = 0; env_vars && !bad_field && i < env_vars->n_items; i++)
        if (env_vars->items[i].type != RC_JSON_STRING || !*env_vars->items[i].key ||
            strchr(env_vars->items[i].key, '='))
            bad_field = "runtime_env.env_vars (an object of strings)";
    for (size_t i = 0; res && !bad_field && i < res->n_items; i++)
        if (res->items[i].type != RC_JSON_NUMBER)
            bad_field = "entrypoint_resources (an object of numbers)";
    for (size_t i = 0; res && !bad_field && i < res->n_items; i++) {
        const char *k = res->items[i].key;
        if (!*k || !strcmp(k, "CPU") || !strcmp(k, "GPU") || !strcmp(k, "memory") || strstr(k, "_group_")) {
            jobs__text(resp, 400,
                       "Invalid JobSubmitRequest: entrypoint_resources holds custom resources; '%s' is not one (use "
                       "entrypoint_num_cpus, entrypoint_num_gpus and entrypoint_memory; '_group_' names belong to "
                       "placement groups)\n",
                       k);
            rc_json_free(body);
            return;
        }
        if (res->items[i].number < 0 || !isfinite(res->items[i].number)) {
            jobs__text(resp, 400, "Invalid JobSubmitRequest: entrypoint_resources['%s'] must be a number >= 0\n", k);
            rc_json_free(body);
            return;
        }
    }
    if (bad_field) {
        jobs__text(resp, 400, "Invalid JobSubmitRequest: wrong type for %s\n", bad_field);
        rc_json_free(body);
        return;
    }
    if (!entry || !*entry->str) {
        jobs__text(resp, 400, "Invalid JobSubmitRequest: entrypoint is required (the shell command to run)\n");
        rc_json_free(body);
        return;
    }
    if ((cpus && !(cpus->number >= 0 && isfinite(cpus->number))) ||
        (gpus && !(gpus->number >= 0 && isfinite(gpus->number))) ||
        (mem && !(mem->number >= 0 && isfinite(mem->number)))) {
        jobs__text(resp, 400, "Invalid JobSubmitRequest: entrypoint resources must be non-negative\n");
        rc_json_free(body);
        return;
    }
    char id[256];
    if (!sid)
        sid = old_id;
    if (sid) {
        if (!jobs__id_ok(sid->str)) {
            jobs__text(resp, 400, "Invalid submission_id '%s': use letters, digits, '_', '-' and '.' (at most 200)\n",
                       sid->str);
            rc_json_free(body);
            return;
        }
        snprintf(id, sizeof(id), "%s", sid->str);
    } else {
        do
            jobs__new_id(id, sizeof(id));
        while (jobs__find(j, id));
    }
    if (jobs__find(j, id)) {
        jobs__text(resp, 400, "Job with submission_id %s already exists. Please use a different submission_id.\n",
                   id);
        rc_json_free(body);
        return;
    }
    struct stat st;
    if (wd && (stat(wd->str, &st) != 0 || !S_ISDIR(st.st_mode))) {
        jobs__text(resp, 400,
                   "runtime_env.working_dir '%s' is not a directory on the head node (rayc takes a local "
                   "directory of the head's host; remote URIs and zip packages are not supported)\n",
                   wd->str);
        rc_json_free(body);
        return;
    }
    job *x = RC_NEW(job);
    x->owner = j;
    x->submission_id = rc_strdup(id);
    x->entrypoint = rc_strdup(entry->str);
    x->metadata = meta ? jobs__json_text(meta) : rc_strdup("{}");
    x->runtime_env = renv ? jobs__json_text(renv) : rc_strdup("{}");
    x->resources = res ? jobs__json_text(res) : rc_strdup("null");
    x->has_cpus = cpus != NULL;
    x->num_cpus = cpus ? cpus->number : 0;
    x->has_gpus = gpus != NULL;
    x->num_gpus = gpus ? gpus->number : 0;
    x->has_memory = mem != NULL;
    x->memory = mem ? mem->number : 0;
    x->start_time = rc_wall_ms();
    rc_buf p = RC_BUF_INIT;
    rc_buf_printf(&p, "%s/logs/job-driver-%s.log", j->session, id);
    x->log_path = rc_buf_detach(&p);
    uv_timer_init(j->loop, &x->kill_timer);
    x->kill_timer.data = x;
    x->timer_open = 1;
    x->next = j->list;
    j->list = x;
    x->reserve = jobs__wants(x);
    if (x->reserve) {
        /* Ray's words for a job that may wait for its resources */
        rc_buf m = RC_BUF_INIT;
        rc_buf_puts(&m, "Job has not started yet. It may be waiting for resources (CPUs, GPUs, memory, custom "
                        "resources) to become available.");
        if (renv && renv->n_items)
            rc_buf_puts(&m, " It may be waiting for the runtime environment to be set up.");
        jobs__set_status(x, "PENDING", rc_buf_cstr(&m), NULL);
        rc_buf_free(&m);
        jobs__reserve(x);
    } else {
        jobs__set_status(x, "PENDING", NULL, NULL);
        jobs__launch(j, x);
    }
    rc_json_free(body);
    resp->content_type = "application/json";
    rc_buf_puts(&resp->body, "{\"job_id\": ");
    rc_buf_json_str(&resp->body, id, strlen(id));
    rc_buf_puts(&resp->body, ", \"submission_id\": ");
    rc_buf_json_str(&resp->body, id, strlen(id));
    rc_buf_puts(&resp->body, "}");
}

static void jobs__free_job(job *x)
{
    rc_free(x->submission_id);
    rc_free(x->entrypoint);
    rc_free(x->message);
    rc_free(x->error_type);
    rc_free(x->metadata);
    rc_free(x->runtime_env);
    rc_free(x->resources);
    rc_free(x->log_path);
    rc_free(x->driver_info);
    rc_free(x);
}

static void jobs__on_timer_closed(uv_handle_t *h)
{
    jobs__free_job(h->data);
}

static void jobs__remove(jobs *j, job *x)
{
    for (job **pp = &j->list; *pp; pp = &(*pp)->next)
        if (*pp == x) {
            *pp = x->next;
            break;
        }
    if (x->timer_open)
        uv_close((uv_handle_t *)&x->kill_timer, jobs__on_timer_closed);
    else
        jobs__free_job(x);
}

/* GET /api/jobs/{id}/logs/tail?offset=N: the polled follow that stands in for Ray's websocket.
 * {"logs": what the log holds from byte N (at most 1 MiB, ending on a character boundary),
 *  "offset": where the next poll starts, "status", "ended": the job has ended and nothing
 *  more will come}. */
static void jobs__tail(const job *x, const http_request *req, http_response *resp)
{
    const char *arg = http_request_arg(req, "offset");
    char *end = NULL;
    long long offset = arg ? strtoll(arg, &end, 10) : 0;
    if (arg && (!*arg || *end || offset < 0))
        return jobs__text(resp, 400, "offset must be a non-negative byte count, not '%s'\n", arg);
    /* the status first: a job that has ended has written all it will */
    int ended = jobs__terminal(x->status);
    rc_buf chunk = RC_BUF_INIT;
    int fd = open(x->log_path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        rc_buf_reserve(&chunk, 1 << 20);
        ssize_t n = pread(fd, chunk.data, 1 << 20, (off_t)offset);
        chunk.len = n > 0 ? (size_t)n : 0;
        close(fd);
    }
    size_t len = chunk.len;
    if (len == (size_t)1 << 20) { /* more follows: end on a UTF-8 character boundary */
        size_t back = 0;
        while (back < 4 && back < len && ((unsigned char)chunk.data[len - 1 - back] & 0xC0) == 0x80)
            back++;
        if (back < len && ((unsigned char)chunk.data[len - 1 - back] & 0x80))
            len -= back + 1;
        ended = 0;
    }
    resp->content_type = "application/json";
    rc_buf_puts(&resp->body, "{\"logs\": ");
    rc_buf_json_str(&resp->body, len ? chunk.data : "", len);
    rc_buf_printf(&resp->body, ", \"offset\": %lld, \"status\": \"%s\", \"ended\": %s}", offset + (long long)len,
                  x->status, ended ? "true" : "false");
    rc_buf_free(&chunk);
}

int jobs_handle(jobs *j, const http_request *req, http_response *resp)
{
    const char *p = req->path;
    if (strncmp(p, "/api/jobs", 9) != 0 || (p[9] && p[9] != '/'))
        return 0;
    p += 9;
    if (*p == '/')
        p++;
    if (!*p) {
        if (!strcmp(req->method, "POST")) {
            jobs__submit(j, req, resp);
        } else if (!strcmp(req->method, "GET")) {
            resp->content_type = "application/json";
            rc_buf_putc(&resp->body, '[');
            for (job *x = j->list; x; x = x->next) {
                if (x != j->list)
                    rc_buf_puts(&resp->body, ", ");
                jobs__details(x, &resp->body);
            }
            if (j->driver_jobs.len) /* ", {...}" each */
                rc_buf_append(&resp->body, j->list ? j->driver_jobs.data : j->driver_jobs.data + 2,
                              j->list ? j->driver_jobs.len : j->driver_jobs.len - 2);
            rc_buf_putc(&resp->body, ']');
        } else {
            jobs__text(resp, 405, "405: %s is not allowed on /api/jobs/ (GET lists jobs, POST submits one)\n",
                       req->method);
        }
        return 1;
    }
    char id[256];
    const char *slash = strchr(p, '/');
    size_t n = slash ? (size_t)(slash - p) : strlen(p);
    if (n >= sizeof(id)) {
        jobs__text(resp, 404, "Job %.*s... does not exist\n", 64, p);
        return 1;
    }
    memcpy(id, p, n);
    id[n] = '\0';
    const char *rest = slash ? slash : "";
    if (strcmp(rest, "") && strcmp(rest, "/") && strcmp(rest, "/logs") && strcmp(rest, "/stop") &&
        strcmp(rest, "/logs/tail")) {
        jobs__text(resp, 404, "404: no such endpoint %s\n", req->path);
        return 1;
    }
    job *x = jobs__find(j, id);
    if (!x) {
        jobs__text(resp, 404, "Job %s does not exist\n", id);
        return 1;
    }
    int get = !strcmp(req->method, "GET"), post = !strcmp(req->method, "POST"), del = !strcmp(req->method, "DELETE");
    if (!strcmp(rest, "") || !strcmp(rest, "/")) {
        if (get) {
            resp->content_type = "application/json";
            jobs__details(x, &resp->body);
        } else if (del) {
            if (!jobs__terminal(x->status)) {
                jobs__text(resp, 400, "Attempted to delete job '%s', but it is in a non-terminal state %s.\n",
                           x->submission_id, x->status);
                return 1;
            }
            RC_INFO("dashboard: job %s deleted", x->submission_id);
            jobs__delete_record(j, x->submission_id);
            unlink(x->log_path);
            jobs__remove(j, x);
            resp->content_type = "application/json";
            rc_buf_puts(&resp->body, "{\"deleted\": true}");
        } else {
            jobs__text(resp, 405, "405: %s is not allowed here (GET or DELETE)\n", req->method);
        }
    } else if (!strcmp(rest, "/logs")) {
        if (!get)
            return jobs__text(resp, 405, "405: use GET\n"), 1;
        char *logs = jobs__read_log(x, 0);
        resp->content_type = "application/json";
        rc_buf_puts(&resp->body, "{\"logs\": ");
        rc_buf_json_str(&resp->body, logs, strlen(logs));
        rc_buf_putc(&resp->body, '}');
        rc_free(logs);
    } else if (!strcmp(rest, "/logs/tail")) {
        if (!get)
            return jobs__text(resp, 405, "405: use GET\n"), 1;
        jobs__tail(x, req, resp);
    } else {
        if (!post)
            return jobs__text(resp, 405, "405: use POST\n"), 1;
        int stopped = 0;
        if (!jobs__terminal(x->status) && x->running && !x->stop_requested) {
            RC_INFO("dashboard: stopping job %s (SIGTERM to process group %d)", x->submission_id, (int)x->pid);
            x->stop_requested = 1;
            kill(-x->pid, SIGTERM);
            uv_timer_start(&x->kill_timer, jobs__on_kill_timer, (uint64_t)j->opts.stop_wait_s * 1000, 0);
            stopped = 1;
        } else if (x->stop_requested && !jobs__terminal(x->status)) {
            stopped = 1;
        } else if (!jobs__terminal(x->status) && !x->running && x->pg_phase != JOBS_PG_NONE) {
            /* still waiting for its resources: nothing runs; the reservation goes */
            RC_INFO("dashboard: stopping job %s before it started", x->submission_id);
            jobs__set_status(x, "STOPPED", NULL, NULL);
            stopped = 1;
        }
        resp->content_type = "application/json";
        rc_buf_printf(&resp->body, "{\"stopped\": %s}", stopped ? "true" : "false");
    }
    return 1;
}

/* ---- start: the records a previous dashboard left ------------------------------------------ */

static void jobs__load_one(jobs *j, const char *text, size_t len)
{
    rc_json *v = NULL;
    char err[200];
    if (rc_json_parse(text, len, &v, err, sizeof(err)) < 0 || v->type != RC_JSON_OBJECT) {
        RC_WARN("dashboard: ignoring a job record that is not JSON: %s", err);
        rc_json_free(v);
        return;
    }
    const rc_json *sid = rc_json_get(v, "submission_id"), *st = rc_json_get(v, "status");
    const char *status = st && st->type == RC_JSON_STRING ? jobs__status_static(st->str) : NULL;
    if (!sid || sid->type != RC_JSON_STRING || !status || jobs__find(j, sid->str)) {
        rc_json_free(v);
        return;
    }
    job *x = RC_NEW(job);
    x->owner = j;
    x->submission_id = rc_strdup(sid->str);
    const rc_json *f;
#define STR_OR(name, dflt) ((f = rc_json_get(v, name)) && f->type == RC_JSON_STRING ? f->str : (dflt))
#define NUM_OR(name, dflt) ((f = rc_json_get(v, name)) && f->type == RC_JSON_NUMBER ? f->number : (dflt))
    x->entrypoint = rc_strdup(STR_OR("entrypoint", ""));
    x->message = rc_strdup(STR_OR("message", jobs__default_message(status)));
    const char *et = STR_OR("error_type", NULL);
    x->error_type = et ? rc_strdup(et) : NULL;
    snprintf(x->job_id, sizeof(x->job_id), "%s", STR_OR("job_id", ""));
    snprintf(x->node_id, sizeof(x->node_id), "%s", STR_OR("driver_node_id", ""));
    f = rc_json_get(v, "driver_info");
    x->driver_info = f && f->type == RC_JSON_OBJECT ? jobs__json_text(f) : NULL;
    f = rc_json_get(v, "metadata");
    x->metadata = f && f->type == RC_JSON_OBJECT ? jobs__json_text(f) : rc_strdup("{}");
    f = rc_json_get(v, "runtime_env");
    x->runtime_env = f && f->type == RC_JSON_OBJECT ? jobs__json_text(f) : rc_strdup("{}");
    f = rc_json_get(v, "entrypoint_resources");
    x->resources = f && f->type == RC_JSON_OBJECT ? jobs__json_text(f) : rc_strdup("null");
    x->has_cpus = (f = rc_json_get(v, "entrypoint_num_cpus")) && f->type == RC_JSON_NUMBER;
    x->num_cpus = NUM_OR("entrypoint_num_cpus", 0);
    x->has_gpus = (f = rc_json_get(v, "entrypoint_num_gpus")) && f->type == RC_JSON_NUMBER;
    x->num_gpus = NUM_OR("entrypoint_num_gpus", 0);
    x->has_memory = (f = rc_json_get(v, "entrypoint_memory")) && f->type == RC_JSON_NUMBER;
    x->memory = NUM_OR("entrypoint_memory", 0);
    x->start_time = (int64_t)NUM_OR("start_time", 0);
    x->end_time = (int64_t)NUM_OR("end_time", 0);
    x->has_exit_code = (f = rc_json_get(v, "driver_exit_code")) && f->type == RC_JSON_NUMBER;
    x->exit_code = (int)NUM_OR("driver_exit_code", 0);
#undef STR_OR
#undef NUM_OR
    x->status = status;
    rc_buf p = RC_BUF_INIT;
    rc_buf_printf(&p, "%s/logs/job-driver-%s.log", j->session, x->submission_id);
    x->log_path = rc_buf_detach(&p);
    /* append: the list is newest first and the KV returns keys in no particular order */
    job **pp = &j->list;
    while (*pp && (*pp)->start_time >= x->start_time)
        pp = &(*pp)->next;
    x->next = *pp;
    *pp = x;
    rc_json_free(v);
    if (!jobs__terminal(status))
        jobs__set_status(x, "FAILED",
                         "Job supervisor actor died: the dashboard that supervised this job's entrypoint exited "
                         "before the job ended (its driver may still run).",
                         "JOB_SUPERVISOR_ACTOR_DIED");
}

int jobs_start(uv_loop_t *loop, gcs_client *gcs, const jobs_options *opts, jobs **out, char *err, size_t errlen)
{
    jobs *j = RC_NEW(jobs);
    j->loop = loop;
    j->gcs = gcs;
    j->opts = *opts;
    j->session = rc_strdup(opts->session);
    j->gcs_address = rc_strdup(opts->gcs_address);
    j->opts.session = j->session;
    j->opts.gcs_address = j->gcs_address;
    if (j->opts.stop_wait_s <= 0)
        j->opts.stop_wait_s = 3;
    /* Ray's name and default (15 minutes) */
    const char *start_timeout = getenv("RAY_JOB_START_TIMEOUT_SECONDS");
    double start_timeout_s = start_timeout && *start_timeout ? strtod(start_timeout, NULL) : 0;
    j->start_timeout_ms = start_timeout_s > 0 && isfinite(start_timeout_s) ? (int64_t)(start_timeout_s * 1000) : 900000;

    Ray__Rpc__InternalKVKeysRequest kreq = RAY__RPC__INTERNAL_KVKEYS_REQUEST__INIT;
    jobs__bytes(&kreq.namespace_, JOBS_KV_NAMESPACE);
    jobs__bytes(&kreq.prefix, JOBS_KV_PREFIX);
    ProtobufCMessage *reply = NULL;
    int code = rpc_client_call_sync(gcs_client_rpc(gcs), &ray__rpc__internal_kvgcs_service__descriptor,
                                    "InternalKVKeys", &kreq.base, 15000, &reply, err, errlen);
    if (code != 0) {
        rc_free(j->session);
        rc_free(j->gcs_address);
        rc_free(j);
        return RC_EUNAVAIL;
    }
    const Ray__Rpc__InternalKVKeysReply *keys = (const void *)reply;
    for (size_t i = 0; i < keys->n_results; i++) {
        Ray__Rpc__InternalKVGetRequest g = RAY__RPC__INTERNAL_KVGET_REQUEST__INIT;
        jobs__bytes(&g.namespace_, JOBS_KV_NAMESPACE);
        g.key = keys->results[i];
        ProtobufCMessage *greply = NULL;
        char gerr[200];
        if (rpc_client_call_sync(gcs_client_rpc(gcs), &ray__rpc__internal_kvgcs_service__descriptor, "InternalKVGet",
                                 &g.base, 15000, &greply, gerr, sizeof(gerr)) != 0)
            continue;
        const Ray__Rpc__InternalKVGetReply *gr = (const void *)greply;
        if (gcs_reply_status(greply, NULL) == GCS_STATUS_OK)
            jobs__load_one(j, (const char *)gr->value.data, gr->value.len);
        rpc_msg_free(greply);
    }
    RC_INFO("dashboard: %zu job record%s in the GCS", keys->n_results, keys->n_results == 1 ? "" : "s");
    rpc_msg_free(reply);
    jobs__collect_orphans(j);
    uv_timer_init(loop, &j->poll);
    j->poll.data = j;
    uv_timer_start(&j->poll, jobs__on_poll, 500, 500);
    *out = j;
    return 0;
}

void jobs_shutdown(jobs *j)
{
    if (!j)
        return;
    for (job *x = j->list; x; x = x->next)
        if (x->running) {
            RC_INFO("dashboard: stopping job %s as the dashboard stops", x->submission_id);
            kill(-x->pid, SIGTERM);
        }
    rc_sleep_ms(200);
    for (job *x = j->list; x; x = x->next)
        if (x->running)
            kill(-x->pid, SIGKILL);
    uv_timer_stop(&j->poll);
    jobs__release_all(j, 2000);
}
