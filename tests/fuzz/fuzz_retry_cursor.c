/*
 * fuzz_retry_cursor.c -- libFuzzer target for the retry plan page cursor
 * (retry_cursor_decode, services/retry). Properties: a cursor that decodes
 * names a plan id and a provider whose own cursor is the input, byte for
 * byte; anything else is CV_INVALID_ARGUMENT with both outputs NULL; and
 * the input split at its first newline, taken as a pair, round-trips when
 * it is a pair the decoder accepts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "retry_rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text, *plan = NULL, *prov = NULL, *back;
    const char *nl;
    cv_error err;

    if (size > 4096 || (text = malloc(size + 1)) == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    cv_error_clear(&err);
    if (retry_cursor_decode(text, &plan, &prov, &err) == 0) {
        if (plan == NULL || prov == NULL ||
            (back = retry_cursor_encode(plan, prov)) == NULL)
            abort();
        if (strcmp(back, text) != 0)
            abort();
        free(back);
    } else if (err.code != CV_INVALID_ARGUMENT || plan != NULL ||
               prov != NULL) {
        abort();
    }
    free(plan);
    free(prov);

    /* Encode what the input names, if it is a pair; decode it back. */
    if ((nl = strchr(text, '\n')) != NULL) {
        char *p = strndup(text, (size_t)(nl - text));

        if (p != NULL && (back = retry_cursor_encode(p, nl + 1)) != NULL) {
            plan = prov = NULL;
            if (retry_cursor_decode(back, &plan, &prov, &err) == 0 &&
                (strcmp(plan, p) != 0 || strcmp(prov, nl + 1) != 0))
                abort();
            free(plan);
            free(prov);
            free(back);
        }
        free(p);
    }
    free(text);
    return 0;
}
