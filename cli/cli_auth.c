/*
 * The cluster's credentials from the shell (ARCHITECTURE §14), through the GCS's
 * rayc.rpc.AuthService, all admin-only:
 *
 *   rayc token create [--ttl 1h|30m|3600s|0] [--max-uses N] [--labels k=v,...]
 *                                   prints the join token, then the command that joins a host
 *   rayc token list [--format table|json]
 *   rayc token revoke TOKEN_ID
 *   rayc node revoke NODE_ID        that node's certificate is refused from now on
 *   rayc get-auth-token [--generate]
 *                                   prints the client token as `ray get-auth-token` does;
 *                                   --generate replaces it (RotateAdminToken) and rewrites the
 *                                   copies of it under the session root
 *   rayc get-ca-cert                prints the cluster's CA certificate (PEM)
 *
 * Arguments are checked strictly before anything is sent (exit 2); a refusal by the cluster
 * prints the GCS's sentence (exit 1).
 *
 * Main thread only.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "cli_int.h"
#include "gcs_client_auth.h"
#include "raylet.h"
#include "rayc_auth.pb-c.h"
#include "rc_alloc.h"
#include "rc_buf.h"
#include "rc_err.h"
#include "rc_ids.h"
#include "rc_session.h"

enum { CLI__DEFAULT_TTL_S = 24 * 3600 };

/* ---- argument parsing ----------------------------------------------------------------- */

/* "0" (never), or one or more <digits><unit> with units d, h, m, s: "1h", "30m", "3600s",
 * "1h30m". Nothing else: no bare numbers (is "60" seconds or minutes?), no fractions. */
static int cli__parse_duration(const char *text, int64_t *seconds)
{
    if (!strcmp(text, "0")) {
        *seconds = 0;
        return 0;
    }
    int64_t total = 0;
    const char *p = text;
    if (!*p)
        return RC_EINVAL;
    while (*p) {
        if (!isdigit((unsigned char)*p))
            return RC_EINVAL;
        int64_t n = 0;
        while (isdigit((unsigned char)*p)) {
            if (n > INT64_MAX / 10 - 9)
                return RC_ERANGE;
            n = n * 10 + (*p++ - '0');
        }
        int64_t unit = *p == 'd' ? 86400 : *p == 'h' ? 3600 : *p == 'm' ? 60 : *p == 's' ? 1 : 0;
        if (!unit)
            return RC_EINVAL;
        p++;
        if (n > (INT64_MAX - total) / unit)
            return RC_ERANGE;
        total += n * unit;
    }
    if (total == 0)
        return RC_EINVAL; /* "0s": say 0 if never is meant */
    *seconds = total;
    return 0;
}

static int cli__parse_count(const char *text, int32_t *out)
{
    if (!*text)
        return RC_EINVAL;
    int64_t n = 0;
    for (const char *p = text; *p; p++) {
        if (!isdigit((unsigned char)*p))
            return RC_EINVAL;
        n = n * 10 + (*p - '0');
        if (n > INT32_MAX)
            return RC_ERANGE;
    }
    *out = (int32_t)n;
    return 0;
}

static int cli__is_hex(const char *s, size_t len)
{
    if (strlen(s) != len)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!isxdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

/* ---- printing ---------------------------------------------------------------------------- */

static void cli__time_text(int64_t unix_s, char *out, size_t len)
{
    if (unix_s <= 0) {
        snprintf(out, len, "never");
        return;
    }
    time_t t = (time_t)unix_s;
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(out, len, "%Y-%m-%d %H:%M:%S", &tm);
}

static const char *cli__token_state(const Rayc__Rpc__JoinTokenInfo *t, int64_t now)
{
    if (t->revoked)
        return "revoked";
    if (t->expires_at > 0 && now >= t->expires_at)
        return "expired";
    if (t->max_uses > 0 && t->uses >= t->max_uses)
        return "used-up";
    return "active";
}

static void cli__labels_text(const Rayc__Rpc__JoinTokenInfo *t, char *out, size_t len)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < t->n_labels && used < len; i++)
        used += (size_t)snprintf(out + used, len - used, "%s%s=%s", i ? "," : "", t->labels[i]->key,
                                 t->labels[i]->value);
    if (!out[0])
        snprintf(out, len, "-");
}

