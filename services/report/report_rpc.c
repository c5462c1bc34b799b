/*
 * report_rpc.c -- handlers of the reporting service:
 *   report.ScheduleRun   the scheduled executive report run (docs/api.md)
 *   report.Dashboard     exact counts over the whole store (docs/api.md)
 *   report.ListEvidence  the evidence stream, newest first, in pages
 *   report.Trace         everything the stream holds about one plan
 * report.Health is answered by the RPC library. Each handler validates
 * with report_plan.c and reads or stores with report_sql.c.
 *
 * Design notes (run generation), all in one REPEATABLE READ transaction
 * owned by the caller (the RPC layer, or the scheduler's cv_db_transact):
 *  1. Look the window's run up: when it exists, answer with it.
 *  2. Otherwise (scheduler only: try the schedule's advisory lock), count,
 *     build, and insert the run with ON CONFLICT DO NOTHING; then its
 *     report, counted plans and evidence event.
 *  3. When the insert found the window taken (nothing inserted, or a
 *     serialization failure because a concurrent generator committed
 *     after our snapshot was taken), answer CV_ABORTED: the owner rolls
 *     back and runs it all again in a fresh snapshot, where step 1 finds
 *     the run that won.
 */
#include "report_rpc.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cv_chain.h"
#include "cv_evidence.h"
#include "cv_tlog.h"
#include "cv_plan_ref.h"
#include "cv_record.h"
#include "cv_time.h"
#include "cv_transcode.h"
#include "cv_validate.h"
#include "evidence.pb-c.h"
#include "report_evidence.h"
#include "report_sched.h"
#include "report_sql.h"

/* Evidence pages stop growing past this many bytes of records so that a
 * reply always fits in one RPC message (CV_RPC_REPLY_MAX). */
#define REPORT_PAGE_BYTES (CV_RPC_REPLY_MAX / 4)

/* A reply of run (taken over): the metadata of the run and of its report
 * are rendered from it, never stored. */
static int
report_rpc_run_reply(Cv__ScheduleRun *run, Cv__ScheduleRunReply **out,
                     cv_error *err)
{
    Cv__ScheduleRunReply *rep = malloc(sizeof(*rep));

    *out = NULL;
    if (rep == NULL) {
        protobuf_c_message_free_unpacked(&run->base, NULL);
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    }
    cv__schedule_run_reply__init(rep);
    rep->run = run;
    if (run->executive_report == NULL || run->schedule == NULL) {
        protobuf_c_message_free_unpacked(&rep->base, NULL);
        return cv_error_set(err, CV_DATA_LOSS, "stored run is unreadable");
    }
    rep->metadata = report_run_metadata(run);
    rep->report_metadata = report_report_metadata(run->executive_report);
    if (rep->metadata == NULL || rep->report_metadata == NULL) {
        protobuf_c_message_free_unpacked(&rep->base, NULL);
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    }
    *out = rep;
    return 0;
}

/* Reads the stored run of (schedule, window) into a reply. */
static int
report_rpc_load_run(cv_db *db, const char *schedule_id,
                    const char *window_start, Cv__ScheduleRunReply **out,
                    cv_error *err)
{
    ProtobufCMessage *run = NULL;
    char *text = NULL;
    cv_error perr;
    int rv;

    *out = NULL;
    if ((rv = report_sql_find_run(db, schedule_id, window_start, &text, err)) !=
        0)
        return rv;
    rv = cv_record_load(&cv__schedule_run__descriptor, text, &run, &perr);
    free(text);
    if (rv != 0)
        return cv_error_set(err, CV_DATA_LOSS, "stored run is unreadable");
    return report_rpc_run_reply((Cv__ScheduleRun *)run, out, err);
}

/* Steps 2 and 3 of the design notes. Returns 0 with *out, or an error
 * (CV_ABORTED when another caller took the window). */
