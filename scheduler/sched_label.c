/*
 * sched_label.c: label selectors, Ray's two forms in one structure.
 *
 * Ray's label_selector is a dict of key -> value expression: "v" (equals), "!v" (not
 * equals), "in(a,b)" and "!in(a,b)". NodeLabelSchedulingStrategy carries expressions with
 * operators In, NotIn, Exists and DoesNotExist. Both become a conjunction of constraints
 * {key, op, values}. As in Ray, NotIn also matches a node that lacks the key, and In never
 * does. The text form "key: expr, key: expr" reads the dict form (commas inside in(...)
 * belong to the list) plus "exists()" / "!exists()" for the other two operators, so every
 * selector can be printed in explanations and read back.
 *
 * Keys and values follow Ray's rules, which are Kubernetes': a key is an optional DNS
 * subdomain prefix and '/', then a name of at most 63 characters that starts and ends with
 * a letter or digit and has only letters, digits, '-', '_' and '.' between; values follow
 * the name rule. Messages quote the offending key or value.
 *
 * Selectors are immutable once built and may be shared by many requests; nodes keep labels
 * sorted by key so a lookup is a binary search. Single-threaded like the view.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rc_alloc.h"
#include "rc_err.h"
#include "sched_int.h"

typedef struct sched__constraint {
    char *key;
    sched_label_op op;
    uint32_t n_values;
    char **values;
} sched__constraint;

struct sched_selector {
    uint32_t n;
    uint32_t cap;
    sched__constraint *c;
};

static void set_err(sched_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_err(sched_err *err, const char *fmt, ...)
{
    if (!err)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

sched_selector *sched_selector_new(void)
{
    return RC_NEW(sched_selector);
}

static void constraint_free(sched__constraint *c)
{
    rc_free(c->key);
    for (uint32_t j = 0; j < c->n_values; j++)
        rc_free(c->values[j]);
    rc_free(c->values);
}

void sched_selector_free(sched_selector *s)
{
    if (!s)
        return;
    for (uint32_t i = 0; i < s->n; i++)
        constraint_free(&s->c[i]);
    rc_free(s->c);
    rc_free(s);
}

size_t sched_selector_count(const sched_selector *s)
{
    return s ? s->n : 0;
}

int sched_selector_constraint(const sched_selector *s, size_t i, const char **key, sched_label_op *op,
                              const char *const **values, size_t *n_values)
{
    if (!s || i >= s->n)
        return RC_ERANGE;
    const sched__constraint *c = &s->c[i];
    *key = c->key;
    *op = c->op;
    *values = (const char *const *)c->values;
    *n_values = c->n_values;
    return 0;
}

static int is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* The Kubernetes "name" rule used for key names and values. */
static int name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 63 || !is_alnum(s[0]) || !is_alnum(s[n - 1]))
        return 0;
    for (size_t i = 1; i + 1 < n; i++)
        if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return 0;
    return 1;
}

/* A DNS subdomain: dot-separated labels of lowercase letters, digits and '-'. */
static int prefix_ok(const char *s, size_t n)
{
    if (n == 0 || n > 253)
        return 0;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != '.') {
            char c = s[i];
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
                return 0;
            continue;
        }
        size_t len = i - start;
        if (len == 0 || len > 63 || s[start] == '-' || s[i - 1] == '-')
            return 0;
        start = i + 1;
    }
    return 1;
}

int sched__label_key_check(const char *key, sched_err *err)
{
    if (!key || !*key) {
        set_err(err, "label key must not be empty");
        return RC_EINVAL;
    }
    const char *slash = strchr(key, '/');
    const char *name = key;
    if (slash) {
        if (!prefix_ok(key, (size_t)(slash - key))) {
            set_err(err,
                    "invalid label key '%s': the prefix before '/' must be a DNS subdomain "
                    "(lowercase letters, digits, '-' and '.', at most 253 characters)",
                    key);
            return RC_EINVAL;
        }
        name = slash + 1;
    }
    if (!name_ok(name, strlen(name))) {
        set_err(err,
                "invalid label key '%s': the name must be 63 characters or less, begin and end "
                "with a letter or digit, and contain only '-', '_', '.', letters and digits",
                key);
        return RC_EINVAL;
    }
    return 0;
}

