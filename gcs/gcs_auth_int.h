/*
 * Private to the GCS's security module (gcs_auth_manager.c: state, start, revocation;
 * gcs_auth_service.c: AuthService): the manager's structure and the helpers both use to
 * keep the AUTH table in step with memory. Nothing outside gcs/gcs_auth_*.c includes this.
 *
 * Loop thread only.
 */
#ifndef RAYC_GCS_GCS_AUTH_INT_H
#define RAYC_GCS_GCS_AUTH_INT_H

#include <stdint.h>
#include <sys/types.h>

#include "auth.h"
#include "gcs_int.h"

#define GCS__CERT_DAYS 365 /* node, worker and GCS certificates */
#define GCS__SHA256_HEX 64

struct gcs_auth_manager {
    gcs_server *gcs;
    int secure;        /* 0 in insecure mode: nothing below is set */
    char *ca_cert_pem; /* owned */
    char *ca_key_pem;  /* owned; wiped when freed */
    char *cert_pem;    /* the GCS's own certificate and key (owned) */
    char *key_pem;
    char *admin_token; /* the admin token in force, as in <auth dir>/auth_token (owned) */
    rc_map joins;      /* join token id -> Rayc__Rpc__AuthJoinTokenRecord (owned) */
    rc_map nodes;      /* node id (28 bytes) -> Rayc__Rpc__AuthNodeRecord (owned) */
    rc_map tokens;     /* bearer token id -> Rayc__Rpc__AuthTokenRecord (owned) */
    rc_map job_tokens; /* job id (4 bytes) -> char *, the job's token (owned) */
    char refusal[160]; /* the revocation hook's last answer */
    gcs_load_cb load_cb;
};

/* Unix seconds now. */
int64_t gcs__auth_now_s(void);
/* Wipes and frees a secret string (NULL is fine). */
void gcs__auth_wipe_free(char *secret);
/* Writes content to <auth dir>/name atomically, with mode; logs why when it cannot. */
int gcs__auth_write_file(const gcs_auth_manager *am, const char *name, const char *content,
                         mode_t mode);

/* A set of puts to the AUTH table whose outcome one callback waits for: begin, put each
 * record (packed at once: it may change or go afterwards), end. fn runs exactly once, after
 * every put has been answered (before gcs__auth_writes_end returns with the memory store),
 * with the first failure or 0; the set frees itself. */
typedef struct gcs__auth_writes gcs__auth_writes;
typedef void (*gcs__auth_stored_fn)(gcs_auth_manager *am, int rc, void *arg);
gcs__auth_writes *gcs__auth_writes_begin(gcs_auth_manager *am, gcs__auth_stored_fn fn, void *arg);
void gcs__auth_writes_put(gcs__auth_writes *w, const char *key, const ProtobufCMessage *record);
void gcs__auth_writes_end(gcs__auth_writes *w);
/* The same, under each record's own key ("join:<id>", "node:<hex>", "token:<id>"). */
void gcs__auth_put_join(gcs__auth_writes *w, const Rayc__Rpc__AuthJoinTokenRecord *rec);
void gcs__auth_put_node(gcs__auth_writes *w, const Rayc__Rpc__AuthNodeRecord *rec);
void gcs__auth_put_token(gcs__auth_writes *w, const Rayc__Rpc__AuthTokenRecord *rec);

/* Sets rec's verification labels (GCS_VERIFICATION_LABEL = state, and the reason label
 * when reason is not NULL), keeping the verdict of prior (the node's earlier record, may be
 * NULL) when it had one. */
void gcs__auth_node_verification(Rayc__Rpc__AuthNodeRecord *rec, const Rayc__Rpc__AuthNodeRecord *prior,
                                 const char *state, const char *reason);
/* Replaces (or adds) the record of rec's node; the manager takes rec. */
void gcs__auth_set_node(gcs_auth_manager *am, Rayc__Rpc__AuthNodeRecord *rec);
/* A new token record for c, not revoked; the caller owns it (rpc_msg_free), usually by
 * handing it to am->tokens. */
Rayc__Rpc__AuthTokenRecord *gcs__auth_token_record_new(const auth_claims *c);

#endif
