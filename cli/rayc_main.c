/*
 * rayc: the command line for cluster admins.
 *
 *   rayc start --head [--port N] [--redis-address H:P] [security flags] [raylet flags]
 *   rayc start --address H:P [--join-token T --ca-cert-hash H] [raylet flags]
 *   rayc stop [--force]
 *   rayc status [--address H:P]
 *   rayc list nodes|jobs|actors|placement-groups [--format table|json] [--address H:P]
 *   rayc kv put|get|del|list ...
 *   rayc token create|list|revoke, rayc node revoke, rayc get-auth-token, rayc get-ca-cert
 *   rayc market ..., rayc version
 *
 * The command table below lists the commands; each command's options are one table of its
 * own (cli_opt.c), which both parses them and prints its --help.
 *
 * Commands that talk to a cluster find it through --address, then RAYC_ADDRESS, then the
 * latest session on this host, and their credentials (ARCHITECTURE §14) through
 * RAYC_INSECURE, RAYC_CA_CERT, RAYC_AUTH_TOKEN, RAYC_AUTH_TOKEN_PATH, then the latest
 * session. Main thread only.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli_int.h"
#include "gcs_client_auth.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_log.h"
#include "rc_session.h"

#ifndef RAYC_VERSION
#error "RAYC_VERSION comes from the project version in CMakeLists.txt"
#endif

static int cli__cmd_version(int argc, char **argv);

/* rayc's commands: one row each; a command's options and their help live in its own
 * cli_spec (cli_int.h). */
static const cli_sub cli__commands[] = {
    {"start", "start a cluster's head (--head) or join one (--address) on this host", cli_cmd_start},
    {"stop", "stop the rayc processes on this host", cli_cmd_stop},
    {"status", "nodes, resource usage and pending demand", cli_cmd_status},
    {"list", "list nodes, jobs, actors, placement groups or tasks", cli_cmd_list},
    {"kv", "read and write the cluster's key-value store", cli_cmd_kv},
    {"token", "create, list and revoke join tokens", cli_cmd_token},
    {"node", "refuse a node's certificate (node revoke)", cli_cmd_node},
    {"get-auth-token", "print (or replace) the admin token", cli_cmd_get_auth_token},
    {"get-ca-cert", "print the cluster's CA certificate", cli_cmd_get_ca_cert},
    {"market", "lease hosts from GPU markets to meet pending demand", cli_cmd_market},
    {"job", "submit, follow and stop jobs through the head's dashboard", cli_cmd_job},
    {"logs", "print or follow the nodes' log files (a worker's, an actor's, a task's)", cli_cmd_logs},
    {"summary", "tasks, actors or objects summed up (Ray's 'ray summary')", cli_cmd_summary},
    {"timeline", "recent task runs as a Chrome trace (Ray's 'ray timeline')", cli_cmd_timeline},
    {"metrics", "run (and stop) Prometheus on the cluster's configuration", cli_cmd_metrics},
    {"version", "print rayc's version", cli__cmd_version},
};

static const cli_group cli__rayc = {
    "rayc",
    "The command line of rayc, a Ray-compatible cluster.\n"
    "\n"
    "Commands that talk to a cluster find it through --address HOST:PORT, else $RAYC_ADDRESS,\n"
    "else the latest session under $RAYC_SESSION_ROOT (default /tmp/rayc); their credentials\n"
    "through $RAYC_CA_CERT, $RAYC_AUTH_TOKEN, $RAYC_AUTH_TOKEN_PATH, else the latest session\n"
    "($RAYC_INSECURE=1 for an --insecure cluster elsewhere). 'rayc --version' prints the version.\n"
    "Exit status: 0 done, 1 the cluster said no or could not be reached, 2 a bad command line.",
    cli__commands, (int)(sizeof(cli__commands) / sizeof(cli__commands[0])),
};

static const cli_spec cli__version_spec = {"rayc version", NULL, "Prints rayc's version.", NULL, NULL, 0, 0, 0};

static int cli__cmd_version(int argc, char **argv)
{
    cli_args a;
    int rc = cli_parse(&cli__version_spec, argc, argv, &a);
    if (rc != CLI_OK)
        return CLI_PARSED_EXIT(rc);
    printf("rayc, version %s\n", RAYC_VERSION);
    return CLI_OK;
}

int main(int argc, char **argv)
{
    rc_config_init();
    rc_log_set_tag("rayc");
    rc_log_set_level(RC_LOG_WARNING);
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 2 && (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")))
        return cli__cmd_version(argc - 2, argv + 2);
    return cli_group_run(&cli__rayc, argc - 1, argv + 1);
}

/* ---- shared helpers ----------------------------------------------------------------- */

static int cli__security_chosen;

int cli_probe_address(const char *address, int timeout_ms, char *err, size_t errlen)
{
    char host[256];
    const char *colon = strrchr(address, ':');
    if (!colon || colon == address || (size_t)(colon - address) >= sizeof(host)) {
        snprintf(err, errlen, "'%s' is not HOST:PORT", address);
        return RC_EINVAL;
    }
    memcpy(host, address, (size_t)(colon - address));
    host[colon - address] = '\0';
    char *h = host;
    size_t hn = strlen(h);
    if (hn >= 2 && h[0] == '[' && h[hn - 1] == ']') {
        h[hn - 1] = '\0';
        h++;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int gai = getaddrinfo(h, colon + 1, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", h, gai_strerror(gai));
        return RC_EUNAVAIL;
    }
    int rc = RC_EUNAVAIL, why = ECONNREFUSED;
    for (struct addrinfo *ai = res; ai && rc < 0; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            rc = 0;
        } else if (errno == EINPROGRESS) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            int soerr = 0;
            socklen_t len = sizeof(soerr);
            if (poll(&pfd, 1, timeout_ms) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 &&
                soerr == 0)
                rc = 0;
            else
                why = soerr ? soerr : ETIMEDOUT;
        } else {
            why = errno;
        }
        close(fd);
    }
    freeaddrinfo(res);
    if (rc < 0)
        snprintf(err, errlen, "cannot reach the GCS at %s: %s", address, strerror(why));
    return rc;
}

