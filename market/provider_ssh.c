/*
 * The ssh provider: hosts the admin owns (Ray's on-prem node provider), reached with OpenSSH.
 * A host is leased by running, over ssh,
 *
 *     env RAYC_SESSION_ROOT=/tmp/rayc-market/<key> <rayc_bin>/rayc start --address <gcs>
 *         --join-token <token> --ca-cert-hash <pin of the CA> --num-cpus ... [--labels ...]
 *
 * and released by `env RAYC_SESSION_ROOT=... rayc stop` followed by removing that root. Each
 * lease has a session root of its own on its host, so stopping one touches nothing else there.
 * One lease per host at a time: a host runs nothing else of this provider until its stop has
 * finished.
 *
 * Config: "hosts" (required), "user" and "key" (optional; ssh's own defaults otherwise),
 * "ssh_options" (split at blanks, no shell quoting; passed before the provider's own
 * -o BatchMode=yes -o ConnectTimeout=15, so the admin's values win), "rayc_bin" (the
 * directory of rayc on the hosts; default: the directory of rayc-market) and "offers" (an
 * offers file as for the local provider, read again when it changes). An offer's "available"
 * is how many of the hosts can serve it (at most the number of hosts); an offer with "host"
 * is served by that host only. Offers must be honest: misbehaviour is the local provider's.
 *
 * ssh runs as child processes (posix_spawn, stdin /dev/null, output into the state
 * directory), never on the loop: launch returns at once with the host PENDING, poll reaps the
 * children with waitpid(WNOHANG), and list reports RUNNING once `rayc start` exited 0, or
 * FAILED with the last line it wrote to stderr (ssh's own "connect to host ...: Connection
 * refused" when the host is not there). terminate starts the stop and returns; the host
 * stays reserved until the stop ends. A stop that cannot reach a host that ran a node is
 * tried again every 30 s; one after a failed start is tried once.
 *
 * The provider's record of its hosts is one file per lease in its state directory,
 * <key>.host: "<state> <offer id> <host> <launched ms> <next stop try ms>" and a second line
 * with the error of a failed start. It is written before ssh runs, so a launch is idempotent
 * per key and a market that restarts lists what runs; a start that was still running when
 * the market stopped is reported FAILED (its outcome is unknown), so the market stops it.
 * ssh's output goes to <key>.err / <key>.out (start) and <key>.stop.err / .stop.out (stop).
 *
 * Loop thread only.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "auth.h"
#include "market_provider.h"
#include "rc_alloc.h"
#include "rc_buf.h"
#include "rc_err.h"
#include "rc_log.h"
#include "rc_session.h"

extern char **environ;

#define SSH__REMOTE_ROOT "/tmp/rayc-market"
#define SSH__STOP_RETRY_MS 30000

typedef enum ssh_state {
    SSH_STARTING = 0, /* `rayc start` runs */
    SSH_RUNNING,      /* it exited 0 */
    SSH_FAILED,       /* it failed; the record keeps why */
    SSH_STOPPING,     /* terminated: `rayc stop` runs or is to be tried again */
    SSH_CLEARING,     /* terminated after a failed start: one `rayc stop`, then forgotten */
} ssh_state;

static const char *const ssh__state_names[] = {"starting", "running", "failed", "stopping", "clearing"};

typedef struct ssh_host {
    ssh_state state;
    char offer_id[128];
    char host[256];
    int64_t launched_ms;
    int64_t stop_at_ms; /* STOPPING: when the next stop may start */
    char error[256];
} ssh_host;

typedef struct ssh_child {
    pid_t pid;
    char key[64];
    int stop; /* 0: rayc start, 1: rayc stop */
} ssh_child;

typedef struct ssh_provider {
    mk_provider base;
    mk_offers_file offers;
    char *state_dir;
    char *user, *key_file;
    char **options;
    size_t n_options;
    char **hosts;
    size_t n_hosts;
    char rayc_bin[PATH_MAX];
    ssh_child *children;
    size_t n_children, cap_children;
} ssh_provider;

/* ---- the record --------------------------------------------------------------------------- */

