/*
 * http_server: libmicrohttpd's threads hand complete requests to the loop thread and wait
 * for the answer (see http_server.h for why).
 *
 * A request (http__req) is shared by its connection's thread and the loop: it holds one
 * reference for the connection (dropped when libmicrohttpd says the request is complete)
 * and one while it is queued for, or being answered by, the loop. srv->mu guards the queue,
 * the references, the answer fields and srv->closing; nothing else is shared. The handler
 * runs without the lock.
 *
 * TLS is libmicrohttpd's (GnuTLS): the handshake runs on the connection's thread, so a client
 * that sends garbage or plaintext only loses its own connection; the key and certificate are
 * copies the server keeps (and wipes) until it is freed.
 *
 * A deferred answer (http_deferred) takes over the loop's reference: the request stays
 * alive, whatever its connection does, until the handle is finished. The handles of a
 * server are on its list (loop thread only), so that http_server_stop can answer them 503
 * and cut them loose (d->srv = NULL) before srv is freed; a handle finished after that
 * touches nothing but itself.
 */
#include "http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "rc_alloc.h"
#include "rc_err.h"
#include "rc_list.h"
#include "rc_log.h"

typedef struct http__req {
    struct http__req *next;
    http_server *srv;
    char *method, *path, *authorization;
    rc_buf body;
    rc_buf args; /* query arguments, "name\0value\0..." */
    int too_big;
    int refs;
    int done; /* the answer below is final */
    int deferred;  /* the handler answers later (http_deferred) */
    int abandoned; /* the connection stopped waiting without an answer */
    int status;
    const char *content_type;
    const char *headers; /* static extra header lines, or NULL */
    rc_buf answer;
} http__req;

struct http_server {
    uv_loop_t *loop;
    uv_async_t async;
    struct MHD_Daemon *daemon;
    http_server_options opts;
    int port;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    http__req *head, *tail; /* waiting for the loop */
    int closing;
    char *tls_cert, *tls_key; /* NULL: plain HTTP (an insecure process) */
    rc_list deferred; /* http_deferred.link: answers not yet finished; loop thread only */
};

struct http_deferred {
    http_server *srv; /* NULL once the server has stopped (r was answered 503 and let go) */
    http__req *r;     /* holds the loop's reference while srv is set */
    rc_list link; /* on srv->deferred while srv is set */
};

/* The handler running now on this thread, so http_response_defer can tell its response. */
typedef struct http__running {
    http_server *srv;
    http__req *r;
    http_response *resp;
    http_deferred *d;
    int finished; /* d was finished inside the handler itself */
} http__running;

static _Thread_local http__running *http__now;

static void http__unref_locked(http__req *r)
{
    if (--r->refs > 0)
        return;
    rc_free(r->method);
    rc_free(r->path);
    rc_free(r->authorization);
    rc_buf_free(&r->body);
    rc_buf_free(&r->args);
    rc_buf_free(&r->answer);
    rc_free(r);
}

static void http__finish_locked(http__req *r, int status, const char *content_type, rc_buf *body)
{
    r->status = status;
    r->content_type = content_type;
    rc_buf_free(&r->answer);
    if (body) {
        r->answer = *body;
        *body = (rc_buf)RC_BUF_INIT;
    }
    r->done = 1;
}

/* ---- the loop side ------------------------------------------------------------------------ */

