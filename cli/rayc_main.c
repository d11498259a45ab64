/*
 * rayc: the command line for cluster admins.
 *
 *   rayc start --head [--port N] [--redis-address H:P] [raylet flags]
 *   rayc start --address H:P [raylet flags]
 *   rayc stop [--force]
 *   rayc status [--address H:P]
 *   rayc list nodes|jobs|actors|placement-groups [--format table|json] [--address H:P]
 *   rayc kv put|get|del|list ...
 *
 * Commands that talk to a cluster find it through --address, then RAYC_ADDRESS, then the
 * latest session on this host. Main thread only.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_int.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_log.h"
#include "rc_session.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: rayc <command> [options]\n"
            "\n"
            "  start --head [--port N] [--redis-address HOST:PORT] [raylet flags]\n"
            "                              start a cluster's head (GCS + raylet) on this host\n"
            "  start --address HOST:PORT [raylet flags]\n"
            "                              join a cluster with a raylet on this host\n"
            "  stop [--force]              stop every rayc process started from this host\n"
            "  status                      nodes, resource usage and pending demand (tasks, actors,\n"
            "                              placement groups)\n"
            "  list nodes|jobs|actors|placement-groups [--format table|json]\n"
            "  kv put NS KEY VALUE | get NS KEY | del NS KEY | list NS [PREFIX]\n"
            "\n"
            "raylet flags: --num-cpus N --num-gpus N --accelerator-type T --gpu-memory SIZE\n"
            "  --memory SIZE --object-store-memory SIZE --resources JSON --labels k=v,...\n"
            "  --node-ip-address IP --node-manager-port N --node-name NAME\n"
            "\n"
            "Client commands take --address HOST:PORT (default: $RAYC_ADDRESS, else the latest\n"
            "session under $RAYC_SESSION_ROOT or /tmp/rayc).\n");
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
    uv_loop_init(&c->loop);
    if (rpc_ctx_create(&c->loop, &c->rpc) < 0 || gcs_client_create(c->rpc, c->address, &c->gcs) < 0) {
        fprintf(stderr, "rayc: cannot create a client for %s\n", c->address);
        cli_disconnect(c);
        return CLI_FAIL;
    }
    char err[512];
    if (gcs_client_connect_sync(c->gcs, 5000, err, sizeof(err)) < 0) {
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
