/*
 * rayc_errno.h: the error codes rayc's functions return (included by rayc.h).
 *
 * A function that can fail returns 0 or one of the negative RAYC_E* codes below;
 * rayc_strerror() says what a code means and rayc_err_name() names it ("RAYC_ETIMEDOUT").
 * The table is written once (RAYC_ERRNO_TABLE) and expands into the enum here, into
 * rayc_strerror() and into the RC_E* codes rayc's own modules use (common/rc_err.h), which
 * are the same numbers. Codes are stable within a release only; never store them.
 * Any thread may call these.
 */
#ifndef RAYC_ERRNO_H
#define RAYC_ERRNO_H

#define RAYC_ERRNO_TABLE(X)                                              \
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

#ifdef __cplusplus
extern "C" {
#endif

/* Each code is minus its position in the table (RAYC_EINVAL is -1). */
enum {
    RAYC__ERRNO_ORD_FIRST_ = 0,
#define RAYC__ERRNO_ORD(name, msg) RAYC__ERRNO_ORD_##name,
    RAYC_ERRNO_TABLE(RAYC__ERRNO_ORD)
#undef RAYC__ERRNO_ORD
};

enum {
#define RAYC__ERRNO_CODE(name, msg) RAYC_##name = -RAYC__ERRNO_ORD_##name,
    RAYC_ERRNO_TABLE(RAYC__ERRNO_CODE)
#undef RAYC__ERRNO_CODE
};

/* What rc (0 or a RAYC_E* code) means, as a static string. Never NULL. */
const char *rayc_strerror(int rc);

/* The name of rc ("RAYC_ETIMEDOUT"; "RAYC_OK" for 0), as a static string. Never NULL. */
const char *rayc_err_name(int rc);

#ifdef __cplusplus
}
#endif

#endif
