/*
 * sched_explain.c: why a request can't run, in one sentence (Ray #18018: a request that
 * can never run should say so, not hang silently).
 *
 * Only the refusal path comes here, so these functions may scan every node and format
 * freely; the decision path never builds strings. The sentence names the first unmet
 * constraint, checked in this order, each over the alive nodes that passed the previous
 * checks:
 *   1. no alive nodes at all;
 *   2. label selectors nobody matches: "no node matches label selector region: in(us,eu)";
 *   3. accelerator type: "no node has 2 x GPU with accelerator_type H100; largest:
 *      1 x H100 on node 3f2a9c01…";
 *   4. one resource nobody has enough of: "no node has 64 CPU; largest: 16 CPU on node
 *      ab12cd34…";
 *   5. GPU memory: "no node has 1 x GPU with at least 80 GiB of memory; largest GPU
 *      memory: 40 GiB on node …";
 *   6. resources that exist separately but never together, naming the closest node.
 * Nodes are named by the first 4 bytes of their ID in hex and an ellipsis.
 *
 * The text lands in the decision's fixed buffer (truncated if long), so the caller frees
 * nothing. Single-threaded like the view.
 */
#include <stdio.h>
#include <string.h>

#include "sched_int.h"

#define ACCEL_PREFIX "accelerator_type:"

char *sched__node_short(const sched_node *n, char *buf, size_t len)
{
    char hex[9];
    rc_id_hex(n->id, 4, hex);
    snprintf(buf, len, "%s\xe2\x80\xa6", hex);
    return buf;
}

static uint32_t gpu_instances_with(const sched_node *n, uint64_t mem)
{
    uint32_t c = 0;
    for (uint32_t i = 0; i < n->n_gpus; i++)
        if (!mem || n->gpu_mem[i] >= mem)
            c++;
    return c;
}

static void fmt_bytes_plain(uint64_t bytes, char *buf, size_t len)
{
    sched__fmt_bytes((double)bytes, buf, len);
}

static int node_matches(const sched_node *n, const sched_request *r, const sched_selector *extra)
{
    return n->usable && (!r->selector || sched_selector_matches(r->selector, n)) &&
           (!extra || sched_selector_matches(extra, n));
}

void sched__explain_node(sched_view *v, const sched_node *n, const sched_request *r, char *buf,
                         size_t len)
{
    if (r->selector && !sched_selector_matches(r->selector, n)) {
        char sel[160];
        snprintf(buf, len, "it doesn't match label selector %s",
                 sched_selector_format(r->selector, sel, sizeof(sel)));
        return;
    }
    for (uint32_t i = 0; i < r->n; i++) {
        uint32_t id = r->id[i];
        sched_amount have = sched_node_total(n, id);
        if (have >= r->amount[i])
            continue;
        char need_s[96], have_s[96];
        sched__fmt_resource(v, id, r->amount[i], need_s, sizeof(need_s));
        if (!have) {
            snprintf(buf, len, "it has no %s, the request needs %s",
                     sched_view_resource_name(v, id), need_s);
        } else {
            sched__fmt_resource(v, id, have, have_s, sizeof(have_s));
            snprintf(buf, len, "it has %s, the request needs %s", have_s, need_s);
        }
        return;
    }
    sched_amount g = sched_request_get(r, SCHED_GPU);
    if (g && r->gpu_memory) {
        uint32_t need = g >= SCHED_UNIT ? (uint32_t)(g / SCHED_UNIT) : 1;
        uint32_t got = gpu_instances_with(n, r->gpu_memory);
        if (got < need) {
            char mem[48];
            fmt_bytes_plain(r->gpu_memory, mem, sizeof(mem));
            snprintf(buf, len, "it has %u GPU(s) with at least %s of memory, the request needs %u",
                     got, mem, need);
            return;
        }
    }
    snprintf(buf, len, "it could hold the request when idle");
}

/* " matching <selectors>" for sentences about a filtered set of nodes, or "". */
static void among_text(const sched_request *r, const sched_selector *extra, char *buf, size_t len)
{
    char a[160] = "", b[160] = "";
    if (r->selector && sched_selector_count(r->selector))
        sched_selector_format(r->selector, a, sizeof(a));
    if (extra && sched_selector_count(extra))
        sched_selector_format(extra, b, sizeof(b));
    if (*a && *b)
        snprintf(buf, len, " matching %s and %s", a, b);
    else if (*a || *b)
        snprintf(buf, len, " matching %s", *a ? a : b);
    else
        buf[0] = '\0';
}

