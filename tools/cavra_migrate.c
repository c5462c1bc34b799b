/*
 * cavra_migrate.c -- cavra-migrate, applies the SQL schema migrations in
 * db/migrations to the CAVRA evidence store.
 *
 * Run it from the repository root once the database exists:
 *
 *     build/tools/cavra-migrate [--dir db/migrations] [--database-url URL]
 *
 * The URL defaults to $CAVRA_DATABASE_URL, else
 * postgresql://cavra@127.0.0.1:55432/cavra (what scripts/pg.sh starts).
 * Migration files are named NNNN_name.sql; each one not yet recorded in
 * table schema_migrations is applied in its own transaction, in version
 * order, and recorded there. It prints one line per applied file and a
 * summary; on any failure it rolls back, names the file and the PostgreSQL
 * error, and exits 1. Running it again is a no-op.
 *
 * Design notes:
 *  - Several processes may start at once (docker-compose, parallel tests):
 *    everything after connecting runs under a session-level advisory lock,
 *    so exactly one of them applies a given migration; the others wait,
 *    then find it already present.
 *  - A file is sent with one PQexec, so it may hold many statements, but it
 *    must not hold its own BEGIN/COMMIT: the tool owns the transaction.
 *  - The server may still be starting: connecting is retried for about
 *    MIG_CONNECT_SECONDS before giving up.
 *  - The URL is never printed (it may carry a password).
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#define MIG_DEFAULT_DIR     "db/migrations"
#define MIG_DEFAULT_URL     "postgresql://cavra@127.0.0.1:55432/cavra"
#define MIG_CONNECT_SECONDS 10
#define MIG_RETRY_MS        250
/* pg_advisory_lock key: the bytes of "CAVRAMIG" as a big-endian bigint. */
#define MIG_LOCK_KEY       "4846249585310255431"
#define MIG_MAX_FILE_BYTES (16L * 1024 * 1024)

typedef struct mig_file {
    int version;
    char *file; /* "0001_init.sql" */
    char *name; /* "init" */
} mig_file;

typedef struct mig_list {
    mig_file *items;
    size_t n;
    size_t cap;
} mig_list;

static void
mig_usage(FILE *out)
{
    fprintf(out, "usage: cavra-migrate [--dir DIR] [--database-url URL]\n"
                 "  --dir DIR           migration files NNNN_name.sql "
                 "(default " MIG_DEFAULT_DIR ")\n"
                 "  --database-url URL  libpq URL (default "
                 "$CAVRA_DATABASE_URL, else " MIG_DEFAULT_URL ")\n");
}

/* Frees the list's entries and array. NULL-safe. */
static void
mig_list_free(mig_list *list)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < list->n; i++) {
        free(list->items[i].file);
        free(list->items[i].name);
    }
    free(list->items);
    list->items = NULL;
    list->n = list->cap = 0;
}

static int
mig_file_cmp_cb(const void *a, const void *b)
{
    const mig_file *x = a;
    const mig_file *y = b;

    return (x->version > y->version) - (x->version < y->version);
}

/*
 * Parses "NNNN_name.sql" into version and name (malloc'd; the caller frees
 * it with free()). Returns 0 on a match, -1 when the name does not follow
 * the pattern, -2 when out of memory.
 */
static int
mig_parse_name(const char *file, int *version, char **name)
{
    size_t len = strlen(file);
    size_t digits = 0;
    long v = 0;

    while (isdigit((unsigned char)file[digits])) {
        v = v * 10 + (file[digits] - '0');
        if (v > 2147483647L)
            return -1;
        digits++;
    }
    /* digits, '_', at least one name character, ".sql" */
    if (digits == 0 || file[digits] != '_' || len < digits + 1 + 1 + 4 ||
        strcmp(file + len - 4, ".sql") != 0)
        return -1;
    *version = (int)v;
    *name = strndup(file + digits + 1, len - digits - 1 - 4);
    return *name != NULL ? 0 : -2;
}

