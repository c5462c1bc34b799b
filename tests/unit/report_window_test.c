/*
 * report_window_test.c -- unit tests for services/report/report_plan.c:
 * epoch-aligned report windows, schedule-run request rules and defaults
 * (docs/api.md), the status rules of an executive report, building run and
 * report records, and the read side's input rules and cursors (docs/api.md),
 * without any I/O.
 *
 * Every expected value is written out here (window bounds were computed
 * independently with Python's integer floor division), never taken from
 * the code under test. Run: ctest -R unit.report_window, or the binary
 * alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_time.h"
#include "report_plan.h"

/* 2025-11-27T05:29:23.123456Z */
#define T_NOW_US   1764221363123456LL
#define T_NOW_TEXT "2025-11-27T05:29:23.123456Z"

#define T_RUN_SCHEMA                                                           \
    "cavra.go-backend-pilot.rollback-drill-acknowledgement-audit-delivery-"    \
    "recovery-executive-report-schedule-run.v1"
#define T_REPORT_SCHEMA                                                        \
    "cavra.go-backend-pilot.rollback-drill-acknowledgement-audit-delivery-"    \
    "recovery-executive-report.v1"
#define T_RUN_KIND                                                             \
    "go-backend-rollback-drill-acknowledgement-audit-delivery-recovery-"       \
    "executive-report-schedule-run"
#define T_REPORT_KIND                                                          \
    "go-backend-rollback-drill-acknowledgement-audit-delivery-recovery-"       \
    "executive-report"
#define T_IDENT_RULE "must use only a-z, 0-9, '.', '_' and '-'"
#define T_KIND_RULE                                                            \
    "kind must be one of recovery_escalation_plan, connector_delivery, "       \
    "recovery_escalation_ack, recovery_escalation_retry_plan, "                \
    "executive_report_schedule_run"

/* ---- helpers ---------------------------------------------------------- */

