/*
 * rpc fault injection: the draws behind the testing_rpc_* settings (config_def.h).
 *
 * Three tables, each "name=values,name=values" where name is "*", "Method",
 * "Service.Method" (the service's short or full name) or Ray's "Service.grpc_client.Method":
 *   testing_rpc_delay_us  name=min_us:max_us                      each direction of a call
 *   testing_rpc_failure   name=max_failures:req:resp[:in_flight]  percentages; UNAVAILABLE
 *   testing_rpc_drop      name=req:resp                           percentages; silence
 * A method's own entry wins over "*". The tables are parsed again whenever their text
 * changes (a raylet receives the GCS's configuration after it started), so a process pays
 * one comparison per call while they are empty.
 *
 * Draws come from one seeded generator per process (testing_rpc_seed, or a fresh seed that
 * is logged), under a mutex: every loop thread of a process may call.
 */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rc_alloc.h"
#include "rc_config.h"
#include "rc_log.h"
#include "rpc_int.h"

typedef struct rpc__fault_entry {
    char *name;
    double v[4];
    int n;
    int64_t remaining; /* failures: how many more may be injected (-1: unlimited) */
} rpc__fault_entry;

typedef struct rpc__fault_table {
    char *text; /* the setting this table was parsed from */
    rpc__fault_entry *e;
    size_t n;
} rpc__fault_table;

static uv_once_t rpc__fault_once = UV_ONCE_INIT;
static uv_mutex_t rpc__fault_mu;
static rpc__fault_table rpc__delay_t, rpc__failure_t, rpc__drop_t;
static uint64_t rpc__rng;
static int64_t rpc__seed_used = -1;
static rpc_fault_stats rpc__stats;

static void rpc__fault_init(void)
{
    uv_mutex_init(&rpc__fault_mu);
}

static void rpc__table_clear(rpc__fault_table *t)
{
    for (size_t i = 0; i < t->n; i++)
        rc_free(t->e[i].name);
    rc_free(t->e);
    rc_free(t->text);
    memset(t, 0, sizeof(*t));
}

/* Parses text into t: min_vals..max_vals numbers per entry. Bad entries are logged and
 * skipped; the others still apply. */
static void rpc__table_parse(rpc__fault_table *t, const char *setting, const char *text, int min_vals,
                             int max_vals)
{
    rpc__table_clear(t);
    t->text = rc_strdup(text);
    char *copy = rc_strdup(text);
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        while (*item == ' ')
            item++;
        char *eq = strchr(item, '=');
        if (!eq || eq == item) {
            RC_ERROR("rpc: %s: \"%s\" is not name=values; ignored", setting, item);
            continue;
        }
        *eq = '\0';
        rpc__fault_entry e = {0};
        const char *p = eq + 1;
        int ok = 1;
        while (ok && *p) {
            char *end;
            double d = strtod(p, &end);
            if (end == p || e.n == max_vals || d < -1 || (*end && *end != ':'))
                ok = 0;
            else
                e.v[e.n++] = d;
            p = *end ? end + 1 : end;
        }
        if (!ok || e.n < min_vals) {
            RC_ERROR("rpc: %s: the values of \"%s=%s\" are not %d to %d numbers separated by ':'; ignored",
                     setting, item, eq + 1, min_vals, max_vals);
            continue;
        }
        e.name = rc_strdup(item);
        e.remaining = (int64_t)e.v[0];
        t->e = rc_realloc(t->e, (t->n + 1) * sizeof(*t->e));
        t->e[t->n++] = e;
    }
    rc_free(copy);
}

