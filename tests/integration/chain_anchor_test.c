/*
 * chain_anchor_test.c -- the evidence Merkle log against signed, witnessed
 * checkpoints (docs/evidence.md), through the real processes: cavra-ack,
 * cavra-retry and cavra-report (each given the evidence key, so each may
 * sequence and sign, one at a time) and the gateway.
 *
 *  - an untouched log verifies (GET /runtime/evidence/verify, cavra-verify
 *    --checkpoint), the checkpoint and the public key are served as text;
 *  - every event kind has an inclusion proof that cavra-verify --inclusion
 *    accepts offline, and rejects with one bit flipped;
 *  - a consistency proof between two checkpoints verifies;
 *  - the tiles served over HTTP reproduce the checkpoint's root, the entry
 *    bundles the leaves;
 *  - each tampering done as the database owner (trigger disabled) after a
 *    checkpoint was saved is detected against it, by the verify route and
 *    by cavra-verify --checkpoint: modify, delete, insert, swap, truncate,
 *    and rewrite with every tile recomputed (which the witness also
 *    refuses to sign over);
 *  - the witness refuses a checkpoint signed by another key, and one whose
 *    tree does not extend the witnessed one.
 *
 * The database is shared with the other tests: every tampering is undone
 * (events and tiles restored from a copy taken before, in one transaction
 * with the triggers disabled), also by the teardown after a failure.
 * Integration tests run serially (ctest RUN_SERIAL), so no other process
 * writes meanwhile. The witness and the key live in a private folder.
 *
 * Run: ctest -R integration.chain_anchor, or the binary alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cv_chain.h"
#include "cv_id.h"
#include "cv_merkle.h"
#include "cv_note.h"
#include "cv_test_api.h"
#include "cv_test_proc.h"
#include "cv_witness.h"

#define AT_WAIT_MS 20000
#define P                                                                      \
    "/runtime/go-pilot/rollback-drill-notifications/acknowledgements/"         \
    "audit-delivery"

static cv_test_stack at_stack;
static char at_dir[64], at_key[128], at_pub[128], at_witness[128];
static char at_vkey[512];
static cv_note_verifier *at_verifier;
static PGconn *at_owner;   /* keeps the snapshot's temp tables */
static int at_snapshotted; /* a tampering may be in place until restored */

/* ---- small helpers ---------------------------------------------------- */

/* A case's statements share one parameter; those without $1 get none. */
static void
at_exec(const char *sql, const char *param)
{
    cv_test_db_exec(at_owner, sql, strstr(sql, "$1") != NULL ? param : NULL);
}

/* The stored tree size. */
static long
at_tree_size(void)
{
    long n =
        cv_test_count("SELECT coalesce((SELECT idx * 256 + length(hashes) / "
                      "32 FROM evidence_tiles WHERE level = 0 ORDER BY idx "
                      "DESC LIMIT 1), 0)",
                      NULL);

    assert_true(n >= 0);
    return n;
}

/* Waits until nothing is left to sequence and returns the event count. */
static long
at_wait_sequenced(void)
{
    long until = cv_test_now_ms() + AT_WAIT_MS, pending;

    while ((pending = cv_test_count("SELECT count(*) FROM evidence_unsequenced",
                                    NULL)) != 0 &&
           cv_test_now_ms() < until)
        cv_test_sleep_ms(20);
    assert_int_equal(pending, 0);
    return cv_test_count("SELECT count(*) FROM evidence_events", NULL);
}

typedef struct at_bytes {
    char *data;
    size_t len;
} at_bytes;

static size_t
at_curl_write(char *ptr, size_t size, size_t n, void *arg)
{
    at_bytes *b = arg;
    char *grown = realloc(b->data, b->len + size * n + 1);

    if (grown == NULL)
        return 0;
    b->data = grown;
    memcpy(b->data + b->len, ptr, size * n);
    b->len += size * n;
    b->data[b->len] = '\0';
    return size * n;
}

/* GET path from the gateway, byte exact (tiles hold NULs). Returns the
 * status; *type (when non-NULL) gets the Content-Type. */
