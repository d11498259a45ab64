/*
 * rayc job: Ray's job submission CLI over the dashboard's Jobs REST API (dashboard/jobs.h),
 * through libcurl: a group of subcommands (submit, status, logs, stop, delete, list), each
 * with its option table (cli_opt.c), sharing the --address row.
 *
 * The dashboard is --address, else $RAY_API_SERVER_ADDRESS or $RAY_ADDRESS when they are
 * http(s) URLs (as Ray's CLI takes them), else the latest session's dashboard_url on this
 * host. The token is the client token rayc finds everywhere (RAYC_AUTH_TOKEN,
 * RAYC_AUTH_TOKEN_PATH, the latest session). The dashboard serves HTTPS with a certificate of
 * the cluster CA, and the CA found with the token (RAYC_CA_CERT, the latest session) is the
 * only one trusted; an address without a scheme is https:// unless the cluster is insecure.
 * Main thread only.
 */
#include <curl/curl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli_int.h"
#include "gcs_client_auth.h"
#include "rc_alloc.h"
#include "rc_buf.h"
#include "rc_err.h"
#include "rc_json.h"
#include "rc_session.h"
#include "rc_time.h"

typedef struct cli__http {
    char url[512];
    char *auth;   /* "Authorization: Bearer ..." or NULL */
    char *ca_pem; /* the cluster CA, the only root trusted for https://; NULL: none found */
} cli__http;

/* TLS for one request: only the cluster's CA is trusted (as for RPC), never the system's. */
static void cli__http_tls(const cli__http *h, CURL *c)
{
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    if (!h->ca_pem)
        return;
    struct curl_blob ca = {h->ca_pem, strlen(h->ca_pem), CURL_BLOB_COPY};
    curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &ca);
    curl_easy_setopt(c, CURLOPT_CAPATH, NULL);
}

static size_t cli__on_body(char *data, size_t size, size_t n, void *arg)
{
    rc_buf_append(arg, data, size * n);
    return size * n;
}

static int cli__http_init(cli__http *h, const char *address)
{
    memset(h, 0, sizeof(*h));
    const char *env = getenv("RAY_API_SERVER_ADDRESS");
    const char *ray = getenv("RAY_ADDRESS");
    if (!address && env && *env)
        address = env;
    if (!address && ray && (!strncmp(ray, "http://", 7) || !strncmp(ray, "https://", 8)))
        address = ray;
    char found[400];
    if (!address) {
        char root[PATH_MAX], session[PATH_MAX], link[PATH_MAX + 32];
        rc_session_root(root, sizeof(root));
        snprintf(link, sizeof(link), "%s/session_latest", root);
        if (!realpath(link, session) || rc_session_read(session, "dashboard_url", found, sizeof(found)) < 0) {
            fprintf(stderr, "rayc job: no dashboard found on this host: start a cluster with `rayc start --head` "
                            "(it runs the dashboard) or give --address https://HEAD:8265\n");
            return CLI_FAIL;
        }
        address = found;
    }
    const char *insecure = getenv("RAYC_INSECURE");
    if (strstr(address, "://"))
        snprintf(h->url, sizeof(h->url), "%s", address);
    else
        snprintf(h->url, sizeof(h->url), "%s://%s",
                 (insecure && !strcmp(insecure, "1")) || gcs_auth_latest_session_insecure(NULL) ? "http" : "https",
                 address);
    size_t len = strlen(h->url);
    while (len && h->url[len - 1] == '/')
        h->url[--len] = '\0';
    gcs_admin_creds creds = {0};
    char err[512];
    if (gcs_admin_creds_find(&creds, err, sizeof(err)) == 0 && creds.token) {
        rc_buf b = RC_BUF_INIT;
        rc_buf_printf(&b, "Authorization: Bearer %s", creds.token);
        h->auth = rc_buf_detach(&b);
    }
    if (creds.ca_cert_pem)
        h->ca_pem = rc_strdup(creds.ca_cert_pem);
    gcs_admin_creds_free(&creds);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return CLI_OK;
}

static void cli__http_free(cli__http *h)
{
    if (h->auth) {
        memset(h->auth, 0, strlen(h->auth));
        rc_free(h->auth);
    }
    rc_free(h->ca_pem);
    curl_global_cleanup();
}

