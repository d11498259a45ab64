/*
 * Keys, the cluster CA, CSRs and the certificates the CA signs, plus reading, verifying and
 * hashing certificates (ARCHITECTURE §14).
 *
 * Every key is EC P-256 and every signature ECDSA with SHA-256. The CA is self-signed with
 * basicConstraints critical CA:TRUE and keyUsage keyCertSign, cRLSign. A leaf gets only what
 * the CA decided (CN, IP subjectAltNames plus DNS:localhost, serverAuth and clientAuth): the
 * CSR contributes its public key and nothing else, after its self-signature is checked. The
 * IP subjectAltNames are what gRPC core's SSL credentials check against an IP target; a
 * certificate made on the host it names (auth_cert_issue_local) also carries the host's name,
 * which browsers and curl check when an admin types it.
 * notBefore is five minutes in the past so a peer whose clock runs a little behind accepts
 * a certificate made a moment ago. No state; any thread.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "auth_int.h"
#include "rc_alloc.h"
#include "rc_buf.h"
#include "rc_err.h"

enum { AUTH__CLOCK_SKEW_S = 300, AUTH__CN_MAX = 64 };

int auth_key_create(char **key_pem)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (!key) {
        ERR_clear_error();
        return RC_EIO;
    }
    BIO *b = BIO_new(BIO_s_mem());
    int ok = b && PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL);
    if (ok)
        *key_pem = auth__bio_take(b);
    BIO_free(b);
    EVP_PKEY_free(key);
    ERR_clear_error();
    return ok ? 0 : RC_EIO;
}

static char *auth__cert_pem(X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *pem = NULL;
    if (b && PEM_write_bio_X509(b, x))
        pem = auth__bio_take(b);
    BIO_free(b);
    ERR_clear_error();
    return pem;
}

static int auth__cn_ok(const char *cn)
{
    return cn && *cn && strlen(cn) <= AUTH__CN_MAX;
}

static int auth__set_cn(X509_NAME *name, const char *cn)
{
    return X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
                                      -1, 0);
}

/* A positive random 128-bit serial (RFC 5280 allows 20 octets; the top bit is cleared so
 * the DER INTEGER stays positive without padding, and a zero serial is impossible). */
static int auth__set_random_serial(X509 *x)
{
    unsigned char bytes[16];
    if (RAND_bytes(bytes, sizeof(bytes)) != 1)
        return 0;
    bytes[0] = (unsigned char)((bytes[0] & 0x7f) | 0x40);
    BIGNUM *bn = BN_bin2bn(bytes, sizeof(bytes), NULL);
    ASN1_INTEGER *serial = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    int ok = serial && X509_set_serialNumber(x, serial);
    ASN1_INTEGER_free(serial);
    BN_free(bn);
    return ok;
}

static int auth__add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    if (!ext)
        return 0;
    int ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

/* The parts every certificate shares: v3, serial, validity, subject CN, public key. */
static X509 *auth__cert_new(const char *cn, int days, EVP_PKEY *pubkey)
{
    X509 *x = X509_new();
    if (!x)
        return NULL;
    int ok = X509_set_version(x, X509_VERSION_3) && auth__set_random_serial(x) &&
             X509_gmtime_adj(X509_getm_notBefore(x), -AUTH__CLOCK_SKEW_S) &&
             X509_time_adj_ex(X509_getm_notAfter(x), days, 0, NULL) &&
             auth__set_cn(X509_get_subject_name(x), cn) && X509_set_pubkey(x, pubkey);
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

int auth_ca_create(const char *cn, int days, char **key_pem, char **cert_pem)
{
    if (!auth__cn_ok(cn) || days <= 0)
        return RC_EINVAL;
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *x = key ? auth__cert_new(cn, days, key) : NULL;
    int ok = x != NULL && X509_set_issuer_name(x, X509_get_subject_name(x));
    if (ok) {
        X509V3_CTX ctx;
        X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
        ok = auth__add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE") &&
             auth__add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign") &&
             auth__add_ext(x, &ctx, NID_subject_key_identifier, "hash") &&
             X509_sign(x, key, EVP_sha256()) > 0;
    }
    char *kp = NULL, *cp = NULL;
    if (ok) {
        BIO *b = BIO_new(BIO_s_mem());
        if (b && PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL))
            kp = auth__bio_take(b);
        BIO_free(b);
        cp = auth__cert_pem(x);
        ok = kp && cp;
    }
    X509_free(x);
    EVP_PKEY_free(key);
    ERR_clear_error();
    if (!ok) {
        rc_free(kp);
        rc_free(cp);
        return RC_EIO;
    }
    *key_pem = kp;
    *cert_pem = cp;
    return 0;
}

