/*
 * The GCS's security state at start (gcs/gcs_auth_manager.c), without the network: a
 * manager loads on a memory store and an auth directory the way rayc-gcs does, and the
 * cases look at what it wrote (files and their modes, the AUTH table's records) and what a
 * second start on the same store makes of them: the CA is kept across restarts even with a
 * fresh directory, an admin token in the directory is kept when valid and replaced when
 * not, a CA an admin put in the directory is adopted, half a CA is refused, and a node that
 * joined gets its join token's labels at registration unless it was revoked. The AuthService
 * calls themselves need a server and are covered by the integration tests.
 */
#define _GNU_SOURCE /* mkdtemp */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "gcs_int.h"
#include "rc_alloc.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_time.h"
#include "redis_server.h"
#include "unit.h"

/* One GCS start: the server struct the manager points into, and the load's outcome. */
typedef struct start {
    gcs_server gcs;
    gcs_auth_manager *am;
    int calls;
    int rc;
} start;

static void on_loaded(gcs_server *gcs, int rc)
{
    start *s = (start *)gcs; /* gcs is the first member */
    s->calls++;
    s->rc = rc;
}

/* Loads a manager on st with auth directory dir (NULL: insecure). Returns the load's rc; the
 * caller frees s->am with gcs_auth_manager_free. */
static int load(start *s, gcs_store *st, const char *dir)
{
    memset(s, 0, sizeof(*s));
    s->gcs.store = st;
    s->gcs.opts.auth_dir = dir;
    s->gcs.opts.insecure = dir == NULL;
    snprintf(s->gcs.self_ip, sizeof(s->gcs.self_ip), "127.0.0.1");
    s->am = gcs_auth_manager_new(&s->gcs);
    s->gcs.auth = s->am;
    int rc = gcs_auth_manager_load(s->am, on_loaded);
    if (rc < 0) {
        CU_ASSERT_EQUAL(s->calls, 0);
        return rc;
    }
    CU_ASSERT_EQUAL(s->calls, 1); /* the memory store answers at once */
    return s->rc;
}

static char *make_dir(void)
{
    char tmpl[] = "/tmp/rayc_test_auth_XXXXXX";
    char *d = mkdtemp(tmpl);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    return rc_strdup(d);
}

/* Removes a temporary directory made by a test, and frees its name. */
static void remove_dir(char *dir)
{
    harness_remove_dir(dir);
    rc_free(dir);
}

/* The content of dir/name (rc_free), or NULL. */
static char *read_in(const char *dir, const char *name)
{
    char path[512], *out = NULL;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return auth_read_file(path, &out) == 0 ? out : NULL;
}

static int mode_of(const char *dir, const char *name)
{
    char path[512];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return stat(path, &st) == 0 ? (int)(st.st_mode & 0777) : -1;
}

static void write_in(const char *dir, const char *name, const char *content)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    CU_ASSERT_EQUAL(auth_write_secret(path, content), 0);
}

/* ---- reading the AUTH table (the memory store answers before returning) ---------------- */

typedef struct table {
    int calls;
    size_t n;
    size_t n_tokens, n_joins, n_nodes;
    int has_ca;
    char ca_cert[4096];
} table;

static void on_table(int rc, const gcs_store_item *items, size_t n, void *arg)
{
    table *t = arg;
    t->calls++;
    CU_ASSERT_EQUAL(rc, 0);
    t->n = n;
    for (size_t i = 0; i < n; i++) {
        const char *k = items[i].key;
        if (items[i].klen == 2 && memcmp(k, "ca", 2) == 0) {
            Rayc__Rpc__AuthCaRecord *ca =
                rayc__rpc__auth_ca_record__unpack(NULL, items[i].vlen, items[i].value);
            CU_ASSERT_PTR_NOT_NULL_FATAL(ca);
            CU_ASSERT_PTR_NOT_NULL(strstr(ca->key_pem, "PRIVATE KEY"));
            CU_ASSERT_TRUE(ca->created_at > 0);
            snprintf(t->ca_cert, sizeof(t->ca_cert), "%s", ca->cert_pem);
            t->has_ca = 1;
            rpc_msg_free(&ca->base);
        } else if (items[i].klen > 6 && memcmp(k, "token:", 6) == 0) {
            Rayc__Rpc__AuthTokenRecord *rec =
                rayc__rpc__auth_token_record__unpack(NULL, items[i].vlen, items[i].value);
            CU_ASSERT_PTR_NOT_NULL_FATAL(rec);
            CU_ASSERT_EQUAL(items[i].klen, 6 + strlen(rec->token_id));
            CU_ASSERT_EQUAL(memcmp(k + 6, rec->token_id, strlen(rec->token_id)), 0);
            CU_ASSERT_EQUAL(rec->kind, AUTH_TOKEN_ADMIN);
            CU_ASSERT_FALSE(rec->revoked);
            t->n_tokens++;
            rpc_msg_free(&rec->base);
        } else if (items[i].klen > 5 && memcmp(k, "join:", 5) == 0) {
            t->n_joins++;
        } else if (items[i].klen > 5 && memcmp(k, "node:", 5) == 0) {
            t->n_nodes++;
        }
    }
}