static int
report_rpc_create(cv_db *db, const report_schedule *s, int64_t window_us,
                  const char *start, const char *end, int64_t now_us,
                  const char *request_id, bool scheduler,
                  Cv__ScheduleRunReply **out, cv_error *err)
{
    report_counts counts;
    report_provider_row *rows = NULL;
    size_t n_rows = 0;
    Cv__ScheduleRun *run = NULL;
    char *run_json = NULL;
    char now[CV_TIME_MAX];
    bool got, inserted;
    int rv;

    *out = NULL;
    if (scheduler) {
        if ((rv = report_sql_try_lock(db, s->schedule_id, &got, err)) != 0)
            goto out;
        if (!got) {
            /* Not a conflict to retry: the other replica finishes it. */
            rv = cv_error_set(err, CV_FAILED_PRECONDITION,
                              "another replica is generating this run");
            goto out;
        }
    }
    cv_time_format(now_us, now);
    if ((rv = report_sql_counts(db, now, s->recovery_slo_minutes, start, end,
                                &counts, err)) != 0 ||
        (rv = report_sql_providers(db, now, s->recovery_slo_minutes, start, end,
                                   &rows, &n_rows, err)) != 0)
        goto out;
    if ((rv = report_build_run(s, window_us, now_us, &counts, rows, n_rows,
                               &run, err)) != 0)
        goto out;
    if ((run_json = cv_message_to_json_text(&run->base, CV_JSON_OUTPUT)) ==
        NULL) {
        rv = cv_error_set(err, CV_INTERNAL, "out of memory");
        goto out;
    }
    rv = report_sql_store_run(db, run, run_json, request_id, &inserted, err);
    if (rv == CV_ABORTED || rv == CV_ALREADY_EXISTS || (rv == 0 && !inserted)) {
        rv = cv_error_set(err, CV_ABORTED,
                          "the run of this window was stored concurrently");
        goto out;
    }
    if (rv != 0)
        goto out;
    rv = report_rpc_run_reply(run, out, err);
    run = NULL;
out:
    free(rows);
    free(run_json);
    if (run != NULL)
        protobuf_c_message_free_unpacked(&run->base, NULL);
    return rv;
}

int
report_run_generate(cv_db *db, const report_schedule *s, int64_t now_us,
                    const char *request_id, bool scheduler,
                    Cv__ScheduleRunReply **out, bool *existing, cv_error *err)
{
    int64_t ws, we;
    char start[CV_TIME_MAX], end[CV_TIME_MAX];
    int rv;

    *out = NULL;
    *existing = false;
    if (report_window(now_us, s->interval_minutes, &ws, &we) != 0)
        return cv_error_set(err, CV_INVALID_ARGUMENT,
                            "schedule.interval_minutes must be between 1 and "
                            "%d",
                            REPORT_INTERVAL_MAX);
    cv_time_format(ws, start);
    cv_time_format(we, end);
    rv = report_rpc_load_run(db, s->schedule_id, start, out, err);
    if (rv != CV_NOT_FOUND) {
        *existing = rv == 0;
        return rv;
    }
    cv_error_clear(err);
    return report_rpc_create(db, s, ws, start, end, now_us, request_id,
                             scheduler, out, err);
}

/* RESOURCE_EXHAUSTED, naming the rule, when one more enabled schedule
 * would pass a cap of report_limits. */
static int
report_rpc_schedule_caps(cv_rpc_ctx *call, const report_schedule *s,
                         cv_error *err)
{
    const report_sched *sc = call->service;
    report_limits lim = {0};
    int64_t total = 0, mine = 0;
    int rv;

    if (sc != NULL)
        lim = sc->limits;
    else
        report_limits_from_env(&lim);
    if ((rv = report_sql_schedule_counts(call->db, s->generated_by, &total,
                                         &mine, err)) != 0)
        return rv;
    if (total >= lim.schedules_max)
        return cv_error_set(err, CV_RESOURCE_EXHAUSTED,
                            "schedule.enabled: at most %d enabled schedules "
                            "(CAVRA_SCHEDULES_MAX); disable one first",
                            lim.schedules_max);
    if (mine >= lim.schedules_per_actor_max)
        return cv_error_set(err, CV_RESOURCE_EXHAUSTED,
                            "schedule.enabled: at most %d enabled schedules "
                            "per generated_by (CAVRA_SCHEDULES_PER_ACTOR_MAX); "
                            "disable one first",
                            lim.schedules_per_actor_max);
    /* Two callers that both fit alone must not pass together. */
    return report_sql_schedule_guard(call->db, err);
}

