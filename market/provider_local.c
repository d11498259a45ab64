/*
 * The local provider: a market on one machine, for tests, demos and trying rayc out. Each
 * host it "leases" is a rayc-raylet process on this machine with the offer's resources
 * (--num-cpus, --num-gpus, --accelerator-type, --gpu-memory, --memory), in a session
 * directory of its own under the session root (session_market_<lease id>), so that
 * `rayc stop` stops it like any other raylet.
 *
 * The offers come from a JSON file that is read again whenever it changes (prices move).
 * Each offer can misbehave on purpose (its "behaviour"):
 *   launch_error      the launch is refused with a provider error;
 *   never_registers   the host is "up" and billed, but no raylet ever starts;
 *   fake_gpu          the raylet answers its verification challenge with wrong rows;
 *   slow              the raylet answers its challenge later than the time bound;
 *   vanish_after_s:N  the raylet and its workers are SIGKILLed N seconds after launch; the
 *                     host stays listed (and billed) until the market terminates it.
 *
 * The provider's record of its hosts is one file per host in its state directory
 * (<key>.host: offer, pid, launch time), written before the raylet starts, so a launch is
 * idempotent per key and a market that restarts lists what runs. While a file named
 * "unreachable" exists in the state directory every call fails as an unreachable cloud API
 * would (tests use it to take the provider away).
 *
 * Loop thread only.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "market_provider.h"
#include "rc_alloc.h"
#include "rc_buf.h"
#include "rc_err.h"
#include "rc_log.h"
#include "rc_session.h"

typedef struct local_provider {
    mk_provider base;
    mk_offers_file offers;
    char *state_dir;
    char raylet_exe[PATH_MAX];
} local_provider;

/* One host as recorded in <state_dir>/<key>.host: "offer_id pid launched_ms vanish_at_ms". */
typedef struct local_host {
    char offer_id[128];
    pid_t pid; /* 0: no process (never_registers) */
    int64_t launched_ms;
    int64_t vanish_at_ms; /* 0: never; -1: vanished already */
} local_host;

static int local__unreachable(local_provider *lp, char *err, size_t errlen)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/unreachable", lp->state_dir);
    if (access(path, F_OK) != 0)
        return 0;
    /* (the return value is looked at so that a shortened message is no compiler warning) */
    if (snprintf(err, errlen, "provider %s cannot be reached (%s exists)", lp->base.name, path) >= (int)errlen)
        RC_DEBUG("market: a provider error was shortened");
    return RC_EUNAVAIL;
}

static void local__host_path(local_provider *lp, const char *key, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/%s.host", lp->state_dir, key);
}

static int local__read_host(const char *path, local_host *h)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return RC_ENOENT;
    long long pid = 0, launched = 0, vanish = 0;
    int got = fscanf(f, "%127s %lld %lld %lld", h->offer_id, &pid, &launched, &vanish);
    fclose(f);
    if (got != 4)
        return RC_EPARSE;
    h->pid = (pid_t)pid;
    h->launched_ms = launched;
    h->vanish_at_ms = vanish;
    return 0;
}

static int local__write_host(const char *path, const local_host *h, int exclusive)
{
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (exclusive && access(path, F_OK) == 0)
        return RC_EEXIST;
    FILE *f = fopen(tmp, "w");
    if (!f)
        return RC_EIO;
    fprintf(f, "%s %lld %lld %lld\n", h->offer_id, (long long)h->pid, (long long)h->launched_ms,
            (long long)h->vanish_at_ms);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return RC_EIO;
    }
    return 0;
}

/* Makes <root>/session_market_<key>, a session of its own. */
static int local__session_dir(const char *key, char *out, size_t outlen)
{
    char root[PATH_MAX];
    rc_session_root(root, sizeof(root));
    if (snprintf(out, outlen, "%s/session_market_%s", root, key) >= (int)outlen)
        return RC_EIO;
    return rc_session_make(out);
}

