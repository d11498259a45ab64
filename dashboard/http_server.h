/*
 * http_server: a small HTTP server for a daemon's loop, on GNU libmicrohttpd (ARCHITECTURE
 * §15). The metrics endpoint of rayc-gcs and rayc-raylet uses it; the dashboard reuses it.
 *
 * Threads: libmicrohttpd parses HTTP on its own threads (one per connection, bounded), which
 * never touch the daemon's state. Each complete request is posted to the loop thread
 * (uv_async_t); there the server checks the caller's token and runs the handler, which reads
 * the daemon's state freely and fills the response; the connection's thread waits for it on
 * a condition variable (at most request_timeout_ms, then 503). This keeps rule §2 (one loop
 * thread owns all state, no locks around it): the only shared data is the queue of
 * requests, under one mutex. The price is that an answer waits for the loop, which is what
 * a scrape should measure anyway, and nothing is rendered while nobody asks.
 *
 * Deferred answers: a handler that needs another service's reply (an RPC) takes the
 * response for later with http_response_defer and returns; when the reply arrives, the loop
 * completes it with http_deferred_finish. The connection's thread keeps waiting, bounded by
 * the same request_timeout_ms (then 503 saying so). The handle belongs to the handler's code
 * until it is finished, exactly once, whatever became of the connection: an answer that
 * comes after the timeout, after the client went away or after http_server_stop is dropped
 * (and freed) there, never written to a connection that is gone.
 *
 * Authorization: with require_token, every request must carry "Authorization: Bearer <token>"
 * that auth's rules accept (rpc_server_check_bearer: a cluster token verified with the CA,
 * not revoked; anything goes on an insecure cluster); others get 401 with a body saying why
 * and "WWW-Authenticate: Bearer".
 *
 * Transport: HTTPS (GnuTLS, through libmicrohttpd) with the certificate and key the
 * process's RPC servers use, signed by the cluster CA, so the token never travels in clear;
 * a client trusts the cluster CA (the session's ca.crt) as it does for RPC. Plain HTTP only
 * in an --insecure process. Processes that hold no certificate of their own (the dashboard,
 * the market) make one with http_tls_issue on the head.
 *
 * Every function here: loop thread only.
 */
#ifndef RAYC_DASHBOARD_HTTP_SERVER_H
#define RAYC_DASHBOARD_HTTP_SERVER_H

#include <stddef.h>
#include <uv.h>

#include "rc_buf.h"
#include "rpc.h"

typedef struct http_server http_server;

typedef struct http_request {
    const char *method; /* "GET", "POST", ... */
    const char *path;   /* "/metrics", without the query string */
    const char *body;   /* NUL-terminated; "" when none */
    size_t body_len;
    const rpc_identity *identity; /* the caller, when the server checks tokens; else NULL */
    const char *args; /* the query string's arguments, decoded: "name\0value\0..." */
    size_t args_len;
} http_request;

/* The decoded value of query argument name ("" for "?name"), or NULL when absent. */
const char *http_request_arg(const http_request *req, const char *name);

typedef struct http_response {
    int status;               /* 200 unless the handler says otherwise */
    const char *content_type; /* static string; default "text/plain; charset=utf-8" */
    rc_buf body;              /* freed by the server */
    /* Extra header lines, a static string "Name: value\r\n..." (each line ends in \r\n);
     * NULL: none. */
    const char *headers;
} http_response;

/* Runs on the loop thread for each request (after authorization). The request's fields are
 * valid only while it runs (copy what a deferred answer needs). */
typedef void (*http_handler_fn)(const http_request *req, http_response *resp, void *arg);
/* Whether a request for path (method "GET" or "HEAD") may be answered without a token
 * (static files that carry no data). Loop thread. */
typedef int (*http_public_fn)(const char *method, const char *path, void *arg);

