/*
 * A job as a user writes it outside the tree, built by test_install.sh against an installed
 * rayc only (pkg-config, or find_package(rayc)): it joins the cluster on this host (no
 * address), squares 1..10 on workers (square, from libsquares.so on the code search path)
 * and prints the sum and the nodes it sees (rayc_nodes_json). `job --num-cpus N` asks for
 * a local cluster of N CPUs (refused when a cluster runs on this host).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rayc.h"

enum { N = 10 };

int main(int argc, char **argv)
{
    rayc_init_options opts;
    rayc_init_options_init(&opts);
    if (argc == 3 && !strcmp(argv[1], "--num-cpus"))
        opts.num_cpus = atof(argv[2]);
    int rc = rayc_init(&opts);
    if (rc != 0) {
        fprintf(stderr, "job: %s (%s: %s)\n", rayc_last_error(), rayc_err_name(rc), rayc_strerror(rc));
        return 1;
    }
    rayc_ref refs[N];
    int64_t values[N];
    for (int i = 0; i < N; i++) {
        values[i] = i + 1;
        rayc_arg arg = RAYC_ARG_VALUE(&values[i], sizeof(values[i]));
        if ((rc = rayc_submit("square", &arg, 1, NULL, &refs[i])) != 0) {
            fprintf(stderr, "job: rayc_submit: %s (%s)\n", rayc_last_error(), rayc_err_name(rc));
            return 1;
        }
    }
    rayc_object out[N];
    if ((rc = rayc_get(refs, N, 120000, out)) != 0) {
        fprintf(stderr, "job: rayc_get: %s (%s)\n", rayc_last_error(), rayc_err_name(rc));
        return 1;
    }
    int64_t sum = 0;
    for (int i = 0; i < N; i++) {
        int64_t v;
        if (out[i].error || out[i].size != sizeof(v)) {
            fprintf(stderr, "job: square(%d) failed: %s\n", i + 1,
                    out[i].error ? out[i].error_message : "a result of the wrong size");
            return 1;
        }
        memcpy(&v, out[i].data, sizeof(v));
        sum += v;
        rayc_ref_release(&refs[i]);
    }
    rayc_object_release(out, N);
    printf("sum of squares: %lld\n", (long long)sum);
    char *nodes = rayc_nodes_json();
    if (!nodes) {
        fprintf(stderr, "job: rayc_nodes_json: %s\n", rayc_last_error());
        return 1;
    }
    printf("nodes %s\n", nodes); /* one line of JSON */
    free(nodes);
    rayc_shutdown();
    return 0;
}
