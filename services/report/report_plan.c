/*
 * report_plan.c -- schedules, windows, status rules and record building
 * for scheduled executive report runs, and the read side's input rules.
 * No I/O: report_rpc.c and report_sched.c fetch the counts with
 * report_sql.c and store what this builds.
 */
#include "report_plan.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_evidence.h"
#include "cv_id.h"
#include "cv_record.h"
#include "cv_time.h"
#include "cv_transcode.h"
#include "cv_validate.h"

#define REPORT_US_PER_MINUTE INT64_C(60000000)

static const char *const report_report_controls[] = {
    "counts are computed from the whole evidence store at generation time "
    "with aggregate queries: nothing is sampled or capped",
    "an escalation stays open until the latest acknowledgement of its "
    "provider is resolved or dismissed",
    "public-safe metadata only: no connector credentials, private "
    "endpoints, ticket payloads or customer incident text",
};

static const char *const report_run_controls[] = {
    "exactly one run per schedule and window: repeated calls and every "
    "replica of the reporting service return the stored run",
    "windows are aligned to the UTC epoch",
    "every stored run appends one event to the append-only evidence stream",
};

static const char *const report_kinds[] = {
    CV_KIND_PLAN,       CV_KIND_DELIVERY,   CV_KIND_ACK,
    CV_KIND_RETRY_PLAN, CV_KIND_REPORT_RUN, CV_KIND_SCHEDULE_CHANGE,
};
#define REPORT_N_KINDS (sizeof(report_kinds) / sizeof(report_kinds[0]))

int
report_window(int64_t now_us, int64_t interval_minutes, int64_t *start_us,
              int64_t *end_us)
{
    int64_t len, q;

    if (interval_minutes <= 0 ||
        interval_minutes > INT64_MAX / REPORT_US_PER_MINUTE / 4)
        return -1;
    len = interval_minutes * REPORT_US_PER_MINUTE;
    /* Keep start and end representable (only absurd clocks fail). */
    if (now_us < INT64_MIN + len || now_us > INT64_MAX - len)
        return -1;
    /* C division truncates toward zero; the window needs the floor. */
    q = now_us / len;
    if (now_us % len < 0)
        q--;
    *start_us = q * len;
    *end_us = *start_us + len;
    return 0;
}

