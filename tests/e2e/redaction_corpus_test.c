/*
 * redaction_corpus_test.c -- end-to-end proof of docs/api.md: every
 * form of the redaction corpus (tests/unit/redact_corpus.h) is posted
 * through the free-text fields of the whole stack (plan route reason and
 * recommended_action, acknowledgement notes and escalation_reason,
 * delivery attempt error) and no planted secret may be found afterwards
 *  - in any HTTP answer (the writes, the evidence stream, traces, the
 *    dashboard, a retry plan),
 *  - in the database: every row of every table as text, and pg_dump,
 *  - in the log files of the four processes.
 * Identifier fields refuse a secret with a 400 that does not echo it.
 *
 * Needs CAVRA_DATABASE_URL pointing at a migrated database (scripts/test.sh
 * sets it). Run: ctest -R e2e.redaction_corpus, or the binary alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/redact_corpus.h"
#include "cv_test_api.h"

#define E2E_P                                                                  \
    "/runtime/go-pilot/rollback-drill-notifications/acknowledgements/"         \
    "audit-delivery"
#define E2E_STREAM "/runtime/go-pilot/rollback-drill-notifications"

/* Identifier-shaped secrets (fakes) that must be refused, not stored. */
static const char *const e2e_ident_secrets[] = {
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "glpat-"
    "Qr7sT8uV9wX0yZ1aB2cD",
};
#define E2E_IDENT_N (sizeof(e2e_ident_secrets) / sizeof(e2e_ident_secrets[0]))

static cv_test_stack e2e_stack;
static char *e2e_plan_ids[REDACT_SECRETS_N];

/* Fails when any secret of the corpus (or an identifier secret) occurs in
 * text; where says what text was searched. */
static void
e2e_assert_clean(const char *where, const char *text)
{
    if (text == NULL)
        return;
    for (size_t i = 0; i < REDACT_SECRETS_N; i++) {
        if (strstr(text, REDACT_SECRETS[i].secret) != NULL)
            fail_msg("%s holds the secret of corpus case %zu [%s] \"%s\"",
                     where, i, REDACT_SECRETS[i].family,
                     REDACT_SECRETS[i].secret);
    }
    for (size_t i = 0; i < E2E_IDENT_N; i++) {
        if (strstr(text, e2e_ident_secrets[i]) != NULL)
            fail_msg("%s holds identifier secret \"%s\"", where,
                     e2e_ident_secrets[i]);
    }
}

/* POSTs a JSON body (a jansson object, stolen) and checks the answer. */
static void
e2e_post(const char *path, json_t *body, long want, const char *what,
         cv_http_response *r)
{
    char *text = json_dumps(body, JSON_COMPACT);

    json_decref(body);
    assert_non_null(text);
    cv_test_post_json(&e2e_stack, path, text, r);
    free(text);
    if (r->status != want)
        fail_msg("%s: expected %ld, got %ld: %s", what, want, r->status,
                 r->body);
    e2e_assert_clean(what, r->body);
}

static int
e2e_setup(void **state)
{
    (void)state;
    return cv_test_stack_start(&e2e_stack, CV_STACK_ALL);
}

static int
e2e_teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < REDACT_SECRETS_N; i++)
        free(e2e_plan_ids[i]);
    return cv_test_stack_stop(&e2e_stack);
}

/* ---- 1. the writes ------------------------------------------------------ */

