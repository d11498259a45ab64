/*
 * The worker pool (raylet/worker_pool.c) on its own, with real processes: a worker's key
 * includes its language, so Python and C++ leases never share a worker; a Python worker is
 * `<python_executable> -m ray._private.workers.default_worker` with rayc-worker's
 * arguments, and gets its job's PYTHONPATH, working directory and runtime-env env_vars; a
 * malformed runtime env is logged and ignored; a prestart follows the job's language; the
 * runtime-env parser on its own; the raylet's --python-executable and its defaults.
 *
 * The "workers" are one shell script (both the worker command and the Python executable):
 * it writes how it was started to <dir>/records/<worker id>.txt and waits; the test
 * registers it with the pool in its place (worker_pool_register), as RegisterClient would.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "raylet.h"
#include "rc_alloc.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_ids.h"
#include "unit.h"
#include "worker_pool.h"

#define RECORD_TIMEOUT_MS 10000

/* $0, its arguments, and what the pool should (or should not) have given it. pwd -P: the
 * physical directory, not $PWD inherited from the test. */
static const char fake_script[] =
    "#!/bin/sh\n"
    "id=''; prev=''\n"
    "for a in \"$@\"; do [ \"$prev\" = --worker-id ] && id=\"$a\"; prev=\"$a\"; done\n"
    "f=\"$RAYC_TEST_RECORDS/$id\"\n"
    "{\n"
    "  echo \"exe=$0\"\n"
    "  i=1; for a in \"$@\"; do echo \"arg$i=$a\"; i=$((i+1)); done\n"
    "  echo \"argc=$#\"\n"
    "  echo \"PYTHONPATH=${PYTHONPATH-<unset>}\"\n"
    "  echo \"cwd=$(pwd -P)\"\n"
    "  echo \"RAYC_TEST_K=${RAYC_TEST_K-<unset>}\"\n"
    "  echo \"CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-<unset>}\"\n"
    "  echo \"RAYC_AUTH_TOKEN=${RAYC_AUTH_TOKEN-<unset>}\"\n"
    "} > \"$f.tmp\" && mv \"$f.tmp\" \"$f.txt\"\n"
    "echo \"stdout of $id\"\n"
    "echo \"stderr of $id\" >&2\n"
    "exec sleep 60\n";

typedef struct fixture {
    char dir[PATH_MAX];     /* physical path */
    char records[PATH_MAX + 32]; /* <dir>/records */
    char script[PATH_MAX + 32];  /* <dir>/fake-worker.sh */
    char driver_cwd[PATH_MAX + 32];
    uv_loop_t loop;
    worker_pool *pool;
    char seen[16][RC_ID_HEX_MAX]; /* records already taken by next_record */
    size_t n_seen;
    /* fetch_job */
    int fetches;
    /* the last pop callback */
    int popped;
    worker *popped_w;
    int popped_rc;
} fixture;

static void on_worker_dead(void *arg, worker *w, const char *why)
{
    (void)arg;
    (void)w;
    (void)why;
}

static void fetch_job(void *arg, const uint8_t job_id[RC_JOB_ID_SIZE])
{
    (void)job_id;
    ((fixture *)arg)->fetches++; /* the test answers with worker_pool_job_info */
}

static void on_pop(worker *w, int rc, const char *message, void *arg)
{
    fixture *f = arg;
    (void)message;
    f->popped = 1;
    f->popped_w = w;
    f->popped_rc = rc;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *fp = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
    fputs(text, fp);
    fclose(fp);
    chmod(path, mode);
}