/* True for NULL, "" and white space only. */
static bool
report_blank(const char *s)
{
    if (s == NULL)
        return true;
    for (; *s != '\0'; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
            return false;
    return true;
}

void
report_schedule_fini(report_schedule *s)
{
    if (s == NULL)
        return;
    free(s->generated_by);
    s->generated_by = NULL;
}

int
report_schedule_resolve(const Cv__ScheduleRunRequest *req,
                        const char *actor_name, report_schedule *out,
                        cv_error *err)
{
    const Cv__ScheduleSpec *sp = req->schedule;
    char *declared = NULL;
    int rv;

    memset(out, 0, sizeof(*out));
    if ((rv = cv_record_text("generated_by", req->generated_by,
                             REPORT_GENERATOR_MAX, false, &declared,
                             &out->redactions, err)) != 0)
        return rv;
    /* A verified actor overrides the self-declared name. */
    if (actor_name != NULL) {
        free(declared);
        declared = NULL;
        out->redactions = 0;
        out->generated_by = strdup(actor_name);
    } else {
        out->generated_by = declared != NULL ? declared : strdup("console");
        declared = NULL;
    }
    if (out->generated_by == NULL) {
        rv = cv_error_set(err, CV_INTERNAL, "out of memory");
        goto fail;
    }

    out->recovery_slo_minutes = REPORT_SLO_DEFAULT;
    if (req->has_recovery_slo_minutes) {
        if ((rv = cv_validate_int_range("recovery_slo_minutes",
                                        req->recovery_slo_minutes, 1,
                                        REPORT_SLO_MAX, err)) != 0)
            goto fail;
        out->recovery_slo_minutes = req->recovery_slo_minutes;
    }
    out->interval_minutes = REPORT_INTERVAL_DEFAULT;
    if (sp != NULL && sp->has_interval_minutes) {
        if ((rv = cv_validate_int_range("schedule.interval_minutes",
                                        sp->interval_minutes, 1,
                                        REPORT_INTERVAL_MAX, err)) != 0)
            goto fail;
        out->interval_minutes = sp->interval_minutes;
    }
    if (sp != NULL && !report_blank(sp->cadence)) {
        if ((rv = cv_normalize_ident("schedule.cadence", sp->cadence,
                                     REPORT_CADENCE_MAX, out->cadence,
                                     sizeof(out->cadence), err)) != 0)
            goto fail;
    } else {
        snprintf(out->cadence, sizeof(out->cadence), "every_%lld_minutes",
                 (long long)out->interval_minutes);
    }
    out->enabled = sp == NULL || !sp->has_enabled || sp->enabled;
    if (sp != NULL && !report_blank(sp->schedule_id)) {
        if ((rv = cv_normalize_ident("schedule.schedule_id", sp->schedule_id,
                                     REPORT_SCHEDULE_ID_MAX, out->schedule_id,
                                     sizeof(out->schedule_id), err)) != 0)
            goto fail;
    } else {
        /* "<cadence>-<interval>", the cadence cut so the id fits. */
        char suffix[24];
        int keep;

        snprintf(suffix, sizeof(suffix), "-%lld",
                 (long long)out->interval_minutes);
        keep = REPORT_SCHEDULE_ID_MAX - (int)strlen(suffix);
        snprintf(out->schedule_id, sizeof(out->schedule_id), "%.*s%s", keep,
                 out->cadence, suffix);
    }
    return 0;

fail:
    report_schedule_fini(out);
    return rv;
}

Cv__AlertLevel
report_alert_level(const report_counts *c)
{
    if (c->critical_escalation_count > 0 || c->slo_breached_count > 0)
        return CV__ALERT_LEVEL__ALERT_LEVEL_CRITICAL;
    if (c->escalation_count > 0 || c->failed_delivery_count > 0)
        return CV__ALERT_LEVEL__ALERT_LEVEL_WARNING;
    return CV__ALERT_LEVEL__ALERT_LEVEL_HEALTHY;
}

/* "1 escalation" / "2 escalations". */
static const char *
report_plural(int64_t n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

void
report_business_impact(const report_counts *c, char *out, size_t outlen)
{
    long long esc = (long long)c->escalation_count;
    long long unack = (long long)c->unacknowledged_count;
    long long failed = (long long)c->failed_delivery_count;

    switch (report_alert_level(c)) {
    case CV__ALERT_LEVEL__ALERT_LEVEL_CRITICAL:
        snprintf(out, outlen,
                 "%lld open recovery %s %s rollback drill recovery at "
                 "risk: %lld critical, %lld past the recovery SLO and %lld "
                 "without a provider acknowledgement; %lld escalation %s "
                 "failed in this window.",
                 esc, report_plural(esc, "escalation", "escalations"),
                 report_plural(esc, "puts", "put"),
                 (long long)c->critical_escalation_count,
                 (long long)c->slo_breached_count, unack, failed,
                 report_plural(failed, "delivery", "deliveries"));
        break;
    case CV__ALERT_LEVEL__ALERT_LEVEL_WARNING:
        snprintf(out, outlen,
                 "%lld open recovery %s %s follow-up (%lld without a "
                 "provider acknowledgement) and %lld escalation %s failed "
                 "in this window; none is critical or past the recovery "
                 "SLO.",
                 esc, report_plural(esc, "escalation", "escalations"),
                 report_plural(esc, "needs", "need"), unack, failed,
                 report_plural(failed, "delivery", "deliveries"));
        break;
    default:
        snprintf(out, outlen,
                 "No open recovery escalations and no failed escalation "
                 "deliveries in this window: rollback drill recovery is on "
                 "track.");
        break;
    }
}

/* Sets *out to prefix + hash of material; consumes material. */
static int
report_id_from(json_t *material, const char *prefix, char *out, size_t outlen)
{
    int rv;

    if (material == NULL)
        return -1;
    rv = cv_record_id(prefix, material, out, outlen);
    json_decref(material);
    return rv;
}

int
report_run_id(const char *schedule_id, const char *window_start, char *out,
              size_t outlen)
{
    return report_id_from(json_pack("{s:s, s:s}", "schedule_id", schedule_id,
                                    "window_start", window_start),
                          REPORT_RUN_ID_PREFIX, out, outlen);
}

/* A growable repeated string field. */
typedef struct report_strings {
    char **items;
    size_t n;
    bool oom;
} report_strings;

static void report_strings_add(report_strings *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
report_strings_add(report_strings *s, const char *fmt, ...)
{
    char buf[512];
    char **grown;
    va_list ap;

    if (s->oom)
        return;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if ((grown = realloc(s->items, (s->n + 1) * sizeof(char *))) == NULL) {
        s->oom = true;
        return;
    }
    s->items = grown;
    if ((s->items[s->n] = strdup(buf)) == NULL) {
        s->oom = true;
        return;
    }
    s->n++;
}

static void
report_strings_table(report_strings *s, const char *const *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        report_strings_add(s, "%s", t[i]);
}

/* Appends one key risk when count > 0. */
static int
report_add_risk(Cv__ExecutiveReport *r, Cv__Severity severity, const char *risk,
                int64_t count, const char *owner)
{
    Cv__KeyRisk *k, **grown;

    if (count <= 0)
        return 0;
    grown = realloc(r->key_risks, (r->n_key_risks + 1) * sizeof(*grown));
    if (grown == NULL)
        return -1;
    r->key_risks = grown;
    if ((k = malloc(sizeof(*k))) == NULL)
        return -1;
    cv__key_risk__init(k);
    r->key_risks[r->n_key_risks++] = k;
    CV_SET(k, severity, severity);
    CV_SET(k, count, count);
    k->risk = strdup(risk);
    k->owner = strdup(owner);
    return k->risk != NULL && k->owner != NULL ? 0 : -1;
}

/* The risks the original CAVRA also states keep its wording and owner
 * (its clients and report readers match on them); ours follow. */
#define REPORT_RISK_SLO_BREACHED "Connector recovery SLO breached"
#define REPORT_RISK_OPEN         "Connector recovery remains open"
#define REPORT_RISK_OWNER        "release-governance"

static int
report_key_risks(Cv__ExecutiveReport *r, const report_counts *c)
{
    if (report_add_risk(r, CV__SEVERITY__SEVERITY_CRITICAL,
                        REPORT_RISK_SLO_BREACHED, c->slo_breached_count,
                        REPORT_RISK_OWNER) != 0 ||
        report_add_risk(r, CV__SEVERITY__SEVERITY_WARNING, REPORT_RISK_OPEN,
                        c->open_recovery_count, REPORT_RISK_OWNER) != 0 ||
        report_add_risk(r, CV__SEVERITY__SEVERITY_CRITICAL,
                        "critical recovery escalations are open",
                        c->critical_escalation_count, "release_manager") != 0 ||
        report_add_risk(r, CV__SEVERITY__SEVERITY_WARNING,
                        "open recovery escalations have no provider "
                        "acknowledgement",
                        c->unacknowledged_count, "release_manager") != 0 ||
        report_add_risk(r, CV__SEVERITY__SEVERITY_WARNING,
                        "escalation deliveries failed in this window",
                        c->failed_delivery_count, "platform_owner") != 0 ||
        report_add_risk(r, CV__SEVERITY__SEVERITY_WARNING,
                        "retry executions failed for open recovery "
                        "escalations",
                        c->failed_execution_count, "platform_owner") != 0 ||
        report_add_risk(r, CV__SEVERITY__SEVERITY_INFO,
                        "failed escalation deliveries are eligible for retry",
                        c->retryable_count, "platform_owner") != 0)
        return -1;
    return 0;
}

static void
report_actions(report_strings *a, const report_counts *c)
{
    if (c->slo_breached_count > 0)
        report_strings_add(
            a,
            "Escalate the %lld recovery %s past the recovery "
            "SLO to the release manager and record the "
            "decision as an acknowledgement.",
            (long long)c->slo_breached_count,
            report_plural(c->slo_breached_count, "escalation", "escalations"));
    if (c->critical_escalation_count > 0)
        report_strings_add(a,
                           "Review the %lld critical recovery %s with the "
                           "responsible providers today.",
                           (long long)c->critical_escalation_count,
                           report_plural(c->critical_escalation_count,
                                         "escalation", "escalations"));
    if (c->unacknowledged_count > 0)
        report_strings_add(a,
                           "Obtain a provider acknowledgement for the %lld "
                           "unacknowledged recovery %s.",
                           (long long)c->unacknowledged_count,
                           report_plural(c->unacknowledged_count, "escalation",
                                         "escalations"));
    if (c->failed_delivery_count > 0)
        report_strings_add(
            a,
            "Have the platform owner review the %lld failed "
            "escalation %s of this window and plan retries.",
            (long long)c->failed_delivery_count,
            report_plural(c->failed_delivery_count, "delivery", "deliveries"));
    if (c->retryable_count > 0)
        report_strings_add(
            a,
            "Retry the %lld escalation %s the latest retry "
            "plan marks as eligible.",
            (long long)c->retryable_count,
            report_plural(c->retryable_count, "delivery", "deliveries"));
    if (c->failed_execution_count > 0)
        report_strings_add(a,
                           "Investigate the %lld failed retry %s of open "
                           "recovery escalations before the next drill.",
                           (long long)c->failed_execution_count,
                           report_plural(c->failed_execution_count, "execution",
                                         "executions"));
    if (a->n == 0)
        report_strings_add(a, "No action needed: keep the executive report "
                              "schedule running.");
}

/* A new message of type desc (free it with protobuf_c_message_free_unpacked)
 * whose string field "provider" is a copy of provider; NULL when out of
 * memory. */
static ProtobufCMessage *
report_provider_message(const ProtobufCMessageDescriptor *desc,
                        const char *provider)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(desc, "provider");
    ProtobufCMessage *m = malloc(desc->sizeof_message);
    char *copy = strdup(provider);

    if (m == NULL || copy == NULL) {
        free(m);
        free(copy);
        return NULL;
    }
    protobuf_c_message_init(desc, m);
    *(char **)((char *)m + f->offset) = copy;
    return m;
}

static Cv__ProviderSummary *
report_provider_summary(const report_provider_row *row)
{
    Cv__ProviderSummary *p = (Cv__ProviderSummary *)report_provider_message(
        &cv__provider_summary__descriptor, row->provider);

    if (p == NULL)
        return NULL;
    CV_SET(p, escalation_count, row->escalation_count);
    CV_SET(p, open_recovery_count, row->open_recovery_count);
    CV_SET(p, critical_escalation_count, row->critical_escalation_count);
    CV_SET(p, slo_breached_count, row->slo_breached_count);
    CV_SET(p, unacknowledged_count, row->unacknowledged_count);
    CV_SET(p, failed_delivery_count, row->failed_delivery_count);
    CV_SET(p, acknowledgement_count, row->acknowledgement_count);
    if (row->latest_state != 0)
        CV_SET(p, latest_acknowledgement_state, row->latest_state);
    CV_SET(p, execution_count, row->execution_count);
    CV_SET(p, execution_delivered_count, row->execution_delivered_count);
    CV_SET(p, execution_failed_count, row->execution_failed_count);
    CV_SET(p, execution_skipped_count, 0);
    CV_SET(p, recovery_playbook_count, row->escalation_count);
    CV_SET(p, recovery_closure_count, row->recovery_closure_count);
    if ((row->latest_execution_at[0] != '\0' &&
         (p->latest_execution_at = strdup(row->latest_execution_at)) == NULL) ||
        (row->latest_closure_at[0] != '\0' &&
         (p->latest_closure_at = strdup(row->latest_closure_at)) == NULL)) {
        protobuf_c_message_free_unpacked(&p->base, NULL);
        return NULL;
    }
    return p;
}

static Cv__ClosureTrend *
report_closure_trend(const report_provider_row *row)
{
    Cv__ClosureTrend *t = (Cv__ClosureTrend *)report_provider_message(
        &cv__closure_trend__descriptor, row->provider);

    if (t == NULL)
        return NULL;
    CV_SET(t, open_recovery_count, row->open_recovery_count);
    CV_SET(t, recovery_closure_count, row->recovery_closure_count);
    return t;
}

/*
 * Builds an executive report. material (consumed) derives its id; run_id
 * and schedule_id are NULL for a report of no run (report_build_adhoc).
 */
static int
report_build_report(const report_schedule *s, json_t *material,
                    const char *run_id, const char *schedule_id,
                    const char *generated_at, const char *generated_by,
                    const char *window_start, const char *window_end,
                    const report_counts *c, const report_provider_row *rows,
                    size_t n_rows, Cv__ExecutiveReport **out)
{
    Cv__ExecutiveReport *r;
    Cv__ReportExecutiveSummary *sum;
    report_strings actions = {0}, controls = {0};
    char impact[512];
    char id[CV_ID_MAX];

    if ((r = malloc(sizeof(*r))) == NULL) {
        json_decref(material);
        return -1;
    }
    cv__executive_report__init(r);
    *out = r;
    r->schema_version = strdup(REPORT_REPORT_SCHEMA);
    r->product = strdup(CV_PRODUCT);
    if (report_id_from(material, REPORT_REPORT_ID_PREFIX, id, sizeof(id)) != 0)
        return -1;
    r->executive_report_id = strdup(id);
    r->run_id = cv_strdup0(run_id);
    r->schedule_id = cv_strdup0(schedule_id);
    r->generated_at = strdup(generated_at);
    r->generated_by = strdup(generated_by);
    CV_SET(r, alert_level, report_alert_level(c));
    CV_SET(r, recovery_slo_minutes, s->recovery_slo_minutes);
    r->window_start = strdup(window_start);
    r->window_end = strdup(window_end);
    if (c->recovery_report_id[0] != '\0' &&
        (r->recovery_report_id = strdup(c->recovery_report_id)) == NULL)
        return -1;
    if (c->escalation_plan_id[0] != '\0' &&
        (r->escalation_plan_id = strdup(c->escalation_plan_id)) == NULL)
        return -1;

    if ((sum = malloc(sizeof(*sum))) == NULL)
        return -1;
    cv__report_executive_summary__init(sum);
    r->executive_summary = sum;
    report_business_impact(c, impact, sizeof(impact));
    CV_SET(sum, status, r->alert_level);
    sum->business_impact = strdup(impact);
    CV_SET(sum, escalation_count, c->escalation_count);
    CV_SET(sum, critical_escalation_count, c->critical_escalation_count);
    CV_SET(sum, slo_breached_count, c->slo_breached_count);
    CV_SET(sum, open_recovery_count, c->open_recovery_count);
    CV_SET(sum, failed_execution_count, c->failed_execution_count);
    CV_SET(sum, unacknowledged_count, c->unacknowledged_count);
    CV_SET(sum, failed_delivery_count, c->failed_delivery_count);
    CV_SET(sum, retryable_count, c->retryable_count);
    CV_SET(sum, acknowledgement_count, c->acknowledgement_count);
    CV_SET(sum, execution_count, c->execution_count);

    if (n_rows > 0) {
        r->provider_summary = calloc(n_rows, sizeof(Cv__ProviderSummary *));
        r->closure_trends = calloc(n_rows, sizeof(Cv__ClosureTrend *));
        if (r->provider_summary == NULL || r->closure_trends == NULL)
            return -1;
        for (size_t i = 0; i < n_rows; i++) {
            if ((r->provider_summary[i] = report_provider_summary(&rows[i])) ==
                NULL)
                return -1;
            r->n_provider_summary = i + 1;
            if ((r->closure_trends[i] = report_closure_trend(&rows[i])) == NULL)
                return -1;
            r->n_closure_trends = i + 1;
        }
    }
    if (report_key_risks(r, c) != 0)
        return -1;
    report_actions(&actions, c);
    r->recommended_actions = actions.items;
    r->n_recommended_actions = actions.n;
    report_strings_table(&controls, report_report_controls,
                         sizeof(report_report_controls) /
                             sizeof(report_report_controls[0]));
    r->controls = controls.items;
    r->n_controls = controls.n;
    if (actions.oom || controls.oom || r->schema_version == NULL ||
        r->product == NULL || r->executive_report_id == NULL ||
        (run_id != NULL && r->run_id == NULL) ||
        (schedule_id != NULL && r->schedule_id == NULL) ||
        r->generated_at == NULL || r->generated_by == NULL ||
        r->window_start == NULL || r->window_end == NULL ||
        sum->business_impact == NULL)
        return -1;
    return 0;
}

int
report_build_run(const report_schedule *s, int64_t window_start_us,
                 int64_t now_us, const report_counts *c,
                 const report_provider_row *rows, size_t n_rows,
                 Cv__ScheduleRun **out, cv_error *err)
{
    Cv__ScheduleRun *run;
    Cv__RunSchedule *sch;
    Cv__RunSummary *sum;
    report_strings controls = {0};
    int64_t ws, we;
    char when[CV_TIME_MAX], start[CV_TIME_MAX], end[CV_TIME_MAX];
    char id[CV_ID_MAX];

    *out = NULL;
    if (report_window(window_start_us, s->interval_minutes, &ws, &we) != 0)
        return cv_error_set(err, CV_INVALID_ARGUMENT,
                            "schedule.interval_minutes must be between 1 and "
                            "%d",
                            REPORT_INTERVAL_MAX);
    cv_time_format(now_us, when);
    cv_time_format(ws, start);
    cv_time_format(we, end);
    if ((run = malloc(sizeof(*run))) == NULL)
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    cv__schedule_run__init(run);
    run->schema_version = strdup(REPORT_RUN_SCHEMA);
    run->product = strdup(CV_PRODUCT);
    run->generated_at = strdup(when);
    run->generated_by = strdup(s->generated_by);
    CV_SET(run, alert_level, report_alert_level(c));
    CV_SET(run, redaction_count, s->redactions);
    if (report_run_id(s->schedule_id, start, id, sizeof(id)) != 0)
        goto oom;
    run->run_id = strdup(id);

    if ((sch = malloc(sizeof(*sch))) == NULL)
        goto oom;
    cv__run_schedule__init(sch);
    run->schedule = sch;
    sch->schedule_id = strdup(s->schedule_id);
    CV_SET(sch, interval_minutes, s->interval_minutes);
    sch->window_start = strdup(start);
    sch->window_end = strdup(end);
    CV_SET(sch, enabled, s->enabled);
    sch->cadence = strdup(s->cadence);

    if ((sum = malloc(sizeof(*sum))) == NULL)
        goto oom;
    cv__run_summary__init(sum);
    run->summary = sum;
    CV_SET(sum, executive_report_count, 1);
    CV_SET(sum, escalation_count, c->escalation_count);
    CV_SET(sum, failed_execution_count, c->failed_execution_count);
    CV_SET(sum, open_recovery_count, c->open_recovery_count);
    CV_SET(sum, slo_breached_count, c->slo_breached_count);

    report_strings_table(&controls, report_run_controls,
                         sizeof(report_run_controls) /
                             sizeof(report_run_controls[0]));
    run->controls = controls.items;
    run->n_controls = controls.n;
    if (controls.oom || run->schema_version == NULL || run->product == NULL ||
        run->generated_at == NULL || run->generated_by == NULL ||
        run->run_id == NULL || sch->schedule_id == NULL ||
        sch->window_start == NULL || sch->window_end == NULL ||
        sch->cadence == NULL)
        goto oom;
    if (report_build_report(s, json_pack("{s:s}", "run_id", run->run_id),
                            run->run_id, s->schedule_id, run->generated_at,
                            run->generated_by, start, end, c, rows, n_rows,
                            &run->executive_report) != 0)
        goto oom;
    *out = run;
    return 0;

oom:
    protobuf_c_message_free_unpacked(&run->base, NULL);
    return cv_error_set(err, CV_INTERNAL, "out of memory");
}

int
report_build_adhoc(const report_schedule *s, int64_t window_start_us,
                   int64_t now_us, const report_counts *c,
                   const report_provider_row *rows, size_t n_rows,
                   const char *request_id, Cv__ExecutiveReport **out,
                   cv_error *err)
{
    int64_t ws, we;
    char when[CV_TIME_MAX], start[CV_TIME_MAX], end[CV_TIME_MAX];

    *out = NULL;
    if (report_window(window_start_us, s->interval_minutes, &ws, &we) != 0)
        return cv_error_set(err, CV_INVALID_ARGUMENT,
                            "interval_minutes must be positive");
    cv_time_format(now_us, when);
    cv_time_format(ws, start);
    cv_time_format(we, end);
    if (report_build_report(s,
                            json_pack("{s:s, s:s, s:s}", "generated_at", when,
                                      "generated_by", s->generated_by,
                                      "request_id",
                                      request_id != NULL ? request_id : ""),
                            NULL, NULL, when, s->generated_by, start, end, c,
                            rows, n_rows, out) != 0) {
        if (*out != NULL)
            protobuf_c_message_free_unpacked(&(*out)->base, NULL);
        *out = NULL;
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    }
    return 0;
}

Cv__RunMetadata *
report_run_metadata(const Cv__ScheduleRun *run)
{
    Cv__RunMetadata *m = malloc(sizeof(*m));
    int64_t escalations =
        run->summary != NULL ? run->summary->escalation_count : 0;

    if (m == NULL)
        return NULL;
    cv__run_metadata__init(m);
    m->schema_version = strdup(CV_METADATA_SCHEMA);
    m->product = strdup(CV_PRODUCT);
    m->metadata_kind = strdup(REPORT_RUN_METADATA_KIND);
    m->session_id = strdup(run->run_id);
    m->created_at = strdup(run->generated_at);
    m->signer = strdup(REPORT_SIGNER);
    m->run_id = strdup(run->run_id);
    m->schedule_id = strdup(run->schedule->schedule_id);
    m->window_start = strdup(run->schedule->window_start);
    CV_SET(m, alert_level, run->alert_level);
    /* One report per run; blocked when it is critical, needing approval
     * when it is not healthy. */
    CV_SET(m, decision_count, 1);
    CV_SET(m, blocked_count,
           run->alert_level == CV__ALERT_LEVEL__ALERT_LEVEL_CRITICAL);
    CV_SET(m, approval_required_count,
           run->alert_level != CV__ALERT_LEVEL__ALERT_LEVEL_HEALTHY);
    CV_SET(m, escalation_count, escalations);
    /* The original's keys only: ours are in the run beside it. */
    m->recovery_executive_report_schedule_run =
        (Cv__EmbeddedScheduleRun *)cv_message_view(
            &run->base, &cv__embedded_schedule_run__descriptor);
    if (m->schema_version == NULL || m->product == NULL ||
        m->metadata_kind == NULL || m->session_id == NULL ||
        m->created_at == NULL || m->signer == NULL || m->run_id == NULL ||
        m->schedule_id == NULL || m->window_start == NULL ||
        m->recovery_executive_report_schedule_run == NULL) {
        protobuf_c_message_free_unpacked(&m->base, NULL);
        return NULL;
    }
    return m;
}

Cv__ReportMetadata *
report_report_metadata(const Cv__ExecutiveReport *r)
{
    Cv__ReportMetadata *m = malloc(sizeof(*m));
    int64_t blocked = 0, approval = 0;

    if (m == NULL)
        return NULL;
    cv__report_metadata__init(m);
    for (size_t i = 0; i < r->n_key_risks; i++) {
        if (r->key_risks[i]->severity == CV__SEVERITY__SEVERITY_CRITICAL)
            blocked++;
        if (r->key_risks[i]->severity != CV__SEVERITY__SEVERITY_INFO)
            approval++;
    }
    m->schema_version = strdup(CV_METADATA_SCHEMA);
    m->product = strdup(CV_PRODUCT);
    m->metadata_kind = strdup(REPORT_REPORT_METADATA_KIND);
    m->session_id = strdup(r->executive_report_id);
    m->created_at = strdup(r->generated_at);
    m->signer = strdup(REPORT_SIGNER);
    m->executive_report_id = strdup(r->executive_report_id);
    m->run_id = cv_strdup0(r->run_id);
    m->recovery_report_id = cv_strdup0(r->recovery_report_id);
    m->escalation_plan_id = cv_strdup0(r->escalation_plan_id);
    CV_SET(m, alert_level, r->alert_level);
    CV_SET(m, decision_count, (int64_t)r->n_key_risks);
    CV_SET(m, blocked_count, blocked);
    CV_SET(m, approval_required_count, approval);
    CV_SET(m, escalation_count,
           r->executive_summary != NULL ? r->executive_summary->escalation_count
                                        : 0);
    /* The original's keys only: ours are in the report beside it. */
    m->recovery_executive_report =
        (Cv__EmbeddedExecutiveReport *)cv_message_view(
            &r->base, &cv__embedded_executive_report__descriptor);
    if (m->schema_version == NULL || m->product == NULL ||
        m->metadata_kind == NULL || m->session_id == NULL ||
        m->created_at == NULL || m->signer == NULL ||
        m->executive_report_id == NULL ||
        m->recovery_executive_report == NULL) {
        protobuf_c_message_free_unpacked(&m->base, NULL);
        return NULL;
    }
    return m;
}

bool
report_kind_valid(const char *kind)
{
    for (size_t i = 0; kind != NULL && i < REPORT_N_KINDS; i++)
        if (strcmp(kind, report_kinds[i]) == 0)
            return true;
    return false;
}

/* ---- cursors: base64url (no padding) of "v1:<decimal id>" ------------ */

static const char report_b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void
report_b64_encode(const unsigned char *in, size_t len, char *out)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        size_t n = len - i < 3 ? len - i : 3;

        if (n > 1)
            v |= (uint32_t)in[i + 1] << 8;
        if (n > 2)
            v |= in[i + 2];
        out[o++] = report_b64[(v >> 18) & 63];
        out[o++] = report_b64[(v >> 12) & 63];
        if (n > 1)
            out[o++] = report_b64[(v >> 6) & 63];
        if (n > 2)
            out[o++] = report_b64[v & 63];
    }
    out[o] = '\0';
}

