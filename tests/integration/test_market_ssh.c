/*
 * The market's ssh provider against a real sshd on loopback: the test starts its own sshd
 * (a free port on 127.0.0.1, a temporary host key, an authorized_keys holding a fresh key
 * pair) and a secure cluster (GCS only), then drives the provider as rayc-market does:
 * offers, launch with a lease id and a single-use join token, poll and list until the remote
 * `rayc start` has finished, terminate. "127.0.0.2" plays a host where nothing listens.
 *
 * The remote rayc is this build's (the provider's default: the directory of the running
 * program, which holds rayc beside the tests). Skipped, with a line saying so, when
 * /usr/sbin/sshd is not installed (Debian package openssh-server, scripts/install-deps.sh).
 */
#include <errno.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster.h"
#include "gcs_client.h"
#include "gcs_service.pb-c.h"
#include "market_provider.h"
#include "rc_alloc.h"
#include "rc_err.h"
#include "rc_ids.h"
#include "rc_session.h"
#include "rc_time.h"
#include "rpc.h"
#include "unit.h"

#define SSHD "/usr/sbin/sshd"
#define LEASE_LABEL "rayc.io/market-lease"
#define REMOTE_ROOT "/tmp/rayc-market" /* where the provider puts each lease's session root */

typedef struct fixture {
    int up, failed;
    char dir[64];
    int port;
    pid_t sshd;
    harness_cluster cluster;
    uv_loop_t loop;
    rpc_ctx *rpc;
    gcs_client *gcs;
    char user[64];
    char options[256];
    char keys[4][64]; /* lease ids used, for the safety net at the end */
    int n_keys;
} fixture;

static fixture F;

/* ---- sshd ---------------------------------------------------------------------------------- */

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static int port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

static int run_sh(const char *cmd)
{
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* sshd on a free loopback port, allowing this user in with the key pair <dir>/id. */
static int sshd_start(void)
{
    char cmd[1024], path[256], conf[2048];
    snprintf(cmd, sizeof(cmd),
             "ssh-keygen -q -t ed25519 -N '' -f %s/host_key && ssh-keygen -q -t ed25519 -N '' -f %s/id && "
             "cp %s/id.pub %s/authorized_keys",
             F.dir, F.dir, F.dir, F.dir);
    if (run_sh(cmd) != 0) {
        fprintf(stderr, "cannot make ssh keys with ssh-keygen\n");
        return -1;
    }
    /* sshd run by root wants its privilege separation directory (the package's service
     * makes it at boot). */
    if (geteuid() == 0)
        mkdir("/run/sshd", 0755);
    snprintf(conf, sizeof(conf),
             "HostKey %s/host_key\n"
             "ListenAddress 127.0.0.1\n"
             "AuthorizedKeysFile %s/authorized_keys\n"
             "PidFile %s/sshd.pid\n"
             "UsePAM no\n"
             "PasswordAuthentication no\n"
             "KbdInteractiveAuthentication no\n"
             "PubkeyAuthentication yes\n"
             "PermitRootLogin prohibit-password\n"
             "StrictModes no\n"
             "LogLevel VERBOSE\n",
             F.dir, F.dir, F.dir);
    snprintf(path, sizeof(path), "%s/sshd_config", F.dir);
    if (write_text(path, conf) < 0)
        return -1;
    F.port = free_port();
    char port[16], log[256];
    snprintf(port, sizeof(port), "%d", F.port);
    snprintf(log, sizeof(log), "%s/sshd.log", F.dir);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execl(SSHD, SSHD, "-D", "-f", path, "-p", port, "-E", log, (char *)NULL);
        _exit(127);
    }
    F.sshd = pid;
    for (int i = 0; i < 200; i++) {
        if (port_open(F.port))
            return 0;
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            F.sshd = 0;
            break;
        }
        rc_sleep_ms(50);
    }
    snprintf(cmd, sizeof(cmd), "cat %s >&2", log);
    fprintf(stderr, "sshd did not start; its log:\n");
    run_sh(cmd);
    return -1;
}

/* ---- the fixture --------------------------------------------------------------------------- */

