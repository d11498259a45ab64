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

static void usage(FILE *f)
{
    fprintf(f,
            "usage: rayc <command> [options]\n"
            "\n"
            "  start --head [--port N] [--redis-address HOST:PORT [--redis-password P |\n"
            "        --redis-password-file F] [--redis-username U]] [--market FILE] [raylet flags]\n"
            "                              start a cluster's head (GCS + raylet) on this host: it\n"
            "                              creates the cluster's CA and admin token and prints the\n"
            "                              command that joins other hosts\n"
            "  start --address HOST:PORT [--join-token T --ca-cert-hash sha256:H] [raylet flags]\n"
            "                              join a cluster with a raylet on this host (on the head's\n"
            "                              host the token and hash are not needed)\n"
            "  stop [--force]              stop every rayc process started from this host\n"
            "  status                      nodes, resource usage and pending demand (tasks, actors,\n"
            "                              placement groups)\n"
            "  list nodes|jobs|actors|placement-groups|tasks [--format table|json]\n"
            "                              (tasks: [--filter KEY=VALUE] [--limit N])\n"
            "  summary tasks|actors|objects [--format table|json]\n"
            "  timeline [--output FILE|-]  recent task runs as a Chrome trace (chrome://tracing)\n"
            "  logs [--node ID] [FILE|GLOB] | logs --worker PID|--actor ID|--task ID [--follow]\n"
            "                              the nodes' log files (see `rayc logs --help`)\n"
            "  kv put NS KEY VALUE | get NS KEY | del NS KEY | list NS [PREFIX]\n"
            "  token create [--ttl 1h|30m|3600s|0] [--max-uses N] [--labels k=v,...]\n"
            "                              a join token for new nodes (default: 24h, any number)\n"
            "  token list [--format table|json] | token revoke TOKEN_ID\n"
            "  node revoke NODE_ID         refuse that node's certificate from now on\n"
            "  get-auth-token [--generate] print the client (admin) token; --generate replaces it\n"
            "  get-ca-cert                 print the cluster's CA certificate (PEM)\n"
            "  market start --config FILE  lease hosts from GPU markets to meet pending demand,\n"
            "                              within a budget (see `rayc market --help`)\n"
            "  market status|offers [--format table|json] | market stop [--release-all]\n"
            "\n"
            "raylet flags: --num-cpus N --num-gpus N --accelerator-type T --gpu-memory SIZE\n"
            "  --memory SIZE --object-store-memory SIZE --resources JSON --labels k=v,...\n"
            "  --object-store-prefault true|false --node-ip-address IP --node-manager-port N\n"
            "  --node-name NAME\n"
            "security flags (start): --insecure (plaintext, no credentials: loopback development\n"
            "  only), --bind-all (listen on every interface, not only the node IP), --ca-cert FILE\n"
            "\n"
            "Client commands take --address HOST:PORT (default: $RAYC_ADDRESS, else the latest\n"
            "session under $RAYC_SESSION_ROOT or /tmp/rayc) and find their credentials in\n"
            "$RAYC_CA_CERT, $RAYC_AUTH_TOKEN, $RAYC_AUTH_TOKEN_PATH, else the latest session\n"
            "($RAYC_INSECURE=1 for an --insecure cluster elsewhere).\n");
}

int main(int argc, char **argv)
{
    rc_config_init();
    rc_log_set_tag("rayc");
    rc_log_set_level(RC_LOG_WARNING);
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "start"))
        return cli_cmd_start(argc - 2, argv + 2);
    if (!strcmp(cmd, "stop"))
        return cli_cmd_stop(argc - 2, argv + 2);
    if (!strcmp(cmd, "status"))
        return cli_cmd_status(argc - 2, argv + 2);
    if (!strcmp(cmd, "list"))
        return cli_cmd_list(argc - 2, argv + 2);
    if (!strcmp(cmd, "kv"))
        return cli_cmd_kv(argc - 2, argv + 2);
    if (!strcmp(cmd, "token"))
        return cli_cmd_token(argc - 2, argv + 2);
    if (!strcmp(cmd, "node"))
        return cli_cmd_node(argc - 2, argv + 2);
    if (!strcmp(cmd, "get-auth-token"))
        return cli_cmd_get_auth_token(argc - 2, argv + 2);
    if (!strcmp(cmd, "get-ca-cert"))
        return cli_cmd_get_ca_cert(argc - 2, argv + 2);
    if (!strcmp(cmd, "market"))
        return cli_cmd_market(argc - 2, argv + 2);
    if (!strcmp(cmd, "logs"))
        return cli_cmd_logs(argc - 2, argv + 2);
    if (!strcmp(cmd, "summary"))
        return cli_cmd_summary(argc - 2, argv + 2);
    if (!strcmp(cmd, "timeline"))
        return cli_cmd_timeline(argc - 2, argv + 2);
    fprintf(stderr, "rayc: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return CLI_USAGE;
}

/* ---- shared helpers ----------------------------------------------------------------- */

int cli_take_address(int argc, char **argv, const char **address)
{
    int out = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--address")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "rayc: --address needs HOST:PORT\n");
                return -1;
            }
            *address = argv[++i];
        } else if (!strncmp(argv[i], "--address=", 10)) {
            *address = argv[i] + 10;
        } else {
            argv[out++] = argv[i];
        }
    }
    return out;
}

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
                "rayc: no rayc cluster found: no --address was given, RAYC_ADDRESS is not set and no "
                "session under %s records one.\nStart a cluster with:  rayc start --head\n",
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
                fprintf(stderr, "rayc: %s\nIs the cluster running? Start one with:  rayc start --head\n", why);
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
        fprintf(stderr, "rayc: %s\nIs the cluster running? Start one with:  rayc start --head\n", err);
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
        fprintf(stderr, "rayc: %s to the GCS at %s failed: %s (%s)\n", method, c->address, err,
                rpc_code_name((grpc_status_code)code));
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
