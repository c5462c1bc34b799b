/*
 * retry_rules_test.c -- unit tests for services/retry/retry_rules.c: the
 * retry decision rules, policy defaults/aliases/ranges, delivery-attempt
 * intake and retry plan assembly (docs/api.md, 5.2), without any I/O.
 *
 * The decision rules are table-driven: each row is a pair's attempt
 * history, a policy, an acknowledgement state and "now", with the decision
 * docs/api.md demands, written out here from docs/api.md (never taken from the
 * code under test). Times are minutes after T0. Run: ctest -L unit, or
 * the binary alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_time.h"
#include "retry_rules.h"

/* 2025-11-27T05:29:23Z */
#define T0_US   1764221363000000LL
#define T0_TEXT "2025-11-27T05:29:23.000000Z"
#define T_MIN   60000000LL
#define T_AT(m) (T0_US + (int64_t)llround((m) * (double)T_MIN))

#define T_RETRY    CV__RETRY_ACTION__RETRY_ACTION_RETRY
#define T_WAIT     CV__RETRY_ACTION__RETRY_ACTION_WAIT
#define T_SUPPRESS CV__RETRY_ACTION__RETRY_ACTION_SUPPRESS
#define T_NONE     0 /* the pair gets no decision */

#define T_ELIGIBLE "failed recovery escalation delivery is eligible for retry"
#define T_NO_CODE  (-1) /* an attempt without a status code */
#define T_MAX_ATT  8

#define T_DELIVERY_SCHEMA                                                      \
    "cavra.go-backend-pilot.rollback-drill-acknowledgement-audit-delivery-"    \
    "connector-delivery.v1"
#define T_PLAN_SCHEMA                                                          \
    "cavra.go-backend-pilot.rollback-drill-acknowledgement-audit-delivery-"    \
    "recovery-escalation-delivery-retry-plan.v1"
#define T_PLAN_KIND                                                            \
    "go-backend-rollback-drill-acknowledgement-audit-delivery-recovery-"       \
    "escalation-delivery-retry-plan"

/* ---- helpers ---------------------------------------------------------- */

