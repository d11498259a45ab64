/*
 * rc_metrics: the registry and the text exposition format 0.0.4 (see rc_metrics.h).
 *
 * A family keeps its series in an array (render order) and a map from the label values,
 * joined with NUL separators, to the series (lookup). Each series is its own allocation so
 * its pointer stays valid while the array grows. A histogram series holds one count per
 * bound plus the +Inf bucket, not cumulative; rendering accumulates them.
 *
 * Loop thread only (one owner).
 */
#include "rc_metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rc_alloc.h"
#include "rc_err.h"
#include "rc_log.h"
#include "rc_map.h"

struct rc_metric_series {
    rc_metric *family;
    char **values;      /* family->n_labels strings */
    double value;       /* counter, gauge; a histogram's sum */
    uint64_t count;     /* histogram: observations */
    uint64_t *buckets;  /* histogram: n_bounds + 1 counts, not cumulative */
};

struct rc_metric {
    rc_metric_type type;
    char *name;
    char *help;
    char *labels[RC_METRIC_MAX_LABELS];
    size_t n_labels;
    double bounds[RC_METRIC_MAX_BUCKETS];
    size_t n_bounds;
    rc_metric_series **series;
    size_t n_series, cap_series;
    rc_map index; /* joined label values -> series */
};

struct rc_metrics {
    rc_metric **families;
    size_t n, cap;
};

rc_metrics *rc_metrics_new(void)
{
    return RC_NEW(rc_metrics);
}

static void rc__series_free(rc_metric_series *s)
{
    for (size_t i = 0; i < s->family->n_labels; i++)
        rc_free(s->values[i]);
    rc_free(s->values);
    rc_free(s->buckets);
    rc_free(s);
}

void rc_metric_clear(rc_metric *m)
{
    for (size_t i = 0; i < m->n_series; i++)
        rc__series_free(m->series[i]);
    m->n_series = 0;
    rc_map_destroy(&m->index, NULL);
    rc_map_init(&m->index);
}

static void rc__family_free(rc_metric *m)
{
    rc_metric_clear(m);
    rc_map_destroy(&m->index, NULL);
    rc_free(m->series);
    for (size_t i = 0; i < m->n_labels; i++)
        rc_free(m->labels[i]);
    rc_free(m->name);
    rc_free(m->help);
    rc_free(m);
}

void rc_metrics_free(rc_metrics *reg)
{
    if (!reg)
        return;
    for (size_t i = 0; i < reg->n; i++)
        rc__family_free(reg->families[i]);
    rc_free(reg->families);
    rc_free(reg);
}

static int rc__valid_name(const char *s, int colon)
{
    if (!s || !*s)
        return 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                 (colon && c == ':') || (p != s && c >= '0' && c <= '9');
        if (!ok)
            return 0;
    }
    return 1;
}

int rc_metrics_add(rc_metrics *reg, rc_metric_type type, const char *name, const char *help,
                   const char *const *labels, const double *bounds, size_t n_bounds,
                   rc_metric **out)
{
    if (type != RC_METRIC_COUNTER && type != RC_METRIC_GAUGE && type != RC_METRIC_HISTOGRAM)
        return RC_EINVAL;
    if (!rc__valid_name(name, 1)) {
        RC_ERROR("metrics: \"%s\" is not a valid metric name", name ? name : "");
        return RC_EINVAL;
    }
    for (size_t i = 0; i < reg->n; i++) {
        if (strcmp(reg->families[i]->name, name) == 0) {
            RC_ERROR("metrics: %s is registered twice", name);
            return RC_EINVAL;
        }
    }
    size_t n_labels = 0;
    for (; labels && labels[n_labels]; n_labels++) {
        const char *l = labels[n_labels];
        if (n_labels >= RC_METRIC_MAX_LABELS || !rc__valid_name(l, 0) || strncmp(l, "__", 2) == 0 ||
            (type == RC_METRIC_HISTOGRAM && strcmp(l, "le") == 0)) {
            RC_ERROR("metrics: %s: label \"%s\" is not accepted", name, l);
            return RC_EINVAL;
        }
    }
    if (type == RC_METRIC_HISTOGRAM) {
        if (n_bounds > RC_METRIC_MAX_BUCKETS || (n_bounds && !bounds))
            return RC_EINVAL;
        for (size_t i = 0; i < n_bounds; i++) {
            if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1])) {
                RC_ERROR("metrics: %s: bucket bounds must be finite and increasing", name);
                return RC_EINVAL;
            }
        }
    } else if (n_bounds) {
        return RC_EINVAL;
    }
    rc_metric *m = RC_NEW(rc_metric);
    m->type = type;
    m->name = rc_strdup(name);
    m->help = rc_strdup(help ? help : "");
    for (size_t i = 0; i < n_labels; i++)
        m->labels[i] = rc_strdup(labels[i]);
    m->n_labels = n_labels;
    if (type == RC_METRIC_HISTOGRAM) {
        memcpy(m->bounds, bounds, n_bounds * sizeof(double));
        m->n_bounds = n_bounds;
    }
    rc_map_init(&m->index);
    if (reg->n == reg->cap) {
        reg->cap = reg->cap ? 2 * reg->cap : 16;
        reg->families = rc_realloc(reg->families, reg->cap * sizeof(*reg->families));
    }
    reg->families[reg->n++] = m;
    *out = m;
    return 0;
}

