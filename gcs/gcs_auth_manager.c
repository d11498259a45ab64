/*
 * GCS auth manager: the cluster's security state (ARCHITECTURE §14); AuthService, which
 * changes it, is gcs_auth_service.c.
 *
 * It holds the cluster CA (certificate and key), the admin token, the join tokens (only the
 * SHA-256 of each token's text), the nodes the CA gave a certificate, and what the admin
 * revoked. All of it lives in the store's table AUTH (records in rayc_auth.proto: "ca",
 * "join:<token id>", "node:<node id hex>", "token:<token id>") and is reloaded at start, so
 * a GCS restarted on Redis keeps its CA, join tokens and node identities and raylets
 * reconnect without joining again.
 *
 * At start (gcs_auth_manager_load, before any server or client exists) the CA comes from
 * the store, else from <auth dir>/ca.crt and ca.key (made by an admin or a test harness),
 * else it is created; it is stored and written to the directory (ca.crt 0644, ca.key 0600).
 * The admin token in <auth dir>/auth_token is kept when it verifies with the CA, is an admin
 * token and was not revoked; otherwise a new one is minted and written (0600). Every admin
 * token the GCS minted or kept has a record, so that RotateAdminToken can revoke them all.
 * The GCS then issues its own certificate (CN "gcs", IP subjectAltNames: the address it
 * advertises and 127.0.0.1; its key stays in memory) and makes it the process's TLS
 * identity, so the GCS's server and its clients (to raylets and workers) use mutual TLS.
 *
 * While serving, the revocation hook refuses revoked nodes and tokens (a map lookup per
 * call), and RegisterNode forces a joined node's token labels onto it (gcs_auth_admit_node).
 * A node that joined with a token requiring verification carries GCS_VERIFICATION_LABEL in
 * its record ("pending", then the market's verdict: gcs_auth_set_verification), forced onto
 * it at every registration too; a label of that name the node sends itself is dropped.
 *
 * Loop thread only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "gcs_auth_int.h"
#include "rc_alloc.h"
#include "rc_err.h"
#include "rc_log.h"
#include "rc_time.h"

#define GCS__CA_CN "rayc cluster CA"
#define GCS__CA_DAYS 3650

int64_t gcs__auth_now_s(void)
{
    return rc_wall_ms() / 1000;
}

void gcs__auth_wipe_free(char *secret)
{
    if (!secret)
        return;
    OPENSSL_cleanse(secret, strlen(secret));
    rc_free(secret);
}

/* ---- store records ---------------------------------------------------------------------- */

static void gcs__record_key(char *out, size_t outlen, const char *kind, const char *id)
{
    snprintf(out, outlen, "%s:%s", kind, id);
}

/* A set of puts whose outcome one callback waits for. The starter holds one reference
 * until gcs__auth_writes_end, so that a store answering at once (memory) cannot finish the set
 * while puts are still being started. */
struct gcs__auth_writes {
    gcs_auth_manager *am;
    int pending;
    int rc; /* the first failure */
    gcs__auth_stored_fn fn;
    void *arg;
};

gcs__auth_writes *gcs__auth_writes_begin(gcs_auth_manager *am, gcs__auth_stored_fn fn, void *arg)
{
    gcs__auth_writes *w = RC_NEW(gcs__auth_writes);
    w->am = am;
    w->pending = 1;
    w->fn = fn;
    w->arg = arg;
    return w;
}

static void gcs__writes_unref(gcs__auth_writes *w, int rc)
{
    if (rc < 0 && w->rc == 0)
        w->rc = rc;
    if (--w->pending > 0)
        return;
    gcs__auth_stored_fn fn = w->fn;
    gcs_auth_manager *am = w->am;
    void *arg = w->arg;
    rc = w->rc;
    rc_free(w);
    fn(am, rc, arg);
}

static void gcs__write_done(int rc, int64_t added, void *arg)
{
    (void)added;
    gcs__writes_unref(arg, rc);
}

