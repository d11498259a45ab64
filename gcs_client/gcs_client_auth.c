/*
 * gcs_client_auth: admin credentials on this host, join tokens, CA pinning and a client's
 * security. See gcs_client_auth.h.
 *
 * A *_sync call gets a loop, an rpc context and a client of its own, created with explicit
 * security options, and tears them down before it returns: nothing of it outlives the call
 * and the process-wide security is never read or changed. One thread at a time.
 */
#include "gcs_client_auth.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "auth.h"
#include "gcs_client.h"
#include "rayc_auth.pb-c.h"
#include "rc_alloc.h"
#include "rc_err.h"
#include "rc_session.h"
#include "rc_time.h"
#include "rpc.h"

/* ---- credentials on this host ------------------------------------------------------------ */

static void gcs__wipe_free(char *s)
{
    if (!s)
        return;
    volatile char *p = s;
    while (*p)
        *p++ = '\0';
    rc_free(s);
}

static void gcs__rstrip(char *s)
{
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
}

void gcs_admin_creds_free(gcs_admin_creds *c)
{
    rc_free(c->ca_cert_pem);
    gcs__wipe_free(c->token);
    c->ca_cert_pem = c->token = NULL;
}

int gcs_admin_creds_from_dir(const char *dir, int64_t timeout_ms, gcs_admin_creds *out, char *err,
                             size_t errlen)
{
    char ca_path[PATH_MAX], token_path[PATH_MAX];
    snprintf(ca_path, sizeof(ca_path), "%s/" GCS_AUTH_CA_CERT_FILE, dir);
    snprintf(token_path, sizeof(token_path), "%s/" GCS_AUTH_TOKEN_FILE, dir);
    int64_t deadline = rc_mono_ms() + timeout_ms;
    for (;;) {
        /* The GCS writes both atomically (auth_write_secret), so a file that exists is whole. */
        if (access(ca_path, R_OK) == 0 && access(token_path, R_OK) == 0)
            break;
        if (rc_mono_ms() >= deadline) {
            snprintf(err, errlen, "the GCS did not write %s within %lld s",
                     access(ca_path, R_OK) == 0 ? token_path : ca_path, (long long)(timeout_ms / 1000));
            return RC_ETIMEDOUT;
        }
        rc_sleep_ms(20);
    }
    gcs_admin_creds c = {0};
    if (auth_read_file(ca_path, &c.ca_cert_pem) < 0 || auth_read_file(token_path, &c.token) < 0) {
        snprintf(err, errlen, "cannot read %s and %s", ca_path, token_path);
        gcs_admin_creds_free(&c);
        return RC_EIO;
    }
    gcs__rstrip(c.token);
    *out = c;
    return 0;
}

int gcs_admin_creds_find(gcs_admin_creds *out, char *err, size_t errlen)
{
    gcs_admin_creds c = {0};
    char where[768];
    if (auth_find_ca_cert(&c.ca_cert_pem, where, sizeof(where)) < 0) {
        snprintf(err, errlen, "%s", where);
        return RC_ENOENT;
    }
    if (auth_find_client_token(&c.token, where, sizeof(where)) < 0) {
        snprintf(err, errlen, "%s", where);
        gcs_admin_creds_free(&c);
        return RC_ENOENT;
    }
    *out = c;
    return 0;
}

/* ---- one call with given credentials ----------------------------------------------------- */

/* Calls method of AuthService at address with sec; on OK checks the reply's GcsStatus. */
static int gcs__auth_call_sync(const char *address, const rpc_security *sec, const char *method,
                               const ProtobufCMessage *req, int64_t timeout_ms, ProtobufCMessage **reply,
                               char *err, size_t errlen)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    rpc_ctx *ctx = NULL;
    rpc_client *cli = NULL;
    rpc_client_options opts = {.security = sec, .wait_for_ready = 1};
    int rc = rpc_ctx_create(&loop, &ctx);
    if (rc == 0)
        rc = rpc_client_create(ctx, address, &opts, &cli);
    if (rc < 0) {
        snprintf(err, errlen, "cannot create a client for the GCS at %s: %s", address, rc_strerror(rc));
    } else {
        char msg[512] = "";
        int code = rpc_client_call_sync(cli, &rayc__rpc__auth_service__descriptor, method, req, timeout_ms, reply,
                                        msg, sizeof(msg));
        if (code != GRPC_STATUS_OK) {
            snprintf(err, errlen, "%s to the GCS at %s failed: %s (%s)", method, address, msg,
                     rpc_code_name((grpc_status_code)code));
            rc = code == GRPC_STATUS_UNAUTHENTICATED || code == GRPC_STATUS_PERMISSION_DENIED ? RC_EAUTH
                 : code == GRPC_STATUS_INVALID_ARGUMENT                                       ? RC_EINVAL
                                                                                               : RC_EUNAVAIL;
        } else {
            const char *why;
            if (gcs_reply_status(*reply, &why) != GCS_STATUS_OK) {
                snprintf(err, errlen, "%s: %s", method, why[0] ? why : "refused");
                rpc_msg_free(*reply);
                *reply = NULL;
                rc = RC_EINVAL;
            }
        }
    }
    if (cli)
        rpc_client_destroy(cli);
    if (ctx)
        rpc_ctx_destroy(ctx);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return rc;
}

