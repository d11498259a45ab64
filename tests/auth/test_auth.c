/* auth: CA, certificates, CSRs, pins, bearer and join tokens, peer chains, secret files. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "rc_alloc.h"
#include "rc_err.h"
#include "unit.h"

static const char *const loopback[] = {"127.0.0.1", "::1"};

typedef struct test_ca {
    char *key, *cert;
} test_ca;

static test_ca ca_make(const char *cn)
{
    test_ca ca = {NULL, NULL};
    CU_ASSERT_EQUAL_FATAL(auth_ca_create(cn, 30, &ca.key, &ca.cert), 0);
    return ca;
}

static void ca_free(test_ca *ca)
{
    rc_free(ca->key);
    rc_free(ca->cert);
}

static X509 *x509_of(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    return x;
}

/* ---- certificates --------------------------------------------------------------------- */

static void test_ca_create(void)
{
    test_ca ca = ca_make("rayc-ca");
    CU_ASSERT(strncmp(ca.key, "-----BEGIN ", 11) == 0 && strstr(ca.key, " PRIVATE KEY-----\n") != NULL);
    CU_ASSERT(strstr(ca.cert, "-----BEGIN CERTIFICATE-----") != NULL);
    char cn[64];
    CU_ASSERT_EQUAL(auth_cert_cn(ca.cert, cn, sizeof(cn)), 0);
    CU_ASSERT_STRING_EQUAL(cn, "rayc-ca");
    X509 *x = x509_of(ca.cert);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    CU_ASSERT_EQUAL(X509_check_ca(x), 1);
    CU_ASSERT_EQUAL(X509_check_issued(x, x), X509_V_OK);
    CU_ASSERT(X509_get_extension_flags(x) & EXFLAG_SS);
    CU_ASSERT_PTR_NOT_NULL(X509_get0_subject_key_id(x));
    CU_ASSERT(X509_get_key_usage(x) & KU_KEY_CERT_SIGN);
    CU_ASSERT_EQUAL(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
    X509_free(x);
    /* A CA verifies itself. */
    CU_ASSERT_EQUAL(auth_cert_verify(ca.cert, ca.cert, NULL, 0), 0);
    CU_ASSERT_EQUAL(auth_ca_create("", 30, &ca.key, &ca.cert), RC_EINVAL);
    ca_free(&ca);
}

static void test_issue_and_verify(void)
{
    test_ca ca = ca_make("rayc-ca"), other = ca_make("rayc-ca");
    char *key = NULL, *cert = NULL;
    CU_ASSERT_EQUAL_FATAL(auth_cert_issue(ca.key, ca.cert, "node:abcd", loopback, 2, 10, &key,
                                          &cert), 0);
    char err[256] = "";
    CU_ASSERT_EQUAL(auth_cert_verify(ca.cert, cert, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(auth_cert_verify(other.cert, cert, err, sizeof(err)), RC_EAUTH);
    CU_ASSERT(strstr(err, "does not verify") != NULL);
    CU_ASSERT_EQUAL(auth_cert_verify(ca.cert, "garbage", err, sizeof(err)), RC_EAUTH);

    char cn[64];
    CU_ASSERT_EQUAL(auth_cert_cn(cert, cn, sizeof(cn)), 0);
    CU_ASSERT_STRING_EQUAL(cn, "node:abcd");
    CU_ASSERT_EQUAL(auth_cert_cn(cert, cn, 4), RC_ERANGE);
    CU_ASSERT_EQUAL(auth_cert_cn("nope", cn, sizeof(cn)), RC_EINVAL);

    /* What gRPC checks: the IP SAN, the EKUs, not a CA, signed by the CA key's id. */
    X509 *x = x509_of(cert);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    CU_ASSERT_EQUAL(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
    CU_ASSERT_EQUAL(X509_check_ip_asc(x, "::1", 0), 1);
    CU_ASSERT_EQUAL(X509_check_ip_asc(x, "10.0.0.1", 0), 0);
    CU_ASSERT_EQUAL(X509_check_host(x, "localhost", 0, 0, NULL), 1);
    CU_ASSERT_EQUAL(X509_check_ca(x), 0);
    CU_ASSERT_EQUAL(X509_get_extended_key_usage(x) & (XKU_SSL_SERVER | XKU_SSL_CLIENT),
                    XKU_SSL_SERVER | XKU_SSL_CLIENT);
    CU_ASSERT_PTR_NOT_NULL(X509_get0_authority_key_id(x));
    CU_ASSERT(X509_cmp_time(X509_get0_notBefore(x), NULL) < 0);
    time_t in_4_min = time(NULL) - 240;
    CU_ASSERT(X509_cmp_time(X509_get0_notBefore(x), &in_4_min) < 0); /* clock-skew margin */
    const ASN1_INTEGER *serial = X509_get0_serialNumber(x);
    CU_ASSERT(ASN1_STRING_length(serial) >= 15);
    CU_ASSERT_EQUAL(ASN1_STRING_type(serial), V_ASN1_INTEGER); /* positive */
    X509_free(x);

    /* A bad IP is refused with a sentence. */
    const char *bad[] = {"127.0.0.1,DNS:evil"};
    char *cert2 = NULL, *key2 = NULL;
    CU_ASSERT_EQUAL(auth_cert_issue(ca.key, ca.cert, "node:x", bad, 1, 10, &key2, &cert2),
                    RC_EINVAL);
    CU_ASSERT_PTR_NULL(cert2);
    /* The CA key must match the CA certificate. */
    CU_ASSERT_EQUAL(auth_cert_issue(other.key, ca.cert, "node:x", NULL, 0, 10, &key2, &cert2),
                    RC_EINVAL);
    rc_free(key);
    rc_free(cert);
    ca_free(&ca);
    ca_free(&other);
}

static void test_ca_hash(void)
{
    test_ca a = ca_make("rayc-ca"), b = ca_make("rayc-ca");
    char ha[AUTH_CA_HASH_MAX], ha2[AUTH_CA_HASH_MAX], hb[AUTH_CA_HASH_MAX];
    CU_ASSERT_EQUAL(auth_ca_hash(a.cert, ha, sizeof(ha)), 0);
    CU_ASSERT_EQUAL(auth_ca_hash(a.cert, ha2, sizeof(ha2)), 0);
    CU_ASSERT_EQUAL(auth_ca_hash(b.cert, hb, sizeof(hb)), 0);
    CU_ASSERT_EQUAL(strlen(ha), 71);
    CU_ASSERT_EQUAL(strncmp(ha, "sha256:", 7), 0);
    CU_ASSERT_STRING_EQUAL(ha, ha2);
    CU_ASSERT(strcmp(ha, hb) != 0);
    CU_ASSERT(auth_ca_hash_equal(ha, ha2));
    CU_ASSERT(!auth_ca_hash_equal(ha, hb));
    char upper[AUTH_CA_HASH_MAX];
    snprintf(upper, sizeof(upper), "sha256:");
    for (int i = 7; i < 71; i++)
        upper[i] = (char)(ha[i] >= 'a' && ha[i] <= 'f' ? ha[i] - 32 : ha[i]);
    upper[71] = '\0';
    CU_ASSERT(auth_ca_hash_equal(ha, upper));
    CU_ASSERT(!auth_ca_hash_equal(ha + 7, ha + 7)); /* prefix required */
    CU_ASSERT(!auth_ca_hash_equal(ha, NULL));
    upper[70] = '\0';
    CU_ASSERT(!auth_ca_hash_equal(upper, upper));
    CU_ASSERT_EQUAL(auth_ca_hash(a.cert, ha, 10), RC_ERANGE);
    /* A leaf's hash is its own key's, not its CA's. */
    char *key = NULL, *cert = NULL, hl[AUTH_CA_HASH_MAX];
    CU_ASSERT_EQUAL_FATAL(auth_cert_issue(a.key, a.cert, "gcs", NULL, 0, 1, &key, &cert), 0);
    CU_ASSERT_EQUAL(auth_ca_hash(cert, hl, sizeof(hl)), 0);
    CU_ASSERT(!auth_ca_hash_equal(hl, ha2));
    rc_free(key);
    rc_free(cert);
    ca_free(&a);
    ca_free(&b);
}

static void test_csr_sign(void)
{
    test_ca ca = ca_make("rayc-ca");
    char *key = NULL, *csr = NULL, *cert = NULL, err[256] = "";
    CU_ASSERT_EQUAL_FATAL(auth_key_create(&key), 0);
    CU_ASSERT_EQUAL_FATAL(auth_csr_create(key, "admin-please", &csr), 0);
    const char *ips[] = {"10.1.2.3"};
    CU_ASSERT_EQUAL_FATAL(auth_cert_sign_csr(ca.key, ca.cert, csr, "node:0011", ips, 1, 5, &cert,
                                             err, sizeof(err)), 0);
    char cn[64];
    CU_ASSERT_EQUAL(auth_cert_cn(cert, cn, sizeof(cn)), 0);
    CU_ASSERT_STRING_EQUAL(cn, "node:0011");
    X509 *x = x509_of(cert);
    CU_ASSERT_EQUAL(X509_check_ip_asc(x, "10.1.2.3", 0), 1);
    /* The certificate carries the CSR's key. */
    BIO *kb = BIO_new_mem_buf(key, -1);
    EVP_PKEY *k = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL);
    CU_ASSERT_EQUAL(X509_check_private_key(x, k), 1);
    EVP_PKEY_free(k);
    BIO_free(kb);
    X509_free(x);
    rc_free(cert);
    cert = NULL;

    /* Flip one byte of the CSR's signature (the last base64 characters before the footer). */
    char *tampered = rc_strdup(csr);
    char *end = strstr(tampered, "\n-----END");
    CU_ASSERT_PTR_NOT_NULL_FATAL(end);
    char *p = end - 6;
    *p = (char)(*p == 'A' ? 'B' : 'A');
    CU_ASSERT_EQUAL(auth_cert_sign_csr(ca.key, ca.cert, tampered, "node:0011", NULL, 0, 5, &cert,
                                       err, sizeof(err)), RC_EINVAL);
    CU_ASSERT_PTR_NULL(cert);
    CU_ASSERT(strstr(err, "signature") != NULL || strstr(err, "parse") != NULL);
    CU_ASSERT_EQUAL(auth_cert_sign_csr(ca.key, ca.cert, "junk", "node:0011", NULL, 0, 5, &cert,
                                       err, sizeof(err)), RC_EINVAL);
    CU_ASSERT(strstr(err, "does not parse") != NULL);
    rc_free(tampered);
    rc_free(csr);
    rc_free(key);
    ca_free(&ca);
}

/* ---- bearer tokens --------------------------------------------------------------------- */

static void test_token_round_trip(void)
{
    test_ca ca = ca_make("rayc-ca");
    auth_verifier *v = NULL;
    CU_ASSERT_EQUAL_FATAL(auth_verifier_create(ca.cert, &v), 0);
    int64_t now = 1700000000;

    auth_claims admin = {.kind = AUTH_TOKEN_ADMIN, .issued_at = now, .expires_at = 0};
    char *tok = NULL;
    CU_ASSERT_EQUAL_FATAL(auth_token_mint(ca.key, &admin, &tok), 0);
    CU_ASSERT_EQUAL(strlen(admin.id), AUTH_TOKEN_ID_HEX);
    CU_ASSERT_EQUAL(strncmp(tok, "rayc1.", 6), 0);
    CU_ASSERT(strpbrk(tok, "+/= \n") == NULL);
    auth_claims got;
    char err[128] = "";
    CU_ASSERT_EQUAL(auth_token_verify(v, tok, now + 1000000, &got, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(got.kind, AUTH_TOKEN_ADMIN);
    CU_ASSERT_STRING_EQUAL(got.id, admin.id);
    CU_ASSERT_EQUAL(got.issued_at, now);
    CU_ASSERT_EQUAL(got.expires_at, 0);
    rc_free(tok);

    auth_claims job = {.kind = AUTH_TOKEN_JOB, .job_id = {0xde, 0xad, 0x00, 0x01},
                       .issued_at = now, .expires_at = now + 60};
    snprintf(job.id, sizeof(job.id), "0123456789abcdef");
    CU_ASSERT_EQUAL_FATAL(auth_token_mint(ca.key, &job, &tok), 0);
    CU_ASSERT_STRING_EQUAL(job.id, "0123456789abcdef"); /* a given id is kept */
    memset(&got, 0, sizeof(got));
    CU_ASSERT_EQUAL(auth_token_verify(v, tok, now + 59, &got, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(got.kind, AUTH_TOKEN_JOB);
    CU_ASSERT_EQUAL(memcmp(got.job_id, job.job_id, 4), 0);
    CU_ASSERT_STRING_EQUAL(got.id, "0123456789abcdef");
    CU_ASSERT_EQUAL(got.expires_at, now + 60);
    /* Expired at exactly expires_at. */
    CU_ASSERT_EQUAL(auth_token_verify(v, tok, now + 60, &got, err, sizeof(err)), RC_EAUTH);
    CU_ASSERT_STRING_EQUAL(err, "token has expired");
    rc_free(tok);

    auth_claims bad = {.kind = 7};
    CU_ASSERT_EQUAL(auth_token_mint(ca.key, &bad, &tok), RC_EINVAL);
    auth_verifier_destroy(v);
    ca_free(&ca);
}

static void test_token_refused(void)
{
    test_ca ca = ca_make("rayc-ca"), other = ca_make("rayc-ca");
    auth_verifier *v = NULL;
    CU_ASSERT_EQUAL_FATAL(auth_verifier_create(ca.cert, &v), 0);
    auth_claims c = {.kind = AUTH_TOKEN_ADMIN, .issued_at = 1, .expires_at = 0};
    char *foreign = NULL, *tok = NULL, err[128] = "";
    CU_ASSERT_EQUAL_FATAL(auth_token_mint(other.key, &c, &foreign), 0);
    CU_ASSERT_EQUAL(auth_token_verify(v, foreign, 2, NULL, err, sizeof(err)), RC_EAUTH);
    CU_ASSERT_STRING_EQUAL(err, "token signature does not verify with this cluster's CA");

    /* Same signature, payload changed from admin to a job token with the same other fields. */
    memset(c.id, 0, sizeof(c.id));
    CU_ASSERT_EQUAL_FATAL(auth_token_mint(ca.key, &c, &tok), 0);
    CU_ASSERT_EQUAL(auth_token_verify(v, tok, 2, NULL, err, sizeof(err)), 0);
    const char *sig = strrchr(tok, '.');
    char payload[128];
    snprintf(payload, sizeof(payload), "v1|admin|%s|-|1|9", c.id); /* expiry added */
    static const char b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char forged[1024];
    size_t o = (size_t)snprintf(forged, sizeof(forged), "rayc1.");
    size_t n = strlen(payload);
    for (size_t i = 0; i < n; i += 3) {
        unsigned v3 = (unsigned char)payload[i] << 16;
        if (i + 1 < n)
            v3 |= (unsigned char)payload[i + 1] << 8;
        if (i + 2 < n)
            v3 |= (unsigned char)payload[i + 2];
        forged[o++] = b64[v3 >> 18];
        forged[o++] = b64[(v3 >> 12) & 63];
        if (i + 1 < n)
            forged[o++] = b64[(v3 >> 6) & 63];
        if (i + 2 < n)
            forged[o++] = b64[v3 & 63];
    }
    snprintf(forged + o, sizeof(forged) - o, "%s", sig);
    CU_ASSERT_EQUAL(auth_token_verify(v, forged, 2, NULL, err, sizeof(err)), RC_EAUTH);
    CU_ASSERT_STRING_EQUAL(err, "token signature does not verify with this cluster's CA");
    /* One character of the signature flipped. */
    char *flip = rc_strdup(tok);
    char *last = flip + strlen(flip) - 3;
    *last = (char)(*last == 'A' ? 'B' : 'A');
    CU_ASSERT_EQUAL(auth_token_verify(v, flip, 2, NULL, err, sizeof(err)), RC_EAUTH);
    rc_free(flip);

    /* Garbage of every shape: refused, never a crash. */
    char *huge = rc_malloc(5000);
    memset(huge, 'A', 4999);
    memcpy(huge, "rayc1.", 6);
    huge[3000] = '.';
    huge[4999] = '\0';
    char trailing[1100];
    snprintf(trailing, sizeof(trailing), "%s.", tok);
    char padded[1100];
    snprintf(padded, sizeof(padded), "%s=", tok);
    const char *garbage[] = {"", "rayc1.", "rayc1..", "rayc1.a.b", "rayc2.AAAA.AAAA",
                             "rayc1.!!!!.AAAA", "rayc1.AAAA", "rayc1.A.AAAA", "Bearer x",
                             "rayc1.djF8YWRtaW4.AAAA", huge, trailing, padded};
    for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
        err[0] = '\0';
        CU_ASSERT_EQUAL(auth_token_verify(v, garbage[i], 2, NULL, err, sizeof(err)), RC_EAUTH);
        CU_ASSERT(err[0] != '\0');
    }
    CU_ASSERT_EQUAL(auth_token_verify(v, NULL, 2, NULL, err, sizeof(err)), RC_EAUTH);
    auth_verifier *none = NULL;
    CU_ASSERT_EQUAL(auth_verifier_create("not a cert", &none), RC_EINVAL);
    CU_ASSERT_PTR_NULL(none);
    rc_free(huge);
    rc_free(tok);
    rc_free(foreign);
    auth_verifier_destroy(v);
    ca_free(&ca);
    ca_free(&other);
}

typedef struct verify_job {
    const auth_verifier *v;
    const char *token;
    int failures;
} verify_job;

static void *verify_many(void *arg)
{
    verify_job *j = arg;
    for (int i = 0; i < 200; i++)
        if (auth_token_verify(j->v, j->token, 5, NULL, NULL, 0) != 0)
            j->failures++;
    return NULL;
}

static void test_token_concurrent(void)
{
    test_ca ca = ca_make("rayc-ca");
    auth_verifier *v = NULL;
    CU_ASSERT_EQUAL_FATAL(auth_verifier_create(ca.cert, &v), 0);
    auth_claims c = {.kind = AUTH_TOKEN_JOB, .issued_at = 1, .expires_at = 10};
    char *tok = NULL;
    CU_ASSERT_EQUAL_FATAL(auth_token_mint(ca.key, &c, &tok), 0);
    pthread_t th[4];
    verify_job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (verify_job){v, tok, 0};
        pthread_create(&th[i], NULL, verify_many, &jobs[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CU_ASSERT_EQUAL(jobs[i].failures, 0);
    }
    rc_free(tok);
    auth_verifier_destroy(v);
    ca_free(&ca);
}

/* ---- join tokens ----------------------------------------------------------------------- */

static void test_join_token(void)
{
    char *tok = NULL, id[17], hash[65], id2[17], hash2[65];
    CU_ASSERT_EQUAL_FATAL(auth_join_token_create(&tok, id, hash), 0);
    CU_ASSERT_EQUAL(strlen(tok), 49);
    CU_ASSERT_EQUAL(tok[16], '.');
    CU_ASSERT_EQUAL(strncmp(tok, id, 16), 0);
    CU_ASSERT_EQUAL(strlen(hash), 64);
    CU_ASSERT_EQUAL(auth_join_token_parse(tok, id2, hash2), 0);
    CU_ASSERT_STRING_EQUAL(id, id2);
    CU_ASSERT_STRING_EQUAL(hash, hash2);
    /* A different secret with the same id hashes differently. */
    char *other = rc_strdup(tok);
    other[20] = (char)(other[20] == '0' ? '1' : '0');
    CU_ASSERT_EQUAL(auth_join_token_parse(other, id2, hash2), 0);
    CU_ASSERT_STRING_EQUAL(id, id2);
    CU_ASSERT(strcmp(hash, hash2) != 0);
    rc_free(other);
    char *tok2 = NULL;
    CU_ASSERT_EQUAL_FATAL(auth_join_token_create(&tok2, id2, hash2), 0);
    CU_ASSERT(strcmp(tok, tok2) != 0);
    rc_free(tok2);

    char upper[64], longer[64];
    snprintf(upper, sizeof(upper), "%s", tok);
    upper[0] = 'A';
    upper[1] = 'B';
    snprintf(longer, sizeof(longer), "%s0", tok);
    const char *bad[] = {"", ".", "0123456789abcdef", "0123456789abcdef.",
                         "0123456789abcdef.0123456789abcdef0123456789abcdeg",
                         "0123456789abcdef-0123456789abcdef0123456789abcdef", upper, longer};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CU_ASSERT_EQUAL(auth_join_token_parse(bad[i], id2, hash2), RC_EINVAL);
    CU_ASSERT_EQUAL(auth_join_token_parse(NULL, id2, hash2), RC_EINVAL);
    rc_free(tok);
}

/* ---- files ---------------------------------------------------------------------------- */

static char tmpdir[256];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/rayc-test-auth-XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(tmpdir));
}

static void rm_rf_tmpdir(void)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

static void test_write_secret(void)
{
    make_tmpdir();
    char path[512];
    snprintf(path, sizeof(path), "%s/secret", tmpdir);
    mode_t old = umask(0);
    CU_ASSERT_EQUAL(auth_write_secret(path, "first\n"), 0);
    umask(old);
    struct stat st;
    CU_ASSERT_EQUAL_FATAL(stat(path, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
    ino_t first_inode = st.st_ino;
    CU_ASSERT_EQUAL(auth_write_secret(path, "second"), 0);
    CU_ASSERT_EQUAL_FATAL(stat(path, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
    CU_ASSERT(st.st_ino != first_inode); /* replaced by rename, not rewritten in place */
    char *s = NULL;
    CU_ASSERT_EQUAL(auth_read_file(path, &s), 0);
    CU_ASSERT_STRING_EQUAL(s, "second");
    rc_free(s);
    /* No temporary file is left behind. */
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "test $(ls -A '%s' | wc -l) -eq 1", tmpdir);
    CU_ASSERT_EQUAL(system(cmd), 0);
    char missing[600];
    snprintf(missing, sizeof(missing), "%s/nodir/secret", tmpdir);
    CU_ASSERT(auth_write_secret(missing, "x") != 0);
    CU_ASSERT_EQUAL(auth_read_file(missing, &s), RC_ENOENT);
    /* Files over 1 MiB are refused. */
    char big[600];
    snprintf(big, sizeof(big), "%s/big", tmpdir);
    FILE *f = fopen(big, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fseek(f, 2 * 1024 * 1024, SEEK_SET), 0);
    fputc('x', f);
    fclose(f);
    CU_ASSERT_EQUAL(auth_read_file(big, &s), RC_ETOOBIG);
    rm_rf_tmpdir();
}

static void env_clear(void)
{
    unsetenv("RAYC_AUTH_TOKEN");
    unsetenv("RAYC_AUTH_TOKEN_PATH");
    unsetenv("RAYC_CA_CERT");
}

static void test_find_client_token(void)
{
    make_tmpdir();
    env_clear();
    setenv("RAYC_SESSION_ROOT", tmpdir, 1);
    char *tok = NULL, where[512] = "";
    CU_ASSERT_EQUAL(auth_find_client_token(&tok, where, sizeof(where)), RC_ENOENT);
    CU_ASSERT_PTR_NULL(tok);
    CU_ASSERT(strstr(where, "RAYC_AUTH_TOKEN (unset)") != NULL);
    CU_ASSERT(strstr(where, "RAYC_AUTH_TOKEN_PATH (unset)") != NULL);
    CU_ASSERT(strstr(where, "session_latest/auth_token (no such file)") != NULL);
    CU_ASSERT(strstr(where, tmpdir) != NULL);

    /* Session file only. */
    char sess[512], path[600], link[600];
    snprintf(sess, sizeof(sess), "%s/session_1", tmpdir);
    CU_ASSERT_EQUAL_FATAL(mkdir(sess, 0700), 0);
    snprintf(link, sizeof(link), "%s/session_latest", tmpdir);
    CU_ASSERT_EQUAL_FATAL(symlink(sess, link), 0);
    snprintf(path, sizeof(path), "%s/auth_token", sess);
    CU_ASSERT_EQUAL(auth_write_secret(path, "from-session\n"), 0);
    CU_ASSERT_EQUAL(auth_find_client_token(&tok, where, sizeof(where)), 0);
    CU_ASSERT_STRING_EQUAL(tok, "from-session");
    rc_free(tok);

    /* The path beats the session. */
    char tpath[600];
    snprintf(tpath, sizeof(tpath), "%s/tokfile", tmpdir);
    CU_ASSERT_EQUAL(auth_write_secret(tpath, "from-path \r\n"), 0);
    setenv("RAYC_AUTH_TOKEN_PATH", tpath, 1);
    CU_ASSERT_EQUAL(auth_find_client_token(&tok, where, sizeof(where)), 0);
    CU_ASSERT_STRING_EQUAL(tok, "from-path");
    rc_free(tok);

    /* The variable beats both; an empty one does not count. */
    setenv("RAYC_AUTH_TOKEN", "", 1);
    CU_ASSERT_EQUAL(auth_find_client_token(&tok, where, sizeof(where)), 0);
    CU_ASSERT_STRING_EQUAL(tok, "from-path");
    rc_free(tok);
    setenv("RAYC_AUTH_TOKEN", "from-env\n", 1);
    CU_ASSERT_EQUAL(auth_find_client_token(&tok, where, sizeof(where)), 0);
    CU_ASSERT_STRING_EQUAL(tok, "from-env");
    rc_free(tok);

    /* A missing path file falls through to the session, and is named when nothing is found. */
    unsetenv("RAYC_AUTH_TOKEN");
    setenv("RAYC_AUTH_TOKEN_PATH", "/nonexistent/tok", 1);
    CU_ASSERT_EQUAL(auth_find_client_token(&tok, where, sizeof(where)), 0);
    CU_ASSERT_STRING_EQUAL(tok, "from-session");
    rc_free(tok);
    CU_ASSERT_EQUAL(unlink(path), 0);
    CU_ASSERT_EQUAL(auth_find_client_token(&tok, where, sizeof(where)), RC_ENOENT);
    CU_ASSERT(strstr(where, "RAYC_AUTH_TOKEN_PATH=/nonexistent/tok (no such file)") != NULL);

    /* The CA certificate: $RAYC_CA_CERT, then the session's ca.crt. */
    char *ca = NULL;
    CU_ASSERT_EQUAL(auth_find_ca_cert(&ca, where, sizeof(where)), RC_ENOENT);
    CU_ASSERT(strstr(where, "RAYC_CA_CERT (unset)") != NULL);
    CU_ASSERT(strstr(where, "session_latest/ca.crt (no such file)") != NULL);
    test_ca c1 = ca_make("one"), c2 = ca_make("two");
    snprintf(path, sizeof(path), "%s/ca.crt", sess);
    CU_ASSERT_EQUAL(auth_write_secret(path, c1.cert), 0);
    CU_ASSERT_EQUAL(auth_find_ca_cert(&ca, where, sizeof(where)), 0);
    CU_ASSERT_STRING_EQUAL(ca, c1.cert);
    rc_free(ca);
    snprintf(tpath, sizeof(tpath), "%s/other.crt", tmpdir);
    CU_ASSERT_EQUAL(auth_write_secret(tpath, c2.cert), 0);
    setenv("RAYC_CA_CERT", tpath, 1);
    CU_ASSERT_EQUAL(auth_find_ca_cert(&ca, where, sizeof(where)), 0);
    CU_ASSERT_STRING_EQUAL(ca, c2.cert);
    rc_free(ca);
    ca_free(&c1);
    ca_free(&c2);
    env_clear();
    unsetenv("RAYC_SESSION_ROOT");
    rm_rf_tmpdir();
}

/* ---- fetching and pinning ------------------------------------------------------------- */

typedef struct tls_server {
    int listen_fd;
    int port;
    const char *key_pem, *cert_pem, *ca_pem;
    int handshakes; /* written by the server thread, read after join */
    char alpn[8];
} tls_server;

static int select_h2(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                     const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char h2[] = {2, 'h', '2'};
    return SSL_select_next_proto((unsigned char **)out, outlen, h2, sizeof(h2), in, inlen) ==
                   OPENSSL_NPN_NEGOTIATED
               ? SSL_TLSEXT_ERR_OK
               : SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* Accepts one connection, completes the handshake as a gRPC server would (leaf then CA in
 * the chain, ALPN h2 required), waits for the client to close. */
static void *tls_server_main(void *arg)
{
    tls_server *s = arg;
    /* The client may close while OpenSSL still writes (session tickets): EPIPE, not death. */
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, NULL);
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    X509 *leaf = x509_of(s->cert_pem), *ca = x509_of(s->ca_pem);
    BIO *kb = BIO_new_mem_buf(s->key_pem, -1);
    EVP_PKEY *key = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL);
    BIO_free(kb);
    int ok = ctx && leaf && ca && key && SSL_CTX_use_certificate(ctx, leaf) == 1 &&
             SSL_CTX_add1_chain_cert(ctx, ca) == 1 && SSL_CTX_use_PrivateKey(ctx, key) == 1;
    SSL_CTX_set_alpn_select_cb(ctx, select_h2, NULL);
    int fd = ok ? accept(s->listen_fd, NULL, NULL) : -1;
    if (fd >= 0) {
        SSL *ssl = SSL_new(ctx);
        SSL_set_fd(ssl, fd);
        if (SSL_accept(ssl) == 1) {
            s->handshakes++;
            const unsigned char *proto = NULL;
            unsigned int plen = 0;
            SSL_get0_alpn_selected(ssl, &proto, &plen);
            if (plen < sizeof(s->alpn)) {
                memcpy(s->alpn, proto, plen);
                s->alpn[plen] = '\0';
            }
            char buf[16];
            while (SSL_read(ssl, buf, sizeof(buf)) > 0) {
            }
        }
        SSL_free(ssl);
        close(fd);
    }
    EVP_PKEY_free(key);
    X509_free(ca);
    X509_free(leaf);
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return NULL;
}

static int listen_loopback(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 4) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    *port = ntohs(a.sin_port);
    return fd;
}

static void test_fetch_and_pin(void)
{
    test_ca ca = ca_make("rayc-ca"), other = ca_make("rayc-ca");
    char *key = NULL, *cert = NULL;
    CU_ASSERT_EQUAL_FATAL(auth_cert_issue(ca.key, ca.cert, "gcs", loopback, 1, 1, &key, &cert), 0);
    tls_server s = {.key_pem = key, .cert_pem = cert, .ca_pem = ca.cert};
    s.listen_fd = listen_loopback(&s.port);
    CU_ASSERT_FATAL(s.listen_fd >= 0);
    pthread_t th;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, tls_server_main, &s), 0);

    char addr[64], err[512] = "", *chain = NULL;
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", s.port);
    int rc = auth_fetch_peer_chain(addr, 5000, &chain, err, sizeof(err));
    pthread_join(th, NULL);
    close(s.listen_fd);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(s.handshakes, 1);
    CU_ASSERT_STRING_EQUAL(s.alpn, "h2");
    CU_ASSERT_PTR_NOT_NULL_FATAL(chain);
    /* Leaf first, then the CA. */
    CU_ASSERT_EQUAL(strncmp(chain, cert, strlen(cert)), 0);
    CU_ASSERT(strstr(chain, ca.cert) != NULL);

    char pin[AUTH_CA_HASH_MAX], wrong[AUTH_CA_HASH_MAX], leafpin[AUTH_CA_HASH_MAX];
    CU_ASSERT_EQUAL(auth_ca_hash(ca.cert, pin, sizeof(pin)), 0);
    CU_ASSERT_EQUAL(auth_ca_hash(other.cert, wrong, sizeof(wrong)), 0);
    CU_ASSERT_EQUAL(auth_ca_hash(cert, leafpin, sizeof(leafpin)), 0);
    char *got = NULL;
    CU_ASSERT_EQUAL(auth_pin_ca(chain, pin, &got, err, sizeof(err)), 0);
    CU_ASSERT_PTR_NOT_NULL(got);
    if (got)
        CU_ASSERT_STRING_EQUAL(got, ca.cert);
    rc_free(got);
    got = NULL;
    CU_ASSERT_EQUAL(auth_pin_ca(chain, wrong, &got, err, sizeof(err)), RC_EAUTH);
    CU_ASSERT_PTR_NULL(got);
    CU_ASSERT(strstr(err, pin) != NULL);   /* names the server's CA */
    CU_ASSERT(strstr(err, wrong) != NULL); /* and the pin */
    /* Pinning the leaf's own key is refused: it is no CA. */
    CU_ASSERT_EQUAL(auth_pin_ca(chain, leafpin, &got, err, sizeof(err)), RC_EAUTH);
    CU_ASSERT(strstr(err, "not a self-signed CA") != NULL);
    /* A chain whose leaf the pinned CA did not sign. */
    char *key2 = NULL, *cert2 = NULL;
    CU_ASSERT_EQUAL_FATAL(auth_cert_issue(other.key, other.cert, "gcs", NULL, 0, 1, &key2, &cert2),
                          0);
    size_t n = strlen(cert2) + strlen(ca.cert) + 1;
    char *mixed = rc_malloc(n);
    snprintf(mixed, n, "%s%s", cert2, ca.cert);
    CU_ASSERT_EQUAL(auth_pin_ca(mixed, pin, &got, err, sizeof(err)), RC_EAUTH);
    CU_ASSERT(strstr(err, "not issued by") != NULL);
    CU_ASSERT_EQUAL(auth_pin_ca(chain, "sha256:zz", &got, err, sizeof(err)), RC_EINVAL);
    CU_ASSERT_EQUAL(auth_pin_ca("", pin, &got, err, sizeof(err)), RC_EAUTH);
    CU_ASSERT_PTR_NULL(got);

    /* Nobody listening: unavailable, with a sentence. */
    int closed_port = 0;
    int fd = listen_loopback(&closed_port);
    close(fd);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", closed_port);
    char *none = NULL;
    CU_ASSERT_EQUAL(auth_fetch_peer_chain(addr, 2000, &none, err, sizeof(err)), RC_EUNAVAIL);
    CU_ASSERT(strstr(err, "cannot connect") != NULL);
    CU_ASSERT_PTR_NULL(none);
    CU_ASSERT_EQUAL(auth_fetch_peer_chain("no-port", 2000, &none, err, sizeof(err)),
                    RC_EUNAVAIL);

    rc_free(mixed);
    rc_free(key2);
    rc_free(cert2);
    rc_free(chain);
    rc_free(key);
    rc_free(cert);
    ca_free(&ca);
    ca_free(&other);
}

/* A server that accepts and says nothing: the handshake times out within the bound. */
static void *silent_server_main(void *arg)
{
    tls_server *s = arg;
    int fd = accept(s->listen_fd, NULL, NULL);
    if (fd >= 0) {
        char buf[512];
        while (read(fd, buf, sizeof(buf)) > 0) {
        }
        close(fd);
    }
    return NULL;
}

static void test_fetch_timeout(void)
{
    tls_server s = {0};
    s.listen_fd = listen_loopback(&s.port);
    CU_ASSERT_FATAL(s.listen_fd >= 0);
    pthread_t th;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, silent_server_main, &s), 0);
    char addr[64], err[256] = "", *chain = NULL;
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", s.port);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CU_ASSERT_EQUAL(auth_fetch_peer_chain(addr, 300, &chain, err, sizeof(err)), RC_EUNAVAIL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s_elapsed = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    CU_ASSERT(s_elapsed >= 0.25 && s_elapsed < 3.0);
    CU_ASSERT(strstr(err, "handshake") != NULL);
    pthread_join(th, NULL);
    close(s.listen_fd);
}

int main(void)
{
    static const unit_case cases[] = {
        UNIT_CASE(test_ca_create),        UNIT_CASE(test_issue_and_verify),
        UNIT_CASE(test_ca_hash),          UNIT_CASE(test_csr_sign),
        UNIT_CASE(test_token_round_trip), UNIT_CASE(test_token_refused),
        UNIT_CASE(test_token_concurrent), UNIT_CASE(test_join_token),
        UNIT_CASE(test_write_secret),     UNIT_CASE(test_find_client_token),
        UNIT_CASE(test_fetch_and_pin),    UNIT_CASE(test_fetch_timeout),
    };
    return unit_run("auth", cases, UNIT_N(cases));
}
