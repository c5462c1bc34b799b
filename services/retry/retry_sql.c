/*
 * retry_sql.c -- the retry-planning service's statements and the
 * transactions that store delivery attempts and retry plans with their
 * evidence.
 *
 * Design notes (the streak query):
 *  - A retry plan reads only what docs/api.md counts: per (plan, provider)
 *    pair, the failures after the pair's latest success. The pairs are
 *    enumerated with a recursive "skip scan" over the index
 *    delivery_attempts_pair (one index probe per pair, not one row per
 *    attempt); the latest success is one probe of the partial index
 *    delivery_attempts_pair_success (0003); the failures after it are an
 *    index range scan of delivery_attempts_pair. Nothing reads the stored
 *    JSON records, so the cost follows the number of pairs plus the length
 *    of their current failure streaks, not the size of the store.
 *  - Ordering is attempt_at, then seq (recording order), on both sides of
 *    the "after the latest success" comparison, so a success and a failure
 *    with the same time are ordered as they were recorded.
 *  - The rows come back grouped by pair; retry_sql_streaks() folds them
 *    into one retry_streak per pair.
 */
#include "retry_sql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_evidence.h"
#include "cv_transcode.h"

/* The per-pair part of the streak query; `pairs` is defined before it. */
#define RETRY_SQL_STREAK_ROWS                                                  \
    " SELECT p.plan_id, p.provider, f.delivery_id, f.status_code,"             \
    " (extract(epoch FROM f.attempt_at) * 1000000)::bigint, f.seq,"            \
    " c.acknowledgement_state"                                                 \
    " FROM pairs p"                                                            \
    " LEFT JOIN LATERAL (SELECT s.attempt_at, s.seq"                           \
    "   FROM delivery_attempts s"                                              \
    "   WHERE s.plan_id = p.plan_id AND s.provider = p.provider"               \
    "   AND s.success"                                                         \
    "   ORDER BY s.attempt_at DESC, s.seq DESC LIMIT 1) ls ON true"            \
    " CROSS JOIN LATERAL (SELECT d.delivery_id, d.status_code,"                \
    "   d.attempt_at, d.seq"                                                   \
    "   FROM delivery_attempts d"                                              \
    "   WHERE d.plan_id = p.plan_id AND d.provider = p.provider"               \
    "   AND d.attempt_at >= COALESCE(ls.attempt_at, '-infinity')"              \
    "   AND (d.attempt_at, d.seq) >"                                           \
    "       (COALESCE(ls.attempt_at, '-infinity'), COALESCE(ls.seq, 0))"       \
    "   AND NOT d.success) f"                                                  \
    " LEFT JOIN ack_current c"                                                 \
    "   ON c.plan_id = p.plan_id AND c.provider = p.provider"                  \
    " ORDER BY p.plan_id, p.provider, f.attempt_at, f.seq"

