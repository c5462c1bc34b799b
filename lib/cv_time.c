/*
 * cv_time.c -- RFC 3339 timestamps <-> int64 microseconds since the epoch.
 *
 * Formatting always produces UTC with six fraction digits and a 'Z' (the
 * one form CAVRA writes, docs/api.md). Parsing accepts any RFC 3339
 * date-time with a numeric offset or 'Z' and folds it to UTC. The calendar
 * arithmetic is Howard Hinnant's days-from-civil algorithm, so neither
 * direction depends on the process time zone, timegm() or the range of
 * time_t.
 */
#include "cv_time.h"

#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#define CV_TIME_US_PER_SEC INT64_C(1000000)
#define CV_TIME_US_PER_DAY (INT64_C(86400) * CV_TIME_US_PER_SEC)

/* Days since 1970-01-01 of the proleptic Gregorian date y-m-d. */
static int64_t
cv_time_days_from_civil(int64_t y, int m, int d)
{
    int64_t era;
    int64_t yoe;
    int64_t doy;
    int64_t doe;

    /* Count years from March so the leap day is the last day of a year. */
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The inverse of cv_time_days_from_civil. */
static void
cv_time_civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    int64_t era;
    int64_t doe;
    int64_t yoe;
    int64_t doy;
    int64_t mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static bool
cv_time_is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
cv_time_days_in_month(int64_t y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30,
                                 31, 31, 30, 31, 30, 31};

    if (m == 2 && cv_time_is_leap(y))
        return 29;
    return days[m - 1];
}

/*
 * Reads exactly n decimal digits at *p into *v and advances *p. Returns
 * false (without advancing) when fewer than n digits are there.
 */
static bool
cv_time_digits(const char **p, int n, int *v)
{
    int acc = 0;

    for (int i = 0; i < n; i++) {
        char c = (*p)[i];

        if (c < '0' || c > '9')
            return false;
        acc = acc * 10 + (c - '0');
    }
    *v = acc;
    *p += n;
    return true;
}

int64_t
cv_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * CV_TIME_US_PER_SEC + ts.tv_nsec / 1000;
}

void
cv_time_format(int64_t us, char out[CV_TIME_MAX])
{
    int64_t days;
    int64_t rem;
    int64_t y;
    int m;
    int d;
    int yr;
    int secs;
    int n;

    /* Floor division: times before 1970 still get a positive remainder. */
    days = us / CV_TIME_US_PER_DAY;
    rem = us % CV_TIME_US_PER_DAY;
    if (rem < 0) {
        rem += CV_TIME_US_PER_DAY;
        days--;
    }
    cv_time_civil_from_days(days, &y, &m, &d);
    secs = (int)(rem / CV_TIME_US_PER_SEC);
    /*
     * int64 microseconds span years -290308..294247, so the text always
     * fits; the clamp and the check only let the compiler see that too.
     */
    yr = y < -999999 ? -999999 : y > 999999 ? 999999 : (int)y;
    n = snprintf(out, CV_TIME_MAX, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", yr, m,
                 d, secs / 3600, secs / 60 % 60, secs % 60,
                 (int)(rem % CV_TIME_US_PER_SEC));
    if (n < 0)
        out[0] = '\0';
}

int
cv_time_parse(const char *s, int64_t *us)
{
    const char *p = s;
    int year, mon, mday, hour, min, sec;
    int frac = 0;
    int off = 0; /* offset east of UTC, in minutes */
    int sign = 0;
    int oh = 0;
    int om = 0;
    int ndigit = 0;
    int64_t t;

    if (s == NULL || us == NULL)
        return -1;
    if (!cv_time_digits(&p, 4, &year) || *p++ != '-' ||
        !cv_time_digits(&p, 2, &mon) || *p++ != '-' ||
        !cv_time_digits(&p, 2, &mday))
        return -1;
    if (*p != 'T' && *p != 't')
        return -1;
    p++;
    if (!cv_time_digits(&p, 2, &hour) || *p++ != ':' ||
        !cv_time_digits(&p, 2, &min) || *p++ != ':' ||
        !cv_time_digits(&p, 2, &sec))
        return -1;

    if (*p == '.') {
        p++;
        /* Keep the first six digits; the rest only need to be digits. */
        while (*p >= '0' && *p <= '9') {
            if (ndigit == 9)
                return -1; /* a tenth digit: stop before counting on */
            if (ndigit < 6)
                frac = frac * 10 + (*p - '0');
            ndigit++;
            p++;
        }
        if (ndigit == 0)
            return -1;
        for (int i = ndigit; i < 6; i++)
            frac *= 10;
    }

    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p++ == '-' ? -1 : 1;
        if (!cv_time_digits(&p, 2, &oh) || *p++ != ':' ||
            !cv_time_digits(&p, 2, &om))
            return -1;
        if (oh > 23 || om > 59)
            return -1;
        off = sign * (oh * 60 + om);
    } else {
        return -1;
    }
    if (*p != '\0')
        return -1;

    /* A leap second (:60) cannot be represented in Unix time: reject it. */
    if (mon < 1 || mon > 12 || mday < 1 ||
        mday > cv_time_days_in_month(year, mon) || hour > 23 || min > 59 ||
        sec > 59)
        return -1;

    t = cv_time_days_from_civil(year, mon, mday) * 86400 + hour * 3600 +
        min * 60 + sec - (int64_t)off * 60;
    *us = t * CV_TIME_US_PER_SEC + frac;
    return 0;
}
