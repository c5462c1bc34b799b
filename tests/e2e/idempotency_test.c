/*
 * idempotency_test.c -- end-to-end: Idempotency-Key on every POST route
 * (docs/api.md), through the gateway, against the real PostgreSQL.
 *
 * The same assertions run for each of the five POST routes (plan intake,
 * delivery attempts, acknowledgements, retry plan, schedule run), one
 * cmocka test per (route, rule), so a failure names both:
 *   first     a keyed call stores one record: 201 with its id;
 *   replay    the same key and request (even formatted differently) answers
 *             200, Idempotent-Replayed: true, byte-identical body, and
 *             stores nothing;
 *   conflict  the same key with another body is 409 ALREADY_EXISTS, stores
 *             nothing, and the key still replays its first answer;
 *   race      8 threads released together by a barrier with one key and one
 *             body: one 201, the rest replays, one id, one row;
 *   bad keys  empty, 256 characters, control or non-ASCII characters: 400
 *             naming Idempotency-Key, nothing stored; 255 characters is
 *             still a key.
 * Rows are counted by SQL over the route's own table, on a field unique to
 * the test case (a fresh plan, a tagged generated_by or schedule id), so a
 * doubled record is caught even though it would carry another id; the
 * evidence stream is counted by the answers' request ids. The schedule run
 * also keeps "once per window": another key for the same schedule in the
 * same window answers the stored run (200), never a new one nor a 409.
 *
 * Needs CAVRA_DATABASE_URL pointing at a migrated database (scripts/test.sh
 * sets it). Whole-store counts are safe because ctest runs e2e tests
 * serially. Run: ctest -R e2e.idempotency, or the binary alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_test_api.h"

#define P                                                                      \
    "/runtime/go-pilot/rollback-drill-notifications/acknowledgements/"         \
    "audit-delivery"
#define IDEM_THREADS 8
#define IDEM_CONFLICT                                                          \
    "Idempotency-Key was already used with a different request"

static cv_test_stack idem_stack;

/* One request of a test case: where it goes, the body, another body the
 * same key must refuse, and the value that selects its rows. */
typedef struct idem_case {
    const struct idem_route *route;
    char tag[40];  /* unique to this case: "idem-<16 hex>" */
    char key[64];  /* a fresh Idempotency-Key */
    char sel[160]; /* parameter of route->count_sql */
    char path[512];
    char body[1024];
    char other[1024];
} idem_case;

/* A POST route and how to make, find and count its records. */
typedef struct idem_route {
    const char *name;
    const char *id_path;   /* the record id in the answer */
    const char *id_prefix; /* docs/api.md: <prefix><16 hex> */
    const char *count_sql; /* rows this case stored, by c->sel */
    void (*prepare)(idem_case *c);
} idem_route;

/* ---- helpers ---- */

/* A value no other run of this test used. */
static void
idem_new_tag(char *out, size_t len)
{
    unsigned char raw[8];

    assert_int_equal(RAND_bytes(raw, sizeof(raw)), 1);
    snprintf(out, len, "idem-%02x%02x%02x%02x%02x%02x%02x%02x", raw[0], raw[1],
             raw[2], raw[3], raw[4], raw[5], raw[6], raw[7]);
}

/* A plan routing to slack, stored without a key; returns its id. */
static char *
idem_fresh_plan(void)
{
    return cv_test_record_plan_http(
        &idem_stack, "{\"escalation_routes\": [{\"provider\": \"slack\", "
                     "\"severity\": \"critical\"}]}");
}

/*
 * What a test holds is registered here and released by idem_release (each
 * test's teardown), so a failed assertion, which jumps out of the test,
 * leaves no leak report burying the failure.
 */
#define IDEM_HELD_MAX 48
static cv_http_response *idem_held[IDEM_HELD_MAX];
static char *idem_held_text[IDEM_HELD_MAX];
static size_t idem_n_held, idem_n_held_text;

/* A zeroed response owned by the running test. */
static cv_http_response *
idem_resp(void)
{
    cv_http_response *r = calloc(1, sizeof(*r));

    assert_non_null(r);
    assert_true(idem_n_held < IDEM_HELD_MAX);
    idem_held[idem_n_held++] = r;
    return r;
}

