/*
 * replay_main.c -- replays fuzz corpora without libFuzzer, so that every
 * seed and every input that once crashed a target is a regression test in
 * the normal (gcc, ASan/UBSan) build.
 *
 * Usage: fuzz_replay_<target> PATH...; each PATH is a file or a folder
 * whose regular files are fed, in name order, to LLVMFuzzerTestOneInput.
 * A property violation aborts; the exit status is 0 when every input ran.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t cap = 0;
    size_t len = 0;
    size_t n;

    if (f == NULL) {
        perror(path);
        return -1;
    }
    do {
        if (len == cap) {
            uint8_t *nb = realloc(buf, cap = cap ? cap * 2 : 4096);

            if (nb == NULL) {
                free(buf);
                fclose(f);
                return -1;
            }
            buf = nb;
        }
        n = fread(buf + len, 1, cap - len, f);
        len += n;
    } while (n > 0);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    return 0;
}

static int
replay_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int
main(int argc, char **argv)
{
    size_t runs = 0;
    int rc = 0;

    for (int a = 1; a < argc; a++) {
        struct stat st;
        struct dirent *de;
        char **names = NULL;
        size_t n = 0;
        DIR *d;

        if (stat(argv[a], &st) != 0) {
            perror(argv[a]);
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            rc |= replay_file(argv[a]);
            runs++;
            continue;
        }
        if ((d = opendir(argv[a])) == NULL) {
            perror(argv[a]);
            return 1;
        }
        while ((de = readdir(d)) != NULL) {
            char **nn;

            if (de->d_name[0] == '.')
                continue;
            if ((nn = realloc(names, (n + 1) * sizeof(*names))) == NULL)
                return 1;
            names = nn;
            if ((names[n] = malloc(strlen(argv[a]) + strlen(de->d_name) + 2)) ==
                NULL)
                return 1;
            sprintf(names[n++], "%s/%s", argv[a], de->d_name);
        }
        closedir(d);
        qsort(names, n, sizeof(*names), replay_cmp);
        for (size_t i = 0; i < n; i++) {
            if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
                rc |= replay_file(names[i]);
                runs++;
            }
            free(names[i]);
        }
        free(names);
    }
    printf("replayed %zu inputs\n", runs);
    return rc != 0 || runs == 0 ? 1 : 0;
}
