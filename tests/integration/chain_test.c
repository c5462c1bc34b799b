/*
 * chain_test.c -- integration tests of the evidence Merkle log
 * (docs/evidence.md): the sequencer inside the real cavra-ack process sequences
 * what the service stores into the stored tree, cv_chain_verify_db and the
 * cavra-verify tool agree, the append-only trigger holds, and tampering
 * behind its back is detected (chain_anchor_test.c checks it against
 * signed, witnessed checkpoints).
 *
 * Needs CAVRA_DATABASE_URL pointing at a migrated database. The group
 * setup starts cavra-ack with CAVRA_SEQUENCER_INTERVAL_MS=50 and opens a
 * cv_db of its own for cv_chain_verify_db.
 *
 * The database is shared with the tests that run after this one, and the
 * chain covers every event in it. Whole-table checks ("the leaves are 1..N")
 * are safe because ctest runs integration tests serially. The tamper test
 * changes one event with the trigger disabled, in one transaction, and puts
 * the original record back the same way; should an assertion fail between
 * the two, the group teardown restores it.
 *
 * Run: ctest -R integration.chain, or the binary alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ack.pb-c.h"
#include "cv_chain.h"
#include "cv_db.h"
#include "cv_rpc.h"
#include "cv_tlog.h"
#include "cv_test_api.h"
#include "cv_test_proc.h"

#define IT_CHAIN_MS    10000
#define IT_THREADS     8
#define IT_PER_THREAD  20
#define IT_APPEND_ONLY "evidence_events is append-only"

static cv_test_stack it_stack;
static cv_rpc_client *it_cli;
static cv_db it_db;
static char it_dir[64];

/* A second ack process (a second sequencer), while a test runs it. */
static cv_test_stack it_stack2;
static cv_rpc_client *it_cli2;
static int it_stack2_up;

/* The main process runs with CAVRA_SEQUENCER=off, until it is restarted. */
static int it_seq_off;

/* The inner tile test flipped a bit, until it flips it back. */
static bool it_tile_flipped;

/* The event the tamper test changed, until it is restored. */
static char it_tampered_id[32];
static char *it_tampered_record;

/* ---- helpers ---------------------------------------------------------- */

/* Runs sql inside a transaction that is always rolled back, and requires
 * the append-only trigger to refuse it (SQLSTATE 42501). */
/* Runs sql (no parameters) and asserts it fails with SQLSTATE state. */
static void
it_exec_fails(PGconn *conn, const char *sql, const char *state)
{
    PGresult *res;

    cv_test_db_exec(conn, "BEGIN", NULL);
    res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_FATAL_ERROR) {
        PQclear(res);
        cv_test_db_exec(conn, "ROLLBACK", NULL);
        fail_msg("\"%s\" was allowed", sql);
    }
    assert_string_equal(PQresultErrorField(res, PG_DIAG_SQLSTATE), state);
    PQclear(res);
    cv_test_db_exec(conn, "ROLLBACK", NULL);
}

static void
it_exec_refused(PGconn *conn, const char *sql, const char *param)
{
    const char *p[1] = {param};
    PGresult *res;
    const char *state, *msg;

    cv_test_db_exec(conn, "BEGIN", NULL);
    res = PQexecParams(conn, sql, param != NULL ? 1 : 0, NULL,
                       param != NULL ? p : NULL, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_FATAL_ERROR) {
        char tuples[32];

        snprintf(tuples, sizeof(tuples), "%s", PQcmdTuples(res));
        PQclear(res);
        cv_test_db_exec(conn, "ROLLBACK", NULL);
        fail_msg("\"%s\" was allowed (%s rows)", sql, tuples);
    }
    state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    assert_non_null(state);
    assert_non_null(msg);
    assert_string_equal(state, "42501");
    assert_string_equal(msg, strstr(sql, "evidence_leaves") != NULL
                                 ? "evidence_leaves is append-only"
                                 : IT_APPEND_ONLY);
    PQclear(res);
    cv_test_db_exec(conn, "ROLLBACK", NULL);
}

/* Records a plan routing to "slack" through cli; returns its plan id. */
static int
it_try_record_plan(cv_rpc_client *cli, char *plan_id, size_t len, cv_error *err)
{
    Cv__EscalationRoute route = CV__ESCALATION_ROUTE__INIT;
    Cv__RecordPlanReply *rep = NULL;
    int rv;

    route.provider = "slack";
    route.has_severity = 1;
    route.severity = CV__SEVERITY__SEVERITY_CRITICAL;
    rv =
        cv_test_record_plan_call(cli, "chain-test", &route, 1, NULL, &rep, err);
    if (rv == 0) {
        snprintf(plan_id, len, "%s", rep->plan->plan_id);
        protobuf_c_message_free_unpacked(&rep->base, NULL);
    }
    return rv;
}

