/*
 * dashboard_api: the web dashboard of rayc-dashboard (ARCHITECTURE §15): its static files
 * (dashboard/ui, installed in share/rayc/dashboard) and the JSON endpoints the pages read.
 *
 * A poller on the loop asks the GCS every dashboard_poll_ms for the node table, the
 * resource view, actors, placement groups (and why pending ones wait), jobs and the
 * market's records, keeps the latest answers and appends one sample of the cluster's use
 * to a bounded ring (dashboard_history_s). Requests are answered from those answers, so a
 * page never waits on the GCS and a GCS that is down shows as stale data with its age.
 * Logs are the exception: another node's are asked from its raylet when a page wants them
 * (a deferred answer), the head's are read from its session.
 *
 *   /api/nodes /api/actors /api/placement_groups /api/tasks/summary /api/market
 *   /api/timeseries /api/logs[?node=ID][&file=NAME]  (the cluster's admin token)
 *   / and the UI's files                              (no token: they carry no data)
 *
 * The admin token it calls with, and the only one it answers, is the one in the head's
 * session (auth_token): when the admin replaces it, the dashboard follows without a restart.
 *
 * Loop thread only.
 */
#ifndef RAYC_DASHBOARD_API_H
#define RAYC_DASHBOARD_API_H

#include <uv.h>

#include "gcs_client.h"
#include "http_server.h"

typedef struct dash_api dash_api;

/* Starts polling gcs (a client on rpc, which also opens the raylets' channels). session: the
 * head's session dir (its logs/ are served, its auth_token followed). Call after the
 * process's security is set. The UI's files are found at ../share/rayc/dashboard next to
 * the executable. */
int dash_api_start(uv_loop_t *loop, rpc_ctx *rpc, gcs_client *gcs, const char *session, dash_api **out);
/* rpc_revoked_fn for the server whose rules the HTTP side applies (arg: the dash_api): an
 * admin token other than the one in the head's session is refused, saying it was replaced.
 * Loop thread. */
const char *dash_api_revoked(const rpc_identity *id, void *arg);
/* http_public_fn: GET/HEAD of anything outside /api/ (the UI's files). */
int dash_api_is_public(const char *method, const char *path, void *arg);
/* Answers req when it is the UI's or one of the endpoints above (1), else sets the API's
 * headers on resp and returns 0 for the next handler. */
int dash_api_handle(dash_api *a, const http_request *req, http_response *resp);
/* Stops polling; a is freed once its calls in flight have ended. */
void dash_api_stop(dash_api *a);

#endif
