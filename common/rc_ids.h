/*
 * Ray's identifier sizes and their text form.
 *
 * IDs are plain byte arrays of Ray's sizes (ARCHITECTURE §11), printed as lowercase hex.
 * Random IDs come from getrandom(2). Any thread.
 */
#ifndef RAYC_COMMON_RC_IDS_H
#define RAYC_COMMON_RC_IDS_H

#include <stddef.h>
#include <stdint.h>

enum {
    RC_JOB_ID_SIZE = 4,
    RC_ACTOR_ID_SIZE = 16,
    RC_TASK_ID_SIZE = 24,
    RC_OBJECT_ID_SIZE = 28,
    RC_NODE_ID_SIZE = 28,
    RC_WORKER_ID_SIZE = 28,
    RC_CLUSTER_ID_SIZE = 28,
    RC_PG_ID_SIZE = 18,
    RC_UNIQUE_ID_SIZE = 28,
    RC_ID_MAX_SIZE = 28,
    RC_ID_HEX_MAX = 2 * RC_ID_MAX_SIZE + 1,
};

/* Fills out with n random bytes. */
void rc_id_random(void *out, size_t n);
/* Writes 2n hex digits and a NUL into hex (at least 2n+1 bytes). Returns hex. */
char *rc_id_hex(const void *id, size_t n, char *hex);
/* Parses exactly 2n hex digits from hex into out. Returns 0 or RC_EINVAL. */
int rc_id_from_hex(const char *hex, void *out, size_t n);
/* 1 if all n bytes are zero (Ray's Nil for most IDs is all 0xff; rayc never writes Nil IDs
 * on the wire and treats an empty bytes field as "no ID"). */
int rc_id_is_zero(const void *id, size_t n);

#endif