/* Stores record under key (packed now; record may be freed once this returns). */
void gcs__auth_writes_put(gcs__auth_writes *w, const char *key, const ProtobufCMessage *record)
{
    gcs_store *st = w->am->gcs->store;
    size_t len;
    uint8_t *bytes = rpc_msg_pack(record, &len);
    w->pending++;
    int rc = st ? st->ops->put(st, GCS_TABLE_AUTH, key, strlen(key), bytes, len, 1,
                               gcs__write_done, w)
                : RC_ECANCELED;
    OPENSSL_cleanse(bytes, len); /* the CA record holds the CA's key */
    rc_free(bytes);
    if (rc < 0)
        gcs__writes_unref(w, rc);
}

void gcs__auth_writes_end(gcs__auth_writes *w)
{
    gcs__writes_unref(w, 0);
}

void gcs__auth_put_join(gcs__auth_writes *w, const Rayc__Rpc__AuthJoinTokenRecord *rec)
{
    char key[64];
    gcs__record_key(key, sizeof(key), "join", rec->info->token_id);
    gcs__auth_writes_put(w, key, &rec->base);
}

void gcs__auth_put_node(gcs__auth_writes *w, const Rayc__Rpc__AuthNodeRecord *rec)
{
    char key[8 + RC_ID_HEX_MAX], hex[RC_ID_HEX_MAX];
    gcs__record_key(key, sizeof(key), "node", rc_id_hex(rec->node_id.data, RC_NODE_ID_SIZE, hex));
    gcs__auth_writes_put(w, key, &rec->base);
}

void gcs__auth_put_token(gcs__auth_writes *w, const Rayc__Rpc__AuthTokenRecord *rec)
{
    char key[64];
    gcs__record_key(key, sizeof(key), "token", rec->token_id);
    gcs__auth_writes_put(w, key, &rec->base);
}

/* Replaces (or adds) the record of node id; takes rec. */
void gcs__auth_set_node(gcs_auth_manager *am, Rayc__Rpc__AuthNodeRecord *rec)
{
    Rayc__Rpc__AuthNodeRecord *old = rc_map_put(&am->nodes, rec->node_id.data, RC_NODE_ID_SIZE, rec);
    if (old)
        rpc_msg_free(&old->base);
}

/* A new, owned token record (not revoked). */
Rayc__Rpc__AuthTokenRecord *gcs__auth_token_record_new(const auth_claims *c)
{
    Rayc__Rpc__AuthTokenRecord rec = RAYC__RPC__AUTH_TOKEN_RECORD__INIT;
    rec.token_id = (char *)c->id;
    rec.kind = (int32_t)c->kind;
    rec.issued_at = c->issued_at;
    return (Rayc__Rpc__AuthTokenRecord *)rpc_msg_dup(&rec.base);
}

/* ---- load: records -------------------------------------------------------------------- */

static int gcs__has_prefix(const gcs_store_item *it, const char *prefix)
{
    size_t n = strlen(prefix);
    return it->klen > n && memcmp(it->key, prefix, n) == 0;
}

