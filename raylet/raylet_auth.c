/*
 * The raylet's credentials (ARCHITECTURE §14): joining a secure cluster, and handing this
 * node's processes what they need to speak TLS (LocalRayletService.GetCredentials).
 *
 * Joining (raylet_auth_join, at start, before any server or GCS client exists): two keys
 * are made here and never leave the host: the node's (mutual TLS to the GCS and to other
 * raylets) and the one the node's workers serve CoreWorkerService with. The CA comes from
 * --ca-cert, or from the GCS's own TLS handshake, pinned by --ca-cert-hash before anything
 * is trusted. AuthService.JoinNode then trades the join token and the two CSRs for the
 * certificates (CN "node:<id>", "worker:<id>") over TLS that trusts only that CA, and the
 * process-wide security becomes mutual TLS with the node certificate: every server and
 * client the raylet creates afterwards uses it (the unix socket stays plaintext; rpc does
 * that). The join token's labels are forced on the node. With --insecure: plaintext, and a
 * loud warning.
 *
 * Job tokens (GetCredentials with a job ID): fetched from the GCS with
 * AuthService.IssueJobToken, which a node may ask for any job the GCS knows and that has
 * not finished; one token per job is cached until shortly before it expires or the job
 * finishes (then the GCS is asked again, and decides), and
 * concurrent requests for one job share one GCS call. Callers wait (the reply is sent
 * later); a caller that goes away is answered CANCELLED and forgotten.
 *
 * Memory: the raylet_auth state is owned by the raylet and freed by raylet_auth_cleanup,
 * after the rpc context has drained (no GCS callback can then still arrive). Every PEM here
 * is owned by that state.
 *
 * Loop thread only (raylet_auth_join: before the loop runs).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "auth.h"
#include "raylet_int.h"
#include "rayc_auth.pb-c.h"
#include "rayc_raylet.pb-c.h"
#include "rc_alloc.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_list.h"
#include "rc_log.h"
#include "rc_time.h"

enum {
    RAYLET__JOIN_RETRY_MS = 500,
    RAYLET__JOIN_CALL_TIMEOUT_MS = 5000,
    RAYLET__TOKEN_REFRESH_S = 60, /* a cached job token this close to expiry is fetched again */
};

typedef struct raylet__waiter raylet__waiter;
typedef struct raylet__job_token raylet__job_token;

/* A GetCredentials call waiting for its job's token. */
struct raylet__waiter {
    rpc_call *call;
    rc_list link; /* on its job token's waiters */
};

/* One job's token: cached, or being fetched for the callers waiting on it. */
struct raylet__job_token {
    struct raylet_auth *a;
    uint8_t job_id[RC_JOB_ID_SIZE];
    char *token;        /* NULL until fetched */
    int64_t expires_at; /* unix seconds; 0: never */
    int fetching;       /* an IssueJobToken call is out */
    int finished;       /* the job finished while fetching: forget the token once answered */
    rc_list waiters; /* raylet__waiter.link */
};

struct raylet_auth {
    raylet *r;
    int insecure;
    char *ca_pem, *node_cert_pem, *node_key_pem, *worker_cert_pem, *worker_key_pem;
    auth_verifier *verifier; /* reads cached job tokens' expiry */
    rc_map jobs;             /* job id -> raylet__job_token */
};

/* Private keys and tokens do not outlive their use in freed memory. */
static void raylet__free_secret(char *secret)
{
    if (secret)
        explicit_bzero(secret, strlen(secret));
    rc_free(secret);
}

/* ---- joining ------------------------------------------------------------------------ */

static int raylet__join_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int raylet__join_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return RC_EAUTH;
}

/* The CA to trust: --ca-cert (checked against --ca-cert-hash when both are given), else
 * the GCS's chain pinned by --ca-cert-hash. Retries an unreachable GCS until deadline_ms. */
