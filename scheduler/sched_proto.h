/*
 * Ray's scheduling messages (proto/common.proto) as the scheduler's types: the one
 * translation the raylet (lease requests) and the GCS (actors and placement groups) share,
 * so both read a SchedulingStrategy or a LabelSelector the same way and refuse the same
 * malformed ones with the same words.
 *
 * Kept apart from rayc_scheduler, which knows nothing of protobuf (library rayc_sched_proto).
 */
#ifndef RAYC_SCHEDULER_SCHED_PROTO_H
#define RAYC_SCHEDULER_SCHED_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "common.pb-c.h"
#include "rayc_sched.h"
#include "rc_ids.h"

/* ---- Placement-group bundle resource names (Ray's) ------------------------------------
 *
 * A committed bundle i of group <pg> gives its node, for each resource R it reserves,
 * "R_group_<i>_<pghex>" (that bundle) and "R_group_<pghex>" (any bundle of the group), plus
 * the label resource "bundle_group_<i>_<pghex>" / "bundle_group_<pghex>". A task or actor
 * scheduled into the group asks for these instead of R. These functions are the one place
 * that builds and reads such names; they are pure and work in any thread. */

#define SCHED_BUNDLE_INFIX "_group_"
/* The base of the label resource each bundle carries, its amount, and what a lease without
 * resources takes from it (Ray's numbers). */
#define SCHED_BUNDLE_LABEL "bundle"
#define SCHED_BUNDLE_LABEL_AMOUNT 1000.0
#define SCHED_BUNDLE_LABEL_REQUEST 0.001

enum { SCHED_BUNDLE_BASE_MAX = 320 };

/* A bundle resource name taken apart. */
typedef struct sched_bundle_name {
    char base[SCHED_BUNDLE_BASE_MAX]; /* R */
    uint8_t pg_id[RC_PG_ID_SIZE];
    int64_t index; /* -1 for R_group_<pghex> */
} sched_bundle_name;

/* Parses "R_group_<i>_<pghex>" or "R_group_<pghex>" into *out. Returns 0, or RC_EINVAL if
 * name is not a bundle resource name. */
int sched_bundle_name_parse(const char *name, sched_bundle_name *out);
/* Writes R_group_<index>_<pghex> (index >= 0) or R_group_<pghex> (index -1) into out
 * (truncated to len). Returns out. */
char *sched_bundle_name_format(const char *base, const uint8_t pg_id[RC_PG_ID_SIZE], int64_t index, char *out,
                               size_t len);
/* 1 if name is in the bundle namespace (holds "_group_"): reserved, never a user's custom
 * resource, and not a node's own resource. */
int sched_bundle_name_reserved(const char *name);
/* 1 if name is base itself or one of base's bundle names (base_group_...). */
int sched_bundle_name_of(const char *name, const char *base);

/* The longest resource name a request may use. */
enum { SCHED_PROTO_MAX_NAME = 256 };

/* 1 if name can name a resource in a request: non-empty printable text without spaces, at
 * most SCHED_PROTO_MAX_NAME bytes (what Ray's options accept). */
int sched_proto_name_ok(const char *name);

/* Ray's label_selector (constraints "in" / "not in") as a new selector in *out; NULL when
 * there is none or it is empty. Returns 0, or RC_EINVAL with err ("label_selector: ...") and
 * nothing in *out. */
int sched_proto_label_selector(const Ray__Rpc__LabelSelector *ls, sched_selector **out, char *err, size_t errlen);

/* Ray's scheduling_strategy into opts: DEFAULT, SPREAD, NODE_AFFINITY (node ID checked) and
 * NODE_LABEL (hard and soft expressions as new selectors in *hard / *soft, which opts points
 * to; the caller frees them, also after an error). A placement-group strategy leaves opts
 * alone: its bundle resources carry the placement. NULL st is DEFAULT. Returns 0 or
 * RC_EINVAL with err. */
int sched_proto_strategy(const Ray__Rpc__SchedulingStrategy *st, sched_options *opts, sched_selector **hard,
                         sched_selector **soft, char *err, size_t errlen);

#endif
