/*
 * Raylet flags: parsing and validation, with messages that name the bad part. See
 * raylet.h. Any thread.
 */
#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raylet.h"
#include "rc_alloc.h"
#include "rc_err.h"
#include "rc_json.h"

typedef struct raylet__flag {
    const char *name;
    int arity;
} raylet__flag;

static const raylet__flag raylet__flags[] = {
    {"--gcs-address", 1},  {"--head", 0},           {"--node-ip-address", 1},
    {"--node-manager-port", 1}, {"--node-name", 1},  {"--num-cpus", 1},
    {"--metrics-export-port", 1},
    {"--num-gpus", 1},     {"--accelerator-type", 1}, {"--gpu-memory", 1},
    {"--memory", 1},       {"--object-store-memory", 1}, {"--resources", 1},
    {"--object-store-prefault", 1},
    {"--labels", 1},       {"--ready-file", 1},       {"--session-dir", 1},
    {"--worker-command", 1}, {"--python-executable", 1},
    /* security (ARCHITECTURE §14) */
    {"--join-token", 1},   {"--ca-cert-hash", 1},     {"--ca-cert", 1},
    {"--auth-dir", 1},     {"--insecure", 0},         {"--bind-all", 0},
    /* a local cluster's daemons end with the driver that started them */
    {"--exit-with-parent", 0},
    /* for tests and demos only: the verification challenge misbehaves on purpose */
    {"--testing-challenge-corrupt", 0}, {"--testing-challenge-delay-ms", 1},
};

int raylet_flag_arity(const char *flag)
{
    for (size_t i = 0; i < RC_ARRAY_LEN(raylet__flags); i++)
        if (!strcmp(flag, raylet__flags[i].name))
            return raylet__flags[i].arity;
    return -1;
}

static int raylet__fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int raylet__fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return RC_EINVAL;
}

int raylet_parse_size(const char *text, int64_t *bytes)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || !isfinite(v) || v < 0)
        return RC_EINVAL;
    while (*end == ' ')
        end++;
    static const struct {
        const char *suffix;
        double mult;
    } units[] = {
        {"", 1},          {"B", 1},           {"K", 1e3},          {"KB", 1e3},
        {"KiB", 1024.0},  {"M", 1e6},         {"MB", 1e6},         {"MiB", 1048576.0},
        {"G", 1e9},       {"GB", 1e9},        {"GiB", 1073741824.0}, {"T", 1e12},
        {"TB", 1e12},     {"TiB", 1099511627776.0},
    };
    for (size_t i = 0; i < RC_ARRAY_LEN(units); i++) {
        if (strcasecmp(end, units[i].suffix) == 0) {
            double b = v * units[i].mult;
            if (b > 9.0e18)
                return RC_EINVAL;
            *bytes = (int64_t)llround(b);
            return 0;
        }
    }
    return RC_EINVAL;
}

static int raylet__parse_count(const char *text, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !isfinite(v) || v < 0 || v > 1e9)
        return RC_EINVAL;
    *out = v;
    return 0;
}

static int raylet__is_predefined(const char *name)
{
    static const char *names[] = {"CPU", "GPU", "memory", "object_store_memory"};
    for (size_t i = 0; i < RC_ARRAY_LEN(names); i++)
        if (!strcmp(name, names[i]))
            return 1;
    return 0;
}

int raylet_parse_resources(raylet_options *opts, const char *json, char *err, size_t errlen)
{
    rc_json *root;
    char perr[200];
    if (rc_json_parse(json, strlen(json), &root, perr, sizeof(perr)) < 0)
        return raylet__fail(err, errlen, "--resources is not valid JSON: %s", perr);
    int rc = 0;
    if (root->type != RC_JSON_OBJECT) {
        rc = raylet__fail(err, errlen,
                          "--resources must be a JSON object such as '{\"fast_disk\": 1}', not a %s",
                          rc_json_type_name(root->type));
        goto out;
    }
    for (size_t i = 0; i < root->n_items; i++) {
        const rc_json *it = &root->items[i];
        if (!it->key[0] || strlen(it->key) != it->key_len) {
            rc = raylet__fail(err, errlen, "--resources: resource names must be non-empty text");
            goto out;
        }
        if (raylet__is_predefined(it->key)) {
            rc = raylet__fail(err, errlen,
                              "--resources: \"%s\" is not a custom resource; use --num-cpus, "
                              "--num-gpus, --memory or --object-store-memory instead",
                              it->key);
            goto out;
        }
        if (it->type != RC_JSON_NUMBER || it->number < 0) {
            rc = raylet__fail(err, errlen,
                              "--resources: \"%s\" must be a non-negative number, not %s", it->key,
                              it->type == RC_JSON_NUMBER ? "a negative one" : rc_json_type_name(it->type));
            goto out;
        }
        if (opts->n_resources == RAYLET_MAX_CUSTOM) {
            rc = raylet__fail(err, errlen, "--resources: at most %d custom resources", RAYLET_MAX_CUSTOM);
            goto out;
        }
        for (size_t j = 0; j < opts->n_resources; j++) {
            if (!strcmp(opts->resource_names[j], it->key)) {
                rc = raylet__fail(err, errlen, "--resources: \"%s\" is given twice", it->key);
                goto out;
            }
        }
        opts->resource_names[opts->n_resources] = rc_strdup(it->key);
        opts->resource_values[opts->n_resources++] = it->number;
    }
out:
    rc_json_free(root);
    return rc;
}