static void
test_redaction_corpus_posted(void **state)
{
    char path[512];

    (void)state;
    for (size_t i = 0; i < REDACT_SECRETS_N; i++) {
        const char *t = REDACT_SECRETS[i].text;
        cv_http_response r;

        e2e_post(E2E_P "/recovery-escalation-plan",
                 json_pack("{s:s, s:[{s:s, s:s, s:s}]}", "generated_by", "ops",
                           "escalation_routes", "provider", "slack", "reason",
                           t, "recommended_action", t),
                 201, "recording a plan", &r);
        e2e_plan_ids[i] = strdup(cv_test_json_str(r.json, "plan.plan_id"));
        cv_http_response_free(&r);

        snprintf(path, sizeof(path),
                 E2E_P "/recovery-escalations/%s/acknowledgements",
                 e2e_plan_ids[i]);
        e2e_post(path,
                 json_pack("{s:s, s:s, s:s, s:s, s:s}", "provider", "slack",
                           "acknowledged_by", "alice", "acknowledgement_state",
                           "accepted", "notes", t, "escalation_reason", t),
                 201, "acknowledging", &r);
        cv_http_response_free(&r);

        snprintf(path, sizeof(path),
                 E2E_P "/recovery-escalations/%s/delivery-attempts",
                 e2e_plan_ids[i]);
        e2e_post(path,
                 json_pack("{s:s, s:b, s:i, s:s}", "provider", "slack",
                           "success", 0, "status_code", 500, "error", t),
                 201, "recording a delivery attempt", &r);
        cv_http_response_free(&r);
    }
}

/*
 * Identifier fields refuse a secret with a 400 naming the field and do not
 * echo it; the scans below prove nothing of it was stored. One row per
 * identifier field of every service, by class: normalised identifiers
 * ([a-z0-9._-], lower-cased: provider, category, closure_state, slo_status,
 * cadence, schedule_id) and identifiers kept as sent ([A-Za-z0-9._:/#-]:
 * playbook_id, external_ref). %s is the value; %p the first plan's id.
 */
static const struct {
    const char *field; /* as the 400 names it */
    const char *path;  /* after E2E_P; "%p" is replaced by a plan id */
    const char *body;  /* JSON with one %s */
} e2e_ident_fields[] = {
    {"escalation_routes[0].provider", "/recovery-escalation-plan",
     "{\"escalation_routes\": [{\"provider\": \"%s\"}]}"},
    {"escalation_routes[0].category", "/recovery-escalation-plan",
     "{\"escalation_routes\": [{\"provider\": \"slack\", \"category\": "
     "\"%s\"}]}"},
    {"escalation_routes[0].closure_state", "/recovery-escalation-plan",
     "{\"escalation_routes\": [{\"provider\": \"slack\", "
     "\"closure_state\": \"%s\"}]}"},
    {"escalation_routes[0].slo_status", "/recovery-escalation-plan",
     "{\"escalation_routes\": [{\"provider\": \"slack\", \"slo_status\": "
     "\"%s\"}]}"},
    {"escalation_routes[0].playbook_id", "/recovery-escalation-plan",
     "{\"escalation_routes\": [{\"provider\": \"slack\", \"playbook_id\": "
     "\"%s\"}]}"},
    {"provider", "/recovery-escalations/%p/acknowledgements",
     "{\"provider\": \"%s\", \"acknowledged_by\": \"alice\"}"},
    {"external_ref", "/recovery-escalations/%p/acknowledgements",
     "{\"provider\": \"slack\", \"acknowledged_by\": \"alice\", "
     "\"external_ref\": \"%s\"}"},
    {"provider", "/recovery-escalations/%p/delivery-attempts",
     "{\"provider\": \"%s\", \"success\": false, \"status_code\": 500}"},
    {"schedule.cadence", "/recovery-executive-report/schedule-run",
     "{\"schedule\": {\"cadence\": \"%s\", \"interval_minutes\": 60}}"},
    {"schedule.schedule_id", "/recovery-executive-report/schedule-run",
     "{\"schedule\": {\"schedule_id\": \"%s\", \"interval_minutes\": "
     "60}}"},
};
#define E2E_IDENT_FIELDS_N                                                     \
    (sizeof(e2e_ident_fields) / sizeof(e2e_ident_fields[0]))