/* Takes one stored record into memory; 0, or RC_EPARSE when it does not read. */
static int gcs__load_record(gcs_auth_manager *am, const gcs_store_item *it)
{
    const uint8_t *v = it->value;
    if (it->klen == 2 && memcmp(it->key, "ca", 2) == 0) {
        Rayc__Rpc__AuthCaRecord *ca = rayc__rpc__auth_ca_record__unpack(NULL, it->vlen, v);
        int ok = ca && ca->cert_pem[0] && ca->key_pem[0];
        if (ok) {
            am->ca_cert_pem = rc_strdup(ca->cert_pem);
            am->ca_key_pem = rc_strdup(ca->key_pem);
            OPENSSL_cleanse(ca->key_pem, strlen(ca->key_pem));
        }
        rpc_msg_free(ca ? &ca->base : NULL);
        return ok ? 0 : RC_EPARSE;
    }
    if (gcs__has_prefix(it, "join:")) {
        Rayc__Rpc__AuthJoinTokenRecord *rec = rayc__rpc__auth_join_token_record__unpack(NULL, it->vlen, v);
        if (!rec || !rec->info || strlen(rec->info->token_id) != AUTH_TOKEN_ID_HEX ||
            strlen(rec->secret_sha256) != GCS__SHA256_HEX) {
            rpc_msg_free(rec ? &rec->base : NULL);
            return RC_EPARSE;
        }
        rpc_msg_free(rc_map_put_str(&am->joins, rec->info->token_id, rec));
        return 0;
    }
    if (gcs__has_prefix(it, "node:")) {
        Rayc__Rpc__AuthNodeRecord *rec = rayc__rpc__auth_node_record__unpack(NULL, it->vlen, v);
        if (!rec || rec->node_id.len != RC_NODE_ID_SIZE) {
            rpc_msg_free(rec ? &rec->base : NULL);
            return RC_EPARSE;
        }
        gcs__auth_set_node(am, rec);
        return 0;
    }
    if (gcs__has_prefix(it, "token:")) {
        Rayc__Rpc__AuthTokenRecord *rec = rayc__rpc__auth_token_record__unpack(NULL, it->vlen, v);
        if (!rec || strlen(rec->token_id) != AUTH_TOKEN_ID_HEX) {
            rpc_msg_free(rec ? &rec->base : NULL);
            return RC_EPARSE;
        }
        rpc_msg_free(rc_map_put_str(&am->tokens, rec->token_id, rec));
        return 0;
    }
    return RC_EPARSE;
}

/* ---- load: files ----------------------------------------------------------------------- */

static void gcs__path(const gcs_auth_manager *am, const char *name, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/%s", am->gcs->opts.auth_dir, name);
}

/* Writes content to <auth dir>/name atomically with mode. */
int gcs__auth_write_file(const gcs_auth_manager *am, const char *name, const char *content,
                           mode_t mode)
{
    char path[4096];
    gcs__path(am, name, path, sizeof(path));
    int rc = auth_write_secret(path, content);
    if (rc == 0 && mode != 0600 && chmod(path, mode) != 0)
        rc = RC_EIO;
    if (rc < 0)
        RC_ERROR("gcs: cannot write %s: %s", path, rc_strerror(rc));
    return rc;
}

/* Reads <auth dir>/name into *out (with strip, without trailing whitespace). RC_ENOENT when
 * absent. */
static int gcs__read_file(const gcs_auth_manager *am, const char *name, int strip, char **out)
{
    char path[4096];
    gcs__path(am, name, path, sizeof(path));
    int rc = auth_read_file(path, out);
    if (rc == 0 && strip) {
        size_t n = strlen(*out);
        while (n > 0 && ((*out)[n - 1] == '\n' || (*out)[n - 1] == '\r' || (*out)[n - 1] == ' ' ||
                         (*out)[n - 1] == '\t'))
            (*out)[--n] = '\0';
    } else if (rc != RC_ENOENT) {
        RC_ERROR("gcs: cannot read %s: %s", path, rc_strerror(rc));
    }
    return rc;
}

static int gcs__ensure_dir(const gcs_auth_manager *am)
{
    const char *dir = am->gcs->opts.auth_dir;
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return 0;
        RC_ERROR("gcs: --auth-dir %s is not a directory", dir);
        return RC_EINVAL;
    }
    if (errno == ENOENT && mkdir(dir, 0700) == 0)
        return 0;
    RC_ERROR("gcs: cannot create the auth directory %s: %s", dir, strerror(errno));
    return RC_EIO;
}

/* The CA: from the store (already loaded), else from the files, else a new one. *new_to_store
 * is set when it was not in the store yet. Writes ca.crt and ca.key either way. */