static int
report_rpc_schedule_run(cv_rpc_ctx *call, const ProtobufCMessage *request,
                        ProtobufCMessage **reply, cv_error *err)
{
    const Cv__ScheduleRunRequest *req = (const Cv__ScheduleRunRequest *)request;
    Cv__ScheduleRunReply *rep = NULL;
    report_schedule s;
    char now[CV_TIME_MAX];
    int64_t now_us;
    bool existing = false, found = false, was_enabled = false;
    int rv;

    if ((rv = report_schedule_resolve(req, cv_actor_name(call->actor, NULL), &s,
                                      err)) != 0)
        return rv;
    now_us = cv_now_us();
    cv_time_format(now_us, now);
    if ((rv = report_sql_schedule_state(call->db, s.schedule_id, &found,
                                        &was_enabled, err)) != 0)
        goto out;
    /* Only a call that adds an enabled schedule (a new one, or one
     * switched back on) is held to the caps. */
    if (s.enabled && !(found && was_enabled) &&
        (rv = report_rpc_schedule_caps(call, &s, err)) != 0)
        goto out;
    /* The schedule is kept (and the scheduler keeps generating it while
     * it is enabled) whether or not this window already had its run. */
    if ((rv = report_sql_upsert_schedule(call->db, &s, now, err)) != 0)
        goto out;
    /* Switching a schedule on or off is itself evidence, with its actor,
     * in the same transaction as the change. */
    if (found && was_enabled != s.enabled &&
        (rv = report_sql_schedule_change(
             call->db, &s, cv_actor_name(call->actor, s.generated_by),
             call->request_id[0] != '\0' ? call->request_id : NULL, now,
             err)) != 0)
        goto out;
    if ((rv = report_run_generate(call->db, &s, now_us,
                                  call->request_id[0] != '\0' ? call->request_id
                                                              : NULL,
                                  false, &rep, &existing, err)) != 0)
        goto out;
    rep->actor = cv_actor_dup(call->actor);
    call->existing = existing;
    *reply = &rep->base;
out:
    report_schedule_fini(&s);
    return rv;
}

static int
report_rpc_dashboard(cv_rpc_ctx *call, const ProtobufCMessage *request,
                     ProtobufCMessage **reply, cv_error *err)
{
    Cv__Dashboard *d;
    report_counts c;
    char now[CV_TIME_MAX];
    int rv;

    (void)request;
    if ((d = malloc(sizeof(*d))) == NULL)
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    cv__dashboard__init(d);
    cv_time_format(cv_now_us(), now);
    if ((rv = report_sql_dashboard(call->db, now, d, err)) != 0) {
        protobuf_c_message_free_unpacked(&d->base, NULL);
        return rv;
    }
    /* The report's status rules over the whole store. */
    memset(&c, 0, sizeof(c));
    c.escalation_count = d->escalation_count;
    c.critical_escalation_count = d->critical_escalation_count;
    c.slo_breached_count = d->slo_breached_count;
    c.failed_delivery_count = d->failed_delivery_count;
    CV_SET(d, alert_level, report_alert_level(&c));
    d->schema_version = strdup(REPORT_DASHBOARD_SCHEMA);
    d->generated_at = strdup(now);
    d->actor = cv_actor_dup(call->actor);
    if (d->schema_version == NULL || d->generated_at == NULL) {
        protobuf_c_message_free_unpacked(&d->base, NULL);
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    }
    *reply = &d->base;
    return 0;
}

/*
 * Keeps the first events of items (n of them, at most limit + 1) that fit
 * a page: at most limit, and no more than REPORT_PAGE_BYTES of records
 * (but at least one). Frees the others. Returns how many are kept and
 * sets next (REPORT_CURSOR_MAX bytes) to the cursor after the last kept
 * one when more follow, else to "".
 */
static size_t
report_rpc_page(Cv__EvidenceEvent **items, size_t n, int64_t limit, char *next)
{
    size_t keep = n < (size_t)limit ? n : (size_t)limit;
    size_t bytes = 0;

    for (size_t i = 0; i < keep; i++) {
        bytes += strlen(items[i]->record->json) + 256;
        if (i > 0 && bytes > REPORT_PAGE_BYTES) {
            keep = i;
            break;
        }
    }
    next[0] = '\0';
    if (keep < n)
        report_cursor_encode(items[keep - 1]->position, next);
    for (size_t i = keep; i < n; i++)
        protobuf_c_message_free_unpacked(&items[i]->base, NULL);
    return keep;
}

