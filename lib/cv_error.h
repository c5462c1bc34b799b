/*
 * cv_error.h -- the one error type of CAVRA.
 *
 * A status code (the gRPC code numbers, the same ones that cross the wire
 * in RpcReply.code) plus a bounded, human-readable message. The message is
 * what a REST client reads as `detail`, so it must never contain secrets,
 * SQL, or raw request text that was redacted.
 */
#ifndef CV_ERROR_H
#define CV_ERROR_H

#include <stdarg.h>

enum cv_code {
    CV_OK = 0,
    CV_CANCELLED = 1,
    CV_UNKNOWN = 2,
    CV_INVALID_ARGUMENT = 3,
    CV_DEADLINE_EXCEEDED = 4,
    CV_NOT_FOUND = 5,
    CV_ALREADY_EXISTS = 6,
    CV_PERMISSION_DENIED = 7,
    CV_RESOURCE_EXHAUSTED = 8,
    CV_FAILED_PRECONDITION = 9,
    CV_ABORTED = 10,
    CV_OUT_OF_RANGE = 11,
    CV_UNIMPLEMENTED = 12,
    CV_INTERNAL = 13,
    CV_UNAVAILABLE = 14,
    CV_DATA_LOSS = 15,
    CV_UNAUTHENTICATED = 16,
};

#define CV_ERROR_MSG_MAX   512
#define CV_ERROR_CAUSE_MAX 256

/* msg is for clients; cause is the internal reason (statement name,
 * SQLSTATE, libpq's primary message) that only reaches the service log. */
typedef struct cv_error {
    int code;
    char msg[CV_ERROR_MSG_MAX];
    char cause[CV_ERROR_CAUSE_MAX];
} cv_error;

/* Resets err to OK with an empty message. NULL-tolerant. */
void cv_error_clear(cv_error *err);

/*
 * Sets code and a printf-style message; returns code so callers can write
 * `return cv_error_set(err, CV_NOT_FOUND, "...")`. NULL-tolerant: with
 * err == NULL only the code is returned. The message is truncated to fit.
 */
int cv_error_set(cv_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int cv_error_vset(cv_error *err, int code, const char *fmt, va_list ap);

/* Sets the internal cause (printf-style) and leaves code and msg alone.
 * NULL-tolerant. */
void cv_error_cause(cv_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* "INVALID_ARGUMENT" etc.; "UNKNOWN" for numbers outside the table. */
const char *cv_code_name(int code);

/* The gateway's one code -> HTTP status table (docs/api.md). */
int cv_code_http_status(int code);

#endif