const cv_db_statement retry_sql_statements[] = {
    {"retry_insert_delivery",
     "INSERT INTO delivery_attempts (delivery_id, plan_id, provider, success,"
     " status_code, attempt_count, started_at, completed_at, attempt_at,"
     " created_at, request_id)"
     " VALUES ($1, $2, $3, $4::boolean, $5::int, $6::int, $7::timestamptz,"
     " $8::timestamptz, $9::timestamptz, $10::timestamptz, $11)"},
    /*
     * One page of the store's pairs that have a streak: a skip scan over
     * delivery_attempts_pair from the pair after $1/$2 (the cursor; ''
     * for the first page), each pair kept when its latest attempt failed,
     * at most $3 of them. The recursion yields one pair per step in
     * ascending order and runs only as far as the LIMIT reads, so a page
     * costs its own pairs, not the store.
     */
    {"retry_streaks_page",
     "WITH RECURSIVE walk (plan_id, provider) AS ("
     " (SELECT plan_id, provider FROM delivery_attempts"
     "  WHERE (plan_id, provider) > ($1, $2)"
     "  ORDER BY plan_id, provider LIMIT 1)"
     " UNION ALL"
     " SELECT n.plan_id, n.provider FROM walk q CROSS JOIN LATERAL"
     " (SELECT d.plan_id, d.provider FROM delivery_attempts d"
     "  WHERE (d.plan_id, d.provider) > (q.plan_id, q.provider)"
     "  ORDER BY d.plan_id, d.provider LIMIT 1) n),"
     " pairs AS (SELECT w.plan_id, w.provider FROM walk w"
     "  WHERE NOT (SELECT l.success FROM delivery_attempts l"
     "   WHERE l.plan_id = w.plan_id AND l.provider = w.provider"
     "   ORDER BY l.attempt_at DESC, l.seq DESC LIMIT 1)"
     "  LIMIT $3::int)" RETRY_SQL_STREAK_ROWS},
    /* The same within one plan ($1), from the provider after $2. */
    {"retry_streaks_plan_page",
     "WITH RECURSIVE walk (plan_id, provider) AS ("
     " (SELECT plan_id, provider FROM delivery_attempts"
     "  WHERE plan_id = $1 AND provider > $2"
     "  ORDER BY provider LIMIT 1)"
     " UNION ALL"
     " SELECT n.plan_id, n.provider FROM walk q CROSS JOIN LATERAL"
     " (SELECT d.plan_id, d.provider FROM delivery_attempts d"
     "  WHERE d.plan_id = $1 AND d.provider > q.provider"
     "  ORDER BY d.provider LIMIT 1) n),"
     " pairs AS (SELECT w.plan_id, w.provider FROM walk w"
     "  WHERE NOT (SELECT l.success FROM delivery_attempts l"
     "   WHERE l.plan_id = w.plan_id AND l.provider = w.provider"
     "   ORDER BY l.attempt_at DESC, l.seq DESC LIMIT 1)"
     "  LIMIT $3::int)" RETRY_SQL_STREAK_ROWS},
    {"retry_insert_plan",
     "INSERT INTO retry_plans (retry_plan_id, generated_at, generated_by,"
     " plan_id, alert_level, decision_count, retryable_count, waiting_count,"
     " suppressed_count, request_id)"
     " VALUES ($1, $2::timestamptz, $3, $4, $5, $6::int, $7::int, $8::int,"
     " $9::int, $10)"},
    /* All decisions of a plan in one statement: three parallel arrays. */
    {"retry_insert_decisions",
     "INSERT INTO retry_decisions (retry_plan_id, plan_id, provider, action)"
     " SELECT $1, d.plan_id, d.provider, d.action"
     " FROM unnest($2::text[], $3::text[], $4::text[])"
     " AS d (plan_id, provider, action)"},
};
const size_t retry_sql_statement_count =
    sizeof(retry_sql_statements) / sizeof(retry_sql_statements[0]);

int
retry_sql_insert_delivery(cv_db *db, const Cv__DeliveryRecord *rec,
                          const char *attempt_at, const char *record_json,
                          const char *actor, const char *request_id,
                          cv_error *err)
{
    char status[24], count[24];
    /* The record itself is stored once, in the evidence event. */
    const char *params[11] = {
        rec->delivery_id,
        rec->plan_id,
        rec->provider,
        rec->delivery_success ? "true" : "false",
        NULL,
        count,
        rec->started_at,
        rec->completed_at,
        attempt_at,
        rec->created_at,
        request_id,
    };
    cv_evidence_event ev = {
        .kind = CV_KIND_DELIVERY,
        .record_id = rec->delivery_id,
        .plan_id = rec->plan_id,
        .provider = rec->provider,
        .actor = actor,
        .request_id = request_id,
        .created_at = rec->created_at,
        .record_json = record_json,
    };
    int rv;

    if (rec->n_status_codes > 0) {
        snprintf(status, sizeof(status), "%lld",
                 (long long)rec->status_codes[0]);
        params[4] = status;
    }
    snprintf(count, sizeof(count), "%lld", (long long)rec->attempt_count);
    if ((rv = cv_db_run(db, "retry_insert_delivery", 11, params, err)) != 0)
        return rv;
    return cv_evidence_append(db, &ev, err);
}

void
retry_sql_free_streaks(retry_streak *streaks, size_t n)
{
    if (streaks == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        free(streaks[i].plan_id);
        free(streaks[i].provider);
        free(streaks[i].ack_state);
        for (size_t k = 0; k < streaks[i].n_failures; k++)
            free((char *)streaks[i].failures[k].delivery_id);
        free(streaks[i].failures);
    }
    free(streaks);
}

