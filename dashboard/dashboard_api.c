/*
 * dashboard_api: the web dashboard's files and JSON endpoints (see dashboard_api.h).
 *
 * The poller keeps the GCS's latest answer to each question (a reply message) and renders
 * JSON from it when a page asks. One round at a time: the next starts on the timer once
 * every call of the last has ended, so a slow GCS is asked no faster than it answers.
 *
 * Another node's logs are read when asked, through its raylet (Ray's LogService.ListLogs,
 * rayc.rpc.LogReadService.ReadLog) with the admin token over the cluster's TLS: the answer
 * is deferred (http_response_defer) until the raylet replies. One channel per node, kept
 * while the node is alive.
 *
 * The admin token: the one in the head's session (auth_token), which the GCS rewrites when
 * the admin replaces it (`rayc get-auth-token --generate`). The file is looked at (stat)
 * at every poll round and every request, and read again when it changed or when a call is
 * refused as unauthenticated; a new token goes into the process's security (channels made
 * later) and the bearer metadata of the channels already open, and the HTTP side answers
 * only that token from then on (dash_api_revoked).
 */
#include "dashboard_api.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "gcs_client_auth.h"
#include "rayc_logs.pb-c.h"
#include "rc_alloc.h"
#include "rc_buf.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_ids.h"
#include "rc_json.h"
#include "rc_log.h"
#include "rc_time.h"
#include "reporter.pb-c.h"
#include "task_events.pb-c.h"

/* Headers of every answer: JSON and text are never sniffed into something else, never
 * cached; the UI's files may be cached but are revalidated, and run only the UI's own
 * scripts (no inline script, nothing from elsewhere). */
#define DASH__API_HEADERS                                                                                   \
    "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n"
#define DASH__UI_HEADERS                                                                                    \
    "Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n"      \
    "X-Frame-Options: DENY\r\n"                                                                             \
    "Content-Security-Policy: default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " \
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'\r\n"

enum {
    DASH__MAX_FILE = 8 << 20,      /* largest UI file served */
    DASH__LOG_TAIL = 256 << 10,    /* bytes of a log file's end that /api/logs returns */
    DASH__CALL_MS = 10000,
    DASH__LOG_CALL_MS = 4000,  /* a raylet's log call; twice this stays under the HTTP timeout */
    DASH__TASK_LIMIT = 10000,  /* newest task attempts the poller asks the GCS for */
    DASH__TASK_RECENT = 50,    /* newest of them /api/tasks/summary lists one by one */
    DASH__TASK_STATES = 16,    /* TaskStatus values counted (NIL .. GETTING_AND_PINNING_ARGS) */
};

/* One sample of the cluster's use. */
typedef struct dash__sample {
    int64_t t_ms;
    double cpu_used, cpu_total, gpu_used, gpu_total, mem_used, mem_total;
    double running, queued; /* granted leases (tasks and actors running) and queued requests */
    int nodes_alive;
    double granted_total, granted_per_s; /* the raylets' rayc_leases_granted_total: sum, rate */
} dash__sample;

/* One scrape of the raylets' metrics endpoints, off the loop (uv_queue_work): the work
 * touches only this struct. */
typedef struct dash__scrape {
    uv_work_t work;
    struct dash_api *a;
    char *token;
    char *ca_file; /* the cluster CA the raylets' HTTPS certificates chain to; NULL: insecure */
    size_t n;
    char **urls;
    uint8_t (*ids)[RC_ID_MAX_SIZE];
    double *granted; /* per node; < 0: no answer */
} dash__scrape;

/* Why a pending placement group waits, as GetPlacementGroup's status says. */
typedef struct dash__why {
    uint8_t id[32];
    size_t id_len;
    char *text;
} dash__why;

enum { Q_NODES, Q_USAGE, Q_ACTORS, Q_PGS, Q_JOBS, Q_MARKET, Q_TASKS, Q_COUNT };

struct dash_api {
    uv_loop_t *loop;
    rpc_ctx *rpc;
    gcs_client *gcs;
    char *session;
    char ui_dir[PATH_MAX];
    uv_timer_t timer;
    int in_flight, stopping, timer_closed;
    ProtobufCMessage *latest[Q_COUNT];
    int64_t latest_ms[Q_COUNT];
    char last_error[256];
    int64_t last_error_ms;
    dash__why *whys;
    size_t n_whys;
    dash__sample *ring;
    size_t ring_cap, ring_len, ring_head; /* head: where the next sample goes */
    /* Lease grants: each node's last counter, the cluster's sum and rate. */
    int scraping;
    size_t n_granted;
    uint8_t (*granted_ids)[RC_ID_MAX_SIZE];
    double *granted, *granted_ms;
    double granted_total, granted_per_s;
    int repoll; /* a call was refused for a token since replaced: poll again at once */
    /* Channels to the raylets, for their logs; calls in flight. */
    struct dash__raylet *raylets;
    size_t n_raylets;
    int log_calls;
    /* The admin token (see the file comment); token_path NULL on an insecure cluster. */
    char *token_path, *token;
    char token_id[AUTH_TOKEN_ID_HEX + 1];
    struct stat token_st;
    auth_verifier *verifier;
    char refusal[256];
};

typedef struct dash__raylet {
    char id_hex[RC_ID_HEX_MAX];
    char address[300];
    rpc_client *cli;
} dash__raylet;

/* protobuf-c's map<string, double> entries all look like this. */
typedef struct dash__kvd {
    ProtobufCMessage base;
    char *key;
    double value;
} dash__kvd;

typedef struct dash__kvs {
    ProtobufCMessage base;
    char *key;
    char *value;
} dash__kvs;

static double dash__get(void *entries, size_t n, const char *key)
{
    dash__kvd **e = entries;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(e[i]->key, key))
            return e[i]->value;
    return 0;
}

static const char *dash__label(void *entries, size_t n, const char *key)
{
    dash__kvs **e = entries;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(e[i]->key, key))
            return e[i]->value;
    return NULL;
}

static void dash__json_str(rc_buf *b, const char *s)
{
    rc_buf_json_str(b, s ? s : "", s ? strlen(s) : 0);
}

static void dash__json_hex(rc_buf *b, const ProtobufCBinaryData *id)
{
    char hex[RC_ID_HEX_MAX];
    rc_buf_printf(b, "\"%s\"", id->len ? rc_id_hex(id->data, id->len > RC_ID_MAX_SIZE ? RC_ID_MAX_SIZE : id->len, hex) : "");
}

static void dash__json_map_d(rc_buf *b, void *entries, size_t n)
{
    dash__kvd **e = entries;
    rc_buf_putc(b, '{');
    for (size_t i = 0; i < n; i++) {
        rc_buf_puts(b, i ? ", " : "");
        dash__json_str(b, e[i]->key);
        rc_buf_printf(b, ": %.17g", e[i]->value);
    }
    rc_buf_putc(b, '}');
}

static void dash__json_map_s(rc_buf *b, void *entries, size_t n)
{
    dash__kvs **e = entries;
    rc_buf_putc(b, '{');
    for (size_t i = 0; i < n; i++) {
        rc_buf_puts(b, i ? ", " : "");
        dash__json_str(b, e[i]->key);
        rc_buf_puts(b, ": ");
        dash__json_str(b, e[i]->value);
    }
    rc_buf_putc(b, '}');
}

static const char *dash__enum(const ProtobufCEnumDescriptor *d, int value)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(d, value);
    return v ? v->name : "UNKNOWN";
}

/* Frees a token, wiped first. */
static void dash__wipe_free(char *token)
{
    gcs_admin_creds c = {.token = token};
    gcs_admin_creds_free(&c);
}

/* ---- the poller ------------------------------------------------------------------------- */

static void dash__free(dash_api *a)
{
    for (int i = 0; i < Q_COUNT; i++)
        if (a->latest[i])
            rpc_msg_free(a->latest[i]);
    for (size_t i = 0; i < a->n_whys; i++)
        rc_free(a->whys[i].text);
    rc_free(a->whys);
    rc_free(a->granted_ids);
    rc_free(a->granted);
    rc_free(a->granted_ms);
    rc_free(a->ring);
    rc_free(a->session);
    rc_free(a->raylets);
    dash__wipe_free(a->token);
    rc_free(a->token_path);
    if (a->verifier)
        auth_verifier_destroy(a->verifier);
    rc_free(a);
}

static void dash__maybe_free(dash_api *a)
{
    if (a->stopping && !a->in_flight && a->timer_closed && !a->scraping && !a->log_calls)
        dash__free(a);
}