/* The original CAVRA's history item keys of each kind. */
static const struct {
    const char *kind;
    const char *metadata_kind;
} report_item_kinds[] = {
    {CV_KIND_PLAN, "go-backend-rollback-drill-acknowledgement-audit-delivery-"
                   "recovery-escalation-plan"},
    {CV_KIND_DELIVERY, "release-connector-delivery"},
    {CV_KIND_ACK, "go-backend-rollback-drill-acknowledgement-audit-delivery-"
                  "recovery-escalation-ack"},
    {CV_KIND_RETRY_PLAN, "go-backend-rollback-drill-acknowledgement-audit-"
                         "delivery-recovery-escalation-delivery-retry-plan"},
    {CV_KIND_REPORT_RUN, REPORT_RUN_METADATA_KIND},
};

/* An integer member of a JSON object, 0 when absent. */
static int64_t
report_json_i64(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);

    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

/* Sets the decision counts of an item (the metadata's rules). */
static void
report_item_counts(Cv__EvidenceEvent *e, int64_t decisions, int64_t blocked,
                   int64_t approval)
{
    CV_SET(e, decision_count, decisions);
    CV_SET(e, blocked_count, blocked);
    CV_SET(e, approval_required_count, approval);
}

/*
 * Renders the original CAVRA's item keys of an evidence event from its
 * record (the one stored copy): metadata_kind, session_id, the id under
 * its kind's name and the decision counts as the record's metadata has
 * them. Returns -1 when out of memory; an unreadable or omitted record
 * leaves the counts unset.
 */
static int
report_item_keys(Cv__EvidenceEvent *e)
{
    const char *mk = NULL;
    char **slot = NULL;
    json_t *rec;

    for (size_t i = 0;
         i < sizeof(report_item_kinds) / sizeof(report_item_kinds[0]); i++)
        if (strcmp(e->kind, report_item_kinds[i].kind) == 0)
            mk = report_item_kinds[i].metadata_kind;
    if (mk == NULL)
        return 0;
    if ((e->metadata_kind = strdup(mk)) == NULL ||
        (e->session_id = strdup(e->record_id)) == NULL)
        return -1;
    if (strcmp(e->kind, CV_KIND_ACK) == 0)
        slot = &e->acknowledgement_id;
    else if (strcmp(e->kind, CV_KIND_DELIVERY) == 0)
        slot = &e->delivery_id;
    else if (strcmp(e->kind, CV_KIND_RETRY_PLAN) == 0)
        slot = &e->retry_plan_id;
    else if (strcmp(e->kind, CV_KIND_REPORT_RUN) == 0)
        slot = &e->run_id;
    if (slot != NULL && (*slot = strdup(e->record_id)) == NULL)
        return -1;
    if (e->record == NULL || e->record->json == NULL ||
        (rec = json_loads(e->record->json, 0, NULL)) == NULL)
        return 0;
    if (strcmp(e->kind, CV_KIND_PLAN) == 0) {
        report_item_counts(e, report_json_i64(rec, "escalation_count"),
                           report_json_i64(rec, "slo_breached_count"),
                           report_json_i64(rec, "open_recovery_count"));
    } else if (strcmp(e->kind, CV_KIND_DELIVERY) == 0) {
        report_item_counts(
            e, 1, 0,
            json_is_true(json_object_get(rec, "delivery_success")) ? 0 : 1);
    } else if (strcmp(e->kind, CV_KIND_ACK) == 0) {
        report_item_counts(e, 1, 0, 0);
    } else if (strcmp(e->kind, CV_KIND_RETRY_PLAN) == 0) {
        report_item_counts(e, report_json_i64(rec, "decision_count"),
                           report_json_i64(rec, "suppressed_count"),
                           report_json_i64(rec, "retryable_count"));
    } else if (strcmp(e->kind, CV_KIND_REPORT_RUN) == 0) {
        json_t *rep = json_object_get(rec, "executive_report");
        json_t *id = json_object_get(rep, "executive_report_id");
        const char *alert =
            json_string_value(json_object_get(rec, "alert_level"));

        if (!json_is_string(id)) /* stored before the rename */
            id = json_object_get(rep, "report_id");
        report_item_counts(e, 1,
                           alert != NULL && strcmp(alert, "critical") == 0,
                           alert != NULL && strcmp(alert, "healthy") != 0);
        if (json_is_string(id) &&
            (e->executive_report_id = strdup(json_string_value(id))) == NULL) {
            json_decref(rec);
            return -1;
        }
    }
    json_decref(rec);
    return 0;
}

