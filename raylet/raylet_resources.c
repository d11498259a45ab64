/*
 * Resource detection for a raylet: CPUs (the process's affinity mask), memory
 * (MemAvailable, split 70/30 between tasks and the object store as Ray does, the store
 * capped by free space in /dev/shm), GPUs (NVML loaded with dlopen, so hosts without
 * NVIDIA drivers need nothing; CUDA_VISIBLE_DEVICES limits what is seen, as in Ray).
 * Flags override detection. Then the implicit entries: resources node:<ip>,
 * node:__internal_head__ (head only), accelerator_type:<T>, and labels ray.io/node-id,
 * ray.io/accelerator-type and rayc.io/gpu-memory (bytes per GPU, for GPU-memory-aware
 * placement).
 *
 * Any thread (no shared state); called once at start.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dlfcn.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "raylet_int.h"
#include "rc_alloc.h"
#include "rc_err.h"
#include "rc_log.h"
#include "rc_net.h"

void raylet_accelerator_from_name(const char *gpu_name, char *out, size_t outlen)
{
    static const char *skip[] = {"NVIDIA", "GeForce", "Tesla", "Quadro"};
    char copy[256];
    snprintf(copy, sizeof(copy), "%s", gpu_name);
    char *tokens[16];
    size_t n = 0;
    for (char *t = strtok(copy, " "); t && n < 16; t = strtok(NULL, " ")) {
        int skipped = 0;
        for (size_t i = 0; i < RC_ARRAY_LEN(skip); i++)
            if (!strcmp(t, skip[i]))
                skipped = 1;
        if (!skipped)
            tokens[n++] = t;
    }
    out[0] = '\0';
    if (!n)
        return;
    char *dash = strchr(tokens[0], '-');
    if (dash)
        *dash = '\0';
    if ((!strcmp(tokens[0], "RTX") || !strcmp(tokens[0], "GTX")) && n > 1 && isdigit((unsigned char)tokens[1][0]))
        snprintf(out, outlen, "%s%s", tokens[0], tokens[1]);
    else
        snprintf(out, outlen, "%s", tokens[0]);
}

/* ---- NVML --------------------------------------------------------------------------- */

typedef struct raylet__nvml_memory {
    unsigned long long total, free, used;
} raylet__nvml_memory;

typedef struct raylet__gpus {
    int count;
    char name[96];
    int64_t min_memory;
    int64_t first_memory; /* the first GPU's */
} raylet__gpus;

/* Fills g from NVML; count 0 when there is no driver or no device. */
static void raylet__nvml_probe(raylet__gpus *g)
{
    memset(g, 0, sizeof(*g));
    void *lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib)
        return;
    int (*init)(void) = (int (*)(void))dlsym(lib, "nvmlInit_v2");
    int (*shutdown)(void) = (int (*)(void))dlsym(lib, "nvmlShutdown");
    int (*count)(unsigned *) = (int (*)(unsigned *))dlsym(lib, "nvmlDeviceGetCount_v2");
    int (*handle)(unsigned, void **) = (int (*)(unsigned, void **))dlsym(lib, "nvmlDeviceGetHandleByIndex_v2");
    int (*name)(void *, char *, unsigned) = (int (*)(void *, char *, unsigned))dlsym(lib, "nvmlDeviceGetName");
    int (*mem)(void *, raylet__nvml_memory *) =
        (int (*)(void *, raylet__nvml_memory *))dlsym(lib, "nvmlDeviceGetMemoryInfo");
    unsigned n = 0;
    if (!init || !shutdown || !count || !handle || !name || !mem || init() != 0) {
        dlclose(lib);
        return;
    }
    if (count(&n) == 0) {
        for (unsigned i = 0; i < n; i++) {
            void *dev;
            raylet__nvml_memory m;
            if (handle(i, &dev) != 0)
                continue;
            if (g->count == 0)
                name(dev, g->name, sizeof(g->name));
            if (mem(dev, &m) == 0 && (g->min_memory == 0 || (int64_t)m.total < g->min_memory))
                g->min_memory = (int64_t)m.total;
            if (g->count == 0 && mem(dev, &m) == 0)
                g->first_memory = (int64_t)m.total;
            g->count++;
        }
    }
    shutdown();
    dlclose(lib);
}

int raylet_nvml_first_gpu(char *model, size_t modellen, uint64_t *memory, unsigned *count)
{
    raylet__gpus g;
    raylet__nvml_probe(&g);
    if (g.count == 0)
        return RC_ENOENT;
    snprintf(model, modellen, "%s", g.name);
    *memory = (uint64_t)g.first_memory;
    *count = (unsigned)g.count;
    return 0;
}

/* CUDA_VISIBLE_DEVICES limits the GPUs a raylet may hand out, as in Ray. -1: not set. */
static int raylet__visible_gpus(void)
{
    const char *v = getenv("CUDA_VISIBLE_DEVICES");
    if (!v)
        return -1;
    if (!*v || !strcmp(v, "-1") || !strcasecmp(v, "NoDevFiles"))
        return 0;
    int n = 1;
    for (const char *p = v; *p; p++)
        n += *p == ',';
    return n;
}

/* ---- memory ------------------------------------------------------------------------- */