static void dash__sample_now(dash_api *a)
{
    const Ray__Rpc__GetAllResourceUsageReply *u = (const void *)a->latest[Q_USAGE];
    const Ray__Rpc__GetAllNodeInfoReply *nodes = (const void *)a->latest[Q_NODES];
    if (!u || !u->resource_usage_data)
        return;
    dash__sample s = {.t_ms = rc_wall_ms()};
    const Ray__Rpc__ResourceUsageBatchData *batch = u->resource_usage_data;
    for (size_t i = 0; i < batch->n_batch; i++) {
        const Ray__Rpc__ResourcesData *r = batch->batch[i];
        double cpu_t = dash__get(r->resources_total, r->n_resources_total, "CPU");
        double gpu_t = dash__get(r->resources_total, r->n_resources_total, "GPU");
        double mem_t = dash__get(r->resources_total, r->n_resources_total, "memory");
        s.cpu_total += cpu_t;
        s.gpu_total += gpu_t;
        s.mem_total += mem_t;
        s.cpu_used += cpu_t - dash__get(r->resources_available, r->n_resources_available, "CPU");
        s.gpu_used += gpu_t - dash__get(r->resources_available, r->n_resources_available, "GPU");
        s.mem_used += mem_t - dash__get(r->resources_available, r->n_resources_available, "memory");
        for (size_t j = 0; j < r->n_rayc_job_usage; j++) {
            s.running += r->rayc_job_usage[j]->leases;
            s.queued += r->rayc_job_usage[j]->queued;
        }
    }
    for (size_t i = 0; nodes && i < nodes->n_node_info_list; i++)
        s.nodes_alive += nodes->node_info_list[i]->state == RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__ALIVE;
    s.granted_total = a->granted_total;
    s.granted_per_s = a->granted_per_s;
    a->ring[a->ring_head] = s;
    a->ring_head = (a->ring_head + 1) % a->ring_cap;
    if (a->ring_len < a->ring_cap)
        a->ring_len++;
}

typedef struct dash__call {
    dash_api *a;
    int q;              /* Q_* or -1 for GetPlacementGroup */
    uint8_t id[32];
    size_t id_len;
} dash__call;

static void dash__set_why(dash_api *a, const uint8_t *id, size_t len, const char *text)
{
    for (size_t i = 0; i < a->n_whys; i++) {
        if (a->whys[i].id_len == len && !memcmp(a->whys[i].id, id, len)) {
            rc_free(a->whys[i].text);
            a->whys[i].text = rc_strdup(text);
            return;
        }
    }
    a->whys = rc_realloc(a->whys, (a->n_whys + 1) * sizeof(*a->whys));
    dash__why *w = &a->whys[a->n_whys++];
    memcpy(w->id, id, len);
    w->id_len = len;
    w->text = rc_strdup(text);
}

static const char *dash__why_of(const dash_api *a, const ProtobufCBinaryData *id)
{
    for (size_t i = 0; i < a->n_whys; i++)
        if (a->whys[i].id_len == id->len && !memcmp(a->whys[i].id, id->data, id->len))
            return a->whys[i].text;
    return NULL;
}

static void dash__ask_whys(dash_api *a);
static void dash__poll(uv_timer_t *t);
static int dash__token_refresh(dash_api *a, int force);
static void dash__wipe_free(char *token);
static void dash__prune_raylets(dash_api *a);

static void dash__on_reply(const rpc_status *status, ProtobufCMessage *reply, void *arg)
{
    dash__call *c = arg;
    dash_api *a = c->a;
    a->in_flight--;
    /* Refused for a token the admin has since replaced: a new round at once, with the new one. */
    if (!a->stopping && status->code == GRPC_STATUS_UNAUTHENTICATED && dash__token_refresh(a, 1))
        a->repoll = 1;
    if (!a->stopping && !a->in_flight && a->repoll) {
        a->repoll = 0;
        uv_timer_start(&a->timer, dash__poll, 0, uv_timer_get_repeat(&a->timer));
    }
    if (a->stopping || status->code != GRPC_STATUS_OK) {
        if (!a->stopping && status->code != GRPC_STATUS_CANCELLED) {
            snprintf(a->last_error, sizeof(a->last_error), "the GCS did not answer: %s", status->message);
            a->last_error_ms = rc_wall_ms();
        }
        if (reply)
            rpc_msg_free(reply);
        rc_free(c);
        dash__maybe_free(a);
        return;
    }
    if (c->q < 0) {
        const char *message = "";
        gcs_reply_status(reply, &message);
        dash__set_why(a, c->id, c->id_len, message ? message : "");
        rpc_msg_free(reply);
    } else {
        if (a->latest[c->q])
            rpc_msg_free(a->latest[c->q]);
        a->latest[c->q] = reply;
        a->latest_ms[c->q] = rc_wall_ms();
        if (c->q == Q_USAGE)
            dash__sample_now(a);
        if (c->q == Q_NODES)
            dash__prune_raylets(a);
        if (c->q == Q_PGS)
            dash__ask_whys(a);
    }
    rc_free(c);
}

static void dash__call_gcs(dash_api *a, int q, const ProtobufCServiceDescriptor *svc, const char *method,
                           const ProtobufCMessage *req, const uint8_t *id, size_t id_len)
{
    dash__call *c = RC_NEW(dash__call);
    c->a = a;
    c->q = q;
    if (id) {
        memcpy(c->id, id, id_len);
        c->id_len = id_len;
    }
    if (rpc_client_call(gcs_client_rpc(a->gcs), svc, method, req, DASH__CALL_MS, dash__on_reply, c) < 0) {
        rc_free(c);
        return;
    }
    a->in_flight++;
}

/* The GCS says why a placement group waits only when asked for that group. */
static int dash__is_pending(const Ray__Rpc__PlacementGroupTableData *pg)
{
    return pg->state == RAY__RPC__PLACEMENT_GROUP_TABLE_DATA__PLACEMENT_GROUP_STATE__PENDING ||
           pg->state == RAY__RPC__PLACEMENT_GROUP_TABLE_DATA__PLACEMENT_GROUP_STATE__RESCHEDULING;
}

static void dash__ask_whys(dash_api *a)
{
    const Ray__Rpc__GetAllPlacementGroupReply *r = (const void *)a->latest[Q_PGS];
    /* Forget the explanations of groups that no longer wait. */
    size_t kept = 0;
    for (size_t w = 0; w < a->n_whys; w++) {
        int pending = 0;
        for (size_t i = 0; r && i < r->n_placement_group_table_data && !pending; i++) {
            const Ray__Rpc__PlacementGroupTableData *pg = r->placement_group_table_data[i];
            pending = dash__is_pending(pg) && pg->placement_group_id.len == a->whys[w].id_len &&
                      !memcmp(pg->placement_group_id.data, a->whys[w].id, a->whys[w].id_len);
        }
        if (pending)
            a->whys[kept++] = a->whys[w];
        else
            rc_free(a->whys[w].text);
    }
    a->n_whys = kept;
    for (size_t i = 0; r && i < r->n_placement_group_table_data; i++) {
        const Ray__Rpc__PlacementGroupTableData *pg = r->placement_group_table_data[i];
        if (!dash__is_pending(pg))
            continue;
        if (pg->placement_group_id.len > 32)
            continue;
        Ray__Rpc__GetPlacementGroupRequest req = RAY__RPC__GET_PLACEMENT_GROUP_REQUEST__INIT;
        req.placement_group_id = pg->placement_group_id;
        dash__call_gcs(a, -1, &ray__rpc__placement_group_info_gcs_service__descriptor, "GetPlacementGroup",
                       &req.base, pg->placement_group_id.data, pg->placement_group_id.len);
    }
}

static int dash__read_file(const char *path, size_t max, int tail, rc_buf *out, size_t *size);

/* ---- the admin token ------------------------------------------------------------------- */

/* Sets the bearer of a channel to token, on TLS channels only (never in plaintext, never
 * to a unix socket: where rpc_client_create would not have put it either). */
static void dash__set_bearer(rpc_client *cli, const char *token)
{
    if (!cli || rpc_security_get()->insecure || !strncmp(rpc_client_target(cli), "unix:", 5))
        return;
    rc_buf b = RC_BUF_INIT;
    rc_buf_printf(&b, "Bearer %s", token);
    rpc_client_set_metadata(cli, "authorization", rc_buf_cstr(&b));
    memset(b.data, 0, b.len);
    rc_buf_free(&b);
}

/* Reads the session's auth_token again when it changed since last time (force: in any
 * case) and, when it holds another admin token of this cluster, makes it the one in use.
 * 1 when the token changed, else 0. */