static int gcs__setup_ca(gcs_auth_manager *am, int *new_to_store)
{
    *new_to_store = 0;
    char *cert = NULL, *key = NULL;
    int has_cert = gcs__read_file(am, "ca.crt", 0, &cert);
    int has_key = gcs__read_file(am, "ca.key", 0, &key);
    if ((has_cert < 0 && has_cert != RC_ENOENT) || (has_key < 0 && has_key != RC_ENOENT)) {
        rc_free(cert);
        gcs__auth_wipe_free(key);
        return RC_EIO;
    }
    if (am->ca_cert_pem) {
        if (cert && strcmp(cert, am->ca_cert_pem) != 0)
            RC_WARN("gcs: %s/ca.crt is not the cluster CA kept in storage; replacing it with the "
                    "stored one",
                    am->gcs->opts.auth_dir);
        rc_free(cert);
        gcs__auth_wipe_free(key);
        RC_INFO("gcs: cluster CA from storage");
    } else if (cert && key) {
        am->ca_cert_pem = cert;
        am->ca_key_pem = key;
        *new_to_store = 1;
        RC_INFO("gcs: cluster CA from %s/ca.crt and ca.key", am->gcs->opts.auth_dir);
    } else if (cert || key) {
        RC_ERROR("gcs: %s/%s exists but %s does not: the GCS needs the CA's certificate and key "
                 "together; put the missing file back, or remove the other to create a new CA",
                 am->gcs->opts.auth_dir, cert ? "ca.crt" : "ca.key", cert ? "ca.key" : "ca.crt");
        rc_free(cert);
        gcs__auth_wipe_free(key);
        return RC_EINVAL;
    } else {
        int rc = auth_ca_create(GCS__CA_CN, GCS__CA_DAYS, &am->ca_key_pem, &am->ca_cert_pem);
        if (rc < 0) {
            RC_ERROR("gcs: cannot create the cluster CA: %s", rc_strerror(rc));
            return rc;
        }
        *new_to_store = 1;
        RC_INFO("gcs: created a new cluster CA");
    }
    if (gcs__auth_write_file(am, "ca.crt", am->ca_cert_pem, 0644) < 0 ||
        gcs__auth_write_file(am, "ca.key", am->ca_key_pem, 0600) < 0)
        return RC_EIO;
    return 0;
}

static int gcs__token_revoked(const gcs_auth_manager *am, const char *id)
{
    const Rayc__Rpc__AuthTokenRecord *rec = rc_map_get_str(&am->tokens, id);
    return rec && rec->revoked;
}

/* Mints an admin token, records it (in memory; the caller stores *rec_out) and makes it
 * the one in force. */
static int gcs__mint_admin(gcs_auth_manager *am, Rayc__Rpc__AuthTokenRecord **rec_out)
{
    auth_claims c = {.kind = AUTH_TOKEN_ADMIN, .issued_at = gcs__auth_now_s()};
    char *token = NULL;
    int rc = auth_token_mint(am->ca_key_pem, &c, &token);
    if (rc < 0) {
        RC_ERROR("gcs: cannot mint an admin token: %s", rc_strerror(rc));
        return rc;
    }
    Rayc__Rpc__AuthTokenRecord *rec = gcs__auth_token_record_new(&c);
    rpc_msg_free(rc_map_put_str(&am->tokens, rec->token_id, rec));
    gcs__auth_wipe_free(am->admin_token);
    am->admin_token = token;
    *rec_out = rec;
    return 0;
}

/* The admin token: <auth dir>/auth_token if it verifies and was not revoked, else a new
 * one written there. *rec_out: a token record the caller must store (NULL: none). */
