/*
 * fuzz_auth.c -- libFuzzer target for the token file parser
 * (gw_auth_load). The input is written to a private temporary file that
 * is reused for every run; a file that loads is also queried once. The
 * file lives in memory (memfd, read through /proc/self/fd/N) where it can:
 * on a disk file every run waited for ftruncate, which made the fuzzer
 * mostly sleep.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gw_auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_auth_path[64];

/* The temporary file goes when the fuzzer or the replay driver exits. */
static void
fuzz_auth_cleanup(void)
{
    unlink(fuzz_auth_path);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    gw_auth *auth = NULL;
    cv_error err;

    if (size > 1 << 16)
        return 0;
    if (fd < 0 && (fd = memfd_create("cavra-fuzz-auth", MFD_CLOEXEC)) >= 0)
        snprintf(fuzz_auth_path, sizeof(fuzz_auth_path), "/proc/self/fd/%d",
                 fd);
    if (fd < 0) {
        strcpy(fuzz_auth_path, "/tmp/cavra-fuzz-auth.XXXXXX");
        if ((fd = mkstemp(fuzz_auth_path)) < 0)
            abort();
        atexit(fuzz_auth_cleanup);
    }
    if (ftruncate(fd, 0) != 0 ||
        (size > 0 && pwrite(fd, data, size, 0) != (ssize_t)size))
        abort();
    if (gw_auth_load(fuzz_auth_path, &auth, &err) == 0) {
        (void)gw_auth_count(auth);
        gw_auth_free(auth);
    }
    return 0;
}
