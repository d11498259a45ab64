/*
 * rayc market start|status|offers|stop: the market adapter (ARCHITECTURE §9) for admins.
 *
 * start runs rayc-market as a daemon of the latest session on this host (the head's) and
 * waits until it says it runs, or prints why it did not. status and offers read what the
 * market keeps in the GCS's KV (namespace "market": "status" and "offers", JSON it rewrites
 * every round), so they work from any host with the admin's credentials and show the last
 * state even while the market is down. stop signals the market processes of this host:
 * SIGTERM leaves the leased hosts running (a new market adopts them), --release-all
 * (SIGUSR2) releases every lease first and waits for that.
 *
 * Main thread only.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli_int.h"
#include "rc_alloc.h"
#include "rc_buf.h"
#include "rc_err.h"
#include "rc_json.h"
#include "rc_session.h"
#include "rc_time.h"

enum {
    CLI__MARKET_START_MS = 20000,
    CLI__MARKET_STOP_MS = 15000,
    CLI__MARKET_RELEASE_MS = 120000,
};

/* The latest session directory (the head's on the head's host). */
static int cli__latest_session(char *out, size_t outlen)
{
    char root[PATH_MAX], link[PATH_MAX + 32];
    rc_session_root(root, sizeof(root));
    snprintf(link, sizeof(link), "%s/session_latest", root);
    if (!realpath(link, out) || strlen(out) >= outlen)
        return RC_ENOENT;
    return 0;
}

int cli_market_start(const char *config, const char *address)
{
    char session[PATH_MAX];
    if (cli__latest_session(session, sizeof(session)) < 0) {
        fprintf(stderr, "rayc market start: no cluster was started on this host; run `rayc start --head` first\n");
        return CLI_FAIL;
    }
    char cfg[PATH_MAX];
    if (!realpath(config, cfg)) {
        fprintf(stderr, "rayc market start: cannot read the config %s: %s\n", config, strerror(errno));
        return CLI_USAGE;
    }
    char dir[PATH_MAX], exe[PATH_MAX + 32], state[PATH_MAX + 32];
    if (rc_exe_dir(dir, sizeof(dir)) < 0) {
        fprintf(stderr, "rayc market start: cannot find the directory of rayc\n");
        return CLI_FAIL;
    }
    snprintf(exe, sizeof(exe), "%s/rayc-market", dir);
    snprintf(state, sizeof(state), "%s/market", session);
    char pid_text[32];
    if (rc_session_read(session, "pids/market.pid", pid_text, sizeof(pid_text)) == 0 &&
        rc_pid_is_rayc((pid_t)atoi(pid_text))) {
        fprintf(stderr, "rayc market start: a market already runs for this cluster (pid %s); `rayc market stop` "
                        "first\n",
                pid_text);
        return CLI_FAIL;
    }
    char *argv[10];
    int n = 0;
    argv[n++] = exe;
    argv[n++] = "--config";
    argv[n++] = cfg;
    argv[n++] = "--state-dir";
    argv[n++] = state;
    if (address) {
        argv[n++] = "--address";
        argv[n++] = (char *)address;
    }
    argv[n] = NULL;
    pid_t pid;
    if (rc_spawn_daemon(session, "market", exe, argv, &pid) < 0) {
        fprintf(stderr, "rayc market start: cannot run %s: %s\n", exe, strerror(errno));
        return CLI_FAIL;
    }
    char out_log[PATH_MAX + 32], err_log[PATH_MAX + 32], tail[2048];
    snprintf(out_log, sizeof(out_log), "%s/logs/market.out", session);
    snprintf(err_log, sizeof(err_log), "%s/logs/market.err", session);
    int64_t deadline = rc_mono_ms() + CLI__MARKET_START_MS;
    while (rc_mono_ms() < deadline) {
        rc_file_tail(out_log, tail, sizeof(tail));
        if (strstr(tail, "rayc-market: running")) {
            printf("rayc market: started (pid %d, config %s); `rayc market status` shows what it does\n", (int)pid, cfg);
            return CLI_OK;
        }
        /* The market is this process's child until it exits (its name is not rayc-market
         * until it has exec'd, so ask waitpid, not /proc). */
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            rc_file_tail(err_log, tail, sizeof(tail));
            /* Its status too: a market killed by a signal leaves no words in its log. */
            if (WIFSIGNALED(status))
                fprintf(stderr, "rayc market start: the market was killed by signal %d (%s):\n%s", WTERMSIG(status),
                        strsignal(WTERMSIG(status)), tail);
            else
                fprintf(stderr, "rayc market start: the market exited with status %d:\n%s", WEXITSTATUS(status), tail);
            return CLI_FAIL;
        }
        rc_sleep_ms(50);
    }
    fprintf(stderr, "rayc market start: the market did not report running within %d s (see %s)\n",
            CLI__MARKET_START_MS / 1000, err_log);
    return CLI_FAIL;
}