/*
 * Fills list with the migration files in dir, sorted by version. Files not
 * ending in ".sql" are ignored; a ".sql" file that does not match the
 * pattern is reported and skipped. Returns 0, or -1 after printing why
 * (unreadable folder, duplicate version, out of memory). The caller frees
 * the list with mig_list_free() either way.
 */
static int
mig_list_dir(const char *dir, mig_list *list)
{
    DIR *d;
    struct dirent *de;
    int rv = -1;

    if ((d = opendir(dir)) == NULL) {
        fprintf(stderr, "cavra-migrate: cannot open %s: %s\n", dir,
                strerror(errno));
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        int version;
        char *name = NULL;
        int prv;

        if (len < 4 || strcmp(de->d_name + len - 4, ".sql") != 0)
            continue;
        prv = mig_parse_name(de->d_name, &version, &name);
        if (prv == -1) {
            fprintf(stderr,
                    "cavra-migrate: skipping %s/%s: not named NNNN_name.sql\n",
                    dir, de->d_name);
            continue;
        }
        if (prv != 0)
            goto oom;
        if (list->n == list->cap) {
            size_t cap = list->cap ? list->cap * 2 : 16;
            mig_file *items = realloc(list->items, cap * sizeof(*items));

            if (items == NULL) {
                free(name);
                goto oom;
            }
            list->items = items;
            list->cap = cap;
        }
        list->items[list->n].version = version;
        list->items[list->n].name = name;
        name = NULL;
        list->items[list->n].file = strdup(de->d_name);
        list->n++;
        if (list->items[list->n - 1].file == NULL)
            goto oom;
    }
    if (list->n > 0)
        qsort(list->items, list->n, sizeof(list->items[0]), mig_file_cmp_cb);
    for (size_t i = 1; i < list->n; i++) {
        if (list->items[i].version == list->items[i - 1].version) {
            fprintf(stderr, "cavra-migrate: %s and %s share version %d\n",
                    list->items[i - 1].file, list->items[i].file,
                    list->items[i].version);
            goto out;
        }
    }
    rv = 0;
    goto out;
oom:
    fprintf(stderr, "cavra-migrate: out of memory\n");
out:
    closedir(d);
    return rv;
}

/*
 * Reads the whole file at path into a NUL-terminated buffer that the caller
 * frees with free(). Returns NULL after printing why.
 */