static int dash__token_refresh(dash_api *a, int force)
{
    if (!a->token_path)
        return 0;
    struct stat st;
    if (stat(a->token_path, &st) < 0)
        return 0;
    if (!force && st.st_ino == a->token_st.st_ino && st.st_dev == a->token_st.st_dev &&
        st.st_size == a->token_st.st_size && st.st_mtim.tv_sec == a->token_st.st_mtim.tv_sec &&
        st.st_mtim.tv_nsec == a->token_st.st_mtim.tv_nsec)
        return 0;
    a->token_st = st;
    char *text = NULL;
    if (auth_read_file(a->token_path, &text) < 0)
        return 0;
    size_t n = strlen(text);
    while (n && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' ' || text[n - 1] == '\t'))
        text[--n] = '\0';
    if (a->token && !strcmp(a->token, text)) {
        dash__wipe_free(text);
        return 0;
    }
    auth_claims c = {0};
    char err[256] = "";
    if (auth_token_verify(a->verifier, text, (int64_t)time(NULL), &c, err, sizeof(err)) < 0 ||
        c.kind != AUTH_TOKEN_ADMIN) {
        RC_WARN("dashboard: %s does not hold an admin token of this cluster (%s); keeping the one in use",
                a->token_path, c.kind != AUTH_TOKEN_ADMIN && !err[0] ? "not an admin token" : err);
        dash__wipe_free(text);
        return 0;
    }
    rpc_security sec = *rpc_security_get();
    sec.token = text;
    if (rpc_security_set(&sec, err, sizeof(err)) < 0) {
        RC_WARN("dashboard: cannot use the new admin token: %s", err);
        dash__wipe_free(text);
        return 0;
    }
    dash__set_bearer(gcs_client_rpc(a->gcs), text);
    for (size_t i = 0; i < a->n_raylets; i++)
        dash__set_bearer(a->raylets[i].cli, text);
    if (a->token)
        RC_INFO("dashboard: the admin token was replaced (now %.16s); the dashboard calls with it and "
                "refuses the old one", c.id);
    dash__wipe_free(a->token);
    a->token = text;
    snprintf(a->token_id, sizeof(a->token_id), "%s", c.id);
    return 1;
}

const char *dash_api_revoked(const rpc_identity *id, void *arg)
{
    dash_api *a = arg;
    if (id->role != RPC_ROLE_ADMIN || !id->token_id[0] || !a->token_path)
        return NULL;
    dash__token_refresh(a, 0);
    if (!a->token_id[0] || !strcmp(id->token_id, a->token_id))
        return NULL;
    snprintf(a->refusal, sizeof(a->refusal),
             "admin token %.16s was replaced (rayc get-auth-token --generate); log in with the new one "
             "(rayc get-auth-token on the head node)",
             id->token_id);
    return a->refusal;
}

/* ---- lease grants from the raylets' metrics ------------------------------------------ */

static size_t dash__on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    rc_buf *b = arg;
    if (b->len < (4u << 20))
        rc_buf_append(b, data, size * nmemb);
    return size * nmemb;
}

/* The value of the unlabelled sample name in a Prometheus text exposition, or -1. */
static double dash__metric(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (!strncmp(p, name, n) && (p[n] == ' ' || p[n] == '{')) {
            const char *v = p[n] == '{' ? strchr(p + n, '}') : p + n;
            if (v)
                return strtod(v + 1, NULL);
        }
    }
    return -1;
}

static void dash__scrape_work(uv_work_t *w)
{
    dash__scrape *sc = w->data;
    char auth[1024];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", sc->token ? sc->token : "");
    for (size_t i = 0; i < sc->n; i++) {
        sc->granted[i] = -1;
        CURL *c = curl_easy_init();
        if (!c)
            continue;
        rc_buf body = RC_BUF_INIT;
        struct curl_slist *h = sc->token ? curl_slist_append(NULL, auth) : NULL;
        curl_easy_setopt(c, CURLOPT_URL, sc->urls[i]);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 3000L);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, sc->ca_file ? "https" : "http");
        if (sc->ca_file)
            curl_easy_setopt(c, CURLOPT_CAINFO, sc->ca_file);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, dash__on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
        long code = 0;
        if (curl_easy_perform(c) == CURLE_OK && curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK &&
            code == 200)
            sc->granted[i] = dash__metric(rc_buf_cstr(&body), "rayc_leases_granted_total");
        curl_slist_free_all(h);
        curl_easy_cleanup(c);
        rc_buf_free(&body);
    }
}

static void dash__scrape_free(dash__scrape *sc)
{
    for (size_t i = 0; i < sc->n; i++)
        rc_free(sc->urls[i]);
    rc_free(sc->urls);
    rc_free(sc->ids);
    rc_free(sc->granted);
    dash__wipe_free(sc->token);
    rc_free(sc->ca_file);
    rc_free(sc);
}

/* Folds a scrape into each node's counter: the rate is the growth of the nodes answering
 * both times (a restarted raylet's counter starts again; it counts from its new value). */
static void dash__scrape_done(uv_work_t *w, int status)
{
    dash__scrape *sc = w->data;
    dash_api *a = sc->a;
    a->scraping = 0;
    if (status == 0 && !a->stopping) {
        double now = (double)rc_wall_ms(), delta = 0, span = 0, total = 0;
        for (size_t i = 0; i < sc->n; i++) {
            if (sc->granted[i] < 0)
                continue;
            total += sc->granted[i];
            size_t k = 0;
            while (k < a->n_granted && memcmp(a->granted_ids[k], sc->ids[i], RC_ID_MAX_SIZE))
                k++;
            if (k == a->n_granted) {
                a->granted_ids = rc_realloc(a->granted_ids, (k + 1) * sizeof(*a->granted_ids));
                a->granted = rc_realloc(a->granted, (k + 1) * sizeof(*a->granted));
                a->granted_ms = rc_realloc(a->granted_ms, (k + 1) * sizeof(*a->granted_ms));
                memcpy(a->granted_ids[k], sc->ids[i], RC_ID_MAX_SIZE);
                a->n_granted++;
            } else if (sc->granted[i] >= a->granted[k]) {
                delta += sc->granted[i] - a->granted[k];
                if (now - a->granted_ms[k] > span)
                    span = now - a->granted_ms[k];
            }
            a->granted[k] = sc->granted[i];
            a->granted_ms[k] = now;
        }
        a->granted_total = total;
        a->granted_per_s = span > 0 ? delta * 1000.0 / span : 0;
    }
    dash__scrape_free(sc);
    dash__maybe_free(a);
}

static void dash__scrape_start(dash_api *a)
{
    const Ray__Rpc__GetAllNodeInfoReply *nodes = (const void *)a->latest[Q_NODES];
    if (a->scraping || !nodes)
        return;
    dash__scrape *sc = RC_NEW(dash__scrape);
    sc->a = a;
    sc->work.data = sc;
    sc->urls = rc_calloc(nodes->n_node_info_list + 1, sizeof(*sc->urls));
    sc->ids = rc_calloc(nodes->n_node_info_list + 1, sizeof(*sc->ids));
    sc->granted = rc_calloc(nodes->n_node_info_list + 1, sizeof(*sc->granted));
    /* Raylets serve HTTPS with their node certificates unless the cluster is insecure. */
    const char *ca = getenv("RAYC_CA_CERT");
    if (!rpc_security_get()->insecure && ca)
        sc->ca_file = rc_strdup(ca);
    const char *scheme = rpc_security_get()->insecure ? "http" : "https";
    for (size_t i = 0; i < nodes->n_node_info_list; i++) {
        const Ray__Rpc__GcsNodeInfo *n = nodes->node_info_list[i];
        if (n->state != RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__ALIVE || n->metrics_export_port <= 0)
            continue;
        rc_buf url = RC_BUF_INIT;
        rc_buf_printf(&url, strchr(n->node_manager_address, ':') ? "%s://[%s]:%d/metrics" : "%s://%s:%d/metrics",
                      scheme, n->node_manager_address, n->metrics_export_port);
        sc->urls[sc->n] = rc_buf_detach(&url);
        memcpy(sc->ids[sc->n], n->node_id.data, n->node_id.len < RC_ID_MAX_SIZE ? n->node_id.len : RC_ID_MAX_SIZE);
        sc->n++;
    }
    /* The admin token the dashboard's calls use (none on an insecure cluster). */
    sc->token = a->token ? rc_strdup(a->token) : NULL;
    if (uv_queue_work(a->loop, &sc->work, dash__scrape_work, dash__scrape_done) != 0) {
        dash__scrape_free(sc);
        return;
    }
    a->scraping = 1;
}