/* Keys name files here and directories on the hosts: letters, digits, '.', '_', '-'. */
static int ssh__key_valid(const char *key)
{
    size_t n = strlen(key);
    if (!n || n >= sizeof(((mk_instance *)0)->key) || key[0] == '.' || key[0] == '-')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = key[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-'))
            return 0;
    }
    return 1;
}

static void ssh__path(ssh_provider *sp, const char *key, const char *suffix, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/%s%s", sp->state_dir, key, suffix);
}

static int ssh__read_host(ssh_provider *sp, const char *key, ssh_host *h)
{
    char path[PATH_MAX];
    ssh__path(sp, key, ".host", path, sizeof(path));
    FILE *f = fopen(path, "r");
    if (!f)
        return RC_ENOENT;
    char state[32];
    long long launched = 0, stop_at = 0;
    memset(h, 0, sizeof(*h));
    int got = fscanf(f, "%31s %127s %255s %lld %lld", state, h->offer_id, h->host, &launched, &stop_at);
    if (got == 5 && fgetc(f) == '\n' && fgets(h->error, sizeof(h->error), f))
        h->error[strcspn(h->error, "\n")] = '\0';
    fclose(f);
    if (got != 5)
        return RC_EPARSE;
    size_t s = 0;
    while (s < RC_ARRAY_LEN(ssh__state_names) && strcmp(state, ssh__state_names[s]))
        s++;
    if (s == RC_ARRAY_LEN(ssh__state_names))
        return RC_EPARSE;
    h->state = (ssh_state)s;
    h->launched_ms = launched;
    h->stop_at_ms = stop_at;
    return 0;
}

/* Writes the record atomically; exclusive: only if there is none yet (RC_EEXIST). */
static int ssh__write_host(ssh_provider *sp, const char *key, const ssh_host *h, int exclusive)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    ssh__path(sp, key, ".host", path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (exclusive && access(path, F_OK) == 0)
        return RC_EEXIST;
    FILE *f = fopen(tmp, "w");
    if (!f)
        return RC_EIO;
    fprintf(f, "%s %s %s %lld %lld\n%s\n", ssh__state_names[h->state], h->offer_id, h->host,
            (long long)h->launched_ms, (long long)h->stop_at_ms, h->error);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return RC_EIO;
    }
    return 0;
}

static void ssh__forget(ssh_provider *sp, const char *key)
{
    static const char *const suffixes[] = {".host", ".out", ".err", ".stop.out", ".stop.err"};
    char path[PATH_MAX];
    for (size_t i = 0; i < RC_ARRAY_LEN(suffixes); i++) {
        ssh__path(sp, key, suffixes[i], path, sizeof(path));
        unlink(path);
    }
}

/* Calls fn for every record in the state directory. */
static void ssh__each_host(ssh_provider *sp, void (*fn)(ssh_provider *, const char *, ssh_host *, void *), void *arg)
{
    DIR *d = opendir(sp->state_dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        char key[64];
        if (len < 6 || strcmp(e->d_name + len - 5, ".host") || len - 5 >= sizeof(key))
            continue;
        memcpy(key, e->d_name, len - 5);
        key[len - 5] = '\0';
        ssh_host h;
        if (ssh__read_host(sp, key, &h) == 0)
            fn(sp, key, &h, arg);
    }
    closedir(d);
}

/* ---- children ----------------------------------------------------------------------------- */