/* One request; the HTTP status, or -1 (after printing why) when there was no answer. */
static long cli__request(cli__http *h, const char *method, const char *path, const char *body, rc_buf *out)
{
    CURL *c = curl_easy_init();
    if (!c) {
        fprintf(stderr, "rayc job: cannot set up an HTTP client\n");
        return -1;
    }
    char url[1024];
    snprintf(url, sizeof(url), "%s%s", h->url, path);
    struct curl_slist *headers = NULL;
    if (h->auth)
        headers = curl_slist_append(headers, h->auth);
    if (body)
        headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, cli__on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    cli__http_tls(h, c);
    CURLcode rc = curl_easy_perform(c);
    long status = -1;
    if (rc != CURLE_OK)
        fprintf(stderr, "rayc job: cannot reach the dashboard at %s: %s (is the cluster running? `rayc status`)\n",
                h->url, curl_easy_strerror(rc));
    else
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    rc_buf_putc(out, '\0');
    out->len--;
    return status;
}

/* A request whose answer must be 200 and JSON; prints why not and returns CLI_FAIL. */
static int cli__json_request(cli__http *h, const char *method, const char *path, const char *body, rc_json **out)
{
    rc_buf b = RC_BUF_INIT;
    long status = cli__request(h, method, path, body, &b);
    if (status < 0) {
        rc_buf_free(&b);
        return CLI_FAIL;
    }
    if (status != 200) {
        size_t n = b.len;
        while (n && (b.data[n - 1] == '\n' || b.data[n - 1] == ' '))
            n--;
        fprintf(stderr, "rayc job: the dashboard answered %ld: %.*s\n", status, (int)n, b.len ? b.data : "");
        rc_buf_free(&b);
        return CLI_FAIL;
    }
    char err[200];
    if (rc_json_parse(b.data ? b.data : "", b.len, out, err, sizeof(err)) < 0) {
        fprintf(stderr, "rayc job: the dashboard's answer is not JSON: %s\n", err);
        rc_buf_free(&b);
        return CLI_FAIL;
    }
    rc_buf_free(&b);
    return CLI_OK;
}

static const char *cli__str(const rc_json *o, const char *key)
{
    const rc_json *v = rc_json_get(o, key);
    return v && v->type == RC_JSON_STRING ? v->str : NULL;
}

static int cli__terminal(const char *s)
{
    return s && (!strcmp(s, "STOPPED") || !strcmp(s, "SUCCEEDED") || !strcmp(s, "FAILED"));
}

static void cli__path(char *out, size_t len, const char *id, const char *suffix)
{
    snprintf(out, len, "/api/jobs/%s%s", id, suffix);
}

/* The job's status (static storage until the next call), or NULL after printing why. */
static const char *cli__status(cli__http *h, const char *id, char *message, size_t mlen, int *exit_code)
{
    static char status[32];
    char path[512];
    cli__path(path, sizeof(path), id, "");
    rc_json *j = NULL;
    if (cli__json_request(h, "GET", path, NULL, &j) != CLI_OK)
        return NULL;
    snprintf(status, sizeof(status), "%s", cli__str(j, "status") ? cli__str(j, "status") : "UNKNOWN");
    if (message)
        snprintf(message, mlen, "%s", cli__str(j, "message") ? cli__str(j, "message") : "");
    const rc_json *e = rc_json_get(j, "driver_exit_code");
    if (exit_code)
        *exit_code = e && e->type == RC_JSON_NUMBER ? (int)e->number : 0;
    rc_json_free(j);
    return status;
}

/* Prints the job's logs; with follow, polls /logs/tail from where the last answer ended
 * until the job has ended and everything it wrote is out. */