static void
it_record_plan(char *plan_id, size_t len)
{
    cv_error err;

    CV_TEST_PASS(it_try_record_plan(it_cli, plan_id, len, &err), err);
}

static void
it_ack(const char *plan_id, const char *by)
{
    cv_test_ack_rpc(it_cli, plan_id, "slack", by, 0, NULL, NULL);
}

/* Waits (IT_CHAIN_MS at most) until every event is chained. */
static void
it_wait_chained(void)
{
    long until = cv_test_now_ms() + IT_CHAIN_MS, pending;

    while ((pending = cv_test_count("SELECT count(*) FROM "
                                    "evidence_unsequenced",
                                    NULL)) > 0 &&
           cv_test_now_ms() < until)
        cv_test_sleep_ms(20);
    if (pending != 0)
        fail_msg("%ld events still unchained after %d ms", pending,
                 IT_CHAIN_MS);
}

/* Asserts the leaves are exactly 1..N, one per event over all N events,
 * all of them in the stored Merkle tree; returns N. */
static long
it_assert_gap_free(void)
{
    long n = cv_test_count("SELECT count(*) FROM evidence_events", NULL);

    assert_true(n > 0);
    assert_int_equal(cv_test_count("SELECT count(*) FROM evidence_events e "
                                   "JOIN evidence_leaves l ON l.event_id = "
                                   "e.id",
                                   NULL),
                     n);
    assert_int_equal(
        cv_test_count("SELECT count(*) FROM evidence_leaves", NULL), n);
    assert_int_equal(
        cv_test_count("SELECT min(seq) FROM evidence_leaves", NULL), 1);
    assert_int_equal(
        cv_test_count("SELECT max(seq) FROM evidence_leaves", NULL), n);
    /* Every event is a leaf of the stored tree, and nothing more. */
    assert_int_equal(
        cv_test_count("SELECT idx * 256 + length(hashes) / 32 FROM "
                      "evidence_tiles WHERE level = 0 ORDER BY idx DESC "
                      "LIMIT 1",
                      NULL),
        n);
    return n;
}

/* The root of the stored tree, as hex. */
static void
it_db_head(char out[65])
{
    cv_merkle_hash root;
    int64_t size;
    cv_error err;

    cv_error_clear(&err);
    CV_TEST_PASS(cv_tlog_size(&it_db, &size, &err), err);
    CV_TEST_PASS(cv_tlog_root(&it_db, size, root, &err), err);
    cv_chain_hex(root, out);
}

/* Records a plan, waits until it is chained and the log is gap-free;
 * returns the event count, head gets the root of the stored tree. */
static long
it_fresh_head(char *plan, size_t len, char head[65])
{
    long n;

    it_record_plan(plan, len);
    it_wait_chained();
    n = it_assert_gap_free();
    it_db_head(head);
    return n;
}

static void
it_verify_db(cv_chain_report *report)
{
    cv_error err;

    cv_error_clear(&err);
    memset(report, 0x5a, sizeof(*report));
    /* Verification reads one snapshot, in a transaction its caller owns. */
    CV_TEST_PASS(cv_db_tx_begin(&it_db, CV_TX_READ_SNAPSHOT, &err), err);
    CV_TEST_PASS(cv_chain_verify_db(&it_db, NULL, 0, report, &err), err);
    cv_db_tx_rollback(&it_db);
}

/* Asserts the database chain is valid, complete and N events long. */
static void
it_assert_db_valid(long n)
{
    cv_chain_report report;
    char head[65];

    it_verify_db(&report);
    if (!report.valid)
        fail_msg("chain invalid at %lld: %s",
                 (long long)report.first_invalid_seq, report.reason);
    assert_int_equal(report.events, n);
    assert_int_equal(report.pending, 0);
    assert_int_equal(report.first_invalid_seq, 0);
    it_db_head(head);
    assert_string_equal(report.head, head);
}

/* Reads every line of path into a JSON array of the parsed lines. */
static json_t *
it_load_lines(const char *path)
{
    json_t *lines = json_array();
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;

    assert_non_null(f);
    while (getline(&line, &cap, f) > 0) {
        json_t *doc = json_loads(line, 0, NULL);

        if (doc == NULL)
            fail_msg("export line is not JSON: %s", line);
        json_array_append_new(lines, doc);
    }
    free(line);
    fclose(f);
    return lines;
}