/* 1 if entry name names method of service (full name "ray.rpc.NodeManagerService"). */
static int rpc__name_matches(const char *name, const char *service, size_t slen, const char *method)
{
    const char *dot = strrchr(name, '.');
    if (!dot)
        return strcmp(name, method) == 0;
    if (strcmp(dot + 1, method) != 0)
        return 0;
    size_t plen = (size_t)(dot - name);
    static const char ray_client[] = ".grpc_client";
    size_t rlen = sizeof(ray_client) - 1;
    if (plen > rlen && memcmp(name + plen - rlen, ray_client, rlen) == 0)
        plen -= rlen;
    if (plen == slen && memcmp(name, service, slen) == 0)
        return 1;
    const char *shortname = service + slen;
    while (shortname > service && shortname[-1] != '.')
        shortname--;
    return (size_t)(service + slen - shortname) == plen && memcmp(name, shortname, plen) == 0;
}

static rpc__fault_entry *rpc__table_find(rpc__fault_table *t, const char *service, size_t slen,
                                         const char *method)
{
    rpc__fault_entry *star = NULL;
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->e[i].name, "*") == 0)
            star = &t->e[i];
        else if (rpc__name_matches(t->e[i].name, service, slen, method))
            return &t->e[i];
    }
    return star;
}

static double rpc__uniform(void)
{
    /* splitmix64 */
    uint64_t z = (rpc__rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

/* The addresses of this host's interfaces, read once (fault mutex held). */
static char **rpc__local_addrs;
static size_t rpc__n_local_addrs;

static void rpc__read_local_addrs(void)
{
    struct ifaddrs *ifs = NULL;
    if (rpc__local_addrs || getifaddrs(&ifs) != 0)
        return;
    rpc__local_addrs = rc_calloc(1, sizeof(char *));
    for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
        if (!i->ifa_addr || (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6))
            continue;
        char text[INET6_ADDRSTRLEN];
        const void *a = i->ifa_addr->sa_family == AF_INET ? (const void *)&((struct sockaddr_in *)i->ifa_addr)->sin_addr
                                                          : (const void *)&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;
        if (!inet_ntop(i->ifa_addr->sa_family, a, text, sizeof(text)))
            continue;
        rpc__local_addrs = rc_realloc(rpc__local_addrs, (rpc__n_local_addrs + 1) * sizeof(char *));
        rpc__local_addrs[rpc__n_local_addrs++] = rc_strdup(text);
    }
    freeifaddrs(ifs);
}

/* 1 if target ("host:port", "[v6]:port", "unix:...") is on this host (fault mutex held). */
static int rpc__is_intra_node(const char *target)
{
    if (strncmp(target, "unix:", 5) == 0)
        return 1;
    if (strncmp(target, "ipv4:", 5) == 0 || strncmp(target, "ipv6:", 5) == 0)
        target += 5;
    char host[INET6_ADDRSTRLEN + 2];
    const char *end = target[0] == '[' ? strchr(target, ']') : strrchr(target, ':');
    size_t len = end ? (size_t)(end - target) : strlen(target);
    if (target[0] == '[')
        target++, len--;
    if (len >= sizeof(host))
        return 0;
    memcpy(host, target, len);
    host[len] = '\0';
    if (strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0)
        return 1;
    rpc__read_local_addrs();
    for (size_t i = 0; i < rpc__n_local_addrs; i++)
        if (strcmp(rpc__local_addrs[i], host) == 0)
            return 1;
    return 0;
}

static void rpc__fault_refresh(void)
{
    if (!rpc__delay_t.text || strcmp(rpc__delay_t.text, rc_cfg.testing_rpc_delay_us) != 0)
        rpc__table_parse(&rpc__delay_t, "testing_rpc_delay_us", rc_cfg.testing_rpc_delay_us, 2, 2);
    if (!rpc__failure_t.text || strcmp(rpc__failure_t.text, rc_cfg.testing_rpc_failure) != 0)
        rpc__table_parse(&rpc__failure_t, "testing_rpc_failure", rc_cfg.testing_rpc_failure, 3, 4);
    if (!rpc__drop_t.text || strcmp(rpc__drop_t.text, rc_cfg.testing_rpc_drop) != 0)
        rpc__table_parse(&rpc__drop_t, "testing_rpc_drop", rc_cfg.testing_rpc_drop, 2, 2);
    if (rpc__seed_used != rc_cfg.testing_rpc_seed) {
        uint64_t seed = (uint64_t)rc_cfg.testing_rpc_seed;
        if (!seed) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            seed = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 40);
        }
        rpc__rng = seed;
        rpc__seed_used = rc_cfg.testing_rpc_seed;
        RC_INFO("rpc: fault injection on (delay \"%s\", failure \"%s\", drop \"%s\"), seed %llu",
                rc_cfg.testing_rpc_delay_us, rc_cfg.testing_rpc_failure, rc_cfg.testing_rpc_drop,
                (unsigned long long)seed);
    }
}