static void dash__poll(uv_timer_t *t)
{
    dash_api *a = t->data;
    if (a->stopping)
        return;
    dash__token_refresh(a, 0);
    dash__scrape_start(a);
    if (a->in_flight)
        return;
    Ray__Rpc__GetAllNodeInfoRequest nodes = RAY__RPC__GET_ALL_NODE_INFO_REQUEST__INIT;
    Ray__Rpc__GetAllResourceUsageRequest usage = RAY__RPC__GET_ALL_RESOURCE_USAGE_REQUEST__INIT;
    Ray__Rpc__GetAllActorInfoRequest actors = RAY__RPC__GET_ALL_ACTOR_INFO_REQUEST__INIT;
    Ray__Rpc__GetAllPlacementGroupRequest pgs = RAY__RPC__GET_ALL_PLACEMENT_GROUP_REQUEST__INIT;
    Ray__Rpc__GetAllJobInfoRequest jobs = RAY__RPC__GET_ALL_JOB_INFO_REQUEST__INIT;
    Ray__Rpc__InternalKVGetRequest market = RAY__RPC__INTERNAL_KVGET_REQUEST__INIT;
    market.namespace_.data = (uint8_t *)"market";
    market.namespace_.len = 6;
    market.key.data = (uint8_t *)"status";
    market.key.len = 6;
    /* The node table first: a sample counts the nodes of the latest table. */
    dash__call_gcs(a, Q_NODES, &ray__rpc__node_info_gcs_service__descriptor, "GetAllNodeInfo", &nodes.base, NULL, 0);
    dash__call_gcs(a, Q_USAGE, &ray__rpc__node_resource_info_gcs_service__descriptor, "GetAllResourceUsage",
                   &usage.base, NULL, 0);
    dash__call_gcs(a, Q_ACTORS, &ray__rpc__actor_info_gcs_service__descriptor, "GetAllActorInfo", &actors.base, NULL,
                   0);
    dash__call_gcs(a, Q_PGS, &ray__rpc__placement_group_info_gcs_service__descriptor, "GetAllPlacementGroup",
                   &pgs.base, NULL, 0);
    dash__call_gcs(a, Q_JOBS, &ray__rpc__job_info_gcs_service__descriptor, "GetAllJobInfo", &jobs.base, NULL, 0);
    dash__call_gcs(a, Q_MARKET, &ray__rpc__internal_kvgcs_service__descriptor, "InternalKVGet", &market.base, NULL,
                   0);
    /* The task-event table, bounded: the GCS returns its newest attempts first. */
    Ray__Rpc__GetTaskEventsRequest tasks = RAY__RPC__GET_TASK_EVENTS_REQUEST__INIT;
    tasks._limit_case = RAY__RPC__GET_TASK_EVENTS_REQUEST___LIMIT_LIMIT;
    tasks.limit = DASH__TASK_LIMIT;
    dash__call_gcs(a, Q_TASKS, &ray__rpc__task_info_gcs_service__descriptor, "GetTaskEvents", &tasks.base, NULL, 0);
}

/* ---- finding the UI's files ----------------------------------------------------------------- */

static void dash__find_ui(dash_api *a)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    a->ui_dir[0] = '\0';
    if (n <= 0)
        return;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return;
    *slash = '\0';
    /* Installed: PREFIX/bin/rayc-dashboard and PREFIX/share/rayc/dashboard; the build tree
     * has the same layout (build/bin, build/share/rayc/dashboard). */
    char dir[PATH_MAX + 64];
    snprintf(dir, sizeof(dir), "%s/../share/rayc/dashboard", exe);
    if (!realpath(dir, a->ui_dir))
        a->ui_dir[0] = '\0';
}

int dash_api_start(uv_loop_t *loop, rpc_ctx *rpc, gcs_client *gcs, const char *session, dash_api **out)
{
    dash_api *a = RC_NEW(dash_api);
    a->loop = loop;
    a->rpc = rpc;
    a->gcs = gcs;
    a->session = rc_strdup(session);
    int poll_ms = rc_cfg.dashboard_poll_ms > 100 ? rc_cfg.dashboard_poll_ms : 100;
    int64_t history_s = rc_cfg.dashboard_history_s > 0 ? rc_cfg.dashboard_history_s : 1;
    a->ring_cap = (size_t)(history_s * 1000 / poll_ms) + 1;
    a->ring = rc_calloc(a->ring_cap, sizeof(*a->ring));
    curl_global_init(CURL_GLOBAL_DEFAULT);
    /* The admin token in force is the one in the head's session (see the file comment). */
    const rpc_security *sec = rpc_security_get();
    if (!sec->insecure && sec->ca_cert_pem && auth_verifier_create(sec->ca_cert_pem, &a->verifier) == 0) {
        rc_buf path = RC_BUF_INIT;
        rc_buf_printf(&path, "%s/" GCS_AUTH_TOKEN_FILE, session);
        a->token_path = rc_buf_detach(&path);
        dash__token_refresh(a, 1);
    }
    dash__find_ui(a);
    if (!a->ui_dir[0])
        RC_WARN("dashboard: the web UI's files are not installed (no share/rayc/dashboard next to bin/); "
                "only the JSON API is served");
    else
        RC_INFO("dashboard: web UI from %s", a->ui_dir);
    uv_timer_init(loop, &a->timer);
    a->timer.data = a;
    uv_timer_start(&a->timer, dash__poll, 0, (uint64_t)poll_ms);
    *out = a;
    return 0;
}

static void dash__on_timer_closed(uv_handle_t *h)
{
    dash_api *a = h->data;
    a->timer_closed = 1;
    dash__maybe_free(a);
}

void dash_api_stop(dash_api *a)
{
    if (!a)
        return;
    a->stopping = 1;
    for (size_t i = 0; i < a->n_raylets; i++) /* their calls end with CANCELLED */
        rpc_client_destroy(a->raylets[i].cli);
    a->n_raylets = 0;
    uv_timer_stop(&a->timer);
    uv_close((uv_handle_t *)&a->timer, dash__on_timer_closed);
}

/* ---- the UI's files --------------------------------------------------------------------- */

int dash_api_is_public(const char *method, const char *path, void *arg)
{
    (void)arg;
    if (strcmp(method, "GET") && strcmp(method, "HEAD"))
        return 0;
    return strncmp(path, "/api/", 5) != 0 && strcmp(path, "/api");
}

static const char *dash__type(const char *name)
{
    const char *dot = strrchr(name, '.');
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"}, {".css", "text/css; charset=utf-8"},
        {".json", "application/json"}, {".svg", "image/svg+xml"}, {".png", "image/png"},
        {".ico", "image/x-icon"}, {".txt", "text/plain; charset=utf-8"},
    };
    for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
        if (!strcmp(dot, types[i].ext))
            return types[i].type;
    return NULL;
}

/* A UI path is "/" or segments of [A-Za-z0-9._-] that do not start with '.', so no "..",
 * no hidden file, no encoded trick reaches the file system. */
static int dash__safe_path(const char *p)
{
    if (*p != '/')
        return 0;
    for (const char *seg = p + 1; *seg;) {
        if (*seg == '.' || *seg == '/')
            return 0;
        const char *s = seg;
        while (*s && *s != '/') {
            char ch = *s;
            if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
                  ch == '_' || ch == '-'))
                return 0;
            s++;
        }
        seg = *s ? s + 1 : s;
    }
    return 1;
}

static int dash__read_file(const char *path, size_t max, int tail, rc_buf *out, size_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return RC_ENOENT;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return RC_ENOENT;
    }
    *size = (size_t)st.st_size;
    if ((size_t)st.st_size > max) {
        if (!tail) {
            close(fd);
            return RC_ERANGE;
        }
        lseek(fd, st.st_size - (off_t)max, SEEK_SET);
    }
    char buf[65536];
    ssize_t n;
    size_t got = 0;
    while (got < max && (n = read(fd, buf, sizeof(buf))) > 0) {
        size_t take = (size_t)n < max - got ? (size_t)n : max - got;
        rc_buf_append(out, buf, take);
        got += take;
    }
    close(fd);
    return 0;
}

static void dash__serve_ui(dash_api *a, const http_request *req, http_response *resp)
{
    resp->headers = DASH__UI_HEADERS;
    const char *path = !strcmp(req->path, "/") ? "/index.html" : req->path;
    const char *type = dash__type(path);
    if (!a->ui_dir[0]) {
        resp->status = 404;
        rc_buf_puts(&resp->body, "404: the dashboard's web UI is not installed on this host; the JSON API is under "
                                 "/api/ (with the cluster's token)\n");
        return;
    }
    if (!dash__safe_path(path) || !type) {
        resp->status = 404;
        rc_buf_puts(&resp->body, "404: no such file\n");
        return;
    }
    char file[PATH_MAX + 512];
    snprintf(file, sizeof(file), "%s%s", a->ui_dir, path);
    size_t size = 0;
    int rc = dash__read_file(file, DASH__MAX_FILE, 0, &resp->body, &size);
    if (rc < 0) {
        rc_buf_free(&resp->body);
        resp->status = 404;
        rc_buf_puts(&resp->body, "404: no such file\n");
        return;
    }
    resp->content_type = type;
    if (!strcmp(req->method, "HEAD"))
        rc_buf_free(&resp->body);
}

/* ---- JSON endpoints ---------------------------------------------------------------------- */

static void dash__meta(const dash_api *a, rc_buf *b, int q)
{
    int64_t now = rc_wall_ms();
    rc_buf_printf(b, "\"updated_ms\": %lld, \"age_ms\": %lld, \"error\": ", (long long)a->latest_ms[q],
                  a->latest_ms[q] ? (long long)(now - a->latest_ms[q]) : -1LL);
    dash__json_str(b, a->last_error_ms > a->latest_ms[q] ? a->last_error : "");
}

/* The market's status JSON, parsed, or NULL. */
static rc_json *dash__market(const dash_api *a)
{
    const Ray__Rpc__InternalKVGetReply *m = (const void *)a->latest[Q_MARKET];
    if (!m || gcs_reply_status(&m->base, NULL) != GCS_STATUS_OK || !m->value.len)
        return NULL;
    rc_json *root = NULL;
    if (rc_json_parse((const char *)m->value.data, m->value.len, &root, NULL, 0) < 0)
        return NULL;
    return root;
}

