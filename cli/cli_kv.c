/*
 * rayc kv: the GCS's internal key-value store from the shell.
 *
 *   rayc kv put NS KEY VALUE|-|@FILE [--no-overwrite]  prints "added" or "updated"/"kept"
 *   rayc kv get NS KEY [--raw]                         prints the value (exit 1 if absent)
 *   rayc kv del NS KEY [--prefix]                      prints how many keys went
 *   rayc kv list NS [PREFIX]                           prints the keys, one per line
 *
 * A value comes from the command line, from stdin ("-") or from a file ("@FILE"), so that
 * large and binary values need no argument list. get prints a value that is printable UTF-8
 * as it is and anything else escaped as Python prints bytes (\xNN, \n, \\), so binary bytes
 * never reach a terminal raw; --raw writes the exact bytes (no newline added).
 *
 * Main thread only.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli_int.h"
#include "rc_alloc.h"

static void cli__bytes(ProtobufCBinaryData *b, const char *s)
{
    b->data = (uint8_t *)s;
    b->len = strlen(s);
}

/* ---- values in and out ------------------------------------------------------------------- */

/* Reads all of f into *out (caller frees with rc_free). 0, or -1 with errno. */
static int cli__read_all(FILE *f, uint8_t **out, size_t *len)
{
    size_t cap = 64 * 1024, n = 0;
    uint8_t *buf = rc_malloc(cap);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            buf = rc_realloc(buf, cap);
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                int e = errno;
                rc_free(buf);
                errno = e ? e : EIO;
                return -1;
            }
            break;
        }
    }
    *out = buf;
    *len = n;
    return 0;
}

/* The value argument of put: "-" is stdin, "@FILE" a file, anything else itself. On success
 * *owned is what to free (NULL for the argument itself). */
static int cli__put_value(const cli_spec *s, const char *arg, ProtobufCBinaryData *v, uint8_t **owned)
{
    *owned = NULL;
    if (strcmp(arg, "-") && arg[0] != '@') {
        cli__bytes(v, arg);
        return CLI_OK;
    }
    FILE *f = !strcmp(arg, "-") ? stdin : fopen(arg + 1, "rb");
    if (!f) {
        fprintf(stderr, "%s: cannot read the value from %s: %s; give an existing file after '@'\n", s->path,
                arg + 1, strerror(errno));
        return CLI_USAGE;
    }
    size_t len;
    int rc = cli__read_all(f, owned, &len);
    int e = errno;
    if (f != stdin)
        fclose(f);
    if (rc < 0) {
        fprintf(stderr, "%s: cannot read the value from %s: %s\n", s->path, f == stdin ? "stdin" : arg + 1,
                strerror(e));
        return CLI_FAIL;
    }
    v->data = *owned;
    v->len = len;
    return CLI_OK;
}

/* Length of the UTF-8 sequence at p (at most n bytes) if it is a valid printable character,
 * else 0. Control characters other than newline and tab count as not printable. */
static size_t cli__utf8_printable(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    if (c < 0x80)
        return (c >= 0x20 && c != 0x7f) || c == '\n' || c == '\t' ? 1 : 0;
    size_t len = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
    if (!len || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    uint32_t cp = len == 2 ? (uint32_t)(c & 0x1f) : len == 3 ? (uint32_t)(c & 0x0f) : (uint32_t)(c & 0x07);
    for (size_t i = 1; i < len; i++)
        cp = (cp << 6) | (p[i] & 0x3f);
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
        return 0; /* overlong, out of range or a surrogate */
    if (cp >= 0x80 && cp < 0xa0)
        return 0; /* C1 controls */
    return len;
}

static int cli__printable(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t len = cli__utf8_printable(p + i, n - i);
        if (!len)
            return 0;
        i += len;
    }
    return 1;
}

/* Writes bytes as Python's bytes repr writes them, without the quotes. */
static void cli__print_escaped(const uint8_t *p, size_t n, FILE *f)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (c == '\\')
            fputs("\\\\", f);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c == '\r')
            fputs("\\r", f);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c >= 0x20 && c < 0x7f)
            fputc(c, f);
        else
            fprintf(f, "\\x%02x", c);
    }
}

/* ---- the subcommands -------------------------------------------------------------------- */