int rpc__fault_draw(const char *path, const char *target, rpc__fault *out)
{
    memset(out, 0, sizeof(*out));
    if (!rc_cfg.testing_rpc_delay_us[0] && !rc_cfg.testing_rpc_failure[0] && !rc_cfg.testing_rpc_drop[0])
        return 0;
    /* path: "/ray.rpc.NodeManagerService/RequestWorkerLease" */
    const char *service = path + 1;
    const char *slash = strchr(service, '/');
    if (path[0] != '/' || !slash)
        return 0;
    size_t slen = (size_t)(slash - service);
    const char *method = slash + 1;

    uv_once(&rpc__fault_once, rpc__fault_init);
    uv_mutex_lock(&rpc__fault_mu);
    if (rc_cfg.testing_rpc_failure_avoid_intra_node_failures && rpc__is_intra_node(target)) {
        uv_mutex_unlock(&rpc__fault_mu);
        return 0;
    }
    rpc__fault_refresh();
    rpc__fault_entry *e = rpc__table_find(&rpc__delay_t, service, slen, method);
    if (e) {
        double lo = e->v[0] < 0 ? 0 : e->v[0], hi = e->v[1] < lo ? lo : e->v[1];
        out->req_delay_us = (int64_t)(lo + (hi - lo) * rpc__uniform());
        out->resp_delay_us = (int64_t)(lo + (hi - lo) * rpc__uniform());
        if (out->req_delay_us || out->resp_delay_us)
            rpc__stats.delayed++;
    }
    e = rpc__table_find(&rpc__failure_t, service, slen, method);
    if (e && e->remaining != 0) {
        double r = 100.0 * rpc__uniform();
        double req = e->v[1], resp = e->v[2], in_flight = e->n > 3 ? e->v[3] : 0;
        if (r < req)
            out->kind = RPC__FAULT_FAIL_REQUEST, rpc__stats.failed_request++;
        else if (r < req + resp)
            out->kind = RPC__FAULT_FAIL_RESPONSE, rpc__stats.failed_response++;
        else if (r < req + resp + in_flight)
            out->kind = RPC__FAULT_FAIL_IN_FLIGHT, rpc__stats.failed_in_flight++;
        if (out->kind && e->remaining > 0)
            e->remaining--;
    }
    e = out->kind ? NULL : rpc__table_find(&rpc__drop_t, service, slen, method);
    if (e) {
        double r = 100.0 * rpc__uniform();
        if (r < e->v[0])
            out->kind = RPC__FAULT_DROP_REQUEST, rpc__stats.dropped_request++;
        else if (r < e->v[0] + e->v[1])
            out->kind = RPC__FAULT_DROP_RESPONSE, rpc__stats.dropped_response++;
    }
    uv_mutex_unlock(&rpc__fault_mu);
    static const char *what[] = {"", "request failure", "reply failure", "in-flight failure", "request drop",
                                 "reply drop"};
    if (out->kind)
        RC_INFO("rpc: injecting a %s into %s to %s", what[out->kind], path, target);
    return out->kind || out->req_delay_us || out->resp_delay_us;
}

void rpc_fault_stats_get(rpc_fault_stats *out)
{
    uv_once(&rpc__fault_once, rpc__fault_init);
    uv_mutex_lock(&rpc__fault_mu);
    *out = rpc__stats;
    uv_mutex_unlock(&rpc__fault_mu);
}