static void
it_write_lines(const char *path, json_t *lines)
{
    FILE *f = fopen(path, "w");
    size_t i;
    json_t *doc;

    assert_non_null(f);
    json_array_foreach(lines, i, doc)
    {
        char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);

        assert_non_null(text);
        fprintf(f, "%s\n", text);
        free(text);
    }
    assert_int_equal(fclose(f), 0);
}

/* Puts back the record the tamper test changed (trigger disabled for the
 * one UPDATE, in one transaction). Returns 0 or -1. */
static int
it_restore_tampered(void)
{
    const char *p[2] = {it_tampered_record, it_tampered_id};
    PGconn *conn;
    PGresult *res;
    int ok;

    if (it_tampered_record == NULL)
        return 0;
    conn = PQconnectdb(cv_test_database_url());
    if (PQstatus(conn) != CONNECTION_OK) {
        PQfinish(conn);
        return -1;
    }
    PQclear(PQexec(conn, "BEGIN"));
    PQclear(PQexec(conn, "ALTER TABLE evidence_events DISABLE TRIGGER "
                         "evidence_events_append_only"));
    res = PQexecParams(conn,
                       "UPDATE evidence_events SET record = $1::jsonb WHERE "
                       "id = $2::bigint",
                       2, NULL, p, NULL, NULL, 0);
    ok = PQresultStatus(res) == PGRES_COMMAND_OK &&
         strcmp(PQcmdTuples(res), "1") == 0;
    PQclear(res);
    PQclear(PQexec(conn, "ALTER TABLE evidence_events ENABLE TRIGGER "
                         "evidence_events_append_only"));
    res = PQexec(conn, ok ? "COMMIT" : "ROLLBACK");
    ok = ok && PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    PQfinish(conn);
    if (!ok) {
        fprintf(stderr, "chain_test: could not restore evidence event %s\n",
                it_tampered_id);
        return -1;
    }
    free(it_tampered_record);
    it_tampered_record = NULL;
    return 0;
}

/* Flips the lowest bit of the first stored level 1 node (the root of
 * leaves 0..255), as the owner around the trigger; a second call puts it
 * back. Returns 0 or -1 (no cmocka: the teardown calls it too). */
static int
it_flip_inner_tile(void)
{
    static const char *const steps[] = {
        "BEGIN",
        "ALTER TABLE evidence_tiles DISABLE TRIGGER USER",
        "UPDATE evidence_tiles SET hashes = set_byte(hashes, 0, "
        "get_byte(hashes, 0) # 1) WHERE level = 1 AND idx = 0",
        "ALTER TABLE evidence_tiles ENABLE TRIGGER USER",
        "COMMIT",
    };
    PGconn *conn = PQconnectdb(cv_test_database_url());
    int rv = 0;

    if (PQstatus(conn) != CONNECTION_OK)
        rv = -1;
    for (size_t i = 0; rv == 0 && i < sizeof(steps) / sizeof(steps[0]); i++) {
        PGresult *res = PQexec(conn, steps[i]);

        if (PQresultStatus(res) != PGRES_COMMAND_OK ||
            (i == 2 && strcmp(PQcmdTuples(res), "1") != 0)) {
            fprintf(stderr, "chain_test: %s: %s\n", steps[i],
                    PQresultErrorMessage(res));
            rv = -1;
        }
        PQclear(res);
    }
    PQfinish(conn);
    if (rv == 0)
        it_tile_flipped = !it_tile_flipped;
    return rv;
}

static void
it_stack2_stop(void)
{
    if (!it_stack2_up)
        return;
    cv_rpc_client_close(it_cli2);
    it_cli2 = NULL;
    it_stack2_up = 0;
    assert_int_equal(cv_test_stack_stop(&it_stack2), 0);
}

/* ---- setup ------------------------------------------------------------ */

static int
it_setup(void **state)
{
    const char *url = cv_test_database_url();
    cv_error err;

    (void)state;
    if (url == NULL) {
        fprintf(stderr, "CAVRA_DATABASE_URL is not set\n");
        return -1;
    }
    snprintf(it_dir, sizeof(it_dir), "/tmp/cv-chain-test-XXXXXX");
    if (mkdtemp(it_dir) == NULL) {
        perror("mkdtemp");
        return -1;
    }
    /* Before any thread starts: the children inherit our environment. */
    unsetenv("CAVRA_SEQUENCER");
    setenv("CAVRA_SEQUENCER_INTERVAL_MS", "50", 1);
    cv_error_clear(&err);
    if (cv_db_init(&it_db, url, NULL, 0, &err) != 0 ||
        cv_db_ensure(&it_db, &err) != 0) {
        fprintf(stderr, "cannot open the database: %s\n", err.msg);
        cv_db_fini(&it_db);
        return -1;
    }
    if (cv_test_stack_start(&it_stack, CV_STACK_ACK) != 0) {
        cv_db_fini(&it_db);
        return -1;
    }
    if (cv_test_client_open(it_stack.ack_url, &it_cli) != 0) {
        cv_test_stack_stop(&it_stack);
        cv_db_fini(&it_db);
        return -1;
    }
    return 0;
}