static void
test_redaction_identifiers_refused(void **state)
{
    (void)state;
    assert_non_null(e2e_plan_ids[0]);
    for (size_t f = 0; f < E2E_IDENT_FIELDS_N; f++) {
        char path[512];
        const char *at = strstr(e2e_ident_fields[f].path, "%p");

        if (at != NULL)
            snprintf(path, sizeof(path), E2E_P "%.*s%s%s",
                     (int)(at - e2e_ident_fields[f].path),
                     e2e_ident_fields[f].path, e2e_plan_ids[0], at + 2);
        else
            snprintf(path, sizeof(path), E2E_P "%s", e2e_ident_fields[f].path);
        for (size_t i = 0; i < E2E_IDENT_N; i++) {
            char body[512];
            char what[256];
            char want[256];
            cv_http_response r;

            snprintf(body, sizeof(body), e2e_ident_fields[f].body,
                     e2e_ident_secrets[i]);
            snprintf(what, sizeof(what), "a secret as %s (%s)",
                     e2e_ident_fields[f].field, e2e_ident_fields[f].path);
            cv_test_post_json(&e2e_stack, path, body, &r);
            if (r.status != 400)
                fail_msg("%s: expected 400, got %ld: %s", what, r.status,
                         r.body);
            e2e_assert_clean(what, r.body);
            snprintf(want, sizeof(want),
                     "%s looks like a secret; identifiers must not carry "
                     "credentials",
                     e2e_ident_fields[f].field);
            if (strcmp(cv_test_json_str(r.json, "detail"), want) != 0)
                fail_msg("%s: detail \"%s\", expected \"%s\"", what,
                         cv_test_json_str(r.json, "detail"), want);
            cv_http_response_free(&r);
        }
    }
}

/* ---- 2. what can be read back ----------------------------------------- */