static int64_t raylet__mem_available(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return 0;
    char line[256];
    long long kb = 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "MemAvailable: %lld kB", &kb) == 1)
            break;
    fclose(f);
    return (int64_t)kb * 1024;
}

static int64_t raylet__shm_free(void)
{
    struct statvfs st;
    if (statvfs("/dev/shm", &st) != 0)
        return 0;
    return (int64_t)st.f_bavail * (int64_t)st.f_frsize;
}

/* ---- assembling the spec ------------------------------------------------------------ */

static void raylet__add_resource(raylet_node_spec *s, const char *name, double amount)
{
    if (s->n_resources == RAYLET_MAX_RESOURCES)
        return;
    s->resources[s->n_resources].name = rc_strdup(name);
    s->resources[s->n_resources].total = amount;
    s->resources[s->n_resources++].available = amount;
}

static void raylet__add_label(raylet_node_spec *s, const char *key, const char *value)
{
    if (s->n_labels == RAYLET_MAX_ALL_LABELS)
        return;
    s->labels[s->n_labels].key = rc_strdup(key);
    s->labels[s->n_labels++].value = rc_strdup(value);
}

int raylet_detect(raylet_node_spec *s, const raylet_options *opts, const char *node_id_hex,
                  char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    if (opts->node_ip_address) {
        snprintf(s->ip, sizeof(s->ip), "%s", opts->node_ip_address);
    } else if (rc_net_local_ip_for(opts->gcs_address, s->ip, sizeof(s->ip)) < 0) {
        snprintf(err, errlen, "cannot resolve the GCS address %s; pass --node-ip-address", opts->gcs_address);
        return RC_EINVAL;
    }
    if (gethostname(s->hostname, sizeof(s->hostname)) != 0)
        snprintf(s->hostname, sizeof(s->hostname), "%s", s->ip);

    cpu_set_t set;
    int cpus = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : (int)sysconf(_SC_NPROCESSORS_ONLN);
    s->num_cpus = opts->num_cpus >= 0 ? opts->num_cpus : (cpus > 0 ? cpus : 1);

    raylet__gpus gpus;
    if (opts->num_gpus < 0 || !opts->accelerator_type || !opts->gpu_memory)
        raylet__nvml_probe(&gpus);
    else
        memset(&gpus, 0, sizeof(gpus));
    int visible = raylet__visible_gpus();
    int detected = visible >= 0 && visible < gpus.count ? visible : gpus.count;
    s->num_gpus = opts->num_gpus >= 0 ? (int)opts->num_gpus : detected;
    if (s->num_gpus > 0) {
        if (opts->accelerator_type)
            snprintf(s->accelerator_type, sizeof(s->accelerator_type), "%s", opts->accelerator_type);
        else if (gpus.name[0])
            raylet_accelerator_from_name(gpus.name, s->accelerator_type, sizeof(s->accelerator_type));
        s->gpu_memory = opts->gpu_memory ? opts->gpu_memory : gpus.min_memory;
    }

    int64_t avail = raylet__mem_available();
    int64_t store = (int64_t)(avail * 0.3);
    int64_t shm = raylet__shm_free();
    if (shm > 0 && store > shm * 95 / 100)
        store = shm * 95 / 100;
    s->object_store_memory = opts->object_store_memory >= 0 ? opts->object_store_memory : store;
    s->memory = opts->memory >= 0 ? opts->memory : (avail - s->object_store_memory > 0 ? avail - s->object_store_memory : 0);

    raylet__add_resource(s, "CPU", s->num_cpus);
    if (s->num_gpus > 0)
        raylet__add_resource(s, "GPU", s->num_gpus);
    raylet__add_resource(s, "memory", (double)s->memory);
    raylet__add_resource(s, "object_store_memory", (double)s->object_store_memory);
    for (size_t i = 0; i < opts->n_resources; i++)
        raylet__add_resource(s, opts->resource_names[i], opts->resource_values[i]);
    char name[128];
    snprintf(name, sizeof(name), "node:%s", s->ip);
    raylet__add_resource(s, name, 1);
    if (opts->is_head)
        raylet__add_resource(s, "node:__internal_head__", 1);
    if (s->num_gpus > 0 && s->accelerator_type[0]) {
        snprintf(name, sizeof(name), "accelerator_type:%s", s->accelerator_type);
        raylet__add_resource(s, name, 1);
    }

    for (size_t i = 0; i < opts->n_labels; i++)
        raylet__add_label(s, opts->labels[i].key, opts->labels[i].value);
    raylet__add_label(s, "ray.io/node-id", node_id_hex);
    if (s->num_gpus > 0 && s->accelerator_type[0])
        raylet__add_label(s, "ray.io/accelerator-type", s->accelerator_type);
    if (s->num_gpus > 0 && s->gpu_memory > 0) {
        char bytes[32];
        snprintf(bytes, sizeof(bytes), "%lld", (long long)s->gpu_memory);
        raylet__add_label(s, "rayc.io/gpu-memory", bytes);
    }
    return 0;
}

void raylet_spec_free(raylet_node_spec *s)
{
    for (size_t i = 0; i < s->n_resources; i++)
        rc_free(s->resources[i].name);
    for (size_t i = 0; i < s->n_labels; i++) {
        rc_free(s->labels[i].key);
        rc_free(s->labels[i].value);
    }
    s->n_resources = s->n_labels = 0;
}
