/*
 * Secret files and where clients find their token and CA certificate (ARCHITECTURE §14).
 *
 * A secret is written to a temporary file created with O_EXCL and mode 0600 next to its
 * destination, fsynced and renamed over it, so a reader sees the old or the new content,
 * never a part, and the secret is never readable by others even for a moment. Reads are
 * bounded (AUTH__FILE_MAX). The lookups read the environment and the session root
 * (rc_session_root) on each call and say in `where` exactly what they looked at. Any thread,
 * but getenv is not safe against a concurrent setenv, as always.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth_int.h"
#include "rc_alloc.h"
#include "rc_buf.h"
#include "rc_err.h"
#include "rc_session.h"

#define AUTH__FILE_MAX (1024 * 1024)

static int auth__write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int auth_write_secret(const char *path, const char *content)
{
    if (!path || !*path || !content)
        return RC_EINVAL;
    /* <path>.tmp.<pid>.<n>: the counter keeps two threads of one process apart. */
    static atomic_uint seq;
    char tmp[PATH_MAX];
    int fd = -1;
    for (int tries = 0; fd < 0 && tries < 8; tries++) {
        int n = snprintf(tmp, sizeof(tmp), "%s.tmp.%d.%u", path, (int)getpid(),
                         atomic_fetch_add(&seq, 1));
        if (n < 0 || (size_t)n >= sizeof(tmp))
            return RC_EINVAL;
        fd = open(tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
        if (fd < 0 && errno != EEXIST)
            return errno == ENOENT ? RC_ENOENT : RC_EIO;
    }
    if (fd < 0)
        return RC_EIO;
    /* The umask can only take bits away; fchmod makes it exactly 0600 either way. */
    int ok = fchmod(fd, 0600) == 0 && auth__write_all(fd, content, strlen(content)) == 0 &&
             fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (ok && rename(tmp, path) == 0)
        return 0;
    unlink(tmp);
    return RC_EIO;
}

int auth_read_file(const char *path, char **out)
{
    if (!path)
        return RC_EINVAL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ENOTDIR ? RC_ENOENT : RC_EIO;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return RC_EIO;
    }
    if (st.st_size >= AUTH__FILE_MAX) {
        close(fd);
        return RC_ETOOBIG;
    }
    /* Read to EOF rather than trusting st_size: the file may be growing. */
    rc_buf b = RC_BUF_INIT;
    char chunk[8192];
    int rc = 0;
    for (;;) {
        ssize_t r = read(fd, chunk, sizeof(chunk));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = RC_EIO;
            break;
        }
        if (r == 0)
            break;
        if (b.len + (size_t)r >= AUTH__FILE_MAX) {
            rc = RC_ETOOBIG;
            break;
        }
        rc_buf_append(&b, chunk, (size_t)r);
    }
    close(fd);
    if (rc != 0) {
        rc_buf_free(&b);
        return rc;
    }
    *out = rc_buf_detach(&b);
    return 0;
}

static void auth__rstrip(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
}

static const char *auth__why(int rc)
{
    switch (rc) {
    case RC_ENOENT:
        return "no such file";
    case RC_ETOOBIG:
        return "too large";
    default:
        return "unreadable";
    }
}

/* Reads path and strips it; 0 with *out, or notes in why what was wrong. */
static int auth__read_stripped(const char *path, char **out, const char **why)
{
    char *s = NULL;
    int rc = auth_read_file(path, &s);
    if (rc != 0) {
        *why = auth__why(rc);
        return rc;
    }
    auth__rstrip(s);
    if (!*s) {
        rc_free(s);
        *why = "empty";
        return RC_ENOENT;
    }
    *out = s;
    return 0;
}

static void auth__latest_path(const char *name, char *out, size_t outlen)
{
    char root[PATH_MAX];
    rc_session_root(root, sizeof(root));
    snprintf(out, outlen, "%s/session_latest/%s", root, name);
}

static void auth__where(char *where, size_t wherelen, rc_buf *b)
{
    if (where && wherelen)
        snprintf(where, wherelen, "%s", rc_buf_cstr(b));
    rc_buf_free(b);
}

int auth_find_client_token(char **token, char *where, size_t wherelen)
{
    rc_buf w = RC_BUF_INIT;
    const char *env = getenv("RAYC_AUTH_TOKEN");
    if (env && *env) {
        char *t = rc_strdup(env);
        auth__rstrip(t);
        if (*t) {
            *token = t;
            return 0;
        }
        rc_free(t);
    }
    rc_buf_printf(&w, "no token in RAYC_AUTH_TOKEN (%s), ", env ? "empty" : "unset");

    const char *why = NULL;
    const char *path = getenv("RAYC_AUTH_TOKEN_PATH");
    if (path && *path) {
        if (auth__read_stripped(path, token, &why) == 0) {
            rc_buf_free(&w);
            return 0;
        }
        rc_buf_printf(&w, "RAYC_AUTH_TOKEN_PATH=%s (%s)", path, why);
    } else {
        rc_buf_puts(&w, "RAYC_AUTH_TOKEN_PATH (unset)");
    }

    char latest[PATH_MAX + 64];
    auth__latest_path("auth_token", latest, sizeof(latest));
    if (auth__read_stripped(latest, token, &why) == 0) {
        rc_buf_free(&w);
        return 0;
    }
    rc_buf_printf(&w, " or %s (%s); `rayc get-auth-token` on the head prints it", latest, why);
    auth__where(where, wherelen, &w);
    return RC_ENOENT;
}

/* Reads a CA certificate file; one that holds no certificate counts as not found. */
static int auth__read_ca(const char *path, char **out, const char **why)
{
    char *pem = NULL; /* not stripped: PEM keeps its final newline */
    int rc = auth_read_file(path, &pem);
    if (rc != 0) {
        *why = auth__why(rc);
        return rc;
    }
    X509 *x = auth__x509_from_pem(pem);
    if (!x) {
        rc_free(pem);
        *why = "not a PEM certificate";
        return RC_ENOENT;
    }
    X509_free(x);
    *out = pem;
    return 0;
}

int auth_find_ca_cert(char **ca_pem, char *where, size_t wherelen)
{
    rc_buf w = RC_BUF_INIT;
    const char *why = NULL;
    const char *path = getenv("RAYC_CA_CERT");
    if (path && *path) {
        if (auth__read_ca(path, ca_pem, &why) == 0)
            return 0;
        rc_buf_printf(&w, "no CA certificate in RAYC_CA_CERT=%s (%s)", path, why);
    } else {
        rc_buf_puts(&w, "no CA certificate in RAYC_CA_CERT (unset)");
    }
    char latest[PATH_MAX + 64];
    auth__latest_path("ca.crt", latest, sizeof(latest));
    if (auth__read_ca(latest, ca_pem, &why) == 0) {
        rc_buf_free(&w);
        return 0;
    }
    rc_buf_printf(&w, " or %s (%s); copy ca.crt from the head's session directory and point "
                      "RAYC_CA_CERT at it", latest, why);
    auth__where(where, wherelen, &w);
    return RC_ENOENT;
}
