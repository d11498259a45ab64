/*
 * Helpers shared by auth's files (auth_int.h): PEM in and out of OpenSSL objects, hex, the
 * SPKI hash that names a CA, and the err sentence. No state; any thread.
 */
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "auth_int.h"
#include "rc_alloc.h"
#include "rc_err.h"

BIO *auth__bio_from_pem(const char *pem)
{
    if (!pem)
        return NULL;
    size_t n = strnlen(pem, AUTH__PEM_MAX + 1);
    if (n > AUTH__PEM_MAX)
        return NULL;
    return BIO_new_mem_buf(pem, (int)n);
}

X509 *auth__x509_from_pem(const char *pem)
{
    BIO *b = auth__bio_from_pem(pem);
    if (!b)
        return NULL;
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    ERR_clear_error();
    return x;
}

EVP_PKEY *auth__key_from_pem(const char *pem)
{
    BIO *b = auth__bio_from_pem(pem);
    if (!b)
        return NULL;
    /* An empty passphrase callback result: encrypted keys fail instead of prompting. */
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, (void *)"");
    BIO_free(b);
    ERR_clear_error();
    return k;
}

char *auth__bio_take(BIO *b)
{
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    if (n < 0 || !data)
        n = 0;
    return rc_strndup(data ? data : "", (size_t)n);
}

void auth__hex(const unsigned char *data, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[data[i] >> 4];
        out[2 * i + 1] = digits[data[i] & 15];
    }
    out[2 * n] = '\0';
}

int auth__is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
    }
    return 1;
}

int auth__spki_hash(X509 *x, char *out)
{
    unsigned char *der = NULL;
    int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
    if (n <= 0) {
        ERR_clear_error();
        return RC_EINVAL;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int ok = EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha256(), NULL);
    OPENSSL_free(der);
    if (!ok || mdlen != 32) {
        ERR_clear_error();
        return RC_EINVAL;
    }
    memcpy(out, "sha256:", 7);
    auth__hex(md, mdlen, out + 7);
    return 0;
}

void auth__err(char *err, size_t errlen, const char *fmt, ...)
{
    ERR_clear_error();
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}