static int gcs__setup_admin_token(gcs_auth_manager *am, Rayc__Rpc__AuthTokenRecord **rec_out)
{
    *rec_out = NULL;
    char *token = NULL;
    int rc = gcs__read_file(am, "auth_token", 1, &token);
    if (rc < 0 && rc != RC_ENOENT)
        return rc;
    if (token) {
        auth_verifier *v = NULL;
        auth_claims c;
        char err[160] = "";
        rc = auth_verifier_create(am->ca_cert_pem, &v);
        if (rc == 0)
            rc = auth_token_verify(v, token, gcs__auth_now_s(), &c, err, sizeof(err));
        auth_verifier_destroy(v);
        if (rc == 0 && c.kind == AUTH_TOKEN_ADMIN && !gcs__token_revoked(am, c.id)) {
            am->admin_token = token;
            if (!rc_map_get_str(&am->tokens, c.id)) { /* made outside the GCS: remember it */
                *rec_out = gcs__auth_token_record_new(&c);
                rc_map_put_str(&am->tokens, c.id, *rec_out);
            }
            RC_INFO("gcs: keeping the admin token in %s/auth_token", am->gcs->opts.auth_dir);
            return 0;
        }
        RC_WARN("gcs: %s/auth_token is not a valid admin token of this cluster (%s); writing a "
                "new one",
                am->gcs->opts.auth_dir,
                rc < 0 ? err : c.kind != AUTH_TOKEN_ADMIN ? "not an admin token" : "revoked");
        gcs__auth_wipe_free(token);
    }
    rc = gcs__mint_admin(am, rec_out);
    if (rc == 0)
        rc = gcs__auth_write_file(am, "auth_token", am->admin_token, 0600);
    return rc;
}

/* The GCS's certificate (its IPs and this host's name: its metrics port serves HTTPS with it too)
 * and the process's security. */
static int gcs__setup_identity(gcs_auth_manager *am)
{
    const char *ips[2] = {am->gcs->self_ip, "127.0.0.1"};
    size_t n_ips = strcmp(am->gcs->self_ip, "127.0.0.1") == 0 ? 1 : 2;
    int rc = auth_cert_issue_local(am->ca_key_pem, am->ca_cert_pem, "gcs", ips, n_ips, GCS__CERT_DAYS,
                                   &am->key_pem, &am->cert_pem);
    if (rc < 0) {
        RC_ERROR("gcs: cannot issue the GCS's certificate with the cluster CA: %s (is ca.key the "
                 "key of ca.crt?)",
                 rc_strerror(rc));
        return rc;
    }
    /* The GCS serves its chain, leaf then CA: a joining raylet has only the CA's hash, and
     * finds the CA it pins in what the handshake shows it (auth_pin_ca). */
    size_t n = strlen(am->cert_pem) + strlen(am->ca_cert_pem) + 1;
    char *chain = rc_malloc(n);
    snprintf(chain, n, "%s%s", am->cert_pem, am->ca_cert_pem);
    rpc_security sec = {.ca_cert_pem = am->ca_cert_pem,
                        .cert_pem = chain,
                        .key_pem = am->key_pem,
                        .present_cert = 1};
    char err[256] = "";
    rc = rpc_security_set(&sec, err, sizeof(err));
    rc_free(chain);
    if (rc < 0)
        RC_ERROR("gcs: cannot use the cluster's TLS material: %s", err);
    return rc;
}

static void gcs__load_stored(gcs_auth_manager *am, int rc, void *arg)
{
    (void)arg;
    if (rc < 0)
        RC_ERROR("gcs: cannot store the cluster's security records: %s", rc_strerror(rc));
    am->load_cb(am->gcs, rc);
}

static void gcs__table_loaded(int rc, const gcs_store_item *items, size_t n, void *arg)
{
    gcs_auth_manager *am = arg;
    if (rc < 0) {
        am->load_cb(am->gcs, rc);
        return;
    }
    size_t skipped = 0;
    for (size_t i = 0; i < n; i++)
        if (gcs__load_record(am, &items[i]) < 0)
            skipped++;
    if (skipped)
        RC_WARN("gcs: skipped %zu unreadable records of table AUTH", skipped);
    RC_INFO("gcs: loaded %zu join tokens, %zu node identities and %zu token records", rc_map_size(&am->joins),
            rc_map_size(&am->nodes), rc_map_size(&am->tokens));
    int new_ca = 0;
    Rayc__Rpc__AuthTokenRecord *admin_rec = NULL;
    rc = gcs__ensure_dir(am);
    if (rc == 0)
        rc = gcs__setup_ca(am, &new_ca);
    if (rc == 0)
        rc = gcs__setup_admin_token(am, &admin_rec);
    if (rc == 0)
        rc = gcs__setup_identity(am);
    if (rc < 0) {
        am->load_cb(am->gcs, rc);
        return;
    }
    gcs__auth_writes *w = gcs__auth_writes_begin(am, gcs__load_stored, NULL);
    if (new_ca) {
        Rayc__Rpc__AuthCaRecord ca = RAYC__RPC__AUTH_CA_RECORD__INIT;
        ca.cert_pem = am->ca_cert_pem;
        ca.key_pem = am->ca_key_pem;
        ca.created_at = gcs__auth_now_s();
        gcs__auth_writes_put(w, "ca", &ca.base);
    }
    if (admin_rec)
        gcs__auth_put_token(w, admin_rec);
    gcs__auth_writes_end(w);
}