/* After every test, pass or fail: the shared database gets its original
 * record back, the second process stops, and the main one runs with its
 * sequencer again. */
static int
it_test_teardown(void **state)
{
    int rv = 0;

    (void)state;
    if (it_restore_tampered() != 0)
        rv = -1;
    if (it_tile_flipped && it_flip_inner_tile() != 0)
        rv = -1;
    if (it_stack2_up) {
        cv_rpc_client_close(it_cli2);
        it_cli2 = NULL;
        it_stack2_up = 0;
        if (cv_test_stack_stop(&it_stack2) != 0)
            rv = -1;
    }
    if (it_seq_off) {
        cv_error err;

        unsetenv("CAVRA_SEQUENCER");
        cv_rpc_client_close(it_cli);
        it_cli = NULL;
        cv_test_stack_stop(&it_stack);
        it_seq_off = 0;
        cv_error_clear(&err);
        if (cv_test_stack_start(&it_stack, CV_STACK_ACK) != 0 ||
            cv_rpc_client_open(it_stack.ack_url, &it_cli, &err) != 0)
            rv = -1;
    }
    return rv;
}

static int
it_teardown(void **state)
{
    char path[128];
    int rv = 0;

    (void)state;
    if (it_test_teardown(state) != 0)
        rv = -1;
    cv_rpc_client_close(it_cli);
    it_cli = NULL;
    if (cv_test_stack_stop(&it_stack) != 0) {
        fprintf(stderr, "cavra-ack did not stop cleanly\n");
        rv = -1;
    }
    cv_db_fini(&it_db);
    snprintf(path, sizeof(path), "%s/verify.out", it_dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/export.jsonl", it_dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/tampered.jsonl", it_dir);
    unlink(path);
    rmdir(it_dir);
    return rv;
}

/* ---- tests ------------------------------------------------------------ */

static void
test_chain_sequencer_chains_everything(void **state)
{
    char plans[3][128];
    long before, n;

    (void)state;
    before = cv_test_count("SELECT count(*) FROM evidence_events", NULL);
    for (int i = 0; i < 3; i++) {
        it_record_plan(plans[i], sizeof(plans[i]));
        it_ack(plans[i], "alice");
    }
    it_ack(plans[0], "bob");
    it_wait_chained();
    n = it_assert_gap_free();
    assert_int_equal(n, before + 7);
    /* Our events are in the chain, after what was there before. */
    assert_int_equal(cv_test_count("SELECT count(*) FROM evidence_events e "
                                   "JOIN evidence_leaves l ON l.event_id = "
                                   "e.id WHERE e.plan_id = $1",
                                   plans[0]),
                     3);
    it_assert_db_valid(n);
}

static void
test_chain_append_only(void **state)
{
    char plan[128], id[32];
    PGconn *conn;
    long n;

    (void)state;
    it_record_plan(plan, sizeof(plan));
    it_wait_chained();
    snprintf(id, sizeof(id), "%ld",
             cv_test_count("SELECT id FROM evidence_events WHERE plan_id = $1",
                           plan));
    conn = cv_test_db_connect();
    it_exec_refused(conn,
                    "UPDATE evidence_events SET record = jsonb_set(record, "
                    "'{generated_by}', '\"mallory\"') WHERE id = $1::bigint",
                    id);
    it_exec_refused(conn,
                    "UPDATE evidence_events SET actor = 'mallory' WHERE id = "
                    "$1::bigint",
                    id);
    /* No UPDATE at all, of the old chain columns either (migration 0017:
     * positions live in evidence_leaves), and leaves never change. */
    it_exec_refused(conn,
                    "UPDATE evidence_events SET hash = prev_hash WHERE id = "
                    "$1::bigint",
                    id);
    it_exec_refused(conn,
                    "UPDATE evidence_events SET chain_seq = NULL, hash = NULL,"
                    " prev_hash = NULL WHERE id = $1::bigint",
                    id);
    it_exec_refused(conn,
                    "UPDATE evidence_leaves SET event_id = event_id WHERE "
                    "event_id = $1::bigint",
                    id);
    it_exec_refused(
        conn, "DELETE FROM evidence_leaves WHERE event_id = $1::bigint", id);
    it_exec_refused(conn, "TRUNCATE evidence_leaves", NULL);
    /* A leaf must continue the log: no position past the end, none
     * twice. */
    it_exec_fails(conn,
                  "INSERT INTO evidence_leaves (seq, event_id) SELECT "
                  "max(seq) + 2, -1 FROM evidence_leaves",
                  "23514");
    it_exec_fails(conn,
                  "INSERT INTO evidence_leaves (seq, event_id) SELECT "
                  "max(seq), -1 FROM evidence_leaves",
                  "23505");
    it_exec_refused(conn, "DELETE FROM evidence_events WHERE id = $1::bigint",
                    id);
    it_exec_refused(conn, "DELETE FROM evidence_events", NULL);
    it_exec_refused(conn, "TRUNCATE evidence_events", NULL);
    PQfinish(conn);
    /* Nothing changed. */
    assert_int_equal(
        cv_test_count("SELECT count(*) FROM evidence_events WHERE id "
                      "= $1::bigint AND record->>'generated_by' = "
                      "'chain-test' AND id IN (SELECT event_id FROM "
                      "evidence_leaves)",
                      id),
        1);
    n = it_assert_gap_free();
    it_assert_db_valid(n);
}