static void cli__token_json(rc_buf *b, const Rayc__Rpc__JoinTokenInfo *t, int64_t now)
{
    char num[64];
    rc_buf_puts(b, "{\"token_id\": ");
    rc_buf_json_str(b, t->token_id, strlen(t->token_id));
    rc_buf_puts(b, ", \"state\": ");
    rc_buf_json_str(b, cli__token_state(t, now), strlen(cli__token_state(t, now)));
    snprintf(num, sizeof(num), ", \"created_at\": %lld", (long long)t->created_at);
    rc_buf_puts(b, num);
    snprintf(num, sizeof(num), ", \"expires_at\": %lld", (long long)t->expires_at);
    rc_buf_puts(b, num);
    snprintf(num, sizeof(num), ", \"max_uses\": %d, \"uses\": %d", t->max_uses, t->uses);
    rc_buf_puts(b, num);
    rc_buf_puts(b, t->revoked ? ", \"revoked\": true" : ", \"revoked\": false");
    rc_buf_puts(b, ", \"labels\": {");
    for (size_t i = 0; i < t->n_labels; i++) {
        rc_buf_puts(b, i ? ", " : "");
        rc_buf_json_str(b, t->labels[i]->key, strlen(t->labels[i]->key));
        rc_buf_puts(b, ": ");
        rc_buf_json_str(b, t->labels[i]->value, strlen(t->labels[i]->value));
    }
    rc_buf_puts(b, "}, \"node_ids\": [");
    for (size_t i = 0; i < t->n_node_ids; i++) {
        rc_buf_puts(b, i ? ", " : "");
        rc_buf_json_str(b, t->node_ids[i], strlen(t->node_ids[i]));
    }
    rc_buf_puts(b, "]}");
}

/* ---- rayc token ----------------------------------------------------------------------------- */

static const cli_opt cli__create_opts[] = {
    {"--ttl", NULL, "DURATION", "24h", "how long the token works: 1h, 30m, 3600s, 1h30m; 0 never expires", NULL},
    {"--max-uses", NULL, "N", "0: any number", "how many hosts may join with it", NULL},
    {"--labels", NULL, "k=v,...", NULL, "labels every node that joins with it gets", NULL},
    CLI_OPT_ADDRESS,
};
static const cli_spec cli__create_spec = {
    "rayc token create", NULL,
    "Makes a join token for new nodes and prints it with the command that joins a host.",
    NULL, CLI_SPEC_OPTS(cli__create_opts), 0, 0,
};

static const cli_opt cli__tlist_opts[] = {CLI_OPT_FORMAT, CLI_OPT_ADDRESS};
static const cli_spec cli__tlist_spec = {
    "rayc token list", NULL, "Lists the cluster's join tokens, their state, uses and the nodes that joined.",
    NULL, CLI_SPEC_OPTS(cli__tlist_opts), 0, 0,
};

static const cli_opt cli__revoke_opts[] = {CLI_OPT_ADDRESS};
static const cli_spec cli__trevoke_spec = {
    "rayc token revoke", "TOKEN_ID",
    "Withdraws a join token (TOKEN_ID: the part before its dot, as 'rayc token list' shows).\n"
    "Nodes that joined with it keep their certificates ('rayc node revoke' refuses one).",
    NULL, CLI_SPEC_OPTS(cli__revoke_opts), 1, 1,
};

static const cli_spec cli__nrevoke_spec = {
    "rayc node revoke", "NODE_ID",
    "Refuses the node's certificate from now on; the cluster marks the node dead.",
    NULL, CLI_SPEC_OPTS(cli__revoke_opts), 1, 1,
};