static const char *dash__jstr(const rc_json *o, const char *key)
{
    const rc_json *v = rc_json_get(o, key);
    return v && v->type == RC_JSON_STRING ? v->str : NULL;
}

static void dash__nodes(dash_api *a, rc_buf *b)
{
    const Ray__Rpc__GetAllNodeInfoReply *nodes = (const void *)a->latest[Q_NODES];
    const Ray__Rpc__GetAllResourceUsageReply *u = (const void *)a->latest[Q_USAGE];
    const Ray__Rpc__ResourceUsageBatchData *batch = u ? u->resource_usage_data : NULL;
    rc_json *market = dash__market(a);
    const rc_json *leases = market ? rc_json_get(market, "leases") : NULL;
    rc_buf_putc(b, '{');
    dash__meta(a, b, Q_NODES);
    rc_buf_puts(b, ", \"nodes\": [");
    for (size_t i = 0; nodes && i < nodes->n_node_info_list; i++) {
        const Ray__Rpc__GcsNodeInfo *n = nodes->node_info_list[i];
        rc_buf_puts(b, i ? ",\n {" : "\n {");
        rc_buf_puts(b, "\"node_id\": ");
        dash__json_hex(b, &n->node_id);
        rc_buf_printf(b, ", \"state\": \"%s\", \"is_head_node\": %s, \"node_ip\": ",
                      n->state == RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__ALIVE ? "ALIVE" : "DEAD",
                      n->is_head_node ? "true" : "false");
        dash__json_str(b, n->node_manager_address);
        rc_buf_printf(b, ", \"node_manager_port\": %d, \"metrics_export_port\": %d, \"node_name\": ",
                      n->node_manager_port, n->metrics_export_port);
        dash__json_str(b, n->node_name);
        rc_buf_puts(b, ", \"accelerator_type\": ");
        const char *accel = dash__label(n->labels, n->n_labels, "ray.io/accelerator-type");
        dash__json_str(b, accel);
        /* GPU types also show as Ray's accelerator_type:<T> resources. */
        rc_buf_puts(b, ", \"gpu_types\": [");
        int first = 1;
        for (size_t k = 0; k < n->n_resources_total; k++) {
            const char *key = n->resources_total[k]->key;
            if (!strncmp(key, "accelerator_type:", 17)) {
                rc_buf_puts(b, first ? "" : ", ");
                dash__json_str(b, key + 17);
                first = 0;
            }
        }
        rc_buf_puts(b, "], \"labels\": ");
        dash__json_map_s(b, n->labels, n->n_labels);
        rc_buf_puts(b, ", \"resources_total\": ");
        dash__json_map_d(b, n->resources_total, n->n_resources_total);
        const Ray__Rpc__ResourcesData *r = NULL;
        for (size_t k = 0; batch && k < batch->n_batch; k++)
            if (batch->batch[k]->node_id.len == n->node_id.len &&
                !memcmp(batch->batch[k]->node_id.data, n->node_id.data, n->node_id.len))
                r = batch->batch[k];
        rc_buf_puts(b, ", \"resources_available\": ");
        if (r)
            dash__json_map_d(b, r->resources_available, r->n_resources_available);
        else
            rc_buf_puts(b, "null");
        unsigned running = 0, queued = 0;
        for (size_t k = 0; r && k < r->n_rayc_job_usage; k++) {
            running += r->rayc_job_usage[k]->leases;
            queued += r->rayc_job_usage[k]->queued;
        }
        rc_buf_printf(b, ", \"leases_running\": %u, \"leases_queued\": %u", running, queued);
        /* A node the market leased carries its lease's ID; the market's records price it. */
        const char *lease_id = dash__label(n->labels, n->n_labels, "rayc.io/market-lease");
        const rc_json *lease = NULL;
        for (size_t k = 0; lease_id && leases && leases->type == RC_JSON_ARRAY && k < leases->n_items; k++) {
            const char *id = dash__jstr(&leases->items[k], "lease_id");
            if (id && !strcmp(id, lease_id))
                lease = &leases->items[k];
        }
        if (lease) {
            const rc_json *price = rc_json_get(lease, "price_per_hour");
            rc_buf_puts(b, ", \"market\": {\"lease_id\": ");
            dash__json_str(b, lease_id);
            rc_buf_puts(b, ", \"provider\": ");
            dash__json_str(b, dash__jstr(lease, "provider"));
            rc_buf_printf(b, ", \"price_per_hour\": %.17g}", price && price->type == RC_JSON_NUMBER ? price->number : 0);
        } else if (lease_id) {
            rc_buf_puts(b, ", \"market\": {\"lease_id\": ");
            dash__json_str(b, lease_id);
            rc_buf_puts(b, ", \"provider\": \"\", \"price_per_hour\": null}");
        } else {
            rc_buf_puts(b, ", \"market\": null");
        }
        if (n->death_info) {
            rc_buf_puts(b, ", \"death_reason\": ");
            dash__json_str(b, n->death_info->reason_message);
        }
        rc_buf_putc(b, '}');
    }
    rc_buf_puts(b, "]}\n");
    if (market)
        rc_json_free(market);
}

static void dash__actors(dash_api *a, rc_buf *b)
{
    const Ray__Rpc__GetAllActorInfoReply *r = (const void *)a->latest[Q_ACTORS];
    rc_buf_putc(b, '{');
    dash__meta(a, b, Q_ACTORS);
    rc_buf_puts(b, ", \"actors\": [");
    for (size_t i = 0; r && i < r->n_actor_table_data; i++) {
        const Ray__Rpc__ActorTableData *x = r->actor_table_data[i];
        rc_buf_puts(b, i ? ",\n {\"actor_id\": " : "\n {\"actor_id\": ");
        dash__json_hex(b, &x->actor_id);
        rc_buf_puts(b, ", \"job_id\": ");
        dash__json_hex(b, &x->job_id);
        rc_buf_puts(b, ", \"class_name\": ");
        dash__json_str(b, x->class_name);
        rc_buf_puts(b, ", \"name\": ");
        dash__json_str(b, x->name);
        rc_buf_puts(b, ", \"namespace\": ");
        dash__json_str(b, x->ray_namespace);
        rc_buf_printf(b, ", \"state\": \"%s\", \"pid\": %u, \"num_restarts\": %lld, \"is_detached\": %s, \"node_id\": ",
                      dash__enum(&ray__rpc__actor_table_data__actor_state__descriptor, x->state), x->pid,
                      (long long)x->num_restarts, x->is_detached ? "true" : "false");
        if (x->_node_id_case == RAY__RPC__ACTOR_TABLE_DATA___NODE_ID_NODE_ID)
            dash__json_hex(b, &x->node_id);
        else
            rc_buf_puts(b, "\"\"");
        rc_buf_puts(b, ", \"required_resources\": ");
        dash__json_map_d(b, x->required_resources, x->n_required_resources);
        rc_buf_puts(b, ", \"death_cause\": ");
        dash__json_str(b, gcs_actor_death_text(x->death_cause));
        rc_buf_putc(b, '}');
    }
    rc_buf_puts(b, "]}\n");
}

static void dash__pgs(dash_api *a, rc_buf *b)
{
    const Ray__Rpc__GetAllPlacementGroupReply *r = (const void *)a->latest[Q_PGS];
    rc_buf_putc(b, '{');
    dash__meta(a, b, Q_PGS);
    rc_buf_puts(b, ", \"placement_groups\": [");
    for (size_t i = 0; r && i < r->n_placement_group_table_data; i++) {
        const Ray__Rpc__PlacementGroupTableData *pg = r->placement_group_table_data[i];
        rc_buf_puts(b, i ? ",\n {\"placement_group_id\": " : "\n {\"placement_group_id\": ");
        dash__json_hex(b, &pg->placement_group_id);
        rc_buf_puts(b, ", \"name\": ");
        dash__json_str(b, pg->name);
        rc_buf_puts(b, ", \"job_id\": ");
        dash__json_hex(b, &pg->creator_job_id);
        rc_buf_printf(b, ", \"state\": \"%s\", \"strategy\": \"%s\", \"bundles\": [",
                      dash__enum(&ray__rpc__placement_group_table_data__placement_group_state__descriptor, pg->state),
                      dash__enum(&ray__rpc__placement_strategy__descriptor, pg->strategy));
        for (size_t k = 0; k < pg->n_bundles; k++) {
            rc_buf_puts(b, k ? ", {\"node_id\": " : "{\"node_id\": ");
            dash__json_hex(b, &pg->bundles[k]->node_id);
            rc_buf_puts(b, ", \"resources\": ");
            dash__json_map_d(b, pg->bundles[k]->unit_resources, pg->bundles[k]->n_unit_resources);
            rc_buf_putc(b, '}');
        }
        rc_buf_puts(b, "], \"scheduling_state\": ");
        dash__json_str(b, pg->stats ? dash__enum(&ray__rpc__placement_group_stats__scheduling_state__descriptor,
                                                 pg->stats->scheduling_state)
                                    : "");
        rc_buf_printf(b, ", \"scheduling_attempt\": %u, \"explanation\": ", pg->stats ? pg->stats->scheduling_attempt : 0);
        dash__json_str(b, dash__is_pending(pg) ? dash__why_of(a, &pg->placement_group_id) : "");
        rc_buf_putc(b, '}');
    }
    rc_buf_puts(b, "]}\n");
}

