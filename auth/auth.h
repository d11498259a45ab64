/*
 * auth: the cluster's cryptography (ARCHITECTURE §14), on OpenSSL 3's libcrypto and libssl.
 *
 *  - a cluster CA (EC P-256, self-signed) that signs every certificate of the cluster: the
 *    GCS's, each node's (CN "node:<node id hex>") and each node's worker-serving certificate
 *    (CN "worker:<node id hex>");
 *  - CSRs: a node makes its key and CSR itself and sends only the CSR, so its private key
 *    never leaves its host; the CA ignores the CSR's subject and writes the CN and the IP
 *    subjectAltNames it decided;
 *  - the CA pin: "sha256:<hex>" of the CA certificate's DER SubjectPublicKeyInfo, the form
 *    kubeadm's --discovery-token-ca-cert-hash uses;
 *  - bearer tokens (admin and job), signed with the CA key (ECDSA P-256, SHA-256), so that
 *    any process holding the CA certificate can check them without asking the GCS;
 *  - join tokens' secrets are random and checked by the GCS against a stored SHA-256;
 *  - reading a peer's certificate chain before trusting it (join: pin the CA by hash);
 *  - secret files (mode 0600, written atomically) and the client-token lookup order.
 *
 * Every PEM or string handed out is NUL-terminated and freed by the caller with rc_free.
 * Functions return 0 or a negative RC_E* code; on failure their out-parameters are untouched
 * and, where an err buffer is given, it says why in a sentence. Any thread.
 */
#ifndef RAYC_AUTH_AUTH_H
#define RAYC_AUTH_AUTH_H

#include <stddef.h>
#include <stdint.h>

enum {
    AUTH_TOKEN_ID_HEX = 16,   /* token ids are 8 random bytes as hex */
    AUTH_CA_HASH_MAX = 80,    /* "sha256:" + 64 hex + NUL fits */
    AUTH_MAX_SANS = 8,
};

/* ---- keys, certificates, CSRs -------------------------------------------------------- */

/* A new EC P-256 private key (PKCS#8 PEM) in *key_pem. */
int auth_key_create(char **key_pem);
/* A new self-signed CA: key and certificate (CN cn, valid days from now, CA:TRUE). */
int auth_ca_create(const char *cn, int days, char **key_pem, char **cert_pem);
/* A CSR for key_pem with subject CN cn. */
int auth_csr_create(const char *key_pem, const char *cn, char **csr_pem);
/* The CA signs csr_pem (whose signature must verify with its own public key): the
 * certificate gets subject CN cn (the CSR's subject is ignored), the IP subjectAltNames in
 * ips (n_ips entries, may be 0; "localhost" as a DNS name is always added), extended key
 * usage serverAuth and clientAuth, a random serial, validity days. RC_EINVAL with err for
 * a CSR that does not parse or verify, or an IP that does not parse. */
int auth_cert_sign_csr(const char *ca_key_pem, const char *ca_cert_pem, const char *csr_pem,
                       const char *cn, const char *const *ips, size_t n_ips, int days,
                       char **cert_pem, char *err, size_t errlen);
/* Key + certificate in one step (auth_key_create, auth_csr_create, auth_cert_sign_csr):
 * for the GCS's own certificate and for tests. */
int auth_cert_issue(const char *ca_key_pem, const char *ca_cert_pem, const char *cn,
                    const char *const *ips, size_t n_ips, int days, char **key_pem,
                    char **cert_pem);
/* As auth_cert_issue, and this host's name (gethostname, when it is a DNS name) is a DNS
 * subjectAltName too, so that browsers and curl accept the certificate by host name as
 * well as by IP: for the certificates of the head's processes (the GCS, the dashboard),
 * made on the host they name. */
int auth_cert_issue_local(const char *ca_key_pem, const char *ca_cert_pem, const char *cn,
                          const char *const *ips, size_t n_ips, int days, char **key_pem,
                          char **cert_pem);
/* The subject CN of the first certificate in cert_pem, into out. */
int auth_cert_cn(const char *cert_pem, char *out, size_t outlen);
/* 0 if cert_pem was signed by the CA in ca_cert_pem and is within its validity period;
 * RC_EAUTH otherwise (err says why), RC_EINVAL if ca_cert_pem does not parse. */
int auth_cert_verify(const char *ca_cert_pem, const char *cert_pem, char *err, size_t errlen);
/* "sha256:<64 lowercase hex>" of the DER SubjectPublicKeyInfo of the first certificate in
 * cert_pem, into out (AUTH_CA_HASH_MAX bytes). */
