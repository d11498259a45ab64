/*
 * gcs_revocations: what the GCS has revoked, followed by the other processes that serve
 * calls (raylets, core workers), so that a replaced admin token or a revoked node is refused
 * everywhere, not only by the GCS.
 *
 * Tokens and certificates are checked with the cluster CA alone, so without this a raylet
 * or worker would keep accepting an admin token the admin has replaced (a leaked one, say)
 * until it expires. gcs_revocations_attach installs the server's revocation hook and
 * gcs_revocations_follow asks the GCS (AuthService.GetRevocations) every auth_revocation_poll_ms; the hook refuses a
 * bearer token whose ID, or a node certificate whose node, is on the lists. Revocations are
 * never undone, so a poll whose counts match costs a few bytes. Until the first answer, and
 * while the GCS cannot be reached, the lists are what they were.
 *
 * Loop thread only.
 */
#ifndef RAYC_GCS_REVOCATIONS_H
#define RAYC_GCS_REVOCATIONS_H

#include "gcs_client.h"
#include "rpc.h"

typedef struct gcs_revocations gcs_revocations;

/* Installs srv's revocation hook (before srv starts), with empty lists. On an insecure
 * process, or with auth_revocation_poll_ms <= 0, does nothing and sets *out NULL. */
int gcs_revocations_attach(rpc_server *srv, gcs_revocations **out);
/* Starts asking gc's GCS (now, then every auth_revocation_poll_ms). NULL rv is fine. */
void gcs_revocations_follow(gcs_revocations *rv, gcs_client *gc);
/* Stops polling: before gc is destroyed (a poll still in flight ends with it). The hook
 * keeps answering from the lists it has. NULL is fine. */
void gcs_revocations_stop(gcs_revocations *rv);
/* Frees rv once srv is destroyed and the last callbacks have run (after rpc_ctx_drain).
 * NULL is fine. */
void gcs_revocations_free(gcs_revocations *rv);
/* How many revoked token and node IDs it holds (tests, logs). */
void gcs_revocations_counts(const gcs_revocations *rv, size_t *tokens, size_t *nodes);

#endif
