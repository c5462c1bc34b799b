/*
 * cv_log.c -- stderr logger behind CV_LOG.
 */
#include "cv_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int cv_log_min_level = CV_LOG_INFO;
static const char *cv_log_program = "cavra";

void
cv_log_init(const char *program)
{
    const char *lvl = getenv("CAVRA_LOG_LEVEL");

    if (program != NULL)
        cv_log_program = program;
    if (lvl == NULL)
        return;
    if (strcmp(lvl, "debug") == 0)
        cv_log_min_level = CV_LOG_DEBUG;
    else if (strcmp(lvl, "warn") == 0)
        cv_log_min_level = CV_LOG_WARN;
    else if (strcmp(lvl, "error") == 0)
        cv_log_min_level = CV_LOG_ERROR;
}

void
cv_log_write(int level, const char *id, const char *fmt, ...)
{
    static const char *names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    char line[1024];
    char when[32];
    struct timespec ts;
    struct tm tm;
    va_list ap;
    int n;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    n = snprintf(line, sizeof(line), "%s %s %s %s ", when,
                 names[level < 0   ? 0
                       : level > 3 ? 3
                                   : level],
                 cv_log_program, id);
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof(line))
        vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    /* One fputs per line keeps lines from different threads whole. */
    fprintf(stderr, "%s\n", line);
}