int sched__label_value_check(const char *key, const char *value, sched_err *err)
{
    size_t n = strlen(value);
    if (n == 0) /* Kubernetes allows empty label values on nodes. */
        return 0;
    if (!name_ok(value, n)) {
        set_err(err,
                "invalid value '%s' for label '%s': values must be 63 characters or less, begin "
                "and end with a letter or digit, and contain only '-', '_', '.', letters and "
                "digits",
                value, key);
        return RC_EINVAL;
    }
    return 0;
}

static sched__constraint *push_constraint(sched_selector *s, const char *key, sched_label_op op)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 4;
        s->c = rc_realloc(s->c, s->cap * sizeof(*s->c));
    }
    sched__constraint *c = &s->c[s->n++];
    c->key = rc_strdup(key);
    c->op = op;
    c->n_values = 0;
    c->values = NULL;
    return c;
}

int sched_selector_add_expr(sched_selector *s, const char *key, sched_label_op op,
                            const char *const *values, size_t n_values, sched_err *err)
{
    int rc = sched__label_key_check(key, err);
    if (rc)
        return rc;
    switch (op) {
    case SCHED_LABEL_IN:
    case SCHED_LABEL_NOT_IN:
        if (n_values == 0) {
            set_err(err, "label expression on '%s': %s needs at least one value", key,
                    op == SCHED_LABEL_IN ? "In" : "NotIn");
            return RC_EINVAL;
        }
        break;
    case SCHED_LABEL_EXISTS:
    case SCHED_LABEL_DOES_NOT_EXIST:
        if (n_values) {
            set_err(err, "label expression on '%s': %s takes no values", key,
                    op == SCHED_LABEL_EXISTS ? "Exists" : "DoesNotExist");
            return RC_EINVAL;
        }
        break;
    default:
        set_err(err, "label expression on '%s': unknown operator %d", key, (int)op);
        return RC_EINVAL;
    }
    for (size_t i = 0; i < n_values; i++) {
        if (!values[i] || !*values[i]) {
            set_err(err, "label expression on '%s': values must not be empty", key);
            return RC_EINVAL;
        }
        if ((rc = sched__label_value_check(key, values[i], err)))
            return rc;
    }
    sched__constraint *c = push_constraint(s, key, op);
    c->n_values = (uint32_t)n_values;
    c->values = n_values ? rc_malloc(n_values * sizeof(char *)) : NULL;
    for (size_t i = 0; i < n_values; i++)
        c->values[i] = rc_strdup(values[i]);
    return 0;
}

/* Trims spaces at both ends of [*b, *e). */
static void trim(const char **b, const char **e)
{
    while (*b < *e && isspace((unsigned char)**b))
        (*b)++;
    while (*e > *b && isspace((unsigned char)(*e)[-1]))
        (*e)--;
}

enum { MAX_LIST = 64 };