static int cli__token_create(int argc, char **argv)
{
    int64_t ttl = CLI__DEFAULT_TTL_S;
    int32_t max_uses = 0;
    raylet_options labels;
    memset(&labels, 0, sizeof(labels));
    char err[512];
    cli_args a;
    int rc = cli_parse(&cli__create_spec, argc, argv, &a);
    if (rc != CLI_OK)
        return CLI_PARSED_EXIT(rc);
    const char *v, *address = cli_arg(&a, "--address");
    if ((v = cli_arg(&a, "--ttl")) && cli__parse_duration(v, &ttl) < 0)
        return cli_usage_error(&cli__create_spec,
                               "--ttl needs a duration such as 1h, 30m, 3600s or 1h30m, or 0 (never expires), not '%s'",
                               v);
    if ((v = cli_arg(&a, "--max-uses")) && cli__parse_count(v, &max_uses) < 0)
        return cli_usage_error(&cli__create_spec, "--max-uses needs a whole number of uses (0: unlimited), not '%s'",
                               v);
    if ((v = cli_arg(&a, "--labels")) && raylet_parse_labels(&labels, v, err, sizeof(err)) < 0) {
        raylet_options_free(&labels);
        return cli_usage_error(&cli__create_spec, "%s", err);
    }
    cli_conn c;
    if ((rc = cli_connect(&c, address)) != CLI_OK) {
        raylet_options_free(&labels);
        return rc;
    }
    Rayc__Rpc__CreateJoinTokenRequest req = RAYC__RPC__CREATE_JOIN_TOKEN_REQUEST__INIT;
    req.ttl_seconds = ttl;
    req.max_uses = max_uses;
    Rayc__Rpc__CreateJoinTokenRequest__LabelsEntry entries[RAYLET_MAX_LABELS], *ptrs[RAYLET_MAX_LABELS];
    for (size_t i = 0; i < labels.n_labels; i++) {
        rayc__rpc__create_join_token_request__labels_entry__init(&entries[i]);
        entries[i].key = labels.labels[i].key;
        entries[i].value = labels.labels[i].value;
        ptrs[i] = &entries[i];
    }
    req.labels = ptrs;
    req.n_labels = labels.n_labels;
    ProtobufCMessage *msg = NULL;
    rc = cli_call(&c, &rayc__rpc__auth_service__descriptor, "CreateJoinToken", &req.base, &msg);
    raylet_options_free(&labels);
    if (rc == CLI_OK) {
        const Rayc__Rpc__CreateJoinTokenReply *r = (const void *)msg;
        printf("%s\n", r->join_token);
        const rpc_security *sec = rpc_security_get();
        char command[1024];
        if (sec->ca_cert_pem && gcs_auth_join_command(c.address, r->join_token, sec->ca_cert_pem, command,
                                                      sizeof(command)) == 0)
            printf("\nTo add a host to the cluster, run on it:\n  %s\n", command);
        if (r->info) {
            char expires[64], uses[64];
            cli__time_text(r->info->expires_at, expires, sizeof(expires));
            if (r->info->max_uses)
                snprintf(uses, sizeof(uses), "at most %d host%s", r->info->max_uses, r->info->max_uses == 1 ? "" : "s");
            else
                snprintf(uses, sizeof(uses), "any number of hosts");
            printf("Token %s expires %s; %s may join with it.\n", r->info->token_id, expires, uses);
        }
        rpc_msg_free(msg);
    }
    cli_disconnect(&c);
    return rc;
}