/* Hands a malloc'd text to the running test; returns it. */
static char *
idem_hold_text(char *text)
{
    assert_non_null(text);
    assert_true(idem_n_held_text < IDEM_HELD_MAX);
    idem_held_text[idem_n_held_text++] = text;
    return text;
}

static int
idem_release(void **state)
{
    (void)state;
    for (size_t i = 0; i < idem_n_held; i++) {
        cv_http_response_free(idem_held[i]);
        free(idem_held[i]);
    }
    for (size_t i = 0; i < idem_n_held_text; i++)
        free(idem_held_text[i]);
    idem_n_held = idem_n_held_text = 0;
    return 0;
}

/* POSTs body to path with "Idempotency-Key: key" (key NULL: no header;
 * header_line: sent instead, verbatim). Never touches cmocka: the racing
 * threads use it too. Returns 0 when an answer arrived. */
static int
idem_send(const char *path, const char *key, const char *header_line,
          const char *body, cv_http_response *r)
{
    char url[1024], header[400];
    const char *headers[2] = {header, NULL};

    snprintf(url, sizeof(url), "%s%s", idem_stack.base_url, path);
    if (header_line != NULL)
        snprintf(header, sizeof(header), "%s", header_line);
    else
        snprintf(header, sizeof(header), "Idempotency-Key: %s",
                 key != NULL ? key : "");
    return cv_http_request("POST", url, NULL, body,
                           key != NULL || header_line != NULL ? headers : NULL,
                           r);
}

/* idem_send of body with key (NULL: none) to c's route, which must answer
 * `status` with a JSON object and a request id; a failure names the route
 * and the step. */
static cv_http_response *
idem_expect(const idem_case *c, const char *step, const char *key,
            const char *body, long status)
{
    cv_http_response *r = idem_resp();

    if (idem_send(c->path, key, NULL, body, r) != 0)
        fail_msg("%s, %s: no answer", c->route->name, step);
    if (r->status != status)
        fail_msg("%s, %s: expected %ld, got %ld: %s", c->route->name, step,
                 status, r->status, r->body != NULL ? r->body : "");
    if (r->request_id[0] == '\0')
        fail_msg("%s, %s: no X-Request-Id", c->route->name, step);
    if (!json_is_object(r->json))
        fail_msg("%s, %s: not a JSON object: %s", c->route->name, step,
                 r->body);
    return r;
}

/* The record id of an answer of c's route (checked for shape). */
static const char *
idem_id(const idem_case *c, const cv_http_response *r)
{
    const char *id = cv_test_json_str(r->json, c->route->id_path);

    cv_test_assert_id(id, c->route->id_prefix);
    return id;
}

/* Rows of the route's table that belong to this case. */
static long
idem_rows(const idem_case *c)
{
    return cv_test_count(c->route->count_sql, c->sel);
}

/* Stored keys with this text (any scope or method). */
static long
idem_keys(const char *key)
{
    return cv_test_count(
        "SELECT count(*) FROM idempotency_keys WHERE idempotency_key = $1",
        key);
}

/* Evidence events caused by the requests whose ids are listed in `ids`
 * (comma-separated). */
static long
idem_events(const char *ids)
{
    return cv_test_count("SELECT count(*) FROM evidence_events WHERE "
                         "request_id = ANY (string_to_array($1, ','))",
                         ids);
}

/* The same JSON document, pretty-printed: another text of one request. */
static const char *
idem_reformat(const char *body)
{
    json_t *j = json_loads(body, 0, NULL);
    char *out;

    assert_non_null(j);
    out = json_dumps(j, JSON_INDENT(3) | JSON_PRESERVE_ORDER);
    json_decref(j);
    idem_hold_text(out);
    assert_string_not_equal(out, body);
    return out;
}

/* Makes a fresh case of the route in *state. */
static void
idem_case_new(void **state, idem_case *c)
{
    memset(c, 0, sizeof(*c));
    c->route = *state;
    idem_new_tag(c->tag, sizeof(c->tag));
    idem_new_tag(c->key, sizeof(c->key));
    c->route->prepare(c);
}

/* ---- the five routes ---- */

static void
idem_prepare_plan(idem_case *c)
{
    snprintf(c->path, sizeof(c->path), "%s", P "/recovery-escalation-plan");
    snprintf(c->sel, sizeof(c->sel), "%s", c->tag);
    snprintf(c->body, sizeof(c->body),
             "{\"generated_by\": \"%s\", \"escalation_routes\": "
             "[{\"provider\": \"slack\", \"severity\": \"critical\"}]}",
             c->tag);
    snprintf(c->other, sizeof(c->other),
             "{\"generated_by\": \"%s\", \"escalation_routes\": "
             "[{\"provider\": \"jira\"}]}",
             c->tag);
}

