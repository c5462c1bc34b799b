/*
 * chain_batch_test.c -- the evidence sequencer's batches (lib/cv_chain.c):
 * one statement gives a batch its positions and returns the events, and
 * the tile rows a batch completes or grows are written once per batch. A
 * backlog larger than one batch, chained in batches whose boundaries fall
 * inside tiles (and with the frontier reloaded from partial tiles between
 * two of them), must give exactly the tree a verifier recomputes: gap-free
 * positions in id order, full tiles of 256 hashes, every level-8 node in
 * the level 1 tiles once, and cv_chain_verify_db valid.
 *
 * Needs CAVRA_DATABASE_URL (the services' login: the sequencer runs as it)
 * and, through CAVRA_TEST_OWNER_DATABASE_URL, the owner to insert the
 * backlog. The database is shared with the tests that run after this one;
 * ctest runs integration tests serially, so nothing else sequences
 * meanwhile, and everything this test adds is a valid part of the log.
 *
 * Run: ctest -R integration.chain_batch, or the binary alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cv_chain.h"
#include "cv_db.h"
#include "cv_test_stack.h"
#include "cv_tlog.h"

#define CB_BACKLOG 1500

static cv_db cb_db;
static PGconn *cb_owner;

#define CB_PASS(rv, err)                                                       \
    do {                                                                       \
        int cb_rv_ = (rv);                                                     \
        if (cb_rv_ != 0)                                                       \
            fail_msg("failed with code %d: %s", cb_rv_, (err).msg);            \
    } while (0)

/* One number from the owner's connection (up to two parameters). */
static int64_t
cb_count2(const char *sql, const char *param, const char *param2)
{
    const char *p[2] = {param, param2};
    int np = param2 != NULL ? 2 : param != NULL ? 1 : 0;
    PGresult *res =
        PQexecParams(cb_owner, sql, np, NULL, np > 0 ? p : NULL, NULL, NULL, 0);
    int64_t n;

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        char msg[512];

        snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(res));
        PQclear(res);
        fail_msg("%s: %s", sql, msg);
    }
    n = PQgetisnull(res, 0, 0) ? -1 : strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return n;
}

static int64_t
cb_count(const char *sql, const char *param)
{
    return cb_count2(sql, param, NULL);
}

/* Sequences whatever is pending, in the default batch size. */
static void
cb_drain(cv_chain_sequencer *st)
{
    cv_error err;
    int chained;

    do {
        cv_error_clear(&err);
        CB_PASS(cv_chain_sequence_with(&cb_db, st, 5000, &chained, &err), err);
    } while (chained > 0);
}

static int64_t
cb_tree_size(void)
{
    cv_error err;
    int64_t size;

    cv_error_clear(&err);
    CB_PASS(cv_tlog_size(&cb_db, &size, &err), err);
    return size;
}

static void
cb_assert_valid(int64_t size)
{
    cv_chain_report report;
    cv_error err;

    cv_error_clear(&err);
    CB_PASS(cv_db_tx_begin(&cb_db, CV_TX_READ_SNAPSHOT, &err), err);
    CB_PASS(cv_chain_verify_db(&cb_db, NULL, 0, &report, &err), err);
    cv_db_tx_rollback(&cb_db);
    if (!report.valid)
        fail_msg("log not valid at %" PRId64 ": %s", report.first_invalid_seq,
                 report.reason);
    assert_int_equal(report.events, size);
    assert_int_equal(report.tree_size, size);
    assert_int_equal(report.pending, 0);
}

/* The tile rows hold the tree of `size` leaves exactly: full level 0
 * tiles but the last, and floor(size / 256) level-8 nodes in level 1. */
static void
cb_assert_tiles(int64_t size)
{
    char n[24];

    snprintf(n, sizeof(n), "%" PRId64, size);
    assert_int_equal(cb_count("SELECT count(*) FROM evidence_tiles WHERE "
                              "level = 0",
                              NULL),
                     (size + 255) / 256);
    assert_int_equal(cb_count("SELECT coalesce(sum(length(hashes) / 32), 0) "
                              "FROM evidence_tiles WHERE level = 0",
                              NULL),
                     size);
    assert_int_equal(cb_count("SELECT count(*) FROM evidence_tiles WHERE "
                              "level = 0 AND length(hashes) < 8192 AND "
                              "idx < $1::bigint / 256",
                              n),
                     0);
    assert_int_equal(cb_count("SELECT coalesce(sum(length(hashes) / 32), 0) "
                              "FROM evidence_tiles WHERE level = 1",
                              NULL),
                     size / 256);
}

