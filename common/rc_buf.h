/*
 * rc_buf: a growable byte buffer, always NUL-terminated so it can be used as a C string.
 * Used to build log lines, JSON, command-line output and Redis keys.
 *
 * A zeroed rc_buf (RC_BUF_INIT) is a valid empty buffer. rc_buf_free releases the memory;
 * rc_buf_detach hands it to the caller, who frees it with rc_free. Not thread-safe: one
 * owner at a time.
 */
#ifndef RAYC_COMMON_RC_BUF_H
#define RAYC_COMMON_RC_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct rc_buf {
    char *data; /* NULL while empty and never grown; otherwise NUL-terminated */
    size_t len;
    size_t cap;
} rc_buf;

#define RC_BUF_INIT {NULL, 0, 0}

void rc_buf_reserve(rc_buf *b, size_t extra);
void rc_buf_append(rc_buf *b, const void *data, size_t n);
void rc_buf_puts(rc_buf *b, const char *s);
void rc_buf_putc(rc_buf *b, char c);
void rc_buf_printf(rc_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rc_buf_vprintf(rc_buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Appends s as a JSON string literal, quotes included, escaping as RFC 8259 requires. */
void rc_buf_json_str(rc_buf *b, const char *s, size_t n);
/* Appends n bytes as lowercase hex. */
void rc_buf_hex(rc_buf *b, const void *data, size_t n);
void rc_buf_clear(rc_buf *b);
/* The contents as a C string; "" for an empty buffer. Valid until the next change. */
const char *rc_buf_cstr(const rc_buf *b);
/* Returns the contents (never NULL) and leaves b empty; the caller frees with rc_free. */
char *rc_buf_detach(rc_buf *b);
void rc_buf_free(rc_buf *b);

#endif
