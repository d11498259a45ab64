/*
 * market_config.c: the market's JSON config (budget, host limits, verification, failure
 * memory, timeouts, providers) and the strict JSON field readers the offers parser shares.
 *
 * Strict on purpose: an unknown key, a repeated key or a value of the wrong type or range is
 * an error with a sentence naming the field, because a misspelt "budget_per_hour" silently
 * ignored would let the market spend without a cap. What the config leaves out takes the
 * defaults documented in market.h. Pure: no file access (the caller reads the file and
 * prefixes its path to the error). Single-threaded over its arguments.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "market_int.h"
#include "rc_alloc.h"
#include "rc_err.h"

/* ---- field readers ---------------------------------------------------------------------- */

int mk__fail(const mk__where *w, const char *fmt, ...)
{
    if (!w->err || !w->errlen)
        return RC_EINVAL;
    int n = snprintf(w->err, w->errlen, "%s: ", w->what);
    if (n < 0 || (size_t)n >= w->errlen)
        return RC_EINVAL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->err + n, w->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return RC_EINVAL;
}

int mk__check_object(const rc_json *obj, const char *const *known, const mk__where *w)
{
    if (!obj || obj->type != RC_JSON_OBJECT)
        return mk__fail(w, "must be a JSON object, not %s", obj ? rc_json_type_name(obj->type) : "nothing");
    for (size_t i = 0; i < obj->n_items; i++) {
        const rc_json *m = &obj->items[i];
        size_t k = 0;
        while (known[k] && !(strlen(known[k]) == m->key_len && !memcmp(known[k], m->key, m->key_len)))
            k++;
        if (!known[k]) {
            char list[256];
            size_t used = 0;
            list[0] = '\0';
            for (k = 0; known[k] && used + 1 < sizeof(list); k++) {
                int n = snprintf(list + used, sizeof(list) - used, "%s\"%s\"", k ? ", " : "", known[k]);
                if (n < 0)
                    break;
                used += (size_t)n;
            }
            return mk__fail(w, "unknown key \"%.60s\" (known keys: %s)", m->key, list);
        }
        for (size_t j = 0; j < i; j++)
            if (obj->items[j].key_len == m->key_len && !memcmp(obj->items[j].key, m->key, m->key_len))
                return mk__fail(w, "key \"%s\" appears twice; give it once", known[k]);
    }
    return 0;
}

static int absent(const char *key, int required, const mk__where *w)
{
    return required ? mk__fail(w, "\"%s\" is required", key) : 0;
}

int mk__get_number(const rc_json *obj, const char *key, int required, double lo, double hi, double *out,
                   const mk__where *w)
{
    const rc_json *v = rc_json_get(obj, key);
    if (!v)
        return absent(key, required, w);
    if (v->type != RC_JSON_NUMBER || !isfinite(v->number) || v->number < lo || v->number > hi) {
        if (hi >= HUGE_VAL)
            return mk__fail(w, "\"%s\" must be a number >= %g", key, lo);
        return mk__fail(w, "\"%s\" must be a number between %g and %g", key, lo, hi);
    }
    *out = v->number;
    return 1;
}

int mk__get_int(const rc_json *obj, const char *key, int required, int64_t lo, int64_t hi, int64_t *out,
                const mk__where *w)
{
    const rc_json *v = rc_json_get(obj, key);
    if (!v)
        return absent(key, required, w);
    if (v->type != RC_JSON_NUMBER || !isfinite(v->number) || v->number != floor(v->number) ||
        v->number < (double)lo || v->number > (double)hi)
        return mk__fail(w, "\"%s\" must be a whole number between %lld and %lld", key, (long long)lo,
                        (long long)hi);
    *out = (int64_t)v->number;
    return 1;
}

int mk__get_bool(const rc_json *obj, const char *key, int *out, const mk__where *w)
{
    const rc_json *v = rc_json_get(obj, key);
    if (!v)
        return 0;
    if (v->type != RC_JSON_BOOL)
        return mk__fail(w, "\"%s\" must be true or false", key);
    *out = v->boolean;
    return 1;
}

int mk__get_string(const rc_json *obj, const char *key, int required, int nonempty, char **out,
                   const mk__where *w)
{
    const rc_json *v = rc_json_get(obj, key);
    if (!v)
        return absent(key, required, w);
    if (v->type != RC_JSON_STRING || strlen(v->str) != v->str_len || (nonempty && !v->str_len))
        return mk__fail(w, "\"%s\" must be a %sstring without NUL characters", key, nonempty ? "non-empty " : "");
    rc_free(*out);
    *out = rc_strdup(v->str);
    return 1;
}

