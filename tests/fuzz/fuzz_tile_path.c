/*
 * fuzz_tile_path.c -- libFuzzer target for the C2SP tlog-tiles path
 * parser and formatter (lib/cv_merkle.c), which read the path of every
 * GET /runtime/evidence/tile/... request.
 *
 * Properties checked on every input:
 *  - a path cv_tile_path_parse accepts is canonical: formatting what it
 *    parsed gives back exactly the input;
 *  - the reverse: (level, index, width) taken from the input bytes format
 *    into a path that parses back to the same values;
 *  - cv_tile_locate of a node taken from the input bytes is inside one
 *    tile: 0 <= first, count a power of two, first + count <= 256, and
 *    the tile level is node level / 8.
 * Any violation aborts, which the fuzzer reports as a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_merkle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int64_t
fuzz_tile_int64(const uint8_t *d)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = v << 8 | d[i];
    return (int64_t)(v & INT64_MAX);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *path, out[128];
    int level, width, n;
    int64_t index;

    if (size > 4096)
        return 0;
    if ((path = malloc(size + 1)) == NULL)
        return 0;
    memcpy(path, data, size);
    path[size] = '\0';
    if (cv_tile_path_parse(path, &level, &index, &width) == 0) {
        n = cv_tile_path_format(level, index, width, out, sizeof(out));
        if (n < 0 || strcmp(out, path) != 0) {
            fprintf(stderr, "not canonical: \"%s\" formats as \"%s\"\n", path,
                    out);
            abort();
        }
    }
    free(path);

    if (size >= 11) {
        int l = (int)(data[0] % 65) - 1, l2;
        int w = (int)((data[1] << 8 | data[2]) % 258), w2;
        int64_t i = fuzz_tile_int64(data + 3), i2;
        cv_merkle_node node = {(int)(data[0] % 70) - 2, i};
        cv_tile_ref ref;

        n = cv_tile_path_format(l, i, w, out, sizeof(out));
        if ((n < 0) != (w < 1 || w > CV_TILE_WIDTH)) {
            fprintf(stderr, "format(%d, %lld, %d) = %d\n", l, (long long)i, w,
                    n);
            abort();
        }
        if (n >= 0 && (cv_tile_path_parse(out, &l2, &i2, &w2) != 0 || l2 != l ||
                       i2 != i || w2 != w)) {
            fprintf(stderr, "\"%s\" does not parse back\n", out);
            abort();
        }
        ref = cv_tile_locate(node);
        if (ref.tile_level != -1 &&
            (ref.tile_level != node.level / CV_TILE_HEIGHT || ref.first < 0 ||
             ref.count < 1 || (ref.count & (ref.count - 1)) != 0 ||
             ref.first + ref.count > CV_TILE_WIDTH || ref.tile_index < 0 ||
             ref.first % ref.count != 0)) {
            fprintf(stderr, "locate(%d, %lld) is outside a tile\n", node.level,
                    (long long)node.index);
            abort();
        }
    }
    return 0;
}
