/*
 * dashboard_api: the web dashboard of rayc-dashboard (ARCHITECTURE §15): its static files
 * (dashboard/ui, installed in share/rayc/dashboard) and the JSON endpoints the pages read.
 *
 * A poller on the loop asks the GCS every dashboard_poll_ms for the node table, the
 * resource view, actors, placement groups (and why pending ones wait), jobs and the
 * market's records, keeps the latest answers and appends one sample of the cluster's use
 * to a bounded ring (dashboard_history_s). Requests are answered from those answers, so a
 * page never waits on the GCS and a GCS that is down shows as stale data with its age.
 *
 *   /api/nodes /api/actors /api/placement_groups /api/tasks/summary /api/market
 *   /api/timeseries /api/logs[?file=NAME]            (the cluster's admin token)
 *   / and the UI's files                              (no token: they carry no data)
 *
 * Loop thread only.
 */
#ifndef RAYC_DASHBOARD_API_H
#define RAYC_DASHBOARD_API_H

#include <uv.h>

#include "gcs_client.h"
#include "http_server.h"

typedef struct dash_api dash_api;

/* Starts polling gcs. session: the head's session dir (its logs/ are served). The UI's
 * files are found at ../share/rayc/dashboard next to the executable. */
int dash_api_start(uv_loop_t *loop, gcs_client *gcs, const char *session, dash_api **out);
/* http_public_fn: GET/HEAD of anything outside /api/ (the UI's files). */
int dash_api_is_public(const char *method, const char *path, void *arg);
/* Answers req when it is the UI's or one of the endpoints above (1), else sets the API's
 * headers on resp and returns 0 for the next handler. */
int dash_api_handle(dash_api *a, const http_request *req, http_response *resp);
/* Stops polling; a is freed once its calls in flight have ended. */
void dash_api_stop(dash_api *a);

#endif
