/*
 * The configuration table, its environment overrides and its JSON form. See rc_config.h.
 */
#include "rc_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rc_alloc.h"
#include "rc_err.h"
#include "rc_json.h"
#include "rc_map.h"

rc_config rc_cfg;

/* Owned copies of string values set from text; freed when replaced. */
static rc_map rc__owned_strings = RC_MAP_INIT;

static int rc__parse_INT(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end)
        return RC_EINVAL;
    *out = v;
    return 0;
}

__attribute__((unused)) static int rc__parse_DOUBLE(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end)
        return RC_EINVAL;
    *out = v;
    return 0;
}

__attribute__((unused)) static int rc__parse_BOOL(const char *s, int *out)
{
    if (!strcmp(s, "1") || !strcasecmp(s, "true")) {
        *out = 1;
        return 0;
    }
    if (!strcmp(s, "0") || !strcasecmp(s, "false")) {
        *out = 0;
        return 0;
    }
    return RC_EINVAL;
}

static int rc__parse_STRING_into(const char *name, const char *s, const char **out)
{
    char *copy = rc_strdup(s);
    rc_free(rc_map_put_str(&rc__owned_strings, name, copy));
    *out = copy;
    return 0;
}

int rc_config_set(const char *name, const char *value)
{
#define RC__SET_INT(name_) return rc__parse_INT(value, &rc_cfg.name_);
#define RC__SET_DOUBLE(name_) return rc__parse_DOUBLE(value, &rc_cfg.name_);
#define RC__SET_BOOL(name_) return rc__parse_BOOL(value, &rc_cfg.name_);
#define RC__SET_STRING(name_) return rc__parse_STRING_into(#name_, value, &rc_cfg.name_);
#define X(type, name_, def, doc) \
    if (!strcmp(name, #name_)) { \
        RC__SET_##type(name_)    \
    }
#include "config_def.h"
#undef X
    return RC_ENOENT;
}

void rc_config_init(void)
{
#define X(type, name, def, doc) rc_cfg.name = def;
#include "config_def.h"
#undef X
#define X(type, name, def, doc)                                                             \
    do {                                                                                    \
        const char *env = getenv("RAYC_" #name);                                            \
        if (env && rc_config_set(#name, env) < 0)                                           \
            fprintf(stderr, "rayc: ignoring RAYC_%s=%s: not a valid %s\n", #name, env, #type); \
    } while (0);
#include "config_def.h"
#undef X
}

void rc_config_to_json(rc_buf *out)
{
    const char *sep = "";
    rc_buf_putc(out, '{');
#define RC__JSON_INT(name) rc_buf_printf(out, "%lld", (long long)rc_cfg.name);
#define RC__JSON_DOUBLE(name) rc_buf_printf(out, "%.17g", rc_cfg.name);
#define RC__JSON_BOOL(name) rc_buf_puts(out, rc_cfg.name ? "true" : "false");
#define RC__JSON_STRING(name) rc_buf_json_str(out, rc_cfg.name, strlen(rc_cfg.name));
#define X(type, name, def, doc)                \
    rc_buf_printf(out, "%s\"" #name "\":", sep); \
    RC__JSON_##type(name) sep = ",";
#include "config_def.h"
#undef X
    rc_buf_putc(out, '}');
}

int rc_config_apply_json(const char *json, size_t len)
{
    rc_json *root;
    if (rc_json_parse(json, len, &root, NULL, 0) < 0)
        return RC_EPARSE;
    if (root->type != RC_JSON_OBJECT) {
        rc_json_free(root);
        return RC_EPARSE;
    }
    for (size_t i = 0; i < root->n_items; i++) {
        const rc_json *item = &root->items[i];
        char env_name[160];
        snprintf(env_name, sizeof(env_name), "RAYC_%s", item->key);
        if (getenv(env_name))
            continue; /* this process was told otherwise on purpose */
        char text[64];
        const char *value = text;
        switch (item->type) {
        case RC_JSON_NUMBER:
            if (item->number > -9e18 && item->number < 9e18 && /* else the cast is undefined */
                item->number == (double)(long long)item->number)
                snprintf(text, sizeof(text), "%lld", (long long)item->number);
            else
                snprintf(text, sizeof(text), "%.17g", item->number);
            break;
        case RC_JSON_BOOL:
            value = item->boolean ? "true" : "false";
            break;
        case RC_JSON_STRING:
            value = item->str;
            break;
        default:
            continue;
        }
        rc_config_set(item->key, value);
    }
    rc_json_free(root);
    return 0;
}
