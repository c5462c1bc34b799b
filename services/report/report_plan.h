/*
 * report_plan.h -- the reporting service's record logic, free of I/O:
 * schedule requests and their defaults, epoch-aligned windows, the status
 * rules of an executive report, building report and run records
 * (docs/api.md), and the read side's input rules and cursors (docs/api.md).
 * Unit-tested directly (tests/unit/report_window_test.c).
 */
#ifndef REPORT_PLAN_H
#define REPORT_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cv_error.h"
#include "cv_id.h"
#include "cv_time.h"
#include "cv_plan_ref.h"
#include "report.pb-c.h"

#define REPORT_REPORT_SCHEMA                                                   \
    "cavra.go-backend-pilot.rollback-drill-acknowledgement-audit-delivery-"    \
    "recovery-executive-report.v1"
#define REPORT_RUN_SCHEMA                                                      \
    "cavra.go-backend-pilot.rollback-drill-acknowledgement-audit-delivery-"    \
    "recovery-executive-report-schedule-run.v1"
#define REPORT_DASHBOARD_SCHEMA                                                \
    "cavra.go-backend-pilot.rollback-drill-notification-dashboard.v1"
#define REPORT_RUN_METADATA_KIND                                               \
    "go-backend-rollback-drill-acknowledgement-audit-delivery-recovery-"       \
    "executive-report-schedule-run"
#define REPORT_REPORT_METADATA_KIND                                            \
    "go-backend-rollback-drill-acknowledgement-audit-delivery-recovery-"       \
    "executive-report"
#define REPORT_REPORT_ID_PREFIX "gordackexecreport-"
#define REPORT_RUN_ID_PREFIX    "gordackexecsched-"
#define REPORT_SIGNER           "cavra-recovery/reporting-service"

#define REPORT_SLO_DEFAULT      240
#define REPORT_SLO_MAX          43200
#define REPORT_INTERVAL_DEFAULT 1440
#define REPORT_INTERVAL_MAX     10080
#define REPORT_GENERATOR_MAX    128
#define REPORT_CADENCE_MAX      64
#define REPORT_SCHEDULE_ID_MAX  64
#define REPORT_PROVIDER_MAX     64
#define REPORT_PLAN_ID_MAX      CV_PLAN_ID_MAX
/* provider_summary lists at most this many providers (sorted by name);
 * the executive summary's totals always cover all of them. */
#define REPORT_PROVIDER_ROWS_MAX 200

#define REPORT_LIST_LIMIT_DEFAULT 50
#define REPORT_LIST_LIMIT_MAX     500
#define REPORT_LIST_OFFSET_MAX    10000
#define REPORT_RUNS_LIMIT_DEFAULT 20
#define REPORT_RUNS_LIMIT_MAX     100
#define REPORT_HISTORY_SCHEMA                                                  \
    "cavra.go-backend-pilot.rollback-drill-notification-history.v1"
#define REPORT_TRACE_LIMIT_MAX 500
#define REPORT_CURSOR_MAX      48 /* buffer size for a cursor */

/* A schedule as a run is generated for it: the request with its defaults
 * applied, or a stored schedule the scheduler picked up. */
typedef struct report_schedule {
    char schedule_id[REPORT_SCHEDULE_ID_MAX + 1];
    char cadence[REPORT_CADENCE_MAX + 1];
    int64_t interval_minutes;
    bool enabled;
    int64_t recovery_slo_minutes;
    char *generated_by; /* malloc'd; report_schedule_fini frees it */
    int redactions;     /* applied to generated_by */
} report_schedule;

/* What an executive report counts (docs/api.md). The first six are over the
 * escalations open at generation time, the last three over the window. */
typedef struct report_counts {
    int64_t escalation_count;
    int64_t critical_escalation_count;
    int64_t slo_breached_count;
    int64_t open_recovery_count;
    int64_t failed_execution_count;
    int64_t unacknowledged_count;
    int64_t failed_delivery_count;
    int64_t retryable_count;
    int64_t acknowledgement_count;
    int64_t execution_count; /* delivery attempts in the window */
    /* The newest retry plan and escalation plan ("" when none). */
    char recovery_report_id[CV_ID_MAX];
    char escalation_plan_id[CV_PLAN_ID_MAX + 1];
} report_counts;

/* One row of provider_summary. latest_state is a Cv__AckState, 0 when
 * the provider has no acknowledgement the report looked at. */
typedef struct report_provider_row {
    char provider[REPORT_PROVIDER_MAX + 1];
    int64_t escalation_count;
    int64_t open_recovery_count;
    int64_t critical_escalation_count;
    int64_t slo_breached_count;
    int64_t unacknowledged_count;
    int64_t failed_delivery_count;
    int64_t acknowledgement_count;
    int latest_state;
    /* The original CAVRA's per-provider keys (ProviderSummary). */
    int64_t execution_count;
    int64_t execution_delivered_count;
    int64_t execution_failed_count;
    int64_t recovery_closure_count;
    char latest_execution_at[CV_TIME_MAX]; /* "" when none */
    char latest_closure_at[CV_TIME_MAX];   /* "" when none */
} report_provider_row;

