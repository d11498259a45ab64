/*
 * The option tables of rayc's commands: one table per command both parses its command line
 * and prints its --help, so that no flag is accepted without being documented.
 *
 * A command line is options (in any order, "--name value" or "--name=value", a switch
 * without value) and positional arguments; "--" ends the options. A spec with rest set keeps
 * the command line that follows "--" (or its first positional argument beyond min_pos)
 * verbatim, for commands that run another command (rayc job submit -- CMD ARGS). Errors print one first
 * line that names the problem and the help to read, and return CLI_USAGE (exit 2).
 *
 * Main thread only.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_int.h"

static const cli_opt cli__help_opt = {"--help", "-h", NULL, NULL, "print this help and exit"};

int cli_usage_error(const cli_spec *s, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", s->path);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "; see '%s --help'\n", s->path);
    return CLI_USAGE;
}

static const cli_opt *cli__find(const cli_spec *s, const char *name, size_t name_len, int *index)
{
    for (int i = 0; i < s->n_opts; i++) {
        const cli_opt *o = &s->opts[i];
        if ((strlen(o->name) == name_len && !strncmp(o->name, name, name_len)) ||
            (o->alias && strlen(o->alias) == name_len && !strncmp(o->alias, name, name_len))) {
            *index = i;
            return o;
        }
    }
    return NULL;
}

static void cli__print_opt(FILE *f, const cli_opt *o)
{
    char left[96];
    int n = snprintf(left, sizeof(left), "  %s%s%s%s%s", o->alias ? o->alias : "", o->alias ? ", " : "", o->name,
                     o->arg ? " " : "", o->arg ? o->arg : "");
    if (n < 30)
        fprintf(f, "%-30s %s", left, o->help);
    else
        fprintf(f, "%s\n%-30s %s", left, "", o->help);
    if (o->def)
        fprintf(f, " (default: %s)", o->def);
    fputc('\n', f);
}

void cli_help(const cli_spec *s, FILE *f)
{
    fprintf(f, "usage: %s%s%s%s\n", s->path, s->n_opts ? " [options]" : " [--help]", s->synopsis ? " " : "",
            s->synopsis ? s->synopsis : "");
    if (s->about)
        fprintf(f, "\n%s\n", s->about);
    fprintf(f, "\noptions:\n");
    cli__print_opt(f, &cli__help_opt);
    for (int i = 0; i < s->n_opts; i++) {
        if (s->opts[i].section)
            fprintf(f, "%s:\n", s->opts[i].section);
        cli__print_opt(f, &s->opts[i]);
    }
    if (s->notes)
        fprintf(f, "\n%s\n", s->notes);
}

int cli_parse(const cli_spec *s, int argc, char **argv, cli_args *a)
{
    if (s->n_opts > CLI_MAX_OPTS) {
        fprintf(stderr, "%s: internal error: more than %d options in its table\n", s->path, CLI_MAX_OPTS);
        abort();
    }
    memset(a, 0, sizeof(*a));
    a->spec = s;
    int only_positional = 0;
    for (int i = 0; i < argc; i++) {
        char *arg = argv[i];
        if (s->rest && a->n_pos >= s->min_pos && (!strcmp(arg, "--") || arg[0] != '-' || !strcmp(arg, "-"))) {
            int skip = !strcmp(arg, "--");
            a->rest = argv + i + skip;
            a->n_rest = argc - i - skip;
            break;
        }
        if (only_positional || arg[0] != '-' || !strcmp(arg, "-")) {
            if (a->n_pos >= CLI_MAX_POS)
                return cli_usage_error(s, "too many arguments");
            a->pos[a->n_pos++] = arg;
            continue;
        }
        if (!strcmp(arg, "--")) {
            only_positional = 1;
            continue;
        }
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            cli_help(s, stdout);
            return CLI_HELP;
        }
        const char *eq = strchr(arg, '=');
        size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
        int k;
        const cli_opt *o = cli__find(s, arg, name_len, &k);
        if (!o)
            return cli_usage_error(s, "unknown option %.*s", (int)name_len, arg);
        if (!o->arg) {
            if (eq)
                return cli_usage_error(s, "%s takes no value", o->name);
            a->val[k] = "1";
            continue;
        }
        if (eq) {
            a->val[k] = eq + 1;
        } else if (i + 1 < argc) {
            a->val[k] = argv[++i];
        } else {
            return cli_usage_error(s, "%s needs a value (%s)", o->name, o->arg);
        }
        if (a->n_each[k] >= CLI_MAX_REPEAT)
            return cli_usage_error(s, "%s given more than %d times", o->name, CLI_MAX_REPEAT);
        a->each[k][a->n_each[k]++] = a->val[k];
    }
    if (a->n_pos < s->min_pos || (s->max_pos >= 0 && a->n_pos > s->max_pos)) {
        if (a->n_pos < s->min_pos)
            return cli_usage_error(s, "missing arguments: %s", s->synopsis ? s->synopsis : "");
        return cli_usage_error(s, "unexpected argument '%s'", a->pos[s->max_pos]);
    }
    return CLI_OK;
}

const char *cli_arg(const cli_args *a, const char *name)
{
    int k;
    if (!cli__find(a->spec, name, strlen(name), &k)) {
        fprintf(stderr, "%s: internal error: no option %s in its table\n", a->spec->path, name);
        abort();
    }
    return a->val[k];
}

int cli_arg_all(const cli_args *a, const char *name, const char *const **vals)
{
    int k;
    if (!cli__find(a->spec, name, strlen(name), &k)) {
        fprintf(stderr, "%s: internal error: no option %s in its table\n", a->spec->path, name);
        abort();
    }
    *vals = a->each[k];
    return a->n_each[k];
}

int cli_arg_int(const cli_args *a, const char *name, long lo, long hi, long def, long *out)
{
    const char *v = cli_arg(a, name);
    *out = def;
    if (!v)
        return CLI_OK;
    char *end;
    long n = strtol(v, &end, 10);
    if (end == v || *end || n < lo || n > hi)
        return cli_usage_error(a->spec, "%s needs a whole number in %ld..%ld, not '%s'", name, lo, hi, v);
    *out = n;
    return CLI_OK;
}

int cli_arg_format(const cli_args *a, int *json)
{
    const char *v = cli_arg(a, "--format");
    *json = 0;
    if (!v || !strcmp(v, "table"))
        return CLI_OK;
    if (!strcmp(v, "json")) {
        *json = 1;
        return CLI_OK;
    }
    return cli_usage_error(a->spec, "--format is table or json, not '%s'", v);
}

/* ---- command groups ------------------------------------------------------------------- */