/* ---- config ------------------------------------------------------------------------------ */

#define MK_INT_MAX_S ((int64_t)1 << 40) /* durations: far beyond any lease, within a double */

void mk_config_defaults(mk_config *c)
{
    memset(c, 0, sizeof(*c));
    c->idle_timeout_s = 60;
    c->max_hosts = -1;
    c->verify = 1;
    c->verify_n = 256;
    c->verify_n_per_gib = 0;
    c->verify_spot_checks = 8;
    c->verify_time_limit_s = 10;
    c->recheck_interval_s = 600;
    c->failure_half_life_s = 600;
    c->failure_retry_below = 0.25;
    c->failure_penalty = 1;
    c->launch_timeout_s = 60;
    c->register_timeout_s = 60;
    c->round_interval_ms = 1000;
}

void mk_config_free(mk_config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_limits; i++)
        rc_free(c->limits[i].offer_class);
    rc_free(c->limits);
    for (size_t i = 0; i < c->n_providers; i++) {
        mk_provider_config *p = &c->providers[i];
        rc_free(p->name);
        rc_free(p->type);
        rc_free(p->offers);
        rc_free(p->ssh_user);
        rc_free(p->ssh_key);
        rc_free(p->ssh_options);
        for (size_t h = 0; h < p->n_ssh_hosts; h++)
            rc_free(p->ssh_hosts[h]);
        rc_free(p->ssh_hosts);
        rc_free(p->rayc_bin);
    }
    rc_free(c->providers);
    memset(c, 0, sizeof(*c));
}

const mk_class_limit *mk_config_limit(const mk_config *c, const mk_offer *o)
{
    if (!c)
        return NULL;
    char cls[128];
    mk_offer_class(o, cls, sizeof(cls));
    for (size_t i = 0; i < c->n_limits; i++)
        if (!strcmp(c->limits[i].offer_class, cls))
            return &c->limits[i];
    if (o->gpu_name && o->gpu_name[0])
        for (size_t i = 0; i < c->n_limits; i++)
            if (!strcmp(c->limits[i].offer_class, o->gpu_name))
                return &c->limits[i];
    return NULL;
}

static int parse_classes(const rc_json *arr, mk_config *c, char *err, size_t errlen)
{
    mk__where top = {"config", err, errlen};
    if (arr->type != RC_JSON_ARRAY)
        return mk__fail(&top, "\"classes\" must be an array of {\"class\", \"min_hosts\", \"max_hosts\"}");
    c->limits = rc_calloc(arr->n_items + 1, sizeof(*c->limits));
    static const char *const known[] = {"class", "min_hosts", "max_hosts", NULL};
    for (size_t i = 0; i < arr->n_items; i++) {
        char what[48];
        snprintf(what, sizeof(what), "classes[%zu]", i);
        mk__where w = {what, err, errlen};
        const rc_json *it = &arr->items[i];
        mk_class_limit *l = &c->limits[c->n_limits];
        int64_t min = 0, max = -1;
        int rc = mk__check_object(it, known, &w);
        if (rc < 0)
            return rc;
        c->n_limits++;
        if ((rc = mk__get_string(it, "class", 1, 1, &l->offer_class, &w)) < 0 ||
            (rc = mk__get_int(it, "min_hosts", 0, 0, 1000000, &min, &w)) < 0 ||
            (rc = mk__get_int(it, "max_hosts", 0, -1, 1000000, &max, &w)) < 0)
            return rc;
        if (max >= 0 && min > max)
            return mk__fail(&w, "\"min_hosts\" %lld is above \"max_hosts\" %lld", (long long)min, (long long)max);
        for (size_t j = 0; j + 1 < c->n_limits; j++)
            if (!strcmp(c->limits[j].offer_class, l->offer_class))
                return mk__fail(&w, "class \"%s\" is listed twice; give its limits once", l->offer_class);
        l->min_hosts = (int)min;
        l->max_hosts = (int)max;
    }
    return 0;
}