void
report_cursor_encode(int64_t id, char out[REPORT_CURSOR_MAX])
{
    char plain[32];
    int n = snprintf(plain, sizeof(plain), "v1:%" PRId64, id);

    report_b64_encode((const unsigned char *)plain, (size_t)n, out);
}

int
report_cursor_decode(const char *cursor, int64_t *id, cv_error *err)
{
    char again[REPORT_CURSOR_MAX];
    char plain[32];
    size_t len, o = 0;
    uint32_t acc = 0;
    int bits = 0;
    int64_t v = 0;

    len = cursor != NULL ? strlen(cursor) : 0;
    if (len < 4 || len >= REPORT_CURSOR_MAX)
        goto bad;
    for (size_t i = 0; i < len; i++) {
        const char *p = strchr(report_b64, cursor[i]);

        if (cursor[i] == '\0' || p == NULL)
            goto bad;
        acc = (acc << 6) | (uint32_t)(p - report_b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o + 1 >= sizeof(plain))
                goto bad;
            plain[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    plain[o] = '\0';
    if (o < 4 || o > 22 || strncmp(plain, "v1:", 3) != 0 || plain[3] == '0')
        goto bad;
    for (size_t i = 3; i < o; i++) {
        if (plain[i] < '0' || plain[i] > '9')
            goto bad;
        if (v > (INT64_MAX - (plain[i] - '0')) / 10)
            goto bad;
        v = v * 10 + (plain[i] - '0');
    }
    /* Only the exact text report_cursor_encode writes is accepted. */
    report_cursor_encode(v, again);
    if (strcmp(again, cursor) != 0)
        goto bad;
    *id = v;
    return 0;

bad:
    return cv_error_set(err, CV_INVALID_ARGUMENT, "cursor is invalid");
}

int
report_list_filter_init(const Cv__ListEvidenceRequest *req,
                        report_list_filter *f, cv_error *err)
{
    int rv;

    memset(f, 0, sizeof(*f));
    f->after_id = INT64_MAX;
    f->limit = REPORT_LIST_LIMIT_DEFAULT;
    if (req->kind != NULL && req->kind[0] != '\0') {
        if (!report_kind_valid(req->kind))
            return cv_error_set(err, CV_INVALID_ARGUMENT,
                                "kind must be one of %s, %s, %s, %s, %s",
                                report_kinds[0], report_kinds[1],
                                report_kinds[2], report_kinds[3],
                                report_kinds[4]);
        f->kind = req->kind;
    }
    if (req->plan_id != NULL && req->plan_id[0] != '\0') {
        if (strlen(req->plan_id) > REPORT_PLAN_ID_MAX)
            return cv_error_set(err, CV_INVALID_ARGUMENT,
                                "plan_id must be at most %d characters",
                                REPORT_PLAN_ID_MAX);
        f->plan_id = req->plan_id;
    }
    if (req->provider != NULL && req->provider[0] != '\0') {
        if ((rv = cv_normalize_ident("provider", req->provider,
                                     REPORT_PROVIDER_MAX, f->provider_buf,
                                     sizeof(f->provider_buf), err)) != 0)
            return rv;
        f->provider = f->provider_buf;
    }
    if (req->has_limit) {
        if ((rv = cv_validate_int_range("limit", req->limit, 1,
                                        REPORT_LIST_LIMIT_MAX, err)) != 0)
            return rv;
        f->limit = req->limit;
    }
    if (req->cursor != NULL && req->cursor[0] != '\0' &&
        (rv = report_cursor_decode(req->cursor, &f->after_id, err)) != 0)
        return rv;
    if (req->has_offset) {
        /* OFFSET reads and drops every skipped row: deep pages go by the
         * cursor, which costs the same at any depth. */
        if (req->offset > REPORT_LIST_OFFSET_MAX)
            return cv_error_set(err, CV_INVALID_ARGUMENT,
                                "offset must be at most %d; to page further, "
                                "pass the previous page's next_cursor as "
                                "cursor",
                                REPORT_LIST_OFFSET_MAX);
        if ((rv = cv_validate_int_range("offset", req->offset, 0,
                                        REPORT_LIST_OFFSET_MAX, err)) != 0)
            return rv;
        f->offset = req->offset;
    }
    return 0;
}