void cli_security_chosen(void)
{
    cli__security_chosen = 1;
}

int cli_connect(cli_conn *c, const char *address_flag)
{
    memset(c, 0, sizeof(*c));
    const char *env = getenv("RAYC_ADDRESS");
    if (address_flag && *address_flag) {
        snprintf(c->address, sizeof(c->address), "%s", address_flag);
    } else if (env && *env) {
        snprintf(c->address, sizeof(c->address), "%s", env);
    } else if (rc_session_latest_address(c->address, sizeof(c->address)) < 0) {
        char root[512];
        rc_session_root(root, sizeof(root));
        fprintf(stderr,
                "rayc: no rayc cluster found (no --address, no RAYC_ADDRESS, no session under %s records "
                "one): start one with 'rayc start --head', or pass --address HOST:PORT\n",
                root);
        return CLI_FAIL;
    }
    /* Ray accepts quotes around the address as printed by `start`; so do we. */
    size_t n = strlen(c->address);
    if (n >= 2 && c->address[0] == '\'' && c->address[n - 1] == '\'') {
        memmove(c->address, c->address + 1, n - 2);
        c->address[n - 2] = '\0';
    }
    if (!strchr(c->address, ':')) {
        fprintf(stderr, "rayc: the address '%s' is not HOST:PORT\n", c->address);
        return CLI_USAGE;
    }
    char err[1024];
    if (!cli__security_chosen) {
        if (gcs_auth_client_security(c->address, err, sizeof(err)) < 0) {
            /* No credentials: say so, unless there is no cluster there at all. */
            char why[512];
            if (cli_probe_address(c->address, 2000, why, sizeof(why)) < 0)
                fprintf(stderr, "rayc: %s: is the cluster running there? ('rayc start --head' starts one)\n", why);
            else
                fprintf(stderr, "rayc: %s\n", err);
            return CLI_FAIL;
        }
        cli__security_chosen = 1;
    }
    uv_loop_init(&c->loop);
    if (rpc_ctx_create(&c->loop, &c->rpc) < 0 || gcs_client_create(c->rpc, c->address, &c->gcs) < 0) {
        fprintf(stderr, "rayc: cannot create a client for %s\n", c->address);
        cli_disconnect(c);
        return CLI_FAIL;
    }
    int rc = gcs_client_connect_sync(c->gcs, 5000, err, sizeof(err));
    if (rc == RC_EAUTH) {
        fprintf(stderr, "rayc: %s\n", err);
        cli_disconnect(c);
        return CLI_FAIL;
    }
    if (rc < 0) {
        fprintf(stderr, "rayc: %s: is the cluster running there? ('rayc start --head' starts one)\n", err);
        cli_disconnect(c);
        return CLI_FAIL;
    }
    return CLI_OK;
}

void cli_disconnect(cli_conn *c)
{
    if (c->gcs)
        gcs_client_destroy(c->gcs);
    c->gcs = NULL;
    if (c->rpc)
        rpc_ctx_destroy(c->rpc);
    c->rpc = NULL;
    uv_run(&c->loop, UV_RUN_DEFAULT);
    uv_loop_close(&c->loop);
}

int cli_call(cli_conn *c, const ProtobufCServiceDescriptor *svc, const char *method,
             const ProtobufCMessage *req, ProtobufCMessage **reply)
{
    char err[512] = "";
    int code = rpc_client_call_sync(gcs_client_rpc(c->gcs), svc, method, req, 10000, reply, err, sizeof(err));
    if (code != GRPC_STATUS_OK) {
        const char *hint = code == GRPC_STATUS_UNAVAILABLE ? "; is the cluster still running there?"
                           : code == GRPC_STATUS_DEADLINE_EXCEEDED ? "; the GCS did not answer in time, try again"
                           : code == GRPC_STATUS_UNAUTHENTICATED || code == GRPC_STATUS_PERMISSION_DENIED
                               ? "; check RAYC_AUTH_TOKEN ('rayc get-auth-token' on the head prints the admin token)"
                               : "";
        fprintf(stderr, "rayc: %s to the GCS at %s failed: %s (%s)%s\n", method, c->address, err,
                rpc_code_name((grpc_status_code)code), hint);
        return CLI_FAIL;
    }
    const char *message;
    int status = gcs_reply_status(*reply, &message);
    if (status != GCS_STATUS_OK) {
        fprintf(stderr, "rayc: %s: %s (%s)\n", method, message, gcs_status_name(status));
        rpc_msg_free(*reply);
        *reply = NULL;
        return CLI_FAIL;
    }
    return CLI_OK;
}

void cli_format_bytes(double bytes, char *out, size_t outlen)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    size_t u = 0;
    while (bytes >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
        bytes /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(out, outlen, "%.0fB", bytes);
    else
        snprintf(out, outlen, "%.2f%s", bytes, units[u]);
}