static int fixture_up(void)
{
    if (F.up || F.failed)
        return F.up;
    F.failed = 1;
    snprintf(F.dir, sizeof(F.dir), "/tmp/rayc-test-ssh-XXXXXX");
    if (!mkdtemp(F.dir))
        return 0;
    struct passwd *pw = getpwuid(getuid());
    if (!pw)
        return 0;
    snprintf(F.user, sizeof(F.user), "%s", pw->pw_name);
    if (sshd_start() < 0)
        return 0;
    snprintf(F.options, sizeof(F.options),
             "-p %d -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR", F.port);
    if (harness_cluster_init(&F.cluster, 0) < 0 || harness_gcs_start(&F.cluster) < 0)
        return 0;
    uv_loop_init(&F.loop);
    rpc_ctx_create(&F.loop, &F.rpc);
    gcs_client_create(F.rpc, F.cluster.gcs_address, &F.gcs);
    char err[300];
    if (gcs_client_connect_sync(F.gcs, 10000, err, sizeof(err)) < 0) {
        fprintf(stderr, "cannot reach the GCS: %s\n", err);
        return 0;
    }
    /* What the hosts offer: a GPU box pinned to the sshd's address, a CPU box anywhere, and
     * one pinned to an address where nothing listens. */
    static const char offers[] =
        "[{\"id\": \"lab-t4\", \"num_cpus\": 3, \"memory\": 2, \"num_gpus\": 2, \"gpu_name\": \"T4\",\n"
        "  \"gpu_memory\": 16, \"price_per_hour\": 0.5, \"host\": \"127.0.0.1\", \"labels\": {\"rack\": \"r7\"}},\n"
        " {\"id\": \"lab-cpu\", \"num_cpus\": 1, \"price_per_hour\": 0.1, \"available\": 5},\n"
        " {\"id\": \"lab-gone\", \"num_cpus\": 1, \"price_per_hour\": 0.1, \"host\": \"127.0.0.2\"}]\n";
    char path[128];
    snprintf(path, sizeof(path), "%s/ssh-offers.json", F.dir);
    if (write_text(path, offers) < 0)
        return 0;
    snprintf(path, sizeof(path), "%s/state", F.dir);
    mkdir(path, 0700);
    F.up = 1;
    F.failed = 0;
    return 1;
}

static void fixture_down(void)
{
    char cmd[PATH_MAX + 1024];
    /* The remote sessions are on this machine: whatever a failed test left is stopped. */
    for (int i = 0; i < F.n_keys; i++) {
        snprintf(cmd, sizeof(cmd), "env RAYC_SESSION_ROOT=%s/%s '%s/rayc' stop --force >/dev/null 2>&1; rm -rf %s/%s",
                 REMOTE_ROOT, F.keys[i], F.cluster.bin, REMOTE_ROOT, F.keys[i]);
        run_sh(cmd);
    }
    if (F.gcs) {
        gcs_client_destroy(F.gcs);
        rpc_ctx_destroy(F.rpc);
        uv_run(&F.loop, UV_RUN_DEFAULT);
        uv_loop_close(&F.loop);
    }
    if (F.cluster.gcs_pid || F.cluster.root[0])
        harness_cluster_destroy(&F.cluster);
    if (F.sshd > 0) {
        kill(F.sshd, SIGTERM);
        waitpid(F.sshd, NULL, 0);
    }
    if (F.dir[0] && strncmp(F.dir, "/tmp/rayc-test-ssh-", 19) == 0) {
        snprintf(cmd, sizeof(cmd), "rm -rf %s", F.dir);
        run_sh(cmd);
    }
}

static const char *lease_key(const char *name)
{
    snprintf(F.keys[F.n_keys], sizeof(F.keys[0]), "lease-%s-%d", name, (int)getpid());
    return F.keys[F.n_keys++];
}

static mk_provider_config ssh_config(char **hosts, size_t n_hosts)
{
    mk_provider_config cfg = {0};
    cfg.name = "lab-ssh";
    cfg.type = "ssh";
    cfg.offers = "ssh-offers.json";
    cfg.ssh_user = F.user;
    static char key[128];
    snprintf(key, sizeof(key), "%s/id", F.dir);
    cfg.ssh_key = key;
    cfg.ssh_options = F.options;
    cfg.ssh_hosts = hosts;
    cfg.n_ssh_hosts = n_hosts;
    return cfg;
}

static mk_provider *provider_open(void)
{
    static char h1[] = "127.0.0.1", h2[] = "127.0.0.2";
    static char *hosts[] = {h1, h2};
    mk_provider_config cfg = ssh_config(hosts, 2);
    char state[128], err[512] = "";
    snprintf(state, sizeof(state), "%s/state", F.dir);
    mk_provider *p = NULL;
    int rc = mk_provider_ssh_create(&cfg, F.dir, state, &p, err, sizeof(err));
    if (rc < 0)
        fprintf(stderr, "mk_provider_ssh_create: %s\n", err);
    return p;
}