/* report_item_keys over a page. */
static int
report_items_keys(Cv__EvidenceEvent **items, size_t n, cv_error *err)
{
    for (size_t i = 0; i < n; i++)
        if (report_item_keys(items[i]) != 0)
            return cv_error_set(err, CV_INTERNAL, "out of memory");
    return 0;
}

static int
report_rpc_list_evidence(cv_rpc_ctx *call, const ProtobufCMessage *request,
                         ProtobufCMessage **reply, cv_error *err)
{
    const Cv__ListEvidenceRequest *req =
        (const Cv__ListEvidenceRequest *)request;
    report_list_filter f;
    Cv__EvidenceEvent **items = NULL;
    Cv__EvidencePage *page;
    char next[REPORT_CURSOR_MAX];
    int64_t total = 0;
    size_t n = 0;
    int rv;

    if ((rv = report_list_filter_init(req, &f, err)) != 0 ||
        (rv = report_sql_count(call->db, &f, &total, err)) != 0 ||
        (rv = report_sql_list(call->db, &f, &items, &n, err)) != 0)
        return rv;
    if ((page = malloc(sizeof(*page))) == NULL) {
        report_sql_free_events(items, n);
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    }
    cv__evidence_page__init(page);
    page->n_items = report_rpc_page(items, n, f.limit, next);
    page->items = items;
    items = NULL;
    page->schema_version = strdup(REPORT_HISTORY_SCHEMA);
    page->product = strdup(CV_PRODUCT);
    CV_SET(page, total, total);
    CV_SET(page, limit, f.limit);
    CV_SET(page, offset, f.offset);
    if ((next[0] != '\0' && (page->next_cursor = strdup(next)) == NULL) ||
        page->schema_version == NULL || page->product == NULL ||
        report_items_keys(page->items, page->n_items, err) != 0) {
        protobuf_c_message_free_unpacked(&page->base, NULL);
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    }
    page->actor = cv_actor_dup(call->actor);
    *reply = &page->base;
    return 0;
}

static int
report_rpc_trace(cv_rpc_ctx *call, const ProtobufCMessage *request,
                 ProtobufCMessage **reply, cv_error *err)
{
    const Cv__TraceRequest *req = (const Cv__TraceRequest *)request;
    Cv__EvidenceEvent **items = NULL;
    Cv__Trace *t;
    char next[REPORT_CURSOR_MAX];
    int64_t after = 0, limit = REPORT_TRACE_LIMIT_MAX;
    size_t n = 0;
    int rv;

    /* A plan id that cannot exist is 404 before any other rule. */
    if ((rv = cv_plan_ref_check_id(req->plan_id, err)) != 0)
        return rv;
    if (req->has_limit) {
        if ((rv = cv_validate_int_range("limit", req->limit, 1,
                                        REPORT_TRACE_LIMIT_MAX, err)) != 0)
            return rv;
        limit = req->limit;
    }
    if (req->cursor != NULL && req->cursor[0] != '\0' &&
        (rv = report_cursor_decode(req->cursor, &after, err)) != 0)
        return rv;
    if ((rv = cv_plan_ref_exists(call->db, req->plan_id, err)) != 0 ||
        (rv = report_sql_trace(call->db, req->plan_id, after, limit, &items, &n,
                               err)) != 0)
        return rv;
    if ((t = malloc(sizeof(*t))) == NULL) {
        report_sql_free_events(items, n);
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    }
    cv__trace__init(t);
    t->n_items = report_rpc_page(items, n, limit, next);
    t->items = items;
    items = NULL;
    t->plan_id = strdup(req->plan_id);
    if (next[0] != '\0')
        t->next_cursor = strdup(next);
    t->actor = cv_actor_dup(call->actor);
    if (t->plan_id == NULL || (next[0] != '\0' && t->next_cursor == NULL) ||
        report_items_keys(t->items, t->n_items, err) != 0) {
        protobuf_c_message_free_unpacked(&t->base, NULL);
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    }
    *reply = &t->base;
    return 0;
}

/* The run of a stored record (JSON text), readable records only. */
static int
report_rpc_parse_run(const char *text, Cv__ScheduleRun **run, cv_error *err)
{
    ProtobufCMessage *msg = NULL;
    cv_error perr;

    *run = NULL;
    if (cv_record_load(&cv__schedule_run__descriptor, text, &msg, &perr) != 0)
        return cv_error_set(err, CV_DATA_LOSS, "stored run is unreadable");
    *run = (Cv__ScheduleRun *)msg;
    return 0;
}

