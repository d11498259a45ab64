/*
 * auth's private helpers, shared by its files and by nothing outside auth/: PEM parsing into
 * OpenSSL objects, BIO contents into rc_malloc'd strings, hex, and the err sentence. Objects
 * returned are owned by the caller (free with the matching OpenSSL *_free). Any thread.
 */
#ifndef RAYC_AUTH_AUTH_INT_H
#define RAYC_AUTH_AUTH_INT_H

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>

#include "auth.h"

/* Inputs larger than this are refused before OpenSSL sees them. */
#define AUTH__PEM_MAX (256u * 1024u)

/* The first certificate / private key in pem, or NULL (OpenSSL's error queue is cleared). */
X509 *auth__x509_from_pem(const char *pem);
EVP_PKEY *auth__key_from_pem(const char *pem);
/* A memory BIO over pem (read-only), or NULL when pem is NULL or too large. */
BIO *auth__bio_from_pem(const char *pem);
/* The BIO's contents as a NUL-terminated string the caller frees with rc_free. */
char *auth__bio_take(BIO *b);
/* Writes n bytes as lowercase hex into out (2n+1 bytes). */
void auth__hex(const unsigned char *data, size_t n, char *out);
/* Whether s[0..n) is all lowercase hex digits. */
int auth__is_lower_hex(const char *s, size_t n);
/* "sha256:<hex>" of x's DER SubjectPublicKeyInfo into out (AUTH_CA_HASH_MAX bytes). */
int auth__spki_hash(X509 *x, char *out);
/* snprintf into err when err is not NULL; clears OpenSSL's error queue. */
void auth__err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