int auth_csr_create(const char *key_pem, const char *cn, char **csr_pem)
{
    if (!auth__cn_ok(cn))
        return RC_EINVAL;
    EVP_PKEY *key = auth__key_from_pem(key_pem);
    if (!key)
        return RC_EINVAL;
    X509_REQ *req = X509_REQ_new();
    int ok = req && X509_REQ_set_version(req, X509_REQ_VERSION_1) &&
             auth__set_cn(X509_REQ_get_subject_name(req), cn) && X509_REQ_set_pubkey(req, key) &&
             X509_REQ_sign(req, key, EVP_sha256()) > 0;
    char *pem = NULL;
    if (ok) {
        BIO *b = BIO_new(BIO_s_mem());
        if (b && PEM_write_bio_X509_REQ(b, req))
            pem = auth__bio_take(b);
        BIO_free(b);
    }
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    ERR_clear_error();
    if (!pem)
        return RC_EIO;
    *csr_pem = pem;
    return 0;
}

/* 1 for a DNS name OpenSSL's extension parser cannot misread: labels of letters, digits and
 * '-', separated by single dots, at most 253 characters. */
static int auth__dns_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0, label = 0;
    if (n == 0 || n > 253 || name[0] == '.' || name[0] == '-' || name[n - 1] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (name[i] == '.') {
            if (label == 0)
                return 0;
            label = 0;
        } else if (isalnum((unsigned char)name[i]) || name[i] == '-') {
            if (++label > 63)
                return 0;
        } else {
            return 0;
        }
    }
    return 1;
}

/* "IP:a,IP:b,DNS:name,DNS:localhost", each IP checked by inet_pton and each name by
 * auth__dns_name_ok so a bad one gets a clear error (and no ',' or ':' tricks reach
 * OpenSSL's extension parser). */
static int auth__san_value(const char *const *ips, size_t n_ips, const char *const *dns,
                           size_t n_dns, rc_buf *out, char *err, size_t errlen)
{
    if (n_ips > AUTH_MAX_SANS || n_dns > AUTH_MAX_SANS) {
        auth__err(err, errlen, "too many IP addresses or names for one certificate (%zu and %zu, at most %d each)",
                  n_ips, n_dns, AUTH_MAX_SANS);
        return RC_EINVAL;
    }
    for (size_t i = 0; i < n_ips; i++) {
        unsigned char addr[16];
        const char *ip = ips[i];
        if (!ip || strlen(ip) >= 64 ||
            (inet_pton(AF_INET, ip, addr) != 1 && inet_pton(AF_INET6, ip, addr) != 1)) {
            auth__err(err, errlen, "'%.64s' is not an IP address", ip ? ip : "(null)");
            return RC_EINVAL;
        }
        rc_buf_printf(out, "IP:%s,", ip);
    }
    for (size_t i = 0; i < n_dns; i++) {
        if (!auth__dns_name_ok(dns[i])) {
            auth__err(err, errlen, "'%.64s' is not a DNS name", dns[i] ? dns[i] : "(null)");
            return RC_EINVAL;
        }
        if (strcasecmp(dns[i], "localhost") != 0)
            rc_buf_printf(out, "DNS:%s,", dns[i]);
    }
    rc_buf_puts(out, "DNS:localhost");
    return 0;
}

