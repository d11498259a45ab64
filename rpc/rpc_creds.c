/*
 * Security configuration and gRPC credentials (ARCHITECTURE §14).
 *
 * One rpc_security per process is the default for every server and client: the GCS sets
 * its own (its certificate, presented to raylets and workers), a raylet its node
 * certificate once it has joined, a driver or worker its CA and token. Servers and clients
 * take a private copy (rpc__sec) when they are created, so a later rpc_security_set changes
 * only what is created afterwards.
 *
 * TCP listeners serve TLS with the process's certificate and ask for a client certificate,
 * verified against the cluster CA when one is presented (token-only clients have none).
 * Channels to TCP targets verify the server against the cluster CA only — the system's
 * roots are never trusted — present the process certificate when it is an identity (GCS,
 * node), and carry the bearer token as "authorization: Bearer <token>" metadata, which
 * rpc_client.c attaches to TLS channels only. Unix sockets are plaintext (their directory
 * is the access control).
 *
 * rpc_security_set is not thread-safe against itself or against creating servers and
 * clients on other threads: processes call it during start, before any loop runs, and a
 * worker or driver again only on its loop thread.
 */
#include <grpc/grpc_security.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "auth.h"
#include "rc_alloc.h"
#include "rc_err.h"
#include "rpc_int.h"

static rpc__sec *rpc__default;

static char *rpc__dup_or_null(const char *s)
{
    return s && *s ? rc_strdup(s) : NULL;
}

rpc__sec *rpc__sec_new(const rpc_security *sec)
{
    rpc__sec *s = RC_NEW(rpc__sec);
    s->refs = 1;
    if (!sec || sec->insecure) {
        s->pub.insecure = 1;
        return s;
    }
    s->pub.ca_cert_pem = rpc__dup_or_null(sec->ca_cert_pem);
    s->pub.cert_pem = rpc__dup_or_null(sec->cert_pem);
    s->pub.key_pem = rpc__dup_or_null(sec->key_pem);
    s->pub.present_cert = sec->present_cert && s->pub.cert_pem && s->pub.key_pem;
    s->pub.token = rpc__dup_or_null(sec->token);
    if (s->pub.token) {
        size_t n = strlen("Bearer ") + strlen(s->pub.token) + 1;
        s->bearer = rc_malloc(n);
        snprintf(s->bearer, n, "Bearer %s", s->pub.token);
    }
    return s;
}

rpc__sec *rpc__sec_ref(rpc__sec *s)
{
    s->refs++;
    return s;
}

void rpc__sec_unref(rpc__sec *s)
{
    if (!s || --s->refs > 0)
        return;
    rc_free((char *)s->pub.ca_cert_pem);
    rc_free((char *)s->pub.cert_pem);
    rc_free((char *)s->pub.key_pem);
    rc_free((char *)s->pub.token);
    rc_free(s->bearer);
    rc_free(s);
}

/* Checks that the PEMs parse and that the key belongs to the certificate, so a mistake is
 * reported at configuration time rather than as a failed handshake much later. */
static int rpc__check_pems(const rpc_security *sec, char *err, size_t errlen)
{
    if (!sec->ca_cert_pem || !*sec->ca_cert_pem) {
        snprintf(err, errlen, "no CA certificate: a secure process must know its cluster's CA");
        return RC_EINVAL;
    }
    char cn[256];
    if (auth_cert_cn(sec->ca_cert_pem, cn, sizeof(cn)) < 0) {
        snprintf(err, errlen, "the CA certificate is not a PEM certificate");
        return RC_EINVAL;
    }
    if (!sec->cert_pem != !sec->key_pem) {
        snprintf(err, errlen, "a certificate needs its key, and a key its certificate");
        return RC_EINVAL;
    }
    if (!sec->cert_pem)
        return 0;
    int rc = RC_EINVAL;
    BIO *cb = BIO_new_mem_buf(sec->cert_pem, -1), *kb = BIO_new_mem_buf(sec->key_pem, -1);
    X509 *cert = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
    EVP_PKEY *key = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
    if (!cert)
        snprintf(err, errlen, "the certificate is not a PEM certificate");
    else if (!key)
        snprintf(err, errlen, "the private key is not a PEM private key");
    else if (X509_check_private_key(cert, key) != 1)
        snprintf(err, errlen, "the private key does not match the certificate");
    else
        rc = 0;
    EVP_PKEY_free(key);
    X509_free(cert);
    BIO_free(cb);
    BIO_free(kb);
    return rc;
}

