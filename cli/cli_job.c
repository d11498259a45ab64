/*
 * rayc job: Ray's job submission CLI over the dashboard's Jobs REST API (dashboard/jobs.h),
 * through libcurl.
 *
 *   rayc job submit [--address URL] [--working-dir DIR] [--runtime-env-json J]
 *                   [--submission-id ID] [--no-wait] [--entrypoint-num-cpus N]
 *                   [--entrypoint-num-gpus N] [--metadata-json J] -- CMD...
 *   rayc job status|logs [--follow]|stop [--no-wait]|delete ID, rayc job list
 *
 * The dashboard is --address, else $RAY_API_SERVER_ADDRESS or $RAY_ADDRESS when they are
 * http(s) URLs (as Ray's CLI takes them), else the latest session's dashboard_url on this
 * host. The token is the client token rayc finds everywhere (RAYC_AUTH_TOKEN,
 * RAYC_AUTH_TOKEN_PATH, the latest session). Main thread only.
 */
#include <curl/curl.h>
#include <limits.h>
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

static void cli__job_usage(FILE *f)
{
    fprintf(f,
            "usage: rayc job submit [--address URL] [--working-dir DIR] [--runtime-env-json JSON]\n"
            "                       [--submission-id ID] [--metadata-json JSON] [--no-wait]\n"
            "                       [--entrypoint-num-cpus N] [--entrypoint-num-gpus N] -- CMD...\n"
            "       rayc job status ID [--address URL]\n"
            "       rayc job logs ID [--follow] [--address URL]\n"
            "       rayc job stop ID [--no-wait] [--address URL]\n"
            "       rayc job delete ID [--address URL]\n"
            "       rayc job list [--format table|json] [--address URL]\n"
            "\n"
            "  submit   run CMD (a shell command) on the head as a job whose driver joins this\n"
            "           cluster; without --no-wait, print its logs until it ends and exit 0 only\n"
            "           if it SUCCEEDED. --working-dir: a directory on the head's host, copied\n"
            "           into the session, the command's working directory. --runtime-env-json:\n"
            "           {\"working_dir\": DIR, \"env_vars\": {...}}. --submission-id: the job's ID\n"
            "           (default raysubmit_<random>).\n"
            "  status   the job's status (PENDING, RUNNING, STOPPED, SUCCEEDED, FAILED) and why\n"
            "  logs     the job's output (stdout and stderr); --follow: until it ends\n"
            "  stop     SIGTERM to the job's processes, SIGKILL after RAY_JOB_STOP_WAIT_TIME_S\n"
            "           (3 s); waits for it to stop unless --no-wait\n"
            "  delete   forget a job that has ended, with its logs\n"
            "  list     every submitted job\n"
            "\n"
            "--address URL: the dashboard (http://HOST:8265); default $RAY_API_SERVER_ADDRESS or\n"
            "an http:// $RAY_ADDRESS, else the dashboard of the cluster started on this host.\n"
            "The cluster token comes from $RAYC_AUTH_TOKEN, $RAYC_AUTH_TOKEN_PATH or the session.\n");
}

typedef struct cli__http {
    char url[512];
    char *auth; /* "Authorization: Bearer ..." or NULL */
} cli__http;

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
                            "(it runs the dashboard) or give --address http://HEAD:8265\n");
            return CLI_FAIL;
        }
        address = found;
    }
    if (strstr(address, "://"))
        snprintf(h->url, sizeof(h->url), "%s", address);
    else
        snprintf(h->url, sizeof(h->url), "http://%s", address);
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