typedef struct http_server_options {
    const char *host;          /* the IP to bind (v4 or v6 literal); NULL: 127.0.0.1 */
    int port;                  /* 0: a free port */
    http_handler_fn handler;
    void *arg;
    int require_token;         /* check every request's token (rpc_server_check_bearer) */
    rpc_server *auth;          /* whose rules (revocation too); NULL: the process-wide CA */
    http_public_fn is_public;  /* paths that need no token even with require_token; NULL: none */
    int request_timeout_ms;    /* <= 0: 10000 */
    size_t max_body;           /* <= 0: 1 MiB; larger bodies get 413 */
    /* TLS. Both NULL: as the process's RPC servers (rpc_security_get): HTTPS with their
     * certificate and key; plain HTTP only when the process is insecure; RC_EINVAL when it
     * is secure but holds no certificate. Else HTTPS with these PEMs (the certificate, then
     * any chain). Copied. */
    const char *tls_cert_pem, *tls_key_pem;
} http_server_options;

/* For a daemon's metrics endpoint: 1 for a GET (or HEAD) of /metrics; else fills resp with
 * 404 or 405 and a sentence saying where the metrics are, and 0. */
int http_metrics_request(const http_request *req, http_response *resp);

/* A response answered later (see the file comment). */
typedef struct http_deferred http_deferred;

/* In a handler, with the resp it was given: the request is answered later with
 * http_deferred_finish, and whatever resp holds when the handler returns is discarded. A
 * second call in the same handler returns the same handle. NULL when resp is not the
 * response of a handler now running (answer it directly then). Loop thread. */
http_deferred *http_response_defer(http_response *resp);
/* Answers d's request with resp (status, content_type, body taken, headers, as a handler
 * fills them; resp->body is freed either way) and frees d. 1 when the connection was still
 * waiting; 0 when the answer was dropped because the connection had given up (it got 503
 * after request_timeout_ms; the client may have gone earlier) or the server stopped (503).
 * Exactly once per handle, also after http_server_stop (then it only frees d). Loop thread. */
int http_deferred_finish(http_deferred *d, http_response *resp);
/* 1 while d's connection still waits for the answer (so a caller may skip work nobody
 * will read). Loop thread. */
int http_deferred_waiting(const http_deferred *d);

/* Starts serving. RC_EIO when the address cannot be bound (port in use), RC_EINVAL for a
 * host that is not an IP literal, RC_EINVAL when HTTPS is due but there is no certificate or
 * the key does not fit it, RC_ESTATE when libmicrohttpd was built without TLS (all logged).
 * *out is freed by http_server_stop. */
int http_server_start(uv_loop_t *loop, const http_server_options *opts, http_server **out);
/* The bound TCP port. */
int http_server_port(const http_server *srv);
/* "https", or "http" for a server of an insecure process: for the URLs daemons print. */
const char *http_server_scheme(const http_server *srv);

/* A certificate for a process that serves HTTPS but holds no certificate of its own (the
 * dashboard, the market), made where the cluster CA's key is (the head's auth directory,
 * normally its session): a new key and a certificate with CN cn signed by the CA in
 * auth_dir/ca.crt and auth_dir/ca.key, whose subjectAltNames are ips (n_ips, at most
 * AUTH_MAX_SANS - 1), 127.0.0.1, "localhost" and this host's name. *cert_pem (the leaf, then
 * the CA) and *key_pem are freed by the caller with rc_free (wipe the key first). RC_ENOENT
 * with err when auth_dir holds no CA key, RC_EINVAL when the CA does not sign. Any thread. */
int http_tls_issue(const char *auth_dir, const char *cn, const char *const *ips, size_t n_ips,
                   char **cert_pem, char **key_pem, char *err, size_t errlen);
/* Stops serving: requests waiting for the loop are released at once (503, or their
 * connection is closed as libmicrohttpd shuts down), libmicrohttpd's threads are joined, and
 * srv is freed once the loop has closed its handle. No handler runs after this. Deferred
 * answers not yet finished are answered 503; their handles stay valid until
 * http_deferred_finish, which then only frees them. */
void http_server_stop(http_server *srv);

#endif