/* "command" for rayc's own, "subcommand" for a group's. */
static const char *cli__noun(const cli_group *g)
{
    return strchr(g->path, ' ') ? "subcommand" : "command";
}

void cli_group_help(const cli_group *g, FILE *f)
{
    const char *noun = cli__noun(g);
    fprintf(f, "usage: %s <%s> [options]\n", g->path, noun);
    if (g->about)
        fprintf(f, "\n%s\n", g->about);
    fprintf(f, "\n%ss:\n", noun);
    for (int i = 0; i < g->n_subs; i++)
        fprintf(f, "  %-22s %s\n", g->subs[i].name, g->subs[i].summary);
    fprintf(f, "\n'%s <%s> --help' describes each one and its options.\n", g->path, noun);
}

int cli_group_run(const cli_group *g, int argc, char **argv)
{
    if (argc < 1) {
        fprintf(stderr, "%s: no %s given; see '%s --help'\n", g->path, cli__noun(g), g->path);
        cli_group_help(g, stderr);
        return CLI_USAGE;
    }
    if (!strcmp(argv[0], "help") && argc > 1 && argc < CLI_MAX_POS) {
        /* "help X Y" is "X Y --help" */
        char *words[CLI_MAX_POS + 1];
        for (int i = 1; i < argc; i++)
            words[i - 1] = argv[i];
        words[argc - 1] = "--help";
        words[argc] = NULL;
        return cli_group_run(g, argc, words);
    }
    if (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h") || !strcmp(argv[0], "help")) {
        cli_group_help(g, stdout);
        return CLI_OK;
    }
    for (int i = 0; i < g->n_subs; i++)
        if (!strcmp(argv[0], g->subs[i].name))
            return g->subs[i].run(argc - 1, argv + 1);
    fprintf(stderr, "%s: unknown %s '%s'; see '%s --help'\n", g->path, argv[0][0] == '-' ? "option" : cli__noun(g),
            argv[0], g->path);
    return CLI_USAGE;
}