static int cli__logs(cli__http *h, const char *id, int follow)
{
    char path[600];
    if (!follow) {
        cli__path(path, sizeof(path), id, "/logs");
        rc_json *j = NULL;
        if (cli__json_request(h, "GET", path, NULL, &j) != CLI_OK)
            return CLI_FAIL;
        const rc_json *logs = rc_json_get(j, "logs");
        if (logs && logs->type == RC_JSON_STRING)
            fwrite(logs->str, 1, logs->str_len, stdout);
        rc_json_free(j);
        return CLI_OK;
    }
    long long offset = 0;
    for (;;) {
        snprintf(path, sizeof(path), "/api/jobs/%s/logs/tail?offset=%lld", id, offset);
        rc_json *j = NULL;
        if (cli__json_request(h, "GET", path, NULL, &j) != CLI_OK)
            return CLI_FAIL;
        const rc_json *logs = rc_json_get(j, "logs"), *next = rc_json_get(j, "offset"),
                      *ended = rc_json_get(j, "ended");
        if (logs && logs->type == RC_JSON_STRING && logs->str_len) {
            fwrite(logs->str, 1, logs->str_len, stdout);
            fflush(stdout);
        }
        int more = logs && logs->type == RC_JSON_STRING && logs->str_len > 0;
        if (next && next->type == RC_JSON_NUMBER)
            offset = (long long)next->number;
        int done = ended && ended->type == RC_JSON_BOOL && ended->boolean && !more;
        rc_json_free(j);
        if (done)
            return CLI_OK;
        if (!more)
            rc_sleep_ms(500);
    }
}

static int cli__job_list_print(cli__http *h, int json)
{
    rc_buf b = RC_BUF_INIT;
    long status = cli__request(h, "GET", "/api/jobs/", NULL, &b);
    if (status != 200) {
        if (status > 0)
            fprintf(stderr, "rayc job list: the dashboard answered %ld: %s", status, b.data ? b.data : "");
        rc_buf_free(&b);
        return CLI_FAIL;
    }
    if (json) {
        printf("%s\n", b.data);
        rc_buf_free(&b);
        return CLI_OK;
    }
    rc_json *list = NULL;
    char err[200];
    if (rc_json_parse(b.data, b.len, &list, err, sizeof(err)) < 0 || list->type != RC_JSON_ARRAY) {
        fprintf(stderr, "rayc job list: the dashboard's answer is not a JSON list: %s\n", err);
        rc_json_free(list);
        rc_buf_free(&b);
        return CLI_FAIL;
    }
    printf("%-32s %-10s %-9s %s\n", "SUBMISSION_ID", "STATUS", "JOB_ID", "ENTRYPOINT");
    for (size_t i = 0; i < list->n_items; i++) {
        const rc_json *j = &list->items[i];
        printf("%-32s %-10s %-9s %s\n", cli__str(j, "submission_id") ? cli__str(j, "submission_id") : "-",
               cli__str(j, "status") ? cli__str(j, "status") : "-", cli__str(j, "job_id") ? cli__str(j, "job_id") : "-",
               cli__str(j, "entrypoint") ? cli__str(j, "entrypoint") : "");
    }
    rc_json_free(list);
    rc_buf_free(&b);
    return CLI_OK;
}

/* The entrypoint's words as one shell command, joined as Ray's CLI joins them (Python's
 * subprocess.list2cmdline): a word holding a space or a tab, or an empty word, goes in double
 * quotes; a double quote becomes \" and the backslashes right before it are doubled (and
 * those at the end of a quoted word), so that /bin/sh gives the word back. Everything else
 * is left to the shell as typed ($VAR, globs, pipes), as Ray leaves it. */
static void cli__join_words(rc_buf *out, char **words, int n)
{
    for (int k = 0; k < n; k++) {
        const char *w = words[k];
        if (k)
            rc_buf_putc(out, ' ');
        int quote = !*w || strchr(w, ' ') || strchr(w, '\t');
        if (quote)
            rc_buf_putc(out, '"');
        size_t backslashes = 0;
        for (const char *p = w; *p; p++) {
            if (*p == '\\') {
                backslashes++;
                continue;
            }
            if (*p == '"') {
                for (size_t i = 0; i < backslashes * 2; i++)
                    rc_buf_putc(out, '\\');
                rc_buf_puts(out, "\\\"");
            } else {
                for (size_t i = 0; i < backslashes; i++)
                    rc_buf_putc(out, '\\');
                rc_buf_putc(out, *p);
            }
            backslashes = 0;
        }
        for (size_t i = 0; i < (quote ? 2 : 1) * backslashes; i++)
            rc_buf_putc(out, '\\');
        if (quote)
            rc_buf_putc(out, '"');
    }
}