int gcs_auth_manager_load(gcs_auth_manager *am, gcs_load_cb cb)
{
    am->load_cb = cb;
    if (am->gcs->opts.insecure) {
        rpc_security sec = {.insecure = 1};
        char err[128] = "";
        int rc = rpc_security_set(&sec, err, sizeof(err));
        if (rc < 0)
            return rc;
        cb(am->gcs, 0);
        return 0;
    }
    if (!am->gcs->opts.auth_dir || !am->gcs->opts.auth_dir[0]) {
        RC_ERROR("gcs: secure mode needs an auth directory (--auth-dir)");
        return RC_EINVAL;
    }
    am->secure = 1;
    gcs_store *st = am->gcs->store;
    return st->ops->get_all(st, GCS_TABLE_AUTH, gcs__table_loaded, am);
}

/* ---- revocation and label binding ------------------------------------------------------- */

static const char *gcs__revoked(const rpc_identity *id, void *arg)
{
    gcs_auth_manager *am = arg;
    if (id->role == RPC_ROLE_NODE) {
        const Rayc__Rpc__AuthNodeRecord *rec = rc_map_get(&am->nodes, id->node_id, RC_NODE_ID_SIZE);
        if (!rec || !rec->revoked)
            return NULL;
        char hex[RC_ID_HEX_MAX];
        snprintf(am->refusal, sizeof(am->refusal), "node %s was revoked by the admin",
                 rc_id_hex(id->node_id, RC_NODE_ID_SIZE, hex));
        return am->refusal;
    }
    if (!id->token_id[0])
        return NULL;
    const Rayc__Rpc__AuthTokenRecord *rec = rc_map_get_str(&am->tokens, id->token_id);
    if (!rec || !rec->revoked)
        return NULL;
    if (rec->kind == AUTH_TOKEN_ADMIN)
        snprintf(am->refusal, sizeof(am->refusal),
                 "admin token %.16s was replaced (RotateAdminToken); use the new one "
                 "(rayc get-auth-token on the head node)",
                 id->token_id);
    else
        snprintf(am->refusal, sizeof(am->refusal), "token %.16s was revoked by the admin",
                 id->token_id);
    return am->refusal;
}

void gcs_auth_manager_attach(gcs_auth_manager *am, rpc_server *srv)
{
    if (am->secure)
        rpc_server_set_revocation(srv, gcs__revoked, am);
}

/* Sets label key=value on info (owned parts), replacing a label of the same key. */
static void gcs__node_set_label(Ray__Rpc__GcsNodeInfo *info, const char *key, const char *value)
{
    for (size_t i = 0; i < info->n_labels; i++) {
        Ray__Rpc__GcsNodeInfo__LabelsEntry *e = info->labels[i];
        if (strcmp(e->key, key) == 0) {
            free(e->value);
            e->value = rc_strdup(value);
            return;
        }
    }
    Ray__Rpc__GcsNodeInfo__LabelsEntry *e = rc_malloc(sizeof(*e));
    ray__rpc__gcs_node_info__labels_entry__init(e);
    e->key = rc_strdup(key);
    e->value = rc_strdup(value);
    info->labels = rc_realloc(info->labels, (info->n_labels + 1) * sizeof(*info->labels));
    info->labels[info->n_labels++] = e;
}

