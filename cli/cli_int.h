/*
 * Private declarations of the rayc command line. One file per group of commands:
 * cli_start.c (start), cli_stop.c (stop), cli_status.c (status, list), cli_kv.c (kv),
 * cli_auth.c (token, node revoke, get-auth-token, get-ca-cert), cli_market.c (market),
 * cli_job.c (job, the dashboard that rayc start --head runs);
 * cli_opt.c parses and documents every command's options. Exit codes: 0 done, 1 the cluster
 * said no or could not be reached, 2 the command line itself was wrong.
 *
 * Main thread only.
 */
#ifndef RAYC_CLI_CLI_INT_H
#define RAYC_CLI_CLI_INT_H

#include <protobuf-c/protobuf-c.h>
#include <uv.h>

#include "gcs_client.h"
#include "rpc.h"

/* CLI_HELP: help was asked for and printed; the command exits 0. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2, CLI_HELP = 3 };

/* ---- option tables (cli_opt.c) ----------------------------------------------------------
 *
 * Each command describes its options in one table of cli_opt rows; cli_parse parses argv
 * with it and cli_help prints it, so every flag a command accepts is in its --help. A new
 * command adds: a cli_opt table, a cli_spec naming it, a function that calls cli_parse, and
 * one row in the command table of rayc_main.c (or in its group's cli_group). */
enum { CLI_MAX_OPTS = 64, CLI_MAX_POS = 16, CLI_MAX_REPEAT = 8 };

typedef struct cli_opt {
    const char *name;    /* "--port" */
    const char *alias;   /* "-f", or NULL */
    const char *arg;     /* the value's name ("N", "FILE"); NULL for a switch */
    const char *def;     /* the default, as help shows it, or NULL */
    const char *help;    /* one line */
    const char *section; /* a heading printed before this row in help, or NULL */
} cli_opt;

typedef struct cli_spec {
    const char *path;     /* "rayc start", "rayc kv put" */
    const char *synopsis; /* the positional arguments ("NS KEY VALUE"), or NULL */
    const char *about;    /* what the command does (printed under the usage line) */
    const char *notes;    /* printed after the options, or NULL */
    const cli_opt *opts;
    int n_opts;
    int min_pos, max_pos; /* how many positional arguments; max_pos -1: any number */
    /* 1: the command runs another command line (rayc job submit -- CMD...): "--", or the
     * first positional argument once min_pos are given, ends the options, and everything
     * after it is kept verbatim in cli_args.rest, options of its own included. */
    int rest;
} cli_spec;

#define CLI_SPEC_OPTS(table) (table), (int)(sizeof(table) / sizeof((table)[0]))
/* The --address row shared by the commands that talk to a cluster. */
#define CLI_OPT_ADDRESS                                                                                    \
    {"--address", NULL, "HOST:PORT", "$RAYC_ADDRESS, else the latest session on this host",                 \
     "the cluster's GCS", NULL}
#define CLI_OPT_FORMAT {"--format", NULL, "table|json", "table", "output format", NULL}
/* The --address row of rayc job: the head's dashboard (Jobs REST API), as Ray's job CLI. */
#define CLI_OPT_DASHBOARD_ADDRESS                                                                          \
    {"--address", NULL, "URL",                                                                             \
     "$RAY_API_SERVER_ADDRESS, an http(s):// $RAY_ADDRESS, else the dashboard of the latest session on "   \
     "this host",                                                                                          \
     "the head's dashboard (https://HEAD:8265; a bare HOST:PORT means https://, http:// on an "           \
     "insecure cluster)",                                                                                  \
     NULL}

/* A parsed command line: val[i] is the value of spec->opts[i] ("1" for a switch given), or
 * NULL; rest/n_rest the command line after the options when spec->rest (else NULL/0); the
 * strings point into argv. */
typedef struct cli_args {
    const cli_spec *spec;
    const char *val[CLI_MAX_OPTS];
    /* Every value an option was given, in order (an option given more than once: val holds
     * the last; cli_arg_all reads them all). */
    const char *each[CLI_MAX_OPTS][CLI_MAX_REPEAT];
    int n_each[CLI_MAX_OPTS];
    char *pos[CLI_MAX_POS];
    int n_pos;
    char **rest;
    int n_rest;
} cli_args;

/* Parses argv with s. CLI_OK; CLI_HELP after printing the help to stdout (--help, -h); or
 * CLI_USAGE after printing "<path>: <what is wrong>; see '<path> --help'" to stderr. */
int cli_parse(const cli_spec *s, int argc, char **argv, cli_args *a);
void cli_help(const cli_spec *s, FILE *f);
/* The value of option name (a row of the spec; aborts if it is not one), or NULL. */
const char *cli_arg(const cli_args *a, const char *name);
/* Every value of a repeatable option (--filter A --filter B), in order; the count (0 when
 * absent). At most CLI_MAX_REPEAT: cli_parse refuses more. */
int cli_arg_all(const cli_args *a, const char *name, const char *const **vals);
/* The option as a whole number in lo..hi (def when absent); CLI_USAGE (printed) if not one. */
int cli_arg_int(const cli_args *a, const char *name, long lo, long hi, long def, long *out);
/* --format table|json; CLI_USAGE (printed) for another value. */
int cli_arg_format(const cli_args *a, int *json);
/* Prints "<path>: <message>; see '<path> --help'" and returns CLI_USAGE. */
int cli_usage_error(const cli_spec *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A command with subcommands (rayc kv put|get|...): each row names one and its function. */
typedef struct cli_sub {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} cli_sub;

typedef struct cli_group {
    const char *path; /* "rayc kv" */
    const char *about;
    const cli_sub *subs;
    int n_subs;
} cli_group;

/* Runs the subcommand argv[0] names; --help/-h/help prints the list of subcommands, and
 * "help X ..." is "X ... --help". */
int cli_group_run(const cli_group *g, int argc, char **argv);
void cli_group_help(const cli_group *g, FILE *f);
/* The exit status of a command whose parse returned rc (CLI_HELP: 0). */
#define CLI_PARSED_EXIT(rc) ((rc) == CLI_HELP ? CLI_OK : (rc))

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
int cli_cmd_job(int argc, char **argv);
/* Starts rayc-dashboard for session (rayc start --head) and stores its pid; 0 once it
 * listens, or CLI_FAIL after a warning. */
int cli_dashboard_start(const char *session, const char *gcs_address, const char *host, int port, pid_t *pid_out);
/* cli_logs.c, cli_tasks.c: logs, summary, timeline, list tasks. */
int cli_cmd_logs(int argc, char **argv);
int cli_cmd_metrics(int argc, char **argv);
int cli_cmd_summary(int argc, char **argv);
int cli_cmd_timeline(int argc, char **argv);
/* `rayc list tasks`, its command line parsed with rayc list's spec (cli_status.c). */
int cli_list_tasks(const cli_args *a);
struct Ray__Rpc__GetTaskEventsRequest;
/* GetTaskEvents through cli_call. */
int cli_task_events(cli_conn *c, const struct Ray__Rpc__GetTaskEventsRequest *req, ProtobufCMessage **reply);
/* Starts rayc-market for the latest session on this host (rayc market start, rayc start
 * --head --market). */
int cli_market_start(const char *config, const char *address);

/* Removes what dead rayc processes left on this host (cli_stop.c); returns how many files. */
int cli_sweep(void);

/* "10.00GiB"-style text for a byte count. */
void cli_format_bytes(double bytes, char *out, size_t outlen);

#endif