/* ---- the subcommands ------------------------------------------------------------------------ */

static const cli_opt cli__submit_opts[] = {
    CLI_OPT_DASHBOARD_ADDRESS,
    {"--submission-id", NULL, "ID", "raysubmit_<random>", "the job's submission ID; the cluster refuses one in use",
     NULL},
    {"--job-id", NULL, "ID", NULL, "the same as --submission-id (Ray's older name)", NULL},
    {"--working-dir", NULL, "DIR",
     NULL, "a directory on the head's host, copied into the session: the entrypoint's working directory", NULL},
    {"--runtime-env-json", NULL, "JSON", NULL,
     "the job's runtime env as a JSON object: {\"working_dir\": DIR, \"env_vars\": {\"K\": \"V\"}}", NULL},
    {"--metadata-json", NULL, "JSON", NULL, "a JSON object of strings stored with the job (rayc job list, the API)",
     NULL},
    {"--entrypoint-num-cpus", NULL, "N", "0",
     "CPUs reserved on the head for the entrypoint itself while it runs (apart from its tasks)", NULL},
    {"--entrypoint-num-gpus", NULL, "N", "0", "GPUs reserved on the head for the entrypoint itself", NULL},
    {"--entrypoint-memory", NULL, "BYTES", "0", "memory (bytes) reserved on the head for the entrypoint itself",
     NULL},
    {"--entrypoint-resources", NULL, "JSON", NULL,
     "custom resources reserved on the head for the entrypoint itself, as a JSON object: '{\"A\": 1}'", NULL},
    {"--no-wait", NULL, NULL, NULL, "return once the job is submitted instead of printing its logs until it ends",
     NULL},
};

static const cli_spec cli__submit_spec = {
    "rayc job submit",
    "[--] ENTRYPOINT...",
    "Submits a job: runs ENTRYPOINT on the head with /bin/sh -c, whose driver joins this cluster\n"
    "as that job. Without --no-wait, prints the job's logs until it ends and exits 0 if it\n"
    "SUCCEEDED, 1 if it failed or was stopped. Everything after \"--\" (or after the first word\n"
    "that is not an option) is the entrypoint, its options included; its words are joined as\n"
    "Ray joins them (a word with a space or a tab, or an empty one, in double quotes), so\n"
    "`-- python3 x.py \"a b\"` passes \"a b\" as one argument, and one quoted word is one program\n"
    "name: give a shell script as `-- sh -c 'cmd1; cmd2'`. The --entrypoint-* resources are\n"
    "reserved on the head before the entrypoint starts (the job is PENDING until then, FAILED if\n"
    "the head can never provide them) and released when it ends.",
    "examples:\n"
    "  rayc job submit -- python3 my_script.py --arg=val\n"
    "  rayc job submit --working-dir ./my_project --runtime-env-json '{\"env_vars\": {\"X\": \"1\"}}' \\\n"
    "      -- python3 main.py\n"
    "  rayc job submit --no-wait --submission-id nightly --address https://HEAD:8265 -- python3 etl.py\n"
    "  rayc job submit --entrypoint-num-cpus 2 --entrypoint-resources '{\"disk\": 1}' -- python3 train.py\n"
    "\n"
    "The cluster token comes from $RAYC_AUTH_TOKEN, $RAYC_AUTH_TOKEN_PATH or the session.",
    CLI_SPEC_OPTS(cli__submit_opts),
    0,
    0,
    1,
};

static const cli_opt cli__status_opts[] = {CLI_OPT_DASHBOARD_ADDRESS};
static const cli_spec cli__status_spec = {
    "rayc job status",
    "JOB_ID",
    "Prints a job's status (PENDING, RUNNING, STOPPED, SUCCEEDED, FAILED) and its message.",
    "example:\n  rayc job status raysubmit_8ZxJ2cLkyBzXq7Pg",
    CLI_SPEC_OPTS(cli__status_opts),
    0,
    1,
};

