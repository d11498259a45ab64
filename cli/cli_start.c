/*
 * rayc start.
 *
 * start validates every flag first (the raylet's own parser), then creates a session
 * directory, starts rayc-gcs (head only) and rayc-raylet as daemons in it, waits until the
 * GCS serves and the raylet has registered, records the GCS address in the session and
 * prints it in Ray's form. A port in use is found before anything starts. If a daemon dies on
 * the way, the reason it gave comes first, then its last log lines; what was started is
 * stopped again and the session directory removed, so that a failed start leaves nothing.
 *
 * Security (ARCHITECTURE §14) is on unless --insecure is given. The head's GCS writes the
 * cluster's CA and the admin token into the session (--auth-dir); with them start makes a
 * single-use join token for the head's own raylet and, once that raylet is up, a 24-hour
 * token of unlimited uses for other hosts (kubeadm's default), printed as the command to
 * run there. A node joins with --join-token and --ca-cert-hash; on the head's host, where
 * the head's credentials are found, it needs neither: start makes a single-use token itself
 * and copies the CA and the admin token into the new session, so that clients reading the
 * latest session keep working. Before a node has any credential the fail-fast check of the
 * address is a TLS handshake whose CA must match the pin.
 *
 * Main thread only.
 */
#define _GNU_SOURCE /* nftw */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "auth.h"
#include "cli_int.h"
#include "gcs_client_auth.h"
#include "raylet.h"
#include "rc_alloc.h"
#include "rc_err.h"
#include "rc_net.h"
#include "rc_session.h"
#include "rc_time.h"

enum {
    CLI__MAX_ARGS = 128,
    CLI__GCS_WAIT_MS = 15000,
    CLI__RAYLET_WAIT_MS = 60000,
    CLI__STOP_GRACE_MS = 10000,
    CLI__PIN_TIMEOUT_MS = 5000,
    CLI__TOKEN_CALL_MS = 10000,
    /* The head's own raylet and a node joining on the head's host use their token at once. */
    CLI__LOCAL_TOKEN_TTL_S = 600,
    /* The token printed for other hosts: kubeadm's default, 24 hours, any number of hosts. */
    CLI__JOIN_TOKEN_TTL_S = 24 * 3600,
};

typedef struct cli__daemon {
    const char *name;
    pid_t pid;
} cli__daemon;

/* The command line of `rayc start`, parsed. Strings point into argv. */
typedef struct cli__start_opts {
    int head, block, port, insecure, bind_all;
    const char *market; /* --market FILE: rayc-market with this config, on the head */
    int no_dashboard, dashboard_port; /* --include-dashboard false, --dashboard-port N */
    const char *dashboard_host;       /* --dashboard-host IP (default: the node IP) */
    const char *address, *redis, *ip_flag;
    const char *join_token, *ca_cert_hash, *ca_cert_file;
    const char *redis_password, *redis_password_file, *redis_username;
    char *raylet_args[CLI__MAX_ARGS];
    int n_raylet_args;
} cli__start_opts;

/* What a node joins with. Freed with cli__join_free. */
typedef struct cli__join {
    char *token;           /* the join token, given or made here */
    char *ca_pem;          /* the cluster's CA */
    gcs_admin_creds admin; /* the head's credentials, when found on this host for this cluster */
    int have_admin;
} cli__join;

static void cli__join_free(cli__join *j)
{
    rc_free(j->token);
    rc_free(j->ca_pem);
    gcs_admin_creds_free(&j->admin);
    memset(j, 0, sizeof(*j));
}

static void cli__print_log_tail(const char *session, const char *name)
{
    char path[PATH_MAX + 64], tail[2048];
    snprintf(path, sizeof(path), "%s/logs/%s.err", session, name);
    rc_file_tail(path, tail, sizeof(tail));
    if (tail[0])
        fprintf(stderr, "--- last lines of %s ---\n%s%s", path, tail, tail[strlen(tail) - 1] == '\n' ? "" : "\n");
}

/* The reason a daemon gave for not starting: the last line of its log that begins with
 * prefix ("rayc-gcs: "), without the prefix. 1 if found. */
static int cli__daemon_reason(const char *session, const char *name, const char *prefix, char *out, size_t outlen)
{
    char path[PATH_MAX + 64], line[1024];
    snprintf(path, sizeof(path), "%s/logs/%s.err", session, name);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int found = 0;
    size_t plen = strlen(prefix);
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, prefix, plen))
            continue;
        line[strcspn(line, "\n")] = '\0';
        snprintf(out, outlen, "%s", line + plen);
        found = 1;
    }
    fclose(f);
    return found;
}

static int cli__remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return type == FTW_DP ? rmdir(path) : unlink(path);
}