static void
idem_prepare_delivery(idem_case *c)
{
    const char *pid = idem_hold_text(idem_fresh_plan());

    snprintf(c->sel, sizeof(c->sel), "%s", pid);
    snprintf(c->path, sizeof(c->path),
             P "/recovery-escalations/%s/delivery-attempts", pid);
    snprintf(c->body, sizeof(c->body),
             "{\"provider\": \"slack\", \"success\": false, \"status_code\": "
             "503, \"attempt_count\": 1}");
    snprintf(c->other, sizeof(c->other),
             "{\"provider\": \"slack\", \"success\": false, \"status_code\": "
             "502, \"attempt_count\": 1}");
}

static void
idem_prepare_ack(idem_case *c)
{
    const char *pid = idem_hold_text(idem_fresh_plan());

    snprintf(c->sel, sizeof(c->sel), "%s", pid);
    snprintf(c->path, sizeof(c->path),
             P "/recovery-escalations/%s/acknowledgements", pid);
    snprintf(c->body, sizeof(c->body),
             "{\"provider\": \"slack\", \"acknowledged_by\": \"alice\"}");
    snprintf(c->other, sizeof(c->other),
             "{\"provider\": \"slack\", \"acknowledged_by\": \"bob\"}");
}

/* A plan with one failed delivery, so the retry plan has a decision. */
static void
idem_prepare_retry(idem_case *c)
{
    const char *pid = idem_hold_text(idem_fresh_plan());
    cv_http_response *r = idem_resp();
    char path[512];

    snprintf(path, sizeof(path), P "/recovery-escalations/%s/delivery-attempts",
             pid);
    cv_test_post_json(&idem_stack, path,
                      "{\"provider\": \"slack\", \"success\": false, "
                      "\"status_code\": 503}",
                      r);
    if (r->status != 201)
        fail_msg("recording an attempt: %ld %s", r->status, r->body);
    snprintf(c->sel, sizeof(c->sel), "%s", c->tag);
    snprintf(c->path, sizeof(c->path), "%s",
             P "/recovery-escalations/retry-plan");
    snprintf(c->body, sizeof(c->body),
             "{\"generated_by\": \"%s\", \"plan_id\": \"%s\"}", c->tag, pid);
    snprintf(c->other, sizeof(c->other),
             "{\"generated_by\": \"%s\", \"plan_id\": \"%s\", "
             "\"retry_policy\": {\"max_retry_attempts\": 5}}",
             c->tag, pid);
}

/* A schedule of its own (disabled: the scheduler leaves it alone), weekly:
 * one window for the whole test. */
static void
idem_prepare_run(idem_case *c)
{
    snprintf(c->sel, sizeof(c->sel), "%s", c->tag);
    snprintf(c->path, sizeof(c->path), "%s",
             P "/recovery-executive-report/schedule-run");
    snprintf(c->body, sizeof(c->body),
             "{\"generated_by\": \"%s\", \"schedule\": {\"schedule_id\": "
             "\"%s\", \"interval_minutes\": 10080, \"enabled\": false}}",
             c->tag, c->tag);
    snprintf(c->other, sizeof(c->other),
             "{\"generated_by\": \"%s\", \"recovery_slo_minutes\": 60, "
             "\"schedule\": {\"schedule_id\": \"%s\", \"interval_minutes\": "
             "10080, \"enabled\": false}}",
             c->tag, c->tag);
}

static const idem_route idem_routes[] = {
    {"plan intake", "plan.plan_id", "gordackrecoveryesc-",
     "SELECT count(*) FROM escalation_plans WHERE generated_by = $1",
     idem_prepare_plan},
    {"delivery attempt", "delivery.delivery_id", "rcd-",
     "SELECT count(*) FROM delivery_attempts WHERE plan_id = $1",
     idem_prepare_delivery},
    {"acknowledgement", "acknowledgement.acknowledgement_id",
     "gordackrecoveryescack-",
     "SELECT count(*) FROM acknowledgements WHERE plan_id = $1",
     idem_prepare_ack},
    {"retry plan", "plan.retry_plan_id", "gordackrecoveryescretry-",
     "SELECT count(*) FROM retry_plans WHERE generated_by = $1",
     idem_prepare_retry},
    {"schedule run", "run.run_id", "gordackexecsched-",
     "SELECT count(*) FROM report_runs WHERE schedule_id = $1",
     idem_prepare_run},
};
#define IDEM_N_ROUTES (sizeof(idem_routes) / sizeof(idem_routes[0]))
#define IDEM_RUN      (&idem_routes[4])

