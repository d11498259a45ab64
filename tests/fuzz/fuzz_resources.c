/*
 * fuzz_resources: the parsers of resources and labels. The input's first byte picks one, the
 * rest is its text (NUL-terminated) or, for Ray's scheduling messages, protobuf bytes:
 *
 *   0 raylet_parse_size       "80GiB"             4 sched_selector_add  key '\n' expr
 *   1 raylet_parse_resources  '{"fast_disk": 1}'  5 amounts and names   name '\n' amount
 *   2 raylet_parse_labels     "k=v,k2=v2"         6 sched_proto_strategy        (protobuf)
 *   3 sched_selector_parse    "region: in(us,eu)" 7 sched_proto_label_selector  (protobuf)
 *
 * Invariants checked: a selector that parses, formatted (sched_selector_format) parses again
 * and formats the same; an amount that validates, formatted (sched_amount_format) validates
 * again to the same amount; what the raylet parsers store stays within their limits.
 * One thread.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.pb-c.h"
#include "raylet.h"
#include "rayc_sched.h"
#include "sched_proto.h"

/* A node for sched_selector_matches, made once. */
static sched_view *fuzz_view;
static sched_node *fuzz_node;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const sched_named_amount res[] = {{"CPU", 8}, {"GPU", 2}, {"fast_disk", 1}};
    static const sched_label labels[] = {
        {"region", "us-west"}, {"zone", "a"}, {"example.com/tier", "gold"}, {"empty", ""}};
    static const uint8_t id[RC_NODE_ID_SIZE] = {1};
    sched_node_spec spec;
    sched_node_spec_init(&spec);
    spec.resources = res;
    spec.n_resources = sizeof(res) / sizeof(res[0]);
    spec.labels = labels;
    spec.n_labels = sizeof(labels) / sizeof(labels[0]);
    spec.accelerator_type = "A100";
    sched_err err;
    fuzz_view = sched_view_new(NULL);
    if (sched_view_add_node(fuzz_view, id, &spec, &fuzz_node, &err) < 0) {
        fprintf(stderr, "fuzz_resources: %s\n", err.msg);
        abort();
    }
    return 0;
}

static void fuzz_fail(const char *what, const char *text)
{
    fprintf(stderr, "fuzz_resources: %s: '%s'\n", what, text);
    abort();
}

static void fuzz_size(const char *text)
{
    int64_t bytes = -1;
    if (raylet_parse_size(text, &bytes) == 0 && bytes < 0)
        fuzz_fail("raylet_parse_size gave a negative size", text);
}

static void fuzz_raylet_opts(const char *text, int labels)
{
    raylet_options opts;
    memset(&opts, 0, sizeof(opts));
    char err[256];
    if (labels)
        raylet_parse_labels(&opts, text, err, sizeof(err));
    else
        raylet_parse_resources(&opts, text, err, sizeof(err));
    if (opts.n_resources > RAYLET_MAX_CUSTOM || opts.n_labels > RAYLET_MAX_LABELS)
        fuzz_fail("more resources or labels than the limit", text);
    for (size_t i = 0; i < opts.n_resources; i++)
        if (!opts.resource_names[i][0] || opts.resource_values[i] < 0)
            fuzz_fail("an empty name or negative amount was stored", text);
    raylet_options_free(&opts);
}

static void fuzz_selector_use(const sched_selector *s, const char *text)
{
    size_t n = sched_selector_count(s);
    for (size_t i = 0; i < n; i++) {
        const char *key;
        sched_label_op op;
        const char *const *values;
        size_t n_values;
        if (sched_selector_constraint(s, i, &key, &op, &values, &n_values) < 0 || !key)
            fuzz_fail("sched_selector_constraint refuses an index below the count", text);
        for (size_t k = 0; k < n_values; k++)
            if (!values[k])
                fuzz_fail("a constraint with a NULL value", text);
    }
    sched_selector_matches(s, fuzz_node);
}