/* prefix + exactly 16 lowercase hex digits. */
static void
t_assert_id(const char *id, const char *prefix)
{
    size_t pl = strlen(prefix);

    assert_non_null(id);
    if (strncmp(id, prefix, pl) != 0 || strlen(id) != pl + 16)
        fail_msg("id \"%s\" is not %s + 16 hex", id, prefix);
    for (size_t i = pl; i < pl + 16; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            fail_msg("id \"%s\" is not lowercase hex", id);
}

/* Resolves req and expects CV_INVALID_ARGUMENT with exactly msg. */
static void
t_schedule_rejects(const Cv__ScheduleRunRequest *req, const char *msg)
{
    report_schedule s;
    cv_error err;

    cv_error_clear(&err);
    if (report_schedule_resolve(req, NULL, &s, &err) == 0) {
        report_schedule_fini(&s);
        fail_msg("expected \"%s\", got success", msg);
    }
    assert_int_equal(err.code, CV_INVALID_ARGUMENT);
    assert_string_equal(err.msg, msg);
}

static void
t_list_rejects(const Cv__ListEvidenceRequest *req, const char *msg)
{
    report_list_filter f;
    cv_error err;

    cv_error_clear(&err);
    if (report_list_filter_init(req, &f, &err) == 0)
        fail_msg("expected \"%s\", got success", msg);
    assert_int_equal(err.code, CV_INVALID_ARGUMENT);
    assert_string_equal(err.msg, msg);
}

/* ---- windows ---------------------------------------------------------- */

static void
test_report_window_alignment_table(void **state)
{
    static const struct {
        int64_t now, interval, start, end;
    } rows[] = {
        /* Mid-window, for every interval of the brief. */
        {1764221363123456LL, 1, 1764221340000000LL, 1764221400000000LL},
        {1764221363123456LL, 7, 1764221340000000LL, 1764221760000000LL},
        {1764221363123456LL, 15, 1764220500000000LL, 1764221400000000LL},
        {1764221363123456LL, 60, 1764219600000000LL, 1764223200000000LL},
        {1764221363123456LL, 1440, 1764201600000000LL, 1764288000000000LL},
        {1764221363123456LL, 10080, 1764201600000000LL, 1764806400000000LL},
        /* One microsecond before a minute boundary. */
        {1764221999999999LL, 1, 1764221940000000LL, 1764222000000000LL},
        {1764221999999999LL, 7, 1764221760000000LL, 1764222180000000LL},
        {1764221999999999LL, 15, 1764221400000000LL, 1764222300000000LL},
        {1764221999999999LL, 60, 1764219600000000LL, 1764223200000000LL},
        {1764221999999999LL, 1440, 1764201600000000LL, 1764288000000000LL},
        {1764221999999999LL, 10080, 1764201600000000LL, 1764806400000000LL},
        /* Exactly on a 1- and 15-minute boundary (05:30:00). */
        {1764221400000000LL, 1, 1764221400000000LL, 1764221460000000LL},
        {1764221400000000LL, 7, 1764221340000000LL, 1764221760000000LL},
        {1764221400000000LL, 15, 1764221400000000LL, 1764222300000000LL},
        {1764221400000000LL, 60, 1764219600000000LL, 1764223200000000LL},
        {1764221400000000LL, 1440, 1764201600000000LL, 1764288000000000LL},
        {1764221400000000LL, 10080, 1764201600000000LL, 1764806400000000LL},
        /* Exactly on a boundary of every interval (a week start). */
        {1764201600000000LL, 1, 1764201600000000LL, 1764201660000000LL},
        {1764201600000000LL, 7, 1764201600000000LL, 1764202020000000LL},
        {1764201600000000LL, 15, 1764201600000000LL, 1764202500000000LL},
        {1764201600000000LL, 60, 1764201600000000LL, 1764205200000000LL},
        {1764201600000000LL, 1440, 1764201600000000LL, 1764288000000000LL},
        {1764201600000000LL, 10080, 1764201600000000LL, 1764806400000000LL},
        /* The last microsecond of that week. */
        {1764806399999999LL, 1, 1764806340000000LL, 1764806400000000LL},
        {1764806399999999LL, 7, 1764805980000000LL, 1764806400000000LL},
        {1764806399999999LL, 15, 1764805500000000LL, 1764806400000000LL},
        {1764806399999999LL, 60, 1764802800000000LL, 1764806400000000LL},
        {1764806399999999LL, 1440, 1764720000000000LL, 1764806400000000LL},
        {1764806399999999LL, 10080, 1764201600000000LL, 1764806400000000LL},
        /* The epoch itself, and just before it (floor, not truncation). */
        {0LL, 1, 0LL, 60000000LL},
        {0LL, 10080, 0LL, 604800000000LL},
        {-1LL, 1, -60000000LL, 0LL},
        {-1LL, 7, -420000000LL, 0LL},
        {-1LL, 10080, -604800000000LL, 0LL},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        int64_t start = -42, end = -42;

        assert_int_equal(
            report_window(rows[i].now, rows[i].interval, &start, &end), 0);
        if (start != rows[i].start || end != rows[i].end)
            fail_msg("row %zu: now %lld interval %lld: got [%lld, %lld), "
                     "expected [%lld, %lld)",
                     i, (long long)rows[i].now, (long long)rows[i].interval,
                     (long long)start, (long long)end, (long long)rows[i].start,
                     (long long)rows[i].end);
    }
}

static void
test_report_window_text(void **state)
{
    int64_t start, end;
    char a[CV_TIME_MAX], b[CV_TIME_MAX];

    (void)state;
    assert_int_equal(report_window(T_NOW_US, 15, &start, &end), 0);
    cv_time_format(start, a);
    cv_time_format(end, b);
    assert_string_equal(a, "2025-11-27T05:15:00.000000Z");
    assert_string_equal(b, "2025-11-27T05:30:00.000000Z");
    assert_int_equal(report_window(T_NOW_US, 10080, &start, &end), 0);
    cv_time_format(start, a);
    cv_time_format(end, b);
    /* The epoch began on a Thursday, so weekly windows start Thursdays. */
    assert_string_equal(a, "2025-11-27T00:00:00.000000Z");
    assert_string_equal(b, "2025-12-04T00:00:00.000000Z");
}

static void
test_report_window_bad_interval(void **state)
{
    int64_t start, end;

    (void)state;
    assert_int_equal(report_window(T_NOW_US, 0, &start, &end), -1);
    assert_int_equal(report_window(T_NOW_US, -15, &start, &end), -1);
    assert_int_equal(report_window(T_NOW_US, INT64_MAX, &start, &end), -1);
    /* A clock at the ends of the range has no representable window. */
    assert_int_equal(report_window(INT64_MAX, 1, &start, &end), -1);
    assert_int_equal(report_window(INT64_MIN, 10080, &start, &end), -1);
}

/* ---- schedule requests ------------------------------------------------ */

static void
test_report_schedule_defaults(void **state)
{
    Cv__ScheduleRunRequest req = CV__SCHEDULE_RUN_REQUEST__INIT;
    Cv__ScheduleSpec spec = CV__SCHEDULE_SPEC__INIT;
    report_schedule s;
    cv_error err;

    (void)state;
    cv_error_clear(&err);
    assert_int_equal(report_schedule_resolve(&req, NULL, &s, &err), 0);
    assert_string_equal(s.generated_by, "console");
    assert_int_equal(s.recovery_slo_minutes, 240);
    assert_int_equal(s.interval_minutes, 1440);
    assert_string_equal(s.cadence, "every_1440_minutes");
    assert_true(s.enabled);
    assert_string_equal(s.schedule_id, "every_1440_minutes-1440");
    assert_int_equal(s.redactions, 0);
    report_schedule_fini(&s);
    report_schedule_fini(&s); /* safe twice */

    /* An empty schedule object and blank strings are defaults too. */
    spec.cadence = "  ";
    spec.schedule_id = "";
    spec.has_interval_minutes = 1;
    spec.interval_minutes = 15;
    req.schedule = &spec;
    req.generated_by = "   ";
    assert_int_equal(report_schedule_resolve(&req, NULL, &s, &err), 0);
    assert_string_equal(s.generated_by, "console");
    assert_string_equal(s.cadence, "every_15_minutes");
    assert_string_equal(s.schedule_id, "every_15_minutes-15");
    report_schedule_fini(&s);
}

static void
test_report_schedule_values(void **state)
{
    Cv__ScheduleRunRequest req = CV__SCHEDULE_RUN_REQUEST__INIT;
    Cv__ScheduleSpec spec = CV__SCHEDULE_SPEC__INIT;
    report_schedule s;
    cv_error err;

    (void)state;
    req.generated_by = "  release board  ";
    req.has_recovery_slo_minutes = 1;
    req.recovery_slo_minutes = 43200;
    spec.has_interval_minutes = 1;
    spec.interval_minutes = 10080;
    spec.cadence = " Weekly ";
    spec.has_enabled = 1;
    spec.enabled = 0;
    req.schedule = &spec;
    cv_error_clear(&err);
    assert_int_equal(report_schedule_resolve(&req, NULL, &s, &err), 0);
    assert_string_equal(s.generated_by, "release board");
    assert_int_equal(s.recovery_slo_minutes, 43200);
    assert_int_equal(s.interval_minutes, 10080);
    assert_string_equal(s.cadence, "weekly");
    assert_false(s.enabled);
    /* Derived from cadence + interval. */
    assert_string_equal(s.schedule_id, "weekly-10080");
    report_schedule_fini(&s);

    /* An explicit id is normalised; the bounds themselves are valid; a
     * verified actor overrides generated_by. */
    spec.schedule_id = " Exec-Board_1.a ";
    spec.interval_minutes = 1;
    req.recovery_slo_minutes = 1;
    assert_int_equal(report_schedule_resolve(&req, "carol", &s, &err), 0);
    assert_string_equal(s.schedule_id, "exec-board_1.a");
    assert_int_equal(s.interval_minutes, 1);
    assert_int_equal(s.recovery_slo_minutes, 1);
    assert_string_equal(s.generated_by, "carol");
    report_schedule_fini(&s);
}

static void
test_report_schedule_derived_id_fits(void **state)
{
    Cv__ScheduleRunRequest req = CV__SCHEDULE_RUN_REQUEST__INIT;
    Cv__ScheduleSpec spec = CV__SCHEDULE_SPEC__INIT;
    char cadence[65];
    report_schedule s;
    cv_error err;

    (void)state;
    memset(cadence, 'c', 64);
    cadence[64] = '\0';
    spec.cadence = cadence;
    spec.has_interval_minutes = 1;
    spec.interval_minutes = 10080;
    req.schedule = &spec;
    cv_error_clear(&err);
    assert_int_equal(report_schedule_resolve(&req, NULL, &s, &err), 0);
    assert_string_equal(s.cadence, cadence);
    assert_int_equal(strlen(s.schedule_id), 64);
    assert_string_equal(s.schedule_id + 58, "-10080");
    report_schedule_fini(&s);
}

static void
test_report_schedule_rejected(void **state)
{
    Cv__ScheduleRunRequest req = CV__SCHEDULE_RUN_REQUEST__INIT;
    Cv__ScheduleSpec spec = CV__SCHEDULE_SPEC__INIT;
    char long_text[200];

    (void)state;
    req.has_recovery_slo_minutes = 1;
    req.recovery_slo_minutes = 0;
    t_schedule_rejects(&req, "recovery_slo_minutes must be between 1 and "
                             "43200");
    req.recovery_slo_minutes = 43201;
    t_schedule_rejects(&req, "recovery_slo_minutes must be between 1 and "
                             "43200");
    req.recovery_slo_minutes = -5;
    t_schedule_rejects(&req, "recovery_slo_minutes must be between 1 and "
                             "43200");
    req.has_recovery_slo_minutes = 0;

    req.schedule = &spec;
    spec.has_interval_minutes = 1;
    spec.interval_minutes = 0;
    t_schedule_rejects(&req, "schedule.interval_minutes must be between 1 "
                             "and 10080");
    spec.interval_minutes = 10081;
    t_schedule_rejects(&req, "schedule.interval_minutes must be between 1 "
                             "and 10080");
    spec.has_interval_minutes = 0;

    spec.cadence = "every day";
    t_schedule_rejects(&req, "schedule.cadence " T_IDENT_RULE);
    memset(long_text, 'a', 65);
    long_text[65] = '\0';
    spec.cadence = long_text;
    t_schedule_rejects(&req, "schedule.cadence must be at most 64 characters");
    spec.cadence = NULL;

    spec.schedule_id = "exec/board";
    t_schedule_rejects(&req, "schedule.schedule_id " T_IDENT_RULE);
    spec.schedule_id = long_text;
    t_schedule_rejects(&req,
                       "schedule.schedule_id must be at most 64 characters");
    spec.schedule_id = NULL;

    memset(long_text, 'g', 129);
    long_text[129] = '\0';
    req.generated_by = long_text;
    t_schedule_rejects(&req, "generated_by must be at most 128 characters");
}

static void
test_report_schedule_redacts_generated_by(void **state)
{
    Cv__ScheduleRunRequest req = CV__SCHEDULE_RUN_REQUEST__INIT;
    report_schedule s;
    cv_error err;

    (void)state;
    req.generated_by = "bot Bearer eyJhbGciOiJIUzI1NiJ9abcdefABCDEF0123456789";
    cv_error_clear(&err);
    assert_int_equal(report_schedule_resolve(&req, NULL, &s, &err), 0);
    assert_null(strstr(s.generated_by, "eyJhbGciOiJIUzI1NiJ9"));
    assert_non_null(strstr(s.generated_by, "REDACTED"));
    assert_true(s.redactions >= 1);
    report_schedule_fini(&s);
}

/* ---- status rules ----------------------------------------------------- */

static void
test_report_alert_level_rules(void **state)
{
    static const struct {
        report_counts c;
        Cv__AlertLevel want;
    } rows[] = {
        {{0}, CV__ALERT_LEVEL__ALERT_LEVEL_HEALTHY},
        /* Window activity that is not a failure stays healthy. */
        {{.acknowledgement_count = 9, .retryable_count = 0},
         CV__ALERT_LEVEL__ALERT_LEVEL_HEALTHY},
        {{.escalation_count = 1}, CV__ALERT_LEVEL__ALERT_LEVEL_WARNING},
        {{.failed_delivery_count = 1}, CV__ALERT_LEVEL__ALERT_LEVEL_WARNING},
        {{.escalation_count = 3, .unacknowledged_count = 3},
         CV__ALERT_LEVEL__ALERT_LEVEL_WARNING},
        {{.escalation_count = 1, .critical_escalation_count = 1},
         CV__ALERT_LEVEL__ALERT_LEVEL_CRITICAL},
        {{.escalation_count = 1, .slo_breached_count = 1},
         CV__ALERT_LEVEL__ALERT_LEVEL_CRITICAL},
        {{.escalation_count = 2,
          .critical_escalation_count = 1,
          .failed_delivery_count = 4},
         CV__ALERT_LEVEL__ALERT_LEVEL_CRITICAL},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        if (report_alert_level(&rows[i].c) != rows[i].want)
            fail_msg("row %zu: got %d, expected %d", i,
                     (int)report_alert_level(&rows[i].c), (int)rows[i].want);
}

static void
test_report_business_impact(void **state)
{
    report_counts c = {0};
    char buf[512];

    (void)state;
    report_business_impact(&c, buf, sizeof(buf));
    assert_non_null(strstr(buf, "No open recovery escalations"));
    assert_non_null(strstr(buf, "on track"));

    c.escalation_count = 1;
    c.unacknowledged_count = 1;
    c.failed_delivery_count = 2;
    report_business_impact(&c, buf, sizeof(buf));
    assert_non_null(strstr(buf, "1 open recovery escalation needs follow-up"));
    assert_non_null(strstr(buf, "2 escalation deliveries failed"));

    c.escalation_count = 5;
    c.critical_escalation_count = 2;
    c.slo_breached_count = 3;
    c.unacknowledged_count = 4;
    c.failed_delivery_count = 1;
    report_business_impact(&c, buf, sizeof(buf));
    assert_non_null(strstr(buf, "5 open recovery escalations put rollback "
                                "drill recovery at risk"));
    assert_non_null(strstr(buf, "2 critical"));
    assert_non_null(strstr(buf, "3 past the recovery SLO"));
    assert_non_null(strstr(buf, "4 without a provider acknowledgement"));
    assert_non_null(strstr(buf, "1 escalation delivery failed"));
}

/* ---- records ---------------------------------------------------------- */

/* A resolved schedule "exec-board", hourly. */
static void
t_schedule(report_schedule *s)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->schedule_id, sizeof(s->schedule_id), "exec-board");
    snprintf(s->cadence, sizeof(s->cadence), "hourly");
    s->interval_minutes = 60;
    s->enabled = true;
    s->recovery_slo_minutes = 120;
    s->generated_by = strdup("console");
}