int auth_ca_hash(const char *cert_pem, char *out, size_t outlen);
/* 1 if the two pins name the same hash (case-insensitive hex, "sha256:" prefix required). */
int auth_ca_hash_equal(const char *a, const char *b);

/* ---- bearer tokens ------------------------------------------------------------------- */

typedef enum auth_token_kind { AUTH_TOKEN_ADMIN = 1, AUTH_TOKEN_JOB = 2 } auth_token_kind;

typedef struct auth_claims {
    auth_token_kind kind;
    char id[AUTH_TOKEN_ID_HEX + 1]; /* random, names the token for revocation */
    uint8_t job_id[4];             /* AUTH_TOKEN_JOB only */
    int64_t issued_at;             /* unix seconds */
    int64_t expires_at;            /* unix seconds; 0: never */
} auth_claims;

/* Mints a token for claims (claims->id is filled in with a fresh random id when empty; a
 * given id must be AUTH_TOKEN_ID_HEX lowercase hex digits, else RC_EINVAL), signed with the
 * CA key. Text form: "rayc1.<base64url payload>.<base64url signature>",
 * safe in an HTTP header. */
int auth_token_mint(const char *ca_key_pem, auth_claims *claims, char **token);

/* A verifier holds the CA's public key; create it once and reuse it (verifying is a
 * signature check, about 0.1 ms; callers cache results per token text). */
typedef struct auth_verifier auth_verifier;
int auth_verifier_create(const char *ca_cert_pem, auth_verifier **out);
void auth_verifier_destroy(auth_verifier *v);
/* Checks token's form and signature and its expiry against now (unix seconds). 0 and the
 * claims, or RC_EAUTH with err ("token has expired", "token signature does not verify
 * with this cluster's CA", "not a rayc token") . Any thread (the verifier is immutable). */
int auth_token_verify(const auth_verifier *v, const char *token, int64_t now, auth_claims *out,
                      char *err, size_t errlen);

/* ---- join tokens --------------------------------------------------------------------- */

/* A new join token "<16 hex id>.<32 hex secret>"; id_out gets the id (17 bytes),
 * secret_hash_out the hex SHA-256 of the whole token (65 bytes), which is all the GCS
 * stores. */
int auth_join_token_create(char **token, char *id_out, char *secret_hash_out);
/* Splits a presented join token: its id and the hex SHA-256 to compare with the stored one.
 * RC_EINVAL if it is not of that form. */
int auth_join_token_parse(const char *token, char *id_out, char *secret_hash_out);

/* ---- fetching and pinning the CA ----------------------------------------------------- */

/* Connects to host:port ("[v6]:port" too) with TLS, without trusting anything yet, and returns in *chain_pem
 * every certificate the server presented (PEM, concatenated, leaf first). timeout_ms bounds
 * connect and handshake. RC_EUNAVAIL with err when it cannot connect or handshake. */
int auth_fetch_peer_chain(const char *host_port, int timeout_ms, char **chain_pem, char *err,
                          size_t errlen);
/* From a chain, the CA certificate whose hash is pin: checks that it is a self-signed CA and
 * that the leaf was signed by it. 0 and *ca_pem, or RC_EAUTH with err (no certificate of the
 * chain matches the pin: "the server's CA sha256:... is not the pinned sha256:..."), or
 * RC_EINVAL for a pin not of the form "sha256:<64 hex>". The CA is found only if the server
 * sends it: a gRPC server's certificate chain PEM must be its leaf followed by the CA. */
int auth_pin_ca(const char *chain_pem, const char *pin, char **ca_pem, char *err, size_t errlen);

/* ---- files --------------------------------------------------------------------------- */

/* Writes content to path atomically (temporary file + rename) with mode 0600. RC_ENOENT
 * when the directory does not exist, RC_EIO otherwise. */
int auth_write_secret(const char *path, const char *content);
/* Reads a whole (small, < 1 MiB) file into *out (NUL-terminated). RC_ENOENT, RC_EIO, or
 * RC_ETOOBIG for a larger file. */
int auth_read_file(const char *path, char **out);
/* The client token, as clients look for it: $RAYC_AUTH_TOKEN, then the file named by
 * $RAYC_AUTH_TOKEN_PATH, then <latest session>/auth_token on this host. Trailing
 * whitespace is stripped. RC_ENOENT when none is found; then where (if not NULL) gets a
 * sentence naming the three places looked at. */
int auth_find_client_token(char **token, char *where, size_t wherelen);
/* The CA certificate a client trusts: the file named by $RAYC_CA_CERT, then
 * <latest session>/ca.crt; a file holding no PEM certificate counts as not found. RC_ENOENT
 * (and where) when none is found. */
int auth_find_ca_cert(char **ca_pem, char *where, size_t wherelen);

#endif