static int parse_verification(const rc_json *v, mk_config *c, char *err, size_t errlen)
{
    static const char *const known[] = {"enabled",     "matrix_n",     "n_per_gib",         "spot_checks",
                                        "time_limit_s", "recheck_interval_s", NULL};
    mk__where w = {"config: \"verification\"", err, errlen};
    int64_t n = c->verify_n, per = c->verify_n_per_gib, spot = c->verify_spot_checks;
    int rc;
    if ((rc = mk__check_object(v, known, &w)) < 0 || (rc = mk__get_bool(v, "enabled", &c->verify, &w)) < 0 ||
        (rc = mk__get_int(v, "matrix_n", 0, 1, 65536, &n, &w)) < 0 ||
        (rc = mk__get_int(v, "n_per_gib", 0, 0, 4096, &per, &w)) < 0 ||
        (rc = mk__get_int(v, "spot_checks", 0, 1, 65536, &spot, &w)) < 0 ||
        (rc = mk__get_number(v, "time_limit_s", 0, 0.001, 86400, &c->verify_time_limit_s, &w)) < 0 ||
        (rc = mk__get_int(v, "recheck_interval_s", 0, 0, MK_INT_MAX_S, &c->recheck_interval_s, &w)) < 0)
        return rc;
    if (spot > n)
        return mk__fail(&w, "\"spot_checks\" %lld is more than the %lld rows of the matrix (\"matrix_n\")",
                        (long long)spot, (long long)n);
    c->verify_n = (uint32_t)n;
    c->verify_n_per_gib = (uint32_t)per;
    c->verify_spot_checks = (uint32_t)spot;
    return 0;
}

static int parse_failure(const rc_json *v, mk_config *c, char *err, size_t errlen)
{
    static const char *const known[] = {"half_life_s", "retry_below", "penalty", NULL};
    mk__where w = {"config: \"failure\"", err, errlen};
    int rc;
    if ((rc = mk__check_object(v, known, &w)) < 0 ||
        (rc = mk__get_number(v, "half_life_s", 0, 0.001, 1e9, &c->failure_half_life_s, &w)) < 0 ||
        (rc = mk__get_number(v, "retry_below", 0, 0.000001, 1e6, &c->failure_retry_below, &w)) < 0 ||
        (rc = mk__get_number(v, "penalty", 0, 0, 1e6, &c->failure_penalty, &w)) < 0)
        return rc;
    return 0;
}

static int parse_timeouts(const rc_json *v, mk_config *c, char *err, size_t errlen)
{
    static const char *const known[] = {"launch_s", "register_s", NULL};
    mk__where w = {"config: \"timeouts\"", err, errlen};
    int rc;
    if ((rc = mk__check_object(v, known, &w)) < 0 ||
        (rc = mk__get_int(v, "launch_s", 0, 1, MK_INT_MAX_S, &c->launch_timeout_s, &w)) < 0 ||
        (rc = mk__get_int(v, "register_s", 0, 1, MK_INT_MAX_S, &c->register_timeout_s, &w)) < 0)
        return rc;
    return 0;
}

static int parse_provider(const rc_json *it, size_t i, mk_config *c, char *err, size_t errlen)
{
    static const char *const known[] = {"name", "type", "offers", "user", "key", "ssh_options", "hosts", "rayc_bin", NULL};
    char what[96];
    const rc_json *name = rc_json_get(it, "name");
    if (name && name->type == RC_JSON_STRING && name->str_len && strlen(name->str) == name->str_len)
        snprintf(what, sizeof(what), "providers[%zu] (\"%.40s\")", i, name->str);
    else
        snprintf(what, sizeof(what), "providers[%zu]", i);
    mk__where w = {what, err, errlen};
    mk_provider_config *p = &c->providers[c->n_providers];
    int rc = mk__check_object(it, known, &w);
    if (rc < 0)
        return rc;
    c->n_providers++;
    if ((rc = mk__get_string(it, "name", 1, 1, &p->name, &w)) < 0 ||
        (rc = mk__get_string(it, "type", 1, 1, &p->type, &w)) < 0)
        return rc;
    for (size_t j = 0; j + 1 < c->n_providers; j++)
        if (!strcmp(c->providers[j].name, p->name))
            return mk__fail(&w, "provider name \"%s\" is used twice; names must be unique", p->name);
    int ssh = !strcmp(p->type, "ssh");
    if (!ssh && strcmp(p->type, "local"))
        return mk__fail(&w, "\"type\" must be \"local\" or \"ssh\", not \"%.40s\"", p->type);
    if ((rc = mk__get_string(it, "offers", 1, 1, &p->offers, &w)) < 0)
        return rc;
    if (!ssh) {
        static const char *const ssh_only[] = {"user", "key", "ssh_options", "hosts", "rayc_bin"};
        for (size_t k = 0; k < RC_ARRAY_LEN(ssh_only); k++)
            if (rc_json_get(it, ssh_only[k]))
                return mk__fail(&w, "\"%s\" is only for providers of type \"ssh\"", ssh_only[k]);
        return 0;
    }
    if ((rc = mk__get_string(it, "user", 0, 1, &p->ssh_user, &w)) < 0 ||
        (rc = mk__get_string(it, "key", 0, 1, &p->ssh_key, &w)) < 0 ||
        (rc = mk__get_string(it, "ssh_options", 0, 0, &p->ssh_options, &w)) < 0 ||
        (rc = mk__get_string(it, "rayc_bin", 0, 1, &p->rayc_bin, &w)) < 0)
        return rc;
    const rc_json *hosts = rc_json_get(it, "hosts");
    if (!hosts || hosts->type != RC_JSON_ARRAY || !hosts->n_items)
        return mk__fail(&w, "\"hosts\" must be a non-empty array of host names for an ssh provider");
    p->ssh_hosts = rc_calloc(hosts->n_items, sizeof(char *));
    for (size_t h = 0; h < hosts->n_items; h++) {
        const rc_json *s = &hosts->items[h];
        if (s->type != RC_JSON_STRING || !s->str_len || strlen(s->str) != s->str_len)
            return mk__fail(&w, "\"hosts\"[%zu] must be a non-empty string (a host name or address)", h);
        p->ssh_hosts[p->n_ssh_hosts++] = rc_strdup(s->str);
    }
    return 0;
}

