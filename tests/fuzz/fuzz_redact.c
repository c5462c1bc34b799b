/*
 * fuzz_redact.c -- libFuzzer target for cv_redact (docs/api.md).
 *
 * Properties checked on every input:
 *  - idempotent: a second pass changes nothing and counts nothing;
 *  - bounded: the output is never longer than the input plus one marker
 *    (the word REDACTED) per redaction counted;
 *  - a planted secret never survives: one case of the redaction corpus,
 *    picked by the first byte, is put between two lines of fuzz text and
 *    its secret must be gone from the output.
 * Any violation aborts, which the fuzzer reports as a crash.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/redact_corpus.h"
#include "cv_redact.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Redacts text and checks idempotence and the length bound. */
static char *
fuzz_redact_checked(const char *text)
{
    int count = 0;
    int again = 0;
    char *out = cv_redact(text, &count);
    char *out2;

    if (out == NULL)
        abort();
    if (strlen(out) > strlen(text) + 8 * (size_t)count) {
        fprintf(stderr, "output grew: %zu -> %zu with %d redactions\n",
                strlen(text), strlen(out), count);
        abort();
    }
    out2 = cv_redact(out, &again);
    if (out2 == NULL)
        abort();
    if (strcmp(out, out2) != 0 || again != 0) {
        fprintf(stderr, "not idempotent:\n1: %s\n2: %s\n", out, out2);
        abort();
    }
    free(out2);
    return out;
}

/* data[0..size) contains the string needle (memmem is a GNU extension). */
static bool
fuzz_redact_contains(const uint8_t *data, size_t size, const char *needle)
{
    size_t n = strlen(needle);

    for (size_t i = 0; n <= size && i <= size - n; i++) {
        if (memcmp(data + i, needle, n) == 0)
            return true;
    }
    return false;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const redact_case *c;
    size_t half;
    size_t tl;
    char *text;
    char *out;

    if (size > 1 << 16)
        return 0;
    /* cv_redact reads a C string: the input up to its first NUL. */
    if ((text = malloc(size + 1)) == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    free(fuzz_redact_checked(text));
    free(text);

    if (size == 0)
        return 0;
    c = &REDACT_SECRETS[data[0] % REDACT_SECRETS_N];
    data++;
    size--;
    half = size / 2;
    tl = strlen(c->text);
    if ((text = malloc(size + tl + 3)) == NULL)
        return 0;
    /* fuzz \n case \n fuzz, with any NUL in the fuzz text made a space. */
    memcpy(text, data, half);
    text[half] = '\n';
    memcpy(text + half + 1, c->text, tl);
    text[half + 1 + tl] = '\n';
    memcpy(text + half + 2 + tl, data + half, size - half);
    text[size + tl + 2] = '\0';
    for (size_t i = 0; i < size + tl + 2; i++) {
        if (text[i] == '\0')
            text[i] = ' ';
    }
    out = fuzz_redact_checked(text);
    /* Only a secret the fuzz text does not spell out itself counts. */
    if (!fuzz_redact_contains(data, size, c->secret) &&
        strstr(out, c->secret) != NULL) {
        fprintf(stderr, "planted secret survived [%s]:\nin:  %s\nout: %s\n",
                c->family, text, out);
        abort();
    }
    free(out);
    free(text);
    return 0;
}