static void http__answer(http_server *srv, http__req *r)
{
    http_response resp = {200, "text/plain; charset=utf-8", RC_BUF_INIT, NULL};
    rpc_identity id;
    char why[300];
    int open = srv->opts.is_public && srv->opts.is_public(r->method, r->path, srv->opts.arg);
    if (srv->opts.require_token && !open &&
        rpc_server_check_bearer(srv->opts.auth, r->authorization, &id, why, sizeof(why)) != 0) {
        resp.status = MHD_HTTP_UNAUTHORIZED;
        rc_buf_printf(&resp.body, "401 Unauthorized: %s\n", why);
    } else {
        const rpc_identity *who = srv->opts.require_token && !open ? &id : NULL;
        http_request req = {r->method, r->path, rc_buf_cstr(&r->body), r->body.len,
                            who, r->args.len ? r->args.data : "", r->args.len};
        http__running running = {srv, r, &resp, NULL, 0}, *outer = http__now;
        http__now = &running;
        srv->opts.handler(&req, &resp, srv->opts.arg);
        http__now = outer;
        if (running.d || running.finished) { /* the handle has (or had) the loop's reference */
            rc_buf_free(&resp.body);
            return;
        }
    }
    pthread_mutex_lock(&srv->mu);
    http__finish_locked(r, resp.status, resp.content_type, &resp.body);
    r->headers = resp.headers;
    http__unref_locked(r);
    pthread_cond_broadcast(&srv->cond);
    pthread_mutex_unlock(&srv->mu);
    rc_buf_free(&resp.body);
}

static void http__on_async(uv_async_t *h)
{
    http_server *srv = h->data;
    pthread_mutex_lock(&srv->mu);
    http__req *list = srv->head;
    srv->head = srv->tail = NULL;
    pthread_mutex_unlock(&srv->mu);
    while (list) {
        http__req *r = list;
        list = r->next;
        http__answer(srv, r);
    }
}

const char *http_request_arg(const http_request *req, const char *name)
{
    const char *p = req->args, *end = req->args + req->args_len;
    while (p < end) {
        const char *value = p + strlen(p) + 1;
        if (value >= end)
            return NULL;
        if (!strcmp(p, name))
            return value;
        p = value + strlen(value) + 1;
    }
    return NULL;
}

/* ---- libmicrohttpd's threads ------------------------------------------------------------- */

static enum MHD_Result http__collect_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    rc_buf *b = cls;
    if (b->len < 65536 && key) {
        rc_buf_append(b, key, strlen(key) + 1);
        rc_buf_append(b, value ? value : "", (value ? strlen(value) : 0) + 1);
    }
    return MHD_YES;
}

/* Adds the header lines of text ("Name: value\r\n..."). */
static void http__add_headers(struct MHD_Response *resp, const char *text)
{
    while (text && *text) {
        const char *colon = strchr(text, ':'), *eol = strstr(text, "\r\n");
        if (!colon || !eol || colon > eol)
            return;
        char name[64], value[512];
        const char *v = colon + 1;
        while (*v == ' ')
            v++;
        if ((size_t)(colon - text) < sizeof(name) && (size_t)(eol - v) < sizeof(value)) {
            memcpy(name, text, (size_t)(colon - text));
            name[colon - text] = '\0';
            memcpy(value, v, (size_t)(eol - v));
            value[eol - v] = '\0';
            MHD_add_response_header(resp, name, value);
        }
        text = eol + 2;
    }
}

static enum MHD_Result http__queue(struct MHD_Connection *conn, int status, const char *type,
                                   const rc_buf *body, const char *headers)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        body->len, body->len ? body->data : (void *)"", MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    http__add_headers(resp, headers);
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result http__plain(struct MHD_Connection *conn, int status, const char *text)
{
    rc_buf b = RC_BUF_INIT;
    rc_buf_puts(&b, text);
    enum MHD_Result ret = http__queue(conn, status, "text/plain; charset=utf-8", &b, NULL);
    rc_buf_free(&b);
    return ret;
}

