/*
 * fuzz_accept_encoding.c -- libFuzzer target for the gateway's response
 * compression (gw_encoding.c). The input is split at '\n' into
 * Accept-Encoding header lines; properties checked whatever the input:
 *  - the answer does not depend on asking twice;
 *  - a header that names neither gzip nor "*" never gets gzip;
 *  - one more line "gzip;q=0" (a refusal) always gives plain;
 *  - the input, gzip-compressed by gw_gzip, inflates back to itself.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "gw_encoding.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
fz_accept(const char *text, bool refuse)
{
    gw_accept a;
    const char *p = text;

    gw_accept_init(&a);
    for (;;) {
        const char *nl = strchr(p, '\n');
        char line[4097];
        size_t n = nl != NULL ? (size_t)(nl - p) : strlen(p);

        memcpy(line, p, n);
        line[n] = '\0';
        gw_accept_add(&a, line);
        if (nl == NULL)
            break;
        p = nl + 1;
    }
    if (refuse)
        gw_accept_add(&a, "gzip;q=0");
    return gw_accept_gzip(&a);
}

static void
fz_roundtrip(const uint8_t *data, size_t size)
{
    char *gz;
    size_t gz_len;
    uint8_t *back;
    z_stream zs;

    if (gw_gzip(data, size, &gz, &gz_len) != 0)
        return; /* out of memory: the gateway sends the body plain */
    if ((back = malloc(size + 1)) == NULL) {
        free(gz);
        return;
    }
    memset(&zs, 0, sizeof(zs));
    if (inflateInit2(&zs, 15 + 16) != Z_OK)
        abort();
    zs.next_in = (Bytef *)gz;
    zs.avail_in = (uInt)gz_len;
    zs.next_out = back;
    zs.avail_out = (uInt)(size + 1);
    if (inflate(&zs, Z_FINISH) != Z_STREAM_END || zs.total_out != size ||
        zs.avail_in != 0 || memcmp(back, data, size) != 0)
        abort();
    inflateEnd(&zs);
    free(back);
    free(gz);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text;
    bool gzip, names = false;

    if (size > 4096)
        return 0;
    if ((text = malloc(size + 1)) == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    gzip = fz_accept(text, false);
    if (fz_accept(text, false) != gzip || fz_accept(text, true))
        abort();
    for (const char *p = text; *p != '\0' && !names; p++)
        names = strncasecmp(p, "gzip", 4) == 0 || *p == '*';
    if (gzip && !names)
        abort();
    free(text);
    fz_roundtrip(data, size);
    return 0;
}
