/* http_server: handlers run on the loop thread, bodies and their limit, a loop that does not
 * answer in time (503, and the late answer is dropped safely), and a stop while requests
 * wait (released at once, never handled). Deferred answers: finished later from the loop,
 * finished inside the handler, finished after the connection gave up (503, dropped), after
 * the client went away, and after the server stopped. HTTPS: with the process's certificate
 * unless it is insecure, plaintext and TLS garbage refused without harm, certificates made
 * with http_tls_issue. Clients are plain sockets (or OpenSSL over them) on threads of their
 * own. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "auth.h"
#include "http_server.h"
#include "rc_alloc.h"
#include "rc_err.h"
#include "rc_time.h"
#include "unit.h"

static uv_loop_t loop;
static pthread_t loop_thread;
static int handled;
static int handled_off_loop;

static void handler(const http_request *req, http_response *resp, void *arg)
{
    (void)arg;
    handled++;
    if (!pthread_equal(pthread_self(), loop_thread))
        handled_off_loop++;
    if (strcmp(req->path, "/missing") == 0) {
        resp->status = 404;
        rc_buf_puts(&resp->body, "no such page");
        return;
    }
    rc_buf_printf(&resp->body, "method=%s path=%s body=%zu:%s", req->method, req->path, req->body_len,
                  req->body);
}

typedef struct client {
    int port;
    char request[512];
    char response[4096];
    volatile int done;
    pthread_t thread;
    const char *tls_ca; /* HTTPS trusting only this CA (PEM), verifying IP 127.0.0.1; NULL: plain */
    int tls_failed;     /* the handshake or its verification failed */
} client;

/* The request over TLS on fd; the answer into c->response. */
static size_t client_tls(client *c, int fd)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    BIO *b = BIO_new_mem_buf(c->tls_ca, -1);
    X509 *ca = PEM_read_bio_X509(b, NULL, NULL, NULL);
    X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), ca);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_CTX_get0_param(ctx), "127.0.0.1");
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    size_t got = 0;
    if (SSL_connect(ssl) == 1 && SSL_write(ssl, c->request, (int)strlen(c->request)) > 0) {
        int n;
        while (got + 1 < sizeof(c->response) &&
               (n = SSL_read(ssl, c->response + got, (int)(sizeof(c->response) - 1 - got))) > 0)
            got += (size_t)n;
    } else {
        c->tls_failed = 1;
    }
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    X509_free(ca);
    BIO_free(b);
    ERR_clear_error();
    return got;
}

/* A TCP socket to the server at 127.0.0.1:port (reads time out after 20 s); 1 if it
 * connected. */