static long
at_get(const char *path, at_bytes *out, char *type, size_t typelen)
{
    CURL *c = curl_easy_init();
    char url[1024];
    long status = 0;
    char *ct = NULL;

    assert_non_null(c);
    memset(out, 0, sizeof(*out));
    snprintf(url, sizeof(url), "%s%s", at_stack.base_url, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, at_curl_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
    if (type != NULL)
        snprintf(type, typelen, "%s", ct != NULL ? ct : "");
    curl_easy_cleanup(c);
    if (out->data == NULL)
        out->data = calloc(1, 1);
    return status;
}

/* GET path that must answer status with JSON; returns the document. */
static json_t *
at_get_json(const char *path, long status)
{
    at_bytes b;
    long st = at_get(path, &b, NULL, 0);
    json_t *doc;

    if (st != status)
        fail_msg("GET %s: %ld (want %ld): %s", path, st, status, b.data);
    doc = json_loads(b.data, 0, NULL);
    if (doc == NULL)
        fail_msg("GET %s: not JSON: %s", path, b.data);
    free(b.data);
    return doc;
}

static void
at_write_file(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* cavra-verify --checkpoint saved against our public key (the auditor's
 * check): its exit status, its verdict in *out (may be NULL). */
static int
at_verify_saved(const char *saved, json_t **out)
{
    return cv_test_run_tool("cavra-verify", at_dir, out, "--checkpoint", saved,
                            "--public-key", at_pub, NULL);
}

/* Parses a note signed by our key. */
static void
at_parse_note(const char *note, cv_checkpoint *cp)
{
    char *body = NULL, why[200];

    if (cv_note_verify(note, strlen(note), at_verifier, &body, why,
                       sizeof(why)) != 0)
        fail_msg("checkpoint does not verify: %s\n%s", why, note);
    assert_int_equal(
        cv_checkpoint_parse(body, strlen(body), cp, why, sizeof(why)), 0);
    free(body);
}

/*
 * Waits until the served checkpoint covers the whole stored tree, saves it
 * to path (the auditor's copy) and returns its size.
 */
static long
at_save_checkpoint(const char *path, cv_checkpoint *cp)
{
    long until = cv_test_now_ms() + AT_WAIT_MS, size = at_tree_size();
    char type[128];
    at_bytes b;

    for (;;) {
        long st =
            at_get("/runtime/evidence/checkpoint", &b, type, sizeof(type));

        if (st == 200) {
            at_parse_note(b.data, cp);
            if (cp->size == size)
                break;
        }
        free(b.data);
        if (cv_test_now_ms() > until)
            fail_msg("no checkpoint of size %ld after %d ms (last: %ld)", size,
                     AT_WAIT_MS, st);
        cv_test_sleep_ms(50);
    }
    assert_non_null(strstr(type, "text/plain"));
    if (path != NULL)
        at_write_file(path, b.data, b.len);
    free(b.data);
    return size;
}

/* The verify route's answer (which must be 200). */
static json_t *
at_verify_route(void)
{
    return at_get_json("/runtime/evidence/verify", 200);
}

/* ---- snapshot and restore of the log ---------------------------------- */

static void
at_snapshot(void)
{
    at_exec("DROP TABLE IF EXISTS at_events", NULL);
    at_exec("DROP TABLE IF EXISTS at_tiles", NULL);
    at_exec("DROP TABLE IF EXISTS at_leaves", NULL);
    at_exec("CREATE TEMP TABLE at_events AS SELECT * FROM evidence_events",
            NULL);
    at_exec("CREATE TEMP TABLE at_leaves AS SELECT * FROM evidence_leaves",
            NULL);
    at_exec("CREATE TEMP TABLE at_tiles AS SELECT * FROM evidence_tiles", NULL);
    at_snapshotted = 1;
}

/* Puts events and tiles back as the snapshot had them; 0 or -1 (no
 * cmocka: also called from the teardown). */
static int
at_restore(void)
{
    static const char *const steps[] = {
        "BEGIN",
        "ALTER TABLE evidence_events DISABLE TRIGGER USER",
        "ALTER TABLE evidence_tiles DISABLE TRIGGER USER",
        "ALTER TABLE evidence_leaves DISABLE TRIGGER USER",
        "DELETE FROM evidence_events",
        "INSERT INTO evidence_events SELECT * FROM at_events",
        "DELETE FROM evidence_leaves",
        "INSERT INTO evidence_leaves SELECT * FROM at_leaves",
        "DELETE FROM evidence_tiles",
        "INSERT INTO evidence_tiles SELECT * FROM at_tiles",
        "ALTER TABLE evidence_events ENABLE TRIGGER USER",
        "ALTER TABLE evidence_tiles ENABLE TRIGGER USER",
        "ALTER TABLE evidence_leaves ENABLE TRIGGER USER",
        "COMMIT",
    };

    if (!at_snapshotted)
        return 0;
    /* A failed assertion may have left a transaction open. */
    if (PQtransactionStatus(at_owner) != PQTRANS_IDLE)
        PQclear(PQexec(at_owner, "ROLLBACK"));
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        PGresult *res = PQexec(at_owner, steps[i]);
        bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;

        if (!ok)
            fprintf(stderr, "chain_anchor_test: restore: %s: %s\n", steps[i],
                    PQresultErrorMessage(res));
        PQclear(res);
        if (!ok) {
            PQclear(PQexec(at_owner, "ROLLBACK"));
            return -1;
        }
    }
    at_snapshotted = 0;
    return 0;
}

/* Runs the owner's statements around the triggers, in one transaction. */
static void
at_tamper(const char *const *sql, size_t n, const char *param)
{
    at_exec("BEGIN", NULL);
    at_exec("ALTER TABLE evidence_events DISABLE TRIGGER USER", NULL);
    at_exec("ALTER TABLE evidence_tiles DISABLE TRIGGER USER", NULL);
    at_exec("ALTER TABLE evidence_leaves DISABLE TRIGGER USER", NULL);
    for (size_t i = 0; i < n; i++)
        at_exec(sql[i], param);
    at_exec("ALTER TABLE evidence_events ENABLE TRIGGER USER", NULL);
    at_exec("ALTER TABLE evidence_tiles ENABLE TRIGGER USER", NULL);
    at_exec("ALTER TABLE evidence_leaves ENABLE TRIGGER USER", NULL);
    at_exec("COMMIT", NULL);
}

/* ---- records of every kind -------------------------------------------- */

static const char *const at_kinds[] = {
    "recovery_escalation_plan",      "connector_delivery",
    "recovery_escalation_ack",       "recovery_escalation_retry_plan",
    "executive_report_schedule_run",
};
#define AT_KINDS (sizeof(at_kinds) / sizeof(at_kinds[0]))

static void
at_post(const char *path, const char *body)
{
    cv_http_response r;

    cv_test_post_json(&at_stack, path, body, &r);
    if (r.status != 201 && r.status != 200)
        fail_msg("POST %s: %ld %s", path, r.status, r.body);
    cv_http_response_free(&r);
}

/* One record of every kind, through the gateway. */
static void
at_make_records(void)
{
    char *plan = cv_test_record_plan_http(
        &at_stack, "{\"escalation_routes\": [{\"provider\": \"slack\", "
                   "\"severity\": \"critical\"}, {\"provider\": \"jira\"}]}");
    char path[512], body[512];

    snprintf(path, sizeof(path), P "/recovery-escalations/%s/acknowledgements",
             plan);
    at_post(path, "{\"provider\": \"slack\", \"acknowledged_by\": \"alice\"}");
    snprintf(path, sizeof(path), P "/recovery-escalations/%s/delivery-attempts",
             plan);
    at_post(path, "{\"provider\": \"jira\", \"success\": false, "
                  "\"status_code\": 503, \"attempt_count\": 1}");
    snprintf(body, sizeof(body), "{\"plan_id\": \"%s\"}", plan);
    at_post(P "/recovery-escalations/retry-plan", body);
    snprintf(body, sizeof(body),
             "{\"schedule\": {\"schedule_id\": \"anchor-%ld\", "
             "\"interval_minutes\": 60, \"enabled\": false}}",
             (long)getpid());
    at_post(P "/recovery-executive-report/schedule-run", body);
    free(plan);
}

/* ---- setup ------------------------------------------------------------ */

static int
at_setup(void **state)
{
    char why[200];
    cv_note_signer *s;

    (void)state;
    if (cv_test_database_url() == NULL) {
        fprintf(stderr, "CAVRA_DATABASE_URL is not set\n");
        return -1;
    }
    snprintf(at_dir, sizeof(at_dir), "/tmp/cv-anchor-test-XXXXXX");
    if (mkdtemp(at_dir) == NULL)
        return -1;
    snprintf(at_key, sizeof(at_key), "%s/evidence.key", at_dir);
    snprintf(at_pub, sizeof(at_pub), "%s/evidence.pub", at_dir);
    snprintf(at_witness, sizeof(at_witness), "%s/witness", at_dir);
    if (cv_note_key_generate(at_key, why, sizeof(why)) != 0 ||
        (s = cv_note_signer_load(at_key, "cavra.test/evidence", why,
                                 sizeof(why))) == NULL) {
        fprintf(stderr, "evidence key: %s\n", why);
        return -1;
    }
    cv_note_signer_vkey(s, at_vkey, sizeof(at_vkey));
    cv_note_signer_free(s);
    if ((at_verifier = cv_note_verifier_parse(at_vkey, why, sizeof(why))) ==
        NULL)
        return -1;
    {
        FILE *f = fopen(at_pub, "w");

        if (f == NULL)
            return -1;
        fprintf(f, "%s\n", at_vkey);
        fclose(f);
    }
    /* Before any process starts: the children inherit our environment. */
    unsetenv("CAVRA_SEQUENCER");
    setenv("CAVRA_SEQUENCER_INTERVAL_MS", "50", 1);
    setenv("CAVRA_EVIDENCE_KEY_FILE", at_key, 1);
    setenv("CAVRA_EVIDENCE_ORIGIN", "cavra.test/evidence", 1);
    setenv("CAVRA_WITNESS_DIR", at_witness, 1);
    setenv("CAVRA_CHECKPOINT_INTERVAL_MS", "100", 1);
    /* A heartbeat often enough that a refused rewrite shows in the log
     * within the test. */
    setenv("CAVRA_CHECKPOINT_IDLE_MS", "500", 1);
    at_owner = PQconnectdb(cv_test_database_url());
    if (PQstatus(at_owner) != CONNECTION_OK) {
        fprintf(stderr, "cannot connect: %s", PQerrorMessage(at_owner));
        return -1;
    }
    PQclear(PQexec(at_owner, "SET client_min_messages = warning"));
    /* A tampering waits for the services' short transactions, never for
     * ever: a lock held longer is a bug to see, not a hang. */
    PQclear(PQexec(at_owner, "SET lock_timeout = '20s'"));
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (cv_test_stack_start(&at_stack, CV_STACK_ALL) != 0)
        return -1;
    return 0;
}

static int
at_test_teardown(void **state)
{
    (void)state;
    return at_restore();
}

static int
at_teardown(void **state)
{
    char cmd[160];
    int rv = 0;

    (void)state;
    if (at_restore() != 0)
        rv = -1;
    if (cv_test_stack_stop(&at_stack) != 0)
        rv = -1;
    PQfinish(at_owner);
    cv_note_verifier_free(at_verifier);
    curl_global_cleanup();
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", at_dir);
    if (system(cmd) != 0)
        rv = -1;
    return rv;
}

/* ---- tests ------------------------------------------------------------ */

static void
test_anchor_untouched_verifies(void **state)
{
    char saved[128];
    cv_checkpoint cp;
    json_t *doc;
    long n;

    (void)state;
    at_make_records();
    n = at_wait_sequenced();
    snprintf(saved, sizeof(saved), "%s/saved.checkpoint", at_dir);
    assert_int_equal(at_save_checkpoint(saved, &cp), n);
    assert_string_equal(cp.origin, "cavra.test/evidence");
    assert_int_not_equal(cp.time[0], '\0');

    doc = at_verify_route();
    cv_test_assert_bool(doc, "valid", 1);
    cv_test_assert_int(doc, "events", n);
    cv_test_assert_int(doc, "tree_size", n);
    cv_test_assert_str(doc, "checkpoint_source", "witness");
    cv_test_assert_int(doc, "checkpoint_size", n);
    {
        char root[65];

        cv_hex_encode(cp.root, 32, root);
        cv_test_assert_str(doc, "head", root);
    }
    json_decref(doc);

    assert_int_equal(at_verify_saved(saved, &doc), 0);
    assert_non_null(doc);
    cv_test_assert_bool(doc, "valid", 1);
    cv_test_assert_int(doc, "checkpoint_size", n);
    json_decref(doc);
    /* The witness holds it too, and its latest is what is served. */
    {
        cv_witnessed w;
        char why[200];

        assert_int_equal(
            cv_witness_latest(at_witness, at_verifier, &w, why, sizeof(why)),
            1);
        assert_true(w.cp.size >= n);
        free(w.note);
    }
}

static void
test_anchor_checkpoint_and_key_served(void **state)
{
    char type[128];
    at_bytes b;

    (void)state;
    assert_int_equal(
        at_get("/runtime/evidence/public-key", &b, type, sizeof(type)), 200);
    assert_non_null(strstr(type, "text/plain"));
    b.data[strcspn(b.data, "\n")] = '\0';
    assert_string_equal(b.data, at_vkey);
    free(b.data);
    assert_int_equal(
        at_get("/runtime/evidence/checkpoint", &b, type, sizeof(type)), 200);
    /* The note as signed: origin first, a signature line by our key. */
    assert_true(strncmp(b.data, "cavra.test/evidence\n", 20) == 0);
    assert_non_null(strstr(b.data, "\n\n\xe2\x80\x94 cavra.test/evidence "));
    free(b.data);
    /* The OpenAPI document lists the routes and renders. */
    {
        json_t *doc = at_get_json("/openapi.json", 200);

        assert_non_null(cv_test_json_get(doc, "paths"));
        assert_non_null(json_object_get(json_object_get(doc, "paths"),
                                        "/runtime/evidence/tile/{path}"));
        assert_non_null(json_object_get(json_object_get(doc, "paths"),
                                        "/runtime/evidence/proof/inclusion"));
        json_decref(doc);
    }
}

/* Writes the proof bundle doc to file and checks it offline with
 * cavra-verify --inclusion: exit 0 and valid, or exit 1 and not. */
static void
at_verify_inclusion(json_t *doc, const char *file, bool valid)
{
    char *text = json_dumps(doc, JSON_INDENT(2));
    json_t *verdict;

    assert_non_null(text);
    at_write_file(file, text, strlen(text));
    free(text);
    assert_int_equal(cv_test_run_tool("cavra-verify", at_dir, &verdict,
                                      "--inclusion", file, "--public-key",
                                      at_pub, NULL),
                     valid ? 0 : 1);
    cv_test_assert_bool(verdict, "valid", valid);
    json_decref(verdict);
}

static void
test_anchor_inclusion_each_kind(void **state)
{
    cv_checkpoint cp;
    long n;

    (void)state;
    n = at_wait_sequenced();
    at_save_checkpoint(NULL, &cp);
    for (size_t k = 0; k < AT_KINDS; k++) {
        char id[256], path[640], file[160];
        json_t *doc, *audit;
        PGconn *c = at_owner;
        const char *p[1] = {at_kinds[k]};
        PGresult *res = PQexecParams(
            c,
            "SELECT record_id FROM evidence_events WHERE kind = $1 ORDER BY "
            "id DESC LIMIT 1",
            1, NULL, p, NULL, NULL, 0);

        assert_int_equal(PQntuples(res), 1);
        snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
        snprintf(path, sizeof(path),
                 "/runtime/evidence/proof/inclusion?record_id=%s&kind=%s", id,
                 at_kinds[k]);
        doc = at_get_json(path, 200);
        cv_test_assert_int(doc, "tree_size", cp.size);
        assert_true(cv_test_json_int(doc, "leaf_index") < n);
        cv_test_assert_str(doc, "event.kind", at_kinds[k]);
        cv_test_assert_str(doc, "record_id", id);
        /* With the library: leaf, index, path and the signed root. */
        {
            cv_merkle_hash leaf, proof[CV_MERKLE_MAX_PROOF];
            char *ev = json_dumps(json_object_get(doc, "event"),
                                  JSON_COMPACT | JSON_SORT_KEYS);
            cv_checkpoint signed_cp;

            audit = json_object_get(doc, "audit_path");
            assert_true(json_array_size(audit) <= CV_MERKLE_MAX_PROOF);
            for (size_t i = 0; i < json_array_size(audit); i++)
                assert_int_equal(
                    cv_hex_decode(json_string_value(json_array_get(audit, i)),
                                  32, proof[i]),
                    0);
            cv_chain_leaf(ev, leaf);
            free(ev);
            at_parse_note(cv_test_json_str(doc, "checkpoint"), &signed_cp);
            assert_true(cv_merkle_verify_inclusion(
                leaf, cv_test_json_int(doc, "leaf_index"), signed_cp.size,
                proof, json_array_size(audit), signed_cp.root));
        }
        /* Offline with the tool, then with one bit flipped. */
        snprintf(file, sizeof(file), "%s/proof-%zu.json", at_dir, k);
        at_verify_inclusion(doc, file, true);
        if (json_array_size(audit) > 0) {
            char hex[65];
            const char *h = json_string_value(json_array_get(audit, 0));

            snprintf(hex, sizeof(hex), "%s", h);
            hex[63] = hex[63] == '0' ? '1' : '0'; /* one bit of the last byte */
            json_array_set_new(audit, 0, json_string(hex));
        } else {
            json_object_set_new(doc, "leaf_index", json_integer(1));
        }
        at_verify_inclusion(doc, file, false);
        json_decref(doc);
    }
    /* Bad inputs: a clear 4xx naming the field. */
    {
        json_t *e = at_get_json("/runtime/evidence/proof/inclusion", 400);

        assert_non_null(strstr(cv_test_json_str(e, "detail"), "record_id"));
        json_decref(e);
        e = at_get_json(
            "/runtime/evidence/proof/inclusion?record_id=no-such-record", 404);
        json_decref(e);
        e = at_get_json("/runtime/evidence/proof/inclusion?record_id=x&"
                        "tree_size=abc",
                        400);
        assert_non_null(strstr(cv_test_json_str(e, "detail"), "tree_size"));
        json_decref(e);
        e = at_get_json("/runtime/evidence/proof/inclusion?record_id=x&"
                        "tree_size=999999999",
                        404);
        json_decref(e);
    }
}

static void
test_anchor_consistency_between_checkpoints(void **state)
{
    cv_checkpoint a, b;
    char path[256];
    json_t *doc;
    cv_merkle_hash proof[CV_MERKLE_MAX_PROOF];
    json_t *arr;

    (void)state;
    at_wait_sequenced();
    at_save_checkpoint(NULL, &a);
    at_make_records();
    at_wait_sequenced();
    at_save_checkpoint(NULL, &b);
    assert_true(b.size > a.size);
    snprintf(path, sizeof(path),
             "/runtime/evidence/proof/consistency?from=%lld&to=%lld",
             (long long)a.size, (long long)b.size);
    doc = at_get_json(path, 200);
    cv_test_assert_int(doc, "from", a.size);
    cv_test_assert_int(doc, "to", b.size);
    arr = json_object_get(doc, "proof");
    for (size_t i = 0; i < json_array_size(arr); i++)
        assert_int_equal(
            cv_hex_decode(json_string_value(json_array_get(arr, i)), 32,
                          proof[i]),
            0);
    assert_true(cv_merkle_verify_consistency(a.size, b.size, a.root, b.root,
                                             proof, json_array_size(arr)));
    /* Both checkpoints come with it, signed. */
    {
        cv_checkpoint x;

        at_parse_note(cv_test_json_str(doc, "from_checkpoint"), &x);
        assert_int_equal(x.size, a.size);
        at_parse_note(cv_test_json_str(doc, "to_checkpoint"), &x);
        assert_int_equal(x.size, b.size);
    }
    /* Swapped roots do not verify. */
    assert_false(cv_merkle_verify_consistency(a.size, b.size, b.root, a.root,
                                              proof, json_array_size(arr)));
    json_decref(doc);
    doc = at_get_json("/runtime/evidence/proof/consistency?from=0", 400);
    json_decref(doc);
    snprintf(path, sizeof(path),
             "/runtime/evidence/proof/consistency?from=%lld&to=%lld",
             (long long)b.size, (long long)a.size);
    doc = at_get_json(path, 400);
    json_decref(doc);
}

/* cv_merkle_read_fn over tiles fetched from the gateway. */
static int
at_read_http(void *arg, const cv_merkle_node *nodes, size_t count,
             cv_merkle_hash *hashes)
{
    int64_t size = *(const int64_t *)arg;

    for (size_t i = 0; i < count; i++) {
        cv_tile_ref ref = cv_tile_locate(nodes[i]);
        int64_t at_level = size >> (CV_TILE_HEIGHT * ref.tile_level);
        int64_t left = at_level - ref.tile_index * CV_TILE_WIDTH;
        int width = left >= CV_TILE_WIDTH ? CV_TILE_WIDTH : (int)left;
        char rel[128], path[256];
        at_bytes b;

        if (width < ref.first + ref.count ||
            cv_tile_path_format(ref.tile_level, ref.tile_index, width, rel,
                                sizeof(rel)) < 0)
            return -1;
        snprintf(path, sizeof(path), "/runtime/evidence/%s", rel);
        if (at_get(path, &b, NULL, 0) != 200 ||
            b.len != (size_t)width * CV_MERKLE_HASH_LEN) {
            free(b.data);
            return -1;
        }
        if (cv_merkle_subtree_hash(
                (const cv_merkle_hash *)(b.data +
                                         ref.first * CV_MERKLE_HASH_LEN),
                (size_t)ref.count, hashes[i]) != 0) {
            free(b.data);
            return -1;
        }
        free(b.data);
    }
    return 0;
}

static void
test_anchor_tiles_reproduce_root(void **state)
{
    cv_checkpoint cp;
    cv_merkle_hash root;
    int64_t size;
    char type[128], rel[128], path[256];
    at_bytes tile, entries;

    (void)state;
    at_wait_sequenced();
    at_save_checkpoint(NULL, &cp);
    size = cp.size;
    assert_true(size > 0);
    assert_int_equal(cv_merkle_root(size, at_read_http, &size, root), 0);
    assert_memory_equal(root, cp.root, 32);

    /* The first entry bundle: its entries hash to the level 0 tile. */
    {
        int width = size >= CV_TILE_WIDTH ? CV_TILE_WIDTH : (int)size;
        size_t off = 0;

        assert_true(cv_tile_path_format(0, 0, width, rel, sizeof(rel)) > 0);
        snprintf(path, sizeof(path), "/runtime/evidence/%s", rel);
        assert_int_equal(at_get(path, &tile, type, sizeof(type)), 200);
        assert_non_null(strstr(type, "application/octet-stream"));
        assert_int_equal(tile.len, (size_t)width * 32);
        assert_true(cv_tile_path_format(-1, 0, width, rel, sizeof(rel)) > 0);
        snprintf(path, sizeof(path), "/runtime/evidence/%s", rel);
        assert_int_equal(at_get(path, &entries, NULL, 0), 200);
        for (int i = 0; i < width; i++) {
            size_t len;
            char *ev;
            cv_merkle_hash leaf;

            assert_true(off + 2 <= entries.len);
            len = ((size_t)(uint8_t)entries.data[off] << 8) |
                  (uint8_t)entries.data[off + 1];
            off += 2;
            assert_true(off + len <= entries.len);
            ev = strndup(entries.data + off, len);
            off += len;
            cv_chain_leaf(ev, leaf);
            free(ev);
            assert_memory_equal(leaf, tile.data + (size_t)i * 32, 32);
        }
        assert_int_equal(off, entries.len);
        free(tile.data);
        free(entries.data);
    }
    /* Beyond the tree: 404; not a tile path: 400. */
    {
        json_t *e;

        assert_true(cv_tile_path_format(0, 1000000, 1, rel, sizeof(rel)) > 0);
        snprintf(path, sizeof(path), "/runtime/evidence/%s", rel);
        e = at_get_json(path, 404);
        json_decref(e);
        e = at_get_json("/runtime/evidence/tile/0/1234", 400);
        json_decref(e);
    }
}

/* A tampering, detected against the checkpoint saved before it. */
typedef struct at_case {
    const char *name;
    const char *const *sql; /* $1 = the target position */
    size_t n;
    const char *reason;  /* in the verify reason */
    int first_is_target; /* first_invalid_seq == target */
    long from_end;       /* target: 0 the middle, else the size - from_end */
} at_case;

/* Saves a checkpoint, tampers, checks both verifiers, restores. */
static void
at_tamper_case(const at_case *tc, long target)
{
    char saved[160], seq[32];
    cv_checkpoint cp;
    json_t *doc;
    long n;

    n = at_wait_sequenced();
    snprintf(saved, sizeof(saved), "%s/before-%s.checkpoint", at_dir, tc->name);
    assert_int_equal(at_save_checkpoint(saved, &cp), n);
    at_snapshot();
    snprintf(seq, sizeof(seq), "%ld", target);
    at_tamper(tc->sql, tc->n, seq);

    doc = at_verify_route();
    if (json_is_true(json_object_get(doc, "valid")))
        fail_msg("%s: the verify route did not notice", tc->name);
    if (strstr(cv_test_json_str(doc, "reason"), tc->reason) == NULL)
        fail_msg("%s: reason \"%s\" lacks \"%s\"", tc->name,
                 cv_test_json_str(doc, "reason"), tc->reason);
    if (tc->first_is_target)
        cv_test_assert_int(doc, "first_invalid_seq", target);
    json_decref(doc);

    assert_int_equal(at_verify_saved(saved, &doc), 1);
    assert_non_null(doc);
    cv_test_assert_bool(doc, "valid", 0);
    if (strstr(cv_test_json_str(doc, "reason"), tc->reason) == NULL)
        fail_msg("%s: cavra-verify reason \"%s\" lacks \"%s\"", tc->name,
                 cv_test_json_str(doc, "reason"), tc->reason);
    json_decref(doc);

    assert_int_equal(at_restore(), 0);
    doc = at_verify_route();
    cv_test_assert_bool(doc, "valid", 1);
    json_decref(doc);
    assert_int_equal(at_verify_saved(saved, NULL), 0);
}

/* A position in the middle of the log. */
static long
at_target(void)
{
    long n = at_wait_sequenced();

    assert_true(n >= 6);
    return n / 2;
}

/* Each tampering's statements ($1: the target position). The event of a
 * position, and the positions themselves, live in evidence_leaves. */
#define AT_EVENT_AT                                                            \
    "(SELECT event_id FROM evidence_leaves WHERE seq = $1::bigint)"
static const char *const at_sql_modify[] = {
    "UPDATE evidence_events SET record = jsonb_set(record, '{tampered}', "
    "'true') WHERE id = " AT_EVENT_AT,
};
/* The event goes, its leaf stays (pointing at nothing). */
static const char *const at_sql_delete[] = {
    "DELETE FROM evidence_events WHERE id = " AT_EVENT_AT,
};
/* The leaf goes, its event stays (unsequenced, under the floor). */
static const char *const at_sql_delete_leaf[] = {
    "DELETE FROM evidence_leaves WHERE seq = $1::bigint",
};
/* A forged event at $1, the later ones moved up by one (through
 * positions out of the way, so the primary key holds at every step). */
static const char *const at_sql_insert[] = {
    "UPDATE evidence_leaves SET seq = seq + 1000000001 WHERE seq >= "
    "$1::bigint",
    "UPDATE evidence_leaves SET seq = seq - 1000000000 WHERE seq > "
    "1000000000",
    "WITH f AS (INSERT INTO evidence_events (kind, record_id, plan_id, "
    "actor, created_at, record) VALUES ('recovery_escalation_ack', "
    "'forged-' || $1, NULL, 'mallory', now(), '{\"forged\": true}') "
    "RETURNING id) INSERT INTO evidence_leaves (seq, event_id) "
    "SELECT $1::bigint, id FROM f",
};
/* Two events trade places: their leaves swap positions... */
static const char *const at_sql_swap[] = {
    "UPDATE evidence_leaves SET seq = seq + 1000000000 WHERE seq IN "
    "($1::bigint, $1::bigint + 1)",
    "UPDATE evidence_leaves SET seq = CASE WHEN seq = $1::bigint + "
    "1000000000 THEN $1::bigint + 1 ELSE $1::bigint END WHERE seq > "
    "1000000000",
};
/* ... or the leaves keep their positions and swap events. */
static const char *const at_sql_swap_events[] = {
    "UPDATE evidence_leaves SET event_id = -event_id WHERE seq IN "
    "($1::bigint, $1::bigint + 1)",
    "UPDATE evidence_leaves l SET event_id = (SELECT -o.event_id FROM "
    "evidence_leaves o WHERE o.seq = CASE WHEN l.seq = $1::bigint THEN "
    "$1::bigint + 1 ELSE $1::bigint END) WHERE l.event_id < 0",
};
/* The tail cut off: leaves and events. */
static const char *const at_sql_truncate[] = {
    "WITH d AS (DELETE FROM evidence_leaves WHERE seq >= $1::bigint "
    "RETURNING event_id) DELETE FROM evidence_events WHERE id IN "
    "(SELECT event_id FROM d)",
};
#define AT_SQL(a) a, sizeof(a) / sizeof(a[0])

/* One cmocka test each (test_anchor_tamper, its case as the state). */
static const at_case at_tamper_cases[] = {
    {"modify", AT_SQL(at_sql_modify), "was changed after it was sequenced", 1,
     0},
    {"delete", AT_SQL(at_sql_delete), "is missing", 1, 0},
    {"insert", AT_SQL(at_sql_insert), "was changed after it was sequenced", 1,
     0},
    {"delete_leaf", AT_SQL(at_sql_delete_leaf), "is missing", 1, 0},
    {"swap", AT_SQL(at_sql_swap), "was changed after it was sequenced", 1, 0},
    {"swap_events", AT_SQL(at_sql_swap_events),
     "was changed after it was sequenced", 1, 0},
    {"truncate", AT_SQL(at_sql_truncate), CV_CHAIN_SHORTER, 1, 2},
};
#define AT_TAMPER_CASES (sizeof(at_tamper_cases) / sizeof(at_tamper_cases[0]))

static void
test_anchor_tamper(void **state)
{
    const at_case *tc = *state;

    at_tamper_case(tc, tc->from_end > 0 ? at_wait_sequenced() - tc->from_end
                                        : at_target());
}

/* The attacker's own recomputation of every tile from the (rewritten)
 * events, with the public algorithm: what "recompute every later hash"
 * means for a Merkle log. */
typedef struct at_tiles {
    int count[8];
    int64_t idx[8];
    uint8_t hashes[8][CV_TILE_WIDTH * 32];
} at_tiles;

static void
at_tile_write(at_tiles *t, int level)
{
    char hex[CV_TILE_WIDTH * 64 + 1], l[16], i[24];
    const char *p[3] = {l, i, hex};
    PGresult *res;

    if (t->count[level] == 0)
        return;
    cv_hex_encode(t->hashes[level], (size_t)t->count[level] * 32, hex);
    snprintf(l, sizeof(l), "%d", level);
    snprintf(i, sizeof(i), "%lld", (long long)t->idx[level]);
    res = PQexecParams(at_owner,
                       "INSERT INTO evidence_tiles (level, idx, hashes) VALUES "
                       "($1::int, $2::bigint, decode($3, 'hex'))",
                       3, NULL, p, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);
    t->count[level] = 0;
}

static int
at_tile_emit(void *arg, const cv_merkle_node *node, const cv_merkle_hash hash)
{
    at_tiles *t = arg;
    int level = node->level / CV_TILE_HEIGHT;
    int64_t idx = node->index / CV_TILE_WIDTH;

    if (node->level % CV_TILE_HEIGHT != 0 || level >= 8)
        return 0;
    if (t->count[level] > 0 && t->idx[level] != idx)
        at_tile_write(t, level);
    t->idx[level] = idx;
    memcpy(t->hashes[level] + (size_t)t->count[level] * 32, hash, 32);
    t->count[level]++;
    return 0;
}

static void
at_recompute_tiles(void)
{
    PGresult *res;
    cv_merkle_frontier f;
    at_tiles *t = calloc(1, sizeof(*t));

    assert_non_null(t);
    memset(&f, 0, sizeof(f));
    at_exec("BEGIN", NULL);
    at_exec("ALTER TABLE evidence_tiles DISABLE TRIGGER USER", NULL);
    at_exec("DELETE FROM evidence_tiles", NULL);
    res = PQexec(at_owner,
                 "SELECT l.seq, e.kind, e.record_id, e.plan_id, e.provider, "
                 "e.actor, e.request_id, to_char(e.created_at AT TIME ZONE "
                 "'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
                 "e.record::text, e.principal FROM evidence_leaves l JOIN "
                 "evidence_events e ON e.id = l.event_id ORDER BY l.seq");
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    for (int i = 0; i < PQntuples(res); i++) {
        cv_chain_event ev = cv_chain_row_event(
            res, i, strtoll(PQgetvalue(res, i, 0), NULL, 10));
        char *canonical = cv_chain_canonical(&ev);
        cv_merkle_hash leaf;

        assert_non_null(canonical);
        cv_chain_leaf(canonical, leaf);
        free(canonical);
        assert_int_equal(cv_merkle_frontier_append(&f, leaf, at_tile_emit, t),
                         0);
    }
    PQclear(res);
    for (int level = 0; level < 8; level++)
        at_tile_write(t, level);
    at_exec("ALTER TABLE evidence_tiles ENABLE TRIGGER USER", NULL);
    at_exec("COMMIT", NULL);
    free(t);
}

static void
test_anchor_tamper_rewrite_recomputed(void **state)
{
    static const char *const sql[] = {
        "UPDATE evidence_events SET actor = 'mallory' WHERE id = " AT_EVENT_AT,
    };
    char saved[160], seq[32];
    cv_checkpoint cp;
    json_t *doc;
    long n, target, until;
    int refused_before;

    (void)state;
    target = at_target();
    n = at_wait_sequenced();
    snprintf(saved, sizeof(saved), "%s/before-rewrite.checkpoint", at_dir);
    assert_int_equal(at_save_checkpoint(saved, &cp), n);
    refused_before =
        cv_test_stack_log_count(&at_stack, NULL, "WITNESS-REFUSED", false);
    at_snapshot();
    snprintf(seq, sizeof(seq), "%ld", target);
    at_tamper(sql, 1, seq);
    at_recompute_tiles();
    assert_int_equal(at_tree_size(), n);

    /* Events and tiles agree now: only the witnessed checkpoints tell,
     * and they narrow the rewrite to a range holding the target. */
    doc = at_verify_route();
    cv_test_assert_bool(doc, "valid", 0);
    if (strstr(cv_test_json_str(doc, "reason"), "were rewritten") == NULL)
        fail_msg("reason: %s", cv_test_json_str(doc, "reason"));
    assert_true(cv_test_json_int(doc, "first_invalid_seq") <= target);
    /* last_invalid_seq is left out when the range is that one leaf (the
     * checkpoints were one event apart). */
    assert_true((json_object_get(doc, "last_invalid_seq") != NULL
                     ? cv_test_json_int(doc, "last_invalid_seq")
                     : cv_test_json_int(doc, "first_invalid_seq")) >= target);
    json_decref(doc);
    assert_int_equal(at_verify_saved(saved, &doc), 1);
    cv_test_assert_bool(doc, "valid", 0);
    json_decref(doc);
    /* Without an anchor the rewrite is invisible: that is what the
     * checkpoint is for. */
    assert_int_equal(cv_test_run_tool("cavra-verify", at_dir, NULL, NULL), 0);
    /* The signer's next heartbeat is refused by the witness, loudly. */
    until = cv_test_now_ms() + AT_WAIT_MS;
    while (cv_test_stack_log_count(&at_stack, NULL, "WITNESS-REFUSED", false) ==
               refused_before &&
           cv_test_now_ms() < until)
        cv_test_sleep_ms(50);
    assert_true(cv_test_stack_log_count(&at_stack, NULL, "WITNESS-REFUSED",
                                        false) > refused_before);
    {
        cv_witnessed w;
        char why[200];

        assert_int_equal(
            cv_witness_latest(at_witness, at_verifier, &w, why, sizeof(why)),
            1);
        assert_memory_equal(w.cp.root, cp.root, 32); /* still the truth */
        free(w.note);
    }
    assert_int_equal(at_restore(), 0);
    doc = at_verify_route();
    cv_test_assert_bool(doc, "valid", 1);
    json_decref(doc);
}

static void
test_anchor_witness_refuses_forgeries(void **state)
{
    char key2[160], why[256];
    cv_note_signer *other, *ours;
    cv_checkpoint cp, forged;
    char *body, *note;
    cv_witnessed w;

    (void)state;
    at_wait_sequenced();
    at_save_checkpoint(NULL, &cp);
    assert_int_equal(
        cv_witness_latest(at_witness, at_verifier, &w, why, sizeof(why)), 1);
    /* Another key, same origin: refused. */
    snprintf(key2, sizeof(key2), "%s/other.key", at_dir);
    assert_int_equal(cv_note_key_generate(key2, why, sizeof(why)), 0);
    other = cv_note_signer_load(key2, "cavra.test/evidence", why, sizeof(why));
    assert_non_null(other);
    forged = w.cp;
    forged.size = w.cp.size + 1;
    body = cv_checkpoint_format(&forged);
    assert_non_null(body);
    note = cv_note_sign(other, body);
    assert_non_null(note);
    assert_int_equal(cv_witness_append(at_witness, at_verifier,
                                       "cavra.test/evidence", note, NULL, 0,
                                       why, sizeof(why)),
                     1);
    assert_non_null(strstr(why, "signature"));
    free(note);
    cv_note_signer_free(other);

    /* Our key, but a root that does not extend the witnessed tree. */
    ours = cv_note_signer_load(at_key, "cavra.test/evidence", why, sizeof(why));
    assert_non_null(ours);
    forged.root[0] ^= 0x01;
    free(body);
    body = cv_checkpoint_format(&forged);
    note = cv_note_sign(ours, body);
    assert_non_null(note);
    assert_int_equal(cv_witness_append(at_witness, at_verifier,
                                       "cavra.test/evidence", note, NULL, 0,
                                       why, sizeof(why)),
                     1);
    assert_non_null(strstr(why, "does not extend"));
    free(note);
    /* Same size, another root: refused too. */
    forged.size = w.cp.size;
    free(body);
    body = cv_checkpoint_format(&forged);
    note = cv_note_sign(ours, body);
    assert_int_equal(cv_witness_append(at_witness, at_verifier,
                                       "cavra.test/evidence", note, NULL, 0,
                                       why, sizeof(why)),
                     1);
    free(note);
    /* A smaller tree: refused. */
    if (w.cp.size > 1) {
        forged.size = w.cp.size - 1;
        free(body);
        body = cv_checkpoint_format(&forged);
        note = cv_note_sign(ours, body);
        assert_int_equal(cv_witness_append(at_witness, at_verifier,
                                           "cavra.test/evidence", note, NULL, 0,
                                           why, sizeof(why)),
                         1);
        free(note);
    }
    free(body);
    cv_note_signer_free(ours);
    /* The witness did not move. */
    {
        cv_witnessed now;

        assert_int_equal(
            cv_witness_latest(at_witness, at_verifier, &now, why, sizeof(why)),
            1);
        assert_int_equal(now.cp.size, w.cp.size);
        assert_memory_equal(now.cp.root, w.cp.root, 32);
        free(now.note);
    }
    free(w.note);
}

int
main(void)
{
    static const struct CMUnitTest before[] = {
        cmocka_unit_test_teardown(test_anchor_untouched_verifies,
                                  at_test_teardown),
        cmocka_unit_test_teardown(test_anchor_checkpoint_and_key_served,
                                  at_test_teardown),
        cmocka_unit_test_teardown(test_anchor_inclusion_each_kind,
                                  at_test_teardown),
        cmocka_unit_test_teardown(test_anchor_consistency_between_checkpoints,
                                  at_test_teardown),
        cmocka_unit_test_teardown(test_anchor_tiles_reproduce_root,
                                  at_test_teardown),
    };
    static const struct CMUnitTest after[] = {
        cmocka_unit_test_teardown(test_anchor_tamper_rewrite_recomputed,
                                  at_test_teardown),
        cmocka_unit_test_teardown(test_anchor_witness_refuses_forgeries,
                                  at_test_teardown),
    };
#define AT_N(a) (sizeof(a) / sizeof(a[0]))
    /* The tamper cases in between, one test each, named after the case. */
    static char names[AT_TAMPER_CASES][64];
    struct CMUnitTest tests[AT_N(before) + AT_TAMPER_CASES + AT_N(after)];
    size_t n = 0;

    for (size_t i = 0; i < AT_N(before); i++)
        tests[n++] = before[i];
    for (size_t i = 0; i < AT_TAMPER_CASES; i++) {
        snprintf(names[i], sizeof(names[i]), "test_anchor_tamper_%s",
                 at_tamper_cases[i].name);
        tests[n++] = (struct CMUnitTest){
            .name = names[i],
            .test_func = test_anchor_tamper,
            .teardown_func = at_test_teardown,
            .initial_state = (void *)&at_tamper_cases[i],
        };
    }
    for (size_t i = 0; i < AT_N(after); i++)
        tests[n++] = after[i];
#undef AT_N
    return cmocka_run_group_tests(tests, at_setup, at_teardown);
}