/*
 * The UTC-epoch-aligned window holding now_us: start = floor(now /
 * interval) * interval, end = start + interval (microseconds). Returns 0,
 * or -1 when interval_minutes is not positive.
 */
int report_window(int64_t now_us, int64_t interval_minutes, int64_t *start_us,
                  int64_t *end_us);

/*
 * Validates a schedule-run request and applies the defaults of docs/api.md
 * into *out: recovery_slo_minutes 240 (1..43200), interval 1440
 * (1..10080), cadence "every_<N>_minutes" (<= 64 of [a-z0-9._-]),
 * enabled true, schedule_id "<cadence>-<N>" (<= 64 of [a-z0-9._-]),
 * generated_by "console" (<= 128, redacted; actor_name overrides it).
 * Returns 0 (release *out with report_schedule_fini) or
 * CV_INVALID_ARGUMENT naming the field.
 */
int report_schedule_resolve(const Cv__ScheduleRunRequest *req,
                            const char *actor_name, report_schedule *out,
                            cv_error *err);

/* Frees what a report_schedule owns; NULL-safe, safe twice. */
void report_schedule_fini(report_schedule *s);

/* critical when an open escalation is critical or past its SLO, warning
 * when any escalation is open or a delivery failed, else healthy. */
Cv__AlertLevel report_alert_level(const report_counts *c);

/* One sentence on what the counts mean for the business, written to out
 * (truncated to outlen). */
void report_business_impact(const report_counts *c, char *out, size_t outlen);

/* The run id of (schedule_id, window_start text): every replica derives
 * the same one. Writes "gordackexecsched-<16 hex>" to out (>= CV_ID_MAX).
 * Returns 0, or -1 when out of memory. */
int report_run_id(const char *schedule_id, const char *window_start, char *out,
                  size_t outlen);

/*
 * Builds the run record with its executive report for schedule s, the
 * window holding window_start_us, generated at now_us, from the counts
 * and the provider rows. Returns 0 with *out (free with
 * protobuf_c_message_free_unpacked) or CV_INTERNAL when out of memory.
 */
int report_build_run(const report_schedule *s, int64_t window_start_us,
                     int64_t now_us, const report_counts *c,
                     const report_provider_row *rows, size_t n_rows,
                     Cv__ScheduleRun **out, cv_error *err);

/* The metadata of a run and of its report (deep copies of nothing; they
 * only name the record). NULL when out of memory. Free with
 * protobuf_c_message_free_unpacked. */
Cv__RunMetadata *report_run_metadata(const Cv__ScheduleRun *run);
Cv__ReportMetadata *report_report_metadata(const Cv__ExecutiveReport *r);

/*
 * Builds an executive report that belongs to no run: computed for a GET
 * (LatestReport with query parameters) over the window [window_start_us,
 * +interval of s) at now_us; never stored. Its id is derived from its
 * time, generator and request_id. Returns 0 with *out or CV_INTERNAL.
 */
int report_build_adhoc(const report_schedule *s, int64_t window_start_us,
                       int64_t now_us, const report_counts *c,
                       const report_provider_row *rows, size_t n_rows,
                       const char *request_id, Cv__ExecutiveReport **out,
                       cv_error *err);

/* True when kind is one of the CV_KIND_* evidence kinds. */
bool report_kind_valid(const char *kind);

/* Writes the opaque cursor of evidence id `id` (> 0) to out
 * (REPORT_CURSOR_MAX bytes). */
void report_cursor_encode(int64_t id, char out[REPORT_CURSOR_MAX]);

/* Reads a cursor back. Returns 0 with *id, or CV_INVALID_ARGUMENT
 * "cursor is invalid" for anything report_cursor_encode did not write. */
int report_cursor_decode(const char *cursor, int64_t *id, cv_error *err);

/* The filters of one evidence page, validated. Strings point into the
 * request or into the provider buffer; NULL means "no filter". */
typedef struct report_list_filter {
    const char *kind;
    const char *plan_id;
    const char *provider;
    char provider_buf[REPORT_PROVIDER_MAX + 1];
    int64_t after_id; /* cursor: only ids below it; INT64_MAX for none */
    int64_t limit;
    int64_t offset; /* rows skipped after the cursor, 0..10000 */
} report_list_filter;

/*
 * Validates report.ListEvidence input: kind one of the CV_KIND_* values,
 * plan_id <= 128 characters, provider an identifier (normalised), limit
 * default 50 and 1..500, cursor from a previous page. Empty strings mean
 * "not given". Returns 0 or CV_INVALID_ARGUMENT naming the field.
 */
int report_list_filter_init(const Cv__ListEvidenceRequest *req,
                            report_list_filter *f, cv_error *err);

#endif
