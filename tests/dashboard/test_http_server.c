/* http_server: handlers run on the loop thread, bodies and their limit, a loop that does not
 * answer in time (503, and the late answer is dropped safely), and a stop while requests
 * wait (released at once, never handled). Clients are plain sockets on threads of their own. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "http_server.h"
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
} client;

static void *client_run(void *arg)
{
    client *c = arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)c->port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {20, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    size_t got = 0;
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        write(fd, c->request, strlen(c->request)) == (ssize_t)strlen(c->request)) {
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

static void client_start(client *c, int port, const char *request)
{
    memset(c, 0, sizeof(*c));
    c->port = port;
    snprintf(c->request, sizeof(c->request), "%s", request);
    pthread_create(&c->thread, NULL, client_run, c);
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

static const unit_case cases[] = {
    UNIT_CASE(test_handlers_run_on_the_loop),
    UNIT_CASE(test_bodies_and_their_limit),
    UNIT_CASE(test_busy_loop_gets_503_then_late_answer_dropped),
    UNIT_CASE(test_stop_releases_waiting_requests),
    UNIT_CASE(test_bad_host_and_port_in_use),
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
