/*
 * report_sql.h -- all SQL of the reporting service: schedules, the
 * aggregate queries an executive report is computed from, storing runs,
 * and the read side (dashboard, evidence pages, trace). No PGresult
 * leaves report_sql.c.
 */
#ifndef REPORT_SQL_H
#define REPORT_SQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cv_db.h"
#include "report.pb-c.h"
#include "report_plan.h"

extern const cv_db_statement report_sql_statements[];
extern const size_t report_sql_statement_count;

/* Inserts or updates the schedule (autocommit). now is RFC 3339. */
int report_sql_upsert_schedule(cv_db *db, const report_schedule *s,
                               const char *now, cv_error *err);

/* Whether schedule_id is stored (*found) and enabled. */
int report_sql_schedule_state(cv_db *db, const char *schedule_id, bool *found,
                              bool *enabled, cv_error *err);

/* Enabled schedules in the store (*total) and with this generated_by
 * (*mine), in the transaction's snapshot. */
int report_sql_schedule_counts(cv_db *db, const char *generated_by,
                               int64_t *total, int64_t *mine, cv_error *err);

/* Updates the cap guard row (migration 0011) after the counts passed:
 * when another call added an enabled schedule since this snapshot, this
 * fails with CV_ABORTED and the RPC layer runs the call again in a fresh
 * snapshot that counts it. */
int report_sql_schedule_guard(cv_db *db, cv_error *err);

/* Appends the evidence event of switching schedule s on or off (to
 * s->enabled) by actor; inside the caller's transaction. */
int report_sql_schedule_change(cv_db *db, const report_schedule *s,
                               const char *actor, const char *request_id,
                               const char *now, cv_error *err);

/*
 * Loads the stored run of (schedule_id, window_start): the JSON text of
 * its record (its evidence event; malloc'd, caller frees), or
 * CV_NOT_FOUND when the window has no run yet.
 */
int report_sql_find_run(cv_db *db, const char *schedule_id,
                        const char *window_start, char **record, cv_error *err);

/* The record (JSON text, malloc'd) of the newest stored run, whose report
 * is the latest executive report; CV_NOT_FOUND before the first run. */
int report_sql_latest_run(cv_db *db, char **record, cv_error *err);

/* One row of the run history. */
typedef struct report_run_row {
    int64_t seq;  /* the cursor position */
    char *record; /* the run's JSON text, malloc'd */
} report_run_row;

/* Up to limit stored runs with seq below before_seq, newest first, of
 * schedule_id (NULL: every schedule). Free with report_sql_free_runs. */
int report_sql_runs(cv_db *db, const char *schedule_id, int64_t before_seq,
                    int64_t limit, report_run_row **rows, size_t *n,
                    cv_error *err);
void report_sql_free_runs(report_run_row *rows, size_t n);

/* The exact number of events filter f matches (cursor and offset aside). */
int report_sql_count(cv_db *db, const report_list_filter *f, int64_t *total,
                     cv_error *err);

/* Inside a transaction: tries the schedule's advisory lock, held to the
 * end of the transaction. *got is false when another replica holds it. */
int report_sql_try_lock(cv_db *db, const char *schedule_id, bool *got,
                        cv_error *err);

/* The counts of an executive report: open escalations at now (an
 * escalation is past the SLO when flagged or older than slo_minutes),
 * activity in [window_start, window_end). */
int report_sql_counts(cv_db *db, const char *now, int64_t slo_minutes,
                      const char *window_start, const char *window_end,
                      report_counts *out, cv_error *err);

/* The provider rows of the same report, sorted by provider, at most
 * REPORT_PROVIDER_ROWS_MAX. *rows is malloc'd (caller frees with free()),
 * NULL when there are none. */
int report_sql_providers(cv_db *db, const char *now, int64_t slo_minutes,
                         const char *window_start, const char *window_end,
                         report_provider_row **rows, size_t *n, cv_error *err);

/*
 * Inside the generating transaction: stores the run unless its window
 * already has one (*inserted false, nothing else written); otherwise its
 * executive report row and its evidence event, whose record (the JSON
 * text `record`, the run with its report) is the one stored copy. The
 * caller commits.
 */
int report_sql_store_run(cv_db *db, const Cv__ScheduleRun *run,
                         const char *record, const char *request_id,
                         bool *inserted, cv_error *err);

/*
 * The enabled schedules whose current window (at now_s, epoch seconds)
 * has no run yet, at most max. *out is a malloc'd array (free each with
 * report_schedule_fini, then the array with free()); generated_by is
 * "scheduler".
 */
int report_sql_due_schedules(cv_db *db, int64_t now_s, size_t max,
                             report_schedule **out, size_t *n, cv_error *err);

/* The dashboard lists at most this many outstanding acknowledgements. */
#define REPORT_OUTSTANDING_MAX 50
/* Hours in the dashboard's activity chart. */
#define REPORT_HOURS 24

/* Fills the counts of a dashboard (one snapshot, exact COUNT(*)s), its
 * outstanding acknowledgements and its hourly activity. */
int report_sql_dashboard(cv_db *db, const char *now, Cv__Dashboard *d,
                         cv_error *err);

/*
 * One page of the evidence stream, newest first: at most f->limit + 1
 * events (one more than asked, so the caller knows whether another page
 * follows). *items is a malloc'd array of events (free each with
 * protobuf_c_message_free_unpacked, then the array with free()).
 */
int report_sql_list(cv_db *db, const report_list_filter *f,
                    Cv__EvidenceEvent ***items, size_t *n, cv_error *err);

/* The events about one plan in evidence order after after_id, at most
 * limit + 1 (ownership as report_sql_list). Retry plans come reduced to
 * the decisions that name the plan. */
int report_sql_trace(cv_db *db, const char *plan_id, int64_t after_id,
                     int64_t limit, Cv__EvidenceEvent ***items, size_t *n,
                     cv_error *err);

/* Frees an array of events from report_sql_list/trace; NULL-safe. */
void report_sql_free_events(Cv__EvidenceEvent **items, size_t n);

#endif
