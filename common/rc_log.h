/*
 * Logging. One line per message on stderr: time, level, process tag, source location,
 * text. Daemons have their stderr redirected into the session's log folder by whoever
 * starts them, so there is no log-file logic here. The level comes from RAYC_LOG_LEVEL
 * (debug, info, warning, error; default info). Any thread; a line is written with one
 * write(2), so lines from threads do not interleave.
 */
#ifndef RAYC_COMMON_RC_LOG_H
#define RAYC_COMMON_RC_LOG_H

enum rc_log_level { RC_LOG_DEBUG, RC_LOG_INFO, RC_LOG_WARNING, RC_LOG_ERROR };

/* Sets the tag printed on every line ("gcs", "raylet"); the string must outlive logging. */
void rc_log_set_tag(const char *tag);
void rc_log_set_level(enum rc_log_level level);
int rc_log_enabled(enum rc_log_level level);
void rc_log_write(enum rc_log_level level, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define RC_LOG(level, ...)                                          \
    do {                                                            \
        if (rc_log_enabled(level))                                  \
            rc_log_write(level, __FILE__, __LINE__, __VA_ARGS__);   \
    } while (0)
#define RC_DEBUG(...) RC_LOG(RC_LOG_DEBUG, __VA_ARGS__)
#define RC_INFO(...) RC_LOG(RC_LOG_INFO, __VA_ARGS__)
#define RC_WARN(...) RC_LOG(RC_LOG_WARNING, __VA_ARGS__)
#define RC_ERROR(...) RC_LOG(RC_LOG_ERROR, __VA_ARGS__)

#endif
