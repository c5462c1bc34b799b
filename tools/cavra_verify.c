/*
 * cavra-verify -- checks the evidence hash chain (SPEC 9), from the
 * database or offline from an export file.
 *
 *   cavra-verify [--database-url URL]             verify the database
 *   cavra-verify --export FILE [--database-url URL]
 *                                                 write an export (JSONL)
 *   cavra-verify --file FILE                      verify an export offline
 *
 * A database dump is verified by restoring it into a scratch database and
 * pointing --database-url at it. Prints a JSON verdict; exits 0 when the
 * chain is valid, 1 when it is broken, 2 on usage or access errors.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cv_chain.h"
#include "cv_db.h"

static int
cv_verify_print(const cv_chain_report *report)
{
    json_t *doc = json_pack("{s:b, s:I, s:s, s:s}", "valid", report->valid,
                            "events", (json_int_t)report->events, "head",
                            report->head, "algorithm", CV_CHAIN_ALGORITHM);

    if (report->pending > 0)
        json_object_set_new(doc, "pending", json_integer(report->pending));
    if (!report->valid) {
        json_object_set_new(doc, "first_invalid_seq",
                            json_integer(report->first_invalid_seq));
        json_object_set_new(doc, "reason", json_string(report->reason));
    }
    json_dumpf(doc, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
    json_decref(doc);
    return report->valid ? 0 : 1;
}

static int
cv_verify_usage(void)
{
    fprintf(stderr, "usage: cavra-verify [--database-url URL] "
                    "[--export FILE | --file FILE]\n");
    return 2;
}

int
main(int argc, char **argv)
{
    const char *url = NULL, *export_path = NULL, *file_path = NULL;
    cv_chain_report report;
    cv_db db;
    cv_error err;
    int rv;

    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--database-url") == 0)
            url = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--export") == 0)
            export_path = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--file") == 0)
            file_path = argv[++i];
        else
            return cv_verify_usage();
    }
    if (file_path != NULL) {
        FILE *in;

        if (export_path != NULL || url != NULL)
            return cv_verify_usage();
        in = strcmp(file_path, "-") == 0 ? stdin : fopen(file_path, "r");
        if (in == NULL) {
            fprintf(stderr, "cavra-verify: cannot read %s\n", file_path);
            return 2;
        }
        rv = cv_chain_verify_file(in, &report);
        if (in != stdin)
            fclose(in);
        if (rv != 0) {
            fprintf(stderr, "cavra-verify: error reading %s\n", file_path);
            return 2;
        }
        return cv_verify_print(&report);
    }
    cv_error_clear(&err);
    if (cv_db_init(&db, url, NULL, 0, &err) != 0 ||
        cv_db_ensure(&db, &err) != 0) {
        fprintf(stderr, "cavra-verify: %s\n", err.msg);
        cv_db_fini(&db);
        return 2;
    }
    if (export_path != NULL) {
        FILE *out = fopen(export_path, "w");
        int64_t n = 0;

        if (out == NULL) {
            fprintf(stderr, "cavra-verify: cannot write %s\n", export_path);
            cv_db_fini(&db);
            return 2;
        }
        if ((rv = cv_db_tx_begin(&db, CV_TX_READ_SNAPSHOT, &err)) == 0)
            rv = cv_chain_export(&db, out, &n, &err);
        cv_db_tx_rollback(&db); /* read-only */
        if (fclose(out) != 0 && rv == 0)
            rv = cv_error_set(&err, CV_INTERNAL, "cannot write export");
        cv_db_fini(&db);
        if (rv != 0) {
            fprintf(stderr, "cavra-verify: %s\n", err.msg);
            return 2;
        }
        fprintf(stderr, "cavra-verify: exported %" PRId64 " events to %s\n", n,
                export_path);
        return 0;
    }
    if ((rv = cv_db_tx_begin(&db, CV_TX_READ_SNAPSHOT, &err)) == 0)
        rv = cv_chain_verify_db(&db, &report, &err);
    cv_db_tx_rollback(&db); /* read-only */
    cv_db_fini(&db);
    if (rv != 0) {
        fprintf(stderr, "cavra-verify: %s\n", err.msg);
        return 2;
    }
    return cv_verify_print(&report);
}
