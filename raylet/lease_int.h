/*
 * Private structures of the lease manager (lease_manager.c, lease_class.c).
 *
 * A lease_class is a scheduling class: what a LeaseSpec asks of the scheduler (resources,
 * placement resources, task type, strategy, label selector, rayc extras), keyed by a
 * canonical encoding of those fields, so requests that would get the same decision share
 * one class, one FIFO queue and one line of demand. A class lives while leases or backlog
 * entries refer to it (refs).
 *
 * Two requests per class: req decides where the lease goes (an actor creation's
 * required_placement_resources when it has them, else its required_resources), hold is
 * what it takes on the chosen node for its life (required_resources). Ray's default actor
 * is placed where a CPU is free and holds nothing.
 *
 * Loop thread only.
 */
#ifndef RAYC_RAYLET_LEASE_INT_H
#define RAYC_RAYLET_LEASE_INT_H

#include "common.pb-c.h"
#include "lease_manager.h"
#include "rc_buf.h"
#include "rc_list.h"
#include "rayc_sched.h"

typedef struct lease lease;

typedef struct lease_class {
    char *key;
    size_t klen;
    int refs;
    /* What the scheduler gets: req.selector and opts.label_hard/soft point into this. */
    sched_request req;
    sched_request hold; /* what a granted lease holds (see above) */
    sched_view *view;   /* whose names req and hold hold */
    int hold_bundles;   /* hold names placement-group bundle resources */
    int actor;          /* ACTOR_CREATION_TASK: the worker is dedicated to the actor */
    sched_options opts;
    sched_selector *selector, *label_hard, *label_soft;
    int hard_affinity; /* NODE_AFFINITY with soft = false: NEVER fails at once */
    /* PLACEMENT_GROUP: the group and bundle index (-1: any) the resources were moved to. */
    int has_pg;
    uint8_t pg_id[RC_PG_ID_SIZE];
    int64_t pg_index;
    double cpus;       /* CPUs held (for OMP_NUM_THREADS), bundle CPUs included */
    /* Demand: the shape as the owner asked it, and its label selector (if any). */
    size_t n_shape;
    char **shape_names;
    double *shape_amounts;
    Ray__Rpc__LabelSelector *label_selector; /* owned copy, NULL without constraints */
    /* Queue: QUEUED leases, oldest first. */
    rc_list queue; /* lease.link */
    size_t n_queued;
    int infeasible;        /* the last decision was NEVER */
    int fair_closed;       /* a fair round: its pick had to wait (lease_manager.c) */
    uint64_t never_epoch;  /* view epoch of that decision */
    char why[SCHED_WHY_MAX];
    int64_t backlog;       /* sum of the owners' backlog entries */
    rc_list link; /* lease_manager's list, in creation order */
} lease_class;

/* Parses spec into a new class in *out (freed with lease__class_free), resolving names in
 * v. A placement-group lease's resources not named for its group yet are renamed as Ray's
 * owners do (R -> R_group_<pghex>, and R_group_<i>_<pghex> too for bundle i), and Ray's
 * bundle label (bundle_group_<pghex>, bundle_group_<i>_<pghex>: 0.001) is added, so it is
 * held in its group even when it asks for nothing. Returns 0, RC_EINVAL (malformed: err
 * says which field and why) or RC_ESTATE (a strategy rayc does not serve yet: err says
 * which). */
int lease__class_parse(sched_view *v, const Ray__Rpc__LeaseSpec *spec, lease_class **out, char *err,
                       size_t errlen);
/* The class key of spec (without parsing it fully) into key. Returns 0 or RC_EINVAL with
 * err (a resource amount that is not a number). */
int lease__class_key(const Ray__Rpc__LeaseSpec *spec, rc_buf *key, char *err, size_t errlen);
void lease__class_free(lease_class *c);

#endif
