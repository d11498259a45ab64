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

#include "common.pb-c.h"
#include "rayc_sched.h"

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