/* Task attempts counted by state, under one key (a function name or a job ID). */
typedef struct dash__task_group {
    const char *name;
    const ProtobufCBinaryData *job;
    unsigned counts[DASH__TASK_STATES];
    unsigned total;
} dash__task_group;

static int dash__task_state(const Ray__Rpc__TaskEvents *ev)
{
    int st = ev->task_info ? (int)ev->task_info->scheduling_state : 0;
    return st >= 0 && st < DASH__TASK_STATES ? st : 0;
}

static dash__task_group *dash__task_group_of(dash__task_group **groups, size_t *n, const char *name,
                                             const ProtobufCBinaryData *job)
{
    for (size_t i = 0; i < *n; i++) {
        dash__task_group *g = &(*groups)[i];
        if (name ? !strcmp(g->name, name) : (g->job->len == job->len && !memcmp(g->job->data, job->data, job->len)))
            return g;
    }
    *groups = rc_realloc(*groups, (*n + 1) * sizeof(**groups));
    dash__task_group *g = &(*groups)[(*n)++];
    memset(g, 0, sizeof(*g));
    g->name = name;
    g->job = job;
    return g;
}

static void dash__task_counts(rc_buf *b, const dash__task_group *g)
{
    rc_buf_printf(b, ", \"total\": %u, \"counts\": {", g->total);
    int first = 1;
    for (int st = 0; st < DASH__TASK_STATES; st++) {
        if (!g->counts[st])
            continue;
        rc_buf_printf(b, "%s\"%s\": %u", first ? "" : ", ", dash__enum(&ray__rpc__task_status__descriptor, st),
                      g->counts[st]);
        first = 0;
    }
    rc_buf_puts(b, "}}");
}

/* The task-event table as `rayc summary tasks` sums it (per function and per job, attempts
 * by state) and its newest attempts one by one. */
static void dash__task_events(dash_api *a, rc_buf *b)
{
    const Ray__Rpc__GetTaskEventsReply *r = (const void *)a->latest[Q_TASKS];
    rc_buf_puts(b, "{");
    dash__meta(a, b, Q_TASKS);
    if (!r) {
        rc_buf_puts(b, ", \"stored\": 0, \"truncated\": 0, \"dropped\": 0, \"by_name\": [], \"by_job\": [], "
                       "\"recent\": []}");
        return;
    }
    dash__task_group *names = NULL, *jobs = NULL;
    size_t n_names = 0, n_jobs = 0;
    for (size_t i = 0; i < r->n_events_by_task; i++) {
        const Ray__Rpc__TaskEvents *ev = r->events_by_task[i];
        const Ray__Rpc__TaskInfoEntry *ti = ev->task_info;
        const char *name = ti && ti->func_or_class_name && ti->func_or_class_name[0] ? ti->func_or_class_name
                           : ti && ti->name                                           ? ti->name
                                                                                      : "";
        int st = dash__task_state(ev);
        dash__task_group *g = dash__task_group_of(&names, &n_names, name, NULL);
        g->counts[st]++;
        g->total++;
        g = dash__task_group_of(&jobs, &n_jobs, NULL, &ev->job_id);
        g->counts[st]++;
        g->total++;
    }
    rc_buf_printf(b, ", \"stored\": %lld, \"truncated\": %lld, \"dropped\": %d, \"by_name\": [",
                  (long long)r->num_total_stored, (long long)r->num_truncated, r->num_status_task_events_dropped);
    for (size_t i = 0; i < n_names; i++) {
        rc_buf_puts(b, i ? ",\n {\"name\": " : "\n {\"name\": ");
        dash__json_str(b, names[i].name);
        dash__task_counts(b, &names[i]);
    }
    rc_buf_puts(b, "], \"by_job\": [");
    for (size_t i = 0; i < n_jobs; i++) {
        rc_buf_puts(b, i ? ",\n {\"job_id\": " : "\n {\"job_id\": ");
        dash__json_hex(b, jobs[i].job);
        dash__task_counts(b, &jobs[i]);
    }
    rc_free(names);
    rc_free(jobs);
    rc_buf_puts(b, "], \"recent\": [");
    /* The GCS answers newest first. */
    for (size_t i = 0; i < r->n_events_by_task && i < DASH__TASK_RECENT; i++) {
        const Ray__Rpc__TaskEvents *ev = r->events_by_task[i];
        const Ray__Rpc__TaskInfoEntry *ti = ev->task_info;
        const Ray__Rpc__TaskStateUpdate *su = ev->state_updates;
        static const ProtobufCBinaryData none = {0, NULL};
        rc_buf_puts(b, i ? ",\n {\"task_id\": " : "\n {\"task_id\": ");
        dash__json_hex(b, &ev->task_id);
        rc_buf_printf(b, ", \"attempt\": %d, \"name\": ", ev->attempt_number);
        dash__json_str(b, ti && ti->name ? ti->name : "");
        rc_buf_puts(b, ", \"func_or_class_name\": ");
        dash__json_str(b, ti && ti->func_or_class_name ? ti->func_or_class_name : "");
        rc_buf_printf(b, ", \"state\": \"%s\", \"type\": \"%s\", \"job_id\": ",
                      dash__enum(&ray__rpc__task_status__descriptor, dash__task_state(ev)),
                      dash__enum(&ray__rpc__task_type__descriptor, ti ? (int)ti->type : 0));
        dash__json_hex(b, &ev->job_id);
        rc_buf_puts(b, ", \"node_id\": ");
        dash__json_hex(b, su && su->_node_id_case ? &su->node_id : &none);
        rc_buf_puts(b, ", \"worker_id\": ");
        dash__json_hex(b, su && su->_worker_id_case ? &su->worker_id : &none);
        if (su && su->_worker_pid_case)
            rc_buf_printf(b, ", \"worker_pid\": %d", su->worker_pid);
        else
            rc_buf_puts(b, ", \"worker_pid\": null");
        rc_buf_puts(b, ", \"error_type\": ");
        if (su && su->error_info)
            dash__json_str(b, dash__enum(&ray__rpc__error_type__descriptor, su->error_info->error_type));
        else
            rc_buf_puts(b, "null");
        rc_buf_putc(b, '}');
    }
    rc_buf_puts(b, "]}");
}

/* What the cluster runs and waits for: the task-event table (per function and job, by
 * state, and the newest attempts), and from the resource view granted leases (each runs a
 * task or an actor) and queued lease requests per job as the raylets report them, the
 * demand shapes waiting in the cluster, and the job table. */
static void dash__tasks(dash_api *a, rc_buf *b)
{
    const Ray__Rpc__GetAllResourceUsageReply *u = (const void *)a->latest[Q_USAGE];
    const Ray__Rpc__ResourceUsageBatchData *batch = u ? u->resource_usage_data : NULL;
    const Ray__Rpc__GetAllJobInfoReply *jobs = (const void *)a->latest[Q_JOBS];
    rc_buf_putc(b, '{');
    dash__meta(a, b, Q_USAGE);
    rc_buf_puts(b, ", \"events\": ");
    dash__task_events(a, b);
    rc_buf_puts(b, ", \"source\": \"resource view: granted leases and queued lease requests per job and node\", "
                   "\"jobs\": [");
    for (size_t i = 0; jobs && i < jobs->n_job_info_list; i++) {
        const Ray__Rpc__JobTableData *j = jobs->job_info_list[i];
        unsigned running = 0, queued = 0, nodes = 0;
        double cpus = 0;
        for (size_t k = 0; batch && k < batch->n_batch; k++) {
            const Ray__Rpc__ResourcesData *r = batch->batch[k];
            for (size_t m = 0; m < r->n_rayc_job_usage; m++) {
                const Ray__Rpc__RaycJobUsage *ju = r->rayc_job_usage[m];
                if (ju->job_id.len != j->job_id.len || memcmp(ju->job_id.data, j->job_id.data, j->job_id.len))
                    continue;
                running += ju->leases;
                queued += ju->queued;
                cpus += ju->cpus;
                nodes += ju->leases > 0;
            }
        }
        rc_buf_puts(b, i ? ",\n {\"job_id\": " : "\n {\"job_id\": ");
        dash__json_hex(b, &j->job_id);
        rc_buf_printf(b, ", \"is_dead\": %s, \"entrypoint\": ", j->is_dead ? "true" : "false");
        dash__json_str(b, j->entrypoint);
        rc_buf_printf(b, ", \"start_time\": %llu, \"end_time\": %llu, \"running\": %u, \"queued\": %u, "
                         "\"cpus\": %.17g, \"nodes\": %u}",
                      (unsigned long long)j->start_time, (unsigned long long)j->end_time, running, queued, cpus, nodes);
    }
    rc_buf_puts(b, "], \"demands\": [");
    const Ray__Rpc__ResourceLoad *load = batch ? batch->resource_load_by_shape : NULL;
    for (size_t i = 0; load && i < load->n_resource_demands; i++) {
        const Ray__Rpc__ResourceDemand *d = load->resource_demands[i];
        rc_buf_puts(b, i ? ", {\"shape\": " : "{\"shape\": ");
        dash__json_map_d(b, d->shape, d->n_shape);
        rc_buf_printf(b, ", \"ready\": %llu, \"infeasible\": %llu, \"backlog\": %lld}",
                      (unsigned long long)d->num_ready_requests_queued,
                      (unsigned long long)d->num_infeasible_requests_queued, (long long)d->backlog_size);
    }
    rc_buf_puts(b, "]}\n");
}

