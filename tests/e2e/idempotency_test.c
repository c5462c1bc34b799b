/*
 * idempotency_test.c -- end-to-end: Idempotency-Key on POST (SPEC 3).
 *
 * The same key and body replays the original response (200,
 * Idempotent-Replayed: true) and stores nothing; the same key with another
 * body is 409; a malformed key is 400; concurrent requests with one key
 * store exactly one record.
 *
 * Needs CAVRA_DATABASE_URL pointing at a migrated database (scripts/test.sh
 * sets it). Run: ctest -R e2e.idempotency, or the binary alone.
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

#include "cv_test_http.h"
#include "cv_test_stack.h"

#define P                                                                      \
    "/runtime/go-pilot/rollback-drill-notifications/acknowledgements/"         \
    "audit-delivery"
#define IDEM_THREADS 8

static cv_test_stack idem_stack;

static const char *const idem_count_sql[] = {
    "SELECT count(*) FROM escalation_plans",
    "SELECT count(*) FROM acknowledgements",
    "SELECT count(*) FROM evidence_events",
};

/* A key no other run of this test used. */
static void
idem_new_key(char *out, size_t len)
{
    unsigned char raw[8];

    assert_int_equal(RAND_bytes(raw, sizeof(raw)), 1);
    snprintf(out, len, "idem-%02x%02x%02x%02x%02x%02x%02x%02x", raw[0], raw[1],
             raw[2], raw[3], raw[4], raw[5], raw[6], raw[7]);
}

static void
idem_counts(long *out)
{
    for (size_t i = 0; i < 3; i++) {
        out[i] = cv_test_db_scalar(idem_count_sql[i], NULL);
        assert_true(out[i] >= 0);
    }
}

static void
idem_post(const char *path, const char *key, const char *body,
          cv_http_response *r)
{
    char url[512], header[320];
    const char *headers[2] = {header, NULL};

    snprintf(url, sizeof(url), "%s%s", idem_stack.base_url, path);
    snprintf(header, sizeof(header), "Idempotency-Key: %s", key);
    assert_int_equal(cv_http_request("POST", url, NULL, body,
                                     key != NULL ? headers : NULL, r),
                     0);
}

static const char *
idem_plan_id(const cv_http_response *r)
{
    json_t *v = json_object_get(json_object_get(r->json, "plan"), "plan_id");

    assert_true(json_is_string(v));
    return json_string_value(v);
}

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

static void
test_idempotency_replay_stores_nothing(void **state)
{
    const char *body = "{\"escalation_routes\": [{\"provider\": \"slack\"}]}";
    cv_http_response first, again;
    long before[3], after[3];
    char key[64];

    (void)state;
    idem_new_key(key, sizeof(key));
    idem_post(P "/recovery-escalation-plan", key, body, &first);
    assert_int_equal(first.status, 201);
    assert_string_equal(first.replayed, "");
    idem_counts(before);

    /* Whitespace differs, the request does not: still a replay. */
    idem_post(P "/recovery-escalation-plan", key,
              "{ \"escalation_routes\" : [ {\"provider\":\"slack\"} ] }",
              &again);
    assert_int_equal(again.status, 200);
    assert_string_equal(again.replayed, "true");
    assert_string_equal(idem_plan_id(&again), idem_plan_id(&first));
    assert_string_equal(again.body, first.body);
    idem_counts(after);
    assert_memory_equal(before, after, sizeof(before));
    cv_http_response_free(&first);
    cv_http_response_free(&again);
}

static void
test_idempotency_other_body_conflicts(void **state)
{
    cv_http_response first, other;
    long before[3], after[3];
    char key[64];

    (void)state;
    idem_new_key(key, sizeof(key));
    idem_post(P "/recovery-escalation-plan", key,
              "{\"escalation_routes\": [{\"provider\": \"slack\"}]}", &first);
    assert_int_equal(first.status, 201);
    idem_counts(before);
    idem_post(P "/recovery-escalation-plan", key,
              "{\"escalation_routes\": [{\"provider\": \"jira\"}]}", &other);
    assert_int_equal(other.status, 409);
    assert_string_equal(
        json_string_value(json_object_get(other.json, "detail")),
        "Idempotency-Key was already used with a different request");
    assert_string_equal(json_string_value(json_object_get(other.json, "code")),
                        "ALREADY_EXISTS");
    idem_counts(after);
    assert_memory_equal(before, after, sizeof(before));
    cv_http_response_free(&first);
    cv_http_response_free(&other);
}