static const Cv__KeyRisk *
t_risk(const Cv__ExecutiveReport *r, const char *owner, int64_t count)
{
    for (size_t i = 0; i < r->n_key_risks; i++)
        if (strcmp(r->key_risks[i]->owner, owner) == 0 &&
            r->key_risks[i]->count == count)
            return r->key_risks[i];
    return NULL;
}

static void
test_report_build_run_record(void **state)
{
    report_counts c = {
        .escalation_count = 6,
        .critical_escalation_count = 2,
        .slo_breached_count = 1,
        .open_recovery_count = 5,
        .failed_execution_count = 7,
        .unacknowledged_count = 3,
        .failed_delivery_count = 4,
        .retryable_count = 8,
        .acknowledgement_count = 9,
    };
    report_provider_row rows[2];
    report_schedule s;
    Cv__ScheduleRun *run = NULL;
    const Cv__ExecutiveReport *r;
    Cv__RunMetadata *m;
    Cv__ReportMetadata *rm;
    char id[96];
    cv_error err;

    (void)state;
    memset(rows, 0, sizeof(rows));
    snprintf(rows[0].provider, sizeof(rows[0].provider), "jira");
    rows[0].escalation_count = 2;
    rows[0].unacknowledged_count = 1;
    rows[0].latest_state = CV__ACK_STATE__ACK_STATE_ACCEPTED;
    snprintf(rows[1].provider, sizeof(rows[1].provider), "slack");
    rows[1].critical_escalation_count = 2;
    rows[1].failed_delivery_count = 4;
    t_schedule(&s);
    cv_error_clear(&err);
    assert_int_equal(
        report_build_run(&s, T_NOW_US, T_NOW_US, &c, rows, 2, &run, &err), 0);
    assert_string_equal(run->schema_version, T_RUN_SCHEMA);
    assert_string_equal(run->product, "CAVRA");
    t_assert_id(run->run_id, "gordackexecsched-");
    assert_string_equal(run->generated_at, T_NOW_TEXT);
    assert_string_equal(run->generated_by, "console");
    assert_int_equal(run->alert_level, CV__ALERT_LEVEL__ALERT_LEVEL_CRITICAL);
    assert_string_equal(run->schedule->schedule_id, "exec-board");
    assert_int_equal(run->schedule->interval_minutes, 60);
    assert_string_equal(run->schedule->window_start,
                        "2025-11-27T05:00:00.000000Z");
    assert_string_equal(run->schedule->window_end,
                        "2025-11-27T06:00:00.000000Z");
    assert_true(run->schedule->has_enabled && run->schedule->enabled);
    assert_string_equal(run->schedule->cadence, "hourly");
    assert_int_equal(run->summary->executive_report_count, 1);
    assert_int_equal(run->summary->escalation_count, 6);
    assert_int_equal(run->summary->failed_execution_count, 7);
    assert_int_equal(run->summary->open_recovery_count, 5);
    assert_int_equal(run->summary->slo_breached_count, 1);
    assert_true(run->n_controls > 0);

    r = run->executive_report;
    assert_non_null(r);
    assert_string_equal(r->schema_version, T_REPORT_SCHEMA);
    t_assert_id(r->executive_report_id, "gordackexecreport-");
    assert_string_equal(r->run_id, run->run_id);
    assert_string_equal(r->generated_at, T_NOW_TEXT);
    assert_int_equal(r->alert_level, CV__ALERT_LEVEL__ALERT_LEVEL_CRITICAL);
    assert_int_equal(r->recovery_slo_minutes, 120);
    assert_string_equal(r->window_start, "2025-11-27T05:00:00.000000Z");
    assert_int_equal(r->executive_summary->status,
                     CV__ALERT_LEVEL__ALERT_LEVEL_CRITICAL);
    assert_non_null(r->executive_summary->business_impact);
    assert_int_equal(r->executive_summary->escalation_count, 6);
    assert_int_equal(r->executive_summary->critical_escalation_count, 2);
    assert_int_equal(r->executive_summary->slo_breached_count, 1);
    assert_int_equal(r->executive_summary->open_recovery_count, 5);
    assert_int_equal(r->executive_summary->failed_execution_count, 7);
    assert_int_equal(r->executive_summary->unacknowledged_count, 3);
    assert_int_equal(r->executive_summary->failed_delivery_count, 4);
    assert_int_equal(r->executive_summary->retryable_count, 8);
    assert_int_equal(r->executive_summary->acknowledgement_count, 9);
    assert_int_equal(r->n_provider_summary, 2);
    assert_string_equal(r->provider_summary[0]->provider, "jira");
    assert_int_equal(r->provider_summary[0]->latest_acknowledgement_state,
                     CV__ACK_STATE__ACK_STATE_ACCEPTED);
    assert_false(r->provider_summary[1]->has_latest_acknowledgement_state);
    assert_int_equal(r->provider_summary[1]->failed_delivery_count, 4);
    /* Each non-zero risk is named with its owner. */
    /* The risks the original CAVRA states keep its wording and owner. */
    assert_non_null(t_risk(r, "release-governance", 1)); /* SLO */
    assert_string_equal(t_risk(r, "release-governance", 1)->risk,
                        "Connector recovery SLO breached");
    assert_int_equal(t_risk(r, "release-governance", 1)->severity,
                     CV__SEVERITY__SEVERITY_CRITICAL);
    assert_non_null(t_risk(r, "release-governance", 5)); /* open */
    assert_string_equal(t_risk(r, "release-governance", 5)->risk,
                        "Connector recovery remains open");
    assert_non_null(t_risk(r, "release_manager", 2)); /* critical */
    assert_non_null(t_risk(r, "release_manager", 3)); /* unacknowledged */
    assert_non_null(t_risk(r, "platform_owner", 4));  /* failed deliveries */
    assert_non_null(t_risk(r, "platform_owner", 8));  /* retryable */
    assert_int_equal(r->n_key_risks, 7);
    assert_int_equal(r->n_closure_trends, 2);
    assert_string_equal(r->closure_trends[1]->provider, "slack");
    assert_true(r->provider_summary[0]->has_execution_skipped_count);
    assert_true(r->n_recommended_actions >= 5);
    assert_true(r->n_controls > 0);

    m = report_run_metadata(run);
    assert_non_null(m);
    assert_string_equal(m->metadata_kind, T_RUN_KIND);
    assert_string_equal(m->session_id, run->run_id);
    assert_string_equal(m->created_at, T_NOW_TEXT);
    assert_string_equal(m->signer, "cavra-recovery/reporting-service");
    assert_string_equal(m->window_start, "2025-11-27T05:00:00.000000Z");
    rm = report_report_metadata(run->executive_report);
    assert_non_null(rm);
    assert_string_equal(rm->metadata_kind, T_REPORT_KIND);
    assert_string_equal(rm->session_id, r->executive_report_id);
    assert_string_equal(rm->run_id, run->run_id);
    assert_string_equal(rm->signer, "cavra-recovery/reporting-service");
    /* The original's metadata header, and the record embedded. */
    assert_string_equal(m->schema_version, "cavra.evidence.metadata.v1");
    assert_string_equal(m->product, "CAVRA");
    assert_int_equal(m->decision_count, 1);
    assert_int_equal(m->blocked_count, 1);
    assert_int_equal(m->approval_required_count, 1);
    assert_string_equal(m->recovery_executive_report_schedule_run->run_id,
                        run->run_id);
    assert_string_equal(rm->schema_version, "cavra.evidence.metadata.v1");
    assert_int_equal(rm->decision_count, 7);
    assert_int_equal(rm->blocked_count, 2);
    assert_int_equal(rm->approval_required_count, 6);
    assert_string_equal(rm->recovery_executive_report->executive_report_id,
                        r->executive_report_id);

    /* The run id is a function of (schedule, window start) only. */
    assert_int_equal(report_run_id("exec-board", "2025-11-27T05:00:00.000000Z",
                                   id, sizeof(id)),
                     0);
    assert_string_equal(id, run->run_id);
    protobuf_c_message_free_unpacked(&m->base, NULL);
    protobuf_c_message_free_unpacked(&rm->base, NULL);
    protobuf_c_message_free_unpacked(&run->base, NULL);
    report_schedule_fini(&s);
}