/* Parses one value expression [b, e) for key and adds it to s. */
static int add_expr_range(sched_selector *s, const char *key, const char *b, const char *e,
                          sched_err *err)
{
    trim(&b, &e);
    int expr_len = (int)(e - b);
    int neg = 0;
    const char *p = b;
    if (p < e && *p == '!') {
        neg = 1;
        p++;
        while (p < e && isspace((unsigned char)*p))
            p++;
    }
    if (p == e) {
        set_err(err, "label selector '%s': empty value expression '%.*s'", key, expr_len, b);
        return RC_EINVAL;
    }
    size_t rest = (size_t)(e - p);
    int is_in = rest >= 3 && !strncmp(p, "in(", 3);
    int is_exists = rest >= 7 && !strncmp(p, "exists(", 7);
    if (!is_in && !is_exists) {
        if (memchr(p, '(', rest) || memchr(p, ')', rest) || memchr(p, ',', rest)) {
            set_err(err,
                    "label selector '%s': can't parse '%.*s'; use value, !value, in(a,b) or "
                    "!in(a,b)",
                    key, expr_len, b);
            return RC_EINVAL;
        }
        char value[256];
        if (rest >= sizeof(value)) {
            set_err(err, "label selector '%s': value '%.*s' is too long", key, expr_len, b);
            return RC_EINVAL;
        }
        memcpy(value, p, rest);
        value[rest] = '\0';
        const char *vals[1] = {value};
        return sched_selector_add_expr(s, key, neg ? SCHED_LABEL_NOT_IN : SCHED_LABEL_IN, vals, 1,
                                       err);
    }
    if (e[-1] != ')') {
        set_err(err, "label selector '%s': '%.*s' is missing its closing ')'", key, expr_len, b);
        return RC_EINVAL;
    }
    const char *lb = p + (is_in ? 3 : 7), *le = e - 1;
    if (is_exists) {
        trim(&lb, &le);
        if (lb != le) {
            set_err(err, "label selector '%s': exists() takes no values, got '%.*s'", key, expr_len,
                    b);
            return RC_EINVAL;
        }
        return sched_selector_add_expr(
            s, key, neg ? SCHED_LABEL_DOES_NOT_EXIST : SCHED_LABEL_EXISTS, NULL, 0, err);
    }
    /* Split the list at commas; each item is trimmed and must be non-empty. */
    char buf[1024];
    size_t blen = (size_t)(le - lb);
    if (blen >= sizeof(buf)) {
        set_err(err, "label selector '%s': value list '%.*s' is too long", key, expr_len, b);
        return RC_EINVAL;
    }
    memcpy(buf, lb, blen);
    buf[blen] = '\0';
    if (strchr(buf, '(') || strchr(buf, ')')) {
        set_err(err, "label selector '%s': unexpected parenthesis in '%.*s'", key, expr_len, b);
        return RC_EINVAL;
    }
    const char *vals[MAX_LIST];
    size_t nv = 0;
    char *item = buf;
    int empty_list = 1;
    for (const char *q = buf; *q; q++)
        if (!isspace((unsigned char)*q))
            empty_list = 0;
    if (empty_list) {
        set_err(err, "label selector '%s': '%.*s' needs at least one value", key, expr_len, b);
        return RC_EINVAL;
    }
    for (;;) {
        char *comma = strchr(item, ',');
        if (comma)
            *comma = '\0';
        const char *ib = item, *ie = item + strlen(item);
        trim(&ib, &ie);
        if (ib == ie) {
            set_err(err, "label selector '%s': empty value in list '%.*s'", key, expr_len, b);
            return RC_EINVAL;
        }
        if (nv == MAX_LIST) {
            set_err(err, "label selector '%s': more than %d values in '%.*s'", key, MAX_LIST,
                    expr_len, b);
            return RC_EINVAL;
        }
        ((char *)ie)[0] = '\0';
        vals[nv++] = ib;
        if (!comma)
            break;
        item = comma + 1;
    }
    return sched_selector_add_expr(s, key, neg ? SCHED_LABEL_NOT_IN : SCHED_LABEL_IN, vals, nv,
                                   err);
}

int sched_selector_add(sched_selector *s, const char *key, const char *expr, sched_err *err)
{
    if (!expr) {
        set_err(err, "label selector '%s': missing value expression", key ? key : "");
        return RC_EINVAL;
    }
    int rc = sched__label_key_check(key, err);
    if (rc)
        return rc;
    return add_expr_range(s, key, expr, expr + strlen(expr), err);
}

