/*
 * roles_test.c -- integration: the database login of the services
 * (cavra_app, migration 0009) may read and append, and may set the chain
 * columns, but can never rewrite or remove evidence or records
 * (docs/evidence.md: "grants plus a trigger"); it is no superuser, owns nothing
 * and cannot become the owner.
 *
 * scripts/test.sh gives the services' login in CAVRA_DATABASE_URL and the
 * owner in CAVRA_TEST_OWNER_DATABASE_URL; this test connects with the
 * former. (Against an older setup, CAVRA_DB_ROLE on an owner URL is still
 * honoured with SET ROLE.) Every statement runs in a transaction that is
 * rolled back, so the shared database is left as it was.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_test_stack.h"

static PGconn *roles_conn;

static int
roles_setup(void **state)
{
    const char *role = getenv("CAVRA_DB_ROLE");
    const char *params[1] = {role};
    PGresult *res;
    int ok;

    const char *app_url = getenv("CAVRA_DATABASE_URL");

    (void)state;
    if (app_url == NULL || app_url[0] == '\0') {
        fprintf(stderr, "roles_test: CAVRA_DATABASE_URL must be set "
                        "(scripts/test.sh sets it)\n");
        return -1;
    }
    roles_conn = PQconnectdb(app_url);
    if (PQstatus(roles_conn) != CONNECTION_OK)
        return -1;
    if (role == NULL || role[0] == '\0')
        return 0; /* a login of its own: nothing to switch to */
    res = PQexecParams(roles_conn, "SELECT set_config('role', $1, false)", 1,
                       NULL, params, NULL, NULL, 0);
    ok = PQresultStatus(res) == PGRES_TUPLES_OK;
    PQclear(res);
    return ok ? 0 : -1;
}

static int
roles_teardown(void **state)
{
    (void)state;
    PQfinish(roles_conn);
    return 0;
}

/* Runs sql in a transaction that is always rolled back; returns the
 * SQLSTATE of the failure ("" on success). */
static const char *
roles_try(const char *sql)
{
    static char state[8];
    PGresult *res;
    const char *s;

    res = PQexec(roles_conn, "BEGIN");
    PQclear(res);
    res = PQexec(roles_conn, sql);
    s = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    snprintf(state, sizeof(state), "%s",
             (PQresultStatus(res) == PGRES_COMMAND_OK ||
              PQresultStatus(res) == PGRES_TUPLES_OK || s == NULL)
                 ? ""
                 : s);
    PQclear(res);
    res = PQexec(roles_conn, "ROLLBACK");
    PQclear(res);
    return state;
}

static void
test_roles_reads_and_appends(void **state)
{
    (void)state;
    assert_string_equal(roles_try("SELECT count(*) FROM evidence_events"), "");
    assert_string_equal(
        roles_try("INSERT INTO evidence_events (kind, record_id, created_at,"
                  " record) VALUES ('roles-test', 'r-1', now(), '{}')"),
        "");
    /* The sequencer appends leaves (migration 0017). */
    assert_string_equal(roles_try("SELECT count(*) FROM evidence_leaves"), "");
    assert_string_equal(roles_try("INSERT INTO evidence_leaves (seq, event_id)"
                                  " SELECT 1, 1 WHERE false"),
                        "");
}

static void
test_roles_cannot_rewrite_evidence(void **state)
{
    (void)state;
    /* 42501: insufficient_privilege, from the grants (not the trigger). */
    assert_string_equal(
        roles_try("UPDATE evidence_events SET record = '{}' WHERE false"),
        "42501");
    assert_string_equal(
        roles_try("UPDATE evidence_events SET actor = 'x' WHERE false"),
        "42501");
    assert_string_equal(roles_try("DELETE FROM evidence_events WHERE false"),
                        "42501");
    /* No UPDATE of events at all any more, not even of the old chain
     * columns; leaves are never changed either. */
    assert_string_equal(roles_try("UPDATE evidence_events SET chain_seq ="
                                  " chain_seq WHERE false"),
                        "42501");
    assert_string_equal(
        roles_try("UPDATE evidence_leaves SET seq = seq WHERE false"), "42501");
    assert_string_equal(roles_try("DELETE FROM evidence_leaves WHERE false"),
                        "42501");
    assert_string_equal(roles_try("TRUNCATE evidence_leaves"), "42501");
    assert_string_equal(roles_try("TRUNCATE evidence_events"), "42501");
    assert_string_equal(roles_try("ALTER TABLE evidence_events DISABLE"
                                  " TRIGGER evidence_events_append_only"),
                        "42501");
}

static void
test_roles_cannot_rewrite_records(void **state)
{
    static const char *const sql[] = {
        "UPDATE escalation_plans SET generated_by = 'x' WHERE false",
        "DELETE FROM escalation_plans WHERE false",
        "UPDATE acknowledgements SET acknowledgement_state = 'x' WHERE false",
        "DELETE FROM acknowledgements WHERE false",
        "UPDATE delivery_attempts SET success = true WHERE false",
        "UPDATE retry_plans SET generated_by = 'x' WHERE false",
        "UPDATE report_runs SET generated_by = 'x' WHERE false",
        "DELETE FROM report_runs WHERE false",
        "INSERT INTO schema_migrations (version, name) VALUES (9999, 'x')",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
        const char *got = roles_try(sql[i]);

        if (strcmp(got, "42501") != 0)
            fail_msg("%s: SQLSTATE '%s', expected 42501", sql[i], got);
    }
}

/* The login is least privilege itself: no superuser, owns no table, is
 * not a member of the owner and cannot SET ROLE to it. */
static void
test_roles_login_cannot_become_owner(void **state)
{
    PGresult *res;

    (void)state;
    res =
        PQexec(roles_conn, "SELECT r.rolsuper, r.rolcreaterole, r.rolcreatedb,"
                           " pg_has_role(current_user, 'cavra', 'MEMBER'),"
                           " (SELECT count(*) FROM pg_tables WHERE tableowner ="
                           " current_user) FROM pg_roles r WHERE r.rolname ="
                           " current_user");
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(res), 1);
    assert_string_equal(PQgetvalue(res, 0, 0), "f");
    assert_string_equal(PQgetvalue(res, 0, 1), "f");
    assert_string_equal(PQgetvalue(res, 0, 2), "f");
    assert_string_equal(PQgetvalue(res, 0, 3), "f");
    assert_string_equal(PQgetvalue(res, 0, 4), "0");
    PQclear(res);
    assert_string_equal(roles_try("SET ROLE cavra"), "42501");
    assert_string_equal(roles_try("SET ROLE postgres"), "42501");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roles_login_cannot_become_owner),
        cmocka_unit_test(test_roles_reads_and_appends),
        cmocka_unit_test(test_roles_cannot_rewrite_evidence),
        cmocka_unit_test(test_roles_cannot_rewrite_records),
    };

    return cmocka_run_group_tests_name("roles", tests, roles_setup,
                                       roles_teardown);
}
