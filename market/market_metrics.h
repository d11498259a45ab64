/*
 * rayc-market's /metrics endpoint (market_metrics.c). Loop thread only.
 */
#ifndef RAYC_MARKET_MARKET_METRICS_H
#define RAYC_MARKET_MARKET_METRICS_H

#include "market_daemon.h"

/* Where the market records its metrics address (namespace MK_KV_NAMESPACE), for the GCS's
 * service-discovery file. */
#define MARKET_METRICS_KV_KEY "metrics_address"

typedef struct market_metrics market_metrics;

/* Serves /metrics on port (0: a free one) of the address this host uses to reach
 * gcs_address, behind the cluster token, and records the address in the GCS's KV. After
 * market_start. *out is set either way: stop and free it as below. */
int market_metrics_start(market *m, const char *gcs_address, int port, market_metrics **out);
/* Stops serving (before the GCS client and the RPC context go). */
void market_metrics_stop(market_metrics *mm);
/* Frees mm after rpc_ctx_destroy (the RPC layer records into its registry). */
void market_metrics_free(market_metrics *mm);

#endif
