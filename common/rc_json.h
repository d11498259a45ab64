/*
 * rc_json: a small, strict JSON (RFC 8259) parser into a tree, for command-line arguments
 * (--resources), config blobs handed from the GCS to raylets, and tests. Output is written
 * with rc_buf (rc_buf_json_str). Nesting is limited to RC_JSON_MAX_DEPTH so hostile input
 * cannot exhaust the stack.
 *
 * A parse error names the byte offset and what was expected, so a command line can point at
 * the bad part. The tree from rc_json_parse is freed with rc_json_free. Any thread.
 */
#ifndef RAYC_COMMON_RC_JSON_H
#define RAYC_COMMON_RC_JSON_H

#include <stddef.h>

enum { RC_JSON_MAX_DEPTH = 64 };

typedef enum rc_json_type {
    RC_JSON_NULL,
    RC_JSON_BOOL,
    RC_JSON_NUMBER,
    RC_JSON_STRING,
    RC_JSON_ARRAY,
    RC_JSON_OBJECT,
} rc_json_type;

typedef struct rc_json rc_json;
struct rc_json {
    rc_json_type type;
    char *key; /* member name inside an object (NUL-terminated), else NULL */
    size_t key_len;
    int boolean;
    double number;
    char *str; /* NUL-terminated; may contain NULs from \u0000 (see str_len) */
    size_t str_len;
    rc_json *items; /* array elements or object members, in order */
    size_t n_items;
};

/* Parses len bytes of text. On success stores a tree in *out (free with rc_json_free) and
 * returns 0. On failure returns RC_EPARSE and, if err is not NULL, writes a message such as
 * "at offset 12: expected ':' after object key" into err (errlen bytes). */
int rc_json_parse(const char *text, size_t len, rc_json **out, char *err, size_t errlen);
void rc_json_free(rc_json *v);

/* The member of object v named key, or NULL (also when v is not an object). */
const rc_json *rc_json_get(const rc_json *v, const char *key);
const char *rc_json_type_name(rc_json_type t);
struct rc_buf;
/* Appends v as JSON text (", " and ": " between items; numbers with 17 significant
 * digits, so a parse gives back the same tree). */
void rc_json_write(struct rc_buf *b, const rc_json *v);

#endif
