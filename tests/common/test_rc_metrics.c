/* rc_metrics: exact text exposition (HELP/TYPE, label escaping, histogram buckets, number
 * forms), series identity, clearing, and names Prometheus would refuse. */
#include <math.h>
#include <string.h>

#include "rc_alloc.h"
#include "rc_err.h"
#include "rc_metrics.h"
#include "unit.h"

static char *render(const rc_metrics *reg)
{
    rc_buf b = RC_BUF_INIT;
    rc_metrics_render(reg, &b);
    return rc_buf_detach(&b);
}

static void expect_text(const rc_metrics *reg, const char *want)
{
    char *got = render(reg);
    if (strcmp(got ? got : "", want) != 0)
        fprintf(stderr, "\n--- want\n%s--- got\n%s---\n", want, got ? got : "");
    CU_ASSERT_STRING_EQUAL(got ? got : "", want);
    rc_free(got);
}

static void test_counter_and_gauge(void)
{
    rc_metrics *reg = rc_metrics_new();
    rc_metric *c, *g;
    const char *const labels[] = {"Name", "State", NULL};
    CU_ASSERT_EQUAL(rc_metrics_add(reg, RC_METRIC_COUNTER, "rayc_leases_granted_total",
                                   "Leases granted.", NULL, NULL, 0, &c), 0);
    CU_ASSERT_EQUAL(rc_metrics_add(reg, RC_METRIC_GAUGE, "ray_resources", "Logical resources",
                                   labels, NULL, 0, &g), 0);
    expect_text(reg, "# HELP rayc_leases_granted_total Leases granted.\n"
                     "# TYPE rayc_leases_granted_total counter\n"
                     "# HELP ray_resources Logical resources\n"
                     "# TYPE ray_resources gauge\n");
    rc_metric_add(c, NULL, 1);
    rc_metric_add(c, NULL, 2);
    rc_metric_add(c, NULL, -5); /* a counter never goes down */
    rc_metric_set(g, (const char *const[]){"CPU", "USED"}, 1.5);
    rc_metric_set(g, (const char *const[]){"CPU", "AVAILABLE"}, 6.5);
    rc_metric_set(g, (const char *const[]){"CPU", "USED"}, 2); /* same series, replaced */
    rc_metric_add(g, (const char *const[]){"GPU", "USED"}, -0.25);
    expect_text(reg, "# HELP rayc_leases_granted_total Leases granted.\n"
                     "# TYPE rayc_leases_granted_total counter\n"
                     "rayc_leases_granted_total 3\n"
                     "# HELP ray_resources Logical resources\n"
                     "# TYPE ray_resources gauge\n"
                     "ray_resources{Name=\"CPU\",State=\"USED\"} 2\n"
                     "ray_resources{Name=\"CPU\",State=\"AVAILABLE\"} 6.5\n"
                     "ray_resources{Name=\"GPU\",State=\"USED\"} -0.25\n");
    rc_metric_clear(g);
    rc_metric_set(g, (const char *const[]){"memory", "AVAILABLE"}, 1e12);
    expect_text(reg, "# HELP rayc_leases_granted_total Leases granted.\n"
                     "# TYPE rayc_leases_granted_total counter\n"
                     "rayc_leases_granted_total 3\n"
                     "# HELP ray_resources Logical resources\n"
                     "# TYPE ray_resources gauge\n"
                     "ray_resources{Name=\"memory\",State=\"AVAILABLE\"} 1000000000000\n");
    rc_metrics_free(reg);
}

static void test_escaping(void)
{
    rc_metrics *reg = rc_metrics_new();
    rc_metric *g;
    const char *const labels[] = {"Name", NULL};
    CU_ASSERT_EQUAL(rc_metrics_add(reg, RC_METRIC_GAUGE, "x:y", "a \\ back\nslash \"q\"", labels,
                                   NULL, 0, &g), 0);
    rc_metric_set(g, (const char *const[]){"a\"b\\c\nd"}, 1);
    rc_metric_set(g, (const char *const[]){""}, 0.1);
    rc_metric_set(g, (const char *const[]){"nan"}, NAN);
    rc_metric_set(g, (const char *const[]){"inf"}, INFINITY);
    rc_metric_set(g, (const char *const[]){"-inf"}, -INFINITY);
    rc_metric_set(g, (const char *const[]){"big"}, 123456789012345678.0);
    rc_metric_set(g, (const char *const[]){"héllo"}, 1.0 / 3.0);
    expect_text(reg, "# HELP x:y a \\\\ back\\nslash \"q\"\n"
                     "# TYPE x:y gauge\n"
                     "x:y{Name=\"a\\\"b\\\\c\\nd\"} 1\n"
                     "x:y{Name=\"\"} 0.1\n"
                     "x:y{Name=\"nan\"} NaN\n"
                     "x:y{Name=\"inf\"} +Inf\n"
                     "x:y{Name=\"-inf\"} -Inf\n"
                     "x:y{Name=\"big\"} 1.2345678901234568e+17\n"
                     "x:y{Name=\"héllo\"} 0.33333333333333331\n");
    rc_metrics_free(reg);
}