/* Drops label key from info (owned parts). */
static void gcs__node_drop_label(Ray__Rpc__GcsNodeInfo *info, const char *key)
{
    for (size_t i = 0; i < info->n_labels; i++) {
        if (strcmp(info->labels[i]->key, key) == 0) {
            protobuf_c_message_free_unpacked(&info->labels[i]->base, NULL);
            info->labels[i] = info->labels[--info->n_labels];
            return;
        }
    }
}

static const char *gcs__record_label(const Rayc__Rpc__AuthNodeRecord *rec, const char *key)
{
    for (size_t i = 0; rec && i < rec->n_labels; i++)
        if (!strcmp(rec->labels[i]->key, key))
            return rec->labels[i]->value;
    return NULL;
}

static void gcs__record_set_label(Rayc__Rpc__AuthNodeRecord *rec, const char *key, const char *value)
{
    for (size_t i = 0; i < rec->n_labels; i++) {
        if (!strcmp(rec->labels[i]->key, key)) {
            free(rec->labels[i]->value);
            rec->labels[i]->value = rc_strdup(value);
            return;
        }
    }
    Rayc__Rpc__AuthNodeRecord__LabelsEntry *e = rc_malloc(sizeof(*e));
    rayc__rpc__auth_node_record__labels_entry__init(e);
    e->key = rc_strdup(key);
    e->value = rc_strdup(value);
    rec->labels = rc_realloc(rec->labels, (rec->n_labels + 1) * sizeof(*rec->labels));
    rec->labels[rec->n_labels++] = e;
}

void gcs__auth_node_verification(Rayc__Rpc__AuthNodeRecord *rec, const Rayc__Rpc__AuthNodeRecord *prior,
                                 const char *state, const char *reason)
{
    const char *was = gcs__record_label(prior, GCS_VERIFICATION_LABEL);
    if (was && strcmp(was, "pending")) {
        state = was;
        reason = gcs__record_label(prior, GCS_VERIFICATION_REASON_LABEL);
    }
    gcs__record_set_label(rec, GCS_VERIFICATION_LABEL, state);
    if (reason)
        gcs__record_set_label(rec, GCS_VERIFICATION_REASON_LABEL, reason);
}

typedef struct gcs__verdict_op {
    void (*done)(gcs_server *gcs, int rc, void *arg);
    void *arg;
} gcs__verdict_op;

static void gcs__verdict_stored(gcs_auth_manager *am, int rc, void *arg)
{
    gcs__verdict_op *op = arg;
    op->done(am->gcs, rc, op->arg);
    rc_free(op);
}

int gcs_auth_set_verification(gcs_auth_manager *am, const uint8_t *id, int passed, const char *reason,
                              void (*done)(gcs_server *gcs, int rc, void *arg), void *arg, char *err,
                              size_t errlen)
{
    char hex[RC_ID_HEX_MAX];
    rc_id_hex(id, RC_NODE_ID_SIZE, hex);
    const Rayc__Rpc__AuthNodeRecord *rec = am && am->secure ? rc_map_get(&am->nodes, id, RC_NODE_ID_SIZE) : NULL;
    const char *state = gcs__record_label(rec, GCS_VERIFICATION_LABEL);
    if (!state) {
        snprintf(err, errlen,
                 "node %s did not join with a join token that requires verification; only such nodes "
                 "take a verdict (create their tokens with require_verification)",
                 hex);
        return RC_ENOENT;
    }
    if (!strcmp(state, "failed")) {
        const char *why = gcs__record_label(rec, GCS_VERIFICATION_REASON_LABEL);
        snprintf(err, errlen, "node %s failed verification already (%s); that verdict is final: start the host "
                 "as a new node to try again", hex, why ? why : "no reason given");
        return RC_EINVAL;
    }
    Rayc__Rpc__AuthNodeRecord *next = (Rayc__Rpc__AuthNodeRecord *)rpc_msg_dup(&rec->base);
    char cut[201];
    snprintf(cut, sizeof(cut), "%s", reason && reason[0] ? reason : passed ? "passed" : "no reason given");
    gcs__record_set_label(next, GCS_VERIFICATION_LABEL, passed ? "passed" : "failed");
    gcs__record_set_label(next, GCS_VERIFICATION_REASON_LABEL, cut);
    gcs__auth_set_node(am, next);
    RC_INFO("gcs: node %s %s verification (%s)", hex, passed ? "passed" : "failed", cut);
    gcs__verdict_op *op = RC_NEW(gcs__verdict_op);
    op->done = done;
    op->arg = arg;
    gcs__auth_writes *w = gcs__auth_writes_begin(am, gcs__verdict_stored, op);
    gcs__auth_put_node(w, next);
    gcs__auth_writes_end(w);
    return 0;
}

