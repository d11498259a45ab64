/*
 * Ray's scheduling messages as the scheduler's types (sched_proto.h). Any thread.
 */
#include "sched_proto.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rc_err.h"
#include "rc_ids.h"

static int sched__fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int sched__fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return RC_EINVAL;
}

/* ---- bundle resource names ---- */

enum { SCHED__PG_HEX_LEN = 2 * RC_PG_ID_SIZE };

/* 1 if s[0..n) is 1-10 decimal digits (a bundle index). */
static int sched__digits(const char *s, size_t n)
{
    if (!n || n > 10)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

/* Copies name[0..n) into out->base; 0 or RC_EINVAL when empty or too long. */
static int sched__bundle_base(const char *name, size_t n, sched_bundle_name *out)
{
    if (!n || n >= SCHED_BUNDLE_BASE_MAX)
        return RC_EINVAL;
    memcpy(out->base, name, n);
    out->base[n] = '\0';
    return 0;
}

int sched_bundle_name_parse(const char *name, sched_bundle_name *out)
{
    size_t len = name ? strlen(name) : 0, infix = strlen(SCHED_BUNDLE_INFIX);
    if (len < SCHED__PG_HEX_LEN + infix + 1)
        return RC_EINVAL;
    size_t head = len - SCHED__PG_HEX_LEN; /* where the group's hex starts */
    if (rc_id_from_hex(name + head, out->pg_id, RC_PG_ID_SIZE) < 0)
        return RC_EINVAL;
    /* "R_group_" + hex: any bundle of the group. */
    if (!strncmp(name + head - infix, SCHED_BUNDLE_INFIX, infix)) {
        out->index = -1;
        return sched__bundle_base(name, head - infix, out);
    }
    /* "R_group_<i>_" + hex: bundle i. */
    if (name[head - 1] != '_')
        return RC_EINVAL;
    size_t end = head - 1, start = end;
    while (start > 0 && name[start - 1] >= '0' && name[start - 1] <= '9')
        start--;
    if (!sched__digits(name + start, end - start) || start < infix + 1 ||
        strncmp(name + start - infix, SCHED_BUNDLE_INFIX, infix))
        return RC_EINVAL;
    out->index = strtoll(name + start, NULL, 10);
    if (out->index > INT32_MAX)
        return RC_EINVAL;
    return sched__bundle_base(name, start - infix, out);
}

char *sched_bundle_name_format(const char *base, const uint8_t pg_id[RC_PG_ID_SIZE], int64_t index, char *out,
                               size_t len)
{
    char hex[RC_ID_HEX_MAX];
    rc_id_hex(pg_id, RC_PG_ID_SIZE, hex);
    if (index >= 0)
        snprintf(out, len, "%s" SCHED_BUNDLE_INFIX "%lld_%s", base, (long long)index, hex);
    else
        snprintf(out, len, "%s" SCHED_BUNDLE_INFIX "%s", base, hex);
    return out;
}

int sched_bundle_name_reserved(const char *name)
{
    return name && strstr(name, SCHED_BUNDLE_INFIX) != NULL;
}

int sched_bundle_name_of(const char *name, const char *base)
{
    size_t n = strlen(base);
    return !strncmp(name, base, n) &&
           (name[n] == '\0' || !strncmp(name + n, SCHED_BUNDLE_INFIX, strlen(SCHED_BUNDLE_INFIX)));
}

int sched_proto_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (!n || n > SCHED_PROTO_MAX_NAME)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (ch <= ' ' || ch == 0x7f)
            return 0;
    }
    return 1;
}

int sched_proto_label_selector(const Ray__Rpc__LabelSelector *ls, sched_selector **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!ls || !ls->n_label_constraints)
        return 0;
    sched_selector *s = sched_selector_new();
    for (size_t i = 0; i < ls->n_label_constraints; i++) {
        const Ray__Rpc__LabelSelectorConstraint *k = ls->label_constraints[i];
        sched_label_op op;
        if (k->operator_ == RAY__RPC__LABEL_SELECTOR_OPERATOR__LABEL_OPERATOR_IN) {
            op = SCHED_LABEL_IN;
        } else if (k->operator_ == RAY__RPC__LABEL_SELECTOR_OPERATOR__LABEL_OPERATOR_NOT_IN) {
            op = SCHED_LABEL_NOT_IN;
        } else {
            sched_selector_free(s);
            return sched__fail(err, errlen, "label_selector: the constraint on \"%.64s\" has no operator (in or not in)",
                               k->label_key);
        }
        sched_err e;
        if (sched_selector_add_expr(s, k->label_key, op, (const char *const *)k->label_values, k->n_label_values,
                                    &e) < 0) {
            sched_selector_free(s);
            return sched__fail(err, errlen, "label_selector: %s", e.msg);
        }
    }
    *out = s;
    return 0;
}

