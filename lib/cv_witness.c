/*
 * cv_witness.c -- the witness log of evidence checkpoints (see
 * cv_witness.h).
 */
#include "cv_witness.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static void
cv_witness_why(char *why, size_t whylen, const char *fmt, const char *a,
               const char *b)
{
    if (why != NULL && whylen > 0)
        snprintf(why, whylen, fmt, a != NULL ? a : "", b != NULL ? b : "");
}

/* Verifies note with v and parses its checkpoint into cp. */
static int
cv_witness_open_note(const char *note, const cv_note_verifier *v,
                     cv_checkpoint *cp, char *why, size_t whylen)
{
    char *body = NULL, reason[160];

    if (cv_note_verify(note, strlen(note), v, &body, reason, sizeof(reason)) !=
        0) {
        cv_witness_why(why, whylen, "signature does not verify: %s%s", reason,
                       NULL);
        return -1;
    }
    if (cv_checkpoint_parse(body, strlen(body), cp, reason, sizeof(reason)) !=
        0) {
        free(body);
        cv_witness_why(why, whylen, "not a checkpoint: %s%s", reason, NULL);
        return -1;
    }
    free(body);
    return 0;
}

static char *
cv_witness_path(const char *dir, const char *file)
{
    size_t n = strlen(dir) + strlen(file) + 2;
    char *p = malloc(n);

    if (p != NULL)
        snprintf(p, n, "%s/%s", dir, file);
    return p;
}

/* Reads a whole small file; NULL with errno when it cannot. */
static char *
cv_witness_slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    size_t len = 0, cap = 0;

    if (f == NULL)
        return NULL;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            char *grown = realloc(buf, cap = cap * 2 + 8192);

            if (grown == NULL) {
                free(buf);
                fclose(f);
                errno = ENOMEM;
                return NULL;
            }
            buf = grown;
        }
        size_t got = fread(buf + len, 1, 4096, f);

        len += got;
        if (got < 4096)
            break;
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
}

int
cv_witness_latest(const char *dir, const cv_note_verifier *v, cv_witnessed *out,
                  char *why, size_t whylen)
{
    char *path = cv_witness_path(dir, CV_WITNESS_LATEST);
    char *note;

    memset(out, 0, sizeof(*out));
    if (path == NULL) {
        cv_witness_why(why, whylen, "out of memory%s%s", NULL, NULL);
        return -1;
    }
    note = cv_witness_slurp(path);
    if (note == NULL) {
        int e = errno;

        if (e == ENOENT) {
            free(path);
            return 0;
        }
        cv_witness_why(why, whylen, "cannot read %s: %s", path, strerror(e));
        free(path);
        return -1;
    }
    if (cv_witness_open_note(note, v, &out->cp, why, whylen) != 0) {
        char reason[200];

        snprintf(reason, sizeof(reason), "%s", why != NULL ? why : "");
        cv_witness_why(why, whylen, "%s: %s", path, reason);
        free(path);
        free(note);
        return -1;
    }
    free(path);
    out->note = note;
    return 1;
}

void
cv_witness_list_free(cv_witnessed *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i].note);
    free(list);
}

int
cv_witness_list(const char *dir, const cv_note_verifier *v, cv_witnessed **out,
                size_t *n, char *why, size_t whylen)
{
    char *path = cv_witness_path(dir, CV_WITNESS_LOG);
    FILE *f;
    char *line = NULL;
    size_t cap = 0, have = 0, room = 0;
    cv_witnessed *list = NULL;
    ssize_t len;
    int rv = 0;

    *out = NULL;
    *n = 0;
    if (path == NULL)
        return -1;
    if ((f = fopen(path, "r")) == NULL) {
        int e = errno;

        if (e != ENOENT) {
            cv_witness_why(why, whylen, "cannot read %s: %s", path,
                           strerror(e));
            rv = -1;
        }
        free(path);
        return rv;
    }
    while ((len = getline(&line, &cap, f)) > 0) {
        json_t *doc;
        const char *note;

        if (strspn(line, " \t\r\n") == (size_t)len)
            continue;
        doc = json_loads(line, 0, NULL);
        note = json_string_value(json_object_get(doc, "note"));
        if (note == NULL) {
            json_decref(doc);
            cv_witness_why(why, whylen, "%s: a line is not a witnessed %s",
                           path, "checkpoint");
            rv = -1;
            break;
        }
        if (have == room) {
            cv_witnessed *grown =
                realloc(list, (room = room * 2 + 16) * sizeof(*list));

            if (grown == NULL) {
                json_decref(doc);
                rv = -1;
                break;
            }
            list = grown;
        }
        memset(&list[have], 0, sizeof(list[have]));
        if (cv_witness_open_note(note, v, &list[have].cp, why, whylen) != 0 ||
            (list[have].note = strdup(note)) == NULL) {
            json_decref(doc);
            rv = -1;
            break;
        }
        have++;
        json_decref(doc);
    }
    free(line);
    fclose(f);
    free(path);
    if (rv != 0) {
        cv_witness_list_free(list, have);
        return -1;
    }
    *out = list;
    *n = have;
    return 0;
}