int gcs_auth_admit_node(gcs_auth_manager *am, Ray__Rpc__GcsNodeInfo *info, char *err, size_t errlen)
{
    if (info->node_id.len == RC_NODE_ID_SIZE) { /* only the GCS says a node is verified */
        gcs__node_drop_label(info, GCS_VERIFICATION_LABEL);
        gcs__node_drop_label(info, GCS_VERIFICATION_REASON_LABEL);
    }
    if (!am || !am->secure || info->node_id.len != RC_NODE_ID_SIZE)
        return 0;
    const Rayc__Rpc__AuthNodeRecord *rec = rc_map_get(&am->nodes, info->node_id.data, RC_NODE_ID_SIZE);
    if (!rec)
        return 0;
    if (rec->revoked) {
        char hex[RC_ID_HEX_MAX];
        snprintf(err, errlen, "node %s was revoked by the admin",
                 rc_id_hex(info->node_id.data, RC_NODE_ID_SIZE, hex));
        return RC_EAUTH;
    }
    /* The verdict's reason is free text, not a label value: it stays in the auth record
     * (gcs_auth_verification_reason), or raylets could not take the node into their views. */
    for (size_t i = 0; i < rec->n_labels; i++)
        if (strcmp(rec->labels[i]->key, GCS_VERIFICATION_REASON_LABEL))
            gcs__node_set_label(info, rec->labels[i]->key, rec->labels[i]->value);
    return 0;
}

const char *gcs_auth_verification_reason(const gcs_auth_manager *am, const uint8_t *node_id)
{
    const Rayc__Rpc__AuthNodeRecord *rec = am ? rc_map_get(&am->nodes, node_id, RC_NODE_ID_SIZE) : NULL;
    return gcs__record_label(rec, GCS_VERIFICATION_REASON_LABEL);
}

/* ---- lifetime ----------------------------------------------------------------------------- */

gcs_auth_manager *gcs_auth_manager_new(gcs_server *gcs)
{
    gcs_auth_manager *am = RC_NEW(gcs_auth_manager);
    am->gcs = gcs;
    rc_map_init(&am->joins);
    rc_map_init(&am->nodes);
    rc_map_init(&am->tokens);
    rc_map_init(&am->job_tokens);
    return am;
}

static void gcs__free_msg(void *p)
{
    rpc_msg_free(p);
}

static void gcs__free_secret(void *p)
{
    gcs__auth_wipe_free(p);
}

void gcs_auth_forget_job(gcs_auth_manager *am, const uint8_t *job_id)
{
    if (am)
        gcs__free_secret(rc_map_remove(&am->job_tokens, job_id, RC_JOB_ID_SIZE));
}

void gcs_auth_manager_free(gcs_auth_manager *am)
{
    if (!am)
        return;
    rc_map_destroy(&am->joins, gcs__free_msg);
    rc_map_destroy(&am->nodes, gcs__free_msg);
    rc_map_destroy(&am->tokens, gcs__free_msg);
    rc_map_destroy(&am->job_tokens, gcs__free_secret);
    rc_free(am->ca_cert_pem);
    gcs__auth_wipe_free(am->ca_key_pem);
    rc_free(am->cert_pem);
    gcs__auth_wipe_free(am->key_pem);
    gcs__auth_wipe_free(am->admin_token);
    rc_free(am);
}
