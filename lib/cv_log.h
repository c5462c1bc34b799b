/*
 * cv_log.h -- one logging call with a level and a stable message id.
 *
 *     CV_LOG(CV_LOG_WARN, "ACK-DB-CONN", "cannot connect: %s", why);
 *
 * The macro checks the level before evaluating the arguments. Lines go to
 * stderr as "<time> <level> <program> <id> <message>". Only programs log;
 * the shared library fills a cv_error instead. Never log request bodies,
 * SQL parameters or credentials.
 *
 * Structured lines (one request, one failed RPC) use cv_log_json: one JSON
 * object per line, for log shippers:
 *
 *     if (CV_LOG_ENABLED(CV_LOG_INFO))
 *         cv_log_json(CV_LOG_INFO, "GW-REQUEST", json_pack(...));
 */
#ifndef CV_LOG_H
#define CV_LOG_H

enum cv_log_level {
    CV_LOG_DEBUG = 0,
    CV_LOG_INFO = 1,
    CV_LOG_WARN = 2,
    CV_LOG_ERROR = 3,
};

extern int cv_log_min_level;

/* Sets the program name shown on each line and reads CAVRA_LOG_LEVEL
 * (debug|info|warn|error). */
void cv_log_init(const char *program);

/* The program name given to cv_log_init ("cavra" before it). */
const char *cv_log_program_name(void);

void cv_log_write(int level, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* True when a line of this level would be written. */
#define CV_LOG_ENABLED(level) ((level) >= cv_log_min_level)

/* Writes `fields` (a jansson object; the reference is stolen, NULL is
 * ignored) as one JSON line to stderr, preceded by the keys "time" (UTC,
 * milliseconds), "level", "program" and "id". The caller checks the level
 * first (CV_LOG_ENABLED) so that building the object costs nothing when
 * the line is filtered; cv_log_json checks it again. Keys of `fields`
 * named like the leading ones are ignored. */
struct json_t;
void cv_log_json(int level, const char *id, struct json_t *fields);

#define CV_LOG(level, id, ...)                                                 \
    do {                                                                       \
        if ((level) >= cv_log_min_level)                                       \
            cv_log_write((level), (id), __VA_ARGS__);                          \
    } while (0)

#endif