/* Rows of the streak query: plan_id, provider, delivery_id, status_code,
 * attempt_at (epoch microseconds), seq, acknowledgement_state. */
enum {
    RETRY_COL_PLAN,
    RETRY_COL_PROVIDER,
    RETRY_COL_DELIVERY,
    RETRY_COL_STATUS,
    RETRY_COL_AT,
    RETRY_COL_SEQ,
    RETRY_COL_ACK,
};

/* Folds the grouped rows of res into streaks. Returns 0 or CV_INTERNAL. */
static int
retry_sql_fold_streaks(PGresult *res, retry_streak **out, size_t *n_out,
                       cv_error *err)
{
    int rows = PQntuples(res);
    retry_streak *s = NULL;
    size_t n = 0;

    *out = NULL;
    *n_out = 0;
    if (rows == 0)
        return 0;
    /* At most one streak per row; the pairs fill the front. */
    if ((s = calloc((size_t)rows, sizeof(*s))) == NULL)
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    for (int r = 0; r < rows;) {
        const char *plan = PQgetvalue(res, r, RETRY_COL_PLAN);
        const char *prov = PQgetvalue(res, r, RETRY_COL_PROVIDER);
        retry_streak *cur = &s[n++];
        int end = r;

        while (end < rows &&
               strcmp(PQgetvalue(res, end, RETRY_COL_PLAN), plan) == 0 &&
               strcmp(PQgetvalue(res, end, RETRY_COL_PROVIDER), prov) == 0)
            end++;
        cur->plan_id = strdup(plan);
        cur->provider = strdup(prov);
        cur->ack_state = PQgetisnull(res, r, RETRY_COL_ACK)
                             ? NULL
                             : strdup(PQgetvalue(res, r, RETRY_COL_ACK));
        cur->failures = calloc((size_t)(end - r), sizeof(*cur->failures));
        if (cur->plan_id == NULL || cur->provider == NULL ||
            cur->failures == NULL ||
            (cur->ack_state == NULL && !PQgetisnull(res, r, RETRY_COL_ACK)))
            goto oom;
        for (; r < end; r++) {
            retry_attempt *f = &cur->failures[cur->n_failures++];

            if ((f->delivery_id =
                     strdup(PQgetvalue(res, r, RETRY_COL_DELIVERY))) == NULL)
                goto oom;
            f->at_us = strtoll(PQgetvalue(res, r, RETRY_COL_AT), NULL, 10);
            f->seq = strtoll(PQgetvalue(res, r, RETRY_COL_SEQ), NULL, 10);
            f->success = false;
            f->has_status_code = !PQgetisnull(res, r, RETRY_COL_STATUS);
            f->status_code =
                f->has_status_code
                    ? strtoll(PQgetvalue(res, r, RETRY_COL_STATUS), NULL, 10)
                    : 0;
        }
    }
    *out = s;
    *n_out = n;
    return 0;

oom:
    retry_sql_free_streaks(s, n);
    return cv_error_set(err, CV_INTERNAL, "out of memory");
}

int
retry_sql_streaks(cv_db *db, const char *plan_id, const char *after_plan,
                  const char *after_provider, int64_t max_pairs,
                  retry_streak **streaks, size_t *n, cv_error *err)
{
    char limit[24];
    const char *params[3] = {NULL, after_provider != NULL ? after_provider : "",
                             limit};
    PGresult *res;
    int rv;

    *streaks = NULL;
    *n = 0;
    snprintf(limit, sizeof(limit), "%lld", (long long)max_pairs);
    if (plan_id != NULL) {
        params[0] = plan_id;
        res = cv_db_exec(db, "retry_streaks_plan_page", 3, params, err);
    } else {
        params[0] = after_plan != NULL ? after_plan : "";
        res = cv_db_exec(db, "retry_streaks_page", 3, params, err);
    }
    if (res == NULL)
        return err->code;
    rv = retry_sql_fold_streaks(res, streaks, n, err);
    PQclear(res);
    return rv;
}

