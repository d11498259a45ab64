/*
 * ID helpers: random generation and hex conversion. Any thread.
 */
#include "rc_ids.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "rc_err.h"

void rc_id_random(void *out, size_t n)
{
    unsigned char *p = out;
    while (n) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            abort(); /* the kernel's entropy source is gone: nothing sensible remains */
        }
        p += got;
        n -= (size_t)got;
    }
}

char *rc_id_hex(const void *id, size_t n, char *hex)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *p = id;
    for (size_t i = 0; i < n; i++) {
        hex[2 * i] = digits[p[i] >> 4];
        hex[2 * i + 1] = digits[p[i] & 15];
    }
    hex[2 * n] = '\0';
    return hex;
}

static int rc__hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int rc_id_from_hex(const char *hex, void *out, size_t n)
{
    if (strlen(hex) != 2 * n)
        return RC_EINVAL;
    unsigned char *p = out;
    for (size_t i = 0; i < n; i++) {
        int hi = rc__hexval(hex[2 * i]), lo = rc__hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return RC_EINVAL;
        p[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

int rc_id_is_zero(const void *id, size_t n)
{
    const unsigned char *p = id;
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}
