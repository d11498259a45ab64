/*
 * Error codes shared by every rayc module.
 *
 * Functions that can fail return int: 0 on success or one of the negative RC_E* codes
 * below. The table is written once, in the public include/rayc_errno.h (the C API returns
 * the same codes as RAYC_E*), and expands into the enum and into rc_strerror(). Codes are
 * stable within a build only; never put them on the wire.
 * Any thread may call these.
 */
#ifndef RAYC_COMMON_RC_ERR_H
#define RAYC_COMMON_RC_ERR_H

#include "rayc_errno.h" /* the table, public: the API returns these codes */

#define RC_ERR_TABLE(X) RAYC_ERRNO_TABLE(X)

/* RC_EINVAL is RAYC_EINVAL, and so on: one set of numbers under two prefixes. */
enum {
    RC_OK = 0,
#define RC__ERR_ENUM(name, msg) RC_##name = RAYC_##name,
    RC_ERR_TABLE(RC__ERR_ENUM)
#undef RC__ERR_ENUM
};

/* Returns a static string describing rc (0 or a negative RC_E* code). Never NULL. */
const char *rc_strerror(int rc);

/* Returns the symbolic name of rc ("RC_ETIMEDOUT"). Never NULL. */
const char *rc_errname(int rc);

#endif
