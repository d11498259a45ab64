/*
 * fuzz_json: rc_json_parse on arbitrary bytes, and rc_config_apply_json, which reads the
 * config blob a GCS hands each raylet.
 *
 * Invariants checked: a tree the parser returns, written back out as JSON (with
 * rc_buf_json_str, as rayc writes JSON), parses again to an equal tree; rc_json_get finds
 * every member whose name has no NUL; after any config blob, rc_config_to_json still writes
 * JSON that rc_json_parse reads. One thread (rc_cfg is reset after each input).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rc_buf.h"
#include "rc_config.h"
#include "rc_json.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    rc_config_init();
    return 0;
}

static void fuzz_fail(const char *what, const char *text)
{
    fprintf(stderr, "fuzz_json: %s: %s\n", what, text);
    abort();
}

static int fuzz_equal(const rc_json *a, const rc_json *b)
{
    if (a->type != b->type || a->n_items != b->n_items || a->key_len != b->key_len)
        return 0;
    if (a->key_len && memcmp(a->key, b->key, a->key_len) != 0)
        return 0;
    switch (a->type) {
    case RC_JSON_BOOL:
        return a->boolean == b->boolean;
    case RC_JSON_NUMBER:
        return a->number == b->number;
    case RC_JSON_STRING:
        return a->str_len == b->str_len && memcmp(a->str, b->str, a->str_len) == 0;
    default:
        break;
    }
    for (size_t i = 0; i < a->n_items; i++)
        if (!fuzz_equal(&a->items[i], &b->items[i]))
            return 0;
    return 1;
}

static void fuzz_walk(const rc_json *v, const char *text)
{
    if (!rc_json_type_name(v->type))
        fuzz_fail("a node of no known type", text);
    if (v->type == RC_JSON_STRING && (!v->str || v->str[v->str_len] != '\0'))
        fuzz_fail("a string that is not NUL-terminated", text);
    for (size_t i = 0; i < v->n_items; i++) {
        const rc_json *it = &v->items[i];
        if (v->type == RC_JSON_OBJECT) {
            if (!it->key || it->key[it->key_len] != '\0')
                fuzz_fail("a member name that is not NUL-terminated", text);
            if (strlen(it->key) == it->key_len && !rc_json_get(v, it->key))
                fuzz_fail("rc_json_get misses a member", text);
        }
        fuzz_walk(it, text);
    }
}

static void fuzz_config(const uint8_t *data, size_t size)
{
    if (rc_config_apply_json((const char *)data, size) == 0) {
        rc_buf out = RC_BUF_INIT;
        rc_config_to_json(&out);
        rc_json *cfg;
        char err[200];
        if (rc_json_parse(out.data, out.len, &cfg, err, sizeof(err)) < 0)
            fuzz_fail("rc_config_to_json wrote what rc_json_parse refuses", err);
        rc_json_free(cfg);
        rc_buf_free(&out);
    }
    rc_config_init();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rc_json *v;
    char err[200];
    if (rc_json_parse((const char *)data, size, &v, err, sizeof(err)) < 0) {
        if (!memchr(err, '\0', sizeof(err)))
            fuzz_fail("the parse error is not a string", "");
        return 0;
    }
    rc_buf out = RC_BUF_INIT;
    rc_json_write(&out, v);
    const char *text = rc_buf_cstr(&out);
    fuzz_walk(v, text);
    rc_json *again;
    if (rc_json_parse(out.data, out.len, &again, err, sizeof(err)) < 0)
        fuzz_fail(err, text);
    if (!fuzz_equal(v, again))
        fuzz_fail("written back and read again, the tree differs", text);
    rc_json_free(again);
    rc_json_free(v);
    rc_buf_free(&out);
    fuzz_config(data, size);
    return 0;
}