static int auth__req_verified_key(const char *csr_pem, EVP_PKEY **key, char *err, size_t errlen)
{
    BIO *b = auth__bio_from_pem(csr_pem);
    X509_REQ *req = b ? PEM_read_bio_X509_REQ(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (!req) {
        auth__err(err, errlen, "the certificate signing request does not parse");
        return RC_EINVAL;
    }
    EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
    if (!pub || X509_REQ_verify(req, pub) != 1) {
        X509_REQ_free(req);
        auth__err(err, errlen,
                  "the certificate signing request's signature does not verify with its key");
        return RC_EINVAL;
    }
    EVP_PKEY_up_ref(pub);
    *key = pub;
    X509_REQ_free(req);
    ERR_clear_error();
    return 0;
}

static int auth__ca_load(const char *ca_key_pem, const char *ca_cert_pem, EVP_PKEY **key,
                         X509 **cert, char *err, size_t errlen)
{
    *key = auth__key_from_pem(ca_key_pem);
    *cert = auth__x509_from_pem(ca_cert_pem);
    if (*key && *cert && X509_check_private_key(*cert, *key) == 1)
        return 0;
    EVP_PKEY_free(*key);
    X509_free(*cert);
    *key = NULL;
    *cert = NULL;
    auth__err(err, errlen, "the CA key and certificate do not parse or do not match");
    return RC_EINVAL;
}

static int auth__sign_csr(const char *ca_key_pem, const char *ca_cert_pem, const char *csr_pem,
                          const char *cn, const char *const *ips, size_t n_ips, const char *const *dns,
                          size_t n_dns, int days, char **cert_pem, char *err, size_t errlen)
{
    if (!auth__cn_ok(cn) || days <= 0) {
        auth__err(err, errlen, "bad common name or validity");
        return RC_EINVAL;
    }
    rc_buf san = RC_BUF_INIT;
    int rc = auth__san_value(ips, n_ips, dns, n_dns, &san, err, errlen);
    EVP_PKEY *ca_key = NULL, *pub = NULL;
    X509 *ca = NULL, *x = NULL;
    if (rc == 0)
        rc = auth__ca_load(ca_key_pem, ca_cert_pem, &ca_key, &ca, err, errlen);
    if (rc == 0)
        rc = auth__req_verified_key(csr_pem, &pub, err, errlen);
    if (rc == 0) {
        x = auth__cert_new(cn, days, pub);
        int ok = x && X509_set_issuer_name(x, X509_get_subject_name(ca));
        if (ok) {
            X509V3_CTX ctx;
            X509V3_set_ctx(&ctx, ca, x, NULL, NULL, 0);
            ok = auth__add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") &&
                 auth__add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature,keyEncipherment") &&
                 auth__add_ext(x, &ctx, NID_ext_key_usage, "serverAuth,clientAuth") &&
                 auth__add_ext(x, &ctx, NID_subject_alt_name, rc_buf_cstr(&san)) &&
                 auth__add_ext(x, &ctx, NID_subject_key_identifier, "hash") &&
                 auth__add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always") &&
                 X509_sign(x, ca_key, EVP_sha256()) > 0;
        }
        char *pem = ok ? auth__cert_pem(x) : NULL;
        if (pem)
            *cert_pem = pem;
        else {
            auth__err(err, errlen, "could not make the certificate");
            rc = RC_EIO;
        }
    }
    X509_free(x);
    X509_free(ca);
    EVP_PKEY_free(pub);
    EVP_PKEY_free(ca_key);
    rc_buf_free(&san);
    ERR_clear_error();
    return rc;
}

int auth_cert_sign_csr(const char *ca_key_pem, const char *ca_cert_pem, const char *csr_pem,
                       const char *cn, const char *const *ips, size_t n_ips, int days,
                       char **cert_pem, char *err, size_t errlen)
{
    return auth__sign_csr(ca_key_pem, ca_cert_pem, csr_pem, cn, ips, n_ips, NULL, 0, days, cert_pem, err,
                          errlen);
}

static int auth__issue(const char *ca_key_pem, const char *ca_cert_pem, const char *cn,
                       const char *const *ips, size_t n_ips, const char *const *dns, size_t n_dns,
                       int days, char **key_pem, char **cert_pem)
{
    char *key = NULL, *csr = NULL;
    int rc = auth_key_create(&key);
    if (rc == 0)
        rc = auth_csr_create(key, cn, &csr);
    if (rc == 0)
        rc = auth__sign_csr(ca_key_pem, ca_cert_pem, csr, cn, ips, n_ips, dns, n_dns, days, cert_pem,
                            NULL, 0);
    rc_free(csr);
    if (rc == 0)
        *key_pem = key;
    else
        rc_free(key);
    return rc;
}

int auth_cert_issue(const char *ca_key_pem, const char *ca_cert_pem, const char *cn,
                    const char *const *ips, size_t n_ips, int days, char **key_pem,
                    char **cert_pem)
{
    return auth__issue(ca_key_pem, ca_cert_pem, cn, ips, n_ips, NULL, 0, days, key_pem, cert_pem);
}

int auth_cert_issue_local(const char *ca_key_pem, const char *ca_cert_pem, const char *cn,
                          const char *const *ips, size_t n_ips, int days, char **key_pem,
                          char **cert_pem)
{
    char host[256] = "";
    const char *dns[1] = {host};
    size_t n_dns = gethostname(host, sizeof(host) - 1) == 0 && auth__dns_name_ok(host) ? 1 : 0;
    return auth__issue(ca_key_pem, ca_cert_pem, cn, ips, n_ips, dns, n_dns, days, key_pem, cert_pem);
}

int auth_cert_cn(const char *cert_pem, char *out, size_t outlen)
{
    X509 *x = auth__x509_from_pem(cert_pem);
    if (!x)
        return RC_EINVAL;
    X509_NAME *name = X509_get_subject_name(x);
    int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    unsigned char *utf8 = NULL;
    int n = -1;
    if (idx >= 0)
        n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx)));
    int rc = 0;
    if (n < 0 || memchr(utf8, '\0', (size_t)n))
        rc = RC_EINVAL; /* no CN, or one with an embedded NUL that would truncate it */
    else if ((size_t)n >= outlen)
        rc = RC_ERANGE;
    else {
        memcpy(out, utf8, (size_t)n);
        out[n] = '\0';
    }
    OPENSSL_free(utf8);
    X509_free(x);
    ERR_clear_error();
    return rc;
}

