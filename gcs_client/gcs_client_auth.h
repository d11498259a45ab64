/*
 * gcs_client_auth: what the rayc command and librayc need from the cluster's security
 * (ARCHITECTURE §14) on top of gcs_client — the admin credentials a head leaves on its host,
 * join tokens made with them (rayc.rpc.AuthService.CreateJoinToken), a GCS's CA fetched and
 * pinned by hash before anything is trusted, the join command printed for other hosts, and
 * the security a client process chooses from its environment.
 *
 * The *_sync functions run a loop and an rpc context of their own and use the credentials
 * they are given, never the process-wide security (rpc_security_set), so a process may call
 * them before it has chosen its own: `rayc start` between starting the GCS and the raylet,
 * rayc_init while it starts a local cluster.
 *
 * Strings handed out are freed by the caller with rc_free. Functions return 0 or a negative
 * RC_E* code and then, where err is given, say why in a sentence. One thread at a time; the
 * *_sync functions not from inside a loop callback.
 */
#ifndef RAYC_GCS_GCS_CLIENT_AUTH_H
#define RAYC_GCS_GCS_CLIENT_AUTH_H

#include <stddef.h>
#include <stdint.h>

/* Files of a head's auth directory (rayc-gcs --auth-dir DIR, normally the session). */
#define GCS_AUTH_CA_CERT_FILE "ca.crt"
#define GCS_AUTH_TOKEN_FILE "auth_token"
/* A session started with --insecure holds this (empty) file, so that clients on its host
 * connect in plaintext without RAYC_INSECURE=1. */
#define GCS_AUTH_INSECURE_FILE "insecure"

/* The cluster's admin credentials: its CA certificate (PEM) and the admin token. */
typedef struct gcs_admin_creds {
    char *ca_cert_pem;
    char *token;
} gcs_admin_creds;

/* The credentials a GCS wrote into its auth directory dir (ca.crt, auth_token), waiting up
 * to timeout_ms for both to appear. RC_ETIMEDOUT (err names the missing file). */
int gcs_admin_creds_from_dir(const char *dir, int64_t timeout_ms, gcs_admin_creds *out, char *err,
                             size_t errlen);
/* The credentials as a client on this host finds them (auth_find_ca_cert,
 * auth_find_client_token: the environment, then the latest session). RC_ENOENT with err
 * saying where it looked. */
int gcs_admin_creds_find(gcs_admin_creds *out, char *err, size_t errlen);
/* Frees what c holds (c itself is the caller's); the token is wiped first. */
void gcs_admin_creds_free(gcs_admin_creds *c);

/* What a join token allows. */
typedef struct gcs_join_token_spec {
    int64_t ttl_seconds; /* 0: never expires */
    int32_t max_uses;    /* 0: unlimited */
    const char *const *label_keys; /* labels every node that joins with it gets */
    const char *const *label_values;
    size_t n_labels;
} gcs_join_token_spec;

/* Asks the GCS at gcs_address ("host:port") for a new join token, calling with admin's
 * credentials (TLS verified against its CA, the admin token as bearer). *token gets the
 * token's text (shown once: the GCS keeps only its hash) and, when id_out is not NULL, its
 * id (at least 17 bytes). RC_EUNAVAIL when the GCS cannot be reached within timeout_ms,
 * RC_EAUTH when it refuses the credentials, RC_EINVAL when it refuses the request. */
int gcs_auth_create_join_token_sync(const char *gcs_address, const gcs_admin_creds *admin,
                                    const gcs_join_token_spec *spec, int64_t timeout_ms,
                                    char **token, char *id_out, char *err, size_t errlen);

/* The CA certificate of the GCS at gcs_address whose hash is pin ("sha256:<hex>"): the
 * server's chain is read without trusting anything (auth_fetch_peer_chain) and the CA is
 * taken only if it matches the pin (auth_pin_ca). RC_EUNAVAIL, RC_EAUTH. */
int gcs_auth_fetch_pinned_ca(const char *gcs_address, const char *pin, int timeout_ms, char **ca_pem,
                             char *err, size_t errlen);

/* 1 if text is a CA pin of the form "sha256:" and 64 hex digits. */
int gcs_auth_pin_valid(const char *text);

/* The command another host runs to join: "rayc start --address A --join-token T
 * --ca-cert-hash sha256:<hash of ca_cert_pem>". RC_EINVAL if the CA does not parse. */
int gcs_auth_join_command(const char *gcs_address, const char *token, const char *ca_cert_pem,
                          char *out, size_t outlen);

/* 1 if the latest session on this host was started with --insecure (GCS_AUTH_INSECURE_FILE)
 * and its GCS is address (NULL: any). */
int gcs_auth_latest_session_insecure(const char *address);

/* Sets the process-wide security of a client of the GCS at address (NULL: the one the latest
 * session records) from rpc_security_from_env. When that finds no CA or token and the latest
 * session on this host is an --insecure one of that same address (GCS_AUTH_INSECURE_FILE),
 * plaintext is chosen instead: there is no secret to lose. RC_ENOENT with rpc's sentence
 * (where it looked) otherwise. */
int gcs_auth_client_security(const char *address, char *err, size_t errlen);

#endif