/* Signals every rayc-market of this host and waits until they are gone. */
static int cli__market_stop(int release_all)
{
    char root[PATH_MAX];
    rc_session_root(root, sizeof(root));
    DIR *d = opendir(root);
    pid_t pids[64];
    size_t n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) && n < 64) {
        if (strncmp(e->d_name, "session_", 8) || !strcmp(e->d_name, "session_latest"))
            continue;
        char session[PATH_MAX + 300], text[32];
        snprintf(session, sizeof(session), "%s/%s", root, e->d_name);
        if (rc_session_read(session, "pids/market.pid", text, sizeof(text)) == 0 && rc_pid_is_rayc((pid_t)atoi(text)))
            pids[n++] = (pid_t)atoi(text);
    }
    if (d)
        closedir(d);
    if (!n) {
        printf("rayc market: no market runs on this host\n");
        return CLI_OK;
    }
    for (size_t i = 0; i < n; i++)
        kill(pids[i], release_all ? SIGUSR2 : SIGTERM);
    if (release_all)
        printf("rayc market: releasing every leased host...\n");
    int64_t deadline = rc_mono_ms() + (release_all ? CLI__MARKET_RELEASE_MS : CLI__MARKET_STOP_MS);
    for (;;) {
        size_t left = 0;
        for (size_t i = 0; i < n; i++)
            left += rc_pid_is_rayc(pids[i]);
        if (!left)
            break;
        if (rc_mono_ms() >= deadline) {
            fprintf(stderr, "rayc market stop: the market did not stop in time; `rayc stop` ends it\n");
            return CLI_FAIL;
        }
        rc_sleep_ms(100);
    }
    printf("rayc market: stopped%s\n", release_all ? "; every lease released" : "; leased hosts keep running");
    return CLI_OK;
}

/* Reads key of the market's KV namespace into *out (rc_free). */
static int cli__market_read(cli_conn *c, const char *key, char **out, size_t *len)
{
    Ray__Rpc__InternalKVGetRequest req = RAY__RPC__INTERNAL_KVGET_REQUEST__INIT;
    req.namespace_.data = (uint8_t *)"market";
    req.namespace_.len = 6;
    req.key.data = (uint8_t *)key;
    req.key.len = strlen(key);
    ProtobufCMessage *reply = NULL;
    char err[512];
    int code = rpc_client_call_sync(gcs_client_rpc(c->gcs), &ray__rpc__internal_kvgcs_service__descriptor,
                                    "InternalKVGet", &req.base, 10000, &reply, err, sizeof(err));
    if (code != 0) {
        fprintf(stderr, "rayc market: cannot read the market's records: %s\n", err);
        return CLI_FAIL;
    }
    const Ray__Rpc__InternalKVGetReply *r = (const void *)reply;
    if (gcs_reply_status(reply, NULL) != GCS_STATUS_OK || !r->value.len) {
        rpc_msg_free(reply);
        fprintf(stderr, "rayc market: no market has run on this cluster yet; start one with `rayc market start "
                        "--config FILE`\n");
        return CLI_FAIL;
    }
    *out = rc_malloc(r->value.len + 1);
    memcpy(*out, r->value.data, r->value.len);
    (*out)[r->value.len] = '\0';
    *len = r->value.len;
    rpc_msg_free(reply);
    return CLI_OK;
}

static const char *cli__s(const rc_json *o, const char *key)
{
    const rc_json *v = rc_json_get(o, key);
    return v && v->type == RC_JSON_STRING ? v->str : "";
}

static double cli__n(const rc_json *o, const char *key)
{
    const rc_json *v = rc_json_get(o, key);
    return v && v->type == RC_JSON_NUMBER ? v->number : 0;
}

static int cli__b(const rc_json *o, const char *key)
{
    const rc_json *v = rc_json_get(o, key);
    return v && v->type == RC_JSON_BOOL && v->boolean;
}