static const cli_opt cli__logs_opts[] = {
    CLI_OPT_DASHBOARD_ADDRESS,
    {"--follow", "-f", NULL, NULL, "keep printing what the job writes until it ends", NULL},
};
static const cli_spec cli__logs_spec = {
    "rayc job logs",
    "JOB_ID",
    "Prints a job's output (its entrypoint's stdout and stderr).",
    "examples:\n  rayc job logs nightly\n  rayc job logs nightly --follow",
    CLI_SPEC_OPTS(cli__logs_opts),
    0,
    1,
};

static const cli_opt cli__stop_opts[] = {
    CLI_OPT_DASHBOARD_ADDRESS,
    {"--no-wait", NULL, NULL, NULL, "return once the stop is requested instead of waiting for the job to stop", NULL},
};
static const cli_spec cli__stop_spec = {
    "rayc job stop",
    "JOB_ID",
    "Stops a job: SIGTERM to its processes, SIGKILL after RAY_JOB_STOP_WAIT_TIME_S (3 s).\n"
    "Waits until it has stopped unless --no-wait.",
    "example:\n  rayc job stop nightly",
    CLI_SPEC_OPTS(cli__stop_opts),
    0,
    1,
};

static const cli_opt cli__delete_opts[] = {CLI_OPT_DASHBOARD_ADDRESS};
static const cli_spec cli__delete_spec = {
    "rayc job delete",
    "JOB_ID",
    "Forgets a job that has ended (STOPPED, SUCCEEDED or FAILED), with its logs.",
    "example:\n  rayc job delete nightly",
    CLI_SPEC_OPTS(cli__delete_opts),
    0,
    1,
};

static const cli_opt cli__list_opts[] = {CLI_OPT_DASHBOARD_ADDRESS, CLI_OPT_FORMAT};
static const cli_spec cli__list_spec = {
    "rayc job list",
    NULL,
    "Lists every submitted job: submission ID, status, job ID and entrypoint.",
    "examples:\n  rayc job list\n  rayc job list --format json",
    CLI_SPEC_OPTS(cli__list_opts),
    0,
    0,
};

/* Parses a subcommand's command line and opens the dashboard; the job ID (pos[0]) is checked
 * for the subcommands that take one. CLI_OK; CLI_HELP (printed); or the exit status. */
static int cli__job_begin(const cli_spec *s, int argc, char **argv, cli_args *a, cli__http *h)
{
    int rc = cli_parse(s, argc, argv, a);
    if (rc != CLI_OK)
        return rc;
    if (s->max_pos == 1 && a->n_pos == 0)
        return cli_usage_error(s, "which job? give its submission ID ('rayc job list' shows them)");
    if (a->n_pos == 1 && (!a->pos[0][0] || strchr(a->pos[0], '/')))
        return cli_usage_error(s, "'%s' is not a job ID ('rayc job list' shows them)", a->pos[0]);
    return cli__http_init(h, cli_arg(a, "--address"));
}