static void
test_chain_cli_verify_db(void **state)
{
    char plan[128], head[65];
    json_t *doc = NULL;
    long n;

    (void)state;
    n = it_fresh_head(plan, sizeof(plan), head);

    /* The URL from the environment. */
    assert_int_equal(cv_test_run_tool("cavra-verify", it_dir, &doc, NULL), 0);
    assert_non_null(doc);
    assert_true(json_is_true(json_object_get(doc, "valid")));
    assert_int_equal(json_integer_value(json_object_get(doc, "events")), n);
    assert_string_equal(json_string_value(json_object_get(doc, "head")), head);
    assert_string_equal(json_string_value(json_object_get(doc, "algorithm")),
                        CV_CHAIN_ALGORITHM);
    assert_null(json_object_get(doc, "first_invalid_seq"));
    assert_null(json_object_get(doc, "pending"));
    json_decref(doc);

    /* The URL given. */
    assert_int_equal(cv_test_run_tool("cavra-verify", it_dir, &doc,
                                      "--database-url", cv_test_database_url(),
                                      NULL),
                     0);
    assert_non_null(doc);
    assert_true(json_is_true(json_object_get(doc, "valid")));
    assert_int_equal(json_integer_value(json_object_get(doc, "events")), n);
    json_decref(doc);
}

static void
test_chain_cli_errors(void **state)
{
    char missing[128];

    (void)state;
    snprintf(missing, sizeof(missing), "%s/no-such-export.jsonl", it_dir);
    assert_int_equal(
        cv_test_run_tool("cavra-verify", it_dir, NULL, "--file", missing, NULL),
        2);
    assert_int_equal(
        cv_test_run_tool("cavra-verify", it_dir, NULL, "--bogus", NULL), 2);
    assert_int_equal(
        cv_test_run_tool("cavra-verify", it_dir, NULL, "--file", NULL), 2);
    assert_int_equal(
        cv_test_run_tool("cavra-verify", it_dir, NULL, "--database-url",
                         "postgresql://nobody@127.0.0.1:1/none", NULL),
        2);
}