/* ---- setup ---- */

static int
idem_setup(void **state)
{
    (void)state;
    if (cv_test_database_url() == NULL)
        return -1;
    return cv_test_stack_start(&idem_stack, CV_STACK_ALL);
}

static int
idem_teardown(void **state)
{
    (void)state;
    return cv_test_stack_stop(&idem_stack);
}

/* ---- the rules, for every route ---- */

/* (1) and (2): 201 with an id; the replay is the same answer. */
static void
test_idem_first_then_replay(void **state)
{
    idem_case c;
    cv_http_response *first, *again, *pretty;
    cv_test_counts before;
    char what[128];
    const char *id;

    idem_case_new(state, &c);
    first = idem_expect(&c, "first keyed call", c.key, c.body, 201);
    id = idem_id(&c, first);
    if (first->replayed[0] != '\0')
        fail_msg("%s: a first call says Idempotent-Replayed: %s", c.route->name,
                 first->replayed);
    assert_int_equal(idem_rows(&c), 1);
    assert_int_equal(idem_keys(c.key), 1);
    assert_int_equal(idem_events(first->request_id), 1);

    cv_test_counts_snapshot(&before);
    again = idem_expect(&c, "replay", c.key, c.body, 200);
    if (strcmp(again->replayed, "true") != 0)
        fail_msg("%s: replay without Idempotent-Replayed: true (\"%s\")",
                 c.route->name, again->replayed);
    assert_string_equal(idem_id(&c, again), id);
    if (strcmp(again->body, first->body) != 0)
        fail_msg("%s: the replay differs from the first answer:\n%s\n%s",
                 c.route->name, first->body, again->body);
    assert_true(strncmp(again->content_type, "application/json", 16) == 0);

    /* Other whitespace, same request: still a replay. */
    pretty = idem_expect(&c, "replay (reformatted body)", c.key,
                         idem_reformat(c.body), 200);
    assert_string_equal(pretty->replayed, "true");
    assert_string_equal(pretty->body, first->body);

    snprintf(what, sizeof(what), "%s: replays", c.route->name);
    cv_test_counts_unchanged(&before, what);
    assert_int_equal(idem_rows(&c), 1);
    assert_int_equal(idem_events(again->request_id), 0);
}

/* (3): another body under the key is 409, stores nothing, and the key
 * still answers its first request. */
static void
test_idem_other_body_conflicts(void **state)
{
    idem_case c;
    cv_http_response *first, *other = idem_resp(), *again;
    cv_test_counts before;
    char what[128];

    idem_case_new(state, &c);
    first = idem_expect(&c, "first keyed call", c.key, c.body, 201);
    cv_test_counts_snapshot(&before);
    if (idem_send(c.path, c.key, NULL, c.other, other) != 0)
        fail_msg("%s: no answer to another body", c.route->name);
    cv_test_assert_error(other, 409, "ALREADY_EXISTS", IDEM_CONFLICT);
    if (other->replayed[0] != '\0')
        fail_msg("%s: a 409 says Idempotent-Replayed", c.route->name);
    snprintf(what, sizeof(what), "%s: same key, another body", c.route->name);
    cv_test_counts_unchanged(&before, what);
    assert_int_equal(idem_rows(&c), 1);
    assert_int_equal(idem_events(other->request_id), 0);

    again = idem_expect(&c, "replay after the conflict", c.key, c.body, 200);
    assert_string_equal(again->replayed, "true");
    assert_string_equal(again->body, first->body);
}

typedef struct idem_racer {
    const idem_case *c;
    pthread_barrier_t *start;
    int sent; /* idem_send's result */
    cv_http_response *r;
} idem_racer;

static void *
idem_race_main(void *arg)
{
    idem_racer *racer = arg;

    pthread_barrier_wait(racer->start);
    racer->sent = idem_send(racer->c->path, racer->c->key, NULL, racer->c->body,
                            racer->r);
    return NULL;
}

