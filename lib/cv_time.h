/*
 * cv_time.h -- timestamps. Every timestamp CAVRA writes is RFC 3339 UTC
 * with microseconds and a 'Z': "2026-11-27T05:29:23.123456Z". Internally
 * times are int64 microseconds since the Unix epoch.
 */
#ifndef CV_TIME_H
#define CV_TIME_H

#include <stdint.h>

#define CV_TIME_MAX 32 /* buffer size for cv_time_format */

/* Now, in microseconds since the epoch (CLOCK_REALTIME). */
int64_t cv_now_us(void);

/* Writes "YYYY-MM-DDTHH:MM:SS.ffffffZ" into out (CV_TIME_MAX bytes). */
void cv_time_format(int64_t us, char out[CV_TIME_MAX]);

/*
 * Parses RFC 3339 ("2026-11-27T05:29:23Z", "...23.5+02:00", "...23+00:00",
 * lower-case 't'/'z' accepted, 0..9 fraction digits) into microseconds
 * UTC. Returns 0, or -1 when s is not a valid RFC 3339 date-time
 * (including impossible dates such as 2026-02-30).
 */
int cv_time_parse(const char *s, int64_t *us);

#endif
