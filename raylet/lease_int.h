/*
 * Private structures of the lease manager (lease_manager.c, lease_class.c).
 *
 * A lease_class is a scheduling class: what a LeaseSpec asks of the scheduler (resources,
 * strategy, label selector, rayc extras), keyed by a canonical encoding of those fields, so
 * requests that would get the same decision share one class, one FIFO queue and one line
 * of demand. A class lives while leases or backlog entries refer to it (refs).
 *
 * Loop thread only.
 */
#ifndef RAYC_RAYLET_LEASE_INT_H
#define RAYC_RAYLET_LEASE_INT_H

#include "common.pb-c.h"
#include "lease_manager.h"
#include "rc_buf.h"
#include "rayc_sched.h"

typedef struct lease lease;

typedef struct lease_class {
    char *key;
    size_t klen;
    int refs;
    /* What the scheduler gets: req.selector and opts.label_hard/soft point into this. */
    sched_request req;
    sched_options opts;
    sched_selector *selector, *label_hard, *label_soft;
    int hard_affinity; /* NODE_AFFINITY with soft = false: NEVER fails at once */
    double cpus;       /* CPUs of the request (for OMP_NUM_THREADS) */
    /* Demand: the shape as the owner asked it, and its label selector (if any). */
    size_t n_shape;
    char **shape_names;
    double *shape_amounts;
    Ray__Rpc__LabelSelector *label_selector; /* owned copy, NULL without constraints */
    /* Queue: QUEUED leases, oldest first. */
    lease *head, *tail;
    size_t n_queued;
    int infeasible;        /* the last decision was NEVER */
    uint64_t never_epoch;  /* view epoch of that decision */
    char why[SCHED_WHY_MAX];
    int64_t backlog;       /* sum of the owners' backlog entries */
    struct lease_class *prev, *next; /* lease_manager's list, in creation order */
} lease_class;

/* Parses spec into a new class in *out (freed with lease__class_free), resolving names in
 * v. Returns 0, RC_EINVAL (malformed: err says which field and why) or RC_ESTATE (a
 * strategy rayc does not serve yet: err says which). */
int lease__class_parse(sched_view *v, const Ray__Rpc__LeaseSpec *spec, lease_class **out, char *err,
                       size_t errlen);
/* The class key of spec (without parsing it fully) into key. Returns 0 or RC_EINVAL with
 * err (a resource amount that is not a number). */
int lease__class_key(const Ray__Rpc__LeaseSpec *spec, rc_buf *key, char *err, size_t errlen);
void lease__class_free(lease_class *c);

#endif
