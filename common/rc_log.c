/*
 * Logging to stderr, one write(2) per line. The level is read from RAYC_LOG_LEVEL on first
 * use. Any thread.
 */
#include "rc_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *rc__tag = "rayc";
static int rc__level = -1;

void rc_log_set_tag(const char *tag)
{
    rc__tag = tag;
}

void rc_log_set_level(enum rc_log_level level)
{
    rc__level = (int)level;
}

static int rc__level_from_env(void)
{
    const char *s = getenv("RAYC_LOG_LEVEL");
    if (!s)
        return RC_LOG_INFO;
    if (!strcasecmp(s, "debug"))
        return RC_LOG_DEBUG;
    if (!strcasecmp(s, "warning") || !strcasecmp(s, "warn"))
        return RC_LOG_WARNING;
    if (!strcasecmp(s, "error"))
        return RC_LOG_ERROR;
    return RC_LOG_INFO;
}

int rc_log_enabled(enum rc_log_level level)
{
    if (rc__level < 0)
        rc__level = rc__level_from_env();
    return (int)level >= rc__level;
}

void rc_log_write(enum rc_log_level level, const char *file, int line, const char *fmt, ...)
{
    static const char *names[] = {"D", "I", "W", "E"};
    char buf[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    int n = snprintf(buf, sizeof(buf), "[%04d-%02d-%02d %02d:%02d:%02d.%03ld %s %s %d %s:%d] ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, names[level], rc__tag, (int)getpid(),
                     base, line);
    if (n < 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(buf) - 2)
        len = sizeof(buf) - 2;
    buf[len++] = '\n';
    ssize_t ignored = write(STDERR_FILENO, buf, len);
    (void)ignored;
}