static void dash__market_json(dash_api *a, rc_buf *b)
{
    const Ray__Rpc__InternalKVGetReply *m = (const void *)a->latest[Q_MARKET];
    rc_buf_putc(b, '{');
    dash__meta(a, b, Q_MARKET);
    rc_buf_puts(b, ", \"status\": ");
    rc_json *root = dash__market(a);
    if (root) /* the market's own record, as `rayc market status` reads it */
        rc_buf_append(b, m->value.data, m->value.len);
    else
        rc_buf_puts(b, "null");
    rc_buf_puts(b, "}\n");
    if (root)
        rc_json_free(root);
}

static void dash__timeseries(dash_api *a, rc_buf *b)
{
    rc_buf_printf(b, "{\"poll_ms\": %lld, \"samples\": %zu, ", (long long)rc_cfg.dashboard_poll_ms, a->ring_len);
    static const char *const names[] = {"t",        "cpu_used", "cpu_total", "gpu_used", "gpu_total",
                                        "mem_used", "mem_total", "running",  "queued",   "nodes_alive",
                                        "granted_total", "granted_per_s"};
    for (size_t f = 0; f < sizeof(names) / sizeof(names[0]); f++) {
        rc_buf_printf(b, "%s\"%s\": [", f ? ", " : "", names[f]);
        for (size_t i = 0; i < a->ring_len; i++) {
            const dash__sample *s = &a->ring[(a->ring_head + a->ring_cap - a->ring_len + i) % a->ring_cap];
            double v = f == 0   ? (double)s->t_ms / 1000.0
                       : f == 1 ? s->cpu_used
                       : f == 2 ? s->cpu_total
                       : f == 3 ? s->gpu_used
                       : f == 4 ? s->gpu_total
                       : f == 5 ? s->mem_used
                       : f == 6 ? s->mem_total
                       : f == 7 ? s->running
                       : f == 8 ? s->queued
                       : f == 9 ? s->nodes_alive
                       : f == 10 ? s->granted_total
                                 : s->granted_per_s;
            rc_buf_printf(b, "%s%.15g", i ? "," : "", v);
        }
        rc_buf_putc(b, ']');
    }
    rc_buf_puts(b, "}\n");
}

/* ---- logs ---------------------------------------------------------------------------------- */

/* The alive nodes, for the Logs page's node picker: "nodes": [...]. */
static void dash__log_nodes(const dash_api *a, rc_buf *b)
{
    const Ray__Rpc__GetAllNodeInfoReply *nodes = (const void *)a->latest[Q_NODES];
    rc_buf_puts(b, "\"nodes\": [");
    int first = 1;
    for (size_t i = 0; nodes && i < nodes->n_node_info_list; i++) {
        const Ray__Rpc__GcsNodeInfo *n = nodes->node_info_list[i];
        if (n->state != RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__ALIVE)
            continue;
        rc_buf_puts(b, first ? "{\"node_id\": " : ", {\"node_id\": ");
        dash__json_hex(b, &n->node_id);
        rc_buf_printf(b, ", \"is_head_node\": %s, \"node_ip\": ", n->is_head_node ? "true" : "false");
        dash__json_str(b, n->node_manager_address);
        rc_buf_puts(b, ", \"name\": ");
        dash__json_str(b, dash__label(n->labels, n->n_labels, "name"));
        rc_buf_putc(b, '}');
        first = 0;
    }
    rc_buf_putc(b, ']');
}

/* A node's channel for its logs, made on first use; NULL when it cannot be opened. */
static rpc_client *dash__raylet_cli(dash_api *a, const char *id_hex, const char *address)
{
    for (size_t i = 0; i < a->n_raylets; i++) {
        dash__raylet *r = &a->raylets[i];
        if (strcmp(r->id_hex, id_hex))
            continue;
        if (!strcmp(r->address, address))
            return r->cli;
        rpc_client_destroy(r->cli); /* the node moved: a channel to where it is now */
        a->raylets[i] = a->raylets[--a->n_raylets];
        break;
    }
    char peer[RC_ID_HEX_MAX + 8];
    snprintf(peer, sizeof(peer), "node:%s", id_hex);
    rpc_client_options opts = {.peer_name = peer};
    rpc_client *cli = NULL;
    if (rpc_client_create(a->rpc, address, &opts, &cli) < 0)
        return NULL;
    a->raylets = rc_realloc(a->raylets, (a->n_raylets + 1) * sizeof(*a->raylets));
    dash__raylet *r = &a->raylets[a->n_raylets++];
    snprintf(r->id_hex, sizeof(r->id_hex), "%s", id_hex);
    snprintf(r->address, sizeof(r->address), "%s", address);
    r->cli = cli;
    return cli;
}

/* Closes the channels of nodes that are no longer alive. */
static void dash__prune_raylets(dash_api *a)
{
    const Ray__Rpc__GetAllNodeInfoReply *nodes = (const void *)a->latest[Q_NODES];
    for (size_t i = 0; nodes && i < a->n_raylets;) {
        int alive = 0;
        for (size_t k = 0; k < nodes->n_node_info_list && !alive; k++) {
            const Ray__Rpc__GcsNodeInfo *n = nodes->node_info_list[k];
            char hex[RC_ID_HEX_MAX];
            alive = n->state == RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__ALIVE && n->node_id.len == RC_NODE_ID_SIZE &&
                    !strcmp(rc_id_hex(n->node_id.data, RC_NODE_ID_SIZE, hex), a->raylets[i].id_hex);
        }
        if (alive) {
            i++;
            continue;
        }
        rpc_client_destroy(a->raylets[i].cli);
        a->raylets[i] = a->raylets[--a->n_raylets];
    }
}

/* One request for another node's logs, answered when its raylet replies. */
typedef struct dash__logcall {
    dash_api *a;
    http_deferred *d;
    char id_hex[RC_ID_HEX_MAX];
    char address[300];
    char *file; /* NULL: the listing */
    int retried;
} dash__logcall;

static void dash__log_send(dash__logcall *lc);

static void dash__log_finish(dash__logcall *lc, int status, const char *type, rc_buf *body)
{
    http_response resp = {.status = status, .content_type = type, .headers = DASH__API_HEADERS};
    resp.body = *body;
    *body = (rc_buf)RC_BUF_INIT;
    http_deferred_finish(lc->d, &resp);
    rc_free(lc->file);
    rc_free(lc);
}

static void dash__on_log_reply(const rpc_status *status, ProtobufCMessage *reply, void *arg)
{
    dash__logcall *lc = arg;
    dash_api *a = lc->a;
    a->log_calls--;
    rc_buf b = RC_BUF_INIT;
    const char *what = lc->file ? "ReadLog" : "ListLogs";
    if (status->code == GRPC_STATUS_UNAUTHENTICATED && !lc->retried && !a->stopping &&
        http_deferred_waiting(lc->d)) {
        /* The token may have been replaced: read it again and try once more. */
        lc->retried = 1;
        dash__token_refresh(a, 1);
        dash__log_send(lc);
        dash__maybe_free(a);
        return;
    }
    if (status->code != GRPC_STATUS_OK) {
        int code = 502;
        switch (status->code) {
        case GRPC_STATUS_NOT_FOUND:
            code = 404;
            break;
        case GRPC_STATUS_INVALID_ARGUMENT:
            code = 400;
            break;
        case GRPC_STATUS_CANCELLED:
            code = 503;
            break;
        case GRPC_STATUS_DEADLINE_EXCEEDED:
            code = 504;
            break;
        default:
            break;
        }
        if (a->stopping)
            rc_buf_puts(&b, "503: the dashboard is stopping\n");
        else if (code == 404 || code == 400)
            rc_buf_printf(&b, "%d: %s\n", code, status->message);
        else if (status->code == GRPC_STATUS_UNAVAILABLE || status->code == GRPC_STATUS_DEADLINE_EXCEEDED)
            rc_buf_printf(&b, "%d: node %.16s (%s) did not answer %s: %s (%s); is it still alive? (GET /api/nodes)\n",
                          code, lc->id_hex, lc->address, what, status->message, rpc_code_name(status->code));
        else
            rc_buf_printf(&b, "%d: %s on node %.16s (%s) failed: %s (%s)\n", code, what, lc->id_hex, lc->address,
                          status->message, rpc_code_name(status->code));
        dash__log_finish(lc, a->stopping ? 503 : code, "text/plain; charset=utf-8", &b);
    } else if (lc->file) {
        const Rayc__Rpc__ReadLogReply *r = (const void *)reply;
        rc_buf_append(&b, r->data.data, r->data.len);
        dash__log_finish(lc, 200, "text/plain; charset=utf-8", &b);
    } else {
        const Ray__Rpc__ListLogsReply *r = (const void *)reply;
        rc_buf_printf(&b, "{\"node_id\": \"%s\", \"is_head_node\": false, \"tail_bytes\": %d, \"files\": [", lc->id_hex,
                      DASH__LOG_TAIL);
        for (size_t i = 0; i < r->n_log_files; i++) {
            rc_buf_puts(&b, i ? ", {\"name\": " : "{\"name\": ");
            dash__json_str(&b, r->log_files[i]);
            rc_buf_putc(&b, '}');
        }
        rc_buf_puts(&b, "], ");
        dash__log_nodes(a, &b);
        rc_buf_puts(&b, "}\n");
        dash__log_finish(lc, 200, "application/json", &b);
    }
    if (reply)
        rpc_msg_free(reply);
    dash__maybe_free(a);
}