static const mk_offer *find_offer(mk_provider *p, const char *id)
{
    const mk_offer *offers;
    size_t n;
    int changed;
    char err[512];
    if (p->ops->offers(p, &offers, &n, &changed, err, sizeof(err)) < 0)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(offers[i].id, id))
            return &offers[i];
    return NULL;
}

/* The provider's instance under key (0), or -1 if it does not list it. */
static int find_instance(mk_provider *p, const char *key, mk_instance *out)
{
    mk_instance *v = NULL;
    size_t n = 0;
    char err[512];
    if (p->ops->list(p, &v, &n, err, sizeof(err)) < 0)
        return -2;
    int found = -1;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v[i].key, key)) {
            *out = v[i];
            found = 0;
        }
    rc_free(v);
    return found;
}

/* Polls the provider until key's instance leaves PENDING (or timeout); its last listing in out. */
static int wait_settled(mk_provider *p, const char *key, mk_instance *out, int64_t timeout_ms)
{
    int64_t deadline = rc_mono_ms() + timeout_ms;
    while (rc_mono_ms() < deadline) {
        p->ops->poll(p, rc_wall_ms());
        if (find_instance(p, key, out) == 0 && out->state != MK_INST_PENDING)
            return 0;
        rc_sleep_ms(100);
    }
    return -1;
}

/* Polls the provider until it has forgotten key (its stop ended). */
static int wait_forgotten(mk_provider *p, const char *key, int64_t timeout_ms)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/state/lab-ssh/%s.host", F.dir, key);
    int64_t deadline = rc_mono_ms() + timeout_ms;
    while (rc_mono_ms() < deadline) {
        p->ops->poll(p, rc_wall_ms());
        if (access(path, F_OK) != 0)
            return 0;
        rc_sleep_ms(100);
    }
    return -1;
}

static double map_number(Ray__Rpc__GcsNodeInfo__ResourcesTotalEntry **e, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(e[i]->key, key))
            return e[i]->value;
    return -1;
}

static const char *node_label(const Ray__Rpc__GcsNodeInfo *node, const char *key)
{
    for (size_t i = 0; i < node->n_labels; i++)
        if (!strcmp(node->labels[i]->key, key))
            return node->labels[i]->value;
    return NULL;
}

/* The nodes carrying lease label key: how many are alive and dead; the alive one's info is
 * copied out through check (called with it) when given. */
static int lease_nodes(const char *key, int *alive, int *dead, void (*check)(const Ray__Rpc__GcsNodeInfo *))
{
    Ray__Rpc__GetAllNodeInfoRequest req = RAY__RPC__GET_ALL_NODE_INFO_REQUEST__INIT;
    ProtobufCMessage *reply;
    if (rpc_client_call_sync(gcs_client_rpc(F.gcs), &ray__rpc__node_info_gcs_service__descriptor, "GetAllNodeInfo",
                             &req.base, 5000, &reply, NULL, 0) != GRPC_STATUS_OK)
        return -1;
    Ray__Rpc__GetAllNodeInfoReply *r = (void *)reply;
    *alive = *dead = 0;
    for (size_t i = 0; i < r->n_node_info_list; i++) {
        const Ray__Rpc__GcsNodeInfo *node = r->node_info_list[i];
        const char *v = node_label(node, LEASE_LABEL);
        if (!v || strcmp(v, key))
            continue;
        if (node->state == RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__ALIVE) {
            (*alive)++;
            if (check)
                check(node);
        } else {
            (*dead)++;
        }
    }
    rpc_msg_free(reply);
    return 0;
}

static void check_t4_node(const Ray__Rpc__GcsNodeInfo *node)
{
    CU_ASSERT_EQUAL(map_number(node->resources_total, node->n_resources_total, "CPU"), 3);
    CU_ASSERT_EQUAL(map_number(node->resources_total, node->n_resources_total, "GPU"), 2);
    CU_ASSERT_EQUAL(map_number(node->resources_total, node->n_resources_total, "memory"), 2.0 * 1024 * 1024 * 1024);
    CU_ASSERT_EQUAL(map_number(node->resources_total, node->n_resources_total, "accelerator_type:T4"), 1);
    const char *v = node_label(node, "rack");
    CU_ASSERT(v && !strcmp(v, "r7"));
    v = node_label(node, "ray.io/accelerator-type");
    CU_ASSERT(v && !strcmp(v, "T4"));
    v = node_label(node, "rayc.io/gpu-memory");
    CU_ASSERT(v && !strcmp(v, "17179869184"));
    CU_ASSERT(node->node_name && !strcmp(node->node_name, "lab-ssh/lab-t4"));
}