static int cli__token_list(int argc, char **argv)
{
    int json;
    cli_args a;
    int rc = cli_parse(&cli__tlist_spec, argc, argv, &a);
    if (rc != CLI_OK)
        return CLI_PARSED_EXIT(rc);
    if (cli_arg_format(&a, &json) != CLI_OK)
        return CLI_USAGE;
    cli_conn c;
    rc = cli_connect(&c, cli_arg(&a, "--address"));
    if (rc != CLI_OK)
        return rc;
    Rayc__Rpc__ListJoinTokensRequest req = RAYC__RPC__LIST_JOIN_TOKENS_REQUEST__INIT;
    ProtobufCMessage *msg = NULL;
    rc = cli_call(&c, &rayc__rpc__auth_service__descriptor, "ListJoinTokens", &req.base, &msg);
    if (rc == CLI_OK) {
        const Rayc__Rpc__ListJoinTokensReply *r = (const void *)msg;
        int64_t now = (int64_t)time(NULL);
        if (json) {
            rc_buf b = RC_BUF_INIT;
            rc_buf_putc(&b, '[');
            for (size_t i = 0; i < r->n_tokens; i++) {
                rc_buf_puts(&b, i ? ",\n " : "");
                cli__token_json(&b, r->tokens[i], now);
            }
            rc_buf_puts(&b, "]\n");
            fputs(rc_buf_cstr(&b), stdout);
            rc_buf_free(&b);
        } else {
            printf("%-16s  %-8s  %-19s  %-19s  %-13s  %-5s  %s\n", "TOKEN_ID", "STATE", "CREATED", "EXPIRES", "USES",
                   "NODES", "LABELS");
            for (size_t i = 0; i < r->n_tokens; i++) {
                const Rayc__Rpc__JoinTokenInfo *t = r->tokens[i];
                char created[64], expires[64], uses[32], labels[512];
                cli__time_text(t->created_at, created, sizeof(created));
                cli__time_text(t->expires_at, expires, sizeof(expires));
                if (t->max_uses)
                    snprintf(uses, sizeof(uses), "%d/%d", t->uses, t->max_uses);
                else
                    snprintf(uses, sizeof(uses), "%d/unlimited", t->uses);
                cli__labels_text(t, labels, sizeof(labels));
                printf("%-16s  %-8s  %-19s  %-19s  %-13s  %-5zu  %s\n", t->token_id, cli__token_state(t, now), created,
                       expires, uses, t->n_node_ids, labels);
            }
        }
        rpc_msg_free(msg);
    }
    cli_disconnect(&c);
    return rc;
}

static int cli__token_revoke(int argc, char **argv)
{
    cli_args a;
    int rc = cli_parse(&cli__trevoke_spec, argc, argv, &a);
    if (rc != CLI_OK)
        return CLI_PARSED_EXIT(rc);
    argv = a.pos;
    if (!cli__is_hex(argv[0], AUTH_TOKEN_ID_HEX))
        return cli_usage_error(&cli__trevoke_spec,
                               "'%s' is not a token ID (%d hex digits, as 'rayc token list' shows them; the part "
                               "of a token before its dot)", argv[0], AUTH_TOKEN_ID_HEX);
    cli_conn c;
    rc = cli_connect(&c, cli_arg(&a, "--address"));
    if (rc != CLI_OK)
        return rc;
    Rayc__Rpc__RevokeJoinTokenRequest req = RAYC__RPC__REVOKE_JOIN_TOKEN_REQUEST__INIT;
    req.token_id = argv[0];
    ProtobufCMessage *msg = NULL;
    rc = cli_call(&c, &rayc__rpc__auth_service__descriptor, "RevokeJoinToken", &req.base, &msg);
    if (rc == CLI_OK) {
        printf("Revoked join token %s. Nodes that joined with it keep their certificates; `rayc node revoke "
               "NODE_ID` refuses one.\n", argv[0]);
        rpc_msg_free(msg);
    }
    cli_disconnect(&c);
    return rc;
}

static const cli_sub cli__token_subs[] = {
    {"create", "make a join token for new nodes", cli__token_create},
    {"list", "list the join tokens", cli__token_list},
    {"revoke", "withdraw a join token", cli__token_revoke},
};
static const cli_group cli__token_group = {
    "rayc token", "Join tokens: what a new host joins the cluster with (with the CA's hash).", cli__token_subs,
    (int)(sizeof(cli__token_subs) / sizeof(cli__token_subs[0])),
};

int cli_cmd_token(int argc, char **argv)
{
    return cli_group_run(&cli__token_group, argc, argv);
}

/* ---- rayc node revoke ------------------------------------------------------------------- */

