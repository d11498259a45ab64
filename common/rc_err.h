/*
 * Error codes shared by every rayc module.
 *
 * Functions that can fail return int: 0 on success or one of the negative RC_E* codes
 * below. The table is written once (RC_ERR_TABLE) and expands into the enum and into
 * rc_strerror(). Codes are stable within a build only; never put them on the wire.
 * Any thread may call these.
 */
#ifndef RAYC_COMMON_RC_ERR_H
#define RAYC_COMMON_RC_ERR_H

#define RC_ERR_TABLE(X)                                                  \
    X(EINVAL, "invalid argument")                                       \
    X(ENOMEM, "out of memory")                                          \
    X(ENOENT, "not found")                                              \
    X(EEXIST, "already exists")                                         \
    X(EIO, "input/output error")                                        \
    X(ETIMEDOUT, "timed out")                                           \
    X(EUNAVAIL, "peer unavailable")                                     \
    X(EPROTO, "protocol error")                                         \
    X(ERANGE, "value out of range")                                     \
    X(ECANCELED, "cancelled")                                           \
    X(EBUSY, "resource busy")                                           \
    X(EINFEASIBLE, "request can never be satisfied")                    \
    X(ESTATE, "operation not valid in the current state")               \
    X(EAUTH, "not authorized")                                          \
    X(ESYS, "system call failed")                                       \
    X(ENOSPC, "no space left")                                          \
    X(ETOOBIG, "too large")                                             \
    X(EPARSE, "malformed input")                                        \
    X(EBUDGET, "over budget")

enum {
    RC_OK = 0,
#define RC__ERR_ORDINAL(name, msg) RC__ORD_##name,
    RC__ORD_FIRST_ = 0,
    RC_ERR_TABLE(RC__ERR_ORDINAL)
#undef RC__ERR_ORDINAL
};

enum {
#define RC__ERR_ENUM(name, msg) RC_##name = -RC__ORD_##name,
    RC_ERR_TABLE(RC__ERR_ENUM)
#undef RC__ERR_ENUM
};

/* Returns a static string describing rc (0 or a negative RC_E* code). Never NULL. */
const char *rc_strerror(int rc);

/* Returns the symbolic name of rc ("RC_ETIMEDOUT"). Never NULL. */
const char *rc_errname(int rc);

#endif