rc_metric_series *rc_metric_series_get(rc_metric *m, const char *const *values)
{
    rc_buf key = RC_BUF_INIT;
    for (size_t i = 0; i < m->n_labels; i++) {
        const char *v = values && values[i] ? values[i] : "";
        rc_buf_append(&key, v, strlen(v) + 1);
    }
    rc_metric_series *s = rc_map_get(&m->index, key.data ? key.data : "", key.len);
    if (s) {
        rc_buf_free(&key);
        return s;
    }
    s = RC_NEW(rc_metric_series);
    s->family = m;
    s->values = rc_calloc(m->n_labels ? m->n_labels : 1, sizeof(char *));
    for (size_t i = 0; i < m->n_labels; i++)
        s->values[i] = rc_strdup(values && values[i] ? values[i] : "");
    if (m->type == RC_METRIC_HISTOGRAM)
        s->buckets = rc_calloc(m->n_bounds + 1, sizeof(uint64_t));
    rc_map_put(&m->index, key.data ? key.data : "", key.len, s);
    rc_buf_free(&key);
    if (m->n_series == m->cap_series) {
        m->cap_series = m->cap_series ? 2 * m->cap_series : 8;
        m->series = rc_realloc(m->series, m->cap_series * sizeof(*m->series));
    }
    m->series[m->n_series++] = s;
    return s;
}

void rc_metric_series_add(rc_metric_series *s, double v)
{
    if (s->family->type == RC_METRIC_COUNTER && !(v >= 0))
        return;
    if (s->family->type != RC_METRIC_HISTOGRAM)
        s->value += v;
}

void rc_metric_series_set(rc_metric_series *s, double v)
{
    if (s->family->type == RC_METRIC_GAUGE)
        s->value = v;
}

void rc_metric_series_observe(rc_metric_series *s, double v)
{
    rc_metric *m = s->family;
    if (m->type != RC_METRIC_HISTOGRAM)
        return;
    size_t b = 0;
    while (b < m->n_bounds && !(v <= m->bounds[b]))
        b++;
    s->buckets[b]++;
    s->count++;
    s->value += v;
}

void rc_metric_add(rc_metric *m, const char *const *values, double v)
{
    rc_metric_series_add(rc_metric_series_get(m, values), v);
}

void rc_metric_set(rc_metric *m, const char *const *values, double v)
{
    rc_metric_series_set(rc_metric_series_get(m, values), v);
}

void rc_metric_observe(rc_metric *m, const char *const *values, double v)
{
    rc_metric_series_observe(rc_metric_series_get(m, values), v);
}

/* ---- rendering ------------------------------------------------------------------------ */

/* A float as Prometheus (Go's ParseFloat) reads it: the shortest of %.15g and %.17g that
 * reads back exactly, and +Inf, -Inf, NaN. */
static void rc__put_number(rc_buf *b, double v)
{
    if (isnan(v)) {
        rc_buf_puts(b, "NaN");
        return;
    }
    if (isinf(v)) {
        rc_buf_puts(b, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    char text[40];
    snprintf(text, sizeof(text), "%.15g", v);
    if (strtod(text, NULL) != v)
        snprintf(text, sizeof(text), "%.17g", v);
    rc_buf_puts(b, text);
}

/* HELP text: backslash and newline escaped. Label values: also the double quote. */
static void rc__put_escaped(rc_buf *b, const char *s, int quote)
{
    for (const char *p = s; *p; p++) {
        if (*p == '\\')
            rc_buf_puts(b, "\\\\");
        else if (*p == '\n')
            rc_buf_puts(b, "\\n");
        else if (quote && *p == '"')
            rc_buf_puts(b, "\\\"");
        else
            rc_buf_putc(b, *p);
    }
}

/* name{l1="v1",...[,le="x"]} value\n */
static void rc__put_sample(rc_buf *b, const rc_metric *m, const char *suffix,
                           const rc_metric_series *s, const char *le, double value)
{
    rc_buf_puts(b, m->name);
    rc_buf_puts(b, suffix);
    if (m->n_labels || le) {
        rc_buf_putc(b, '{');
        for (size_t i = 0; i < m->n_labels; i++) {
            if (i)
                rc_buf_putc(b, ',');
            rc_buf_puts(b, m->labels[i]);
            rc_buf_puts(b, "=\"");
            rc__put_escaped(b, s->values[i], 1);
            rc_buf_putc(b, '"');
        }
        if (le) {
            rc_buf_puts(b, m->n_labels ? ",le=\"" : "le=\"");
            rc_buf_puts(b, le);
            rc_buf_putc(b, '"');
        }
        rc_buf_putc(b, '}');
    }
    rc_buf_putc(b, ' ');
    rc__put_number(b, value);
    rc_buf_putc(b, '\n');
}

static void rc__render_family(rc_buf *b, const rc_metric *m)
{
    static const char *const type_names[] = {"", "counter", "gauge", "histogram"};
    rc_buf_printf(b, "# HELP %s ", m->name);
    rc__put_escaped(b, m->help, 0);
    rc_buf_printf(b, "\n# TYPE %s %s\n", m->name, type_names[m->type]);
    for (size_t i = 0; i < m->n_series; i++) {
        const rc_metric_series *s = m->series[i];
        if (m->type != RC_METRIC_HISTOGRAM) {
            rc__put_sample(b, m, "", s, NULL, s->value);
            continue;
        }
        uint64_t cumulative = 0;
        for (size_t k = 0; k <= m->n_bounds; k++) {
            cumulative += s->buckets[k];
            rc_buf le = RC_BUF_INIT;
            rc__put_number(&le, k < m->n_bounds ? m->bounds[k] : INFINITY);
            rc__put_sample(b, m, "_bucket", s, rc_buf_cstr(&le), (double)cumulative);
            rc_buf_free(&le);
        }
        rc__put_sample(b, m, "_sum", s, NULL, s->value);
        rc__put_sample(b, m, "_count", s, NULL, (double)s->count);
    }
}

void rc_metrics_render(const rc_metrics *reg, rc_buf *out)
{
    for (size_t i = 0; i < reg->n; i++)
        rc__render_family(out, reg->families[i]);
}