static void setup(fixture *f, int with_fetch)
{
    memset(f, 0, sizeof(*f));
    char tmpl[] = "/tmp/rayc-test-worker-pool-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(tmpl));
    CU_ASSERT_PTR_NOT_NULL_FATAL(realpath(tmpl, f->dir));
    char logs[PATH_MAX + 8];
    snprintf(logs, sizeof(logs), "%s/logs", f->dir);
    mkdir(logs, 0755);
    snprintf(f->records, sizeof(f->records), "%s/records", f->dir);
    mkdir(f->records, 0755);
    snprintf(f->driver_cwd, sizeof(f->driver_cwd), "%s/driver", f->dir);
    mkdir(f->driver_cwd, 0755);
    snprintf(f->script, sizeof(f->script), "%s/fake-worker.sh", f->dir);
    write_file(f->script, fake_script, 0755);
    setenv("RAYC_TEST_RECORDS", f->records, 1);
    setenv("RAYC_AUTH_TOKEN", "the raylet's own secret", 1); /* must not reach workers */
    unsetenv("PYTHONPATH");
    unsetenv("RAYC_TEST_K");
    uv_loop_init(&f->loop);
    worker_pool_config cfg = {
        .worker_command = f->script,
        .python_executable = f->script,
        .session_dir = f->dir,
        .raylet_socket = "/nonexistent/raylet.sock",
        .node_id_hex = "00112233",
        .node_ip = "127.0.0.1",
        .gcs_address = "127.0.0.1:1",
        .num_cpus = 8,
        .default_code_search_path = NULL,
    };
    worker_pool_callbacks cbs = {on_worker_dead, with_fetch ? fetch_job : NULL, f};
    CU_ASSERT_EQUAL_FATAL(worker_pool_create(&f->loop, &cfg, &cbs, &f->pool), 0);
}

static void teardown(fixture *f)
{
    worker_pool_destroy(f->pool);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    CU_ASSERT_EQUAL(uv_loop_close(&f->loop), 0);
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    CU_ASSERT_EQUAL(system(cmd), 0);
    unsetenv("RAYC_AUTH_TOKEN");
}

/* Runs the loop until a record not taken yet appears; its worker's ID (hex) goes to id
 * and its text to text. Returns 0, or -1 after RECORD_TIMEOUT_MS. */
static int next_record(fixture *f, char id[RC_ID_HEX_MAX], char *text, size_t len)
{
    for (int waited = 0; waited < RECORD_TIMEOUT_MS; waited += 10) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        DIR *d = opendir(f->records);
        struct dirent *e;
        int found = 0;
        while (d && !found && (e = readdir(d))) {
            size_t n = strlen(e->d_name);
            if (n < 5 || strcmp(e->d_name + n - 4, ".txt") || n - 4 >= RC_ID_HEX_MAX)
                continue;
            int seen = 0;
            for (size_t i = 0; i < f->n_seen; i++)
                seen |= !strncmp(f->seen[i], e->d_name, n - 4) && f->seen[i][n - 4] == '\0';
            if (seen)
                continue;
            snprintf(id, RC_ID_HEX_MAX, "%.*s", (int)(n - 4), e->d_name);
            snprintf(f->seen[f->n_seen++], RC_ID_HEX_MAX, "%s", id);
            found = 1;
        }
        if (d)
            closedir(d);
        if (found) {
            char path[PATH_MAX + 80];
            snprintf(path, sizeof(path), "%s/%s.txt", f->records, id);
            FILE *fp = fopen(path, "r");
            size_t got = fp ? fread(text, 1, len - 1, fp) : 0;
            text[got] = '\0';
            if (fp)
                fclose(fp);
            return 0;
        }
        usleep(10 * 1000);
    }
    return -1;
}

/* The value of "key=" in a record ("" when it has no such line). */
static const char *record_get(const char *text, const char *key, char *out, size_t len)
{
    size_t klen = strlen(key);
    out[0] = '\0';
    for (const char *line = text; line && *line;) {
        const char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        if (n > klen && !strncmp(line, key, klen) && line[klen] == '=') {
            snprintf(out, len, "%.*s", (int)(n - klen - 1), line + klen + 1);
            break;
        }
        line = nl ? nl + 1 : NULL;
    }
    return out;
}

/* 1 if the record's arguments include flag followed by value (value NULL: any). */
static int record_has_flag(const char *text, const char *flag, const char *value)
{
    char key[32], v[PATH_MAX];
    for (int i = 1; i < 40; i++) {
        snprintf(key, sizeof(key), "arg%d", i);
        if (strcmp(record_get(text, key, v, sizeof(v)), flag))
            continue;
        snprintf(key, sizeof(key), "arg%d", i + 1);
        return !value || !strcmp(record_get(text, key, v, sizeof(v)), value);
    }
    return 0;
}

