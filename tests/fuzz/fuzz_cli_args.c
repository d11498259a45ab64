/*
 * fuzz_cli_args: the raylet's command line, which `rayc start` also validates with
 * raylet_options_parse before it starts anything (cli/cli_start.c). The input is split at
 * NUL or newline bytes into at most FUZZ_MAX_ARGS arguments (flags only, no program name),
 * parsed both as the raylet does (--gcs-address required) and as `rayc start` does, and the
 * security flags of a parsed command line are checked (raylet_options_check_security).
 *
 * cli/ keeps its own argument handling inside the commands that act on it (cli_cmd_start
 * forks daemons), so only the raylet parser is reachable here.
 *
 * Invariants checked: a successful parse leaves values within their documented ranges, and
 * raylet_options_free releases everything either way (LeakSanitizer). One thread.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raylet.h"

enum { FUZZ_MAX_ARGS = 32 };

static void fuzz_fail(const char *what)
{
    fprintf(stderr, "fuzz_cli_args: %s\n", what);
    abort();
}

static void fuzz_parse(int argc, char **argv, int require_gcs)
{
    raylet_options opts;
    char err[512];
    err[0] = '\0';
    if (raylet_options_parse(&opts, argc, argv, require_gcs, err, sizeof(err)) == 0) {
        if (require_gcs && !opts.gcs_address)
            fuzz_fail("parsed without the required --gcs-address");
        if (opts.node_manager_port < 0 || opts.node_manager_port > 65535)
            fuzz_fail("a port out of range");
        if (opts.num_gpus >= 0 && opts.num_gpus != floor(opts.num_gpus))
            fuzz_fail("a fractional GPU count");
        if (opts.gpu_memory < 0 || opts.n_resources > RAYLET_MAX_CUSTOM ||
            opts.n_labels > RAYLET_MAX_LABELS)
            fuzz_fail("a size or count out of range");
        err[0] = '\0';
        if (raylet_options_check_security(&opts, err, sizeof(err)) < 0 && !err[0])
            fuzz_fail("refused security options without a message");
    } else if (!err[0]) {
        fuzz_fail("a refused command line without a message");
    }
    raylet_options_free(&opts);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    char *argv[FUZZ_MAX_ARGS];
    int argc = 0;
    char *arg = text;
    for (size_t i = 0; i <= size && argc < FUZZ_MAX_ARGS; i++) {
        if (text[i] != '\0' && text[i] != '\n')
            continue;
        text[i] = '\0';
        argv[argc++] = arg;
        arg = text + i + 1;
    }
    for (int i = 0; i < argc; i++)
        raylet_flag_arity(argv[i]);
    fuzz_parse(argc, argv, 1);
    fuzz_parse(argc, argv, 0);
    free(text);
    return 0;
}