static const cli_opt cli__put_opts[] = {
    {"--no-overwrite", NULL, NULL, NULL, "keep the value of a key that exists", NULL},
    CLI_OPT_ADDRESS,
};
static const cli_spec cli__put_spec = {
    "rayc kv put",
    "NS KEY VALUE|-|@FILE",
    "Stores VALUE under KEY in namespace NS; '-' reads the value from stdin, '@FILE' from a\n"
    "file (any size up to the GCS's kv_max_value_bytes, binary or text). A value that\n"
    "begins with '@' or is '-' itself goes through stdin; one that begins with '-' follows\n"
    "'--' (rayc kv put NS KEY -- -5). Prints added, updated or kept.",
    NULL,
    CLI_SPEC_OPTS(cli__put_opts),
    3,
    3,
};

static const cli_opt cli__get_opts[] = {
    {"--raw", NULL, NULL, NULL, "write the exact bytes (no escaping, no newline added)", NULL},
    CLI_OPT_ADDRESS,
};
static const cli_spec cli__get_spec = {
    "rayc kv get",
    "NS KEY",
    "Prints the value of KEY in namespace NS (exit 1 if there is none). Printable UTF-8 is\n"
    "printed as it is; any other value escaped as Python prints bytes (\\xNN, \\n, \\\\).",
    NULL,
    CLI_SPEC_OPTS(cli__get_opts),
    2,
    2,
};

static const cli_opt cli__del_opts[] = {
    {"--prefix", NULL, NULL, NULL, "delete every key that begins with KEY", NULL},
    CLI_OPT_ADDRESS,
};
static const cli_spec cli__del_spec = {
    "rayc kv del", "NS KEY", "Deletes KEY from namespace NS; prints how many keys went.", NULL,
    CLI_SPEC_OPTS(cli__del_opts), 2, 2,
};

static const cli_opt cli__list_opts[] = {CLI_OPT_ADDRESS};
static const cli_spec cli__list_spec = {
    "rayc kv list", "NS [PREFIX]", "Prints the keys of namespace NS (that begin with PREFIX), one per line.", NULL,
    CLI_SPEC_OPTS(cli__list_opts), 1, 2,
};

static int cli__kv_put(int argc, char **argv)
{
    cli_args a;
    int rc = cli_parse(&cli__put_spec, argc, argv, &a);
    if (rc != CLI_OK)
        return CLI_PARSED_EXIT(rc);
    Ray__Rpc__InternalKVPutRequest req = RAY__RPC__INTERNAL_KVPUT_REQUEST__INIT;
    uint8_t *owned;
    if ((rc = cli__put_value(&cli__put_spec, a.pos[2], &req.value, &owned)) != CLI_OK)
        return rc;
    cli_conn c;
    if ((rc = cli_connect(&c, cli_arg(&a, "--address"))) != CLI_OK) {
        rc_free(owned);
        return rc;
    }
    int no_overwrite = !!cli_arg(&a, "--no-overwrite");
    cli__bytes(&req.namespace_, a.pos[0]);
    cli__bytes(&req.key, a.pos[1]);
    req.overwrite = !no_overwrite;
    ProtobufCMessage *reply = NULL;
    if ((rc = cli_call(&c, &ray__rpc__internal_kvgcs_service__descriptor, "InternalKVPut", &req.base, &reply)) ==
        CLI_OK)
        printf("%s\n", ((Ray__Rpc__InternalKVPutReply *)reply)->added ? "added"
                       : no_overwrite                                  ? "kept (key exists)"
                                                                       : "updated");
    rpc_msg_free(reply);
    rc_free(owned);
    cli_disconnect(&c);
    return rc;
}