static void dash__log_send(dash__logcall *lc)
{
    dash_api *a = lc->a;
    rpc_client *cli = dash__raylet_cli(a, lc->id_hex, lc->address);
    int rc = RC_EINVAL;
    if (cli && lc->file) {
        Rayc__Rpc__ReadLogRequest req = RAYC__RPC__READ_LOG_REQUEST__INIT;
        req.log_file_name = lc->file;
        req.offset = -1; /* the end: at most DASH__LOG_TAIL bytes of it */
        req.lines = INT32_MAX;
        req.max_bytes = DASH__LOG_TAIL;
        rc = rpc_client_call(cli, &rayc__rpc__log_read_service__descriptor, "ReadLog", &req.base, DASH__LOG_CALL_MS,
                             dash__on_log_reply, lc);
    } else if (cli) {
        Ray__Rpc__ListLogsRequest req = RAY__RPC__LIST_LOGS_REQUEST__INIT;
        req.glob_filter = "";
        rc = rpc_client_call(cli, &ray__rpc__log_service__descriptor, "ListLogs", &req.base, DASH__LOG_CALL_MS,
                             dash__on_log_reply, lc);
    }
    if (rc < 0) {
        rc_buf b = RC_BUF_INIT;
        rc_buf_printf(&b, "500: cannot call node %.16s at %s: %s\n", lc->id_hex, lc->address, rc_strerror(rc));
        dash__log_finish(lc, 500, "text/plain; charset=utf-8", &b);
        return;
    }
    a->log_calls++;
}

/* The head's own log files are read here (its session's logs/); another node's through its
 * raylet, answered later. */
static void dash__logs(dash_api *a, const http_request *req, http_response *resp)
{
    const Ray__Rpc__GetAllNodeInfoReply *nodes = (const void *)a->latest[Q_NODES];
    char head[RC_ID_HEX_MAX] = "";
    for (size_t i = 0; nodes && i < nodes->n_node_info_list; i++) {
        const Ray__Rpc__GcsNodeInfo *n = nodes->node_info_list[i];
        if (n->is_head_node && n->state == RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__ALIVE)
            rc_id_hex(n->node_id.data, n->node_id.len > RC_ID_MAX_SIZE ? RC_ID_MAX_SIZE : n->node_id.len, head);
    }
    const char *node = http_request_arg(req, "node");
    const char *file = http_request_arg(req, "file");
    if (file && (!*file || strchr(file, '/') || file[0] == '.' || strlen(file) > 255)) {
        resp->status = 400;
        rc_buf_puts(&resp->body, "400: file must be the name of a file in the node's logs directory "
                                 "(GET /api/logs?node=ID lists them)\n");
        return;
    }
    if (node && *node && strcasecmp(node, head)) {
        const Ray__Rpc__GcsNodeInfo *found = NULL;
        for (size_t i = 0; nodes && i < nodes->n_node_info_list && !found; i++) {
            const Ray__Rpc__GcsNodeInfo *n = nodes->node_info_list[i];
            char hex[RC_ID_HEX_MAX];
            if (n->node_id.len == RC_NODE_ID_SIZE &&
                !strcasecmp(rc_id_hex(n->node_id.data, RC_NODE_ID_SIZE, hex), node))
                found = n;
        }
        if (!found) {
            resp->status = 404;
            rc_buf_puts(&resp->body, "404: no node ");
            rc_buf_json_str(&resp->body, node, strnlen(node, 64));
            rc_buf_puts(&resp->body, " in the node table (GET /api/nodes lists them)\n");
            return;
        }
        if (found->state != RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__ALIVE) {
            resp->status = 404;
            rc_buf_printf(&resp->body, "404: node %.16s is dead: its logs stay in its session's logs/ directory on its "
                                       "host (%s)\n",
                          node, found->node_manager_address);
            return;
        }
        http_deferred *d = http_response_defer(resp);
        if (!d) {
            resp->status = 500;
            rc_buf_puts(&resp->body, "500: this request cannot wait for the node's answer\n");
            return;
        }
        dash__logcall *lc = RC_NEW(dash__logcall);
        lc->a = a;
        lc->d = d;
        rc_id_hex(found->node_id.data, RC_NODE_ID_SIZE, lc->id_hex);
        snprintf(lc->address, sizeof(lc->address), strchr(found->node_manager_address, ':') ? "[%s]:%d" : "%s:%d",
                 found->node_manager_address, found->node_manager_port);
        lc->file = file ? rc_strdup(file) : NULL;
        dash__log_send(lc);
        return;
    }
    char dir[PATH_MAX + 16];
    snprintf(dir, sizeof(dir), "%s/logs", a->session);
    if (file) {
        char path[PATH_MAX + 300];
        snprintf(path, sizeof(path), "%s/%s", dir, file);
        size_t size = 0;
        if (dash__read_file(path, DASH__LOG_TAIL, 1, &resp->body, &size) < 0) {
            rc_buf_free(&resp->body);
            resp->status = 404;
            rc_buf_puts(&resp->body, "404: no such log file on the head\n");
            return;
        }
        return;
    }
    resp->content_type = "application/json";
    rc_buf *b = &resp->body;
    rc_buf_puts(b, "{\"node_id\": ");
    dash__json_str(b, head);
    rc_buf_printf(b, ", \"is_head_node\": true, \"tail_bytes\": %d, \"files\": [", DASH__LOG_TAIL);
    DIR *d = opendir(dir);
    struct dirent *e;
    int first = 1;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[PATH_MAX + 300];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        rc_buf_puts(b, first ? "{\"name\": " : ", {\"name\": ");
        dash__json_str(b, e->d_name);
        rc_buf_printf(b, ", \"size\": %lld, \"mtime\": %lld}", (long long)st.st_size, (long long)st.st_mtime);
        first = 0;
    }
    if (d)
        closedir(d);
    rc_buf_puts(b, "], ");
    dash__log_nodes(a, b);
    rc_buf_puts(b, "}\n");
}

int dash_api_handle(dash_api *a, const http_request *req, http_response *resp)
{
    if (strncmp(req->path, "/api/", 5) && strcmp(req->path, "/api")) {
        if (strcmp(req->method, "GET") && strcmp(req->method, "HEAD")) {
            resp->status = 405;
            resp->headers = DASH__API_HEADERS;
            rc_buf_puts(&resp->body, "405: the dashboard's files are read with GET\n");
            return 1;
        }
        dash__serve_ui(a, req, resp);
        return 1;
    }
    resp->headers = DASH__API_HEADERS;
    static const char *const gets[] = {"/api/nodes",       "/api/actors", "/api/placement_groups",
                                       "/api/tasks/summary", "/api/market", "/api/timeseries", "/api/logs"};
    size_t which = sizeof(gets) / sizeof(gets[0]);
    for (size_t i = 0; i < sizeof(gets) / sizeof(gets[0]); i++)
        if (!strcmp(req->path, gets[i]))
            which = i;
    if (which == sizeof(gets) / sizeof(gets[0]))
        return 0;
    if (strcmp(req->method, "GET")) {
        resp->status = 405;
        rc_buf_printf(&resp->body, "405: %s is read with GET\n", req->path);
        return 1;
    }
    resp->content_type = "application/json";
    switch (which) {
    case 0:
        dash__nodes(a, &resp->body);
        break;
    case 1:
        dash__actors(a, &resp->body);
        break;
    case 2:
        dash__pgs(a, &resp->body);
        break;
    case 3:
        dash__tasks(a, &resp->body);
        break;
    case 4:
        dash__market_json(a, &resp->body);
        break;
    case 5:
        dash__timeseries(a, &resp->body);
        break;
    default:
        resp->content_type = "text/plain; charset=utf-8";
        dash__logs(a, req, resp);
        break;
    }
    return 1;
}
