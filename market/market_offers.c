/*
 * market_offers.c: market offers — parsing an offers file, their class names and the labels
 * a host leased on one will carry.
 *
 * An offers file is a JSON array of objects with the field names (Vast.ai-style
 * normalized offers). Parsing is strict: unknown keys, duplicate ids, wrong types and values
 * out of range are errors naming the offer and the field, because a provider's typo must not
 * turn into a host that is cheaper or bigger than it really is. Pure: the caller reads the
 * file. Single-threaded over its arguments.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "market_int.h"
#include "rc_alloc.h"
#include "rc_err.h"
#include "rc_map.h"

#define MK_LABEL_ACCEL "ray.io/accelerator-type"
#define MK_LABEL_REGION "ray.io/market-region"

void mk_offer_class(const mk_offer *o, char *out, size_t outlen)
{
    if (o->gpu_name && o->gpu_name[0])
        snprintf(out, outlen, "%sx%g", o->gpu_name, o->num_gpus);
    else
        snprintf(out, outlen, "cpu%g", o->num_cpus);
}

const char *mk_offer_label(const mk_offer *o, const char *key)
{
    if (!strcmp(key, MK_LABEL_ACCEL))
        return o->gpu_name && o->gpu_name[0] ? o->gpu_name : NULL;
    if (!strcmp(key, MK_LABEL_REGION))
        return o->region && o->region[0] ? o->region : NULL;
    for (size_t i = 0; i < o->n_labels; i++)
        if (!strcmp(o->label_keys[i], key))
            return o->label_values[i];
    return NULL;
}

static void offer_clear(mk_offer *o)
{
    rc_free(o->id);
    rc_free(o->provider);
    rc_free(o->gpu_name);
    rc_free(o->region);
    for (size_t i = 0; i < o->n_labels; i++) {
        rc_free(o->label_keys[i]);
        rc_free(o->label_values[i]);
    }
    rc_free(o->label_keys);
    rc_free(o->label_values);
    rc_free(o->host);
}

void mk_offers_free(mk_offer *offers, size_t n)
{
    if (!offers)
        return;
    for (size_t i = 0; i < n; i++)
        offer_clear(&offers[i]);
    rc_free(offers);
}

static int parse_behaviour(const rc_json *obj, mk_offer *o, const mk__where *w)
{
    char *b = NULL;
    int rc = mk__get_string(obj, "behaviour", 0, 1, &b, w);
    if (rc <= 0)
        return rc;
    static const struct {
        const char *name;
        mk_behaviour value;
    } names[] = {{"honest", MK_HONEST},
                 {"launch_error", MK_LAUNCH_ERROR},
                 {"never_registers", MK_NEVER_REGISTERS},
                 {"fake_gpu", MK_FAKE_GPU},
                 {"slow", MK_SLOW}};
    for (size_t i = 0; i < RC_ARRAY_LEN(names); i++)
        if (!strcmp(b, names[i].name)) {
            o->behaviour = names[i].value;
            rc_free(b);
            return 1;
        }
    static const char vanish[] = "vanish_after_s:";
    if (!strncmp(b, vanish, sizeof(vanish) - 1)) {
        const char *num = b + sizeof(vanish) - 1;
        char *end;
        long long s = strtoll(num, &end, 10);
        if (*num >= '0' && *num <= '9' && !*end && s > 0 && s < (1LL << 40)) {
            o->behaviour = MK_VANISH_AFTER;
            o->vanish_after_s = s;
            rc_free(b);
            return 1;
        }
    }
    rc = mk__fail(w,
                  "\"behaviour\" must be one of \"honest\", \"launch_error\", \"never_registers\", "
                  "\"fake_gpu\", \"slow\" or \"vanish_after_s:N\" (N seconds > 0), not \"%.40s\"",
                  b);
    rc_free(b);
    return rc;
}

static int parse_labels(const rc_json *obj, mk_offer *o, const mk__where *w)
{
    const rc_json *l = rc_json_get(obj, "labels");
    if (!l)
        return 0;
    if (l->type != RC_JSON_OBJECT)
        return mk__fail(w, "\"labels\" must be an object of string values, e.g. {\"zone\": \"a\"}");
    o->label_keys = rc_calloc(l->n_items + 1, sizeof(char *));
    o->label_values = rc_calloc(l->n_items + 1, sizeof(char *));
    for (size_t i = 0; i < l->n_items; i++) {
        const rc_json *m = &l->items[i];
        if (!m->key_len || strlen(m->key) != m->key_len)
            return mk__fail(w, "\"labels\" has an empty key or one with a NUL character");
        if (!strncmp(m->key, "ray.io/", 7))
            return mk__fail(w,
                            "label \"%.60s\": the \"ray.io/\" prefix is reserved (the market sets %s and %s "
                            "itself)",
                            m->key, MK_LABEL_ACCEL, MK_LABEL_REGION);
        if (m->type != RC_JSON_STRING || strlen(m->str) != m->str_len)
            return mk__fail(w, "label \"%.60s\" must have a string value", m->key);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(o->label_keys[j], m->key))
                return mk__fail(w, "label \"%.60s\" appears twice", m->key);
        o->label_keys[o->n_labels] = rc_strdup(m->key);
        o->label_values[o->n_labels] = rc_strdup(m->str);
        o->n_labels++;
    }
    return 0;
}

static int parse_offer(const rc_json *it, size_t index, mk_offer *o, char *err, size_t errlen)
{
    static const char *const known[] = {
        "id",     "gpu_name",    "num_gpus",         "gpu_memory", "num_cpus",  "memory",    "price_per_hour",
        "billing_increment_s", "region", "reliability", "lease_duration_s", "behaviour", "available", "labels",
        "host", NULL};
    char what[96];
    const rc_json *id = rc_json_get(it, "id");
    if (id && id->type == RC_JSON_STRING && id->str_len && strlen(id->str) == id->str_len)
        snprintf(what, sizeof(what), "offer \"%.60s\"", id->str);
    else
        snprintf(what, sizeof(what), "offer #%zu", index + 1);
    mk__where w = {what, err, errlen};
    int rc = mk__check_object(it, known, &w);
    if (rc < 0)
        return rc;
    o->gpu_name = rc_strdup("");
    o->region = rc_strdup("");
    o->reliability = 1;
    o->available = 1;
    int64_t available = 1;
    if ((rc = mk__get_string(it, "id", 1, 1, &o->id, &w)) < 0 ||
        (rc = mk__get_string(it, "gpu_name", 0, 0, &o->gpu_name, &w)) < 0 ||
        (rc = mk__get_number(it, "num_gpus", 0, 0, 1024, &o->num_gpus, &w)) < 0 ||
        (rc = mk__get_number(it, "gpu_memory", 0, 0, 1e6, &o->gpu_memory, &w)) < 0 ||
        (rc = mk__get_number(it, "num_cpus", 1, 0, 1e6, &o->num_cpus, &w)) < 0 ||
        (rc = mk__get_number(it, "memory", 0, 0, 1e9, &o->memory, &w)) < 0 ||
        (rc = mk__get_number(it, "price_per_hour", 1, 0, HUGE_VAL, &o->price_per_hour, &w)) < 0 ||
        (rc = mk__get_int(it, "billing_increment_s", 0, 0, 1LL << 40, &o->billing_increment_s, &w)) < 0 ||
        (rc = mk__get_string(it, "region", 0, 0, &o->region, &w)) < 0 ||
        (rc = mk__get_number(it, "reliability", 0, 0.000001, 1, &o->reliability, &w)) < 0 ||
        (rc = mk__get_int(it, "lease_duration_s", 0, 0, 1LL << 40, &o->lease_duration_s, &w)) < 0 ||
        (rc = mk__get_int(it, "available", 0, 0, 1000000, &available, &w)) < 0 ||
        (rc = mk__get_string(it, "host", 0, 1, &o->host, &w)) < 0 ||
        (rc = parse_behaviour(it, o, &w)) < 0 || (rc = parse_labels(it, o, &w)) < 0)
        return rc;
    o->available = (int)available;
    if (o->num_gpus > 0 && !o->gpu_name[0])
        return mk__fail(&w, "\"num_gpus\" is %g but \"gpu_name\" is missing; name the GPU model (e.g. \"A100\")",
                        o->num_gpus);
    if (o->gpu_name[0] && o->num_gpus <= 0)
        return mk__fail(&w, "\"gpu_name\" is \"%.40s\" but \"num_gpus\" is 0; give the number of GPUs",
                        o->gpu_name);
    if (o->gpu_memory > 0 && o->num_gpus <= 0)
        return mk__fail(&w, "\"gpu_memory\" is set but the offer has no GPUs");
    return 0;
}

int mk_offers_parse(const char *json, size_t len, const char *provider, mk_offer **out, size_t *n_out, char *err,
                    size_t errlen)
{
    *out = NULL;
    *n_out = 0;
    if (err && errlen)
        err[0] = '\0';
    rc_json *root;
    char jerr[160];
    if (rc_json_parse(json, len, &root, jerr, sizeof(jerr)) < 0) {
        if (err && errlen)
            snprintf(err, errlen, "not valid JSON: %s", jerr);
        return RC_EPARSE;
    }
    if (root->type != RC_JSON_ARRAY) {
        if (err && errlen)
            snprintf(err, errlen, "an offers file must be a JSON array of offers, not %s",
                     rc_json_type_name(root->type));
        rc_json_free(root);
        return RC_EINVAL;
    }
    mk_offer *offers = rc_calloc(root->n_items + 1, sizeof(*offers));
    size_t n = 0;
    int rc = 0;
    rc_map ids = RC_MAP_INIT; /* id -> 1-based position, to find duplicates in one pass */
    for (size_t i = 0; i < root->n_items && rc == 0; i++) {
        mk_offer *o = &offers[n++];
        rc = parse_offer(&root->items[i], i, o, err, errlen);
        if (rc < 0)
            break;
        o->provider = rc_strdup(provider ? provider : "");
        void *prev = rc_map_put_str(&ids, o->id, (void *)(uintptr_t)(i + 1));
        if (prev) {
            mk__where w = {"offers", err, errlen};
            rc = mk__fail(&w, "offer id \"%.60s\" appears twice (offers #%zu and #%zu); ids must be unique", o->id,
                          (size_t)(uintptr_t)prev, i + 1);
        }
    }
    rc_map_destroy(&ids, NULL);
    rc_json_free(root);
    if (rc < 0) {
        mk_offers_free(offers, n);
        return rc;
    }
    *out = offers;
    *n_out = n;
    return 0;
}