static int parse_config(const rc_json *root, mk_config *c, char *err, size_t errlen)
{
    static const char *const known[] = {"budget_per_hour", "budget_total", "idle_timeout_s", "max_hosts",
                                        "classes",         "verification", "failure",        "timeouts",
                                        "round_interval_ms", "providers",  NULL};
    mk__where w = {"config", err, errlen};
    int64_t max_hosts = -1;
    int rc;
    if ((rc = mk__check_object(root, known, &w)) < 0 ||
        (rc = mk__get_number(root, "budget_per_hour", 0, 0, HUGE_VAL, &c->budget_per_hour, &w)) < 0 ||
        (rc = mk__get_number(root, "budget_total", 0, 0, HUGE_VAL, &c->budget_total, &w)) < 0 ||
        (rc = mk__get_int(root, "idle_timeout_s", 0, 0, MK_INT_MAX_S, &c->idle_timeout_s, &w)) < 0 ||
        (rc = mk__get_int(root, "max_hosts", 0, -1, 1000000, &max_hosts, &w)) < 0 ||
        (rc = mk__get_int(root, "round_interval_ms", 0, 10, 3600000, &c->round_interval_ms, &w)) < 0)
        return rc;
    c->max_hosts = (int)max_hosts;
    const rc_json *v;
    if ((v = rc_json_get(root, "classes")) && (rc = parse_classes(v, c, err, errlen)) < 0)
        return rc;
    if ((v = rc_json_get(root, "verification")) && (rc = parse_verification(v, c, err, errlen)) < 0)
        return rc;
    if ((v = rc_json_get(root, "failure")) && (rc = parse_failure(v, c, err, errlen)) < 0)
        return rc;
    if ((v = rc_json_get(root, "timeouts")) && (rc = parse_timeouts(v, c, err, errlen)) < 0)
        return rc;
    const rc_json *provs = rc_json_get(root, "providers");
    if (!provs || provs->type != RC_JSON_ARRAY || !provs->n_items)
        return mk__fail(&w, "\"providers\" must be a non-empty array, e.g. [{\"name\": \"lab\", \"type\": "
                            "\"local\", \"offers\": \"offers.json\"}]");
    c->providers = rc_calloc(provs->n_items, sizeof(*c->providers));
    for (size_t i = 0; i < provs->n_items; i++)
        if ((rc = parse_provider(&provs->items[i], i, c, err, errlen)) < 0)
            return rc;
    return 0;
}

int mk_config_parse(const char *json, size_t len, mk_config *out, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    mk_config_defaults(out);
    rc_json *root;
    char jerr[160];
    if (rc_json_parse(json, len, &root, jerr, sizeof(jerr)) < 0) {
        if (err && errlen)
            snprintf(err, errlen, "config: not valid JSON: %s", jerr);
        return RC_EPARSE;
    }
    int rc = parse_config(root, out, err, errlen);
    rc_json_free(root);
    if (rc < 0)
        mk_config_free(out);
    return rc < 0 ? rc : 0;
}