static int local__launch(mk_provider *p, const mk_offer *o, const mk_join *join, int64_t now_ms, char *err,
                         size_t errlen)
{
    local_provider *lp = (local_provider *)p;
    int rc = local__unreachable(lp, err, errlen);
    if (rc < 0)
        return rc;
    char path[PATH_MAX];
    local__host_path(lp, join->lease_id, path, sizeof(path));
    if (access(path, F_OK) == 0)
        return 0; /* launched before under this key */
    if (o->behaviour == MK_LAUNCH_ERROR) {
        snprintf(err, errlen, "provider %s: offer %s: launch refused: no capacity left for this offer", p->name, o->id);
        return RC_EUNAVAIL;
    }
    local_host h = {.launched_ms = now_ms};
    snprintf(h.offer_id, sizeof(h.offer_id), "%s", o->id);
    h.vanish_at_ms = o->behaviour == MK_VANISH_AFTER ? now_ms + o->vanish_after_s * 1000 : 0;
    if (o->behaviour == MK_NEVER_REGISTERS)
        return local__write_host(path, &h, 1) < 0 ? (snprintf(err, errlen, "cannot write %s", path), RC_EIO) : 0;

    char session[PATH_MAX + 64];
    if (local__session_dir(join->lease_id, session, sizeof(session)) < 0) {
        snprintf(err, errlen, "cannot create a session directory for host %s: %s", join->lease_id, strerror(errno));
        return RC_EIO;
    }
    /* The record first: a market killed right after this still finds the host by listing. */
    if (local__write_host(path, &h, 1) < 0) {
        snprintf(err, errlen, "cannot write %s", path);
        return RC_EIO;
    }
    char cpus[32], gpus[32], gmem[48], mem[48], delay[32], name[96];
    snprintf(cpus, sizeof(cpus), "%g", o->num_cpus);
    snprintf(gpus, sizeof(gpus), "%g", o->num_gpus);
    snprintf(gmem, sizeof(gmem), "%.0fMiB", o->gpu_memory * 1024.0);
    snprintf(mem, sizeof(mem), "%.0fMiB", (o->memory > 0 ? o->memory : 1.0) * 1024.0);
    snprintf(delay, sizeof(delay), "%.0f", join->verify_delay_s * 1000.0);
    snprintf(name, sizeof(name), "%s/%s", p->name, o->id);
    char *argv[40];
    int n = 0;
    argv[n++] = lp->raylet_exe;
    argv[n++] = "--gcs-address";
    argv[n++] = (char *)join->gcs_address;
    argv[n++] = "--session-dir";
    argv[n++] = session;
    argv[n++] = "--join-token";
    argv[n++] = (char *)join->join_token;
    argv[n++] = "--ca-cert";
    argv[n++] = (char *)join->ca_cert_file;
    argv[n++] = "--node-name";
    argv[n++] = name;
    argv[n++] = "--num-cpus";
    argv[n++] = cpus;
    argv[n++] = "--memory";
    argv[n++] = mem;
    /* Many hosts share this machine's /dev/shm. */
    argv[n++] = "--object-store-memory";
    argv[n++] = "256MiB";
    if (o->num_gpus > 0) {
        argv[n++] = "--num-gpus";
        argv[n++] = gpus;
        if (o->gpu_name && *o->gpu_name) {
            argv[n++] = "--accelerator-type";
            argv[n++] = o->gpu_name;
        }
        if (o->gpu_memory > 0) {
            argv[n++] = "--gpu-memory";
            argv[n++] = gmem;
        }
    }
    if (o->behaviour == MK_FAKE_GPU)
        argv[n++] = "--testing-challenge-corrupt";
    if (o->behaviour == MK_SLOW) {
        argv[n++] = "--testing-challenge-delay-ms";
        argv[n++] = delay;
    }
    argv[n] = NULL;
    pid_t pid = 0;
    if (rc_spawn_daemon(session, "raylet", lp->raylet_exe, argv, &pid) < 0) {
        snprintf(err, errlen, "provider %s: cannot run %s: %s", p->name, lp->raylet_exe, strerror(errno));
        unlink(path);
        return RC_ESYS;
    }
    h.pid = pid;
    local__write_host(path, &h, 0);
    RC_INFO("market: provider %s: host %s (offer %s) started as raylet pid %d in %s", p->name, join->lease_id, o->id,
            (int)pid, session);
    return 0;
}