static void
test_chain_cli_export_and_file(void **state)
{
    char path[128], tampered[128], head[65], plan[128];
    cv_chain_report report;
    json_t *doc = NULL, *lines, *event;
    FILE *f;
    long n;

    (void)state;
    n = it_fresh_head(plan, sizeof(plan), head);
    snprintf(path, sizeof(path), "%s/export.jsonl", it_dir);
    assert_int_equal(
        cv_test_run_tool("cavra-verify", it_dir, NULL, "--export", path, NULL),
        0);

    /* One line per event, in chain order, ending at the head. */
    lines = it_load_lines(path);
    assert_int_equal(json_array_size(lines), n);
    for (size_t i = 0; i < json_array_size(lines); i++) {
        json_t *l = json_array_get(lines, i);

        assert_int_equal(json_integer_value(json_object_get(
                             json_object_get(l, "event"), "seq")),
                         (json_int_t)i + 1);
    }
    /* Each line's leaf hash is its event's. */
    for (size_t i = 0; i < json_array_size(lines); i++) {
        json_t *l = json_array_get(lines, i);
        char *text = json_dumps(json_object_get(l, "event"),
                                JSON_COMPACT | JSON_SORT_KEYS);
        cv_merkle_hash leaf;
        char hex[65];

        assert_non_null(text);
        cv_chain_leaf(text, leaf);
        cv_chain_hex(leaf, hex);
        free(text);
        assert_string_equal(json_string_value(json_object_get(l, "leaf_hash")),
                            hex);
    }

    /* Offline, with the tool and with the library. */
    assert_int_equal(
        cv_test_run_tool("cavra-verify", it_dir, &doc, "--file", path, NULL),
        0);
    assert_non_null(doc);
    assert_true(json_is_true(json_object_get(doc, "valid")));
    assert_int_equal(json_integer_value(json_object_get(doc, "events")), n);
    assert_string_equal(json_string_value(json_object_get(doc, "head")), head);
    json_decref(doc);
    f = fopen(path, "r");
    assert_non_null(f);
    assert_int_equal(cv_chain_verify_file(f, NULL, 0, &report), 0);
    fclose(f);
    assert_true(report.valid);
    assert_int_equal(report.events, n);
    assert_string_equal(report.head, head);

    /* An edited copy of the export fails offline at the edited line. */
    event = json_object_get(json_array_get(lines, (size_t)n - 1), "event");
    json_object_set_new(event, "actor", json_string("mallory"));
    snprintf(tampered, sizeof(tampered), "%s/tampered.jsonl", it_dir);
    it_write_lines(tampered, lines);
    json_decref(lines);
    assert_int_equal(cv_test_run_tool("cavra-verify", it_dir, &doc, "--file",
                                      tampered, NULL),
                     1);
    assert_non_null(doc);
    assert_true(json_is_false(json_object_get(doc, "valid")));
    assert_int_equal(
        json_integer_value(json_object_get(doc, "first_invalid_seq")), n);
    assert_int_equal(json_integer_value(json_object_get(doc, "events")), n - 1);
    assert_non_null(json_string_value(json_object_get(doc, "reason")));
    json_decref(doc);
}

static void
test_chain_tamper_detected(void **state)
{
    char plan[128], seqtext[32], path[128];
    cv_chain_report report;
    json_t *doc = NULL;
    PGconn *conn;
    PGresult *res;
    long seq, n;

    (void)state;
    it_record_plan(plan, sizeof(plan));
    it_ack(plan, "carol"); /* so the tampered event is not the head */
    it_wait_chained();
    n = it_assert_gap_free();
    it_assert_db_valid(n);

    conn = cv_test_db_connect();
    {
        const char *p[1] = {plan};

        res = PQexecParams(conn,
                           "SELECT e.id, l.seq, e.record::text FROM "
                           "evidence_events e JOIN evidence_leaves l ON "
                           "l.event_id = e.id WHERE e.plan_id = $1 AND "
                           "e.kind = 'recovery_escalation_plan'",
                           1, NULL, p, NULL, NULL, 0);
    }
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(res), 1);
    snprintf(it_tampered_id, sizeof(it_tampered_id), "%s",
             PQgetvalue(res, 0, 0));
    seq = strtol(PQgetvalue(res, 0, 1), NULL, 10);
    assert_true(seq >= 1 && seq < n);
    snprintf(seqtext, sizeof(seqtext), "%ld", seq);
    it_tampered_record = strdup(PQgetvalue(res, 0, 2));
    assert_non_null(it_tampered_record);
    PQclear(res);

    /* The owner goes around the trigger, in one transaction. */
    cv_test_db_exec(conn, "BEGIN", NULL);
    cv_test_db_exec(conn,
                    "ALTER TABLE evidence_events DISABLE TRIGGER "
                    "evidence_events_append_only",
                    NULL);
    cv_test_db_exec(conn,
                    "UPDATE evidence_events SET record = jsonb_set(record, "
                    "'{generated_by}', '\"mallory\"') WHERE id = $1::bigint",
                    it_tampered_id);
    cv_test_db_exec(conn,
                    "ALTER TABLE evidence_events ENABLE TRIGGER "
                    "evidence_events_append_only",
                    NULL);
    cv_test_db_exec(conn, "COMMIT", NULL);
    PQfinish(conn);
    assert_int_equal(cv_test_count("SELECT count(*) FROM evidence_events e "
                                   "JOIN evidence_leaves l ON l.event_id = "
                                   "e.id WHERE l.seq = $1::bigint AND "
                                   "e.record->>'generated_by' = 'mallory'",
                                   seqtext),
                     1);

    /* The library names the changed event. */
    it_verify_db(&report);
    assert_false(report.valid);
    assert_int_equal(report.first_invalid_seq, seq);
    assert_int_equal(report.events, seq - 1);
    if (strstr(report.reason, "was changed after it was sequenced") == NULL ||
        strstr(report.reason, plan) == NULL)
        fail_msg("unexpected reason: %s", report.reason);

    /* So does the tool, from the database and from an export. */
    assert_int_equal(cv_test_run_tool("cavra-verify", it_dir, &doc, NULL), 1);
    assert_non_null(doc);
    assert_true(json_is_false(json_object_get(doc, "valid")));
    assert_int_equal(
        json_integer_value(json_object_get(doc, "first_invalid_seq")), seq);
    assert_string_equal(json_string_value(json_object_get(doc, "reason")),
                        report.reason);
    json_decref(doc);
    snprintf(path, sizeof(path), "%s/export.jsonl", it_dir);
    assert_int_equal(
        cv_test_run_tool("cavra-verify", it_dir, NULL, "--export", path, NULL),
        0);
    assert_int_equal(
        cv_test_run_tool("cavra-verify", it_dir, &doc, "--file", path, NULL),
        1);
    assert_non_null(doc);
    assert_int_equal(
        json_integer_value(json_object_get(doc, "first_invalid_seq")), seq);
    json_decref(doc);

    /* Put the original back: the chain is valid again. */
    assert_int_equal(it_restore_tampered(), 0);
    assert_int_equal(cv_test_count("SELECT count(*) FROM evidence_events e "
                                   "JOIN evidence_leaves l ON l.event_id = "
                                   "e.id WHERE l.seq = $1::bigint AND "
                                   "e.record->>'generated_by' = 'chain-test'",
                                   seqtext),
                     1);
    it_wait_chained();
    n = it_assert_gap_free();
    it_assert_db_valid(n);
    assert_int_equal(cv_test_run_tool("cavra-verify", it_dir, NULL, NULL), 0);
    /* The trigger is back on. */
    conn = cv_test_db_connect();
    it_exec_refused(conn, "DELETE FROM evidence_events WHERE id = $1::bigint",
                    it_tampered_id);
    PQfinish(conn);
}