static int cli__job_submit(cli__http *h, int argc, char **argv)
{
    const char *wd = NULL, *renv = NULL, *sid = NULL, *meta = NULL, *cpus = NULL, *gpus = NULL;
    int no_wait = 0, i = 0;
    for (; i < argc && strcmp(argv[i], "--"); i++) {
        const char *a = argv[i];
        const char **dst = !strcmp(a, "--working-dir")            ? &wd
                           : !strcmp(a, "--runtime-env-json")     ? &renv
                           : !strcmp(a, "--submission-id")        ? &sid
                           : !strcmp(a, "--job-id")               ? &sid
                           : !strcmp(a, "--metadata-json")        ? &meta
                           : !strcmp(a, "--entrypoint-num-cpus")  ? &cpus
                           : !strcmp(a, "--entrypoint-num-gpus")  ? &gpus
                                                                  : NULL;
        if (!strcmp(a, "--no-wait")) {
            no_wait = 1;
        } else if (dst && i + 1 < argc) {
            *dst = argv[++i];
        } else if (dst) {
            fprintf(stderr, "rayc job submit: %s needs a value\n", a);
            return CLI_USAGE;
        } else if (a[0] == '-') {
            fprintf(stderr, "rayc job submit: unknown flag '%s' (see rayc job --help)\n", a);
            return CLI_USAGE;
        } else {
            break; /* the entrypoint without "--" */
        }
    }
    if (i < argc && !strcmp(argv[i], "--"))
        i++;
    if (i >= argc) {
        fprintf(stderr, "rayc job submit: no entrypoint: give the command after --, e.g. rayc job submit -- "
                        "python3 script.py\n");
        return CLI_USAGE;
    }
    rc_buf entry = RC_BUF_INIT;
    for (int k = i; k < argc; k++) {
        if (k > i)
            rc_buf_putc(&entry, ' ');
        rc_buf_puts(&entry, argv[k]);
    }
    rc_buf body = RC_BUF_INIT;
    rc_buf_puts(&body, "{\"entrypoint\": ");
    rc_buf_json_str(&body, entry.data, entry.len);
    int rc = CLI_USAGE;
    char err[200], abs[PATH_MAX];
    if (sid) {
        rc_buf_puts(&body, ", \"submission_id\": ");
        rc_buf_json_str(&body, sid, strlen(sid));
    }
    for (int k = 0; k < 2; k++) {
        const char *v = k ? gpus : cpus;
        if (!v)
            continue;
        char *end;
        double d = strtod(v, &end);
        if (*end || end == v || d < 0) {
            fprintf(stderr, "rayc job submit: --entrypoint-num-%s needs a non-negative number, not '%s'\n",
                    k ? "gpus" : "cpus", v);
            goto out;
        }
        rc_buf_printf(&body, ", \"entrypoint_num_%s\": %g", k ? "gpus" : "cpus", d);
    }
    if (meta) {
        rc_json *m = NULL;
        if (rc_json_parse(meta, strlen(meta), &m, err, sizeof(err)) < 0 || m->type != RC_JSON_OBJECT) {
            fprintf(stderr, "rayc job submit: --metadata-json needs a JSON object: %s\n",
                    m ? "not an object" : err);
            rc_json_free(m);
            goto out;
        }
        rc_json_free(m);
        rc_buf_printf(&body, ", \"metadata\": %s", meta);
    }
    if (wd && !realpath(wd, abs)) {
        fprintf(stderr, "rayc job submit: --working-dir %s: no such directory\n", wd);
        goto out;
    }
    if (renv || wd) {
        rc_json *r = NULL;
        if (renv && (rc_json_parse(renv, strlen(renv), &r, err, sizeof(err)) < 0 || r->type != RC_JSON_OBJECT)) {
            fprintf(stderr, "rayc job submit: --runtime-env-json needs a JSON object: %s\n", r ? "not an object" : err);
            rc_json_free(r);
            goto out;
        }
        if (r && wd && rc_json_get(r, "working_dir")) {
            fprintf(stderr, "rayc job submit: give the working directory once (--working-dir or the runtime "
                            "env's working_dir)\n");
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
    rc_json *reply = NULL;
    if ((rc = cli__json_request(h, "POST", "/api/jobs/", body.data, &reply)) != CLI_OK)
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
    if ((rc = cli__logs(h, id, 1)) != CLI_OK)
        goto out;
    char message[4096];
    int code = 0;
    const char *status = cli__status(h, id, message, sizeof(message), &code);
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
    rc_buf_free(&body);
    rc_buf_free(&entry);
    return rc;
}

static int cli__job_list(cli__http *h, int json)
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

int cli_cmd_job(int argc, char **argv)
{
    if (argc < 1 || !strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) {
        cli__job_usage(argc < 1 ? stderr : stdout);
        return argc < 1 ? CLI_USAGE : CLI_OK;
    }
    for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            cli__job_usage(stdout);
            return CLI_OK;
        }
    const char *op = argv[0];
    const char *address = NULL;
    /* --address anywhere before "--" */
    int n = 0;
    char *rest[256];
    int dashdash = 0;
    for (int i = 1; i < argc && n < 255; i++) {
        if (!dashdash && !strcmp(argv[i], "--"))
            dashdash = 1;
        if (!dashdash && !strcmp(argv[i], "--address")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "rayc job: --address needs a URL (http://HEAD:8265)\n");
                return CLI_USAGE;
            }
            address = argv[++i];
            continue;
        }
        if (!dashdash && !strncmp(argv[i], "--address=", 10)) {
            address = argv[i] + 10;
            continue;
        }
        rest[n++] = argv[i];
    }
    rest[n] = NULL;
    int follow = 0, no_wait = 0, json = 0;
    const char *id = NULL;
    if (strcmp(op, "submit") && strcmp(op, "list")) {
        for (int i = 0; i < n; i++) {
            if (!strcmp(rest[i], "--follow") && !strcmp(op, "logs"))
                follow = 1;
            else if (!strcmp(rest[i], "--no-wait") && !strcmp(op, "stop"))
                no_wait = 1;
            else if (rest[i][0] == '-') {
                fprintf(stderr, "rayc job %s: unknown flag '%s' (see rayc job --help)\n", op, rest[i]);
                return CLI_USAGE;
            } else if (!id)
                id = rest[i];
            else {
                fprintf(stderr, "rayc job %s: one job ID, please ('%s' is extra)\n", op, rest[i]);
                return CLI_USAGE;
            }
        }
        if (!id && (!strcmp(op, "status") || !strcmp(op, "logs") || !strcmp(op, "stop") || !strcmp(op, "delete"))) {
            fprintf(stderr, "rayc job %s: which job? give its submission ID (rayc job list shows them)\n", op);
            return CLI_USAGE;
        }
    } else if (!strcmp(op, "list")) {
        for (int i = 0; i < n; i++) {
            if (!strcmp(rest[i], "--format") && i + 1 < n &&
                (!strcmp(rest[i + 1], "json") || !strcmp(rest[i + 1], "table"))) {
                json = !strcmp(rest[++i], "json");
            } else {
                fprintf(stderr, "rayc job list: unknown argument '%s' (--format table|json)\n", rest[i]);
                return CLI_USAGE;
            }
        }
    }
    if (strcmp(op, "submit") && strcmp(op, "status") && strcmp(op, "logs") && strcmp(op, "stop") &&
        strcmp(op, "delete") && strcmp(op, "list")) {
        fprintf(stderr, "rayc job: unknown subcommand '%s'\n\n", op);
        cli__job_usage(stderr);
        return CLI_USAGE;
    }
    if (id && strchr(id, '/')) {
        fprintf(stderr, "rayc job %s: '%s' is not a job ID\n", op, id);
        return CLI_USAGE;
    }
    cli__http h;
    int rc = cli__http_init(&h, address);
    if (rc != CLI_OK)
        return rc;
    char path[512], message[4096];
    if (!strcmp(op, "submit")) {
        rc = cli__job_submit(&h, n, rest);
    } else if (!strcmp(op, "status")) {
        int code = 0;
        const char *status = cli__status(&h, id, message, sizeof(message), &code);
        if (!status) {
            rc = CLI_FAIL;
        } else {
            printf("Status for job '%s': %s\nStatus message: %s\n", id, status, message);
            rc = CLI_OK;
        }
    } else if (!strcmp(op, "logs")) {
        rc = cli__logs(&h, id, follow);
    } else if (!strcmp(op, "list")) {
        rc = cli__job_list(&h, json);
    } else if (!strcmp(op, "stop")) {
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
            } else if (no_wait) {
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
    } else {
        rc_json *j = NULL;
        cli__path(path, sizeof(path), id, "");
        if ((rc = cli__json_request(&h, "DELETE", path, NULL, &j)) == CLI_OK) {
            printf("Job '%s' deleted successfully\n", id);
            rc_json_free(j);
        }
    }
    cli__http_free(&h);
    return rc;
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
