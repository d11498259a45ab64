/*
 * fuzz_auth: what auth/ reads from peers and users: CSRs sent to the GCS to join, bearer
 * tokens in call metadata, join tokens, certificate chains fetched before the CA is trusted,
 * and certificates' subjects. The input's first byte picks one, the rest is its text
 * (NUL-terminated):
 *
 *   0 auth_cert_sign_csr (by a CA made once at start)   3 auth_pin_ca and auth_ca_hash
 *   1 auth_token_verify                                 4 auth_cert_cn and auth_cert_verify
 *   2 auth_join_token_parse
 *
 * Invariants checked: a certificate signed from a CSR verifies with the CA and carries the
 * CN the CA chose, not the CSR's; no input is a valid token of a CA minted in this process
 * (nothing in the corpus was signed by it) and no chain matches an all-zero pin; a parsed
 * join token has the documented shape. One thread.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "rc_alloc.h"

static char *fuzz_ca_key, *fuzz_ca_cert;
static auth_verifier *fuzz_verifier;

static const char fuzz_zero_pin[] =
    "sha256:0000000000000000000000000000000000000000000000000000000000000000";
/* A fixed "now" (2024-01-01), so that a run replays exactly. */
static const int64_t fuzz_now = 1704067200;

static void fuzz_fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_auth: %s: %s\n", what, detail);
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    if (auth_ca_create("rayc-fuzz-ca", 1, &fuzz_ca_key, &fuzz_ca_cert) < 0 ||
        auth_verifier_create(fuzz_ca_cert, &fuzz_verifier) < 0)
        fuzz_fail("cannot make the CA", "auth_ca_create / auth_verifier_create");
    return 0;
}

static int fuzz_hex(const char *s, size_t n)
{
    if (strlen(s) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

static void fuzz_sign_csr(const char *csr)
{
    static const char *const ips[] = {"10.0.0.7"};
    char *cert = NULL;
    char err[256];
    if (auth_cert_sign_csr(fuzz_ca_key, fuzz_ca_cert, csr, "node:ab", ips, 1, 1, &cert, err,
                           sizeof(err)) < 0)
        return;
    char cn[128];
    if (auth_cert_verify(fuzz_ca_cert, cert, err, sizeof(err)) < 0)
        fuzz_fail("a certificate the CA just signed does not verify", err);
    if (auth_cert_cn(cert, cn, sizeof(cn)) < 0 || strcmp(cn, "node:ab") != 0)
        fuzz_fail("a signed certificate's CN is not the one the CA chose", cn);
    rc_free(cert);
}

static void fuzz_token(const char *token)
{
    auth_claims claims;
    char err[256];
    if (auth_token_verify(fuzz_verifier, token, fuzz_now, &claims, err, sizeof(err)) == 0)
        fuzz_fail("a token this CA never signed verifies", token);
}

static void fuzz_join_token(const char *token)
{
    char id[AUTH_TOKEN_ID_HEX + 1], hash[65];
    if (auth_join_token_parse(token, id, hash) < 0)
        return;
    if (!fuzz_hex(id, AUTH_TOKEN_ID_HEX) || !fuzz_hex(hash, 64))
        fuzz_fail("a parsed join token has an id or hash of the wrong shape", token);
}

static void fuzz_pin(const char *chain)
{
    char *ca = NULL;
    char err[256];
    if (auth_pin_ca(chain, fuzz_zero_pin, &ca, err, sizeof(err)) == 0)
        fuzz_fail("a chain matches the all-zero pin", chain);
    char pin[AUTH_CA_HASH_MAX];
    if (auth_ca_hash(chain, pin, sizeof(pin)) < 0)
        return;
    if (!auth_ca_hash_equal(pin, pin))
        fuzz_fail("a pin is not equal to itself", pin);
    /* Pinned by its own first certificate's hash: the chain checks run for real. */
    if (auth_pin_ca(chain, pin, &ca, err, sizeof(err)) == 0)
        rc_free(ca);
}

static void fuzz_cert(const char *cert)
{
    char cn[256], err[256];
    auth_cert_cn(cert, cn, sizeof(cn));
    auth_cert_cn(cert, cn, 4); /* a short buffer: truncated or refused, never overrun */
    auth_cert_verify(fuzz_ca_cert, cert, err, sizeof(err));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned mode = data[0] % 5;
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    switch (mode) {
    case 0:
        fuzz_sign_csr(text);
        break;
    case 1:
        fuzz_token(text);
        break;
    case 2:
        fuzz_join_token(text);
        break;
    case 3:
        fuzz_pin(text);
        break;
    default:
        fuzz_cert(text);
        break;
    }
    free(text);
    return 0;
}