static int cli__node_revoke(int argc, char **argv)
{
    cli_args a;
    int rc = cli_parse(&cli__nrevoke_spec, argc, argv, &a);
    if (rc != CLI_OK)
        return CLI_PARSED_EXIT(rc);
    const char *id = a.pos[0];
    uint8_t node_id[RC_NODE_ID_SIZE];
    if (!cli__is_hex(id, 2 * RC_NODE_ID_SIZE) || rc_id_from_hex(id, node_id, sizeof(node_id)) < 0)
        return cli_usage_error(&cli__nrevoke_spec, "'%s' is not a node ID (%d hex digits, as 'rayc list nodes' "
                               "shows them)", id, 2 * RC_NODE_ID_SIZE);
    cli_conn c;
    rc = cli_connect(&c, cli_arg(&a, "--address"));
    if (rc != CLI_OK)
        return rc;
    Rayc__Rpc__RevokeNodeRequest req = RAYC__RPC__REVOKE_NODE_REQUEST__INIT;
    req.node_id.data = node_id;
    req.node_id.len = sizeof(node_id);
    ProtobufCMessage *msg = NULL;
    rc = cli_call(&c, &rayc__rpc__auth_service__descriptor, "RevokeNode", &req.base, &msg);
    if (rc == CLI_OK) {
        printf("Revoked node %s: its certificate is refused from now on.\n", id);
        rpc_msg_free(msg);
    }
    cli_disconnect(&c);
    return rc;
}

static const cli_sub cli__node_subs[] = {
    {"revoke", "refuse a node's certificate from now on", cli__node_revoke},
};
static const cli_group cli__node_group = {
    "rayc node", "The cluster's nodes, one at a time.", cli__node_subs,
    (int)(sizeof(cli__node_subs) / sizeof(cli__node_subs[0])),
};

int cli_cmd_node(int argc, char **argv)
{
    return cli_group_run(&cli__node_group, argc, argv);
}

/* ---- rayc get-auth-token, rayc get-ca-cert ------------------------------------------------- */

/* Rewrites every copy of the admin token this host keeps for the cluster of ca_pem: the
 * auth_token of each session under the root whose ca.crt is that CA, and the file named by
 * RAYC_AUTH_TOKEN_PATH. Returns how many files were written. */
static int cli__rewrite_token_copies(const char *ca_pem, const char *token)
{
    char pin[AUTH_CA_HASH_MAX], root[PATH_MAX];
    if (auth_ca_hash(ca_pem, pin, sizeof(pin)) < 0)
        return 0;
    int written = 0;
    const char *path_env = getenv("RAYC_AUTH_TOKEN_PATH");
    if (path_env && *path_env) {
        if (auth_write_secret(path_env, token) == 0)
            written++;
        else
            fprintf(stderr, "rayc get-auth-token: warning: cannot rewrite %s (RAYC_AUTH_TOKEN_PATH)\n", path_env);
    }
    rc_session_root(root, sizeof(root));
    DIR *d = opendir(root);
    if (!d)
        return written;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "session_", 8) || !strcmp(e->d_name, "session_latest"))
            continue;
        char path[PATH_MAX + 600], other[AUTH_CA_HASH_MAX];
        char *cert = NULL;
        snprintf(path, sizeof(path), "%s/%s/" GCS_AUTH_CA_CERT_FILE, root, e->d_name);
        int same = auth_read_file(path, &cert) == 0 && auth_ca_hash(cert, other, sizeof(other)) == 0 &&
                   auth_ca_hash_equal(pin, other);
        rc_free(cert);
        snprintf(path, sizeof(path), "%s/%s/" GCS_AUTH_TOKEN_FILE, root, e->d_name);
        if (!same || access(path, F_OK) != 0)
            continue;
        if (auth_write_secret(path, token) == 0)
            written++;
        else
            fprintf(stderr, "rayc get-auth-token: warning: cannot rewrite %s\n", path);
    }
    closedir(d);
    return written;
}