static int cli__job_submit(int argc, char **argv)
{
    const cli_spec *s = &cli__submit_spec;
    cli_args a;
    int rc = cli_parse(s, argc, argv, &a);
    if (rc != CLI_OK)
        return CLI_PARSED_EXIT(rc);
    const char *wd = cli_arg(&a, "--working-dir"), *renv = cli_arg(&a, "--runtime-env-json"),
               *sid = cli_arg(&a, "--submission-id"), *meta = cli_arg(&a, "--metadata-json");
    int no_wait = !!cli_arg(&a, "--no-wait");
    if (cli_arg(&a, "--job-id")) {
        if (sid)
            return cli_usage_error(s, "give --submission-id or --job-id, not both");
        sid = cli_arg(&a, "--job-id");
    }
    if (a.n_rest == 0)
        return cli_usage_error(s, "no entrypoint: give the command after --, e.g. rayc job submit -- python3 "
                                  "script.py");
    rc_buf entry = RC_BUF_INIT;
    cli__join_words(&entry, a.rest, a.n_rest);
    rc_buf body = RC_BUF_INIT;
    rc_buf_puts(&body, "{\"entrypoint\": ");
    rc_buf_json_str(&body, entry.data, entry.len);
    char err[200], abs[PATH_MAX];
    cli__http h;
    int have_http = 0;
    if (sid) {
        rc_buf_puts(&body, ", \"submission_id\": ");
        rc_buf_json_str(&body, sid, strlen(sid));
    }
    static const char *const amounts[][2] = {{"--entrypoint-num-cpus", "entrypoint_num_cpus"},
                                             {"--entrypoint-num-gpus", "entrypoint_num_gpus"},
                                             {"--entrypoint-memory", "entrypoint_memory"}};
    for (size_t k = 0; k < sizeof(amounts) / sizeof(amounts[0]); k++) {
        const char *v = cli_arg(&a, amounts[k][0]);
        if (!v)
            continue;
        char *end;
        double d = strtod(v, &end);
        if (*end || end == v || !(d >= 0) || !isfinite(d)) {
            rc = cli_usage_error(s, "%s needs a non-negative number, not '%s'", amounts[k][0], v);
            goto out;
        }
        if (k == 2 && d != floor(d)) {
            rc = cli_usage_error(s, "--entrypoint-memory needs a whole number of bytes, not '%s'", v);
            goto out;
        }
        rc_buf_printf(&body, ", \"%s\": %.17g", amounts[k][1], d);
    }
    const char *eres = cli_arg(&a, "--entrypoint-resources");
    if (eres) {
        rc_json *r = NULL;
        const char *bad = NULL;
        if (rc_json_parse(eres, strlen(eres), &r, err, sizeof(err)) < 0)
            bad = err;
        else if (r->type != RC_JSON_OBJECT)
            bad = "not an object";
        for (size_t k = 0; !bad && k < r->n_items; k++)
            if (r->items[k].type != RC_JSON_NUMBER || r->items[k].number < 0)
                bad = "every value must be a number >= 0";
        if (bad) {
            rc = cli_usage_error(s, "--entrypoint-resources needs a JSON object of resource amounts, e.g. "
                                    "'{\"A\": 1}': %s", bad);
            rc_json_free(r);
            goto out;
        }
        rc_buf_puts(&body, ", \"entrypoint_resources\": ");
        rc_json_write(&body, r);
        rc_json_free(r);
    }
    if (meta) {
        rc_json *m = NULL;
        if (rc_json_parse(meta, strlen(meta), &m, err, sizeof(err)) < 0 || m->type != RC_JSON_OBJECT) {
            rc = cli_usage_error(s, "--metadata-json needs a JSON object: %s", m ? "not an object" : err);
            rc_json_free(m);
            goto out;
        }
        rc_json_free(m);
        rc_buf_printf(&body, ", \"metadata\": %s", meta);
    }
    if (wd && !realpath(wd, abs)) {
        rc = cli_usage_error(s, "--working-dir %s: no such directory", wd);
        goto out;
    }
    if (renv || wd) {
        rc_json *r = NULL;
        if (renv && (rc_json_parse(renv, strlen(renv), &r, err, sizeof(err)) < 0 || r->type != RC_JSON_OBJECT)) {
            rc = cli_usage_error(s, "--runtime-env-json needs a JSON object: %s", r ? "not an object" : err);
            rc_json_free(r);
            goto out;
        }
        if (r && wd && rc_json_get(r, "working_dir")) {
            rc = cli_usage_error(s, "give the working directory once (--working-dir or the runtime env's "
                                    "working_dir)");
            rc_json_free(r);
            goto out;
        }
        int empty = !r || r->n_items == 0;
        rc_json_free(r);
        rc_buf_puts(&body, ", \"runtime_env\": {");
        if (wd) {
            rc_buf_puts(&body, "\"working_dir\": ");
            rc_buf_json_str(&body, abs, strlen(abs));
            if (!empty)
                rc_buf_puts(&body, ", ");
        }
        if (renv) {
            const char *open = strchr(renv, '{');
            const char *close = strrchr(renv, '}');
            rc_buf_append(&body, open + 1, (size_t)(close - open - 1));
        }
        rc_buf_putc(&body, '}');
    }
    rc_buf_putc(&body, '}');
    rc_buf_putc(&body, '\0');
    if ((rc = cli__http_init(&h, cli_arg(&a, "--address"))) != CLI_OK)
        goto out;
    have_http = 1;
    rc_json *reply = NULL;
    if ((rc = cli__json_request(&h, "POST", "/api/jobs/", body.data, &reply)) != CLI_OK)
        goto out;
    char id[256];
    snprintf(id, sizeof(id), "%s", cli__str(reply, "submission_id") ? cli__str(reply, "submission_id") : "");
    rc_json_free(reply);
    printf("Job '%s' submitted successfully\n", id);
    if (no_wait) {
        printf("Query the status of the job:\n  rayc job status %s\n"
               "Request the job to be stopped:\n  rayc job stop %s\n"
               "Query the logs of the job:\n  rayc job logs %s\n",
               id, id, id);
        rc = CLI_OK;
        goto out;
    }
    printf("Tailing logs until the job exits (disconnecting will not stop the job):\n");
    fflush(stdout);
    if ((rc = cli__logs(&h, id, 1)) != CLI_OK)
        goto out;
    char message[4096];
    int code = 0;
    const char *status = cli__status(&h, id, message, sizeof(message), &code);
    if (!status) {
        rc = CLI_FAIL;
    } else if (!strcmp(status, "SUCCEEDED")) {
        printf("Job '%s' succeeded\n", id);
        rc = CLI_OK;
    } else {
        printf("Job '%s' %s\n", id, !strcmp(status, "STOPPED") ? "was stopped" : "failed");
        if (strcmp(status, "STOPPED"))
            printf("Status message: %.200s%s\n", message, strlen(message) > 200 ? "..." : "");
        rc = CLI_FAIL;
    }
out:
    if (have_http)
        cli__http_free(&h);
    rc_buf_free(&body);
    rc_buf_free(&entry);
    return rc;
}