/* Posts r to the loop and waits for its answer; then queues it. */
static enum MHD_Result http__dispatch(http_server *srv, struct MHD_Connection *conn, http__req *r)
{
    pthread_mutex_lock(&srv->mu);
    if (srv->closing) {
        pthread_mutex_unlock(&srv->mu);
        return http__plain(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "503: the daemon is stopping\n");
    }
    r->refs++;
    r->next = NULL;
    if (srv->tail)
        srv->tail->next = r;
    else
        srv->head = r;
    srv->tail = r;
    uv_async_send(&srv->async);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    int timeout_ms = srv->opts.request_timeout_ms;
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    while (!r->done && !srv->closing) {
        if (pthread_cond_timedwait(&srv->cond, &srv->mu, &deadline) == ETIMEDOUT)
            break;
    }
    if (!r->done)
        r->abandoned = 1; /* an answer that comes now is dropped */
    int status = r->done ? r->status : MHD_HTTP_SERVICE_UNAVAILABLE;
    const char *type = r->done ? r->content_type : "text/plain; charset=utf-8";
    const char *headers = r->done ? r->headers : NULL;
    rc_buf body = RC_BUF_INIT;
    if (r->done) {
        body = r->answer;
        r->answer = (rc_buf)RC_BUF_INIT;
    } else if (r->deferred) {
        rc_buf_printf(&body, "503: the daemon did not answer within %d ms: it was still waiting for another "
                             "service's reply; try again\n", timeout_ms);
    } else {
        rc_buf_printf(&body, "503: the daemon did not answer within %d ms\n", timeout_ms);
    }
    pthread_mutex_unlock(&srv->mu);
    enum MHD_Result ret = http__queue(conn, status, type, &body, headers);
    rc_buf_free(&body);
    return ret;
}

static enum MHD_Result http__on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                        const char *method, const char *version,
                                        const char *upload_data, size_t *upload_data_size,
                                        void **con_cls)
{
    (void)version;
    http_server *srv = cls;
    http__req *r = *con_cls;
    if (!r) { /* headers only so far */
        r = RC_NEW(http__req);
        r->srv = srv;
        r->refs = 1;
        r->method = rc_strdup(method);
        r->path = rc_strdup(url);
        const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                       MHD_HTTP_HEADER_AUTHORIZATION);
        r->authorization = auth ? rc_strdup(auth) : NULL;
        MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, http__collect_arg, &r->args);
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (r->body.len + *upload_data_size > srv->opts.max_body)
            r->too_big = 1;
        else
            rc_buf_append(&r->body, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->too_big)
        return http__plain(conn, MHD_HTTP_CONTENT_TOO_LARGE, "413: the request body is too large\n");
    return http__dispatch(srv, conn, r);
}

static void http__on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                               enum MHD_RequestTerminationCode code)
{
    (void)conn;
    (void)code;
    http_server *srv = cls;
    http__req *r = *con_cls;
    if (!r)
        return;
    pthread_mutex_lock(&srv->mu);
    http__unref_locked(r);
    pthread_mutex_unlock(&srv->mu);
    *con_cls = NULL;
}

/* ---- start and stop ------------------------------------------------------------------------ */

static void http__wipe_free(char *secret)
{
    if (secret) {
        explicit_bzero(secret, strlen(secret));
        rc_free(secret);
    }
}

/* The PEMs srv serves HTTPS with (see http_server_options), or none for plain HTTP. */
static int http__tls_setup(http_server *srv, const http_server_options *opts)
{
    const char *cert = opts->tls_cert_pem, *key = opts->tls_key_pem;
    if (!cert && !key) {
        const rpc_security *sec = rpc_security_get();
        if (sec->insecure)
            return 0;
        cert = sec->cert_pem;
        key = sec->key_pem;
    }
    if (!cert || !key || !*cert || !*key) {
        RC_ERROR("http: cannot serve HTTPS: this process holds no certificate and key of the cluster "
                 "(plain HTTP is only for an --insecure cluster)");
        return RC_EINVAL;
    }
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        RC_ERROR("http: this libmicrohttpd was built without TLS, and a secure cluster serves HTTP "
                 "only over TLS: install a libmicrohttpd with GnuTLS (Debian's libmicrohttpd12 has it)");
        return RC_ESTATE;
    }
    srv->tls_cert = rc_strdup(cert);
    srv->tls_key = rc_strdup(key);
    return 0;
}