static void
test_chain_batch_backlog_in_odd_batches(void **state)
{
    /* Batch sizes whose boundaries fall inside tiles, one of them larger
     * than a tile, one a whole tile from an odd start. */
    static const int batches[] = {1, 7, 300, 256, 2, 511, 254};
    cv_chain_sequencer st = {0};
    cv_error err;
    char tag[64], base[24], count[24];
    int64_t size0, left = CB_BACKLOG;
    int chained;
    size_t b = 0;
    PGresult *res;

    (void)state;
    cb_drain(&st);
    size0 = cb_tree_size();
    /* Start at an odd position inside a tile, whatever came before. */
    snprintf(tag, sizeof(tag), "chain-batch-%ld-%ld", (long)getpid(),
             (long)time(NULL));
    snprintf(count, sizeof(count), "%d", CB_BACKLOG);
    {
        const char *p[2] = {tag, count};

        res = PQexecParams(
            cb_owner,
            "INSERT INTO evidence_events (kind, record_id, plan_id, provider,"
            " actor, request_id, created_at, record) SELECT"
            " 'recovery_escalation_ack', $1 || '-' || g, $1, 'slack',"
            " 'chain-batch', $1, now(), jsonb_build_object('n', g, 'tag', $1,"
            " 'notes', 'caf\u00e9 \"quoted\" \\ tab\t', 'nested',"
            " jsonb_build_object('z', 1, 'a', jsonb_build_array(g, null)))"
            " FROM generate_series(1, $2::int) g",
            2, NULL, p, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            fail_msg("seeding: %s", PQresultErrorMessage(res));
        PQclear(res);
    }
    while (left > 0) {
        int want = batches[b % (sizeof(batches) / sizeof(batches[0]))];

        cv_error_clear(&err);
        /* Now and then from a fresh frontier, loaded from the tiles (a
         * partial tile at each level). */
        CB_PASS(cv_chain_sequence_with(&cb_db, b % 3 == 2 ? NULL : &st, want,
                                       &chained, &err),
                err);
        assert_int_equal(chained, want < left ? want : left);
        left -= chained;
        b++;
        assert_int_equal(cb_tree_size(), size0 + CB_BACKLOG - left);
    }
    cv_error_clear(&err);
    CB_PASS(cv_chain_sequence_with(&cb_db, &st, 500, &chained, &err), err);
    assert_int_equal(chained, 0);
    /* Positions: gap-free, in id order, right after what was there. */
    snprintf(base, sizeof(base), "%" PRId64, size0);
    assert_int_equal(cb_count("SELECT min(l.seq) FROM evidence_events e "
                              "JOIN evidence_leaves l ON l.event_id = e.id "
                              "WHERE e.request_id = $1",
                              tag),
                     size0 + 1);
    assert_int_equal(
        cb_count2("SELECT count(*) FROM (SELECT l.seq, "
                  "row_number() OVER (ORDER BY e.id) AS k FROM "
                  "evidence_events e LEFT JOIN evidence_leaves l ON "
                  "l.event_id = e.id WHERE e.request_id = $1) s "
                  "WHERE seq IS DISTINCT FROM $2::bigint + k",
                  tag, base),
        0);
    cb_assert_tiles(size0 + CB_BACKLOG);
    cb_assert_valid(size0 + CB_BACKLOG);
}

/* Inserts one event on conn (inside whatever transaction it has open). */
static void
cb_insert(PGconn *conn, const char *tag, const char *what)
{
    const char *p[2] = {tag, what};
    PGresult *res = PQexecParams(
        conn,
        "INSERT INTO evidence_events (kind, record_id, plan_id, provider,"
        " actor, request_id, created_at, record) VALUES"
        " ('recovery_escalation_ack', $1 || '-' || $2, $1, 'slack',"
        " 'chain-batch', $1, now(), jsonb_build_object('what', $2))",
        2, NULL, p, NULL, NULL, 0);

    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        fail_msg("insert: %s", PQresultErrorMessage(res));
    PQclear(res);
}

static int64_t
cb_unsequenced(const char *tag)
{
    return cb_count("SELECT count(*) FROM evidence_unsequenced WHERE "
                    "request_id = $1",
                    tag);
}

/* Ids are taken in one order and committed in another: an event whose
 * transaction commits after later ids were sequenced, and after many
 * sequencer rounds, still gets its leaf (the floor waits for it); once
 * nothing is open any more the floor catches up with the last id, so the
 * search stays short. */
static void
test_chain_batch_late_commit_below_sequenced(void **state)
{
    cv_chain_sequencer st = {0};
    PGconn *late;
    char tag[64], late_id[24];
    int64_t last_id;
    PGresult *res;

    (void)state;
    cb_drain(&st);
    snprintf(tag, sizeof(tag), "chain-late-%ld-%ld", (long)getpid(),
             (long)time(NULL));
    late = PQconnectdb(cv_test_database_url());
    assert_int_equal(PQstatus(late), CONNECTION_OK);
    res = PQexec(late, "BEGIN");
    PQclear(res);
    cb_insert(late, tag, "late");
    res = PQexec(late, "SELECT max(id) FROM evidence_events");
    snprintf(late_id, sizeof(late_id), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    /* Later ids commit first and are sequenced, round after round. */
    for (int i = 0; i < 5; i++) {
        char what[16];

        snprintf(what, sizeof(what), "early-%d", i);
        cb_insert(cb_owner, tag, what);
        cb_drain(&st);
        assert_int_equal(cb_unsequenced(tag), 0);
        assert_true(st.floor < strtoll(late_id, NULL, 10));
    }
    res = PQexec(late, "COMMIT");
    assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);
    PQfinish(late);
    assert_int_equal(cb_unsequenced(tag), 1);
    cb_drain(&st);
    assert_int_equal(cb_unsequenced(tag), 0);
    /* Its leaf comes after those of the later ids. */
    assert_int_equal(
        cb_count("SELECT l.seq FROM evidence_leaves l WHERE l.event_id = "
                 "$1::bigint",
                 late_id),
        cb_count("SELECT max(seq) FROM evidence_leaves", NULL));
    /* With nothing open, two more rounds bring the floor up to the last
     * id (the first sets a horizon, the second sees it passed). */
    last_id = cb_count("SELECT max(id) FROM evidence_events", NULL);
    for (int i = 0; i < 3 && st.floor < last_id; i++)
        cb_drain(&st);
    assert_int_equal(st.floor, last_id);
    /* A restarted sequencer starts from the floor the last batch
     * recorded. */
    cb_insert(cb_owner, tag, "after");
    cb_drain(&st);
    {
        cv_chain_sequencer fresh = {0};

        cb_drain(&fresh);
        assert_true(fresh.floor_loaded);
        assert_int_equal(fresh.floor, last_id);
    }
    assert_int_equal(cb_unsequenced(tag), 0);
    cb_assert_valid(cb_tree_size());
}

static int
cb_setup(void **state)
{
    const char *url = getenv("CAVRA_DATABASE_URL");
    cv_error err;

    (void)state;
    if (url == NULL || cv_test_database_url() == NULL) {
        fprintf(stderr, "CAVRA_DATABASE_URL is not set\n");
        return -1;
    }
    cb_owner = PQconnectdb(cv_test_database_url());
    if (PQstatus(cb_owner) != CONNECTION_OK) {
        fprintf(stderr, "cannot connect: %s", PQerrorMessage(cb_owner));
        PQfinish(cb_owner);
        return -1;
    }
    cv_error_clear(&err);
    if (cv_db_init(&cb_db, url, NULL, 0, &err) != 0 ||
        cv_db_ensure(&cb_db, &err) != 0) {
        fprintf(stderr, "cannot open the database: %s\n", err.msg);
        cv_db_fini(&cb_db);
        PQfinish(cb_owner);
        return -1;
    }
    return 0;
}

static int
cb_teardown(void **state)
{
    (void)state;
    cv_db_fini(&cb_db);
    PQfinish(cb_owner);
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain_batch_backlog_in_odd_batches),
        cmocka_unit_test(test_chain_batch_late_commit_below_sequenced),
    };

    return cmocka_run_group_tests(tests, cb_setup, cb_teardown);
}