static int raylet__get_ca(raylet *r, int64_t deadline_ms, char **ca_pem, char *err, size_t errlen)
{
    const raylet_options *o = &r->opts;
    char e[512];
    if (o->ca_cert_file) {
        char *pem = NULL;
        int rc = auth_read_file(o->ca_cert_file, &pem);
        if (rc < 0)
            return raylet__join_fail(err, errlen, "cannot read the CA certificate --ca-cert %s: %s", o->ca_cert_file,
                                     rc_strerror(rc));
        char hash[AUTH_CA_HASH_MAX];
        if (auth_ca_hash(pem, hash, sizeof(hash)) < 0) {
            rc_free(pem);
            return raylet__join_fail(err, errlen, "--ca-cert %s holds no PEM certificate", o->ca_cert_file);
        }
        if (o->ca_cert_hash && !auth_ca_hash_equal(hash, o->ca_cert_hash)) {
            rc_free(pem);
            return raylet__join_fail(err, errlen, "the CA in --ca-cert %s is %s, not the pinned --ca-cert-hash %s",
                                     o->ca_cert_file, hash, o->ca_cert_hash);
        }
        *ca_pem = pem;
        return 0;
    }
    int warned = 0;
    for (;;) {
        char *chain = NULL;
        int rc = auth_fetch_peer_chain(o->gcs_address, RAYLET__JOIN_CALL_TIMEOUT_MS, &chain, e, sizeof(e));
        if (rc == 0) {
            rc = auth_pin_ca(chain, o->ca_cert_hash, ca_pem, e, sizeof(e));
            rc_free(chain);
            if (rc < 0)
                return raylet__join_fail(err, errlen, "refusing to join the GCS at %s: %s", o->gcs_address, e);
            return 0;
        }
        if (rc != RC_EUNAVAIL || rc_mono_ms() >= deadline_ms)
            return raylet__join_fail(err, errlen,
                                     "cannot reach the GCS at %s to read its CA certificate: %s (is the GCS running, "
                                     "and with TLS? a GCS started with --insecure needs raylets started with "
                                     "--insecure)",
                                     o->gcs_address, e);
        if (!warned++)
            RC_WARN("raylet: cannot read the CA certificate of the GCS at %s yet (%s); retrying for up to %lld s",
                    o->gcs_address, e, (long long)rc_cfg.gcs_rpc_server_reconnect_timeout_s);
        rc_sleep_ms(RAYLET__JOIN_RETRY_MS);
    }
}

/* AuthService.JoinNode over TLS trusting ca_pem only. 0 with *out (free with
 * rpc_msg_free), or RC_EAUTH with err: refused, or unreachable until deadline_ms. */