/* (4): concurrent requests with one key and one body store one record. */
static void
test_idem_concurrent_one_record(void **state)
{
    idem_case c;
    idem_racer racers[IDEM_THREADS];
    pthread_t threads[IDEM_THREADS];
    pthread_barrier_t start;
    char ids[IDEM_THREADS * 161] = "";
    const char *id = NULL;
    int created = 0;

    idem_case_new(state, &c);
    assert_int_equal(idem_rows(&c), 0);
    memset(racers, 0, sizeof(racers));
    for (int i = 0; i < IDEM_THREADS; i++)
        racers[i].r = idem_resp();
    /* Released together: they reach the gateway within microseconds. */
    assert_int_equal(pthread_barrier_init(&start, NULL, IDEM_THREADS), 0);
    for (int i = 0; i < IDEM_THREADS; i++) {
        racers[i].c = &c;
        racers[i].start = &start;
        if (pthread_create(&threads[i], NULL, idem_race_main, &racers[i]) != 0)
            abort(); /* the others would wait at the barrier forever */
    }
    for (int i = 0; i < IDEM_THREADS; i++)
        pthread_join(threads[i], NULL);
    pthread_barrier_destroy(&start);

    /* Every racer was answered with a success... */
    for (int i = 0; i < IDEM_THREADS; i++) {
        cv_http_response *r = racers[i].r;

        if (racers[i].sent != 0)
            fail_msg("%s: racer %d got no answer", c.route->name, i);
        if (r->status != 201 && r->status != 200)
            fail_msg("%s: racer %d got %ld: %s", c.route->name, i, r->status,
                     r->body != NULL ? r->body : "");
        if (i > 0)
            strcat(ids, ",");
        strcat(ids, r->request_id);
    }
    /* ...one record was stored... */
    if (idem_rows(&c) != 1)
        fail_msg("%s: %ld rows stored for one key by %d racers", c.route->name,
                 idem_rows(&c), IDEM_THREADS);
    /* ...and everyone was told about that one. */
    for (int i = 0; i < IDEM_THREADS; i++) {
        cv_http_response *r = racers[i].r;

        if (r->status == 200 && strcmp(r->replayed, "true") != 0)
            fail_msg("%s: racer %d got a 200 that is not a replay: %s",
                     c.route->name, i, r->body);
        created += r->status == 201;
        if (id == NULL)
            id = idem_id(&c, r);
        else if (strcmp(idem_id(&c, r), id) != 0)
            fail_msg("%s: racers were told of two records: %s and %s",
                     c.route->name, id, idem_id(&c, r));
    }
    if (created != 1)
        fail_msg("%s: %d of %d racers were told 201", c.route->name, created,
                 IDEM_THREADS);
    assert_int_equal(idem_events(ids), 1);
    assert_int_equal(idem_keys(c.key), 1);
}

/* (5): keys that are not 1..255 printable ASCII are a 400 naming the
 * header, and store nothing. */
static void
test_idem_bad_keys_rejected(void **state)
{
    idem_case c;
    char long_key[300], line[400];
    const char *bad_lines[] = {
        "Idempotency-Key;", /* curl: the header with an empty value */
        NULL,               /* 256 characters, filled in below */
        "Idempotency-Key: bad\tkey",
        "Idempotency-Key: bad\x7fkey",
        "Idempotency-Key: cl\xc3\xa9",
    };
    cv_test_counts before;
    char what[160];

    idem_case_new(state, &c);
    memset(long_key, 'k', 256);
    long_key[256] = '\0';
    snprintf(line, sizeof(line), "Idempotency-Key: %s", long_key);
    bad_lines[1] = line;
    for (size_t i = 0; i < sizeof(bad_lines) / sizeof(bad_lines[0]); i++) {
        cv_http_response *r = idem_resp();

        cv_test_counts_snapshot(&before);
        if (idem_send(c.path, NULL, bad_lines[i], c.body, r) != 0)
            fail_msg("%s: no answer to bad key %zu", c.route->name, i);
        cv_test_assert_error(r, 400, "INVALID_ARGUMENT", "~Idempotency-Key");
        snprintf(what, sizeof(what), "%s: bad key %zu", c.route->name, i);
        cv_test_counts_unchanged(&before, what);
    }
    assert_int_equal(idem_rows(&c), 0);
}