/* 1 while pid runs. The raylets this market started are its children: an exited one is
 * reaped here (it would stay a zombie, still named rayc-raylet, until then); those of a
 * market before it are not, and are looked up by name. */
static int local__running(pid_t pid)
{
    if (pid <= 0)
        return 0;
    pid_t got = waitpid(pid, NULL, WNOHANG);
    if (got == pid)
        return 0;
    return rc_pid_is_rayc(pid);
}

/* Stops a raylet and, with it, its workers: SIGTERM, then SIGKILL after a grace period. */
static void local__stop_pid(pid_t pid, int sig)
{
    if (!local__running(pid))
        return;
    kill(pid, sig);
    if (sig == SIGKILL)
        kill(-pid, SIGKILL); /* its process group: the workers it started */
}

static int local__terminate(mk_provider *p, const char *key, char *err, size_t errlen)
{
    local_provider *lp = (local_provider *)p;
    int rc = local__unreachable(lp, err, errlen);
    if (rc < 0)
        return rc;
    char path[PATH_MAX];
    local__host_path(lp, key, path, sizeof(path));
    local_host h;
    if (local__read_host(path, &h) < 0)
        return 0;
    if (h.pid > 0 && h.vanish_at_ms >= 0) {
        local__stop_pid(h.pid, SIGTERM);
        for (int i = 0; i < 100 && local__running(h.pid); i++)
            usleep(20000);
        local__stop_pid(h.pid, SIGKILL);
        for (int i = 0; i < 50 && local__running(h.pid); i++)
            usleep(20000);
    }
    unlink(path);
    RC_INFO("market: provider %s: host %s terminated", p->name, key);
    return 0;
}

/* Calls fn for every host record of the provider (key, its path, the record); RC_EIO when
 * the state directory cannot be read. */
static int local__each_host(local_provider *lp, void (*fn)(const char *key, const char *path, local_host *h, void *arg),
                            void *arg)
{
    DIR *d = opendir(lp->state_dir);
    if (!d)
        return RC_EIO;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        char key[64], path[PATH_MAX + 300];
        if (len < 6 || strcmp(e->d_name + len - 5, ".host") || len - 5 >= sizeof(key))
            continue;
        memcpy(key, e->d_name, len - 5);
        key[len - 5] = '\0';
        snprintf(path, sizeof(path), "%s/%s", lp->state_dir, e->d_name);
        local_host h;
        if (local__read_host(path, &h) == 0)
            fn(key, path, &h, arg);
    }
    closedir(d);
    return 0;
}

typedef struct local__listing {
    mk_instance *v;
    size_t n, cap;
} local__listing;

static void local__list_one(const char *key, const char *path, local_host *h, void *arg)
{
    local__listing *l = arg;
    (void)path;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->v = rc_realloc(l->v, l->cap * sizeof(*l->v));
    }
    mk_instance *inst = &l->v[l->n++];
    memset(inst, 0, sizeof(*inst));
    snprintf(inst->key, sizeof(inst->key), "%s", key);
    snprintf(inst->offer_id, sizeof(inst->offer_id), "%s", h->offer_id);
    inst->state = MK_INST_RUNNING;
    inst->launched_ms = h->launched_ms;
}

static int local__list(mk_provider *p, mk_instance **out, size_t *n_out, char *err, size_t errlen)
{
    local_provider *lp = (local_provider *)p;
    *out = NULL;
    *n_out = 0;
    int rc = local__unreachable(lp, err, errlen);
    if (rc < 0)
        return rc;
    local__listing l = {NULL, 0, 0};
    if (local__each_host(lp, local__list_one, &l) < 0) {
        snprintf(err, errlen, "cannot read %s: %s", lp->state_dir, strerror(errno));
        return RC_EIO;
    }
    *out = l.v;
    *n_out = l.n;
    return 0;
}