int gcs_auth_create_join_token_sync(const char *gcs_address, const gcs_admin_creds *admin,
                                    const gcs_join_token_spec *spec, int64_t timeout_ms,
                                    char **token, char *id_out, char *err, size_t errlen)
{
    if (spec->n_labels > 256) {
        snprintf(err, errlen, "a join token carries at most 256 labels");
        return RC_EINVAL;
    }
    Rayc__Rpc__CreateJoinTokenRequest req = RAYC__RPC__CREATE_JOIN_TOKEN_REQUEST__INIT;
    req.ttl_seconds = spec->ttl_seconds;
    req.max_uses = spec->max_uses;
    Rayc__Rpc__CreateJoinTokenRequest__LabelsEntry entries[256], *ptrs[256];
    for (size_t i = 0; i < spec->n_labels; i++) {
        rayc__rpc__create_join_token_request__labels_entry__init(&entries[i]);
        entries[i].key = (char *)spec->label_keys[i];
        entries[i].value = (char *)spec->label_values[i];
        ptrs[i] = &entries[i];
    }
    req.labels = ptrs;
    req.n_labels = spec->n_labels;
    rpc_security sec = {.ca_cert_pem = admin->ca_cert_pem, .token = admin->token};
    ProtobufCMessage *reply = NULL;
    int rc = gcs__auth_call_sync(gcs_address, &sec, "CreateJoinToken", &req.base, timeout_ms, &reply, err, errlen);
    if (rc < 0)
        return rc;
    Rayc__Rpc__CreateJoinTokenReply *r = (Rayc__Rpc__CreateJoinTokenReply *)reply;
    if (!r->join_token || !r->join_token[0]) {
        snprintf(err, errlen, "CreateJoinToken: the GCS at %s answered without a token", gcs_address);
        rpc_msg_free(reply);
        return RC_EPROTO;
    }
    *token = rc_strdup(r->join_token);
    if (id_out)
        snprintf(id_out, AUTH_TOKEN_ID_HEX + 1, "%s", r->info && r->info->token_id ? r->info->token_id : "");
    rpc_msg_free(reply);
    return 0;
}

/* ---- pinning --------------------------------------------------------------------------- */

int gcs_auth_pin_valid(const char *text)
{
    if (!text || strncmp(text, "sha256:", 7))
        return 0;
    const char *hex = text + 7;
    size_t n = 0;
    for (; hex[n]; n++)
        if (!isxdigit((unsigned char)hex[n]))
            return 0;
    return n == 64;
}

int gcs_auth_fetch_pinned_ca(const char *gcs_address, const char *pin, int timeout_ms, char **ca_pem,
                             char *err, size_t errlen)
{
    char *chain = NULL;
    char why[512] = "";
    int rc = auth_fetch_peer_chain(gcs_address, timeout_ms, &chain, why, sizeof(why));
    if (rc < 0) {
        snprintf(err, errlen, "cannot reach the GCS at %s over TLS: %s", gcs_address, why);
        return rc;
    }
    rc = auth_pin_ca(chain, pin, ca_pem, why, sizeof(why));
    rc_free(chain);
    if (rc < 0)
        snprintf(err, errlen, "the GCS at %s is not the cluster you pinned: %s", gcs_address, why);
    return rc;
}

int gcs_auth_join_command(const char *gcs_address, const char *token, const char *ca_cert_pem,
                          char *out, size_t outlen)
{
    char hash[AUTH_CA_HASH_MAX];
    int rc = auth_ca_hash(ca_cert_pem, hash, sizeof(hash));
    if (rc < 0)
        return rc;
    snprintf(out, outlen, "rayc start --address %s --join-token %s --ca-cert-hash %s", gcs_address, token, hash);
    return 0;
}

/* ---- a client's security ----------------------------------------------------------------- */

int gcs_auth_latest_session_insecure(const char *address)
{
    char root[PATH_MAX], marker[PATH_MAX + 64], latest[512];
    rc_session_root(root, sizeof(root));
    snprintf(marker, sizeof(marker), "%s/session_latest/" GCS_AUTH_INSECURE_FILE, root);
    if (access(marker, F_OK) != 0)
        return 0;
    if (!address)
        return 1;
    return rc_session_latest_address(latest, sizeof(latest)) == 0 && !strcmp(latest, address);
}

int gcs_auth_client_security(const char *address, char *err, size_t errlen)
{
    int rc = rpc_security_from_env(err, errlen);
    if (rc != RC_ENOENT || !gcs_auth_latest_session_insecure(address))
        return rc;
    rpc_security sec = {.insecure = 1};
    return rpc_security_set(&sec, err, errlen);
}