/* The longest key is accepted and replays like any other. */
static void
test_idem_longest_key(void **state)
{
    idem_case c;
    cv_http_response *first, *again;
    char key[256];

    idem_case_new(state, &c);
    memset(key, 'k', 255);
    key[255] = '\0';
    memcpy(key, c.key, strlen(c.key)); /* unique per run */
    first = idem_expect(&c, "255-character key", key, c.body, 201);
    again = idem_expect(&c, "255-character key replay", key, c.body, 200);
    assert_string_equal(again->replayed, "true");
    assert_string_equal(again->body, first->body);
    assert_int_equal(idem_rows(&c), 1);
    assert_int_equal(idem_keys(key), 1);
}

/* ---- schedule run: exactly once per window ---- */

/* Another key (or none) for the same schedule in the same window answers
 * the stored run: 200, same run, not a replay, not a 409, no new row. */
static void
test_idem_run_once_per_window(void **state)
{
    void *route = (void *)IDEM_RUN;
    idem_case c;
    cv_http_response *first, *other_key, *no_key, *replay;
    cv_test_counts before, after;
    char key2[64];
    const char *run_id;

    (void)state;
    idem_case_new(&route, &c);
    first = idem_expect(&c, "first keyed call", c.key, c.body, 201);
    run_id = idem_id(&c, first);
    cv_test_counts_snapshot(&before);

    idem_new_tag(key2, sizeof(key2));
    other_key = idem_expect(&c, "another key, same window", key2, c.body, 200);
    assert_string_equal(idem_id(&c, other_key), run_id);
    if (other_key->replayed[0] != '\0')
        fail_msg("a new key is not a replay (Idempotent-Replayed: %s)",
                 other_key->replayed);
    no_key = idem_expect(&c, "no key, same window", NULL, c.body, 200);
    assert_string_equal(idem_id(&c, no_key), run_id);
    assert_int_equal(idem_rows(&c), 1);
    assert_int_equal(idem_events(other_key->request_id), 0);

    /* The second key now answers that stored run again. */
    replay = idem_expect(&c, "replay of the other key", key2, c.body, 200);
    assert_string_equal(replay->replayed, "true");
    assert_string_equal(replay->body, other_key->body);
    assert_int_equal(idem_rows(&c), 1);

    /* Only the second key was stored; no record. */
    cv_test_counts_snapshot(&after);
    assert_int_equal(after.runs, before.runs);
    assert_int_equal(after.reports, before.reports);
    assert_int_equal(after.events, before.events);
    assert_int_equal(after.idem_keys, before.idem_keys + 1);
}

/* ---- the table ---- */

typedef struct idem_rule {
    const char *name;
    CMUnitTestFunction fn;
} idem_rule;

static const idem_rule idem_rules[] = {
    {"first 201, replay 200 same body", test_idem_first_then_replay},
    {"same key, other body 409", test_idem_other_body_conflicts},
    {"concurrent same key, one record", test_idem_concurrent_one_record},
    {"bad keys 400", test_idem_bad_keys_rejected},
    {"255-character key", test_idem_longest_key},
};
#define IDEM_N_RULES (sizeof(idem_rules) / sizeof(idem_rules[0]))

int
main(void)
{
    static char names[IDEM_N_ROUTES * IDEM_N_RULES][96];
    struct CMUnitTest tests[IDEM_N_ROUTES * IDEM_N_RULES + 1];
    size_t n = 0;

    /* Route by route, each rule a test named "<route>: <rule>". */
    memset(tests, 0, sizeof(tests));
    for (size_t r = 0; r < IDEM_N_ROUTES; r++) {
        for (size_t k = 0; k < IDEM_N_RULES; k++, n++) {
            snprintf(names[n], sizeof(names[n]), "%s: %s", idem_routes[r].name,
                     idem_rules[k].name);
            tests[n].name = names[n];
            tests[n].test_func = idem_rules[k].fn;
            tests[n].teardown_func = idem_release;
            tests[n].initial_state = (void *)&idem_routes[r];
        }
    }
    tests[n].name = "schedule run: another key, same window, stored run";
    tests[n].test_func = test_idem_run_once_per_window;
    tests[n].teardown_func = idem_release;
    n++;
    return _cmocka_run_group_tests("idempotency", tests, n, idem_setup,
                                   idem_teardown);
}