/* Kubernetes-style label text: up to 63 characters of [A-Za-z0-9._-], starting and ending
 * with an alphanumeric character (empty allowed for values). */
static int raylet__label_word_ok(const char *s, size_t n, int allow_empty)
{
    if (n == 0)
        return allow_empty;
    if (n > 63 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return 0;
    return 1;
}

static int raylet__label_key_ok(const char *key)
{
    const char *slash = strchr(key, '/');
    if (!slash)
        return raylet__label_word_ok(key, strlen(key), 0);
    size_t plen = (size_t)(slash - key);
    if (plen == 0 || plen > 253 || strchr(slash + 1, '/'))
        return 0;
    for (size_t i = 0; i < plen; i++)
        if (!isalnum((unsigned char)key[i]) && key[i] != '-' && key[i] != '.')
            return 0;
    return raylet__label_word_ok(slash + 1, strlen(slash + 1), 0);
}

int raylet_parse_labels(raylet_options *opts, const char *text, char *err, size_t errlen)
{
    char *copy = rc_strdup(text);
    int rc = 0;
    char *save = NULL;
    for (char *pair = strtok_r(copy, ",", &save); pair; pair = strtok_r(NULL, ",", &save)) {
        while (*pair == ' ')
            pair++;
        char *eq = strchr(pair, '=');
        if (!eq) {
            rc = raylet__fail(err, errlen, "--labels: \"%s\" is not key=value", pair);
            break;
        }
        *eq = '\0';
        const char *key = pair, *value = eq + 1;
        if (!raylet__label_key_ok(key)) {
            rc = raylet__fail(err, errlen,
                              "--labels: \"%s\" is not a valid label key (up to 63 of A-Z a-z 0-9 . _ -, "
                              "optionally after a domain/ prefix)",
                              key);
            break;
        }
        if (!strncmp(key, "ray.io/", 7)) {
            rc = raylet__fail(err, errlen, "--labels: keys under ray.io/ are set by rayc itself (\"%s\")",
                              key);
            break;
        }
        if (!raylet__label_word_ok(value, strlen(value), 1)) {
            rc = raylet__fail(err, errlen, "--labels: \"%s\" is not a valid value for %s", value, key);
            break;
        }
        if (opts->n_labels == RAYLET_MAX_LABELS) {
            rc = raylet__fail(err, errlen, "--labels: at most %d labels", RAYLET_MAX_LABELS);
            break;
        }
        for (size_t j = 0; j < opts->n_labels; j++) {
            if (!strcmp(opts->labels[j].key, key)) {
                rc = raylet__fail(err, errlen, "--labels: %s is given twice", key);
                goto out;
            }
        }
        opts->labels[opts->n_labels].key = rc_strdup(key);
        opts->labels[opts->n_labels++].value = rc_strdup(value);
    }
out:
    rc_free(copy);
    return rc;
}

/* "sha256:" and 64 hex digits: the CA pin's form (auth_ca_hash). */
static int raylet__ca_hash_ok(const char *v)
{
    if (strncmp(v, "sha256:", 7) != 0 || strlen(v + 7) != 64)
        return 0;
    for (const char *p = v + 7; *p; p++)
        if (!isxdigit((unsigned char)*p))
            return 0;
    return 1;
}

static int raylet__parse_port(const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > 65535)
        return RC_EINVAL;
    *out = (int)v;
    return 0;
}