static int local__offers(mk_provider *p, const mk_offer **out, size_t *n, int *changed, char *err, size_t errlen)
{
    local_provider *lp = (local_provider *)p;
    *changed = 0;
    int rc = local__unreachable(lp, err, errlen);
    if (rc < 0)
        return rc;
    return mk_offers_file_read(&lp->offers, p->name, NULL, NULL, out, n, changed, err, errlen);
}

typedef struct local__tick {
    local_provider *lp;
    int64_t now_ms;
} local__tick;

/* A host whose vanishing time has come: SIGKILL, and the record keeps it billed. */
static void local__poll_one(const char *key, const char *path, local_host *h, void *arg)
{
    local__tick *t = arg;
    (void)local__running(h->pid); /* reaps a raylet of ours that has exited */
    if (h->vanish_at_ms <= 0 || t->now_ms < h->vanish_at_ms)
        return;
    RC_INFO("market: provider %s: host %s vanishes (behaviour vanish_after_s)", t->lp->base.name, key);
    local__stop_pid(h->pid, SIGKILL);
    h->vanish_at_ms = -1;
    local__write_host(path, h, 0);
}

static void local__poll(mk_provider *p, int64_t now_ms)
{
    local_provider *lp = (local_provider *)p;
    char err[256];
    if (local__unreachable(lp, err, sizeof(err)) < 0)
        return;
    local__tick t = {lp, now_ms};
    local__each_host(lp, local__poll_one, &t);
}

static void local__destroy(mk_provider *p)
{
    local_provider *lp = (local_provider *)p;
    mk_offers_file_free(&lp->offers);
    rc_free(lp->state_dir);
    rc_free(p->name);
    rc_free(p->type);
    rc_free(lp);
}

static const mk_provider_ops local__ops = {
    local__launch, local__terminate, local__list, local__offers, local__poll, local__destroy,
};

int mk_provider_local_create(const mk_provider_config *cfg, const char *config_dir, const char *state_dir,
                             mk_provider **out, char *err, size_t errlen)
{
    if (!cfg->offers || !*cfg->offers) {
        snprintf(err, errlen, "provider %s: a local provider needs \"offers\": the path of its offers file",
                 cfg->name);
        return RC_EINVAL;
    }
    local_provider *lp = rc_calloc(1, sizeof(*lp));
    lp->base.ops = &local__ops;
    lp->base.name = rc_strdup(cfg->name);
    lp->base.type = rc_strdup("local");
    mk_offers_file_init(&lp->offers, config_dir, cfg->offers);
    char path[PATH_MAX * 2];
    snprintf(path, sizeof(path), "%s/%s", state_dir, cfg->name);
    lp->state_dir = rc_strdup(path);
    if (mkdir(lp->state_dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "provider %s: cannot create %s: %s", cfg->name, lp->state_dir, strerror(errno));
        local__destroy(&lp->base);
        return RC_EIO;
    }
    char dir[PATH_MAX];
    if (rc_exe_dir(dir, sizeof(dir)) < 0) {
        snprintf(err, errlen, "provider %s: cannot find the directory of rayc-market", cfg->name);
        local__destroy(&lp->base);
        return RC_EIO;
    }
    if (snprintf(lp->raylet_exe, sizeof(lp->raylet_exe), "%s/rayc-raylet", dir) >= (int)sizeof(lp->raylet_exe) ||
        access(lp->raylet_exe, X_OK) != 0) {
        snprintf(err, errlen, "provider %s: %s is not there; install rayc-raylet beside rayc-market", cfg->name,
                 lp->raylet_exe);
        local__destroy(&lp->base);
        return RC_ENOENT;
    }
    *out = &lp->base;
    return 0;
}