typedef struct it_writer {
    pthread_barrier_t *barrier;
    cv_rpc_client *cli;
    int done;
    int rv;
    char msg[CV_ERROR_MSG_MAX];
} it_writer;

static void *
it_writer_main(void *arg)
{
    it_writer *w = arg;
    char plan[128];
    cv_error err;

    pthread_barrier_wait(w->barrier);
    for (int i = 0; i < IT_PER_THREAD; i++) {
        if ((w->rv = it_try_record_plan(w->cli, plan, sizeof(plan), &err)) !=
            0) {
            snprintf(w->msg, sizeof(w->msg), "%s", err.msg);
            break;
        }
        w->done++;
    }
    return NULL;
}

/* IT_THREADS writers x IT_PER_THREAD plans, writer i through clis[i % 2],
 * while the sequencers run; then the chain must be complete and valid. */
static void
it_concurrent_writes(cv_rpc_client *const clis[2])
{
    pthread_barrier_t barrier;
    pthread_t th[IT_THREADS];
    it_writer w[IT_THREADS];
    long before, n;

    before = cv_test_count("SELECT count(*) FROM evidence_events", NULL);
    pthread_barrier_init(&barrier, NULL, IT_THREADS);
    for (int i = 0; i < IT_THREADS; i++) {
        memset(&w[i], 0, sizeof(w[i]));
        w[i].barrier = &barrier;
        w[i].cli = clis[i % 2];
        assert_int_equal(pthread_create(&th[i], NULL, it_writer_main, &w[i]),
                         0);
    }
    for (int i = 0; i < IT_THREADS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&barrier);
    for (int i = 0; i < IT_THREADS; i++)
        if (w[i].rv != 0 || w[i].done != IT_PER_THREAD)
            fail_msg("writer %d stopped after %d plans: %d %s", i, w[i].done,
                     w[i].rv, w[i].msg);
    it_wait_chained();
    n = it_assert_gap_free();
    assert_int_equal(n, before + IT_THREADS * IT_PER_THREAD);
    it_assert_db_valid(n);
    assert_int_equal(cv_test_run_tool("cavra-verify", it_dir, NULL, NULL), 0);
}

static void
test_chain_concurrent_writes(void **state)
{
    cv_rpc_client *const clis[2] = {it_cli, it_cli};

    (void)state;
    it_concurrent_writes(clis);
}

static void
test_chain_two_sequencers(void **state)
{
    cv_error err;

    (void)state;
    /* A second ack process: a second sequencer on the same chain. */
    assert_int_equal(cv_test_stack_start(&it_stack2, CV_STACK_ACK), 0);
    it_stack2_up = 1;
    cv_error_clear(&err);
    CV_TEST_PASS(cv_rpc_client_open(it_stack2.ack_url, &it_cli2, &err), err);
    {
        cv_rpc_client *const clis[2] = {it_cli, it_cli2};

        it_concurrent_writes(clis);
    }
    /* Sequencer rounds never fail: with the chain lock, a second
     * sequencer skips the round instead of racing the first. */
    assert_int_equal(
        cv_test_stack_log_count(&it_stack, "ack", "SEQ-ROUND", true), 0);
    assert_int_equal(
        cv_test_stack_log_count(&it_stack2, "ack", "SEQ-ROUND", true), 0);
    it_stack2_stop();
}

