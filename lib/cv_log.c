/*
 * cv_log.c -- stderr logger behind CV_LOG and cv_log_json.
 */
#include "cv_log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int cv_log_min_level = CV_LOG_INFO;
static const char *cv_log_program = "cavra";

const char *
cv_log_program_name(void)
{
    return cv_log_program;
}

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

static const char *const cv_log_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

static const char *
cv_log_level_name(int level)
{
    return cv_log_names[level < 0 ? 0 : level > 3 ? 3 : level];
}

void
cv_log_json(int level, const char *id, json_t *fields)
{
    static const char *const lower[] = {"debug", "info", "warn", "error"};
    char when[48];
    struct timespec ts;
    struct tm tm;
    const char *key;
    json_t *line, *value;
    char *text;

    if (fields == NULL)
        return;
    if (level < cv_log_min_level || !json_is_object(fields)) {
        json_decref(fields);
        return;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    {
        size_t n = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);

        snprintf(when + n, sizeof(when) - n, ".%03dZ",
                 (int)(ts.tv_nsec / 1000000L % 1000));
    }
    line = json_pack("{s:s, s:s, s:s, s:s}", "time", when, "level",
                     lower[level < 0   ? 0
                           : level > 3 ? 3
                                       : level],
                     "program", cv_log_program, "id", id != NULL ? id : "");
    if (line == NULL) {
        json_decref(fields);
        return;
    }
    json_object_foreach(fields, key, value)
    {
        if (json_object_get(line, key) == NULL)
            json_object_set(line, key, value);
    }
    json_decref(fields);
    /* 9 digits: latencies print as 1.106, not 1.1060000000000001. */
    text = json_dumps(line, JSON_COMPACT | JSON_ENSURE_ASCII |
                                JSON_REAL_PRECISION(9));
    json_decref(line);
    if (text == NULL)
        return;
    /* One fprintf per line keeps lines from different threads whole. */
    fprintf(stderr, "%s\n", text);
    free(text);
}

void
cv_log_write(int level, const char *id, const char *fmt, ...)
{
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
                 cv_log_level_name(level), cv_log_program, id);
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof(line))
        vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    /* One fputs per line keeps lines from different threads whole. */
    fprintf(stderr, "%s\n", line);
}