static int raylet__join_call(raylet *r, const char *ca_pem, const char *node_csr, const char *worker_csr,
                             int64_t deadline_ms, Rayc__Rpc__JoinNodeReply **out, char *err, size_t errlen)
{
    rpc_security trust_ca = {.ca_cert_pem = ca_pem};
    rpc_client_options copts = {.security = &trust_ca};
    rpc_client *cli;
    if (rpc_client_create(r->rpc, r->opts.gcs_address, &copts, &cli) < 0)
        return raylet__join_fail(err, errlen, "bad GCS address %s", r->opts.gcs_address);
    Rayc__Rpc__JoinNodeRequest req = RAYC__RPC__JOIN_NODE_REQUEST__INIT;
    req.join_token = r->opts.join_token;
    req.node_id.data = r->node_id;
    req.node_id.len = RC_NODE_ID_SIZE;
    req.node_ip_address = r->spec.ip;
    req.node_csr_pem = (char *)node_csr;
    req.worker_csr_pem = (char *)worker_csr;
    int rc, warned = 0;
    for (;;) {
        ProtobufCMessage *reply = NULL;
        char e[512] = "";
        int code = rpc_client_call_sync(cli, &rayc__rpc__auth_service__descriptor, "JoinNode", &req.base,
                                        RAYLET__JOIN_CALL_TIMEOUT_MS, &reply, e, sizeof(e));
        if (code == GRPC_STATUS_OK) {
            Rayc__Rpc__JoinNodeReply *jr = (Rayc__Rpc__JoinNodeReply *)reply;
            if (jr->status && jr->status->code != 0) {
                rc = raylet__join_fail(err, errlen, "the GCS at %s refused to let this node join: %s",
                                       r->opts.gcs_address, jr->status->message ? jr->status->message : "");
                rpc_msg_free(reply);
                break;
            }
            *out = jr;
            rc = 0;
            break;
        }
        int retryable = code == GRPC_STATUS_UNAVAILABLE || code == GRPC_STATUS_DEADLINE_EXCEEDED;
        if (!retryable || rc_mono_ms() >= deadline_ms) {
            if (retryable)
                rc = raylet__join_fail(err, errlen, "cannot reach the GCS at %s to join: %s (%s)", r->opts.gcs_address,
                                       e, rpc_code_name((grpc_status_code)code));
            else
                rc = raylet__join_fail(err, errlen, "the GCS at %s refused JoinNode: %s (%s)", r->opts.gcs_address, e,
                                       rpc_code_name((grpc_status_code)code));
            break;
        }
        if (!warned++)
            RC_WARN("raylet: the GCS at %s does not answer JoinNode yet (%s); retrying", r->opts.gcs_address, e);
        rc_sleep_ms(RAYLET__JOIN_RETRY_MS);
    }
    rpc_client_destroy(cli);
    return rc;
}

/* The join token's labels go on the node, replacing labels of the same key from --labels;
 * the ray.io/ labels the raylet sets itself stay. */
static void raylet__apply_labels(raylet *r, const Rayc__Rpc__JoinNodeReply *jr)
{
    raylet_node_spec *s = &r->spec;
    for (size_t i = 0; i < jr->n_labels; i++) {
        const char *key = jr->labels[i]->key, *value = jr->labels[i]->value ? jr->labels[i]->value : "";
        if (!key || !*key)
            continue;
        if (!strncmp(key, "ray.io/", 7)) {
            RC_WARN("raylet: ignoring the join token's label %s: ray.io/ labels are the raylet's", key);
            continue;
        }
        size_t j = 0;
        while (j < s->n_labels && strcmp(s->labels[j].key, key) != 0)
            j++;
        if (j == s->n_labels) {
            if (s->n_labels == RAYLET_MAX_ALL_LABELS) {
                RC_WARN("raylet: too many labels; the join token's label %s is dropped", key);
                continue;
            }
            s->labels[s->n_labels++].key = rc_strdup(key);
        } else {
            rc_free(s->labels[j].value);
        }
        s->labels[j].value = rc_strdup(value);
        RC_INFO("raylet: label %s=%s from the join token", key, value);
    }
}

/* --auth-dir: the credentials as files (keys 0600), for tools and for restarts by hand. */
static int raylet__write_files(raylet_auth *a, const char *dir, char *err, size_t errlen)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return raylet__join_fail(err, errlen, "cannot create --auth-dir %s: %s", dir, strerror(errno));
    const struct {
        const char *name, *content;
    } files[] = {
        {"ca.crt", a->ca_pem},           {"node.key", a->node_key_pem},     {"node.crt", a->node_cert_pem},
        {"worker.key", a->worker_key_pem}, {"worker.crt", a->worker_cert_pem},
    };
    for (size_t i = 0; i < RC_ARRAY_LEN(files); i++) {
        char path[4200];
        snprintf(path, sizeof(path), "%s/%s", dir, files[i].name);
        int rc = auth_write_secret(path, files[i].content);
        if (rc < 0)
            return raylet__join_fail(err, errlen, "cannot write %s: %s", path, rc_strerror(rc));
    }
    return 0;
}