/* Appends s to a PostgreSQL array literal as a quoted element. */
static void
retry_sql_array_put(char **p, const char *s, bool first)
{
    char *o = *p;

    if (!first)
        *o++ = ',';
    *o++ = '"';
    for (; *s != '\0'; s++) {
        if (*s == '"' || *s == '\\')
            *o++ = '\\';
        *o++ = *s;
    }
    *o++ = '"';
    *p = o;
}

/*
 * Formats the decisions' plan ids, providers and actions as three
 * PostgreSQL text[] literals (elements quoted, so any text is safe).
 * Returns 0, or -1 when out of memory; the caller frees all three.
 */
static int
retry_sql_decision_arrays(const Cv__RetryPlan *plan, char **plans,
                          char **providers, char **actions)
{
    size_t lp = 3, lv = 3, la = 3;
    char *pp, *pv, *pa;

    for (size_t i = 0; i < plan->n_retry_decisions; i++) {
        /* Worst case every character escaped, plus quotes and comma. */
        lp += 2 * strlen(plan->retry_decisions[i]->plan_id) + 3;
        lv += 2 * strlen(plan->retry_decisions[i]->provider) + 3;
        la += 16;
    }
    *plans = malloc(lp);
    *providers = malloc(lv);
    *actions = malloc(la);
    if (*plans == NULL || *providers == NULL || *actions == NULL)
        return -1;
    pp = *plans;
    pv = *providers;
    pa = *actions;
    *pp++ = '{';
    *pv++ = '{';
    *pa++ = '{';
    for (size_t i = 0; i < plan->n_retry_decisions; i++) {
        const Cv__RetryDecision *d = plan->retry_decisions[i];
        const char *action =
            cv_enum_json_name(&cv__retry_action__descriptor, d->action);

        retry_sql_array_put(&pp, d->plan_id, i == 0);
        retry_sql_array_put(&pv, d->provider, i == 0);
        retry_sql_array_put(&pa, action != NULL ? action : "", i == 0);
    }
    *pp++ = '}';
    *pv++ = '}';
    *pa++ = '}';
    *pp = *pv = *pa = '\0';
    return 0;
}

int
retry_sql_insert_plan(cv_db *db, const Cv__RetryPlan *plan,
                      const char *record_json, const char *request_id,
                      cv_error *err)
{
    char num[4][24];
    char *plans = NULL, *providers = NULL, *actions = NULL;
    /* The record itself is stored once, in the evidence event. */
    const char *params[10] = {
        plan->retry_plan_id,
        plan->generated_at,
        plan->generated_by,
        plan->plan_id,
        cv_enum_json_name(&cv__alert_level__descriptor, plan->alert_level),
        num[0],
        num[1],
        num[2],
        num[3],
        request_id,
    };
    cv_evidence_event ev = {
        .kind = CV_KIND_RETRY_PLAN,
        .record_id = plan->retry_plan_id,
        .plan_id = plan->plan_id,
        .provider = NULL,
        .actor = plan->generated_by,
        .request_id = request_id,
        .created_at = plan->generated_at,
        .record_json = record_json,
    };
    int rv;

    snprintf(num[0], sizeof(num[0]), "%lld", (long long)plan->decision_count);
    snprintf(num[1], sizeof(num[1]), "%lld", (long long)plan->retryable_count);
    snprintf(num[2], sizeof(num[2]), "%lld", (long long)plan->waiting_count);
    snprintf(num[3], sizeof(num[3]), "%lld", (long long)plan->suppressed_count);
    if (retry_sql_decision_arrays(plan, &plans, &providers, &actions) != 0) {
        rv = cv_error_set(err, CV_INTERNAL, "out of memory");
        goto out;
    }
    if ((rv = cv_db_run(db, "retry_insert_plan", 10, params, err)) != 0)
        goto out;
    if (plan->n_retry_decisions > 0) {
        const char *dp[4] = {plan->retry_plan_id, plans, providers, actions};

        if ((rv = cv_db_run(db, "retry_insert_decisions", 4, dp, err)) != 0)
            goto out;
    }
    rv = cv_evidence_append(db, &ev, err);
out:
    free(plans);
    free(providers);
    free(actions);
    return rv;
}