/* The last non-empty line of a file (at most outlen bytes), "" if none. */
static void ssh__last_line(const char *path, char *out, size_t outlen)
{
    out[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    char buf[4096];
    off_t size = lseek(fd, 0, SEEK_END);
    off_t from = size > (off_t)sizeof(buf) - 1 ? size - (off_t)sizeof(buf) + 1 : 0;
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, from);
    close(fd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    char *start = buf + n;
    while (start > buf && start[-1] != '\n')
        start--;
    start[strcspn(start, "\r")] = '\0';
    if (snprintf(out, outlen, "%s", start) >= (int)outlen)
        RC_DEBUG("market: an ssh error line was shortened");
}

/* Appends s to b quoted for a POSIX shell. */
static void ssh__quote(rc_buf *b, const char *s)
{
    rc_buf_putc(b, '\'');
    for (; *s; s++) {
        if (*s == '\'')
            rc_buf_puts(b, "'\\''");
        else
            rc_buf_putc(b, *s);
    }
    rc_buf_putc(b, '\'');
}

/* Runs ssh to host with the remote command line cmd (already quoted), its output into
 * <key><suffix>.out/.err. The child is remembered for poll. */
static int ssh__spawn(ssh_provider *sp, const char *key, const char *host, const char *cmd, int stop)
{
    char out_path[PATH_MAX], err_path[PATH_MAX], target[512];
    ssh__path(sp, key, stop ? ".stop.out" : ".out", out_path, sizeof(out_path));
    ssh__path(sp, key, stop ? ".stop.err" : ".err", err_path, sizeof(err_path));
    if (sp->user)
        snprintf(target, sizeof(target), "%s@%s", sp->user, host);
    else
        snprintf(target, sizeof(target), "%s", host);
    size_t max = sp->n_options + 16;
    char **argv = rc_calloc(max, sizeof(char *));
    size_t n = 0;
    argv[n++] = "ssh";
    for (size_t i = 0; i < sp->n_options; i++)
        argv[n++] = sp->options[i];
    argv[n++] = "-o";
    argv[n++] = "BatchMode=yes";
    argv[n++] = "-o";
    argv[n++] = "ConnectTimeout=15";
    if (sp->key_file) {
        argv[n++] = "-i";
        argv[n++] = sp->key_file;
    }
    argv[n++] = "--";
    argv[n++] = target;
    argv[n++] = (char *)cmd;
    argv[n] = NULL;

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    /* Its own process group (no terminal signals meant for rayc-market), default signal
     * handling and nothing blocked, whatever the market's threads do. */
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    int sigs[] = {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGCHLD, SIGQUIT};
    for (size_t i = 0; i < RC_ARRAY_LEN(sigs); i++)
        sigaddset(&defaults, sigs[i]);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid;
    int err = posix_spawnp(&pid, "ssh", &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    rc_free(argv);
    if (err != 0) {
        errno = err;
        return RC_ESYS;
    }
    if (sp->n_children == sp->cap_children) {
        sp->cap_children = sp->cap_children ? sp->cap_children * 2 : 8;
        sp->children = rc_realloc(sp->children, sp->cap_children * sizeof(*sp->children));
    }
    ssh_child *c = &sp->children[sp->n_children++];
    c->pid = pid;
    c->stop = stop;
    snprintf(c->key, sizeof(c->key), "%s", key);
    return 0;
}

static int ssh__child_running(ssh_provider *sp, const char *key)
{
    for (size_t i = 0; i < sp->n_children; i++)
        if (!strcmp(sp->children[i].key, key))
            return 1;
    return 0;
}

static void ssh__remote_root(const char *key, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/%s", SSH__REMOTE_ROOT, key);
}

/* Starts `rayc stop` for key's session root on its host, then the root is removed. */
static int ssh__start_stop(ssh_provider *sp, const char *key, const ssh_host *h)
{
    char root[PATH_MAX], rayc[PATH_MAX + 8];
    ssh__remote_root(key, root, sizeof(root));
    snprintf(rayc, sizeof(rayc), "%s/rayc", sp->rayc_bin);
    rc_buf cmd = {0};
    rc_buf_puts(&cmd, "env RAYC_SESSION_ROOT=");
    ssh__quote(&cmd, root);
    rc_buf_putc(&cmd, ' ');
    ssh__quote(&cmd, rayc);
    rc_buf_puts(&cmd, " stop && rm -rf ");
    ssh__quote(&cmd, root);
    int rc = ssh__spawn(sp, key, h->host, rc_buf_cstr(&cmd), 1);
    rc_buf_free(&cmd);
    if (rc < 0)
        RC_WARN("market: provider %s: cannot run ssh to stop %s on %s: %s", sp->base.name, key, h->host,
                strerror(errno));
    return rc;
}

/* A child ended: the record moves on. */
static void ssh__child_done(ssh_provider *sp, const ssh_child *c, int status, int64_t now_ms)
{
    ssh_host h;
    if (ssh__read_host(sp, c->key, &h) < 0)
        return;
    int ok = status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    char line[200], err_path[PATH_MAX], how[32];
    ssh__path(sp, c->key, c->stop ? ".stop.err" : ".err", err_path, sizeof(err_path));
    ssh__last_line(err_path, line, sizeof(line));
    if (status < 0)
        snprintf(how, sizeof(how), "its end was not seen");
    else if (WIFEXITED(status))
        snprintf(how, sizeof(how), "exit %d", WEXITSTATUS(status));
    else
        snprintf(how, sizeof(how), "signal %d", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    if (!c->stop) {
        if (h.state == SSH_STARTING) {
            h.state = ok ? SSH_RUNNING : SSH_FAILED;
            if (!ok)
                snprintf(h.error, sizeof(h.error), "%.60s: rayc start failed (%s): %.130s", h.host, how,
                         line[0] ? line : "no error output");
            ssh__write_host(sp, c->key, &h, 0);
            if (ok)
                RC_INFO("market: provider %s: host %s (%s, offer %s) runs rayc", sp->base.name, c->key, h.host,
                        h.offer_id);
            else
                RC_WARN("market: provider %s: host %s: %s", sp->base.name, c->key, h.error);
        } else if (h.state == SSH_STOPPING || h.state == SSH_CLEARING) {
            /* Terminated while it started: now it can be stopped. */
            if (!ok)
                h.state = SSH_CLEARING;
            h.stop_at_ms = now_ms;
            ssh__write_host(sp, c->key, &h, 0);
            ssh__start_stop(sp, c->key, &h);
        }
        return;
    }
    if (ok || h.state == SSH_CLEARING) {
        if (!ok)
            RC_WARN("market: provider %s: cannot stop %s on %s after its failed start (%s): %s; forgetting it",
                    sp->base.name, c->key, h.host, how, line);
        else
            RC_INFO("market: provider %s: host %s (%s) stopped", sp->base.name, c->key, h.host);
        ssh__forget(sp, c->key);
        return;
    }
    RC_WARN("market: provider %s: cannot stop %s on %s yet (%s): %s; trying again in %d s", sp->base.name, c->key,
            h.host, how, line, SSH__STOP_RETRY_MS / 1000);
    h.stop_at_ms = now_ms + SSH__STOP_RETRY_MS;
    ssh__write_host(sp, c->key, &h, 0);
}

static void ssh__reap(ssh_provider *sp, int64_t now_ms)
{
    for (size_t i = 0; i < sp->n_children;) {
        int status = 0;
        pid_t r = waitpid(sp->children[i].pid, &status, WNOHANG);
        if (r == 0 || (r < 0 && errno == EINTR)) {
            i++;
            continue;
        }
        ssh_child c = sp->children[i];
        sp->children[i] = sp->children[--sp->n_children];
        /* ECHILD: someone else reaped it; its outcome is unknown. */
        ssh__child_done(sp, &c, r == c.pid ? status : -1, now_ms);
    }
}

/* ---- the interface ------------------------------------------------------------------------ */

typedef struct ssh__busy_arg {
    const char *host;
    int busy;
} ssh__busy_arg;

static void ssh__busy_cb(ssh_provider *sp, const char *key, ssh_host *h, void *arg)
{
    (void)sp;
    (void)key;
    ssh__busy_arg *a = arg;
    if (!strcmp(h->host, a->host))
        a->busy = 1;
}

static int ssh__host_busy(ssh_provider *sp, const char *host)
{
    ssh__busy_arg a = {host, 0};
    ssh__each_host(sp, ssh__busy_cb, &a);
    return a.busy;
}

/* The remote `rayc start` command line for offer o. */
static int ssh__start_command(ssh_provider *sp, const mk_offer *o, const mk_join *join, const char *pin,
                              rc_buf *cmd)
{
    char root[PATH_MAX], rayc[PATH_MAX + 8], num[64], name[300];
    ssh__remote_root(join->lease_id, root, sizeof(root));
    snprintf(rayc, sizeof(rayc), "%s/rayc", sp->rayc_bin);
    rc_buf_puts(cmd, "env RAYC_SESSION_ROOT=");
    ssh__quote(cmd, root);
    rc_buf_putc(cmd, ' ');
    ssh__quote(cmd, rayc);
    rc_buf_puts(cmd, " start --address ");
    ssh__quote(cmd, join->gcs_address);
    rc_buf_puts(cmd, " --join-token ");
    ssh__quote(cmd, join->join_token);
    rc_buf_puts(cmd, " --ca-cert-hash ");
    ssh__quote(cmd, pin);
    snprintf(name, sizeof(name), "%s/%s", sp->base.name, o->id);
    rc_buf_puts(cmd, " --node-name ");
    ssh__quote(cmd, name);
    snprintf(num, sizeof(num), "%g", o->num_cpus);
    rc_buf_puts(cmd, " --num-cpus ");
    ssh__quote(cmd, num);
    if (o->memory > 0) {
        snprintf(num, sizeof(num), "%.0fMiB", o->memory * 1024.0);
        rc_buf_puts(cmd, " --memory ");
        ssh__quote(cmd, num);
    }
    snprintf(num, sizeof(num), "%g", o->num_gpus);
    rc_buf_puts(cmd, " --num-gpus ");
    ssh__quote(cmd, num);
    if (o->num_gpus > 0 && o->gpu_name && *o->gpu_name) {
        rc_buf_puts(cmd, " --accelerator-type ");
        ssh__quote(cmd, o->gpu_name);
    }
    if (o->num_gpus > 0 && o->gpu_memory > 0) {
        snprintf(num, sizeof(num), "%.0fMiB", o->gpu_memory * 1024.0);
        rc_buf_puts(cmd, " --gpu-memory ");
        ssh__quote(cmd, num);
    }
    if (o->n_labels) {
        rc_buf labels = {0};
        for (size_t i = 0; i < o->n_labels; i++) {
            if (strchr(o->label_values[i], ',') || strchr(o->label_keys[i], ',') || strchr(o->label_keys[i], '=')) {
                rc_buf_free(&labels);
                return RC_EINVAL;
            }
            rc_buf_printf(&labels, "%s%s=%s", i ? "," : "", o->label_keys[i], o->label_values[i]);
        }
        rc_buf_puts(cmd, " --labels ");
        ssh__quote(cmd, rc_buf_cstr(&labels));
        rc_buf_free(&labels);
    }
    return 0;
}

static int ssh__launch(mk_provider *p, const mk_offer *o, const mk_join *join, int64_t now_ms, char *err,
                       size_t errlen)
{
    ssh_provider *sp = (ssh_provider *)p;
    if (!ssh__key_valid(join->lease_id)) {
        snprintf(err, errlen, "provider %s: lease id \"%.64s\" must be up to 63 letters, digits, '.', '_' or '-'",
                 p->name, join->lease_id);
        return RC_EINVAL;
    }
    char path[PATH_MAX];
    ssh__path(sp, join->lease_id, ".host", path, sizeof(path));
    if (access(path, F_OK) == 0)
        return 0; /* launched before under this key */
    if (o->behaviour != MK_HONEST) {
        snprintf(err, errlen, "provider %s: offer %s: launch refused: an ssh provider's hosts are real, so its "
                              "offers cannot have a \"behaviour\"",
                 p->name, o->id);
        return RC_EINVAL;
    }
    const char *host = NULL;
    for (size_t i = 0; i < sp->n_hosts && !host; i++)
        if ((!o->host || !strcmp(o->host, sp->hosts[i])) && !ssh__host_busy(sp, sp->hosts[i]))
            host = sp->hosts[i];
    if (!host) {
        snprintf(err, errlen, "provider %s: offer %s: launch refused: %s", p->name, o->id,
                 o->host ? "its host is running another lease" : "every host is running another lease");
        return RC_EBUSY;
    }
    char pin[AUTH_CA_HASH_MAX];
    char *ca = NULL;
    const char *ca_pem = join->ca_cert_pem;
    if (!ca_pem && join->ca_cert_file && auth_read_file(join->ca_cert_file, &ca) == 0)
        ca_pem = ca;
    int rc = ca_pem ? auth_ca_hash(ca_pem, pin, sizeof(pin)) : RC_EINVAL;
    rc_free(ca);
    if (rc < 0) {
        snprintf(err, errlen, "provider %s: the cluster's CA certificate cannot be read, so its pin for "
                              "`rayc start --ca-cert-hash` cannot be made",
                 p->name);
        return RC_EINVAL;
    }
    rc_buf cmd = {0};
    if (ssh__start_command(sp, o, join, pin, &cmd) < 0) {
        rc_buf_free(&cmd);
        snprintf(err, errlen, "provider %s: offer %s: a label key or value holds ',' or a key holds '=', which "
                              "`rayc start --labels` cannot carry",
                 p->name, o->id);
        return RC_EINVAL;
    }
    ssh_host h = {.state = SSH_STARTING, .launched_ms = now_ms};
    snprintf(h.offer_id, sizeof(h.offer_id), "%s", o->id);
    snprintf(h.host, sizeof(h.host), "%s", host);
    /* The record first: a market killed right after this still finds the host by listing. */
    if (ssh__write_host(sp, join->lease_id, &h, 1) < 0) {
        rc_buf_free(&cmd);
        snprintf(err, errlen, "provider %s: cannot write %s: %s", p->name, path, strerror(errno));
        return RC_EIO;
    }
    rc = ssh__spawn(sp, join->lease_id, host, rc_buf_cstr(&cmd), 0);
    rc_buf_free(&cmd);
    if (rc < 0) {
        snprintf(err, errlen, "provider %s: cannot run ssh: %s; install OpenSSH's client (package openssh-client)",
                 p->name, strerror(errno));
        ssh__forget(sp, join->lease_id);
        return rc;
    }
    RC_INFO("market: provider %s: host %s: rayc start on %s (offer %s)", p->name, join->lease_id, host, o->id);
    return 0;
}

static int ssh__terminate(mk_provider *p, const char *key, char *err, size_t errlen)
{
    ssh_provider *sp = (ssh_provider *)p;
    (void)err;
    (void)errlen;
    ssh_host h;
    if (!ssh__key_valid(key) || ssh__read_host(sp, key, &h) < 0)
        return 0;
    if (h.state == SSH_STOPPING || h.state == SSH_CLEARING)
        return 0; /* on its way */
    h.state = h.state == SSH_FAILED ? SSH_CLEARING : SSH_STOPPING;
    h.stop_at_ms = 0;
    ssh__write_host(sp, key, &h, 0);
    /* A start still running is waited for (ssh__child_done then stops it): a stop that ran
     * first would miss the node the start brings up. */
    if (!ssh__child_running(sp, key))
        ssh__start_stop(sp, key, &h);
    RC_INFO("market: provider %s: host %s (%s) terminating", p->name, key, h.host);
    return 0;
}

typedef struct ssh__list_arg {
    mk_instance *v;
    size_t n, cap;
} ssh__list_arg;

static void ssh__list_cb(ssh_provider *sp, const char *key, ssh_host *h, void *arg)
{
    (void)sp;
    ssh__list_arg *a = arg;
    if (h->state == SSH_STOPPING || h->state == SSH_CLEARING)
        return;
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 8;
        a->v = rc_realloc(a->v, a->cap * sizeof(*a->v));
    }
    mk_instance *in = &a->v[a->n++];
    memset(in, 0, sizeof(*in));
    snprintf(in->key, sizeof(in->key), "%s", key);
    snprintf(in->offer_id, sizeof(in->offer_id), "%s", h->offer_id);
    in->state = h->state == SSH_RUNNING ? MK_INST_RUNNING : h->state == SSH_FAILED ? MK_INST_FAILED : MK_INST_PENDING;
    in->launched_ms = h->launched_ms;
    snprintf(in->error, sizeof(in->error), "%s", h->error);
}

static int ssh__list(mk_provider *p, mk_instance **out, size_t *n_out, char *err, size_t errlen)
{
    ssh_provider *sp = (ssh_provider *)p;
    *out = NULL;
    *n_out = 0;
    if (access(sp->state_dir, R_OK | X_OK) != 0) {
        snprintf(err, errlen, "cannot read %s: %s", sp->state_dir, strerror(errno));
        return RC_EIO;
    }
    ssh__list_arg a = {0};
    ssh__each_host(sp, ssh__list_cb, &a);
    *out = a.v ? a.v : rc_calloc(1, sizeof(mk_instance));
    *n_out = a.n;
    return 0;
}

/* Checks what only an ssh provider asks of its offers and caps "available" at the hosts that
 * can serve each. */
static int ssh__check_offers(void *arg, mk_offer *offers, size_t n, char *err, size_t errlen)
{
    ssh_provider *sp = arg;
    for (size_t i = 0; i < n; i++) {
        mk_offer *o = &offers[i];
        if (o->behaviour != MK_HONEST) {
            snprintf(err, errlen, "offer \"%s\": \"behaviour\" is for the local provider; an ssh provider's hosts "
                                  "are real",
                     o->id);
            return RC_EINVAL;
        }
        if (!o->host) {
            if ((size_t)o->available > sp->n_hosts)
                o->available = (int)sp->n_hosts;
            continue;
        }
        size_t h = 0;
        while (h < sp->n_hosts && strcmp(sp->hosts[h], o->host))
            h++;
        if (h == sp->n_hosts) {
            snprintf(err, errlen, "offer \"%s\": \"host\" is \"%.100s\", which is not in the provider's \"hosts\"",
                     o->id, o->host);
            return RC_EINVAL;
        }
        if (o->available > 1)
            o->available = 1;
    }
    return 0;
}

static int ssh__offers(mk_provider *p, const mk_offer **out, size_t *n, int *changed, char *err, size_t errlen)
{
    ssh_provider *sp = (ssh_provider *)p;
    return mk_offers_file_read(&sp->offers, p->name, ssh__check_offers, sp, out, n, changed, err, errlen);
}

/* Stops that are due: after a failed try, or left by a market that stopped. */
static void ssh__due_stop_cb(ssh_provider *sp, const char *key, ssh_host *h, void *arg)
{
    int64_t now_ms = *(const int64_t *)arg;
    if ((h->state != SSH_STOPPING && h->state != SSH_CLEARING) || h->stop_at_ms > now_ms ||
        ssh__child_running(sp, key))
        return;
    h->stop_at_ms = now_ms + SSH__STOP_RETRY_MS; /* until this try ends */
    ssh__write_host(sp, key, h, 0);
    ssh__start_stop(sp, key, h);
}

static void ssh__poll(mk_provider *p, int64_t now_ms)
{
    ssh_provider *sp = (ssh_provider *)p;
    ssh__reap(sp, now_ms);
    ssh__each_host(sp, ssh__due_stop_cb, &now_ms);
}

static void ssh__destroy(mk_provider *p)
{
    ssh_provider *sp = (ssh_provider *)p;
    /* Children still running are left to finish; their records tell the next market. */
    mk_offers_file_free(&sp->offers);
    rc_free(sp->state_dir);
    rc_free(sp->user);
    rc_free(sp->key_file);
    for (size_t i = 0; i < sp->n_options; i++)
        rc_free(sp->options[i]);
    rc_free(sp->options);
    for (size_t i = 0; i < sp->n_hosts; i++)
        rc_free(sp->hosts[i]);
    rc_free(sp->hosts);
    rc_free(sp->children);
    rc_free(p->name);
    rc_free(p->type);
    rc_free(sp);
}

static const mk_provider_ops ssh__ops = {
    ssh__launch, ssh__terminate, ssh__list, ssh__offers, ssh__poll, ssh__destroy,
};

/* A start that a previous market left running has an unknown outcome: reported FAILED, so
 * the market stops it. A stop it left is started again by poll. */
static void ssh__adopt_cb(ssh_provider *sp, const char *key, ssh_host *h, void *arg)
{
    (void)arg;
    if (h->state == SSH_STARTING) {
        h->state = SSH_FAILED;
        snprintf(h->error, sizeof(h->error),
                 "%.100s: rayc-market restarted while `rayc start` ran there, so whether it started is unknown",
                 h->host);
        ssh__write_host(sp, key, h, 0);
    } else if (h->state == SSH_STOPPING || h->state == SSH_CLEARING) {
        h->stop_at_ms = 0;
        ssh__write_host(sp, key, h, 0);
    }
}

/* Names that reach ssh's command line must not read as options. */
static int ssh__word_ok(const char *s)
{
    return s && *s && s[0] != '-' && !strpbrk(s, " \t\r\n@");
}

int mk_provider_ssh_create(const mk_provider_config *cfg, const char *config_dir, const char *state_dir,
                           mk_provider **out, char *err, size_t errlen)
{
    if (!cfg->offers || !*cfg->offers) {
        snprintf(err, errlen, "provider %s: an ssh provider needs \"offers\": the path of the file that says what "
                              "its hosts offer",
                 cfg->name);
        return RC_EINVAL;
    }
    if (!cfg->n_ssh_hosts) {
        snprintf(err, errlen, "provider %s: an ssh provider needs \"hosts\": the hosts it may start rayc on",
                 cfg->name);
        return RC_EINVAL;
    }
    for (size_t i = 0; i < cfg->n_ssh_hosts; i++)
        if (!ssh__word_ok(cfg->ssh_hosts[i]) || strlen(cfg->ssh_hosts[i]) >= sizeof(((ssh_host *)0)->host)) {
            snprintf(err, errlen, "provider %s: host \"%.100s\" must be a host name or address (no blanks, no '@', "
                                  "not starting with '-'; the user goes in \"user\")",
                     cfg->name, cfg->ssh_hosts[i]);
            return RC_EINVAL;
        }
    if (cfg->ssh_user && !ssh__word_ok(cfg->ssh_user)) {
        snprintf(err, errlen, "provider %s: \"user\" \"%.60s\" must be a user name (no blanks, no '@', not starting "
                              "with '-')",
                 cfg->name, cfg->ssh_user);
        return RC_EINVAL;
    }
    if (cfg->ssh_key && access(cfg->ssh_key, R_OK) != 0) {
        snprintf(err, errlen, "provider %s: \"key\" %s cannot be read: %s", cfg->name, cfg->ssh_key, strerror(errno));
        return RC_EINVAL;
    }
    ssh_provider *sp = rc_calloc(1, sizeof(*sp));
    sp->base.ops = &ssh__ops;
    sp->base.name = rc_strdup(cfg->name);
    sp->base.type = rc_strdup("ssh");
    mk_offers_file_init(&sp->offers, config_dir, cfg->offers);
    char path[PATH_MAX * 2];
    snprintf(path, sizeof(path), "%s/%s", state_dir, cfg->name);
    sp->state_dir = rc_strdup(path);
    sp->user = cfg->ssh_user ? rc_strdup(cfg->ssh_user) : NULL;
    sp->key_file = cfg->ssh_key ? rc_strdup(cfg->ssh_key) : NULL;
    sp->hosts = rc_calloc(cfg->n_ssh_hosts, sizeof(char *));
    for (size_t i = 0; i < cfg->n_ssh_hosts; i++)
        sp->hosts[sp->n_hosts++] = rc_strdup(cfg->ssh_hosts[i]);
    if (cfg->ssh_options) {
        char *copy = rc_strdup(cfg->ssh_options), *save = NULL;
        size_t cap = strlen(copy) / 2 + 2;
        sp->options = rc_calloc(cap, sizeof(char *));
        for (char *w = strtok_r(copy, " \t\r\n", &save); w; w = strtok_r(NULL, " \t\r\n", &save))
            sp->options[sp->n_options++] = rc_strdup(w);
        rc_free(copy);
    }
    if (mkdir(sp->state_dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "provider %s: cannot create %s: %s", cfg->name, sp->state_dir, strerror(errno));
        ssh__destroy(&sp->base);
        return RC_EIO;
    }
    if (cfg->rayc_bin) {
        snprintf(sp->rayc_bin, sizeof(sp->rayc_bin), "%s", cfg->rayc_bin);
    } else if (rc_exe_dir(sp->rayc_bin, sizeof(sp->rayc_bin)) < 0) {
        snprintf(err, errlen, "provider %s: cannot find the directory of rayc-market; set \"rayc_bin\" to the "
                              "directory of rayc on the hosts",
                 cfg->name);
        ssh__destroy(&sp->base);
        return RC_EIO;
    }
    ssh__each_host(sp, ssh__adopt_cb, NULL);
    *out = &sp->base;
    return 0;
}