static int client_connect(int port, int *fd)
{
    *fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {20, 0};
    setsockopt(*fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return connect(*fd, (struct sockaddr *)&a, sizeof(a)) == 0;
}

static void *client_run(void *arg)
{
    client *c = arg;
    int fd;
    int connected = client_connect(c->port, &fd);
    size_t got = 0;
    if (c->tls_ca) {
        if (connected)
            got = client_tls(c, fd);
        else
            c->tls_failed = 1;
    } else if (connected && write(fd, c->request, strlen(c->request)) == (ssize_t)strlen(c->request)) {
        ssize_t n;
        while (got + 1 < sizeof(c->response) &&
               (n = read(fd, c->response + got, sizeof(c->response) - 1 - got)) > 0)
            got += (size_t)n;
    }
    c->response[got] = '\0';
    close(fd);
    c->done = 1;
    return NULL;
}

/* A client that sends its request and goes away without reading the answer. */
static void *client_run_and_leave(void *arg)
{
    client *c = arg;
    int fd;
    if (client_connect(c->port, &fd) && write(fd, c->request, strlen(c->request)) == (ssize_t)strlen(c->request))
        c->response[0] = '\0';
    close(fd);
    c->done = 1;
    return NULL;
}

static void client_start_tls(client *c, int port, const char *request, const char *tls_ca)
{
    memset(c, 0, sizeof(*c));
    c->port = port;
    c->tls_ca = tls_ca;
    snprintf(c->request, sizeof(c->request), "%s", request);
    pthread_create(&c->thread, NULL, client_run, c);
}

static void client_start(client *c, int port, const char *request)
{
    client_start_tls(c, port, request, NULL);
}

/* Runs the loop until c is answered. */
static void client_wait_with_loop(client *c)
{
    int64_t deadline = rc_mono_ms() + 30000;
    while (!c->done && rc_mono_ms() < deadline) {
        uv_run(&loop, UV_RUN_NOWAIT);
        rc_sleep_ms(2);
    }
    pthread_join(c->thread, NULL);
}

static http_server *start(int timeout_ms, size_t max_body)
{
    http_server_options o = {0};
    o.host = "127.0.0.1";
    o.handler = handler;
    o.request_timeout_ms = timeout_ms;
    o.max_body = max_body;
    http_server *srv = NULL;
    CU_ASSERT_EQUAL_FATAL(http_server_start(&loop, &o, &srv), 0);
    CU_ASSERT(http_server_port(srv) > 0);
    return srv;
}

static void stop(http_server *srv)
{
    http_server_stop(srv);
    uv_run(&loop, UV_RUN_NOWAIT); /* the close callback frees it */
}

static void test_handlers_run_on_the_loop(void)
{
    handled = handled_off_loop = 0;
    http_server *srv = start(0, 0);
    client c;
    client_start(&c, http_server_port(srv), "GET /hello?x=1 HTTP/1.0\r\n\r\n");
    client_wait_with_loop(&c);
    CU_ASSERT_PTR_NOT_NULL(strstr(c.response, " 200 OK"));
    CU_ASSERT_PTR_NOT_NULL(strstr(c.response, "method=GET path=/hello body=0:"));
    client_start(&c, http_server_port(srv), "GET /missing HTTP/1.0\r\n\r\n");
    client_wait_with_loop(&c);
    CU_ASSERT_PTR_NOT_NULL(strstr(c.response, " 404 "));
    CU_ASSERT_PTR_NOT_NULL(strstr(c.response, "no such page"));
    CU_ASSERT_EQUAL(handled, 2);
    CU_ASSERT_EQUAL(handled_off_loop, 0);
    stop(srv);
}

static void test_bodies_and_their_limit(void)
{
    http_server *srv = start(0, 16);
    client c;
    client_start(&c, http_server_port(srv),
                 "POST /jobs HTTP/1.0\r\nContent-Length: 10\r\n\r\n0123456789");
    client_wait_with_loop(&c);
    CU_ASSERT_PTR_NOT_NULL(strstr(c.response, "method=POST path=/jobs body=10:0123456789"));
    handled = 0;
    client_start(&c, http_server_port(srv),
                 "POST /jobs HTTP/1.0\r\nContent-Length: 40\r\n\r\n0123456789012345678901234567890123456789");
    client_wait_with_loop(&c);
    CU_ASSERT_PTR_NOT_NULL(strstr(c.response, " 413 "));
    CU_ASSERT_EQUAL(handled, 0);
    stop(srv);
}

static void test_busy_loop_gets_503_then_late_answer_dropped(void)
{
    http_server *srv = start(200, 0);
    handled = 0;
    client c;
    client_start(&c, http_server_port(srv), "GET /slow HTTP/1.0\r\n\r\n");
    /* The loop does not run: the connection's thread gives up after 200 ms. */
    pthread_join(c.thread, NULL);
    CU_ASSERT_PTR_NOT_NULL(strstr(c.response, " 503 "));
    CU_ASSERT_PTR_NOT_NULL(strstr(c.response, "did not answer within 200 ms"));
    CU_ASSERT_EQUAL(handled, 0);
    /* The loop runs at last: the abandoned request is answered into the void and freed. */
    for (int i = 0; i < 50 && handled == 0; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        rc_sleep_ms(2);
    }
    CU_ASSERT_EQUAL(handled, 1);
    /* And the server still serves. */
    client_start(&c, http_server_port(srv), "GET /again HTTP/1.0\r\n\r\n");
    client_wait_with_loop(&c);
    CU_ASSERT_PTR_NOT_NULL(strstr(c.response, "path=/again"));
    stop(srv);
}

static void test_stop_releases_waiting_requests(void)
{
    http_server *srv = start(30000, 0);
    handled = 0;
    client c;
    client_start(&c, http_server_port(srv), "GET /waits HTTP/1.0\r\n\r\n");
    rc_sleep_ms(300); /* queued for a loop that does not run */
    int64_t t0 = rc_mono_ms();
    stop(srv);
    pthread_join(c.thread, NULL);
    CU_ASSERT(rc_mono_ms() - t0 < 20000); /* not the 30 s request timeout */
    /* Its connection is closed (a 503 may or may not get out first); never a 200. */
    CU_ASSERT(c.response[0] == '\0' || strstr(c.response, " 503 ") != NULL);
    CU_ASSERT_EQUAL(handled, 0);
}

/* ---- deferred answers ---- */

static http_deferred *deferred;
static int defer_calls, defer_got_null;

/* Defers every request; "/now" is finished inside the handler itself. A second defer in the
 * same handler returns the same handle; a response that is not the handler's gets NULL. */
static void defer_handler(const http_request *req, http_response *resp, void *arg)
{
    (void)arg;
    defer_calls++;
    rc_buf_puts(&resp->body, "discarded");
    http_response other = {0};
    if (http_response_defer(&other) != NULL)
        defer_got_null = -1;
    http_deferred *d = http_response_defer(resp);
    if (!d || http_response_defer(resp) != d) {
        defer_got_null = 1;
        return;
    }
    if (!strcmp(req->path, "/now")) {
        http_response r = {.status = 201};
        rc_buf_puts(&r.body, "answered at once");
        http_deferred_finish(d, &r);
        if (http_response_defer(resp) != NULL) /* no second handle for a finished request */
            defer_got_null = 2;
        return;
    }
    deferred = d;
}

static http_server *start_deferring(int timeout_ms)
{
    http_server_options o = {0};
    o.host = "127.0.0.1";
    o.handler = defer_handler;
    o.request_timeout_ms = timeout_ms;
    http_server *srv = NULL;
    CU_ASSERT_EQUAL_FATAL(http_server_start(&loop, &o, &srv), 0);
    deferred = NULL;
    defer_calls = defer_got_null = 0;
    return srv;
}

/* Runs the loop until the handler has deferred a request. */
static void run_until_deferred(void)
{
    int64_t deadline = rc_mono_ms() + 20000;
    while (!deferred && rc_mono_ms() < deadline) {
        uv_run(&loop, UV_RUN_NOWAIT);
        rc_sleep_ms(2);
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(deferred);
}

static int finish(int status, const char *text)
{
    http_response r = {.status = status, .content_type = "application/json", .headers = "X-Late: yes\r\n"};
    rc_buf_puts(&r.body, text);
    http_deferred *d = deferred;
    deferred = NULL;
    return http_deferred_finish(d, &r);
}

static void test_deferred_answer_from_the_loop(void)
{
    http_server *srv = start_deferring(20000);
    client c;
    client_start(&c, http_server_port(srv), "GET /later HTTP/1.0\r\n\r\n");
    run_until_deferred();
    CU_ASSERT_EQUAL(defer_got_null, 0);
    CU_ASSERT(http_deferred_waiting(deferred));
    rc_sleep_ms(100); /* the connection keeps waiting */
    CU_ASSERT_FALSE(c.done);
    CU_ASSERT_EQUAL(finish(202, "{\"late\": 1}"), 1);
    pthread_join(c.thread, NULL);
    CU_ASSERT_PTR_NOT_NULL(strstr(c.response, " 202 "));
    CU_ASSERT_PTR_NOT_NULL(strstr(c.response, "{\"late\": 1}"));
    CU_ASSERT_PTR_NOT_NULL(strstr(c.response, "X-Late: yes"));
    CU_ASSERT_PTR_NOT_NULL(strstr(c.response, "application/json"));
    CU_ASSERT_PTR_NULL(strstr(c.response, "discarded"));
    /* Finished inside the handler: answered at once. */
    client_start(&c, http_server_port(srv), "GET /now HTTP/1.0\r\n\r\n");
    client_wait_with_loop(&c);
    CU_ASSERT_PTR_NOT_NULL(strstr(c.response, " 201 "));
    CU_ASSERT_PTR_NOT_NULL(strstr(c.response, "answered at once"));
    CU_ASSERT_EQUAL(defer_got_null, 0);
    stop(srv);
}

static void test_deferred_after_timeout_is_dropped(void)
{
    http_server *srv = start_deferring(300);
    client c;
    client_start(&c, http_server_port(srv), "GET /slow-rpc HTTP/1.0\r\n\r\n");
    run_until_deferred();
    pthread_join(c.thread, NULL); /* the loop is free; the answer does not come in time */
    CU_ASSERT_PTR_NOT_NULL(strstr(c.response, " 503 "));
    CU_ASSERT_PTR_NOT_NULL(strstr(c.response, "did not answer within 300 ms"));
    CU_ASSERT_PTR_NOT_NULL(strstr(c.response, "another service's reply"));
    CU_ASSERT_FALSE(http_deferred_waiting(deferred));
    /* Give libmicrohttpd time to finish with the connection, then answer into the void. */
    rc_sleep_ms(200);
    CU_ASSERT_EQUAL(finish(200, "too late"), 0);
    /* The server still serves, and defers again. */
    client_start(&c, http_server_port(srv), "GET /again HTTP/1.0\r\n\r\n");
    run_until_deferred();
    CU_ASSERT_EQUAL(finish(200, "in time"), 1);
    pthread_join(c.thread, NULL);
    CU_ASSERT_PTR_NOT_NULL(strstr(c.response, "in time"));
    stop(srv);
}

static void test_deferred_client_gone(void)
{
    http_server *srv = start_deferring(20000);
    client c;
    memset(&c, 0, sizeof(c));
    c.port = http_server_port(srv);
    snprintf(c.request, sizeof(c.request), "GET /gone HTTP/1.0\r\n\r\n");
    pthread_create(&c.thread, NULL, client_run_and_leave, &c);
    run_until_deferred();
    pthread_join(c.thread, NULL); /* the client has closed its socket */
    rc_sleep_ms(100);
    /* The answer goes to a connection whose peer is gone: written into the void, freed. */
    finish(200, "nobody reads this");
    rc_sleep_ms(200);
    /* Another client that leaves, with the server stopped before the answer comes. */
    pthread_create(&c.thread, NULL, client_run_and_leave, &c);
    run_until_deferred();
    pthread_join(c.thread, NULL);
    client w;
    http_deferred *left = deferred;
    deferred = NULL;
    client_start(&w, http_server_port(srv), "GET /waiting HTTP/1.0\r\n\r\n");
    run_until_deferred();
    stop(srv); /* both handles are answered 503 and cut loose; srv is freed */
    pthread_join(w.thread, NULL);
    CU_ASSERT(w.response[0] == '\0' || strstr(w.response, " 503 ") != NULL);
    CU_ASSERT_FALSE(http_deferred_waiting(deferred));
    CU_ASSERT_EQUAL(finish(200, "after stop"), 0);
    http_response r = {0};
    rc_buf_puts(&r.body, "after stop too");
    CU_ASSERT_EQUAL(http_deferred_finish(left, &r), 0);
}

static void test_bad_host_and_port_in_use(void)
{
    http_server_options o = {0};
    o.host = "not-an-ip";
    o.handler = handler;
    http_server *srv = NULL;
    CU_ASSERT_EQUAL(http_server_start(&loop, &o, &srv), RC_EINVAL);
    http_server *a = start(0, 0);
    o.host = "127.0.0.1";
    o.port = http_server_port(a);
    CU_ASSERT_EQUAL(http_server_start(&loop, &o, &srv), RC_EIO);
    uv_run(&loop, UV_RUN_NOWAIT);
    stop(a);
}

/* A cluster CA and a certificate it signed for 127.0.0.1 (freed by tls_free). */
typedef struct tls_material {
    char *ca_key, *ca_cert, *key, *cert;
} tls_material;

static void tls_make(tls_material *t)
{
    memset(t, 0, sizeof(*t));
    CU_ASSERT_EQUAL_FATAL(auth_ca_create("test-ca", 1, &t->ca_key, &t->ca_cert), 0);
    const char *ips[] = {"127.0.0.1"};
    CU_ASSERT_EQUAL_FATAL(auth_cert_issue(t->ca_key, t->ca_cert, "gcs", ips, 1, 1, &t->key, &t->cert), 0);
}

static void tls_free(tls_material *t)
{
    rc_free(t->ca_key);
    rc_free(t->ca_cert);
    rc_free(t->key);
    rc_free(t->cert);
}

/* A raw connection that sends bytes and reads whatever comes back until the server closes. */
static void client_junk(int port, const void *bytes, size_t len, char *out, size_t outlen)
{
    int fd;
    size_t got = 0;
    if (client_connect(port, &fd) && write(fd, bytes, len) == (ssize_t)len) {
        shutdown(fd, SHUT_WR);
        ssize_t n;
        while (got + 1 < outlen && (n = read(fd, out + got, outlen - 1 - got)) > 0)
            got += (size_t)n;
    }
    out[got] = '\0';
    close(fd);
}

static void test_https_with_the_process_certificate(void)
{
    tls_material t;
    tls_make(&t);
    rpc_security sec = {.ca_cert_pem = t.ca_cert, .cert_pem = t.cert, .key_pem = t.key, .present_cert = 1};
    char err[256];
    CU_ASSERT_EQUAL_FATAL(rpc_security_set(&sec, err, sizeof(err)), 0);
    http_server *srv = start(0, 0);
    CU_ASSERT_STRING_EQUAL(http_server_scheme(srv), "https");
    int port = http_server_port(srv);
    /* Over TLS, verified against the CA by IP. */
    client c;
    client_start_tls(&c, port, "GET /secret HTTP/1.0\r\n\r\n", t.ca_cert);
    client_wait_with_loop(&c);
    CU_ASSERT_EQUAL(c.tls_failed, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(c.response, " 200 OK"));
    CU_ASSERT_PTR_NOT_NULL(strstr(c.response, "path=/secret"));
    /* Plaintext HTTP gets no HTTP answer, and no handler runs. */
    handled = 0;
    client_start(&c, port, "GET /secret HTTP/1.0\r\n\r\n");
    client_wait_with_loop(&c);
    CU_ASSERT(strncmp(c.response, "HTTP/", 5) != 0);
    CU_ASSERT_PTR_NULL(strstr(c.response, "path=/secret"));
    CU_ASSERT_EQUAL(handled, 0);
    /* A client trusting another CA refuses the certificate. */
    tls_material other;
    tls_make(&other);
    client_start_tls(&c, port, "GET /secret HTTP/1.0\r\n\r\n", other.ca_cert);
    client_wait_with_loop(&c);
    CU_ASSERT_EQUAL(c.tls_failed, 1);
    CU_ASSERT_EQUAL(handled, 0);
    /* Garbage where a handshake should be: handshake records of random bytes, one that claims
     * more than it sends, a ClientHello cut short. The server closes those and serves on. */
    unsigned char junk[600] = {0x16, 0x03, 0x01, 0x02, 0x00};
    srand(14);
    for (size_t i = 5; i < sizeof(junk); i++)
        junk[i] = (unsigned char)rand();
    static const unsigned char claims[] = {0x16, 0x03, 0x03, 0xff, 0xff, 0x01, 0x00, 0xff, 0xfb, 0x03, 0x03};
    static const unsigned char cut[] = {0x16, 0x03, 0x01, 0x00, 0x30, 0x01, 0x00, 0x00, 0x2c, 0x03, 0x03, 0x11};
    char out[512];
    client_junk(port, junk, sizeof(junk), out, sizeof(out));
    client_junk(port, claims, sizeof(claims), out, sizeof(out));
    client_junk(port, cut, sizeof(cut), out, sizeof(out));
    client_start_tls(&c, port, "GET /after-junk HTTP/1.0\r\n\r\n", t.ca_cert);
    client_wait_with_loop(&c);
    CU_ASSERT_PTR_NOT_NULL(strstr(c.response, "path=/after-junk"));
    CU_ASSERT_EQUAL(handled, 1);
    stop(srv);
    /* Secure, but no certificate to serve with: refused, never plain HTTP. */
    rpc_security client_only = {.ca_cert_pem = t.ca_cert, .token = "x"};
    CU_ASSERT_EQUAL_FATAL(rpc_security_set(&client_only, err, sizeof(err)), 0);
    http_server_options o = {0};
    o.host = "127.0.0.1";
    o.handler = handler;
    srv = NULL;
    CU_ASSERT_EQUAL(http_server_start(&loop, &o, &srv), RC_EINVAL);
    CU_ASSERT_PTR_NULL(srv);
    /* Explicit PEMs serve even then; a key that does not fit its certificate does not. */
    o.tls_cert_pem = t.cert;
    o.tls_key_pem = t.key;
    CU_ASSERT_EQUAL_FATAL(http_server_start(&loop, &o, &srv), 0);
    client_start_tls(&c, http_server_port(srv), "GET /explicit HTTP/1.0\r\n\r\n", t.ca_cert);
    client_wait_with_loop(&c);
    CU_ASSERT_PTR_NOT_NULL(strstr(c.response, "path=/explicit"));
    stop(srv);
    o.tls_key_pem = other.key;
    srv = NULL;
    CU_ASSERT(http_server_start(&loop, &o, &srv) < 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    /* An insecure process serves plain HTTP. */
    rpc_security insecure = {.insecure = 1};
    CU_ASSERT_EQUAL_FATAL(rpc_security_set(&insecure, err, sizeof(err)), 0);
    srv = start(0, 0);
    CU_ASSERT_STRING_EQUAL(http_server_scheme(srv), "http");
    stop(srv);
    tls_free(&t);
    tls_free(&other);
}

static void test_tls_issue_from_an_auth_dir(void)
{
    char dir[] = "/tmp/rayc-http-tls-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char *cert = NULL, *key = NULL, err[512] = "";
    CU_ASSERT_EQUAL(http_tls_issue(dir, "dashboard", NULL, 0, &cert, &key, err, sizeof(err)), RC_ENOENT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "ca.key"));
    tls_material t;
    tls_make(&t);
    char path[128];
    snprintf(path, sizeof(path), "%s/ca.crt", dir);
    CU_ASSERT_EQUAL(auth_write_secret(path, t.ca_cert), 0);
    snprintf(path, sizeof(path), "%s/ca.key", dir);
    CU_ASSERT_EQUAL(auth_write_secret(path, t.ca_key), 0);
    const char *ips[] = {"0.0.0.0", "10.1.2.3"};
    CU_ASSERT_EQUAL_FATAL(http_tls_issue(dir, "dashboard", ips, 2, &cert, &key, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(auth_cert_verify(t.ca_cert, cert, err, sizeof(err)), 0);
    char cn[64];
    CU_ASSERT_EQUAL(auth_cert_cn(cert, cn, sizeof(cn)), 0);
    CU_ASSERT_STRING_EQUAL(cn, "dashboard");
    CU_ASSERT_PTR_NOT_NULL(strstr(cert + 10, "-----BEGIN CERTIFICATE-----")); /* the CA follows */
    BIO *b = BIO_new_mem_buf(cert, -1);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    char host[256] = "";
    gethostname(host, sizeof(host) - 1);
    CU_ASSERT_EQUAL(X509_check_ip_asc(x, "10.1.2.3", 0), 1);
    CU_ASSERT_EQUAL(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
    CU_ASSERT_EQUAL(X509_check_ip_asc(x, "0.0.0.0", 0), 0);
    CU_ASSERT_EQUAL(X509_check_host(x, host, 0, 0, NULL), 1);
    CU_ASSERT_EQUAL(X509_check_host(x, "localhost", 0, 0, NULL), 1);
    CU_ASSERT_EQUAL(X509_check_host(x, "elsewhere.example", 0, 0, NULL), 0);
    X509_free(x);
    BIO_free(b);
    /* The key is the certificate's: a server starts with the pair. */
    http_server_options o = {0};
    o.host = "127.0.0.1";
    o.handler = handler;
    o.tls_cert_pem = cert;
    o.tls_key_pem = key;
    http_server *srv = NULL;
    CU_ASSERT_EQUAL(http_server_start(&loop, &o, &srv), 0);
    if (srv)
        stop(srv);
    rc_free(cert);
    rc_free(key);
    snprintf(path, sizeof(path), "%s/ca.crt", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/ca.key", dir);
    unlink(path);
    rmdir(dir);
    tls_free(&t);
}

static const unit_case cases[] = {
    UNIT_CASE(test_handlers_run_on_the_loop),
    UNIT_CASE(test_bodies_and_their_limit),
    UNIT_CASE(test_busy_loop_gets_503_then_late_answer_dropped),
    UNIT_CASE(test_stop_releases_waiting_requests),
    UNIT_CASE(test_bad_host_and_port_in_use),
    UNIT_CASE(test_https_with_the_process_certificate),
    UNIT_CASE(test_tls_issue_from_an_auth_dir),
    UNIT_CASE(test_deferred_answer_from_the_loop),
    UNIT_CASE(test_deferred_after_timeout_is_dropped),
    UNIT_CASE(test_deferred_client_gone),
};

int main(void)
{
    uv_loop_init(&loop);
    loop_thread = pthread_self();
    int rc = unit_run("http_server", cases, UNIT_N(cases));
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_loop_close(&loop);
    return rc;
}