static int raylet__join_secure(raylet *r, raylet_auth *a, char *err, size_t errlen)
{
    char cn[RC_ID_HEX_MAX + 16], e[512];
    char *node_csr = NULL, *worker_csr = NULL;
    int rc = auth_key_create(&a->node_key_pem);
    if (rc == 0)
        rc = auth_key_create(&a->worker_key_pem);
    if (rc == 0) {
        snprintf(cn, sizeof(cn), "node:%s", r->node_id_hex);
        rc = auth_csr_create(a->node_key_pem, cn, &node_csr);
    }
    if (rc == 0) {
        snprintf(cn, sizeof(cn), "worker:%s", r->node_id_hex);
        rc = auth_csr_create(a->worker_key_pem, cn, &worker_csr);
    }
    if (rc < 0) {
        rc_free(node_csr);
        return raylet__join_fail(err, errlen, "cannot make this node's keys and CSRs: %s", rc_strerror(rc));
    }
    int64_t deadline = rc_mono_ms() + rc_cfg.gcs_rpc_server_reconnect_timeout_s * 1000;
    Rayc__Rpc__JoinNodeReply *jr = NULL;
    rc = raylet__get_ca(r, deadline, &a->ca_pem, err, errlen);
    if (rc == 0)
        rc = raylet__join_call(r, a->ca_pem, node_csr, worker_csr, deadline, &jr, err, errlen);
    rc_free(node_csr);
    rc_free(worker_csr);
    if (rc < 0)
        return rc;
    /* Certificates the pinned CA did not sign would only fail later, in every handshake. */
    if (!jr->node_cert_pem || !jr->worker_cert_pem || auth_cert_verify(a->ca_pem, jr->node_cert_pem, e, sizeof(e)) < 0 ||
        auth_cert_verify(a->ca_pem, jr->worker_cert_pem, e, sizeof(e)) < 0) {
        rpc_msg_free(&jr->base);
        return raylet__join_fail(err, errlen, "the GCS at %s answered JoinNode with certificates its CA did not sign",
                                 r->opts.gcs_address);
    }
    a->node_cert_pem = rc_strdup(jr->node_cert_pem);
    a->worker_cert_pem = rc_strdup(jr->worker_cert_pem);
    raylet__apply_labels(r, jr);
    rpc_msg_free(&jr->base);

    rpc_security sec = {
        .ca_cert_pem = a->ca_pem, .cert_pem = a->node_cert_pem, .key_pem = a->node_key_pem, .present_cert = 1};
    if ((rc = rpc_security_set(&sec, e, sizeof(e))) < 0)
        return raylet__join_fail(err, errlen, "cannot use this node's certificate: %s", e);
    if ((rc = auth_verifier_create(a->ca_pem, &a->verifier)) < 0)
        return raylet__join_fail(err, errlen, "cannot read the cluster CA's key: %s", rc_strerror(rc));
    if (r->opts.auth_dir && (rc = raylet__write_files(a, r->opts.auth_dir, err, errlen)) < 0)
        return rc;
    RC_INFO("raylet: node %s joined the cluster of the GCS at %s (mutual TLS from now on)%s%s", r->node_id_hex,
            r->opts.gcs_address, r->opts.auth_dir ? "; credentials in " : "", r->opts.auth_dir ? r->opts.auth_dir : "");
    return 0;
}

int raylet_auth_join(raylet *r, char *err, size_t errlen)
{
    raylet_auth *a = RC_NEW(raylet_auth);
    a->r = r;
    rc_map_init(&a->jobs);
    r->auth = a;
    if (!r->opts.insecure)
        return raylet__join_secure(r, a, err, errlen);
    a->insecure = 1;
    rpc_security sec = {.insecure = 1};
    char e[256];
    if (rpc_security_set(&sec, e, sizeof(e)) < 0)
        return raylet__join_fail(err, errlen, "%s", e);
    static const char warning[] =
        "WARNING: this raylet runs with --insecure: plaintext RPC and no credentials. Anyone who can reach "
        "its port can run code on this host. Use it only for a development cluster on loopback.";
    RC_WARN("raylet: %s", warning);
    fprintf(stderr, "rayc-raylet: %s\n", warning);
    return 0;
}

