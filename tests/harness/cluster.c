/*
 * Integration-test clusters: see cluster.h.
 */
#define _GNU_SOURCE
#include "cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "auth.h"
#include "rayc_auth.pb-c.h"
#include "rc_alloc.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_json.h"
#include "rc_time.h"
#include "rpc.h"

static pid_t harness__spawn(const harness_cluster *c, const char *name, char *const argv[])
{
    char out[PATH_MAX + 64], err[PATH_MAX + 64];
    snprintf(out, sizeof(out), "%s/logs/%s.out", c->root, name);
    snprintf(err, sizeof(err), "%s/logs/%s.err", c->root, name);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    /* Child: only async-signal-safe calls until exec. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    int in = open("/dev/null", O_RDONLY);
    int o = open(out, O_WRONLY | O_CREAT | O_APPEND, 0644);
    int e = open(err, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (in < 0 || o < 0 || e < 0)
        _exit(127);
    dup2(in, 0);
    dup2(o, 1);
    dup2(e, 2);
    execv(argv[0], argv);
    _exit(127);
}

static int harness__read_file(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[n] = '\0';
    return (int)n;
}

/* The cluster's CA and admin token, written where the GCS (--auth-dir root) adopts them,
 * and this process made an admin client with a server certificate of its own. */
static int harness__security(harness_cluster *c)
{
    char path[PATH_MAX];
    const char *ips[] = {"127.0.0.1"};
    auth_claims admin = {.kind = AUTH_TOKEN_ADMIN};
    char *key = NULL, *cert = NULL;
    int rc;
    if ((rc = auth_ca_create("rayc test cluster CA", 30, &c->ca_key, &c->ca_cert)) < 0 ||
        (rc = auth_token_mint(c->ca_key, &admin, &c->admin_token)) < 0 ||
        (rc = auth_cert_issue(c->ca_key, c->ca_cert, "worker:test", ips, 1, 30, &key, &cert)) < 0)
        return rc;
    snprintf(path, sizeof(path), "%s/ca.crt", c->root);
    rc = auth_write_secret(path, c->ca_cert);
    setenv("RAYC_CA_CERT", path, 1);
    snprintf(path, sizeof(path), "%s/ca.key", c->root);
    rc = rc < 0 ? rc : auth_write_secret(path, c->ca_key);
    snprintf(path, sizeof(path), "%s/auth_token", c->root);
    rc = rc < 0 ? rc : auth_write_secret(path, c->admin_token);
    setenv("RAYC_AUTH_TOKEN", c->admin_token, 1);
    unsetenv("RAYC_INSECURE");
    char err[256];
    rpc_security sec = {.ca_cert_pem = c->ca_cert, .cert_pem = cert, .key_pem = key, .token = c->admin_token};
    if (rc == 0 && (rc = rpc_security_set(&sec, err, sizeof(err))) < 0)
        fprintf(stderr, "harness: %s\n", err);
    rc_free(key);
    rc_free(cert);
    return rc;
}

int harness_issue_cert(const harness_cluster *c, const char *cn, char **key_pem, char **cert_pem)
{
    const char *ips[] = {"127.0.0.1"};
    return auth_cert_issue(c->ca_key, c->ca_cert, cn, ips, 1, 30, key_pem, cert_pem);
}

int harness_join_token(harness_cluster *c, int64_t ttl_s, int max_uses, const char *labels, char *out,
                       size_t outlen)
{
    uv_loop_t loop;
    rpc_ctx *ctx;
    rpc_client *cli;
    uv_loop_init(&loop);
    if (rpc_ctx_create(&loop, &ctx) < 0)
        return RC_EIO;
    int rc = rpc_client_create(ctx, c->gcs_address, NULL, &cli);
    if (rc == 0) {
        Rayc__Rpc__CreateJoinTokenRequest req = RAYC__RPC__CREATE_JOIN_TOKEN_REQUEST__INIT;
        req.ttl_seconds = ttl_s;
        req.max_uses = max_uses;
        char copy[512], *keys[16], *values[16];
        Rayc__Rpc__CreateJoinTokenRequest__LabelsEntry entries[16], *ptrs[16];
        snprintf(copy, sizeof(copy), "%s", labels ? labels : "");
        for (char *save = NULL, *kv = strtok_r(copy, ",", &save); kv && req.n_labels < 16;
             kv = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(kv, '=');
            if (!eq)
                continue;
            *eq = '\0';
            size_t i = req.n_labels++;
            keys[i] = kv;
            values[i] = eq + 1;
            rayc__rpc__create_join_token_request__labels_entry__init(&entries[i]);
            entries[i].key = keys[i];
            entries[i].value = values[i];
            ptrs[i] = &entries[i];
        }
        req.labels = ptrs;
        ProtobufCMessage *reply = NULL;
        char err[512];
        int code = rpc_client_call_sync(cli, &rayc__rpc__auth_service__descriptor, "CreateJoinToken", &req.base,
                                        10000, &reply, err, sizeof(err));
        const Rayc__Rpc__CreateJoinTokenReply *r = (const void *)reply;
        if (code != GRPC_STATUS_OK) {
            fprintf(stderr, "harness: CreateJoinToken: %s\n", err);
            rc = RC_EUNAVAIL;
        } else if (r->status && r->status->code != 0) {
            fprintf(stderr, "harness: CreateJoinToken: %s\n", r->status->message);
            rc = RC_EAUTH;
        } else {
            snprintf(out, outlen, "%s", r->join_token);
        }
        rpc_msg_free(reply);
        rpc_client_destroy(cli);
    }
    rpc_ctx_destroy(ctx);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return rc;
}

int harness_cluster_init(harness_cluster *c, int use_redis)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->root, sizeof(c->root), "/tmp/rayc-test-XXXXXX");
    if (!mkdtemp(c->root))
        return RC_ESYS;
    char logs[sizeof(c->root) + 8];
    snprintf(logs, sizeof(logs), "%s/logs", c->root);
    mkdir(logs, 0755);
    setenv("RAYC_SESSION_ROOT", c->root, 1);
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return RC_ESYS;
    self[n] = '\0';
    snprintf(c->bin, sizeof(c->bin), "%s", dirname(self));
    rc_config_init();
    int src = harness__security(c);
    if (src < 0) {
        fprintf(stderr, "harness: cannot make the cluster's credentials: %s\n", rc_strerror(src));
        return src;
    }
    c->use_redis = use_redis;
    if (use_redis) {
        int rc = harness_redis_start(&c->redis);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int harness_gcs_start(harness_cluster *c)
{
    char exe[PATH_MAX + 32], port[16], port_file[PATH_MAX], redis[64], pass_file[PATH_MAX];
    snprintf(exe, sizeof(exe), "%s/rayc-gcs", c->bin);
    snprintf(port, sizeof(port), "%d", c->gcs_port);
    snprintf(port_file, sizeof(port_file), "%s/gcs_port.%d", c->root, c->gcs_starts);
    snprintf(redis, sizeof(redis), "127.0.0.1:%d", c->redis.port);
    snprintf(pass_file, sizeof(pass_file), "%s/redis.password", c->root);
    char *argv[16] = {exe, "--host", "127.0.0.1", "--port", port, "--port-file", port_file, "--auth-dir", c->root, NULL};
    if (c->use_redis) {
        if (harness_redis_password_file(&c->redis, pass_file) < 0)
            return RC_EIO;
        argv[9] = "--redis-address";
        argv[10] = redis;
        argv[11] = "--redis-password-file";
        argv[12] = pass_file;
        argv[13] = NULL;
    }
    c->gcs_starts++;
    c->gcs_pid = harness__spawn(c, "gcs", argv);
    if (c->gcs_pid < 0)
        return RC_ESYS;
    int64_t deadline = rc_mono_ms() + 15000;
    char text[32];
    while (rc_mono_ms() < deadline) {
        if (harness__read_file(port_file, text, sizeof(text)) > 0 && atoi(text) > 0) {
            c->gcs_port = atoi(text);
            snprintf(c->gcs_address, sizeof(c->gcs_address), "127.0.0.1:%d", c->gcs_port);
            return 0;
        }
        if (waitpid(c->gcs_pid, NULL, WNOHANG) == c->gcs_pid) {
            c->gcs_pid = 0;
            fprintf(stderr, "harness: rayc-gcs exited during start; see %s/logs/gcs.err\n", c->root);
            return RC_EUNAVAIL;
        }
        rc_sleep_ms(20);
    }
    return RC_ETIMEDOUT;
}

void harness_gcs_kill(harness_cluster *c, int sig)
{
    if (c->gcs_pid <= 0)
        return;
    kill(c->gcs_pid, sig);
    waitpid(c->gcs_pid, NULL, 0);
    c->gcs_pid = 0;
}

int harness_raylet_start(harness_cluster *c, const char *const *extra, int *index)
{
    if (c->n_raylets == HARNESS_MAX_RAYLETS)
        return RC_ENOSPC;
    int i = c->n_raylets;
    harness_raylet *r = &c->raylets[i];
    snprintf(r->name, sizeof(r->name), "raylet%d", i);
    char exe[PATH_MAX + 32], ready[PATH_MAX + 64];
    snprintf(exe, sizeof(exe), "%s/rayc-raylet", c->bin);
    snprintf(ready, sizeof(ready), "%s/%s.ready", c->root, r->name);
    char token[256], ca[PATH_MAX + 16], dir[PATH_MAX + 64];
    /* No GCS to ask (a test of a raylet that cannot reach one): a well-formed token that
     * the raylet will never get to present. */
    if (harness_join_token(c, 120, 1, NULL, token, sizeof(token)) < 0)
        snprintf(token, sizeof(token), "0000000000000000.00000000000000000000000000000000");
    snprintf(ca, sizeof(ca), "%s/ca.crt", c->root);
    snprintf(dir, sizeof(dir), "%s/%s", c->root, r->name);
    mkdir(dir, 0700);
    char *argv[64];
    int n = 0;
    argv[n++] = exe;
    argv[n++] = "--gcs-address";
    argv[n++] = c->gcs_address;
    argv[n++] = "--node-ip-address";
    argv[n++] = "127.0.0.1";
    argv[n++] = "--ready-file";
    argv[n++] = ready;
    argv[n++] = "--join-token";
    argv[n++] = token;
    argv[n++] = "--ca-cert";
    argv[n++] = ca;
    argv[n++] = "--auth-dir";
    argv[n++] = dir;
    for (int k = 0; extra && extra[k] && n < 62; k++)
        argv[n++] = (char *)extra[k];
    argv[n] = NULL;
    r->pid = harness__spawn(c, r->name, argv);
    if (r->pid < 0)
        return RC_ESYS;
    c->n_raylets++;
    *index = i;
    int64_t deadline = rc_mono_ms() + 20000;
    char text[512];
    while (rc_mono_ms() < deadline) {
        if (harness__read_file(ready, text, sizeof(text)) > 0) {
            rc_json *j;
            if (rc_json_parse(text, strlen(text), &j, NULL, 0) == 0) {
                const rc_json *id = rc_json_get(j, "node_id"), *port = rc_json_get(j, "node_manager_port");
                if (id && id->type == RC_JSON_STRING)
                    snprintf(r->node_id, sizeof(r->node_id), "%s", id->str);
                if (port)
                    r->port = (int)port->number;
                rc_json_free(j);
                return 0;
            }
        }
        if (waitpid(r->pid, NULL, WNOHANG) == r->pid) {
            r->pid = 0;
            fprintf(stderr, "harness: %s exited during start; see %s/logs/%s.err\n", r->name, c->root, r->name);
            return RC_EUNAVAIL;
        }
        rc_sleep_ms(20);
    }
    return RC_ETIMEDOUT;
}

void harness_raylet_signal(harness_cluster *c, int i, int sig)
{
    if (c->raylets[i].pid > 0)
        kill(c->raylets[i].pid, sig);
}

int harness_raylet_wait_exit(harness_cluster *c, int i, int timeout_ms)
{
    harness_raylet *r = &c->raylets[i];
    if (r->pid <= 0)
        return -1;
    int64_t deadline = rc_mono_ms() + timeout_ms;
    do {
        int status;
        if (waitpid(r->pid, &status, WNOHANG) == r->pid) {
            r->pid = 0;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        rc_sleep_ms(20);
    } while (rc_mono_ms() < deadline);
    return -1;
}

int harness_raylet_alive(harness_cluster *c, int i)
{
    harness_raylet *r = &c->raylets[i];
    if (r->pid <= 0)
        return 0;
    int status;
    if (waitpid(r->pid, &status, WNOHANG) == r->pid) {
        r->pid = 0;
        return 0;
    }
    return 1;
}

void harness_log_path(const harness_cluster *c, const char *name, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/logs/%s.err", c->root, name);
}

int harness_log_contains(const harness_cluster *c, const char *name, const char *text)
{
    char path[PATH_MAX];
    harness_log_path(c, name, path, sizeof(path));
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[4096];
    int found = 0;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, text) != NULL;
    fclose(f);
    return found;
}

void harness_cluster_destroy(harness_cluster *c)
{
    for (int i = 0; i < c->n_raylets; i++) {
        if (c->raylets[i].pid > 0) {
            kill(c->raylets[i].pid, SIGKILL);
            waitpid(c->raylets[i].pid, NULL, 0);
            c->raylets[i].pid = 0;
        }
    }
    /* A raylet killed (here or by the test) leaves its object store behind; the raylets of
     * this cluster are all gone now. */
    for (int i = 0; i < c->n_raylets; i++) {
        char store[PATH_MAX];
        if (!c->raylets[i].node_id[0])
            continue;
        snprintf(store, sizeof(store), "%s/rayc-%s", rc_cfg.plasma_directory, c->raylets[i].node_id);
        unlink(store);
    }
    harness_gcs_kill(c, SIGKILL);
    if (c->use_redis)
        harness_redis_stop(&c->redis);
    rc_free(c->ca_key);
    rc_free(c->ca_cert);
    rc_free(c->admin_token);
    c->ca_key = c->ca_cert = c->admin_token = NULL;
    if (getenv("RAYC_TEST_KEEP_LOGS")) {
        fprintf(stderr, "harness: logs kept in %s\n", c->root);
        return;
    }
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", c->root);
    if (system(cmd) != 0)
        fprintf(stderr, "harness: could not remove %s\n", c->root);
}