static int cli__kv_get(int argc, char **argv)
{
    cli_args a;
    int rc = cli_parse(&cli__get_spec, argc, argv, &a);
    if (rc != CLI_OK)
        return CLI_PARSED_EXIT(rc);
    cli_conn c;
    if ((rc = cli_connect(&c, cli_arg(&a, "--address"))) != CLI_OK)
        return rc;
    Ray__Rpc__InternalKVGetRequest req = RAY__RPC__INTERNAL_KVGET_REQUEST__INIT;
    cli__bytes(&req.namespace_, a.pos[0]);
    cli__bytes(&req.key, a.pos[1]);
    ProtobufCMessage *reply = NULL;
    char err[512] = "";
    const char *m = NULL;
    int code = rpc_client_call_sync(gcs_client_rpc(c.gcs), &ray__rpc__internal_kvgcs_service__descriptor,
                                    "InternalKVGet", &req.base, 10000, &reply, err, sizeof(err));
    int status = code == GRPC_STATUS_OK ? gcs_reply_status(reply, &m) : GCS_STATUS_OK;
    if (code != GRPC_STATUS_OK) {
        fprintf(stderr, "rayc kv get: the GCS at %s did not answer: %s\n", c.address, err);
        rc = CLI_FAIL;
    } else if (status == GCS_STATUS_NOT_FOUND) {
        fprintf(stderr, "rayc kv get: no key '%s' in namespace '%s'; 'rayc kv list %s' shows its keys\n", a.pos[1],
                a.pos[0], a.pos[0]);
        rc = CLI_FAIL;
    } else if (status != GCS_STATUS_OK) {
        fprintf(stderr, "rayc kv get: %s\n", m);
        rc = CLI_FAIL;
    } else {
        const Ray__Rpc__InternalKVGetReply *r = (const void *)reply;
        if (cli_arg(&a, "--raw")) {
            fwrite(r->value.data, 1, r->value.len, stdout);
        } else {
            if (cli__printable(r->value.data, r->value.len))
                fwrite(r->value.data, 1, r->value.len, stdout);
            else
                cli__print_escaped(r->value.data, r->value.len, stdout);
            fputc('\n', stdout);
        }
    }
    rpc_msg_free(reply);
    cli_disconnect(&c);
    return rc;
}

static int cli__kv_del(int argc, char **argv)
{
    cli_args a;
    int rc = cli_parse(&cli__del_spec, argc, argv, &a);
    if (rc != CLI_OK)
        return CLI_PARSED_EXIT(rc);
    cli_conn c;
    if ((rc = cli_connect(&c, cli_arg(&a, "--address"))) != CLI_OK)
        return rc;
    Ray__Rpc__InternalKVDelRequest req = RAY__RPC__INTERNAL_KVDEL_REQUEST__INIT;
    cli__bytes(&req.namespace_, a.pos[0]);
    cli__bytes(&req.key, a.pos[1]);
    req.del_by_prefix = !!cli_arg(&a, "--prefix");
    ProtobufCMessage *reply = NULL;
    if ((rc = cli_call(&c, &ray__rpc__internal_kvgcs_service__descriptor, "InternalKVDel", &req.base, &reply)) ==
        CLI_OK)
        printf("deleted %d\n", ((Ray__Rpc__InternalKVDelReply *)reply)->deleted_num);
    rpc_msg_free(reply);
    cli_disconnect(&c);
    return rc;
}

static int cli__kv_list(int argc, char **argv)
{
    cli_args a;
    int rc = cli_parse(&cli__list_spec, argc, argv, &a);
    if (rc != CLI_OK)
        return CLI_PARSED_EXIT(rc);
    cli_conn c;
    if ((rc = cli_connect(&c, cli_arg(&a, "--address"))) != CLI_OK)
        return rc;
    Ray__Rpc__InternalKVKeysRequest req = RAY__RPC__INTERNAL_KVKEYS_REQUEST__INIT;
    cli__bytes(&req.namespace_, a.pos[0]);
    cli__bytes(&req.prefix, a.n_pos == 2 ? a.pos[1] : "");
    ProtobufCMessage *reply = NULL;
    if ((rc = cli_call(&c, &ray__rpc__internal_kvgcs_service__descriptor, "InternalKVKeys", &req.base, &reply)) ==
        CLI_OK) {
        const Ray__Rpc__InternalKVKeysReply *r = (const void *)reply;
        for (size_t i = 0; i < r->n_results; i++) {
            if (cli__printable(r->results[i].data, r->results[i].len))
                fwrite(r->results[i].data, 1, r->results[i].len, stdout);
            else
                cli__print_escaped(r->results[i].data, r->results[i].len, stdout);
            fputc('\n', stdout);
        }
    }
    rpc_msg_free(reply);
    cli_disconnect(&c);
    return rc;
}

static const cli_sub cli__kv_subs[] = {
    {"put", "store a value (from the argument, stdin or a file)", cli__kv_put},
    {"get", "print a value", cli__kv_get},
    {"del", "delete a key (or every key with a prefix)", cli__kv_del},
    {"list", "list the keys of a namespace", cli__kv_list},
};

static const cli_group cli__kv_group = {
    "rayc kv",
    "The cluster's internal key-value store (the GCS's), by namespace.",
    cli__kv_subs,
    (int)(sizeof(cli__kv_subs) / sizeof(cli__kv_subs[0])),
};

int cli_cmd_kv(int argc, char **argv)
{
    return cli_group_run(&cli__kv_group, argc, argv);
}