/* Registers the worker of record id with the pool, as its RegisterClient would. */
static worker *register_worker(fixture *f, const char *id_hex, int port)
{
    uint8_t id[RC_WORKER_ID_SIZE];
    CU_ASSERT_EQUAL_FATAL(rc_id_from_hex(id_hex, id, RC_WORKER_ID_SIZE), 0);
    worker *w = worker_pool_find(f->pool, id);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    char err[300];
    CU_ASSERT_EQUAL(worker_pool_register(f->pool, id, w->pid, port, err, sizeof(err)), 0);
    return w;
}

static worker_pop *pop_pending(fixture *f, const worker_key *key)
{
    worker *now = NULL;
    worker_pop *pending = NULL;
    char message[300];
    CU_ASSERT_EQUAL(worker_pool_pop(f->pool, key, on_pop, f, &now, &pending, message, sizeof(message)), 0);
    CU_ASSERT_PTR_NULL(now);
    CU_ASSERT_PTR_NOT_NULL(pending);
    return pending;
}

static const uint8_t job1[RC_JOB_ID_SIZE] = {0, 0, 0, 1};
static const uint8_t job2[RC_JOB_ID_SIZE] = {0, 0, 0, 2};

/* A job config as a Python driver sends it. Pointers into b's caller-owned arrays. */
typedef struct config_buf {
    Ray__Rpc__JobConfig cfg;
    Ray__Rpc__RuntimeEnvInfo env;
} config_buf;

static const Ray__Rpc__JobConfig *config_of(config_buf *b, char **sys_path, size_t n_sys_path, char *cwd,
                                            char *runtime_env)
{
    ray__rpc__job_config__init(&b->cfg);
    ray__rpc__runtime_env_info__init(&b->env);
    b->cfg.py_driver_sys_path = sys_path;
    b->cfg.n_py_driver_sys_path = n_sys_path;
    if (cwd)
        b->cfg.rayc_driver_cwd = cwd;
    if (runtime_env) {
        b->env.serialized_runtime_env = runtime_env;
        b->cfg.runtime_env_info = &b->env;
    }
    return &b->cfg;
}

/* (a) Same job, GPUs and threads: a Python worker serves Python leases only, a C++ one
 * C++ leases only. */
static void test_languages_never_share_workers(void)
{
    fixture f;
    setup(&f, 0);
    worker_key py, cpp;
    worker_key_init(&py, job1, RAY__RPC__LANGUAGE__PYTHON, 0, 1);
    worker_key_init(&cpp, job1, RAY__RPC__LANGUAGE__CPP, 0, 1);
    char id[RC_ID_HEX_MAX], text[8192], v[PATH_MAX];

    pop_pending(&f, &py);
    CU_ASSERT_EQUAL_FATAL(next_record(&f, id, text, sizeof(text)), 0);
    CU_ASSERT_STRING_EQUAL(record_get(text, "arg1", v, sizeof(v)), "-m");
    worker *pw = register_worker(&f, id, 1001);
    CU_ASSERT_FATAL(f.popped && f.popped_w == pw && f.popped_rc == 0);
    CU_ASSERT_EQUAL(pw->key.language, RAY__RPC__LANGUAGE__PYTHON);
    worker_pool_push(f.pool, pw);
    CU_ASSERT_EQUAL(worker_pool_idle_count(f.pool), 1);

    /* The idle Python worker is not taken for C++: a C++ worker starts. */
    f.popped = 0;
    pop_pending(&f, &cpp);
    CU_ASSERT_EQUAL(worker_pool_idle_count(f.pool), 1);
    CU_ASSERT_EQUAL(worker_pool_size(f.pool), 2);
    CU_ASSERT_EQUAL_FATAL(next_record(&f, id, text, sizeof(text)), 0);
    CU_ASSERT_STRING_EQUAL(record_get(text, "arg1", v, sizeof(v)), "--raylet-socket");
    worker *cw = register_worker(&f, id, 1002);
    CU_ASSERT_FATAL(f.popped && f.popped_w == cw);
    CU_ASSERT_EQUAL(cw->key.language, RAY__RPC__LANGUAGE__CPP);
    worker_pool_push(f.pool, cw);
    CU_ASSERT_EQUAL(worker_pool_idle_count(f.pool), 2);

    /* Each idle worker goes to its own language. */
    worker *now = NULL;
    worker_pop *pending = NULL;
    char message[300];
    CU_ASSERT_EQUAL(worker_pool_pop(f.pool, &py, on_pop, &f, &now, &pending, message, sizeof(message)), 0);
    CU_ASSERT_PTR_EQUAL(now, pw);
    CU_ASSERT_EQUAL(worker_pool_pop(f.pool, &cpp, on_pop, &f, &now, &pending, message, sizeof(message)), 0);
    CU_ASSERT_PTR_EQUAL(now, cw);
    CU_ASSERT_EQUAL(worker_pool_size(f.pool), 2);

    /* A language the pool does not start is refused with a sentence. */
    worker_key java;
    worker_key_init(&java, job1, RAY__RPC__LANGUAGE__JAVA, 0, 1);
    CU_ASSERT_EQUAL(worker_pool_pop(f.pool, &java, on_pop, &f, &now, &pending, message, sizeof(message)), RC_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(message, "Java"));
    teardown(&f);
}