static void
test_report_build_run_healthy_and_ids(void **state)
{
    report_counts c = {0};
    report_schedule s;
    Cv__ScheduleRun *a = NULL, *b = NULL, *other = NULL;
    cv_error err;

    (void)state;
    t_schedule(&s);
    cv_error_clear(&err);
    /* Same window, different times and generators: same ids. */
    assert_int_equal(
        report_build_run(&s, T_NOW_US, T_NOW_US, &c, NULL, 0, &a, &err), 0);
    free(s.generated_by);
    s.generated_by = strdup("scheduler");
    assert_int_equal(report_build_run(&s, T_NOW_US + 60000000LL,
                                      T_NOW_US + 60000000LL, &c, NULL, 0, &b,
                                      &err),
                     0);
    assert_string_equal(a->run_id, b->run_id);
    assert_string_equal(a->executive_report->executive_report_id,
                        b->executive_report->executive_report_id);
    assert_int_equal(a->alert_level, CV__ALERT_LEVEL__ALERT_LEVEL_HEALTHY);
    assert_int_equal(a->executive_report->n_key_risks, 0);
    assert_int_equal(a->executive_report->n_provider_summary, 0);
    assert_int_equal(a->executive_report->n_recommended_actions, 1);
    /* The next window, or another schedule: other ids. */
    assert_int_equal(report_build_run(&s, T_NOW_US + 3600000000LL, T_NOW_US, &c,
                                      NULL, 0, &other, &err),
                     0);
    assert_string_not_equal(a->run_id, other->run_id);
    protobuf_c_message_free_unpacked(&other->base, NULL);
    snprintf(s.schedule_id, sizeof(s.schedule_id), "exec-board-2");
    assert_int_equal(
        report_build_run(&s, T_NOW_US, T_NOW_US, &c, NULL, 0, &other, &err), 0);
    assert_string_not_equal(a->run_id, other->run_id);
    assert_string_not_equal(a->executive_report->executive_report_id,
                            other->executive_report->executive_report_id);
    protobuf_c_message_free_unpacked(&other->base, NULL);
    protobuf_c_message_free_unpacked(&a->base, NULL);
    protobuf_c_message_free_unpacked(&b->base, NULL);
    report_schedule_fini(&s);
}

