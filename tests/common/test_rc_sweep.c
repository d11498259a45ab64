/* The sweep of what dead processes leave behind (rc_sweep_stores, rc_sweep_sessions): every
 * kind of live owner keeps its file, every dead one's file is found and removed. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rc_config.h"
#include "rc_session.h"
#include "unit.h"

static char dir[64]; /* short: sockets live under it */

static void path_of(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", dir, name);
}

static void make_file(const char *name, const char *content)
{
    char p[PATH_MAX];
    path_of(p, sizeof(p), name);
    FILE *f = fopen(p, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(content, f);
    fclose(f);
}

static int exists(const char *name)
{
    char p[PATH_MAX];
    path_of(p, sizeof(p), name);
    return access(p, F_OK) == 0;
}

typedef struct seen {
    char names[16][128];
    rc_stale_kind kinds[16];
    int n;
} seen;

static void on_stale(const char *path, rc_stale_kind kind, long pid, void *arg)
{
    (void)pid;
    seen *s = arg;
    if (s->n < 16) {
        snprintf(s->names[s->n], sizeof(s->names[0]), "%s", path + strlen(dir) + 1);
        s->kinds[s->n++] = kind;
    }
}

static int seen_has(const seen *s, const char *name, rc_stale_kind kind)
{
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->names[i], name) && s->kinds[i] == kind)
            return 1;
    return 0;
}

/* 55 hex digits: with the letter before them, a node ID's 56. */
#define HEX55 "123456789abcdef0123456789abcdef0123456789abcdef01234567"

static void test_stores(void)
{
    make_file("rayc-a" HEX55, "dead");                /* nobody: stale */
    make_file("rayc-b" HEX55, "locked");              /* its owner lock is held */
    make_file("rayc-c" HEX55, "mapped");              /* mapped (an owner without a lock) */
    make_file("rayc-test-object-store", "not a store");   /* not a store's name */
    make_file("rayc-d" HEX55 "ff", "name too long");      /* not a store's name */
    char p[PATH_MAX];
    path_of(p, sizeof(p), "rayc-b" HEX55);
    CU_ASSERT_EQUAL(rc_owner_lock(p), 0);
    path_of(p, sizeof(p), "rayc-c" HEX55);
    int fd = open(p, O_RDWR);
    void *m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
    CU_ASSERT_NOT_EQUAL(m, MAP_FAILED);
    close(fd);

    /* Young files are being created: left alone. */
    seen s = {0};
    CU_ASSERT_EQUAL(rc_sweep_stores(dir, 1, on_stale, &s), 0);
    CU_ASSERT(exists("rayc-a" HEX55));
    sleep(RC_SWEEP_YOUNG_S + 1);

    memset(&s, 0, sizeof(s));
    CU_ASSERT_EQUAL(rc_sweep_stores(dir, 0, on_stale, &s), 1); /* listed only */
    CU_ASSERT(seen_has(&s, "rayc-a" HEX55, RC_STALE_STORE));
    CU_ASSERT(exists("rayc-a" HEX55));
    CU_ASSERT_EQUAL(rc_sweep_stores(dir, 1, NULL, NULL), 1);
    CU_ASSERT(!exists("rayc-a" HEX55));
    CU_ASSERT(exists("rayc-b" HEX55));
    CU_ASSERT(exists("rayc-c" HEX55));
    CU_ASSERT(exists("rayc-test-object-store"));
    CU_ASSERT(exists("rayc-d" HEX55 "ff"));

    /* Unmapped: now nobody holds it. */
    munmap(m, 4096);
    CU_ASSERT_EQUAL(rc_sweep_stores(dir, 1, NULL, NULL), 1);
    CU_ASSERT(!exists("rayc-c" HEX55));
    CU_ASSERT(exists("rayc-b" HEX55));
}

/* A process whose program name starts with "rayc-", until killed. */
static pid_t spawn_rayc_named(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        execlp("sleep", "rayc-sleep", "60", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200 && !rc_pid_is_rayc(pid); i++)
        usleep(10000);
    return pid;
}

