/*
 * Fetching a server's certificate chain before trusting anything, and pinning the CA in it
 * by hash (the join path of ARCHITECTURE §14, like kubeadm's discovery-token-ca-cert-hash).
 *
 * The fetch is a plain TLS handshake with verification off: its result is only ever used
 * through auth_pin_ca, which accepts a CA only when its SPKI hash equals the pin the user
 * brought from the head, and only when the leaf the server presented was signed by it. The
 * socket is non-blocking and every wait is a poll against one deadline, so timeout_ms
 * bounds resolution-to-handshake as a whole (getaddrinfo itself excepted). ALPN "h2" is
 * offered because gRPC servers refuse TLS clients that do not offer it. SIGPIPE is blocked
 * in the calling thread while OpenSSL writes to the socket (its socket BIO uses write(2)).
 * For the pin to find the CA, the server must send it after its leaf (gRPC: the certificate
 * chain PEM is leaf then CA). Any thread; blocking.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "auth_int.h"
#include "rc_alloc.h"
#include "rc_buf.h"
#include "rc_err.h"

enum { AUTH__CHAIN_MAX = 16 };

static int64_t auth__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int auth__remaining_ms(int64_t deadline)
{
    int64_t left = deadline - auth__now_ms();
    return left > 0 ? (int)left : 0;
}

/* Splits "host:port" or "[v6]:port" into host and port. */
static int auth__split_host_port(const char *hp, char *host, size_t hostlen, char *port,
                                 size_t portlen)
{
    const char *colon = strrchr(hp, ':');
    if (!colon || colon[1] == '\0' || strlen(colon + 1) >= portlen)
        return -1;
    const char *h = hp;
    size_t hl = (size_t)(colon - hp);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl == 0 || hl >= hostlen)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    snprintf(port, portlen, "%s", colon + 1);
    return 0;
}

/* A connected non-blocking socket, or -1 with err. */
static int auth__connect(const char *host_port, int64_t deadline, char *err, size_t errlen)
{
    char host[256], port[16];
    if (auth__split_host_port(host_port, host, sizeof(host), port, sizeof(port)) != 0) {
        auth__err(err, errlen, "'%.200s' is not host:port", host_port);
        return -1;
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0) {
        auth__err(err, errlen, "cannot resolve %.200s: %s", host_port, gai_strerror(gai));
        return -1;
    }
    int fd = -1, last_errno = ETIMEDOUT;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            int pr = poll(&p, 1, auth__remaining_ms(deadline));
            int soerr = ETIMEDOUT;
            socklen_t sl = sizeof(soerr);
            if (pr == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
                rc = 0;
            else
                errno = pr == 1 ? soerr : ETIMEDOUT;
        }
        if (rc != 0) {
            last_errno = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        auth__err(err, errlen, "cannot connect to %.200s: %s", host_port, strerror(last_errno));
    return fd;
}

/* Runs SSL_connect to completion against the deadline. */
static int auth__handshake(SSL *ssl, int fd, int64_t deadline)
{
    for (;;) {
        int r = SSL_connect(ssl);
        if (r == 1)
            return 0;
        int e = SSL_get_error(ssl, r);
        struct pollfd p = {.fd = fd};
        if (e == SSL_ERROR_WANT_READ)
            p.events = POLLIN;
        else if (e == SSL_ERROR_WANT_WRITE)
            p.events = POLLOUT;
        else
            return -1;
        int left = auth__remaining_ms(deadline);
        if (left == 0 || poll(&p, 1, left) != 1)
            return -1;
    }
}

static char *auth__chain_pem(SSL *ssl)
{
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl); /* client side: leaf included */
    int n = chain ? sk_X509_num(chain) : 0;
    if (n <= 0)
        return NULL;
    BIO *b = BIO_new(BIO_s_mem());
    int ok = b != NULL;
    for (int i = 0; ok && i < n && i < AUTH__CHAIN_MAX; i++)
        ok = PEM_write_bio_X509(b, sk_X509_value(chain, i));
    char *pem = ok ? auth__bio_take(b) : NULL;
    BIO_free(b);
    return pem;
}

