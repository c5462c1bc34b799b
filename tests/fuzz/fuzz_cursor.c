/*
 * fuzz_cursor.c -- libFuzzer target for the evidence stream cursor
 * (report_cursor_decode). Properties: a cursor that decodes names an id
 * > 0 whose own cursor decodes to the same id, anything else is
 * CV_INVALID_ARGUMENT, and every id the fuzzer picks round-trips through
 * encode and decode.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "report_plan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char text[REPORT_CURSOR_MAX * 4];
    char back[REPORT_CURSOR_MAX];
    cv_error err;
    int64_t id = 0;
    uint64_t pick = 0;

    if (size >= sizeof(text))
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    if (report_cursor_decode(text, &id, &err) == 0) {
        int64_t again = 0;

        if (id <= 0)
            abort();
        report_cursor_encode(id, back);
        if (report_cursor_decode(back, &again, &err) != 0 || again != id)
            abort();
    } else if (err.code != CV_INVALID_ARGUMENT) {
        abort();
    }
    for (size_t i = 0; i < size && i < 8; i++)
        pick = pick << 8 | data[i];
    id = (int64_t)(pick & INT64_MAX);
    if (id > 0) {
        int64_t got = 0;

        report_cursor_encode(id, back);
        if (report_cursor_decode(back, &got, &err) != 0 || got != id)
            abort();
    }
    return 0;
}