int sched_selector_parse(const char *text, sched_selector **out, sched_err *err)
{
    sched_selector *s = sched_selector_new();
    const char *p = text ? text : "";
    for (;;) {
        /* One entry runs to the next comma outside parentheses. */
        const char *b = p;
        int depth = 0;
        while (*p && (depth > 0 || *p != ',')) {
            if (*p == '(')
                depth++;
            else if (*p == ')' && depth > 0)
                depth--;
            p++;
        }
        const char *e = p;
        trim(&b, &e);
        if (b == e) {
            if (*p || s->n) {
                set_err(err, "label selector '%s': empty entry", text);
                sched_selector_free(s);
                return RC_EINVAL;
            }
        } else {
            const char *colon = memchr(b, ':', (size_t)(e - b));
            if (!colon) {
                set_err(err, "label selector entry '%.*s' needs the form key: value", (int)(e - b),
                        b);
                sched_selector_free(s);
                return RC_EINVAL;
            }
            const char *kb = b, *ke = colon;
            trim(&kb, &ke);
            char key[320];
            if ((size_t)(ke - kb) >= sizeof(key)) {
                set_err(err, "label selector entry '%.*s': key too long", (int)(e - b), b);
                sched_selector_free(s);
                return RC_EINVAL;
            }
            memcpy(key, kb, (size_t)(ke - kb));
            key[ke - kb] = '\0';
            int rc = sched__label_key_check(key, err);
            if (!rc)
                rc = add_expr_range(s, key, colon + 1, e, err);
            if (rc) {
                sched_selector_free(s);
                return rc;
            }
        }
        if (!*p)
            break;
        p++;
    }
    *out = s;
    return 0;
}

char *sched_selector_format(const sched_selector *s, char *buf, size_t len)
{
    size_t used = 0;
    if (len)
        buf[0] = '\0';
    for (uint32_t i = 0; s && i < s->n && used < len; i++) {
        const sched__constraint *c = &s->c[i];
        int neg = c->op == SCHED_LABEL_NOT_IN || c->op == SCHED_LABEL_DOES_NOT_EXIST;
        used += (size_t)snprintf(buf + used, len - used, "%s%s: %s", i ? ", " : "", c->key,
                                 neg ? "!" : "");
        if (used >= len)
            break;
        if (c->op == SCHED_LABEL_EXISTS || c->op == SCHED_LABEL_DOES_NOT_EXIST) {
            used += (size_t)snprintf(buf + used, len - used, "exists()");
        } else if (c->n_values == 1) {
            used += (size_t)snprintf(buf + used, len - used, "%s", c->values[0]);
        } else {
            used += (size_t)snprintf(buf + used, len - used, "in(");
            for (uint32_t j = 0; j < c->n_values && used < len; j++)
                used +=
                    (size_t)snprintf(buf + used, len - used, "%s%s", j ? "," : "", c->values[j]);
            if (used < len)
                used += (size_t)snprintf(buf + used, len - used, ")");
        }
    }
    return buf;
}

const char *sched__node_label(const sched_node *n, const char *key)
{
    uint32_t lo = 0, hi = n->n_labels;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        int c = strcmp(n->labels[mid].key, key);
        if (!c)
            return n->labels[mid].value;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int value_listed(const sched__constraint *c, const char *v)
{
    for (uint32_t j = 0; j < c->n_values; j++)
        if (!strcmp(c->values[j], v))
            return 1;
    return 0;
}

int sched_selector_matches(const sched_selector *s, const sched_node *node)
{
    if (!s)
        return 1;
    for (uint32_t i = 0; i < s->n; i++) {
        const sched__constraint *c = &s->c[i];
        const char *v = sched__node_label(node, c->key);
        int ok;
        switch (c->op) {
        case SCHED_LABEL_IN:
            ok = v && value_listed(c, v);
            break;
        case SCHED_LABEL_NOT_IN:
            ok = !v || !value_listed(c, v);
            break;
        case SCHED_LABEL_EXISTS:
            ok = v != NULL;
            break;
        default:
            ok = v == NULL;
            break;
        }
        if (!ok)
            return 0;
    }
    return 1;
}

int sched__selector_single_in(const sched_selector *s, size_t i, const char **key,
                              const char **value)
{
    if (!s || i >= s->n || s->c[i].op != SCHED_LABEL_IN || s->c[i].n_values != 1)
        return 0;
    *key = s->c[i].key;
    *value = s->c[i].values[0];
    return 1;
}