static int explain_labels(sched_view *v, const sched_request *r, const sched_selector *extra,
                          sched_decision *d)
{
    for (uint32_t i = 0; i < v->nodes.n; i++)
        if (node_matches(v->nodes.items[i], r, extra))
            return 0;
    char a[160] = "", b[160] = "";
    if (r->selector)
        sched_selector_format(r->selector, a, sizeof(a));
    if (extra)
        sched_selector_format(extra, b, sizeof(b));
    if (*a && *b)
        sched__why(d, "no node matches label selector %s and label expressions %s", a, b);
    else if (extra)
        sched__why(d, "no node matches label expressions %s", b);
    else
        sched__why(d, "no node matches label selector %s", a);
    return 1;
}

static int explain_accelerator(sched_view *v, const sched_request *r, const sched_selector *extra,
                               const char *among, sched_decision *d)
{
    uint32_t aid = r->accelerator_id;
    if (aid == SCHED_NO_RESOURCE || !sched_request_get(r, aid))
        return 0;
    const char *name = sched_view_resource_name(v, aid);
    const char *type = name && !strncmp(name, ACCEL_PREFIX, strlen(ACCEL_PREFIX))
                           ? name + strlen(ACCEL_PREFIX)
                           : "?";
    sched_amount g = sched_request_get(r, SCHED_GPU);
    uint32_t need = g >= SCHED_UNIT ? (uint32_t)(g / SCHED_UNIT) : 1;
    char gs[48];
    sched_amount_format(g, gs, sizeof(gs));
    const sched_node *best = NULL;
    uint32_t best_count = 0;
    for (uint32_t i = 0; i < v->nodes.n; i++) {
        const sched_node *n = v->nodes.items[i];
        if (!node_matches(n, r, extra) || sched_node_total(n, aid) <= 0)
            continue;
        uint32_t c = gpu_instances_with(n, r->gpu_memory);
        if (!best || c > best_count) {
            best = n;
            best_count = c;
        }
    }
    if (!best) {
        if (g)
            sched__why(d,
                       "no node%s has %s x GPU with accelerator_type %s; no node has that "
                       "accelerator type",
                       among, gs, type);
        else
            sched__why(d, "no node%s has accelerator_type %s", among, type);
        return 1;
    }
    if (g && best_count < need) {
        char who[32];
        sched__why(d,
                   "no node%s has %s x GPU with accelerator_type %s; largest: %u x %s on node %s",
                   among, gs, type, best_count, type, sched__node_short(best, who, sizeof(who)));
        return 1;
    }
    return 0;
}

static int explain_resources(sched_view *v, const sched_request *r, const sched_selector *extra,
                             const char *among, sched_decision *d)
{
    for (uint32_t k = 0; k < r->n; k++) {
        uint32_t id = r->id[k];
        if (id == r->accelerator_id)
            continue;
        const sched_node *best = NULL;
        sched_amount most = 0;
        for (uint32_t i = 0; i < v->nodes.n; i++) {
            const sched_node *n = v->nodes.items[i];
            if (!node_matches(n, r, extra))
                continue;
            sched_amount t = sched_node_total(n, id);
            if (!best || t > most) {
                best = n;
                most = t;
            }
        }
        if (most >= r->amount[k])
            continue;
        char need[96], have[96], who[32];
        sched__fmt_resource(v, id, r->amount[k], need, sizeof(need));
        if (most <= 0) {
            sched__why(d, "no node%s has %s; no node has any %s", among, need,
                       sched_view_resource_name(v, id));
        } else {
            sched__fmt_resource(v, id, most, have, sizeof(have));
            sched__why(d, "no node%s has %s; largest: %s on node %s", among, need, have,
                       sched__node_short(best, who, sizeof(who)));
        }
        return 1;
    }
    return 0;
}