int auth_fetch_peer_chain(const char *host_port, int timeout_ms, char **chain_pem, char *err,
                          size_t errlen)
{
    if (!host_port || timeout_ms <= 0) {
        auth__err(err, errlen, "no address or timeout");
        return RC_EINVAL;
    }
    int64_t deadline = auth__now_ms() + timeout_ms;
    int fd = auth__connect(host_port, deadline, err, errlen);
    if (fd < 0)
        return RC_EUNAVAIL;

    sigset_t pipe_set, old_set, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigemptyset(&pending);
    sigpending(&pending);
    int pipe_was_pending = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);

    static const unsigned char alpn[] = {2, 'h', '2'};
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl = NULL;
    int ok = ctx && SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) &&
             SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn)) == 0;
    if (ok) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); /* trust comes from auth_pin_ca */
        ssl = SSL_new(ctx);
        ok = ssl && SSL_set_fd(ssl, fd);
    }
    char *pem = NULL;
    if (ok && auth__handshake(ssl, fd, deadline) == 0) {
        pem = auth__chain_pem(ssl);
        SSL_shutdown(ssl); /* sends close_notify; the peer's answer is not awaited */
    }
    unsigned long ossl = ERR_peek_last_error();
    char reason[160] = "";
    if (ossl)
        ERR_error_string_n(ossl, reason, sizeof(reason));
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);

    if (!pipe_was_pending) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) > 0) {
        }
    }
    pthread_sigmask(SIG_SETMASK, &old_set, NULL);

    if (!pem) {
        auth__err(err, errlen, "TLS handshake with %.200s failed%s%s", host_port,
                  reason[0] ? ": " : " (timed out or closed)", reason);
        return RC_EUNAVAIL;
    }
    ERR_clear_error();
    *chain_pem = pem;
    return 0;
}

/* Parses up to AUTH__CHAIN_MAX certificates from pem into certs; returns how many. */
static int auth__parse_chain(const char *pem, X509 **certs)
{
    BIO *b = auth__bio_from_pem(pem);
    int n = 0;
    while (b && n < AUTH__CHAIN_MAX) {
        X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        if (!x)
            break;
        certs[n++] = x;
    }
    BIO_free(b);
    ERR_clear_error();
    return n;
}

static int auth__is_self_signed_ca(X509 *x)
{
    EVP_PKEY *pub = X509_get0_pubkey(x);
    return X509_check_ca(x) == 1 && X509_check_issued(x, x) == X509_V_OK && pub &&
           X509_verify(x, pub) == 1;
}

static int auth__leaf_signed_by(X509 *leaf, X509 *ca)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int ok = store && ctx && X509_STORE_add_cert(store, ca) &&
             X509_STORE_CTX_init(ctx, store, leaf, NULL) && X509_verify_cert(ctx) == 1;
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return ok;
}

int auth_pin_ca(const char *chain_pem, const char *pin, char **ca_pem, char *err, size_t errlen)
{
    if (!auth_ca_hash_equal(pin, pin)) { /* equal to itself only when well-formed */
        auth__err(err, errlen, "'%.80s' is not a CA pin (sha256:<64 hex digits>)",
                  pin ? pin : "(null)");
        return RC_EINVAL;
    }
    X509 *certs[AUTH__CHAIN_MAX];
    int n = auth__parse_chain(chain_pem, certs);
    if (n == 0) {
        auth__err(err, errlen, "the server presented no certificate");
        return RC_EAUTH;
    }
    int match = -1, shown = n - 1;
    char hash[AUTH_CA_HASH_MAX], shown_hash[AUTH_CA_HASH_MAX] = "(none)";
    for (int i = 0; i < n; i++) {
        if (auth__spki_hash(certs[i], hash) != 0)
            continue;
        if (auth_ca_hash_equal(hash, pin)) {
            match = i;
            break;
        }
        if (shown == n - 1 && X509_check_ca(certs[i]) == 1)
            shown = i; /* the first CA in the chain names "its CA" in the error */
    }
    int rc = 0;
    if (match < 0) {
        if (auth__spki_hash(certs[shown], shown_hash) != 0)
            snprintf(shown_hash, sizeof(shown_hash), "(unreadable)");
        auth__err(err, errlen, "the server's CA %s is not the pinned %s", shown_hash, pin);
        rc = RC_EAUTH;
    } else if (!auth__is_self_signed_ca(certs[match])) {
        auth__err(err, errlen, "the certificate matching the pin %s is not a self-signed CA",
                  pin);
        rc = RC_EAUTH;
    } else if (!auth__leaf_signed_by(certs[0], certs[match])) {
        auth__err(err, errlen, "the server's certificate was not issued by the pinned CA %s",
                  pin);
        rc = RC_EAUTH;
    } else {
        BIO *b = BIO_new(BIO_s_mem());
        if (b && PEM_write_bio_X509(b, certs[match]))
            *ca_pem = auth__bio_take(b);
        else
            rc = RC_EIO;
        BIO_free(b);
    }
    for (int i = 0; i < n; i++)
        X509_free(certs[i]);
    ERR_clear_error();
    return rc;
}