static void test_sessions(void)
{
    char root[PATH_MAX];
    path_of(root, sizeof(root), "root");
    char sub[PATH_MAX + 64];
    mkdir(root, 0700);
    snprintf(sub, sizeof(sub), "%s/s1", root);
    mkdir(sub, 0700);
    snprintf(sub, sizeof(sub), "%s/s1/sockets", root);
    mkdir(sub, 0700);
    snprintf(sub, sizeof(sub), "%s/s1/pids", root);
    mkdir(sub, 0700);

    /* Sockets: one listening, one whose listener closed. */
    int fds[2];
    const char *names[2] = {"root/s1/sockets/live.sock", "root/s1/sockets/dead.sock"};
    for (int i = 0; i < 2; i++) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        path_of(sa.sun_path, sizeof(sa.sun_path), names[i]);
        fds[i] = socket(AF_UNIX, SOCK_STREAM, 0);
        CU_ASSERT_EQUAL(bind(fds[i], (struct sockaddr *)&sa, sizeof(sa)), 0);
        CU_ASSERT_EQUAL(listen(fds[i], 4), 0);
    }
    close(fds[1]);

    /* Pid files: a live rayc process; a process that exited; a live process that is not
     * rayc's; a live rayc process started after its pid file was written (a recycled pid). */
    pid_t live = spawn_rayc_named();
    CU_ASSERT(rc_pid_is_rayc(live));
    pid_t gone = fork();
    if (gone == 0)
        _exit(0);
    waitpid(gone, NULL, 0);
    char text[32];
    snprintf(text, sizeof(text), "%d\n", (int)live);
    make_file("root/s1/pids/raylet.pid", text);
    make_file("root/s1/pids/recycled.pid", text);
    snprintf(text, sizeof(text), "%d\n", (int)gone);
    make_file("root/s1/pids/gcs_server.pid", text);
    snprintf(text, sizeof(text), "%d\n", (int)getpid());
    make_file("root/s1/pids/other.pid", text);
    char p[PATH_MAX];
    path_of(p, sizeof(p), "root/s1/pids/recycled.pid");
    struct timespec hour_ago[2] = {{time(NULL) - 3600, 0}, {time(NULL) - 3600, 0}};
    CU_ASSERT_EQUAL(utimensat(AT_FDCWD, p, hour_ago, 0), 0);
    CU_ASSERT(!rc_pid_file_alive(p));
    path_of(p, sizeof(p), "root/s1/pids/raylet.pid");
    CU_ASSERT(rc_pid_file_alive(p));

    seen s = {0};
    CU_ASSERT_EQUAL(rc_sweep_sessions(root, 1, on_stale, &s), 0); /* all young */
    sleep(RC_SWEEP_YOUNG_S + 1);
    memset(&s, 0, sizeof(s));
    CU_ASSERT_EQUAL(rc_sweep_sessions(root, 1, on_stale, &s), 4);
    CU_ASSERT(seen_has(&s, "root/s1/sockets/dead.sock", RC_STALE_SOCKET));
    CU_ASSERT(seen_has(&s, "root/s1/pids/gcs_server.pid", RC_STALE_PID_FILE));
    CU_ASSERT(seen_has(&s, "root/s1/pids/other.pid", RC_STALE_PID_FILE));
    CU_ASSERT(seen_has(&s, "root/s1/pids/recycled.pid", RC_STALE_PID_FILE));
    CU_ASSERT(exists("root/s1/sockets/live.sock"));
    CU_ASSERT(exists("root/s1/pids/raylet.pid"));
    CU_ASSERT(!exists("root/s1/sockets/dead.sock"));
    CU_ASSERT(!exists("root/s1/pids/gcs_server.pid"));

    /* The live ones go once their owners do. */
    close(fds[0]);
    kill(live, SIGKILL);
    waitpid(live, NULL, 0);
    CU_ASSERT_EQUAL(rc_sweep_sessions(root, 1, NULL, NULL), 2);
    CU_ASSERT(!exists("root/s1/sockets/live.sock"));
    CU_ASSERT(!exists("root/s1/pids/raylet.pid"));
}

static const unit_case cases[] = {
    UNIT_CASE(test_stores),
    UNIT_CASE(test_sessions),
};

int main(void)
{
    rc_config_init();
    snprintf(dir, sizeof(dir), "/tmp/rc-sweep-XXXXXX");
    if (!mkdtemp(dir))
        return 2;
    int rc = unit_run("rc_sweep", cases, UNIT_N(cases));
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
    return rc;
}