/* (b) A Python worker's command line, environment, directory and logs; a C++ worker of
 * the same job for contrast. */
static void test_python_worker_start(void)
{
    fixture f;
    setup(&f, 0);
    char *sys_path[] = {"/opt/driver/lib", "", "/opt/driver/site-packages"};
    char *code_path[] = {"/opt/code"};
    config_buf b;
    Ray__Rpc__JobConfig *cfg = (Ray__Rpc__JobConfig *)config_of(
        &b, sys_path, 3, f.driver_cwd,
        "{\"env_vars\": {\"RAYC_TEST_K\": \"v1\", \"CUDA_VISIBLE_DEVICES\": \"9\", \"PYTHONPATH\": \"/user\"}}");
    cfg->code_search_path = code_path;
    cfg->n_code_search_path = 1;
    worker_pool_job_info(f.pool, job1, cfg, 0);

    worker_key py, cpp;
    worker_key_init(&py, job1, RAY__RPC__LANGUAGE__PYTHON, 0, 1);
    worker_key_init(&cpp, job1, RAY__RPC__LANGUAGE__CPP, 0, 1);
    char id[RC_ID_HEX_MAX], text[8192], v[PATH_MAX], job_hex[RC_ID_HEX_MAX];
    rc_id_hex(job1, RC_JOB_ID_SIZE, job_hex);

    pop_pending(&f, &py);
    CU_ASSERT_EQUAL_FATAL(next_record(&f, id, text, sizeof(text)), 0);
    CU_ASSERT_STRING_EQUAL(record_get(text, "exe", v, sizeof(v)), f.script);
    CU_ASSERT_STRING_EQUAL(record_get(text, "arg1", v, sizeof(v)), "-m");
    CU_ASSERT_STRING_EQUAL(record_get(text, "arg2", v, sizeof(v)), "ray._private.workers.default_worker");
    CU_ASSERT_STRING_EQUAL(record_get(text, "arg3", v, sizeof(v)), "--raylet-socket");
    CU_ASSERT_STRING_EQUAL(record_get(text, "argc", v, sizeof(v)), "14"); /* -m module + 6 flags */
    CU_ASSERT(record_has_flag(text, "--raylet-socket", "/nonexistent/raylet.sock"));
    CU_ASSERT(record_has_flag(text, "--node-id", "00112233"));
    CU_ASSERT(record_has_flag(text, "--node-ip-address", "127.0.0.1"));
    CU_ASSERT(record_has_flag(text, "--worker-id", id));
    CU_ASSERT(record_has_flag(text, "--job-id", job_hex));
    CU_ASSERT(record_has_flag(text, "--gcs-address", "127.0.0.1:1"));
    CU_ASSERT(!record_has_flag(text, "--code-search-path", NULL));
    CU_ASSERT_STRING_EQUAL(record_get(text, "PYTHONPATH", v, sizeof(v)),
                           "/user:/opt/driver/lib:/opt/driver/site-packages");
    CU_ASSERT_STRING_EQUAL(record_get(text, "cwd", v, sizeof(v)), f.driver_cwd);
    CU_ASSERT_STRING_EQUAL(record_get(text, "RAYC_TEST_K", v, sizeof(v)), "v1");
    CU_ASSERT_STRING_EQUAL(record_get(text, "CUDA_VISIBLE_DEVICES", v, sizeof(v)), ""); /* the pool's, not env_vars' */
    CU_ASSERT_STRING_EQUAL(record_get(text, "RAYC_AUTH_TOKEN", v, sizeof(v)), "<unset>");
    /* Its stdout and stderr went to its log files, relative to the raylet, not its cwd. */
    char log[PATH_MAX + 64], line[200] = "";
    for (int i = 0; i < 2; i++) {
        snprintf(log, sizeof(log), "%s/logs/worker-%.8s.%s", f.dir, id, i ? "err" : "out");
        for (int waited = 0; waited < RECORD_TIMEOUT_MS && !line[0]; waited += 10) {
            FILE *fp = fopen(log, "r");
            if (fp) {
                if (!fgets(line, sizeof(line), fp))
                    line[0] = '\0';
                fclose(fp);
            }
            if (!line[0])
                usleep(10 * 1000);
        }
        char want[200];
        snprintf(want, sizeof(want), "%s of %s\n", i ? "stderr" : "stdout", id);
        CU_ASSERT_STRING_EQUAL(line, want);
        line[0] = '\0';
    }

    /* A C++ worker of the job: rayc-worker's command line, the job's env_vars, no
     * PYTHONPATH from the driver, the raylet's directory. */
    pop_pending(&f, &cpp);
    CU_ASSERT_EQUAL_FATAL(next_record(&f, id, text, sizeof(text)), 0);
    CU_ASSERT_STRING_EQUAL(record_get(text, "arg1", v, sizeof(v)), "--raylet-socket");
    CU_ASSERT(record_has_flag(text, "--code-search-path", "/opt/code"));
    CU_ASSERT_STRING_EQUAL(record_get(text, "PYTHONPATH", v, sizeof(v)), "/user");
    CU_ASSERT_STRING_EQUAL(record_get(text, "RAYC_TEST_K", v, sizeof(v)), "v1");
    char cwd[PATH_MAX];
    CU_ASSERT_PTR_NOT_NULL_FATAL(getcwd(cwd, sizeof(cwd)));
    char real_cwd[PATH_MAX];
    CU_ASSERT_PTR_NOT_NULL_FATAL(realpath(cwd, real_cwd));
    CU_ASSERT_STRING_EQUAL(record_get(text, "cwd", v, sizeof(v)), real_cwd);
    CU_ASSERT_STRING_EQUAL(record_get(text, "RAYC_AUTH_TOKEN", v, sizeof(v)), "<unset>");

    /* A job whose driver had no sys.path and whose directory is gone: no PYTHONPATH, the
     * raylet's directory. */
    char gone[PATH_MAX + 8];
    snprintf(gone, sizeof(gone), "%s/gone", f.dir);
    config_buf b2;
    worker_pool_job_info(f.pool, job2, config_of(&b2, NULL, 0, gone, NULL), 0);
    worker_key py2;
    worker_key_init(&py2, job2, RAY__RPC__LANGUAGE__PYTHON, 0, 1);
    pop_pending(&f, &py2);
    CU_ASSERT_EQUAL_FATAL(next_record(&f, id, text, sizeof(text)), 0);
    CU_ASSERT_STRING_EQUAL(record_get(text, "arg1", v, sizeof(v)), "-m");
    CU_ASSERT_STRING_EQUAL(record_get(text, "PYTHONPATH", v, sizeof(v)), "<unset>");
    CU_ASSERT_STRING_EQUAL(record_get(text, "cwd", v, sizeof(v)), real_cwd);
    CU_ASSERT_STRING_EQUAL(record_get(text, "RAYC_TEST_K", v, sizeof(v)), "<unset>");
    teardown(&f);
}