static int cli__job_status(int argc, char **argv)
{
    cli_args a;
    cli__http h;
    int rc = cli__job_begin(&cli__status_spec, argc, argv, &a, &h);
    if (rc != CLI_OK)
        return CLI_PARSED_EXIT(rc);
    const char *id = a.pos[0];
    char message[4096];
    int code = 0;
    const char *status = cli__status(&h, id, message, sizeof(message), &code);
    if (!status) {
        rc = CLI_FAIL;
    } else {
        printf("Status for job '%s': %s\nStatus message: %s\n", id, status, message);
        rc = CLI_OK;
    }
    cli__http_free(&h);
    return rc;
}

static int cli__job_logs(int argc, char **argv)
{
    cli_args a;
    cli__http h;
    int rc = cli__job_begin(&cli__logs_spec, argc, argv, &a, &h);
    if (rc != CLI_OK)
        return CLI_PARSED_EXIT(rc);
    rc = cli__logs(&h, a.pos[0], !!cli_arg(&a, "--follow"));
    cli__http_free(&h);
    return rc;
}

static int cli__job_stop(int argc, char **argv)
{
    cli_args a;
    cli__http h;
    int rc = cli__job_begin(&cli__stop_spec, argc, argv, &a, &h);
    if (rc != CLI_OK)
        return CLI_PARSED_EXIT(rc);
    const char *id = a.pos[0];
    char path[512];
    rc_json *j = NULL;
    cli__path(path, sizeof(path), id, "/stop");
    printf("Attempting to stop job '%s'\n", id);
    if ((rc = cli__json_request(&h, "POST", path, "{}", &j)) == CLI_OK) {
        const rc_json *s = rc_json_get(j, "stopped");
        int stopped = s && s->type == RC_JSON_BOOL && s->boolean;
        rc_json_free(j);
        if (!stopped) {
            const char *status = cli__status(&h, id, NULL, 0, NULL);
            printf("Job '%s' has already ended (%s)\n", id, status ? status : "?");
        } else if (cli_arg(&a, "--no-wait")) {
            printf("Stop requested for job '%s'\n", id);
        } else {
            printf("Waiting for job '%s' to exit (disconnecting will not stop it from stopping)\n", id);
            const char *status = NULL;
            while ((status = cli__status(&h, id, NULL, 0, NULL)) && !cli__terminal(status))
                rc_sleep_ms(500);
            if (!status)
                rc = CLI_FAIL;
            else
                printf("Job '%s' was stopped\n", id);
        }
    }
    cli__http_free(&h);
    return rc;
}

