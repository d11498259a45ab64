/*
 * The Python figures: bench/peers/ray_micro.py (Ray's microbenchmark shapes through rayc's
 * `ray` package, on a local cluster of its own) run by Debian's /usr/bin/python3 with
 * PYTHONPATH=<build>/python and RAYC_BIN_DIR=<build>/bin. Its figures (py_<Ray's name>)
 * become figures of this run, each reported against the C figure of the same operation
 * when this run measured it (the Python binding's cost over librayc; the ratio is py / C),
 * and as <name>_vs_dask against Dask's figure where the Dask peer ran.
 *
 * It runs last, after the C cluster of bench_tasks.c is stopped, so that the two clusters
 * do not share the CPUs. Skipped, with one line saying why, where the package is not built
 * or /usr/bin/python3 lacks numpy or cloudpickle. Its stderr goes to <tmpdir>/ray_micro.log.
 */
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_cluster.h"
#include "bench_proc.h"
#include "rayc.h"
#include "rc_json.h"

/* Python figure -> the C figure of the same operation, where the names differ beyond "py_". */
static const char *const bench__c_names[][2] = {
    {"py_single_client_get_calls", "single_client_get_calls_Plasma_Store"},
    {"py_single_client_put_calls", "single_client_put_calls_Plasma_Store"},
    {"py_idle_worker_rss_mib", "worker_idle_rss"},
    {"py_placement_group_create_removal", "placement_group_create/removal"},
    {"py_single_client_put_gigabytes", NULL}, /* reported against memcpy of its own run */
    {"py_driver_rss_after_10k_tasks", NULL},  /* a C driver's memory is no peer of Python's */
};

static const char *bench__c_name(const char *py, char *buf, size_t len)
{
    for (size_t i = 0; i < sizeof(bench__c_names) / sizeof(bench__c_names[0]); i++)
        if (!strcmp(py, bench__c_names[i][0]))
            return bench__c_names[i][1];
    if (strncmp(py, "py_", 3) != 0)
        return NULL;
    snprintf(buf, len, "%s", py + 3);
    return buf;
}

static void bench__python_figure(bench_ctx *b, const rc_json *j)
{
    const rc_json *name = rc_json_get(j, "name"), *value = rc_json_get(j, "value"), *unit = rc_json_get(j, "unit");
    const rc_json *peer = rc_json_get(j, "peer"), *peer_value = rc_json_get(j, "peer_value");
    if (!name || !value || !unit || name->type != RC_JSON_STRING || value->type != RC_JSON_NUMBER ||
        unit->type != RC_JSON_STRING)
        return;
    if (peer && peer->type == RC_JSON_STRING && peer_value && peer_value->type == RC_JSON_NUMBER) {
        bench_report(b, name->str, value->number, unit->str, peer->str, peer_value->number);
        return;
    }
    char buf[256];
    const char *c = bench__c_name(name->str, buf, sizeof(buf));
    double c_value = c ? bench_lookup(b, c) : 0;
    bench_report(b, name->str, value->number, unit->str, c_value > 0 ? c : NULL, c_value);
    char dask[300];
    snprintf(dask, sizeof(dask), "dask:%s", c ? c : name->str);
    double peer_dask = bench_lookup(b, dask);
    if (peer_dask > 0) {
        char vs[300];
        snprintf(vs, sizeof(vs), "%s_vs_dask", name->str);
        bench_report(b, vs, value->number, unit->str, "dask", peer_dask);
    }
}

void bench_python(bench_ctx *b)
{
    const char *bin = bench_bin_dir(b);
    char script[4200], pydir[4200], pattern[4300];
    snprintf(script, sizeof(script), "%s/../../bench/peers/ray_micro.py", bin);
    snprintf(pydir, sizeof(pydir), "%s/../python", bin);
    if (access(script, R_OK) != 0) {
        fprintf(stderr, "  (Python figures skipped: %s missing)\n", script);
        return;
    }
    snprintf(pattern, sizeof(pattern), "%s/ray/_raylet*.so", pydir);
    glob_t g;
    int built = glob(pattern, 0, NULL, &g) == 0 && g.gl_pathc > 0;
    globfree(&g);
    if (!built) {
        fprintf(stderr, "  (Python figures skipped: the ray package is not built in %s; cmake --build)\n", pydir);
        return;
    }
    if (access("/usr/bin/python3", X_OK) != 0 ||
        system("/usr/bin/python3 -c 'import numpy, cloudpickle' >/dev/null 2>&1") != 0) {
        fprintf(stderr, "  (Python figures skipped: /usr/bin/python3 with numpy and cloudpickle is needed; "
                        "apt-get install python3-numpy python3-cloudpickle)\n");
        return;
    }
    /* The C cluster's raylet and workers would share the two CPUs with Python's. */
    if (rayc_is_initialized())
        rayc_shutdown();
    char sessions[200];
    snprintf(sessions, sizeof(sessions), "%s/py_sessions", bench_tmpdir());
    mkdir(sessions, 0700);
    char extra[400] = "";
    const char *rss = getenv("RAYC_BENCH_RSS_TASKS");
    if (rss)
        snprintf(extra, sizeof(extra), " --rss-tasks %lld", atoll(rss));
    const char *address = getenv("RAYC_BENCH_ADDRESS");
    if (address && strlen(address) < 200 && !strchr(address, '\''))
        snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), " --address '%s'", address);
    char cmd[10000];
    snprintf(cmd, sizeof(cmd),
             "env -u RAYC_CODE_SEARCH_PATH -u RAYC_ADDRESS -u RAY_ADDRESS PYTHONPATH='%s' RAYC_BIN_DIR='%s' "
             "RAYC_SESSION_ROOT='%s' timeout -k 10 1200 /usr/bin/python3 '%s' --seconds %.2f%s%s 2>%s/ray_micro.log",
             pydir, bin, sessions, script, (double)bench_duration_ms(b) / 1000.0,
             bench_duration_ms(b) < 1000 ? " --quick" : "", extra, bench_tmpdir());
    FILE *p = popen(cmd, "r");
    if (!p) {
        fprintf(stderr, "  (Python figures skipped: cannot run /usr/bin/python3)\n");
        return;
    }
    char line[2048];
    int figures = 0;
    while (fgets(line, sizeof(line), p)) {
        rc_json *j;
        if (rc_json_parse(line, strlen(line), &j, NULL, 0) < 0)
            continue;
        bench__python_figure(b, j);
        figures++;
        rc_json_free(j);
    }
    if (pclose(p) != 0 || !figures)
        fprintf(stderr, "  (ray_micro.py failed after %d figures; see %s/ray_micro.log)\n", figures, bench_tmpdir());
}
