/*
 * rc_buf: growable NUL-terminated byte buffer. Grows geometrically; see rc_buf.h.
 */
#include "rc_buf.h"

#include <stdio.h>
#include <string.h>

#include "rc_alloc.h"

void rc_buf_reserve(rc_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    b->data = rc_realloc(b->data, cap);
    b->cap = cap;
}

void rc_buf_append(rc_buf *b, const void *data, size_t n)
{
    rc_buf_reserve(b, n);
    if (n)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void rc_buf_puts(rc_buf *b, const char *s)
{
    rc_buf_append(b, s, strlen(s));
}

void rc_buf_putc(rc_buf *b, char c)
{
    rc_buf_append(b, &c, 1);
}

void rc_buf_vprintf(rc_buf *b, const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    rc_buf_reserve(b, 64);
    int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    if (n < 0) {
        va_end(copy);
        return;
    }
    if ((size_t)n >= b->cap - b->len) {
        rc_buf_reserve(b, (size_t)n);
        vsnprintf(b->data + b->len, b->cap - b->len, fmt, copy);
    }
    va_end(copy);
    b->len += (size_t)n;
}

void rc_buf_printf(rc_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rc_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void rc_buf_json_str(rc_buf *b, const char *s, size_t n)
{
    rc_buf_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"':
            rc_buf_puts(b, "\\\"");
            break;
        case '\\':
            rc_buf_puts(b, "\\\\");
            break;
        case '\n':
            rc_buf_puts(b, "\\n");
            break;
        case '\r':
            rc_buf_puts(b, "\\r");
            break;
        case '\t':
            rc_buf_puts(b, "\\t");
            break;
        default:
            if (c < 0x20)
                rc_buf_printf(b, "\\u%04x", c);
            else
                rc_buf_putc(b, (char)c);
        }
    }
    rc_buf_putc(b, '"');
}

void rc_buf_hex(rc_buf *b, const void *data, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *p = data;
    rc_buf_reserve(b, 2 * n);
    for (size_t i = 0; i < n; i++) {
        b->data[b->len++] = digits[p[i] >> 4];
        b->data[b->len++] = digits[p[i] & 15];
    }
    b->data[b->len] = '\0';
}

void rc_buf_clear(rc_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

const char *rc_buf_cstr(const rc_buf *b)
{
    return b->data ? b->data : "";
}

char *rc_buf_detach(rc_buf *b)
{
    char *p = b->data ? b->data : rc_strdup("");
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

void rc_buf_free(rc_buf *b)
{
    rc_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