static table read_table(gcs_store *st)
{
    table t;
    memset(&t, 0, sizeof(t));
    CU_ASSERT_EQUAL(st->ops->get_all(st, GCS_TABLE_AUTH, on_table, &t), 0);
    CU_ASSERT_EQUAL(t.calls, 1);
    return t;
}

static void on_put(int rc, int64_t n, void *arg)
{
    (void)n;
    *(int *)arg = rc;
}

static void put_record(gcs_store *st, const char *key, const ProtobufCMessage *rec)
{
    size_t len;
    uint8_t *bytes = rpc_msg_pack(rec, &len);
    int rc = -1;
    CU_ASSERT_EQUAL(st->ops->put(st, GCS_TABLE_AUTH, key, strlen(key), bytes, len, 1, on_put, &rc), 0);
    CU_ASSERT_EQUAL(rc, 0);
    rc_free(bytes);
}

/* The claims of token, checked against ca_cert; 0 or the verifier's error. */
static int verify(const char *ca_cert, const char *token, auth_claims *c)
{
    auth_verifier *v = NULL;
    char err[160];
    int rc = auth_verifier_create(ca_cert, &v);
    if (rc == 0)
        rc = auth_token_verify(v, token, rc_wall_ms() / 1000, c, err, sizeof(err));
    auth_verifier_destroy(v);
    return rc;
}

/* ---- cases ----------------------------------------------------------------------------- */

static void test_first_start_creates_everything(void)
{
    gcs_store *st = gcs_store_memory_new();
    char *dir = make_dir();
    start s;
    CU_ASSERT_EQUAL_FATAL(load(&s, st, dir), 0);
    char *ca = read_in(dir, "ca.crt"), *key = read_in(dir, "ca.key");
    char *token = read_in(dir, "auth_token");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ca);
    CU_ASSERT_PTR_NOT_NULL_FATAL(key);
    CU_ASSERT_PTR_NOT_NULL_FATAL(token);
    CU_ASSERT_EQUAL(mode_of(dir, "ca.crt"), 0644);
    CU_ASSERT_EQUAL(mode_of(dir, "ca.key"), 0600);
    CU_ASSERT_EQUAL(mode_of(dir, "auth_token"), 0600);
    char cn[128];
    CU_ASSERT_EQUAL(auth_cert_cn(ca, cn, sizeof(cn)), 0);
    CU_ASSERT_STRING_EQUAL(cn, "rayc cluster CA");
    /* The admin token is the CA's, an admin token, and never expires. */
    auth_claims c;
    CU_ASSERT_EQUAL(verify(ca, token, &c), 0);
    CU_ASSERT_EQUAL(c.kind, AUTH_TOKEN_ADMIN);
    CU_ASSERT_EQUAL(c.expires_at, 0);
    /* Stored: the CA (the same as the file) and the admin token's record. */
    table t = read_table(st);
    CU_ASSERT_TRUE(t.has_ca);
    CU_ASSERT_STRING_EQUAL(t.ca_cert, ca);
    CU_ASSERT_EQUAL(t.n_tokens, 1);
    CU_ASSERT_EQUAL(t.n, 2);
    /* The process's TLS identity is the GCS's certificate, issued by that CA. */
    const rpc_security *sec = rpc_security_get();
    CU_ASSERT_FALSE(sec->insecure);
    CU_ASSERT_TRUE(sec->present_cert);
    CU_ASSERT_EQUAL(auth_cert_cn(sec->cert_pem, cn, sizeof(cn)), 0);
    CU_ASSERT_STRING_EQUAL(cn, "gcs");
    char err[160];
    CU_ASSERT_EQUAL(auth_cert_verify(ca, sec->cert_pem, err, sizeof(err)), 0);
    rc_free(ca);
    rc_free(key);
    rc_free(token);
    gcs_auth_manager_free(s.am);
    st->ops->destroy(st);
    remove_dir(dir);
}

