/*
 * env_test.c -- cv_env_long: unset means the fallback, a value in range
 * is taken, anything else is refused with the fallback in place.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "cv_env.h"

#define ENV_NAME "CAVRA_UNIT_ENV_TEST"

static void
test_env_long_rules(void **state)
{
    static const struct {
        const char *value; /* NULL: unset */
        int rv;
        long out;
    } cases[] = {
        {NULL, 0, 7},
        {"", 0, 7},
        {"1", 0, 1},
        {"100", 0, 100},
        {"0", -1, 7},
        {"101", -1, 7},
        {"-5", -1, 7},
        {"12x", -1, 7},
        {"x", -1, 7},
        {" 5", 0, 5},
        {"99999999999999999999", -1, 7},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        long out = -42;

        if (cases[i].value == NULL)
            unsetenv(ENV_NAME);
        else
            setenv(ENV_NAME, cases[i].value, 1);
        assert_int_equal(cv_env_long(ENV_NAME, 1, 100, 7, &out), cases[i].rv);
        assert_int_equal(out, cases[i].out);
    }
    unsetenv(ENV_NAME);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_env_long_rules),
    };

    return cmocka_run_group_tests_name("env", tests, NULL, NULL);
}