int raylet_options_parse(raylet_options *opts, int argc, char **argv, int require_gcs, char *err,
                         size_t errlen)
{
    memset(opts, 0, sizeof(*opts));
    opts->num_cpus = opts->num_gpus = -1;
    opts->memory = opts->object_store_memory = -1;
    opts->object_store_prefault = -1;
    for (int i = 0; i < argc; i++) {
        const char *flag = argv[i];
        int arity = raylet_flag_arity(flag);
        if (arity < 0)
            return raylet__fail(err, errlen, "unknown flag '%s'", flag);
        if (arity == 0) {
            if (!strcmp(flag, "--insecure"))
                opts->insecure = 1;
            else if (!strcmp(flag, "--bind-all"))
                opts->bind_all = 1;
            else if (!strcmp(flag, "--exit-with-parent"))
                opts->exit_with_parent = 1;
            else if (!strcmp(flag, "--testing-challenge-corrupt"))
                opts->testing_challenge_corrupt = 1;
            else
                opts->is_head = 1;
            continue;
        }
        if (i + 1 >= argc)
            return raylet__fail(err, errlen, "%s needs a value", flag);
        const char *v = argv[++i];
        int64_t size;
        if (!strcmp(flag, "--gcs-address")) {
            const char *colon = strrchr(v, ':');
            int port;
            if (!colon || colon == v || raylet__parse_port(colon + 1, &port) < 0 || port == 0)
                return raylet__fail(err, errlen, "--gcs-address needs HOST:PORT, not '%s'", v);
            rc_free(opts->gcs_address);
            opts->gcs_address = rc_strdup(v);
        } else if (!strcmp(flag, "--node-ip-address")) {
            rc_free(opts->node_ip_address);
            opts->node_ip_address = rc_strdup(v);
        } else if (!strcmp(flag, "--node-manager-port")) {
            if (raylet__parse_port(v, &opts->node_manager_port) < 0)
                return raylet__fail(err, errlen, "--node-manager-port needs a port number, not '%s'", v);
        } else if (!strcmp(flag, "--metrics-export-port")) {
            if (raylet__parse_port(v, &opts->metrics_export_port) < 0)
                return raylet__fail(err, errlen, "--metrics-export-port needs a port number (0: any free "
                                                 "port), not '%s'", v);
        } else if (!strcmp(flag, "--node-name")) {
            rc_free(opts->node_name);
            opts->node_name = rc_strdup(v);
        } else if (!strcmp(flag, "--num-cpus")) {
            if (raylet__parse_count(v, &opts->num_cpus) < 0)
                return raylet__fail(err, errlen, "--num-cpus needs a non-negative number, not '%s'", v);
        } else if (!strcmp(flag, "--num-gpus")) {
            if (raylet__parse_count(v, &opts->num_gpus) < 0 || opts->num_gpus != floor(opts->num_gpus))
                return raylet__fail(err, errlen, "--num-gpus needs a whole number of GPUs, not '%s'", v);
        } else if (!strcmp(flag, "--accelerator-type")) {
            if (!*v || strlen(v) > 63 || strchr(v, ' '))
                return raylet__fail(err, errlen, "--accelerator-type needs a model name such as A100, not '%s'", v);
            rc_free(opts->accelerator_type);
            opts->accelerator_type = rc_strdup(v);
        } else if (!strcmp(flag, "--gpu-memory")) {
            if (raylet_parse_size(v, &size) < 0 || size == 0)
                return raylet__fail(err, errlen, "--gpu-memory needs a size such as 80GiB or 24GB, not '%s'", v);
            opts->gpu_memory = size;
        } else if (!strcmp(flag, "--memory")) {
            if (raylet_parse_size(v, &size) < 0)
                return raylet__fail(err, errlen, "--memory needs a size such as 16GiB, not '%s'", v);
            opts->memory = size;
        } else if (!strcmp(flag, "--object-store-memory")) {
            if (raylet_parse_size(v, &size) < 0)
                return raylet__fail(err, errlen, "--object-store-memory needs a size such as 4GiB, not '%s'", v);
            opts->object_store_memory = size;
        } else if (!strcmp(flag, "--object-store-prefault")) {
            if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "on"))
                opts->object_store_prefault = 1;
            else if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "off"))
                opts->object_store_prefault = 0;
            else
                return raylet__fail(err, errlen, "--object-store-prefault needs true or false, not '%s'", v);
        } else if (!strcmp(flag, "--resources")) {
            int rc = raylet_parse_resources(opts, v, err, errlen);
            if (rc < 0)
                return rc;
        } else if (!strcmp(flag, "--labels")) {
            int rc = raylet_parse_labels(opts, v, err, errlen);
            if (rc < 0)
                return rc;
        } else if (!strcmp(flag, "--ready-file")) {
            rc_free(opts->ready_file);
            opts->ready_file = rc_strdup(v);
        } else if (!strcmp(flag, "--session-dir")) {
            if (!*v)
                return raylet__fail(err, errlen, "--session-dir needs a directory");
            rc_free(opts->session_dir);
            opts->session_dir = rc_strdup(v);
        } else if (!strcmp(flag, "--worker-command")) {
            if (!*v)
                return raylet__fail(err, errlen, "--worker-command needs the path of a program");
            rc_free(opts->worker_command);
            opts->worker_command = rc_strdup(v);
        } else if (!strcmp(flag, "--python-executable")) {
            if (!*v)
                return raylet__fail(err, errlen, "--python-executable needs the path of a Python interpreter");
            rc_free(opts->python_executable);
            opts->python_executable = rc_strdup(v);
        } else if (!strcmp(flag, "--join-token")) {
            if (!*v || strchr(v, ' ') || strlen(v) > 200)
                return raylet__fail(err, errlen, "--join-token needs the token printed by `rayc start --head` or "
                                                 "`rayc token create`");
            rc_free(opts->join_token);
            opts->join_token = rc_strdup(v);
        } else if (!strcmp(flag, "--ca-cert-hash")) {
            if (!raylet__ca_hash_ok(v))
                return raylet__fail(err, errlen, "--ca-cert-hash needs sha256:<64 hex digits> (as printed by `rayc start "
                                                 "--head`), not '%.80s'", v);
            rc_free(opts->ca_cert_hash);
            opts->ca_cert_hash = rc_strdup(v);
        } else if (!strcmp(flag, "--ca-cert")) {
            if (!*v)
                return raylet__fail(err, errlen, "--ca-cert needs the path of the cluster's CA certificate (PEM)");
            rc_free(opts->ca_cert_file);
            opts->ca_cert_file = rc_strdup(v);
        } else if (!strcmp(flag, "--testing-challenge-delay-ms")) {
            char *end;
            errno = 0;
            long long ms = strtoll(v, &end, 10);
            if (errno || end == v || *end || ms < 0 || ms > 3600000)
                return raylet__fail(err, errlen, "--testing-challenge-delay-ms needs milliseconds (0..3600000), "
                                                 "not '%s'", v);
            opts->testing_challenge_delay_ms = ms;
        } else if (!strcmp(flag, "--auth-dir")) {
            if (!*v)
                return raylet__fail(err, errlen, "--auth-dir needs a directory");
            rc_free(opts->auth_dir);
            opts->auth_dir = rc_strdup(v);
        }
    }
    if (require_gcs && !opts->gcs_address)
        return raylet__fail(err, errlen, "--gcs-address HOST:PORT is required");
    if (opts->gpu_memory && opts->num_gpus == 0)
        return raylet__fail(err, errlen, "--gpu-memory was given for a node with --num-gpus 0");
    if (opts->insecure && (opts->join_token || opts->ca_cert_hash || opts->ca_cert_file))
        return raylet__fail(err, errlen, "--insecure joins a development cluster without credentials; drop --%s",
                            opts->join_token ? "join-token" : opts->ca_cert_hash ? "ca-cert-hash" : "ca-cert");
    if (require_gcs)
        return raylet_options_check_security(opts, err, errlen);
    return 0;
}

