/*
 * market_scale_up_latency: from pending demand to a verified leased node running the task,
 * with the local provider. A secure head with 1 CPU and rayc-market (rounds every 200 ms, a
 * 256x256 CPU challenge) run in a private session root; a driver process submits one task
 * that needs 2 CPUs, which only a leased host can run, and times it until its result
 * arrives: the market's round, the join token, the raylet's start and registration, the
 * challenge and the lease. Between samples the host is left idle until the market has
 * released it. Also reports the challenge's share (the market's own timing of it).
 *
 * The driver is this program again (`rayc-bench --market-driver ADDRESS`), since a process
 * is the driver of one cluster only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "rayc.h"
#include "rc_json.h"
#include "rc_time.h"

/* Runs cmd with the private session root in its environment. */
static int bench__sh(const char *root, const char *cmd)
{
    char full[8448];
    snprintf(full, sizeof(full), "RAYC_SESSION_ROOT='%s' %s", root, cmd);
    return system(full);
}

/* The market's status as JSON (rc_json_free), or NULL. */
static rc_json *bench__market_status(const char *bin, const char *root)
{
    char cmd[8192];
    snprintf(cmd, sizeof(cmd), "RAYC_SESSION_ROOT='%s' '%s/rayc' market status --format json 2>/dev/null", root, bin);
    FILE *p = popen(cmd, "r");
    if (!p)
        return NULL;
    static char text[1 << 20];
    size_t len = fread(text, 1, sizeof(text) - 1, p);
    pclose(p);
    text[len] = '\0';
    rc_json *j = NULL;
    if (rc_json_parse(text, len, &j, NULL, 0) < 0)
        return NULL;
    return j;
}

static int bench__live_leases(const rc_json *s)
{
    const rc_json *leases = rc_json_get(s, "leases");
    int live = 0;
    for (size_t i = 0; leases && i < leases->n_items; i++) {
        const rc_json *st = rc_json_get(&leases->items[i], "state");
        live += st && st->type == RC_JSON_STRING && strcmp(st->str, "TERMINATED") &&
                strcmp(st->str, "ALLOCATION_FAILED") && strcmp(st->str, "ALLOCATION_TIMEOUT");
    }
    return live;
}

static int bench__cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

void bench_market_scale_up(bench_ctx *b)
{
    const char *bin = bench_bin_dir(b);
    char root[] = "/tmp/rcb-mk-XXXXXX";
    if (!mkdtemp(root)) {
        fprintf(stderr, "  market_scale_up_latency: cannot make a session root\n");
        return;
    }
    char path[512];
    snprintf(path, sizeof(path), "%s/offers.json", root);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs("[{\"id\": \"cpu2\", \"gpu_name\": \"\", \"num_gpus\": 0, \"gpu_memory\": 0, \"num_cpus\": 2, "
              "\"memory\": 2, \"price_per_hour\": 0.1, \"billing_increment_s\": 0, \"region\": \"lab\", "
              "\"reliability\": 1, \"lease_duration_s\": 0, \"behaviour\": \"honest\"}]\n",
              f);
        fclose(f);
    }
    snprintf(path, sizeof(path), "%s/market.json", root);
    f = fopen(path, "w");
    if (f) {
        fputs("{\"budget_per_hour\": 1.0, \"idle_timeout_s\": 1, \"round_interval_ms\": 200,\n"
              " \"verification\": {\"matrix_n\": 256, \"spot_checks\": 8, \"time_limit_s\": 10},\n"
              " \"providers\": [{\"name\": \"bench\", \"type\": \"local\", \"offers\": \"offers.json\"}]}\n",
              f);
        fclose(f);
    }
    double samples[8];
    int n = 0, rounds = bench_duration_ms(b) < 2000 ? 2 : 3;
    double verify_s = 0;
    int verified = 0;
    char cmd[8192];
    snprintf(cmd, sizeof(cmd),
             "'%s/rayc' start --head --port 0 --node-ip-address 127.0.0.1 --num-cpus 1 --num-gpus 0 >/dev/null 2>&1",
             bin);
    int started = bench__sh(root, cmd) == 0;
    snprintf(cmd, sizeof(cmd), "'%s/rayc' market start --config '%s' >/dev/null", bin, path);
    if (!started || bench__sh(root, cmd) != 0) {
        fprintf(stderr, "  market_scale_up_latency: cannot start a head and its market\n");
        goto out;
    }
    char address[256] = "";
    snprintf(path, sizeof(path), "%s/session_latest/gcs_address", root);
    f = fopen(path, "r");
    if (!f || !fgets(address, sizeof(address), f)) {
        if (f)
            fclose(f);
        goto out;
    }
    fclose(f);
    address[strcspn(address, "\n")] = '\0';
    for (int r = 0; r < rounds; r++) {
        /* The previous host released first, so every sample starts from no host. */
        int64_t deadline = rc_mono_ms() + 60000;
        for (;;) {
            rc_json *s = bench__market_status(bin, root);
            int live = s ? bench__live_leases(s) : 1;
            rc_json_free(s);
            if (!live || rc_mono_ms() > deadline)
                break;
            rc_sleep_ms(200);
        }
        snprintf(cmd, sizeof(cmd), "RAYC_SESSION_ROOT='%s' RAYC_CODE_SEARCH_PATH='%s/../lib/libbench_functions.so' "
                 "'%s/rayc-bench' --market-driver '%s'",
                 root, bin, bin, address);
        FILE *p = popen(cmd, "r");
        char line[64] = "";
        if (p && fgets(line, sizeof(line), p) && atof(line) > 0)
            samples[n++] = atof(line);
        if (p)
            pclose(p);
    }
    rc_json *s = bench__market_status(bin, root);
    const rc_json *v = s ? rc_json_get(s, "verifications") : NULL;
    for (size_t i = 0; v && i < v->n_items; i++) {
        const rc_json *sec = rc_json_get(&v->items[i], "seconds");
        if (sec && sec->type == RC_JSON_NUMBER) {
            verify_s += sec->number;
            verified++;
        }
    }
    rc_json_free(s);
out:
    snprintf(cmd, sizeof(cmd), "'%s/rayc' stop >/dev/null 2>&1; rm -rf '%s'", bin, root);
    bench__sh(root, cmd);
    if (!n) {
        fprintf(stderr, "  market_scale_up_latency: no sample (the market did not serve the demand)\n");
        return;
    }
    qsort(samples, (size_t)n, sizeof(samples[0]), bench__cmp);
    bench_report(b, "market_scale_up_latency", samples[n / 2], "s", NULL, 0);
    if (verified)
        bench_report(b, "market_scale_up_latency_challenge", verify_s / verified, "s", NULL, 0);
}

/* The driver: one task that needs 2 CPUs (only a leased host has them); prints the seconds
 * from its submission to its result. */
int bench_market_driver(const char *address)
{
    rayc_init_options o;
    rayc_init_options_init(&o);
    o.address = address;
    if (rayc_init(&o) != 0) {
        fprintf(stderr, "market driver: %s\n", rayc_last_error());
        return 1;
    }
    rayc_task_options t;
    rayc_task_options_init(&t);
    t.num_cpus = 2;
    int64_t start = rc_mono_ms();
    rayc_ref ref;
    rayc_object out;
    int rc = rayc_submit("noop", NULL, 0, &t, &ref) != 0 || rayc_get(&ref, 1, 120000, &out) != 0;
    double s = (double)(rc_mono_ms() - start) / 1000.0;
    if (!rc) {
        rayc_object_release(&out, 1);
        printf("%.3f\n", s);
    }
    rayc_ref_release(&ref);
    rayc_shutdown();
    return rc;
}