static void test_restart_keeps_ca_and_token(void)
{
    gcs_store *st = gcs_store_memory_new();
    char *dir = make_dir(), *fresh = make_dir();
    start s;
    CU_ASSERT_EQUAL_FATAL(load(&s, st, dir), 0);
    gcs_auth_manager_free(s.am);
    char *ca = read_in(dir, "ca.crt"), *token = read_in(dir, "auth_token");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ca);
    CU_ASSERT_PTR_NOT_NULL_FATAL(token);

    /* Same store, same directory: nothing changes. */
    CU_ASSERT_EQUAL_FATAL(load(&s, st, dir), 0);
    gcs_auth_manager_free(s.am);
    char *ca2 = read_in(dir, "ca.crt"), *token2 = read_in(dir, "auth_token");
    CU_ASSERT_STRING_EQUAL(ca2, ca);
    CU_ASSERT_STRING_EQUAL(token2, token);
    CU_ASSERT_EQUAL(read_table(st).n_tokens, 1);

    /* Same store (Redis), a fresh session directory: the CA comes from storage, a new admin
     * token is minted with it; the earlier one stays valid until the admin rotates. */
    CU_ASSERT_EQUAL_FATAL(load(&s, st, fresh), 0);
    gcs_auth_manager_free(s.am);
    char *ca3 = read_in(fresh, "ca.crt"), *token3 = read_in(fresh, "auth_token");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ca3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(token3);
    CU_ASSERT_STRING_EQUAL(ca3, ca);
    CU_ASSERT_STRING_NOT_EQUAL(token3, token);
    auth_claims c;
    CU_ASSERT_EQUAL(verify(ca, token3, &c), 0);
    CU_ASSERT_EQUAL(read_table(st).n_tokens, 2);

    /* A directory whose CA is not the stored one gets the stored one back, and its admin
     * token (made with the other CA) is replaced. */
    char *other_key = NULL, *other_cert = NULL, *other_token = NULL;
    CU_ASSERT_EQUAL_FATAL(auth_ca_create("another CA", 30, &other_key, &other_cert), 0);
    auth_claims oc = {.kind = AUTH_TOKEN_ADMIN, .issued_at = rc_wall_ms() / 1000};
    CU_ASSERT_EQUAL_FATAL(auth_token_mint(other_key, &oc, &other_token), 0);
    write_in(fresh, "ca.crt", other_cert);
    write_in(fresh, "ca.key", other_key);
    write_in(fresh, "auth_token", other_token);
    CU_ASSERT_EQUAL_FATAL(load(&s, st, fresh), 0);
    gcs_auth_manager_free(s.am);
    char *ca4 = read_in(fresh, "ca.crt"), *token4 = read_in(fresh, "auth_token");
    CU_ASSERT_STRING_EQUAL(ca4, ca);
    CU_ASSERT_STRING_NOT_EQUAL(token4, other_token);
    CU_ASSERT_EQUAL(verify(ca, token4, &c), 0);

    rc_free(ca), rc_free(token), rc_free(ca2), rc_free(token2), rc_free(ca3), rc_free(token3);
    rc_free(ca4), rc_free(token4), rc_free(other_key), rc_free(other_cert), rc_free(other_token);
    st->ops->destroy(st);
    remove_dir(dir);
    remove_dir(fresh);
}

