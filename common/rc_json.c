/*
 * Recursive-descent JSON parser. Strict: no trailing commas, no comments, no leading zeros,
 * no control characters in strings, nothing after the top-level value but whitespace.
 * Strings are decoded to UTF-8 (surrogate pairs joined). Depth-limited. Any thread.
 */
#include "rc_json.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rc_alloc.h"
#include "rc_buf.h"
#include "rc_err.h"

typedef struct rc__jp {
    const char *s;
    size_t len;
    size_t pos;
    char *err;
    size_t errlen;
    int failed;
} rc__jp;

static void rc__jfail(rc__jp *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void rc__jfail(rc__jp *p, const char *fmt, ...)
{
    if (p->failed)
        return;
    p->failed = 1;
    if (!p->err || !p->errlen)
        return;
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (p->pos >= p->len)
        snprintf(p->err, p->errlen, "at offset %zu (end of input): %s", p->pos, what);
    else
        snprintf(p->err, p->errlen, "at offset %zu near '%.*s': %s", p->pos,
                 (int)(p->len - p->pos < 12 ? p->len - p->pos : 12), p->s + p->pos, what);
}

static void rc__jws(rc__jp *p)
{
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

static int rc__jpeek(rc__jp *p)
{
    return p->pos < p->len ? (unsigned char)p->s[p->pos] : -1;
}

static int rc__jliteral(rc__jp *p, const char *word)
{
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0) {
        rc__jfail(p, "expected a value");
        return -1;
    }
    p->pos += n;
    return 0;
}

static int rc__jhex4(rc__jp *p, unsigned *out)
{
    if (p->len - p->pos < 4) {
        rc__jfail(p, "truncated \\u escape");
        return -1;
    }
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p->s[p->pos + (size_t)i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else {
            rc__jfail(p, "bad hex digit in \\u escape");
            return -1;
        }
    }
    p->pos += 4;
    *out = v;
    return 0;
}

static void rc__utf8(rc_buf *b, unsigned cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | cp >> 12);
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | cp >> 18);
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    rc_buf_append(b, u, n);
}

/* Parses a string literal at p->pos (which holds '"'). */
static int rc__jstring(rc__jp *p, char **out, size_t *out_len)
{
    rc_buf b = RC_BUF_INIT;
    p->pos++;
    for (;;) {
        if (p->pos >= p->len) {
            rc__jfail(p, "unterminated string");
            goto fail;
        }
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c < 0x20) {
            rc__jfail(p, "control character in string");
            goto fail;
        }
        if (c != '\\') {
            rc_buf_putc(&b, (char)c);
            p->pos++;
            continue;
        }
        p->pos++;
        if (p->pos >= p->len) {
            rc__jfail(p, "unterminated escape");
            goto fail;
        }
        char e = p->s[p->pos++];
        switch (e) {
        case '"':
        case '\\':
        case '/':
            rc_buf_putc(&b, e);
            break;
        case 'b':
            rc_buf_putc(&b, '\b');
            break;
        case 'f':
            rc_buf_putc(&b, '\f');
            break;
        case 'n':
            rc_buf_putc(&b, '\n');
            break;
        case 'r':
            rc_buf_putc(&b, '\r');
            break;
        case 't':
            rc_buf_putc(&b, '\t');
            break;
        case 'u': {
            unsigned cp;
            if (rc__jhex4(p, &cp) < 0)
                goto fail;
            if (cp >= 0xd800 && cp <= 0xdbff) {
                unsigned lo;
                if (p->len - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u') {
                    rc__jfail(p, "unpaired surrogate in \\u escape");
                    goto fail;
                }
                p->pos += 2;
                if (rc__jhex4(p, &lo) < 0)
                    goto fail;
                if (lo < 0xdc00 || lo > 0xdfff) {
                    rc__jfail(p, "bad low surrogate in \\u escape");
                    goto fail;
                }
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                rc__jfail(p, "unpaired surrogate in \\u escape");
                goto fail;
            }
            rc__utf8(&b, cp);
            break;
        }
        default:
            p->pos--;
            rc__jfail(p, "unknown escape '\\%c'", e);
            goto fail;
        }
    }
    *out_len = b.len;
    *out = rc_buf_detach(&b);
    return 0;
