/*
 * Private declarations of the rayc command line. One file per group of commands:
 * cli_start.c (start, stop), cli_status.c (status, list), cli_kv.c (kv), cli_auth.c (token,
 * node revoke, get-auth-token, get-ca-cert), cli_market.c (market). Exit codes: 0 done, 1 the cluster said no or
 * could not be reached, 2 the command line itself was wrong.
 *
 * Main thread only.
 */
#ifndef RAYC_CLI_CLI_INT_H
#define RAYC_CLI_CLI_INT_H

#include <protobuf-c/protobuf-c.h>
#include <uv.h>

#include "gcs_client.h"
#include "rpc.h"

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* A connection to a cluster's GCS for one command. */
typedef struct cli_conn {
    uv_loop_t loop;
    rpc_ctx *rpc;
    gcs_client *gcs;
    char address[256];
} cli_conn;

/* Finds the address (flag, RAYC_ADDRESS, latest session), chooses the process's security
 * (gcs_auth_client_security: RAYC_INSECURE, RAYC_CA_CERT, RAYC_AUTH_TOKEN[_PATH], the latest
 * session) unless cli_security_chosen was called, connects, and on failure prints why and
 * returns CLI_FAIL. */
int cli_connect(cli_conn *c, const char *address_flag);
/* 0 if a TCP connection to address ("host:port") opens within timeout_ms, else RC_EUNAVAIL
 * with err "cannot reach the GCS at ...: why": tells "nothing there" from "not allowed"
 * before a node or client has credentials. */
int cli_probe_address(const char *address, int timeout_ms, char *err, size_t errlen);
/* The process-wide security has been set (rpc_security_set): cli_connect keeps it. */
void cli_security_chosen(void);
void cli_disconnect(cli_conn *c);
/* A synchronous GCS call; checks both the gRPC status and the reply's GcsStatus. On failure
 * prints "rayc: <what>: <why>" and returns CLI_FAIL; else stores the reply (free with
 * rpc_msg_free). */
int cli_call(cli_conn *c, const ProtobufCServiceDescriptor *svc, const char *method,
             const ProtobufCMessage *req, ProtobufCMessage **reply);
/* Removes "--address X" / "--address=X" from argv, storing X in *address. Returns the new
 * argc, or -1 (after printing) when --address lacks a value. */
int cli_take_address(int argc, char **argv, const char **address);

int cli_cmd_start(int argc, char **argv);
int cli_cmd_stop(int argc, char **argv);
int cli_cmd_status(int argc, char **argv);
int cli_cmd_list(int argc, char **argv);
int cli_cmd_kv(int argc, char **argv);
int cli_cmd_token(int argc, char **argv);
int cli_cmd_node(int argc, char **argv);
int cli_cmd_get_auth_token(int argc, char **argv);
int cli_cmd_get_ca_cert(int argc, char **argv);
int cli_cmd_market(int argc, char **argv);
/* cli_logs.c, cli_tasks.c: logs, summary, timeline, list tasks. */
int cli_cmd_logs(int argc, char **argv);
int cli_cmd_summary(int argc, char **argv);
int cli_cmd_timeline(int argc, char **argv);
/* `rayc list tasks ...` (argv: the arguments after "list", --address already taken). */
int cli_list_tasks(int argc, char **argv, const char *address);
struct Ray__Rpc__GetTaskEventsRequest;
/* GetTaskEvents through cli_call. */
int cli_task_events(cli_conn *c, const struct Ray__Rpc__GetTaskEventsRequest *req, ProtobufCMessage **reply);
/* Starts rayc-market for the latest session on this host (rayc market start, rayc start
 * --head --market). */
int cli_market_start(const char *config, const char *address);

/* "10.00GiB"-style text for a byte count. */
void cli_format_bytes(double bytes, char *out, size_t outlen);

#endif
