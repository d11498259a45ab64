/*
 * Ray's application status codes (Ray's StatusCode), as carried in the GcsStatus field of
 * every GCS reply: GCS calls end with gRPC OK and put their own outcome here, as Ray's GCS
 * does. Values are Ray's and must not change. Any thread.
 */
#ifndef RAYC_GCS_GCS_STATUS_H
#define RAYC_GCS_GCS_STATUS_H

#define GCS_STATUS_TABLE(X)          \
    X(OK, 0)                         \
    X(OUT_OF_MEMORY, 1)              \
    X(KEY_ERROR, 2)                  \
    X(TYPE_ERROR, 3)                 \
    X(INVALID, 4)                    \
    X(IO_ERROR, 5)                   \
    X(UNKNOWN_ERROR, 9)              \
    X(NOT_IMPLEMENTED, 10)           \
    X(REDIS_ERROR, 11)               \
    X(TIMED_OUT, 12)                 \
    X(INTERRUPTED, 13)               \
    X(NOT_FOUND, 17)                 \
    X(DISCONNECTED, 18)              \
    X(SCHEDULING_CANCELLED, 19)      \
    X(ALREADY_EXISTS, 20)            \
    X(RPC_ERROR, 30)                 \
    X(OUT_OF_RESOURCE, 31)           \
    X(UNAUTHENTICATED, 33)           \
    X(INVALID_ARGUMENT, 34)          \
    X(PERMISSION_DENIED, 37)

enum gcs_status_code {
#define GCS__STATUS_ENUM(name, value) GCS_STATUS_##name = value,
    GCS_STATUS_TABLE(GCS__STATUS_ENUM)
#undef GCS__STATUS_ENUM
};

/* "NotFound"-style name of a code, or "Unknown". */
const char *gcs_status_name(int code);

/* The version string rayc reports where Ray reports its own (CheckAlive). */
#define GCS_RAY_VERSION "2.53.0"

#endif