/* NodeLabelSchedulingStrategy's hard or soft expressions (which: "hard" or "soft") into s. */
static int sched__expressions(sched_selector *s, const Ray__Rpc__LabelMatchExpressions *exprs, const char *which,
                              char *err, size_t errlen)
{
    for (size_t i = 0; exprs && i < exprs->n_expressions; i++) {
        const Ray__Rpc__LabelMatchExpression *x = exprs->expressions[i];
        const Ray__Rpc__LabelOperator *op = x->operator_;
        sched_err e;
        int rc;
        switch (op ? op->label_operator_case : RAY__RPC__LABEL_OPERATOR__LABEL_OPERATOR__NOT_SET) {
        case RAY__RPC__LABEL_OPERATOR__LABEL_OPERATOR_LABEL_IN:
            rc = sched_selector_add_expr(s, x->key, SCHED_LABEL_IN, (const char *const *)op->label_in->values,
                                         op->label_in->n_values, &e);
            break;
        case RAY__RPC__LABEL_OPERATOR__LABEL_OPERATOR_LABEL_NOT_IN:
            rc = sched_selector_add_expr(s, x->key, SCHED_LABEL_NOT_IN, (const char *const *)op->label_not_in->values,
                                         op->label_not_in->n_values, &e);
            break;
        case RAY__RPC__LABEL_OPERATOR__LABEL_OPERATOR_LABEL_EXISTS:
            rc = sched_selector_add_expr(s, x->key, SCHED_LABEL_EXISTS, NULL, 0, &e);
            break;
        case RAY__RPC__LABEL_OPERATOR__LABEL_OPERATOR_LABEL_DOES_NOT_EXIST:
            rc = sched_selector_add_expr(s, x->key, SCHED_LABEL_DOES_NOT_EXIST, NULL, 0, &e);
            break;
        default:
            return sched__fail(err, errlen, "node_label_scheduling_strategy.%s: expression on \"%.64s\" has no operator",
                               which, x->key);
        }
        if (rc < 0)
            return sched__fail(err, errlen, "node_label_scheduling_strategy.%s: %s", which, e.msg);
    }
    return 0;
}

int sched_proto_strategy(const Ray__Rpc__SchedulingStrategy *st, sched_options *opts, sched_selector **hard,
                         sched_selector **soft, char *err, size_t errlen)
{
    switch (st ? st->scheduling_strategy_case : RAY__RPC__SCHEDULING_STRATEGY__SCHEDULING_STRATEGY__NOT_SET) {
    case RAY__RPC__SCHEDULING_STRATEGY__SCHEDULING_STRATEGY__NOT_SET:
    case RAY__RPC__SCHEDULING_STRATEGY__SCHEDULING_STRATEGY_DEFAULT_SCHEDULING_STRATEGY:
    case RAY__RPC__SCHEDULING_STRATEGY__SCHEDULING_STRATEGY_PLACEMENT_GROUP_SCHEDULING_STRATEGY:
        return 0;
    case RAY__RPC__SCHEDULING_STRATEGY__SCHEDULING_STRATEGY_SPREAD_SCHEDULING_STRATEGY:
        opts->strategy = SCHED_STRATEGY_SPREAD;
        return 0;
    case RAY__RPC__SCHEDULING_STRATEGY__SCHEDULING_STRATEGY_NODE_AFFINITY_SCHEDULING_STRATEGY: {
        const Ray__Rpc__NodeAffinitySchedulingStrategy *a = st->node_affinity_scheduling_strategy;
        if (a->node_id.len != RC_NODE_ID_SIZE)
            return sched__fail(err, errlen,
                               "node_affinity_scheduling_strategy.node_id holds %zu bytes; a node ID has %d",
                               a->node_id.len, RC_NODE_ID_SIZE);
        opts->strategy = SCHED_STRATEGY_NODE_AFFINITY;
        memcpy(opts->affinity_node, a->node_id.data, RC_NODE_ID_SIZE);
        opts->affinity_soft = a->soft;
        opts->spill_on_unavailable = a->spill_on_unavailable;
        opts->fail_on_unavailable = a->fail_on_unavailable;
        return 0;
    }
    case RAY__RPC__SCHEDULING_STRATEGY__SCHEDULING_STRATEGY_NODE_LABEL_SCHEDULING_STRATEGY: {
        const Ray__Rpc__NodeLabelSchedulingStrategy *l = st->node_label_scheduling_strategy;
        opts->strategy = SCHED_STRATEGY_NODE_LABEL;
        *hard = sched_selector_new();
        *soft = sched_selector_new();
        opts->label_hard = *hard;
        opts->label_soft = *soft;
        int rc = sched__expressions(*hard, l->hard, "hard", err, errlen);
        return rc ? rc : sched__expressions(*soft, l->soft, "soft", err, errlen);
    }
    default:
        return sched__fail(err, errlen, "scheduling_strategy: unknown strategy %d", (int)st->scheduling_strategy_case);
    }
}