static void test_adopts_ca_from_files(void)
{
    gcs_store *st = gcs_store_memory_new();
    char *dir = make_dir();
    char *key = NULL, *cert = NULL, *token = NULL;
    CU_ASSERT_EQUAL_FATAL(auth_ca_create("harness CA", 30, &key, &cert), 0);
    write_in(dir, "ca.crt", cert);
    write_in(dir, "ca.key", key);
    /* An admin token the harness minted itself with that CA is kept and remembered. */
    auth_claims c = {.kind = AUTH_TOKEN_ADMIN, .issued_at = rc_wall_ms() / 1000};
    CU_ASSERT_EQUAL_FATAL(auth_token_mint(key, &c, &token), 0);
    write_in(dir, "auth_token", token);
    start s;
    CU_ASSERT_EQUAL_FATAL(load(&s, st, dir), 0);
    gcs_auth_manager_free(s.am);
    char *ca_now = read_in(dir, "ca.crt"), *token_now = read_in(dir, "auth_token");
    CU_ASSERT_STRING_EQUAL(ca_now, cert);
    CU_ASSERT_STRING_EQUAL(token_now, token);
    CU_ASSERT_EQUAL(mode_of(dir, "ca.crt"), 0644);
    table t = read_table(st);
    CU_ASSERT_TRUE(t.has_ca);
    CU_ASSERT_STRING_EQUAL(t.ca_cert, cert);
    CU_ASSERT_EQUAL(t.n_tokens, 1);

    /* A job token is not an admin token: replaced. Garbage too. */
    auth_claims jc = {.kind = AUTH_TOKEN_JOB, .issued_at = rc_wall_ms() / 1000, .job_id = {1, 0, 0, 0}};
    char *job_token = NULL;
    CU_ASSERT_EQUAL_FATAL(auth_token_mint(key, &jc, &job_token), 0);
    const char *bad[] = {job_token, "not a token\n"};
    for (size_t i = 0; i < 2; i++) {
        write_in(dir, "auth_token", bad[i]);
        CU_ASSERT_EQUAL_FATAL(load(&s, st, dir), 0);
        gcs_auth_manager_free(s.am);
        char *now = read_in(dir, "auth_token");
        auth_claims got;
        CU_ASSERT_STRING_NOT_EQUAL(now, bad[i]);
        CU_ASSERT_EQUAL(verify(cert, now, &got), 0);
        CU_ASSERT_EQUAL(got.kind, AUTH_TOKEN_ADMIN);
        rc_free(now);
    }
    rc_free(job_token);
    rc_free(ca_now), rc_free(token_now), rc_free(key), rc_free(cert), rc_free(token);
    st->ops->destroy(st);
    remove_dir(dir);
}

static void test_half_a_ca_is_refused(void)
{
    gcs_store *st = gcs_store_memory_new();
    char *dir = make_dir();
    char *key = NULL, *cert = NULL;
    CU_ASSERT_EQUAL_FATAL(auth_ca_create("harness CA", 30, &key, &cert), 0);
    write_in(dir, "ca.crt", cert);
    start s;
    CU_ASSERT_EQUAL(load(&s, st, dir), RC_EINVAL);
    gcs_auth_manager_free(s.am);
    CU_ASSERT_EQUAL(read_table(st).n, 0); /* nothing stored */
    CU_ASSERT_PTR_NULL(read_in(dir, "auth_token"));
    /* A directory that is a file. */
    char path[512];
    snprintf(path, sizeof(path), "%s/ca.crt", dir);
    CU_ASSERT_EQUAL(load(&s, st, path), RC_EINVAL);
    gcs_auth_manager_free(s.am);
    rc_free(key), rc_free(cert);
    st->ops->destroy(st);
    remove_dir(dir);
}

static void test_insecure_holds_nothing(void)
{
    gcs_store *st = gcs_store_memory_new();
    start s;
    CU_ASSERT_EQUAL(load(&s, st, NULL), 0);
    CU_ASSERT_TRUE(rpc_security_get()->insecure);
    CU_ASSERT_EQUAL(read_table(st).n, 0);
    Ray__Rpc__GcsNodeInfo info = RAY__RPC__GCS_NODE_INFO__INIT;
    uint8_t id[RC_NODE_ID_SIZE] = {1};
    info.node_id.data = id;
    info.node_id.len = sizeof(id);
    char err[128];
    CU_ASSERT_EQUAL(gcs_auth_admit_node(s.am, &info, err, sizeof(err)), 0);
    gcs_auth_manager_free(s.am);
    st->ops->destroy(st);
}

/* A node record as JoinNode stores it, with one label. */
static void put_node(gcs_store *st, const uint8_t *id, const char *label_value, int revoked)
{
    Rayc__Rpc__AuthNodeRecord__LabelsEntry e = RAYC__RPC__AUTH_NODE_RECORD__LABELS_ENTRY__INIT;
    e.key = "market.lease";
    e.value = (char *)label_value;
    Rayc__Rpc__AuthNodeRecord__LabelsEntry *ep = &e;
    Rayc__Rpc__AuthNodeRecord rec = RAYC__RPC__AUTH_NODE_RECORD__INIT;
    rec.node_id.data = (uint8_t *)id;
    rec.node_id.len = RC_NODE_ID_SIZE;
    rec.join_token_id = "0123456789abcdef";
    rec.labels = &ep;
    rec.n_labels = 1;
    rec.revoked = revoked;
    char key[80], hex[RC_ID_HEX_MAX];
    snprintf(key, sizeof(key), "node:%s", rc_id_hex(id, RC_NODE_ID_SIZE, hex));
    put_record(st, key, &rec.base);
}