static void fuzz_selector_parse(const char *text)
{
    sched_selector *s;
    sched_err err;
    if (sched_selector_parse(text, &s, &err) < 0)
        return;
    fuzz_selector_use(s, text);
    static char once[65536], twice[65536];
    sched_selector_format(s, once, sizeof(once));
    if (strlen(once) + 1 < sizeof(once)) {
        sched_selector *again;
        if (sched_selector_parse(once, &again, &err) < 0)
            fuzz_fail(err.msg, once);
        if (sched_selector_count(again) != sched_selector_count(s))
            fuzz_fail("the formatted selector has another number of constraints", once);
        if (strcmp(sched_selector_format(again, twice, sizeof(twice)), once) != 0)
            fuzz_fail("the formatted selector formats differently once parsed", once);
        if (sched_selector_matches(again, fuzz_node) != sched_selector_matches(s, fuzz_node))
            fuzz_fail("the formatted selector matches differently", once);
        sched_selector_free(again);
    }
    sched_selector_free(s);
}

/* Splits text at its first newline: text becomes the first part, the result is the second
 * ("" when there is none). */
static const char *fuzz_split(char *text)
{
    char *nl = strchr(text, '\n');
    if (!nl)
        return "";
    *nl = '\0';
    return nl + 1;
}

static void fuzz_selector_add(char *text)
{
    const char *expr = fuzz_split(text);
    sched_selector *s = sched_selector_new();
    sched_err err;
    if (sched_selector_add(s, text, expr, &err) == 0)
        fuzz_selector_use(s, text);
    sched_selector_free(s);
}

static void fuzz_amounts(char *text)
{
    const char *name = text, *amount_text = fuzz_split(text);
    double amount = strtod(amount_text, NULL);
    sched_amount a, b;
    sched_err err;
    if (sched_amount_from_double(name, amount, &a, &err) == 0) {
        char buf[64];
        sched_amount_format(a, buf, sizeof(buf));
        if (sched_amount_from_double(name, strtod(buf, NULL), &b, &err) < 0)
            fuzz_fail(err.msg, buf);
        if (a != b)
            fuzz_fail("a formatted amount reads back as another", buf);
    }
    sched_proto_name_ok(name);
    sched_view *v = sched_view_new(NULL);
    uint32_t id;
    if (sched_view_resource_id(v, name, &id) == 0 && strcmp(sched_view_resource_name(v, id), name))
        fuzz_fail("an interned resource has another name", name);
    sched_request r;
    sched_request_init(&r);
    sched_request_set(v, &r, name, amount, &err);
    sched_request_set_custom(v, &r, name, amount, &err);
    sched_request_set_accelerator_type(v, &r, name, &err);
    sched_view_free(v);
}

static void fuzz_strategy(const uint8_t *data, size_t size)
{
    Ray__Rpc__SchedulingStrategy *st = ray__rpc__scheduling_strategy__unpack(NULL, size, data);
    if (!st)
        return;
    sched_options opts;
    sched_options_init(&opts);
    sched_selector *hard = NULL, *soft = NULL;
    char err[256];
    sched_proto_strategy(st, &opts, &hard, &soft, err, sizeof(err));
    if (hard)
        fuzz_selector_use(hard, "(strategy hard)");
    if (soft)
        fuzz_selector_use(soft, "(strategy soft)");
    sched_selector_free(hard);
    sched_selector_free(soft);
    ray__rpc__scheduling_strategy__free_unpacked(st, NULL);
}

static void fuzz_label_selector(const uint8_t *data, size_t size)
{
    Ray__Rpc__LabelSelector *ls = ray__rpc__label_selector__unpack(NULL, size, data);
    if (!ls)
        return;
    sched_selector *s = NULL;
    char err[256];
    if (sched_proto_label_selector(ls, &s, err, sizeof(err)) == 0 && s)
        fuzz_selector_use(s, "(label_selector)");
    sched_selector_free(s);
    ray__rpc__label_selector__free_unpacked(ls, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned mode = data[0] % 8;
    data++;
    size--;
    if (mode == 6) {
        fuzz_strategy(data, size);
        return 0;
    }
    if (mode == 7) {
        fuzz_label_selector(data, size);
        return 0;
    }
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    switch (mode) {
    case 0:
        fuzz_size(text);
        break;
    case 1:
        fuzz_raylet_opts(text, 0);
        break;
    case 2:
        fuzz_raylet_opts(text, 1);
        break;
    case 3:
        fuzz_selector_parse(text);
        break;
    case 4:
        fuzz_selector_add(text);
        break;
    default:
        fuzz_amounts(text);
        break;
    }
    free(text);
    return 0;
}