static void
test_chain_sequencer_off_then_backlog(void **state)
{
    char plan[128];
    cv_error err;
    long n;
    int rv;

    (void)state;
    /* Only a process with CAVRA_SEQUENCER=off runs: nothing is chained. */
    cv_rpc_client_close(it_cli);
    it_cli = NULL;
    it_seq_off = 1;
    assert_int_equal(cv_test_stack_stop(&it_stack), 0);
    setenv("CAVRA_SEQUENCER", "off", 1);
    rv = cv_test_stack_start(&it_stack, CV_STACK_ACK);
    unsetenv("CAVRA_SEQUENCER");
    assert_int_equal(rv, 0);
    cv_error_clear(&err);
    CV_TEST_PASS(cv_rpc_client_open(it_stack.ack_url, &it_cli, &err), err);
    it_record_plan(plan, sizeof(plan));
    cv_test_sleep_ms(500); /* ten sequencer periods */
    assert_int_equal(cv_test_count("SELECT count(*) FROM "
                                   "evidence_unsequenced WHERE plan_id = $1",
                                   plan),
                     1);

    /* A process with the sequencer on chains the backlog. */
    assert_int_equal(cv_test_stack_start(&it_stack2, CV_STACK_ACK), 0);
    it_stack2_up = 1;
    it_wait_chained();
    n = it_assert_gap_free();
    it_assert_db_valid(n);
    it_stack2_stop();
}

/* The stored tree's inner nodes (tiles of level 1 and up) are only
 * checked through its root: one flipped bit there is found, though every
 * event still matches its leaf. */
static void
test_chain_inner_tile_tamper_detected(void **state)
{
    cv_chain_report report;
    json_t *doc = NULL;
    char plan[128];
    long n;

    (void)state;
    /* A level 1 tile exists once the tree has 256 leaves. */
    it_record_plan(plan, sizeof(plan));
    while (cv_test_count("SELECT count(*) FROM evidence_events", NULL) < 260)
        for (int i = 0; i < 20; i++)
            it_ack(plan, "dave");
    it_wait_chained();
    n = it_assert_gap_free();
    it_assert_db_valid(n);
    assert_int_equal(cv_test_count("SELECT count(*) FROM evidence_tiles "
                                   "WHERE level = 1 AND idx = 0",
                                   NULL),
                     1);

    assert_int_equal(it_flip_inner_tile(), 0);
    it_verify_db(&report);
    assert_false(report.valid);
    if (strstr(report.reason, "tiles were altered") == NULL)
        fail_msg("unexpected reason: %s", report.reason);
    assert_int_equal(report.events, n); /* every leaf matched its event */
    assert_int_equal(report.first_invalid_seq, 1);
    assert_int_equal(cv_test_run_tool("cavra-verify", it_dir, &doc, NULL), 1);
    assert_non_null(doc);
    assert_true(json_is_false(json_object_get(doc, "valid")));
    assert_string_equal(json_string_value(json_object_get(doc, "reason")),
                        report.reason);
    json_decref(doc);

    /* Flipped back, the log verifies again. */
    assert_int_equal(it_flip_inner_tile(), 0);
    assert_false(it_tile_flipped);
    it_assert_db_valid(n);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_chain_sequencer_chains_everything,
                                  it_test_teardown),
        cmocka_unit_test_teardown(test_chain_append_only, it_test_teardown),
        cmocka_unit_test_teardown(test_chain_cli_verify_db, it_test_teardown),
        cmocka_unit_test_teardown(test_chain_cli_errors, it_test_teardown),
        cmocka_unit_test_teardown(test_chain_cli_export_and_file,
                                  it_test_teardown),
        cmocka_unit_test_teardown(test_chain_tamper_detected, it_test_teardown),
        cmocka_unit_test_teardown(test_chain_inner_tile_tamper_detected,
                                  it_test_teardown),
        cmocka_unit_test_teardown(test_chain_concurrent_writes,
                                  it_test_teardown),
        cmocka_unit_test_teardown(test_chain_two_sequencers, it_test_teardown),
        cmocka_unit_test_teardown(test_chain_sequencer_off_then_backlog,
                                  it_test_teardown),
    };

    return cmocka_run_group_tests_name("chain", tests, it_setup, it_teardown);
}