/* ---- read side -------------------------------------------------------- */

static void
test_report_kinds(void **state)
{
    (void)state;
    assert_true(report_kind_valid("recovery_escalation_plan"));
    assert_true(report_kind_valid("connector_delivery"));
    assert_true(report_kind_valid("recovery_escalation_ack"));
    assert_true(report_kind_valid("recovery_escalation_retry_plan"));
    assert_true(report_kind_valid("executive_report_schedule_run"));
    assert_false(report_kind_valid("Recovery_escalation_plan"));
    assert_false(report_kind_valid(""));
    assert_false(report_kind_valid(NULL));
}

static void
test_report_cursor_roundtrip(void **state)
{
    static const int64_t ids[] = {1, 42, 500, 1000000007LL, INT64_MAX};
    char c[REPORT_CURSOR_MAX];
    int64_t back;
    cv_error err;

    (void)state;
    cv_error_clear(&err);
    report_cursor_encode(42, c);
    assert_string_equal(c, "djE6NDI"); /* base64url("v1:42") */
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        report_cursor_encode(ids[i], c);
        assert_int_equal(report_cursor_decode(c, &back, &err), 0);
        assert_int_equal(back, ids[i]);
    }
}

static void
test_report_cursor_invalid(void **state)
{
    static const char *const bad[] = {
        "",
        "abc",
        "djE6NDI=", /* padding is never written */
        "djE6NDJ",  /* same bytes, non-canonical trailing bits */
        "djE6MA",   /* v1:0 */
        "djE6MDQy", /* v1:042 */
        "djI6NDI",  /* v2:42 */
        "djE6LTU",  /* v1:-5 */
        "djE6NGE",  /* v1:4a */
        "djE6OTIyMzM3MjAzNjg1NDc3NTgwOA", /* INT64_MAX + 1 */
        "djE6+DI",
        "djE6 NDI",
        "42",
        "djE6NDIdjE6NDIdjE6NDIdjE6NDIdjE6NDIdjE6NDIdjE6NDI",
    };
    int64_t id;
    cv_error err;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cv_error_clear(&err);
        if (report_cursor_decode(bad[i], &id, &err) == 0)
            fail_msg("cursor \"%s\" was accepted as %lld", bad[i],
                     (long long)id);
        assert_int_equal(err.code, CV_INVALID_ARGUMENT);
        assert_string_equal(err.msg, "cursor is invalid");
    }
    assert_int_equal(report_cursor_decode(NULL, &id, &err),
                     CV_INVALID_ARGUMENT);
}