int rpc_security_set(const rpc_security *sec, char *err, size_t errlen)
{
    char scratch[256];
    if (!err || !errlen) {
        err = scratch;
        errlen = sizeof(scratch);
    }
    err[0] = '\0';
    if (sec && !sec->insecure) {
        int rc = rpc__check_pems(sec, err, errlen);
        if (rc < 0)
            return rc;
    }
    rpc__sec *s = rpc__sec_new(sec);
    rpc__sec_unref(rpc__default);
    rpc__default = s;
    return 0;
}

const rpc_security *rpc_security_get(void)
{
    if (!rpc__default)
        rpc__default = rpc__sec_new(NULL);
    return &rpc__default->pub;
}

rpc__sec *rpc__sec_for(const rpc_security *explicit_sec)
{
    if (explicit_sec)
        return rpc__sec_new(explicit_sec);
    rpc_security_get();
    return rpc__sec_ref(rpc__default);
}

static char *rpc__read_env_file(const char *var)
{
    const char *path = getenv(var);
    char *out = NULL;
    if (path && *path && auth_read_file(path, &out) == 0)
        return out;
    return NULL;
}

int rpc_security_from_env(char *err, size_t errlen)
{
    const char *insecure = getenv("RAYC_INSECURE");
    if (insecure && (!strcmp(insecure, "1") || !strcmp(insecure, "true"))) {
        rpc_security sec = {.insecure = 1};
        return rpc_security_set(&sec, err, errlen);
    }
    char *ca = NULL, *token = NULL;
    char where[768];
    if (auth_find_ca_cert(&ca, where, sizeof(where)) < 0) {
        snprintf(err, errlen, "%s", where);
        return RC_ENOENT;
    }
    if (auth_find_client_token(&token, where, sizeof(where)) < 0) {
        rc_free(ca);
        snprintf(err, errlen, "%s", where);
        return RC_ENOENT;
    }
    char *cert = rpc__read_env_file("RAYC_TLS_CERT"), *key = rpc__read_env_file("RAYC_TLS_KEY");
    const char *present = getenv("RAYC_TLS_PRESENT");
    rpc_security sec = {
        .ca_cert_pem = ca,
        .cert_pem = cert && key ? cert : NULL,
        .key_pem = cert && key ? key : NULL,
        .present_cert = present && !strcmp(present, "1"),
        .token = token,
    };
    int rc = rpc_security_set(&sec, err, errlen);
    rc_free(ca);
    rc_free(token);
    rc_free(cert);
    rc_free(key);
    return rc;
}

static int rpc__is_unix(const char *addr)
{
    return strncmp(addr, "unix:", 5) == 0;
}

grpc_server_credentials *rpc__server_creds(const rpc__sec *s, const char *addr)
{
    if (s->pub.insecure || rpc__is_unix(addr) || !s->pub.cert_pem)
        return grpc_insecure_server_credentials_create();
    grpc_ssl_pem_key_cert_pair pair = {s->pub.key_pem, s->pub.cert_pem};
    return grpc_ssl_server_credentials_create_ex(
        s->pub.ca_cert_pem, &pair, 1, GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY, NULL);
}

int rpc__server_is_tls(const rpc__sec *s)
{
    return !s->pub.insecure && s->pub.cert_pem != NULL;
}

/* After the chain verified against the CA: the server's certificate must name peer_name
 * (userdata). Runs on gRPC's threads; reads only its own copy. 0 accepts. */
static int rpc__verify_peer_name(const char *target_name, const char *peer_pem, void *userdata)
{
    (void)target_name;
    char cn[160];
    return peer_pem && auth_cert_cn(peer_pem, cn, sizeof(cn)) == 0 && strcmp(cn, userdata) == 0 ? 0 : 1;
}

static void rpc__free_peer_name(void *userdata)
{
    rc_free(userdata);
}

grpc_channel_credentials *rpc__channel_creds(const rpc__sec *s, const char *target, const char *peer_name)
{
    if (s->pub.insecure || rpc__is_unix(target) || !s->pub.ca_cert_pem)
        return grpc_insecure_credentials_create();
    grpc_ssl_pem_key_cert_pair pair = {s->pub.key_pem, s->pub.cert_pem};
    grpc_ssl_verify_peer_options verify = {0};
    if (peer_name && *peer_name) {
        verify.verify_peer_callback = rpc__verify_peer_name;
        verify.verify_peer_callback_userdata = rc_strdup(peer_name);
        verify.verify_peer_destruct = rpc__free_peer_name;
    }
    return grpc_ssl_credentials_create_ex(s->pub.ca_cert_pem, s->pub.present_cert ? &pair : NULL,
                                          peer_name && *peer_name ? &verify : NULL, NULL);
}

int rpc__channel_is_tls(const rpc__sec *s, const char *target)
{
    return !s->pub.insecure && !rpc__is_unix(target) && s->pub.ca_cert_pem != NULL;
}