/* Removes a session directory this start created, and all in it. */
static void cli__remove_tree(const char *dir)
{
    if (nftw(dir, cli__remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        fprintf(stderr, "rayc start: cannot remove %s entirely: %s\n", dir, strerror(errno));
}

/* SIGINT, SIGTERM or SIGHUP while start runs (or, with --block, while the node runs): what
 * this start started is stopped (and, before it ran, its session removed). */
static volatile sig_atomic_t cli__signal;

static void cli__on_signal(int sig)
{
    cli__signal = sig;
}

static void cli__catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = cli__on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

static int cli__interrupted(void)
{
    if (cli__signal)
        fprintf(stderr, "rayc start: interrupted (%s); stopping what this start started\n", strsignal(cli__signal));
    return cli__signal != 0;
}

/* Waits until session/<file> exists (0), the daemon exits (its exit status, >= 0 means it
 * died), a signal comes (RC_ECANCELED) or the time is up (RC_ETIMEDOUT). */
static int cli__wait_for_file(const char *session, const char *file, pid_t pid, int64_t timeout_ms, int *exit_status)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/%s", session, file);
    int64_t deadline = rc_mono_ms() + timeout_ms;
    while (rc_mono_ms() < deadline) {
        if (cli__signal)
            return RC_ECANCELED;
        if (access(path, R_OK) == 0)
            return 0;
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            *exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            return RC_ESTATE;
        }
        rc_sleep_ms(20);
    }
    return RC_ETIMEDOUT;
}