/* Writes all of text to fd; 0 or -1. */
static int
cv_witness_write_all(int fd, const char *text, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, text, len);

        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        text += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Replaces dir/checkpoint with note: temporary file, fsync, rename,
 * fsync of the folder. */
static int
cv_witness_write_latest(const char *dir, const char *note)
{
    char *path = cv_witness_path(dir, CV_WITNESS_LATEST);
    char *tmp = cv_witness_path(dir, CV_WITNESS_LATEST ".tmp");
    int fd = -1, rv = -1;

    if (path == NULL || tmp == NULL)
        goto out;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || cv_witness_write_all(fd, note, strlen(note)) != 0 ||
        fsync(fd) != 0)
        goto out;
    close(fd);
    fd = -1;
    if (rename(tmp, path) != 0)
        goto out;
    if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
        (void)fsync(fd);
        close(fd);
        fd = -1;
    }
    rv = 0;
out:
    if (fd >= 0)
        close(fd);
    free(path);
    free(tmp);
    return rv;
}

int
cv_witness_append(const char *dir, const cv_note_verifier *v,
                  const char *origin, const char *note,
                  const cv_merkle_hash *proof, size_t proof_len, char *why,
                  size_t whylen)
{
    cv_checkpoint cp;
    cv_witnessed last;
    char *path = NULL, *line = NULL, num[32];
    json_t *doc;
    int fd = -1, rv = -1, have;

    if (cv_witness_open_note(note, v, &cp, why, whylen) != 0)
        return 1;
    if (strcmp(cp.origin, origin) != 0) {
        cv_witness_why(why, whylen, "origin \"%s\" is not this log's (\"%s\")",
                       cp.origin, origin);
        return 1;
    }
    (void)mkdir(dir, 0755);
    if ((path = cv_witness_path(dir, CV_WITNESS_LOG)) == NULL)
        return -1;
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || flock(fd, LOCK_EX) != 0) {
        cv_witness_why(why, whylen, "cannot open %s: %s", path,
                       strerror(errno));
        goto out;
    }
    /* Under the lock: the last witnessed checkpoint cannot move now. */
    have = cv_witness_latest(dir, v, &last, why, whylen);
    if (have < 0)
        goto out;
    if (have == 1) {
        bool ok;

        if (cp.size < last.cp.size) {
            snprintf(num, sizeof(num), "%lld", (long long)last.cp.size);
            cv_witness_why(why, whylen,
                           "tree size goes backwards (witnessed %s%s)", num,
                           NULL);
            ok = false;
        } else if (cp.size == last.cp.size) {
            ok = memcmp(cp.root, last.cp.root, CV_MERKLE_HASH_LEN) == 0;
            if (!ok)
                cv_witness_why(why, whylen,
                               "same tree size as witnessed, another root%s%s",
                               NULL, NULL);
        } else if (last.cp.size == 0) {
            ok = true; /* every tree extends the empty one */
        } else {
            ok = cv_merkle_verify_consistency(
                last.cp.size, cp.size, last.cp.root, cp.root, proof, proof_len);
            if (!ok)
                cv_witness_why(why, whylen,
                               "the new tree does not extend the witnessed "
                               "one (consistency proof fails)%s%s",
                               NULL, NULL);
        }
        free(last.note);
        if (!ok) {
            rv = 1;
            goto out;
        }
    }
    snprintf(num, sizeof(num), "%lld", (long long)cp.size);
    doc =
        json_pack("{s:I, s:s}", "tree_size", (json_int_t)cp.size, "note", note);
    line = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (line == NULL || cv_witness_write_all(fd, line, strlen(line)) != 0 ||
        cv_witness_write_all(fd, "\n", 1) != 0 || fsync(fd) != 0 ||
        cv_witness_write_latest(dir, note) != 0) {
        cv_witness_why(why, whylen, "cannot append to %s: %s", path,
                       strerror(errno));
        goto out;
    }
    rv = 0;
out:
    if (fd >= 0)
        close(fd); /* releases the lock */
    free(line);
    free(path);
    return rv;
}
