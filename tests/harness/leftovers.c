/*
 * rayc-leftovers: what the test suites left behind on this host, checked around `make test`.
 *
 *   rayc-leftovers record STATE   notes the files dead rayc processes had left before
 *   rayc-leftovers check STATE    fails (exit 1) if dead processes left any since, listing
 *                                 them (it removes nothing: `rayc stop` does)
 *
 * Looked at: object store files in plasma_directory (/dev/shm), and the sockets and pid
 * files in the session roots tests use ($RAYC_SESSION_ROOT or /tmp/rayc, and the temporary
 * roots the suites make, one level of directories below each). A file counts only when its
 * owner is gone, as rc_sweep_* decide (a lock or an open descriptor or mapping for a store,
 * a listener for a socket, a live process for a pid file), so suites running at the same
 * time keep theirs. Files left meanwhile by another checkout's suites running on the same
 * host would count too.
 */
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rc_config.h"
#include "rc_session.h"

typedef struct found {
    char **paths;
    size_t n, cap;
} found;

static void on_stale(const char *path, rc_stale_kind kind, long pid, void *arg)
{
    (void)kind, (void)pid;
    found *f = arg;
    for (size_t i = 0; i < f->n; i++)
        if (!strcmp(f->paths[i], path))
            return;
    if (f->n == f->cap) {
        f->cap = f->cap ? 2 * f->cap : 64;
        f->paths = realloc(f->paths, f->cap * sizeof(*f->paths));
        if (!f->paths)
            abort();
    }
    f->paths[f->n++] = strdup(path);
}

static void found_free(found *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->paths[i]);
    free(f->paths);
    memset(f, 0, sizeof(*f));
}

static void scan_root(const char *root, found *f)
{
    struct stat st;
    if (lstat(root, &st) != 0 || !S_ISDIR(st.st_mode))
        return;
    rc_sweep_sessions(root, 0, on_stale, f);
    char pattern[PATH_MAX];
    snprintf(pattern, sizeof(pattern), "%s/*/", root);
    glob_t g;
    if (glob(pattern, 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++)
            rc_sweep_sessions(g.gl_pathv[i], 0, on_stale, f);
        globfree(&g);
    }
}

static void scan(found *f)
{
    rc_sweep_stores(NULL, 0, on_stale, f);
    char root[PATH_MAX];
    rc_session_root(root, sizeof(root));
    scan_root(root, f);
    /* The roots the suites make (tests/harness, test_cli.sh, test_crash_cleanup.sh, the
     * Python suites' conftest.py and cli_cluster.py, test_examples.py). */
    const char *patterns[] = {"/tmp/rayc-test-*/", "/tmp/rayc-cli-*/",  "/tmp/rayc-crash*/", "/tmp/rcpy-*/",
                              "/tmp/rayc-py-*/",   "/tmp/rayc-pytest-*/", "/tmp/rayc-ex-*/"};
    for (size_t k = 0; k < sizeof(patterns) / sizeof(patterns[0]); k++) {
        glob_t g;
        if (glob(patterns[k], 0, NULL, &g) != 0)
            continue;
        for (size_t i = 0; i < g.gl_pathc; i++) {
            char dir[PATH_MAX];
            snprintf(dir, sizeof(dir), "%s", g.gl_pathv[i]);
            size_t n = strlen(dir);
            if (n > 1 && dir[n - 1] == '/')
                dir[n - 1] = '\0';
            if (strcmp(dir, root))
                scan_root(dir, f);
        }
        globfree(&g);
    }
}

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[1], "record") && strcmp(argv[1], "check"))) {
        fprintf(stderr, "usage: rayc-leftovers record|check STATE\n");
        return 2;
    }
    rc_config_init();
    found now = {0};
    scan(&now);
    if (!strcmp(argv[1], "record")) {
        FILE *out = fopen(argv[2], "w");
        if (!out) {
            perror(argv[2]);
            return 2;
        }
        for (size_t i = 0; i < now.n; i++)
            fprintf(out, "%s\n", now.paths[i]);
        fclose(out);
        printf("rayc-leftovers: %zu file(s) of dead rayc processes were already there (not counted)\n", now.n);
        found_free(&now);
        return 0;
    }
    found before = {0};
    FILE *in = fopen(argv[2], "r");
    if (in) {
        char line[PATH_MAX];
        while (fgets(line, sizeof(line), in)) {
            line[strcspn(line, "\n")] = '\0';
            if (line[0])
                on_stale(line, RC_STALE_STORE, 0, &before);
        }
        fclose(in);
    } else {
        fprintf(stderr, "rayc-leftovers: no record at %s (the setup entry did not run); counting everything\n",
                argv[2]);
    }
    size_t left = 0;
    for (size_t i = 0; i < now.n; i++) {
        int old = 0;
        for (size_t j = 0; j < before.n && !old; j++)
            old = !strcmp(before.paths[j], now.paths[i]);
        if (old)
            continue;
        if (!left)
            fprintf(stderr, "rayc-leftovers: files of dead rayc processes left behind by the test run:\n");
        fprintf(stderr, "  %s\n", now.paths[i]);
        left++;
    }
    found_free(&now);
    found_free(&before);
    if (left) {
        fprintf(stderr, "rayc-leftovers: %zu file(s) left behind (`rayc stop` removes them)\n", left);
        return 1;
    }
    printf("rayc-leftovers: no file of a dead rayc process left behind\n");
    return 0;
}
