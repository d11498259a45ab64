/*
 * Names of Ray's status codes (gcs_status.h). Any thread.
 */
#include "gcs_status.h"

const char *gcs_status_name(int code)
{
    switch (code) {
#define GCS__STATUS_NAME(name, value) \
    case value:                       \
        return #name;
        GCS_STATUS_TABLE(GCS__STATUS_NAME)
#undef GCS__STATUS_NAME
    }
    return "UNKNOWN";
}
