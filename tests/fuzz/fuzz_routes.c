/*
 * fuzz_routes.c -- libFuzzer target for the gateway's path handling:
 * gw_percent_decode (both modes) and gw_route_match. The first byte picks
 * the HTTP method, the rest is the raw request path.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gw_routes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const methods[] = {"GET",  "POST",    "PUT", "DELETE",
                                          "HEAD", "OPTIONS", "",    "get"};
    gw_path_param params[GW_MAX_PATH_PARAMS];
    char out[512];
    char allow[128];
    size_t n_params = 0;
    bool known = false;
    char *path;

    if (size == 0 || size > 4096)
        return 0;
    /* Decoded output must be NUL-terminated within the buffer. */
    for (int slash = 0; slash < 2; slash++) {
        if (gw_percent_decode((const char *)data + 1, size - 1, out,
                              sizeof(out), slash != 0) == 0 &&
            memchr(out, '\0', sizeof(out)) == NULL)
            abort();
    }
    if ((path = malloc(size)) == NULL)
        return 0;
    memcpy(path, data + 1, size - 1);
    path[size - 1] = '\0';
    (void)gw_route_match(methods[data[0] % 8], path, params, &n_params, &known,
                         allow, sizeof(allow));
    if (n_params > GW_MAX_PATH_PARAMS)
        abort();
    free(path);
    return 0;
}