int http_server_start(uv_loop_t *loop, const http_server_options *opts, http_server **out)
{
    const char *host = opts->host && *opts->host ? opts->host : "127.0.0.1";
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)opts->port);
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)opts->port);
        flags |= MHD_USE_IPv6;
    } else {
        RC_ERROR("http: cannot bind \"%s\": not an IP address", host);
        return RC_EINVAL;
    }
    http_server *srv = RC_NEW(http_server);
    int rc = http__tls_setup(srv, opts);
    if (rc < 0) {
        rc_free(srv);
        return rc;
    }
    /* TLS 1.2 and 1.3 only: every client of these ports (curl, browsers, Prometheus) has them. */
    struct MHD_OptionItem tls[] = {{MHD_OPTION_HTTPS_MEM_CERT, 0, srv->tls_cert},
                                   {MHD_OPTION_HTTPS_MEM_KEY, 0, srv->tls_key},
                                   {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"},
                                   {MHD_OPTION_END, 0, NULL}};
    if (srv->tls_cert)
        flags |= MHD_USE_TLS;
    rc_list_init(&srv->deferred);
    srv->loop = loop;
    srv->opts = *opts;
    srv->opts.host = NULL;
    srv->opts.tls_cert_pem = srv->opts.tls_key_pem = NULL;
    if (srv->opts.request_timeout_ms <= 0)
        srv->opts.request_timeout_ms = 10000;
    if (srv->opts.max_body == 0)
        srv->opts.max_body = 1 << 20;
    pthread_mutex_init(&srv->mu, NULL);
    pthread_cond_init(&srv->cond, NULL);
    uv_async_init(loop, &srv->async, http__on_async);
    srv->async.data = srv;
    srv->daemon = MHD_start_daemon(flags, 0, NULL, NULL, http__on_request, srv,
                                   MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                                   MHD_OPTION_NOTIFY_COMPLETED, http__on_completed, srv,
                                   MHD_OPTION_CONNECTION_LIMIT, (unsigned)32,
                                   MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
                                   MHD_OPTION_ARRAY, srv->tls_cert ? tls : tls + 3,
                                   MHD_OPTION_END);
    if (!srv->daemon) {
        RC_ERROR("http: cannot listen on %s port %d (in use%s?)", host, opts->port,
                 srv->tls_cert ? ", or a key that does not fit the certificate" : "");
        srv->closing = 1;
        http_server_stop(srv);
        return RC_EIO;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : opts->port;
    *out = srv;
    return 0;
}

int http_server_port(const http_server *srv)
{
    return srv->port;
}

const char *http_server_scheme(const http_server *srv)
{
    return srv->tls_cert ? "https" : "http";
}

static void http__on_closed(uv_handle_t *h)
{
    http_server *srv = h->data;
    pthread_mutex_destroy(&srv->mu);
    pthread_cond_destroy(&srv->cond);
    rc_free(srv->tls_cert);
    http__wipe_free(srv->tls_key);
    rc_free(srv);
}

void http_server_stop(http_server *srv)
{
    if (!srv)
        return;
    pthread_mutex_lock(&srv->mu);
    srv->closing = 1;
    while (srv->head) {
        http__req *r = srv->head;
        srv->head = r->next;
        rc_buf b = RC_BUF_INIT;
        rc_buf_puts(&b, "503: the daemon is stopping\n");
        http__finish_locked(r, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain; charset=utf-8", &b);
        http__unref_locked(r);
    }
    srv->tail = NULL;
    while (!rc_list_empty(&srv->deferred)) { /* their handles outlive srv: cut them loose */
        http_deferred *d = rc_list_entry(rc_list_first(&srv->deferred), http_deferred, link);
        rc_list_remove(&d->link);
        rc_buf b = RC_BUF_INIT;
        rc_buf_puts(&b, "503: the daemon is stopping\n");
        http__finish_locked(d->r, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain; charset=utf-8", &b);
        http__unref_locked(d->r);
        d->srv = NULL;
        d->r = NULL;
    }
    pthread_cond_broadcast(&srv->cond);
    pthread_mutex_unlock(&srv->mu);
    if (srv->daemon)
        MHD_stop_daemon(srv->daemon); /* joins the connection threads */
    srv->daemon = NULL;
    uv_close((uv_handle_t *)&srv->async, http__on_closed);
}

/* ---- deferred answers (loop thread) --------------------------------------------------- */

http_deferred *http_response_defer(http_response *resp)
{
    http__running *now = http__now;
    if (!now || now->resp != resp || now->finished)
        return NULL;
    if (now->d)
        return now->d;
    http_deferred *d = RC_NEW(http_deferred);
    d->srv = now->srv;
    d->r = now->r;
    rc_list_insert_head(&now->srv->deferred, &d->link);
    now->d = d;
    pthread_mutex_lock(&now->srv->mu);
    now->r->deferred = 1;
    pthread_mutex_unlock(&now->srv->mu);
    return d;
}

int http_deferred_waiting(const http_deferred *d)
{
    if (!d || !d->srv)
        return 0;
    pthread_mutex_lock(&d->srv->mu);
    int waiting = !d->r->abandoned && !d->r->done && !d->srv->closing;
    pthread_mutex_unlock(&d->srv->mu);
    return waiting;
}

int http_deferred_finish(http_deferred *d, http_response *resp)
{
    int delivered = 0;
    if (http__now && http__now->d == d && d) { /* finished by the handler that deferred it */
        http__now->d = NULL;
        http__now->finished = 1;
    }
    if (d && d->srv) {
        http_server *srv = d->srv;
        rc_list_remove(&d->link);
        pthread_mutex_lock(&srv->mu);
        delivered = !d->r->abandoned && !srv->closing;
        http__finish_locked(d->r, resp->status ? resp->status : 200,
                            resp->content_type ? resp->content_type : "text/plain; charset=utf-8", &resp->body);
        d->r->headers = resp->headers;
        http__unref_locked(d->r); /* frees it when its connection is already done with it */
        pthread_cond_broadcast(&srv->cond);
        pthread_mutex_unlock(&srv->mu);
    }
    rc_buf_free(&resp->body);
    rc_free(d);
    return delivered;
}

int http_metrics_request(const http_request *req, http_response *resp)
{
    if (strcmp(req->path, "/metrics") != 0) {
        resp->status = 404;
        rc_buf_printf(&resp->body, "404: no %s here; metrics are at /metrics\n", req->path);
        return 0;
    }
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        resp->status = 405;
        rc_buf_puts(&resp->body, "405: /metrics answers GET only\n");
        return 0;
    }
    return 1;
}

int http_tls_issue(const char *auth_dir, const char *cn, const char *const *ips, size_t n_ips,
                   char **cert_pem, char **key_pem, char *err, size_t errlen)
{
    char path[4096];
    char *ca_cert = NULL, *ca_key = NULL;
    snprintf(path, sizeof(path), "%s/ca.key", auth_dir);
    int rc = auth_read_file(path, &ca_key);
    if (rc == 0) {
        snprintf(path, sizeof(path), "%s/ca.crt", auth_dir);
        rc = auth_read_file(path, &ca_cert);
    }
    if (rc < 0) {
        snprintf(err, errlen, "cannot read %s (%s): serving HTTPS needs a certificate of the cluster CA, "
                 "made where its key is (the head)", path, rc_strerror(rc));
        http__wipe_free(ca_key);
        return rc == RC_ENOENT ? RC_ENOENT : RC_EIO;
    }
    const char *all[AUTH_MAX_SANS];
    size_t n = 0;
    for (size_t i = 0; i < n_ips && n < AUTH_MAX_SANS - 1; i++)
        if (strcmp(ips[i], "127.0.0.1") != 0 && strcmp(ips[i], "0.0.0.0") != 0 && strcmp(ips[i], "::") != 0)
            all[n++] = ips[i];
    all[n++] = "127.0.0.1";
    char *cert = NULL, *key = NULL;
    rc = auth_cert_issue_local(ca_key, ca_cert, cn, all, n, 365, &key, &cert);
    http__wipe_free(ca_key);
    if (rc < 0) {
        snprintf(err, errlen, "cannot issue a certificate with the CA in %s: %s (is ca.key the key of ca.crt?)",
                 auth_dir, rc_strerror(rc));
        rc_free(ca_cert);
        return RC_EINVAL;
    }
    size_t len = strlen(cert) + strlen(ca_cert) + 1;
    *cert_pem = rc_malloc(len);
    snprintf(*cert_pem, len, "%s%s", cert, ca_cert);
    *key_pem = key;
    rc_free(cert);
    rc_free(ca_cert);
    return 0;
}