/* The pid of the raylet in key's remote session (on this machine), or 0. */
static pid_t remote_raylet_pid(const char *key)
{
    char path[256], text[32] = "";
    snprintf(path, sizeof(path), "%s/%s/session_latest/pids/raylet.pid", REMOTE_ROOT, key);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    if (!fgets(text, sizeof(text), f))
        text[0] = '\0';
    fclose(f);
    return (pid_t)atoi(text);
}


static void join_for(const char *key, mk_join *join, char *token, size_t toklen)
{
    char labels[128];
    snprintf(labels, sizeof(labels), LEASE_LABEL "=%s", key);
    CU_ASSERT_EQUAL(harness_join_token(&F.cluster, 120, 1, labels, token, toklen), 0);
    static char ca_file[PATH_MAX + 16];
    snprintf(ca_file, sizeof(ca_file), "%s/ca.crt", F.cluster.root);
    memset(join, 0, sizeof(*join));
    join->gcs_address = F.cluster.gcs_address;
    join->join_token = token;
    join->ca_cert_file = ca_file;
    join->ca_cert_pem = F.cluster.ca_cert;
    join->lease_id = key;
}

#define NEED_SSHD()                                                                                         \
    do {                                                                                                    \
        if (access(SSHD, X_OK) != 0) {                                                                      \
            fprintf(stderr, "\n  SKIP: %s is not installed (Debian package openssh-server; "                \
                            "scripts/install-deps.sh installs it)\n",                                       \
                    SSHD);                                                                                  \
            return;                                                                                         \
        }                                                                                                   \
        CU_ASSERT_FATAL(fixture_up());                                                                      \
    } while (0)

/* ---- the cases ----------------------------------------------------------------------------- */