/* Runs fn with the process's stderr (where rc_log writes) going to a file; returns what
 * was written there (freed with rc_free). */
static char *capture_stderr(fixture *f, void (*fn)(fixture *, void *), void *arg)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/stderr.txt", f->dir);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CU_ASSERT_FATAL(saved >= 0 && fd >= 0);
    dup2(fd, STDERR_FILENO);
    close(fd);
    fn(f, arg);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    char *text = rc_calloc(1, 16384);
    FILE *fp = fopen(path, "r");
    if (fp) {
        size_t n = fread(text, 1, 16383, fp);
        text[n] = '\0';
        fclose(fp);
    }
    return text;
}

static void give_job_info(fixture *f, void *arg)
{
    worker_pool_job_info(f->pool, job1, arg, 0);
}

/* (c) A runtime env that is not JSON (or not the right JSON) is logged, and the job's
 * workers start without it. */
static void test_bad_runtime_env_is_survived(void)
{
    fixture f;
    setup(&f, 0);
    char *sys_path[] = {"/opt/driver/lib"};
    config_buf b;
    const Ray__Rpc__JobConfig *cfg = config_of(&b, sys_path, 1, NULL, "{\"env_vars\": {\"RAYC_TEST_K\": \"v1\"");
    char *log = capture_stderr(&f, give_job_info, (void *)cfg);
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "runtime env is ignored"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "not JSON"));
    rc_free(log);

    worker_key py;
    worker_key_init(&py, job1, RAY__RPC__LANGUAGE__PYTHON, 0, 1);
    char id[RC_ID_HEX_MAX], text[8192], v[PATH_MAX];
    pop_pending(&f, &py);
    CU_ASSERT_EQUAL_FATAL(next_record(&f, id, text, sizeof(text)), 0);
    CU_ASSERT_STRING_EQUAL(record_get(text, "RAYC_TEST_K", v, sizeof(v)), "<unset>");
    CU_ASSERT_STRING_EQUAL(record_get(text, "PYTHONPATH", v, sizeof(v)), "/opt/driver/lib"); /* the rest holds */
    register_worker(&f, id, 1003);
    CU_ASSERT(f.popped && f.popped_rc == 0);

    /* JSON of the wrong shape: logged the same way. */
    cfg = config_of(&b, sys_path, 1, NULL, "{\"env_vars\": [\"RAYC_TEST_K=v1\"]}");
    log = capture_stderr(&f, give_job_info, (void *)cfg);
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "runtime env is ignored"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "env_vars is a JSON array"));
    rc_free(log);
    teardown(&f);
}