static char *
mig_read_file(const char *path)
{
    FILE *f;
    char *buf = NULL;
    size_t len = 0;
    size_t cap = 0;
    size_t got;

    if ((f = fopen(path, "rb")) == NULL) {
        fprintf(stderr, "cavra-migrate: cannot open %s: %s\n", path,
                strerror(errno));
        return NULL;
    }
    for (;;) {
        if (cap - len < 4096) {
            char *nbuf;

            cap = cap ? cap * 2 : 16384;
            if ((long)cap > MIG_MAX_FILE_BYTES * 2 ||
                (nbuf = realloc(buf, cap + 1)) == NULL) {
                fprintf(stderr, "cavra-migrate: %s is too large\n", path);
                goto err;
            }
            buf = nbuf;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        fprintf(stderr, "cavra-migrate: cannot read %s\n", path);
        goto err;
    }
    if ((long)len > MIG_MAX_FILE_BYTES) {
        fprintf(stderr, "cavra-migrate: %s is too large\n", path);
        goto err;
    }
    buf[len] = '\0';
    /* PQexec takes a C string: a NUL byte would silently cut the file. */
    if (memchr(buf, '\0', len) != NULL) {
        fprintf(stderr, "cavra-migrate: %s contains a NUL byte\n", path);
        goto err;
    }
    fclose(f);
    return buf;
err:
    free(buf);
    fclose(f);
    return NULL;
}

static double
mig_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Connects to url, retrying for about MIG_CONNECT_SECONDS. Returns the
 * connection (the caller closes it with PQfinish()) or NULL after printing
 * the last error.
 */
static PGconn *
mig_connect(const char *url)
{
    double deadline = mig_now() + MIG_CONNECT_SECONDS;
    PGconn *conn;

    for (;;) {
        conn = PQconnectdb(url);
        if (conn != NULL && PQstatus(conn) == CONNECTION_OK)
            return conn;
        if (mig_now() >= deadline)
            break;
        PQfinish(conn);
        conn = NULL;
        nanosleep(&(struct timespec){0, MIG_RETRY_MS * 1000000L}, NULL);
    }
    fprintf(stderr,
            "cavra-migrate: cannot connect to the database after %d s: %s",
            MIG_CONNECT_SECONDS,
            conn != NULL ? PQerrorMessage(conn) : "out of memory\n");
    PQfinish(conn);
    return NULL;
}

/*
 * Runs sql (one or more statements) and checks that it succeeded. what
 * names the step in the error message. Returns 0, or -1 after printing
 * "<what>: <PostgreSQL error>".
 */
static int
mig_exec(PGconn *conn, const char *sql, const char *what)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    int rv = 0;

    /* A file of comments only is an empty query: nothing to do, not an
     * error. COPY ... FROM stdin and friends are not supported. */
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK &&
        st != PGRES_EMPTY_QUERY) {
        const char *msg = res != NULL ? PQresultErrorMessage(res) : "";

        if (msg[0] == '\0')
            msg = st == PGRES_COPY_IN || st == PGRES_COPY_OUT
                      ? "COPY is not supported in migrations\n"
                      : PQerrorMessage(conn);
        fprintf(stderr, "cavra-migrate: %s: %s", what, msg);
        rv = -1;
    }
    PQclear(res);
    return rv;
}

/*
 * Looks up version in schema_migrations. Returns 1 when recorded (and warns
 * when it was recorded under another name), 0 when not, -1 on error.
 */
static int
mig_is_applied(PGconn *conn, const mig_file *m)
{
    const char *sql = "SELECT name FROM schema_migrations WHERE version = $1";
    char vbuf[16];
    const char *params[1] = {vbuf};
    PGresult *res;
    int rv = -1;

    snprintf(vbuf, sizeof(vbuf), "%d", m->version);
    res = PQexecParams(conn, sql, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "cavra-migrate: reading schema_migrations: %s",
                PQerrorMessage(conn));
        goto out;
    }
    rv = PQntuples(res) > 0;
    if (rv == 1 && strcmp(PQgetvalue(res, 0, 0), m->name) != 0)
        fprintf(stderr,
                "cavra-migrate: warning: version %d was applied as \"%s\", "
                "the file is now %s\n",
                m->version, PQgetvalue(res, 0, 0), m->file);
out:
    PQclear(res);
    return rv;
}

/*
 * Applies one migration in its own transaction and records it. Returns 0,
 * or -1 after printing the file and the error (the transaction is rolled
 * back).
 */