static void test_histogram(void)
{
    rc_metrics *reg = rc_metrics_new();
    rc_metric *h, *bare;
    const char *const labels[] = {"Method", NULL};
    const double bounds[] = {0.001, 0.01, 0.1};
    CU_ASSERT_EQUAL(rc_metrics_add(reg, RC_METRIC_HISTOGRAM, "rayc_rpc_server_latency_seconds",
                                   "Latency.", labels, bounds, 3, &h), 0);
    CU_ASSERT_EQUAL(rc_metrics_add(reg, RC_METRIC_HISTOGRAM, "h2", "", NULL, NULL, 0, &bare), 0);
    rc_metric_series *s = rc_metric_series_get(h, (const char *const[]){"PushTask"});
    CU_ASSERT_PTR_EQUAL(s, rc_metric_series_get(h, (const char *const[]){"PushTask"}));
    rc_metric_series_observe(s, 0.0005);
    rc_metric_series_observe(s, 0.01); /* on a bound: counted in that bucket (le) */
    rc_metric_series_observe(s, 0.05);
    rc_metric_series_observe(s, 2);
    rc_metric_observe(h, (const char *const[]){"Get"}, 0.002);
    rc_metric_observe(bare, NULL, 4);
    expect_text(reg, "# HELP rayc_rpc_server_latency_seconds Latency.\n"
                     "# TYPE rayc_rpc_server_latency_seconds histogram\n"
                     "rayc_rpc_server_latency_seconds_bucket{Method=\"PushTask\",le=\"0.001\"} 1\n"
                     "rayc_rpc_server_latency_seconds_bucket{Method=\"PushTask\",le=\"0.01\"} 2\n"
                     "rayc_rpc_server_latency_seconds_bucket{Method=\"PushTask\",le=\"0.1\"} 3\n"
                     "rayc_rpc_server_latency_seconds_bucket{Method=\"PushTask\",le=\"+Inf\"} 4\n"
                     "rayc_rpc_server_latency_seconds_sum{Method=\"PushTask\"} 2.0605\n"
                     "rayc_rpc_server_latency_seconds_count{Method=\"PushTask\"} 4\n"
                     "rayc_rpc_server_latency_seconds_bucket{Method=\"Get\",le=\"0.001\"} 0\n"
                     "rayc_rpc_server_latency_seconds_bucket{Method=\"Get\",le=\"0.01\"} 1\n"
                     "rayc_rpc_server_latency_seconds_bucket{Method=\"Get\",le=\"0.1\"} 1\n"
                     "rayc_rpc_server_latency_seconds_bucket{Method=\"Get\",le=\"+Inf\"} 1\n"
                     "rayc_rpc_server_latency_seconds_sum{Method=\"Get\"} 0.002\n"
                     "rayc_rpc_server_latency_seconds_count{Method=\"Get\"} 1\n"
                     "# HELP h2 \n"
                     "# TYPE h2 histogram\n"
                     "h2_bucket{le=\"+Inf\"} 1\n"
                     "h2_sum 4\n"
                     "h2_count 1\n");
    /* set/add do nothing to a histogram, observe nothing to a gauge */
    rc_metric_series_set(s, 100);
    rc_metric_series_add(s, 100);
    rc_metrics_free(reg);
}

static void test_refused(void)
{
    rc_metrics *reg = rc_metrics_new();
    rc_metric *m = NULL;
    const double up[] = {1, 2}, down[] = {2, 1}, inf[] = {1, INFINITY};
    CU_ASSERT_EQUAL(rc_metrics_add(reg, RC_METRIC_GAUGE, "9lives", "", NULL, NULL, 0, &m), RC_EINVAL);
    CU_ASSERT_EQUAL(rc_metrics_add(reg, RC_METRIC_GAUGE, "a-b", "", NULL, NULL, 0, &m), RC_EINVAL);
    CU_ASSERT_EQUAL(rc_metrics_add(reg, RC_METRIC_GAUGE, "", "", NULL, NULL, 0, &m), RC_EINVAL);
    CU_ASSERT_EQUAL(rc_metrics_add(reg, RC_METRIC_GAUGE, "ok", "",
                                   (const char *const[]){"a:b", NULL}, NULL, 0, &m), RC_EINVAL);
    CU_ASSERT_EQUAL(rc_metrics_add(reg, RC_METRIC_GAUGE, "ok", "",
                                   (const char *const[]){"__name", NULL}, NULL, 0, &m), RC_EINVAL);
    CU_ASSERT_EQUAL(rc_metrics_add(reg, RC_METRIC_HISTOGRAM, "ok", "",
                                   (const char *const[]){"le", NULL}, up, 2, &m), RC_EINVAL);
    CU_ASSERT_EQUAL(rc_metrics_add(reg, RC_METRIC_HISTOGRAM, "ok", "", NULL, down, 2, &m), RC_EINVAL);
    CU_ASSERT_EQUAL(rc_metrics_add(reg, RC_METRIC_HISTOGRAM, "ok", "", NULL, inf, 2, &m), RC_EINVAL);
    CU_ASSERT_EQUAL(rc_metrics_add(reg, RC_METRIC_GAUGE, "ok", "", NULL, up, 2, &m), RC_EINVAL);
    CU_ASSERT_PTR_NULL(m);
    CU_ASSERT_EQUAL(rc_metrics_add(reg, RC_METRIC_GAUGE, "ok", "",
                                   (const char *const[]){"le", NULL}, NULL, 0, &m), 0);
    CU_ASSERT_EQUAL(rc_metrics_add(reg, RC_METRIC_COUNTER, "ok", "", NULL, NULL, 0, &m), RC_EINVAL);
    rc_metrics_free(reg);
}

static const unit_case cases[] = {
    UNIT_CASE(test_counter_and_gauge),
    UNIT_CASE(test_escaping),
    UNIT_CASE(test_histogram),
    UNIT_CASE(test_refused),
};

int main(void)
{
    return unit_run("rc_metrics", cases, UNIT_N(cases));
}
