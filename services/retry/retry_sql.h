/*
 * retry_sql.h -- all SQL of the retry-planning service. No PGresult
 * leaves retry_sql.c.
 */
#ifndef RETRY_SQL_H
#define RETRY_SQL_H

#include <stddef.h>
#include <stdint.h>

#include "cv_db.h"
#include "retry.pb-c.h"
#include "retry_rules.h"

extern const cv_db_statement retry_sql_statements[];
extern const size_t retry_sql_statement_count;

/*
 * Stores a delivery attempt and its evidence event in one transaction.
 * attempt_at is the attempt's time (RFC 3339); record_json is the JSON
 * form of the record; actor may be NULL.
 */
int retry_sql_insert_delivery(cv_db *db, const Cv__DeliveryRecord *rec,
                              const char *attempt_at, const char *record_json,
                              const char *actor, const char *request_id,
                              cv_error *err);

/* The counted failures of one (plan, provider) pair: its failed attempts
 * after its latest success, in attempt-time order (ties: recording order),
 * and its current acknowledgement state (NULL when none). A pair whose
 * latest attempt succeeded has no streak. */
typedef struct retry_streak {
    char *plan_id;
    char *provider;
    char *ack_state;
    retry_attempt *failures; /* delivery_id strings owned by the streak */
    size_t n_failures;
} retry_streak;

/*
 * Loads the streaks of one page of pairs: those after the cursor pair
 * (after_plan, after_provider; NULL for the first page) in the store's
 * (plan_id, provider) order, all plans or only plan_id when not NULL (then
 * after_plan is ignored), at most max_pairs pairs that have a streak. The
 * streaks come in that order, which the next cursor follows. Indexed
 * lookups per pair: pairs whose latest attempt succeeded are skipped
 * without reading their history. Returns 0 with *streaks (free with
 * retry_sql_free_streaks; NULL when none) or a database error.
 */
int retry_sql_streaks(cv_db *db, const char *plan_id, const char *after_plan,
                      const char *after_provider, int64_t max_pairs,
                      retry_streak **streaks, size_t *n, cv_error *err);
void retry_sql_free_streaks(retry_streak *streaks, size_t n);

/* Stores a retry plan, one row per decision and its evidence event
 * (plan_id of the event: the plan's filter, may be NULL) in one
 * transaction. */
int retry_sql_insert_plan(cv_db *db, const Cv__RetryPlan *plan,
                          const char *record_json, const char *request_id,
                          cv_error *err);

#endif
