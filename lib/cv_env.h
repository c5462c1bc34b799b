/*
 * cv_env.h -- settings from the environment, read one way everywhere.
 */
#ifndef CV_ENV_H
#define CV_ENV_H

/*
 * The integer in $name when it lies in [min, max]. Returns 0 with *out
 * set (fallback when the variable is unset or empty), or -1 with *out =
 * fallback when it is set to anything else (a typo must never switch a
 * bound off; the caller decides whether that is fatal or a warning).
 */
int cv_env_long(const char *name, long min, long max, long fallback, long *out);

#endif
