/*
 * cv_error.c -- the error type, code names and the code -> HTTP table.
 */
#include "cv_error.h"

#include <stdio.h>

void
cv_error_clear(cv_error *err)
{
    if (err == NULL)
        return;
    err->code = CV_OK;
    err->msg[0] = '\0';
    err->cause[0] = '\0';
}

void
cv_error_cause(cv_error *err, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(err->cause, sizeof(err->cause), fmt, ap);
    va_end(ap);
}

int
cv_error_vset(cv_error *err, int code, const char *fmt, va_list ap)
{
    if (err == NULL)
        return code;
    err->code = code;
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    err->cause[0] = '\0'; /* a new error: the old cause is stale */
    return code;
}

int
cv_error_set(cv_error *err, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    cv_error_vset(err, code, fmt, ap);
    va_end(ap);
    return code;
}

static const char *const cv_code_names[] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

const char *
cv_code_name(int code)
{
    if (code < 0 || code > CV_UNAUTHENTICATED)
        return "UNKNOWN";
    return cv_code_names[code];
}

int
cv_code_http_status(int code)
{
    switch (code) {
    case CV_OK:
        return 200;
    case CV_INVALID_ARGUMENT:
    case CV_OUT_OF_RANGE:
    case CV_FAILED_PRECONDITION:
        return 400;
    case CV_UNAUTHENTICATED:
        return 401;
    case CV_PERMISSION_DENIED:
        return 403;
    case CV_NOT_FOUND:
        return 404;
    case CV_ALREADY_EXISTS:
    case CV_ABORTED:
        return 409;
    case CV_RESOURCE_EXHAUSTED:
        return 429;
    case CV_CANCELLED:
        return 499;
    case CV_UNIMPLEMENTED:
        return 501;
    case CV_UNAVAILABLE:
        return 503;
    case CV_DEADLINE_EXCEEDED:
        return 504;
    default:
        return 500;
    }
}