fail:
    rc_buf_free(&b);
    return -1;
}

static int rc__jnumber(rc__jp *p, double *out)
{
    size_t start = p->pos;
    if (rc__jpeek(p) == '-')
        p->pos++;
    int c = rc__jpeek(p);
    if (c == '0') {
        p->pos++;
    } else if (c >= '1' && c <= '9') {
        while ((c = rc__jpeek(p)) >= '0' && c <= '9')
            p->pos++;
    } else {
        rc__jfail(p, "expected a digit");
        return -1;
    }
    if (rc__jpeek(p) == '.') {
        p->pos++;
        if (!((c = rc__jpeek(p)) >= '0' && c <= '9')) {
            rc__jfail(p, "expected a digit after '.'");
            return -1;
        }
        while ((c = rc__jpeek(p)) >= '0' && c <= '9')
            p->pos++;
    }
    if (rc__jpeek(p) == 'e' || rc__jpeek(p) == 'E') {
        p->pos++;
        if (rc__jpeek(p) == '+' || rc__jpeek(p) == '-')
            p->pos++;
        if (!((c = rc__jpeek(p)) >= '0' && c <= '9')) {
            rc__jfail(p, "expected a digit in exponent");
            return -1;
        }
        while ((c = rc__jpeek(p)) >= '0' && c <= '9')
            p->pos++;
    }
    char tmp[64];
    size_t n = p->pos - start;
    if (n >= sizeof(tmp)) {
        p->pos = start;
        rc__jfail(p, "number too long");
        return -1;
    }
    memcpy(tmp, p->s + start, n);
    tmp[n] = '\0';
    *out = strtod(tmp, NULL);
    if (!isfinite(*out)) {
        p->pos = start;
        rc__jfail(p, "number out of range");
        return -1;
    }
    return 0;
}

static void rc__jclear(rc_json *v);

static int rc__jvalue(rc__jp *p, rc_json *v, int depth);

static int rc__jcontainer(rc__jp *p, rc_json *v, int depth, int is_object)
{
    char close = is_object ? '}' : ']';
    size_t cap = 0;
    p->pos++;
    rc__jws(p);
    if (rc__jpeek(p) == close) {
        p->pos++;
        return 0;
    }
    for (;;) {
        if (v->n_items == cap) {
            cap = cap ? cap * 2 : 4;
            v->items = rc_realloc(v->items, cap * sizeof(*v->items));
        }
        rc_json *item = &v->items[v->n_items];
        memset(item, 0, sizeof(*item));
        v->n_items++;
        if (is_object) {
            rc__jws(p);
            if (rc__jpeek(p) != '"') {
                rc__jfail(p, "expected a string key");
                return -1;
            }
            if (rc__jstring(p, &item->key, &item->key_len) < 0)
                return -1;
            rc__jws(p);
            if (rc__jpeek(p) != ':') {
                rc__jfail(p, "expected ':' after object key");
                return -1;
            }
            p->pos++;
        }
        if (rc__jvalue(p, item, depth + 1) < 0)
            return -1;
        rc__jws(p);
        int c = rc__jpeek(p);
        if (c == ',') {
            p->pos++;
            rc__jws(p);
            if (rc__jpeek(p) == close) {
                rc__jfail(p, "trailing comma");
                return -1;
            }
            continue;
        }
        if (c == close) {
            p->pos++;
            return 0;
        }
        rc__jfail(p, is_object ? "expected ',' or '}'" : "expected ',' or ']'");
        return -1;
    }
}

