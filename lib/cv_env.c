/*
 * cv_env.c -- settings from the environment (see cv_env.h).
 */
#include "cv_env.h"

#include <errno.h>
#include <stdlib.h>

int
cv_env_long(const char *name, long min, long max, long fallback, long *out)
{
    const char *v = getenv(name);
    char *end;
    long n;

    *out = fallback;
    if (v == NULL || v[0] == '\0')
        return 0;
    errno = 0;
    n = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || n < min || n > max)
        return -1;
    *out = n;
    return 0;
}
