/*
 * rc_strerror / rc_errname and the public rayc_strerror / rayc_err_name: the views of the
 * one error table (include/rayc_errno.h). Any thread.
 */
#include "rc_err.h"

const char *rc_strerror(int rc)
{
    switch (rc) {
    case RC_OK:
        return "success";
#define RC__ERR_STR(name, msg) \
    case RC_##name:            \
        return msg;
        RC_ERR_TABLE(RC__ERR_STR)
#undef RC__ERR_STR
    }
    return "unknown error";
}

const char *rc_errname(int rc)
{
    switch (rc) {
    case RC_OK:
        return "RC_OK";
#define RC__ERR_NAME(name, msg) \
    case RC_##name:             \
        return "RC_" #name;
        RC_ERR_TABLE(RC__ERR_NAME)
#undef RC__ERR_NAME
    }
    return "RC_UNKNOWN";
}

const char *rayc_strerror(int rc)
{
    return rc_strerror(rc);
}

const char *rayc_err_name(int rc)
{
    switch (rc) {
    case RC_OK:
        return "RAYC_OK";
#define RC__ERR_PUBLIC_NAME(name, msg) \
    case RAYC_##name:                  \
        return "RAYC_" #name;
        RC_ERR_TABLE(RC__ERR_PUBLIC_NAME)
#undef RC__ERR_PUBLIC_NAME
    }
    return "RAYC_UNKNOWN";
}