/* ---- job tokens --------------------------------------------------------------------- */

static void raylet__reply_credentials(raylet_auth *a, rpc_call *call, const char *job_token)
{
    Rayc__Rpc__GetCredentialsReply reply = RAYC__RPC__GET_CREDENTIALS_REPLY__INIT;
    reply.insecure = a->insecure;
    if (!a->insecure) {
        reply.ca_cert_pem = a->ca_pem;
        reply.server_cert_pem = a->worker_cert_pem;
        reply.server_key_pem = a->worker_key_pem;
    }
    if (job_token)
        reply.job_token = (char *)job_token;
    rpc_reply(call, &reply.base);
}

static void raylet__waiter_unlink(raylet__waiter *w)
{
    rc_list_remove(&w->link);
}

static void raylet__waiter_cancelled(rpc_call *call, void *arg)
{
    raylet__waiter *w = arg;
    raylet__waiter_unlink(w);
    rc_free(w);
    rpc_reply_status(call, GRPC_STATUS_CANCELLED, "the credentials request was cancelled");
}

/* 1 if jt holds a token that is good for a while yet. */
static int raylet__token_fresh(const raylet__job_token *jt)
{
    return jt->token && (!jt->expires_at || jt->expires_at - (int64_t)time(NULL) > RAYLET__TOKEN_REFRESH_S);
}

static void raylet__token_issued(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    raylet__job_token *jt = arg;
    raylet_auth *a = jt->a;
    jt->fetching = 0;
    char hex[RC_ID_HEX_MAX], why[600] = "";
    grpc_status_code code = GRPC_STATUS_OK;
    rc_id_hex(jt->job_id, RC_JOB_ID_SIZE, hex);
    const Rayc__Rpc__IssueJobTokenReply *ir = (const void *)reply;
    if (st->code != GRPC_STATUS_OK) {
        /* The GCS's ACL refusal is a refusal too; anything else: it could not be asked. */
        int refused = st->code == GRPC_STATUS_PERMISSION_DENIED || st->code == GRPC_STATUS_UNAUTHENTICATED;
        code = refused ? GRPC_STATUS_PERMISSION_DENIED : GRPC_STATUS_UNAVAILABLE;
        snprintf(why, sizeof(why), "%s a token for job %s: %s",
                 refused ? "the GCS refused" : "cannot ask the GCS for", hex, st->message);
    } else if (ir->status && ir->status->code != 0) {
        code = GRPC_STATUS_PERMISSION_DENIED;
        snprintf(why, sizeof(why), "%s", ir->status->message && *ir->status->message ? ir->status->message
                                                                                      : "the GCS refused a job token");
    } else if (!ir->token || !*ir->token) {
        code = GRPC_STATUS_UNAVAILABLE;
        snprintf(why, sizeof(why), "the GCS answered IssueJobToken for job %s without a token", hex);
    } else {
        rc_free(jt->token);
        jt->token = rc_strdup(ir->token);
        auth_claims claims;
        char e[200];
        jt->expires_at = a->verifier && auth_token_verify(a->verifier, jt->token, (int64_t)time(NULL), &claims, e,
                                                          sizeof(e)) == 0
                             ? claims.expires_at
                             : 0;
    }
    rpc_msg_free(reply);
    if (code != GRPC_STATUS_OK)
        RC_WARN("raylet: job token for job %s: %s", hex, why);
    while (!rc_list_empty(&jt->waiters)) {
        raylet__waiter *w = rc_list_entry(rc_list_first(&jt->waiters), raylet__waiter, link);
        raylet__waiter_unlink(w);
        if (code == GRPC_STATUS_OK)
            raylet__reply_credentials(a, w->call, jt->token);
        else
            rpc_reply_status(w->call, code, "%s", why);
        rc_free(w);
    }
    /* Refused: ask again next time (the job may exist by then). Finished: the GCS decides
     * whether the job's processes still get tokens. */
    if (!jt->token || jt->finished) {
        rc_map_remove(&a->jobs, jt->job_id, RC_JOB_ID_SIZE);
        raylet__free_secret(jt->token);
        rc_free(jt);
    }
}