/* A report computed now for LatestReport's query parameters: the
 * schedule-run defaults and the current daily window; nothing stored. */
static int
report_rpc_adhoc(cv_rpc_ctx *call, const Cv__LatestReportRequest *req,
                 Cv__ExecutiveReport **out, cv_error *err)
{
    Cv__ScheduleRunRequest sreq = CV__SCHEDULE_RUN_REQUEST__INIT;
    report_schedule s;
    report_counts counts;
    report_provider_row *rows = NULL;
    size_t n_rows = 0;
    int64_t now_us = cv_now_us(), ws, we;
    char now[CV_TIME_MAX], start[CV_TIME_MAX], end[CV_TIME_MAX];
    int rv;

    sreq.generated_by = req->generated_by;
    sreq.has_recovery_slo_minutes = req->has_recovery_slo_minutes;
    sreq.recovery_slo_minutes = req->recovery_slo_minutes;
    if ((rv = report_schedule_resolve(&sreq, cv_actor_name(call->actor, NULL),
                                      &s, err)) != 0)
        return rv;
    (void)report_window(now_us, s.interval_minutes, &ws, &we);
    cv_time_format(now_us, now);
    cv_time_format(ws, start);
    cv_time_format(we, end);
    if ((rv = report_sql_counts(call->db, now, s.recovery_slo_minutes, start,
                                end, &counts, err)) == 0 &&
        (rv = report_sql_providers(call->db, now, s.recovery_slo_minutes, start,
                                   end, &rows, &n_rows, err)) == 0)
        rv = report_build_adhoc(
            &s, ws, now_us, &counts, rows, n_rows,
            call->request_id[0] != '\0' ? call->request_id : NULL, out, err);
    free(rows);
    report_schedule_fini(&s);
    return rv;
}

/*
 * report.LatestReport: the newest stored executive report, or with the
 * original CAVRA's query parameters a report computed now and never
 * stored (a GET stays safe; POST schedule-run stores).
 */
static int
report_rpc_latest_report(cv_rpc_ctx *call, const ProtobufCMessage *request,
                         ProtobufCMessage **reply, cv_error *err)
{
    const Cv__LatestReportRequest *req =
        (const Cv__LatestReportRequest *)request;
    Cv__LatestReportReply *rep;
    Cv__ExecutiveReport *report = NULL;
    Cv__ScheduleRun *run = NULL;
    bool computed = req->has_recovery_slo_minutes || req->generated_by != NULL;
    char *text = NULL;
    int rv;

    if (computed) {
        if ((rv = report_rpc_adhoc(call, req, &report, err)) != 0)
            return rv;
    } else {
        if ((rv = report_sql_latest_run(call->db, &text, err)) != 0)
            return rv;
        rv = report_rpc_parse_run(text, &run, err);
        free(text);
        if (rv != 0)
            return rv;
        report = run->executive_report;
        run->executive_report = NULL;
        protobuf_c_message_free_unpacked(&run->base, NULL);
        if (report == NULL)
            return cv_error_set(err, CV_DATA_LOSS, "stored run is unreadable");
    }
    if ((rep = malloc(sizeof(*rep))) == NULL) {
        protobuf_c_message_free_unpacked(&report->base, NULL);
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    }
    cv__latest_report_reply__init(rep);
    rep->report = report;
    CV_SET(rep, computed, computed);
    rep->metadata = report_report_metadata(report);
    rep->actor = cv_actor_dup(call->actor);
    if (rep->metadata == NULL) {
        protobuf_c_message_free_unpacked(&rep->base, NULL);
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    }
    *reply = &rep->base;
    return 0;
}

/* Run pages stop growing past this many bytes of records (a run with
 * 200 providers is tens of KB). */
#define REPORT_RUNS_PAGE_BYTES (CV_RPC_REPLY_MAX / 4)

