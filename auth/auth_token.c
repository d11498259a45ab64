/*
 * Bearer tokens and join tokens (ARCHITECTURE §14), and the base64url they are written in.
 *
 * A bearer token is "rayc1.<base64url(payload)>.<base64url(signature)>": the payload is
 * "v1|admin|<id>|-|<iat>|<exp>" or "v1|job|<id>|<job hex8>|<iat>|<exp>", the signature the
 * DER ECDSA signature of the payload bytes with the CA key (SHA-256). The parser is strict
 * and bounded (tokens come from the network and are fuzzed): at most AUTH__TOKEN_MAX
 * characters, unpadded canonical base64url, exactly six payload fields, decimal times
 * without signs. A verifier is immutable after creation and so usable from any number of
 * threads at once; each check makes its own EVP_MD_CTX.
 *
 * A join token is "<16 hex id>.<32 hex secret>"; the GCS keeps only the SHA-256 of its text.
 */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

#include "auth_int.h"
#include "rc_alloc.h"
#include "rc_err.h"

enum {
    AUTH__TOKEN_MAX = 1024,
    AUTH__PAYLOAD_MAX = 256,
    AUTH__SIG_MAX = 80, /* a DER ECDSA P-256 signature is at most 72 bytes */
    AUTH__JOIN_ID_HEX = 16,
    AUTH__JOIN_SECRET_HEX = 32,
};

static const char auth__prefix[] = "rayc1.";

struct auth_verifier {
    EVP_PKEY *pub;
};

/* ---- base64url (RFC 4648 §5, no padding) ---------------------------------------------- */

static const char auth__b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static size_t auth__b64_encode(const unsigned char *in, size_t n, char *out)
{
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[o++] = auth__b64[v >> 18];
        out[o++] = auth__b64[(v >> 12) & 63];
        out[o++] = auth__b64[(v >> 6) & 63];
        out[o++] = auth__b64[v & 63];
    }
    if (n - i == 1) {
        unsigned v = (unsigned)in[i] << 16;
        out[o++] = auth__b64[v >> 18];
        out[o++] = auth__b64[(v >> 12) & 63];
    } else if (n - i == 2) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
        out[o++] = auth__b64[v >> 18];
        out[o++] = auth__b64[(v >> 12) & 63];
        out[o++] = auth__b64[(v >> 6) & 63];
    }
    out[o] = '\0';
    return o;
}

static int auth__b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* Decodes n characters into out (cap bytes). -1 for anything but canonical unpadded
 * base64url (bad characters, an impossible length, non-zero leftover bits) or overflow. */
static long auth__b64_decode(const char *in, size_t n, unsigned char *out, size_t cap)
{
    if (n % 4 == 1 || n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0) > cap)
        return -1;
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = auth__b64_value(in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6 | (unsigned)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
        return -1;
    return (long)o;
}

/* ---- payload -------------------------------------------------------------------------- */

static int auth__parse_i64(const char *s, size_t n, int64_t *out)
{
    if (n == 0 || n > 18 || (n > 1 && s[0] == '0'))
        return -1; /* 18 digits cannot overflow int64 */
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

static int auth__unhex(const char *s, size_t n, uint8_t *out)
{
    if (!auth__is_lower_hex(s, n))
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = s[2 * i] <= '9' ? s[2 * i] - '0' : s[2 * i] - 'a' + 10;
        int lo = s[2 * i + 1] <= '9' ? s[2 * i + 1] - '0' : s[2 * i + 1] - 'a' + 10;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

static int auth__payload_parse(const char *p, size_t n, auth_claims *c)
{
    const char *field[6];
    size_t len[6];
    size_t k = 0, start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && p[i] != '|')
            continue;
        if (k == 6)
            return -1;
        field[k] = p + start;
        len[k++] = i - start;
        start = i + 1;
    }
    if (k != 6 || len[0] != 2 || memcmp(field[0], "v1", 2) != 0)
        return -1;
    auth_claims out;
    memset(&out, 0, sizeof(out));
    if (len[1] == 5 && memcmp(field[1], "admin", 5) == 0) {
        out.kind = AUTH_TOKEN_ADMIN;
        if (len[3] != 1 || field[3][0] != '-')
            return -1;
    } else if (len[1] == 3 && memcmp(field[1], "job", 3) == 0) {
        out.kind = AUTH_TOKEN_JOB;
        if (len[3] != 8 || auth__unhex(field[3], 8, out.job_id) != 0)
            return -1;
    } else {
        return -1;
    }
    if (len[2] != AUTH_TOKEN_ID_HEX || !auth__is_lower_hex(field[2], len[2]))
        return -1;
    memcpy(out.id, field[2], AUTH_TOKEN_ID_HEX);
    out.id[AUTH_TOKEN_ID_HEX] = '\0';
    if (auth__parse_i64(field[4], len[4], &out.issued_at) != 0 ||
        auth__parse_i64(field[5], len[5], &out.expires_at) != 0)
        return -1;
    *c = out;
    return 0;
}