static void
test_report_list_filter_rules(void **state)
{
    Cv__ListEvidenceRequest req = CV__LIST_EVIDENCE_REQUEST__INIT;
    report_list_filter f;
    char long_id[200];
    char c[REPORT_CURSOR_MAX];
    cv_error err;

    (void)state;
    cv_error_clear(&err);
    assert_int_equal(report_list_filter_init(&req, &f, &err), 0);
    assert_null(f.kind);
    assert_null(f.plan_id);
    assert_null(f.provider);
    assert_int_equal(f.limit, 50);
    assert_int_equal(f.after_id, INT64_MAX);

    /* Empty query values are "not given". */
    req.kind = "";
    req.plan_id = "";
    req.provider = "";
    req.cursor = "";
    assert_int_equal(report_list_filter_init(&req, &f, &err), 0);
    assert_null(f.kind);
    assert_null(f.plan_id);
    assert_null(f.provider);
    assert_int_equal(f.after_id, INT64_MAX);

    report_cursor_encode(77, c);
    req.kind = "connector_delivery";
    req.plan_id = "gordackrecoveryesc-0123456789abcdef";
    req.provider = " Slack ";
    req.cursor = c;
    req.has_limit = 1;
    req.limit = 500;
    assert_int_equal(report_list_filter_init(&req, &f, &err), 0);
    assert_string_equal(f.kind, "connector_delivery");
    assert_string_equal(f.plan_id, "gordackrecoveryesc-0123456789abcdef");
    assert_string_equal(f.provider, "slack");
    assert_int_equal(f.limit, 500);
    assert_int_equal(f.after_id, 77);
    req.limit = 1;
    assert_int_equal(report_list_filter_init(&req, &f, &err), 0);
    assert_int_equal(f.limit, 1);

    req.limit = 0;
    t_list_rejects(&req, "limit must be between 1 and 500");
    req.limit = 501;
    t_list_rejects(&req, "limit must be between 1 and 500");
    req.limit = -1;
    t_list_rejects(&req, "limit must be between 1 and 500");
    req.limit = 10;
    req.kind = "plan";
    t_list_rejects(&req, T_KIND_RULE);
    req.kind = NULL;
    req.provider = "sl ack";
    t_list_rejects(&req, "provider " T_IDENT_RULE);
    req.provider = NULL;
    memset(long_id, 'p', 129);
    long_id[129] = '\0';
    req.plan_id = long_id;
    t_list_rejects(&req, "plan_id must be at most 128 characters");
    req.plan_id = NULL;
    req.cursor = "not-a-cursor";
    t_list_rejects(&req, "cursor is invalid");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_report_window_alignment_table),
        cmocka_unit_test(test_report_window_text),
        cmocka_unit_test(test_report_window_bad_interval),
        cmocka_unit_test(test_report_schedule_defaults),
        cmocka_unit_test(test_report_schedule_values),
        cmocka_unit_test(test_report_schedule_derived_id_fits),
        cmocka_unit_test(test_report_schedule_rejected),
        cmocka_unit_test(test_report_schedule_redacts_generated_by),
        cmocka_unit_test(test_report_alert_level_rules),
        cmocka_unit_test(test_report_business_impact),
        cmocka_unit_test(test_report_build_run_record),
        cmocka_unit_test(test_report_build_run_healthy_and_ids),
        cmocka_unit_test(test_report_kinds),
        cmocka_unit_test(test_report_cursor_roundtrip),
        cmocka_unit_test(test_report_cursor_invalid),
        cmocka_unit_test(test_report_list_filter_rules),
    };

    return cmocka_run_group_tests_name("report_window", tests, NULL, NULL);
}