int auth_cert_verify(const char *ca_cert_pem, const char *cert_pem, char *err, size_t errlen)
{
    X509 *ca = auth__x509_from_pem(ca_cert_pem);
    if (!ca) {
        auth__err(err, errlen, "the CA certificate does not parse");
        return RC_EINVAL;
    }
    X509 *x = auth__x509_from_pem(cert_pem);
    if (!x) {
        X509_free(ca);
        auth__err(err, errlen, "the certificate does not parse");
        return RC_EAUTH;
    }
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int ok = store && ctx && X509_STORE_add_cert(store, ca) &&
             X509_STORE_CTX_init(ctx, store, x, NULL) && X509_verify_cert(ctx) == 1;
    int rc = 0;
    if (!ok) {
        int e = ctx ? X509_STORE_CTX_get_error(ctx) : X509_V_ERR_OUT_OF_MEM;
        auth__err(err, errlen, "the certificate does not verify with the CA: %s",
                  X509_verify_cert_error_string(e));
        rc = RC_EAUTH;
    }
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    X509_free(x);
    X509_free(ca);
    ERR_clear_error();
    return rc;
}

int auth_ca_hash(const char *cert_pem, char *out, size_t outlen)
{
    if (outlen < 7 + 64 + 1)
        return RC_ERANGE;
    X509 *x = auth__x509_from_pem(cert_pem);
    if (!x)
        return RC_EINVAL;
    int rc = auth__spki_hash(x, out);
    X509_free(x);
    return rc;
}

/* Points at the 64 hex digits of a well-formed pin, or NULL. */
static const char *auth__pin_digits(const char *pin)
{
    if (!pin || strncasecmp(pin, "sha256:", 7) != 0)
        return NULL;
    const char *hex = pin + 7;
    if (strnlen(hex, 65) != 64)
        return NULL;
    for (int i = 0; i < 64; i++) {
        char c = hex[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return NULL;
    }
    return hex;
}

int auth_ca_hash_equal(const char *a, const char *b)
{
    const char *ha = auth__pin_digits(a), *hb = auth__pin_digits(b);
    return ha && hb && strncasecmp(ha, hb, 64) == 0;
}