static int auth__payload_format(const auth_claims *c, char *out, size_t outlen)
{
    char job[9];
    if (c->kind == AUTH_TOKEN_JOB)
        auth__hex(c->job_id, sizeof(c->job_id), job);
    else
        snprintf(job, sizeof(job), "-");
    int n = snprintf(out, outlen, "v1|%s|%s|%s|%lld|%lld",
                     c->kind == AUTH_TOKEN_JOB ? "job" : "admin", c->id, job,
                     (long long)c->issued_at, (long long)c->expires_at);
    return n > 0 && (size_t)n < outlen ? n : -1;
}

/* ---- minting and verifying ------------------------------------------------------------ */

int auth_token_mint(const char *ca_key_pem, auth_claims *claims, char **token)
{
    if (!claims || (claims->kind != AUTH_TOKEN_ADMIN && claims->kind != AUTH_TOKEN_JOB) ||
        claims->issued_at < 0 || claims->expires_at < 0 ||
        claims->issued_at > 999999999999999999LL || claims->expires_at > 999999999999999999LL)
        return RC_EINVAL;
    auth_claims c = *claims;
    if (c.id[0] == '\0') {
        unsigned char raw[AUTH_TOKEN_ID_HEX / 2];
        if (RAND_bytes(raw, sizeof(raw)) != 1)
            return RC_EIO;
        auth__hex(raw, sizeof(raw), c.id);
    }
    if (strnlen(c.id, sizeof(c.id)) != AUTH_TOKEN_ID_HEX ||
        !auth__is_lower_hex(c.id, AUTH_TOKEN_ID_HEX))
        return RC_EINVAL;
    char payload[AUTH__PAYLOAD_MAX];
    int plen = auth__payload_format(&c, payload, sizeof(payload));
    if (plen < 0)
        return RC_EINVAL;

    EVP_PKEY *key = auth__key_from_pem(ca_key_pem);
    if (!key)
        return RC_EINVAL;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char sig[AUTH__SIG_MAX];
    size_t siglen = sizeof(sig);
    int ok = md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
             EVP_DigestSign(md, sig, &siglen, (const unsigned char *)payload, (size_t)plen) == 1;
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    ERR_clear_error();
    if (!ok)
        return RC_EIO;

    size_t cap = sizeof(auth__prefix) + (size_t)plen * 4 / 3 + 4 + siglen * 4 / 3 + 4;
    char *t = rc_malloc(cap);
    size_t o = sizeof(auth__prefix) - 1;
    memcpy(t, auth__prefix, o);
    o += auth__b64_encode((const unsigned char *)payload, (size_t)plen, t + o);
    t[o++] = '.';
    auth__b64_encode(sig, siglen, t + o);
    *claims = c;
    *token = t;
    return 0;
}

int auth_verifier_create(const char *ca_cert_pem, auth_verifier **out)
{
    X509 *ca = auth__x509_from_pem(ca_cert_pem);
    if (!ca)
        return RC_EINVAL;
    EVP_PKEY *pub = X509_get_pubkey(ca);
    X509_free(ca);
    ERR_clear_error();
    if (!pub || EVP_PKEY_get_base_id(pub) != EVP_PKEY_EC) {
        EVP_PKEY_free(pub);
        return RC_EINVAL;
    }
    auth_verifier *v = RC_NEW(auth_verifier);
    v->pub = pub;
    *out = v;
    return 0;
}

void auth_verifier_destroy(auth_verifier *v)
{
    if (!v)
        return;
    EVP_PKEY_free(v->pub);
    rc_free(v);
}