int raylet_options_check_security(const raylet_options *opts, char *err, size_t errlen)
{
    if (opts->insecure || (opts->join_token && (opts->ca_cert_hash || opts->ca_cert_file)))
        return 0;
    return raylet__fail(err, errlen, "%s",
                        "a raylet joins a secure cluster with --join-token and --ca-cert-hash (both printed by "
                        "`rayc start --head`; `rayc token create` makes more tokens), or --insecure for a "
                        "development cluster started with --insecure");
}

const char *raylet_python_executable(const raylet_options *opts)
{
    if (opts->python_executable)
        return opts->python_executable;
    const char *env = getenv("RAYC_PYTHON");
    return env && *env ? env : "/usr/bin/python3";
}

void raylet_options_free(raylet_options *opts)
{
    rc_free(opts->gcs_address);
    rc_free(opts->node_ip_address);
    rc_free(opts->node_name);
    rc_free(opts->accelerator_type);
    rc_free(opts->ready_file);
    rc_free(opts->session_dir);
    rc_free(opts->worker_command);
    rc_free(opts->python_executable);
    rc_free(opts->join_token);
    rc_free(opts->ca_cert_hash);
    rc_free(opts->ca_cert_file);
    rc_free(opts->auth_dir);
    for (size_t i = 0; i < opts->n_resources; i++)
        rc_free(opts->resource_names[i]);
    for (size_t i = 0; i < opts->n_labels; i++) {
        rc_free(opts->labels[i].key);
        rc_free(opts->labels[i].value);
    }
    memset(opts, 0, sizeof(*opts));
}