static void
t_assert_id(const char *id, const char *prefix)
{
    size_t pl = strlen(prefix);

    assert_non_null(id);
    if (strncmp(id, prefix, pl) != 0 || strlen(id) != pl + 16)
        fail_msg("id %s is not %s + 16 hex", id, prefix);
    for (size_t i = pl; i < pl + 16; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            fail_msg("id %s is not lowercase hex", id);
}

static void
t_assert_time(const char *got, int64_t want_us)
{
    char want[CV_TIME_MAX];

    cv_time_format(want_us, want);
    assert_non_null(got);
    if (strcmp(got, want) != 0)
        fail_msg("time is %s, expected %s", got, want);
}

/* The default policy of docs/api.md: 3 attempts, 15 minutes, x2. */
static const retry_policy t_default_policy = {3, false, 15.0, 2.0};

/* ---- decision table --------------------------------------------------- */

typedef struct t_att {
    double at_min; /* minutes after T0 */
    int64_t seq;   /* recording order; the delivery id is "d<seq>" */
    bool success;
    int status; /* T_NO_CODE: none */
} t_att;

typedef struct t_decision_case {
    const char *name;
    t_att att[T_MAX_ATT];
    size_t n;
    int ack; /* Cv__AckState, 0: none */
    retry_policy policy;
    int64_t now_us;
    /* expected */
    int action;
    const char *reason;
    int64_t retry_count;
    double delay;
    int64_t latest_seq;
    double latest_min;
    double next_min;
    int64_t codes[T_MAX_ATT];
    size_t n_codes;
} t_decision_case;

/* clang-format off */
/* Row layout: name, attempts, count, ack state, policy, now; action,
 * reason; retry_count, delay, latest seq, latest minute, next_retry_at
 * minute, failed_status_codes, their count. */
#define F(m, s, st) {(m), (s), false, (st)}
#define S(m, s) {(m), (s), true, 200}
#define POL(max, imm, delay, mult) {(max), (imm), (delay), (mult)}
#define P_DEF POL(3, false, 15.0, 2.0)
#define LATER T_AT(100000) /* long after any next_retry_at below */
#define T_RESOLVED CV__ACK_STATE__ACK_STATE_RESOLVED
#define T_DISMISSED CV__ACK_STATE__ACK_STATE_DISMISSED
/* One failure with status st under the default policy, long after its
 * delay: retried, or suppressed as a final status. */
#define STATUS_RETRY(st)                                                      \
    {#st " is retryable", {F(0, 1, st)}, 1, 0, P_DEF, LATER,                 \
     T_RETRY, T_ELIGIBLE, 1, 15, 1, 0, 15, {st}, 1}
#define STATUS_FINAL(st)                                                      \
    {#st " is not retryable", {F(0, 1, st)}, 1, 0, P_DEF, LATER,             \
     T_SUPPRESS, "status " #st " is not retryable", 1, 15, 1, 0, 15, {st}, 1}

static const t_decision_case t_decision_cases[] = {
    /* Timing: exactly at next_retry_at is retry, 1 us before it is wait. */
    {"one failure, exactly at next_retry_at",
     {F(0, 1, 500)}, 1, 0, P_DEF, T_AT(15),
     T_RETRY, T_ELIGIBLE,
     1, 15, 1, 0, 15, {500}, 1},
    {"one failure, 1 us before next_retry_at",
     {F(0, 1, 500)}, 1, 0, P_DEF, T_AT(15) - 1,
     T_WAIT, "retry delay 15 minutes has not elapsed",
     1, 15, 1, 0, 15, {500}, 1},
    {"one failure, right after it",
     {F(0, 1, 500)}, 1, 0, P_DEF, T_AT(0),
     T_WAIT, "retry delay 15 minutes has not elapsed",
     1, 15, 1, 0, 15, {500}, 1},
    /* Backoff: delay = 15 * 2^(n-1) after the latest failure. */
    {"two failures, exactly at next_retry_at",
     {F(0, 1, 503), F(10, 2, 502)}, 2, 0, P_DEF, T_AT(40),
     T_RETRY, T_ELIGIBLE,
     2, 30, 2, 10, 40, {503, 502}, 2},
    {"two failures, before next_retry_at",
     {F(0, 1, 503), F(10, 2, 502)}, 2, 0, P_DEF, T_AT(39),
     T_WAIT, "retry delay 30 minutes has not elapsed",
     2, 30, 2, 10, 40, {503, 502}, 2},
    /* The cap: one below it still retries, at it suppresses. */
    {"cap minus one (5 of max 6)",
     {F(0, 1, 500), F(1, 2, 500), F(2, 3, 500), F(3, 4, 500),
      F(4, 5, 500)}, 5, 0, POL(6, false, 15.0, 2.0), LATER,
     T_RETRY, T_ELIGIBLE,
     5, 240, 5, 4, 244, {500, 500, 500, 500, 500}, 5},
    {"cap minus one (2 of max 3)",
     {F(0, 1, 500), F(1, 2, 500)}, 2, 0, P_DEF, LATER,
     T_RETRY, T_ELIGIBLE,
     2, 30, 2, 1, 31, {500, 500}, 2},
    {"at the cap (3 of max 3)",
     {F(0, 1, 500), F(1, 2, 500), F(2, 3, 500)}, 3, 0, P_DEF, LATER,
     T_SUPPRESS, "maximum retry attempts 3 reached",
     3, 60, 3, 2, 62, {500, 500, 500}, 3},
    {"past the cap (4 of max 3)",
     {F(0, 1, 500), F(1, 2, 500), F(2, 3, 500), F(3, 4, 500)},
     4, 0, P_DEF, LATER,
     T_SUPPRESS, "maximum retry attempts 3 reached",
     4, 120, 4, 3, 123, {500, 500, 500, 500}, 4},
    {"max 1: the first failure reaches it",
     {F(0, 1, 500)}, 1, 0, POL(1, false, 15.0, 2.0), LATER,
     T_SUPPRESS, "maximum retry attempts 1 reached",
     1, 15, 1, 0, 15, {500}, 1},
    {"the cap wins while waiting too",
     {F(0, 1, 500), F(1, 2, 500), F(2, 3, 500)}, 3, 0, P_DEF, T_AT(2),
     T_SUPPRESS, "maximum retry attempts 3 reached",
     3, 60, 3, 2, 62, {500, 500, 500}, 3},
    /* Status codes: 4xx is final except 408 and 429; 0 and 5xx retry. */
    STATUS_RETRY(408),
    STATUS_RETRY(429),
    STATUS_FINAL(400),
    STATUS_FINAL(401),
    STATUS_FINAL(403),
    STATUS_FINAL(404),
    STATUS_FINAL(409),
    STATUS_FINAL(422),
    STATUS_FINAL(499),
    {"404 is final even while waiting",
     {F(0, 1, 404)}, 1, 0, P_DEF, T_AT(1),
     T_SUPPRESS, "status 404 is not retryable",
     1, 15, 1, 0, 15, {404}, 1},
    STATUS_RETRY(500),
    STATUS_RETRY(502),
    STATUS_RETRY(503),
    STATUS_RETRY(599),
    STATUS_RETRY(302),
    {"status 0 (unreachable) is retryable",
     {F(0, 1, 0)}, 1, 0, P_DEF, LATER,
     T_RETRY, T_ELIGIBLE,
     1, 15, 1, 0, 15, {0}, 1},
    {"no status code is retryable",
     {F(0, 1, T_NO_CODE)}, 1, 0, P_DEF, LATER,
     T_RETRY, T_ELIGIBLE,
     1, 15, 1, 0, 15, {0}, 0},
    {"only the latest status counts (404 then 500)",
     {F(0, 1, 404), F(1, 2, 500)}, 2, 0, P_DEF, LATER,
     T_RETRY, T_ELIGIBLE,
     2, 30, 2, 1, 31, {404, 500}, 2},
    {"only the latest status counts (500 then 404)",
     {F(0, 1, 500), F(1, 2, 404)}, 2, 0, P_DEF, LATER,
     T_SUPPRESS, "status 404 is not retryable",
     2, 30, 2, 1, 31, {500, 404}, 2},
    {"codes skip attempts without one",
     {F(0, 1, 503), F(1, 2, T_NO_CODE), F(2, 3, 0)},
     3, 0, POL(5, false, 15.0, 2.0), LATER,
     T_RETRY, T_ELIGIBLE,
     3, 60, 3, 2, 62, {503, 0}, 2},
    {"the cap is checked before the status",
     {F(0, 1, 500), F(1, 2, 500), F(2, 3, 404)}, 3, 0, P_DEF, LATER,
     T_SUPPRESS, "maximum retry attempts 3 reached",
     3, 60, 3, 2, 62, {500, 500, 404}, 3},
    /* Acknowledgement state: dismissed and resolved close the pair. */
    {"resolved acknowledgement suppresses",
     {F(0, 1, 500)}, 1, T_RESOLVED, P_DEF, LATER,
     T_SUPPRESS, "acknowledgement state resolved closes the escalation",
     1, 15, 1, 0, 15, {500}, 1},
    {"dismissed acknowledgement suppresses",
     {F(0, 1, 500)}, 1, T_DISMISSED, P_DEF, LATER,
     T_SUPPRESS, "acknowledgement state dismissed closes the escalation",
     1, 15, 1, 0, 15, {500}, 1},
    {"resolved suppresses instead of wait",
     {F(0, 1, 500)}, 1, T_RESOLVED, P_DEF, T_AT(1),
     T_SUPPRESS, "acknowledgement state resolved closes the escalation",
     1, 15, 1, 0, 15, {500}, 1},
    {"acknowledged does not suppress",
     {F(0, 1, 500)}, 1, CV__ACK_STATE__ACK_STATE_ACKNOWLEDGED, P_DEF, LATER,
     T_RETRY, T_ELIGIBLE,
     1, 15, 1, 0, 15, {500}, 1},
    {"accepted does not suppress",
     {F(0, 1, 500)}, 1, CV__ACK_STATE__ACK_STATE_ACCEPTED, P_DEF, LATER,
     T_RETRY, T_ELIGIBLE,
     1, 15, 1, 0, 15, {500}, 1},
    {"escalated does not suppress",
     {F(0, 1, 500)}, 1, CV__ACK_STATE__ACK_STATE_ESCALATED, P_DEF, LATER,
     T_RETRY, T_ELIGIBLE,
     1, 15, 1, 0, 15, {500}, 1},
    {"deferred does not suppress",
     {F(0, 1, 500)}, 1, CV__ACK_STATE__ACK_STATE_DEFERRED, P_DEF, T_AT(1),
     T_WAIT, "retry delay 15 minutes has not elapsed",
     1, 15, 1, 0, 15, {500}, 1},
    {"a non-retryable status is named before the ack",
     {F(0, 1, 404)}, 1, T_RESOLVED, P_DEF, LATER,
     T_SUPPRESS, "status 404 is not retryable",
     1, 15, 1, 0, 15, {404}, 1},
    /* Streaks: only failures after the latest success count. */
    {"a success between failures resets the count",
     {F(0, 1, 500), F(1, 2, 500), S(2, 3), F(3, 4, 503)}, 4, 0, P_DEF, LATER,
     T_RETRY, T_ELIGIBLE,
     1, 15, 4, 3, 18, {503}, 1},
    {"a success resets even a capped pair",
     {F(0, 1, 500), F(1, 2, 500), F(2, 3, 500), S(3, 4),
      F(4, 5, 500)}, 5, 0, P_DEF, LATER,
     T_RETRY, T_ELIGIBLE,
     1, 15, 5, 4, 19, {500}, 1},
    {"latest attempt succeeded: no decision",
     {F(0, 1, 500), S(1, 2)}, 2, 0, P_DEF, LATER,
     T_NONE, NULL,
     0, 0, 0, 0, 0, {0}, 0},
    {"only successes: no decision",
     {S(0, 1), S(1, 2)}, 2, 0, P_DEF, LATER,
     T_NONE, NULL,
     0, 0, 0, 0, 0, {0}, 0},
    {"no attempts: no decision",
     {{0, 0, false, 0}}, 0, 0, P_DEF, LATER,
     T_NONE, NULL,
     0, 0, 0, 0, 0, {0}, 0},
    {"same time, success recorded later: no decision",
     {F(5, 1, 500), S(5, 2)}, 2, 0, P_DEF, LATER,
     T_NONE, NULL,
     0, 0, 0, 0, 0, {0}, 0},
    {"same time, failure recorded later: counted",
     {S(5, 1), F(5, 2, 500)}, 2, 0, P_DEF, LATER,
     T_RETRY, T_ELIGIBLE,
     1, 15, 2, 5, 20, {500}, 1},
    {"attempt time, not recording order, decides",
     {F(10, 1, 500), S(0, 2), F(5, 3, 502)}, 3, 0, P_DEF, LATER,
     T_RETRY, T_ELIGIBLE,
     2, 30, 1, 10, 40, {502, 500}, 2},
    {"an old success recorded late does not reset",
     {F(10, 1, 500), S(2, 2)}, 2, 0, P_DEF, LATER,
     T_RETRY, T_ELIGIBLE,
     1, 15, 1, 10, 25, {500}, 1},
    {"a newer success recorded first still wins",
     {S(10, 1), F(5, 2, 500)}, 2, 0, P_DEF, LATER,
     T_NONE, NULL,
     0, 0, 0, 0, 0, {0}, 0},
    /* Policy shapes. */
    {"immediate retry, delay 0: retry at once",
     {F(0, 1, 500)}, 1, 0, POL(3, true, 0.0, 2.0), T_AT(0),
     T_RETRY, T_ELIGIBLE,
     1, 0, 1, 0, 0, {500}, 1},
    {"immediate retry, delay 0: second failure too",
     {F(0, 1, 500), F(1, 2, 500)}, 2, 0, POL(3, true, 0.0, 2.0), T_AT(1),
     T_RETRY, T_ELIGIBLE,
     2, 0, 2, 1, 1, {500, 500}, 2},
    {"multiplier 1 keeps the delay",
     {F(0, 1, 500), F(1, 2, 500), F(2, 3, 500)},
     3, 0, POL(5, false, 10.0, 1.0), T_AT(11),
     T_WAIT, "retry delay 10 minutes has not elapsed",
     3, 10, 3, 2, 12, {500, 500, 500}, 3},
    {"fractional delay and multiplier",
     {F(0, 1, 500), F(10, 2, 500)}, 2, 0, POL(3, false, 7.5, 1.5), T_AT(20),
     T_WAIT, "retry delay 11.25 minutes has not elapsed",
     2, 11.25, 2, 10, 21.25, {500, 500}, 2},
    {"multiplier 10, third failure of max 4",
     {F(0, 1, 500), F(1, 2, 500), F(2, 3, 500)},
     3, 0, POL(4, false, 1.0, 10.0), T_AT(101),
     T_WAIT, "retry delay 100 minutes has not elapsed",
     3, 100, 3, 2, 102, {500, 500, 500}, 3},
};
/* clang-format on */

static void
test_retry_rules_decisions(void **state)
{
    (void)state;
    for (size_t c = 0;
         c < sizeof(t_decision_cases) / sizeof(t_decision_cases[0]); c++) {
        const t_decision_case *tc = &t_decision_cases[c];
        retry_attempt att[T_MAX_ATT];
        char ids[T_MAX_ATT][16], want_id[16];
        Cv__RetryDecision *d = (Cv__RetryDecision *)0x1;
        cv_error err;
        int rv;

        for (size_t i = 0; i < tc->n; i++) {
            snprintf(ids[i], sizeof(ids[i]), "d%lld",
                     (long long)tc->att[i].seq);
            att[i].delivery_id = ids[i];
            att[i].at_us = T_AT(tc->att[i].at_min);
            att[i].seq = tc->att[i].seq;
            att[i].success = tc->att[i].success;
            att[i].has_status_code = tc->att[i].status != T_NO_CODE;
            att[i].status_code =
                tc->att[i].status != T_NO_CODE ? tc->att[i].status : 0;
        }
        cv_error_clear(&err);
        rv = retry_decide("gordackrecoveryesc-00000000000000aa", "slack", att,
                          tc->n, tc->ack, &tc->policy, tc->now_us, &d, &err);
        if (rv != 0)
            fail_msg("%s: retry_decide failed (%d): %s", tc->name, rv, err.msg);
        if (tc->action == T_NONE) {
            if (d != NULL)
                fail_msg("%s: expected no decision, got %s", tc->name,
                         d->reason);
            continue;
        }
        if (d == NULL)
            fail_msg("%s: expected a decision, got none", tc->name);
        assert_string_equal(d->plan_id, "gordackrecoveryesc-00000000000000aa");
        assert_string_equal(d->provider, "slack");
        assert_true(d->has_action);
        if ((int)d->action != tc->action || strcmp(d->reason, tc->reason) != 0)
            fail_msg("%s: action %d \"%s\", expected %d \"%s\"", tc->name,
                     d->action, d->reason, tc->action, tc->reason);
        if (d->retry_count != tc->retry_count)
            fail_msg("%s: retry_count %lld, expected %lld", tc->name,
                     (long long)d->retry_count, (long long)tc->retry_count);
        assert_true(d->has_max_retry_attempts);
        assert_int_equal(d->max_retry_attempts, tc->policy.max_retry_attempts);
        assert_true(d->has_retry_delay_minutes);
        if (fabs(d->retry_delay_minutes - tc->delay) > 1e-9)
            fail_msg("%s: delay %g, expected %g", tc->name,
                     d->retry_delay_minutes, tc->delay);
        snprintf(want_id, sizeof(want_id), "d%lld", (long long)tc->latest_seq);
        assert_string_equal(d->latest_delivery_id, want_id);
        t_assert_time(d->latest_delivery_at, T_AT(tc->latest_min));
        t_assert_time(d->next_retry_at, T_AT(tc->next_min));
        if (d->n_failed_status_codes != tc->n_codes)
            fail_msg("%s: %zu failed_status_codes, expected %zu", tc->name,
                     d->n_failed_status_codes, tc->n_codes);
        for (size_t i = 0; i < tc->n_codes; i++)
            assert_int_equal(d->failed_status_codes[i], tc->codes[i]);
        assert_int_equal(d->has_acknowledgement_state, tc->ack != 0);
        if (tc->ack != 0)
            assert_int_equal(d->acknowledgement_state, tc->ack);
        protobuf_c_message_free_unpacked(&d->base, NULL);
    }
}

/* The literal texts of one row, as a cross-check of the T_AT arithmetic. */
static void
test_retry_rules_decision_texts(void **state)
{
    retry_attempt att[2] = {
        {"rcd-a", T0_US, 1, false, true, 503},
        {"rcd-b", T0_US + 10 * T_MIN, 2, false, true, 502},
    };
    Cv__RetryDecision *d = NULL;
    cv_error err;

    (void)state;
    assert_int_equal(retry_decide("p", "jira", att, 2, 0, &t_default_policy,
                                  T0_US + 39 * T_MIN, &d, &err),
                     0);
    assert_non_null(d);
    assert_string_equal(d->latest_delivery_id, "rcd-b");
    assert_string_equal(d->latest_delivery_at, "2025-11-27T05:39:23.000000Z");
    assert_string_equal(d->next_retry_at, "2025-11-27T06:09:23.000000Z");
    assert_string_equal(d->reason, "retry delay 30 minutes has not elapsed");
    protobuf_c_message_free_unpacked(&d->base, NULL);
}

/* A very long streak with a large multiplier stays finite and in range. */
static void
test_retry_rules_delay_cap(void **state)
{
    const retry_policy pol = {100, false, 10080.0, 10.0};
    retry_attempt *att = calloc(5000, sizeof(*att));
    Cv__RetryDecision *d = NULL;
    cv_error err;

    (void)state;
    assert_non_null(att);
    for (size_t i = 0; i < 5000; i++) {
        att[i].delivery_id = "rcd-x";
        att[i].at_us = T0_US + (int64_t)i;
        att[i].seq = (int64_t)i + 1;
        att[i].has_status_code = true;
        att[i].status_code = 503;
    }
    assert_true(retry_delay_for(&pol, 1) == 10080.0);
    assert_true(retry_delay_for(&pol, 3) == 1008000.0);
    assert_true(retry_delay_for(&pol, 5000) == RETRY_DELAY_CAP_MINUTES);
    assert_int_equal(
        retry_decide("p", "slack", att, 5000, 0, &pol, T0_US, &d, &err), 0);
    assert_non_null(d);
    assert_int_equal(d->action, T_SUPPRESS);
    assert_string_equal(d->reason, "maximum retry attempts 100 reached");
    assert_int_equal(d->retry_count, 5000);
    assert_true(isfinite(d->retry_delay_minutes));
    assert_string_equal(d->next_retry_at, "9999-12-31T23:59:59.999999Z");
    assert_int_equal(d->n_failed_status_codes, 5000);
    protobuf_c_message_free_unpacked(&d->base, NULL);
    free(att);
}

static void
test_retry_rules_status_retryable(void **state)
{
    static const struct {
        bool has;
        int64_t code;
        bool want;
    } cases[] = {
        {false, 0, true},   {true, 0, true},    {true, 200, true},
        {true, 302, true},  {true, 399, true},  {true, 400, false},
        {true, 401, false}, {true, 404, false}, {true, 407, false},
        {true, 408, true},  {true, 409, false}, {true, 428, false},
        {true, 429, true},  {true, 430, false}, {true, 499, false},
        {true, 500, true},  {true, 503, true},  {true, 599, true},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (retry_status_retryable(cases[i].has, cases[i].code) !=
            cases[i].want)
            fail_msg("status %lld (has %d): expected retryable %d",
                     (long long)cases[i].code, cases[i].has, cases[i].want);
}

static void
test_retry_rules_ack_state_from_name(void **state)
{
    (void)state;
    assert_int_equal(retry_ack_state_from_name(NULL), 0);
    assert_int_equal(retry_ack_state_from_name(""), 0);
    assert_int_equal(retry_ack_state_from_name("unspecified"), 0);
    assert_int_equal(retry_ack_state_from_name("bogus"), 0);
    assert_int_equal(retry_ack_state_from_name("acknowledged"),
                     CV__ACK_STATE__ACK_STATE_ACKNOWLEDGED);
    assert_int_equal(retry_ack_state_from_name("resolved"),
                     CV__ACK_STATE__ACK_STATE_RESOLVED);
    assert_int_equal(retry_ack_state_from_name("dismissed"),
                     CV__ACK_STATE__ACK_STATE_DISMISSED);
}

/* ---- policy ----------------------------------------------------------- */

/* A policy request: each field set when its has_ is 1. */
typedef struct t_pol_in {
    int has_max;
    int64_t max;
    int has_max_alias;
    int64_t max_alias;
    int has_immediate;
    bool immediate;
    int has_delay;
    double delay;
    int has_delay_alias;
    double delay_alias;
    int has_mult;
    double mult;
    int has_mult_alias;
    double mult_alias;
} t_pol_in;

static void
t_policy_msg(const t_pol_in *in, Cv__RetryPolicy *p)
{
    cv__retry_policy__init(p);
    p->has_max_retry_attempts = in->has_max;
    p->max_retry_attempts = in->max;
    p->has_max_retries = in->has_max_alias;
    p->max_retries = in->max_alias;
    p->has_allow_immediate_retry = in->has_immediate;
    p->allow_immediate_retry = in->immediate;
    p->has_retry_delay_minutes = in->has_delay;
    p->retry_delay_minutes = in->delay;
    p->has_delay_minutes = in->has_delay_alias;
    p->delay_minutes = in->delay_alias;
    p->has_backoff_multiplier = in->has_mult;
    p->backoff_multiplier = in->mult;
    p->has_multiplier = in->has_mult_alias;
    p->multiplier = in->mult_alias;
}

static void
test_retry_rules_policy_defaults(void **state)
{
    static const struct {
        const char *name;
        t_pol_in in;
        retry_policy want;
    } cases[] = {
        {"all defaults", {0}, {3, false, 15.0, 2.0}},
        {"immediate: delay defaults to 0",
         {.has_immediate = 1, .immediate = true},
         {3, true, 0.0, 2.0}},
        {"immediate false given", {.has_immediate = 1}, {3, false, 15.0, 2.0}},
        {"canonical names",
         {.has_max = 1,
          .max = 7,
          .has_delay = 1,
          .delay = 5,
          .has_mult = 1,
          .mult = 1.5},
         {7, false, 5.0, 1.5}},
        {"aliases",
         {.has_max_alias = 1,
          .max_alias = 9,
          .has_delay_alias = 1,
          .delay_alias = 20,
          .has_mult_alias = 1,
          .mult_alias = 3},
         {9, false, 20.0, 3.0}},
        {"name and alias agreeing",
         {.has_max = 1,
          .max = 4,
          .has_max_alias = 1,
          .max_alias = 4,
          .has_delay = 1,
          .delay = 2,
          .has_delay_alias = 1,
          .delay_alias = 2,
          .has_mult = 1,
          .mult = 4,
          .has_mult_alias = 1,
          .mult_alias = 4},
         {4, false, 2.0, 4.0}},
        {"lower bounds",
         {.has_max = 1,
          .max = 1,
          .has_delay = 1,
          .delay = 1,
          .has_mult = 1,
          .mult = 1},
         {1, false, 1.0, 1.0}},
        {"upper bounds",
         {.has_max = 1,
          .max = 100,
          .has_delay = 1,
          .delay = 10080,
          .has_mult = 1,
          .mult = 10},
         {100, false, 10080.0, 10.0}},
        {"immediate allows 0",
         {.has_immediate = 1, .immediate = true, .has_delay = 1, .delay = 0},
         {3, true, 0.0, 2.0}},
        {"immediate allows a fraction below 1",
         {.has_immediate = 1,
          .immediate = true,
          .has_delay_alias = 1,
          .delay_alias = 0.5},
         {3, true, 0.5, 2.0}},
        {"immediate with a delay given",
         {.has_immediate = 1, .immediate = true, .has_delay = 1, .delay = 30},
         {3, true, 30.0, 2.0}},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        Cv__RetryPolicy msg;
        retry_policy got;
        cv_error err;

        t_policy_msg(&cases[i].in, &msg);
        cv_error_clear(&err);
        if (retry_policy_resolve(&msg, &got, &err) != 0)
            fail_msg("%s: rejected: %s", cases[i].name, err.msg);
        if (got.max_retry_attempts != cases[i].want.max_retry_attempts ||
            got.allow_immediate_retry != cases[i].want.allow_immediate_retry ||
            got.retry_delay_minutes != cases[i].want.retry_delay_minutes ||
            got.backoff_multiplier != cases[i].want.backoff_multiplier)
            fail_msg("%s: got {%lld, %d, %g, %g}", cases[i].name,
                     (long long)got.max_retry_attempts,
                     got.allow_immediate_retry, got.retry_delay_minutes,
                     got.backoff_multiplier);
    }
    /* No policy object at all: the defaults. */
    {
        retry_policy got;
        cv_error err;

        assert_int_equal(retry_policy_resolve(NULL, &got, &err), 0);
        assert_int_equal(got.max_retry_attempts, 3);
        assert_false(got.allow_immediate_retry);
        assert_true(got.retry_delay_minutes == 15.0);
        assert_true(got.backoff_multiplier == 2.0);
    }
}

static void
test_retry_rules_policy_rejected(void **state)
{
    static const struct {
        t_pol_in in;
        const char *msg;
    } cases[] = {
        {{.has_max = 1, .max = 0},
         "retry_policy.max_retry_attempts must be between 1 and 100"},
        {{.has_max = 1, .max = -1},
         "retry_policy.max_retry_attempts must be between 1 and 100"},
        {{.has_max = 1, .max = 101},
         "retry_policy.max_retry_attempts must be between 1 and 100"},
        {{.has_max = 1, .max = INT64_MAX},
         "retry_policy.max_retry_attempts must be between 1 and 100"},
        {{.has_max_alias = 1, .max_alias = 0},
         "retry_policy.max_retries must be between 1 and 100"},
        {{.has_max_alias = 1, .max_alias = 101},
         "retry_policy.max_retries must be between 1 and 100"},
        {{.has_max = 1, .max = 101, .has_max_alias = 1, .max_alias = 101},
         "retry_policy.max_retry_attempts must be between 1 and 100"},
        {{.has_max = 1, .max = 3, .has_max_alias = 1, .max_alias = 4},
         "retry_policy.max_retry_attempts and its alias "
         "retry_policy.max_retries must not differ"},
        {{.has_delay = 1, .delay = 0},
         "retry_policy.retry_delay_minutes must be between 1 and 10080"},
        {{.has_delay = 1, .delay = 0.5},
         "retry_policy.retry_delay_minutes must be between 1 and 10080"},
        {{.has_delay = 1, .delay = 10080.5},
         "retry_policy.retry_delay_minutes must be between 1 and 10080"},
        {{.has_delay = 1, .delay = -1},
         "retry_policy.retry_delay_minutes must be between 1 and 10080"},
        {{.has_delay = 1, .delay = NAN},
         "retry_policy.retry_delay_minutes must be between 1 and 10080"},
        {{.has_delay = 1, .delay = INFINITY},
         "retry_policy.retry_delay_minutes must be between 1 and 10080"},
        {{.has_delay_alias = 1, .delay_alias = 0},
         "retry_policy.delay_minutes must be between 1 and 10080"},
        {{.has_immediate = 1, .immediate = true, .has_delay = 1, .delay = -1},
         "retry_policy.retry_delay_minutes must be between 0 and 10080"},
        {{.has_immediate = 1,
          .immediate = true,
          .has_delay = 1,
          .delay = 10081},
         "retry_policy.retry_delay_minutes must be between 0 and 10080"},
        {{.has_delay = 1, .delay = 5, .has_delay_alias = 1, .delay_alias = 6},
         "retry_policy.retry_delay_minutes and its alias "
         "retry_policy.delay_minutes must not differ"},
        {{.has_mult = 1, .mult = 0.99},
         "retry_policy.backoff_multiplier must be between 1 and 10"},
        {{.has_mult = 1, .mult = 0},
         "retry_policy.backoff_multiplier must be between 1 and 10"},
        {{.has_mult = 1, .mult = 10.01},
         "retry_policy.backoff_multiplier must be between 1 and 10"},
        {{.has_mult = 1, .mult = -2},
         "retry_policy.backoff_multiplier must be between 1 and 10"},
        {{.has_mult = 1, .mult = NAN},
         "retry_policy.backoff_multiplier must be between 1 and 10"},
        {{.has_mult_alias = 1, .mult_alias = 11},
         "retry_policy.multiplier must be between 1 and 10"},
        {{.has_mult = 1, .mult = 2, .has_mult_alias = 1, .mult_alias = 3},
         "retry_policy.backoff_multiplier and its alias "
         "retry_policy.multiplier must not differ"},
        /* The first fault in field order is the one reported. */
        {{.has_max = 1, .max = 0, .has_mult = 1, .mult = 0},
         "retry_policy.max_retry_attempts must be between 1 and 100"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        Cv__RetryPolicy msg;
        retry_policy got;
        cv_error err;
        int rv;

        t_policy_msg(&cases[i].in, &msg);
        cv_error_clear(&err);
        rv = retry_policy_resolve(&msg, &got, &err);
        if (rv == 0)
            fail_msg("case %zu: accepted, expected \"%s\"", i, cases[i].msg);
        assert_int_equal(rv, CV_INVALID_ARGUMENT);
        if (strcmp(err.msg, cases[i].msg) != 0)
            fail_msg("case %zu: \"%s\", expected \"%s\"", i, err.msg,
                     cases[i].msg);
    }
}

static void
test_retry_rules_plan_request_check(void **state)
{
    Cv__RetryPlanRequest req = CV__RETRY_PLAN_REQUEST__INIT;
    Cv__RetryPolicy pol = CV__RETRY_POLICY__INIT;
    char long_name[130];
    retry_policy p;
    char *by = NULL;
    cv_error err;

    (void)state;
    /* generated_by defaults to "console". */
    assert_int_equal(retry_plan_request_check(&req, NULL, &p, &by, &err), 0);
    assert_string_equal(by, "console");
    free(by);
    req.generated_by = "   ";
    assert_int_equal(retry_plan_request_check(&req, NULL, &p, &by, &err), 0);
    assert_string_equal(by, "console");
    free(by);
    /* Trimmed, and a verified actor overrides it. */
    req.generated_by = "  platform-owner ";
    assert_int_equal(retry_plan_request_check(&req, NULL, &p, &by, &err), 0);
    assert_string_equal(by, "platform-owner");
    free(by);
    assert_int_equal(retry_plan_request_check(&req, "carol", &p, &by, &err), 0);
    assert_string_equal(by, "carol");
    free(by);
    /* Secrets are redacted. */
    req.generated_by = "bot Bearer abcdefghijklmnop0123456789";
    assert_int_equal(retry_plan_request_check(&req, NULL, &p, &by, &err), 0);
    assert_null(strstr(by, "abcdefghijklmnop0123456789"));
    assert_non_null(strstr(by, "REDACTED"));
    free(by);
    /* 128 characters pass, 129 do not. */
    memset(long_name, 'a', sizeof(long_name));
    long_name[128] = '\0';
    req.generated_by = long_name;
    assert_int_equal(retry_plan_request_check(&req, NULL, &p, &by, &err), 0);
    free(by);
    long_name[128] = 'a';
    long_name[129] = '\0';
    by = (char *)0x1;
    assert_int_equal(retry_plan_request_check(&req, NULL, &p, &by, &err),
                     CV_INVALID_ARGUMENT);
    assert_string_equal(err.msg, "generated_by must be at most 128 characters");
    assert_null(by);
    /* A bad policy is reported (and nothing leaks). */
    req.generated_by = "ok";
    req.retry_policy = &pol;
    pol.has_backoff_multiplier = 1;
    pol.backoff_multiplier = 11;
    assert_int_equal(retry_plan_request_check(&req, NULL, &p, &by, &err),
                     CV_INVALID_ARGUMENT);
    assert_string_equal(
        err.msg, "retry_policy.backoff_multiplier must be between 1 and 10");
    assert_null(by);
}

/* ---- delivery intake -------------------------------------------------- */

static Cv__DeliveryRecord *
t_delivery_ok(const Cv__RecordDeliveryRequest *req, int64_t *at)
{
    Cv__DeliveryRecord *d = NULL;
    cv_error err;

    cv_error_clear(&err);
    if (retry_delivery_build(req, "req-unit", T0_US, &d, at, &err) != 0)
        fail_msg("retry_delivery_build failed: %s", err.msg);
    assert_non_null(d);
    return d;
}

static void
test_retry_rules_delivery_record(void **state)
{
    Cv__RecordDeliveryRequest req = CV__RECORD_DELIVERY_REQUEST__INIT;
    Cv__DeliveryRecord *d, *d2;
    int64_t at = 0;

    (void)state;
    req.plan_id = "gordackrecoveryesc-0123456789abcdef";
    req.provider = "  Slack ";
    req.has_success = 1;
    req.success = 0;
    req.has_status_code = 1;
    req.status_code = 503;
    req.has_attempt_count = 1;
    req.attempt_count = 4;
    req.started_at = "2025-11-27T07:29:23+02:00";
    req.completed_at = "2025-11-27t05:30:00.5z";
    req.error = "  upstream 503 from https://hooks.example.com/x?token=abc ";
    d = t_delivery_ok(&req, &at);
    t_assert_id(d->delivery_id, "rcd-");
    assert_string_equal(d->schema_version, T_DELIVERY_SCHEMA);
    assert_string_equal(d->plan_id, "gordackrecoveryesc-0123456789abcdef");
    assert_string_equal(d->provider, "slack");
    assert_true(d->has_delivery_success);
    assert_false(d->delivery_success);
    assert_int_equal(d->n_status_codes, 1);
    assert_int_equal(d->status_codes[0], 503);
    assert_int_equal(d->attempt_count, 4);
    /* Stored timestamps are normalised to UTC with microseconds. */
    assert_string_equal(d->started_at, T0_TEXT);
    assert_string_equal(d->completed_at, "2025-11-27T05:30:00.500000Z");
    assert_string_equal(d->created_at, T0_TEXT);
    assert_string_equal(d->connector_delivery_source,
                        "go_backend_rollback_drill_acknowledgement_audit_"
                        "recovery_escalation");
    assert_string_equal(d->metadata_kind, "release-connector-delivery");
    /* The query string is redacted, the text trimmed. */
    assert_string_equal(
        d->error, "upstream 503 from https://hooks.example.com/x?REDACTED");
    assert_int_equal(d->redaction_count, 1);
    /* The attempt's time is completed_at. */
    assert_int_equal(at, T0_US + 37 * 1000000LL + 500000);

    /* The same request under another request id is another record. */
    {
        Cv__DeliveryRecord *o = NULL;
        cv_error err;

        assert_int_equal(
            retry_delivery_build(&req, "req-other", T0_US, &o, &at, &err), 0);
        assert_string_not_equal(o->delivery_id, d->delivery_id);
        protobuf_c_message_free_unpacked(&o->base, NULL);
    }
    protobuf_c_message_free_unpacked(&d->base, NULL);

    /* Defaults: attempt_count 1, no codes, no times; time = created_at. */
    cv__record_delivery_request__init(&req);
    req.plan_id = "p";
    req.provider = "jira";
    req.has_success = 1;
    req.success = 1;
    d2 = t_delivery_ok(&req, &at);
    assert_true(d2->delivery_success);
    assert_int_equal(d2->n_status_codes, 0);
    assert_int_equal(d2->attempt_count, 1);
    assert_null(d2->started_at);
    assert_null(d2->completed_at);
    assert_null(d2->error);
    assert_int_equal(d2->redaction_count, 0);
    assert_int_equal(at, T0_US);
    protobuf_c_message_free_unpacked(&d2->base, NULL);

    /* Only started_at: that is the attempt's time; equal times pass. */
    req.started_at = "2025-11-27T05:00:00Z";
    d2 = t_delivery_ok(&req, &at);
    assert_int_equal(at, T0_US - (29 * 60 + 23) * 1000000LL);
    protobuf_c_message_free_unpacked(&d2->base, NULL);
    req.completed_at = "2025-11-27T05:00:00.000Z";
    d2 = t_delivery_ok(&req, &at);
    assert_int_equal(at, T0_US - (29 * 60 + 23) * 1000000LL);
    protobuf_c_message_free_unpacked(&d2->base, NULL);

    /* Boundaries that pass: status 0 and 599, attempt_count 1000. */
    req.has_status_code = 1;
    req.status_code = 0;
    req.has_attempt_count = 1;
    req.attempt_count = 1000;
    d2 = t_delivery_ok(&req, &at);
    assert_int_equal(d2->status_codes[0], 0);
    assert_int_equal(d2->attempt_count, 1000);
    protobuf_c_message_free_unpacked(&d2->base, NULL);
    req.status_code = 599;
    d2 = t_delivery_ok(&req, &at);
    assert_int_equal(d2->status_codes[0], 599);
    protobuf_c_message_free_unpacked(&d2->base, NULL);

    /* Time boundaries that pass: exactly 5 minutes ahead of now, and
     * the first instant of 2000. */
    req.started_at = "2000-01-01T00:00:00Z";
    req.completed_at = "2025-11-27T05:34:23Z";
    d2 = t_delivery_ok(&req, &at);
    assert_int_equal(at, T0_US + 5 * 60 * 1000000LL);
    protobuf_c_message_free_unpacked(&d2->base, NULL);
}

typedef enum t_del_field {
    TD_PROVIDER,
    TD_NO_SUCCESS,
    TD_STATUS,
    TD_COUNT,
    TD_STARTED,
    TD_COMPLETED,
    TD_ERROR,
} t_del_field;

static void
test_retry_rules_delivery_rejected(void **state)
{
    static char long_error[502];
    static const struct {
        t_del_field field;
        const char *text;
        int64_t num;
        const char *msg;
    } cases[] = {
        {TD_PROVIDER, NULL, 0, "provider is required"},
        {TD_PROVIDER, "  ", 0, "provider is required"},
        {TD_PROVIDER, "slack hooks", 0,
         "provider must use only a-z, 0-9, '.', '_' and '-'"},
        {TD_PROVIDER,
         "a234567890123456789012345678901234567890123456789012345678901234"
         "5",
         0, "provider must be at most 64 characters"},
        {TD_NO_SUCCESS, NULL, 0, "success is required"},
        {TD_STATUS, NULL, -1, "status_code must be between 0 and 599"},
        {TD_STATUS, NULL, 600, "status_code must be between 0 and 599"},
        {TD_STATUS, NULL, INT64_MIN, "status_code must be between 0 and 599"},
        {TD_COUNT, NULL, 0, "attempt_count must be between 1 and 1000"},
        {TD_COUNT, NULL, -5, "attempt_count must be between 1 and 1000"},
        {TD_COUNT, NULL, 1001, "attempt_count must be between 1 and 1000"},
        {TD_STARTED, "yesterday", 0,
         "started_at must be an RFC 3339 timestamp"},
        {TD_STARTED, "", 0, "started_at must be an RFC 3339 timestamp"},
        {TD_STARTED, "2026-02-30T00:00:00Z", 0,
         "started_at must be an RFC 3339 timestamp"},
        {TD_STARTED, "2026-01-01T00:00:00", 0,
         "started_at must be an RFC 3339 timestamp"},
        {TD_COMPLETED, "1700000000", 0,
         "completed_at must be an RFC 3339 timestamp"},
        {TD_COMPLETED, "2025-11-27T05:29:22.999999Z", 0,
         "completed_at must not be before started_at"},
        /* Attempts lie in the past: 5 minutes of clock skew, not 9999. */
        {TD_STARTED, "9999-12-31T23:59:59Z", 0,
         "started_at must not be more than 5 minutes in the future"},
        {TD_COMPLETED, "2025-11-27T05:34:23.000001Z", 0,
         "completed_at must not be more than 5 minutes in the future"},
        {TD_STARTED, "1999-12-31T23:59:59.999999Z", 0,
         "started_at must not be before 2000-01-01T00:00:00Z"},
        {TD_COMPLETED, "0001-01-01T00:00:00Z", 0,
         "completed_at must not be before 2000-01-01T00:00:00Z"},
        {TD_ERROR, long_error, 0, "error must be at most 500 characters"},
        {TD_ERROR, "bad\x01text", 0,
         "error must not contain control characters"},
    };

    (void)state;
    memset(long_error, 'e', 501);
    long_error[501] = '\0';
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        Cv__RecordDeliveryRequest req = CV__RECORD_DELIVERY_REQUEST__INIT;
        Cv__DeliveryRecord *d = (Cv__DeliveryRecord *)0x1;
        int64_t at = 0;
        cv_error err;
        int rv;

        req.plan_id = "p";
        req.provider = "slack";
        req.has_success = 1;
        req.started_at = T0_TEXT;
        switch (cases[i].field) {
        case TD_PROVIDER:
            req.provider = (char *)cases[i].text;
            break;
        case TD_NO_SUCCESS:
            req.has_success = 0;
            break;
        case TD_STATUS:
            req.has_status_code = 1;
            req.status_code = cases[i].num;
            break;
        case TD_COUNT:
            req.has_attempt_count = 1;
            req.attempt_count = cases[i].num;
            break;
        case TD_STARTED:
            req.started_at = (char *)cases[i].text;
            break;
        case TD_COMPLETED:
            req.completed_at = (char *)cases[i].text;
            break;
        case TD_ERROR:
            req.error = (char *)cases[i].text;
            break;
        }
        cv_error_clear(&err);
        rv = retry_delivery_build(&req, "req-unit", T0_US, &d, &at, &err);
        if (rv == 0) {
            protobuf_c_message_free_unpacked(&d->base, NULL);
            fail_msg("case %zu: accepted, expected \"%s\"", i, cases[i].msg);
        }
        assert_int_equal(rv, CV_INVALID_ARGUMENT);
        assert_null(d);
        if (strcmp(err.msg, cases[i].msg) != 0)
            fail_msg("case %zu: \"%s\", expected \"%s\"", i, err.msg,
                     cases[i].msg);
    }
}

/* ---- plan assembly ---------------------------------------------------- */

/* A decision for (plan, provider) with the given action, built by the
 * rules from one 500 failure at T0 and a suitable "now". */
static Cv__RetryDecision *
t_decision(const char *plan, const char *provider, int action)
{
    retry_attempt a = {"rcd-0", T0_US, 1,
                       false,   true,  action == T_SUPPRESS ? 404 : 500};
    Cv__RetryDecision *d = NULL;
    cv_error err;

    assert_int_equal(retry_decide(plan, provider, &a, 1, 0, &t_default_policy,
                                  action == T_WAIT ? T0_US : LATER, &d, &err),
                     0);
    assert_non_null(d);
    assert_int_equal(d->action, action);
    return d;
}

static Cv__RetryPlan *
t_plan(Cv__RetryDecision **list, size_t n, const char *plan_id)
{
    Cv__RetryDecision **arr = NULL;
    Cv__RetryPlan *p = NULL;
    cv_error err;

    if (n > 0) {
        arr = calloc(n, sizeof(*arr));
        assert_non_null(arr);
        memcpy(arr, list, n * sizeof(*arr));
    }
    cv_error_clear(&err);
    if (retry_plan_build(&t_default_policy, "console", plan_id, &arr, n,
                         "req-unit", T0_US, &p, &err) != 0)
        fail_msg("retry_plan_build failed: %s", err.msg);
    assert_null(arr);
    assert_non_null(p);
    return p;
}

static void
test_retry_rules_plan_build(void **state)
{
    Cv__RetryDecision *list[4];
    Cv__RetryPlanMetadata *m;
    Cv__RetryPlan *p;

    (void)state;
    list[0] = t_decision("gordackrecoveryesc-b", "slack", T_WAIT);
    list[1] = t_decision("gordackrecoveryesc-a", "teams", T_SUPPRESS);
    list[2] = t_decision("gordackrecoveryesc-b", "jira", T_RETRY);
    list[3] = t_decision("gordackrecoveryesc-a", "jira.v2", T_WAIT);
    p = t_plan(list, 4, NULL);
    t_assert_id(p->retry_plan_id, "gordackrecoveryescretry-");
    assert_string_equal(p->schema_version, T_PLAN_SCHEMA);
    assert_string_equal(p->product, "CAVRA");
    assert_string_equal(p->generated_at, T0_TEXT);
    assert_string_equal(p->generated_by, "console");
    assert_null(p->plan_id);
    assert_int_equal(p->alert_level, CV__ALERT_LEVEL__ALERT_LEVEL_CRITICAL);
    assert_int_equal(p->decision_count, 4);
    assert_int_equal(p->retryable_count, 1);
    assert_int_equal(p->waiting_count, 2);
    assert_int_equal(p->suppressed_count, 1);
    assert_int_equal(p->max_retry_attempts, 3);
    assert_true(p->base_retry_delay_minutes == 15.0);
    assert_true(p->has_allow_immediate_retry);
    assert_false(p->allow_immediate_retry);
    assert_true(p->backoff_multiplier == 2.0);
    /* Sorted by plan_id, then provider (byte order). */
    assert_int_equal(p->n_retry_decisions, 4);
    assert_string_equal(p->retry_decisions[0]->plan_id, "gordackrecoveryesc-a");
    assert_string_equal(p->retry_decisions[0]->provider, "jira.v2");
    assert_string_equal(p->retry_decisions[1]->provider, "teams");
    assert_string_equal(p->retry_decisions[2]->plan_id, "gordackrecoveryesc-b");
    assert_string_equal(p->retry_decisions[2]->provider, "jira");
    assert_string_equal(p->retry_decisions[3]->provider, "slack");
    assert_true(p->n_controls > 0);

    m = retry_plan_metadata(p);
    assert_non_null(m);
    assert_string_equal(m->metadata_kind, T_PLAN_KIND);
    assert_string_equal(m->session_id, p->retry_plan_id);
    assert_string_equal(m->retry_plan_id, p->retry_plan_id);
    assert_string_equal(m->created_at, p->generated_at);
    assert_string_equal(m->signer, "cavra-recovery/retry-planning-service");
    assert_int_equal(m->alert_level, p->alert_level);
    assert_int_equal(m->decision_count, 4);
    assert_int_equal(m->retryable_count, 1);
    assert_non_null(m->recovery_escalation_delivery_retry_plan);
    assert_string_equal(
        m->recovery_escalation_delivery_retry_plan->retry_plan_id,
        p->retry_plan_id);
    assert_int_equal(
        m->recovery_escalation_delivery_retry_plan->n_retry_decisions, 4);
    protobuf_c_message_free_unpacked(&m->base, NULL);
    protobuf_c_message_free_unpacked(&p->base, NULL);

    /* Alert levels: warning with a wait and no retry; healthy otherwise. */
    list[0] = t_decision("x", "slack", T_WAIT);
    list[1] = t_decision("x", "jira", T_SUPPRESS);
    p = t_plan(list, 2, "x");
    assert_string_equal(p->plan_id, "x");
    assert_int_equal(p->alert_level, CV__ALERT_LEVEL__ALERT_LEVEL_WARNING);
    protobuf_c_message_free_unpacked(&p->base, NULL);
    list[0] = t_decision("x", "jira", T_SUPPRESS);
    p = t_plan(list, 1, NULL);
    assert_int_equal(p->alert_level, CV__ALERT_LEVEL__ALERT_LEVEL_HEALTHY);
    assert_int_equal(p->suppressed_count, 1);
    protobuf_c_message_free_unpacked(&p->base, NULL);
    p = t_plan(NULL, 0, NULL);
    assert_int_equal(p->alert_level, CV__ALERT_LEVEL__ALERT_LEVEL_HEALTHY);
    assert_int_equal(p->decision_count, 0);
    assert_int_equal(p->n_retry_decisions, 0);
    protobuf_c_message_free_unpacked(&p->base, NULL);
}

/* Cursors: what encode writes decodes to the same pair; nothing else
 * is a cursor. */
static void
test_retry_rules_cursor(void **state)
{
    static const char *const bad[] = {
        "",
        "z",
        "7231",             /* odd content: "r1" without pairs */
        "72310a61",         /* "r1\na": no provider */
        "72310a0a62",       /* "r1\n\nb": empty plan */
        "72310a610a",       /* "r1\na\n": empty provider */
        "72310a610a42",     /* "r1\na\nB": upper-case provider */
        "72310a6120620a63", /* "r1\na b\nc" */
        "72320a610a62",     /* "r2\n...": another version */
        "72310a610a620a63", /* "r1\na\nb\nc": a newline in it */
        "72310A610A62",     /* upper-case hex */
        "72310a610a6200",   /* a NUL byte */
    };
    char *c, *plan = NULL, *prov = NULL;
    cv_error err;
    char longplan[RETRY_CURSOR_PLAN_MAX + 2];

    (void)state;
    c = retry_cursor_encode("gordackrecoveryesc-0123456789abcdef",
                            "pager.duty_2");
    assert_non_null(c);
    assert_int_equal(retry_cursor_decode(c, &plan, &prov, &err), 0);
    assert_string_equal(plan, "gordackrecoveryesc-0123456789abcdef");
    assert_string_equal(prov, "pager.duty_2");
    free(plan);
    free(prov);
    free(c);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cv_error_clear(&err);
        if (retry_cursor_decode(bad[i], &plan, &prov, &err) == 0)
            fail_msg("\"%s\" decoded", bad[i]);
        assert_int_equal(err.code, CV_INVALID_ARGUMENT);
        assert_string_equal(err.msg, "cursor is invalid");
        assert_null(plan);
        assert_null(prov);
    }
    assert_int_not_equal(retry_cursor_decode(NULL, &plan, &prov, &err), 0);
    /* Plan ids up to the maximum, not beyond. */
    memset(longplan, 'p', sizeof(longplan) - 1);
    longplan[RETRY_CURSOR_PLAN_MAX] = '\0';
    c = retry_cursor_encode(longplan, "x");
    assert_int_equal(retry_cursor_decode(c, &plan, &prov, &err), 0);
    free(plan);
    free(prov);
    free(c);
    longplan[RETRY_CURSOR_PLAN_MAX] = 'p';
    longplan[RETRY_CURSOR_PLAN_MAX + 1] = '\0';
    c = retry_cursor_encode(longplan, "x");
    assert_int_not_equal(retry_cursor_decode(c, &plan, &prov, &err), 0);
    free(c);
}

/* limit and cursor of a request. */
static void
test_retry_rules_page_resolve(void **state)
{
    Cv__RetryPlanRequest req = CV__RETRY_PLAN_REQUEST__INIT;
    retry_page page;
    cv_error err;
    char *c = retry_cursor_encode("plan-a", "slack");

    (void)state;
    assert_int_equal(retry_page_resolve(&req, NULL, &page, &err), 0);
    assert_int_equal(page.limit, RETRY_PAGE_LIMIT_DEFAULT);
    assert_null(page.after_plan);
    req.has_limit = 1;
    req.limit = 0;
    assert_int_equal(retry_page_resolve(&req, NULL, &page, &err),
                     CV_INVALID_ARGUMENT);
    assert_string_equal(err.msg, "limit must be between 1 and 5000");
    req.limit = RETRY_PAGE_LIMIT_MAX + 1;
    assert_int_equal(retry_page_resolve(&req, NULL, &page, &err),
                     CV_INVALID_ARGUMENT);
    req.limit = RETRY_PAGE_LIMIT_MAX;
    req.cursor = "";
    assert_int_equal(retry_page_resolve(&req, NULL, &page, &err), 0);
    assert_null(page.after_plan);
    req.cursor = c;
    assert_int_equal(retry_page_resolve(&req, "plan-a", &page, &err), 0);
    assert_string_equal(page.after_plan, "plan-a");
    assert_string_equal(page.after_provider, "slack");
    retry_page_free(&page);
    assert_int_equal(retry_page_resolve(&req, "plan-b", &page, &err),
                     CV_INVALID_ARGUMENT);
    assert_string_equal(err.msg,
                        "cursor is not from a retry plan of this plan_id");
    assert_null(page.after_plan);
    free(c);
}

/* A page keeps at most limit decisions and at most max_bytes of them,
 * but always the first. */
static void
test_retry_rules_page_cut(void **state)
{
    Cv__RetryDecision d[5];
    Cv__RetryDecision *p[5];
    int64_t codes[300];
    size_t one;

    (void)state;
    for (size_t i = 0; i < 300; i++)
        codes[i] = 500;
    for (size_t i = 0; i < 5; i++) {
        cv__retry_decision__init(&d[i]);
        d[i].plan_id = "gordackrecoveryesc-0123456789abcdef";
        d[i].provider = "slack";
        d[i].failed_status_codes = codes;
        d[i].n_failed_status_codes = 300;
        p[i] = &d[i];
    }
    one = protobuf_c_message_get_packed_size(&d[0].base) + 8;
    assert_int_equal(retry_page_cut(p, 5, 1000, SIZE_MAX), 5);
    assert_int_equal(retry_page_cut(p, 5, 3, SIZE_MAX), 3);
    assert_int_equal(retry_page_cut(p, 5, 1000, 2 * one), 2);
    assert_int_equal(retry_page_cut(p, 5, 1000, 2 * one + one - 1), 2);
    assert_int_equal(retry_page_cut(p, 5, 1, 2 * one), 1);
    /* Even one decision over the budget: the page makes progress. */
    assert_int_equal(retry_page_cut(p, 5, 1000, 1), 1);
    assert_int_equal(retry_page_cut(p, 0, 1000, 1), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_rules_decisions),
        cmocka_unit_test(test_retry_rules_decision_texts),
        cmocka_unit_test(test_retry_rules_delay_cap),
        cmocka_unit_test(test_retry_rules_status_retryable),
        cmocka_unit_test(test_retry_rules_ack_state_from_name),
        cmocka_unit_test(test_retry_rules_policy_defaults),
        cmocka_unit_test(test_retry_rules_policy_rejected),
        cmocka_unit_test(test_retry_rules_plan_request_check),
        cmocka_unit_test(test_retry_rules_delivery_record),
        cmocka_unit_test(test_retry_rules_delivery_rejected),
        cmocka_unit_test(test_retry_rules_plan_build),
        cmocka_unit_test(test_retry_rules_cursor),
        cmocka_unit_test(test_retry_rules_page_resolve),
        cmocka_unit_test(test_retry_rules_page_cut),
    };

    return cmocka_run_group_tests_name("retry_rules", tests, NULL, NULL);
}