void raylet_auth_job_finished(raylet *r, const uint8_t job_id[RC_JOB_ID_SIZE])
{
    raylet_auth *a = r->auth;
    raylet__job_token *jt = a ? rc_map_get(&a->jobs, job_id, RC_JOB_ID_SIZE) : NULL;
    if (!jt)
        return;
    if (jt->fetching) {
        jt->finished = 1;
        return;
    }
    rc_map_remove(&a->jobs, job_id, RC_JOB_ID_SIZE);
    raylet__free_secret(jt->token);
    rc_free(jt);
}

void raylet_auth_credentials(raylet *r, rpc_call *call, const uint8_t *job_id)
{
    raylet_auth *a = r->auth;
    if (!job_id || a->insecure)
        return raylet__reply_credentials(a, call, NULL);
    raylet__job_token *jt = rc_map_get(&a->jobs, job_id, RC_JOB_ID_SIZE);
    if (jt && raylet__token_fresh(jt))
        return raylet__reply_credentials(a, call, jt->token);
    if (!jt) {
        jt = RC_NEW(raylet__job_token);
        rc_list_init(&jt->waiters);
        jt->a = a;
        memcpy(jt->job_id, job_id, RC_JOB_ID_SIZE);
        rc_map_put(&a->jobs, jt->job_id, RC_JOB_ID_SIZE, jt);
    }
    if (!jt->fetching) {
        Rayc__Rpc__IssueJobTokenRequest req = RAYC__RPC__ISSUE_JOB_TOKEN_REQUEST__INIT;
        req.job_id.data = jt->job_id;
        req.job_id.len = RC_JOB_ID_SIZE;
        if (!r->gcs || rpc_client_call(gcs_client_rpc(r->gcs), &rayc__rpc__auth_service__descriptor, "IssueJobToken",
                                       &req.base, rc_cfg.gcs_rpc_timeout_ms, raylet__token_issued, jt) < 0) {
            if (!jt->token) {
                rc_map_remove(&a->jobs, jt->job_id, RC_JOB_ID_SIZE);
                rc_free(jt);
            }
            return rpc_reply_status(call, GRPC_STATUS_UNAVAILABLE, "cannot ask the GCS for a job token");
        }
        jt->fetching = 1;
    }
    raylet__waiter *w = RC_NEW(raylet__waiter);
    w->call = call;
    rc_list_insert_head(&jt->waiters, &w->link);
    rpc_call_on_cancel(call, raylet__waiter_cancelled, w);
}

static void raylet__job_token_free(void *v)
{
    raylet__job_token *jt = v;
    while (!rc_list_empty(&jt->waiters)) { /* cannot happen after the drain; free what is left regardless */
        raylet__waiter *w = rc_list_entry(rc_list_first(&jt->waiters), raylet__waiter, link);
        rc_list_remove(&w->link);
        rc_free(w);
    }
    raylet__free_secret(jt->token);
    rc_free(jt);
}

void raylet_auth_cleanup(raylet *r)
{
    raylet_auth *a = r->auth;
    if (!a)
        return;
    rc_map_destroy(&a->jobs, raylet__job_token_free);
    if (a->verifier)
        auth_verifier_destroy(a->verifier);
    rc_free(a->ca_pem);
    rc_free(a->node_cert_pem);
    raylet__free_secret(a->node_key_pem);
    rc_free(a->worker_cert_pem);
    raylet__free_secret(a->worker_key_pem);
    rc_free(a);
    r->auth = NULL;
}