/* report.ListRuns: the stored runs, newest first, in pages. */
static int
report_rpc_list_runs(cv_rpc_ctx *call, const ProtobufCMessage *request,
                     ProtobufCMessage **reply, cv_error *err)
{
    const Cv__ListRunsRequest *req = (const Cv__ListRunsRequest *)request;
    const char *schedule_id = NULL;
    char sid[REPORT_SCHEDULE_ID_MAX + 1];
    int64_t limit = REPORT_RUNS_LIMIT_DEFAULT, before = INT64_MAX;
    report_run_row *rows = NULL;
    Cv__RunPage *page = NULL;
    size_t n = 0, keep, bytes = 0;
    int rv;

    if (req->schedule_id != NULL && req->schedule_id[0] != '\0') {
        if ((rv = cv_normalize_ident("schedule_id", req->schedule_id,
                                     REPORT_SCHEDULE_ID_MAX, sid, sizeof(sid),
                                     err)) != 0)
            return rv;
        schedule_id = sid;
    }
    if (req->has_limit) {
        if ((rv = cv_validate_int_range("limit", req->limit, 1,
                                        REPORT_RUNS_LIMIT_MAX, err)) != 0)
            return rv;
        limit = req->limit;
    }
    if (req->cursor != NULL && req->cursor[0] != '\0' &&
        (rv = report_cursor_decode(req->cursor, &before, err)) != 0)
        return rv;
    if ((rv = report_sql_runs(call->db, schedule_id, before, limit + 1, &rows,
                              &n, err)) != 0)
        goto out;
    keep = n < (size_t)limit ? n : (size_t)limit;
    for (size_t i = 0; i < keep; i++) {
        bytes += strlen(rows[i].record);
        if (i > 0 && bytes > REPORT_RUNS_PAGE_BYTES) {
            keep = i;
            break;
        }
    }
    if ((page = malloc(sizeof(*page))) == NULL) {
        rv = cv_error_set(err, CV_INTERNAL, "out of memory");
        goto out;
    }
    cv__run_page__init(page);
    if (keep > 0 &&
        (page->items = calloc(keep, sizeof(*page->items))) == NULL) {
        rv = cv_error_set(err, CV_INTERNAL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < keep; i++) {
        if ((rv = report_rpc_parse_run(rows[i].record, &page->items[i], err)) !=
            0)
            goto out;
        page->n_items = i + 1;
    }
    if (keep < n) {
        char next[REPORT_CURSOR_MAX];

        report_cursor_encode(rows[keep - 1].seq, next);
        if ((page->next_cursor = strdup(next)) == NULL) {
            rv = cv_error_set(err, CV_INTERNAL, "out of memory");
            goto out;
        }
    }
    page->actor = cv_actor_dup(call->actor);
    *reply = &page->base;
    page = NULL;
out:
    report_sql_free_runs(rows, n);
    if (page != NULL)
        protobuf_c_message_free_unpacked(&page->base, NULL);
    return rv;
}

/*
 * One verification at a time per process: a walk over the whole store
 * is the most expensive thing this service does. A second caller is
 * refused at once (RESOURCE_EXHAUSTED, HTTP 429) instead of queueing,
 * so verify holds at most one database worker, and main.c starts the
 * service with one worker more than CAVRA_DB_WORKERS for it: the write
 * and read paths keep all of theirs.
 */
static atomic_bool report_verify_busy;

/*
 * The walk is many short statements, so statement_timeout alone does not
 * bound it: a watchdog cancels the running statement (PQcancel, from its
 * own thread, as libpq allows) once the caller's deadline has passed, and
 * again every REPORT_VERIFY_CANCEL_MS until the walk gives up. The
 * cancelled statement fails with 57014: DEADLINE_EXCEEDED, and the
 * worker and the one-at-a-time slot are free again.
 */
#define REPORT_VERIFY_CANCEL_MS 200

typedef struct report_verify_watch {
    pthread_mutex_t mtx;
    pthread_cond_t cond; /* CLOCK_MONOTONIC */
    bool done;
    int64_t deadline_ms; /* monotonic */
    PGcancel *cancel;
} report_verify_watch;

static int64_t
report_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *
report_verify_watch_main(void *arg)
{
    report_verify_watch *w = arg;
    int64_t until = w->deadline_ms;

    pthread_mutex_lock(&w->mtx);
    while (!w->done) {
        struct timespec ts = {until / 1000, (long)(until % 1000) * 1000000L};

        if (pthread_cond_timedwait(&w->cond, &w->mtx, &ts) == ETIMEDOUT &&
            !w->done) {
            char msg[256];

            (void)PQcancel(w->cancel, msg, sizeof(msg));
            until = report_mono_ms() + REPORT_VERIFY_CANCEL_MS;
        }
    }
    pthread_mutex_unlock(&w->mtx);
    return NULL;
}

/* Starts the watchdog when the call has a deadline; returns true when it
 * runs (report_verify_watch_stop then joins it). */
static bool
report_verify_watch_start(report_verify_watch *w, pthread_t *th,
                          const cv_rpc_ctx *call)
{
    pthread_condattr_t attr;

    if (call->deadline_unix_ms <= 0 || call->db->conn == NULL ||
        (w->cancel = PQgetCancel(call->db->conn)) == NULL)
        return false;
    w->done = false;
    w->deadline_ms =
        report_mono_ms() + (call->deadline_unix_ms - cv_now_us() / 1000);
    pthread_mutex_init(&w->mtx, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cond, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(th, NULL, report_verify_watch_main, w) != 0) {
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->mtx);
        PQfreeCancel(w->cancel);
        return false;
    }
    return true;
}