static void
test_idempotency_key_rules(void **state)
{
    char long_key[300];
    cv_http_response r;
    long before[3], after[3];

    (void)state;
    idem_counts(before);
    memset(long_key, 'k', 256);
    long_key[256] = '\0';
    idem_post(P "/recovery-escalation-plan", long_key,
              "{\"escalation_routes\": [{\"provider\": \"slack\"}]}", &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(json_string_value(json_object_get(r.json, "detail")),
                        "Idempotency-Key must be 1 to 255 printable ASCII "
                        "characters");
    cv_http_response_free(&r);
    idem_counts(after);
    assert_memory_equal(before, after, sizeof(before));

    /* 255 characters is still a key (unique per run). */
    {
        char rnd[64];

        idem_new_key(rnd, sizeof(rnd));
        memset(long_key, 'k', 255);
        long_key[255] = '\0';
        memcpy(long_key, rnd, strlen(rnd));
    }
    idem_post(P "/recovery-escalation-plan", long_key,
              "{\"escalation_routes\": [{\"provider\": \"slack\"}]}", &r);
    assert_int_equal(r.status, 201);
    cv_http_response_free(&r);
}

static void
test_idempotency_acknowledgement_replay(void **state)
{
    cv_http_response plan, ack1, ack2;
    char path[256], key[64];
    long before, after;

    (void)state;
    idem_post(P "/recovery-escalation-plan", NULL,
              "{\"escalation_routes\": [{\"provider\": \"slack\"}]}", &plan);
    assert_int_equal(plan.status, 201);
    snprintf(path, sizeof(path), P "/recovery-escalations/%s/acknowledgements",
             idem_plan_id(&plan));
    idem_new_key(key, sizeof(key));
    idem_post(path, key,
              "{\"provider\": \"slack\", \"acknowledged_by\": \"a\"}", &ack1);
    assert_int_equal(ack1.status, 201);
    before = cv_test_db_scalar(
        "SELECT count(*) FROM acknowledgements WHERE plan_id = $1",
        idem_plan_id(&plan));
    idem_post(path, key,
              "{\"provider\": \"slack\", \"acknowledged_by\": \"a\"}", &ack2);
    assert_int_equal(ack2.status, 200);
    assert_string_equal(ack2.replayed, "true");
    assert_string_equal(ack1.body, ack2.body);
    after = cv_test_db_scalar(
        "SELECT count(*) FROM acknowledgements WHERE plan_id = $1",
        idem_plan_id(&plan));
    assert_int_equal(before, 1);
    assert_int_equal(after, 1);
    cv_http_response_free(&plan);
    cv_http_response_free(&ack1);
    cv_http_response_free(&ack2);
}

typedef struct idem_racer {
    const char *key;
    cv_http_response r;
} idem_racer;

static void *
idem_race_main(void *arg)
{
    idem_racer *racer = arg;
    char url[512], header[320];
    const char *headers[2] = {header, NULL};

    snprintf(url, sizeof(url), "%s%s", idem_stack.base_url,
             P "/recovery-escalation-plan");
    snprintf(header, sizeof(header), "Idempotency-Key: %s", racer->key);
    if (cv_http_request("POST", url, NULL,
                        "{\"escalation_routes\": [{\"provider\": \"teams\"}]}",
                        headers, &racer->r) != 0)
        racer->r.status = 0;
    return NULL;
}

static void
test_idempotency_concurrent_same_key(void **state)
{
    idem_racer racers[IDEM_THREADS];
    pthread_t threads[IDEM_THREADS];
    char key[64];
    long before, after;
    int created = 0;

    (void)state;
    idem_new_key(key, sizeof(key));
    before = cv_test_db_scalar("SELECT count(*) FROM escalation_plans", NULL);
    memset(racers, 0, sizeof(racers));
    for (int i = 0; i < IDEM_THREADS; i++) {
        racers[i].key = key;
        assert_int_equal(
            pthread_create(&threads[i], NULL, idem_race_main, &racers[i]), 0);
    }
    for (int i = 0; i < IDEM_THREADS; i++)
        pthread_join(threads[i], NULL);
    after = cv_test_db_scalar("SELECT count(*) FROM escalation_plans", NULL);
    for (int i = 0; i < IDEM_THREADS; i++) {
        assert_true(racers[i].r.status == 201 || racers[i].r.status == 200);
        created += racers[i].r.status == 201;
        assert_string_equal(idem_plan_id(&racers[i].r),
                            idem_plan_id(&racers[0].r));
    }
    assert_int_equal(created, 1);
    assert_int_equal(after - before, 1);
    for (int i = 0; i < IDEM_THREADS; i++)
        cv_http_response_free(&racers[i].r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idempotency_replay_stores_nothing),
        cmocka_unit_test(test_idempotency_other_body_conflicts),
        cmocka_unit_test(test_idempotency_key_rules),
        cmocka_unit_test(test_idempotency_acknowledgement_replay),
        cmocka_unit_test(test_idempotency_concurrent_same_key),
    };

    return cmocka_run_group_tests_name("idempotency", tests, idem_setup,
                                       idem_teardown);
}