static int rc__jvalue(rc__jp *p, rc_json *v, int depth)
{
    if (depth > RC_JSON_MAX_DEPTH) {
        rc__jfail(p, "nesting deeper than %d", RC_JSON_MAX_DEPTH);
        return -1;
    }
    rc__jws(p);
    switch (rc__jpeek(p)) {
    case '{':
        v->type = RC_JSON_OBJECT;
        return rc__jcontainer(p, v, depth, 1);
    case '[':
        v->type = RC_JSON_ARRAY;
        return rc__jcontainer(p, v, depth, 0);
    case '"':
        v->type = RC_JSON_STRING;
        return rc__jstring(p, &v->str, &v->str_len);
    case 't':
        v->type = RC_JSON_BOOL;
        v->boolean = 1;
        return rc__jliteral(p, "true");
    case 'f':
        v->type = RC_JSON_BOOL;
        return rc__jliteral(p, "false");
    case 'n':
        v->type = RC_JSON_NULL;
        return rc__jliteral(p, "null");
    case -1:
        rc__jfail(p, "expected a value");
        return -1;
    default: {
        int c = rc__jpeek(p);
        if (c != '-' && (c < '0' || c > '9')) {
            rc__jfail(p, "expected a value");
            return -1;
        }
        v->type = RC_JSON_NUMBER;
        return rc__jnumber(p, &v->number);
    }
    }
}

static void rc__jclear(rc_json *v)
{
    for (size_t i = 0; i < v->n_items; i++)
        rc__jclear(&v->items[i]);
    rc_free(v->items);
    rc_free(v->key);
    rc_free(v->str);
}

int rc_json_parse(const char *text, size_t len, rc_json **out, char *err, size_t errlen)
{
    rc__jp p = {text, len, 0, err, errlen, 0};
    rc_json *v = RC_NEW(rc_json);
    if (rc__jvalue(&p, v, 0) == 0) {
        rc__jws(&p);
        if (p.pos != p.len)
            rc__jfail(&p, "unexpected text after the value");
    }
    if (p.failed) {
        rc_json_free(v);
        *out = NULL;
        return RC_EPARSE;
    }
    *out = v;
    return 0;
}

void rc_json_free(rc_json *v)
{
    if (!v)
        return;
    rc__jclear(v);
    rc_free(v);
}

const rc_json *rc_json_get(const rc_json *v, const char *key)
{
    if (!v || v->type != RC_JSON_OBJECT)
        return NULL;
    size_t n = strlen(key);
    for (size_t i = 0; i < v->n_items; i++)
        if (v->items[i].key_len == n && memcmp(v->items[i].key, key, n) == 0)
            return &v->items[i];
    return NULL;
}

void rc_json_write(rc_buf *b, const rc_json *v)
{
    switch (v->type) {
    case RC_JSON_NULL:
        rc_buf_puts(b, "null");
        break;
    case RC_JSON_BOOL:
        rc_buf_puts(b, v->boolean ? "true" : "false");
        break;
    case RC_JSON_NUMBER:
        rc_buf_printf(b, "%.17g", v->number);
        break;
    case RC_JSON_STRING:
        rc_buf_json_str(b, v->str, v->str_len);
        break;
    case RC_JSON_ARRAY:
    case RC_JSON_OBJECT:
        rc_buf_putc(b, v->type == RC_JSON_ARRAY ? '[' : '{');
        for (size_t i = 0; i < v->n_items; i++) {
            if (i)
                rc_buf_puts(b, ", ");
            if (v->type == RC_JSON_OBJECT) {
                rc_buf_json_str(b, v->items[i].key, v->items[i].key_len);
                rc_buf_puts(b, ": ");
            }
            rc_json_write(b, &v->items[i]);
        }
        rc_buf_putc(b, v->type == RC_JSON_ARRAY ? ']' : '}');
        break;
    }
}

const char *rc_json_type_name(rc_json_type t)
{
    static const char *names[] = {"null", "boolean", "number", "string", "array", "object"};
    return (unsigned)t < RC_ARRAY_LEN(names) ? names[t] : "?";
}
