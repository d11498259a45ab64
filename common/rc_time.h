/*
 * Clocks. Monotonic time for timeouts and intervals; wall time only for records people read
 * (start_time_ms, log lines). Any thread.
 */
#ifndef RAYC_COMMON_RC_TIME_H
#define RAYC_COMMON_RC_TIME_H

#include <stdint.h>

int64_t rc_mono_ns(void);
int64_t rc_mono_ms(void);
/* Milliseconds since the Unix epoch. */
int64_t rc_wall_ms(void);
/* Sleeps ms milliseconds (restarting after signals). */
void rc_sleep_ms(int64_t ms);

#endif