static void
test_redaction_read_side_clean(void **state)
{
    char path[1024];
    char cursor[512] = "";
    cv_http_response r;
    size_t pages = 0;

    (void)state;
    /* The whole evidence stream, page by page. */
    do {
        const char *next;

        snprintf(path, sizeof(path), E2E_STREAM "?limit=500%s%s",
                 cursor[0] != '\0' ? "&cursor=" : "", cursor);
        cv_test_request(&e2e_stack, "GET", path, NULL, NULL, NULL, &r);
        if (r.status != 200)
            fail_msg("evidence stream: %ld %s", r.status, r.body);
        e2e_assert_clean("the evidence stream", r.body);
        next = json_string_value(json_object_get(r.json, "next_cursor"));
        snprintf(cursor, sizeof(cursor), "%s", next != NULL ? next : "");
        cv_http_response_free(&r);
        pages++;
    } while (cursor[0] != '\0' && pages < 100);
    assert_true(pages < 100);

    /* Each plan as read back, and its trace. */
    for (size_t i = 0; i < REDACT_SECRETS_N; i++) {
        snprintf(path, sizeof(path), E2E_P "/recovery-escalations/%s",
                 e2e_plan_ids[i]);
        cv_test_request(&e2e_stack, "GET", path, NULL, NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        e2e_assert_clean("a plan read back", r.body);
        cv_http_response_free(&r);
        snprintf(path, sizeof(path), E2E_P "/recovery-escalations/%s/trace",
                 e2e_plan_ids[i]);
        cv_test_request(&e2e_stack, "GET", path, NULL, NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        e2e_assert_clean("a trace", r.body);
        cv_http_response_free(&r);
    }

    cv_test_request(&e2e_stack, "GET", E2E_STREAM "/dashboard", NULL, NULL,
                    NULL, &r);
    assert_int_equal(r.status, 200);
    e2e_assert_clean("the dashboard", r.body);
    cv_http_response_free(&r);

    e2e_post(E2E_P "/recovery-escalations/retry-plan",
             json_pack("{s:s}", "generated_by", "ops"), 201, "a retry plan",
             &r);
    cv_http_response_free(&r);
}

/* ---- 3. the database --------------------------------------------------- */

/* Every row of every user table, as text. */
static void
test_redaction_database_clean(void **state)
{
    PGconn *db = PQconnectdb(cv_test_database_url());
    PGresult *tables;
    size_t rows = 0;

    (void)state;
    assert_int_equal(PQstatus(db), CONNECTION_OK);
    tables =
        PQexec(db, "SELECT quote_ident(table_schema) || '.' || "
                   "quote_ident(table_name) FROM information_schema.tables "
                   "WHERE table_type = 'BASE TABLE' AND table_schema NOT "
                   "IN ('pg_catalog', 'information_schema')");
    assert_int_equal(PQresultStatus(tables), PGRES_TUPLES_OK);
    assert_true(PQntuples(tables) > 0);
    for (int t = 0; t < PQntuples(tables); t++) {
        char sql[512];
        char where[256];
        PGresult *res;

        snprintf(sql, sizeof(sql), "SELECT x::text FROM %s x",
                 PQgetvalue(tables, t, 0));
        snprintf(where, sizeof(where), "table %s", PQgetvalue(tables, t, 0));
        res = PQexec(db, sql);
        if (PQresultStatus(res) != PGRES_TUPLES_OK)
            fail_msg("%s: %s", sql, PQerrorMessage(db));
        for (int i = 0; i < PQntuples(res); i++) {
            e2e_assert_clean(where, PQgetvalue(res, i, 0));
            rows++;
        }
        PQclear(res);
    }
    PQclear(tables);
    PQfinish(db);
    printf("database: %zu rows scanned\n", rows);
    /* 3 records a case at least, plus their evidence events. */
    assert_true(rows >= 6 * REDACT_SECRETS_N);
}

/* The same through pg_dump, when the client tools are installed. */
static void
test_redaction_pg_dump_clean(void **state)
{
    char cmd[1024];
    char *dump = NULL;
    size_t len = 0;
    size_t cap = 0;
    size_t n;
    FILE *p;
    int rc;

    (void)state;
    if (system("command -v pg_dump >/dev/null 2>&1") != 0) {
        printf("pg_dump not installed: only the row scan ran\n");
        skip();
    }
    /* The URL comes from the test environment, single-quoted for sh. */
    assert_null(strchr(cv_test_database_url(), '\''));
    snprintf(cmd, sizeof(cmd), "pg_dump --data-only --no-owner '%s'",
             cv_test_database_url());
    assert_non_null(p = popen(cmd, "r"));
    do {
        if (cap - len < 65536) {
            char *nd = realloc(dump, cap += 1 << 20);

            assert_non_null(nd);
            dump = nd;
        }
        n = fread(dump + len, 1, cap - len - 1, p);
        len += n;
    } while (n > 0);
    dump[len] = '\0';
    rc = pclose(p);
    if (rc != 0)
        fail_msg("pg_dump failed (%d)", rc);
    assert_true(len > 1000);
    e2e_assert_clean("pg_dump", dump);
    printf("pg_dump: %zu bytes scanned\n", len);
    free(dump);
}

/* ---- 4. the logs ------------------------------------------------------- */

static void
test_redaction_logs_clean(void **state)
{
    DIR *d = opendir(e2e_stack.dir);
    struct dirent *de;
    size_t files = 0;

    (void)state;
    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        char path[600];
        char *text;
        long size;
        FILE *f;

        if (strlen(de->d_name) < 5 ||
            strcmp(de->d_name + strlen(de->d_name) - 4, ".log") != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", e2e_stack.dir, de->d_name);
        assert_non_null(f = fopen(path, "rb"));
        fseek(f, 0, SEEK_END);
        size = ftell(f);
        rewind(f);
        assert_non_null(text = malloc((size_t)size + 1));
        text[fread(text, 1, (size_t)size, f)] = '\0';
        fclose(f);
        e2e_assert_clean(path, text);
        free(text);
        files++;
    }
    closedir(d);
    printf("logs: %zu files scanned\n", files);
    assert_int_equal(files, 4);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redaction_corpus_posted),
        cmocka_unit_test(test_redaction_identifiers_refused),
        cmocka_unit_test(test_redaction_read_side_clean),
        cmocka_unit_test(test_redaction_database_clean),
        cmocka_unit_test(test_redaction_pg_dump_clean),
        cmocka_unit_test(test_redaction_logs_clean),
    };

    return cmocka_run_group_tests_name("e2e.redaction_corpus", tests, e2e_setup,
                                       e2e_teardown);
}