/* Ray prints the token alone, without a newline, for $(...) and pipes; a terminal gets one. */
static void cli__print_token(const char *token)
{
    fputs(token, stdout);
    if (isatty(STDOUT_FILENO))
        fputc('\n', stdout);
    fflush(stdout);
}

static const cli_opt cli__get_token_opts[] = {
    {"--generate", NULL, NULL, NULL, "replace the admin token (the old one is refused from then on)", NULL},
    CLI_OPT_ADDRESS,
};
static const cli_spec cli__get_token_spec = {
    "rayc get-auth-token", NULL,
    "Prints the client (admin) token this host's clients use: $RAYC_AUTH_TOKEN,\n"
    "$RAYC_AUTH_TOKEN_PATH, else the latest session's auth_token.",
    NULL, CLI_SPEC_OPTS(cli__get_token_opts), 0, 0,
};

int cli_cmd_get_auth_token(int argc, char **argv)
{
    cli_args a;
    int rc = cli_parse(&cli__get_token_spec, argc, argv, &a);
    if (rc != CLI_OK)
        return CLI_PARSED_EXIT(rc);
    const char *address = cli_arg(&a, "--address");
    int generate = !!cli_arg(&a, "--generate");
    if (!generate) {
        char *token = NULL;
        char where[1024];
        if (auth_find_client_token(&token, where, sizeof(where)) < 0) {
            fprintf(stderr, "rayc get-auth-token: no token found: %s\n", where);
            return CLI_FAIL;
        }
        cli__print_token(token);
        gcs_admin_creds shown = {.token = token}; /* wiped as it is freed */
        gcs_admin_creds_free(&shown);
        return CLI_OK;
    }
    cli_conn c;
    rc = cli_connect(&c, address);
    if (rc != CLI_OK)
        return rc;
    Rayc__Rpc__RotateAdminTokenRequest req = RAYC__RPC__ROTATE_ADMIN_TOKEN_REQUEST__INIT;
    ProtobufCMessage *msg = NULL;
    rc = cli_call(&c, &rayc__rpc__auth_service__descriptor, "RotateAdminToken", &req.base, &msg);
    if (rc == CLI_OK) {
        const Rayc__Rpc__RotateAdminTokenReply *r = (const void *)msg;
        const rpc_security *sec = rpc_security_get();
        int written = sec->ca_cert_pem ? cli__rewrite_token_copies(sec->ca_cert_pem, r->token) : 0;
        fprintf(stderr, "rayc get-auth-token: the admin token was replaced; the old one is refused from now on "
                        "(%d cop%s on this host rewritten).\n", written, written == 1 ? "y" : "ies");
        const char *env = getenv("RAYC_AUTH_TOKEN");
        if (env && *env)
            fprintf(stderr, "rayc get-auth-token: RAYC_AUTH_TOKEN still holds the old token; set it to the new "
                            "one.\n");
        cli__print_token(r->token);
        rpc_msg_free(msg);
    }
    cli_disconnect(&c);
    return rc;
}

static const cli_spec cli__get_ca_spec = {
    "rayc get-ca-cert", NULL,
    "Prints the cluster's CA certificate (PEM) that this host's clients trust: $RAYC_CA_CERT,\n"
    "else the latest session's ca.crt. Clients on other hosts set RAYC_CA_CERT to a copy.",
    NULL, NULL, 0, 0, 0,
};

int cli_cmd_get_ca_cert(int argc, char **argv)
{
    cli_args a;
    int rc = cli_parse(&cli__get_ca_spec, argc, argv, &a);
    if (rc != CLI_OK)
        return CLI_PARSED_EXIT(rc);
    char *pem = NULL;
    char where[1024];
    if (auth_find_ca_cert(&pem, where, sizeof(where)) < 0) {
        fprintf(stderr, "rayc get-ca-cert: no CA certificate found: %s\n", where);
        return CLI_FAIL;
    }
    fputs(pem, stdout);
    if (pem[0] && pem[strlen(pem) - 1] != '\n')
        fputc('\n', stdout);
    rc_free(pem);
    return CLI_OK;
}