static int
mig_apply(PGconn *conn, const char *dir, const mig_file *m)
{
    const char *ins =
        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)";
    char vbuf[16];
    const char *params[2] = {vbuf, m->name};
    char *path = NULL;
    char *sql = NULL;
    PGresult *res = NULL;
    size_t plen = strlen(dir) + 1 + strlen(m->file) + 1;
    int rv = -1;

    if ((path = malloc(plen)) == NULL) {
        fprintf(stderr, "cavra-migrate: out of memory\n");
        goto out;
    }
    snprintf(path, plen, "%s/%s", dir, m->file);
    if ((sql = mig_read_file(path)) == NULL)
        goto out;
    if (mig_exec(conn, "BEGIN", m->file) != 0)
        goto out;
    if (mig_exec(conn, sql, m->file) != 0)
        goto rollback;
    /* A COMMIT or ROLLBACK in the file ended our transaction early. */
    if (PQtransactionStatus(conn) != PQTRANS_INTRANS) {
        fprintf(stderr,
                "cavra-migrate: %s: the file ended the transaction itself "
                "(remove BEGIN/COMMIT/ROLLBACK from it)\n",
                m->file);
        goto rollback;
    }

    snprintf(vbuf, sizeof(vbuf), "%d", m->version);
    res = PQexecParams(conn, ins, 2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        fprintf(stderr, "cavra-migrate: %s: recording it: %s", m->file,
                PQerrorMessage(conn));
        goto rollback;
    }
    PQclear(res);

    /* COMMIT of an aborted transaction "succeeds" with tag ROLLBACK. */
    res = PQexec(conn, "COMMIT");
    if (PQresultStatus(res) != PGRES_COMMAND_OK ||
        strcmp(PQcmdStatus(res), "COMMIT") != 0) {
        fprintf(stderr, "cavra-migrate: %s: COMMIT failed: %s", m->file,
                PQresultStatus(res) == PGRES_COMMAND_OK
                    ? "the transaction was rolled back\n"
                    : PQerrorMessage(conn));
        goto out;
    }
    rv = 0;
    goto out;
rollback:
    PQclear(res);
    res = NULL;
    if (PQtransactionStatus(conn) != PQTRANS_IDLE)
        res = PQexec(conn, "ROLLBACK");
out:
    PQclear(res);
    free(sql);
    free(path);
    return rv;
}

int
main(int argc, char **argv)
{
    const char *dir = MIG_DEFAULT_DIR;
    const char *url = getenv("CAVRA_DATABASE_URL");
    mig_list list = {0};
    PGconn *conn = NULL;
    int applied = 0;
    int present = 0;
    int status = 1;

    if (url == NULL || url[0] == '\0')
        url = MIG_DEFAULT_URL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];

        if (strcmp(a, "--dir") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else if (strncmp(a, "--dir=", 6) == 0) {
            dir = a + 6;
        } else if (strcmp(a, "--database-url") == 0 && i + 1 < argc) {
            url = argv[++i];
        } else if (strncmp(a, "--database-url=", 15) == 0) {
            url = a + 15;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            mig_usage(stdout);
            return 0;
        } else {
            mig_usage(stderr);
            return 2;
        }
    }

    /* List first: a bad folder fails fast, without waiting for a server. */
    if (mig_list_dir(dir, &list) != 0)
        goto out;
    if ((conn = mig_connect(url)) == NULL)
        goto out;
    if (mig_exec(conn, "SET client_min_messages = warning", "setup") != 0 ||
        mig_exec(conn, "SELECT pg_advisory_lock(" MIG_LOCK_KEY ")",
                 "taking the migration lock") != 0)
        goto out;
    if (mig_exec(conn,
                 "CREATE TABLE IF NOT EXISTS schema_migrations ("
                 " version int PRIMARY KEY,"
                 " name text NOT NULL,"
                 " applied_at timestamptz NOT NULL DEFAULT now())",
                 "creating schema_migrations") != 0)
        goto out;

    for (size_t i = 0; i < list.n; i++) {
        int rv = mig_is_applied(conn, &list.items[i]);

        if (rv < 0)
            goto out;
        if (rv == 1) {
            present++;
            continue;
        }
        if (mig_apply(conn, dir, &list.items[i]) != 0)
            goto out;
        printf("applied %s\n", list.items[i].file);
        fflush(stdout);
        applied++;
    }
    printf("migrations: %d applied, %d already present\n", applied, present);
    status = 0;
out:
    /* The advisory lock is session-level: closing the connection frees it. */
    PQfinish(conn);
    mig_list_free(&list);
    if (status != 0)
        fprintf(stderr, "cavra-migrate: failed (%d applied before the error)\n",
                applied);
    return status;
}