static void test_parse_runtime_env(void)
{
    char **vars;
    size_t n;
    char err[600];
    CU_ASSERT_EQUAL(worker_pool_parse_runtime_env("{}", &vars, &n, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_STRING_EQUAL(err, "");
    rc_free(vars);
    CU_ASSERT_EQUAL(worker_pool_parse_runtime_env("{\"pip\": [\"x\"], \"env_vars\": null}", &vars, &n, err,
                                                  sizeof(err)),
                    0);
    CU_ASSERT_EQUAL(n, 0);
    rc_free(vars);
    CU_ASSERT_EQUAL(worker_pool_parse_runtime_env("not json", &vars, &n, err, sizeof(err)), RC_EPARSE);
    CU_ASSERT_PTR_NULL(vars);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not JSON"));
    CU_ASSERT_EQUAL(worker_pool_parse_runtime_env("[1]", &vars, &n, err, sizeof(err)), RC_EPARSE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not an object"));
    CU_ASSERT_EQUAL(worker_pool_parse_runtime_env("{\"env_vars\": \"A=1\"}", &vars, &n, err, sizeof(err)), RC_EPARSE);
    CU_ASSERT_PTR_NULL(vars);

    const char *json = "{\"env_vars\": {\"A\": \"1\", \"B\": 2, \"OMP_NUM_THREADS\": \"8\", \"C=D\": \"x\", "
                       "\"RAYC_TLS_KEY\": \"k\", \"E\": \"\", \"F\": \"a\\u0000b\"}}";
    CU_ASSERT_EQUAL(worker_pool_parse_runtime_env(json, &vars, &n, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_STRING_EQUAL(vars[0], "A=1");
    CU_ASSERT_STRING_EQUAL(vars[1], "E=");
    CU_ASSERT_PTR_NULL(vars[2]);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "\"B\" has a value that is not text"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "\"OMP_NUM_THREADS\" is set by the raylet"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "\"C=D\" is not a name"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "\"RAYC_TLS_KEY\" is set by the raylet"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "\"F\" has a value with a NUL"));
    for (size_t i = 0; i < n; i++)
        rc_free(vars[i]);
    rc_free(vars);
}

/* A prestart waits for the job's config, then starts workers of its language. */
static void test_prestart_follows_job_language(void)
{
    fixture f;
    setup(&f, 1);
    char *sys_path[] = {"/opt/driver/lib"};
    config_buf b;
    char id[RC_ID_HEX_MAX], text[8192], v[PATH_MAX];

    worker_pool_prestart(f.pool, job1, 2);
    CU_ASSERT_EQUAL(f.fetches, 1);
    CU_ASSERT_EQUAL(worker_pool_size(f.pool), 0); /* its language is not known yet */
    worker_pool_job_info(f.pool, job1, config_of(&b, sys_path, 1, NULL, NULL), 0);
    CU_ASSERT_EQUAL(worker_pool_size(f.pool), 2);
    for (int i = 0; i < 2; i++) {
        CU_ASSERT_EQUAL_FATAL(next_record(&f, id, text, sizeof(text)), 0);
        CU_ASSERT_STRING_EQUAL(record_get(text, "arg1", v, sizeof(v)), "-m");
        register_worker(&f, id, 2000 + i);
    }
    CU_ASSERT_EQUAL(worker_pool_idle_count(f.pool), 2);
    worker_pool_prestart(f.pool, job1, 2); /* it has them */
    CU_ASSERT_EQUAL(worker_pool_size(f.pool), 2);

    /* A job without a driver sys.path is a C++ job. */
    worker_pool_prestart(f.pool, job2, 1);
    CU_ASSERT_EQUAL(f.fetches, 2);
    worker_pool_job_info(f.pool, job2, config_of(&b, NULL, 0, NULL, NULL), 0);
    CU_ASSERT_EQUAL(worker_pool_size(f.pool), 3);
    CU_ASSERT_EQUAL_FATAL(next_record(&f, id, text, sizeof(text)), 0);
    CU_ASSERT_STRING_EQUAL(record_get(text, "arg1", v, sizeof(v)), "--raylet-socket");
    worker *w = register_worker(&f, id, 2002);
    CU_ASSERT_EQUAL(w->key.language, RAY__RPC__LANGUAGE__CPP);
    teardown(&f);
}

/* --python-executable, else $RAYC_PYTHON, else /usr/bin/python3. */
static void test_python_executable_option(void)
{
    raylet_options opts;
    char err[300];
    char *argv[] = {"--insecure", "--gcs-address", "127.0.0.1:6379", "--python-executable", "/opt/venv/bin/python"};
    CU_ASSERT_EQUAL(raylet_options_parse(&opts, 5, argv, 1, err, sizeof(err)), 0);
    setenv("RAYC_PYTHON", "/elsewhere/python", 1);
    CU_ASSERT_STRING_EQUAL(raylet_python_executable(&opts), "/opt/venv/bin/python");
    raylet_options_free(&opts);
    CU_ASSERT_EQUAL(raylet_options_parse(&opts, 3, argv, 1, err, sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(raylet_python_executable(&opts), "/elsewhere/python");
    setenv("RAYC_PYTHON", "", 1);
    CU_ASSERT_STRING_EQUAL(raylet_python_executable(&opts), "/usr/bin/python3");
    unsetenv("RAYC_PYTHON");
    CU_ASSERT_STRING_EQUAL(raylet_python_executable(&opts), "/usr/bin/python3");
    raylet_options_free(&opts);
    char *empty[] = {"--python-executable", ""};
    CU_ASSERT_EQUAL(raylet_options_parse(&opts, 2, empty, 0, err, sizeof(err)), RC_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "--python-executable"));
    raylet_options_free(&opts);
    CU_ASSERT_EQUAL(raylet_flag_arity("--python-executable"), 1); /* `rayc start` passes it on */
}

static const unit_case cases[] = {
    UNIT_CASE(test_languages_never_share_workers),
    UNIT_CASE(test_python_worker_start),
    UNIT_CASE(test_bad_runtime_env_is_survived),
    UNIT_CASE(test_parse_runtime_env),
    UNIT_CASE(test_prestart_follows_job_language),
    UNIT_CASE(test_python_executable_option),
};

int main(void)
{
    rc_config_init();
    return unit_run("worker_pool", cases, UNIT_N(cases));
}