static void cli__print_status(const rc_json *s)
{
    printf("======== Market status ========\n");
    double bph = cli__n(s, "budget_per_hour"), bt = cli__n(s, "budget_total");
    printf("Spend: $%.4f/h of ", cli__n(s, "spend_per_hour"));
    if (bph > 0)
        printf("$%.2f/h", bph);
    else
        printf("no hourly cap");
    printf(" (reserved $%.4f/h); $%.4f in total of ", cli__n(s, "reserved_per_hour"), cli__n(s, "spend_total"));
    if (bt > 0)
        printf("$%.2f\n", bt);
    else
        printf("no total cap\n");
    if (!cli__b(s, "gcs_reachable"))
        printf("The market could not reach the GCS at its last round.\n");
    const rc_json *a = rc_json_get(s, "providers");
    printf("\nProviders:\n");
    for (size_t i = 0; a && i < a->n_items; i++) {
        const rc_json *p = &a->items[i];
        printf(" %s (%s): %s, %g offers%s%s\n", cli__s(p, "name"), cli__s(p, "type"),
               cli__b(p, "reachable") ? "reachable" : "UNREACHABLE", cli__n(p, "offers"), *cli__s(p, "error") ? ": " : "",
               cli__s(p, "error"));
    }
    a = rc_json_get(s, "leases");
    printf("\nLeases:\n");
    if (!a || !a->n_items)
        printf(" (none)\n");
    for (size_t i = 0; a && i < a->n_items; i++) {
        const rc_json *l = &a->items[i];
        printf(" %-20s %-10s %-16s %-18s $%.3f/h  spent $%.4f  %s%s%s\n", cli__s(l, "lease_id"), cli__s(l, "provider"),
               cli__s(l, "offer_id"), cli__s(l, "state"), cli__n(l, "price_per_hour"), cli__n(l, "spend"),
               cli__b(l, "verified") ? "verified" : "unverified", *cli__s(l, "reason") ? ": " : "", cli__s(l, "reason"));
    }
    a = rc_json_get(s, "pending");
    printf("\nPending demand the market cannot serve:\n");
    if (!a || !a->n_items)
        printf(" (none)\n");
    for (size_t i = 0; a && i < a->n_items; i++)
        printf(" %s x %g%s: %s\n", cli__s(&a->items[i], "shape"), cli__n(&a->items[i], "count"),
               cli__b(&a->items[i], "gang") ? " (placement group)" : "", cli__s(&a->items[i], "reason"));
    a = rc_json_get(s, "verifications");
    printf("\nVerifications:\n");
    if (!a || !a->n_items)
        printf(" (none)\n");
    for (size_t i = 0; a && i < a->n_items; i++)
        printf(" %s (%s): %s, %s\n", cli__s(&a->items[i], "lease_id"), cli__s(&a->items[i], "offer_class"),
               cli__b(&a->items[i], "passed") ? "passed" : "FAILED", cli__s(&a->items[i], "detail"));
    a = rc_json_get(s, "failures");
    printf("\nRecent failures:\n");
    if (!a || !a->n_items)
        printf(" (no failures)\n");
    for (size_t i = 0; a && i < a->n_items; i++)
        printf(" %s/%s: %s\n", cli__s(&a->items[i], "provider"), cli__s(&a->items[i], "offer_id"),
               cli__s(&a->items[i], "reason"));
    a = rc_json_get(s, "failure_memory");
    printf("\nFailure memory (score; a class is tried again once it decays):\n");
    if (!a || !a->n_items)
        printf(" (empty)\n");
    for (size_t i = 0; a && i < a->n_items; i++)
        printf(" %s: %.3f\n", cli__s(&a->items[i], "key"), cli__n(&a->items[i], "score"));
    a = rc_json_get(s, "decisions");
    printf("\nRecent decisions:\n");
    if (!a || !a->n_items)
        printf(" (none)\n");
    for (size_t i = 0; a && i < a->n_items; i++)
        printf(" - %s\n", cli__s(&a->items[i], "text"));
}

static void cli__print_offers(const rc_json *a)
{
    printf("%-10s %-16s %-12s %5s %6s %5s %8s %9s %11s %6s  %s\n", "PROVIDER", "OFFER", "GPU", "GPUS", "GPUMEM",
           "CPUS", "$/HOUR", "REGION", "EFFECTIVE", "SCORE", "ELIGIBLE");
    for (size_t i = 0; i < a->n_items; i++) {
        const rc_json *o = &a->items[i];
        const char *gpu = cli__s(o, "gpu_name");
        printf("%-10s %-16s %-12s %5g %6g %5g %8.3f %9s %11.4f %6.2f  %s%s%s\n", cli__s(o, "provider"), cli__s(o, "id"),
               *gpu ? gpu : "-", cli__n(o, "num_gpus"), cli__n(o, "gpu_memory"), cli__n(o, "num_cpus"),
               cli__n(o, "price_per_hour"), cli__s(o, "region"), cli__n(o, "effective_cost"), cli__n(o, "score"),
               rc_json_get(o, "eligible") ? (cli__b(o, "eligible") ? "yes" : "no") : "?", *cli__s(o, "why") ? ": " : "",
               cli__s(o, "why"));
    }
}