static int explain_gpu_memory(sched_view *v, const sched_request *r, const sched_selector *extra,
                              const char *among, sched_decision *d)
{
    sched_amount g = sched_request_get(r, SCHED_GPU);
    if (!g || !r->gpu_memory)
        return 0;
    uint32_t need = g >= SCHED_UNIT ? (uint32_t)(g / SCHED_UNIT) : 1;
    const sched_node *best = NULL, *biggest = NULL;
    uint32_t best_count = 0;
    uint64_t biggest_mem = 0;
    for (uint32_t i = 0; i < v->nodes.n; i++) {
        const sched_node *n = v->nodes.items[i];
        if (!node_matches(n, r, extra))
            continue;
        uint32_t c = gpu_instances_with(n, r->gpu_memory);
        if (c > best_count) {
            best = n;
            best_count = c;
        }
        for (uint32_t j = 0; j < n->n_gpus; j++) {
            if (n->gpu_mem[j] > biggest_mem) {
                biggest_mem = n->gpu_mem[j];
                biggest = n;
            }
        }
    }
    if (best_count >= need)
        return 0;
    char mem[48], big[48], who[32];
    fmt_bytes_plain(r->gpu_memory, mem, sizeof(mem));
    if (best_count) {
        sched__why(d,
                   "no node%s has %u x GPU with at least %s of memory; largest: %u such GPUs "
                   "on node %s",
                   among, need, mem, best_count, sched__node_short(best, who, sizeof(who)));
    } else if (biggest) {
        fmt_bytes_plain(biggest_mem, big, sizeof(big));
        sched__why(d,
                   "no node%s has %u x GPU with at least %s of memory; largest GPU memory: %s "
                   "on node %s",
                   among, need, mem, big, sched__node_short(biggest, who, sizeof(who)));
    } else {
        sched__why(d,
                   "no node%s has %u x GPU with at least %s of memory; no node reports its "
                   "GPU memory",
                   among, need, mem);
    }
    return 1;
}

/* Each resource exists somewhere but never all on one node: name the closest node. */
static void explain_combination(sched_view *v, const sched_request *r, const sched_selector *extra,
                                const char *among, sched_decision *d)
{
    const sched_node *closest = NULL;
    uint32_t closest_unmet = UINT32_MAX;
    for (uint32_t i = 0; i < v->nodes.n; i++) {
        const sched_node *n = v->nodes.items[i];
        if (!node_matches(n, r, extra))
            continue;
        uint32_t unmet = 0;
        for (uint32_t k = 0; k < r->n; k++)
            if (sched_node_total(n, r->id[k]) < r->amount[k])
                unmet++;
        if (unmet < closest_unmet) {
            closest = n;
            closest_unmet = unmet;
        }
    }
    char req[160], because[SCHED_WHY_MAX], who[32];
    sched__fmt_request(v, r, req, sizeof(req));
    if (!closest) {
        sched__why(d, "no node%s can hold %s", among, req);
        return;
    }
    sched__explain_node(v, closest, r, because, sizeof(because));
    sched__why(d, "no single node%s has all of %s; closest: node %s, where %s", among, req,
               sched__node_short(closest, who, sizeof(who)), because);
}

sched_status sched__explain_never(sched_view *v, const sched_request *r,
                                  const sched_selector *extra, sched_decision *d)
{
    d->status = SCHED_NEVER;
    d->node = NULL;
    if (!v->n_usable) {
        if (v->nodes.n)
            sched__why(d, "no alive node in the cluster view (%u known, all dead or draining)",
                       v->nodes.n);
        else
            sched__why(d, "the cluster view has no nodes");
        return SCHED_NEVER;
    }
    if (explain_labels(v, r, extra, d))
        return SCHED_NEVER;
    char among[200];
    among_text(r, extra, among, sizeof(among));
    if (explain_accelerator(v, r, extra, among, d) || explain_resources(v, r, extra, among, d) ||
        explain_gpu_memory(v, r, extra, among, d))
        return SCHED_NEVER;
    explain_combination(v, r, extra, among, d);
    return SCHED_NEVER;
}

sched_status sched__refuse_never(sched_view *v, const sched_request *r, const sched_options *o,
                                 const sched_selector *extra, sched_decision *d)
{
    const sched_node *local = o->preferred_node;
    if (o->avoid_local_node && local && node_matches(local, r, extra) &&
        sched__node_fits(local, r, 0)) {
        char who[32];
        d->status = SCHED_NOT_NOW;
        d->node = NULL;
        sched__why(d, "no node other than the local node %s can hold this (avoid_local_node)",
                   sched__node_short(local, who, sizeof(who)));
        return SCHED_NOT_NOW;
    }
    return sched__explain_never(v, r, extra, d);
}

sched_status sched__explain_not_now(sched_view *v, const sched_request *r, sched_node *node,
                                    uint32_t feasible, sched_decision *d)
{
    char req[160], who[32];
    sched__fmt_request(v, r, req, sizeof(req));
    d->status = SCHED_NOT_NOW;
    d->node = node;
    if (node)
        sched__why(d, "no node has %s free now (%u feasible node%s busy); queue on node %s", req,
                   feasible, feasible == 1 ? "" : "s", sched__node_short(node, who, sizeof(who)));
    else
        sched__why(d, "no node has %s free now (%u feasible node%s busy)", req, feasible,
                   feasible == 1 ? "" : "s");
    return SCHED_NOT_NOW;
}