int auth_token_verify(const auth_verifier *v, const char *token, int64_t now, auth_claims *out,
                      char *err, size_t errlen)
{
    static const char not_ours[] = "not a rayc token";
    size_t n = token ? strnlen(token, AUTH__TOKEN_MAX + 1) : 0;
    size_t plen_prefix = sizeof(auth__prefix) - 1;
    if (!v || n > AUTH__TOKEN_MAX || n <= plen_prefix ||
        memcmp(token, auth__prefix, plen_prefix) != 0) {
        auth__err(err, errlen, "%s", not_ours);
        return RC_EAUTH;
    }
    const char *body = token + plen_prefix;
    const char *dot = memchr(body, '.', n - plen_prefix);
    if (!dot || memchr(dot + 1, '.', (size_t)(token + n - dot - 1))) {
        auth__err(err, errlen, "%s", not_ours);
        return RC_EAUTH;
    }
    unsigned char payload[AUTH__PAYLOAD_MAX], sig[AUTH__SIG_MAX];
    long plen = auth__b64_decode(body, (size_t)(dot - body), payload, sizeof(payload));
    long slen = auth__b64_decode(dot + 1, (size_t)(token + n - dot - 1), sig, sizeof(sig));
    auth_claims c;
    if (plen <= 0 || slen <= 0 || auth__payload_parse((const char *)payload, (size_t)plen, &c)) {
        auth__err(err, errlen, "%s", not_ours);
        return RC_EAUTH;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, v->pub) == 1 &&
             EVP_DigestVerify(md, sig, (size_t)slen, payload, (size_t)plen) == 1;
    EVP_MD_CTX_free(md);
    ERR_clear_error();
    if (!ok) {
        auth__err(err, errlen, "token signature does not verify with this cluster's CA");
        return RC_EAUTH;
    }
    if (c.expires_at != 0 && now >= c.expires_at) {
        auth__err(err, errlen, "token has expired");
        return RC_EAUTH;
    }
    if (out)
        *out = c;
    return 0;
}

/* ---- join tokens ---------------------------------------------------------------------- */

static void auth__sha256_hex(const char *s, size_t n, char *out)
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_Digest(s, n, md, &mdlen, EVP_sha256(), NULL);
    auth__hex(md, sizeof(md), out);
}

int auth_join_token_create(char **token, char *id_out, char *secret_hash_out)
{
    unsigned char id[AUTH__JOIN_ID_HEX / 2], secret[AUTH__JOIN_SECRET_HEX / 2];
    if (RAND_bytes(id, sizeof(id)) != 1 || RAND_bytes(secret, sizeof(secret)) != 1) {
        ERR_clear_error();
        return RC_EIO;
    }
    char *t = rc_malloc(AUTH__JOIN_ID_HEX + 1 + AUTH__JOIN_SECRET_HEX + 1);
    auth__hex(id, sizeof(id), t);
    t[AUTH__JOIN_ID_HEX] = '.';
    auth__hex(secret, sizeof(secret), t + AUTH__JOIN_ID_HEX + 1);
    if (id_out) {
        memcpy(id_out, t, AUTH__JOIN_ID_HEX);
        id_out[AUTH__JOIN_ID_HEX] = '\0';
    }
    if (secret_hash_out)
        auth__sha256_hex(t, strlen(t), secret_hash_out);
    *token = t;
    return 0;
}

int auth_join_token_parse(const char *token, char *id_out, char *secret_hash_out)
{
    const size_t len = AUTH__JOIN_ID_HEX + 1 + AUTH__JOIN_SECRET_HEX;
    if (!token || strnlen(token, len + 1) != len || token[AUTH__JOIN_ID_HEX] != '.' ||
        !auth__is_lower_hex(token, AUTH__JOIN_ID_HEX) ||
        !auth__is_lower_hex(token + AUTH__JOIN_ID_HEX + 1, AUTH__JOIN_SECRET_HEX))
        return RC_EINVAL;
    if (id_out) {
        memcpy(id_out, token, AUTH__JOIN_ID_HEX);
        id_out[AUTH__JOIN_ID_HEX] = '\0';
    }
    if (secret_hash_out)
        auth__sha256_hex(token, len, secret_hash_out);
    return 0;
}