static void
report_verify_watch_stop(report_verify_watch *w, pthread_t th)
{
    pthread_mutex_lock(&w->mtx);
    w->done = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mtx);
    pthread_join(th, NULL);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->mtx);
    PQfreeCancel(w->cancel);
}

/* report.VerifyEvidence: recomputes the evidence Merkle tree from the
 * events and checks it against the witnessed checkpoints (docs/api.md, 9). */
static int
report_rpc_verify(cv_rpc_ctx *call, const ProtobufCMessage *request,
                  ProtobufCMessage **reply, cv_error *err)
{
    const report_sched *sc = call->service;
    Cv__EvidenceVerification *v;
    cv_chain_report report;
    cv_chain_anchor *anchors = NULL;
    size_t n_anchors = 0;
    const char *source = "none";
    int rv;

    (void)request;
    if (atomic_exchange(&report_verify_busy, true))
        return cv_error_set(err, CV_RESOURCE_EXHAUSTED,
                            "an evidence verification is already running on "
                            "this service; retry when it has finished");
    /* The walk's pages may take longer than the default bound of one
     * statement; this transaction only, never the session. */
    rv = cv_db_set_statement_timeout(call->db,
                                     sc != NULL ? sc->limits.verify_timeout_ms
                                                : REPORT_VERIFY_TIMEOUT_DEFAULT,
                                     true, err);
    if (rv == 0)
        rv = cv_tlog_anchors(call->db, &anchors, &n_anchors, &source, err);
    if (rv == 0) {
        report_verify_watch w;
        pthread_t th;
        bool watched = report_verify_watch_start(&w, &th, call);

        rv = cv_chain_verify_db(call->db, anchors, n_anchors, &report, err);
        if (watched)
            report_verify_watch_stop(&w, th);
    }
    free(anchors);
    atomic_store(&report_verify_busy, false);
    if (rv != 0)
        return rv;
    if ((v = malloc(sizeof(*v))) == NULL)
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    cv__evidence_verification__init(v);
    CV_SET(v, valid, report.valid);
    CV_SET(v, events, report.events);
    CV_SET(v, pending, report.pending);
    CV_SET(v, tree_size, report.tree_size);
    if (report.checkpoint_size >= 0)
        CV_SET(v, checkpoint_size, report.checkpoint_size);
    v->checkpoint_source = strdup(source);
    v->head = strdup(report.head);
    v->algorithm = strdup(CV_CHAIN_ALGORITHM);
    if (!report.valid) {
        CV_SET(v, first_invalid_seq, report.first_invalid_seq);
        if (report.last_invalid_seq > report.first_invalid_seq)
            CV_SET(v, last_invalid_seq, report.last_invalid_seq);
        v->reason = strdup(report.reason);
    }
    *reply = &v->base;
    return 0;
}

const cv_rpc_method report_rpc_methods[] = {
    {"report.VerifyEvidence", report_rpc_verify},
    {"report.ScheduleRun", report_rpc_schedule_run},
    {"report.Dashboard", report_rpc_dashboard},
    {"report.ListEvidence", report_rpc_list_evidence},
    {"report.Trace", report_rpc_trace},
    {"report.LatestReport", report_rpc_latest_report},
    {"report.ListRuns", report_rpc_list_runs},
    {"report.EvidenceCheckpoint", report_evidence_checkpoint},
    {"report.EvidencePublicKey", report_evidence_public_key},
    {"report.InclusionProof", report_inclusion_proof},
    {"report.ConsistencyProof", report_consistency_proof},
    {"report.EvidenceTile", report_evidence_tile},
};
const size_t report_rpc_method_count =
    sizeof(report_rpc_methods) / sizeof(report_rpc_methods[0]);