static int cli__job_delete(int argc, char **argv)
{
    cli_args a;
    cli__http h;
    int rc = cli__job_begin(&cli__delete_spec, argc, argv, &a, &h);
    if (rc != CLI_OK)
        return CLI_PARSED_EXIT(rc);
    const char *id = a.pos[0];
    char path[512];
    rc_json *j = NULL;
    cli__path(path, sizeof(path), id, "");
    if ((rc = cli__json_request(&h, "DELETE", path, NULL, &j)) == CLI_OK) {
        printf("Job '%s' deleted successfully\n", id);
        rc_json_free(j);
    }
    cli__http_free(&h);
    return rc;
}

static int cli__job_list(int argc, char **argv)
{
    cli_args a;
    int rc = cli_parse(&cli__list_spec, argc, argv, &a), json;
    if (rc != CLI_OK)
        return CLI_PARSED_EXIT(rc);
    if ((rc = cli_arg_format(&a, &json)) != CLI_OK)
        return rc;
    cli__http h;
    if ((rc = cli__http_init(&h, cli_arg(&a, "--address"))) != CLI_OK)
        return rc;
    rc = cli__job_list_print(&h, json);
    cli__http_free(&h);
    return rc;
}

static const cli_sub cli__job_subs[] = {
    {"submit", "run a command on the head as a job (and print its logs until it ends)", cli__job_submit},
    {"status", "a job's status and why", cli__job_status},
    {"logs", "a job's output", cli__job_logs},
    {"stop", "stop a job (SIGTERM, then SIGKILL)", cli__job_stop},
    {"delete", "forget a job that has ended, with its logs", cli__job_delete},
    {"list", "every submitted job", cli__job_list},
};

static const cli_group cli__job_group = {
    "rayc job",
    "Ray's job submission CLI: run, follow and stop jobs through the head's dashboard (its\n"
    "Jobs REST API, https://HEAD:8265), which `rayc start --head` runs. --address URL names\n"
    "the dashboard; the cluster token comes from $RAYC_AUTH_TOKEN, $RAYC_AUTH_TOKEN_PATH or\n"
    "the session.",
    cli__job_subs,
    (int)(sizeof(cli__job_subs) / sizeof(cli__job_subs[0])),
};

int cli_cmd_job(int argc, char **argv)
{
    return cli_group_run(&cli__job_group, argc, argv);
}

/* ---- rayc start --head ------------------------------------------------------------------ */

int cli_dashboard_start(const char *session, const char *gcs_address, const char *host, int port, pid_t *pid_out)
{
    char dir[PATH_MAX], exe[PATH_MAX + 32], port_text[16];
    if (rc_exe_dir(dir, sizeof(dir)) < 0) {
        fprintf(stderr, "rayc start: warning: cannot find rayc-dashboard; the cluster runs without the Jobs API\n");
        return CLI_FAIL;
    }
    snprintf(exe, sizeof(exe), "%s/rayc-dashboard", dir);
    snprintf(port_text, sizeof(port_text), "%d", port);
    char *argv[] = {exe, "--session-dir", (char *)session, "--gcs-address", (char *)gcs_address,
                    "--host", (char *)host, "--port", port_text, NULL};
    pid_t pid;
    if (rc_spawn_daemon(session, "dashboard", exe, argv, &pid) < 0) {
        fprintf(stderr, "rayc start: warning: cannot run %s; the cluster runs without the Jobs API\n", exe);
        return CLI_FAIL;
    }
    char url[400];
    int64_t deadline = rc_mono_ms() + 20000;
    while (rc_mono_ms() < deadline) {
        if (rc_session_read(session, "dashboard_url", url, sizeof(url)) == 0) {
            printf("\n  Jobs API (rayc job, Ray's REST shape with the cluster token): %s\n", url);
            fflush(stdout);
            *pid_out = pid;
            return CLI_OK;
        }
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            char err[4096] = "";
            rc_session_read(session, "logs/dashboard.err", err, sizeof(err));
            fprintf(stderr, "rayc start: warning: the dashboard did not start; the cluster runs without the Jobs "
                            "API (--dashboard-port N picks another port, --include-dashboard false none):\n%s\n",
                    err);
            return CLI_FAIL;
        }
        rc_sleep_ms(50);
    }
    fprintf(stderr, "rayc start: warning: the dashboard did not listen within 20 s (see %s/logs/dashboard.err)\n",
            session);
    return CLI_FAIL;
}