static const char *label_of(const Ray__Rpc__GcsNodeInfo *info, const char *key)
{
    for (size_t i = 0; i < info->n_labels; i++)
        if (strcmp(info->labels[i]->key, key) == 0)
            return info->labels[i]->value;
    return NULL;
}

static void test_join_labels_bind_the_node(void)
{
    gcs_store *st = gcs_store_memory_new();
    char *dir = make_dir();
    uint8_t joined[RC_NODE_ID_SIZE], revoked[RC_NODE_ID_SIZE], stranger[RC_NODE_ID_SIZE];
    memset(joined, 0xa1, sizeof(joined));
    memset(revoked, 0xb2, sizeof(revoked));
    memset(stranger, 0xc3, sizeof(stranger));
    put_node(st, joined, "lease-17", 0);
    put_node(st, revoked, "lease-18", 1);
    start s;
    CU_ASSERT_EQUAL_FATAL(load(&s, st, dir), 0);
    CU_ASSERT_EQUAL(read_table(st).n_nodes, 2);

    /* The node's own claim to the label is overridden; its other labels stay. */
    Ray__Rpc__GcsNodeInfo__LabelsEntry mine = RAY__RPC__GCS_NODE_INFO__LABELS_ENTRY__INIT;
    mine.key = "market.lease";
    mine.value = "lease-99";
    Ray__Rpc__GcsNodeInfo__LabelsEntry other = RAY__RPC__GCS_NODE_INFO__LABELS_ENTRY__INIT;
    other.key = "zone";
    other.value = "a";
    Ray__Rpc__GcsNodeInfo__LabelsEntry *entries[] = {&mine, &other};
    Ray__Rpc__GcsNodeInfo proto = RAY__RPC__GCS_NODE_INFO__INIT;
    proto.node_id.data = joined;
    proto.node_id.len = RC_NODE_ID_SIZE;
    proto.labels = entries;
    proto.n_labels = 2;
    Ray__Rpc__GcsNodeInfo *info = (Ray__Rpc__GcsNodeInfo *)rpc_msg_dup(&proto.base);
    char err[160] = "";
    CU_ASSERT_EQUAL(gcs_auth_admit_node(s.am, info, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(info->n_labels, 2);
    CU_ASSERT_STRING_EQUAL(label_of(info, "market.lease"), "lease-17");
    CU_ASSERT_STRING_EQUAL(label_of(info, "zone"), "a");
    rpc_msg_free(&info->base);

    /* Without any label of its own, the node gets the token's. */
    proto.n_labels = 0;
    info = (Ray__Rpc__GcsNodeInfo *)rpc_msg_dup(&proto.base);
    CU_ASSERT_EQUAL(gcs_auth_admit_node(s.am, info, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(info->n_labels, 1);
    CU_ASSERT_STRING_EQUAL(label_of(info, "market.lease"), "lease-17");
    rpc_msg_free(&info->base);

    /* A revoked node may not register; a node that never joined keeps what it sent. */
    proto.node_id.data = revoked;
    info = (Ray__Rpc__GcsNodeInfo *)rpc_msg_dup(&proto.base);
    CU_ASSERT_EQUAL(gcs_auth_admit_node(s.am, info, err, sizeof(err)), RC_EAUTH);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "was revoked by the admin"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "b2b2b2"));
    rpc_msg_free(&info->base);
    proto.node_id.data = stranger;
    proto.n_labels = 2;
    info = (Ray__Rpc__GcsNodeInfo *)rpc_msg_dup(&proto.base);
    CU_ASSERT_EQUAL(gcs_auth_admit_node(s.am, info, err, sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(label_of(info, "market.lease"), "lease-99");
    rpc_msg_free(&info->base);

    gcs_auth_manager_free(s.am);
    st->ops->destroy(st);
    remove_dir(dir);
}

static const unit_case cases[] = {
    UNIT_CASE(test_first_start_creates_everything),
    UNIT_CASE(test_restart_keeps_ca_and_token),
    UNIT_CASE(test_adopts_ca_from_files),
    UNIT_CASE(test_half_a_ca_is_refused),
    UNIT_CASE(test_insecure_holds_nothing),
    UNIT_CASE(test_join_labels_bind_the_node),
};

int main(void)
{
    rc_config_init();
    return unit_run("gcs_auth_manager", cases, UNIT_N(cases));
}