static void test_offers_pin_hosts_and_cap_available(void)
{
    NEED_SSHD();
    mk_provider *p = provider_open();
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_STRING_EQUAL(p->type, "ssh");
    const mk_offer *offers;
    size_t n;
    int changed = 0;
    char err[512];
    CU_ASSERT_EQUAL_FATAL(p->ops->offers(p, &offers, &n, &changed, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(n, 3);
    CU_ASSERT_EQUAL(changed, 1);
    CU_ASSERT_EQUAL(p->ops->offers(p, &offers, &n, &changed, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(changed, 0);
    const mk_offer *t4 = find_offer(p, "lab-t4"), *cpu = find_offer(p, "lab-cpu");
    CU_ASSERT_FATAL(t4 && cpu);
    CU_ASSERT_STRING_EQUAL(t4->host, "127.0.0.1");
    CU_ASSERT_EQUAL(t4->available, 1);
    CU_ASSERT_PTR_NULL(cpu->host);
    CU_ASSERT_EQUAL(cpu->available, 2); /* 5 claimed, 2 hosts */
    p->ops->destroy(p);
}

static void test_launch_join_and_terminate(void)
{
    NEED_SSHD();
    mk_provider *p = provider_open();
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    const mk_offer *t4 = find_offer(p, "lab-t4");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t4);
    const char *key = lease_key("t4");
    char token[256], err[512] = "";
    mk_join join;
    join_for(key, &join, token, sizeof(token));
    int64_t launched = rc_wall_ms();
    CU_ASSERT_EQUAL_FATAL(p->ops->launch(p, t4, &join, launched, err, sizeof(err)), 0);

    /* Nothing reaped yet: the host is being set up. */
    mk_instance inst;
    CU_ASSERT_EQUAL_FATAL(find_instance(p, key, &inst), 0);
    CU_ASSERT_EQUAL(inst.state, MK_INST_PENDING);
    CU_ASSERT_STRING_EQUAL(inst.offer_id, "lab-t4");
    CU_ASSERT_EQUAL(inst.launched_ms, launched);

    /* Its host is taken: another lease of the pinned offer is refused. */
    const char *other = lease_key("t4-second");
    mk_join join2;
    char token2[256];
    join_for(other, &join2, token2, sizeof(token2));
    CU_ASSERT_EQUAL(p->ops->launch(p, t4, &join2, rc_wall_ms(), err, sizeof(err)), RC_EBUSY);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "launch refused"));
    CU_ASSERT_EQUAL(find_instance(p, other, &inst), -1);

    CU_ASSERT_EQUAL_FATAL(wait_settled(p, key, &inst, 60000), 0);
    if (inst.state != MK_INST_RUNNING)
        fprintf(stderr, "\n  rayc start failed: %s\n", inst.error);
    CU_ASSERT_EQUAL_FATAL(inst.state, MK_INST_RUNNING);
    CU_ASSERT_STRING_EQUAL(inst.error, "");

    /* The node joined with the lease's token (its label) and the offer's resources. */
    int alive = 0, dead = 0;
    CU_ASSERT_EQUAL(lease_nodes(key, &alive, &dead, check_t4_node), 0);
    CU_ASSERT_EQUAL(alive, 1);
    CU_ASSERT_EQUAL(dead, 0);
    pid_t raylet = remote_raylet_pid(key);
    CU_ASSERT(raylet > 0 && rc_pid_running(raylet));

    /* The same key again starts nothing: still RUNNING (a new start would be PENDING). */
    char token3[256];
    mk_join again;
    join_for(key, &again, token3, sizeof(token3));
    CU_ASSERT_EQUAL(p->ops->launch(p, t4, &again, rc_wall_ms(), err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(find_instance(p, key, &inst), 0);
    CU_ASSERT_EQUAL(inst.state, MK_INST_RUNNING);
    CU_ASSERT_EQUAL(inst.launched_ms, launched);
    rc_sleep_ms(500);
    p->ops->poll(p, rc_wall_ms());
    CU_ASSERT_EQUAL(find_instance(p, key, &inst), 0);
    CU_ASSERT_EQUAL(inst.state, MK_INST_RUNNING);
    CU_ASSERT_EQUAL(lease_nodes(key, &alive, &dead, NULL), 0);
    CU_ASSERT_EQUAL(alive, 1);

    /* A restarted market finds it by listing. */
    p->ops->destroy(p);
    p = provider_open();
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(find_instance(p, key, &inst), 0);
    CU_ASSERT_EQUAL(inst.state, MK_INST_RUNNING);

    /* terminate: no longer listed at once; the stop runs over ssh; the node leaves. */
    CU_ASSERT_EQUAL(p->ops->terminate(p, key, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(find_instance(p, key, &inst), -1);
    CU_ASSERT_EQUAL(wait_forgotten(p, key, 60000), 0);
    int64_t deadline = rc_mono_ms() + 30000;
    while (rc_mono_ms() < deadline && lease_nodes(key, &alive, &dead, NULL) == 0 && alive)
        rc_sleep_ms(100);
    CU_ASSERT_EQUAL(alive, 0);
    CU_ASSERT_EQUAL(dead, 1);
    /* The raylet exits after it leaves the cluster (freeing a pre-faulted store takes a while). */
    while (rc_mono_ms() < deadline && raylet > 0 && rc_pid_running(raylet))
        rc_sleep_ms(100);
    CU_ASSERT(raylet > 0 && !rc_pid_running(raylet));
    char root[256];
    snprintf(root, sizeof(root), "%s/%s", REMOTE_ROOT, key);
    CU_ASSERT_NOT_EQUAL(access(root, F_OK), 0); /* the lease's session root is gone */
    /* terminating twice is fine */
    CU_ASSERT_EQUAL(p->ops->terminate(p, key, err, sizeof(err)), 0);
    p->ops->destroy(p);
}

static void test_unreachable_host_fails_with_ssh_error(void)
{
    NEED_SSHD();
    mk_provider *p = provider_open();
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    const mk_offer *gone = find_offer(p, "lab-gone");
    CU_ASSERT_PTR_NOT_NULL_FATAL(gone);
    const char *key = lease_key("gone");
    char token[256], err[512] = "";
    mk_join join;
    join_for(key, &join, token, sizeof(token));
    CU_ASSERT_EQUAL_FATAL(p->ops->launch(p, gone, &join, rc_wall_ms(), err, sizeof(err)), 0);
    mk_instance inst;
    CU_ASSERT_EQUAL_FATAL(wait_settled(p, key, &inst, 60000), 0);
    CU_ASSERT_EQUAL(inst.state, MK_INST_FAILED);
    fprintf(stderr, "\n  error: %s\n", inst.error);
    CU_ASSERT_PTR_NOT_NULL(strstr(inst.error, "127.0.0.2"));
    CU_ASSERT_PTR_NOT_NULL(strstr(inst.error, "Connection refused")); /* ssh's own words */
    /* Failed hosts stay listed until the market terminates them; the stop cannot reach
     * the host either, and the record is forgotten after that one try. */
    CU_ASSERT_EQUAL(p->ops->terminate(p, key, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(wait_forgotten(p, key, 60000), 0);
    CU_ASSERT_EQUAL(find_instance(p, key, &inst), -1);
    p->ops->destroy(p);
}

static void test_bad_config_and_keys_are_refused(void)
{
    NEED_SSHD();
    char state[128], err[512] = "";
    snprintf(state, sizeof(state), "%s/state", F.dir);
    mk_provider *p = NULL;
    static char bad_host[] = "-oProxyCommand=touch /tmp/x";
    char *hosts[] = {bad_host};
    mk_provider_config cfg = ssh_config(hosts, 1);
    CU_ASSERT_EQUAL(mk_provider_ssh_create(&cfg, F.dir, state, &p, err, sizeof(err)), RC_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "host"));
    cfg = ssh_config(hosts, 0);
    CU_ASSERT_EQUAL(mk_provider_ssh_create(&cfg, F.dir, state, &p, err, sizeof(err)), RC_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "\"hosts\""));

    /* An offer pinned to a host the provider does not have, or one that misbehaves. */
    static char h1[] = "127.0.0.1";
    char *one[] = {h1};
    cfg = ssh_config(one, 1);
    cfg.offers = "bad-offers.json";
    char path[128];
    snprintf(path, sizeof(path), "%s/bad-offers.json", F.dir);
    CU_ASSERT_EQUAL_FATAL(write_text(path, "[{\"id\": \"x\", \"num_cpus\": 1, \"price_per_hour\": 1, "
                                           "\"host\": \"10.9.9.9\"}]"),
                          0);
    CU_ASSERT_EQUAL_FATAL(mk_provider_ssh_create(&cfg, F.dir, state, &p, err, sizeof(err)), 0);
    const mk_offer *offers;
    size_t n;
    int changed;
    CU_ASSERT(p->ops->offers(p, &offers, &n, &changed, err, sizeof(err)) < 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "10.9.9.9"));
    p->ops->destroy(p);
    CU_ASSERT_EQUAL_FATAL(write_text(path, "[{\"id\": \"x\", \"num_cpus\": 1, \"price_per_hour\": 1, "
                                           "\"behaviour\": \"fake_gpu\"}]"),
                          0);
    CU_ASSERT_EQUAL_FATAL(mk_provider_ssh_create(&cfg, F.dir, state, &p, err, sizeof(err)), 0);
    CU_ASSERT(p->ops->offers(p, &offers, &n, &changed, err, sizeof(err)) < 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "behaviour"));
    p->ops->destroy(p);

    /* A lease id that would escape the state directory or the remote root. */
    p = provider_open();
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    const mk_offer *cpu = find_offer(p, "lab-cpu");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cpu);
    mk_join join = {.gcs_address = F.cluster.gcs_address, .join_token = "t", .ca_cert_pem = F.cluster.ca_cert,
                    .lease_id = "../../etc/x"};
    CU_ASSERT_EQUAL(p->ops->launch(p, cpu, &join, rc_wall_ms(), err, sizeof(err)), RC_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "lease id"));
    join.lease_id = "x; rm -rf /";
    CU_ASSERT_EQUAL(p->ops->launch(p, cpu, &join, rc_wall_ms(), err, sizeof(err)), RC_EINVAL);
    mk_instance *v = NULL;
    CU_ASSERT_EQUAL(p->ops->list(p, &v, &n, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(n, 0);
    rc_free(v);
    CU_ASSERT_EQUAL(p->ops->terminate(p, "../nothing", err, sizeof(err)), 0);
    p->ops->destroy(p);
}

static const unit_case cases[] = {
    UNIT_CASE(test_offers_pin_hosts_and_cap_available),
    UNIT_CASE(test_launch_join_and_terminate),
    UNIT_CASE(test_unreachable_host_fails_with_ssh_error),
    UNIT_CASE(test_bad_config_and_keys_are_refused),
};

int main(void)
{
    int rc = unit_run("market_ssh", cases, UNIT_N(cases));
    fixture_down();
    return rc;
}
