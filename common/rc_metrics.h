/*
 * rc_metrics: a small registry of counters, gauges and histograms with labels, rendered in
 * Prometheus's text exposition format 0.0.4 (one "# HELP" and one "# TYPE" line per family,
 * label values escaped, histograms as _bucket{le="..."} (cumulative, ending with "+Inf"),
 * _sum and _count).
 *
 * A family (rc_metric) has a name, a help text, label names fixed at creation and, for a
 * histogram, its bucket bounds. A series is one combination of label values; it is created
 * on first use and lives until the family is cleared. Families render in the order they
 * were created, series in the order they appeared, so the text is deterministic.
 *
 * Gauges that describe state (actors by state, resources) are usually rebuilt just before
 * rendering: rc_metric_clear, then rc_metric_set for what exists now, so a state that no
 * longer exists disappears from the text instead of keeping an old value.
 *
 * Not thread-safe: one owner (the loop thread, in daemons). The registry owns every family
 * and series; rc_metrics_free releases all of them.
 */
#ifndef RAYC_COMMON_RC_METRICS_H
#define RAYC_COMMON_RC_METRICS_H

#include <stddef.h>

#include "rc_buf.h"

typedef struct rc_metrics rc_metrics;
typedef struct rc_metric rc_metric;
typedef struct rc_metric_series rc_metric_series;

typedef enum rc_metric_type {
    RC_METRIC_COUNTER = 1,
    RC_METRIC_GAUGE = 2,
    RC_METRIC_HISTOGRAM = 3,
} rc_metric_type;

enum { RC_METRIC_MAX_LABELS = 8, RC_METRIC_MAX_BUCKETS = 32 };

/* A new empty registry; free with rc_metrics_free. */
rc_metrics *rc_metrics_new(void);
void rc_metrics_free(rc_metrics *reg);

/* Adds a family. labels: label names, NULL-terminated (NULL: none), at most
 * RC_METRIC_MAX_LABELS. bounds: a histogram's upper bucket bounds, strictly increasing and
 * finite (n_bounds <= RC_METRIC_MAX_BUCKETS; the +Inf bucket is implicit); NULL/0 for the
 * other types. RC_EINVAL for a name or label name Prometheus does not accept
 * ([a-zA-Z_:][a-zA-Z0-9_:]*; labels [a-zA-Z_][a-zA-Z0-9_]*, not "le" on a histogram, not
 * "__..."), bad bounds, or a name already registered. *out is owned by reg. */
int rc_metrics_add(rc_metrics *reg, rc_metric_type type, const char *name, const char *help,
                   const char *const *labels, const double *bounds, size_t n_bounds,
                   rc_metric **out);

/* The series of m with these label values (as many as m has label names; NULL when it has
 * none), created at 0 when new. The pointer stays valid until m is cleared or reg freed,
 * so a hot path may look it up once and keep it. */
rc_metric_series *rc_metric_series_get(rc_metric *m, const char *const *values);

/* Counter: adds v (>= 0; a negative v is ignored). Gauge: adds v (any sign). */
void rc_metric_series_add(rc_metric_series *s, double v);
/* Gauge: sets the value. */
void rc_metric_series_set(rc_metric_series *s, double v);
/* Histogram: records one observation. */
void rc_metric_series_observe(rc_metric_series *s, double v);

/* Shorthands: rc_metric_series_get then add / set / observe. */
void rc_metric_add(rc_metric *m, const char *const *values, double v);
void rc_metric_set(rc_metric *m, const char *const *values, double v);
void rc_metric_observe(rc_metric *m, const char *const *values, double v);

/* Drops every series of m (their pointers become invalid). */
void rc_metric_clear(rc_metric *m);

/* Appends the whole registry in text format 0.0.4 to out. Families without a series still
 * get their HELP and TYPE lines. */
void rc_metrics_render(const rc_metrics *reg, rc_buf *out);

/* The text format's content type, for HTTP servers. */
#define RC_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