static void cli__kill_and_reap(pid_t pid)
{
    kill(pid, SIGTERM);
    for (int i = 0; i < 200; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return;
        rc_sleep_ms(25);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static void cli__strip_quotes(char *s)
{
    size_t n = strlen(s);
    if (n >= 2 && s[0] == '\'' && s[n - 1] == '\'') {
        memmove(s, s + 1, n - 2);
        s[n - 2] = '\0';
    }
}

/* ---- the command line ------------------------------------------------------------------ */

/* The options of `rayc start`. Rows with a section of raylet flags go to the node's raylet
 * as given (the raylet's own parser checks them first, raylet_options_parse). */
#define CLI__RAYLET "raylet flags (passed to this node's raylet)"
static const cli_opt cli__start_opts_table[] = {
    {"--head", NULL, NULL, NULL, "start a new cluster: its GCS and a raylet on this host", "what to start"},
    {"--address", NULL, "HOST:PORT", NULL, "join the cluster whose GCS is at HOST:PORT with a raylet", NULL},
    {"--port", NULL, "N", "6379", "the GCS's port (--head; 0: any free port)", NULL},
    {"--block", NULL, NULL, NULL, "stay in the foreground; a signal (Ctrl-C) stops this node's processes", NULL},
    {"--market", NULL, "FILE", NULL, "also run rayc-market with this config on the head (see 'rayc market')", NULL},
    {"--include-dashboard", NULL, "true|false", "true", "run rayc-dashboard (Jobs API, web UI) on the head",
     "dashboard (head)"},
    {"--dashboard-host", NULL, "IP", "the node IP", "address the dashboard listens on", NULL},
    {"--dashboard-port", NULL, "N", "8265", "the dashboard's port (0: any free port)", NULL},
    {"--redis-address", NULL, "HOST:PORT", "tables in memory", "keep the GCS's tables in this Redis (--head)",
     "GCS storage (head)"},
    {"--redis-password", NULL, "P", NULL, "Redis password (handed to the GCS in a 0600 file)", NULL},
    {"--redis-password-file", NULL, "FILE", NULL, "read the Redis password from the first line of FILE", NULL},
    {"--redis-username", NULL, "U", NULL, "Redis ACL user", NULL},
    {"--insecure", NULL, NULL, NULL, "plaintext, no credentials: loopback development only", "security"},
    {"--bind-all", NULL, NULL, NULL, "listen on every interface, not only the node IP", NULL},
    {"--join-token", NULL, "TOKEN", NULL, "join token printed by 'rayc start --head' or 'rayc token create'", NULL},
    {"--ca-cert-hash", NULL, "sha256:HEX", NULL, "pin of the cluster's CA, printed with the join token", NULL},
    {"--ca-cert", NULL, "FILE", NULL, "the cluster's CA certificate (instead of --ca-cert-hash)", NULL},
    {"--num-cpus", NULL, "N", "this host's CPUs", "CPUs this node offers", CLI__RAYLET},
    {"--num-gpus", NULL, "N", "the GPUs found", "GPUs this node offers", NULL},
    {"--accelerator-type", NULL, "T", "the GPUs' model", "accelerator type label (e.g. A100)", NULL},
    {"--gpu-memory", NULL, "SIZE", "as detected", "memory per GPU (80GiB, 24GB, ...)", NULL},
    {"--memory", NULL, "SIZE", "as detected", "memory tasks and actors may reserve", NULL},
    {"--object-store-memory", NULL, "SIZE", "30% of memory", "size of the shared-memory object store", NULL},
    {"--object-store-prefault", NULL, "true|false", "config object_store_prefault",
     "touch every page of the object store at start", NULL},
    {"--resources", NULL, "JSON", NULL, "custom resources, e.g. '{\"disk\": 4}'", NULL},
    {"--labels", NULL, "k=v,...", NULL, "node labels", NULL},
    {"--node-ip-address", NULL, "IP", "the address that reaches the GCS", "address other nodes use for this one",
     NULL},
    {"--node-manager-port", NULL, "N", "any free port", "the raylet's port", NULL},
    {"--metrics-export-port", NULL, "N", "any free port",
     "port of the raylet's Prometheus /metrics (cluster token)", NULL},
    {"--node-name", NULL, "NAME", "the node IP", "a name for this node", NULL},
    {"--worker-command", NULL, "PATH", "rayc-worker next to rayc-raylet", "program started as a C worker", NULL},
    {"--python-executable", NULL, "PATH", "$RAYC_PYTHON, else /usr/bin/python3", "interpreter of Python workers",
     NULL},
};

static const cli_spec cli__start_spec = {
    "rayc start",
    NULL,
    "Starts a cluster's head (--head: GCS and raylet; it creates the cluster's CA and admin\n"
    "token and prints the command that joins other hosts) or joins a cluster with a raylet\n"
    "(--address; on the head's host no token or hash is needed).",
    "Examples:\n"
    "  rayc start --head --port 6379 --num-cpus 8\n"
    "  rayc start --address 10.0.0.1:6379 --join-token T --ca-cert-hash sha256:H",
    CLI_SPEC_OPTS(cli__start_opts_table),
    0,
    0,
};

static int cli__parse_start(int argc, char **argv, cli__start_opts *o)
{
    memset(o, 0, sizeof(*o));
    cli_args a;
    int rc = cli_parse(&cli__start_spec, argc, argv, &a);
    if (rc != CLI_OK)
        return rc;
    long port;
    if (cli_arg_int(&a, "--port", 0, 65535, 6379, &port) != CLI_OK)
        return CLI_USAGE;
    o->port = (int)port;
    long dashboard_port;
    if (cli_arg_int(&a, "--dashboard-port", 0, 65535, 8265, &dashboard_port) != CLI_OK)
        return CLI_USAGE;
    o->dashboard_port = (int)dashboard_port;
    o->dashboard_host = cli_arg(&a, "--dashboard-host");
    const char *dash = cli_arg(&a, "--include-dashboard");
    if (dash && strcasecmp(dash, "true") && strcasecmp(dash, "false") && strcmp(dash, "1") && strcmp(dash, "0")) {
        fprintf(stderr, "rayc start: --include-dashboard needs true or false, not '%s'; see 'rayc start --help'\n",
                dash);
        return CLI_USAGE;
    }
    o->no_dashboard = dash && (!strcasecmp(dash, "false") || !strcmp(dash, "0"));
    o->head = !!cli_arg(&a, "--head");
    o->block = !!cli_arg(&a, "--block");
    o->insecure = !!cli_arg(&a, "--insecure");
    o->bind_all = !!cli_arg(&a, "--bind-all");
    o->market = cli_arg(&a, "--market");
    o->address = cli_arg(&a, "--address");
    o->redis = cli_arg(&a, "--redis-address");
    o->join_token = cli_arg(&a, "--join-token");
    o->ca_cert_hash = cli_arg(&a, "--ca-cert-hash");
    o->ca_cert_file = cli_arg(&a, "--ca-cert");
    o->redis_password = cli_arg(&a, "--redis-password");
    o->redis_password_file = cli_arg(&a, "--redis-password-file");
    o->redis_username = cli_arg(&a, "--redis-username");
    o->ip_flag = cli_arg(&a, "--node-ip-address");
    int raylet = 0;
    for (int i = 0; i < cli__start_spec.n_opts; i++) {
        const cli_opt *opt = &cli__start_spec.opts[i];
        raylet |= opt->section && !strcmp(opt->section, CLI__RAYLET);
        if (!raylet)
            continue;
        if (raylet_flag_arity(opt->name) != (opt->arg ? 1 : 0)) {
            fprintf(stderr, "rayc start: internal error: %s is not a raylet flag of that arity\n", opt->name);
            return CLI_FAIL;
        }
        if (!a.val[i])
            continue;
        o->raylet_args[o->n_raylet_args++] = (char *)opt->name;
        if (opt->arg)
            o->raylet_args[o->n_raylet_args++] = (char *)a.val[i];
    }
    return CLI_OK;
}

static int cli__check_start(const cli__start_opts *o)
{
    if (o->head == !!o->address) {
        fprintf(stderr, "rayc start: give either --head (start a new cluster) or --address HOST:PORT "
                        "(join one)\n");
        return CLI_USAGE;
    }
    if (!o->head && (o->redis || o->redis_password || o->redis_password_file || o->redis_username)) {
        fprintf(stderr, "rayc start: %s is for the head node (its GCS keeps state there)\n",
                o->redis ? "--redis-address" : o->redis_password ? "--redis-password"
                : o->redis_password_file ? "--redis-password-file" : "--redis-username");
        return CLI_USAGE;
    }
    if (o->redis_password && o->redis_password_file) {
        fprintf(stderr, "rayc start: give --redis-password or --redis-password-file, not both\n");
        return CLI_USAGE;
    }
    if ((o->redis_password || o->redis_password_file || o->redis_username) && !o->redis) {
        fprintf(stderr, "rayc start: a Redis password or user needs --redis-address\n");
        return CLI_USAGE;
    }
    if (o->market && (!o->head || o->insecure)) {
        fprintf(stderr, "rayc start: --market runs the market adapter on a secure head: it needs --head and "
                        "leases hosts with join tokens, so not --insecure\n");
        return CLI_USAGE;
    }
    if (o->head && (o->join_token || o->ca_cert_hash || o->ca_cert_file)) {
        fprintf(stderr, "rayc start: --join-token, --ca-cert-hash and --ca-cert are for joining a cluster "
                        "(with --address); a head creates its cluster's credentials\n");
        return CLI_USAGE;
    }
    if (o->insecure && (o->join_token || o->ca_cert_hash || o->ca_cert_file)) {
        fprintf(stderr, "rayc start: --insecure joins a development cluster without credentials; drop "
                        "--join-token, --ca-cert-hash and --ca-cert\n");
        return CLI_USAGE;
    }
    if (o->ca_cert_hash && o->ca_cert_file) {
        fprintf(stderr, "rayc start: give --ca-cert-hash or --ca-cert, not both\n");
        return CLI_USAGE;
    }
    if (o->ca_cert_hash && !gcs_auth_pin_valid(o->ca_cert_hash)) {
        fprintf(stderr, "rayc start: --ca-cert-hash needs sha256:<64 hex digits>, as `rayc start --head` "
                        "prints it, not '%.80s'\n", o->ca_cert_hash);
        return CLI_USAGE;
    }
    char id[AUTH_TOKEN_ID_HEX + 1], hash[65];
    if (o->join_token && auth_join_token_parse(o->join_token, id, hash) < 0) {
        fprintf(stderr, "rayc start: --join-token needs a token as `rayc start --head` or `rayc token create` "
                        "prints it (<16 hex digits>.<32 hex digits>), not '%.80s'\n", o->join_token);
        return CLI_USAGE;
    }
    if (o->redis) {
        const char *colon = strrchr(o->redis, ':');
        if (!colon || colon == o->redis || atoi(colon + 1) <= 0) {
            fprintf(stderr, "rayc start: --redis-address needs HOST:PORT, not '%s'\n", o->redis);
            return CLI_USAGE;
        }
    }
    raylet_options check;
    char err[512];
    int rc = raylet_options_parse(&check, o->n_raylet_args, (char **)o->raylet_args, 0, err, sizeof(err));
    raylet_options_free(&check);
    if (rc < 0) {
        fprintf(stderr, "rayc start: %s\n", err);
        return CLI_USAGE;
    }
    return CLI_OK;
}

/* ---- joining ------------------------------------------------------------------------------ */

/* The credentials a node joining gcs_address uses, found or made before anything starts, and
 * the fail-fast check that the address is that cluster's GCS. */
static int cli__join_credentials(const cli__start_opts *o, const char *gcs_address, cli__join *j)
{
    int rc;
    char err[1024] = "";
    memset(j, 0, sizeof(*j));
    if (cli_probe_address(gcs_address, CLI__PIN_TIMEOUT_MS, err, sizeof(err)) < 0) {
        fprintf(stderr, "rayc start: %s: is the cluster running, and is this its address?\n", err);
        return CLI_FAIL;
    }
    if (o->insecure) {
        rpc_security sec = {.insecure = 1};
        rpc_security_set(&sec, NULL, 0);
        cli_security_chosen();
        cli_conn c;
        rc = cli_connect(&c, gcs_address);
        if (rc == CLI_OK)
            cli_disconnect(&c);
        return rc;
    }
    if (o->ca_cert_file) {
        if (auth_read_file(o->ca_cert_file, &j->ca_pem) < 0) {
            fprintf(stderr, "rayc start: cannot read --ca-cert %s\n", o->ca_cert_file);
            return CLI_USAGE;
        }
    }
    /* The head's credentials, if this is its host (or RAYC_CA_CERT/RAYC_AUTH_TOKEN name them);
     * they count only if they are this cluster's. */
    char where[1024] = "", pin_found[AUTH_CA_HASH_MAX] = "", pin_given[AUTH_CA_HASH_MAX] = "";
    if (gcs_admin_creds_find(&j->admin, where, sizeof(where)) == 0) {
        j->have_admin = auth_ca_hash(j->admin.ca_cert_pem, pin_found, sizeof(pin_found)) == 0;
        if (j->ca_pem && auth_ca_hash(j->ca_pem, pin_given, sizeof(pin_given)) == 0 &&
            !auth_ca_hash_equal(pin_found, pin_given))
            j->have_admin = 0;
        if (o->ca_cert_hash && !auth_ca_hash_equal(pin_found, o->ca_cert_hash))
            j->have_admin = 0;
        if (!j->have_admin)
            gcs_admin_creds_free(&j->admin);
    }
    if (!o->join_token && !j->have_admin && gcs_auth_latest_session_insecure(gcs_address)) {
        fprintf(stderr, "rayc start: the cluster at %s was started with --insecure; join it with --insecure\n",
                gcs_address);
        return CLI_USAGE;
    }
    if (!o->join_token && !j->have_admin) {
        fprintf(stderr,
                "rayc start: joining a cluster needs --join-token <token> and --ca-cert-hash sha256:<hash>, "
                "both printed by `rayc start --head` (`rayc token create` on the head makes more tokens).\n"
                "On the head's own host they are not needed, but its credentials were not found here: %s\n",
                where[0] ? where : "they are of another cluster");
        return CLI_USAGE;
    }
    if (!j->ca_pem && !o->ca_cert_hash && !j->have_admin) {
        fprintf(stderr, "rayc start: --join-token needs --ca-cert-hash sha256:<hash> (printed with the token "
                        "by `rayc start --head`), so that this node knows the cluster's CA before it trusts it\n");
        return CLI_USAGE;
    }
    if (!j->ca_pem && j->have_admin)
        j->ca_pem = rc_strdup(j->admin.ca_cert_pem);

    if (o->join_token) {
        /* No credential yet: the check is a TLS handshake whose CA must be the pinned one. */
        char pin[AUTH_CA_HASH_MAX];
        if (o->ca_cert_hash)
            snprintf(pin, sizeof(pin), "%s", o->ca_cert_hash);
        else if (auth_ca_hash(j->ca_pem, pin, sizeof(pin)) < 0) {
            fprintf(stderr, "rayc start: --ca-cert %s holds no certificate\n", o->ca_cert_file);
            return CLI_USAGE;
        }
        char *fetched = NULL;
        rc = gcs_auth_fetch_pinned_ca(gcs_address, pin, CLI__PIN_TIMEOUT_MS, &fetched, err, sizeof(err));
        if (rc < 0) {
            fprintf(stderr, "rayc start: %s: %s\n", err,
                    rc == RC_EAUTH ? "check --ca-cert-hash against what 'rayc start --head' printed"
                                   : "is the cluster running with security on (not --insecure), and is this its "
                                     "address?");
            return CLI_FAIL;
        }
        if (!j->ca_pem)
            j->ca_pem = fetched;
        else
            rc_free(fetched);
        j->token = rc_strdup(o->join_token);
        return CLI_OK;
    }
    /* The head's host: check the address with the admin's credentials, then make a token. */
    cli_conn c;
    rc = cli_connect(&c, gcs_address);
    if (rc != CLI_OK)
        return rc;
    cli_disconnect(&c);
    gcs_join_token_spec spec = {.ttl_seconds = CLI__LOCAL_TOKEN_TTL_S, .max_uses = 1};
    if (gcs_auth_create_join_token_sync(gcs_address, &j->admin, &spec, CLI__TOKEN_CALL_MS, &j->token, NULL, err,
                                        sizeof(err)) < 0) {
        fprintf(stderr, "rayc start: cannot make a join token for this node: %s\n", err);
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* ---- the head's GCS ------------------------------------------------------------------------ */

/* Starts rayc-gcs in session and waits until it serves; *port gets the port it bound. *pid
 * is the GCS's while it runs (the caller stops it if start fails), else -1. */
static int cli__start_gcs(const cli__start_opts *o, const char *bin, const char *session, const char *ip,
                          int *port, pid_t *pid)
{
    *pid = -1; /* until it runs: nothing to stop */
    char exe[PATH_MAX + 32], port_text[16], port_file[PATH_MAX + 32], pw_file[PATH_MAX + 32];
    snprintf(exe, sizeof(exe), "%s/rayc-gcs", bin);
    snprintf(port_text, sizeof(port_text), "%d", *port);
    snprintf(port_file, sizeof(port_file), "%s/gcs_port", session);
    char *argv[32];
    int n = 0;
    argv[n++] = exe;
    argv[n++] = "--port";
    argv[n++] = port_text;
    argv[n++] = "--port-file";
    argv[n++] = port_file;
    argv[n++] = "--host";
    argv[n++] = (char *)ip;
    argv[n++] = "--session-dir"; /* gcs_metrics_port and the metrics service discovery */
    argv[n++] = (char *)session;
    if (o->insecure) {
        argv[n++] = "--insecure";
    } else {
        argv[n++] = "--auth-dir";
        argv[n++] = (char *)session;
    }
    if (o->bind_all)
        argv[n++] = "--bind-all";
    if (o->redis) {
        argv[n++] = "--redis-address";
        argv[n++] = (char *)o->redis;
    }
    if (o->redis_password) {
        /* Handed over in a 0600 file, not on the GCS's command line, which every local user
         * can read in /proc. */
        snprintf(pw_file, sizeof(pw_file), "%s/redis_password", session);
        if (auth_write_secret(pw_file, o->redis_password) < 0) {
            fprintf(stderr, "rayc start: cannot write %s\n", pw_file);
            return CLI_FAIL;
        }
        argv[n++] = "--redis-password-file";
        argv[n++] = pw_file;
    } else if (o->redis_password_file) {
        argv[n++] = "--redis-password-file";
        argv[n++] = (char *)o->redis_password_file;
    }
    if (o->redis_username) {
        argv[n++] = "--redis-username";
        argv[n++] = (char *)o->redis_username;
    }
    argv[n] = NULL;
    if (rc_spawn_daemon(session, "gcs_server", exe, argv, pid) < 0) {
        fprintf(stderr, "rayc start: cannot run %s: %s; is rayc installed whole?\n", exe, strerror(errno));
        *pid = -1;
        return CLI_FAIL;
    }
    int status = 0;
    int rc = cli__wait_for_file(session, "gcs_port", *pid, CLI__GCS_WAIT_MS, &status);
    if (rc < 0) {
        char why[512];
        if (rc == RC_ECANCELED) {
            cli__interrupted();
            return CLI_FAIL;
        } else if (rc == RC_ETIMEDOUT) {
            fprintf(stderr, "rayc start: the GCS did not start serving within %d s; see its log below\n",
                    CLI__GCS_WAIT_MS / 1000);
        } else {
            *pid = -1; /* reaped */
            if (cli__daemon_reason(session, "gcs_server", "rayc-gcs: ", why, sizeof(why)))
                fprintf(stderr, "rayc start: the GCS did not start: %s\n", why);
            else
                fprintf(stderr, "rayc start: the GCS exited with status %d; see its log below\n", status);
        }
        cli__print_log_tail(session, "gcs_server");
        return CLI_FAIL;
    }
    char bound[32];
    if (rc_session_read(session, "gcs_port", bound, sizeof(bound)) == 0 && atoi(bound) > 0)
        *port = atoi(bound); /* --port 0 asked for any free port */
    return CLI_OK;
}

/* The admin's credentials from the head's session and a single-use token for its raylet. */
static int cli__head_credentials(const char *session, const char *gcs_address, cli__join *j)
{
    char err[1024];
    memset(j, 0, sizeof(*j));
    if (gcs_admin_creds_from_dir(session, CLI__GCS_WAIT_MS, &j->admin, err, sizeof(err)) < 0) {
        fprintf(stderr, "rayc start: %s\n", err);
        cli__print_log_tail(session, "gcs_server");
        return CLI_FAIL;
    }
    j->have_admin = 1;
    j->ca_pem = rc_strdup(j->admin.ca_cert_pem);
    gcs_join_token_spec spec = {.ttl_seconds = CLI__LOCAL_TOKEN_TTL_S, .max_uses = 1};
    if (gcs_auth_create_join_token_sync(gcs_address, &j->admin, &spec, CLI__TOKEN_CALL_MS, &j->token, NULL, err,
                                        sizeof(err)) < 0) {
        fprintf(stderr, "rayc start: cannot make a join token for the head's raylet: %s\n", err);
        cli__print_log_tail(session, "gcs_server");
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* Says why the head's GCS could not listen where it is asked to, before anything starts. */
static int cli__check_port(const cli__start_opts *o, const char *ip)
{
    int err = rc_net_try_bind(o->bind_all ? NULL : ip, o->port);
    if (err == EADDRINUSE && o->port != 0) {
        fprintf(stderr,
                "rayc start: port %d on %s is in use (another rayc cluster, or a Redis?): pass --port with a free "
                "port (--port 0: any free port), or stop what listens there ('rayc stop' for a rayc cluster)\n",
                o->port, o->bind_all ? "every interface" : ip);
        return CLI_FAIL;
    }
    if (err == EADDRNOTAVAIL) {
        fprintf(stderr, "rayc start: %s is not an address of this host: pass --node-ip-address with one of its "
                        "addresses\n", ip);
        return CLI_FAIL;
    }
    return CLI_OK; /* anything else: the GCS itself says what is wrong */
}

/* ---- start ----------------------------------------------------------------------------- */

/* 1 if session_latest is the live head of the cluster at gcs_address: a node joining from
 * the head's own host leaves the link there, since clients on this host (`rayc job`,
 * `rayc status`, the admin credentials) want the head's session, of the same cluster. */
static int cli__latest_is_live_head(const char *gcs_address)
{
    char root[PATH_MAX], link[PATH_MAX + 32], latest[PATH_MAX], addr[400], pid_file[PATH_MAX + 32];
    rc_session_root(root, sizeof(root));
    snprintf(link, sizeof(link), "%s/session_latest", root);
    if (!realpath(link, latest) || rc_session_read(latest, "gcs_address", addr, sizeof(addr)) < 0 ||
        strcmp(addr, gcs_address) != 0)
        return 0;
    snprintf(pid_file, sizeof(pid_file), "%s/pids/gcs_server.pid", latest);
    return rc_pid_file_alive(pid_file);
}

static void cli__print_started(const cli__start_opts *o, const char *ip, const char *session,
                               const char *gcs_address, const cli__join *j)
{
    printf("Local node IP: %s\n", ip);
    printf("Session: %s\n\n", session);
    printf("--------------------\nrayc runtime started.\n--------------------\n\n");
    printf("Next steps\n");
    if (o->head && o->insecure) {
        printf("  To add another node to this cluster, run\n    rayc start --address='%s' --insecure\n\n",
               gcs_address);
        printf("  To connect to this cluster from a program, set RAYC_ADDRESS=%s RAYC_INSECURE=1\n\n", gcs_address);
    } else if (o->head) {
        printf("  To add another node to this cluster, run on this host\n    rayc start --address='%s'\n", gcs_address);
        printf("  or on any other host\n");
        char err[1024], command[1024];
        char *token = NULL;
        gcs_join_token_spec spec = {.ttl_seconds = CLI__JOIN_TOKEN_TTL_S, .max_uses = 0};
        if (gcs_auth_create_join_token_sync(gcs_address, &j->admin, &spec, CLI__TOKEN_CALL_MS, &token, NULL, err,
                                            sizeof(err)) == 0 &&
            gcs_auth_join_command(gcs_address, token, j->ca_pem, command, sizeof(command)) == 0) {
            printf("    %s\n", command);
            printf("  (that join token works on any number of hosts for 24 hours; `rayc token create` makes\n"
                   "  others, `rayc token revoke` withdraws one)\n\n");
        } else {
            printf("    (no join token could be made: %s; make one with `rayc token create`)\n\n", err);
        }
        gcs_admin_creds shown = {.token = token}; /* wiped as it is freed */
        gcs_admin_creds_free(&shown);
        printf("  To connect to this cluster from a program, set RAYC_ADDRESS=%s\n", gcs_address);
        printf("  The admin token is in %s/" GCS_AUTH_TOKEN_FILE " (mode 0600); `rayc get-auth-token` prints it\n"
               "  and `rayc get-ca-cert` the cluster's CA certificate, for clients on other hosts\n"
               "  (RAYC_AUTH_TOKEN, RAYC_CA_CERT).\n\n",
               session);
    }
    printf("  To see the status of the cluster, use\n    rayc status\n\n");
    printf("  To terminate the rayc runtime, run\n    rayc stop\n");
    fflush(stdout);
}

/* What a node keeps in its session once it runs: the CA (clients check the cluster with it),
 * the admin token on the head's host, or the mark of an insecure cluster. */
static void cli__keep_credentials(const cli__start_opts *o, const char *session, const cli__join *j)
{
    char path[PATH_MAX + 64];
    if (o->insecure) {
        rc_session_write(session, GCS_AUTH_INSECURE_FILE, "");
        return;
    }
    snprintf(path, sizeof(path), "%s/" GCS_AUTH_CA_CERT_FILE, session);
    if (j->ca_pem && access(path, F_OK) != 0 && auth_write_secret(path, j->ca_pem) < 0)
        fprintf(stderr, "rayc start: warning: cannot write %s\n", path);
    snprintf(path, sizeof(path), "%s/" GCS_AUTH_TOKEN_FILE, session);
    if (!o->head && j->have_admin && auth_write_secret(path, j->admin.token) < 0)
        fprintf(stderr, "rayc start: warning: cannot write %s\n", path);
}

static void cli__warn_insecure(void)
{
    fprintf(stderr,
            "\n"
            "WARNING: --insecure: this node speaks plaintext and asks no credential. Anyone who can\n"
            "WARNING: reach its ports can run code on it as this user and change the cluster.\n"
            "WARNING: Use it for loopback development only (--node-ip-address 127.0.0.1).\n"
            "\n");
}

int cli_cmd_start(int argc, char **argv)
{
    cli__start_opts o;
    int rc = cli__parse_start(argc, argv, &o);
    if (rc == CLI_OK)
        rc = cli__check_start(&o);
    if (rc != CLI_OK)
        return CLI_PARSED_EXIT(rc);
    if (o.insecure)
        cli__warn_insecure();

    char gcs_address[300];
    char ip[64];
    cli__join join = {0};
    if (o.address) {
        snprintf(gcs_address, sizeof(gcs_address), "%s", o.address);
        cli__strip_quotes(gcs_address);
        if (!strchr(gcs_address, ':')) {
            fprintf(stderr, "rayc start: the address '%s' is not HOST:PORT\n", gcs_address);
            return CLI_USAGE;
        }
        /* Fail fast with a clear message rather than leave a raylet retrying for a minute. */
        if ((rc = cli__join_credentials(&o, gcs_address, &join)) != CLI_OK) {
            cli__join_free(&join);
            return rc;
        }
        if (o.ip_flag)
            snprintf(ip, sizeof(ip), "%s", o.ip_flag);
        else if (rc_net_local_ip_for(gcs_address, ip, sizeof(ip)) < 0)
            snprintf(ip, sizeof(ip), "127.0.0.1");
    } else if (o.ip_flag) {
        snprintf(ip, sizeof(ip), "%s", o.ip_flag);
    } else {
        rc_net_primary_ip(ip, sizeof(ip));
    }

    if (o.head && cli__check_port(&o, ip) != CLI_OK) {
        cli__join_free(&join);
        return CLI_FAIL;
    }
    cli_sweep();
    char bin[PATH_MAX], session[PATH_MAX];
    if (rc_exe_dir(bin, sizeof(bin)) < 0) {
        fprintf(stderr, "rayc start: cannot find the directory of the rayc executables\n");
        cli__join_free(&join);
        return CLI_FAIL;
    }
    cli__catch_signals();
    if (rc_session_new(session, sizeof(session)) < 0) {
        char root[PATH_MAX];
        rc_session_root(root, sizeof(root));
        fprintf(stderr, "rayc start: cannot create a session directory under %s: %s\n", root, strerror(errno));
        cli__join_free(&join);
        return CLI_FAIL;
    }

    cli__daemon daemons[3];
    int n_daemons = 0, status = 0;
    if (o.head) {
        pid_t pid;
        int port = o.port;
        rc = cli__start_gcs(&o, bin, session, ip, &port, &pid);
        daemons[n_daemons++] = (cli__daemon){"gcs_server", pid};
        if (rc != CLI_OK)
            goto failed;
        snprintf(gcs_address, sizeof(gcs_address), "%s:%d", ip, port);
        if (!o.insecure && (rc = cli__head_credentials(session, gcs_address, &join)) != CLI_OK)
            goto failed;
    }
    if (cli__interrupted()) {
        rc = CLI_FAIL;
        goto failed;
    }

    /* The raylet's CA: the pin as given, else the CA file it reads from the session. */
    char ca_path[PATH_MAX + 64];
    snprintf(ca_path, sizeof(ca_path), "%s/" GCS_AUTH_CA_CERT_FILE, session);
    if (!o.insecure && !o.head && !o.ca_cert_hash && auth_write_secret(ca_path, join.ca_pem) < 0) {
        fprintf(stderr, "rayc start: cannot write %s: %s\n", ca_path, strerror(errno));
        rc = CLI_FAIL;
        goto failed;
    }

    char exe[PATH_MAX + 32], ready_file[PATH_MAX + 32];
    snprintf(exe, sizeof(exe), "%s/rayc-raylet", bin);
    snprintf(ready_file, sizeof(ready_file), "%s/raylet_ready.json", session);
    char *r_argv[CLI__MAX_ARGS + 24];
    int n = 0;
    r_argv[n++] = exe;
    r_argv[n++] = "--gcs-address";
    r_argv[n++] = gcs_address;
    r_argv[n++] = "--ready-file";
    r_argv[n++] = ready_file;
    r_argv[n++] = "--session-dir";
    r_argv[n++] = session;
    if (o.head)
        r_argv[n++] = "--head";
    if (!o.ip_flag) {
        r_argv[n++] = "--node-ip-address";
        r_argv[n++] = ip;
    }
    if (o.insecure) {
        r_argv[n++] = "--insecure";
    } else {
        r_argv[n++] = "--join-token";
        r_argv[n++] = join.token;
        if (o.ca_cert_hash && !o.head) {
            r_argv[n++] = "--ca-cert-hash";
            r_argv[n++] = (char *)o.ca_cert_hash;
        } else {
            r_argv[n++] = "--ca-cert";
            r_argv[n++] = ca_path;
        }
        r_argv[n++] = "--auth-dir";
        r_argv[n++] = session;
    }
    if (o.bind_all)
        r_argv[n++] = "--bind-all";
    for (int i = 0; i < o.n_raylet_args; i++)
        r_argv[n++] = o.raylet_args[i];
    r_argv[n] = NULL;
    pid_t raylet_pid;
    if (rc_spawn_daemon(session, "raylet", exe, r_argv, &raylet_pid) < 0) {
        fprintf(stderr, "rayc start: cannot run %s: %s; is rayc installed whole?\n", exe, strerror(errno));
        rc = CLI_FAIL;
        goto failed;
    }
    daemons[n_daemons++] = (cli__daemon){"raylet", raylet_pid};
    rc = cli__wait_for_file(session, "raylet_ready.json", raylet_pid, CLI__RAYLET_WAIT_MS, &status);
    if (rc < 0) {
        char why[512];
        if (rc == RC_ECANCELED) {
            cli__interrupted();
            rc = CLI_FAIL;
            goto failed;
        } else if (rc == RC_ETIMEDOUT) {
            fprintf(stderr, "rayc start: the raylet did not register within %d s; see its log below\n",
                    CLI__RAYLET_WAIT_MS / 1000);
        } else {
            daemons[n_daemons - 1].pid = -1; /* reaped */
            if (cli__daemon_reason(session, "raylet", "rayc-raylet: ", why, sizeof(why)))
                fprintf(stderr, "rayc start: the raylet did not start: %s\n", why);
            else
                fprintf(stderr, "rayc start: the raylet exited with status %d; see its log below\n", status);
        }
        cli__print_log_tail(session, "raylet");
        rc = CLI_FAIL;
        goto failed;
    }
    char line[400];
    snprintf(line, sizeof(line), "%s\n", gcs_address);
    rc_session_write(session, "gcs_address", line);
    cli__keep_credentials(&o, session, &join);
    /* Only now: a start that failed leaves clients with the session (and credentials) they had. */
    int head_stays_latest = !o.head && cli__latest_is_live_head(gcs_address);
    if (!head_stays_latest && rc_session_set_latest(session) < 0)
        fprintf(stderr, "rayc start: warning: cannot point session_latest at %s\n", session);
    cli__print_started(&o, ip, session, gcs_address, &join);
    cli__join_free(&join);
    /* The dashboard (Jobs API) on the head; a cluster whose dashboard cannot start still runs,
     * as Ray's does. */
    pid_t dashboard_pid;
    if (o.head && !o.no_dashboard &&
        cli_dashboard_start(session, gcs_address, o.dashboard_host ? o.dashboard_host : o.bind_all ? "0.0.0.0" : ip,
                            o.dashboard_port, &dashboard_pid) == CLI_OK)
        daemons[n_daemons++] = (cli__daemon){"dashboard", dashboard_pid};
    if (o.market && cli_market_start(o.market, gcs_address) != CLI_OK) {
        fprintf(stderr, "rayc start: the cluster runs, but the market did not start (see above); fix the config "
                        "and run `rayc market start --config FILE`\n");
        return CLI_FAIL;
    }

    if (!o.block)
        return CLI_OK;
    /* --block: stay in the foreground; a signal here stops the daemons of this start. */
    while (!cli__signal) {
        int alive = 0;
        for (int i = 0; i < n_daemons; i++)
            if (daemons[i].pid > 0 && waitpid(daemons[i].pid, NULL, WNOHANG) == 0)
                alive++;
            else
                daemons[i].pid = -1;
        if (!alive) {
            fprintf(stderr, "rayc start: every process of this node has exited\n");
            return CLI_FAIL;
        }
        rc_sleep_ms(200);
    }
    for (int i = n_daemons; i-- > 0;)
        if (daemons[i].pid > 0)
            cli__kill_and_reap(daemons[i].pid);
    return CLI_OK;

failed:
    /* Nothing of a failed start stays: its processes, then its session (logs, pid files,
     * sockets, credentials). */
    for (int i = n_daemons; i-- > 0;)
        if (daemons[i].pid > 0)
            cli__kill_and_reap(daemons[i].pid);
    cli__join_free(&join);
    cli__remove_tree(session);
    fprintf(stderr, "rayc start: nothing was left running; the session %s was removed\n", session);
    return rc;
}