static const cli_opt cli__show_opts[] = {CLI_OPT_FORMAT, CLI_OPT_ADDRESS};
static const cli_spec cli__status_spec = {
    "rayc market status", NULL,
    "The market's leases, pending requests and why, spend and budget, failure memory,\n"
    "verifications and recent decisions.",
    NULL, CLI_SPEC_OPTS(cli__show_opts), 0, 0,
};
static const cli_spec cli__offers_spec = {
    "rayc market offers", NULL,
    "Every provider's offers with their effective cost and why each is or is not eligible.",
    NULL, CLI_SPEC_OPTS(cli__show_opts), 0, 0,
};

static int cli__market_show(const cli_spec *spec, int argc, char **argv, const char *what)
{
    cli_args a;
    int rc = cli_parse(spec, argc, argv, &a);
    if (rc != CLI_OK)
        return CLI_PARSED_EXIT(rc);
    int json;
    if (cli_arg_format(&a, &json) != CLI_OK)
        return CLI_USAGE;
    cli_conn c;
    if (cli_connect(&c, cli_arg(&a, "--address")) != CLI_OK)
        return CLI_FAIL;
    char *text = NULL;
    size_t len = 0;
    rc = cli__market_read(&c, !strcmp(what, "status") ? "status" : "offers", &text, &len);
    cli_disconnect(&c);
    if (rc != CLI_OK)
        return rc;
    if (json) {
        printf("%s\n", text);
        rc_free(text);
        return CLI_OK;
    }
    rc_json *j = NULL;
    char err[256];
    if (rc_json_parse(text, len, &j, err, sizeof(err)) < 0) {
        fprintf(stderr, "rayc market %s: the market's record does not parse (%s)\n", what, err);
        rc_free(text);
        return CLI_FAIL;
    }
    if (!strcmp(what, "status"))
        cli__print_status(j);
    else
        cli__print_offers(j);
    rc_json_free(j);
    rc_free(text);
    return CLI_OK;
}

static int cli__cmd_status(int argc, char **argv)
{
    return cli__market_show(&cli__status_spec, argc, argv, "status");
}

static int cli__cmd_offers(int argc, char **argv)
{
    return cli__market_show(&cli__offers_spec, argc, argv, "offers");
}

static const cli_opt cli__start_opts[] = {
    {"--config", NULL, "FILE", NULL, "the market's budget, idle timeout and providers (JSON; see the README)", NULL},
    CLI_OPT_ADDRESS,
};
static const cli_spec cli__start_spec = {
    "rayc market start", NULL,
    "Runs rayc-market on this host (the head's): it leases hosts from the providers of\n"
    "--config (required) to meet the cluster's pending demand, within the budget.",
    NULL, CLI_SPEC_OPTS(cli__start_opts), 0, 0,
};

static int cli__cmd_start(int argc, char **argv)
{
    cli_args a;
    int rc = cli_parse(&cli__start_spec, argc, argv, &a);
    if (rc != CLI_OK)
        return CLI_PARSED_EXIT(rc);
    const char *config = cli_arg(&a, "--config");
    if (!config)
        return cli_usage_error(&cli__start_spec, "--config FILE is required (budget, idle timeout, providers)");
    return cli_market_start(config, cli_arg(&a, "--address"));
}

static const cli_opt cli__stop_opts[] = {
    {"--release-all", NULL, NULL, NULL, "release every leased host at its provider first", NULL},
};
static const cli_spec cli__stop_spec = {
    "rayc market stop", NULL, "Stops this host's market; the hosts it leased stay unless --release-all.",
    NULL, CLI_SPEC_OPTS(cli__stop_opts), 0, 0,
};

static int cli__cmd_stop(int argc, char **argv)
{
    cli_args a;
    int rc = cli_parse(&cli__stop_spec, argc, argv, &a);
    if (rc != CLI_OK)
        return CLI_PARSED_EXIT(rc);
    return cli__market_stop(!!cli_arg(&a, "--release-all"));
}

static const cli_sub cli__market_subs[] = {
    {"start", "run rayc-market on this host with the budget and providers of a config", cli__cmd_start},
    {"status", "leases, pending requests, spend and budget, recent decisions", cli__cmd_status},
    {"offers", "every provider's offers, their effective cost and eligibility", cli__cmd_offers},
    {"stop", "stop the market (leased hosts stay unless --release-all)", cli__cmd_stop},
};
static const cli_group cli__market_group = {
    "rayc market",
    "Leases hosts from GPU markets to meet the cluster's pending demand, within a budget.",
    cli__market_subs,
    (int)(sizeof(cli__market_subs) / sizeof(cli__market_subs[0])),
};

int cli_cmd_market(int argc, char **argv)
{
    return cli_group_run(&cli__market_group, argc, argv);
}
